"""Tracker logic that is hard to reach on the real server: fake history/queue clients and a
fake event stream (the live behaviour is covered by test_witness_live.py and
test_execute_errors_live.py).

Timing knobs (``LOST_CHECK_EVERY``, ``SILENCE_CHECK``) are raised to far beyond the test's
deadline where a test must prove that something happens *without* them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import pytest

from witness.api_clients.types import CancelOutcome, CancelResult, HistoryEntry, QueueState
from witness.api_clients.ws_events import (
    ExecutingEvent,
    ExecutionCachedEvent,
    NodeProgress,
    PreviewEvent,
    ProgressEvent,
    ProgressStateEvent,
    ReconnectedEvent,
)
from witness.core import tracking
from witness.core.tracking import Preview, ProgressUpdate, Tracker
from witness.errors import (
    PromptLostError,
    ServerUnavailableError,
    TransportError,
    WaitTimeoutError,
    WebSocketError,
)

PID = "p-1"
NEVER = 1e6  # a check interval that never comes within a test


def _raw_entry(status: str = "success", messages: list[Any] | None = None) -> dict[str, Any]:
    return {
        "prompt": [1, PID, {"1": {"class_type": "X", "inputs": {}}}, {}, ["1"]],
        "outputs": {"1": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
        "status": {
            "status_str": status,
            "completed": status == "success",
            "messages": messages or [],
        },
        "meta": {},
    }


class FakeHistory:
    """``get`` answers from ``entries``; ``errors`` are raised first (one per call)."""

    def __init__(self) -> None:
        self.entries: dict[str, HistoryEntry] = {}
        self.errors: deque[Exception] = deque()
        self.calls = 0
        self.lock = threading.Lock()

    def finish(self, prompt_id: str = PID, status: str = "success") -> None:
        with self.lock:
            self.entries[prompt_id] = HistoryEntry.from_json(prompt_id, _raw_entry(status))

    def get(self, prompt_id: str) -> HistoryEntry | None:
        with self.lock:
            self.calls += 1
            if self.errors:
                raise self.errors.popleft()
            return self.entries.get(prompt_id)


class FakeQueue:
    """A queue holding ``pending`` ids; ``cancel`` dequeues (optionally failing)."""

    def __init__(self, *pending: str) -> None:
        self.pending = set(pending)
        self.cancelled: list[str] = []
        self.fail_cancel: Exception | None = None
        self.lock = threading.Lock()

    def get(self) -> QueueState:
        with self.lock:
            return QueueState.from_json(
                {"queue_running": [], "queue_pending": [[0, p, {}, {}, []] for p in self.pending]}
            )

    def cancel(self, prompt_id: str) -> CancelResult:
        with self.lock:
            self.cancelled.append(prompt_id)
            self.pending.discard(prompt_id)
            if self.fail_cancel is not None:
                raise self.fail_cancel
        return CancelResult(prompt_id, CancelOutcome.DEQUEUED, "queue_api")


class FakeStream:
    """Hands out queued events; ``get`` waits (up to its timeout) for more."""

    def __init__(self, *events: object) -> None:
        self.events: deque[object] = deque(events)
        self.cond = threading.Condition()
        self.error: Exception | None = None
        self.finished = False

    def push(self, *events: object) -> None:
        with self.cond:
            self.events.extend(events)
            self.cond.notify_all()

    def get(self, timeout: float | None = None) -> object:
        with self.cond:
            if not self.events and self.error is None:
                self.cond.wait(timeout)
            if self.events:
                event = self.events.popleft()
                if isinstance(event, ExecutingEvent) and event.node is None:
                    self.finished = True
                return event
            if self.error is not None:
                raise self.error
            raise WaitTimeoutError("no event", timeout=timeout or 0.0, what=PID)


def _tracker(history: FakeHistory, queue: FakeQueue) -> Tracker:
    return Tracker(history, queue)  # type: ignore[arg-type]


def _deadline(seconds: float = 20.0) -> float:
    return time.monotonic() + seconds


def _done_event() -> ExecutingEvent:
    return ExecutingEvent(prompt_id=PID, node=None)


@pytest.fixture
def history() -> FakeHistory:
    return FakeHistory()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue(PID)


# --------------------------------------------------------------------------------------------
# Polling
# --------------------------------------------------------------------------------------------


def test_poll_returns_the_entry_once_written(history: FakeHistory, queue: FakeQueue) -> None:
    threading.Timer(0.2, history.finish).start()
    outcome = _tracker(history, queue).wait(PID, deadline=_deadline())
    assert outcome.status is None
    assert outcome.entry is not None
    assert outcome.entry.status.status_str == "success"
    assert history.calls >= 2


def test_poll_gives_one_final_progress_update_on_success(
    history: FakeHistory, queue: FakeQueue
) -> None:
    history.finish()
    updates: list[ProgressUpdate] = []
    _tracker(history, queue).wait(
        PID, deadline=_deadline(), node_count=3, on_progress=updates.append
    )
    assert [(u.overall, u.nodes_done, u.nodes_total) for u in updates] == [(1.0, 3, 3)]


def test_no_final_progress_for_a_failed_prompt(history: FakeHistory, queue: FakeQueue) -> None:
    history.finish(status="error")
    updates: list[ProgressUpdate] = []
    _tracker(history, queue).wait(PID, deadline=_deadline(), on_progress=updates.append)
    assert updates == []


def test_prompt_in_neither_queue_nor_history_is_lost(
    history: FakeHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "LOST_CHECK_EVERY", 0.0)
    with pytest.raises(PromptLostError) as info:
        _tracker(history, FakeQueue()).wait(PID, deadline=_deadline())
    assert info.value.prompt_id == PID


def test_still_queued_prompt_times_out_and_is_cancelled_when_asked(
    history: FakeHistory, queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "LOST_CHECK_EVERY", 0.0)
    tracker = _tracker(history, queue)
    kept = tracker.wait(PID, deadline=_deadline(0.2))
    assert kept.status == "timeout"
    assert queue.cancelled == []

    cancelled = tracker.wait(PID, deadline=_deadline(0.2), cancel_on_timeout=True)
    assert cancelled.status == "timeout"
    assert cancelled.reason is not None
    assert queue.cancelled == [PID]


def test_transient_transport_errors_are_tolerated(history: FakeHistory, queue: FakeQueue) -> None:
    history.errors.extend(TransportError("down", method="GET", url="u") for _ in range(3))
    history.finish()
    outcome = _tracker(history, queue).wait(PID, deadline=_deadline())
    assert outcome.entry is not None


def test_unreachable_until_the_deadline_raises_the_transport_error(queue: FakeQueue) -> None:
    class Down(FakeHistory):
        def get(self, prompt_id: str) -> HistoryEntry | None:
            raise ServerUnavailableError("refused", method="GET", url="u")

    with pytest.raises(ServerUnavailableError):
        _tracker(Down(), queue).wait(PID, deadline=_deadline(0.3))


# --------------------------------------------------------------------------------------------
# Cancelling
# --------------------------------------------------------------------------------------------


def test_cancel_wakes_a_polling_waiter_at_once(
    history: FakeHistory, queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "LOST_CHECK_EVERY", NEVER)
    monkeypatch.setattr(tracking, "POLL_START", NEVER)  # the waiter sleeps "forever"
    tracker = _tracker(history, queue)
    threading.Timer(0.2, tracker.cancel, args=(PID,)).start()
    outcome = tracker.wait(PID, deadline=_deadline())
    assert outcome.status == "interrupted"
    assert outcome.reason == "cancelled before it started running"


def test_cancel_wakes_a_websocket_waiter_at_once(
    history: FakeHistory, queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "SILENCE_CHECK", NEVER)
    tracker = _tracker(history, queue)
    threading.Timer(0.2, tracker.cancel, args=(PID,)).start()
    outcome = tracker.wait(PID, deadline=_deadline(), stream=FakeStream())  # type: ignore[arg-type]
    assert outcome.status == "interrupted"


def test_a_running_prompt_cancelled_ends_with_its_history_entry(
    history: FakeHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Running(FakeQueue):
        def get(self) -> QueueState:
            with self.lock:
                running = [] if PID in history.entries else [[0, PID, {}, {}, []]]
            return QueueState.from_json({"queue_running": running, "queue_pending": []})

        def cancel(self, prompt_id: str) -> CancelResult:
            threading.Timer(0.2, history.finish, kwargs={"status": "error"}).start()
            return CancelResult(prompt_id, CancelOutcome.INTERRUPTED, "queue_api")

    monkeypatch.setattr(tracking, "LOST_CHECK_EVERY", 0.0)
    tracker = _tracker(history, Running())
    threading.Timer(0.1, tracker.cancel, args=(PID,)).start()
    outcome = tracker.wait(PID, deadline=_deadline())
    assert outcome.status is None  # the entry decides
    assert outcome.entry is not None
    assert outcome.entry.status.status_str == "error"


def test_a_failed_cancel_still_counts_as_asked(
    history: FakeHistory, queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "LOST_CHECK_EVERY", 0.0)
    queue.fail_cancel = TransportError("reset after the delete", method="POST", url="u")
    tracker = _tracker(history, queue)
    with pytest.raises(TransportError):
        tracker.cancel(PID)
    # the delete went through before the error: the prompt is cancelled, not lost
    assert tracker.wait(PID, deadline=_deadline()).status == "interrupted"


def test_cancelled_ids_are_bounded_and_forgotten(
    history: FakeHistory, queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "CANCELLED_MEMORY", 3)
    tracker = _tracker(history, queue)
    for index in range(5):
        tracker.cancel(f"p{index}")
    assert [tracker._was_cancelled(f"p{i}") for i in range(5)] == [False, False, True, True, True]
    tracker.forget("p4")
    assert not tracker._was_cancelled("p4")


# --------------------------------------------------------------------------------------------
# Websocket events
# --------------------------------------------------------------------------------------------


def test_completion_event_reads_the_entry(history: FakeHistory, queue: FakeQueue) -> None:
    history.finish()
    stream = FakeStream(_done_event())
    outcome = _tracker(history, queue).wait(PID, deadline=_deadline(), stream=stream)  # type: ignore[arg-type]
    assert outcome.entry is not None
    assert history.calls == 1


def test_websocket_failure_falls_back_to_polling(history: FakeHistory, queue: FakeQueue) -> None:
    stream = FakeStream()
    stream.error = WebSocketError("closed", method="GET", url="ws://x/ws")
    threading.Timer(0.2, history.finish).start()
    outcome = _tracker(history, queue).wait(PID, deadline=_deadline(), stream=stream)  # type: ignore[arg-type]
    assert outcome.entry is not None


def test_reconnect_checks_the_history(
    history: FakeHistory, queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The completion was sent while the socket was down: the history has the answer."""
    monkeypatch.setattr(tracking, "SILENCE_CHECK", NEVER)
    history.finish()
    stream = FakeStream(ReconnectedEvent(attempt=1))
    outcome = _tracker(history, queue).wait(PID, deadline=_deadline(), stream=stream)  # type: ignore[arg-type]
    assert outcome.entry is not None


def test_silence_checks_the_history(
    history: FakeHistory, queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "SILENCE_CHECK", 0.1)
    threading.Timer(0.2, history.finish).start()
    outcome = _tracker(history, queue).wait(PID, deadline=_deadline(), stream=FakeStream())  # type: ignore[arg-type]
    assert outcome.entry is not None


def test_websocket_deadline_is_a_timeout(history: FakeHistory, queue: FakeQueue) -> None:
    outcome = _tracker(history, queue).wait(PID, deadline=_deadline(0.3), stream=FakeStream())  # type: ignore[arg-type]
    assert outcome.status == "timeout"


def test_websocket_waiter_with_the_server_down_at_the_deadline_raises(
    queue: FakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same typed outcome as polling: connection events keep coming (the websocket keeps
    trying to reconnect), the server never answers, and the deadline raises its error."""

    class Down(FakeHistory):
        def get(self, prompt_id: str) -> HistoryEntry | None:
            raise ServerUnavailableError("refused", method="GET", url="u")

    monkeypatch.setattr(tracking, "SILENCE_CHECK", NEVER)
    stream = FakeStream()
    stop = threading.Event()

    def reconnecting() -> None:
        while not stop.wait(0.02):
            stream.push(object())  # e.g. ConnectionEvent("reconnecting"): not a prompt event

    pusher = threading.Thread(target=reconnecting, daemon=True)
    pusher.start()
    try:
        with pytest.raises(ServerUnavailableError):
            _tracker(Down(), queue).wait(PID, deadline=_deadline(0.3), stream=stream)  # type: ignore[arg-type]
    finally:
        stop.set()
        pusher.join(2)


def test_websocket_deadline_finds_a_missed_end(history: FakeHistory, queue: FakeQueue) -> None:
    """The completion event was missed, but the entry exists: the last check finds it."""
    history.finish()
    tracker = _tracker(history, queue)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracking, "SILENCE_CHECK", NEVER)
        outcome = tracker.wait(PID, deadline=_deadline(0.2), stream=FakeStream())  # type: ignore[arg-type]
    assert outcome.status is None
    assert outcome.entry is not None


def _state(**nodes: tuple[float, float, str]) -> ProgressStateEvent:
    return ProgressStateEvent(
        prompt_id=PID,
        nodes={
            n: NodeProgress(node_id=n, value=v, max=m, state=s) for n, (v, m, s) in nodes.items()
        },
    )


def test_progress_ignores_cached_nodes_and_never_goes_back(
    history: FakeHistory, queue: FakeQueue
) -> None:
    history.finish()
    stream = FakeStream(
        ExecutionCachedEvent(prompt_id=PID, nodes=("1", "2")),
        # the server also reports cached nodes as finished: they must not count as done
        _state(**{"1": (1, 1, "finished"), "2": (1, 1, "finished"), "3": (0, 1, "running")}),
        ProgressEvent(prompt_id=PID, node="3", value=5, max=10),
        ProgressEvent(prompt_id=PID, node="3", value=2, max=10),  # would go backwards
        _state(**{"3": (10, 10, "finished"), "4": (0, 1, "running")}),
        _done_event(),
    )
    updates: list[ProgressUpdate] = []
    _tracker(history, queue).wait(
        PID,
        deadline=_deadline(),
        stream=stream,  # type: ignore[arg-type]
        node_count=4,
        on_progress=updates.append,
    )
    assert all(u.nodes_total == 2 for u in updates)
    assert all(u.nodes_done <= u.nodes_total for u in updates)
    overall = [u.overall for u in updates]
    assert overall == sorted(overall)
    assert overall[:3] == [0.0, 0.25, 0.25]
    assert overall[-1] == 1.0
    assert [u.overall for u in updates].count(1.0) == 1


def test_previews_are_forwarded_and_callback_errors_ignored(
    history: FakeHistory, queue: FakeQueue
) -> None:
    history.finish()
    image = b"\x89PNG\r\n\x1a\n..."
    stream = FakeStream(
        PreviewEvent(prompt_id=PID, image=image, mime_type="image/png", node_id="7"),
        ProgressEvent(prompt_id=PID, node="7", value=1, max=2),
        _done_event(),
    )
    previews: list[Preview] = []

    def bad_progress(_: ProgressUpdate) -> None:
        raise RuntimeError("caller bug")

    outcome = _tracker(history, queue).wait(
        PID,
        deadline=_deadline(),
        stream=stream,  # type: ignore[arg-type]
        on_progress=bad_progress,
        on_preview=previews.append,
    )
    assert outcome.entry is not None
    assert previews == [Preview(PID, "7", image, "image/png")]

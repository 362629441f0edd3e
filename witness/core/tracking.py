"""Submit a prompt and wait for it: the websocket is the fast hint, ``/history`` the truth.

Two executors:

* ``"websocket"`` (default): the prompt's events are tracked *before* ``POST /prompt`` (the
  prompt id is made client-side), so nothing is missed. Completion is the ``executing`` event
  with ``node: null`` (sent after the history entry is written). Progress and previews are
  forwarded to the caller's callbacks. After a reconnect, or when the socket is silent for a
  while, the history is checked directly; if the websocket cannot be used at all, the wait
  continues by polling.
* ``"http"``: ``GET /history/{prompt_id}`` polled at an adaptive interval (10 ms, growing by
  half each poll, capped at 1 s).

Either way every wait has a deadline; a server that stays unreachable for longer than the
grace period (``Settings.unreachable_grace``) raises
:class:`~witness.errors.ServerUnavailableError` naming the server and the prompt (one warning
is logged when the outage starts, with its real cause); a prompt that is in neither the queue
nor the history (the server restarted, or someone deleted it) raises
:class:`~witness.errors.PromptLostError` instead of hanging. The waiter's own probes are not
retried by the transport: the wait itself is the retry loop.

When the deadline passes, the outcome carries the outputs finished so far (the
history entry written after the cancel, else the ``executed`` websocket events).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from witness.api_clients.history_client import HistoryClient
from witness.api_clients.queue_client import QueueClient
from witness.api_clients.types import CancelResult, HistoryEntry
from witness.api_clients.websocket_client import PromptEvents
from witness.api_clients.ws_events import (
    ConnectionEvent,
    ExecutedEvent,
    ExecutingEvent,
    ExecutionCachedEvent,
    PreviewEvent,
    ProgressEvent,
    ProgressStateEvent,
    ReconnectedEvent,
)
from witness.errors import (
    PromptLostError,
    ServerUnavailableError,
    TransportError,
    WaitTimeoutError,
    WebSocketError,
    WitnessError,
)
from witness.transport.retry import RetryPolicy

__all__ = [
    "ExecutorKind",
    "Preview",
    "ProgressUpdate",
    "Tracker",
    "WaitOutcome",
]

logger = logging.getLogger(__name__)

ExecutorKind = Literal["websocket", "http"]

POLL_START = 0.01  # short prompts finish in ~10 ms; the interval grows fast
POLL_GROWTH = 1.5
POLL_MAX = 1.0
SILENCE_CHECK = 3.0  # seconds without a websocket event before the history is checked
LOST_CHECK_EVERY = 2.0  # seconds between queue checks while polling
EVENT_SLICE = 0.25  # longest single websocket wait, so that a cancel is noticed promptly
CANCELLED_MEMORY = 4096  # cancelled prompt ids remembered (oldest forgotten first)
OUTAGE_CHECK = 1.0  # seconds between checks while the server is unreachable
DEFAULT_UNREACHABLE_GRACE = 10.0  # see Settings.unreachable_grace
PARTIAL_WAIT = 3.0  # seconds to wait for the history entry of a prompt cancelled at timeout
_PROBE = RetryPolicy(retries=0)  # the wait loop is the retry loop: no retries inside it

_REQUESTED = 1  # a cancel was asked for (the server may not have done it yet)
_DONE = 2  # the server answered the cancel


@dataclass(frozen=True)
class ProgressUpdate:
    """Progress of one prompt, given to ``on_progress``.

    Attributes:
        prompt_id: The prompt.
        node_id: The node reporting progress (``None`` before the first node).
        value: The node's progress value (e.g. the sampler step).
        max: The node's maximum.
        overall: Fraction of the prompt done, from 0.0 to 1.0 (nodes finished plus the
            running nodes' fractions, over the nodes that run; cached nodes don't count).
        nodes_done: Nodes finished so far (cached ones not counted).
        nodes_total: Nodes that run (the prompt's nodes minus cached ones).

    When a prompt completes, a last update with ``overall == 1.0`` is always given (also
    when every node was cached and the server sent no progress at all).
    """

    prompt_id: str
    node_id: str | None
    value: float
    max: float
    overall: float
    nodes_done: int
    nodes_total: int


@dataclass(frozen=True)
class Preview:
    """A preview image, given to ``on_preview``.

    Attributes:
        prompt_id: The prompt.
        node_id: The node that sent it, when known.
        data: The encoded image bytes.
        format: ``"image/png"`` or ``"image/jpeg"``.
    """

    prompt_id: str
    node_id: str | None
    data: bytes
    format: str


ProgressCallback = Callable[[ProgressUpdate], None]
PreviewCallback = Callable[[Preview], None]


@dataclass(frozen=True)
class WaitOutcome:
    """How a wait ended.

    Attributes:
        entry: The typed history entry (``None`` if there is none).
        status: ``None`` when the entry decides; ``"timeout"`` or ``"interrupted"`` when the
            wait ended without one (deadline, or cancelled before it ran).
        reason: A sentence for the result's message when ``status`` is set.
    """

    entry: HistoryEntry | None
    status: Literal["timeout", "interrupted"] | None = None
    reason: str | None = None


class _Progress:
    """Turns a prompt's websocket events into :class:`ProgressUpdate` s."""

    def __init__(self, prompt_id: str, node_count: int, callback: ProgressCallback) -> None:
        self.prompt_id = prompt_id
        self.node_count = node_count
        self.callback = callback
        self.cached: set[str] = set()
        self.states: dict[str, tuple[float, float, bool]] = {}
        self.last: ProgressUpdate | None = None

    def handle(self, event: object) -> None:
        if isinstance(event, ExecutionCachedEvent):
            self.cached.update(event.nodes)
            return
        node: str | None
        if isinstance(event, ProgressStateEvent):
            node = None
            for node_id, state in event.nodes.items():
                self.states[node_id] = (state.value, state.max, state.state == "finished")
                if state.state != "finished":
                    node = node_id
            value, maximum, _ = self.states.get(node or "", (0.0, 1.0, False))
        elif isinstance(event, ProgressEvent):
            node = event.node
            value, maximum = float(event.value), float(event.max)
            if node is not None:
                finished_before = self.states.get(node, (0.0, 1.0, False))[2]
                self.states[node] = (value, maximum, finished_before)
        else:
            return
        total = self._total()
        ran = [s for n, s in self.states.items() if n not in self.cached]
        done = min(total, sum(1 for _, _, finished in ran if finished))
        running = sum((v / m if m else 0.0) for v, m, finished in ran if not finished)
        overall = min(1.0, (done + running) / total)
        if self.last is not None:
            overall = max(overall, self.last.overall)  # never goes backwards
        self._emit(node, value, maximum, overall, done, total)

    def finish(self) -> None:
        """The prompt completed: make sure the caller saw ``overall == 1.0``."""
        if self.last is not None and self.last.overall >= 1.0:
            return
        total = self._total()
        self._emit(None, 1.0, 1.0, 1.0, total, total)

    def _total(self) -> int:
        return max(1, self.node_count - len(self.cached))

    def _emit(  # noqa: PLR0917 - private helper
        self, node: str | None, value: float, maximum: float, overall: float, done: int, total: int
    ) -> None:
        update = ProgressUpdate(
            prompt_id=self.prompt_id,
            node_id=node,
            value=value,
            max=maximum,
            overall=overall,
            nodes_done=done,
            nodes_total=total,
        )
        self.last = update
        _call(self.callback, update, "on_progress")


def _succeeded(outcome: WaitOutcome) -> bool:
    entry = outcome.entry
    if outcome.status is not None or entry is None:
        return False
    return entry.status.status_str == "success"


def _call(callback: Callable[[Any], None], value: object, name: str) -> None:
    try:
        callback(value)
    except Exception:
        logger.exception("%s callback raised; ignored", name)


class Tracker:
    """Waits for prompts (see the module doc). One tracker serves many threads.

    Args:
        history: For the truth about finished prompts.
        queue: To tell "still queued or running" from "lost", and to cancel.
        unreachable_grace: Seconds without any contact with the server after which a wait
            raises :class:`~witness.errors.ServerUnavailableError`.
        server: The server's URL, for messages.
    """

    def __init__(
        self,
        history: HistoryClient,
        queue: QueueClient,
        *,
        unreachable_grace: float = DEFAULT_UNREACHABLE_GRACE,
        server: str = "",
    ) -> None:
        self._history = history
        self._queue = queue
        self.unreachable_grace = unreachable_grace
        self.server = server
        # prompt id -> _REQUESTED / _DONE; bounded (the oldest are forgotten first)
        self._cancelled: OrderedDict[str, int] = OrderedDict()
        self._changed = threading.Condition(threading.Lock())

    # -- cancellation ----------------------------------------------------------------------

    def cancel(self, prompt_id: str) -> CancelResult:
        """Cancel a prompt (dequeue if pending, interrupt if running); waiters see it end
        with status ``"interrupted"`` (a waiter on a dequeued prompt is woken at once).

        Returns:
            The queue client's cancel result.
        """
        self._mark_cancelled(prompt_id, _REQUESTED)
        try:
            return self._queue.cancel(prompt_id)
        finally:
            # Also after a failure: the prompt may have been dequeued before the error.
            self._mark_cancelled(prompt_id, _DONE)

    def _mark_cancelled(self, prompt_id: str, state: int) -> None:
        with self._changed:
            self._cancelled[prompt_id] = max(state, self._cancelled.get(prompt_id, 0))
            self._cancelled.move_to_end(prompt_id)
            while len(self._cancelled) > CANCELLED_MEMORY:
                self._cancelled.popitem(last=False)
            self._changed.notify_all()

    def _cancel_state(self, prompt_id: str) -> int:
        with self._changed:
            return self._cancelled.get(prompt_id, 0)

    def _was_cancelled(self, prompt_id: str) -> bool:
        return self._cancel_state(prompt_id) > 0

    def _sleep(self, prompt_id: str, seconds: float, *, cancel_seen: bool) -> None:
        """Sleep; unless ``cancel_seen``, wake early when a cancel of this prompt completes."""
        with self._changed:
            if cancel_seen:
                self._changed.wait(seconds)  # other prompts' cancels may wake it: harmless
                return
            self._changed.wait_for(lambda: self._cancelled.get(prompt_id) == _DONE, seconds)

    def forget(self, prompt_id: str) -> None:
        """Drop bookkeeping for a finished prompt."""
        with self._changed:
            self._cancelled.pop(prompt_id, None)

    # -- waiting ---------------------------------------------------------------------------

    def wait(
        self,
        prompt_id: str,
        *,
        deadline: float,
        stream: PromptEvents | None = None,
        node_count: int = 0,
        on_progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        cancel_on_timeout: bool = False,
    ) -> WaitOutcome:
        """Wait until the prompt's history entry exists, or the deadline passes.

        Args:
            prompt_id: The prompt.
            deadline: ``time.monotonic()`` value when to give up.
            stream: The prompt's websocket events (tracked before submitting); ``None`` polls.
            node_count: Nodes in the prompt (for overall progress).
            on_progress: Called with progress updates (from websocket events; when polling,
                only the final ``overall == 1.0`` update of a completed prompt).
            on_preview: Called with preview images (websocket only).
            cancel_on_timeout: Cancel the prompt on the server when the deadline passes.

        Returns:
            The outcome: the entry, or a timeout / cancelled-before-start status. A timeout
            carries the outputs finished so far (``entry`` holds them).

        Raises:
            PromptLostError: The prompt is in neither the queue nor the history.
            ServerUnavailableError: The server stayed unreachable for longer than
                ``unreachable_grace`` (names the server and the prompt).
            TransportError: The server was unreachable when the deadline passed.
        """
        progress = _Progress(prompt_id, node_count, on_progress) if on_progress else None
        watch = _Watch(self, prompt_id)
        try:
            outcome: WaitOutcome | None = None
            if stream is not None:
                try:
                    outcome = self._wait_events(watch, stream, deadline, progress, on_preview)
                except WebSocketError as exc:
                    logger.warning(
                        "websocket unusable while waiting for %s (%s); polling instead",
                        prompt_id,
                        exc,
                    )
            if outcome is None:
                outcome = self._poll(watch, deadline)
        except WaitTimeoutError as exc:
            if cancel_on_timeout:
                self._cancel_quietly(prompt_id)
            entry = self._partial_entry(watch, cancelled=cancel_on_timeout)
            return WaitOutcome(entry=entry, status="timeout", reason=str(exc))
        if progress is not None and _succeeded(outcome):
            progress.finish()
        return outcome

    def _wait_events(
        self,
        watch: _Watch,
        stream: PromptEvents,
        deadline: float,
        progress: _Progress | None,
        on_preview: PreviewCallback | None,
    ) -> WaitOutcome | None:
        prompt_id = watch.prompt_id
        last_event = time.monotonic()
        seen_cancel = False
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                # Ask the truth once more: the end may have been missed, and a server that is
                # unreachable now must surface as such, exactly as when polling.
                found = self._check_once(watch)
                if found is not None:
                    return found
                raise WaitTimeoutError(
                    f"prompt {prompt_id} did not finish before the deadline",
                    timeout=0.0,
                    what=prompt_id,
                )
            if not seen_cancel and self._cancel_state(prompt_id) == _DONE:
                # Cancelled: a dequeued prompt sends no event at all, so look now.
                seen_cancel = True
                found = self._check(watch)
                if found is not None:
                    return found
            try:
                event = stream.get(timeout=min(remaining, EVENT_SLICE))
            except WaitTimeoutError:
                event = _SILENT  # handled below, outside the except: no misleading __context__
            if isinstance(event, ConnectionEvent):
                # The client's own news (drop, reconnect attempts), not a sign of the server's
                # life: once the socket is down, ask the truth at the outage pace.
                event = _SILENT if event.state != "connected" else event
                if event is _SILENT and not watch.down:
                    last_event = min(last_event, time.monotonic() - SILENCE_CHECK)
            if event is _SILENT:
                every = OUTAGE_CHECK if watch.down else SILENCE_CHECK
                if time.monotonic() - last_event >= every:
                    # Silence: a long node without progress, missed events, or a server that
                    # went away. Ask the truth.
                    last_event = time.monotonic()
                    found = self._check(watch)
                    if found is not None:
                        return found
                continue
            last_event = time.monotonic()
            if event is None or (isinstance(event, ExecutingEvent) and event.finished):
                return self._final_entry(watch, deadline)
            watch.contact()
            if isinstance(event, ReconnectedEvent):
                logger.info("websocket reconnected while %s ran; checking history", prompt_id)
                found = self._check(watch)
                if found is not None:
                    return found
                continue
            if isinstance(event, ExecutedEvent) and event.node and event.output is not None:
                watch.outputs[event.node] = dict(event.output)
            if progress is not None:
                progress.handle(event)
            if on_preview is not None and isinstance(event, PreviewEvent):
                preview = Preview(prompt_id, event.node_id, event.image, event.mime_type)
                _call(on_preview, preview, "on_preview")

    def _final_entry(self, watch: _Watch, deadline: float) -> WaitOutcome:
        """The completion signal came: read the entry (briefly polling if not visible yet)."""
        return self._poll(watch, deadline)

    def _poll(self, watch: _Watch, deadline: float) -> WaitOutcome:
        prompt_id = watch.prompt_id
        interval = POLL_START
        last_lost_check = time.monotonic()
        seen_cancel = False
        unreachable: TransportError | None = None
        while True:
            try:
                entry = self._history.get(prompt_id, retry=_PROBE)
                watch.contact()
                unreachable = None
                if entry is not None:
                    return WaitOutcome(entry=entry)
                now = time.monotonic()
                cancel_done = not seen_cancel and self._cancel_state(prompt_id) == _DONE
                if cancel_done or now - last_lost_check >= LOST_CHECK_EVERY:
                    seen_cancel = seen_cancel or cancel_done
                    last_lost_check = now
                    lost = self._lost_outcome(prompt_id)
                    if lost is not None:
                        return lost
            except TransportError as exc:
                unreachable = exc
            if unreachable is not None:
                watch.unreachable(unreachable)  # raises once the grace period is over
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if unreachable is not None:
                    raise unreachable
                raise WaitTimeoutError(
                    f"prompt {prompt_id} did not finish before the deadline",
                    timeout=0.0,
                    what=prompt_id,
                )
            pause = min(OUTAGE_CHECK, interval) if unreachable is not None else interval
            self._sleep(prompt_id, min(pause, remaining), cancel_seen=seen_cancel)
            interval = min(interval * POLL_GROWTH, POLL_MAX)

    def _check(self, watch: _Watch) -> WaitOutcome | None:
        """Look at history (and, if absent, the queue) once; ``None`` means still waiting
        (or the server is unreachable for now, within the grace period)."""
        try:
            return self._check_once(watch)
        except TransportError as exc:
            failure = exc
        watch.unreachable(failure)  # outside the except: the cause is the failure itself
        return None

    def _check_once(self, watch: _Watch) -> WaitOutcome | None:
        """Like :meth:`_check`, but a transport failure raises."""
        entry = self._history.get(watch.prompt_id, retry=_PROBE)
        watch.contact()
        if entry is not None:
            return WaitOutcome(entry=entry)
        return self._lost_outcome(watch.prompt_id)

    def _lost_outcome(self, prompt_id: str) -> WaitOutcome | None:
        """``None`` while the prompt is queued or running; else the outcome, or raise lost.

        The queue is read *before* the history: the server writes the history entry before
        it removes a finished prompt from the queue, so this order cannot miss a prompt
        that finishes in between.
        """
        if self._queue.get(retry=_PROBE).find(prompt_id) is not None:
            return None
        entry = self._history.get(prompt_id, retry=_PROBE)
        if entry is not None:
            return WaitOutcome(entry=entry)
        if self._was_cancelled(prompt_id):
            return WaitOutcome(
                entry=None, status="interrupted", reason="cancelled before it started running"
            )
        raise PromptLostError(
            f"prompt {prompt_id} is in neither the queue nor the history: the server was "
            "probably restarted, or the prompt was deleted",
            prompt_id=prompt_id,
        )

    def partial_entry(self, prompt_id: str) -> HistoryEntry | None:
        """The history entry of a prompt just cancelled after its deadline (the server writes
        it, with the outputs finished so far, soon after the interrupt); ``None`` if it does
        not appear within a few seconds."""
        return self._partial_entry(_Watch(self, prompt_id), cancelled=True)

    def _partial_entry(self, watch: _Watch, *, cancelled: bool) -> HistoryEntry | None:
        """What a timed-out prompt produced so far: its history entry (written by the server
        soon after an interrupt), else the outputs of its ``executed`` websocket events."""
        if cancelled:
            until = time.monotonic() + PARTIAL_WAIT
            while True:
                try:
                    entry = self._history.get(watch.prompt_id, retry=_PROBE)
                except TransportError as exc:
                    logger.debug("no partial outputs of %s: %s", watch.prompt_id, exc)
                    break
                if entry is not None:
                    return entry
                if time.monotonic() >= until:
                    break
                time.sleep(0.1)
        if not watch.outputs:
            return None
        return HistoryEntry.from_json(watch.prompt_id, {"outputs": dict(watch.outputs)})

    def _cancel_quietly(self, prompt_id: str) -> None:
        try:
            self.cancel(prompt_id)
        except WitnessError as exc:
            logger.warning("could not cancel timed-out prompt %s: %s", prompt_id, exc)


#: A websocket wait slice that brought no event.
_SILENT: Any = object()


class _Watch:
    """One wait's state: when the server last answered, the outage in progress, and the
    outputs the websocket reported so far."""

    def __init__(self, tracker: Tracker, prompt_id: str) -> None:
        self.tracker = tracker
        self.prompt_id = prompt_id
        self.last_contact = time.monotonic()
        self.failure: TransportError | None = None
        self.outputs: dict[str, dict[str, Any]] = {}

    @property
    def down(self) -> bool:
        """Whether the last contact attempt failed."""
        return self.failure is not None

    def contact(self) -> None:
        """The server answered (or sent an event)."""
        if self.failure is not None:
            logger.info(
                "server %s reachable again after %.1f s while waiting for prompt %s",
                self.tracker.server or self.failure.url,
                time.monotonic() - self.last_contact,
                self.prompt_id,
            )
            self.failure = None
        self.last_contact = time.monotonic()

    def unreachable(self, failure: TransportError) -> None:
        """A contact attempt failed: warn once per outage; raise after the grace period."""
        grace = self.tracker.unreachable_grace
        silent_for = time.monotonic() - self.last_contact
        if self.failure is None:
            logger.warning(
                "server %s unreachable while waiting for prompt %s (%s); giving up if it "
                "stays unreachable for %g s",
                self.tracker.server or failure.url,
                self.prompt_id,
                failure,
                grace,
            )
        self.failure = failure
        if silent_for < grace:
            return
        server = self.tracker.server or failure.url
        raise ServerUnavailableError(
            f"the server at {server} has been unreachable for {silent_for:.1f} s (more than "
            f"the {grace:g} s grace period) while waiting for prompt {self.prompt_id}: "
            f"{failure}; the prompt may still run if the server comes back "
            f"(Witness.wait({self.prompt_id!r}) re-attaches)",
            method=failure.method,
            url=failure.url,
            sent=failure.sent,
            prompt_id=self.prompt_id,
        ) from failure


def node_count(prompt: Mapping[str, Any]) -> int:
    """Nodes in an API prompt (for overall progress)."""
    return len(prompt)

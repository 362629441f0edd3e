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

Either way every wait has a deadline, transient connection failures are tolerated until it
passes, and a prompt that is in neither the queue nor the history (the server restarted, or
someone deleted it) raises :class:`~witness.errors.PromptLostError` instead of hanging.
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
    ExecutingEvent,
    ExecutionCachedEvent,
    PreviewEvent,
    ProgressEvent,
    ProgressStateEvent,
    ReconnectedEvent,
)
from witness.errors import (
    PromptLostError,
    TransportError,
    WaitTimeoutError,
    WebSocketError,
    WitnessError,
)

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
    """

    def __init__(self, history: HistoryClient, queue: QueueClient) -> None:
        self._history = history
        self._queue = queue
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
            The outcome: the entry, or a timeout / cancelled-before-start status.

        Raises:
            PromptLostError: The prompt is in neither the queue nor the history.
            TransportError: The server stayed unreachable until the deadline.
        """
        progress = _Progress(prompt_id, node_count, on_progress) if on_progress else None
        try:
            outcome: WaitOutcome | None = None
            if stream is not None:
                try:
                    outcome = self._wait_events(prompt_id, stream, deadline, progress, on_preview)
                except WebSocketError as exc:
                    logger.warning(
                        "websocket unusable while waiting for %s (%s); polling instead",
                        prompt_id,
                        exc,
                    )
            if outcome is None:
                outcome = self._poll(prompt_id, deadline)
        except WaitTimeoutError as exc:
            if cancel_on_timeout:
                self._cancel_quietly(prompt_id)
            return WaitOutcome(entry=None, status="timeout", reason=str(exc))
        if progress is not None and _succeeded(outcome):
            progress.finish()
        return outcome

    def _wait_events(
        self,
        prompt_id: str,
        stream: PromptEvents,
        deadline: float,
        progress: _Progress | None,
        on_preview: PreviewCallback | None,
    ) -> WaitOutcome | None:
        last_event = time.monotonic()
        seen_cancel = False
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                # Ask the truth once more: the end may have been missed, and a server that is
                # unreachable now must surface as such, exactly as when polling.
                found = self._check_once(prompt_id)
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
                found = self._check(prompt_id)
                if found is not None:
                    return found
            try:
                event = stream.get(timeout=min(remaining, EVENT_SLICE))
            except WaitTimeoutError:
                if time.monotonic() - last_event >= SILENCE_CHECK:
                    # Silence: a long node without progress, or missed events. Ask the truth.
                    last_event = time.monotonic()
                    found = self._check(prompt_id)
                    if found is not None:
                        return found
                continue
            last_event = time.monotonic()
            if event is None or (isinstance(event, ExecutingEvent) and event.finished):
                return self._final_entry(prompt_id, deadline)
            if isinstance(event, ReconnectedEvent):
                logger.info("websocket reconnected while %s ran; checking history", prompt_id)
                found = self._check(prompt_id)
                if found is not None:
                    return found
                continue
            if progress is not None:
                progress.handle(event)
            if on_preview is not None and isinstance(event, PreviewEvent):
                preview = Preview(prompt_id, event.node_id, event.image, event.mime_type)
                _call(on_preview, preview, "on_preview")

    def _final_entry(self, prompt_id: str, deadline: float) -> WaitOutcome:
        """The completion signal came: read the entry (briefly polling if not visible yet)."""
        return self._poll(prompt_id, deadline)

    def _poll(self, prompt_id: str, deadline: float) -> WaitOutcome:
        interval = POLL_START
        last_lost_check = time.monotonic()
        seen_cancel = False
        unreachable: TransportError | None = None
        while True:
            try:
                entry = self._history.get(prompt_id)
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
                logger.debug("server unreachable while waiting for %s: %s", prompt_id, exc)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if unreachable is not None:
                    raise unreachable
                raise WaitTimeoutError(
                    f"prompt {prompt_id} did not finish before the deadline",
                    timeout=0.0,
                    what=prompt_id,
                )
            self._sleep(prompt_id, min(interval, remaining), cancel_seen=seen_cancel)
            interval = min(interval * POLL_GROWTH, POLL_MAX)

    def _check(self, prompt_id: str) -> WaitOutcome | None:
        """Look at history (and, if absent, the queue) once; ``None`` means still waiting
        (or the server is unreachable for now)."""
        try:
            return self._check_once(prompt_id)
        except TransportError as exc:
            logger.debug("server unreachable while checking %s: %s", prompt_id, exc)
            return None

    def _check_once(self, prompt_id: str) -> WaitOutcome | None:
        """Like :meth:`_check`, but a transport failure raises."""
        entry = self._history.get(prompt_id)
        if entry is not None:
            return WaitOutcome(entry=entry)
        return self._lost_outcome(prompt_id)

    def _lost_outcome(self, prompt_id: str) -> WaitOutcome | None:
        """``None`` while the prompt is queued or running; else the outcome, or raise lost.

        The queue is read *before* the history: the server writes the history entry before
        it removes a finished prompt from the queue, so this order cannot miss a prompt
        that finishes in between.
        """
        if self._queue.get().find(prompt_id) is not None:
            return None
        entry = self._history.get(prompt_id)
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

    def _cancel_quietly(self, prompt_id: str) -> None:
        try:
            self.cancel(prompt_id)
        except WitnessError as exc:
            logger.warning("could not cancel timed-out prompt %s: %s", prompt_id, exc)


def node_count(prompt: Mapping[str, Any]) -> int:
    """Nodes in an API prompt (for overall progress)."""
    return len(prompt)

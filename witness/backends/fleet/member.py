"""One server of a fleet: its group clients, its websocket, its load, health and counters.

The member listens to its server's websocket (one ``clientId`` for every prompt the fleet
sends there):

* ``status`` events keep :attr:`Member.queue_remaining` current (no polling per submit);
* ``execution_start`` marks a prompt as *started* (the failover rule needs it);
* the end of a prompt (``executing`` with ``node: null``, success, error, interrupt) frees
  its slot under the concurrency cap;
* a dropped connection opens the circuit breaker; a reconnect marks ``/object_info`` stale
  (the server may have restarted with other nodes or models), so it is fetched again before
  the next routing decision.

Built on the server's :class:`~witness.backends.native.NativeBackend` (its group clients,
tracker, websocket and result assembly), so a fleet result is the same
:class:`~witness.core.results.ExecuteResult` as one server's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from witness.api_clients.types import PromptResponse
from witness.api_clients.websocket_client import PromptEvents
from witness.api_clients.ws_events import (
    ConnectionEvent,
    Event,
    ExecutingEvent,
    ExecutionErrorEvent,
    ExecutionInterruptedEvent,
    ExecutionStartEvent,
    ExecutionSuccessEvent,
    StatusEvent,
)
from witness.backends.fleet.health import CircuitBreaker
from witness.backends.fleet.stats import ServerStats, StatsCounter
from witness.backends.native import NativeBackend
from witness.core.results import ExecuteResult
from witness.core.tracking import WaitOutcome
from witness.core.validate import NodeCatalog
from witness.errors import (
    InvalidArgumentError,
    ServerUnavailableError,
    TransportError,
    WebSocketError,
    WitnessError,
)
from witness.transport.deadline import Deadline

__all__ = ["Member"]

logger = logging.getLogger(__name__)

_STARTED_MEMORY = 8192  # started prompt ids remembered per server (oldest forgotten first)
_WS_CONNECT = 5.0  # longest websocket connect at start / before a submit
_PROBE_TIMEOUT = 2.0  # one health probe


def _nothing() -> None:
    return None


class Member:
    """One ComfyUI server of a :class:`~witness.backends.fleet.Fleet`.

    Args:
        backend: The server's :class:`~witness.backends.native.NativeBackend` (its group
            clients, tracker, websocket and result assembly are used).
        weight: Relative capacity (2.0 takes twice the load of 1.0).
        max_concurrent: At most this many prompts of the fleet queued or running there.

    Attributes:
        url: The server's base URL.
        prompt, queue, history, system, files: Its group clients.
        ws: Its websocket client.
        tracker: Waits for its prompts.
        breaker: Its circuit breaker.
        counters: Its statistics.
    """

    def __init__(
        self, backend: NativeBackend, *, weight: float = 1.0, max_concurrent: int | None = None
    ) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise InvalidArgumentError("weights", f"must be positive numbers, got {weight!r}")
        if max_concurrent is not None and (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise InvalidArgumentError("max_concurrent", "must be a whole number >= 1, or None")
        self.backend = backend
        self.http = backend.http
        self.url = backend.http.settings.api_url
        self.weight = float(weight)
        self.max_concurrent = max_concurrent
        self.prompt = backend.prompt
        self.queue = backend.queue
        self.history = backend.history
        self.system = backend.system
        self.files = backend.files
        self.tracker = backend.tracker
        self.client_id = backend.client_id
        self.ws = backend.ws
        self.breaker = CircuitBreaker()
        self.counters = StatsCounter()
        self.changed = threading.Condition(threading.Lock())
        self.queue_remaining = 0
        self._recent = 0  # submits confirmed since the last status event
        self._submitting = 0
        self._outstanding: dict[str, float] = {}  # this fleet's prompts there, not ended
        self._started: OrderedDict[str, None] = OrderedDict()
        self.epoch = 0  # websocket connections made (a gap in events changes it)
        self._info_lock = threading.Lock()
        self._object_info: dict[str, Any] | None = None
        self._catalog: NodeCatalog | None = None
        self._info_stale = True
        self.orphans: set[str] = set()  # moved away while unreachable; checked on return
        #: Called (no arguments) when load, room or health changed (the fleet wakes waiters).
        self.on_change: Callable[[], None] = _nothing
        self.ws.add_callback(self._on_event)

    def __repr__(self) -> str:
        return f"Member({self.url!r}, {self.breaker.state}, load={self.load:g})"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, deadline: Deadline) -> None:
        """Connect the websocket, read the queue and ``/object_info``; a failure marks the
        server down (the health thread probes it) instead of raising."""
        try:
            with deadline.scope():
                self.ws.connect(timeout=deadline.clamp(_WS_CONNECT))
                self._read_queue()
                self.refresh_info(deadline)
        except (TransportError, WitnessError) as exc:
            logger.warning("fleet server %s unavailable at start: %s", self.url, exc)
            self.breaker.failure(str(exc))

    def close(self) -> None:
        """Stop listening to the websocket (the fleet closes backends it made)."""
        self.ws.remove_callback(self._on_event)

    # -- capability ------------------------------------------------------------------------

    def catalog(self, deadline: Deadline) -> NodeCatalog | None:
        """Its node catalog, fetched again when stale (restart); ``None`` if unreachable."""
        if self._info_stale and self.breaker.up:
            try:
                self.refresh_info(deadline)
            except TransportError as exc:
                self.failed(exc)
        return self._catalog

    def object_info(self) -> dict[str, Any] | None:
        """The last ``/object_info`` read (``None`` before the first)."""
        return self._object_info

    def refresh_info(self, deadline: Deadline) -> NodeCatalog:
        """Read ``GET /object_info`` again and rebuild the catalog."""
        with self._info_lock, deadline.scope():
            info = self.system.object_info()
            self._object_info = dict(info)
            self._catalog = NodeCatalog(self._object_info)
            self._info_stale = False
            return self._catalog

    # -- load ------------------------------------------------------------------------------

    @property
    def load(self) -> float:
        """Busy count over weight: ``max(server queue + unconfirmed submits, own in-flight)``
        plus submits being sent."""
        with self.changed:
            busy = max(self.queue_remaining + self._recent, len(self._outstanding))
            return (busy + self._submitting) / self.weight

    def has_room(self) -> bool:
        """Whether the concurrency cap allows one more prompt."""
        if self.max_concurrent is None:
            return True
        with self.changed:
            return len(self._outstanding) + self._submitting < self.max_concurrent

    def in_flight(self) -> int:
        """This fleet's prompts on the server that have not ended."""
        with self.changed:
            return len(self._outstanding)

    def started(self, prompt_id: str) -> bool:
        """Whether the server announced that the prompt began to run."""
        with self.changed:
            return prompt_id in self._started

    # -- submit and wait ---------------------------------------------------------------------

    def track(self, prompt_id: str, deadline: Deadline) -> PromptEvents | None:
        """Track a prompt's events before submitting it; ``None`` (then polling) if the
        websocket cannot be used now."""
        try:
            self.ws.ensure_connected(timeout=deadline.clamp(_WS_CONNECT))
        except WebSocketError as exc:
            logger.info("websocket of %s unusable (%s); polling instead", self.url, exc)
            return None
        return self.ws.track(prompt_id)

    def submit(
        self,
        prompt: Mapping[str, Any],
        prompt_id: str,
        deadline: Deadline,
        *,
        extra_data: Mapping[str, Any] | None = None,
    ) -> PromptResponse:
        """``POST /prompt`` with the caller's prompt id; counts it under load and cap.

        Raises:
            PromptValidationError: The server refused it.
            TransportError: Unreachable (the breaker records it).
        """
        with self.changed:
            self._submitting += 1
        try:
            with deadline.scope():
                response = self.prompt.submit(
                    prompt, client_id=self.client_id, prompt_id=prompt_id, extra_data=extra_data
                )
        except TransportError as exc:
            self.failed(exc)
            raise
        finally:
            with self.changed:
                self._submitting -= 1
                self.changed.notify_all()
            self.on_change()
        self.breaker.success()
        self.counters.add_submitted()
        with self.changed:
            self._recent += 1
            self._outstanding[prompt_id] = time.monotonic()
        return response

    def adopt(self, prompt_id: str) -> None:
        """Count a prompt submitted earlier (re-attached) as in flight here."""
        with self.changed:
            self._outstanding.setdefault(prompt_id, time.monotonic())

    def wait_slice(
        self,
        prompt_id: str,
        until: float,
        stream: PromptEvents | None,
        *,
        node_count: int,
        on_progress: Any = None,
        on_preview: Any = None,
    ) -> WaitOutcome:
        """Wait for the prompt until ``until`` (monotonic); status ``"timeout"`` when the
        slice ends first.

        Raises:
            PromptLostError: In neither the queue nor the history.
            TransportError: Unreachable at the end of the slice (the breaker records it).
        """
        try:
            outcome = self.tracker.wait(
                prompt_id,
                deadline=until,
                stream=stream,
                node_count=node_count,
                on_progress=on_progress,
                on_preview=on_preview,
            )
        except TransportError as exc:
            self.failed(exc)
            raise
        if outcome.status != "timeout":
            self.breaker.success()
        return outcome

    def ended(self, prompt_id: str, result: ExecuteResult | None) -> None:
        """The prompt is over here (a result, lost, or moved): free its slot, count it."""
        with self.changed:
            submitted = self._outstanding.pop(prompt_id, None)
            self._started.pop(prompt_id, None)
            self.changed.notify_all()
        self.on_change()
        self.tracker.forget(prompt_id)
        if result is not None and result.status != "timeout":
            latency = result.duration
            if latency is None:
                latency = time.monotonic() - submitted if submitted is not None else 0.0
            self.counters.add_result(result.status, latency)

    # -- health ------------------------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        """Record a failure to reach the server (opens the breaker)."""
        if self.breaker.failure(str(exc)):
            logger.warning("fleet server %s marked down: %s", self.url, exc)
            with self.changed:
                self.changed.notify_all()
            self.on_change()

    def probe(self) -> bool:
        """One health probe of a down server (``GET /system_stats``); on an answer the
        server is brought back: queue re-read, ``/object_info`` marked stale, and prompts
        moved away while it was unreachable removed from its queue.

        Returns:
            Whether it answered.
        """
        try:
            with Deadline.after(_PROBE_TIMEOUT).scope():
                self.system.system_stats()
                self._read_queue()
                self._reconcile_orphans()
        except TransportError as exc:
            self.breaker.probe_failed(str(exc))
            return False
        self._info_stale = True
        if self.breaker.success():
            logger.info("fleet server %s is back up", self.url)
        with self.changed:
            self.changed.notify_all()
        self.on_change()
        return True

    def _read_queue(self) -> None:
        state = self.queue.get()
        with self.changed:
            self.queue_remaining = len(state)
            self._recent = 0

    def _reconcile_orphans(self) -> None:
        """Prompts moved elsewhere while this server was unreachable must not run here too:
        still pending → deleted; found in its history → logged (it ran before it died)."""
        orphans, self.orphans = set(self.orphans), set()
        if not orphans:
            return
        pending = [pid for pid in orphans if self.queue.get().find(pid) is not None]
        if pending:
            self.queue.delete(pending)
            logger.warning("removed %d moved prompts from the queue of %s", len(pending), self.url)
        for pid in orphans - set(pending):
            if self.history.get(pid) is not None:
                logger.error("prompt %s moved away from %s had also run there", pid, self.url)

    def snapshot(self) -> ServerStats:
        """Its statistics now."""
        with self.changed:
            depth = max(self.queue_remaining + self._recent, len(self._outstanding))
            depth += self._submitting
            in_flight = len(self._outstanding)
        return self.counters.snapshot(
            self.url,
            state=self.breaker.state,
            queue_depth=depth,
            in_flight=in_flight,
            downs=self.breaker.downs,
        )

    # -- websocket events (receive thread) -----------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StatusEvent):
            if event.queue_remaining is not None:
                with self.changed:
                    self.queue_remaining = event.queue_remaining
                    self._recent = 0
        elif isinstance(event, ConnectionEvent):
            self._on_connection(event)
        elif isinstance(event, ExecutionStartEvent):
            if event.prompt_id is not None:
                with self.changed:
                    self._started[event.prompt_id] = None
                    while len(self._started) > _STARTED_MEMORY:
                        self._started.popitem(last=False)
        elif event.prompt_id is not None and (
            isinstance(
                event, ExecutionSuccessEvent | ExecutionErrorEvent | ExecutionInterruptedEvent
            )
            or (isinstance(event, ExecutingEvent) and event.finished)
        ):
            with self.changed:
                if self._outstanding.pop(event.prompt_id, None) is not None:
                    # the server's next status event will say the same; until then
                    self.queue_remaining = max(0, self.queue_remaining - 1)
                self.changed.notify_all()
            self.on_change()

    def _on_connection(self, event: ConnectionEvent) -> None:
        if event.state == "connected":
            with self.changed:
                self.epoch += 1
            if event.attempt > 0:
                self._info_stale = True  # a reconnect: the server may have restarted
        elif event.state in {"disconnected", "reconnecting"}:
            self.failed(ConnectionError(f"websocket dropped: {event.error or 'closed'}"))

    @staticmethod
    def not_sent(exc: TransportError) -> bool:
        """Whether a failed submit certainly never reached the server."""
        sent = getattr(exc, "sent", None)
        if isinstance(sent, bool):
            return not sent
        return isinstance(exc, ServerUnavailableError) and "refused" in str(exc).lower()

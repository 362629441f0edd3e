"""Per-server counters of a fleet, readable at any time (:meth:`Fleet.stats`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["ServerStats", "StatsCounter"]


@dataclass(frozen=True)
class ServerStats:
    """A snapshot of one server's counters.

    Attributes:
        server: The server's URL.
        state: ``"up"`` or ``"down"``.
        submitted: Prompts accepted by the server (resubmissions count on the new server).
        done: Prompts that ended with a result (completed, failed or interrupted).
        completed: Of ``done``, those that completed.
        failed: Of ``done``, those that failed (a node raised) or were interrupted.
        lost: Prompts that were running when the server died (reported or re-run).
        moved: Prompts not yet started when the server died, resubmitted elsewhere.
        mean_latency: Mean seconds from submit to result over ``done`` (``None`` before any).
        queue_depth: The routing load: the server's queue (running + pending, from its
            websocket ``status`` events) plus submits in flight.
        in_flight: Prompts of this fleet on the server that have not ended yet.
        downs: Times the circuit breaker opened.
    """

    server: str
    state: str
    submitted: int
    done: int
    completed: int
    failed: int
    lost: int
    moved: int
    mean_latency: float | None
    queue_depth: int
    in_flight: int
    downs: int


class StatsCounter:
    """The mutable counters behind :class:`ServerStats` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.lost = 0
        self.moved = 0
        self._latency_total = 0.0

    def add_submitted(self) -> None:
        """One prompt accepted."""
        with self._lock:
            self.submitted += 1

    def add_result(self, status: str, latency: float) -> None:
        """One prompt ended with ``status`` after ``latency`` seconds."""
        with self._lock:
            if status == "completed":
                self.completed += 1
            else:
                self.failed += 1
            self._latency_total += max(0.0, latency)

    def add_lost(self) -> None:
        """One running prompt lost with its server."""
        with self._lock:
            self.lost += 1

    def add_moved(self) -> None:
        """One not-started prompt moved to another server."""
        with self._lock:
            self.moved += 1

    def snapshot(
        self, server: str, *, state: str, queue_depth: int, in_flight: int, downs: int
    ) -> ServerStats:
        """The counters now."""
        with self._lock:
            done = self.completed + self.failed
            return ServerStats(
                server=server,
                state=state,
                submitted=self.submitted,
                done=done,
                completed=self.completed,
                failed=self.failed,
                lost=self.lost,
                moved=self.moved,
                mean_latency=self._latency_total / done if done else None,
                queue_depth=queue_depth,
                in_flight=in_flight,
                downs=downs,
            )

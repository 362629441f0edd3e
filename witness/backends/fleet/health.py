"""Per-server health: a circuit breaker whose probes back off with the one retry policy.

States: ``up`` (gets prompts), ``down`` (gets nothing; a probe is due at :attr:`next_probe`).
A server goes down on ``threshold`` failures in a row (a refused or timed-out request, a
dropped websocket); the fleet's health thread then probes it (``GET /system_stats``) at
delays from :meth:`RetryPolicy.delay <witness.transport.retry.RetryPolicy.delay>` (growing,
with jitter, capped) and brings it back up at the first answer.
"""

from __future__ import annotations

import threading
import time
from typing import Literal

from witness.transport.retry import RetryPolicy

__all__ = ["DEFAULT_PROBE_POLICY", "CircuitBreaker", "HealthState"]

HealthState = Literal["up", "down"]

#: Probe spacing of a down server: 0.25 s, 0.5 s, 1 s ... capped at 5 s (jittered).
DEFAULT_PROBE_POLICY = RetryPolicy(retries=0, backoff=0.25, max_backoff=5.0, jitter=0.3)


class CircuitBreaker:
    """Failure counting and probe scheduling for one server (thread-safe).

    Args:
        threshold: Consecutive failures that open the circuit (mark the server down).
        policy: Spacing of the probes while down.
    """

    def __init__(self, *, threshold: int = 1, policy: RetryPolicy = DEFAULT_PROBE_POLICY) -> None:
        self.threshold = max(1, threshold)
        self.policy = policy
        self._lock = threading.Lock()
        self._failures = 0
        self._state: HealthState = "up"
        self._probes = 0
        self._next_probe = 0.0
        self.last_error: str | None = None
        self.downs = 0

    @property
    def state(self) -> HealthState:
        """``"up"`` or ``"down"``."""
        with self._lock:
            return self._state

    @property
    def up(self) -> bool:
        """Whether the server may get prompts."""
        return self.state == "up"

    @property
    def next_probe(self) -> float:
        """``time.monotonic()`` when the next probe of a down server is due."""
        with self._lock:
            return self._next_probe

    def failure(self, reason: str) -> bool:
        """Record a failure; returns ``True`` when this opened the circuit."""
        with self._lock:
            self.last_error = reason
            self._failures += 1
            if self._state == "up" and self._failures >= self.threshold:
                self._state = "down"
                self.downs += 1
                self._probes = 0
                self._next_probe = time.monotonic() + self.policy.delay(0)
                return True
            return False

    def success(self) -> bool:
        """Record an answer; returns ``True`` when this closed the circuit (back up)."""
        with self._lock:
            self._failures = 0
            if self._state == "down":
                self._state = "up"
                return True
            return False

    def probe_failed(self, reason: str) -> None:
        """A probe got no answer: schedule the next one further out."""
        with self._lock:
            self.last_error = reason
            self._probes += 1
            self._next_probe = time.monotonic() + self.policy.delay(self._probes)

    def probe_due(self, now: float | None = None) -> bool:
        """Whether a down server should be probed now."""
        with self._lock:
            current = time.monotonic() if now is None else now
            return self._state == "down" and current >= self._next_probe

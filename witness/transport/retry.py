"""The one retry policy of witness: which failures are retried, how often, how long between.

Every transport user (the native group clients, RunningHub, the v2 API, fetches, the
websocket reconnects) retries through :class:`RetryPolicy`; nobody writes a backoff loop of
its own. Retries are only for requests that are safe to repeat (idempotent, or never sent),
bounded in count, spaced by exponential backoff with jitter, honour ``Retry-After``, and never
sleep past the call's :class:`~witness.transport.deadline.Deadline`.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from witness.errors import RequestTimeoutError, TransportError
from witness.transport.deadline import Deadline

__all__ = ["IDEMPOTENT_METHODS", "RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses that mean "try again later" (the server did not act on the request).
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How a request is retried.

    Attributes:
        retries: Extra attempts after the first (0: never retry).
        backoff: Base delay in seconds; attempt ``n`` waits ``backoff * 2**n``, capped.
        max_backoff: The cap of one delay.
        jitter: Fraction of the delay randomised away (0.5: between 50 % and 100 %).
        statuses: HTTP statuses that are retried (for requests safe to repeat).
        max_retry_after: The longest ``Retry-After`` honoured (a longer one is shortened).
        retry_unsent: Also retry a request that is not safe to repeat when it provably never
            left (``TransportError.sent`` is false: refused, DNS, connect timeout).
        retry_read_timeouts: Retry a safe request whose answer did not come in time (off by
            default: the server may be working on it, and each retry waits the read timeout
            again).
        retry_if: A predicate on a successful-looking response that makes it retried anyway
            (an API that answers "busy, try later" inside a 200 body, like RunningHub's code
            421). The caller vouches that such an answer means the request was not acted on.
    """

    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    statuses: frozenset[int] = RETRY_STATUSES
    max_retry_after: float = 60.0
    retry_unsent: bool = False
    retry_read_timeouts: bool = False
    retry_if: Callable[[Any], bool] | None = None

    def attempts(self, *, safe: bool) -> int:
        """How many attempts a request gets (1 when it is not safe to repeat)."""
        return 1 + (self.retries if safe else 0)

    def retries_error(self, error: TransportError, *, safe: bool) -> bool:
        """Whether a request that failed with ``error`` may be sent again.

        Args:
            error: The typed failure (its ``sent`` decides for unsafe requests).
            safe: Whether the request is safe to repeat (idempotent).
        """
        if not error.sent:
            return safe or self.retry_unsent
        if isinstance(error, RequestTimeoutError) and error.phase == "read":
            return safe and self.retry_read_timeouts
        return safe

    def retries_response(self, status: int, response: Any, *, safe: bool) -> bool:
        """Whether an answer means "try again": a retried status (safe requests only), or
        :attr:`retry_if` says so."""
        if safe and status in self.statuses:
            return True
        return self.retry_if is not None and bool(self.retry_if(response))

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry ``attempt + 1`` (``attempt`` counts from 0)."""
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            return min(hinted, self.max_retry_after)
        base: float = min(self.max_backoff, self.backoff * float(2**attempt))
        return base * (1.0 - self.jitter * random.random())  # noqa: S311 - jitter, not crypto

    def sleep(
        self,
        attempt: int,
        deadline: Deadline | None,
        retry_after: str | None = None,
        *,
        sleeper: Callable[[float], None] | None = None,
    ) -> float | None:
        """Wait before the next attempt; ``None`` (no wait) when the deadline leaves no room.

        Returns:
            The seconds waited, or ``None`` when the caller should give up instead.
        """
        wanted = self.delay(attempt, retry_after)
        if deadline is not None:
            left = deadline.remaining()
            if left is not None and left <= wanted:
                return None
        (sleeper if sleeper is not None else time.sleep)(wanted)
        return wanted


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())

"""One deadline per call, passed down to every stage and every request.

A :class:`Deadline` is created once (``execute(timeout=T)`` makes one of ``T`` seconds) and
handed to each stage: loading, conversion, validation, upload, submit, wait, assembly. Each
request clamps its own connect/read timeouts to :meth:`Deadline.remaining`, so a silent,
slow or dead server can never stretch a call beyond its limit. No stage invents its own
time limit; a stage that needs a shorter one asks for :meth:`Deadline.clamp`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from witness.errors import WitnessTimeoutError

__all__ = ["Deadline", "current_deadline"]

_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "witness_deadline", default=None
)

#: The smallest timeout handed to a socket (a zero or negative one means "block" to some APIs).
MIN_TIMEOUT = 0.05


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time by which a call must return or raise.

    Attributes:
        seconds: The limit the call was given (``None``: no limit).
        at: ``time.monotonic()`` value of the deadline (``None``: no limit).
        started: ``time.monotonic()`` when the deadline was made.

    Example:
        >>> d = Deadline.after(3.0)
        >>> d.clamp(30.0) <= 3.0
        True
    """

    seconds: float | None
    at: float | None
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """A deadline ``seconds`` from now (``None``: never)."""
        now = time.monotonic()
        if seconds is None:
            return cls(None, None, now)
        return cls(float(seconds), now + float(seconds), now)

    @classmethod
    def never(cls) -> Deadline:
        """No limit (requests keep their configured timeouts)."""
        return cls.after(None)

    @classmethod
    def at_monotonic(cls, at: float | None, *, started: float | None = None) -> Deadline:
        """A deadline at an absolute ``time.monotonic()`` value."""
        now = time.monotonic() if started is None else started
        if at is None:
            return cls(None, None, now)
        return cls(at - now, at, now)

    def remaining(self) -> float | None:
        """Seconds left (never negative); ``None`` when there is no limit."""
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())

    def elapsed(self) -> float:
        """Seconds since the deadline was made."""
        return time.monotonic() - self.started

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.at is not None and time.monotonic() >= self.at

    def clamp(self, timeout: float | None) -> float | None:
        """``timeout`` shortened to what is left (at least :data:`MIN_TIMEOUT`).

        ``None`` in, no limit: the time left (or ``None`` when there is no deadline).
        """
        left = self.remaining()
        if left is None:
            return timeout
        left = max(MIN_TIMEOUT, left)
        return left if timeout is None else min(float(timeout), left)

    def check(self, stage: str) -> None:
        """Raise :class:`~witness.errors.WitnessTimeoutError` naming ``stage`` if expired."""
        if self.expired():
            raise self.error(stage)

    def error(self, stage: str, detail: str = "") -> WitnessTimeoutError:
        """The timeout error for ``stage`` (not raised)."""
        limit = self.seconds if self.seconds is not None else self.elapsed()
        text = f"timed out after {limit:g} s during {stage}"
        if detail:
            text += f" ({detail})"
        return WitnessTimeoutError(text, timeout=limit, stage=stage)

    @contextmanager
    def scope(self) -> Iterator[Deadline]:
        """Make this the deadline of every request sent from this thread/context inside the
        ``with`` block that is not given one explicitly (see :func:`current_deadline`).

        A nested scope can only shorten the limit: the earlier of the two deadlines applies.
        """
        outer = _CURRENT.get()
        inner = self if outer is None or outer.at is None else self.earliest(outer)
        token = _CURRENT.set(inner)
        try:
            yield inner
        finally:
            _CURRENT.reset(token)

    def earliest(self, other: Deadline) -> Deadline:
        """Whichever of the two deadlines comes first."""
        if other.at is None:
            return self
        if self.at is None or other.at < self.at:
            return other
        return self


def current_deadline() -> Deadline | None:
    """The deadline of the innermost :meth:`Deadline.scope` active here, else ``None``."""
    return _CURRENT.get()

"""Settings of the RunningHub cloud API (:class:`RunningHubSettings`).

Resolved like :class:`~witness.config.settings.Settings` (the same resolver): explicit argument
> process environment > ``.env`` file > default. ``RUNNINGHUB_API_KEY`` is the only source of
the key: the ComfyUI key is never sent to RunningHub.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from witness.config.settings import (
    _build,
    _check_http_url,
    _parse_float,
    _parse_int,
    _positive,
    _resolve,
)
from witness.errors import ConfigError
from witness.transport.retry import RetryPolicy

__all__ = [
    "DEFAULT_RUNNINGHUB_URL",
    "RUNNINGHUB_ENV_VARS",
    "RUNNINGHUB_INSTANCE_TYPES",
    "RunningHubSettings",
]

#: The cap of one retry delay (RunningHub asks for patience when its queue is full).
MAX_BACKOFF = 30.0

DEFAULT_RUNNINGHUB_URL = "https://www.runninghub.ai"
RUNNINGHUB_INSTANCE_TYPES = ("default", "plus")

# field name -> environment variable names, first found wins
RUNNINGHUB_ENV_VARS: dict[str, tuple[str, ...]] = {
    "api_key": ("RUNNINGHUB_API_KEY",),
    "base_url": ("RUNNINGHUB_BASE_URL",),
    "timeout": ("RUNNINGHUB_TIMEOUT",),
    "request_timeout": ("RUNNINGHUB_REQUEST_TIMEOUT",),
    "connect_timeout": ("RUNNINGHUB_CONNECT_TIMEOUT",),
    "retry_count": ("RUNNINGHUB_RETRY_COUNT",),
    "retry_backoff": ("RUNNINGHUB_RETRY_BACKOFF",),
    "instance_type": ("RUNNINGHUB_INSTANCE_TYPE",),
    "poll_interval": ("RUNNINGHUB_POLL_INTERVAL",),
}

_RUNNINGHUB_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "timeout": _parse_float,
    "request_timeout": _parse_float,
    "connect_timeout": _parse_float,
    "retry_count": _parse_int,
    "retry_backoff": _parse_float,
    "poll_interval": _parse_float,
    "instance_type": lambda _n, r: r.strip().lower(),
}


@dataclass(frozen=True)
class RunningHubSettings:
    """Everything needed to talk to the RunningHub cloud API.

    Priority in :meth:`from_env`: explicit argument > process environment > ``.env`` > default.
    ``RUNNINGHUB_API_KEY`` is the only source of the key: the ComfyUI key is never sent to
    RunningHub.

    Environment variables: ``RUNNINGHUB_API_KEY``, ``RUNNINGHUB_BASE_URL``,
    ``RUNNINGHUB_TIMEOUT`` (the overall task deadline, not the per-request timeout),
    ``RUNNINGHUB_REQUEST_TIMEOUT``, ``RUNNINGHUB_CONNECT_TIMEOUT``, ``RUNNINGHUB_RETRY_COUNT``,
    ``RUNNINGHUB_RETRY_BACKOFF``, ``RUNNINGHUB_INSTANCE_TYPE``, ``RUNNINGHUB_POLL_INTERVAL``.

    Attributes:
        api_key: The RunningHub API key (never shown in ``repr`` or logs).
        base_url: ``https://www.runninghub.ai`` (or ``https://www.runninghub.cn``).
        timeout: Overall deadline in seconds for one task (create, queue, run, outputs).
            Every wait has a deadline, so ``None`` is not allowed.
        request_timeout: Read timeout in seconds for one HTTP request.
        connect_timeout: Connect timeout in seconds for one HTTP request.
        retry_count: How many times a transient failure (421 queue full, 5xx, connection
            errors) is retried. A task creation whose answer was lost is never resent.
        retry_backoff: First retry delay in seconds; doubles on every retry (capped at 30 s).
        instance_type: ``None`` (RunningHub's default), ``"default"`` or ``"plus"`` (48 GB).
        poll_interval: Seconds between two task-status polls.
    """

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_RUNNINGHUB_URL
    timeout: float = 600.0
    request_timeout: float = 60.0
    connect_timeout: float = 10.0
    retry_count: int = 3
    retry_backoff: float = 1.0
    instance_type: str | None = None
    poll_interval: float = 2.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise ConfigError("api_key", "<hidden>", "must be a non-empty string")
        set_(self, "api_key", self.api_key.strip())
        if not isinstance(self.base_url, str):
            raise ConfigError("base_url", self.base_url, "must be a string URL")
        set_(self, "base_url", _check_http_url("base_url", self.base_url, ("http", "https")))
        if self.timeout is None:
            raise ConfigError("timeout", None, "every wait needs a deadline; give seconds")
        for name in ("timeout", "request_timeout", "connect_timeout", "poll_interval"):
            set_(self, name, _positive(name, getattr(self, name)))
        retry = self.retry_count
        if isinstance(retry, bool) or not isinstance(retry, int) or not 0 <= retry <= 20:
            raise ConfigError("retry_count", retry, "must be a whole number from 0 to 20")
        backoff = self.retry_backoff
        if (
            isinstance(backoff, bool)
            or not isinstance(backoff, int | float)
            or not math.isfinite(backoff)
            or backoff < 0
        ):
            raise ConfigError("retry_backoff", backoff, "must be a number >= 0")
        set_(self, "retry_backoff", float(backoff))
        if self.instance_type is not None and self.instance_type not in RUNNINGHUB_INSTANCE_TYPES:
            raise ConfigError(
                "instance_type",
                self.instance_type,
                "expected None, " + " or ".join(repr(t) for t in RUNNINGHUB_INSTANCE_TYPES),
            )

    def __repr__(self) -> str:
        return (
            f"RunningHubSettings(api_key='***', base_url={self.base_url!r}, "
            f"timeout={self.timeout}, request_timeout={self.request_timeout}, "
            f"connect_timeout={self.connect_timeout}, retry_count={self.retry_count}, "
            f"retry_backoff={self.retry_backoff}, instance_type={self.instance_type!r}, "
            f"poll_interval={self.poll_interval})"
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in messages, logs or reprs."""
        return (self.api_key,)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`~witness.transport.retry.RetryPolicy` of every RunningHub call."""
        return RetryPolicy(
            retries=self.retry_count,
            backoff=self.retry_backoff,
            max_backoff=MAX_BACKOFF,
            jitter=0.25,
        )

    def with_overrides(self, **changes: Any) -> RunningHubSettings:
        """Return a copy with some fields replaced (validated like the constructor)."""
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        dotenv_path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> RunningHubSettings:
        """Build RunningHub settings from arguments, the environment and optionally a ``.env``.

        An explicit argument always wins, including one equal to the default (an explicit
        ``retry_count=3`` beats ``RUNNINGHUB_RETRY_COUNT=7``) and a falsy one
        (``retry_count=0``). ``None`` counts as "not given".

        Args:
            dotenv_path: A ``.env`` file to read (it never changes ``os.environ``).
            environ: The environment to read; defaults to ``os.environ``.
            **overrides: Explicit values for the fields of this class.

        Returns:
            The resolved, validated settings.

        Raises:
            ConfigError: No key anywhere, an unknown setting, or an invalid value (the message
                names the environment variable when the value came from one).
        """
        values, sources = _resolve(
            cls,
            RUNNINGHUB_ENV_VARS,
            _RUNNINGHUB_PARSERS,
            dotenv_path=dotenv_path,
            environ=environ,
            overrides=overrides,
        )
        if "api_key" not in values:
            raise ConfigError(
                "RUNNINGHUB_API_KEY", None, "no RunningHub API key given (argument or environment)"
            )
        return _build(cls, values, sources)

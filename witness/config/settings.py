"""Connection settings for witness.

Priority, highest first: explicit argument > process environment > ``.env`` file > default.

``Settings(...)`` uses only its arguments and the defaults. ``Settings.from_env(...)`` layers
the environment (and, when asked, a ``.env`` file) under explicit overrides. Nothing is read at
import time, and there is no module-level settings object.

Environment variables (all optional):

=========================== ==================================================================
``COMFYUI_API_URL``          server base URL (``COMFYUI_BASE_URL`` is accepted too)
``COMFYUI_WS_URL``           websocket URL (default: derived from the API URL + ``/ws``)
``COMFYUI_API_KEY``          sent as ``Authorization: Bearer <key>``
``COMFYUI_COOKIES``          ``k=v; k2=v2`` or a JSON object
``COMFYUI_HEADERS``          extra headers, ``Name: value; Name2: value`` or a JSON object
``COMFYUI_QUERY_PARAMS``     extra query parameters for every request and the websocket
                             (``token=abc&x=y`` or a JSON object), e.g. for ``?token=`` proxies
``COMFYUI_TIMEOUT``          read timeout in seconds (default 30)
``COMFYUI_CONNECT_TIMEOUT``  connect timeout in seconds (default 5)
``COMFYUI_RETRIES``          retries for idempotent requests (default 3)
``COMFYUI_RETRY_BACKOFF``    first backoff delay in seconds (default 0.25, doubles each time)
``COMFYUI_USER``             ``comfy-user`` header for multi-user servers
``COMFYUI_VERIFY_TLS``       ``true``/``false`` or a path to a CA bundle
=========================== ==================================================================
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from witness.errors import ConfigError
from witness.transport.retry import RetryPolicy

__all__ = ["ENV_VARS", "Settings"]

DEFAULT_API_URL = "http://127.0.0.1:8188"

# field name -> environment variable names, first found wins
ENV_VARS: dict[str, tuple[str, ...]] = {
    "api_url": ("COMFYUI_API_URL", "COMFYUI_BASE_URL"),
    "ws_url": ("COMFYUI_WS_URL",),
    "api_key": ("COMFYUI_API_KEY",),
    "cookies": ("COMFYUI_COOKIES",),
    "headers": ("COMFYUI_HEADERS",),
    "query_params": ("COMFYUI_QUERY_PARAMS",),
    "read_timeout": ("COMFYUI_TIMEOUT",),
    "connect_timeout": ("COMFYUI_CONNECT_TIMEOUT",),
    "retries": ("COMFYUI_RETRIES",),
    "retry_backoff": ("COMFYUI_RETRY_BACKOFF",),
    "user": ("COMFYUI_USER",),
    "verify": ("COMFYUI_VERIFY_TLS",),
}


def _parse_float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, raw, "not a number") from None


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(name, raw, "not a whole number") from None


def _parse_pairs(name: str, raw: str, sep: str, kv: str) -> dict[str, str]:
    """Parse ``k=v; k2=v2`` (or a JSON object) into a dict."""
    text = raw.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(name, "<hidden>", f"not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise ConfigError(name, "<hidden>", "JSON must be an object")
        return {str(k): str(v) for k, v in value.items()}
    if sep == "&":
        return dict(parse_qsl(text, keep_blank_values=True))
    out: dict[str, str] = {}
    for part in text.split(sep):
        if not part.strip():
            continue
        if kv not in part:
            raise ConfigError(
                name, "<hidden>", f"expected 'name{kv}value' pairs separated by {sep!r}"
            )
        key, value = part.split(kv, 1)
        out[key.strip()] = value.strip()
    return out


def _parse_verify(name: str, raw: str) -> bool | str:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    if Path(raw).exists():
        return raw
    raise ConfigError(name, raw, "expected true/false or the path of an existing CA bundle")


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "cookies": lambda n, r: _parse_pairs(n, r, ";", "="),
    "headers": lambda n, r: _parse_pairs(n, r, ";", ":"),
    "query_params": lambda n, r: _parse_pairs(n, r, "&", "="),
    "read_timeout": _parse_float,
    "connect_timeout": _parse_float,
    "retries": _parse_int,
    "retry_backoff": _parse_float,
    "verify": _parse_verify,
}


def _check_http_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in schemes:
        raise ConfigError(
            name, value, f"unknown or missing scheme; expected one of {', '.join(schemes)}"
        )
    if not parts.hostname:
        raise ConfigError(name, value, "no host name")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(name, value, "the port is not a number from 0 to 65535") from None
    if parts.query or parts.fragment:
        raise ConfigError(name, value, "must not contain a query or fragment")
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path.rstrip("/"), "", ""))


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, value, "must be a number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, value, "must be a positive, finite number of seconds")
    return float(value)


@dataclass(frozen=True)
class Settings:
    """Everything needed to talk to one ComfyUI server.

    Attributes:
        api_url: Base URL of the server, e.g. ``http://127.0.0.1:8188`` (a path prefix such as
            ``https://host/comfy`` is kept).
        ws_url: Websocket URL; derived from ``api_url`` when unset (http→ws, https→wss,
            path + ``/ws``).
        api_key: Sent as ``Authorization: Bearer <key>`` (what reverse proxies and
            ComfyUI-Login expect). Never shown in ``repr`` or logs.
        cookies: Cookies sent with every request and the websocket handshake.
        headers: Extra headers sent with every request and the websocket handshake.
        query_params: Extra query parameters for every request and the websocket URL.
        connect_timeout: Seconds to wait for a TCP/TLS connection.
        read_timeout: Seconds to wait for the server to answer (per read).
        retries: How many times an idempotent request is retried after a connection failure
            or a 502/503/504 answer.
        retry_backoff: First retry delay in seconds; doubles each retry (capped at 8 s).
        user: Value of the ``comfy-user`` header for servers started with ``--multi-user``.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    """

    api_url: str = DEFAULT_API_URL
    ws_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    cookies: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    query_params: Mapping[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    retry_backoff: float = 0.25
    user: str | None = None
    verify: bool | str = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.api_url, str):
            raise ConfigError("api_url", self.api_url, "must be a string URL")
        set_(self, "api_url", _check_http_url("api_url", self.api_url, ("http", "https")))
        if self.ws_url is not None:
            if not isinstance(self.ws_url, str):
                raise ConfigError("ws_url", self.ws_url, "must be a string URL")
            set_(self, "ws_url", _check_http_url("ws_url", self.ws_url, ("ws", "wss")))
        set_(self, "connect_timeout", _positive("connect_timeout", self.connect_timeout))
        set_(self, "read_timeout", _positive("read_timeout", self.read_timeout))
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError("retries", self.retries, "must be a whole number >= 0")
        if self.retries > 20:
            raise ConfigError("retries", self.retries, "more than 20 retries is not allowed")
        if (
            isinstance(self.retry_backoff, bool)
            or not isinstance(self.retry_backoff, int | float)
            or not math.isfinite(self.retry_backoff)
            or self.retry_backoff < 0
        ):
            raise ConfigError("retry_backoff", self.retry_backoff, "must be a number >= 0")
        for name in ("cookies", "headers", "query_params"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ConfigError(name, "<hidden>", "must be a mapping of names to strings")
            set_(self, name, {str(k): str(v) for k, v in value.items()})
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ConfigError("api_key", "<hidden>", "must be a non-empty string")
        if self.user is not None and not isinstance(self.user, str):
            raise ConfigError("user", self.user, "must be a string")
        if not isinstance(self.verify, bool | str):
            raise ConfigError("verify", self.verify, "must be a bool or a CA bundle path")

    def __repr__(self) -> str:
        key = "'***'" if self.api_key else "None"
        return (
            f"Settings(api_url={self.api_url!r}, ws_url={self.websocket_url!r}, api_key={key}, "
            f"cookies={sorted(self.cookies)}, headers={sorted(self.headers)}, "
            f"query_params={sorted(self.query_params)}, connect_timeout={self.connect_timeout}, "
            f"read_timeout={self.read_timeout}, retries={self.retries}, user={self.user!r}, "
            f"verify={self.verify!r})"
        )

    @property
    def websocket_url(self) -> str:
        """The websocket endpoint: ``ws_url`` if set, else derived from ``api_url``."""
        if self.ws_url:
            return self.ws_url
        parts = urlsplit(self.api_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path + "/ws", "", ""))

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts in the form ``requests`` takes."""
        return (self.connect_timeout, self.read_timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`~witness.transport.retry.RetryPolicy` of this connection: ``retries``
        and ``retry_backoff``, one delay capped at 8 s."""
        return RetryPolicy(retries=self.retries, backoff=self.retry_backoff, max_backoff=8.0)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in messages, logs or reprs."""
        values = [self.api_key or ""]
        values.extend(self.cookies.values())
        for name, value in self.headers.items():
            if name.lower() in {"authorization", "cookie", "x-api-key", "proxy-authorization"}:
                values.append(value)
        values.extend(self.query_params.values())
        return tuple(v for v in values if len(v) >= 4)

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields replaced (validated like the constructor)."""
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        dotenv_path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from arguments, the environment and optionally a ``.env`` file.

        Args:
            dotenv_path: A ``.env`` file to read (with python-dotenv). ``None`` reads no file.
                The file never changes ``os.environ``.
            environ: The environment to read; defaults to ``os.environ``.
            **overrides: Explicit values; they beat everything else. ``None`` counts as
                "not given".

        Returns:
            The resolved, validated settings.

        Raises:
            ConfigError: A value is invalid; the message names the variable and the value.
        """
        values, sources = _resolve(
            cls, ENV_VARS, _PARSERS, dotenv_path=dotenv_path, environ=environ, overrides=overrides
        )
        return _build(cls, values, sources)


def _lookup(
    layers: list[Mapping[str, str | None]], names: tuple[str, ...]
) -> tuple[str, str] | None:
    for layer in layers:
        for var in names:
            raw = layer.get(var)
            if raw is not None and raw != "":
                return var, raw
    return None


_SECRET_FIELDS = frozenset({"api_key"})
_S = TypeVar("_S")


def _resolve(
    cls: type[Any],
    env_vars: Mapping[str, tuple[str, ...]],
    parsers: Mapping[str, Callable[[str, str], Any]],
    *,
    dotenv_path: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None,
    overrides: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Layer explicit overrides > environment > ``.env`` for the fields of ``cls``.

    Returns:
        The field values found, and for each one read from a variable, that variable's name.
    """
    unknown = set(overrides) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(", ".join(sorted(unknown)), overrides[min(unknown)], "unknown setting")
    layers: list[Mapping[str, str | None]] = [dict(os.environ if environ is None else environ)]
    if dotenv_path is not None:
        from dotenv import dotenv_values  # noqa: PLC0415 - only when a file is asked for

        path = Path(dotenv_path)
        if not path.is_file():
            raise ConfigError("dotenv_path", str(path), "file not found")
        layers.append(dotenv_values(path))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, env_names in env_vars.items():
        if overrides.get(name) is not None:
            values[name] = overrides[name]
            continue
        found = _lookup(layers, env_names)
        if found is None:
            continue
        var, raw = found
        sources[name] = var
        parser = parsers.get(name)
        try:
            values[name] = parser(var, raw) if parser else raw
        except ConfigError as exc:
            if name in _SECRET_FIELDS:
                raise ConfigError(var, "<hidden>", exc.reason) from None
            raise
    return values, sources


def _build(cls: Callable[..., _S], values: Mapping[str, Any], sources: Mapping[str, str]) -> _S:
    """Construct the settings; a bad value read from a variable is reported by that name."""
    try:
        return cls(**values)
    except ConfigError as exc:
        if exc.name in sources:
            shown = "<hidden>" if exc.name in _SECRET_FIELDS else exc.value
            raise ConfigError(sources[exc.name], shown, exc.reason) from None
        raise


#: Names that moved to :mod:`witness.runninghub.settings` (still importable from here).
_MOVED = frozenset(
    {
        "DEFAULT_RUNNINGHUB_URL",
        "RUNNINGHUB_ENV_VARS",
        "RUNNINGHUB_INSTANCE_TYPES",
        "RunningHubSettings",
    }
)


def __getattr__(name: str) -> Any:
    """Deprecated aliases: the RunningHub settings live in :mod:`witness.runninghub.settings`."""
    if name in _MOVED:
        import warnings  # noqa: PLC0415

        from witness.runninghub import settings as moved  # noqa: PLC0415 - avoids a cycle

        warnings.warn(
            f"witness.config.settings.{name} is deprecated; import it from "
            "witness.runninghub.settings",
            DeprecationWarning,
            stacklevel=2,
        )

        return getattr(moved, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

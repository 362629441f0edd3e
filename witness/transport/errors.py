"""The one place where a failed request becomes a typed :mod:`witness.errors` exception.

Every transport user (:class:`~witness.transport.http.HttpClient`, the credential-free
:class:`~witness.transport.http.PublicClient` behind :func:`witness.utils.fetch.fetch_url`,
the websocket handshake, RunningHub) maps failures here, so a refused connection, a timeout
or an HTTP 403 is the same error with the same fields wherever it happens.

Whether a request was sent (:attr:`~witness.errors.TransportError.sent`) is decided by the
exception's type alone, never by its message or its chain of causes:

================================================== ======= ====================================
failure                                             sent    error
================================================== ======= ====================================
``requests.ConnectTimeout``                         no      ``RequestTimeoutError`` (connect)
``requests.SSLError`` / ``requests.ProxyError``     no      ``ServerUnavailableError``
``requests.ConnectionError`` wrapping               no      ``ServerUnavailableError``
``MaxRetryError`` (refused, DNS: urllib3 reports
every connect-phase failure so, witness mounts its
adapters with ``max_retries=0``)
``requests.ReadTimeout``                            yes     ``RequestTimeoutError`` (read)
any other ``requests.ConnectionError`` (a reset or  yes     ``ServerUnavailableError``
a close after the request went out)
any other ``requests.RequestException``             yes     ``TransportError``
================================================== ======= ====================================
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import requests
import websocket
from urllib3.exceptions import MaxRetryError

from witness.errors import (
    ApiError,
    RequestTimeoutError,
    ServerUnavailableError,
    TransportError,
    WebSocketError,
    WebSocketTimeoutError,
    WebSocketUnavailableError,
    error_class_for_status,
    websocket_handshake_class,
)

__all__ = [
    "describe",
    "request_error",
    "response_error",
    "server_message",
    "status_error",
    "was_sent",
    "websocket_error",
]

Redactor = Callable[[str], str]

MESSAGE_LIMIT = 500
_TAG_RE = re.compile(r"<[^>]+>")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_ERRNO_RE = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
#: Failures after the upgrade request went out (the connection broke under it).
_BROKEN = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    websocket.WebSocketConnectionClosedException,
)


def was_sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached the server (see the module table)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.ConnectionError):
        wrapped = exc.args[0] if exc.args else None
        return not isinstance(wrapped, MaxRetryError)
    return True


def request_error(
    exc: requests.RequestException,
    *,
    method: str,
    url: str,
    timeout: tuple[float, float],
    target: str,
    redact: Redactor,
) -> TransportError:
    """The typed error for a request that got no response.

    Args:
        exc: What ``requests`` raised (already scrubbed of secrets).
        method: HTTP method.
        url: The redacted URL.
        timeout: The ``(connect, read)`` timeouts the attempt used.
        target: What was called, for the message (``"the ComfyUI server at http://..."``).
        redact: Removes secrets from text.
    """
    sent = was_sent(exc)
    if isinstance(exc, requests.Timeout):
        connecting = isinstance(exc, requests.ConnectTimeout)
        limit = timeout[0] if connecting else timeout[1]
        what = "could not connect within" if connecting else "no answer within"
        return RequestTimeoutError(
            f"{method} {url}: {what} {limit} s" + ("" if connecting else " (read timeout)"),
            method=method,
            url=url,
            timeout=limit,
            phase="connect" if connecting else "read",
            sent=sent,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return ServerUnavailableError(
            f"{method} {url}: TLS error: {redact(str(exc))[:MESSAGE_LIMIT]}",
            method=method,
            url=url,
            sent=False,
        )
    if isinstance(exc, requests.ConnectionError):
        return ServerUnavailableError(
            f"{method} {url}: cannot reach {target} ({redact(describe(exc))})",
            method=method,
            url=url,
            sent=sent,
        )
    return TransportError(
        f"{method} {url}: {redact(str(exc))[:MESSAGE_LIMIT]}", method=method, url=url, sent=sent
    )


def response_error(
    response: requests.Response, *, method: str, url: str, redact: Redactor
) -> ApiError:
    """The typed error for an HTTP error status (a subclass per status, see
    :func:`~witness.errors.error_class_for_status`)."""
    try:
        raw = response.content[: 1 << 16]
    except requests.RequestException:
        raw = b""
    error = status_error(
        response.status_code,
        method=method,
        url=url,
        reason=response.reason or "",
        content_type=response.headers.get("Content-Type", ""),
        raw=raw,
        redact=redact,
    )
    error.retry_after = response.headers.get("Retry-After")
    return error


def status_error(
    status: int,
    *,
    method: str,
    url: str,
    reason: str = "",
    content_type: str = "",
    raw: bytes = b"",
    redact: Redactor,
    base: Callable[[type[ApiError]], type[ApiError]] | None = None,
) -> ApiError:
    """The typed error for an HTTP error status, from its parts (also used for the
    websocket's upgrade answer).

    Args:
        status: The HTTP status.
        method: HTTP method.
        url: The redacted URL.
        reason: The status line's reason phrase.
        content_type: The answer's ``Content-Type``.
        raw: The start of the body.
        redact: Removes secrets from text.
        base: Turns the status's class into the class to build (the websocket makes its
            handshake variant of it); ``None`` builds the status's class itself.
    """
    message, body = server_message(raw, content_type, reason, redact)
    cls = error_class_for_status(status)
    if base is not None:
        cls = base(cls)
    return cls(status=status, method=method, url=url, server_message=message, body=body)


def websocket_error(
    exc: BaseException, *, url: str, timeout: float, redact: Redactor
) -> WebSocketError | ApiError:
    """The typed error for a websocket that could not be opened (``GET /ws`` upgrade),
    decided by the exception's type like :func:`request_error`:

    * an HTTP error status → the :class:`~witness.errors.WebSocketHandshakeError` variant of
      the status's class (a 403 is a ``ForbiddenError`` too), fields as over HTTP;
    * a socket timeout while connecting → ``WebSocketTimeoutError`` (connect, not sent); no
      upgrade answer in time → ``WebSocketTimeoutError`` (read, sent);
    * refused, DNS, unreachable, TLS → ``WebSocketUnavailableError`` (a
      ``ServerUnavailableError``, not sent); reset or closed after the upgrade was sent →
      ``WebSocketUnavailableError`` (sent);
    * anything else → ``WebSocketError``.

    Args:
        exc: What websocket-client (or the socket) raised (already scrubbed of secrets).
        url: The redacted websocket URL.
        timeout: The connect timeout used.
        redact: Removes secrets from text.
    """
    method = "GET"
    where = f"[{url}]"
    if isinstance(exc, websocket.WebSocketBadStatusException):
        headers = exc.resp_headers if isinstance(exc.resp_headers, Mapping) else {}
        body = exc.resp_body if isinstance(exc.resp_body, bytes) else b""
        content_type = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "")
        return status_error(
            int(exc.status_code),
            method=method,
            url=url,
            content_type=content_type,
            raw=body,
            redact=redact,
            base=websocket_handshake_class,
        )
    if isinstance(exc, TimeoutError | websocket.WebSocketTimeoutException):
        # A plain socket timeout comes from the TCP connect; websocket-client raises its own
        # type when the upgrade request went out and its answer did not come.
        upgrade_sent = isinstance(exc, websocket.WebSocketTimeoutException)
        waiting = "waiting for the upgrade answer" if upgrade_sent else "(connect)"
        return WebSocketTimeoutError(
            f"cannot open the websocket: timed out after {timeout} s {waiting} {where}",
            method=method,
            url=url,
            timeout=timeout,
            phase="read" if upgrade_sent else "connect",
            sent=upgrade_sent,
        )
    if isinstance(exc, _BROKEN):
        return WebSocketUnavailableError(
            f"cannot open the websocket: the connection broke ({redact(describe(exc))}) {where}",
            method=method,
            url=url,
            sent=True,
        )
    if isinstance(exc, OSError):  # refused, DNS, unreachable, TLS: before anything was sent
        reason = (
            "connection refused"
            if isinstance(exc, ConnectionRefusedError)
            else redact(describe(exc))
        )
        return WebSocketUnavailableError(
            f"cannot open the websocket: {reason} {where}", method=method, url=url, sent=False
        )
    return WebSocketError(
        f"cannot open the websocket: {redact(describe(exc))} {where}", method=method, url=url
    )


def server_message(raw: bytes, content_type: str, reason: str, redact: Redactor) -> tuple[str, Any]:
    """A readable message from any of the server's error body forms (empty, text, JSON or
    aiohttp's HTML/text 500 page), and the decoded body."""
    text = redact(raw.decode("utf-8", "replace")).strip()
    if not text:
        return (f"{reason} (empty body)" if reason else "empty body"), None
    ctype = content_type.lower()
    if "json" in ctype or text[:1] in '{["':
        try:
            body = jsonlib.loads(text)
        except ValueError:
            pass
        else:
            return _json_message(body) or _shorten(text), body
    if "html" in ctype or text.lstrip().lower().startswith(("<!doctype", "<html")):
        title = _TITLE_RE.search(text)
        stripped = _TAG_RE.sub(" ", title.group(1) if title else text)
        return _shorten(stripped), text[:MESSAGE_LIMIT]
    return _shorten(text), text[:MESSAGE_LIMIT]


def describe(exc: BaseException) -> str:
    """A short text for a low-level failure (``Connection refused``), for messages only:
    nothing decides behaviour from it."""
    inner: BaseException = exc
    for _ in range(6):
        nxt = getattr(inner, "reason", None) or inner.__cause__ or inner.__context__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = str(inner)
    match = _ERRNO_RE.search(text)
    if match:
        return match.group(1).strip()
    return type(inner).__name__ + (f": {text[:200]}" if text else "")


def _json_message(body: Any) -> str:
    if isinstance(body, str):
        return body
    if not isinstance(body, Mapping):
        return ""
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping):
        parts = [str(error.get(k)) for k in ("message", "details") if error.get(k)]
        return ": ".join(parts) or str(error.get("type") or error.get("code") or "")
    for key in ("message", "detail", "msg"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return ""


def _shorten(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    joined = " — ".join(line for line in lines if line)
    return joined if len(joined) <= MESSAGE_LIMIT else joined[: MESSAGE_LIMIT - 1] + "…"

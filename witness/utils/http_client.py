"""The one HTTP path of witness.

:class:`HttpClient` wraps one keep-alive :class:`requests.Session`. Every group client calls
:meth:`HttpClient.request` (or its JSON and streaming helpers); nothing else in witness touches
``requests``. It builds the URL (with the server's ``/api`` prefix), adds auth, applies the
default timeout, retries idempotent requests with bounded backoff, and turns every failure into
a typed :mod:`witness.errors` exception with secrets redacted.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import random
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError

from witness._version import __version__
from witness.config.settings import Settings
from witness.errors import (
    ApiError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ResponseDecodeError,
    ServerUnavailableError,
    TransportError,
    error_class_for_status,
)
from witness.transport.deadline import Deadline, current_deadline
from witness.utils.redact import SecretFilter, redact_text, redact_url, scrub_exception

__all__ = ["HttpClient", "Timeout"]

logger = logging.getLogger(__name__)

Timeout = float | tuple[float, float]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_BACKOFF = 8.0
_MESSAGE_LIMIT = 500
_TAG_RE = re.compile(r"<[^>]+>")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class HttpClient:
    """A ``requests.Session`` wrapper shared by all group clients.

    Args:
        settings: Connection settings. ``None`` resolves them with
            :meth:`Settings.from_env` (arguments > environment > defaults).
        session: An existing session to use (its headers are extended, not replaced).
        pool_size: Maximum keep-alive connections kept per host (raise it for many threads).

    Example:
        >>> with HttpClient(Settings(api_url="http://127.0.0.1:8188")) as http:
        ...     stats = http.request_json("GET", "/system_stats")
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        session: requests.Session | None = None,
        pool_size: int = 16,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._session = session if session is not None else requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(self.auth_headers())
        self._session.headers["User-Agent"] = f"witness/{__version__}"
        for name, value in self.settings.cookies.items():
            self._session.cookies.set(name, value)
        self._session.verify = self.settings.verify
        self._closed = False
        if self.settings.secrets:
            _URLLIB3_FILTER.secrets.update(self.settings.secrets)
            _install_urllib3_filter()

    # -- introspection -----------------------------------------------------------------

    def __repr__(self) -> str:
        return f"HttpClient(api_url={self.settings.api_url!r}, closed={self._closed})"

    @property
    def base_url(self) -> str:
        """The server base URL without a trailing slash."""
        return self.settings.api_url

    def auth_headers(self) -> dict[str, str]:
        """Headers that identify and authenticate this client (also used by the websocket)."""
        headers = dict(self.settings.headers)
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        if self.settings.user:
            headers["comfy-user"] = self.settings.user
        return headers

    def url(self, path: str, *, api: bool = True) -> str:
        """Build the absolute URL of a route.

        Args:
            path: The route, starting with ``/``; its caller-supplied segments must already be
                quoted (see :func:`witness.utils.paths.route`).
            api: Prefix the route with ``/api`` (right for every route except ``/internal/*``
                and the static trees, per the server's conventions).
        """
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + ("/api" if api else "") + path

    def redact(self, text: str) -> str:
        """Remove this client's secrets from ``text``."""
        return redact_text(text, self.settings.secrets)

    # -- the request path --------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: Timeout | None = None,
        api: bool = True,
        idempotent: bool | None = None,
        deadline: Deadline | None = None,
    ) -> requests.Response:
        """Send one request and return the successful response.

        Args:
            method: HTTP method.
            path: Route (see :meth:`url`).
            params: Query parameters; ``None`` values are dropped; the configured
                ``query_params`` are added.
            json: A JSON body.
            data: A raw or form body.
            files: Multipart files (``requests`` format).
            headers: Extra headers for this request only.
            stream: Leave the body unread (the caller must close the response).
            timeout: Seconds, or ``(connect, read)``; defaults to the settings.
            api: Use the ``/api`` prefix.
            idempotent: Whether retrying is safe. Defaults to ``True`` for GET, HEAD, OPTIONS,
                PUT and DELETE and ``False`` otherwise; POST /prompt is never retried.
            deadline: The call's deadline (default: the one of the active
                :meth:`Deadline.scope`, if any): connect and read timeouts are clamped to the
                time left, and no retry waits past it.

        Returns:
            The response, status 2xx.

        Raises:
            ServerUnavailableError: The server could not be reached (after retries).
            RequestTimeoutError: No answer within the timeout.
            ApiError: The server answered with an error status (a subclass per status).
        """
        method = method.upper()
        url = self.url(path, api=api)
        shown_url = redact_url(url, self.settings.secrets)
        if self._closed:
            raise ServerUnavailableError(
                f"{method} {shown_url}: this HttpClient is closed", method=method, url=shown_url
            )
        query = {**self.settings.query_params}
        if params:
            query.update({k: _query_value(v) for k, v in params.items() if v is not None})
        deadline = deadline if deadline is not None else current_deadline()
        effective_timeout = self._timeout(timeout)
        retryable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = 1 + (self.settings.retries if retryable else 0)
        if files is not None:
            # A multipart body built from file objects cannot be replayed safely.
            attempts = 1
        for attempt in range(attempts):
            last = attempt == attempts - 1 or (deadline is not None and deadline.expired())
            if deadline is not None:
                effective_timeout = _clamp(effective_timeout, deadline)
            started = time.perf_counter()
            try:
                response = self._send(
                    method,
                    url,
                    params=query or None,
                    json=json,
                    data=data,
                    files=files,
                    headers=dict(headers) if headers else None,
                    stream=stream,
                    timeout=effective_timeout,
                )
            except requests.exceptions.ConnectTimeout as exc:
                error: TransportError = RequestTimeoutError(
                    f"{method} {shown_url}: could not connect within "
                    f"{_connect_part(effective_timeout)} s",
                    method=method,
                    url=shown_url,
                    timeout=_connect_part(effective_timeout),
                    phase="connect",
                )
                if last:
                    raise error from exc
                self._backoff(attempt, method, shown_url, "connect timeout")
                continue
            except requests.exceptions.ReadTimeout as exc:
                # Not retried: the server may be working on it, and a retry would stretch the
                # caller's deadline far beyond the limit they set.
                raise RequestTimeoutError(
                    f"{method} {shown_url}: no answer within {_read_part(effective_timeout)} s "
                    "(read timeout)",
                    method=method,
                    url=shown_url,
                    timeout=_read_part(effective_timeout),
                    phase="read",
                ) from exc
            except requests.exceptions.SSLError as exc:
                raise ServerUnavailableError(
                    f"{method} {shown_url}: TLS error: {self.redact(str(exc))[:_MESSAGE_LIMIT]}",
                    method=method,
                    url=shown_url,
                    sent=False,
                ) from exc
            except requests.exceptions.ConnectionError as exc:
                if last:
                    raise ServerUnavailableError(
                        f"{method} {shown_url}: cannot reach the ComfyUI server at "
                        f"{self.base_url} ({_reason(exc)})",
                        method=method,
                        url=shown_url,
                        sent=not isinstance(exc.args[0] if exc.args else None, MaxRetryError),
                    ) from exc
                self._backoff(attempt, method, shown_url, _reason(exc))
                continue
            except requests.exceptions.RequestException as exc:
                raise TransportError(
                    f"{method} {shown_url}: {self.redact(str(exc))[:_MESSAGE_LIMIT]}",
                    method=method,
                    url=shown_url,
                ) from exc
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug(
                "%s %s -> %s (%.1f ms)", method, shown_url, response.status_code, elapsed_ms
            )
            status = response.status_code
            if status in RETRY_STATUSES and not last:
                response.close()
                self._backoff(attempt, method, shown_url, f"HTTP {status}")
                continue
            if status >= 400:
                raise self._api_error(response, method, shown_url)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """``Session.request``; a failure's exception chain is scrubbed of secrets first (it
        is chained into the typed error, so it shows in every printed traceback)."""
        try:
            return self._session.request(method, url, **kwargs)
        except requests.exceptions.RequestException as exc:
            scrub_exception(exc, self.settings.secrets)
            raise

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, then decode the JSON body.

        Raises:
            ResponseDecodeError: The body is empty or not JSON (e.g. an HTML proxy page).
        """
        kwargs.pop("stream", None)
        response = self.request(method, path, **kwargs)
        return self.decode_json(response, method)

    def decode_json(self, response: requests.Response, method: str = "GET") -> Any:
        """Decode a response body as JSON, raising :class:`ResponseDecodeError` if it is not."""
        content = response.content
        try:
            if not content.strip():
                raise ValueError("empty body")
            return jsonlib.loads(content)
        except ValueError as exc:
            raise ResponseDecodeError(
                status=response.status_code,
                method=method,
                url=redact_url(response.url or "", self.settings.secrets),
                content_type=response.headers.get("Content-Type", ""),
                body=self.redact(content[:200].decode("utf-8", "replace")),
            ) from exc

    # -- streaming ---------------------------------------------------------------------

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[requests.Response]:
        """Context manager yielding a streamed response that is closed on exit."""
        response = self.request(method, path, stream=True, **kwargs)
        try:
            yield response
        finally:
            response.close()

    def iter_bytes(self, path: str, *, chunk_size: int = 1 << 16, **kwargs: Any) -> Iterator[bytes]:
        """Yield a GET response body in chunks, with constant memory.

        Raises:
            TransportError: The connection broke mid-body, or fewer bytes than announced
                arrived.
        """
        with self.stream("GET", path, **kwargs) as response:
            shown_url = redact_url(response.url or "", self.settings.secrets)
            expected = response.headers.get("Content-Length")
            received = 0
            try:
                for chunk in response.iter_content(chunk_size=chunk_size):
                    received += len(chunk)
                    yield chunk
            except requests.exceptions.RequestException as exc:
                scrub_exception(exc, self.settings.secrets)
                raise TransportError(
                    f"GET {shown_url}: download interrupted after {received} bytes "
                    f"({_reason(exc)})",
                    method="GET",
                    url=shown_url,
                ) from exc
            encoded = response.headers.get("Content-Encoding")
            if expected is not None and not encoded and received != int(expected):
                raise TransportError(
                    f"GET {shown_url}: download truncated: {received} of {expected} bytes",
                    method="GET",
                    url=shown_url,
                )

    def download(
        self,
        path: str,
        destination: str | os.PathLike[str] | BinaryIO,
        *,
        chunk_size: int = 1 << 16,
        **kwargs: Any,
    ) -> int:
        """Stream a GET response to a file with constant memory.

        A path destination is written atomically: the body goes to a temporary file in the
        same directory, which is renamed over the destination only when complete. On any
        failure the temporary file is removed and the destination is untouched.

        Args:
            path: Route to GET.
            destination: A file path, or a writable binary file object.
            chunk_size: Bytes per read.
            **kwargs: Passed to :meth:`request` (``params``, ``timeout``, ``api``).

        Returns:
            The number of bytes written.
        """
        if not isinstance(destination, str | os.PathLike):
            written = 0
            for chunk in self.iter_bytes(path, chunk_size=chunk_size, **kwargs):
                destination.write(chunk)
                written += len(chunk)
            return written
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
        try:
            written = 0
            with os.fdopen(fd, "wb") as handle:
                for chunk in self.iter_bytes(path, chunk_size=chunk_size, **kwargs):
                    handle.write(chunk)
                    written += len(chunk)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return written

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the session and its pooled connections. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._session.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------

    def _timeout(self, timeout: Timeout | None) -> tuple[float, float]:
        if timeout is None:
            return self.settings.timeout
        if isinstance(timeout, tuple):
            connect, read = timeout
        else:
            connect, read = min(float(timeout), self.settings.connect_timeout), float(timeout)
        for value in (connect, read):
            if not value > 0:
                raise ValueError(f"timeout must be positive, got {timeout!r}")
        return (float(connect), float(read))

    def _backoff(self, attempt: int, method: str, url: str, why: str) -> None:
        base = self.settings.retry_backoff
        delay = min(MAX_BACKOFF, base * (2**attempt)) * (0.5 + random.random() / 2)  # noqa: S311
        logger.warning(
            "%s %s failed (%s); retry %d of %d in %.2f s",
            method,
            url,
            why,
            attempt + 1,
            self.settings.retries,
            delay,
        )
        time.sleep(delay)

    def _api_error(self, response: requests.Response, method: str, url: str) -> ApiError:
        status = response.status_code
        message, body = self._server_message(response)
        cls = error_class_for_status(status)
        if cls is PayloadTooLargeError:
            error: ApiError = PayloadTooLargeError(
                status=status, method=method, url=url, server_message=message, body=body
            )
        else:
            error = cls(status=status, method=method, url=url, server_message=message, body=body)
        error.retry_after = response.headers.get("Retry-After")
        return error

    def _server_message(self, response: requests.Response) -> tuple[str, Any]:
        """Extract a readable message from any of the server's error body forms."""
        try:
            raw = response.content[: 1 << 16]
        except requests.exceptions.RequestException:
            raw = b""
        text = self.redact(raw.decode("utf-8", "replace")).strip()
        reason = response.reason or ""
        if not text:
            return (f"{reason} (empty body)" if reason else "empty body"), None
        ctype = response.headers.get("Content-Type", "").lower()
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
            return _shorten(stripped), text[:_MESSAGE_LIMIT]
        return _shorten(text), text[:_MESSAGE_LIMIT]


# urllib3 logs every request line, query string included, at DEBUG on this logger. The filter
# redacts the secrets of every HttpClient made in this process (it only ever removes text).
_URLLIB3_FILTER = SecretFilter()


def _install_urllib3_filter() -> None:
    log = logging.getLogger("urllib3.connectionpool")
    if _URLLIB3_FILTER not in log.filters:
        log.addFilter(_URLLIB3_FILTER)


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
    return joined if len(joined) <= _MESSAGE_LIMIT else joined[: _MESSAGE_LIMIT - 1] + "…"


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _clamp(timeout: tuple[float, float], deadline: Deadline) -> tuple[float, float]:
    connect, read = timeout
    return (deadline.clamp(connect) or connect, deadline.clamp(read) or read)


def _connect_part(timeout: tuple[float, float]) -> float:
    return timeout[0]


def _read_part(timeout: tuple[float, float]) -> float:
    return timeout[1]


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, briefly."""
    inner: BaseException = exc
    seen = 0
    while seen < 6:
        nxt = getattr(inner, "reason", None) or inner.__cause__ or inner.__context__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
        seen += 1
    text = str(inner)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    return type(inner).__name__ + (f": {text[:200]}" if text else "")

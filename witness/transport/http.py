"""The one HTTP path of witness.

:class:`Transport` is the one request loop: it sends on a :class:`requests.Session`, clamps
connect/read timeouts to the call's :class:`~witness.transport.deadline.Deadline`, retries
through the one :class:`~witness.transport.retry.RetryPolicy` (idempotent only unless never
sent, bounded, backoff with jitter, ``Retry-After`` honoured, never sleeping past the
deadline) and maps every failure through :mod:`witness.transport.errors`. Two clients use it:

* :class:`HttpClient` talks to the ComfyUI server (or RunningHub): base URL and ``/api``
  prefix, auth headers, cookies, query parameters, TLS settings. Every group client calls
  :meth:`HttpClient.request` (or its JSON and streaming helpers);
* :class:`PublicClient` fetches third-party URLs (workflow files, media params) with NO
  credentials: a session of its own, no auth headers, cookies or query parameters of the
  server settings; redirects are followed without any.

Nothing else in witness touches ``requests``.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import SplitResult, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting as _merge_setting
from requests.utils import get_environ_proxies

from witness._version import __version__
from witness.config.settings import Settings
from witness.errors import (
    RequestTimeoutError,
    ResponseDecodeError,
    ServerUnavailableError,
    TransportError,
)
from witness.transport.deadline import Deadline, current_deadline
from witness.transport.errors import describe, request_error, response_error
from witness.transport.retry import IDEMPOTENT_METHODS, RetryPolicy
from witness.utils.files import atomic_writer
from witness.utils.redact import SecretFilter, redact_text, redact_url, scrub_exception

__all__ = [
    "HttpClient",
    "OwnOriginSession",
    "PublicClient",
    "Timeout",
    "Transport",
    "new_session",
]

logger = logging.getLogger(__name__)

Timeout = float | tuple[float, float]


class OwnOriginSession(requests.Session):
    """A session whose credentials go to their own origin only.

    ``requests`` drops the ``Authorization`` header when a redirect leads to another host,
    port or scheme; this session also drops the ``Cookie`` header and the headers named in
    ``credential_headers`` (the configured extra headers, ``comfy-user``), so nothing of the
    server's settings reaches a redirect target elsewhere.

    The proxy environment (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) and the CA bundle
    variables (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``) are read once per origin, on the
    first request to it, as httpx reads them once per client: ``requests`` would scan the
    whole environment on every request (about 0.17 ms each). A process that changes these
    variables later makes a new client to see them.

    Args:
        credential_headers: Header names (any case) never sent to another origin.
    """

    def __init__(self, credential_headers: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.credential_headers = frozenset(name.lower() for name in credential_headers)
        # (scheme, host, port, no_proxy) -> (environment proxies, environment CA bundle)
        self._environment: dict[tuple[str, str, int | None, str | None], _Environment] = {}

    def merge_environment_settings(  # type: ignore[override]
        self,
        url: str,
        proxies: dict[str, str] | None,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> Any:
        """``requests.Session.merge_environment_settings`` with the environment part read
        once per origin (see the class docstring); same result otherwise."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "", _port(parts), no_proxy)
        found = self._environment.get(key)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            found = (get_environ_proxies(url, no_proxy=no_proxy), bundle)
            if len(self._environment) >= _ENVIRONMENT_ORIGINS:
                self._environment.clear()  # many third-party hosts: start over
            self._environment[key] = found
        env_proxies, bundle = found
        if proxies is not None:
            for name, value in env_proxies.items():
                proxies.setdefault(name, value)
        if verify is True or verify is None:
            verify = bundle or verify
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """Called by ``requests`` for every redirect hop (see the class docstring)."""
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        previous = response.request.url or ""
        if self.should_strip_auth(previous, prepared_request.url or ""):  # type: ignore[no-untyped-call]
            for name in list(prepared_request.headers):
                if name.lower() == "cookie" or name.lower() in self.credential_headers:
                    del prepared_request.headers[name]


_Environment = tuple[dict[str, str], str | None]
merge_setting: Callable[[Any, Any], Any] = _merge_setting  # requests' own merge rule
_ENVIRONMENT_ORIGINS = 64  # origins whose environment settings a session remembers


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None  # requests reports the bad port itself


def wire_headers(headers: Mapping[str, str]) -> dict[str, str | bytes]:
    """Headers as ``requests`` must get them: a non-ASCII value (only a ``comfy-user`` id
    passes the settings' checks) goes as UTF-8 bytes, which is how the server's aiohttp
    decodes header values (``requests`` would otherwise try Latin-1 and fail)."""
    return {k: v if v.isascii() else v.encode("utf-8") for k, v in headers.items()}


def new_session(pool_size: int = 16, session: requests.Session | None = None) -> requests.Session:
    """A session with witness's adapters (``max_retries=0``: retries are the policy's) and
    User-Agent."""
    session = session if session is not None else OwnOriginSession()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"witness/{__version__}"
    return session


class Transport:
    """One session and the one request loop (see the module docstring).

    Args:
        session: The session to send on (see :func:`new_session`).
        retry: The default retry policy.
        secrets: Values scrubbed from every message, log line and chained exception.
        target: What is called, for messages (``"the ComfyUI server at http://..."``).
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        retry: RetryPolicy,
        secrets: tuple[str, ...] = (),
        target: str = "the host",
    ) -> None:
        self.session = session
        self.retry = retry
        self.secrets = secrets
        self.target = target

    def redact(self, text: str) -> str:
        """Remove the secrets from ``text``."""
        return redact_text(text, self.secrets)

    def send(
        self,
        method: str,
        url: str,
        *,
        timeout: tuple[float, float],
        safe: bool,
        deadline: Deadline | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request, retrying as the policy allows; return the 2xx response.

        Args:
            method: HTTP method (upper case).
            url: The absolute URL.
            timeout: ``(connect, read)`` seconds, each clamped to ``deadline``.
            safe: Whether the request may be repeated (idempotent).
            deadline: The call's deadline (default: the active :meth:`Deadline.scope`).
            retry: A policy for this request (default: the transport's).
            **kwargs: Passed to :meth:`requests.Session.request`.

        Raises:
            TransportError: No usable answer (``sent`` says whether it may have arrived).
            ApiError: An error status (a subclass per status).
        """
        policy = retry if retry is not None else self.retry
        deadline = deadline if deadline is not None else current_deadline()
        shown = redact_url(url, self.secrets)
        if not _replayable(kwargs.get("files")):
            policy = RetryPolicy(retries=0)  # a body read from file objects cannot be resent
        attempt = 0
        while True:
            left = policy.retries - attempt
            used = _clamp(timeout, deadline) if deadline is not None else timeout
            started = time.perf_counter()
            try:
                response = self.session.request(method, url, timeout=used, **kwargs)
            except requests.RequestException as exc:
                scrub_exception(exc, self.secrets)  # it is chained into the typed error
                error = request_error(
                    exc,
                    method=method,
                    url=shown,
                    timeout=used,
                    target=self.target,
                    redact=self.redact,
                )
                retried = left > 0 and policy.retries_error(error, safe=safe)
                if retried and self._wait(policy, attempt, deadline, f"{method} {shown}", exc):
                    attempt += 1
                    continue
                raise error from exc
            status = response.status_code
            logger.debug(
                "%s %s -> %s (%.1f ms)",
                method,
                shown,
                status,
                (time.perf_counter() - started) * 1000,
            )
            retried = left > 0 and policy.retries_response(status, response, safe=safe)
            hint = response.headers.get("Retry-After") if retried else None
            if retried and self._wait(
                policy, attempt, deadline, f"{method} {shown}", status, retry_after=hint
            ):
                response.close()
                attempt += 1
                continue
            if status >= 400:
                raise response_error(response, method=method, url=shown, redact=self.redact)
            return response

    def body(
        self,
        response: requests.Response,
        *,
        chunk_size: int = 1 << 16,
        deadline: Deadline | None = None,
    ) -> Iterator[bytes]:
        """Yield a streamed response's body in chunks, with constant memory.

        Raises:
            TransportError: The connection broke mid-body, or fewer bytes than announced
                arrived.
            RequestTimeoutError: The deadline passed before the body was complete.
        """
        deadline = deadline if deadline is not None else current_deadline()
        shown = redact_url(response.url or "", self.secrets)
        expected = response.headers.get("Content-Length")
        received = 0
        try:
            for chunk in response.iter_content(chunk_size=chunk_size):
                if deadline is not None and deadline.expired():
                    limit = deadline.seconds if deadline.seconds is not None else 0.0
                    raise RequestTimeoutError(
                        f"GET {shown}: the body was not complete within the {limit:g} s "
                        f"deadline ({received} bytes received)",
                        method="GET",
                        url=shown,
                        timeout=limit,
                        phase="read",
                    )
                received += len(chunk)
                yield chunk
        except requests.RequestException as exc:
            scrub_exception(exc, self.secrets)
            raise TransportError(
                f"GET {shown}: download interrupted after {received} bytes "
                f"({self.redact(describe(exc))})",
                method="GET",
                url=shown,
            ) from exc
        encoded = response.headers.get("Content-Encoding")
        if (
            expected is not None
            and expected.isdigit()
            and not encoded
            and received != int(expected)
        ):
            raise TransportError(
                f"GET {shown}: download truncated: {received} of {expected} bytes",
                method="GET",
                url=shown,
            )

    def _wait(
        self,
        policy: RetryPolicy,
        attempt: int,
        deadline: Deadline | None,
        what: str,
        failure: BaseException | int,
        *,
        retry_after: str | None = None,
    ) -> bool:
        """Sleep before retry ``attempt + 1``; ``False`` when the deadline leaves no room.

        Args:
            policy: The request's policy.
            attempt: The attempt that failed (from 0).
            deadline: The call's deadline.
            what: ``"GET <redacted url>"``, for the log.
            failure: The exception, or the HTTP status that is retried.
            retry_after: The answer's ``Retry-After``.
        """
        why = f"HTTP {failure}" if isinstance(failure, int) else self.redact(describe(failure))
        waited = policy.sleep(attempt, deadline, retry_after)
        if waited is None:
            logger.info("%s failed (%s); no time left for a retry", what, why)
            return False
        logger.warning(
            "%s failed (%s); retry %d of %d after %.2f s",
            what,
            why,
            attempt + 1,
            policy.retries,
            waited,
        )
        return True


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
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        if session is None:
            session = OwnOriginSession((*self.settings.headers, "comfy-user"))
        self._session = new_session(pool_size, session)
        self._session.headers.update(wire_headers(self.auth_headers()))
        for name, value in self.settings.cookies.items():
            self._session.cookies.set(name, value)
        self._session.verify = self.settings.verify
        self.retry_policy = retry if retry is not None else self.settings.retry_policy
        self.transport = Transport(
            self._session,
            retry=self.retry_policy,
            secrets=self.settings.secrets,
            target=f"the server at {self.settings.api_url}",
        )
        self._closed = False
        if self.settings.secrets:
            _URLLIB3_FILTER.secrets.update(self.settings.secrets)
            _install_urllib3_filter()

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

    def handshake_headers(self) -> dict[str, str]:
        """The headers of a websocket upgrade: the User-Agent and :meth:`auth_headers`."""
        return {"User-Agent": f"witness/{__version__}", **self.auth_headers()}

    def cookie_header(self) -> str | None:
        """The configured cookies as one ``Cookie`` header value (for the websocket)."""
        cookies = self.settings.cookies
        return "; ".join(f"{k}={v}" for k, v in cookies.items()) or None

    def tls_options(self) -> dict[str, Any]:
        """The TLS settings (``verify``) in websocket-client's ``sslopt`` form."""
        verify = self.settings.verify
        if verify is False:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        if isinstance(verify, str):
            return {"ca_cert_path": verify} if os.path.isdir(verify) else {"ca_certs": verify}
        return {}

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
        retry: RetryPolicy | None = None,
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
            retry: The retry policy of this request (default: :attr:`retry_policy`, from the
                settings' ``retries`` and ``retry_backoff``).

        Returns:
            The response, status 2xx.

        Raises:
            ServerUnavailableError: The server could not be reached (after retries); ``sent``
                says whether the request may have arrived.
            RequestTimeoutError: No answer within the timeout.
            ApiError: The server answered with an error status (a subclass per status).
        """
        method = method.upper()
        url = self.url(path, api=api)
        if self._closed:
            shown_url = redact_url(url, self.settings.secrets)
            raise ServerUnavailableError(
                f"{method} {shown_url}: this HttpClient is closed",
                method=method,
                url=shown_url,
                sent=False,
            )
        query = {**self.settings.query_params}
        if params:
            query.update({k: _query_value(v) for k, v in params.items() if v is not None})
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        return self.transport.send(
            method,
            url,
            timeout=self._timeout(timeout),
            safe=safe,
            deadline=deadline,
            retry=retry,
            params=query or None,
            json=json,
            data=data,
            files=files,
            headers=wire_headers(headers) if headers else None,
            stream=stream,
        )

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
            ) from scrub_exception(exc, self.settings.secrets)  # its .doc is the whole body

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
            yield from self.transport.body(
                response, chunk_size=chunk_size, deadline=kwargs.get("deadline")
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
        written = 0
        with atomic_writer(target) as handle:
            for chunk in self.iter_bytes(path, chunk_size=chunk_size, **kwargs):
                handle.write(chunk)
                written += len(chunk)
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


class PublicClient:
    """Credential-free requests to third-party hosts (workflow files, media URLs, CDN outputs).

    The same request loop as :class:`HttpClient` (:class:`Transport`: retry policy, deadline
    clamping, error mapping), on a session of its own that carries no credential of any
    server's settings: no auth headers, no cookies, no query parameters. Redirects are
    followed without credentials (the session has none; ``requests`` drops an
    ``Authorization`` taken from the URL's user info when a redirect changes host, port or
    scheme).

    Args:
        retry: The retry policy (default: :class:`RetryPolicy`'s defaults; GETs only).
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        max_redirects: The most redirects followed.

    Example:
        >>> with PublicClient() as public:
        ...     response = public.get("https://example.com/wf.json", timeout=(5.0, 30.0))
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        verify: bool | str = True,
        max_redirects: int = 10,
    ) -> None:
        session = new_session(pool_size=4)
        session.verify = verify
        session.max_redirects = max_redirects
        self.transport = Transport(
            session, retry=retry if retry is not None else RetryPolicy(), target="the host"
        )

    def __repr__(self) -> str:
        return "PublicClient()"

    def get(
        self,
        url: str,
        *,
        timeout: tuple[float, float],
        deadline: Deadline | None = None,
        stream: bool = True,
    ) -> requests.Response:
        """``GET url`` (absolute) with no credentials; the 2xx response (close it, or use
        ``with``, when ``stream`` is true).

        Raises:
            TransportError: No usable answer (``sent`` says whether it may have arrived).
            ApiError: The host answered with an error status.
        """
        return self.transport.send(
            "GET", url, timeout=timeout, safe=True, deadline=deadline, stream=stream
        )

    def close(self) -> None:
        """Close the session. Safe to call twice."""
        self.transport.session.close()

    def __enter__(self) -> PublicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# urllib3 logs every request line, query string included, at DEBUG on this logger. The filter
# redacts the secrets of every HttpClient made in this process (it only ever removes text).
_URLLIB3_FILTER = SecretFilter()


def _install_urllib3_filter() -> None:
    log = logging.getLogger("urllib3.connectionpool")
    if _URLLIB3_FILTER not in log.filters:
        log.addFilter(_URLLIB3_FILTER)


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _replayable(files: Any) -> bool:
    """Whether a multipart body can be sent twice (bytes or text parts, no file objects)."""
    if files is None:
        return True
    entries = files.values() if isinstance(files, Mapping) else [entry for _, entry in files]
    for entry in entries:
        content = entry[1] if isinstance(entry, tuple) else entry
        if not isinstance(content, bytes | str):
            return False
    return True


def _clamp(timeout: tuple[float, float], deadline: Deadline) -> tuple[float, float]:
    connect, read = timeout
    return (deadline.clamp(connect) or connect, deadline.clamp(read) or read)

"""The ComfyUI websocket (``/ws?clientId=...``): a background receiver with typed events.

:class:`WebSocketClient` keeps one socket open in a daemon thread, decodes every frame into an
event of :mod:`witness.api_clients.ws_events`, attributes events to prompts, and hands them to
three kinds of consumers:

* **prompt streams** (:meth:`WebSocketClient.track`): a buffered, thread-safe queue of one
  prompt's events. Register it *before* ``POST /prompt`` (the prompt id is made client-side),
  so no event can be missed; iterate until the prompt's completion signal;
* **callbacks** (:meth:`WebSocketClient.add_callback`), per event type or for all events,
  called on the receive thread;
* **waits** (:meth:`WebSocketClient.wait_for`): block until an event matches a predicate.

Reliability: the client sends the ``feature_flags`` handshake as its first frame and uses the
server's answer to check that the socket is really registered; it pings (the server never
does) and treats a missing pong as a dead connection; when the socket drops it closes it fully,
then reconnects with the same client id after a bounded exponential backoff, and tells every
tracked prompt that events may have been missed (:class:`~.ws_events.ReconnectedEvent`).

Example:
    >>> with HttpClient(settings) as http, WebSocketClient(http) as ws:
    ...     prompt_id = str(uuid.uuid4())
    ...     with ws.track(prompt_id) as events:
    ...         http.request_json("POST", "/prompt", json={"prompt": graph,
    ...             "client_id": ws.client_id, "prompt_id": prompt_id}, idempotent=False)
    ...         for event in events.iter(timeout=60):
    ...             print(event)
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import websocket

from witness.api_clients.ws_events import (
    BINARY_PREVIEW_IMAGE,
    ConnectionEvent,
    ConnectionState,
    Event,
    ExecutingEvent,
    ExecutionErrorEvent,
    ExecutionInterruptedEvent,
    ExecutionStartEvent,
    ExecutionSuccessEvent,
    FeatureFlagsEvent,
    MalformedFrameEvent,
    PreviewEvent,
    ProgressEvent,
    ReconnectedEvent,
    StatusEvent,
    TextEvent,
    decode_binary,
    decode_text,
)
from witness.api_clients.ws_frames import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, FrameReader
from witness.errors import InvalidArgumentError, WaitTimeoutError, WebSocketError, WitnessError
from witness.transport.deadline import Deadline, current_deadline
from witness.transport.errors import websocket_error
from witness.transport.http import HttpClient
from witness.transport.retry import RetryPolicy
from witness.utils.redact import redact_url, scrub_exception

__all__ = [
    "DEFAULT_MAX_RECONNECT_TIME",
    "Outcome",
    "PromptEvents",
    "Subscription",
    "WebSocketClient",
]

logger = logging.getLogger(__name__)

#: Seconds of failed reconnecting after which a :class:`WebSocketClient` gives up and closes.
DEFAULT_MAX_RECONNECT_TIME = 60.0

Outcome = Literal["success", "error", "interrupted"]
EventCallback = Callable[[Event], object]
EventTypes = type[Event] | tuple[type[Event], ...] | None

# How often the receive loop wakes up when nothing arrives (pings, close requests).
_TICK = 0.1


class _ConnectionLostError(Exception):
    """The connection is gone (internal; turned into a reconnect)."""


class PromptEvents:
    """The buffered events of one prompt, filled by the receive thread.

    Made by :meth:`WebSocketClient.track`. Thread-safe. Every event the client attributes to
    the prompt is buffered (nothing is dropped), plus the client's own
    :class:`~.ws_events.ConnectionEvent` and :class:`~.ws_events.ReconnectedEvent`.

    The stream ends with the prompt's completion signal, ``executing`` with ``node=None``
    (sent for success, error and interrupt alike, after the history entry is written). After
    a :class:`~.ws_events.ReconnectedEvent` the completion may never come (it may have been
    sent while the socket was down): check ``GET /history/{prompt_id}`` then.

    Attributes:
        prompt_id: The prompt.
        timeout: Default overall deadline of ``for event in stream`` (``None``: none).
    """

    def __init__(self, client: WebSocketClient, prompt_id: str, timeout: float | None) -> None:
        self.prompt_id = prompt_id
        self.timeout = timeout
        self._client = client
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Event] = deque()
        self._finished = False
        self._end_delivered = False
        self._closed = False
        self._gone: str | None = None
        self._error: ExecutionErrorEvent | None = None
        self._interrupted: ExecutionInterruptedEvent | None = None
        self._success = False

    def __repr__(self) -> str:
        return (
            f"PromptEvents(prompt_id={self.prompt_id!r}, buffered={len(self._queue)}, "
            f"finished={self._finished}, outcome={self.outcome!r}, closed={self._closed})"
        )

    # -- state ----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the completion signal arrived (it may still be in the buffer)."""
        return self._finished

    @property
    def outcome(self) -> Outcome | None:
        """How the prompt ended as far as the events seen tell; ``None`` while unknown."""
        with self._cond:
            if self._error is not None:
                return "error"
            if self._interrupted is not None:
                return "interrupted"
            return "success" if self._success else None

    @property
    def error(self) -> ExecutionErrorEvent | None:
        """The fatal ``execution_error`` seen for the prompt, if any."""
        return self._error

    @property
    def interrupted(self) -> ExecutionInterruptedEvent | None:
        """The ``execution_interrupted`` seen for the prompt, if any."""
        return self._interrupted

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- receive side (called by the client) ----------------------------------------------

    def _put(self, event: Event) -> bool:
        """Buffer an event; return whether it was the completion signal."""
        with self._cond:
            if self._closed:
                return False
            self._queue.append(event)
            final = isinstance(event, ExecutingEvent) and event.finished
            if final:
                self._finished = True
            elif isinstance(event, ExecutionErrorEvent) and not event.blocked:
                self._error = event
            elif isinstance(event, ExecutionInterruptedEvent):
                self._interrupted = event
            elif isinstance(event, ExecutionSuccessEvent):
                self._success = True
            self._cond.notify_all()
            return final

    def _client_gone(self, reason: str) -> None:
        with self._cond:
            if self._gone is None:
                self._gone = reason
            self._cond.notify_all()

    # -- consumer side --------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Event | None:
        """Take the next event, waiting for it.

        Args:
            timeout: Seconds to wait; ``None`` waits without a limit.

        Returns:
            The next event, or ``None`` when the stream has ended (its completion signal was
            already taken, or the stream was closed).

        Raises:
            WaitTimeoutError: No event arrived within ``timeout``.
            WebSocketError: The client was closed (or gave up reconnecting) before the prompt
                finished; buffered events are returned first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._queue:
                    event = self._queue.popleft()
                    if isinstance(event, ExecutingEvent) and event.finished:
                        self._end_delivered = True
                    return event
                if self._closed or self._end_delivered:
                    return None
                if self._gone is not None:
                    raise self._client.error(
                        f"no more events for prompt {self.prompt_id}: {self._gone}"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WaitTimeoutError(
                        f"no websocket event for prompt {self.prompt_id} within {timeout} s",
                        timeout=float(timeout or 0),
                        what=self.prompt_id,
                    )
                self._cond.wait(remaining)

    def iter(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield the prompt's events until (and including) its completion signal.

        Args:
            timeout: Overall deadline in seconds for the whole iteration (``None``: none).

        Raises:
            WaitTimeoutError: The deadline passed before the completion signal.
            WebSocketError: The client was closed before the prompt finished.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = self.get(remaining)
            except WaitTimeoutError:
                raise WaitTimeoutError(
                    f"prompt {self.prompt_id} did not finish within {timeout} s "
                    "(no completion signal on the websocket)",
                    timeout=float(timeout or 0),
                    what=self.prompt_id,
                ) from None
            if event is None:
                return
            yield event
            if self._end_delivered and isinstance(event, ExecutingEvent) and event.finished:
                return

    def __iter__(self) -> Iterator[Event]:
        return self.iter(self.timeout)

    def drain(self) -> list[Event]:
        """Take every buffered event without waiting."""
        with self._cond:
            events = list(self._queue)
            self._queue.clear()
            if any(isinstance(e, ExecutingEvent) and e.finished for e in events):
                self._end_delivered = True
            return events

    def close(self) -> None:
        """Stop receiving: unregister from the client and drop the buffer. Safe to call
        twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        self._client._untrack(self)

    def __enter__(self) -> PromptEvents:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class Subscription:
    """A registered callback; :meth:`remove` unregisters it."""

    client: WebSocketClient
    callback: EventCallback
    types: tuple[type[Event], ...] | None

    def matches(self, event: Event) -> bool:
        return self.types is None or isinstance(event, self.types)

    def remove(self) -> None:
        """Unregister the callback (no effect if it is already removed)."""
        self.client.remove_callback(self)


class _Waiter:
    """One :meth:`WebSocketClient.wait_for` in progress."""

    def __init__(self, predicate: Callable[[Event], bool]) -> None:
        self.predicate = predicate
        self.done = threading.Event()
        self.result: Event | None = None
        self.error: BaseException | None = None

    def offer(self, event: Event) -> None:
        if self.done.is_set():
            return
        try:
            matched = self.predicate(event)
        except Exception as exc:  # delivered to the waiting thread
            self.error = exc
            self.done.set()
            return
        if matched:
            self.result = event
            self.done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class WebSocketClient:
    """A websocket connection to ComfyUI, received in a background daemon thread.

    Args:
        http: The shared HTTP client; its settings give the URL (``websocket_url`` plus the
            configured query parameters), the auth headers and cookies, and TLS verification.
        client_id: The ``clientId`` to register; prompts submitted with it are routed to this
            socket. Defaults to a fresh uuid4.
        preview_metadata: Ask for previews with metadata (binary type 4, carrying node and
            prompt ids) instead of type 1.
        ping_interval: Seconds between client pings; ``None`` disables pinging.
        ping_timeout: Seconds after a ping without any frame from the server before the
            connection is declared dead and re-opened.
        reconnect: Re-open the socket when it drops; ``False`` closes the client instead.
        max_reconnect_attempts: Attempts in a row before giving up (the client then closes
            and streams raise :class:`WebSocketError`); ``None``: no limit on the count.
        max_reconnect_time: Seconds of failed reconnecting after which the client gives up
            and closes (default 60), so a client that is never closed does not reconnect
            forever to a server that is gone. ``None`` retries until :meth:`close`. Within
            the limit a reconnect may reach a *new* server on the same address (a restart):
            that is intended; every tracked prompt then gets a
            :class:`~.ws_events.ReconnectedEvent` to reconcile with ``/history`` (a prompt the
            new server does not know is reported lost by the tracker).
        reconnect_delay: First backoff delay in seconds; doubles per attempt, with jitter.
        max_reconnect_delay: Upper bound of the backoff delay.
        handshake_timeout: Seconds to wait for the server's ``feature_flags`` answer after
            connecting.

    Connection state changes arrive as :class:`~.ws_events.ConnectionEvent`. Callbacks run on
    the receive thread: keep them short, and do not wait on this client from inside them.
    """

    def __init__(
        self,
        http: HttpClient,
        *,
        client_id: str | None = None,
        preview_metadata: bool = True,
        ping_interval: float | None = 10.0,
        ping_timeout: float = 20.0,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = None,
        max_reconnect_time: float | None = DEFAULT_MAX_RECONNECT_TIME,
        reconnect_delay: float = 0.2,
        max_reconnect_delay: float = 10.0,
        handshake_timeout: float = 3.0,
    ) -> None:
        _check_positive("ping_timeout", ping_timeout)
        _check_positive("reconnect_delay", reconnect_delay)
        _check_positive("max_reconnect_delay", max_reconnect_delay)
        _check_positive("handshake_timeout", handshake_timeout)
        if max_reconnect_time is not None:
            _check_positive("max_reconnect_time", max_reconnect_time)
        if ping_interval is not None:
            _check_positive("ping_interval", ping_interval)
        if max_reconnect_attempts is not None and (
            isinstance(max_reconnect_attempts, bool)
            or not isinstance(max_reconnect_attempts, int)
            or max_reconnect_attempts < 1
        ):
            raise InvalidArgumentError(
                "max_reconnect_attempts", "must be a whole number >= 1, or None"
            )
        if client_id is not None and (not isinstance(client_id, str) or not client_id.strip()):
            raise InvalidArgumentError("client_id", "must be a non-empty string")
        self.http = http
        self.client_id = client_id or uuid.uuid4().hex
        self.preview_metadata = preview_metadata
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.max_reconnect_time = max_reconnect_time
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.handshake_timeout = handshake_timeout
        self._backoff = RetryPolicy(
            retries=max_reconnect_attempts or 0,
            backoff=reconnect_delay,
            max_backoff=max_reconnect_delay,
            jitter=0.5,
        )

        settings = http.settings
        query = {**settings.query_params, "clientId": self.client_id}
        self._url = settings.websocket_url + "?" + urlencode(query)
        self.url = redact_url(self._url, settings.secrets)
        self._sslopt = http.tls_options()

        self._lock = threading.RLock()
        self._state_changed = threading.Condition(self._lock)
        self._state: ConnectionState | Literal["new"] = "new"
        self._connecting = False
        self._ws: _Socket | None = None
        self._opening: _Socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._close_sent = False
        self._streams: dict[str, list[PromptEvents]] = {}
        self._subscriptions: list[Subscription] = []
        self._waiters: list[_Waiter] = []
        self._server_features: FeatureFlagsEvent | None = None
        self._last_error: str | None = None
        self._reconnects = 0
        # Attribution state, touched by the receive thread only.
        self._running_prompt: str | None = None
        self._current_node: str | None = None
        self._prompt_before_drop: str | None = None

    def __repr__(self) -> str:
        return (
            f"WebSocketClient(url={self.url!r}, client_id={self.client_id!r}, "
            f"state={self._state!r})"
        )

    # -- state ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the socket is open right now."""
        return self._state == "connected"

    @property
    def state(self) -> str:
        """``"new"``, ``"connected"``, ``"disconnected"``, ``"reconnecting"`` or ``"closed"``."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether the client was closed (by :meth:`close`, or after giving up)."""
        return self._state == "closed"

    @property
    def server_features(self) -> FeatureFlagsEvent | None:
        """The server's answer to the feature-flag handshake (``None`` if it gave none)."""
        return self._server_features

    @property
    def reconnect_count(self) -> int:
        """How many times the socket was re-opened since :meth:`connect`."""
        return self._reconnects

    @property
    def last_error(self) -> str | None:
        """Why the socket last dropped or failed to open (redacted), if it ever did."""
        return self._last_error

    def error(self, message: str) -> WebSocketError:
        """Build a :class:`WebSocketError` about this client's (redacted) URL."""
        return WebSocketError(f"{message} [{self.url}]", method="GET", url=self.url)

    # -- connecting -----------------------------------------------------------------------

    def connect(self, timeout: float | None = None, *, deadline: Deadline | None = None) -> None:
        """Open the socket (``GET /ws?clientId=...``) and start the receive thread.

        Returns at once if the socket is already open. While the receive thread is
        reconnecting, waits for it instead.

        Args:
            timeout: Seconds for the connection (TCP, TLS, HTTP upgrade); the feature-flag
                handshake then waits at most as long again (and at most
                ``handshake_timeout``). Defaults to the settings' ``connect_timeout``.
            deadline: The call's deadline (default: the active ``Deadline.scope()``):
                ``timeout`` is clamped to the time left.

        Raises:
            WebSocketError: The socket could not be opened within ``timeout``, or the client
                is closed. The message carries the redacted URL. The subclass says why, as
                over HTTP: :class:`~witness.errors.WebSocketUnavailableError` (refused, DNS,
                TLS: a ``ServerUnavailableError``), :class:`~witness.errors.WebSocketTimeoutError`
                (a ``RequestTimeoutError``), or the handshake variant of the status's
                ``ApiError`` (a 403 from the origin check or an auth proxy is a
                ``ForbiddenError``).
        """
        if timeout is None:
            timeout = self.http.settings.connect_timeout
        _check_positive("timeout", timeout)
        limit = deadline if deadline is not None else current_deadline()
        if limit is not None:
            timeout = limit.clamp(timeout) or timeout
        until = time.monotonic() + timeout
        with self._lock:
            while True:
                if self._closing.is_set() or self._state == "closed":
                    raise self.error("the websocket client is closed")
                if self._state == "connected":
                    return
                if self._thread is None and not self._connecting:
                    self._connecting = True
                    break
                remaining = until - time.monotonic()
                if remaining <= 0:
                    detail = f": {self._last_error}" if self._last_error else ""
                    raise self.error(f"websocket not connected within {timeout} s{detail}")
                self._state_changed.wait(remaining)
        try:
            ws, pending = self._open(timeout, require_features=False)
        except BaseException:
            with self._lock:
                self._connecting = False
                self._state_changed.notify_all()
            raise
        with self._lock:
            self._connecting = False
            if self._closing.is_set():
                _shutdown(ws)
                self._state = "closed"
                self._state_changed.notify_all()
                raise self.error("the websocket client was closed while connecting")
            self._ws = ws
            self._state = "connected"
            initial_done = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(ws, [ConnectionEvent(state="connected", attempt=0), *pending], initial_done),
                name=f"witness-ws-{self.client_id[:8]}",
                daemon=True,
            )
            self._thread.start()
            self._state_changed.notify_all()
        # Let the receive thread hand the handshake's events (the connect event, status,
        # feature_flags) to the callbacks first, so that streams tracked from now on start
        # clean and callbacks always see them.
        initial_done.wait(max(1.0, until - time.monotonic()))
        logger.debug("websocket %s connected", self.url)

    def ensure_connected(
        self, timeout: float | None = None, *, deadline: Deadline | None = None
    ) -> None:
        """Make sure the socket is open: connect it, or wait for a reconnect in progress.

        Same as :meth:`connect`; the name says what a caller about to submit wants.
        """
        self.connect(timeout, deadline=deadline)

    def reconnect_now(self) -> None:
        """Drop the current socket so the receive thread opens a new one (a reconnect).

        Useful when the caller suspects the socket went silent (see the duplicate-clientId
        problem of the server). Tracked prompts get a :class:`~.ws_events.ReconnectedEvent`.
        """
        self._abort_socket()

    def close(self, timeout: float = 5.0) -> None:
        """Close the socket and join the receive thread (within ``timeout`` seconds).

        Tracked streams and waits still running get a :class:`WebSocketError`. Safe to call
        twice, and from a callback (the thread then ends after the callback returns).
        """
        with self._lock:
            self._closing.set()
            thread = self._thread
            ws = self._ws
            if thread is None:
                if self._state != "closed":
                    self._state = "closed"
                    self._state_changed.notify_all()
                    self._fail_consumers("the websocket client was closed")
                return
        if thread is threading.current_thread():
            return
        if ws is not None and thread.is_alive():
            self._send_close(ws)
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("websocket receive thread did not stop in %.1f s; aborting", timeout)
            self._abort_socket()
            thread.join(1.0)
            if thread.is_alive():
                logger.error("websocket receive thread %s is still running", thread.name)

    def __enter__(self) -> WebSocketClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- consumers ------------------------------------------------------------------------

    def track(self, prompt_id: str, *, timeout: float | None = None) -> PromptEvents:
        """Start buffering the events of one prompt; call it *before* ``POST /prompt``.

        Args:
            prompt_id: The prompt id the caller will submit (generated client-side).
            timeout: Default overall deadline for ``for event in stream``.

        Returns:
            The stream; close it (or use it as a context manager) when done.
        """
        if not isinstance(prompt_id, str) or not prompt_id:
            raise InvalidArgumentError("prompt_id", "must be a non-empty string")
        stream = PromptEvents(self, prompt_id, timeout)
        with self._lock:
            if self._state == "closed":
                stream._client_gone("the websocket client is closed")
            else:
                self._streams.setdefault(prompt_id, []).append(stream)
        return stream

    def _untrack(self, stream: PromptEvents) -> None:
        with self._lock:
            streams = self._streams.get(stream.prompt_id)
            if streams and stream in streams:
                streams.remove(stream)
                if not streams:
                    del self._streams[stream.prompt_id]

    def tracked(self) -> list[str]:
        """Prompt ids with an open stream (finished prompts are unregistered)."""
        with self._lock:
            return list(self._streams)

    def add_callback(self, callback: EventCallback, event_types: EventTypes = None) -> Subscription:
        """Call ``callback(event)`` on the receive thread for every matching event.

        Args:
            callback: Called with each event. If it raises, the error is logged and the
                thread goes on.
            event_types: An event class or a tuple of them (subclasses match); ``None`` for
                every event, including :class:`~.ws_events.ConnectionEvent`.

        Returns:
            A handle whose :meth:`Subscription.remove` unregisters the callback.
        """
        if not callable(callback):
            raise InvalidArgumentError("callback", "must be callable")
        types: tuple[type[Event], ...] | None
        if event_types is None:
            types = None
        elif isinstance(event_types, tuple):
            types = event_types
        else:
            types = (event_types,)
        if types is not None and not all(
            isinstance(t, type) and issubclass(t, Event) for t in types
        ):
            raise InvalidArgumentError("event_types", "must be Event classes")
        subscription = Subscription(self, callback, types)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def remove_callback(self, callback: EventCallback | Subscription) -> bool:
        """Unregister a callback (every registration of it) or one subscription.

        Returns:
            Whether anything was removed.
        """
        with self._lock:
            before = len(self._subscriptions)
            if isinstance(callback, Subscription):
                self._subscriptions = [s for s in self._subscriptions if s is not callback]
            else:
                self._subscriptions = [s for s in self._subscriptions if s.callback != callback]
            return len(self._subscriptions) != before

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float) -> Event:
        """Block until an event that arrives from now on satisfies ``predicate``.

        Events received before the call are not considered; to follow a prompt, use
        :meth:`track` before submitting it.

        Args:
            predicate: Called on the receive thread with each event; its exception is raised
                here.
            timeout: Seconds to wait.

        Returns:
            The first matching event.

        Raises:
            WaitTimeoutError: Nothing matched within ``timeout``.
            WebSocketError: The client was closed while waiting.
        """
        _check_positive("timeout", timeout)
        if threading.current_thread() is self._thread:
            raise InvalidArgumentError(
                "wait_for", "cannot wait on the receive thread (called from a callback)"
            )
        waiter = _Waiter(predicate)
        with self._lock:
            if self._state == "closed":
                raise self.error("the websocket client is closed")
            self._waiters.append(waiter)
        try:
            if not waiter.done.wait(timeout):
                raise WaitTimeoutError(
                    f"no matching websocket event within {timeout} s", timeout=timeout
                )
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        if waiter.error is not None:
            raise waiter.error
        if waiter.result is None:  # pragma: no cover - done is only set with one of them
            raise self.error("wait ended without an event")
        return waiter.result

    # -- socket ---------------------------------------------------------------------------

    def _headers(self) -> list[str]:
        return [f"{name}: {value}" for name, value in self.http.handshake_headers().items()]

    def _open(self, timeout: float, *, require_features: bool) -> tuple[_Socket, list[Event]]:
        """Connect, send the feature-flag handshake and read until the server answers it.

        Returns:
            The open socket and the events received during the handshake.
        """
        ws = _Socket(enable_multithread=True, skip_utf8_validation=True, sslopt=self._sslopt)
        with self._lock:
            self._opening = ws  # so that close() can cut a slow handshake short
        try:
            ws.connect(  # type: ignore[no-untyped-call]
                self._url,
                header=self._headers(),
                cookie=self.http.cookie_header(),
                suppress_origin=True,
                timeout=timeout,
            )
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            scrub_exception(exc, self.http.settings.secrets)  # it is chained: keep it clean
            error = websocket_error(exc, url=self.url, timeout=timeout, redact=self.http.redact)
            raise self._failed(error, exc) from exc
        finally:
            if ws.sock is None:
                with self._lock:
                    self._opening = None
        try:
            pending = self._handshake(ws, require_features, min(timeout, self.handshake_timeout))
        except BaseException:
            _shutdown(ws)
            raise
        finally:
            with self._lock:
                self._opening = None
        return ws, pending

    def _failed(self, error: WitnessError, exc: BaseException) -> WitnessError:
        """Remember why opening failed (the redacted message) and return ``error``."""
        self._last_error = error.message
        logger.debug("websocket %s: %s (%s)", self.url, error, self.http.redact(repr(exc)))
        return error

    def _open_error(self, reason: str, exc: BaseException) -> WebSocketError:
        scrub_exception(exc, self.http.settings.secrets)  # it is chained: keep it clean
        reason = self.http.redact(reason)
        self._last_error = reason
        logger.debug("websocket %s: %s (%s)", self.url, reason, self.http.redact(repr(exc)))
        return self.error(f"cannot open the websocket: {reason}")

    def _handshake(self, ws: _Socket, require_features: bool, wait: float) -> list[Event]:
        flags = {
            "type": "feature_flags",
            "data": {"supports_preview_metadata": self.preview_metadata},
        }
        pending: list[Event] = []
        try:
            ws.send(json.dumps(flags))
            deadline = time.monotonic() + wait
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                ws.settimeout(remaining)
                try:
                    received = _receive(ws)
                except websocket.WebSocketTimeoutException:
                    break
                if received is None:
                    continue
                opcode, data = received
                if opcode == OP_CLOSE:
                    raise self._open_error(
                        "the server closed the socket during the handshake", _ConnectionLostError()
                    )
                event = self._decode(opcode, data)
                if event is None:
                    continue
                if isinstance(event, StatusEvent) and event.sid and event.sid != self.client_id:
                    logger.warning(
                        "websocket %s: the server registered client id %r instead of %r; "
                        "prompts of this client will not be routed to it",
                        self.url,
                        event.sid,
                        self.client_id,
                    )
                pending.append(event)
                if isinstance(event, FeatureFlagsEvent):
                    self._server_features = event
                    return pending
        except (websocket.WebSocketException, OSError) as exc:
            raise self._open_error(f"handshake failed: {_describe(exc)}", exc) from exc
        if require_features:
            # The server answered the handshake before: silence means this socket is not
            # (or no longer) registered, e.g. the old socket's cleanup removed our id.
            raise self._open_error(
                f"the server did not answer the feature-flag handshake within {wait} s",
                _ConnectionLostError(),
            )
        logger.info("websocket %s: the server did not answer the feature-flag handshake", self.url)
        return pending

    def _send_close(self, ws: websocket.WebSocket) -> None:
        with self._lock:
            if self._close_sent:
                return
            self._close_sent = True
        try:
            ws.send_close()
        except (websocket.WebSocketException, OSError, AttributeError):
            logger.debug("websocket %s: sending the close frame failed", self.url)

    def _abort_socket(self) -> None:
        """Cut the current socket (shutdown, no close frame); the receive thread notices."""
        with self._lock:
            candidates = (self._ws, self._opening)
        for ws in candidates:
            sock = getattr(ws, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # -- receive thread -------------------------------------------------------------------

    def _run(
        self,
        ws: _Socket | None,
        pending: list[Event],
        initial_done: threading.Event,
    ) -> None:
        failure: str | None = None
        try:
            while True:
                if ws is None:
                    ws, pending, failure = self._reconnect_loop()
                    if ws is None:
                        break
                for event in pending:
                    self._dispatch(event)
                pending = []
                initial_done.set()
                try:
                    self._session(ws)
                except _ConnectionLostError as exc:
                    reason = self.http.redact(str(exc))
                    self._last_error = reason
                    _shutdown(ws)
                    with self._lock:
                        self._ws = None
                    if self._closing.is_set():
                        break
                    logger.warning("websocket %s dropped: %s", self.url, reason)
                    self._prompt_before_drop = self._running_prompt
                    self._running_prompt = None
                    self._current_node = None
                    self._set_state("disconnected")
                    self._dispatch(ConnectionEvent(state="disconnected", error=reason))
                    ws = None
                    if not self.reconnect:
                        failure = f"the connection dropped ({reason}) and reconnect is off"
                        break
                    continue
                _shutdown(ws)
                break
        except Exception as exc:  # pragma: no cover - a bug; keep the client consistent
            logger.exception("websocket receive thread failed")
            failure = f"receive thread failed: {exc!r}"
        finally:
            with self._lock:
                if self._ws is not None:
                    _shutdown(self._ws)
                self._ws = None
            self._finish(failure)
            initial_done.set()

    def _reconnect_loop(self) -> tuple[_Socket | None, list[Event], str | None]:
        attempt = 0
        give_up_at = (
            None if self.max_reconnect_time is None else time.monotonic() + self.max_reconnect_time
        )
        while not self._closing.is_set():
            attempt += 1
            if give_up_at is not None and time.monotonic() >= give_up_at:
                return (
                    None,
                    [],
                    (
                        f"gave up reconnecting after {self.max_reconnect_time:g} s "
                        f"({attempt - 1} attempts; last error: {self._last_error})"
                    ),
                )
            if self.max_reconnect_attempts is not None and attempt > self.max_reconnect_attempts:
                return (
                    None,
                    [],
                    (
                        f"gave up after {self.max_reconnect_attempts} reconnect attempts "
                        f"(last error: {self._last_error})"
                    ),
                )
            delay = self._backoff.delay(attempt - 1)
            if give_up_at is not None:
                delay = max(0.0, min(delay, give_up_at - time.monotonic()))
            self._set_state("reconnecting")
            self._dispatch(
                ConnectionEvent(
                    state="reconnecting", attempt=attempt, error=self._last_error, delay=delay
                )
            )
            if self._closing.wait(delay):
                break
            timeout = self.http.settings.connect_timeout
            try:
                ws, pending = self._open(
                    timeout, require_features=self._server_features is not None
                )
            except WebSocketError as exc:
                logger.info("websocket reconnect attempt %d failed: %s", attempt, exc)
                continue
            with self._lock:
                if self._closing.is_set():
                    _shutdown(ws)
                    break
                self._ws = ws
                self._close_sent = False
                self._reconnects += 1
                streams = [s for group in self._streams.values() for s in group]
            self._set_state("connected")
            logger.info("websocket %s reconnected after %d attempt(s)", self.url, attempt)
            events: list[Event] = [ConnectionEvent(state="connected", attempt=attempt)]
            events.extend(
                ReconnectedEvent(prompt_id=s.prompt_id, attempt=attempt, error=self._last_error)
                for s in streams
                if not s.finished
            )
            return ws, events + pending, None
        return None, [], None

    def _session(self, ws: _Socket) -> None:
        """Receive until the client closes (returns) or the connection drops (raises)."""
        ws.settimeout(_TICK)
        last_rx = time.monotonic()
        next_ping = last_rx + self.ping_interval if self.ping_interval else None
        ping_sent: float | None = None
        close_deadline: float | None = None
        while True:
            now = time.monotonic()
            if self._closing.is_set():
                if close_deadline is None:
                    self._send_close(ws)
                    close_deadline = now + 1.0
                elif now >= close_deadline:
                    return
            elif next_ping is not None and self.ping_interval:
                if ping_sent is not None and last_rx < ping_sent:
                    if now - ping_sent > self.ping_timeout:
                        raise _ConnectionLostError(
                            f"no answer to a ping within {self.ping_timeout} s"
                        )
                elif now >= next_ping:
                    try:
                        ws.ping(b"witness")
                    except (websocket.WebSocketException, OSError) as exc:
                        raise _ConnectionLostError(f"ping failed: {_describe(exc)}") from exc
                    ping_sent = now
                    next_ping = now + self.ping_interval
            try:
                received = _receive(ws)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError) as exc:
                if self._closing.is_set():
                    return
                raise _ConnectionLostError(_describe(exc)) from exc
            last_rx = time.monotonic()
            if received is None:
                continue
            opcode, data = received
            if opcode == OP_CLOSE:
                if self._closing.is_set():
                    return
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                raise _ConnectionLostError(f"the server closed the connection (code {code})")
            event = self._decode(opcode, data)
            if event is not None and not self._closing.is_set():
                self._dispatch(event)

    def _decode(self, opcode: int, data: bytes) -> Event | None:
        if opcode == OP_TEXT:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                return MalformedFrameEvent(reason=f"text frame is not UTF-8 ({exc})", raw=data)
            return decode_text(text)
        if opcode == OP_BINARY:
            return decode_binary(data)
        return None

    def _set_state(self, state: ConnectionState) -> None:
        with self._lock:
            if self._state != "closed":
                self._state = state
            self._state_changed.notify_all()

    def _finish(self, failure: str | None) -> None:
        with self._lock:
            self._state = "closed"
            self._closing.set()
            self._state_changed.notify_all()
        if failure:
            logger.error("websocket %s closed: %s", self.url, failure)
        self._dispatch(ConnectionEvent(state="closed", error=failure))
        reason = failure or "the websocket client was closed"
        self._fail_consumers(reason)

    def _fail_consumers(self, reason: str) -> None:
        with self._lock:
            streams = [s for group in self._streams.values() for s in group]
            self._streams.clear()
            waiters = list(self._waiters)
        for stream in streams:
            stream._client_gone(reason)
        for waiter in waiters:
            waiter.fail(self.error(f"websocket closed while waiting: {reason}"))

    # -- attribution and delivery ---------------------------------------------------------

    def _attribute(self, event: Event) -> Event:
        """Fill in the prompt of events the server sends without one (receive thread)."""
        if isinstance(event, ExecutionStartEvent) and event.prompt_id:
            self._running_prompt = event.prompt_id
            self._current_node = None
            self._prompt_before_drop = None
        elif isinstance(event, ExecutingEvent):
            if event.prompt_id is None:
                if event.node is not None:
                    # Sent on (re)connect when this client's prompt is running.
                    running = self._running_prompt or self._prompt_before_drop
                    self._current_node = event.node
                    if running is not None:
                        self._running_prompt = running
                        return replace(event, prompt_id=running, attributed=True)
            elif event.node is None:
                if self._running_prompt == event.prompt_id:
                    self._running_prompt = None
                    self._current_node = None
            else:
                self._running_prompt = event.prompt_id
                self._current_node = event.node
        elif isinstance(event, ProgressEvent) and event.prompt_id:
            self._running_prompt = event.prompt_id
            if event.node is not None:
                self._current_node = event.node
        elif isinstance(event, PreviewEvent):
            if (
                event.binary_type == BINARY_PREVIEW_IMAGE
                and event.prompt_id is None
                and self._running_prompt is not None
            ):
                return replace(
                    event,
                    prompt_id=self._running_prompt,
                    node_id=event.node_id or self._current_node,
                    attributed=True,
                )
        elif isinstance(event, TextEvent) and event.prompt_id is None:
            running = self._running_prompt
            if running is not None and event.node_id == self._current_node:
                with self._lock:
                    tracked = running in self._streams
                if tracked:
                    return replace(event, prompt_id=running, attributed=True)
        return event

    def _dispatch(self, event: Event) -> None:
        """Attribute an event and hand it to streams, waits and callbacks (receive thread)."""
        event = self._attribute(event)
        if isinstance(event, MalformedFrameEvent):
            logger.warning("websocket %s: malformed frame: %s", self.url, event.reason)
        with self._lock:
            if isinstance(event, ConnectionEvent):
                streams = [s for group in self._streams.values() for s in group]
            elif event.prompt_id is not None:
                streams = list(self._streams.get(event.prompt_id, ()))
            else:
                streams = []
            waiters = list(self._waiters)
            subscriptions = [s for s in self._subscriptions if s.matches(event)]
        for stream in streams:
            if stream._put(event):
                self._untrack(stream)
        for waiter in waiters:
            waiter.offer(event)
        for subscription in subscriptions:
            try:
                subscription.callback(event)
            except Exception:
                logger.exception(
                    "websocket callback %r raised on %s event", subscription.callback, event.type
                )


class _Socket(websocket.WebSocket):
    """websocket-client's socket (handshake, sending, pings, close) with witness's
    buffered frame reader for what the server sends (:mod:`.ws_frames`)."""

    frames: FrameReader | None = None


def _receive(ws: _Socket) -> tuple[int, bytes] | None:
    """Read one frame; return ``(opcode, payload)`` of a complete message or control frame,
    ``None`` for a fragment. Raises ``WebSocketTimeoutException`` when nothing arrived
    (a partial frame stays buffered and is resumed by the next call). A ping is answered."""
    frames = ws.frames
    if frames is None:
        if ws.sock is None:
            raise websocket.WebSocketConnectionClosedException("the socket is closed")
        frames = ws.frames = FrameReader(ws.sock)
    received = frames.read()
    if received is not None and received[0] == OP_PING:
        ws.pong(received[1])
    return received


def _shutdown(ws: websocket.WebSocket) -> None:
    """Close the socket's file descriptor (idempotent, never raises)."""
    try:
        ws.shutdown()  # type: ignore[no-untyped-call]
    except Exception:  # best effort: the socket is being discarded
        logger.debug("closing a websocket failed", exc_info=True)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgumentError(name, f"must be a positive number of seconds, got {value!r}")

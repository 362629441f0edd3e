"""The native backend: prompts run on one ComfyUI server through its own API.

``submit`` registers the prompt's websocket stream (when the websocket executor is used and the
socket is up) *before* ``POST /prompt``, so no event is missed; ``wait`` follows the events as a
hint and confirms with ``GET /history/{prompt_id}`` (the truth) through the
:class:`~witness.core.tracking.Tracker`; the entry becomes an
:class:`~witness.core.results.ExecuteResult` through :class:`Assembler`. Every request is
bounded by the call's :class:`~witness.transport.deadline.Deadline`.

A :class:`NativeHandle` holds what it needs (tracker, assembler, stream); it never reaches
back into the facade.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from witness.api_clients.file_client import FileClient
from witness.api_clients.history_client import HistoryClient
from witness.api_clients.prompt_client import PromptClient
from witness.api_clients.queue_client import QueueClient
from witness.api_clients.system_client import SystemClient
from witness.api_clients.types import CancelResult, FileRef
from witness.api_clients.websocket_client import PromptEvents, WebSocketClient
from witness.backends.base import BackendOptions, PreparedWorkflow, WaitCallbacks
from witness.config.settings import Settings
from witness.core import dsl
from witness.core.catalog import CatalogService
from witness.core.results import ExecuteResult, OutputFile, assemble
from witness.core.tracking import Tracker, WaitOutcome
from witness.core.uploads import MediaResolver
from witness.core.validate import NodeCatalog
from witness.errors import (
    InvalidArgumentError,
    PromptLostError,
    UnsafeOutputError,
    WebSocketError,
    WitnessError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

__all__ = ["Assembler", "NativeBackend", "NativeHandle", "NativeOptions"]

logger = logging.getLogger(__name__)

ExecutorKind = Literal["websocket", "http"]
EXECUTORS: tuple[ExecutorKind, ...] = ("websocket", "http")
#: The longest a submit waits for the websocket to connect (clamped to the deadline).
WS_CONNECT_LIMIT = 10.0


@dataclass(frozen=True)
class NativeOptions(BackendOptions):
    """What only the native backend understands.

    Attributes:
        executor: ``"websocket"`` (events, confirmed by history) or ``"http"`` (history
            polling); ``None``: the backend's default.
        extra_data: Extra ``extra_data`` for ``POST /prompt`` (e.g. ``extra_pnginfo``).
        prompt_id: The prompt id to submit under (default: a fresh uuid4). A caller that
            chooses it can find the prompt again after a crash (the batch journal does).
        client_id: The websocket client id sent with the prompt (default: the backend's).
    """

    executor: ExecutorKind | None = None
    extra_data: Mapping[str, Any] | None = field(default=None, hash=False)
    prompt_id: str | None = None
    client_id: str | None = None


class Assembler:
    """History entries → :class:`ExecuteResult` for one server (``/view`` URLs, downloads).

    Args:
        files: The server's file client.
        http: The transport (for the encoded URL of a file name ``/view`` would refuse).
    """

    def __init__(self, files: FileClient, http: HttpClient) -> None:
        self._files = files
        self._http = http

    def __call__(
        self,
        prompt_id: str,
        outcome: WaitOutcome,
        signature: dsl.Signature | None,
        prompt: Mapping[str, Any] | None,
        started: float,
    ) -> ExecuteResult:
        """The result of a wait's outcome (a re-attached prompt, known only by its id, takes
        its graph and ``$output`` names from the entry the server stored)."""
        if not prompt and outcome.entry is not None and outcome.entry.prompt:
            prompt = outcome.entry.prompt
            signature = signature or stored_signature(prompt)
        result = assemble(
            prompt_id,
            outcome.entry,
            signature=signature,
            prompt=prompt,
            view_url=self.view_url,
            started=started,
            status_override=outcome.status,
            downloader=self.download,
        )
        if outcome.status == "interrupted" and outcome.reason:
            result.msg = outcome.reason
        return result

    def view_url(self, filename: str, subfolder: str, type_: str) -> str:
        """The ``GET /view`` URL of an output file."""
        try:
            return self._files.view_url(FileRef(filename, subfolder, type_ or "output"))
        except InvalidArgumentError:
            # A name the server itself produced but /view would refuse (".." or absolute):
            # keep the result, with an encoded URL that the server will answer 400 to.
            logger.warning("output file %r (%r) has an unsafe name", filename, subfolder)
            query = {"filename": filename, "type": type_ or "output"}
            if subfolder:
                query["subfolder"] = subfolder
            return self._http.url("/view") + "?" + urlencode(query)

    def download(self, item: OutputFile, destination: Path) -> int:
        """Stream one output file to ``destination`` (``GET /view``)."""
        ref = FileRef(item.filename, item.subfolder, item.type or "output")
        try:
            return self._files.download_to(ref, destination)
        except InvalidArgumentError as exc:
            raise UnsafeOutputError(
                f"not saved: the server named output file {item.filename!r} "
                f"(subfolder {item.subfolder!r}) of node {item.node_id}, which cannot be "
                "fetched safely",
            ) from exc


class NativeHandle:
    """A prompt submitted to one ComfyUI server: wait for it, or cancel it.

    Attributes:
        prompt_id: The prompt's id on the server.
        number: Its queue number.
        prompt: The API prompt that was submitted.
        signature: The workflow's DSL signature.
        dropped_outputs: Output nodes the server dropped at submit (their inputs failed
            validation); the rest runs.
        node_errors: The server's per-node problems behind ``dropped_outputs``.
        server: The server's base URL.
    """

    def __init__(
        self,
        *,
        tracker: Tracker,
        history: HistoryClient,
        assembler: Assembler,
        prompt_id: str,
        number: float,
        prompt: dict[str, Any],
        signature: dsl.Signature | None,
        stream: PromptEvents | None,
        started: float,
        deadline: Deadline | None,
        default_timeout: float,
        server: str,
        node_errors: tuple[Any, ...] = (),
        dropped_outputs: tuple[str, ...] = (),
    ) -> None:
        self._tracker = tracker
        self._history = history
        self._assembler = assembler
        self._prompt_id = prompt_id
        self.number = number
        self.prompt = prompt
        self.signature = signature
        self.node_errors = node_errors
        self.dropped_outputs = dropped_outputs
        self.server = server
        self._stream = stream
        self._started = started
        self._deadline = deadline
        self._default_timeout = default_timeout
        self._result: ExecuteResult | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = self._result.status if self._result else "waiting"
        return f"NativeHandle(prompt_id={self._prompt_id!r}, number={self.number}, {state})"

    @property
    def prompt_id(self) -> str:
        """The prompt's id on the server."""
        return self._prompt_id

    def wait(
        self,
        deadline: Deadline | float | None = None,
        callbacks: WaitCallbacks | None = None,
        *,
        timeout: float | None = None,
        on_progress: Any = None,
        on_preview: Any = None,
        cancel_on_timeout: bool = False,
    ) -> ExecuteResult:
        """Wait for the prompt and return its result (the same one on later calls).

        Args:
            deadline: The call's deadline; a number is taken as ``timeout`` (seconds from
                now). Default: what is left of the deadline given at submit, else the
                backend's default timeout.
            callbacks: ``on_progress`` / ``on_preview``.
            timeout: Seconds from now (instead of ``deadline``).
            on_progress: Shorthand for ``callbacks.on_progress``.
            on_preview: Shorthand for ``callbacks.on_preview``.
            cancel_on_timeout: Cancel the prompt on the server if the deadline passes.

        Returns:
            The result; ``status`` is ``"timeout"`` if the deadline passed (the prompt may
            still run on the server unless ``cancel_on_timeout``; call ``wait`` again).

        Raises:
            PromptLostError: The prompt vanished from the server (restart).
            TransportError: The server stayed unreachable until the deadline.
        """
        if isinstance(deadline, int | float):
            timeout = _positive("timeout", deadline)
        if timeout is not None:
            deadline = Deadline.after(_positive("timeout", timeout))
        elif not isinstance(deadline, Deadline):
            deadline = self._deadline or Deadline.after(self._default_timeout)
        if callbacks is not None:
            on_progress = on_progress or callbacks.on_progress
            on_preview = on_preview or callbacks.on_preview
        with self._lock:
            if self._result is not None and self._result.status != "timeout":
                return self._result
            try:
                with deadline.scope():
                    outcome = self._tracker.wait(
                        self._prompt_id,
                        deadline=deadline.at if deadline.at is not None else float("inf"),
                        stream=self._stream,
                        node_count=len(self.prompt),
                        on_progress=on_progress,
                        on_preview=on_preview,
                        cancel_on_timeout=cancel_on_timeout,
                    )
            except PromptLostError:
                self.release()
                raise
            result = self._assembler(
                self._prompt_id, outcome, self.signature, self.prompt, self._started
            )
            if result.status != "timeout":
                self.release()
                self._tracker.forget(self._prompt_id)
            elif cancel_on_timeout:
                # Cancelled: a dequeued prompt never sends its completion event, so the
                # stream would stay registered forever; a later wait() polls instead.
                self.release()
            self._result = result
            return result

    def release(self) -> None:
        """Stop buffering the prompt's websocket events (a later :meth:`wait` polls the
        history instead). Called automatically once the prompt has finished."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def cancel(self) -> CancelResult:
        """Cancel the prompt: dequeue it if pending, interrupt it if running.

        A thread blocked in :meth:`wait` then gets status ``"interrupted"``.
        """
        return self._tracker.cancel(self._prompt_id)

    def done(self) -> bool:
        """Whether the server has finished the prompt (one ``GET /history/{prompt_id}``)."""
        if self._result is not None and self._result.status != "timeout":
            return True
        return self._history.get(self._prompt_id) is not None


class NativeBackend:
    """One ComfyUI server as a :class:`~witness.backends.base.Backend`.

    Cheap to build and thread-safe: the websocket connects on first use, ``/object_info`` is
    fetched on first validation.

    Args:
        http: The server's transport (shared with the group clients).
        executor: Default executor, ``"websocket"`` or ``"http"``.
        client_id: The websocket client id (default: a fresh one).
        catalog: The node catalog service (default: one for this server).
        default_timeout: Seconds a :meth:`NativeHandle.wait` without deadline waits.

    Attributes:
        http, prompt, history, queue, files, system: The server's group clients.
        tracker: Waits for prompts.
        catalog_service: The ``/object_info`` cache.
        client_id: The websocket client id.
    """

    name = "native"

    def __init__(
        self,
        http: HttpClient,
        *,
        executor: ExecutorKind = "websocket",
        client_id: str | None = None,
        catalog: CatalogService | None = None,
        default_timeout: float = 600.0,
    ) -> None:
        if executor not in EXECUTORS:
            raise InvalidArgumentError("executor", f"must be one of {EXECUTORS}, got {executor!r}")
        self.http = http
        self.executor: ExecutorKind = executor
        self.client_id = client_id or uuid.uuid4().hex
        self.default_timeout = _positive("default_timeout", default_timeout)
        self.prompt = PromptClient(http)
        self.history = HistoryClient(http)
        self.queue = QueueClient(http)
        self.files = FileClient(http)
        self.system = SystemClient(http)
        self.tracker = Tracker(self.history, self.queue)
        self.catalog_service = catalog if catalog is not None else CatalogService(self.system)
        self.assembler = Assembler(self.files, http)
        self._ws: WebSocketClient | None = None
        self._ws_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **settings_overrides: Any) -> NativeBackend:
        """A backend for the server at ``url`` (other :class:`Settings` fields as keywords;
        ``executor``, ``client_id`` and ``default_timeout`` go to the backend)."""
        own = {
            k: settings_overrides.pop(k)
            for k in ("executor", "client_id", "default_timeout")
            if k in settings_overrides
        }
        return cls(HttpClient(Settings.from_env(api_url=url, **settings_overrides)), **own)

    def __repr__(self) -> str:
        return f"NativeBackend(api_url={self.http.base_url!r}, executor={self.executor!r})"

    @property
    def ws(self) -> WebSocketClient:
        """The websocket client (created on first use; connects on demand)."""
        with self._ws_lock:
            if self._ws is None or self._ws.closed:
                self._ws = WebSocketClient(self.http, client_id=self.client_id)
            return self._ws

    # -- the Backend protocol --------------------------------------------------------------

    def catalog(self, deadline: Deadline) -> NodeCatalog:
        """The server's node definitions (``GET /object_info``, cached)."""
        return self.catalog_service.catalog(deadline)

    def refresh_catalog(self, class_types: Any, deadline: Deadline) -> NodeCatalog:
        """Refetch some classes (``GET /object_info/{node_class}``), then the catalog."""
        self.catalog_service.refresh_classes(class_types, deadline)
        return self.catalog_service.catalog(deadline)

    def uploader(self, deadline: Deadline) -> MediaResolver:
        """A media resolver for one call (``POST /upload/image``, ``/upload/mask``)."""
        return MediaResolver(self.files)

    def submit(
        self,
        prepared: PreparedWorkflow,
        deadline: Deadline,
        options: BackendOptions | None = None,
    ) -> NativeHandle:
        """``POST /prompt`` (the websocket stream registered first); returns the handle.

        Raises:
            InvalidArgumentError: Options of another backend, or an unknown executor.
            PromptValidationError: The server refused the prompt.
            TransportError: The server could not be reached.
        """
        opts = _native_options(options)
        kind = opts.executor or self.executor
        if kind not in EXECUTORS:
            raise InvalidArgumentError("executor", f"must be one of {EXECUTORS}, got {kind!r}")
        prompt_id = opts.prompt_id or str(uuid.uuid4())
        extra = dict(prepared.extra.get("extra_data") or {})
        extra.update(opts.extra_data or {})
        with deadline.scope():
            stream = self._track(prompt_id, deadline) if kind == "websocket" else None
            try:
                queued = self.prompt.submit(
                    prepared.prompt,
                    client_id=opts.client_id or self.client_id,
                    prompt_id=prompt_id,
                    extra_data=extra or None,
                )
            except BaseException:
                if stream is not None:
                    stream.close()
                raise
        logger.info("prompt %s queued as number %s", prompt_id, queued.number)
        return NativeHandle(
            tracker=self.tracker,
            history=self.history,
            assembler=self.assembler,
            prompt_id=prompt_id,
            number=queued.number,
            prompt=prepared.prompt,
            signature=prepared.signature,
            stream=stream,
            started=deadline.started,
            deadline=deadline if deadline.at is not None else None,
            default_timeout=self.default_timeout,
            server=self.http.base_url,
            node_errors=tuple(queued.node_errors),
            dropped_outputs=tuple(queued.dropped_outputs),
        )

    def attach(self, prompt_id: str, deadline: Deadline) -> NativeHandle:
        """A handle for a prompt submitted earlier, by anyone (re-attach after a crash).

        It polls ``/history`` (the prompt's websocket events go to whoever submitted it);
        output names come from the ``$output`` titles of the graph the server stored, read
        when the prompt has finished.
        """
        return NativeHandle(
            tracker=self.tracker,
            history=self.history,
            assembler=self.assembler,
            prompt_id=prompt_id,
            number=0,
            prompt={},
            signature=None,
            stream=None,
            started=deadline.started,
            deadline=deadline if deadline.at is not None else None,
            default_timeout=self.default_timeout,
            server=self.http.base_url,
        )

    def cancel(self, prompt_id: str) -> CancelResult:
        """Cancel a prompt (dequeue if pending, interrupt if running)."""
        return self.tracker.cancel(prompt_id)

    def close(self) -> None:
        """Close the websocket (joining its thread) and the HTTP session. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with self._ws_lock:
            if self._ws is not None:
                self._ws.close()
        self.http.close()

    # -- internals -------------------------------------------------------------------------

    def _track(self, prompt_id: str, deadline: Deadline) -> PromptEvents | None:
        """Track a prompt's websocket events, or ``None`` (then polling) if unusable."""
        ws = self.ws
        limit = min(WS_CONNECT_LIMIT, self.http.settings.connect_timeout * 2)
        try:
            ws.ensure_connected(timeout=deadline.clamp(limit) or limit)
        except WebSocketError as exc:
            if deadline.expired():
                raise
            logger.warning("websocket unavailable (%s); falling back to history polling", exc)
            return None
        return ws.track(prompt_id)


def stored_signature(prompt: Mapping[str, Any] | None) -> dsl.Signature | None:
    """The DSL signature of a graph the server stored, or ``None`` when it has none."""
    if not prompt:
        return None
    try:
        return dsl.parse(prompt)
    except WitnessError as exc:
        logger.debug("stored prompt has no usable DSL signature: %s", exc)
        return None


def _native_options(options: BackendOptions | None) -> NativeOptions:
    if options is None:
        return NativeOptions()
    if not isinstance(options, NativeOptions):
        raise InvalidArgumentError(
            "options", f"the native backend takes NativeOptions, not {type(options).__name__}"
        )
    return options


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgumentError(name, f"must be a positive number of seconds, got {value!r}")
    return float(value)

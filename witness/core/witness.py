"""The facade: :class:`Witness` holds the group clients and runs workflows.

One call, end to end (``Witness.execute``)::

    sources.load_workflow → (ui_convert when UI format) → dsl.parse → dsl.apply (media through
    uploads.MediaResolver) → validate → PromptClient.submit (the websocket tracking first) →
    Tracker.wait (websocket events, confirmed by /history) → results.assemble → ExecuteResult

What raises and what returns a result:

* **Raises** — everything that stops a prompt from being submitted: an unreadable source or a
  malformed workflow (:class:`~witness.errors.WorkflowError` and subclasses: DSL, params, UI
  conversion, pre-submit validation), a media value that cannot be uploaded
  (:class:`~witness.errors.UploadError`), the server rejecting the prompt
  (:class:`~witness.errors.PromptValidationError`), the server being unreachable at submit
  (:class:`~witness.errors.TransportError`); and, while waiting, a prompt that vanished from
  the server (:class:`~witness.errors.PromptLostError`, e.g. after a restart) or a server that
  stayed unreachable until the deadline.
* **Returns** an :class:`~witness.core.results.ExecuteResult` for everything that happened to a
  submitted prompt: ``"completed"``; ``"failed"`` (a node raised; ``result.error`` has the
  node, class, title, exception and traceback); ``"interrupted"`` (partial outputs kept);
  ``"timeout"`` (the deadline passed; by default the prompt is then cancelled on the server).
  Call ``result.raise_for_status()`` to turn the last three into an exception.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from witness.api_clients.file_client import FileClient
from witness.api_clients.history_client import HistoryClient
from witness.api_clients.internal_client import InternalClient
from witness.api_clients.prompt_client import PromptClient
from witness.api_clients.queue_client import QueueClient
from witness.api_clients.system_client import SystemClient
from witness.api_clients.types import CancelResult, FileRef
from witness.api_clients.user_client import UserClient
from witness.api_clients.websocket_client import PromptEvents, WebSocketClient
from witness.config.settings import Settings
from witness.core import dsl
from witness.core.results import ExecuteResult, OutputFile, assemble
from witness.core.sources import LoadedWorkflow, load_workflow
from witness.core.tracking import (
    ExecutorKind,
    PreviewCallback,
    ProgressCallback,
    Tracker,
    WaitOutcome,
)
from witness.core.uploads import MediaResolver
from witness.core.validate import NodeCatalog, Problem, raise_for_problems, validate_prompt
from witness.errors import (
    InvalidArgumentError,
    PromptLostError,
    UIConversionError,
    UnsafeOutputError,
    WebSocketError,
    WitnessError,
)
from witness.runninghub.settings import RunningHubSettings
from witness.transport.http import HttpClient

if TYPE_CHECKING:
    from witness.runninghub.client import RunningHubClient
    from witness.runninghub.executor import RunningHubExecutor

__all__ = ["PromptHandle", "Witness"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0
# Problems that a stale /object_info cache can cause; their classes are refetched first.
_STALE_KINDS = frozenset({"value_not_in_list", "missing_node_type"})
_EXECUTORS = ("websocket", "http")


class PromptHandle:
    """A submitted prompt (from :meth:`Witness.submit`): wait for it, or cancel it.

    Attributes:
        prompt_id: The prompt's id on the server.
        number: Its queue number.
        prompt: The API prompt that was submitted.
        signature: The workflow's DSL signature.
        dropped_outputs: Output nodes the server dropped at submit (their inputs failed
            validation); the rest runs.
        node_errors: The server's per-node problems behind ``dropped_outputs``.
    """

    def __init__(
        self,
        kit: Witness,
        *,
        prompt_id: str,
        number: float,
        prompt: dict[str, Any],
        signature: dsl.Signature,
        stream: PromptEvents | None,
        started: float,
        deadline: float | None,
        node_errors: tuple[Any, ...],
        dropped_outputs: tuple[str, ...],
    ) -> None:
        self._kit = kit
        self.prompt_id = prompt_id
        self.number = number
        self.prompt = prompt
        self.signature = signature
        self.node_errors = node_errors
        self.dropped_outputs = dropped_outputs
        self._stream = stream
        self._started = started
        self._deadline = deadline
        self._result: ExecuteResult | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = self._result.status if self._result else "waiting"
        return f"PromptHandle(prompt_id={self.prompt_id!r}, number={self.number}, {state})"

    def wait(
        self,
        timeout: float | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        cancel_on_timeout: bool = False,
    ) -> ExecuteResult:
        """Wait for the prompt and return its result (the same one on later calls).

        Args:
            timeout: Seconds from now; defaults to what is left of the deadline given at
                submit, else the Witness default.
            on_progress: Progress updates (from websocket events; when polling, only the
                final ``overall == 1.0`` update of a completed prompt).
            on_preview: Preview images (websocket executor only).
            cancel_on_timeout: Cancel the prompt on the server if the deadline passes.

        Returns:
            The result; ``status`` is ``"timeout"`` if the deadline passed (the prompt may
            still run on the server unless ``cancel_on_timeout``; call ``wait`` again).

        Raises:
            PromptLostError: The prompt vanished from the server (restart).
            TransportError: The server stayed unreachable until the deadline.
        """
        with self._lock:
            if self._result is not None and self._result.status != "timeout":
                return self._result
            if timeout is not None:
                deadline = time.monotonic() + _positive("timeout", timeout)
            elif self._deadline is not None:
                deadline = self._deadline
            else:
                deadline = time.monotonic() + self._kit.default_timeout
            try:
                outcome = self._kit.tracker.wait(
                    self.prompt_id,
                    deadline=deadline,
                    stream=self._stream,
                    node_count=len(self.prompt),
                    on_progress=on_progress,
                    on_preview=on_preview,
                    cancel_on_timeout=cancel_on_timeout,
                )
            except PromptLostError:
                self.release()
                raise
            result = self._kit._assemble(
                self.prompt_id, outcome, self.signature, self.prompt, self._started
            )
            if result.status != "timeout":
                self.release()
                self._kit.tracker.forget(self.prompt_id)
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
        return self._kit.tracker.cancel(self.prompt_id)

    def done(self) -> bool:
        """Whether the server has finished the prompt (one ``GET /history/{id}``)."""
        if self._result is not None and self._result.status != "timeout":
            return True
        return self._kit.history.get(self.prompt_id) is not None


class Witness:
    """The ComfyUI client: group clients as attributes, plus ``execute()``.

    Args:
        api_url: Server URL (beats ``COMFYUI_API_URL``).
        settings: Complete settings; when given, the connection arguments below are ignored
            and nothing is read from the environment.
        api_key: Sent as ``Authorization: Bearer <key>`` (beats ``COMFYUI_API_KEY``).
        executor: ``"websocket"`` (default) or ``"http"`` (history polling).
        timeout: Default deadline of ``execute()`` in seconds.
        validate: Check prompts against ``/object_info`` before submitting (default on).
        runninghub_api_key: Enables RunningHub workflow ids (beats ``RUNNINGHUB_API_KEY``).
        runninghub_settings: Complete RunningHub settings instead.
        dotenv_path: A ``.env`` file to read (lowest priority above defaults).
        **overrides: Any other :class:`~witness.config.settings.Settings` field
            (``read_timeout``, ``retries``, ``user``, ``headers``...).

    Attributes:
        http: The shared HTTP client.
        prompt: ``PromptClient``.
        history: ``HistoryClient``.
        queue: ``QueueClient``.
        files: ``FileClient``.
        system: ``SystemClient``.
        users: ``UserClient``.
        internal: ``InternalClient`` (frontend routes, unstable).
        ws: ``WebSocketClient`` (connected on first use).
        runninghub: ``RunningHubClient`` (built on first use; ``account_status()``...).
        tracker: Waits for prompts.

    Example:
        >>> with Witness("http://127.0.0.1:8188") as kit:
        ...     result = kit.execute("examples/invert.json", {"width": 128})
        ...     result.raise_for_status().save("out/")
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        settings: Settings | None = None,
        api_key: str | None = None,
        executor: ExecutorKind = "websocket",
        timeout: float = DEFAULT_TIMEOUT,
        validate: bool = True,
        runninghub_api_key: str | None = None,
        runninghub_settings: RunningHubSettings | None = None,
        dotenv_path: str | Path | None = None,
        **overrides: Any,
    ) -> None:
        if executor not in _EXECUTORS:
            raise InvalidArgumentError("executor", f"must be one of {_EXECUTORS}, got {executor!r}")
        self.default_executor: ExecutorKind = executor
        self.default_timeout = _positive("timeout", timeout)
        self.validate_by_default = validate
        self.settings = (
            settings
            if settings is not None
            else Settings.from_env(dotenv_path, api_url=api_url, api_key=api_key, **overrides)
        )
        self._dotenv_path = dotenv_path
        self._runninghub_key = runninghub_api_key
        self._runninghub_settings = runninghub_settings
        self._runninghub: RunningHubExecutor | None = None
        self._runninghub_lock = threading.Lock()
        self.http = HttpClient(self.settings)
        self.prompt = PromptClient(self.http)
        self.history = HistoryClient(self.http)
        self.queue = QueueClient(self.http)
        self.files = FileClient(self.http)
        self.system = SystemClient(self.http)
        self.users = UserClient(self.http)
        self.internal = InternalClient(self.http)
        self.tracker = Tracker(self.history, self.queue)
        self.client_id = uuid.uuid4().hex
        self._ws: WebSocketClient | None = None
        self._ws_lock = threading.Lock()
        self._catalog: NodeCatalog | None = None
        self._object_info: dict[str, Any] | None = None
        self._info_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"Witness(api_url={self.settings.api_url!r}, executor={self.default_executor!r}, "
            f"closed={self._closed})"
        )

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def ws(self) -> WebSocketClient:
        """The websocket client (created on first use; connect with ``ensure_connected``)."""
        with self._ws_lock:
            if self._ws is None or self._ws.closed:
                self._ws = WebSocketClient(self.http, client_id=self.client_id)
            return self._ws

    @property
    def runninghub(self) -> RunningHubClient:
        """The RunningHub client, built on first use from ``runninghub_settings``, else
        ``runninghub_api_key`` and the ``RUNNINGHUB_*`` environment variables.

        Example: ``kit.runninghub.account_status().remain_coins``.

        Raises:
            ConfigError: No RunningHub key anywhere (the message names ``RUNNINGHUB_API_KEY``),
                or a ``RUNNINGHUB_*`` variable holds an invalid value (it is named).
        """
        return self._runninghub_executor().client

    def close(self) -> None:
        """Close the websocket (joining its thread) and the HTTP session. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with self._ws_lock:
            if self._ws is not None:
                self._ws.close()
        if self._runninghub is not None:
            self._runninghub.client.close()
        self.http.close()

    def __enter__(self) -> Witness:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- workflows -----------------------------------------------------------------------

    def load(self, workflow: Any) -> LoadedWorkflow:
        """Load a workflow from any source; a UI-format one is converted to API format.

        Sources: a path, an ``http(s)`` URL, a dict, JSON text, bytes, or a numeric
        RunningHub workflow id (returned unconverted, with ``runninghub_id`` set).
        """
        loaded = load_workflow(workflow)
        if loaded.runninghub_id is None and loaded.format == "ui":
            info = self.object_info()
            try:
                api = _ui_to_api(loaded.workflow, info)
            except UIConversionError as exc:
                missing = [t for t in exc.class_types if t not in info]
                if not missing:
                    raise
                # The cache may predate them (a server restarted with new custom nodes).
                self._refresh_classes(missing)
                api = _ui_to_api(loaded.workflow, self.object_info())
            return LoadedWorkflow(workflow=api, format="api", origin=loaded.origin)
        return loaded

    def inspect(self, workflow: Any) -> dict[str, Any]:
        """The workflow's signature: its params (name, node ids, field, required, upload,
        default) and outputs, as a plain dict.

        For a RunningHub id, the workflow is fetched from RunningHub.
        """
        loaded = self.load(workflow)
        graph = loaded.workflow
        if loaded.runninghub_id is not None:
            graph = self._runninghub_executor().client.get_workflow_api_format(loaded.runninghub_id)
        return dsl.parse(graph).describe()

    def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        """``GET /object_info``, cached for this Witness (``refresh=True`` fetches again)."""
        with self._info_lock:
            if self._object_info is None or refresh:
                self._object_info = dict(self.system.object_info())
                self._catalog = NodeCatalog(self._object_info)
            return self._object_info

    def validate(self, workflow: Any, params: Mapping[str, Any] | None = None) -> list[Problem]:
        """Check a workflow against the server's node definitions without submitting it.

        Params are applied first (media params must then be server-side names, nothing is
        uploaded). Returns every problem found (empty when the server would accept it).
        """
        loaded = self.load(workflow)
        if loaded.runninghub_id is not None:
            raise InvalidArgumentError(
                "workflow",
                "validate() checks against the local server's nodes; a RunningHub workflow is "
                "validated by RunningHub when the task is created",
            )
        signature = dsl.parse(loaded.workflow)
        prompt = dsl.apply(loaded.workflow, signature, params, allow_unknown=False)
        return self._problems(prompt)

    def _problems(self, prompt: Mapping[str, Any]) -> list[Problem]:
        self.object_info()
        assert self._catalog is not None  # noqa: S101 - set by object_info()
        problems = validate_prompt(prompt, self._catalog)
        stale = {p.class_type for p in problems if p.kind in _STALE_KINDS and p.class_type}
        if stale:
            # Choice lists (uploaded images, model files) change without a restart, and a
            # restarted server may have new node classes: refetch the classes concerned before
            # reporting, so a fresh upload is not a false positive.
            self._refresh_classes(stale)
            assert self._catalog is not None  # noqa: S101 - set by _refresh_classes()
            problems = validate_prompt(prompt, self._catalog)
        return problems

    def _refresh_classes(self, class_types: Iterable[str]) -> None:
        """Refetch some classes into the cache (``GET /object_info/{class}`` each)."""
        with self._info_lock:
            info = dict(self._object_info or {})
            for class_type in class_types:
                try:
                    info[class_type] = self.system.node_info(class_type)
                except WitnessError as exc:
                    logger.debug("could not refresh /object_info/%s: %s", class_type, exc)
            self._object_info = info
            self._catalog = NodeCatalog(info)

    # -- running -------------------------------------------------------------------------

    def execute(
        self,
        workflow: Any,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        executor: ExecutorKind | None = None,
        on_progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
        validate: bool | None = None,
        cancel_on_timeout: bool = True,
        extra_data: Mapping[str, Any] | None = None,
        webhook_url: str | None = None,
        instance_type: str | None = None,
    ) -> ExecuteResult:
        """Run a workflow with params and wait for its result.

        A numeric workflow id (or a RunningHub stub file) runs on RunningHub instead of the
        local server, with the same DSL and the same :class:`ExecuteResult`: media params are
        uploaded to RunningHub, only the supplied params are sent, ``prompt_id`` is the task
        id, ``by_var`` is keyed by ``$output`` name. ``timeout`` defaults to the RunningHub
        settings' (``RUNNINGHUB_TIMEOUT``); ``on_progress`` gets
        :class:`~witness.runninghub.backend.RunningHubProgress` (a ``ProgressUpdate`` with
        RunningHub's status; no per-node progress); ``on_preview``, ``executor`` and
        ``validate`` do not apply (RunningHub validates at create); :meth:`cancel` with the
        task id interrupts it from another thread.

        Args:
            workflow: Path, URL, dict, JSON text, bytes, or a numeric RunningHub id. API or
                UI format.
            params: DSL param name → value. Media params take a path, URL, bytes, file
                object, a server-side file name, ``ServerFile`` or ``MaskUpload``.
            timeout: Deadline in seconds for the whole call (default: the Witness's).
            executor: ``"websocket"`` or ``"http"`` (default: the Witness's).
            on_progress: Called with :class:`~witness.core.tracking.ProgressUpdate` s.
            on_preview: Called with :class:`~witness.core.tracking.Preview` images.
            allow_unknown: Ignore params the workflow does not declare (else an error).
            randomize_seeds: Give ``seed``/``noise_seed`` inputs the caller did not set a
                random value (explicit values are never replaced).
            validate: Check against ``/object_info`` before submitting (default: on).
            cancel_on_timeout: Cancel the prompt on the server when the deadline passes.
            extra_data: Extra ``extra_data`` for ``POST /prompt`` (e.g. ``extra_pnginfo``);
                local runs only.
            webhook_url: RunningHub only: sent as ``webhookUrl`` (RunningHub POSTs the
                outcome there when the task ends).
            instance_type: RunningHub only: ``"default"`` or ``"plus"`` (48 GB); defaults to
                ``RUNNINGHUB_INSTANCE_TYPE``.

        Returns:
            The result (see the module doc for which problems raise and which return).

        Raises:
            InvalidArgumentError: A RunningHub-only argument for a local run, or
                ``extra_data`` for a RunningHub run (never silently dropped).
            ConfigError: A RunningHub id without a RunningHub key.
            RunningHubError: RunningHub refused the task (see the RunningHub client).
        """
        started = time.monotonic()
        limit = self.default_timeout if timeout is None else _positive("timeout", timeout)
        loaded = self.load(workflow)
        if loaded.runninghub_id is not None:
            if extra_data is not None:
                raise InvalidArgumentError("extra_data", "applies to local runs, not RunningHub")
            return self._runninghub_executor().execute(
                loaded.runninghub_id,
                params,
                timeout=timeout,
                on_progress=on_progress,
                webhook_url=webhook_url,
                instance_type=instance_type,
                cancel_on_timeout=cancel_on_timeout,
                allow_unknown=allow_unknown,
                randomize_seeds=randomize_seeds,
            )
        for name, value in (("webhook_url", webhook_url), ("instance_type", instance_type)):
            if value is not None:
                raise InvalidArgumentError(name, "applies to RunningHub workflow ids only")
        handle = self._submit(
            loaded.workflow,
            params,
            started=started,
            deadline=started + limit,
            executor=executor,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            validate=validate,
            extra_data=extra_data,
        )
        try:
            return handle.wait(
                on_progress=on_progress,
                on_preview=on_preview,
                cancel_on_timeout=cancel_on_timeout,
            )
        finally:
            handle.release()  # nobody else can wait on this handle

    def execute_json(
        self, workflow: Mapping[str, Any], params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> ExecuteResult:
        """:meth:`execute` for a workflow given as a dict (API or UI format)."""
        if not isinstance(workflow, Mapping):
            raise InvalidArgumentError("workflow", "execute_json takes a dict")
        result: ExecuteResult = self.execute(dict(workflow), params, **kwargs)
        return result

    def submit(
        self,
        workflow: Any,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        executor: ExecutorKind | None = None,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
        validate: bool | None = None,
        extra_data: Mapping[str, Any] | None = None,
    ) -> PromptHandle:
        """Submit a workflow without waiting; returns a handle to wait on or cancel.

        ``timeout`` (seconds from now) becomes the handle's default deadline.
        """
        started = time.monotonic()
        loaded = self.load(workflow)
        if loaded.runninghub_id is not None:
            raise InvalidArgumentError(
                "workflow", "submit() runs on the local server; use execute() for RunningHub ids"
            )
        deadline = None if timeout is None else started + _positive("timeout", timeout)
        return self._submit(
            loaded.workflow,
            params,
            started=started,
            deadline=deadline,
            executor=executor,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            validate=validate,
            extra_data=extra_data,
        )

    def wait(self, prompt_id: str, timeout: float | None = None) -> ExecuteResult:
        """Wait for a prompt submitted earlier, by anyone (re-attach after a crash).

        Polls ``/history`` (the prompt's websocket events go to whoever submitted it). Output
        names come from the ``$output`` titles of the graph the server stored.

        Raises:
            PromptLostError: The prompt is in neither the queue nor the history.
        """
        started = time.monotonic()
        limit = self.default_timeout if timeout is None else _positive("timeout", timeout)
        outcome = self.tracker.wait(prompt_id, deadline=started + limit)
        prompt: dict[str, Any] | None = None
        if outcome.entry is not None:
            stored = outcome.entry.get("prompt")
            if isinstance(stored, list) and len(stored) > 2 and isinstance(stored[2], dict):
                prompt = stored[2]
        signature = _try_parse(prompt)
        return self._assemble(prompt_id, outcome, signature, prompt, started)

    def cancel(self, prompt_id: str) -> CancelResult:
        """Cancel a prompt (dequeue if pending, interrupt if running); a thread waiting on it
        gets status ``"interrupted"``.

        A RunningHub task that an :meth:`execute` of this Witness is waiting for (its id is
        ``on_progress``'s ``prompt_id``) is cancelled on RunningHub (``via="runninghub"``).
        Any other id is a prompt of the local server; cancel a RunningHub task of another
        process with ``kit.runninghub.cancel(task_id)``.
        """
        executor = self._runninghub
        if executor is not None:
            outcome = executor.cancel(prompt_id)
            if outcome is not None:
                return CancelResult(prompt_id, outcome, "runninghub")
        return self.tracker.cancel(prompt_id)

    # -- internals -----------------------------------------------------------------------

    def _submit(
        self,
        workflow: dict[str, Any],
        params: Mapping[str, Any] | None,
        *,
        started: float,
        deadline: float | None,
        executor: ExecutorKind | None,
        allow_unknown: bool,
        randomize_seeds: bool,
        validate: bool | None,
        extra_data: Mapping[str, Any] | None,
    ) -> PromptHandle:
        kind = executor or self.default_executor
        if kind not in _EXECUTORS:
            raise InvalidArgumentError("executor", f"must be one of {_EXECUTORS}, got {kind!r}")
        signature = dsl.parse(workflow)
        resolver = MediaResolver(self.files)
        prompt = dsl.apply(
            workflow,
            signature,
            params,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            resolve_media=resolver,
        )
        if self.validate_by_default if validate is None else validate:
            raise_for_problems(self._problems(prompt), prompt)
        prompt_id = str(uuid.uuid4())
        stream = self._track(prompt_id) if kind == "websocket" else None
        try:
            queued = self.prompt.submit(
                prompt, client_id=self.client_id, prompt_id=prompt_id, extra_data=extra_data
            )
        except BaseException:
            if stream is not None:
                stream.close()
            raise
        logger.info("prompt %s queued as number %s", prompt_id, queued.number)
        return PromptHandle(
            self,
            prompt_id=prompt_id,
            number=queued.number,
            prompt=prompt,
            signature=signature,
            stream=stream,
            started=started,
            deadline=deadline,
            node_errors=tuple(queued.node_errors),
            dropped_outputs=tuple(queued.dropped_outputs),
        )

    def _track(self, prompt_id: str) -> PromptEvents | None:
        """Track a prompt's websocket events, or ``None`` (then polling) if it is unusable."""
        ws = self.ws
        try:
            ws.ensure_connected(timeout=min(10.0, self.settings.connect_timeout * 2))
        except WebSocketError as exc:
            logger.warning("websocket unavailable (%s); falling back to history polling", exc)
            return None
        return ws.track(prompt_id)

    def _assemble(
        self,
        prompt_id: str,
        outcome: WaitOutcome,
        signature: dsl.Signature | None,
        prompt: Mapping[str, Any] | None,
        started: float,
    ) -> ExecuteResult:
        result = assemble(
            prompt_id,
            outcome.entry,
            signature=signature,
            prompt=prompt,
            view_url=self._view_url,
            started=started,
            status_override=outcome.status,
            downloader=self._download,
        )
        if outcome.status is not None and outcome.reason:
            result.msg = outcome.reason if outcome.status == "interrupted" else result.msg
        return result

    def _view_url(self, filename: str, subfolder: str, type_: str) -> str:
        try:
            return self.files.view_url(FileRef(filename, subfolder, type_ or "output"))
        except InvalidArgumentError:
            # A name the server itself produced but /view would refuse (".." or absolute):
            # keep the result, with an encoded URL that the server will answer 400 to.
            logger.warning("output file %r (%r) has an unsafe name", filename, subfolder)
            query = {"filename": filename, "type": type_ or "output"}
            if subfolder:
                query["subfolder"] = subfolder
            return self.http.url("/view") + "?" + urlencode(query)

    def _download(self, item: OutputFile, destination: Path) -> int:
        ref = FileRef(item.filename, item.subfolder, item.type or "output")
        try:
            return self.files.download_to(ref, destination)
        except InvalidArgumentError as exc:
            raise UnsafeOutputError(
                f"not saved: the server named output file {item.filename!r} "
                f"(subfolder {item.subfolder!r}) of node {item.node_id}, which cannot be "
                "fetched safely",
            ) from exc

    def _runninghub_executor(self) -> RunningHubExecutor:
        with self._runninghub_lock:
            if self._runninghub is not None:
                return self._runninghub
            from witness.runninghub.backend import RunningHubBackend  # noqa: PLC0415
            from witness.runninghub.executor import RunningHubExecutor  # noqa: PLC0415

            backend = RunningHubBackend.from_settings(
                self._runninghub_settings,
                api_key=self._runninghub_key,
                dotenv_path=self._dotenv_path,
            )
            self._runninghub = RunningHubExecutor(backend.client)
            return self._runninghub


def _ui_to_api(workflow: dict[str, Any], object_info: Mapping[str, Any]) -> dict[str, Any]:
    """The UI converter, imported on first use (most callers never need it)."""
    from witness.core.ui_convert import ui_to_api  # noqa: PLC0415

    return ui_to_api(workflow, dict(object_info))


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgumentError(name, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _try_parse(prompt: Mapping[str, Any] | None) -> dsl.Signature | None:
    if not prompt:
        return None
    try:
        return dsl.parse(prompt)
    except WitnessError as exc:
        logger.debug("stored prompt has no usable DSL signature: %s", exc)
        return None

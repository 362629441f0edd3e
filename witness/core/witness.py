"""The facade: :class:`Witness` wires the group clients, a backend and the pipeline.

One call, end to end (``Witness.execute``), each step in :mod:`witness.core.pipeline`::

    load → convert (UI format) → dsl → validate → upload → backend.submit → handle.wait
    (→ the handle assembles the ExecuteResult)

all under one :class:`~witness.transport.deadline.Deadline` of ``timeout`` seconds.

What raises and what returns a result:

* **Raises** — everything that stops a prompt from being submitted: an unreadable source or a
  malformed workflow (:class:`~witness.errors.WorkflowError` and subclasses: DSL, params, UI
  conversion, pre-submit validation), a media value that cannot be uploaded
  (:class:`~witness.errors.UploadError`), the server rejecting the prompt
  (:class:`~witness.errors.PromptValidationError`), the server being unreachable at submit
  (:class:`~witness.errors.TransportError`), the deadline passing before the prompt was
  submitted (:class:`~witness.errors.WitnessTimeoutError`, naming the stage); and, while
  waiting, a prompt that vanished from the server (:class:`~witness.errors.PromptLostError`)
  or a server that stayed unreachable.
* **Returns** an :class:`~witness.core.results.ExecuteResult` for everything that happened to a
  submitted prompt: ``"completed"``; ``"failed"`` (``result.error`` has the node, class,
  title, exception and traceback); ``"interrupted"`` (partial outputs kept); ``"timeout"``
  (the deadline passed; by default the prompt is then cancelled on the server). Call
  ``result.raise_for_status()`` to turn the last three into an exception.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from witness.api_clients.internal_client import InternalClient
from witness.api_clients.types import CancelResult
from witness.api_clients.user_client import UserClient
from witness.api_clients.websocket_client import WebSocketClient
from witness.backends.base import Backend, BackendOptions, RunHandle, WaitCallbacks
from witness.backends.native import ExecutorKind, NativeBackend, NativeHandle, NativeOptions
from witness.config.settings import Settings
from witness.core import dsl, pipeline
from witness.core.results import ExecuteResult
from witness.core.sources import LoadedWorkflow
from witness.core.tracking import PreviewCallback, ProgressCallback
from witness.core.validate import Problem
from witness.errors import InvalidArgumentError
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

if TYPE_CHECKING:
    from witness.runninghub.backend import RunningHubBackend
    from witness.runninghub.client import RunningHubClient
    from witness.runninghub.settings import RunningHubSettings

__all__ = ["BACKENDS", "PromptHandle", "Witness"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0

#: ``Witness(backend=name)``: name → ``"module:factory"`` taking the Witness's settings.
BACKENDS: dict[str, str] = {
    "native": "",
    "runninghub": "witness.runninghub.backend:RunningHubBackend.from_settings",
    "v2": "witness.backends.v2:V2Backend.from_settings",
}

#: The handle :meth:`Witness.submit` returns (the old name of :class:`NativeHandle`).
PromptHandle = NativeHandle


class Witness:
    """The ComfyUI client: group clients as attributes, a backend, and ``execute()``.

    Args:
        api_url: Server URL (beats ``COMFYUI_API_URL``).
        settings: Complete settings; when given, the connection arguments below are ignored
            and nothing is read from the environment.
        api_key: Sent as ``Authorization: Bearer <key>`` (beats ``COMFYUI_API_KEY``).
        backend: Where workflows run: a :class:`~witness.backends.base.Backend` instance
            (a ``Fleet``, a ``V2Backend``, a fake in tests) or a name from :data:`BACKENDS`
            (``"native"``, the default; ``"runninghub"``; ``"v2"``).
        executor: Native backend: ``"websocket"`` (default) or ``"http"`` (history polling).
        timeout: Default deadline of ``execute()`` in seconds.
        validate: Check prompts against ``/object_info`` before submitting (default on).
        runninghub_api_key: The RunningHub key (beats ``RUNNINGHUB_API_KEY``), for
            ``runninghub:<id>`` sources and ``backend="runninghub"``.
        runninghub_settings: Complete RunningHub settings instead.
        dotenv_path: A ``.env`` file to read (lowest priority above defaults).
        **overrides: Any other :class:`~witness.config.settings.Settings` field
            (``read_timeout``, ``retries``, ``user``, ``headers``...).

    Attributes:
        http: The shared transport of the ComfyUI server.
        prompt, history, queue, files, system: The server's group clients (the native
            backend's).
        users: ``UserClient``.  internal: ``InternalClient`` (frontend routes, unstable).
        ws: ``WebSocketClient`` (connected on first use).
        runninghub: ``RunningHubClient`` (built on first use).
        tracker: Waits for native prompts.
        backend: The backend ``execute()`` runs on.
        native: The native backend of this server.

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
        backend: Backend | str = "native",
        executor: ExecutorKind = "websocket",
        timeout: float = DEFAULT_TIMEOUT,
        validate: bool = True,
        runninghub_api_key: str | None = None,
        runninghub_settings: RunningHubSettings | None = None,
        dotenv_path: str | Path | None = None,
        **overrides: Any,
    ) -> None:
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
        self._runninghub: RunningHubBackend | None = None
        self._lock = threading.Lock()
        self.http = HttpClient(self.settings)
        self.native = NativeBackend(
            self.http, executor=executor, default_timeout=self.default_timeout
        )
        self.prompt = self.native.prompt
        self.history = self.native.history
        self.queue = self.native.queue
        self.files = self.native.files
        self.system = self.native.system
        self.tracker = self.native.tracker
        self.catalog = self.native.catalog_service
        self.users = UserClient(self.http)
        self.internal = InternalClient(self.http)
        self.client_id = self.native.client_id
        self.backend: Backend = self._resolve_backend(backend)
        self._closed = False

    @classmethod
    def comfy_cloud(cls, api_key: str | None = None, **kwargs: Any) -> Witness:
        """A Witness whose workflows run on Comfy Cloud (the Comfy API v2).

        The key: ``api_key`` > ``COMFY_API_KEY`` > ``.env``; sent only to Comfy Cloud's origin.
        """
        import importlib  # noqa: PLC0415 - the v2 backend is imported only when used

        v2: Any = importlib.import_module("witness.backends.v2")
        return cls(backend=v2.V2Backend.comfy_cloud(api_key=api_key), **kwargs)

    def __repr__(self) -> str:
        return (
            f"Witness(api_url={self.settings.api_url!r}, backend={self.backend.name!r}, "
            f"executor={self.native.executor!r}, closed={self._closed})"
        )

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def default_executor(self) -> ExecutorKind:
        """The native backend's default executor."""
        return self.native.executor

    @property
    def ws(self) -> WebSocketClient:
        """The websocket client (created on first use; connect with ``ensure_connected``)."""
        return self.native.ws

    @property
    def runninghub(self) -> RunningHubClient:
        """The RunningHub client, built on first use from ``runninghub_settings``, else
        ``runninghub_api_key`` and the ``RUNNINGHUB_*`` environment variables.

        Raises:
            ConfigError: No RunningHub key anywhere (the message names ``RUNNINGHUB_API_KEY``),
                or a ``RUNNINGHUB_*`` variable holds an invalid value (it is named).
        """
        return self._runninghub_backend().client

    def close(self) -> None:
        """Close the backends (websocket thread joined) and the HTTP session. Safe twice."""
        if self._closed:
            return
        self._closed = True
        if self.backend is not self.native and self.backend is not self._runninghub:
            self.backend.close()
        if self._runninghub is not None:
            self._runninghub.close()
        self.native.close()

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

    def load(self, workflow: Any, *, deadline: Deadline | None = None) -> LoadedWorkflow:
        """Load a workflow from any source; a UI-format one is converted to API format.

        Sources: a path, an ``http(s)`` URL, a dict, JSON text, bytes, or
        ``runninghub:<id>`` (returned unconverted, with ``runninghub_id`` set).
        """
        deadline = deadline or Deadline.after(self.default_timeout)
        return pipeline.convert(pipeline.load(workflow, deadline), self.catalog, deadline)

    def inspect(self, workflow: Any) -> dict[str, Any]:
        """The workflow's signature: its params (name, node ids, field, required, upload,
        default) and outputs, as a plain dict (a RunningHub workflow is fetched first)."""
        deadline = Deadline.after(self.default_timeout)
        loaded = self.load(workflow, deadline=deadline)
        graph = loaded.workflow
        if loaded.runninghub_id is not None:
            graph = self._runninghub_backend().fetch_workflow(loaded.runninghub_id, deadline)
        return dsl.parse(graph).describe()

    def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        """``GET /object_info``, cached for this Witness (``refresh=True`` fetches again)."""
        return self.catalog.object_info(refresh=refresh)

    def validate(self, workflow: Any, params: Mapping[str, Any] | None = None) -> list[Problem]:
        """Check a workflow against the server's node definitions without submitting it.

        Params are applied first (media params must then be server-side names, nothing is
        uploaded). Returns every problem found (empty when the server would accept it).
        """
        deadline = Deadline.after(self.default_timeout)
        loaded = self.load(workflow, deadline=deadline)
        if loaded.runninghub_id is not None:
            raise InvalidArgumentError(
                "workflow",
                "validate() checks against the local server's nodes; a RunningHub workflow is "
                "validated by RunningHub when the task is created",
            )
        if params is not None and not isinstance(params, Mapping):
            raise InvalidArgumentError(
                "params", f"must be a mapping of param name to value, got {type(params).__name__}"
            )
        with pipeline.stage(deadline, "dsl"):
            signature = dsl.parse(loaded.workflow)
            prompt = dsl.apply(loaded.workflow, signature, params, allow_unknown=False)
        return pipeline.check(prompt, self.native, deadline)

    def execute(
        self,
        workflow: Any,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
        validate: bool | None = None,
        cancel_on_timeout: bool = True,
        cancel_on_error: bool = True,
        options: BackendOptions | None = None,
        **deprecated: Any,
    ) -> ExecuteResult:
        """Run a workflow with params and wait for its result, within ``timeout`` seconds.

        A ``runninghub:<id>`` source runs on RunningHub (same DSL, same result; ``timeout``
        defaults to ``RUNNINGHUB_TIMEOUT``); everything else on this Witness's backend.

        Args:
            workflow: Path, URL, dict, JSON text, bytes, or ``runninghub:<id>``. API or UI
                format.
            params: DSL param name → value. Media params take a path, URL, bytes, file
                object, a server-side file name, ``ServerFile`` or ``MaskUpload``.
            timeout: The one deadline of the whole call, every stage included (default:
                the Witness's).
            on_progress: Called with :class:`~witness.core.tracking.ProgressUpdate` s.
            on_preview: Called with :class:`~witness.core.tracking.Preview` images.
            allow_unknown: Ignore params the workflow does not declare (else an error).
            randomize_seeds: Give ``seed``/``noise_seed`` inputs the caller did not set a
                random value (explicit values are never replaced).
            validate: Check against ``/object_info`` before uploading or submitting
                (default: on).
            cancel_on_timeout: Cancel the run when the deadline passes.
            cancel_on_error: Cancel the run on Ctrl-C or any other exception while waiting
                (the exception then propagates).
            options: Backend-specific options (:class:`NativeOptions`,
                ``RunningHubOptions``, ``V2Options``...).
            **deprecated: ``executor``, ``extra_data`` (use ``NativeOptions``),
                ``webhook_url``, ``instance_type`` (use ``RunningHubOptions``).

        Raises:
            WitnessTimeoutError: The deadline passed before the run was submitted.
            InvalidArgumentError: Options of another backend, or a bad argument.
        """
        limit = None if timeout is None else _positive("timeout", timeout)
        deadline = Deadline.after(self.default_timeout if limit is None else limit)
        loaded = pipeline.load(workflow, deadline)
        backend = self.backend
        if loaded.runninghub_id is not None:
            backend = self._runninghub_backend()
            if limit is None:  # RunningHub's own default (RUNNINGHUB_TIMEOUT), from the start
                rh_limit = float(self._runninghub_backend().settings.timeout)
                deadline = Deadline.at_monotonic(
                    deadline.started + rh_limit, started=deadline.started
                )
        options = _options(backend, options, deprecated)
        if backend.name == "runninghub":
            # RunningHub's handle cancels a timed-out task itself (and says so in the result).
            options = _with_cancel_on_timeout(options, cancel_on_timeout)
            cancel_on_timeout = False
        prepared = self._prepare(
            loaded,
            params,
            backend,
            deadline,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            validate=validate,
        )
        return pipeline.run(
            backend,
            prepared,
            deadline,
            options=options,
            callbacks=WaitCallbacks(on_progress=on_progress, on_preview=on_preview),
            cancel_on_timeout=cancel_on_timeout,
            cancel_on_error=cancel_on_error,
        )

    def execute_json(
        self, workflow: Mapping[str, Any], params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> ExecuteResult:
        """:meth:`execute` for a workflow given as a dict (API or UI format)."""
        if not isinstance(workflow, Mapping):
            raise InvalidArgumentError("workflow", "execute_json takes a dict")
        return self.execute(dict(workflow), params, **kwargs)

    def submit(
        self,
        workflow: Any,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
        validate: bool | None = None,
        options: BackendOptions | None = None,
        **deprecated: Any,
    ) -> Any:
        """Submit a workflow without waiting; returns a handle to wait on or cancel.

        ``timeout`` (seconds from now) bounds the steps up to the submit and becomes the
        handle's default deadline.
        """
        deadline = Deadline.after(
            self.default_timeout if timeout is None else _positive("timeout", timeout)
        )
        loaded = pipeline.load(workflow, deadline)
        if loaded.runninghub_id is not None:
            raise InvalidArgumentError(
                "workflow",
                "submit() runs on this Witness's backend; use execute() for "
                "runninghub:<id> sources, or Witness(backend='runninghub')",
            )
        options = _options(self.backend, options, deprecated)
        prepared = self._prepare(
            loaded,
            params,
            self.backend,
            deadline,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            validate=validate,
        )
        with pipeline.stage(deadline, "submit"):
            handle: RunHandle = self.backend.submit(prepared, deadline, options)
        if timeout is None and isinstance(handle, NativeHandle):
            handle._deadline = None  # no deadline given: wait() uses the default timeout
        return handle

    def wait(self, prompt_id: str, timeout: float | None = None) -> ExecuteResult:
        """Wait for a run submitted earlier, by anyone (re-attach after a crash).

        Raises:
            PromptLostError: The prompt is in neither the queue nor the history.
        """
        deadline = Deadline.after(
            self.default_timeout if timeout is None else _positive("timeout", timeout)
        )
        with pipeline.stage(deadline, "wait"):
            return self.backend.attach(prompt_id, deadline).wait(deadline)

    def cancel(self, prompt_id: str) -> CancelResult:
        """Cancel a run (dequeue if pending, interrupt if running); a thread waiting on it
        gets status ``"interrupted"``.

        A RunningHub task that an :meth:`execute` of this Witness waits for is cancelled on
        RunningHub (``via="runninghub"``); any other id goes to this Witness's backend.
        """
        rh = self._runninghub
        if rh is not None and prompt_id in rh.running():
            return rh.cancel(prompt_id)
        return self.backend.cancel(prompt_id)

    # -- internals -----------------------------------------------------------------------

    def _prepare(
        self,
        loaded: LoadedWorkflow,
        params: Mapping[str, Any] | None,
        backend: Backend,
        deadline: Deadline,
        *,
        allow_unknown: bool,
        randomize_seeds: bool,
        validate: bool | None,
    ) -> Any:
        graph = None
        if loaded.runninghub_id is not None:
            fetch = getattr(backend, "fetch_workflow", None)
            if fetch is None:
                raise InvalidArgumentError(
                    "workflow", f"a runninghub:<id> source cannot run on {backend.name!r}"
                )
            with pipeline.stage(deadline, "load"):
                graph = fetch(loaded.runninghub_id, deadline)
        else:
            loaded = pipeline.convert(loaded, self.catalog, deadline)
        return pipeline.prepare(
            loaded,
            params,
            backend,
            deadline,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            validate=self.validate_by_default if validate is None else validate,
            graph=graph,
        )

    def _resolve_backend(self, backend: Backend | str) -> Backend:
        if not isinstance(backend, str):
            if not isinstance(backend, Backend):
                raise InvalidArgumentError(
                    "backend", f"expected a Backend or one of {sorted(BACKENDS)}, got {backend!r}"
                )
            return backend
        if backend not in BACKENDS:
            raise InvalidArgumentError(
                "backend", f"unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}"
            )
        if backend == "native":
            return self.native
        if backend == "runninghub":
            return self._runninghub_backend()
        module_name, _, attr = BACKENDS[backend].partition(":")
        import importlib  # noqa: PLC0415

        factory: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
        built: Backend = factory(self.settings)
        return built

    def _runninghub_backend(self) -> RunningHubBackend:
        with self._lock:
            if self._runninghub is None:
                from witness.runninghub.backend import RunningHubBackend  # noqa: PLC0415

                self._runninghub = RunningHubBackend.from_settings(
                    self._runninghub_settings,
                    api_key=self._runninghub_key,
                    dotenv_path=self._dotenv_path,
                )
            return self._runninghub


def _options(
    backend: Backend, options: BackendOptions | None, deprecated: Mapping[str, Any]
) -> BackendOptions | None:
    """Map the deprecated keywords of ``execute``/``submit`` into the backend's options."""
    unknown = set(deprecated) - {"executor", "extra_data", "webhook_url", "instance_type"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in deprecated.items() if v is not None}
    if not given:
        return options
    if options is not None:
        raise InvalidArgumentError(
            "options", f"pass {', '.join(sorted(given))} inside options, not beside them"
        )
    warnings.warn(
        f"execute({', '.join(f'{k}=' for k in sorted(given))}) is deprecated: pass "
        "options=NativeOptions(...) or options=RunningHubOptions(...)",
        DeprecationWarning,
        stacklevel=3,
    )
    native = {k: given[k] for k in ("executor", "extra_data") if k in given}
    cloud = {k: given[k] for k in ("webhook_url", "instance_type") if k in given}
    if backend.name == "runninghub":
        if native:
            raise InvalidArgumentError(next(iter(native)), "applies to local runs, not RunningHub")
        from witness.runninghub.backend import RunningHubOptions  # noqa: PLC0415

        return RunningHubOptions(**cloud)
    if cloud:
        raise InvalidArgumentError(
            next(iter(cloud)), "applies to RunningHub workflows (runninghub:<id>) only"
        )
    if backend.name != "native":
        raise InvalidArgumentError(
            next(iter(native)), f"applies to the native backend, not {backend.name!r}"
        )
    return NativeOptions(**native)


def _with_cancel_on_timeout(options: BackendOptions | None, cancel: bool) -> BackendOptions:
    from witness.runninghub.backend import RunningHubOptions  # noqa: PLC0415

    if options is None:
        return RunningHubOptions(cancel_on_timeout=cancel)
    if not isinstance(options, RunningHubOptions):
        raise InvalidArgumentError(
            "options", f"RunningHub takes RunningHubOptions, not {type(options).__name__}"
        )
    return dataclasses.replace(options, cancel_on_timeout=cancel)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidArgumentError(name, f"must be a positive number of seconds, got {value!r}")
    return float(value)

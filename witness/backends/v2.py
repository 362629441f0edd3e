"""The Comfy API v2 backend: Comfy Cloud, serverless deployments, ``comfy-api-proxy``.

Same DSL, media rules and :class:`~witness.core.results.ExecuteResult` as the native
backend; the differences are all on the wire:

* media values become assets (``POST /api/v2/assets``, de-duplicated by BLAKE3 hash when the
  ``blake3`` extra is installed, see :mod:`witness.backends.v2_media`) referenced as
  ``core/ASSET`` objects in the prompt;
* the submit is ``POST /api/v2/jobs`` with a single-use ``Idempotency-Key``;
* the wait follows ``GET /api/v2/jobs/{id}/events`` (progress and previews), and takes the
  authoritative end state from ``GET /api/v2/jobs/{id}``;
* output files are read from ``GET /api/v2/assets/{id}/content``, streamed to disk.

The API key (``Authorization: Bearer``) goes only to the deployment's own origin; a redirect
elsewhere gets none, and output URLs on another host are never requested with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from witness.api_clients.queue_client import QueueClient
from witness.api_clients.types import CancelOutcome, CancelResult
from witness.api_clients.v2.assets_client import AssetsClient
from witness.api_clients.v2.hashing import FileHasher
from witness.api_clients.v2.jobs_client import JobsClient
from witness.api_clients.v2.system_client import V2SystemClient, detect_v2
from witness.api_clients.v2.types import (
    Job,
    Output,
    OutputEvent,
    PreviewEvent,
    Progress,
    ProgressEvent,
    StatusEvent,
)
from witness.backends.base import (
    BackendOptions,
    MediaUploader,
    PreparedWorkflow,
    WaitCallbacks,
)
from witness.backends.v2_media import V2MediaUploader, asset_refs
from witness.config.settings import Settings
from witness.core.results import ExecuteResult, OutputFile, Status, assemble
from witness.core.tracking import Preview, ProgressUpdate
from witness.errors import (
    ConfigError,
    InvalidArgumentError,
    NotFoundError,
    PromptLostError,
    V2TooManyStreamsError,
    WitnessError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient
from witness.transport.retry import RetryPolicy

__all__ = [
    "COMFY_CLOUD_URL",
    "V2Backend",
    "V2Options",
    "V2RunHandle",
    "detect_v2",
    "resolve_comfy_api_key",
]

logger = logging.getLogger(__name__)

#: Comfy Cloud's origin (the default deployment of comfy-sdk).
COMFY_CLOUD_URL = "https://cloud.comfy.org"
#: Where the Comfy API key is read from when not given.
API_KEY_ENV_VAR = "COMFY_API_KEY"

POLL_START = 0.05
POLL_MAX = 1.0
#: Pauses of the re-reads before an ``expired`` status is believed: comfy-api-proxy 0.1.6
#: reports a job that finishes between its /history and /queue reads as ``expired`` for one
#: read (a window of milliseconds; seen on 7 of 40 reads right after a submit).
EXPIRED_PAUSES = (0.005, 0.02, 0.1, 0.3)
CANCEL_TIMEOUT = 5.0
#: Silence on the event stream after which the job is read (and the stream reopened):
#: comfy-api-proxy 0.1.6 misses the end of a job that finishes while it connects its ComfyUI
#: websocket (6 of 150 short jobs), and would only notice at its 15 s keepalive.
EVENTS_IDLE_CHECK = 2.0

# v2 output type → the history key the native result assembly classifies by.
_OUTPUT_KEYS = {
    "image": "images",
    "video": "gifs",
    "audio": "audio",
    "text": "text",
    "file": "files",
    "latent": "latents",
}


@dataclass(frozen=True)
class V2Options(BackendOptions):
    """What only the v2 backend understands (``execute(..., options=V2Options(...))``).

    Attributes:
        metadata: An opaque label stored with the job (≤ 1 KiB).
        priority: An advisory priority.
        partner_api_key: The Comfy API key for partner (API) nodes in the workflow, sent as
            ``extra_data.api_key_comfy_org``; never shown.
        idempotency_key: The submit's key (default: a new one per submit).
        events: Follow the event stream (progress, previews); ``False`` polls instead.
        cancel_on_timeout: The handle itself cancels the job when its wait's deadline passes
            (for a handle used without the pipeline: ``execute()`` cancels on timeout and on
            errors itself, see its ``cancel_on_timeout`` / ``cancel_on_error``).
        cancel_on_error: The handle itself cancels the job when an exception (Ctrl-C
            included) ends its wait.
    """

    metadata: str | None = None
    priority: int | None = None
    partner_api_key: str | None = field(default=None, repr=False)
    idempotency_key: str | None = None
    events: bool = True
    cancel_on_timeout: bool = False
    cancel_on_error: bool = False


def resolve_comfy_api_key(
    api_key: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | os.PathLike[str] | None = ".env",
) -> str | None:
    """The Comfy API key: the argument, else ``COMFY_API_KEY`` from the environment, else
    from the ``.env`` file (read only when it exists; it never changes ``os.environ``)."""
    if api_key is not None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("api_key", "<hidden>", "must be a non-empty string")
        return api_key.strip()
    env = os.environ if environ is None else environ
    value = env.get(API_KEY_ENV_VAR, "").strip()
    if value:
        return value
    if dotenv_path is not None and Path(dotenv_path).is_file():
        from dotenv import dotenv_values  # noqa: PLC0415 - only when a file is there

        value = (dotenv_values(dotenv_path).get(API_KEY_ENV_VAR) or "").strip()
        if value:
            return value
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def is_comfy_cloud(url: str) -> bool:
    """Whether ``url`` is on Comfy Cloud's origin."""
    return _origin(url) == _origin(COMFY_CLOUD_URL)


class V2Backend:
    """Runs prepared workflows on a Comfy API v2 deployment.

    Args:
        http: The shared HTTP client, on the deployment's base URL (``/api/v2`` is added).
        retry: Retry policy of submits refused with ``queue_full`` and of broken event
            streams.
        comfyui: For a self-hosted ComfyUI behind ``comfy-api-proxy``: a client on that
            ComfyUI's native API. A cancel the proxy could not carry out is then done there
            (comfy-api-proxy 0.1.6 forwards a cancel to ``POST /api/jobs/{id}/cancel``, which
            ComfyUI before 0.4 lacks; its job id is the ComfyUI prompt id).

    Raises:
        ConfigError: The base URL is Comfy Cloud's and no API key is set (before any
            request).

    Example:
        >>> backend = V2Backend.comfy_cloud()            # COMFY_API_KEY from env or .env
        >>> backend = V2Backend(HttpClient(Settings(api_url="http://127.0.0.1:8189")))
    """

    name = "v2"

    def __init__(
        self,
        http: HttpClient,
        *,
        retry: RetryPolicy | None = None,
        comfyui: HttpClient | None = None,
    ) -> None:
        if is_comfy_cloud(http.base_url) and not http.settings.api_key:
            raise ConfigError(
                API_KEY_ENV_VAR,
                None,
                f"Comfy Cloud ({COMFY_CLOUD_URL}) needs an API key: pass api_key=..., or set "
                f"{API_KEY_ENV_VAR} in the environment or .env",
            )
        self.http = http
        self.jobs = JobsClient(http, retry=retry)
        self.assets = AssetsClient(http)
        self.system = V2SystemClient(http)
        self.hasher = FileHasher()
        self._native_queue = QueueClient(comfyui) if comfyui is not None else None
        self._owned: list[HttpClient] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"V2Backend(url={self.http.base_url!r})"

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        comfyui_url: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> V2Backend:
        """A backend on ``settings.api_url`` (the API key from the settings, else
        ``COMFY_API_KEY``); it owns (and closes) its HTTP clients.

        Args:
            settings: The deployment's settings.
            comfyui_url: The native URL of the ComfyUI behind a self-hosted proxy (see the
                class's ``comfyui``); it gets the same settings but no API key.
            retry: See the class.
        """
        if not settings.api_key:
            key = resolve_comfy_api_key(dotenv_path=None)
            if key:
                settings = settings.with_overrides(api_key=key)
        http = HttpClient(settings)
        native = (
            HttpClient(settings.with_overrides(api_url=comfyui_url, api_key=None))
            if comfyui_url
            else None
        )
        try:
            backend = cls(http, retry=retry, comfyui=native)
        except BaseException:
            http.close()
            if native is not None:
                native.close()
            raise
        backend._owned = [c for c in (http, native) if c is not None]
        return backend

    @classmethod
    def comfy_cloud(
        cls,
        api_key: str | None = None,
        *,
        base_url: str = COMFY_CLOUD_URL,
        dotenv_path: str | os.PathLike[str] | None = ".env",
        environ: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        **settings: Any,
    ) -> V2Backend:
        """A backend on Comfy Cloud (or another deployment needing a key).

        Args:
            api_key: The Comfy API key; default ``COMFY_API_KEY`` from the environment, then
                from ``dotenv_path``.
            base_url: The deployment (default Comfy Cloud).
            dotenv_path: The ``.env`` file to read the key from when it is not in the
                environment (``None``: none).
            environ: The environment to read (default ``os.environ``).
            retry: See the class.
            **settings: More :class:`Settings` fields (timeouts, retries...).

        Raises:
            ConfigError: No key anywhere (before any request), or a bad setting.
        """
        key = resolve_comfy_api_key(api_key, environ=environ, dotenv_path=dotenv_path)
        if key is None:
            raise ConfigError(
                API_KEY_ENV_VAR,
                None,
                f"no Comfy API key for {base_url}: pass api_key=..., or set {API_KEY_ENV_VAR} "
                "in the environment or .env",
            )
        return cls.from_settings(Settings(api_url=base_url, api_key=key, **settings), retry=retry)

    # -- Backend protocol --------------------------------------------------------------------

    def catalog(self, deadline: Deadline) -> NodeCatalog | None:
        """``None``: the v2 API publishes no node definitions (the deployment validates)."""
        return None

    def refresh_catalog(self, class_types: Any, deadline: Deadline) -> NodeCatalog | None:
        """``None`` (see :meth:`catalog`)."""
        return None

    def uploader(self, deadline: Deadline) -> MediaUploader:
        """An uploader for one call: assets, uploaded only when the deployment lacks them."""
        return V2MediaUploader(self.assets, self.hasher, deadline)

    def submit(
        self,
        prepared: PreparedWorkflow,
        deadline: Deadline,
        options: BackendOptions | None = None,
    ) -> V2RunHandle:
        """Submit a prepared workflow (``POST /api/v2/jobs``); returns its handle.

        Raises:
            InvalidArgumentError: ``options`` of another backend's type.
            V2InvalidWorkflowError: The deployment refused the prompt (``node_errors``).
            TransportError: The deployment could not be reached.
        """
        opts = _options(options)
        started = time.monotonic()
        extra = {"api_key_comfy_org": opts.partner_api_key} if opts.partner_api_key else None
        job = self.jobs.submit(
            asset_refs(prepared.prompt),
            metadata=opts.metadata,
            priority=opts.priority,
            extra_data=extra,
            idempotency_key=opts.idempotency_key,
            deadline=deadline,
        )
        return V2RunHandle(self, job, prepared=prepared, options=opts, started=started)

    def attach(self, prompt_id: str, deadline: Deadline) -> V2RunHandle:
        """A handle for a job submitted earlier (``GET /api/v2/jobs/{id}``).

        Raises:
            PromptLostError: The deployment knows no such job.
        """
        try:
            job = self.jobs.get(prompt_id, deadline=deadline)
        except NotFoundError as exc:
            raise PromptLostError(
                f"job {prompt_id} is unknown to {self.http.base_url}", prompt_id=prompt_id
            ) from exc
        return V2RunHandle(self, job, prepared=None, options=V2Options(), started=None)

    def cancel(self, prompt_id: str) -> CancelResult:
        """Cancel a job by id (``POST /api/v2/jobs/{id}/cancel``)."""
        deadline = Deadline.after(CANCEL_TIMEOUT)
        try:
            before = self.jobs.get(prompt_id, deadline=deadline)
            if before.terminal:
                return CancelResult(prompt_id, CancelOutcome.FINISHED, "v2_api")
            after = self.jobs.cancel(prompt_id, deadline=deadline)
        except NotFoundError:
            return CancelResult(prompt_id, CancelOutcome.NOT_FOUND, "v2_api")
        if after.status not in {"canceled", "succeeded", "failed"} and self._native_queue:
            with deadline.scope():  # the native client's requests keep to it too
                native = self._native_queue.cancel(prompt_id)
            return CancelResult(prompt_id, native.outcome, "v2_api")
        if after.status in {"succeeded", "failed"}:
            outcome = CancelOutcome.FINISHED
        elif before.status == "queued" and after.status in {"canceled", "canceling", "queued"}:
            outcome = CancelOutcome.DEQUEUED
        else:
            outcome = CancelOutcome.INTERRUPTED
        return CancelResult(prompt_id, outcome, "v2_api")

    def detect(self, deadline: Deadline | None = None) -> bool:
        """Whether the base URL answers ``GET /api/v2/health`` (asked once)."""
        return detect_v2(self.http, deadline)

    def close(self) -> None:
        """Close the HTTP clients this backend made; safe to call twice."""
        if not self._closed:
            self._closed = True
            for client in self._owned:
                client.close()

    def __enter__(self) -> V2Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _options(options: BackendOptions | None) -> V2Options:
    if options is None:
        return V2Options()
    if not isinstance(options, V2Options):
        raise InvalidArgumentError(
            "options",
            f"the v2 backend takes V2Options, got {type(options).__name__}",
        )
    return options


class V2RunHandle:
    """A submitted v2 job (see :class:`~witness.backends.base.RunHandle`)."""

    def __init__(
        self,
        backend: V2Backend,
        job: Job,
        *,
        prepared: PreparedWorkflow | None,
        options: V2Options,
        started: float | None,
    ) -> None:
        self._backend = backend
        self._job = job
        self._prepared = prepared
        self._options = options
        self._started = started
        self._result: ExecuteResult | None = None
        self._cancelled = False
        self._cancel_result: CancelResult | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"V2RunHandle(job={self._job.id!r}, status={self._job.status!r})"

    @property
    def prompt_id(self) -> str:
        """The job id."""
        return self._job.id

    @property
    def job(self) -> Job:
        """The job as last seen."""
        return self._job

    def wait(
        self,
        deadline: Deadline | None = None,
        callbacks: WaitCallbacks | None = None,
    ) -> ExecuteResult:
        """Follow the job until it ends or ``deadline`` passes.

        Progress and previews come from the event stream; the end state and outputs from
        ``GET /api/v2/jobs/{id}``. When the deadline passes a result with status
        ``"timeout"`` (and the outputs so far) is returned; the run goes on unless
        ``V2Options(cancel_on_timeout=True)``. With ``V2Options(cancel_on_error=True)`` an
        exception while waiting (Ctrl-C included) cancels the job first. (The pipeline of
        ``execute()`` does both itself, through :meth:`cancel`; a job is cancelled once.)

        Raises:
            PromptLostError: The deployment forgot the job.
            TransportError: The deployment stayed unreachable through the reconnects.
        """
        if self._result is not None:
            return self._result
        deadline = deadline if deadline is not None else Deadline.never()
        callbacks = callbacks if callbacks is not None else WaitCallbacks()
        try:
            job = self._follow(deadline, callbacks)
        except NotFoundError as exc:
            raise PromptLostError(
                f"job {self.prompt_id} is no longer known to {self._backend.http.base_url}",
                prompt_id=self.prompt_id,
            ) from exc
        except BaseException:
            if self._options.cancel_on_error:
                self._cancel_once()
            raise
        if job is None:
            if self._options.cancel_on_timeout:
                self._cancel_once()
            return self._assemble(self._job, status_override="timeout")
        if job.status == "succeeded" and callbacks.on_progress is not None:
            _emit_progress(callbacks, self.prompt_id, Progress(1.0), final=True)
        self._result = self._assemble(job)
        return self._result

    def cancel(self) -> CancelResult:
        """Cancel the job (``POST /api/v2/jobs/{id}/cancel``); idempotent: once a cancel
        was sent through this handle, later calls answer with its result."""
        with self._lock:
            if self._cancel_result is not None:
                return self._cancel_result
        result = self._backend.cancel(self.prompt_id)
        with self._lock:
            if result.cancelled:
                self._cancel_result = result
            self._cancelled = self._cancelled or result.cancelled
        return result

    def done(self) -> bool:
        """Whether the job has ended (asks the deployment once while it has not)."""
        if self._result is not None or self._job.terminal:
            return True
        self._job = self._backend.jobs.get(self.prompt_id, deadline=Deadline.after(10.0))
        return self._job.terminal

    def release(self) -> None:
        """Nothing is held between waits (each wait opens its own event stream)."""

    # -- internals ---------------------------------------------------------------------------

    def _follow(self, deadline: Deadline, callbacks: WaitCallbacks) -> Job | None:
        """The terminal job, or ``None`` when the deadline passed first."""
        if not self._job.terminal:
            # One read first: a short job is often done before an event stream (which the
            # proxy backs with its own ComfyUI websocket) would even be open.
            self._job = self._backend.jobs.get(self.prompt_id, deadline=deadline)
        if self._job.terminal:
            confirmed = self._confirmed(self._job, deadline)
            if confirmed is not None and confirmed.terminal:
                return confirmed
        if self._options.events:
            try:
                return self._follow_events(deadline, callbacks)
            except V2TooManyStreamsError:
                logger.info("job %s: no event stream free; polling", self.prompt_id)
        return self._poll(deadline, callbacks)

    def _follow_events(self, deadline: Deadline, callbacks: WaitCallbacks) -> Job | None:
        jobs = self._backend.jobs
        while not deadline.expired():
            final: StatusEvent | None = None
            outputs: dict[str, Output] = {}
            for event in jobs.events(
                self.prompt_id, deadline=deadline, idle_timeout=EVENTS_IDLE_CHECK
            ):
                if isinstance(event, ProgressEvent):
                    _emit_progress(callbacks, self.prompt_id, event.progress)
                elif isinstance(event, PreviewEvent) and callbacks.on_preview is not None:
                    _call(
                        callbacks.on_preview,
                        Preview(self.prompt_id, event.node_id, event.data, event.content_type),
                    )
                elif isinstance(event, OutputEvent):
                    outputs[event.output.id] = event.output
                elif isinstance(event, StatusEvent) and event.terminal:
                    final = event
            if final is None:
                if outputs:  # the deadline passed: keep what was committed for the result
                    self._job = replace(self._job, outputs=tuple(outputs.values()))
                return None
            if final.status == "succeeded":
                # Only a finished history entry says succeeded, and the stream delivered its
                # outputs after it: no need to ask again.
                self._job = Job(self.prompt_id, "succeeded", outputs=tuple(outputs.values()))
                return self._job
            job = self._confirmed(jobs.get(self.prompt_id, deadline=deadline), deadline)
            if job is not None and job.terminal:
                return job
            # The stream said it ended but the job says otherwise: follow it again.
        return None

    def _poll(self, deadline: Deadline, callbacks: WaitCallbacks) -> Job | None:
        interval = POLL_START
        while True:
            job = self._backend.jobs.get(self.prompt_id, deadline=deadline)
            self._job = job
            if job.terminal:
                confirmed = self._confirmed(job, deadline)
                if confirmed is not None and confirmed.terminal:
                    return confirmed
            elif job.progress is not None:
                _emit_progress(callbacks, self.prompt_id, job.progress)
            left = deadline.remaining()
            if left is not None and left <= 0:
                return None
            time.sleep(interval if left is None else min(interval, left))
            interval = min(POLL_MAX, interval * 1.5)

    def _confirmed(self, job: Job, deadline: Deadline) -> Job | None:
        """``job``, re-read while it says ``expired`` (a transient proxy reading)."""
        for pause in EXPIRED_PAUSES:
            if job.status != "expired":
                break
            left = deadline.remaining()
            if left is not None and left <= pause:
                break
            time.sleep(pause)
            job = self._backend.jobs.get(self.prompt_id, deadline=deadline)
        self._job = job
        return job

    def _cancel_once(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
        try:
            result = self.cancel()
            logger.info("job %s cancelled: %s", self.prompt_id, result.outcome.value)
        except WitnessError as exc:
            logger.warning("job %s: cancel failed: %s", self.prompt_id, exc)

    def _assemble(self, job: Job, *, status_override: Status | None = None) -> ExecuteResult:
        entry, urls = _history_entry(job)
        prepared = self._prepared
        result = assemble(
            job.id,
            entry,
            signature=prepared.signature if prepared is not None else None,
            prompt=prepared.prompt if prepared is not None else None,
            view_url=lambda filename, _sub, _type: urls.get(filename, ""),
            started=self._started,
            status_override=status_override,
            downloader=self._downloader(job),
        )
        if job.status == "expired" and status_override is None:
            result.msg = f"job {job.id} expired (the deployment no longer has it)"
        return result

    def _downloader(self, job: Job) -> Callable[[OutputFile, Path], int]:
        by_url = {output.url: output for output in job.outputs}
        assets = self._backend.assets

        def download(file: OutputFile, path: Path) -> int:
            output = by_url.get(file.url)
            if output is None:
                raise WitnessError(f"no v2 output behind {file.url!r}")
            # Always the deployment's own content route (never the output URL itself,
            # which may be on another host): the key stays on its origin.
            return assets.download(output.id, path, deadline=Deadline.after(300.0))

        return download


def _history_entry(job: Job) -> tuple[dict[str, Any], dict[str, str]]:
    """The job as a native history entry (so outputs are classified the native way), and
    each output file name's URL."""
    outputs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    urls: dict[str, str] = {}
    for output in job.outputs:
        key = _OUTPUT_KEYS.get(output.type, "files")
        item = _history_item(output)
        outputs.setdefault(output.node_id, {}).setdefault(key, []).append(item)
        urls.setdefault(output.name, output.url)
    messages: list[list[Any]] = []
    if job.status == "succeeded":
        status = {"status_str": "success", "completed": True, "messages": messages}
    else:
        error = job.error
        if job.status == "failed":
            messages.append(
                [
                    "execution_error",
                    {
                        "node_id": error.node_id if error else None,
                        "node_type": error.class_type if error else None,
                        "exception_type": error.code if error else None,
                        "exception_message": error.message if error else "execution failed",
                        "traceback": (error.traceback or "").splitlines() if error else [],
                    },
                ]
            )
        elif job.status == "canceled":
            messages.append(["execution_interrupted", {"node_id": None}])
        status = {"status_str": "error", "completed": False, "messages": messages}
    return {"status": status, "outputs": outputs}, urls


def _history_item(output: Output) -> dict[str, Any]:
    return {
        "filename": output.name,
        "subfolder": "",
        "type": "output",
        "format": output.content_type,
        "asset_id": output.id,
    }


def _call(callback: Callable[[Any], None], value: object) -> None:
    try:
        callback(value)
    except Exception:
        logger.exception("a v2 wait callback raised (ignored)")


def _emit_progress(
    callbacks: WaitCallbacks, prompt_id: str, progress: Progress, *, final: bool = False
) -> None:
    if callbacks.on_progress is None:
        return
    update = ProgressUpdate(
        prompt_id=prompt_id,
        node_id=progress.current_node,
        value=float(progress.step if progress.step is not None else (1 if final else 0)),
        max=float(progress.steps if progress.steps else 1),
        overall=1.0 if final else progress.value,
        nodes_done=progress.nodes_done,
        nodes_total=progress.nodes_total,
    )
    _call(callbacks.on_progress, update)


if TYPE_CHECKING:
    from witness.backends.base import Backend, RunHandle
    from witness.core.validate import NodeCatalog

    _backend: type[Backend] = V2Backend
    _handle: type[RunHandle] = V2RunHandle

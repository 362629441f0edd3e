"""RunningHub as a :class:`~witness.backends.base.Backend`: run a workflow by id in the cloud and
get the same :class:`~witness.core.results.ExecuteResult` as locally.

The pipeline drives it like every backend:

1. load: :meth:`RunningHubBackend.fetch_workflow` (``getJsonApiFormat``) gives the API-format
   graph of a ``runninghub:<id>`` source; the pipeline parses its DSL titles and applies the
   params (unknown and missing ones fail before anything is uploaded or created);
2. validate: :meth:`RunningHubBackend.catalog` is ``None``: RunningHub validates at create;
3. upload: :meth:`RunningHubBackend.uploader` stores media on RunningHub
   (``/task/openapi/upload``, 30 MB checked first);
4. submit: :meth:`RunningHubBackend.submit` creates the task with ONLY the params the caller
   supplied (``prepared.params``; defaults stay on RunningHub's side), ``fieldValue`` in the
   documented string form, plus the seeds the pipeline randomised. A create whose answer was
   lost raises :class:`~witness.errors.RunningHubCreateUnconfirmedError` and is never resent;
5. wait: :meth:`RunningHubRunHandle.wait` polls ``/status`` every ``poll_interval`` seconds
   until the deadline (an unknown status is polled again after the usual sleep). SUCCESS →
   ``/outputs`` → the files, classified like local results (``fileType``, then the URL's
   extension); ``txt``/``json`` outputs are downloaded (credential-free, size capped) into
   ``texts``. FAILED → ``failedReason`` → ``status="failed"`` with a
   :class:`~witness.core.results.NodeFailure`. Deadline → ``/task/openapi/cancel`` (unless
   ``RunningHubOptions.cancel_on_timeout`` is false) and ``status="timeout"``;
   :meth:`RunningHubRunHandle.cancel` from another thread → ``status="interrupted"``; Ctrl-C
   or any other exception while waiting → cancel, then re-raised. A task is cancelled once.

Progress: ``on_progress`` gets :class:`RunningHubProgress`, a
:class:`~witness.core.tracking.ProgressUpdate` carrying RunningHub's status string; RunningHub
reports no per-node progress, so ``overall`` is 0.0 until success.

Media param values: a local path (``str``/``PathLike``) is uploaded; an ``http(s)`` URL is
downloaded (credential-free, 30 MB cap) and uploaded; ``bytes`` are uploaded when their type
can be recognised (PNG, JPEG, WEBP, WAV, MP3, MP4); a string starting with ``api/`` is taken as
a name RunningHub already stores. Anything else is an :class:`~witness.errors.UploadError`.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from witness.api_clients.types import CancelOutcome, CancelResult
from witness.backends.base import BackendOptions, PreparedWorkflow, WaitCallbacks
from witness.core import dsl
from witness.core.results import (
    ExecuteResult,
    NodeFailure,
    OutputFile,
    add_output,
    add_text,
    classify_output_file,
    failure_from_ws_error,
)
from witness.core.tracking import ProgressUpdate
from witness.errors import (
    ConfigError,
    InvalidArgumentError,
    RunningHubError,
    RunningHubResponseError,
    RunningHubServerError,
    RunningHubTransportError,
    UploadError,
)
from witness.runninghub.client import RunningHubClient
from witness.runninghub.settings import RunningHubSettings
from witness.runninghub.types import (
    MAX_UPLOAD_BYTES,
    TASK_STATUSES,
    FailedReason,
    NodeInfo,
    TaskInfo,
    TaskOutcome,
    TaskOutput,
    field_value,
)
from witness.transport.deadline import Deadline
from witness.utils.fetch import fetch_url

__all__ = [
    "RunningHubBackend",
    "RunningHubOptions",
    "RunningHubProgress",
    "RunningHubRunHandle",
    "RunningHubUploader",
]

logger = logging.getLogger(__name__)

TEXT_LIMIT = 10 * 1024 * 1024
_TEXT_TYPES = frozenset({"txt", "text", "json", "xml"})
_FINISHED = frozenset({"SUCCESS", "FAILED"})
_GRAPH_CACHE = 32
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"ID3", "mp3"),
)


@dataclass(frozen=True)
class RunningHubOptions(BackendOptions):
    """What only RunningHub understands (pass as ``options`` to :meth:`RunningHubBackend.submit`).

    Attributes:
        webhook_url: Sent as ``webhookUrl``: RunningHub POSTs ``TASK_END`` there.
        instance_type: ``"default"`` or ``"plus"`` (48 GB); defaults to the settings'.
        cancel_on_timeout: Cancel the task when the wait's deadline passes (default). When
            ``False`` the task keeps running (and costing) on RunningHub.
    """

    webhook_url: str | None = None
    instance_type: str | None = None
    cancel_on_timeout: bool = True


@dataclass(frozen=True)
class RunningHubProgress(ProgressUpdate):
    """One polling observation, passed to ``on_progress``: a :class:`ProgressUpdate` (the
    type local runs report) plus what RunningHub said.

    RunningHub reports no per-node progress, only a status string, so ``node_id`` is ``None``,
    ``overall``/``value`` are ``0.0`` until the task succeeded (then ``1.0``; ``max`` is 1.0),
    ``nodes_total`` is the workflow's node count and ``nodes_done`` is 0 until success (then
    ``nodes_total``). ``prompt_id`` is the task id (also as :attr:`task_id`). The first update
    comes when the wait starts (status ``QUEUED`` as a rule), then one after every status poll.

    Attributes:
        status: The status string RunningHub answered (may be unknown or empty).
        elapsed: Seconds since the call started.
    """

    status: str
    elapsed: float

    @property
    def task_id(self) -> str:
        """The RunningHub task id (the same as ``prompt_id``)."""
        return self.prompt_id


class RunningHubBackend:
    """Runs prepared workflows on RunningHub (see the module docstring).

    Thread-safe: several threads may submit and wait at once, and another thread may cancel
    a task one of them waits for.

    Args:
        settings: Key, base URL, timeouts, retry policy. ``None``: resolved with
            :meth:`RunningHubSettings.from_env` (``api_key`` > ``RUNNINGHUB_API_KEY`` >
            ``dotenv_path``), or taken from ``client``.
        api_key: The RunningHub key, when ``settings`` is not given.
        dotenv_path: A ``.env`` file to read, when ``settings`` is not given.
        client: An existing client (not closed by :meth:`close`); else one is built.

    Raises:
        ConfigError: No RunningHub key anywhere, or an invalid ``RUNNINGHUB_*`` value.
    """

    name = "runninghub"

    def __init__(
        self,
        settings: RunningHubSettings | None = None,
        *,
        api_key: str | None = None,
        dotenv_path: str | os.PathLike[str] | None = None,
        client: RunningHubClient | None = None,
    ) -> None:
        if settings is None:
            settings = (
                client.settings
                if client is not None
                else RunningHubSettings.from_env(dotenv_path, api_key=api_key)
            )
        self.settings = settings
        self._owns_client = client is None
        self.client = client if client is not None else RunningHubClient(settings)
        self._runs: dict[str, RunningHubRunHandle] = {}
        self._graphs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: RunningHubSettings | None = None,
        *,
        api_key: str | None = None,
        dotenv_path: str | os.PathLike[str] | None = None,
    ) -> RunningHubBackend:
        """Build the backend from settings, a key, or the environment, with a ``ConfigError``
        that says how to configure RunningHub when no key is found anywhere.

        Raises:
            ConfigError: No key (the message names ``RUNNINGHUB_API_KEY``), or a bad value.
        """
        if settings is None:
            try:
                settings = RunningHubSettings.from_env(dotenv_path, api_key=api_key)
            except ConfigError as exc:
                if exc.name != "RUNNINGHUB_API_KEY" or exc.value is not None:
                    raise  # an invalid RUNNINGHUB_* value: its own message names it
                raise ConfigError(
                    "RUNNINGHUB_API_KEY",
                    None,
                    "RunningHub is not configured (numeric and runninghub:<id> workflow ids "
                    "run there): pass Witness(runninghub_api_key=...) or runninghub_settings=, "
                    "or set the RUNNINGHUB_API_KEY environment variable",
                ) from exc
        return cls(settings)

    def __repr__(self) -> str:
        return f"RunningHubBackend(base_url={self.settings.base_url!r})"

    # -- load / validate / upload ----------------------------------------------------------

    def fetch_workflow(self, workflow_id: str, deadline: Deadline) -> dict[str, Any]:
        """``POST /api/openapi/getJsonApiFormat``: the stored workflow in API format.

        Used by the load stage for a ``runninghub:<id>`` source. The graph is remembered, so
        :meth:`submit` can tell the seeds the pipeline randomised from the stored ones.

        Raises:
            RunningHubWorkflowNotFoundError: 380, no such workflow.
            RunningHubResponseError: The answer holds no API-format workflow.
        """
        with deadline.scope():
            graph = self.client.get_workflow_api_format(workflow_id)
        with self._lock:
            self._graphs[str(workflow_id).strip()] = graph
            self._graphs.move_to_end(str(workflow_id).strip())
            while len(self._graphs) > _GRAPH_CACHE:
                self._graphs.popitem(last=False)
        return copy.deepcopy(graph)

    def catalog(self, deadline: Deadline) -> None:
        """``None``: RunningHub validates a workflow when the task is created."""

    def refresh_catalog(self, class_types: Any, deadline: Deadline) -> None:
        """``None``, as :meth:`catalog`."""

    def uploader(self, deadline: Deadline) -> RunningHubUploader:
        """The media uploader of one call (``POST /task/openapi/upload``)."""
        return RunningHubUploader(self.client, deadline)

    # -- submit / attach / cancel ----------------------------------------------------------

    def submit(
        self,
        prepared: PreparedWorkflow,
        deadline: Deadline,
        options: BackendOptions | None = None,
    ) -> RunningHubRunHandle:
        """``POST /task/openapi/create`` with only the supplied params; returns the handle.

        Args:
            prepared: ``workflow_id`` names the RunningHub workflow; ``signature`` and
                ``prompt`` (params applied) give the nodeInfoList of ``params``.
            deadline: The call's deadline (the create request's timeouts are clamped to it).
            options: :class:`RunningHubOptions`, or ``None``.

        Raises:
            InvalidArgumentError: No ``workflow_id``, or options of another backend.
            RunningHubCreateUnconfirmedError: The answer was lost; the task may exist.
            RunningHubError: RunningHub refused the task (the typed error of its code).
        """
        return self._submit(prepared, deadline, options, threading.Event())

    def _submit(
        self,
        prepared: PreparedWorkflow,
        deadline: Deadline,
        options: BackendOptions | None,
        stop: threading.Event,
    ) -> RunningHubRunHandle:
        if options is None:
            options = RunningHubOptions()
        if not isinstance(options, RunningHubOptions):
            raise InvalidArgumentError(
                "options", f"RunningHub takes RunningHubOptions, not {type(options).__name__}"
            )
        if not prepared.workflow_id:
            raise InvalidArgumentError(
                "workflow", "a RunningHub run needs a workflow id (a runninghub:<id> source)"
            )
        workflow_id = str(prepared.workflow_id).strip()
        given = {k: v for k, v in prepared.params.items() if v is not None}
        node_info = _node_info(prepared.signature, given, prepared.prompt)
        with self._lock:
            stored = self._graphs.get(workflow_id)
        if stored is not None:
            node_info += _changed_seeds(prepared.signature, given, stored, prepared.prompt)
        with deadline.scope():
            task = self.client.create_task(
                workflow_id,
                node_info,
                webhook_url=options.webhook_url,
                instance_type=options.instance_type,
            )
        logger.info("RunningHub task %s created for workflow %s", task.task_id, workflow_id)
        handle = RunningHubRunHandle(
            self, task, prepared=prepared, options=options, started=deadline.started, stop=stop
        )
        with self._lock:
            self._runs[task.task_id] = handle
        return handle

    def attach(self, prompt_id: str, deadline: Deadline) -> RunningHubRunHandle:
        """A handle for a task created earlier (``POST /task/openapi/status`` once).

        Raises:
            RunningHubTaskNotFoundError: No such task for this key.
        """
        with deadline.scope():
            status = self.client.task_status(prompt_id)
        task = TaskInfo(task_id=str(prompt_id), status=status)
        handle = RunningHubRunHandle(self, task, started=time.monotonic())
        with self._lock:
            self._runs.setdefault(task.task_id, handle)
        return handle

    def cancel(self, prompt_id: str) -> CancelResult:
        """``POST /task/openapi/cancel``: through the live handle if one waits for it."""
        with self._lock:
            handle = self._runs.get(prompt_id)
        if handle is not None:
            return handle.cancel()
        self.client.cancel(prompt_id)
        return CancelResult(prompt_id, CancelOutcome.INTERRUPTED, "runninghub")

    def running(self) -> list[str]:
        """Ids of the tasks submitted or attached here that have not been waited for."""
        with self._lock:
            return list(self._runs)

    def close(self) -> None:
        """Close the client if this backend built it. Safe to call twice."""
        if self._owns_client:
            self.client.close()

    def _forget(self, task_id: str) -> None:
        with self._lock:
            self._runs.pop(task_id, None)


class RunningHubUploader:
    """Turns a media param value into the name RunningHub stores it by (``api/<sha>.<ext>``).

    Args:
        client: The RunningHub client.
        deadline: The call's deadline (uploads and URL fetches are clamped to it).
    """

    def __init__(self, client: RunningHubClient, deadline: Deadline) -> None:
        self.client = client
        self.deadline = deadline

    def __call__(self, param: dsl.Param, target: dsl.ParamTarget, value: Any) -> str:
        """Upload ``value`` for ``param`` (see the module docstring for the accepted forms).

        Raises:
            UploadError: A value that is none of the accepted forms.
            RunningHubFileTooLargeError: Over 30 MB (nothing sent).
        """
        with self.deadline.scope():
            return self._upload(param, value)

    def _upload(self, param: dsl.Param, value: Any) -> str:
        if isinstance(value, str) and value.startswith("api/"):
            return value
        if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
            with fetch_url(value, max_bytes=MAX_UPLOAD_BYTES) as fetched:
                return self.client.upload(fetched.path, filename=fetched.name)
        if isinstance(value, str | os.PathLike):
            path = Path(value)
            if not path.is_file():
                raise UploadError(
                    f"parameter {param.name!r}: {str(value)!r} is not a local file, an http(s) "
                    "URL or a RunningHub file name (api/...)",
                    param=param.name,
                )
            return self.client.upload(path)
        if isinstance(value, bytes | bytearray):
            ext = _sniff(bytes(value))
            if ext is None:
                raise UploadError(
                    f"parameter {param.name!r}: cannot tell the type of the given bytes; "
                    "pass a file path instead",
                    param=param.name,
                )
            return self.client.upload(bytes(value), filename=f"{param.name}.{ext}")
        raise UploadError(
            f"parameter {param.name!r}: expected a path, URL, bytes or api/ name, "
            f"got {type(value).__name__}",
            param=param.name,
        )


class RunningHubRunHandle:
    """A task on RunningHub (a :class:`~witness.backends.base.RunHandle`).

    Args:
        backend: The backend that created (or attached to) the task.
        task: What ``create`` answered.
        prepared: The submitted workflow (``None`` for an attached task: outputs are then
            named by node id).
        options: The submit options.
        started: ``time.monotonic()`` when the call began (``duration`` is measured from it).
        stop: Set it (from any thread) to stop waiting; :meth:`cancel` does, after cancelling.
    """

    def __init__(
        self,
        backend: RunningHubBackend,
        task: TaskInfo,
        *,
        prepared: PreparedWorkflow | None = None,
        options: RunningHubOptions | None = None,
        started: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._backend = backend
        self._client = backend.client
        self.task = task
        self._graph: Mapping[str, Any] = prepared.prompt if prepared is not None else {}
        self._signature = prepared.signature if prepared is not None else None
        self.options = options if options is not None else RunningHubOptions()
        self.started = time.monotonic() if started is None else started
        self.stop = stop if stop is not None else threading.Event()
        self._status = task.status
        self._cancel_sent = False
        self._announced = False
        self._result: ExecuteResult | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RunningHubRunHandle(task_id={self.prompt_id!r}, status={self._status!r})"

    @property
    def prompt_id(self) -> str:
        """The RunningHub task id."""
        return self.task.task_id

    @property
    def status(self) -> str:
        """The last status RunningHub reported."""
        with self._lock:
            return self._status

    def done(self) -> bool:
        """Whether the task ended (asks ``/task/openapi/status`` once if not known yet)."""
        with self._lock:
            if self._result is not None or self._status in _FINISHED:
                return True
        status = self._client.task_status(self.prompt_id)
        with self._lock:
            self._status = status
        return status in _FINISHED

    def release(self) -> None:
        """Nothing to free (RunningHub is polled, no event stream is held)."""

    def cancel(self) -> CancelResult:
        """``POST /task/openapi/cancel`` (once, even if the waiting thread would cancel too);
        a waiting :meth:`wait` then returns ``"interrupted"``.

        Returns:
            ``DEQUEUED`` (it was queued), ``INTERRUPTED`` (running) or ``FINISHED`` (it had
            already ended; nothing sent).

        Raises:
            RunningHubError: RunningHub refused the cancel (the wait goes on).
        """
        with self._lock:
            last = self._status
            if self._result is not None or last in _FINISHED:
                return CancelResult(self.prompt_id, CancelOutcome.FINISHED, "runninghub")
            already = self._cancel_sent
            self._cancel_sent = True
        if not already:
            try:
                self._client.cancel(self.prompt_id)
            except BaseException:
                with self._lock:
                    self._cancel_sent = False
                raise
            logger.info("RunningHub task %s cancelled", self.prompt_id)
        self.stop.set()
        outcome = CancelOutcome.DEQUEUED if last == "QUEUED" else CancelOutcome.INTERRUPTED
        return CancelResult(self.prompt_id, outcome, "runninghub")

    def wait(
        self,
        deadline: Deadline | None = None,
        callbacks: WaitCallbacks | None = None,
    ) -> ExecuteResult:
        """Poll until the task ends or ``deadline`` passes (default: ``settings.timeout``).

        Returns:
            ``completed``, ``failed`` (with ``error``), ``timeout`` or ``interrupted``; the
            same result on later calls once the task ended.

        Raises:
            RunningHubError: Any RunningHub error code while polling (e.g. 802: the key
                expired); the task is then cancelled, as on any exception or Ctrl-C.
        """
        if self._result is not None:
            return self._result
        if deadline is None:
            deadline = Deadline.after(self._backend.settings.timeout)
        on_progress = callbacks.on_progress if callbacks is not None else None
        try:
            with deadline.scope():
                if on_progress is not None and not self._announced:
                    self._announced = True
                    on_progress(self._progress(self._status))
                outcome = self._poll(deadline, on_progress)
        except BaseException:
            # Ctrl-C, a raising callback, an auth error while polling: never leave a paid task
            # running behind the caller's back.
            self._cancel_quietly()
            self._backend._forget(self.prompt_id)
            raise
        result = self._finish(outcome, deadline)
        if result.status != "timeout" or self._cancel_sent:
            self._result = result
            self._backend._forget(self.prompt_id)
        return result

    # -- internals -------------------------------------------------------------------------

    def _poll(self, deadline: Deadline, on_progress: Any) -> TaskOutcome | str:
        warned: set[str] = set()
        status = self._status
        poll = self._backend.settings.poll_interval
        while True:
            if self.stop.is_set():
                return "interrupted"
            if status in _FINISHED:
                outcome = self._client.task_outputs(self.prompt_id)
                if outcome.finished:
                    return outcome
            if deadline.expired():
                return "timeout"
            if self.stop.wait(deadline.clamp(poll) or poll):
                return "interrupted"
            if deadline.expired():
                return "timeout"
            try:
                status = self._client.task_status(self.prompt_id)
            except (
                RunningHubTransportError,
                RunningHubServerError,
                RunningHubResponseError,
            ) as exc:
                logger.warning(
                    "RunningHub task %s: status poll failed (%s); will retry", self.prompt_id, exc
                )
                status = ""
                continue
            with self._lock:
                self._status = status
            if status not in TASK_STATUSES and status not in warned:
                warned.add(status)
                logger.warning(
                    "RunningHub task %s: undocumented status %r; polling on", self.prompt_id, status
                )
            if on_progress is not None:
                on_progress(self._progress(status))

    def _finish(self, outcome: TaskOutcome | str, deadline: Deadline) -> ExecuteResult:
        task_id = self.prompt_id
        if isinstance(outcome, TaskOutcome):
            with self._lock:
                cancelled = self._cancel_sent
            if not (cancelled and outcome.status == "FAILED"):
                return self._result_of(outcome)
            outcome = "interrupted"  # failed because cancel() (another thread) cancelled it
        if outcome == "timeout":
            cancel = self.options.cancel_on_timeout
            if cancel:
                self._cancel_quietly()
            limit = deadline.seconds if deadline.seconds is not None else deadline.elapsed()
            return ExecuteResult(
                status="timeout",
                prompt_id=task_id,
                duration=time.monotonic() - self.started,
                msg=f"RunningHub task {task_id} timed out ({limit:g} s limit); "
                + ("it was cancelled" if cancel else "it may still run on RunningHub"),
            )
        self._cancel_quietly()
        return ExecuteResult(
            status="interrupted",
            prompt_id=task_id,
            duration=time.monotonic() - self.started,
            msg=f"RunningHub task {task_id} was interrupted; it was cancelled",
        )

    def _cancel_quietly(self) -> None:
        """Cancel the task unless that was done already (by :meth:`cancel`)."""
        with self._lock:
            if self._cancel_sent:
                return
            self._cancel_sent = True
        try:
            self._client.cancel(self.prompt_id)
            logger.info("RunningHub task %s cancelled", self.prompt_id)
        except RunningHubError as exc:
            logger.warning("RunningHub task %s: cancel failed: %s", self.prompt_id, exc)

    def _progress(self, status: str) -> RunningHubProgress:
        done = status == "SUCCESS"
        count = len(self._graph)
        return RunningHubProgress(
            prompt_id=self.prompt_id,
            node_id=None,
            value=1.0 if done else 0.0,
            max=1.0,
            overall=1.0 if done else 0.0,
            nodes_done=count if done else 0,
            nodes_total=count,
            status=status,
            elapsed=time.monotonic() - self.started,
        )

    def _result_of(self, outcome: TaskOutcome) -> ExecuteResult:
        if outcome.status == "FAILED":
            failure = _failure(outcome.failed_reason, self._graph)
            return ExecuteResult(
                status="failed",
                prompt_id=outcome.task_id,
                duration=time.monotonic() - self.started,
                msg=failure.summary() if failure else f"RunningHub task {outcome.task_id} failed",
                error=failure,
                outputs={"failedReason": dict(outcome.failed_reason.raw)}
                if outcome.failed_reason
                else {},
            )
        result = ExecuteResult(status="completed", prompt_id=outcome.task_id, downloader=_download)
        names = self._signature.output_names_by_node() if self._signature is not None else {}
        for index, out in enumerate(outcome.outputs):
            node_key = out.node_id or str(index)
            variables = names.get(out.node_id or "", [node_key])
            result.outputs.setdefault(node_key, []).append(
                {"fileUrl": out.file_url, "fileType": out.file_type, "nodeId": out.node_id}
            )
            item = _output_file(out, node_key, variables[0])
            if item.kind == "text" or out.file_type in _TEXT_TYPES:
                result.files.append(item)
                add_text(result, _download_text(out.file_url), variables)
            else:
                add_output(result, item, variables)
        costs = [o.task_cost_time for o in outcome.outputs if o.task_cost_time is not None]
        result.execution_time = costs[0] if costs else None
        result.duration = time.monotonic() - self.started
        return result


# -- helpers ---------------------------------------------------------------------------------


def _changed_seeds(
    signature: dsl.Signature,
    given: Mapping[str, Any],
    stored: Mapping[str, Any],
    prompt: Mapping[str, Any],
) -> list[NodeInfo]:
    """nodeInfoList items for the seeds the pipeline randomised (seed inputs that differ from
    the stored workflow and that no supplied param targets)."""
    supplied = {
        (target.node_id, target.field)
        for name in given
        if name in signature.params
        for target in signature.params[name].targets
    }
    items: list[NodeInfo] = []
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        before_node = stored.get(node_id)
        if not isinstance(inputs, Mapping) or not isinstance(before_node, Mapping):
            continue
        before = before_node.get("inputs") or {}
        for name in sorted(dsl.SEED_INPUTS & inputs.keys()):
            if (node_id, name) not in supplied and inputs[name] != before.get(name):
                items.append(NodeInfo(node_id, name, field_value(inputs[name])))
    return items


def _node_info(
    signature: dsl.Signature, given: Mapping[str, Any], prompt: Mapping[str, Any]
) -> list[NodeInfo]:
    """One item per target of each supplied param, with the value the DSL stage wrote."""
    items: list[NodeInfo] = []
    for name in given:
        if name not in signature.params:
            continue  # an unknown name let through by allow_unknown
        for target in signature.params[name].targets:
            value = prompt[target.node_id]["inputs"][target.field]
            if isinstance(value, Mapping) and set(value) == {"__value__"}:
                value = value["__value__"]
            items.append(NodeInfo(target.node_id, target.field, field_value(value)))
    return items


def _sniff(data: bytes) -> str | None:
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[4:8] == b"ftyp":
        return "mp4"
    return None


def _output_file(out: TaskOutput, node_key: str, var: str) -> OutputFile:
    name = unquote(urlsplit(out.file_url).path.rsplit("/", 1)[-1]) or f"{node_key}.{out.file_type}"
    kind = classify_output_file(f"output.{out.file_type}", "") if out.file_type else "other"
    if kind == "other":
        kind = classify_output_file(name, "")
    return OutputFile(
        node_id=out.node_id or node_key,
        var=var,
        key="runninghub",
        filename=name,
        subfolder="",
        type="output",
        kind=kind,
        url=out.file_url,
    )


def _failure(reason: FailedReason | None, workflow: Mapping[str, Any]) -> NodeFailure | None:
    """The :class:`NodeFailure` of a ``failedReason``, built like a local ``execution_error``
    (the node's class from the workflow when RunningHub did not name it)."""
    if reason is None:
        return None
    node = workflow.get(reason.node_id or "")
    class_type = reason.node_name
    if class_type is None and isinstance(node, Mapping):
        class_type = node.get("class_type")
    return failure_from_ws_error(
        {
            "node_id": reason.node_id,
            "node_type": class_type,
            "exception_type": reason.exception_type,
            "exception_message": reason.exception_message,
            "traceback": list(reason.traceback),
        },
        workflow,
    )


def _download(item: OutputFile, destination: Path) -> int:
    """Downloader for ExecuteResult.save(): output URLs are third-party (CDN) URLs, fetched
    without any RunningHub credential."""
    with fetch_url(item.url) as fetched:
        shutil.copyfile(fetched.path, destination)
        return fetched.size


def _download_text(url: str) -> str:
    with fetch_url(url, max_bytes=TEXT_LIMIT) as fetched:
        return fetched.read_bytes().decode("utf-8", "replace").strip()

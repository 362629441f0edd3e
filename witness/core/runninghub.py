"""The cloud path: run a RunningHub workflow by id and get the same ExecuteResult as locally.

``RunningHubExecutor.execute(workflow_id, params)``:

1. fetch the workflow (``getJsonApiFormat``) and parse its DSL titles (:func:`dsl.parse`);
2. check the params before anything is uploaded or created: unknown names and missing
   required ones raise :class:`UnknownParamError` / :class:`MissingParamError`;
3. upload media params (``/task/openapi/upload``, 30 MB checked first);
4. build the nodeInfoList from ONLY the params the caller supplied (defaults stay on
   RunningHub's side; seeds are never randomised). ``fieldValue`` is sent in the documented
   string form (see :func:`field_value`: ``"20"``, ``"0.5"``, ``"true"``);
5. create the task (never resent when the answer is lost), then poll ``/status`` every
   ``poll_interval`` seconds until the deadline. An unknown status string is polled again
   after the usual sleep, so it can never busy-loop;
6. SUCCESS → ``/outputs`` → files classified like local results (by ``fileType``, then the
   URL's extension); ``txt``/``json`` outputs are downloaded (no credentials sent, size
   capped) into ``texts``. FAILED → ``/outputs`` → ``failedReason`` → ``status="failed"``
   with :class:`NodeFailure` filled. Deadline → ``/task/openapi/cancel`` and
   ``status="timeout"``; ``cancel_event`` or :meth:`RunningHubExecutor.cancel` from another
   thread → cancel and ``status="interrupted"``; Ctrl-C or any other exception while waiting
   (a raising callback, the key expiring) → cancel, then re-raised. A task is cancelled once.

Progress: ``on_progress`` gets :class:`RunningHubProgress`, a
:class:`~witness.core.tracking.ProgressUpdate` (the type of local runs) carrying RunningHub's
status string; RunningHub reports no per-node progress, so ``overall`` is 0.0 until success.

Media param values: a local path (``str``/``PathLike``) is uploaded; an ``http(s)`` URL is
downloaded (credential-free, 30 MB cap) and uploaded; ``bytes`` are uploaded when their type
can be recognised (PNG, JPEG, WEBP, WAV, MP3, MP4); a string starting with ``api/`` is taken as
a name RunningHub already stores. Anything else is an :class:`UploadError` (never silently
passed through).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from witness.api_clients.runninghub_client import (
    MAX_UPLOAD_BYTES,
    TASK_STATUSES,
    FailedReason,
    NodeInfo,
    RunningHubClient,
    TaskOutcome,
    TaskOutput,
    field_value,
)
from witness.api_clients.types import CancelOutcome
from witness.config.settings import RunningHubSettings
from witness.core import dsl
from witness.core.results import ExecuteResult, NodeFailure, OutputFile, classify_output_file
from witness.core.tracking import ProgressUpdate
from witness.errors import (
    RunningHubError,
    RunningHubResponseError,
    RunningHubServerError,
    RunningHubTransportError,
    UploadError,
    WitnessError,
)
from witness.utils.fetch import fetch_url

__all__ = ["RunningHubExecutor", "RunningHubProgress"]

logger = logging.getLogger(__name__)

TEXT_LIMIT = 10 * 1024 * 1024
_TEXT_TYPES = frozenset({"txt", "text", "json", "xml"})
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"ID3", "mp3"),
)


@dataclass(frozen=True)
class RunningHubProgress(ProgressUpdate):
    """One polling observation, passed to ``on_progress``: a :class:`ProgressUpdate` (the
    type local runs report) plus what RunningHub said.

    RunningHub reports no per-node progress, only a status string, so ``node_id`` is ``None``,
    ``overall``/``value`` are ``0.0`` until the task succeeded (then ``1.0``; ``max`` is 1.0),
    ``nodes_total`` is the workflow's node count and ``nodes_done`` is 0 until success (then
    ``nodes_total``). ``prompt_id`` is the task id (also as :attr:`task_id`), so another
    thread may pass it to ``Witness.cancel``. The first update comes right after the task was
    created (status ``QUEUED`` as a rule), then one after every status poll.

    Attributes:
        status: The status string RunningHub answered (may be unknown or empty).
        elapsed: Seconds since ``execute`` started.
    """

    status: str
    elapsed: float

    @property
    def task_id(self) -> str:
        """The RunningHub task id (the same as ``prompt_id``)."""
        return self.prompt_id


@dataclass
class _Run:
    """An ``execute`` waiting for a task: how to stop it, what it saw last, whether the task
    was already cancelled (so it is cancelled once)."""

    stop: threading.Event
    status: str
    cancel_sent: bool = False


class RunningHubExecutor:
    """Runs RunningHub workflows with the DSL and returns :class:`ExecuteResult`.

    Thread-safe: several threads may run ``execute`` at once, and another thread may
    :meth:`cancel` a task one of them waits for.

    Args:
        client: The RunningHub client.
        settings: Deadline and poll interval defaults; ``client.settings`` when omitted.
    """

    def __init__(
        self, client: RunningHubClient, settings: RunningHubSettings | None = None
    ) -> None:
        self.client = client
        self.settings = settings if settings is not None else client.settings
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def execute(
        self,
        workflow_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: Callable[[RunningHubProgress], None] | None = None,
        webhook_url: str | None = None,
        instance_type: str | None = None,
        cancel_event: threading.Event | None = None,
        cancel_on_timeout: bool = True,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
    ) -> ExecuteResult:
        """Run workflow ``workflow_id`` on RunningHub with ``params``.

        Args:
            workflow_id: The numeric RunningHub workflow id.
            params: DSL parameter name → value (``None`` values count as not given).
            timeout: Overall deadline in seconds; defaults to ``settings.timeout``.
            on_progress: Called right after the task was created, then after every status
                poll, with a :class:`RunningHubProgress` (a ``ProgressUpdate``).
            webhook_url: Passed to RunningHub as ``webhookUrl``.
            instance_type: ``"default"`` or ``"plus"``; defaults to the settings'.
            cancel_event: Set it (from another thread) to cancel the task; :meth:`cancel`
                with the task id does the same.
            cancel_on_timeout: Cancel the task when the deadline passes (default). When
                ``False`` the task keeps running (and costing) on RunningHub.
            allow_unknown: Ignore params the workflow does not declare (else an error).
            randomize_seeds: Send a random value for every literal ``seed``/``noise_seed``
                input of the workflow that no supplied param sets (else RunningHub's stored
                values are used).

        Returns:
            ``completed``, ``failed`` (with ``error``), ``timeout`` or ``interrupted``.

        Raises:
            UnknownParamError, MissingParamError, ParamError: Params do not fit (nothing sent).
            DSLError, WorkflowFormatError: The fetched workflow's titles are malformed.
            UploadError, RunningHubFileTooLargeError: A media value cannot be uploaded.
            RunningHubCreateUnconfirmedError: The create answer was lost; not resent.
            RunningHubError: Any other RunningHub error code (e.g. 802 while polling; the
                task is then cancelled, as on any exception or Ctrl-C while waiting).
        """
        started = time.monotonic()
        limit = self.settings.timeout if timeout is None else float(timeout)
        if not limit > 0:
            raise WitnessError(f"timeout must be a positive number of seconds, got {timeout!r}")
        deadline = started + limit
        workflow = self.client.get_workflow_api_format(workflow_id)
        signature = dsl.parse(workflow)
        given = {k: v for k, v in (params or {}).items() if v is not None}
        prompt = dsl.apply(
            workflow,
            signature,
            given,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            resolve_media=self._upload_media,
        )
        node_info = _node_info(signature, given, prompt)
        if randomize_seeds:
            node_info += _random_seeds(signature, given, workflow, prompt)
        task = self.client.create_task(
            workflow_id, node_info, webhook_url=webhook_url, instance_type=instance_type
        )
        task_id = task.task_id
        logger.info("RunningHub task %s created for workflow %s", task_id, workflow_id)
        run = _Run(cancel_event if cancel_event is not None else threading.Event(), task.status)
        with self._lock:
            self._runs[task_id] = run
        try:
            if on_progress is not None:
                on_progress(_progress(task_id, task.status, len(workflow), started))
            outcome = self._wait(
                task_id,
                run,
                node_count=len(workflow),
                started=started,
                deadline=deadline,
                on_progress=on_progress,
            )
        except BaseException:
            # Ctrl-C, a raising callback, an auth error while polling: never leave a paid task
            # running behind the caller's back.
            self._cancel(task_id, run)
            raise
        finally:
            with self._lock:
                self._runs.pop(task_id, None)
        if isinstance(outcome, TaskOutcome):
            with self._lock:
                cancelled = run.cancel_sent
            if not (cancelled and outcome.status == "FAILED"):
                return self._result(outcome, workflow, signature, started)
            outcome = "interrupted"  # failed because cancel() (another thread) cancelled it
        if outcome == "timeout":
            if cancel_on_timeout:
                self._cancel(task_id, run)
            return ExecuteResult(
                status="timeout",
                prompt_id=task_id,
                duration=time.monotonic() - started,
                msg=f"RunningHub task {task_id} timed out ({limit:g} s limit); "
                + ("it was cancelled" if cancel_on_timeout else "it may still run on RunningHub"),
            )
        self._cancel(task_id, run)
        return ExecuteResult(
            status="interrupted",
            prompt_id=task_id,
            duration=time.monotonic() - started,
            msg=f"RunningHub task {task_id} was interrupted; it was cancelled",
        )

    def cancel(self, task_id: str) -> CancelOutcome | None:
        """Cancel a task that an :meth:`execute` of this executor is waiting for.

        ``POST /task/openapi/cancel`` is sent here (once, even if the waiting thread would
        cancel too); the waiting ``execute`` then returns status ``"interrupted"``.

        Args:
            task_id: The task id (``ExecuteResult.prompt_id``, ``RunningHubProgress.task_id``).

        Returns:
            ``DEQUEUED`` (it was queued), ``INTERRUPTED`` (running), ``FINISHED`` (it had
            already ended; nothing sent), or ``None`` when no ``execute`` here runs that task
            (cancel a task of another process with ``client.cancel``).

        Raises:
            RunningHubError: RunningHub refused the cancel (the ``execute`` keeps waiting).
        """
        with self._lock:
            run = self._runs.get(task_id)
            if run is None:
                return None
            last = run.status
            if last in {"SUCCESS", "FAILED"}:
                return CancelOutcome.FINISHED
            already = run.cancel_sent
            run.cancel_sent = True
        if not already:
            try:
                self.client.cancel(task_id)
            except BaseException:
                with self._lock:
                    run.cancel_sent = False
                raise
            logger.info("RunningHub task %s cancelled", task_id)
        run.stop.set()
        return CancelOutcome.DEQUEUED if last == "QUEUED" else CancelOutcome.INTERRUPTED

    def running(self) -> list[str]:
        """Ids of the tasks this executor's ``execute`` calls are waiting for."""
        with self._lock:
            return list(self._runs)

    # -- steps -----------------------------------------------------------------------------

    def _upload_media(self, param: dsl.Param, target: dsl.ParamTarget, value: Any) -> str:
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

    def _wait(
        self,
        task_id: str,
        run: _Run,
        *,
        node_count: int,
        started: float,
        deadline: float,
        on_progress: Callable[[RunningHubProgress], None] | None,
    ) -> TaskOutcome | str:
        warned: set[str] = set()
        status = run.status
        while True:
            if run.stop.is_set():
                return "interrupted"
            if status in {"SUCCESS", "FAILED"}:
                outcome = self.client.task_outputs(task_id)
                if outcome.finished:
                    return outcome
            if time.monotonic() >= deadline:
                return "timeout"
            remaining = deadline - time.monotonic()
            if run.stop.wait(max(0.0, min(self.settings.poll_interval, remaining))):
                return "interrupted"
            if time.monotonic() >= deadline:
                return "timeout"
            try:
                status = self.client.task_status(task_id)
            except (
                RunningHubTransportError,
                RunningHubServerError,
                RunningHubResponseError,
            ) as exc:
                logger.warning(
                    "RunningHub task %s: status poll failed (%s); will retry", task_id, exc
                )
                status = ""
                continue
            with self._lock:
                run.status = status
            if status not in TASK_STATUSES and status not in warned:
                warned.add(status)
                logger.warning(
                    "RunningHub task %s: undocumented status %r; polling on", task_id, status
                )
            if on_progress is not None:
                on_progress(_progress(task_id, status, node_count, started))

    def _cancel(self, task_id: str, run: _Run) -> None:
        """Cancel the task unless that was done already (by :meth:`cancel`)."""
        with self._lock:
            if run.cancel_sent:
                return
            run.cancel_sent = True
        try:
            self.client.cancel(task_id)
            logger.info("RunningHub task %s cancelled", task_id)
        except RunningHubError as exc:
            logger.warning("RunningHub task %s: cancel failed: %s", task_id, exc)

    def _result(
        self,
        outcome: TaskOutcome,
        workflow: Mapping[str, Any],
        signature: dsl.Signature,
        started: float,
    ) -> ExecuteResult:
        if outcome.status == "FAILED":
            failure = _failure(outcome.failed_reason, workflow)
            return ExecuteResult(
                status="failed",
                prompt_id=outcome.task_id,
                duration=time.monotonic() - started,
                msg=failure.summary() if failure else f"RunningHub task {outcome.task_id} failed",
                error=failure,
                outputs={"failedReason": dict(outcome.failed_reason.raw)}
                if outcome.failed_reason
                else {},
            )
        result = ExecuteResult(
            status="completed",
            prompt_id=outcome.task_id,
            downloader=_download,
        )
        names = signature.output_names_by_node()
        for index, out in enumerate(outcome.outputs):
            node_key = out.node_id or str(index)
            variables = names.get(out.node_id or "", [node_key])
            raw = result.outputs.setdefault(node_key, [])
            raw.append({"fileUrl": out.file_url, "fileType": out.file_type, "nodeId": out.node_id})
            item = _output_file(out, node_key, variables[0])
            result.files.append(item)
            _bucket(result, item, variables, out)
        costs = [o.task_cost_time for o in outcome.outputs if o.task_cost_time is not None]
        result.execution_time = costs[0] if costs else None
        result.duration = time.monotonic() - started
        return result


def _bucket(result: ExecuteResult, item: OutputFile, variables: list[str], out: TaskOutput) -> None:
    """File an output under the flat list of its kind and under each of its names."""
    if item.kind == "text" or out.file_type in _TEXT_TYPES:
        text = _download_text(out.file_url)
        result.texts.append(text)
        for var in variables:
            result.texts_by_var.setdefault(var, []).append(text)
        return
    lists = {
        "image": (result.images, result.images_by_var),
        "video": (result.videos, result.videos_by_var),
        "audio": (result.audios, result.audios_by_var),
    }
    if item.kind not in lists:
        return  # 3d, latent, other: kept in files only
    flat, by_var = lists[item.kind]
    flat.append(item.url)
    for var in variables:
        by_var.setdefault(var, []).append(item.url)


def _progress(task_id: str, status: str, node_count: int, started: float) -> RunningHubProgress:
    done = status == "SUCCESS"
    return RunningHubProgress(
        prompt_id=task_id,
        node_id=None,
        value=1.0 if done else 0.0,
        max=1.0,
        overall=1.0 if done else 0.0,
        nodes_done=node_count if done else 0,
        nodes_total=node_count,
        status=status,
        elapsed=time.monotonic() - started,
    )


def _random_seeds(
    signature: dsl.Signature,
    given: Mapping[str, Any],
    workflow: Mapping[str, Any],
    prompt: Mapping[str, Any],
) -> list[NodeInfo]:
    """nodeInfoList items for the seeds :func:`dsl.apply` randomised (those it changed and no
    supplied param targets)."""
    supplied = {
        (target.node_id, target.field)
        for name in given
        if name in signature.params
        for target in signature.params[name].targets
    }
    items: list[NodeInfo] = []
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        before = workflow[node_id].get("inputs", {})
        for name in sorted(dsl.SEED_INPUTS & inputs.keys()):
            if (node_id, name) not in supplied and inputs[name] != before.get(name):
                items.append(NodeInfo(node_id, name, field_value(inputs[name])))
    return items


def _node_info(
    signature: dsl.Signature, given: Mapping[str, Any], prompt: Mapping[str, Any]
) -> list[NodeInfo]:
    """One item per target of each supplied param, with the value dsl.apply wrote."""
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
    if reason is None:
        return None
    node = workflow.get(reason.node_id or "") if reason.node_id else None
    title = None
    class_type = reason.node_name
    if isinstance(node, Mapping):
        meta = node.get("_meta")
        if isinstance(meta, Mapping) and isinstance(meta.get("title"), str):
            title = meta["title"]
        class_type = class_type or node.get("class_type")
    return NodeFailure(
        node_id=reason.node_id,
        node_type=class_type,
        title=title,
        exception_type=reason.exception_type,
        exception_message=reason.exception_message,
        traceback=reason.traceback,
        executed=(),
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

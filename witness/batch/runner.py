"""Durable batches: one workflow x many param sets, on one server or a fleet.

:func:`run_batch` records every job in a :class:`~witness.batch.journal.Journal` before and
after its submit, so the same call after a crash (SIGKILL included) finishes the batch
without losing or repeating a job:

* ``done`` jobs are skipped (event ``"skipped"``);
* every other job is first looked up by its prompt id (chosen and journaled before anything
  was submitted) in the reachable servers' queues and histories: found → re-attached
  (event ``"resumed"``), its result collected; found nowhere → submitted, with the same
  prompt id, unless the journal says a server had accepted it (``submitted``): then that
  server lost it (it restarted) and the job is ``lost`` (re-run when ``retry_lost`` > 0).

Outputs go to ``out_dir/job-NNNNN/``; ``out_dir/manifest.jsonl`` (one line per job) and
``out_dir/summary.json`` are rewritten from the journal at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from witness.backends.fleet import Fleet, FleetOptions
from witness.batch.journal import JobRecord, Journal
from witness.batch.manifest import write_json_atomic, write_manifest
from witness.batch.sources import load_jobs
from witness.config.settings import Settings
from witness.core.results import ExecuteResult
from witness.core.sources import load_workflow
from witness.errors import InvalidArgumentError, PromptLostError, TransportError, WitnessError
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

__all__ = ["BatchEngine", "BatchEvent", "BatchHandle", "BatchSummary", "run_batch"]

logger = logging.getLogger(__name__)

JOURNAL_NAME = "journal.sqlite"
MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "summary.json"
EventKind = Literal["start", "done", "resumed", "skipped"]


@dataclass(frozen=True)
class BatchEvent:
    """Progress of a batch, given to ``on_event`` (from worker threads).

    Attributes:
        kind: ``"start"`` (submitting), ``"done"``, ``"resumed"`` (re-attached after a
            crash) or ``"skipped"`` (finished in an earlier run).
        index: The job's position in the list.
        total: Jobs in the batch.
        done: Jobs finished so far (skipped ones included).
        status: For ``done`` / ``skipped``: ``completed``, ``failed``, ``interrupted``,
            ``timeout``, ``lost`` or ``error``.
        prompt_id: The job's prompt id.
        server: The server it ran on.
        files: Saved files, relative to ``out_dir``.
        error: Why it did not complete.
        duration: Seconds from submit to result.
    """

    kind: EventKind
    index: int
    total: int
    done: int
    status: str | None = None
    prompt_id: str | None = None
    server: str | None = None
    files: tuple[str, ...] = ()
    error: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of a batch (all jobs, including ones finished by earlier runs).

    Attributes:
        total: Jobs.
        completed: Jobs that completed.
        failed: Jobs that failed, were interrupted, timed out or could not be submitted.
        lost: Jobs lost with their server.
        skipped: Jobs finished by an earlier run (not rerun).
        resumed: Jobs re-attached by prompt id in this run.
        manifest_path: ``out_dir/manifest.jsonl``.
        journal_path: ``out_dir/journal.sqlite``.
        duration: Seconds this run took.
        out_dir: The output directory.
    """

    total: int
    completed: int
    failed: int
    lost: int
    skipped: int
    resumed: int
    manifest_path: Path
    journal_path: Path
    duration: float
    out_dir: Path


def run_batch(
    workflow: Any,
    jobs: Iterable[Mapping[str, Any]] | str | Path,
    *,
    out_dir: str | Path,
    target: Any = None,
    concurrency: int = 4,
    timeout: float | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    retry_lost: int = 0,
    validate: bool = True,
) -> BatchSummary:
    """Run one workflow over many param sets, durably (see the module doc).

    Args:
        workflow: Any workflow source (path, URL, dict, JSON text).
        jobs: Param mappings, or the path of a ``.jsonl`` / ``.csv`` file.
        out_dir: Where outputs, manifest, summary and journal go (created if missing). Run
            the same call again to resume.
        target: ``None`` (``COMFYUI_API_URL``), a URL, a list of URLs (a fleet), a
            ``Witness``, a :class:`~witness.backends.fleet.Fleet`, or a backend with an
            ``http`` attribute (``NativeBackend``); internally also a :class:`BatchEngine`
            marked ``batch_engine = True`` (the Ray engine).
        concurrency: Jobs in flight at once.
        timeout: Seconds per job (default: the fleet's, 600).
        on_event: Called with a :class:`BatchEvent` per job event (from worker threads).
        retry_lost: Times a job lost while running is re-run (may run it twice).
        validate: Check each job's prompt before submitting.

    Returns:
        The summary.

    Raises:
        BatchMismatchError: ``out_dir`` holds the journal of another workflow or job list.
        InvalidArgumentError: A bad argument or job file.
        WorkflowError: The workflow cannot be loaded.
    """
    started = time.monotonic()
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError("concurrency", f"must be a whole number >= 1: {concurrency!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job_list = load_jobs(jobs)
    api = load_workflow(workflow).workflow
    engine, owned = resolve_target(target)
    try:
        with Journal(out / JOURNAL_NAME) as journal:
            journal.bind(_hash(api), job_list, _hash(job_list))
            journal.new_run()
            runner = _Runner(
                engine,
                journal,
                api,
                out=out,
                timeout=timeout,
                on_event=on_event,
                retry_lost=retry_lost,
                validate=validate,
            )
            runner.run(concurrency)
            records = journal.records()
            write_manifest(out / MANIFEST_NAME, records)
    finally:
        for item in owned:
            item.close()
    summary = _summarize(records, runner, out, time.monotonic() - started)
    write_json_atomic(out / SUMMARY_NAME, asdict(summary))
    return summary


class BatchHandle(Protocol):
    """What the batch needs of a submitted job (a :class:`FleetHandle` or a Ray one)."""

    @property
    def server(self) -> str | None:
        """The server it is on."""
        ...

    def wait(self, deadline: Deadline | None = None) -> ExecuteResult:
        """Its result."""
        ...

    def cancel(self) -> Any:
        """Cancel it."""
        ...


class BatchEngine(Protocol):
    """Where a batch's jobs run: a :class:`Fleet`, or the Ray engine."""

    default_timeout: float

    def prepare(
        self, workflow: Any, params: Mapping[str, Any], deadline: Deadline, *, validate: bool
    ) -> Any:
        """The job ready to submit (nothing sent)."""
        ...

    def submit(self, prepared: Any, deadline: Deadline, options: FleetOptions) -> BatchHandle:
        """Submit it with ``options.prompt_id``."""
        ...

    def locate(
        self, prompt_id: str, deadline: Deadline, server: str | None = None
    ) -> tuple[str, str] | None:
        """``(server, "queued" | "history")`` or ``None``."""
        ...

    def attach(self, prompt_id: str, deadline: Deadline, *, server: str | None) -> BatchHandle:
        """A handle for a prompt submitted earlier."""
        ...


def resolve_target(target: Any) -> tuple[BatchEngine, list[Any]]:
    """The engine to run on, and what to close afterwards (made here)."""
    if isinstance(target, Fleet) or getattr(target, "batch_engine", False):
        return target, []
    if target is None:
        http = HttpClient(Settings.from_env())
        fleet = Fleet([http])
        return fleet, [fleet, http]
    if isinstance(target, str):
        fleet = Fleet([target])
    elif isinstance(target, list | tuple) and target:
        fleet = Fleet(list(target))
    elif isinstance(getattr(target, "http", None), HttpClient):
        fleet = Fleet([target])
    else:
        raise InvalidArgumentError(
            "target",
            "takes None, a URL, a list of URLs, a Witness, a Fleet or a backend with .http, "
            f"not {type(target).__name__}",
        )
    return fleet, [fleet]


class _Runner:
    def __init__(
        self,
        fleet: BatchEngine,
        journal: Journal,
        api: dict[str, Any],
        *,
        out: Path,
        timeout: float | None,
        on_event: Callable[[BatchEvent], None] | None,
        retry_lost: int,
        validate: bool,
    ) -> None:
        self.fleet = fleet
        self.journal = journal
        self.api = api
        self.out = out
        self.timeout = timeout
        self.on_event = on_event
        self.retry_lost = retry_lost
        self.validate = validate
        self.total = 0
        self.done = 0
        self.skipped = 0
        self.resumed = 0
        self._lock = threading.Lock()

    def run(self, concurrency: int) -> None:
        records = self.journal.records()
        self.total = len(records)
        todo = []
        for record in records:
            if record.state == "done":
                with self._lock:
                    self.skipped += 1
                self._finished(record, "skipped")
            else:
                todo.append(record)
        if not todo:
            return
        with ThreadPoolExecutor(min(concurrency, len(todo)), thread_name_prefix="batch") as pool:
            for future in [pool.submit(self._job, record) for record in todo]:
                future.result()

    # -- one job ---------------------------------------------------------------------------

    def _job(self, record: JobRecord) -> None:
        deadline = Deadline.after(self.timeout or self.fleet.default_timeout)
        began = time.monotonic()
        server = record.server
        try:
            handle = self._reattach(record, deadline)
            if handle is None:
                handle = self._submit(record, deadline)
            server = handle.server
            result = handle.wait(deadline)
            if result.status == "timeout":
                handle.cancel()
            server = handle.server
            files = self._save(record.index, result)
            self._record(
                record,
                result.status,
                server,
                files,
                None if result.ok else (result.msg or result.status),
                time.monotonic() - began,
            )
        except PromptLostError as exc:
            self._record(record, "lost", exc.server or server, (), str(exc), None)
        except WitnessError as exc:
            logger.warning("batch job %d: %s", record.index, exc)
            self._record(record, "error", server, (), f"{type(exc).__name__}: {exc}", None)

    def _reattach(self, record: JobRecord, deadline: Deadline) -> BatchHandle | None:
        """A handle for a job an earlier run submitted (or may have), else ``None``.

        A job of the first run (``runs == 1``) cannot have been submitted before; any other
        unfinished job is looked up by its prompt id first.
        """
        pid = record.prompt_id
        if record.runs <= 1 or pid is None:
            return None
        found = self.fleet.locate(pid, deadline, record.server)
        if found is not None:
            handle = self.fleet.attach(pid, deadline, server=found[0])
            self.journal.submitted(record.index, found[0])
            with self._lock:
                self.resumed += 1
            event = BatchEvent("resumed", record.index, self.total, self.done, None, pid, found[0])
            self._emit(event)
            return handle
        if record.state == "submitted" and self.retry_lost <= 0:
            raise PromptLostError(
                f"prompt {pid} was accepted by {record.server} but is in neither its queue "
                "nor its history (the server restarted?)",
                prompt_id=pid,
                server=record.server,
            )
        return None  # never arrived anywhere reachable: submit it, with the same prompt id

    def _submit(self, record: JobRecord, deadline: Deadline) -> BatchHandle:
        prepared = self.fleet.prepare(self.api, record.params, deadline, validate=self.validate)
        pid = record.prompt_id or str(uuid.uuid4())  # on disk since the journal was made
        self.journal.submitting(record.index, pid)
        self._emit(BatchEvent("start", record.index, self.total, self.done, None, pid))
        options = FleetOptions(prompt_id=pid, retry_lost=self.retry_lost)
        try:
            handle = self.fleet.submit(prepared, deadline, options)
        except TransportError:
            found = self.fleet.locate(pid, deadline, None)  # the answer was lost: did it arrive?
            if found is None:
                raise
            handle = self.fleet.attach(pid, deadline, server=found[0])
        self.journal.submitted(record.index, handle.server or "")
        return handle

    def _save(self, index: int, result: ExecuteResult) -> tuple[str, ...]:
        if not result.files:
            return ()
        folder = self.out / f"job-{index:05d}"
        paths = result.save(folder, overwrite=True)
        return tuple(str(p.relative_to(self.out)) for p in paths)

    def _record(  # noqa: PLR0917 - private
        self,
        record: JobRecord,
        status: str,
        server: str | None,
        files: tuple[str, ...],
        error: str | None,
        duration: float | None,
    ) -> None:
        self.journal.done(
            record.index, status=status, server=server, files=files, error=error, duration=duration
        )
        final = JobRecord(
            record.index,
            record.params,
            "done",
            record.prompt_id,
            server,
            status,
            files,
            error,
            duration,
            record.runs,
        )
        self._finished(final, "done")

    def _finished(self, record: JobRecord, kind: EventKind) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        self._emit(
            BatchEvent(
                kind,
                record.index,
                self.total,
                done,
                record.status,
                record.prompt_id,
                record.server,
                record.files,
                record.error,
                record.duration,
            )
        )

    def _emit(self, event: BatchEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            logger.exception("batch on_event callback raised; ignored")


def _summarize(records: list[JobRecord], runner: _Runner, out: Path, took: float) -> BatchSummary:
    statuses = [r.status for r in records]
    return BatchSummary(
        total=len(records),
        completed=statuses.count("completed"),
        failed=sum(1 for s in statuses if s not in {"completed", "lost"}),
        lost=statuses.count("lost"),
        skipped=runner.skipped,
        resumed=runner.resumed,
        manifest_path=out / MANIFEST_NAME,
        journal_path=out / JOURNAL_NAME,
        duration=took,
        out_dir=out,
    )


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()

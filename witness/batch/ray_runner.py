"""Durable batches on a Ray cluster (extra ``witness[ray]``): one actor per ComfyUI server.

:func:`run_batch_ray` takes the arguments of :func:`~witness.batch.run_batch` plus the
server URLs, and gives the same outputs, manifest, summary and typed errors. The journal,
manifest and summary stay on the driver (the process that calls it); actors do the
server work.

Why actors and not tasks: a job is a short HTTP exchange, but talking to a server well needs
state that lives longer than one job: a websocket connection (status events for the load,
execution events for completion and failover), the server's ``/object_info`` catalog and a
health breaker. A task per job would rebuild all of that per job (a websocket handshake plus a
271 ms ``/object_info`` read for a prompt that runs in 10 ms). One long-lived actor per
server keeps it, and Ray places the actors anywhere in the cluster (``ray.init()`` on a
laptop and ``ray.init(address=...)`` on a multi-node cluster are the same code path: nothing
here depends on where an actor runs; output files travel back as bytes through Ray's object
store, not through a shared disk).

Each actor holds a :class:`~witness.backends.fleet.Fleet` of every server that prefers its
own one, so capability routing and the failover rule (a not-started prompt moves once, a
running one is lost unless ``retry_lost``) work exactly as in a local batch. The driver gives
each job to the actor with the fewest jobs in flight (ties round-robin).
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from witness.backends.fleet import Fleet, FleetHandle, FleetOptions
from witness.batch.runner import BatchEvent, BatchSummary, run_batch
from witness.core.results import ExecuteResult, OutputFile
from witness.errors import ConfigError, InvalidArgumentError, WitnessError
from witness.transport.deadline import Deadline

__all__ = ["run_batch_ray"]

_FileKey = tuple[str, str, str]


def _ray() -> Any:
    try:
        import ray  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "ray", None, "run_batch_ray needs Ray: pip install 'witness[ray]'"
        ) from exc
    return ray


class ServerWorker:
    """The actor body: a fleet preferring one server (see the module doc)."""

    def __init__(self, urls: Sequence[str], own: str, settings: Mapping[str, Any]) -> None:
        self.own = own
        self.fleet = Fleet(list(urls), **settings)
        self._handles: dict[str, FleetHandle] = {}
        self._lock = threading.Lock()

    def submit(
        self,
        workflow: dict[str, Any],
        params: dict[str, Any],
        prompt_id: str,
        *,
        validate: bool,
        retry_lost: int,
        seconds: float | None,
    ) -> str | None:
        """Prepare and submit one job; returns the server that accepted it."""
        deadline = Deadline.after(seconds)
        prepared = self.fleet.prepare(workflow, params, deadline, validate=validate)
        options = FleetOptions(prompt_id=prompt_id, prefer=self.own, retry_lost=retry_lost)
        handle = self.fleet.submit(prepared, deadline, options)
        with self._lock:
            self._handles[prompt_id] = handle
        return handle.server

    def wait(
        self, prompt_id: str, server: str | None, seconds: float | None
    ) -> tuple[ExecuteResult, dict[_FileKey, bytes], str | None]:
        """Wait for a job (submitted here, or earlier by anyone); the result, its files'
        bytes, and the server it ended on."""
        deadline = Deadline.after(seconds)
        with self._lock:
            handle = self._handles.pop(prompt_id, None)
        if handle is None:
            handle = self.fleet.attach(prompt_id, deadline, server=server)
        result = handle.wait(deadline)
        if result.status == "timeout":
            handle.cancel()
        blobs: dict[_FileKey, bytes] = {}
        if result.files and result.downloader is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for number, item in enumerate(result.files):
                    path = Path(tmp) / str(number)
                    result.downloader(item, path)
                    blobs[(item.filename, item.subfolder, item.type)] = path.read_bytes()
        result.downloader = None  # a bound method of this process: not shipped
        return result, blobs, handle.server

    def locate(self, prompt_id: str, server: str | None, seconds: float | None) -> Any:
        """Where the prompt is (see :meth:`Fleet.locate`)."""
        return self.fleet.locate(prompt_id, Deadline.after(seconds), server)

    def cancel(self, prompt_id: str) -> Any:
        """Cancel a prompt."""
        return self.fleet.cancel(prompt_id)

    def close(self) -> None:
        """Close the fleet."""
        self.fleet.close()


@dataclass(frozen=True)
class _Job:
    workflow: dict[str, Any]
    params: dict[str, Any]
    validate: bool


class _RayHandle:
    def __init__(self, engine: _RayEngine, actor: int, prompt_id: str, server: str | None):
        self._engine = engine
        self._actor = actor
        self.prompt_id = prompt_id
        self._server = server

    @property
    def server(self) -> str | None:
        return self._server

    def wait(self, deadline: Deadline | None = None) -> ExecuteResult:
        left = deadline.remaining() if deadline is not None else None
        try:
            result, blobs, server = self._engine.call(
                self._actor, "wait", self.prompt_id, self._server, left
            )
        finally:
            self._engine.release(self._actor)
        self._server = server
        result.downloader = _BlobDownloader(blobs)
        return result  # type: ignore[no-any-return]

    def cancel(self) -> Any:
        return self._engine.call(self._actor, "cancel", self.prompt_id)


class _BlobDownloader:
    """Writes a file the actor sent back (the result's ``save`` calls it)."""

    def __init__(self, blobs: Mapping[_FileKey, bytes]) -> None:
        self._blobs = blobs

    def __call__(self, item: OutputFile, destination: Path) -> int:
        data = self._blobs.get((item.filename, item.subfolder, item.type))
        if data is None:
            raise WitnessError(f"output file {item.filename!r} did not come back from the actor")
        destination.write_bytes(data)
        return len(data)


class _RayEngine:
    """The :class:`~witness.batch.runner.BatchEngine` over the actors."""

    batch_engine = True

    def __init__(
        self, ray: Any, urls: Sequence[str], settings: Mapping[str, Any], concurrency: int
    ) -> None:
        self.ray = ray
        self.default_timeout = float(settings.get("timeout", 600.0))
        remote = ray.remote(num_cpus=0, max_concurrency=max(2, concurrency + 2))(ServerWorker)
        self.urls = [u.rstrip("/") for u in urls]
        self.actors = [remote.remote(self.urls, url, dict(settings)) for url in self.urls]
        self._busy = [0] * len(self.actors)
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.get(actor.close.remote())
            finally:
                self.ray.kill(actor)

    def call(self, index: int, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an actor method and return its value; a typed witness error raised there is
        raised here as itself."""
        ref = getattr(self.actors[index], method).remote(*args, **kwargs)
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause if hasattr(exc, "cause") else None
            if isinstance(cause, WitnessError):
                raise cause from None
            raise

    def _pick(self, server: str | None = None) -> int:
        with self._lock:
            if server is not None and server.rstrip("/") in self.urls:
                index = self.urls.index(server.rstrip("/"))
            else:
                best = min(self._busy)
                tied = [i for i, busy in enumerate(self._busy) if busy == best]
                index = tied[next(self._turn) % len(tied)]
            self._busy[index] += 1
            return index

    def release(self, index: int) -> None:
        with self._lock:
            self._busy[index] -= 1

    # -- BatchEngine -----------------------------------------------------------------------

    def prepare(
        self, workflow: Any, params: Mapping[str, Any], deadline: Deadline, *, validate: bool
    ) -> _Job:
        return _Job(dict(workflow), dict(params), validate)

    def submit(self, prepared: _Job, deadline: Deadline, options: FleetOptions) -> _RayHandle:
        if options.prompt_id is None:
            raise InvalidArgumentError("options", "the Ray engine needs a prompt id")
        index = self._pick()
        try:
            server = self.call(
                index,
                "submit",
                prepared.workflow,
                prepared.params,
                options.prompt_id,
                validate=prepared.validate,
                retry_lost=options.retry_lost or 0,
                seconds=deadline.remaining(),
            )
        except BaseException:
            self.release(index)
            raise
        return _RayHandle(self, index, options.prompt_id, server)

    def locate(
        self, prompt_id: str, deadline: Deadline, server: str | None = None
    ) -> tuple[str, str] | None:
        found = self.call(0, "locate", prompt_id, server, deadline.remaining())
        return tuple(found) if found is not None else None

    def attach(self, prompt_id: str, deadline: Deadline, *, server: str | None) -> _RayHandle:
        return _RayHandle(self, self._pick(server), prompt_id, server)


def run_batch_ray(
    workflow: Any,
    jobs: Iterable[Mapping[str, Any]] | str | Path,
    *,
    servers: Sequence[str],
    out_dir: str | Path,
    concurrency: int = 4,
    timeout: float | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    retry_lost: int = 0,
    validate: bool = True,
    **settings: Any,
) -> BatchSummary:
    """:func:`~witness.batch.run_batch` with one Ray actor per server (see the module doc).

    Ray must be initialised by the caller (``ray.init()`` locally, or with a cluster
    address); the journal, outputs and manifest are written where this function runs.

    Args:
        workflow: Any workflow source.
        jobs: Param mappings, or a ``.jsonl`` / ``.csv`` path.
        servers: The ComfyUI server URLs (the actors must be able to reach them).
        out_dir: Outputs, manifest, summary and journal (on the driver).
        concurrency: Jobs in flight at once (over all actors).
        timeout: Seconds per job.
        on_event: Called with each :class:`~witness.batch.BatchEvent`.
        retry_lost: Times a job lost while running is re-run.
        validate: Check each prompt before submitting.
        **settings: :class:`~witness.backends.fleet.Fleet` keywords for the actors' fleets
            (``timeout``, ``max_concurrent``, Settings fields...).

    Raises:
        ConfigError: Ray is not installed.
        InvalidArgumentError: No servers, or ``ray.init()`` was not called.
        BatchMismatchError: ``out_dir`` holds another batch's journal.
    """
    ray = _ray()
    urls = [servers] if isinstance(servers, str) else list(servers)
    if not urls:
        raise InvalidArgumentError("servers", "needs at least one server URL")
    if not ray.is_initialized():
        raise InvalidArgumentError("ray", "call ray.init() (or ray.init(address=...)) first")
    engine = _RayEngine(ray, urls, settings, concurrency)
    try:
        return run_batch(
            workflow, jobs, out_dir=out_dir, target=engine, concurrency=concurrency,
            timeout=timeout, on_event=on_event, retry_lost=retry_lost, validate=validate,
        )  # fmt: skip
    finally:
        engine.close()

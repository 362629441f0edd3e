"""A fleet of ComfyUI servers behind the one :class:`~witness.backends.base.Backend` protocol.

Use it alone (``fleet.execute(workflow, params)``, ``fleet.submit(...)`` /
``fleet.wait(prompt_id)`` / ``fleet.cancel(prompt_id)``) or as ``Witness(backend=fleet)``;
either way a run ends in the same :class:`~witness.core.results.ExecuteResult` as on one server.

Routing (see :mod:`.routing`): only servers that have every node class and combo value (model
file) the prompt names; among them the least busy (queue depth from websocket ``status``
events plus this fleet's submits in flight, over the server's weight), ties round-robin,
never above a server's ``max_concurrent``. No server able → :class:`NoCapableServerError`
naming what each lacks, before anything is submitted.

Health (see :mod:`.health`): a server that fails a request or drops its websocket is marked
down and gets nothing; a background thread probes it with backoff until it answers.

**Failover rule** (a prompt is never run twice). The prompt id is made client-side and
stays the same on every server. When the server of a waiting prompt goes away:

* the prompt had **not started** there (no ``execution_start`` came for it) and either the
  server answered that it has it nowhere (restarted: neither queue nor history), or the
  server is unreachable and its websocket delivered every event since the submit (no
  reconnect in between, so a start cannot have been missed) → it is resubmitted, with the same
  id, to another capable server, at most ``max_moves`` times (default once). The id is
  remembered: when the old server answers again, before it gets new work, the id is deleted
  from its queue if still pending (a server that was only unreachable), and its history is
  checked (found there: logged as an error).
* it **had started** (or a reconnect gap leaves it unknown) → :class:`PromptLostError` naming
  the server and id, unless ``retry_lost`` allows re-running it elsewhere (that may run it
  twice: the caller asked for it).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from witness.api_clients.types import CancelOutcome, CancelResult
from witness.api_clients.websocket_client import PromptEvents
from witness.backends.base import (
    BackendOptions,
    MediaUploader,
    PreparedWorkflow,
    WaitCallbacks,
)
from witness.backends.fleet.member import Member
from witness.backends.fleet.routing import RoundRobin, lacking, merge_object_info
from witness.backends.fleet.stats import ServerStats
from witness.backends.native import NativeBackend
from witness.config.settings import Settings
from witness.core import dsl
from witness.core.results import ExecuteResult
from witness.core.sources import load_workflow
from witness.core.tracking import PreviewCallback, ProgressCallback, WaitOutcome
from witness.core.uploads import MediaResolver
from witness.core.validate import NodeCatalog, raise_for_problems, validate_prompt
from witness.errors import (
    InvalidArgumentError,
    NoCapableServerError,
    PromptLostError,
    TransportError,
    UploadError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

__all__ = ["Fleet", "FleetHandle", "FleetOptions"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0
WAIT_SLICE = 1.0  # seconds between health checks of a waiting prompt's server
HEALTH_TICK = 0.2  # the health thread's granularity
START_TIMEOUT = 10.0  # connecting to every server at construction


@dataclass(frozen=True)
class FleetOptions(BackendOptions):
    """Options only the fleet understands (``Witness.execute(..., options=FleetOptions())``).

    Attributes:
        prompt_id: The prompt id to use (a canonical lowercase UUID; made here if ``None``):
            a batch records it before submitting, to re-attach after a crash.
        extra_data: Extra ``extra_data`` for ``POST /prompt``.
        prefer: A server URL to place the prompt on when it is up, capable and has room
            (load is then ignored; failover may still move it).
        retry_lost: Re-run a prompt lost while running this many times (default: the
            fleet's).
    """

    prompt_id: str | None = None
    extra_data: Mapping[str, Any] | None = None
    prefer: str | None = None
    retry_lost: int | None = None


class Fleet:
    """Several ComfyUI servers as one backend (see the module doc for routing and failover).

    Args:
        servers: Server URLs, :class:`~witness.backends.native.NativeBackend` s,
            :class:`~witness.transport.http.HttpClient` s or objects with an ``http``
            attribute (a ``Witness``); at least one.
        weights: Relative capacity per server (same order), default all 1.0.
        max_concurrent: Per-server cap on this fleet's prompts queued or running there: one
            int for all, or a sequence (``None`` entries: no cap).
        retry_lost: Times a prompt lost while running is re-run elsewhere (default 0: reported
            as :class:`PromptLostError`).
        max_moves: Times a not-yet-started prompt is moved off a dead server (default 1).
        timeout: Default seconds of :meth:`execute` and of a handle's wait.
        validate: Check prompts against the fleet's node definitions before submitting
            (:meth:`execute` / :meth:`submit` of a workflow).
        **settings: :class:`~witness.config.settings.Settings` fields for servers given as
            URLs (``read_timeout``, ``headers``...); nothing is read from the environment.

    Attributes:
        members: The servers, in the order given.
    """

    name = "fleet"

    def __init__(
        self,
        servers: Iterable[Any],
        *,
        weights: Sequence[float] | None = None,
        max_concurrent: int | Sequence[int | None] | None = None,
        retry_lost: int = 0,
        max_moves: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
        validate: bool = True,
        **settings: Any,
    ) -> None:
        given = list(servers) if not isinstance(servers, str) else [servers]
        if not given:
            raise InvalidArgumentError("servers", "a fleet needs at least one server")
        weights = list(weights) if weights is not None else [1.0] * len(given)
        caps = _caps(max_concurrent, len(given))
        if len(weights) != len(given):
            raise InvalidArgumentError("weights", f"needs {len(given)} values, got {len(weights)}")
        _check_count("retry_lost", retry_lost)
        _check_count("max_moves", max_moves)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidArgumentError("timeout", f"must be a positive number, got {timeout!r}")
        self.retry_lost = retry_lost
        self.max_moves = max_moves
        self.default_timeout = float(timeout)
        self.validate_by_default = validate
        self._owned: list[NativeBackend] = []
        self.members = [
            Member(self._backend_of(server, settings), weight=weight, max_concurrent=cap)
            for server, weight, cap in zip(given, weights, caps, strict=True)
        ]
        urls = [m.url for m in self.members]
        if len(set(urls)) != len(urls):
            raise InvalidArgumentError("servers", f"the same server twice: {urls}")
        self._chooser = RoundRobin()
        self._changed = threading.Condition(threading.Lock())
        self._handles: dict[str, FleetHandle] = {}
        self._handles_lock = threading.Lock()
        self._merged: tuple[tuple[int, ...], NodeCatalog, dict[str, Any]] | None = None
        self._closed = threading.Event()
        for member in self.members:
            member.on_change = self._poke
        deadline = Deadline.after(START_TIMEOUT)
        with ThreadPoolExecutor(len(self.members)) as pool:
            list(pool.map(lambda m: m.start(deadline), self.members))
        self._health = threading.Thread(target=self._health_loop, name="fleet-health", daemon=True)
        self._health.start()

    def _backend_of(self, server: Any, settings: Mapping[str, Any]) -> NativeBackend:
        if isinstance(server, NativeBackend):
            return server
        http = server if isinstance(server, HttpClient) else getattr(server, "http", None)
        if isinstance(http, HttpClient):
            # Not ours to close: the http belongs to the caller (the backend is closed as
            # a shell only: its websocket).
            return NativeBackend(http)
        if isinstance(server, str) and server.strip():
            backend = NativeBackend(HttpClient(Settings(api_url=server, **settings)))
            self._owned.append(backend)
            return backend
        raise InvalidArgumentError(
            "servers",
            f"takes URLs, NativeBackends, HttpClients or objects with .http, not {server!r}",
        )

    def __repr__(self) -> str:
        return f"Fleet({[m.url for m in self.members]!r})"

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the health thread, close websockets and the HTTP clients made here."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._poke()
        self._health.join(timeout=5.0)
        for member in self.members:
            member.close()
            if member.backend in self._owned:
                member.backend.close()
            else:
                member.ws.close()  # the websocket the fleet opened; the caller's http stays

    # -- statistics ------------------------------------------------------------------------

    def stats(self) -> dict[str, ServerStats]:
        """Per-server counters now (server URL → :class:`ServerStats`)."""
        return {m.url: m.snapshot() for m in self.members}

    def member(self, url: str) -> Member:
        """The member for a server URL."""
        for member in self.members:
            if member.url == url.rstrip("/"):
                return member
        raise InvalidArgumentError("server", f"{url!r} is not in this fleet")

    # -- the Backend protocol --------------------------------------------------------------

    def catalog(self, deadline: Deadline) -> NodeCatalog | None:
        """Node definitions united over the servers (classes of any server, combo choices of
        all): a prompt valid here runs on at least one server once routed."""
        infos = []
        for member in self.members:
            member.catalog(deadline)
            info = member.object_info()
            if info is not None:
                infos.append(info)
        if not infos:
            return None
        key = tuple(id(i) for i in infos)
        merged = self._merged
        if merged is None or merged[0] != key:
            union = merge_object_info(infos)
            merged = (key, NodeCatalog(union), union)
            self._merged = merged
        return merged[1]

    def refresh_catalog(self, class_types: Any, deadline: Deadline) -> NodeCatalog | None:
        """Read every reachable server's ``/object_info`` again, then :meth:`catalog`."""
        for member in self.members:
            if member.breaker.up:
                try:
                    member.refresh_info(deadline)
                except TransportError as exc:
                    member.failed(exc)
        return self.catalog(deadline)

    def uploader(self, deadline: Deadline) -> MediaUploader:
        """Uploads each media value to every server that is up (the prompt may land on any
        of them); the servers must agree on the stored name."""
        return _FleetUploader([m for m in self.members if m.breaker.up])

    def submit(
        self,
        prepared: PreparedWorkflow | Any,
        deadline: Deadline | Mapping[str, Any] | None = None,
        options: BackendOptions | None = None,
        **kwargs: Any,
    ) -> FleetHandle:
        """Submit to the best capable server; returns its handle.

        Two forms: the backend form ``submit(prepared, deadline, options)`` (what the
        pipeline calls), and the standalone form ``submit(workflow, params,
        FleetOptions(...), timeout=, validate=, allow_unknown=, randomize_seeds=)`` (the
        workflow is loaded, params applied and validated first).

        Raises:
            NoCapableServerError: No server has what the prompt needs (nothing submitted),
                or every capable one stayed down or full until the deadline.
            InvalidArgumentError: ``options`` of another backend.
            PromptValidationError: The chosen server refused the prompt.
            TransportError: The submit may have reached the server but no answer came.
        """
        if not isinstance(prepared, PreparedWorkflow):
            if deadline is not None and not isinstance(deadline, Mapping):
                raise InvalidArgumentError("params", "must be a mapping of DSL param values")
            timeout = kwargs.pop("timeout", None)
            limit = Deadline.after(self.default_timeout if timeout is None else timeout)
            return self._submit_workflow(
                prepared, deadline, _fleet_options(options), limit, **kwargs
            )
        if not isinstance(deadline, Deadline):
            raise InvalidArgumentError("deadline", "the backend form takes a Deadline")
        if kwargs:
            raise InvalidArgumentError(next(iter(kwargs)), "not an argument of the backend form")
        opts = _fleet_options(options)
        prompt_id = opts.prompt_id or str(uuid.uuid4())
        retry_lost = self.retry_lost if opts.retry_lost is None else opts.retry_lost
        _check_count("retry_lost", retry_lost)
        handle = FleetHandle(self, prompt_id, prepared, deadline, opts, retry_lost=retry_lost)
        handle.place(deadline, exclude=(), prefer=opts.prefer)
        with self._handles_lock:
            self._handles[prompt_id] = handle
        return handle

    def attach(
        self, prompt_id: str, deadline: Deadline, *, server: str | None = None
    ) -> FleetHandle:
        """A handle for a prompt submitted earlier (a crashed batch re-attaching).

        Args:
            prompt_id: The prompt.
            deadline: For finding it.
            server: The server it was sent to, when known (else every server is asked).

        Raises:
            PromptLostError: No reachable server has it queued or in its history.
        """
        with self._handles_lock:
            known = self._handles.get(prompt_id)
        if known is not None:
            return known
        member = self._find(prompt_id, deadline, server)
        if member is None:
            raise PromptLostError(
                f"prompt {prompt_id} is queued on no reachable server of the fleet and in no "
                "history",
                prompt_id=prompt_id,
                server=server,
            )
        prepared = PreparedWorkflow(prompt={}, signature=dsl.Signature(params={}, outputs=()))
        handle = FleetHandle(self, prompt_id, prepared, deadline, FleetOptions(), retry_lost=0)
        handle.adopt(member)
        with self._handles_lock:
            self._handles[prompt_id] = handle
        return handle

    def locate(
        self, prompt_id: str, deadline: Deadline, server: str | None = None
    ) -> tuple[str, str] | None:
        """Where a prompt is: ``(server, "queued" | "history")`` or ``None`` (nowhere
        reachable). Used to reconcile a submit whose answer never came."""
        for member in self._search_order(server):
            if not member.breaker.up:
                continue
            try:
                with deadline.scope():
                    if member.queue.get().find(prompt_id) is not None:
                        return member.url, "queued"
                    if member.history.get(prompt_id) is not None:
                        return member.url, "history"
            except TransportError as exc:
                member.failed(exc)
        return None

    def cancel(self, prompt_id: str) -> CancelResult:
        """Cancel a prompt of this fleet (dequeue if pending, interrupt if running)."""
        with self._handles_lock:
            handle = self._handles.get(prompt_id)
        if handle is not None:
            return handle.cancel()
        member = self._find(prompt_id, Deadline.after(10.0), None)
        if member is None:
            return CancelResult(prompt_id, CancelOutcome.NOT_FOUND, "queue_api")
        return member.tracker.cancel(prompt_id)

    # -- standalone use --------------------------------------------------------------------

    def execute(
        self,
        workflow: Any,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        prompt_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        validate: bool | None = None,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
        extra_data: Mapping[str, Any] | None = None,
        prefer: str | None = None,
        retry_lost: int | None = None,
    ) -> ExecuteResult:
        """Run a workflow with params on the best server and wait for its result.

        Args:
            workflow: Path, URL, dict or JSON text (API or UI format).
            params: DSL param name → value.
            timeout: Seconds for the whole call (default: the fleet's).
            prompt_id: The prompt id to use (made here if ``None``).
            on_progress: Progress updates.
            on_preview: Preview images.
            validate: Check before submitting (default: the fleet's setting).
            allow_unknown: Ignore params the workflow does not declare.
            randomize_seeds: Random seeds where the caller set none.
            extra_data: Extra ``extra_data`` for ``POST /prompt``.
            prefer: A server to place it on when possible.
            retry_lost: Override the fleet's ``retry_lost``.

        Returns:
            The result (``"timeout"`` status when the deadline passed; the prompt is then
            cancelled).

        Raises:
            NoCapableServerError: No server can run it (nothing submitted).
            PromptLostError: It was running on a server that died (names server and id).
        """
        deadline = Deadline.after(self.default_timeout if timeout is None else timeout)
        opts = FleetOptions(prompt_id, extra_data, prefer, retry_lost)
        handle = self._submit_workflow(
            workflow,
            params,
            opts,
            deadline,
            validate=validate,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
        )
        try:
            result = handle.wait(deadline, WaitCallbacks(on_progress, on_preview))
            if result.status == "timeout":
                handle.cancel()
            return result
        finally:
            handle.release()

    def wait(self, prompt_id: str, timeout: float | None = None) -> ExecuteResult:
        """Wait for a prompt of this fleet (or, re-attaching, one submitted by anyone)."""
        deadline = Deadline.after(self.default_timeout if timeout is None else timeout)
        return self.attach(prompt_id, deadline).wait(deadline)

    def _submit_workflow(
        self,
        workflow: Any,
        params: Mapping[str, Any] | None,
        options: FleetOptions,
        deadline: Deadline,
        *,
        validate: bool | None = None,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
    ) -> FleetHandle:
        prepared = self.prepare(
            workflow,
            params,
            deadline,
            validate=self.validate_by_default if validate is None else validate,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
        )
        return self.submit(prepared, deadline, options)

    def prepare(
        self,
        workflow: Any,
        params: Mapping[str, Any] | None,
        deadline: Deadline,
        *,
        validate: bool = True,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
    ) -> PreparedWorkflow:
        """Load, (convert), apply params and validate against the fleet's catalog.

        Validation comes before any media upload.

        Raises:
            WorkflowError: The workflow cannot be loaded or the params do not fit it.
            WorkflowValidationError: No server of the fleet would accept the prompt.
        """
        loaded = load_workflow(workflow)
        if loaded.runninghub_id is not None:
            raise InvalidArgumentError("workflow", "a fleet runs ComfyUI workflows, not RunningHub")
        api = loaded.workflow
        catalog = self.catalog(deadline)
        if loaded.format == "ui":
            from witness.core.ui_convert import ui_to_api  # noqa: PLC0415

            api = ui_to_api(api, dict(self._merged[2]) if self._merged else {})
        signature = dsl.parse(api)
        prompt = dsl.apply(
            api, signature, params, allow_unknown=allow_unknown, randomize_seeds=randomize_seeds
        )
        if validate and catalog is not None:
            raise_for_problems(validate_prompt(prompt, catalog), prompt)
        given = params or {}
        if any(p.upload and name in given for name, p in signature.params.items()):
            prompt = dsl.apply(
                api,
                signature,
                params,
                allow_unknown=allow_unknown,
                randomize_seeds=randomize_seeds,
                resolve_media=self.uploader(deadline),
            )
        return PreparedWorkflow(
            prompt=prompt, signature=signature, origin=loaded.origin, params=dict(params or {})
        )

    # -- routing ---------------------------------------------------------------------------

    def route(
        self,
        prompt: Mapping[str, Any],
        deadline: Deadline,
        *,
        exclude: Iterable[str] = (),
        prefer: str | None = None,
    ) -> Member:
        """The server for a prompt (see the module doc); waits while every capable server is
        down or at its cap, until the deadline.

        Raises:
            NoCapableServerError: None has what the prompt needs, or none came up / had room
                before the deadline.
        """
        skipped = set(exclude)
        while True:
            lacks: dict[str, tuple[str, ...]] = {}
            capable: list[Member] = []
            for member in self.members:
                if member.url in skipped:
                    lacks[member.url] = ("already tried for this prompt",)
                    continue
                catalog = member.catalog(deadline)
                missing = lacking(prompt, catalog) if catalog is not None else ("/object_info",)
                if missing:
                    lacks[member.url] = missing
                else:
                    capable.append(member)
            if not capable:
                raise NoCapableServerError(_lacks_message(lacks), lacks=lacks)
            ready = [m for m in capable if m.breaker.up and m.has_room()]
            if ready:
                for member in ready:
                    if prefer is not None and member.url == prefer.rstrip("/"):
                        return member
                return ready[self._chooser.choose(ready)]
            for member in capable:
                lacks[member.url] = (
                    (f"down ({member.breaker.last_error})",)
                    if not member.breaker.up
                    else (f"at its concurrency cap of {member.max_concurrent}",)
                )
            left = deadline.remaining()
            if left is not None and left <= 0:
                raise NoCapableServerError(_lacks_message(lacks), lacks=lacks)
            with self._changed:
                self._changed.wait(min(HEALTH_TICK, left) if left is not None else HEALTH_TICK)

    def _search_order(self, server: str | None) -> list[Member]:
        first = [m for m in self.members if server is not None and m.url == server.rstrip("/")]
        return first + [m for m in self.members if m not in first]

    def _find(self, prompt_id: str, deadline: Deadline, server: str | None) -> Member | None:
        found = self.locate(prompt_id, deadline, server)
        return self.member(found[0]) if found is not None else None

    def _forget(self, prompt_id: str) -> None:
        with self._handles_lock:
            self._handles.pop(prompt_id, None)

    # -- health ----------------------------------------------------------------------------

    def _poke(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _health_loop(self) -> None:
        while not self._closed.is_set():
            for member in self.members:
                if self._closed.is_set():
                    return
                if member.breaker.probe_due():
                    member.probe()
            self._closed.wait(HEALTH_TICK)


class FleetHandle:
    """A prompt on a fleet: wait (failing over by the module's rule), cancel, done.

    Attributes:
        prompt_id: The prompt id (the same on every server it is placed on).
        server: The server it is on now.
        servers: Every server it was placed on, in order.
    """

    def __init__(
        self,
        fleet: Fleet,
        prompt_id: str,
        prepared: PreparedWorkflow,
        deadline: Deadline,
        options: FleetOptions,
        *,
        retry_lost: int,
    ) -> None:
        self._fleet = fleet
        self.prompt_id = prompt_id
        self._prepared = prepared
        self._deadline = deadline
        self._options = options
        self._lost_budget = retry_lost
        self._moves = 0
        self._member: Member | None = None
        self._stream: PromptEvents | None = None
        self._epoch = 0
        self.servers: list[str] = []
        self._started = time.monotonic()
        self._result: ExecuteResult | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        where = f"on {self.server}" if self.server else "unplaced"
        status = self._result.status if self._result else "waiting"
        return f"<FleetHandle {self.prompt_id} {where}: {status}>"

    @property
    def server(self) -> str | None:
        """The server the prompt is on now."""
        return self._member.url if self._member is not None else None

    # -- placement -------------------------------------------------------------------------

    def place(self, deadline: Deadline, *, exclude: Iterable[str], prefer: str | None) -> None:
        """Submit to a routed server; a server that certainly never got it is skipped."""
        tried = set(exclude)
        while True:
            member = self._fleet.route(
                self._prepared.prompt, deadline, exclude=tried, prefer=prefer
            )
            stream = member.track(self.prompt_id, deadline)
            epoch = member.epoch
            try:
                member.submit(
                    self._prepared.prompt,
                    self.prompt_id,
                    deadline,
                    extra_data=self._options.extra_data,
                )
            except TransportError as exc:
                if stream is not None:
                    stream.close()
                if not Member.not_sent(exc):
                    raise
                logger.info("%s unreachable at submit (%s); routing again", member.url, exc)
                tried.add(member.url)
                continue
            except BaseException:
                if stream is not None:
                    stream.close()
                raise
            self._member, self._stream, self._epoch = member, stream, epoch
            self.servers.append(member.url)
            logger.info("prompt %s placed on %s", self.prompt_id, member.url)
            return

    def adopt(self, member: Member) -> None:
        """Wait on a prompt that is already on ``member`` (re-attach)."""
        member.adopt(self.prompt_id)
        self._member, self._stream, self._epoch = member, None, -1
        self.servers.append(member.url)

    # -- the RunHandle protocol ------------------------------------------------------------

    def wait(
        self, deadline: Deadline | None = None, callbacks: WaitCallbacks | None = None
    ) -> ExecuteResult:
        """Block until the prompt ends (on whichever server it ends up) or the deadline passes.

        Returns:
            The result; status ``"timeout"`` when the deadline passed (the prompt goes on).

        Raises:
            PromptLostError: It was running when its server died (``server`` names it) and
                ``retry_lost`` was used up, or it could not be moved.
            NoCapableServerError: It had to move and no other server could take it.
        """
        with self._lock:
            if self._result is not None and self._result.status != "timeout":
                return self._result
            limit = deadline or self._deadline
            cb = callbacks or WaitCallbacks()
            while True:
                member = self._member
                if member is None:
                    raise PromptLostError(
                        f"prompt {self.prompt_id} was never placed", prompt_id=self.prompt_id
                    )
                now = time.monotonic()
                until = now + WAIT_SLICE if limit.at is None else min(limit.at, now + WAIT_SLICE)
                try:
                    outcome = member.wait_slice(
                        self.prompt_id,
                        until,
                        self._stream,
                        node_count=len(self._prepared.prompt),
                        on_progress=cb.on_progress,
                        on_preview=cb.on_preview,
                    )
                except PromptLostError:
                    self._recover(member, limit, answered=True)
                    continue
                except TransportError:
                    if limit.expired():
                        raise
                    if not member.breaker.up:
                        self._recover(member, limit, answered=False)
                    continue
                if outcome.status == "timeout":
                    if limit.expired():
                        return self._finish(member, outcome, final=False)
                    if not member.breaker.up:
                        self._recover(member, limit, answered=False)
                    continue
                return self._finish(member, outcome, final=True)

    def _finish(self, member: Member, outcome: WaitOutcome, *, final: bool) -> ExecuteResult:
        # a re-attached prompt (no graph here) takes graph and names from the stored entry
        prompt = self._prepared.prompt or None
        signature = self._prepared.signature if prompt else None
        result = member.backend.assembler(self.prompt_id, outcome, signature, prompt, self._started)
        self._result = result
        if final:
            member.ended(self.prompt_id, result)
            self.release()
            self._fleet._forget(self.prompt_id)
        return result

    def _recover(self, member: Member, deadline: Deadline, *, answered: bool) -> None:
        """The server went away (or forgot the prompt): move it, or report it lost."""
        pid = self.prompt_id
        gap = not answered and member.epoch != self._epoch
        if member.started(pid) or gap:
            member.counters.add_lost()
            member.ended(pid, None)
            self.release()
            if self._lost_budget <= 0:
                self._fleet._forget(pid)
                why = "was running" if not gap else "may have been running"
                raise PromptLostError(
                    f"prompt {pid} {why} on {member.url} when the server went away",
                    prompt_id=pid,
                    server=member.url,
                )
            self._lost_budget -= 1
            logger.warning("prompt %s lost on %s; running it again (retry_lost)", pid, member.url)
        else:
            if self._moves >= self._fleet.max_moves:
                member.ended(pid, None)
                self._fleet._forget(pid)
                raise PromptLostError(
                    f"prompt {pid} was pending on {member.url} when it went away, and has "
                    f"already been moved {self._moves} times",
                    prompt_id=pid,
                    server=member.url,
                )
            self._moves += 1
            member.counters.add_moved()
            member.ended(pid, None)
            self.release()
            if not answered:
                member.orphans.add(pid)
            logger.warning("prompt %s had not started on %s; moving it", pid, member.url)
        self._member = None
        self.place(deadline, exclude=self.servers, prefer=None)

    def cancel(self) -> CancelResult:
        """Cancel it on its server (dequeue if pending, interrupt if running)."""
        member = self._member
        if member is None:
            return CancelResult(self.prompt_id, CancelOutcome.NOT_FOUND, "queue_api")
        return member.tracker.cancel(self.prompt_id)

    def done(self) -> bool:
        """Whether it has ended (one ``GET /history/{prompt_id}`` when unknown)."""
        if self._result is not None and self._result.status != "timeout":
            return True
        member = self._member
        if member is None:
            return False
        try:
            return member.history.get(self.prompt_id) is not None
        except TransportError:
            return False

    def release(self) -> None:
        """Stop buffering its websocket events (a later wait polls)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


class _FleetUploader:
    """Uploads a media value to every given server (one resolver each)."""

    def __init__(self, members: Sequence[Member]) -> None:
        self._resolvers = [(m.url, MediaResolver(m.files)) for m in members]

    def __call__(self, param: dsl.Param, target: dsl.ParamTarget, value: Any) -> Any:
        names = {url: resolver(param, target, value) for url, resolver in self._resolvers}
        distinct = set(names.values())
        if len(distinct) > 1:
            raise UploadError(
                f"media param {param.name!r}: the servers stored it under different names "
                f"({names}); give a server-side name the servers share",
                param=param.name,
            )
        if not distinct:
            raise UploadError(f"media param {param.name!r}: no server is up", param=param.name)
        return distinct.pop()


def _fleet_options(options: BackendOptions | None) -> FleetOptions:
    if options is None:
        return FleetOptions()
    if not isinstance(options, FleetOptions):
        raise InvalidArgumentError(
            "options", f"the fleet takes FleetOptions, not {type(options).__name__}"
        )
    return options


def _caps(value: int | Sequence[int | None] | None, count: int) -> list[int | None]:
    if value is None or isinstance(value, int):
        return [value] * count
    caps = list(value)
    if len(caps) != count:
        raise InvalidArgumentError("max_concurrent", f"needs {count} values, got {len(caps)}")
    return caps


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(name, f"must be a whole number >= 0, got {value!r}")


def _lacks_message(lacks: Mapping[str, tuple[str, ...]]) -> str:
    parts = [f"{url} lacks {', '.join(items)}" for url, items in lacks.items()]
    return "no server of the fleet can run this prompt: " + "; ".join(parts)

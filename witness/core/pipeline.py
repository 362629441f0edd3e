"""The execution pipeline: one ``execute()`` as a row of small stages over one deadline.

::

    load → convert (UI format only) → dsl → validate → upload → submit → wait (→ assemble)

Each stage is a plain function taking the call's :class:`~witness.transport.deadline.Deadline`
and runs inside :func:`stage`, which turns a transport timeout caused by the deadline into a
:class:`~witness.errors.WitnessTimeoutError` naming the stage. Validation comes before any
upload: media params are first written as placeholders (:class:`PendingMedia`), the prompt is
validated with those inputs skipped, and only then are the media uploaded through the
backend's uploader and their server-side names written in. Assembly is the backend handle's
last step (each backend turns its own answer into the one
:class:`~witness.core.results.ExecuteResult`).

Nothing here knows HTTP routes: the backend (:mod:`witness.backends`) reaches the server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from witness.backends.base import (
    Backend,
    BackendOptions,
    MediaUploader,
    PreparedWorkflow,
    RunHandle,
    WaitCallbacks,
)
from witness.core import dsl
from witness.core.catalog import CatalogService
from witness.core.results import ExecuteResult
from witness.core.signatures import signature_of
from witness.core.sources import LoadedWorkflow, load_workflow
from witness.core.validate import Problem, raise_for_problems, validate_prompt
from witness.errors import (
    InvalidArgumentError,
    RequestTimeoutError,
    TransportError,
    WaitTimeoutError,
    WitnessError,
    WitnessTimeoutError,
)
from witness.transport.deadline import Deadline

__all__ = [
    "STALE_KINDS",
    "PendingMedia",
    "check",
    "convert",
    "load",
    "prepare",
    "run",
    "stage",
]

logger = logging.getLogger(__name__)

#: Problems that a stale ``/object_info`` cache can cause; their classes are refetched first.
STALE_KINDS = frozenset({"value_not_in_list", "missing_node_type"})
_PLACEHOLDER = "\x00witness-pending-upload-{}"


@contextmanager
def stage(deadline: Deadline, name: str) -> Iterator[None]:
    """Run one stage under ``deadline``: refuse to start when it has passed, and turn a
    timeout that the deadline caused into :class:`WitnessTimeoutError` naming ``name``."""
    deadline.check(name)
    with deadline.scope():
        try:
            yield
        except WitnessTimeoutError:
            raise
        except (RequestTimeoutError, WaitTimeoutError) as exc:
            # A timeout the deadline caused names the stage; an unreachable server stays a
            # ServerUnavailableError (the cause is the server, not the clock).
            if deadline.expired():
                raise deadline.error(name, type(exc).__name__) from exc
            raise


# -- load / convert ----------------------------------------------------------------------------


def load(source: Any, deadline: Deadline) -> LoadedWorkflow:
    """Stage *load*: any source → a workflow dict and its format (see :mod:`sources`)."""
    with stage(deadline, "load"):
        return load_workflow(source)


def convert(loaded: LoadedWorkflow, catalog: CatalogService, deadline: Deadline) -> LoadedWorkflow:
    """Stage *convert*: a UI-format workflow → API format (``/object_info`` from the catalog);
    anything else is returned as it is."""
    if loaded.format != "ui" or loaded.runninghub_id is not None:
        return loaded
    with stage(deadline, "convert"):
        api = catalog.convert_ui(loaded.workflow, deadline)
    return LoadedWorkflow(workflow=api, format="api", origin=loaded.origin)


# -- dsl / validate / upload --------------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
    param: dsl.Param
    target: dsl.ParamTarget
    value: Any
    placeholder: str


class PendingMedia:
    """A stand-in uploader for ``dsl.apply``: records media values, writes placeholders.

    After validation, :meth:`upload` sends them through the backend's real uploader and
    writes the returned names over the placeholders.
    """

    def __init__(self) -> None:
        self.items: list[_Pending] = []

    def __call__(self, param: dsl.Param, target: dsl.ParamTarget, value: Any) -> str:
        placeholder = _PLACEHOLDER.format(len(self.items))
        self.items.append(_Pending(param, target, value, placeholder))
        return placeholder

    @property
    def inputs(self) -> frozenset[tuple[str, str]]:
        """``(node_id, input)`` pairs that hold a placeholder."""
        return frozenset((p.target.node_id, p.target.field) for p in self.items)

    @property
    def placeholder_by_param(self) -> dict[str, str]:
        """Param name → the placeholder of its first target (what the caller's value became)."""
        return {p.param.name: p.placeholder for p in reversed(self.items)}

    def upload(self, prompt: dict[str, Any], uploader: MediaUploader) -> dict[str, Any]:
        """Upload every recorded value (once each, in order) and write the names in."""
        names = {p.placeholder: uploader(p.param, p.target, p.value) for p in self.items}
        for node in prompt.values():
            inputs = node.get("inputs") if isinstance(node, dict) else None
            if not isinstance(inputs, dict):
                continue
            for key, value in inputs.items():
                if isinstance(value, str) and value in names:
                    inputs[key] = names[value]
        return names


def check(
    prompt: Mapping[str, Any],
    backend: Backend,
    deadline: Deadline,
    *,
    skip: frozenset[tuple[str, str]] = frozenset(),
    strict: bool = True,
    params: Mapping[tuple[str, str], str] | None = None,
) -> list[Problem]:
    """Stage *validate*: the prompt against the backend's node catalog (every problem).

    Classes behind stale-looking problems (a fresh upload or model file, a restarted server
    with new nodes) are refetched once before they are reported. Inputs in ``skip`` (media
    still to upload) are not judged. A backend without a catalog (RunningHub) validates
    server-side: no problems here. ``strict`` and ``params`` are those of
    :func:`~witness.core.validate.validate_prompt` (numbers the server would silently cast;
    problems naming the DSL param).
    """
    with stage(deadline, "validate"):
        catalog = backend.catalog(deadline)
        if catalog is None:
            return []
        problems = _unskipped(validate_prompt(prompt, catalog, strict=strict, params=params), skip)
        stale = {p.class_type for p in problems if p.kind in STALE_KINDS and p.class_type}
        if stale:
            catalog = backend.refresh_catalog(stale, deadline)
            if catalog is not None:
                problems = _unskipped(
                    validate_prompt(prompt, catalog, strict=strict, params=params), skip
                )
        return problems


def _unskipped(problems: list[Problem], skip: frozenset[tuple[str, str]]) -> list[Problem]:
    if not skip:
        return problems
    return [p for p in problems if (p.node_id, p.input_name) not in skip]


def prepare(
    loaded: LoadedWorkflow,
    params: Mapping[str, Any] | None,
    backend: Backend,
    deadline: Deadline,
    *,
    allow_unknown: bool = False,
    randomize_seeds: bool = False,
    validate: bool = True,
    graph: dict[str, Any] | None = None,
) -> PreparedWorkflow:
    """Stages *dsl*, *validate* and *upload*: a loaded workflow + params → ready to submit.

    Args:
        loaded: The workflow (API format).
        params: DSL param name → value.
        backend: Where it will run (catalog and uploader).
        deadline: The call's deadline.
        allow_unknown: Ignore params the workflow does not declare.
        randomize_seeds: Randomise ``seed``/``noise_seed`` inputs the caller did not set.
        validate: Validate against the backend's catalog before anything is uploaded.
        graph: The graph to apply params to, when it is not ``loaded.workflow`` (a RunningHub
            workflow fetched by id).

    Raises:
        InvalidArgumentError: ``params`` is not a mapping.
        WorkflowError: DSL, params or pre-submit validation problems (nothing uploaded).
        UploadError: A media value could not be uploaded.
    """
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgumentError(
            "params", f"must be a mapping of param name to value, got {type(params).__name__}"
        )
    source = graph if graph is not None else loaded.workflow
    pending = PendingMedia()
    with stage(deadline, "dsl"):
        signature = dsl.parse(source) if graph is not None else signature_of(loaded)
        prompt = dsl.apply(
            source,
            signature,
            params,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            resolve_media=pending,
        )
    if validate:
        problems = check(
            prompt, backend, deadline, skip=pending.inputs, params=signature.param_inputs()
        )
        raise_for_problems(problems, prompt)
    names: dict[str, Any] = {}
    if pending.items:
        with stage(deadline, "upload"):
            names = pending.upload(prompt, backend.uploader(deadline))
    placeholders = pending.placeholder_by_param
    given = {
        key: names.get(placeholders.get(key, ""), value) for key, value in (params or {}).items()
    }
    return PreparedWorkflow(
        prompt=prompt,
        signature=signature,
        origin=loaded.origin,
        workflow_id=loaded.runninghub_id,
        params=given,
    )


# -- submit / wait ------------------------------------------------------------------------------


def run(
    backend: Backend,
    prepared: PreparedWorkflow,
    deadline: Deadline,
    *,
    options: BackendOptions | None = None,
    callbacks: WaitCallbacks | None = None,
    cancel_on_timeout: bool = True,
    cancel_on_error: bool = True,
) -> ExecuteResult:
    """Stages *submit* and *wait* (the handle assembles the result).

    On a timeout the run is cancelled (``cancel_on_timeout``) and the result has status
    ``"timeout"``. On Ctrl-C or any other exception while waiting, the run is cancelled on
    the backend exactly once (``cancel_on_error``), its id is logged, and the exception
    propagates.
    """
    with stage(deadline, "submit"):
        handle = backend.submit(prepared, deadline, options)
    try:
        with stage(deadline, "wait"):
            result = handle.wait(deadline, callbacks)
        if result.status == "timeout" and cancel_on_timeout:
            _cancel(handle, "timed out")
        return result
    except BaseException as exc:
        if cancel_on_error and isinstance(exc, TransportError):
            # The backend cannot be reached: a cancel could not reach it either (the error
            # says the run may still go on); trying would only add retries and log lines.
            logger.debug("run %s not cancelled: %s", handle.prompt_id, type(exc).__name__)
        elif cancel_on_error:
            _cancel(handle, f"{type(exc).__name__} while waiting")
        else:
            logger.warning("run %s left on the backend (%s)", handle.prompt_id, type(exc).__name__)
        raise
    finally:
        handle.release()


def _cancel(handle: RunHandle, why: str) -> None:
    logger.warning("cancelling run %s (%s)", handle.prompt_id, why)
    try:
        handle.cancel()
    except WitnessError as exc:
        logger.warning("could not cancel run %s: %s", handle.prompt_id, exc)

"""The contract between the pipeline and an execution surface.

The pipeline (:mod:`witness.core.pipeline`) turns a workflow plus params into a
:class:`PreparedWorkflow` (loaded, converted, DSL applied, validated, media uploaded through
the backend's :class:`MediaUploader`), then calls :meth:`Backend.submit`, then
:meth:`RunHandle.wait`. Every backend returns the same
:class:`~witness.core.results.ExecuteResult`. A handle never reaches back into the facade.

Backends: :mod:`witness.backends.native` (the ComfyUI server API), RunningHub
(:mod:`witness.runninghub`), the Comfy API v2 (:mod:`witness.backends.v2`) and a fleet of
ComfyUI servers (:mod:`witness.backends.fleet`).

To add one: implement :class:`Backend` (and a :class:`RunHandle`), give it a typed
:class:`BackendOptions` subclass for what only it understands, and pass an instance as
``Witness(backend=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from witness.api_clients.types import CancelResult
    from witness.core import dsl
    from witness.core.results import ExecuteResult
    from witness.core.tracking import PreviewCallback, ProgressCallback
    from witness.core.validate import NodeCatalog
    from witness.transport.deadline import Deadline

__all__ = [
    "Backend",
    "BackendOptions",
    "MediaUploader",
    "PreparedWorkflow",
    "RunHandle",
    "WaitCallbacks",
]


@dataclass(frozen=True)
class BackendOptions:
    """Options only one backend understands; each backend subclasses this.

    A backend given options of another backend's type raises
    :class:`~witness.errors.InvalidArgumentError` (nothing is silently dropped).
    """


@dataclass(frozen=True)
class WaitCallbacks:
    """What a waiting caller wants to hear about.

    Attributes:
        on_progress: Progress updates (:class:`~witness.core.tracking.ProgressUpdate`).
        on_preview: Preview images (:class:`~witness.core.tracking.Preview`).
    """

    on_progress: ProgressCallback | None = None
    on_preview: PreviewCallback | None = None


@dataclass
class PreparedWorkflow:
    """A workflow ready to submit: API format, params applied, validated, media uploaded.

    Attributes:
        prompt: The API-format prompt (node id → node).
        signature: Its DSL signature (params and ``$output`` names).
        origin: Where the workflow came from (path, URL, ``"<dict>"``...), for messages.
        workflow_id: A backend-side workflow id (RunningHub), else ``None``.
        params: The params as the caller gave them (after media resolution: server names).
        extra: Backend-neutral extras a stage wants to pass on (e.g. ``extra_pnginfo``).
    """

    prompt: dict[str, Any]
    signature: dsl.Signature
    origin: str = ""
    workflow_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class MediaUploader(Protocol):
    """Turns one media param value into the name the backend's nodes read it by.

    Called by the upload stage for each media value (path, URL, bytes, file object, ...),
    after validation passed; never for a value that already names a server-side file.
    """

    def __call__(self, param: dsl.Param, target: dsl.ParamTarget, value: Any) -> Any: ...


@runtime_checkable
class RunHandle(Protocol):
    """A submitted run on some backend."""

    @property
    def prompt_id(self) -> str:
        """The run's id on its backend (prompt id, task id or job id)."""
        ...

    def wait(
        self,
        deadline: Deadline | None = None,
        callbacks: WaitCallbacks | None = None,
    ) -> ExecuteResult:
        """Block until the run ends or ``deadline`` passes; the same result on later calls.

        Returns:
            The result (``"completed"``, ``"failed"``, ``"interrupted"``), or one with
            status ``"timeout"`` when the deadline passed (the run may still go on).

        Raises:
            PromptLostError: The backend forgot the run.
            TransportError: The backend stayed unreachable past its grace period.
        """
        ...

    def cancel(self) -> CancelResult:
        """Cancel the run (dequeue if pending, interrupt if running); idempotent."""
        ...

    def done(self) -> bool:
        """Whether the run has ended (may ask the backend once)."""
        ...

    def release(self) -> None:
        """Free what the handle holds (event streams); a later wait still works."""
        ...


@runtime_checkable
class Backend(Protocol):
    """An execution surface: where prepared workflows run."""

    #: A short name for messages and the CLI (``native``, ``runninghub``, ``v2``, ``fleet``).
    name: str

    def catalog(self, deadline: Deadline) -> NodeCatalog | None:
        """The node definitions prompts are validated against (``None``: cannot validate)."""
        ...

    def refresh_catalog(self, class_types: Any, deadline: Deadline) -> NodeCatalog | None:
        """Refetch some classes (a stale cache), then the catalog; ``None`` as above."""
        ...

    def uploader(self, deadline: Deadline) -> MediaUploader:
        """The media uploader for one call (it may remember what it uploaded)."""
        ...

    def submit(
        self,
        prepared: PreparedWorkflow,
        deadline: Deadline,
        options: BackendOptions | None = None,
    ) -> RunHandle:
        """Submit a prepared workflow; returns its handle.

        Raises:
            InvalidArgumentError: ``options`` of another backend's type.
            PromptValidationError: The backend refused the prompt.
            TransportError: The backend could not be reached (``sent`` says whether the
                submit may have arrived).
        """
        ...

    def attach(self, prompt_id: str, deadline: Deadline) -> RunHandle:
        """A handle for a run submitted earlier (by anyone): re-attach after a crash."""
        ...

    def cancel(self, prompt_id: str) -> CancelResult:
        """Cancel a run by id."""
        ...

    def close(self) -> None:
        """Release connections and threads; safe to call twice."""
        ...


#: Builds a backend from the facade's shared pieces (used by ``Witness(backend="name")``).
BackendFactory = Callable[..., Backend]

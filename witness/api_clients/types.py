"""Typed shapes of what the ComfyUI server returns, shared by the group clients.

Two kinds live here:

* frozen dataclasses for answers witness interprets (a submitted prompt, a queue snapshot, a
  history entry, an upload, a cancel), built with a ``from_json``/``from_list`` classmethod
  that tolerates missing or extra keys (newer servers add fields);
* ``TypedDict`` s (``total=False``) for answers passed through as the server sent them
  (``/system_stats``, ``/features``, ``/object_info``, ``/api/jobs`` ...), mirroring the
  reference shapes so editors and mypy know the keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, TypedDict

from witness.errors import NodeError, parse_node_errors

__all__ = [
    "FILE_TYPES",
    "CancelOutcome",
    "CancelResult",
    "DeviceInfo",
    "ExperimentModelFile",
    "ExperimentModelFolder",
    "Features",
    "FileRef",
    "FileType",
    "HistoryEntry",
    "HistoryFile",
    "HistoryStatus",
    "Job",
    "JobStatus",
    "JobsPage",
    "JobsPagination",
    "LogEntry",
    "LogsRaw",
    "NodeInfo",
    "PromptResponse",
    "QueueItem",
    "QueueState",
    "SubgraphEntry",
    "SubgraphInfo",
    "SystemInfo",
    "SystemStats",
    "UploadedFile",
    "UserdataEntry",
    "UserdataFileInfo",
    "UsersInfo",
]

FileType = Literal["input", "output", "temp"]
FILE_TYPES: tuple[FileType, ...] = ("input", "output", "temp")


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


# -- files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRef:
    """A file on the server as ComfyUI names it: ``{filename, subfolder, type}``.

    Attributes:
        filename: The file name (no directory part).
        subfolder: Directory under the type's root, ``""`` for the root.
        type: ``"output"``, ``"input"`` or ``"temp"``.
    """

    filename: str
    subfolder: str = ""
    type: str = "output"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileRef:
        """Build from a history/``executed`` output item (``filename``) or an upload (``name``)."""
        name = data.get("filename", data.get("name", ""))
        return cls(
            filename=str(name),
            subfolder=str(data.get("subfolder") or ""),
            type=str(data.get("type") or "output"),
        )

    @property
    def path(self) -> str:
        """``subfolder/filename`` (just ``filename`` at the root)."""
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename

    @property
    def annotated(self) -> str:
        """``"subfolder/filename [type]"``: the form LoadImage and ``/view`` accept."""
        return f"{self.path} [{self.type}]"

    def to_json(self) -> dict[str, str]:
        """The ``{filename, subfolder, type}`` mapping the server uses (e.g. ``original_ref``)."""
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


@dataclass(frozen=True)
class UploadedFile:
    """What ``POST /upload/image`` or ``/upload/mask`` stored.

    Attributes:
        name: The name the server stored. It can differ from the name sent (``"x (1).png"``
            on a collision, or an existing file's name when identical bytes were already there).
        subfolder: The subfolder it was stored in.
        type: ``"input"``, ``"temp"`` or ``"output"``.
    """

    name: str
    subfolder: str = ""
    type: str = "input"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UploadedFile:
        """Build from the server's ``{"name", "subfolder", "type"}`` answer."""
        return cls(
            name=str(data.get("name", "")),
            subfolder=str(data.get("subfolder") or ""),
            type=str(data.get("type") or "input"),
        )

    @property
    def ref(self) -> FileRef:
        """The same file as a :class:`FileRef` (for ``/view`` or a mask's ``original_ref``)."""
        return FileRef(self.name, self.subfolder, self.type)

    @property
    def input_value(self) -> str:
        """The value to put in a LoadImage-style input: ``sub/name``, plus ``" [type]"``
        when the file is not in the input directory."""
        ref = self.ref
        return ref.path if self.type == "input" else ref.annotated


@dataclass(frozen=True)
class HistoryFile:
    """One file listed in a history entry's outputs, as the server named it (the raw
    reference; a result's files are :class:`witness.core.results.OutputFile`).

    Attributes:
        node_id: The output node that produced it.
        kind: The output key it was listed under (``images``, ``gifs``, ``audio``, ...).
        ref: The file.
    """

    node_id: str
    kind: str
    ref: FileRef


# -- prompt --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptResponse:
    """The answer to a successful ``POST /prompt``: the prompt is queued.

    Attributes:
        prompt_id: The id the prompt is queued under.
        number: Its queue number (priority; negative with ``front``, a float when given).
        node_errors: Problems reported on a 200: outputs that failed validation and were
            dropped while the others were queued. Empty when everything was queued.
        raw_node_errors: The server's ``node_errors`` mapping, unmodified.
    """

    prompt_id: str
    number: int | float
    node_errors: tuple[NodeError, ...] = ()
    raw_node_errors: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], prompt: Mapping[str, Any] | None = None
    ) -> PromptResponse:
        """Build from the server's answer; ``prompt`` fills node titles in ``node_errors``."""
        raw = _as_dict(data.get("node_errors"))
        number = data.get("number", 0)
        return cls(
            prompt_id=str(data.get("prompt_id", "")),
            number=number if isinstance(number, int | float) else 0,
            node_errors=tuple(parse_node_errors(raw, prompt)),
            raw_node_errors=raw,
        )

    @property
    def dropped_outputs(self) -> tuple[str, ...]:
        """Output node ids that will not run because validation failed for them."""
        found: dict[str, None] = {}
        for entry in self.raw_node_errors.values():
            for out in _as_dict(entry).get("dependent_outputs") or ():
                found[str(out)] = None
        return tuple(found)


# -- queue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    """One queued prompt: ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``.

    Attributes:
        number: Queue number (lower runs first).
        prompt_id: The prompt's id.
        prompt: The prompt graph.
        extra_data: Its ``extra_data`` (``client_id``, ``create_time``, ...; secrets removed).
        outputs_to_execute: The validated output node ids.
    """

    number: int | float
    prompt_id: str
    prompt: dict[str, Any] = field(default_factory=dict, repr=False)
    extra_data: dict[str, Any] = field(default_factory=dict, repr=False)
    outputs_to_execute: tuple[str, ...] = ()

    @classmethod
    def from_list(cls, item: Sequence[Any]) -> QueueItem:
        """Build from the server's 5-item list (shorter lists are tolerated)."""
        values = list(item) + [None] * (5 - len(item))
        number = values[0]
        return cls(
            number=number if isinstance(number, int | float) else 0,
            prompt_id=str(values[1] or ""),
            prompt=_as_dict(values[2]),
            extra_data=_as_dict(values[3]),
            outputs_to_execute=tuple(str(o) for o in values[4] or ()),
        )

    @property
    def client_id(self) -> str | None:
        """The ``client_id`` the prompt was submitted with, if any."""
        value = self.extra_data.get("client_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class QueueState:
    """A snapshot of ``GET /queue``.

    Attributes:
        running: The prompt(s) executing now (at most one on a stock server).
        pending: Waiting prompts in run order (sorted by ``number``; the server sends heap
            order).
    """

    running: tuple[QueueItem, ...] = ()
    pending: tuple[QueueItem, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueState:
        """Build from ``{"queue_running": [...], "queue_pending": [...]}``."""

        def items(key: str) -> list[QueueItem]:
            raw = data.get(key) or ()
            return [QueueItem.from_list(i) for i in raw if isinstance(i, list | tuple)]

        pending = sorted(items("queue_pending"), key=lambda i: (i.number, i.prompt_id))
        return cls(running=tuple(items("queue_running")), pending=tuple(pending))

    def __len__(self) -> int:
        return len(self.running) + len(self.pending)

    def find(self, prompt_id: str) -> QueueItem | None:
        """The queued item with this id, running or pending, else ``None``."""
        for item in (*self.running, *self.pending):
            if item.prompt_id == prompt_id:
                return item
        return None

    def status_of(self, prompt_id: str) -> Literal["running", "pending"] | None:
        """``"running"``, ``"pending"``, or ``None`` when the prompt is not queued."""
        if any(i.prompt_id == prompt_id for i in self.running):
            return "running"
        if any(i.prompt_id == prompt_id for i in self.pending):
            return "pending"
        return None

    def position(self, prompt_id: str) -> int | None:
        """0-based place of a pending prompt in run order, else ``None``."""
        for index, item in enumerate(self.pending):
            if item.prompt_id == prompt_id:
                return index
        return None


class CancelOutcome(str, Enum):
    """What :meth:`QueueClient.cancel` did."""

    DEQUEUED = "dequeued"
    """The prompt was pending and was removed from the queue; it will not run."""
    INTERRUPTED = "interrupted"
    """The prompt was running and an interrupt aimed at it was sent (it stops at the next
    node or progress update)."""
    FINISHED = "finished"
    """The prompt had already finished (it is in the history); nothing was done."""
    NOT_FOUND = "not_found"
    """The server knows no prompt with this id (never queued, or lost in a restart)."""


@dataclass(frozen=True)
class CancelResult:
    """The result of :meth:`QueueClient.cancel`.

    Attributes:
        prompt_id: The prompt.
        outcome: What happened.
        via: ``"jobs_api"`` (``POST /api/jobs/{id}/cancel``, atomic on the server),
            ``"queue_api"`` (``/queue`` delete or ``/interrupt``), ``"runninghub"`` (a
            RunningHub task, ``POST /task/openapi/cancel``; from ``Witness.cancel``) or
            ``"v2_api"`` (a Comfy API v2 job, ``POST /api/v2/jobs/{id}/cancel``).
    """

    prompt_id: str
    outcome: CancelOutcome
    via: Literal["jobs_api", "queue_api", "runninghub", "v2_api"]

    @property
    def cancelled(self) -> bool:
        """Whether the call stopped the prompt (dequeued or interrupted)."""
        return self.outcome in (CancelOutcome.DEQUEUED, CancelOutcome.INTERRUPTED)


# -- history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryStatus:
    """The ``status`` block of a history entry.

    Attributes:
        status_str: ``"success"`` or ``"error"`` (``None`` if the server sent none).
        completed: Whether the prompt ran to completion.
        messages: ``(event, data)`` pairs: ``execution_start``, ``execution_cached``,
            ``execution_success`` | ``execution_error`` | ``execution_interrupted``.
    """

    status_str: str | None = None
    completed: bool = False
    messages: tuple[tuple[str, dict[str, Any]], ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> HistoryStatus:
        """Build from the server's status mapping (anything else gives an empty status)."""
        raw = _as_dict(data)
        messages: list[tuple[str, dict[str, Any]]] = []
        for message in raw.get("messages") or ():
            if isinstance(message, list | tuple) and len(message) >= 2:
                messages.append((str(message[0]), _as_dict(message[1])))
        status_str = raw.get("status_str")
        return cls(
            status_str=status_str if isinstance(status_str, str) else None,
            completed=bool(raw.get("completed", False)),
            messages=tuple(messages),
        )

    def message(self, event: str) -> dict[str, Any] | None:
        """The data of the last message of type ``event``, if any."""
        found: dict[str, Any] | None = None
        for name, data in self.messages:
            if name == event:
                found = data
        return found


@dataclass(frozen=True)
class HistoryEntry:
    """One finished prompt from ``GET /history``.

    Attributes:
        prompt_id: The prompt's id.
        number: Its queue number.
        prompt: The prompt graph that ran.
        extra_data: Its ``extra_data`` (secrets removed by the server).
        outputs_to_execute: The output node ids that were to run.
        outputs: ``{node_id: {kind: [items...]}}`` for nodes that produced UI output.
        status: Success/error and the execution messages.
        meta: ``{node_id: {node_id, display_node, parent_node, real_node_id}}``.
    """

    prompt_id: str
    number: int | float
    prompt: dict[str, Any] = field(default_factory=dict, repr=False)
    extra_data: dict[str, Any] = field(default_factory=dict, repr=False)
    outputs_to_execute: tuple[str, ...] = ()
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    status: HistoryStatus = field(default_factory=HistoryStatus)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, prompt_id: str, data: Mapping[str, Any]) -> HistoryEntry:
        """Build from one value of the ``/history`` mapping."""
        raw_prompt = data.get("prompt")
        item = QueueItem.from_list(raw_prompt if isinstance(raw_prompt, list | tuple) else [])
        outputs = {str(k): _as_dict(v) for k, v in _as_dict(data.get("outputs")).items()}
        return cls(
            prompt_id=str(prompt_id),
            number=item.number,
            prompt=item.prompt,
            extra_data=item.extra_data,
            outputs_to_execute=item.outputs_to_execute,
            outputs=outputs,
            status=HistoryStatus.from_json(data.get("status")),
            meta=_as_dict(data.get("meta")),
        )

    @property
    def succeeded(self) -> bool:
        """``True`` when the prompt ran to completion without error."""
        return self.status.status_str == "success" and self.status.completed

    @property
    def interrupted(self) -> bool:
        """``True`` when the prompt was interrupted."""
        return self.status.message("execution_interrupted") is not None

    @property
    def error(self) -> dict[str, Any] | None:
        """The ``execution_error`` data (node_id, exception_type, exception_message, ...)."""
        return self.status.message("execution_error")

    def output_files(self) -> list[HistoryFile]:
        """Every file item in ``outputs`` (``{filename, subfolder, type}``), in node order."""
        files: list[HistoryFile] = []
        for node_id, node_output in self.outputs.items():
            for kind, items in node_output.items():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, Mapping) and isinstance(item.get("filename"), str):
                        files.append(HistoryFile(node_id, kind, FileRef.from_json(item)))
        return files


# -- system (passed through as sent) --------------------------------------------------------


class SystemInfo(TypedDict, total=False):
    """``system`` of ``GET /system_stats``."""

    os: str
    ram_total: int
    ram_free: int
    comfyui_version: str
    required_frontend_version: str
    installed_templates_version: str
    required_templates_version: str
    python_version: str
    pytorch_version: str
    embedded_python: bool
    argv: list[str]


class DeviceInfo(TypedDict, total=False):
    """One entry of ``devices`` in ``GET /system_stats``."""

    name: str
    type: str
    index: int | None
    vram_total: int
    vram_free: int
    torch_vram_total: int
    torch_vram_free: int


class SystemStats(TypedDict, total=False):
    """``GET /system_stats``."""

    system: SystemInfo
    devices: list[DeviceInfo]


class Features(TypedDict, total=False):
    """``GET /features`` (newer servers add keys such as ``node_replacements``, ``assets``)."""

    supports_preview_metadata: bool
    max_upload_size: int
    node_replacements: bool
    assets: bool
    extension: dict[str, Any]


class NodeInfo(TypedDict, total=False):
    """One node class of ``GET /object_info``."""

    input: dict[str, dict[str, Any]]
    input_order: dict[str, list[str]]
    output: list[str]
    output_is_list: list[bool]
    output_name: list[str]
    output_tooltips: list[str | None]
    name: str
    display_name: str | None
    description: str
    python_module: str
    category: str
    output_node: bool
    deprecated: bool
    experimental: bool
    api_node: bool


class ExperimentModelFolder(TypedDict):
    """One entry of ``GET /experiment/models``."""

    name: str
    folders: list[str]


class ExperimentModelFile(TypedDict, total=False):
    """One entry of ``GET /experiment/models/{folder}``."""

    name: str
    pathIndex: int
    modified: float
    created: float
    size: int


class SubgraphInfo(TypedDict, total=False):
    """One entry of ``GET /global_subgraphs``."""

    source: str
    name: str
    info: dict[str, Any]


class SubgraphEntry(SubgraphInfo, total=False):
    """``GET /global_subgraphs/{id}``: the entry plus ``data``, the subgraph's JSON text."""

    data: str


JobStatus = Literal["pending", "in_progress", "completed", "failed", "cancelled"]


class Job(TypedDict, total=False):
    """One job of ``GET /api/jobs`` (ComfyUI v0.6.0+); keys with no value are left out.

    ``GET /api/jobs/{id}`` adds ``outputs``, ``execution_status`` and ``workflow`` for
    finished jobs.
    """

    id: str
    status: str
    priority: int | float
    create_time: int
    execution_start_time: int
    execution_end_time: int
    execution_error: dict[str, Any]
    outputs_count: int
    preview_output: dict[str, Any]
    workflow_id: str
    outputs: dict[str, Any]
    execution_status: dict[str, Any]
    workflow: dict[str, Any]


class JobsPagination(TypedDict, total=False):
    """``pagination`` of ``GET /api/jobs``."""

    offset: int
    limit: int | None
    total: int
    has_more: bool


class JobsPage(TypedDict):
    """``GET /api/jobs``."""

    jobs: list[Job]
    pagination: JobsPagination


# -- users ---------------------------------------------------------------------------------


class UsersInfo(TypedDict, total=False):
    """``GET /users``: ``migrated`` on single-user servers, ``users`` with ``--multi-user``."""

    storage: str
    migrated: bool
    users: dict[str, str]


class UserdataFileInfo(TypedDict):
    """A userdata file with ``full_info=true`` (times: float seconds; int ms from v0.21)."""

    path: str
    size: int
    modified: float
    created: float


class UserdataEntry(TypedDict, total=False):
    """One entry of ``GET /v2/userdata``: a directory or a file (with size, modified)."""

    name: str
    path: str
    type: Literal["directory", "file"]
    size: int
    modified: float


# -- internal ------------------------------------------------------------------------------


class LogEntry(TypedDict):
    """One log write: ISO time ``t`` and message ``m``."""

    t: str
    m: str


class LogsRaw(TypedDict):
    """``GET /internal/logs/raw``."""

    entries: list[LogEntry]
    size: dict[str, int] | None


def __getattr__(name: str) -> Any:
    """``OutputFile``: the old name of :class:`HistoryFile` (deprecated; one ``OutputFile``
    class remains, :class:`witness.core.results.OutputFile`)."""
    if name == "OutputFile":
        import warnings  # noqa: PLC0415

        warnings.warn(
            "witness.api_clients.types.OutputFile is renamed HistoryFile",
            DeprecationWarning,
            stacklevel=2,
        )
        return HistoryFile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Typed shapes of the Comfy API v2 (``/api/v2/*``): jobs, outputs, assets, events.

Each ``from_json`` is lenient the way the contract allows: optional fields may be missing or
``null`` (an output's ``hash`` is computed lazily, a job's ``progress`` only exists while it
runs), and fields this version does not know are kept in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from witness.errors import ResponseDecodeError

__all__ = [
    "ASSET_REF_TYPE",
    "TERMINAL_STATUSES",
    "Asset",
    "Health",
    "Job",
    "JobError",
    "JobPage",
    "JobStatus",
    "JobUrls",
    "JobWorkflow",
    "LogEvent",
    "Output",
    "OutputEvent",
    "PreviewEvent",
    "Progress",
    "ProgressEvent",
    "StatusEvent",
    "UnknownEvent",
    "V2Event",
    "asset_reference",
]

JobStatus = Literal["queued", "running", "succeeded", "canceling", "canceled", "failed", "expired"]
#: The statuses a job never leaves (``canceling`` is not one: it becomes ``canceled``).
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "canceled", "failed", "expired"})
#: The ``__type`` of an asset reference placed in a workflow input.
ASSET_REF_TYPE = "core/ASSET"


def asset_reference(
    asset_id: str, *, hash: str | None = None, file_path: str | None = None
) -> dict[str, Any]:
    """The ``core/ASSET`` object that goes where a node input names a file.

    ``{"__type": "core/ASSET", "info": {"id", "hash"?, "file_path"?}}``: the deployment
    replaces it with the file's name before the node runs (``LoadImage.image``...).
    """
    info: dict[str, Any] = {"id": asset_id}
    if hash:
        info["hash"] = hash
    if file_path:
        info["file_path"] = file_path
    return {"__type": ASSET_REF_TYPE, "info": info}


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ResponseDecodeError(
            status=200,
            method="GET",
            url=what,
            content_type="application/json",
            body=repr(data)[:200],
        )
    return data


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


@dataclass(frozen=True)
class Progress:
    """A progress snapshot (complete in itself; one re-syncs a client).

    Attributes:
        value: Overall fraction, 0.0 to 1.0, computed by the server.
        nodes_done: Nodes finished.
        nodes_total: Nodes in the run (0 when unknown).
        current_node: The node running now.
        current_node_class: Its class.
        step: The running node's step (sampler step...).
        steps: Its step count.
        message: A human-readable line (``"KSampler 21/50"``).
    """

    value: float
    nodes_done: int = 0
    nodes_total: int = 0
    current_node: str | None = None
    current_node_class: str | None = None
    step: int | None = None
    steps: int | None = None
    message: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Progress:
        """Parse a ``Progress`` object."""
        d = _mapping(data, "progress")
        raw_value = d.get("value")
        value = float(raw_value) if isinstance(raw_value, int | float) else 0.0
        return cls(
            value=max(0.0, min(1.0, value)),
            nodes_done=_int(d, "nodes_done") or 0,
            nodes_total=_int(d, "nodes_total") or 0,
            current_node=_str(d, "current_node"),
            current_node_class=_str(d, "current_node_class"),
            step=_int(d, "step"),
            steps=_int(d, "steps"),
            message=_str(d, "message"),
        )


@dataclass(frozen=True)
class Output:
    """A committed job output; outputs are assets.

    Attributes:
        node_id: The node that produced it.
        name: Its file name (untrusted: never used as a local path as is).
        type: ``image``, ``video``, ``audio``, ``text``, ``file`` or ``latent``.
        content_type: Its MIME type.
        size_bytes: Its size (0 when the server does not know yet).
        id: The asset id (``GET /api/v2/assets/{id}``).
        hash: ``blake3:<hex>``, or ``None`` until the server computed it.
        url: A short-lived content URL (may be on another host: it gets no credentials).
        url_expires_at: When ``url`` stops working (ISO 8601).
    """

    node_id: str
    name: str
    type: str
    content_type: str
    size_bytes: int
    id: str
    hash: str | None
    url: str
    url_expires_at: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Output:
        """Parse an ``Output`` object."""
        d = _mapping(data, "output")
        return cls(
            node_id=str(d.get("node_id", "")),
            name=str(d.get("name", "")),
            type=str(d.get("type", "file")),
            content_type=str(d.get("content_type") or "application/octet-stream"),
            size_bytes=_int(d, "size_bytes") or 0,
            id=str(d.get("id", "")),
            hash=_str(d, "hash"),
            url=str(d.get("url", "")),
            url_expires_at=_str(d, "url_expires_at"),
        )


@dataclass(frozen=True)
class JobError:
    """Why a job failed (``job.error``; not an HTTP error).

    Attributes:
        code: ``node_execution_error``...
        message: The exception message.
        node_id: The node that raised, when known.
        class_type: Its class.
        traceback: The server-side traceback, when given.
    """

    code: str
    message: str
    node_id: str | None = None
    class_type: str | None = None
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> JobError:
        """Parse a ``JobError`` object."""
        d = _mapping(data, "job.error")
        return cls(
            code=str(d.get("code") or "error"),
            message=str(d.get("message") or ""),
            node_id=_str(d, "node_id"),
            class_type=_str(d, "class_type"),
            traceback=_str(d, "traceback"),
        )


@dataclass(frozen=True)
class JobUrls:
    """A job's follow-up links (``self``, ``events``, ``cancel``)."""

    self: str
    events: str
    cancel: str


@dataclass(frozen=True)
class Job:
    """One execution of a workflow.

    Attributes:
        id: The job id.
        status: ``queued``, ``running``, ``succeeded``, ``canceling``, ``canceled``,
            ``failed`` or ``expired``.
        created_at / started_at / completed_at / expires_at: ISO 8601 times, when known.
        queue_position: 1-based place in the queue while queued.
        progress: The latest progress snapshot, while running.
        outputs: The outputs committed so far.
        error: Failure detail when ``failed``.
        urls: Follow-up links.
        raw: The job object as the server sent it.
    """

    id: str
    status: str
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    expires_at: str | None = None
    queue_position: int | None = None
    progress: Progress | None = None
    outputs: tuple[Output, ...] = ()
    error: JobError | None = None
    urls: JobUrls | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (succeeded, canceled, failed or expired)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Any) -> Job:
        """Parse a ``Job`` object.

        Raises:
            ResponseDecodeError: Not an object, or without ``id``/``status``.
        """
        d = _mapping(data, "job")
        if not d.get("id") or not d.get("status"):
            raise ResponseDecodeError(
                status=200,
                method="GET",
                url="job",
                content_type="application/json",
                body=repr(dict(d))[:200],
            )
        urls = d.get("urls")
        outputs = d.get("outputs")
        return cls(
            id=str(d["id"]),
            status=str(d["status"]),
            created_at=_str(d, "created_at"),
            started_at=_str(d, "started_at"),
            completed_at=_str(d, "completed_at"),
            expires_at=_str(d, "expires_at"),
            queue_position=_int(d, "queue_position"),
            progress=Progress.from_json(d["progress"])
            if isinstance(d.get("progress"), Mapping)
            else None,
            outputs=tuple(Output.from_json(o) for o in outputs if isinstance(o, Mapping))
            if isinstance(outputs, list)
            else (),
            error=JobError.from_json(d["error"]) if isinstance(d.get("error"), Mapping) else None,
            urls=JobUrls(
                self=str(urls.get("self", "")),
                events=str(urls.get("events", "")),
                cancel=str(urls.get("cancel", "")),
            )
            if isinstance(urls, Mapping)
            else None,
            raw=dict(d),
        )


@dataclass(frozen=True)
class JobPage:
    """One page of ``GET /api/v2/jobs``.

    Attributes:
        jobs: The jobs, newest first.
        next_cursor: The cursor of the next page (``None`` on the last page).
        truncated: The server stopped scanning before the page was full (self-hosted proxy).
    """

    jobs: tuple[Job, ...]
    next_cursor: str | None = None
    truncated: bool = False


@dataclass(frozen=True)
class JobWorkflow:
    """``GET /api/v2/jobs/{id}/workflow``: the graph a job ran.

    Attributes:
        workflow: The graph.
        format: ``"api"`` (the executed graph) or ``"save"`` (the authoring workflow).
    """

    workflow: dict[str, Any]
    format: str


@dataclass(frozen=True)
class Asset:
    """A stored file (an upload or an output).

    Attributes:
        id: The asset id (what a ``core/ASSET`` reference names).
        hash: ``blake3:<hex>``, or ``None`` while the server computes it.
        size_bytes: Its size.
        content_type: Its MIME type.
        file_path: Its path (``"photo.png"``, ``"input/x.png"``...).
        created_new: On create: ``True`` for new bytes, ``False`` for a de-duplicated hit.
        created_at: ISO 8601.
        url: A short-lived content URL.
        url_expires_at: When ``url`` stops working.
    """

    id: str
    hash: str | None
    size_bytes: int
    content_type: str
    file_path: str | None = None
    created_new: bool | None = None
    created_at: str | None = None
    url: str | None = None
    url_expires_at: str | None = None

    def reference(self) -> dict[str, Any]:
        """This asset as a ``core/ASSET`` workflow input (see :func:`asset_reference`)."""
        return asset_reference(self.id, hash=self.hash, file_path=self.file_path)

    @classmethod
    def from_json(cls, data: Any) -> Asset:
        """Parse an ``Asset`` object."""
        d = _mapping(data, "asset")
        created = d.get("created_new")
        return cls(
            id=str(d.get("id", "")),
            hash=_str(d, "hash"),
            size_bytes=_int(d, "size_bytes") or 0,
            content_type=str(d.get("content_type") or "application/octet-stream"),
            file_path=_str(d, "file_path"),
            created_new=created if isinstance(created, bool) else None,
            created_at=_str(d, "created_at"),
            url=_str(d, "url"),
            url_expires_at=_str(d, "url_expires_at"),
        )


@dataclass(frozen=True)
class Health:
    """``GET /api/v2/health``.

    Attributes:
        status: ``"healthy"`` when the deployment is up.
        raw: The whole answer (the proxy adds ``upstream``, its ComfyUI URL).
    """

    status: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def healthy(self) -> bool:
        """Whether the status says healthy (``healthy``/``ok``)."""
        return self.status.lower() in {"healthy", "ok"}


# -- events (GET /api/v2/jobs/{id}/events) ---------------------------------------------------


@dataclass(frozen=True)
class StatusEvent:
    """``status``: the job's status changed (the first event of every stream, too)."""

    status: str
    queue_position: int | None = None

    @property
    def terminal(self) -> bool:
        """Whether this status ends the job."""
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class ProgressEvent:
    """``progress``: a complete progress snapshot."""

    progress: Progress


@dataclass(frozen=True)
class PreviewEvent:
    """``preview``: a preview image (decoded from base64)."""

    node_id: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class LogEvent:
    """``log``: a diagnostic line."""

    level: str
    message: str


@dataclass(frozen=True)
class OutputEvent:
    """``output``: an output was committed."""

    output: Output


@dataclass(frozen=True)
class UnknownEvent:
    """An event this version does not know (kept, never dropped)."""

    event: str
    data: Any


V2Event = StatusEvent | ProgressEvent | PreviewEvent | LogEvent | OutputEvent | UnknownEvent

"""Typed events of the ComfyUI websocket, and a pure decoder for its frames.

Every message the server sends becomes one immutable event object:

* text frames (``{"type": ..., "data": {...}}``) through :func:`decode_text`;
* binary frames (a big-endian ``uint32`` event type, then a payload) through
  :func:`decode_binary`.

The decoder never raises and never drops a frame: a message type it does not know becomes an
:class:`UnknownEvent` (or :class:`UnknownBinaryEvent`), and a frame it cannot parse becomes a
:class:`MalformedFrameEvent` that carries the reason and the raw frame.

The client itself adds two kinds of events the server never sends: :class:`ConnectionEvent`
(the socket's state changed) and :class:`ReconnectedEvent` (told to every tracked prompt after
a reconnect: events may have been missed, reconcile with ``GET /history/{prompt_id}``).

Some server messages carry no prompt id (the ``executing`` message a socket gets on reconnect,
binary type 1 previews, binary text frames). The decoder leaves ``prompt_id`` as ``None``; the
websocket client may attribute such an event to a prompt, and then returns a copy with
``prompt_id`` (and, for previews, ``node_id``) filled in and ``attributed=True``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "BINARY_PREVIEW_IMAGE",
    "BINARY_PREVIEW_IMAGE_WITH_METADATA",
    "BINARY_TEXT",
    "ConnectionEvent",
    "ConnectionState",
    "Event",
    "ExecutedEvent",
    "ExecutingEvent",
    "ExecutionCachedEvent",
    "ExecutionErrorEvent",
    "ExecutionInterruptedEvent",
    "ExecutionStartEvent",
    "ExecutionSuccessEvent",
    "FeatureFlagsEvent",
    "LogEntry",
    "LogsEvent",
    "MalformedFrameEvent",
    "NodeProgress",
    "PreviewEvent",
    "ProgressEvent",
    "ProgressStateEvent",
    "ReconnectedEvent",
    "StatusEvent",
    "TextEvent",
    "UnknownBinaryEvent",
    "UnknownEvent",
    "decode_binary",
    "decode_text",
]

BINARY_PREVIEW_IMAGE = 1
BINARY_TEXT = 3
BINARY_PREVIEW_IMAGE_WITH_METADATA = 4

# Binary type 1 image format codes (``protocol``: 1 = JPEG, 2 = PNG).
_PREVIEW_FORMATS = {1: "image/jpeg", 2: "image/png"}

ConnectionState = Literal["connected", "disconnected", "reconnecting", "closed"]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every websocket event.

    Attributes:
        prompt_id: The prompt the event belongs to, when the server named it or the client
            attributed it; ``None`` for events of no prompt (``status``, ``feature_flags``...).
        attributed: ``True`` when ``prompt_id`` (and a preview's ``node_id``) was inferred by
            the client rather than sent by the server.
        data: The server's raw ``data`` object of a JSON message, every key kept (fields
            the typed event does not have, newer servers' additions); empty for binary
            frames and client events.
    """

    TYPE: ClassVar[str] = ""

    prompt_id: str | None = None
    attributed: bool = False
    data: Any = field(default_factory=dict, repr=False, compare=False)

    @property
    def type(self) -> str:
        """The server's message type (``"progress"``...) or the client event's name."""
        return self.TYPE


# -- JSON messages -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StatusEvent(Event):
    """``status``: the queue changed (broadcast to every socket; never about one prompt).

    Attributes:
        queue_remaining: Prompts pending or running, when reported.
        sid: The socket's client id; only in the copy sent right after connecting.
    """

    TYPE: ClassVar[str] = "status"

    queue_remaining: int | None = None
    sid: str | None = None


@dataclass(frozen=True, kw_only=True)
class FeatureFlagsEvent(Event):
    """``feature_flags``: the server's answer to the client's feature-flag handshake.

    Attributes:
        flags: The server's feature dict (``supports_preview_metadata``, ``max_upload_size``...).
    """

    TYPE: ClassVar[str] = "feature_flags"

    flags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def supports_preview_metadata(self) -> bool:
        """Whether the server sends previews as binary type 4 to clients that ask for it."""
        return bool(self.flags.get("supports_preview_metadata"))

    @property
    def max_upload_size(self) -> int | None:
        """The server's request body limit in bytes, when reported."""
        value = self.flags.get("max_upload_size")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, kw_only=True)
class ExecutionStartEvent(Event):
    """``execution_start``: the prompt began to run. ``timestamp`` is in epoch milliseconds."""

    TYPE: ClassVar[str] = "execution_start"

    timestamp: int | None = None


@dataclass(frozen=True, kw_only=True)
class ExecutionCachedEvent(Event):
    """``execution_cached``: nodes whose outputs come from the cache (they get no
    ``executing``)."""

    TYPE: ClassVar[str] = "execution_cached"

    nodes: tuple[str, ...] = ()
    timestamp: int | None = None


@dataclass(frozen=True, kw_only=True)
class ExecutingEvent(Event):
    """``executing``: a node starts; ``node=None`` means the prompt is finished.

    ``{"node": null, "prompt_id": ...}`` is the completion signal of a prompt (success, error
    or interrupt) and comes after the history entry is written. A socket that connects while
    its client's prompt runs gets ``{"node": id}`` with no prompt id (:attr:`is_reconnect_notice`).

    Attributes:
        node: The node id, or ``None`` at the end of the prompt.
        display_node: The node shown in the UI for it (differs inside subgraphs).
    """

    TYPE: ClassVar[str] = "executing"

    node: str | None = None
    display_node: str | None = None

    @property
    def finished(self) -> bool:
        """Whether this is the completion signal of ``prompt_id``."""
        return self.node is None and self.prompt_id is not None

    @property
    def is_reconnect_notice(self) -> bool:
        """Whether this is the id-less copy sent to a socket that (re)connected mid-run."""
        return self.node is not None and (self.prompt_id is None or self.attributed)


@dataclass(frozen=True, kw_only=True)
class ProgressEvent(Event):
    """``progress``: a node's progress bar moved (sampler steps, ``ProgressBar``).

    ``value`` and ``max`` are as the server sent them (int or float).
    """

    TYPE: ClassVar[str] = "progress"

    value: float = 0
    max: float = 0
    node: str | None = None


@dataclass(frozen=True)
class NodeProgress:
    """One node's entry in a ``progress_state`` snapshot."""

    node_id: str
    value: float
    max: float
    state: str
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProgressStateEvent(Event):
    """``progress_state``: a cumulative snapshot of every started node's progress.

    Attributes:
        nodes: Node id to its progress (pending nodes are absent).
    """

    TYPE: ClassVar[str] = "progress_state"

    nodes: Mapping[str, NodeProgress] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ExecutedEvent(Event):
    """``executed``: a node produced UI output (also re-sent for cached output nodes).

    Attributes:
        node: The node id.
        display_node: The node shown in the UI.
        output: The node's UI dict (``{"images": [...]}``...), or ``None``.
    """

    TYPE: ClassVar[str] = "executed"

    node: str | None = None
    display_node: str | None = None
    output: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class ExecutionSuccessEvent(Event):
    """``execution_success``: every node ran. Sent *before* the history entry is written;
    wait for the ``executing`` completion signal before reading ``/history``."""

    TYPE: ClassVar[str] = "execution_success"

    timestamp: int | None = None


@dataclass(frozen=True, kw_only=True)
class ExecutionErrorEvent(Event):
    """``execution_error``: a node raised; the prompt stops (unless :attr:`blocked`).

    Attributes:
        node_id: The node that raised.
        node_type: Its class.
        executed: Nodes that had finished.
        exception_type: The Python exception type, e.g. ``"RuntimeError"``.
        exception_message: Its message.
        traceback: Server-side traceback lines.
        current_inputs: The failing node's inputs as strings (can be very large).
        current_outputs: Ids of outputs computed so far.
        timestamp: Epoch milliseconds (absent in the ``ExecutionBlocked`` variant).
    """

    TYPE: ClassVar[str] = "execution_error"

    node_id: str | None = None
    node_type: str | None = None
    executed: tuple[str, ...] = ()
    exception_type: str = ""
    exception_message: str = ""
    traceback: tuple[str, ...] = field(default=(), repr=False)
    current_inputs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    current_outputs: tuple[str, ...] = field(default=(), repr=False)
    timestamp: int | None = None

    @property
    def blocked(self) -> bool:
        """Whether this is the non-fatal ``ExecutionBlocked`` report (the prompt goes on)."""
        return self.exception_type == "ExecutionBlocked"


@dataclass(frozen=True, kw_only=True)
class ExecutionInterruptedEvent(Event):
    """``execution_interrupted``: an interrupt took effect before ``node_id`` ran."""

    TYPE: ClassVar[str] = "execution_interrupted"

    node_id: str | None = None
    node_type: str | None = None
    executed: tuple[str, ...] = ()
    timestamp: int | None = None


@dataclass(frozen=True)
class LogEntry:
    """One server log line: ``t`` is an ISO time, ``m`` the text."""

    t: str
    m: str


@dataclass(frozen=True, kw_only=True)
class LogsEvent(Event):
    """``logs``: new server log lines (after ``PATCH /internal/logs/subscribe``)."""

    TYPE: ClassVar[str] = "logs"

    entries: tuple[LogEntry, ...] = ()
    size: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """A JSON message of a type this module does not know (custom nodes, newer servers).

    Attributes:
        message_type: The message's ``type``.
        data: Its ``data``, as sent.
    """

    message_type: str = ""

    @property
    def type(self) -> str:
        return self.message_type


# -- binary frames -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PreviewEvent(Event):
    """A binary image frame: a live preview, or a full image from ``SaveImageWebsocket``.

    Attributes:
        image: The encoded image bytes.
        mime_type: ``"image/png"``, ``"image/jpeg"``, or ``"application/octet-stream"`` when
            the server named a format this module does not know.
        binary_type: 1 (no metadata) or 4 (with metadata; clients that negotiated
            ``supports_preview_metadata``).
        node_id: The node that sent it: from the metadata (type 4), or attributed by the
            client (type 1).
        display_node_id: From the metadata (type 4).
        parent_node_id: From the metadata (type 4).
        real_node_id: From the metadata (type 4).
        metadata: The type 4 metadata object as sent, else ``None``.
        format_code: The type 1 format code (1 = JPEG, 2 = PNG), else ``None``.
    """

    TYPE: ClassVar[str] = "preview"

    image: bytes = field(default=b"", repr=False)
    mime_type: str = "application/octet-stream"
    binary_type: int = BINARY_PREVIEW_IMAGE
    node_id: str | None = None
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    format_code: int | None = None

    @property
    def image_format(self) -> str:
        """``"PNG"``, ``"JPEG"`` or ``"UNKNOWN"``."""
        return {"image/png": "PNG", "image/jpeg": "JPEG"}.get(self.mime_type, "UNKNOWN")

    @property
    def size(self) -> int:
        """Length of the image in bytes."""
        return len(self.image)


@dataclass(frozen=True, kw_only=True)
class TextEvent(Event):
    """Binary type 3: progress text of a node (broadcast to every socket by the server).

    Attributes:
        node_id: The node the text is about (its prompt is unknown to the server's message).
        text: The text.
    """

    TYPE: ClassVar[str] = "text"

    node_id: str = ""
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class UnknownBinaryEvent(Event):
    """A binary frame of a type this module does not know.

    Attributes:
        binary_type: The frame's event type number.
        payload: The bytes after the type.
    """

    TYPE: ClassVar[str] = "binary"

    binary_type: int = 0
    payload: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, kw_only=True)
class MalformedFrameEvent(Event):
    """A frame that could not be parsed (bad JSON, truncated header...), kept for diagnosis.

    Attributes:
        reason: What is wrong.
        raw: The frame as received (``str`` for text, ``bytes`` for binary).
    """

    TYPE: ClassVar[str] = "malformed"

    reason: str = ""
    raw: str | bytes = field(default=b"", repr=False)


# -- client-side events --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ConnectionEvent(Event):
    """The websocket's connection state changed (emitted by the client, not the server).

    Attributes:
        state: ``"connected"``, ``"disconnected"``, ``"reconnecting"`` or ``"closed"``.
        attempt: For ``reconnecting``: the attempt about to be made (1, 2, ...); for
            ``connected``: how many attempts the reconnect took (0 for the first connect).
        error: Why the socket dropped or the attempt failed (secrets redacted), if known.
        delay: For ``reconnecting``: seconds waited before the attempt.
    """

    TYPE: ClassVar[str] = "connection"

    state: ConnectionState = "connected"
    attempt: int = 0
    error: str | None = None
    delay: float | None = None


@dataclass(frozen=True, kw_only=True)
class ReconnectedEvent(Event):
    """Put into every tracked prompt's stream after a reconnect.

    The server does not replay what it sent while the socket was down, so this prompt's
    events may be missing (including its completion). Reconcile with
    ``GET /history/{prompt_id}`` (and ``/queue``) before waiting on.

    Attributes:
        attempt: Reconnect attempts it took.
        error: Why the connection had dropped, if known.
    """

    TYPE: ClassVar[str] = "reconnected"

    attempt: int = 0
    error: str | None = None


# -- decoding ------------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    """A node or prompt id as a string (ids are strings on the wire; tolerate numbers)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return 0


def _ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(s for s in (_str(v) for v in value) if s is not None)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _node_progress(key: str, value: Any) -> NodeProgress:
    entry = _mapping(value)
    return NodeProgress(
        node_id=_str(entry.get("node_id")) or key,
        value=_number(entry.get("value")),
        max=_number(entry.get("max")),
        state=str(entry.get("state") or ""),
        display_node_id=_str(entry.get("display_node_id")),
        parent_node_id=_str(entry.get("parent_node_id")),
        real_node_id=_str(entry.get("real_node_id")),
    )


def _decode_status(data: Mapping[str, Any]) -> Event:
    exec_info = _mapping(_mapping(data.get("status")).get("exec_info"))
    return StatusEvent(
        queue_remaining=_int(exec_info.get("queue_remaining")), sid=_str(data.get("sid")), data=data
    )


def _decode_execution_error(data: Mapping[str, Any]) -> Event:
    traceback = data.get("traceback")
    return ExecutionErrorEvent(
        prompt_id=_str(data.get("prompt_id")),
        node_id=_str(data.get("node_id")),
        node_type=_str(data.get("node_type")),
        executed=_ids(data.get("executed")),
        exception_type=str(data.get("exception_type") or ""),
        exception_message=str(data.get("exception_message") or ""),
        traceback=tuple(str(t) for t in traceback) if isinstance(traceback, list) else (),
        current_inputs=_mapping(data.get("current_inputs")),
        current_outputs=_ids(data.get("current_outputs")),
        timestamp=_int(data.get("timestamp")),
    )


def _decode_logs(data: Mapping[str, Any]) -> Event:
    raw_entries = data.get("entries")
    entries = tuple(
        LogEntry(t=str(e.get("t", "")), m=str(e.get("m", "")))
        for e in (raw_entries if isinstance(raw_entries, list) else ())
        if isinstance(e, Mapping)
    )
    size = data.get("size")
    return LogsEvent(entries=entries, size=size if isinstance(size, Mapping) else None)


def _decode_json_message(message_type: str, data: Mapping[str, Any]) -> Event:
    prompt_id = _str(data.get("prompt_id"))
    if message_type == "status":
        return _decode_status(data)
    if message_type == "feature_flags":
        return FeatureFlagsEvent(flags=data)
    if message_type == "execution_start":
        return ExecutionStartEvent(prompt_id=prompt_id, timestamp=_int(data.get("timestamp")))
    if message_type == "execution_cached":
        return ExecutionCachedEvent(
            prompt_id=prompt_id,
            nodes=_ids(data.get("nodes")),
            timestamp=_int(data.get("timestamp")),
        )
    if message_type == "executing":
        return ExecutingEvent(
            prompt_id=prompt_id,
            node=_str(data.get("node")),
            display_node=_str(data.get("display_node")),
        )
    if message_type == "progress":
        return ProgressEvent(
            prompt_id=prompt_id,
            value=_number(data.get("value")),
            max=_number(data.get("max")),
            node=_str(data.get("node")),
        )
    if message_type == "progress_state":
        nodes = {str(k): _node_progress(str(k), v) for k, v in _mapping(data.get("nodes")).items()}
        return ProgressStateEvent(prompt_id=prompt_id, nodes=nodes)
    if message_type == "executed":
        output = data.get("output")
        return ExecutedEvent(
            prompt_id=prompt_id,
            node=_str(data.get("node")),
            display_node=_str(data.get("display_node")),
            output=output if isinstance(output, Mapping) else None,
        )
    if message_type == "execution_success":
        return ExecutionSuccessEvent(prompt_id=prompt_id, timestamp=_int(data.get("timestamp")))
    if message_type == "execution_error":
        return _decode_execution_error(data)
    if message_type == "execution_interrupted":
        return ExecutionInterruptedEvent(
            prompt_id=prompt_id,
            node_id=_str(data.get("node_id")),
            node_type=_str(data.get("node_type")),
            executed=_ids(data.get("executed")),
            timestamp=_int(data.get("timestamp")),
        )
    if message_type == "logs":
        return _decode_logs(data)
    return UnknownEvent(message_type=message_type, data=data, prompt_id=prompt_id)


def decode_text(text: str) -> Event:
    """Decode one text frame of the ComfyUI websocket.

    Args:
        text: The frame, a JSON object ``{"type": str, "data": {...}}``.

    Returns:
        The typed event; :class:`UnknownEvent` for a type this module does not know (its
        ``prompt_id`` is taken from ``data`` when present), :class:`MalformedFrameEvent` for a
        frame that is not such an object. Never raises.
    """
    try:
        message = json.loads(text)
    except ValueError as exc:
        return MalformedFrameEvent(reason=f"text frame is not JSON ({exc})", raw=text)
    if not isinstance(message, Mapping):
        return MalformedFrameEvent(reason="text frame is not a JSON object", raw=text)
    message_type = message.get("type")
    if not isinstance(message_type, str):
        return MalformedFrameEvent(reason="text frame has no string 'type'", raw=text)
    data = message.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        return UnknownEvent(message_type=message_type, data=data)
    event = _decode_json_message(message_type, data)
    if event.data is not data:
        # The event was made just above and nobody else holds it: set the field in place
        # (as the frozen dataclass's own __init__ does) rather than copy it with replace().
        object.__setattr__(event, "data", data)
    return event


def decode_binary(frame: bytes) -> Event:
    """Decode one binary frame of the ComfyUI websocket.

    Layouts (all integers big-endian ``uint32``): type 1 ``[1][format][image]``; type 3
    ``[3][len][node id][text]``; type 4 ``[4][len][JSON metadata][image]``.

    Args:
        frame: The whole frame.

    Returns:
        :class:`PreviewEvent`, :class:`TextEvent`, :class:`UnknownBinaryEvent` for another
        type, or :class:`MalformedFrameEvent` for a truncated or inconsistent frame. Never
        raises.
    """
    data = bytes(frame)
    if len(data) < 4:
        return MalformedFrameEvent(
            reason=f"binary frame of {len(data)} bytes has no type", raw=data
        )
    (kind,) = struct.unpack_from(">I", data, 0)
    if kind == BINARY_PREVIEW_IMAGE:
        if len(data) < 8:
            return MalformedFrameEvent(reason="preview frame without an image format", raw=data)
        (code,) = struct.unpack_from(">I", data, 4)
        return PreviewEvent(
            image=data[8:],
            mime_type=_PREVIEW_FORMATS.get(code, "application/octet-stream"),
            binary_type=BINARY_PREVIEW_IMAGE,
            format_code=code,
        )
    if kind in (BINARY_TEXT, BINARY_PREVIEW_IMAGE_WITH_METADATA):
        if len(data) < 8:
            return MalformedFrameEvent(reason=f"binary type {kind} frame is truncated", raw=data)
        (length,) = struct.unpack_from(">I", data, 4)
        if 8 + length > len(data):
            return MalformedFrameEvent(
                reason=f"binary type {kind} frame announces {length} header bytes but has only "
                f"{len(data) - 8}",
                raw=data,
            )
        head, rest = data[8 : 8 + length], data[8 + length :]
        try:
            head_text = head.decode("utf-8")
            if kind == BINARY_TEXT:
                return TextEvent(node_id=head_text, text=rest.decode("utf-8"))
            metadata = json.loads(head_text)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return MalformedFrameEvent(reason=f"binary type {kind} frame: {exc}", raw=data)
        if not isinstance(metadata, Mapping):
            return MalformedFrameEvent(reason="preview metadata is not a JSON object", raw=data)
        mime = metadata.get("image_type")
        return PreviewEvent(
            prompt_id=_str(metadata.get("prompt_id")),
            image=rest,
            mime_type=mime if isinstance(mime, str) and mime else "application/octet-stream",
            binary_type=BINARY_PREVIEW_IMAGE_WITH_METADATA,
            node_id=_str(metadata.get("node_id")),
            display_node_id=_str(metadata.get("display_node_id")),
            parent_node_id=_str(metadata.get("parent_node_id")),
            real_node_id=_str(metadata.get("real_node_id")),
            metadata=metadata,
        )
    return UnknownBinaryEvent(binary_type=kind, payload=data[4:])

"""Server-sent events of ``GET /api/v2/jobs/{id}/events``: parsing and typing.

The stream is ``event: <name>`` / ``data: <json>`` frames separated by blank lines, with
``: keepalive`` comments in between. It carries no ``id:`` (there is no Last-Event-ID resume
in the contract), so a reconnect starts from a fresh ``status`` snapshot; every ``progress``
is a complete snapshot, so nothing is lost but previews.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from witness.api_clients.v2.types import (
    LogEvent,
    Output,
    OutputEvent,
    PreviewEvent,
    Progress,
    ProgressEvent,
    StatusEvent,
    UnknownEvent,
    V2Event,
)
from witness.errors import ResponseDecodeError

__all__ = ["SSEParser", "decode_event", "iter_events"]

logger = logging.getLogger(__name__)


@dataclass
class SSEParser:
    """An incremental ``text/event-stream`` parser: feed bytes, get ``(event, data)`` pairs.

    Attributes:
        last_event_id: The last ``id:`` seen (for ``Last-Event-ID`` on a reconnect), if the
            server sends ids at all.
    """

    last_event_id: str | None = None
    _buffer: bytes = b""
    _event: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """Parse a chunk; returns the frames it completed."""
        self._buffer += chunk
        frames: list[tuple[str, str]] = []
        while True:
            cut = self._buffer.find(b"\n")
            if cut < 0:
                break
            raw, self._buffer = self._buffer[:cut], self._buffer[cut + 1 :]
            frame = self._line(raw.rstrip(b"\r").decode("utf-8", "replace"))
            if frame is not None:
                frames.append(frame)
        return frames

    def _line(self, line: str) -> tuple[str, str] | None:
        if not line:
            if not self._data and self._event is None:
                return None
            frame = (self._event or "message", "\n".join(self._data))
            self._event, self._data = None, []
            return frame
        if line.startswith(":"):
            return None  # a comment (keepalive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self.last_event_id = value
        return None


def decode_event(event: str, data: str) -> V2Event:
    """Type one frame; an unknown event name (or undecodable data) gives :class:`UnknownEvent`.

    Raises:
        ResponseDecodeError: A known event whose data is not the JSON object it must be.
    """
    try:
        payload: Any = json.loads(data) if data else {}
    except ValueError:
        return UnknownEvent(event, data)
    if event not in _DECODERS:
        return UnknownEvent(event, payload)
    if not isinstance(payload, dict):
        raise ResponseDecodeError(
            status=200,
            method="GET",
            url=f"events ({event})",
            content_type="text/event-stream",
            body=data[:200],
        )
    return _DECODERS[event](payload)


def _status(d: dict[str, Any]) -> V2Event:
    position = d.get("queue_position")
    return StatusEvent(
        status=str(d.get("status", "")),
        queue_position=position if isinstance(position, int) else None,
    )


def _preview(d: dict[str, Any]) -> V2Event:
    try:
        data = base64.b64decode(str(d.get("data_base64", "")), validate=True)
    except (binascii.Error, ValueError):
        logger.debug("dropping a preview event with bad base64")
        return UnknownEvent("preview", d)
    node = d.get("node_id")
    return PreviewEvent(
        node_id=str(node) if node not in (None, "") else None,
        content_type=str(d.get("content_type") or "image/jpeg"),
        data=data,
    )


def _log(d: dict[str, Any]) -> V2Event:
    return LogEvent(level=str(d.get("level", "info")), message=str(d.get("message", "")))


_DECODERS: dict[str, Callable[[dict[str, Any]], V2Event]] = {
    "status": _status,
    "progress": lambda d: ProgressEvent(Progress.from_json(d)),
    "preview": _preview,
    "log": _log,
    "output": lambda d: OutputEvent(Output.from_json(d)),
}


def iter_events(chunks: Iterable[bytes], parser: SSEParser | None = None) -> Iterator[V2Event]:
    """Typed events from a stream of body chunks."""
    parser = parser if parser is not None else SSEParser()
    for chunk in chunks:
        for event, data in parser.feed(chunk):
            yield decode_event(event, data)

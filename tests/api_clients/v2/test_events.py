"""The server-sent-events parser and the typed v2 events."""

from __future__ import annotations

import base64

import pytest

from witness.api_clients.v2.events import SSEParser, decode_event, iter_events
from witness.api_clients.v2.types import (
    LogEvent,
    OutputEvent,
    PreviewEvent,
    ProgressEvent,
    StatusEvent,
    UnknownEvent,
)
from witness.errors import ResponseDecodeError


def test_frames_split_anywhere_and_comments_ignored() -> None:
    raw = (
        b': keepalive\n\nevent: status\r\ndata: {"status":"queued","queue_position":2}\n\n'
        b'id: 7\nevent: progress\ndata: {"value":0.25,\ndata: "nodes_done":1}\n\n'
    )
    parser = SSEParser()
    chunks = [raw[i : i + 5] for i in range(0, len(raw), 5)]
    events = list(iter_events(chunks, parser))
    assert events[0] == StatusEvent("queued", 2)
    assert isinstance(events[1], ProgressEvent)
    assert events[1].progress.value == 0.25
    assert events[1].progress.nodes_done == 1
    assert parser.last_event_id == "7"
    assert not events[0].terminal
    assert StatusEvent("expired").terminal
    assert not StatusEvent("canceling").terminal


def test_every_event_kind() -> None:
    image = b"\xff\xd8\xffjpeg"
    preview = decode_event(
        "preview",
        '{"node_id":"5","content_type":"image/jpeg","data_base64":"'
        + base64.b64encode(image).decode()
        + '"}',
    )
    assert preview == PreviewEvent("5", "image/jpeg", image)
    assert decode_event("log", '{"level":"warn","message":"hi"}') == LogEvent("warn", "hi")
    output = decode_event("output", '{"node_id":"9","name":"x.png","type":"image","id":"a1"}')
    assert isinstance(output, OutputEvent)
    assert output.output.id == "a1"
    assert output.output.hash is None
    assert decode_event("future", '{"a":1}') == UnknownEvent("future", {"a": 1})
    assert decode_event("status", "not json") == UnknownEvent("status", "not json")
    assert isinstance(decode_event("preview", '{"data_base64":"%%%"}'), UnknownEvent)
    with pytest.raises(ResponseDecodeError):
        decode_event("status", "[1, 2]")

"""The websocket frame decoder, on every message of the recorded real traces and on bad input."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from witness.api_clients.ws_events import (
    BINARY_PREVIEW_IMAGE,
    BINARY_PREVIEW_IMAGE_WITH_METADATA,
    ConnectionEvent,
    Event,
    ExecutedEvent,
    ExecutingEvent,
    ExecutionCachedEvent,
    ExecutionErrorEvent,
    ExecutionInterruptedEvent,
    ExecutionStartEvent,
    ExecutionSuccessEvent,
    FeatureFlagsEvent,
    LogsEvent,
    MalformedFrameEvent,
    PreviewEvent,
    ProgressEvent,
    ProgressStateEvent,
    ReconnectedEvent,
    StatusEvent,
    TextEvent,
    UnknownBinaryEvent,
    UnknownEvent,
    decode_binary,
    decode_text,
)

TRACES = Path("/work/shared/reference/ws-traces")
TRACE_NAMES = ["basic_noflags", "basic_flags", "cached", "error", "interrupt", "badprompt"]
PNG_MAGIC = bytes.fromhex("89504e470d0a1a0a")

EXPECTED_CLASS: dict[str, type[Event]] = {
    "status": StatusEvent,
    "feature_flags": FeatureFlagsEvent,
    "execution_start": ExecutionStartEvent,
    "execution_cached": ExecutionCachedEvent,
    "executing": ExecutingEvent,
    "progress": ProgressEvent,
    "progress_state": ProgressStateEvent,
    "executed": ExecutedEvent,
    "execution_success": ExecutionSuccessEvent,
    "execution_error": ExecutionErrorEvent,
    "execution_interrupted": ExecutionInterruptedEvent,
    "logs": LogsEvent,
}


def load_trace(name: str) -> dict[str, Any]:
    path = TRACES / f"{name}.json"
    if not path.exists():  # pragma: no cover - the reference folder is part of the set-up
        pytest.skip(f"{path} is missing")
    trace: dict[str, Any] = json.loads(path.read_text())
    return trace


def rebuild_binary(entry: dict[str, Any]) -> bytes:
    """Re-encode a binary frame from its decoded form in a trace (same length as recorded)."""
    kind = entry["event"]
    length: int = entry["len"]
    if kind == BINARY_PREVIEW_IMAGE:
        code = {"JPEG": 1, "PNG": 2}[entry["image_format"]]
        magic = bytes.fromhex(entry["image_magic"])
        return struct.pack(">II", 1, code) + magic + b"\0" * (length - 8 - len(magic))
    if kind == 3:
        node = str(entry["node_id"]).encode()
        return struct.pack(">II", 3, len(node)) + node + str(entry["text"]).encode()
    if kind == BINARY_PREVIEW_IMAGE_WITH_METADATA:
        meta = json.dumps(entry["metadata"]).encode()
        magic = bytes.fromhex(entry["image_magic"])
        image = magic + b"\0" * max(0, length - 8 - len(meta) - len(magic))
        return struct.pack(">II", 4, len(meta)) + meta + image
    raise AssertionError(f"unexpected binary type {kind}")


def check_text_message(entry: dict[str, Any]) -> Event:
    frame = json.dumps({"type": entry["type"], "data": entry["data"]})
    event = decode_text(frame)
    data = entry["data"]
    assert type(event) is EXPECTED_CLASS[entry["type"]]
    assert event.type == entry["type"]
    assert event.prompt_id == data.get("prompt_id")
    assert event.attributed is False
    if isinstance(event, StatusEvent):
        assert event.queue_remaining == data["status"]["exec_info"]["queue_remaining"]
        assert event.sid == data.get("sid")
    elif isinstance(event, FeatureFlagsEvent):
        assert event.supports_preview_metadata is True
        assert event.max_upload_size == data["max_upload_size"]
    elif isinstance(event, ExecutionStartEvent | ExecutionSuccessEvent):
        assert event.timestamp == data["timestamp"]
    elif isinstance(event, ExecutionCachedEvent):
        assert list(event.nodes) == data["nodes"]
    elif isinstance(event, ExecutingEvent):
        assert event.node == data["node"]
        assert event.display_node == data.get("display_node")
        assert event.finished is (data["node"] is None)
        assert event.is_reconnect_notice is False
    elif isinstance(event, ProgressEvent):
        assert (event.value, event.max, event.node) == (data["value"], data["max"], data["node"])
    elif isinstance(event, ProgressStateEvent):
        assert set(event.nodes) == set(data["nodes"])
        for node_id, raw in data["nodes"].items():
            got = event.nodes[node_id]
            assert (got.node_id, got.value, got.max, got.state) == (
                raw["node_id"],
                raw["value"],
                raw["max"],
                raw["state"],
            )
            assert got.display_node_id == raw["display_node_id"]
            assert got.parent_node_id == raw["parent_node_id"]
            assert got.real_node_id == raw["real_node_id"]
    elif isinstance(event, ExecutedEvent):
        assert event.node == data["node"]
        assert event.output == data["output"]
    elif isinstance(event, ExecutionErrorEvent):
        assert event.node_id == data["node_id"]
        assert event.node_type == data["node_type"]
        assert list(event.executed) == data["executed"]
        assert event.exception_type == data["exception_type"]
        assert event.exception_message == data["exception_message"]
        assert list(event.traceback) == data["traceback"]
        assert event.current_inputs == data["current_inputs"]
        assert event.timestamp == data["timestamp"]
        assert event.blocked is False
    elif isinstance(event, ExecutionInterruptedEvent):
        assert (event.node_id, event.node_type) == (data["node_id"], data["node_type"])
        assert list(event.executed) == data["executed"]
    return event


def check_binary_frame(entry: dict[str, Any]) -> Event:
    frame = rebuild_binary(entry)
    event = decode_binary(frame)
    if entry["event"] == 3:
        assert isinstance(event, TextEvent)
        assert len(frame) == entry["len"]
        assert (event.node_id, event.text) == (entry["node_id"], entry["text"])
        assert event.prompt_id is None
        return event
    assert isinstance(event, PreviewEvent)
    assert event.image.startswith(bytes.fromhex(entry["image_magic"]))
    assert event.binary_type == entry["event"]
    if entry["event"] == BINARY_PREVIEW_IMAGE:
        assert len(frame) == entry["len"]
        assert event.image_format == entry["image_format"]
        assert event.mime_type == "image/png"
        assert event.prompt_id is None
        assert event.node_id is None
        assert event.size == entry["len"] - 8
    else:
        meta = entry["metadata"]
        assert event.mime_type == meta["image_type"]
        assert event.prompt_id == meta["prompt_id"]
        assert event.node_id == meta["node_id"]
        assert event.display_node_id == meta["display_node_id"]
        assert event.parent_node_id == meta["parent_node_id"]
        assert event.real_node_id == meta["real_node_id"]
        assert event.metadata == meta
    return event


@pytest.mark.parametrize("name", TRACE_NAMES)
def test_every_recorded_message_decodes(name: str) -> None:
    trace = load_trace(name)
    seen: list[Event] = []
    for entry in trace["ws"]:
        if entry.get("binary"):
            seen.append(check_binary_frame(entry))
        else:
            seen.append(check_text_message(entry))
    assert seen, "trace without websocket messages"
    # The first message is always the on-connect status naming our client id.
    first = seen[0]
    assert isinstance(first, StatusEvent)
    assert first.sid == trace["client_id"]
    if name != "badprompt":
        # Each prompt ends with the completion signal (only status broadcasts may follow).
        last = [e for e in seen if not isinstance(e, StatusEvent)][-1]
        assert isinstance(last, ExecutingEvent)
        assert last.finished


def test_traces_cover_every_documented_type() -> None:
    kinds: set[str] = set()
    for name in TRACE_NAMES:
        for entry in load_trace(name)["ws"]:
            kinds.add(f"binary{entry['event']}" if entry.get("binary") else entry["type"])
    # Everything but "logs" (no trace subscribes to logs) appears in the recordings.
    assert kinds >= (set(EXPECTED_CLASS) - {"logs"}) | {"binary1", "binary3", "binary4"}


def test_recorded_type4_frame_length_matches_server_serialization() -> None:
    entry = next(e for e in load_trace("basic_flags")["ws"] if e.get("event") == 4)
    noflags = next(e for e in load_trace("basic_noflags")["ws"] if e.get("event") == 1)
    # Same 64x64 PNG (give or take one byte of zlib output) in both runs.
    meta_len = len(json.dumps(entry["metadata"]).encode())
    assert abs(entry["len"] - (8 + meta_len + noflags["len"] - 8)) <= 2


# -- JSON edge cases -----------------------------------------------------------------------


def test_logs_message() -> None:
    event = decode_text(
        json.dumps(
            {
                "type": "logs",
                "data": {
                    "entries": [{"t": "2025-01-01T00:00:00", "m": "hello\n"}, "junk"],
                    "size": {"cols": 80, "rows": 24},
                },
            }
        )
    )
    assert isinstance(event, LogsEvent)
    assert [(e.t, e.m) for e in event.entries] == [("2025-01-01T00:00:00", "hello\n")]
    assert event.size == {"cols": 80, "rows": 24}
    assert event.prompt_id is None


def test_reconnect_variant_of_executing_has_no_prompt() -> None:
    event = decode_text('{"type": "executing", "data": {"node": "4"}}')
    assert isinstance(event, ExecutingEvent)
    assert event.prompt_id is None
    assert event.node == "4"
    assert event.finished is False
    assert event.is_reconnect_notice is True


def test_execution_blocked_variant() -> None:
    event = decode_text(
        json.dumps(
            {
                "type": "execution_error",
                "data": {
                    "prompt_id": "p",
                    "node_id": "5",
                    "node_type": "TestExecutionBlocker",
                    "executed": [],
                    "exception_message": "blocked",
                    "exception_type": "ExecutionBlocked",
                    "traceback": [],
                    "current_inputs": [],
                    "current_outputs": [],
                },
            }
        )
    )
    assert isinstance(event, ExecutionErrorEvent)
    assert event.blocked is True
    assert event.timestamp is None
    assert event.current_inputs == {}


def test_unknown_type_passes_through_with_its_data() -> None:
    event = decode_text(
        '{"type": "assets.seed.progress", "data": {"phase": "scan", "prompt_id": "p1"}}'
    )
    assert isinstance(event, UnknownEvent)
    assert event.type == "assets.seed.progress"
    assert event.data == {"phase": "scan", "prompt_id": "p1"}
    assert event.prompt_id == "p1"


def test_unknown_type_with_non_object_data() -> None:
    event = decode_text('{"type": "custom", "data": [1, 2]}')
    assert isinstance(event, UnknownEvent)
    assert event.data == [1, 2]


def test_known_type_without_data_uses_defaults() -> None:
    event = decode_text('{"type": "progress"}')
    assert isinstance(event, ProgressEvent)
    assert (event.value, event.max, event.node, event.prompt_id) == (0, 0, None, None)


def test_numeric_ids_and_float_progress_are_tolerated() -> None:
    event = decode_text(
        '{"type": "progress", "data": {"value": 0.25, "max": 0.5, "node": 7, "prompt_id": "p"}}'
    )
    assert isinstance(event, ProgressEvent)
    assert (event.value, event.max, event.node) == (0.25, 0.5, "7")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"data": {}}', "no string 'type'"),
        ('{"type": 3, "data": {}}', "no string 'type'"),
    ],
)
def test_malformed_text_frames_are_kept(frame: str, reason: str) -> None:
    event = decode_text(frame)
    assert isinstance(event, MalformedFrameEvent)
    assert reason in event.reason
    assert event.raw == frame


def test_feature_flags_without_fields() -> None:
    event = decode_text('{"type": "feature_flags", "data": {"max_upload_size": true}}')
    assert isinstance(event, FeatureFlagsEvent)
    assert event.supports_preview_metadata is False
    assert event.max_upload_size is None


# -- binary edge cases ---------------------------------------------------------------------


def test_type1_jpeg_and_unknown_format() -> None:
    jpeg = decode_binary(struct.pack(">II", 1, 1) + b"\xff\xd8\xffdata")
    assert isinstance(jpeg, PreviewEvent)
    assert (jpeg.mime_type, jpeg.image_format, jpeg.format_code) == ("image/jpeg", "JPEG", 1)
    assert jpeg.image == b"\xff\xd8\xffdata"
    odd = decode_binary(struct.pack(">II", 1, 9) + b"x")
    assert isinstance(odd, PreviewEvent)
    assert (odd.mime_type, odd.image_format, odd.format_code) == (
        "application/octet-stream",
        "UNKNOWN",
        9,
    )


def test_type4_without_image_type_and_memoryview_input() -> None:
    meta = json.dumps({"node_id": "9", "prompt_id": "p"}).encode()
    frame = struct.pack(">II", 4, len(meta)) + meta + PNG_MAGIC
    event = decode_binary(memoryview(frame))  # type: ignore[arg-type]
    assert isinstance(event, PreviewEvent)
    assert event.mime_type == "application/octet-stream"
    assert (event.prompt_id, event.node_id, event.image) == ("p", "9", PNG_MAGIC)


def test_large_binary_frame() -> None:
    image = PNG_MAGIC + bytes(12 * 1024 * 1024)
    event = decode_binary(struct.pack(">II", 1, 2) + image)
    assert isinstance(event, PreviewEvent)
    assert event.size == len(image)


def test_unknown_binary_type() -> None:
    event = decode_binary(struct.pack(">I", 2) + b"payload")
    assert isinstance(event, UnknownBinaryEvent)
    assert (event.type, event.binary_type, event.payload) == ("binary", 2, b"payload")


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00\x00\x01",
        struct.pack(">I", 1),
        struct.pack(">I", 3) + b"\x00",
        struct.pack(">II", 3, 10) + b"abc",
        struct.pack(">II", 4, 50) + b"{}",
        struct.pack(">II", 4, 3) + b"{x}" + PNG_MAGIC,
        struct.pack(">II", 4, 2) + b"[]" + PNG_MAGIC,
        struct.pack(">II", 3, 1) + b"\xff" + b"text",
    ],
)
def test_malformed_binary_frames_are_kept(frame: bytes) -> None:
    event = decode_binary(frame)
    assert isinstance(event, MalformedFrameEvent)
    assert event.raw == frame
    assert event.reason


def test_events_are_immutable_and_client_events_have_types() -> None:
    event = decode_text('{"type": "executing", "data": {"node": null, "prompt_id": "p"}}')
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.prompt_id = "q"  # type: ignore[misc]
    assert ConnectionEvent(state="reconnecting", attempt=2).type == "connection"
    assert ReconnectedEvent(prompt_id="p").type == "reconnected"
    assert PreviewEvent().type == "preview"
    assert TextEvent(node_id="1", text="x").type == "text"

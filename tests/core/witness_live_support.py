"""Shared pieces of the live ``Witness`` tests (test_witness_live.py, test_execute_*_live.py).

Fixtures (import ``*_fixture`` into a test module to use them under the name before it):

* ``kit`` — one :class:`~witness.Witness` per module on the session's server (websocket
  executor by default; pass ``executor=`` per call).
* ``server_state`` — module-scoped and autouse where imported: after the module, waits for the
  queue to drain, then removes every history entry, output file and uploaded input file the
  module created (found by difference with the state before it).
* ``file_server`` — a local ``http.server`` thread serving a temporary folder (URL sources and
  URL media values).

Helpers: tiny generated media (PNG, WAV), a PNG pixel reader (no Pillow needed), tiny
workflows, and snapshots of the queue and history to assert that nothing was submitted.
"""

from __future__ import annotations

import functools
import http.server
import io
import math
import random
import shutil
import struct
import tempfile
import threading
import time
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.comfyui_server import ComfyServer
from witness import Witness
from witness.config.settings import Settings

MEDIA = Path(__file__).resolve().parent.parent / "fixtures" / "media"
DRAIN_LIMIT = 60.0


# --------------------------------------------------------------------------------------------
# Media
# --------------------------------------------------------------------------------------------


def wav(seconds: float = 0.25, rate: int = 8000, freq: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV with a sine tone (made with the stdlib ``wave`` module)."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
        for i in range(int(rate * seconds))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


@dataclass(frozen=True)
class Pixels:
    """A decoded PNG: size and rows of pixel tuples."""

    width: int
    height: int
    channels: int
    rows: list[list[tuple[int, ...]]]

    def at(self, x: int, y: int) -> tuple[int, ...]:
        return self.rows[y][x]

    def colours(self) -> set[tuple[int, ...]]:
        return {p for row in self.rows for p in row}


_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def read_png(data: bytes) -> Pixels:
    """Decode an 8-bit, non-interlaced PNG (what ComfyUI writes) into pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8, depth
    assert interlace == 0, interlace
    assert colour in _CHANNELS, colour
    channels = _CHANNELS[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    rows: list[list[tuple[int, ...]]] = []
    offset = 0
    for _ in range(height):
        method = raw[offset]
        line = bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if method == 1:
                line[i] = (line[i] + left) & 0xFF
            elif method == 2:
                line[i] = (line[i] + up) & 0xFF
            elif method == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif method == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[x : x + channels]) for x in range(0, stride, channels)])
        previous = line
    return Pixels(width, height, channels, rows)


# --------------------------------------------------------------------------------------------
# Workflows
# --------------------------------------------------------------------------------------------


def rand_color() -> int:
    """A random EmptyImage colour (keeps the server's cache from skipping a run)."""
    return random.randint(1, 0xFFFFFE)


def rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF


def text_workflow() -> dict[str, Any]:
    """Two strings set by one param ``word``, joined with ``delimiter``; two outputs share
    the name ``joined`` (the join first, then the first string alone)."""
    return {
        "1": {
            "class_type": "PrimitiveString",
            "inputs": {"value": "one"},
            "_meta": {"title": "First, $word.value"},
        },
        "2": {
            "class_type": "PrimitiveString",
            "inputs": {"value": "two"},
            "_meta": {"title": "Second, $word.value"},
        },
        "3": {
            "class_type": "StringConcatenate",
            "inputs": {"string_a": ["1", 0], "string_b": ["2", 0], "delimiter": "+"},
            "_meta": {"title": "Join, $delimiter"},
        },
        "4": {
            "class_type": "PreviewAny",
            "inputs": {"source": ["3", 0]},
            "_meta": {"title": "$output.joined"},
        },
        "5": {
            "class_type": "PreviewAny",
            "inputs": {"source": ["1", 0]},
            "_meta": {"title": "Also, $output.joined"},
        },
    }


def image_workflow(*, prefix: str = "witness_live") -> dict[str, Any]:
    """EmptyImage (``Size, $width!, $height!`` and ``$color``) -> SaveImage ``$output.image``."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            "_meta": {"title": "Size, $width!, $height!, $color"},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": prefix},
            "_meta": {"title": "$output.image"},
        },
    }


def load_image_workflow(title: str = "Photo, $photo.~image!") -> dict[str, Any]:
    """LoadImage (media param) -> PreviewImage ``$output.copy``."""
    return {
        "1": {
            "class_type": "LoadImage",
            "inputs": {"image": "placeholder.png"},
            "_meta": {"title": title},
        },
        "2": {
            "class_type": "PreviewImage",
            "inputs": {"images": ["1", 0]},
            "_meta": {"title": "$output.copy"},
        },
    }


def sleep_workflow(seconds: float = 5.0) -> dict[str, Any]:
    """EmptyImage -> SaveImage ``before`` (runs first), and -> TestSleep(``$seconds``) ->
    SaveImage ``after``. TestSleep reports progress every 10 ms (so it is interruptible)."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            "_meta": {"title": "$color"},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "witness_before"},
            "_meta": {"title": "$output.before"},
        },
        "3": {
            "class_type": "TestSleep",
            "inputs": {"value": ["1", 0], "seconds": seconds},
            "_meta": {"title": "Nap, $seconds"},
        },
        "4": {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": "witness_after"},
            "_meta": {"title": "$output.after"},
        },
    }


# --------------------------------------------------------------------------------------------
# Server state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What the server holds: history ids, queued ids, input files."""

    history: frozenset[str]
    queue: frozenset[str]
    inputs: frozenset[str]


def snapshot(kit: Witness, server: ComfyServer | None) -> Snapshot:
    state = kit.queue.get()
    queued = {item.prompt_id for item in (*state.running, *state.pending)}
    inputs: set[str] = set()
    if server is not None:
        inputs = {str(p.relative_to(server.input_dir)) for p in server.input_dir.rglob("*")}
    return Snapshot(frozenset(kit.history.get_all()), frozenset(queued), frozenset(inputs))


def wait_idle(kit: Witness, limit: float = DRAIN_LIMIT) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if len(kit.queue.get()) == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"the server's queue did not drain within {limit} s")


def wait_history(kit: Witness, prompt_id: str, limit: float = DRAIN_LIMIT) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if kit.history.get(prompt_id) is not None:
            return
        time.sleep(0.05)
    pytest.fail(f"no history entry for {prompt_id} within {limit} s")


@pytest.fixture(scope="module", name="kit")
def kit_fixture(comfy_url: str) -> Iterator[Witness]:
    """One Witness for the module."""
    settings = Settings(api_url=comfy_url, read_timeout=60.0, retries=1, retry_backoff=0.05)
    with Witness(settings=settings, timeout=120.0) as client:
        yield client


@pytest.fixture(scope="module", autouse=True, name="server_state")
def server_state_fixture(kit: Witness, comfy_server: ComfyServer | None) -> Iterator[Snapshot]:
    """Remove what the module created: history entries, their output files, uploads."""
    before = snapshot(kit, comfy_server)
    yield before
    wait_idle(kit)
    history = kit.history.get_all()
    new_ids = [pid for pid in history if pid not in before.history]
    if comfy_server is not None:
        roots = {"output": comfy_server.output_dir, "temp": comfy_server.temp_dir}
        for pid in new_ids:
            for file in history[pid].output_files():
                root = roots.get(file.ref.type)
                if root is not None:
                    (root / file.ref.subfolder / file.ref.filename).unlink(missing_ok=True)
        for path in sorted(comfy_server.input_dir.rglob("*"), reverse=True):
            if str(path.relative_to(comfy_server.input_dir)) in before.inputs:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    if new_ids:
        kit.history.delete(new_ids)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class FileServer:
    """A local HTTP server: put files in ``root``; ``url(name)`` is their address."""

    root: Path
    base: str

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)


@pytest.fixture(scope="module", name="file_server")
def file_server_fixture() -> Iterator[FileServer]:
    root = Path(tempfile.mkdtemp(prefix="witness-http-"))
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="witness-test-http", daemon=True)
    thread.start()
    try:
        yield FileServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        shutil.rmtree(root, ignore_errors=True)

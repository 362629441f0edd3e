"""A minimal RFC 6455 websocket server on a raw socket (websocket-client has no server side).

Used by the event-rate benchmark: it accepts one client, answers the handshake (and the
client's ``feature_flags`` frame, as ComfyUI does), then sends a prepared burst of frames as
fast as the kernel takes them. It answers pings and the closing handshake.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A final, unmasked server frame."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack(">H", size)
    else:
        head += bytes([127]) + struct.pack(">Q", size)
    return head + payload


def text_frame(message: dict[str, Any]) -> bytes:
    return encode_frame(OP_TEXT, json.dumps(message).encode())


def _read_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def read_frame(conn: socket.socket) -> tuple[int, bytes]:
    """Read one (masked) client frame."""
    b0, b1 = _read_exact(conn, 2)
    size = b1 & 0x7F
    if size == 126:
        (size,) = struct.unpack(">H", _read_exact(conn, 2))
    elif size == 127:
        (size,) = struct.unpack(">Q", _read_exact(conn, 8))
    mask = _read_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytearray(_read_exact(conn, size))
    for i in range(len(data)):
        data[i] ^= mask[i % 4]
    return b0 & 0x0F, bytes(data)


class BurstServer:
    """Serves one websocket client: handshake, then ``burst`` once :meth:`fire` is called.

    Attributes:
        url: ``http://127.0.0.1:<port>`` (witness derives the ``ws://`` URL itself).
        sent_frames: Frames sent in the burst.
    """

    def __init__(self, burst: bytes, frame_count: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._burst = burst
        self.sent_frames = frame_count
        self._go = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def fire(self) -> None:
        self._go.set()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                key = ""
                for line in request.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "sec-websocket-key":
                        key = value.strip()
                accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()  # noqa: S324
                conn.sendall(
                    (
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                    ).encode()
                )
                read_frame(conn)  # the client's feature_flags
                conn.sendall(
                    text_frame({"type": "status", "data": {"status": {"exec_info": {}}}})
                    + text_frame(
                        {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
                    )
                )
                self.ready.set()
                self._go.wait(60)
                conn.sendall(self._burst)
                while True:
                    opcode, data = read_frame(conn)
                    if opcode == OP_PING:
                        conn.sendall(encode_frame(OP_PONG, data))
                    elif opcode == OP_CLOSE:
                        conn.sendall(encode_frame(OP_CLOSE, data[:2]))
                        return
        except (ConnectionError, OSError) as exc:
            self.error = exc
        finally:
            self.ready.set()
            self._sock.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def comfy_burst(prompt_id: str, progress_events: int, preview_every: int = 10) -> tuple[bytes, int]:
    """ComfyUI-shaped frames of one prompt: start, ``progress_events`` progress messages with
    a binary preview (type 1, attributed by the client) every ``preview_every``, and the
    completion ``executing`` with ``node: null``. Returns the bytes and the frame count."""
    frames = [
        text_frame({"type": "execution_start", "data": {"prompt_id": prompt_id, "timestamp": 1}}),
        text_frame(
            {
                "type": "executing",
                "data": {"node": "2", "display_node": "2", "prompt_id": prompt_id},
            }
        ),
    ]
    preview = encode_frame(OP_BINARY, struct.pack(">II", 1, 1) + b"\xff\xd8" + b"\0" * 1024)
    for i in range(progress_events):
        frames.append(
            text_frame(
                {
                    "type": "progress",
                    "data": {
                        "value": i + 1,
                        "max": progress_events,
                        "prompt_id": prompt_id,
                        "node": "2",
                    },
                }
            )
        )
        if preview_every and i % preview_every == 0:
            frames.append(preview)
    frames.append(
        text_frame(
            {
                "type": "executing",
                "data": {"node": None, "display_node": None, "prompt_id": prompt_id},
            }
        )
    )
    return b"".join(frames), len(frames)

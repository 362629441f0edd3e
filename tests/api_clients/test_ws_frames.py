"""FrameReader: the server's frames cut out of a buffered socket (RFC 6455, section 5)."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from witness.api_clients.ws_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
)


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None, rsv: int = 0
) -> bytes:
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if mask is None:
        return header + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, server = socket.socketpair()
    ours.settimeout(2.0)
    try:
        yield ours, server
    finally:
        ours.close()
        server.close()


def send_later(sock: socket.socket, data: bytes) -> threading.Thread:
    thread = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    thread.start()
    return thread


def test_text_and_binary_frames_in_one_burst_come_out_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, server = pair
    messages = [(OP_TEXT, f'{{"n": {i}}}'.encode()) for i in range(3000)]
    messages.insert(1500, (OP_BINARY, os.urandom(300)))
    writer = send_later(server, b"".join(frame(op, data) for op, data in messages))
    reader = FrameReader(ours)
    assert [reader.read() for _ in messages] == messages
    writer.join()
    assert reader.buffered == 0


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 3 * 1024 * 1024 + 7])
def test_every_length_encoding(pair: tuple[socket.socket, socket.socket], size: int) -> None:
    ours, server = pair
    payload = os.urandom(size)
    writer = send_later(server, frame(OP_BINARY, payload) + frame(OP_TEXT, b"after"))
    reader = FrameReader(ours)
    assert reader.read() == (OP_BINARY, payload)
    assert reader.read() == (OP_TEXT, b"after")
    writer.join()


def test_masked_frames_are_unmasked(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, server = pair
    payload = b'{"type": "status", "data": {}}' * 7
    server.sendall(
        frame(OP_TEXT, payload, mask=b"\x01\x80\xfe\x37") + frame(OP_TEXT, b"", mask=b"abcd")
    )
    reader = FrameReader(ours)
    assert reader.read() == (OP_TEXT, payload)
    assert reader.read() == (OP_TEXT, b"")


def test_fragments_are_joined_and_control_frames_may_come_between(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, server = pair
    server.sendall(
        frame(OP_TEXT, b"hel", fin=False)
        + frame(OP_PING, b"p")
        + frame(OP_CONT, b"lo ", fin=False)
        + frame(OP_PONG, b"")
        + frame(OP_CONT, b"world")
        + frame(OP_CLOSE, struct.pack("!H", 1000))
    )
    reader = FrameReader(ours)
    assert reader.read() is None
    assert reader.read() == (OP_PING, b"p")
    assert reader.read() is None
    assert reader.read() == (OP_PONG, b"")
    assert reader.read() == (OP_TEXT, b"hello world")
    assert reader.read() == (OP_CLOSE, b"\x03\xe8")


def test_a_timeout_mid_frame_resumes_where_it_stopped(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, server = pair
    ours.settimeout(0.05)
    data = frame(OP_TEXT, b"x" * 1000) + frame(OP_TEXT, b"next")
    reader = FrameReader(ours)
    for cut in (1, 3, 500):  # inside the header, the extended length, the payload
        server.sendall(data[:cut])
        with pytest.raises(websocket.WebSocketTimeoutException):
            reader.read()
        server.sendall(data[cut:])
        assert reader.read() == (OP_TEXT, b"x" * 1000)
        assert reader.read() == (OP_TEXT, b"next")


def test_the_server_closing_the_connection(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, server = pair
    server.sendall(frame(OP_TEXT, b"last") + frame(OP_TEXT, b"cut short")[:4])
    server.close()
    reader = FrameReader(ours)
    assert reader.read() == (OP_TEXT, b"last")
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        reader.read()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (frame(OP_TEXT, b"x", rsv=0x40), "reserved bits"),
        (frame(0x3, b"x"), "unknown opcode"),
        (frame(OP_PING, b"x" * 126), "control frame"),
        (frame(OP_PING, b"x", fin=False), "control frame"),
        (frame(OP_CONT, b"x"), "continuation frame without"),
        (frame(OP_TEXT, b"a", fin=False) + frame(OP_BINARY, b"b"), "new message started"),
    ],
)
def test_protocol_violations_are_refused(
    pair: tuple[socket.socket, socket.socket], data: bytes, match: str
) -> None:
    ours, server = pair
    server.sendall(data)
    reader = FrameReader(ours)

    def read_all() -> None:
        while True:
            reader.read()

    with pytest.raises(websocket.WebSocketProtocolException, match=match):
        read_all()


# -- over TLS (the reader receives from an SSLSocket as from a plain one) -------------------

TLS = Path(__file__).resolve().parents[1] / "fixtures" / "tls"


@pytest.fixture
def tls_pair() -> Iterator[tuple[ssl.SSLSocket, ssl.SSLSocket]]:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
    client_context = ssl.create_default_context(cafile=str(TLS / "cert.pem"))
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[ssl.SSLSocket] = []

    def accept() -> None:
        conn, _ = listener.accept()
        accepted.append(server_context.wrap_socket(conn, server_side=True))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    raw = socket.create_connection(listener.getsockname(), timeout=5)
    ours = client_context.wrap_socket(raw, server_hostname="127.0.0.1")
    thread.join(5)
    try:
        yield ours, accepted[0]
    finally:
        ours.close()
        accepted[0].close()
        listener.close()


def test_frames_over_tls_with_a_timeout_mid_frame(
    tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket],
) -> None:
    ours, server = tls_pair
    ours.settimeout(0.05)
    reader = FrameReader(ours)
    burst = b"".join(frame(OP_TEXT, f"{i}".encode()) for i in range(500))
    big = os.urandom(200_000)
    server.sendall(burst + frame(OP_BINARY, big)[:1000])
    assert [reader.read() for _ in range(500)] == [(OP_TEXT, f"{i}".encode()) for i in range(500)]
    with pytest.raises(websocket.WebSocketTimeoutException):
        reader.read()
    server.sendall(frame(OP_BINARY, big)[1000:])
    ours.settimeout(5)
    assert reader.read() == (OP_BINARY, big)
    server.close()
    with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
        reader.read()

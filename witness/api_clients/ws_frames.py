"""Buffered reading of the frames a websocket server sends (RFC 6455, section 5).

websocket-client reads every frame with two or three ``recv`` calls (header, length, payload)
and about twenty Python calls; a ComfyUI prompt sends a burst of small frames, so the receive
thread spent ~23 µs per frame there, on a core the server needs. :class:`FrameReader` reads
the socket in large chunks and cuts frames out of its buffer (~3 µs per frame). The
handshake, sending, pings and close stay with websocket-client.

Rules kept (those websocket-client applies to a server's frames): reserved bits must be
clear (no extension is negotiated), control frames are final and at most 125 bytes, a
continuation needs a message in progress and a new message must not start inside one;
anything else is a :class:`websocket.WebSocketProtocolException`. A masked frame (which a
server must not send) is unmasked, as websocket-client does. Text is not checked for UTF-8
here: the caller decodes it (which checks it).
"""

from __future__ import annotations

import socket

import websocket

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameReader",
]

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_DATA = frozenset({OP_TEXT, OP_BINARY})
_CONTROL = frozenset({OP_CLOSE, OP_PING, OP_PONG})

_CHUNK = 1 << 16  # bytes asked of the socket per recv


class FrameReader:
    """Reads whole messages and control frames from a connected socket.

    Not thread-safe: one receive thread per socket. A timeout leaves what was received so
    far in the buffer, and the next :meth:`read` goes on from there.

    Args:
        sock: The connected (plain or TLS) socket, after the HTTP upgrade; its timeout is
            the caller's (``settimeout``).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._pos = 0  # start of the first unread frame in _buffer
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as (part of) a frame."""
        return len(self._buffer) - self._pos

    def read(self) -> tuple[int, bytes] | None:
        """Read one frame.

        Returns:
            ``(opcode, payload)`` of a complete message (text or binary, fragments joined)
            or of a control frame (close, ping, pong); ``None`` after a fragment that does
            not end its message.

        Raises:
            websocket.WebSocketTimeoutException: Nothing complete arrived within the
                socket's timeout.
            websocket.WebSocketConnectionClosedException: The server closed the TCP
                connection.
            websocket.WebSocketProtocolException: The frame breaks the protocol.
            OSError: The socket failed.
        """
        opcode, final, payload = self._next_frame()
        if opcode in _CONTROL:
            return opcode, payload
        if opcode == OP_CONT:
            if not self._fragments:
                raise websocket.WebSocketProtocolException(
                    "continuation frame without a message in progress"
                )
            self._fragments.append(payload)
            if not final:
                return None
            message = b"".join(self._fragments)
            self._fragments = []
            return self._fragment_opcode, message
        if self._fragments:
            raise websocket.WebSocketProtocolException(
                "a new message started before the previous one was complete"
            )
        if final:
            return opcode, payload
        self._fragments = [payload]
        self._fragment_opcode = opcode
        return None

    # -- internals -------------------------------------------------------------------------

    def _next_frame(self) -> tuple[int, bool, bytes]:
        buffer = self._buffer  # the same object throughout (grown and cut in place)
        start = self._pos
        self._fill(start + 2)
        first, second = buffer[start], buffer[start + 1]
        if first & 0x70:
            raise websocket.WebSocketProtocolException(
                f"reserved bits set ({first & 0x70:#x}) without a negotiated extension"
            )
        opcode = first & 0x0F
        final = bool(first & 0x80)
        if opcode not in _DATA and opcode not in _CONTROL and opcode != OP_CONT:
            raise websocket.WebSocketProtocolException(f"unknown opcode {opcode:#x}")
        length = second & 0x7F
        header = 2
        if length == 126:
            header = 4
        elif length == 127:
            header = 10
        masked = bool(second & 0x80)
        if masked:
            header += 4
        self._fill(start + header)
        if length == 126:
            length = int.from_bytes(buffer[start + 2 : start + 4], "big")
        elif length == 127:
            length = int.from_bytes(buffer[start + 2 : start + 10], "big")
        if opcode in _CONTROL and (not final or length > 125):
            raise websocket.WebSocketProtocolException(
                "a control frame must be final and at most 125 bytes"
            )
        self._fill(start + header + length)
        body = start + header
        payload = bytes(buffer[body : body + length])
        if masked:
            payload = _unmask(bytes(buffer[body - 4 : body]), payload)
        self._consume(body + length)
        return opcode, final, payload

    def _fill(self, size: int) -> None:
        """Receive until the buffer holds ``size`` bytes (counted from its start)."""
        while len(self._buffer) < size:
            try:
                chunk = self._sock.recv(max(_CHUNK, size - len(self._buffer)))
            except TimeoutError as exc:
                raise websocket.WebSocketTimeoutException(str(exc) or "timed out") from exc
            if not chunk:
                raise websocket.WebSocketConnectionClosedException(
                    "the server closed the TCP connection"
                )
            self._buffer += chunk

    def _consume(self, end: int) -> None:
        """Drop everything before ``end``; compact the buffer once it is mostly read."""
        if end >= len(self._buffer):
            self._buffer.clear()
            self._pos = 0
        elif end > _CHUNK:
            del self._buffer[:end]
            self._pos = 0
        else:
            self._pos = end


def _unmask(key: bytes, payload: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``key`` (one big-integer XOR)."""
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    value = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return value.to_bytes(len(payload), "little")

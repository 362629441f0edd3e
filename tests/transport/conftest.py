"""Real-socket servers for the transport tests: one per failure kind."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest


def _serve(handler: Callable[[socket.socket], None]) -> Iterator[str]:
    """Accept connections on a loopback port and hand each to ``handler`` in a thread."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts, reads the request, and never answers."""

    def hold(conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            conn.recv(65536)
        except OSError:
            return

    yield from _serve(hold)


@pytest.fixture
def closing_url() -> Iterator[str]:
    """A server that accepts, reads the request, then closes without answering."""

    def close(conn: socket.socket) -> None:
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            conn.recv(65536)
        conn.close()

    yield from _serve(close)


@dataclass
class Recorder:
    """What a :func:`http_server` saw, and what it should answer.

    Attributes:
        url: The server's base URL.
        seen: ``(path, headers)`` of every request.
        routes: path → ``(status, headers, body)``.
    """

    url: str = ""
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)


@pytest.fixture
def http_server() -> Iterator[Callable[[], Recorder]]:
    """``http_server() -> Recorder``: plain HTTP servers on their own ports (own origins)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def make() -> Recorder:
        recorder = Recorder()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                recorder.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = recorder.routes.get(path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return recorder

    try:
        yield make
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()

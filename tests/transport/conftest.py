"""Real-socket servers for the transport tests: one per failure kind."""

from __future__ import annotations

import contextlib
import http.server
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.reliability.conftest import free_url

__all__ = ["free_url"]  # a URL where nothing listens (connection refused)


class _Silent(socketserver.BaseRequestHandler):
    """Reads whatever comes and never answers, until the client goes away."""

    def handle(self) -> None:
        self.request.settimeout(0.2)
        while True:
            try:
                if not self.request.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


class _Closing(socketserver.BaseRequestHandler):
    """Reads the request, then closes without answering."""

    def handle(self) -> None:
        self.request.settimeout(5)
        with contextlib.suppress(OSError):
            self.request.recv(65536)


@contextlib.contextmanager
def _serve(
    handler: type[socketserver.BaseRequestHandler],
    kind: type[socketserver.ThreadingTCPServer] = socketserver.ThreadingTCPServer,
) -> Iterator[str]:
    """Run a loopback server with ``handler`` until the block ends; yields its URL."""
    server = kind(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts, reads the request, and never answers."""
    with _serve(_Silent) as url:
        yield url


@pytest.fixture
def closing_url() -> Iterator[str]:
    """A server that accepts, reads the request, then closes without answering."""
    with _serve(_Closing) as url:
        yield url


@dataclass
class Recorder:
    """What a :func:`http_server` saw, and what it should answer.

    Attributes:
        url: The server's base URL.
        seen: ``(path, headers)`` of every request.
        bodies: The body of every request that had one.
        routes: path → ``(status, headers, body)``.
    """

    url: str = ""
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)


@pytest.fixture
def http_server() -> Iterator[Callable[[], Recorder]]:
    """``http_server() -> Recorder``: plain HTTP servers on their own ports (own origins)."""
    with contextlib.ExitStack() as running:

        def make() -> Recorder:
            recorder = Recorder()

            class Handler(http.server.BaseHTTPRequestHandler):
                def log_message(self, format: str, *args: Any) -> None:
                    pass

                def do_GET(self) -> None:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    recorder.seen.append((self.path, headers))
                    answer = recorder.routes.get(self.path.split("?", 1)[0])
                    status, extra, body = answer or (404, {}, b"not found")
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def do_POST(self) -> None:
                    length = int(self.headers.get("Content-Length") or 0)
                    recorder.bodies.append(self.rfile.read(length))
                    self.do_GET()

            recorder.url = running.enter_context(_serve(Handler, http.server.ThreadingHTTPServer))
            return recorder

        yield make

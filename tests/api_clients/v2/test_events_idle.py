"""An event stream that goes silent: the job is read, and its end reported (a local server)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from witness.api_clients.v2 import JobsClient
from witness.api_clients.v2.types import OutputEvent, StatusEvent
from witness.config.settings import Settings
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient


class _Silent(http.server.BaseHTTPRequestHandler):
    """``/events``: one ``running`` frame, then silence; ``/jobs/j1``: succeeded, one output."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def do_GET(self) -> None:
        if self.path.endswith("/events"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            frame = b'event: status\ndata: {"status":"running"}\n\n'
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
            self.release.wait(10)
            return
        output = {"node_id": "9", "name": "a.png", "type": "image", "id": "asset-9"}
        body = json.dumps({"id": "j1", "status": "succeeded", "outputs": [output]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def silent_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _Silent.release.set()
        server.shutdown()
        server.server_close()


def test_a_silent_stream_ends_with_the_jobs_own_status(silent_server: str) -> None:
    with HttpClient(Settings(api_url=silent_server, retries=0)) as http:
        started = time.monotonic()
        events = list(JobsClient(http).events("j1", deadline=Deadline.after(20), idle_timeout=0.5))
    assert time.monotonic() - started < 5
    assert events[:2] == [StatusEvent("running"), StatusEvent("succeeded")]
    assert isinstance(events[2], OutputEvent)  # the job's outputs follow its end, as on a stream
    assert events[2].output.id == "asset-9"
    assert len(events) == 3

"""V2Backend without a server: Comfy Cloud's API key, where it is sent, previews, shapes."""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from tests.support.images import png
from witness.backends.base import PreparedWorkflow, WaitCallbacks
from witness.backends.v2 import COMFY_CLOUD_URL, V2Backend, resolve_comfy_api_key
from witness.config.settings import Settings
from witness.core import dsl
from witness.core.tracking import Preview, ProgressUpdate
from witness.errors import ConfigError
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

KEY = "comfy-cloud-key-0123456789"
JOBS = COMFY_CLOUD_URL + "/api/v2/jobs"


def test_comfy_cloud_without_a_key_fails_before_any_request(tmp_path: Path) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(ConfigError, match="COMFY_API_KEY"):
            V2Backend.comfy_cloud(environ={}, dotenv_path=tmp_path / "missing.env")
        with pytest.raises(ConfigError, match="needs an API key"):
            V2Backend(HttpClient(Settings(api_url="https://CLOUD.comfy.org:443/")))
        assert len(mock.calls) == 0


def test_api_key_argument_then_environment_then_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("COMFY_API_KEY=from-dotenv-key\n")
    env = {"COMFY_API_KEY": "from-env-key"}
    assert resolve_comfy_api_key("given-key", environ=env, dotenv_path=dotenv) == "given-key"
    assert resolve_comfy_api_key(environ=env, dotenv_path=dotenv) == "from-env-key"
    assert resolve_comfy_api_key(environ={}, dotenv_path=dotenv) == "from-dotenv-key"
    assert resolve_comfy_api_key(environ={}, dotenv_path=None) is None
    backend = V2Backend.comfy_cloud(environ={}, dotenv_path=dotenv)
    assert backend.http.settings.api_key == "from-dotenv-key"
    assert "from-dotenv-key" not in repr(backend)
    assert "from-dotenv-key" not in repr(backend.http.settings)
    backend.close()
    backend.close()  # twice is fine


def job(job_id: str, status: str, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": job_id, "status": status, "outputs": outputs or []}


@responses.activate
def test_progress_and_preview_callbacks_from_the_event_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    image = png(2, 2)
    output = {
        "node_id": "2",
        "name": "out.png",
        "type": "image",
        "content_type": "image/png",
        "id": "asset-1",
        "url": "https://storage.example/signed/out.png?sig=abc",
    }
    responses.post(JOBS, json=job("j1", "queued"), status=201)
    stream = [
        ("status", {"status": "running"}),
        ("progress", {"value": 0.5, "nodes_done": 1, "nodes_total": 2, "current_node": "2"}),
        (
            "preview",
            {
                "node_id": "2",
                "content_type": "image/png",
                "data_base64": base64.b64encode(image).decode(),
            },
        ),
        ("status", {"status": "succeeded"}),
        ("output", output),
    ]
    body = "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in stream)
    responses.get(JOBS + "/j1/events", body=body, content_type="text/event-stream")
    responses.get(JOBS + "/j1", json=job("j1", "running"))  # the one read before the stream
    backend = V2Backend.comfy_cloud(KEY, dotenv_path=None)
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {}},
        "2": {"class_type": "SaveImage", "inputs": {}, "_meta": {"title": "$output.pic"}},
    }
    prepared = PreparedWorkflow(prompt=prompt, signature=dsl.parse(prompt))
    updates: list[ProgressUpdate] = []
    previews: list[Preview] = []
    deadline = Deadline.after(10)
    result = backend.submit(prepared, deadline).wait(
        deadline, WaitCallbacks(on_progress=updates.append, on_preview=previews.append)
    )
    assert result.ok
    assert result.images_by_var == {"pic": [output["url"]]}
    assert [u.overall for u in updates] == [0.5, 1.0]
    assert previews == [Preview("j1", "2", image, "image/png")]
    sent = [c.request for c in responses.calls]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in sent)
    assert all(r.url.startswith(COMFY_CLOUD_URL + "/") for r in sent)  # never the storage URL
    assert KEY not in caplog.text


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request's Authorization header; redirects ``/api/v2/assets/*/content``."""

    seen: list[tuple[str, str | None]]
    redirect_to = ""

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if self.path.endswith("/content") and self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + "/signed/blob")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"data")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def two_origins() -> Iterator[tuple[str, type[_Recorder], type[_Recorder]]]:
    deployment = type("Deployment", (_Recorder,), {"seen": []})
    storage = type("Storage", (_Recorder,), {"seen": []})
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (deployment, storage)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    deployment.redirect_to = f"http://localhost:{servers[1].server_address[1]}"
    try:
        yield f"http://127.0.0.1:{servers[0].server_address[1]}", deployment, storage
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_the_key_never_follows_a_redirect_to_another_origin(
    two_origins: tuple[str, type[_Recorder], type[_Recorder]], tmp_path: Path
) -> None:
    url, deployment, storage = two_origins
    with V2Backend.from_settings(Settings(api_url=url, api_key=KEY)) as backend:
        written = backend.assets.download("asset-1", tmp_path / "x.bin")
    assert written == 4
    assert deployment.seen == [("/api/v2/assets/asset-1/content", f"Bearer {KEY}")]
    assert storage.seen == [("/signed/blob", None)]


def test_the_public_names() -> None:
    import witness

    assert witness.V2Backend is V2Backend
    assert {"V2Backend", "V2Options", "V2ApiError"} <= set(witness.__all__)

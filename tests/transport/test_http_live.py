"""HttpClient against the real ComfyUI test server."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from witness.config.settings import Settings
from witness.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerUnavailableError,
)
from witness.transport.http import HttpClient


@pytest.mark.integration
def test_json_get(http: HttpClient) -> None:
    stats = http.request_json("GET", "/system_stats")
    assert stats["system"]["comfyui_version"] == "0.3.75"
    assert stats["devices"][0]["type"] == "cpu"


@pytest.mark.integration
def test_api_prefix_applies_except_internal(http: HttpClient) -> None:
    assert http.request_json("GET", "/features", api=True)["max_upload_size"] > 0
    assert http.request_json("GET", "/features", api=False)["max_upload_size"] > 0
    assert isinstance(http.request_json("GET", "/internal/folder_paths", api=False), dict)
    with pytest.raises(NotFoundError):
        http.request("GET", "/internal/folder_paths", api=True)


@pytest.mark.integration
def test_404(http: HttpClient) -> None:
    with pytest.raises(NotFoundError) as info:
        http.request("GET", "/models/no_such_folder")
    assert info.value.status == 404
    assert info.value.url.endswith("/api/models/no_such_folder")
    assert "404" in str(info.value)


@pytest.mark.integration
def test_400_with_json_body(http: HttpClient) -> None:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    with pytest.raises(BadRequestError) as info:
        http.request("POST", "/prompt", json={"prompt": prompt, "prompt_id": str(uuid.uuid4())})
    err = info.value
    assert err.status == 400
    assert isinstance(err.body, dict)
    assert err.body["error"]["type"] == "prompt_outputs_failed_validation"
    assert err.body["node_errors"]["1"]["errors"][0]["type"] == "value_smaller_than_min"
    assert "Prompt outputs failed validation" in str(err)


@pytest.mark.integration
def test_413_over_the_max_upload_size(http: HttpClient) -> None:
    limit = http.request_json("GET", "/features")["max_upload_size"]
    body = b"\0" * (limit + 1024)
    with pytest.raises(PayloadTooLargeError) as info:
        http.request(
            "POST",
            "/upload/image",
            files={"image": ("big.png", body, "image/png")},
        )
    assert info.value.status == 413
    assert info.value.limit == limit


@pytest.mark.integration
def test_streamed_download(http: HttpClient, tmp_path: Path) -> None:
    name = f"witness-dl-{uuid.uuid4().hex}.bin"
    payload = bytes(range(256)) * 2000
    stored = http.request_json(
        "POST", "/upload/image", files={"image": (name, payload, "application/octet-stream")}
    )
    assert stored["name"] == name
    target = tmp_path / "copy.bin"
    written = http.download("/view", target, params={"filename": name, "type": "input"})
    assert written == len(payload)
    assert target.read_bytes() == payload
    assert b"".join(http.iter_bytes("/view", params={"filename": f"{name} [input]"})) == payload


def test_connection_error_on_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(api_url=f"http://127.0.0.1:{port}", retries=1, retry_backoff=0.01)
    with HttpClient(settings) as client, pytest.raises(ServerUnavailableError) as info:
        client.request("GET", "/system_stats")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "cannot reach" in str(info.value)


@pytest.mark.integration
def test_read_timeout_against_real_server(http: HttpClient) -> None:
    # /object_info rescans model folders and serialises ~700 KB: never done in 1 ms.
    with pytest.raises(RequestTimeoutError) as info:
        http.request("GET", "/object_info", timeout=(2.0, 0.001))
    assert info.value.phase == "read"
    assert info.value.timeout == 0.001
    assert "/api/object_info" in str(info.value)
    assert "0.001" in str(info.value)


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], held
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_read_timeout_is_not_retried_and_names_url_and_limit(
    silent_server: tuple[int, list[socket.socket]],
) -> None:
    port, connections = silent_server
    settings = Settings(api_url=f"http://127.0.0.1:{port}", read_timeout=0.3, retries=3)
    with HttpClient(settings) as client, pytest.raises(RequestTimeoutError) as info:
        client.request("GET", "/queue")
    assert len(connections) == 1  # one attempt, not four: the server may still be working
    assert f"127.0.0.1:{port}/api/queue" in str(info.value)
    assert "0.3 s" in str(info.value)

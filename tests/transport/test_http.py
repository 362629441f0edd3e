"""HttpClient at the HTTP boundary (``responses``): URLs, auth, errors, retries, streaming."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from tests.transport.conftest import Recorder
from witness.config.settings import Settings
from witness.errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    ResponseDecodeError,
    ServerError,
    ServerUnavailableError,
    TransportError,
    UnauthorizedError,
)
from witness.transport.http import HttpClient
from witness.utils.paths import route

BASE = "http://comfy.test:8188"
KEY = "sk-very-secret-key-123"


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(Settings(api_url=BASE, retries=2, retry_backoff=0.0))


@responses.activate
def test_api_prefix_and_plain_paths(client: HttpClient) -> None:
    responses.get(f"{BASE}/api/system_stats", json={"ok": 1})
    responses.get(f"{BASE}/internal/folder_paths", json={"checkpoints": []})
    assert client.request_json("GET", "/system_stats") == {"ok": 1}
    assert client.request_json("GET", "/internal/folder_paths", api=False) == {"checkpoints": []}


def test_base_path_prefix_is_kept() -> None:
    client = HttpClient(Settings(api_url="https://proxy.test/comfy/"))
    assert client.url("/queue") == "https://proxy.test/comfy/api/queue"
    assert client.url("/internal/logs", api=False) == "https://proxy.test/comfy/internal/logs"


def test_route_quotes_every_segment() -> None:
    assert route("/history/{}", "a/b?c#d") == "/history/a%2Fb%3Fc%23d"
    assert route("/userdata/{}/move/{}", "w/x y.json", "..") == "/userdata/w%2Fx%20y.json/move/.."


@responses.activate
def test_auth_cookies_headers_and_query_params() -> None:
    settings = Settings(
        api_url=BASE,
        api_key=KEY,
        user="alice",
        cookies={"sid": "c1"},
        headers={"X-Extra": "1"},
        query_params={"token": "qtok"},
    )
    responses.get(
        f"{BASE}/api/queue",
        json={},
        match=[
            matchers.header_matcher(
                {"Authorization": f"Bearer {KEY}", "comfy-user": "alice", "X-Extra": "1"}
            ),
            matchers.query_param_matcher({"token": "qtok", "a": "true"}),
        ],
    )
    with HttpClient(settings) as client:
        client.request_json("GET", "/queue", params={"a": True, "skip": None})
        sent = responses.calls[0].request
        assert "sid=c1" in sent.headers["Cookie"]
        assert "Origin" not in sent.headers


@responses.activate
def test_default_and_per_call_timeouts(client: HttpClient) -> None:
    responses.get(f"{BASE}/api/a", json={})
    client.request("GET", "/a")
    client.request("GET", "/a", timeout=2.0)
    client.request("GET", "/a", timeout=(1.0, 99.0))
    timeouts = [call.request.req_kwargs["timeout"] for call in responses.calls]
    assert timeouts == [(5.0, 30.0), (2.0, 2.0), (1.0, 99.0)]


@pytest.mark.parametrize(
    ("status", "body", "ctype", "cls", "message"),
    [
        (404, b"", None, NotFoundError, "Not Found (empty body)"),
        (405, b"405: Method Not Allowed", "text/plain", ApiError, "405: Method Not Allowed"),
        (
            400,
            b'{"error": "Duplicate username."}',
            "application/json",
            BadRequestError,
            "Duplicate username.",
        ),
        (
            400,
            b'{"error": {"type": "x", "message": "Prompt outputs failed validation", '
            b'"details": "", "extra_info": {}}, "node_errors": {}}',
            "application/json",
            BadRequestError,
            "Prompt outputs failed validation",
        ),
        (
            500,
            b"500 Internal Server Error\n\nServer got itself in trouble",
            "text/plain",
            ServerError,
            "500 Internal Server Error — Server got itself in trouble",
        ),
        (
            502,
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "text/html",
            ServerError,
            "502 Bad Gateway",
        ),
        (
            401,
            b"<!DOCTYPE html><html><body><h1>Login required</h1></body></html>",
            "text/html",
            UnauthorizedError,
            "Login required",
        ),
        (403, b"", None, ForbiddenError, "Forbidden (empty body)"),
        (409, b"File already exists", "text/plain", ConflictError, "File already exists"),
        (
            503,
            b'{"error": {"code": "SERVICE_DISABLED", "message": "Assets disabled"}}',
            "application/json",
            ServerError,
            "Assets disabled",
        ),
    ],
)
def test_every_error_body_form_becomes_a_readable_typed_error(
    status: int, body: bytes, ctype: str | None, cls: type[ApiError], message: str
) -> None:
    client = HttpClient(Settings(api_url=BASE, retries=0))
    with responses.RequestsMock() as mock:
        mock.add("POST", f"{BASE}/api/thing", body=body, status=status, content_type=ctype)
        with pytest.raises(cls) as info:
            client.request("POST", "/thing", json={})
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.method == "POST"
    assert err.url == f"{BASE}/api/thing"
    assert message in err.server_message
    assert str(status) in str(err)
    assert message in str(err)


@responses.activate
def test_413_carries_the_server_limit(client: HttpClient) -> None:
    responses.post(
        f"{BASE}/api/upload/image",
        body="Maximum request body size 104857600 exceeded.",
        status=413,
        content_type="text/plain",
    )
    with pytest.raises(PayloadTooLargeError) as info:
        client.request("POST", "/upload/image", data=b"x")
    assert info.value.limit == 104857600
    assert "104857600" in str(info.value)
    assert "100 MiB" in str(info.value)


@pytest.mark.parametrize(
    ("body", "ctype"),
    [(b"<html>proxy login</html>", "text/html"), (b"", None), (b"{broken", "application/json")],
)
def test_non_json_success_is_a_clear_error(body: bytes, ctype: str | None) -> None:
    client = HttpClient(Settings(api_url=BASE))
    with responses.RequestsMock() as mock:
        mock.add("GET", f"{BASE}/api/queue", body=body, status=200, content_type=ctype)
        with pytest.raises(ResponseDecodeError) as info:
            client.request_json("GET", "/queue")
    assert info.value.status == 200
    assert "not JSON" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


@responses.activate
def test_idempotent_requests_are_retried_with_backoff(client: HttpClient) -> None:
    responses.get(f"{BASE}/api/queue", status=503)
    responses.get(f"{BASE}/api/queue", body=requests.ConnectionError("reset"))
    responses.get(f"{BASE}/api/queue", json={"queue_running": []})
    assert client.request_json("GET", "/queue") == {"queue_running": []}
    assert len(responses.calls) == 3


@responses.activate
def test_retries_are_bounded(client: HttpClient) -> None:
    responses.get(f"{BASE}/api/queue", status=503, body="busy")
    with pytest.raises(ServerError):
        client.request("GET", "/queue")
    assert len(responses.calls) == 3  # 1 + retries=2


@responses.activate
def test_post_is_never_retried(client: HttpClient) -> None:
    responses.post(f"{BASE}/api/prompt", status=503)
    with pytest.raises(ServerError):
        client.request("POST", "/prompt", json={"prompt": {}})
    assert len(responses.calls) == 1
    responses.post(f"{BASE}/api/prompt2", body=requests.ConnectionError("reset"))
    with pytest.raises(ServerUnavailableError):
        client.request("POST", "/prompt2", json={})
    assert len(responses.calls) == 2


@responses.activate
def test_post_marked_idempotent_is_retried(client: HttpClient) -> None:
    responses.post(f"{BASE}/api/history", status=502)
    responses.post(f"{BASE}/api/history", status=200)
    client.request("POST", "/history", json={"delete": ["x"]}, idempotent=True)
    assert len(responses.calls) == 2


@responses.activate
def test_client_errors_are_not_retried(client: HttpClient) -> None:
    responses.get(f"{BASE}/api/models/x", status=404)
    with pytest.raises(NotFoundError):
        client.request("GET", "/models/x")
    assert len(responses.calls) == 1


@responses.activate
def test_secrets_never_appear_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(
        api_url=BASE,
        api_key=KEY,
        query_params={"token": "query-secret-1"},
        retries=1,
        retry_backoff=0.0,
    )
    responses.get(f"{BASE}/api/x", status=503, body=f"bad key {KEY}")
    responses.get(f"{BASE}/api/x", status=401, body=f"bad key {KEY} and query-secret-1")
    caplog.set_level(logging.DEBUG, logger="witness")
    with HttpClient(settings) as client, pytest.raises(UnauthorizedError) as info:
        client.request("GET", "/x")
    text = str(info.value) + repr(info.value) + repr(info.value.body) + info.value.url
    text += caplog.text + repr(client) + repr(settings)
    assert KEY not in text
    assert "query-secret-1" not in text
    assert "***" in str(info.value)


@responses.activate
def test_download_is_atomic_and_streamed(client: HttpClient, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096
    responses.get(f"{BASE}/api/view", body=payload, content_type="image/png")
    target = tmp_path / "sub" / "out.png"
    assert client.download("/view", target, params={"filename": "a.png"}, chunk_size=1000) == len(
        payload
    )
    assert target.read_bytes() == payload
    assert list(target.parent.iterdir()) == [target]
    sink = io.BytesIO()
    client.download("/view", sink)
    assert sink.getvalue() == payload


@responses.activate
def test_failed_download_leaves_no_file(client: HttpClient, tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old contents")
    responses.get(f"{BASE}/api/view", status=404)
    with pytest.raises(NotFoundError):
        client.download("/view", target)
    responses.replace(
        "GET",
        f"{BASE}/api/view",
        body=b"short",
        headers={"Content-Length": "999"},
        auto_calculate_content_length=False,
    )
    with pytest.raises(TransportError):
        client.download("/view", target)
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_closed_client_refuses_requests() -> None:
    client = HttpClient(Settings(api_url=BASE))
    client.close()
    client.close()
    assert client.closed
    with pytest.raises(ServerUnavailableError, match="closed"):
        client.request("GET", "/queue")


@responses.activate
def test_json_body_is_sent(client: HttpClient) -> None:
    responses.post(f"{BASE}/api/prompt", json={"prompt_id": "p"})
    client.request_json("POST", "/prompt", json={"prompt": {"1": {}}})
    assert json.loads(responses.calls[0].request.body or b"") == {"prompt": {"1": {}}}


def test_credentials_never_follow_a_redirect_to_another_origin(
    http_server: Callable[[], Recorder],
) -> None:
    server, elsewhere = http_server(), http_server()
    elsewhere.routes["/login"] = (200, {"Content-Type": "application/json"}, b"{}")
    server.routes["/api/queue"] = (302, {"Location": f"{elsewhere.url}/login"}, b"")
    settings = Settings(
        api_url=server.url,
        api_key=KEY,
        cookies={"session": "cookie-secret-1"},
        headers={"X-Api-Key": "header-secret-1"},
        user="alice",
    )
    with HttpClient(settings) as client:
        assert client.request_json("GET", "/queue") == {}
    own = server.seen[-1][1]
    assert own["authorization"] == f"Bearer {KEY}"
    assert own["cookie"] == "session=cookie-secret-1"
    assert own["x-api-key"] == "header-secret-1"
    other = elsewhere.seen[-1][1]
    for name in ("authorization", "cookie", "x-api-key", "comfy-user"):
        assert name not in other

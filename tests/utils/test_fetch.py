"""fetch_url: credential-free third-party downloads with limits, over the one transport."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.transport.conftest import Recorder, free_url, http_server, silent_url
from witness.config.settings import Settings
from witness.errors import (
    ApiError,
    DownloadTooLargeError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    TransportError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient
from witness.utils.fetch import fetch_url

__all__ = ["free_url", "http_server", "silent_url"]  # fixtures used here

KEY = "comfy-api-key-0123456789"


def test_no_server_credential_is_ever_sent(http_server: Callable[[], Recorder]) -> None:
    host = http_server()
    host.routes["/wf.json"] = (200, {"Content-Type": "application/json"}, b"{}")
    settings = Settings(
        api_url=host.url,
        api_key=KEY,
        cookies={"session": "cookie-secret-1"},
        headers={"X-Api-Key": "header-secret-1"},
        query_params={"token": "query-secret-1"},
    )
    with HttpClient(settings), fetch_url(f"{host.url}/wf.json") as fetched:
        assert fetched.read_bytes() == b"{}"
    path, headers = host.seen[-1]
    assert path == "/wf.json"
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert "x-api-key" not in headers
    assert headers["user-agent"].startswith("witness/")


def test_a_redirect_to_another_origin_carries_no_credentials(
    http_server: Callable[[], Recorder],
) -> None:
    first, other = http_server(), http_server()
    other.routes["/file.png"] = (200, {}, b"PNG")
    first.routes["/start"] = (
        302,
        {"Location": f"{other.url}/file.png", "Set-Cookie": "first=only-for-first; Path=/"},
        b"",
    )
    with_userinfo = first.url.replace("http://", "http://user:pass-secret@") + "/start"
    with fetch_url(with_userinfo) as fetched:
        assert fetched.read_bytes() == b"PNG"
    # The origin named in the URL got its own credentials; the other origin got none.
    assert first.seen[-1][1]["authorization"].startswith("Basic ")
    redirected = other.seen[-1][1]
    assert "authorization" not in redirected
    assert "cookie" not in redirected


def test_too_large_is_a_typed_error_with_the_limit(http_server: Callable[[], Recorder]) -> None:
    host = http_server()
    host.routes["/big.bin"] = (200, {}, b"x" * 5000)
    with pytest.raises(DownloadTooLargeError) as caught:
        fetch_url(f"{host.url}/big.bin?token=t0k3n-secret", max_bytes=1000)
    error = caught.value
    assert error.limit == 1000
    assert error.size == 5000  # announced by Content-Length
    assert "1000 bytes" in str(error)
    assert "t0k3n-secret" not in str(error)
    assert isinstance(error, TransportError)
    assert not isinstance(error, ApiError | PayloadTooLargeError)  # no fake HTTP status


def test_error_statuses_keep_their_classes(http_server: Callable[[], Recorder]) -> None:
    host = http_server()
    with pytest.raises(NotFoundError) as caught:
        fetch_url(f"{host.url}/missing")
    assert caught.value.status == 404


def test_the_deadline_bounds_a_silent_host(silent_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        fetch_url(f"{silent_url}/x", timeout=(5.0, 30.0), deadline=Deadline.after(0.4))
    assert time.monotonic() - started < 2.0


def test_a_scoped_deadline_bounds_the_retries_of_a_dead_host(free_url: str) -> None:
    started = time.monotonic()
    with Deadline.after(0.3).scope(), pytest.raises(TransportError) as caught:
        fetch_url(f"{free_url}/x")
    assert caught.value.sent is False
    assert time.monotonic() - started < 2.0

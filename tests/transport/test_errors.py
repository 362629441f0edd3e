"""TransportError.sent for each failure kind, against real sockets; one mapping for all."""

from __future__ import annotations

import socket
import time

import pytest

from witness.config.settings import Settings
from witness.errors import (
    ForbiddenError,
    NotFoundError,
    RequestTimeoutError,
    ServerError,
    ServerUnavailableError,
    UnauthorizedError,
)
from witness.transport.deadline import Deadline
from witness.transport.errors import status_error
from witness.transport.http import HttpClient, PublicClient
from witness.transport.retry import RetryPolicy


def client(url: str, **overrides: object) -> HttpClient:
    settings = Settings(
        api_url=url, connect_timeout=1.0, read_timeout=0.5, retries=0, retry_backoff=0.0
    )
    return HttpClient(settings.with_overrides(**overrides))


def test_a_closed_port_was_not_sent(free_url: str) -> None:
    with client(free_url) as http, pytest.raises(ServerUnavailableError) as caught:
        http.request("POST", "/prompt", json={})
    assert caught.value.sent is False
    assert "Connection refused" in str(caught.value)


def test_a_silent_socket_was_sent(silent_url: str) -> None:
    with client(silent_url) as http, pytest.raises(RequestTimeoutError) as caught:
        http.request("POST", "/prompt", json={})
    assert caught.value.sent is True
    assert caught.value.phase == "read"


def test_a_socket_that_closes_after_accepting_was_sent(closing_url: str) -> None:
    with client(closing_url) as http, pytest.raises(ServerUnavailableError) as caught:
        http.request("POST", "/prompt", json={})
    assert caught.value.sent is True


def test_a_full_backlog_is_a_connect_timeout_not_sent() -> None:
    """A listener whose backlog is full drops new SYNs: the connect times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):  # fill the accept queue (never accepted)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        with (
            client(f"http://127.0.0.1:{port}", connect_timeout=0.3) as http,
            pytest.raises(RequestTimeoutError) as caught,
        ):
            http.request("GET", "/queue")
        assert caught.value.phase == "connect"
        assert caught.value.sent is False
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_unsent_requests_are_retried_sent_posts_are_not(
    free_url: str, closing_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    policy = RetryPolicy(retries=2, backoff=0.01, retry_unsent=True)
    with client(free_url) as http, pytest.raises(ServerUnavailableError):
        http.request("POST", "/prompt", json={}, retry=policy)
    assert [r.message for r in caplog.records if "retry" in r.message][-1].count("retry 2 of 2")
    caplog.clear()
    with client(closing_url) as http, pytest.raises(ServerUnavailableError) as caught:
        http.request("POST", "/prompt", json={}, retry=policy)
    assert caught.value.sent
    assert not [r for r in caplog.records if "retry" in r.message]


def test_the_deadline_clamps_the_read_timeout(silent_url: str) -> None:
    with client(silent_url, read_timeout=30.0) as http:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            http.request("GET", "/queue", deadline=Deadline.after(0.4))
        assert time.monotonic() - started < 2.0


def test_the_public_client_maps_failures_the_same_way(free_url: str, silent_url: str) -> None:
    with PublicClient() as public:
        with pytest.raises(ServerUnavailableError) as refused:
            public.get(f"{free_url}/x", timeout=(1.0, 1.0), deadline=Deadline.after(0.2))
        assert refused.value.sent is False
        with pytest.raises(RequestTimeoutError) as silent:
            public.get(f"{silent_url}/x", timeout=(1.0, 0.3))
        assert silent.value.sent is True


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, UnauthorizedError), (403, ForbiddenError), (404, NotFoundError), (503, ServerError)],
)
def test_status_mapping(status: int, cls: type[Exception]) -> None:
    error = status_error(
        status,
        method="GET",
        url="http://h/x",
        content_type="application/json",
        raw=b'{"error": "nope secret"}',
        redact=lambda text: text.replace("secret", "***"),
    )
    assert type(error) is cls
    assert error.status == status
    assert error.server_message == "nope ***"

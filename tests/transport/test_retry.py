"""RetryPolicy through the one request loop (responses-based unit tests)."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest
import requests
import responses

from witness.config.settings import Settings
from witness.errors import (
    RequestTimeoutError,
    ServerError,
    ServerUnavailableError,
    TransportError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient
from witness.transport.retry import RetryPolicy, parse_retry_after

BASE = "http://comfy.test:8188"


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(Settings(api_url=BASE, retries=3, retry_backoff=0.0))


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the retry waits instead of sleeping them."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


def test_the_policy_comes_from_the_settings() -> None:
    policy = Settings(api_url=BASE, retries=5, retry_backoff=0.3).retry_policy
    assert policy.retries == 5
    assert policy.backoff == 0.3
    assert HttpClient(Settings(api_url=BASE, retries=5)).retry_policy.retries == 5


def test_backoff_doubles_is_capped_and_jittered() -> None:
    policy = RetryPolicy(retries=5, backoff=1.0, max_backoff=4.0, jitter=0.5)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len({policy.delay(3) for _ in range(20)}) > 1  # jitter


@responses.activate
def test_retry_after_seconds_is_honoured(client: HttpClient, slept: list[float]) -> None:
    responses.get(f"{BASE}/api/queue", status=503, headers={"Retry-After": "2"})
    responses.get(f"{BASE}/api/queue", json={})
    assert client.request_json("GET", "/queue") == {}
    assert slept == [2.0]


@responses.activate
def test_retry_after_http_date_is_honoured(client: HttpClient, slept: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    responses.get(f"{BASE}/api/queue", status=429, headers={"Retry-After": when})
    responses.get(f"{BASE}/api/queue", json={})
    assert client.request_json("GET", "/queue") == {}
    assert len(slept) == 1
    assert 25.0 < slept[0] <= 30.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert parse_retry_after(past) == 0.0
    # A hint longer than max_retry_after is shortened to it.
    assert RetryPolicy(max_retry_after=5.0).delay(0, "3600") == 5.0


@responses.activate
def test_retries_are_bounded(client: HttpClient, slept: list[float]) -> None:
    responses.get(f"{BASE}/api/queue", status=502)
    with pytest.raises(ServerError):
        client.request("GET", "/queue")
    assert len(responses.calls) == 4  # 1 + retries=3
    assert len(slept) == 3


@responses.activate
def test_only_idempotent_requests_are_retried(client: HttpClient, slept: list[float]) -> None:
    responses.post(f"{BASE}/api/prompt", status=503)
    with pytest.raises(ServerError):
        client.request("POST", "/prompt", json={})
    assert len(responses.calls) == 1
    responses.put(f"{BASE}/api/userdata/x", status=503)
    responses.put(f"{BASE}/api/userdata/x", status=200)
    client.request("PUT", "/userdata/x", data=b"x")
    assert len(responses.calls) == 3
    assert slept


@responses.activate
def test_a_deadline_stops_the_retries(client: HttpClient, slept: list[float]) -> None:
    # The server asks for 5 s; the call has 1 s left: no wait, the error at once.
    responses.get(f"{BASE}/api/queue", status=503, headers={"Retry-After": "5"})
    started = time.monotonic()
    with pytest.raises(ServerError):
        client.request("GET", "/queue", deadline=Deadline.after(1.0))
    assert time.monotonic() - started < 0.5
    assert len(responses.calls) == 1
    assert slept == []


@responses.activate
def test_a_scoped_deadline_also_stops_them(client: HttpClient, slept: list[float]) -> None:
    responses.get(f"{BASE}/api/queue", body=requests.ConnectionError("reset"))
    with Deadline.after(0.0).scope(), pytest.raises(ServerUnavailableError):
        client.request("GET", "/queue")
    assert len(responses.calls) == 1


@responses.activate
def test_a_read_timeout_is_not_retried_by_default(client: HttpClient) -> None:
    responses.get(f"{BASE}/api/queue", body=requests.ReadTimeout("slow"))
    with pytest.raises(RequestTimeoutError) as caught:
        client.request("GET", "/queue")
    assert caught.value.phase == "read"
    assert caught.value.sent
    assert len(responses.calls) == 1
    policy = RetryPolicy(retries=1, backoff=0.0, retry_read_timeouts=True)
    responses.get(f"{BASE}/api/queue", json={})
    assert client.request_json("GET", "/queue", retry=policy) == {}


@responses.activate
def test_retry_if_retries_a_busy_answer_inside_a_200(client: HttpClient) -> None:
    responses.post(f"{BASE}/busy", json={"code": 421})
    responses.post(f"{BASE}/busy", json={"code": 0})

    def busy(response: Any) -> bool:
        return bool(response.json()["code"] == 421)

    policy = RetryPolicy(retries=2, backoff=0.0, retry_if=busy)
    answer = client.request_json("POST", "/busy", api=False, idempotent=False, retry=policy)
    assert answer == {"code": 0}
    assert len(responses.calls) == 2


@responses.activate
def test_an_unsent_post_is_retried_only_when_the_policy_says_so(client: HttpClient) -> None:
    # ConnectionError("...") from responses wraps no MaxRetryError: it counts as sent.
    responses.post(f"{BASE}/api/prompt", body=requests.ConnectionError("reset"))
    with pytest.raises(ServerUnavailableError) as caught:
        client.request("POST", "/prompt", json={}, retry=RetryPolicy(retry_unsent=True))
    assert caught.value.sent
    assert len(responses.calls) == 1


def test_retries_error_rules() -> None:
    unsent = TransportError("x", method="POST", url="u", sent=False)
    sent = TransportError("x", method="POST", url="u", sent=True)
    read = RequestTimeoutError("x", method="GET", url="u", timeout=1, phase="read")
    connect = RequestTimeoutError("x", method="GET", url="u", timeout=1, phase="connect")
    policy = RetryPolicy()
    assert policy.retries_error(unsent, safe=True)
    assert not policy.retries_error(unsent, safe=False)
    assert RetryPolicy(retry_unsent=True).retries_error(unsent, safe=False)
    assert policy.retries_error(sent, safe=True)
    assert not policy.retries_error(sent, safe=False)
    assert not connect.sent
    assert policy.retries_error(connect, safe=True)
    assert not policy.retries_error(read, safe=True)
    assert policy.attempts(safe=False) == 1

"""The Cloud-only shapes comfy-api-proxy cannot produce, at the HTTP boundary (responses):
cursor pagination, expired jobs, 429 + Retry-After, unknown error codes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import responses

from witness.api_clients.v2 import JobsClient
from witness.config.settings import Settings
from witness.errors import (
    ResponseDecodeError,
    V2ApiError,
    V2InsufficientCreditsError,
    V2QueueFullError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient
from witness.transport.retry import RetryPolicy

BASE = "https://deployment.example"
JOBS = BASE + "/api/v2/jobs"


def job(job_id: str, status: str = "succeeded") -> dict[str, Any]:
    return {
        "id": job_id,
        "status": status,
        "created_at": "2026-01-01T00:00:00Z",
        "outputs": [],
        "urls": {
            "self": f"{JOBS}/{job_id}",
            "events": f"{JOBS}/{job_id}/events",
            "cancel": f"{JOBS}/{job_id}/cancel",
        },
    }


@pytest.fixture
def jobs() -> JobsClient:
    http = HttpClient(Settings(api_url=BASE, api_key="cloud-key-123456", retries=0))
    return JobsClient(http, retry=RetryPolicy(retries=2, backoff=0.01))


@responses.activate
def test_pages_follow_next_cursor(jobs: JobsClient) -> None:
    responses.get(JOBS, json={"jobs": [job("a"), job("b")], "next_cursor": "c1"})
    responses.get(JOBS, json={"jobs": [job("c")], "next_cursor": "c2"})
    responses.get(JOBS, json={"jobs": [job("d")]})
    assert [j.id for j in jobs.iter(limit=2)] == ["a", "b", "c", "d"]
    sent = [call.request.url for call in responses.calls]
    assert sent[0] == JOBS + "?limit=2"
    assert sent[1] == JOBS + "?limit=2&cursor=c1"
    assert sent[2] == JOBS + "?limit=2&cursor=c2"


@responses.activate
def test_a_repeated_cursor_is_an_error_not_a_loop(jobs: JobsClient) -> None:
    responses.get(JOBS, json={"jobs": [job("a")], "next_cursor": "same"})
    with pytest.raises(ResponseDecodeError, match="already given"):
        list(jobs.iter())


@responses.activate
def test_an_expired_job_is_terminal(jobs: JobsClient) -> None:
    responses.get(JOBS + "/j1", json=job("j1", "expired"))
    got = jobs.get("j1")
    assert got.status == "expired"
    assert got.terminal


@responses.activate
def test_queue_full_is_retried_after_retry_after_with_the_same_key(jobs: JobsClient) -> None:
    full = {"error": {"code": "queue_full", "message": "Queue is full.", "details": None}}
    responses.post(JOBS, json=full, status=429, headers={"Retry-After": "0.2"})
    responses.post(JOBS, json=job("j1", "queued"), status=201)
    started = time.monotonic()
    submitted = jobs.submit({"1": {"class_type": "X", "inputs": {}}})
    assert time.monotonic() - started >= 0.2
    assert submitted.id == "j1"
    keys = [call.request.headers["Idempotency-Key"] for call in responses.calls]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    # The next submit gets a new key.
    responses.post(JOBS, json=job("j2", "queued"), status=201)
    jobs.submit({"1": {"class_type": "X", "inputs": {}}})
    assert responses.calls[-1].request.headers["Idempotency-Key"] != keys[0]


@responses.activate
def test_queue_full_past_the_deadline_is_raised(jobs: JobsClient) -> None:
    full = {"error": {"code": "queue_full", "message": "Queue is full.", "details": None}}
    responses.post(JOBS, json=full, status=429, headers={"Retry-After": "30"})
    started = time.monotonic()
    with pytest.raises(V2QueueFullError) as info:
        jobs.submit({"1": {"class_type": "X", "inputs": {}}}, deadline=Deadline.after(1))
    assert time.monotonic() - started < 1
    assert info.value.retry_after == "30"
    assert info.value.status == 429
    assert len(responses.calls) == 1


@responses.activate
def test_error_codes_map_to_typed_errors(jobs: JobsClient) -> None:
    body = {"error": {"code": "insufficient_credits", "message": "Top up.", "details": None}}
    responses.post(JOBS, json=body, status=402)
    with pytest.raises(V2InsufficientCreditsError) as info:
        jobs.submit({"1": {"class_type": "X", "inputs": {}}})
    assert info.value.code == "insufficient_credits"
    assert "[insufficient_credits]: Top up." in str(info.value)
    assert "cloud-key-123456" not in repr(info.value.__dict__)
    body = {"error": {"code": "brand_new_code", "message": "New.", "details": {"x": 1}}}
    responses.get(JOBS + "/j9", json=body, status=418)
    with pytest.raises(V2ApiError) as unknown:
        jobs.get("j9")
    assert type(unknown.value) is V2ApiError
    assert unknown.value.details == {"x": 1}


@responses.activate
def test_events_reconnect_after_a_stream_that_ends_early(jobs: JobsClient) -> None:
    events_url = JOBS + "/j1/events"
    first = 'event: status\ndata: {"status":"running"}\n\n: keepalive\n\n'
    first += 'event: progress\ndata: {"value":0.5,"nodes_done":1,"nodes_total":2}\n\n'
    responses.get(events_url, body=first, content_type="text/event-stream")
    responses.get(JOBS + "/j1", json=job("j1", "running"))
    second = 'event: status\ndata: {"status":"succeeded"}\n\n'
    second += "event: output\ndata: " + json.dumps({"node_id": "9", "name": "a.png"}) + "\n\n"
    responses.get(events_url, body=second, content_type="text/event-stream")
    events = list(jobs.events("j1", deadline=Deadline.after(10)))
    names = [type(e).__name__ for e in events]
    assert names == ["StatusEvent", "ProgressEvent", "StatusEvent", "OutputEvent"]
    assert responses.calls[0].request.headers["Accept"] == "text/event-stream"


@responses.activate
def test_a_partner_key_echoed_by_the_server_is_not_in_the_error(jobs: JobsClient) -> None:
    partner = "partner-secret-key-42"
    body = {
        "error": {
            "code": "invalid_request",
            "message": f"bad extra_data {partner}",
            "details": {"echo": partner},
        }
    }
    responses.post(JOBS, json=body, status=400)
    with pytest.raises(V2ApiError) as info:
        jobs.submit(
            {"1": {"class_type": "X", "inputs": {}}}, extra_data={"api_key_comfy_org": partner}
        )
    error = info.value
    assert partner not in str(error)
    assert partner not in repr(error.server_message)
    assert partner not in json.dumps(error.body)
    assert partner not in json.dumps(error.details)
    assert error.code == "invalid_request"


@responses.activate
def test_a_dropped_submit_is_resent_with_the_same_key_but_a_5xx_is_not(jobs: JobsClient) -> None:
    import requests

    responses.post(JOBS, body=requests.exceptions.ConnectionError("connection reset"))
    responses.post(JOBS, json=job("j1", "queued"), status=201)
    assert jobs.submit({"1": {"class_type": "X", "inputs": {}}}).id == "j1"
    keys = {call.request.headers["Idempotency-Key"] for call in responses.calls}
    assert len(responses.calls) == 2
    assert len(keys) == 1
    responses.reset()
    down = {"error": {"code": "upstream_unreachable", "message": "down", "details": None}}
    responses.post(JOBS, json=down, status=503)
    with pytest.raises(V2ApiError) as info:
        jobs.submit({"1": {"class_type": "X", "inputs": {}}})
    assert info.value.code == "upstream_unreachable"
    assert len(responses.calls) == 1  # the server keeps a 5xx's key claimed: no resend

"""JobsClient against the real comfy-api-proxy in front of the real ComfyUI."""

from __future__ import annotations

import random
import time

import pytest

from tests.core.witness_live_support import sleep_workflow
from tests.support.v2_proxy import TOKEN, ProxyProcess, error_prompt, tiny_prompt
from witness.api_clients.queue_client import QueueClient
from witness.api_clients.v2 import JobsClient
from witness.api_clients.v2.types import (
    OutputEvent,
    ProgressEvent,
    StatusEvent,
)
from witness.config.settings import Settings
from witness.errors import (
    InvalidArgumentError,
    V2IdempotencyKeyReuseError,
    V2InvalidRequestError,
    V2InvalidWorkflowError,
    V2NotFoundError,
    V2UnauthorizedError,
    V2WorkflowFormatUIError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

pytestmark = pytest.mark.integration

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def jobs(v2_http: HttpClient) -> JobsClient:
    return JobsClient(v2_http)


def wait_terminal(jobs: JobsClient, job_id: str, limit: float = 60.0) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        job = jobs.get(job_id)
        if job.terminal and job.status != "expired":
            return job.status
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not end in {limit} s")


def test_submit_get_workflow_and_events(jobs: JobsClient) -> None:
    prompt = tiny_prompt(random.randrange(1 << 24))
    job = jobs.submit(prompt, metadata="witness-test")
    assert job.status == "queued"
    assert job.urls is not None
    assert job.urls.self.endswith(f"/api/v2/jobs/{job.id}")
    events = list(jobs.events(job.id, deadline=Deadline.after(60)))
    assert isinstance(events[0], StatusEvent)
    assert isinstance(events[-1], StatusEvent | OutputEvent)
    statuses = [e.status for e in events if isinstance(e, StatusEvent)]
    assert statuses[-1] == "succeeded"
    assert wait_terminal(jobs, job.id) == "succeeded"
    done = jobs.get(job.id)
    assert [o.node_id for o in done.outputs] == ["2"]
    assert done.outputs[0].type == "image"
    assert done.outputs[0].name.startswith("witness_v2")
    assert done.raw.get("metadata") == "witness-test"
    graph = jobs.workflow(job.id)
    assert graph.format == "api"
    assert graph.workflow["1"]["inputs"] == prompt["1"]["inputs"]  # type: ignore[index]


def test_events_report_progress_of_a_running_job(jobs: JobsClient) -> None:
    job = jobs.submit(sleep_workflow(1.5))
    events = list(jobs.events(job.id, deadline=Deadline.after(60)))
    progress = [e.progress for e in events if isinstance(e, ProgressEvent)]
    assert progress, events
    assert all(0.0 <= p.value <= 1.0 for p in progress)
    assert wait_terminal(jobs, job.id) == "succeeded"


def native_cancel(comfy_url: str, job_id: str) -> None:
    """Cancel through ComfyUI itself: comfy-api-proxy 0.1.6 forwards a cancel to
    ``POST /api/jobs/{id}/cancel``, which ComfyUI 0.3.75 does not have (the job id is the
    prompt id)."""
    with HttpClient(Settings(api_url=comfy_url)) as native:
        QueueClient(native).cancel(job_id)


def test_events_end_at_the_deadline(jobs: JobsClient, comfy_url: str) -> None:
    job = jobs.submit(sleep_workflow(30))
    try:
        started = time.monotonic()
        events = list(jobs.events(job.id, deadline=Deadline.after(1.5)))
        assert time.monotonic() - started < 5
        assert not any(isinstance(e, StatusEvent) and e.terminal for e in events)
    finally:
        native_cancel(comfy_url, job.id)
    assert wait_terminal(jobs, job.id) == "canceled"


def test_list_filters_by_status(jobs: JobsClient) -> None:
    job = jobs.submit(tiny_prompt(random.randrange(1 << 24)))
    wait_terminal(jobs, job.id)
    page = jobs.list(status="succeeded", limit=100)
    assert job.id in {j.id for j in page.jobs}
    assert all(j.status == "succeeded" for j in page.jobs)
    assert page.next_cursor is None
    assert job.id in {j.id for j in jobs.iter(limit=100)}
    with pytest.raises(V2InvalidRequestError) as info:
        jobs.list(limit=1000)
    assert info.value.code == "invalid_request"
    assert info.value.status == 400


def test_cancel_a_running_job(jobs: JobsClient, comfy_url: str) -> None:
    job = jobs.submit(sleep_workflow(30))
    deadline = time.monotonic() + 30
    while jobs.get(job.id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    after = jobs.cancel(job.id)
    assert after.id == job.id
    assert after.status in {"canceling", "canceled"}
    assert jobs.cancel(job.id).status in {"canceling", "canceled"}  # repeatable
    native_cancel(comfy_url, job.id)  # what the proxy's cancel cannot do on ComfyUI 0.3.75
    assert wait_terminal(jobs, job.id) == "canceled"


def test_failed_job_has_node_detail(jobs: JobsClient) -> None:
    job = jobs.submit(error_prompt())
    assert wait_terminal(jobs, job.id) == "failed"
    failed = jobs.get(job.id)
    assert failed.error is not None
    assert failed.error.node_id == "2"
    assert failed.error.class_type == "TestSyncError"
    assert "Intentional sync execution error" in failed.error.message


def test_idempotency_key_is_single_use(jobs: JobsClient) -> None:
    key = f"witness-{random.randrange(1 << 60)}"
    first = jobs.submit(tiny_prompt(1), idempotency_key=key)
    with pytest.raises(V2IdempotencyKeyReuseError) as info:
        jobs.submit(tiny_prompt(2), idempotency_key=key)
    assert info.value.status == 422
    assert info.value.method == "POST"
    assert info.value.url.endswith("/api/v2/jobs")
    assert "already been used" in info.value.server_message
    wait_terminal(jobs, first.id)
    # Without a key given, every submit gets a fresh one.
    a = jobs.submit(tiny_prompt(3))
    b = jobs.submit(tiny_prompt(3))
    assert a.id != b.id
    with pytest.raises(InvalidArgumentError):
        jobs.submit(tiny_prompt(3), idempotency_key="bad\nkey")


def test_a_refused_workflow_releases_its_key_and_names_the_node(jobs: JobsClient) -> None:
    key = f"witness-{random.randrange(1 << 60)}"
    bad = tiny_prompt()
    bad["1"]["inputs"]["width"] = "wide"  # type: ignore[index]
    with pytest.raises(V2InvalidWorkflowError) as info:
        jobs.submit(bad, idempotency_key=key)
    assert info.value.code == "invalid_workflow"
    assert [e.node_id for e in info.value.node_errors] == ["1"]
    job = jobs.submit(tiny_prompt(), idempotency_key=key)  # the key was released
    wait_terminal(jobs, job.id)


def test_ui_format_and_unknown_job(jobs: JobsClient) -> None:
    with pytest.raises(V2WorkflowFormatUIError):
        jobs.submit({"nodes": [], "links": []})
    for call in (jobs.get, jobs.workflow, jobs.cancel):
        with pytest.raises(V2NotFoundError) as info:
            call(MISSING)
        assert info.value.status == 404
        assert info.value.code == "not_found"
    with pytest.raises(V2NotFoundError):
        list(jobs.events(MISSING, deadline=Deadline.after(10)))


def test_events_of_a_finished_job_end_at_once(jobs: JobsClient) -> None:
    job = jobs.submit(tiny_prompt(random.randrange(1 << 24)))
    wait_terminal(jobs, job.id)
    events = list(jobs.events(job.id, deadline=Deadline.after(10)))
    assert isinstance(events[0], StatusEvent)
    assert events[0].status == "succeeded"
    assert [type(e) for e in events[1:]] == [OutputEvent]


def test_token_proxy(v2_token_proxy: ProxyProcess) -> None:
    with HttpClient(Settings(api_url=v2_token_proxy.url, retries=0)) as anonymous:
        with pytest.raises(V2UnauthorizedError) as info:
            JobsClient(anonymous).submit(tiny_prompt())
        assert info.value.status == 401
        assert info.value.code == "unauthorized"
        with pytest.raises(V2UnauthorizedError):
            JobsClient(anonymous).list()
    with HttpClient(Settings(api_url=v2_token_proxy.url, api_key=TOKEN, retries=0)) as http:
        jobs = JobsClient(http)
        job = jobs.submit(tiny_prompt(random.randrange(1 << 24)))
        assert wait_terminal(jobs, job.id) == "succeeded"
    with HttpClient(Settings(api_url=v2_token_proxy.url, api_key="wrong-token", retries=0)) as bad:
        with pytest.raises(V2UnauthorizedError) as info:
            JobsClient(bad).get(job.id)
        assert "wrong-token" not in str(info.value)

"""QueueClient against the real server; the jobs-API cancel path with ``responses``."""

from __future__ import annotations

import json
import uuid

import pytest
import responses

from tests.api_clients.conftest import (
    image_prompt,
    sleep_prompt,
    wait_for_history,
    wait_idle,
    wait_until_running,
)
from witness.api_clients import PromptClient, QueueClient
from witness.api_clients.types import CancelOutcome, QueueState
from witness.config.settings import Settings
from witness.errors import InvalidArgumentError, ServerError
from witness.transport.http import HttpClient

BASE = "http://comfy.test:8188"


@pytest.fixture
def queue(http: HttpClient) -> QueueClient:
    return QueueClient(http)


@pytest.fixture
def prompts(http: HttpClient) -> PromptClient:
    return PromptClient(http)


@pytest.mark.integration
def test_idle_queue_is_empty(http: HttpClient, queue: QueueClient) -> None:
    wait_idle(http)
    state = queue.get()
    assert state == QueueState()
    assert len(state) == 0


@pytest.mark.integration
def test_running_and_pending_are_typed_and_pending_is_sorted(
    http: HttpClient, queue: QueueClient, prompts: PromptClient, cleanup_history: list[str]
) -> None:
    running = prompts.submit(sleep_prompt(30), client_id="queue-test")
    cleanup_history.append(running.prompt_id)
    wait_until_running(http, running.prompt_id)
    later = prompts.submit(image_prompt(), number=10_000)
    sooner = prompts.submit(image_prompt(), number=5_000)
    cleanup_history += [later.prompt_id, sooner.prompt_id]
    try:
        state = queue.get()
        assert [i.prompt_id for i in state.running] == [running.prompt_id]
        assert [i.prompt_id for i in state.pending] == [sooner.prompt_id, later.prompt_id]
        assert state.status_of(running.prompt_id) == "running"
        assert state.status_of(later.prompt_id) == "pending"
        assert state.position(later.prompt_id) == 1
        assert state.status_of(str(uuid.uuid4())) is None
        item = state.find(running.prompt_id)
        assert item is not None
        assert item.client_id == "queue-test"
        assert item.prompt["3"]["class_type"] == "TestSleep"
        assert item.outputs_to_execute == ("2",)

        queue.delete([sooner.prompt_id, str(uuid.uuid4())])
        assert [i.prompt_id for i in queue.get().pending] == [later.prompt_id]
        queue.clear_pending()
        after = queue.get()
        assert after.pending == ()
        assert [i.prompt_id for i in after.running] == [running.prompt_id]
    finally:
        queue.interrupt(running.prompt_id)
    entry = wait_for_history(http, running.prompt_id)
    assert entry.interrupted
    assert not entry.succeeded


@pytest.mark.integration
def test_cancel_pending_running_finished_and_unknown(
    http: HttpClient, queue: QueueClient, prompts: PromptClient, cleanup_history: list[str]
) -> None:
    running = prompts.submit(sleep_prompt(30))
    pending = prompts.submit(image_prompt())
    cleanup_history += [running.prompt_id, pending.prompt_id]
    wait_until_running(http, running.prompt_id)

    dequeued = queue.cancel(pending.prompt_id)
    assert dequeued.outcome is CancelOutcome.DEQUEUED
    assert dequeued.via == "queue_api"
    assert dequeued.cancelled
    assert queue.get().status_of(pending.prompt_id) is None

    interrupted = queue.cancel(running.prompt_id)
    assert interrupted.outcome is CancelOutcome.INTERRUPTED
    assert wait_for_history(http, running.prompt_id).interrupted

    finished = queue.cancel(running.prompt_id)
    assert finished.outcome is CancelOutcome.FINISHED
    assert not finished.cancelled
    assert queue.cancel(str(uuid.uuid4())).outcome is CancelOutcome.NOT_FOUND
    assert queue.get().status_of(pending.prompt_id) is None


@pytest.mark.integration
def test_interrupt_of_another_prompt_leaves_the_running_one(
    http: HttpClient, queue: QueueClient, prompts: PromptClient, cleanup_history: list[str]
) -> None:
    running = prompts.submit(sleep_prompt(0.5))
    cleanup_history.append(running.prompt_id)
    wait_until_running(http, running.prompt_id)
    queue.interrupt(str(uuid.uuid4()))
    assert wait_for_history(http, running.prompt_id).succeeded


@pytest.mark.integration
def test_interrupt_running_is_global(
    http: HttpClient, queue: QueueClient, prompts: PromptClient, cleanup_history: list[str]
) -> None:
    running = prompts.submit(sleep_prompt(30))
    cleanup_history.append(running.prompt_id)
    wait_until_running(http, running.prompt_id)
    queue.interrupt_running()
    assert wait_for_history(http, running.prompt_id).interrupted


@pytest.mark.integration
def test_free(queue: QueueClient) -> None:
    queue.free()
    queue.free(unload_models=False, free_memory=True)
    with pytest.raises(InvalidArgumentError):
        queue.free(unload_models=False, free_memory=False)


@pytest.mark.integration
def test_bad_ids_are_refused(queue: QueueClient) -> None:
    with pytest.raises(InvalidArgumentError):
        queue.delete([])
    with pytest.raises(InvalidArgumentError):
        queue.interrupt("")
    with pytest.raises(InvalidArgumentError):
        queue.cancel("")


# -- the jobs API (ComfyUI v0.26+), at the HTTP boundary -------------------------------------


def _mock_queue(running: list[str], pending: list[str]) -> None:
    def item(n: int, pid: str) -> list[object]:
        return [n, pid, {}, {"client_id": "x"}, ["9"]]

    responses.add(
        responses.GET,
        f"{BASE}/api/queue",
        json={
            "queue_running": [item(1, p) for p in running],
            "queue_pending": [item(i + 2, p) for i, p in enumerate(pending)],
        },
    )


@responses.activate
@pytest.mark.parametrize(
    ("running", "pending", "expected"),
    [
        (["p"], [], CancelOutcome.INTERRUPTED),
        ([], ["p"], CancelOutcome.DEQUEUED),
    ],
)
def test_cancel_uses_the_jobs_api_when_offered(
    running: list[str], pending: list[str], expected: CancelOutcome
) -> None:
    _mock_queue(running, pending)
    cancel = responses.add(responses.POST, f"{BASE}/api/jobs/p/cancel", json={"cancelled": True})
    client = QueueClient(HttpClient(Settings(api_url=BASE)))
    result = client.cancel("p")
    assert result.outcome is expected
    assert result.via == "jobs_api"
    assert cancel.call_count == 1
    assert not any(
        "/interrupt" in c.request.url or "delete" in str(c.request.body) for c in responses.calls
    )


@responses.activate
def test_jobs_api_no_op_cancel_is_finished_or_not_found() -> None:
    _mock_queue([], [])
    _mock_queue([], [])
    responses.add(responses.POST, f"{BASE}/api/jobs/done/cancel", json={"cancelled": False})
    responses.add(responses.POST, f"{BASE}/api/jobs/ghost/cancel", json={"cancelled": False})
    responses.add(responses.GET, f"{BASE}/api/history/done", json={"done": {"outputs": {}}})
    responses.add(responses.GET, f"{BASE}/api/history/ghost", json={})
    client = QueueClient(HttpClient(Settings(api_url=BASE)))
    assert client.cancel("done").outcome is CancelOutcome.FINISHED
    assert client.cancel("ghost").outcome is CancelOutcome.NOT_FOUND


@responses.activate
def test_without_the_jobs_route_the_fallback_is_remembered() -> None:
    _mock_queue([], ["a"])
    _mock_queue([], [])
    _mock_queue([], ["b"])
    _mock_queue([], [])
    probe = responses.add(responses.POST, f"{BASE}/api/jobs/a/cancel", status=404, body="")
    delete = responses.add(responses.POST, f"{BASE}/api/queue", body="")
    client = QueueClient(HttpClient(Settings(api_url=BASE)))
    assert client.cancel("a").outcome is CancelOutcome.DEQUEUED
    assert client.cancel("b").via == "queue_api"
    assert probe.call_count == 1  # not probed again for "b"
    assert [json.loads(c.request.body)["delete"] for c in delete.calls] == [["a"], ["b"]]


@responses.activate
def test_a_prompt_that_started_during_the_cancel_is_interrupted() -> None:
    _mock_queue([], ["p"])
    _mock_queue(["p"], [])
    responses.add(responses.POST, f"{BASE}/api/jobs/p/cancel", status=405, body="")
    responses.add(responses.POST, f"{BASE}/api/queue", body="")
    interrupt = responses.add(responses.POST, f"{BASE}/api/interrupt", body="")
    result = QueueClient(HttpClient(Settings(api_url=BASE))).cancel("p")
    assert result.outcome is CancelOutcome.INTERRUPTED
    assert json.loads(interrupt.calls[0].request.body) == {"prompt_id": "p"}


@responses.activate
def test_interrupt_is_never_retried() -> None:
    responses.add(responses.POST, f"{BASE}/api/interrupt", status=503)
    client = QueueClient(HttpClient(Settings(api_url=BASE, retries=3, retry_backoff=0)))
    with pytest.raises(ServerError):
        client.interrupt("p")
    assert len(responses.calls) == 1


@responses.activate
def test_delete_and_free_are_retried() -> None:
    responses.add(responses.POST, f"{BASE}/api/queue", status=503)
    responses.add(responses.POST, f"{BASE}/api/queue", body="")
    responses.add(responses.POST, f"{BASE}/api/free", status=502)
    responses.add(responses.POST, f"{BASE}/api/free", body="")
    client = QueueClient(HttpClient(Settings(api_url=BASE, retries=2, retry_backoff=0)))
    client.delete("p")
    client.free()
    assert len(responses.calls) == 4

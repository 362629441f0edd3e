"""What happens to a submitted prompt when it does not simply complete, against the real
server and with both executors: a node raising ("failed" with the node's details), a cancel
from another thread while it runs or while it is still queued ("interrupted", partial outputs
kept), a deadline ("timeout", cancelled on the server by default), and a prompt deleted behind
our back (``PromptLostError``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.core.witness_live_support import (
    kit_fixture,  # noqa: F401 - fixture
    rand_color,
    server_state_fixture,  # noqa: F401 - fixture
    sleep_workflow,
    wait_history,
)
from witness import ExecuteResult, Witness
from witness.core.witness import PromptHandle
from witness.errors import ExecutionError, PromptLostError

pytestmark = pytest.mark.integration

EXECUTORS = ["websocket", "http"]
LIMIT = 60.0


def _raising_workflow() -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            "_meta": {"title": "$color"},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "witness_first"},
            "_meta": {"title": "$output.first"},
        },
        "3": {
            "class_type": "TestSyncError",
            "inputs": {"value": ["1", 0]},
            "_meta": {"title": "Boom"},
        },
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }


def _wait_running(kit: Witness, prompt_id: str) -> None:
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if kit.queue.get().status_of(prompt_id) == "running":
            return
        time.sleep(0.02)
    pytest.fail(f"{prompt_id} did not start within {LIMIT} s")


def _wait_started_sleeping(kit: Witness, handle: PromptHandle) -> None:
    """Running, and past the first SaveImage (so partial outputs exist)."""
    _wait_running(kit, handle.prompt_id)
    time.sleep(0.3)


@pytest.fixture
def blocker(kit: Witness) -> Iterator[PromptHandle]:
    """A long prompt occupying the server (cancelled after the test)."""
    handle = kit.submit(sleep_workflow(30.0), {"color": rand_color()})
    _wait_running(kit, handle.prompt_id)
    try:
        yield handle
    finally:
        handle.cancel()
        handle.wait(timeout=LIMIT)


# --------------------------------------------------------------------------------------------
# A node raises
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_runtime_error_is_failed_with_the_nodes_details(kit: Witness, executor: str) -> None:
    result = kit.execute(_raising_workflow(), {"color": rand_color()}, executor=executor)  # type: ignore[arg-type]

    assert result.status == "failed"
    assert not result.ok
    error = result.error
    assert error is not None
    assert error.node_id == "3"
    assert error.node_type == "TestSyncError"
    assert error.title == "Boom"
    assert error.exception_type == "RuntimeError"
    assert "Intentional sync execution error" in (error.exception_message or "")
    assert error.traceback
    assert "1" in error.executed
    assert result.msg is not None
    assert 'node 3 (TestSyncError "Boom")' in result.msg
    assert set(result.images_by_var) == {"first"}  # what ran before the failure is kept

    with pytest.raises(ExecutionError) as info:
        result.raise_for_status()
    raised = info.value
    assert raised.status == "failed"
    assert raised.prompt_id == result.prompt_id
    assert raised.node_id == "3"
    assert raised.node_type == "TestSyncError"
    assert raised.exception_type == "RuntimeError"
    assert raised.traceback == error.traceback


def test_save_outside_the_output_folder_fails(kit: Witness) -> None:
    workflow = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": rand_color()},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "../escape"},
            "_meta": {"title": "Escape, $output.bad"},
        },
    }
    result = kit.execute(workflow)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.node_id == "2"
    assert result.error.title == "Escape, $output.bad"
    assert result.error.exception_message


# --------------------------------------------------------------------------------------------
# Interrupts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("how", ["kit.cancel", "handle.cancel"])
def test_cancel_from_another_thread_while_running(kit: Witness, executor: str, how: str) -> None:
    handle = kit.submit(sleep_workflow(30.0), {"color": rand_color()}, executor=executor)  # type: ignore[arg-type]
    outcome: list[ExecuteResult] = []
    waiter = threading.Thread(target=lambda: outcome.append(handle.wait(timeout=LIMIT)))
    waiter.start()
    _wait_started_sleeping(kit, handle)

    cancelled = kit.cancel(handle.prompt_id) if how == "kit.cancel" else handle.cancel()
    assert cancelled.outcome.value == "interrupted"
    waiter.join(LIMIT)
    assert not waiter.is_alive()

    (result,) = outcome
    assert result.status == "interrupted"
    assert result.error is not None
    assert result.error.node_id == "3"
    assert result.msg == 'interrupted at node 3 (TestSleep "Nap, $seconds")'
    assert set(result.images_by_var) == {"before"}  # partial outputs kept
    with pytest.raises(ExecutionError) as info:
        result.raise_for_status()
    assert info.value.status == "interrupted"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_cancel_a_pending_prompt(kit: Witness, blocker: PromptHandle, executor: str) -> None:
    pending = kit.submit(sleep_workflow(0.1), {"color": rand_color()}, executor=executor)  # type: ignore[arg-type]
    assert kit.queue.get().status_of(pending.prompt_id) == "pending"
    outcome: list[ExecuteResult] = []
    waiter = threading.Thread(target=lambda: outcome.append(pending.wait(timeout=LIMIT)))
    waiter.start()
    time.sleep(0.1)  # let the waiter block first

    assert pending.cancel().outcome.value == "dequeued"
    waiter.join(LIMIT)
    (result,) = outcome
    assert result.status == "interrupted"
    assert result.msg == "cancelled before it started running"
    assert result.images == []
    # noticed while the blocker still runs (not when the queue drained)
    assert kit.queue.get().status_of(blocker.prompt_id) == "running"
    assert kit.history.get(pending.prompt_id) is None


def test_deleted_behind_our_back_is_lost(kit: Witness, blocker: PromptHandle) -> None:
    pending = kit.submit(sleep_workflow(0.1), {"color": rand_color()}, executor="http")
    kit.queue.delete(pending.prompt_id)  # not through witness: nobody asked us to cancel
    with pytest.raises(PromptLostError) as info:
        pending.wait(timeout=LIMIT)
    assert info.value.prompt_id == pending.prompt_id
    assert kit.queue.get().status_of(blocker.prompt_id) == "running"


# --------------------------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_timeout_cancels_the_prompt_on_the_server(kit: Witness, executor: str) -> None:
    result = kit.execute(
        sleep_workflow(5.0),
        {"color": rand_color()},
        timeout=0.5,
        executor=executor,  # type: ignore[arg-type]
    )
    assert result.status == "timeout"
    assert result.prompt_id is not None
    assert result.msg is not None
    assert "timed out" in result.msg
    with pytest.raises(ExecutionError) as info:
        result.raise_for_status()
    assert info.value.status == "timeout"

    wait_history(kit, result.prompt_id)  # well before the 5 s sleep would end
    final = kit.wait(result.prompt_id, timeout=LIMIT)
    assert final.status == "interrupted"
    assert kit.ws.tracked() == []  # nothing left buffering events


def test_timeout_without_cancel_keeps_running_and_wait_again_completes(kit: Witness) -> None:
    handle = kit.submit(sleep_workflow(1.0), {"color": rand_color()})
    first = handle.wait(timeout=0.2)
    assert first.status == "timeout"
    assert not handle.done()
    second = handle.wait(timeout=LIMIT)
    assert second.status == "completed", second.msg
    assert set(second.images_by_var) == {"before", "after"}


def test_handle_deadline_from_submit(kit: Witness) -> None:
    handle = kit.submit(sleep_workflow(5.0), {"color": rand_color()}, timeout=0.3)
    result = handle.wait(cancel_on_timeout=True)
    assert result.status == "timeout"
    after = handle.wait(timeout=LIMIT)  # the cancel ended it
    assert after.status == "interrupted"

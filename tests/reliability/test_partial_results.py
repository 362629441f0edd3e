"""A timed-out run keeps the outputs finished before the deadline (issue 13 item 7): a fast
``SaveImage`` then a slow ``TestSleep``; ``execute(timeout=3)`` returns status ``"timeout"``
with the fast image, and ``raise_for_status`` raises an error carrying that partial result."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.v2_proxy import tiny_prompt
from witness import Witness
from witness.errors import ExecutionError, ExecutionTimeoutError, WitnessTimeoutError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _fast_then_slow() -> dict[str, Any]:
    """A fast SaveImage (``$output.fast``), then a 20 s TestSleep before a second one."""
    graph: dict[str, Any] = tiny_prompt(random.randrange(1 << 24), "witness_partial_fast")
    graph["2"]["_meta"]["title"] = "$output.fast"  # a fresh colour: no cache hit
    graph["3"] = {"class_type": "TestSleep", "inputs": {"value": ["1", 0], "seconds": 20.0}}
    graph["4"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["3", 0], "filename_prefix": "witness_partial_slow"},
        "_meta": {"title": "$output.slow"},
    }
    return graph


@pytest.mark.parametrize("executor", ["websocket", "http"])
def test_timeout_keeps_the_outputs_finished_so_far(
    kit: Witness, forget: Callable[..., None], executor: str
) -> None:
    result = kit.execute(_fast_then_slow(), timeout=4, executor=executor)  # type: ignore[arg-type]
    forget(result)
    assert result.status == "timeout"
    assert [f.var for f in result.files] == ["fast"]
    assert len(result.images_by_var.get("fast", [])) == 1
    assert "slow" not in result.images_by_var
    with pytest.raises(ExecutionTimeoutError) as caught:
        result.raise_for_status()
    error = caught.value
    assert isinstance(error, ExecutionError)  # old handlers still catch it
    assert isinstance(error, WitnessTimeoutError)
    assert error.status == "timeout"
    assert error.result is result
    assert error.prompt_id == result.prompt_id
    assert error.result.files[0].filename.startswith("witness_partial_fast")
    # The run was cancelled on the server: nothing of it is left running.
    assert kit.queue.get().find(result.prompt_id or "") is None

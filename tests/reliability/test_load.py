"""Load: 500 prompts from 8 threads on one Witness — every prompt id comes back once, every
result is collected, none is duplicated or swapped."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from witness import Witness
from witness.core.results import ExecuteResult

pytestmark = pytest.mark.integration

TOTAL = 500
THREADS = 8

# The cheapest real workflow: an 8x8 image of a given colour, previewed (temp folder).
TINY: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        "_meta": {"title": "Canvas, $color"},
    },
    "2": {
        "class_type": "PreviewImage",
        "inputs": {"images": ["1", 0]},
        "_meta": {"title": "$output.preview"},
    },
}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_500_prompts_from_8_threads(kit: Witness, forget: Callable[..., None]) -> None:
    results: dict[int, ExecuteResult] = {}
    submitted: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    # Each index gets its own colour (so nothing is served from the cache and every output is
    # distinct); colour = index + offset, recovered from the stored prompt below.
    offset = 0x100000

    def worker(index: int) -> None:
        mine = list(range(index, TOTAL, THREADS))
        try:
            if index % 2:  # half the threads: execute() one by one
                for i in mine:
                    result = kit.execute(TINY, {"color": offset + i}, timeout=240)
                    with lock:
                        submitted.append(result.prompt_id or "")
                        results[i] = result
            else:  # the other half: submit everything, then wait
                handles = [(i, kit.submit(TINY, {"color": offset + i})) for i in mine]
                with lock:
                    submitted.extend(h.prompt_id for _, h in handles)
                for i, handle in handles:
                    result = handle.wait(timeout=240)
                    with lock:
                        results[i] = result
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(280)
        assert not any(t.is_alive() for t in threads), "a worker hung"
        assert not errors, errors[:3]
        assert sorted(results) == list(range(TOTAL))
        ids = [r.prompt_id for r in results.values()]
        assert len(set(ids)) == TOTAL  # every prompt id once
        assert Counter(submitted) == Counter(ids)  # exactly the ids submitted came back
        assert all(r.status == "completed" for r in results.values())
        files = [(f.subfolder, f.filename) for r in results.values() for f in r.files]
        assert len(files) == TOTAL
        assert len(set(files)) == TOTAL
        # No result was swapped: each one's stored prompt has its own colour.
        for i, result in results.items():
            entry = kit.history.get(result.prompt_id or "")
            assert entry is not None
            assert entry.prompt["1"]["inputs"]["color"] == offset + i
        assert kit.ws.tracked() == []  # no stream left behind
    finally:
        forget(*results.values())

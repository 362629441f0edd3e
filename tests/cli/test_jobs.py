"""``witness submit`` / ``wait`` / ``cancel`` and ``queue`` as subprocesses on the real server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.conftest import EXAMPLES, WitnessCli
from tests.cli.test_run import sleep_seconds
from tests.support.images import png_size
from witness import Witness

pytestmark = pytest.mark.integration

SLEEP = str(EXAMPLES / "sleep_progress.json")


def submit_sleeps(witness_cli: WitnessCli, count: int) -> list[str]:
    """Queue ``count`` 30-second sleeps; their ids."""
    return [
        witness_cli("submit", SLEEP, "-p", f"seconds={sleep_seconds(30)}").stdout.strip()
        for _ in range(count)
    ]


def wait_until_running(kit: Witness, prompt_id: str) -> None:
    deadline = time.monotonic() + 60
    while kit.queue.get().status_of(prompt_id) != "running":
        assert time.monotonic() < deadline, f"prompt {prompt_id} never started"
        time.sleep(0.1)


def test_submit_then_wait_saves_the_outputs(witness_cli: WitnessCli, tmp_path: Path) -> None:
    submitted = witness_cli("--json", "submit", str(EXAMPLES / "invert.json"), "-p", "width=7")
    assert submitted.returncode == 0, submitted.stderr
    record = submitted.record()
    assert record["status"] == "queued"
    assert isinstance(record["number"], int | float)
    waited = witness_cli("--json", "wait", record["prompt_id"], "--out", "out")
    assert waited.returncode == 0, waited.stderr
    result = waited.record()
    assert result["prompt_id"] == record["prompt_id"]
    assert result["status"] == "completed"
    assert png_size((tmp_path / result["files"][0]["path"]).read_bytes()) == (7, 64)
    human = witness_cli("submit", str(EXAMPLES / "invert.json"), "-p", "width=9")
    assert human.returncode == 0
    assert len(human.stdout.strip()) == 36  # just the id, for $(witness submit ...)


def test_queue_list_delete_cancel(witness_cli: WitnessCli, kit: Witness) -> None:
    running, pending, other = submit_sleeps(witness_cli, 3)
    try:
        wait_until_running(kit, running)
        listed = witness_cli("--json", "queue")
        assert listed.returncode == 0
        states = {r["prompt_id"]: r["state"] for r in listed.records()}
        assert states[running] == "running"
        assert states[pending] == states[other] == "pending"
        human = witness_cli("queue", "list")
        assert human.stdout.splitlines()[0].split() == ["STATE", "NUMBER", "PROMPT", "NODES"]
        assert running in human.stdout

        deleted = witness_cli("--json", "queue", "delete", pending)
        assert deleted.record() == {"deleted": [pending]}
        assert kit.queue.get().status_of(pending) is None

        cancelled = witness_cli("--json", "cancel", other)
        assert cancelled.record()["outcome"] == "dequeued"
        cancelled = witness_cli("--json", "cancel", running)
        assert cancelled.returncode == 0
        assert cancelled.record()["outcome"] == "interrupted"
        unknown = witness_cli("--json", "cancel", "00000000-0000-0000-0000-000000000000")
        assert unknown.returncode == 1
        assert unknown.records()[0]["outcome"] == "not_found"

        # wait on an interrupted prompt: exit status 1, status "interrupted"
        waited = witness_cli("--json", "wait", running, "--timeout", "60")
        assert waited.returncode == 1
        assert waited.record()["status"] == "interrupted"
    finally:
        for prompt_id in (running, pending, other):
            kit.cancel(prompt_id)


def test_queue_clear_and_interrupt(witness_cli: WitnessCli, kit: Witness) -> None:
    running, pending = submit_sleeps(witness_cli, 2)
    try:
        wait_until_running(kit, running)
        cleared = witness_cli("queue", "clear")
        assert cleared.returncode == 0
        assert "cleared" in cleared.stderr
        assert kit.queue.get().status_of(pending) is None
        interrupted = witness_cli("--json", "interrupt", running)
        assert interrupted.record() == {"interrupted": running}
        assert kit.wait(running, timeout=60).status == "interrupted"
        assert witness_cli("interrupt").returncode == 0  # nothing running: still fine
    finally:
        kit.cancel(running)
        kit.cancel(pending)


def test_wait_timeout_exits_124_without_cancelling(witness_cli: WitnessCli, kit: Witness) -> None:
    (prompt_id,) = submit_sleeps(witness_cli, 1)
    try:
        waited = witness_cli("--json", "wait", prompt_id, "--timeout", "1")
        assert waited.returncode == 124, waited.stderr
        assert waited.record()["status"] == "timeout"
        assert "still queued" in waited.stderr
        assert kit.queue.get().status_of(prompt_id) is not None  # someone else's: left alone
    finally:
        kit.cancel(prompt_id)

"""Ctrl-C during ``execute()`` (issue 13 item 2), with a real SIGINT to a child process: the
prompt is cancelled on the server exactly once (interrupted while running, dequeued while
pending), its id is logged, and KeyboardInterrupt propagates; ``cancel_on_error=False``
leaves it alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.conftest import EXAMPLES
from witness import Witness

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SLEEP = EXAMPLES / "sleep_progress.json"

CHILD = """
import logging, sys, witness
logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(name)s %(message)s")
kit = witness.Witness(sys.argv[1], dotenv_path=False)
print("READY", flush=True)
kit.execute(sys.argv[2], {"seconds": float(sys.argv[3])}, validate=False, timeout=120,
            cancel_on_error=sys.argv[4] == "1")
print("FINISHED", flush=True)
"""


def _queued_ids(kit: Witness) -> tuple[set[str], set[str]]:
    state = kit.queue.get()
    return {i.prompt_id for i in state.running}, {i.prompt_id for i in state.pending}


def _child(url: str, seconds: float, cancel: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(SLEEP), str(seconds), "1" if cancel else "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate: Callable[[], object], seconds: float = 60.0) -> object:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def _interrupt(child: subprocess.Popen[str]) -> tuple[str, str]:
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert "FINISHED" not in out
    assert "KeyboardInterrupt" in err, err
    return out, err


@pytest.mark.parametrize("where", ["running", "pending"])
def test_ctrl_c_cancels_the_prompt_once(
    kit: Witness, forget: Callable[..., None], where: str
) -> None:
    blocker = None
    before_running, before_pending = _queued_ids(kit)
    if where == "pending":  # keep the worker busy so the child's prompt waits in the queue
        blocker = kit.submit(SLEEP, {"seconds": 60.0}, validate=False)
        forget(blocker.prompt_id)
    child = _child(kit.settings.api_url, 30.0, cancel=True)
    try:
        known = before_running | before_pending | ({blocker.prompt_id} if blocker else set())

        def child_prompt() -> str | None:
            running, pending = _queued_ids(kit)
            mine = (running if where == "running" else pending) - known
            return next(iter(mine), None)

        prompt_id = str(_wait_for(child_prompt))
        forget(prompt_id)
        time.sleep(1.0)  # well inside the wait
        _, err = _interrupt(child)
    finally:
        if child.poll() is None:
            child.kill()
        if blocker is not None:
            blocker.cancel()
    logged = [line for line in err.splitlines() if line.startswith("LOG") and prompt_id in line]
    cancels = [line for line in logged if "cancelling" in line]
    assert len(cancels) == 1, err  # exactly once, naming the prompt
    assert "KeyboardInterrupt" in cancels[0]
    _wait_for(lambda: prompt_id not in set().union(*_queued_ids(kit)), 30)
    if where == "running":
        entry = _wait_for(lambda: kit.history.get(prompt_id), 30)
        kinds = [kind for kind, _ in entry.status.messages]  # type: ignore[attr-defined]
        assert "execution_interrupted" in kinds
    else:
        assert kit.history.get(prompt_id) is None  # dequeued: it never ran


def test_cancel_on_error_off_leaves_the_prompt(kit: Witness, forget: Callable[..., None]) -> None:
    blocker = kit.submit(SLEEP, {"seconds": 60.0}, validate=False)
    forget(blocker.prompt_id)
    running, pending = _queued_ids(kit)
    child = _child(kit.settings.api_url, 30.0, cancel=False)
    try:
        prompt_id = str(
            _wait_for(lambda: next(iter(_queued_ids(kit)[1] - pending - running), None))
        )
        forget(prompt_id)
        time.sleep(1.0)
        _, err = _interrupt(child)
        assert prompt_id in err  # the id the caller may want to cancel later
        time.sleep(1.0)
        assert prompt_id in _queued_ids(kit)[1]  # still pending
        kit.cancel(prompt_id)
    finally:
        if child.poll() is None:
            child.kill()
        blocker.cancel()

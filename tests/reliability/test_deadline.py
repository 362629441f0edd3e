"""One deadline for the whole call: ``execute(timeout=3)`` returns or raises within 3 s plus a
small margin whatever the server does, and names the stage it was in.

Two kinds of dead-but-listening server, both real sockets: one that never accepts (the kernel
completes the TCP handshake from its backlog, nothing ever reads) and one that accepts, reads
and never answers. The default timeouts (5 s connect, 30 s read, 10 s websocket connect) are
all longer than the deadline: only the deadline can end these calls in time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from witness import Witness
from witness.backends.native import NativeOptions
from witness.errors import WitnessTimeoutError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LIMIT = 3.0
MARGIN = 0.5


@pytest.fixture
def never_accepting() -> Iterator[str]:
    """URL of a socket that listens and never accepts (connections sit in the backlog)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture(params=["never_accepting", "silent_server"])
def dead_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(request.param)
    return url


@pytest.mark.parametrize(
    ("validate", "executor", "stage"),
    [
        (True, "websocket", "validate"),
        (False, "websocket", "submit"),
        (False, "http", "submit"),
    ],
)
def test_execute_ends_within_its_timeout_naming_the_stage(
    dead_url: str, validate: bool, executor: str, stage: str
) -> None:
    with Witness(dead_url, retries=3) as kit:
        started = time.monotonic()
        with pytest.raises(WitnessTimeoutError) as caught:
            kit.execute(
                EXAMPLES / "invert.json",
                timeout=LIMIT,
                validate=validate,
                options=NativeOptions(executor=executor),  # type: ignore[arg-type]
            )
        elapsed = time.monotonic() - started
    assert elapsed <= LIMIT + MARGIN, f"took {elapsed:.2f} s"
    error = caught.value
    assert error.stage == stage
    assert error.timeout == LIMIT
    assert stage in str(error)


def test_a_ui_workflow_times_out_in_conversion(dead_url: str) -> None:
    ui = {
        "last_node_id": 1,
        "last_link_id": 0,
        "nodes": [
            {
                "id": 1,
                "type": "EmptyImage",
                "inputs": [],
                "outputs": [],
                "widgets_values": [8, 8, 1, 0],
                "mode": 0,
            }
        ],
        "links": [],
        "version": 0.4,
    }
    with Witness(dead_url) as kit:
        started = time.monotonic()
        with pytest.raises(WitnessTimeoutError) as caught:
            kit.execute(ui, timeout=1.0)
    assert time.monotonic() - started <= 1.0 + MARGIN
    assert caught.value.stage == "convert"


def test_submit_and_wait_by_id_keep_to_their_timeout(dead_url: str) -> None:
    with Witness(dead_url) as kit:
        started = time.monotonic()
        with pytest.raises(WitnessTimeoutError) as caught:
            kit.submit(EXAMPLES / "invert.json", timeout=1.0, validate=False)
        assert caught.value.stage == "submit"
        assert time.monotonic() - started <= 1.0 + MARGIN
        started = time.monotonic()
        with pytest.raises(WitnessTimeoutError) as waited:
            kit.wait("0f6c9d1e-0000-4000-8000-000000000000", timeout=1.0)
        assert waited.value.stage == "wait"
        assert time.monotonic() - started <= 1.0 + MARGIN

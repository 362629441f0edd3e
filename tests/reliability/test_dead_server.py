"""A server killed mid-run and not restarted (issue 13 item 1): a real SIGKILL 3 s into a 30 s
prompt. The wait raises ServerUnavailableError naming the server and the prompt within 15 s
of the death (default ``unreachable_grace`` of 10 s), with at most a few log lines, at the
right level, that name the real cause. (A restart on the same port still ends in
PromptLostError: tests/reliability/test_server_faults.py.)"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.test_server_faults import SLEEP, _Started
from witness import Witness
from witness.errors import ServerUnavailableError, WaitTimeoutError

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend((current.__cause__, current.__context__))
    return seen


@pytest.mark.timeout(180)
@pytest.mark.parametrize("executor", ["websocket", "http"])
def test_a_dead_server_surfaces_within_the_grace_period(
    private_server: Callable[..., Any], caplog: pytest.LogCaptureFixture, executor: str
) -> None:
    server = private_server()
    killed: list[float] = []
    with Witness(server.url, executor=executor, dotenv_path=False) as kit:  # type: ignore[arg-type]
        assert kit.settings.unreachable_grace == 10.0  # the default
        started = _Started(kit)

        def kill_three_seconds_in() -> None:
            if started.event.wait(60):
                time.sleep(3.0)
                killed.append(time.monotonic())
                server.kill()

        killer = threading.Thread(target=kill_three_seconds_in, daemon=True)
        killer.start()
        caplog.set_level(logging.INFO, logger="witness")
        with pytest.raises(ServerUnavailableError) as caught:
            kit.execute(SLEEP, {"seconds": 30.0}, validate=False, timeout=90)
        surfaced = time.monotonic()
        killer.join(5)
    assert killed, "the prompt never started"
    seconds = surfaced - killed[0]
    assert seconds < 15.0, f"surfaced {seconds:.1f} s after the server died"
    error = caught.value
    (prompt_id,) = started.prompt_ids
    assert error.prompt_id == prompt_id
    assert prompt_id in str(error)
    assert server.url in str(error)
    # The real cause, not a websocket wait slice that happened to be the __context__.
    assert not [e for e in _chain(error) if isinstance(e, WaitTimeoutError)]
    assert "refused" in str(error.__cause__).lower() or "reset" in str(error.__cause__).lower()
    after_death = [r for r in caplog.records if r.created >= time.time() - (surfaced - killed[0])]
    loud = [r for r in after_death if r.levelno >= logging.WARNING]
    assert len(loud) <= 3, "\n".join(r.getMessage() for r in loud)
    assert not [r for r in after_death if "no websocket event" in r.getMessage()]
    outage = [r for r in loud if prompt_id in r.getMessage()]
    assert len(outage) == 1  # one line for the outage, naming the prompt and the cause
    assert any(word in outage[0].getMessage().lower() for word in ("refused", "reset"))

"""The server dies mid-run, the websocket drops mid-run: the caller always learns the outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.conftest import EXAMPLES
from witness import Witness
from witness.api_clients.ws_events import ExecutionStartEvent, ProgressEvent
from witness.errors import PromptLostError, TransportError

pytestmark = pytest.mark.integration

SLEEP = EXAMPLES / "sleep_progress.json"


class _Started:
    """Set when this client's socket reports that a prompt started running (registered
    before submitting, so the event cannot be missed)."""

    def __init__(self, kit: Witness) -> None:
        self.event = threading.Event()
        self.prompt_ids: set[str] = set()
        kit.ws.ensure_connected(timeout=10)
        kit.ws.add_callback(self._on, (ExecutionStartEvent, ProgressEvent))

    def _on(self, event: Any) -> None:
        if event.prompt_id:
            self.prompt_ids.add(event.prompt_id)
            self.event.set()

    def wait(self, prompt_id: str, timeout: float = 30.0) -> None:
        assert self.event.wait(timeout), "the prompt never started"
        assert prompt_id in self.prompt_ids


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_server_killed_and_restarted_prompt_is_lost(private_server: Callable[..., Any]) -> None:
    server = private_server()
    with Witness(server.url, timeout=120, retries=1, retry_backoff=0.05) as kit:
        started = _Started(kit)
        running = kit.submit(SLEEP, {"seconds": 30.0}, validate=False)
        pending = kit.submit(SLEEP, {"seconds": 30.0}, validate=False, executor="http")
        started.wait(running.prompt_id)
        server.kill()
        # While it is down, a wait with a short deadline ends with a typed transport error.
        with pytest.raises(TransportError):
            kit.wait(pending.prompt_id, timeout=1.5)
        server.restart()
        outcomes: dict[str, BaseException | None] = {}

        def wait(handle: Any) -> None:
            try:
                handle.wait(timeout=60)
                outcomes[handle.prompt_id] = None
            except BaseException as exc:
                outcomes[handle.prompt_id] = exc

        threads = [threading.Thread(target=wait, args=(h,)) for h in (running, pending)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert not any(t.is_alive() for t in threads), "a wait hung"
        for handle in (running, pending):
            error = outcomes[handle.prompt_id]
            assert isinstance(error, PromptLostError), error
            assert error.prompt_id == handle.prompt_id
            assert "restarted" in str(error)
        # The restarted server works, through the same client (websocket reconnected).
        after = kit.execute(EXAMPLES / "invert.json", {"color": 5}, timeout=60)
        assert after.ok


@pytest.mark.timeout(120)
@pytest.mark.parametrize("reconnect", [True, False])
def test_websocket_dropped_mid_run_result_arrives(
    kit: Witness, forget: Callable[..., None], reconnect: bool
) -> None:
    """The socket is cut while the prompt runs; with reconnect the client re-opens it, without
    it the tracker falls back to history polling. Either way the result arrives, complete."""
    started = _Started(kit)
    ws = kit.ws
    ws.reconnect = reconnect
    handle = kit.submit(SLEEP, {"seconds": 1.5})
    forget(handle.prompt_id)
    started.wait(handle.prompt_id)
    ws.reconnect_now()  # shuts the socket down under the receive thread
    result = handle.wait(timeout=60)
    forget(result)
    assert result.ok, result.msg
    assert len(result.images) == 1
    if reconnect:
        assert ws.reconnect_count >= 1 or not ws.connected
    else:
        assert ws.closed  # gave up: the result came through history polling

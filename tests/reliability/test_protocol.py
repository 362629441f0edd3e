"""What ComfyUI's own execution tests send, through witness's clients (issue 13 item 11): the
server's verdict comes back typed instead of being pre-empted, typed websocket events keep the
raw payload, and a websocket client that is never closed stops reconnecting."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.conftest import EXAMPLES, fresh_params
from witness import Witness
from witness.api_clients.websocket_client import DEFAULT_MAX_RECONNECT_TIME, WebSocketClient
from witness.api_clients.ws_events import (
    ExecutedEvent,
    ExecutingEvent,
    ExecutionStartEvent,
    ExecutionSuccessEvent,
)
from witness.errors import PromptValidationError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

INVERT: dict[str, Any] = json.loads((EXAMPLES / "invert.json").read_text())


@pytest.mark.parametrize(
    ("targets", "error_type"),
    [([], "prompt_no_outputs"), (["nope"], None)],
)
def test_partial_execution_targets_are_sent_and_judged_by_the_server(
    kit: Witness, targets: list[str], error_type: str | None
) -> None:
    with pytest.raises(PromptValidationError) as caught:
        kit.prompt.submit(INVERT, partial_execution_targets=targets)
    if error_type is not None:
        assert caught.value.error_type == error_type
    assert caught.value.status == 400


def test_history_paging_values_the_server_accepts(
    kit: Witness, forget: Callable[..., None]
) -> None:
    for _ in range(2):
        forget(kit.execute(INVERT, fresh_params()))
    everything = kit.history.get_all()
    newest = list(everything)[-1]
    assert list(kit.history.get_all(offset=-1, max_items=1)) == [newest]
    assert kit.history.get_all(max_items=0) == {}
    assert len(kit.history.get_all(offset=0, max_items=0)) == 1  # the server's own rule
    assert list(kit.history.get_all(offset=-5)) == list(everything)


def test_typed_websocket_events_keep_the_raw_data(
    kit: Witness, forget: Callable[..., None]
) -> None:
    prompt_id = str(uuid.uuid4())
    kit.ws.ensure_connected(timeout=10)
    with kit.ws.track(prompt_id) as stream:
        kit.prompt.submit(INVERT, client_id=kit.client_id, prompt_id=prompt_id)
        events = list(stream.iter(timeout=60))
    forget(prompt_id)
    typed = [
        e
        for e in events
        if isinstance(
            e, ExecutionStartEvent | ExecutingEvent | ExecutedEvent | ExecutionSuccessEvent
        )
    ]
    assert {type(e) for e in typed} >= {ExecutionStartEvent, ExecutedEvent, ExecutionSuccessEvent}
    for event in typed:
        assert event.data.get("prompt_id") == prompt_id, event
    executed = next(e for e in typed if isinstance(e, ExecutedEvent))
    assert executed.data["output"] == executed.output
    assert executed.data["node"] == executed.node
    assert "timestamp" in next(e for e in typed if isinstance(e, ExecutionSuccessEvent)).data


def test_a_websocket_client_never_closed_stops_reconnecting(
    private_server: Callable[..., Any],
) -> None:
    assert DEFAULT_MAX_RECONNECT_TIME is not None
    assert 0 < DEFAULT_MAX_RECONNECT_TIME <= 300
    server = private_server()
    kit = Witness(server.url, connect_timeout=1.0, dotenv_path=False)
    client = WebSocketClient(kit.http, reconnect_delay=0.1, max_reconnect_time=3.0)
    assert WebSocketClient(kit.http).max_reconnect_time == DEFAULT_MAX_RECONNECT_TIME
    client.connect(timeout=10)
    server.kill()
    started = time.monotonic()
    while client.state != "closed" and time.monotonic() - started < 30:
        time.sleep(0.1)
    assert client.state == "closed", client.state
    assert time.monotonic() - started < 15
    assert "gave up reconnecting" in (client.last_error or "") or client.closed
    kit.close()

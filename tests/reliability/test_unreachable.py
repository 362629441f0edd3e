"""No server, and a server that never answers: typed errors naming the URL, within the limit."""

from __future__ import annotations

import uuid

import pytest

from tests.reliability.conftest import EXAMPLES
from witness import Witness
from witness.errors import (
    RequestTimeoutError,
    ServerUnavailableError,
    TransportError,
    WebSocketError,
)

pytestmark = pytest.mark.timeout(60)


def test_no_server_execute_names_the_url(free_url: str) -> None:
    with Witness(free_url, retries=1, retry_backoff=0.01, connect_timeout=1.0) as kit:  # noqa: SIM117
        with pytest.raises(ServerUnavailableError) as caught:
            kit.execute(EXAMPLES / "invert.json", {"color": 1})
    assert free_url in str(caught.value)
    assert caught.value.url.startswith(free_url)
    assert "cannot reach" in str(caught.value)


@pytest.mark.parametrize("executor", ["websocket", "http"])
def test_no_server_without_validation_fails_at_submit(free_url: str, executor: str) -> None:
    """No /object_info call: the websocket fails first (falls back), then POST /prompt."""
    with Witness(free_url, retries=0, connect_timeout=1.0, executor=executor) as kit:  # type: ignore[arg-type]  # noqa: SIM117
        with pytest.raises(ServerUnavailableError) as caught:
            kit.execute(EXAMPLES / "invert.json", validate=False)
    assert f"POST {free_url}/api/prompt" in str(caught.value)


def test_no_server_wait_and_clients(free_url: str) -> None:
    with Witness(free_url, retries=0, connect_timeout=1.0) as kit:
        with pytest.raises(TransportError) as waited:
            kit.wait(str(uuid.uuid4()), timeout=1.5)
        assert free_url in str(waited.value)
        with pytest.raises(ServerUnavailableError):
            kit.queue.get()
        with pytest.raises(WebSocketError) as ws:
            kit.ws.connect(timeout=1.0)
        assert free_url.replace("http", "ws", 1) in str(ws.value)
        assert "refused" in str(ws.value)


def test_silent_server_read_timeout_names_url_and_limit(silent_server: str) -> None:
    with Witness(silent_server, read_timeout=1.0, connect_timeout=1.0, retries=2) as kit:
        with pytest.raises(RequestTimeoutError) as caught:
            kit.execute(EXAMPLES / "invert.json")
        error = caught.value
        assert error.phase == "read"
        assert error.timeout == 1.0
        assert silent_server in str(error)
        assert "within 1.0 s" in str(error)


def test_silent_server_submit_without_validation(silent_server: str) -> None:
    """The websocket upgrade is never answered (fallback to polling), then POST /prompt times
    out and is not retried (it could run twice)."""
    with Witness(silent_server, read_timeout=1.0, connect_timeout=1.0, retries=3) as kit:
        with pytest.raises(RequestTimeoutError) as caught:
            kit.execute(EXAMPLES / "invert.json", validate=False, timeout=30)
        assert f"POST {silent_server}/api/prompt" in str(caught.value)
        assert caught.value.timeout == 1.0


def test_silent_server_websocket_connect_times_out(silent_server: str) -> None:
    with Witness(silent_server, connect_timeout=1.0) as kit:  # noqa: SIM117
        with pytest.raises(WebSocketError) as caught:
            kit.ws.connect(timeout=1.0)
    assert "timed out" in str(caught.value)

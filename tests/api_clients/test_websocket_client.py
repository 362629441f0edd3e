"""WebSocketClient: against the real ComfyUI server, plus a few fakes for what it cannot do.

The real-server tests submit prompts with ``POST /prompt`` directly (the client id of the
websocket, a client-made prompt id) and follow them with ``ws.track(prompt_id)``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from scripts.comfyui_server import ComfyServer
from tests.support.images import png_size
from witness.api_clients import WebSocketClient
from witness.api_clients.websocket_client import PromptEvents
from witness.api_clients.ws_events import (
    ConnectionEvent,
    Event,
    ExecutedEvent,
    ExecutingEvent,
    ExecutionCachedEvent,
    ExecutionErrorEvent,
    ExecutionInterruptedEvent,
    ExecutionStartEvent,
    ExecutionSuccessEvent,
    FeatureFlagsEvent,
    LogsEvent,
    PreviewEvent,
    ProgressEvent,
    ProgressStateEvent,
    ReconnectedEvent,
    StatusEvent,
    TextEvent,
    decode_text,
)
from witness.config.settings import Settings
from witness.errors import (
    ApiError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    RequestTimeoutError,
    ServerError,
    ServerUnavailableError,
    UnauthorizedError,
    WaitTimeoutError,
    WebSocketError,
    WebSocketHandshakeError,
    WebSocketTimeoutError,
    WebSocketUnavailableError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient
from witness.transport.retry import RetryPolicy

PNG_MAGIC = bytes.fromhex("89504e470d0a1a0a")
RUN_TIMEOUT = 60.0


# -- helpers -------------------------------------------------------------------------------


def new_id() -> str:
    return str(uuid.uuid4())


def color() -> int:
    """A random colour, so the server's cache never serves a test's graph."""
    return random.randint(0, 0xFFFFFF)


def image_node(width: int = 64, height: int = 64) -> dict[str, Any]:
    return {
        "class_type": "EmptyImage",
        "inputs": {"width": width, "height": height, "batch_size": 1, "color": color()},
    }


def sleep_graph(*seconds: float, output: str = "PreviewImage") -> dict[str, Any]:
    """EmptyImage -> TestSleep x N -> an output node (node ids "1", "2", ...)."""
    graph: dict[str, Any] = {"1": image_node()}
    previous = "1"
    for index, delay in enumerate(seconds, start=2):
        graph[str(index)] = {
            "class_type": "TestSleep",
            "inputs": {"value": [previous, 0], "seconds": delay},
        }
        previous = str(index)
    graph[str(len(graph) + 1)] = {"class_type": output, "inputs": {"images": [previous, 0]}}
    return graph


def submit(http: HttpClient, ws: WebSocketClient, graph: dict[str, Any], prompt_id: str) -> None:
    body = {"prompt": graph, "client_id": ws.client_id, "prompt_id": prompt_id}
    answer = http.request_json("POST", "/prompt", json=body, idempotent=False)
    assert answer["prompt_id"] == prompt_id
    assert answer["node_errors"] == {}


def run(
    http: HttpClient, ws: WebSocketClient, graph: dict[str, Any], timeout: float = RUN_TIMEOUT
) -> tuple[str, list[Event], PromptEvents]:
    """Track, submit and collect one prompt's events up to its completion signal."""
    prompt_id = new_id()
    with ws.track(prompt_id) as stream:
        submit(http, ws, graph, prompt_id)
        events = list(stream.iter(timeout=timeout))
    return prompt_id, events, stream


def history_entry(http: HttpClient, prompt_id: str) -> dict[str, Any] | None:
    body = http.request_json("GET", f"/history/{prompt_id}")
    entry = body.get(prompt_id)
    return entry if isinstance(entry, dict) else None


def in_queue(http: HttpClient, prompt_id: str) -> bool:
    queue = http.request_json("GET", "/queue")
    return any(
        item[1] == prompt_id for key in ("queue_running", "queue_pending") for item in queue[key]
    )


def final_status(
    http: HttpClient, stream: PromptEvents, timeout: float = RUN_TIMEOUT
) -> tuple[str, list[Event]]:
    """How a prompt ended: its websocket completion, or GET /history/{id} after a gap.

    Returns ``("success" | "error" | "interrupted" | "lost", events seen)``. After a
    :class:`ReconnectedEvent` the completion signal may have been sent while the socket was
    down, so history (the truth) is consulted; a prompt in neither history nor queue is lost.
    """
    deadline = time.monotonic() + timeout
    events: list[Event] = []
    while time.monotonic() < deadline:
        try:
            event = stream.get(timeout=0.5)
        except WaitTimeoutError:
            event = None
        if event is not None:
            events.append(event)
            if isinstance(event, ExecutingEvent) and event.finished:
                return stream.outcome or "success", events
        if event is None or isinstance(event, ReconnectedEvent):
            if not any(isinstance(e, ReconnectedEvent) for e in events):
                continue
            entry = history_entry(http, stream.prompt_id)
            if entry is not None:
                status = entry["status"]
                if status["status_str"] == "success":
                    return "success", events
                kinds = {m[0] for m in status.get("messages", [])}
                return ("interrupted" if "execution_interrupted" in kinds else "error"), events
            if not in_queue(http, stream.prompt_id):
                return "lost", events
    raise AssertionError(f"prompt {stream.prompt_id} did not end within {timeout} s: {events}")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def ws_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("witness-ws-")]


@pytest.fixture
def ws_factory(http: HttpClient) -> Iterator[Callable[..., WebSocketClient]]:
    """Connected clients on the session's server; all closed after the test."""
    clients: list[WebSocketClient] = []

    def make(client_http: HttpClient | None = None, **kwargs: Any) -> WebSocketClient:
        client = WebSocketClient(client_http or http, **kwargs)
        clients.append(client)
        client.connect(timeout=10)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def ws(ws_factory: Callable[..., WebSocketClient]) -> WebSocketClient:
    return ws_factory()


# -- connecting and closing ----------------------------------------------------------------


@pytest.mark.integration
def test_connect_handshake_and_clean_close(http: HttpClient) -> None:
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    client = WebSocketClient(http)
    seen: list[Event] = []
    client.add_callback(seen.append)
    client.connect(timeout=10)
    assert client.connected
    assert client.state == "connected"
    features = client.server_features
    assert isinstance(features, FeatureFlagsEvent)
    assert features.supports_preview_metadata
    assert features.max_upload_size == 100 * 1024 * 1024
    raw = client._ws
    assert raw is not None
    assert raw.sock is not None
    assert len(ws_threads()) >= 1
    client.connect()  # already connected: no-op
    client.close(timeout=5)
    assert client.state == "closed"
    assert getattr(raw, "sock", None) is None  # the socket was closed
    assert set(threading.enumerate()) <= threads_before
    assert open_fds() <= fds_before
    kinds = [type(e) for e in seen]
    assert kinds[0] is ConnectionEvent
    assert StatusEvent in kinds
    assert FeatureFlagsEvent in kinds
    status = next(e for e in seen if isinstance(e, StatusEvent))
    assert status.sid == client.client_id
    last = seen[-1]
    assert isinstance(last, ConnectionEvent)
    assert last.state == "closed"
    assert last.error is None
    client.close()  # twice is fine
    with pytest.raises(WebSocketError, match="closed"):
        client.connect()


@pytest.mark.integration
def test_context_manager_joins_thread(http: HttpClient) -> None:
    before = set(threading.enumerate())
    with WebSocketClient(http, client_id="witness-ctx-" + uuid.uuid4().hex) as client:
        assert client.connected
        assert client.client_id.startswith("witness-ctx-")
        assert "clientId=witness-ctx-" in client.url
    assert set(threading.enumerate()) <= before
    assert client.closed


def test_connect_failure_names_redacted_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        api_url=f"http://127.0.0.1:{port}",
        api_key="sekrit-api-key",
        query_params={"token": "sekrit-query-token"},
    )
    with HttpClient(settings) as http:
        client = WebSocketClient(http)
        before = set(threading.enumerate())
        with pytest.raises(WebSocketError) as info:
            client.connect(timeout=2)
        # A refused websocket is a ServerUnavailableError, as a refused HTTP request is.
        assert isinstance(info.value, ServerUnavailableError)
        assert isinstance(info.value, WebSocketUnavailableError)
        assert info.value.sent is False
        with pytest.raises(ServerUnavailableError) as over_http:
            http.request("GET", "/queue", retry=RetryPolicy(retries=0))
        assert over_http.value.sent is False
        message = str(info.value)
        assert "connection refused" in message
        assert f"ws://127.0.0.1:{port}/ws?" in message
        assert "sekrit" not in message
        assert "sekrit" not in repr(client)
        assert info.value.url == client.url
        assert "token=%2A%2A%2A" in client.url or "token=***" in client.url
        assert set(threading.enumerate()) <= before
        assert not client.connected
        client.close()


@pytest.mark.integration
def test_mismatching_origin_is_refused_with_403(comfy_url: str) -> None:
    # The client never sends an Origin of its own; one configured by the user that does not
    # match the host trips the server's origin check.
    settings = Settings(api_url=comfy_url, headers={"Origin": "http://evil.example"})
    with HttpClient(settings) as http:
        client = WebSocketClient(http)
        with pytest.raises(WebSocketError, match="HTTP 403") as caught:
            client.connect(timeout=5)
        client.close()
    # The same class and fields as a 403 over HTTP.
    assert isinstance(caught.value, ForbiddenError)
    assert caught.value.status == 403


@pytest.mark.integration
def test_invalid_arguments(http: HttpClient) -> None:
    with pytest.raises(InvalidArgumentError):
        WebSocketClient(http, ping_timeout=0)
    with pytest.raises(InvalidArgumentError):
        WebSocketClient(http, max_reconnect_attempts=0)
    with pytest.raises(InvalidArgumentError):
        WebSocketClient(http, client_id=" ")
    client = WebSocketClient(http)
    with pytest.raises(InvalidArgumentError):
        client.track("")
    with pytest.raises(InvalidArgumentError):
        client.add_callback(print, int)  # type: ignore[arg-type]


# -- running prompts -----------------------------------------------------------------------


@pytest.mark.integration
def test_sleep_run_gives_ordered_events(http: HttpClient, ws: WebSocketClient) -> None:
    prompt_id, events, stream = run(http, ws, sleep_graph(0.5))
    assert stream.finished
    assert stream.outcome == "success"
    assert all(e.prompt_id == prompt_id for e in events)
    kinds = [type(e) for e in events]
    assert kinds[0] is ExecutionStartEvent
    assert kinds[1] is ExecutionCachedEvent
    assert kinds.index(ExecutionSuccessEvent) < len(kinds) - 1
    final = events[-1]
    assert isinstance(final, ExecutingEvent)
    assert final.finished
    progress = [e for e in events if isinstance(e, ProgressEvent) and e.node == "2"]
    assert len(progress) >= 2
    values = [e.value for e in progress]
    assert values == sorted(values)
    assert all(e.max == pytest.approx(0.5) for e in progress)
    states = [e for e in events if isinstance(e, ProgressStateEvent)]
    assert states[-1].nodes["2"].state == "finished"
    executing = [e.node for e in events if isinstance(e, ExecutingEvent) and e.node]
    assert executing == ["1", "2", "3"]
    executed = [e for e in events if isinstance(e, ExecutedEvent)]
    assert [e.node for e in executed] == ["3"]
    assert executed[0].output is not None
    # The completion signal comes after the history entry is written.
    entry = history_entry(http, prompt_id)
    assert entry is not None
    assert entry["status"]["status_str"] == "success"
    # Finished streams unregister themselves; nothing more comes.
    assert prompt_id not in ws.tracked()
    assert stream.get(timeout=0.1) is None


@pytest.mark.integration
def test_iterating_the_stream_directly_and_draining(http: HttpClient, ws: WebSocketClient) -> None:
    prompt_id = new_id()
    stream = ws.track(prompt_id, timeout=RUN_TIMEOUT)
    submit(http, ws, sleep_graph(0.05), prompt_id)
    count = 0
    for event in stream:
        count += 1
        assert event.prompt_id == prompt_id
    assert count > 5
    assert stream.drain() == []
    stream.close()
    stream.close()
    assert stream.closed


@pytest.mark.integration
@pytest.mark.parametrize("metadata", [True, False], ids=["type4", "type1"])
def test_save_image_websocket_previews(
    http: HttpClient, ws_factory: Callable[..., WebSocketClient], metadata: bool
) -> None:
    client = ws_factory(preview_metadata=metadata)
    graph = {
        "1": image_node(96, 48),
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
    prompt_id, events, _ = run(http, client, graph)
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert len(previews) == 1
    preview = previews[0]
    assert preview.prompt_id == prompt_id
    assert preview.node_id == "2"
    assert preview.mime_type == "image/png"
    assert preview.image_format == "PNG"
    assert png_size(preview.image) == (96, 48)
    if metadata:
        assert preview.binary_type == 4
        assert preview.attributed is False
        assert preview.metadata is not None
        assert preview.metadata["prompt_id"] == prompt_id
    else:
        assert preview.binary_type == 1
        assert preview.attributed is True  # type 1 carries no ids: the client attributed it
        assert preview.metadata is None


@pytest.mark.integration
def test_large_frame_full_size_image(http: HttpClient, ws: WebSocketClient) -> None:
    graph = {
        "1": image_node(2048, 2048),
        "2": {
            "class_type": "ImageAddNoise",
            "inputs": {"image": ["1", 0], "seed": random.randint(0, 2**31), "strength": 1.0},
        },
        "3": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["2", 0]}},
    }
    _, events, stream = run(http, ws, graph, timeout=120)
    assert stream.outcome == "success"
    previews = [e for e in events if isinstance(e, PreviewEvent)]
    assert len(previews) == 1
    assert previews[0].size > 4 * 1024 * 1024
    assert png_size(previews[0].image) == (2048, 2048)
    assert ws.connected
    assert ws.reconnect_count == 0


@pytest.mark.integration
def test_text_frames_are_attributed_only_to_the_owner(
    http: HttpClient, ws_factory: Callable[..., WebSocketClient]
) -> None:
    owner = ws_factory()
    bystander = ws_factory()
    bystander_texts: list[TextEvent] = []
    bystander.add_callback(bystander_texts.append, TextEvent)  # type: ignore[arg-type]
    graph = {
        "1": image_node(64, 32),
        "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "4": {
            "class_type": "EmptyImage",
            "inputs": {"width": ["2", 0], "height": 8, "batch_size": 1, "color": color()},
        },
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }
    _, events, _ = run(http, owner, graph)
    texts = [e for e in events if isinstance(e, TextEvent)]
    assert len(texts) == 1
    assert texts[0].node_id == "2"
    assert texts[0].attributed
    assert "width: 64, height: 32" in texts[0].text
    # The server broadcasts TEXT frames: the bystander gets it too, but not attributed.
    deadline = time.monotonic() + 5
    while not bystander_texts and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bystander_texts
    assert all(t.prompt_id is None for t in bystander_texts)


@pytest.mark.integration
def test_execution_error_is_reported(http: HttpClient, ws: WebSocketClient) -> None:
    graph = {
        "1": image_node(),
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "../x"}},
    }
    prompt_id, events, stream = run(http, ws, graph)
    assert stream.outcome == "error"
    error = stream.error
    assert isinstance(error, ExecutionErrorEvent)
    assert error.prompt_id == prompt_id
    assert error.node_id == "2"
    assert error.node_type == "SaveImage"
    assert "outside the output folder" in error.exception_message
    assert error.traceback
    assert not any(isinstance(e, ExecutionSuccessEvent) for e in events)
    final = events[-1]
    assert isinstance(final, ExecutingEvent)
    assert final.finished


@pytest.mark.integration
def test_raising_test_node_is_reported(http: HttpClient, ws: WebSocketClient) -> None:
    graph = {
        "1": image_node(),
        "2": {"class_type": "TestSyncError", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    _, _, stream = run(http, ws, graph)
    assert stream.outcome == "error"
    assert stream.error is not None
    assert stream.error.exception_type == "RuntimeError"
    assert "Intentional sync execution error" in stream.error.exception_message


@pytest.mark.integration
def test_interrupt_is_reported(http: HttpClient, ws: WebSocketClient) -> None:
    prompt_id = new_id()
    with ws.track(prompt_id) as stream:
        submit(http, ws, sleep_graph(0.6, 0.6, 0.6), prompt_id)
        events: list[Event] = []
        for event in stream.iter(timeout=RUN_TIMEOUT):
            events.append(event)
            if (
                isinstance(event, ProgressEvent)
                and len([e for e in events if isinstance(e, ProgressEvent)]) == 1
            ):
                http.request("POST", "/interrupt", json={"prompt_id": prompt_id})
    assert stream.outcome == "interrupted"
    interrupted = stream.interrupted
    assert isinstance(interrupted, ExecutionInterruptedEvent)
    assert interrupted.prompt_id == prompt_id
    assert interrupted.node_type == "TestSleep"
    assert isinstance(events[-1], ExecutingEvent)
    entry = history_entry(http, prompt_id)
    assert entry is not None
    assert entry["status"]["status_str"] == "error"


@pytest.mark.integration
def test_two_clients_see_only_their_own_prompts(
    http: HttpClient, ws_factory: Callable[..., WebSocketClient]
) -> None:
    first, second = ws_factory(), ws_factory()
    seen: dict[str, set[str]] = {first.client_id: set(), second.client_id: set()}

    def collector(client_id: str) -> Callable[[Event], None]:
        def collect(event: Event) -> None:
            if event.prompt_id:
                seen[client_id].add(event.prompt_id)

        return collect

    for client in (first, second):
        client.add_callback(collector(client.client_id))
    id1, id2 = new_id(), new_id()
    with first.track(id1) as s1, second.track(id2) as s2:
        submit(http, first, sleep_graph(0.2), id1)
        submit(http, second, sleep_graph(0.2), id2)
        events1 = list(s1.iter(timeout=RUN_TIMEOUT))
        events2 = list(s2.iter(timeout=RUN_TIMEOUT))
    assert s1.outcome == s2.outcome == "success"
    assert any(isinstance(e, ProgressEvent) for e in events1)
    assert any(isinstance(e, ProgressEvent) for e in events2)
    assert seen[first.client_id] == {id1}
    assert seen[second.client_id] == {id2}


# -- consumers -----------------------------------------------------------------------------


@pytest.mark.integration
def test_callbacks_per_type_removal_and_errors(
    http: HttpClient, ws: WebSocketClient, caplog: pytest.LogCaptureFixture
) -> None:
    progress: list[Event] = []
    everything: list[Event] = []

    def explode(event: Event) -> None:
        raise RuntimeError("callback bug")

    ws.add_callback(progress.append, (ProgressEvent, ExecutionSuccessEvent))
    subscription = ws.add_callback(everything.append)
    ws.add_callback(explode, ExecutingEvent)
    with caplog.at_level(logging.ERROR, logger="witness.api_clients.websocket_client"):
        _, events, stream = run(http, ws, sleep_graph(0.1))
    assert stream.outcome == "success"
    assert ws.connected  # the raising callback did not kill the thread
    assert progress
    assert all(isinstance(e, ProgressEvent | ExecutionSuccessEvent) for e in progress)
    assert len(everything) >= len(events)
    assert "callback bug" in caplog.text
    subscription.remove()
    assert ws.remove_callback(explode)
    assert not ws.remove_callback(explode)
    count = len(everything)
    run(http, ws, sleep_graph(0.05))
    assert len(everything) == count


@pytest.mark.integration
def test_wait_for(http: HttpClient, ws: WebSocketClient) -> None:
    prompt_id = new_id()
    result: list[Event] = []
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            result.append(
                ws.wait_for(
                    lambda e: (
                        isinstance(e, ExecutingEvent) and e.finished and e.prompt_id == prompt_id
                    ),
                    timeout=RUN_TIMEOUT,
                )
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while not ws._waiters and time.monotonic() < deadline:
        time.sleep(0.01)
    submit(http, ws, sleep_graph(0.05), prompt_id)
    thread.join(RUN_TIMEOUT)
    assert not errors
    assert len(result) == 1
    assert result[0].prompt_id == prompt_id
    with pytest.raises(WaitTimeoutError):
        ws.wait_for(lambda e: False, timeout=0.2)

    def broken(event: Event) -> bool:
        raise KeyError("predicate bug")

    def trigger() -> None:
        # Submit once the waiter is registered, so that some event reaches the predicate.
        while not ws._waiters:
            time.sleep(0.01)
        submit(http, ws, sleep_graph(0.05), new_id())

    trigger_thread = threading.Thread(target=trigger)
    trigger_thread.start()
    with pytest.raises(KeyError, match="predicate bug"):
        ws.wait_for(broken, timeout=10)
    trigger_thread.join(10)


@pytest.mark.integration
def test_logs_subscription(http: HttpClient, ws: WebSocketClient) -> None:
    body = {"clientId": ws.client_id, "enabled": True}
    http.request("PATCH", "/internal/logs/subscribe", json=body, api=False)
    logs: list[LogsEvent] = []
    ws.add_callback(logs.append, LogsEvent)  # type: ignore[arg-type]
    try:
        run(http, ws, sleep_graph(0.05))
        # The server logs "Prompt executed in ..." right after a prompt.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            "Prompt executed" in entry.m for event in logs for entry in event.entries
        ):
            time.sleep(0.02)
        assert any("Prompt executed" in entry.m for event in logs for entry in event.entries)
    finally:
        body["enabled"] = False
        http.request("PATCH", "/internal/logs/subscribe", json=body, api=False)


@pytest.mark.integration
def test_close_wakes_streams_and_waiters(http: HttpClient) -> None:
    client = WebSocketClient(http)
    client.connect(timeout=10)
    stream = client.track(new_id())
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            client.wait_for(lambda e: False, timeout=30)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    deadline = time.monotonic() + 5
    while not client._waiters and time.monotonic() < deadline:
        time.sleep(0.01)
    client.close()
    thread.join(5)
    assert len(errors) == 1
    assert isinstance(errors[0], WebSocketError)
    closed = stream.get(timeout=1)
    assert isinstance(closed, ConnectionEvent)
    assert closed.state == "closed"
    with pytest.raises(WebSocketError, match="closed"):
        stream.get(timeout=1)
    late = client.track(new_id())
    with pytest.raises(WebSocketError):
        late.get(timeout=1)


@pytest.mark.integration
def test_close_from_a_callback(http: HttpClient) -> None:
    client = WebSocketClient(http)
    client.add_callback(lambda e: client.close(), FeatureFlagsEvent)
    client.connect(timeout=10)
    deadline = time.monotonic() + 5
    while not client.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.closed
    thread = client._thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()


# -- reconnecting --------------------------------------------------------------------------


@pytest.mark.integration
def test_dropped_connection_reconnects_and_prompt_is_reconciled(
    http: HttpClient, ws_factory: Callable[..., WebSocketClient]
) -> None:
    client = ws_factory(reconnect_delay=0.05)
    states: list[ConnectionEvent] = []
    client.add_callback(states.append, ConnectionEvent)  # type: ignore[arg-type]
    prompt_id = new_id()
    with client.track(prompt_id) as stream:
        submit(http, client, sleep_graph(0.5, 0.5, 0.5), prompt_id)
        first = stream.get(timeout=RUN_TIMEOUT)
        while not isinstance(first, ProgressEvent):
            first = stream.get(timeout=RUN_TIMEOUT)
        client._abort_socket()  # the connection breaks mid-run
        outcome, events = final_status(http, stream)
    assert outcome == "success"
    assert [s.state for s in states[:3]] == ["disconnected", "reconnecting", "connected"]
    assert client.reconnect_count == 1
    assert client.connected
    gap = [e for e in events if isinstance(e, ReconnectedEvent)]
    assert len(gap) == 1
    assert gap[0].prompt_id == prompt_id
    # The prompt was still running after the reconnect: its later events came through the
    # new socket, so the same client id is registered again.
    after = events[events.index(gap[0]) + 1 :]
    assert any(isinstance(e, ProgressEvent) for e in after)
    # A fresh prompt runs normally on the re-opened socket.
    _, _, again = run(http, client, sleep_graph(0.05))
    assert again.outcome == "success"


@pytest.mark.integration
def test_finished_during_the_gap_is_found_in_history(
    http: HttpClient, ws_factory: Callable[..., WebSocketClient]
) -> None:
    # Reconnect only after the prompt is done: its completion was sent to nobody.
    client = ws_factory(reconnect_delay=1.5, max_reconnect_delay=1.5)
    prompt_id = new_id()
    with client.track(prompt_id) as stream:
        submit(http, client, sleep_graph(0.3), prompt_id)
        event = stream.get(timeout=RUN_TIMEOUT)
        while not isinstance(event, ExecutionStartEvent):
            event = stream.get(timeout=RUN_TIMEOUT)
        client._abort_socket()
        outcome, events = final_status(http, stream)
    assert outcome == "success"
    assert any(isinstance(e, ReconnectedEvent) for e in events)
    assert not any(isinstance(e, ExecutingEvent) and e.finished for e in events)


@pytest.mark.integration
@pytest.mark.slow
def test_server_restart_reconnects_and_reports_the_lost_prompt(
    private_server: Callable[..., ComfyServer],
) -> None:
    server = private_server()
    settings = Settings(api_url=server.url, read_timeout=30.0, retries=0)
    with HttpClient(settings) as http:
        client = WebSocketClient(http, reconnect_delay=0.1, max_reconnect_delay=0.5)
        states: list[ConnectionEvent] = []
        client.add_callback(states.append, ConnectionEvent)  # type: ignore[arg-type]
        client.connect(timeout=10)
        try:
            prompt_id = new_id()
            with client.track(prompt_id) as stream:
                submit(http, client, sleep_graph(5.0), prompt_id)
                event = stream.get(timeout=RUN_TIMEOUT)
                while not isinstance(event, ProgressEvent):
                    event = stream.get(timeout=RUN_TIMEOUT)
                server.kill()
                disconnected = stream.get(timeout=10)
                assert isinstance(disconnected, ConnectionEvent)
                assert disconnected.state == "disconnected"
                assert not client.connected
                server.restart()
                client.ensure_connected(timeout=30)
                outcome, events = final_status(http, stream)
            assert outcome == "lost"  # the restart emptied queue and history
            assert any(isinstance(e, ReconnectedEvent) for e in events)
            kinds = [s.state for s in states]
            assert kinds[0] == "connected"
            assert "disconnected" in kinds
            assert "reconnecting" in kinds
            assert kinds[-1] == "connected"
            failed = [s for s in states if s.state == "reconnecting" and s.attempt > 1]
            assert all(s.error for s in failed)
            # Events flow again on the new server.
            _, _, again = run(http, client, sleep_graph(0.05))
            assert again.outcome == "success"
        finally:
            client.close()
        assert not client._thread or not client._thread.is_alive()


# -- a fake server for what the real one cannot do -----------------------------------------


class SilentServer:
    """Accepts websocket upgrades, records the request, then never answers anything."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            request = data.decode("latin-1")
            self.requests.append(request)
            self._respond(conn, request)

    def _respond(self, conn: socket.socket, request: str) -> None:
        """Accept the upgrade (then stay silent)."""
        key = next(
            line.split(":", 1)[1].strip()
            for line in request.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(  # noqa: S324 - mandated by RFC 6455
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()
            ).digest()
        ).decode()
        conn.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self.thread.join(5)
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()


def test_headers_cookies_query_and_no_origin() -> None:
    server = SilentServer()
    settings = Settings(
        api_url=f"http://127.0.0.1:{server.port}",
        api_key="key-1234",
        cookies={"session": "c00kie"},
        headers={"X-Extra": "yes"},
        query_params={"token": "tok-5678"},
        user="alice",
    )
    try:
        with HttpClient(settings) as http:
            client = WebSocketClient(http, handshake_timeout=0.2, client_id="cid-1")
            client.connect(timeout=5)
            assert client.server_features is None  # this server ignores the handshake
            client.close()
    finally:
        server.close()
    request = server.requests[0]
    first_line, *lines = request.split("\r\n")
    assert first_line.startswith("GET /ws?")
    assert "clientId=cid-1" in first_line
    assert "token=tok-5678" in first_line
    headers = {
        line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
        for line in lines
        if ":" in line
    }
    assert headers["authorization"] == "Bearer key-1234"
    assert headers["cookie"] == "session=c00kie"
    assert headers["x-extra"] == "yes"
    assert headers["comfy-user"] == "alice"
    assert headers["user-agent"].startswith("witness/")
    assert "origin" not in headers


def test_ping_timeout_detects_a_dead_connection() -> None:
    server = SilentServer()
    settings = Settings(api_url=f"http://127.0.0.1:{server.port}")
    try:
        with HttpClient(settings) as http:
            client = WebSocketClient(
                http,
                ping_interval=0.1,
                ping_timeout=0.3,
                handshake_timeout=0.1,
                reconnect_delay=0.05,
                max_reconnect_attempts=1,
            )
            states: list[ConnectionEvent] = []
            client.add_callback(states.append, ConnectionEvent)  # type: ignore[arg-type]
            client.connect(timeout=5)
            deadline = time.monotonic() + 10
            while client.reconnect_count < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            client.close()
    finally:
        server.close()
    dropped = next(s for s in states if s.state == "disconnected")
    assert dropped.error is not None
    assert "ping" in dropped.error
    assert client.reconnect_count >= 1


def test_gives_up_after_max_attempts() -> None:
    server = SilentServer()
    settings = Settings(api_url=f"http://127.0.0.1:{server.port}")
    with HttpClient(settings) as fake_http:
        client = WebSocketClient(
            fake_http,
            handshake_timeout=0.1,
            reconnect_delay=0.05,
            max_reconnect_delay=0.05,
            max_reconnect_attempts=2,
        )
        client.connect(timeout=5)
        stream = client.track(new_id())
        server.close()  # cuts the socket and refuses new connections
        with pytest.raises(WebSocketError, match="gave up after 2 reconnect attempts"):
            for _ in stream.iter(timeout=30):
                pass
        assert client.closed
        thread = client._thread
        assert thread is not None
        thread.join(5)
        assert not thread.is_alive()
        client.close()


# -- attribution without a server ----------------------------------------------------------


@pytest.mark.integration
def test_attribution_of_id_less_events(http: HttpClient) -> None:
    client = WebSocketClient(http)
    mine = client.track("p1")
    dispatch = client._dispatch

    def text(message_type: str, **data: Any) -> Event:
        return decode_text(json.dumps({"type": message_type, "data": data}))

    dispatch(text("execution_start", prompt_id="p1", timestamp=1))
    dispatch(text("executing", node="4", display_node="4", prompt_id="p1"))
    dispatch(PreviewEvent(image=PNG_MAGIC, mime_type="image/png"))
    dispatch(TextEvent(node_id="4", text="for node 4"))
    dispatch(TextEvent(node_id="9", text="another prompt's node"))
    dispatch(text("executing", node="5"))  # reconnect notice, no prompt id
    dispatch(text("status", status={"exec_info": {"queue_remaining": 1}}))
    dispatch(text("executing", node=None, prompt_id="p1"))
    dispatch(PreviewEvent(image=PNG_MAGIC, mime_type="image/png"))  # nothing of ours runs
    events = mine.drain()
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ExecutionStartEvent",
        "ExecutingEvent",
        "PreviewEvent",
        "TextEvent",
        "ExecutingEvent",
        "ExecutingEvent",
    ]
    preview, node_text, notice = events[2], events[3], events[4]
    assert isinstance(preview, PreviewEvent)
    assert (preview.prompt_id, preview.node_id, preview.attributed) == ("p1", "4", True)
    assert isinstance(node_text, TextEvent)
    assert node_text.text == "for node 4"
    assert isinstance(notice, ExecutingEvent)
    assert (notice.prompt_id, notice.node, notice.attributed) == ("p1", "5", True)
    assert notice.is_reconnect_notice
    assert mine.finished
    assert "p1" not in client.tracked()
    client.close()


# -- the handshake maps failures like HTTP does ---------------------------------------------


class StatusServer(SilentServer):
    """Answers every websocket upgrade with one HTTP error status and a JSON body."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__()

    def _respond(self, conn: socket.socket, request: str) -> None:
        body = json.dumps({"error": f"{self.reason} from the proxy"}).encode()
        conn.sendall(
            (
                f"HTTP/1.1 {self.status} {self.reason}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        conn.close()


@pytest.mark.parametrize(
    ("status", "reason", "cls"),
    [
        (401, "Unauthorized", UnauthorizedError),
        (403, "Forbidden", ForbiddenError),
        (404, "Not Found", NotFoundError),
        (502, "Bad Gateway", ServerError),
    ],
)
def test_handshake_statuses_map_like_http(status: int, reason: str, cls: type[ApiError]) -> None:
    server = StatusServer(status, reason)
    try:
        settings = Settings(api_url=f"http://127.0.0.1:{server.port}", api_key="sekrit-api-key")
        with HttpClient(settings) as http:
            client = WebSocketClient(http, reconnect=False)
            with pytest.raises(cls) as caught:
                client.connect(timeout=5)
            client.close()
            # The same class and fields as the HTTP path gives for that status.
            with pytest.raises(cls) as over_http:
                http.request("GET", "/ws")
    finally:
        server.close()
    error = caught.value
    assert isinstance(error, WebSocketError)
    assert isinstance(error, WebSocketHandshakeError)
    assert error.status == status == over_http.value.status
    assert error.server_message == f"{reason} from the proxy" == over_http.value.server_message
    assert error.method == "GET"
    assert f"HTTP {status}" in str(error)
    assert "sekrit" not in str(error)


def test_the_deadline_clamps_the_websocket_connect() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never upgrades
    try:
        settings = Settings(api_url=f"http://127.0.0.1:{listener.getsockname()[1]}")
        with HttpClient(settings) as http:
            client = WebSocketClient(http, reconnect=False)
            started = time.monotonic()
            with pytest.raises(RequestTimeoutError) as caught:
                client.connect(timeout=30, deadline=Deadline.after(0.5))
            elapsed = time.monotonic() - started
            client.close()
    finally:
        listener.close()
    assert elapsed < 2.0
    assert isinstance(caught.value, WebSocketTimeoutError)
    assert caught.value.timeout <= 0.5

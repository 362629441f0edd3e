"""InternalClient against the real server (routes without the /api prefix)."""

from __future__ import annotations

import uuid

import pytest
import responses

from tests.api_clients.conftest import image_prompt, wait_for_history
from witness.api_clients import InternalClient, PromptClient
from witness.config.settings import Settings
from witness.errors import InvalidArgumentError, ResponseDecodeError
from witness.transport.http import HttpClient

BASE = "http://comfy.test:8188"


@pytest.fixture
def internal(http: HttpClient) -> InternalClient:
    return InternalClient(http)


@pytest.mark.integration
def test_logs(internal: InternalClient) -> None:
    text = internal.logs()
    assert isinstance(text, str)
    assert text
    raw = internal.logs_raw()
    assert raw["entries"]
    assert set(raw["entries"][0]) == {"t", "m"}


@pytest.mark.integration
def test_subscribe_and_unsubscribe(internal: InternalClient) -> None:
    client_id = uuid.uuid4().hex
    internal.subscribe_logs(client_id)
    internal.subscribe_logs(client_id, enabled=False)
    with pytest.raises(InvalidArgumentError):
        internal.subscribe_logs("")


@pytest.mark.integration
def test_folder_paths(internal: InternalClient) -> None:
    paths = internal.folder_paths()
    assert "checkpoints" in paths
    assert all(isinstance(p, str) for p in paths["checkpoints"])


@pytest.mark.integration
def test_files_lists_newest_first(
    internal: InternalClient, http: HttpClient, cleanup_history: list[str], unique: str
) -> None:
    queued = PromptClient(http).submit(image_prompt(prefix=f"witness_internal_{unique}"))
    cleanup_history.append(queued.prompt_id)
    [file] = wait_for_history(http, queued.prompt_id).output_files()
    assert internal.files("output")[0] == file.ref.filename
    assert isinstance(internal.files("input"), list)
    assert isinstance(internal.files("temp"), list)
    with pytest.raises(InvalidArgumentError):
        internal.files("models")


@responses.activate
def test_routes_have_no_api_prefix_and_shapes_are_checked() -> None:
    responses.add(responses.GET, f"{BASE}/internal/logs", json={"not": "a string"})
    responses.add(responses.GET, f"{BASE}/internal/files/output", json=["a.png", 3])
    subscribe = responses.add(responses.PATCH, f"{BASE}/internal/logs/subscribe", body="")
    internal = InternalClient(HttpClient(Settings(api_url=BASE)))
    with pytest.raises(ResponseDecodeError):
        internal.logs()
    with pytest.raises(ResponseDecodeError):
        internal.files("output")
    internal.subscribe_logs("abc")
    assert subscribe.calls[0].request.body == b'{"clientId":"abc","enabled":true}'

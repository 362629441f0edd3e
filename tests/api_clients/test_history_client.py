"""HistoryClient against the real server."""

from __future__ import annotations

import uuid

import pytest
import responses

from tests.api_clients.conftest import image_prompt, wait_for_history
from witness.api_clients import HistoryClient, PromptClient
from witness.api_clients.types import HistoryEntry
from witness.config.settings import Settings
from witness.errors import InvalidArgumentError, ResponseDecodeError
from witness.transport.http import HttpClient


@pytest.fixture
def history(http: HttpClient) -> HistoryClient:
    return HistoryClient(http)


def _run(http: HttpClient, ids: list[str], prompt: dict[str, object] | None = None) -> HistoryEntry:
    queued = PromptClient(http).submit(prompt or image_prompt())
    ids.append(queued.prompt_id)
    return wait_for_history(http, queued.prompt_id)


@pytest.mark.integration
def test_unknown_prompt_has_no_entry(history: HistoryClient) -> None:
    assert history.get(str(uuid.uuid4())) is None


@pytest.mark.integration
def test_entry_of_a_finished_prompt_is_typed(
    http: HttpClient, history: HistoryClient, cleanup_history: list[str], unique: str
) -> None:
    entry = _run(http, cleanup_history, image_prompt(prefix=f"witness_hist_{unique}"))
    assert entry == history.get(entry.prompt_id)
    assert entry.succeeded
    assert not entry.interrupted
    assert entry.error is None
    assert entry.status.status_str == "success"
    assert entry.status.completed
    assert entry.status.messages[0][0] == "execution_start"
    assert entry.prompt["1"]["class_type"] == "EmptyImage"
    assert entry.outputs_to_execute == ("2",)
    assert "2" in entry.meta
    [file] = entry.output_files()
    assert file.node_id == "2"
    assert file.kind == "images"
    assert file.ref.type == "output"
    assert file.ref.annotated == f"{file.ref.filename} [output]"


@pytest.mark.integration
def test_runtime_error_is_in_the_entry(http: HttpClient, cleanup_history: list[str]) -> None:
    entry = _run(http, cleanup_history, image_prompt(prefix="../outside"))
    assert not entry.succeeded
    assert entry.status.status_str == "error"
    assert entry.error is not None
    assert entry.error["node_type"] == "SaveImage"
    assert entry.outputs == {}


@pytest.mark.integration
def test_get_all_pages_and_delete(
    http: HttpClient, history: HistoryClient, cleanup_history: list[str]
) -> None:
    first = _run(http, cleanup_history)
    second = _run(http, cleanup_history)
    newest = history.get_all(max_items=2)
    assert list(newest) == [first.prompt_id, second.prompt_id]
    everything = history.get_all()
    ids = list(everything)
    assert ids[-2:] == [first.prompt_id, second.prompt_id]
    page = history.get_all(offset=len(ids) - 1, max_items=5)
    assert list(page) == [second.prompt_id]
    assert isinstance(page[second.prompt_id], HistoryEntry)

    history.delete(first.prompt_id)
    assert history.get(first.prompt_id) is None
    assert history.get(second.prompt_id) is not None
    history.delete([second.prompt_id, str(uuid.uuid4())])  # unknown ids are ignored
    assert history.get(second.prompt_id) is None


@pytest.mark.integration
def test_clear_all_empties_the_history(
    http: HttpClient, history: HistoryClient, cleanup_history: list[str]
) -> None:
    _run(http, cleanup_history)
    history.clear_all()
    assert history.get_all() == {}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_items": "10"}, "max_items"),
        ({"max_items": True}, "max_items"),
        ({"offset": 1.5}, "offset"),
    ],
)
@pytest.mark.integration
def test_bad_paging_is_refused_before_the_server_500s(
    history: HistoryClient, kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        history.get_all(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


@pytest.mark.integration
def test_bad_ids_are_refused(history: HistoryClient) -> None:
    with pytest.raises(InvalidArgumentError):
        history.get("")
    with pytest.raises(InvalidArgumentError):
        history.delete([])
    with pytest.raises(InvalidArgumentError):
        history.delete(["ok", ""])


@pytest.mark.integration
def test_prompt_id_with_slash_is_quoted(history: HistoryClient) -> None:
    assert history.get("a/b?c#d") is None


@responses.activate
def test_a_non_object_answer_is_a_decode_error() -> None:
    responses.add(responses.GET, "http://comfy.test:8188/api/history", json=["nope"])
    http = HttpClient(Settings(api_url="http://comfy.test:8188"))
    with pytest.raises(ResponseDecodeError):
        HistoryClient(http).get_all()

"""PromptClient against the real server (and one HTTP-boundary test for "never retried")."""

from __future__ import annotations

import logging
import math
import uuid

import pytest
import responses

from tests.api_clients.conftest import image_prompt, wait_for_history
from witness.api_clients import PromptClient
from witness.config.settings import Settings
from witness.errors import InvalidArgumentError, PromptValidationError, ServerError
from witness.transport.http import HttpClient


@pytest.fixture
def prompts(http: HttpClient) -> PromptClient:
    return PromptClient(http)


@pytest.mark.integration
def test_queue_remaining_is_a_count(prompts: PromptClient) -> None:
    assert prompts.queue_remaining() >= 0


@pytest.mark.integration
def test_submit_generates_a_uuid_and_the_prompt_runs(
    prompts: PromptClient, http: HttpClient, cleanup_history: list[str], unique: str
) -> None:
    queued = prompts.submit(
        image_prompt(prefix=f"witness_prompt_{unique}"),
        client_id=f"client-{unique}",
        extra_pnginfo={"workflow": {"id": unique}},
        api_key_comfy_org="comfyui-secret-key-not-echoed",
    )
    cleanup_history.append(queued.prompt_id)
    assert str(uuid.UUID(queued.prompt_id)) == queued.prompt_id
    assert isinstance(queued.number, int)
    assert queued.node_errors == ()
    entry = wait_for_history(http, queued.prompt_id)
    assert entry.succeeded
    assert entry.extra_data["client_id"] == f"client-{unique}"
    assert entry.extra_data["extra_pnginfo"] == {"workflow": {"id": unique}}
    assert "api_key_comfy_org" not in entry.extra_data
    [saved] = entry.output_files()
    assert saved.ref.filename.startswith(f"witness_prompt_{unique}")


@pytest.mark.integration
def test_submit_uses_the_callers_prompt_id(
    prompts: PromptClient, http: HttpClient, cleanup_history: list[str]
) -> None:
    prompt_id = str(uuid.uuid4())
    cleanup_history.append(prompt_id)
    assert prompts.submit(image_prompt(), prompt_id=prompt_id).prompt_id == prompt_id
    assert wait_for_history(http, prompt_id).prompt_id == prompt_id


@pytest.mark.integration
@pytest.mark.parametrize("bad", ["12345", "ABCDEF00-0000-4000-8000-000000000000", "", 7])
def test_non_canonical_prompt_id_is_refused_before_sending(
    prompts: PromptClient, bad: object
) -> None:
    with pytest.raises(InvalidArgumentError, match="prompt_id"):
        prompts.submit(image_prompt(), prompt_id=bad)  # type: ignore[arg-type]


@pytest.mark.integration
def test_validation_error_names_node_title_input_and_allowed_range(prompts: PromptClient) -> None:
    prompt = image_prompt()
    prompt["1"]["inputs"]["width"] = 0
    with pytest.raises(PromptValidationError) as info:
        prompts.submit(prompt)
    error = info.value
    assert error.status == 400
    assert error.error_type == "prompt_outputs_failed_validation"
    [problem] = error.node_errors
    assert problem.node_id == "1"
    assert problem.class_type == "EmptyImage"
    assert problem.title == "Blank"
    assert problem.input_name == "width"
    assert problem.type == "value_smaller_than_min"
    assert problem.received_value == 0
    assert problem.input_config[1]["min"] == 1
    assert problem.dependent_outputs == ("2",)
    text = str(error)
    assert 'node 1 (EmptyImage "Blank")' in text
    assert "'width'" in text
    assert "min 1" in text


@pytest.mark.integration
def test_unknown_node_class_is_invalid_prompt(prompts: PromptClient) -> None:
    prompt = image_prompt()
    prompt["1"]["class_type"] = "NoSuchNodeWitness"
    with pytest.raises(PromptValidationError) as info:
        prompts.submit(prompt)
    assert info.value.error_type == "invalid_prompt"
    assert "NoSuchNodeWitness" in str(info.value)


@pytest.mark.integration
def test_prompt_without_outputs_is_rejected(prompts: PromptClient) -> None:
    prompt = image_prompt()
    del prompt["2"]
    with pytest.raises(PromptValidationError) as info:
        prompts.submit(prompt)
    assert info.value.error_type == "prompt_no_outputs"
    assert info.value.node_errors == []


@pytest.mark.integration
def test_dropped_outputs_on_a_200_are_surfaced_and_logged(
    prompts: PromptClient,
    http: HttpClient,
    cleanup_history: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    prompt = image_prompt()
    prompt["3"] = {
        "class_type": "EmptyImage",
        "inputs": {"width": -5, "height": 8, "batch_size": 1, "color": 0},
        "_meta": {"title": "Broken"},
    }
    prompt["4"] = {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}}
    with caplog.at_level(logging.WARNING, logger="witness.api_clients.prompt_client"):
        queued = prompts.submit(prompt)
    cleanup_history.append(queued.prompt_id)
    assert queued.dropped_outputs == ("4",)
    assert [e.title for e in queued.node_errors] == ["Broken"]
    assert "3" in queued.raw_node_errors
    assert any("dropped" in r.getMessage() and "Broken" in r.getMessage() for r in caplog.records)
    entry = wait_for_history(http, queued.prompt_id)
    assert set(entry.outputs) == {"2"}


@pytest.mark.integration
def test_number_and_front_set_the_queue_position(
    prompts: PromptClient, http: HttpClient, cleanup_history: list[str]
) -> None:
    explicit = prompts.submit(image_prompt(), number=12345.5)
    cleanup_history.append(explicit.prompt_id)
    assert explicit.number == 12345.5
    front = prompts.submit(image_prompt(), front=True)
    cleanup_history.append(front.prompt_id)
    assert front.number < 0
    wait_for_history(http, explicit.prompt_id)
    wait_for_history(http, front.prompt_id)


@pytest.mark.integration
def test_partial_execution_targets_run_only_those_outputs(
    prompts: PromptClient, http: HttpClient, cleanup_history: list[str]
) -> None:
    prompt = image_prompt()
    prompt["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    queued = prompts.submit(prompt, partial_execution_targets=["3"])
    cleanup_history.append(queued.prompt_id)
    entry = wait_for_history(http, queued.prompt_id)
    assert set(entry.outputs) == {"3"}
    assert entry.outputs_to_execute == ("3",)


@pytest.mark.integration
def test_preview_method_and_extra_data_are_sent(
    prompts: PromptClient, http: HttpClient, cleanup_history: list[str]
) -> None:
    queued = prompts.submit(
        image_prompt(), extra_data={"custom": 1}, preview_method="none", client_id="c1"
    )
    cleanup_history.append(queued.prompt_id)
    entry = wait_for_history(http, queued.prompt_id)
    assert entry.extra_data["custom"] == 1
    assert entry.extra_data["preview_method"] == "none"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"prompt": {}}, "prompt"),
        ({"number": 1, "front": True}, "front"),
        ({"number": math.nan}, "number"),
        ({"number": True}, "number"),
        ({"partial_execution_targets": "3"}, "partial_execution_targets"),
        ({"extra_data": {"client_id": "a"}, "client_id": "b"}, "client_id"),
        ({"preview_method": "fancy"}, "preview_method"),
        ({"extra_pnginfo": {"x": math.inf}}, "prompt"),
        ({"extra_pnginfo": {"x": object()}}, "prompt"),
    ],
)
@pytest.mark.integration
def test_malformed_arguments_are_refused_before_sending(
    prompts: PromptClient, kwargs: dict[str, object], argument: str
) -> None:
    prompt = kwargs.pop("prompt", image_prompt())
    with pytest.raises(InvalidArgumentError) as info:
        prompts.submit(prompt, **kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


@responses.activate
def test_post_prompt_is_never_retried() -> None:
    url = "http://comfy.test:8188/api/prompt"
    responses.add(responses.POST, url, status=503, body="busy")
    http = HttpClient(Settings(api_url="http://comfy.test:8188", retries=3, retry_backoff=0))
    with pytest.raises(ServerError):
        PromptClient(http).submit(image_prompt())
    assert len(responses.calls) == 1


@responses.activate
def test_400_without_json_is_still_a_prompt_validation_error() -> None:
    responses.add(responses.POST, "http://comfy.test:8188/api/prompt", status=400, body="")
    http = HttpClient(Settings(api_url="http://comfy.test:8188"))
    with pytest.raises(PromptValidationError) as info:
        PromptClient(http).submit(image_prompt())
    assert info.value.node_errors == []

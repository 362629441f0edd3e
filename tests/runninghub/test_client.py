"""RunningHubClient against the local RunningHub emulator (tests/runninghub_emulator.py).

Covers every endpoint, every documented error code, the retry policy (transient faults only,
bounded), the no-duplicate rule for task creation, an expiring key, non-JSON and 5xx answers,
dropped connections and the 30 MB pre-check.
"""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.runninghub import conftest as rh
from tests.runninghub.conftest import APP_ID, TEXT_TO_IMAGE, WORKFLOW_ID
from tests.runninghub_emulator import EmuOutput, RunningHubEmulator, png_bytes
from tests.transport.conftest import Recorder, http_server
from witness.errors import (
    InvalidArgumentError,
    RunningHubAuthError,
    RunningHubBadPathError,
    RunningHubCreateUnconfirmedError,
    RunningHubError,
    RunningHubFileTooLargeError,
    RunningHubNodeInfoError,
    RunningHubQueueFullError,
    RunningHubResponseError,
    RunningHubServerError,
    RunningHubTaskFailedError,
    RunningHubTaskNotFoundError,
    RunningHubTransportError,
    RunningHubUploadError,
    RunningHubValidationError,
    RunningHubWorkflowNotFoundError,
)
from witness.runninghub.client import RunningHubClient
from witness.runninghub.errors import RUNNINGHUB_ERROR_CODES, error_for_code
from witness.runninghub.settings import RunningHubSettings
from witness.runninghub.types import MAX_UPLOAD_BYTES, NodeInfo, field_value

rh_emulator = rh.rh_emulator
rh_key = rh.rh_key
rh_settings = rh.rh_settings
rh_client = rh.rh_client
__all__ = ["http_server"]  # a fixture used here

CREATE = "/task/openapi/create"
STATUS = "/task/openapi/status"


def finished(emu: RunningHubEmulator, task_id: str) -> bool:
    return emu.wait_for(lambda: emu.task(task_id).state in {"SUCCESS", "FAILED"})


# -- happy paths of every endpoint -----------------------------------------------------------


def test_get_workflow_api_format(rh_client: RunningHubClient) -> None:
    assert rh_client.get_workflow_api_format(WORKFLOW_ID) == TEXT_TO_IMAGE
    with pytest.raises(RunningHubWorkflowNotFoundError) as caught:
        rh_client.get_workflow_api_format("1")
    assert caught.value.code == 380
    assert "WORKFLOW_NOT_EXISTS" in str(caught.value)


def test_create_sends_only_what_is_given(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    task = rh_client.create_task(
        WORKFLOW_ID,
        [NodeInfo("6", "text", "a dog"), {"nodeId": "3", "fieldName": "seed", "fieldValue": "5"}],
    )
    assert task.status == "QUEUED"
    assert len(task.task_id) == 19
    assert task.prompt_tips["outputs_to_execute"] == ["9"]
    body = rh_emulator.requests_to(CREATE)[0].body
    assert set(body) == {"apiKey", "workflowId", "nodeInfoList"}
    assert rh_emulator.task(task.task_id).prompt["6"]["inputs"]["text"] == "a dog"
    assert rh_emulator.task(task.task_id).prompt["3"]["inputs"]["seed"] == 5


def test_create_options_are_passed_through(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    settings = rh_settings.with_overrides(instance_type="plus")
    with RunningHubClient(settings) as client:
        override = {**TEXT_TO_IMAGE, "6": {**TEXT_TO_IMAGE["6"], "inputs": {"text": "x"}}}
        task = client.create_task(
            WORKFLOW_ID,
            [],
            add_metadata=False,
            webhook_url=rh_emulator.webhook_sink_url,
            workflow=override,
            use_personal_queue=True,
        )
        client.create_task(WORKFLOW_ID, [], instance_type="default")
    first, second = (r.body for r in rh_emulator.requests_to(CREATE))
    assert first["instanceType"] == "plus"
    assert first["addMetadata"] is False
    assert first["usePersonalQueue"] is True
    assert first["webhookUrl"] == rh_emulator.webhook_sink_url
    assert isinstance(first["workflow"], str)  # documented as a JSON string
    assert rh_emulator.task(task.task_id).prompt["6"]["inputs"] == {"text": "x"}
    assert second["instanceType"] == "default"


def test_run_ai_app(rh_emulator: RunningHubEmulator, rh_client: RunningHubClient) -> None:
    task = rh_client.run_ai_app(APP_ID, [NodeInfo("6", "text", "hi")], instance_type="plus")
    assert task.status == "QUEUED"
    body = rh_emulator.requests_to("/task/openapi/ai-app/run")[0].body
    assert body["webappId"] == int(APP_ID)
    assert body["instanceType"] == "plus"
    with pytest.raises(RunningHubWorkflowNotFoundError) as caught:
        rh_client.run_ai_app("42", [])
    assert caught.value.code == 901


def test_status_and_outputs_through_the_lifecycle(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_emulator.add_workflow(
        "3001",
        TEXT_TO_IMAGE,
        queue_delay=0.2,
        run_time=0.2,
        outputs=[EmuOutput("PNG", "9"), EmuOutput("txt", None), EmuOutput("mp4", "12")],
    )
    task = rh_client.create_task("3001", [])
    assert rh_client.task_status(task.task_id) == "QUEUED"
    assert rh_client.task_outputs(task.task_id).status == "QUEUED"
    assert rh_emulator.wait_for(lambda: rh_client.task_status(task.task_id) == "RUNNING")
    running = rh_client.task_outputs(task.task_id)
    assert running.status == "RUNNING"
    assert not running.finished
    assert finished(rh_emulator, task.task_id)
    outcome = rh_client.task_outputs(task.task_id)
    assert outcome.status == "SUCCESS"
    assert outcome.finished
    assert [(o.file_type, o.node_id) for o in outcome.outputs] == [
        ("png", "9"),
        ("txt", None),
        ("mp4", "12"),
    ]
    assert outcome.outputs[0].task_cost_time == 3.0
    assert outcome.outputs[0].consume_coins == Decimal("12")
    assert outcome.outputs[0].file_url.startswith(rh_emulator.url + "/files/")


def test_failed_task_outcome_parses_failed_reason(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_emulator.add_workflow("3002", TEXT_TO_IMAGE, create_status="FAILED")
    task = rh_client.create_task("3002", [])
    assert task.status == "FAILED"
    outcome = rh_client.task_outputs(task.task_id)
    assert outcome.status == "FAILED"
    reason = outcome.failed_reason
    assert reason is not None
    assert reason.node_id == "3"
    assert reason.node_name == "KSampler"
    assert reason.exception_type == "torch.OutOfMemoryError"
    assert "CUDA out of memory" in (reason.exception_message or "")
    assert reason.traceback[0] == "Traceback (most recent call last):"
    assert reason.traceback[-1].startswith("RuntimeError")
    assert "node 3 (KSampler) raised torch.OutOfMemoryError" in str(reason)


def test_cancel(rh_emulator: RunningHubEmulator, rh_client: RunningHubClient) -> None:
    rh_emulator.add_workflow("3003", TEXT_TO_IMAGE, run_time=30)
    task = rh_client.create_task("3003", [])
    rh_client.cancel(task.task_id)
    assert rh_client.task_status(task.task_id) == "FAILED"
    with pytest.raises(RunningHubTaskNotFoundError) as caught:
        rh_client.cancel("1234567890123456789")
    assert caught.value.code == 807


def test_account_status_sends_lowercase_apikey(rh_settings: RunningHubSettings) -> None:
    with RunningHubEmulator(accept_bearer=False) as emu:
        key = emu.add_key(rh_settings.api_key, balance="7.5")
        settings = rh_settings.with_overrides(base_url=emu.url, api_key=key)
        with RunningHubClient(settings) as client:
            status = client.account_status()
    assert status.remain_coins == Decimal("7.5")
    assert status.current_task_counts == 0
    assert status.remain_money == Decimal("0.00")
    assert status.currency == "CNY"
    assert status.api_type == "NORMAL"


def test_webhooks(rh_emulator: RunningHubEmulator, rh_client: RunningHubClient) -> None:
    task = rh_client.create_task(WORKFLOW_ID, [], webhook_url=rh_emulator.webhook_sink_url)
    assert rh_emulator.wait_for(lambda: len(rh_emulator.sink_received) == 1)
    detail = rh_client.get_webhook_detail(task.task_id)
    assert detail is not None
    assert detail.task_id == task.task_id
    assert detail.webhook_url == rh_emulator.webhook_sink_url
    assert detail.callback_status == "SUCCESS"
    assert rh_client.settings.api_key not in repr(detail)
    rh_client.retry_webhook(detail.id, rh_emulator.webhook_sink_url)
    assert rh_emulator.wait_for(lambda: len(rh_emulator.sink_received) == 2)
    plain = rh_client.create_task(WORKFLOW_ID, [])
    assert rh_client.get_webhook_detail(plain.task_id) is None


# -- uploads -----------------------------------------------------------------------------------


def test_upload_path_bytes_and_file_object(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient, tmp_path: Path
) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(png_bytes())
    from_path = rh_client.upload(image)
    assert from_path.startswith("api/")
    assert from_path.endswith(".png")
    assert rh_client.upload(png_bytes(), filename="cat.png") == from_path
    with image.open("rb") as handle:
        assert rh_client.upload(handle) == from_path
    assert rh_client.upload(io.BytesIO(b"RIFF"), filename="a.wav").endswith(".wav")
    assert rh_emulator.uploads[from_path] == png_bytes()
    assert rh_emulator.requests_to("/task/openapi/upload")[0].body["fileType"] == "input"


def test_upload_prechecks_send_nothing(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient, tmp_path: Path
) -> None:
    big = tmp_path / "big.mp4"
    with big.open("wb") as handle:  # sparse: no 31 MB written to disk
        handle.truncate(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(RunningHubFileTooLargeError) as caught:
        rh_client.upload(big)
    assert caught.value.size == MAX_UPLOAD_BYTES + 1
    assert caught.value.limit == MAX_UPLOAD_BYTES
    with pytest.raises(RunningHubFileTooLargeError):
        rh_client.upload(b"\0" * (MAX_UPLOAD_BYTES + 1), filename="big.png")
    with pytest.raises(RunningHubUploadError, match="allowed types"):
        rh_client.upload(b"x", filename="notes.txt")
    with pytest.raises(InvalidArgumentError):
        rh_client.upload(b"x")
    with pytest.raises(InvalidArgumentError):
        rh_client.upload(tmp_path / "missing.png")
    assert rh_emulator.count("/task/openapi/upload") == 0


def test_upload_at_exactly_the_limit_is_sent(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    name = rh_client.upload(b"\0" * MAX_UPLOAD_BYTES, filename="edge.mp4")
    assert name.endswith(".mp4")


# -- error codes -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(RUNNINGHUB_ERROR_CODES))
def test_every_documented_code_is_typed(
    code: int, rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    name, cls = RUNNINGHUB_ERROR_CODES[code]
    key = rh_emulator.add_key("f" * 32, forced_code=code)
    with (
        RunningHubClient(rh_settings.with_overrides(api_key=key, retry_count=1)) as client,
        pytest.raises(RunningHubError) as caught,
    ):
        client.get_workflow_api_format(WORKFLOW_ID)
    error = caught.value
    assert type(error) is cls
    assert error.code == code
    assert error.endpoint == "/api/openapi/getJsonApiFormat"
    assert f"{code} {name}" in str(error)
    assert key not in str(error)
    # Only 500 is retried on a read; every other code is final at once.
    assert rh_emulator.count("/api/openapi/getJsonApiFormat") == (2 if code == 500 else 1)


def test_real_triggers_of_auth_and_mapping_errors(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient, rh_settings: RunningHubSettings
) -> None:
    with pytest.raises(RunningHubNodeInfoError) as node_info:
        rh_client.create_task(WORKFLOW_ID, [NodeInfo("77", "text", "x")])
    assert node_info.value.code == 803
    with pytest.raises(RunningHubValidationError) as invalid:
        rh_client.create_task(WORKFLOW_ID, [NodeInfo("3", "steps", "many")])
    assert invalid.value.code == 433
    assert invalid.value.node_errors[0].node_id == "3"
    assert invalid.value.node_errors[0].input_name == "steps"
    assert "steps" in str(invalid.value)
    with (
        RunningHubClient(rh_settings.with_overrides(api_key="wrong-key-123")) as client,
        pytest.raises(RunningHubAuthError) as auth,
    ):
        client.create_task(WORKFLOW_ID, [])
    assert auth.value.code == 802
    # None of these was resent (ComfyKit resent an 803 four times).
    assert rh_emulator.count(CREATE) == 3


def test_unknown_code_gives_the_base_class() -> None:
    error = error_for_code(999, "strange", endpoint=STATUS)
    assert type(error) is RunningHubError
    assert error.code == 999
    assert "strange" in str(error)


def test_805_outside_outputs_carries_failed_reason() -> None:
    error = error_for_code(805, "APIKEY_TASK_STATUS_ERROR", data={"failedReason": {"node_id": "7"}})
    assert isinstance(error, RunningHubTaskFailedError)
    assert error.failed_reason.node_id == "7"


def test_bad_path_is_typed(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    with (
        RunningHubClient(rh_settings.with_overrides(base_url=rh_emulator.url + "/v9")) as client,
        pytest.raises(RunningHubBadPathError) as caught,
    ):
        client.task_status("1")
    assert caught.value.code == 412
    with RunningHubEmulator(unknown_path_http404=True) as emu:
        settings = rh_settings.with_overrides(base_url=emu.url + "/v9")
        with RunningHubClient(settings) as client, pytest.raises(RunningHubBadPathError):
            client.task_status("1")


# -- retries: transient only, bounded ----------------------------------------------------------


def test_queue_full_burst_is_retried_with_backoff(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_emulator.queue_full(2)
    task = rh_client.create_task(WORKFLOW_ID, [])
    assert rh_emulator.count(CREATE) == 3
    assert len(rh_emulator.tasks) == 1
    assert task.task_id in rh_emulator.tasks


def test_queue_full_past_the_retry_budget(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_emulator.queue_full(10)
    with pytest.raises(RunningHubQueueFullError) as caught:
        rh_client.create_task(WORKFLOW_ID, [])
    assert caught.value.code == 421
    assert rh_emulator.count(CREATE) == 1 + rh_client.settings.retry_count
    assert not rh_emulator.tasks


@pytest.mark.parametrize("fault", ["drop", "http500", "http502", "envelope500"])
def test_reads_retry_transient_faults(
    fault: str, rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    task = rh_client.create_task(WORKFLOW_ID, [])
    rh_emulator.inject(STATUS, fault, times=2)
    assert rh_client.task_status(task.task_id) in {"QUEUED", "RUNNING", "SUCCESS"}
    assert rh_emulator.count(STATUS) == 3


def test_read_timeout_on_a_read_is_retried(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    with RunningHubClient(rh_settings.with_overrides(request_timeout=0.2)) as client:
        task = client.create_task(WORKFLOW_ID, [])
        rh_emulator.inject(STATUS, "slow", delay=1.0)
        assert client.task_status(task.task_id)
    assert rh_emulator.count(STATUS) == 2


def test_persistent_5xx_gives_a_typed_error_after_the_budget(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_emulator.inject(STATUS, "http502", times=10)
    with pytest.raises(RunningHubServerError) as caught:
        rh_client.task_status("1")
    assert caught.value.http_status == 502
    assert "502 Bad Gateway" in str(caught.value)
    assert rh_emulator.count(STATUS) == 1 + rh_client.settings.retry_count


@pytest.mark.parametrize("fault", ["non_json", "empty"])
def test_non_json_answers_are_typed_and_not_retried(
    fault: str, rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_emulator.inject(STATUS, fault)
    with pytest.raises(RunningHubResponseError) as caught:
        rh_client.task_status("1")
    assert caught.value.http_status == 200
    assert caught.value.code is None
    if fault == "non_json":
        assert "Service maintenance" in caught.value.body
    assert rh_emulator.count(STATUS) == 1


def test_expired_key_while_polling_is_an_auth_error(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    key = rh_emulator.add_key("e" * 32, expires_after_calls=3)
    rh_emulator.add_workflow("3004", TEXT_TO_IMAGE, run_time=30)
    with RunningHubClient(rh_settings.with_overrides(api_key=key)) as client:
        task = client.create_task("3004", [])
        assert client.task_status(task.task_id) == "RUNNING"
        assert client.task_outputs(task.task_id).status == "RUNNING"
        with pytest.raises(RunningHubAuthError) as caught:
            client.task_status(task.task_id)
    assert caught.value.code == 802
    assert rh_emulator.count(STATUS) == 2  # not retried


# -- task creation is never duplicated ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "after", "created"),
    [
        ("drop", True, 1),  # the task was made, the answer lost
        ("drop", False, 0),  # dropped before the work: indistinguishable for the client
        ("http502", True, 1),
        ("http500", False, 0),
    ],
)
def test_lost_create_answer_is_never_resent(
    fault: str,
    after: bool,
    created: int,
    rh_emulator: RunningHubEmulator,
    rh_client: RunningHubClient,
) -> None:
    rh_emulator.add_workflow("3005", TEXT_TO_IMAGE, run_time=30)
    rh_emulator.inject(CREATE, fault, after=after)
    with pytest.raises(RunningHubCreateUnconfirmedError) as caught:
        rh_client.create_task("3005", [])
    assert rh_emulator.count(CREATE) == 1
    assert len(rh_emulator.tasks) == created
    assert caught.value.current_task_counts == created
    assert "may or may not have created the task" in str(caught.value)
    assert "NOT resent" in str(caught.value)


def test_slow_create_past_the_read_timeout_is_not_resent(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    rh_emulator.inject(CREATE, "slow", delay=1.0, after=True)
    with (
        RunningHubClient(rh_settings.with_overrides(request_timeout=0.2)) as client,
        pytest.raises(RunningHubCreateUnconfirmedError) as caught,
    ):
        client.create_task(WORKFLOW_ID, [])
    assert "read timeout" in str(caught.value)
    assert rh_emulator.count(CREATE) == 1
    assert len(rh_emulator.tasks) == 1


def test_create_error_envelope_is_final(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_emulator.inject(CREATE, "envelope500")
    with pytest.raises(RunningHubServerError) as caught:
        rh_client.create_task(WORKFLOW_ID, [])
    assert caught.value.code == 500
    assert rh_emulator.count(CREATE) == 1


def test_refused_connection_is_retried_even_for_create(rh_settings: RunningHubSettings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = rh_settings.with_overrides(base_url=f"http://127.0.0.1:{port}", retry_count=2)
    with RunningHubClient(settings) as client, pytest.raises(RunningHubTransportError) as caught:
        client.create_task(WORKFLOW_ID, [])
    # Never sent, so no doubt about a task: a plain transport error, not "unconfirmed".
    assert not isinstance(caught.value, RunningHubCreateUnconfirmedError)
    assert "no answer from RunningHub" in str(caught.value)


# -- secrets and small helpers -----------------------------------------------------------------


def test_the_key_never_leaks(
    rh_emulator: RunningHubEmulator,
    rh_client: RunningHubClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = rh_client.settings.api_key
    caplog.set_level(logging.DEBUG)
    messages = [repr(rh_client), repr(rh_client.settings), repr(rh_client.http)]
    rh_emulator.inject(STATUS, "drop", times=10)
    rh_emulator.inject(CREATE, "http502", after=True)
    for call in (lambda: rh_client.task_status("1"), lambda: rh_client.create_task("5", [])):
        with pytest.raises(RunningHubError) as caught:
            call()
        messages.append(str(caught.value))
    messages.extend(record.getMessage() for record in caplog.records)
    assert all(key not in text for text in messages)


def test_field_value_uses_the_documented_string_form() -> None:
    assert field_value("x") == "x"
    assert field_value(5) == "5"
    assert field_value(0.1) == "0.1"
    assert field_value(True) == "true"
    assert field_value([1, 2]) == "[1, 2]"
    with pytest.raises(InvalidArgumentError):
        field_value(None)


def test_bad_arguments_are_rejected_before_sending(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    with pytest.raises(InvalidArgumentError):
        rh_client.create_task("", [])
    with pytest.raises(InvalidArgumentError):
        rh_client.create_task(WORKFLOW_ID, [NodeInfo("3", "seed", None)])
    with pytest.raises(InvalidArgumentError):
        rh_client.create_task(WORKFLOW_ID, [], instance_type="huge")
    with pytest.raises(InvalidArgumentError):
        rh_client.task_status(" ")
    assert rh_emulator.count(CREATE) == 0


def test_closed_client_sends_nothing(
    rh_emulator: RunningHubEmulator, rh_client: RunningHubClient
) -> None:
    rh_client.close()
    with pytest.raises(RunningHubTransportError, match="closed") as caught:
        rh_client.create_task(WORKFLOW_ID, [])
    assert not isinstance(caught.value, RunningHubCreateUnconfirmedError)
    assert rh_emulator.count(CREATE) == 0


def test_the_key_never_follows_a_redirect(http_server: Callable[[], Recorder]) -> None:
    """A 307 keeps the body (and the key in it): RunningHub never redirects, so none is
    followed."""
    api, elsewhere = http_server(), http_server()
    api.routes[STATUS] = (307, {"Location": f"{elsewhere.url}/steal"}, b"")
    settings = RunningHubSettings(api_key="k" * 32, base_url=api.url, retry_count=0)
    with RunningHubClient(settings) as client, pytest.raises(RunningHubTransportError):
        client.task_status("1")
    assert b"k" * 32 in api.bodies[-1]
    assert not elsewhere.seen

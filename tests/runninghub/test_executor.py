"""RunningHubExecutor against the local RunningHub emulator: same ExecuteResult as local runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.runninghub import conftest as rh
from tests.runninghub.conftest import TEXT_TO_IMAGE, WORKFLOW_ID
from tests.runninghub_emulator import EmuOutput, RunningHubEmulator, png_bytes
from witness.errors import (
    ExecutionError,
    MissingParamError,
    RunningHubAuthError,
    UnknownParamError,
    UploadError,
)
from witness.runninghub.backend import RunningHubProgress
from witness.runninghub.client import RunningHubClient
from witness.runninghub.executor import RunningHubExecutor
from witness.runninghub.settings import RunningHubSettings

rh_emulator = rh.rh_emulator
rh_key = rh.rh_key
rh_settings = rh.rh_settings
rh_client = rh.rh_client

CREATE = "/task/openapi/create"
UPLOAD = "/task/openapi/upload"
STATUS = "/task/openapi/status"


@pytest.fixture
def executor(rh_client: RunningHubClient) -> RunningHubExecutor:
    return RunningHubExecutor(rh_client)


def sent_node_info(emu: RunningHubEmulator) -> list[dict[str, str]]:
    return list(emu.requests_to(CREATE)[-1].body["nodeInfoList"])


def test_completed_run_builds_the_same_result_shape(
    rh_emulator: RunningHubEmulator, executor: RunningHubExecutor, tmp_path: Path
) -> None:
    rh_emulator.add_workflow(
        "4001",
        TEXT_TO_IMAGE,
        run_time=0.1,
        outputs=[
            EmuOutput("png", "9"),
            EmuOutput("mp4", "12"),
            EmuOutput("txt", None, b"  hello world \n"),
        ],
    )
    seen: list[RunningHubProgress] = []
    result = executor.execute("4001", {"prompt": "a dog", "seed": 0}, on_progress=seen.append)
    assert result.status == "completed"
    assert result.ok
    assert result.prompt_id in rh_emulator.tasks
    # Only the supplied params, in the documented string form (an explicit 0 is kept).
    assert sent_node_info(rh_emulator) == [
        {"nodeId": "6", "fieldName": "text", "fieldValue": "a dog"},
        {"nodeId": "3", "fieldName": "seed", "fieldValue": "0"},
    ]
    assert len(result.images) == 1
    assert result.images_by_var == {"result": result.images}
    assert result.videos_by_var == {"12": result.videos}
    assert len(result.videos) == 1
    assert result.texts == ["hello world"]
    assert result.texts_by_var == {"2": ["hello world"]}  # no nodeId: keyed by position
    assert [f.kind for f in result.files] == ["image", "video", "text"]
    assert result.execution_time == 3.0
    assert result.duration is not None
    assert seen
    assert seen[-1].status == "SUCCESS"
    saved = result.save(tmp_path, kinds=["image"])
    assert saved[0].read_bytes() == png_bytes()


def test_params_are_checked_before_anything_is_sent(
    rh_emulator: RunningHubEmulator, executor: RunningHubExecutor, tmp_path: Path
) -> None:
    image = tmp_path / "ref.png"
    image.write_bytes(png_bytes())
    with pytest.raises(MissingParamError, match="prompt"):
        executor.execute(WORKFLOW_ID, {"image": image})
    with pytest.raises(UnknownParamError, match="colour"):
        executor.execute(WORKFLOW_ID, {"prompt": "x", "colour": "red", "image": image})
    with pytest.raises(UploadError, match="not a local file"):
        executor.execute(WORKFLOW_ID, {"prompt": "x", "image": str(tmp_path / "missing.png")})
    assert rh_emulator.count(UPLOAD) == 0
    assert rh_emulator.count(CREATE) == 0


@pytest.mark.parametrize("kind", ["path", "bytes", "stored"])
def test_media_params_are_uploaded(
    kind: str, rh_emulator: RunningHubEmulator, executor: RunningHubExecutor, tmp_path: Path
) -> None:
    image = tmp_path / "ref.png"
    image.write_bytes(png_bytes())
    stored = "api/" + "a" * 64 + ".png"
    value = {"path": image, "bytes": png_bytes(), "stored": stored}[kind]
    result = executor.execute(WORKFLOW_ID, {"prompt": "x", "image": value})
    assert result.ok
    item = next(i for i in sent_node_info(rh_emulator) if i["nodeId"] == "10")
    assert item["fieldName"] == "image"
    if kind == "stored":
        assert item["fieldValue"] == stored
        assert rh_emulator.count(UPLOAD) == 0
    else:
        assert rh_emulator.uploads[item["fieldValue"]] == png_bytes()


def test_failed_task_fills_node_failure(
    rh_emulator: RunningHubEmulator, executor: RunningHubExecutor
) -> None:
    rh_emulator.add_workflow(
        "4002", TEXT_TO_IMAGE, run_time=0.05, fail=None, create_status="QUEUED"
    )
    rh_emulator.workflows["4002"].fail = {
        "node_id": "3",
        "node_name": "KSampler",
        "exception_type": "RuntimeError",
        "exception_message": "boom\nsecond line",
        "traceback": "Traceback (most recent call last):\nRuntimeError: boom",
        "current_inputs": "{}",
        "current_outputs": "{}",
    }
    result = executor.execute("4002", {"prompt": "x"})
    assert result.status == "failed"
    error = result.error
    assert error is not None
    assert error.node_id == "3"
    assert error.node_type == "KSampler"
    assert error.title == "Sampler, $seed.seed, $steps.steps"
    assert error.exception_type == "RuntimeError"
    assert error.traceback[-1] == "RuntimeError: boom"
    assert result.msg == 'node 3 (KSampler "Sampler, $seed.seed, $steps.steps"): RuntimeError: boom'
    with pytest.raises(ExecutionError, match="boom"):
        result.raise_for_status()


def test_timeout_cancels_the_task(
    rh_emulator: RunningHubEmulator, executor: RunningHubExecutor
) -> None:
    rh_emulator.add_workflow("4003", TEXT_TO_IMAGE, run_time=60)
    result = executor.execute("4003", {"prompt": "x"}, timeout=0.3)
    assert result.status == "timeout"
    assert rh_emulator.count("/task/openapi/cancel") == 1
    assert rh_emulator.task(str(result.prompt_id)).state == "FAILED"


def test_cancel_event_interrupts_and_cancels(
    rh_emulator: RunningHubEmulator, executor: RunningHubExecutor
) -> None:
    rh_emulator.add_workflow("4004", TEXT_TO_IMAGE, queue_delay=60)
    stop = threading.Event()

    def on_progress(progress: RunningHubProgress) -> None:
        stop.set()

    result = executor.execute("4004", {"prompt": "x"}, cancel_event=stop, on_progress=on_progress)
    assert result.status == "interrupted"
    assert rh_emulator.count("/task/openapi/cancel") == 1
    assert rh_emulator.task(str(result.prompt_id)).state == "FAILED"


def test_unknown_status_never_busy_loops(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    rh_emulator.add_workflow("4005", TEXT_TO_IMAGE, status_override="PAUSED", run_time=60)
    settings = rh_settings.with_overrides(poll_interval=0.1)
    with RunningHubClient(settings) as client:
        result = RunningHubExecutor(client).execute("4005", {"prompt": "x"}, timeout=0.5)
    assert result.status == "timeout"
    # At most one poll per interval (a hot loop would make thousands).
    assert rh_emulator.count(STATUS) <= 6


def test_transient_faults_while_polling_are_survived(
    rh_emulator: RunningHubEmulator, executor: RunningHubExecutor
) -> None:
    rh_emulator.add_workflow("4006", TEXT_TO_IMAGE, run_time=0.1)
    rh_emulator.inject(STATUS, "http502", times=6)
    rh_emulator.inject(STATUS, "non_json")
    assert executor.execute("4006", {"prompt": "x"}).ok


def test_key_expiring_while_polling_raises_auth_error(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    key = rh_emulator.add_key("p" * 32, expires_after_calls=4)
    rh_emulator.add_workflow("4007", TEXT_TO_IMAGE, run_time=60)
    settings = rh_settings.with_overrides(api_key=key)
    with RunningHubClient(settings) as client, pytest.raises(RunningHubAuthError) as caught:
        RunningHubExecutor(client).execute("4007", {"prompt": "x"})
    assert caught.value.code == 802


def test_webhook_and_instance_type_are_passed(
    rh_emulator: RunningHubEmulator, executor: RunningHubExecutor
) -> None:
    result = executor.execute(
        WORKFLOW_ID,
        {"prompt": "x"},
        webhook_url=rh_emulator.webhook_sink_url,
        instance_type="plus",
    )
    assert result.ok
    body = rh_emulator.requests_to(CREATE)[-1].body
    assert body["webhookUrl"] == rh_emulator.webhook_sink_url
    assert body["instanceType"] == "plus"
    assert rh_emulator.wait_for(lambda: len(rh_emulator.sink_received) == 1)

"""Witness.execute() with RunningHub workflow ids, against the local RunningHub emulator.

The facade must give a RunningHub run the same ExecuteResult as a local run, pass webhookUrl
and instanceType through, cancel the task on timeout, interrupt and errors, and be configurable
from the ``RUNNINGHUB_*`` environment variables. No ComfyUI server is involved: the Witness
points at a closed port it never contacts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runninghub import conftest as rh
from tests.runninghub.conftest import TEXT_TO_IMAGE, WORKFLOW_ID
from tests.runninghub_emulator import EmuOutput, RunningHubEmulator, png_bytes
from witness import Witness
from witness.api_clients.types import CancelOutcome
from witness.core.results import ExecuteResult
from witness.core.tracking import ProgressUpdate
from witness.errors import (
    ConfigError,
    ExecutionError,
    InvalidArgumentError,
    MissingParamError,
    RunningHubExclusiveInstanceError,
    RunningHubQueueFullError,
    UnknownParamError,
)
from witness.runninghub.backend import RunningHubProgress
from witness.runninghub.settings import RUNNINGHUB_ENV_VARS, RunningHubSettings

RH_SOURCE = f"runninghub:{WORKFLOW_ID}"

rh_emulator = rh.rh_emulator
rh_key = rh.rh_key
rh_settings = rh.rh_settings

CREATE = "/task/openapi/create"
UPLOAD = "/task/openapi/upload"
CANCEL = "/task/openapi/cancel"
ACCOUNT = "/uc/openapi/accountStatus"
NOWHERE = "http://127.0.0.1:9"  # the local ComfyUI is never contacted in this module

FAILED_REASON = {
    "node_id": "3",
    "node_name": "KSampler",
    "exception_type": "torch.OutOfMemoryError",
    "exception_message": "CUDA out of memory",
    "traceback": "Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory",
    "current_inputs": "{}",
    "current_outputs": "{}",
}

TWO_OUTPUTS: dict[str, Any] = {
    **TEXT_TO_IMAGE,
    "12": {
        "class_type": "SaveWEBM",
        "inputs": {
            "images": ["3", 0],
            "filename_prefix": "clip",
            "codec": "vp9",
            "fps": 8.0,
            "crf": 32.0,
        },
        "_meta": {"title": "Clip, $output.clip"},
    },
    "13": {
        "class_type": "PreviewAny",
        "inputs": {"source": ["3", 0]},
        "_meta": {"title": "$output.caption"},
    },
}


@pytest.fixture(autouse=True)
def _no_runninghub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own RUNNINGHUB_* variables must not leak into these tests."""
    for names in RUNNINGHUB_ENV_VARS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kit(rh_settings: RunningHubSettings) -> Iterator[Witness]:
    with Witness(NOWHERE, runninghub_settings=rh_settings) as witness:
        yield witness


def create_bodies(emu: RunningHubEmulator) -> list[dict[str, Any]]:
    return [r.body for r in emu.requests_to(CREATE)]


def run_in_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, box


# -- success -------------------------------------------------------------------------------


def test_completed_run_uploads_media_and_keys_outputs_by_output_name(
    rh_emulator: RunningHubEmulator, kit: Witness, tmp_path: Path
) -> None:
    rh_emulator.add_workflow(
        "5001",
        TWO_OUTPUTS,
        run_time=0.1,
        outputs=[
            EmuOutput("png", "9"),
            EmuOutput("png", "9"),
            EmuOutput("mp4", "12"),
            EmuOutput("txt", "13", b"a red cat\n"),
        ],
    )
    image = tmp_path / "ref.png"
    image.write_bytes(png_bytes(4, 4))
    seen: list[ProgressUpdate] = []

    result = kit.execute(
        "runninghub:5001", {"prompt": "a red cat", "image": image}, on_progress=seen.append
    )

    assert isinstance(result, ExecuteResult)
    assert result.status == "completed"
    assert result.ok
    assert result.prompt_id in rh_emulator.tasks
    # The file was uploaded and its RunningHub name sent in its place; only supplied params.
    (body,) = create_bodies(rh_emulator)
    assert body["workflowId"] == "5001"
    sent = {(i["nodeId"], i["fieldName"]): i["fieldValue"] for i in body["nodeInfoList"]}
    assert set(sent) == {("6", "text"), ("10", "image")}
    assert sent[("6", "text")] == "a red cat"
    assert rh_emulator.uploads[sent[("10", "image")]] == png_bytes(4, 4)
    assert "webhookUrl" not in body or not body["webhookUrl"]
    # Same fields as a local result, keyed by $output name.
    assert len(result.images) == 2
    assert result.images_by_var == {"result": result.images}
    assert result.videos_by_var == {"clip": result.videos}
    assert len(result.videos) == 1
    assert result.texts == ["a red cat"]
    assert result.texts_by_var == {"caption": ["a red cat"]}
    assert {f.var for f in result.files} == {"result", "clip", "caption"}
    assert result.error is None
    assert result.execution_time == 3.0
    assert result.raise_for_status() is result
    saved = result.save(tmp_path / "out", kinds=["image"])
    assert [p.read_bytes() for p in saved] == [png_bytes(), png_bytes()]
    # Progress: the local runs' type, first right after create, last at success.
    assert seen
    assert all(isinstance(p, ProgressUpdate) for p in seen)
    assert all(isinstance(p, RunningHubProgress) for p in seen)
    assert {p.prompt_id for p in seen} == {result.prompt_id}
    first, last = seen[0], seen[-1]
    assert isinstance(first, RunningHubProgress)
    assert isinstance(last, RunningHubProgress)
    assert first.status == "QUEUED"
    assert first.overall == 0.0
    assert last.status == "SUCCESS"
    assert last.overall == 1.0
    assert last.nodes_done == last.nodes_total == len(TWO_OUTPUTS)
    assert last.task_id == result.prompt_id


def test_stub_file_and_numeric_text_both_run_on_runninghub(
    rh_emulator: RunningHubEmulator, kit: Witness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = tmp_path / "flow.json"
    stub.write_text(f'{{"_source": "runninghub", "workflow_id": "{WORKFLOW_ID}"}}')
    assert kit.execute(stub, {"prompt": "x"}).ok
    monkeypatch.chdir(tmp_path)  # no file named like the id here
    assert kit.execute(f" runninghub:{WORKFLOW_ID} ", {"prompt": "y"}).ok
    assert [b["workflowId"] for b in create_bodies(rh_emulator)] == [WORKFLOW_ID, WORKFLOW_ID]


def test_inspect_fetches_the_runninghub_signature(kit: Witness) -> None:
    described = kit.inspect(RH_SOURCE)
    assert described == kit.inspect(TEXT_TO_IMAGE)
    assert "prompt" in str(described)


def test_allow_unknown_and_randomize_seeds(rh_emulator: RunningHubEmulator, kit: Witness) -> None:
    with pytest.raises(UnknownParamError, match="colour"):
        kit.execute(RH_SOURCE, {"prompt": "x", "colour": "red"})
    assert rh_emulator.count(CREATE) == 0
    result = kit.execute(
        RH_SOURCE, {"prompt": "x", "colour": "red"}, allow_unknown=True, randomize_seeds=True
    )
    assert result.ok
    (body,) = create_bodies(rh_emulator)
    items = {(i["nodeId"], i["fieldName"]): i["fieldValue"] for i in body["nodeInfoList"]}
    assert set(items) == {("6", "text"), ("3", "seed")}  # the unknown name is not sent
    assert 0 <= int(items[("3", "seed")]) <= 2**32 - 1
    # An explicit seed is never replaced, and sent once.
    assert kit.execute(RH_SOURCE, {"prompt": "x", "seed": 7}, randomize_seeds=True).ok
    items2 = [(i["nodeId"], i["fieldName"], i["fieldValue"]) for i in
              create_bodies(rh_emulator)[-1]["nodeInfoList"]]  # fmt: skip
    assert items2.count(("3", "seed", "7")) == 1
    assert [i for i in items2 if i[1] == "seed"] == [("3", "seed", "7")]


# -- failure -------------------------------------------------------------------------------


def test_failed_task_reports_failed_reason_as_result_error(
    rh_emulator: RunningHubEmulator, kit: Witness
) -> None:
    rh_emulator.add_workflow("5002", TEXT_TO_IMAGE, run_time=0.05, fail=FAILED_REASON)
    result = kit.execute("runninghub:5002", {"prompt": "x"})
    assert result.status == "failed"
    assert not result.ok
    error = result.error
    assert error is not None
    assert (error.node_id, error.node_type) == ("3", "KSampler")
    assert error.title == "Sampler, $seed.seed, $steps.steps"
    assert error.exception_type == "torch.OutOfMemoryError"
    assert error.exception_message == "CUDA out of memory"
    assert error.traceback[-1] == "torch.OutOfMemoryError: CUDA out of memory"
    assert "CUDA out of memory" in (result.msg or "")
    assert result.images == []
    with pytest.raises(ExecutionError, match="CUDA out of memory") as caught:
        result.raise_for_status()
    assert caught.value.node_id == "3"
    assert rh_emulator.count(CANCEL) == 0


def test_required_param_missing_sends_nothing(
    rh_emulator: RunningHubEmulator, kit: Witness, tmp_path: Path
) -> None:
    image = tmp_path / "ref.png"
    image.write_bytes(png_bytes())
    with pytest.raises(MissingParamError, match="prompt"):
        kit.execute(RH_SOURCE, {"image": image, "prompt": None})
    assert rh_emulator.count(UPLOAD) == 0
    assert rh_emulator.count(CREATE) == 0


def test_create_refused_raises_and_nothing_is_left_running(
    rh_emulator: RunningHubEmulator, kit: Witness
) -> None:
    rh_emulator.queue_full(creates=10)
    with pytest.raises(RunningHubQueueFullError):
        kit.execute(RH_SOURCE, {"prompt": "x"})
    assert rh_emulator.tasks == {}


def test_local_only_and_runninghub_only_arguments_are_not_silently_dropped(
    rh_emulator: RunningHubEmulator, kit: Witness
) -> None:
    with pytest.raises(InvalidArgumentError, match="extra_data"):
        kit.execute(RH_SOURCE, {"prompt": "x"}, extra_data={"extra_pnginfo": {}})
    # A local (API-format) workflow with RunningHub-only arguments: refused before any request
    # (the local server of this Witness does not even exist).
    with pytest.raises(InvalidArgumentError, match="webhook_url"):
        kit.execute(TEXT_TO_IMAGE, {"prompt": "x"}, webhook_url="https://example.com/hook")
    with pytest.raises(InvalidArgumentError, match="instance_type"):
        kit.execute(TEXT_TO_IMAGE, {"prompt": "x"}, instance_type="plus")
    with pytest.raises(InvalidArgumentError, match="execute"):
        kit.submit(RH_SOURCE, {"prompt": "x"})
    with pytest.raises(InvalidArgumentError, match="RunningHub"):
        kit.validate(RH_SOURCE)
    assert rh_emulator.count(CREATE) == 0


# -- timeout and interrupt -----------------------------------------------------------------


def test_timeout_cancels_the_task(rh_emulator: RunningHubEmulator, kit: Witness) -> None:
    rh_emulator.add_workflow("5003", TEXT_TO_IMAGE, run_time=60)
    result = kit.execute("runninghub:5003", {"prompt": "x"}, timeout=0.3)
    assert result.status == "timeout"
    assert "cancelled" in (result.msg or "")
    cancels = rh_emulator.requests_to(CANCEL)
    assert [r.body["taskId"] for r in cancels] == [result.prompt_id]
    assert rh_emulator.task(str(result.prompt_id)).state == "FAILED"
    with pytest.raises(ExecutionError, match="timeout"):
        result.raise_for_status()


def test_timeout_without_cancel_leaves_the_task_running(
    rh_emulator: RunningHubEmulator, kit: Witness
) -> None:
    rh_emulator.add_workflow("5004", TEXT_TO_IMAGE, run_time=60)
    result = kit.execute("runninghub:5004", {"prompt": "x"}, timeout=0.3, cancel_on_timeout=False)
    assert result.status == "timeout"
    assert "may still run" in (result.msg or "")
    assert rh_emulator.count(CANCEL) == 0
    task_id = str(result.prompt_id)
    assert rh_emulator.task(task_id).state == "RUNNING"
    kit.runninghub.cancel(task_id)  # clean up through the facade's client
    assert rh_emulator.task(task_id).state == "FAILED"


@pytest.mark.parametrize(
    ("delays", "expected"),
    [
        ({"queue_delay": 60}, CancelOutcome.DEQUEUED),
        ({"run_time": 60}, CancelOutcome.INTERRUPTED),
    ],
    ids=["queued", "running"],
)
def test_cancel_from_another_thread_interrupts(
    rh_emulator: RunningHubEmulator,
    kit: Witness,
    delays: dict[str, float],
    expected: CancelOutcome,
) -> None:
    rh_emulator.add_workflow("5005", TEXT_TO_IMAGE, **delays)
    want = "QUEUED" if expected is CancelOutcome.DEQUEUED else "RUNNING"
    seen = threading.Event()
    task_ids: list[str] = []

    def on_progress(update: ProgressUpdate) -> None:
        task_ids.append(update.prompt_id)
        if isinstance(update, RunningHubProgress) and update.status == want:
            seen.set()

    thread, box = run_in_thread(
        lambda: kit.execute("runninghub:5005", {"prompt": "x"}, timeout=30, on_progress=on_progress)
    )
    assert seen.wait(10)
    cancelled = kit.cancel(task_ids[0])
    thread.join(10)
    assert not thread.is_alive()
    assert "error" not in box, box
    assert (cancelled.prompt_id, cancelled.outcome, cancelled.via) == (
        task_ids[0], expected, "runninghub"
    )  # fmt: skip
    assert cancelled.cancelled
    result = box["result"]
    assert result.status == "interrupted"
    assert result.prompt_id == task_ids[0]
    # Cancelled exactly once, although both the canceller and the waiter could have sent it.
    assert [r.body["taskId"] for r in rh_emulator.requests_to(CANCEL)] == [task_ids[0]]
    assert rh_emulator.task(task_ids[0]).state == "FAILED"
    # Once the run is over, the id is not a RunningHub run of this Witness any more.
    assert kit._runninghub is not None
    assert kit._runninghub.running() == []


def test_raising_progress_callback_cancels_the_task(
    rh_emulator: RunningHubEmulator, kit: Witness
) -> None:
    rh_emulator.add_workflow("5006", TEXT_TO_IMAGE, run_time=60)

    class StopError(Exception):
        pass

    def on_progress(update: ProgressUpdate) -> None:
        raise StopError(update.prompt_id)

    with pytest.raises(StopError) as caught:
        kit.execute("runninghub:5006", {"prompt": "x"}, on_progress=on_progress)
    task_id = str(caught.value)
    assert [r.body["taskId"] for r in rh_emulator.requests_to(CANCEL)] == [task_id]
    assert rh_emulator.task(task_id).state == "FAILED"


# -- configuration -------------------------------------------------------------------------


def test_missing_key_is_a_clear_config_error_and_nothing_is_sent(
    rh_emulator: RunningHubEmulator,
) -> None:
    with Witness(NOWHERE) as kit:
        with pytest.raises(ConfigError, match="RUNNINGHUB_API_KEY") as caught:
            kit.execute(RH_SOURCE, {"prompt": "x"})
        assert caught.value.name == "RUNNINGHUB_API_KEY"
        assert "runninghub_api_key=" in str(caught.value)
        with pytest.raises(ConfigError, match="RUNNINGHUB_API_KEY"):
            _ = kit.runninghub
    assert rh_emulator.requests == []


def test_invalid_environment_value_is_named_not_reported_as_a_missing_key(
    rh_emulator: RunningHubEmulator, rh_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNINGHUB_TIMEOUT", "soon")
    with (
        Witness(NOWHERE, runninghub_api_key=rh_key) as kit,
        pytest.raises(ConfigError, match="RUNNINGHUB_TIMEOUT") as caught,
    ):
        _ = kit.runninghub
    assert caught.value.name == "RUNNINGHUB_TIMEOUT"
    assert rh_key not in str(caught.value)


def test_environment_configures_runninghub(
    rh_emulator: RunningHubEmulator, rh_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNINGHUB_API_KEY", rh_key)
    monkeypatch.setenv("RUNNINGHUB_BASE_URL", rh_emulator.url)
    monkeypatch.setenv("RUNNINGHUB_TIMEOUT", "0.4")
    monkeypatch.setenv("RUNNINGHUB_RETRY_COUNT", "2")
    monkeypatch.setenv("RUNNINGHUB_RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("RUNNINGHUB_INSTANCE_TYPE", "plus")
    monkeypatch.setenv("RUNNINGHUB_POLL_INTERVAL", "0.02")
    rh_emulator.add_workflow("5007", TEXT_TO_IMAGE, run_time=60)
    with Witness(NOWHERE) as kit:
        settings = kit.runninghub.settings
        assert (settings.base_url, settings.timeout, settings.retry_count) == (
            rh_emulator.url, 0.4, 2
        )  # fmt: skip
        assert settings.instance_type == "plus"
        assert kit.runninghub is kit.runninghub  # built once
        assert rh_key not in repr(kit.runninghub)
        # RUNNINGHUB_RETRY_COUNT=2: two transient failures are survived...
        rh_emulator.inject(ACCOUNT, "http502", times=2)
        assert kit.runninghub.account_status().remain_coins is not None
        assert rh_emulator.count(ACCOUNT) == 3
        # RUNNINGHUB_TIMEOUT is the default deadline; RUNNINGHUB_INSTANCE_TYPE is sent.
        result = kit.execute("runninghub:5007", {"prompt": "x"})
        assert result.status == "timeout"
        assert "0.4 s" in (result.msg or "")
        assert create_bodies(rh_emulator)[-1]["instanceType"] == "plus"
        # An explicit execute(timeout=) beats the environment.
        result = kit.execute(RH_SOURCE, {"prompt": "x"}, timeout=10)
        assert result.ok


def test_explicit_key_beats_the_environment(
    rh_emulator: RunningHubEmulator, rh_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNINGHUB_API_KEY", "f" * 32)  # unknown to the emulator
    monkeypatch.setenv("RUNNINGHUB_BASE_URL", rh_emulator.url)
    with Witness(NOWHERE, runninghub_api_key=rh_key) as kit:
        status = kit.runninghub.account_status()
    assert status.currency == "CNY"
    assert rh_emulator.requests_to(ACCOUNT)[-1].body["apikey"] == rh_key


def test_account_status_through_the_facade(rh_emulator: RunningHubEmulator, kit: Witness) -> None:
    rh_emulator.add_workflow("5008", TEXT_TO_IMAGE, queue_delay=60)
    before = kit.runninghub.account_status()
    assert before.current_task_counts == 0
    assert before.remain_coins is not None
    result = kit.execute("runninghub:5008", {"prompt": "x"}, timeout=0.2)
    assert result.status == "timeout"
    assert kit.runninghub.account_status().current_task_counts == 0  # cancelled, not queued


# -- pass-through --------------------------------------------------------------------------


def test_instance_type_plus_and_webhook_are_passed(
    rh_emulator: RunningHubEmulator, kit: Witness
) -> None:
    result = kit.execute(
        RH_SOURCE,
        {"prompt": "x"},
        webhook_url=rh_emulator.webhook_sink_url,
        instance_type="plus",
    )
    assert result.ok
    (body,) = create_bodies(rh_emulator)
    assert body["webhookUrl"] == rh_emulator.webhook_sink_url
    assert body["instanceType"] == "plus"
    assert rh_emulator.wait_for(lambda: len(rh_emulator.sink_received) == 1)
    delivered = rh_emulator.sink_received[0]
    assert delivered["event"] == "TASK_END"
    assert delivered["taskId"] == result.prompt_id
    detail = kit.runninghub.get_webhook_detail(str(result.prompt_id))
    assert detail is not None


def test_plus_only_key_needs_instance_type_plus(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    key = rh_emulator.add_key("e" * 32, requires_plus=True)
    settings = rh_settings.with_overrides(api_key=key)
    with Witness(NOWHERE, runninghub_settings=settings) as kit:
        with pytest.raises(RunningHubExclusiveInstanceError) as caught:
            kit.execute(RH_SOURCE, {"prompt": "x"})
        assert caught.value.code == 435
        assert kit.execute(RH_SOURCE, {"prompt": "x"}, instance_type="plus").ok
    plus = settings.with_overrides(instance_type="plus")
    with Witness(NOWHERE, runninghub_settings=plus) as kit:
        assert kit.execute(RH_SOURCE, {"prompt": "x"}).ok
    assert [b.get("instanceType") for b in create_bodies(rh_emulator)] == [
        None, "plus", "plus"
    ]  # fmt: skip

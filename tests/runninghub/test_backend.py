"""RunningHubBackend: the Backend/RunHandle protocols against the RunningHub emulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runninghub import conftest as rh
from tests.runninghub.conftest import WORKFLOW_ID
from tests.runninghub_emulator import RunningHubEmulator, png_bytes
from witness.api_clients.types import CancelOutcome
from witness.backends.base import (
    Backend,
    BackendOptions,
    PreparedWorkflow,
    RunHandle,
    WaitCallbacks,
)
from witness.core import dsl
from witness.core.tracking import ProgressUpdate
from witness.errors import (
    ConfigError,
    InvalidArgumentError,
    RunningHubCreateUnconfirmedError,
    RunningHubTransportError,
    TransportError,
)
from witness.runninghub import RunningHubBackend, RunningHubOptions, RunningHubSettings
from witness.runninghub.backend import RunningHubProgress
from witness.transport.deadline import Deadline

rh_emulator = rh.rh_emulator
rh_key = rh.rh_key
rh_settings = rh.rh_settings

CREATE = "/task/openapi/create"
UPLOAD = "/task/openapi/upload"


@pytest.fixture
def backend(rh_settings: RunningHubSettings) -> Iterator[RunningHubBackend]:
    made = RunningHubBackend(rh_settings)
    try:
        yield made
    finally:
        made.close()


def prepare(
    backend: RunningHubBackend, params: dict[str, object], deadline: Deadline
) -> PreparedWorkflow:
    """What the pipeline does for a runninghub:<id> source: load, DSL, upload."""
    graph = backend.fetch_workflow(WORKFLOW_ID, deadline)
    signature = dsl.parse(graph)
    prompt = dsl.apply(graph, signature, params, resolve_media=backend.uploader(deadline))
    return PreparedWorkflow(
        prompt,
        signature,
        origin=f"runninghub:{WORKFLOW_ID}",
        workflow_id=WORKFLOW_ID,
        params=params,
    )


def test_backend_implements_the_protocols(
    rh_emulator: RunningHubEmulator, backend: RunningHubBackend, tmp_path: Path
) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == "runninghub"
    deadline = Deadline.after(10)
    assert backend.catalog(deadline) is None
    assert backend.refresh_catalog({"KSampler"}, deadline) is None
    image = tmp_path / "ref.png"
    image.write_bytes(png_bytes())
    prepared = prepare(backend, {"prompt": "a cat", "image": image}, deadline)
    assert rh_emulator.count(UPLOAD) == 1
    handle = backend.submit(prepared, deadline, RunningHubOptions(instance_type="plus"))
    assert isinstance(handle, RunHandle)
    body = rh_emulator.requests_to(CREATE)[-1].body
    assert body["instanceType"] == "plus"
    # Only the supplied params travel (the image as RunningHub's stored name).
    assert [(i["nodeId"], i["fieldName"]) for i in body["nodeInfoList"]] == [
        ("6", "text"),
        ("10", "image"),
    ]
    seen: list[ProgressUpdate] = []
    result = handle.wait(deadline, WaitCallbacks(on_progress=seen.append))
    assert result.ok, result.msg
    assert result.prompt_id == handle.prompt_id
    assert result.images
    assert result.files
    assert all(isinstance(update, RunningHubProgress) for update in seen)
    assert handle.done()
    assert handle.wait() is result  # the same result on later calls
    assert handle.cancel().outcome is CancelOutcome.FINISHED
    assert backend.running() == []


def test_submit_rejects_foreign_options_and_a_missing_id(
    rh_emulator: RunningHubEmulator, backend: RunningHubBackend
) -> None:
    deadline = Deadline.after(10)
    prepared = prepare(backend, {"prompt": "x"}, deadline)
    with pytest.raises(InvalidArgumentError, match="RunningHubOptions"):
        backend.submit(prepared, deadline, BackendOptions())
    prepared.workflow_id = None
    with pytest.raises(InvalidArgumentError, match="workflow id"):
        backend.submit(prepared, deadline)
    assert rh_emulator.count(CREATE) == 0


def test_cancel_by_id_and_attach(
    rh_emulator: RunningHubEmulator, backend: RunningHubBackend
) -> None:
    rh_emulator.add_workflow("4100", rh.TEXT_TO_IMAGE, run_time=30.0)
    deadline = Deadline.after(10)
    graph = backend.fetch_workflow("4100", deadline)
    signature = dsl.parse(graph)
    prompt = dsl.apply(graph, signature, {"prompt": "x"})
    handle = backend.submit(
        PreparedWorkflow(prompt, signature, workflow_id="4100", params={"prompt": "x"}), deadline
    )
    other = backend.attach(handle.prompt_id, deadline)
    assert other.prompt_id == handle.prompt_id
    cancelled = backend.cancel(handle.prompt_id)
    assert cancelled.cancelled
    assert cancelled.via == "runninghub"
    assert handle.wait(Deadline.after(5)).status == "interrupted"


def test_wait_times_out_within_the_deadline_and_cancels(
    rh_emulator: RunningHubEmulator, backend: RunningHubBackend
) -> None:
    rh_emulator.add_workflow("4101", rh.TEXT_TO_IMAGE, run_time=30.0)
    deadline = Deadline.after(10)
    graph = backend.fetch_workflow("4101", deadline)
    signature = dsl.parse(graph)
    handle = backend.submit(
        PreparedWorkflow(dict(graph), signature, workflow_id="4101", params={}), deadline
    )
    result = handle.wait(Deadline.after(0.3))
    assert result.status == "timeout"
    assert "cancelled" in (result.msg or "")
    assert rh_emulator.count("/task/openapi/cancel") == 1


def test_from_settings_names_the_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNNINGHUB_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="RUNNINGHUB_API_KEY"):
        RunningHubBackend.from_settings()


def test_transport_errors_join_the_one_tree() -> None:
    assert issubclass(RunningHubTransportError, TransportError)
    lost = RunningHubCreateUnconfirmedError("lost", endpoint=CREATE)
    assert isinstance(lost, TransportError)
    assert lost.sent is True
    assert lost.method == "POST"


def test_old_import_paths_still_work_and_warn() -> None:
    import importlib
    import warnings

    import witness
    from witness.runninghub import RunningHubClient, RunningHubExecutor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import witness.api_clients.runninghub_client as old_client
        import witness.core.runninghub as old_core

    for module in (old_client, old_core):
        with pytest.warns(DeprecationWarning, match="witness.runninghub"):
            importlib.reload(module)
    with pytest.warns(DeprecationWarning, match=r"witness\.runninghub\.settings"):
        from witness.config.settings import RunningHubSettings as OldSettings
    assert old_client.RunningHubClient is RunningHubClient
    assert OldSettings is RunningHubSettings
    assert old_core.RunningHubProgress is RunningHubProgress
    assert old_core.RunningHubExecutor is RunningHubExecutor
    assert witness.RunningHubSettings is RunningHubSettings
    assert witness.RunningHubBackend is RunningHubBackend


def test_the_deadline_clamps_a_slow_create_which_is_not_resent(
    rh_emulator: RunningHubEmulator, rh_settings: RunningHubSettings
) -> None:
    backend = RunningHubBackend(rh_settings.with_overrides(request_timeout=30.0))
    try:
        deadline = Deadline.after(5)
        prepared = prepare(backend, {"prompt": "x"}, deadline)
        rh_emulator.inject(CREATE, "slow", delay=3.0, after=True)
        started = time.monotonic()
        with pytest.raises(RunningHubCreateUnconfirmedError) as caught:
            backend.submit(prepared, Deadline.after(0.5))
        assert time.monotonic() - started < 2.0
    finally:
        backend.close()
    assert caught.value.sent is True
    assert rh_emulator.count(CREATE) == 1

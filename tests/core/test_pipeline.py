"""The pipeline's stages and the facade, with an injected fake backend (no server at all)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from witness import Witness
from witness.api_clients.types import CancelOutcome, CancelResult
from witness.backends.base import (
    Backend,
    BackendOptions,
    PreparedWorkflow,
    RunHandle,
    WaitCallbacks,
)
from witness.core import dsl, pipeline
from witness.core.results import ExecuteResult
from witness.core.sources import LoadedWorkflow
from witness.core.validate import NodeCatalog
from witness.errors import (
    InvalidArgumentError,
    RequestTimeoutError,
    WitnessTimeoutError,
    WorkflowValidationError,
)
from witness.transport.deadline import Deadline

OBJECT_INFO: dict[str, Any] = {
    "LoadImage": {
        "input": {"required": {"image": [["a.png", "b.png"], {"image_upload": True}]}},
        "output": ["IMAGE", "MASK"],
        "output_node": False,
        "name": "LoadImage",
    },
    "ImageInvert": {
        "input": {"required": {"image": ["IMAGE"]}},
        "output": ["IMAGE"],
        "output_node": False,
        "name": "ImageInvert",
    },
    "SaveImage": {
        "input": {
            "required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "x"}]}
        },
        "output": [],
        "output_node": True,
        "name": "SaveImage",
    },
}

WORKFLOW: dict[str, Any] = {
    "1": {
        "class_type": "LoadImage",
        "inputs": {"image": "a.png"},
        "_meta": {"title": "$photo.image"},
    },
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {
        "class_type": "SaveImage",
        "inputs": {"images": ["2", 0], "filename_prefix": "out"},
        "_meta": {"title": "$prefix.filename_prefix, $output.result"},
    },
}


@dataclass
class FakeHandle:
    backend: FakeBackend
    prepared: PreparedWorkflow
    id: str
    cancels: int = 0
    released: bool = False

    @property
    def prompt_id(self) -> str:
        return self.id

    def wait(
        self, deadline: Deadline | None = None, callbacks: WaitCallbacks | None = None
    ) -> ExecuteResult:
        self.backend.waited.append(self.id)
        if self.backend.wait_error is not None:
            raise self.backend.wait_error
        if self.backend.wait_seconds:
            assert deadline is not None
            left = deadline.remaining() or 0.0
            time.sleep(min(left, self.backend.wait_seconds))
            if deadline.expired():
                return ExecuteResult(status="timeout", prompt_id=self.id)
        return ExecuteResult(status="completed", prompt_id=self.id)

    def cancel(self) -> CancelResult:
        self.cancels += 1
        return CancelResult(self.id, CancelOutcome.INTERRUPTED, "fake")

    def done(self) -> bool:
        return True

    def release(self) -> None:
        self.released = True


@dataclass
class FakeBackend:
    """A backend that records what the pipeline asks of it."""

    name: str = "fake"
    info: dict[str, Any] = field(default_factory=lambda: dict(OBJECT_INFO))
    uploads: list[Any] = field(default_factory=list)
    submitted: list[PreparedWorkflow] = field(default_factory=list)
    handles: list[FakeHandle] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)
    refreshed: list[set[str]] = field(default_factory=list)
    wait_error: BaseException | None = None
    wait_seconds: float = 0.0
    catalog_delay: float = 0.0
    closed: int = 0

    def catalog(self, deadline: Deadline) -> NodeCatalog:
        if self.catalog_delay:
            time.sleep(min(self.catalog_delay, deadline.clamp(self.catalog_delay) or 0))
            if deadline.expired():
                raise RequestTimeoutError(
                    "GET /object_info: no answer", method="GET", url="x", timeout=1, phase="read"
                )
        return NodeCatalog(self.info)

    def refresh_catalog(self, class_types: Any, deadline: Deadline) -> NodeCatalog:
        self.refreshed.append(set(class_types))
        return NodeCatalog(self.info)

    def uploader(self, deadline: Deadline) -> Any:
        def upload(param: dsl.Param, target: dsl.ParamTarget, value: Any) -> str:
            self.uploads.append(value)
            return f"uploaded-{len(self.uploads)}.png"

        return upload

    def submit(
        self, prepared: PreparedWorkflow, deadline: Deadline, options: BackendOptions | None = None
    ) -> FakeHandle:
        self.submitted.append(prepared)
        handle = FakeHandle(self, prepared, f"run-{len(self.submitted)}")
        self.handles.append(handle)
        return handle

    def attach(self, prompt_id: str, deadline: Deadline) -> FakeHandle:
        return FakeHandle(self, PreparedWorkflow({}, dsl.parse(WORKFLOW)), prompt_id)

    def cancel(self, prompt_id: str) -> CancelResult:
        return CancelResult(prompt_id, CancelOutcome.INTERRUPTED, "fake")

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def kit(fake: FakeBackend) -> Iterator[Witness]:
    # A closed port: the facade must never reach a server of its own when a backend is given.
    with Witness("http://127.0.0.1:9", backend=fake, retries=0) as client:
        yield client


def test_the_fakes_fit_the_protocols(fake: FakeBackend) -> None:
    assert isinstance(fake, Backend)
    handle = fake.submit(PreparedWorkflow({}, dsl.parse(WORKFLOW)), Deadline.after(1))
    assert isinstance(handle, RunHandle)


def test_execute_runs_every_stage_on_the_injected_backend(
    kit: Witness, fake: FakeBackend, tmp_path: Any
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n")
    result = kit.execute(WORKFLOW, {"photo": photo, "prefix": "p"})
    assert result.status == "completed"
    assert fake.uploads == [photo]
    (prepared,) = fake.submitted
    assert prepared.prompt["1"]["inputs"]["image"] == "uploaded-1.png"
    assert prepared.prompt["3"]["inputs"]["filename_prefix"] == "p"
    assert prepared.params == {"photo": "uploaded-1.png", "prefix": "p"}
    assert fake.handles[0].released  # the handle is released after the wait
    assert WORKFLOW["1"]["inputs"]["image"] == "a.png"  # the caller's workflow is untouched


def test_validation_comes_before_any_upload(kit: Witness, fake: FakeBackend) -> None:
    bad = {k: dict(v) for k, v in WORKFLOW.items()}
    bad["2"] = {"class_type": "ImageInvertt", "inputs": {"image": ["1", 0]}}
    with pytest.raises(WorkflowValidationError) as caught:
        kit.execute(bad, {"photo": b"\x89PNG\r\n\x1a\n-bytes"})
    assert [p.kind for p in caught.value.problems] == ["missing_node_type"]
    assert fake.uploads == []  # nothing uploaded
    assert fake.submitted == []
    assert fake.refreshed == [{"ImageInvertt"}]  # a stale cache is refreshed before reporting


def test_a_pending_upload_is_not_judged_by_the_stale_choice_list(
    kit: Witness, fake: FakeBackend
) -> None:
    # The new name is not in LoadImage's list yet; the input is skipped, not flagged.
    assert kit.execute(WORKFLOW, {"photo": b"\x89PNG\r\n\x1a\nnew"}).ok
    assert fake.refreshed == []


def test_validation_off_skips_the_catalog(kit: Witness, fake: FakeBackend) -> None:
    fake.info = {}
    assert kit.execute(WORKFLOW, validate=False).ok


@pytest.mark.parametrize("params", ['{"width": 5}', ["width", 5], 5])
def test_params_must_be_a_mapping(kit: Witness, params: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="params") as caught:
        kit.execute(WORKFLOW, params)
    assert type(params).__name__ in str(caught.value)


def test_the_deadline_covers_the_steps_before_submit(kit: Witness, fake: FakeBackend) -> None:
    fake.catalog_delay = 5.0
    started = time.monotonic()
    with pytest.raises(WitnessTimeoutError) as caught:
        kit.execute(WORKFLOW, timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert caught.value.stage == "validate"
    assert fake.submitted == []


def test_a_timed_out_run_is_cancelled_once(kit: Witness, fake: FakeBackend) -> None:
    fake.wait_seconds = 5.0
    result = kit.execute(WORKFLOW, timeout=0.3)
    assert result.status == "timeout"
    assert fake.handles[0].cancels == 1
    fake.handles.clear()
    kit.execute(WORKFLOW, timeout=0.3, cancel_on_timeout=False)
    assert fake.handles[0].cancels == 0


def test_ctrl_c_while_waiting_cancels_once_and_propagates(kit: Witness, fake: FakeBackend) -> None:
    fake.wait_error = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        kit.execute(WORKFLOW)
    assert fake.handles[0].cancels == 1
    assert fake.handles[0].released
    fake.handles.clear()
    with pytest.raises(KeyboardInterrupt):
        kit.execute(WORKFLOW, cancel_on_error=False)
    assert fake.handles[0].cancels == 0


def test_submit_wait_cancel_and_close_go_to_the_backend(kit: Witness, fake: FakeBackend) -> None:
    handle = kit.submit(WORKFLOW)
    assert handle.prompt_id == "run-1"
    assert kit.wait("run-1").prompt_id == "run-1"
    assert kit.cancel("run-1").via == "fake"
    kit.close()
    assert fake.closed == 1


def test_options_of_another_backend_and_deprecated_keywords(
    kit: Witness, fake: FakeBackend
) -> None:
    with pytest.raises(InvalidArgumentError, match="native"):
        kit.execute(WORKFLOW, executor="http")  # a native-only option on another backend
    with pytest.raises(InvalidArgumentError, match="webhook_url"):
        kit.execute(WORKFLOW, webhook_url="https://example.com/hook")
    with pytest.raises(TypeError, match="nope"):
        kit.execute(WORKFLOW, nope=1)


def test_unknown_backend_name_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown backend"):
        Witness("http://127.0.0.1:9", backend="nope")
    with pytest.raises(InvalidArgumentError, match="Backend"):
        Witness("http://127.0.0.1:9", backend=object())  # type: ignore[arg-type]


def test_stage_names_a_timeout_the_deadline_caused() -> None:
    deadline = Deadline.after(0.05)
    time.sleep(0.06)
    with pytest.raises(WitnessTimeoutError) as caught, pipeline.stage(deadline, "upload"):
        pass
    assert caught.value.stage == "upload"
    live = Deadline.after(30)
    error = RequestTimeoutError("x", method="GET", url="u", timeout=1, phase="read")
    with pytest.raises(RequestTimeoutError), pipeline.stage(live, "submit"):
        raise error  # not the deadline's doing: stays what it is


def test_pending_media_writes_names_over_placeholders() -> None:
    signature = dsl.parse(WORKFLOW)
    pending = pipeline.PendingMedia()
    prompt = dsl.apply(WORKFLOW, signature, {"photo": b"x"}, resolve_media=pending)
    assert pending.inputs == {("1", "image")}
    names = pending.upload(prompt, lambda p, t, v: "stored.png")
    assert prompt["1"]["inputs"]["image"] == "stored.png"
    assert list(names.values()) == ["stored.png"]


def test_convert_leaves_api_workflows_alone() -> None:
    loaded = LoadedWorkflow(WORKFLOW, "api", "<dict>")
    assert pipeline.convert(loaded, None, Deadline.after(1)) is loaded  # type: ignore[arg-type]


def test_threads_share_one_facade(kit: Witness, fake: FakeBackend) -> None:
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(kit.execute(WORKFLOW).status))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["completed"] * 8
    assert len({h.prompt_id for h in fake.handles}) == 8

"""V2Backend against the real comfy-api-proxy in front of the real ComfyUI.

Until the pipeline (issue 12) lands, a call is run the way the pipeline will: ``dsl.parse`` →
``dsl.apply`` with the backend's uploader → ``PreparedWorkflow`` → ``submit`` → ``wait``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.core.witness_live_support import load_image_workflow, read_png, sleep_workflow
from tests.support.images import png
from tests.support.v2_proxy import (
    ProxyProcess,
    count_cancels,
    error_prompt,
    tiny_prompt,
    wait_status,
)
from witness.api_clients.queue_client import QueueClient
from witness.api_clients.types import CancelOutcome
from witness.backends.base import BackendOptions, PreparedWorkflow, RunHandle, WaitCallbacks
from witness.backends.v2 import V2Backend, V2Options, V2RunHandle
from witness.backends.v2_media import V2MediaUploader
from witness.config.settings import Settings
from witness.core import dsl
from witness.core.results import ExecuteResult
from witness.core.tracking import ProgressUpdate
from witness.errors import (
    InvalidArgumentError,
    PromptLostError,
    TransportError,
    V2IdempotencyKeyReuseError,
)
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

pytestmark = pytest.mark.integration


@pytest.fixture
def backend(v2_proxy: ProxyProcess, comfy_url: str) -> Iterator[V2Backend]:
    settings = Settings(api_url=v2_proxy.url, read_timeout=60.0, retries=1, retry_backoff=0.05)
    with V2Backend.from_settings(settings, comfyui_url=comfy_url) as made:
        yield made


def prepare(
    backend: V2Backend, workflow: dict[str, Any], params: dict[str, Any], deadline: Deadline
) -> tuple[PreparedWorkflow, V2MediaUploader]:
    """What the pipeline does before the submit."""
    signature = dsl.parse(workflow)
    uploader = backend.uploader(deadline)
    assert isinstance(uploader, V2MediaUploader)
    prompt = dsl.apply(workflow, signature, params, resolve_media=uploader)
    return PreparedWorkflow(prompt=prompt, signature=signature, params=params), uploader


def run(
    backend: V2Backend,
    workflow: dict[str, Any],
    params: dict[str, Any] | None = None,
    *,
    timeout: float = 60.0,
    options: BackendOptions | None = None,
    callbacks: WaitCallbacks | None = None,
) -> ExecuteResult:
    deadline = Deadline.after(timeout)
    prepared, _ = prepare(backend, workflow, params or {}, deadline)
    handle = backend.submit(prepared, deadline, options)
    return handle.wait(deadline, callbacks)


def test_the_protocols_are_implemented(backend: V2Backend) -> None:
    assert backend.name == "v2"
    assert backend.catalog(Deadline.never()) is None
    assert backend.detect()
    job = backend.jobs.submit(tiny_prompt())
    handle = backend.attach(job.id, Deadline.after(10))
    assert isinstance(handle, RunHandle)
    assert handle.wait(Deadline.after(60)).ok


def test_execute_with_params_an_uploaded_image_and_dedupe(
    backend: V2Backend, tmp_path: Path
) -> None:
    colour = (random.randrange(256), random.randrange(256), random.randrange(256), 255)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(6, 5, colour))
    size = photo.stat().st_size
    deadline = Deadline.after(60)
    prepared, first = prepare(backend, load_image_workflow(), {"photo": photo}, deadline)
    ref = prepared.prompt["1"]["inputs"]["image"]
    assert ref.startswith("core/ASSET:")
    result = backend.submit(prepared, deadline).wait(deadline)
    assert result.ok, result.msg
    assert first.assets_used[0].created_new is True
    uploaded_once = backend.assets.bytes_uploaded
    assert uploaded_once == size
    # The second run finds the bytes on the deployment: nothing is uploaded again.
    prepared2, second = prepare(backend, load_image_workflow(), {"photo": photo}, deadline)
    again = backend.submit(prepared2, deadline).wait(deadline)
    assert again.ok
    assert backend.assets.bytes_uploaded == uploaded_once
    assert second.skipped_bytes == size
    assert backend.hasher.hashed == 1  # hashed once per path+size+mtime
    # The same result shape as the native backend.
    assert list(result.images_by_var) == ["copy"]
    assert [f.kind for f in result.files] == ["image"]
    assert result.files[0].type == "output"
    assert result.images[0].startswith(backend.http.base_url + "/api/v2/assets/")
    saved = result.save(tmp_path / "out")
    assert len(saved) == 1
    pixels = read_png(saved[0].read_bytes())
    assert (pixels.width, pixels.height) == (6, 5)
    assert pixels.at(0, 0)[:3] == colour[:3]


def test_without_blake3_every_run_uploads(
    backend: V2Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from witness.api_clients.v2 import hashing

    monkeypatch.setattr(hashing, "_blake3", lambda: None)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(3, 3, (random.randrange(256), 9, 9, 255)))
    before = backend.assets.bytes_uploaded
    for _ in range(2):
        assert run(backend, load_image_workflow(), {"photo": photo}).ok
    assert backend.assets.bytes_uploaded - before == 2 * photo.stat().st_size


def test_dsl_params_and_outputs(backend: V2Backend) -> None:
    from tests.core.witness_live_support import image_workflow

    result = run(backend, image_workflow(prefix="witness_v2"), {"width": 16, "height": 8})
    assert result.ok
    assert result.prompt_id is not None
    assert list(result.images_by_var) == ["image"]
    assert result.files[0].filename.startswith("witness_v2")
    assert result.duration is not None
    assert result.duration > 0


def test_progress_callbacks(backend: V2Backend) -> None:
    updates: list[ProgressUpdate] = []
    result = run(
        backend,
        sleep_workflow(1.5),
        {"seconds": 1.5},
        callbacks=WaitCallbacks(on_progress=updates.append),
    )
    assert result.ok
    assert len(updates) >= 2
    assert updates[-1].overall == 1.0
    assert all(u.prompt_id == result.prompt_id for u in updates)
    assert list(result.images_by_var) == ["before", "after"]


def test_polling_instead_of_events(backend: V2Backend) -> None:
    result = run(backend, tiny_prompt(random.randrange(1 << 24)), options=V2Options(events=False))
    assert result.ok
    assert len(result.images) == 1


def test_a_raising_node_fails_with_node_detail(backend: V2Backend) -> None:
    result = run(backend, error_prompt())
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.node_id == "2"
    assert result.error.node_type == "TestSyncError"
    assert result.error.title == "Boom"
    assert "Intentional sync execution error" in (result.error.exception_message or "")
    assert result.msg is not None
    assert result.msg.startswith('node 2 (TestSyncError "Boom")')
    with pytest.raises(Exception, match="Intentional sync execution error"):
        result.raise_for_status()


def test_cancel_a_running_job(backend: V2Backend) -> None:
    deadline = Deadline.after(60)
    prepared, _ = prepare(backend, sleep_workflow(30), {}, deadline)
    handle = backend.submit(prepared, deadline)
    wait_status(backend, handle.prompt_id, "running")
    cancelled = handle.cancel()
    assert cancelled.outcome is CancelOutcome.INTERRUPTED
    assert cancelled.via == "v2_api"
    result = handle.wait(deadline)
    assert result.status == "interrupted"
    assert list(result.images_by_var) == ["before"]  # what finished before the cancel
    assert handle.cancel() == cancelled  # idempotent: nothing is sent again
    assert backend.cancel(handle.prompt_id).outcome is CancelOutcome.FINISHED
    assert handle.done()


def test_timeout_cancels_the_job(backend: V2Backend) -> None:
    deadline = Deadline.after(3)
    prepared, _ = prepare(backend, sleep_workflow(30), {}, deadline)
    handle = backend.submit(prepared, deadline, V2Options(cancel_on_timeout=True))
    started = time.monotonic()
    result = handle.wait(deadline)
    assert time.monotonic() - started < 6
    assert result.status == "timeout"
    wait_status(backend, handle.prompt_id, "canceled")


def test_an_exception_while_waiting_cancels_once(
    backend: V2Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_cancels(monkeypatch, backend)

    def interrupt(update: ProgressUpdate) -> None:
        raise KeyboardInterrupt

    deadline = Deadline.after(60)
    prepared, _ = prepare(backend, sleep_workflow(30), {}, deadline)
    handle = backend.submit(prepared, deadline, V2Options(cancel_on_error=True))
    callbacks = WaitCallbacks(on_progress=interrupt)
    with pytest.raises(KeyboardInterrupt):
        handle.wait(deadline, callbacks)
    assert calls == [handle.prompt_id]
    wait_status(backend, handle.prompt_id, "canceled")
    assert handle.wait(deadline).status == "interrupted"  # a later wait still works
    handle.cancel()  # what the pipeline does after an error: answered from the first cancel
    assert calls == [handle.prompt_id]  # cancelled exactly once


def test_idempotency_key_reuse(backend: V2Backend) -> None:
    key = f"witness-{random.randrange(1 << 60)}"
    assert run(backend, tiny_prompt(5), options=V2Options(idempotency_key=key)).ok
    with pytest.raises(V2IdempotencyKeyReuseError):
        run(backend, tiny_prompt(6), options=V2Options(idempotency_key=key))


def test_foreign_options_and_unknown_jobs(backend: V2Backend) -> None:
    @dataclass(frozen=True)
    class Other(BackendOptions):
        pass

    with pytest.raises(InvalidArgumentError, match="V2Options"):
        run(backend, tiny_prompt(), options=Other())
    with pytest.raises(PromptLostError):
        backend.attach("00000000-0000-4000-8000-000000000000", Deadline.after(10))
    assert backend.cancel("00000000-0000-4000-8000-000000000000").outcome is CancelOutcome.NOT_FOUND


def test_the_proxy_killed_mid_run(
    private_proxy: Callable[..., ProxyProcess], comfy_url: str
) -> None:
    proxy = private_proxy()
    settings = Settings(api_url=proxy.url, read_timeout=30.0, retries=1, retry_backoff=0.05)
    with V2Backend.from_settings(settings) as backend:
        deadline = Deadline.after(120)
        prepared, _ = prepare(backend, sleep_workflow(30), {}, deadline)
        handle = backend.submit(prepared, deadline)
        wait_status(backend, handle.prompt_id, "running")
        threading.Timer(0.5, proxy.kill).start()
        started = time.monotonic()
        with pytest.raises(TransportError):
            handle.wait(deadline)
        assert time.monotonic() - started < 20  # the grace period, not the 120 s deadline
    with HttpClient(Settings(api_url=comfy_url)) as native:
        QueueClient(native).cancel(handle.prompt_id)


def test_handle_type(backend: V2Backend) -> None:
    job = backend.jobs.submit(tiny_prompt(7))
    handle = backend.attach(job.id, Deadline.after(10))
    assert isinstance(handle, V2RunHandle)
    assert handle.wait(Deadline.after(60)) is handle.wait()


def test_a_token_proxy_works_with_the_key_and_refuses_without(
    v2_token_proxy: ProxyProcess, tmp_path: Path
) -> None:
    from tests.support.v2_proxy import TOKEN
    from witness.errors import V2UnauthorizedError

    photo = tmp_path / "p.png"
    photo.write_bytes(png(2, 2, (random.randrange(256), 1, 2, 255)))
    settings = Settings(api_url=v2_token_proxy.url, api_key=TOKEN, retries=0)
    with V2Backend.from_settings(settings) as backend:
        result = run(backend, load_image_workflow(), {"photo": photo})
        assert result.ok
        assert result.save(tmp_path / "out")  # downloads carry the key too
    with V2Backend.from_settings(settings.with_overrides(api_key=None)) as anonymous:
        assert anonymous.detect()  # health needs no key
        with pytest.raises(V2UnauthorizedError):
            run(anonymous, tiny_prompt())

"""The v2 backend through the facade: ``Witness(backend="v2")`` / ``Witness(backend=V2Backend)``
against the real comfy-api-proxy in front of the real ComfyUI."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.witness_live_support import image_workflow, load_image_workflow, sleep_workflow
from tests.support.images import png
from tests.support.v2_proxy import ProxyProcess, count_cancels, error_prompt, wait_status
from witness import Witness
from witness.backends.v2 import V2Backend
from witness.config.settings import Settings
from witness.core.tracking import ProgressUpdate
from witness.errors import ConfigError

pytestmark = pytest.mark.integration


def proxy_settings(proxy: ProxyProcess) -> Settings:
    return Settings(api_url=proxy.url, read_timeout=60.0, retries=1, retry_backoff=0.05)


@pytest.fixture
def kit(v2_proxy: ProxyProcess) -> Iterator[Witness]:
    with Witness(settings=proxy_settings(v2_proxy), backend="v2", timeout=60) as made:
        yield made


@pytest.fixture
def cancelling_kit(v2_proxy: ProxyProcess, comfy_url: str) -> Iterator[Witness]:
    """A Witness on a V2Backend that can cancel on ComfyUI 0.3.75 (native fallback)."""
    backend = V2Backend.from_settings(proxy_settings(v2_proxy), comfyui_url=comfy_url)
    with Witness(settings=proxy_settings(v2_proxy), backend=backend, timeout=60) as made:
        yield made
    backend.close()


def test_backend_by_name(kit: Witness) -> None:
    assert isinstance(kit.backend, V2Backend)
    assert kit.backend.name == "v2"


def test_execute_with_params_and_an_uploaded_image_deduplicated(
    kit: Witness, tmp_path: Path
) -> None:
    assert isinstance(kit.backend, V2Backend)
    colour = (random.randrange(256), random.randrange(256), random.randrange(256), 255)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(5, 4, colour))
    first = kit.execute(load_image_workflow(), {"photo": photo})
    assert first.ok, first.msg
    uploaded = kit.backend.assets.bytes_uploaded
    assert uploaded == photo.stat().st_size
    second = kit.execute(load_image_workflow(), {"photo": photo})
    assert second.ok
    assert kit.backend.assets.bytes_uploaded == uploaded  # de-duplicated: nothing sent again
    assert list(second.images_by_var) == ["copy"]
    saved = second.save(tmp_path / "out")
    assert len(saved) == 1
    assert saved[0].stat().st_size > 0
    result = kit.execute(image_workflow(prefix="witness_v2_kit"), {"width": 16, "height": 8})
    assert result.ok
    assert result.files[0].filename.startswith("witness_v2_kit")


def test_progress_through_execute(kit: Witness) -> None:
    updates: list[ProgressUpdate] = []
    result = kit.execute(sleep_workflow(1.0), {"seconds": 1.0}, on_progress=updates.append)
    assert result.ok
    assert updates
    assert updates[-1].overall == 1.0


def test_a_raising_node_fails_with_node_detail(kit: Witness) -> None:
    result = kit.execute(error_prompt())
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.node_id == "2"
    assert result.error.node_type == "TestSyncError"


def test_timeout_cancels_the_job_once(
    cancelling_kit: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = cancelling_kit.backend
    assert isinstance(backend, V2Backend)
    calls = count_cancels(monkeypatch, backend)
    started = time.monotonic()
    result = cancelling_kit.execute(sleep_workflow(30), timeout=3)
    assert time.monotonic() - started < 8
    assert result.status == "timeout"
    assert result.prompt_id is not None
    assert calls == [result.prompt_id]
    wait_status(backend, result.prompt_id, "canceled")


def test_ctrl_c_while_waiting_cancels_once(
    cancelling_kit: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = cancelling_kit.backend
    assert isinstance(backend, V2Backend)
    calls = count_cancels(monkeypatch, backend)

    def interrupt(update: ProgressUpdate) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cancelling_kit.execute(sleep_workflow(30), on_progress=interrupt)
    assert len(calls) == 1
    wait_status(backend, calls[0], "canceled")


def test_comfy_cloud_needs_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COMFY_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    with pytest.raises(ConfigError, match="COMFY_API_KEY"):
        Witness.comfy_cloud()

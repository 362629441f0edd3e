"""Text-to-image through Witness.execute() with the DSL titles, on the tiny SD1.5 checkpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import png_size
from witness import Preview, ProgressUpdate, Settings, Witness

pytestmark = pytest.mark.integration

TXT2IMG = Path(__file__).resolve().parents[2] / "examples" / "txt2img.json"
CHECKPOINT = "witness-tiny-sd15.safetensors"


@pytest.fixture(scope="module")
def kit(comfy_url: str) -> Iterator[Witness]:
    with Witness(settings=Settings(api_url=comfy_url, read_timeout=120.0)) as witness:
        yield witness


def test_signature_of_the_txt2img_workflow(kit: Witness) -> None:
    sig = kit.inspect(TXT2IMG)
    params = sig["params"]
    assert set(params) == {"model", "prompt", "negative", "width", "height", "seed", "steps"}
    assert params["prompt"]["required"] is True
    assert params["width"]["required"] is True
    assert params["model"]["default"] == CHECKPOINT
    assert params["seed"]["field"] == "seed"
    assert [o["name"] for o in sig["outputs"]] == ["result"]


def test_txt2img_with_progress_per_step_and_latent_previews(kit: Witness) -> None:
    assert CHECKPOINT in kit.system.models("checkpoints")
    updates: list[ProgressUpdate] = []
    previews: list[Preview] = []
    result = kit.execute(
        TXT2IMG,
        {"prompt": "a red fox in the snow", "width": 64, "height": 48, "seed": 7, "steps": 4},
        on_progress=updates.append,
        on_preview=previews.append,
        timeout=300,
    )
    result.raise_for_status()
    assert list(result.images_by_var) == ["result"]
    assert len(result.images) == 1
    data = kit.files.download(result.files[0].filename, type="output")
    assert png_size(data) == (64, 48)
    sampler_steps = [u.value for u in updates if u.node_id == "3" and u.max == 4]
    assert {1, 2, 3, 4} <= set(sampler_steps)
    assert updates[-1].overall == pytest.approx(1.0)
    assert all(0.0 <= u.overall <= 1.0 for u in updates)
    assert len(previews) >= 3  # latent2rgb preview per step
    assert {p.format for p in previews} <= {"image/jpeg", "image/png"}
    assert all(p.prompt_id == result.prompt_id for p in previews)
    assert all(p.data[:2] == b"\xff\xd8" or p.data[:4] == b"\x89PNG" for p in previews)


def test_missing_required_prompt_is_refused_before_submit(kit: Witness) -> None:
    from witness import MissingParamError

    before = len(kit.history.get_all(max_items=10_000))
    with pytest.raises(MissingParamError, match="prompt"):
        kit.execute(TXT2IMG, {"width": 64, "height": 64})
    assert len(kit.history.get_all(max_items=10_000)) == before


def test_interrupting_a_long_sampling_run(kit: Witness) -> None:
    started = threading.Event()
    handle = kit.submit(
        TXT2IMG,
        {"prompt": "long run", "width": 64, "height": 64, "seed": 1, "steps": 400},
        timeout=300,
    )

    def on_progress(update: ProgressUpdate) -> None:
        if update.node_id == "3" and update.value >= 2:
            started.set()

    canceller = threading.Thread(target=lambda: started.wait(120) and handle.cancel(), daemon=True)
    canceller.start()
    result = handle.wait(on_progress=on_progress)
    canceller.join(10)
    assert started.is_set()
    assert result.status == "interrupted"
    assert result.error is not None
    assert result.error.node_id == "3"
    assert result.images == []
    assert "interrupted" in (result.msg or "")


def test_free_unloads_and_the_next_run_still_works(kit: Witness) -> None:
    params = {"prompt": "after free", "width": 64, "height": 64, "seed": 3, "steps": 2}
    kit.execute(TXT2IMG, params, timeout=300).raise_for_status()
    kit.queue.free(unload_models=True, free_memory=True)
    again = kit.execute(TXT2IMG, {**params, "seed": 4}, timeout=300)
    assert again.status == "completed"
    assert len(again.images) == 1

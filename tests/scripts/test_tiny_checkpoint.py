"""The tiny SD1.5 checkpoint: its generator and ``comfyui_server.ensure_tiny_checkpoint``.

Header checks are pure Python (safetensors headers are JSON). Tests that need torch run the
generator in ComfyUI's virtualenv; they reuse the cached checkpoint and generate only a few
tensors (each tensor depends on the seed and its own name only), so they stay cheap.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts import comfyui_server
from scripts import make_tiny_checkpoint as tool
from scripts.comfyui_server import (
    TINY_CHECKPOINT,
    TINY_CHECKPOINT_SCRIPT,
    TINY_CHECKPOINT_SEED,
    CheckpointError,
    ComfyServer,
    ensure_tiny_checkpoint,
)

UNET = tool.UNET_PREFIX
VAE = tool.VAE_PREFIX
CLIP = tool.CLIP_PREFIX + "text_model."

# A few tensors from each part, all randomly initialised (not norms or biases).
SAMPLE = (
    UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
    UNET + "out.2.weight",
    VAE + "decoder.conv_out.weight",
    CLIP + "encoder.layers.11.mlp.fc1.weight",
    CLIP + "embeddings.position_embedding.weight",
)


@pytest.fixture(scope="module")
def checkpoint(comfy_install: Path) -> Path:
    """The cached checkpoint (installing ComfyUI and generating it on first use)."""
    return ensure_tiny_checkpoint()


@pytest.fixture(scope="module")
def header(checkpoint: Path) -> dict[str, Any]:
    return tool.read_header(checkpoint)


def shape(header: dict[str, Any], name: str) -> list[int]:
    return list(header[name]["shape"])


def tensor_bytes(path: Path, name: str) -> bytes:
    header = tool.read_header(path)
    with path.open("rb") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        start, end = header[name]["data_offsets"]
        handle.seek(8 + header_len + start)
        return handle.read(end - start)


def run_tool(*args: object) -> dict[str, Any]:
    """Run the generator in ComfyUI's virtualenv; return its JSON summary."""
    done = subprocess.run(
        [str(comfyui_server.venv_python()), str(TINY_CHECKPOINT_SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


# -- the cached file -----------------------------------------------------------------------


@pytest.mark.integration
def test_cached_checkpoint_is_where_the_servers_look(checkpoint: Path) -> None:
    assert checkpoint == comfyui_server.models_dir() / "checkpoints" / TINY_CHECKPOINT
    assert tool.checkpoint_is_current(checkpoint, TINY_CHECKPOINT_SEED)


@pytest.mark.integration
def test_metadata_names_recipe_and_seed(header: dict[str, Any]) -> None:
    assert header["__metadata__"] == {
        "witness.generator": tool.GENERATOR,
        "witness.recipe": tool.RECIPE,
        "witness.architecture": "sd15-tiny",
        "witness.seed": str(TINY_CHECKPOINT_SEED),
    }


@pytest.mark.integration
def test_every_tensor_is_float16_in_the_ldm_layout(header: dict[str, Any]) -> None:
    names = [k for k in header if k != "__metadata__"]
    assert {header[k]["dtype"] for k in names} == {"F16"}
    assert all(k.startswith((UNET, VAE, CLIP)) for k in names)
    for prefix in (UNET, VAE, CLIP):
        assert sum(k.startswith(prefix) for k in names) > 5
    parameters = sum(math.prod(header[k]["shape"]) for k in names)
    assert 200_000_000 < parameters < 260_000_000


@pytest.mark.integration
def test_unet_shapes_are_what_comfyui_detects_as_sd15(header: dict[str, Any]) -> None:
    # model_channels 320 and 4 latent channels, from input_blocks.0.0
    assert shape(header, UNET + "input_blocks.0.0.weight") == [320, 4, 3, 3]
    assert shape(header, UNET + "out.2.weight") == [4, 320, 3, 3]
    # cross-attention context_dim 768, conv (not linear) proj_in, 8 heads of 40
    block = UNET + "input_blocks.1.1."
    assert shape(header, block + "transformer_blocks.0.attn2.to_k.weight") == [320, 768]
    assert len(shape(header, block + "proj_in.weight")) == 4
    assert UNET + "middle_block.1.proj_in.weight" in header
    # no class/ADM embedding (SDXL, SD2 unCLIP) and no temporal layers (SVD)
    assert not any(k.startswith(UNET + "label_emb.") for k in header)
    assert not any(".time_stack." in k or ".time_mix_blocks." in k for k in header)
    # one level: a single res block in, none downsampling, two out
    assert not any(k.endswith(".0.op.weight") for k in header)
    assert not any(k.startswith(UNET + "input_blocks.2.") for k in header)
    assert UNET + "output_blocks.1.1.proj_in.weight" in header
    assert not any(k.startswith(UNET + "output_blocks.2.") for k in header)


@pytest.mark.integration
def test_text_encoder_and_vae_keep_sd15_shapes(header: dict[str, Any]) -> None:
    assert shape(header, CLIP + "embeddings.token_embedding.weight") == [49408, 768]
    assert shape(header, CLIP + "embeddings.position_embedding.weight") == [77, 768]
    assert CLIP + "encoder.layers.11.self_attn.q_proj.weight" in header
    assert not any(k.startswith(CLIP + "encoder.layers.12.") for k in header)
    assert CLIP + "final_layer_norm.weight" in header
    assert tool.CLIP_PREFIX + "text_projection.weight" not in header

    assert shape(header, VAE + "decoder.conv_in.weight") == [512, 4, 3, 3]
    assert shape(header, VAE + "encoder.conv_out.weight") == [8, 512, 3, 3]
    assert shape(header, VAE + "quant_conv.weight") == [8, 8, 1, 1]
    assert shape(header, VAE + "post_quant_conv.weight") == [4, 4, 1, 1]
    assert VAE + "encoder.down.2.downsample.conv.weight" in header  # 8x, not the x4 upscaler
    assert VAE + "decoder.mid.attn_1.q.weight" in header


@pytest.mark.integration
@pytest.mark.slow
def test_comfyui_loads_it_as_sd15_and_every_part_runs(checkpoint: Path) -> None:
    summary = run_tool("--output", checkpoint, "--seed", TINY_CHECKPOINT_SEED, "--verify")
    assert summary["generated"] is False  # idempotent: the cached file is reused
    assert summary["verify"]["detected"] == "SD15"
    assert summary["verify"]["latent_format"] == "SD15"
    assert summary["verify"]["cond_shape"] == [1, 77, 768]
    assert summary["verify"]["image_shape"] == [1, 64, 64, 3]


# -- reproducibility and idempotence -------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_same_seed_gives_the_same_tensors_and_another_seed_does_not(
    checkpoint: Path, tmp_path: Path
) -> None:
    only = [arg for name in SAMPLE for arg in ("--only", name)]
    same = tmp_path / "same.safetensors"
    other = tmp_path / "other.safetensors"
    summary = run_tool("--output", same, "--seed", TINY_CHECKPOINT_SEED, *only)
    run_tool("--output", other, "--seed", TINY_CHECKPOINT_SEED + 1, *only)

    assert summary["generated"] is True
    assert summary["tensors"] == len(SAMPLE)
    for name in SAMPLE:
        assert tensor_bytes(same, name) == tensor_bytes(checkpoint, name), name
        assert tensor_bytes(other, name) != tensor_bytes(checkpoint, name), name
    assert tool.read_header(same)["__metadata__"]["witness.only"] == ",".join(sorted(SAMPLE))

    # Idempotent: the same arguments leave the file alone.
    before = same.stat().st_mtime_ns
    assert run_tool("--output", same, "--seed", TINY_CHECKPOINT_SEED, *only)["generated"] is False
    assert same.stat().st_mtime_ns == before
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.safetensors", "same.safetensors"]


def test_tensor_seeds_depend_on_seed_and_name_only() -> None:
    assert tool.tensor_seed(1, "a") == tool.tensor_seed(1, "a")
    assert tool.tensor_seed(1, "a") != tool.tensor_seed(2, "a")
    assert tool.tensor_seed(1, "a") != tool.tensor_seed(1, "b")
    assert 0 <= tool.tensor_seed(123, "x") < 2**63


# -- header checks -------------------------------------------------------------------------


def write_safetensors(path: Path, metadata: dict[str, str], payload: bytes = b"\0\0") -> None:
    header = {
        "__metadata__": metadata,
        "t": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]},
    }
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)


def test_a_truncated_or_foreign_file_is_not_current(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    write_safetensors(good, tool.expected_metadata(7))
    assert tool.checkpoint_is_current(good, 7)
    assert not tool.checkpoint_is_current(good, 8)
    assert not tool.checkpoint_is_current(good, 7, only=["model."])

    truncated = tmp_path / "truncated.safetensors"
    write_safetensors(truncated, tool.expected_metadata(7), payload=b"\0")
    assert not tool.checkpoint_is_current(truncated, 7)
    with pytest.raises(tool.CheckpointError, match="header describes"):
        tool.read_header(truncated)

    foreign = tmp_path / "foreign.safetensors"
    write_safetensors(foreign, {"format": "pt"})
    assert not tool.checkpoint_is_current(foreign, 7)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    assert not tool.checkpoint_is_current(garbage, 7)
    assert not tool.checkpoint_is_current(tmp_path / "missing.safetensors", 7)


# -- ensure_tiny_checkpoint ----------------------------------------------------------------


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ComfyUI home without an install."""
    monkeypatch.setenv("WITNESS_COMFYUI_HOME", str(tmp_path))
    return tmp_path


def test_ensure_reuses_a_current_file_without_running_the_generator(
    empty_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = empty_home / "models" / "checkpoints" / TINY_CHECKPOINT
    path.parent.mkdir(parents=True)
    write_safetensors(path, tool.expected_metadata(TINY_CHECKPOINT_SEED))

    def no_generator(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the generator must not run")

    monkeypatch.setattr(subprocess, "run", no_generator)
    assert ensure_tiny_checkpoint() == path


def test_ensure_without_an_install_raises(empty_home: Path) -> None:
    path = empty_home / "models" / "checkpoints" / TINY_CHECKPOINT
    path.parent.mkdir(parents=True)
    write_safetensors(path, tool.expected_metadata(TINY_CHECKPOINT_SEED), payload=b"\0")
    with pytest.raises(CheckpointError, match="not installed"):
        ensure_tiny_checkpoint()


def test_stale_temporaries_of_dead_generators_are_removed(tmp_path: Path) -> None:
    target = tmp_path / TINY_CHECKPOINT
    dead = tmp_path / f".{TINY_CHECKPOINT}.999999999.tmp"
    live = tmp_path / f".{TINY_CHECKPOINT}.{os.getpid()}.tmp"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    comfyui_server._remove_stale_temporaries(target)
    assert not dead.exists()
    assert live.exists()


@pytest.mark.integration
def test_make_checkpoint_command_prints_the_path(
    checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert comfyui_server.main(["make-checkpoint"]) == 0
    assert capsys.readouterr().out.strip() == str(checkpoint)


@pytest.mark.integration
@pytest.mark.slow
def test_ensure_generates_a_missing_checkpoint(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A ComfyUI home sharing the real install but with no models yet.
    real_home = comfyui_server.home()
    home = tmp_path / "home"
    home.mkdir()
    for name in ("venv", "ComfyUI"):
        (home / name).symlink_to(real_home / name, target_is_directory=True)
    monkeypatch.setenv("WITNESS_COMFYUI_HOME", str(home))
    generated = home / "models" / "checkpoints" / TINY_CHECKPOINT
    stale = generated.with_name(f".{TINY_CHECKPOINT}.999999999.tmp")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a killed run")
    try:
        assert ensure_tiny_checkpoint() == generated
        assert generated.read_bytes() == checkpoint.read_bytes()  # byte-for-byte reproducible
        assert sorted(p.name for p in generated.parent.iterdir()) == [TINY_CHECKPOINT]
    finally:
        generated.unlink(missing_ok=True)


def test_server_start_ensures_the_checkpoint_before_launching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class EnsuredError(Exception):
        pass

    def ensure(**kwargs: Any) -> Path:
        raise EnsuredError

    monkeypatch.setattr(comfyui_server, "is_installed", lambda: True)
    monkeypatch.setattr(comfyui_server, "ensure_tiny_checkpoint", ensure)
    server = ComfyServer()
    with pytest.raises(EnsuredError):
        server.start()
    assert server.process is None
    assert server.workdir is None  # nothing was created or launched


def test_install_ensures_the_checkpoint_last(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def install_comfyui(*, force: bool) -> None:
        calls.append(f"install {force}")

    def ensure(*, force: bool) -> Path:
        calls.append(f"checkpoint {force}")
        return Path()

    monkeypatch.setattr(comfyui_server, "_install_comfyui", install_comfyui)
    monkeypatch.setattr(comfyui_server, "ensure_tiny_checkpoint", ensure)
    comfyui_server.install()
    comfyui_server.install(force=True)
    assert calls == ["install False", "checkpoint False", "install True", "checkpoint True"]

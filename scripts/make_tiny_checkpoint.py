# mypy: disable-error-code="import-not-found"
"""Make a tiny random-weight checkpoint that ComfyUI loads as Stable Diffusion 1.5.

Not part of the witness library. Model weights cannot be downloaded in the test environment,
yet the workflow every user starts with is text-to-image (CheckpointLoaderSimple ->
CLIPTextEncode -> KSampler -> VAEDecode -> SaveImage). This script writes a checkpoint that
ComfyUI detects as SD1.5 from its state-dict shapes, so that workflow runs for real:

* the UNet keeps SD1.5's ``model_channels`` 320 and cross-attention ``context_dim`` 768 but has a
  single level (one res block + transformer in, a middle block, two out), about 25 M parameters;
* the CLIP-L text encoder (about 123 M) and the VAE (about 84 M) keep their real SD1.5 shapes;
* every tensor is float16, drawn from a generator seeded by ``(seed, tensor name)``, so the file
  is byte-for-byte reproducible and each tensor is independent of every other one;
* keys use the original LDM layout (``model.diffusion_model.*``, ``first_stage_model.*``,
  ``cond_stage_model.transformer.text_model.*``), as SD1.5 checkpoints do.

The images it makes are noise or flat colour. Runs inside ComfyUI's virtualenv (it uses
ComfyUI's own model classes, built on the ``meta`` device, for the key names and shapes)::

    .comfyui/venv/bin/python scripts/make_tiny_checkpoint.py \\
        --output .comfyui/models/checkpoints/witness-tiny-sd15.safetensors --seed 1515

The output is written atomically (temporary file, fsync, rename) and the run is idempotent: a
file made by the same recipe with the same seed (and ``--only``) is left alone unless
``--force``. ``--verify`` then loads it through ``comfy.sd.load_checkpoint_guess_config`` and
runs the text encoder, one UNet evaluation and a VAE decode. The last line on stdout is a JSON
summary.

This module imports torch and ComfyUI only inside functions, so ``scripts/comfyui_server.py``
can import it (from any Python) for :func:`checkpoint_is_current` and :func:`read_header`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import struct
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RECIPE = "1"  # bump when the architecture or the initialisation changes
GENERATOR = "witness/scripts/make_tiny_checkpoint.py"
DEFAULT_SEED = 1515
ARCHITECTURE = "sd15-tiny"

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

#: The UNet as ``comfy.model_detection.detect_unet_config`` reports it, plus SD15's extra config.
UNET_CONFIG: dict[str, Any] = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [1, 1],
    "channel_mult": [1],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}
UNET_EXTRA_CONFIG: dict[str, Any] = {"num_heads": 8, "num_head_channels": -1}

#: SD1.x VAE (``comfy.sd.VAE``'s default ddconfig) with ``embed_dim`` 4.
VAE_DDCONFIG: dict[str, Any] = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 128,
    "ch_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_resolutions": [],
    "dropout": 0.0,
}

_MAX_HEADER = 100 * 1024 * 1024
log = logging.getLogger("make_tiny_checkpoint")


class CheckpointError(RuntimeError):
    """Making or verifying the checkpoint failed."""


# -- pure-Python helpers (no torch) -------------------------------------------------------


def expected_metadata(seed: int, only: Sequence[str] = ()) -> dict[str, str]:
    """The ``__metadata__`` a file made with these arguments carries."""
    meta = {
        "witness.generator": GENERATOR,
        "witness.recipe": RECIPE,
        "witness.architecture": ARCHITECTURE,
        "witness.seed": str(seed),
    }
    if only:
        meta["witness.only"] = ",".join(sorted(only))
    return meta


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a safetensors file's JSON header and check that the file is complete.

    Returns:
        The header: tensor name -> ``{"dtype", "shape", "data_offsets"}``, plus
        ``"__metadata__"`` when present.

    Raises:
        CheckpointError: The file is missing, truncated or not a safetensors file.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw_len = handle.read(8)
            if len(raw_len) != 8:
                raise CheckpointError(f"{path} is not a safetensors file (shorter than 8 bytes)")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > _MAX_HEADER:
                raise CheckpointError(f"{path}: header length {header_len} is implausible")
            raw = handle.read(header_len)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if len(raw) != header_len:
        raise CheckpointError(f"{path} is truncated inside its header")
    try:
        header: dict[str, Any] = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"{path}: header is not JSON: {exc}") from exc
    end = max(
        (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
        default=0,
    )
    if size != 8 + header_len + end:
        raise CheckpointError(
            f"{path} is {size} bytes but its header describes {8 + header_len + end}"
        )
    return header


def checkpoint_is_current(
    path: str | os.PathLike[str], seed: int, only: Sequence[str] = ()
) -> bool:
    """Whether ``path`` is a complete file made by this recipe with these arguments."""
    try:
        header = read_header(path)
    except CheckpointError:
        return False
    return bool(header.get("__metadata__") == expected_metadata(seed, only))


def tensor_seed(seed: int, name: str) -> int:
    """The generator seed of one tensor: independent of every other tensor and of order."""
    digest = hashlib.sha256(f"{ARCHITECTURE}/{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


# -- building the state dict (torch + ComfyUI) --------------------------------------------


def import_comfy(comfyui_dir: Path) -> None:
    """Make ComfyUI's ``comfy`` package importable, on the CPU, without parsing our argv."""
    if not (comfyui_dir / "comfy" / "sd.py").exists():
        raise CheckpointError(f"{comfyui_dir} is not a ComfyUI source folder (no comfy/sd.py)")
    if str(comfyui_dir) not in sys.path:
        sys.path.insert(0, str(comfyui_dir))
    import comfy.options

    comfy.options.enable_args_parsing(False)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # the torch build may be CUDA-enabled without a GPU


def _modules(prefix: str, module: Any) -> Iterable[tuple[str, Any, str, Any]]:
    """(full tensor name, owning module, local name, tensor) for parameters and buffers."""
    for mod_name, mod in module.named_modules():
        base = prefix + (mod_name + "." if mod_name else "")
        for local, param in mod.named_parameters(recurse=False):
            yield base + local, mod, local, param
        for local, buf in mod.named_buffers(recurse=False):
            if local not in getattr(mod, "_non_persistent_buffers_set", set()):
                yield base + local, mod, local, buf


def architecture() -> list[tuple[str, Any, str, Any]]:
    """Every tensor of the checkpoint, as meta tensors, from ComfyUI's own model classes."""
    import comfy.clip_model
    import comfy.ldm.models.autoencoder
    import comfy.ops
    import comfy.sd1_clip
    import torch
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    ops = comfy.ops.disable_weight_init
    clip_config_path = Path(comfy.sd1_clip.__file__).with_name("sd1_clip_config.json")
    clip_config = json.loads(clip_config_path.read_text())
    with torch.device("meta"):
        unet = UNetModel(
            **UNET_CONFIG, **UNET_EXTRA_CONFIG, dtype=torch.float16, device="meta", operations=ops
        )
        vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4)
        clip = comfy.clip_model.CLIPTextModel(clip_config, torch.float16, "meta", ops)
    entries = [
        *_modules(UNET_PREFIX, unet),
        *_modules(VAE_PREFIX, vae),
        *_modules(CLIP_PREFIX, clip),
    ]
    # Real SD1.5 checkpoints carry HF's CLIPTextModel, which has no text projection; ComfyUI
    # drops it when saving an SD1.5 checkpoint too (SD15.process_clip_state_dict_for_saving).
    return [e for e in entries if e[0] != CLIP_PREFIX + "text_projection.weight"]


def _initial_value(name: str, module: Any, local: str, shape: Sequence[int], seed: int) -> Any:
    """A deterministic float32 initial value in the spirit of each layer's usual init."""
    import torch

    if isinstance(module, torch.nn.GroupNorm | torch.nn.LayerNorm):
        if local == "weight":
            return torch.ones(shape)
        return torch.zeros(shape)
    if local == "bias":
        return torch.zeros(shape)
    generator = torch.Generator().manual_seed(tensor_seed(seed, name))
    if isinstance(module, torch.nn.Embedding):
        return torch.randn(shape, generator=generator) * 0.02
    if isinstance(module, torch.nn.Linear | torch.nn.Conv2d) and local == "weight":
        fan_in = math.prod(shape[1:])
        return torch.randn(shape, generator=generator) / math.sqrt(fan_in)
    raise CheckpointError(f"no initialisation rule for {name} ({type(module).__name__}.{local})")


def build_state_dict(seed: int, only: Sequence[str] = ()) -> dict[str, Any]:
    """The checkpoint's tensors (float16, contiguous), optionally only names with a prefix."""
    import torch

    state: dict[str, Any] = {}
    for name, module, local, meta in architecture():
        if only and not any(name.startswith(p) for p in only):
            continue
        value = _initial_value(name, module, local, tuple(meta.shape), seed)
        state[name] = value.to(torch.float16).contiguous()
    if not state:
        raise CheckpointError(f"no tensor name starts with any of {list(only)}")
    return state


def detect(state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """ComfyUI's model detection on ``state``: (model config class name, unet config)."""
    import comfy.model_detection

    prefix = comfy.model_detection.unet_prefix_from_state_dict(state)
    if prefix != UNET_PREFIX:
        raise CheckpointError(f"ComfyUI sees the UNet prefix as {prefix!r}, not {UNET_PREFIX!r}")
    unet_config = comfy.model_detection.detect_unet_config(state, prefix)
    if unet_config is None:
        raise CheckpointError("ComfyUI's detect_unet_config found no UNet")
    config = comfy.model_detection.model_config_from_unet_config(unet_config, state)
    if config is None:
        raise CheckpointError(f"ComfyUI matches no model to the UNet config {unet_config}")
    return type(config).__name__, unet_config


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def serialize_header(state: dict[str, Any], metadata: dict[str, str]) -> bytes:
    """The safetensors header for ``state`` (tensors laid out in name order), padded to 8.

    Written by hand rather than with ``safetensors.torch.save_file``, whose metadata order is
    random: with sorted keys the whole file is byte-for-byte reproducible.
    """
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name in sorted(state):
        tensor = state[name]
        if str(tensor.dtype) != "torch.float16":
            raise CheckpointError(f"{name} is {tensor.dtype}, expected torch.float16")
        size = int(tensor.numel()) * 2
        header[name] = {
            "dtype": "F16",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)


def write_atomically(state: dict[str, Any], output: Path, metadata: dict[str, str]) -> None:
    """Write ``state`` as safetensors to ``output`` via a temporary file and a rename."""
    header = serialize_header(state, metadata)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(struct.pack("<Q", len(header)))
            handle.write(header)
            for name in sorted(state):
                handle.write(memoryview(state[name].numpy()).cast("B"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(output.parent)


def verify(path: Path) -> dict[str, Any]:
    """Load ``path`` as ComfyUI's CheckpointLoaderSimple does and run each part once.

    Returns:
        What was found: detected model class, latent format, output statistics.

    Raises:
        CheckpointError: Not detected as SD15, or a part produced non-finite values.
    """
    import comfy.sd
    import comfy.supported_models
    import torch

    model_patcher, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        str(path), output_vae=True, output_clip=True
    )
    base = model_patcher.model
    found = type(base.model_config).__name__
    if type(base.model_config) is not comfy.supported_models.SD15:
        raise CheckpointError(f"ComfyUI detected {found}, not SD15")
    if clip is None or vae is None:
        raise CheckpointError("ComfyUI loaded no text encoder or no VAE from the checkpoint")
    cond = clip.encode_from_tokens(clip.tokenize("a photo of a cat"), return_pooled=False)
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn((1, 4, 8, 8), generator=generator)
    with torch.no_grad():
        sigma = torch.tensor([1.0])
        eps = base.apply_model(latent, sigma, c_crossattn=cond.to(latent.dtype))
        image = vae.decode(latent)
    for what, tensor in (("text encoder", cond), ("UNet", eps), ("VAE", image)):
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"the {what} produced non-finite values")
    return {
        "detected": found,
        "latent_format": type(base.latent_format).__name__,
        "cond_shape": list(cond.shape),
        "image_shape": list(image.shape),
        "unet_out_std": round(float(eps.float().std()), 4),
    }


def make(
    output: Path, seed: int, *, only: Sequence[str] = (), force: bool = False
) -> dict[str, Any]:
    """Write the checkpoint unless an identical one exists; return a summary."""
    started = time.monotonic()
    metadata = expected_metadata(seed, only)
    if not force and checkpoint_is_current(output, seed, only):
        header = read_header(output)
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        return {
            "path": str(output),
            "generated": False,
            "tensors": len(tensors),
            "parameters": sum(math.prod(v["shape"]) for v in tensors.values()),
            "bytes": output.stat().st_size,
        }
    state = build_state_dict(seed, only)
    summary: dict[str, Any] = {"path": str(output), "generated": True, "tensors": len(state)}
    if not only:
        found, unet_config = detect(state)
        expected = {k: v for k, v in UNET_CONFIG.items()}
        if found != "SD15" or unet_config != expected:
            raise CheckpointError(
                f"ComfyUI would detect {found} with {unet_config}, not SD15 with {expected}"
            )
        summary["detected"] = found
    write_atomically(state, output, metadata)
    summary["parameters"] = sum(int(t.numel()) for t in state.values())
    summary["bytes"] = output.stat().st_size
    summary["seconds"] = round(time.monotonic() - started, 2)
    return summary


def default_comfyui_dir() -> Path:
    """ComfyUI next to the running virtualenv (``<home>/venv`` -> ``<home>/ComfyUI``)."""
    beside_venv = Path(sys.prefix).resolve().parent / "ComfyUI"
    if beside_venv.exists():
        return beside_venv
    home = os.environ.get("WITNESS_COMFYUI_HOME") or Path(__file__).resolve().parent.parent / (
        ".comfyui"
    )
    return Path(home) / "ComfyUI"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="the .safetensors to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--comfyui", type=Path, default=None, help="ComfyUI source folder (default: beside venv)"
    )
    parser.add_argument("--force", action="store_true", help="rewrite even if up to date")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PREFIX",
        help="write only tensors whose names start with PREFIX (repeatable; for cheap "
        "reproducibility checks: each tensor depends on the seed and its name only)",
    )
    parser.add_argument(
        "--verify", action="store_true", help="load it through ComfyUI and run every part once"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[make_tiny_checkpoint] %(message)s")
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.verify and args.only:
        parser.error("--verify needs a whole checkpoint, not --only")
    output: Path = args.output.resolve()
    try:
        import_comfy((args.comfyui or default_comfyui_dir()).resolve())
        summary = make(output, args.seed, only=args.only, force=args.force)
        if args.verify:
            summary["verify"] = verify(output)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

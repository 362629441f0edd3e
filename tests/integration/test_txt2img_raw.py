"""Text-to-image on the real server with the tiny SD1.5 checkpoint, through raw routes.

No witness client layer is involved (only ``HttpClient`` and websocket-client): these tests pin
what the server does with ``examples/txt2img.json`` so that the layers built on top can rely
on it: the checkpoint is listed, the workflow runs and saves a 64x64 PNG, sampling reports
``progress`` per step with latent previews, an interrupt stops a long run, and ``POST /free``
does not break the next run.
"""

from __future__ import annotations

import copy
import json
import random
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

from scripts.comfyui_server import TINY_CHECKPOINT, ComfyServer
from tests.support.images import png_size
from witness.config.settings import Settings
from witness.transport.http import HttpClient
from witness.utils.paths import route

WORKFLOW_PATH = Path(__file__).resolve().parents[2] / "examples" / "txt2img.json"
LOADER, POSITIVE, NEGATIVE, CANVAS, SAMPLER, DECODE, SAVE = "4", "6", "7", "5", "3", "8", "9"
RUN_DEADLINE = 180.0  # generous: the 2 CPU cores are shared with other test sessions
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def txt2img(*, steps: int | None = None, prefix: str = "witness_txt2img") -> dict[str, Any]:
    """The example workflow with a fresh random seed (so nothing is served from the cache)."""
    prompt: dict[str, Any] = copy.deepcopy(json.loads(WORKFLOW_PATH.read_text()))
    prompt[SAMPLER]["inputs"]["seed"] = random.randrange(2**48)
    if steps is not None:
        prompt[SAMPLER]["inputs"]["steps"] = steps
    prompt[SAVE]["inputs"]["filename_prefix"] = prefix
    return prompt


@dataclass
class Runs:
    """Queues prompts, waits for their history, and cleans up after the test."""

    http: HttpClient
    server: ComfyServer | None
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    prefix: str = field(default_factory=lambda: f"witness_txt2img_{uuid.uuid4().hex[:10]}")
    prompt_ids: list[str] = field(default_factory=list)

    def queue(self, prompt: dict[str, Any]) -> str:
        """``POST /prompt``; returns the prompt id."""
        body = self.http.request_json(
            "POST", "/prompt", json={"prompt": prompt, "client_id": self.client_id}
        )
        assert body.get("node_errors") == {}, body
        prompt_id = str(body["prompt_id"])
        self.prompt_ids.append(prompt_id)
        return prompt_id

    def wait(self, prompt_id: str, deadline: float = RUN_DEADLINE) -> dict[str, Any]:
        """Poll ``GET /history/{prompt_id}`` until the entry has a final status."""
        end = time.monotonic() + deadline
        while True:
            history = self.http.request_json("GET", route("/history/{}", prompt_id))
            entry = history.get(prompt_id)
            if entry is not None and entry.get("status", {}).get("status_str") in {
                "success",
                "error",
            }:
                return dict(entry)
            if time.monotonic() > end:
                pytest.fail(f"prompt {prompt_id} did not finish within {deadline:.0f} s")
            time.sleep(0.1)

    def run(self, prompt: dict[str, Any]) -> dict[str, Any]:
        """Queue and wait; assert success."""
        entry = self.wait(self.queue(prompt))
        status = entry["status"]
        assert status["status_str"] == "success", status
        assert status["completed"] is True
        return entry

    def cleanup(self) -> None:
        if self.prompt_ids:
            self.http.request("POST", "/history", json={"delete": self.prompt_ids})
        if self.server is not None and self.server.workdir is not None:
            for path in self.server.output_dir.glob(f"{self.prefix}*"):
                path.unlink(missing_ok=True)


@pytest.fixture
def runs(http: HttpClient, comfy_server: ComfyServer | None) -> Iterator[Runs]:
    helper = Runs(http, comfy_server)
    try:
        yield helper
    finally:
        helper.cleanup()


def messages(entry: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [data for name, data in entry["status"]["messages"] if name == kind]


def saved_images(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return list(entry["outputs"][SAVE]["images"])


def download(http: HttpClient, image: dict[str, Any]) -> bytes:
    """``GET /view`` for one history image record."""
    response = http.request(
        "GET",
        "/view",
        params={
            "filename": image["filename"],
            "subfolder": image["subfolder"],
            "type": image["type"],
        },
    )
    return response.content


def reexecuted_loader(entry: dict[str, Any]) -> bool:
    """Whether the run loaded the checkpoint (CheckpointLoaderSimple was not cached)."""
    cached = {node for data in messages(entry, "execution_cached") for node in data["nodes"]}
    return LOADER not in cached


# -- websocket helpers ---------------------------------------------------------------------


@dataclass
class Frames:
    """What one socket saw for one prompt."""

    events: list[dict[str, Any]] = field(default_factory=list)
    previews: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["type"] == kind]


def connect(settings: Settings, client_id: str) -> websocket.WebSocket:
    """Open ``/ws?clientId=...`` and negotiate preview metadata (binary type 4)."""
    ws = websocket.create_connection(f"{settings.websocket_url}?clientId={client_id}", timeout=30)
    ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    return ws


def read_until_done(
    ws: websocket.WebSocket,
    prompt_id: str,
    frames: Frames,
    *,
    stop_after: str | None = None,
    deadline: float = RUN_DEADLINE,
) -> None:
    """Collect frames for ``prompt_id`` until ``executing{node: null}`` (or ``stop_after``)."""
    end = time.monotonic() + deadline
    while True:
        remaining = end - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no end of prompt {prompt_id} on the websocket within {deadline:.0f} s")
        ws.settimeout(remaining)
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_BINARY:
            (kind,) = struct.unpack(">I", data[:4])
            if kind == 4:  # PREVIEW_IMAGE_WITH_METADATA
                (meta_len,) = struct.unpack(">I", data[4:8])
                meta = json.loads(data[8 : 8 + meta_len])
                if meta.get("prompt_id") == prompt_id:
                    frames.previews.append((meta, bytes(data[8 + meta_len :])))
            continue
        if opcode != websocket.ABNF.OPCODE_TEXT:
            continue
        event = json.loads(data)
        payload = event.get("data") or {}
        if payload.get("prompt_id") not in (None, prompt_id):
            continue
        frames.events.append(event)
        if stop_after is not None and event["type"] == stop_after:
            return
        if (
            event["type"] == "executing"
            and payload.get("node") is None
            and payload.get("prompt_id") == prompt_id
        ):
            return


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_checkpoint_list_includes_tiny_checkpoint(http: HttpClient) -> None:
    names = http.request_json("GET", "/models/checkpoints")
    assert TINY_CHECKPOINT in names


def test_example_workflow_names_the_tiny_checkpoint() -> None:
    prompt = json.loads(WORKFLOW_PATH.read_text())
    assert prompt[LOADER]["inputs"]["ckpt_name"] == TINY_CHECKPOINT
    assert {node["class_type"] for node in prompt.values()} == {
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "EmptyLatentImage",
        "KSampler",
        "VAEDecode",
        "SaveImage",
    }


@pytest.mark.integration
def test_txt2img_runs_and_saves_a_64x64_png(runs: Runs, http: HttpClient) -> None:
    entry = runs.run(txt2img(prefix=runs.prefix))

    assert messages(entry, "execution_success")
    images = saved_images(entry)
    assert len(images) == 1
    image = images[0]
    assert image["type"] == "output"
    assert image["filename"].startswith(runs.prefix)
    assert image["filename"].endswith(".png")
    assert png_size(download(http, image)) == (64, 64)


@pytest.mark.integration
def test_titles_in_meta_are_ignored_by_the_server(runs: Runs) -> None:
    stripped = txt2img(prefix=runs.prefix)
    for node in stripped.values():
        node.pop("_meta")
    entry = runs.run(stripped)
    assert len(saved_images(entry)) == 1


@pytest.mark.integration
def test_sampling_reports_progress_per_step_and_latent_previews(
    runs: Runs, settings: Settings
) -> None:
    steps = 6
    ws = connect(settings, runs.client_id)
    try:
        frames = Frames()
        prompt_id = runs.queue(txt2img(steps=steps, prefix=runs.prefix))
        read_until_done(ws, prompt_id, frames)
    finally:
        ws.close()

    sampler_progress = [p for p in frames.of("progress") if p["node"] == SAMPLER]
    assert [p["value"] for p in sampler_progress] == list(range(1, steps + 1))
    assert {p["max"] for p in sampler_progress} == {steps}
    assert frames.of("execution_success")

    assert 1 <= len(frames.previews) <= steps
    for meta, image in frames.previews:
        assert meta["node_id"] == SAMPLER
        magic = PNG_MAGIC if meta["image_type"] == "image/png" else b"\xff\xd8\xff"
        assert meta["image_type"] in {"image/png", "image/jpeg"}
        assert image.startswith(magic)

    entry = runs.wait(prompt_id)
    assert entry["status"]["status_str"] == "success"


@pytest.mark.integration
def test_interrupting_a_long_sampling_run(runs: Runs, http: HttpClient, settings: Settings) -> None:
    steps = 200
    ws = connect(settings, runs.client_id)
    try:
        frames = Frames()
        prompt_id = runs.queue(txt2img(steps=steps, prefix=runs.prefix))
        read_until_done(ws, prompt_id, frames, stop_after="progress")
        http.request("POST", "/interrupt", json={"prompt_id": prompt_id})
        read_until_done(ws, prompt_id, frames)
    finally:
        ws.close()

    interrupted = frames.of("execution_interrupted")
    assert len(interrupted) == 1
    assert interrupted[0]["node_id"] == SAMPLER
    assert interrupted[0]["node_type"] == "KSampler"
    assert max(p["value"] for p in frames.of("progress") if p["node"] == SAMPLER) < steps
    assert not frames.of("execution_success")

    entry = runs.wait(prompt_id)
    status = entry["status"]
    assert status["status_str"] == "error"
    assert status["completed"] is False
    assert status["messages"][-1][0] == "execution_interrupted"
    assert SAVE not in entry["outputs"]


@pytest.mark.integration
def test_free_then_the_next_run_still_works(runs: Runs, http: HttpClient) -> None:
    first = runs.run(txt2img(prefix=runs.prefix))
    assert len(saved_images(first)) == 1

    http.request("POST", "/free", json={"unload_models": True})
    after_unload = runs.run(txt2img(prefix=runs.prefix))
    assert png_size(download(http, saved_images(after_unload)[0])) == (64, 64)

    # free_memory also drops the node cache, so the checkpoint is loaded from disk again. The
    # worker applies the flags when it is idle, i.e. before the next run or right after it.
    http.request("POST", "/free", json={"unload_models": True, "free_memory": True})
    third = runs.run(txt2img(prefix=runs.prefix))
    fourth = runs.run(txt2img(prefix=runs.prefix))
    assert reexecuted_loader(third) or reexecuted_loader(fourth)
    assert png_size(download(http, saved_images(fourth)[0])) == (64, 64)

"""Helpers for the group-client tests: tiny workflows, PNG bytes, waiting for history, and
one extra server (multi-user, small upload limit, a model folder with a real file)."""

from __future__ import annotations

import json
import random
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.comfyui_server import ComfyServer
from tests.support.images import png
from witness.api_clients.history_client import HistoryClient
from witness.api_clients.queue_client import QueueClient
from witness.api_clients.types import HistoryEntry
from witness.config.settings import Settings
from witness.transport.http import HttpClient

WAIT_LIMIT = 60.0


def safetensors(metadata: dict[str, str]) -> bytes:
    """A minimal .safetensors file with one F32 tensor and ``__metadata__``."""
    header = {"__metadata__": metadata, "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\x00\x00\x00\x00"


def image_prompt(*, prefix: str | None = None, color: int | None = None) -> dict[str, Any]:
    """EmptyImage -> SaveImage (or PreviewImage when ``prefix`` is None); a random colour
    keeps the server's cache from skipping the run."""
    color = random.randint(0, 0xFFFFFF) if color is None else color
    out: dict[str, Any] = (
        {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}
        if prefix
        else {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    )
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color},
            "_meta": {"title": "Blank"},
        },
        "2": out,
    }


def sleep_prompt(seconds: float) -> dict[str, Any]:
    """EmptyImage -> TestSleep(seconds) -> PreviewImage, interruptible every 10 ms."""
    prompt = image_prompt()
    prompt["3"] = {"class_type": "TestSleep", "inputs": {"value": ["1", 0], "seconds": seconds}}
    prompt["2"]["inputs"]["images"] = ["3", 0]
    return prompt


def wait_for_history(http: HttpClient, prompt_id: str, limit: float = WAIT_LIMIT) -> HistoryEntry:
    """Poll until the prompt has a history entry (fails the test after ``limit`` s)."""
    history = HistoryClient(http)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        entry = history.get(prompt_id)
        if entry is not None:
            return entry
        time.sleep(0.05)
    pytest.fail(f"no history entry for {prompt_id} within {limit} s")


def wait_until_running(http: HttpClient, prompt_id: str, limit: float = WAIT_LIMIT) -> None:
    """Poll until the prompt is the running one."""
    queue = QueueClient(http)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if queue.get().status_of(prompt_id) == "running":
            return
        time.sleep(0.02)
    pytest.fail(f"{prompt_id} did not start within {limit} s")


def wait_idle(http: HttpClient, limit: float = WAIT_LIMIT) -> None:
    """Poll until nothing is queued or running."""
    queue = QueueClient(http)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if len(queue.get()) == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"the queue did not drain within {limit} s")


@pytest.fixture
def unique() -> str:
    """A short unique token for names this test creates."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def cleanup_history(http: HttpClient, comfy_server: ComfyServer | None) -> Iterator[list[str]]:
    """Prompt ids appended here are removed afterwards: from the queue, their output files
    from the server's folders, and their history entries."""
    ids: list[str] = []
    yield ids
    if not ids:
        return
    QueueClient(http).delete(ids)
    history = HistoryClient(http)
    if comfy_server is not None:
        roots = {"output": comfy_server.output_dir, "temp": comfy_server.temp_dir}
        for prompt_id in ids:
            entry = history.get(prompt_id)
            for file in entry.output_files() if entry else ():
                root = roots.get(file.ref.type)
                if root is not None:
                    (root / file.ref.subfolder / file.ref.filename).unlink(missing_ok=True)
    history.delete(ids)


@pytest.fixture(scope="session")
def special_server(comfy_install: Path) -> Iterator[ComfyServer]:
    """A second server (~10 s, started once): ``--multi-user``, a 1 MiB upload limit, and a
    ``loras`` folder holding ``tiny.safetensors`` (with metadata) and its ``tiny.png``
    preview."""
    models = Path(tempfile.mkdtemp(prefix="witness-test-models-"))
    (models / "loras" / "sub").mkdir(parents=True)
    (models / "loras" / "tiny.safetensors").write_bytes(
        safetensors({"ss_network_dim": "4", "modelspec.title": "Tiny"})
    )
    (models / "loras" / "tiny.png").write_bytes(png(2, 2, (0, 255, 0, 255)))
    (models / "loras" / "sub" / "deep.safetensors").write_bytes(safetensors({"k": "v"}))
    config = models / "extra_model_paths.yaml"
    config.write_text(f"witness_special:\n    base_path: {models}\n    loras: loras\n")
    server = ComfyServer(
        max_upload_size_mb=1,
        extra_args=["--multi-user", "--extra-model-paths-config", str(config)],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(models, ignore_errors=True)


@pytest.fixture
def special_http(special_server: ComfyServer) -> Iterator[HttpClient]:
    """An HttpClient on :func:`special_server` (no comfy-user in its settings)."""
    client = HttpClient(Settings(api_url=special_server.url, retries=1, retry_backoff=0.05))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def http_factory() -> Iterator[Callable[..., HttpClient]]:
    """Build extra HttpClients (closed after the test)."""
    made: list[HttpClient] = []

    def make(settings: Settings) -> HttpClient:
        client = HttpClient(settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()

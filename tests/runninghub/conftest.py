"""Fixtures for RunningHub tests: a running emulator, a key, settings and a client for it.

Test modules outside this folder re-export them (``rh_emulator = rh.rh_emulator``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.runninghub_emulator import EmuOutput, RunningHubEmulator
from witness.runninghub.client import RunningHubClient
from witness.runninghub.settings import RunningHubSettings

WORKFLOW_ID = "1850925505116598274"
APP_ID = "1877265245566922753"

TEXT_TO_IMAGE: dict[str, Any] = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42,
            "steps": 20,
            "cfg": 7.5,
            "sampler_name": "euler",
            "denoise": 1.0,
            "model": ["4", 0],
            "positive": ["6", 0],
        },
        "_meta": {"title": "Sampler, $seed.seed, $steps.steps"},
    },
    "4": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "sd15.safetensors"},
        "_meta": {"title": "Load Checkpoint"},
    },
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "a cat", "clip": ["4", 1]},
        "_meta": {"title": "Prompt, $prompt.text!"},
    },
    "10": {
        "class_type": "LoadImage",
        "inputs": {"image": "example.png"},
        "_meta": {"title": "Reference, $~image.image"},
    },
    "9": {
        "class_type": "SaveImage",
        "inputs": {"filename_prefix": "ComfyUI", "images": ["3", 0]},
        "_meta": {"title": "$output.result"},
    },
}


@pytest.fixture
def rh_emulator() -> Iterator[RunningHubEmulator]:
    """A fresh emulator with one text-to-image workflow and one AI app registered."""
    emulator = RunningHubEmulator().start()
    emulator.add_workflow(WORKFLOW_ID, TEXT_TO_IMAGE)
    emulator.add_webapp(APP_ID, TEXT_TO_IMAGE, outputs=[EmuOutput("png", "9")])
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def rh_key(rh_emulator: RunningHubEmulator) -> str:
    """A valid consumer key on the emulator."""
    return rh_emulator.add_key("0123456789abcdef0123456789abcdef")


@pytest.fixture
def rh_settings(rh_emulator: RunningHubEmulator, rh_key: str) -> RunningHubSettings:
    """Settings for the emulator: short timeouts, fast polling and backoff."""
    return RunningHubSettings(
        api_key=rh_key,
        base_url=rh_emulator.url,
        timeout=10.0,
        request_timeout=2.0,
        connect_timeout=1.0,
        retry_count=3,
        retry_backoff=0.01,
        poll_interval=0.02,
    )


@pytest.fixture
def rh_client(rh_settings: RunningHubSettings) -> Iterator[RunningHubClient]:
    """A client on the emulator, closed after the test."""
    client = RunningHubClient(rh_settings)
    try:
        yield client
    finally:
        client.close()

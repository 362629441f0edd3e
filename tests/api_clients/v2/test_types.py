"""Parsing of the v2 shapes, and the asset references the backend puts into prompts."""

from __future__ import annotations

import pytest

from witness.api_clients.v2.types import Asset, Job, asset_reference
from witness.backends.v2_media import ASSET_PREFIX, asset_refs
from witness.errors import ResponseDecodeError


def test_job_from_json_is_lenient_with_nulls() -> None:
    job = Job.from_json(
        {
            "id": "j1",
            "status": "failed",
            "queue_position": None,
            "progress": {"value": 2, "nodes_done": 1, "nodes_total": 3, "step": None},
            "outputs": [{"node_id": "9", "name": "a.png", "type": "image", "hash": None}],
            "error": {"code": "node_execution_error", "message": "boom", "node_id": "4"},
            "urls": {"self": "s", "events": "e", "cancel": "c"},
            "future_field": 1,
        }
    )
    assert job.terminal
    assert job.progress is not None
    assert job.progress.value == 1.0  # clamped
    assert job.outputs[0].hash is None
    assert job.error is not None
    assert job.error.node_id == "4"
    assert job.raw["future_field"] == 1
    with pytest.raises(ResponseDecodeError):
        Job.from_json({"status": "queued"})
    with pytest.raises(ResponseDecodeError):
        Job.from_json([1])


def test_asset_reference_and_prompt_rewrite() -> None:
    asset = Asset.from_json({"id": "a1", "hash": "blake3:ab", "file_path": "x.png"})
    assert asset.reference() == {
        "__type": "core/ASSET",
        "info": {"id": "a1", "hash": "blake3:ab", "file_path": "x.png"},
    }
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": ASSET_PREFIX + "a1", "n": 2}},
        "2": {"class_type": "Other", "inputs": {"text": "core/ASSET is just text here"}},
    }
    rewritten = asset_refs(prompt)
    assert rewritten["1"]["inputs"] == {"image": asset_reference("a1"), "n": 2}
    assert rewritten["2"] == prompt["2"]
    assert prompt["1"]["inputs"]["image"] == ASSET_PREFIX + "a1"  # the input is not modified

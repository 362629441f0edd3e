"""The Ray batch against a real local Ray runtime and two real servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.comfyui_server import ComfyServer
from tests.support.fleet import ensure_running, history_ids, tiny_prompt

ray = pytest.importorskip("ray")

from witness.batch import run_batch  # noqa: E402
from witness.batch.ray_runner import run_batch_ray  # noqa: E402

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    try:
        yield
    finally:
        ray.shutdown()


def _workflow() -> dict[str, Any]:
    prompt = tiny_prompt(save=True)
    prompt["2"]["_meta"] = {"title": "$output.out, $prefix.filename_prefix"}
    return prompt


def _manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _shape(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry["index"], entry["status"], len(entry["files"]), sorted(entry))


def test_ray_batch_matches_the_local_batch(
    ray_runtime: None, fleet_servers: list[ComfyServer], tmp_path: Path
) -> None:
    pair = [fleet_servers[0], fleet_servers[2]]
    for server in pair:
        ensure_running(server)
    urls = [s.url for s in pair]
    before = {u: set(history_ids(u)) for u in urls}
    jobs = [{"color": i, "prefix": f"ray-{i}"} for i in range(12)]
    jobs.append({"color": "not a number", "prefix": "ray-bad"})
    summary = run_batch_ray(
        _workflow(), jobs, servers=urls, out_dir=tmp_path / "ray", concurrency=4
    )
    assert (summary.total, summary.completed, summary.failed) == (13, 12, 1)
    local = run_batch(_workflow(), jobs, out_dir=tmp_path / "local", target=urls)
    assert (local.completed, local.failed) == (12, 1)
    ray_manifest, local_manifest = _manifest(tmp_path / "ray"), _manifest(tmp_path / "local")
    assert [_shape(e) for e in ray_manifest] == [_shape(e) for e in local_manifest]
    for entry in ray_manifest[:12]:
        assert (tmp_path / "ray" / entry["files"][0]).read_bytes()[:4] == b"\x89PNG"
    bad = ray_manifest[12]
    assert bad["error"].startswith("WorkflowValidationError")  # the typed error crossed Ray
    assert bad["error"] == local_manifest[12]["error"]
    ran = [pid for u in urls for pid in history_ids(u) if pid not in before[u]]
    assert len(ran) == 24
    assert {e["server"] for e in ray_manifest[:12]} == set(urls)  # both actors got work
    again = run_batch_ray(_workflow(), jobs, servers=urls, out_dir=tmp_path / "ray")
    assert again.skipped == 13

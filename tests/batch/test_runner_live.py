"""Durable batches against real servers: outputs, manifest, resume, and SIGKILL mid-batch."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scripts.comfyui_server import ComfyServer
from tests.support.fleet import ensure_running, history_ids, tiny_prompt
from witness.batch import BatchEvent, run_batch
from witness.batch.journal import Journal
from witness.errors import BatchMismatchError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _workflow() -> dict[str, Any]:
    prompt = tiny_prompt(save=True)
    prompt["2"]["_meta"] = {"title": "$output.out, $prefix.filename_prefix"}
    return prompt


def _pair(fleet_servers: list[ComfyServer]) -> list[ComfyServer]:
    pair = [fleet_servers[1], fleet_servers[2]]
    for server in pair:
        ensure_running(server)
    return pair


def _manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_batch_saves_outputs_and_resumes_without_rerunning(
    fleet_servers: list[ComfyServer], tmp_path: Path
) -> None:
    urls = [s.url for s in _pair(fleet_servers)]
    jobs = [{"color": i, "prefix": f"basic-{i}"} for i in range(6)]
    events: list[BatchEvent] = []
    summary = run_batch(
        _workflow(), jobs, out_dir=tmp_path, target=urls, concurrency=3, on_event=events.append
    )
    assert (summary.total, summary.completed, summary.failed, summary.skipped) == (6, 6, 0, 0)
    manifest = _manifest(tmp_path)
    assert [m["index"] for m in manifest] == list(range(6))
    assert {m["status"] for m in manifest} == {"completed"}
    assert {m["server"] for m in manifest} <= set(urls)
    for entry in manifest:
        assert entry["params"] == jobs[entry["index"]]
        assert len(entry["files"]) == 1
        assert (tmp_path / entry["files"][0]).is_file()
        assert entry["files"][0].startswith(f"job-{entry['index']:05d}/")
    assert sorted(e.kind for e in events).count("done") == 6
    assert json.loads((tmp_path / "summary.json").read_text())["completed"] == 6
    again = run_batch(_workflow(), jobs, out_dir=tmp_path, target=urls)
    assert (again.completed, again.skipped, again.resumed) == (6, 6, 0)
    with pytest.raises(BatchMismatchError) as caught:
        run_batch(_workflow(), [*jobs, {"color": 9}], out_dir=tmp_path, target=urls)
    assert caught.value.what == "jobs"
    changed = _workflow()
    changed["1"]["inputs"]["width"] = 16
    with pytest.raises(BatchMismatchError, match="another workflow"):
        run_batch(changed, jobs, out_dir=tmp_path, target=urls)


def test_a_failing_job_is_recorded_and_the_rest_run(
    fleet_servers: list[ComfyServer], tmp_path: Path
) -> None:
    urls = [s.url for s in _pair(fleet_servers)]
    jobs = [{"color": 1, "prefix": "ok"}, {"color": "red", "prefix": "bad"}]
    summary = run_batch(_workflow(), jobs, out_dir=tmp_path, target=urls)
    assert (summary.completed, summary.failed) == (1, 1)
    bad = _manifest(tmp_path)[1]
    assert bad["status"] == "error"
    assert "color" in bad["error"]


def _run_child(spec: dict[str, Any], kill_after: int | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "batch" / "batch_child.py"), json.dumps(spec)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    done = 0
    for line in child.stdout:
        if line.startswith("done "):
            done += 1
            if kill_after is not None and done >= kill_after:
                os.kill(child.pid, signal.SIGKILL)
                break
    child.wait(timeout=120)
    return done


@pytest.mark.parametrize("point", [0, 1, 2, 3, 4])
def test_sigkill_mid_batch_then_rerun_runs_every_job_exactly_once(
    fleet_servers: list[ComfyServer], tmp_path: Path, point: int
) -> None:
    pair = _pair(fleet_servers)
    rng = random.Random(1500 + point)
    kill_after = rng.randint(5 + 28 * point, 20 + 28 * point)  # spread over the batch
    tag = f"crash{point}-{time.time_ns()}"
    spec = {
        "workflow": _workflow(),
        "jobs": [{"color": i, "prefix": f"{tag}-{i:03d}"} for i in range(200)],
        "out_dir": str(tmp_path),
        "servers": [s.url for s in pair],
        "concurrency": 6,
    }
    before = {s.url: set(history_ids(s.url)) for s in pair}
    _run_child(spec, kill_after)
    with Journal(tmp_path / "journal.sqlite") as journal:
        unfinished = [r for r in journal.records() if r.state != "done"]
    assert unfinished, "the kill came after the end: no resume tested"
    _run_child(spec, None)
    manifest = _manifest(tmp_path)
    assert sorted(m["index"] for m in manifest) == list(range(200))
    assert {m["status"] for m in manifest} == {"completed"}
    ids = [m["prompt_id"] for m in manifest]
    assert len(set(ids)) == 200
    ran: list[str] = []
    for server in pair:
        ran += [pid for pid in history_ids(server.url) if pid not in before[server.url]]
    assert sorted(ran) == sorted(ids)  # each on exactly one server
    files = [p for s in pair for p in s.output_dir.glob(f"{tag}-*.png")]
    assert len(files) == 200  # SaveImage ran 200 times, not more

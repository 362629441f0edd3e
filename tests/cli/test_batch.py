"""``witness batch`` as a subprocess on the real server (needs ``witness.batch``)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.cli.conftest import EXAMPLES, WitnessCli


def _batch_importable() -> bool:
    try:
        importlib.import_module("witness.batch")
    except ImportError:
        return False
    return True


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not _batch_importable(), reason="witness.batch is not importable here"),
]


def test_batch_runs_every_job_then_resumes(witness_cli: WitnessCli, tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text("width,height\n8,9\n10,11\n12,13\n", "utf-8")
    run = witness_cli("--json", "batch", str(EXAMPLES / "invert.json"), "jobs.csv",
                      "--out", "out", "--concurrency", "2", timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    records = run.records()
    summary = records[-1]
    assert summary["event"] == "summary"
    assert (summary["total"], summary["completed"], summary["failed"]) == (3, 3, 0)
    done = [r for r in records if r["event"] == "done"]
    assert sorted(r["index"] for r in done) == [0, 1, 2]
    assert all(r["status"] == "completed" for r in done)
    assert "3 jobs: 3 completed" in run.stderr
    assert any((tmp_path / "out").rglob("*.png"))

    again = witness_cli("--json", "batch", str(EXAMPLES / "invert.json"), "jobs.csv",
                        "--out", "out", timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.records()[-1]["skipped"] == 3


def test_batch_usage_errors(witness_cli: WitnessCli, tmp_path: Path) -> None:
    (tmp_path / "jobs.jsonl").write_text('{"width": 8}\n', "utf-8")
    assert witness_cli("batch", str(EXAMPLES / "invert.json"), "jobs.jsonl").returncode == 2
    zero = witness_cli("batch", str(EXAMPLES / "invert.json"), "jobs.jsonl", "--out", "o",
                       "--concurrency", "0")  # fmt: skip
    assert zero.returncode == 2

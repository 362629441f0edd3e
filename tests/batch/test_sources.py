"""Job sources: iterables, JSONL, CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from witness.batch.sources import load_jobs
from witness.errors import InvalidArgumentError


def test_iterable_jsonl_and_csv(tmp_path: Path) -> None:
    assert load_jobs(iter([{"a": 1}, {"b": "x"}])) == [{"a": 1}, {"b": "x"}]
    jsonl = tmp_path / "jobs.jsonl"
    jsonl.write_text('{"seed": 1, "text": "a cat"}\n\n{"seed": 2}\n')
    assert load_jobs(jsonl) == [{"seed": 1, "text": "a cat"}, {"seed": 2}]
    csv_file = tmp_path / "jobs.csv"
    csv_file.write_text("seed,text,scale,flag\n1,a cat,1.5,true\n007,,2,false\n")
    assert load_jobs(str(csv_file)) == [
        {"seed": 1, "text": "a cat", "scale": 1.5, "flag": True},
        {"seed": "007", "scale": 2, "flag": False},
    ]


def test_bad_sources_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "jobs.jsonl"
    bad.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InvalidArgumentError, match="line 2"):
        load_jobs(bad)
    with pytest.raises(InvalidArgumentError, match=r"\.jsonl or \.csv"):
        load_jobs(tmp_path / "jobs.txt")
    with pytest.raises(InvalidArgumentError, match="item 1"):
        load_jobs([{"a": 1}, 5])  # type: ignore[list-item]

"""Unit tests of output formatting (witness/cli/output.py); no server."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from witness.cli.output import Output, format_table, to_jsonable


class Color(Enum):
    RED = "red"


@dataclass
class Thing:
    name: str
    where: Path
    tags: tuple[str, ...]


def make(json_mode: bool = False, quiet: bool = False, secrets: tuple[str, ...] = ()) -> Output:
    return Output(
        json_mode=json_mode, quiet=quiet, stdout=io.StringIO(), stderr=io.StringIO(),
        secrets=secrets,
    )  # fmt: skip


def streams(out: Output) -> tuple[str, str]:
    assert isinstance(out.stdout, io.StringIO)
    assert isinstance(out.stderr, io.StringIO)
    return out.stdout.getvalue(), out.stderr.getvalue()


def test_to_jsonable() -> None:
    value = {"t": Thing("a", Path("x/y"), ("p", "q")), "c": Color.RED, 1: {2, 3}, "b": b"xyz"}
    data = to_jsonable(value)
    assert data["t"] == {"name": "a", "where": "x/y", "tags": ["p", "q"]}
    assert data["c"] == "red"
    assert sorted(data["1"]) == [2, 3]
    assert data["b"] == "<3 bytes>"
    json.dumps(data)


def test_json_mode_prints_one_object_per_line_and_messages_on_stderr() -> None:
    out = make(json_mode=True)
    out.record({"a": 1}, "human text")
    out.records([{"n": 1}, {"n": 2}], [("n", "N")])
    out.record({"b": Path("p")}, None)
    out.info("a message")
    stdout, stderr = streams(out)
    assert [json.loads(line) for line in stdout.splitlines()] == [
        {"a": 1}, {"n": 1}, {"n": 2}, {"b": "p"},
    ]  # fmt: skip
    assert stderr == "a message\n"


def test_human_mode() -> None:
    out = make()
    out.record({"a": 1}, "human text")
    out.record({"a": 2}, None)  # JSON-only record
    out.records([], [("n", "N")], empty="nothing here")
    stdout, stderr = streams(out)
    assert stdout == "human text\n"
    assert stderr == "nothing here\n"


def test_quiet_hides_info_but_not_errors() -> None:
    out = make(quiet=True)
    out.info("chatty")
    out.warn("careful")
    out.error("broken")
    assert streams(out)[1] == "witness: warning: careful\nwitness: error: broken\n"


def test_secrets_are_never_printed() -> None:
    out = make(json_mode=True, secrets=("s3cret-key",))
    out.record({"url": "http://x/?token=s3cret-key"})
    out.error("auth failed for s3cret-key")
    stdout, stderr = streams(out)
    assert "s3cret-key" not in stdout + stderr
    assert "***" in stdout
    assert "***" in stderr


def test_table_fits_the_width() -> None:
    rows = [{"name": "KSampler", "inputs": ["x" * 30] * 5}, {"name": "A", "inputs": None}]
    text = format_table(rows, [("name", "NAME"), ("inputs", "INPUTS")], width=60)
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "INPUTS"]
    assert all(len(line) <= 60 for line in lines)
    assert lines[1].endswith("…")
    assert lines[2].rstrip() == "A"


def test_table_cells() -> None:
    text = format_table([{"a": True, "b": 0.5, "c": "x\ny"}], [("a", "A"), ("b", "B"), ("c", "C")])
    assert text.splitlines()[1].split() == ["yes", "0.5", "x", "y"]

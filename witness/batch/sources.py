"""Where a batch's param sets come from: an iterable of mappings, a JSONL file or a CSV file.

* **Iterable**: each item a mapping of DSL param name → value, used as given.
* **JSONL** (``.jsonl`` / ``.ndjson``): one JSON object per line; blank lines skipped.
* **CSV** (``.csv``): a header row of param names, one job per row. Cells that read as a
  JSON number, ``true``/``false`` or ``null`` become that value, others stay text; an empty
  cell leaves the param out (the workflow's own value is kept).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from witness.errors import InvalidArgumentError

__all__ = ["load_jobs"]

_JSONL = {".jsonl", ".ndjson"}


def load_jobs(jobs: Iterable[Mapping[str, Any]] | str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every param set of a batch, in order.

    Raises:
        InvalidArgumentError: A file that is missing, of another kind, or holds a line / row
            that is not a param set (the line number is named).
    """
    if isinstance(jobs, str | os.PathLike):
        return _from_file(Path(jobs))
    if isinstance(jobs, Mapping | bytes):
        raise InvalidArgumentError("jobs", "takes an iterable of param mappings or a file path")
    loaded: list[dict[str, Any]] = []
    for number, item in enumerate(jobs):
        if not isinstance(item, Mapping):
            raise InvalidArgumentError(
                "jobs", f"item {number} is a {type(item).__name__}, not a mapping of params"
            )
        loaded.append(dict(item))
    return loaded


def _from_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix not in _JSONL and suffix != ".csv":
        raise InvalidArgumentError("jobs", f"{path}: expected a .jsonl or .csv file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidArgumentError("jobs", f"cannot read {path}: {exc}") from exc
    if suffix == ".csv":
        return _from_csv(path, text)
    loaded: list[dict[str, Any]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InvalidArgumentError("jobs", f"{path} line {line_no}: not JSON ({exc})") from exc
        if not isinstance(item, dict):
            raise InvalidArgumentError("jobs", f"{path} line {line_no}: not a JSON object")
        loaded.append(item)
    return loaded


def _from_csv(path: Path, text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise InvalidArgumentError("jobs", f"{path}: no header row")
    loaded: list[dict[str, Any]] = []
    for row in reader:
        if None in row:
            raise InvalidArgumentError(
                "jobs", f"{path} line {reader.line_num}: more cells than header names"
            )
        loaded.append({k: _cell(v) for k, v in row.items() if v not in (None, "")})
    return loaded


def _cell(text: str) -> Any:
    stripped = text.strip()
    if stripped in {"true", "false", "null"} or _numeric(stripped):
        return json.loads(stripped)
    return text


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.lower() not in {"nan", "inf", "-inf", "infinity", "-infinity"} and not (
        text.startswith("0") and len(text) > 1 and text[1].isdigit()
    )

"""The batch's manifest (JSONL, one line per job) and summary (JSON), written from the journal.

Both are rewritten atomically (a temporary file, then rename) from the journal, so after any
number of crashes and resumes the manifest lists every job exactly once, in job order.
Manifest line: ``{"index", "params", "prompt_id", "server", "status", "files", "duration",
"error"}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from witness.batch.journal import JobRecord

__all__ = ["manifest_line", "write_json_atomic", "write_manifest"]


def manifest_line(record: JobRecord) -> dict[str, Any]:
    """One job's manifest entry."""
    return {
        "index": record.index,
        "params": record.params,
        "prompt_id": record.prompt_id,
        "server": record.server,
        "status": record.status if record.state == "done" else "pending",
        "files": list(record.files),
        "duration": record.duration,
        "error": record.error,
    }


def write_manifest(path: Path, records: Iterable[JobRecord]) -> None:
    """Write the manifest (every record, one JSON line each) atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(manifest_line(record), default=str) + "\n")
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write a JSON document atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)

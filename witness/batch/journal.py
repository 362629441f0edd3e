"""The batch journal: one SQLite file (standard library) next to the outputs.

Every job's state is written, and synced to disk, at each transition:

``new`` → ``submitting`` (its prompt id is recorded **before** ``POST /prompt``) →
``submitted`` (the server accepted it; which server) → ``done`` (status, files, duration,
error).

After a crash (even SIGKILL) the journal says, per job: finished (skip it), submitted to a
server (re-attach by prompt id), or submitting (the answer never came: ask the servers'
queues and histories for the prompt id before submitting it again, with the same id). The
workflow's and the job list's hashes are stored; a resume with other ones is refused.

The file uses WAL journaling with ``synchronous=FULL``: a committed transition survives a
kill of the process and a power loss.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from witness.errors import BatchMismatchError

__all__ = ["JobRecord", "JobState", "Journal"]

JobState = Literal["new", "submitting", "submitted", "done"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    idx INTEGER PRIMARY KEY,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    prompt_id TEXT,
    server TEXT,
    status TEXT,
    files TEXT,
    error TEXT,
    duration REAL,
    runs INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class JobRecord:
    """One job as the journal has it.

    Attributes:
        index: Position in the job list (from 0).
        params: Its params.
        state: ``new``, ``submitting``, ``submitted`` or ``done``.
        prompt_id: The prompt id chosen for it (set from ``submitting`` on).
        server: The server that accepted it (from ``submitted`` on).
        status: For ``done``: ``completed``, ``failed``, ``interrupted``, ``timeout``,
            ``lost`` or ``error`` (it could not be submitted).
        files: For ``done``: the saved files, relative to the output directory.
        error: For ``done`` jobs that did not complete: why.
        duration: Seconds from submit to result.
        runs: Process runs that worked on it (more than 1: resumed).
    """

    index: int
    params: dict[str, Any]
    state: JobState
    prompt_id: str | None
    server: str | None
    status: str | None
    files: tuple[str, ...]
    error: str | None
    duration: float | None
    runs: int


class Journal:
    """The SQLite journal of one batch (thread-safe; one connection behind a lock).

    Args:
        path: The file (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file (checkpointing the WAL)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- setup -----------------------------------------------------------------------------

    def bind(self, workflow_hash: str, jobs: Sequence[dict[str, Any]], jobs_hash: str) -> bool:
        """Tie the journal to one workflow and job list; on a fresh journal record the jobs.

        Returns:
            ``True`` when the journal already held this batch (a resume).

        Raises:
            BatchMismatchError: It holds another workflow or job list.
        """
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if meta:
                for what, mine in (("workflow", workflow_hash), ("jobs", jobs_hash)):
                    if meta.get(what) != mine:
                        raise BatchMismatchError(
                            f"{self.path} belongs to a batch with another {what} list"
                            if what == "jobs"
                            else f"{self.path} belongs to a batch of another workflow",
                            journal_path=str(self.path),
                            what=what,
                        )
                return True
            now = time.time()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("workflow", workflow_hash), ("jobs", jobs_hash), ("total", str(len(jobs)))],
                )
                self._db.executemany(
                    "INSERT INTO jobs (idx, params, state, updated) VALUES (?, ?, 'new', ?)",
                    [(i, _dump(p), now) for i, p in enumerate(jobs)],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return False

    def new_run(self) -> None:
        """Count one more process run on every unfinished job."""
        self._write("UPDATE jobs SET runs = runs + 1 WHERE state != 'done'", ())

    # -- transitions -------------------------------------------------------------------------

    def submitting(self, index: int, prompt_id: str) -> None:
        """The prompt id is chosen; written (and synced) before the submit is sent."""
        self._write(
            "UPDATE jobs SET state='submitting', prompt_id=?, updated=? WHERE idx=?",
            (prompt_id, time.time(), index),
        )

    def submitted(self, index: int, server: str) -> None:
        """A server accepted the prompt."""
        self._write(
            "UPDATE jobs SET state='submitted', server=?, updated=? WHERE idx=?",
            (server, time.time(), index),
        )

    def done(
        self,
        index: int,
        *,
        status: str,
        server: str | None,
        files: Sequence[str] = (),
        error: str | None = None,
        duration: float | None = None,
    ) -> None:
        """The job is finished, for good."""
        self._write(
            "UPDATE jobs SET state='done', status=?, server=COALESCE(?, server), files=?, "
            "error=?, duration=?, updated=? WHERE idx=?",
            (status, server, _dump(list(files)), error, duration, time.time(), index),
        )

    # -- reading ---------------------------------------------------------------------------

    def records(self) -> list[JobRecord]:
        """Every job, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, params, state, prompt_id, server, status, files, error, duration, "
                "runs FROM jobs ORDER BY idx"
            ).fetchall()
        return [
            JobRecord(
                index=row[0],
                params=json.loads(row[1]),
                state=row[2],
                prompt_id=row[3],
                server=row[4],
                status=row[5],
                files=tuple(json.loads(row[6])) if row[6] else (),
                error=row[7],
                duration=row[8],
                runs=row[9],
            )
            for row in rows
        ]

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)  # autocommit: one synced transaction


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

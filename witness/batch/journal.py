"""The batch journal: one SQLite file (standard library) next to the outputs.

Every job's state is written, and synced to disk, at each transition:

``new`` → ``submitting`` (about to ``POST /prompt``) → ``submitted`` (the server accepted
it; which server) → ``done`` (status, files, duration, error). Every job's prompt id is chosen
and written in the very first transaction (:meth:`Journal.bind`), so it is on disk **before**
any submit is sent.

After a crash (even SIGKILL) the journal says, per job: finished (skip it), submitted to a
server (re-attach by prompt id), or submitting (the answer never came: ask the servers'
queues and histories for the prompt id before submitting it again, with the same id). The
workflow's and the job list's hashes are stored; a resume with other ones is refused.

The file uses WAL journaling with ``synchronous=FULL``: a committed transition survives a
kill of the process and a power loss. One writer thread commits transitions in groups (one
fsync for all transitions queued meanwhile); workers do not wait for it, which is safe
because a resumed run trusts no unfinished state: every job not ``done`` is first looked up
by its prompt id in the servers' queues and histories (a lost ``submitted`` or ``done`` is
found there; a job found nowhere is submitted, with the same id). Reading
(:meth:`Journal.records`) and closing flush the queue first.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from witness.errors import BatchMismatchError

__all__ = ["JobRecord", "JobState", "Journal"]

JobState = Literal["new", "submitting", "submitted", "done"]

#: Seconds the writer lets transitions gather before one commit (nobody waits on them).
GROUP_WINDOW = 0.05

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
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._failure: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, name="journal", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Flush, stop the writer and close the file (checkpointing the WAL)."""
        if not self._writer.is_alive():
            return
        self.flush()
        self._queue.put(None)
        self._writer.join()
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
                    "INSERT INTO jobs (idx, params, state, prompt_id, updated) "
                    "VALUES (?, ?, 'new', ?, ?)",
                    [(i, _dump(p), str(uuid.uuid4()), now) for i, p in enumerate(jobs)],
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
        """The submit is about to be sent (its prompt id has been on disk since :meth:`bind`)."""
        self._write(
            "UPDATE jobs SET state='submitting', prompt_id=?, updated=? WHERE idx=?",
            (prompt_id, time.time(), index),
            wait=False,
        )

    def submitted(self, index: int, server: str) -> None:
        """A server accepted the prompt."""
        self._write(
            "UPDATE jobs SET state='submitted', server=?, updated=? WHERE idx=?",
            (server, time.time(), index),
            wait=False,
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
            wait=False,
        )

    # -- reading ---------------------------------------------------------------------------

    def records(self) -> list[JobRecord]:
        """Every job, in order (after a flush)."""
        self.flush()
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

    def flush(self) -> None:
        """Wait until every queued transition is committed."""
        self._write("SELECT 1", (), wait=True)

    def _write(self, sql: str, args: tuple[Any, ...], *, wait: bool = True) -> None:
        if self._failure is not None:
            raise self._failure
        item = _Write(sql, args, threading.Event() if wait else None)
        self._queue.put(item)
        if item.committed is not None:
            item.committed.wait()
            if self._failure is not None:
                raise self._failure

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            # Nobody waits on a transition: let more join this fsync for up to GROUP_WINDOW,
            # but commit at once when a waiter (flush, new_run) or the close arrives.
            until = time.monotonic() + (GROUP_WINDOW if first.committed is None else 0.0)
            while group[-1].committed is None:
                try:
                    item = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            try:
                with self._lock:
                    self._db.execute("BEGIN IMMEDIATE")
                    for write in group:
                        self._db.execute(write.sql, write.args)
                    self._db.execute("COMMIT")  # one fsync for the group
            except BaseException as exc:  # surfaced to the next caller
                self._failure = exc
                with contextlib.suppress(sqlite3.Error), self._lock:
                    self._db.execute("ROLLBACK")
            for write in group:
                if write.committed is not None:
                    write.committed.set()


@dataclass
class _Write:
    sql: str
    args: tuple[Any, ...]
    committed: threading.Event | None


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

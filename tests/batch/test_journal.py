"""The batch journal: transitions, group commits, flush and reopen (no server)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from witness.batch.journal import Journal


def test_transitions_are_committed_by_flush_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        assert journal.bind("w", [{"a": 1}, {"a": 2}], "j") is False
        journal.new_run()
        first = journal.records()
        assert [r.state for r in first] == ["new", "new"]
        assert all(r.prompt_id and r.runs == 1 for r in first)  # ids on disk before any submit
        journal.submitting(0, first[0].prompt_id or "")
        journal.submitted(0, "http://a")
        journal.done(0, status="completed", server="http://a", files=["job-00000/x.png"])
        journal.submitting(1, first[1].prompt_id or "")
        journal.flush()  # a waiter behind queued transitions: all of them are committed
        with contextlib.closing(sqlite3.connect(path)) as other:  # another connection
            raw = other.execute("SELECT state FROM jobs ORDER BY idx").fetchall()
        assert raw == [("done",), ("submitting",)]
    with Journal(path) as again:
        assert again.bind("w", [{"a": 1}, {"a": 2}], "j") is True
        records = again.records()
    assert records[0].status == "completed"
    assert records[0].files == ("job-00000/x.png",)
    assert records[1].state == "submitting"
    assert records[1].prompt_id == first[1].prompt_id


def test_many_threads_writing_lose_nothing(tmp_path: Path) -> None:
    jobs = [{"i": i} for i in range(200)]
    with Journal(tmp_path / "journal.sqlite") as journal:
        journal.bind("w", jobs, "j")

        def work(start: int) -> None:
            for index in range(start, 200, 4):
                journal.submitting(index, f"p{index}")
                journal.submitted(index, "s")
                journal.done(index, status="completed", server="s")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        records = journal.records()
    assert [r.prompt_id for r in records] == [f"p{i}" for i in range(200)]
    assert {r.state for r in records} == {"done"}

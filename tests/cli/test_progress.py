"""Unit tests of run progress (witness/cli/progress.py); no server."""

from __future__ import annotations

import io
from typing import Any

import pytest

from witness.cli import progress as progress_module
from witness.cli.progress import BatchProgress, RunProgress, node_label
from witness.core.tracking import ProgressUpdate

PROMPT: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "_meta": {"title": "Canvas, $width"}},
    "2": {"class_type": "TestSleep", "_meta": {"title": "$seconds"}},
    "3": {"class_type": "SaveImage"},
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def update(node: str | None, value: float, maximum: float, overall: float, done: int) -> Any:
    return ProgressUpdate("p", node, value, maximum, overall, done, 3)


def feed(progress: RunProgress) -> None:
    progress(update("1", 0, 1, 0.0, 0))
    progress(update("2", 0.5, 2, 0.5, 1))
    progress(update("2", 2, 2, 0.66, 1))
    progress(update(None, 0, 1, 1.0, 3))
    progress.close()
    progress(update("3", 0, 1, 1.0, 3))  # after close: ignored


def test_node_labels() -> None:
    assert node_label(PROMPT, "1") == "Canvas (#1)"  # DSL markers are not shown
    assert node_label(PROMPT, "2") == "TestSleep (#2)"
    assert node_label(PROMPT, "3") == "SaveImage (#3)"
    assert node_label(PROMPT, "9") == "node 9"
    assert node_label(PROMPT, None) == "starting"


def test_plain_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "PLAIN_EVERY", 0.0)
    stream = io.StringIO()
    progress = RunProgress(stream, PROMPT)
    assert not progress.bars
    feed(progress)
    assert stream.getvalue().splitlines() == [
        "[  0%] nodes 0/3 Canvas (#1)",
        "[ 50%] nodes 1/3 TestSleep (#2) step 0.5/2",
        "[ 66%] nodes 1/3 TestSleep (#2) step 2/2",
        "[100%] nodes 3/3 done",
    ]


def test_bars_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "REDRAW_EVERY", 0.0)
    stream = Terminal()
    progress = RunProgress(stream, PROMPT)
    assert progress.bars
    feed(progress)
    text = stream.getvalue()
    assert "\r" in text
    assert "overall (nodes 1/3)" in text
    assert "TestSleep (#2)" in text
    assert "step 0.5/2" in text


def test_plain_lines_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "have_tqdm", lambda: False)
    assert not RunProgress(Terminal(), PROMPT).bars
    assert not RunProgress(Terminal(), PROMPT, bars=True).bars


def test_batch_progress() -> None:
    stream = io.StringIO()
    batch = BatchProgress(stream)
    batch.update(1, 2, "job 0: completed")
    batch.close()
    assert stream.getvalue() == "[1/2] job 0: completed\n"
    terminal = Terminal()
    bar = BatchProgress(terminal)
    bar.update(1, 2, "job 0: completed")
    bar.close()
    assert "1/2" in terminal.getvalue()

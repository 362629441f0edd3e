"""Unit tests of ``witness run``'s pieces that need no server (witness/cli/run.py)."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal

import pytest

from witness.cli.context import Context
from witness.cli.output import Output
from witness.cli.run import held_interrupt, report_result
from witness.core.results import ExecuteResult


def context(json_mode: bool = True) -> tuple[Context, io.StringIO, io.StringIO]:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(json_mode=json_mode, stdout=stdout, stderr=stderr)
    return Context(argparse.Namespace(url=None, api_key=None), out), stdout, stderr


def test_ctrl_c_during_submit_is_held_and_a_second_one_aborts() -> None:
    ctx, _, stderr = context()
    with held_interrupt(ctx.out) as pending:
        os.kill(os.getpid(), signal.SIGINT)
        assert pending.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert "cancelled once queued" in stderr.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        ("completed", 0, "completed"),
        ("failed", 1, "failed"),
        ("interrupted", 1, "interrupted"),
        ("timeout", 124, "cancelled on the server"),
    ],
)
def test_report_result_exit_status(status: str, code: int, words: str) -> None:
    ctx, stdout, stderr = context()
    result = ExecuteResult(status=status, prompt_id="p1", duration=1.5, msg="why")
    assert report_result(ctx, result, None) == code
    record = json.loads(stdout.getvalue())
    assert record["status"] == status
    assert record["prompt_id"] == "p1"
    assert record["files"] == []
    assert words in stderr.getvalue()


def test_report_result_prints_texts_in_human_mode() -> None:
    ctx, stdout, _ = context(json_mode=False)
    result = ExecuteResult(status="completed", prompt_id="p", texts_by_var={"caption": ["hi"]})
    assert report_result(ctx, result, None) == 0
    assert stdout.getvalue() == "caption: hi\n"

"""Unit tests of the parser, help and exit codes (witness/cli/app.py, errors.py); no server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from witness import __version__
from witness.cli import main
from witness.cli.app import build_parser
from witness.cli.errors import CliError, UsageError, exit_code_for
from witness.errors import (
    ConfigError,
    ExecutionError,
    MissingParamError,
    RequestTimeoutError,
    ServerUnavailableError,
    UnauthorizedError,
    WitnessTimeoutError,
    WorkflowFormatError,
    WorkflowValidationError,
)

ROOT = Path(__file__).resolve().parents[2]


def test_help_fits_80_columns() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "witness", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for text in ("exit status:", "124", "130", "--json", "COMFYUI_API_URL", "run", "batch"):
        assert text in proc.stdout


@pytest.mark.parametrize(
    "command",
    ["run", "batch", "inspect", "validate", "queue", "history", "nodes", "upload", "download"],
)
def test_command_help_fits_80_columns(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "--json" in out  # the global options are accepted after the command too


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"witness {__version__}"


def test_global_options_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--json", "--url", "http://a", "-q", "stats"])
    after = parser.parse_args(["stats", "--json", "--url", "http://a", "-q"])
    for args in (before, after):
        assert (args.json, args.url, args.quiet) == (True, "http://a", True)
    assert parser.parse_args(["-vv", "stats"]).verbose == 2


@pytest.mark.parametrize(
    "argv",
    [[], ["run"], ["nosuch"], ["run", "w.json", "--timeout", "-1"], ["--timeout", "x", "stats"],
     ["run", "w.json", "--executor", "carrier-pigeon"]],
)  # fmt: skip
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    capsys.readouterr()


def test_bad_param_syntax_exits_2_before_any_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", "http://127.0.0.1:9", "run", "missing.json", "-p", "x"]) in (1, 2, 3)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (CliError("x"), 1),
        (ConfigError("COMFYUI_TIMEOUT", "x", "not a number"), 2),
        (MissingParamError("missing", names=("a",)), 2),
        (WorkflowFormatError("bad"), 1),
        (WorkflowValidationError("bad"), 1),
        (ExecutionError("failed", prompt_id="p", status="failed"), 1),
        (ServerUnavailableError("down", method="GET", url="u"), 3),
        (UnauthorizedError(status=401, method="GET", url="u"), 3),
        (RequestTimeoutError("slow", method="GET", url="u", timeout=1, phase="read"), 124),
        (WitnessTimeoutError("late", timeout=1.0, stage="wait"), 124),
        (KeyboardInterrupt(), 130),
    ],
)
def test_exit_code_mapping(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_console_script_is_the_same_main() -> None:
    setup = (ROOT / "setup.cfg").read_text("utf-8")
    assert "witness = witness.cli:main" in setup
    main_module = (ROOT / "witness" / "__main__.py").read_text("utf-8")
    assert "from witness.cli import main" in main_module

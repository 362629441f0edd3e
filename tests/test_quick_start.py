"""The README's quick start is two commands, and CI runs exactly those."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("## Quick start (fresh machine)", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.strip().splitlines()]


def test_the_quick_start_is_two_commands() -> None:
    assert quick_start_commands() == [
        "python -m pip install -e '.[dev]' && python main.py --sandbox",
        "python -m pytest",
    ]


def test_ci_runs_exactly_the_quick_start_commands() -> None:
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text("utf-8").splitlines()]
    commands = [
        line for line in ci_lines if line and not line.startswith(("#", "echo", "set ", "cd "))
    ]
    assert commands == [
        quick_start_commands()[0],
        "ruff check .",
        "ruff format --check .",
        "mypy",
        quick_start_commands()[1],
    ]

"""Running ``python -m witness`` as a subprocess against the session's real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.comfyui_server import free_port
from witness import Witness

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass
class Run:
    """A finished ``witness`` process."""

    returncode: int
    stdout: str
    stderr: str

    def records(self) -> list[dict[str, Any]]:
        """The ``--json`` records: every stdout line must be one JSON object."""
        records = [json.loads(line) for line in self.stdout.splitlines()]
        assert all(isinstance(r, dict) for r in records), self.stdout
        return records

    def record(self) -> dict[str, Any]:
        """The one ``--json`` record."""
        records = self.records()
        assert len(records) == 1, self.stdout
        return records[0]


def cli_env(url: str | None) -> dict[str, str]:
    """The environment of a CLI subprocess: this worktree's code, the given server, no
    credentials or settings leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFYUI_", "RUNNINGHUB_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "80"
    if url is not None:
        env["COMFYUI_API_URL"] = url
    return env


def command(*args: str) -> list[str]:
    """The argv of ``python -m witness ARGS``."""
    return [sys.executable, "-m", "witness", *args]


WitnessCli = Callable[..., Run]


@pytest.fixture
def witness_cli(comfy_url: str, tmp_path: Path) -> WitnessCli:
    """``witness_cli(*args, input=None, timeout=120, url=comfy_url)`` runs the CLI in
    ``tmp_path``."""

    def run(*args: str, input: str | None = None, timeout: float = 120, url: str | None = None
            ) -> Run:  # fmt: skip
        proc = subprocess.run(
            command(*args), cwd=tmp_path, env=cli_env(url or comfy_url), input=input,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return Run(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def kit(comfy_url: str) -> Iterator[Witness]:
    """A Witness on the session's server, to check what the CLI did."""
    with Witness(comfy_url, executor="http") as client:
        yield client


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON and return the path."""
    path.write_text(json.dumps(data), "utf-8")
    return path

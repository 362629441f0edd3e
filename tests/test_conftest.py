"""The marking rule of tests/conftest.py, checked on throw-away test files in a child pytest.

The child loads the real ``tests/conftest.py`` as a plugin (``-p tests.conftest``) with a
throw-away ComfyUI home, and the probe files fake the install, so nothing is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FAKE_INSTALL = """
import pytest
from scripts import comfyui_server as cs

cs.is_installed = lambda: False
if not hasattr(cs, "probe_real_install"):
    cs.probe_real_install = cs.install
"""


# Loaded by the child before anything else: no install step can run for real, whatever happens.
SAFETY_NET = """
from scripts import comfyui_server


def _refuse(cmd, what, log):
    raise AssertionError("a real install step ran: " + what)


comfyui_server._run = _refuse
"""


def run_child(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(SAFETY_NET)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "WITNESS_COMFYUI_HOME": str(tmp_path / "home"),
    }
    env.pop("WITNESS_TEST_SERVER_URL", None)
    plugins = ["-p", "tests.conftest", "-p", "no:cacheprovider"]
    command = [sys.executable, "-m", "pytest", "-q", *plugins, "--rootdir", str(tmp_path)]
    command += ["-c", os.devnull, *files]
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_an_unmarked_test_using_a_server_fixture_stops_the_session(tmp_path: Path) -> None:
    done = run_child(
        tmp_path,
        {
            "test_probe.py": (
                "def test_live(comfy_url):\n    pass\n\n"
                "def test_private(private_server):\n    pass\n\n"
                "def test_unit():\n    pass\n"
            )
        },
    )
    assert done.returncode == 4, done.stdout + done.stderr  # pytest's usage error
    text = done.stdout + done.stderr
    assert "not marked `integration`" in text
    assert "test_probe.py::test_live  (uses comfy_server, comfy_url)" in text
    assert "test_probe.py::test_private  (uses comfy_install, private_server)" in text
    assert "test_unit" not in text
    assert "pytestmark = pytest.mark.integration" in text
    assert not (tmp_path / "home").exists()


def test_install_progress_shows_under_capture_and_unmarked_installs_fail(tmp_path: Path) -> None:
    marked = FAKE_INSTALL + (
        "\ncs.install = lambda: cs._say('fake install step')\n\n"
        "@pytest.mark.integration\n"
        "def test_marked(comfy_install):\n    assert comfy_install == cs.home()\n"
    )
    unmarked = FAKE_INSTALL + (
        "\n\ndef test_unmarked(monkeypatch):\n"
        "    monkeypatch.setattr(cs, 'install', cs.probe_real_install)\n"
        "    cs.ComfyServer().start()\n"
    )
    done = run_child(tmp_path, {"test_marked.py": marked, "test_unmarked.py": unmarked})
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert "1 failed, 1 passed" in text
    # the marked test's install talks to the terminal although its output is captured
    assert "ComfyUI is not installed in" in text
    assert "[comfyui_server] fake install step" in text
    # the unmarked test is stopped before any install step
    assert "test_unmarked.py::test_unmarked would install ComfyUI into" in text
    assert "a real install step ran" not in text

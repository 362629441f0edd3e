"""Smaller defaults of issue 13 item 10: no stray log lines on stderr, a directory given as an
image says so, and ``Witness()`` reads ``./.env`` at construction (never at import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.conftest import EXAMPLES
from witness import Witness
from witness.errors import ServerUnavailableError, UploadError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={
            **{k: v for k, v in os.environ.items() if k != "WITNESS_NO_DOTENV"},
            "PYTHONPATH": str(ROOT),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_retry_warnings_stay_off_stderr_without_logging_config(
    free_url: str, tmp_path: Path
) -> None:
    code = (
        "import witness, witness.errors\n"
        f"kit = witness.Witness({free_url!r}, retries=2, retry_backoff=0.01, dotenv_path=False)\n"
        "try:\n"
        "    kit.queue.get()\n"
        "except witness.errors.ServerUnavailableError:\n"
        "    print('raised')\n"
    )
    done = _python(code, tmp_path)
    assert done.stdout.strip() == "raised", done.stderr
    assert done.stderr == ""  # before: "GET ... failed (Connection refused); retry 1 of 2"
    # An application that configures logging still sees them.
    shown = _python("import logging; logging.basicConfig()\n" + code, tmp_path)
    assert "retry 1 of 2" in shown.stderr


def test_a_directory_given_as_an_image(kit: Witness, tmp_path: Path) -> None:
    for value in (tmp_path, str(tmp_path), f"{tmp_path}/"):
        with pytest.raises(UploadError) as caught:
            kit.execute(EXAMPLES / "upload_invert.json", {"image": value})
        assert "is a directory" in str(caught.value)
        assert "does not exist" not in str(caught.value)
        assert caught.value.param == "image"


def test_dotenv_in_the_working_directory(
    comfy_url: str, free_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"COMFYUI_API_URL={comfy_url}\nCOMFYUI_RETRIES=0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMFYUI_API_URL", raising=False)
    monkeypatch.delenv("COMFYUI_BASE_URL", raising=False)
    monkeypatch.delenv("WITNESS_NO_DOTENV", raising=False)
    with Witness() as kit:  # argument > environment > .env > default
        assert kit.settings.api_url == comfy_url
        assert kit.settings.retries == 0
        assert kit.queue.get() is not None  # it really talks to that server
    with Witness(retries=2) as kit:
        assert kit.settings.retries == 2
    monkeypatch.setenv("COMFYUI_RETRIES", "1")
    with Witness() as kit:
        assert kit.settings.retries == 1
    with Witness(dotenv_path=False) as kit:
        assert kit.settings.api_url == "http://127.0.0.1:8188"
    monkeypatch.setenv("WITNESS_NO_DOTENV", "1")
    with Witness() as kit:
        assert kit.settings.api_url == "http://127.0.0.1:8188"
    monkeypatch.delenv("WITNESS_NO_DOTENV")
    other = tmp_path / "other.env"
    other.write_text(f"COMFYUI_API_URL={free_url}\n")
    with Witness(dotenv_path=other, connect_timeout=1.0, retries=0) as kit:
        assert kit.settings.api_url == free_url
        with pytest.raises(ServerUnavailableError):
            kit.queue.get()


def test_dotenv_is_never_read_at_import(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COMFYUI_RETRIES=not-a-number\n")
    done = _python("import witness, witness.core.witness; print('ok')", tmp_path)
    assert done.stdout.strip() == "ok", done.stderr
    bad = _python("import witness; witness.Witness()", tmp_path)
    assert "COMFYUI_RETRIES" in bad.stderr  # read (and checked) at construction

"""The demo (main.py) end to end against the real server, and its no-server message."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "main.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.integration
def test_demo_runs_end_to_end(comfy_url: str, tmp_path: Path) -> None:
    done = run_demo("--url", comfy_url, "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for section in (
        "== System",
        "== A DSL workflow with params",
        "== Upload an image and process it",
        "== Live websocket progress",
        "== Text to image",
        "== History",
    ):
        assert section in out
    assert "ComfyUI 0.3.75" in out
    assert out.count("status=completed") == 4
    assert "preview frames" in out
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.startswith("witness_invert_") for name in saved)
    assert any(name.startswith("witness_upload_invert_") for name in saved)
    assert any(name.startswith("witness_txt2img_") for name in saved)
    # the upload step processes the very file it uploaded (not a second upload)
    uploaded = re.search(r"uploaded as '([^']+)'", out)
    assert uploaded is not None, out
    assert uploaded.group(1).startswith("witness-demo")
    with urllib.request.urlopen(f"{comfy_url}/history?max_items=20", timeout=30) as answer:
        history = json.load(answer)
    images = [
        node["inputs"]["image"]
        for entry in history.values()
        for node in entry["prompt"][2].values()
        if node["class_type"] == "LoadImage"
    ]
    assert uploaded.group(1) in images


def test_demo_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_demo("--url", f"http://127.0.0.1:{port}", "--out", str(tmp_path))
    assert done.returncode == 2
    assert f"No ComfyUI answers at http://127.0.0.1:{port}" in done.stdout
    assert "python main.py --sandbox" in done.stdout
    assert "python scripts/comfyui_server.py start" in done.stdout

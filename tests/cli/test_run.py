"""``witness run`` as a subprocess against the real server: outputs, typed and @file params,
UI format, stdin, exit codes, progress on a pseudo-terminal, Ctrl-C."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import EXAMPLES, WitnessCli, cli_env, command, write_json
from tests.support.images import png, png_size
from tests.support.ui_graph import UIGraph
from witness import Witness

pytestmark = pytest.mark.integration

PREFIX_WORKFLOW: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        "_meta": {"title": "Canvas, $width, $height, $color"},
    },
    "2": {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "cli_default"},
        "_meta": {"title": "Result, $prefix.filename_prefix, $output.result"},
    },
}
QUEUED = re.compile(r"queued prompt ([0-9a-f-]{36})")


def sleep_seconds(base: float) -> str:
    """A sleep length no earlier run used (so the server does not answer from its cache)."""
    return f"{base + random.random() / 10:.4f}"


@pytest.fixture
def prefix_workflow(tmp_path: Path) -> Path:
    return write_json(tmp_path / "prefix.json", PREFIX_WORKFLOW)


def test_run_json_saves_typed_outputs(witness_cli: WitnessCli, prefix_workflow: Path) -> None:
    tag = f"cli_json_{random.randrange(10**6)}"
    run = witness_cli("--json", "run", "prefix.json", "-p", "width=16", "-p", "height=8",
                      "-p", f"prefix={tag}", "--out", "out")  # fmt: skip
    assert run.returncode == 0, run.stderr
    record = run.record()
    assert record["status"] == "completed"
    assert QUEUED.search(run.stderr).group(1) == record["prompt_id"]  # type: ignore[union-attr]
    (item,) = record["files"]
    assert item["var"] == "result"
    assert item["kind"] == "image"
    assert item["filename"].startswith(tag)
    path = prefix_workflow.parent / item["path"]
    assert png_size(path.read_bytes()) == (16, 8)
    assert record["saved"] == [item["path"]]


def test_run_human_output_prints_saved_paths(
    witness_cli: WitnessCli, prefix_workflow: Path
) -> None:
    run = witness_cli("run", "prefix.json", "-p", "color=255", "--out", "out", "--executor", "http")
    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.splitlines()
    assert line.startswith("out/")
    assert line.endswith(".png")
    assert (prefix_workflow.parent / line).is_file()
    assert "completed in" in run.stderr
    without_out = witness_cli("run", "prefix.json", "-p", "color=255", "-q")
    assert without_out.returncode == 0
    assert "/view?filename=" in without_out.stdout
    assert without_out.stderr == ""  # -q: nothing but errors


def test_at_file_params_upload_an_image_and_read_text(
    witness_cli: WitnessCli, tmp_path: Path
) -> None:
    (tmp_path / "photo.png").write_bytes(png(5, 3, (10, 200, 30, 255)))
    run = witness_cli("--json", "run", str(EXAMPLES / "upload_invert.json"),
                      "-p", "image=@photo.png", "--out", "inverted")  # fmt: skip
    assert run.returncode == 0, run.stderr
    (item,) = run.record()["files"]
    assert png_size((tmp_path / item["path"]).read_bytes()) == (5, 3)

    write_json(tmp_path / "prefix.json", PREFIX_WORKFLOW)
    tag = f"from_file_{random.randrange(10**6)}"
    (tmp_path / "prefix.txt").write_text(tag + "\n", "utf-8")
    run = witness_cli("--json", "run", "prefix.json", "-p", "prefix=@prefix.txt")
    assert run.returncode == 0, run.stderr
    assert run.record()["files"][0]["filename"].startswith(tag + "_")


def test_run_a_ui_format_workflow(witness_cli: WitnessCli, tmp_path: Path) -> None:
    graph = UIGraph()
    graph.node(1, "EmptyImage", outputs=["IMAGE"], widgets=[12, 10, 1, 0], title="$width")
    graph.node(2, "SaveImage", inputs=[("images", "IMAGE")], widgets=["cli_ui"],
               title="$output.picture")  # fmt: skip
    graph.link(1, 0, 2, "images")
    write_json(tmp_path / "ui.json", graph.workflow())
    run = witness_cli("--json", "run", "ui.json", "-p", "width=20", "--out", "out")
    assert run.returncode == 0, run.stderr
    (item,) = run.record()["files"]
    assert item["var"] == "picture"
    assert item["filename"].startswith("cli_ui")
    assert png_size((tmp_path / item["path"]).read_bytes()) == (20, 10)


def test_run_from_stdin_with_params_file(witness_cli: WitnessCli, tmp_path: Path) -> None:
    write_json(tmp_path / "params.json", {"width": 6, "height": 4})
    run = witness_cli("--json", "run", "-", "--params", "params.json", "-p", "height=5",
                      "--out", "o", input=json.dumps(PREFIX_WORKFLOW))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert png_size((tmp_path / run.record()["files"][0]["path"]).read_bytes()) == (6, 5)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-p", "width=0"], 1, "width"),  # fails validation before submit
        (["-p", "width=0", "--no-validate"], 1, "width"),  # the server refuses it
        (["-p", "nope=1"], 2, "unknown parameter"),
        (["-p", "width=wide"], 2, "takes an integer"),
        (["-p", "width"], 2, "name=value"),
    ],
)
def test_run_errors_and_exit_codes(
    witness_cli: WitnessCli, prefix_workflow: Path, args: list[str], code: int, message: str
) -> None:
    run = witness_cli("--json", "run", "prefix.json", *args)
    assert run.returncode == code, run.stderr
    assert message in run.stderr
    error = run.record()["error"]
    assert error["exit_code"] == code
    assert message in error["message"]


def test_missing_and_malformed_workflows_exit_1(witness_cli: WitnessCli, tmp_path: Path) -> None:
    assert witness_cli("run", "missing.json").returncode == 1
    (tmp_path / "bad.json").write_text("{not json", "utf-8")
    run = witness_cli("run", "bad.json")
    assert run.returncode == 1
    assert "witness: error:" in run.stderr


def test_unreachable_server_exits_3(
    witness_cli: WitnessCli, prefix_workflow: Path, closed_port_url: str
) -> None:
    run = witness_cli("--json", "run", "prefix.json", url=closed_port_url)
    assert run.returncode == 3, run.stderr
    assert run.record()["error"]["exit_code"] == 3
    assert "Traceback" not in run.stderr


def test_api_key_is_never_printed(
    witness_cli: WitnessCli, prefix_workflow: Path, closed_port_url: str
) -> None:
    key = "sk-cli-secret-0123456789"
    run = witness_cli("-v", "--api-key", key, "run", "prefix.json", url=closed_port_url)
    assert run.returncode == 3
    assert key not in run.stdout + run.stderr


def test_timeout_exits_124_and_cancels_the_prompt(witness_cli: WitnessCli, kit: Witness) -> None:
    run = witness_cli("--json", "run", str(EXAMPLES / "sleep_progress.json"),
                      "-p", f"seconds={sleep_seconds(60)}", "--timeout", "3")  # fmt: skip
    assert run.returncode == 124, run.stderr
    record = run.record()
    assert record["status"] == "timeout"
    assert "cancelled on the server" in run.stderr
    assert kit.queue.get().status_of(record["prompt_id"]) is None


def test_progress_bars_on_a_pseudo_terminal(comfy_url: str, tmp_path: Path) -> None:
    master, slave = os.openpty()
    proc = subprocess.Popen(
        command("run", str(EXAMPLES / "sleep_progress.json"), "-p",
                f"seconds={sleep_seconds(1.5)}"),
        cwd=tmp_path, env=cli_env(comfy_url), stdin=slave, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=120) == 0
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    text = b"".join(chunks).decode("utf-8", "replace")
    frames = [f for f in text.split("\r") if "Slow step (#2)" in f and "step" in f]
    assert len(frames) >= 3, text  # the bar was redrawn while the node ran
    assert any(re.search(r"step [\d.]+/1\.5\d* \[\d\d:\d\d<\d\d:\d\d\]", f) for f in frames), text
    assert "overall (nodes " in text
    assert "█" in text  # tqdm's unicode bar, drawn on a terminal
    assert "/view?filename=" in text


def test_ctrl_c_cancels_the_prompt_on_the_server(
    comfy_url: str, tmp_path: Path, kit: Witness
) -> None:
    proc = subprocess.Popen(
        command("run", str(EXAMPLES / "sleep_progress.json"), "-p",
                f"seconds={sleep_seconds(60)}"),
        cwd=tmp_path, env=cli_env(comfy_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    stepping = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "Slow step (#2) step" in line:
                stepping.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert stepping.wait(90), "".join(lines)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # a second Ctrl-C during the cancel is ignored
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    stderr = "".join(lines)
    prompt_id = QUEUED.search(stderr).group(1)  # type: ignore[union-attr]
    assert stderr.count(f"prompt {prompt_id} cancelled on the server") == 1, stderr
    assert kit.queue.get().status_of(prompt_id) is None
    deadline = time.monotonic() + 30
    entry = kit.history.get(prompt_id)
    while entry is None and time.monotonic() < deadline:
        time.sleep(0.2)
        entry = kit.history.get(prompt_id)
    assert entry is not None
    assert entry.interrupted


def txt2img_ui(prefix: str, seed: int) -> dict[str, Any]:
    """The tiny-checkpoint text-to-image graph in UI format, as the browser exports it."""
    graph = UIGraph()
    graph.node(
        1,
        "CheckpointLoaderSimple",
        outputs=["MODEL", "CLIP", "VAE"],
        widgets=["witness-tiny-sd15.safetensors"],
    )
    graph.node(
        2,
        "CLIPTextEncode",
        inputs=[("clip", "CLIP")],
        outputs=["CONDITIONING"],
        widgets=["a lighthouse"],
        title="$prompt.text",
    )
    graph.node(
        3, "CLIPTextEncode", inputs=[("clip", "CLIP")], outputs=["CONDITIONING"], widgets=["blurry"]
    )
    graph.node(4, "EmptyLatentImage", outputs=["LATENT"], widgets=[64, 64, 1])
    graph.node(
        5,
        "KSampler",
        outputs=["LATENT"],
        inputs=[
            ("model", "MODEL"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"),
        ],
        widgets=[seed, "fixed", 2, 7.0, "euler", "normal", 1.0],
        title="Sampler, $steps",
    )
    graph.node(6, "VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=["IMAGE"])
    graph.node(7, "SaveImage", inputs=[("images", "IMAGE")], widgets=[prefix],
               title="$output.image")  # fmt: skip
    for origin, slot, target, name in [
        (1, 0, 5, "model"), (1, 1, 2, "clip"), (1, 1, 3, "clip"), (2, 0, 5, "positive"),
        (3, 0, 5, "negative"), (4, 0, 5, "latent_image"), (5, 0, 6, "samples"), (1, 2, 6, "vae"),
        (6, 0, 7, "images"),
    ]:  # fmt: skip
        graph.link(origin, slot, target, name)
    return graph.workflow()


def test_ui_workflow_widget_text_replacements_in_filename_prefix(
    witness_cli: WitnessCli, tmp_path: Path
) -> None:
    seed = random.randrange(10**6, 10**7)
    write_json(tmp_path / "ui.json", txt2img_ui("cli_%KSampler.seed%_%date:yyyy-MM-dd%", seed))
    before = datetime.now().strftime("%Y-%m-%d")
    run = witness_cli("--json", "run", "ui.json", "-p", "prompt=a red fox", "-p", "steps=1",
                      "--out", "out", timeout=300)  # fmt: skip
    after = datetime.now().strftime("%Y-%m-%d")
    assert run.returncode == 0, run.stderr
    (item,) = run.record()["files"]
    names = {f"cli_{seed}_{day}_00001_.png" for day in (before, after)}
    assert item["filename"] in names
    assert Path(item["path"]).name in names
    assert png_size((tmp_path / item["path"]).read_bytes()) == (64, 64)


def test_backend_option(witness_cli: WitnessCli, prefix_workflow: Path) -> None:
    import inspect

    run = witness_cli("--json", "run", "prefix.json", "--backend", "native")
    if "backend" in inspect.signature(Witness).parameters:
        assert run.returncode == 0, run.stderr
        assert run.record()["status"] == "completed"
    else:  # the facade before the pipeline redesign has a single backend
        assert run.returncode == 2
        assert "--backend" in run.stderr

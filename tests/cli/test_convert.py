"""Tests of ``witness convert`` (witness/cli/convert.py), in-process and via ``python -m``."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from witness.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "uiconv"
ROOT = Path(__file__).resolve().parents[2]
OBJECT_INFO_GZ = FIXTURES / "object_info-0.3.75.json.gz"


def ui_workflow(text: str = "a {cat|dog}", node_type: str = "CLIPTextEncode") -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": 1,
                "type": "CheckpointLoaderSimple",
                "mode": 0,
                "inputs": [],
                "outputs": [{"name": "CLIP", "type": "CLIP", "links": [1]}],
                "widgets_values": ["m.safetensors"],
            },
            {
                "id": 2,
                "type": node_type,
                "mode": 0,
                "title": "Prompt",
                "inputs": [{"name": "clip", "type": "CLIP", "link": 1}],
                "outputs": [],
                "widgets_values": [text],
            },
        ],
        "links": [[1, 1, 1, 2, 0, "CLIP"]],
    }


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps(ui_workflow()), "utf-8")
    info = tmp_path / "object_info.json"
    with gzip.open(OBJECT_INFO_GZ, "rt", encoding="utf-8") as fh:
        info.write_text(fh.read(), "utf-8")
    return {"ui": ui, "info": info, "out": tmp_path / "out" / "api.json"}


def test_convert_to_file(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    files["out"].parent.mkdir()
    rc = main(["convert", str(files["ui"]), "-o", str(files["out"]), "--object-info",
               str(files["info"])])  # fmt: skip
    assert rc == 0
    prompt = json.loads(files["out"].read_text("utf-8"))
    assert prompt["2"]["inputs"] == {"text": "a cat", "clip": ["1", 1]}
    assert prompt["2"]["_meta"] == {"title": "Prompt"}
    assert "wrote 2 nodes" in capsys.readouterr().err
    assert [p.name for p in files["out"].parent.iterdir()] == ["api.json"]  # no temp left


def test_convert_to_stdout_with_gzip_object_info_and_seed(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    picks = set()
    for seed in range(12):
        assert main(["convert", str(files["ui"]), "--object-info", str(OBJECT_INFO_GZ),
                     "--seed", str(seed)]) == 0  # fmt: skip
        picks.add(json.loads(capsys.readouterr().out)["2"]["inputs"]["text"])
    assert picks == {"a cat", "a dog"}


def test_unknown_node_type_is_reported(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files["ui"].write_text(json.dumps(ui_workflow(node_type="FancyCustomNode")), "utf-8")
    rc = main(["convert", str(files["ui"]), "--object-info", str(files["info"])])
    assert rc == 1
    err = capsys.readouterr().err
    assert "FancyCustomNode" in err
    assert "2 (FancyCustomNode)" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the workflow file"),
        ("{not json", "not valid JSON"),
        (json.dumps({"3": {"class_type": "KSampler", "inputs": {}}}), "already in API format"),
        (json.dumps({"hello": 1}), "not a UI-format workflow"),
    ],
)
def test_bad_workflow_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    path = tmp_path / "w.json"
    if content is not None:
        path.write_text(content, "utf-8")
    assert main(["convert", str(path), "--object-info", str(OBJECT_INFO_GZ)]) == 1
    assert message in capsys.readouterr().err


def test_bad_object_info_file(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    files["info"].write_text("[1, 2]", "utf-8")
    assert main(["convert", str(files["ui"]), "--object-info", str(files["info"])]) == 1
    assert "not a JSON object" in capsys.readouterr().err


def test_usage_errors_exit_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["convert", str(files["ui"])]) == 2  # no definitions source
    assert main(["convert", str(files["ui"]), "--object-info", "a", "--server", "b"]) == 2
    assert main(["convert", "--help"]) == 0
    assert "--object-info" in capsys.readouterr().out


def test_unreachable_server_is_a_clean_error(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["convert", str(files["ui"]), "--server", "http://127.0.0.1:9"])
    assert rc == 3  # the documented exit status for an unreachable server
    assert capsys.readouterr().err.startswith("witness: error: ")


@pytest.mark.integration
def test_convert_with_definitions_from_the_real_server(
    comfy_url: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["convert", str(files["ui"]), "--server", comfy_url]) == 0
    prompt = json.loads(capsys.readouterr().out)
    assert prompt["1"] == {
        "inputs": {"ckpt_name": "m.safetensors"},
        "class_type": "CheckpointLoaderSimple",
        "_meta": {"title": "Load Checkpoint"},
    }


def test_python_dash_m_witness(files: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(files["ui"], tmp_path / "in.json")
    proc = subprocess.run(
        [sys.executable, "-m", "witness", "convert", "in.json", "-o", "api.json",
         "--object-info", str(OBJECT_INFO_GZ)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "api.json").read_text("utf-8"))["2"]["class_type"] == (
        "CLIPTextEncode"
    )


def test_convert_json_mode_prints_the_prompt_on_one_line(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "convert", str(files["ui"]), "--object-info", str(OBJECT_INFO_GZ)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["2"]["class_type"] == "CLIPTextEncode"

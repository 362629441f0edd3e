"""``witness inspect`` and ``witness validate`` as subprocesses."""

from __future__ import annotations

import pytest

from tests.cli.conftest import EXAMPLES, WitnessCli

pytestmark = pytest.mark.integration

TXT2IMG = str(EXAMPLES / "txt2img.json")


def test_inspect_lists_typed_params_and_outputs(witness_cli: WitnessCli) -> None:
    record = witness_cli("--json", "inspect", TXT2IMG).record()
    params = {p["name"]: p for p in record["params"]}
    assert params["width"]["type"] == "int"
    assert params["width"]["required"] is True
    assert params["prompt"]["type"] == "str"
    assert params["seed"]["inputs"] == ["3.seed"]
    assert record["outputs"] == [{"name": "result", "node_id": "9", "class_type": "SaveImage"}]
    upload = witness_cli("--json", "inspect", str(EXAMPLES / "upload_invert.json")).record()
    assert upload["params"][0]["type"] == "file (image)"
    human = witness_cli("inspect", TXT2IMG).stdout
    assert human.startswith("params:")
    assert "outputs:" in human
    assert all(len(line) <= 80 for line in human.splitlines())


def test_inspect_an_api_workflow_needs_no_server(
    witness_cli: WitnessCli, closed_port_url: str
) -> None:
    run = witness_cli("--json", "inspect", TXT2IMG, url=closed_port_url)
    assert run.returncode == 0, run.stderr
    assert {p["name"]: p["type"] for p in run.record()["params"]}["width"] == "int"


def test_validate(witness_cli: WitnessCli) -> None:
    ok = witness_cli("--json", "validate", TXT2IMG, "-p", "prompt=x", "-p", "width=64",
                     "-p", "height=64")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.record()["problems"] == 0
    bad = witness_cli("--json", "validate", TXT2IMG, "-p", "prompt=x", "-p", "width=1",
                      "-p", "height=64", "-p", "model=witness-tiny.safetensors")  # fmt: skip
    assert bad.returncode == 1
    problems = {p["kind"]: p for p in bad.records()}
    assert problems["value_smaller_than_min"]["input"] == "width"
    assert problems["value_not_in_list"]["suggestions"][0] == "witness-tiny-sd15.safetensors"
    human = witness_cli("validate", TXT2IMG, "-p", "prompt=x", "-p", "width=1", "-p", "height=64")
    assert "did you mean" not in human.stdout
    assert "smaller than the minimum" in human.stdout
    assert "1 problem(s)" in human.stderr
    missing = witness_cli("validate", TXT2IMG)
    assert missing.returncode == 2
    assert "missing required parameter" in missing.stderr

"""Server commands (stats, nodes, models, embeddings, extensions, features, free) as
subprocesses on the real server."""

from __future__ import annotations

import pytest

from tests.cli.conftest import WitnessCli

pytestmark = pytest.mark.integration


def test_stats(witness_cli: WitnessCli) -> None:
    record = witness_cli("--json", "stats").record()
    assert record["system"]["comfyui_version"] == "0.3.75"
    human = witness_cli("stats")
    assert human.stdout.startswith("ComfyUI 0.3.75")
    assert "RAM" in human.stdout


def test_nodes_search(witness_cli: WitnessCli) -> None:
    (sleep,) = witness_cli("--json", "nodes", "TestSleep").records()
    assert sleep["class"] == "TestSleep"
    assert sleep["category"] == "_for_testing"
    assert "seconds:FLOAT" in sleep["inputs"]
    loaders = witness_cli("--json", "nodes", "LoadImage*").records()
    assert {"LoadImage", "LoadImageMask"} <= {r["class"] for r in loaders}
    by_category = {r["class"] for r in witness_cli("--json", "nodes", "_for_testing").records()}
    assert "TestSleep" in by_category
    table = witness_cli("nodes", "ksampler")
    assert table.stdout.splitlines()[0].split() == ["CLASS", "CATEGORY", "INPUTS"]
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    none = witness_cli("nodes", "no-such-node-xyz")
    assert none.returncode == 0
    assert "no node class matches" in none.stderr


def test_models_embeddings_extensions_features(witness_cli: WitnessCli) -> None:
    folders = [r["folder"] for r in witness_cli("--json", "models").records()]
    assert "checkpoints" in folders
    models = [r["model"] for r in witness_cli("--json", "models", "checkpoints").records()]
    assert "witness-tiny-sd15.safetensors" in models
    assert witness_cli("models", "no-such-folder").returncode == 1
    embeddings = witness_cli("--json", "embeddings")
    assert embeddings.returncode == 0
    embeddings.records()  # every line (if any) is a JSON object
    extensions = [r["extension"] for r in witness_cli("--json", "extensions").records()]
    assert any(e.endswith(".js") for e in extensions)
    features = witness_cli("--json", "features").record()
    assert features["max_upload_size"] > 0


def test_free(witness_cli: WitnessCli) -> None:
    assert witness_cli("--json", "free", "--unload").record() == {
        "unload_models": True, "free_memory": False,
    }  # fmt: skip
    freed = witness_cli("free")
    assert freed.returncode == 0
    assert "memory" in freed.stderr


def test_unreachable_server_exits_3_for_every_kind_of_command(
    witness_cli: WitnessCli, closed_port_url: str
) -> None:
    for args in (["stats"], ["queue"], ["history"], ["nodes"], ["cancel", "x"]):
        run = witness_cli("--json", *args, url=closed_port_url)
        assert run.returncode == 3, (args, run.stderr)
        assert run.record()["error"]["exit_code"] == 3

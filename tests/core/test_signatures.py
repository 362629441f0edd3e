"""SignatureCache: one parse per workflow text, and never a stale signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from witness.core import dsl, signatures
from witness.core.signatures import SignatureCache
from witness.core.sources import load_workflow
from witness.errors import DSLError

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "invert.json"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = dsl.parse

    def counting(workflow: Any, **kwargs: Any) -> dsl.Signature:
        calls.append(workflow)
        return real(workflow, **kwargs)

    monkeypatch.setattr(signatures.dsl, "parse", counting)
    return calls


def test_the_same_text_is_parsed_once(parses: list[Any]) -> None:
    cache = SignatureCache()
    first = cache.signature(load_workflow(WORKFLOW))
    second = cache.signature(load_workflow(WORKFLOW))
    third = cache.signature(load_workflow(WORKFLOW.read_text()))  # same content, as text
    assert second is first
    assert third == first
    assert len(parses) == 2  # the file's bytes and the str are two keys
    assert first == dsl.parse(json.loads(WORKFLOW.read_text()))


def test_a_workflow_changed_after_loading_is_parsed_again(parses: list[Any]) -> None:
    cache = SignatureCache()
    original = cache.signature(load_workflow(WORKFLOW))
    loaded = load_workflow(WORKFLOW)
    node_id = next(iter(loaded.workflow))
    loaded.workflow[node_id]["_meta"] = {"title": "Renamed, $new_name.width"}
    changed = cache.signature(loaded)
    assert "new_name" in changed.params
    assert "new_name" not in original.params
    assert len(parses) == 2
    # ... and the unchanged file still gets its own signature back
    assert "new_name" not in cache.signature(load_workflow(WORKFLOW)).params


def test_later_changes_by_the_caller_do_not_reach_the_cached_signature() -> None:
    cache = SignatureCache()
    loaded = load_workflow(WORKFLOW)
    signature = cache.signature(loaded)
    described = signature.describe()
    for node in loaded.workflow.values():
        node["inputs"].clear()
        node.get("_meta", {}).clear()
    assert cache.signature(load_workflow(WORKFLOW)).describe() == described


def test_dict_sources_ui_workflows_and_big_texts_are_not_cached(
    parses: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SignatureCache()
    graph = json.loads(WORKFLOW.read_text())
    cache.signature(load_workflow(graph))
    cache.signature(load_workflow(graph))
    assert len(cache) == 0
    monkeypatch.setattr(signatures, "MAX_TEXT", 10)
    cache.signature(load_workflow(WORKFLOW))
    assert len(cache) == 0
    assert len(parses) == 3


def test_a_failed_parse_is_not_cached(tmp_path: Path) -> None:
    graph = json.loads(WORKFLOW.read_text())
    node = next(iter(graph.values()))
    node["_meta"] = {"title": "Bad, $x.no_such_input"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(graph))
    cache = SignatureCache()
    for _ in range(2):
        with pytest.raises(DSLError):
            cache.signature(load_workflow(path))
    assert len(cache) == 0


def test_the_least_recently_used_is_dropped(parses: list[Any]) -> None:
    cache = SignatureCache(max_entries=3)
    graph = json.loads(WORKFLOW.read_text())
    texts = [json.dumps(graph, indent=i) for i in range(5)]  # same graph, five texts
    for text in texts:
        cache.signature(load_workflow(text))
    assert len(cache) == 3
    cache.signature(load_workflow(texts[4]))
    assert len(parses) == 5
    cache.signature(load_workflow(texts[0]))
    assert len(parses) == 6

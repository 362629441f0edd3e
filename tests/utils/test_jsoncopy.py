"""copy_json: a full deep copy, fast for JSON shapes, deepcopy for the rest."""

from __future__ import annotations

import json
from pathlib import Path

from witness.utils.jsoncopy import MAX_DEPTH, copy_json

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "invert.json"


def test_a_workflow_copy_is_equal_and_independent() -> None:
    original = json.loads(WORKFLOW.read_text())
    copied = copy_json(original)
    assert copied == original
    for node_id, node in copied.items():
        assert node is not original[node_id]
        assert node["inputs"] is not original[node_id]["inputs"]
        node["inputs"]["changed"] = True
    assert all("changed" not in node["inputs"] for node in original.values())


def test_lists_tuples_and_scalars() -> None:
    value = {"a": [1, 2.5, "x", None, True, [3]], "t": (1, [2])}
    copied = copy_json(value)
    assert copied == value
    assert type(copied["t"]) is tuple
    assert copied["a"][5] is not value["a"][5]
    assert copied["t"][1] is not value["t"][1]


def test_other_types_are_deep_copied() -> None:
    class Box:
        def __init__(self, items: list[int]) -> None:
            self.items = items

    box = Box([1])
    value = {"set": {1, 2}, "box": box}
    copied = copy_json(value)
    assert copied["set"] == {1, 2}
    assert copied["set"] is not value["set"]
    assert copied["box"] is not box
    assert copied["box"].items == [1]
    assert copied["box"].items is not box.items


def test_deep_nesting_and_cycles_fall_back_to_deepcopy() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(MAX_DEPTH * 3):
        child: dict[str, object] = {}
        node["next"] = child
        node = child
    copied = copy_json(deep)
    assert copied == deep

    cyclic: dict[str, object] = {"name": "loop"}
    cyclic["self"] = cyclic
    result = copy_json(cyclic)  # no RecursionError
    assert result["name"] == "loop"
    assert result is not cyclic


def test_shared_sub_objects_become_separate_copies() -> None:
    shared = {"x": 1}
    copied = copy_json({"a": shared, "b": shared})
    copied["a"]["x"] = 2
    assert copied["b"]["x"] == 1
    assert shared["x"] == 1

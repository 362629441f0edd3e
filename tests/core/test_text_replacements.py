"""Tests of witness.core.text_replacements against the frontend's own function.

``tests/fixtures/uiconv/text_replacements.json`` holds reference cases: the outputs of
``applyTextReplacements$1`` extracted verbatim from comfyui-frontend-package 1.32.9
(``assets/index-BKdH1OFt.js``) and run under Node on mock graphs with a fixed ``Date``. Each case
lists the graph's nodes (S&R name, title, widgets in order, subgraph contents); the port must
give the same text for every one.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from witness.core.text_replacements import (
    ReplacementNode,
    apply_text_replacements,
    format_date,
    js_string,
    js_truthy,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "uiconv" / "text_replacements.json"
CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text("utf-8"))["cases"]


def flatten(nodes: list[dict[str, Any]]) -> list[ReplacementNode]:
    """The frontend's collectAllNodes order: a node's subgraph contents, then the node."""
    out: list[ReplacementNode] = []
    for node in nodes:
        out += flatten(node.get("subgraph", []))
        widgets: dict[str, Any] = {}
        for name, value in node.get("widgets", []):
            widgets.setdefault(name, value)  # Array.find: the first widget of that name
        out.append(ReplacementNode(node.get("search_name"), node["title"], lambda w=widgets: w))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_reference_case(case: dict[str, Any]) -> None:
    got = apply_text_replacements(case["value"], flatten(case["nodes"]), datetime(*case["now"]))
    assert got == case["expected"]


def test_reference_cases_cover_the_rules() -> None:
    names = " ".join(c["name"] for c in CASES)
    for rule in ("several matches", "no matching node", "missing widget", "unsafe characters",
                 "subgraph", "date: yyyy-MM-dd", "S&R name wins", "title used"):  # fmt: skip
        assert rule in names
    assert len(CASES) >= 50


def test_widgets_are_read_only_for_the_node_a_token_resolves_to() -> None:
    calls: list[str] = []

    def widgets(name: str) -> Any:
        def read() -> dict[str, Any]:
            calls.append(name)
            return {"w": name}

        return read

    nodes = [ReplacementNode("A", "a", widgets("A")), ReplacementNode("B", "b", widgets("B"))]
    assert apply_text_replacements("%B.w%-%B.w%-%C.w%-plain", nodes, datetime(2026, 1, 1)) == (
        "B-B-%C.w%-plain"
    )
    assert calls == ["B", "B"]


def test_format_date_uses_the_fields_of_an_aware_datetime() -> None:
    moment = datetime(2026, 12, 31, 23, 0, 5, tzinfo=timezone(timedelta(hours=-5)))
    assert format_date("yyyy-MM-dd hh:mm:ss", moment) == "2026-12-31 23:00:05"


def test_js_string_of_values_json_cannot_carry() -> None:
    assert js_string(float("nan")) == "NaN"
    assert js_string(float("inf")) == "Infinity"
    assert js_string(float("-inf")) == "-Infinity"
    assert js_string((1, None)) == "1,"
    assert js_string([None]) == ""
    assert js_string([[None]]) == ""


def test_js_truthy() -> None:
    for value in (None, False, 0, 0.0, "", float("nan")):
        assert not js_truthy(value)
    for value in (True, 1, -0.5, "0", "false", [], {}):
        assert js_truthy(value)

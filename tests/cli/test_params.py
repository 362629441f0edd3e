"""Unit tests of ``-p`` typing (witness/cli/params.py); no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from witness.cli.errors import UsageError
from witness.cli.params import build_params, coerce, declared_type, parse_assignment
from witness.core import dsl

WORKFLOW: dict[str, Any] = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
        "_meta": {"title": "$width, $height, $color"},
    },
    "2": {
        "class_type": "LoadImage",
        "inputs": {"image": "example.png"},
        "_meta": {"title": "$image"},
    },
    "3": {
        "class_type": "KSampler",
        "inputs": {"seed": 1, "cfg": 7.0, "denoise": 1, "sampler_name": "euler"},
        "_meta": {"title": "$cfg, $denoise, $sampler.sampler_name, $seed"},
    },
    "4": {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "x"},
        "_meta": {"title": "$prefix.filename_prefix"},
    },
    "5": {
        "class_type": "Custom",
        "inputs": {"flag": True, "text": ["4", 0]},
        "_meta": {"title": "$flag, $linked.text"},
    },
}
OBJECT_INFO: dict[str, Any] = {
    "KSampler": {
        "input": {
            "required": {
                "seed": ["INT", {}],
                "cfg": ["FLOAT", {}],
                "denoise": ["FLOAT", {}],
                "sampler_name": [["euler", "ddim"], {}],
            }
        }
    },
    "SaveImage": {"input": {"required": {"filename_prefix": ["STRING", {}]}}},
    "EmptyImage": {"input": {"required": {"width": ["INT", {}], "color": ["INT", {}]}}},
}
SIGNATURE = dsl.parse(WORKFLOW).describe()


def typed(*items: str, info: dict[str, Any] | None = OBJECT_INFO) -> dict[str, Any]:
    return build_params(items, None, SIGNATURE, info)


def test_types_from_object_info() -> None:
    params = typed("width=512", "cfg=7", "denoise=0.5", "seed=42", "sampler=ddim", "prefix=001")
    assert params == {
        "width": 512, "cfg": 7.0, "denoise": 0.5, "seed": 42, "sampler": "ddim", "prefix": "001",
    }  # fmt: skip
    assert isinstance(params["cfg"], float)
    assert isinstance(params["prefix"], str)  # a STRING input stays text, digits or not


def test_types_from_the_defaults_without_object_info() -> None:
    params = typed("width=8", "denoise=0.5", "flag=false", "prefix=7", info=None)
    assert params["width"] == 8
    assert params["denoise"] == 0.5  # an int default (1) takes a float: JSON writes 1.0 as 1
    assert params["flag"] is False
    assert params["prefix"] == "7"
    assert typed("height=9", info=None) == {"height": 9}


def test_declared_int_is_strict_but_a_default_int_is_not() -> None:
    with pytest.raises(UsageError, match="takes an integer"):
        typed("seed=0.5")
    with pytest.raises(UsageError, match="takes a number"):
        typed("height=tall", info=None)


def test_linked_param_and_unknown_name_stay_text() -> None:
    assert typed("linked=42", "nope=3") == {"linked": "42", "nope": "3"}


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("YES", True), ("on", True), ("1", True), ("false", False), ("0", False)],
)
def test_booleans(text: str, value: bool) -> None:
    assert coerce("flag", text, "bool") is value


@pytest.mark.parametrize(
    ("item", "message"),
    [("width=abc", "takes an integer"), ("cfg=x", "takes a number"), ("flag=maybe", "boolean")],
)
def test_bad_values_name_the_param(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        typed(item)
    assert info.value.code == 2
    assert repr(item.split("=", maxsplit=1)[0]) in str(info.value)


@pytest.mark.parametrize("item", ["width", "=3", " =3"])
def test_malformed_assignments(item: str) -> None:
    with pytest.raises(UsageError, match="name=value"):
        parse_assignment(item)


def test_value_may_contain_equals() -> None:
    assert parse_assignment("prefix=a=b") == ("prefix", "a=b")


def test_at_file_uploads_media_and_reads_text(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG")
    (tmp_path / "prefix.txt").write_text("from a file\n", "utf-8")
    (tmp_path / "width.txt").write_text(" 32\n", "utf-8")
    params = typed(f"image=@{photo}", f"prefix=@{tmp_path / 'prefix.txt'}",
                   f"width=@{tmp_path / 'width.txt'}")  # fmt: skip
    assert params == {"image": photo, "prefix": "from a file", "width": 32}
    assert isinstance(params["image"], Path)


def test_at_at_is_a_literal_and_plain_media_values_stay_text() -> None:
    assert typed("prefix=@@home", "image=server.png") == {"prefix": "@home", "image": "server.png"}


def test_missing_at_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        typed(f"image=@{tmp_path / 'none.png'}")
    with pytest.raises(UsageError, match="cannot read"):
        typed(f"prefix=@{tmp_path / 'none.txt'}")


def test_params_file_then_p_wins(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"width": 10, "prefix": "file", "flag": True}), "utf-8")
    params = build_params(["width=20"], str(path), SIGNATURE, OBJECT_INFO)
    assert params == {"width": 20, "prefix": "file", "flag": True}


@pytest.mark.parametrize(("content", "message"), [("[1]", "JSON object"), ("{", "not valid JSON")])
def test_bad_params_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content, "utf-8")
    with pytest.raises(UsageError, match=message):
        build_params([], str(path), SIGNATURE, OBJECT_INFO)
    with pytest.raises(UsageError, match="cannot read"):
        build_params([], str(tmp_path / "missing.json"), SIGNATURE, OBJECT_INFO)


def test_declared_type_edge_cases() -> None:
    info = {"N": {"input": {"optional": {"b": ["BOOLEAN"], "c": ["COMBO", {}], "i": ["IMAGE"]}}}}
    assert declared_type("N", "b", info) == "bool"
    assert declared_type("N", "c", info) == "str"
    assert declared_type("N", "i", info) is None
    assert declared_type("N", "zz", info) is None
    assert declared_type("Other", "b", info) is None
    assert declared_type("N", "b", None) is None

"""witness.core.dsl: every grammar form and every no-silent-failure rule."""

from __future__ import annotations

import copy
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from witness.core.dsl import (
    KNOWN_OUTPUT_CLASSES,
    OutputSpec,
    Param,
    ParamTarget,
    Signature,
    apply,
    is_output_node,
    media_input_of,
    parse,
    parse_title,
)
from witness.errors import (
    DSLError,
    InvalidArgumentError,
    MissingParamError,
    ParamError,
    UnknownParamError,
    UploadError,
    WorkflowFormatError,
)

OBJECT_INFO_PATH = Path("/work/shared/reference/object_info-0.3.75.json")


def node(class_type: str, title: str | None = None, **inputs: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"class_type": class_type, "inputs": inputs}
    if title is not None:
        data["_meta"] = {"title": title}
    return data


def basic() -> dict[str, Any]:
    """EmptyImage (two params) → ImageInvert → SaveImage (named output)."""
    return {
        "1": node(
            "EmptyImage", "Canvas, $width!, $height", width=64, height=32, batch_size=1, color=0
        ),
        "2": node("ImageInvert", None, image=["1", 0]),
        "3": node("SaveImage", "Result, $output.result", images=["2", 0], filename_prefix="x"),
    }


@pytest.fixture(scope="module")
def object_info() -> dict[str, Any]:
    if not OBJECT_INFO_PATH.exists():  # pragma: no cover - reference file ships with the repo
        pytest.skip("object_info reference missing")
    return json.loads(OBJECT_INFO_PATH.read_text())


# ------------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("$width", ("width", "width", False, False, None)),
        ("$size.width", ("size", "width", False, False, None)),
        ("$width!", ("width", "width", True, False, None)),
        ("$~photo", ("photo", "photo", False, True, None)),
        ("$~photo!", ("photo", "photo", True, True, None)),
        ("$photo.~image!", ("photo", "image", True, True, None)),
        ("$~photo.~image", ("photo", "image", False, True, None)),
        ("$prompt.text!:the prompt", ("prompt", "text", True, False, "the prompt")),
        ("$prompt:  described  ", ("prompt", "prompt", False, False, "described")),
        ("$p:", ("p", "p", False, False, None)),
        ("$_x-y.a_b", ("_x-y", "a_b", False, False, None)),
        ("$m.double_layers.0.", ("m", "double_layers.0.", False, False, None)),
        ("$m.2x", ("m", "2x", False, False, None)),
    ],
)
def test_param_marker_grammar(marker: str, expected: tuple[Any, ...]) -> None:
    (parsed,) = parse_title(marker).markers
    got = (parsed.name, parsed.field, parsed.required, parsed.upload, parsed.description)
    assert got == expected
    assert parsed.output is False


def test_output_marker_grammar() -> None:
    title = parse_title("Result, $output.cover")
    assert title.label == ("Result",)
    (marker,) = title.markers
    assert marker.output
    assert marker.name == "cover"
    assert marker.field is None


def test_several_markers_and_display_text() -> None:
    title = parse_title(" Size , $width!, $height! ,, extra words ")
    assert title.label == ("Size", "extra words")
    assert [(m.name, m.required) for m in title.markers] == [("width", True), ("height", True)]


def test_dollar_inside_a_part_is_display_text() -> None:
    title = parse_title("costs 5$, price $5x")
    assert title.markers == ()
    assert title.label == ("costs 5$", "price $5x")


@pytest.mark.parametrize(
    "marker",
    [
        "$",
        "$!",
        "$~",
        "$.x",
        "$a.",
        "$a..b",
        "$a!.b",
        "$a!!",
        "$a b",
        "$9lives",
        "$a.b c ",
        "$a.b$",
        "$a~b",
        "$a.b~c",
        "$a.~",
        "$wid th",
        "$é",
        "$output",
        "$output!",
        "$output.x!",
        "$~output.x",
        "$output.~x",
        "$output.9",
        "$output.a.b",
        "$output.",
    ],
)
def test_malformed_markers_raise_dsl_error_naming_node_and_title(marker: str) -> None:
    wf = {"7": node("EmptyImage", f"Label, {marker}", width=1, height=1, batch_size=1, color=0)}
    with pytest.raises(DSLError) as info:
        parse(wf)
    assert info.value.node_id == "7"
    assert info.value.title == f"Label, {marker}"
    assert "node 7" in str(info.value)
    assert repr(marker.strip()) in str(info.value)


# ------------------------------------------------------------------------------- parse


def test_parse_basic_signature() -> None:
    sig = parse(basic())
    assert list(sig.params) == ["width", "height"]
    width = sig.params["width"]
    assert width.required
    assert width.node_ids == ("1",)
    assert width.fields == ("width",)
    assert width.default == 64
    assert not width.upload
    assert width.targets[0].label == "Canvas"
    assert sig.params["height"].required is False
    assert sig.outputs == (OutputSpec("result", "3", "SaveImage", True),)
    assert sig.required == ("width",)


def test_field_missing_on_node_is_dsl_error() -> None:
    wf = {"10": node("LoadImage", "$~input_image!", image="example.png")}
    with pytest.raises(DSLError) as info:
        parse(wf)
    message = str(info.value)
    assert "input_image" in message
    assert "image" in message  # lists the inputs it does have
    assert info.value.node_id == "10"


def test_field_declared_in_object_info_but_absent_is_accepted(object_info: dict[str, Any]) -> None:
    wf = {"1": node("KSampler", "$denoise", seed=1)}
    with pytest.raises(DSLError):
        parse(wf)
    sig = parse(wf, object_info=object_info)
    target = sig.params["denoise"].targets[0]
    assert target.default is None
    assert target.linked is False


def test_field_unknown_even_to_object_info_is_error(object_info: dict[str, Any]) -> None:
    wf = {"1": node("KSampler", "$nope", seed=1)}
    with pytest.raises(DSLError, match="nope"):
        parse(wf, object_info=object_info)


def test_linked_target_has_no_default() -> None:
    wf = {
        "1": node("EmptyImage", None, width=8, height=8, batch_size=1, color=0),
        "2": node("ImageScale", "$w.width", image=["1", 0], width=["5", 0], height=8),
    }
    wf["5"] = node("PrimitiveInt", None, value=3)
    target = parse(wf).params["w"].targets[0]
    assert target.linked
    assert target.default is None


def test_wrapped_list_default_is_unwrapped() -> None:
    wf = {"1": node("Custom", "$pts", pts={"__value__": [1, 2]})}
    assert parse(wf).params["pts"].default == [1, 2]


def test_one_param_on_several_nodes_is_required_if_any_marker_is() -> None:
    wf = {
        "1": node("EmptyImage", "$width", width=178, height=8, batch_size=1, color=0),
        "2": node("EmptyImage", "$width!", width=218, height=8, batch_size=1, color=0),
    }
    param = parse(wf).params["width"]
    assert param.required
    assert [t.required for t in param.targets] == [False, True]
    assert [t.default for t in param.targets] == [178, 218]
    assert param.node_ids == ("1", "2")


def test_two_params_on_one_input_is_dsl_error() -> None:
    wf = {"1": node("EmptyImage", "$a.width, $b.width", width=1, height=1, batch_size=1, color=0)}
    with pytest.raises(DSLError, match="both"):
        parse(wf)


def test_same_marker_repeated_is_merged() -> None:
    wf = {
        "1": node(
            "EmptyImage", "$w.width, $w.width!:desc", width=1, height=1, batch_size=1, color=0
        )
    }
    param = parse(wf).params["w"]
    assert len(param.targets) == 1
    assert param.required
    assert param.description == "desc"


def test_output_named_on_any_node_together_with_params() -> None:
    wf = {
        "1": node(
            "EmptyImage", "Source, $output.raw, $w.width", width=1, height=1, batch_size=1, color=0
        ),
        "2": node(
            "SaveImage",
            "$prefix.filename_prefix, $output.saved",
            images=["1", 0],
            filename_prefix="p",
        ),
    }
    sig = parse(wf)
    assert [(o.name, o.node_id, o.explicit) for o in sig.outputs] == [
        ("raw", "1", True),
        ("saved", "2", True),
    ]
    assert sig.params["prefix"].targets[0].field == "filename_prefix"  # params on Save* nodes work


def test_unnamed_output_nodes_are_keyed_by_node_id() -> None:
    wf = {
        "1": node("EmptyImage", None, width=1, height=1, batch_size=1, color=0),
        "2": node("PreviewImage", None, images=["1", 0]),
        "3": node("SaveImage", "Plain title", images=["1", 0], filename_prefix="p"),
        "4": node("SaveLatent", None, samples=["9", 0], filename_prefix="l"),
    }
    sig = parse(wf)
    assert [(o.name, o.node_id, o.explicit) for o in sig.outputs] == [
        ("2", "2", False),
        ("3", "3", False),
        ("4", "4", False),
    ]


def test_output_nodes_from_object_info(object_info: dict[str, Any]) -> None:
    wf = {
        "1": node("SaveAudioOpus", None, audio=["2", 0]),
        "2": node("MyCustomSaver", None),
        "3": node("VHS_VideoCombine", None),
    }
    assert [o.node_id for o in parse(wf).outputs] == ["1", "3"]
    custom = {**object_info, "MyCustomSaver": {"input": {}, "output_node": True}}
    assert [o.node_id for o in parse(wf, object_info=custom).outputs] == ["1", "2", "3"]
    assert is_output_node("SaveImage")
    assert not is_output_node("EmptyImage", object_info)
    assert "SaveVideo" in KNOWN_OUTPUT_CLASSES


def test_duplicate_output_names_are_all_kept_in_order() -> None:
    wf = {
        "1": node("EmptyImage", None, width=1, height=1, batch_size=1, color=0),
        "5": node("SaveImage", "$output.fast", images=["1", 0], filename_prefix="a"),
        "6": node("SaveImage", "$output.fast", images=["1", 0], filename_prefix="b"),
    }
    sig = parse(wf)
    assert [(o.name, o.node_id) for o in sig.outputs] == [("fast", "5"), ("fast", "6")]
    assert sig.output_names_by_node() == {"5": ["fast"], "6": ["fast"]}


def test_one_node_with_two_output_names() -> None:
    wf = {"1": node("SaveImage", "$output.a, $output.b", images=["2", 0], filename_prefix="x")}
    assert parse(wf).output_names_by_node() == {"1": ["a", "b"]}


def test_media_loaders_are_uploads_without_tilde() -> None:
    wf = {
        "1": node("LoadImage", "$image", image="example.png"),
        "2": node("LoadImageMask", "$mask.image, $channel", image="m.png", channel="alpha"),
        "3": node("LoadAudio", "$audio!", audio="a.wav"),
        "4": node("LoadVideo", "$clip.file", file="v.mp4"),
        "5": node("VHS_LoadVideo", "$vid.video", video="v.mp4", frame_load_cap=0),
        "6": node("VHS_LoadAudioUpload", "$au.audio", audio="a.wav"),
        "7": node("LoadImageOutput", "$prev.image", image="o.png [output]"),
    }
    sig = parse(wf)
    kinds = {name: (p.upload, p.media_kind) for name, p in sig.params.items()}
    assert kinds == {
        "image": (True, "image"),
        "mask": (True, "mask"),
        "channel": (False, None),
        "audio": (True, "audio"),
        "clip": (True, "video"),
        "vid": (True, "video"),
        "au": (True, "audio"),
        "prev": (True, "image"),
    }
    assert sig.params["image"].targets[0].media_folder == "input"
    assert sig.params["prev"].targets[0].media_folder == "output"
    assert sig.params["channel"].targets[0].media_folder is None
    assert sig.params["image"].default == "example.png"


def test_tilde_on_any_node_is_an_upload_without_kind() -> None:
    wf = {"1": node("CustomLoader", "$~file.path", path="a.bin")}
    param = parse(wf).params["file"]
    assert param.upload
    assert param.media_kind is None
    assert param.targets[0].media_folder == "input"


def test_upload_flags_in_object_info(object_info: dict[str, Any]) -> None:
    assert media_input_of("LoadImage", "image") is not None
    assert media_input_of("LoadImage", "other") is None
    info = {"MyLoader": {"input": {"required": {"clip": [[], {"video_upload": True}]}}}}
    loader = media_input_of("MyLoader", "clip", info)
    assert loader is not None
    assert loader.kind == "video"
    wf = {"1": node("MyLoader", "$clip", clip="a.mp4")}
    assert parse(wf, object_info=info).params["clip"].media_kind == "video"
    assert parse(wf).params["clip"].upload is False
    out = media_input_of("LoadImageOutput", "image", object_info)
    assert out is not None
    assert out.folder == "output"


def test_nodes_without_titles_or_meta_are_fine() -> None:
    wf = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 1}, "_meta": {}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 1}, "_meta": {"title": None}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 1}, "_meta": "junk"},
    }
    sig = parse(wf)
    assert dict(sig.params) == {}
    assert sig.outputs == ()


def test_describe_is_json_friendly() -> None:
    description = parse(basic()).describe()
    json.dumps(description)
    assert description["params"]["width"]["node_ids"] == ["1"]
    assert description["params"]["width"]["field"] == "width"
    assert description["params"]["width"]["required"] is True
    assert description["params"]["width"]["default"] == 64
    assert description["outputs"] == [
        {"name": "result", "node_id": "3", "class_type": "SaveImage", "explicit": True}
    ]


def test_signature_params_are_read_only() -> None:
    sig = parse(basic())
    with pytest.raises(TypeError):
        sig.params["x"] = sig.params["width"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("workflow", "fragment"),
    [
        ([], "mapping"),
        ({}, "empty"),
        ({"nodes": [], "links": []}, "UI-format"),
        ({1: node("EmptyImage")}, "strings"),
        ({"1": "EmptyImage"}, "node '1'"),
        ({"1": {"inputs": {}}}, "node '1' has no 'class_type'"),
        ({"1": {"class_type": "", "inputs": {}}}, "class_type"),
        ({"1": {"class_type": "X"}}, r"node '1' \(X\) has no 'inputs'"),
        ({"1": {"class_type": "X", "inputs": [1]}}, "inputs"),
    ],
)
def test_parse_rejects_non_api_workflows(workflow: Any, fragment: str) -> None:
    with pytest.raises(WorkflowFormatError, match=fragment):
        parse(workflow)


# ------------------------------------------------------------------------------- apply


def test_apply_sets_values_and_returns_a_new_prompt() -> None:
    wf = basic()
    before = copy.deepcopy(wf)
    sig = parse(wf)
    prompt = apply(wf, sig, {"width": 100, "height": 50})
    assert wf == before  # never mutated
    assert prompt["1"]["inputs"]["width"] == 100
    assert prompt["1"]["inputs"]["height"] == 50
    assert prompt["2"]["inputs"]["image"] == ["1", 0]
    assert prompt["1"]["_meta"] == wf["1"]["_meta"]
    prompt["2"]["inputs"]["image"].append("mutated")
    assert wf["2"]["inputs"]["image"] == ["1", 0]


def test_apply_writes_values_verbatim() -> None:
    sig = parse(basic())
    prompt = apply(basic(), sig, {"width": "140", "height": 64.7})
    assert prompt["1"]["inputs"]["width"] == "140"
    assert prompt["1"]["inputs"]["height"] == 64.7


def test_apply_wraps_literal_lists() -> None:
    wf = {"1": node("Custom", "$pts, $tags", pts=[], tags="a")}
    wf["1"]["inputs"]["pts"] = {"__value__": []}
    sig = parse(wf)
    value = [1, 2]
    prompt = apply(wf, sig, {"pts": value, "tags": ("a", "b")})
    assert prompt["1"]["inputs"]["pts"] == {"__value__": [1, 2]}
    assert prompt["1"]["inputs"]["tags"] == {"__value__": ["a", "b"]}
    value.append(3)
    assert prompt["1"]["inputs"]["pts"] == {"__value__": [1, 2]}  # copied


def test_unset_optional_keeps_each_nodes_own_default() -> None:
    wf = {
        "1": node("EmptyImage", "$width", width=178, height=8, batch_size=1, color=0),
        "2": node("EmptyImage", "$width", width=218, height=8, batch_size=1, color=0),
    }
    sig = parse(wf)
    prompt = apply(wf, sig, {})
    assert prompt["1"]["inputs"]["width"] == 178
    assert prompt["2"]["inputs"]["width"] == 218
    prompt = apply(wf, sig, {"width": 5})
    assert prompt["1"]["inputs"]["width"] == 5
    assert prompt["2"]["inputs"]["width"] == 5


def test_required_on_one_node_makes_the_param_required() -> None:
    wf = {
        "1": node("EmptyImage", "$width", width=178, height=8, batch_size=1, color=0),
        "2": node("EmptyImage", "$width!", width=218, height=8, batch_size=1, color=0),
    }
    with pytest.raises(MissingParamError):
        apply(wf, parse(wf), None)


def test_missing_required_params_are_all_named() -> None:
    wf = {
        "1": node(
            "EmptyImage", "$width!, $height!, $color", width=1, height=1, batch_size=1, color=0
        )
    }
    with pytest.raises(MissingParamError) as info:
        apply(wf, parse(wf), {"color": 3})
    assert info.value.names == ("width", "height")
    assert "width" in str(info.value)
    assert "height" in str(info.value)


def test_required_given_as_none_is_missing() -> None:
    sig = parse(basic())
    with pytest.raises(MissingParamError, match="given as None"):
        apply(basic(), sig, {"width": None})


def test_optional_given_as_none_keeps_default() -> None:
    sig = parse(basic())
    prompt = apply(basic(), sig, {"width": 1, "height": None})
    assert prompt["1"]["inputs"]["height"] == 32


def test_unknown_params_are_an_error_listing_known_ones() -> None:
    sig = parse(basic())
    with pytest.raises(UnknownParamError) as info:
        apply(basic(), sig, {"width": 1, "prompt": "x", "steps": 3})
    assert info.value.names == ("prompt", "steps")
    assert info.value.known == ("width", "height")
    assert "width, height" in str(info.value)


def test_unknown_params_error_when_workflow_has_none() -> None:
    wf = {"1": node("EmptyImage", None, width=1)}
    with pytest.raises(UnknownParamError, match="declares no parameters"):
        apply(wf, parse(wf), {"x": 1})


def test_allow_unknown_ignores_them_with_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    sig = parse(basic())
    with caplog.at_level(logging.DEBUG, logger="witness.core.dsl"):
        prompt = apply(basic(), sig, {"width": 2, "prompt": "x"}, allow_unknown=True)
    assert prompt["1"]["inputs"]["width"] == 2
    assert "prompt" not in json.dumps(prompt)
    assert "prompt" in caplog.text


def test_unset_optional_linked_param_leaves_link() -> None:
    wf = {
        "1": node("PrimitiveInt", None, value=3),
        "2": node("EmptyImage", "$w.width", width=["1", 0], height=8, batch_size=1, color=0),
    }
    sig = parse(wf)
    assert apply(wf, sig, {})["2"]["inputs"]["width"] == ["1", 0]
    assert apply(wf, sig, {"w": 9})["2"]["inputs"]["width"] == 9


def test_unset_param_on_absent_input_stays_absent(object_info: dict[str, Any]) -> None:
    wf = {"1": node("KSampler", "$denoise", seed=1)}
    sig = parse(wf, object_info=object_info)
    assert "denoise" not in apply(wf, sig, {})["1"]["inputs"]
    assert apply(wf, sig, {"denoise": 0.5})["1"]["inputs"]["denoise"] == 0.5


def test_values_that_are_not_json_are_param_errors() -> None:
    sig = parse(basic())
    with pytest.raises(ParamError, match="width"):
        apply(basic(), sig, {"width": object()})
    with pytest.raises(ParamError, match="not a string"):
        apply(basic(), sig, {"width": {1: 2}})
    with pytest.raises(InvalidArgumentError):
        apply(basic(), sig, {1: 2})  # type: ignore[dict-item]


def test_signature_of_another_workflow_is_rejected() -> None:
    sig = parse(basic())
    other = {"1": node("LoadImage", None, image="x.png")}
    with pytest.raises(InvalidArgumentError, match="does not belong"):
        apply(other, sig, {"width": 1})


# ------------------------------------------------------------------------------- seeds


def seeded() -> dict[str, Any]:
    return {
        "1": node("KSampler", "$seed", seed=0, steps=1),
        "2": node("SamplerCustom", None, noise_seed=0),
        "3": node("KSampler", None, seed=["9", 0]),
        "4": node("Other", None, seed="0", noise_seed=True),
    }


def test_no_seed_randomisation_by_default() -> None:
    wf = seeded()
    assert apply(wf, parse(wf), {}) == wf


def test_randomize_seeds_replaces_only_seeds_not_given() -> None:
    wf = seeded()
    sig = parse(wf)
    prompt = apply(wf, sig, {}, randomize_seeds=True, rng=random.Random(1))
    assert prompt["1"]["inputs"]["seed"] != 0
    assert prompt["2"]["inputs"]["noise_seed"] != 0
    assert 0 <= prompt["1"]["inputs"]["seed"] <= 2**32 - 1
    assert prompt["3"]["inputs"]["seed"] == ["9", 0]  # links untouched
    assert prompt["4"]["inputs"] == {"seed": "0", "noise_seed": True}  # non-integers untouched
    prompt = apply(wf, sig, {"seed": 0}, randomize_seeds=True, rng=random.Random(1))
    assert prompt["1"]["inputs"]["seed"] == 0  # explicit 0 kept
    assert prompt["2"]["inputs"]["noise_seed"] != 0


def test_randomize_seeds_is_reproducible_with_rng() -> None:
    wf = seeded()
    sig = parse(wf)
    a = apply(wf, sig, {}, randomize_seeds=True, rng=random.Random(7))
    b = apply(wf, sig, {}, randomize_seeds=True, rng=random.Random(7))
    assert a == b


# ------------------------------------------------------------------------------- media


def media_workflow() -> dict[str, Any]:
    return {
        "1": node("LoadImage", "$photo.image!", image="example.png"),
        "2": node("LoadImage", "$photo.image", image="other.png"),
        "3": node("LoadImageOutput", "$photo.image", image="x.png [output]"),
        "4": node("EmptyImage", "$~raw.width", width=1, height=1, batch_size=1, color=0),
    }


def test_resolver_is_called_once_per_param_and_folder() -> None:
    wf = media_workflow()
    sig = parse(wf)
    calls: list[tuple[str, str, str, Any]] = []

    def resolve(param: Param, target: ParamTarget, value: Any) -> str:
        calls.append((param.name, target.node_id, str(target.media_folder), value))
        return f"up_{target.media_folder}.png"

    local = Path("/tmp/some.png")
    prompt = apply(wf, sig, {"photo": local, "raw": b"bytes"}, resolve_media=resolve)
    assert calls == [
        ("photo", "1", "input", local),
        ("photo", "3", "output", local),
        ("raw", "4", "input", b"bytes"),
    ]
    assert prompt["1"]["inputs"]["image"] == "up_input.png"
    assert prompt["2"]["inputs"]["image"] == "up_input.png"
    assert prompt["3"]["inputs"]["image"] == "up_output.png"
    assert prompt["4"]["inputs"]["width"] == "up_input.png"


def test_resolver_receives_str_values_too() -> None:
    wf = media_workflow()
    seen: list[Any] = []

    def resolve(param: Param, target: ParamTarget, value: Any) -> str:
        seen.append(value)
        return "done.png"

    apply(wf, parse(wf), {"photo": "https://example.com/a.png"}, resolve_media=resolve)
    assert seen == ["https://example.com/a.png", "https://example.com/a.png"]


def test_without_resolver_str_is_a_server_name_and_others_fail() -> None:
    wf = media_workflow()
    sig = parse(wf)
    prompt = apply(wf, sig, {"photo": "already_uploaded.png"})
    assert prompt["1"]["inputs"]["image"] == "already_uploaded.png"
    assert prompt["2"]["inputs"]["image"] == "already_uploaded.png"
    with pytest.raises(ParamError, match="photo") as info:
        apply(wf, sig, {"photo": b"\x89PNG"})
    assert "image" in str(info.value)


def test_resolver_must_return_a_name() -> None:
    wf = media_workflow()
    with pytest.raises(UploadError) as info:
        apply(wf, parse(wf), {"photo": "x"}, resolve_media=lambda p, t, v: "")
    assert info.value.param == "photo"


def test_missing_media_param_is_reported_before_any_upload() -> None:
    wf = media_workflow()
    calls: list[Any] = []
    with pytest.raises(MissingParamError):
        apply(wf, parse(wf), {"raw": 1}, resolve_media=lambda p, t, v: calls.append(v) or "x")
    assert calls == []


def test_signature_can_be_built_by_hand() -> None:
    target = ParamTarget("1", "width", "EmptyImage", 1, False, False, False, None)
    sig = Signature({"w": Param("w", (target,), False, False, None)}, ())
    wf = {"1": node("EmptyImage", None, width=1)}
    assert apply(wf, sig, {"w": 3})["1"]["inputs"]["width"] == 3

"""Tests of witness.core.ui_convert: UI-format workflow -> API-format prompt.

Two kinds of test:

* the reference corpus: for every template in ``tests/fixtures/uiconv/templates.json`` the
  output must equal (ignoring ``_meta``) what the official frontend 1.32.9 produced, stored in
  ``tests/fixtures/uiconv/expected/``. The UI workflows themselves come from the test dependency
  ``comfyui-workflow-templates==0.7.25``;
* hand-written adversarial workflows for the rules the corpus does not pin down: bypass and mute
  anywhere, reroute chains, primitives, dynamic prompts, several instances of one subgraph,
  nested subgraphs, and every error.

Plus one integration test that runs a converted workflow on the real test server.
"""

from __future__ import annotations

import copy
import gzip
import importlib.util
import json
import time
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.ui_graph import UIGraph, sd_graph
from witness.core.ui_convert import is_ui_format, process_dynamic_prompt, ui_to_api
from witness.errors import UIConversionError, WorkflowError
from witness.transport.http import HttpClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "uiconv"
TEMPLATES: list[dict[str, Any]] = json.loads((FIXTURES / "templates.json").read_text("utf-8"))
# A template of the same package that needs custom nodes the 0.3.75 server does not have.
AMBIGUOUS_TEMPLATE = (
    "comfyui_workflow_templates_media_video/templates/video_wan2_2_14B_animate.json"
)


@cache
def object_info() -> dict[str, Any]:
    with gzip.open(FIXTURES / "object_info-0.3.75.json.gz", "rt", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def template_file(package_path: str) -> Path:
    package, _, rest = package_path.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install comfyui-workflow-templates==0.7.25)")
    return Path(next(iter(spec.submodule_search_locations))) / rest


def load_template(package_path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(template_file(package_path).read_text("utf-8"))
    return data


def without_meta(prompt: dict[str, Any]) -> dict[str, Any]:
    return {k: {kk: vv for kk, vv in v.items() if kk != "_meta"} for k, v in prompt.items()}


# ------------------------------------------------------------------------------------------
# The reference corpus
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", TEMPLATES, ids=[t["name"] for t in TEMPLATES])
def test_reference_template(entry: dict[str, Any]) -> None:
    workflow = load_template(entry["package_path"])
    if not entry.get("unambiguous", True):
        with pytest.raises(UIConversionError):
            ui_to_api(workflow, object_info())
        return
    expected = json.loads((FIXTURES / "expected" / f"{entry['name']}.api.json").read_text("utf-8"))
    before = copy.deepcopy(workflow)
    got = ui_to_api(workflow, object_info())
    assert without_meta(got) == without_meta(expected)
    assert workflow == before  # pure: the input is not modified
    for node in got.values():
        assert isinstance(node["_meta"]["title"], str)
        assert node["_meta"]["title"]


def test_reference_covers_the_corpus() -> None:
    assert len(TEMPLATES) == 126
    assert {p.name for p in (FIXTURES / "expected").glob("*.api.json")} == {
        f"{t['name']}.api.json" for t in TEMPLATES
    }


def test_template_needing_custom_nodes_is_refused_naming_them() -> None:
    workflow = load_template(AMBIGUOUS_TEMPLATE)
    with pytest.raises(UIConversionError) as err:
        ui_to_api(workflow, object_info())
    assert "Sam2Segmentation" in err.value.class_types
    assert "DWPreprocessor" in err.value.class_types
    assert "107" in err.value.node_ids
    assert "Sam2Segmentation" in str(err.value)
    assert "107" in str(err.value)
    assert isinstance(err.value, WorkflowError)


def test_every_other_template_of_the_package_converts_consistently() -> None:
    """Templates without a reference: convert, and every link points at a sent node."""
    first = template_file(TEMPLATES[0]["package_path"]).parent.parent.parent
    paths = sorted(first.glob("comfyui_workflow_templates_media_*/templates/*.json"))
    converted = 0
    for path in paths:
        workflow = json.loads(path.read_text("utf-8"))
        if not is_ui_format(workflow) or path.name == Path(AMBIGUOUS_TEMPLATE).name:
            continue
        prompt = ui_to_api(workflow, object_info())
        for node in prompt.values():
            assert node["class_type"] in object_info()
            for value in node["inputs"].values():
                if isinstance(value, list):
                    assert value[0] in prompt
        converted += 1
    assert converted >= 185


# ------------------------------------------------------------------------------------------
# A small builder for hand-written UI workflows
# ------------------------------------------------------------------------------------------


NOW = datetime(2026, 3, 7, 9, 5, 4)


def convert(ui: UIGraph, *, seed: int | None = None, now: datetime = NOW) -> dict[str, Any]:
    return ui_to_api(ui.workflow(), object_info(), seed=seed, now=now)


# ------------------------------------------------------------------------------------------
# Widgets
# ------------------------------------------------------------------------------------------


def test_basic_graph_widgets_links_and_titles() -> None:
    ui = UIGraph()
    sd_graph(ui)
    ui.nodes[1]["title"] = "Positive $prompt"
    out = convert(ui)
    assert set(out) == {"1", "2", "3", "4", "5", "6", "7"}
    assert out["5"]["inputs"] == {
        "seed": 42,
        "steps": 20,
        "cfg": 7.5,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1,
        "model": ["1", 0],
        "positive": ["2", 0],
        "negative": ["3", 0],
        "latent_image": ["4", 0],
    }
    assert "control_after_generate" not in out["5"]["inputs"]
    assert out["6"]["inputs"] == {"samples": ["5", 0], "vae": ["1", 2]}
    assert out["2"]["_meta"] == {"title": "Positive $prompt"}
    assert out["3"]["_meta"] == {"title": "CLIP Text Encode (Prompt)"}
    assert out["5"]["class_type"] == "KSampler"


def test_upload_button_is_stored_not_sent_and_short_values_use_defaults() -> None:
    ui = UIGraph()
    ui.node(1, "LoadImage", outputs=["IMAGE", "MASK"], widgets=["cat.png", "image"])
    ui.node(2, "KSampler", outputs=["LATENT"], widgets=[7])  # the rest: defaults
    out = convert(ui)
    assert out["1"]["inputs"] == {"image": "cat.png"}
    assert out["2"]["inputs"]["seed"] == 7
    assert out["2"]["inputs"]["steps"] == 20
    assert out["2"]["inputs"]["sampler_name"] == "euler"


def test_linked_widget_input_takes_the_link_and_list_values_are_wrapped() -> None:
    ui = UIGraph()
    ui.node(1, "PrimitiveInt", outputs=["INT"], widgets=[99, "fixed"])
    ui.node(2, "EmptyLatentImage", outputs=["LATENT"], widgets=[[1, 2], 512, 1])
    ui.link(1, 0, 2, "width")
    out = convert(ui)
    assert out["2"]["inputs"]["width"] == ["1", 0]
    ui2 = UIGraph()
    ui2.node(2, "EmptyLatentImage", outputs=["LATENT"], widgets=[[1, 2], 512, 1])
    assert convert(ui2)["2"]["inputs"]["width"] == {"__value__": [1, 2]}


def test_dict_widgets_values_are_read_by_name() -> None:
    ui = UIGraph()
    ui.node(1, "EmptyLatentImage", outputs=["LATENT"], widgets={"height": 64, "width": 32})
    assert convert(ui)["1"]["inputs"] == {"width": 32, "height": 64, "batch_size": 1}


def test_virtual_nodes_are_not_sent() -> None:
    ui = UIGraph()
    ui.node(1, "Note", widgets=["hello"])
    ui.node(2, "MarkdownNote", widgets=["# hi"])
    ui.node(3, "EmptyLatentImage", outputs=["LATENT"], widgets=[8, 8, 1])
    assert set(convert(ui)) == {"3"}


# ------------------------------------------------------------------------------------------
# Mute, bypass, reroute, primitive
# ------------------------------------------------------------------------------------------


def test_muted_node_is_left_out_with_every_input_linked_to_it() -> None:
    ui = UIGraph()
    sd_graph(ui)
    ui.nodes[3]["mode"] = 2  # EmptyLatentImage muted
    out = convert(ui)
    assert "4" not in out
    assert "latent_image" not in out["5"]["inputs"]


def test_muted_node_linked_to_a_widget_input_drops_the_widget_value_too() -> None:
    ui = UIGraph()
    ui.node(1, "PrimitiveInt", outputs=["INT"], widgets=[99, "fixed"], mode=2)
    ui.node(2, "EmptyLatentImage", outputs=["LATENT"], widgets=[64, 64, 1])
    ui.link(1, 0, 2, "width")
    assert convert(ui)["2"]["inputs"] == {"height": 64, "batch_size": 1}


def test_bypassed_node_passes_the_type_matched_input_through() -> None:
    ui = UIGraph()
    sd_graph(ui)
    # A LoRA loader (MODEL, CLIP in; MODEL, CLIP out) between checkpoint and sampler, bypassed.
    ui.node(8, "LoraLoader", inputs=[("model", "MODEL"), ("clip", "CLIP")],
            outputs=["MODEL", "CLIP"], widgets=["l.safetensors", 1, 1], mode=4)  # fmt: skip
    model_link = next(x for x in ui.links if x[3] == 5 and x[4] == 0)
    model_link[1], model_link[2] = 8, 1  # KSampler.model <- LoRA output 1 (CLIP slot!)
    ui.link(1, 0, 8, "model")
    ui.link(1, 1, 8, "clip")
    out = convert(ui)
    assert "8" not in out
    # output slot 1 is CLIP, but the wanted type is MODEL: the MODEL input is passed through
    assert out["5"]["inputs"]["model"] == ["1", 0]


def test_bypassed_chain_with_reroutes_in_between() -> None:
    ui = UIGraph()
    ui.node(1, "LoadImage", outputs=["IMAGE", "MASK"], widgets=["a.png", "image"])
    ui.node(2, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.node(3, "ImageInvert", inputs=[("image", "IMAGE")], outputs=["IMAGE"], mode=4)
    ui.node(4, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.node(5, "ImageInvert", inputs=[("image", "IMAGE")], outputs=["IMAGE"], mode=4)
    ui.node(6, "SaveImage", inputs=[("images", "IMAGE")], widgets=["x"])
    ui.link(1, 0, 2, "")
    ui.link(2, 0, 3, "image")
    ui.link(3, 0, 4, "")
    ui.link(4, 0, 5, "image")
    ui.link(5, 0, 6, "images")
    assert convert(ui) == {
        "1": {"inputs": {"image": "a.png"}, "class_type": "LoadImage",
              "_meta": {"title": "Load Image"}},
        "6": {"inputs": {"filename_prefix": "x", "images": ["1", 0]}, "class_type": "SaveImage",
              "_meta": {"title": "Save Image"}},
    }  # fmt: skip


def test_bypassed_node_without_matching_input_drops_the_link_keeps_the_widget() -> None:
    ui = UIGraph()
    ui.node(1, "PrimitiveInt", outputs=["INT"], widgets=[5, "fixed"], mode=4)
    ui.node(2, "EmptyLatentImage", outputs=["LATENT"], widgets=[64, 32, 1])
    ui.link(1, 0, 2, "width")
    assert convert(ui)["2"]["inputs"] == {"width": 64, "height": 32, "batch_size": 1}


def test_reroute_without_input_leaves_the_input_out() -> None:
    ui = UIGraph()
    ui.node(1, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.node(2, "VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=["IMAGE"])
    ui.link(1, 0, 2, "samples")
    assert convert(ui)["2"]["inputs"] == {}


def test_primitive_node_value_reaches_widgets_also_through_a_reroute() -> None:
    ui = UIGraph()
    ui.node(1, "PrimitiveNode", outputs=["INT"], widgets=[777, "fixed"])
    ui.node(2, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.node(3, "EmptyLatentImage", outputs=["LATENT"], widgets=[64, 64, 1])
    ui.node(4, "EmptyLatentImage", outputs=["LATENT"], widgets=[64, 64, 1])
    ui.link(1, 0, 3, "width")
    ui.link(1, 0, 2, "")
    ui.link(2, 0, 4, "height")
    out = convert(ui)
    assert set(out) == {"3", "4"}
    assert out["3"]["inputs"] == {"width": 777, "height": 64, "batch_size": 1}
    # frontend 1.32.9 loses the value behind a Reroute; the workflow means 777
    assert out["4"]["inputs"] == {"width": 64, "height": 777, "batch_size": 1}


# ------------------------------------------------------------------------------------------
# Dynamic prompts
# ------------------------------------------------------------------------------------------


def test_dynamic_prompt_first_option_and_comment_stripping() -> None:
    text = "a {red|green|blue} {cat|{small|big} dog} // a comment\n/* block */ end \\{x\\}"
    assert process_dynamic_prompt(text) == "a red cat \n end {x}"


def test_dynamic_prompt_seed_is_reproducible_and_varies() -> None:
    text = "{a|b|c|d|e|f|g|h} {1|2|3|4|5|6|7|8}"
    picks = {seed: (ui_text := _convert_text(text, seed)) for seed in range(20)}
    assert all(_convert_text(text, s) == p for s, p in picks.items())
    assert len(set(picks.values())) > 5
    assert ui_text.count(" ") == 1


def _convert_text(text: str, seed: int | None) -> str:
    ui = UIGraph()
    ui.node(1, "CLIPTextEncode", outputs=["CONDITIONING"], widgets=[text])
    value: str = convert(ui, seed=seed)["1"]["inputs"]["text"]
    return value


def test_dynamic_prompts_only_apply_to_widgets_that_ask_for_them() -> None:
    ui = UIGraph()
    ui.node(1, "CLIPTextEncode", outputs=["CONDITIONING"], widgets=["{x|y} // c"])
    ui.node(2, "SaveImage", inputs=[("images", "IMAGE")], widgets=["{x|y} // c"])
    out = convert(ui)
    assert out["1"]["inputs"]["text"] == "x "
    assert out["2"]["inputs"]["filename_prefix"] == "{x|y} // c"


def test_primitive_text_into_a_dynamic_prompt_widget_is_processed_by_the_target() -> None:
    ui = UIGraph()
    ui.node(1, "PrimitiveNode", outputs=["STRING"], widgets=["{one|two} /* no */"])
    ui.node(2, "CLIPTextEncode", outputs=["CONDITIONING"], widgets=["unused"])
    ui.link(1, 0, 2, "text")
    assert convert(ui)["2"]["inputs"]["text"] == "one "


# ------------------------------------------------------------------------------------------
# Widget text replacements (%Node.widget%, %date:...%) as frontend 1.32.9 applies them
# ------------------------------------------------------------------------------------------


def prefix_of(ui: UIGraph, node_id: str = "7", **kwargs: Any) -> Any:
    return convert(ui, **kwargs)[node_id]["inputs"]["filename_prefix"]


def sd_with_prefix(prefix: str) -> UIGraph:
    ui = UIGraph()
    sd_graph(ui)
    ui.nodes[6]["widgets_values"] = [prefix]
    return ui


def test_filename_prefix_widget_and_date_tokens() -> None:
    ui = sd_with_prefix("run/%KSampler.seed%_%KSampler.cfg%_%date:yyyy-MM-dd_hh-mm-ss%")
    assert prefix_of(ui) == "run/42_7.5_2026-03-07_09-05-04"
    assert prefix_of(ui, now=datetime(1999, 12, 31, 23, 59, 58)).endswith("1999-12-31_23-59-58")


def test_values_are_javascript_strings_with_unsafe_characters_replaced() -> None:
    ui = sd_with_prefix("%KSampler.cfg%|%KSampler.control_after_generate%|%CLIPTextEncode.text%")
    ui.nodes[4]["widgets_values"][3] = 8.0
    ui.nodes[1]["widgets_values"] = ['a/cat: "yes"?\n\t<ok>*']
    assert prefix_of(ui) == "8|randomize|a_cat_ _yes_____ok__"  # literal "|" kept


def test_several_matches_take_the_first_node_in_graph_order() -> None:
    ui = sd_with_prefix("%CLIPTextEncode.text%")
    ui.nodes[1]["widgets_values"] = ["first"]
    ui.nodes[2]["widgets_values"] = ["second"]
    ui.nodes[1], ui.nodes[2] = ui.nodes[2], ui.nodes[1]  # order in the file, not by id
    assert prefix_of(ui) == "second"


def test_no_match_or_missing_widget_leaves_the_token() -> None:
    ui = sd_with_prefix("%Nope.seed%_%KSampler.nope%_%width%_%a.b.c%_100%")
    assert prefix_of(ui) == "%Nope.seed%_%KSampler.nope%_%width%_%a.b.c%_100%"


def test_search_name_then_title_and_the_defaults_of_both() -> None:
    ui = sd_with_prefix("%Sampler A.steps%_%KSampler.seed%_%Load Checkpoint.ckpt_name%")
    sampler = ui.nodes[4]
    sampler["title"] = "Sampler A"
    del sampler["properties"]["Node name for S&R"]  # the frontend gives it the type again
    del ui.nodes[0]["properties"]["Node name for S&R"]  # default title: the display name
    assert prefix_of(ui) == "20_42_m.ckpt"
    # a node titled like another node's S&R name loses to that node, even when earlier
    ui.nodes[1]["title"] = "KSampler"
    assert prefix_of(ui) == "20_42_m.ckpt"
    # a custom S&R name replaces the type; the title "KSampler" is then what matches
    sampler["properties"]["Node name for S&R"] = "Sam"
    assert prefix_of(ui) == "20_%KSampler.seed%_m.ckpt"  # node 2 has no widget 'seed'


def test_save_nodes_get_no_default_search_name() -> None:
    ui = UIGraph()
    ui.node(1, "SaveImage", inputs=[("images", "IMAGE")], widgets=["first"])
    ui.node(2, "SaveImage", inputs=[("images", "IMAGE")],
            widgets=["%SaveImage.filename_prefix%-%Save Image.filename_prefix%"])  # fmt: skip
    for node in ui.nodes:
        del node["properties"]["Node name for S&R"]
    # found by the default title only; node 1 comes first and its own value is not replaced
    assert convert(ui)["2"]["inputs"]["filename_prefix"] == "%SaveImage.filename_prefix%-first"


def test_only_the_filename_prefix_of_save_node_types_is_replaced() -> None:
    ui = UIGraph()
    ui.node(1, "CLIPTextEncode", outputs=["CONDITIONING"], widgets=["%date:yyyy%"])
    ui.node(2, "SaveAudioMP3", inputs=[("audio", "AUDIO")], widgets=["%date:yyyy%", "V0"])
    ui.node(3, "SaveLatent", inputs=[("samples", "LATENT")], widgets=["%date:yyyy%"])
    ui.node(4, "SaveAnimatedWEBP", inputs=[("images", "IMAGE")],
            widgets=["%date:yyyy%", 6.0, False, 80, "default"])  # fmt: skip
    out = convert(ui)
    assert out["1"]["inputs"]["text"] == "%date:yyyy%"
    assert out["2"]["inputs"]["filename_prefix"] == "%date:yyyy%"  # not in saveNodeTypes
    assert out["3"]["inputs"]["filename_prefix"] == "2026"
    assert out["4"]["inputs"]["filename_prefix"] == "2026"


def test_muted_nodes_and_virtual_nodes_are_searched_too() -> None:
    ui = sd_with_prefix("%KSampler.steps%_%Note.text%_%Primitive.value%")
    ui.nodes[4]["mode"] = 2
    ui.node(20, "Note", widgets=["note/text"])
    ui.node(21, "PrimitiveNode", outputs=["INT"], widgets=[5, "fixed"])
    for node in ui.nodes[-2:]:
        del node["properties"]["Node name for S&R"]
    assert prefix_of(ui) == "20_note_text_5"


def test_primitive_node_feeding_widgets() -> None:
    ui = sd_with_prefix("%KSampler.seed%")
    ui.node(20, "PrimitiveNode", outputs=["INT"], widgets=[777, "fixed"])
    ui.link(20, 0, 5, "seed")
    ui.node(21, "PrimitiveNode", outputs=["STRING"], widgets=["p_%KSampler.seed%_%date:yy%"])
    ui.link(21, 0, 7, "filename_prefix")
    out = convert(ui)
    assert out["5"]["inputs"]["seed"] == 777
    # the primitive's text reaches the save node, which replaces; the lookup sees 777
    assert out["7"]["inputs"]["filename_prefix"] == "p_777_26"


def test_primitive_with_run_widget_replace_on_values() -> None:
    ui = UIGraph()
    ui.node(1, "CLIPTextEncode", outputs=["CONDITIONING"], widgets=["x"], title="Enc")
    ui.node(2, "PrimitiveNode", outputs=["STRING"], widgets=["%date:yyyy%_%Enc.text%"],
            properties={"Run widget replace on values": True})  # fmt: skip
    ui.node(3, "CLIPTextEncode", outputs=["CONDITIONING"], widgets=["stale"])
    ui.link(2, 0, 3, "text")
    out = convert(ui)
    assert out["3"]["inputs"]["text"] == "2026_x"
    ui.nodes[1]["properties"]["Run widget replace on values"] = False
    assert convert(ui)["3"]["inputs"]["text"] == "%date:yyyy%_%Enc.text%"
    ui.nodes[1]["properties"]["Run widget replace on values"] = True
    ui.nodes[1]["widgets_values"] = [5]
    with pytest.raises(UIConversionError, match="not text"):
        convert(ui)


def test_filename_prefix_that_is_not_text_is_refused() -> None:
    ui = sd_with_prefix("x")
    ui.nodes[6]["widgets_values"] = [12]
    with pytest.raises(UIConversionError) as err:
        convert(ui)
    assert err.value.node_ids == ("7",)
    assert "filename_prefix" in str(err.value)


def test_default_now_is_the_local_time_at_conversion() -> None:
    ui = sd_with_prefix("%date:yyyy-MM-dd%")
    before = datetime.now()
    got = ui_to_api(ui.workflow(), object_info())["7"]["inputs"]["filename_prefix"]
    after = datetime.now()
    assert got in {before.strftime("%Y-%m-%d"), after.strftime("%Y-%m-%d")}


def text_subgraph(prefix: str) -> dict[str, Any]:
    """A subgraph with a KSampler-like seed holder and a SaveImage (its prefix promotable)."""
    inner = UIGraph()
    inner.node(10, "EmptyImage", outputs=["IMAGE"], widgets=[8, 8, 1, 0], title="inner image")
    inner.node(11, "SaveImage", inputs=[("images", "IMAGE")], widgets=[prefix])
    inner.link(10, 0, 11, "images")
    return inner.as_subgraph(SUB, [], [])


def test_subgraph_contents_are_searched_before_the_root_nodes_that_follow() -> None:
    ui = UIGraph()
    ui.subgraphs.append(text_subgraph("in_%EmptyImage.width%_%date:MM%"))
    ui.node(1, SUB, outputs=[])
    ui.node(2, "EmptyImage", outputs=["IMAGE"], widgets=[64, 64, 1, 0])
    ui.node(3, "SaveImage", inputs=[("images", "IMAGE")],
            widgets=["out_%EmptyImage.width%_%inner image.height%"])  # fmt: skip
    ui.link(2, 0, 3, "images")
    out = convert(ui)
    assert out["1:11"]["inputs"]["filename_prefix"] == "in_8_03"
    assert out["3"]["inputs"]["filename_prefix"] == "out_8_8"
    # a root node placed before the instance comes first
    ui.nodes.insert(0, ui.nodes.pop(1))
    assert convert(ui)["3"]["inputs"]["filename_prefix"] == "out_64_8"


def test_a_subgraph_instance_is_found_with_its_promoted_widgets() -> None:
    ui = UIGraph()
    ui.subgraphs.append(latent_subgraph())
    ui.node(5, SUB, outputs=["LATENT"], widgets=[100], title="Latent")
    ui.node(6, SUB, outputs=["LATENT"], widgets=[200])
    del ui.nodes[1]["properties"]["Node name for S&R"]
    ui.node(7, "SaveImage", inputs=[("images", "IMAGE")],
            widgets=["%Latent.width%_%sub " + SUB + ".width%_%inner.height%"])  # fmt: skip
    assert convert(ui)["7"]["inputs"]["filename_prefix"] == "100_200_48"


def test_promoted_filename_prefix_is_sent_as_written_like_the_frontend() -> None:
    inner = UIGraph()
    inner.node(10, "EmptyImage", outputs=["IMAGE"], widgets=[8, 8, 1, 0])
    inner.node(11, "SaveImage", inputs=[("images", "IMAGE")], widgets=["inner %date:yyyy%"])
    inner.link(10, 0, 11, "images")
    prefix_link = inner.link(-10, 0, 11, "filename_prefix")
    ui = UIGraph()
    ui.subgraphs.append(inner.as_subgraph(SUB, [("filename_prefix", "STRING", [prefix_link])], []))
    ui.node(1, SUB, outputs=[], widgets=["outer %date:yyyy%"])
    out = convert(ui)
    assert out["1:11"]["inputs"]["filename_prefix"] == "outer %date:yyyy%"


# ------------------------------------------------------------------------------------------
# Subgraphs
# ------------------------------------------------------------------------------------------

SUB = "11111111-2222-3333-4444-555555555555"
NESTED = "99999999-8888-7777-6666-555555555555"


def latent_subgraph() -> dict[str, Any]:
    """A subgraph: (width: INT promoted) -> EmptyLatentImage -> LATENT output."""
    inner = UIGraph()
    inner.node(10, "EmptyLatentImage", outputs=["LATENT"], widgets=[64, 48, 1], title="inner")
    width_link = inner.link(-10, 0, 10, "width")
    inner.links.append([2, 10, 0, -20, 0, "LATENT"])
    return inner.as_subgraph(SUB, [("width", "INT", [width_link])], [("LATENT", "LATENT", [2])])


def test_two_instances_of_one_subgraph_keep_their_own_values() -> None:
    ui = UIGraph()
    ui.subgraphs.append(latent_subgraph())
    ui.node(5, SUB, outputs=["LATENT"], widgets=[100])
    ui.node(6, SUB, outputs=["LATENT"], widgets=[200])
    ui.node(7, "LatentUpscaleBy", inputs=[("samples", "LATENT")], outputs=["LATENT"],
            widgets=["nearest-exact", 1.5])  # fmt: skip
    ui.node(8, "LatentUpscaleBy", inputs=[("samples", "LATENT")], outputs=["LATENT"],
            widgets=["nearest-exact", 2])  # fmt: skip
    ui.link(5, 0, 7, "samples")
    ui.link(6, 0, 8, "samples")
    out = convert(ui)
    assert set(out) == {"5:10", "6:10", "7", "8"}
    assert out["5:10"]["inputs"] == {"width": 100, "height": 48, "batch_size": 1}
    assert out["6:10"]["inputs"] == {"width": 200, "height": 48, "batch_size": 1}
    assert out["7"]["inputs"]["samples"] == ["5:10", 0]
    assert out["8"]["inputs"]["samples"] == ["6:10", 0]
    assert out["5:10"]["_meta"]["title"] == "inner"


def test_subgraph_input_linked_from_outside_and_from_a_primitive() -> None:
    ui = UIGraph()
    ui.subgraphs.append(latent_subgraph())
    ui.node(1, "PrimitiveInt", outputs=["INT"], widgets=[321, "fixed"])
    ui.node(2, "PrimitiveNode", outputs=["INT"], widgets=[654, "fixed"])
    ui.node(5, SUB, inputs=[("width", "INT")], outputs=["LATENT"], widgets=[100])
    ui.node(6, SUB, inputs=[("width", "INT")], outputs=["LATENT"], widgets=[100])
    ui.link(1, 0, 5, "width")
    ui.link(2, 0, 6, "width")
    out = convert(ui)
    assert out["5:10"]["inputs"]["width"] == ["1", 0]
    assert out["6:10"]["inputs"]["width"] == 654


def test_nested_subgraphs_get_path_ids_and_resolve_through_every_level() -> None:
    ui = UIGraph()
    ui.subgraphs.append(latent_subgraph())
    # NESTED: (w: INT) -> [SUB instance 20] -> ImageInvert? no: LATENT out
    mid = UIGraph()
    mid.node(20, SUB, inputs=[("width", "INT")], outputs=["LATENT"], widgets=[1])
    w_link = mid.link(-10, 0, 20, "width")
    mid.links.append([2, 20, 0, -20, 0, "LATENT"])
    mid.nodes[0]["outputs"][0]["links"].append(2)
    ui.subgraphs.append(mid.as_subgraph(NESTED, [("w", "INT", [w_link])], [("L", "LATENT", [2])]))
    ui.node(30, NESTED, outputs=["LATENT"], widgets=[4096])
    ui.node(31, NESTED, outputs=["LATENT"], widgets=[8192])
    ui.node(40, "LatentUpscaleBy", inputs=[("samples", "LATENT")], outputs=["LATENT"],
            widgets=["nearest-exact", 1.5])  # fmt: skip
    ui.link(31, 0, 40, "samples")
    out = convert(ui)
    assert set(out) == {"30:20:10", "31:20:10", "40"}
    assert out["30:20:10"]["inputs"]["width"] == 4096
    assert out["31:20:10"]["inputs"]["width"] == 8192
    assert out["40"]["inputs"]["samples"] == ["31:20:10", 0]


def test_muted_and_bypassed_subgraph_instances() -> None:
    ui = UIGraph()
    inner = UIGraph()
    inner.node(10, "ImageInvert", inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    in_link = inner.link(-10, 0, 10, "image")
    inner.links.append([2, 10, 0, -20, 0, "IMAGE"])
    ui.subgraphs.append(
        inner.as_subgraph(SUB, [("image", "IMAGE", [in_link])], [("IMAGE", "IMAGE", [2])])
    )
    ui.node(1, "LoadImage", outputs=["IMAGE", "MASK"], widgets=["a.png", "image"])
    ui.node(2, SUB, inputs=[("image", "IMAGE")], outputs=["IMAGE"], mode=4)
    ui.node(3, SUB, inputs=[("image", "IMAGE")], outputs=["IMAGE"], mode=2)
    ui.node(4, SUB, inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    ui.node(5, "SaveImage", inputs=[("images", "IMAGE")], widgets=["bypassed"])
    ui.node(6, "SaveImage", inputs=[("images", "IMAGE")], widgets=["muted"])
    ui.node(7, "SaveImage", inputs=[("images", "IMAGE")], widgets=["active"])
    for instance, save in ((2, 5), (3, 6), (4, 7)):
        ui.link(1, 0, instance, "image")
        ui.link(instance, 0, save, "images")
    out = convert(ui)
    assert set(out) == {"1", "4:10", "5", "6", "7"}
    assert out["5"]["inputs"]["images"] == ["1", 0]  # passed through the bypassed instance
    assert "images" not in out["6"]["inputs"]  # the muted instance sends nothing
    assert out["7"]["inputs"]["images"] == ["4:10", 0]
    assert out["4:10"]["inputs"]["image"] == ["1", 0]


def test_subgraph_output_linked_straight_to_its_input() -> None:
    ui = UIGraph()
    passthrough = UIGraph()
    passthrough.links.append([1, -10, 0, -20, 0, "IMAGE"])
    ui.subgraphs.append(
        passthrough.as_subgraph(SUB, [("image", "IMAGE", [1])], [("IMAGE", "IMAGE", [1])])
    )
    ui.node(1, "LoadImage", outputs=["IMAGE", "MASK"], widgets=["a.png", "image"])
    ui.node(2, SUB, inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    ui.node(3, "SaveImage", inputs=[("images", "IMAGE")], widgets=["p"])
    ui.link(1, 0, 2, "image")
    ui.link(2, 0, 3, "images")
    assert convert(ui)["3"]["inputs"]["images"] == ["1", 0]


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


def test_unknown_node_types_are_named_with_their_ids() -> None:
    ui = UIGraph()
    sd_graph(ui)
    ui.node(20, "MyCustomUpscaler", inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    ui.node(21, "OtherCustomNode")
    with pytest.raises(UIConversionError) as err:
        convert(ui)
    assert err.value.node_ids == ("20", "21")
    assert err.value.class_types == ("MyCustomUpscaler", "OtherCustomNode")
    assert "MyCustomUpscaler" in str(err.value)
    assert "20" in str(err.value)


def test_unknown_node_inside_a_subgraph_is_named_by_its_path() -> None:
    ui = UIGraph()
    inner = UIGraph()
    inner.node(3, "NotOnThisServer")
    ui.subgraphs.append(inner.as_subgraph(SUB, [], []))
    ui.node(9, SUB)
    with pytest.raises(UIConversionError) as err:
        convert(ui)
    assert err.value.node_ids == ("9:3",)


def test_muted_or_bypassed_unknown_node_is_not_an_error() -> None:
    ui = UIGraph()
    ui.node(1, "LoadImage", outputs=["IMAGE", "MASK"], widgets=["a.png", "image"])
    ui.node(2, "CustomFilter", inputs=[("image", "IMAGE")], outputs=["IMAGE"], mode=4)
    ui.node(3, "CustomPreview", inputs=[("image", "IMAGE")], mode=2)
    ui.node(4, "SaveImage", inputs=[("images", "IMAGE")], widgets=["x"])
    ui.link(1, 0, 2, "image")
    ui.link(2, 0, 4, "images")
    ui.link(1, 0, 3, "image")
    assert convert(ui)["4"]["inputs"]["images"] == ["1", 0]


def test_legacy_group_node_gets_its_own_message() -> None:
    ui = UIGraph()
    ui.node(1, "workflow>My Group")
    with pytest.raises(UIConversionError, match="group nodes"):
        convert(ui)


def test_link_from_a_missing_node() -> None:
    ui = UIGraph()
    sd_graph(ui)
    ui.links[0][1] = 404  # CLIPTextEncode 2 <- node 404
    with pytest.raises(UIConversionError) as err:
        convert(ui)
    assert err.value.node_ids == ("2",)
    assert "404" in str(err.value)


def test_input_referring_to_a_missing_link() -> None:
    ui = UIGraph()
    sd_graph(ui)
    ui.nodes[5]["inputs"][0]["link"] = 999
    with pytest.raises(UIConversionError, match="999") as err:
        convert(ui)
    assert err.value.node_ids == ("6",)
    assert err.value.class_types == ("VAEDecode",)


@pytest.mark.parametrize(
    "bad_link", [[1, 2], "x", [None, 1, 0, 2, 0, "CLIP"], [1, 1, "slot", 2, 0, "CLIP"]]
)
def test_malformed_link_records(bad_link: Any) -> None:
    ui = UIGraph()
    sd_graph(ui)
    ui.links.append(bad_link)
    with pytest.raises(UIConversionError, match="link"):
        convert(ui)


def test_link_cycle_through_reroutes_is_an_error_not_a_hang() -> None:
    ui = UIGraph()
    ui.node(1, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.node(2, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.node(3, "VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=["IMAGE"])
    ui.link(1, 0, 2, "")
    ui.link(2, 0, 1, "")
    ui.link(2, 0, 3, "samples")
    with pytest.raises(UIConversionError, match="cycle"):
        convert(ui)


def test_subgraph_that_contains_itself() -> None:
    ui = UIGraph()
    inner = UIGraph()
    inner.node(1, SUB)
    ui.subgraphs.append(inner.as_subgraph(SUB, [], []))
    ui.node(5, SUB)
    with pytest.raises(UIConversionError, match="contains itself"):
        convert(ui)


def test_duplicate_node_ids() -> None:
    ui = UIGraph()
    ui.node(1, "LoadImage", outputs=["IMAGE", "MASK"], widgets=["a.png", "image"])
    ui.node(1, "SaveImage", inputs=[("images", "IMAGE")], widgets=["x"])
    with pytest.raises(UIConversionError, match="used twice"):
        convert(ui)


@pytest.mark.parametrize(
    "workflow",
    [
        {},
        {"nodes": "x"},
        [],
        {"3": {"class_type": "KSampler", "inputs": {}}},
        {"nodes": [{"id": 1}], "links": []},
        {"nodes": [{"type": "X"}], "links": []},
    ],
)
def test_not_a_ui_workflow(workflow: Any) -> None:
    with pytest.raises(UIConversionError):
        ui_to_api(workflow, object_info())


def test_is_ui_format() -> None:
    ui = UIGraph()
    sd_graph(ui)
    assert is_ui_format(ui.workflow())
    assert is_ui_format({"nodes": [], "links": []})
    assert not is_ui_format({"3": {"class_type": "KSampler", "inputs": {}}})
    assert not is_ui_format({"nodes": {"class_type": "X", "inputs": {}}})
    assert not is_ui_format([1, 2])
    assert not is_ui_format(None)


# ------------------------------------------------------------------------------------------
# The real server runs what the converter makes
# ------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_converted_workflow_runs_on_the_real_server(http: HttpClient) -> None:
    info = http.request_json("GET", "/object_info")
    ui = UIGraph()
    ui.subgraphs.append(_concat_subgraph())
    ui.node(1, "PrimitiveNode", outputs=["STRING"], widgets=["hello"])
    ui.node(2, "Reroute", inputs=[("", "*")], outputs=["*"])
    ui.node(3, SUB, inputs=[("string_a", "STRING")], outputs=["STRING"], widgets=["x", "world"])
    ui.node(4, "StringConcatenate", inputs=[("string_a", "STRING")], outputs=["STRING"],
            widgets=["", "unused", "-"], mode=4)  # fmt: skip
    ui.node(5, "PreviewAny", inputs=[("source", "*")])
    ui.link(1, 0, 2, "")
    ui.link(2, 0, 3, "string_a")
    ui.link(3, 0, 4, "string_a")
    ui.link(4, 0, 5, "source")
    prompt = ui_to_api(ui.workflow(), info)
    assert set(prompt) == {"3:7", "5"}
    assert prompt["5"]["inputs"]["source"] == ["3:7", 0]
    queued = http.request_json("POST", "/prompt", json={"prompt": prompt})
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + 60
    history: dict[str, Any] = {}
    while time.monotonic() < deadline:
        history = http.request_json("GET", f"/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed"):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the converted prompt did not complete within 60 s")
    try:
        outputs = history[prompt_id]["outputs"]
        assert outputs["5"]["text"] == ["hello + world"]
    finally:
        http.request("POST", "/history", json={"delete": [prompt_id]})


def _concat_subgraph() -> dict[str, Any]:
    inner = UIGraph()
    inner.node(7, "StringConcatenate", outputs=["STRING"], widgets=["a", "b", " + "])
    a_link = inner.link(-10, 0, 7, "string_a")
    b_link = inner.link(-10, 1, 7, "string_b")
    inner.links.append([3, 7, 0, -20, 0, "STRING"])
    return inner.as_subgraph(
        SUB,
        [("string_a", "STRING", [a_link]), ("string_b", "STRING", [b_link])],
        [("STRING", "STRING", [3])],
    )

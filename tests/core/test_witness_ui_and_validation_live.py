"""Witness with UI-format workflows and pre-submit validation, against the real server.

UI workflows (what the editor saves) are hand-written here with the DSL in their node titles:
a reroute, a bypassed node, a muted node, a subgraph (with a param and an output inside it), a
PrimitiveNode feeding two widgets, PrimitiveString -> TestSleep -> PreviewAny. Witness must
detect the format, fetch /object_info once, convert, apply the params and run them.

Validation: ``Witness.validate`` and the automatic check before submit must flag what the
server would reject (same node, same input) before anything is sent, and nothing the server
accepts; a fresh upload or a model that appeared after the cache was built is not a false
positive; ``validate=False`` lets the server answer for itself.
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.comfyui_server import ComfyServer
from tests.core import test_validate_live as side
from tests.runninghub_emulator import png_bytes
from tests.support.ui_graph import UIGraph
from witness import Witness
from witness.api_clients.types import FileRef
from witness.config.settings import Settings
from witness.core.results import ExecuteResult
from witness.core.tracking import ProgressUpdate
from witness.core.validate import NodeCatalog
from witness.errors import (
    PromptValidationError,
    UIConversionError,
    WorkflowFormatError,
    WorkflowValidationError,
)

pytestmark = pytest.mark.integration

SUB = "5ab3c0de-0000-4000-8000-00000000feed"


# -- fixtures ----------------------------------------------------------------------------


class Kit:
    """A Witness on the session server that remembers what it ran, to clean up after."""

    def __init__(self, settings: Settings, server: ComfyServer | None) -> None:
        self.witness = Witness(settings=settings, timeout=120)
        self.server = server
        self.results: list[ExecuteResult] = []
        self.uploads: list[str] = []

    def run(self, workflow: Any, params: dict[str, Any] | None = None, **kw: Any) -> ExecuteResult:
        result = self.witness.execute(workflow, params, **kw)
        self.results.append(result)
        return result

    def close(self) -> None:
        ids = [r.prompt_id for r in self.results if r.prompt_id]
        if ids:
            self.witness.history.delete(ids)
        if self.server is not None:
            for result in self.results:
                for item in result.files:
                    if item.type == "output":
                        (self.server.output_dir / item.subfolder / item.filename).unlink(
                            missing_ok=True
                        )
            for name in self.uploads:
                (self.server.input_dir / name).unlink(missing_ok=True)
        self.witness.close()


@pytest.fixture
def kit(settings: Settings, comfy_server: ComfyServer | None) -> Iterator[Kit]:
    state = Kit(settings, comfy_server)
    try:
        yield state
    finally:
        state.close()


@pytest.fixture
def object_info_calls(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts ``GET /object_info`` calls of the kit's Witness."""
    calls: list[int] = []
    original = kit.witness.system.object_info

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(kit.witness.system, "object_info", counting)
    return calls


# -- UI workflow builder -----------------------------------------------------------------


def basic_ui() -> dict[str, Any]:
    """EmptyImage ($width!, $height, $color) -> ImageInvert -> SaveImage ($output.inverted);
    PrimitiveString ($text) -> TestSleep -> PreviewAny ($output.echo); a muted SaveImage."""
    ui = UIGraph()
    ui.node(1, "EmptyImage", outputs=["IMAGE"], widgets=[8, 8, 1, 0],
            title="Canvas, $width!, $height, $color")  # fmt: skip
    ui.node(2, "ImageInvert", inputs=[("image", "IMAGE")], outputs=["IMAGE"], title="Invert")
    ui.node(3, "SaveImage", inputs=[("images", "IMAGE")], widgets=["witness_ui_basic"],
            title="Result, $output.inverted")  # fmt: skip
    ui.node(4, "PrimitiveString", outputs=["STRING"], widgets=["hello"], title="$text.value")
    ui.node(5, "TestSleep", inputs=[("value", "*")], outputs=["*"], widgets=[0.05])
    ui.node(6, "PreviewAny", inputs=[("source", "*")], title="$output.echo")
    ui.node(7, "SaveImage", inputs=[("images", "IMAGE")], widgets=["witness_ui_muted"], mode=2)
    ui.link(1, 0, 2, "image")
    ui.link(2, 0, 3, "images")
    ui.link(4, 0, 5, "value")
    ui.link(5, 0, 6, "source")
    ui.link(1, 0, 7, "images")
    return ui.workflow()


def reroute_bypass_ui() -> dict[str, Any]:
    """EmptyImage -> Reroute -> ImageInvert (bypassed) -> SaveImage: the image is not
    inverted."""
    ui = UIGraph()
    ui.node(1, "EmptyImage", outputs=["IMAGE"], widgets=[8, 8, 1, 0], title="$width")
    ui.node(2, "Reroute", inputs=[("", "*")], outputs=["IMAGE"])
    ui.node(3, "ImageInvert", inputs=[("image", "IMAGE")], outputs=["IMAGE"], mode=4)
    ui.node(4, "SaveImage", inputs=[("images", "IMAGE")], widgets=["witness_ui_bypass"],
            title="$output.passed")  # fmt: skip
    ui.link(1, 0, 2, "")
    ui.link(2, 0, 3, "image")
    ui.link(3, 0, 4, "images")
    return ui.workflow()


def subgraph_ui() -> dict[str, Any]:
    """Instance 5 of a subgraph [width -> EmptyImage ($color) -> ImageInvert -> SaveImage
    ($output.inner); IMAGE out] -> ImageInvert -> SaveImage ($output.outer)."""
    inner = UIGraph()
    inner.node(10, "EmptyImage", outputs=["IMAGE"], widgets=[8, 8, 1, 0], title="$color")
    inner.node(11, "ImageInvert", inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    inner.node(12, "SaveImage", inputs=[("images", "IMAGE")], widgets=["witness_ui_inner"],
               title="$output.inner")  # fmt: skip
    width = inner.link(-10, 0, 10, "width")
    inner.link(10, 0, 11, "image")
    inner.link(11, 0, 12, "images")
    inner.links.append([len(inner.links) + 1, 11, 0, -20, 0, "IMAGE"])
    inner.nodes[1]["outputs"][0]["links"].append(len(inner.links))
    ui = UIGraph()
    ui.subgraphs.append(
        inner.as_subgraph(SUB, [("width", "INT", [width])], [("IMAGE", "IMAGE", [4])])
    )
    ui.node(5, SUB, outputs=["IMAGE"], widgets=[20])
    ui.node(6, "ImageInvert", inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    ui.node(7, "SaveImage", inputs=[("images", "IMAGE")], widgets=["witness_ui_outer"],
            title="$output.outer")  # fmt: skip
    ui.link(5, 0, 6, "image")
    ui.link(6, 0, 7, "images")
    return ui.workflow()


def primitive_ui() -> dict[str, Any]:
    """A PrimitiveNode (24) feeding EmptyImage's width and height widgets."""
    ui = UIGraph()
    ui.node(1, "PrimitiveNode", outputs=["INT"], widgets=[24, "fixed"], title="Side")
    ui.node(2, "EmptyImage", outputs=["IMAGE"], widgets=[8, 8, 1, 0], title="$color")
    ui.node(3, "SaveImage", inputs=[("images", "IMAGE")], widgets=["witness_ui_primitive"],
            title="$output.square")  # fmt: skip
    ui.link(1, 0, 2, "width")
    ui.link(1, 0, 2, "height")
    ui.link(2, 0, 3, "images")
    return ui.workflow()


def png_info(data: bytes) -> tuple[int, int, tuple[int, ...]]:
    """(width, height, RGB of the top-left pixel) of an 8-bit RGB(A) PNG."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert depth == 8
    assert color in (2, 6)
    idat, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return width, height, tuple(raw[1:4])  # row 0, pixel 0 is stored raw by every filter


def image_of(kit: Kit, result: ExecuteResult, var: str) -> bytes:
    """The bytes of the one image ``var`` produced."""
    (item,) = [f for f in result.files if f.var == var and f.kind == "image"]
    assert result.images_by_var[var] == [item.url]
    return kit.witness.files.download(FileRef(item.filename, item.subfolder, item.type))


# -- UI-format workflows -----------------------------------------------------------------


def test_ui_workflow_runs_with_dsl_params_from_node_titles(
    kit: Kit, object_info_calls: list[int], tmp_path: Path
) -> None:
    workflow = basic_ui()
    described = kit.witness.inspect(workflow)
    assert {"width", "height", "color", "text"} <= set(json.dumps(described).split('"'))
    progress: list[ProgressUpdate] = []
    result = kit.run(
        workflow, {"width": 16, "height": 8, "text": "hi"}, on_progress=progress.append
    )
    assert result.status == "completed", result.msg
    assert set(result.images_by_var) == {"inverted"}  # the muted SaveImage is not sent
    assert png_info(image_of(kit, result, "inverted")) == (16, 8, (255, 255, 255))
    assert result.texts_by_var == {"echo": ["hi"]}
    assert progress
    assert progress[-1].prompt_id == result.prompt_id
    # The same workflow as a file and as JSON text; /object_info was fetched once for all.
    path = tmp_path / "basic.json"
    path.write_text(json.dumps(workflow))
    assert kit.run(path, {"width": 8}).ok
    assert kit.run(json.dumps(workflow), {"width": 8}, executor="http").ok
    kit.results.append(kit.witness.execute_json(workflow, {"width": 8}))
    assert kit.results[-1].ok
    assert object_info_calls == [1]


def test_ui_required_param_missing_is_refused_before_submit(kit: Kit) -> None:
    with pytest.raises(Exception, match="width") as caught:
        kit.run(basic_ui(), {"height": 8})
    assert type(caught.value).__name__ == "MissingParamError"


def test_reroute_and_bypassed_node(kit: Kit) -> None:
    handle = kit.witness.submit(reroute_bypass_ui(), {"width": 10})
    assert set(handle.prompt) == {"1", "4"}  # no reroute, no bypassed node
    assert handle.prompt["4"]["inputs"]["images"] == ["1", 0]
    result = handle.wait(timeout=60)
    kit.results.append(result)
    assert result.ok, result.msg
    assert png_info(image_of(kit, result, "passed")) == (10, 8, (0, 0, 0))  # not inverted


def test_subgraph_with_a_param_and_an_output_inside(kit: Kit) -> None:
    result = kit.run(subgraph_ui(), {"color": 0x0000FF})
    assert result.ok, result.msg
    assert set(result.images_by_var) == {"inner", "outer"}
    # the instance's promoted width (20) reached the inner node; inverted once, then twice
    assert png_info(image_of(kit, result, "inner")) == (20, 8, (255, 255, 0))
    assert png_info(image_of(kit, result, "outer")) == (20, 8, (0, 0, 255))
    assert {f.node_id for f in result.files} == {"5:12", "7"}


def test_primitive_node_feeds_both_widgets(kit: Kit) -> None:
    result = kit.run(primitive_ui(), {"color": 0xFF0000})
    assert result.ok, result.msg
    assert png_info(image_of(kit, result, "square")) == (24, 24, (255, 0, 0))


def test_ui_workflow_with_a_node_type_the_server_lacks(kit: Kit) -> None:
    ui = UIGraph()
    ui.node(1, "EmptyImage", outputs=["IMAGE"], widgets=[8, 8, 1, 0])
    ui.node(2, "SomeCustomUpscaler", inputs=[("image", "IMAGE")], outputs=["IMAGE"])
    ui.node(3, "SaveImage", inputs=[("images", "IMAGE")], widgets=["never"])
    ui.link(1, 0, 2, "image")
    ui.link(2, 0, 3, "images")
    with pytest.raises(UIConversionError, match="SomeCustomUpscaler") as caught:
        kit.witness.validate(ui.workflow())
    assert caught.value.node_ids == ("2",)


# -- validation before submit ------------------------------------------------------------


def checkpoint_prompt(name: str) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": name},
            "_meta": {"title": "Model, $model.ckpt_name"},
        },
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 2]}},
    }


def installed_checkpoint(kit: Kit) -> str:
    info = kit.witness.object_info()["CheckpointLoaderSimple"]["input"]["required"]
    names = [str(n) for n in info["ckpt_name"][0]]
    if not names:
        pytest.skip("the server has no checkpoint")
    return names[0]


def test_typo_in_a_combo_is_flagged_with_suggestions_and_nothing_is_sent(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = installed_checkpoint(kit)
    typo = name[:-1] + ("x" if name[-1] != "x" else "y")
    sent: list[Any] = []
    original = kit.witness.prompt.submit

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(kit.witness.prompt, "submit", spy)
    history_before = set(kit.witness.history.get_all())
    problems = kit.witness.validate(checkpoint_prompt("x.safetensors"), {"model": typo})
    assert [(p.node_id, p.input_name, p.kind) for p in problems] == [
        ("1", "ckpt_name", "value_not_in_list")
    ]
    assert problems[0].suggestions[0] == name
    assert problems[0].title == "Model, $model.ckpt_name"
    with pytest.raises(WorkflowValidationError, match="did you mean") as caught:
        kit.run(checkpoint_prompt(typo))
    assert [p.node_id for p in caught.value.problems] == ["1"]
    assert sent == []
    queue = kit.witness.queue.get()
    assert queue.pending == ()
    assert set(kit.witness.history.get_all()) == history_before
    # The same typo in a UI-format workflow names the UI node.
    ui = UIGraph()
    ui.node(3, "CheckpointLoaderSimple", outputs=["MODEL", "CLIP", "VAE"], widgets=[typo],
            title="Loader")  # fmt: skip
    ui.node(4, "PreviewAny", inputs=[("source", "*")])
    ui.link(3, 2, 4, "source")
    (problem,) = kit.witness.validate(ui.workflow())
    assert (problem.node_id, problem.title, problem.input_name) == ("3", "Loader", "ckpt_name")
    assert sent == []


def test_validate_false_lets_the_server_reject_it(kit: Kit, settings: Settings) -> None:
    typo = installed_checkpoint(kit) + "x"
    with pytest.raises(PromptValidationError) as caught:
        kit.run(checkpoint_prompt(typo), validate=False)
    (error,) = caught.value.node_errors
    assert (error.node_id, error.input_name, error.type) == ("1", "ckpt_name", "value_not_in_list")
    with Witness(settings=settings, validate=False) as off, pytest.raises(PromptValidationError):
        off.execute(checkpoint_prompt(typo))


def test_a_fresh_upload_is_not_flagged(kit: Kit, tmp_path: Path) -> None:
    kit.witness.object_info()  # the cache predates the upload
    name = f"witness_fresh_{uuid.uuid4().hex}.png"
    stored = kit.witness.files.upload_image(png_bytes(3, 5, (10, 20, 30)), filename=name)
    kit.uploads.append(stored.name)
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"},
              "_meta": {"title": "$~img.image"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "wf"},
              "_meta": {"title": "$output.out"}},
    }  # fmt: skip
    assert kit.witness.validate(workflow, {"img": stored.name}) == []
    result = kit.run(workflow, {"img": stored.name})
    assert result.ok, result.msg
    assert png_info(image_of(kit, result, "out")) == (3, 5, (245, 235, 225))
    # Uploaded by execute itself (a local path), validated on the way: same answer.
    source = tmp_path / f"witness_local_{uuid.uuid4().hex}.png"
    source.write_bytes(png_bytes(2, 2, (0, 0, 0)))
    kit.uploads.append(source.name)
    result = kit.run(workflow, {"img": source})
    assert result.ok, result.msg
    assert png_info(image_of(kit, result, "out")) == (2, 2, (255, 255, 255))


def test_a_model_that_appeared_after_the_cache_is_not_flagged(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = installed_checkpoint(kit)
    # A snapshot taken before the model file was added: its list lacks the model.
    stale = json.loads(json.dumps(kit.witness.object_info()))
    stale["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = ["old.safetensors"]
    monkeypatch.setattr(kit.witness.system, "object_info", lambda *a, **k: stale)
    kit.witness.object_info(refresh=True)
    assert kit.witness.validate(checkpoint_prompt(name)) == []  # refreshed that class only
    options = kit.witness.object_info()["CheckpointLoaderSimple"]["input"]["required"]
    assert name in options["ckpt_name"][0]
    # A real typo is still flagged after the refresh.
    (problem,) = kit.witness.validate(checkpoint_prompt(name + "x"))
    assert problem.kind == "value_not_in_list"


# -- side by side with the server's own /prompt validation ---------------------------------


@pytest.fixture(scope="module")
def server_side(comfy_url: str) -> Iterator[side.Live]:
    with Witness(comfy_url) as kit:
        state = side.Live(kit.http, NodeCatalog({}), {})
        try:
            yield state
        finally:
            side._forget(kit.http, state.accepted)


@pytest.fixture(scope="module")
def shared_kit(comfy_url: str) -> Iterator[Witness]:
    with Witness(comfy_url) as kit:
        yield kit


WHOLE_PROMPT_CASES = [c for c in side.CASES if c[2] is None]


@pytest.mark.parametrize(
    "prompt", [c[1] for c in WHOLE_PROMPT_CASES], ids=[c[0] for c in WHOLE_PROMPT_CASES]
)
def test_witness_validate_agrees_with_the_server(
    shared_kit: Witness,
    server_side: side.Live,
    request: pytest.FixtureRequest,
    prompt: dict[str, Any],
) -> None:
    case = request.node.callspec.id
    try:
        problems = shared_kit.validate(prompt, strict=False)  # the server's lenient verdict
    except WorkflowFormatError as exc:
        refused: WorkflowFormatError | None = exc
    else:
        refused = None
    if refused is not None:
        # Malformed nodes are refused while loading, naming the node; the server refuses too.
        verdict = side.server_verdict(server_side, prompt, None)
        assert not verdict.accepted or verdict.node_errors, verdict
        malformed = [
            n for n, node in prompt.items()
            if not isinstance(node.get("class_type"), str)
            or not isinstance(node.get("inputs"), dict)
        ]  # fmt: skip
        assert any(repr(n) in str(refused) for n in malformed), str(refused)
        return
    verdict = side.server_verdict(server_side, prompt, None)
    flagged = {(p.node_id, p.input_name, p.kind) for p in problems}
    report = f"server: {verdict}\nwitness:\n" + "\n".join(f"  {p}" for p in problems)
    if case in side.KNOWN_DIFFERENCES:
        assert flagged == side.KNOWN_DIFFERENCES[case][0], report
        return
    if verdict.accepted and not verdict.node_errors:
        assert problems == [], report
        return
    assert problems, report
    if verdict.error_type == "prompt_no_outputs":
        assert [p.kind for p in problems] == ["prompt_no_outputs"], report
        return
    if not verdict.node_errors:  # 0.3.75 reports a cycle without node errors
        assert {p.kind for p in problems} == {"dependency_cycle"}, report
        return
    assert {p.node_id for p in problems} == verdict.nodes, report
    for node_id, errors in verdict.node_errors.items():
        for input_name, error_type in errors:
            if error_type == "invalid_prompt":
                assert (node_id, None, "missing_node_type") in flagged, report
                continue
            assert any(
                n == node_id and k in side.SAME_KIND[error_type]
                and (input_name is None or i == input_name)
                for n, i, k in flagged
            ), f"no match for {node_id}/{input_name}/{error_type}\n{report}"  # fmt: skip


def test_execute_refuses_what_validate_flags(shared_kit: Witness) -> None:
    prompt = {"1": side.empty_image(0), "2": side.preview(["1", 0]), "3": side.preview(["1", 5])}
    with pytest.raises(WorkflowValidationError) as caught:
        shared_kit.execute(prompt, timeout=30)
    assert {(p.node_id, p.kind) for p in caught.value.problems} == {
        ("1", "value_smaller_than_min"), ("3", "link_slot_out_of_range")
    }  # fmt: skip
    assert list(caught.value.problems) == shared_kit.validate(prompt)
    assert "2 problems" in str(caught.value)


def test_a_node_class_missing_from_a_stale_cache_is_refetched(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A snapshot from before the server (restarted) had ImageInvert.
    stale = {k: v for k, v in kit.witness.system.object_info().items() if k != "ImageInvert"}
    monkeypatch.setattr(kit.witness.system, "object_info", lambda *a, **k: stale)
    kit.witness.object_info(refresh=True)
    prompt = {"1": side.empty_image(), "2": side.node("ImageInvert", image=["1", 0]),
              "3": side.preview(["2", 0])}  # fmt: skip
    assert kit.witness.validate(prompt) == []
    assert "ImageInvert" in kit.witness.object_info()
    kit.witness.object_info(refresh=True)  # stale again
    assert kit.witness.validate(basic_ui(), {"width": 8}) == []  # the UI conversion refetches
    # A class the server really lacks is still refused.
    (problem,) = kit.witness.validate({**prompt, "2": side.node("ImageInvertX", image=["1", 0])})
    assert (problem.node_id, problem.kind) == ("2", "missing_node_type")

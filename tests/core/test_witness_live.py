"""``Witness`` end to end against the real server: the DSL rules, every workflow source,
cached re-runs, submit/wait and re-attaching, concurrency, progress and previews, saving,
validation (client and server side) and the websocket-down fallback.

Media kinds and value forms are in test_execute_media_live.py; failures, interrupts and
timeouts in test_execute_errors_live.py. Every main case runs with both executors.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.core.witness_live_support import (
    FileServer,
    file_server_fixture,  # noqa: F401 - fixture
    image_workflow,
    kit_fixture,  # noqa: F401 - fixture
    rand_color,
    read_png,
    rgb,
    server_state_fixture,  # noqa: F401 - fixture
    sleep_workflow,
    snapshot,
    text_workflow,
)
from witness import ExecuteResult, Witness
from witness.config.settings import Settings
from witness.core.tracking import Preview, ProgressUpdate
from witness.errors import (
    ConfigError,
    DSLError,
    ExecutionError,
    MissingParamError,
    PromptLostError,
    PromptValidationError,
    UnknownParamError,
    WorkflowSourceError,
    WorkflowValidationError,
)

pytestmark = pytest.mark.integration

EXECUTORS = ["websocket", "http"]
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def _download(url: str) -> bytes:
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response.content


def _stored_prompt(kit: Witness, result: ExecuteResult) -> dict[str, Any]:
    """The prompt the server ran, as it stored it."""
    assert result.prompt_id is not None
    entry = kit.history.get(result.prompt_id)
    assert entry is not None
    return dict(entry.prompt)


# --------------------------------------------------------------------------------------------
# DSL rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_param_on_several_nodes_sets_all_and_same_output_name_keeps_both(
    kit: Witness, executor: str
) -> None:
    word = f"w{rand_color()}"
    result = kit.execute(text_workflow(), {"word": word}, executor=executor)  # type: ignore[arg-type]

    assert result.status == "completed", result.msg
    # both nodes got the value; both "$output.joined" nodes kept, in workflow order
    assert result.texts_by_var == {"joined": [f"{word}+{word}", word]}
    assert result.texts == [f"{word}+{word}", word]


def test_unset_param_keeps_each_nodes_own_default(kit: Witness) -> None:
    delimiter = f"<{rand_color()}>"
    result = kit.execute(text_workflow(), {"delimiter": delimiter})

    assert result.status == "completed", result.msg
    assert result.texts_by_var["joined"] == [f"one{delimiter}two", "one"]


def test_unknown_param_lists_known_ones_and_allow_unknown_runs(kit: Witness) -> None:
    before = snapshot(kit, None)
    with pytest.raises(UnknownParamError) as info:
        kit.execute(text_workflow(), {"wrod": "x"})
    assert "wrod" in str(info.value)
    assert "word" in str(info.value)
    assert "delimiter" in str(info.value)
    assert set(info.value.known) == {"word", "delimiter"}
    assert snapshot(kit, None).history == before.history

    result = kit.execute(text_workflow(), {"wrod": "x", "delimiter": "-"}, allow_unknown=True)
    assert result.status == "completed", result.msg
    assert result.texts_by_var["joined"] == ["one-two", "one"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_missing_required_param_submits_nothing(
    kit: Witness, comfy_server: Any, executor: str
) -> None:
    before = snapshot(kit, comfy_server)
    with pytest.raises(MissingParamError) as info:
        kit.execute(image_workflow(), {"width": 8}, executor=executor)  # type: ignore[arg-type]
    assert "height" in str(info.value)
    with pytest.raises(MissingParamError) as both:
        kit.submit(image_workflow(), {"height": None})
    assert set(both.value.names) == {"width", "height"}

    after = snapshot(kit, comfy_server)
    assert after.history == before.history
    assert after.queue <= before.queue
    assert after.inputs == before.inputs


def test_required_params_with_display_text(kit: Witness) -> None:
    described = kit.inspect(image_workflow())
    width = described["params"]["width"]
    assert width["required"] is True
    assert described["params"]["height"]["required"] is True
    assert described["params"]["color"]["required"] is False
    assert width["targets"][0]["label"] == "Size"
    assert [o["name"] for o in described["outputs"]] == ["image"]

    color = rand_color()
    result = kit.execute(image_workflow(), {"width": 5, "height": 3, "color": color})
    assert result.status == "completed", result.msg
    (url,) = result.images_by_var["image"]
    pixels = read_png(_download(url))
    assert (pixels.width, pixels.height) == (5, 3)
    assert pixels.at(0, 0)[:3] == rgb(color)


def test_marker_naming_missing_field_fails_at_parse_time(kit: Witness) -> None:
    workflow = text_workflow()
    workflow["3"]["_meta"]["title"] = "Join, $sep.separator"
    before = snapshot(kit, None)

    with pytest.raises(DSLError) as info:
        kit.inspect(workflow)
    assert "separator" in str(info.value)
    assert "delimiter" in str(info.value)
    assert info.value.node_id == "3"
    with pytest.raises(DSLError):
        kit.execute(workflow, {"word": "x"})
    assert snapshot(kit, None).history == before.history


def _seed_workflow() -> dict[str, Any]:
    return {
        "1": {
            "class_type": "RandomNoise",
            "inputs": {"noise_seed": 0},
            "_meta": {"title": "$seed_a.noise_seed"},
        },
        "2": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    }


def test_seeds_are_never_randomised_unless_asked(kit: Witness) -> None:
    plain = kit.execute(_seed_workflow())
    assert plain.status == "completed", plain.msg
    stored = _stored_prompt(kit, plain)
    assert stored["1"]["inputs"]["noise_seed"] == 0
    assert stored["2"]["inputs"]["noise_seed"] == 5


def test_randomize_seeds_keeps_explicit_values_including_zero(kit: Witness) -> None:
    result = kit.execute(_seed_workflow(), {"seed_a": 0}, randomize_seeds=True)
    assert result.status == "completed", result.msg
    stored = _stored_prompt(kit, result)
    assert stored["1"]["inputs"]["noise_seed"] == 0  # explicit, even though it is 0
    assert stored["2"]["inputs"]["noise_seed"] != 5  # randomised (1 in 2**32 to collide)
    assert 0 <= stored["2"]["inputs"]["noise_seed"] <= 2**32 - 1

    unset = kit.execute(_seed_workflow(), randomize_seeds=True)
    seeds = {n: _stored_prompt(kit, unset)[n]["inputs"]["noise_seed"] for n in ("1", "2")}
    assert seeds != {"1": 0, "2": 5}


def test_upload_marker_on_any_field(kit: Witness) -> None:
    """``$doc.~value`` on a plain string input: the value is uploaded, the node gets the name."""
    workflow = text_workflow()
    workflow["1"]["_meta"]["title"] = "$doc.~value!"
    described = kit.inspect(workflow)["params"]["doc"]
    assert described["upload"] is True
    assert described["required"] is True

    data = f"payload {rand_color()}".encode()
    result = kit.execute(workflow, {"doc": data})
    assert result.status == "completed", result.msg
    name = result.texts_by_var["joined"][1]
    assert name.startswith("witness-")
    assert name.endswith(".bin")
    assert kit.files.download(name, type="input") == data


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


def _invert(color: int) -> tuple[int, int, int]:
    r, g, b = rgb(color)
    return 255 - r, 255 - g, 255 - b


def _check_invert(result: ExecuteResult, color: int) -> None:
    assert result.status == "completed", result.msg
    (url,) = result.images_by_var["result"]
    pixel = read_png(_download(url)).at(0, 0)[:3]
    # ImageInvert works on floats: a channel may round one step off
    assert all(abs(a - b) <= 1 for a, b in zip(pixel, _invert(color), strict=True)), pixel


@pytest.fixture
def served_example(file_server: FileServer) -> str:
    return file_server.put("invert.json", (EXAMPLES / "invert.json").read_bytes())


@pytest.mark.parametrize(
    "kind", ["path_str", "path", "url", "dict", "json_text", "bytes", "ui_dict"]
)
def test_every_source_kind_runs(kit: Witness, kind: str, served_example: str) -> None:
    path = EXAMPLES / "invert.json"
    sources: dict[str, Any] = {
        "path_str": str(path),
        "path": path,
        "url": served_example,
        "dict": json.loads(path.read_text()),
        "json_text": path.read_text(),
        "bytes": path.read_bytes(),
        "ui_dict": _ui_invert(),
    }
    color = rand_color()
    result = kit.execute(sources[kind], {"color": color, "width": 4})
    _check_invert(result, color)


def test_execute_json_takes_dicts_only(kit: Witness) -> None:
    color = rand_color()
    _check_invert(kit.execute_json(_ui_invert(), {"color": color}), color)
    with pytest.raises(Exception, match="dict"):
        kit.execute_json(str(EXAMPLES / "invert.json"))  # type: ignore[arg-type]


def test_runninghub_id_without_runninghub_is_a_clear_error(
    kit: Witness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RUNNINGHUB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    with pytest.raises(ConfigError) as info:
        kit.execute("runninghub:1234567890123", {"x": 1})
    assert "RunningHub" in str(info.value)
    assert "RUNNINGHUB_API_KEY" in str(info.value)
    # A bare number is never guessed to be a RunningHub id: a file name, with a hint.
    with pytest.raises(WorkflowSourceError, match="runninghub:1234567890123"):
        kit.execute("1234567890123", {"x": 1})


def _ui_invert() -> dict[str, Any]:
    """``examples/invert.json`` in the UI (litegraph) format."""
    return {
        "last_node_id": 3,
        "last_link_id": 2,
        "version": 0.4,
        "nodes": [
            {
                "id": 1,
                "type": "EmptyImage",
                "pos": [0, 0],
                "size": [300, 130],
                "flags": {},
                "order": 0,
                "mode": 0,
                "title": "Canvas, $width, $height, $color",
                "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}],
                "properties": {"Node name for S&R": "EmptyImage"},
                "widgets_values": [8, 8, 1, 0],
            },
            {
                "id": 2,
                "type": "ImageInvert",
                "pos": [350, 0],
                "size": [200, 30],
                "flags": {},
                "order": 1,
                "mode": 0,
                "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2], "slot_index": 0}],
                "properties": {},
                "widgets_values": [],
            },
            {
                "id": 3,
                "type": "SaveImage",
                "pos": [600, 0],
                "size": [300, 270],
                "flags": {},
                "order": 2,
                "mode": 0,
                "title": "Result, $output.result",
                "inputs": [{"name": "images", "type": "IMAGE", "link": 2}],
                "outputs": [],
                "properties": {},
                "widgets_values": ["witness_ui"],
            },
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
        "groups": [],
        "config": {},
        "extra": {},
    }


# --------------------------------------------------------------------------------------------
# Cached re-runs, submit/wait, re-attach
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_cached_rerun_still_returns_outputs(kit: Witness, executor: str) -> None:
    params = {"width": 6, "height": 6, "color": rand_color()}
    first = kit.execute(image_workflow(), params, executor=executor)  # type: ignore[arg-type]
    again = kit.execute(image_workflow(), params, executor=executor)  # type: ignore[arg-type]

    assert first.status == again.status == "completed"
    assert again.prompt_id != first.prompt_id
    assert again.images_by_var == first.images_by_var
    assert len(again.images) == 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_submit_then_wait(kit: Witness, executor: str) -> None:
    color = rand_color()
    handle = kit.submit(sleep_workflow(0.2), {"color": color}, executor=executor)  # type: ignore[arg-type]
    assert handle.prompt_id
    assert handle.number >= 0
    assert handle.signature.required == ()
    assert handle.prompt["1"]["inputs"]["color"] == color

    result = handle.wait()
    assert result.status == "completed", result.msg
    assert handle.wait() is result  # the same result on later calls
    assert handle.done()
    assert set(result.images_by_var) == {"before", "after"}
    assert "waiting" not in repr(handle)


def test_wait_reattaches_from_a_second_witness(kit: Witness, comfy_url: str) -> None:
    handle = kit.submit(sleep_workflow(0.5), {"color": rand_color()})
    with Witness(settings=Settings(api_url=comfy_url, retries=1)) as other:
        result = other.wait(handle.prompt_id, timeout=60)
    assert result.status == "completed", result.msg
    assert result.prompt_id == handle.prompt_id
    # output names come from the $output titles of the graph the server stored
    assert set(result.images_by_var) == {"before", "after"}
    assert handle.wait().images_by_var == result.images_by_var


def test_wait_for_an_unknown_prompt_is_lost(kit: Witness) -> None:
    with pytest.raises(PromptLostError):
        kit.wait("00000000-0000-0000-0000-000000000000", timeout=10)


# --------------------------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------------------------


def test_threads_share_one_witness_without_cross_talk(kit: Witness) -> None:
    threads, runs = 8, 3
    results: dict[tuple[int, int], ExecuteResult] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)
    token = rand_color()

    def work(index: int) -> None:
        try:
            barrier.wait(30)
            for run in range(runs):
                word = f"t{token}-{index}-{run}"
                executor = "http" if index % 2 else "websocket"
                results[(index, run)] = kit.execute(
                    text_workflow(),
                    {"word": word},
                    executor=executor,  # type: ignore[arg-type]
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(180)
    assert not errors, errors
    assert len(results) == threads * runs
    assert len({r.prompt_id for r in results.values()}) == threads * runs
    for (index, run), result in results.items():
        word = f"t{token}-{index}-{run}"
        assert result.status == "completed", result.msg
        assert result.texts_by_var == {"joined": [f"{word}+{word}", word]}


# --------------------------------------------------------------------------------------------
# Progress and previews
# --------------------------------------------------------------------------------------------


def test_progress_is_ordered_and_reaches_one(kit: Witness) -> None:
    updates: list[ProgressUpdate] = []
    result = kit.execute(sleep_workflow(0.3), {"color": rand_color()}, on_progress=updates.append)

    assert result.status == "completed", result.msg
    assert updates, "no progress at all"
    overall = [u.overall for u in updates]
    assert overall == sorted(overall)
    assert overall[-1] == 1.0
    assert all(0.0 <= u.overall <= 1.0 for u in updates)
    assert all(u.nodes_done <= u.nodes_total for u in updates)
    assert {u.prompt_id for u in updates} == {result.prompt_id}
    sleeping = [u for u in updates if u.node_id == "3" and u.value > 0]
    assert sleeping, "TestSleep's own progress was not forwarded"
    assert all(u.max > 0 for u in sleeping)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_fully_cached_run_still_reports_completion(kit: Witness, executor: str) -> None:
    params = {"width": 4, "height": 4, "color": rand_color()}
    kit.execute(image_workflow(), params)
    updates: list[ProgressUpdate] = []
    result = kit.execute(
        image_workflow(),
        params,
        on_progress=updates.append,
        executor=executor,  # type: ignore[arg-type]
    )
    assert result.status == "completed"
    assert updates
    assert updates[-1].overall == 1.0


def test_a_raising_callback_does_not_break_the_wait(kit: Witness) -> None:
    def boom(_: object) -> None:
        raise RuntimeError("callback bug")

    result = kit.execute(
        sleep_workflow(0.05), {"color": rand_color()}, on_progress=boom, on_preview=boom
    )
    assert result.status == "completed", result.msg


def test_save_image_websocket_gives_png_previews(kit: Witness) -> None:
    color = rand_color()
    workflow = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 6, "height": 5, "batch_size": 2, "color": color},
        },
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
    previews: list[Preview] = []
    result = kit.execute(workflow, on_preview=previews.append)

    assert result.status == "completed", result.msg
    assert len(previews) == 2
    for preview in previews:
        assert preview.format == "image/png"
        assert preview.node_id == "2"
        assert preview.prompt_id == result.prompt_id
        pixels = read_png(preview.data)
        assert (pixels.width, pixels.height) == (6, 5)
        assert pixels.at(0, 0)[:3] == rgb(color)


# --------------------------------------------------------------------------------------------
# Saving results
# --------------------------------------------------------------------------------------------


def test_save_streams_files_under_safe_names(kit: Witness, tmp_path: Path) -> None:
    workflow = image_workflow(prefix="witness_save/../odd name")
    workflow["1"]["inputs"]["batch_size"] = 2
    result = kit.execute(workflow, {"width": 4, "height": 4, "color": rand_color()})
    assert result.status == "completed", result.msg
    assert len(result.files) == 2

    written = result.save(tmp_path / "out", texts=True)
    assert len(written) == 2
    for path, item in zip(written, result.files, strict=True):
        assert path.parent == tmp_path / "out"
        assert "/" not in path.name
        assert ".." not in path.name
        assert path.read_bytes() == _download(item.url)

    again = result.save(tmp_path / "out")
    assert {p.name for p in again}.isdisjoint({p.name for p in written})  # never overwritten
    only_video = result.save(tmp_path / "none", kinds=["video"])
    assert only_video == []


def test_save_writes_texts(kit: Witness, tmp_path: Path) -> None:
    result = kit.execute(text_workflow(), {"word": f"s{rand_color()}"})
    written = result.save(tmp_path, texts=True)
    assert [p.name for p in written] == ["joined_1.txt", "joined_2.txt"]
    assert [p.read_text() for p in written] == result.texts_by_var["joined"]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_client_validation_rejects_before_submitting(
    kit: Witness, comfy_server: Any, executor: str
) -> None:
    before = snapshot(kit, comfy_server)
    with pytest.raises(WorkflowValidationError) as info:
        kit.execute(image_workflow(), {"width": 0, "height": 4}, executor=executor)  # type: ignore[arg-type]
    assert any(p.node_id == "1" and p.input_name == "width" for p in info.value.problems)
    problems = kit.validate(image_workflow(), {"width": 0, "height": 4})
    assert [p.kind for p in problems] == ["value_smaller_than_min"]
    assert kit.validate(image_workflow(), {"width": 1, "height": 4}) == []
    assert snapshot(kit, comfy_server).history == before.history


def test_validate_false_sends_it_and_the_server_rejects(kit: Witness) -> None:
    with pytest.raises(PromptValidationError) as info:
        kit.execute(image_workflow(), {"width": 0, "height": 4}, validate=False)
    error = info.value
    assert error.error_type == "prompt_outputs_failed_validation"
    assert [(e.node_id, e.input_name) for e in error.node_errors] == [("1", "width")]
    assert error.node_errors[0].type == "value_smaller_than_min"


def test_witness_wide_validate_off(comfy_url: str) -> None:
    with Witness(settings=Settings(api_url=comfy_url, retries=1), validate=False) as loose:
        with pytest.raises(PromptValidationError):
            loose.execute(image_workflow(), {"width": 0, "height": 4})
        assert not loose.catalog.loaded  # /object_info never fetched


def test_dropped_outputs_are_reported_and_the_rest_runs(kit: Witness) -> None:
    workflow = image_workflow()
    workflow["3"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["9", 0], "filename_prefix": "never"},
        "_meta": {"title": "$output.broken"},
    }
    workflow["9"] = {
        "class_type": "EmptyImage",
        "inputs": {"width": 0, "height": 4, "batch_size": 1, "color": 0},
    }
    handle = kit.submit(workflow, {"width": 4, "height": 4, "color": rand_color()}, validate=False)
    assert handle.dropped_outputs == ("3",)
    assert handle.node_errors
    result = handle.wait()
    assert result.status == "completed", result.msg
    assert set(result.images_by_var) == {"image"}


# --------------------------------------------------------------------------------------------
# Websocket down
# --------------------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()  # nothing listens there now
    return port


def test_websocket_down_falls_back_to_polling(
    comfy_url: str, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        api_url=comfy_url, ws_url=f"ws://127.0.0.1:{closed_port}/ws", retries=1, connect_timeout=2
    )
    updates: list[ProgressUpdate] = []
    with Witness(settings=settings) as broken:
        color = rand_color()
        result = broken.execute(
            EXAMPLES / "invert.json", {"color": color}, on_progress=updates.append
        )
        _check_invert(result, color)
        handle = broken.submit(sleep_workflow(0.2), {"color": rand_color()})
        assert handle.wait().status == "completed"
    assert "falling back to history polling" in caplog.text
    assert updates[-1].overall == 1.0


def test_raise_for_status_passes_completed_results(kit: Witness) -> None:
    result = kit.execute(text_workflow(), {"word": "ok"})
    assert result.raise_for_status() is result
    assert result.ok
    with pytest.raises(ExecutionError):
        ExecuteResult(status="failed", prompt_id="x", msg="boom").raise_for_status()

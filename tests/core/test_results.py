"""witness.core.results: assembly from real /history entries, classification, save()."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from witness.core.dsl import parse
from witness.core.results import (
    ExecuteResult,
    NodeFailure,
    OutputFile,
    assemble,
    classify_output_file,
    failure_from_ws_error,
)
from witness.errors import ExecutionError, InvalidArgumentError, WitnessError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "history"


def load(name: str) -> tuple[str, dict[str, Any]]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return data["prompt_id"], data["entry"]


def view_url(filename: str, subfolder: str, type_: str) -> str:
    return "http://h/view?" + urlencode(
        {"filename": filename, "subfolder": subfolder, "type": type_}
    )


def entry_with(outputs: dict[str, Any], status_str: str = "success") -> dict[str, Any]:
    return {
        "prompt": [1, "p", {}, {}, []],
        "outputs": outputs,
        "status": {"status_str": status_str, "completed": status_str == "success", "messages": []},
        "meta": {},
    }


def files(*names: str, type_: str = "output", subfolder: str = "") -> list[dict[str, str]]:
    return [{"filename": n, "subfolder": subfolder, "type": type_} for n in names]


# ------------------------------------------------------------------------------- status


def test_success_entry() -> None:
    prompt_id, entry = load("success")
    result = assemble(
        prompt_id, entry, signature=None, prompt=None, view_url=view_url, started=None
    )
    assert result.status == "completed"
    assert result.ok
    assert result.raise_for_status() is result
    assert result.prompt_id == prompt_id
    assert result.msg is None
    assert result.error is None
    assert result.duration is None
    assert result.execution_time == pytest.approx(0.010)
    assert [f.node_id for f in result.files] == ["2", "5", "7"]
    assert result.images == [f.url for f in result.files]
    assert result.images[1] == view_url("probe_91698c_00001_.png", "", "output")
    assert result.files[0].type == "temp"
    assert result.images_by_var == {
        "2": [result.images[0]],
        "5": [result.images[1]],
        "7": [result.images[2]],
    }
    assert result.outputs == entry["outputs"]
    assert result.videos == result.audios == result.texts == []


def test_success_with_signature_uses_output_names() -> None:
    prompt_id, entry = load("success")
    graph = copy.deepcopy(entry["prompt"][2])
    graph["5"]["_meta"] = {"title": "Result, $output.result"}
    sig = parse(graph)
    result = assemble(
        prompt_id, entry, signature=sig, prompt=graph, view_url=view_url, started=None
    )
    assert list(result.images_by_var) == ["2", "result", "7"]
    assert result.files[1].var == "result"


def test_cached_rerun_keeps_workflow_order() -> None:
    prompt_id, entry = load("cached")
    assert list(entry["outputs"]) == ["2", "7", "5"]  # history order differs on a cached run
    result = assemble(
        prompt_id, entry, signature=None, prompt=None, view_url=view_url, started=None
    )
    assert result.status == "completed"
    assert [f.node_id for f in result.files] == ["2", "5", "7"]


def test_error_entry() -> None:
    prompt_id, entry = load("error")
    result = assemble(
        prompt_id, entry, signature=None, prompt=None, view_url=view_url, started=None
    )
    assert result.status == "failed"
    assert not result.ok
    assert result.msg == (
        "node 2 (SaveImage): Exception: **** ERROR: Saving image outside the output folder is "
        "not allowed."
    )
    err = result.error
    assert err is not None
    assert err.node_id == "2"
    assert err.node_type == "SaveImage"
    assert err.exception_type == "Exception"
    assert err.exception_message is not None
    assert "full_output_folder" in err.exception_message
    assert err.executed == ("1",)
    assert len(err.traceback) == 6
    assert result.files == []
    assert result.outputs == {}


def test_error_message_names_the_title_from_the_prompt() -> None:
    prompt_id, entry = load("error")
    graph = copy.deepcopy(entry["prompt"][2])
    graph["2"]["_meta"] = {"title": "Result"}
    result = assemble(
        prompt_id, entry, signature=None, prompt=graph, view_url=view_url, started=None
    )
    assert result.msg is not None
    assert result.msg.startswith('node 2 (SaveImage "Result"): Exception: **** ERROR')
    assert result.error is not None
    assert result.error.title == "Result"


def test_raise_for_status_fills_execution_error() -> None:
    prompt_id, entry = load("error")
    result = assemble(
        prompt_id, entry, signature=None, prompt=None, view_url=view_url, started=None
    )
    with pytest.raises(ExecutionError) as info:
        result.raise_for_status()
    exc = info.value
    assert exc.prompt_id == prompt_id
    assert exc.status == "failed"
    assert exc.node_id == "2"
    assert exc.node_type == "SaveImage"
    assert exc.exception_type == "Exception"
    assert exc.exception_message is not None
    assert exc.exception_message.startswith("**** ERROR")
    assert len(exc.traceback) == 6
    assert "node 2 (SaveImage)" in str(exc)


def test_interrupt_entry_keeps_partial_outputs() -> None:
    prompt_id, entry = load("interrupt")
    result = assemble(
        prompt_id, entry, signature=None, prompt=None, view_url=view_url, started=None
    )
    assert result.status == "interrupted"
    assert result.msg == "interrupted at node 4 (ImageBlur)"
    assert result.error is not None
    assert result.error.executed == ("2", "1", "3")
    assert result.error.exception_type is None
    partial = copy.deepcopy(entry)
    partial["outputs"] = {"3": {"images": files("early_00001_.png")}}
    result = assemble(
        prompt_id, partial, signature=None, prompt=None, view_url=view_url, started=None
    )
    assert result.status == "interrupted"
    assert result.images == [view_url("early_00001_.png", "", "output")]
    with pytest.raises(ExecutionError) as info:
        result.raise_for_status()
    assert info.value.status == "interrupted"
    assert info.value.node_id == "4"


def test_timeout_without_entry() -> None:
    result = assemble(
        "pid", None, signature=None, prompt=None, view_url=view_url, started=time.monotonic(),
        status_override="timeout",
    )  # fmt: skip
    assert result.status == "timeout"
    assert result.msg == "timed out waiting for prompt pid"
    assert result.duration is not None
    assert result.duration >= 0
    with pytest.raises(ExecutionError) as info:
        result.raise_for_status()
    assert info.value.status == "timeout"


def test_timeout_override_keeps_partial_outputs() -> None:
    entry = entry_with({"9": {"images": files("a.png")}})
    result = assemble(
        "pid", entry, signature=None, prompt=None, view_url=view_url, started=None,
        status_override="timeout",
    )  # fmt: skip
    assert result.status == "timeout"
    assert len(result.images) == 1


def test_missing_entry_without_override_is_an_error() -> None:
    with pytest.raises(InvalidArgumentError):
        assemble("pid", None, signature=None, prompt=None, view_url=view_url, started=None)
    with pytest.raises(InvalidArgumentError):
        assemble("pid", [], signature=None, prompt=None, view_url=view_url, started=None)  # type: ignore[arg-type]


def test_odd_status_shapes_are_failures_with_a_message() -> None:
    no_status = {"outputs": {}}
    result = assemble("p", no_status, signature=None, prompt=None, view_url=view_url, started=None)
    assert result.status == "failed"
    assert result.msg == "the history entry has no status"
    bare_error = entry_with({}, status_str="error")
    result = assemble("p", bare_error, signature=None, prompt=None, view_url=view_url, started=None)
    assert result.status == "failed"
    assert result.msg is not None
    assert "without details" in result.msg
    legacy = {"outputs": {}, "status": {"completed": True}}
    result = assemble("p", legacy, signature=None, prompt=None, view_url=view_url, started=None)
    assert result.status == "completed"


def test_failure_from_ws_error_message() -> None:
    data = json.loads((FIXTURES / "ws_execution_error.json").read_text())["data"]
    failure = failure_from_ws_error(
        data, {"2": {"class_type": "SaveImage", "inputs": {}, "_meta": {"title": "Out"}}}
    )
    assert failure.node_id == "2"
    assert failure.node_type == "SaveImage"
    assert failure.title == "Out"
    assert failure.exception_type == "Exception"
    assert failure.executed == ("1",)
    assert failure.summary().startswith('node 2 (SaveImage "Out"): Exception: **** ERROR')
    empty = failure_from_ws_error({})
    assert empty == NodeFailure(None, None, None, None, None, (), ())
    assert empty.summary() == "unknown node"


# ------------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("filename", "key", "animated", "mime", "kind"),
    [
        ("a.png", "images", False, None, "image"),
        ("a.mp4", "images", True, None, "video"),  # core SaveVideo
        ("a.mp4", "images", False, None, "video"),
        ("a.webp", "images", True, None, "video"),  # SaveAnimatedWEBP
        ("a.webp", "images", False, None, "image"),
        ("a.gif", "images", False, None, "image"),  # still gif
        ("a.gif", "gifs", False, "image/gif", "video"),  # VHS animation
        ("a.png", "images", True, None, "video"),  # SaveAnimatedPNG
        ("a.jpg", "images", True, None, "image"),  # jpeg cannot animate
        ("a.flac", "audio", False, None, "audio"),
        ("a.glb", "3d", False, None, "3d"),
        ("a.latent", "latents", False, None, "latent"),
        ("a.svg", "images", False, None, "image"),
        ("a.tif", "images", False, None, "image"),
        ("a.mkv", "gifs", False, None, "video"),
        ("a.txt", "whatever", False, None, "text"),
        ("noext", "images", False, None, "image"),
        ("noext", "gifs", False, None, "video"),
        ("noext", "audio", False, None, "audio"),
        ("blob.bin", "custom", False, "video/h264-mp4", "video"),
        ("blob.bin", "custom", False, None, "other"),
    ],
)
def test_classify_output_file(
    filename: str, key: str, animated: bool, mime: str | None, kind: str
) -> None:
    assert classify_output_file(filename, key, animated=animated, mime=mime) == kind


def test_every_output_kind_is_collected() -> None:
    outputs = {
        "1": {"images": files("still.png", "clip.mp4"), "animated": [False, True]},
        "2": {"images": files("anim.webp"), "animated": [True]},
        "3": {
            "gifs": [
                {"filename": "vhs.gif", "subfolder": "", "type": "output", "format": "image/gif"}
            ]
        },
        "4": {"audio": files("a.flac", subfolder="audio")},
        "5": {"3d": files("m.glb", subfolder="mesh")},
        "6": {"latents": files("l.latent")},
        "7": {"text": ["hello", "world"]},
        "8": {"text": "single"},
        "9": {"text": [3]},
        "10": {
            "weird": [{"filename": "x.bin"}, {"nofile": True}, "str", 5],
            "result": ["a", {"x": 1}],
        },
        "11": {"images": [{"filename": "nosub.png"}]},
        "12": "not a mapping",
        "13": {"images": files("s.gif")},
    }
    result = assemble(
        "p", entry_with(outputs), signature=None, prompt=None, view_url=view_url, started=None
    )
    kinds = [(f.node_id, f.key, f.kind) for f in result.files]
    assert kinds == [
        ("1", "images", "image"),
        ("1", "images", "video"),
        ("2", "images", "video"),
        ("3", "gifs", "video"),
        ("4", "audio", "audio"),
        ("5", "3d", "3d"),
        ("6", "latents", "latent"),
        ("10", "weird", "other"),
        ("11", "images", "image"),
        ("13", "images", "image"),
    ]
    assert result.images == [
        view_url("still.png", "", "output"),
        view_url("nosub.png", "", "output"),
        view_url("s.gif", "", "output"),
    ]
    assert result.videos == [
        view_url("clip.mp4", "", "output"),
        view_url("anim.webp", "", "output"),
        view_url("vhs.gif", "", "output"),
    ]
    assert result.audios == [view_url("a.flac", "audio", "output")]
    assert result.texts == ["hello", "world", "single", "3"]
    assert result.texts_by_var == {"7": ["hello", "world"], "8": ["single"], "9": ["3"]}
    assert result.videos_by_var == {
        "1": [result.videos[0]],
        "2": [result.videos[1]],
        "3": [result.videos[2]],
    }
    # every key of every node, as the server sent it (a node output that is not a mapping
    # is read as empty by the typed history entry)
    assert result.outputs == {**outputs, "12": {}}


def test_single_animated_flag_applies_to_the_whole_batch() -> None:
    outputs = {"1": {"images": files("a.webp", "b.webp"), "animated": [True]}}
    result = assemble(
        "p", entry_with(outputs), signature=None, prompt=None, view_url=view_url, started=None
    )
    assert len(result.videos) == 2
    assert result.images == []


def test_duplicate_output_names_both_kept_in_order() -> None:
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 1}},
        "5": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "a"},
            "_meta": {"title": "$output.fast"},
        },
        "6": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "b"},
            "_meta": {"title": "$output.fast"},
        },
    }
    outputs = {
        "6": {"images": files("b1.png", "b2.png")},
        "5": {"images": files("a1.png", "a2.png")},
    }
    result = assemble(
        "p",
        entry_with(outputs),
        signature=parse(graph),
        prompt=graph,
        view_url=view_url,
        started=None,
    )
    assert [u.split("filename=")[1].split("&")[0] for u in result.images_by_var["fast"]] == [
        "a1.png",
        "a2.png",
        "b1.png",
        "b2.png",
    ]
    assert list(result.images_by_var) == ["fast"]


def test_node_named_twice_appears_under_both_names() -> None:
    graph = {
        "3": {"class_type": "SaveImage", "inputs": {}, "_meta": {"title": "$output.a, $output.b"}}
    }
    outputs = {"3": {"images": files("x.png"), "text": "t"}}
    result = assemble(
        "p",
        entry_with(outputs),
        signature=parse(graph),
        prompt=graph,
        view_url=view_url,
        started=None,
    )
    assert result.images == [view_url("x.png", "", "output")]
    assert result.images_by_var == {"a": result.images, "b": result.images}
    assert result.texts_by_var == {"a": ["t"], "b": ["t"]}


def test_view_url_gets_filename_subfolder_type() -> None:
    seen: list[tuple[str, str, str]] = []

    def record(f: str, s: str, t: str) -> str:
        seen.append((f, s, t))
        return "u"

    outputs = {
        "1": {
            "images": [
                {"filename": "a b&c#d+é.png", "subfolder": "s/t", "type": "temp"},
                {"filename": "x.png", "type": 5},
            ]
        }
    }
    assemble("p", entry_with(outputs), signature=None, prompt=None, view_url=record, started=None)
    assert seen == [("a b&c#d+é.png", "s/t", "temp"), ("x.png", "", "output")]


# ------------------------------------------------------------------------------- save()


class FakeDownloader:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[OutputFile, Path]] = []
        self.fail_on = fail_on

    def __call__(self, file: OutputFile, dest: Path) -> int:
        self.calls.append((file, dest))
        if file.filename == self.fail_on:
            dest.write_bytes(b"partial")
            raise OSError("connection reset")
        data = f"{file.subfolder}/{file.filename}".encode()
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)  # like HttpClient.download: atomic
        return len(data)


def result_with(
    names: list[str], downloader: FakeDownloader | None = None, **extra: Any
) -> ExecuteResult:
    outputs = {"1": {"images": files(*names)}, **extra}
    return assemble(
        "p",
        entry_with(outputs),
        signature=None,
        prompt=None,
        view_url=view_url,
        started=None,
        downloader=downloader,
    )


HOSTILE = [
    "../escape.png",
    "../../../../tmp/evil.png",
    "/etc/passwd",
    "..\\win.png",
    "C:\\drive.png",
    "a\x00b.png",
    "..",
    "NUL.png",
    "x" * 400 + ".png",
]


def test_save_never_escapes_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "out" / "nested"
    downloader = FakeDownloader()
    written = result_with(HOSTILE, downloader).save(target)
    assert len(written) == len(HOSTILE)
    assert len(set(written)) == len(written)
    for path in written:
        assert path.parent == target
        assert path.resolve().parent == target.resolve()
        assert path.read_bytes().startswith(b"/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (
        not Path("/tmp/evil.png").exists()
        or Path("/tmp/evil.png").stat().st_mtime < time.time() - 60
    )


def test_save_deduplicates_collisions_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"mine")
    outputs = {
        "1": {"images": files("a.png", subfolder="x")},
        "2": {"images": files("a.png", subfolder="y")},
        "3": {"images": files("A.PNG")},
    }
    result = assemble(
        "p",
        entry_with(outputs),
        signature=None,
        prompt=None,
        view_url=view_url,
        started=None,
        downloader=FakeDownloader(),
    )
    written = result.save(tmp_path)
    # Case-insensitive within one call; on disk the file system decides (A.PNG ≠ a.png here).
    assert [p.name for p in written] == ["a_1.png", "a_2.png", "A.PNG"]
    assert (tmp_path / "a.png").read_bytes() == b"mine"
    assert written[0].read_bytes() == b"x/a.png"
    assert written[1].read_bytes() == b"y/a.png"


def test_save_case_collisions_within_one_call(tmp_path: Path) -> None:
    written = result_with(["a.png", "A.PNG"], FakeDownloader()).save(tmp_path)
    assert [p.name for p in written] == ["a.png", "A_1.PNG"]


def test_save_overwrite_replaces_existing_but_not_siblings(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"old")
    outputs = {
        "1": {"images": files("a.png", subfolder="x")},
        "2": {"images": files("a.png", subfolder="y")},
    }
    result = assemble(
        "p",
        entry_with(outputs),
        signature=None,
        prompt=None,
        view_url=view_url,
        started=None,
        downloader=FakeDownloader(),
    )
    written = result.save(tmp_path, overwrite=True)
    assert [p.name for p in written] == ["a.png", "a_1.png"]
    assert (tmp_path / "a.png").read_bytes() == b"x/a.png"


def test_save_overwrite_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / "a.png").symlink_to(outside)
    result_with(["a.png"], FakeDownloader()).save(folder, overwrite=True)
    assert outside.read_bytes() == b"keep"
    assert not (folder / "a.png").is_symlink()


def test_save_filters_kinds(tmp_path: Path) -> None:
    outputs = {"1": {"images": files("a.png", "b.mp4")}, "2": {"audio": files("c.wav")}}
    result = assemble(
        "p",
        entry_with(outputs),
        signature=None,
        prompt=None,
        view_url=view_url,
        started=None,
        downloader=FakeDownloader(),
    )
    assert [p.name for p in result.save(tmp_path / "v", kinds=["video"])] == ["b.mp4"]
    assert [p.name for p in result.save(tmp_path / "ia", kinds={"image", "audio"})] == [
        "a.png",
        "c.wav",
    ]
    assert [p.name for p in result.save(tmp_path / "s", kinds="audio")] == ["c.wav"]
    with pytest.raises(InvalidArgumentError, match="pictures"):
        result.save(tmp_path, kinds=["pictures"])


def test_save_texts(tmp_path: Path) -> None:
    outputs = {"7": {"text": ["one", "two"]}, "8": {"text": "solo"}}
    result = assemble(
        "p", entry_with(outputs), signature=None, prompt=None, view_url=view_url, started=None
    )
    assert result.save(tmp_path) == []  # no files, no downloader needed
    written = result.save(tmp_path, texts=True)
    assert [p.name for p in written] == ["7_1.txt", "7_2.txt", "8.txt"]
    assert (tmp_path / "8.txt").read_text(encoding="utf-8") == "solo"


def test_save_without_downloader_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WitnessError, match="no downloader"):
        result_with(["a.png"]).save(tmp_path)


def test_failed_download_removes_its_file_and_propagates(tmp_path: Path) -> None:
    downloader = FakeDownloader(fail_on="b.png")
    with pytest.raises(OSError, match="reset"):
        result_with(["a.png", "b.png", "c.png"], downloader).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    assert len(downloader.calls) == 2


def test_result_repr_hides_downloader() -> None:
    assert "downloader" not in repr(result_with(["a.png"], FakeDownloader()))

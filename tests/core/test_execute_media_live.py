"""Media through ``Witness.execute`` against the real server: every media kind (image, mask,
``MaskUpload``, audio, video) and every form of a media value (path, ``Path``, URL, bytes,
file object, server-side name, ``ServerFile``), plus the values that must be refused.

Each run checks the pixels (or bytes) that came out, so a silently different input fails.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts.comfyui_server import ComfyServer
from tests.core.witness_live_support import (
    MEDIA,
    FileServer,
    file_server_fixture,  # noqa: F401 - fixture
    image_workflow,
    kit_fixture,  # noqa: F401 - fixture
    load_image_workflow,
    rand_color,
    read_png,
    rgb,
    server_state_fixture,  # noqa: F401 - fixture
    snapshot,
    wav,
)
from tests.support.images import png
from witness import ExecuteResult, MaskUpload, ServerFile, Witness
from witness.api_clients.types import FileRef
from witness.errors import UploadError

pytestmark = pytest.mark.integration

EXECUTORS = ["websocket", "http"]


def _download(url: str) -> bytes:
    response = requests.get(url, timeout=30)
    response.raise_for_status()
    return response.content


def _pixel(url: str) -> tuple[int, ...]:
    return read_png(_download(url)).at(0, 0)


def _near(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Equal within one step per channel (the server converts through float32)."""
    return len(got) == len(want) and all(abs(a - b) <= 1 for a, b in zip(got, want, strict=True))


def _colour_png() -> tuple[bytes, tuple[int, int, int]]:
    colour = rgb(rand_color())
    return png(3, 3, (*colour, 255)), colour


def _check_copy(result: ExecuteResult, colour: tuple[int, int, int]) -> None:
    assert result.status == "completed", result.msg
    (url,) = result.images_by_var["copy"]
    assert _near(_pixel(url)[:3], colour), (_pixel(url), colour)


# --------------------------------------------------------------------------------------------
# Value forms
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        "path_str",
        "path",
        "url",
        "bytes",
        "bytearray",
        "file_object",
        "server_name",
        "server_name_annotated",
        "server_file",
    ],
)
def test_every_media_value_form(
    kit: Witness, file_server: FileServer, tmp_path: Path, form: str
) -> None:
    data, colour = _colour_png()
    local = tmp_path / f"source-{form}.png"
    local.write_bytes(data)
    value: Any
    if form == "path_str":
        value = str(local)
    elif form == "path":
        value = local
    elif form == "url":
        value = file_server.put(f"{form}-{rand_color()}.png", data)
    elif form == "bytes":
        value = data
    elif form == "bytearray":
        value = bytearray(data)
    elif form == "file_object":
        value = local.open("rb")
    else:
        stored = kit.files.upload_image(data, filename=f"witness-form-{rand_color()}.png")
        value = {
            "server_name": stored.name,
            "server_name_annotated": f"{stored.name} [input]",
            "server_file": ServerFile(stored.name),
        }[form]
    try:
        result = kit.execute(load_image_workflow(), {"photo": value})
    finally:
        if hasattr(value, "close"):
            value.close()
    _check_copy(result, colour)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_media_upload_with_each_executor(kit: Witness, executor: str) -> None:
    data, colour = _colour_png()
    result = kit.execute(load_image_workflow(), {"photo": data}, executor=executor)  # type: ignore[arg-type]
    _check_copy(result, colour)


def test_server_name_in_a_subfolder(kit: Witness) -> None:
    data, colour = _colour_png()
    stored = kit.files.upload_image(data, filename="in-sub.png", subfolder=f"w{rand_color()}")
    result = kit.execute(load_image_workflow(), {"photo": f"{stored.subfolder}/{stored.name}"})
    _check_copy(result, colour)


def test_same_file_object_for_two_params_is_read_once(kit: Witness, tmp_path: Path) -> None:
    data, colour = _colour_png()
    (tmp_path / "twice.png").write_bytes(data)
    workflow = load_image_workflow()
    workflow["3"] = {
        "class_type": "LoadImage",
        "inputs": {"image": "placeholder.png"},
        "_meta": {"title": "$other.image!"},
    }
    workflow["4"] = {
        "class_type": "PreviewImage",
        "inputs": {"images": ["3", 0]},
        "_meta": {"title": "$output.copy"},
    }
    with (tmp_path / "twice.png").open("rb") as handle:
        result = kit.execute(workflow, {"photo": handle, "other": handle})
    assert result.status == "completed", result.msg
    assert len(result.images_by_var["copy"]) == 2
    for url in result.images_by_var["copy"]:
        assert _near(_pixel(url)[:3], colour)


def test_load_image_output_reads_the_output_folder(kit: Witness) -> None:
    color = rand_color()
    made = kit.execute(image_workflow(), {"width": 3, "height": 3, "color": color})
    assert made.status == "completed", made.msg
    (saved,) = made.files
    workflow = {
        "1": {
            "class_type": "LoadImageOutput",
            "inputs": {"image": "placeholder.png [output]"},
            "_meta": {"title": "$pic.image!"},
        },
        "2": {
            "class_type": "PreviewImage",
            "inputs": {"images": ["1", 0]},
            "_meta": {"title": "$output.copy"},
        },
    }
    by_name = kit.execute(workflow, {"pic": saved.filename})  # looked up in output/
    _check_copy(by_name, rgb(color))

    data, colour = _colour_png()
    stored = kit.files.upload_image(data, filename=f"witness-lio-{rand_color()}.png")
    from_input = kit.execute(workflow, {"pic": ServerFile(stored.name)})  # annotated [input]
    _check_copy(from_input, colour)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ("missing_path", "does not exist"),
        ("missing_path_str", "does not exist"),
        ("missing_relative_str", "does not exist"),
        ("unknown_name", "neither a local file nor a file in the server's input folder"),
        ("missing_server_file", "is not in the server's input folder"),
        ("text_file_object", "text mode"),
        ("unsupported_type", "cannot upload a value of type int"),
        ("empty_string", "empty string"),
    ],
)
def test_refused_media_values_submit_nothing(
    kit: Witness, comfy_server: ComfyServer | None, tmp_path: Path, form: str, message: str
) -> None:
    missing = tmp_path / "nope" / "missing.png"
    text = (MEDIA / "README.md").open(encoding="utf-8")
    values: dict[str, Any] = {
        "missing_path": missing,
        "missing_path_str": str(missing),
        "missing_relative_str": "./definitely-not-here.png",
        "unknown_name": f"not-on-the-server-{rand_color()}.png",
        "missing_server_file": ServerFile(f"absent-{rand_color()}.png"),
        "text_file_object": text,
        "unsupported_type": 42,
        "empty_string": "  ",
    }
    before = snapshot(kit, comfy_server)
    try:
        with pytest.raises(UploadError) as info:
            kit.execute(load_image_workflow(), {"photo": values[form]})
    finally:
        text.close()
    assert message in str(info.value)
    assert info.value.param == "photo"
    after = snapshot(kit, comfy_server)
    assert after.history == before.history
    assert after.inputs == before.inputs


# --------------------------------------------------------------------------------------------
# Media kinds
# --------------------------------------------------------------------------------------------


def _mask_workflow(loader: dict[str, Any], slot: int) -> dict[str, Any]:
    return {
        "1": loader,
        "2": {"class_type": "MaskToImage", "inputs": {"mask": ["1", slot]}},
        "3": {
            "class_type": "PreviewImage",
            "inputs": {"images": ["2", 0]},
            "_meta": {"title": "$output.mask"},
        },
    }


def test_mask_through_load_image_mask(kit: Witness) -> None:
    alpha = 64 + rand_color() % 100
    workflow = _mask_workflow(
        {
            "class_type": "LoadImageMask",
            "inputs": {"image": "placeholder.png", "channel": "alpha"},
            "_meta": {"title": "Mask, $mask.image!"},
        },
        0,
    )
    assert kit.inspect(workflow)["params"]["mask"]["media_kind"] == "mask"
    result = kit.execute(workflow, {"mask": png(4, 4, (0, 0, 0, alpha))})

    assert result.status == "completed", result.msg
    (url,) = result.images_by_var["mask"]
    # LoadImageMask's alpha channel is inverted: opaque = 0, transparent = 1
    assert _near(_pixel(url)[:1], (255 - alpha,))


def test_mask_upload_applies_the_mask_on_the_server(kit: Witness) -> None:
    original = kit.files.upload_image(MEDIA / "red.png", filename=f"witness-{rand_color()}.png")
    workflow = _mask_workflow(
        {
            "class_type": "LoadImage",
            "inputs": {"image": "placeholder.png"},
            "_meta": {"title": "$photo.image!"},
        },
        1,
    )
    workflow["4"] = {
        "class_type": "PreviewImage",
        "inputs": {"images": ["1", 0]},
        "_meta": {"title": "$output.copy"},
    }
    plain = kit.execute(workflow, {"photo": ServerFile(original.name)})
    assert plain.status == "completed", plain.msg
    assert _pixel(plain.images_by_var["mask"][0])[:1] == (0,)  # opaque: nothing masked

    masked = kit.execute(
        workflow,
        {"photo": MaskUpload(mask=MEDIA / "half_transparent.png", original=original.name)},
    )
    assert masked.status == "completed", masked.msg
    assert _near(_pixel(masked.images_by_var["mask"][0])[:1], (255 - 64,))
    assert _near(_pixel(masked.images_by_var["copy"][0])[:3], (255, 0, 0))
    assert masked.prompt_id is not None
    stored = kit.history.get(masked.prompt_id)
    assert stored is not None
    used = stored.prompt["1"]["inputs"]["image"]
    assert used != original.name  # a new, masked file
    assert kit.files.exists(FileRef(used, "", "input"))


def test_mask_upload_of_a_missing_original_is_an_upload_error(kit: Witness) -> None:
    workflow = load_image_workflow()
    with pytest.raises(UploadError):
        kit.execute(
            workflow,
            {"photo": MaskUpload(mask=MEDIA / "half_transparent.png", original="absent.png")},
        )
    with pytest.raises(UploadError, match="does not exist"):
        kit.execute(workflow, {"photo": MaskUpload(mask="/no/such/mask.png", original="x.png")})


@pytest.mark.parametrize("executor", EXECUTORS)
def test_audio_in_and_out(kit: Witness, executor: str) -> None:
    workflow = {
        "1": {
            "class_type": "LoadAudio",
            "inputs": {"audio": "placeholder.wav"},
            "_meta": {"title": "Voice, $clip.audio!"},
        },
        "2": {
            "class_type": "SaveAudio",
            "inputs": {"audio": ["1", 0], "filename_prefix": "witness_audio"},
            "_meta": {"title": "$output.saved"},
        },
        "3": {
            "class_type": "PreviewAudio",
            "inputs": {"audio": ["1", 0]},
            "_meta": {"title": "$output.preview"},
        },
    }
    assert kit.inspect(workflow)["params"]["clip"]["media_kind"] == "audio"
    clip = wav(0.2, freq=200 + rand_color() % 1000)
    result = kit.execute(workflow, {"clip": clip}, executor=executor)  # type: ignore[arg-type]

    assert result.status == "completed", result.msg
    assert set(result.audios_by_var) == {"saved", "preview"}
    assert len(result.audios) == 2
    assert [f.kind for f in result.files] == ["audio", "audio"]
    assert [f.type for f in result.files] == ["output", "temp"]
    assert _download(result.audios_by_var["saved"][0])[:4] == b"fLaC"
    assert result.images == result.videos == []


def test_audio_from_a_local_path(kit: Witness) -> None:
    workflow = {
        "1": {
            "class_type": "LoadAudio",
            "inputs": {"audio": "x.wav"},
            "_meta": {"title": "$a.audio"},
        },
        "2": {"class_type": "PreviewAudio", "inputs": {"audio": ["1", 0]}},
    }
    result = kit.execute(workflow, {"a": MEDIA / "tone.wav"})
    assert result.status == "completed", result.msg
    assert result.audios_by_var.keys() == {"2"}  # unnamed output: keyed by node id


def _video_workflow(frames: int = 4) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 32, "batch_size": frames, "color": 0},
            "_meta": {"title": "$color"},
        },
        "2": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}},
        "3": {
            "class_type": "SaveVideo",
            "inputs": {
                "video": ["2", 0],
                "filename_prefix": "witness_video",
                "format": "auto",
                "codec": "auto",
            },
            "_meta": {"title": "$output.clip"},
        },
    }


@pytest.mark.parametrize("executor", EXECUTORS)
def test_video_out_and_back_in(kit: Witness, executor: str) -> None:
    made = kit.execute(_video_workflow(), {"color": rand_color()}, executor=executor)  # type: ignore[arg-type]
    assert made.status == "completed", made.msg
    # SaveVideo reports its mp4 under "images": it must still be a video
    (item,) = made.files
    assert item.key == "images"
    assert item.kind == "video"
    assert made.images == []
    assert made.videos_by_var == {"clip": [item.url]}
    data = _download(item.url)
    assert data[4:8] == b"ftyp"

    workflow = {
        "1": {
            "class_type": "LoadVideo",
            "inputs": {"file": "placeholder.mp4"},
            "_meta": {"title": "Clip, $video.file!"},
        },
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {
            "class_type": "PreviewImage",
            "inputs": {"images": ["2", 0]},
            "_meta": {"title": "$output.frames"},
        },
    }
    assert kit.inspect(workflow)["params"]["video"]["media_kind"] == "video"
    back = kit.execute(workflow, {"video": io.BytesIO(data)}, executor=executor)  # type: ignore[arg-type]
    assert back.status == "completed", back.msg
    assert len(back.images_by_var["frames"]) == 4
    assert read_png(_download(back.images_by_var["frames"][0])).width == 32

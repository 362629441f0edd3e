"""The media value rule of :class:`witness.core.uploads.MediaResolver`, with a fake file client
(the real-server runs are in test_execute_media_live.py). URL values are served with
``responses`` at the HTTP boundary.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
import responses

from witness.api_clients.types import FileRef, UploadedFile
from witness.core.dsl import Param, ParamTarget
from witness.core.uploads import MaskUpload, MediaResolver, ServerFile, sniff_extension
from witness.errors import ApiError, UploadError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


class FakeFiles:
    """Records uploads; ``present`` holds the files the "server" has (by ``FileRef``)."""

    def __init__(self, *present: FileRef) -> None:
        self.present = set(present)
        self.uploads: list[dict[str, Any]] = []
        self.masks: list[dict[str, Any]] = []
        self.exists_calls: list[FileRef] = []
        self.fail: Exception | None = None

    def exists(self, ref: FileRef) -> bool:
        self.exists_calls.append(ref)
        return ref in self.present

    def upload_image(
        self,
        source: Path | bytes,
        *,
        filename: str,
        type: str,
        overwrite: bool,
        content_type: str,
    ) -> UploadedFile:
        if self.fail is not None:
            raise self.fail
        data = source.read_bytes() if isinstance(source, Path) else source
        self.uploads.append(
            {
                "data": data,
                "filename": filename,
                "type": type,
                "overwrite": overwrite,
                "mime": content_type,
            }
        )
        return UploadedFile(filename, "", type)

    def upload_mask(self, mask: Any, original: FileRef, *, type: str) -> UploadedFile:
        self.masks.append({"mask": mask, "original": original, "type": type})
        return UploadedFile(f"masked-{original.filename}", "clipspace", type)


def _target(
    class_type: str = "LoadImage", field: str = "image", folder: str = "input", node: str = "1"
) -> ParamTarget:
    return ParamTarget(
        node_id=node,
        field=field,
        class_type=class_type,
        default="x.png",
        linked=False,
        required=True,
        upload=True,
        description=None,
        media_kind="image",
        media_folder=folder,
    )


def _param(name: str = "photo", target: ParamTarget | None = None) -> Param:
    target = target or _target()
    return Param(name, (target,), required=True, upload=True, media_kind="image")


def _resolve(files: FakeFiles, value: Any, *, folder: str = "input", name: str = "photo") -> str:
    target = _target(folder=folder)
    return MediaResolver(files)(_param(name, target), target, value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Local values
# --------------------------------------------------------------------------------------------


def test_path_and_path_string_upload_under_their_name(tmp_path: Path) -> None:
    local = tmp_path / "cat.png"
    local.write_bytes(PNG)
    files = FakeFiles()
    assert _resolve(files, local) == "cat.png"
    assert _resolve(files, str(local)) == "cat.png"
    assert [u["filename"] for u in files.uploads] == ["cat.png", "cat.png"]
    assert files.uploads[0]["data"] == PNG
    assert files.uploads[0]["overwrite"] is False
    assert files.uploads[0]["mime"] == "image/png"
    assert files.exists_calls == []


@pytest.mark.parametrize(
    "value",
    [
        Path("/no/such/dir/x.png"),
        "/no/such/dir/x.png",
        "./not-here.png",
        "../not-here.png",
        "~/witness-definitely-missing.png",
    ],
)
def test_missing_local_files_are_upload_errors_without_asking_the_server(value: Any) -> None:
    files = FakeFiles()
    with pytest.raises(UploadError, match="does not exist") as info:
        _resolve(files, value)
    assert info.value.param == "photo"
    assert files.exists_calls == []
    assert files.uploads == []


def test_bytes_get_a_content_hash_name_with_a_sniffed_extension() -> None:
    files = FakeFiles()
    name = _resolve(files, PNG)
    assert name.startswith("witness-")
    assert name.endswith(".png")
    assert _resolve(FakeFiles(), bytearray(PNG)) == name
    assert _resolve(FakeFiles(), memoryview(PNG)) == name
    assert _resolve(FakeFiles(), b"RIFF\x00\x00\x00\x00WAVEfmt ").endswith(".wav")


def test_file_objects(tmp_path: Path) -> None:
    files = FakeFiles()
    local = tmp_path / "dir" / "named.png"
    local.parent.mkdir()
    local.write_bytes(PNG)
    with local.open("rb") as handle:
        assert _resolve(files, handle) == "named.png"
    assert _resolve(files, io.BytesIO(PNG)).startswith("witness-")
    assert [u["data"] for u in files.uploads] == [PNG, PNG]


class _Broken(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise OSError("disk gone")


class _Strange:
    def read(self) -> object:
        return 42


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (io.StringIO("text"), "text mode"),
        (_Broken(), "cannot read the file object"),
        (_Strange(), "returned no bytes"),
        (42, "cannot upload a value of type int"),
        (None, "cannot upload a value of type NoneType"),
        ("   ", "empty string"),
    ],
)
def test_unusable_values(value: Any, message: str) -> None:
    with pytest.raises(UploadError, match=message):
        _resolve(FakeFiles(), value)


def test_one_value_for_two_params_is_uploaded_and_read_once() -> None:
    files = FakeFiles()
    resolver = MediaResolver(files)  # type: ignore[arg-type]
    handle = io.BytesIO(PNG)
    first = _target(node="1")
    second = _target(node="2")
    names = [
        resolver(_param("a", first), first, handle),
        resolver(_param("b", second), second, handle),
        resolver(_param("c", second), second, PNG),
        resolver(_param("d", second), second, bytearray(PNG)),  # unhashable, equal bytes
    ]
    assert names[0] == names[1]
    assert names[2] == names[3]
    assert len(files.uploads) == 2  # the handle once, the bytes once
    assert resolver.uploaded == [UploadedFile(n, "", "input") for n in (names[0], names[2])]


def test_the_same_value_in_two_folders_is_uploaded_to_each() -> None:
    files = FakeFiles()
    resolver = MediaResolver(files)  # type: ignore[arg-type]
    inp, out = _target(folder="input"), _target("LoadImageOutput", folder="output")
    assert resolver(_param("a", inp), inp, PNG).endswith(".png")
    assert resolver(_param("b", out), out, PNG).endswith(".png [output]")
    assert [u["type"] for u in files.uploads] == ["input", "output"]


# --------------------------------------------------------------------------------------------
# Files already on the server
# --------------------------------------------------------------------------------------------


def test_server_names() -> None:
    files = FakeFiles(
        FileRef("a.png", "", "input"),
        FileRef("b.png", "sub/deep", "input"),
        FileRef("c.png", "", "output"),
    )
    assert _resolve(files, "a.png") == "a.png"
    assert _resolve(files, "sub/deep/b.png") == "sub/deep/b.png"
    assert _resolve(files, "sub\\deep\\b.png") == "sub/deep/b.png"
    assert _resolve(files, "c.png [output]") == "c.png [output]"  # annotated: that folder
    assert _resolve(files, "c.png", folder="output") == "c.png [output]"  # LoadImageOutput
    assert files.uploads == []


def test_unknown_server_name_is_an_upload_error() -> None:
    files = FakeFiles(FileRef("a.png", "", "output"))
    with pytest.raises(UploadError, match="neither a local file nor a file in the server's input"):
        _resolve(files, "a.png")


def test_server_file() -> None:
    files = FakeFiles(FileRef("a.png", "", "input"), FileRef("t.png", "s", "temp"))
    assert _resolve(files, ServerFile("a.png")) == "a.png"
    assert _resolve(files, ServerFile("s/t.png", type="temp")) == "s/t.png [temp]"
    # an input file for a node reading the output folder must say where it is
    assert _resolve(files, ServerFile("a.png"), folder="output") == "a.png [input]"
    with pytest.raises(UploadError, match="is not in the server's output folder"):
        _resolve(files, ServerFile("a.png", type="output"))


def test_client_errors_become_upload_errors_naming_the_input() -> None:
    files = FakeFiles()
    files.fail = ApiError(status=500, method="POST", url="u", server_message="boom")
    with pytest.raises(UploadError) as info:
        _resolve(files, PNG, name="photo")
    assert "media param 'photo' (node 1, LoadImage.image)" in str(info.value)
    assert info.value.param == "photo"
    assert isinstance(info.value.__cause__, ApiError)


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def test_mask_upload(tmp_path: Path) -> None:
    files = FakeFiles()
    mask = tmp_path / "mask.png"
    mask.write_bytes(PNG)
    name = _resolve(files, MaskUpload(mask=str(mask), original="sub/orig.png"))
    assert name == "clipspace/masked-orig.png"
    (call,) = files.masks
    assert call["original"] == FileRef("orig.png", "sub", "input")
    assert call["mask"] == mask
    original = FileRef("o.png", "", "output")
    _resolve(files, MaskUpload(mask=PNG, original=original))
    assert files.masks[1]["original"] == original


def test_mask_file_must_exist() -> None:
    files = FakeFiles()
    with pytest.raises(UploadError, match=r"mask file .* does not exist"):
        _resolve(files, MaskUpload(mask="/no/mask.png", original="x.png"))
    assert files.masks == []


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


@responses.activate
def test_url_values_are_downloaded_and_uploaded() -> None:
    responses.get("https://media.example/pics/dog.png?size=2", body=PNG)
    responses.get("https://media.example/render", body=PNG)
    files = FakeFiles()
    assert _resolve(files, "https://media.example/pics/dog.png?size=2") == "dog.png"
    assert _resolve(files, "HTTPS://media.example/render").endswith(".png")  # hash name
    assert [u["data"] for u in files.uploads] == [PNG, PNG]
    for call in responses.calls:
        assert "Authorization" not in call.request.headers


@responses.activate
def test_url_failures_and_limits_are_upload_errors() -> None:
    responses.get("https://media.example/missing.png", status=404)
    responses.get("https://media.example/big.png", body=PNG * 100)
    with pytest.raises(UploadError, match="404"):
        _resolve(FakeFiles(), "https://media.example/missing.png")
    small = MediaResolver(FakeFiles(), max_download_bytes=64)  # type: ignore[arg-type]
    with pytest.raises(UploadError):
        small(_param(), _target(), "https://media.example/big.png")


# --------------------------------------------------------------------------------------------
# Extensions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "ext"),
    [
        (PNG, ".png"),
        (b"\xff\xd8\xff\xe0", ".jpg"),
        (b"GIF89a", ".gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", ".webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", ".wav"),
        (b"fLaC\x00", ".flac"),
        (b"OggS\x00", ".ogg"),
        (b"ID3\x04", ".mp3"),
        (b"\xff\xfb\x90", ".mp3"),
        (b"\x00\x00\x00\x20ftypisom", ".mp4"),
        (b"\x1aE\xdf\xa3", ".webm"),
        (b"BM\x00\x00", ".bmp"),
        (b"plain text", ".bin"),
        (b"", ".bin"),
    ],
)
def test_sniff_extension(head: bytes, ext: str) -> None:
    assert sniff_extension(head) == ext


def test_home_relative_paths_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "home.png").write_bytes(PNG)
    files = FakeFiles()
    assert _resolve(files, "~/home.png") == "home.png"
    assert _resolve(files, Path("~") / "home.png") == "home.png"
    assert os.fspath(tmp_path)  # sanity: HOME really points there

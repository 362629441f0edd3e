"""FileClient against the real server (uploads are removed from the server's folders after
each test; the server has no delete route for them)."""

from __future__ import annotations

import contextlib
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from scripts.comfyui_server import ComfyServer
from tests.support.images import png
from witness.api_clients import FileClient
from witness.api_clients.types import FileRef, UploadedFile
from witness.config.settings import Settings
from witness.errors import (
    BadRequestError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
    UploadError,
)
from witness.transport.http import HttpClient


@pytest.fixture
def files(http: HttpClient) -> FileClient:
    return FileClient(http)


@pytest.fixture
def uploaded(comfy_server: ComfyServer | None) -> Iterator[list[UploadedFile]]:
    """Uploads appended here are deleted from the server's folders afterwards."""
    made: list[UploadedFile] = []
    yield made
    if comfy_server is None:
        return
    roots = {
        "input": comfy_server.input_dir,
        "output": comfy_server.output_dir,
        "temp": comfy_server.temp_dir,
    }
    for item in made:
        target = roots[item.type] / item.subfolder / item.name
        target.unlink(missing_ok=True)
        if item.subfolder:
            with contextlib.suppress(OSError):  # not empty: another upload still there
                (roots[item.type] / item.subfolder).rmdir()


@pytest.mark.integration
def test_upload_bytes_path_and_file_object(
    files: FileClient, uploaded: list[UploadedFile], tmp_path: Path, unique: str
) -> None:
    data = png(3, 3, (1, 2, 3, 255))
    from_bytes = files.upload_image(data, filename=f"w_{unique}_a.png")
    uploaded.append(from_bytes)
    assert from_bytes == UploadedFile(f"w_{unique}_a.png", "", "input")
    assert from_bytes.input_value == f"w_{unique}_a.png"

    source = tmp_path / f"w_{unique}_b.png"
    source.write_bytes(png(3, 3, (4, 5, 6, 255)))
    from_path = files.upload_image(source, subfolder=f"sub_{unique}")
    uploaded.append(from_path)
    assert from_path.name == source.name
    assert from_path.input_value == f"sub_{unique}/{source.name}"

    with source.open("rb") as handle:
        from_file = files.upload_image(handle, type="temp", filename=f"w_{unique}_c.png")
    uploaded.append(from_file)
    assert from_file.type == "temp"
    assert from_file.input_value == f"w_{unique}_c.png [temp]"

    assert files.download(from_bytes.ref) == data
    assert files.download(from_path.ref) == source.read_bytes()
    assert files.download(f"w_{unique}_c.png [temp]") == source.read_bytes()


@pytest.mark.integration
def test_the_stored_name_can_differ_from_the_one_sent(
    files: FileClient, uploaded: list[UploadedFile], unique: str
) -> None:
    name = f"w_{unique}.png"
    first = files.upload_image(png(2, 2, (9, 9, 9, 255)), filename=name)
    second = files.upload_image(png(2, 2, (8, 8, 8, 255)), filename=name)
    same = files.upload_image(png(2, 2, (9, 9, 9, 255)), filename=name)
    uploaded += [first, second]
    assert first.name == name
    assert second.name == f"w_{unique} (1).png"
    assert same.name == name  # identical bytes: the existing file is reused

    replaced = files.upload_image(png(2, 2, (7, 7, 7, 255)), filename=name, overwrite=True)
    assert replaced.name == name
    assert files.download(replaced.ref) == png(2, 2, (7, 7, 7, 255))


@pytest.mark.integration
def test_odd_file_names_arrive_intact(
    files: FileClient, uploaded: list[UploadedFile], unique: str
) -> None:
    for name in (
        f'caf\u00e9 "{unique}".png',
        f"semi;colon {unique}.png",
        f"percent%20 plus+ {unique}.png",
    ):
        stored = files.upload_image(png(1, 1), filename=name)
        uploaded.append(stored)
        assert stored.name == name
        assert files.download(stored.ref) == png(1, 1)


@pytest.mark.integration
def test_large_uploads_and_downloads_use_constant_memory(
    files: FileClient, uploaded: list[UploadedFile], tmp_path: Path, unique: str
) -> None:
    size = 24 * 2**20
    source = tmp_path / f"w_{unique}.bin"
    with source.open("wb") as handle:
        for _ in range(size // 2**20):
            handle.write(os.urandom(2**20))
    tracemalloc.start()
    try:
        stored = files.upload_image(source)
        uploaded.append(stored)
        target = tmp_path / "back.bin"
        assert files.download_to(stored.ref, target) == size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20
    assert target.read_bytes() == source.read_bytes()


@pytest.mark.integration
def test_download_to_a_path_a_file_object_and_in_chunks(
    files: FileClient, uploaded: list[UploadedFile], tmp_path: Path, unique: str
) -> None:
    data = png(64, 64, (10, 20, 30, 40))
    stored = files.upload_image(data, filename=f"w_{unique}.png")
    uploaded.append(stored)
    target = tmp_path / "deep" / "copy.png"
    assert files.download_to(stored.ref, target) == len(data)
    assert target.read_bytes() == data
    sink = io.BytesIO()
    assert files.download_to(stored.name, sink, type="input") == len(data)
    assert sink.getvalue() == data
    assert b"".join(files.iter_download(stored.ref, chunk_size=100)) == data
    assert files.exists(stored.ref)
    assert not files.exists(FileRef(f"missing_{unique}.png", "", "input"))


@pytest.mark.integration
def test_preview_and_channel_reencode(
    files: FileClient, uploaded: list[UploadedFile], unique: str
) -> None:
    stored = files.upload_image(png(8, 8, (200, 100, 50, 128)), filename=f"w_{unique}.png")
    uploaded.append(stored)
    webp = files.download(stored.ref, preview="webp", quality=50)
    assert webp[:4] == b"RIFF"
    assert webp[8:12] == b"WEBP"
    jpeg = files.download(stored.ref, preview="jpeg")
    assert jpeg[:2] == b"\xff\xd8"
    rgb = files.download(stored.ref, channel="rgb")
    assert rgb[:8] == b"\x89PNG\r\n\x1a\n"
    assert rgb[25] == 2  # PNG colour type 2: RGB, no alpha
    alpha = files.download(stored.ref, channel="a")
    assert alpha[25] == 6  # RGBA holding only the alpha


@pytest.mark.integration
def test_missing_and_forbidden_files(files: FileClient) -> None:
    with pytest.raises(NotFoundError):
        files.download(FileRef("witness_no_such_file.png", "", "output"))
    # A climbing subfolder is refused before asking (the server would answer 403).
    with pytest.raises(InvalidArgumentError) as refused:
        files.download(FileRef("x.png", "../../../../etc", "output"))
    assert refused.value.argument == "subfolder"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"file": "../server.py"}, "filename"),
        ({"file": "/etc/passwd"}, "filename"),
        ({"file": ""}, "filename"),
        ({"file": "x.png", "type": "models"}, "type"),
        ({"file": "x.png", "preview": "gif"}, "preview"),
        ({"file": "x.png", "preview": "webp", "quality": 0}, "quality"),
        ({"file": "x.png", "preview": "webp", "quality": 101}, "quality"),
        ({"file": "x.png", "quality": 80}, "quality"),
        ({"file": "x.png", "channel": "rgbx"}, "channel"),
    ],
)
@pytest.mark.integration
def test_malformed_download_arguments(
    files: FileClient, kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        files.download(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"source": b"abc"}, "filename"),
        ({"source": b"abc", "filename": "a.png", "type": "models"}, "type"),
        ({"source": b"abc", "filename": "dir/a.png"}, "filename"),
        ({"source": "/nonexistent/witness.png"}, "source"),
        ({"source": 42, "filename": "a.png"}, "source"),
    ],
)
@pytest.mark.integration
def test_malformed_upload_arguments(
    files: FileClient, kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        files.upload_image(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


@pytest.mark.integration
def test_upload_outside_the_folder_is_refused_by_the_server(files: FileClient) -> None:
    with pytest.raises(BadRequestError):
        files.upload_image(b"abc", filename="a.png", subfolder="../../witness_escape")


@pytest.mark.integration
def test_mask_is_applied_to_the_original(
    files: FileClient, uploaded: list[UploadedFile], unique: str
) -> None:
    original = files.upload_image(png(4, 4, (255, 0, 0, 255)), filename=f"w_{unique}_img.png")
    uploaded.append(original)
    masked = files.upload_mask(
        png(4, 4, (0, 0, 0, 0)), original.ref, filename=f"w_{unique}_masked.png"
    )
    uploaded.append(masked)
    assert masked.name == f"w_{unique}_masked.png"
    content = files.download(masked.ref)
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    assert content != png(4, 4, (0, 0, 0, 0))


@pytest.mark.integration
def test_mask_on_a_missing_original_raises_instead_of_a_silent_200(
    files: FileClient, uploaded: list[UploadedFile], unique: str
) -> None:
    missing = {"filename": f"w_{unique}_missing.png", "subfolder": "", "type": "input"}
    with pytest.raises(UploadError, match="stored nothing"):
        files.upload_mask(png(), missing, filename=f"w_{unique}_m.png")
    # With overwrite, an older file at the target name must not pass for the result.
    older = files.upload_image(png(2, 2), filename=f"w_{unique}_old.png")
    uploaded.append(older)
    with pytest.raises(UploadError):
        files.upload_mask(png(), missing, filename=older.name, overwrite=True)


@pytest.mark.integration
def test_mask_arguments_are_checked(files: FileClient) -> None:
    with pytest.raises(InvalidArgumentError):
        files.upload_mask(png(), {"filename": ""}, filename="m.png")
    with pytest.raises(InvalidArgumentError):
        files.upload_mask(png(), {"filename": "../x.png"}, filename="m.png")
    with pytest.raises(InvalidArgumentError):
        files.upload_mask(png(), {"filename": "x.png", "type": "models"}, filename="m.png")


@pytest.mark.integration
def test_view_url_is_encoded(files: FileClient, http: HttpClient) -> None:
    url = files.view_url(FileRef("a b&c.png", "x/y", "temp"), preview="webp", quality=80)
    assert url == (
        http.url("/view") + "?filename=a+b%26c.png&type=temp&subfolder=x%2Fy&preview=webp%3B80"
    )


def test_view_url_adds_query_params_only_when_asked() -> None:
    http = HttpClient(Settings(api_url="http://h:1", query_params={"token": "s3cret-token"}))
    files = FileClient(http)
    assert "token" not in files.view_url("a.png")
    assert files.view_url("a.png", include_query_params=True).startswith(
        "http://h:1/api/view?token=s3cret-token&filename=a.png"
    )


@pytest.mark.integration
def test_max_upload_size_is_read_once(files: FileClient) -> None:
    assert files.max_upload_size() == 100 * 2**20
    assert files.max_upload_size() == 100 * 2**20


# -- a server with a 1 MiB limit (and a model folder) ---------------------------------------


@pytest.mark.integration
def test_too_large_upload_is_refused_before_sending(special_http: HttpClient) -> None:
    files = FileClient(special_http)
    with pytest.raises(PayloadTooLargeError) as info:
        files.upload_image(b"\0" * (2 * 2**20), filename="big.bin")
    assert info.value.limit == 2**20
    assert info.value.size == 2 * 2**20
    assert "1 MiB" in str(info.value)


@pytest.mark.integration
def test_server_413_for_an_unsized_stream_keeps_the_limit(special_http: HttpClient) -> None:
    class Unsized(io.RawIOBase):
        def __init__(self) -> None:
            self._left = 2 * 2**20

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            n = min(len(buffer), self._left)
            buffer[:n] = b"\0" * n
            self._left -= n
            return n

    with pytest.raises(PayloadTooLargeError) as info:
        FileClient(special_http).upload_image(Unsized(), filename="big.bin")  # type: ignore[arg-type]
    assert info.value.status == 413
    assert info.value.limit == 2**20


@pytest.mark.integration
def test_view_metadata_of_a_safetensors_file(special_http: HttpClient) -> None:
    files = FileClient(special_http)
    assert files.view_metadata("loras", "tiny.safetensors") == {
        "ss_network_dim": "4",
        "modelspec.title": "Tiny",
    }
    assert files.view_metadata("loras", "sub/deep.safetensors") == {"k": "v"}
    with pytest.raises(NotFoundError):
        files.view_metadata("loras", "missing.safetensors")
    with pytest.raises(InvalidArgumentError):
        files.view_metadata("loras", "tiny.ckpt")


@responses.activate
def test_features_without_a_limit_skip_the_precheck() -> None:
    base = "http://comfy.test:8188"
    responses.add(responses.GET, f"{base}/api/features", json={})
    responses.add(
        responses.POST,
        f"{base}/api/upload/image",
        json={"name": "a (1).png", "subfolder": "", "type": "input"},
    )
    files = FileClient(HttpClient(Settings(api_url=base)))
    assert files.upload_image(b"x", filename="a.png").name == "a (1).png"
    assert files.max_upload_size() is None
    assert len(responses.calls) == 2  # /features once, then the upload

"""witness.utils.media: media kind by extension, MIME type and URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from witness.utils.media import (
    ANIMATABLE_EXTENSIONS,
    extension_of,
    guess_media_kind,
    guess_mime,
    kind_from_extension,
    kind_from_mime,
)


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("a.png", "png"),
        ("A.PNG", "png"),
        ("dir/sub/clip.tar.mp4", "mp4"),
        ("C:\\x\\y.WebM", "webm"),
        ("https://h.example/p/a%20b.JPG?x=1.gif#frag.mov", "jpg"),
        ("noext", ""),
        (".bashrc", ""),
        ("trailing.", ""),
        (Path("x/y.flac"), "flac"),
    ],
)
def test_extension_of(name: str | Path, ext: str) -> None:
    assert extension_of(name) == ext


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        *[
            (f"x.{e}", "image")
            for e in ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "svg")
        ],
        *[(f"x.{e}", "video") for e in ("mp4", "webm", "mov", "mkv", "avi", "m4v")],
        *[(f"x.{e}", "audio") for e in ("mp3", "wav", "flac", "ogg", "opus", "aac", "m4a")],
        *[(f"x.{e}", "3d") for e in ("glb", "gltf", "obj", "ply")],
        ("x.latent", "latent"),
        ("x.txt", "text"),
        ("x.json", "text"),
        ("x.safetensors", None),
        ("x", None),
    ],
)
def test_guess_media_kind_by_extension(name: str, kind: str | None) -> None:
    assert guess_media_kind(name) == kind


def test_extension_wins_over_mime_and_mime_is_fallback() -> None:
    assert guess_media_kind("clip.mp4", mime="image/png") == "video"
    assert guess_media_kind("blob", mime="video/h264-mp4") == "video"
    assert guess_media_kind("blob.bin", mime="audio/x-wav; rate=44100") == "audio"
    assert guess_media_kind(None, mime="image/gif") == "image"
    assert guess_media_kind("blob") is None


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/png", "image"),
        ("IMAGE/SVG+XML", "image"),
        ("video/webm", "video"),
        ("audio/mpeg", "audio"),
        ("text/plain; charset=utf-8", "text"),
        ("application/json", "text"),
        ("model/gltf-binary", "3d"),
        ("application/ogg", "audio"),
        ("application/octet-stream", None),
        ("", None),
        (None, None),
    ],
)
def test_kind_from_mime(mime: str | None, kind: str | None) -> None:
    assert kind_from_mime(mime) == kind


def test_kind_from_extension_accepts_dot_and_case() -> None:
    assert kind_from_extension(".MP3") == "audio"
    assert kind_from_extension("") is None


def test_animatable_extensions_are_images() -> None:
    assert all(kind_from_extension(e) == "image" for e in ANIMATABLE_EXTENSIONS)


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.png", "image/png"),
        ("a.webp", "image/webp"),
        ("a.webm", "video/webm"),
        ("a.mp4", "video/mp4"),
        ("a.flac", "audio/flac"),
        ("a.glb", "model/gltf-binary"),
        ("a.unknownext", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_guess_mime(name: str, mime: str) -> None:
    assert guess_mime(name) == mime

"""What kind of media a file is, judged by its name (extension) or its MIME type.

Pure helpers shared by result assembly (classifying server outputs) and uploads (choosing how
to send a local file). The extension tables are deliberately broad: a file whose kind cannot be
told is reported as ``None`` so the caller can fall back to other evidence (the output key a
node used, say) instead of silently dropping it.

Kinds:
    ``image``, ``video``, ``audio``, ``text``, ``3d``, ``latent``.

Animated stills: ``gif``, ``webp``, ``png``/``apng`` files are images by extension; whether one
is an animation is not visible in its name, so callers that know (ComfyUI's ``animated`` flag,
VHS's ``gifs`` key) decide that themselves (see :data:`ANIMATABLE_EXTENSIONS`).
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from typing import Literal
from urllib.parse import unquote, urlsplit

__all__ = [
    "ANIMATABLE_EXTENSIONS",
    "AUDIO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "LATENT_EXTENSIONS",
    "MODEL3D_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "MediaKind",
    "extension_of",
    "guess_media_kind",
    "guess_mime",
    "kind_from_extension",
    "kind_from_mime",
]

MediaKind = Literal["image", "video", "audio", "text", "3d", "latent"]

IMAGE_EXTENSIONS = frozenset(
    {
        "png", "apng", "jpg", "jpeg", "jpe", "jfif", "pjpeg", "pjp", "webp", "bmp", "dib",
        "tif", "tiff", "gif", "svg", "svgz", "ico", "heic", "heif", "avif", "jxl", "exr",
        "hdr", "tga", "psd", "ppm", "pgm", "pbm", "pnm", "qoi", "dds",
    }
)  # fmt: skip
VIDEO_EXTENSIONS = frozenset(
    {
        "mp4", "m4v", "webm", "mov", "qt", "mkv", "avi", "wmv", "flv", "mpg", "mpeg", "m2v",
        "m2ts", "mts", "ts", "3gp", "3g2", "ogv", "asf", "vob", "f4v", "hevc", "h264", "y4m",
    }
)  # fmt: skip
AUDIO_EXTENSIONS = frozenset(
    {
        "mp3", "wav", "wave", "flac", "ogg", "oga", "opus", "aac", "m4a", "m4b", "wma",
        "aif", "aiff", "aifc", "alac", "amr", "mka", "weba", "mid", "midi", "ac3", "caf",
    }
)  # fmt: skip
TEXT_EXTENSIONS = frozenset(
    {"txt", "text", "json", "md", "csv", "tsv", "yaml", "yml", "xml", "srt", "vtt", "log"}
)
MODEL3D_EXTENSIONS = frozenset(
    {
        "glb", "gltf", "obj", "ply", "stl", "fbx", "usd", "usda", "usdc", "usdz", "3mf", "dae",
        "splat", "spz",
    }
)  # fmt: skip
LATENT_EXTENSIONS = frozenset({"latent"})

#: Image formats that may hold an animation (decided by the caller's evidence).
ANIMATABLE_EXTENSIONS = frozenset({"gif", "webp", "png", "apng"})

_BY_EXTENSION: dict[str, MediaKind] = {
    **dict.fromkeys(IMAGE_EXTENSIONS, "image"),
    **dict.fromkeys(VIDEO_EXTENSIONS, "video"),
    **dict.fromkeys(AUDIO_EXTENSIONS, "audio"),
    **dict.fromkeys(TEXT_EXTENSIONS, "text"),
    **dict.fromkeys(MODEL3D_EXTENSIONS, "3d"),
    **dict.fromkeys(LATENT_EXTENSIONS, "latent"),
}

_MIME_PREFIXES: dict[str, MediaKind] = {
    "image/": "image",
    "video/": "video",
    "audio/": "audio",
    "text/": "text",
    "model/": "3d",
}
_MIME_EXACT: dict[str, MediaKind] = {
    "application/json": "text",
    "application/xml": "text",
    "application/x-yaml": "text",
    "application/yaml": "text",
    "application/ogg": "audio",
    "application/mp4": "video",
    "application/x-mpegurl": "video",
}

# Types the standard table lacks or gets wrong on some platforms.
_EXTRA_MIME: dict[str, str] = {
    "webp": "image/webp",
    "avif": "image/avif",
    "heic": "image/heic",
    "heif": "image/heif",
    "jxl": "image/jxl",
    "apng": "image/apng",
    "svg": "image/svg+xml",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "m4v": "video/x-m4v",
    "mov": "video/quicktime",
    "flac": "audio/flac",
    "opus": "audio/opus",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "obj": "model/obj",
    "ply": "application/octet-stream",
    "stl": "model/stl",
    "latent": "application/octet-stream",
}


def extension_of(name: str | os.PathLike[str]) -> str:
    """The lower-case extension (no dot) of a file name, path or URL; ``""`` if none.

    For URLs the query and fragment are ignored and the path is percent-decoded, so
    ``https://h/a%20b.PNG?x=1`` gives ``"png"``. A leading dot alone (``.bashrc``) is not an
    extension.
    """
    text = os.fspath(name)
    if "://" in text:
        with contextlib.suppress(ValueError):
            text = unquote(urlsplit(text).path)
    base = text.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem.strip("."):
        return ""
    return ext.strip().lower()


def kind_from_extension(ext: str) -> MediaKind | None:
    """The media kind of an extension (with or without the dot, any case), or ``None``."""
    return _BY_EXTENSION.get(ext.lstrip(".").lower())


def kind_from_mime(mime: str | None) -> MediaKind | None:
    """The media kind of a MIME type like ``video/h264-mp4`` (parameters ignored), or ``None``."""
    if not mime:
        return None
    base = mime.split(";", 1)[0].strip().lower()
    if base in _MIME_EXACT:
        return _MIME_EXACT[base]
    for prefix, kind in _MIME_PREFIXES.items():
        if base.startswith(prefix):
            return kind
    return None


def guess_media_kind(
    name: str | os.PathLike[str] | None = None, *, mime: str | None = None
) -> MediaKind | None:
    """The media kind of a file: by its extension first, then by a MIME type if given.

    Args:
        name: A file name, path or URL.
        mime: A MIME type reported alongside (``Content-Type``, VHS's ``format``).

    Returns:
        The kind, or ``None`` when neither the name nor the MIME type tells.
    """
    if name is not None:
        kind = kind_from_extension(extension_of(name))
        if kind is not None:
            return kind
    return kind_from_mime(mime)


def guess_mime(name: str | os.PathLike[str], default: str = "application/octet-stream") -> str:
    """A MIME type for a file name (for multipart uploads), ``default`` when unknown."""
    ext = extension_of(name)
    if ext in _EXTRA_MIME:
        return _EXTRA_MIME[ext]
    guessed, _ = mimetypes.guess_type("x." + ext) if ext else (None, None)
    return guessed or default

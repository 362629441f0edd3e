"""Media parameter values → the name of a file stored on the server.

The rule for a media (``~``) parameter's value, in this order:

1. :class:`ServerFile` — a file that is already on the server; it must exist there.
2. :class:`MaskUpload` — a mask applied to an image already on the server
   (``POST /upload/mask``; the result is verified).
3. ``pathlib.Path`` (any ``os.PathLike``) — a local file; it must exist, else
   :class:`~witness.errors.UploadError`.
4. ``bytes`` / ``bytearray`` / ``memoryview`` — uploaded under a content-hash name with an
   extension sniffed from the bytes.
5. a binary file object (has ``read``) — read and uploaded under its base name.
6. ``str``:

   * ``http://`` or ``https://`` → downloaded (no ComfyUI credentials are sent to that host;
     size-limited, with a timeout) and uploaded;
   * the path of an existing local file → uploaded;
   * an absolute path, or one starting with ``~``, ``./`` or ``../``, that does not exist →
     :class:`~witness.errors.UploadError` (it names a local file, never a server file);
   * otherwise the name of a file already on the server, in the target's folder (``input``,
     or ``output`` for ``LoadImageOutput``), e.g. ``"example.png"`` or ``"sub/x.png"``; an
     annotated name (``"x.png [output]"``, as the UI writes it) names that folder instead. It
     is checked with ``HEAD /view``: a name that is neither a local file nor on the server is
     an :class:`~witness.errors.UploadError` — never a silently different input.

Every media kind (image, mask, video, audio) is uploaded with ``POST /upload/image`` (the only
upload route the server has for them; it accepts any file type), into the folder the node
reads from, without overwriting: the name the server returns (``"x (1).png"`` on a collision)
is what goes into the workflow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from witness.api_clients.file_client import FileClient
from witness.api_clients.types import FileRef, UploadedFile
from witness.core.dsl import Param, ParamTarget
from witness.errors import UploadError, WitnessError
from witness.utils.fetch import DEFAULT_MAX_BYTES, fetch_url, filename_from_url
from witness.utils.files import safe_filename
from witness.utils.media import guess_mime

__all__ = ["MaskUpload", "MediaResolver", "ServerFile", "sniff_extension"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerFile:
    """A file that is already on the server (not uploaded again).

    Attributes:
        name: File name, optionally with a subfolder (``"sub/x.png"``).
        type: ``"input"`` (default), ``"output"`` or ``"temp"``.
    """

    name: str
    type: str = "input"


@dataclass(frozen=True)
class MaskUpload:
    """A mask to apply to an image already on the server (``POST /upload/mask``).

    Attributes:
        mask: The mask image (its alpha channel is used): path, bytes or file object.
        original: The image to mask, by name (``"x.png"``) or :class:`FileRef`.
    """

    mask: Any
    original: str | FileRef


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, ".png"),
    (b"\xff\xd8\xff", 0, ".jpg"),
    (b"GIF8", 0, ".gif"),
    (b"WEBP", 8, ".webp"),
    (b"WAVE", 8, ".wav"),
    (b"fLaC", 0, ".flac"),
    (b"OggS", 0, ".ogg"),
    (b"ID3", 0, ".mp3"),
    (b"ftyp", 4, ".mp4"),
    (b"\x1aE\xdf\xa3", 0, ".webm"),
    (b"BM", 0, ".bmp"),
)


_ANNOTATED = re.compile(r"^(?P<name>.+?) \[(?P<type>input|output|temp)\]$")
_LOCAL_PREFIXES = ("~", "./", "../", ".\\", "..\\")


def sniff_extension(data: bytes, default: str = ".bin") -> str:
    """Guess a file extension from the first bytes of a file."""
    for magic, offset, ext in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return ext
    if data[:2] in {b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"}:
        return ".mp3"
    return default


class MediaResolver:
    """Turns media parameter values into server-side names (see the module doc for the rule).

    One resolver serves one ``execute()`` call; a value given to several parameters is
    uploaded once (a file object is read once).

    Args:
        files: The file client used for uploads and existence checks.
        max_download_bytes: Size limit for URL values.
        download_timeout: Timeout for URL values, seconds or ``(connect, read)``.
    """

    def __init__(
        self,
        files: FileClient,
        *,
        max_download_bytes: int = DEFAULT_MAX_BYTES,
        download_timeout: float | tuple[float, float] = (10.0, 60.0),
    ) -> None:
        self._files = files
        self._max_download_bytes = max_download_bytes
        self._download_timeout = download_timeout
        self.uploaded: list[UploadedFile] = []
        self._done: dict[tuple[str, Any], str] = {}

    def __call__(self, param: Param, target: ParamTarget, value: Any) -> str:
        """Resolve ``value`` for one target of a media param; returns the name to write."""
        folder = target.media_folder or "input"
        key = (folder, _cache_key(value))
        if key in self._done:
            return self._done[key]
        try:
            name = self._resolve(param.name, folder, value)
        except UploadError:
            raise
        except WitnessError as exc:
            raise UploadError(
                f"media param {param.name!r} (node {target.node_id}, {target.class_type}."
                f"{target.field}): {exc}",
                param=param.name,
            ) from exc
        self._done[key] = name
        return name

    # -- the rule ---------------------------------------------------------------------------

    def _resolve(self, name: str, folder: str, value: Any) -> str:
        if isinstance(value, ServerFile):
            return self._existing(name, value.name, value.type, folder, explicit=True)
        if isinstance(value, MaskUpload):
            return self._mask(name, folder, value)
        if isinstance(value, os.PathLike):
            path = Path(os.fspath(value)).expanduser()
            if not path.is_file():
                raise _not_a_file(name, "local file", path)
            return self._upload(name, folder, path, path.name)
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            return self._upload(name, folder, data, _hash_name(data))
        if hasattr(value, "read") and not isinstance(value, str):
            data = _read_all(value, name)
            raw_name = os.path.basename(str(getattr(value, "name", "") or ""))
            return self._upload(name, folder, data, raw_name or _hash_name(data))
        if isinstance(value, str):
            text = value.strip()
            if not text:
                raise UploadError(f"media param {name!r}: empty string", param=name)
            if text.lower().startswith(("http://", "https://")):
                return self._from_url(name, folder, text)
            local = Path(text).expanduser()
            if local.is_file():
                return self._upload(name, folder, local, local.name)
            if local.is_absolute() or text.startswith(_LOCAL_PREFIXES) or local.is_dir():
                raise _not_a_file(name, "local file", local)
            annotated = _ANNOTATED.match(text)
            if annotated:
                return self._existing(
                    name, annotated["name"], annotated["type"], folder, explicit=False
                )
            return self._existing(name, text, folder, folder, explicit=False)
        raise UploadError(
            f"media param {name!r}: cannot upload a value of type {type(value).__name__} "
            "(give a path, URL, bytes, a binary file object, ServerFile or MaskUpload)",
            param=name,
        )

    def _existing(
        self, name: str, server_name: str, folder: str, target_folder: str, *, explicit: bool
    ) -> str:
        """``server_name`` in the server's ``folder``; the value a node reading from
        ``target_folder`` needs (annotated ``"x.png [output]"`` unless both are ``input``)."""
        subfolder, _, filename = server_name.replace("\\", "/").rpartition("/")
        ref = FileRef(filename, subfolder, folder)
        if self._files.exists(ref):
            logger.debug("media param %r uses %s already on the server", name, ref)
            return ref.path if folder == target_folder == "input" else ref.annotated
        if explicit:
            raise UploadError(
                f"media param {name!r}: {server_name!r} is not in the server's {folder} folder",
                param=name,
            )
        raise UploadError(
            f"media param {name!r}: {server_name!r} is neither a local file nor a file in the "
            f"server's {folder} folder (use an existing path, an http(s) URL, bytes, or "
            "ServerFile for a file on the server)",
            param=name,
        )

    def _from_url(self, name: str, folder: str, url: str) -> str:
        with fetch_url(
            url, max_bytes=self._max_download_bytes, timeout=self._download_timeout
        ) as fetched:
            data = fetched.read_bytes()
        base = safe_filename(filename_from_url(url, ""), default="")
        if not base or "." not in base:
            base = _hash_name(data)
        return self._upload(name, folder, data, base)

    def _mask(self, name: str, folder: str, value: MaskUpload) -> str:
        original = value.original
        if isinstance(original, str):
            subfolder, _, filename = original.replace("\\", "/").rpartition("/")
            original = FileRef(filename, subfolder, "input")
        mask = value.mask
        if isinstance(mask, str):
            mask = Path(mask).expanduser()
        if isinstance(mask, os.PathLike) and not Path(os.fspath(mask)).is_file():
            raise _not_a_file(name, "mask file", Path(os.fspath(mask)))
        stored = self._files.upload_mask(mask, original, type=folder)
        self.uploaded.append(stored)
        return stored.input_value

    def _upload(self, name: str, folder: str, source: Path | bytes, filename: str) -> str:
        filename = safe_filename(filename, default="upload.bin")
        stored = self._files.upload_image(
            source,
            filename=filename,
            type=folder,
            overwrite=False,
            content_type=guess_mime(filename) or "application/octet-stream",
        )
        self.uploaded.append(stored)
        logger.debug("media param %r uploaded as %s", name, stored)
        return stored.input_value


def _cache_key(value: Any) -> Any:
    """Equal values share an upload; unhashable ones (and file objects, which can be read
    only once) are keyed by identity."""
    if hasattr(value, "read") and not isinstance(value, str | bytes):
        return ("id", id(value))
    if isinstance(value, bytearray | memoryview):
        return ("bytes", bytes(value))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return (type(value).__name__, value)


def _hash_name(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()[:16]
    return f"witness-{digest}{sniff_extension(data)}"


def _read_all(handle: IO[bytes] | Any, name: str) -> bytes:
    try:
        data = handle.read()
    except (OSError, ValueError) as exc:
        raise UploadError(
            f"media param {name!r}: cannot read the file object: {exc}", param=name
        ) from exc
    if isinstance(data, str):
        raise UploadError(
            f"media param {name!r}: the file object is in text mode; open it with 'rb'", param=name
        )
    if not isinstance(data, bytes | bytearray):
        raise UploadError(f"media param {name!r}: the file object returned no bytes", param=name)
    return bytes(data)


Resolver = Callable[[Param, ParamTarget, Any], str]


def _not_a_file(param: str, what: str, path: Path) -> UploadError:
    """The error for a local path that cannot be uploaded: a directory, or nothing there."""
    if path.is_dir():
        return UploadError(
            f"media param {param!r}: {str(path)!r} is a directory, not a file", param=param
        )
    return UploadError(f"media param {param!r}: {what} {str(path)!r} does not exist", param=param)

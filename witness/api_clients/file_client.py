"""``/upload/image``, ``/upload/mask``, ``/view`` and ``/view_metadata``."""

from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal
from urllib.parse import urlencode

from witness.api_clients._common import as_mapping, check_int, check_text, encode_json
from witness.api_clients.types import FILE_TYPES, FileRef, UploadedFile
from witness.errors import (
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
    UploadError,
)
from witness.transport.http import HttpClient, Timeout
from witness.utils.paths import route
from witness.utils.redact import redact_url

__all__ = ["FileClient", "UploadSource"]

logger = logging.getLogger(__name__)

UploadSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""What can be uploaded: a file path, the bytes themselves, or a binary file object."""

Channel = Literal["rgba", "rgb", "a"]
PreviewFormat = Literal["webp", "jpeg"]
_CHANNELS = ("rgba", "rgb", "a")
_PREVIEW_FORMATS = ("webp", "jpeg")
_MISSING = object()


class FileClient:
    """Upload inputs and download outputs.

    Args:
        http: The shared HTTP client.

    Example:
        >>> files = FileClient(http)
        >>> stored = files.upload_image("cat.png")
        >>> stored.name  # may be "cat (1).png" if "cat.png" existed
        >>> png = files.download(FileRef("out_00001_.png", "", "output"))
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http
        self._lock = threading.Lock()
        self._max_upload: Any = _MISSING  # int | None once known

    # -- upload --------------------------------------------------------------------------

    def upload_image(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        type: str = "input",
        subfolder: str = "",
        overwrite: bool = False,
        content_type: str | None = None,
        timeout: Timeout | None = None,
    ) -> UploadedFile:
        """Upload a file (any type: images, audio, video...) into input, temp or output.

        Route: ``POST /upload/image``.

        Args:
            source: A path, bytes, or a binary file object (read from its current position).
            filename: The name to store; defaults to the path's or file object's name
                (required for bytes).
            type: ``"input"`` (default), ``"temp"`` or ``"output"``.
            subfolder: Directory under the type's root (created by the server).
            overwrite: Replace an existing file of that name. When false the server picks
                ``"name (1).ext"`` etc., or returns the existing name if the bytes are
                identical.
            content_type: MIME type of the part (default ``application/octet-stream``).
            timeout: Request timeout override.

        Returns:
            The name, subfolder and type the server actually stored.

        Raises:
            InvalidArgumentError: Bad ``type`` (the server would answer 500), no filename,
                or an unreadable source.
            PayloadTooLargeError: The file exceeds the server's ``max_upload_size`` (checked
                before sending when ``/features`` reports it, else the server's 413).
            BadRequestError: The server refused the name or subfolder (e.g. traversal).
            TransportError: The server could not be reached.
        """
        return self._upload(
            "/upload/image",
            source,
            filename=filename,
            type=type,
            subfolder=subfolder,
            overwrite=overwrite,
            content_type=content_type,
            timeout=timeout,
        )

    def upload_mask(
        self,
        source: UploadSource,
        original_ref: FileRef | Mapping[str, Any],
        *,
        filename: str | None = None,
        type: str = "input",
        subfolder: str = "",
        overwrite: bool = False,
        timeout: Timeout | None = None,
    ) -> UploadedFile:
        """Apply a mask's alpha channel to an existing image and store the result as PNG.

        The server answers 200 even when it wrote nothing (missing original, rejected
        ``original_ref``), so the result is verified with ``HEAD /view`` afterwards.

        Route: ``POST /upload/mask`` (then ``HEAD /view``).

        Args:
            source: The mask image (its alpha channel is used).
            original_ref: The image to mask: a :class:`FileRef` or ``{filename, subfolder,
                type}`` (``filename`` may carry a ``" [type]"`` suffix).
            filename: Name to store (defaults as in :meth:`upload_image`).
            type: Where to store the result: ``"input"``, ``"temp"`` or ``"output"``.
            subfolder: Directory under the type's root.
            overwrite: Replace an existing file of that name.
            timeout: Request timeout override.

        Returns:
            The name, subfolder and type of the stored, masked image.

        Raises:
            InvalidArgumentError: Bad arguments (the server would answer 500).
            UploadError: The server answered 200 but stored nothing (e.g. the original does
                not exist).
            PayloadTooLargeError: The mask exceeds the server's upload limit.
            ServerError: The server failed, e.g. the mask or original is not an image.
            TransportError: The server could not be reached.
        """
        ref = _original_ref(original_ref)
        before = None
        if overwrite:
            # With overwrite an older file may already sit at the target name; remember its
            # identity so that an unchanged file is not mistaken for the result.
            name = filename or _source_name(source)
            if name:
                before = self._identity(FileRef(name, subfolder, type))
        stored = self._upload(
            "/upload/mask",
            source,
            filename=filename,
            type=type,
            subfolder=subfolder,
            overwrite=overwrite,
            content_type="image/png",
            timeout=timeout,
            extra_fields={"original_ref": encode_json(ref, "original_ref").decode()},
        )
        after = self._identity(stored.ref)
        if after is None or after == before:
            raise UploadError(
                f"POST /upload/mask answered {stored.name!r}, but the server stored nothing: "
                f"check that the original {FileRef.from_json(ref).annotated!r} exists and is "
                "an image",
                param="original_ref",
            )
        return stored

    def max_upload_size(self, *, refresh: bool = False) -> int | None:
        """The server's request body limit in bytes, from ``GET /features`` (cached).

        Route: ``GET /features``.

        Returns:
            ``max_upload_size``, or ``None`` when the server does not report it.
        """
        with self._lock:
            if self._max_upload is not _MISSING and not refresh:
                return self._max_upload  # type: ignore[no-any-return]
        try:
            data = self._http.request_json("GET", "/features")
        except NotFoundError:
            data = {}
        value = data.get("max_upload_size") if isinstance(data, Mapping) else None
        limit = value if isinstance(value, int) and not isinstance(value, bool) else None
        with self._lock:
            self._max_upload = limit
        return limit

    # -- download ------------------------------------------------------------------------

    def download(
        self,
        file: FileRef | str,
        *,
        subfolder: str | None = None,
        type: str | None = None,
        preview: PreviewFormat | None = None,
        quality: int | None = None,
        channel: Channel | None = None,
        timeout: Timeout | None = None,
    ) -> bytes:
        """A file's content in memory. Use :meth:`download_to` for large files.

        Route: ``GET /view``.

        Args:
            file: A :class:`FileRef`, or a file name (``"name"`` or ``"name [type]"``).
            subfolder: Overrides the ref's subfolder.
            type: Overrides the ref's type (a ``" [type]"`` name suffix wins on the server).
            preview: Re-encode the image as ``"webp"`` or ``"jpeg"``.
            quality: Preview quality 1-100 (server default 90).
            channel: ``"rgba"`` (default), ``"rgb"`` (PNG without alpha) or ``"a"`` (alpha
                only). ``preview``/``channel`` work on images only.
            timeout: Request timeout override.

        Returns:
            The bytes.

        Raises:
            InvalidArgumentError: A malformed argument (e.g. ``..`` in the name).
            NotFoundError: No such file.
            ForbiddenError: ``subfolder`` escapes the type's directory.
            ServerError: ``preview``/``channel`` on a file that is not an image.
            TransportError: The server could not be reached or the body was cut short.
        """
        params = self._view_params(
            file, subfolder=subfolder, type=type, preview=preview, quality=quality, channel=channel
        )
        return b"".join(self._http.iter_bytes("/view", params=params, timeout=timeout))

    def download_to(
        self,
        file: FileRef | str,
        destination: str | os.PathLike[str] | BinaryIO,
        *,
        subfolder: str | None = None,
        type: str | None = None,
        preview: PreviewFormat | None = None,
        quality: int | None = None,
        channel: Channel | None = None,
        timeout: Timeout | None = None,
    ) -> int:
        """Stream a file to disk (or a binary file object) with constant memory.

        A path destination is written atomically: complete, or untouched on failure.

        Route: ``GET /view``.

        Args:
            file: As in :meth:`download`.
            destination: A file path (parents are created) or a writable binary file.
            subfolder: As in :meth:`download`.
            type: As in :meth:`download`.
            preview: As in :meth:`download`.
            quality: As in :meth:`download`.
            channel: As in :meth:`download`.
            timeout: Request timeout override.

        Returns:
            The number of bytes written.

        Raises:
            InvalidArgumentError: A malformed argument.
            NotFoundError: No such file.
            ForbiddenError: ``subfolder`` escapes the type's directory.
            TransportError: The server could not be reached or the body was cut short.
        """
        params = self._view_params(
            file, subfolder=subfolder, type=type, preview=preview, quality=quality, channel=channel
        )
        return self._http.download("/view", destination, params=params, timeout=timeout)

    def iter_download(
        self,
        file: FileRef | str,
        *,
        subfolder: str | None = None,
        type: str | None = None,
        chunk_size: int = 1 << 16,
        timeout: Timeout | None = None,
    ) -> Iterator[bytes]:
        """Yield a file's bytes in chunks (the connection is released when exhausted).

        Route: ``GET /view``.

        Raises:
            InvalidArgumentError: A malformed argument.
            NotFoundError: No such file.
            TransportError: The server could not be reached or the body was cut short.
        """
        params = self._view_params(file, subfolder=subfolder, type=type)
        return self._http.iter_bytes("/view", params=params, chunk_size=chunk_size, timeout=timeout)

    def exists(
        self,
        file: FileRef | str,
        *,
        subfolder: str | None = None,
        type: str | None = None,
    ) -> bool:
        """Whether the server has this file.

        Route: ``HEAD /view``.

        Raises:
            InvalidArgumentError: A malformed argument.
            ForbiddenError: ``subfolder`` escapes the type's directory.
            TransportError: The server could not be reached.
        """
        return self._identity(_ref(file, subfolder, type)) is not None

    def view_url(
        self,
        file: FileRef | str,
        *,
        subfolder: str | None = None,
        type: str | None = None,
        preview: PreviewFormat | None = None,
        quality: int | None = None,
        channel: Channel | None = None,
        include_query_params: bool = False,
    ) -> str:
        """The absolute, properly encoded ``/api/view`` URL of a file.

        Args:
            file: As in :meth:`download`.
            subfolder: As in :meth:`download`.
            type: As in :meth:`download`.
            preview: As in :meth:`download`.
            quality: As in :meth:`download`.
            channel: As in :meth:`download`.
            include_query_params: Add the settings' ``query_params`` (e.g. a ``?token=``
                for an auth proxy). Off by default: such URLs carry a secret.

        Returns:
            The URL (no request is made).
        """
        params = self._view_params(
            file, subfolder=subfolder, type=type, preview=preview, quality=quality, channel=channel
        )
        if include_query_params:
            params = {**self._http.settings.query_params, **params}
        return self._http.url("/view") + "?" + urlencode(params)

    def view_metadata(self, folder_name: str, filename: str) -> dict[str, Any]:
        """The ``__metadata__`` of a ``.safetensors`` model file.

        Route: ``GET /view_metadata/{folder_name}``.

        Args:
            folder_name: A model folder type, e.g. ``"checkpoints"`` or ``"loras"``.
            filename: The file, relative to that folder; must end in ``.safetensors``.

        Returns:
            The metadata mapping (string values as stored).

        Raises:
            InvalidArgumentError: Empty arguments or not a ``.safetensors`` name.
            NotFoundError: No such file, or it has no metadata.
            TransportError: The server could not be reached.
        """
        check_text(folder_name, "folder_name")
        check_text(filename, "filename")
        if not filename.endswith(".safetensors"):
            raise InvalidArgumentError("filename", "must end in .safetensors")
        path = route("/view_metadata/{}", folder_name)
        data = self._http.request_json("GET", path, params={"filename": filename})
        return as_mapping(self._http, data, "GET", path)

    # -- internals -----------------------------------------------------------------------

    def _upload(
        self,
        path: str,
        source: UploadSource,
        *,
        filename: str | None,
        type: str,
        subfolder: str,
        overwrite: bool,
        content_type: str | None,
        timeout: Timeout | None,
        extra_fields: Mapping[str, str] | None = None,
    ) -> UploadedFile:
        _check_type(type, "type")
        if not isinstance(subfolder, str):
            raise InvalidArgumentError("subfolder", "must be a string")
        name = filename if filename is not None else _source_name(source)
        if not name:
            raise InvalidArgumentError("filename", "is required when uploading bytes")
        if "/" in name or "\\" in name:
            raise InvalidArgumentError("filename", "must be a bare name; use subfolder")
        size = _source_size(source)
        limit = self.max_upload_size()
        if limit is not None and size is not None and size > limit:
            raise PayloadTooLargeError(
                status=413,
                method="POST",
                url=redact_url(self._http.url(path), self._http.settings.secrets),
                server_message="checked before sending, against /features max_upload_size",
                limit=limit,
                size=size,
            )
        fields = {
            "type": type,
            "subfolder": subfolder,
            "overwrite": "true" if overwrite else "false",
        }
        fields.update(extra_fields or {})
        part_type = content_type or "application/octet-stream"
        with _open_source(source) as stream:
            if size is not None:
                # Streamed from the source with a known length: constant memory.
                body = _MultipartBody(
                    fields,
                    file_field="image",
                    filename=name,
                    content_type=part_type,
                    stream=stream,
                    size=size,
                )
                kwargs: dict[str, Any] = {"data": body, "headers": body.headers}
            else:
                # Length unknown (unseekable stream): requests builds the body in memory.
                kwargs = {"data": fields, "files": {"image": (name, stream, part_type)}}
            try:
                data = self._http.request_json(
                    "POST", path, timeout=timeout, idempotent=False, **kwargs
                )
            except PayloadTooLargeError as exc:
                if exc.size is None and size is not None:
                    raise PayloadTooLargeError(
                        status=exc.status,
                        method=exc.method,
                        url=exc.url,
                        server_message=exc.server_message,
                        body=exc.body,
                        limit=exc.limit,
                        size=size,
                    ) from exc
                raise
        stored = UploadedFile.from_json(as_mapping(self._http, data, "POST", path))
        if not stored.name:
            raise UploadError(f"POST {path} answered without a file name: {data!r}")
        if stored.name != name:
            logger.debug("uploaded %r was stored as %r", name, stored.name)
        return stored

    def _identity(self, ref: FileRef) -> str | None:
        """ETag (mtime+size) of a file via ``HEAD /view``, ``None`` if it does not exist."""
        params = self._view_params(ref)
        try:
            response = self._http.request("HEAD", "/view", params=params)
        except NotFoundError:
            return None
        response.close()
        return response.headers.get("ETag") or response.headers.get("Last-Modified") or "present"

    @staticmethod
    def _view_params(
        file: FileRef | str,
        *,
        subfolder: str | None = None,
        type: str | None = None,
        preview: str | None = None,
        quality: int | None = None,
        channel: str | None = None,
    ) -> dict[str, str]:
        ref = _ref(file, subfolder, type)
        params = {"filename": ref.filename, "type": ref.type, "subfolder": ref.subfolder}
        if not ref.subfolder:
            del params["subfolder"]
        if preview is not None:
            if preview not in _PREVIEW_FORMATS:
                raise InvalidArgumentError("preview", f"must be one of {_PREVIEW_FORMATS}")
            params["preview"] = preview
            if quality is not None:
                params["preview"] += f";{check_int(quality, 'quality', minimum=1)}"
                if quality > 100:
                    raise InvalidArgumentError("quality", "must be at most 100")
        elif quality is not None:
            raise InvalidArgumentError("quality", "only applies with preview")
        if channel is not None:
            if channel not in _CHANNELS:
                raise InvalidArgumentError("channel", f"must be one of {_CHANNELS}")
            params["channel"] = channel
        return params


def _ref(file: FileRef | str, subfolder: str | None, type: str | None) -> FileRef:
    """Normalize a download target, validating what the server would reject."""
    if isinstance(file, FileRef):
        ref = file
    elif isinstance(file, str):
        ref = FileRef(file, "", "output")
    else:
        raise InvalidArgumentError("file", f"must be a FileRef or a file name, got {file!r}")
    if subfolder is not None or type is not None:
        ref = FileRef(
            ref.filename,
            ref.subfolder if subfolder is None else subfolder,
            ref.type if type is None else type,
        )
    check_text(ref.filename, "filename")
    bare = _strip_annotation(ref.filename)
    if bare.startswith("/") or ".." in bare:
        raise InvalidArgumentError("filename", f"must not be absolute or contain '..': {bare!r}")
    _check_type(ref.type, "type")
    return ref


def _strip_annotation(name: str) -> str:
    for kind in FILE_TYPES:
        suffix = f" [{kind}]"
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_type(value: object, argument: str) -> None:
    if value not in FILE_TYPES:
        raise InvalidArgumentError(
            argument, f"must be one of {', '.join(FILE_TYPES)}, got {value!r}"
        )


def _original_ref(value: FileRef | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(value, FileRef):
        ref = value.to_json()
    elif isinstance(value, Mapping):
        ref = {
            "filename": str(value.get("filename") or value.get("name") or ""),
            "subfolder": str(value.get("subfolder") or ""),
            "type": str(value.get("type") or "input"),
        }
    else:
        raise InvalidArgumentError("original_ref", "must be a FileRef or a mapping")
    check_text(ref["filename"], "original_ref.filename")
    bare = _strip_annotation(ref["filename"])
    if bare.startswith("/") or ".." in bare:
        raise InvalidArgumentError("original_ref", "filename must not be absolute or contain '..'")
    _check_type(ref["type"], "original_ref.type")
    return ref


def _source_name(source: UploadSource) -> str | None:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    name = getattr(source, "name", None)
    if isinstance(name, str) and name and not name.startswith("<"):
        return Path(name).name
    return None


def _source_size(source: UploadSource) -> int | None:
    """Bytes that will be sent, when knowable without reading the source."""
    if isinstance(source, bytes | bytearray | memoryview):
        return len(source)
    if isinstance(source, str | os.PathLike):
        try:
            return os.path.getsize(source)
        except OSError as exc:
            raise InvalidArgumentError(
                "source", f"cannot read {os.fspath(source)!r}: {exc.strerror}"
            ) from exc
    try:
        if source.seekable():
            position = source.tell()
            end = source.seek(0, io.SEEK_END)
            source.seek(position)
            return end - position
    except (OSError, ValueError, AttributeError):
        return None
    return None


def _quote_param(value: str) -> str:
    """Escape a multipart header parameter as an RFC 7230 quoted-string body (aiohttp
    unescapes ``\\"`` and ``\\\\``; control characters are percent-encoded like browsers)."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"%{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


class _MultipartBody:
    """A ``multipart/form-data`` body with one file part, read in chunks with a known length.

    ``requests`` would read the whole file into memory to build the body; this streams it
    from the source instead. ``len()`` gives the Content-Length. Deliberately no ``tell``:
    ``requests`` would then compute the remaining length as 0 and switch to chunked encoding.
    """

    def __init__(
        self,
        fields: Mapping[str, str],
        *,
        file_field: str,
        filename: str,
        content_type: str,
        stream: IO[bytes],
        size: int,
    ) -> None:
        boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_param(key)}"'
            f"\r\n\r\n{value}\r\n".encode()
            for key, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_param(file_field)}"; '
            f'filename="{_quote_param(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        self._head = io.BytesIO(head)
        self._stream = stream
        self._left = size
        self._tail = io.BytesIO(f"\r\n--{boundary}--\r\n".encode())
        self._length = len(head) + size + len(self._tail.getvalue())
        self.headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(1 << 16):
            yield chunk

    def read(self, size: int | None = -1) -> bytes:
        limit = self._length if size is None or size < 0 else size
        out = self._head.read(limit)
        if len(out) < limit and self._left > 0:
            chunk = self._stream.read(min(limit - len(out), self._left))
            if not chunk:
                raise UploadError(f"the upload source ended {self._left} bytes early")
            self._left -= len(chunk)
            out += chunk
        if len(out) < limit and self._left == 0:
            out += self._tail.read(limit - len(out))
        return out


@contextmanager
def _open_source(source: UploadSource) -> Iterator[IO[bytes]]:
    """A binary stream for any upload source; a file opened here is closed afterwards."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield io.BytesIO(bytes(source))
        return
    if isinstance(source, str | os.PathLike):
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidArgumentError(
                "source", f"cannot open {os.fspath(source)!r}: {exc.strerror}"
            ) from exc
        with handle:
            yield handle
        return
    if not hasattr(source, "read"):
        raise InvalidArgumentError("source", "must be a path, bytes or a binary file object")
    yield source

"""``/api/v2/assets``: upload, look up, download and delete stored files."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, BinaryIO

from witness.api_clients._common import check_text
from witness.api_clients.file_client import (
    UploadSource,
    _MultipartBody,
    _open_source,
    _source_name,
    _source_size,
)
from witness.api_clients.v2._common import V2_PREFIX, v2_errors, v2_json, v2_request, v2_route
from witness.api_clients.v2.types import Asset
from witness.errors import InvalidArgumentError, NotFoundError
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient
from witness.utils.files import safe_filename, unique_path
from witness.utils.media import guess_mime

__all__ = ["AssetsClient"]

logger = logging.getLogger(__name__)


class AssetsClient:
    """Assets on a Comfy API v2 deployment: content-addressed (BLAKE3) files with ids.

    Args:
        http: The shared HTTP client.

    Attributes:
        bytes_uploaded: File bytes sent by :meth:`upload` so far (for de-duplication checks).
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http
        self.bytes_uploaded = 0

    def upload(
        self,
        source: UploadSource,
        *,
        file_path: str | None = None,
        content_type: str | None = None,
        expected_hash: str | None = None,
        tags: list[str] | None = None,
        deadline: Deadline | None = None,
    ) -> Asset:
        """Upload a file, streamed with constant memory when its size is known.

        Route: ``POST /api/v2/assets`` (multipart: ``file``, ``file_path``,
        ``content_type``, ``expected_hash``, ``tags``). Not retried (a body read from a
        stream cannot be replayed).

        Args:
            source: A path, bytes, or a binary file object.
            file_path: The name to store it under (``"photo.png"``, ``"input/sub/x.png"``;
                model files as ``"models/checkpoints/x.safetensors"``). Default: the
                source's base name.
            content_type: Its MIME type (default: guessed from the name).
            expected_hash: ``blake3:<hex>``; the server refuses bytes that differ.
            tags: Labels.
            deadline: The call's deadline.

        Returns:
            The asset (``created_new`` is ``False`` when the server already had the bytes).

        Raises:
            V2HashMismatchError: The bytes do not match ``expected_hash``.
            V2PayloadTooLargeError: Bigger than the server's limit.
            V2InvalidRequestError: A bad ``file_path``.
        """
        name = file_path if file_path is not None else _source_name(source)
        if not name:
            raise InvalidArgumentError("file_path", "is required when uploading bytes")
        ctype = content_type or guess_mime(name) or "application/octet-stream"
        fields = {"file_path": name, "content_type": ctype}
        if expected_hash:
            fields["expected_hash"] = expected_hash
        size = _source_size(source)
        with _open_source(source) as stream:
            if size is not None:
                body = _MultipartBody(
                    fields,
                    file_field="file",
                    filename=Path(name).name,
                    content_type=ctype,
                    stream=stream,
                    size=size,
                )
                kwargs: dict[str, Any] = {"data": body, "headers": body.headers}
            else:
                kwargs = {"data": fields, "files": {"file": (Path(name).name, stream, ctype)}}
            if tags:
                # A repeated field is how multipart carries a list; only the in-memory form
                # can repeat it.
                kwargs = {
                    "data": [*fields.items(), *(("tags", t) for t in tags)],
                    "files": {"file": (Path(name).name, stream, ctype)},
                }
            data = v2_json(
                self._http,
                "POST",
                V2_PREFIX + "/assets",
                idempotent=False,
                deadline=deadline,
                **kwargs,
            )
        if size is not None:
            self.bytes_uploaded += size
        asset = Asset.from_json(data)
        logger.debug("uploaded %s as asset %s (new: %s)", name, asset.id, asset.created_new)
        return asset

    def from_hash(
        self,
        hash: str,
        *,
        file_path: str | None = None,
        tags: list[str] | None = None,
        deadline: Deadline | None = None,
    ) -> Asset:
        """An asset over bytes the server already has, by their hash (no upload).

        Route: ``POST /api/v2/assets/from-hash``.

        Raises:
            V2BlobNotFoundError: The server has no such bytes (upload them instead).
        """
        check_text(hash, "hash")
        body: dict[str, Any] = {"hash": hash}
        if file_path is not None:
            body["file_path"] = file_path
        if tags is not None:
            body["tags"] = list(tags)
        return Asset.from_json(
            v2_json(
                self._http,
                "POST",
                V2_PREFIX + "/assets/from-hash",
                json=body,
                idempotent=True,
                deadline=deadline,
            )
        )

    def from_path(
        self,
        path: str,
        *,
        file_path: str | None = None,
        content_type: str | None = None,
        deadline: Deadline | None = None,
    ) -> Asset:
        """Register a file already on the deployment's disk, without copying it.

        Route: ``POST /api/v2/assets/from-path`` (the proxy needs ``--comfyui-base-dir``
        and a path under its ``input/``, ``output/``, ``temp/`` or ``models/``).

        Args:
            path: The absolute path on the deployment's machine.
            file_path: The name to show.
            content_type: Its MIME type.
            deadline: The call's deadline.

        Raises:
            V2BlobNotFoundError: No such file there.
            V2InvalidRequestError: The path is outside what the deployment allows.
        """
        check_text(path, "path")
        body: dict[str, Any] = {"path": path}
        if file_path is not None:
            body["file_path"] = file_path
        if content_type is not None:
            body["content_type"] = content_type
        return Asset.from_json(
            v2_json(
                self._http,
                "POST",
                V2_PREFIX + "/assets/from-path",
                json=body,
                idempotent=True,
                deadline=deadline,
            )
        )

    def exists(self, hash: str, *, deadline: Deadline | None = None) -> bool:
        """Whether the server has bytes with this hash.

        Route: ``HEAD /api/v2/assets/by-hash/{hash}``.
        """
        check_text(hash, "hash")
        try:
            v2_request(
                self._http, "HEAD", v2_route("/assets/by-hash/{}", hash), deadline=deadline
            ).close()
        except NotFoundError:
            return False
        return True

    def get(self, asset_id: str, *, deadline: Deadline | None = None) -> Asset:
        """One asset's record (with a fresh content URL).

        Route: ``GET /api/v2/assets/{id}``.

        Raises:
            V2NotFoundError: No such asset.
        """
        check_text(asset_id, "asset_id")
        return Asset.from_json(
            v2_json(self._http, "GET", v2_route("/assets/{}", asset_id), deadline=deadline)
        )

    def download(
        self,
        asset_id: str,
        destination: str | os.PathLike[str] | BinaryIO,
        *,
        deadline: Deadline | None = None,
    ) -> int:
        """Stream an asset's bytes to a file (atomically) or a binary file object.

        Route: ``GET /api/v2/assets/{id}/content``. A redirect to another host (a signed
        storage URL) is followed without the API key (the transport drops
        ``Authorization`` when the host changes).

        Returns:
            The number of bytes written.

        Raises:
            V2NotFoundError: No such asset.
            V2OutputUnavailableError: Its bytes are gone.
        """
        check_text(asset_id, "asset_id")
        with v2_errors():
            return self._http.download(
                v2_route("/assets/{}/content", asset_id), destination, deadline=deadline
            )

    def save(
        self,
        asset_id: str,
        directory: str | os.PathLike[str],
        *,
        deadline: Deadline | None = None,
    ) -> Path:
        """Stream an asset into ``directory`` under a safe local name (never overwriting).

        The server's name (``file_path``) is untrusted: directories, ``..``, reserved and
        control characters are stripped (:func:`~witness.utils.files.safe_filename`), and a
        taken name gets ``_1``, ``_2``... The file is written atomically.

        Routes: ``GET /api/v2/assets/{id}``, then ``GET /api/v2/assets/{id}/content``.

        Returns:
            The written path.
        """
        asset = self.get(asset_id, deadline=deadline)
        default = f"asset-{asset_id[:16]}"
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        target = unique_path(base, safe_filename(asset.file_path or default, default=default))
        self.download(asset_id, target, deadline=deadline)
        return target

    def content(self, asset_id: str, *, deadline: Deadline | None = None) -> bytes:
        """An asset's bytes in memory (use :meth:`download` for large files)."""
        check_text(asset_id, "asset_id")
        with v2_errors():
            return b"".join(
                self._http.iter_bytes(v2_route("/assets/{}/content", asset_id), deadline=deadline)
            )

    def delete(self, asset_id: str, *, deadline: Deadline | None = None) -> None:
        """Delete an asset (its bytes may stay while other assets use them).

        Route: ``DELETE /api/v2/assets/{id}``.

        Raises:
            V2NotFoundError: No such asset.
        """
        check_text(asset_id, "asset_id")
        v2_request(
            self._http, "DELETE", v2_route("/assets/{}", asset_id), deadline=deadline
        ).close()

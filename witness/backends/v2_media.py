"""Media values → Comfy API v2 assets, uploaded once (BLAKE3 de-duplication).

The value rule is the native one (:class:`~witness.core.uploads.MediaResolver`: paths,
bytes, file objects, URLs, names already on the server), with the upload step replaced: a
local file is hashed (BLAKE3, once per path+size+mtime in a backend), the deployment is asked
whether it has the bytes (``HEAD /api/v2/assets/by-hash/{hash}``) and only uploaded when it
has not. Without the optional ``blake3`` package there is no hash and every value is uploaded
(the deployment still recognises bytes it already has, but they travel again).

The uploader returns an *asset token* (``"core/ASSET:<id>"``) as the name to write into the
node input; :func:`asset_refs` turns each token into the contract's ``core/ASSET`` reference
just before the submit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

from witness.api_clients.file_client import FileClient
from witness.api_clients.v2.assets_client import AssetsClient
from witness.api_clients.v2.hashing import FileHasher, hash_bytes
from witness.api_clients.v2.types import Asset, asset_reference
from witness.core.uploads import MaskUpload, MediaResolver
from witness.errors import UploadError
from witness.transport.deadline import Deadline
from witness.utils.fetch import DEFAULT_MAX_BYTES
from witness.utils.files import safe_filename
from witness.utils.media import guess_mime

__all__ = ["ASSET_PREFIX", "V2MediaUploader", "asset_refs"]

logger = logging.getLogger(__name__)

#: The prefix of the name the uploader returns for an uploaded asset.
ASSET_PREFIX = "core/ASSET:"


class V2MediaUploader(MediaResolver):
    """The v2 backend's :class:`~witness.backends.base.MediaUploader` for one call.

    Args:
        assets: The assets client.
        hasher: The backend's file hasher (its cache outlives the call).
        deadline: The call's deadline.
        max_download_bytes: Size limit for URL values.

    Attributes:
        assets_used: The assets the values resolved to, in order.
        skipped_bytes: Bytes not uploaded because the deployment already had them.
    """

    def __init__(
        self,
        assets: AssetsClient,
        hasher: FileHasher,
        deadline: Deadline,
        *,
        max_download_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        # The native resolver's file client is only used by the steps overridden here.
        super().__init__(cast(FileClient, None), max_download_bytes=max_download_bytes)
        self._assets = assets
        self._hasher = hasher
        self._deadline = deadline
        self.assets_used: list[Asset] = []
        self.skipped_bytes = 0

    def _upload(self, name: str, folder: str, source: Path | bytes, filename: str) -> str:
        filename = safe_filename(filename, default="upload.bin")
        if isinstance(source, Path):
            digest = self._hasher.hash_file(source)
            size = source.stat().st_size
        else:
            digest = hash_bytes(source)
            size = len(source)
        asset: Asset | None = None
        if digest is not None and self._assets.exists(digest, deadline=self._deadline):
            asset = self._assets.from_hash(digest, file_path=filename, deadline=self._deadline)
            self.skipped_bytes += size
            logger.debug("media param %r: the deployment has %s already", name, digest)
        if asset is None:
            asset = self._assets.upload(
                source,
                file_path=filename,
                content_type=guess_mime(filename),
                expected_hash=digest,
                deadline=self._deadline,
            )
        self.assets_used.append(asset)
        return ASSET_PREFIX + asset.id

    def _existing(
        self, name: str, server_name: str, folder: str, target_folder: str, *, explicit: bool
    ) -> str:
        """A name the deployment resolves itself (``blake3:<hex>`` names stored bytes)."""
        if server_name.startswith("blake3:"):
            asset = self._assets.from_hash(server_name, deadline=self._deadline)
            self.assets_used.append(asset)
            return ASSET_PREFIX + asset.id
        if folder != "input":
            return f"{server_name} [{folder}]"
        return server_name

    def _mask(self, name: str, folder: str, value: MaskUpload) -> str:
        raise UploadError(
            f"media param {name!r}: MaskUpload needs the native ComfyUI API (/upload/mask); "
            "the Comfy API v2 has no mask route: upload the masked image instead",
            param=name,
        )


def asset_refs(prompt: dict[str, Any]) -> dict[str, Any]:
    """``prompt`` with each asset token input replaced by its ``core/ASSET`` reference."""
    out: dict[str, Any] = {}
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            out[node_id] = node
            continue
        new_inputs = {
            key: asset_reference(value[len(ASSET_PREFIX) :])
            if isinstance(value, str) and value.startswith(ASSET_PREFIX)
            else value
            for key, value in inputs.items()
        }
        out[node_id] = {**node, "inputs": new_inputs}
    return out

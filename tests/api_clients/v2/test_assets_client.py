"""AssetsClient and V2SystemClient against the real comfy-api-proxy."""

from __future__ import annotations

import io
import os
import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.images import png
from tests.support.v2_proxy import ProxyProcess
from witness.api_clients.v2 import AssetsClient, V2SystemClient, detect_v2
from witness.api_clients.v2.hashing import hash_bytes
from witness.config.settings import Settings
from witness.errors import (
    V2BlobNotFoundError,
    V2HashMismatchError,
    V2InvalidRequestError,
    V2NotFoundError,
)
from witness.transport.http import HttpClient

pytestmark = pytest.mark.integration

MISSING_HASH = "blake3:" + "0" * 64


@pytest.fixture
def assets(v2_http: HttpClient) -> AssetsClient:
    return AssetsClient(v2_http)


def unique_png() -> bytes:
    return png(4, 4, (random.randrange(256), random.randrange(256), random.randrange(256), 255))


def test_upload_head_get_content_delete(assets: AssetsClient, tmp_path: Path) -> None:
    data = unique_png()
    digest = hash_bytes(data)
    assert digest is not None
    assert not assets.exists(digest)
    asset = assets.upload(data, file_path="witness_v2_asset.png", expected_hash=digest)
    assert asset.created_new is True
    assert asset.hash == digest
    assert asset.size_bytes == len(data)
    assert asset.content_type == "image/png"
    assert assets.exists(digest)
    assert assets.get(asset.id).id == asset.id
    assert assets.content(asset.id) == data
    target = tmp_path / "out.png"
    assert assets.download(asset.id, target) == len(data)
    assert target.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no partial file left
    saved = [assets.save(asset.id, tmp_path / "dir") for _ in range(2)]
    assert [p.name for p in saved] == ["witness_v2_asset.png", "witness_v2_asset_1.png"]
    assert saved[1].read_bytes() == data
    # The same bytes again: the server de-duplicates.
    again = assets.upload(data, file_path="other_name.png")
    assert again.id == asset.id
    assert again.created_new is False
    minted = assets.from_hash(digest, file_path="minted.png")
    assert minted.id == asset.id
    assets.delete(asset.id)
    with pytest.raises(V2NotFoundError):
        assets.get(asset.id)
    with pytest.raises(V2NotFoundError):
        assets.delete(asset.id)
    assert not assets.exists(digest)


def test_upload_from_path_and_file_object(assets: AssetsClient, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(unique_png())
    from_path = assets.upload(path)
    assert from_path.file_path == "photo.png"
    data = unique_png()
    from_object = assets.upload(io.BytesIO(data), file_path="stream.png")
    assert assets.content(from_object.id) == data
    assert assets.bytes_uploaded == path.stat().st_size + len(data)
    for asset in (from_path, from_object):
        assets.delete(asset.id)


def test_upload_streams_with_constant_memory(assets: AssetsClient, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        for _ in range(12):
            handle.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        asset = assets.upload(path, file_path="big.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert asset.size_bytes == 12 << 20
    assert peak < 4 << 20, peak
    tracemalloc.start()
    try:
        written = assets.download(asset.id, tmp_path / "copy.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 12 << 20
    assert peak < 4 << 20, peak
    assets.delete(asset.id)


def test_errors(assets: AssetsClient, tmp_path: Path) -> None:
    with pytest.raises(V2HashMismatchError) as info:
        assets.upload(unique_png(), file_path="x.png", expected_hash=MISSING_HASH)
    assert info.value.status == 409
    assert info.value.code == "hash_mismatch"
    with pytest.raises(V2BlobNotFoundError) as missing:
        assets.from_hash(MISSING_HASH)
    assert missing.value.status == 404
    with pytest.raises(V2InvalidRequestError) as bad:
        assets.upload(unique_png(), file_path="../escape.png")
    assert bad.value.status == 422
    hostile = assets.upload(unique_png(), file_path="input/deep/sub/evil:name?.png")
    saved = assets.save(hostile.id, tmp_path)
    assert saved.parent == tmp_path
    assert "/" not in saved.name
    assert ".." not in saved.name
    with pytest.raises(V2InvalidRequestError):
        assets.from_path("/etc/passwd")  # this proxy has no --comfyui-base-dir
    with pytest.raises(V2NotFoundError):
        assets.content("not-an-asset")


def test_from_path_registers_a_file_of_the_install(
    private_proxy: Callable[..., ProxyProcess], comfy_server: object, tmp_path: Path
) -> None:
    if comfy_server is None:
        pytest.skip("needs the session's own ComfyUI (its input folder)")
    input_dir: Path = comfy_server.input_dir  # type: ignore[attr-defined]
    base = input_dir.parent
    proxy = private_proxy(extra_args=("--comfyui-base-dir", str(base)))
    name = f"witness_from_path_{random.randrange(1 << 30)}.png"
    data = unique_png()
    (input_dir / name).write_bytes(data)
    try:
        with HttpClient(Settings(api_url=proxy.url)) as http:
            client = AssetsClient(http)
            asset = client.from_path(str(input_dir / name))
            assert asset.file_path == f"input/{name}"
            assert asset.hash == hash_bytes(data)
            assert client.content(asset.id) == data
            with pytest.raises(V2BlobNotFoundError):
                client.from_path(str(input_dir / "no-such-file.png"))
    finally:
        (input_dir / name).unlink()


def test_health_and_detection(v2_http: HttpClient, http: HttpClient) -> None:
    health = V2SystemClient(v2_http).health()
    assert health.healthy
    assert health.raw["status"] == "healthy"
    assert detect_v2(v2_http)
    assert not detect_v2(http)  # the native ComfyUI has no /api/v2/health

"""BLAKE3 hashing with the optional ``blake3`` package, and without it."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any

import pytest

from witness.api_clients.v2 import hashing
from witness.api_clients.v2.hashing import FileHasher, blake3_available, hash_bytes

blake3 = pytest.importorskip("blake3")


@pytest.fixture
def no_blake3(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import blake3`` fail, as on an install without ``witness[v2]``."""
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "blake3" or name.startswith("blake3."):
            raise ImportError("No module named 'blake3'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_hash_matches_the_blake3_package(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    expected = "blake3:" + blake3.blake3(data).hexdigest()
    assert hash_bytes(data) == expected
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    hasher = FileHasher()
    assert hasher.hash_file(path) == expected
    assert hasher.hash_file(path) == expected
    assert hasher.hashed == 1  # cached by path, size and mtime
    path.write_bytes(data[:-1])
    os.utime(path, ns=(1, 1))
    assert hasher.hash_file(path) == "blake3:" + blake3.blake3(data[:-1]).hexdigest()
    assert hasher.hashed == 2


@pytest.mark.usefixtures("no_blake3")
def test_without_blake3_there_is_no_hash(tmp_path: Path) -> None:
    assert not blake3_available()
    assert hash_bytes(b"x") is None
    path = tmp_path / "f.bin"
    path.write_bytes(b"x")
    assert FileHasher().hash_file(path) is None
    with path.open("rb") as handle:
        assert hashing.hash_stream(handle) is None

"""BLAKE3 content hashes (``blake3:<hex>``) of local files, with the optional ``blake3``.

The Comfy API v2 names bytes by their BLAKE3 hash. With the ``blake3`` package installed
(``pip install witness[v2]``) a file is hashed once and the server asked whether it already
has the bytes (``HEAD /api/v2/assets/by-hash/{hash}``); without it there is no hash, and
every file is uploaded (the server still de-duplicates what it receives).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO, Any

__all__ = ["FileHasher", "blake3_available", "hash_bytes", "hash_stream"]

_CHUNK = 1 << 20


def _blake3() -> Any:
    """The ``blake3.blake3`` constructor, or ``None`` when the package is missing."""
    try:
        from blake3 import blake3  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    return blake3


def blake3_available() -> bool:
    """Whether the optional ``blake3`` package can be imported."""
    return _blake3() is not None


def hash_stream(stream: IO[bytes]) -> str | None:
    """``blake3:<hex>`` of a stream read to its end (``None`` without ``blake3``)."""
    factory = _blake3()
    if factory is None:
        return None
    digest = factory()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return "blake3:" + str(digest.hexdigest())


def hash_bytes(data: bytes) -> str | None:
    """``blake3:<hex>`` of bytes (``None`` without ``blake3``)."""
    factory = _blake3()
    return None if factory is None else "blake3:" + str(factory(data).hexdigest())


class FileHasher:
    """Hashes local files once: cached by resolved path, size and modification time.

    A file changed in place (new size or mtime) is hashed again. Thread-safe.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()
        #: How many files were actually read and hashed (the rest came from the cache).
        self.hashed = 0

    def hash_file(self, path: str | os.PathLike[str]) -> str | None:
        """The file's ``blake3:<hex>`` (``None`` without the ``blake3`` package)."""
        if not blake3_available():
            return None
        resolved = Path(path).resolve()
        stat = resolved.stat()
        key = (str(resolved), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        with resolved.open("rb") as handle:
            digest = hash_stream(handle)
        if digest is not None:
            with self._lock:
                self._cache[key] = digest
                self.hashed += 1
        return digest

"""Safe local file names for names that come from elsewhere (server outputs, URLs, uploads).

A name chosen by the server or by a third party is never trusted as a path: directories are
dropped (``/`` and ``\\`` alike, so ``..\\x`` and ``C:\\x`` cannot climb out either), control
characters and characters Windows forbids are replaced, leading dots are removed (no hidden
files, no ``..``), reserved device names (``CON``, ``NUL``, ``COM1``...) are prefixed, and the
result is cut to a length every common file system accepts, keeping the extension.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["MAX_NAME_BYTES", "atomic_writer", "safe_filename", "unique_path"]

#: Longest name produced, in UTF-8 bytes (ext4/APFS/NTFS allow 255; room is left for suffixes).
MAX_NAME_BYTES = 200

_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)}
    | {f"LPT{i}" for i in range(10)}
    | {"COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"}
)
_MAX_EXT_BYTES = 16
_CREATE_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0)


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def safe_filename(name: object, default: str = "file") -> str:
    """Turn an untrusted name into one plain file name that stays inside its directory.

    Args:
        name: The untrusted name (anything; non-strings are converted with ``str``).
        default: Used when nothing usable is left (itself sanitised; ``"file"`` if empty).

    Returns:
        A non-empty name without directory parts, control characters, characters forbidden on
        Windows, leading dots or trailing dots/spaces, not a reserved device name, and at most
        :data:`MAX_NAME_BYTES` UTF-8 bytes long (the extension is kept when it is short).

    Examples:
        ``"../x.png"`` → ``"x.png"``, ``"/etc/passwd"`` → ``"passwd"``, ``"C:\\\\x"`` → ``"x"``,
        ``"NUL.txt"`` → ``"_NUL.txt"``, ``""`` → ``default``.
    """
    text = unicodedata.normalize("NFC", name if isinstance(name, str) else str(name))
    # Keep only the last path component, whichever separator the sender used.
    text = re.split(r"[/\\]", text)[-1]
    # A drive prefix without a separator ("C:x") is still a drive prefix.
    text = re.sub(r"^[A-Za-z]:", "", text)
    text = _FORBIDDEN.sub("_", text)
    text = text.strip().lstrip(".").rstrip(". ")
    if not text:
        if not default or default == name:
            return "file"
        return safe_filename(default, "file")
    stem, dot, ext = text.rpartition(".")
    if not dot:
        stem, ext = text, ""
    if stem.split(".")[0].upper() in _RESERVED:
        stem = "_" + stem
    if ext and len(ext.encode("utf-8")) > _MAX_EXT_BYTES:
        stem, ext = f"{stem}.{ext}", ""
    suffix = f".{ext}" if ext else ""
    stem = _truncate_utf8(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))).rstrip(". ")
    if not stem:
        stem = "file"
    return stem + suffix


def unique_path(
    directory: str | os.PathLike[str], name: str, *, taken: Collection[str] = ()
) -> Path:
    """A path in ``directory`` for ``name`` that does not exist yet (nor is in ``taken``).

    ``name`` is passed through :func:`safe_filename` first. On a collision a counter is added
    before the extension: ``x.png``, ``x_1.png``, ``x_2.png``...

    The check is not atomic; callers that must never overwrite should create the returned path
    exclusively (``open(path, "x")``) and retry on ``FileExistsError``.

    Args:
        directory: The target directory.
        name: The wanted file name (untrusted).
        taken: Names already claimed by the caller (compared case-insensitively, so two files
            do not collide on case-insensitive file systems).
    """
    base = Path(directory)
    clean = safe_filename(name)
    stem, dot, ext = clean.rpartition(".")
    if not dot:
        stem, ext = clean, ""
    suffix = f".{ext}" if ext else ""
    claimed = {t.casefold() for t in taken}
    candidate = clean
    counter = 0
    while candidate.casefold() in claimed or (base / candidate).exists():
        counter += 1
        tail = f"_{counter}{suffix}"
        candidate = _truncate_utf8(stem, MAX_NAME_BYTES - len(tail.encode("utf-8"))) + tail
    return base / candidate


@contextlib.contextmanager
def atomic_writer(
    destination: str | os.PathLike[str], *, suffix: str = ".part"
) -> Iterator[BinaryIO]:
    """Write ``destination`` atomically, with the mode a plain ``open(destination, "wb")`` gives.

    The bytes go to a hidden temporary file in the same directory, which replaces
    ``destination`` only when the ``with`` block ends without an exception; on any exception
    the temporary file is removed and ``destination`` is untouched.

    Unlike :func:`tempfile.mkstemp` (always ``0600``), the temporary file is created with
    ``0666`` filtered by the process umask (``0644`` under umask ``022``), as ``open`` would;
    when ``destination`` already exists its permission bits are kept, as ``open`` would.

    Args:
        destination: The final path (its directory must exist).
        suffix: Suffix of the temporary file name.

    Yields:
        The temporary file, open for binary writing.
    """
    target = Path(destination)
    directory = target.parent
    while True:
        tmp = directory / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        break
    try:
        with contextlib.suppress(OSError):
            existing = os.stat(target)
            if stat.S_ISREG(existing.st_mode):
                os.chmod(fd if os.chmod in os.supports_fd else tmp, stat.S_IMODE(existing.st_mode))
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

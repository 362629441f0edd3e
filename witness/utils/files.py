"""Safe local file names for names that come from elsewhere (server outputs, URLs, uploads).

A name chosen by the server or by a third party is never trusted as a path: directories are
dropped (``/`` and ``\\`` alike, so ``..\\x`` and ``C:\\x`` cannot climb out either), control
characters and characters Windows forbids are replaced, leading dots are removed (no hidden
files, no ``..``), reserved device names (``CON``, ``NUL``, ``COM1``...) are prefixed, and the
result is cut to a length every common file system accepts, keeping the extension.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Collection
from pathlib import Path

__all__ = ["MAX_NAME_BYTES", "safe_filename", "unique_path"]

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

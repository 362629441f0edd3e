"""What a command prints: records on stdout (human text or one JSON object per line with
``--json``), messages on stderr.

Every command reports through :class:`Output`, so ``--json`` works the same everywhere: each
record is one JSON object on its own line of stdout, and nothing else goes to stdout.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from witness.utils.redact import redact_text

__all__ = ["Column", "Output", "format_table", "to_jsonable"]

#: A table column: (record key, header).
Column = tuple[str, str]


def to_jsonable(value: Any) -> Any:
    """``value`` made of JSON types only (dataclasses, enums, paths, tuples, sets...)."""
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr
        }
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return " ".join(str(value).split())


def format_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], width: int | None = None
) -> str:
    """A plain-text table that fits ``width`` columns (the last column is cut with ``…``)."""
    if width is None:
        width = shutil.get_terminal_size((80, 24)).columns
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    headers = [header for _, header in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    # Shrink the widest columns until the table fits (never below 8 characters).
    while sum(widths) + 2 * (len(widths) - 1) > width:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 8:
            break
        widths[widest] -= 1

    def line(values: Sequence[str]) -> str:
        parts = [
            (v if len(v) <= w else v[: w - 1] + "…").ljust(w)
            for v, w in zip(values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cells)])


class Output:
    """Prints records and messages for one command.

    Args:
        json_mode: Records as JSON lines (``--json``).
        quiet: No informational messages, no progress (``-q``); errors still show.
        stdout: Where records go.
        stderr: Where messages, warnings, errors and progress go.
        secrets: Strings that must never be printed (replaced by ``***``).
    """

    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.secrets = tuple(s for s in secrets if s)

    def _clean(self, text: str) -> str:
        return redact_text(text, self.secrets) if self.secrets else text

    def record(self, data: Mapping[str, Any], human: str | None = None) -> None:
        """One result: a JSON line with ``--json``, else ``human`` (nothing when ``None``)."""
        if self.json_mode:
            text = json.dumps(to_jsonable(data), ensure_ascii=False, sort_keys=False)
        elif human is None:
            return
        else:
            text = human
        self.stdout.write(self._clean(text) + "\n")
        self.stdout.flush()

    def records(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], empty: str = ""
    ) -> None:
        """Rows: one JSON line each with ``--json``, else a table (or ``empty`` on stderr)."""
        if self.json_mode:
            for row in rows:
                self.record(row)
            return
        if not rows:
            if empty:
                self.info(empty)
            return
        self.stdout.write(self._clean(format_table(rows, columns)) + "\n")
        self.stdout.flush()

    def action(self, data: Mapping[str, Any], message: str) -> None:
        """A command that changed something: ``data`` as a JSON line with ``--json``, and
        ``message`` on stderr (unless ``-q``)."""
        self.record(data, None)
        self.info(message)

    def text(self, text: str) -> None:
        """Raw text on stdout (human mode only; e.g. a converted prompt)."""
        self.stdout.write(self._clean(text))
        self.stdout.flush()

    def info(self, message: str) -> None:
        """A message on stderr, unless ``-q``."""
        if not self.quiet:
            self._err(message)

    def warn(self, message: str) -> None:
        """A warning on stderr (shown even with ``-q``)."""
        self._err(f"witness: warning: {message}")

    def error(self, message: str) -> None:
        """An error on stderr (always shown)."""
        self._err(f"witness: error: {message}")

    def _err(self, message: str) -> None:
        self.stderr.write(self._clean(message) + "\n")
        self.stderr.flush()


def path_text(path: Path) -> str:
    """A path as printed: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)

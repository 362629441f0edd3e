"""``-p name=value`` and ``--params FILE.json``: workflow params typed from the signature.

A value given on the command line is text; it is turned into what the param's input takes:

* the input's declared type in ``/object_info`` (``INT`` → int, ``FLOAT`` → float,
  ``BOOLEAN`` → bool, ``STRING`` and choice lists → str), else the type of the node's own
  value (the param's default; an int default takes any number, as JSON writes ``1.0`` as
  ``1``), else it stays text (the server converts it);
* ``@FILE``: for a media param, the local file is uploaded (a :class:`~pathlib.Path` is
  passed to the library); for any other param the file's text is read (one trailing newline
  dropped) and typed as above; ``@-`` reads standard input; ``@@text`` is the literal
  ``@text``.

``--params FILE.json`` holds a JSON object of name → value, used as given (already typed);
``-p`` wins over it for the same name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from witness.cli.errors import UsageError

__all__ = ["build_params", "coerce", "declared_type", "parse_assignment", "read_params_file"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_PLAIN_TYPES = {"INT": "int", "FLOAT": "float", "BOOLEAN": "bool", "STRING": "str"}


def parse_assignment(text: str) -> tuple[str, str]:
    """``"name=value"`` → ``("name", "value")`` (the value may contain ``=``).

    Raises:
        UsageError: No ``=`` or an empty name.
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"-p takes name=value, got {text!r}")
    return name, value


def read_params_file(path: str) -> dict[str, Any]:
    """The JSON object of ``--params FILE.json`` (``-`` reads standard input).

    Raises:
        UsageError: Unreadable, not JSON, or not an object.
    """
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read --params {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--params {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"--params {path} must hold a JSON object of name -> value")
    return data


def declared_type(class_type: str, field: str, object_info: Mapping[str, Any] | None) -> str | None:
    """``"int"``, ``"float"``, ``"bool"`` or ``"str"`` for a node input, from
    ``/object_info``; ``None`` when unknown (no definitions, unknown class or input, a link
    type such as ``IMAGE``)."""
    if not object_info:
        return None
    info = object_info.get(class_type)
    inputs = info.get("input") if isinstance(info, Mapping) else None
    if not isinstance(inputs, Mapping):
        return None
    for section in ("required", "optional"):
        spec = inputs.get(section)
        entry = spec.get(field) if isinstance(spec, Mapping) else None
        if isinstance(entry, list | tuple) and entry:
            kind = entry[0]
            if isinstance(kind, list | tuple) or kind == "COMBO":
                return "str"
            if isinstance(kind, str):
                return _PLAIN_TYPES.get(kind)
    return None


def _default_type(default: Any) -> str | None:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "number"  # a guess: JSON writes 1.0 as 1 (denoise), so a float is taken too
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return None


def coerce(name: str, text: str, kind: str | None) -> Any:
    """``text`` as a ``kind`` value: ``"int"``, ``"float"``, ``"bool"``, ``"number"`` (int
    when it reads as one, else float), ``"str"`` or ``None`` (both: stays text).

    Raises:
        UsageError: The text is not a value of that type (the param is named).
    """
    if kind in (None, "str"):
        return text
    word = text.strip()
    if kind == "bool":
        if word.lower() in _TRUE:
            return True
        if word.lower() in _FALSE:
            return False
        raise UsageError(f"parameter {name!r} is a boolean: use true or false, got {text!r}")
    try:
        if kind == "number":
            return int(word) if word.lstrip("+-").isdigit() else float(word)
        return int(word) if kind == "int" else float(word)
    except ValueError:
        what = "an integer" if kind == "int" else "a number"
        raise UsageError(f"parameter {name!r} takes {what}, got {text!r}") from None


def _param_type(info: Mapping[str, Any], object_info: Mapping[str, Any] | None) -> str | None:
    for target in info.get("targets", ()):
        kind = declared_type(str(target.get("class_type")), str(target.get("field")), object_info)
        if kind is not None:
            return kind
    for target in info.get("targets", ()):
        kind = _default_type(target.get("default"))
        if kind is not None:
            return kind
    return None


def _read_text(name: str, source: str) -> str:
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            text = Path(source).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"parameter {name!r}: cannot read {source}: {exc.strerror or exc}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"parameter {name!r}: {source} is not UTF-8 text") from exc
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def typed_value(
    name: str, text: str, info: Mapping[str, Any] | None, object_info: Mapping[str, Any] | None
) -> Any:
    """One ``-p`` value, typed for the param described by ``info`` (``inspect()``'s entry;
    ``None`` for a name the workflow does not declare: the value stays text)."""
    if text.startswith("@@"):
        return coerce(name, text[1:], _param_type(info, object_info) if info else None)
    if text.startswith("@"):
        source = text[1:]
        if info is not None and info.get("upload"):
            path = Path(source).expanduser()
            if not path.is_file():
                raise UsageError(f"parameter {name!r}: no such file {source}")
            return path
        text = _read_text(name, source)
    return coerce(name, text, _param_type(info, object_info) if info else None)


def build_params(
    assignments: Sequence[str],
    params_file: str | None,
    signature: Mapping[str, Any],
    object_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The params of a run: ``--params`` first, then each ``-p`` (typed, later ones win).

    Args:
        assignments: The ``-p`` values (``name=value``).
        params_file: The ``--params`` file, if any.
        signature: ``Witness.inspect()`` of the workflow (its ``params`` are used).
        object_info: Node definitions for the declared types (optional).

    Raises:
        UsageError: A malformed ``-p``, an unreadable file, a value of the wrong type.
    """
    params: dict[str, Any] = read_params_file(params_file) if params_file else {}
    declared = signature.get("params", {})
    for item in assignments:
        name, text = parse_assignment(item)
        params[name] = typed_value(name, text, declared.get(name), object_info)
    return params

"""The frontend's widget text replacements: ``%Node.widget%`` and ``%date:...%`` tokens.

When the ComfyUI frontend queues a workflow, the ``filename_prefix`` widget of the save nodes
(and the value of a ``PrimitiveNode`` whose property ``Run widget replace on values`` is set)
goes through ``applyTextReplacements`` (``src/utils/searchAndReplace.ts``; in the compiled
frontend 1.32.9 bundle ``applyTextReplacements$1`` in ``assets/index-BKdH1OFt.js``). This module
is a port of that function and of ``formatDate`` (``packages/shared-frontend-utils/src/
formatUtil.ts``), rule for rule:

* Every ``%text%`` (regex ``/%([^%]+)%/g``) is looked at on its own. ``text`` is split at
  ``.``; when it does not have exactly two parts it is a date token if its first part starts
  with ``date:`` (``%date:yyyy-MM-dd%``; only the part before the first ``.`` is formatted, so
  ``%date:yyyy.MM%`` gives the year alone), otherwise it is left as written (``%width%`` and
  ``%height%`` are the server's own tokens).
* ``%Name.widget%``: the nodes are searched over the whole graph, subgraph contents included
  (``collectAllNodes``: for each node of a graph in order, the nodes of its subgraph first, then
  the node itself). A node matches by its ``Node name for S&R`` property first; only when no
  node has that property value are the node titles compared. With several matches the first is
  used; with none, or when the node has no widget of that name, the token is left as written.
* The widget's value is turned into text as JavaScript's ``(value ?? '') + ''`` does
  (``1.0`` -> ``"1"``, ``True`` -> ``"true"``, lists joined with ``,``) and the characters
  ``/ ? < > \\ : * | "`` and the control characters U+0000-U+001F and U+007F are replaced by ``_``.
  Date tokens are not sanitised.
* Date tokens: ``d``/``dd`` day, ``M``/``MM`` month, ``h``/``hh`` hour (0-23), ``m``/``mm``
  minute, ``s``/``ss`` second (two letters: zero-padded), ``yy`` the year without its first two
  digits, ``yyyy`` the year; matched left to right by ``/dd?|MM?|hh?|mm?|ss?|yyy?y?/g`` (so
  ``yyy`` stays ``yyy``, and letters inside words are tokens too). The frontend reads the
  browser's local time; here the caller passes the moment (``now``), so tests can fix it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "SAVE_NODE_TYPES",
    "ReplacementNode",
    "apply_text_replacements",
    "format_date",
    "js_string",
    "js_truthy",
]

# ``saveNodeTypes`` of the frontend's Comfy.SaveImageExtraOutput extension: the node types whose
# ``filename_prefix`` widget is serialised through applyTextReplacements.
SAVE_NODE_TYPES: Final = frozenset(
    {
        "SaveImage",
        "SaveVideo",
        "SaveAnimatedWEBP",
        "SaveWEBM",
        "SaveAudio",
        "SaveGLB",
        "SaveAnimatedPNG",
        "CLIPSave",
        "VAESave",
        "ModelSave",
        "LoraSave",
        "SaveLatent",
    }
)

logger = logging.getLogger(__name__)

_TOKEN: Final = re.compile(r"%([^%]+)%")
_DATE_PART: Final = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")
_UNSAFE: Final = re.compile(r'[/?<>\\:*|"\x00-\x1f\x7f]')
_MAX_SAFE_INTEGER: Final = 2**53 - 1

Json = Any


@dataclass(frozen=True)
class ReplacementNode:
    """One node as ``applyTextReplacements`` sees it.

    Attributes:
        search_name: The node's ``Node name for S&R`` property (any JSON value; ``None`` when the
            node has none). Only a string equal to the token's node name matches.
        title: The node's title as the frontend has it (the saved title, else the default).
        widgets: Returns the node's widget values by widget name (called only for the node a
            token resolves to).
    """

    search_name: Json
    title: str
    widgets: Callable[[], Mapping[str, Json]]


def apply_text_replacements(value: str, nodes: Sequence[ReplacementNode], now: datetime) -> str:
    """Resolve the ``%...%`` tokens of ``value`` as the frontend's ``applyTextReplacements``.

    Args:
        value: The widget text.
        nodes: Every node of the workflow in ``collectAllNodes`` order.
        now: The moment date tokens format (its own fields are used, like the browser's local
            time).

    Returns:
        The text with every resolvable token replaced.
    """

    def replace(match: re.Match[str]) -> str:
        text = match.group(1)
        split = text.split(".")
        if len(split) != 2:
            if split[0].startswith("date:"):
                return format_date(split[0][5:], now)
            if text not in ("width", "height"):  # the server's own tokens
                logger.debug("text replacement %r: not a Node.widget or date token", text)
            return match.group(0)
        name, widget_name = split
        found = [n for n in nodes if isinstance(n.search_name, str) and n.search_name == name]
        if not found:
            found = [n for n in nodes if n.title == name]
        if not found:
            logger.debug("text replacement %r: no node named %r; left as written", text, name)
            return match.group(0)
        if len(found) > 1:
            logger.debug("text replacement %r: %d nodes match; using the first", text, len(found))
        widgets = found[0].widgets()
        if widget_name not in widgets:
            logger.debug("text replacement %r: node has no widget %r", text, widget_name)
            return match.group(0)
        return _UNSAFE.sub("_", js_string(widgets[widget_name]))

    return _TOKEN.sub(replace, value)


def format_date(text: str, now: datetime) -> str:
    """The frontend's ``formatDate(text, date)``: replace the date letters in ``text``.

    Args:
        text: The format, e.g. ``yyyy-MM-dd``.
        now: The moment to format.

    Returns:
        The formatted text.
    """
    parts = {"d": now.day, "M": now.month, "h": now.hour, "m": now.minute, "s": now.second}

    def replace(match: re.Match[str]) -> str:
        part = match.group(0)
        if part == "yy":
            return str(now.year)[2:]
        if part == "yyyy":
            return str(now.year)
        if part[0] in parts:
            return str(parts[part[0]]).rjust(len(part), "0")
        return part

    return _DATE_PART.sub(replace, text)


def js_truthy(value: Json) -> bool:
    """JavaScript truthiness of a JSON value (``[]`` and ``{}`` are true, ``NaN`` is false)."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def js_string(value: Json) -> str:
    """``(value ?? '') + ''`` in JavaScript, for a JSON value.

    Args:
        value: A decoded JSON value (``None`` for ``null``).

    Returns:
        The text JavaScript makes of it: numbers as ``Number.prototype.toString``, booleans as
        ``true``/``false``, arrays joined with ``,`` (``null`` items empty), objects as
        ``[object Object]``.
    """
    if value is None:
        return ""
    return _js_to_string(value)


def _js_to_string(value: Json) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value) if abs(value) <= _MAX_SAFE_INTEGER else _js_number(float(value))
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join("" if item is None else _js_to_string(item) for item in value)
    return "[object Object]"


def _js_number(value: float) -> str:
    """ECMAScript ``Number::toString(value)`` (radix 10)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _js_number(-value)
    # repr() gives the shortest digits that round-trip, as ECMAScript requires.
    _sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    if not isinstance(exponent, int):  # only for NaN and infinities, handled above
        raise ValueError(f"not a finite number: {value!r}")
    digits = "".join(str(d) for d in digit_tuple)
    k = len(digits)
    n = k + exponent  # value = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"

"""Workflow sources: turn what the caller gave into a workflow dict and say what format it is.

Accepted sources, decided in this order (the rule is explicit so nothing is guessed silently):

1. A mapping: deep-copied (the caller's object is never touched).
2. ``bytes``/``bytearray``/``memoryview``: UTF-8 JSON (a BOM is accepted).
3. An ``os.PathLike``: a local file.
4. A ``str``:

   a. starting with ``{`` or ``[`` after whitespace: JSON text;
   b. an ``http://``/``https://`` URL: downloaded without any of the ComfyUI connection's
      credentials, with a size limit and a timeout (:func:`witness.utils.fetch.fetch_url`);
      ``file://`` URLs are local files;
   c. ``runninghub:<digits>``: a RunningHub workflow id (``runninghub_id`` is set and
      ``workflow`` is empty: the RunningHub backend fetches it). Choosing RunningHub is
      always explicit: a bare digit string is a local file of that name, or a
      :class:`~witness.errors.WorkflowSourceError` suggesting ``runninghub:<id>`` (ComfyKit
      guessed that every digit string was an id, even an existing file);
   d. anything else: a local file path (``~`` is expanded).

Unwrapping: ``{"prompt": {...}}`` (a ``POST /prompt`` body or an API export saved with the
wrapper) and RunningHub's ``getJsonApiFormat`` answer (``{"prompt": "<JSON string>"}``, also
inside ``{"code": 0, "data": {...}}``) yield the inner workflow. A RunningHub stub file
``{"_source": "runninghub", "workflow_id": "123"}`` yields ``runninghub_id``.

Format: API format is a mapping of node id → ``{"class_type": str, "inputs": {...}}``; UI
format has a ``nodes`` list and ``links``. Anything else is a
:class:`~witness.errors.WorkflowFormatError` saying what it looks like.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat as stat_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from witness.errors import (
    DownloadTooLargeError,
    InvalidArgumentError,
    WitnessError,
    WorkflowFormatError,
    WorkflowSourceError,
)
from witness.utils.fetch import fetch_url
from witness.utils.jsoncopy import copy_json
from witness.utils.redact import redact_url

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "LoadedWorkflow",
    "WorkflowFormat",
    "detect_format",
    "load_workflow",
    "workflow_from_runninghub",
]

logger = logging.getLogger(__name__)

#: Largest workflow accepted from a file or URL (bytes).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Connect and read timeout for workflow URLs (seconds).
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)

WorkflowFormat = Literal["api", "ui"]

_DIGITS = re.compile(r"[0-9]+")
#: The source prefix that selects the RunningHub backend: ``runninghub:<workflow id>``.
RUNNINGHUB_PREFIX = "runninghub:"
_UNWRAP_DEPTH = 4


@dataclass(frozen=True)
class LoadedWorkflow:
    """A loaded workflow.

    Attributes:
        workflow: The workflow (a fresh dict the caller may modify); empty when only a
            RunningHub id is known.
        format: ``"api"`` or ``"ui"``.
        origin: Where it came from, for messages: a path, a redacted URL, ``"<dict>"``,
            ``"<json text>"``, ``"<bytes>"`` or ``"runninghub:<id>"``.
        runninghub_id: The RunningHub workflow id when the source named one.
        text: The exact bytes or text it was decoded from (a file, URL, bytes or JSON
            text), a key for caches of what depends only on the content; ``None`` for a
            dict source. Not compared and not shown.
    """

    workflow: dict[str, Any]
    format: WorkflowFormat
    origin: str
    runninghub_id: str | None = None
    text: str | bytes | None = field(default=None, compare=False, repr=False)


def load_workflow(
    source: Any,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> LoadedWorkflow:
    """Load a workflow from a dict, file, URL, JSON text, bytes or RunningHub id.

    Args:
        source: See the module docstring for the accepted kinds and the order of the rules.
        max_bytes: Largest file or download accepted.
        timeout: Seconds, or ``(connect, read)``, for URL sources.

    Returns:
        The workflow, its format and its origin.

    Raises:
        WorkflowSourceError: The file is missing/unreadable/too large, or the URL failed.
        WorkflowFormatError: Not JSON (line and column given), or neither API nor UI format.
        InvalidArgumentError: ``source`` is of an unsupported type.
    """
    if isinstance(source, Mapping):
        return _from_object(copy_json(dict(source)), "<dict>")
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return _from_object(_decode_json(data, "<bytes>"), "<bytes>", text=data)
    if isinstance(source, os.PathLike):
        return _from_file(Path(os.fspath(source)), max_bytes)
    if not isinstance(source, str):
        raise InvalidArgumentError(
            "workflow",
            "expected a dict, a path, a URL, JSON text, bytes or a RunningHub id, got "
            f"{type(source).__name__}",
        )
    text = source.strip()
    if not text:
        raise InvalidArgumentError("workflow", "empty string")
    if text[0] in "{[":
        return _from_object(_decode_json(text, "<json text>"), "<json text>", text=text)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in {"http", "https"}:
        return _from_url(text, max_bytes, timeout)
    if scheme == "file":
        return _from_file(Path(unquote(urlsplit(text).path)), max_bytes)
    if scheme:
        raise WorkflowSourceError(
            f"unsupported URL scheme {scheme!r} in {redact_url(text)}; use http(s), file or a path",
            source=redact_url(text),
        )
    if text.lower().startswith(RUNNINGHUB_PREFIX):
        workflow_id = text[len(RUNNINGHUB_PREFIX) :].strip()
        if not _DIGITS.fullmatch(workflow_id):
            raise InvalidArgumentError(
                "workflow", f"a RunningHub workflow id is digits, got {workflow_id!r}"
            )
        return LoadedWorkflow({}, "api", f"runninghub:{workflow_id}", runninghub_id=workflow_id)
    if _DIGITS.fullmatch(text) and not Path(text).is_file():
        raise WorkflowSourceError(
            f"no workflow file named {text!r}; for the RunningHub workflow of that id, pass "
            f"'runninghub:{text}'",
            source=text,
        )
    return _from_file(Path(text).expanduser(), max_bytes)


def workflow_from_runninghub(prompt: Any, workflow_id: str | None = None) -> LoadedWorkflow:
    """The workflow in a RunningHub ``getJsonApiFormat`` answer.

    Args:
        prompt: The ``prompt`` field (an API-format JSON string), the ``data`` object, or the
            whole ``{"code", "msg", "data"}`` answer.
        workflow_id: The workflow id, for the origin and ``runninghub_id``.

    Raises:
        WorkflowFormatError: The text is not JSON or not a workflow.
    """
    origin = f"runninghub:{workflow_id}" if workflow_id else "<runninghub>"
    data = _decode_json(prompt, origin) if isinstance(prompt, str | bytes) else copy_json(prompt)
    loaded = _from_object(data, origin)
    return LoadedWorkflow(loaded.workflow, loaded.format, origin, workflow_id)


# --------------------------------------------------------------------------------------------


def _from_file(path: Path, max_bytes: int) -> LoadedWorkflow:
    origin = str(path)
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise WorkflowSourceError(f"workflow file not found: {origin}", source=origin) from exc
    except OSError as exc:
        raise WorkflowSourceError(
            f"cannot read workflow file {origin}: {exc.strerror or exc}", source=origin
        ) from exc
    if stat_module.S_ISDIR(stat.st_mode):
        raise WorkflowSourceError(
            f"workflow path is a directory, not a file: {origin}", source=origin
        )
    if stat.st_size > max_bytes:
        raise WorkflowSourceError(
            f"workflow file {origin} is {stat.st_size} bytes, over the {max_bytes}-byte limit",
            source=origin,
        )
    try:
        with path.open("rb") as handle:
            # Sized by the file (a read of max_bytes would allocate the whole limit up
            # front); a file that grew since the stat is read on, to the limit.
            data = handle.read(min(stat.st_size, max_bytes) + 1)
            if len(data) > stat.st_size:
                data += handle.read(max_bytes + 1 - len(data))
    except OSError as exc:
        raise WorkflowSourceError(
            f"cannot read workflow file {origin}: {exc.strerror or exc}", source=origin
        ) from exc
    if len(data) > max_bytes:
        raise WorkflowSourceError(
            f"workflow file {origin} is over the {max_bytes}-byte limit", source=origin
        )
    return _from_object(_decode_json(data, origin), origin, text=data)


def _from_url(url: str, max_bytes: int, timeout: float | tuple[float, float]) -> LoadedWorkflow:
    shown = redact_url(url)
    try:
        with fetch_url(url, max_bytes=max_bytes, timeout=timeout) as fetched:
            data = fetched.read_bytes()
    except DownloadTooLargeError as exc:
        raise WorkflowSourceError(
            f"workflow download {shown} is over the {max_bytes}-byte limit", source=shown
        ) from exc
    except WitnessError as exc:
        raise WorkflowSourceError(f"cannot download workflow {shown}: {exc}", source=shown) from exc
    except OSError as exc:
        raise WorkflowSourceError(f"cannot download workflow {shown}: {exc}", source=shown) from exc
    return _from_object(_decode_json(data, shown), shown, text=data)


def _decode_json(data: str | bytes, origin: str) -> Any:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise WorkflowFormatError(
                f"{origin} is not UTF-8 text (byte {exc.start}): not a JSON workflow"
            ) from exc
    else:
        text = data.removeprefix("\ufeff")
    if not text.strip():
        raise WorkflowFormatError(f"{origin} is empty: not a JSON workflow")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowFormatError(
            f"{origin} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def _unwrap(data: Any, origin: str) -> tuple[Any, str | None]:
    """Peel ``{"prompt": ...}`` / RunningHub wrappers; return (data, runninghub_id)."""
    for _ in range(_UNWRAP_DEPTH):
        if not isinstance(data, Mapping):
            return data, None
        if data.get("_source") == "runninghub":
            rh_id = data.get("workflow_id", data.get("workflowId"))
            if isinstance(rh_id, int | str) and str(rh_id).strip():
                return data, str(rh_id).strip()
        if "code" in data and isinstance(data.get("data"), Mapping) and "prompt" in data["data"]:
            data = data["data"]
            continue
        inner = data.get("prompt")
        if isinstance(inner, str) and inner.lstrip().startswith("{"):
            data = _decode_json(inner, f"{origin} (prompt field)")
            continue
        if isinstance(inner, Mapping) and not _is_node(inner):
            data = inner
            continue
        return data, None
    return data, None


def _is_node(value: Any) -> bool:
    return isinstance(value, Mapping) and "class_type" in value


def detect_format(data: Any) -> WorkflowFormat:
    """``"api"`` or ``"ui"`` for a decoded workflow.

    Raises:
        WorkflowFormatError: It is neither; the message says what it looks like.
    """
    if not isinstance(data, Mapping):
        raise WorkflowFormatError(f"a workflow is a JSON object; this is {_json_kind(data)}")
    if "nodes" in data:
        if not isinstance(data["nodes"], list):
            raise WorkflowFormatError("'nodes' is not a list: not a UI-format workflow")
        if not isinstance(data.get("links"), list):
            raise WorkflowFormatError(
                "looks like a UI-format workflow (it has 'nodes') but has no 'links' list"
            )
        return "ui"
    if not data:
        raise WorkflowFormatError("the workflow is empty (an empty JSON object)")
    node_like = [k for k, v in data.items() if _is_node(v)]
    if node_like and len(node_like) == len(data):
        for node_id, node in data.items():
            if not isinstance(node.get("class_type"), str) or not node["class_type"]:
                raise WorkflowFormatError(
                    f"API-format workflow: node {node_id!r} has a 'class_type' that is not a "
                    "non-empty string"
                )
            if not isinstance(node.get("inputs"), Mapping):
                raise WorkflowFormatError(
                    f"API-format workflow: node {node_id!r} ({node['class_type']}) has no "
                    "'inputs' object"
                )
        return "api"
    if node_like:
        bad = next(k for k, v in data.items() if not _is_node(v))
        raise WorkflowFormatError(
            f"looks like an API-format workflow, but entry {bad!r} is not a node "
            f"(no 'class_type'): {_json_kind(data[bad])}"
        )
    raise WorkflowFormatError(f"not a workflow: {_describe(data)}")


def _json_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = list(value)
        shown = ", ".join(repr(k) for k in keys[:8]) + (", ..." if len(keys) > 8 else "")
        return f"an object with keys {shown}" if keys else "an empty object"
    if isinstance(value, list):
        return f"an array of {len(value)} item(s)"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _describe(data: Mapping[str, Any]) -> str:
    values = list(data.values())
    if values and all(isinstance(v, Mapping) and "outputs" in v and "prompt" in v for v in values):
        return "it looks like a /history response (prompt id → entry), not a workflow"
    if values and all(isinstance(v, Mapping) and "input" in v and "output" in v for v in values):
        return "it looks like an /object_info response, not a workflow"
    return (
        f"{_json_kind(data)}; expected API format (node id → {{class_type, inputs}}) or "
        "UI format (with 'nodes' and 'links')"
    )


def _from_object(data: Any, origin: str, *, text: str | bytes | None = None) -> LoadedWorkflow:
    data, rh_id = _unwrap(data, origin)
    if rh_id is not None:
        nodes = {k: v for k, v in data.items() if _is_node(v)}
        return LoadedWorkflow(copy_json(nodes), "api", origin, runninghub_id=rh_id)
    try:
        fmt = detect_format(data)
    except WorkflowFormatError as exc:
        raise WorkflowFormatError(f"{origin}: {exc}") from exc
    return LoadedWorkflow(dict(data), fmt, origin, text=text)

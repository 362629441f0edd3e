"""The workflow DSL: parameters and outputs declared in node titles of API-format workflows.

A node title (``_meta.title``) is split on commas; each part is stripped. Parts that start
with ``$`` are markers, the others are display text kept as the node's label. Grammar of one
marker::

    marker   := "$" [ "~" ] name [ "." [ "~" ] field ] [ "!" ] [ ":" description ]
              | "$output." name [ ":" description ]
    name     := [A-Za-z_][A-Za-z0-9_-]*
    field    := [A-Za-z0-9_] followed by [A-Za-z0-9_. -]*, without ".." and not ending in space

* ``$width`` — parameter ``width`` sets the node's input ``width`` (no field means field = name).
* ``$size.width`` — parameter ``size`` sets the input ``width``.
* ``!`` — required: :func:`apply` raises :class:`~witness.errors.MissingParamError` without it.
* ``~`` (before the name or before the field) — a media parameter: its value is uploaded and
  the input receives the server-side file name (see :func:`apply`). A marked field that is the
  media input of a known loader (``$image`` on ``LoadImage``; with ``object_info``, any input
  flagged ``image_upload``/``video_upload``/``audio_upload``) is a media parameter without
  ``~``.
* ``:description`` — legacy suffix (``$prompt.text!:the prompt``); the text is kept.
* ``$output.name`` — the node's results are reported under ``name`` instead of its id. It may
  appear on any node, next to display text and parameter markers (``Result, $output.cover``).
  ``output`` is therefore reserved and cannot be a parameter name.

Examples: ``Size, $width!, $height!`` · ``$~photo.image!`` · ``$seed.~noise_seed`` (upload
flag on the field) · ``Result, $output.cover``.

Rules (chosen so that nothing fails silently):

* A malformed marker (``$``, ``$.x``, ``$a..b``, ``$a!.b``, ``$a b``...) is a
  :class:`~witness.errors.DSLError` naming the node id and title.
* A marker naming an input the node does not have is a :class:`~witness.errors.DSLError` at
  parse time. The node "has" an input if it is a key of its ``inputs`` or, when ``object_info``
  is given, a declared required/optional input of its class.
* Two different parameters on the same input of the same node are a DSLError (which one
  would win is not obvious); the same parameter repeated is merged.
* One parameter may target several nodes: a value sets all of them; when unset, each node
  keeps its own value. The parameter is required if any of its markers has ``!``.
* An optional parameter whose input is a link (or absent) has no default: when unset, the link
  stays in place (or the input stays absent and the server's default applies). Setting it
  replaces the link with the literal value.
* Every node of an output class (a known set, or ``output_node: true`` in ``object_info``)
  without ``$output`` is an output keyed by its node id. Outputs with the same name are all
  kept, in workflow order.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from witness.errors import (
    DSLError,
    InvalidArgumentError,
    MissingParamError,
    ParamError,
    UnknownParamError,
    UploadError,
    WorkflowFormatError,
)
from witness.utils.jsoncopy import copy_json

__all__ = [
    "KNOWN_OUTPUT_CLASSES",
    "MEDIA_LOADERS",
    "NAME_PATTERN",
    "OUTPUT_KEYWORD",
    "SEED_INPUTS",
    "Marker",
    "MediaLoader",
    "MediaResolver",
    "OutputSpec",
    "Param",
    "ParamTarget",
    "ParsedTitle",
    "Signature",
    "apply",
    "is_output_node",
    "media_input_of",
    "parse",
    "parse_title",
]

logger = logging.getLogger(__name__)

#: A parameter or output name.
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_-]*"
_NAME_RE = re.compile(NAME_PATTERN)
# Field names follow ComfyUI input names, which may contain dots ("double_layers.0.").
_FIELD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_. -]*")

#: The marker name reserved for outputs (``$output.name``).
OUTPUT_KEYWORD = "output"

#: Input names :func:`apply` treats as seeds when ``randomize_seeds=True``.
SEED_INPUTS = frozenset({"seed", "noise_seed"})
_SEED_RANGE = (0, 2**32 - 1)

#: Classes treated as output nodes when no ``object_info`` says otherwise.
KNOWN_OUTPUT_CLASSES = frozenset(
    {
        # ComfyUI core / comfy_extras (output_node: true in 0.3.75)
        "SaveImage", "PreviewImage", "SaveLatent", "MaskPreview", "SaveAnimatedWEBP",
        "SaveAnimatedPNG", "SaveSVGNode", "SaveAudio", "SaveAudioMP3", "SaveAudioOpus",
        "PreviewAudio", "Preview3D", "SaveWEBM", "SaveVideo", "SaveGLB", "PreviewAny",
        "SaveImageWebsocket", "CheckpointSave", "CLIPSave", "VAESave", "ModelSave",
        "ImageOnlyCheckpointSave", "SaveLoRA", "LoraSave", "LossGraphNode",
        "SaveImageDataSetToFolder", "SaveImageTextDataSetToFolder", "SaveTrainingDataset",
        # common custom nodes
        "VHS_VideoCombine", "VHS_SaveVideo", "VHS_SaveAudio", "ShowText|pysssss",
    }
)  # fmt: skip


@dataclass(frozen=True)
class MediaLoader:
    """How a loader node takes its media file.

    Attributes:
        field: The input holding the server-side file name.
        kind: ``"image"``, ``"mask"``, ``"audio"`` or ``"video"``.
        folder: Where the server looks the name up: ``"input"`` or ``"output"``.
    """

    field: str
    kind: str
    folder: str = "input"


#: Loader classes whose media input counts as a media parameter even without ``~``.
MEDIA_LOADERS: Mapping[str, MediaLoader] = MappingProxyType(
    {
        "LoadImage": MediaLoader("image", "image"),
        "LoadImageMask": MediaLoader("image", "mask"),
        "LoadImageOutput": MediaLoader("image", "image", "output"),
        "LoadAudio": MediaLoader("audio", "audio"),
        "LoadVideo": MediaLoader("file", "video"),
        "VHS_LoadVideo": MediaLoader("video", "video"),
        "VHS_LoadVideoFFmpeg": MediaLoader("video", "video"),
        "VHS_LoadAudioUpload": MediaLoader("audio", "audio"),
    }
)

_UPLOAD_FLAGS = (("image_upload", "image"), ("video_upload", "video"), ("audio_upload", "audio"))


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamTarget:
    """One node input a parameter sets.

    Attributes:
        node_id: The node.
        field: The input name.
        class_type: The node's class.
        default: The node's own literal value (unwrapped from ``{"__value__": ...}``), or
            ``None`` when the input is absent or a link.
        linked: The input currently holds a link (``[node_id, slot]``).
        required: This marker has ``!``.
        upload: The value is a media file to upload (``~``, or a known loader's media input).
        description: The legacy ``:description`` text, if any.
        media_kind: ``"image"``, ``"mask"``, ``"audio"`` or ``"video"`` for known loaders (or
            inputs flagged for upload in ``object_info``), else ``None``.
        media_folder: Where the server resolves the uploaded name (``"input"``, or
            ``"output"`` for ``LoadImageOutput``); ``None`` when not an upload.
        label: The node title's display text (non-marker parts joined), if any.
    """

    node_id: str
    field: str
    class_type: str
    default: Any
    linked: bool
    required: bool
    upload: bool
    description: str | None
    media_kind: str | None = None
    media_folder: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Param:
    """A workflow parameter: a name and every node input it sets.

    Attributes:
        name: The parameter name.
        targets: The inputs it sets, in workflow order.
        required: Any of its markers has ``!``.
        upload: Any of its targets takes an uploaded media file.
        media_kind: The first known media kind among its targets, else ``None``.
    """

    name: str
    targets: tuple[ParamTarget, ...]
    required: bool
    upload: bool
    media_kind: str | None

    @property
    def node_ids(self) -> tuple[str, ...]:
        """The nodes it sets (in order, without repeats)."""
        return tuple(dict.fromkeys(t.node_id for t in self.targets))

    @property
    def fields(self) -> tuple[str, ...]:
        """The input names it sets (in order, without repeats)."""
        return tuple(dict.fromkeys(t.field for t in self.targets))

    @property
    def default(self) -> Any:
        """The first target's default (each target keeps its own when the param is unset)."""
        return self.targets[0].default if self.targets else None

    @property
    def description(self) -> str | None:
        """The first description given on any of its markers."""
        return next((t.description for t in self.targets if t.description), None)


@dataclass(frozen=True)
class OutputSpec:
    """A node whose results are reported.

    Attributes:
        name: The ``$output`` name, or the node id when ``explicit`` is false.
        node_id: The node.
        class_type: Its class.
        explicit: Named with ``$output.name`` (false: an output class keyed by node id).
    """

    name: str
    node_id: str
    class_type: str
    explicit: bool


@dataclass(frozen=True)
class Signature:
    """What a workflow accepts and produces.

    Attributes:
        params: Parameter name → :class:`Param` (read-only, in workflow order).
        outputs: Every output, in workflow order (same names allowed).
    """

    params: Mapping[str, Param]
    outputs: tuple[OutputSpec, ...]

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required parameters."""
        return tuple(name for name, p in self.params.items() if p.required)

    def param_inputs(self) -> dict[tuple[str, str], str]:
        """``(node_id, input_name)`` → the parameter that sets it (first one wins)."""
        found: dict[tuple[str, str], str] = {}
        for name, param in self.params.items():
            for target in param.targets:
                found.setdefault((target.node_id, target.field), name)
        return found

    def output_names_by_node(self) -> dict[str, list[str]]:
        """Node id → the output names reported for it (node id when not named)."""
        names: dict[str, list[str]] = {}
        for spec in self.outputs:
            names.setdefault(spec.node_id, []).append(spec.name)
        return names

    def describe(self) -> dict[str, Any]:
        """A plain, JSON-friendly description (for ``inspect()`` and logs)."""
        return {
            "params": {
                name: {
                    "name": name,
                    "node_ids": list(p.node_ids),
                    "fields": list(p.fields),
                    "field": p.fields[0] if len(p.fields) == 1 else list(p.fields),
                    "required": p.required,
                    "upload": p.upload,
                    "media_kind": p.media_kind,
                    "default": p.default,
                    "description": p.description,
                    "targets": [
                        {
                            "node_id": t.node_id,
                            "field": t.field,
                            "class_type": t.class_type,
                            "default": t.default,
                            "linked": t.linked,
                            "required": t.required,
                            "upload": t.upload,
                            "label": t.label,
                        }
                        for t in p.targets
                    ],
                }
                for name, p in self.params.items()
            },
            "outputs": [
                {
                    "name": o.name,
                    "node_id": o.node_id,
                    "class_type": o.class_type,
                    "explicit": o.explicit,
                }
                for o in self.outputs
            ],
        }


@dataclass(frozen=True)
class Marker:
    """One ``$`` marker of a title.

    Attributes:
        text: The marker as written.
        name: Parameter name, or output name when ``output`` is true.
        field: The input it sets (``None`` for outputs).
        required: Has ``!``.
        upload: Has ``~`` (before the name or the field).
        description: The ``:description`` suffix, if any.
        output: It is ``$output.name``.
    """

    text: str
    name: str
    field: str | None
    required: bool = False
    upload: bool = False
    description: str | None = None
    output: bool = False


@dataclass(frozen=True)
class ParsedTitle:
    """A title split into display text and markers."""

    label: tuple[str, ...] = ()
    markers: tuple[Marker, ...] = field(default_factory=tuple)


#: ``resolve_media(param, target, value) -> server-side name`` (uploads a media value).
MediaResolver = Callable[[Param, ParamTarget, Any], str]


# --------------------------------------------------------------------------------------------
# Titles
# --------------------------------------------------------------------------------------------


def _where(node_id: str, class_type: str | None, title: str) -> str:
    text = f"node {node_id}"
    if class_type:
        text += f" ({class_type})"
    return f"{text} title {title!r}"


def _parse_marker(part: str, node_id: str, title: str, class_type: str | None) -> Marker:
    def fail(reason: str) -> DSLError:
        return DSLError(
            f"{_where(node_id, class_type, title)}: malformed marker {part!r}: {reason}",
            node_id=node_id,
            title=title,
        )

    body = part[1:]
    description: str | None = None
    if ":" in body:
        body, desc = body.split(":", 1)
        description = desc.strip() or None
    required = body.endswith("!")
    if required:
        body = body[:-1]
    if "!" in body:
        raise fail("'!' must come last (after the field), as in $name.field!")
    upload = body.startswith("~")
    if upload:
        body = body[1:]
    name, dot, field_text = body.partition(".")
    if dot and field_text.startswith("~"):
        upload = True
        field_text = field_text[1:]
    if not name:
        raise fail("a parameter name is missing after '$'")
    if not _NAME_RE.fullmatch(name):
        raise fail(f"{name!r} is not a valid name (letters, digits, '_' and '-', not first digit)")
    if dot and not field_text:
        raise fail("an input name is missing after '.'")
    if dot and (not _FIELD_RE.fullmatch(field_text) or ".." in field_text or field_text[-1] == " "):
        raise fail(f"{field_text!r} is not a valid input name")
    if name == OUTPUT_KEYWORD:
        if not dot:
            raise fail("'$output' needs a name: $output.<name>")
        if required or upload:
            raise fail("an output marker takes neither '!' nor '~'")
        if not _NAME_RE.fullmatch(field_text):
            raise fail(f"{field_text!r} is not a valid output name")
        return Marker(part, field_text, None, description=description, output=True)
    return Marker(
        part,
        name,
        field_text if dot else name,
        required=required,
        upload=upload,
        description=description,
    )


def parse_title(title: str, *, node_id: str = "", class_type: str | None = None) -> ParsedTitle:
    """Split a node title into display text and markers.

    Args:
        title: The ``_meta.title`` text.
        node_id: Used in error messages.
        class_type: Used in error messages.

    Raises:
        DSLError: A marker is malformed.
    """
    label: list[str] = []
    markers: list[Marker] = []
    for raw in title.split(","):
        part = raw.strip()
        if not part:
            continue
        if part.startswith("$"):
            markers.append(_parse_marker(part, node_id, title, class_type))
        else:
            label.append(part)
    return ParsedTitle(tuple(label), tuple(markers))


# --------------------------------------------------------------------------------------------
# Parsing a workflow
# --------------------------------------------------------------------------------------------


def _validated_nodes(workflow: Any) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(workflow, Mapping):
        raise WorkflowFormatError(
            f"an API-format workflow is a mapping of node id to node, got {type(workflow).__name__}"
        )
    if isinstance(workflow.get("nodes"), list):
        raise WorkflowFormatError(
            "this is a UI-format workflow (it has a 'nodes' list); convert it to API format "
            "first (ui_to_api) or export it with 'Export (API)'"
        )
    if not workflow:
        raise WorkflowFormatError("the workflow is empty (no nodes)")
    for node_id, node in workflow.items():
        if not isinstance(node_id, str):
            raise WorkflowFormatError(
                f"node id {node_id!r} is a {type(node_id).__name__}; "
                "API-format node ids are strings"
            )
        if not isinstance(node, Mapping):
            raise WorkflowFormatError(
                f"node {node_id!r} is a {type(node).__name__}, "
                "not an object with class_type and inputs"
            )
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            raise WorkflowFormatError(f"node {node_id!r} has no 'class_type' string")
        if not isinstance(node.get("inputs"), Mapping):
            raise WorkflowFormatError(f"node {node_id!r} ({class_type}) has no 'inputs' object")
    return workflow


def _title_of(node: Mapping[str, Any]) -> str | None:
    meta = node.get("_meta")
    if isinstance(meta, Mapping):
        title = meta.get("title")
        if isinstance(title, str):
            return title
    return None


def _declared_inputs(object_info: Mapping[str, Any] | None, class_type: str) -> dict[str, Any]:
    if not object_info:
        return {}
    info = object_info.get(class_type)
    if not isinstance(info, Mapping):
        return {}
    spec = info.get("input")
    declared: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        for section in ("required", "optional"):
            group = spec.get(section)
            if isinstance(group, Mapping):
                declared.update(group)
    return declared


def is_output_node(class_type: str, object_info: Mapping[str, Any] | None = None) -> bool:
    """Whether a class produces results: ``object_info``'s ``output_node`` when it knows the
    class, else membership of :data:`KNOWN_OUTPUT_CLASSES`."""
    if object_info:
        info = object_info.get(class_type)
        if isinstance(info, Mapping) and "output_node" in info:
            return bool(info["output_node"])
    return class_type in KNOWN_OUTPUT_CLASSES


def media_input_of(
    class_type: str, field_name: str, object_info: Mapping[str, Any] | None = None
) -> MediaLoader | None:
    """The media description of ``class_type.field_name`` if it takes an uploaded file.

    Known loaders (:data:`MEDIA_LOADERS`) first; with ``object_info``, any input whose options
    carry ``image_upload``/``video_upload``/``audio_upload`` (``image_folder`` gives the
    folder).
    """
    loader = MEDIA_LOADERS.get(class_type)
    if loader is not None and loader.field == field_name:
        return loader
    spec = _declared_inputs(object_info, class_type).get(field_name)
    if isinstance(spec, list | tuple) and len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1]
        for flag, kind in _UPLOAD_FLAGS:
            if options.get(flag) is True:
                folder = options.get("image_folder")
                return MediaLoader(
                    field_name, kind, folder if folder in {"input", "output"} else "input"
                )
    return None


def _unwrap(value: Any) -> Any:
    if isinstance(value, Mapping) and "__value__" in value:
        return value["__value__"]
    return value


def parse(
    workflow: Mapping[str, Any], *, object_info: Mapping[str, Any] | None = None
) -> Signature:
    """Read the parameters and outputs an API-format workflow declares in its titles.

    Args:
        workflow: The API-format workflow (node id → ``{"class_type", "inputs", "_meta"}``).
        object_info: ``GET /object_info`` of the target server, when available: it widens the
            inputs a marker may name to every declared input, detects output nodes of any class,
            and recognises upload inputs of any loader.

    Returns:
        The signature.

    Raises:
        WorkflowFormatError: The workflow is not API format (the message names the node).
        DSLError: A marker is malformed, names an input the node does not have, or two
            parameters set the same input.
    """
    nodes = _validated_nodes(workflow)
    targets: dict[str, list[ParamTarget]] = {}
    owners: dict[tuple[str, str], str] = {}
    outputs: list[OutputSpec] = []
    for node_id, node in nodes.items():
        class_type: str = node["class_type"]
        inputs: Mapping[str, Any] = node["inputs"]
        title = _title_of(node)
        parsed = parse_title(title, node_id=node_id, class_type=class_type) if title else None
        named_output = False
        if parsed is not None:
            label = ", ".join(parsed.label) or None
            for marker in parsed.markers:
                if marker.output:
                    outputs.append(OutputSpec(marker.name, node_id, class_type, True))
                    named_output = True
                    continue
                assert marker.field is not None  # noqa: S101 - parameter markers always have one
                _add_target(
                    targets,
                    owners,
                    marker=marker,
                    node_id=node_id,
                    class_type=class_type,
                    inputs=inputs,
                    title=title or "",
                    label=label,
                    object_info=object_info,
                )
        if not named_output and is_output_node(class_type, object_info):
            outputs.append(OutputSpec(node_id, node_id, class_type, False))
    params = {name: _make_param(name, found) for name, found in targets.items()}
    return Signature(MappingProxyType(params), tuple(outputs))


def _add_target(
    targets: dict[str, list[ParamTarget]],
    owners: dict[tuple[str, str], str],
    *,
    marker: Marker,
    node_id: str,
    class_type: str,
    inputs: Mapping[str, Any],
    title: str,
    label: str | None,
    object_info: Mapping[str, Any] | None,
) -> None:
    field_name = marker.field or marker.name
    declared = _declared_inputs(object_info, class_type)
    if field_name not in inputs and field_name not in declared:
        known = sorted(set(inputs) | set(declared))
        raise DSLError(
            f"{_where(node_id, class_type, title)}: marker {marker.text!r} names input "
            f"{field_name!r}, which the node does not have (its inputs: "
            f"{', '.join(known) or 'none'})",
            node_id=node_id,
            title=title,
        )
    owner = owners.get((node_id, field_name))
    if owner is not None and owner != marker.name:
        raise DSLError(
            f"{_where(node_id, class_type, title)}: input {field_name!r} is set by both "
            f"${owner} and ${marker.name}; use one parameter name",
            node_id=node_id,
            title=title,
        )
    owners[(node_id, field_name)] = marker.name
    raw = inputs.get(field_name)
    linked = isinstance(raw, list)
    default = None if linked else _unwrap(raw)
    loader = media_input_of(class_type, field_name, object_info)
    upload = marker.upload or loader is not None
    target = ParamTarget(
        node_id=node_id,
        field=field_name,
        class_type=class_type,
        default=default,
        linked=linked,
        required=marker.required,
        upload=upload,
        description=marker.description,
        media_kind=loader.kind if loader else None,
        media_folder=(loader.folder if loader else "input") if upload else None,
        label=label,
    )
    found = targets.setdefault(marker.name, [])
    if owner is None:
        found.append(target)
        return
    # The same marker repeated on one node (it is the latest of this node): merge the flags.
    for i in range(len(found) - 1, -1, -1):
        existing = found[i]
        if existing.node_id == node_id and existing.field == field_name:
            found[i] = ParamTarget(
                **{
                    **existing.__dict__,
                    "required": existing.required or target.required,
                    "upload": existing.upload or target.upload,
                    "description": existing.description or target.description,
                    "media_folder": existing.media_folder or target.media_folder,
                }
            )
            return


def _make_param(name: str, found: list[ParamTarget]) -> Param:
    return Param(
        name=name,
        targets=tuple(found),
        required=any(t.required for t in found),
        upload=any(t.upload for t in found),
        media_kind=next((t.media_kind for t in found if t.media_kind), None),
    )


# --------------------------------------------------------------------------------------------
# Applying parameters
# --------------------------------------------------------------------------------------------


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_problem(value: Any, path: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        where = f" at {path}" if path else ""
        return f"{value!r}{where} is not a finite number (JSON cannot carry NaN or infinity)"
    if value is None or isinstance(value, str | bool | int | float):
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} at {path or 'top level'} is not a string"
            problem = _json_problem(item, f"{path}.{key}")
            if problem:
                return problem
        return None
    where = f" at {path}" if path else ""
    return f"a {type(value).__name__}{where} cannot be sent as JSON"


def _wrap(value: Any) -> Any:
    """Literal lists go as ``{"__value__": [...]}``: the server reads bare lists as links."""
    if isinstance(value, list | tuple):
        return {"__value__": copy_json(list(value))}
    return copy_json(value)


def _known_text(signature: Signature) -> str:
    return ", ".join(signature.params) or "none (the workflow declares no parameters)"


def apply(
    workflow: Mapping[str, Any],
    signature: Signature,
    params: Mapping[str, Any] | None,
    *,
    allow_unknown: bool = False,
    randomize_seeds: bool = False,
    resolve_media: MediaResolver | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Build the prompt to submit: a deep copy of ``workflow`` with ``params`` written in.

    Values are written verbatim (no type coercion; the server coerces and validates), except
    that a list or tuple value is wrapped as ``{"__value__": [...]}`` because the server reads
    a bare list as a link. A value of ``None`` means "not given": the node keeps its own value.

    Unset optional parameters leave every target node's own value in place — each node's own,
    never another node's. When that value is a link, the link stays.

    Media parameters (``upload``): ``resolve_media(param, target, value)`` is called and its
    returned server-side name is written. It is called once per distinct upload folder of a
    parameter (normally once per parameter) and the name reused for its other targets. Without
    a resolver, a ``str`` value is taken as a name already on the server and written as is; any
    other value is a :class:`~witness.errors.ParamError`.

    Seeds: nothing is randomised unless ``randomize_seeds=True``. Then every literal integer
    input named ``seed`` or ``noise_seed`` that the caller did not set is replaced by a random
    value in ``[0, 2**32 - 1]`` (valid for every seed input in ComfyUI). Explicit values,
    including ``0``, are never replaced; linked seeds are left alone.

    Args:
        workflow: The API-format workflow the signature was parsed from (not modified).
        signature: ``parse(workflow)``.
        params: Parameter name → value.
        allow_unknown: Ignore (log at debug level) names the workflow does not declare instead
            of raising.
        randomize_seeds: See above.
        resolve_media: Uploads a media value and returns its server-side name.
        rng: Random source for seeds (default: ``random.SystemRandom()``).

    Returns:
        The new prompt (a fresh dict; ``workflow`` is untouched).

    Raises:
        UnknownParamError: A name is not a parameter of the workflow (lists the known ones).
        MissingParamError: Required parameters are missing (all of them named at once).
        ParamError: A value cannot be sent as JSON, or a media value needs a resolver.
        UploadError: ``resolve_media`` returned something that is not a non-empty string.
        InvalidArgumentError: ``params`` has non-string keys, or the signature does not belong
            to this workflow.
    """
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgumentError(
            "params",
            f"must be a mapping of parameter name to value (a dict), got "
            f"{type(params).__name__} {_short_repr(params)}",
        )
    given: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if not isinstance(key, str):
            raise InvalidArgumentError("params", f"parameter names are strings, got {key!r}")
        given[key] = value

    unknown = tuple(name for name in given if name not in signature.params)
    if unknown:
        if not allow_unknown:
            raise UnknownParamError(
                f"unknown parameter(s) {', '.join(unknown)}; this workflow's parameters: "
                f"{_known_text(signature)}",
                names=unknown,
                known=tuple(signature.params),
            )
        logger.debug("ignoring parameters the workflow does not declare: %s", ", ".join(unknown))
        for name in unknown:
            del given[name]

    missing = tuple(n for n, p in signature.params.items() if p.required and given.get(n) is None)
    if missing:
        as_none = [n for n in missing if n in given]
        extra = f" ({', '.join(as_none)} given as None)" if as_none else ""
        raise MissingParamError(
            f"missing required parameter(s) {', '.join(missing)}{extra}",
            names=missing,
            known=tuple(signature.params),
        )

    for name, value in given.items():
        # Values written verbatim must survive JSON; media values go through the uploader.
        if any(not t.upload for t in signature.params[name].targets):
            problem = _json_problem(value)
            if problem:
                raise ParamError(f"parameter {name!r}: {problem}", names=(name,))

    prompt: dict[str, Any] = copy_json(dict(workflow))
    explicit: set[tuple[str, str]] = set()
    for name, value in given.items():
        if value is None:
            continue
        param = signature.params[name]
        resolved: dict[str | None, str] = {}
        for target in param.targets:
            inputs = _target_inputs(prompt, target)
            written = value
            if target.upload:
                cache_key = target.media_folder
                if cache_key not in resolved:
                    resolved[cache_key] = _resolve(param, target, value, resolve_media)
                written = resolved[cache_key]
            inputs[target.field] = _wrap(written)
            explicit.add((target.node_id, target.field))

    if randomize_seeds:
        source = rng if rng is not None else random.SystemRandom()
        for node_id, node in prompt.items():
            node_inputs = node.get("inputs") if isinstance(node, dict) else None
            if not isinstance(node_inputs, dict):
                continue
            for key in sorted(SEED_INPUTS & node_inputs.keys()):
                current = node_inputs[key]
                if (node_id, key) in explicit or isinstance(current, bool):
                    continue
                if isinstance(current, int):
                    node_inputs[key] = source.randint(*_SEED_RANGE)
                    logger.debug("node %s: %s randomised", node_id, key)
    return prompt


def _target_inputs(prompt: dict[str, Any], target: ParamTarget) -> dict[str, Any]:
    node = prompt.get(target.node_id)
    if not isinstance(node, dict) or node.get("class_type") != target.class_type:
        raise InvalidArgumentError(
            "signature",
            f"it does not belong to this workflow (node {target.node_id} "
            f"({target.class_type}) is not in it)",
        )
    inputs = node.get("inputs")
    if not isinstance(inputs, dict):
        inputs = {}
        node["inputs"] = inputs
    return inputs


def _resolve(
    param: Param,
    target: ParamTarget,
    value: Any,
    resolve_media: MediaResolver | None,
) -> str:
    kind = f" ({target.media_kind})" if target.media_kind else ""
    if resolve_media is None:
        if isinstance(value, str):
            return value
        raise ParamError(
            f"parameter {param.name!r} is a media input{kind} of node {target.node_id} "
            f"({target.class_type}.{target.field}); a {type(value).__name__} value must be "
            "uploaded, but no uploader was given (pass the server-side file name as a str, "
            "or run the workflow through Witness, which uploads)",
            names=(param.name,),
        )
    name = resolve_media(param, target, value)
    if not isinstance(name, str) or not name:
        raise UploadError(
            f"the uploader returned {name!r} for parameter {param.name!r}; expected the "
            "server-side file name",
            param=param.name,
        )
    return name

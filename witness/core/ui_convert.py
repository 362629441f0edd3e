"""Convert a UI-format workflow (what the ComfyUI editor saves) into an API-format prompt.

The editor saves *UI format*: ``nodes`` with positional ``widgets_values``, a ``links`` table,
modes (muted, bypassed), virtual helper nodes and ``definitions.subgraphs``. ``POST /prompt``
takes *API format*: ``{node_id: {"class_type", "inputs"}}``. The official frontend converts one
into the other in ``graphToPrompt``; :func:`ui_to_api` reproduces that conversion without a
browser, from the node definitions of ``GET /object_info``:

* **Widgets.** ``widgets_values`` is positional over the node's widgets, which the frontend
  builds from the definition's ``input_order`` (required, then optional): one widget per
  ``INT``/``FLOAT``/``STRING``/``BOOLEAN``/``COMBO`` input (not ``forceInput``), plus widgets that
  are stored but never sent (the ``control_after_generate`` companion of seed inputs, upload
  buttons) and a few that the frontend's extensions add (the audio player of an audio upload, the
  3D viewer of ``Preview3D``/``SaveGLB``). Values that are lists are wrapped as
  ``{"__value__": [...]}`` so that they are not taken for links.
* **Links.** An input's link is followed to the node that really produces the value: through
  ``Reroute`` nodes, through *bypassed* nodes (mode 4: the input whose type matches the wanted
  output is passed through), into and out of subgraphs. A link that ends at a *muted* node (mode
  2) or nowhere is dropped, with the input's widget value if the link resolved to a node that is
  not sent. ``PrimitiveNode`` values are copied into the widgets they feed (also through
  reroutes and into subgraphs), ``Note``/``MarkdownNote`` are left out.
* **Subgraphs.** Every instance is flattened; inner nodes get the id
  ``"<instance id>:<inner id>"`` (nested: ``"a:b:c"``). Inputs of the instance that are not
  linked take the value of the instance's promoted widget. Inner nodes of a muted or bypassed
  instance are not sent.
* **Dynamic prompts.** Text widgets whose definition sets ``dynamicPrompts`` have ``//`` and
  ``/* */`` comments stripped and each ``{a|b|c}`` replaced by one option, exactly as the
  frontend's ``processDynamicPrompt`` does. The choice is reproducible: with ``seed=None`` the
  first option is taken, with an integer seed a seeded generator picks.
* **Text replacements.** The ``filename_prefix`` of the save nodes (``SaveImage``,
  ``SaveVideo``, ... :data:`~witness.core.text_replacements.SAVE_NODE_TYPES`, the frontend's
  ``Comfy.SaveImageExtraOutput`` extension) has its ``%Node.widget%`` and ``%date:...%`` tokens
  resolved, and so has the value of a ``PrimitiveNode`` whose property ``Run widget replace on
  values`` is set, exactly as the frontend's ``applyTextReplacements`` does (see
  :mod:`witness.core.text_replacements`). Nodes are searched over the whole graph, subgraphs
  included, by their ``Node name for S&R`` property (which the frontend gives every node of a
  server type except the save nodes, defaulting to the type), then by title (default: the
  type's display name). Widget values seen by the lookup are the saved ones, with the values of
  the ``PrimitiveNode`` linked to them applied. A ``filename_prefix`` that reaches an inner
  node as the value of a subgraph instance's promoted widget is sent as written, as the
  frontend sends it. The moment of date tokens is ``now`` (default: the local time at
  conversion; the frontend takes the browser's local time).

Where frontend 1.32.9 is arguably wrong, the converter does what the workflow means instead: a
``PrimitiveNode`` feeding a widget through a ``Reroute`` keeps its value, each instance of a
subgraph keeps its own widget values, and a ``PrimitiveNode`` feeding a subgraph input reaches the
inner widget.

Anything the converter cannot convert faithfully is a :class:`~witness.errors.UIConversionError`
naming the nodes and types at fault: node types the server does not know (custom nodes it lacks),
links that point at missing links or nodes, malformed node or link records, recursive subgraphs
and link cycles. Never a silently different graph.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from witness.core.text_replacements import (
    SAVE_NODE_TYPES,
    ReplacementNode,
    apply_text_replacements,
    js_truthy,
)
from witness.errors import UIConversionError

__all__ = ["is_ui_format", "process_dynamic_prompt", "ui_to_api"]

logger = logging.getLogger(__name__)

# LiteGraph node modes (LGraphEventMode).
MODE_ALWAYS: Final = 0
MODE_NEVER: Final = 2  # "muted"
MODE_BYPASS: Final = 4

# Node types that exist only in the frontend and are never sent.
_VIRTUAL_TYPES: Final = frozenset({"Reroute", "Note", "MarkdownNote", "PrimitiveNode"})
# Titles and widget names the frontend gives its own (virtual) node types.
_VIRTUAL_TITLES: Final = {
    "Reroute": "Reroute",
    "Note": "Note",
    "MarkdownNote": "Markdown Note",
    "PrimitiveNode": "Primitive",
}
_VIRTUAL_WIDGETS: Final[Mapping[str, tuple[str, ...]]] = {
    "PrimitiveNode": ("value", "control_after_generate", "control_filter_list"),
    "Note": ("text",),
    "MarkdownNote": ("text",),
}
_SR_PROPERTY: Final = "Node name for S&R"
_REPLACE_PROPERTY: Final = "Run widget replace on values"  # a PrimitiveNode property
_FILENAME_PREFIX: Final = "filename_prefix"
# Ids of the input and output pseudo-nodes inside a subgraph definition.
_SUBGRAPH_INPUT_NODE: Final = "-10"
_SUBGRAPH_OUTPUT_NODE: Final = "-20"
_WIDGET_TYPES: Final = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
# Input types for which a frontend extension creates a widget that is stored and sent.
_CUSTOM_WIDGET_TYPES: Final = frozenset({"AUDIO_RECORD", "WEBCAM", "LOAD_3D"})
# Upload flags: each adds a button widget after the input's widget; stored, never sent.
_UPLOAD_FLAGS: Final = (
    "image_upload",
    "video_upload",
    "audio_upload",
    "animated_image_upload",
    "file_upload",
)
# Widgets that frontend extensions add to particular node types: (name, value sent, stored in
# widgets_values). The audio player is added after the required inputs, the others at the end.
_AUDIO_PLAYER: Final = ("audioUI", "", True)
_REQUIRED_EXTENSION_WIDGETS: Final[Mapping[str, tuple[tuple[str, Any, bool], ...]]] = {
    name: (_AUDIO_PLAYER,)
    for name in ("LoadAudio", "SaveAudio", "SaveAudioMP3", "SaveAudioOpus", "PreviewAudio")
}
_EXTENSION_WIDGETS: Final[Mapping[str, tuple[tuple[str, Any, bool], ...]]] = {
    "Preview3D": (("image", "", True),),  # the 3D viewer
    "SaveGLB": (("image", "", True),),  # the 3D viewer
    "PreviewAny": (("preview", "", False),),  # read-only text display, not saved
}

Json = Any


# --------------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------------


def is_ui_format(obj: object) -> bool:
    """Tell whether ``obj`` looks like a UI-format workflow (as saved by the editor).

    A UI workflow is a mapping with a ``nodes`` list (and usually ``links``); an API prompt maps
    node ids to ``{"class_type", "inputs"}`` records and has no ``nodes`` list.

    Args:
        obj: Any decoded JSON value.

    Returns:
        True for a UI-format workflow, False for anything else (including API format).
    """
    if not isinstance(obj, Mapping):
        return False
    nodes = obj.get("nodes")
    if not isinstance(nodes, list):
        return False
    links = obj.get("links", [])
    return isinstance(links, list) and all(isinstance(n, Mapping) for n in nodes)


def process_dynamic_prompt(text: str, random_fn: Callable[[], float] | None = None) -> str:
    """Resolve a dynamic prompt the way the ComfyUI frontend does.

    Strips C-style ``//`` and ``/* */`` comments, then replaces every ``{a|b|c}`` group
    (groups nest; ``\\{``, ``\\}`` and ``\\|`` are literal) with one of its options.

    Args:
        text: The widget text.
        random_fn: Returns a float in [0, 1) for each choice; ``None`` always picks the first
            option.

    Returns:
        The resolved text.
    """
    rnd = random_fn if random_fn is not None else _first_option
    return _DynamicPromptParser(text, rnd).run()


def ui_to_api(
    workflow: Mapping[str, Json],
    object_info: Mapping[str, Json],
    *,
    seed: int | None = None,
    now: datetime | None = None,
) -> dict[str, dict[str, Json]]:
    """Convert a UI-format workflow into the API-format prompt the frontend would queue.

    A pure function: nothing is fetched, nothing in the arguments is modified.

    Args:
        workflow: The UI-format workflow (``nodes``, ``links``, optional
            ``definitions.subgraphs``).
        object_info: The server's node definitions, as returned by ``GET /object_info``.
        seed: Seed for resolving dynamic prompts (``{a|b}``); ``None`` picks the first option
            of every group, an integer makes a reproducible random choice.
        now: The moment ``%date:...%`` tokens format (its fields are used as local time);
            ``None`` takes ``datetime.now()`` once for the whole conversion.

    Returns:
        ``{node_id: {"inputs": {...}, "class_type": str, "_meta": {"title": str}}}``; inner
        nodes of subgraphs have ids ``"<instance id>:<inner id>"``.

    Raises:
        UIConversionError: The workflow is not UI format, uses node types ``object_info`` does
            not define, has a malformed or dangling link, a recursive subgraph or a link cycle,
            or a text replacement would fail in the frontend too (a ``filename_prefix`` or a
            replacing ``PrimitiveNode`` value that is not text).
    """
    if not is_ui_format(workflow):
        raise UIConversionError(
            "not a UI-format workflow: expected an object with a 'nodes' list and a 'links' list"
        )
    if not isinstance(object_info, Mapping):
        raise UIConversionError("object_info must be the mapping returned by GET /object_info")
    random_fn: Callable[[], float] | None = None
    if seed is not None:
        random_fn = random.Random(seed).random  # noqa: S311 - reproducible choice, not crypto
    moment = now if now is not None else datetime.now()
    return _Converter(workflow, object_info, random_fn, moment).convert()


# --------------------------------------------------------------------------------------------
# Dynamic prompts
# --------------------------------------------------------------------------------------------


def _first_option() -> float:
    return 0.0


def _strip_comments(text: str) -> str:
    """Remove ``/* ... */`` and ``// ...`` (to end of line), like the frontend's regex."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end != -1:
                i = end + 2
                continue
        if text.startswith("//", i):
            end = i + 2
            while end < n and text[end] not in "\n\r\u2028\u2029":
                end += 1
            i = end
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


class _DynamicPromptParser:
    """A port of the frontend's ``processDynamicPrompt`` (same escapes, nesting and picks)."""

    def __init__(self, text: str, random_fn: Callable[[], float]) -> None:
        self.text = _strip_comments(text)
        self.random_fn = random_fn
        self.i = 0

    def _escape(self) -> str:
        nxt = self.text[self.i] if self.i < len(self.text) else "undefined"
        self.i += 1
        return "\\" + nxt

    def _choice(self) -> str:
        options: list[str] = []
        current: list[str] = []
        depth = 0
        text = self.text
        while self.i < len(text):
            char = text[self.i]
            self.i += 1
            if char == "\\":
                current.append(self._escape())
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append("".join(current))
                current = []
                continue
            current.append(char)
        options.append("".join(current))
        index = int(self.random_fn() * len(options))
        index = min(max(index, 0), len(options) - 1)
        return _DynamicPromptParser(options[index], self.random_fn).run()

    def run(self) -> str:
        result: list[str] = []
        text = self.text
        while self.i < len(text):
            char = text[self.i]
            self.i += 1
            if char == "\\":
                result.append(self._escape())
            elif char == "{":
                result.append(self._choice())
            else:
                result.append(char)
        return _unescape_braces("".join(result))


def _unescape_braces(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "{}|":
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Widget layout of a node type
# --------------------------------------------------------------------------------------------

# Widget kinds: a node input's value; stored but never sent; stored (ignored) and sent with a
# fixed value; not stored, sent with a fixed value.
_VALUE, _HIDDEN, _FIXED, _UNSTORED = "value", "hidden", "fixed", "unstored"


@dataclass(frozen=True)
class _Widget:
    name: str
    kind: str
    spec: tuple[str, Mapping[str, Json]] | None = None  # (type, options) of a value widget
    fixed: Json = None  # the value a _FIXED widget sends


def _input_spec(raw: Json) -> tuple[str, Mapping[str, Json]]:
    """Normalize one ``object_info`` input spec to ``(type, options)``."""
    if isinstance(raw, str):
        return raw, {}
    if not isinstance(raw, Sequence) or not raw:
        return "", {}
    head = raw[0]
    opts = raw[1] if len(raw) > 1 and isinstance(raw[1], Mapping) else {}
    if isinstance(head, list):  # legacy combo: the list of options
        return "COMBO", {**opts, "options": head}
    return (head if isinstance(head, str) else str(head)), opts


def _widget_default(spec: tuple[str, Mapping[str, Json]]) -> Json:
    kind, opts = spec
    if "default" in opts:
        return opts["default"]
    if kind == "COMBO":
        options = opts.get("options")
        return options[0] if isinstance(options, list) and options else None
    if kind in ("INT", "FLOAT"):
        low = opts.get("min")
        return low if isinstance(low, (int, float)) and low > 0 else 0
    if kind == "BOOLEAN":
        return False
    if kind == "STRING":
        return ""
    return None


def _has_control_widget(name: str, spec: tuple[str, Mapping[str, Json]]) -> bool:
    kind, opts = spec
    flag = opts.get("control_after_generate")
    if flag is not None:  # an explicit False turns off the seed-name rule
        return bool(flag)
    return kind == "INT" and name in ("seed", "noise_seed")


@dataclass(frozen=True)
class _NodeType:
    name: str
    display_name: str
    inputs: Mapping[str, tuple[str, Mapping[str, Json]]]  # every non-hidden input, in order
    widgets: tuple[_Widget, ...]
    outputs: tuple[str, ...]

    @classmethod
    def from_definition(cls, name: str, definition: Mapping[str, Json]) -> _NodeType:
        raw_inputs = definition.get("input") or {}
        order = definition.get("input_order") or {}
        inputs: dict[str, tuple[str, Mapping[str, Json]]] = {}
        widgets: list[_Widget] = []
        for section in ("required", "optional"):
            specs = raw_inputs.get(section) or {}
            names = order.get(section) or list(specs)
            for input_name in names:
                if input_name not in specs:
                    continue
                spec = _input_spec(specs[input_name])
                inputs[input_name] = spec
                widgets.extend(_widgets_for_input(input_name, spec))
            if section == "required":
                widgets.extend(_extension_widgets(_REQUIRED_EXTENSION_WIDGETS.get(name, ())))
        widgets.extend(_extension_widgets(_EXTENSION_WIDGETS.get(name, ())))
        outputs = tuple(str(t) for t in definition.get("output") or ())
        display = definition.get("display_name") or name
        return cls(name, str(display), inputs, tuple(widgets), outputs)


def _extension_widgets(extras: Iterable[tuple[str, Any, bool]]) -> list[_Widget]:
    return [
        _Widget(name, _FIXED if stored else _UNSTORED, fixed=value)
        for name, value, stored in extras
    ]


def _widgets_for_input(name: str, spec: tuple[str, Mapping[str, Json]]) -> list[_Widget]:
    kind, opts = spec
    if kind in _CUSTOM_WIDGET_TYPES:
        return [_Widget(name, _VALUE, spec)]
    if kind not in _WIDGET_TYPES or opts.get("forceInput"):
        return []
    widgets = [_Widget(name, _VALUE, spec)]
    if _has_control_widget(name, spec):
        widgets.append(_Widget("control_after_generate", _HIDDEN))
    if any(opts.get(flag) for flag in _UPLOAD_FLAGS):
        widgets.append(_Widget("upload", _HIDDEN))
    return widgets


# --------------------------------------------------------------------------------------------
# The parsed UI graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    id: str
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: str


@dataclass(frozen=True)
class _Slot:
    name: str
    type: str
    link: str | None
    widget: str | None


@dataclass
class _Node:
    id: str
    type: str
    mode: int
    title: str | None
    saved_title: str | None  # the saved title as is ("" too); None when not saved
    inputs: list[_Slot]
    outputs: list[str]
    widgets_values: Json
    properties: Mapping[str, Json]
    order: float


@dataclass
class _Graph:
    """The root graph or one subgraph definition."""

    key: str  # "" for the root, else the subgraph id
    name: str
    nodes: dict[str, _Node]
    links: dict[str, _Link]
    sg_inputs: list[Mapping[str, Json]] = field(default_factory=list)
    sg_outputs: list[Mapping[str, Json]] = field(default_factory=list)


def _node_id(value: Json, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise UIConversionError(f"{where}: invalid node id {value!r}")
    return str(value)


def _slot_index(value: Json, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UIConversionError(f"{where}: invalid slot index {value!r}") from None
    return value


def _parse_link(raw: Json, where: str) -> _Link:
    if isinstance(raw, Mapping):
        fields = [raw.get(k) for k in ("id", "origin_id", "origin_slot", "target_id")]
        fields += [raw.get("target_slot"), raw.get("type")]
    elif isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) >= 5:
        fields = list(raw[:6]) + [None] * (6 - len(raw[:6]))
    else:
        raise UIConversionError(f"{where}: malformed link record {str(raw)[:80]!r}")
    link_id, origin_id, origin_slot, target_id, target_slot, link_type = fields
    if link_id is None or origin_id is None or target_id is None:
        raise UIConversionError(f"{where}: malformed link record {str(raw)[:80]!r}")
    here = f"{where}: link {link_id}"
    return _Link(
        id=str(link_id),
        origin_id=_node_id(origin_id, here),
        origin_slot=_slot_index(origin_slot, here),
        target_id=_node_id(target_id, here),
        target_slot=_slot_index(target_slot, here),
        type=str(link_type) if link_type is not None else "*",
    )


def _parse_node(raw: Json, where: str) -> _Node:
    if not isinstance(raw, Mapping):
        raise UIConversionError(f"{where}: a node record is not an object")
    node_id = _node_id(raw.get("id"), where)
    node_type = raw.get("type")
    if not isinstance(node_type, str) or not node_type:
        raise UIConversionError(
            f"{where}: node {node_id} has no type", node_ids=(node_id,), class_types=()
        )
    inputs: list[_Slot] = []
    for slot in raw.get("inputs") or ():
        if not isinstance(slot, Mapping) or not isinstance(slot.get("name"), str):
            raise UIConversionError(
                f"{where}: node {node_id} ({node_type}) has a malformed input slot",
                node_ids=(node_id,),
                class_types=(node_type,),
            )
        link = slot.get("link")
        widget = slot.get("widget")
        inputs.append(
            _Slot(
                name=slot["name"],
                type=str(slot.get("type", "*")),
                link=None if link is None else str(link),
                widget=str(widget.get("name")) if isinstance(widget, Mapping) else None,
            )
        )
    outputs = [
        str(o.get("type", "*")) if isinstance(o, Mapping) else "*" for o in raw.get("outputs") or ()
    ]
    mode = raw.get("mode", MODE_ALWAYS)
    order = raw.get("order", 0)
    title = raw.get("title")
    props = raw.get("properties")
    return _Node(
        id=node_id,
        type=node_type,
        mode=mode if isinstance(mode, int) and not isinstance(mode, bool) else MODE_ALWAYS,
        title=title if isinstance(title, str) and title else None,
        saved_title=title if isinstance(title, str) else None,
        inputs=inputs,
        outputs=outputs,
        widgets_values=raw.get("widgets_values"),
        properties=props if isinstance(props, Mapping) else {},
        order=order if isinstance(order, (int, float)) else 0,
    )


def _parse_graph(raw: Mapping[str, Json], key: str, name: str) -> _Graph:
    where = f"subgraph {name!r}" if key else "workflow"
    nodes: dict[str, _Node] = {}
    for raw_node in raw.get("nodes") or ():
        node = _parse_node(raw_node, where)
        if node.id in nodes:
            raise UIConversionError(
                f"{where}: node id {node.id} is used twice ({nodes[node.id].type}, {node.type})",
                node_ids=(node.id,),
                class_types=(nodes[node.id].type, node.type),
            )
        nodes[node.id] = node
    links: dict[str, _Link] = {}
    raw_links = raw.get("links")
    if raw_links is None:
        raw_links = []
    if not isinstance(raw_links, list):
        raise UIConversionError(f"{where}: 'links' is not a list")
    for raw_link in raw_links:
        if raw_link is None:  # LiteGraph leaves holes for deleted links
            continue
        link = _parse_link(raw_link, where)
        links[link.id] = link
    graph = _Graph(key=key, name=name, nodes=nodes, links=links)
    if key:
        graph.sg_inputs = [i for i in raw.get("inputs") or () if isinstance(i, Mapping)]
        graph.sg_outputs = [o for o in raw.get("outputs") or () if isinstance(o, Mapping)]
    return graph


def _collect_definitions(raw: Mapping[str, Json], into: dict[str, Mapping[str, Json]]) -> None:
    definitions = raw.get("definitions")
    if not isinstance(definitions, Mapping):
        return
    for sub in definitions.get("subgraphs") or ():
        if isinstance(sub, Mapping) and isinstance(sub.get("id"), str):
            into.setdefault(sub["id"], sub)
            _collect_definitions(sub, into)


# --------------------------------------------------------------------------------------------
# Execution view: one entry per node instance (subgraphs flattened)
# --------------------------------------------------------------------------------------------


@dataclass
class _Exec:
    """One node as executed: a node of a graph, at a path of subgraph instances."""

    id: str  # the execution id, e.g. "75:6"
    node: _Node
    graph: _Graph
    path: tuple[str, ...]  # ids of the enclosing subgraph instances
    parent: _Exec | None  # the enclosing subgraph instance
    subgraph: _Graph | None = None  # set when this node is a subgraph instance
    promoted: dict[str, Json] = field(default_factory=dict)  # subgraph input name -> value
    promoted_inner: dict[tuple[str, str], Json] = field(default_factory=dict)
    slots: list[_Slot] = field(default_factory=list)  # live inputs (saved + missing widgets)


@dataclass(frozen=True)
class _Resolved:
    origin_id: str | None = None
    origin_slot: int = -1
    has_value: bool = False
    value: Json = None
    from_primitive: bool = False  # the value is a PrimitiveNode's (not a promoted widget's)


_NO_VALUE: Final = object()


class _Converter:
    def __init__(
        self,
        workflow: Mapping[str, Json],
        object_info: Mapping[str, Json],
        random_fn: Callable[[], float] | None,
        now: datetime,
    ) -> None:
        self.object_info = object_info
        self.random_fn = random_fn
        self.now = now
        self.replacement_nodes: list[ReplacementNode] | None = None
        self.replacing: set[tuple[str, str]] = set()  # primitives whose replacement runs
        self.types: dict[str, _NodeType | None] = {}
        self.definitions: dict[str, Mapping[str, Json]] = {}
        _collect_definitions(workflow, self.definitions)
        self.subgraphs: dict[str, _Graph] = {}
        self.root = _parse_graph(workflow, "", "")
        self.execs: dict[str, _Exec] = {}
        self.widget_cache: dict[tuple[str, str], dict[str, Json]] = {}

    # ---- node types ---------------------------------------------------------------------

    def node_type(self, class_type: str) -> _NodeType | None:
        if class_type not in self.types:
            definition = self.object_info.get(class_type)
            self.types[class_type] = (
                _NodeType.from_definition(class_type, definition)
                if isinstance(definition, Mapping)
                else None
            )
        return self.types[class_type]

    def subgraph(self, sub_id: str) -> _Graph:
        graph = self.subgraphs.get(sub_id)
        if graph is None:
            raw = self.definitions[sub_id]
            name = raw.get("name")
            graph = _parse_graph(raw, sub_id, name if isinstance(name, str) else sub_id)
            self.subgraphs[sub_id] = graph
        return graph

    # ---- expansion ------------------------------------------------------------------------

    def convert(self) -> dict[str, dict[str, Json]]:
        self.check_types()
        self.expand(self.root, (), None, ())
        output: dict[str, dict[str, Json]] = {}
        for ex in sorted(self.execs.values(), key=_exec_sort_key):
            if ex.subgraph is not None or ex.node.type in _VIRTUAL_TYPES:
                continue
            if ex.node.mode in (MODE_NEVER, MODE_BYPASS):
                continue
            output[ex.id] = self.serialize(ex)
        # Inputs linked to nodes that are not sent (muted, or missing) are dropped.
        for entry in output.values():
            inputs = entry["inputs"]
            for name in [
                k
                for k, v in inputs.items()
                if isinstance(v, list) and len(v) == 2 and v[0] not in output
            ]:
                del inputs[name]
        return output

    def check_types(self) -> None:
        """Refuse node types the server lacks (only where they would take part)."""
        unknown: dict[str, str] = {}
        self._find_unknown(self.root, (), unknown, ())
        groups = {nid: t for nid, t in unknown.items() if t.startswith(("workflow>", "workflow/"))}
        if groups:
            listing = ", ".join(f"{nid} ({t})" for nid, t in groups.items())
            raise UIConversionError(
                f"the workflow uses legacy group nodes, which cannot be converted: {listing}; "
                "open it in the editor and convert the group nodes to subgraphs",
                node_ids=tuple(groups),
                class_types=tuple(sorted(set(groups.values()))),
            )
        if unknown:
            types = sorted(set(unknown.values()))
            ids = tuple(unknown)
            listing = ", ".join(f"{nid} ({t})" for nid, t in unknown.items())
            raise UIConversionError(
                f"the workflow uses node types this server does not have: {', '.join(types)} "
                f"(nodes {listing}); install the custom nodes that provide them",
                node_ids=ids,
                class_types=tuple(types),
            )

    def _find_unknown(
        self,
        graph: _Graph,
        path: tuple[str, ...],
        unknown: dict[str, str],
        stack: tuple[str, ...],
    ) -> None:
        for node in graph.nodes.values():
            if node.mode in (MODE_NEVER, MODE_BYPASS):
                continue
            exec_id = ":".join((*path, node.id))
            if node.type in self.definitions:
                if node.type in stack:
                    raise UIConversionError(
                        f"subgraph {node.type!r} contains itself (node {exec_id})",
                        node_ids=(exec_id,),
                        class_types=(node.type,),
                    )
                self._find_unknown(
                    self.subgraph(node.type), (*path, node.id), unknown, (*stack, node.type)
                )
            elif node.type in _VIRTUAL_TYPES:
                continue
            elif self.node_type(node.type) is None:
                unknown[exec_id] = node.type

    def expand(
        self,
        graph: _Graph,
        path: tuple[str, ...],
        parent: _Exec | None,
        stack: tuple[str, ...],
    ) -> None:
        for node in graph.nodes.values():
            exec_id = ":".join((*path, node.id))
            ex = _Exec(id=exec_id, node=node, graph=graph, path=path, parent=parent)
            ex.slots = self.live_slots(node)
            self.execs[exec_id] = ex
            if node.type in self.definitions:
                if node.type in stack:
                    raise UIConversionError(
                        f"subgraph {node.type!r} contains itself (node {exec_id})",
                        node_ids=(exec_id,),
                        class_types=(node.type,),
                    )
                ex.subgraph = self.subgraph(node.type)
                self.promote_widgets(ex)
                if node.mode not in (MODE_NEVER, MODE_BYPASS):
                    self.expand(ex.subgraph, (*path, node.id), ex, (*stack, node.type))

    def live_slots(self, node: _Node) -> list[_Slot]:
        """The node's inputs as the frontend has them: saved slots, then unsaved widget inputs.

        Saved workflows drop the sockets of widget inputs that are not linked; the frontend
        recreates them after the saved ones. Their order matters for bypass matching.
        """
        slots = list(node.inputs)
        node_type = self.node_type(node.type)
        if node_type is None:
            return slots
        present = {s.name for s in slots}
        for name, spec in node_type.inputs.items():
            if name not in present and spec[0] in _WIDGET_TYPES | _CUSTOM_WIDGET_TYPES:
                slots.append(_Slot(name=name, type=spec[0], link=None, widget=name))
        return slots

    # ---- widgets --------------------------------------------------------------------------

    def widget_values(self, ex: _Exec) -> dict[str, Json]:
        """The values of the node's widgets that are sent, by input name (per definition)."""
        key = (ex.graph.key, ex.node.id)
        cached = self.widget_cache.get(key)
        if cached is not None:
            return cached
        node_type = self.node_type(ex.node.type)
        values: dict[str, Json] = {}
        if node_type is not None:
            stored = ex.node.widgets_values
            index = -1
            for widget in node_type.widgets:
                if widget.kind != _UNSTORED:
                    index += 1
                if widget.kind == _HIDDEN:
                    continue
                if widget.kind in (_FIXED, _UNSTORED):
                    values[widget.name] = widget.fixed
                    continue
                value = _stored_value(stored, index, widget.name)
                if value is _NO_VALUE:
                    value = _widget_default(widget.spec) if widget.spec is not None else None
                    if value is None:
                        continue
                values[widget.name] = value
        self.widget_cache[key] = values
        return values

    def promote_widgets(self, ex: _Exec) -> None:
        """Give a subgraph instance the values of its promoted widgets.

        The frontend promotes one widget per subgraph input that is linked (inside) to a
        widget input; the instance's ``widgets_values`` hold their values in order (or in the
        order of ``properties.proxyWidgets`` when it is set).
        """
        sub = ex.subgraph
        if sub is None:
            return
        by_input: dict[str, Json] = {}
        order: list[tuple[str, str]] = []  # ("-1", input name) or (inner node id, widget)
        for sg_input in sub.sg_inputs:
            name = sg_input.get("name")
            if not isinstance(name, str):
                continue
            default = self.inner_widget_default(sub, sg_input)
            if default is not _NO_VALUE:
                by_input[name] = default
                order.append(("-1", name))
        proxies = ex.node.properties.get("proxyWidgets")
        if isinstance(proxies, list) and proxies:
            listed: list[tuple[str, str]] = []
            for entry in proxies:
                if (
                    isinstance(entry, Sequence)
                    and not isinstance(entry, str)
                    and len(entry) == 2
                    and all(isinstance(x, (str, int)) for x in entry)
                ):
                    item = (str(entry[0]), str(entry[1]))
                    if item[0] == "-1" and item[1] not in by_input:
                        continue
                    if item not in listed:
                        listed.append(item)
            order = listed + [item for item in order if item not in listed]
        stored = ex.node.widgets_values
        for index, (owner, name) in enumerate(order):
            value = _stored_value(stored, index, name)
            if owner == "-1":
                if value is not _NO_VALUE:
                    by_input[name] = value
            elif value is not _NO_VALUE:
                ex.promoted_inner[(owner, name)] = value
        ex.promoted = by_input

    def inner_widget_default(self, sub: _Graph, sg_input: Mapping[str, Json]) -> Json:
        """The current value of the first inner widget a subgraph input feeds (or no value)."""
        for link_id in sg_input.get("linkIds") or ():
            link = sub.links.get(str(link_id))
            if link is None:
                continue
            target = sub.nodes.get(link.target_id)
            if target is None:
                continue
            slot = _slot_for_link(target, link)
            if slot is None:
                continue
            if target.type in self.definitions:
                inner = self.subgraph(target.type)
                nested = next((i for i in inner.sg_inputs if i.get("name") == slot.name), None)
                if nested is not None:
                    value = self.inner_widget_default(inner, nested)
                    if value is not _NO_VALUE:
                        return value
                continue
            node_type = self.node_type(target.type)
            if node_type is None:
                continue
            spec = node_type.inputs.get(slot.widget or slot.name)
            if spec is None or spec[0] not in _WIDGET_TYPES | _CUSTOM_WIDGET_TYPES:
                continue
            if spec[1].get("forceInput"):
                continue
            values = self.widget_values(_Exec(id="", node=target, graph=sub, path=(), parent=None))
            if spec is not None and (slot.widget or slot.name) in values:
                return values[slot.widget or slot.name]
        return _NO_VALUE

    # ---- link resolution -----------------------------------------------------------------

    def serialize(self, ex: _Exec) -> dict[str, Json]:
        node_type = self.node_type(ex.node.type)
        if node_type is None:  # check_types() refused these before
            raise self.error(ex, "unknown node type")
        inputs: dict[str, Json] = {}
        dynamic = {n for n, s in node_type.inputs.items() if s[1].get("dynamicPrompts")}
        replaced = _FILENAME_PREFIX if ex.node.type in SAVE_NODE_TYPES else None
        for name, stored in self.widget_values(ex).items():
            override = self.inner_override(ex, name)
            value = stored if override is _NO_VALUE else override
            if name == replaced:
                value = self.replace_text(ex, name, value)
            inputs[name] = self.final_value(value, name in dynamic)
        for index, slot in enumerate(ex.slots):
            if slot.link is None:
                continue
            resolved = self.resolve_input(ex, index, set(), None)
            if resolved is None:
                continue
            if resolved.has_value:
                value = resolved.value
                if slot.name == replaced and resolved.from_primitive:
                    value = self.replace_text(ex, slot.name, value)
                inputs[slot.name] = self.final_value(value, slot.name in dynamic)
                continue
            inputs[slot.name] = [resolved.origin_id, resolved.origin_slot]
        title = ex.node.title or node_type.display_name
        return {"inputs": inputs, "class_type": ex.node.type, "_meta": {"title": title}}

    def inner_override(self, ex: _Exec, widget_name: str) -> Json:
        """A value set on an enclosing instance's proxy widget for this inner widget."""
        parent = ex.parent
        if parent is None or not parent.promoted_inner:
            return _NO_VALUE
        return parent.promoted_inner.get((ex.node.id, widget_name), _NO_VALUE)

    def final_value(self, value: Json, dynamic: bool) -> Json:
        if dynamic and isinstance(value, str):
            value = process_dynamic_prompt(value, self.random_fn)
        if isinstance(value, list):
            return {"__value__": value}
        return value

    def resolve_input(
        self, ex: _Exec, slot: int, visited: set[tuple[str, str, int]], want: str | None
    ) -> _Resolved | None:
        key = (ex.id, "I", slot)
        if key in visited:
            raise self.error(ex, f"a link cycle passes through input {slot}")
        visited.add(key)
        if slot < 0 or slot >= len(ex.slots):
            raise self.error(ex, f"has no input slot {slot}")
        inp = ex.slots[slot]
        if inp.link is None:
            return None
        link = ex.graph.links.get(inp.link)
        if link is None:
            raise self.error(ex, f"input {inp.name!r} refers to link {inp.link}, which is missing")
        if link.target_id != ex.node.id:
            raise self.error(
                ex,
                f"input {inp.name!r} refers to link {link.id}, which ends at node "
                f"{link.target_id} instead",
            )
        if link.origin_id == _SUBGRAPH_INPUT_NODE and ex.parent is not None:
            return self.resolve_subgraph_input(ex.parent, link.origin_slot, visited)
        origin = ex.graph.nodes.get(link.origin_id)
        if origin is None:
            raise self.error(
                ex,
                f"input {inp.name!r} is linked (link {link.id}) to node {link.origin_id}, "
                "which does not exist",
            )
        origin_ex = self.execs[":".join((*ex.path, origin.id))]
        return self.resolve_output(origin_ex, link.origin_slot, want or inp.type, visited)

    def resolve_subgraph_input(
        self, instance: _Exec, sg_slot: int, visited: set[tuple[str, str, int]]
    ) -> _Resolved | None:
        """Resolve what feeds input ``sg_slot`` of a subgraph instance."""
        sg_inputs = instance.subgraph.sg_inputs if instance.subgraph is not None else []
        if sg_slot < 0 or sg_slot >= len(sg_inputs):
            raise self.error(instance, f"subgraph has no input {sg_slot}")
        name = sg_inputs[sg_slot].get("name")
        index = next((i for i, s in enumerate(instance.slots) if s.name == name), None)
        if index is not None and instance.slots[index].link is not None:
            return self.resolve_input(instance, index, visited, None)
        if isinstance(name, str) and name in instance.promoted:
            return _Resolved(has_value=True, value=instance.promoted[name])
        return None

    def resolve_output(
        self, ex: _Exec, slot: int, want: str, visited: set[tuple[str, str, int]]
    ) -> _Resolved | None:
        key = (ex.id, "O", slot)
        if key in visited:
            raise self.error(ex, f"a link cycle passes through output {slot}")
        visited.add(key)
        node = ex.node
        if node.mode == MODE_BYPASS:
            index = self.bypass_slot(ex, slot, want)
            if index < 0:
                logger.debug("bypassed node %s: no input matches type %s", ex.id, want)
                return None
            return self.resolve_input(ex, index, visited, None)
        if ex.subgraph is not None:
            if node.mode == MODE_NEVER:
                return _Resolved(origin_id=ex.id, origin_slot=slot)
            return self.resolve_subgraph_output(ex, slot, want, visited)
        if node.type == "PrimitiveNode":
            return self.primitive_value(ex)
        if node.type in _VIRTUAL_TYPES:
            if slot < len(ex.slots):
                return self.resolve_input(ex, slot, visited, want)
            return None
        return _Resolved(origin_id=ex.id, origin_slot=slot)

    def resolve_subgraph_output(
        self, ex: _Exec, slot: int, want: str, visited: set[tuple[str, str, int]]
    ) -> _Resolved | None:
        sub = ex.subgraph
        if sub is None or slot < 0 or slot >= len(sub.sg_outputs):
            raise self.error(ex, f"subgraph has no output {slot}")
        for link_id in sub.sg_outputs[slot].get("linkIds") or ():
            link = sub.links.get(str(link_id))
            if link is None:
                raise self.error(ex, f"subgraph output {slot} refers to missing link {link_id}")
            if link.origin_id == _SUBGRAPH_INPUT_NODE:
                return self.resolve_subgraph_input(ex, link.origin_slot, visited)
            inner = self.execs.get(":".join((*ex.path, ex.node.id, link.origin_id)))
            if inner is None:
                raise self.error(
                    ex,
                    f"subgraph output {slot} is linked (link {link.id}) to inner node "
                    f"{link.origin_id}, which does not exist",
                )
            return self.resolve_output(inner, link.origin_slot, want, visited)
        return None

    def primitive_value(self, ex: _Exec) -> _Resolved | None:
        value = self.primitive_sent_value(ex.graph, ex.node)
        if value is _NO_VALUE:
            return None
        return _Resolved(has_value=True, value=value, from_primitive=True)

    def primitive_sent_value(self, graph: _Graph, node: _Node) -> Json:
        """What a ``PrimitiveNode`` copies into its widgets (``PrimitiveNode.applyToGraph``).

        With the property ``Run widget replace on values`` set, a truthy value goes through
        ``applyTextReplacements`` first (inside its own replacement the lookup sees the
        primitive's saved value).
        """
        value = _stored_value(node.widgets_values, 0, "value")
        key = (graph.key, node.id)
        if (
            value is _NO_VALUE
            or not js_truthy(value)
            or not js_truthy(node.properties.get(_REPLACE_PROPERTY))
            or key in self.replacing
        ):
            return value
        if not isinstance(value, str):
            raise UIConversionError(
                f"node {node.id} (PrimitiveNode): {_REPLACE_PROPERTY!r} is set but its value "
                f"{value!r} is not text (the frontend fails to queue this workflow too)",
                node_ids=(node.id,),
                class_types=(node.type,),
            )
        self.replacing.add(key)
        try:
            return apply_text_replacements(value, self.all_nodes(), self.now)
        finally:
            self.replacing.discard(key)

    # ---- text replacements ----------------------------------------------------------------

    def replace_text(self, ex: _Exec, name: str, value: Json) -> str:
        """Resolve the ``%...%`` tokens of a save node's ``filename_prefix``."""
        if not isinstance(value, str):
            raise self.error(
                ex,
                f"{name} is {value!r}, not text (the frontend fails to queue this workflow too)",
            )
        return apply_text_replacements(value, self.all_nodes(), self.now)

    def all_nodes(self) -> list[ReplacementNode]:
        """Every node in the frontend's ``collectAllNodes`` order (subgraph contents first)."""
        if self.replacement_nodes is None:
            nodes: list[ReplacementNode] = []
            self._collect_nodes(self.root, nodes, ())
            self.replacement_nodes = nodes
        return self.replacement_nodes

    def _collect_nodes(
        self, graph: _Graph, into: list[ReplacementNode], stack: tuple[str, ...]
    ) -> None:
        for node in graph.nodes.values():
            if node.type in self.definitions:
                if node.type in stack:
                    raise UIConversionError(
                        f"subgraph {node.type!r} contains itself (node {node.id})",
                        node_ids=(node.id,),
                        class_types=(node.type,),
                    )
                self._collect_nodes(self.subgraph(node.type), into, (*stack, node.type))
            into.append(self.replacement_node(graph, node))

    def replacement_node(self, graph: _Graph, node: _Node) -> ReplacementNode:
        node_type = self.node_type(node.type)
        if _SR_PROPERTY in node.properties:
            search_name = node.properties[_SR_PROPERTY]
        elif node_type is not None and node.type not in SAVE_NODE_TYPES:
            search_name = node.type  # added by Comfy.SaveImageExtraOutput at node creation
        else:
            search_name = None
        if node.saved_title is not None:
            title = node.saved_title
        elif node.type in self.definitions:
            title = self.subgraph(node.type).name
        elif node_type is not None:
            title = node_type.display_name
        else:
            title = _VIRTUAL_TITLES.get(node.type, node.type)
        return ReplacementNode(search_name, title, lambda: self.lookup_widgets(graph, node))

    def lookup_widgets(self, graph: _Graph, node: _Node) -> dict[str, Json]:
        """A node's widget values by name as the lookup sees them (after ``applyToGraph``)."""
        values: dict[str, Json] = {}
        stored = node.widgets_values
        node_type = self.node_type(node.type)
        if node.type in self.definitions:
            instance = _Exec(id=node.id, node=node, graph=graph, path=(), parent=None)
            instance.subgraph = self.subgraph(node.type)
            self.promote_widgets(instance)
            return dict(instance.promoted)
        if node_type is None:
            for index, name in enumerate(_VIRTUAL_WIDGETS.get(node.type, ())):
                value = _stored_value(stored, index, name)
                if value is not _NO_VALUE:
                    values[name] = value
            if node.type == "PrimitiveNode" and "value" in values:
                values["value"] = self.primitive_sent_value(graph, node)
            return values
        index = -1
        for widget in node_type.widgets:
            if widget.kind != _UNSTORED:
                index += 1
            value = (
                _NO_VALUE if widget.kind == _UNSTORED else _stored_value(stored, index, widget.name)
            )
            if value is _NO_VALUE:
                if widget.spec is not None:
                    value = _widget_default(widget.spec)
                elif widget.kind in (_FIXED, _UNSTORED):
                    value = widget.fixed
                elif widget.name == "control_after_generate":
                    value = "randomize"  # the frontend's default control mode
                else:
                    continue
            values.setdefault(widget.name, value)
        for slot in node.inputs:
            link = graph.links.get(slot.link) if slot.link is not None else None
            origin = graph.nodes.get(link.origin_id) if link is not None else None
            if origin is None or origin.type != "PrimitiveNode" or slot.widget not in values:
                continue
            value = self.primitive_sent_value(graph, origin)
            if value is not _NO_VALUE:
                values[slot.widget] = value
        return values

    def bypass_slot(self, ex: _Exec, slot: int, want: str) -> int:
        """The input a bypassed node passes through to output ``slot`` (frontend rules)."""
        inputs = ex.slots
        outputs = ex.node.outputs
        if not outputs:
            node_type = self.node_type(ex.node.type)
            outputs = list(node_type.outputs) if node_type is not None else []
        if slot >= len(outputs):
            return -1
        output_type = outputs[slot]
        if want in ("*", ""):
            if not inputs:
                return -1
            return slot if len(inputs) > slot else 0
        if slot < len(inputs):
            opposite = inputs[slot].type
            if _valid_connection(opposite, output_type) and _valid_connection(opposite, want):
                return slot
        for index, inp in enumerate(inputs):
            if inp.type == want:
                return index
        for index, inp in enumerate(inputs):
            if _valid_connection(inp.type, output_type) and _valid_connection(inp.type, want):
                return index
        return -1

    def error(self, ex: _Exec, message: str) -> UIConversionError:
        return UIConversionError(
            f"node {ex.id} ({ex.node.type}): {message}",
            node_ids=(ex.id,),
            class_types=(ex.node.type,),
        )


def _exec_sort_key(ex: _Exec) -> tuple[float, ...]:
    return (ex.node.order,)


def _slot_for_link(node: _Node, link: _Link) -> _Slot | None:
    for slot in node.inputs:
        if slot.link == link.id:
            return slot
    if 0 <= link.target_slot < len(node.inputs):
        return node.inputs[link.target_slot]
    return None


def _stored_value(stored: Json, index: int, name: str) -> Json:
    if isinstance(stored, list):
        return stored[index] if index < len(stored) else _NO_VALUE
    if isinstance(stored, Mapping):
        return stored.get(name, _NO_VALUE)
    return _NO_VALUE


def _valid_connection(a: Json, b: Json) -> bool:
    """LiteGraph's ``isValidConnection`` for two slot types."""
    type_a = 0 if a in ("", "*") else a
    type_b = 0 if b in ("", "*") else b
    if not type_a or not type_b or type_a == type_b:
        return True
    left = str(type_a).lower()
    right = str(type_b).lower()
    if "," not in left and "," not in right:
        return left == right
    return any(_valid_connection(x, y) for x in left.split(",") for y in right.split(","))

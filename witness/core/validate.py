"""Validate an API-format prompt against the server's ``/object_info`` before it is sent.

:func:`validate_prompt` mirrors ComfyUI's own ``validate_prompt``/``validate_inputs``
(``execution.py``) so that a prompt the server would reject is flagged, with every problem at
once, before anything is queued:

* every node must name a known ``class_type`` (the server checks *all* nodes for this);
* at least one output node must exist (``prompt_no_outputs``);
* starting from the output nodes and following links the way the server does, each reached node
  is checked: required inputs present, links well formed (``[node_id, output_index]``) and
  pointing at an existing node and output slot, link types compatible (``*`` matches anything,
  ``"A,B"`` matches when the sets overlap), literal values convertible the way the server
  converts them (``"64"`` is a valid INT, ``None`` is not; ``{"__value__": [...]}`` is a literal
  list), numbers inside ``min``/``max`` and combo values among the choices (with close matches
  suggested), and no dependency cycles.

Nodes that feed no output are not checked, exactly like on the server: their problems would not
stop the prompt. What cannot be reproduced offline is skipped: a node's own
``VALIDATE_INPUTS``/``validate_inputs`` (see :data:`CUSTOM_VALIDATION`; the server skips
``min``/``max``/choice checks for inputs such a function takes, and link type checks when it
takes ``input_types``).

Deliberate differences from the 0.3.75 server, all towards catching real mistakes:

* V3 combo inputs (``["COMBO", {"options": [...]}]``) are checked against their options, as
  newer ComfyUI versions do; 0.3.75 accepts any value there and the node fails when it runs.
* The server only reports a cycle as an empty ``prompt_outputs_failed_validation``; here every
  node of the cycle gets a ``dependency_cycle`` problem naming the cycle (as ComfyUI >= 0.20).
* A link to a missing node in an input the node does not declare passes the server's
  validation, but its executor follows it and the prompt worker thread dies (no prompt runs
  until a restart); it is flagged as ``link_to_missing_node``.

Build a :class:`NodeCatalog` once per ``/object_info`` and pass it instead of the raw mapping
when validating many prompts: per-class input tables are then computed once.
"""

from __future__ import annotations

import difflib
import logging
import math
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from witness.errors import WorkflowValidationError

__all__ = [
    "CUSTOM_VALIDATION",
    "InputSpec",
    "NodeCatalog",
    "NodeSpec",
    "Problem",
    "format_problems",
    "raise_for_problems",
    "types_compatible",
    "validate_prompt",
]

logger = logging.getLogger(__name__)

#: Nodes of ComfyUI 0.3.75 with their own input validation function, by class, as the argument
#: names of that function (the server's ``validate_function_inputs``). For these inputs the
#: server skips ``min``/``max``/choice checks and runs the function instead (e.g. ``LoadImage``
#: accepts ``"sub/x.png"`` or ``"x.png [output]"``, which are not in its list); ``"input_types"``
#: turns off link type checks for the whole node and ``"**"`` stands for ``**kwargs`` (every
#: input). Pass ``custom_validation=`` to :class:`NodeCatalog` to add custom nodes.
CUSTOM_VALIDATION: Final[Mapping[str, tuple[str, ...]]] = {
    "LoadImage": ("image",),
    "LoadImageMask": ("image",),
    "LoadImageOutput": ("image",),
    "LoadLatent": ("latent",),
    "LoadAudio": ("audio",),
    "LoadVideo": ("file",),
    "FluxProUltraImageNode": ("aspect_ratio",),
    "KlingCameraControls": (
        "horizontal_movement",
        "vertical_movement",
        "pan",
        "tilt",
        "roll",
        "zoom",
    ),
    "TripoConversionNode": ("input_types",),
}

_CONVERTERS: Final[Mapping[str, Any]] = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
_ANY: Final = "*"


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a prompt, found before it was sent.

    Attributes:
        node_id: The node at fault (``None`` for problems of the whole prompt).
        class_type: Its class, when it has one.
        title: Its ``_meta.title``, when it has one.
        input_name: The input at fault, when the problem is about one input.
        kind: A short code; ComfyUI's own error type where one exists: ``missing_node_type``,
            ``invalid_node``, ``prompt_no_outputs``, ``required_input_missing``,
            ``bad_linked_input``, ``link_to_missing_node``, ``link_slot_out_of_range``,
            ``return_type_mismatch``, ``invalid_input_type``, ``value_smaller_than_min``,
            ``value_bigger_than_max``, ``value_not_in_list``, ``dependency_cycle``,
            ``invalid_prompt``.
        expected: What the input accepts, in words (``"INT, min 1, max 16384"``,
            ``"IMAGE"``, ``"one of 42 choices"``).
        given: What the prompt holds (the literal value, or the linked output's type).
        message: A one-line explanation.
        suggestions: Close valid alternatives (combo choices, class names, input names,
            output slots), best first.
        related_nodes: Other nodes involved (the whole cycle for ``dependency_cycle``).
        param: The workflow's DSL parameter that sets this input, when known (see the
            ``params`` argument of :func:`validate_prompt`).
    """

    node_id: str | None
    class_type: str | None
    title: str | None = None
    input_name: str | None = None
    kind: str
    expected: str | None = None
    given: Any = field(default=None, hash=False)
    message: str
    suggestions: tuple[str, ...] = ()
    related_nodes: tuple[str, ...] = ()
    param: str | None = None

    @property
    def where(self) -> str:
        """``node 4 (KSampler "Sampler"), input 'steps'`` or ``prompt``."""
        if self.node_id is None:
            return "prompt"
        text = f"node {self.node_id}"
        if self.class_type:
            text += f" ({self.class_type}"
            text += f' "{self.title}")' if self.title and self.title != self.class_type else ")"
        elif self.title:
            text += f' "{self.title}"'
        if self.input_name is not None:
            text += f", input {self.input_name!r}"
        if self.param is not None:
            text += f" (param {self.param!r})"
        return text

    def __str__(self) -> str:
        text = f"{self.where}: {self.message} [{self.kind}]"
        if self.suggestions:
            text += f"; did you mean {_render_suggestions(self.kind, self.suggestions)}?"
        return text


_LINK_KINDS: Final = frozenset(
    {"return_type_mismatch", "link_slot_out_of_range", "bad_linked_input"}
)


def _render_suggestions(kind: str, suggestions: Sequence[str]) -> str:
    shown = suggestions if kind in _LINK_KINDS else [repr(s) for s in suggestions]
    return " or ".join(shown)


def format_problems(problems: Sequence[Problem], prompt: Mapping[str, Any] | None = None) -> str:
    """One readable text listing every problem (what :func:`raise_for_problems` raises with)."""
    count = len(problems)
    head = f"the prompt has {count} problem{'s' if count != 1 else ''}"
    if isinstance(prompt, Mapping):
        head += f" ({len(prompt)} node{'s' if len(prompt) != 1 else ''})"
    head += ":"
    return "\n".join([head, *(f"  - {p}" for p in problems)])


def raise_for_problems(
    problems: Sequence[Problem], prompt: Mapping[str, Any] | None = None
) -> None:
    """Raise :class:`~witness.errors.WorkflowValidationError` if there is any problem.

    Args:
        problems: What :func:`validate_prompt` returned.
        prompt: The validated prompt (only used to make the message more informative).

    Raises:
        WorkflowValidationError: With one message listing every problem and the problems
            themselves in ``problems``.
    """
    if problems:
        raise WorkflowValidationError(format_problems(problems, prompt), problems=tuple(problems))


# --------------------------------------------------------------------------------------------
# The catalog: per-class input tables built from /object_info
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """One required or optional input of a node class, ready for checking.

    Attributes:
        name: Input name.
        required: ``True`` for required inputs.
        type: The declared type: a string (``"INT"``, ``"IMAGE"``, ``"A,B"``, ``"*"``,
            ``"COMBO"``) or, for legacy combos, the tuple of choices.
        options: The choices of a combo (legacy list or V3 ``options``), else ``None``.
        minimum: ``min`` from the spec, if any.
        maximum: ``max`` from the spec, if any.
        multiselect: A V3 multi-select combo (a list of choices is the value).
        custom_validated: The node validates this input itself (value checks are skipped).
        config: The raw spec from ``/object_info``.
    """

    name: str
    required: bool
    type: str | tuple[Any, ...]
    options: tuple[Any, ...] | None = None
    minimum: Any = None
    maximum: Any = None
    multiselect: bool = False
    custom_validated: bool = False
    config: Any = field(default=None, compare=False, hash=False, repr=False)
    _option_set: frozenset[Any] | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def is_combo(self) -> bool:
        """Whether the input takes one of a list of choices."""
        return self.options is not None

    def describe(self) -> str:
        """The accepted values in words, e.g. ``INT, min 1, max 16384``."""
        if self.options is not None:
            return _describe_options(self.options)
        text = self.type if isinstance(self.type, str) else "COMBO"
        if self.minimum is not None:
            text += f", min {self.minimum}"
        if self.maximum is not None:
            text += f", max {self.maximum}"
        return text

    def has_option(self, value: Any) -> bool:
        """``value in options`` with the server's (Python) equality."""
        if self.options is None:
            return True
        if self._option_set is not None:
            try:
                return value in self._option_set
            except TypeError:  # unhashable value: compare one by one, like ``in list``
                pass
        return value in self.options


@dataclass(frozen=True)
class NodeSpec:
    """A node class as the validator sees it.

    Attributes:
        class_type: The class name.
        inputs: Required then optional inputs, in ``input_order``.
        hidden: Names of hidden inputs (never validated).
        outputs: Output types (a string, or a tuple of choices for combo outputs).
        output_node: Whether the class is an output node.
        check_link_types: ``False`` when the node checks linked types itself.
    """

    class_type: str
    inputs: Mapping[str, InputSpec]
    hidden: frozenset[str]
    outputs: tuple[str | tuple[Any, ...], ...]
    output_node: bool
    check_link_types: bool = True


class NodeCatalog:
    """Node classes from one ``/object_info`` answer, with input tables built once per class.

    Build one per ``/object_info`` fetch and reuse it for every prompt; tables are built
    lazily, on first use of a class, and are safe to share between threads.

    Args:
        object_info: ``GET /object_info`` as decoded JSON (``{class_type: NodeInfo}``).
        custom_validation: Argument names of nodes' own validation functions, by class (see
            :data:`CUSTOM_VALIDATION`, the default).
    """

    def __init__(
        self,
        object_info: Mapping[str, Any],
        *,
        custom_validation: Mapping[str, Collection[str]] = CUSTOM_VALIDATION,
    ) -> None:
        if not isinstance(object_info, Mapping):
            raise TypeError(f"object_info must be a mapping, not {type(object_info).__name__}")
        self._info = object_info
        self._custom = {k: frozenset(v) for k, v in custom_validation.items()}
        self._specs: dict[str, NodeSpec] = {}
        self._lock = threading.Lock()

    def __contains__(self, class_type: object) -> bool:
        return isinstance(class_type, str) and isinstance(self._info.get(class_type), Mapping)

    def __len__(self) -> int:
        return len(self._info)

    def __iter__(self) -> Iterator[str]:
        return iter(self._info)

    def __repr__(self) -> str:
        return f"NodeCatalog({len(self._info)} classes, {len(self._specs)} built)"

    def get(self, class_type: str) -> NodeSpec | None:
        """The spec of a class, or ``None`` if the server does not know it."""
        spec = self._specs.get(class_type)
        if spec is not None:
            return spec
        info = self._info.get(class_type)
        if not isinstance(info, Mapping):
            return None
        spec = _build_node_spec(class_type, info, self._custom.get(class_type, frozenset()))
        with self._lock:
            return self._specs.setdefault(class_type, spec)

    def close_class_names(self, name: str, n: int = 3) -> tuple[str, ...]:
        """Known class names close to ``name`` (for unknown-class suggestions)."""
        names = [k for k in self._info if isinstance(k, str)]
        lowered = {k.lower(): k for k in names}
        if name.lower() in lowered:
            return (lowered[name.lower()],)
        return tuple(difflib.get_close_matches(name, names, n=n, cutoff=0.75))


def _build_node_spec(class_type: str, info: Mapping[str, Any], custom: frozenset[str]) -> NodeSpec:
    raw_inputs = info.get("input")
    raw_inputs = raw_inputs if isinstance(raw_inputs, Mapping) else {}
    order = info.get("input_order")
    order = order if isinstance(order, Mapping) else {}
    validate_all = "**" in custom
    inputs: dict[str, InputSpec] = {}
    for category in ("required", "optional"):
        group = raw_inputs.get(category)
        if not isinstance(group, Mapping):
            continue
        names = [n for n in (order.get(category) or ()) if n in group]
        names += [n for n in group if n not in names]
        for name in names:
            if name in inputs:  # the server takes "required" first
                continue
            inputs[name] = _build_input_spec(
                name,
                group[name],
                required=category == "required",
                custom_validated=validate_all or name in custom,
            )
    hidden = raw_inputs.get("hidden")
    raw_outputs = info.get("output")
    outputs: list[str | tuple[Any, ...]] = []
    if isinstance(raw_outputs, list | tuple):
        for out in raw_outputs:
            outputs.append(tuple(out) if isinstance(out, list | tuple) else str(out))
    return NodeSpec(
        class_type=class_type,
        inputs=inputs,
        hidden=frozenset(hidden) if isinstance(hidden, Mapping) else frozenset(),
        outputs=tuple(outputs),
        output_node=info.get("output_node") is True,
        check_link_types="input_types" not in custom,
    )


def _build_input_spec(name: str, raw: Any, *, required: bool, custom_validated: bool) -> InputSpec:
    if isinstance(raw, list | tuple) and raw:
        raw_type, extra = raw[0], (raw[1] if len(raw) > 1 else {})
    else:  # a bare type string, or something unusual: accept anything
        raw_type, extra = (raw if isinstance(raw, str) else _ANY), {}
    if not isinstance(extra, Mapping):
        extra = {}
    options: tuple[Any, ...] | None = None
    spec_type: str | tuple[Any, ...]
    if isinstance(raw_type, list | tuple):
        options = tuple(raw_type)
        spec_type = options
    else:
        spec_type = str(raw_type)
        if spec_type == "COMBO" and isinstance(extra.get("options"), list | tuple):
            options = tuple(extra["options"])
        # a "COMBO" without options (LoadImageOutput's remote list) cannot be checked
    option_set: frozenset[Any] | None = None
    if options is not None:
        try:
            option_set = frozenset(options)
        except TypeError:
            option_set = None
    return InputSpec(
        name=name,
        required=required,
        type=spec_type,
        options=options,
        minimum=extra.get("min"),
        maximum=extra.get("max"),
        multiselect=extra.get("multiselect") is True,
        custom_validated=custom_validated,
        config=raw,
        _option_set=option_set,
    )


def _describe_options(options: Sequence[Any]) -> str:
    if not options:
        return "one of the server's choices (it lists none)"
    if len(options) <= 6:
        return "one of " + ", ".join(repr(o) for o in options)
    return f"one of {len(options)} choices"


# --------------------------------------------------------------------------------------------
# Type compatibility of links
# --------------------------------------------------------------------------------------------


def types_compatible(received: Any, expected: Any) -> bool:
    """Whether an output of type ``received`` may feed an input of type ``expected``.

    Mirrors ComfyUI's ``validate_node_input`` with its ``*``-aware type classes: equal types
    match, ``*`` on either side matches anything, and comma-separated types match when they
    share at least one type. A combo output (a list of choices) may feed a combo input.
    """
    if received == expected:
        return True
    if _ANY in (received, expected):
        return True
    if isinstance(received, tuple):  # a combo output may feed a combo input
        return isinstance(expected, tuple) or expected == "COMBO"
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return not got.isdisjoint(want)


def _type_name(t: str | tuple[Any, ...]) -> str:
    return t if isinstance(t, str) else "COMBO"


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@dataclass
class _Node:
    node_id: str
    entry: Mapping[str, Any]
    class_type: str | None
    title: str | None
    spec: NodeSpec | None
    inputs: Mapping[str, Any]
    has_inputs: bool = True


def validate_prompt(
    prompt: Mapping[str, Any],
    object_info: Mapping[str, Any] | NodeCatalog,
    *,
    outputs: Iterable[str] | None = None,
    strict: bool = True,
    params: Mapping[tuple[str, str], str] | None = None,
) -> list[Problem]:
    """Check an API-format prompt against the server's node definitions.

    Pure: nothing is sent and ``prompt`` is not modified.

    Args:
        prompt: ``{node_id: {"class_type": str, "inputs": {...}, "_meta": {...}}}``.
        object_info: ``GET /object_info`` (decoded), or a :class:`NodeCatalog` built from it
            (faster when validating several prompts).
        outputs: Like ``partial_execution_targets`` of ``POST /prompt``: only these output
            nodes count (``None``: every output node).
        strict: Also flag numbers the server would silently cast (default): a ``bool`` for
            an INT or FLOAT input, a non-integral float for an INT input (the server
            truncates ``12.7`` to ``12``), NaN or infinity for any number. ``False`` keeps
            exactly the server's lenient verdict.
        params: ``(node_id, input_name)`` → the DSL parameter that set it (e.g.
            ``Signature.param_inputs()``); such problems name the parameter.

    Returns:
        Every problem found, ordered by node (prompt order) then input; empty when the
        server would accept the prompt and run every output.
    """
    catalog = object_info if isinstance(object_info, NodeCatalog) else NodeCatalog(object_info)
    if not _is_mapping(prompt):
        return [
            Problem(
                node_id=None,
                class_type=None,
                kind="invalid_prompt",
                message=f"a prompt must be a mapping of node id to node, not "
                f"{type(prompt).__name__}",
            )
        ]
    problems = _Validator(prompt, catalog, outputs, strict=strict).run()
    if params:
        problems = [
            replace(p, param=params.get((p.node_id, p.input_name)))
            if p.node_id is not None and p.input_name is not None
            else p
            for p in problems
        ]
    logger.debug("validated a prompt of %d nodes: %d problems", len(prompt), len(problems))
    return problems


class _Validator:
    """One validation run: loads every node, then walks the graph from the outputs."""

    def __init__(
        self,
        prompt: Mapping[str, Any],
        catalog: NodeCatalog,
        targets: Iterable[str] | None,
        *,
        strict: bool = True,
    ) -> None:
        self.strict = strict
        self.prompt = prompt
        self.catalog = catalog
        self.targets = None if targets is None else {str(t) for t in targets}
        self.nodes: dict[str, _Node] = {}
        self.problems: dict[str, list[Problem]] = {}

    def run(self) -> list[Problem]:
        unusable = False  # a node of unknown or missing class (it might be an output)
        output_ids: list[str] = []
        for raw_id, entry in self.prompt.items():
            node = self._load_node(str(raw_id), entry)
            if node is None or node.spec is None:
                unusable = True
            elif node.spec.output_node and (self.targets is None or node.node_id in self.targets):
                output_ids.append(node.node_id)
        head: list[Problem] = []
        if not output_ids and not unusable:
            head.append(self._no_outputs_problem())
        self._walk(output_ids)
        self._check_execution_graph(output_ids)
        for node_id in dict.fromkeys(str(k) for k in self.prompt):
            head.extend(self.problems.get(node_id, ()))
        return head

    def _no_outputs_problem(self) -> Problem:
        if self.targets is not None:
            wanted = ", ".join(repr(t) for t in sorted(self.targets)) or "(none)"
            message = f"none of the requested outputs {wanted} is an output node of this prompt"
        elif not self.prompt:
            message = "the prompt is empty"
        else:
            message = (
                "the prompt has no output node (such as SaveImage or PreviewImage), "
                "so the server would run nothing"
            )
        return Problem(node_id=None, class_type=None, kind="prompt_no_outputs", message=message)

    def _flag(
        self, node: _Node, kind: str, message: str, input_name: str | None = None, **extra: Any
    ) -> None:
        problem = Problem(
            node_id=node.node_id,
            class_type=node.class_type,
            title=node.title,
            input_name=input_name,
            kind=kind,
            message=message,
            **extra,
        )
        self.problems.setdefault(node.node_id, []).append(problem)

    # -- loading -------------------------------------------------------------------------------

    def _load_node(self, node_id: str, entry: Any) -> _Node | None:
        if not isinstance(entry, Mapping):
            what = type(entry).__name__
            bare = _Node(node_id, {}, None, None, None, {}, has_inputs=False)
            self._flag(
                bare,
                "invalid_node",
                f"a node must be a mapping with 'class_type' and 'inputs', not {what}",
                given=entry,
            )
            return None
        meta = entry.get("_meta")
        title = meta.get("title") if isinstance(meta, Mapping) else None
        title = title if isinstance(title, str) else None
        class_type = entry.get("class_type")
        raw_inputs = entry.get("inputs")
        has_inputs = isinstance(raw_inputs, Mapping)
        inputs: Mapping[str, Any] = raw_inputs if isinstance(raw_inputs, Mapping) else {}
        if not isinstance(class_type, str):
            node = _Node(node_id, entry, None, title, None, inputs, has_inputs)
            message = (
                "the node has no 'class_type'"
                if class_type is None
                else f"'class_type' must be a string, not {type(class_type).__name__}"
            )
            self._flag(node, "missing_node_type", message, given=class_type)
            return None
        spec = self.catalog.get(class_type)
        node = _Node(node_id, entry, class_type, title, spec, inputs, has_inputs)
        self.nodes[node_id] = node
        if spec is None:
            self._flag(
                node,
                "missing_node_type",
                f"node type {class_type!r} does not exist on the server "
                "(a custom node that is not installed, or a typo)",
                given=class_type,
                suggestions=self.catalog.close_class_names(class_type),
            )
        return node

    # -- traversal from the outputs ----------------------------------------------------------

    def _walk(self, output_ids: list[str]) -> None:
        """Depth-first from every output along followed links (iterative: no recursion limit)."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        seen_cycles: set[frozenset[str]] = set()
        for root in output_ids:
            if root in state:
                continue
            path: list[str] = [root]
            state[root] = 1
            stack: list[Iterator[tuple[str, str]]] = [self._check_node(self.nodes[root])]
            while stack:
                step = next(stack[-1], None)
                if step is None:
                    stack.pop()
                    state[path.pop()] = 2
                    continue
                input_name, source = step
                mark = state.get(source)
                if mark is None:
                    state[source] = 1
                    path.append(source)
                    stack.append(self._check_node(self.nodes[source]))
                elif mark == 1:
                    cycle = path[path.index(source) :]
                    if frozenset(cycle) not in seen_cycles:
                        seen_cycles.add(frozenset(cycle))
                        self._report_cycle(cycle, closing=(path[-1], input_name))

    def _report_cycle(self, cycle: list[str], closing: tuple[str, str]) -> None:
        ring = " -> ".join([*cycle, cycle[0]])
        for index, node_id in enumerate(cycle):
            node = self.nodes[node_id]
            needed = cycle[(index + 1) % len(cycle)]  # this node links to the next one
            input_name = closing[1] if node_id == closing[0] and needed == cycle[0] else None
            if input_name is None and node.spec is not None:
                input_name = next(
                    (name for name in node.spec.inputs if _links_to(node.inputs.get(name), needed)),
                    None,
                )
            self._flag(
                node,
                "dependency_cycle",
                f"the node is part of a dependency cycle ({ring}: each node needs the next "
                "one's output), so it can never run",
                input_name,
                related_nodes=tuple(cycle),
            )

    def _check_execution_graph(self, output_ids: list[str]) -> None:
        """Dangling links that the server's validation misses but its executor follows.

        To run a prompt the executor follows every link-shaped input value of every node it
        reaches, declared by the node or not. A link to a node that is not in the prompt (or to
        one without ``inputs``) there raises outside any error handling: the 0.3.75 server's
        prompt worker thread dies and no prompt runs until a restart, although ``POST /prompt``
        accepted the prompt. Flag those too.
        """
        already = {(p.node_id, p.input_name) for ps in self.problems.values() for p in ps}
        prompt_ids = {str(k) for k in self.prompt}
        seen = set(output_ids)
        todo = list(output_ids)
        while todo:
            node = self.nodes[todo.pop()]
            for name, value in node.inputs.items():
                if not _executor_link(value):
                    continue
                source_id = value[0]
                source = self.nodes.get(source_id)
                if source_id not in prompt_ids:
                    if (node.node_id, name) not in already:
                        self._flag(
                            node,
                            "link_to_missing_node",
                            f"linked to node {source_id!r}, which is not in the prompt; the "
                            "server does not validate this input (the node does not declare "
                            "it) but follows the link when it runs the prompt, and its prompt "
                            "worker then crashes",
                            name,
                            given=list(value),
                        )
                elif source is not None and source_id not in seen:
                    seen.add(source_id)
                    if source.has_inputs:
                        todo.append(source_id)
                    elif (source_id, None) not in already:
                        already.add((source_id, None))
                        raw = source.entry.get("inputs")
                        self._flag(source, "invalid_node", _no_inputs_message(raw), given=raw)

    # -- checks --------------------------------------------------------------------------------

    def _check_node(self, node: _Node) -> Iterator[tuple[str, str]]:
        """Report the node's own problems; yield ``(input, source_id)`` for links to follow."""
        spec = node.spec
        if spec is None:
            return
        if not node.has_inputs:
            raw = node.entry.get("inputs")
            self._flag(node, "invalid_node", _no_inputs_message(raw), given=raw)
            return
        for name, ispec in spec.inputs.items():
            if name not in node.inputs:
                if ispec.required:
                    self._missing_input(node, spec, ispec)
                continue
            value = node.inputs[name]
            if not _is_link(value):
                self._check_literal(node, ispec, value)
            elif (source := self._check_link(node, spec, ispec, value)) is not None:
                yield name, source

    def _missing_input(self, node: _Node, spec: NodeSpec, ispec: InputSpec) -> None:
        declared = spec.inputs.keys() | spec.hidden
        strays = [k for k in node.inputs if isinstance(k, str) and k not in declared]
        close = tuple(difflib.get_close_matches(ispec.name, strays, n=2, cutoff=0.6))
        message = f"required input {ispec.name!r} ({_type_name(ispec.type)}) is missing"
        if close:
            message += f"; the node has an unknown input {close[0]!r} instead (a typo?)"
        self._flag(
            node,
            "required_input_missing",
            message,
            ispec.name,
            expected=ispec.describe(),
            suggestions=close,
        )

    def _check_link(
        self, node: _Node, spec: NodeSpec, ispec: InputSpec, value: Sequence[Any]
    ) -> str | None:
        """Check one link; return the source node id when the server would follow it."""
        name, given = ispec.name, list(value)
        if len(value) != 2:
            self._flag(
                node,
                "bad_linked_input",
                f"a link must be [node_id, output_index], got a list of {len(value)} items "
                "(wrap a literal list as {'__value__': [...]})",
                name,
                expected=f"a link to {_type_name(ispec.type)}",
                given=given,
            )
            return None
        source_id, slot = value
        if not isinstance(source_id, str):
            known = str(source_id) in self.nodes
            self._flag(
                node,
                "bad_linked_input",
                f"the node id in link {given!r} must be a string, not {type(source_id).__name__}",
                name,
                expected="a node id string",
                given=given,
                suggestions=(f'["{source_id}", {slot!r}]',) if known else (),
            )
            return None
        if not isinstance(slot, int):  # (bools and negative indexes work on the server)
            self._flag(
                node,
                "bad_linked_input",
                f"the output index in link {given!r} must be an integer, not {type(slot).__name__}",
                name,
                expected="an integer output index",
                given=given,
            )
            return None
        source = self.nodes.get(source_id)
        if source is None:
            exists = any(str(k) == source_id for k in self.prompt)
            where = "is not a valid node" if exists else "is not in the prompt"
            self._flag(
                node,
                "link_to_missing_node",
                f"linked to node {source_id!r}, which {where}",
                name,
                given=given,
            )
            return None
        if source.spec is None:  # unknown class: reported on its own
            return None
        out_types = source.spec.outputs
        if not -len(out_types) <= slot < len(out_types):
            have = ", ".join(f"{i}: {_type_name(t)}" for i, t in enumerate(out_types))
            self._flag(
                node,
                "link_slot_out_of_range",
                f"linked to output {slot} of node {source_id} ({source.class_type}), which "
                f"has {_plural(len(out_types), 'output')}" + (f" ({have})" if have else ""),
                name,
                expected=f"an output index below {len(out_types)}",
                given=given,
                suggestions=_matching_slots(source_id, source.spec, ispec),
            )
            return None
        received = out_types[slot]
        if spec.check_link_types and not types_compatible(received, ispec.type):
            self._flag(
                node,
                "return_type_mismatch",
                f"expects {_type_name(ispec.type)} but is linked to output {slot} "
                f"({_type_name(received)}) of node {source_id} ({source.class_type})",
                name,
                expected=_type_name(ispec.type),
                given=_type_name(received),
                suggestions=_matching_slots(source_id, source.spec, ispec),
            )
            return None  # like the server: do not look behind a mismatched link
        return source_id

    def _check_literal(self, node: _Node, ispec: InputSpec, value: Any) -> None:
        """Convert and range-check a literal exactly like the server's ``validate_inputs``."""
        name = ispec.name
        if isinstance(value, Mapping) and "__value__" in value:
            value = value["__value__"]
        kind = ispec.type if isinstance(ispec.type, str) else "COMBO"
        cast = _silent_cast(kind, value) if self.strict else None
        if cast is not None:
            self._flag(
                node, "invalid_input_type", cast, name, expected=ispec.describe(), given=value
            )
            return
        if kind in _CONVERTERS:
            try:
                value = _CONVERTERS[kind](value)
            except (TypeError, ValueError, OverflowError) as exc:
                self._flag(
                    node,
                    "invalid_input_type",
                    f"{_show(value)} ({type(value).__name__}) cannot be converted to {kind}: {exc}",
                    name,
                    expected=ispec.describe(),
                    given=value,
                )
                return
        if ispec.custom_validated:
            return
        try:
            too_small = ispec.minimum is not None and value < ispec.minimum
            too_big = not too_small and ispec.maximum is not None and value > ispec.maximum
        except TypeError:
            self._flag(
                node,
                "invalid_input_type",
                f"{_show(value)} ({type(value).__name__}) cannot be compared with the input's "
                "min/max",
                name,
                expected=ispec.describe(),
                given=value,
            )
            return
        if too_small or too_big:
            kind, word, limit = (
                ("value_smaller_than_min", "smaller than the minimum", ispec.minimum)
                if too_small
                else ("value_bigger_than_max", "bigger than the maximum", ispec.maximum)
            )
            self._flag(
                node,
                kind,
                f"value {_show(value)} is {word} {limit}",
                name,
                expected=ispec.describe(),
                given=value,
            )
            return
        if ispec.options is None:
            return
        if ispec.multiselect and isinstance(value, list | tuple):
            wrong = [v for v in value if not ispec.has_option(v)]
        else:
            wrong = [] if ispec.has_option(value) else [value]
        for bad in wrong:
            message = (
                f"{_show(bad)} is not {_describe_options(ispec.options)}"
                if ispec.options
                else f"{_show(bad)} is not available: the server offers no choices for this "
                "input (no such model or file installed?)"
            )
            self._flag(
                node,
                "value_not_in_list",
                message,
                name,
                expected=ispec.describe(),
                given=bad,
                suggestions=_close_choices(bad, ispec.options),
            )


def _matching_slots(source_id: str, source: NodeSpec, ispec: InputSpec) -> tuple[str, ...]:
    """Links to the outputs of ``source`` that would fit ``ispec`` (as JSON text)."""
    return tuple(
        f'["{source_id}", {i}]'
        for i, t in enumerate(source.outputs)
        if types_compatible(t, ispec.type)
    )


def _silent_cast(kind: str, value: Any) -> str | None:
    """What is wrong with a number the server would cast without a word (strict mode)."""
    if kind not in {"INT", "FLOAT"}:
        return None
    if isinstance(value, bool):
        return (
            f"{value!r} is a bool, not {'an' if kind == 'INT' else 'a'} {kind} "
            f"(the server would silently take it as {int(value)})"
        )
    if isinstance(value, float) and not math.isfinite(value):
        return f"{_show(value)} is not a finite number"
    if kind == "INT" and isinstance(value, float) and not value.is_integer():
        return (
            f"{value!r} is not a whole number (the server would silently truncate it to "
            f"{int(value)})"
        )
    return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _is_mapping(value: object) -> bool:
    return isinstance(value, Mapping)


def _no_inputs_message(raw: Any) -> str:
    if raw is None:
        return "the node has no 'inputs' mapping"
    return f"'inputs' must be a mapping, not {type(raw).__name__}"


def _executor_link(value: Any) -> bool:
    """A value the server's executor treats as a link (``comfy_execution.graph_utils.is_link``)."""
    return (
        _is_link(value)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
    )


def _links_to(value: Any, node_id: str) -> bool:
    return _is_link(value) and len(value) == 2 and value[0] == node_id


def _is_link(value: Any) -> bool:
    # tuples become JSON lists, so the server sees them as links too
    return isinstance(value, list | tuple)


def _show(value: Any) -> str:
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return str(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _close_choices(value: Any, options: Sequence[Any], n: int = 3) -> tuple[str, ...]:
    """Valid choices close to a wrong value, best first.

    A choice equal but for case or surrounding blanks, or with the same file name in another
    folder (``SDXL/model.safetensors`` for ``model.safetensors``), is returned alone; otherwise
    difflib's closest matches.
    """
    text = str(value)
    choices = [str(o) for o in options]
    if not choices:
        return ()
    wanted = text.strip().lower()
    base = wanted.replace("\\", "/").rsplit("/", 1)[-1]
    exact = [c for c in choices if c.strip().lower() == wanted]
    if exact:
        return tuple(exact[:n])
    same_file = [c for c in choices if c.lower().replace("\\", "/").rsplit("/", 1)[-1] == base]
    if same_file:
        return tuple(same_file[:n])
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    return tuple(by_lower[m] for m in difflib.get_close_matches(wanted, by_lower, n=n, cutoff=0.6))

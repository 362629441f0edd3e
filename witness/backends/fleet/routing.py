"""Which server gets a prompt: capability first, then the least busy, ties round-robin.

* **Capability**: a server can run a prompt when its ``/object_info`` has every node class the
  prompt names and every combo value it uses (model files: ``ckpt_name``, ``lora_name``...).
  This is :func:`~witness.core.validate.validate_prompt` against that server's catalog,
  keeping only the two kinds of problem that differ between servers
  (``missing_node_type``, ``value_not_in_list``).
* **Load**: ``busy / weight``, where ``busy`` is the server's queue (running + pending) from its
  websocket ``status`` events plus this fleet's submits not yet reflected there. The lowest
  wins; equal loads go round-robin.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from witness.core.validate import NodeCatalog, validate_prompt

__all__ = ["CAPABILITY_KINDS", "LoadSource", "RoundRobin", "lacking", "merge_object_info"]

#: Validation problems that mean "this server lacks something" rather than "the prompt is wrong".
CAPABILITY_KINDS = frozenset({"missing_node_type", "value_not_in_list"})


def lacking(prompt: Mapping[str, Any], catalog: NodeCatalog) -> tuple[str, ...]:
    """What a server (given by its catalog) lacks to run ``prompt``; empty when it can.

    Returns:
        One phrase per missing thing, e.g. ``"node class TestSleep"`` or
        ``"CheckpointLoaderSimple.ckpt_name='big.safetensors'"``.
    """
    found: list[str] = []
    for problem in validate_prompt(prompt, catalog):
        if problem.kind not in CAPABILITY_KINDS:
            continue
        if problem.kind == "missing_node_type":
            text = f"node class {problem.class_type or problem.given}"
        else:
            text = f"{problem.class_type}.{problem.input_name}={problem.given!r}"
        if text not in found:
            found.append(text)
    return tuple(found)


def merge_object_info(infos: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One ``/object_info`` for validating against a fleet: every class any server has, with
    combo choices (model lists) united over the servers.

    The fleet validates a prompt against this union (is it a sound prompt anywhere?) and
    then routes it to a server that has everything it names.
    """
    merged: dict[str, Any] = {}
    for info in infos:
        for class_type, spec in info.items():
            if class_type not in merged:
                merged[class_type] = spec
            elif isinstance(spec, Mapping):
                merged[class_type] = _merge_class(merged[class_type], spec)
    return merged


def _merge_class(first: Any, other: Mapping[str, Any]) -> Any:
    if not isinstance(first, Mapping):
        return other
    result = dict(first)
    inputs = dict(first.get("input") or {})
    for section, fields in (other.get("input") or {}).items():
        mine = dict(inputs.get(section) or {})
        if not isinstance(fields, Mapping):
            continue
        for name, spec in fields.items():
            mine[name] = _merge_input(mine.get(name), spec)
        inputs[section] = mine
    result["input"] = inputs
    return result


def _merge_input(first: Any, other: Any) -> Any:
    if first is None:
        return other
    a, b = _choices(first), _choices(other)
    if a is None or b is None:
        return first
    united = list(a) + [c for c in b if c not in a]
    if isinstance(first[0], list):
        return [united, *first[1:]]
    options = dict(first[1]) if len(first) > 1 and isinstance(first[1], Mapping) else {}
    options["options"] = united
    return [first[0], options, *first[2:]]


def _choices(spec: Any) -> list[Any] | None:
    """A combo input's choices (``[[...], {...}]`` or V3 ``["COMBO", {"options": [...]}]``)."""
    if not isinstance(spec, list | tuple) or not spec:
        return None
    if isinstance(spec[0], list):
        return list(spec[0])
    if len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1].get("options")
        if isinstance(options, list):
            return list(options)
    return None


class LoadSource(Protocol):
    """What the chooser needs of a server."""

    @property
    def load(self) -> float:
        """Its busy count divided by its weight."""
        ...


class RoundRobin:
    """Picks the least-loaded candidate; ties go round-robin (thread-safe)."""

    def __init__(self) -> None:
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def choose(self, candidates: Sequence[LoadSource]) -> int:
        """The index (into ``candidates``) of the server to use; ``candidates`` non-empty."""
        loads = [c.load for c in candidates]
        best = min(loads)
        tied = [i for i, value in enumerate(loads) if value <= best + 1e-9]
        with self._lock:
            turn = next(self._turn)
        return tied[turn % len(tied)]

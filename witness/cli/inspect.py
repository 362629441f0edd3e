"""``witness inspect WORKFLOW``: the workflow's params and outputs."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_OK
from witness.cli.output import format_table
from witness.cli.params import declared_type
from witness.cli.workflow import add_workflow_arguments, load
from witness.errors import TransportError

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``inspect``."""
    parser = add_command(
        sub, "inspect", parent, _inspect, "show a workflow's params and outputs",
        "Show a workflow's DSL params (name, type, required, default, the node inputs\n"
        "they set) and its outputs. An API-format workflow needs no server (types then\n"
        "come from the workflow's own values when the server cannot be reached).",
    )  # fmt: skip
    add_workflow_arguments(parser, params=False)


def _type_of(param: dict[str, Any], object_info: dict[str, Any] | None) -> str:
    if param.get("upload"):
        return f"file ({param.get('media_kind') or 'media'})"
    for target in param["targets"]:
        kind = declared_type(target["class_type"], target["field"], object_info)
        if kind:
            return kind
    default = param.get("default")
    return type(default).__name__ if default is not None else ""


def _inspect(ctx: Context, args: argparse.Namespace) -> int:
    kit = ctx.kit()
    loaded = load(kit, args.workflow)
    signature = kit.inspect(loaded.workflow)
    object_info: dict[str, Any] | None
    try:
        object_info = kit.object_info()
    except TransportError as exc:
        logger.info("no node definitions (%s); types come from the workflow's values", exc)
        object_info = None
    params = [
        {
            "name": name,
            "type": _type_of(p, object_info),
            "required": p["required"],
            "upload": p["upload"],
            "default": p["default"],
            "inputs": [f"{t['node_id']}.{t['field']}" for t in p["targets"]],
            "description": p["description"],
        }
        for name, p in signature["params"].items()
    ]
    outputs = [
        {"name": o["name"], "node_id": o["node_id"], "class_type": o["class_type"]}
        for o in signature["outputs"]
    ]
    human = "\n".join(
        [
            "params:",
            format_table(params, [("name", "NAME"), ("type", "TYPE"), ("required", "REQUIRED"),
                                  ("default", "DEFAULT"), ("inputs", "SETS")])
            if params else "  (none)",
            "",
            "outputs:",
            format_table(outputs, [("name", "NAME"), ("node_id", "NODE"), ("class_type", "CLASS")])
            if outputs else "  (none)",
        ]
    )  # fmt: skip
    ctx.out.record({"format": loaded.format, "params": params, "outputs": outputs}, human)
    return EXIT_OK

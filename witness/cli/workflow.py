"""The WORKFLOW argument and the ``-p`` / ``--params`` options, shared by run, validate,
submit and batch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from witness.cli.errors import UsageError
from witness.cli.params import build_params
from witness.errors import TransportError

if TYPE_CHECKING:
    from witness.core.sources import LoadedWorkflow
    from witness.core.witness import Witness

__all__ = ["add_workflow_arguments", "load", "params_for", "source_of"]


def add_workflow_arguments(parser: argparse.ArgumentParser, *, params: bool = True) -> None:
    """WORKFLOW, and unless ``params=False``, ``-p NAME=VALUE`` and ``--params FILE.json``."""
    parser.add_argument(
        "workflow",
        metavar="WORKFLOW",
        help="API or UI format: a path, an http(s) URL, or - (stdin)",
    )
    if params:
        parser.add_argument(
            "-p", "--param", dest="param", action="append", default=[], metavar="NAME=VALUE",
            help="a workflow param, typed from the workflow (repeatable); @FILE uploads a "
            "media file or reads a text file, @@ is a literal @",
        )  # fmt: skip
        parser.add_argument(
            "--params", dest="params_file", metavar="FILE.json",
            help="params as a JSON object (-p wins for the same name)",
        )  # fmt: skip


def source_of(arg: str) -> Any:
    """What to hand to ``Witness.load``: the text as given, or the JSON read from stdin."""
    if arg != "-":
        return arg
    try:
        return json.loads(sys.stdin.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"the workflow on standard input is not valid JSON: {exc}") from exc


def load(kit: Witness, arg: str) -> LoadedWorkflow:
    """Load WORKFLOW (a UI-format one is converted with the server's node definitions)."""
    loaded = kit.load(source_of(arg))
    if loaded.runninghub_id is not None:
        raise UsageError(f"{arg} looks like a RunningHub workflow id; the CLI runs local files")
    return loaded


def params_for(
    kit: Witness, workflow: dict[str, Any], args: argparse.Namespace, *, need_types: bool = True
) -> dict[str, Any]:
    """The typed params of ``-p`` / ``--params`` for an API-format ``workflow``.

    Declared input types come from the server's ``/object_info`` (cached by ``kit``); when the
    server cannot be reached and ``need_types`` is false, the params are typed from the
    workflow's own values instead.
    """
    if not args.param and not args.params_file:
        return {}
    signature = kit.inspect(workflow)
    object_info: dict[str, Any] | None = None
    if args.param:
        try:
            object_info = kit.object_info()
        except TransportError:
            if need_types:
                raise
    return build_params(args.param, args.params_file, signature, object_info)

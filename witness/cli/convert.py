"""``witness convert UI.json [-o API.json] [--object-info FILE | --server URL] [--seed N]``.

Convert a workflow saved by the ComfyUI editor (UI format) into the API-format prompt that
``POST /prompt`` takes, exactly as the official frontend would (see
:mod:`witness.core.ui_convert`). The node definitions come from a saved ``/object_info`` JSON
file (``.gz`` accepted) or from a running server. Without ``-o`` the prompt is written to
standard output (with ``--json``: on one line).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import CliError

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``convert``."""
    convert = add_command(
        sub, "convert", parent, _convert,
        "convert a UI-format workflow to an API-format prompt",
        "Convert a workflow saved by the ComfyUI editor (UI format) into the\n"
        "API-format prompt that POST /prompt takes, as the official frontend does.",
    )  # fmt: skip
    convert.add_argument("workflow", help="the UI-format workflow JSON file ('-' for stdin)")
    convert.add_argument("-o", "--output", help="write the API prompt here (default: stdout)")
    source = convert.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--object-info", metavar="FILE", help="node definitions: a saved GET /object_info JSON"
    )
    source.add_argument(
        "--server", metavar="URL", help="node definitions: fetch /object_info from this server"
    )
    convert.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for dynamic prompts {a|b} (default: always the first option)",
    )


def _convert(ctx: Context, args: argparse.Namespace) -> int:
    from witness.core.ui_convert import is_ui_format, ui_to_api  # noqa: PLC0415 - fast --help

    workflow = _read_json(args.workflow, "workflow")
    if not is_ui_format(workflow):
        if isinstance(workflow, dict) and all(
            isinstance(v, dict) and "class_type" in v for v in workflow.values()
        ):
            raise CliError(f"{args.workflow} is already in API format; nothing to convert")
        raise CliError(f"{args.workflow} is not a UI-format workflow (no 'nodes' list)")
    object_info = (
        _read_json(args.object_info, "object_info")
        if args.object_info
        else _fetch_object_info(args.server)
    )
    if not isinstance(object_info, dict):
        raise CliError("the node definitions are not a JSON object as GET /object_info returns")
    prompt = ui_to_api(workflow, object_info, seed=args.seed)
    text = json.dumps(prompt, indent=2, ensure_ascii=False) + "\n"
    if args.output and args.output != "-":
        _write_atomic(Path(args.output), text)
        ctx.out.record({"path": args.output, "nodes": len(prompt)}, None)
        ctx.out.info(f"wrote {len(prompt)} nodes to {args.output}")
    elif ctx.out.json_mode:
        ctx.out.record(prompt)
    else:
        ctx.out.text(text)
    return 0


def _read_json(name: str, what: str) -> Any:
    try:
        if name == "-":
            return json.load(sys.stdin)
        path = Path(name)
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return json.load(fh)
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise CliError(f"cannot read the {what} file {name}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
        raise CliError(f"the {what} file {name} is not valid JSON: {exc}") from exc


def _fetch_object_info(url: str) -> Any:
    """``GET /object_info`` from the server at ``url``."""
    from witness.config.settings import Settings  # noqa: PLC0415 - fast --help
    from witness.transport.http import HttpClient  # noqa: PLC0415

    with HttpClient(Settings.from_env(api_url=url)) as http:
        return http.request_json("GET", "/object_info")


def _write_atomic(path: Path, text: str) -> None:
    directory = path.parent if str(path.parent) else Path()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc

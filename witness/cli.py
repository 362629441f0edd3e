"""The ``witness`` command line.

Subcommands:

``witness convert UI.json [-o API.json] [--object-info FILE | --server URL] [--seed N]``
    Convert a workflow saved by the ComfyUI editor (UI format) into the API-format prompt that
    ``POST /prompt`` takes, exactly as the official frontend would (see
    :mod:`witness.core.ui_convert`). The node definitions come from a saved ``/object_info``
    JSON file (``.gz`` accepted) or from a running server. Without ``-o`` the prompt is
    written to standard output.

Exit status: 0 on success, 1 when the conversion or the server fails, 2 for usage errors
(argparse's convention).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from witness.config.settings import Settings
from witness.core.ui_convert import is_ui_format, ui_to_api
from witness.errors import WitnessError
from witness.transport.http import HttpClient

__all__ = ["main"]

logger = logging.getLogger(__name__)


class CliError(Exception):
    """A problem to report to the user as ``witness: error: ...`` (exit status 1)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``witness`` command line.

    Args:
        argv: The arguments (without the program name); ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 success, 1 failure, 2 usage error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        result: int = args.handler(args, sys.stdout)
        return result
    except (CliError, WitnessError) as exc:
        print(f"witness: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="witness", description="Client tools for the ComfyUI server API."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    convert = sub.add_parser(
        "convert",
        help="convert a UI-format workflow to an API-format prompt",
        description="Convert a workflow saved by the ComfyUI editor (UI format) into the "
        "API-format prompt that POST /prompt takes, as the official frontend does.",
    )
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
    convert.set_defaults(handler=_convert)
    return parser


def _convert(args: argparse.Namespace, stdout: TextIO) -> int:
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
        print(f"wrote {len(prompt)} nodes to {args.output}", file=sys.stderr)
    else:
        stdout.write(text)
        stdout.flush()
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``witness upload FILE`` and ``witness download NAME``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_OK, UsageError
from witness.cli.output import path_text

__all__ = ["register"]


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``upload`` and ``download``."""
    upload = add_command(
        sub, "upload", parent, _upload, "upload a file to the server's input (or temp) folder"
    )
    upload.add_argument("file", metavar="FILE", help="the local file")
    upload.add_argument("--type", choices=("input", "temp", "output"), default="input")
    upload.add_argument("--subfolder", default="", help="folder under the type's root")
    upload.add_argument("--name", help="store under this name (default: the file's)")
    upload.add_argument("--overwrite", action="store_true", help="replace a file of the same name")
    download = add_command(
        sub, "download", parent, _download, "download a file from the server (GET /view)"
    )
    download.add_argument("name", metavar="NAME", help="the file name on the server")
    download.add_argument("--subfolder", default="", help="its subfolder")
    download.add_argument("--type", choices=("output", "input", "temp"), default="output")
    download.add_argument(
        "-o", "--output", metavar="PATH",
        help="where to write (a directory, a file, or - for stdout; default: ./NAME)",
    )  # fmt: skip


def _upload(ctx: Context, args: argparse.Namespace) -> int:
    path = Path(args.file).expanduser()
    if not path.is_file():
        raise UsageError(f"no such file {args.file}")
    stored = ctx.kit().files.upload_image(
        path, filename=args.name, type=args.type, subfolder=args.subfolder,
        overwrite=args.overwrite,
    )  # fmt: skip
    ctx.out.record(
        {"name": stored.name, "subfolder": stored.subfolder, "type": stored.type,
         "value": stored.input_value},
        stored.input_value,
    )  # fmt: skip
    return EXIT_OK


def _download(ctx: Context, args: argparse.Namespace) -> int:
    from witness.api_clients.types import FileRef  # noqa: PLC0415 - fast --help
    from witness.utils.files import safe_filename  # noqa: PLC0415

    ref = FileRef(args.name, args.subfolder, args.type)
    files = ctx.kit().files
    if args.output == "-":
        size = files.download_to(ref, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        ctx.out.info(f"wrote {size} bytes to stdout")
        return EXIT_OK
    local = safe_filename(args.name, default="download")
    target = Path(args.output) if args.output else Path(local)
    if target.is_dir():
        target = target / local
    size = files.download_to(ref, target)
    ctx.out.record({"path": str(target), "bytes": size, **ref.to_json()}, path_text(target))
    return EXIT_OK

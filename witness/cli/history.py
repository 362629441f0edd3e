"""``witness history [list | show ID | delete ID... | clear]``: finished prompts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from witness.api_clients.types import HistoryEntry

__all__ = ["register"]


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``history`` and its subcommands (``history`` alone lists)."""
    history = add_command(
        sub, "history", parent, _list, "list, show, delete or clear finished prompts"
    )
    history.add_argument("--max", type=int, metavar="N", help="list only the newest N")
    actions = history.add_subparsers(dest="action", metavar="ACTION")
    listing = add_command(actions, "list", parent, _list, "finished prompts, oldest first")
    listing.add_argument(
        "--max", type=int, metavar="N", default=argparse.SUPPRESS, help="only the newest N"
    )
    show = add_command(actions, "show", parent, _show, "one prompt's status and outputs")
    show.add_argument("prompt_id", metavar="ID", help="the prompt id")
    delete = add_command(actions, "delete", parent, _delete, "remove entries by id")
    delete.add_argument("prompt_ids", nargs="+", metavar="ID", help="prompt ids")
    add_command(actions, "clear", parent, _clear, "delete the WHOLE history")


def _status(entry: HistoryEntry) -> str:
    if entry.interrupted:
        return "interrupted"
    return entry.status.status_str or ("success" if entry.status.completed else "unknown")


def _row(entry: HistoryEntry) -> dict[str, Any]:
    files = entry.output_files()
    return {
        "prompt_id": entry.prompt_id,
        "number": entry.number,
        "status": _status(entry),
        "files": [f.ref.filename for f in files],
        "outputs": len(files),
    }


def _list(ctx: Context, args: argparse.Namespace) -> int:
    entries = ctx.kit().history.get_all(max_items=getattr(args, "max", None))
    ctx.out.records(
        [_row(e) for e in entries.values()],
        [("number", "NUMBER"), ("prompt_id", "PROMPT"), ("status", "STATUS"),
         ("outputs", "FILES")],
        empty="the history is empty",
    )  # fmt: skip
    return EXIT_OK


def _show(ctx: Context, args: argparse.Namespace) -> int:
    entry = ctx.kit().history.get(args.prompt_id)
    if entry is None:
        ctx.out.error(f"no history entry for prompt {args.prompt_id} (queued, running or unknown)")
        return EXIT_FAILED
    files = [
        {"node_id": f.node_id, "kind": f.kind, "filename": f.ref.filename,
         "subfolder": f.ref.subfolder, "type": f.ref.type}
        for f in entry.output_files()
    ]  # fmt: skip
    record = {**_row(entry), "files": files, "error": entry.error, "outputs": entry.outputs}
    lines = [f"prompt {entry.prompt_id}: {_status(entry)}"]
    lines += [f"  node {f['node_id']}: {f['type']}/{f['subfolder'] or '.'}/{f['filename']}"
              for f in files]  # fmt: skip
    if entry.error:
        lines.append(f"  error: {entry.error.get('exception_message', entry.error)}")
    ctx.out.record(record, "\n".join(lines))
    return EXIT_OK


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.kit().history.delete(args.prompt_ids)
    ctx.out.action(
        {"deleted": args.prompt_ids}, f"deleted {len(args.prompt_ids)} history entr(y/ies)"
    )
    return EXIT_OK


def _clear(ctx: Context, args: argparse.Namespace) -> int:
    ctx.kit().history.clear_all()
    ctx.out.action({"cleared": True}, "history cleared")
    return EXIT_OK

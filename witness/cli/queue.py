"""``witness queue [list | clear | delete ID...]``: the server's execution queue."""

from __future__ import annotations

import argparse

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_OK

__all__ = ["register"]


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``queue`` and its subcommands (``queue`` alone lists)."""
    queue = add_command(
        sub, "queue", parent, _list, "list, clear or delete queued prompts",
        "List the running and pending prompts (the default), clear every pending\n"
        "prompt (of every client of the server), or delete some by id.",
    )  # fmt: skip
    actions = queue.add_subparsers(dest="action", metavar="ACTION")
    add_command(actions, "list", parent, _list, "running and pending prompts (default)")
    add_command(actions, "clear", parent, _clear, "remove EVERY pending prompt")
    delete = add_command(actions, "delete", parent, _delete, "remove pending prompts by id")
    delete.add_argument("prompt_ids", nargs="+", metavar="ID", help="prompt ids")


def _list(ctx: Context, args: argparse.Namespace) -> int:
    state = ctx.kit().queue.get()
    rows = [
        {"state": state_name, "number": item.number, "prompt_id": item.prompt_id,
         "client_id": item.client_id, "nodes": len(item.prompt)}
        for state_name, items in (("running", state.running), ("pending", state.pending))
        for item in items
    ]  # fmt: skip
    ctx.out.records(
        rows,
        [("state", "STATE"), ("number", "NUMBER"), ("prompt_id", "PROMPT"), ("nodes", "NODES")],
        empty="the queue is empty",
    )
    return EXIT_OK


def _clear(ctx: Context, args: argparse.Namespace) -> int:
    ctx.kit().queue.clear_pending()
    ctx.out.action({"cleared": True}, "pending prompts cleared")
    return EXIT_OK


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.kit().queue.delete(args.prompt_ids)
    ctx.out.action(
        {"deleted": args.prompt_ids},
        f"deleted {len(args.prompt_ids)} prompt(s) from the queue (if pending)",
    )
    return EXIT_OK

"""``witness submit`` / ``wait ID`` / ``cancel ID``: a prompt's life in separate steps."""

from __future__ import annotations

import argparse

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_FAILED, EXIT_OK
from witness.cli.run import add_result_arguments, report_result
from witness.cli.workflow import add_workflow_arguments, load, params_for

__all__ = ["register"]


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``submit``, ``wait`` and ``cancel``."""
    submit = add_command(
        sub, "submit", parent, _submit, "queue a workflow without waiting; prints its id"
    )
    add_workflow_arguments(submit)
    submit.add_argument(
        "--no-validate", action="store_true", help="skip the check against /object_info"
    )
    wait = add_command(
        sub, "wait", parent, _wait, "wait for a queued prompt and save its outputs",
        "Wait for a prompt queued earlier (by anyone), then save and print its outputs\n"
        "as `witness run` does. Exit status as for run.",
    )  # fmt: skip
    wait.add_argument("prompt_id", metavar="ID", help="the prompt id")
    add_result_arguments(wait)
    cancel = add_command(
        sub, "cancel", parent, _cancel, "cancel a prompt: dequeue if pending, interrupt if running"
    )
    cancel.add_argument("prompt_id", metavar="ID", help="the prompt id")


def _submit(ctx: Context, args: argparse.Namespace) -> int:
    kit = ctx.kit(executor="http", validate=not args.no_validate)
    loaded = load(kit, args.workflow)
    handle = kit.submit(loaded.workflow, params_for(kit, loaded.workflow, args))
    handle.release()
    ctx.out.record(
        {
            "prompt_id": handle.prompt_id,
            "number": getattr(handle, "number", None),
            "status": "queued",
        },
        handle.prompt_id,
    )
    return EXIT_OK


def _wait(ctx: Context, args: argparse.Namespace) -> int:
    kit = ctx.kit()
    try:
        result = kit.wait(args.prompt_id, timeout=args.timeout)
    except KeyboardInterrupt:
        # Stop waiting only: the prompt is someone's; `witness cancel ID` cancels it.
        ctx.out.warn(f"stopped waiting for prompt {args.prompt_id} (it keeps running)")
        raise
    return report_result(
        ctx, result, args.out, overwrite=args.overwrite, cancelled_on_timeout=False
    )


def _cancel(ctx: Context, args: argparse.Namespace) -> int:
    kit = ctx.kit()
    result = kit.cancel(args.prompt_id)
    ctx.out.record(
        {"prompt_id": result.prompt_id, "outcome": result.outcome.value, "via": result.via},
        f"{result.prompt_id}: {result.outcome.value}",
    )
    if result.outcome.value == "not_found":
        ctx.out.error(f"the server knows no prompt {args.prompt_id}")
        return EXIT_FAILED
    return EXIT_OK

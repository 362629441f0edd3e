"""``witness validate WORKFLOW [-p ...]``: every problem, with suggestions; exit 1 when any."""

from __future__ import annotations

import argparse
from pathlib import Path

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_FAILED, EXIT_OK
from witness.cli.workflow import add_workflow_arguments, load, params_for

__all__ = ["register"]


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``validate``."""
    parser = add_command(
        sub, "validate", parent, _validate, "check a workflow against the server's nodes",
        "Check a workflow (with its params applied) against the server's node\n"
        "definitions without running it. Prints every problem with suggestions; exit\n"
        "status 1 when there is any. Media params (@FILE) are not uploaded: the\n"
        "workflow's own file name is checked instead.",
    )  # fmt: skip
    add_workflow_arguments(parser)


def _validate(ctx: Context, args: argparse.Namespace) -> int:
    kit = ctx.kit()
    loaded = load(kit, args.workflow)
    params = params_for(kit, loaded.workflow, args)
    for name, value in list(params.items()):
        if isinstance(value, Path):
            ctx.out.info(f"note: {name}={value} is not uploaded by validate; not checked")
            del params[name]
    problems = kit.validate(loaded.workflow, params)
    for problem in problems:
        human = f"{problem.where}: {problem.message}"
        if problem.suggestions:
            human += f" (did you mean: {', '.join(problem.suggestions[:5])}?)"
        ctx.out.record(
            {
                "node_id": problem.node_id,
                "class_type": problem.class_type,
                "title": problem.title,
                "input": problem.input_name,
                "kind": problem.kind,
                "expected": problem.expected,
                "given": problem.given,
                "message": problem.message,
                "suggestions": problem.suggestions,
            },
            human,
        )
    if problems:
        ctx.out.error(f"{len(problems)} problem(s) in {args.workflow}")
        return EXIT_FAILED
    ctx.out.info(f"{args.workflow}: no problems")
    ctx.out.record({"workflow": args.workflow, "problems": 0})
    return EXIT_OK

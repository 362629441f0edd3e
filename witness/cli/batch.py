"""``witness batch WORKFLOW JOBS --out DIR``: many runs of one workflow, resumable.

JOBS is a ``.jsonl`` file (one JSON object of params per line) or a ``.csv`` file (a header
row of param names). Runs go to the ``--url`` server or spread over ``--servers``; a batch
interrupted or re-run with the same ``--out`` resumes where it stopped (see
:mod:`witness.batch`). Needs ``witness.batch``.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_FAILED, EXIT_OK, CliError
from witness.cli.progress import BatchProgress
from witness.cli.workflow import source_of

__all__ = ["register"]

DESCRIPTION = """\
Run one workflow once per job of JOBS, saving each job's outputs under DIR.

JOBS is a .jsonl file (one JSON object of params per line) or a .csv file (a
header row of param names; numbers and true/false are typed). The journal in
DIR makes the batch resumable: run the same command again to finish it.

  witness batch examples/invert.json jobs.csv --out out/ --concurrency 4
  witness batch flow.json jobs.jsonl --out out/ \\
      --servers http://a:8188 http://b:8188

Exit status: 0 when every job completed, 1 when any failed or was lost.
"""


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``batch``."""
    parser = add_command(
        sub, "batch", parent, _batch, "run a workflow for every job of a JSONL/CSV file",
        DESCRIPTION,
    )  # fmt: skip
    parser.set_defaults(whole_command_timeout=False)  # --timeout is per job
    parser.add_argument(
        "workflow", metavar="WORKFLOW", help="API or UI format: a path, a URL, or -"
    )
    parser.add_argument("jobs", metavar="JOBS", help="the .jsonl or .csv file of params")
    parser.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory")
    parser.add_argument(
        "--servers", nargs="+", metavar="URL", help="spread the jobs over these servers"
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, metavar="N", help="jobs in flight (default 4)"
    )
    parser.add_argument(
        "--retry-lost", type=int, default=0, metavar="N",
        help="resubmit a job lost by a server restart up to N times (default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--no-validate", action="store_true", help="skip the check against /object_info"
    )


def _event_line(event: Any) -> str:
    what = f"job {event.index}: {event.status or event.kind}"
    if event.prompt_id:
        what += f" prompt {event.prompt_id}"
    if event.server:
        what += f" on {event.server}"
    if event.error:
        what += f" ({event.error})"
    return what


def _batch(ctx: Context, args: argparse.Namespace) -> int:
    try:
        run_batch = importlib.import_module("witness.batch").run_batch
    except ImportError as exc:
        raise CliError(f"this witness has no batch runner (witness.batch: {exc})") from exc
    if args.concurrency < 1:
        raise CliError("--concurrency must be at least 1", 2)
    target: Any = list(args.servers) if args.servers else ctx.kit()
    progress = None if ctx.out.quiet else BatchProgress(ctx.out.stderr)

    def on_event(event: Any) -> None:
        ctx.out.record({"event": event.kind, **_event_fields(event)}, None)
        if progress is None or event.kind == "start":
            return
        if event.status not in (None, "completed"):
            progress.failed += 1
        progress.update(event.done, event.total, _event_line(event))

    try:
        summary = run_batch(
            source_of(args.workflow), args.jobs, out_dir=args.out, target=target,
            concurrency=args.concurrency, timeout=args.timeout, on_event=on_event,
            retry_lost=args.retry_lost, validate=not args.no_validate,
        )  # fmt: skip
    finally:
        if progress is not None:
            progress.close()
    fields = _summary_fields(summary)
    ctx.out.record(
        {"event": "summary", **fields},
        None,
    )
    ctx.out.info(
        f"{summary.total} jobs: {summary.completed} completed, {summary.failed} failed, "
        f"{summary.lost} lost, {summary.skipped} skipped (done before), {summary.resumed} "
        f"resumed, in {summary.duration:.1f} s; manifest {summary.manifest_path}"
    )
    return EXIT_OK if not summary.failed and not summary.lost else EXIT_FAILED


_EVENT_FIELDS = ("index", "total", "done", "status", "prompt_id", "server", "files", "error",
                 "duration")  # fmt: skip
_SUMMARY_FIELDS = ("total", "completed", "failed", "lost", "skipped", "resumed",
                   "manifest_path", "journal_path", "duration", "out_dir")  # fmt: skip


def _event_fields(event: Any) -> dict[str, Any]:
    return {name: getattr(event, name, None) for name in _EVENT_FIELDS}


def _summary_fields(summary: Any) -> dict[str, Any]:
    return {name: getattr(summary, name, None) for name in _SUMMARY_FIELDS}

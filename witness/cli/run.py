"""``witness run``: run a workflow with live progress and save its outputs.

Ctrl-C cancels the prompt on the server (once; further Ctrl-C are ignored while the cancel is
sent), prints its id on stderr and exits 130. A Ctrl-C that arrives while the prompt is being
submitted is held until the server has queued it, then the prompt is cancelled; a second one
aborts at once.
"""

from __future__ import annotations

import argparse
import inspect
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT
from witness.cli.output import Output, path_text
from witness.cli.progress import RunProgress
from witness.cli.workflow import add_workflow_arguments, load, params_for
from witness.errors import WitnessError

if TYPE_CHECKING:
    from witness.api_clients.types import CancelResult
    from witness.core.results import ExecuteResult

__all__ = ["cancel_prompt", "register", "report_result"]

DESCRIPTION = """\
Run a workflow on the server, show its progress, and save its outputs.

WORKFLOW is an API-format or UI-format (exported from the browser) JSON file,
an http(s) URL, or - for standard input. Params are the workflow's DSL params
(see `witness inspect WORKFLOW`); -p values are typed from the workflow:

  witness run examples/txt2img.json -p prompt="a red fox" -p width=64 --out out/
  witness run examples/upload_invert.json -p image=@photo.png --out out/
  witness run flow.json -p prompt=@prompt.txt --params base.json

Prints the saved paths (or, without --out, the outputs' URLs). Exit status:
0 completed, 1 failed or interrupted on the server, 124 --timeout passed (the
prompt is cancelled), 130 Ctrl-C (the prompt is cancelled on the server).
"""


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``run``."""
    parser = add_command(
        sub, "run", parent, _run, "run a workflow and save its outputs", DESCRIPTION
    )
    add_workflow_arguments(parser)
    add_result_arguments(parser)
    parser.add_argument(
        "--executor", choices=("websocket", "http"), help="how to follow the prompt"
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="skip the check against /object_info"
    )
    parser.add_argument(
        "--backend", metavar="NAME", help="run on this backend (native, runninghub, v2)"
    )


def add_result_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` and ``--overwrite``."""
    parser.add_argument("-o", "--out", metavar="DIR", help="save the outputs into DIR")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace files of the same name in DIR"
    )


class _Pending:
    requested = False


@contextmanager
def held_interrupt(out: Output) -> Iterator[_Pending]:
    """Hold a Ctrl-C until the block ends (a second one raises ``KeyboardInterrupt``)."""
    pending = _Pending()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if pending.requested:
            raise KeyboardInterrupt
        pending.requested = True
        out.warn("interrupted: the prompt is cancelled once queued (Ctrl-C again: abort now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield pending
    finally:
        signal.signal(signal.SIGINT, previous)


def cancel_prompt(ctx: Context, cancel: Callable[[], CancelResult], prompt_id: str) -> int:
    """Cancel the prompt (``cancel``: its handle's ``cancel``) exactly once, and report it on
    stderr (and as a record); returns 130.

    From here on Ctrl-C is ignored (the command is ending): a second Ctrl-C can neither
    send a second cancel nor cut this one short. :func:`witness.cli.app.main` restores the
    handler when it was called in-process.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    outcome: str = "unknown"
    try:
        outcome = cancel().outcome.value
    except WitnessError as exc:
        ctx.out.error(f"could not cancel prompt {prompt_id}: {exc}")
    ctx.out.warn(f"interrupted: prompt {prompt_id} cancelled on the server ({outcome})")
    ctx.out.record({"prompt_id": prompt_id, "status": "cancelled", "cancel": outcome})
    return EXIT_INTERRUPTED


def _run(ctx: Context, args: argparse.Namespace) -> int:
    kit = ctx.kit(executor=args.executor, validate=not args.no_validate, backend=args.backend)
    loaded = load(kit, args.workflow)
    params = params_for(kit, loaded.workflow, args)
    with held_interrupt(ctx.out) as pending:
        handle = kit.submit(loaded.workflow, params, timeout=args.timeout)
    ctx.out.info(f"queued prompt {handle.prompt_id}")
    if pending.requested:
        handle.release()
        return cancel_prompt(ctx, handle.cancel, handle.prompt_id)
    prompt = getattr(handle, "prompt", None) or loaded.workflow  # for the node titles
    progress = None if ctx.out.quiet else RunProgress(ctx.out.stderr, prompt)
    try:
        result = wait_for(handle, progress)
    except KeyboardInterrupt:
        if progress is not None:
            progress.close()
        return cancel_prompt(ctx, handle.cancel, handle.prompt_id)
    finally:
        if progress is not None:
            progress.close()
        handle.release()
    return report_result(ctx, result, args.out, overwrite=args.overwrite)


def wait_for(handle: Any, progress: RunProgress | None) -> ExecuteResult:
    """``handle.wait`` with progress, cancelling on timeout: a native handle takes the
    keywords; any other backend's (the ``RunHandle`` protocol) takes ``WaitCallbacks`` and
    cancels on timeout as its submit options say."""
    parameters = inspect.signature(handle.wait).parameters
    if "on_progress" in parameters:
        return cast("ExecuteResult", handle.wait(on_progress=progress, cancel_on_timeout=True))
    from witness.backends.base import WaitCallbacks  # noqa: PLC0415

    return cast("ExecuteResult", handle.wait(None, WaitCallbacks(on_progress=progress)))


def _file_record(item: Any, path: Path | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "var": item.var, "node_id": item.node_id, "kind": item.kind, "filename": item.filename,
        "subfolder": item.subfolder, "type": item.type, "url": item.url,
    }  # fmt: skip
    if path is not None:
        record["path"] = str(path)
    return record


def report_result(
    ctx: Context,
    result: ExecuteResult,
    out_dir: str | None,
    *,
    overwrite: bool = False,
    cancelled_on_timeout: bool = True,
) -> int:
    """Save (with ``--out``) and print a result; returns its exit status."""
    paths: list[Path] = []
    if out_dir and (result.files or result.texts):
        paths = result.save(out_dir, overwrite=overwrite, texts=True)
    saved_files = paths[: len(result.files)] if paths else []
    files = [
        _file_record(item, saved_files[i] if i < len(saved_files) else None)
        for i, item in enumerate(result.files)
    ]
    record: dict[str, Any] = {
        "prompt_id": result.prompt_id,
        "status": result.status,
        "duration": result.duration,
        "execution_time": result.execution_time,
        "files": files,
        "texts": result.texts_by_var,
        "saved": [str(p) for p in paths],
        "msg": result.msg,
        "error": result.error,
    }
    if paths:
        human: str | None = "\n".join(path_text(p) for p in paths)
    elif result.files:
        human = "\n".join(item.url for item in result.files)
    else:
        human = "\n".join(f"{var}: {t}" for var, ts in result.texts_by_var.items() for t in ts)
    ctx.out.record(record, human or None)
    took = f" in {result.duration:.2f} s" if result.duration is not None else ""
    if result.ok:
        ctx.out.info(f"prompt {result.prompt_id} completed{took}")
        return EXIT_OK
    detail = result.error.summary() if result.error else (result.msg or "no details")
    if result.status == "timeout":
        detail += " (cancelled on the server)" if cancelled_on_timeout else " (still queued)"
    ctx.out.error(f"prompt {result.prompt_id} {result.status}{took}: {detail}")
    return EXIT_TIMEOUT if result.status == "timeout" else EXIT_FAILED

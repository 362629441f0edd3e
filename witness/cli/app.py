"""The parser, the global options, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from witness._version import __version__
from witness.cli import (
    batch,
    convert,
    files,
    history,
    inspect,
    jobs,
    queue,
    run,
    system,
    validate,
)
from witness.cli.context import Context, known_secrets
from witness.cli.errors import EXIT_INTERRUPTED, EXIT_USAGE, CliError, exit_code_for
from witness.cli.output import Output
from witness.errors import WitnessError
from witness.utils.redact import redact_text

__all__ = ["EPILOG", "build_parser", "main"]

EPILOG = """\
server and credentials:
  --url defaults to $COMFYUI_API_URL (else http://127.0.0.1:8188); --api-key
  to $COMFYUI_API_KEY (sent as a Bearer token; never printed).

output:
  Results go to stdout, messages and progress to stderr. With --json every
  command prints one JSON object per line on stdout (errors as {"error": ...}).

exit status:
  0    ok
  1    the workflow failed or is invalid (or the server refused the request)
  2    usage: bad command line, param or setting
  3    the server cannot be reached, or refused the credentials
  124  --timeout passed (a running prompt is cancelled)
  130  interrupted by Ctrl-C (a running prompt is cancelled)

Run `witness COMMAND --help` for a command's options.
"""

_COMMANDS = (run, batch, jobs, inspect, validate, convert, queue, history, system, files)


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The global options; on subcommands with ``suppress`` (so that a value given before
    the command is not reset by the subcommand's defaults)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument("--url", metavar="URL", default=default(None), help="the ComfyUI server")
    group.add_argument(
        "--api-key", metavar="KEY", default=default(None), help="Bearer token for the server"
    )
    group.add_argument(
        "--json", action="store_true", default=default(False),
        help="one JSON object per line on stdout",
    )  # fmt: skip
    group.add_argument(
        "-q", "--quiet", action="store_true", default=default(False),
        help="no progress or messages (errors still show)",
    )  # fmt: skip
    group.add_argument(
        "-v", "--verbose", action="count", default=default(0),
        help="log to stderr (-vv: debug)",
    )  # fmt: skip
    group.add_argument(
        "--timeout", type=_seconds, metavar="S", default=default(None),
        help="give up after S seconds (exit 124; run and wait default to 600)",
    )  # fmt: skip


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``witness`` parser with every command."""
    parser = argparse.ArgumentParser(
        prog="witness",
        description="Run ComfyUI workflows and use every server endpoint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"witness {__version__}")
    _global_options(parser, suppress=False)
    parent = argparse.ArgumentParser(add_help=False)
    _global_options(parent, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in _COMMANDS:
        module.register(sub, parent)
    return parser


class _RedactingFilter(logging.Filter):
    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact_text(record.getMessage(), self.secrets)
            record.args = None
        return True


@contextlib.contextmanager
def _logging(verbose: int, secrets: Sequence[str]) -> Iterator[None]:
    if not verbose:
        # Retries and fallbacks are logged as warnings; the command reports what matters.
        quiet = logging.NullHandler()
        logging.getLogger("witness").addHandler(quiet)
        try:
            yield
        finally:
            logging.getLogger("witness").removeHandler(quiet)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(secrets))
    root = logging.getLogger("witness")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _deadline(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """The whole command's deadline (``--timeout``), except for batch (per job there)."""
    if args.timeout is None or not getattr(args, "whole_command_timeout", True):
        return contextlib.nullcontext()
    from witness.transport.deadline import Deadline  # noqa: PLC0415

    return Deadline.after(args.timeout).scope()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``witness`` command line.

    Args:
        argv: The arguments (without the program name); ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status (see :data:`EPILOG`).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    out = Output(json_mode=args.json, quiet=args.quiet, secrets=known_secrets(args))
    ctx = Context(args, out)
    in_main_thread = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if in_main_thread else None
    try:
        with _logging(args.verbose, out.secrets), _deadline(args):
            code: int = args.handler(ctx, args)
            return code
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except (CliError, WitnessError) as exc:
        code = exit_code_for(exc)
        out.error(str(exc))
        out.record(
            {"error": {"type": type(exc).__name__, "message": str(exc), "exit_code": code}}, None
        )
        return code
    finally:
        with contextlib.suppress(Exception, KeyboardInterrupt):
            ctx.close()
        if argv is not None and in_main_thread:
            # Called in-process: give back the caller's Ctrl-C (a cancel ignores it). As the
            # program itself, keep ignoring it while the interpreter exits.
            signal.signal(signal.SIGINT, sigint)

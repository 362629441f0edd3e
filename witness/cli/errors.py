"""The command line's own errors and the documented exit codes."""

from __future__ import annotations

from witness.errors import (
    ConfigError,
    ForbiddenError,
    InvalidArgumentError,
    ParamError,
    RequestTimeoutError,
    ResponseDecodeError,
    TransportError,
    UnauthorizedError,
    WaitTimeoutError,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CliError",
    "UsageError",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_FAILED = 1  # the workflow failed or is invalid, or the server refused the request
EXIT_USAGE = 2  # bad command line, bad parameter, bad setting
EXIT_UNREACHABLE = 3  # the server cannot be reached, or refused the credentials
EXIT_TIMEOUT = 124  # --timeout passed (as timeout(1) does)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class CliError(Exception):
    """A problem to report as ``witness: error: ...``.

    Attributes:
        code: The exit status.
    """

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    """A command line that cannot work (exit status 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an error that ended a command."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, WaitTimeoutError | RequestTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, TransportError | UnauthorizedError | ForbiddenError | ResponseDecodeError):
        return EXIT_UNREACHABLE
    if isinstance(exc, ConfigError | InvalidArgumentError | ParamError):
        return EXIT_USAGE
    return EXIT_FAILED

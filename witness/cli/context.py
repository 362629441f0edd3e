"""What every command handler gets: the parsed options, the output, and the client."""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from witness.cli.errors import UsageError
from witness.cli.output import Output

if TYPE_CHECKING:
    from witness.core.witness import Witness

__all__ = ["Context", "Handler", "Subparsers", "add_command"]

#: A command: ``handler(ctx, args) -> exit status``.
Handler = Callable[["Context", argparse.Namespace], int]
if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # argparse has no public name for it, and it is not generic at run time
    Subparsers = argparse._SubParsersAction

API_KEY_ENV = "COMFYUI_API_KEY"


class Context:
    """One command run: options, output, and a :class:`~witness.Witness` built on first use.

    Args:
        args: The parsed command line (global options included).
        out: Where the command prints.
    """

    def __init__(self, args: argparse.Namespace, out: Output) -> None:
        self.args = args
        self.out = out
        self._kit: Witness | None = None

    def kit(self, **options: Any) -> Witness:
        """The client for ``--url`` / ``--api-key`` / ``--timeout`` (built once).

        Args:
            **options: More :class:`~witness.Witness` arguments (``executor``, ``validate``,
                ``backend``); only the first call's apply.

        Raises:
            UsageError: ``backend`` is given but this witness has no backends to choose.
        """
        if self._kit is not None:
            return self._kit
        from witness.core.witness import Witness  # noqa: PLC0415 - keeps --help fast

        kwargs: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        if "backend" in kwargs and "backend" not in inspect.signature(Witness).parameters:
            raise UsageError("--backend is not supported by this version of witness")
        timeout = getattr(self.args, "timeout", None)
        if timeout is not None:
            kwargs["timeout"] = timeout
        self._kit = Witness(api_url=self.args.url, api_key=self.args.api_key, **kwargs)
        self.out.secrets = tuple({*self.out.secrets, *self._kit.settings.secrets})
        return self._kit

    def close(self) -> None:
        """Close the client (websocket thread and HTTP session), if one was built."""
        kit, self._kit = self._kit, None
        if kit is not None:
            kit.close()


def known_secrets(args: argparse.Namespace) -> tuple[str, ...]:
    """The secrets known before any client exists (``--api-key`` and its variable)."""
    return tuple(s for s in (args.api_key, os.environ.get(API_KEY_ENV)) if s)


def add_command(  # noqa: PLR0917 - reads like add_parser
    sub: Subparsers,
    name: str,
    parent: argparse.ArgumentParser,
    handler: Handler,
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add a subcommand that also accepts the global options after its name."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        parents=[parent],
        help=help,
        description=description or help[0].upper() + help[1:] + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser

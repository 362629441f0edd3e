"""The ``witness`` command line (``witness ...`` and ``python -m witness``).

One module per command group; :mod:`witness.cli.app` builds the parser, holds the global
options and maps errors to the documented exit codes (see :data:`witness.cli.app.EXIT_CODES`).
"""

from __future__ import annotations

from witness.cli.app import main

__all__ = ["main"]

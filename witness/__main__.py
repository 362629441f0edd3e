"""``python -m witness``: the witness command line (see :mod:`witness.cli`)."""

from __future__ import annotations

import sys

from witness.cli import main

if __name__ == "__main__":
    sys.exit(main())

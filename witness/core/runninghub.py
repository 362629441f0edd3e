"""Deprecated alias: the RunningHub path moved to :mod:`witness.runninghub`.

:class:`RunningHubExecutor` is now a thin wrapper over
:class:`~witness.runninghub.backend.RunningHubBackend`; import from :mod:`witness.runninghub`.
"""

from __future__ import annotations

import warnings

from witness.runninghub.backend import RunningHubProgress
from witness.runninghub.executor import RunningHubExecutor

__all__ = ["RunningHubExecutor", "RunningHubProgress"]

warnings.warn(
    f"{__name__} is deprecated; import from witness.runninghub",
    DeprecationWarning,
    stacklevel=2,
)

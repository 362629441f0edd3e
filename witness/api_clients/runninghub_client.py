"""Deprecated alias: the RunningHub client moved to :mod:`witness.runninghub`.

``from witness.api_clients.runninghub_client import RunningHubClient`` keeps working; import
from :mod:`witness.runninghub.client`, :mod:`witness.runninghub.types` and
:mod:`witness.runninghub.errors` instead.
"""

from __future__ import annotations

import warnings

from witness.runninghub.client import RunningHubClient
from witness.runninghub.errors import RUNNINGHUB_ERROR_CODES, error_for_code
from witness.runninghub.types import (
    ALLOWED_UPLOAD_EXTENSIONS,
    MAX_UPLOAD_BYTES,
    TASK_STATUSES,
    AccountStatus,
    FailedReason,
    NodeInfo,
    TaskInfo,
    TaskOutcome,
    TaskOutput,
    WebhookDetail,
    field_value,
)

__all__ = [
    "ALLOWED_UPLOAD_EXTENSIONS",
    "MAX_UPLOAD_BYTES",
    "RUNNINGHUB_ERROR_CODES",
    "TASK_STATUSES",
    "AccountStatus",
    "FailedReason",
    "NodeInfo",
    "RunningHubClient",
    "TaskInfo",
    "TaskOutcome",
    "TaskOutput",
    "WebhookDetail",
    "error_for_code",
    "field_value",
]

warnings.warn(
    f"{__name__} is deprecated; import from witness.runninghub",
    DeprecationWarning,
    stacklevel=2,
)

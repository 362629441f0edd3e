"""RunningHub (https://www.runninghub.ai) as a backend of witness.

- :mod:`witness.runninghub.settings`: :class:`RunningHubSettings` (key, URL, timeouts, retries);
- :mod:`witness.runninghub.client`: :class:`RunningHubClient`, every endpoint of the v1 OpenAPI,
  on the one transport (:mod:`witness.transport`);
- :mod:`witness.runninghub.types`: the typed answers (:class:`TaskInfo`, :class:`TaskOutcome`...);
- :mod:`witness.runninghub.errors`: RunningHub's codes → the typed errors of :mod:`witness.errors`;
- :mod:`witness.runninghub.backend`: :class:`RunningHubBackend`, the
  :class:`~witness.backends.base.Backend` the pipeline runs ``runninghub:<id>`` workflows on.
"""

from witness.runninghub.backend import (
    RunningHubBackend,
    RunningHubOptions,
    RunningHubProgress,
    RunningHubRunHandle,
    RunningHubUploader,
)
from witness.runninghub.client import RunningHubClient
from witness.runninghub.executor import RunningHubExecutor
from witness.runninghub.settings import RunningHubSettings
from witness.runninghub.types import (
    AccountStatus,
    FailedReason,
    NodeInfo,
    TaskInfo,
    TaskOutcome,
    TaskOutput,
    WebhookDetail,
)

__all__ = [
    "AccountStatus",
    "FailedReason",
    "NodeInfo",
    "RunningHubBackend",
    "RunningHubClient",
    "RunningHubExecutor",
    "RunningHubOptions",
    "RunningHubProgress",
    "RunningHubRunHandle",
    "RunningHubSettings",
    "RunningHubUploader",
    "TaskInfo",
    "TaskOutcome",
    "TaskOutput",
    "WebhookDetail",
]

"""Deprecated: :class:`RunningHubExecutor`, the one-call RunningHub path of the old facade.

It runs load → DSL → upload → submit → wait on a :class:`RunningHubBackend`; new code drives
the backend through the pipeline (``Witness(...).execute("runninghub:<id>", ...)``) or calls
the backend directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from witness.api_clients.types import CancelOutcome
from witness.backends.base import PreparedWorkflow, WaitCallbacks
from witness.core import dsl
from witness.core.results import ExecuteResult
from witness.core.tracking import ProgressUpdate
from witness.errors import WitnessError
from witness.runninghub.backend import RunningHubBackend, RunningHubOptions, RunningHubProgress
from witness.runninghub.client import RunningHubClient
from witness.runninghub.settings import RunningHubSettings
from witness.transport.deadline import Deadline

__all__ = ["RunningHubExecutor"]


class RunningHubExecutor:
    """Runs RunningHub workflows with the DSL and returns :class:`ExecuteResult` (deprecated:
    use :class:`~witness.runninghub.backend.RunningHubBackend`).

    Args:
        client: The RunningHub client.
        settings: Deadline and poll interval defaults; ``client.settings`` when omitted.
    """

    def __init__(
        self, client: RunningHubClient, settings: RunningHubSettings | None = None
    ) -> None:
        self.client = client
        self.settings = settings if settings is not None else client.settings
        self.backend = RunningHubBackend(self.settings, client=client)

    def execute(
        self,
        workflow_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_progress: Callable[[RunningHubProgress], None] | None = None,
        webhook_url: str | None = None,
        instance_type: str | None = None,
        cancel_event: threading.Event | None = None,
        cancel_on_timeout: bool = True,
        allow_unknown: bool = False,
        randomize_seeds: bool = False,
    ) -> ExecuteResult:
        """Run workflow ``workflow_id`` on RunningHub with ``params`` (see the backend).

        Args:
            workflow_id: The numeric RunningHub workflow id.
            params: DSL parameter name → value (``None`` values count as not given).
            timeout: Overall deadline in seconds; defaults to ``settings.timeout``.
            on_progress: Called when the wait starts, then after every status poll.
            webhook_url: Passed to RunningHub as ``webhookUrl``.
            instance_type: ``"default"`` or ``"plus"``; defaults to the settings'.
            cancel_event: Set it (from another thread) to cancel the task.
            cancel_on_timeout: Cancel the task when the deadline passes (default).
            allow_unknown: Ignore params the workflow does not declare (else an error).
            randomize_seeds: Send a random value for every literal seed input that no
                supplied param sets.

        Raises:
            UnknownParamError, MissingParamError, ParamError: Params do not fit (nothing sent).
            UploadError, RunningHubFileTooLargeError: A media value cannot be uploaded.
            RunningHubCreateUnconfirmedError: The create answer was lost; not resent.
            RunningHubError: Any other RunningHub error code.
        """
        limit = self.settings.timeout if timeout is None else float(timeout)
        if not limit > 0:
            raise WitnessError(f"timeout must be a positive number of seconds, got {timeout!r}")
        deadline = Deadline.after(limit)
        backend = self.backend
        workflow = backend.fetch_workflow(workflow_id, deadline)
        signature = dsl.parse(workflow)
        given = {k: v for k, v in (params or {}).items() if v is not None}
        prompt = dsl.apply(
            workflow,
            signature,
            given,
            allow_unknown=allow_unknown,
            randomize_seeds=randomize_seeds,
            resolve_media=backend.uploader(deadline),
        )
        prepared = PreparedWorkflow(
            prompt=prompt,
            signature=signature,
            origin=f"runninghub:{workflow_id}",
            workflow_id=workflow_id,
            params=given,
        )
        options = RunningHubOptions(
            webhook_url=webhook_url,
            instance_type=instance_type,
            cancel_on_timeout=cancel_on_timeout,
        )
        stop = cancel_event if cancel_event is not None else threading.Event()
        handle = backend._submit(prepared, deadline, options, stop)
        callback: Callable[[ProgressUpdate], None] | None = None
        if on_progress is not None:
            report = on_progress

            def callback(update: ProgressUpdate) -> None:
                if isinstance(update, RunningHubProgress):
                    report(update)

        return handle.wait(deadline, WaitCallbacks(on_progress=callback))

    def cancel(self, task_id: str) -> CancelOutcome | None:
        """Cancel a task an :meth:`execute` of this executor waits for (``None``: no such
        run here; cancel a task of another process with ``client.cancel``)."""
        with self.backend._lock:
            handle = self.backend._runs.get(task_id)
        if handle is None:
            return None
        return handle.cancel().outcome

    def running(self) -> list[str]:
        """Ids of the tasks this executor's ``execute`` calls are waiting for."""
        return self.backend.running()

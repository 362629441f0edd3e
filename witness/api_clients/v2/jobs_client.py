"""``/api/v2/jobs``: submit, list, read, cancel jobs and follow their events."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from witness.api_clients._common import check_text, unexpected_shape
from witness.api_clients.v2._common import V2_PREFIX, v2_errors, v2_json, v2_route
from witness.api_clients.v2.events import SSEParser, decode_event
from witness.api_clients.v2.types import (
    Job,
    JobPage,
    JobWorkflow,
    OutputEvent,
    StatusEvent,
    V2Event,
)
from witness.errors import InvalidArgumentError, TransportError, WitnessError
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient
from witness.transport.retry import RetryPolicy
from witness.utils.redact import redact_text, scrub_exception

__all__ = ["JobsClient"]

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
#: Read timeout of one event-stream read: well above the server's 15 s keepalive.
EVENTS_IDLE_TIMEOUT = 40.0
#: The first connection's silence limit; it doubles on each reopen up to ``idle_timeout``
#: (so a job that ends unseen right after the stream opened is noticed at once).
FIRST_IDLE_TIMEOUT = 0.25


def new_idempotency_key() -> str:
    """A fresh single-use ``Idempotency-Key``."""
    return str(uuid.uuid4())


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidArgumentError("idempotency_key", f"must be 1-{MAX_KEY_LENGTH} characters")
    if not key.isascii() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidArgumentError("idempotency_key", "must be printable ASCII (an HTTP header)")
    return key


def _scrub_error(exc: WitnessError, secret: str) -> None:
    """Remove ``secret`` from an error's message, fields and chained causes, in place."""
    scrub_exception(exc, [secret])
    for name in ("message", "server_message", "body", "details"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            setattr(exc, name, redact_text(value, [secret]))
        elif value is not None:
            setattr(exc, name, json.loads(redact_text(json.dumps(value), [secret])))


class JobsClient:
    """Jobs on a Comfy API v2 deployment (Comfy Cloud, serverless, or ``comfy-api-proxy``).

    Args:
        http: The shared HTTP client.
        retry: How a submit is resent (never arrived, or ``429 queue_full`` after its
            ``Retry-After``) and a broken event stream reopened (bounded, with backoff, never
            past the call's deadline); default: the HTTP client's policy.

    Example:
        >>> job = JobsClient(http).submit(prompt)
        >>> for event in JobsClient(http).events(job.id, deadline=Deadline.after(60)):
        ...     print(event)
    """

    def __init__(self, http: HttpClient, *, retry: RetryPolicy | None = None) -> None:
        self._http = http
        self._retry = retry if retry is not None else http.retry_policy
        # A submit is resent (same key) when it never arrived, or on 429 (queue_full: the job
        # was not created and the key released). A 5xx keeps the key claimed on the server:
        # a resend would only be refused as a reuse, so it is not retried.
        self._submit_retry = replace(self._retry, statuses=frozenset({429}))

    # -- submit ------------------------------------------------------------------------------

    def submit(
        self,
        workflow: Mapping[str, Any],
        *,
        metadata: str | None = None,
        priority: int | None = None,
        extra_data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        deadline: Deadline | None = None,
    ) -> Job:
        """Submit an API-format workflow.

        Route: ``POST /api/v2/jobs``.

        Every call sends an ``Idempotency-Key`` (a new one unless given). The key is
        single-use on the server, so the request is safe to resend with the *same* key: the
        transport resends it when it never arrived or was dropped, and after the
        ``Retry-After`` of a ``429 queue_full`` (the job was not created, the key released).
        A 5xx is not resent (the server keeps the key claimed). A resend answered with
        ``idempotency_key_reuse`` means an earlier attempt of this very submit arrived; it is
        raised, never resubmitted under a new key.

        Args:
            workflow: The API-format graph (node id → node); ``core/ASSET`` references where
                files go.
            metadata: An opaque label (≤ 1 KiB) stored with the job.
            priority: An advisory priority.
            extra_data: ``{"api_key_comfy_org": ...}`` for partner nodes (never logged, and
                removed from the error if the server echoes it).
            idempotency_key: The key to use (printable ASCII, 1-255 characters).
            deadline: The call's deadline.

        Returns:
            The job (status ``queued``).

        Raises:
            V2InvalidWorkflowError: The workflow was refused (``node_errors`` parsed).
            V2WorkflowFormatUIError: A UI-format graph.
            V2MissingAssetError: A ``core/ASSET`` reference names no asset.
            V2IdempotencyKeyReuseError: The key was used before.
            V2QueueFullError: Still full after the retries.
            TransportError: The deployment could not be reached.
        """
        if not isinstance(workflow, Mapping) or not workflow:
            raise InvalidArgumentError("workflow", "must be a non-empty API-format mapping")
        key = _check_key(idempotency_key) if idempotency_key is not None else None
        key = key or new_idempotency_key()
        body: dict[str, Any] = {"workflow": dict(workflow)}
        if metadata is not None:
            body["metadata"] = metadata
        if priority is not None:
            body["priority"] = priority
        if extra_data:
            body["extra_data"] = dict(extra_data)
        try:
            data = v2_json(
                self._http,
                "POST",
                V2_PREFIX + "/jobs",
                json=body,
                headers={"Idempotency-Key": key},
                idempotent=True,  # with its key, a resend cannot create a second job
                retry=self._submit_retry,
                deadline=deadline,
            )
        except WitnessError as exc:
            partner_key = (extra_data or {}).get("api_key_comfy_org")
            if isinstance(partner_key, str) and partner_key:
                _scrub_error(exc, partner_key)  # a server may echo the body it refused
            raise
        job = Job.from_json(data)
        logger.debug("submitted job %s", job.id)
        return job

    # -- read --------------------------------------------------------------------------------

    def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        deadline: Deadline | None = None,
    ) -> JobPage:
        """One page of jobs, newest first.

        Route: ``GET /api/v2/jobs?status=&limit=&cursor=``.

        Args:
            status: Only jobs in this status (or these statuses).
            limit: Page size (the proxy takes 1-100).
            cursor: The ``next_cursor`` of the previous page.
            deadline: The call's deadline.
        """
        statuses = [status] if isinstance(status, str) else status
        params: dict[str, Any] = {
            "status": ",".join(statuses) if statuses else None,
            "limit": limit,
            "cursor": cursor,
        }
        path = V2_PREFIX + "/jobs"
        data = v2_json(self._http, "GET", path, params=params, deadline=deadline)
        raw_jobs = data.get("jobs")
        if not isinstance(raw_jobs, list):
            raise unexpected_shape(self._http, "GET", path, data)
        next_cursor = data.get("next_cursor")
        return JobPage(
            jobs=tuple(Job.from_json(item) for item in raw_jobs),
            next_cursor=next_cursor if isinstance(next_cursor, str) and next_cursor else None,
            truncated=data.get("truncated") is True,
        )

    def pages(
        self,
        *,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        deadline: Deadline | None = None,
    ) -> Iterator[JobPage]:
        """Every page, following ``next_cursor`` until the last page.

        Raises:
            ResponseDecodeError: The server handed back a cursor it had already given (it
                would loop forever).
        """
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list(status=status, limit=limit, cursor=cursor, deadline=deadline)
            yield page
            if page.next_cursor is None:
                return
            if page.next_cursor in seen:
                raise unexpected_shape(
                    self._http,
                    "GET",
                    V2_PREFIX + "/jobs",
                    f"next_cursor {page.next_cursor!r} was already given (a loop)",
                )
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    def iter(
        self,
        *,
        status: str | Sequence[str] | None = None,
        limit: int | None = None,
        deadline: Deadline | None = None,
    ) -> Iterator[Job]:
        """Every job, page after page (see :meth:`pages`)."""
        for page in self.pages(status=status, limit=limit, deadline=deadline):
            yield from page.jobs

    def get(self, job_id: str, *, deadline: Deadline | None = None) -> Job:
        """One job: the authoritative status, progress and outputs.

        Route: ``GET /api/v2/jobs/{id}``.

        Raises:
            V2NotFoundError: No such job.
        """
        check_text(job_id, "job_id")
        return Job.from_json(
            v2_json(self._http, "GET", v2_route("/jobs/{}", job_id), deadline=deadline)
        )

    def workflow(self, job_id: str, *, deadline: Deadline | None = None) -> JobWorkflow:
        """The graph the job ran (``core/ASSET`` references resolved).

        Route: ``GET /api/v2/jobs/{id}/workflow``.
        """
        check_text(job_id, "job_id")
        path = v2_route("/jobs/{}/workflow", job_id)
        data = v2_json(self._http, "GET", path, deadline=deadline)
        graph = data.get("workflow")
        if not isinstance(graph, Mapping):
            raise unexpected_shape(self._http, "GET", path, data)
        return JobWorkflow(workflow=dict(graph), format=str(data.get("format") or "api"))

    def cancel(self, job_id: str, *, deadline: Deadline | None = None) -> Job:
        """Ask for the job to stop (dequeued if queued, interrupted if running).

        Route: ``POST /api/v2/jobs/{id}/cancel``. Safe to repeat (retried like GET).

        Returns:
            The job as the cancel left it (``canceling`` until the interrupt lands).
        """
        check_text(job_id, "job_id")
        path = v2_route("/jobs/{}/cancel", job_id)
        return Job.from_json(v2_json(self._http, "POST", path, idempotent=True, deadline=deadline))

    # -- events ------------------------------------------------------------------------------

    def events(
        self,
        job_id: str,
        *,
        deadline: Deadline | None = None,
        reconnects: int | None = None,
        idle_timeout: float = EVENTS_IDLE_TIMEOUT,
    ) -> Iterator[V2Event]:
        """The job's live events until it ends, as a blocking iterator.

        Route: ``GET /api/v2/jobs/{id}/events`` (server-sent events: ``status``,
        ``progress``, ``preview``, ``log``, ``output``).

        The first event is always a ``status`` snapshot; the iteration ends when the server
        closes the stream after the terminal ``status`` (and the ``output`` events that follow
        it). A stream that ends early or breaks is reconnected (``Last-Event-ID``
        sent when the server gave ids; the proxy sends none, so a reconnect starts from a
        fresh snapshot), and so is one silent for ``idle_timeout``; before each reconnect
        ``GET /api/v2/jobs/{id}`` is asked, and supplies the final ``status`` if the job ended
        meanwhile (comfy-api-proxy misses the end of a job that finishes while it opens its
        ComfyUI websocket, until its 15 s keepalive). The iteration also ends, without a
        terminal event, when ``deadline`` passes (a blocked read wakes at the deadline).

        Args:
            job_id: The job.
            deadline: When to stop waiting.
            reconnects: Consecutive times the deployment may be unreachable (stream and job
                read both failing; default: the retry policy's ``retries``); then the last
                error is raised.
            idle_timeout: Longest silence on one connection before the job is read and the
                stream reopened (the first connection waits 0.25 s, each reopen doubles it).

        Raises:
            V2NotFoundError: No such job.
            TransportError: The deployment stayed unreachable through the reconnects.
        """
        check_text(job_id, "job_id")
        deadline = deadline if deadline is not None else Deadline.never()
        limit = self._retry.retries if reconnects is None else reconnects
        path = v2_route("/jobs/{}/events", job_id)
        parser = SSEParser()
        failures = 0
        ended = False
        seen: set[str] = set()
        idle = min(FIRST_IDLE_TIMEOUT, idle_timeout)
        while not deadline.expired():
            headers = {"Accept": "text/event-stream"}
            if parser.last_event_id:
                headers["Last-Event-ID"] = parser.last_event_id
            try:
                with v2_errors():
                    for chunk in self._http.iter_bytes(
                        path,
                        chunk_size=1 << 16,
                        headers=headers,
                        timeout=(self._http.settings.connect_timeout, idle),
                        deadline=deadline,
                    ):
                        for name, data in parser.feed(chunk):
                            event = decode_event(name, data)
                            failures = 0
                            ended = ended or (isinstance(event, StatusEvent) and event.terminal)
                            if isinstance(event, OutputEvent):
                                seen.add(event.output.id)
                            yield event
                        if deadline.expired():
                            return  # a busy stream: reads never time out
                if ended:
                    return  # the server closed the stream after the end (and its outputs)
            except TransportError as exc:
                if deadline.expired() or ended:
                    return
                logger.info("event stream of job %s ended (%s); checking the job", job_id, exc)
            # The stream ended, broke or stayed silent before the job ended: ask the job.
            try:
                job = self.get(job_id, deadline=deadline)
            except TransportError:
                if deadline.expired():
                    return
                failures += 1
                if failures > limit:
                    raise
                job = None
            else:
                failures = 0  # reachable: the stream was only idle or dropped
            if job is not None and job.terminal:
                # As the stream ends a job: its status, then the outputs not yet given.
                yield StatusEvent(job.status, job.queue_position)
                for output in job.outputs:
                    if output.id not in seen:
                        yield OutputEvent(output)
                return
            parser = SSEParser(last_event_id=parser.last_event_id)
            idle = min(idle * 2, idle_timeout)
            if failures and self._retry.sleep(failures - 1, deadline) is None:
                return

"""``/queue``, ``/interrupt``, ``/free`` and cancelling one prompt."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from witness.api_clients._common import (
    JSON_HEADERS,
    as_mapping,
    check_ids,
    check_text,
    encode_json,
    unexpected_shape,
)
from witness.api_clients.types import CancelOutcome, CancelResult, QueueState
from witness.errors import ApiError, InvalidArgumentError, NotFoundError
from witness.transport.http import HttpClient
from witness.utils.paths import route

__all__ = ["QueueClient"]

logger = logging.getLogger(__name__)

# HTTP statuses that mean "this server has no such route" for a POST.
_NO_ROUTE = (404, 405)


class QueueClient:
    """Inspect and control the execution queue.

    Args:
        http: The shared HTTP client.

    Example:
        >>> queue = QueueClient(http)
        >>> state = queue.get()
        >>> queue.cancel(state.pending[0].prompt_id).outcome
        <CancelOutcome.DEQUEUED: 'dequeued'>
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http
        self._lock = threading.Lock()
        self._jobs_cancel: bool | None = None  # None: not probed yet

    def get(self) -> QueueState:
        """The running and pending prompts.

        Route: ``GET /queue``.

        Returns:
            A snapshot; ``pending`` is sorted by queue number (run order).

        Raises:
            ResponseDecodeError: The answer is not a JSON object.
            TransportError: The server could not be reached.
        """
        data = as_mapping(self._http, self._http.request_json("GET", "/queue"), "GET", "/queue")
        return QueueState.from_json(data)

    def delete(self, prompt_ids: str | Iterable[str]) -> None:
        """Remove pending prompts. A running prompt is not touched (see :meth:`cancel`);
        unknown ids are ignored by the server.

        Route: ``POST /queue`` ``{"delete": [...]}``.

        Args:
            prompt_ids: One id or several.

        Raises:
            InvalidArgumentError: No id, or an empty one.
            TransportError: The server could not be reached.
        """
        ids = check_ids(prompt_ids, "prompt_ids")
        self._post("/queue", {"delete": ids}, idempotent=True)

    def clear_pending(self) -> None:
        """Remove EVERY pending prompt, of every client of the server. The running prompt
        keeps running (follow with :meth:`interrupt_running` to stop it too).

        Route: ``POST /queue`` ``{"clear": true}``.

        Raises:
            TransportError: The server could not be reached.
        """
        self._post("/queue", {"clear": True}, idempotent=True)

    def interrupt(self, prompt_id: str) -> None:
        """Interrupt one prompt if it is the one running; otherwise the server does nothing.

        The server's answer does not say whether anything was interrupted, and pending
        prompts are never removed: use :meth:`cancel` for "stop this prompt, whatever its
        state". Not retried (a late retry could hit the next prompt on old servers).

        Route: ``POST /interrupt`` ``{"prompt_id": ...}``.

        Args:
            prompt_id: The prompt to interrupt.

        Raises:
            InvalidArgumentError: ``prompt_id`` is empty.
            TransportError: The server could not be reached.
        """
        check_text(prompt_id, "prompt_id")
        self._post("/interrupt", {"prompt_id": prompt_id}, idempotent=False)

    def interrupt_running(self) -> None:
        """Interrupt WHATEVER prompt is running, whoever submitted it (global).

        Route: ``POST /interrupt`` (no body).

        Raises:
            TransportError: The server could not be reached.
        """
        self._post("/interrupt", {}, idempotent=False)

    def free(self, *, unload_models: bool = True, free_memory: bool = False) -> None:
        """Ask the server to unload models and/or free memory (after the current prompt).

        ``free_memory`` also resets the executor caches: the next run re-executes every node.

        Route: ``POST /free``.

        Args:
            unload_models: Unload the loaded models.
            free_memory: Free memory and reset caches (implies unloading models).

        Raises:
            InvalidArgumentError: Both flags are false (the call would do nothing).
            TransportError: The server could not be reached.
        """
        if not unload_models and not free_memory:
            raise InvalidArgumentError("unload_models", "and free_memory are both false")
        body = {"unload_models": bool(unload_models), "free_memory": bool(free_memory)}
        self._post("/free", body, idempotent=True)

    def cancel(self, prompt_id: str) -> CancelResult:
        """Stop one prompt, whether it is pending or running.

        Uses ``POST /api/jobs/{id}/cancel`` when the server offers it (ComfyUI v0.26+;
        atomic on the server). Otherwise: a pending prompt is deleted from the queue; a
        running one gets ``POST /interrupt`` with its id; one that left the queue is looked
        up in the history. A prompt that starts between the queue snapshot and the delete
        is noticed and interrupted.

        Routes: ``GET /queue``, then ``POST /api/jobs/{id}/cancel`` or ``POST /queue``
        ``{"delete"}`` / ``POST /interrupt`` ``{"prompt_id"}``, and ``GET /history/{id}``
        when the prompt is not queued.

        Args:
            prompt_id: The prompt.

        Returns:
            What happened: ``dequeued``, ``interrupted``, ``finished`` or ``not_found``.
            ``interrupted`` means an interrupt aimed at the prompt was sent while it ran; it
            takes effect at the next node or progress update.

        Raises:
            InvalidArgumentError: ``prompt_id`` is empty.
            TransportError: The server could not be reached.
        """
        check_text(prompt_id, "prompt_id")
        state = self.get().status_of(prompt_id)
        cancelled = self._jobs_api_cancel(prompt_id)
        if cancelled is not None:
            if cancelled:
                outcome = (
                    CancelOutcome.INTERRUPTED if state == "running" else CancelOutcome.DEQUEUED
                )
                return CancelResult(prompt_id, outcome, "jobs_api")
            return CancelResult(prompt_id, self._finished_or_unknown(prompt_id), "jobs_api")
        if state == "pending":
            self.delete(prompt_id)
            # It may have started between the snapshot and the delete.
            state = self.get().status_of(prompt_id)
            if state is None:
                return CancelResult(prompt_id, CancelOutcome.DEQUEUED, "queue_api")
        if state == "running":
            self.interrupt(prompt_id)
            return CancelResult(prompt_id, CancelOutcome.INTERRUPTED, "queue_api")
        if state == "pending":  # still pending after a delete: should not happen
            logger.warning("prompt %s is still pending after POST /queue delete", prompt_id)
            self.delete(prompt_id)
            return CancelResult(prompt_id, CancelOutcome.DEQUEUED, "queue_api")
        return CancelResult(prompt_id, self._finished_or_unknown(prompt_id), "queue_api")

    # -- internals -----------------------------------------------------------------------

    def _jobs_api_cancel(self, prompt_id: str) -> bool | None:
        """``POST /api/jobs/{id}/cancel``: the server's ``cancelled``, or ``None`` when the
        server has no such route (remembered for this client)."""
        if self._jobs_cancel is False:
            return None
        path = route("/jobs/{}/cancel", prompt_id)
        try:
            data = self._http.request_json("POST", path, idempotent=True)
        except ApiError as exc:
            # The jobs API answers unknown ids with 200 {"cancelled": false}; a bare 404/405
            # means the route itself is missing (405: the static root catches the path).
            if isinstance(exc.body, Mapping) and "error" in exc.body:
                if isinstance(exc, NotFoundError):
                    return False
                raise
            if exc.status in _NO_ROUTE:
                self._no_jobs_cancel(exc.status)
                return None
            raise
        with self._lock:
            self._jobs_cancel = True
        if not isinstance(data, Mapping) or not isinstance(data.get("cancelled"), bool):
            raise unexpected_shape(self._http, "POST", path, data)
        return bool(data["cancelled"])

    def _no_jobs_cancel(self, status: int) -> None:
        with self._lock:
            if self._jobs_cancel is None:
                logger.debug(
                    "POST /api/jobs/{id}/cancel answered %s: using /queue and /interrupt", status
                )
            self._jobs_cancel = False

    def _finished_or_unknown(self, prompt_id: str) -> CancelOutcome:
        path = route("/history/{}", prompt_id)
        data = self._http.request_json("GET", path)
        if isinstance(data, Mapping) and prompt_id in data:
            return CancelOutcome.FINISHED
        return CancelOutcome.NOT_FOUND

    def _post(self, path: str, body: dict[str, Any], *, idempotent: bool) -> None:
        self._http.request(
            "POST",
            path,
            data=encode_json(body, "body"),
            headers=JSON_HEADERS,
            idempotent=idempotent,
        ).close()

"""``/prompt``: submit a prompt, read the queue length."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from witness.api_clients._common import (
    JSON_HEADERS,
    check_choice,
    check_number,
    check_text,
    check_uuid,
    encode_json,
    unexpected_shape,
)
from witness.api_clients.types import PromptResponse
from witness.errors import (
    BadRequestError,
    InvalidArgumentError,
    PromptValidationError,
)
from witness.transport.http import HttpClient, Timeout

__all__ = ["PREVIEW_METHODS", "PromptClient"]

logger = logging.getLogger(__name__)

PREVIEW_METHODS = frozenset({"none", "auto", "latent2rgb", "taesd", "default"})


class PromptClient:
    """Submit prompts (``POST /prompt``) and read the queue length (``GET /prompt``).

    Args:
        http: The shared HTTP client.

    Example:
        >>> prompts = PromptClient(http)
        >>> queued = prompts.submit({"1": {"class_type": "EmptyImage", "inputs": {}}, ...})
        >>> queued.prompt_id
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def queue_remaining(self) -> int:
        """How many prompts are running or pending.

        Route: ``GET /prompt``.

        Returns:
            ``exec_info.queue_remaining``.

        Raises:
            ResponseDecodeError: The answer lacks ``exec_info.queue_remaining``.
            TransportError: The server could not be reached.
        """
        data = self._http.request_json("GET", "/prompt")
        exec_info = data.get("exec_info") if isinstance(data, Mapping) else None
        value = exec_info.get("queue_remaining") if isinstance(exec_info, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise unexpected_shape(self._http, "GET", "/prompt", data)
        return value

    def submit(
        self,
        prompt: Mapping[str, Any],
        *,
        client_id: str | None = None,
        prompt_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        extra_pnginfo: Mapping[str, Any] | None = None,
        api_key_comfy_org: str | None = None,
        auth_token_comfy_org: str | None = None,
        preview_method: str | None = None,
        number: float | None = None,
        front: bool = False,
        partial_execution_targets: Iterable[str] | None = None,
        timeout: Timeout | None = None,
    ) -> PromptResponse:
        """Queue a prompt (API-format graph). Never retried: a retry could run it twice.

        Route: ``POST /prompt``.

        Args:
            prompt: ``{node_id: {"class_type", "inputs", "_meta"?}}``.
            client_id: The websocket ``clientId`` that should receive this prompt's events.
                Without one the server sends no execution events to anybody.
            prompt_id: A canonical lowercase UUID string; generated with ``uuid4`` when
                omitted (ComfyUI v0.25+ rejects other forms, and reused ids overwrite history).
            extra_data: Further ``extra_data`` fields, sent as given. A key that is also
                given as its own argument must have the same value.
            extra_pnginfo: Embedded into saved image metadata (``{"workflow": {...}}``).
            api_key_comfy_org: Key for Comfy Org API nodes; the server never echoes it.
            auth_token_comfy_org: Auth token for Comfy Org API nodes; never echoed.
            preview_method: Per-prompt live preview override (``none``, ``auto``,
                ``latent2rgb``, ``taesd``, ``default``; ComfyUI v0.5.0+, ignored before).
            number: Explicit queue priority (lower runs first).
            front: Put the prompt at the front of the queue (not with ``number``).
            partial_execution_targets: Run only these output node ids.
            timeout: Request timeout override, seconds or ``(connect, read)``.

        Returns:
            The queued prompt's id and number. ``node_errors`` is non-empty when some
            outputs failed validation and were dropped (also logged as a warning).

        Raises:
            InvalidArgumentError: An argument is malformed (nothing was sent).
            PromptValidationError: The server rejected the prompt (400), with parsed
                per-node problems.
            PayloadTooLargeError: The body exceeds the server's upload limit (413).
            ServerError: The server failed (5xx).
            TransportError: The server could not be reached or did not answer in time.
        """
        if not isinstance(prompt, Mapping) or not prompt:
            raise InvalidArgumentError("prompt", "must be a non-empty mapping of node ids")
        body: dict[str, Any] = {"prompt": dict(prompt)}
        body["prompt_id"] = (
            str(uuid.uuid4()) if prompt_id is None else check_uuid(prompt_id, "prompt_id")
        )
        data = self._extra_data(
            extra_data,
            client_id=client_id,
            extra_pnginfo=extra_pnginfo,
            api_key_comfy_org=api_key_comfy_org,
            auth_token_comfy_org=auth_token_comfy_org,
            preview_method=preview_method,
        )
        if client_id is not None:
            body["client_id"] = client_id
        if data:
            body["extra_data"] = data
        if number is not None:
            if front:
                raise InvalidArgumentError("front", "cannot be combined with number")
            body["number"] = check_number(number, "number")
        elif front:
            body["front"] = True
        if partial_execution_targets is not None:
            if isinstance(partial_execution_targets, str):
                raise InvalidArgumentError(
                    "partial_execution_targets", "must be a list of node ids, not a string"
                )
            targets = [str(t) for t in partial_execution_targets]
            if not targets or not all(targets):
                raise InvalidArgumentError(
                    "partial_execution_targets", "must list at least one non-empty node id"
                )
            body["partial_execution_targets"] = targets
        payload = encode_json(body, "prompt")
        try:
            answer = self._http.request_json(
                "POST",
                "/prompt",
                data=payload,
                headers=JSON_HEADERS,
                timeout=timeout,
                idempotent=False,
            )
        except BadRequestError as exc:
            raise PromptValidationError(
                status=exc.status, method=exc.method, url=exc.url, body=exc.body, prompt=prompt
            ) from exc
        if not isinstance(answer, Mapping) or not answer.get("prompt_id"):
            raise unexpected_shape(self._http, "POST", "/prompt", answer)
        response = PromptResponse.from_json(answer, prompt)
        if response.node_errors:
            logger.warning(
                "prompt %s was queued, but outputs %s were dropped: %s",
                response.prompt_id,
                ", ".join(response.dropped_outputs) or "?",
                "; ".join(str(e) for e in response.node_errors),
            )
        return response

    @staticmethod
    def _extra_data(extra_data: Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
        """Merge ``extra_data`` with the explicit fields, refusing contradictions."""
        if extra_data is not None and not isinstance(extra_data, Mapping):
            raise InvalidArgumentError("extra_data", "must be a mapping")
        merged = dict(extra_data or {})
        for name, value in fields.items():
            if value is None:
                continue
            if name == "extra_pnginfo" and not isinstance(value, Mapping):
                raise InvalidArgumentError(name, "must be a mapping")
            if name == "preview_method":
                check_choice(value, name, PREVIEW_METHODS)
            elif name != "extra_pnginfo":
                check_text(value, name)
            if name in merged and merged[name] != value:
                raise InvalidArgumentError(name, "differs from the value given in extra_data")
            merged[name] = dict(value) if isinstance(value, Mapping) else value
        return merged

"""Client for the RunningHub v1 workflow OpenAPI (``https://www.runninghub.ai``).

Every RunningHub call is a ``POST`` answered with HTTP 200 and a ``{code, msg, data}`` envelope;
``code`` 0 means success, anything else is mapped to a typed :class:`RunningHubError` subclass
that keeps the numeric code (see :data:`~witness.runninghub.errors.RUNNINGHUB_ERROR_CODES`).

Retry policy (the one :class:`~witness.transport.retry.RetryPolicy`, from the settings):

* Only transient conditions are retried, at most ``retry_count`` times with backoff:
  421 queue full (creates only), 500 / HTTP 5xx and connection failures (reads only), and
  failures where the request was never sent (``TransportError.sent`` is false; all calls).
* Calls that create something (``create``, ``ai-app/run``, ``retryWebhook``) are never resent
  once the request may have reached the server: a dropped connection, a read timeout or a 5xx
  after sending raises :class:`RunningHubCreateUnconfirmedError` (for task creation) instead,
  so a task is never created twice.

The API key travels in the body (``apiKey``; ``apikey`` for ``accountStatus``) and as
``Authorization: Bearer``; it never appears in messages, logs or reprs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from witness.config.settings import Settings
from witness.errors import (
    ApiError,
    InvalidArgumentError,
    NotFoundError,
    ResponseDecodeError,
    RunningHubBadPathError,
    RunningHubCreateUnconfirmedError,
    RunningHubError,
    RunningHubFileTooLargeError,
    RunningHubResponseError,
    RunningHubServerError,
    RunningHubTransportError,
    RunningHubUploadError,
    ServerError,
    TransportError,
)
from witness.runninghub.errors import error_for_code
from witness.runninghub.settings import RunningHubSettings
from witness.runninghub.types import (
    _SNIPPET,
    ALLOWED_UPLOAD_EXTENSIONS,
    MAX_UPLOAD_BYTES,
    AccountStatus,
    NodeInfo,
    TaskInfo,
    TaskOutcome,
    UploadSource,
    WebhookDetail,
    _decimal,
    _failed_reason,
    _opt_str,
    _task_info,
    _task_output,
)
from witness.transport.http import HttpClient, OwnOriginSession
from witness.transport.retry import RetryPolicy
from witness.utils.redact import redact_text

__all__ = ["RunningHubClient"]

logger = logging.getLogger(__name__)


# Endpoints (all POST, relative to the base URL, no /api prefix added by witness).
CREATE: Final = "/task/openapi/create"
AI_APP_RUN: Final = "/task/openapi/ai-app/run"
STATUS: Final = "/task/openapi/status"
OUTPUTS: Final = "/task/openapi/outputs"
CANCEL: Final = "/task/openapi/cancel"
UPLOAD: Final = "/task/openapi/upload"
ACCOUNT_STATUS: Final = "/uc/openapi/accountStatus"
WORKFLOW_JSON: Final = "/api/openapi/getJsonApiFormat"
WEBHOOK_DETAIL: Final = "/task/openapi/getWebhookDetail"
RETRY_WEBHOOK: Final = "/task/openapi/retryWebhook"

_CREATING: Final = frozenset({CREATE, AI_APP_RUN})
#: HTTP statuses a read is retried on (429 and every 5xx).
_RETRY_STATUSES: Final = frozenset({429, *range(500, 600)})
_IDEMPOTENT: Final = frozenset(
    {STATUS, OUTPUTS, CANCEL, UPLOAD, ACCOUNT_STATUS, WORKFLOW_JSON, WEBHOOK_DETAIL}
)


class RunningHubClient:
    """Every endpoint of the RunningHub v1 workflow OpenAPI.

    Args:
        settings: Key, base URL, timeouts, retry policy.
        http: The transport to use. ``None`` builds one. Every call passes RunningHub's
            retry policy (from the settings) explicitly. A given client is not closed by
            :meth:`close`.

    Example:
        >>> client = RunningHubClient(RunningHubSettings.from_env())
        >>> task = client.create_task("1850925505116598274", [NodeInfo("6", "text", "a cat")])
        >>> client.task_status(task.task_id)
        'QUEUED'
    """

    def __init__(self, settings: RunningHubSettings, *, http: HttpClient | None = None) -> None:
        self.settings = settings
        self._owns_http = http is None
        if http is None:
            # The key travels in every body: a redirect (a 307 keeps the body) could carry it
            # to another origin, and RunningHub's API never redirects; so none is followed.
            session = OwnOriginSession()
            session.max_redirects = 0
            http = HttpClient(self.transport_settings(settings), session=session)
        self.http = http
        base = settings.retry_policy
        self._other_policy = replace(base, retry_unsent=True)
        self._create_policy = replace(base, retry_unsent=True, retry_if=_queue_full)
        self._read_policy = replace(
            base,
            statuses=_RETRY_STATUSES,
            retry_unsent=True,
            retry_read_timeouts=True,
            retry_if=_unknown_error,
        )

    @staticmethod
    def transport_settings(settings: RunningHubSettings) -> Settings:
        """The :class:`Settings` of the HttpClient this client builds for ``settings``."""
        return Settings(
            api_url=settings.base_url,
            api_key=settings.api_key,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.request_timeout,
            retries=settings.retry_count,
            retry_backoff=settings.retry_backoff,
        )

    def __repr__(self) -> str:
        return f"RunningHubClient(base_url={self.settings.base_url!r})"

    def close(self) -> None:
        """Close the transport if this client created it."""
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> RunningHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workflows -------------------------------------------------------------------------

    def get_workflow_api_format(self, workflow_id: str) -> dict[str, Any]:
        """``POST /api/openapi/getJsonApiFormat``: the workflow in ComfyUI API format.

        Raises:
            RunningHubWorkflowNotFoundError: 380, no such workflow.
            RunningHubResponseError: ``data.prompt`` is not an API-format JSON object.
        """
        workflow_id = _check_id("workflow_id", workflow_id)
        data = self._call(WORKFLOW_JSON, {"workflowId": workflow_id})
        prompt = data.get("prompt") if isinstance(data, Mapping) else None
        if isinstance(prompt, str):
            try:
                prompt = json.loads(prompt)
            except ValueError:
                raise RunningHubResponseError(
                    f"POST {WORKFLOW_JSON}: data.prompt of workflow {workflow_id} is not JSON",
                    endpoint=WORKFLOW_JSON,
                    body=self._snippet(prompt),
                ) from None
        if not isinstance(prompt, dict):
            raise RunningHubResponseError(
                f"POST {WORKFLOW_JSON}: no API-format workflow in the answer for {workflow_id}",
                endpoint=WORKFLOW_JSON,
                body=self._snippet(json.dumps(data)[:_SNIPPET]),
            )
        return prompt

    # -- uploads ---------------------------------------------------------------------------

    def upload(
        self, file: UploadSource, file_type: str = "input", filename: str | None = None
    ) -> str:
        """``POST /task/openapi/upload`` (multipart): store a media file for a task.

        The 30 MB limit and the file type are checked before anything is sent. Uploads are
        content-addressed (``api/<sha256>.<ext>``), so a retried upload is harmless.

        Args:
            file: A path, the bytes, or a binary file object.
            file_type: The ``fileType`` form field (the official sample uses ``input``).
            filename: The name sent (its extension decides the type); defaults to the path's
                or file object's name. Required for bytes.

        Returns:
            RunningHub's ``fileName`` (e.g. ``api/3f…9a.png``): the value for a LoadImage
            ``image`` field in the nodeInfoList.

        Raises:
            RunningHubFileTooLargeError: Over 30 MB (before sending), or 809.
            RunningHubUploadError: A type RunningHub does not take, or 808.
            InvalidArgumentError: No file name, or a path that is not a file.
        """
        content, name = self._read_upload(file, filename)
        data = self._call(
            UPLOAD,
            {"fileType": file_type},
            files={"file": (os.path.basename(name), content, "application/octet-stream")},
        )
        stored = data.get("fileName") if isinstance(data, Mapping) else None
        if not isinstance(stored, str) or not stored:
            raise RunningHubResponseError(
                f"POST {UPLOAD}: the answer has no data.fileName",
                endpoint=UPLOAD,
                body=self._snippet(json.dumps(data)),
            )
        return stored

    def _read_upload(self, file: UploadSource, filename: str | None) -> tuple[bytes, str]:
        limit = MAX_UPLOAD_BYTES
        if isinstance(file, bytes | bytearray | memoryview):
            if not filename:
                raise InvalidArgumentError("filename", "required when uploading bytes")
            size = len(file)
            self._check_upload(filename, size)
            return bytes(file), filename
        if isinstance(file, str | os.PathLike):
            path = Path(file)
            if not path.is_file():
                raise InvalidArgumentError("file", f"{str(path)!r} is not a file")
            name = filename or path.name
            self._check_upload(name, path.stat().st_size)
            with path.open("rb") as handle:
                content = handle.read(limit + 1)
            self._check_upload(name, len(content))
            return content, name
        name = filename or os.path.basename(str(getattr(file, "name", "") or ""))
        if not name:
            raise InvalidArgumentError("filename", "required for a file object without a name")
        self._check_type(name)
        content = file.read(limit + 1)
        if not isinstance(content, bytes):
            raise InvalidArgumentError("file", "the file object must be opened in binary mode")
        self._check_upload(name, len(content))
        return content, name

    def _check_type(self, name: str) -> None:
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if ext not in ALLOWED_UPLOAD_EXTENSIONS:
            raise RunningHubUploadError(
                f"RunningHub does not accept {name!r}: allowed types are "
                + ", ".join(sorted(ALLOWED_UPLOAD_EXTENSIONS)),
                endpoint=UPLOAD,
            )

    def _check_upload(self, name: str, size: int) -> None:
        self._check_type(name)
        if size > MAX_UPLOAD_BYTES:
            raise RunningHubFileTooLargeError(
                f"{name!r} is {size} bytes, over RunningHub's upload limit of "
                f"{MAX_UPLOAD_BYTES} bytes (30 MB); nothing was sent",
                endpoint=UPLOAD,
                size=size,
                limit=MAX_UPLOAD_BYTES,
            )

    # -- tasks -----------------------------------------------------------------------------

    def create_task(
        self,
        workflow_id: str,
        node_info_list: Sequence[NodeInfo | Mapping[str, Any]] = (),
        *,
        add_metadata: bool | None = None,
        webhook_url: str | None = None,
        workflow: Mapping[str, Any] | str | None = None,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
    ) -> TaskInfo:
        """``POST /task/openapi/create``: start a workflow.

        Never resent once it may have reached RunningHub: see the module docstring. A 421
        (queue full) is retried with backoff, since RunningHub rejected it outright.

        Args:
            workflow_id: The numeric workflow id (a string).
            node_info_list: The inputs to change; only these are sent.
            add_metadata: ``addMetadata`` (RunningHub defaults to true).
            webhook_url: RunningHub POSTs ``TASK_END`` there when the task ends.
            workflow: A full API-format workflow (dict or JSON string) that overrides the
                stored one (sent as a JSON string, as documented).
            instance_type: ``"default"`` or ``"plus"``; defaults to the settings'.
            use_personal_queue: Queue beyond the concurrency limit (exclusive keys).

        Returns:
            The task; its ``status`` may already be ``FAILED``.

        Raises:
            RunningHubCreateUnconfirmedError: The answer was lost; the task may exist.
            RunningHubError: The typed error of the code RunningHub answered.
        """
        body: dict[str, Any] = {
            "workflowId": _check_id("workflow_id", workflow_id),
            "nodeInfoList": _node_info_json(node_info_list),
        }
        if add_metadata is not None:
            body["addMetadata"] = bool(add_metadata)
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url
        if workflow is not None:
            body["workflow"] = workflow if isinstance(workflow, str) else json.dumps(workflow)
        kind = self._instance_type(instance_type)
        if kind is not None:
            body["instanceType"] = kind
        if use_personal_queue is not None:
            body["usePersonalQueue"] = bool(use_personal_queue)
        return _task_info(self._call(CREATE, body), CREATE)

    def run_ai_app(
        self,
        webapp_id: str | int,
        node_info_list: Sequence[NodeInfo | Mapping[str, Any]],
        *,
        webhook_url: str | None = None,
        instance_type: str | None = None,
    ) -> TaskInfo:
        """``POST /task/openapi/ai-app/run``: start an AI app (same rules as create).

        Raises:
            RunningHubWebappNotFoundError: 901.
            RunningHubCreateUnconfirmedError: The answer was lost; the task may exist.
        """
        app = _check_id("webapp_id", str(webapp_id))
        body: dict[str, Any] = {
            "webappId": int(app) if app.isdigit() else app,
            "nodeInfoList": _node_info_json(node_info_list),
        }
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url
        kind = self._instance_type(instance_type)
        if kind is not None:
            body["instanceType"] = kind
        return _task_info(self._call(AI_APP_RUN, body), AI_APP_RUN)

    def task_status(self, task_id: str) -> str:
        """``POST /task/openapi/status``: the task's state string, as sent.

        Usually one of :data:`TASK_STATUSES`; anything else (even empty) is returned as is,
        for the caller to treat as "not finished yet".

        Raises:
            RunningHubTaskNotFoundError: 807.
        """
        data = self._call(STATUS, {"taskId": _check_id("task_id", task_id)})
        if data is None:
            return ""
        return data if isinstance(data, str) else str(data)

    def task_outputs(self, task_id: str) -> TaskOutcome:
        """``POST /task/openapi/outputs``: the outputs, or why there are none (yet).

        Codes 804 (running), 813 (queued) and 805 (failed, with ``failedReason``) are states
        here, not errors.

        Raises:
            RunningHubTaskNotFoundError: 807.
        """
        task_id = _check_id("task_id", task_id)
        envelope = self._call(OUTPUTS, {"taskId": task_id}, envelope=True, accept=(804, 805, 813))
        code, msg, data = envelope["code"], envelope["msg"], envelope["data"]
        if code == 804:
            return TaskOutcome(task_id, "RUNNING", message=msg)
        if code == 813:
            return TaskOutcome(task_id, "QUEUED", message=msg)
        if code == 805:
            reason = data.get("failedReason") if isinstance(data, Mapping) else None
            return TaskOutcome(task_id, "FAILED", failed_reason=_failed_reason(reason), message=msg)
        items = data if isinstance(data, list) else []
        outputs = tuple(out for out in (_task_output(item) for item in items) if out is not None)
        return TaskOutcome(task_id, "SUCCESS", outputs=outputs, message=msg)

    def cancel(self, task_id: str) -> None:
        """``POST /task/openapi/cancel``: stop a queued or running task.

        Raises:
            RunningHubTaskNotFoundError: 807.
        """
        self._call(CANCEL, {"taskId": _check_id("task_id", task_id)})

    # -- account and webhooks --------------------------------------------------------------

    def account_status(self) -> AccountStatus:
        """``POST /uc/openapi/accountStatus`` (the key field is ``apikey``, lower-case k)."""
        data = self._call(ACCOUNT_STATUS, {}, key_field="apikey")
        raw: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        counts = _decimal(raw.get("currentTaskCounts"))
        currency, api_type = raw.get("currency"), raw.get("apiType")
        return AccountStatus(
            remain_coins=_decimal(raw.get("remainCoins")),
            current_task_counts=int(counts) if counts is not None else None,
            remain_money=_decimal(raw.get("remainMoney")),
            currency=str(currency) if currency is not None else None,
            api_type=str(api_type) if api_type is not None else None,
            raw=dict(raw),
        )

    def get_webhook_detail(self, task_id: str) -> WebhookDetail | None:
        """``POST /task/openapi/getWebhookDetail``: the task's webhook delivery record.

        Returns:
            The record, or ``None`` when the task has none.
        """
        data = self._call(WEBHOOK_DETAIL, {"taskId": _check_id("task_id", task_id)})
        if not isinstance(data, Mapping):
            return None
        retries = data.get("retryCount")
        return WebhookDetail(
            id=str(data.get("id", "")),
            task_id=str(data.get("taskId", task_id)),
            webhook_url=str(data.get("webhookUrl") or ""),
            event_data=_opt_str(data.get("eventData")),
            callback_status=_opt_str(data.get("callbackStatus")),
            callback_response=_opt_str(data.get("callbackResponse")),
            retry_count=int(retries)
            if isinstance(retries, int | str) and str(retries).isdigit()
            else None,
            create_time=_opt_str(data.get("createTime")),
            update_time=_opt_str(data.get("updateTime")),
        )

    def retry_webhook(self, webhook_id: str, webhook_url: str) -> None:
        """``POST /task/openapi/retryWebhook``: deliver a webhook again (never auto-resent)."""
        self._call(
            RETRY_WEBHOOK,
            {"webhookId": _check_id("webhook_id", str(webhook_id)), "webhookUrl": webhook_url},
        )

    # -- the request path ------------------------------------------------------------------

    def _instance_type(self, given: str | None) -> str | None:
        kind = given if given is not None else self.settings.instance_type
        if kind is not None and kind not in ("default", "plus"):
            raise InvalidArgumentError(
                "instance_type", f"expected 'default' or 'plus', got {kind!r}"
            )
        return kind

    def _call(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        key_field: str = "apiKey",
        files: Mapping[str, Any] | None = None,
        envelope: bool = False,
        accept: tuple[int, ...] = (),
    ) -> Any:
        """POST one call through the transport with RunningHub's retry policy; return
        ``data`` (or the envelope).

        Args:
            endpoint: The path.
            body: The fields besides the key.
            key_field: Name of the key field in the body.
            files: Multipart files (the body then goes as form fields).
            envelope: Return ``{code, msg, data}`` instead of ``data``.
            accept: Non-zero codes that are answers, not errors.
        """
        if self.http.closed:
            raise RunningHubTransportError(
                f"POST {endpoint}: this RunningHubClient is closed", endpoint=endpoint, sent=False
            )
        payload = {key_field: self.settings.api_key, **body}
        creating = endpoint in _CREATING
        try:
            response = self.http.request(
                "POST",
                endpoint,
                json=None if files is not None else payload,
                data={k: str(v) for k, v in payload.items()} if files is not None else None,
                files=files,
                api=False,
                idempotent=endpoint in _IDEMPOTENT,
                retry=self._policy(endpoint),
            )
        except ServerError as exc:  # HTTP 5xx (after the retries a read gets)
            if creating:
                raise self._unconfirmed(endpoint, f"HTTP {exc.status} answer") from exc
            raise RunningHubServerError(
                f"POST {endpoint}: RunningHub answered HTTP {exc.status}"
                + (f": {self._snippet(exc.server_message)}" if exc.server_message else ""),
                endpoint=endpoint,
                http_status=exc.status,
            ) from exc
        except NotFoundError as exc:
            raise RunningHubBadPathError(
                f"POST {endpoint}: HTTP 404; is {self.settings.base_url} a RunningHub API?",
                endpoint=endpoint,
            ) from exc
        except ApiError as exc:
            raise RunningHubResponseError(
                f"POST {endpoint}: unexpected HTTP {exc.status}"
                + (f": {self._snippet(exc.server_message)}" if exc.server_message else ""),
                endpoint=endpoint,
                http_status=exc.status,
                body=self._snippet(str(exc.body or "")),
            ) from exc
        except TransportError as exc:
            if creating and exc.sent:
                raise self._unconfirmed(endpoint, exc.message, url=exc.url) from exc
            raise RunningHubTransportError(
                f"no answer from RunningHub: {exc.message}",
                endpoint=endpoint,
                url=exc.url,
                sent=exc.sent,
            ) from exc
        answer = self._envelope(endpoint, response)
        code = answer["code"]
        if code == 0 or code in accept:
            return answer if envelope else answer["data"]
        raise self._error(endpoint, answer)

    def _policy(self, endpoint: str) -> RetryPolicy:
        """The retry policy of one endpoint: creates retry a 421 (queue full: RunningHub
        rejected it outright) and failures before sending; reads also retry 5xx, code 500,
        dropped connections and read timeouts; anything else only failures before sending."""
        if endpoint in _CREATING:
            return self._create_policy
        if endpoint in _IDEMPOTENT:
            return self._read_policy
        return self._other_policy

    def _envelope(self, endpoint: str, response: Any) -> dict[str, Any]:
        try:
            decoded = self.http.decode_json(response, "POST")
        except ResponseDecodeError as exc:
            raise RunningHubResponseError(
                f"POST {endpoint}: RunningHub answered HTTP {exc.status} with a body that is "
                f"not JSON (Content-Type {exc.content_type or 'unset'}): {exc.body!r}",
                endpoint=endpoint,
                http_status=exc.status,
                body=exc.body,
            ) from exc
        code = _code_of(decoded)
        if code is None:
            raise RunningHubResponseError(
                f"POST {endpoint}: the answer is not a {{code, msg, data}} envelope",
                endpoint=endpoint,
                http_status=response.status_code,
                body=self._snippet(json.dumps(decoded)),
            )
        assert isinstance(decoded, Mapping)  # noqa: S101 - narrowed by the code check above
        msg = decoded.get("msg")
        return {
            "code": code,
            "msg": self.http.redact(str(msg)) if msg is not None else "",
            "data": decoded.get("data"),
        }

    def _error(self, endpoint: str, answer: Mapping[str, Any]) -> RunningHubError:
        return error_for_code(
            int(answer["code"]), str(answer["msg"]), endpoint=endpoint, data=answer.get("data")
        )

    def _unconfirmed(
        self, endpoint: str, why: str, *, url: str = ""
    ) -> RunningHubCreateUnconfirmedError:
        counts: int | None = None
        try:
            counts = self.account_status().current_task_counts
        except RunningHubError as exc:  # best effort: the hint is optional
            logger.debug("accountStatus after a lost create failed: %s", exc)
        text = (
            f"POST {endpoint}: the request was sent but its answer was lost ({why}). "
            "RunningHub may or may not have created the task; it was NOT resent, to avoid "
            "running it twice."
        )
        if counts is not None:
            text += f" The account currently reports {counts} queued/running task(s)."
        text += " Check the task list on RunningHub before submitting again."
        logger.warning("%s", text)
        return RunningHubCreateUnconfirmedError(
            text, endpoint=endpoint, url=url, current_task_counts=counts
        )

    def _snippet(self, text: str) -> str:
        return redact_text(text, self.settings.secrets)[:_SNIPPET]


# -- helpers ---------------------------------------------------------------------------------


def _check_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(name, "must be a non-empty string")
    return value.strip()


def _node_info_json(items: Sequence[NodeInfo | Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(items, list | tuple):
        raise InvalidArgumentError("node_info_list", "must be a list of NodeInfo items")
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, NodeInfo):
            entry = item.to_json()
        elif isinstance(item, Mapping):
            entry = {k: item.get(k) for k in ("nodeId", "fieldName", "fieldValue")}
        else:
            raise InvalidArgumentError(f"node_info_list[{index}]", "must be NodeInfo or a dict")
        if not isinstance(entry["nodeId"], str) or not isinstance(entry["fieldName"], str):
            raise InvalidArgumentError(
                f"node_info_list[{index}]", "nodeId and fieldName must be strings"
            )
        if entry["fieldValue"] is None:
            raise InvalidArgumentError(f"node_info_list[{index}]", "fieldValue must not be None")
        out.append(entry)
    return out


def _envelope_code(response: Any) -> int | None:
    """RunningHub's ``code`` in an answer, or ``None`` when it is not an envelope."""
    try:
        decoded = json.loads(response.content)
    except (ValueError, TypeError):
        return None
    return _code_of(decoded)


def _code_of(decoded: Any) -> int | None:
    """The integer ``code`` of a decoded envelope (RunningHub sometimes sends it as text)."""
    code = decoded.get("code") if isinstance(decoded, Mapping) else None
    if isinstance(code, str) and code.lstrip("-").isdigit():
        return int(code)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _queue_full(response: Any) -> bool:
    """421 TASK_QUEUE_MAXED: the create was rejected outright, so it may be sent again."""
    return _envelope_code(response) == 421


def _unknown_error(response: Any) -> bool:
    """500 UNKNOWN_ERROR in the envelope of a read: transient, the read may be repeated."""
    return _envelope_code(response) == 500

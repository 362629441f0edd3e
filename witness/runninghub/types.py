"""Typed shapes of the RunningHub v1 workflow OpenAPI, and their parsers.

RunningHub sends most numbers as strings and some objects as JSON strings; the parsers here
turn its ``data`` objects into the frozen records below (and never keep the echoed key).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final

from witness.errors import InvalidArgumentError, RunningHubResponseError

__all__ = [
    "ALLOWED_UPLOAD_EXTENSIONS",
    "MAX_UPLOAD_BYTES",
    "TASK_STATUSES",
    "AccountStatus",
    "FailedReason",
    "NodeInfo",
    "TaskInfo",
    "TaskOutcome",
    "TaskOutput",
    "UploadSource",
    "WebhookDetail",
    "field_value",
]

MAX_UPLOAD_BYTES: Final = 30 * 1024 * 1024
"""RunningHub's documented per-file upload limit (30 MB), checked before sending."""

ALLOWED_UPLOAD_EXTENSIONS: Final = frozenset(
    {"jpg", "jpeg", "png", "webp", "zip", "mp3", "wav", "flac", "mp4", "avi", "mov", "mkv"}
)
"""File types ``/task/openapi/upload`` accepts."""

TASK_STATUSES: Final = frozenset({"QUEUED", "RUNNING", "SUCCESS", "FAILED"})
"""The documented task states (anything else is unknown and must be polled again, slowly)."""
_SNIPPET = 200


def field_value(value: Any) -> str:
    """Render a parameter value in the documented ``fieldValue`` form: a string.

    RunningHub's nodeInfoList examples send every value as a string, seeds included; the
    server converts it to the input's type. Booleans become ``"true"``/``"false"``, floats
    their shortest round-trip form, lists and dicts JSON.

    Raises:
        InvalidArgumentError: ``None`` (RunningHub cannot unset an input).
    """
    if value is None:
        raise InvalidArgumentError("fieldValue", "None cannot be sent; omit the parameter")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class NodeInfo:
    """One ``nodeInfoList`` item: set ``inputs[field_name]`` of node ``node_id``.

    Attributes:
        node_id: The node's key in the API-format workflow.
        field_name: The key in the node's ``inputs``.
        field_value: The value (a string in the documented form; see :func:`field_value`).
    """

    node_id: str
    field_name: str
    field_value: Any

    def to_json(self) -> dict[str, Any]:
        """The wire form ``{nodeId, fieldName, fieldValue}``."""
        return {
            "nodeId": self.node_id,
            "fieldName": self.field_name,
            "fieldValue": self.field_value,
        }


@dataclass(frozen=True)
class TaskInfo:
    """What ``create`` / ``ai-app/run`` return.

    Attributes:
        task_id: RunningHub's task id (always a string).
        status: ``taskStatus`` (``QUEUED``, ``RUNNING``, ``FAILED``, ...).
        client_id: RunningHub's websocket client id.
        net_wss_url: Websocket URL (``None`` while queued; documented as unstable).
        prompt_tips: ``promptTips`` decoded from its JSON string (``{}`` when absent).
        raw: The ``data`` object as received.
    """

    task_id: str
    status: str
    client_id: str | None = None
    net_wss_url: str | None = None
    prompt_tips: dict[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class TaskOutput:
    """One output file of a successful task.

    Attributes:
        file_url: Where to download it (a CDN URL; download promptly, lifetime undocumented).
        file_type: Lower-cased ``fileType`` (``png``, ``mp4``, ``txt``, ...).
        node_id: The node that produced it, when RunningHub says.
        task_cost_time: ``taskCostTime`` in seconds, when sent.
        consume_coins: ``consumeCoins`` when sent.
        consume_money: ``consumeMoney`` when sent.
    """

    file_url: str
    file_type: str
    node_id: str | None = None
    task_cost_time: float | None = None
    consume_coins: Decimal | None = None
    consume_money: Decimal | None = None


@dataclass(frozen=True)
class FailedReason:
    """``failedReason`` of a failed task (RunningHub sends every field as a string).

    Attributes:
        node_id: The node that raised.
        node_name: Its class / name.
        exception_type: The Python exception type.
        exception_message: Its message.
        traceback: The traceback lines.
        current_inputs: The node's inputs at the time (as sent, a string).
        current_outputs: Outputs produced so far (as sent, a string).
        raw: The object as received.
    """

    node_id: str | None
    node_name: str | None
    exception_type: str | None
    exception_message: str | None
    traceback: tuple[str, ...] = ()
    current_inputs: str | None = None
    current_outputs: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        where = f"node {self.node_id}" if self.node_id else "unknown node"
        if self.node_name:
            where += f" ({self.node_name})"
        kind = self.exception_type or "error"
        return f"{where} raised {kind}: {self.exception_message or '(no message)'}"


@dataclass(frozen=True)
class TaskOutcome:
    """What ``/task/openapi/outputs`` says about a task (the code is the state).

    Attributes:
        task_id: The task.
        status: ``SUCCESS`` (code 0), ``RUNNING`` (804), ``QUEUED`` (813) or ``FAILED`` (805).
        outputs: The output files (``SUCCESS`` only).
        failed_reason: The parsed failure (``FAILED`` only, when RunningHub sent it).
        message: RunningHub's ``msg``.
    """

    task_id: str
    status: str
    outputs: tuple[TaskOutput, ...] = ()
    failed_reason: FailedReason | None = None
    message: str = ""

    @property
    def finished(self) -> bool:
        """Whether the task reached ``SUCCESS`` or ``FAILED``."""
        return self.status in {"SUCCESS", "FAILED"}


@dataclass(frozen=True)
class AccountStatus:
    """``/uc/openapi/accountStatus`` (RunningHub sends the numbers as strings).

    Attributes:
        remain_coins: RH coins left.
        current_task_counts: Tasks of this account currently queued or running.
        remain_money: Wallet balance.
        currency: Wallet currency.
        api_type: e.g. ``NORMAL``.
        raw: The ``data`` object as received.
    """

    remain_coins: Decimal | None
    current_task_counts: int | None
    remain_money: Decimal | None
    currency: str | None
    api_type: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class WebhookDetail:
    """The delivery record of a task's webhook (``getWebhookDetail``).

    RunningHub echoes the user's key in ``userApiKey``; it is deliberately not kept.

    Attributes:
        id: Webhook record id (for :meth:`RunningHubClient.retry_webhook`).
        task_id: The task.
        webhook_url: Where it was (or will be) delivered.
        event_data: The delivered body's ``eventData`` (a JSON string).
        callback_status: Delivery status as reported.
        callback_response: The receiver's answer as recorded.
        retry_count: Delivery retries.
        create_time: As sent.
        update_time: As sent.
    """

    id: str
    task_id: str
    webhook_url: str
    event_data: str | None = None
    callback_status: str | None = None
    callback_response: str | None = None
    retry_count: int | None = None
    create_time: str | None = None
    update_time: str | None = None


UploadSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


# -- parsers ---------------------------------------------------------------------------------


def _task_info(data: Any, endpoint: str) -> TaskInfo:
    if not isinstance(data, Mapping) or data.get("taskId") in (None, ""):
        raise RunningHubResponseError(
            f"POST {endpoint}: the answer has no data.taskId",
            endpoint=endpoint,
            body=json.dumps(data)[:_SNIPPET],
        )
    tips_raw = data.get("promptTips")
    tips: Any = tips_raw
    if isinstance(tips_raw, str):
        try:
            tips = json.loads(tips_raw)
        except ValueError:
            tips = {"raw": tips_raw}
    return TaskInfo(
        task_id=str(data["taskId"]),
        status=str(data.get("taskStatus") or ""),
        client_id=_opt_str(data.get("clientId")),
        net_wss_url=_opt_str(data.get("netWssUrl")),
        prompt_tips=dict(tips) if isinstance(tips, Mapping) else {},
        raw=dict(data),
    )


def _task_output(item: Any) -> TaskOutput | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("fileUrl"), str):
        return None
    cost = _decimal(item.get("taskCostTime"))
    node = item.get("nodeId")
    return TaskOutput(
        file_url=item["fileUrl"],
        file_type=str(item.get("fileType") or "").lower().lstrip("."),
        node_id=str(node) if node not in (None, "") else None,
        task_cost_time=float(cost) if cost is not None else None,
        consume_coins=_decimal(item.get("consumeCoins")),
        consume_money=_decimal(item.get("consumeMoney")),
    )


def _failed_reason(reason: Any) -> FailedReason | None:
    if isinstance(reason, str):
        try:
            reason = json.loads(reason)
        except ValueError:
            return FailedReason(None, None, None, reason, raw={"raw": reason})
    if not isinstance(reason, Mapping):
        return None
    trace = reason.get("traceback")
    if isinstance(trace, str):
        try:
            decoded = json.loads(trace)
        except ValueError:
            decoded = None
        trace = decoded if isinstance(decoded, list) else trace.splitlines()
    lines = tuple(str(line).rstrip("\n") for line in trace) if isinstance(trace, list) else ()
    return FailedReason(
        node_id=_opt_str(reason.get("node_id")),
        node_name=_opt_str(reason.get("node_name") or reason.get("node_type")),
        exception_type=_opt_str(reason.get("exception_type")),
        exception_message=_opt_str(reason.get("exception_message")),
        traceback=lines,
        current_inputs=_opt_json_str(reason.get("current_inputs")),
        current_outputs=_opt_json_str(reason.get("current_outputs")),
        raw=dict(reason),
    )


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _opt_json_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    return json.dumps(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None

"""RunningHub's error codes and the typed errors they map to.

The classes live in :mod:`witness.errors` (one tree under ``WitnessError``); this module maps
RunningHub's numeric ``code`` to them (:data:`RUNNINGHUB_ERROR_CODES`, :func:`error_for_code`).
A transport failure (:class:`~witness.errors.RunningHubTransportError`) is a
:class:`~witness.errors.TransportError` too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from witness.errors import (
    RunningHubAuthError,
    RunningHubBadPathError,
    RunningHubError,
    RunningHubExclusiveInstanceError,
    RunningHubFileTooLargeError,
    RunningHubFreeUserError,
    RunningHubInstanceBusyError,
    RunningHubInsufficientFundsError,
    RunningHubNodeInfoError,
    RunningHubParamsError,
    RunningHubPersonalQueueFullError,
    RunningHubQueueFullError,
    RunningHubServerError,
    RunningHubTaskFailedError,
    RunningHubTaskNotFinishedError,
    RunningHubTaskNotFoundError,
    RunningHubUploadError,
    RunningHubValidationError,
    RunningHubWebappNotFoundError,
    RunningHubWorkflowNotFoundError,
    RunningHubWorkflowNotReadyError,
    parse_node_errors,
)
from witness.runninghub.types import MAX_UPLOAD_BYTES, _failed_reason

__all__ = ["RUNNINGHUB_ERROR_CODES", "error_for_code"]

# code -> (RunningHub's name, error class)
RUNNINGHUB_ERROR_CODES: Final[dict[int, tuple[str, type[RunningHubError]]]] = {
    301: ("PARAMS_INVALID", RunningHubParamsError),
    380: ("WORKFLOW_NOT_EXISTS", RunningHubWorkflowNotFoundError),
    412: ("TOKEN_INVALID", RunningHubBadPathError),
    415: ("TASK_INSTANCE_MAXED", RunningHubInstanceBusyError),
    416: ("TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET", RunningHubInsufficientFundsError),
    421: ("TASK_QUEUE_MAXED", RunningHubQueueFullError),
    423: ("TASK_NOT_FOUNED", RunningHubTaskNotFoundError),
    433: ("VALIDATE_PROMPT_FAILED", RunningHubValidationError),
    435: ("TASK_USER_EXCLAPI_INSTANCE_NOT_FOUND", RunningHubExclusiveInstanceError),
    436: ("TASK_USER_EXCLAPI_REQUIRED", RunningHubExclusiveInstanceError),
    500: ("UNKNOWN_ERROR", RunningHubServerError),
    801: ("APIKEY_UNSUPPORTED_FREE_USER", RunningHubFreeUserError),
    802: ("APIKEY_UNAUTHORIZED", RunningHubAuthError),
    803: ("APIKEY_INVALID_NODE_INFO", RunningHubNodeInfoError),
    804: ("APIKEY_TASK_IS_RUNNING", RunningHubTaskNotFinishedError),
    805: ("APIKEY_TASK_STATUS_ERROR", RunningHubTaskFailedError),
    806: ("APIKEY_USER_NOT_FOUND", RunningHubAuthError),
    807: ("APIKEY_TASK_NOT_FOUND", RunningHubTaskNotFoundError),
    808: ("APIKEY_UPLOAD_FAILED", RunningHubUploadError),
    809: ("APIKEY_FILE_SIZE_EXCEEDED", RunningHubFileTooLargeError),
    810: ("WORKFLOW_NOT_SAVED_OR_NOT_RUNNING", RunningHubWorkflowNotReadyError),
    811: ("CORPAPIKEY_INVALID", RunningHubAuthError),
    812: ("CORPAPIKEY_INSUFFICIENT_FUNDS", RunningHubInsufficientFundsError),
    813: ("APIKEY_TASK_IS_QUEUED", RunningHubTaskNotFinishedError),
    814: ("PERSONAL_QUEUE_COUNT_LIMIT", RunningHubPersonalQueueFullError),
    901: ("WEBAPP_NOT_EXISTS", RunningHubWebappNotFoundError),
}


def error_for_code(code: int, msg: str, *, endpoint: str = "", data: Any = None) -> RunningHubError:
    """Build the typed error for a RunningHub ``code`` (unknown codes give the base class).

    Args:
        code: RunningHub's code.
        msg: RunningHub's ``msg`` (already redacted by the caller).
        endpoint: The path called.
        data: The envelope's ``data`` (433 ``promptTips`` and 805 ``failedReason`` are read).
    """
    name, cls = RUNNINGHUB_ERROR_CODES.get(code, ("", RunningHubError))
    label = f"{code} {name}" if name else str(code)
    text = f"POST {endpoint}: RunningHub error {label}"
    if msg and msg != name:
        text += f": {msg}"
    common: dict[str, Any] = {"code": code, "endpoint": endpoint, "server_message": msg}
    if cls is RunningHubValidationError:
        raw = _node_errors(data, msg)
        return RunningHubValidationError(
            text,
            node_errors=tuple(parse_node_errors(raw)),
            raw_node_errors=raw,
            **common,
        )
    if cls is RunningHubTaskFailedError:
        reason = data.get("failedReason") if isinstance(data, Mapping) else None
        parsed = _failed_reason(reason)
        if parsed is not None:
            text += f" ({parsed})"
        return RunningHubTaskFailedError(text, failed_reason=parsed, **common)
    if cls is RunningHubServerError:
        return RunningHubServerError(text, **common)
    if cls is RunningHubFileTooLargeError:
        return RunningHubFileTooLargeError(text, limit=MAX_UPLOAD_BYTES, **common)
    return cls(text, **common)


def _node_errors(data: Any, msg: str) -> dict[str, Any]:
    """Find ComfyUI's ``node_errors`` in a 433 answer (``promptTips`` or a JSON ``msg``)."""
    candidates: list[Any] = []
    if isinstance(data, Mapping):
        candidates.extend([data.get("promptTips"), data])
    candidates.append(msg)
    for item in candidates:
        value = item
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if isinstance(value, Mapping) and isinstance(value.get("node_errors"), Mapping):
            return dict(value["node_errors"])
    return {}

"""Argument checks and small helpers shared by the group clients (private)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from witness.errors import InvalidArgumentError, ResponseDecodeError
from witness.transport.http import HttpClient

__all__ = [
    "JSON_HEADERS",
    "as_list",
    "as_mapping",
    "check_choice",
    "check_int",
    "check_number",
    "check_text",
    "check_uuid",
    "encode_json",
    "unexpected_shape",
    "user_header",
]

JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}


def encode_json(value: Any, argument: str) -> bytes:
    """Serialize a request body, rejecting what the server would answer with a bare 500.

    ``NaN``/``Infinity`` and non-JSON types are refused here: ComfyUI answers invalid JSON
    with ``500 Internal Server Error``.

    Raises:
        InvalidArgumentError: ``value`` is not strict JSON.
    """
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(argument, f"is not JSON-serializable ({exc})") from exc


def check_text(value: object, argument: str) -> str:
    """Return ``value`` if it is a non-empty string, else raise InvalidArgumentError."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(argument, f"must be a non-empty string, got {value!r}")
    return value


def check_ids(value: str | Iterable[str], argument: str) -> list[str]:
    """One id or several, as a non-empty list of non-empty strings."""
    ids = [value] if isinstance(value, str) else list(value)
    if not ids:
        raise InvalidArgumentError(argument, "must name at least one prompt")
    for item in ids:
        check_text(item, argument)
    return ids


def check_int(value: object, argument: str, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(argument, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(argument, f"must be >= {minimum}, got {value}")
    return value


def check_number(value: object, argument: str) -> float | int:
    """Return ``value`` if it is a finite int or float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(argument, f"must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(argument, f"must be finite, got {value!r}")
    return value


def check_choice(value: object, argument: str, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in sorted(choices))
        raise InvalidArgumentError(argument, f"must be one of {allowed}, got {value!r}")
    return value


def check_uuid(value: object, argument: str) -> str:
    """Return ``value`` if it is a canonical (lowercase, hyphenated) UUID string.

    ComfyUI v0.25.0 and later reject any other ``prompt_id`` form with a 400.
    """
    if isinstance(value, str):
        try:
            if str(uuid.UUID(value)) == value:
                return value
        except ValueError:
            pass
    raise InvalidArgumentError(
        argument,
        f"must be a canonical lowercase UUID string such as str(uuid.uuid4()), got {value!r}",
    )


def user_header(user: str | None) -> dict[str, str] | None:
    """The ``comfy-user`` header for a per-call user override (``None``: use the settings)."""
    if user is None:
        return None
    return {"comfy-user": check_text(user, "user")}


def unexpected_shape(
    http: HttpClient, method: str, path: str, data: Any, *, api: bool = True
) -> ResponseDecodeError:
    """The error for a 2xx whose JSON is not the shape the route promises."""
    return ResponseDecodeError(
        status=200,
        method=method,
        url=http.url(path, api=api),
        content_type="application/json",
        body=http.redact(repr(data)[:200]),
    )


def as_mapping(
    http: HttpClient, data: Any, method: str, path: str, *, api: bool = True
) -> dict[str, Any]:
    """``data`` as a dict, or ResponseDecodeError if the server sent something else."""
    if not isinstance(data, Mapping):
        raise unexpected_shape(http, method, path, data, api=api)
    return dict(data)


def as_list(http: HttpClient, data: Any, method: str, path: str, *, api: bool = True) -> list[Any]:
    """``data`` as a list, or ResponseDecodeError if the server sent something else."""
    if not isinstance(data, list):
        raise unexpected_shape(http, method, path, data, api=api)
    return data

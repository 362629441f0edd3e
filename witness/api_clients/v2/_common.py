"""What every v2 group client shares: the ``/api/v2`` route prefix and error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from witness.api_clients._common import as_mapping
from witness.errors import ApiError, v2_error_from
from witness.transport.http import HttpClient
from witness.utils.paths import route

if TYPE_CHECKING:
    import requests

__all__ = ["V2_PREFIX", "v2_errors", "v2_json", "v2_request", "v2_route"]

#: The v2 routes live under ``/api/v2`` (the transport adds ``/api``).
V2_PREFIX = "/v2"


def v2_route(template: str, *segments: object) -> str:
    """A v2 route (``"/jobs/{}"`` → ``/v2/jobs/<quoted id>``) for :meth:`HttpClient.request`."""
    return V2_PREFIX + route(template, *segments)


@contextmanager
def v2_errors() -> Iterator[None]:
    """Turn an :class:`ApiError` carrying the v2 error envelope into its typed subclass."""
    try:
        yield
    except ApiError as exc:
        typed = v2_error_from(exc)
        if typed is exc:
            raise
        raise typed from exc


def v2_request(http: HttpClient, method: str, path: str, **kwargs: Any) -> requests.Response:
    """:meth:`HttpClient.request` for a v2 route, with v2 errors typed."""
    with v2_errors():
        return http.request(method, path, **kwargs)


def v2_json(http: HttpClient, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """A v2 route's JSON object (``ResponseDecodeError`` when it is something else)."""
    with v2_errors():
        data = http.request_json(method, path, **kwargs)
    return as_mapping(http, data, method, path)

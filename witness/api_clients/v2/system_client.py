"""``/api/v2/health``: is a Comfy API v2 deployment there."""

from __future__ import annotations

from witness.api_clients.v2._common import V2_PREFIX, v2_json
from witness.api_clients.v2.types import Health
from witness.errors import ApiError, ResponseDecodeError, TransportError
from witness.transport.deadline import Deadline
from witness.transport.http import HttpClient

__all__ = ["V2SystemClient", "detect_v2"]


class V2SystemClient:
    """The deployment's own state.

    Args:
        http: The shared HTTP client.
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def health(self, *, deadline: Deadline | None = None) -> Health:
        """Whether the deployment is up (the proxy answers without probing its ComfyUI).

        Route: ``GET /api/v2/health`` (no authentication needed).

        Raises:
            ApiError: An error status (404: no v2 API at this address).
            TransportError: The address could not be reached.
        """
        data = v2_json(self._http, "GET", V2_PREFIX + "/health", deadline=deadline)
        return Health(status=str(data.get("status", "")), raw=data)


def detect_v2(http: HttpClient, deadline: Deadline | None = None) -> bool:
    """Whether ``http``'s server speaks the Comfy API v2: asks ``GET /api/v2/health`` once.

    A native ComfyUI answers 404 there (or with its HTML page), so this is ``False``; only a
    JSON health answer counts. Never retried.

    Raises:
        TransportError: The server could not be reached at all (nothing can be detected).
    """
    try:
        data = v2_json(http, "GET", V2_PREFIX + "/health", deadline=deadline, idempotent=False)
    except (ApiError, ResponseDecodeError):
        return False
    except TransportError:
        raise
    return isinstance(data.get("status"), str)

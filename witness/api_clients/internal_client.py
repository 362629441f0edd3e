"""The frontend's ``/internal/*`` routes.

UNSTABLE: ComfyUI documents these as frontend-only and "should NOT be depended upon"; they
can change in any release. They have no ``/api`` copy, so every call uses ``api=False``.
"""

from __future__ import annotations

from typing import cast

from witness.api_clients._common import (
    JSON_HEADERS,
    as_list,
    as_mapping,
    check_choice,
    check_text,
    encode_json,
    unexpected_shape,
)
from witness.api_clients.types import FILE_TYPES, LogsRaw
from witness.transport.http import HttpClient
from witness.utils.paths import route

__all__ = ["InternalClient"]


class InternalClient:
    """Server logs, folder paths and directory listings (unstable routes).

    Args:
        http: The shared HTTP client.

    Example:
        >>> InternalClient(http).files("output")[:3]
        ['ComfyUI_00003_.png', 'ComfyUI_00002_.png', 'ComfyUI_00001_.png']
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def logs(self) -> str:
        """The last ~300 log writes as one string (``"<iso time> - <msg>"`` each).

        Route: ``GET /internal/logs``.
        """
        data = self._http.request_json("GET", "/internal/logs", api=False)
        if not isinstance(data, str):
            raise unexpected_shape(self._http, "GET", "/internal/logs", data, api=False)
        return data

    def logs_raw(self) -> LogsRaw:
        """The last log writes as ``{"entries": [{"t", "m"}], "size": {"cols", "rows"}}``.

        Route: ``GET /internal/logs/raw``.
        """
        path = "/internal/logs/raw"
        data = as_mapping(
            self._http, self._http.request_json("GET", path, api=False), "GET", path, api=False
        )
        if not isinstance(data.get("entries"), list):
            raise unexpected_shape(self._http, "GET", path, data, api=False)
        data.setdefault("size", None)
        return cast(LogsRaw, data)

    def subscribe_logs(self, client_id: str, *, enabled: bool = True) -> None:
        """Start (or stop) sending ``logs`` websocket messages to a websocket client.

        Route: ``PATCH /internal/logs/subscribe``.

        Args:
            client_id: The websocket ``clientId``.
            enabled: ``False`` to unsubscribe.

        Raises:
            InvalidArgumentError: ``client_id`` is empty (the server would answer 500).
        """
        body = {"clientId": check_text(client_id, "client_id"), "enabled": bool(enabled)}
        self._http.request(
            "PATCH",
            "/internal/logs/subscribe",
            data=encode_json(body, "body"),
            headers=JSON_HEADERS,
            api=False,
            idempotent=True,
        ).close()

    def folder_paths(self) -> dict[str, list[str]]:
        """Every folder type and its absolute directories.

        Route: ``GET /internal/folder_paths``.
        """
        path = "/internal/folder_paths"
        data = self._http.request_json("GET", path, api=False)
        return cast(dict[str, list[str]], as_mapping(self._http, data, "GET", path, api=False))

    def files(self, directory_type: str) -> list[str]:
        """Top-level files of the output, input or temp directory, newest first.

        Route: ``GET /internal/files/{directory_type}``.

        Args:
            directory_type: ``"output"``, ``"input"`` or ``"temp"``.

        Returns:
            File names (newer servers, v0.20+, answer ``"name [type]"``).

        Raises:
            InvalidArgumentError: Another directory type.
        """
        check_choice(directory_type, "directory_type", FILE_TYPES)
        path = route("/internal/files/{}", directory_type)
        data = as_list(
            self._http, self._http.request_json("GET", path, api=False), "GET", path, api=False
        )
        if not all(isinstance(name, str) for name in data):
            raise unexpected_shape(self._http, "GET", path, data, api=False)
        return data

"""``/history``: finished prompts, their outputs and status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from witness.api_clients._common import (
    JSON_HEADERS,
    as_mapping,
    check_ids,
    check_int,
    check_text,
    encode_json,
)
from witness.api_clients.types import HistoryEntry
from witness.transport.http import HttpClient
from witness.utils.paths import route

__all__ = ["HistoryClient"]


class HistoryClient:
    """Read and prune the server's (in-memory, global) history.

    Args:
        http: The shared HTTP client.

    Example:
        >>> entry = HistoryClient(http).get(prompt_id)
        >>> if entry is not None and entry.succeeded:
        ...     files = entry.output_files()
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def get(self, prompt_id: str) -> HistoryEntry | None:
        """The history entry of one prompt.

        Route: ``GET /history/{prompt_id}``.

        Args:
            prompt_id: The prompt.

        Returns:
            The entry, or ``None`` while the prompt has none: it is queued, running, was
            never submitted, or the history was cleared or lost in a restart.

        Raises:
            InvalidArgumentError: ``prompt_id`` is empty.
            ResponseDecodeError: The answer is not a JSON object.
            TransportError: The server could not be reached.
        """
        check_text(prompt_id, "prompt_id")
        data = self._mapping("GET", route("/history/{}", prompt_id))
        entry = data.get(prompt_id)
        if not isinstance(entry, Mapping):
            return None
        return HistoryEntry.from_json(prompt_id, entry)

    def get_all(
        self, *, max_items: int | None = None, offset: int | None = None
    ) -> dict[str, HistoryEntry]:
        """Many history entries, oldest first.

        Route: ``GET /history``.

        Args:
            max_items: At most this many entries. Alone, it selects the *newest* N.
            offset: Skip this many of the oldest entries (with ``max_items``: a page).

        Returns:
            ``{prompt_id: entry}`` in the server's order (oldest first).

        Raises:
            InvalidArgumentError: ``max_items`` < 1 or ``offset`` < 0 or not integers (the
                server would answer 500).
            TransportError: The server could not be reached.
        """
        params: dict[str, Any] = {}
        if max_items is not None:
            params["max_items"] = check_int(max_items, "max_items", minimum=1)
        if offset is not None:
            params["offset"] = check_int(offset, "offset", minimum=0)
        data = self._mapping("GET", "/history", params=params)
        return {
            str(pid): HistoryEntry.from_json(str(pid), entry)
            for pid, entry in data.items()
            if isinstance(entry, Mapping)
        }

    def delete(self, prompt_ids: str | Iterable[str]) -> None:
        """Remove some entries. Unknown ids are ignored by the server.

        Route: ``POST /history`` ``{"delete": [...]}``.

        Args:
            prompt_ids: One id or several.

        Raises:
            InvalidArgumentError: No id, or an empty one.
            TransportError: The server could not be reached.
        """
        ids = check_ids(prompt_ids, "prompt_ids")
        self._post({"delete": ids})

    def clear_all(self) -> None:
        """Delete the WHOLE history, for every user and client of the server.

        Route: ``POST /history`` ``{"clear": true}``.

        Raises:
            TransportError: The server could not be reached.
        """
        self._post({"clear": True})

    def _post(self, body: dict[str, Any]) -> None:
        # Deleting or clearing twice has the same effect as once: safe to retry.
        self._http.request(
            "POST",
            "/history",
            data=encode_json(body, "body"),
            headers=JSON_HEADERS,
            idempotent=True,
        ).close()

    def _mapping(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return as_mapping(self._http, self._http.request_json(method, path, **kwargs), method, path)

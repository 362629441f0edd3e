"""The node catalog service: ``/object_info`` fetched once, cached, refreshed when stale.

One :class:`CatalogService` per server. The pipeline asks it for the
:class:`~witness.core.validate.NodeCatalog` to validate against and for the raw definitions the
UI converter needs; when a check trips on something a stale cache can cause (a combo value the
server learnt since — a fresh upload, a new model file — or a node class a restarted server
now has), only the classes concerned are refetched (``GET /object_info/{node_class}``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from witness.api_clients.system_client import SystemClient
from witness.core.validate import NodeCatalog
from witness.errors import UIConversionError, WitnessError
from witness.transport.deadline import Deadline

__all__ = ["CatalogService"]

logger = logging.getLogger(__name__)


class CatalogService:
    """Caches one server's ``/object_info`` (thread-safe) and refreshes what goes stale.

    Args:
        system: The server's system client (``GET /object_info``).
    """

    def __init__(self, system: SystemClient) -> None:
        self._system = system
        self._info: dict[str, Any] | None = None
        self._catalog: NodeCatalog | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        size = "empty" if self._info is None else f"{len(self._info)} classes"
        return f"CatalogService({size})"

    @property
    def loaded(self) -> bool:
        """Whether ``/object_info`` has been fetched (and is cached)."""
        return self._info is not None

    def object_info(
        self, deadline: Deadline | None = None, *, refresh: bool = False
    ) -> dict[str, Any]:
        """``GET /object_info``, fetched on first use (``refresh=True`` fetches again)."""
        with self._lock:
            if self._info is None or refresh:
                with (deadline or Deadline.never()).scope():
                    self._info = dict(self._system.object_info())
                self._catalog = NodeCatalog(self._info)
            return self._info

    def catalog(self, deadline: Deadline | None = None) -> NodeCatalog:
        """The validation index over the cached definitions."""
        self.object_info(deadline)
        with self._lock:
            assert self._catalog is not None  # noqa: S101 - set by object_info()
            return self._catalog

    def invalidate(self) -> None:
        """Forget the cache (a server restart); the next use fetches again."""
        with self._lock:
            self._info = None
            self._catalog = None

    def refresh_classes(self, class_types: Iterable[str], deadline: Deadline | None = None) -> None:
        """Refetch some classes into the cache (``GET /object_info/{node_class}`` each)."""
        self.object_info(deadline)
        with self._lock, (deadline or Deadline.never()).scope():
            info = dict(self._info or {})
            for class_type in class_types:
                try:
                    info[class_type] = self._system.node_info(class_type)
                except WitnessError as exc:
                    logger.debug("could not refresh /object_info/%s: %s", class_type, exc)
            self._info = info
            self._catalog = NodeCatalog(info)

    def convert_ui(
        self, workflow: dict[str, Any], deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """A UI-format workflow in API format; node classes missing from the cache are
        refetched once (the cache may predate a restart with new custom nodes)."""
        from witness.core.ui_convert import ui_to_api  # noqa: PLC0415 - most callers never need it

        info = self.object_info(deadline)
        try:
            return ui_to_api(workflow, dict(info))
        except UIConversionError as exc:
            missing = [t for t in exc.class_types if t not in info]
            if not missing:
                raise
            self.refresh_classes(missing, deadline)
            return ui_to_api(workflow, dict(self.object_info(deadline)))

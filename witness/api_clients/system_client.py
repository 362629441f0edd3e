"""Server facts and discovery: stats, features, nodes, models, templates, subgraphs, jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, cast

from witness.api_clients._common import (
    as_list,
    as_mapping,
    check_choice,
    check_int,
    check_text,
    unexpected_shape,
)
from witness.api_clients.types import (
    ExperimentModelFile,
    ExperimentModelFolder,
    Features,
    Job,
    JobsPage,
    NodeInfo,
    SubgraphEntry,
    SubgraphInfo,
    SystemStats,
)
from witness.errors import (
    ApiError,
    FeatureUnavailableError,
    InvalidArgumentError,
    NotFoundError,
)
from witness.transport.http import HttpClient, Timeout
from witness.utils.paths import route

__all__ = ["JOB_STATUSES", "SystemClient"]

JOB_STATUSES = frozenset({"pending", "in_progress", "completed", "failed", "cancelled"})
_JOB_SORT_KEYS = frozenset({"created_at", "execution_duration"})
_SORT_ORDERS = frozenset({"asc", "desc"})


class SystemClient:
    """What the server is and offers.

    Args:
        http: The shared HTTP client.

    Example:
        >>> system = SystemClient(http)
        >>> system.system_stats()["system"]["comfyui_version"]
        '0.3.75'
        >>> "KSampler" in system.object_info()
        True
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http
        self._lock = threading.Lock()
        self._capabilities: dict[str, bool] = {}

    # -- server ----------------------------------------------------------------------

    def system_stats(self) -> SystemStats:
        """Versions, OS, RAM, devices and VRAM.

        Route: ``GET /system_stats``.

        Raises:
            ResponseDecodeError: The answer is not a JSON object.
            TransportError: The server could not be reached.
        """
        return cast(SystemStats, self._get_mapping("/system_stats"))

    def features(self) -> Features:
        """Server feature flags (``supports_preview_metadata``, ``max_upload_size``, ...).

        Route: ``GET /features``.

        Raises:
            ResponseDecodeError: The answer is not a JSON object.
            TransportError: The server could not be reached.
        """
        return cast(Features, self._get_mapping("/features"))

    # -- nodes -------------------------------------------------------------------------

    def object_info(self, *, timeout: Timeout | None = None) -> dict[str, NodeInfo]:
        """Every node class and its inputs/outputs (large: ~550 KB; re-scans model folders).

        Route: ``GET /object_info``.

        Raises:
            ResponseDecodeError: The answer is not a JSON object.
            TransportError: The server could not be reached.
        """
        return cast(dict[str, NodeInfo], self._get_mapping("/object_info", timeout=timeout))

    def node_info(self, node_class: str) -> NodeInfo:
        """One node class's definition.

        Route: ``GET /object_info/{node_class}``.

        Args:
            node_class: The class name, e.g. ``"KSampler"``.

        Raises:
            InvalidArgumentError: ``node_class`` is empty.
            NotFoundError: The server has no such node class (it answers ``{}``).
            TransportError: The server could not be reached.
        """
        check_text(node_class, "node_class")
        path = route("/object_info/{}", node_class)
        data = self._get_mapping(path)
        info = data.get(node_class)
        if not isinstance(info, Mapping):
            raise self._not_found(path, f"the server has no node class {node_class!r}")
        return cast(NodeInfo, dict(info))

    # -- models and extensions -----------------------------------------------------------

    def embeddings(self) -> list[str]:
        """Embedding names (extensions stripped).

        Route: ``GET /embeddings``.
        """
        return self._get_strings("/embeddings")

    def extensions(self) -> list[str]:
        """URLs of the frontend JavaScript extensions.

        Route: ``GET /extensions``.
        """
        return self._get_strings("/extensions")

    def model_folders(self) -> list[str]:
        """Model folder types (``checkpoints``, ``loras``, ...).

        Route: ``GET /models``.
        """
        return self._get_strings("/models")

    def models(self, folder: str) -> list[str]:
        """Model files in a folder type, as relative paths (OS separators).

        Route: ``GET /models/{folder}``.

        Args:
            folder: A folder type from :meth:`model_folders`.

        Raises:
            InvalidArgumentError: ``folder`` is empty.
            NotFoundError: Unknown folder type.
        """
        check_text(folder, "folder")
        return self._get_strings(route("/models/{}", folder))

    def experiment_model_folders(self) -> list[ExperimentModelFolder]:
        """Model folder types with their absolute directories (experimental route).

        Route: ``GET /experiment/models``.
        """
        return cast(list[ExperimentModelFolder], self._get_list("/experiment/models"))

    def experiment_models(self, folder: str) -> list[ExperimentModelFile]:
        """Model files of a folder type with size, times and ``pathIndex`` (experimental).

        Route: ``GET /experiment/models/{folder}``.

        Raises:
            InvalidArgumentError: ``folder`` is empty.
            NotFoundError: Unknown folder type.
        """
        check_text(folder, "folder")
        return cast(
            list[ExperimentModelFile], self._get_list(route("/experiment/models/{}", folder))
        )

    def model_preview(self, folder: str, path_index: int, filename: str) -> bytes:
        """A model's preview image (WebP), from a sibling image or the safetensors cover.

        Route: ``GET /experiment/models/preview/{folder}/{path_index}/{filename}``.

        Args:
            folder: The folder type.
            path_index: Which of the folder type's directories (``pathIndex``), from 0.
            filename: The model file relative to that directory.

        Raises:
            InvalidArgumentError: A non-integer or negative ``path_index`` (the server would
                answer 500), or a ``filename`` that is absolute or contains ``..``.
            NotFoundError: No such model or no preview.
            ServerError: ``path_index`` beyond the folder's directories.
        """
        check_text(folder, "folder")
        check_int(path_index, "path_index", minimum=0)
        check_text(filename, "filename")
        parts = filename.replace("\\", "/").split("/")
        if filename.startswith(("/", "\\")) or ".." in parts:
            raise InvalidArgumentError("filename", "must be relative and must not contain '..'")
        path = route("/experiment/models/preview/{}/{}/{}", folder, path_index, filename)
        return self._http.request("GET", path).content

    def workflow_templates(self) -> dict[str, list[str]]:
        """Workflow templates shipped by custom node packs: ``{pack: [names]}``.

        Route: ``GET /workflow_templates``.
        """
        return cast(dict[str, list[str]], self._get_mapping("/workflow_templates"))

    def global_subgraphs(self) -> dict[str, SubgraphInfo]:
        """Reusable subgraphs (blueprints): ``{id: {source, name, info}}``.

        Route: ``GET /global_subgraphs``.
        """
        return cast(dict[str, SubgraphInfo], self._get_mapping("/global_subgraphs"))

    def global_subgraph(self, subgraph_id: str) -> SubgraphEntry:
        """One subgraph with its ``data`` (the subgraph's JSON text).

        Route: ``GET /global_subgraphs/{id}``.

        Raises:
            InvalidArgumentError: ``subgraph_id`` is empty.
            NotFoundError: Unknown id (the server answers ``null``).
        """
        check_text(subgraph_id, "subgraph_id")
        path = route("/global_subgraphs/{}", subgraph_id)
        data = self._http.request_json("GET", path)
        if data is None:
            raise self._not_found(path, f"no global subgraph {subgraph_id!r}")
        return cast(SubgraphEntry, as_mapping(self._http, data, "GET", path))

    # -- newer servers -------------------------------------------------------------------

    def jobs(
        self,
        *,
        status: str | Iterable[str] | None = None,
        workflow_id: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> JobsPage:
        """Running, pending and finished jobs in one list (ComfyUI v0.6.0+).

        Route: ``GET /api/jobs``.

        Args:
            status: Only these: ``pending``, ``in_progress``, ``completed``, ``failed``,
                ``cancelled`` (v0.9.0+).
            workflow_id: Only jobs of this workflow (``extra_pnginfo.workflow.id``).
            sort_by: ``created_at`` or ``execution_duration``.
            sort_order: ``asc`` or ``desc`` (server default).
            limit: Page size (> 0).
            offset: Jobs to skip (>= 0).

        Returns:
            ``{"jobs": [...], "pagination": {offset, limit, total, has_more}}``.

        Raises:
            InvalidArgumentError: A malformed argument.
            FeatureUnavailableError: The server has no ``/api/jobs`` (e.g. 0.3.75).
            BadRequestError: The server rejected a parameter.
        """
        params: dict[str, Any] = {}
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            if not wanted:
                raise InvalidArgumentError("status", "must name at least one status")
            for value in wanted:
                check_choice(value, "status", JOB_STATUSES)
            params["status"] = ",".join(wanted)
        if workflow_id is not None:
            params["workflow_id"] = check_text(workflow_id, "workflow_id")
        if sort_by is not None:
            params["sort_by"] = check_choice(sort_by, "sort_by", _JOB_SORT_KEYS)
        if sort_order is not None:
            params["sort_order"] = check_choice(sort_order, "sort_order", _SORT_ORDERS)
        if limit is not None:
            params["limit"] = check_int(limit, "limit", minimum=1)
        if offset is not None:
            params["offset"] = check_int(offset, "offset", minimum=0)
        data = self._optional("GET /api/jobs", "/jobs", params=params)
        page = as_mapping(self._http, data, "GET", "/jobs")
        if not isinstance(page.get("jobs"), list):
            raise unexpected_shape(self._http, "GET", "/jobs", data)
        page.setdefault("pagination", {})
        return cast(JobsPage, page)

    def job(self, job_id: str) -> Job:
        """One job; finished jobs include ``outputs``, ``execution_status`` and ``workflow``
        (ComfyUI v0.6.0+).

        Route: ``GET /api/jobs/{job_id}``.

        Raises:
            InvalidArgumentError: ``job_id`` is empty.
            NotFoundError: No such job.
            FeatureUnavailableError: The server has no jobs API.
        """
        check_text(job_id, "job_id")
        path = route("/jobs/{}", job_id)
        data = self._optional("GET /api/jobs/{id}", path)
        return cast(Job, as_mapping(self._http, data, "GET", path))

    def node_replacements(self) -> dict[str, list[dict[str, Any]]]:
        """Deprecated node classes and their replacements (ComfyUI v0.14.0+).

        Route: ``GET /node_replacements``.

        Raises:
            FeatureUnavailableError: The server has no such route.
        """
        data = self._optional("GET /node_replacements", "/node_replacements")
        return cast(
            dict[str, list[dict[str, Any]]],
            as_mapping(self._http, data, "GET", "/node_replacements"),
        )

    def supports(self, capability: str) -> bool:
        """Whether the server offers ``"jobs"`` or ``"node_replacements"`` (probed once,
        then cached for this client).

        Routes: ``GET /api/jobs?limit=1`` or ``GET /node_replacements``.

        Raises:
            InvalidArgumentError: Unknown capability name.
            TransportError: The server could not be reached.
        """
        probes = {"jobs": ("/jobs", {"limit": 1}), "node_replacements": ("/node_replacements", {})}
        check_choice(capability, "capability", probes)
        with self._lock:
            known = self._capabilities.get(capability)
        if known is not None:
            return known
        path, params = probes[capability]
        try:
            self._http.request("GET", path, params=params).close()
            present = True
        except ApiError as exc:
            if exc.status not in (404, 405):
                raise
            present = False
        with self._lock:
            self._capabilities[capability] = present
        return present

    # -- internals -------------------------------------------------------------------

    def _optional(self, capability: str, path: str, **kwargs: Any) -> Any:
        """GET a route newer servers have; a bare 404/405 means the route is missing."""
        try:
            return self._http.request_json("GET", path, **kwargs)
        except ApiError as exc:
            # A route that exists answers "not found" with a JSON {"error": ...} body.
            if exc.status in (404, 405) and not (
                isinstance(exc.body, Mapping) and "error" in exc.body
            ):
                raise FeatureUnavailableError(
                    capability,
                    f"added in newer ComfyUI versions; this server answered HTTP {exc.status}",
                ) from exc
            raise

    def _get_mapping(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return as_mapping(self._http, self._http.request_json("GET", path, **kwargs), "GET", path)

    def _get_list(self, path: str) -> list[Any]:
        return as_list(self._http, self._http.request_json("GET", path), "GET", path)

    def _get_strings(self, path: str) -> list[str]:
        items = self._get_list(path)
        if not all(isinstance(i, str) for i in items):
            raise unexpected_shape(self._http, "GET", path, items)
        return items

    def _not_found(self, path: str, message: str) -> NotFoundError:
        return NotFoundError(
            status=200, method="GET", url=self._http.url(path), server_message=message
        )

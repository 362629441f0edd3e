"""Group clients of the Comfy API v2 (``/api/v2/*``): Comfy Cloud, serverless deployments and
a self-hosted ComfyUI behind ``comfy-api-proxy``.

All of them take the shared :class:`~witness.utils.http_client.HttpClient`:

* :class:`JobsClient` — submit (with an Idempotency-Key), list (pages), get, workflow,
  cancel, events (a blocking iterator of typed server-sent events);
* :class:`AssetsClient` — upload (streamed), from-hash, from-path, head by hash, get,
  content (streamed to disk), delete;
* :class:`V2SystemClient` — health; :func:`detect_v2` asks it once.
"""

from witness.api_clients.v2.assets_client import AssetsClient
from witness.api_clients.v2.jobs_client import JobsClient
from witness.api_clients.v2.system_client import V2SystemClient, detect_v2

__all__ = ["AssetsClient", "JobsClient", "V2SystemClient", "detect_v2"]

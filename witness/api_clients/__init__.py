"""One client class per ComfyUI endpoint group, each built on a shared HttpClient.

Names are imported lazily, so importing one group does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from witness.api_clients.file_client import FileClient
    from witness.api_clients.history_client import HistoryClient
    from witness.api_clients.internal_client import InternalClient
    from witness.api_clients.prompt_client import PromptClient
    from witness.api_clients.queue_client import QueueClient
    from witness.api_clients.system_client import SystemClient
    from witness.api_clients.user_client import UserClient
    from witness.api_clients.websocket_client import WebSocketClient

_EXPORTS: dict[str, str] = {
    "FileClient": "witness.api_clients.file_client",
    "HistoryClient": "witness.api_clients.history_client",
    "InternalClient": "witness.api_clients.internal_client",
    "PromptClient": "witness.api_clients.prompt_client",
    "QueueClient": "witness.api_clients.queue_client",
    "SystemClient": "witness.api_clients.system_client",
    "UserClient": "witness.api_clients.user_client",
    "WebSocketClient": "witness.api_clients.websocket_client",
}

__all__ = [
    "FileClient",
    "HistoryClient",
    "InternalClient",
    "PromptClient",
    "QueueClient",
    "SystemClient",
    "UserClient",
    "WebSocketClient",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'witness.api_clients' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

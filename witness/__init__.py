"""witness: a synchronous, modular client for the ComfyUI server API.

Public names are imported lazily on first use, so ``import witness`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from witness._version import __version__

if TYPE_CHECKING:
    from witness.config.settings import Settings
    from witness.errors import (
        ApiError,
        BadRequestError,
        ConfigError,
        ConflictError,
        FeatureUnavailableError,
        ForbiddenError,
        InvalidArgumentError,
        NodeError,
        NotFoundError,
        PayloadTooLargeError,
        PromptValidationError,
        RequestTimeoutError,
        ResponseDecodeError,
        ServerError,
        ServerUnavailableError,
        TransportError,
        UnauthorizedError,
        WitnessError,
    )
    from witness.utils.http_client import HttpClient

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Settings": "witness.config.settings",
    "HttpClient": "witness.utils.http_client",
    **{
        name: "witness.errors"
        for name in (
            "ApiError",
            "BadRequestError",
            "ConfigError",
            "ConflictError",
            "FeatureUnavailableError",
            "ForbiddenError",
            "InvalidArgumentError",
            "NodeError",
            "NotFoundError",
            "PayloadTooLargeError",
            "PromptValidationError",
            "RequestTimeoutError",
            "ResponseDecodeError",
            "ServerError",
            "ServerUnavailableError",
            "TransportError",
            "UnauthorizedError",
            "WitnessError",
        )
    },
}

__all__ = [
    "ApiError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "FeatureUnavailableError",
    "ForbiddenError",
    "HttpClient",
    "InvalidArgumentError",
    "NodeError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PromptValidationError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ServerError",
    "ServerUnavailableError",
    "Settings",
    "TransportError",
    "UnauthorizedError",
    "WitnessError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'witness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""The one way witness reaches a server.

- :mod:`witness.transport.deadline`: :class:`Deadline`, one per call, clamping every timeout;
- :mod:`witness.transport.retry`: :class:`RetryPolicy`, the one retry/backoff policy;
- :mod:`witness.transport.http`: :class:`HttpClient` (the server connection, with its
  credentials), :class:`PublicClient` (credential-free third-party fetches), both on
  :class:`Transport`, the one request loop;
- :mod:`witness.transport.errors`: the one mapping of failures (HTTP and the websocket
  handshake) to :mod:`witness.errors`, with ``TransportError.sent``.

``HttpClient``, ``PublicClient`` and ``Transport`` are imported on first use, so importing the
deadline or the policy stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from witness.transport.deadline import Deadline
from witness.transport.retry import RetryPolicy

if TYPE_CHECKING:
    from witness.transport.http import HttpClient, PublicClient, Transport

__all__ = ["Deadline", "HttpClient", "PublicClient", "RetryPolicy", "Transport"]

_LAZY = frozenset({"HttpClient", "PublicClient", "Transport"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("witness.transport.http"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

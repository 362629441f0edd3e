"""Deprecated alias: :class:`HttpClient` moved to :mod:`witness.transport.http`."""

from __future__ import annotations

from witness.transport.http import HttpClient, Timeout

__all__ = ["HttpClient", "Timeout"]

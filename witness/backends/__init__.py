"""Execution surfaces behind one protocol (:class:`~witness.backends.base.Backend`)."""

from witness.backends.base import (
    Backend,
    BackendOptions,
    MediaUploader,
    PreparedWorkflow,
    RunHandle,
    WaitCallbacks,
)

__all__ = [
    "Backend",
    "BackendOptions",
    "MediaUploader",
    "PreparedWorkflow",
    "RunHandle",
    "WaitCallbacks",
]

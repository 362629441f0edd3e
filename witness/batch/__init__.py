"""Durable batches: one workflow x many param sets with a crash-safe SQLite journal.

See :func:`run_batch` (:mod:`witness.batch.runner`); for a Ray cluster,
:func:`witness.batch.ray_runner.run_batch_ray` (extra ``witness[ray]``).
"""

from witness.batch.runner import BatchEvent, BatchSummary, run_batch

__all__ = ["BatchEvent", "BatchSummary", "run_batch"]

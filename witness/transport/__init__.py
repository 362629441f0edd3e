"""The one way witness reaches a server: deadlines, the retry policy and the HTTP client."""

from witness.transport.deadline import Deadline
from witness.transport.retry import RetryPolicy

__all__ = ["Deadline", "RetryPolicy"]

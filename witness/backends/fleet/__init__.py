"""A fleet of ComfyUI servers as one backend: capability and least-busy routing, health with
circuit breakers, failover that never runs a prompt twice, per-server statistics.

Example:
    >>> with Fleet(["http://gpu1:8188", "http://gpu2:8188"]) as fleet:  # doctest: +SKIP
    ...     result = fleet.execute("workflow.json", {"seed": 1})
    ...     print(fleet.stats())
"""

from witness.backends.fleet.fleet import Fleet, FleetHandle, FleetOptions
from witness.backends.fleet.health import CircuitBreaker
from witness.backends.fleet.member import Member
from witness.backends.fleet.stats import ServerStats

__all__ = ["CircuitBreaker", "Fleet", "FleetHandle", "FleetOptions", "Member", "ServerStats"]

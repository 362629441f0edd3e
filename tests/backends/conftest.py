"""Fixtures of the backend tests: those of the v2 client tests (the real comfy-api-proxy)."""

from tests.api_clients.v2.conftest import *  # noqa: F403
from tests.api_clients.v2.conftest import __all__  # noqa: F401 - re-exported

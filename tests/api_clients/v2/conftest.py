"""Fixtures of the v2 client tests: the real comfy-api-proxy (tests/support/v2_proxy.py)."""

from tests.support.v2_proxy import (
    private_proxy_fixture,
    v2_http_fixture,
    v2_proxy_fixture,
    v2_token_proxy_fixture,
)

__all__ = [
    "private_proxy_fixture",
    "v2_http_fixture",
    "v2_proxy_fixture",
    "v2_token_proxy_fixture",
]

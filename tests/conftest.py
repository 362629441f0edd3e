"""Shared fixtures: a real ComfyUI server for integration tests.

The session's server is started once by ``scripts/comfyui_server.py`` (installing ComfyUI on
first use). Set ``WITNESS_TEST_SERVER_URL`` to run the suite against a server that is already
running instead; tests that must kill or restart a server then use a private one of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from scripts.comfyui_server import ComfyServer
from witness.config.settings import Settings
from witness.utils.http_client import HttpClient


@pytest.fixture(scope="session")
def comfy_server() -> Iterator[ComfyServer | None]:
    """The session's ComfyUI, or ``None`` when an external server is used."""
    if os.environ.get("WITNESS_TEST_SERVER_URL"):
        yield None
        return
    server = ComfyServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def comfy_url(comfy_server: ComfyServer | None) -> str:
    """Base URL of the session's ComfyUI."""
    if comfy_server is None:
        return os.environ["WITNESS_TEST_SERVER_URL"].rstrip("/")
    return comfy_server.url


@pytest.fixture
def settings(comfy_url: str) -> Settings:
    """Settings pointing at the session's server (no environment involved)."""
    return Settings(api_url=comfy_url, read_timeout=60.0, retries=1, retry_backoff=0.05)


@pytest.fixture
def http(settings: Settings) -> Iterator[HttpClient]:
    """An HttpClient on the session's server, closed after the test."""
    client = HttpClient(settings)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def private_server() -> Iterator[Callable[..., ComfyServer]]:
    """Factory for a server of the test's own (to kill, restart or start with other flags).

    Every server it starts is stopped after the test.
    """
    started: list[ComfyServer] = []

    def start(**kwargs: Any) -> ComfyServer:
        server = ComfyServer(**kwargs)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real server as ``integration``."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"comfy_server", "comfy_url", "private_server", "fleet_servers"}:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def fleet_servers() -> Iterator[list[ComfyServer]]:
    """Three servers for fleet and batch tests: A and B with the test nodes, C without."""
    from tests.support.fleet import servers_fixture  # noqa: PLC0415

    yield from servers_fixture((True, True, False))

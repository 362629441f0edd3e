"""Shared fixtures: a real ComfyUI server for integration tests, and the marking rule.

THE MARKING RULE (explicit; nothing is guessed):

* A test that needs the real ComfyUI carries the ``integration`` marker itself: put
  ``pytestmark = pytest.mark.integration`` at the top of a live module, or
  ``@pytest.mark.integration`` on the test. "Needs" means: it requests ``comfy_install``,
  ``comfy_server``, ``comfy_url`` or ``private_server`` (directly or through another fixture,
  e.g. ``settings``/``http``), or it starts a server, installs ComfyUI or runs a program that does.
  A test that starts a server (``ComfyServer(...).start()``) or runs ComfyUI's Python without
  those fixtures requests ``comfy_install`` (so the install is there, and the check sees it).
* Collection fails, naming each test, when a test requests one of those fixtures without the
  marker; and a test without the marker that would install ComfyUI into the configured home
  fails instead of installing. So ``python -m pytest -m "not integration"`` runs the unit tests
  in seconds with no install and no server, on any machine.
* ``python -m pytest`` runs everything. When a selected test needs ComfyUI and it is missing,
  it is installed at the end of collection, before the first test and outside every test's
  timeout (``scripts/comfyui_server.py install``; progress on the terminal even under output
  capture; concurrent runs wait on the install's file lock).

The session's server is started once by ``scripts/comfyui_server.py``. Set
``WITNESS_TEST_SERVER_URL`` to run the suite against a server that is already running instead;
tests that must kill or restart a server then use a private one of their own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import comfyui_server
from scripts.comfyui_server import ComfyServer
from witness.config.settings import Settings
from witness.transport.http import HttpClient

# Fixtures that need the real ComfyUI (an install, a server): tests using them must be marked.
SERVER_FIXTURES = frozenset(
    {"comfy_install", "comfy_server", "comfy_url", "private_server", "fleet_servers"}
)
# The ComfyUI home the session was started with (tests may point the variable elsewhere).
SESSION_HOME = comfyui_server.home()
# Set once the marking check passed (pytest calls pytest_collection_finish even when not).
_collection_checked: list[bool] = []


def ensure_install(config: pytest.Config) -> Path:
    """Install the local CPU ComfyUI (and the tiny checkpoint) if missing, visibly.

    Output capture is suspended meanwhile, so the install's progress lines reach the terminal
    even under pytest's capture. Concurrent sessions wait on the install's file lock.
    """
    if comfyui_server.is_installed() and comfyui_server.tiny_checkpoint_is_current():
        return comfyui_server.home()
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        if not comfyui_server.is_installed():
            print(
                f"\nComfyUI is not installed in {comfyui_server.home()}: installing it now "
                "(first run only; ~5.5 GB, a few minutes) ...",
                file=sys.stderr,
                flush=True,
            )
        comfyui_server.install()
    return comfyui_server.home()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install before the first test when a selected test needs ComfyUI.

    Done here, not inside the first test, so that the install is outside every test's timeout.
    """
    if session.config.option.collectonly or not _collection_checked:
        return
    external = bool(os.environ.get("WITNESS_TEST_SERVER_URL"))
    needs = {"comfy_install"} if external else SERVER_FIXTURES
    if any(needs & set(getattr(item, "fixturenames", ())) for item in session.items):
        ensure_install(session.config)


@pytest.fixture(scope="session")
def comfy_install(request: pytest.FixtureRequest) -> Path:
    """The home of the local CPU ComfyUI, installed (visibly) first if it is missing."""
    return ensure_install(request.config)


@pytest.fixture(scope="session")
def comfy_server(request: pytest.FixtureRequest) -> Iterator[ComfyServer | None]:
    """The session's ComfyUI, or ``None`` when an external server is used."""
    if os.environ.get("WITNESS_TEST_SERVER_URL"):
        yield None
        return
    request.getfixturevalue("comfy_install")
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
def private_server(comfy_install: Path) -> Iterator[Callable[..., ComfyServer]]:
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


def pytest_configure(config: pytest.Config) -> None:
    """A developer's ``./.env`` must not change what the tests talk to (``Witness()`` reads
    it by default; tests of that behaviour unset this themselves)."""
    os.environ.setdefault("WITNESS_NO_DOTENV", "1")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse tests that use the real server without the ``integration`` marker (see the top)."""
    unmarked = []
    for item in items:
        uses = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("integration") is None:
            unmarked.append(f"  {item.nodeid}  (uses {', '.join(sorted(uses))})")
    if unmarked:
        raise pytest.UsageError(
            "these tests use the real ComfyUI server but are not marked `integration`:\n"
            + "\n".join(unmarked)
            + "\nMark them explicitly: `pytestmark = pytest.mark.integration` at the top of the "
            "module, or `@pytest.mark.integration` on the test (rule: top of tests/conftest.py)."
        )
    _collection_checked.append(True)


@pytest.fixture(autouse=True)
def _no_install_without_the_integration_marker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test without the marker must not install ComfyUI into the configured home."""
    if request.node.get_closest_marker("integration") is not None:
        return
    real_install = comfyui_server._install_comfyui
    nodeid = request.node.nodeid

    def guarded(*, force: bool = False) -> None:
        if comfyui_server.home() == SESSION_HOME and (force or not comfyui_server.is_installed()):
            pytest.fail(
                f"{nodeid} would install ComfyUI into {SESSION_HOME} but is not marked "
                "`integration`; mark it (rule: top of tests/conftest.py)",
                pytrace=False,
            )
        real_install(force=force)

    monkeypatch.setattr(comfyui_server, "_install_comfyui", guarded)


@pytest.fixture(scope="session")
def fleet_servers(comfy_install: Path) -> Iterator[list[ComfyServer]]:
    """Three servers for fleet and batch tests: A and B with the test nodes, C without."""
    from tests.support.fleet import servers_fixture

    yield from servers_fixture((True, True, False))

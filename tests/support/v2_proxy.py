"""``comfy-api-proxy`` (the Comfy API v2 in front of a self-hosted ComfyUI) for the tests.

:class:`ProxyProcess` starts the real proxy (a dev dependency) as a subprocess on a free
loopback port in front of the session's ComfyUI, waits for ``GET /api/v2/health`` and stops
it without leaving a process behind. Fixtures (import them into a conftest):

* ``v2_proxy`` — the session's proxy (no token);
* ``v2_token_proxy`` — one started with ``--token`` (:data:`TOKEN`);
* ``private_proxy`` — a factory for proxies a test may kill;
* ``v2_http`` — an :class:`HttpClient` on ``v2_proxy``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from scripts.comfyui_server import free_port
from witness.config.settings import Settings
from witness.transport.http import HttpClient

TOKEN = "witness-proxy-token-1234"
START_TIMEOUT = 30.0


class ProxyProcess:
    """One ``comfy-api-proxy`` process.

    Args:
        comfyui_url: The ComfyUI it fronts.
        token: ``--token`` (``Authorization: Bearer`` required on /api/v2/* but health).
        extra_args: More command-line arguments.
    """

    def __init__(
        self, comfyui_url: str, *, token: str | None = None, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.comfyui_url = comfyui_url
        self.token = token
        self.extra_args = extra_args
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="comfy-api-proxy-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProxyProcess:
        args = [
            sys.executable,
            "-m",
            "comfy_api_proxy.cli",
            "--comfyui",
            self.comfyui_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        if self.token:
            args += ["--token", self.token]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"comfy-api-proxy died at start:\n{self.log.read_text()}")
            try:
                if requests.get(self.url + "/api/v2/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"comfy-api-proxy not healthy in {START_TIMEOUT} s")

    def kill(self) -> None:
        """SIGKILL the process group (a crash: no clean shutdown)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Terminate (then kill) the process; waits for it, so nothing is left."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.unlink(missing_ok=True)


@pytest.fixture(scope="session", name="v2_proxy")
def v2_proxy_fixture(comfy_url: str) -> Iterator[ProxyProcess]:
    """The session's proxy in front of the session's ComfyUI."""
    proxy = ProxyProcess(comfy_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session", name="v2_token_proxy")
def v2_token_proxy_fixture(comfy_url: str) -> Iterator[ProxyProcess]:
    """A proxy that requires ``Authorization: Bearer`` :data:`TOKEN`."""
    proxy = ProxyProcess(comfy_url, token=TOKEN).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(name="private_proxy")
def private_proxy_fixture(comfy_url: str) -> Iterator[Callable[..., ProxyProcess]]:
    """Factory for proxies of the test's own (stopped after the test)."""
    started: list[ProxyProcess] = []

    def start(**kwargs: object) -> ProxyProcess:
        proxy = ProxyProcess(comfy_url, **kwargs)  # type: ignore[arg-type]
        started.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in started:
            proxy.stop()


@pytest.fixture(name="v2_http")
def v2_http_fixture(v2_proxy: ProxyProcess) -> Iterator[HttpClient]:
    """An HttpClient on the session's proxy."""
    client = HttpClient(
        Settings(api_url=v2_proxy.url, read_timeout=60.0, retries=1, retry_backoff=0.05)
    )
    try:
        yield client
    finally:
        client.close()


def tiny_prompt(color: int = 0, prefix: str = "witness_v2") -> dict[str, object]:
    """EmptyImage(8x8, ``color``) -> SaveImage: an API-format prompt that runs in ~10 ms."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": prefix},
            "_meta": {"title": "$output.image"},
        },
    }


def error_prompt() -> dict[str, object]:
    """EmptyImage -> TestSyncError (raises RuntimeError) -> SaveImage."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {
            "class_type": "TestSyncError",
            "inputs": {"value": ["1", 0]},
            "_meta": {"title": "Boom"},
        },
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "witness_v2_err"},
        },
    }


def count_cancels(monkeypatch: pytest.MonkeyPatch, backend: object) -> list[str]:
    """Record each ``backend.cancel(prompt_id)`` (still carried out); returns the list."""
    calls: list[str] = []
    real = backend.cancel  # type: ignore[attr-defined]

    def counting(prompt_id: str) -> object:
        calls.append(prompt_id)
        return real(prompt_id)

    monkeypatch.setattr(backend, "cancel", counting)
    return calls


def wait_status(backend: object, job_id: str, wanted: str, limit: float = 30.0) -> None:
    """Wait until ``backend.jobs.get(job_id)`` has status ``wanted`` (fail after ``limit``)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if backend.jobs.get(job_id).status == wanted:  # type: ignore[attr-defined]
            return
        time.sleep(0.05)
    pytest.fail(f"job {job_id} not {wanted} within {limit} s")

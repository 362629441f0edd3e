"""The proxy and CA-bundle environment: read once per origin, same result as ``requests``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest
import requests

import witness.transport.http as http_module
from tests.support.local_http import serve
from witness.config.settings import Settings
from witness.errors import ServerUnavailableError
from witness.transport.http import HttpClient, OwnOriginSession

ENV_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTP_PROXY": "http://proxy.test:3128"},
        {"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "comfy.test"},
        {"ALL_PROXY": "socks5://proxy.test:1080", "NO_PROXY": "127.0.0.1,.internal"},
        {"no_proxy": "*", "http_proxy": "http://proxy.test:3128"},
        {"REQUESTS_CA_BUNDLE": "/tmp/ca.pem"},
        {"CURL_CA_BUNDLE": "/tmp/curl-ca.pem", "HTTPS_PROXY": "http://proxy.test:1"},
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        "http://comfy.test:8188/api/prompt",
        "https://comfy.test/api/history/x",
        "http://127.0.0.1:8188/api/queue",
        "https://cdn.internal/a.png",
        "https://example.com/wf.json",
    ],
)
@pytest.mark.parametrize("verify", [True, None, False, "/etc/own-ca.pem"])
def test_same_settings_as_requests(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], url: str, verify: Any
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    ours = OwnOriginSession()
    theirs = requests.Session()
    for _ in range(2):  # the first call reads the environment, the second the cache
        assert ours.merge_environment_settings(
            url, {}, None, verify, None
        ) == theirs.merge_environment_settings(url, {}, None, verify, None)
    given = {"no_proxy": "comfy.test", "https": "http://given.test:1"}
    assert ours.merge_environment_settings(
        url, dict(given), None, verify, None
    ) == theirs.merge_environment_settings(url, dict(given), None, verify, None)


def test_the_environment_is_read_once_per_origin(
    clean_env: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = http_module.get_environ_proxies

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    clean_env.setattr(http_module, "get_environ_proxies", counting)
    session = OwnOriginSession()
    for path in ("/api/prompt", "/api/history/1", "/api/queue?x=1"):
        session.merge_environment_settings("http://comfy.test:8188" + path, {}, None, True, None)
    assert len(calls) == 1
    session.merge_environment_settings("http://comfy.test:8189/api/prompt", {}, None, True, None)
    session.merge_environment_settings("https://comfy.test:8188/api/prompt", {}, None, True, None)
    assert len(calls) == 3


def test_many_origins_do_not_grow_the_cache_without_bound(clean_env: pytest.MonkeyPatch) -> None:
    session = OwnOriginSession()
    for port in range(1000, 1300):
        session.merge_environment_settings(f"http://host.test:{port}/x", {}, None, True, None)
    assert len(session._environment) <= http_module._ENVIRONMENT_ORIGINS


def test_trust_env_off_reads_nothing(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTP_PROXY", "http://proxy.test:3128")
    session = OwnOriginSession()
    session.trust_env = False
    merged = session.merge_environment_settings("http://comfy.test/x", {}, None, True, None)
    assert dict(merged["proxies"]) == {}
    assert session._environment == {}


# -- through a real forward proxy ------------------------------------------------------------


class _Proxy(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)  # a forward proxy gets the absolute URL
        body = json.dumps({"via": "proxy", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    _Proxy.seen = []
    with serve(_Proxy) as url:
        yield url


def test_requests_go_through_the_environment_proxy(
    clean_env: pytest.MonkeyPatch, proxy: str
) -> None:
    clean_env.setenv("HTTP_PROXY", proxy)
    with HttpClient(Settings(api_url="http://comfy.invalid:8188", retries=0)) as http:
        for _ in range(3):
            answer = http.request_json("GET", "/system_stats")
            assert answer["via"] == "proxy"
    assert _Proxy.seen == ["http://comfy.invalid:8188/api/system_stats"] * 3


def test_no_proxy_sends_the_host_direct(clean_env: pytest.MonkeyPatch, proxy: str) -> None:
    clean_env.setenv("HTTP_PROXY", proxy)
    clean_env.setenv("NO_PROXY", "comfy.invalid")
    settings = Settings(api_url="http://comfy.invalid:8188", retries=0)
    with HttpClient(settings) as http, pytest.raises(ServerUnavailableError):
        http.request("GET", "/system_stats", timeout=2.0)
    assert _Proxy.seen == []

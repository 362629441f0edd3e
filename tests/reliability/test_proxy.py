"""A reverse proxy in front of the real server that answers HTML, 401 or 403, and a key
that must never leak into logs, exception text or reprs."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.conftest import EXAMPLES, Proxy
from witness import Witness
from witness.errors import (
    ForbiddenError,
    ResponseDecodeError,
    UnauthorizedError,
    WebSocketError,
    WitnessError,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
SECRET = "sk-witness-" + uuid.uuid4().hex


def _on(prefix: str, status: int, ctype: str, body: bytes) -> Callable[..., Any]:
    def rule(method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes] | None:
        return (status, ctype, body) if path.startswith(prefix) else None

    return rule


def test_html_200_instead_of_json(comfy_url: str, proxy_factory: Callable[[str], Proxy]) -> None:
    """A captive portal / misrouted proxy answering 200 with an HTML page."""
    proxy = proxy_factory(comfy_url)
    proxy.rules.append(_on("/api/object_info", 200, "text/html", HTML))
    with Witness(proxy.url, retries=0) as kit, pytest.raises(ResponseDecodeError) as caught:
        kit.execute(EXAMPLES / "invert.json")
    error = caught.value
    assert error.status == 200
    assert error.content_type == "text/html"
    assert "not JSON" in str(error)
    assert "/api/object_info" in str(error)


def test_html_200_answer_to_submit(comfy_url: str, proxy_factory: Callable[[str], Proxy]) -> None:
    proxy = proxy_factory(comfy_url)
    proxy.rules.append(_on("/api/prompt", 200, "text/html", HTML))
    with Witness(proxy.url, retries=0) as kit, pytest.raises(ResponseDecodeError) as caught:
        kit.execute(EXAMPLES / "invert.json", {"color": 7}, validate=False)
    assert "POST" in str(caught.value)


def test_html_502_error_page(comfy_url: str, proxy_factory: Callable[[str], Proxy]) -> None:
    proxy = proxy_factory(comfy_url)
    proxy.rules.append(_on("/api/queue", 502, "text/html", HTML))
    with Witness(proxy.url, retries=1, retry_backoff=0.01) as kit:  # noqa: SIM117
        with pytest.raises(WitnessError) as caught:
            kit.queue.get()
    assert "502" in str(caught.value)
    assert "Bad Gateway" in str(caught.value)
    assert "<html" not in str(caught.value).lower()


def test_plain_text_answer(comfy_url: str, proxy_factory: Callable[[str], Proxy]) -> None:
    proxy = proxy_factory(comfy_url)
    proxy.rules.append(_on("/api/history", 200, "text/plain", b"upstream says hello"))
    with Witness(proxy.url, retries=0) as kit, pytest.raises(ResponseDecodeError) as caught:
        kit.history.get(str(uuid.uuid4()))
    assert "upstream says hello" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "error_type", "body"),
    [
        (401, UnauthorizedError, b'{"error": "invalid token"}'),
        (403, ForbiddenError, b"<html><title>403 Forbidden</title><body>denied</body></html>"),
    ],
)
def test_auth_proxy_refuses(
    comfy_url: str,
    proxy_factory: Callable[[str], Proxy],
    status: int,
    error_type: type[Exception],
    body: bytes,
) -> None:
    proxy = proxy_factory(comfy_url)
    ctype = "application/json" if body.startswith(b"{") else "text/html"
    proxy.rules.append(lambda method, path, headers: (status, ctype, body))
    with Witness(proxy.url, api_key=SECRET, retries=2) as kit:
        with pytest.raises(error_type) as caught:
            kit.execute(EXAMPLES / "invert.json")
        assert caught.value.status == status  # type: ignore[attr-defined]
        assert str(status) in str(caught.value)
        with pytest.raises(WebSocketError) as ws:
            kit.ws.connect(timeout=5)
        assert str(status) in str(ws.value)
    assert len(proxy.seen) == 2  # not retried: one /object_info, one websocket upgrade
    assert proxy.seen[0][2].get("Authorization") == f"Bearer {SECRET}"
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_auth_proxy_lets_the_key_through(
    comfy_url: str, proxy_factory: Callable[[str], Proxy], forget: Callable[..., None]
) -> None:
    """With the right key the proxy forwards: a full run works through it (websocket too)."""
    proxy = proxy_factory(comfy_url)

    def guard(method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes] | None:
        if headers.get("Authorization") != f"Bearer {SECRET}":
            return (401, "application/json", b'{"error": "no"}')
        if path.startswith("/ws"):
            return (403, "text/plain", b"this proxy does not do websockets")
        return None

    proxy.rules.append(guard)
    with Witness(proxy.url, api_key=SECRET) as kit:
        result = kit.execute(EXAMPLES / "invert.json", {"color": 0x123456})
        forget(result)
    assert result.ok
    assert len(result.images) == 1


def _provoke(urls: tuple[str, ...], **secrets: Any) -> tuple[list[str], list[BaseException]]:
    """Run failing calls of every kind; return the texts witness produced and the errors."""
    texts: list[str] = []
    errors: list[BaseException] = []
    for url in urls:
        with Witness(url, retries=1, retry_backoff=0.01, connect_timeout=1.0, **secrets) as kit:
            texts += [repr(kit), repr(kit.settings), repr(kit.http), repr(kit.ws), str(kit.ws.url)]
            calls: list[Callable[[], object]] = [
                lambda: kit.execute(EXAMPLES / "invert.json"),
                kit.queue.get,
                lambda: kit.history.get(str(uuid.uuid4())),
                lambda: kit.ws.connect(timeout=2),
                lambda: kit.execute(EXAMPLES / "invert.json", validate=False, timeout=5),
                lambda: kit.files.download("x.png"),
            ]
            for call in calls:
                with pytest.raises(WitnessError) as caught:
                    call()
                texts += [str(caught.value), repr(caught.value), repr(vars(caught.value))]
                errors.append(caught.value)
    return texts, errors


def _echo_proxy(proxy: Proxy) -> None:
    """Echo the request line and Authorization header in every kind of error answer."""

    def echo(method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes] | None:
        dump = f"{method} {path} auth={headers.get('Authorization')}".encode()
        if path.startswith("/api/object_info"):
            return (401, "text/plain", b"denied: " + dump)
        if path.startswith("/api/queue"):
            return (200, "text/html", b"<html>" + dump + b"</html>")
        if path.startswith("/api/history"):
            return (500, "application/json", b'{"error": "' + dump + b'"}')
        if path.startswith("/ws"):
            return (403, "text/plain", dump)
        return None

    proxy.rules.append(echo)


def _leaks(texts: list[str]) -> str:
    found = [t[max(0, t.find(SECRET) - 200) : t.find(SECRET) + 40] for t in texts if SECRET in t]
    return "\n---\n".join(found[:4])


def test_key_never_leaks(
    comfy_url: str,
    proxy_factory: Callable[[str], Proxy],
    free_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A proxy that echoes the key in its error bodies, an unreachable server, DEBUG logging:
    the API key is in no log record (any logger) and no witness error text or repr; no
    secret at all (key, auth header, cookie, query token) is in witness's own logs."""
    proxy = proxy_factory(comfy_url)
    _echo_proxy(proxy)
    caplog.set_level(logging.DEBUG)
    texts, _ = _provoke((proxy.url, free_url), api_key=SECRET)
    assert len(caplog.records) > 5
    assert not _leaks(texts + [r.getMessage() for r in caplog.records]), _leaks(texts)
    assert any(h.get("Authorization") == f"Bearer {SECRET}" for _, _, h in proxy.seen)

    caplog.clear()
    texts, _ = _provoke(
        (proxy.url, free_url),
        headers={"X-Api-Key": SECRET},
        cookies={"session": SECRET},
        query_params={"token": SECRET},
    )
    own = [r.getMessage() for r in caplog.records if r.name.startswith("witness")]
    assert len(own) > 5
    assert not _leaks(texts + own), _leaks(texts + own)


def test_no_secret_in_tracebacks(
    comfy_url: str,
    proxy_factory: Callable[[str], Proxy],
    free_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = proxy_factory(comfy_url)
    _echo_proxy(proxy)
    caplog.set_level(logging.DEBUG)
    texts, errors = _provoke((proxy.url, free_url), api_key=SECRET, query_params={"token": SECRET})
    for error in errors:
        texts += traceback.format_exception(error)
    texts += [r.getMessage() for r in caplog.records]
    assert not _leaks(texts), _leaks(texts)

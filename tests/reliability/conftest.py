"""Fixtures of the fault and bad-input suite: a Witness on the session server, a local
reverse proxy that can lie (HTML, 401/403, rewritten answers), a server that accepts
connections and never answers, and (autouse) the walk that finds no secret in any error."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import random
import socket
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from witness import Witness
from witness.config.settings import Settings
from witness.core.results import ExecuteResult, assemble
from witness.errors import WitnessError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: ``handler(method, path, headers) -> (status, content_type, body)`` to answer instead of
#: the server, or ``None`` to forward the request.
Canned = tuple[int, str, bytes]
Rule = Callable[[str, str, dict[str, str]], Canned | None]


@dataclass
class Proxy:
    """A threaded local HTTP reverse proxy in front of ``upstream``.

    Attributes:
        url: The proxy's base URL.
        rules: Tried in order for every request; the first non-``None`` answer wins.
        rewrite: ``rewrite(path, body) -> body`` applied to forwarded answers.
        seen: ``(method, path, headers)`` of every request received.
    """

    upstream: str
    url: str = ""
    rules: list[Rule] = field(default_factory=list)
    rewrite: Callable[[str, bytes], bytes] | None = None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _handler(proxy: Proxy) -> type[http.server.BaseHTTPRequestHandler]:
    target = urlsplit(proxy.upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            headers = {k: v for k, v in self.headers.items()}
            proxy.seen.append((self.command, self.path, headers))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            for rule in proxy.rules:
                canned = rule(self.command, self.path, headers)
                if canned is not None:
                    status, ctype, payload = canned
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
            conn = http.client.HTTPConnection(
                target.hostname or "127.0.0.1", target.port, timeout=60
            )
            try:
                forward = {
                    k: v for k, v in headers.items() if k.lower() not in {"host", "connection"}
                }
                conn.request(self.command, self.path, body=body or None, headers=forward)
                answer = conn.getresponse()
                payload = answer.read()
            finally:
                conn.close()
            if proxy.rewrite is not None:
                payload = proxy.rewrite(self.path, payload)
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve  # noqa: N815

    return Handler


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[str], Proxy]]:
    """``proxy_factory(upstream) -> Proxy`` (running until the test ends)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def make(upstream: str) -> Proxy:
        proxy = Proxy(upstream=upstream)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
        server.daemon_threads = True
        proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return proxy

    try:
        yield make
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """URL of a server that accepts connections, reads, and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # keep it open, never write

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def free_url() -> str:
    """A URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def kit(comfy_url: str) -> Iterator[Witness]:
    """A Witness on the session server; history entries of its prompts are removed after."""
    client = Witness(comfy_url, timeout=60, read_timeout=60.0, retries=1, retry_backoff=0.05)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def forget(kit: Witness, comfy_server: object) -> Iterator[Callable[..., None]]:
    """``forget(*results_or_ids)``: remove those prompts' history entries and output files
    after the test."""
    ids: list[str] = []
    files: list[tuple[str, str, str]] = []

    def add(*items: object) -> None:
        for item in items:
            if isinstance(item, str):
                ids.append(item)
                continue
            prompt_id = getattr(item, "prompt_id", None)
            if prompt_id:
                ids.append(prompt_id)
            for out in getattr(item, "files", ()):
                files.append((out.type, out.subfolder, out.filename))

    try:
        yield add
    finally:
        if ids:
            with contextlib.suppress(Exception):
                kit.history.delete(ids)
        root = getattr(comfy_server, "workdir", None)
        for type_, subfolder, filename in files:
            if root is not None and type_ in {"output", "temp"} and "/" not in filename:
                (Path(root) / type_ / subfolder / filename).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# No secret in any error: every WitnessError created during a reliability test is walked
# (str, repr, args, every attribute, chained __cause__/__context__, recursively) after the test
# and must not hold any secret of any Settings built during it.
# --------------------------------------------------------------------------------------------

_AUTH_HEADERS = frozenset({"authorization", "cookie", "x-api-key", "proxy-authorization"})
_LEAF_TYPES = (int, float, complex, bool, type(None), type, types.ModuleType, types.FunctionType)


@dataclass
class ErrorCollector:
    """What the walk saw: the errors created, the secrets configured, and the counts."""

    errors: list[BaseException] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    walked: int = 0

    def add_secrets(self, *values: object) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= 4:
                self.secrets.add(value)


#: Totals over the whole session (``test_zz_secret_walk`` checks the walk really ran).
SESSION_WALK: dict[str, int] = {"errors": 0, "tests": 0}


def strings_in(
    obj: object, path: str = "error", *, _seen: set[int] | None = None, _depth: int = 0
) -> Iterator[tuple[str, str]]:
    """``(where, text)`` for every string reachable from ``obj``: an exception's str, repr,
    args, attributes and chain (``__cause__``, ``__context__``), the items of containers and
    the attributes of plain objects (bounded depth, no cycles)."""
    seen = _seen if _seen is not None else set()
    if _depth > 8 or id(obj) in seen or isinstance(obj, _LEAF_TYPES):
        return
    seen.add(id(obj))

    def deeper(child: object, where: str) -> Iterator[tuple[str, str]]:
        return strings_in(child, where, _seen=seen, _depth=_depth + 1)

    if isinstance(obj, str):
        yield path, obj
        return
    if isinstance(obj, bytes | bytearray | memoryview):
        yield path, bytes(obj).decode("utf-8", "replace")
        return
    if isinstance(obj, BaseException):
        for render in (str, repr):
            with contextlib.suppress(Exception):
                yield f"{render.__name__}({path})", render(obj)
        yield from deeper(obj.args, f"{path}.args")
        for name in ("object", "reason", "filename", "filename2", "strerror", "__notes__"):
            yield from deeper(getattr(obj, name, None), f"{path}.{name}")
        yield from deeper(obj.__cause__, f"{path}.__cause__")
        yield from deeper(obj.__context__, f"{path}.__context__")
    if isinstance(obj, Mapping):
        for key, value in list(obj.items()):
            yield from deeper(key, f"{path}.keys()")
            yield from deeper(value, f"{path}[{key!r}]")
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for index, item in enumerate(list(obj)):
            yield from deeper(item, f"{path}[{index}]")
        return
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        for name, value in list(attributes.items()):
            yield from deeper(value, f"{path}.{name}")
    for slot in getattr(type(obj), "__slots__", ()):
        yield from deeper(getattr(obj, slot, None), f"{path}.{slot}")


def leaks(error: BaseException, secrets: set[str]) -> list[str]:
    """Where a secret was found anywhere in ``error`` (see :func:`strings_in`)."""
    return sorted({where for where, text in strings_in(error) if any(s in text for s in secrets)})


@pytest.fixture(autouse=True)
def no_secret_in_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[ErrorCollector]:
    """Record every WitnessError and every configured secret of the test; walk them after."""
    collector = ErrorCollector()
    original_post_init = Settings.__post_init__

    def post_init(self: Settings) -> None:
        collector.add_secrets(self.api_key)
        for name in ("cookies", "query_params"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                collector.add_secrets(*value.values())
        if isinstance(self.headers, Mapping):
            collector.add_secrets(
                *(v for k, v in self.headers.items() if str(k).lower() in _AUTH_HEADERS)
            )
        original_post_init(self)

    original_init = WitnessError.__init__

    def init(self: WitnessError, *args: Any, **kwargs: Any) -> None:
        # __init__, not __new__: patching __new__ of an exception class leaves CPython's
        # tp_new slot of OSError-based subclasses (TimeoutError) changed after the undo.
        original_init(self, *args, **kwargs)
        collector.errors.append(self)

    monkeypatch.setattr(Settings, "__post_init__", post_init)
    monkeypatch.setattr(WitnessError, "__init__", init)
    yield collector
    monkeypatch.undo()
    SESSION_WALK["tests"] += 1
    SESSION_WALK["errors"] += len(collector.errors)
    found = {
        f"{type(e).__name__}: {e!s:.120}": leaks(e, collector.secrets)
        for e in collector.errors
        if collector.secrets
    }
    bad = {k: v for k, v in found.items() if v}
    if bad:
        pytest.fail(f"secrets inside errors raised by this test: {bad}", pytrace=False)


def fresh_params(**params: object) -> dict[str, object]:
    """Params for ``examples/invert.json`` that no earlier prompt used (a random colour): the
    server caches identical prompts, and an earlier test may have deleted their files."""
    return {"width": 8, "height": 8, "color": random.randrange(1 << 24), **params}


def crafted_result(images: list[dict[str, str]], downloader: Any) -> ExecuteResult:
    """The result of a completed history entry whose SaveImage node lists ``images`` (as a
    lying server or proxy could), assembled with ``downloader``."""
    entry = {
        "prompt": [1, "p", {"3": {"class_type": "SaveImage", "inputs": {}}}, {}, ["3"]],
        "outputs": {"3": {"images": images}},
        "status": {"status_str": "success", "completed": True, "messages": []},
        "meta": {},
    }
    return assemble(
        "p",
        entry,
        signature=None,
        prompt=None,
        view_url=lambda f, s, t: "http://x/view",
        started=None,
        downloader=downloader,
    )

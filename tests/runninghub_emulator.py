"""A local emulator of the RunningHub v1 workflow OpenAPI: a test fixture, not library code.

It follows /work/shared/reference/runninghub-api.md (§1 contract, §4 emulator specification):
every v1 path is a ``POST`` answered with HTTP 200 and ``{code, msg, data}``; tasks go
QUEUED → RUNNING → SUCCESS or FAILED on configurable timings; outputs are served from
unauthenticated ``GET /files/…`` URLs; every documented error code can be produced; and
transport faults (HTTP 5xx, non-JSON bodies, dropped connections before or after the work is
done, slow answers) can be injected per path.

Usage::

    with RunningHubEmulator() as emu:
        key = emu.add_key("k" * 32)
        emu.add_workflow("1001", prompt, run_time=0.2)
        emu.inject("/task/openapi/create", "drop", after=True)   # task made, answer lost
        ...
        assert emu.count("/task/openapi/create") == 1
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import secrets
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "ERROR_NAMES",
    "EmuKey",
    "EmuOutput",
    "EmuTask",
    "EmuWorkflow",
    "RecordedRequest",
    "RunningHubEmulator",
    "mp4_bytes",
    "png_bytes",
]

MAX_UPLOAD = 30 * 1024 * 1024
UPLOAD_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "png", "webp", "zip", "mp3", "wav", "flac", "mp4", "avi", "mov", "mkv"}
)
PERSONAL_QUEUE_LIMIT = 1000

ERROR_NAMES = {
    301: "PARAMS_INVALID",
    380: "WORKFLOW_NOT_EXISTS",
    412: "TOKEN_INVALID",
    415: "TASK_INSTANCE_MAXED",
    416: "TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET",
    421: "TASK_QUEUE_MAXED",
    423: "TASK_NOT_FOUNED",
    433: "VALIDATE_PROMPT_FAILED",
    435: "TASK_USER_EXCLAPI_INSTANCE_NOT_FOUND",
    436: "TASK_USER_EXCLAPI_REQUIRED",
    500: "UNKNOWN_ERROR",
    801: "APIKEY_UNSUPPORTED_FREE_USER",
    802: "APIKEY_UNAUTHORIZED",
    803: "APIKEY_INVALID_NODE_INFO",
    804: "APIKEY_TASK_IS_RUNNING",
    805: "APIKEY_TASK_STATUS_ERROR",
    806: "APIKEY_USER_NOT_FOUND",
    807: "APIKEY_TASK_NOT_FOUND",
    808: "APIKEY_UPLOAD_FAILED",
    809: "APIKEY_FILE_SIZE_EXCEEDED",
    810: "WORKFLOW_NOT_SAVED_OR_NOT_RUNNING",
    811: "CORPAPIKEY_INVALID",
    812: "CORPAPIKEY_INSUFFICIENT_FUNDS",
    813: "APIKEY_TASK_IS_QUEUED",
    814: "PERSONAL_QUEUE_COUNT_LIMIT",
    901: "WEBAPP_NOT_EXISTS",
}

FAULT_KINDS = frozenset(
    {
        "http500",  # HTTP 500 with a JSON body
        "http502",  # HTTP 502 with an HTML (non-JSON) body, as a proxy sends
        "non_json",  # HTTP 200 with an HTML body
        "empty",  # HTTP 200 with an empty body
        "envelope500",  # HTTP 200 with code 500 UNKNOWN_ERROR
        "drop",  # close the socket without answering
        "slow",  # wait `delay` seconds, then answer normally
    }
)


# -- media bytes -----------------------------------------------------------------------------


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real (decodable) RGB PNG."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def mp4_bytes() -> bytes:
    """A tiny ISO-BMFF file (``ftyp`` + ``free`` + empty ``mdat``) that file-type sniffers take
    for an MP4."""

    def box(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + tag + payload

    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    return ftyp + box(b"free", b"") + box(b"mdat", b"")


_CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
}


# -- state -----------------------------------------------------------------------------------


@dataclass
class EmuKey:
    """One API key.

    ``kind`` is ``consumer`` (coins; 416 when empty; 421 over concurrency), ``enterprise``
    (wallet; 812 when empty) or ``exclusive`` (dedicated machines; 415 over concurrency).
    ``forced_code`` makes every call answer that code (e.g. 806, 811).
    ``expires_after_calls``: the first N authenticated calls succeed, later ones get 802.
    """

    key: str
    kind: str = "consumer"
    valid: bool = True
    expired: bool = False
    free: bool = False
    balance: Decimal = Decimal("100")
    concurrency: int = 5
    expires_after_calls: int | None = None
    forced_code: int | None = None
    requires_plus: bool = False
    exclusive_expired: bool = False
    currency: str = "CNY"
    calls: int = 0


@dataclass
class EmuOutput:
    """One output file of a workflow: ``node_id=None`` gives an item without ``nodeId``."""

    file_type: str
    node_id: str | None = "9"
    content: bytes | None = None

    def body(self, task_id: str) -> bytes:
        if self.content is not None:
            return self.content
        kind = self.file_type.lower()
        if kind in {"png", "jpg", "jpeg", "webp", "gif"}:
            return png_bytes()
        if kind in {"mp4", "mov", "avi", "mkv"}:
            return mp4_bytes()
        if kind in {"txt", "text"}:
            return f"text output of task {task_id}".encode()
        if kind == "json":
            return json.dumps({"task": task_id}).encode()
        return b"\x00emulated\x00"


@dataclass
class EmuWorkflow:
    """A workflow (or AI app) the keys may run, with how its tasks behave."""

    workflow_id: str
    prompt: dict[str, Any]
    saved_and_run: bool = True
    queue_delay: float = 0.0
    run_time: float = 0.0
    outputs: list[EmuOutput] = field(default_factory=list)
    fail: dict[str, str] | None = None  # failedReason for tasks that fail
    create_status: str = "QUEUED"  # "FAILED": create answers taskStatus FAILED
    validation_errors: dict[str, Any] | None = None  # node_errors → 433
    status_override: str | None = None  # /status answers this string instead of the state
    task_cost_time: str = "3"
    webapp: bool = False


@dataclass
class EmuTask:
    task_id: str
    key: str
    workflow_id: str
    prompt: dict[str, Any]
    created: float
    queue_delay: float
    run_time: float
    outputs: list[EmuOutput]
    fail: dict[str, str] | None
    webhook_url: str | None
    client_id: str
    request: dict[str, Any]
    personal_queue: bool = False
    state: str = "QUEUED"
    started: float | None = None
    finished: float | None = None
    failed_reason: dict[str, str] | None = None
    status_override: str | None = None
    outputs_expired: bool = False
    task_cost_time: str = "3"


@dataclass
class RecordedRequest:
    """One request the emulator received (the key is kept: this is a test fixture)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    fault: str | None = None
    code: int | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    kind: str
    delay: float
    after: bool


@dataclass
class _Webhook:
    id: str
    key: str
    task_id: str
    url: str
    event_data: str
    status: str = "PENDING"
    response: str | None = None
    retry_count: int = 0
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))
    updated: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))


class _AnswerError(Exception):
    """Raised inside handlers to answer with an error envelope."""

    def __init__(self, code: int, msg: str | None = None, data: Any = None) -> None:
        super().__init__(code)
        self.code = code
        self.msg = msg or ERROR_NAMES.get(code, "ERROR")
        self.data = data


# -- the emulator ----------------------------------------------------------------------------


class RunningHubEmulator:
    """A threaded HTTP server on 127.0.0.1 that behaves like RunningHub's v1 OpenAPI.

    Args:
        unknown_path_http404: Answer unknown paths with HTTP 404 instead of envelope 412.
        bad_extension_code: Code for an upload with a type RunningHub refuses (808 or 301).
        accept_bearer: Also take the key from ``Authorization: Bearer`` (as the newer docs
            allow). Turn off to check that the body field is right.
        webhook_retries: Redeliveries after a failed webhook POST.
        webhook_retry_delay: Seconds between webhook attempts.
    """

    def __init__(
        self,
        *,
        unknown_path_http404: bool = False,
        bad_extension_code: int = 808,
        accept_bearer: bool = True,
        webhook_retries: int = 3,
        webhook_retry_delay: float = 0.05,
    ) -> None:
        self.unknown_path_http404 = unknown_path_http404
        self.bad_extension_code = bad_extension_code
        self.accept_bearer = accept_bearer
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        self.keys: dict[str, EmuKey] = {}
        self.workflows: dict[str, EmuWorkflow] = {}
        self.tasks: dict[str, EmuTask] = {}
        self.uploads: dict[str, bytes] = {}
        self.webhooks: dict[str, _Webhook] = {}
        self.requests: list[RecordedRequest] = []
        self.sink_received: list[dict[str, Any]] = []
        self._sink_failures = 0
        self._faults: dict[str, deque[_Fault]] = {}
        self._queue_full = 0
        self._instance_maxed = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._ids = iter(range(1, 1 << 62))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> RunningHubEmulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        tick = threading.Thread(target=self._ticker)
        for thread in (serve, tick):
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> RunningHubEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the emulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def webhook_sink_url(self) -> str:
        """A receiver on the emulator itself that records webhook deliveries."""
        return self.url + "/_emulator/webhook-sink"

    # -- configuration ---------------------------------------------------------------------

    def add_key(self, key: str | None = None, **options: Any) -> str:
        """Register a key (see :class:`EmuKey` for options); returns it."""
        key = key or secrets.token_hex(16)
        if "balance" in options:
            options["balance"] = Decimal(str(options["balance"]))
        with self._lock:
            self.keys[key] = EmuKey(key=key, **options)
        return key

    def expire_key(self, key: str) -> None:
        with self._lock:
            self.keys[key].expired = True

    def add_workflow(self, workflow_id: str, prompt: dict[str, Any], **options: Any) -> EmuWorkflow:
        """Register an API-format workflow under an id (see :class:`EmuWorkflow`)."""
        outputs = options.pop("outputs", None)
        if outputs is None:
            saves = [
                nid
                for nid, node in prompt.items()
                if str(node.get("class_type", "")).startswith(("Save", "Preview"))
            ]
            outputs = [EmuOutput("png", saves[0] if saves else "9")]
        workflow = EmuWorkflow(str(workflow_id), json.loads(json.dumps(prompt)), outputs=outputs)
        for name, value in options.items():
            if not hasattr(workflow, name):
                raise TypeError(f"unknown workflow option {name!r}")
            setattr(workflow, name, value)
        with self._lock:
            self.workflows[workflow.workflow_id] = workflow
        return workflow

    def add_webapp(self, webapp_id: str, prompt: dict[str, Any], **options: Any) -> EmuWorkflow:
        return self.add_workflow(webapp_id, prompt, webapp=True, **options)

    def inject(
        self, path: str, kind: str, *, times: int = 1, delay: float = 0.0, after: bool = False
    ) -> None:
        """Make the next ``times`` requests to ``path`` (``"*"`` = any) misbehave.

        Args:
            path: The route, or ``"*"``.
            kind: One of ``http500``, ``http502`` (HTML body), ``non_json`` (HTML with 200),
                ``empty``, ``envelope500``, ``drop`` (close without answering), ``slow``.
            times: How many requests.
            delay: Seconds for ``slow``.
            after: Do the request's work first (e.g. create the task), then misbehave.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            queue = self._faults.setdefault(path, deque())
            for _ in range(times):
                queue.append(_Fault(kind, delay, after))

    def queue_full(self, creates: int) -> None:
        """Answer 421 TASK_QUEUE_MAXED to the next ``creates`` task creations."""
        with self._lock:
            self._queue_full += creates

    def instance_maxed(self, creates: int) -> None:
        """Answer 415 TASK_INSTANCE_MAXED to the next ``creates`` task creations."""
        with self._lock:
            self._instance_maxed += creates

    def fail_webhook_sink(self, times: int) -> None:
        """Make the built-in webhook receiver answer HTTP 500 ``times`` times."""
        with self._lock:
            self._sink_failures += times

    def expire_outputs(self, task_id: str | None = None) -> None:
        """Make output URLs (of one task or all) answer 404 from now on."""
        with self._lock:
            for task in self.tasks.values():
                if task_id is None or task.task_id == task_id:
                    task.outputs_expired = True

    def set_status_override(self, task_id: str, value: str | None) -> None:
        """Make ``/status`` answer ``value`` (e.g. ``""`` or ``"WEIRD"``) for a task."""
        with self._lock:
            self.tasks[task_id].status_override = value

    # -- inspection ------------------------------------------------------------------------

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def count(self, path: str) -> int:
        return len(self.requests_to(path))

    def task(self, task_id: str) -> EmuTask:
        with self._lock:
            self._advance()
            return self.tasks[task_id]

    def tasks_of(self, key: str) -> list[EmuTask]:
        with self._lock:
            self._advance()
            return [t for t in self.tasks.values() if t.key == key]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate()`` is true (for asynchronous effects such as webhooks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # -- task lifecycle --------------------------------------------------------------------

    def _ticker(self) -> None:
        while not self._stop.wait(0.01):
            with self._lock:
                self._advance()

    def _advance(self) -> None:
        now = time.monotonic()
        for task in self.tasks.values():
            if task.state == "QUEUED" and now >= task.created + task.queue_delay:
                if (
                    task.personal_queue
                    and self._running(task.key) >= self.keys[task.key].concurrency
                ):
                    continue
                task.state = "RUNNING"
                task.started = now
            running = task.state == "RUNNING" and task.started is not None
            if running and now >= (task.started or 0.0) + task.run_time:
                self._finish(task, failed=task.fail is not None, reason=task.fail)

    def _running(self, key: str) -> int:
        return sum(1 for t in self.tasks.values() if t.key == key and t.state == "RUNNING")

    def _active(self, key: str) -> int:
        return sum(
            1
            for t in self.tasks.values()
            if t.key == key and t.state in {"QUEUED", "RUNNING"} and not t.personal_queue
        )

    def _finish(self, task: EmuTask, *, failed: bool, reason: dict[str, str] | None) -> None:
        task.state = "FAILED" if failed else "SUCCESS"
        task.finished = time.monotonic()
        if failed:
            task.failed_reason = dict(reason or _default_failed_reason())
        if task.webhook_url:
            hook = _Webhook(
                id=str(next(self._ids)),
                key=task.key,
                task_id=task.task_id,
                url=task.webhook_url,
                event_data=json.dumps(self._outputs_envelope(task)),
            )
            self.webhooks[hook.id] = hook
            self._deliver(hook)

    def _deliver(self, hook: _Webhook) -> None:
        thread = threading.Thread(target=self._post_webhook, args=(hook,), daemon=True)
        thread.start()

    def _post_webhook(self, hook: _Webhook) -> None:
        body = json.dumps(
            {"event": "TASK_END", "taskId": hook.task_id, "eventData": hook.event_data}
        ).encode()
        for attempt in range(1 + self.webhook_retries):
            if self._stop.is_set():
                return
            request = urllib.request.Request(
                hook.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    text = response.read(500).decode("utf-8", "replace")
                    ok = 200 <= response.status < 300
            except (urllib.error.URLError, OSError) as exc:
                text, ok = f"{type(exc).__name__}: {exc}", False
            with self._lock:
                hook.retry_count = attempt
                hook.response = text
                hook.status = "SUCCESS" if ok else "FAILED"
                hook.updated = time.strftime("%Y-%m-%d %H:%M:%S")
            if ok:
                return
            self._stop.wait(self.webhook_retry_delay)

    def _outputs_envelope(self, task: EmuTask) -> dict[str, Any]:
        if task.state == "QUEUED":
            return _envelope(813, ERROR_NAMES[813], None)
        if task.state == "RUNNING":
            return _envelope(804, ERROR_NAMES[804], None)
        if task.state == "FAILED":
            return _envelope(805, ERROR_NAMES[805], {"failedReason": task.failed_reason})
        items = []
        for index, out in enumerate(task.outputs):
            item: dict[str, Any] = {
                "fileUrl": f"{self.url}/files/{task.task_id}/{index}.{out.file_type}",
                "fileType": out.file_type,
                "taskCostTime": task.task_cost_time,
                "consumeCoins": "12",
                "consumeMoney": "0.05",
            }
            if out.node_id is not None:
                item["nodeId"] = out.node_id
            items.append(item)
        return _envelope(0, "success", items)

    # -- request handling ------------------------------------------------------------------

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)

    def _next_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for name in (path, "*"):
                queue = self._faults.get(name)
                if queue:
                    return queue.popleft()
        return None

    def _authenticate(self, body: dict[str, Any], headers: dict[str, str], field_: str) -> EmuKey:
        key = body.get(field_)
        if not key and self.accept_bearer:
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                key = auth[7:].strip()
        if not key or not isinstance(key, str):
            raise _AnswerError(301, f"PARAMS_INVALID: {field_} is required")
        with self._lock:
            entry = self.keys.get(key)
            if entry is None or not entry.valid or entry.expired:
                raise _AnswerError(802)
            entry.calls += 1
            if entry.expires_after_calls is not None and entry.calls > entry.expires_after_calls:
                entry.expired = True
                raise _AnswerError(802)
            if entry.forced_code is not None:
                raise _AnswerError(entry.forced_code)
            if entry.free:
                raise _AnswerError(801)
            return entry

    def dispatch(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        """Handle one v1 call; returns ``(code, data)`` or raises :class:`_AnswerError`."""
        routes: dict[str, Callable[[dict[str, Any], dict[str, str]], Any]] = {
            "/task/openapi/create": self._create,
            "/task/openapi/ai-app/run": self._run_app,
            "/task/openapi/status": self._status,
            "/task/openapi/outputs": self._outputs,
            "/task/openapi/cancel": self._cancel,
            "/task/openapi/upload": self._upload,
            "/uc/openapi/accountStatus": self._account,
            "/api/openapi/getJsonApiFormat": self._workflow_json,
            "/task/openapi/getWebhookDetail": self._webhook_detail,
            "/task/openapi/retryWebhook": self._retry_webhook,
        }
        handler = routes.get(path)
        if handler is None:
            raise _AnswerError(412)
        if not isinstance(body, dict):
            raise _AnswerError(301, "PARAMS_INVALID: the body must be a JSON object")
        with self._lock:
            self._advance()
        if path == "/task/openapi/outputs":
            envelope = handler(body, headers)
            return envelope["code"], envelope
        return 0, handler(body, headers)

    def _create(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        workflow_id = body.get("workflowId")
        if workflow_id in (None, "") or not isinstance(workflow_id, str | int):
            raise _AnswerError(301, "PARAMS_INVALID: workflowId is required")
        return self._start_task(key, str(workflow_id), body, webapp=False)

    def _run_app(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        app_id = body.get("webappId")
        if app_id in (None, "") or "nodeInfoList" not in body:
            raise _AnswerError(301, "PARAMS_INVALID: webappId and nodeInfoList are required")
        return self._start_task(key, str(app_id), body, webapp=True)

    def _start_task(
        self, key: EmuKey, workflow_id: str, body: dict[str, Any], *, webapp: bool
    ) -> dict[str, Any]:
        with self._lock:
            if key.balance <= 0:
                raise _AnswerError(812 if key.kind == "enterprise" else 416)
            workflow = self.workflows.get(workflow_id)
            if workflow is None or workflow.webapp != webapp:
                raise _AnswerError(901 if webapp else 380)
            if not workflow.saved_and_run:
                raise _AnswerError(810)
            prompt = json.loads(json.dumps(workflow.prompt))
            if not webapp and body.get("workflow") not in (None, ""):
                try:
                    override = json.loads(body["workflow"])
                except (TypeError, ValueError):
                    raise _AnswerError(
                        301, "PARAMS_INVALID: workflow is not a JSON string"
                    ) from None
                if not isinstance(override, dict):
                    raise _AnswerError(301, "PARAMS_INVALID: workflow must be a JSON object")
                prompt = override
            node_errors = _apply_node_info(prompt, body.get("nodeInfoList"))
            if workflow.validation_errors:
                node_errors.update(workflow.validation_errors)
            if node_errors:
                tips = {
                    "result": False,
                    "error": {
                        "type": "prompt_outputs_failed_validation",
                        "message": "Prompt outputs failed validation",
                    },
                    "outputs_to_execute": [],
                    "node_errors": node_errors,
                }
                raise _AnswerError(433, json.dumps(tips), {"promptTips": json.dumps(tips)})
            instance = body.get("instanceType")
            if instance not in (None, "", "default", "plus"):
                raise _AnswerError(301, "PARAMS_INVALID: instanceType must be default or plus")
            if key.kind == "exclusive" and key.exclusive_expired:
                raise _AnswerError(436)
            if key.requires_plus and instance != "plus":
                raise _AnswerError(435)
            if self._queue_full > 0:
                self._queue_full -= 1
                raise _AnswerError(421)
            if self._instance_maxed > 0:
                self._instance_maxed -= 1
                raise _AnswerError(415)
            personal = bool(body.get("usePersonalQueue"))
            if self._active(key.key) >= key.concurrency:
                if not personal:
                    raise _AnswerError(415 if key.kind == "exclusive" else 421)
                queued = sum(
                    1
                    for t in self.tasks.values()
                    if t.key == key.key and t.personal_queue and t.state == "QUEUED"
                )
                if queued >= PERSONAL_QUEUE_LIMIT:
                    raise _AnswerError(814)
            else:
                personal = False
            task_id = self._new_task_id()
            task = EmuTask(
                task_id=task_id,
                key=key.key,
                workflow_id=workflow_id,
                prompt=prompt,
                created=time.monotonic(),
                queue_delay=workflow.queue_delay,
                run_time=workflow.run_time,
                outputs=list(workflow.outputs),
                fail=workflow.fail,
                webhook_url=body.get("webhookUrl") or None,
                client_id=secrets.token_hex(16),
                request={k: v for k, v in body.items() if k.lower() != "apikey"},
                personal_queue=personal,
                status_override=workflow.status_override,
                task_cost_time=workflow.task_cost_time,
            )
            self.tasks[task_id] = task
            if workflow.create_status == "FAILED":
                self._finish(task, failed=True, reason=workflow.fail)
            outputs = [o.node_id for o in workflow.outputs if o.node_id] or ["9"]
            tips = {
                "result": True,
                "error": None,
                "outputs_to_execute": outputs,
                "node_errors": {},
            }
            return {
                "taskId": task_id,
                "taskStatus": task.state,
                "clientId": task.client_id,
                "netWssUrl": None,
                "promptTips": json.dumps(tips),
            }

    def _new_task_id(self) -> str:
        while True:
            task_id = "19" + "".join(random.choice("0123456789") for _ in range(17))
            if task_id not in self.tasks:
                return task_id

    def _owned_task(self, body: dict[str, Any], key: EmuKey) -> EmuTask:
        task_id = body.get("taskId")
        if task_id in (None, ""):
            raise _AnswerError(301, "PARAMS_INVALID: taskId is required")
        task = self.tasks.get(str(task_id))
        if task is None or task.key != key.key:
            raise _AnswerError(807)
        return task

    def _status(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        with self._lock:
            task = self._owned_task(body, key)
            if task.status_override is not None:
                return task.status_override
            return task.state

    def _outputs(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        with self._lock:
            return self._outputs_envelope(self._owned_task(body, key))

    def _cancel(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        with self._lock:
            task = self._owned_task(body, key)
            if task.state in {"QUEUED", "RUNNING"}:
                reason = {
                    "node_id": "",
                    "node_name": "",
                    "exception_type": "InterruptProcessingException",
                    "exception_message": "task cancelled by user",
                    "traceback": "",
                    "current_inputs": "",
                    "current_outputs": "",
                }
                self._finish(task, failed=True, reason=reason)
            return None

    def _upload(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        _ = key
        content = body.get("__file__")
        filename = str(body.get("__filename__") or "")
        if content is None:
            raise _AnswerError(301, "PARAMS_INVALID: file is required")
        if len(content) > MAX_UPLOAD:
            raise _AnswerError(809)
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if ext not in UPLOAD_EXTENSIONS:
            raise _AnswerError(self.bad_extension_code, f"unsupported file type {ext!r}")
        name = f"api/{hashlib.sha256(content).hexdigest()}.{ext}"
        with self._lock:
            self.uploads[name] = content
        return {"fileName": name, "fileType": body.get("fileType") or "input"}

    def _account(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apikey")
        with self._lock:
            active = sum(
                1
                for t in self.tasks.values()
                if t.key == key.key and t.state in {"QUEUED", "RUNNING"}
            )
            return {
                "remainCoins": str(key.balance if key.kind != "enterprise" else 0),
                "currentTaskCounts": str(active),
                "remainMoney": str(key.balance if key.kind == "enterprise" else Decimal("0.00")),
                "currency": key.currency,
                "apiType": "NORMAL",
            }

    def _workflow_json(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        self._authenticate(body, headers, "apiKey")
        workflow_id = body.get("workflowId")
        if workflow_id in (None, ""):
            raise _AnswerError(301, "PARAMS_INVALID: workflowId is required")
        with self._lock:
            workflow = self.workflows.get(str(workflow_id))
            if workflow is None or workflow.webapp:
                raise _AnswerError(380)
            return {"prompt": json.dumps(workflow.prompt)}

    def _webhook_detail(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        with self._lock:
            task = self._owned_task(body, key)
            hooks = [h for h in self.webhooks.values() if h.task_id == task.task_id]
            if not hooks:
                return None
            hook = hooks[-1]
            return {
                "id": hook.id,
                "userApiKey": hook.key,
                "taskId": hook.task_id,
                "webhookUrl": hook.url,
                "eventData": hook.event_data,
                "callbackStatus": hook.status,
                "callbackResponse": hook.response,
                "retryCount": hook.retry_count,
                "createTime": hook.created,
                "updateTime": hook.updated,
            }

    def _retry_webhook(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        key = self._authenticate(body, headers, "apiKey")
        url = body.get("webhookUrl")
        if not body.get("webhookId") or not url:
            raise _AnswerError(301, "PARAMS_INVALID: webhookId and webhookUrl are required")
        with self._lock:
            old = self.webhooks.get(str(body["webhookId"]))
            if old is None or old.key != key.key:
                raise _AnswerError(301, "PARAMS_INVALID: no such webhook")
            hook = _Webhook(
                id=str(next(self._ids)),
                key=old.key,
                task_id=old.task_id,
                url=str(url),
                event_data=old.event_data,
            )
            self.webhooks[hook.id] = hook
        self._deliver(hook)
        return None

    def serve_file(self, path: str) -> tuple[int, bytes, str]:
        match = re.fullmatch(r"/files/(\d+)/(\d+)\.(\w+)", path)
        with self._lock:
            task = self.tasks.get(match.group(1)) if match else None
            if task is None or match is None or task.outputs_expired or task.state != "SUCCESS":
                return 404, b"<html><body>404 Not Found</body></html>", "text/html"
            index = int(match.group(2))
            if index >= len(task.outputs):
                return 404, b"<html><body>404 Not Found</body></html>", "text/html"
            out = task.outputs[index]
        ctype = _CONTENT_TYPES.get(out.file_type.lower(), "application/octet-stream")
        return 200, out.body(task.task_id), ctype

    def sink(self, body: Any) -> int:
        with self._lock:
            if self._sink_failures > 0:
                self._sink_failures -= 1
                return 500
            self.sink_received.append(body)
            return 200

    def register_connection(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def _envelope(code: int, msg: str, data: Any) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def _default_failed_reason() -> dict[str, str]:
    trace = [
        "Traceback (most recent call last):\n",
        '  File "/app/ComfyUI/execution.py", line 496, in execute\n',
        "    output_data = get_output_data(obj, input_data_all)\n",
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n",
    ]
    return {
        "current_outputs": "{}",
        "exception_type": "torch.OutOfMemoryError",
        "node_name": "KSampler",
        "current_inputs": json.dumps({"seed": [42], "steps": [20]}),
        "traceback": json.dumps(trace),
        "node_id": "3",
        "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB",
    }


def _coerce(current: Any, value: Any) -> Any:
    """Convert a ``fieldValue`` (documented as a string) to the type of the input it replaces."""
    if not isinstance(value, str) or isinstance(current, str) or current is None:
        return value
    if isinstance(current, bool):
        low = value.strip().lower()
        if low in {"true", "false"}:
            return low == "true"
        raise ValueError(f"{value!r} is not a boolean")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, list):
        raise ValueError("a linked input cannot be set")
    return value


def _apply_node_info(prompt: dict[str, Any], items: Any) -> dict[str, Any]:
    """Apply nodeInfoList to ``prompt``; 803 for a missing node/input, node_errors for values
    that do not fit the input's type (those become 433)."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise _AnswerError(301, "PARAMS_INVALID: nodeInfoList must be a list")
    node_errors: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            raise _AnswerError(803)
        node_id, name = str(item.get("nodeId", "")), item.get("fieldName")
        node = prompt.get(node_id)
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            raise _AnswerError(803, f"APIKEY_INVALID_NODE_INFO: node {node_id} not found")
        if name not in node["inputs"]:
            raise _AnswerError(803, f"APIKEY_INVALID_NODE_INFO: node {node_id} has no input {name}")
        value = item.get("fieldValue")
        kind = type(node["inputs"][name]).__name__.upper()
        try:
            node["inputs"][name] = _coerce(node["inputs"][name], value)
        except ValueError as exc:
            node_errors.setdefault(
                node_id,
                {"errors": [], "dependent_outputs": [], "class_type": node.get("class_type")},
            )["errors"].append(
                {
                    "type": "invalid_input_type",
                    "message": f"Failed to convert an input value to a {kind} value",
                    "details": f"{name}, {value}, {exc}",
                    "extra_info": {"input_name": name, "received_value": value},
                }
            )
    return node_errors


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """A small multipart/form-data parser (fields as str, the file as bytes)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise _AnswerError(301, "PARAMS_INVALID: not multipart/form-data")
    boundary = b"--" + match.group(1).encode()
    fields: dict[str, Any] = {}
    for part in body.split(boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        disposition = head.decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if not name:
            continue
        if filename is not None:
            fields["__file__"] = content
            fields["__filename__"] = filename.group(1)
            fields["__field__"] = name.group(1)
        else:
            fields[name.group(1)] = content.decode("utf-8", "replace")
    if fields.get("__field__") not in (None, "file"):
        fields.pop("__file__", None)
    return fields


class _Handler(BaseHTTPRequestHandler):
    emulator: RunningHubEmulator
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.emulator.register_connection(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.emulator.register_connection(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (e.g. its read timeout)
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.emulator._record(RecordedRequest("GET", path, None, _headers(self)))
        if path.startswith("/files/"):
            status, body, ctype = self.emulator.serve_file(path)
            self._send(status, body, ctype)
            return
        self._unknown()

    def _unknown(self) -> None:
        if self.emulator.unknown_path_http404:
            self._send(404, b"<html><body>404 Not Found</body></html>", "text/html")
        else:
            self._envelope(412, ERROR_NAMES[412], None)

    def _envelope(self, code: int, msg: str, data: Any) -> None:
        self._send(200, json.dumps(_envelope(code, msg, data)).encode(), "application/json")

    def do_POST(self) -> None:
        emu = self.emulator
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        headers = _headers(self)
        if path == "/_emulator/webhook-sink":
            try:
                posted = json.loads(raw)
            except ValueError:
                posted = raw.decode("utf-8", "replace")
            status = emu.sink(posted)
            self._send(status, b'{"ok": true}' if status == 200 else b"fail", "application/json")
            return
        ctype = self.headers.get("Content-Type", "")
        body: Any
        if ctype.startswith("multipart/form-data"):
            try:
                body = _parse_multipart(raw, ctype)
            except _AnswerError:
                body = None
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
        logged = body
        if isinstance(body, dict) and "__file__" in body:
            logged = {k: v for k, v in body.items() if k != "__file__"}
            logged["__size__"] = len(body["__file__"])
        record = RecordedRequest("POST", path, logged, headers)
        emu._record(record)
        fault = emu._next_fault(path)
        if fault is not None:
            record.fault = fault.kind
            if not fault.after:
                if fault.kind == "slow":
                    emu._stop.wait(fault.delay)
                else:
                    self._misbehave(fault)
                    return
        known = path in _V1_PATHS
        if not known:
            self._unknown()
            return
        try:
            code, data = emu.dispatch(path, body, headers)
            envelope = data if path == "/task/openapi/outputs" else _envelope(0, "success", data)
        except _AnswerError as answer:
            code, envelope = answer.code, _envelope(answer.code, answer.msg, answer.data)
        record.code = code
        if fault is not None and fault.after:
            if fault.kind == "slow":
                emu._stop.wait(fault.delay)
            else:
                self._misbehave(fault)
                return
        self._send(200, json.dumps(envelope).encode(), "application/json")

    def _misbehave(self, fault: _Fault) -> None:
        if fault.kind == "drop":
            self._drop()
        elif fault.kind == "http500":
            self._send(
                500,
                json.dumps(_envelope(500, "Internal Server Error", None)).encode(),
                "application/json",
            )
        elif fault.kind == "http502":
            page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            self._send(502, page, "text/html")
        elif fault.kind == "non_json":
            self._send(200, b"<html><body>Service maintenance</body></html>", "text/html")
        elif fault.kind == "empty":
            self._send(200, b"", "application/json")
        elif fault.kind == "envelope500":
            self._send(
                200, json.dumps(_envelope(500, "UNKNOWN_ERROR", None)).encode(), "application/json"
            )


_V1_PATHS = frozenset(
    {
        "/task/openapi/create",
        "/task/openapi/ai-app/run",
        "/task/openapi/status",
        "/task/openapi/outputs",
        "/task/openapi/cancel",
        "/task/openapi/upload",
        "/uc/openapi/accountStatus",
        "/api/openapi/getJsonApiFormat",
        "/task/openapi/getWebhookDetail",
        "/task/openapi/retryWebhook",
    }
)


def _headers(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    return {k.lower(): v for k, v in handler.headers.items()}


@contextlib.contextmanager
def running_emulator(**options: Any) -> Iterator[RunningHubEmulator]:
    """Start an emulator for the duration of a ``with`` block."""
    emulator = RunningHubEmulator(**options).start()
    try:
        yield emulator
    finally:
        emulator.stop()

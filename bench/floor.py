"""The raw-protocol floor the benchmarks compare witness against.

No witness code: one keep-alive ``requests.Session``, one ``websocket-client`` socket, and the
bare ComfyUI protocol (``POST /api/prompt`` with ``client_id``, wait for ``executing`` with
``node: null`` for that prompt, ``GET /api/history/{id}``). It does nothing witness does on
top (no validation, no DSL, no error typing, no deadlines beyond a socket timeout, no
reconnects), so it is the fastest a client can be with these libraries.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import requests
import websocket


def ws_url(base: str, client_id: str) -> str:
    scheme = "wss" if base.startswith("https") else "ws"
    return f"{scheme}{base[base.index(':') :]}/ws?clientId={client_id}"


class RawClient:
    """One prompt at a time: submit, wait for the completion event, read the history.

    ``tuned=True`` also skips the two per-message costs the libraries' defaults carry and
    witness avoids: websocket-client's pure-Python UTF-8 check of every text frame (the
    JSON decode checks it again) and ``requests``' scan of the proxy environment on every
    request (``trust_env=False``). It is the tightest client these libraries allow; the
    targets are stated against the default one.
    """

    def __init__(self, base_url: str, timeout: float = 60.0, *, tuned: bool = False) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = not tuned
        self.client_id = uuid.uuid4().hex
        self.timeout = timeout
        self.ws = websocket.create_connection(
            ws_url(self.base, self.client_id), timeout=timeout, skip_utf8_validation=tuned
        )

    def execute(self, prompt: dict[str, Any]) -> dict[str, Any]:
        answer = self.session.post(
            self.base + "/api/prompt",
            json={"prompt": prompt, "client_id": self.client_id},
            timeout=self.timeout,
        )
        answer.raise_for_status()
        prompt_id = answer.json()["prompt_id"]
        while True:
            message = self.ws.recv()
            if not isinstance(message, str):
                continue  # binary previews
            event = json.loads(message)
            if event.get("type") != "executing":
                continue
            data = event.get("data") or {}
            if data.get("node") is None and data.get("prompt_id") == prompt_id:
                break
        history = self.session.get(self.base + f"/api/history/{prompt_id}", timeout=self.timeout)
        history.raise_for_status()
        entry: dict[str, Any] = history.json()[prompt_id]
        return entry

    def close(self) -> None:
        self.ws.close()
        self.session.close()


class RawBatch:
    """Many prompts from many threads: one socket whose reader thread records completions;
    each submitting thread has its own keep-alive session."""

    def __init__(self, base_url: str, timeout: float = 120.0) -> None:
        self.base = base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self.timeout = timeout
        self.ws = websocket.create_connection(ws_url(self.base, self.client_id), timeout=timeout)
        self._done: set[str] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                message = self.ws.recv()
            except (websocket.WebSocketException, OSError):
                return
            if not message:
                return  # closed
            if not isinstance(message, str):
                continue
            event = json.loads(message)
            if event.get("type") != "executing":
                continue
            data = event.get("data") or {}
            if data.get("node") is None and data.get("prompt_id"):
                with self._cond:
                    self._done.add(data["prompt_id"])
                    self._cond.notify_all()

    def run_thread(self, prompts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit ``prompts``, then collect every history entry (in one thread)."""
        session = requests.Session()
        try:
            ids = []
            for prompt in prompts:
                answer = session.post(
                    self.base + "/api/prompt",
                    json={"prompt": prompt, "client_id": self.client_id},
                    timeout=self.timeout,
                )
                answer.raise_for_status()
                ids.append(answer.json()["prompt_id"])
            entries = []
            deadline = time.monotonic() + self.timeout
            for prompt_id in ids:
                with self._cond:
                    while prompt_id not in self._done:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise TimeoutError(f"raw floor: {prompt_id} did not finish")
                        self._cond.wait(left)
                    self._done.discard(prompt_id)
                history = session.get(self.base + f"/api/history/{prompt_id}", timeout=30)
                history.raise_for_status()
                entries.append(history.json()[prompt_id])
            return entries
        finally:
            session.close()

    def close(self) -> None:
        self._stop = True
        self.ws.close()
        self._reader.join(5)

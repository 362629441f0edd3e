"""witness.core.sources: every source kind, unwrapping, format detection, errors."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_http import serve
from witness.core.sources import (
    LoadedWorkflow,
    detect_format,
    load_workflow,
    workflow_from_runninghub,
)
from witness.errors import InvalidArgumentError, WorkflowFormatError, WorkflowSourceError

API: dict[str, Any] = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8}, "_meta": {"title": "$width"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
}
UI: dict[str, Any] = {
    "last_node_id": 2,
    "nodes": [{"id": 1, "type": "EmptyImage"}],
    "links": [],
    "version": 0.4,
}


# ------------------------------------------------------------------------------- HTTP server


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/wf.json":
            self._send(200, json.dumps(API).encode())
        elif path == "/ui.json":
            self._send(200, json.dumps(UI).encode())
        elif path == "/big.json":
            self._send(200, b"{" + b" " * 5000 + b"}")
        elif path == "/stream-big.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # no Content-Length: the limit is enforced while streaming
            for _ in range(10):
                self.wfile.write(b" " * 1000)
            self.wfile.flush()
            self.close_connection = True
        elif path == "/slow.json":
            time.sleep(1.0)
            self._send(200, json.dumps(API).encode())
        elif path == "/html":
            self._send(200, b"<html>login</html>", "text/html")
        elif path == "/auth":
            self._send(
                200,
                json.dumps(
                    {
                        "authorization": self.headers.get("Authorization"),
                        "cookie": self.headers.get("Cookie"),
                    }
                ).encode(),
            )
        else:
            self._send(404, b"not found", "text/plain")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeout, size limit) break the pipe on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve(Handler, QuietServer) as url:
        yield url


def test_url_source(server: str) -> None:
    loaded = load_workflow(f"{server}/wf.json")
    assert loaded == LoadedWorkflow(API, "api", f"{server}/wf.json", None)


def test_url_ui_source(server: str) -> None:
    loaded = load_workflow(f"{server}/ui.json")
    assert loaded.format == "ui"


def test_url_too_large(server: str) -> None:
    with pytest.raises(WorkflowSourceError, match="limit") as info:
        load_workflow(f"{server}/big.json", max_bytes=1000)
    assert info.value.source == f"{server}/big.json"
    with pytest.raises(WorkflowSourceError, match="limit"):
        load_workflow(f"{server}/stream-big.json", max_bytes=1000)


def test_url_404(server: str) -> None:
    with pytest.raises(WorkflowSourceError, match="404") as info:
        load_workflow(f"{server}/missing.json")
    assert f"{server}/missing.json" in str(info.value)


def test_url_timeout(server: str) -> None:
    with pytest.raises(WorkflowSourceError, match=r"slow\.json"):
        load_workflow(f"{server}/slow.json", timeout=0.2)


def test_url_not_json(server: str) -> None:
    with pytest.raises(WorkflowFormatError, match=r"not valid JSON: .* line 1 column 1"):
        load_workflow(f"{server}/html")


def test_url_secret_query_is_redacted_in_origin_and_errors(server: str) -> None:
    with pytest.raises(WorkflowSourceError) as info:
        load_workflow(f"{server}/missing.json?token=s3cret")
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in info.value.source


def test_url_download_carries_no_credentials(server: str) -> None:
    with pytest.raises(WorkflowFormatError):
        load_workflow(f"{server}/auth")  # valid JSON, not a workflow: proves the request went out
    # fetch_url uses a fresh session; double-check by fetching the echo directly
    from witness.utils.fetch import fetch_url

    with fetch_url(f"{server}/auth") as fetched:
        assert json.loads(fetched.read_bytes()) == {"authorization": None, "cookie": None}


def test_unreachable_url() -> None:
    with pytest.raises(WorkflowSourceError, match="cannot download"):
        load_workflow("http://127.0.0.1:9/wf.json", timeout=1.0)


# ---------------------------------------------------------------------- dict / text / bytes


def test_dict_is_deep_copied() -> None:
    source = json.loads(json.dumps(API))
    loaded = load_workflow(source)
    assert loaded.workflow == API
    assert loaded.origin == "<dict>"
    loaded.workflow["1"]["inputs"]["width"] = 99
    assert source["1"]["inputs"]["width"] == 8


def test_json_text_and_bytes() -> None:
    text = "\n  " + json.dumps(API)
    assert load_workflow(text).workflow == API
    assert load_workflow(text).origin == "<json text>"
    assert load_workflow(json.dumps(API).encode()).workflow == API
    assert load_workflow(b"\xef\xbb\xbf" + json.dumps(UI).encode()).format == "ui"
    assert load_workflow(bytearray(json.dumps(API).encode())).workflow == API


def test_bad_json_names_line_and_column() -> None:
    with pytest.raises(
        WorkflowFormatError, match=r"<json text> is not valid JSON: .* line 2 column 8"
    ):
        load_workflow('{"1":\n  {"a" 1}}')


def test_bad_bytes() -> None:
    with pytest.raises(WorkflowFormatError, match="not UTF-8"):
        load_workflow(b"\xff\xfe{")
    with pytest.raises(WorkflowFormatError, match="empty"):
        load_workflow(b"   ")


def test_prompt_wrapper_is_unwrapped() -> None:
    assert load_workflow({"prompt": API, "client_id": "x"}).workflow == API
    assert load_workflow(json.dumps({"prompt": API})).format == "api"


def test_node_called_prompt_is_not_a_wrapper() -> None:
    workflow = {"prompt": {"class_type": "PrimitiveString", "inputs": {"value": "x"}}}
    assert load_workflow(workflow).workflow == workflow


def test_runninghub_prompt_string() -> None:
    answer = {"code": 0, "msg": "success", "data": {"prompt": json.dumps(API)}}
    assert load_workflow(json.dumps(answer)).workflow == API
    assert load_workflow({"prompt": json.dumps(API)}).workflow == API
    loaded = workflow_from_runninghub(json.dumps(API), "1234")
    assert loaded == LoadedWorkflow(API, "api", "runninghub:1234", "1234")
    assert workflow_from_runninghub(answer).workflow == API
    with pytest.raises(WorkflowFormatError, match="line 1"):
        workflow_from_runninghub("{nope")


def test_runninghub_stub_file(tmp_path: Path) -> None:
    path = tmp_path / "stub.json"
    path.write_text(json.dumps({"_source": "runninghub", "workflow_id": 1987}))
    loaded = load_workflow(path)
    assert loaded.runninghub_id == "1987"
    assert loaded.workflow == {}


# ------------------------------------------------------------------------------- files / ids


def test_path_and_pathlike(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(API))
    assert load_workflow(path) == LoadedWorkflow(API, "api", str(path))
    assert load_workflow(str(path)).workflow == API
    assert load_workflow(path.as_uri()).workflow == API


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.json").write_text(json.dumps(API))
    assert load_workflow("~/w.json").workflow == API


def test_missing_file() -> None:
    with pytest.raises(WorkflowSourceError, match=r"not found: /nonexistent/wf\.json") as info:
        load_workflow("/nonexistent/wf.json")
    assert info.value.source == "/nonexistent/wf.json"


def test_directory_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(WorkflowSourceError, match="directory"):
        load_workflow(tmp_path)
    if os.geteuid() == 0:
        return  # root reads anything
    locked = tmp_path / "locked.json"
    locked.write_text("{}")
    locked.chmod(0)
    with pytest.raises(WorkflowSourceError, match="cannot read"):
        load_workflow(locked)


def test_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(API))
    with pytest.raises(WorkflowSourceError, match="limit"):
        load_workflow(path, max_bytes=10)


def test_a_file_that_grows_after_its_stat_is_read_whole_and_held_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read is sized by the stat (no buffer of the whole limit); a file that grew in
    # between is still read to its end, and the limit still holds.
    path = tmp_path / "growing.json"
    text = json.dumps(API)
    path.write_text(text)
    real_stat = Path.stat

    def stale_stat(self: Path, **kwargs: Any) -> Any:
        result = real_stat(self, **kwargs)
        if self == path:
            fields = list(result)
            fields[6] = 5  # st_size as it was before the writer finished
            return os.stat_result(fields)
        return result

    monkeypatch.setattr(Path, "stat", stale_stat)
    assert load_workflow(path).workflow == API
    with pytest.raises(WorkflowSourceError, match="limit"):
        load_workflow(path, max_bytes=len(text) - 1)


def test_bad_json_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n "1": }')
    with pytest.raises(WorkflowFormatError, match=rf"{path} is not valid JSON: .* line 2 column 7"):
        load_workflow(path)


def test_runninghub_is_chosen_explicitly_never_guessed_from_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_workflow("runninghub:12345")
    assert loaded == LoadedWorkflow({}, "api", "runninghub:12345", "12345")
    assert load_workflow(" RunningHub:777 ").runninghub_id == "777"
    with pytest.raises(WorkflowSourceError, match="'runninghub:12345'"):
        load_workflow("12345")  # a bare number is a file name, with a hint
    (tmp_path / "12345").write_text(json.dumps(API))
    loaded = load_workflow("12345")
    assert loaded.runninghub_id is None
    assert loaded.workflow == API
    with pytest.raises(InvalidArgumentError, match="digits"):
        load_workflow("runninghub:abc")


def test_unsupported_sources() -> None:
    with pytest.raises(InvalidArgumentError):
        load_workflow(42)
    with pytest.raises(InvalidArgumentError):
        load_workflow("   ")
    with pytest.raises(WorkflowSourceError, match="ftp"):
        load_workflow("ftp://example.com/wf.json")


# ------------------------------------------------------------------------------- format detection


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([1, 2], "array of 2"),
        ("x", "a string"),
        ({}, "empty"),
        ({"nodes": {}, "links": []}, "'nodes' is not a list"),
        ({"nodes": []}, "no 'links'"),
        (
            {"1": {"class_type": "A", "inputs": {}}, "extra": {"x": 1}},
            "entry 'extra' is not a node",
        ),
        ({"1": {"class_type": 5, "inputs": {}}}, "class_type"),
        ({"1": {"class_type": "A"}}, "no 'inputs'"),
        ({"abc": {"prompt": [1], "outputs": {}, "status": {}}}, "/history response"),
        ({"KSampler": {"input": {}, "output": []}}, "/object_info"),
        ({"foo": 1, "bar": 2}, "keys 'foo', 'bar'"),
    ],
)
def test_detect_format_errors(data: Any, fragment: str) -> None:
    with pytest.raises(WorkflowFormatError, match=fragment):
        detect_format(data)


def test_format_error_names_the_source(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text('{"hello": "world"}')
    with pytest.raises(WorkflowFormatError, match=rf"{path}: not a workflow"):
        load_workflow(path)


def test_detect_format_ok() -> None:
    assert detect_format(API) == "api"
    assert detect_format(UI) == "ui"

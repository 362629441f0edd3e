"""Bad input against the real server: every mistake ends in a typed, readable error, and
nothing is left queued. Validation-dependent cases run with pre-submit validation on
(``WorkflowValidationError``, nothing sent) and off (the server's ``PromptValidationError``)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import EXAMPLES
from witness import Witness
from witness.errors import (
    MissingParamError,
    PayloadTooLargeError,
    PromptValidationError,
    UnknownParamError,
    UploadError,
    WorkflowFormatError,
    WorkflowValidationError,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

INVERT: dict[str, Any] = json.loads((EXAMPLES / "invert.json").read_text())


def _graph(**changes: Any) -> dict[str, Any]:
    graph = copy.deepcopy(INVERT)
    for path, value in changes.items():
        node, _, field = path.partition("__")
        if field:
            graph[node]["inputs"][field] = value
        else:
            graph[node] = value
    return graph


def _rejected(kit: Witness, graph: dict[str, Any], validate: bool) -> Exception:
    queued_before = kit.prompt.queue_remaining()
    error: type[Exception] = WorkflowValidationError if validate else PromptValidationError
    with pytest.raises(error) as caught:
        kit.execute(graph, validate=validate, timeout=30)
    assert kit.prompt.queue_remaining() == queued_before  # nothing was queued
    return caught.value


def test_malformed_json_text_has_line_and_column(kit: Witness) -> None:
    text = '{\n  "1": {"class_type": "EmptyImage",\n    "inputs": {"width": 64,,}\n}'
    with pytest.raises(WorkflowFormatError) as caught:
        kit.execute(text)
    assert "line 3 column" in str(caught.value)


def test_malformed_json_file_names_the_file(kit: Witness, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"1": {"class_type": "EmptyImage", "inputs": {]}}')
    with pytest.raises(WorkflowFormatError) as caught:
        kit.execute(path)
    assert "broken.json" in str(caught.value)
    assert "line 1 column" in str(caught.value)


def test_not_a_workflow(kit: Witness) -> None:
    with pytest.raises(WorkflowFormatError):
        kit.execute("[1, 2, 3]")


@pytest.mark.parametrize("validate", [True, False])
def test_unknown_node_class(kit: Witness, validate: bool) -> None:
    graph = _graph(**{"2": {"class_type": "NoSuchNodeXYZ", "inputs": {"image": ["1", 0]}}})
    error = _rejected(kit, graph, validate)
    assert "NoSuchNodeXYZ" in str(error)


@pytest.mark.parametrize("validate", [True, False])
def test_wrong_input_type(kit: Witness, validate: bool) -> None:
    """A LATENT linked into an IMAGE input."""
    graph = _graph(
        **{
            "4": {
                "class_type": "EmptyLatentImage",
                "inputs": {"width": 64, "height": 64, "batch_size": 1},
            }
        },
        **{"2__image": ["4", 0]},
    )
    error = _rejected(kit, graph, validate)
    text = str(error)
    assert "node 2" in text or "'2'" in text or '"2"' in text or "2 (" in text
    assert "LATENT" in text or "IMAGE" in text
    if isinstance(error, PromptValidationError):
        assert [e.node_id for e in error.node_errors] == ["3"] or any(
            e.node_id == "2" for e in error.node_errors
        )


@pytest.mark.parametrize("validate", [True, False])
def test_out_of_range_value(kit: Witness, validate: bool) -> None:
    error = _rejected(kit, _graph(**{"1__width": 100000}), validate)
    text = str(error)
    assert "width" in text
    assert "100000" in text
    if isinstance(error, PromptValidationError):
        assert any(e.node_id == "1" for e in error.node_errors)
    else:
        assert any(getattr(p, "node_id", None) == "1" for p in error.problems)  # type: ignore[attr-defined]


@pytest.mark.parametrize("validate", [True, False])
def test_out_of_range_through_a_param(kit: Witness, validate: bool) -> None:
    error: type[Exception] = WorkflowValidationError if validate else PromptValidationError
    with pytest.raises(error) as caught:
        kit.execute(EXAMPLES / "invert.json", {"width": -5}, validate=validate)
    assert "width" in str(caught.value)


def test_missing_required_param(kit: Witness) -> None:
    with pytest.raises(MissingParamError) as caught:
        kit.execute(EXAMPLES / "upload_invert.json")
    assert caught.value.names == ("image",)
    assert "image" in str(caught.value)


def test_unknown_param(kit: Witness) -> None:
    with pytest.raises(UnknownParamError) as caught:
        kit.execute(EXAMPLES / "invert.json", {"widht": 32})
    assert caught.value.names == ("widht",)
    assert "width" in caught.value.known
    assert "widht" in str(caught.value)


def test_missing_upload_file(kit: Witness, tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(UploadError) as caught:
        kit.execute(EXAMPLES / "upload_invert.json", {"image": missing})
    assert caught.value.param == "image"
    assert "nope.png" in str(caught.value)
    with pytest.raises(UploadError) as by_name:
        kit.execute(EXAMPLES / "upload_invert.json", {"image": "witness-never-uploaded-x.png"})
    assert "witness-never-uploaded-x.png" in str(by_name.value)


def _sparse_file(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def test_upload_over_the_limit_is_refused_before_sending(kit: Witness, tmp_path: Path) -> None:
    limit = kit.files.max_upload_size()
    assert limit is not None
    big = _sparse_file(tmp_path / "big.png", limit + 1)
    with pytest.raises(PayloadTooLargeError) as caught:
        kit.files.upload_image(big)
    assert caught.value.limit == limit
    assert caught.value.size == limit + 1
    assert str(limit) in str(caught.value)
    assert "100 MiB" in str(caught.value)
    # Through execute() a media param that cannot be uploaded is an UploadError naming the
    # param; the PayloadTooLargeError (with the limit) is its cause and in its message.
    with pytest.raises(UploadError) as wrapped:
        kit.execute(EXAMPLES / "upload_invert.json", {"image": big})
    assert wrapped.value.param == "image"
    assert isinstance(wrapped.value.__cause__, PayloadTooLargeError)
    assert str(limit) in str(wrapped.value)


@pytest.mark.slow
def test_upload_over_the_limit_server_side_413(
    comfy_url: str, proxy_factory: Callable[[str], Any], tmp_path: Path
) -> None:
    """Behind a proxy that hides ``/features`` the client cannot pre-check: the server's own
    413 still ends as a PayloadTooLargeError stating the limit."""
    proxy = proxy_factory(comfy_url)
    proxy.rules.append(
        lambda method, path, headers: (
            (404, "text/plain", b"404: Not Found") if path.startswith("/api/features") else None
        )
    )
    with Witness(comfy_url) as direct:
        limit = direct.files.max_upload_size()
    assert limit is not None
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.write(os.urandom(1 << 20) * (limit // (1 << 20) + 1))
    with Witness(proxy.url, read_timeout=120.0) as kit:
        assert kit.files.max_upload_size() is None
        with pytest.raises(PayloadTooLargeError) as caught:
            kit.files.upload_image(big, filename="witness-too-big.bin")
    assert caught.value.status == 413
    assert caught.value.limit == limit

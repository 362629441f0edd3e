"""The pipeline against the real server: validation before upload, counted at the transport."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import png
from witness import Witness
from witness.backends.native import NativeBackend, NativeHandle
from witness.errors import WorkflowValidationError

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def counted(comfy_url: str) -> Iterator[tuple[Witness, list[str]]]:
    """A Witness whose every request path is recorded (the one transport's choke point)."""
    with Witness(comfy_url, timeout=60, retries=1) as kit:
        paths: list[str] = []
        send = kit.http.request

        def request(method: str, path: str, **kwargs: Any) -> Any:
            paths.append(f"{method} {path}")
            return send(method, path, **kwargs)

        kit.http.request = request  # type: ignore[method-assign]
        yield kit, paths


def _upload_workflow() -> dict[str, Any]:
    workflow: dict[str, Any] = json.loads((EXAMPLES / "upload_invert.json").read_text())
    return workflow


def _uploads(paths: list[str]) -> list[str]:
    return [p for p in paths if p.startswith("POST /upload")]


def test_a_workflow_failing_validation_uploads_nothing(
    counted: tuple[Witness, list[str]],
) -> None:
    kit, paths = counted
    workflow = _upload_workflow()
    assert kit.inspect(workflow)["params"]["image"]["upload"]
    broken = {k: dict(v) for k, v in workflow.items()}
    victim = next(k for k, v in broken.items() if v["class_type"] == "ImageInvert")
    broken[victim]["class_type"] = "ImageInvertTypo"
    with pytest.raises(WorkflowValidationError) as caught:
        kit.execute(broken, {"image": png(8, 8)})
    assert any(p.kind == "missing_node_type" for p in caught.value.problems)
    assert _uploads(paths) == []
    assert not any(p.startswith("POST /prompt") for p in paths)
    # The same workflow, fixed: exactly one upload, then the prompt.
    paths.clear()
    result = kit.execute(workflow, {"image": png(8, 8)})
    assert result.ok, result.msg
    assert len(_uploads(paths)) == 1
    assert paths.index(_uploads(paths)[0]) < paths.index("POST /prompt")


def test_native_backend_alone_and_prompt_handle_alias(comfy_url: str) -> None:
    backend = NativeBackend.from_url(comfy_url, retries=1)
    try:
        with Witness(comfy_url, backend=backend) as kit:
            handle = kit.submit(EXAMPLES / "invert.json", {"width": 16, "height": 16})
            assert isinstance(handle, NativeHandle)
            result = handle.wait(60)
            assert result.ok
            assert kit.wait(handle.prompt_id, timeout=30).prompt_id == handle.prompt_id
    finally:
        backend.close()

"""Server-provided file names never escape the download directory.

A lying server (or a proxy rewriting ``/history``) can put anything into ``filename`` and
``subfolder``. ``ExecuteResult.save`` must write every file inside the target directory.
Here the crafted history is assembled with the real downloader of a Witness on the real
server (each crafted entry is served by a real output file), and a second case runs a whole
``execute()`` through a proxy that rewrites the ``/history`` answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import EXAMPLES, Proxy, crafted_result
from witness import Witness
from witness.api_clients.types import FileRef
from witness.core.results import OutputFile
from witness.errors import InvalidArgumentError, UnsafeOutputError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HOSTILE = [
    "../../escape.png",
    "../escape2.png",
    "/etc/passwd",
    "/tmp/abs_escape.png",
    "sub/../../../escape3.png",
    "..\\..\\win_escape.png",
    "C:\\Windows\\evil.png",
    "..",
    ".",
    "",
    "con.png",
    "x\x00y.png",
    "a/b/c/deep.png",
    "~/.ssh/authorized_keys",
]


def _files_in(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_save_keeps_hostile_names_inside(
    kit: Witness, tmp_path: Path, forget: Callable[..., None]
) -> None:
    real = kit.execute(EXAMPLES / "invert.json", {"color": 0xABCDEF, "width": 8, "height": 8})
    forget(real)
    assert real.ok
    assert real.files
    source = real.files[0]
    payload = kit.files.download(FileRef(source.filename, source.subfolder, source.type))

    def downloader(item: OutputFile, destination: Path) -> int:
        # The real /view download of the real file, to wherever save() decided.
        return kit.files.download_to(
            FileRef(source.filename, source.subfolder, source.type), destination
        )

    images = [
        {"filename": name, "subfolder": sub, "type": "output"}
        for name in HOSTILE
        for sub in ("", "../..", "/etc")
    ]
    result = crafted_result(images, downloader)
    sandbox = tmp_path / "sandbox"
    target = sandbox / "out"
    sandbox.mkdir()
    outside_before = _files_in(tmp_path)
    written = result.save(target)
    # Entries without a file name are not files; every other one is written.
    assert len(result.files) == len([i for i in images if i["filename"]])
    assert len(written) == len(result.files)
    resolved_target = target.resolve()
    for path in written:
        assert path.resolve().parent == resolved_target, path
        assert path.read_bytes() == payload
    assert len({p.name for p in written}) == len(written)  # no file overwrote another
    assert _files_in(tmp_path) - outside_before == set(written)
    assert not Path("/tmp/abs_escape.png").exists()


def test_execute_through_a_proxy_that_rewrites_history(
    comfy_url: str,
    proxy_factory: Callable[[str], Proxy],
    tmp_path: Path,
    forget: Callable[..., None],
) -> None:
    """The server says the file is ``../../../evil.png``; /view still serves the real one."""
    proxy = proxy_factory(comfy_url)
    renamed: dict[str, str] = {}

    def rewrite(path: str, body: bytes) -> bytes:
        if not path.startswith("/api/history/"):
            return body
        data: dict[str, Any] = json.loads(body or b"{}")
        for entry in data.values():
            for output in entry.get("outputs", {}).values():
                for image in output.get("images", []):
                    renamed["../../../evil.png"] = image["filename"]
                    image["filename"] = "../../../evil.png"
                    image["subfolder"] = "../../.."
        return json.dumps(data).encode()

    def view(method: str, path: str, headers: dict[str, str]) -> tuple[int, str, bytes] | None:
        if path.startswith("/api/view") and "evil.png" in path:
            real = renamed["../../../evil.png"]
            with Witness(comfy_url) as direct:
                return (200, "image/png", direct.files.download(FileRef(real, "", "output")))
        return None

    proxy.rewrite = rewrite
    proxy.rules.append(view)
    target = tmp_path / "a" / "b" / "out"
    with Witness(proxy.url) as kit:
        # The prompt completed: its result is kept, with an encoded URL for the hostile name;
        # only saving that file is refused, with a typed error naming it.
        result = kit.execute(EXAMPLES / "invert.json", {"color": 0x010203, "width": 8, "height": 8})
        assert result.status == "completed"
        assert len(result.images) == 1
        assert "..%2F..%2F..%2Fevil.png" in result.images[0]
        with pytest.raises(UnsafeOutputError) as caught:
            result.save(target)
    assert "evil.png" in str(caught.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    seen_history = [path for _, path, _ in proxy.seen if path.startswith("/api/history/")]
    assert seen_history
    forget(seen_history[-1].rsplit("/", 1)[-1].split("?")[0])


def test_download_refuses_traversal_names(kit: Witness) -> None:
    for name in ("../../etc/passwd", "..", "a/../../b.png"):
        with pytest.raises(InvalidArgumentError):
            kit.files.download(name)

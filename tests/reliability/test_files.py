"""Files witness writes: the mode ``open(..., "w")`` would give (issue 13 item 4), and
``save()`` that keeps going past an unsafe server name (item 8)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import EXAMPLES, crafted_result, fresh_params
from witness import Witness
from witness.api_clients.types import FileRef
from witness.core.results import ExecuteResult, OutputFile
from witness.errors import UnsafeOutputError
from witness.utils.files import atomic_writer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def umask_022() -> Iterator[int]:
    """Run the test under umask 022 (the usual default): new files should be 0644."""
    old = os.umask(0o022)
    try:
        yield 0o644
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_and_download_give_the_mode_open_gives(
    kit: Witness, tmp_path: Path, forget: Callable[..., None], umask_022: int
) -> None:
    plain = tmp_path / "plain.txt"
    with open(plain, "w"):
        pass
    assert _mode(plain) == umask_022
    result = kit.execute(EXAMPLES / "invert.json", fresh_params())
    forget(result)
    saved = result.raise_for_status().save(tmp_path / "saved", texts=True)
    assert saved
    assert {oct(_mode(p)) for p in saved} == {oct(umask_022)}
    item = result.files[0]
    target = tmp_path / "direct" / "x.png"
    kit.http.download(
        "/view", target, params={"filename": item.filename, "subfolder": "", "type": item.type}
    )
    assert _mode(target) == umask_022
    # An existing file keeps its own mode when replaced (as open(..., "w") keeps it).
    target.chmod(0o600)
    kit.files.download_to(FileRef(item.filename, item.subfolder, item.type), target)
    assert _mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]  # no temp left


def test_atomic_writer_leaves_nothing_on_failure(tmp_path: Path, umask_022: int) -> None:
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")

    def write_then_fail() -> None:
        with atomic_writer(target) as handle:
            handle.write(b"new")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"]


def _ui_workflow() -> dict[str, object]:
    return {
        "nodes": [
            {
                "id": 1,
                "type": "EmptyImage",
                "mode": 0,
                "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
                "widgets_values": [8, 8, 1, 0],
            },
            {
                "id": 2,
                "type": "PreviewImage",
                "mode": 0,
                "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
                "outputs": [],
                "widgets_values": [],
            },
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
    }


def test_cli_convert_output_mode(comfy_url: str, tmp_path: Path) -> None:
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps(_ui_workflow()), "utf-8")
    out = tmp_path / "api.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "witness",
            "convert",
            str(ui),
            "-o",
            str(out),
            "--server",
            comfy_url,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(0o022),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["2"]["class_type"] == "PreviewImage"
    assert oct(_mode(out)) == oct(0o644)


def test_save_saves_every_safe_file_then_lists_the_refused(
    kit: Witness, tmp_path: Path, forget: Callable[..., None]
) -> None:
    """Outputs ``good1``, ``../evil.png``, ``good2`` (a real file behind each safe name)."""
    real = kit.execute(EXAMPLES / "invert.json", fresh_params())
    forget(real)
    source = real.raise_for_status().files[0]
    images = [
        {"filename": source.filename, "subfolder": "", "type": "output"},
        {"filename": "../evil.png", "subfolder": "", "type": "output"},
        {"filename": source.filename, "subfolder": "", "type": "output"},
        {"filename": "evil2.png", "subfolder": "../..", "type": "output"},
    ]
    result = crafted_result(images, kit.native.assembler.download)
    assert len(result.files) == 4
    with pytest.raises(UnsafeOutputError) as caught:
        result.save(tmp_path / "out")
    error = caught.value
    assert error.refused == ("../evil.png", "../../evil2.png")
    assert len(error.saved) == 2
    on_disk = sorted((tmp_path / "out").iterdir())
    assert sorted(error.saved) == on_disk  # every safe file was written, nothing else
    payload = kit.files.download(FileRef(source.filename, "", "output"))
    assert all(p.read_bytes() == payload for p in on_disk)
    assert "../evil.png" in str(error)
    assert "saved 2 file(s)" in str(error)


def test_save_refusal_without_a_server(tmp_path: Path) -> None:
    """The same rule with a downloader that refuses one name (fields and order)."""
    calls: list[str] = []

    def downloader(item: OutputFile, destination: Path) -> int:
        calls.append(item.filename)
        if item.filename.startswith(".."):
            raise UnsafeOutputError(f"not saved: {item.filename!r}")
        destination.write_bytes(b"x")
        return 1

    files = [
        OutputFile(
            node_id="3",
            var="r",
            key="images",
            filename=name,
            subfolder="",
            type="output",
            kind="image",
            url="u",
        )
        for name in ("a.png", "../b.png", "c.png")
    ]
    result = ExecuteResult(status="completed", files=files, downloader=downloader)
    with pytest.raises(UnsafeOutputError) as caught:
        result.save(tmp_path)
    assert calls == ["a.png", "../b.png", "c.png"]
    assert [p.name for p in caught.value.saved] == ["a.png", "c.png"]
    assert caught.value.refused == ("../b.png",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "c.png"]

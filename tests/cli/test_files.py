"""``witness upload`` / ``download`` as subprocesses on the real server."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.cli.conftest import WitnessCli
from tests.support.images import png

pytestmark = pytest.mark.integration


def test_upload_then_download(witness_cli: WitnessCli, tmp_path: Path) -> None:
    data = png(3, 2, (1, 2, 3, 255))
    name = f"cli_{random.randrange(10**9)}.png"
    (tmp_path / name).write_bytes(data)
    uploaded = witness_cli("--json", "upload", name, "--subfolder", "cli")
    assert uploaded.returncode == 0, uploaded.stderr
    assert uploaded.record() == {
        "name": name, "subfolder": "cli", "type": "input", "value": f"cli/{name}",
    }  # fmt: skip
    (tmp_path / "got").mkdir()
    downloaded = witness_cli("--json", "download", name, "--subfolder", "cli", "--type", "input",
                             "-o", "got")  # fmt: skip
    assert downloaded.returncode == 0, downloaded.stderr
    record = downloaded.record()
    assert record["bytes"] == len(data)
    assert (tmp_path / "got" / name).read_bytes() == data
    to_file = witness_cli("download", name, "--subfolder", "cli", "--type", "input", "-o", "x.png")
    assert to_file.stdout.strip() == "x.png"
    assert (tmp_path / "x.png").read_bytes() == data


def test_download_errors(witness_cli: WitnessCli, tmp_path: Path) -> None:
    missing = witness_cli("download", "no-such-file.png")
    assert missing.returncode == 1
    assert "witness: error:" in missing.stderr
    assert witness_cli("download", "../etc/passwd").returncode in (1, 2)
    assert witness_cli("upload", "nothing-here.png").returncode == 2

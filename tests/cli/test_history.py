"""``witness history`` as a subprocess on the real server."""

from __future__ import annotations

import pytest

from tests.cli.conftest import EXAMPLES, WitnessCli
from witness import Witness

pytestmark = pytest.mark.integration


def test_history_list_show_delete_clear(witness_cli: WitnessCli, kit: Witness) -> None:
    first = witness_cli("--json", "run", str(EXAMPLES / "invert.json"), "-p", "width=11").record()
    second = witness_cli("--json", "run", str(EXAMPLES / "invert.json"), "-p", "width=12").record()
    ids = [first["prompt_id"], second["prompt_id"]]

    listed = witness_cli("--json", "history")
    assert listed.returncode == 0
    rows = {r["prompt_id"]: r for r in listed.records()}
    assert all(rows[i]["status"] == "success" for i in ids)
    newest = witness_cli("--json", "history", "list", "--max", "1").records()
    assert [r["prompt_id"] for r in newest] == [ids[1]]
    assert [r["prompt_id"] for r in witness_cli("--json", "history", "--max", "1").records()] == [
        ids[1]
    ]

    shown = witness_cli("--json", "history", "show", ids[0])
    record = shown.record()
    assert record["status"] == "success"
    assert record["files"][0]["filename"] == first["files"][0]["filename"]
    human = witness_cli("history", "show", ids[0])
    assert human.stdout.startswith(f"prompt {ids[0]}: success")
    missing = witness_cli("history", "show", "no-such-prompt")
    assert missing.returncode == 1
    assert "no history entry" in missing.stderr

    assert witness_cli("history", "delete", ids[0]).returncode == 0
    assert kit.history.get(ids[0]) is None
    assert kit.history.get(ids[1]) is not None
    assert witness_cli("--json", "history", "clear").record() == {"cleared": True}
    assert kit.history.get_all() == {}
    empty = witness_cli("history")
    assert empty.stdout == ""
    assert "empty" in empty.stderr

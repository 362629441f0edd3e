"""The typed shapes: built from the reference's recorded answers, and tolerant of odd ones."""

from __future__ import annotations

from witness.api_clients.types import (
    CancelOutcome,
    CancelResult,
    FileRef,
    HistoryEntry,
    PromptResponse,
    QueueItem,
    QueueState,
    UploadedFile,
)

# The HistoryEntry example of the reference (§2.1).
ENTRY = {
    "prompt": [
        7,
        "pid",
        {"1": {"class_type": "EmptyImage", "inputs": {}}},
        {"client_id": "c", "create_time": 1795310352872, "extra_pnginfo": {}},
        ["2", "4", "5"],
    ],
    "outputs": {
        "5": {
            "images": [{"filename": "probe_c41ed9_00001_.png", "subfolder": "", "type": "output"}],
            "animated": [False],
        },
        "6": {"text": ["hello"]},
    },
    "status": {
        "status_str": "error",
        "completed": False,
        "messages": [
            ["execution_start", {"prompt_id": "pid", "timestamp": 1}],
            ["execution_cached", {"nodes": [], "prompt_id": "pid", "timestamp": 2}],
            ["execution_interrupted", {"prompt_id": "pid", "node_id": "4", "timestamp": 3}],
        ],
    },
    "meta": {"5": {"node_id": "5", "display_node": "5", "parent_node": None}},
}


def test_history_entry_from_the_reference_shape() -> None:
    entry = HistoryEntry.from_json("pid", ENTRY)
    assert entry.number == 7
    assert entry.extra_data["client_id"] == "c"
    assert entry.outputs_to_execute == ("2", "4", "5")
    assert entry.interrupted
    assert not entry.succeeded
    assert entry.error is None
    assert entry.status.message("execution_interrupted") == {
        "prompt_id": "pid",
        "node_id": "4",
        "timestamp": 3,
    }
    [file] = entry.output_files()
    assert file.node_id == "5"
    assert file.kind == "images"
    assert file.ref == FileRef("probe_c41ed9_00001_.png", "", "output")


def test_odd_history_entries_do_not_crash() -> None:
    entry = HistoryEntry.from_json("x", {"prompt": None, "outputs": [], "status": "weird"})
    assert entry.number == 0
    assert entry.outputs == {}
    assert entry.status.status_str is None
    assert not entry.succeeded
    short = HistoryEntry.from_json("y", {"prompt": [3, "y"], "status": {"messages": [["a"], 5]}})
    assert short.number == 3
    assert short.status.messages == ()


def test_queue_state_sorts_pending_and_skips_junk() -> None:
    state = QueueState.from_json(
        {
            "queue_running": [[1, "r", {}, {}, ["9"]]],
            "queue_pending": [[5, "b", {}, {}, []], "junk", [-2, "front", {}, {}, []], [3, "a"]],
        }
    )
    assert [i.prompt_id for i in state.pending] == ["front", "a", "b"]
    assert state.status_of("r") == "running"
    assert len(state) == 4
    assert QueueState.from_json({}) == QueueState()
    assert QueueItem.from_list([]).prompt_id == ""


def test_prompt_response_collects_dropped_outputs() -> None:
    node_errors = {
        "3": {
            "errors": [
                {
                    "type": "value_smaller_than_min",
                    "message": "Value -5 smaller than min of 1",
                    "details": "width",
                    "extra_info": {"input_name": "width", "received_value": -5},
                }
            ],
            "dependent_outputs": ["4", "7"],
            "class_type": "EmptyImage",
        },
        "8": {"errors": [], "dependent_outputs": ["7"], "class_type": "X"},
    }
    response = PromptResponse.from_json(
        {"prompt_id": "p", "number": -3, "node_errors": node_errors},
        {"3": {"_meta": {"title": "Size"}}},
    )
    assert response.dropped_outputs == ("4", "7")
    [error] = response.node_errors
    assert error.title == "Size"
    assert "received -5" in str(error)


def test_file_names_for_inputs() -> None:
    assert UploadedFile("a.png").input_value == "a.png"
    assert UploadedFile("a.png", "s", "input").input_value == "s/a.png"
    assert UploadedFile("a.png", "s", "output").input_value == "s/a.png [output]"
    assert UploadedFile.from_json({"name": "n", "subfolder": None}).ref == FileRef("n", "", "input")
    assert FileRef.from_json({"filename": "f", "type": "temp"}).to_json() == {
        "filename": "f",
        "subfolder": "",
        "type": "temp",
    }


def test_cancel_result_says_whether_it_stopped_anything() -> None:
    assert CancelResult("p", CancelOutcome.DEQUEUED, "queue_api").cancelled
    assert not CancelResult("p", CancelOutcome.FINISHED, "jobs_api").cancelled
    assert CancelOutcome.NOT_FOUND == "not_found"

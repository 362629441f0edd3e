"""SystemClient against the real server; routes 0.3.75 lacks with ``responses``."""

from __future__ import annotations

import pytest
import responses

from witness.api_clients import SystemClient
from witness.config.settings import Settings
from witness.errors import (
    BadRequestError,
    FeatureUnavailableError,
    InvalidArgumentError,
    NotFoundError,
    ResponseDecodeError,
)
from witness.transport.http import HttpClient

BASE = "http://comfy.test:8188"


@pytest.fixture
def system(http: HttpClient) -> SystemClient:
    return SystemClient(http)


def _offline(**settings: object) -> SystemClient:
    return SystemClient(HttpClient(Settings(api_url=BASE, **settings)))  # type: ignore[arg-type]


@pytest.mark.integration
def test_system_stats_and_features(system: SystemClient) -> None:
    stats = system.system_stats()
    assert stats["system"]["comfyui_version"] == "0.3.75"
    assert stats["devices"][0]["type"] == "cpu"
    features = system.features()
    assert features["max_upload_size"] == 100 * 2**20
    assert features["supports_preview_metadata"] is True


@pytest.mark.integration
def test_object_info_and_one_node(system: SystemClient) -> None:
    everything = system.object_info()
    assert "EmptyImage" in everything
    assert "TestSleep" in everything
    node = system.node_info("EmptyImage")
    assert node == everything["EmptyImage"]
    assert node["input"]["required"]["width"][0] == "INT"
    assert node["output"] == ["IMAGE"]


@pytest.mark.integration
def test_unknown_node_class_is_not_found(system: SystemClient) -> None:
    with pytest.raises(NotFoundError, match="NoSuchNode/x"):
        system.node_info("NoSuchNode/x")
    with pytest.raises(InvalidArgumentError):
        system.node_info("")


@pytest.mark.integration
def test_lists(system: SystemClient) -> None:
    assert isinstance(system.embeddings(), list)
    assert any(e.startswith("/extensions/") for e in system.extensions())
    folders = system.model_folders()
    assert "checkpoints" in folders
    assert "custom_nodes" in folders
    assert isinstance(system.models("checkpoints"), list)
    with pytest.raises(NotFoundError):
        system.models("witness_no_such_folder")
    experiment = system.experiment_model_folders()
    names = {f["name"] for f in experiment}
    assert "checkpoints" in names
    assert "custom_nodes" not in names
    assert isinstance(system.experiment_models("checkpoints"), list)
    with pytest.raises(NotFoundError):
        system.experiment_models("witness_no_such_folder")
    assert isinstance(system.workflow_templates(), dict)


@pytest.mark.integration
def test_global_subgraphs(system: SystemClient) -> None:
    subgraphs = system.global_subgraphs()
    assert isinstance(subgraphs, dict)
    for subgraph_id in list(subgraphs)[:1]:
        entry = system.global_subgraph(subgraph_id)
        assert isinstance(entry["data"], str)
    with pytest.raises(NotFoundError):
        system.global_subgraph("witness-no-such-subgraph")


@pytest.mark.integration
def test_routes_this_server_lacks_raise_feature_unavailable(system: SystemClient) -> None:
    with pytest.raises(FeatureUnavailableError) as info:
        system.jobs()
    assert info.value.capability == "GET /api/jobs"
    with pytest.raises(FeatureUnavailableError):
        system.job("00000000-0000-4000-8000-000000000000")
    with pytest.raises(FeatureUnavailableError, match="node_replacements"):
        system.node_replacements()
    assert system.supports("jobs") is False
    assert system.supports("node_replacements") is False
    with pytest.raises(InvalidArgumentError):
        system.supports("teleport")


@pytest.mark.integration
def test_models_and_previews_in_a_real_folder(special_http: HttpClient) -> None:
    system = SystemClient(special_http)
    assert sorted(system.models("loras")) == ["sub/deep.safetensors", "tiny.safetensors"]
    [tiny] = [m for m in system.experiment_models("loras") if m["name"] == "tiny.safetensors"]
    assert tiny["size"] > 0
    preview = system.model_preview("loras", tiny["pathIndex"], "tiny.safetensors")
    assert preview[8:12] == b"WEBP"
    with pytest.raises(NotFoundError):
        system.model_preview("loras", tiny["pathIndex"], "sub/deep.safetensors")


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (("loras", "0", "a.safetensors"), "path_index"),
        (("loras", -1, "a.safetensors"), "path_index"),
        (("loras", 0, "../../input/a.safetensors"), "filename"),
        (("loras", 0, "/etc/passwd"), "filename"),
        (("", 0, "a.safetensors"), "folder"),
    ],
)
def test_model_preview_arguments(args: tuple[object, ...], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _offline().model_preview(*args)  # type: ignore[arg-type]
    assert info.value.argument == argument


# -- newer servers, at the HTTP boundary ---------------------------------------------------

JOB = {
    "id": "6f1c2b4e-8a9d-4c1e-9f2a-1b2c3d4e5f60",
    "status": "completed",
    "priority": 3,
    "create_time": 1795310352872,
    "execution_start_time": 1795310352900,
    "execution_end_time": 1795310353100,
    "outputs_count": 1,
    "preview_output": {"filename": "a.png", "subfolder": "", "type": "output"},
}


@responses.activate
def test_jobs_list_sends_validated_filters() -> None:
    listing = responses.add(
        responses.GET,
        f"{BASE}/api/jobs",
        json={
            "jobs": [JOB],
            "pagination": {"offset": 0, "limit": 5, "total": 1, "has_more": False},
        },
    )
    page = _offline().jobs(
        status=["completed", "failed"],
        workflow_id="wf",
        sort_by="execution_duration",
        sort_order="asc",
        limit=5,
        offset=0,
    )
    assert page["jobs"][0]["id"] == JOB["id"]
    assert page["pagination"]["total"] == 1
    query = listing.calls[0].request.url.split("?", 1)[1]
    assert query == (
        "status=completed%2Cfailed&workflow_id=wf&sort_by=execution_duration"
        "&sort_order=asc&limit=5&offset=0"
    )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"status": "done"}, "status"),
        ({"status": []}, "status"),
        ({"sort_by": "name"}, "sort_by"),
        ({"sort_order": "up"}, "sort_order"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_jobs_arguments_are_checked(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _offline().jobs(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument


@responses.activate
def test_job_detail_and_not_found() -> None:
    detail = {**JOB, "outputs": {}, "execution_status": {"status_str": "success"}, "workflow": {}}
    responses.add(responses.GET, f"{BASE}/api/jobs/{JOB['id']}", json=detail)
    responses.add(
        responses.GET, f"{BASE}/api/jobs/missing", status=404, json={"error": "Job not found"}
    )
    system = _offline()
    assert system.job(JOB["id"])["execution_status"] == {"status_str": "success"}
    with pytest.raises(NotFoundError, match="Job not found"):
        system.job("missing")


@responses.activate
def test_jobs_400_is_a_bad_request() -> None:
    responses.add(
        responses.GET,
        f"{BASE}/api/jobs",
        status=400,
        json={"error": "limit must be a positive integer"},
    )
    with pytest.raises(BadRequestError, match="positive integer"):
        _offline().jobs()


@responses.activate
def test_jobs_answer_without_a_list_is_a_decode_error() -> None:
    responses.add(responses.GET, f"{BASE}/api/jobs", json={"items": []})
    with pytest.raises(ResponseDecodeError):
        _offline().jobs()


@responses.activate
def test_node_replacements_and_capability_probe_when_offered() -> None:
    table = {"OldNode": [{"new_node_id": "NewNode", "input_mapping": {}}]}
    probe = responses.add(responses.GET, f"{BASE}/api/node_replacements", json=table)
    responses.add(responses.GET, f"{BASE}/api/jobs", json={"jobs": [], "pagination": {}})
    system = _offline()
    assert system.node_replacements() == table
    assert system.supports("node_replacements") is True
    assert system.supports("node_replacements") is True
    assert system.supports("jobs") is True
    assert probe.call_count == 2  # one call, one probe; the second answer was cached


@responses.activate
def test_unknown_global_subgraph_null_is_not_found() -> None:
    responses.add(
        responses.GET,
        f"{BASE}/api/global_subgraphs/abc",
        body="null",
        content_type="application/json",
    )
    with pytest.raises(NotFoundError, match="abc"):
        _offline().global_subgraph("abc")

"""The emulator follows the RunningHub v1 contract (runninghub-api.md §1 and §4).

These tests speak raw HTTP (``requests``), independent of witness's client, so the client tests
rest on an emulator that is itself checked against the documented contract.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import pytest
import requests

import tests.runninghub_emulator as emu_module
from tests.runninghub.conftest import APP_ID, TEXT_TO_IMAGE, WORKFLOW_ID
from tests.runninghub_emulator import EmuOutput, RunningHubEmulator

CREATE = "/task/openapi/create"
STATUS = "/task/openapi/status"
OUTPUTS = "/task/openapi/outputs"


def post(emu: RunningHubEmulator, path: str, body: Any, **kwargs: Any) -> dict[str, Any]:
    response = requests.post(emu.url + path, json=body, timeout=5, **kwargs)
    assert response.status_code == 200
    envelope = response.json()
    assert set(envelope) == {"code", "msg", "data"}
    return envelope


def create(emu: RunningHubEmulator, key: str, workflow_id: str = WORKFLOW_ID, **extra: Any) -> str:
    envelope = post(emu, CREATE, {"apiKey": key, "workflowId": workflow_id, **extra})
    assert envelope["code"] == 0, envelope
    return str(envelope["data"]["taskId"])


def wait_state(emu: RunningHubEmulator, key: str, task_id: str, state: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if post(emu, STATUS, {"apiKey": key, "taskId": task_id})["data"] == state:
            return
        time.sleep(0.01)
    raise AssertionError(f"task never reached {state}")


def test_create_success_shape(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    envelope = post(
        rh_emulator,
        CREATE,
        {
            "apiKey": rh_key,
            "workflowId": WORKFLOW_ID,
            "nodeInfoList": [{"nodeId": "3", "fieldName": "seed", "fieldValue": "7"}],
        },
    )
    assert envelope["code"] == 0
    assert envelope["msg"] == "success"
    data = envelope["data"]
    assert re.fullmatch(r"\d{19}", data["taskId"])
    assert data["taskStatus"] == "QUEUED"
    assert data["netWssUrl"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", data["clientId"])
    tips = json.loads(data["promptTips"])
    assert tips["result"] is True
    assert tips["node_errors"] == {}
    # The string fieldValue is applied with the input's own type.
    assert rh_emulator.task(data["taskId"]).prompt["3"]["inputs"]["seed"] == 7


def test_lifecycle_queued_running_success(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    rh_emulator.add_workflow(
        "2001",
        TEXT_TO_IMAGE,
        queue_delay=0.3,
        run_time=0.3,
        outputs=[EmuOutput("png", "9"), EmuOutput("mp4", "12"), EmuOutput("txt", None)],
    )
    task_id = create(rh_emulator, rh_key, "2001")
    assert post(rh_emulator, STATUS, {"apiKey": rh_key, "taskId": task_id})["data"] == "QUEUED"
    queued = post(rh_emulator, OUTPUTS, {"apiKey": rh_key, "taskId": task_id})
    assert (queued["code"], queued["msg"]) == (813, "APIKEY_TASK_IS_QUEUED")
    wait_state(rh_emulator, rh_key, task_id, "RUNNING")
    assert post(rh_emulator, OUTPUTS, {"apiKey": rh_key, "taskId": task_id})["code"] == 804
    wait_state(rh_emulator, rh_key, task_id, "SUCCESS")
    done = post(rh_emulator, OUTPUTS, {"apiKey": rh_key, "taskId": task_id})
    assert done["code"] == 0
    items = done["data"]
    assert [i["fileType"] for i in items] == ["png", "mp4", "txt"]
    assert items[0]["nodeId"] == "9"
    assert "nodeId" not in items[2]
    assert all(isinstance(i["taskCostTime"], str) for i in items)
    # Output URLs are unauthenticated GETs with real bytes.
    png = requests.get(items[0]["fileUrl"], timeout=5)
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    mp4 = requests.get(items[1]["fileUrl"], timeout=5).content
    assert mp4[4:8] == b"ftyp"
    assert task_id in requests.get(items[2]["fileUrl"], timeout=5).text
    rh_emulator.expire_outputs(task_id)
    assert requests.get(items[0]["fileUrl"], timeout=5).status_code == 404


def test_failed_task_reports_failed_reason(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    rh_emulator.add_workflow("2002", TEXT_TO_IMAGE, fail={"node_id": "3", "traceback": "tb"})
    task_id = create(rh_emulator, rh_key, "2002")
    wait_state(rh_emulator, rh_key, task_id, "FAILED")
    failed = post(rh_emulator, OUTPUTS, {"apiKey": rh_key, "taskId": task_id})
    assert (failed["code"], failed["msg"]) == (805, "APIKEY_TASK_STATUS_ERROR")
    assert failed["data"]["failedReason"]["node_id"] == "3"


def test_default_failed_reason_has_every_documented_field(
    rh_emulator: RunningHubEmulator, rh_key: str
) -> None:
    rh_emulator.add_workflow("2003", TEXT_TO_IMAGE, create_status="FAILED", fail=None)
    envelope = post(rh_emulator, CREATE, {"apiKey": rh_key, "workflowId": "2003"})
    assert envelope["data"]["taskStatus"] == "FAILED"
    task_id = envelope["data"]["taskId"]
    reason = post(rh_emulator, OUTPUTS, {"apiKey": rh_key, "taskId": task_id})["data"][
        "failedReason"
    ]
    assert set(reason) == {
        "current_outputs",
        "exception_type",
        "node_name",
        "current_inputs",
        "traceback",
        "node_id",
        "exception_message",
    }
    assert all(isinstance(v, str) for v in reason.values())


@pytest.mark.parametrize(
    ("setup", "body", "code"),
    [
        (None, {"workflowId": WORKFLOW_ID}, 301),
        (None, {"apiKey": "nope", "workflowId": WORKFLOW_ID}, 802),
        ({"free": True}, {"workflowId": WORKFLOW_ID}, 801),
        ({"balance": 0}, {"workflowId": WORKFLOW_ID}, 416),
        ({"balance": 0, "kind": "enterprise"}, {"workflowId": WORKFLOW_ID}, 812),
        ({"forced_code": 806}, {"workflowId": WORKFLOW_ID}, 806),
        ({"forced_code": 811}, {"workflowId": WORKFLOW_ID}, 811),
        (None, {"workflowId": "404404"}, 380),
        (None, {}, 301),
        (
            None,
            {
                "workflowId": WORKFLOW_ID,
                "nodeInfoList": [{"nodeId": "77", "fieldName": "x", "fieldValue": "1"}],
            },
            803,
        ),
        (
            None,
            {
                "workflowId": WORKFLOW_ID,
                "nodeInfoList": [{"nodeId": "3", "fieldName": "nope", "fieldValue": "1"}],
            },
            803,
        ),
        (None, {"workflowId": WORKFLOW_ID, "instanceType": "huge"}, 301),
        ({"requires_plus": True, "kind": "exclusive"}, {"workflowId": WORKFLOW_ID}, 435),
        ({"kind": "exclusive", "exclusive_expired": True}, {"workflowId": WORKFLOW_ID}, 436),
    ],
)
def test_create_error_codes(
    rh_emulator: RunningHubEmulator, setup: dict[str, Any] | None, body: dict[str, Any], code: int
) -> None:
    key = rh_emulator.add_key("k" * 32, **(setup or {}))
    missing_key = code == 301 and "workflowId" in body
    if "apiKey" not in body and not missing_key:
        body = {"apiKey": key, **body}
    envelope = post(rh_emulator, CREATE, body, headers={"Host": "www.runninghub.ai"})
    assert envelope["code"] == code
    assert envelope["msg"].startswith(emu_module.ERROR_NAMES[code])
    assert not rh_emulator.tasks


def test_workflow_not_saved_gives_810(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    rh_emulator.add_workflow("2004", TEXT_TO_IMAGE, saved_and_run=False)
    assert post(rh_emulator, CREATE, {"apiKey": rh_key, "workflowId": "2004"})["code"] == 810


def test_validation_failures_give_433_with_node_errors(
    rh_emulator: RunningHubEmulator, rh_key: str
) -> None:
    bad_type = post(
        rh_emulator,
        CREATE,
        {
            "apiKey": rh_key,
            "workflowId": WORKFLOW_ID,
            "nodeInfoList": [{"nodeId": "3", "fieldName": "steps", "fieldValue": "many"}],
        },
    )
    assert bad_type["code"] == 433
    tips = json.loads(bad_type["data"]["promptTips"])
    assert tips["node_errors"]["3"]["errors"][0]["extra_info"]["input_name"] == "steps"
    rh_emulator.add_workflow(
        "2005", TEXT_TO_IMAGE, validation_errors={"4": {"errors": [], "class_type": "X"}}
    )
    scripted = post(rh_emulator, CREATE, {"apiKey": rh_key, "workflowId": "2005"})
    assert scripted["code"] == 433
    assert "node_errors" in scripted["msg"]


def test_concurrency_queue_full_and_personal_queue(
    rh_emulator: RunningHubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = rh_emulator.add_key("c" * 32, concurrency=1)
    rh_emulator.add_workflow("2006", TEXT_TO_IMAGE, run_time=30)
    first = create(rh_emulator, key, "2006")
    assert post(rh_emulator, CREATE, {"apiKey": key, "workflowId": "2006"})["code"] == 421
    monkeypatch.setattr(emu_module, "PERSONAL_QUEUE_LIMIT", 1)
    queued = create(rh_emulator, key, "2006", usePersonalQueue=True)
    extra = post(
        rh_emulator, CREATE, {"apiKey": key, "workflowId": "2006", "usePersonalQueue": True}
    )
    assert extra["code"] == 814
    # The personal-queue task waits for the slot, then runs.
    assert rh_emulator.task(queued).state == "QUEUED"
    post(rh_emulator, "/task/openapi/cancel", {"apiKey": key, "taskId": first})
    assert rh_emulator.wait_for(lambda: rh_emulator.task(queued).state == "RUNNING")
    exclusive = rh_emulator.add_key("e" * 32, concurrency=0, kind="exclusive")
    assert post(rh_emulator, CREATE, {"apiKey": exclusive, "workflowId": "2006"})["code"] == 415


def test_queue_full_burst_then_success(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    rh_emulator.queue_full(2)
    rh_emulator.instance_maxed(1)
    codes = [post(rh_emulator, CREATE, {"apiKey": rh_key, "workflowId": WORKFLOW_ID})["code"]]
    codes += [post(rh_emulator, CREATE, {"apiKey": rh_key, "workflowId": WORKFLOW_ID})["code"]]
    codes += [post(rh_emulator, CREATE, {"apiKey": rh_key, "workflowId": WORKFLOW_ID})["code"]]
    codes += [post(rh_emulator, CREATE, {"apiKey": rh_key, "workflowId": WORKFLOW_ID})["code"]]
    assert codes == [421, 421, 415, 0]
    assert rh_emulator.count(CREATE) == 4


def test_ai_app_run(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    run = "/task/openapi/ai-app/run"
    ok = post(
        rh_emulator,
        run,
        {"apiKey": rh_key, "webappId": int(APP_ID), "nodeInfoList": [], "instanceType": "plus"},
    )
    assert ok["code"] == 0
    assert ok["data"]["taskStatus"] == "QUEUED"
    missing = post(rh_emulator, run, {"apiKey": rh_key, "webappId": 1, "nodeInfoList": []})
    assert missing["code"] == 901
    assert post(rh_emulator, run, {"apiKey": rh_key, "webappId": int(APP_ID)})["code"] == 301


def test_status_outputs_cancel_of_unknown_or_foreign_task(
    rh_emulator: RunningHubEmulator, rh_key: str
) -> None:
    other = rh_emulator.add_key("o" * 32)
    task_id = create(rh_emulator, other)
    for path in (STATUS, OUTPUTS, "/task/openapi/cancel", "/task/openapi/getWebhookDetail"):
        assert post(rh_emulator, path, {"apiKey": rh_key, "taskId": task_id})["code"] == 807
        assert post(rh_emulator, path, {"apiKey": rh_key, "taskId": "1"})["code"] == 807
        assert post(rh_emulator, path, {"apiKey": rh_key})["code"] == 301


def test_cancel_makes_the_task_failed(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    rh_emulator.add_workflow("2007", TEXT_TO_IMAGE, run_time=30)
    task_id = create(rh_emulator, rh_key, "2007")
    cancelled = post(rh_emulator, "/task/openapi/cancel", {"apiKey": rh_key, "taskId": task_id})
    assert cancelled == {"code": 0, "msg": "success", "data": None}
    assert post(rh_emulator, STATUS, {"apiKey": rh_key, "taskId": task_id})["data"] == "FAILED"
    assert post(rh_emulator, OUTPUTS, {"apiKey": rh_key, "taskId": task_id})["code"] == 805


def upload(emu: RunningHubEmulator, key: str, name: str, content: bytes) -> dict[str, Any]:
    response = requests.post(
        emu.url + "/task/openapi/upload",
        data={"apiKey": key, "fileType": "input"},
        files={"file": (name, content)},
        timeout=30,
    )
    return dict(response.json())


def test_upload(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    content = emu_module.png_bytes()
    ok = upload(rh_emulator, rh_key, "cat.PNG", content)
    assert ok["code"] == 0
    assert ok["data"] == {
        "fileName": f"api/{hashlib.sha256(content).hexdigest()}.png",
        "fileType": "input",
    }
    assert upload(rh_emulator, rh_key, "notes.txt", b"x")["code"] == 808
    assert upload(rh_emulator, "bad", "cat.png", content)["code"] == 802
    too_big = upload(rh_emulator, rh_key, "big.mp4", b"\0" * (emu_module.MAX_UPLOAD + 1))
    assert too_big["code"] == 809
    assert rh_emulator.requests_to("/task/openapi/upload")[-1].body["__size__"] > 30 * 2**20


def test_upload_bad_extension_code_is_configurable() -> None:
    with RunningHubEmulator(bad_extension_code=301) as emu:
        key = emu.add_key()
        assert upload(emu, key, "x.exe", b"MZ")["code"] == 301


def test_account_status_uses_lowercase_apikey() -> None:
    with RunningHubEmulator(accept_bearer=False) as emu:
        key = emu.add_key("a" * 32, balance="12.5")
        path = "/uc/openapi/accountStatus"
        ok = post(emu, path, {"apikey": key})
        assert ok["code"] == 0
        assert ok["data"] == {
            "remainCoins": "12.5",
            "currentTaskCounts": "0",
            "remainMoney": "0.00",
            "currency": "CNY",
            "apiType": "NORMAL",
        }
        assert post(emu, path, {"apiKey": key})["code"] == 301
        bearer = post(emu, path, {}, headers={"Authorization": f"Bearer {key}"})
        assert bearer["code"] == 301


def test_bearer_auth_and_workflow_json(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    envelope = post(
        rh_emulator,
        "/api/openapi/getJsonApiFormat",
        {"workflowId": WORKFLOW_ID},
        headers={"Authorization": f"Bearer {rh_key}", "Host": "www.runninghub.cn"},
    )
    assert json.loads(envelope["data"]["prompt"]) == TEXT_TO_IMAGE
    missing = post(
        rh_emulator, "/api/openapi/getJsonApiFormat", {"apiKey": rh_key, "workflowId": "9"}
    )
    assert missing["code"] == 380


def test_webhook_delivery_with_retries_and_detail(
    rh_emulator: RunningHubEmulator, rh_key: str
) -> None:
    rh_emulator.fail_webhook_sink(2)
    task_id = create(rh_emulator, rh_key, webhookUrl=rh_emulator.webhook_sink_url)
    assert rh_emulator.wait_for(lambda: len(rh_emulator.sink_received) == 1)
    event = rh_emulator.sink_received[0]
    assert event["event"] == "TASK_END"
    assert event["taskId"] == task_id
    assert json.loads(event["eventData"])["code"] == 0
    detail_path = "/task/openapi/getWebhookDetail"
    detail = post(rh_emulator, detail_path, {"apiKey": rh_key, "taskId": task_id})["data"]
    assert detail["retryCount"] == 2
    assert detail["callbackStatus"] == "SUCCESS"
    assert detail["webhookUrl"] == rh_emulator.webhook_sink_url
    again = post(
        rh_emulator,
        "/task/openapi/retryWebhook",
        {"apiKey": rh_key, "webhookId": detail["id"], "webhookUrl": rh_emulator.webhook_sink_url},
    )
    assert again["code"] == 0
    assert rh_emulator.wait_for(lambda: len(rh_emulator.sink_received) == 2)
    no_hook = create(rh_emulator, rh_key)
    assert post(rh_emulator, detail_path, {"apiKey": rh_key, "taskId": no_hook})["data"] is None


def test_webhook_gives_up_after_three_retries(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    rh_emulator.fail_webhook_sink(10)
    task_id = create(rh_emulator, rh_key, webhookUrl=rh_emulator.webhook_sink_url)
    detail_path = "/task/openapi/getWebhookDetail"

    def gave_up() -> bool:
        data = post(rh_emulator, detail_path, {"apiKey": rh_key, "taskId": task_id})["data"]
        return bool(data) and data["retryCount"] == 3 and data["callbackStatus"] == "FAILED"

    assert rh_emulator.wait_for(gave_up)
    assert rh_emulator.sink_received == []


def test_unknown_path_gives_412_or_404(rh_emulator: RunningHubEmulator) -> None:
    assert post(rh_emulator, "/task/openapi/nope", {})["code"] == 412
    with RunningHubEmulator(unknown_path_http404=True) as emu:
        assert requests.post(emu.url + "/nope", json={}, timeout=5).status_code == 404


def test_key_expiring_after_n_calls(rh_emulator: RunningHubEmulator) -> None:
    key = rh_emulator.add_key("x" * 32, expires_after_calls=2)
    task_id = create(rh_emulator, key)
    assert post(rh_emulator, STATUS, {"apiKey": key, "taskId": task_id})["code"] == 0
    assert post(rh_emulator, STATUS, {"apiKey": key, "taskId": task_id})["code"] == 802


def test_status_override_and_request_log(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    task_id = create(rh_emulator, rh_key)
    rh_emulator.set_status_override(task_id, "")
    assert post(rh_emulator, STATUS, {"apiKey": rh_key, "taskId": task_id})["data"] == ""
    rh_emulator.set_status_override(task_id, "PAUSED")
    assert post(rh_emulator, STATUS, {"apiKey": rh_key, "taskId": task_id})["data"] == "PAUSED"
    assert rh_emulator.count(CREATE) == 1
    assert rh_emulator.count(STATUS) == 2
    assert rh_emulator.requests_to(CREATE)[0].body["workflowId"] == WORKFLOW_ID


def test_transport_faults(rh_emulator: RunningHubEmulator, rh_key: str) -> None:
    body = {"apiKey": rh_key, "workflowId": WORKFLOW_ID}
    rh_emulator.inject(CREATE, "drop")
    with pytest.raises(requests.ConnectionError):
        requests.post(rh_emulator.url + CREATE, json=body, timeout=5)
    assert not rh_emulator.tasks  # dropped before the work
    rh_emulator.inject(CREATE, "drop", after=True)
    with pytest.raises(requests.ConnectionError):
        requests.post(rh_emulator.url + CREATE, json=body, timeout=5)
    assert len(rh_emulator.tasks) == 1  # the task exists, the answer was lost
    rh_emulator.inject(CREATE, "slow", delay=1.0, after=True)
    with pytest.raises(requests.ReadTimeout):
        requests.post(rh_emulator.url + CREATE, json=body, timeout=(2, 0.2))
    assert len(rh_emulator.tasks) == 2
    rh_emulator.inject("*", "http502")
    bad_gateway = requests.post(rh_emulator.url + STATUS, json=body, timeout=5)
    assert bad_gateway.status_code == 502
    assert bad_gateway.text.startswith("<html>")
    rh_emulator.inject(STATUS, "http500")
    assert requests.post(rh_emulator.url + STATUS, json=body, timeout=5).status_code == 500
    rh_emulator.inject(STATUS, "non_json")
    page = requests.post(rh_emulator.url + STATUS, json=body, timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html"
    rh_emulator.inject(STATUS, "empty")
    assert requests.post(rh_emulator.url + STATUS, json=body, timeout=5).content == b""
    rh_emulator.inject(STATUS, "envelope500")
    assert post(rh_emulator, STATUS, body)["code"] == 500
    assert [r.fault for r in rh_emulator.requests_to(CREATE)] == ["drop", "drop", "slow"]

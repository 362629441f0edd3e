"""The fleet against three real servers: routing, least-busy, failover, stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from scripts.comfyui_server import TINY_CHECKPOINT, ComfyServer
from tests.support.fleet import ensure_running, history_ids, sleep_prompt, tiny_prompt
from witness.backends.base import PreparedWorkflow
from witness.backends.fleet import Fleet, FleetOptions
from witness.core import dsl
from witness.errors import NoCapableServerError, PromptLostError
from witness.transport.deadline import Deadline

pytestmark = pytest.mark.integration


@pytest.fixture
def trio(fleet_servers: list[ComfyServer]) -> Iterator[Fleet]:
    for server in fleet_servers:
        ensure_running(server)
    with Fleet([s.url for s in fleet_servers], timeout=120) as fleet:
        yield fleet


def _prepared(prompt: dict) -> PreparedWorkflow:  # type: ignore[type-arg]
    return PreparedWorkflow(prompt=prompt, signature=dsl.parse(prompt))


def _wait_started(fleet: Fleet, url: str, prompt_id: str, timeout: float = 60.0) -> None:
    member = fleet.member(url)
    end = time.monotonic() + timeout
    while not member.started(prompt_id):
        assert time.monotonic() < end, "the prompt never started"
        time.sleep(0.05)


def test_node_class_of_two_servers_never_lands_on_the_third(
    trio: Fleet, fleet_servers: list[ComfyServer]
) -> None:
    c_url = fleet_servers[2].url
    results = [trio.execute(sleep_prompt(0.0, color=i)) for i in range(6)]
    assert all(r.status == "completed" for r in results)
    stats = trio.stats()
    assert stats[c_url].submitted == 0
    assert sum(s.submitted for s in stats.values()) == 6
    # stock prompts spread over all three (ties go round-robin)
    for i in range(6):
        assert trio.execute(tiny_prompt(100 + i)).ok
    assert trio.stats()[c_url].submitted >= 1


def test_missing_model_is_refused_before_anything_is_submitted(trio: Fleet) -> None:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "absent.ckpt"}},
        "2": {
            "class_type": "VAEDecode",
            "inputs": {"samples": ["3", 0], "vae": ["1", 2]},
        },
        "3": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    with pytest.raises(NoCapableServerError) as caught:
        trio.submit(_prepared(prompt), Deadline.after(10))
    assert set(caught.value.lacks) == {m.url for m in trio.members}
    for items in caught.value.lacks.values():
        assert items == ("CheckpointLoaderSimple.ckpt_name='absent.ckpt'",)
    assert "absent.ckpt" in str(caught.value)
    assert sum(s.submitted for s in trio.stats().values()) == 0
    # the real model is there: routed and run
    prompt["1"]["inputs"]["ckpt_name"] = TINY_CHECKPOINT
    handle = trio.submit(_prepared(prompt), Deadline.after(60))
    assert handle.wait().status == "completed"


def test_a_busy_server_gets_no_new_prompts(trio: Fleet, fleet_servers: list[ComfyServer]) -> None:
    a_url = fleet_servers[0].url
    busy = trio.submit(
        _prepared(sleep_prompt(30.0)), Deadline.after(60), FleetOptions(prefer=a_url)
    )
    assert busy.server == a_url
    _wait_started(trio, a_url, busy.prompt_id)
    servers = set()
    for i in range(6):  # one after the other: the others are idle again each time
        handle = trio.submit(_prepared(tiny_prompt(200 + i)), Deadline.after(60))
        assert handle.wait().ok
        servers.add(handle.server)
    assert a_url not in servers
    assert len(servers) == 2  # B and C shared them (ties round-robin)
    busy.cancel()
    assert busy.wait().status == "interrupted"


def test_pending_prompts_of_a_killed_server_finish_elsewhere_once(
    fleet_servers: list[ComfyServer],
) -> None:
    a, b = fleet_servers[0], fleet_servers[1]
    for server in (a, b):
        ensure_running(server)
    try:
        with Fleet([a.url, b.url], timeout=120) as fleet:
            running = fleet.submit(
                _prepared(sleep_prompt(60.0)), Deadline.after(120), FleetOptions(prefer=a.url)
            )
            _wait_started(fleet, a.url, running.prompt_id)
            pending = [
                fleet.submit(
                    _prepared(tiny_prompt(300 + i)),
                    Deadline.after(120),
                    FleetOptions(prefer=a.url),
                )
                for i in range(4)
            ]
            assert {h.server for h in pending} == {a.url}
            before_b = set(history_ids(b.url))
            a.kill()
            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda h: h.wait(), pending))
            assert [r.status for r in results] == ["completed"] * 4
            assert {h.server for h in pending} == {b.url}
            with pytest.raises(PromptLostError) as lost:
                running.wait()
            assert lost.value.server == a.url
            assert lost.value.prompt_id == running.prompt_id
            new_on_b = [pid for pid in history_ids(b.url) if pid not in before_b]
            assert sorted(new_on_b) == sorted(h.prompt_id for h in pending)
            stats = fleet.stats()
            assert stats[a.url].lost == 1
            assert stats[a.url].moved == 4
            assert stats[a.url].state == "down"
            assert stats[b.url].completed == 4
            # back up: probed, then used again
            a.restart()
            end = time.monotonic() + 30
            while fleet.stats()[a.url].state != "up":
                assert time.monotonic() < end, "the restarted server was never probed up"
                time.sleep(0.1)
            assert running.prompt_id not in history_ids(a.url)
    finally:
        ensure_running(a)


def test_stats_are_readable_while_prompts_run(trio: Fleet) -> None:
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(sum(s.in_flight for s in trio.stats().values()))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        handles = [
            trio.submit(_prepared(tiny_prompt(400 + i)), Deadline.after(60)) for i in range(9)
        ]
        assert all(h.wait().ok for h in handles)
    finally:
        stop.set()
        watcher.join()
    stats = trio.stats()
    assert sum(s.completed for s in stats.values()) == 9
    assert all(s.mean_latency is not None for s in stats.values() if s.done)
    assert max(seen) >= 1


def test_retry_lost_reruns_a_running_prompt_elsewhere(fleet_servers: list[ComfyServer]) -> None:
    a, b = fleet_servers[0], fleet_servers[1]
    for server in (a, b):
        ensure_running(server)
    try:
        with Fleet([a.url, b.url], timeout=120, retry_lost=1) as fleet:
            handle = fleet.submit(
                _prepared(sleep_prompt(3.0, color=7)),
                Deadline.after(120),
                FleetOptions(prefer=a.url),
            )
            _wait_started(fleet, a.url, handle.prompt_id)
            a.kill()
            assert handle.wait().status == "completed"
            assert handle.servers == [a.url, b.url]
            assert handle.prompt_id in history_ids(b.url)
            assert fleet.stats()[a.url].lost == 1
    finally:
        ensure_running(a)


def test_a_restarted_server_is_routed_by_its_new_nodes(
    trio: Fleet, fleet_servers: list[ComfyServer]
) -> None:
    c = fleet_servers[2]
    stock_args = list(c.extra_args)
    try:
        c.extra_args = []  # now with the test nodes
        c.restart()
        member = trio.member(c.url)
        end = time.monotonic() + 30
        while "TestSleep" not in member.catalog(Deadline.after(10)):  # type: ignore[operator]
            assert time.monotonic() < end, "the new /object_info was never read"
            time.sleep(0.1)
        handle = trio.submit(
            _prepared(sleep_prompt(0.0, color=9)), Deadline.after(60), FleetOptions(prefer=c.url)
        )
        assert handle.server == c.url
        assert handle.wait().ok
    finally:
        c.extra_args = stock_args
        c.restart()


def test_the_facade_runs_on_a_fleet(trio: Fleet, fleet_servers: list[ComfyServer]) -> None:
    from witness import Witness

    c_url = fleet_servers[2].url
    with Witness(fleet_servers[0].url, backend=trio) as kit:
        options = FleetOptions(prefer=c_url)
        result = kit.execute(tiny_prompt(save=True), {"color": 77}, options=options)
        assert result.ok
        assert result.images[0].startswith(c_url)
        submitted = kit.submit(sleep_prompt(0.0, color=78))
        assert submitted.wait().ok
        assert submitted.prompt_id in history_ids(submitted.server or "")  # type: ignore[attr-defined]

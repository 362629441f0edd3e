"""Three real test ComfyUIs for the fleet and batch tests, plus small prompts for them.

``A`` and ``B`` load ComfyUI's test nodes (``TestSleep``...), ``C`` is started with
``--disable-all-custom-nodes`` (stock nodes only), so a prompt using a test node can only
land on A or B.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scripts.comfyui_server import ComfyServer
from witness.api_clients.history_client import HistoryClient
from witness.config.settings import Settings
from witness.transport.http import HttpClient


def start_servers(*, with_test_nodes: tuple[bool, ...] = (True, True, False)) -> list[ComfyServer]:
    """Start one server per flag, in parallel (preview off: less work per prompt)."""
    servers = [
        ComfyServer(
            preview_method=None,
            extra_args=() if nodes else ("--disable-all-custom-nodes",),
        )
        for nodes in with_test_nodes
    ]
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(lambda s: s.start(), servers))
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: list[ComfyServer]) -> None:
    """Stop every server (also ones that failed to start)."""
    for server in servers:
        server.stop()


def servers_fixture(flags: tuple[bool, ...]) -> Iterator[list[ComfyServer]]:
    """Body of a fixture: start, yield, stop."""
    servers = start_servers(with_test_nodes=flags)
    try:
        yield servers
    finally:
        stop_servers(servers)


def ensure_running(server: ComfyServer) -> None:
    """Restart a server a test killed."""
    if not server.is_running():
        server.restart()


def tiny_prompt(color: int = 0, *, size: int = 8, save: bool = False) -> dict[str, Any]:
    """EmptyImage -> PreviewImage (or SaveImage): runs in milliseconds; ``color`` makes it
    distinct (no cache hit)."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": color},
            "_meta": {"title": "img, $color.color"},
        },
        "2": {
            "class_type": "SaveImage" if save else "PreviewImage",
            "inputs": {"images": ["1", 0], **({"filename_prefix": "fleet"} if save else {})},
            "_meta": {"title": "$output.out"},
        },
    }


def sleep_prompt(seconds: float, color: int = 0) -> dict[str, Any]:
    """EmptyImage -> TestSleep -> PreviewImage (needs the test nodes)."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "TestSleep", "inputs": {"value": ["1", 0], "seconds": seconds}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


def history_ids(url: str) -> list[str]:
    """Every prompt id in a server's history (``GET /history``)."""
    with HttpClient(Settings(api_url=url)) as http:
        return list(HistoryClient(http).get_all(max_items=100000).keys())

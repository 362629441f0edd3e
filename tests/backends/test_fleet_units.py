"""Fleet pieces without a server: routing rules, the circuit breaker, pickle-safe errors."""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

from witness.backends.fleet.health import CircuitBreaker
from witness.backends.fleet.routing import RoundRobin, lacking, merge_object_info
from witness.core.validate import NodeCatalog
from witness.errors import NoCapableServerError, PromptLostError, TransportError
from witness.transport.retry import RetryPolicy

LOADER = {
    "input": {"required": {"ckpt_name": [["a.safetensors"], {}]}},
    "output": ["MODEL"],
    "output_node": False,
}
SINK = {"input": {"required": {"model": ["MODEL", {}]}}, "output": [], "output_node": True}


def _prompt(ckpt: str, sink: str = "Sink") -> dict:  # type: ignore[type-arg]
    return {
        "1": {"class_type": "Loader", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": sink, "inputs": {"model": ["1", 0]}},
    }


def test_lacking_names_missing_classes_and_model_files() -> None:
    catalog = NodeCatalog({"Loader": LOADER, "Sink": SINK})
    assert lacking(_prompt("a.safetensors"), catalog) == ()
    assert lacking(_prompt("b.safetensors"), catalog) == ("Loader.ckpt_name='b.safetensors'",)
    assert lacking(_prompt("a.safetensors", "Other"), catalog) == ("node class Other",)


def test_merged_object_info_unites_combo_choices() -> None:
    other = {"input": {"required": {"ckpt_name": [["b.safetensors", "a.safetensors"], {}]}}}
    merged = merge_object_info([{"Loader": LOADER}, {"Loader": other, "Sink": SINK}])
    assert merged["Loader"]["input"]["required"]["ckpt_name"][0] == [
        "a.safetensors",
        "b.safetensors",
    ]
    assert set(merged) == {"Loader", "Sink"}
    v3 = {"input": {"required": {"ckpt_name": ["COMBO", {"options": ["c"]}]}}}
    united = merge_object_info([{"L": v3}, {"L": {"input": {"required": {"ckpt_name": [["d"]]}}}}])
    assert united["L"]["input"]["required"]["ckpt_name"] == ["COMBO", {"options": ["c", "d"]}]


@dataclass
class _Load:
    load: float


def test_least_loaded_wins_and_ties_go_round_robin() -> None:
    chooser = RoundRobin()
    assert chooser.choose([_Load(2), _Load(0.5), _Load(1)]) == 1
    picks = {chooser.choose([_Load(1), _Load(1), _Load(3)]) for _ in range(4)}
    assert picks == {0, 1}


def test_breaker_opens_probes_with_backoff_and_closes() -> None:
    breaker = CircuitBreaker(policy=RetryPolicy(backoff=0.01, max_backoff=0.02, jitter=0.0))
    assert breaker.up
    assert breaker.failure("refused") is True
    assert breaker.failure("refused") is False
    assert breaker.state == "down"
    assert breaker.downs == 1
    time.sleep(0.03)
    assert breaker.probe_due()
    breaker.probe_failed("still refused")
    assert not breaker.probe_due(time.monotonic())
    assert breaker.success() is True
    assert breaker.up
    assert not breaker.probe_due()


def _roundtrip(error: Exception) -> Any:
    return pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes


def test_errors_survive_pickling_with_their_fields() -> None:
    lost = _roundtrip(PromptLostError("gone", prompt_id="p", server="http://a"))
    assert (str(lost), lost.prompt_id, lost.server) == ("gone", "p", "http://a")
    none = _roundtrip(NoCapableServerError("no", lacks={"a": ("x",)}))
    assert none.lacks == {"a": ("x",)}
    transport = _roundtrip(TransportError("t", method="GET", url="http://a/x"))
    assert transport.url == "http://a/x"

"""Params of the wrong shape or type (issue 13 items 6 and 9), against the real server."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from tests.reliability.conftest import EXAMPLES, fresh_params
from witness import Witness
from witness.errors import InvalidArgumentError, ParamError, WorkflowValidationError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

INVERT = EXAMPLES / "invert.json"


@pytest.mark.parametrize("params", ['{"width": 5}', ["width", 5], 5, b"width"])
def test_params_that_are_not_a_mapping(kit: Witness, params: Any) -> None:
    queued = kit.prompt.queue_remaining()
    with pytest.raises(InvalidArgumentError) as caught:
        kit.execute(INVERT, params)
    assert caught.value.argument == "params"
    assert type(params).__name__ in str(caught.value)
    with pytest.raises(InvalidArgumentError):
        kit.validate(INVERT, params)
    with pytest.raises(InvalidArgumentError):
        kit.submit(INVERT, params)
    assert kit.prompt.queue_remaining() == queued


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"width": 12.7}, "not a whole number"),
        ({"width": True}, "is a bool"),
        ({"height": False}, "is a bool"),
    ],
)
def test_silent_casts_are_refused_naming_the_param(
    kit: Witness, params: dict[str, Any], words: str
) -> None:
    (name,) = params
    problems = kit.validate(INVERT, params)
    assert [(p.kind, p.param, p.input_name) for p in problems] == [
        ("invalid_input_type", name, name)
    ]
    assert words in str(problems[0])
    assert f"param {name!r}" in str(problems[0])
    queued = kit.prompt.queue_remaining()
    with pytest.raises(WorkflowValidationError) as caught:
        kit.execute(INVERT, params, timeout=30)
    assert words in str(caught.value)
    assert kit.prompt.queue_remaining() == queued


def test_lenient_mode_keeps_the_servers_verdict(kit: Witness, forget: Callable[..., None]) -> None:
    """The server accepts (and casts) these: ``strict=False`` says the same."""
    for params in ({"width": 12.7}, {"width": True}):
        assert kit.validate(INVERT, params, strict=False) == []
    ran = kit.execute(
        INVERT,
        fresh_params(width=12.7),
        validate=False,
        timeout=60,
    )
    forget(ran)
    assert ran.ok  # the server truncated 12.7 to 12


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_name_the_param(kit: Witness, value: float) -> None:
    for validate in (True, False):
        with pytest.raises(ParamError) as caught:
            kit.execute(INVERT, {"width": value}, validate=validate, timeout=30)
        assert caught.value.names == ("width",)
        assert "'width'" in str(caught.value)
        assert "finite" in str(caught.value)


def test_non_finite_literal_in_the_workflow_is_a_problem(kit: Witness) -> None:
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": math.nan},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    (problem,) = kit.validate(graph)
    assert problem.input_name == "color"
    assert "not a finite number" in problem.message

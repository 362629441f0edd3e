"""A UI-format workflow with ``%Node.widget%`` and ``%date:...%`` in ``filename_prefix``, run
through ``Witness.execute`` on the real server: the saved file names carry the replaced values.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.support.ui_graph import UIGraph, sd_graph
from witness import Settings, Witness

pytestmark = pytest.mark.integration

CHECKPOINT = "witness-tiny-sd15.safetensors"


@pytest.fixture(scope="module")
def kit(comfy_url: str) -> Iterator[Witness]:
    with Witness(settings=Settings(api_url=comfy_url, read_timeout=120.0)) as witness:
        yield witness


def replacement_workflow() -> dict[str, object]:
    """Tiny-checkpoint txt2img (seed 4242) plus a weight-free EmptyImage branch."""
    ui = UIGraph()
    sd_graph(
        ui,
        checkpoint=CHECKPOINT,
        prompt="a fox",
        negative="",
        latent=(32, 32, 1),
        sampler=(4242, "fixed", 1, 7.0, "euler", "normal", 1.0),
        prefix="witness-sr/%KSampler.seed%_cfg%KSampler.cfg%_%date:yyyy-MM-dd%",
    )
    ui.node(8, "EmptyImage", outputs=["IMAGE"], widgets=[24, 16, 1, 0], title="Canvas")
    canvas_prefix = "witness-sr/%Canvas.width%x%EmptyImage.height%_%Nope.x%_%date:yy%"
    ui.node(9, "SaveImage", inputs=[("images", "IMAGE")], widgets=[canvas_prefix])
    ui.link(8, 0, 9, "images")
    return ui.workflow()


def test_saved_file_names_carry_the_replaced_widget_values_and_date(kit: Witness) -> None:
    before = datetime.now()
    result = kit.execute(replacement_workflow(), timeout=300)
    after = datetime.now()
    result.raise_for_status()
    names = {f.node_id: (f.subfolder, f.filename) for f in result.files}
    days = {before.strftime("%Y-%m-%d"), after.strftime("%Y-%m-%d")}
    subfolder, filename = names["7"]
    assert subfolder == "witness-sr"
    assert any(filename == f"4242_cfg7_{day}_00001_.png" for day in days), filename
    subfolder, filename = names["9"]
    assert subfolder == "witness-sr"
    years = {before.strftime("%y"), after.strftime("%y")}
    assert any(filename == f"24x16_%Nope.x%_{yy}_00001_.png" for yy in years), filename

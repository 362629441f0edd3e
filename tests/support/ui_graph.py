"""A builder for hand-written UI-format workflows, the way the editor saves them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LINK_FIELDS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")


class UIGraph:
    """Builds a UI-format graph (root or subgraph definition) node by node, link by link."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.links: list[list[Any]] = []
        self.subgraphs: list[dict[str, Any]] = []

    def node(
        self,
        node_id: int,
        node_type: str,
        *,
        inputs: Sequence[tuple[str, str]] = (),
        outputs: Sequence[str] = (),
        widgets: Any = None,
        mode: int = 0,
        title: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add a node; ``inputs`` are ``(name, type)`` sockets, ``outputs`` their types."""
        node: dict[str, Any] = {
            "id": node_id,
            "type": node_type,
            "pos": [100 * node_id, 100],
            "size": [200, 80],
            "flags": {},
            "order": len(self.nodes),
            "mode": mode,
            "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
            "outputs": [{"name": t, "type": t, "links": []} for t in outputs],
            "properties": {"Node name for S&R": node_type, **(properties or {})},
        }
        if widgets is not None:
            node["widgets_values"] = widgets
        if title is not None:
            node["title"] = title
        self.nodes.append(node)
        return node

    def link(self, origin: int, origin_slot: int, target: int, target_input: str) -> int:
        """Link an output to a named input (a widget input gets a socket when linked)."""
        link_id = len(self.links) + 1
        target_node = next(n for n in self.nodes if n["id"] == target)
        index = next(
            (i for i, s in enumerate(target_node["inputs"]) if s["name"] == target_input), None
        )
        if index is None:
            target_node["inputs"].append(
                {"name": target_input, "type": "*", "link": None, "widget": {"name": target_input}}
            )
            index = len(target_node["inputs"]) - 1
        target_node["inputs"][index]["link"] = link_id
        if origin >= 0:
            origin_node = next(n for n in self.nodes if n["id"] == origin)
            origin_node["outputs"][origin_slot]["links"].append(link_id)
        link_type = target_node["inputs"][index]["type"]
        self.links.append([link_id, origin, origin_slot, target, index, link_type])
        return link_id

    def workflow(self) -> dict[str, Any]:
        """The whole UI-format workflow."""
        data: dict[str, Any] = {
            "last_node_id": max((n["id"] for n in self.nodes), default=0),
            "last_link_id": len(self.links),
            "nodes": self.nodes,
            "links": self.links,
            "groups": [],
            "config": {},
            "extra": {},
            "version": 0.4,
        }
        if self.subgraphs:
            data["definitions"] = {"subgraphs": self.subgraphs}
        return data

    def as_subgraph(
        self,
        sub_id: str,
        inputs: Sequence[tuple[str, str, Sequence[int]]],
        outputs: Sequence[tuple[str, str, Sequence[int]]],
    ) -> dict[str, Any]:
        """This graph as a subgraph definition (links as objects, like the editor saves)."""
        return {
            "id": sub_id,
            "name": f"sub {sub_id}",
            "inputs": [{"name": n, "type": t, "linkIds": list(ids)} for n, t, ids in inputs],
            "outputs": [{"name": n, "type": t, "linkIds": list(ids)} for n, t, ids in outputs],
            "nodes": self.nodes,
            "links": [dict(zip(LINK_FIELDS, x, strict=False)) for x in self.links],
            "widgets": [],
        }


def sd_graph(
    ui: UIGraph,
    *,
    checkpoint: str = "m.ckpt",
    prompt: str = "a cat",
    negative: str = "blurry",
    latent: Sequence[int] = (512, 512, 1),
    sampler: Sequence[Any] = (42, "randomize", 20, 7.5, "euler", "normal", 1),
    prefix: str = "out",
    sampler_mode: int = 0,
) -> None:
    """Nodes 1-7: checkpoint -> text encoders -> KSampler (5) -> VAEDecode -> SaveImage (7)."""
    ui.node(1, "CheckpointLoaderSimple", outputs=["MODEL", "CLIP", "VAE"], widgets=[checkpoint])
    ui.node(2, "CLIPTextEncode", inputs=[("clip", "CLIP")], outputs=["CONDITIONING"],
            widgets=[prompt])  # fmt: skip
    ui.node(3, "CLIPTextEncode", inputs=[("clip", "CLIP")], outputs=["CONDITIONING"],
            widgets=[negative])  # fmt: skip
    ui.node(4, "EmptyLatentImage", outputs=["LATENT"], widgets=list(latent))
    ui.node(
        5,
        "KSampler",
        inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                ("negative", "CONDITIONING"), ("latent_image", "LATENT")],
        outputs=["LATENT"],
        widgets=list(sampler),
        mode=sampler_mode,
    )  # fmt: skip
    ui.node(6, "VAEDecode", inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=["IMAGE"])
    ui.node(7, "SaveImage", inputs=[("images", "IMAGE")], widgets=[prefix])
    for origin, slot, target, name in (
        (1, 1, 2, "clip"), (1, 1, 3, "clip"), (1, 0, 5, "model"), (2, 0, 5, "positive"),
        (3, 0, 5, "negative"), (4, 0, 5, "latent_image"), (5, 0, 6, "samples"), (1, 2, 6, "vae"),
        (6, 0, 7, "images"),
    ):  # fmt: skip
        ui.link(origin, slot, target, name)

"""Server commands: ``interrupt``, ``free``, ``stats``, ``nodes``, ``models``, ``embeddings``,
``extensions``, ``features``."""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Mapping
from typing import Any

from witness.cli.context import Context, Subparsers, add_command
from witness.cli.errors import EXIT_OK

__all__ = ["register"]

_GIB = 1024**3


def register(sub: Subparsers, parent: argparse.ArgumentParser) -> None:
    """Add the server commands."""
    interrupt = add_command(
        sub, "interrupt", parent, _interrupt, "interrupt the running prompt (any client's)"
    )
    interrupt.add_argument(
        "prompt_id", nargs="?", metavar="ID", help="only if this prompt is the one running"
    )
    free = add_command(
        sub, "free", parent, _free, "free memory and node caches (with --unload: models only)"
    )
    free.add_argument(
        "--unload", action="store_true", help="only unload the models (keep the caches)"
    )
    add_command(sub, "stats", parent, _stats, "server versions, RAM and devices")
    nodes = add_command(
        sub, "nodes", parent, _nodes, "search node classes (class, category, inputs)",
        "Search the server's node classes (GET /object_info). PATTERN matches the\n"
        "class name, display name or category: a substring, case-insensitive, or a\n"
        "glob such as 'Load*'.",
    )  # fmt: skip
    nodes.add_argument("pattern", nargs="?", metavar="PATTERN", help="what to look for")
    models = add_command(
        sub, "models", parent, _models, "model folders, or the files in one folder"
    )
    models.add_argument("folder", nargs="?", metavar="FOLDER", help="e.g. checkpoints")
    add_command(sub, "embeddings", parent, _embeddings, "embedding names")
    add_command(sub, "extensions", parent, _extensions, "frontend extension URLs")
    add_command(sub, "features", parent, _features, "server feature flags")


def _interrupt(ctx: Context, args: argparse.Namespace) -> int:
    queue = ctx.kit().queue
    if args.prompt_id:
        queue.interrupt(args.prompt_id)
    else:
        queue.interrupt_running()
    ctx.out.action({"interrupted": args.prompt_id or "running"}, "interrupt sent")
    return EXIT_OK


def _free(ctx: Context, args: argparse.Namespace) -> int:
    ctx.kit().queue.free(unload_models=True, free_memory=not args.unload)
    ctx.out.action(
        {"unload_models": True, "free_memory": not args.unload},
        "models unloaded" if args.unload else "models unloaded, memory and caches freed",
    )
    return EXIT_OK


def _stats(ctx: Context, args: argparse.Namespace) -> int:
    stats: Mapping[str, Any] = ctx.kit().system.system_stats()
    system: Mapping[str, Any] = stats.get("system", {})
    lines = [
        f"ComfyUI {system.get('comfyui_version', '?')}  python {system.get('python_version', '?')}"
        f"  pytorch {system.get('pytorch_version', '?')}  os {system.get('os', '?')}",
        f"RAM {system.get('ram_free', 0) / _GIB:.1f} GiB free of "
        f"{system.get('ram_total', 0) / _GIB:.1f} GiB",
    ]
    for device in stats.get("devices", []):
        lines.append(
            f"device {device.get('name', '?')} ({device.get('type', '?')}): VRAM "
            f"{device.get('vram_free', 0) / _GIB:.1f} GiB free of "
            f"{device.get('vram_total', 0) / _GIB:.1f} GiB"
        )
    ctx.out.record(stats, "\n".join(lines))
    return EXIT_OK


def _inputs(info: Mapping[str, Any]) -> list[str]:
    inputs = info.get("input", {})
    names: list[str] = []
    for section in ("required", "optional"):
        spec = inputs.get(section, {}) if isinstance(inputs, Mapping) else {}
        for name, entry in spec.items() if isinstance(spec, Mapping) else ():
            kind = entry[0] if isinstance(entry, list | tuple) and entry else "?"
            kind = "COMBO" if isinstance(kind, list | tuple) else str(kind)
            names.append(f"{name}:{kind}" + ("" if section == "required" else "?"))
    return names


def matches(pattern: str | None, *texts: str) -> bool:
    """Whether any text matches: a glob when ``pattern`` has ``*?[``, else a substring."""
    if not pattern:
        return True
    needle = pattern.lower()
    glob = any(c in pattern for c in "*?[")
    for text in texts:
        hay = text.lower()
        if (glob and fnmatch.fnmatchcase(hay, needle)) or (not glob and needle in hay):
            return True
    return False


def _nodes(ctx: Context, args: argparse.Namespace) -> int:
    info = ctx.kit().system.object_info()
    rows = [
        {
            "class": name,
            "display_name": node.get("display_name") or name,
            "category": node.get("category", ""),
            "output_node": bool(node.get("output_node")),
            "inputs": _inputs(node),
            "outputs": list(node.get("output", [])),
        }
        for name, node in sorted(info.items())
        if matches(args.pattern, name, str(node.get("display_name") or ""),
                   str(node.get("category", "")))
    ]  # fmt: skip
    ctx.out.records(
        rows,
        [("class", "CLASS"), ("category", "CATEGORY"), ("inputs", "INPUTS")],
        empty=f"no node class matches {args.pattern!r}",
    )
    return EXIT_OK


def _names(ctx: Context, names: list[str], key: str, empty: str) -> int:
    ctx.out.records([{key: n} for n in names], [(key, key.upper())], empty=empty)
    return EXIT_OK


def _models(ctx: Context, args: argparse.Namespace) -> int:
    system = ctx.kit().system
    if args.folder:
        return _names(ctx, system.models(args.folder), "model", f"no models in {args.folder}")
    return _names(ctx, system.model_folders(), "folder", "no model folders")


def _embeddings(ctx: Context, args: argparse.Namespace) -> int:
    return _names(ctx, ctx.kit().system.embeddings(), "embedding", "no embeddings")


def _extensions(ctx: Context, args: argparse.Namespace) -> int:
    return _names(ctx, ctx.kit().system.extensions(), "extension", "no extensions")


def _features(ctx: Context, args: argparse.Namespace) -> int:
    features: Mapping[str, Any] = ctx.kit().system.features()
    human = "\n".join(f"{k}: {v}" for k, v in features.items())
    ctx.out.record(features, human)
    return EXIT_OK

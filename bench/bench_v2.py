"""The Comfy API v2 path against the native one, on the same ComfyUI, in one run.

Run (from the repository root)::

    python bench/bench_v2.py                  # n=30 rounds
    python bench/bench_v2.py --runs 10 --sdk-python /tmp/sdkvenv/bin/python

A private ComfyServer and a ``comfy-api-proxy`` in front of it are started (or ``--url`` a
running ComfyUI). Each round runs, in rotating order, EmptyImage → ImageInvert → SaveImage
with a fresh colour (nothing cached) through:

* ``native``: ``Witness.execute()`` (websocket executor) straight on ComfyUI, of the same
  workflow dict (its stages: DSL, validation against the cached ``/object_info``, submit,
  websocket wait, history);
* ``v2``: the v2 backend through the proxy (DSL → submit → event stream → job → result),
  what ``Witness(backend="v2").execute()`` does after its load/validate stages;
* ``sdk``: comfy-sdk 0.5.0's ``Comfy.run()`` on the same proxy, when ``--sdk-python`` names an
  interpreter that has it (it is not a witness dependency: install it in a throwaway venv).
  It runs in a worker subprocess; only its ``run()`` call is timed.

Then the de-duplication: a LoadImage workflow with a 1 MiB PNG, executed twice; bytes uploaded
by each run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import git_commit  # noqa: E402
from tests.support.v2_proxy import ProxyProcess  # noqa: E402
from witness import Witness  # noqa: E402
from witness.backends.base import PreparedWorkflow  # noqa: E402
from witness.backends.v2 import V2Backend  # noqa: E402
from witness.config.settings import Settings  # noqa: E402
from witness.core import dsl  # noqa: E402
from witness.transport.deadline import Deadline  # noqa: E402

WORKFLOW = ROOT / "examples" / "invert.json"

SDK_WORKER = r"""
import json, sys, time
from comfy_sdk import Comfy
from comfy_sdk.exceptions import JobFailed
from comfy_sdk.workflows import Workflow
client = Comfy()
for line in sys.stdin:
    graph = json.loads(line)
    started = time.perf_counter()
    try:
        job = client.run(Workflow(graph))
        status, final = job.status, job.status
    except JobFailed as exc:
        words = str(exc).split()  # "job <id> ended <status>"
        status = "JobFailed: ended " + words[-1]
        final = client.jobs.get(words[1]).status
    print(json.dumps({"s": time.perf_counter() - started, "status": status, "final": final}),
          flush=True)
"""


def fresh_graph() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(WORKFLOW.read_text())
    graph["1"]["inputs"]["color"] = random.randrange(1 << 24)
    return graph


def noise_png(width: int, height: int) -> bytes:
    """An RGB PNG of random pixels, stored (not compressed): about 3 * width * height bytes."""
    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )


def v2_execute(backend: V2Backend, workflow: dict[str, Any], params: dict[str, Any]) -> Any:
    deadline = Deadline.after(120)
    signature = dsl.parse(workflow)
    prompt = dsl.apply(workflow, signature, params, resolve_media=backend.uploader(deadline))
    prepared = PreparedWorkflow(prompt=prompt, signature=signature, params=params)
    return backend.submit(prepared, deadline).wait(deadline)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(values),
        "median_ms": statistics.median(values) * 1000,
        "p10_ms": ordered[len(ordered) // 10] * 1000,
        "p90_ms": ordered[(len(ordered) * 9) // 10] * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--url", help="a running ComfyUI instead of a private one")
    parser.add_argument("--sdk-python", help="an interpreter with comfy-sdk installed")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    server = None
    url = args.url
    if url is None:
        from scripts.comfyui_server import ComfyServer

        server = ComfyServer().start()
        url = server.url
    proxy = ProxyProcess(url).start()
    sdk: subprocess.Popen[str] | None = None
    commit = git_commit()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "runs": args.runs,
        "server": url,
        "proxy": proxy.url,
    }
    try:
        native = Witness(url, timeout=120)
        backend = V2Backend.from_settings(Settings(api_url=proxy.url, read_timeout=60.0))
        template = json.loads(WORKFLOW.read_text())

        def native_call() -> None:
            result = native.execute(template, {"color": random.randrange(1 << 24)})
            if not result.ok:
                raise RuntimeError(f"native: {result.status} {result.msg}")

        def v2_call() -> None:
            result = v2_execute(backend, template, {"color": random.randrange(1 << 24)})
            if not result.ok or len(result.images) != 1:
                raise RuntimeError(f"v2: {result.status} {result.msg}")

        contenders: dict[str, Callable[[], None]] = {"native": native_call, "v2": v2_call}
        sdk_statuses: list[dict[str, Any]] = []
        if args.sdk_python:
            env = {**os.environ, "COMFY_BASE_URL": proxy.url}
            sdk = subprocess.Popen(
                [args.sdk_python, "-c", SDK_WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )

            def sdk_call() -> None:
                assert sdk is not None
                assert sdk.stdin is not None
                assert sdk.stdout is not None
                graph = fresh_graph()
                for node in graph.values():
                    node.pop("_meta", None)
                sdk.stdin.write(json.dumps(graph) + "\n")
                sdk.stdin.flush()
                sdk_statuses.append(json.loads(sdk.stdout.readline()))

            contenders["sdk"] = sdk_call
        names = list(contenders)
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm-up
            for _ in range(2):
                contenders[name]()
        sdk_statuses.clear()
        for i in range(args.runs):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                started = time.perf_counter()
                contenders[name]()
                elapsed = time.perf_counter() - started
                times[name].append(sdk_statuses[-1]["s"] if name == "sdk" else elapsed)
        for name, values in times.items():
            results[name] = summary(values)
        results["ratio_v2_native"] = statistics.median(times["v2"]) / statistics.median(
            times["native"]
        )
        results["paired_ratio_v2_native"] = statistics.median(
            [v / n for v, n in zip(times["v2"], times["native"], strict=True)]
        )
        if "sdk" in times:
            results["ratio_sdk_v2"] = statistics.median(times["sdk"]) / statistics.median(
                times["v2"]
            )
            results["sdk_status_counts"] = {
                s: sum(1 for x in sdk_statuses if x["status"] == s)
                for s in {x["status"] for x in sdk_statuses}
            }
            results["sdk_final_status_counts"] = {
                s: sum(1 for x in sdk_statuses if x["final"] == s)
                for s in {x["final"] for x in sdk_statuses}
            }

        # De-duplication: the same 1 MiB image twice.
        loader = {
            "1": {
                "class_type": "LoadImage",
                "inputs": {"image": "x.png"},
                "_meta": {"title": "$photo.~image!"},
            },
            "2": {
                "class_type": "PreviewImage",
                "inputs": {"images": ["1", 0]},
                "_meta": {"title": "$output.copy"},
            },
        }
        with tempfile.TemporaryDirectory() as tmp:
            photo = Path(tmp) / "noise.png"
            photo.write_bytes(noise_png(600, 583))
            uploads = []
            for _ in range(2):
                before = backend.assets.bytes_uploaded
                started = time.perf_counter()
                if not v2_execute(backend, loader, {"photo": photo}).ok:
                    raise RuntimeError("v2 LoadImage run failed")
                uploads.append(
                    {
                        "bytes_uploaded": backend.assets.bytes_uploaded - before,
                        "ms": (time.perf_counter() - started) * 1000,
                    }
                )
            results["dedupe"] = {"file_bytes": photo.stat().st_size, "runs": uploads}
        native.close()
        backend.close()
    finally:
        if sdk is not None:
            sdk.kill()
            sdk.wait()
        proxy.stop()
        if server is not None:
            server.stop()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

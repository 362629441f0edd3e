"""witness benchmarks against the real ComfyUI test server.

Run (from the repository root)::

    python bench/run.py                       # full: every comparison, median of >= 30
    python bench/run.py --quick               # fewer repetitions, a smoke run (~1 min)
    python bench/run.py --url http://host:8188  # an existing server instead of a fresh one
    python bench/run.py --only latency,import --out bench/RESULTS.json

Without ``--url`` a private ``ComfyServer`` is started (``max_upload_size_mb=300``, for the
200 MB file of the memory benchmark) and stopped afterwards. Prints a table and writes JSON
(default ``bench/results-<mode>.json``, git-ignored; the committed run is ``bench/RESULTS.json``).

What is measured (each witness number next to its floor, interleaved in one run):

1. ``latency``: ``Witness.execute()`` of EmptyImage → ImageInvert → SaveImage
   (``examples/invert.json``, a fresh colour each call so nothing is cached), websocket and
   http executors, against the raw protocol floor (:mod:`bench.floor`). Target: websocket
   median <= 1.05x the floor. ``latency_tuned``: the same against a tuned raw client
   (:class:`bench.floor.RawClient` with ``tuned=True``), in its own pairing (no target).
2. ``throughput``: 200 prompts submitted from 4 threads, every result collected; prompts per
   second as a ratio to the raw floor doing the same. Target: >= 0.98x.
3. ``memory``: ``FileClient.download_to`` of a 200 MiB file from ``/view``; peak RSS growth of
   the downloading process. Target: < 30 MB.
4. ``import``: cold ``import witness`` in fresh interpreters (median of >= 30; target < 150 ms),
   ``from witness import Witness`` for reference, and the top of ``-X importtime``.
5. ``websocket``: events decoded and dispatched per second by ``WebSocketClient`` from a
   local RFC 6455 server bursting ComfyUI-shaped frames; sent vs received (no drops).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.floor import RawBatch, RawClient  # noqa: E402
from bench.wsserver import BurstServer, comfy_burst  # noqa: E402

WORKFLOW = ROOT / "examples" / "invert.json"
LATENCY_TARGET = 1.05  # issue 12: witness websocket median / raw floor median
THROUGHPUT_TARGET = 0.98  # issue 12: witness prompts/s / raw floor prompts/s
BENCHES = ("latency", "latency_tuned", "throughput", "memory", "import", "websocket")
TARGETS = {
    "latency": f"witness websocket median <= {LATENCY_TARGET}x raw floor",
    "latency_tuned": "none (witness against the tuned raw client, for reference)",
    "throughput": f"witness >= {THROUGHPUT_TARGET}x raw floor",
    "memory": "peak RSS growth < 30 MB",
    "import": "median cold `import witness` < 150 ms",
    "websocket": "no dropped events",
}


# -- helpers ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(values),
        "median": median(values) * scale,
        "p10": ordered[len(ordered) // 10] * scale,
        "p90": ordered[min(len(ordered) - 1, (len(ordered) * 9) // 10)] * scale,
        "min": ordered[0] * scale,
    }


def fresh_prompt() -> tuple[dict[str, Any], int]:
    """The invert graph with a colour nobody used: nothing can come from the cache."""
    color = random.randrange(1 << 24)
    graph = json.loads(WORKFLOW.read_text())
    graph["1"]["inputs"]["color"] = color
    for node in graph.values():
        node.pop("_meta", None)
    return graph, color


def clear_history(url: str) -> None:
    requests.post(url + "/api/history", json={"clear": True}, timeout=30).raise_for_status()


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "witness"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + ("+dirty(witness/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- 1. latency ---------------------------------------------------------------------------


def witness_call(kit: Any) -> Callable[[], None]:
    """One ``execute()`` of the invert workflow with a fresh colour, checked."""

    def call() -> None:
        result = kit.execute(WORKFLOW, {"color": random.randrange(1 << 24)})
        if not result.ok or len(result.images) != 1:
            raise RuntimeError(f"witness run failed: {result.status} {result.msg}")

    return call


def raw_call(client: RawClient) -> Callable[[], None]:
    """One raw-protocol run of the invert workflow with a fresh colour, checked."""

    def call() -> None:
        prompt, _ = fresh_prompt()
        entry = client.execute(prompt)
        if entry["status"]["status_str"] != "success":
            raise RuntimeError(f"raw run failed: {entry['status']}")

    return call


def interleave(contenders: dict[str, Callable[[], None]], runs: int) -> dict[str, list[float]]:
    """Warm every contender up (3 calls), then time ``runs`` rounds in rotating order."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: connections, /object_info, server-side first runs
        for _ in range(3):
            contenders[name]()
    for i in range(runs):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - started)
    return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median of the per-round ratios (each run against the other's run of its round)."""
    return median([a / b for a, b in zip(numerator, denominator, strict=True)])


def bench_latency(url: str, runs: int) -> dict[str, Any]:
    from witness import Witness

    raw = RawClient(url)
    kit_ws = Witness(url, timeout=120)
    kit_http = Witness(url, timeout=120, executor="http")
    try:
        times = interleave(
            {
                "raw_floor": raw_call(raw),
                "witness_websocket": witness_call(kit_ws),
                "witness_http": witness_call(kit_http),
            },
            runs,
        )
    finally:
        raw.close()
        kit_ws.close()
        kit_http.close()
    floor = median(times["raw_floor"])
    out: dict[str, Any] = {name: summary(values) for name, values in times.items()}
    out["ratio_websocket"] = median(times["witness_websocket"]) / floor
    out["ratio_http"] = median(times["witness_http"]) / floor
    out["paired_ratio_websocket"] = paired_ratio(times["witness_websocket"], times["raw_floor"])
    out["passed"] = out["ratio_websocket"] <= LATENCY_TARGET
    return out


def bench_latency_tuned(url: str, runs: int) -> dict[str, Any]:
    """``execute()`` against the tuned raw client only (no target): what witness itself adds.

    Its own pairing, not a fourth contender of ``latency``: every open socket gets every
    prompt's ``status`` broadcasts, which the default floor drains through its slow UTF-8
    check, so an extra contender there would slow the floor the target is stated against.
    """
    from witness import Witness

    tuned = RawClient(url, tuned=True)
    kit = Witness(url, timeout=120)
    try:
        times = interleave(
            {"raw_tuned": raw_call(tuned), "witness_websocket": witness_call(kit)}, runs
        )
    finally:
        tuned.close()
        kit.close()
    out: dict[str, Any] = {name: summary(values) for name, values in times.items()}
    out["ratio"] = median(times["witness_websocket"]) / median(times["raw_tuned"])
    out["paired_ratio"] = paired_ratio(times["witness_websocket"], times["raw_tuned"])
    return out


# -- 2. throughput ------------------------------------------------------------------------


def _run_threads(worker: Callable[[], None], threads: int) -> float:
    """Run ``worker`` on ``threads`` threads at once; seconds until all finished."""
    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
    return time.perf_counter() - started


def bench_throughput(url: str, rounds: int, prompts: int = 200, threads: int = 4) -> dict[str, Any]:
    from witness import Witness

    per_thread = prompts // threads

    def run_witness() -> float:
        kit = Witness(url, timeout=300)
        kit.object_info()  # a long-lived client has this; not part of the throughput
        errors: list[BaseException] = []
        results: list[Any] = []
        lock = threading.Lock()

        def worker() -> None:
            try:
                handles = [
                    kit.submit(WORKFLOW, {"color": random.randrange(1 << 24)})
                    for _ in range(per_thread)
                ]
                done = [handle.wait() for handle in handles]
                with lock:
                    results.extend(done)
            except BaseException as exc:
                errors.append(exc)

        try:
            elapsed = _run_threads(worker, threads)
        finally:
            kit.close()
        if errors:
            raise RuntimeError(f"witness throughput run failed: {errors[0]!r}")
        ids = {r.prompt_id for r in results}
        if len(results) != per_thread * threads or len(ids) != len(results):
            raise RuntimeError(f"witness: {len(results)} results, {len(ids)} distinct")
        if not all(r.ok and len(r.images) == 1 for r in results):
            raise RuntimeError("witness: a prompt did not complete")
        return per_thread * threads / elapsed

    def run_raw() -> float:
        batch = RawBatch(url)
        errors: list[BaseException] = []
        results: list[dict[str, Any]] = []
        lock = threading.Lock()

        def worker() -> None:
            try:
                entries = batch.run_thread([fresh_prompt()[0] for _ in range(per_thread)])
                with lock:
                    results.extend(entries)
            except BaseException as exc:
                errors.append(exc)

        try:
            elapsed = _run_threads(worker, threads)
        finally:
            batch.close()
        if errors:
            raise RuntimeError(f"raw throughput run failed: {errors[0]!r}")
        if len(results) != per_thread * threads:
            raise RuntimeError(f"raw: {len(results)} results")
        return per_thread * threads / elapsed

    rates: dict[str, list[float]] = {"raw_floor": [], "witness": []}
    for i in range(rounds):
        order = [("raw_floor", run_raw), ("witness", run_witness)]
        if i % 2:
            order.reverse()
        for name, fn in order:
            clear_history(url)
            rates[name].append(fn())
    clear_history(url)
    out: dict[str, Any] = {
        "prompts": per_thread * threads,
        "threads": threads,
        "rounds": rounds,
        "raw_floor_per_s": summary(rates["raw_floor"], 1.0),
        "witness_per_s": summary(rates["witness"], 1.0),
        "ratio": median(rates["witness"]) / median(rates["raw_floor"]),
        "paired_ratio": paired_ratio(rates["witness"], rates["raw_floor"]),
    }
    out["passed"] = out["ratio"] >= THROUGHPUT_TARGET
    return out


# -- 3. memory ----------------------------------------------------------------------------


def bench_memory(url: str, runs: int, size_mb: int = 200) -> dict[str, Any]:
    from witness.api_clients.file_client import FileClient
    from witness.config.settings import Settings
    from witness.errors import PayloadTooLargeError
    from witness.transport.http import HttpClient

    size = size_mb * 1024 * 1024
    name = f"witness-bench-{size_mb}mib.bin"
    with tempfile.TemporaryDirectory(prefix="witness-bench-") as tmp:
        source = Path(tmp) / name
        with source.open("wb") as handle:
            chunk = os.urandom(1 << 20)
            for _ in range(size_mb):
                handle.write(chunk)
        with HttpClient(Settings(api_url=url, read_timeout=300.0)) as http:
            try:
                stored = FileClient(http).upload_image(source, filename=name, overwrite=True)
            except PayloadTooLargeError as exc:
                return {"skipped": f"the server refuses a {size_mb} MiB upload: {exc}"}
        source.unlink()
        samples = []
        for _ in range(runs):
            dest = Path(tmp) / "download.bin"
            proc = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "memprobe.py"),
                    url,
                    stored.name,
                    stored.subfolder,
                    stored.type,
                    str(dest),
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"memprobe failed: {proc.stderr[-2000:]}")
            sample = json.loads(proc.stdout.strip().splitlines()[-1])
            if sample["bytes"] != size:
                raise RuntimeError(f"downloaded {sample['bytes']} bytes, expected {size}")
            samples.append(sample)
    growth = [s["growth_mb"] for s in samples]
    out = {
        "file_bytes": size,
        "runs": runs,
        "growth_mb_median": median(growth),
        "growth_mb_max": max(growth),
        "throughput_mb_s_median": median([size / 2**20 / s["seconds"] for s in samples]),
        "hwm_available": samples[0]["peak_hwm_kb"] is not None,
        "samples": samples,
    }
    out["passed"] = max(growth) < 30
    return out


# -- 4. import ----------------------------------------------------------------------------

_IMPORT_SNIPPET = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def _import_time(stmt: str) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_SNIPPET.format(stmt=stmt)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(proc.stdout.strip())


def _process_time(stmt: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", stmt], cwd=ROOT, check=True)
    return time.perf_counter() - started


def bench_import(runs: int) -> dict[str, Any]:
    statements = {
        "import witness": "import witness",
        "from witness import Witness": "from witness import Witness",
    }
    times: dict[str, list[float]] = {k: [] for k in statements}
    process: dict[str, list[float]] = {"python -c pass": [], "python -c 'import witness'": []}
    for _ in range(runs):  # interleaved
        for key, stmt in statements.items():
            times[key].append(_import_time(stmt))
        process["python -c pass"].append(_process_time("pass"))
        process["python -c 'import witness'"].append(_process_time("import witness"))
    top: dict[str, list[dict[str, Any]]] = {}
    for key, stmt in statements.items():
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", stmt],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        rows: list[dict[str, Any]] = []
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "[us]" in line:
                continue
            self_us, cumulative_us, module = (p.strip() for p in line[12:].split("|"))
            rows.append(
                {
                    "module": module,
                    "self_ms": int(self_us) / 1000,
                    "cumulative_ms": int(cumulative_us) / 1000,
                }
            )
        rows.sort(key=lambda r: -float(r["cumulative_ms"]))
        top[key] = rows[:12]
    out: dict[str, Any] = {key: summary(values) for key, values in times.items()}
    out["process_wall"] = {key: summary(values) for key, values in process.items()}
    out["importtime_top"] = top
    out["passed"] = out["import witness"]["median"] < 150
    return out


# -- 5. websocket -------------------------------------------------------------------------


def bench_websocket(runs: int, events: int) -> dict[str, Any]:
    from witness.api_clients.websocket_client import WebSocketClient
    from witness.api_clients.ws_events import (
        ExecutingEvent,
        MalformedFrameEvent,
        decode_text,
    )
    from witness.config.settings import Settings
    from witness.transport.http import HttpClient

    rates: list[float] = []
    checks: list[dict[str, int]] = []
    for _ in range(runs):
        prompt_id = str(uuid.uuid4())
        burst, frame_count = comfy_burst(prompt_id, events)
        server = BurstServer(burst, frame_count)
        http = HttpClient(Settings(api_url=server.url))
        ws = WebSocketClient(http, ping_interval=None, reconnect=False)
        dispatched = 0
        malformed = 0

        def count(event: object) -> None:
            nonlocal dispatched, malformed
            dispatched += 1
            if isinstance(event, MalformedFrameEvent):
                malformed += 1

        try:
            ws.connect(timeout=10)
            stream = ws.track(prompt_id)
            ws.add_callback(count)
            before = dispatched
            received = 0
            started = time.perf_counter()
            server.fire()
            deadline = time.monotonic() + 120
            while True:
                event = stream.get(timeout=max(0.1, deadline - time.monotonic()))
                if event is None:
                    break
                received += 1
                if isinstance(event, ExecutingEvent) and event.finished:
                    break
            elapsed = time.perf_counter() - started
        finally:
            ws.close()
            http.close()
            server.join(5)
        # Every frame of the burst is attributed to the prompt (type-1 previews included).
        checks.append(
            {
                "sent": frame_count,
                "received_by_stream": received,
                "dispatched_to_callbacks": dispatched - before,
                "malformed": malformed,
            }
        )
        rates.append(received / elapsed)
    # Decode alone (no socket, no dispatch), for reference.
    text = json.dumps(
        {"type": "progress", "data": {"value": 1, "max": 20, "prompt_id": "x", "node": "2"}}
    )
    started = time.perf_counter()
    for _ in range(50_000):
        decode_text(text)
    decode_rate = 50_000 / (time.perf_counter() - started)
    dropped = sum(c["sent"] - c["received_by_stream"] for c in checks)
    return {
        "frames_per_run": checks[0]["sent"],
        "runs": runs,
        "events_per_s": summary(rates, 1.0),
        "decode_only_per_s": decode_rate,
        "checks": checks,
        "dropped": dropped,
        "passed": dropped == 0 and all(c["malformed"] == 0 for c in checks),
    }


# -- driver -------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    if "latency" in results:
        r = results["latency"]
        rows += [
            ("latency", "raw floor median", f"{r['raw_floor']['median']:.1f} ms", ""),
            (
                "latency",
                "witness websocket median",
                f"{r['witness_websocket']['median']:.1f} ms",
                f"{r['ratio_websocket']:.3f}x floor {'PASS' if r['passed'] else 'FAIL'}",
            ),
            (
                "latency",
                "witness http median",
                f"{r['witness_http']['median']:.1f} ms",
                f"{r['ratio_http']:.3f}x floor (no target)",
            ),
        ]
    if "latency_tuned" in results:
        r = results["latency_tuned"]
        rows += [
            ("latency", "tuned raw client median", f"{r['raw_tuned']['median']:.1f} ms", ""),
            (
                "latency",
                "witness websocket median",
                f"{r['witness_websocket']['median']:.1f} ms",
                f"{r['ratio']:.3f}x tuned (no target)",
            ),
        ]
    if "throughput" in results:
        r = results["throughput"]
        rows += [
            ("throughput", "raw floor", f"{r['raw_floor_per_s']['median']:.1f} prompts/s", ""),
            (
                "throughput",
                "witness",
                f"{r['witness_per_s']['median']:.1f} prompts/s",
                f"{r['ratio']:.3f}x floor {'PASS' if r['passed'] else 'FAIL'}",
            ),
        ]
    if "memory" in results:
        r = results["memory"]
        if "skipped" in r:
            rows.append(("memory", "skipped", r["skipped"][:60], ""))
        else:
            rows.append(
                (
                    "memory",
                    f"download_to {r['file_bytes'] / 2**20:.0f} MiB",
                    f"+{r['growth_mb_max']:.1f} MB RSS (max)",
                    f"{r['throughput_mb_s_median']:.0f} MiB/s {'PASS' if r['passed'] else 'FAIL'}",
                )
            )
    if "import" in results:
        r = results["import"]
        rows += [
            (
                "import",
                "import witness",
                f"{r['import witness']['median']:.1f} ms",
                "PASS" if r["passed"] else "FAIL",
            ),
            (
                "import",
                "from witness import Witness",
                f"{r['from witness import Witness']['median']:.1f} ms",
                "",
            ),
        ]
    if "websocket" in results:
        r = results["websocket"]
        rows.append(
            (
                "websocket",
                f"{r['frames_per_run']} frames/run x {r['runs']}",
                f"{r['events_per_s']['median']:.0f} events/s",
                f"dropped {r['dropped']} {'PASS' if r['passed'] else 'FAIL'}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)] if rows else [0] * 4
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--out", type=Path, help="JSON output (default bench/results-<mode>.json)")
    args = parser.parse_args(argv)
    selected = [b.strip() for b in args.only.split(",")] if args.only else list(BENCHES)
    unknown = set(selected) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    mode = "quick" if args.quick else "full"
    reps = {
        "latency": 10 if args.quick else 40,
        "latency_tuned": 10 if args.quick else 40,
        "throughput": 2 if args.quick else 30,
        "memory": 1 if args.quick else 5,
        "import": 10 if args.quick else 40,
        "websocket": 3 if args.quick else 30,
    }
    results: dict[str, Any] = {
        "mode": mode,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(),
        "targets": TARGETS,
    }
    server = None
    needs_server = {"latency", "latency_tuned", "throughput", "memory"} & set(selected)
    url = args.url.rstrip("/") if args.url else None
    if needs_server and url is None:
        from scripts.comfyui_server import ComfyServer

        print("starting a ComfyUI test server ...", file=sys.stderr, flush=True)
        server = ComfyServer(max_upload_size_mb=300).start()
        url = server.url
    results["server"] = url
    try:
        for name in selected:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            if name == "latency":
                assert url is not None
                results[name] = bench_latency(url, reps[name])
            elif name == "latency_tuned":
                assert url is not None
                results[name] = bench_latency_tuned(url, reps[name])
            elif name == "throughput":
                assert url is not None
                results[name] = bench_throughput(url, reps[name])
            elif name == "memory":
                assert url is not None
                results[name] = bench_memory(url, reps[name])
            elif name == "import":
                results[name] = bench_import(reps[name])
            elif name == "websocket":
                results[name] = bench_websocket(reps[name], 2000 if args.quick else 5000)
            results[name]["bench_seconds"] = round(time.monotonic() - started, 1)
    finally:
        if server is not None:
            server.stop()
    out = args.out or ROOT / "bench" / f"results-{mode}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {out}")
    failed = [n for n in selected if results.get(n, {}).get("passed") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

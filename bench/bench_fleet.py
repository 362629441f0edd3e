"""Fleet and batch benchmarks (issue 15): fleet throughput on 1, 2, 3 servers, journal overhead.

Run: ``python bench/bench_fleet.py [--prompts 600] [--rounds 2] [--jobs 200] [--out FILE]``.
Starts three private test servers (``ComfyServer``, previews off) and stops them at the end.

1. Throughput: ``--prompts`` small prompts (EmptyImage 8x8 -> PreviewImage, a fresh colour
   each) through a :class:`~witness.backends.fleet.Fleet` of N = 1, 2, 3 servers, from
   4 x N threads (each: submit, wait). Rounds interleave the three sizes; the ratio is
   ``throughput(N) / (N x throughput(1))`` of the same round.
2. Journal overhead (the cost of durability): ``--jobs`` jobs on one server, both sides on
   the same :class:`Fleet` (one websocket, same routing), 4 worker threads each, fresh colours
   (no cache hits), ``validate=True`` on both:

   * batch: ``run_batch(workflow, jobs, out_dir=..., target=fleet)`` = load jobs, SQLite
     journal (open, bind every job with its prompt id, one synced commit; 3 transitions per
     job, group-committed), per job prepare + validate, submit with the journaled prompt id,
     wait (websocket), save the output file to ``job-NNNNN/``; then the manifest
     (``manifest.jsonl``, fsynced) and ``summary.json``, journal closed.
   * bare loop: ``ThreadPoolExecutor(4)``, per job prepare + validate, submit (a fresh
     prompt id), wait (websocket), save the output file to ``job-NNNNN/``; nothing else.

   So the difference is exactly journal + manifest + summary + resume bookkeeping.
   ``--journal-rounds`` rounds, the order alternating each round; per round overhead =
   batch wall time / loop wall time - 1; reported: median, quartiles, min/max, and the
   ratio of the summed times. The client process' CPU time per side is recorded too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.comfyui_server import ComfyServer  # noqa: E402
from witness.backends.fleet import Fleet, FleetOptions  # noqa: E402
from witness.batch import run_batch  # noqa: E402
from witness.transport.deadline import Deadline  # noqa: E402


def _prompt() -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            "_meta": {"title": "$color.color"},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


_COLOR = iter(range(1, 1 << 24))  # never the same prompt twice (no cache hits)


def _one(fleet: Fleet, workflow: dict[str, Any]) -> None:
    deadline = Deadline.after(120)
    prepared = fleet.prepare(workflow, {"color": next(_COLOR)}, deadline)
    result = fleet.submit(prepared, deadline, FleetOptions()).wait(deadline)
    if not result.ok:
        raise RuntimeError(result.msg)


def throughput(urls: list[str], prompts: int) -> float:
    """Prompts per second through a fleet of these servers."""
    workflow = _prompt()
    with Fleet(urls, validate=False) as fleet:
        for _ in range(4 * len(urls)):  # warm-up
            _one(fleet, workflow)
        start = time.perf_counter()
        with ThreadPoolExecutor(4 * len(urls)) as pool:
            list(pool.map(lambda _: _one(fleet, workflow), range(prompts)))
        return prompts / (time.perf_counter() - start)


def batch_vs_loop(url: str, jobs: int, root: Path, round_no: int) -> dict[str, float]:
    """Wall and client CPU seconds of ``run_batch`` and of the bare loop (same work)."""
    workflow = _prompt()
    base = round_no * 10 * jobs + 10_000_000
    batch_jobs = [{"color": base + i} for i in range(jobs)]
    loop_jobs = [{"color": base + jobs + i} for i in range(jobs)]
    with Fleet([url], validate=True) as fleet:
        _one(fleet, workflow)
        out = root / f"loop{round_no}"

        def batch_run() -> tuple[float, float]:
            start, cpu = time.perf_counter(), time.process_time()
            run_batch(workflow, batch_jobs, out_dir=root / f"batch{round_no}", target=fleet)
            return time.perf_counter() - start, time.process_time() - cpu

        def job(pair: tuple[int, dict[str, Any]]) -> None:
            index, params = pair
            deadline = Deadline.after(120)
            prepared = fleet.prepare(workflow, params, deadline, validate=True)
            result = fleet.submit(prepared, deadline, FleetOptions()).wait(deadline)
            if result.files:
                result.save(out / f"job-{index:05d}", overwrite=True)

        def loop_run() -> tuple[float, float]:
            start, cpu = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(job, enumerate(loop_jobs)))
            return time.perf_counter() - start, time.process_time() - cpu

        if round_no % 2 == 0:  # alternate the order: no first/second bias
            batch = batch_run()
            loop = loop_run()
        else:
            loop = loop_run()
            batch = batch_run()
    return {"batch": batch[0], "loop": loop[0], "batch_cpu": batch[1], "loop_cpu": loop[1]}


def _spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and range."""
    quart = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "q1": quart[0],
        "q3": quart[2],
        "min": min(values),
        "max": max(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--journal-rounds", type=int, default=6)
    parser.add_argument("--only", choices=["throughput", "journal"], default=None)
    parser.add_argument("--out", default=str(REPO / "bench" / "results-fleet.json"))
    args = parser.parse_args()
    count = 1 if args.only == "journal" else 3
    servers = [ComfyServer(preview_method=None) for _ in range(count)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda s: s.start(), servers))
    report: dict[str, Any] = {
        "cores": os.cpu_count(),
        "load_before": os.getloadavg(),
        "python": platform.python_version(),
        "throughput": {1: [], 2: [], 3: []},
        "journal": [],
    }
    try:
        urls = [s.url for s in servers]
        for round_no in range(args.rounds if args.only != "journal" else 0):
            sizes = [1, 2, 3] if round_no % 2 == 0 else [3, 2, 1]
            for n in sizes:
                rate = throughput(urls[:n], args.prompts)
                report["throughput"][n].append(rate)
                print(f"round {round_no} N={n}: {rate:.1f} prompts/s", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            for round_no in range(args.journal_rounds if args.only != "throughput" else 0):
                times = batch_vs_loop(urls[0], args.jobs, Path(tmp), round_no)
                report["journal"].append(times)
                print(
                    f"journal round {round_no}: batch {times['batch']:.2f} s "
                    f"(cpu {times['batch_cpu']:.2f}), loop {times['loop']:.2f} s "
                    f"(cpu {times['loop_cpu']:.2f})",
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()
    one = report["throughput"][1]
    summary: dict[Any, Any] = {}
    for n in (1, 2, 3) if one else ():
        rates = report["throughput"][n]
        ratios = [r / (n * o) for r, o in zip(rates, one, strict=True)]
        summary[n] = {"median_rate": statistics.median(rates), "ratio": statistics.median(ratios)}
    rounds = report["journal"]
    overheads = [j["batch"] / j["loop"] - 1 for j in rounds]
    report["summary"] = {
        "throughput": summary,
        "journal_overhead": statistics.median(overheads) if overheads else None,
        "journal_overhead_spread": _spread(overheads) if overheads else None,
        "journal_total_overhead": (
            sum(j["batch"] for j in rounds) / sum(j["loop"] for j in rounds) - 1
            if overheads
            else None
        ),
        "journal_cpu_overhead": (
            statistics.median(j["batch_cpu"] / j["loop_cpu"] - 1 for j in rounds)
            if overheads
            else None
        ),
        "batch_seconds": _spread([j["batch"] for j in rounds]) if overheads else None,
        "loop_seconds": _spread([j["loop"] for j in rounds]) if overheads else None,
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: convert all 126 reference templates from UI to API format.

Reads the UI workflows from the installed ``comfyui-workflow-templates==0.7.25`` packages and
the node definitions from ``tests/fixtures/uiconv``; checks every result against the reference
(so a fast wrong converter does not pass), then times ``ui_to_api`` over the whole set several
times. Prints the total of the best round and the per-template median, and writes
``bench/results-ui_convert.json``.

Run: ``python bench/bench_ui_convert.py [--rounds N]``
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from witness.core.ui_convert import ui_to_api  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "uiconv"
RESULTS = ROOT / "bench" / "results-ui_convert.json"


def _template(package_path: str) -> dict[str, Any]:
    package, _, rest = package_path.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} missing: pip install comfyui-workflow-templates==0.7.25")
    path = Path(next(iter(spec.submodule_search_locations))) / rest
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _strip(prompt: dict[str, Any]) -> dict[str, Any]:
    return {k: {kk: vv for kk, vv in v.items() if kk != "_meta"} for k, v in prompt.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with gzip.open(FIXTURES / "object_info-0.3.75.json.gz", "rt", encoding="utf-8") as fh:
        object_info = json.load(fh)
    entries = json.loads((FIXTURES / "templates.json").read_text("utf-8"))
    cases = []
    for entry in entries:
        expected = json.loads((FIXTURES / "expected" / f"{entry['name']}.api.json").read_text())
        cases.append((entry["name"], _template(entry["package_path"]), expected))

    mismatches = [n for n, wf, exp in cases if _strip(ui_to_api(wf, object_info)) != _strip(exp)]
    per_template: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    totals = []
    for _ in range(args.rounds):
        start_round = time.perf_counter()
        for name, workflow, _ in cases:
            t0 = time.perf_counter()
            ui_to_api(workflow, object_info)
            per_template[name].append(time.perf_counter() - t0)
        totals.append(time.perf_counter() - start_round)

    best = {name: min(times) for name, times in per_template.items()}
    median = statistics.median(best.values())
    slowest = max(best, key=lambda n: best[n])
    result = {
        "templates": len(cases),
        "equal_to_reference": len(cases) - len(mismatches),
        "mismatches": mismatches,
        "rounds": args.rounds,
        "total_seconds_best_round": round(min(totals), 6),
        "total_seconds_median_round": round(statistics.median(totals), 6),
        "per_template_median_ms": round(median * 1000, 4),
        "per_template_max_ms": round(best[slowest] * 1000, 4),
        "slowest_template": slowest,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(
        f"ui_to_api: {len(cases)} templates, {result['equal_to_reference']} equal to reference; "
        f"total {min(totals) * 1000:.1f} ms (best of {args.rounds}), "
        f"median {median * 1000:.3f} ms per template, max {best[slowest] * 1000:.2f} ms "
        f"({slowest})"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

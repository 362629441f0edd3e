"""Child process of the memory benchmark: download one file with ``FileClient.download_to``
and report the resident-set growth as JSON on stdout.

RSS is read from ``/proc/self/status`` by a sampling thread (every 2 ms) and, where the kernel
allows resetting it (``/proc/self/clear_refs``), from the peak counter ``VmHWM`` too.

Run: ``python bench/memprobe.py URL FILENAME SUBFOLDER TYPE DESTINATION``
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from witness.api_clients.file_client import FileClient  # noqa: E402
from witness.api_clients.types import FileRef  # noqa: E402
from witness.config.settings import Settings  # noqa: E402
from witness.transport.http import HttpClient  # noqa: E402


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def main() -> None:
    url, filename, subfolder, type_, destination = sys.argv[1:6]
    with HttpClient(Settings(api_url=url, read_timeout=120.0)) as http:
        files = FileClient(http)
        ref = FileRef(filename, subfolder, type_)
        files.exists(ref)  # warm the connection pool and every code path but the body loop
        gc.collect()
        baseline = _status_kb("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            hwm_reset = True
        except OSError:
            hwm_reset = False
        peak = baseline
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _status_kb("VmRSS"))
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        written = files.download_to(ref, destination)
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        hwm = _status_kb("VmHWM") if hwm_reset else None
    top = max(peak, hwm or 0)
    print(
        json.dumps(
            {
                "bytes": written,
                "seconds": elapsed,
                "baseline_kb": baseline,
                "peak_sampled_kb": peak,
                "peak_hwm_kb": hwm,
                "growth_mb": (top - baseline) / 1024,
            }
        )
    )
    os.unlink(destination)


if __name__ == "__main__":
    main()

"""Run a batch in a child process (the crash-resume tests SIGKILL it): prints one line per
finished job."""

from __future__ import annotations

import json
import sys

from witness.batch import BatchEvent, run_batch


def main() -> None:
    spec = json.loads(sys.argv[1])

    def report(event: BatchEvent) -> None:
        if event.kind == "done":
            print(f"done {event.index}", flush=True)

    summary = run_batch(
        spec["workflow"],
        spec["jobs"],
        out_dir=spec["out_dir"],
        target=spec["servers"],
        concurrency=spec.get("concurrency", 4),
        on_event=report,
    )
    print(f"summary {summary.completed} {summary.skipped} {summary.resumed}", flush=True)


if __name__ == "__main__":
    main()

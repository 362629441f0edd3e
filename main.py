"""witness demo: the endpoint clients and ``execute()`` end to end against a real ComfyUI.

    python main.py --sandbox            # install (first time) and start a local CPU ComfyUI
    python main.py --url http://host:8188
    python main.py                      # COMFYUI_API_URL, else http://127.0.0.1:8188

What it shows: system stats and the queue; a workflow's DSL signature and a run with params;
uploading an image and processing the uploaded file; live websocket progress; text-to-image with
the tiny local SD1.5 checkpoint and live sampler progress and previews; the history of the runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from witness import (
    ExecuteResult,
    Preview,
    ProgressUpdate,
    ServerFile,
    ServerUnavailableError,
    Settings,
    Witness,
    WitnessError,
)

EXAMPLES = Path(__file__).resolve().parent / "examples"


def banner(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def show_result(result: ExecuteResult) -> None:
    print(
        f"   status={result.status}  prompt_id={result.prompt_id}  duration={result.duration:.2f}s"
    )
    for var, urls in {**result.images_by_var, **result.videos_by_var}.items():
        for url in urls:
            print(f"   {var}: {url}")
    for var, texts in result.texts_by_var.items():
        print(f"   {var}: {texts}")
    if result.msg:
        print(f"   msg: {result.msg}")


class ProgressLine:
    """Draws a one-line progress bar from ProgressUpdate events."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.updates = 0
        self.previews = 0
        self._last: tuple[str | None, int] | None = None

    def progress(self, update: ProgressUpdate) -> None:
        self.updates += 1
        key = (update.node_id, round(update.overall * 100))
        if key == self._last:
            return
        self._last = key
        width = 30
        filled = int(update.overall * width)
        node = f"node {update.node_id} {update.value:g}/{update.max:g}" if update.node_id else ""
        sys.stdout.write(
            f"\r   {self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{update.overall * 100:5.1f}%  {node:<24}"
        )
        sys.stdout.flush()

    def preview(self, preview: Preview) -> None:
        self.previews += 1

    def done(self) -> None:
        print(f"\n   {self.updates} progress events, {self.previews} preview frames")


@contextmanager
def sandbox_server() -> Iterator[str]:
    """Install (first time) and run the project's local CPU ComfyUI for the demo."""
    from scripts.comfyui_server import ComfyServer, is_installed

    if not is_installed():
        print("Installing the local ComfyUI (first time only: ~5.5 GB, a few minutes) ...")
    server = ComfyServer()
    print("Starting a local CPU ComfyUI ...")
    server.start()
    print(f"ComfyUI is running at {server.url}")
    try:
        yield server.url
    finally:
        print("\nStopping the local ComfyUI ...")
        server.stop()


def demo(kit: Witness, out_dir: Path, *, txt2img: bool) -> None:
    banner("System")
    stats = kit.system.system_stats()
    system = stats["system"]
    print(
        f"   ComfyUI {system['comfyui_version']}, Python {system['python_version'].split()[0]}, "
        f"torch {system['pytorch_version']}"
    )
    for device in stats["devices"]:
        print(f"   device: {device['name']} ({device['type']})")
    features = kit.system.features()
    print(f"   max upload size: {features.get('max_upload_size', 0) / 2**20:.0f} MiB")
    queue = kit.queue.get()
    print(f"   queue: {len(queue.running)} running, {len(queue.pending)} pending")

    banner("A DSL workflow with params")
    signature = kit.inspect(EXAMPLES / "invert.json")
    for name, param in signature["params"].items():
        print(
            f"   param ${name}: node {param['node_ids']} field {param['field']} "
            f"default {param['default']!r}{' (required)' if param['required'] else ''}"
        )
    result = kit.execute(EXAMPLES / "invert.json", {"width": 96, "height": 64, "color": 0x3366FF})
    show_result(result.raise_for_status())
    saved = result.save(out_dir)
    print(f"   saved: {', '.join(str(p) for p in saved)}")

    banner("Upload an image and process it")
    image_bytes = saved[0].read_bytes()
    stored = kit.files.upload_image(image_bytes, filename="witness-demo.png")
    server_name = f"{stored.subfolder}/{stored.name}" if stored.subfolder else stored.name
    print(f"   uploaded as {server_name!r} (the server's name); processing that file")
    result = kit.execute(EXAMPLES / "upload_invert.json", {"image": ServerFile(server_name)})
    show_result(result.raise_for_status())
    print(f"   saved: {', '.join(str(p) for p in result.save(out_dir))}")

    banner("Live websocket progress")
    bar = ProgressLine("TestSleep")
    result = kit.execute(
        EXAMPLES / "sleep_progress.json", {"seconds": 1.5}, on_progress=bar.progress
    )
    bar.done()
    show_result(result.raise_for_status())

    if txt2img:
        banner("Text to image (tiny local SD1.5 checkpoint)")
        checkpoints = kit.system.models("checkpoints")
        if "witness-tiny-sd15.safetensors" not in checkpoints:
            print(
                "   the tiny checkpoint is not on this server; skipped "
                "(the --sandbox server has it)"
            )
        else:
            bar = ProgressLine("KSampler")
            result = kit.execute(
                EXAMPLES / "txt2img.json",
                {
                    "prompt": "a lighthouse at dawn, watercolor",
                    "width": 64,
                    "height": 64,
                    "seed": 42,
                    "steps": 6,
                },
                on_progress=bar.progress,
                on_preview=bar.preview,
            )
            bar.done()
            show_result(result.raise_for_status())
            print(f"   saved: {', '.join(str(p) for p in result.save(out_dir))}")

    banner("History")
    recent = kit.history.get_all(max_items=5)
    for prompt_id, entry in recent.items():
        outputs = sum(
            len(v) for out in entry.outputs.values() for v in out.values() if isinstance(v, list)
        )
        print(f"   {prompt_id}  {entry.status.status_str:<8} {outputs} output item(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="witness demo")
    parser.add_argument("--url", help="ComfyUI URL (default: COMFYUI_API_URL or 127.0.0.1:8188)")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="install and start the project's local CPU ComfyUI for the demo",
    )
    parser.add_argument("--out", default="output", help="where result files are saved")
    parser.add_argument("--no-txt2img", action="store_true", help="skip the text-to-image step")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)

    def run(url: str | None) -> int:
        settings = Settings.from_env(api_url=url)
        with Witness(settings=settings) as kit:
            try:
                kit.system.system_stats()
            except ServerUnavailableError:
                print(f"No ComfyUI answers at {settings.api_url}.")
                print("Start the project's local CPU ComfyUI with one of:")
                print("   python main.py --sandbox                      (starts and stops it)")
                print("   python scripts/comfyui_server.py start        (prints its URL; then")
                print("   COMFYUI_API_URL=<url> python main.py)")
                return 2
            started = time.monotonic()
            try:
                demo(kit, out_dir, txt2img=not args.no_txt2img)
            except WitnessError as exc:
                print(f"\nerror: {type(exc).__name__}: {exc}")
                return 1
            print(f"\nDone in {time.monotonic() - started:.1f} s; files are in {out_dir}/")
            return 0

    if args.sandbox:
        with sandbox_server() as url:
            return run(url)
    return run(args.url)


if __name__ == "__main__":
    sys.exit(main())

"""Live progress of a run: tqdm bars on a terminal, plain lines otherwise.

Two bars while a prompt runs: the overall one (nodes done of the nodes that run) and one for
the running node (its title, step n/m). tqdm adds elapsed time and ETA. Without tqdm
(``pip install witness[cli]``), or when the stream is not a terminal, a plain line is printed
when a node starts and at most once a second while it runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from witness.core.tracking import ProgressUpdate

__all__ = ["BatchProgress", "RunProgress", "have_tqdm"]

PLAIN_EVERY = 1.0  # seconds between plain progress lines of one node
REDRAW_EVERY = 0.1  # seconds between redraws of the bars
_OVERALL_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
_NODE_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| step {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"


def have_tqdm() -> bool:
    """Whether tqdm is installed."""
    try:
        import tqdm  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _use_bars(stream: TextIO, bars: bool | None) -> bool:
    if bars is not None:
        return bars and have_tqdm()
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and have_tqdm()


def make_bar(stream: TextIO, **kwargs: Any) -> Any:
    """A tqdm bar on ``stream`` (80x24 when the terminal reports no size)."""
    from tqdm import tqdm  # noqa: PLC0415 - optional

    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    # A terminal that reports no size (0x0) would get no bars at all from tqdm.
    size: dict[str, Any] = {"dynamic_ncols": True} if columns else {"ncols": 80, "nrows": 24}
    return tqdm(file=stream, mininterval=REDRAW_EVERY, **size, **kwargs)


def _number(value: float) -> float | int:
    rounded = round(float(value), 2)
    return int(rounded) if rounded.is_integer() else rounded


def node_label(prompt: Mapping[str, Any], node_id: str | None) -> str:
    """``Slow step (#2)``: the node's title (display text of DSL titles), else its class."""
    if node_id is None:
        return "starting"
    node = prompt.get(node_id)
    if not isinstance(node, Mapping):
        return f"node {node_id}"
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, Mapping) else None
    if isinstance(title, str):
        parts = [p.strip() for p in title.split(",") if p.strip() and not p.strip().startswith("$")]
        title = ", ".join(parts)
    return f"{title or node.get('class_type') or 'node'} (#{node_id})"


class RunProgress:
    """``on_progress`` callback drawing one prompt's progress on ``stream``.

    Args:
        stream: Where to draw (stderr).
        prompt: The submitted prompt (for node titles).
        bars: Force bars on (``True``) or off (``False``); ``None``: bars on a terminal.
    """

    def __init__(
        self, stream: TextIO, prompt: Mapping[str, Any], *, bars: bool | None = None
    ) -> None:
        self._stream = stream
        self._prompt = prompt
        self._bars = _use_bars(stream, bars)
        self._lock = threading.Lock()
        self._overall: Any = None
        self._node: Any = None
        self._node_id: str | None = None
        self._last_line = 0.0
        self._closed = False

    @property
    def bars(self) -> bool:
        """Whether tqdm bars are drawn (else plain lines)."""
        return self._bars

    def __call__(self, update: ProgressUpdate) -> None:
        with self._lock:
            if self._closed:
                return
            if self._bars:
                self._draw(update)
            else:
                self._line(update)

    def _bar(self, **kwargs: Any) -> Any:
        return make_bar(self._stream, leave=False, **kwargs)

    def _draw(self, update: ProgressUpdate) -> None:
        total = max(update.nodes_total, 1)
        if self._overall is None:
            self._overall = self._bar(total=total, bar_format=_OVERALL_FORMAT, position=0)
        now = time.monotonic()
        running = update.node_id is not None and update.max > 0 and update.overall < 1.0
        new_node = running and (update.node_id != self._node_id or self._node is None)
        if not (new_node or update.overall >= 1.0 or now - self._last_line >= REDRAW_EVERY):
            return
        self._last_line = now
        if new_node:
            if self._node is not None:
                self._node.close()
            self._node_id = update.node_id
            self._node = self._bar(
                total=_number(update.max), bar_format=_NODE_FORMAT, position=1,
                desc=node_label(self._prompt, update.node_id),
            )  # fmt: skip
        if running and self._node is not None:
            self._node.total = _number(update.max)
            self._node.n = _number(min(update.value, update.max))
            self._node.refresh()
        self._overall.total = total
        self._overall.n = round(min(update.overall, 1.0) * total, 2)
        self._overall.set_description_str(
            f"overall (nodes {update.nodes_done}/{update.nodes_total})", refresh=False
        )
        self._overall.refresh()

    def _line(self, update: ProgressUpdate) -> None:
        now = time.monotonic()
        new_node = update.node_id != self._node_id
        done = update.overall >= 1.0
        if not done and (
            update.node_id is None or not (new_node or now - self._last_line >= PLAIN_EVERY)
        ):
            return
        self._node_id = update.node_id
        self._last_line = now
        has_steps = update.max > 0 and (update.value, update.max) != (0, 1)
        step = f" step {_number(update.value)}/{_number(update.max)}" if has_steps else ""
        where = "done" if done else node_label(self._prompt, update.node_id) + step
        self._stream.write(
            f"[{update.overall * 100:3.0f}%] nodes {update.nodes_done}/{update.nodes_total}"
            f" {where}\n"
        )
        self._stream.flush()

    def close(self) -> None:
        """Remove the node bar and finish the overall one (safe to call twice)."""
        with self._lock:
            self._closed = True
            for bar in (self._node, self._overall):
                if bar is not None:
                    bar.close()
            self._node = self._overall = None


class BatchProgress:
    """A batch's overall bar (or a plain line per finished job).

    Args:
        stream: Where to draw (stderr).
        bars: As for :class:`RunProgress`.
    """

    def __init__(self, stream: TextIO, *, bars: bool | None = None) -> None:
        self._stream = stream
        self._bars = _use_bars(stream, bars)
        self._lock = threading.Lock()
        self._bar: Any = None
        self.failed = 0

    def update(self, done: int, total: int, line: str) -> None:
        """``done`` of ``total`` jobs are over; ``line`` describes the one that just ended."""
        with self._lock:
            if not self._bars:
                self._stream.write(f"[{done}/{total}] {line}\n")
                self._stream.flush()
                return
            from tqdm import tqdm  # noqa: PLC0415 - optional

            if self._bar is None:
                self._bar = tqdm(total=total, desc="batch", file=self._stream, unit="job", ncols=80)
            self._bar.total = total
            self._bar.n = done
            self._bar.set_postfix_str(f"failed {self.failed}", False)
            self._bar.refresh()

    def close(self) -> None:
        """Finish the bar (safe to call twice)."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

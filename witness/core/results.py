"""Execution results: :class:`ExecuteResult` and its assembly from a ``/history`` entry.

The history entry is the truth about a finished prompt (see ``GET /history/{prompt_id}``):
``status.status_str`` says success or error, the last message tells a failure
(``execution_error``) from an interrupt (``execution_interrupted``), and ``outputs`` holds
every node's UI output.

Classification of output files (``OutputFile.kind``), first rule that applies:

1. The file extension (see :mod:`witness.utils.media`): a video under ``images`` (core
   ``SaveVideo`` reports its ``.mp4`` there) is a video; ``.glb`` is ``3d``; ``.latent`` is
   ``latent``; ``.svg`` is an image; ``.txt``/``.json`` files are ``text`` (in ``files`` only).
2. Animations: a ``gif``/``webp``/``png``/``apng`` marked animated — by the node's
   ``animated`` flags (one per file, or one for the whole batch) or by arriving under the
   ``gifs`` key (VideoHelperSuite) — is a ``video``; a still gif is an image.
3. A MIME type the item carries (VHS's ``format``).
4. The output key: ``images`` → image, ``gifs``/``video``/``videos`` → video,
   ``audio``/``audios`` → audio, ``3d``/``meshes`` → 3d, ``latents`` → latent.
5. Otherwise ``other``. Every file-like item (a mapping with a ``filename``) is kept in
   ``files`` whatever its key; ``outputs`` keeps the raw history outputs untouched.

Files are ordered by their node's position in the submitted workflow (stable between a first
run and a cached re-run, whose history order differs), then in the server's order.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from witness.api_clients.types import HistoryEntry
from witness.core.dsl import Signature
from witness.errors import ExecutionError, InvalidArgumentError, WitnessError
from witness.utils.files import safe_filename, unique_path
from witness.utils.media import (
    ANIMATABLE_EXTENSIONS,
    extension_of,
    kind_from_extension,
    kind_from_mime,
)

__all__ = [
    "Downloader",
    "ExecuteResult",
    "FileKind",
    "NodeFailure",
    "OutputFile",
    "Status",
    "ViewUrl",
    "add_output",
    "add_text",
    "assemble",
    "classify_output_file",
    "failure_from_ws_error",
]

logger = logging.getLogger(__name__)

Status = Literal["completed", "failed", "interrupted", "timeout"]
FileKind = Literal["image", "video", "audio", "text", "3d", "latent", "other"]
FILE_KINDS: frozenset[str] = frozenset(get_args(FileKind))

_KEY_KINDS: dict[str, FileKind] = {
    "images": "image",
    "image": "image",
    "gifs": "video",
    "video": "video",
    "videos": "video",
    "audio": "audio",
    "audios": "audio",
    "3d": "3d",
    "mesh": "3d",
    "meshes": "3d",
    "latents": "latent",
    "latent": "latent",
    "text": "text",
}


@dataclass(frozen=True)
class OutputFile:
    """One file a node produced.

    Attributes:
        node_id: The node.
        var: Its ``$output`` name, else the node id.
        key: The output key it came under (``images``, ``gifs``, ``audio``, ``3d``...).
        filename: The server's file name (untrusted; see :meth:`ExecuteResult.save`).
        subfolder: The server's subfolder.
        type: ``output``, ``temp`` (previews) or ``input``.
        kind: What the file is (see the module docstring).
        url: Its ``/view`` URL.
    """

    node_id: str
    var: str
    key: str
    filename: str
    subfolder: str
    type: str
    kind: FileKind
    url: str


@dataclass(frozen=True)
class NodeFailure:
    """Where and how a prompt failed (or was interrupted).

    Attributes:
        node_id: The node that raised (or was about to run when interrupted).
        node_type: Its class.
        title: Its ``_meta.title`` in the submitted prompt.
        exception_type: The Python exception type (``None`` for an interrupt).
        exception_message: Its full message.
        traceback: Server-side traceback lines.
        executed: Nodes that had finished.
    """

    node_id: str | None
    node_type: str | None
    title: str | None
    exception_type: str | None
    exception_message: str | None
    traceback: tuple[str, ...]
    executed: tuple[str, ...]

    def where(self) -> str:
        """``node 5 (SaveImage "Result")`` — as much as is known."""
        if self.node_id is None:
            return "unknown node"
        text = f"node {self.node_id}"
        if self.node_type and self.title:
            text += f' ({self.node_type} "{self.title}")'
        elif self.node_type:
            text += f" ({self.node_type})"
        elif self.title:
            text += f' "{self.title}"'
        return text

    def summary(self) -> str:
        """A readable one-liner: ``node 5 (SaveImage "Result"): Exception: <first line>``."""
        first = ""
        for line in (self.exception_message or "").splitlines():
            if line.strip():
                first = line.strip()
                break
        what = ": ".join(p for p in (self.exception_type, first) if p)
        return f"{self.where()}: {what}" if what else self.where()


#: ``view_url(filename, subfolder, type) -> URL`` (the caller encodes it properly).
ViewUrl = Callable[[str, str, str], str]
#: ``download(file, dest) -> bytes written``; writes the file at ``dest``.
Downloader = Callable[[OutputFile, Path], int]


@dataclass
class ExecuteResult:
    """The outcome of one prompt.

    Attributes:
        status: ``completed``, ``failed``, ``interrupted`` or ``timeout``.
        prompt_id: The prompt.
        duration: Wall-clock seconds from ``started`` to assembly (client side), when known.
        execution_time: Seconds the server spent, from its history timestamps, when known.
        images: URLs of image files, in order.
        videos: URLs of video files (including animated gif/webp), in order.
        audios: URLs of audio files, in order.
        texts: Text outputs (``text`` key), in order.
        images_by_var: ``$output`` name (else node id) → image URLs; likewise the others.
        files: Every file output, including kinds without a flat list (3d, latent, other).
        outputs: The raw history outputs (every key, unknown ones included).
        msg: A readable one-liner for anything but success.
        error: The failing (or interrupted) node, when known.
    """

    status: Status
    prompt_id: str | None = None
    duration: float | None = None
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    audios: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    images_by_var: dict[str, list[str]] = field(default_factory=dict)
    videos_by_var: dict[str, list[str]] = field(default_factory=dict)
    audios_by_var: dict[str, list[str]] = field(default_factory=dict)
    texts_by_var: dict[str, list[str]] = field(default_factory=dict)
    files: list[OutputFile] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    msg: str | None = None
    error: NodeFailure | None = None
    execution_time: float | None = None
    downloader: Downloader | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """``True`` when the prompt completed."""
        return self.status == "completed"

    def raise_for_status(self) -> ExecuteResult:
        """Return ``self`` if completed, else raise :class:`~witness.errors.ExecutionError`.

        Raises:
            ExecutionError: With status, prompt id, node id/type, exception type/message and
                traceback filled in from :attr:`error`.
        """
        if self.ok:
            return self
        err = self.error
        raise ExecutionError(
            f"prompt {self.prompt_id or '?'} {self.status}: {self.msg or 'no details'}",
            prompt_id=self.prompt_id or "",
            status=self.status,
            node_id=err.node_id if err else None,
            node_type=err.node_type if err else None,
            exception_type=err.exception_type if err else None,
            exception_message=err.exception_message if err else None,
            traceback=err.traceback if err else (),
        )

    def save(
        self,
        directory: str | os.PathLike[str],
        *,
        kinds: Iterable[str] | None = None,
        overwrite: bool = False,
        texts: bool = False,
    ) -> list[Path]:
        """Download the output files into ``directory`` under safe local names.

        Server names are never trusted: directories, ``..``, drive prefixes, control and
        reserved characters and device names are stripped (see
        :func:`witness.utils.files.safe_filename`); names are flattened (subfolders dropped)
        and collisions get ``_1``, ``_2``... Each download is streamed by the executor's
        downloader (constant memory).

        Args:
            directory: Where to write (created if missing).
            kinds: Only these kinds (``image``, ``video``, ``audio``, ``text``, ``3d``,
                ``latent``, ``other``); all by default.
            overwrite: Replace existing files of the same name. Without it an existing file
                is never touched (the new one gets a numbered name). Files of one call never
                overwrite each other either way.
            texts: Also write each text output as ``<var>.txt`` (UTF-8).

        Returns:
            The written paths, files first (in :attr:`files` order), then texts.

        Raises:
            InvalidArgumentError: Unknown kind.
            WitnessError: The result has no downloader (it was not produced by an executor).
            Whatever the downloader raises (the partial file of that download is removed).
        """
        wanted: set[str] | None = None
        if kinds is not None:
            wanted = {kinds} if isinstance(kinds, str) else set(kinds)
            unknown = wanted - FILE_KINDS
            if unknown:
                raise InvalidArgumentError(
                    "kinds",
                    f"unknown kind(s) {', '.join(sorted(unknown))}; "
                    f"expected some of {', '.join(sorted(FILE_KINDS))}",
                )
        selected = [f for f in self.files if wanted is None or f.kind in wanted]
        if selected and self.downloader is None:
            raise WitnessError(
                "this result has no downloader; save() works on results returned by "
                "Witness.execute (or pass downloader= to assemble())"
            )
        base = Path(directory)
        base.mkdir(parents=True, exist_ok=True)
        taken: set[str] = set()
        written: list[Path] = []
        for item in selected:
            name = safe_filename(item.filename, default=f"{item.var}_{item.kind}")
            path = _claim(base, name, taken, overwrite=overwrite)
            try:
                assert self.downloader is not None  # noqa: S101 - checked above
                size = self.downloader(item, path)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            logger.debug("saved %s (%s bytes)", path, size)
            written.append(path)
        if texts:
            for var, values in self.texts_by_var.items():
                for index, text in enumerate(values):
                    stem = var if len(values) == 1 else f"{var}_{index + 1}"
                    path = _claim(
                        base, safe_filename(f"{stem}.txt", "text.txt"), taken, overwrite=overwrite
                    )
                    path.write_text(text, encoding="utf-8")
                    written.append(path)
        return written


def _claim(base: Path, name: str, taken: set[str], *, overwrite: bool) -> Path:
    """Reserve a name in ``base`` for one file of this save() call."""
    while True:
        if overwrite:
            path = unique_path(base, name, taken=taken) if name.casefold() in taken else base / name
            if path.is_symlink():
                path.unlink()
        else:
            path = unique_path(base, name, taken=taken)
        if path.parent != base or Path(path.name).name != path.name:  # pragma: no cover
            raise WitnessError(f"refusing to write outside {base}: {path}")
        taken.add(path.name.casefold())
        if overwrite:
            return path
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue  # somebody else took it meanwhile: try the next number
        os.close(fd)
        return path


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def classify_output_file(
    filename: str, key: str, *, animated: bool = False, mime: str | None = None
) -> FileKind:
    """The kind of one output file (rules in the module docstring)."""
    ext = extension_of(filename)
    kind = kind_from_extension(ext)
    if kind == "image" and ext in ANIMATABLE_EXTENSIONS and (animated or key == "gifs"):
        return "video"
    if kind is not None:
        return kind
    kind = kind_from_mime(mime)
    if kind is not None:
        return kind
    return _KEY_KINDS.get(key, "other")


def _title(prompt: Mapping[str, Any] | None, node_id: str | None) -> str | None:
    if not prompt or node_id is None:
        return None
    node = prompt.get(str(node_id))
    if isinstance(node, Mapping):
        meta = node.get("_meta")
        if isinstance(meta, Mapping) and isinstance(meta.get("title"), str):
            return str(meta["title"])
    return None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def failure_from_ws_error(
    data: Mapping[str, Any], prompt: Mapping[str, Any] | None = None
) -> NodeFailure:
    """A :class:`NodeFailure` from an ``execution_error`` (or ``execution_interrupted``)
    message's ``data`` — websocket or history, the shape is the same.

    Args:
        data: ``{"node_id", "node_type", "executed", "exception_type", "exception_message",
            "traceback", ...}``.
        prompt: The submitted prompt, for the node's title.
    """
    node_id = _opt_str(data.get("node_id"))
    raw_tb = data.get("traceback")
    traceback = tuple(str(x) for x in raw_tb) if isinstance(raw_tb, list | tuple) else ()
    raw_exec = data.get("executed")
    executed = tuple(str(x) for x in raw_exec) if isinstance(raw_exec, list | tuple) else ()
    return NodeFailure(
        node_id=node_id,
        node_type=_opt_str(data.get("node_type")),
        title=_title(prompt, node_id),
        exception_type=_opt_str(data.get("exception_type")),
        exception_message=_opt_str(data.get("exception_message")),
        traceback=traceback,
        executed=executed,
    )


def _execution_time(messages: list[tuple[str, Mapping[str, Any]]]) -> float | None:
    stamps: list[float] = [
        float(data["timestamp"])
        for _, data in messages
        if isinstance(data.get("timestamp"), int | float)
        and not isinstance(data["timestamp"], bool)
    ]
    if len(stamps) < 2:
        return None
    return max(0.0, (max(stamps) - min(stamps)) / 1000.0)


def _animated_flags(raw: Any, count: int) -> list[bool]:
    if isinstance(raw, bool):
        return [raw] * count
    if isinstance(raw, list | tuple) and raw:
        if len(raw) == count:
            return [bool(x) for x in raw]
        return [bool(raw[0])] * count
    return [False] * count


def _node_order(
    outputs: Mapping[str, Any],
    prompt: Mapping[str, Any] | None,
    signature: Signature | None,
) -> list[str]:
    position: dict[str, int] = {}
    if prompt:
        position = {str(k): i for i, k in enumerate(prompt)}
    elif signature is not None:
        for spec in signature.outputs:
            position.setdefault(spec.node_id, len(position))
    ids = [str(k) for k in outputs]
    history_index = {k: i for i, k in enumerate(ids)}
    return sorted(ids, key=lambda k: (k not in position, position.get(k, 0), history_index[k]))


def assemble(
    prompt_id: str | None,
    history_entry: HistoryEntry | Mapping[str, Any] | None,
    *,
    signature: Signature | None,
    prompt: Mapping[str, Any] | None,
    view_url: ViewUrl,
    started: float | None,
    status_override: Status | None = None,
    downloader: Downloader | None = None,
) -> ExecuteResult:
    """Build an :class:`ExecuteResult` from a ``GET /history/{prompt_id}`` entry.

    Args:
        prompt_id: The prompt.
        history_entry: The typed entry (:class:`~witness.api_clients.types.HistoryEntry`, as
            :class:`~witness.api_clients.history_client.HistoryClient` returns it; a raw
            ``/history`` value is parsed into one first), or ``None`` when there is none
            (then ``status_override`` is required, e.g. ``"timeout"``).
        signature: The workflow's signature, for ``$output`` names (else node ids are used).
        prompt: The submitted prompt, for node titles and output order (falls back to the
            graph stored in the entry).
        view_url: Builds a file's ``/view`` URL from ``(filename, subfolder, type)``.
        started: ``time.monotonic()`` when the call began; ``duration`` is measured from it.
        status_override: Force this status (e.g. ``"timeout"`` with partial outputs).
        downloader: Used by :meth:`ExecuteResult.save`.

    Returns:
        The result. Status: ``success`` → ``completed``; ``error`` whose last event is
        ``execution_interrupted`` → ``interrupted`` (partial outputs kept); other ``error`` →
        ``failed`` with :attr:`ExecuteResult.error` from the ``execution_error`` message.

    Raises:
        InvalidArgumentError: ``history_entry`` is ``None`` and no ``status_override`` given,
            or the entry is not a mapping.
    """
    duration = max(0.0, time.monotonic() - started) if started is not None else None
    if history_entry is None:
        if status_override is None:
            raise InvalidArgumentError(
                "history_entry", "no history entry: pass status_override (e.g. 'timeout')"
            )
        entry = HistoryEntry(prompt_id=str(prompt_id or ""), number=0)
    elif isinstance(history_entry, HistoryEntry):
        entry = history_entry
    elif isinstance(history_entry, Mapping):
        entry = HistoryEntry.from_json(str(prompt_id or ""), history_entry)
    else:
        raise InvalidArgumentError(
            "history_entry",
            f"expected a HistoryEntry or mapping, got {type(history_entry).__name__}",
        )

    if prompt is None and entry.prompt:
        prompt = entry.prompt

    messages: list[tuple[str, Mapping[str, Any]]] = list(entry.status.messages)
    final = None
    for kind, data in reversed(messages):
        if kind in {"execution_error", "execution_interrupted", "execution_success"}:
            final = (kind, data)
            break

    status: Status
    error: NodeFailure | None = None
    msg: str | None = None
    status_str = entry.status.status_str
    if final is not None and final[0] in {"execution_error", "execution_interrupted"}:
        error = failure_from_ws_error(final[1], prompt)
    if status_override is not None:
        status = status_override
    elif status_str == "success":
        status = "completed"
    elif status_str == "error":
        status = (
            "interrupted" if final is not None and final[0] == "execution_interrupted" else "failed"
        )
    elif status_str is None and entry.status.completed:
        status = "completed"
    else:
        status = "failed"
        msg = (
            f"the history entry has status {status_str!r} and no error details"
            if status_str is not None
            else "the history entry has no status"
        )

    if status == "interrupted":
        msg = f"interrupted at {error.where()}" if error else "interrupted"
    elif status == "failed" and error is not None:
        msg = error.summary()
    elif status == "failed" and msg is None:
        msg = f"the server reported status {status_str!r} without details"
    elif status == "timeout":
        msg = f"timed out waiting for prompt {prompt_id}"

    outputs: dict[str, Any] = dict(entry.outputs)
    result = ExecuteResult(
        status=status,
        prompt_id=prompt_id,
        duration=duration,
        outputs=outputs,
        msg=msg,
        error=error,
        execution_time=_execution_time(messages),
        downloader=downloader,
    )
    _collect(result, outputs, signature, prompt, view_url)
    return result


def _collect(
    result: ExecuteResult,
    outputs: Mapping[str, Any],
    signature: Signature | None,
    prompt: Mapping[str, Any] | None,
    view_url: ViewUrl,
) -> None:
    names_by_node = signature.output_names_by_node() if signature is not None else {}
    for node_id in _node_order(outputs, prompt, signature):
        node_out = outputs.get(node_id)
        if not isinstance(node_out, Mapping):
            continue
        names = names_by_node.get(node_id) or [node_id]
        for key, value in node_out.items():
            if key == "animated":
                continue
            items: list[Any]
            if isinstance(value, list | tuple):
                items = list(value)
            elif isinstance(value, Mapping | str):
                items = [value]
            else:
                continue
            flags = _animated_flags(node_out.get("animated"), len(items))
            for index, item in enumerate(items):
                if key == "text" and not isinstance(item, Mapping):
                    add_text(result, item if isinstance(item, str) else str(item), names)
                    continue
                if not isinstance(item, Mapping):
                    continue
                filename = item.get("filename")
                if not isinstance(filename, str) or not filename:
                    continue
                subfolder = item.get("subfolder")
                subfolder = subfolder if isinstance(subfolder, str) else ""
                folder_type = item.get("type")
                folder_type = (
                    folder_type if isinstance(folder_type, str) and folder_type else "output"
                )
                mime = item.get("format")
                kind = classify_output_file(
                    filename,
                    key,
                    animated=flags[index],
                    mime=mime if isinstance(mime, str) else None,
                )
                url = view_url(filename, subfolder, folder_type)
                add_output(
                    result,
                    OutputFile(
                        node_id=node_id,
                        var=names[0],
                        key=key,
                        filename=filename,
                        subfolder=subfolder,
                        type=folder_type,
                        kind=kind,
                        url=url,
                    ),
                    names,
                )


def add_output(result: ExecuteResult, item: OutputFile, names: Sequence[str]) -> None:
    """File one output under ``files`` and under the flat and per-name lists of its kind.

    Every backend builds its :class:`ExecuteResult` through this (and :func:`add_text`), so
    the per-kind lists always derive from ``files`` the same way.

    Args:
        result: The result being assembled.
        item: The file.
        names: Its ``$output`` names (else the node id); the first is ``item.var``.
    """
    result.files.append(item)
    lists = {
        "image": (result.images, result.images_by_var),
        "video": (result.videos, result.videos_by_var),
        "audio": (result.audios, result.audios_by_var),
    }
    if item.kind not in lists:
        return  # 3d, latent, text, other: kept in files only
    flat, by_var = lists[item.kind]
    flat.append(item.url)
    for name in names:
        by_var.setdefault(name, []).append(item.url)


def add_text(result: ExecuteResult, text: str, names: Sequence[str]) -> None:
    """Add one text output to ``texts`` and to ``texts_by_var`` under each of ``names``."""
    result.texts.append(text)
    for name in names:
        result.texts_by_var.setdefault(name, []).append(text)

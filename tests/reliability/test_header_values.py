"""Header values that HTTP cannot carry (issue 13 item 5): refused when the settings are built,
with a ``ConfigError`` naming the setting and never its value; a non-ASCII ``comfy-user`` id is
sent as UTF-8, which is how ComfyUI 0.3.75 (aiohttp) decodes it (``app/user_manager.py`` reads
``request.headers["comfy-user"]`` and looks the id up in ``users.json``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.conftest import ErrorCollector, leaks
from witness import Witness
from witness.config.settings import Settings
from witness.errors import ConfigError, InvalidArgumentError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KEY = "ключ-secret-" + "9f3a1c"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"api_key": KEY}, "api_key"),
        ({"api_key": "sk-abc\r\nX-Evil: 1"}, "api_key"),
        ({"cookies": {"session": KEY}}, "cookies['session']"),
        ({"headers": {"X-Api-Key": KEY}}, "headers['X-Api-Key']"),
        ({"headers": {"X-Trace": "a\nb"}}, "headers['X-Trace']"),
        ({"user": "alice\r\nX-Evil: 1"}, "user"),
    ],
)
def test_unsendable_header_values_are_config_errors(
    comfy_url: str, kwargs: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Witness(comfy_url, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert error.name == named
    assert error.value == "<hidden>"
    (value,) = kwargs.values()
    texts = [value] if isinstance(value, str) else list(value.values())  # type: ignore[attr-defined]
    assert not leaks(error, set(texts)), error


def test_bad_header_names_are_config_errors(comfy_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(api_url=comfy_url, headers={"X Bad": "v"})
    assert caught.value.name == "headers"


def test_environment_values_are_checked_and_named_by_variable(
    comfy_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYUI_API_KEY", KEY)
    with pytest.raises(ConfigError) as caught:
        Witness(comfy_url, dotenv_path=False)
    assert caught.value.name == "COMFYUI_API_KEY"
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.__dict__)


def test_non_ascii_user_reaches_the_server(
    private_server: Callable[..., object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ``--multi-user`` server whose users.json has the ids ``用户`` and ``alice_…``."""
    workdir = tmp_path / "server"
    (workdir / "user").mkdir(parents=True)
    users = {"用户": "用户", "alice_…": "alice"}
    (workdir / "user" / "users.json").write_text(json.dumps(users), "utf-8")
    server = private_server(workdir=workdir, extra_args=["--multi-user"])
    url: str = server.url  # type: ignore[attr-defined]

    monkeypatch.setenv("COMFYUI_USER", "用户")
    with Witness(url, dotenv_path=False) as kit:
        assert kit.settings.user == "用户"
        kit.users.save_userdata("hello.txt", "from 用户")
        kit.users.save_userdata("hi.txt", "from alice", user="alice_…")
        assert [e["path"] for e in kit.users.list_userdata_v2()] == ["hello.txt"]
        assert [e["path"] for e in kit.users.list_userdata_v2(user="alice_…")] == ["hi.txt"]
        kit.ws.connect(timeout=10)  # the handshake carries the header too
        with pytest.raises(InvalidArgumentError):
            kit.users.save_userdata("x.txt", "x", user="bob\r\nX-Evil: 1")
    assert (workdir / "user" / "用户" / "hello.txt").read_text("utf-8") == "from 用户"
    assert (workdir / "user" / "alice_…" / "hi.txt").read_text("utf-8") == "from alice"


def test_the_secret_walk_finds_a_key_deep_in_a_chain(
    comfy_url: str, no_secret_in_errors: ErrorCollector
) -> None:
    """The session-wide walk (conftest ``no_secret_in_errors``) is not vacuous: a secret in a
    chained third-party exception's attribute is found, and errors are being recorded."""
    inner = UnicodeEncodeError("latin-1", f"Bearer {KEY}", 7, 8, "ordinal not in range")
    outer = ConfigError("api_key", "<hidden>", "bad")
    outer.__context__ = inner
    assert "error.__context__.args[1]" in leaks(outer, {KEY})  # the .object, "Bearer <key>"
    with pytest.raises(ConfigError):
        Settings(api_url=comfy_url, api_key=KEY)
    assert any(isinstance(e, ConfigError) for e in no_secret_in_errors.errors)
    no_secret_in_errors.errors.remove(outer)  # planted on purpose

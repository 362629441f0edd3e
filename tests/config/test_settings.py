"""Settings: defaults, derivation, priority (argument > environment > .env > default), errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from witness.config.settings import Settings
from witness.errors import ConfigError


def test_defaults() -> None:
    s = Settings()
    assert s.api_url == "http://127.0.0.1:8188"
    assert s.websocket_url == "ws://127.0.0.1:8188/ws"
    assert s.timeout == (5.0, 30.0)
    assert s.retries == 3
    assert s.api_key is None
    assert s.verify is True


@pytest.mark.parametrize(
    ("api_url", "ws"),
    [
        ("http://host:8188", "ws://host:8188/ws"),
        ("https://host", "wss://host/ws"),
        ("https://host/comfy/", "wss://host/comfy/ws"),
        ("HTTP://Host:1", "ws://Host:1/ws"),
    ],
)
def test_websocket_url_is_derived(api_url: str, ws: str) -> None:
    assert Settings(api_url=api_url).websocket_url == ws


def test_explicit_ws_url_wins() -> None:
    s = Settings(api_url="http://a:1", ws_url="wss://b:2/socket")
    assert s.websocket_url == "wss://b:2/socket"


def test_trailing_slash_is_stripped() -> None:
    assert Settings(api_url="http://a:1/").api_url == "http://a:1"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"api_url": "127.0.0.1:8188"}, "api_url"),
        ({"api_url": "ftp://host"}, "api_url"),
        ({"api_url": "http://"}, "api_url"),
        ({"api_url": "http://h:99999"}, "api_url"),
        ({"api_url": "http://h?x=1"}, "api_url"),
        ({"ws_url": "http://h/ws"}, "ws_url"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"read_timeout": float("inf")}, "read_timeout"),
        ({"connect_timeout": "5"}, "connect_timeout"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retry_backoff": -0.1}, "retry_backoff"),
        ({"api_key": ""}, "api_key"),
    ],
)
def test_bad_values_name_the_setting(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(**kwargs)  # type: ignore[arg-type]
    assert info.value.name == name
    assert name in str(info.value)


def test_from_env_reads_environment() -> None:
    env = {
        "COMFYUI_API_URL": "http://example:9000",
        "COMFYUI_API_KEY": "sekrit-key",
        "COMFYUI_TIMEOUT": "12.5",
        "COMFYUI_CONNECT_TIMEOUT": "2",
        "COMFYUI_RETRIES": "5",
        "COMFYUI_USER": "alice",
        "COMFYUI_COOKIES": "a=1; b=2",
        "COMFYUI_HEADERS": "X-One: 1; X-Two: two",
        "COMFYUI_QUERY_PARAMS": "token=abc&x=y",
        "COMFYUI_VERIFY_TLS": "false",
    }
    s = Settings.from_env(environ=env)
    assert s.api_url == "http://example:9000"
    assert s.api_key == "sekrit-key"
    assert s.timeout == (2.0, 12.5)
    assert s.retries == 5
    assert s.user == "alice"
    assert dict(s.cookies) == {"a": "1", "b": "2"}
    assert dict(s.headers) == {"X-One": "1", "X-Two": "two"}
    assert dict(s.query_params) == {"token": "abc", "x": "y"}
    assert s.verify is False


def test_base_url_alias_and_api_url_precedence() -> None:
    assert Settings.from_env(environ={"COMFYUI_BASE_URL": "http://b:1"}).api_url == "http://b:1"
    both = {"COMFYUI_BASE_URL": "http://b:1", "COMFYUI_API_URL": "http://a:1"}
    assert Settings.from_env(environ=both).api_url == "http://a:1"


def test_json_cookies_and_headers() -> None:
    s = Settings.from_env(
        environ={"COMFYUI_COOKIES": '{"s": "v"}', "COMFYUI_HEADERS": '{"X-A": "b"}'}
    )
    assert dict(s.cookies) == {"s": "v"}
    assert dict(s.headers) == {"X-A": "b"}


def test_priority_argument_env_dotenv_default(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "COMFYUI_API_URL=http://from-dotenv:1\nCOMFYUI_TIMEOUT=7\nCOMFYUI_RETRIES=9\n"
    )
    env = {"COMFYUI_API_URL": "http://from-env:1", "COMFYUI_TIMEOUT": "8"}
    s = Settings.from_env(dotenv, environ=env, read_timeout=9.0)
    assert s.read_timeout == 9.0  # argument beats environment
    assert s.api_url == "http://from-env:1"  # environment beats .env
    assert s.retries == 9  # .env beats default
    assert s.connect_timeout == 5.0  # default


def test_explicit_default_value_still_beats_environment() -> None:
    # ComfyKit bug: an explicit value equal to the default could not override the env var.
    s = Settings.from_env(environ={"COMFYUI_RETRIES": "7"}, retries=3)
    assert s.retries == 3


def test_dotenv_does_not_touch_os_environ(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("WITNESS_TEST_ONLY_VAR=1\nCOMFYUI_USER=bob\n")
    assert Settings.from_env(dotenv, environ={}).user == "bob"
    assert "WITNESS_TEST_ONLY_VAR" not in os.environ


def test_missing_dotenv_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dotenv_path"):
        Settings.from_env(tmp_path / "nope.env", environ={})


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("COMFYUI_TIMEOUT", "abc", "not a number"),
        ("COMFYUI_TIMEOUT", "-3", "positive"),
        ("COMFYUI_RETRIES", "x", "whole number"),
        ("COMFYUI_API_URL", "localhost:8188", "scheme"),
        ("COMFYUI_BASE_URL", "gopher://x", "scheme"),
        ("COMFYUI_VERIFY_TLS", "maybe", "CA bundle"),
        ("COMFYUI_COOKIES", "novalue", "pairs"),
    ],
)
def test_bad_environment_value_names_the_variable(var: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ={var: value})
    assert info.value.name == var
    assert var in str(info.value)
    assert fragment in str(info.value)


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env(environ={}, api_ulr="http://x")


def test_repr_hides_secrets() -> None:
    s = Settings(
        api_key="top-secret-key",
        cookies={"session": "cookie-secret"},
        headers={"Authorization": "Bearer header-secret"},
        query_params={"token": "query-secret"},
    )
    text = repr(s)
    for secret in ("top-secret-key", "cookie-secret", "header-secret", "query-secret"):
        assert secret not in text
    assert "api_key='***'" in text
    assert {"top-secret-key", "cookie-secret", "Bearer header-secret", "query-secret"} <= set(
        s.secrets
    )


def test_settings_are_immutable() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.api_url = "http://x"  # type: ignore[misc]
    assert s.with_overrides(retries=0).retries == 0


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    """Importing witness reads no environment and no .env file, and configures no logging."""
    (tmp_path / ".env").write_text("COMFYUI_TIMEOUT=not-a-number\n")
    code = (
        "import logging, os, witness, witness.config.settings, witness.utils.http_client, "
        "witness.transport.http, witness.runninghub;"
        "assert not logging.getLogger().handlers;"
        "assert 'COMFYUI_TIMEOUT' not in os.environ;"
        "print('ok')"
    )
    clean = {k: v for k, v in os.environ.items() if k != "COMFYUI_TIMEOUT"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-c", "import witness; print(witness.Settings)"],
        cwd=tmp_path,
        env={**clean, "COMFYUI_TIMEOUT": "also-bad"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr

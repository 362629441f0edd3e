"""RunningHubSettings: validation and explicit > environment > .env > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from witness.errors import ConfigError
from witness.runninghub.settings import RunningHubSettings

KEY = "rh-secret-key-0123456789"


def test_defaults_and_redacted_repr() -> None:
    settings = RunningHubSettings(api_key=KEY)
    assert settings.base_url == "https://www.runninghub.ai"
    assert settings.timeout == 600.0
    assert settings.retry_count == 3
    assert settings.instance_type is None
    assert KEY not in repr(settings)
    assert "***" in repr(settings)


def test_explicit_beats_env_even_when_equal_to_default() -> None:
    env = {"RUNNINGHUB_API_KEY": KEY, "RUNNINGHUB_RETRY_COUNT": "7"}
    assert RunningHubSettings.from_env(environ=env).retry_count == 7
    assert RunningHubSettings.from_env(environ=env, retry_count=3).retry_count == 3
    assert RunningHubSettings.from_env(environ=env, retry_count=0).retry_count == 0


def test_env_beats_dotenv_beats_default(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "RUNNINGHUB_API_KEY=from-dotenv-key\nRUNNINGHUB_TIMEOUT=30\n"
        "RUNNINGHUB_INSTANCE_TYPE=plus\nRUNNINGHUB_BASE_URL=https://www.runninghub.cn/\n"
    )
    env = {"RUNNINGHUB_TIMEOUT": "45", "RUNNINGHUB_POLL_INTERVAL": "5"}
    settings = RunningHubSettings.from_env(dotenv, environ=env)
    assert settings.api_key == "from-dotenv-key"
    assert settings.timeout == 45.0
    assert settings.poll_interval == 5.0
    assert settings.instance_type == "plus"
    assert settings.base_url == "https://www.runninghub.cn"
    assert RunningHubSettings.from_env(dotenv, environ=env, timeout=9).timeout == 9.0


def test_missing_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="RUNNINGHUB_API_KEY"):
        RunningHubSettings.from_env(environ={"COMFYUI_API_KEY": "comfy-key"})


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"RUNNINGHUB_RETRY_COUNT": "three"}, "RUNNINGHUB_RETRY_COUNT"),
        ({"RUNNINGHUB_TIMEOUT": "0"}, "RUNNINGHUB_TIMEOUT"),
        ({"RUNNINGHUB_INSTANCE_TYPE": "huge"}, "RUNNINGHUB_INSTANCE_TYPE"),
        ({"RUNNINGHUB_BASE_URL": "ftp://x"}, "RUNNINGHUB_BASE_URL"),
    ],
)
def test_bad_env_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RunningHubSettings.from_env(environ={"RUNNINGHUB_API_KEY": KEY, **env})
    assert caught.value.name == name
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "changes",
    [
        {"timeout": None},
        {"timeout": -1},
        {"poll_interval": 0},
        {"retry_count": -1},
        {"retry_count": True},
        {"instance_type": "PLUS"},
        {"api_key": ""},
        {"retry_backoff": float("nan")},
    ],
)
def test_invalid_values_are_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RunningHubSettings(**{"api_key": KEY, **changes})  # type: ignore[arg-type]


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        RunningHubSettings.from_env(environ={"RUNNINGHUB_API_KEY": KEY}, retries=2)

"""Configuration is read once, typed, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import (
    DEFAULT_MAX_CONTENT_LENGTH,
    DEFAULT_PORT,
    PROJECT_DIR,
    ConfigError,
    load_config,
)

PORTAL = {
    "BITRIX24_WEBHOOK": "https://example.bitrix24.ru/rest/1/key",
    "BITRIX24_CLIENT_ID": "secret-client-id",
}


def test_defaults_run_in_local_mode() -> None:
    config = load_config({}, env_file=None)

    assert config.local_mode
    assert not config.webhook_configured
    assert config.port == DEFAULT_PORT == 5002
    assert config.local_bitrix24_port == 5010
    assert config.max_content_length == DEFAULT_MAX_CONTENT_LENGTH
    assert config.database_url.endswith("/data/faq_database.db")
    assert config.chroma_path == PROJECT_DIR / "data" / "chroma_db"
    assert config.similarity_threshold is None


def test_portal_settings_are_typed() -> None:
    config = load_config(
        {
            **PORTAL,
            "BITRIX24_BOT_ID": "926",
            "BITRIX24_DOMAIN": "https://Example.Bitrix24.ru/",
            "SIMILARITY_THRESHOLD": "45,5",
            "LOG_LEVEL": "debug",
        },
        env_file=None,
    )

    assert not config.local_mode
    assert config.webhook_configured
    assert config.webhook_url == "https://example.bitrix24.ru/rest/1/key/"
    assert config.bot_id == 926
    assert config.portal_domain == "example.bitrix24.ru"
    assert config.similarity_threshold == 45.5
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"BITRIX24_WEBHOOK": "https://example.bitrix24.ru/rest/1/k/"}, "CLIENT_ID"),
        ({"BITRIX24_WEBHOOK": "example.bitrix24.ru/rest"}, "BITRIX24_WEBHOOK"),
        ({"BITRIX24_HANDLER_URL": "ftp://bot.example.com/"}, "BITRIX24_HANDLER_URL"),
        ({"BITRIX24_PORT": "http"}, "BITRIX24_PORT"),
        ({"BITRIX24_PORT": "70000"}, "BITRIX24_PORT"),
        ({"BITRIX24_BOT_ID": "abc"}, "BITRIX24_BOT_ID"),
        ({"BITRIX24_BOT_ID": "0"}, "BITRIX24_BOT_ID"),
        ({"SIMILARITY_THRESHOLD": "150"}, "SIMILARITY_THRESHOLD"),
        ({"WORKER_THREADS": "0"}, "WORKER_THREADS"),
        ({"MAX_CONTENT_LENGTH": "1000"}, "MAX_CONTENT_LENGTH"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"BITRIX24_RATE_LIMIT": "fast"}, "BITRIX24_RATE_LIMIT"),
    ],
)
def test_bad_value_names_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_config(environ, env_file=None)


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "BITRIX24_PORT=6000\nLOG_LEVEL=WARNING\nBITRIX24_BOT_NAME=\n", encoding="utf-8"
    )

    config = load_config({"LOG_LEVEL": "ERROR"}, env_file=env_file)

    assert config.port == 6000
    assert config.log_level == "ERROR"
    assert config.bot_name == "FAQ-бот"


def test_env_example_lists_every_variable_and_loads() -> None:
    example = PROJECT_DIR / ".env.example"
    names = {
        line.split("=", 1)[0]
        for line in example.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }

    config = load_config({}, env_file=example)

    assert config.local_mode
    assert {
        "BITRIX24_WEBHOOK",
        "BITRIX24_CLIENT_ID",
        "BITRIX24_BOT_ID",
        "BITRIX24_HANDLER_URL",
        "BITRIX24_HOST",
        "BITRIX24_PORT",
        "BITRIX24_DOMAIN",
        "BITRIX24_MEMBER_ID",
        "MODEL_NAME",
        "SIMILARITY_THRESHOLD",
        "DATABASE_URL",
        "CHROMA_PATH",
        "LOG_LEVEL",
        "WORKER_THREADS",
        "MAX_CONTENT_LENGTH",
        "LOCAL_BITRIX24_PORT",
    } <= names


def test_with_overrides_returns_a_new_config() -> None:
    config = load_config({}, env_file=None)

    changed = config.with_overrides(port=6001)

    assert changed.port == 6001
    assert config.port == DEFAULT_PORT

"""Typed configuration read once from the environment (and `.env`).

Every front end (the Bitrix24 bot, the web admin, the command-line tools) calls
`load_config()` at start-up. A missing or malformed setting raises `ConfigError`
with the name of the variable, so a bad deployment stops before it serves anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

PROJECT_DIR = Path(__file__).resolve().parent

DEFAULT_MODEL_NAME = "multilingual-e5-small"
DEFAULT_PORT = 5002
DEFAULT_ADMIN_PORT = 5003
DEFAULT_LOCAL_BITRIX24_PORT = 5010
DEFAULT_BOT_CODE = "faq_bot"
DEFAULT_BOT_NAME = "FAQ-бот"
DEFAULT_LOCAL_CLIENT_ID = "local-faq-bot-client-id"
DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org/bot"
# a message of 20,000 cyrillic characters is about 120 kB form-encoded
DEFAULT_MAX_CONTENT_LENGTH = 512 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Config:
    """Settings of one install; built by `load_config`, never mutated."""

    webhook_url: str | None = None
    client_id: str | None = None
    bot_id: int | None = None
    handler_url: str | None = None
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    portal_domain: str | None = None
    member_id: str | None = None
    bot_code: str = DEFAULT_BOT_CODE
    bot_name: str = DEFAULT_BOT_NAME
    rest_rate_per_second: float = 2.0
    rest_burst: int = 50
    model_name: str = DEFAULT_MODEL_NAME
    similarity_threshold: float | None = None
    embedding_threads: int = 1
    data_dir: Path = PROJECT_DIR / "data"
    database_url: str = ""
    chroma_path: Path = PROJECT_DIR / "data" / "chroma_db"
    chroma_host: str | None = None
    chroma_port: int = 8000
    log_level: str = "INFO"
    worker_threads: int = 2
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    local_bitrix24_port: int = DEFAULT_LOCAL_BITRIX24_PORT
    admin_host: str = "127.0.0.1"
    admin_port: int = DEFAULT_ADMIN_PORT
    admin_secret_key: str | None = None
    admin_cookie_secure: bool = False
    telegram_bot_token: str | None = None
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    # set by b24_bot when it started the local Bitrix24 in place of a portal
    local_bitrix24: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def local_mode(self) -> bool:
        """True when no portal is configured and the local Bitrix24 stands in."""
        return self.webhook_url is None

    @property
    def webhook_configured(self) -> bool:
        return self.webhook_url is not None and self.client_id is not None

    def with_overrides(self, **changes: object) -> Config:
        return replace(self, **changes)


def load_config(
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = PROJECT_DIR / ".env",
) -> Config:
    """Build the configuration from `environ` (default: os.environ) over `.env`.

    Real environment variables win over the file, as python-dotenv does by default.
    """
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(
            {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        )
    values.update(os.environ if environ is None else environ)
    reader = _Reader(values)

    data_dir = reader.path("DATA_DIR", PROJECT_DIR / "data")
    webhook_url = reader.url("BITRIX24_WEBHOOK")
    client_id = reader.text("BITRIX24_CLIENT_ID")
    if webhook_url is not None and client_id is None:
        raise ConfigError(
            "BITRIX24_CLIENT_ID is required when BITRIX24_WEBHOOK is set: every "
            "imbot.* call through an incoming webhook must carry it"
        )

    config = Config(
        webhook_url=webhook_url.rstrip("/") + "/" if webhook_url else None,
        client_id=client_id,
        bot_id=reader.integer("BITRIX24_BOT_ID", None, minimum=1),
        handler_url=reader.url("BITRIX24_HANDLER_URL"),
        host=reader.text("BITRIX24_HOST") or "0.0.0.0",
        port=reader.port("BITRIX24_PORT", DEFAULT_PORT),
        portal_domain=_bare_domain(reader.text("BITRIX24_DOMAIN")),
        member_id=reader.text("BITRIX24_MEMBER_ID"),
        bot_code=reader.text("BITRIX24_BOT_CODE") or DEFAULT_BOT_CODE,
        bot_name=reader.text("BITRIX24_BOT_NAME") or DEFAULT_BOT_NAME,
        rest_rate_per_second=reader.number("BITRIX24_RATE_LIMIT", 2.0, 0.1, 1000),
        rest_burst=reader.integer("BITRIX24_RATE_BURST", 50, minimum=1),
        model_name=reader.text("MODEL_NAME") or DEFAULT_MODEL_NAME,
        similarity_threshold=reader.number("SIMILARITY_THRESHOLD", None, 0, 100),
        embedding_threads=reader.integer("EMBEDDING_THREADS", 1, minimum=1),
        data_dir=data_dir,
        database_url=reader.text("DATABASE_URL")
        or f"sqlite:///{data_dir / 'faq_database.db'}",
        chroma_path=reader.path("CHROMA_PATH", data_dir / "chroma_db"),
        chroma_host=reader.text("CHROMA_HOST"),
        chroma_port=reader.port("CHROMA_PORT", 8000),
        log_level=reader.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
        worker_threads=reader.integer("WORKER_THREADS", 2, minimum=1),
        max_content_length=reader.integer(
            "MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH, minimum=64 * 1024
        ),
        local_bitrix24_port=reader.port(
            "LOCAL_BITRIX24_PORT", DEFAULT_LOCAL_BITRIX24_PORT
        ),
        admin_host=reader.text("ADMIN_HOST") or "127.0.0.1",
        admin_port=reader.port("ADMIN_PORT", DEFAULT_ADMIN_PORT),
        admin_secret_key=reader.text("ADMIN_SECRET_KEY"),
        admin_cookie_secure=reader.flag("ADMIN_COOKIE_SECURE", False),
        telegram_bot_token=reader.text("TELEGRAM_BOT_TOKEN"),
        telegram_api_url=reader.url("TELEGRAM_API_URL") or DEFAULT_TELEGRAM_API_URL,
        extra={k: v for k, v in values.items() if k.startswith("TELEGRAM_")},
    )
    return config


def _bare_domain(value: str | None) -> str | None:
    if value is None:
        return None
    if "://" in value:
        value = urlsplit(value).netloc
    return value.strip("/").lower() or None


class _Reader:
    """Reads typed values and names the variable in every error."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def text(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def integer(self, name: str, default: int | None, minimum: int) -> int | None:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def number(
        self, name: str, default: float | None, low: float, high: float
    ) -> float | None:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw.replace(",", "."))
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw}")
        return value

    def port(self, name: str, default: int) -> int:
        value = self.integer(name, default, minimum=1)
        assert value is not None
        if value > 65535:
            raise ConfigError(f"{name} must be a TCP port (1-65535), got {value}")
        return value

    def url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{name} must be an http(s) URL, got {raw!r}")
        return raw

    def path(self, name: str, default: Path) -> Path:
        raw = self.text(name)
        if raw is None:
            return default
        path = Path(raw).expanduser()
        return path if path.is_absolute() else PROJECT_DIR / path

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        value = raw.lower()
        if value in ("1", "true", "yes", "on", "y"):
            return True
        if value in ("0", "false", "no", "off", "n"):
            return False
        raise ConfigError(f"{name} must be yes or no (true/false, 1/0), got {raw!r}")

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.upper() not in allowed:
            raise ConfigError(
                f"{name} must be one of {', '.join(allowed)}, got {raw!r}"
            )
        return raw.upper()

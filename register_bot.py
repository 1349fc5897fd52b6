"""Register the FAQ bot and its commands on a Bitrix24 portal.

    python register_bot.py

Reads BITRIX24_WEBHOOK, BITRIX24_CLIENT_ID and BITRIX24_HANDLER_URL from the
environment or `.env`, registers the bot with `imbot.register`, prints the BOT_ID
to put in `.env`, then registers every command of the bot's command table. Safe to
run again: the platform returns the existing bot for the same CODE and the
existing command for the same bot and command name.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from b24_api import Bitrix24API, Bitrix24Error, portal_limiter
from b24_conversation import COMMANDS
from config import PROJECT_DIR, Config, ConfigError, load_config
from logging_config import configure_root_logger

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    bot_id: int | None
    command_ids: dict[str, int]


def register_commands(api: Bitrix24API, handler_url: str) -> dict[str, int]:
    """Register every command of the table; return their ids by name."""
    command_ids = {}
    for command in COMMANDS:
        command_ids[command.name.value] = api.register_command(
            command.name.value,
            command.title_ru,
            handler_url,
            hidden=command.hidden,
            title_en=command.title_en,
        )
    logger.info(
        "bitrix24 commands registered for bot %s: %s",
        api.bot_id,
        ", ".join(f"{name}={cid}" for name, cid in command_ids.items()),
    )
    return command_ids


def ensure_registered(api: Bitrix24API, config: Config) -> Registration:
    """Make sure the bot and its commands exist; idempotent, run on every start.

    With BITRIX24_BOT_ID set the bot is taken as registered (by this script);
    without it the bot is registered by its code, which returns the existing
    bot when there is one.
    """
    handler_url = require_handler_url(config)
    if config.bot_id is not None:
        api.bot_id = config.bot_id
    else:
        api.register_bot(config.bot_code, config.bot_name, handler_url)
    return Registration(api.bot_id, register_commands(api, handler_url))


def require_handler_url(config: Config) -> str:
    if config.handler_url is None:
        raise ConfigError(
            "BITRIX24_HANDLER_URL is required: the public https address of "
            "/webhook/bitrix24 that Bitrix24 posts events to"
        )
    return config.handler_url


def make_api(config: Config) -> Bitrix24API:
    """The REST client for the configured portal, paced by the portal's limiter."""
    if config.webhook_url is None or config.client_id is None:
        raise ConfigError(
            "BITRIX24_WEBHOOK and BITRIX24_CLIENT_ID are required to talk to a "
            "portal; without them `python b24_bot.py` runs a local Bitrix24"
        )
    limiter = portal_limiter(
        config.webhook_url, config.rest_rate_per_second, config.rest_burst
    )
    return Bitrix24API(
        config.webhook_url,
        config.client_id,
        bot_id=config.bot_id,
        rate_limiter=limiter,
    )


def main(
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = PROJECT_DIR / ".env",
) -> int:
    try:
        config = load_config(environ, env_file)
        configure_root_logger(config.log_level)
        api = make_api(config)
        handler_url = require_handler_url(config)
    except ConfigError as exc:
        print(f"register_bot.py: {exc}", file=sys.stderr)
        return 2

    try:
        bot_id = api.register_bot(config.bot_code, config.bot_name, handler_url)
        command_ids = register_commands(api, handler_url)
    except Bitrix24Error as exc:
        print(f"register_bot.py: Bitrix24 refused: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()

    print(f"Bot {config.bot_code!r} is registered with BOT_ID {bot_id}.")
    print(f"Commands: {', '.join(sorted(command_ids))}.")
    if config.bot_id != bot_id:
        print(f"Put this line in .env:\n\nBITRIX24_BOT_ID={bot_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python register_bot.py`: registers the bot and its commands, safely twice."""

from __future__ import annotations

import pytest

import register_bot
from b24_conversation import COMMANDS


@pytest.fixture
def portal_env(emulator) -> dict[str, str]:
    return {
        "BITRIX24_WEBHOOK": emulator.webhook_url,
        "BITRIX24_CLIENT_ID": emulator.client_id,
        "BITRIX24_HANDLER_URL": "https://faq-bot.example.ru/webhook/bitrix24",
    }


def test_registers_the_bot_and_prints_its_id(portal_env, emulator, capsys) -> None:
    assert register_bot.main(portal_env, env_file=None) == 0

    (bot,) = emulator.bots
    out = capsys.readouterr().out
    assert f"BITRIX24_BOT_ID={bot.bot_id}" in out
    assert {c.command for c in emulator.commands} == {c.name.value for c in COMMANDS}
    assert all(
        c.handler_url.startswith(
            "https://faq-bot.example.ru/webhook/bitrix24?CLIENT_ID="
        )
        for c in emulator.commands
    )


def test_running_it_again_registers_nothing_new(portal_env, emulator, capsys) -> None:
    register_bot.main(portal_env, env_file=None)
    commands = {c.command: c.command_id for c in emulator.commands}
    bot_id = emulator.bots[0].bot_id
    capsys.readouterr()

    code = register_bot.main(
        {**portal_env, "BITRIX24_BOT_ID": str(bot_id)}, env_file=None
    )

    assert code == 0
    assert [b.bot_id for b in emulator.bots] == [bot_id]
    assert {c.command: c.command_id for c in emulator.commands} == commands
    assert "Put this line" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("BITRIX24_WEBHOOK", "BITRIX24_WEBHOOK"),
        ("BITRIX24_CLIENT_ID", "BITRIX24_CLIENT_ID"),
        ("BITRIX24_HANDLER_URL", "BITRIX24_HANDLER_URL"),
    ],
)
def test_a_missing_setting_is_named(portal_env, capsys, missing, variable) -> None:
    environ = {k: v for k, v in portal_env.items() if k != missing}

    assert register_bot.main(environ, env_file=None) == 2
    assert variable in capsys.readouterr().err


def test_a_refusal_of_the_platform_is_reported(portal_env, capsys) -> None:
    environ = {**portal_env, "BITRIX24_HANDLER_URL": "http://localhost:5002/webhook"}

    assert register_bot.main(environ, env_file=None) == 1
    assert "Wrong handler URL" in capsys.readouterr().err

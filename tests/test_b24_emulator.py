"""The emulator follows the platform: transport, check order, events, records."""

from __future__ import annotations

import builtins
import json
import threading
import time
from urllib.parse import urlencode

import pytest
import requests

from b24_emulator import (
    Bitrix24Emulator,
    EmulatorError,
    handler_url_problem,
    main,
    render_bbcode,
    render_keyboard,
)
from b24_event import flatten_php

HANDLER = "https://bot.example.com/hook"
BOT = {"CODE": "faqbot", "EVENT_HANDLER": HANDLER, "PROPERTIES": {"NAME": "FAQ бот"}}
RATING_KEYBOARD = [
    {"TEXT": "Полезно", "COMMAND": "helpful_yes", "COMMAND_PARAMS": "47", "BLOCK": "Y"},
    {"TYPE": "NEWLINE"},
    {"TEXT": "Не помогло", "COMMAND": "helpful_no", "COMMAND_PARAMS": "47"},
]


def rest(emulator, method, params=None, *, form=False, client_id=None):
    """POST one REST call the way a bare HTTP client would."""
    params = dict(params or {})
    if client_id is not False:
        default = emulator.client_id if client_id is None else client_id
        params.setdefault("CLIENT_ID", default)
    url = emulator.webhook_url + method
    if form:
        body = urlencode(flatten_php(params))
        return requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=5,
        )
    return requests.post(url, json=params, timeout=5)


def error_of(response):
    body = response.json()
    return response.status_code, body["error"], body["error_description"]


def register(emulator, **overrides):
    response = rest(emulator, "imbot.register", {**BOT, **overrides})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def register_command(emulator, bot_id, command="helpful_yes", handler=HANDLER):
    params = {
        "BOT_ID": bot_id,
        "COMMAND": command,
        "EVENT_COMMAND_ADD": handler,
        "HIDDEN": "Y",
        "LANG": [{"LANGUAGE_ID": "ru", "TITLE": "Полезно", "PARAMS": ""}],
    }
    response = rest(emulator, "imbot.command.register", params)
    assert response.status_code == 200, response.text
    return response.json()["result"]


# transport


def test_success_reply_carries_result_and_time(emulator):
    response = rest(emulator, "imbot.bot.list")

    body = response.json()
    assert response.status_code == 200
    assert body["result"] == {}
    assert set(body["time"]) == {
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
        "operating_reset_at",
        "operating",
    }


@pytest.mark.parametrize(
    "method", ["imbot.register", "IMBOT.REGISTER.json", "imbot.Register.json"]
)
def test_method_names_are_case_insensitive_with_optional_json_suffix(emulator, method):
    response = rest(emulator, method, BOT)

    assert response.status_code == 200
    assert emulator.calls[-1].method == "imbot.register"


def test_form_bodies_with_php_brackets_and_lower_case_keys(emulator):
    params = {
        "code": "faqbot",
        "event_handler": HANDLER,
        "properties": {"NAME": "FAQ бот"},
        "client_id": emulator.client_id,
    }

    response = rest(emulator, "imbot.register", params, form=True, client_id=False)

    assert response.status_code == 200, response.text
    assert emulator.bots[0].name == "FAQ бот"


def test_nested_keys_are_not_upper_cased(emulator):
    params = {**BOT, "PROPERTIES": {"name": "FAQ бот"}}

    response = rest(emulator, "imbot.register", params)

    assert error_of(response) == (400, "NAME_ERROR", "Bot name isn't specified")


def test_wrong_webhook_key_and_unknown_method(emulator):
    wrong = requests.post(
        emulator.base_url + "/rest/1/wrong/imbot.bot.list", json={}, timeout=5
    )
    wrong_user = requests.post(
        emulator.base_url + f"/rest/2/{emulator.webhook_key}/imbot.bot.list",
        json={},
        timeout=5,
    )
    unknown = rest(emulator, "imbot.chat.setTyping", {"DIALOG_ID": "1"})

    assert error_of(wrong) == (401, "NO_AUTH_FOUND", "Wrong authorization data")
    assert error_of(wrong_user)[1] == "NO_AUTH_FOUND"
    assert error_of(unknown) == (404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
    assert set(unknown.json()) == {"error", "error_description"}


# imbot.register


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"CLIENT_ID": "", "CODE": ""},
            (403, "ACCESS_DENIED", "Access denied! Client ID not specified"),
        ),
        (
            {"CODE": ""},
            (
                400,
                "EVENT_MESSAGE_ADD_ERROR",
                'Handler for "Message add" event isn\'t specified',
            ),
        ),
        (
            {"EVENT_HANDLER": "http://localhost:5002/hook"},
            (400, "EVENT_MESSAGE_ADD_ERROR", "Wrong handler URL"),
        ),
        (
            {"EVENT_HANDLER": "ftp://bot.example.com/hook"},
            (400, "EVENT_MESSAGE_ADD_ERROR", "Unsupported handler protocol"),
        ),
        (
            {"EVENT_MESSAGE_ADD": HANDLER, "EVENT_MESSAGE_UPDATE": "nope"},
            (400, "EVENT_MESSAGE_UPDATE_ERROR", "Wrong handler URL"),
        ),
        (
            {"EVENT_MESSAGE_ADD": HANDLER, "EVENT_MESSAGE_DELETE": "nope"},
            (400, "EVENT_MESSAGE_DELETE_ERROR", "Wrong handler URL"),
        ),
        (
            {"EVENT_MESSAGE_ADD": HANDLER},
            (
                400,
                "EVENT_WELCOME_MESSAGE_ERROR",
                'Handler for "Welcome message" event isn\'t specified',
            ),
        ),
        (
            {"EVENT_MESSAGE_ADD": HANDLER, "EVENT_WELCOME_MESSAGE": HANDLER},
            (
                400,
                "EVENT_BOT_DELETE_ERROR",
                'Handler for "Bot delete" event isn\'t specified',
            ),
        ),
        (
            {"EVENT_HANDLER": HANDLER},
            (400, "CODE_ERROR", "Bot code isn't specified"),
        ),
        (
            {"EVENT_HANDLER": HANDLER, "CODE": "x", "PROPERTIES": {}},
            (400, "NAME_ERROR", "Bot name isn't specified"),
        ),
    ],
)
def test_register_checks_in_platform_order(emulator, params, expected):
    response = rest(emulator, "imbot.register", params)

    assert error_of(response) == expected


def test_register_is_idempotent_and_stores_urls_with_client_id(emulator):
    first = register(emulator, EVENT_HANDLER=HANDLER + "?a=1")
    second = register(emulator)

    [bot] = emulator.bots
    assert first == second == bot.bot_id
    assert (
        bot.handlers["EVENT_MESSAGE_ADD"]
        == f"{HANDLER}?a=1&CLIENT_ID=faqbot-local-client"
    )
    # a TYPE=B bot never gets message update/delete handlers
    assert set(bot.handlers) == {
        "EVENT_MESSAGE_ADD",
        "EVENT_WELCOME_MESSAGE",
        "EVENT_BOT_DELETE",
    }


def test_supervisor_bots_keep_update_handlers(emulator):
    register(emulator, TYPE="S")

    assert "EVENT_MESSAGE_UPDATE" in emulator.bots[0].handlers


def test_sixth_bot_for_one_application_is_refused(emulator):
    for n in range(5):
        register(emulator, CODE=f"bot{n}")

    response = rest(emulator, "imbot.register", {**BOT, "CODE": "bot5"})

    assert error_of(response) == (
        400,
        "MAX_COUNT_ERROR",
        "Has reached the maximum number of bots for application (max: 5)",
    )


def test_unregister_and_bot_list(emulator):
    bot_id = register(emulator)

    listed = rest(emulator, "imbot.bot.list").json()["result"]
    other = rest(emulator, "imbot.unregister", {"BOT_ID": bot_id}, client_id="other")
    removed = rest(emulator, "imbot.unregister", {"BOT_ID": bot_id})

    assert listed[str(bot_id)]["CODE"] == "faqbot"
    assert error_of(other)[1] == "APP_ID_ERROR"
    assert removed.json()["result"] is True
    assert emulator.bots == []


# imbot.message.add and friends


@pytest.mark.parametrize(
    ("params", "client_id", "expected"),
    [
        ({}, "", (403, "ACCESS_DENIED", "Access denied! Client ID not specified")),
        ({"BOT_ID": 1}, None, (400, "BOT_ID_ERROR", "Bot not found")),
        ({}, "other", (400, "BOT_ID_ERROR", "Bot not found")),
        (
            {"DIALOG_ID": "0"},
            None,
            (400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty"),
        ),
        (
            {"DIALOG_ID": "chat"},
            None,
            (400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty"),
        ),
        ({"DIALOG_ID": "405"}, None, (400, "MESSAGE_EMPTY", "Message can't be empty")),
        (
            {"DIALOG_ID": "405", "MESSAGE": " ", "ATTACH": [{"MESSAGE": "x"}]},
            None,
            (400, "MESSAGE_EMPTY", "Message can't be empty"),
        ),
        (
            {"DIALOG_ID": "405", "MESSAGE": "x", "ATTACH": [{"LINK": {"LINK": "#"}}]},
            None,
            (400, "ATTACH_ERROR", "Incorrect attach params"),
        ),
        (
            {"DIALOG_ID": "405", "MESSAGE": "x", "KEYBOARD": [[RATING_KEYBOARD[0]]]},
            None,
            (400, "KEYBOARD_ERROR", "Incorrect keyboard params"),
        ),
        (
            {"DIALOG_ID": "405", "MESSAGE": "x", "KEYBOARD": "{not json"},
            None,
            (400, "KEYBOARD_ERROR", "Incorrect keyboard params"),
        ),
        (
            {"DIALOG_ID": "405", "MESSAGE": "x", "MENU": [{"TEXT": "no action"}]},
            None,
            (400, "MENU_ERROR", "Incorrect menu params"),
        ),
    ],
)
def test_message_add_checks_in_platform_order(emulator, params, client_id, expected):
    register(emulator)

    response = rest(emulator, "imbot.message.add", params, client_id=client_id)

    assert error_of(response) == expected


def test_message_add_with_another_apps_bot_is_app_id_error(emulator):
    bot_id = register(emulator)

    response = rest(
        emulator,
        "imbot.message.add",
        {"BOT_ID": bot_id, "DIALOG_ID": "1", "MESSAGE": "x"},
        client_id="other",
    )

    assert error_of(response) == (
        400,
        "APP_ID_ERROR",
        "Bot was installed by another rest application",
    )


def test_keyboard_rules_drop_invalid_buttons_and_keep_newlines(emulator):
    register(emulator)
    keyboard = {
        "BUTTONS": [
            {"TEXT": "Сайт", "LINK": "https://example.com"},
            {"TEXT": "Плохая ссылка", "LINK": "javascript:alert(1)"},
            {"TYPE": "NEWLINE"},
            {"TEXT": "", "COMMAND": "x"},
            {"TEXT": "Команда", "COMMAND": "/helpful_yes", "BG_COLOR": "red"},
            {"TEXT": "Отправить", "ACTION": "SEND", "ACTION_VALUE": "привет"},
        ]
    }

    response = rest(
        emulator,
        "imbot.message.add",
        {"DIALOG_ID": "405", "MESSAGE": "x", "KEYBOARD": json.dumps(keyboard)},
    )

    [message] = emulator.messages("405")
    assert response.status_code == 200
    assert [b.get("TEXT", b.get("TYPE")) for b in message.keyboard] == [
        "Сайт",
        "NEWLINE",
        "Команда",
        "Отправить",
    ]
    assert message.keyboard[2]["COMMAND"] == "helpful_yes"
    assert "BG_COLOR" not in message.keyboard[2]


def test_keyboard_sent_as_a_form_body_is_read_like_json(emulator):
    register(emulator)

    response = rest(
        emulator,
        "imbot.message.add",
        {"DIALOG_ID": "405", "MESSAGE": "x", "KEYBOARD": RATING_KEYBOARD},
        form=True,
    )

    assert response.status_code == 200, response.text
    assert len(emulator.messages("405")[0].buttons) == 2


def test_long_text_is_truncated_like_the_platform(emulator):
    register(emulator)

    rest(emulator, "imbot.message.add", {"DIALOG_ID": "405", "MESSAGE": "я" * 20_050})

    [message] = emulator.messages("405")
    assert message.text == "я" * 20_000 + " (...)"


def test_system_message_between_users(emulator):
    register(emulator)

    params = {"FROM_USER_ID": 1, "TO_USER_ID": 405, "MESSAGE": "системное"}
    rest(emulator, "imbot.message.add", params)

    [message] = emulator.messages("405")
    assert message.system and message.author_id == 1


def test_message_update_and_delete(emulator):
    bot_id = register(emulator)
    message_id = rest(
        emulator,
        "imbot.message.add",
        {"DIALOG_ID": "405", "MESSAGE": "x", "KEYBOARD": RATING_KEYBOARD},
    ).json()["result"]

    empty_id = rest(emulator, "imbot.message.update", {"MESSAGE_ID": 0})
    too_big = rest(
        emulator,
        "imbot.message.update",
        {
            "MESSAGE_ID": message_id,
            "KEYBOARD": [{"TEXT": "я" * 70_000, "COMMAND": "x"}],
        },
    )
    edit = rest(
        emulator,
        "imbot.message.update",
        {"BOT_ID": bot_id, "MESSAGE_ID": message_id, "MESSAGE": "y", "KEYBOARD": "N"},
    )
    delete = rest(
        emulator, "imbot.message.update", {"MESSAGE_ID": message_id, "MESSAGE": ""}
    )
    again = rest(emulator, "imbot.message.delete", {"MESSAGE_ID": message_id})

    assert error_of(empty_id) == (400, "MESSAGE_ID_ERROR", "Message ID can't be empty")
    assert error_of(too_big)[1] == "KEYBOARD_OVERSIZE"
    assert edit.json()["result"] is True
    assert delete.json()["result"] is True
    assert error_of(again) == (
        403,
        "CANT_EDIT_MESSAGE",
        "Time has expired for modification or you don't have access",
    )
    [message] = emulator.messages("405", include_deleted=True)
    assert (message.text, message.keyboard, message.deleted) == ("y", None, True)


def test_send_typing_and_its_alias(emulator):
    register(emulator)

    typing = rest(emulator, "imbot.chat.sendTyping", {"DIALOG_ID": "chat7"})
    alias = rest(emulator, "imbot.sendTyping", {"DIALOG_ID": "405"})
    empty = rest(emulator, "imbot.chat.sendTyping", {})

    assert typing.json()["result"] is True and alias.json()["result"] is True
    assert error_of(empty) == (400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    assert [event.dialog_id for event in emulator.typing_events] == ["chat7", "405"]


# commands


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"CLIENT_ID": ""},
            (403, "ACCESS_DENIED", "Access denied! Client ID not specified"),
        ),
        (
            {},
            (
                400,
                "EVENT_COMMAND_ADD_ERROR",
                'Handler for "Command add" event isn\'t specified',
            ),
        ),
        (
            {"EVENT_COMMAND_ADD": "http://localhost/x"},
            (400, "EVENT_COMMAND_ADD_ERROR", "Wrong handler URL"),
        ),
        (
            {"EVENT_COMMAND_ADD": HANDLER},
            (400, "COMMAND_ERROR", "Command isn't specified"),
        ),
        (
            {"EVENT_COMMAND_ADD": HANDLER, "COMMAND": "x", "BOT_ID": "abc"},
            (400, "BOT_ID_ERROR", "Bot not found"),
        ),
        (
            {"EVENT_COMMAND_ADD": HANDLER, "COMMAND": "x", "BOT_ID": "{bot}"},
            (400, "LANG_ERROR", "Lang set can't be empty"),
        ),
    ],
)
def test_command_register_checks_in_platform_order(emulator, params, expected):
    bot_id = register(emulator)
    params = {k: str(bot_id) if v == "{bot}" else v for k, v in params.items()}

    response = rest(emulator, "imbot.command.register", params)

    assert error_of(response) == expected


def test_command_register_is_idempotent_per_bot_and_command(emulator):
    bot_id = register(emulator)

    first = register_command(emulator, bot_id, "/helpful_yes")
    second = register_command(emulator, bot_id, "helpful_yes")

    assert first == second
    assert emulator.commands[0].command == "helpful_yes"


def test_command_answer_checks_and_posts_a_new_message(emulator):
    bot_id = register(emulator)
    command_id = register_command(emulator, bot_id)
    emulator.add_user(405, "Иван", "Петров")
    keyboard_message = rest(
        emulator, "imbot.message.add", {"DIALOG_ID": "405", "MESSAGE": "Ответ"}
    ).json()["result"]

    unknown = rest(emulator, "imbot.command.answer", {"COMMAND_ID": 999})
    foreign = rest(
        emulator, "imbot.command.answer", {"COMMAND_ID": command_id}, client_id="other"
    )
    no_message = rest(emulator, "imbot.command.answer", {"COMMAND": "helpful_yes"})
    no_command = rest(
        emulator,
        "imbot.command.answer",
        {"MESSAGE_ID": keyboard_message, "MESSAGE": "x"},
    )
    answer = rest(
        emulator,
        "imbot.command.answer",
        {
            "COMMAND_ID": command_id,
            "MESSAGE_ID": keyboard_message,
            "MESSAGE": "Спасибо",
        },
    )

    assert error_of(unknown) == (400, "COMMAND_ID_ERROR", "Command not found")
    assert error_of(foreign) == (
        400,
        "APP_ID_ERROR",
        "Command was installed by another rest application",
    )
    assert error_of(no_message) == (
        400,
        "MESSAGE_ID_EMPTY",
        "Message ID can't be empty",
    )
    assert error_of(no_command) == (400, "WRONG_REQUEST", "Message isn't added")
    assert [m.text for m in emulator.messages("405")] == ["Ответ", "Спасибо"]
    assert answer.json()["result"] == emulator.messages("405")[-1].message_id


# batch


def test_batch_runs_sub_calls_and_refuses_nested_batch(emulator):
    register(emulator)
    client_id = emulator.client_id
    commands = {
        "add": f"imbot.message.add?CLIENT_ID={client_id}&DIALOG_ID=405&MESSAGE=hi",
        "bad": f"imbot.message.add?CLIENT_ID={client_id}&DIALOG_ID=405",
        "nested": "batch?cmd[x]=imbot.bot.list",
    }

    body = rest(emulator, "batch", {"cmd": commands, "halt": 0}).json()["result"]

    assert set(body["result"]) == {"add"}
    assert body["result_error"]["bad"]["error"] == "MESSAGE_EMPTY"
    assert body["result_error"]["nested"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


# rate limit and faults


def test_leaky_bucket_answers_503_when_full(emulator):
    emulator.set_rate_limit(True, drain_rate=1.0, capacity=3)

    statuses = [rest(emulator, "imbot.bot.list").status_code for _ in range(4)]
    last = rest(emulator, "imbot.bot.list")

    assert statuses == [200, 200, 200, 503]
    assert error_of(last) == (503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
    emulator.set_rate_limit(False)
    assert rest(emulator, "imbot.bot.list").status_code == 200


def test_fault_injection_fail_slow_and_drop(emulator):
    emulator.fail_next(1)
    failed = rest(emulator, "imbot.bot.list")
    emulator.slow_next(1, delay=0.3)
    started = time.monotonic()
    slow = rest(emulator, "imbot.bot.list")
    elapsed = time.monotonic() - started
    emulator.drop_next(1)

    with pytest.raises(requests.ConnectionError):
        rest(emulator, "imbot.bot.list")

    assert error_of(failed) == (500, "INTERNAL_SERVER_ERROR", "Internal server error")
    assert slow.status_code == 200 and elapsed >= 0.3
    assert emulator.calls[-1].error == "CONNECTION_DROPPED"
    assert rest(emulator, "imbot.bot.list").status_code == 200


def test_faults_can_target_one_method(emulator):
    register(emulator)
    emulator.fail_next(1, "imbot.message.add")

    listed = rest(emulator, "imbot.bot.list")
    added = rest(emulator, "imbot.message.add", {"DIALOG_ID": "1", "MESSAGE": "x"})

    assert listed.status_code == 200
    assert added.status_code == 500


# events delivered to the bot


def test_user_message_is_delivered_like_the_platform(emulator, b24_api, event_sink):
    bot_id = b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    emulator.add_user(405, "Иван", "Петров", "Инженер")

    delivery = emulator.user_sends("Как оформить отпуск?", user_id=405)

    [event] = event_sink.wait_for(1)
    assert delivery.ok and delivery.latency > 0
    assert delivery.url.endswith(f"?CLIENT_ID={emulator.client_id}")
    assert event.is_valid and event.is_message
    assert event.client_id == emulator.client_id
    assert event.verify(emulator.client_id, domain=emulator.domain)
    assert event.ts and event.event_handler_id
    assert event.bot_id == bot_id
    assert (event.dialog_id, event.user_id, event.chat_type) == ("405", 405, "P")
    assert event.message_text == "Как оформить отпуск?"
    assert event.user_name == "Иван Петров"
    assert event.user["IS_BOT"] == "N"
    assert event.params["TO_USER_ID"] == str(bot_id)
    assert event.message_id == emulator.messages("405", include_user=True)[0].message_id


def test_group_chat_message_has_the_mention_stripped(emulator, b24_api, event_sink):
    bot_id = b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)

    emulator.user_sends("как оформить отпуск", user_id=405, dialog_id="chat1157")
    unmentioned = emulator.user_sends(
        "болтовня", user_id=405, dialog_id="chat1157", mention=False
    )

    [event] = event_sink.wait_for(1)
    assert not unmentioned.ok and unmentioned.url is None
    assert event.raw_message_text == ", как оформить отпуск"
    assert event.message_text == "как оформить отпуск"
    assert event.params["MESSAGE_ORIGINAL"].startswith(f"[USER={bot_id}]FAQ бот[/USER]")
    assert event.dialog_id == "chat1157"
    assert event.mentioned_ids == (bot_id,)


def test_typed_registered_command_produces_only_a_command_event(
    emulator, b24_api, event_sink
):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    command_id = b24_api.register_command("cat", "Категории", event_sink.url)

    emulator.user_sends("/cat отпуск", user_id=405)
    emulator.user_sends("/start", user_id=405)

    events = event_sink.wait_for(2)
    assert [e.event_type for e in events] == ["ONIMCOMMANDADD", "ONIMBOTMESSAGEADD"]
    command, start = events
    assert (command.command_name, command.command_params) == ("cat", "отпуск")
    assert command.command_id == command_id
    assert command.command_context == "TEXTAREA"
    assert start.message_text == "/start"


def test_button_press_is_a_keyboard_command_with_the_keyboard_message_id(
    emulator, b24_api, event_sink
):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    b24_api.register_command("helpful_yes", "Полезно", event_sink.url)
    b24_api.register_command("helpful_no", "Не помогло", event_sink.url)
    message_id = b24_api.send_message("405", "Ответ", keyboard=RATING_KEYBOARD)

    emulator.press_button(message_id, "Не помогло", user_id=405)
    emulator.press_button(message_id, 0, user_id=405)

    no, yes = event_sink.wait_for(2)
    assert (no.command_name, no.command_params) == ("helpful_no", "47")
    assert yes.command_context == "KEYBOARD"
    assert yes.message_id == message_id
    assert yes.raw_message_text == "/helpful_yes 47"
    assert (yes.user_id, yes.dialog_id) == (405, "405")


def test_a_blocked_button_is_pressed_only_once(emulator, b24_api, event_sink):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    b24_api.register_command("helpful_yes", "Полезно", event_sink.url)
    message_id = b24_api.send_message("405", "Ответ", keyboard=RATING_KEYBOARD)
    emulator.press_button(message_id, 0)

    with pytest.raises(EmulatorError, match="blocked"):
        emulator.press_button(message_id, 0)

    assert len(event_sink.wait_for(1)) == 1


def test_a_removed_keyboard_cannot_be_pressed(emulator, b24_api, event_sink):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    b24_api.register_command("helpful_no", "Не помогло", event_sink.url)
    message_id = b24_api.send_message("405", "Ответ", keyboard=RATING_KEYBOARD)
    b24_api.update_message(message_id, keyboard="N")

    with pytest.raises(EmulatorError, match="no keyboard"):
        emulator.press_button(message_id, "Не помогло")
    with pytest.raises(EmulatorError, match="does not exist"):
        emulator.press_button(999_999, 0)


def test_unregistered_button_command_delivers_nothing(emulator, b24_api, event_sink):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    message_id = b24_api.send_message("405", "Ответ", keyboard=RATING_KEYBOARD)

    with pytest.raises(EmulatorError, match="not registered"):
        emulator.press_button(message_id, 0)


def test_join_and_delete_events(emulator, b24_api, event_sink):
    bot_id = b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)

    emulator.join_chat(user_id=405)
    emulator.delete_bot()

    join, delete = event_sink.wait_for(2)
    assert join.is_join_chat and join.user_id == 405 and join.dialog_id == "405"
    assert delete.is_bot_delete and delete.bot_id == bot_id
    assert emulator.bots == []


@pytest.mark.parametrize(
    ("token", "send", "verified"),
    [(None, True, True), ("wrong", True, True), (None, False, True)],
)
def test_application_token_is_configurable(
    emulator, b24_api, event_sink, token, send, verified
):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    emulator.application_token = token
    emulator.send_application_token = send

    emulator.user_sends("Привет")

    [event] = event_sink.wait_for(1)
    expected_token = (token or emulator.client_id) if send else ""
    assert event.auth.application_token == expected_token
    # the CLIENT_ID on the URL still identifies the bot
    assert event.verify(emulator.client_id) is verified


def test_field_report_5_forged_presses_differ_from_real_ones(
    emulator, b24_api, event_sink
):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    b24_api.register_command("helpful_yes", "Полезно", event_sink.url)
    message_id = b24_api.send_message("405", "Ответ", keyboard=RATING_KEYBOARD)
    emulator.press_button(message_id, 0, user_id=405)
    forged = urlencode(
        {
            "event": "ONIMCOMMANDADD",
            "data[COMMAND][1][COMMAND]": "helpful_yes",
            "data[COMMAND][1][COMMAND_PARAMS]": "47",
            "data[PARAMS][DIALOG_ID]": "405",
        }
    )

    requests.post(
        event_sink.url.split("?")[0],
        data=forged,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )

    real, fake = event_sink.wait_for(2)
    assert real.verify(emulator.client_id)
    assert not fake.verify(emulator.client_id)


def test_delivery_is_never_retried_and_latency_is_recorded(
    emulator, b24_api, event_sink
):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    event_sink.status = 500
    emulator.slow_handler_seconds = 0.1
    event_sink.delay = 0.2

    delivery = emulator.user_sends("Привет")

    assert delivery.status == 500 and not delivery.ok
    assert delivery.slow and delivery.latency >= 0.2
    time.sleep(0.1)
    assert len(event_sink.events) == 1
    assert emulator.deliveries == [delivery]


def test_unreachable_handler_is_recorded_not_raised(emulator, b24_api):
    b24_api.register_bot("faqbot", "FAQ бот", "http://127.0.0.1:9/webhook")

    delivery = emulator.user_sends("Привет")

    assert delivery.status is None and "ConnectionError" in delivery.error


def test_user_actions_without_a_bot_are_refused(emulator):
    with pytest.raises(EmulatorError, match="no bot"):
        emulator.user_sends("Привет")


# asynchronous answers and the HTTP user side


def test_wait_for_messages_sees_answers_from_a_worker_thread(
    emulator, b24_api, event_sink
):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)

    def answer_later(event):
        def work():
            time.sleep(0.1)
            b24_api.send_message(event.dialog_id, f"Ответ на: {event.message_text}")

        threading.Thread(target=work).start()

    event_sink.on_event = answer_later
    emulator.user_sends("отпуск", user_id=405)

    [answer] = emulator.wait_for_messages("405", count=1, timeout=3)
    assert answer.text == "Ответ на: отпуск"
    with pytest.raises(TimeoutError, match="1 of 2"):
        emulator.wait_for_messages("405", count=2, timeout=0.2)


def test_http_user_side_endpoints(emulator, b24_api, event_sink):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    b24_api.register_command("helpful_yes", "Полезно", event_sink.url)
    message_id = b24_api.send_message("405", "Ответ", keyboard=RATING_KEYBOARD)
    base = emulator.base_url + "/_emulator"

    sent = requests.post(f"{base}/send", json={"text": "hi", "user_id": 405}, timeout=5)
    pressed = requests.post(
        f"{base}/press", json={"message_id": message_id, "button": 0}, timeout=5
    )
    again = requests.post(
        f"{base}/press", json={"message_id": message_id, "button": 0}, timeout=5
    )
    listed = requests.get(f"{base}/messages", params={"dialog_id": "405"}, timeout=5)
    state = requests.get(f"{base}/state", timeout=5).json()

    assert sent.json()["delivery"]["status"] == 200
    assert pressed.json()["delivery"]["event"] == "ONIMCOMMANDADD"
    assert again.status_code == 409 and "blocked" in again.json()["error"]
    assert [m["text"] for m in listed.json()["messages"]] == ["Ответ"]
    assert state["bots"][0]["code"] == "faqbot"
    assert len(event_sink.wait_for(2)) == 2


def test_emulator_restarts_on_a_given_port_with_its_state():
    with Bitrix24Emulator(webhook_key="local", client_id="faqbot") as emu:
        port = emu.port
        register(emu)
    assert emu.webhook_url == f"http://127.0.0.1:{port}/rest/1/local/"

    restarted = Bitrix24Emulator(port=port, webhook_key="local", client_id="faqbot")
    with restarted:
        assert restarted.port == port
        assert rest(restarted, "imbot.bot.list").status_code == 200
    emu.start()
    try:
        assert len(emu.bots) == 1 and emu.port == port
    finally:
        emu.stop()


# terminal chat


def test_render_bbcode_and_keyboard():
    text = (
        "[b]Отпуск[/b][br]См. [url=https://hr.example]портал[/url], [USER=5]Анна[/USER]"
    )

    assert render_bbcode(text) == "Отпуск\nСм. портал <https://hr.example>, @Анна"
    assert render_keyboard(RATING_KEYBOARD) == "  [1] Полезно\n  [2] Не помогло"


def test_handler_url_problem_matches_the_platform():
    assert handler_url_problem("https://bot.example.com/hook") is None
    assert handler_url_problem("http://127.0.0.1:5002/hook") is None
    assert handler_url_problem("http://localhost:5002/hook") == "Wrong handler URL"
    assert handler_url_problem("http://.example/hook") == "Wrong handler URL"
    assert (
        handler_url_problem("ws://bot.example.com/") == "Unsupported handler protocol"
    )


def test_terminal_chat_shows_answers_and_presses_buttons(
    emulator, b24_api, event_sink, monkeypatch, capsys
):
    b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)
    b24_api.register_command("helpful_yes", "Полезно", event_sink.url)
    b24_api.register_command("helpful_no", "Не помогло", event_sink.url)

    def bot(event):
        if event.is_message:
            b24_api.send_message(
                event.dialog_id, "[b]Ответ[/b]", keyboard=RATING_KEYBOARD
            )
        else:
            b24_api.answer_command(event.command_id, event.message_id, "Спасибо!")

    event_sink.on_event = bot
    lines = iter(["как оформить отпуск", "/9", "/0", "/1", "/quit"])

    def fake_input(prompt=""):
        time.sleep(0.4)
        return next(lines)

    monkeypatch.setattr(builtins, "input", fake_input)

    code = main(
        ["chat", "--url", emulator.base_url, "--user-id", "1", "--poll", "0.05"]
    )

    output = capsys.readouterr().out
    assert code == 0
    assert "Бот: Ответ" in output
    assert "[1] Полезно" in output
    assert "Бот: Спасибо!" in output
    assert "(нет кнопки 9: у последнего ответа 2)" in output
    assert "(нет кнопки 0: у последнего ответа 2)" in output
    assert [e.command_name for e in event_sink.events if e.is_command] == [
        "helpful_yes"
    ]

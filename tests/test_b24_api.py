"""Contract tests: every client method against the emulator, errors included."""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from b24_api import (
    Bitrix24AccessDeniedError,
    Bitrix24API,
    Bitrix24APIError,
    Bitrix24AuthError,
    Bitrix24MethodNotFoundError,
    Bitrix24NotFoundError,
    Bitrix24RateLimitError,
    Bitrix24ServerError,
    Bitrix24TimeoutError,
    Bitrix24TransportError,
    RateLimiter,
    RetryPolicy,
    escape_bbcode,
    portal_limiter,
    split_message,
)
from b24_emulator import render_bbcode

HANDLER = "https://bot.example.com/webhook/bitrix24"
RATING_ROWS = [
    [{"text": "👍 Полезно", "action": "helpful_yes", "params": "47", "block": True}],
    [{"text": "👎 Не помогло", "action": "helpful_no", "params": "47"}],
]


def client(emulator, fast_retry, **overrides) -> Bitrix24API:
    options = {
        "rate_limiter": RateLimiter.unlimited(),
        "retry": fast_retry,
        "timeout": (1.0, 3.0),
    }
    options.update(overrides)
    webhook_url = options.pop("webhook_url", emulator.webhook_url)
    client_id = options.pop("client_id", emulator.client_id)
    return Bitrix24API(webhook_url, client_id, **options)


# registration


def test_register_bot_is_idempotent_and_remembers_the_bot_id(b24_api, emulator):
    first = b24_api.register_bot("faqbot", "FAQ бот", HANDLER)
    second = b24_api.register_bot("faqbot", "FAQ бот", HANDLER)

    assert first == second == b24_api.bot_id
    [bot] = emulator.bots
    assert (
        bot.handlers["EVENT_MESSAGE_ADD"] == f"{HANDLER}?CLIENT_ID={emulator.client_id}"
    )


@pytest.mark.parametrize(
    ("handler_url", "message"),
    [
        ("http://localhost:5002/webhook", "EVENT_MESSAGE_ADD_ERROR: Wrong handler URL"),
        ("ftp://bot.example.com/", "Unsupported handler protocol"),
        ("", 'Handler for "Message add" event isn\'t specified'),
    ],
)
def test_register_bot_rejects_bad_handler_urls(b24_api, handler_url, message):
    with pytest.raises(Bitrix24APIError, match=message) as caught:
        b24_api.register_bot("faqbot", "FAQ бот", handler_url)

    assert caught.value.http_status == 400
    assert caught.value.method == "imbot.register"


def test_register_command_sends_ru_and_en_titles_and_is_idempotent(
    b24_api, emulator, registered_bot
):
    first = b24_api.register_command("helpful_yes", "Полезно", HANDLER)
    second = b24_api.register_command("/helpful_yes", "Полезно", HANDLER)

    assert first == second
    [command] = emulator.commands
    assert command.bot_id == registered_bot
    assert command.hidden == "Y"
    assert {entry["LANGUAGE_ID"] for entry in command.lang} == {"ru", "en"}
    assert command.handler_url.endswith(f"?CLIENT_ID={emulator.client_id}")


def test_register_command_without_a_bot_is_bot_id_error(b24_api):
    with pytest.raises(Bitrix24NotFoundError, match="BOT_ID_ERROR: Bot not found"):
        b24_api.register_command("helpful_yes", "Полезно", HANDLER)


def test_register_command_without_handler_is_event_command_add_error(
    b24_api, registered_bot
):
    with pytest.raises(Bitrix24APIError, match="EVENT_COMMAND_ADD_ERROR"):
        b24_api.register_command("helpful_yes", "Полезно", "")


def test_command_without_lang_is_lang_error(b24_api, registered_bot):
    params = {"BOT_ID": registered_bot, "COMMAND": "x", "EVENT_COMMAND_ADD": HANDLER}

    with pytest.raises(Bitrix24APIError, match="LANG_ERROR: Lang set can't be empty"):
        b24_api.call("imbot.command.register", params)


# identity and errors


def test_client_id_goes_on_every_imbot_call_and_bot_id_where_accepted(
    b24_api, emulator, registered_bot
):
    b24_api.register_command("helpful_yes", "Полезно", HANDLER)
    message_id = b24_api.send_message("405", "Ответ")
    b24_api.update_message(message_id, keyboard="N")
    b24_api.send_typing("405")

    imbot_calls = [call for call in emulator.calls if call.method.startswith("imbot.")]
    assert imbot_calls
    assert all(call.params["CLIENT_ID"] == emulator.client_id for call in imbot_calls)
    with_bot_id = {call.method for call in imbot_calls if "BOT_ID" in call.params}
    assert with_bot_id == {
        "imbot.command.register",
        "imbot.message.add",
        "imbot.message.update",
        "imbot.chat.sendtyping",
    }


def test_missing_client_id_is_access_denied(b24_api, registered_bot):
    with pytest.raises(
        Bitrix24AccessDeniedError, match="Access denied! Client ID not specified"
    ) as caught:
        b24_api.call("imbot.message.add", {"CLIENT_ID": "", "DIALOG_ID": "1"})

    assert caught.value.code == "ACCESS_DENIED"
    assert caught.value.http_status == 403


def test_another_client_id_is_app_id_error(emulator, fast_retry, registered_bot):
    stranger = client(
        emulator, fast_retry, client_id="someone-else", bot_id=registered_bot
    )

    with pytest.raises(Bitrix24AccessDeniedError, match="APP_ID_ERROR"):
        stranger.send_message("405", "Привет")


def test_wrong_webhook_key_is_no_auth_found(emulator, fast_retry):
    wrong = client(
        emulator, fast_retry, webhook_url=emulator.base_url + "/rest/1/nope/"
    )

    with pytest.raises(Bitrix24AuthError, match="NO_AUTH_FOUND") as caught:
        wrong.call("imbot.bot.list")

    assert caught.value.http_status == 401


def test_set_typing_does_not_exist_but_send_typing_works(
    b24_api, emulator, registered_bot
):
    with pytest.raises(
        Bitrix24MethodNotFoundError, match="Method not found!"
    ) as caught:
        b24_api.call("imbot.chat.setTyping", {"DIALOG_ID": "405"})

    assert caught.value.http_status == 404
    assert b24_api.send_typing("405") is True
    assert [event.dialog_id for event in emulator.typing_events] == ["405"]


def test_send_typing_failure_is_logged_at_debug_and_never_raises(
    b24_api, emulator, caplog
):
    caplog.set_level(logging.DEBUG, logger="b24_api")

    assert b24_api.send_typing("405") is False

    [record] = [r for r in caplog.records if "typing" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert "BOT_ID_ERROR" in record.getMessage()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"dialog_id": "0", "message": "x"}, "DIALOG_ID_EMPTY"),
        ({"dialog_id": "user5", "message": "x"}, "DIALOG_ID_EMPTY"),
        ({"dialog_id": "405", "message": "   "}, "MESSAGE_EMPTY"),
        (
            {"dialog_id": "405", "message": "x", "keyboard": [[{"TEXT": "a"}]]},
            "KEYBOARD_ERROR",
        ),
        (
            {
                "dialog_id": "405",
                "message": "x",
                "attach": [{"LINK": {"NAME": "Похожий вопрос", "LINK": "#"}}],
            },
            "ATTACH_ERROR",
        ),
    ],
)
def test_send_message_errors(b24_api, registered_bot, kwargs, code):
    with pytest.raises(Bitrix24APIError, match=code) as caught:
        b24_api.send_message(**kwargs)

    assert caught.value.code == code
    assert caught.value.http_status == 400


def test_callers_dicts_are_never_changed(b24_api, registered_bot):
    params = {"DIALOG_ID": "405", "MESSAGE": "Привет"}
    keyboard = b24_api.create_keyboard(RATING_ROWS)
    snapshot = (copy.deepcopy(params), copy.deepcopy(keyboard))

    b24_api.call("imbot.message.add", params)
    b24_api.send_message("405", "Ответ", keyboard=keyboard)

    assert (params, keyboard) == snapshot


# messages and keyboards


def test_create_keyboard_keeps_the_design_input_and_gives_a_flat_list():
    keyboard = Bitrix24API.create_keyboard(RATING_ROWS)

    assert keyboard == [
        {
            "TEXT": "👍 Полезно",
            "DISPLAY": "LINE",
            "COMMAND": "helpful_yes",
            "COMMAND_PARAMS": "47",
            "BLOCK": "Y",
        },
        {"TYPE": "NEWLINE"},
        {
            "TEXT": "👎 Не помогло",
            "DISPLAY": "LINE",
            "COMMAND": "helpful_no",
            "COMMAND_PARAMS": "47",
        },
    ]


def test_create_keyboard_rejects_buttons_without_text_or_action():
    with pytest.raises(ValueError, match="without text"):
        Bitrix24API.create_keyboard([[{"action": "x"}]])
    with pytest.raises(ValueError, match="without action"):
        Bitrix24API.create_keyboard([[{"text": "x"}]])


def test_send_message_with_keyboard_is_what_the_user_sees(
    b24_api, emulator, registered_bot
):
    keyboard = b24_api.create_keyboard(RATING_ROWS)

    message_id = b24_api.send_message(
        405, "[b]Отпуск[/b] оформляется в портале", keyboard
    )

    [message] = emulator.messages("405")
    assert message.message_id == message_id
    assert message.author_id == registered_bot
    assert [b["TEXT"] for b in message.buttons] == ["👍 Полезно", "👎 Не помогло"]
    assert message.keyboard[1] == {"TYPE": "NEWLINE"}
    assert message.buttons[0]["BLOCK"] == "Y"


def test_long_message_is_split_and_the_keyboard_rides_on_the_last_part(
    b24_api, emulator, registered_bot
):
    paragraph = ("Первое предложение абзаца. " * 40).strip()
    text = "\n\n".join([paragraph] * 45)
    keyboard = b24_api.create_keyboard(RATING_ROWS)

    last_id = b24_api.send_message("405", text, keyboard=keyboard)

    stored = emulator.messages("405")
    assert len(stored) == 3
    assert stored[-1].message_id == last_id
    assert all(len(message.text) <= 20_000 for message in stored)
    assert all(not message.text.endswith("(...)") for message in stored)
    assert [message.keyboard is not None for message in stored] == [False, False, True]
    assert "\n\n".join(message.text for message in stored) == text


def test_answer_command_posts_a_new_message_in_the_dialog(
    b24_api, emulator, registered_bot
):
    command_id = b24_api.register_command("helpful_yes", "Полезно", HANDLER)
    keyboard_message = b24_api.send_message(
        "405", "Ответ", keyboard=b24_api.create_keyboard(RATING_ROWS)
    )

    answer_id = b24_api.answer_command(
        command_id, keyboard_message, "Спасибо за отзыв!"
    )

    answer = emulator.message(answer_id)
    assert answer.dialog_id == "405"
    assert answer.text == "Спасибо за отзыв!"
    assert emulator.message(keyboard_message).text == "Ответ"


@pytest.mark.parametrize(
    ("command_id", "message_id", "message", "code"),
    [
        (999, 1, "x", "COMMAND_ID_ERROR"),
        (None, 0, "x", "MESSAGE_ID_EMPTY"),
        (None, 1, " ", "MESSAGE_EMPTY"),
    ],
)
def test_answer_command_errors(
    b24_api, registered_bot, command_id, message_id, message, code
):
    registered = b24_api.register_command("helpful_yes", "Полезно", HANDLER)
    b24_api.send_message("405", "Ответ")

    with pytest.raises(Bitrix24APIError, match=code):
        b24_api.answer_command(command_id or registered, message_id, message)


@pytest.mark.parametrize("removal", ["N", []])
def test_update_message_removes_the_keyboard(
    b24_api, emulator, registered_bot, removal
):
    message_id = b24_api.send_message(
        "405", "Ответ", keyboard=b24_api.create_keyboard(RATING_ROWS)
    )

    assert b24_api.update_message(message_id, keyboard=removal) is True

    message = emulator.message(message_id)
    assert message.keyboard is None
    assert message.text == "Ответ"
    assert message.updated == 1


def test_update_message_of_someone_else_is_cant_edit(b24_api, emulator, registered_bot):
    emulator.user_sends("Привет", user_id=405)
    [user_message] = emulator.messages("405", include_user=True)

    with pytest.raises(Bitrix24AccessDeniedError, match="CANT_EDIT_MESSAGE") as caught:
        b24_api.update_message(user_message.message_id, message="изменено")

    assert caught.value.http_status == 403


def test_escaped_user_text_stays_text(b24_api, emulator, registered_bot):
    typed = "[url=https://evil.example]нажми[/url] и [b]жирный[/b]\n>>цитата"

    b24_api.send_message("405", "Вы спросили: " + escape_bbcode(typed))

    [message] = emulator.messages("405")
    assert "[url=" not in message.text
    assert render_bbcode(message.text).replace("\u200b", "") == "Вы спросили: " + typed
    assert escape_bbcode(escape_bbcode(typed)) == escape_bbcode(typed)


# batch


def test_batch_returns_results_and_typed_errors(b24_api, emulator, registered_bot):
    result = b24_api.batch(
        {
            "first": ("imbot.message.add", {"DIALOG_ID": "405", "MESSAGE": "Один"}),
            "broken": ("imbot.message.add", {"DIALOG_ID": "405", "MESSAGE": ""}),
            "typing": ("imbot.chat.sendTyping", {"DIALOG_ID": "405"}),
        }
    )

    assert not result.ok
    assert set(result.results) == {"first", "typing"}
    assert isinstance(result.errors["broken"], Bitrix24APIError)
    assert result.errors["broken"].code == "MESSAGE_EMPTY"
    assert [message.text for message in emulator.messages("405")] == ["Один"]


def test_batch_halt_stops_at_the_first_error(b24_api, emulator, registered_bot):
    result = b24_api.batch(
        [
            ("imbot.message.add", {"DIALOG_ID": "405", "MESSAGE": ""}),
            ("imbot.message.add", {"DIALOG_ID": "405", "MESSAGE": "после"}),
        ],
        halt=True,
    )

    assert set(result.errors) == {"0"}
    assert emulator.messages("405") == []


def test_batch_refuses_more_than_fifty_calls(b24_api):
    with pytest.raises(ValueError, match="at most 50"):
        b24_api.batch([("imbot.bot.list", {})] * 51)


# retries: only what the platform did not run


def test_rate_limit_replies_are_retried_until_they_pass(
    b24_api, emulator, registered_bot
):
    emulator.fail_next(
        2,
        "imbot.message.add",
        status=503,
        code="QUERY_LIMIT_EXCEEDED",
        description="Too many requests",
    )

    b24_api.send_message("405", "Ответ")

    statuses = [call.status for call in emulator.calls_to("imbot.message.add")]
    assert statuses == [503, 503, 200]
    assert len(emulator.messages("405")) == 1


def test_operation_time_limit_429_is_retried(b24_api, emulator, registered_bot):
    emulator.fail_next(
        1, status=429, code="OPERATION_TIME_LIMIT", description="Method is blocked"
    )

    b24_api.send_message("405", "Ответ")

    assert len(emulator.messages("405")) == 1


def test_rate_limit_that_never_clears_raises_a_typed_error(emulator, registered_bot):
    api = client(emulator, RetryPolicy(max_attempts=3, initial=0.01, maximum=0.01))
    api.bot_id = registered_bot
    emulator.fail_next(
        5, status=503, code="QUERY_LIMIT_EXCEEDED", description="Too many requests"
    )

    with pytest.raises(Bitrix24RateLimitError, match="QUERY_LIMIT_EXCEEDED"):
        api.send_message("405", "Ответ")

    assert len(emulator.calls_to("imbot.message.add")) == 3


def test_server_error_is_retried_for_idempotent_calls(
    b24_api, emulator, registered_bot
):
    emulator.fail_next(2, "imbot.command.register")

    b24_api.register_command("helpful_yes", "Полезно", HANDLER)

    statuses = [call.status for call in emulator.calls_to("imbot.command.register")]
    assert statuses == [500, 500, 200]


def test_server_error_is_not_retried_for_message_add(b24_api, emulator, registered_bot):
    emulator.fail_next(1, "imbot.message.add")

    with pytest.raises(Bitrix24ServerError, match="INTERNAL_SERVER_ERROR"):
        b24_api.send_message("405", "Ответ")

    assert len(emulator.calls_to("imbot.message.add")) == 1


def test_client_errors_are_never_retried(b24_api, emulator, registered_bot):
    with pytest.raises(Bitrix24APIError, match="MESSAGE_EMPTY"):
        b24_api.send_message("405", " ")

    assert len(emulator.calls_to("imbot.message.add")) == 1


def test_message_add_is_not_repeated_after_a_read_timeout(
    emulator, fast_retry, registered_bot
):
    api = client(emulator, fast_retry, timeout=(1.0, 0.3), bot_id=registered_bot)
    emulator.slow_next(1, delay=0.8, method="imbot.message.add")

    with pytest.raises(Bitrix24TimeoutError, match="read timeout") as caught:
        api.send_message("405", "Ответ")

    assert caught.value.may_have_executed
    assert isinstance(caught.value.__cause__, requests.exceptions.ReadTimeout)
    time.sleep(0.7)
    assert len(emulator.calls_to("imbot.message.add")) == 1
    assert [message.text for message in emulator.messages("405")] == ["Ответ"]


def test_command_answer_is_not_repeated_after_a_dropped_connection(
    b24_api, emulator, registered_bot
):
    command_id = b24_api.register_command("helpful_yes", "Полезно", HANDLER)
    keyboard_message = b24_api.send_message("405", "Ответ")
    emulator.drop_next(1, "imbot.command.answer", after_execute=True)

    with pytest.raises(Bitrix24TransportError, match="connection error"):
        b24_api.answer_command(command_id, keyboard_message, "Спасибо!")

    assert len(emulator.calls_to("imbot.command.answer")) == 1
    assert len(emulator.messages("405")) == 2


def test_idempotent_call_is_retried_after_a_read_timeout(
    emulator, fast_retry, registered_bot
):
    api = client(emulator, fast_retry, timeout=(1.0, 0.3), bot_id=registered_bot)
    message_id = api.send_message(
        "405", "Ответ", keyboard=api.create_keyboard(RATING_ROWS)
    )
    emulator.slow_next(1, delay=0.6, method="imbot.message.update")

    assert api.update_message(message_id, keyboard="N") is True

    assert len(emulator.calls_to("imbot.message.update")) == 2


def test_connection_refused_is_retried_then_wrapped(fast_retry):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    api = Bitrix24API(
        f"http://127.0.0.1:{port}/rest/1/key/",
        "client",
        rate_limiter=RateLimiter.unlimited(),
        retry=RetryPolicy(max_attempts=3, initial=0.01, maximum=0.02, jitter=0.0),
        sleep=sleeps.append,
    )

    with pytest.raises(Bitrix24TransportError, match="connection error") as caught:
        api.send_message("405", "Ответ")

    assert not caught.value.may_have_executed
    assert isinstance(caught.value.__cause__, requests.exceptions.ConnectionError)
    assert sleeps == [0.01, 0.02]


def test_non_json_reply_is_a_typed_error(emulator, fast_retry):
    api = client(emulator, fast_retry, webhook_url=emulator.base_url + "/nowhere/")

    with pytest.raises(Bitrix24APIError, match="HTTP_404") as caught:
        api.call("imbot.bot.list")

    assert caught.value.http_status == 404


# pacing


def test_burst_of_60_with_the_platform_limits_loses_nothing(emulator, registered_bot):
    emulator.set_rate_limit(True, drain_rate=2.0, capacity=50)
    api = client(
        emulator,
        RetryPolicy(max_attempts=6, initial=0.2, maximum=1.0, jitter=0.1),
        rate_limiter=RateLimiter(rate=2.0, burst=50),
        bot_id=registered_bot,
    )

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(lambda n: api.send_message("405", f"#{n}"), range(60)))

    assert len(set(ids)) == 60
    assert sorted(m.text for m in emulator.messages("405")) == sorted(
        f"#{n}" for n in range(60)
    )


def test_burst_without_client_pacing_is_saved_by_retries(emulator, registered_bot):
    emulator.set_rate_limit(True, drain_rate=40.0, capacity=10)
    api = client(
        emulator,
        RetryPolicy(max_attempts=40, initial=0.02, maximum=0.1, jitter=0.05),
        bot_id=registered_bot,
    )

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda n: api.send_message("405", f"#{n}"), range(60)))

    rejected = [c for c in emulator.calls_to("imbot.message.add") if c.status == 503]
    assert rejected, "the emulator's limiter should have pushed back"
    assert {c.error for c in rejected} == {"QUERY_LIMIT_EXCEEDED"}
    assert len(emulator.messages("405")) == 60


def test_client_pacing_matches_the_emulator_limit(emulator, registered_bot, fast_retry):
    emulator.set_rate_limit(True, drain_rate=40.0, capacity=10)
    api = client(
        emulator,
        fast_retry,
        rate_limiter=RateLimiter(rate=30.0, burst=10),
        bot_id=registered_bot,
    )

    for n in range(30):
        api.send_message("405", f"#{n}")

    assert all(c.status == 200 for c in emulator.calls_to("imbot.message.add"))
    assert len(emulator.messages("405")) == 30


def test_rate_limiter_is_thread_safe_and_paces_calls():
    limiter = RateLimiter(rate=50.0, burst=5)
    started = time.monotonic()

    threads = [
        threading.Thread(target=lambda: [limiter.acquire() for _ in range(5)])
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert time.monotonic() - started >= (15 - 5) / 50.0 * 0.9


def test_clients_of_one_portal_share_one_limiter(emulator):
    first = Bitrix24API(emulator.webhook_url, "a")
    second = Bitrix24API(emulator.base_url + "/rest/2/other/", "b")
    elsewhere = Bitrix24API("https://other.bitrix24.ru/rest/1/key/", "c")

    assert first.rate_limiter is second.rate_limiter
    assert first.rate_limiter is portal_limiter(emulator.webhook_url.upper())
    assert elsewhere.rate_limiter is not first.rate_limiter


# helpers


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 20, ["short"]),
        ("Абзац один.\n\nАбзац два.", 15, ["Абзац один.", "Абзац два."]),
        ("Раз. Два. Три четыре.", 12, ["Раз. Два.", "Три четыре."]),
        ("слово " * 5, 12, ["слово слово", "слово слово", "слово"]),
        ("x" * 25, 10, ["x" * 10, "x" * 10, "x" * 5]),
        ("", 10, []),
    ],
)
def test_split_message(text, limit, expected):
    assert split_message(text, limit) == expected


def test_escape_bbcode_breaks_tags_but_keeps_the_look():
    escaped = escape_bbcode("[url=http://x]y[/url]")

    assert escaped.replace("\u200b", "") == "[url=http://x]y[/url]"
    assert "[url" not in escaped

"""The webhook server: routes, origin checks, bad input, storage and the worker."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
from b24_harness import (
    ServedApp,
    StubEngine,
    bot_config,
    event_body,
    load_small_faq,
)
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import b24_texts as texts
from b24_bot import create_app, start_local_bitrix24
from b24_conversation import COMMANDS
from b24_event import flatten_php
from config import ConfigError, load_config
from database import EventStatus
from models import InboundEvent

WEBHOOK = "/webhook/bitrix24"


@pytest.fixture
def faq_ids(database) -> dict[str, int]:
    return load_small_faq(database)


@pytest.fixture
def served():
    server = ServedApp().start()
    yield server
    server.stop()


@pytest.fixture
def engine(database, faq_search) -> StubEngine:
    return StubEngine(database, faq_search)


@pytest.fixture
def make_bot(
    tmp_path, emulator, b24_api, database, faq_search, faq_ids, served, engine
):
    """Build the bot on the emulator; several calls are restarts on one port."""
    apps: list[Flask] = []

    def make(start_worker: bool = True, **changes: Any) -> Flask:
        config = bot_config(tmp_path, emulator, served.url, **changes)
        app = create_app(
            config,
            api=b24_api,
            engine=engine,
            database=database,
            search=faq_search,
            start_worker=start_worker,
        )
        served.app = app
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["faq_bot"].worker.stop()


@pytest.fixture
def bot(make_bot) -> Flask:
    return make_bot()


@pytest.fixture
def quiet_bot(make_bot) -> Flask:
    """The bot without its worker: stored events stay pending."""
    return make_bot(start_worker=False)


@pytest.fixture
def bot_id(b24_api) -> Callable[[], int]:
    return lambda: b24_api.bot_id


def post(client: FlaskClient, body: str | bytes, query: str = "", **kwargs: Any):
    url = f"{WEBHOOK}?{query}" if query else WEBHOOK
    kwargs.setdefault("content_type", "application/x-www-form-urlencoded")
    return client.post(url, data=body, **kwargs)


def flatten_php_pairs(body: str) -> list[tuple[str, str]]:
    """The bracket-keyed pairs of a form body, as a proxy might put them in JSON."""
    return parse_qsl(body, keep_blank_values=True)


def stored_events(database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count(InboundEvent.id)))


def bot_messages_sent(emulator) -> int:
    return len(emulator.calls_to("imbot.message.add")) + len(
        emulator.calls_to("imbot.command.answer")
    )


# routes and health


def test_index_says_what_runs(bot: Flask) -> None:
    reply = bot.test_client().get("/")

    assert reply.status_code == 200
    assert "FAQ bot" in reply.get_data(as_text=True)


def test_health_reports_index_and_database(bot: Flask, faq_ids) -> None:
    reply = bot.test_client().get("/health")

    assert reply.status_code == 200
    assert reply.get_json() == {
        "status": "ok",
        "chromadb_records": 16,
        "webhook_configured": True,
        "bitrix24": "portal",
        "database": "ok",
        "index": "ok",
        "worker": "running",
    }


def test_health_is_503_when_the_index_is_unreachable(
    bot: Flask, faq_search, monkeypatch
) -> None:
    monkeypatch.setattr(faq_search, "healthy", lambda: False)

    reply = bot.test_client().get("/health")

    assert reply.status_code == 503
    assert reply.get_json()["index"] == "error"
    assert reply.get_json()["status"] == "unavailable"


def test_health_is_503_when_the_database_is_unreachable(
    bot: Flask, database, monkeypatch
) -> None:
    def broken() -> int:
        raise ConnectionError("database is gone")

    monkeypatch.setattr(database, "faq_revision", broken)

    reply = bot.test_client().get("/health")

    assert reply.status_code == 503
    assert reply.get_json()["database"] == "error"


# origin checks


@pytest.mark.parametrize(
    ("token", "query", "settings", "status"),
    [
        pytest.param("CLIENT", "", {}, 200, id="token"),
        pytest.param(None, "CLIENT_ID={client}", {}, 200, id="query-only"),
        pytest.param(None, "", {}, 403, id="nothing"),
        pytest.param("forged", "", {}, 403, id="wrong-token"),
        pytest.param("PREFIX", "", {}, 403, id="token-prefix"),
        pytest.param(None, "CLIENT_ID=forged", {}, 403, id="wrong-query"),
        pytest.param("", "CLIENT_ID=", {}, 403, id="empty"),
        pytest.param(
            "CLIENT",
            "",
            {"portal_domain": "emulator.bitrix24.local"},
            200,
            id="our-portal",
        ),
        pytest.param(
            "CLIENT", "", {"portal_domain": "other.bitrix24.ru"}, 403, id="other-portal"
        ),
        pytest.param("CLIENT", "", {"member_id": "other"}, 403, id="other-member"),
    ],
)
def test_only_our_events_are_accepted(
    make_bot, emulator, database, bot_id, token, query, settings, status
) -> None:
    app = make_bot(start_worker=False, **settings)
    client_id = emulator.client_id
    token = {"CLIENT": client_id, "PREFIX": client_id[:-1]}.get(token, token)
    query = query.format(client=client_id)
    sent_before = bot_messages_sent(emulator)

    reply = post(app.test_client(), event_body(token=token, bot_id=bot_id()), query)

    assert reply.status_code == status
    assert stored_events(database) == (1 if status == 200 else 0)
    assert bot_messages_sent(emulator) == sent_before


def test_forged_rating_presses_change_nothing(quiet_bot, emulator, database) -> None:
    client = quiet_bot.test_client()

    for answer_log_id in range(1, 51):
        body = event_body(
            "ONIMCOMMANDADD", command="helpful_yes", command_params=str(answer_log_id)
        )
        assert post(client, body).status_code == 403

    assert stored_events(database) == 0
    assert database.rating_summary() == (0, 0)


# bad input


MALFORMED = [
    pytest.param(b"data[]=x", id="empty-bracket"),
    pytest.param(b"event=ONIMBOTMESSAGEADD&data[123]=x", id="numeric-data-key"),
    pytest.param(b"event=ONIMBOTMESSAGEADD&data[PARAMS]=x", id="params-not-map"),
    pytest.param(b"event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE", id="unclosed"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b"event=", id="empty-event"),
    pytest.param(b"event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE]=hi", id="no-dialog"),
    pytest.param(
        b"event=ONIMCOMMANDADD&data[PARAMS][DIALOG_ID]=405", id="command-without-entry"
    ),
    pytest.param(b"%%%&&&===", id="garbage"),
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_form_bodies_get_400_and_one_log_line(
    quiet_bot, emulator, database, caplog, body: bytes
) -> None:
    caplog.set_level(logging.INFO, logger="b24_bot")

    reply = post(quiet_bot.test_client(), body, f"CLIENT_ID={emulator.client_id}")

    assert reply.status_code == 400
    assert reply.get_json()["status"] == "bad request"
    assert stored_events(database) == 0
    assert len([r for r in caplog.records if r.name == "b24_bot"]) == 1


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_without_auth_get_403(quiet_bot, database, body) -> None:
    reply = post(quiet_bot.test_client(), body)

    assert reply.status_code == 403
    assert stored_events(database) == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"[1, 2]", "application/json", id="json-list"),
        pytest.param(b"{not json", "application/json", id="broken-json"),
        pytest.param(b"{}", "application/json", id="empty-json"),
        pytest.param(b"hello", "text/plain", id="plain-text"),
        pytest.param(b"\xff\xfe{}", "application/json", id="json-not-utf8"),
    ],
)
def test_other_bad_bodies_never_500(
    quiet_bot, emulator, database, body, content_type
) -> None:
    client = quiet_bot.test_client()
    query = f"CLIENT_ID={emulator.client_id}"

    reply = post(client, body, query, content_type=content_type)

    assert reply.status_code == 400
    assert stored_events(database) == 0


def test_cp1251_message_is_a_clear_400(quiet_bot, emulator, database, caplog) -> None:
    # field report 6: the cp1251 bytes of «Привет»
    body = (
        b"event=ONIMBOTMESSAGEADD&data%5BPARAMS%5D%5BMESSAGE%5D=%CF%F0%E8%E2%E5%F2"
        b"&data%5BPARAMS%5D%5BDIALOG_ID%5D=405&auth%5Bapplication_token%5D="
        + emulator.client_id.encode()
    )
    caplog.set_level(logging.INFO, logger="b24_bot")

    reply = post(quiet_bot.test_client(), body)

    assert reply.status_code == 400
    assert "cp1251" in reply.get_json()["problem"]
    assert stored_events(database) == 0
    assert any("cp1251" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"event": "ONIMBOTDELETE", "data": {"BOT_ID": "1"}}, id="delete"),
        pytest.param(
            {"event": "ONIMBOTMESSAGEUPDATE", "data": {"PARAMS": {"DIALOG_ID": "1"}}},
            id="update",
        ),
    ],
)
def test_events_the_bot_does_not_handle_are_ignored(
    quiet_bot, emulator, database, payload
) -> None:
    payload = {**payload, "auth": {"application_token": emulator.client_id}}

    reply = post(quiet_bot.test_client(), urlencode(flatten_php(payload)))

    assert reply.status_code == 200
    assert reply.get_json()["status"] == "ignored"
    assert stored_events(database) == 0


def test_an_event_for_another_bot_is_ignored(quiet_bot, emulator, database) -> None:
    body = event_body(token=emulator.client_id, bot_id=99999)

    reply = post(quiet_bot.test_client(), body)

    assert reply.get_json()["status"] == "ignored"
    assert stored_events(database) == 0


def _nested_json(depth: int) -> str:
    return (
        '{"event":"ONIMBOTMESSAGEADD","data":'
        + '{"a":' * depth
        + "1"
        + "}" * (depth + 1)
    )


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        pytest.param(
            '{"data":' + "[" * 100_000 + "]" * 100_000 + "}",
            "application/json",
            "not valid JSON",
            id="json-arrays",
        ),
        pytest.param(_nested_json(900), "application/json", "nested", id="json-maps"),
        pytest.param(
            "event=ONIMBOTMESSAGEADD&data" + "[a]" * 5000 + "=v",
            "application/x-www-form-urlencoded",
            "nested",
            id="form-keys",
        ),
    ],
)
def test_bodies_nested_thousands_deep_are_a_4xx_not_a_500(
    quiet_bot, emulator, database, body, content_type, problem
) -> None:
    client = quiet_bot.test_client()

    ours = post(
        client, body, f"CLIENT_ID={emulator.client_id}", content_type=content_type
    )
    anyone = post(client, body, content_type=content_type)

    assert ours.status_code == 400
    assert problem in ours.get_json()["problem"]
    assert anyone.status_code == 403
    assert stored_events(database) == 0


def test_json_with_flat_bracket_keys_reads_like_the_form(
    quiet_bot, emulator, database, bot_id
) -> None:
    form = dict(
        flatten_php_pairs(event_body(token=emulator.client_id, bot_id=bot_id()))
    )

    reply = quiet_bot.test_client().post(WEBHOOK, json=form)

    assert reply.get_json() == {"status": "accepted"}
    (record,) = database.pending_events()
    assert record.payload["data"]["PARAMS"]["MESSAGE"] == "Как оформить отпуск?"


def test_nul_and_lone_surrogates_are_dropped_at_the_edge(
    bot, emulator, database, bot_id
) -> None:
    payload = {
        "event": "ONIMBOTMESSAGEADD",
        "data": {
            "BOT": {str(bot_id()): {"BOT_ID": bot_id()}},
            "PARAMS": {
                "MESSAGE": "Как оформить\x00 отпуск?\ud800",
                "MESSAGE_ID": 603,
                "FROM_USER_ID": 405,
                "DIALOG_ID": "405",
            },
        },
        "auth": {"application_token": emulator.client_id},
    }

    reply = post(
        bot.test_client(), json.dumps(payload), content_type="application/json"
    )

    assert reply.get_json() == {"status": "accepted"}
    answer = emulator.wait_for_messages("405", 1)[-1]
    assert answer.text.startswith("[b]Как оформить отпуск?[/b]")
    assert bot.extensions["faq_bot"].worker.wait_idle()
    (log,) = database.recent_interactions(limit=1)
    assert log.text_raw == "Как оформить отпуск?"
    with database.session() as session:
        assert session.scalar(select(InboundEvent.status)) == EventStatus.DONE


@pytest.mark.parametrize(
    ("command", "reply_text"),
    [
        pytest.param("faq", texts.FAQ_GONE, id="faq"),
        pytest.param("cat", texts.CATEGORY_GONE, id="category"),
        pytest.param("helpful_yes", texts.BAD_BUTTON, id="rating"),
        pytest.param("choice", texts.FAQ_GONE, id="choice"),
    ],
)
def test_a_button_with_a_number_no_row_has_is_an_outdated_button(
    bot, emulator, database, bot_id, command, reply_text
) -> None:
    huge = "99999999999999999999999"
    params = f"{huge} {huge}" if command == "choice" else huge
    body = event_body(
        "ONIMCOMMANDADD",
        command=command,
        command_params=params,
        token=emulator.client_id,
        bot_id=bot_id(),
    )

    assert post(bot.test_client(), body).get_json() == {"status": "accepted"}

    assert emulator.wait_for_messages("405", 1)[-1].text == reply_text
    assert bot.extensions["faq_bot"].worker.wait_idle()
    with database.session() as session:
        assert session.scalar(select(InboundEvent.status)) == EventStatus.DONE


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"dialog_id": "1" * 300}, id="dialog-id"),
        pytest.param({"domain": "d" * 300, "member_id": "m" * 300}, id="portal"),
        pytest.param({"message_id": 10**30}, id="message-id"),
    ],
)
def test_ids_of_any_length_never_reach_the_database_unchecked(
    quiet_bot, emulator, database, bot_id, changes
) -> None:
    body = event_body(token=emulator.client_id, bot_id=bot_id(), **changes)

    reply = post(quiet_bot.test_client(), body)

    if "dialog_id" in changes:
        assert reply.status_code == 400
        assert stored_events(database) == 0
    else:
        assert reply.get_json() == {"status": "accepted"}
        (record,) = database.pending_events()
        assert len(record.dedupe_key) <= 200


# sizes


def test_a_20000_character_cyrillic_message_passes(
    bot, emulator, database, bot_id
) -> None:
    # field report 7: about 120 kB form-encoded
    message = ("Ж" * 99 + " ") * 200
    body = event_body(message=message, token=emulator.client_id, bot_id=bot_id())
    assert len(body) > 100_000

    reply = post(bot.test_client(), body)

    assert reply.status_code == 200
    answer = emulator.wait_for_messages("405", 1)[-1]
    assert texts.NO_ANSWER.split("«")[0] in answer.text


def test_a_600_kb_body_gets_413_and_a_log_line(
    quiet_bot, emulator, database, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="b24_bot")
    body = event_body(message="x" * 600_000, token=emulator.client_id)

    reply = post(quiet_bot.test_client(), body)

    assert reply.status_code == 413
    assert reply.get_json()["limit"] == 512 * 1024
    assert stored_events(database) == 0
    assert any("MAX_CONTENT_LENGTH" in r.getMessage() for r in caplog.records)


def test_a_chunked_body_over_the_limit_gets_413_not_a_cut_event(
    quiet_bot, emulator, database
) -> None:
    # werkzeug ends a chunked body at the limit without an error of its own
    body = event_body(message="x" * 600_000, token=emulator.client_id).encode()

    reply = quiet_bot.test_client().post(
        WEBHOOK,
        input_stream=io.BytesIO(body),
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert reply.status_code == 413
    assert stored_events(database) == 0


def test_a_chunked_body_within_the_limit_is_read_whole(
    quiet_bot, emulator, database, bot_id
) -> None:
    body = event_body(token=emulator.client_id, bot_id=bot_id()).encode()

    reply = quiet_bot.test_client().post(
        WEBHOOK,
        input_stream=io.BytesIO(body),
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert reply.get_json() == {"status": "accepted"}
    assert stored_events(database) == 1


# storage and the worker


def test_a_duplicate_event_is_acknowledged_and_dropped(
    quiet_bot, emulator, database, bot_id
) -> None:
    body = event_body(token=emulator.client_id, bot_id=bot_id())
    client = quiet_bot.test_client()

    first = post(client, body)
    second = post(client, body)

    assert first.get_json()["status"] == "accepted"
    assert second.status_code == 200
    assert second.get_json()["status"] == "duplicate"
    assert stored_events(database) == 1


@pytest.mark.parametrize(
    ("first", "second", "stored"),
    [
        pytest.param(("cat", "1", 100), ("cat", "2", 100), 2, id="two-buttons"),
        pytest.param(("cat", "1", 100), ("cat", "1", 160), 2, id="pressed-later"),
        pytest.param(("cat", "1", 100), ("cat", "1", 100), 1, id="same-press"),
    ],
)
def test_button_presses_on_one_keyboard(
    quiet_bot, emulator, database, bot_id, first, second, stored
) -> None:
    client = quiet_bot.test_client()
    for command, params, ts in (first, second):
        body = event_body(
            "ONIMCOMMANDADD",
            command=command,
            command_params=params,
            ts=ts,
            token=emulator.client_id,
            bot_id=bot_id(),
        )
        assert post(client, body).status_code == 200

    assert stored_events(database) == stored


def test_the_stored_event_keeps_no_secret(
    quiet_bot, emulator, database, bot_id
) -> None:
    body = event_body(token=emulator.client_id, bot_id=bot_id())
    post(quiet_bot.test_client(), body)

    (record,) = database.pending_events()
    assert emulator.client_id not in json.dumps(record.payload)
    assert record.payload["data"]["PARAMS"]["MESSAGE"] == "Как оформить отпуск?"


def test_form_and_json_bodies_get_the_same_reply(
    bot, emulator, database, bot_id
) -> None:
    # field report 1: one event, two encodings
    client = bot.test_client()
    form = event_body(message_id=601, token=emulator.client_id, bot_id=bot_id())
    post(client, form)
    first = emulator.wait_for_messages("405", 1)[-1]

    payload = {
        "event": "ONIMBOTMESSAGEADD",
        "data": {
            "BOT": {str(bot_id()): {"BOT_ID": bot_id()}},
            "PARAMS": {
                "MESSAGE": "Как оформить отпуск?",
                "MESSAGE_ID": 602,
                "FROM_USER_ID": 405,
                "DIALOG_ID": "405",
            },
        },
        "auth": {"application_token": emulator.client_id},
    }
    reply = client.post(WEBHOOK, json=payload)
    second = emulator.wait_for_messages("405", 2)[-1]

    assert reply.get_json()["status"] == "accepted"
    assert second.text == first.text
    assert [b["TEXT"] for b in second.buttons] == [b["TEXT"] for b in first.buttons]


def test_group_chat_answer_goes_to_the_chat(bot, emulator, bot_id) -> None:
    # field report 4: the platform leaves ", " where the mention was
    body = event_body(
        message=", как оформить отпуск",
        dialog_id="chat1157",
        token=emulator.client_id,
        bot_id=bot_id(),
    )

    post(bot.test_client(), body)

    answer = emulator.wait_for_messages("chat1157", 1)[-1]
    assert answer.text.startswith("[b]Как оформить отпуск?[/b]")
    assert emulator.typing_events[-1].dialog_id == "chat1157"


def test_the_readme_curl_examples_work(bot, emulator, database) -> None:
    token = f"auth[application_token]={emulator.client_id}"
    message = (
        "event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE]=Привет"
        "&data[PARAMS][FROM_USER_ID]=405&data[PARAMS][DIALOG_ID]=405&" + token
    )
    command = (
        "event=ONIMCOMMANDADD&data[COMMAND][15][COMMAND]=helpful_yes"
        "&data[COMMAND][15][COMMAND_PARAMS]=47&data[COMMAND][15][COMMAND_ID]=15"
        "&data[COMMAND][15][MESSAGE_ID]=171308&data[PARAMS][FROM_USER_ID]=405"
        "&data[PARAMS][DIALOG_ID]=405&" + token
    )
    client = bot.test_client()

    assert post(client, message.encode()).get_json() == {"status": "accepted"}
    assert post(client, command.encode()).get_json() == {"status": "accepted"}
    assert post(client, command.encode()).get_json() == {"status": "duplicate"}

    replies = {message.text for message in emulator.wait_for_messages("405", 2)}
    assert replies == {"Привет! 👋", texts.BAD_BUTTON}


def test_a_failed_answer_is_marked_and_the_user_told(
    bot, emulator, database, engine, bot_id
) -> None:
    engine.fail = True

    post(bot.test_client(), event_body(token=emulator.client_id, bot_id=bot_id()))

    apology = emulator.wait_for_messages("405", 1)[-1]
    assert apology.text == texts.FAILURE
    assert bot.extensions["faq_bot"].worker.wait_idle()
    with database.session() as session:
        status, error = session.execute(
            select(InboundEvent.status, InboundEvent.error)
        ).one()
    assert status == EventStatus.FAILED
    assert "search is down" in error


def test_events_left_by_a_previous_run_are_answered_on_start(
    make_bot, emulator, database, bot_id
) -> None:
    quiet = make_bot(start_worker=False)
    post(quiet.test_client(), event_body(token=emulator.client_id, bot_id=bot_id()))
    assert bot_messages_sent(emulator) == 0

    make_bot()

    answer = emulator.wait_for_messages("405", 1)[-1]
    assert answer.text.startswith("[b]Как оформить отпуск?[/b]")


# registration


def test_commands_are_registered_on_start_once(make_bot, emulator) -> None:
    make_bot()
    first = {c.command: c.command_id for c in emulator.commands}
    make_bot()

    assert set(first) == {c.name.value for c in COMMANDS}
    assert {c.command: c.command_id for c in emulator.commands} == first
    assert len(emulator.bots) == 1
    assert {"helpful_yes", "helpful_no", "cat"} <= set(first)


def test_the_command_table_has_titles_in_both_languages() -> None:
    names = [c.name.value for c in COMMANDS]

    assert len(names) == len(set(names))
    for command in COMMANDS:
        assert command.title_ru and command.title_en
        assert command.name.value.isascii() and " " not in command.name.value


# the conversation over a predictable engine


def test_choices_are_offered_and_the_pressed_one_recorded(
    bot, emulator, database
) -> None:
    emulator.user_sends("отпуск", 1)
    choices = emulator.wait_for_messages("1", 1)[-1]

    assert choices.text == texts.CHOICES
    labels = [b["TEXT"] for b in choices.buttons]
    assert labels[:2] == [
        "Как оформить отпуск?",
        "Как перенести отпуск на другие даты?",
    ]
    assert labels[-1] == texts.BUTTON_ALL_CATEGORIES

    emulator.press_button(choices.message_id, "Как перенести отпуск на другие даты?")
    opened = emulator.wait_for_messages("1", 2)[-1]

    assert opened.text.startswith("[b]Как перенести отпуск на другие даты?[/b]")
    assert "Как оформить отпуск?" in [b["TEXT"] for b in opened.buttons]
    asked = database.recent_interactions()[-1]
    assert asked.outcome == "choices"
    assert database.get_faq(asked.chosen_faq_id).question.startswith("Как перенести")


def test_not_helpful_offers_the_next_candidates(bot, emulator, database) -> None:
    emulator.user_sends("Как оформить отпуск?", 1)
    answer = emulator.wait_for_messages("1", 1)[-1]

    emulator.press_button(answer.message_id, texts.BUTTON_NO)
    reply = emulator.wait_for_messages("1", 2)[-1]

    labels = [b["TEXT"] for b in reply.buttons]
    assert reply.text.startswith(texts.THANKS_NOT_HELPFUL)
    assert "Как перенести отпуск на другие даты?" in labels
    assert "Как оформить отпуск?" not in labels
    assert labels[-3:] == ["Отпуск и кадры (3)", "IT и доступы (2)", "Офис (2)"]
    assert texts.BUTTON_YES not in [
        b["TEXT"] for b in emulator.message(answer.message_id).buttons
    ]
    assert database.rating_summary() == (0, 1)


# configuration and local mode


def test_a_portal_without_handler_url_stops_start_up(tmp_path, emulator) -> None:
    config = bot_config(tmp_path, emulator, "https://bot.example.ru/webhook/bitrix24")

    with pytest.raises(ConfigError, match="BITRIX24_HANDLER_URL"):
        create_app(config.with_overrides(handler_url=None))


def test_create_app_needs_a_portal_or_local_mode(tmp_path) -> None:
    config = load_config({"DATA_DIR": str(tmp_path)}, env_file=None)

    with pytest.raises(ConfigError, match="BITRIX24_WEBHOOK"):
        create_app(config)


def test_local_mode_points_the_bot_at_a_local_bitrix24(tmp_path) -> None:
    config = load_config({"DATA_DIR": str(tmp_path)}, env_file=None)
    assert config.local_mode

    local, emulator = start_local_bitrix24(config.with_overrides(local_bitrix24_port=0))
    try:
        assert local.webhook_url == emulator.webhook_url
        assert local.client_id == emulator.client_id
        assert local.handler_url == "http://127.0.0.1:5002/webhook/bitrix24"
        assert local.local_bitrix24 and not config.local_bitrix24
        reply = requests.post(f"{local.webhook_url}imbot.bot.list", json={}, timeout=5)
        assert reply.status_code == 200
    finally:
        emulator.stop()

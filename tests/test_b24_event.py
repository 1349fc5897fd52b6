"""Parsing Bitrix24 events: official shapes, both encodings, malformed bodies."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from flask import Flask, request
from werkzeug.datastructures import MultiDict

from b24_event import (
    RECOMMENDED_MAX_CONTENT_LENGTH,
    Bitrix24Event,
    EventType,
    MalformedFormError,
    flatten_php,
    parse_php_form,
)

CLIENT_ID = "vntu29my52f21kbrx5jzjzctktvgvnbi"
AUTH = {
    "domain": "portal.bitrix24.ru",
    "client_endpoint": "https://portal.bitrix24.ru/rest/",
    "server_endpoint": "https://oauth.bitrix.info/rest/",
    "member_id": "a223c6b3710f85df22e9377d6c4f7553",
    "application_token": CLIENT_ID,
}
USER = {
    "ID": "405",
    "NAME": "Иван Петров",
    "FIRST_NAME": "Иван",
    "LAST_NAME": "Петров",
    "WORK_POSITION": "Инженер",
    "GENDER": "M",
}

MESSAGE_EVENT = {
    "event": "ONIMBOTMESSAGEADD",
    "event_handler_id": "403",
    "data": {
        "BOT": {"926": {"BOT_ID": "926", "BOT_CODE": "faqbot"}},
        "PARAMS": {
            "MESSAGE": "Привет",
            "MESSAGE_ID": "171300",
            "MESSAGE_TYPE": "P",
            "CHAT_TYPE": "P",
            "FROM_USER_ID": "405",
            "AUTHOR_ID": "405",
            "TO_USER_ID": "926",
            "DIALOG_ID": "405",
            "TO_CHAT_ID": "2011",
            "SYSTEM": "N",
            "COMMAND_CONTEXT": "TEXTAREA",
            "LANGUAGE": "ru",
            "PLATFORM_CONTEXT": "web",
        },
        "USER": {**USER, "IS_BOT": "N", "IS_CONNECTOR": "N", "IS_NETWORK": "N"},
    },
    "ts": "1731400000",
    "auth": AUTH,
}

GROUP_MESSAGE_EVENT = {
    **MESSAGE_EVENT,
    "data": {
        "BOT": {"926": {"BOT_ID": "926", "BOT_CODE": "faqbot"}},
        "PARAMS": {
            "MESSAGE": ", как оформить [b]отпуск[/b]",
            "MESSAGE_ORIGINAL": "[USER=926]FAQ бот[/USER], как оформить [b]отпуск[/b]",
            "MESSAGE_ID": "171301",
            "MESSAGE_TYPE": "C",
            "CHAT_TYPE": "C",
            "CHAT_ID": "1157",
            "CHAT_TITLE": "Отдел кадров",
            "FROM_USER_ID": "405",
            "TO_USER_ID": "926",
            "DIALOG_ID": "chat1157",
            "MENTIONED_LIST": {"926": "926"},
            "LANGUAGE": "ru",
        },
        "USER": USER,
    },
}

COMMAND_EVENT = {
    "event": "ONIMCOMMANDADD",
    "event_handler_id": "405",
    "data": {
        "COMMAND": {
            "15": {
                "BOT_ID": "926",
                "BOT_CODE": "faqbot",
                "COMMAND": "helpful_yes",
                "COMMAND_ID": "15",
                "COMMAND_PARAMS": "47",
                "COMMAND_CONTEXT": "KEYBOARD",
                "MESSAGE_ID": "171308",
            }
        },
        "PARAMS": {
            "MESSAGE": "/helpful_yes 47",
            "MESSAGE_ID": "171308",
            "MESSAGE_TYPE": "P",
            "CHAT_TYPE": "P",
            "FROM_USER_ID": "405",
            "TO_USER_ID": "926",
            "DIALOG_ID": "405",
            "LANGUAGE": "ru",
        },
        "USER": USER,
    },
    "ts": "1731400010",
    "auth": AUTH,
}

JOIN_EVENT = {
    "event": "ONIMBOTJOINCHAT",
    "event_handler_id": "404",
    "data": {
        "BOT": {"926": {"BOT_ID": "926", "BOT_CODE": "faqbot"}},
        "PARAMS": {
            "CHAT_TYPE": "P",
            "MESSAGE_TYPE": "P",
            "BOT_ID": "926",
            "USER_ID": "405",
            "DIALOG_ID": "405",
            "LANGUAGE": "en",
            "TO_USER_ID": "405",
            "FROM_USER_ID": "926",
        },
        "USER": USER,
    },
    "ts": "1731400020",
    "auth": AUTH,
}

DELETE_EVENT = {
    "event": "ONIMBOTDELETE",
    "event_handler_id": "406",
    "data": {"BOT_ID": "926", "BOT_CODE": "faqbot"},
    "ts": "1731400030",
    "auth": AUTH,
}

QUERY = f"CLIENT_ID={CLIENT_ID}".encode()
FORM = "application/x-www-form-urlencoded"


def as_form(document: dict) -> bytes:
    return urlencode(flatten_php(document)).encode("ascii")


def as_json(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def both_encodings(document: dict) -> tuple[Bitrix24Event, Bitrix24Event]:
    form = Bitrix24Event.from_raw_body(as_form(document), FORM, QUERY)
    from_json = Bitrix24Event.from_raw_body(
        as_json(document), "application/json", QUERY
    )
    return form, from_json


# official shapes, both encodings


@pytest.mark.parametrize(
    "document",
    [MESSAGE_EVENT, GROUP_MESSAGE_EVENT, COMMAND_EVENT, JOIN_EVENT, DELETE_EVENT],
    ids=["message", "group-message", "command", "join", "delete"],
)
def test_official_shapes_parse_the_same_in_both_encodings(document):
    form, from_json = both_encodings(document)

    assert form.is_valid, form.problem
    assert from_json.is_valid, from_json.problem
    assert form.payload == from_json.payload == document
    assert form.client_id == from_json.client_id == CLIENT_ID
    assert form.verify(CLIENT_ID, domain="portal.bitrix24.ru")


def test_message_event_properties():
    event, _ = both_encodings(MESSAGE_EVENT)

    assert event.event_type == EventType.MESSAGE_ADD
    assert (event.is_message, event.is_command, event.is_join_chat) == (
        True,
        False,
        False,
    )
    assert event.message_text == event.raw_message_text == "Привет"
    assert event.user_id == 405
    assert event.dialog_id == "405"
    assert event.chat_type == "P"
    assert event.bot_id == 926
    assert event.bot_code == "faqbot"
    assert event.language == "ru"
    assert event.user_name == "Иван Петров"
    assert event.message_id == 171300
    assert event.command_context == "TEXTAREA"
    assert event.ts == 1731400000
    assert event.event_handler_id == 403
    assert event.auth.application_token == CLIENT_ID
    assert event.auth.member_id == AUTH["member_id"]


def test_command_event_properties():
    event, _ = both_encodings(COMMAND_EVENT)

    assert event.is_command
    assert event.command_name == "helpful_yes"
    assert event.command_params == "47"
    assert event.command_id == 15
    assert event.message_id == 171308
    assert event.command_context == "KEYBOARD"
    assert event.user_id == 405
    assert event.bot_id == 926


def test_join_and_delete_event_properties():
    join, _ = both_encodings(JOIN_EVENT)
    delete, _ = both_encodings(DELETE_EVENT)

    assert join.is_join_chat
    assert join.user_id == 405
    assert join.dialog_id == "405"
    assert join.language == "en"
    assert delete.is_bot_delete
    assert delete.bot_id == 926
    assert delete.bot_code == "faqbot"


def test_from_request_accepts_a_multidict_and_a_nested_dict():
    pairs = flatten_php(COMMAND_EVENT)
    from_form = Bitrix24Event.from_request(MultiDict(pairs), {"CLIENT_ID": CLIENT_ID})
    from_dict = Bitrix24Event.from_request(COMMAND_EVENT, {"CLIENT_ID": CLIENT_ID})
    flat = Bitrix24Event.from_request(dict(pairs), {"CLIENT_ID": CLIENT_ID})

    assert from_form.payload == from_dict.payload == flat.payload
    assert from_form.command_id == 15


def test_json_scalars_become_strings_like_a_form():
    document = {"event": "ONIMBOTDELETE", "data": {"BOT_ID": 926, "FLAG": True}}

    event = Bitrix24Event.from_json(document)

    assert event.payload["data"] == {"BOT_ID": "926", "FLAG": "1"}


# malformed bodies


MALFORMED = [
    (b"", FORM, "empty body"),
    (b"   ", FORM, "empty body"),
    (b"event=", FORM, "missing event type"),
    (b"data[]=x", FORM, "empty bracket"),
    (b"data[123]=x", FORM, "missing event type"),
    (b"event=ONIMBOTMESSAGEADD&data[123]=x", FORM, "numeric key data[123]"),
    (b"event=ONIMBOTMESSAGEADD&data[PARAMS]=x", FORM, "data[PARAMS] is not a map"),
    (b"event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE=x", FORM, "malformed key"),
    (b"event=ONIMBOTMESSAGEADD&data]PARAMS[=x", FORM, "malformed key"),
    (b"=x&event=ONIMBOTMESSAGEADD", FORM, "malformed key"),
    (b"data[PARAMS]=x&data[PARAMS][MESSAGE]=y", FORM, "nests under a value"),
    (b"data[PARAMS][MESSAGE]=y&data[PARAMS]=x", FORM, "conflicting key"),
    (b"event=A&event=B", FORM, "duplicate"),
    (b"event=ONIMBOTMESSAGEADD&data=x", FORM, "data is not a map"),
    (b"event=ONIMBOTMESSAGEADD&auth=x&data[PARAMS][DIALOG_ID]=1", FORM, "auth"),
    (b"event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE]=hi", FORM, "dialog id"),
    (
        b"event=ONIMBOTMESSAGEADD&data[PARAMS][DIALOG_ID]=abc",
        FORM,
        "dialog id",
    ),
    (
        b"event=ONIMCOMMANDADD&data[PARAMS][DIALOG_ID]=1&data[COMMAND]=x",
        FORM,
        "data[COMMAND] is not a map",
    ),
    (
        b"event=ONIMCOMMANDADD&data[PARAMS][DIALOG_ID]=1&data[COMMAND][1]=x",
        FORM,
        "malformed data[COMMAND]",
    ),
    (b"event=ONIMCOMMANDADD&data[PARAMS][DIALOG_ID]=1", FORM, "data[COMMAND]"),
    (b"[]", "application/json", "not an object"),
    (b"{", "application/json", "not valid JSON"),
    (b"{}", "application/json", "empty body"),
    (b'{"event": "X", "data": [1, 2]}', "application/json", "numeric key"),
    (b"\xff\xfe\x00", "application/json", "not valid UTF-8"),
    (b"--x\r\n", "multipart/form-data; boundary=x", "unsupported content type"),
    (b"event=%FF%FE", FORM, "not valid UTF-8"),
]


@pytest.mark.parametrize(("body", "content_type", "problem"), MALFORMED)
def test_malformed_bodies_yield_an_invalid_event(body, content_type, problem):
    event = Bitrix24Event.from_raw_body(body, content_type, b"")

    assert not event.is_valid
    assert problem in event.problem
    assert not event.verify(CLIENT_ID)
    # properties stay safe to read on a rejected event
    assert isinstance(event.message_text, str)
    assert isinstance(event.dialog_id, str)
    assert isinstance(event.user_id, int)


def test_unknown_event_types_are_valid_but_not_routed():
    event = Bitrix24Event.from_raw_body(b"event=ONAPPINSTALL", FORM)

    assert event.is_valid
    assert not (event.is_message or event.is_command or event.is_join_chat)


def test_parse_php_form_raises_its_own_error_for_bad_keys():
    with pytest.raises(MalformedFormError, match="empty bracket"):
        parse_php_form([("data[]", "x")])


def test_flatten_php_round_trips_through_parse():
    document = {"A": {"0": {"TEXT": "x"}, "1": {"TYPE": "NEWLINE"}}, "B": "1"}

    assert parse_php_form(flatten_php(document)) == document
    assert flatten_php({"L": ["a", "b"], "N": None, "T": False}) == [
        ("L[0]", "a"),
        ("L[1]", "b"),
        ("N", ""),
        ("T", "0"),
    ]


# message text cleaning


@pytest.mark.parametrize(
    ("dialog_id", "raw", "expected"),
    [
        ("chat1157", ", как оформить отпуск", "как оформить отпуск"),
        ("chat1157", " :  — как оформить отпуск?", "как оформить отпуск?"),
        ("chat1157", "[b]как[/b] оформить [i]отпуск[/i]", "как оформить отпуск"),
        ("chat1157", "[USER=926]FAQ бот[/USER], отпуск", "отпуск"),
        (
            "chat1157",
            "[USER=77]Анна[/USER] спросила про отпуск",
            "Анна спросила про отпуск",
        ),
        ("chat1157", ", [br]отпуск", "отпуск"),
        ("405", "  ,отпуск  ", ",отпуск"),
        ("405", "[url=http://x.ru]ссылка[/url]", "[url=http://x.ru]ссылка[/url]"),
    ],
)
def test_message_text_is_cleaned_in_group_chats(dialog_id, raw, expected):
    document = json.loads(json.dumps(GROUP_MESSAGE_EVENT))
    document["data"]["PARAMS"].update({"DIALOG_ID": dialog_id, "MESSAGE": raw})

    event = Bitrix24Event.from_json(document)

    assert event.message_text == expected
    assert event.raw_message_text == raw


# origin checks


@pytest.mark.parametrize(
    ("token", "query", "expected"),
    [
        (CLIENT_ID, "", True),
        ("", f"CLIENT_ID={CLIENT_ID}", True),
        ("wrong", "CLIENT_ID=wrong", False),
        ("", "", False),
        (CLIENT_ID[:-1], "", False),
    ],
)
def test_verify_accepts_the_token_or_the_query_parameter(token, query, expected):
    document = json.loads(json.dumps(MESSAGE_EVENT))
    document["auth"]["application_token"] = token

    event = Bitrix24Event.from_raw_body(as_form(document), FORM, query)

    assert event.verify(CLIENT_ID) is expected


def test_verify_checks_domain_and_member_id_when_given():
    event = Bitrix24Event.from_raw_body(as_form(MESSAGE_EVENT), FORM, QUERY)

    assert event.verify(CLIENT_ID, domain="PORTAL.bitrix24.ru")
    assert not event.verify(CLIENT_ID, domain="evil.bitrix24.ru")
    assert not event.verify(CLIENT_ID, member_id="other")
    assert not event.verify("")


# field reports


def test_field_report_1_same_event_two_encodings():
    form_body = (
        "event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE]=Привет"
        "&data[PARAMS][DIALOG_ID]=405&data[PARAMS][FROM_USER_ID]=405"
        "&data[PARAMS][CHAT_TYPE]=P&auth[application_token]=" + CLIENT_ID
    ).encode()
    json_body = json.dumps(
        {
            "event": "ONIMBOTMESSAGEADD",
            "data": {
                "PARAMS": {
                    "MESSAGE": "Привет",
                    "DIALOG_ID": 405,
                    "FROM_USER_ID": 405,
                    "CHAT_TYPE": "P",
                }
            },
            "auth": {"application_token": CLIENT_ID},
        }
    ).encode()

    form = Bitrix24Event.from_raw_body(form_body, FORM)
    from_json = Bitrix24Event.from_raw_body(json_body, "application/json")

    assert form.is_valid and from_json.is_valid
    assert form.payload == from_json.payload
    assert (form.message_text, form.dialog_id, form.user_id) == ("Привет", "405", 405)
    assert (from_json.message_text, from_json.dialog_id) == ("Привет", "405")


def test_field_report_2_numeric_keys_are_kept():
    body = (
        b"event=ONIMCOMMANDADD&data[PARAMS][DIALOG_ID]=405"
        b"&data[COMMAND][15][COMMAND]=helpful_yes&data[COMMAND][15][COMMAND_ID]=15"
        b"&data[COMMAND][15][MESSAGE_ID]=171308"
        b"&data[COMMAND][16][COMMAND]=helpful_no&data[COMMAND][16][COMMAND_ID]=16"
        b"&data[BOT][926][BOT_ID]=926&data[PARAMS][MENTIONED_LIST][926]=926"
        b"&data[PARAMS][MENTIONED_LIST][927]=927"
    )

    event = Bitrix24Event.from_raw_body(body, FORM)

    assert event.is_valid
    assert [(c.key, c.command, c.command_id) for c in event.commands] == [
        ("15", "helpful_yes", 15),
        ("16", "helpful_no", 16),
    ]
    assert event.command_id == 15
    assert event.message_id == 171308
    assert event.bot_id == 926
    assert set(event.bots) == {"926"}
    assert event.mentioned_ids == (926, 927)


@pytest.mark.parametrize(
    "body",
    [
        b"data[]=x",
        b"data[123]=x",
        b"data[PARAMS]=x",
        b"data[PARAMS][MESSAGE",
        b"",
        b"event=",
    ],
)
def test_field_report_3_malformed_keys(body):
    event = Bitrix24Event.from_raw_body(body, FORM, b"")

    assert not event.is_valid
    assert event.problem
    assert not (event.is_message or event.is_command)


def test_field_report_3_malformed_keys_get_a_4xx_from_a_flask_edge():
    app = edge_app()
    client = app.test_client()

    for body in (b"data[]=x", b"data[123]=x", b"data[PARAMS]=x", b"", b"event="):
        response = client.post("/hook", data=body, content_type=FORM)
        assert response.status_code == 400, body


def test_field_report_4_group_chat_mention():
    body = (
        "event=ONIMBOTMESSAGEADD&data[PARAMS][MESSAGE]=, как оформить отпуск"
        "&data[PARAMS][CHAT_TYPE]=C&data[PARAMS][MESSAGE_TYPE]=C"
        "&data[PARAMS][DIALOG_ID]=chat1157&data[PARAMS][FROM_USER_ID]=405"
        "&data[BOT][926][BOT_ID]=926"
    ).encode()

    event = Bitrix24Event.from_raw_body(body, FORM)

    assert event.is_valid
    assert event.message_text == "как оформить отпуск"
    assert event.dialog_id == "chat1157"
    assert event.chat_type == "C"


@pytest.mark.parametrize("params", ["1", "7", "50"])
def test_field_report_5_forged_button_presses(params):
    forged = (
        "event=ONIMCOMMANDADD&data[COMMAND][1][COMMAND]=helpful_yes"
        f"&data[COMMAND][1][COMMAND_PARAMS]={params}"
    ).encode()
    forged_with_dialog = forged + b"&data[PARAMS][DIALOG_ID]=405"
    forged_with_wrong_token = forged_with_dialog + b"&auth[application_token]=guess"

    assert not Bitrix24Event.from_raw_body(forged, FORM).is_valid
    for body in (forged_with_dialog, forged_with_wrong_token):
        event = Bitrix24Event.from_raw_body(body, FORM, b"CLIENT_ID=guess")
        assert event.is_valid
        assert not event.verify(CLIENT_ID)


CP1251_BODY = b"event=ONIMBOTMESSAGEADD&data%5BPARAMS%5D%5BDIALOG_ID%5D=405" + (
    b"&data%5BPARAMS%5D%5BMESSAGE%5D=%CF%F0%E8%E2%E5%F2"
)


def test_field_report_6_cp1251_bytes_are_flagged_unreadable():
    event = Bitrix24Event.from_raw_body(CP1251_BODY, FORM, QUERY)

    assert event.unreadable
    assert not event.is_valid
    assert "cp1251" in event.problem
    assert event.dialog_id == "405"
    assert "Привет" not in event.message_text


def test_field_report_6_cp1251_body_gets_a_400_not_413_or_500():
    response = (
        edge_app().test_client().post("/hook", data=CP1251_BODY, content_type=FORM)
    )

    assert response.status_code == 400
    assert b"cp1251" in response.data


def test_field_report_7_large_bodies_with_the_recommended_limit():
    text = "Оформление отпуска. " * 1000
    document = json.loads(json.dumps(GROUP_MESSAGE_EVENT))
    document["data"]["PARAMS"]["MESSAGE"] = text[:20_000]
    document["data"]["PARAMS"]["MESSAGE_ORIGINAL"] = "[USER=926]Бот[/USER]" + text
    body = as_form(document)
    client = edge_app().test_client()

    accepted = client.post("/hook", data=body, content_type=FORM)
    too_big = client.post(
        "/hook",
        data=b"event=X&data[PARAMS][MESSAGE]=" + b"a" * 600_000,
        content_type=FORM,
    )

    assert len(body) > 200_000
    assert accepted.status_code == 200
    assert too_big.status_code == 413


def edge_app() -> Flask:
    """The recommended Flask edge: raw body in, typed event out, never request.form."""
    app = Flask("edge")
    app.config["MAX_CONTENT_LENGTH"] = RECOMMENDED_MAX_CONTENT_LENGTH

    @app.post("/hook")
    def hook():
        event = Bitrix24Event.from_raw_body(
            request.get_data(), request.content_type, request.query_string
        )
        if not event.is_valid:
            return event.problem, 400
        return quote(event.message_text[:10]), 200

    return app


@pytest.mark.parametrize("value", ["١٢", "1_0", "-5", "%2B7", "12a", str(2**63)])
def test_ids_are_ascii_digits_within_64_bits(value):
    body = (
        "event=ONIMBOTMESSAGEADD&data[PARAMS][DIALOG_ID]=405&data[PARAMS][MESSAGE]=x"
        f"&data[PARAMS][MESSAGE_ID]={value}&data[PARAMS][FROM_USER_ID]={value}"
    ).encode()

    event = Bitrix24Event.from_raw_body(body, FORM)

    assert event.message_id is None
    assert event.user_id == 0

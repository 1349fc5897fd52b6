"""Small talk gets its own reply and never reaches the FAQ search."""

from __future__ import annotations

import random

import pytest

from smalltalk import SmalltalkKind, detect, reply_for, respond


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("привет", SmalltalkKind.GREETING),
        ("Здравствуйте!", SmalltalkKind.GREETING),
        ("добрый день, коллеги", SmalltalkKind.GREETING),
        ("спасибо", SmalltalkKind.THANKS),
        ("Спасибо большое!", SmalltalkKind.THANKS),
        ("спс", SmalltalkKind.THANKS),
        ("пока", SmalltalkKind.GOODBYE),
        ("всего доброго", SmalltalkKind.GOODBYE),
        ("ты бот?", SmalltalkKind.BOT_IDENTITY),
        ("кто ты", SmalltalkKind.BOT_IDENTITY),
        ("как дела?", SmalltalkKind.HOW_ARE_YOU),
        ("ок", SmalltalkKind.ACK),
        ("да", SmalltalkKind.ACK),
        ("Понятно, спасибо", SmalltalkKind.ACK),
        ("нет", SmalltalkKind.NEGATIVE),
        ("помощь", SmalltalkKind.HELP),
        ("?", SmalltalkKind.PUNCTUATION),
        ("...", SmalltalkKind.PUNCTUATION),
        ("👍", SmalltalkKind.EMOJI),
        ("🙂🙂🙂", SmalltalkKind.EMOJI),
        ("👎", SmalltalkKind.NEGATIVE),
        ("😞😞", SmalltalkKind.NEGATIVE),
        ("👍 Полезно", SmalltalkKind.RATING),
        ("👎 Не помогло", SmalltalkKind.RATING),
        ("", SmalltalkKind.EMPTY),
        ("   ", SmalltalkKind.EMPTY),
        (None, SmalltalkKind.EMPTY),
        ("[b][/b]", SmalltalkKind.EMPTY),
        ("привет, спасибо, пока", SmalltalkKind.GREETING),
    ],
)
def test_detect_small_talk(message, kind):
    assert detect(message) is kind


@pytest.mark.parametrize(
    "message",
    [
        "привет, не работает VPN",
        "Здравствуйте, как оформить отпуск?",
        "спасибо, а как заказать пропуск?",
        "отпуск",
        "да, а где справка 2-НДФЛ?",
        "как дела с моей заявкой на отпуск?",
        "ты можешь сбросить пароль?",
    ],
)
def test_real_questions_are_not_small_talk(message):
    assert detect(message) is None
    assert respond(message) is None


@pytest.mark.parametrize("kind", list(SmalltalkKind))
def test_every_kind_has_a_short_russian_reply(kind):
    reply = reply_for(kind, random.Random(1))
    assert 0 < len(reply) <= 200
    assert any("а" <= ch <= "я" for ch in reply.lower()) or kind is SmalltalkKind.EMOJI


@pytest.mark.parametrize("message", ["👍 Полезно", "👍 Помогло", "👎 Не помогло"])
def test_thumbs_up_typed_as_text_claims_no_rating(message):
    found = respond(message)

    assert found is not None and found.kind is SmalltalkKind.RATING
    # typed text stores nothing; only the buttons under an answer rate it
    for seed in range(10):
        variant = reply_for(SmalltalkKind.RATING, random.Random(seed))
        assert "учёл" not in variant and "за оценку" not in variant
        assert "кнопк" in variant


@pytest.mark.parametrize(
    "message",
    [
        "я" * 60_000,
        "Q" * 12_000,
        ("QUJD" * 19 + "\n") * 160,
        "https://example.org/very/long/path",
    ],
)
def test_long_junk_is_not_an_empty_message(message):
    assert detect(message) is SmalltalkKind.JUNK
    assert len(reply_for(SmalltalkKind.JUNK)) < 200


@pytest.mark.parametrize("message", ["", "[b][/b]", "как открыть файл " + "Q" * 500])
def test_junk_needs_a_blob_and_nothing_else(message):
    assert detect(message) is not SmalltalkKind.JUNK


@pytest.mark.parametrize("message", ["👎", "🙁", "👍", "🙂"])
def test_an_emoji_alone_is_never_answered_with_a_thumbs_up(message):
    # a typed 👎 once got «👍 Если появится вопрос…»
    for seed in range(10):
        reply = reply_for(detect(message), random.Random(seed))
        assert "👍" not in reply

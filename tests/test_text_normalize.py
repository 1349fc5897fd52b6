"""Chat messages become the short question that is searched."""

from __future__ import annotations

import pytest

from text_normalize import (
    MAX_QUERY_CHARS,
    TypoCorrector,
    fold_case,
    normalize_query,
    tokenize,
)


@pytest.mark.parametrize(
    ("message", "searched"),
    [
        ("  Как   оформить\tотпуск? ", "как оформить отпуск?"),
        ("ОТПУСК!!!", "отпуск!"),
        ("как так?!?!", "как так?"),
        ("Где взять ёлку", "где взять елку"),
        (
            "Здравствуйте, подскажите пожалуйста, у меня не получается зайти в "
            "почту с телефона, что делать?",
            "у меня не получается зайти в почту с телефона, что делать?",
        ),
        ("Добрый день! Как заказать пропуск? Спасибо заранее", "как заказать пропуск?"),
        ("[USER=12]Иван Петров[/USER], как оформить отпуск", "как оформить отпуск"),
        ("[b]Как[/b] сбросить [i]пароль[/i]?", "как сбросить пароль?"),
        (", как оформить отпуск", "как оформить отпуск"),
        ("посмотри https://example.org/x?y=1 почему не открывается", None),
        ("Здравствуйте! Спасибо!", ""),
        ("", ""),
    ],
)
def test_normalize_query(message, searched):
    result = normalize_query(message).searched
    if searched is None:
        assert "http" not in result and "почему не открывается" in result
    else:
        assert result == searched


def test_long_message_keeps_the_question_sentence():
    message = (
        "Добрый день! Я вчера вернулся из командировки в Казань. Бухгалтерия "
        "попросила отчёт о расходах, я его заполнил. Куда сдавать авансовый "
        "отчёт? Заранее спасибо."
    )
    assert normalize_query(message).searched == "куда сдавать авансовый отчет?"


@pytest.mark.parametrize(
    "blob",
    ["я" * 12_000, "QUJD" * 3_000, ("слово " * 2_000).strip()],
)
def test_field_report_12_long_input_is_capped(blob):
    result = normalize_query(blob)
    assert result.raw == blob
    assert len(result.searched) <= MAX_QUERY_CHARS


def test_fold_case_and_tokenize():
    assert fold_case("ЁЛКА Всё") == "елка все"
    assert tokenize("Справка 2-НДФЛ, VPN!") == ["справка", "2-ндфл", "vpn"]


@pytest.mark.parametrize(
    ("text", "corrected"),
    [
        ("как офромить отпуск", "как оформить отпуск"),
        ("отпск", "отпуск"),
        ("сбросить парль", "сбросить пароль"),
        ("как оформить отпуск", "как оформить отпуск"),
        # real words the faq does not use stay as they are
        ("кошка", "кошка"),
        ("активировать", "активировать"),
    ],
)
def test_typo_corrector(text, corrected):
    vocabulary = ["как", "оформить", "отпуск", "сбросить", "пароль", "деактивировать"]
    known = {"кошка", "активировать", "как", "оформить", "отпуск"}
    corrector = TypoCorrector(vocabulary, is_word=known.__contains__)
    assert corrector.correct(text) == corrected


@pytest.mark.parametrize(
    ("message", "searched"),
    [
        ("[url=http://evil.example]погода на Марсе[/url]", "погода на марсе"),
        (
            "[URL=https://hr.example/a?b=1]Как оформить отпуск[/URL]?",
            "как оформить отпуск?",
        ),
        ("[url]https://hr.example[/url] не открывается", "не открывается"),
        ("[USER=12]Иван Петров[/USER] где пропуск", "где пропуск"),
    ],
)
def test_link_text_is_searched(message, searched):
    assert normalize_query(message).searched == searched

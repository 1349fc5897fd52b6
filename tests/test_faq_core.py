"""The shared pipeline: small talk, answers, choices and silence."""

from __future__ import annotations

import pytest

from faq_core import Candidate, EngineSettings, FAQEngine, Outcome, Reply, calibrate


def _question(reply: Reply) -> str | None:
    return reply.answer.question if reply.answer else None


@pytest.mark.parametrize(
    ("message", "question"),
    [
        ("Как оформить отпуск?", "Как оформить отпуск?"),
        ("хочу в отпуск", "Как оформить отпуск?"),
        ("когда зарплата", "Когда выплачивают зарплату?"),
        ("привет, не работает VPN", "Как подключиться к VPN из дома?"),
        (
            "Здравствуйте, подскажите пожалуйста, у меня не получается зайти в "
            "почту с телефона, что делать?",
            "Как сбросить пароль от рабочей почты?",
        ),
        (
            "[USER=5]Бот[/USER], как заказать пропуск гостю?",
            "Как заказать пропуск для гостя?",
        ),
        (
            "Добрый день! Завтра ко мне приедет партнёр из другой компании. "
            "Как заказать ему пропуск? Спасибо заранее",
            "Как заказать пропуск для гостя?",
        ),
    ],
)
def test_answers_a_clear_question(search_faq_engine, message, question):
    reply = search_faq_engine.ask(message)
    assert reply.outcome is Outcome.ANSWERED
    assert _question(reply) == question
    assert reply.candidates[0] == reply.answer
    assert reply.choices == ()


@pytest.mark.parametrize(
    "message",
    ["Что сегодня на обед в столовой?", "погода в Москве", "курс биткоина"],
)
def test_no_confident_answer_for_out_of_scope(search_faq_engine, message):
    reply = search_faq_engine.ask(message)
    assert reply.outcome in (Outcome.NO_ANSWER, Outcome.CHOICES)
    assert reply.answer is None
    assert reply.text_searched


def test_offers_choices_when_two_entries_are_close(search_faq_engine):
    engine = FAQEngine(
        search_faq_engine.database,
        search_faq_engine.search,
        settings=EngineSettings(answer_margin=50.0),
    )
    reply = engine.ask("как оформить")
    assert reply.outcome is Outcome.CHOICES
    assert reply.answer is None
    assert 2 <= len(reply.choices) <= 4
    assert {c.question for c in reply.choices[:2]} == {
        "Как оформить отпуск?",
        "Как оформить больничный?",
    }


def test_candidates_are_ranked_and_calibrated(search_faq_engine):
    reply = search_faq_engine.ask("как оформить отпуск", limit=3)
    assert len(reply.candidates) == 3
    assert all(isinstance(c, Candidate) for c in reply.candidates)
    assert all(0.0 <= c.score <= 100.0 for c in reply.candidates)
    assert reply.candidates[0].score > reply.candidates[1].score
    assert reply.took_ms > 0


def test_calibration_stretches_e5_scores():
    assert calibrate(0.80, 0.0, "multilingual-e5-small", 8.0) == 20.0
    assert calibrate(1.0, 1.0, "multilingual-e5-small", 8.0) == 100.0
    assert calibrate(0.5, 0.0, "all-MiniLM-L6-v2", 8.0) == 50.0


def test_threshold_overrides_the_default(search_faq_engine):
    strict = FAQEngine(
        search_faq_engine.database, search_faq_engine.search, threshold=100.0
    )
    assert strict.threshold == 100.0
    assert strict.ask("хочу в отпуск").outcome is not Outcome.ANSWERED


def test_faq_edit_rebuilds_the_lexical_index(search_faq_engine):
    database = search_faq_engine.database
    record = database.add_faq(
        "Как подключить корпоративный мессенджер Тамтам?", "Скачайте клиент.", "ИТ"
    )
    try:
        reply = search_faq_engine.ask("тамтам")
        assert reply.candidates[0].faq_id == record.id
    finally:
        database.delete_faq(record.id)
    reply = search_faq_engine.ask("тамтам")
    assert all(c.faq_id != record.id for c in reply.candidates)


@pytest.mark.parametrize(
    "message", ["привет", "спасибо", "ок", "да", "?", "👍", "👍 Полезно", "ты бот?"]
)
def test_field_report_13_small_talk_never_gets_an_faq_entry(search_faq_engine, message):
    reply = search_faq_engine.ask(message)
    assert reply.outcome is Outcome.SMALLTALK
    assert reply.smalltalk_reply
    assert reply.answer is None and reply.candidates == () and reply.choices == ()


@pytest.mark.parametrize(
    "message", ["как офромить отпуск", "отпск", "ОТПУСК!!!", "Как оформить отпуск?"]
)
def test_field_report_14_typos(search_faq_engine, message):
    reply = search_faq_engine.ask(message)
    top = reply.answer or (reply.choices[0] if reply.choices else None)
    assert reply.outcome in (Outcome.ANSWERED, Outcome.CHOICES)
    assert top is not None and top.question == "Как оформить отпуск?"


def test_field_report_15_off_topic_and_negation(search_faq_engine):
    lunch = search_faq_engine.ask("Что сегодня на обед в столовой?")
    assert lunch.outcome is Outcome.NO_ANSWER

    negated = search_faq_engine.ask("Я НЕ хочу в отпуск, как отменить?")
    assert negated.outcome is not Outcome.ANSWERED
    assert negated.answer is None


@pytest.mark.parametrize("message", ["", "   ", None, "[b][/b]"])
def test_field_report_16_empty_message(search_faq_engine, message):
    reply = search_faq_engine.ask(message)
    assert reply.outcome is Outcome.EMPTY
    assert reply.smalltalk_reply
    assert reply.text_searched == "" and reply.candidates == ()


def test_politeness_only_is_small_talk(search_faq_engine):
    reply = search_faq_engine.ask("Здравствуйте, подскажите пожалуйста")
    assert reply.outcome is Outcome.SMALLTALK
    assert reply.candidates == ()


class _HitsOnly:
    """A dense search with `search` alone, as a stand-in front end might pass."""

    def __init__(self, search) -> None:
        self.embedder = search.embedder
        self._search = search

    def search(self, text, limit=5):
        return self._search.search(text, limit=limit)


def test_a_search_without_score_all_still_gives_the_three_outcomes(
    search_faq_engine,
):
    engine = FAQEngine(search_faq_engine.database, _HitsOnly(search_faq_engine.search))

    assert _question(engine.ask("Как оформить отпуск?")) == "Как оформить отпуск?"
    assert engine.ask("погода в Москве").answer is None
    tie = FAQEngine(
        engine.database, engine.search, settings=EngineSettings(answer_margin=50.0)
    ).ask("как оформить")
    assert tie.outcome is Outcome.CHOICES and len(tie.choices) >= 2

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


# --- off-topic text, "did you mean" and related questions on the demo FAQ ------


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory, embedder):
    """A FAQEngine over the demo FAQ that `python demo_faq.py` loads."""
    from database import Database
    from demo_faq import load_demo
    from faq_search import FAQSearch

    folder = tmp_path_factory.mktemp("demo-faq")
    db = Database(f"sqlite:///{folder / 'faq.db'}")
    db.init_schema()
    load_demo(db)
    search = FAQSearch(db, embedder, chroma_path=folder / "chroma")
    yield FAQEngine(db, search)
    search.close()
    db.close()


@pytest.mark.parametrize(
    "message",
    [
        "погода на Марсе",
        "погода в Москве",
        "рецепт борща",
        "как приготовить пиццу",
        "сколько будет два плюс два",
        "кто выиграл чемпионат мира по футболу",
        "как выучить python",
        "zzzz qqqq",
        "ывапролдж",
    ],
)
def test_off_topic_questions_get_no_choices(demo_engine, message):
    reply = demo_engine.ask(message)
    assert reply.outcome is Outcome.NO_ANSWER
    assert reply.choices == () and reply.answer is None


@pytest.mark.parametrize(
    ("message", "question"),
    [
        ("впн не подключается", "Как подключиться к VPN из дома?"),
        (
            "забыл пароль от почты",
            "Я забыл пароль от почты или компьютера. Что делать?",
        ),
        ("когда придёт зарплата", "Когда выплачивают зарплату?"),
        ("как заказать пропуск гостю", "Как заказать пропуск для гостя?"),
        ("где поесть", "Где и когда можно пообедать?"),
        ("комната для совещаний", "Как забронировать переговорную?"),
        ("как поставить программу", "Как установить программу на рабочий компьютер?"),
        ("хочу на удалёнку", "Как перейти на удалённую или гибридную работу?"),
        ("где взять суточные", "Какие суточные в командировке?"),
        (
            "кто чинит кондиционер",
            "К кому обратиться, если сломался стул, не работает свет или кондиционер?",
        ),
    ],
)
def test_in_scope_paraphrases_are_still_found(demo_engine, message, question):
    reply = demo_engine.ask(message)
    offered = [reply.answer] if reply.answer else list(reply.choices)
    assert question in {c.question for c in offered}


def test_choices_rest_on_shared_content(demo_engine):
    settings = EngineSettings(answer_margin=50.0)
    tie = FAQEngine(demo_engine.database, demo_engine.search, settings=settings)

    reply = tie.ask("отпуск")

    assert reply.outcome is Outcome.CHOICES
    assert all(c.evidence > 0 or c.ngram >= 25 for c in reply.choices)
    assert "Как оформить ежегодный отпуск?" in {c.question for c in reply.choices}


def test_related_questions_need_more_than_a_shared_verb(demo_engine):
    vpn = demo_engine.ask("не работает VPN")
    assert vpn.answer is not None
    related = {
        c.question for c in vpn.candidates[1:] if c.score >= demo_engine.related_floor
    }
    assert related == set()

    lost = demo_engine.ask("потерял пропуск")
    related = {
        c.question for c in lost.candidates[1:] if c.score >= demo_engine.related_floor
    }
    assert "Как заказать пропуск для гостя?" in related
    assert demo_engine.related_floor > demo_engine.answer_floor


def test_link_text_is_searched(search_faq_engine):
    reply = search_faq_engine.ask("[url=http://evil.example]погода на Марсе[/url]")
    assert reply.text_searched == "погода на марсе"
    assert reply.outcome is Outcome.NO_ANSWER

    linked = search_faq_engine.ask("[url=https://hr.example]как оформить отпуск[/url]")
    assert _question(linked) == "Как оформить отпуск?"


def _base64_blob() -> str:
    import base64

    return base64.encodebytes(bytes(range(256)) * 36).decode()


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param("я" * 60_000, id="one-letter"),
        pytest.param(" ".join(["я"] * 60_000), id="one-word"),
        pytest.param(_base64_blob(), id="base64"),
        pytest.param("абвгдежзиклмнопрстуфхцчшщэюя" * 430, id="no-spaces"),
    ],
)
def test_long_junk_gets_a_short_reply(search_faq_engine, blob):
    import tracemalloc

    tracemalloc.start()
    reply = search_faq_engine.ask(blob)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert reply.outcome is Outcome.SMALLTALK
    assert reply.answer is None and reply.candidates == ()
    assert reply.smalltalk_reply and "вопрос" in reply.smalltalk_reply
    assert len(reply.smalltalk_reply) < 200
    # the message is cut before any regex runs: no copy of it is made
    assert peak < 2_000_000

"""The BM25 ranker over Russian stems."""

from __future__ import annotations

import pytest

from lexical import (
    CharNgramIndex,
    LexicalDoc,
    LexicalIndex,
    RussianAnalyzer,
    char_ngrams,
)

DOCS = (
    LexicalDoc(1, "Как оформить отпуск?", ("Заявление на отпуск",), "Через кадры."),
    LexicalDoc(2, "Как оформить больничный?", (), "Пришлите номер листка."),
    LexicalDoc(3, "Как подключиться к VPN из дома?", ("Не работает VPN",), ""),
    LexicalDoc(4, "Как получить справку 2-НДФЛ?", (), "В разделе «Документы»."),
    LexicalDoc(5, "Где припарковать машину?", (), "На парковке у офиса."),
)


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex(DOCS)


@pytest.mark.parametrize(
    ("query", "faq_id"),
    [
        ("отпуска", 1),
        ("оформление отпуском", 1),
        ("впн", None),
        ("vpn не подключается", 3),
        ("справку ндфл", 4),
        ("2-ндфл", 4),
        ("парковка", 5),
        ("документы", 4),
    ],
)
def test_morphology_finds_the_entry(index, query, faq_id):
    hits = index.search(query)
    assert (hits[0].faq_id if hits else None) == faq_id


def test_stop_words_alone_find_nothing(index):
    assert index.search("как где что") == []


def test_coverage_is_the_share_of_query_weight(index):
    full = index.search("оформить отпуск")[0]
    part = index.search("оформить отпуск срочно")[0]
    assert full.faq_id == part.faq_id == 1
    assert full.coverage == pytest.approx(1.0)
    assert 0.0 < part.coverage < 1.0


def test_answer_words_count_less_than_question_words():
    index = LexicalIndex(
        [
            LexicalDoc(1, "Где взять пропуск?", (), "Пропуск выдаёт секретарь."),
            LexicalDoc(2, "Кто такой секретарь?", (), ""),
        ]
    )
    assert index.search("секретарь")[0].faq_id == 2


def test_typo_corrector_uses_faq_words(index):
    assert index.corrector.correct("как офромить отпск") == "как оформить отпуск"
    assert index.corrector.correct("кошка") == "кошка"


def test_an_index_of_300_entries_finds_its_own_questions():
    # how long building and searching take is benchmark.py's to print
    analyzer = RussianAnalyzer()
    docs = [
        LexicalDoc(n, f"Вопрос номер {n} про отпуск и пропуск {n * 7}", (), "ответ")
        for n in range(300)
    ]
    index = LexicalIndex(docs, analyzer=analyzer)

    assert len(index) == 300
    assert index.search("пропуск 2093")[0].faq_id == 299


def test_char_ngrams_link_a_typo_the_stems_miss():
    ngrams = CharNgramIndex(DOCS)
    scores = ngrams.scores("как офромить отпуск")

    assert ngrams.faq_ids[int(scores.argmax())] == 1
    assert scores.min() >= 0.0 and scores.max() <= 1.0 + 1e-9
    # the question itself, n-gram for n-gram, is the best possible match
    exact = ngrams.scores("Как подключиться к VPN из дома?")
    assert ngrams.faq_ids[int(exact.argmax())] == 3 and exact.max() > 0.8
    assert not ngrams.scores("zzz qqq").any()
    assert not ngrams.scores("").any()


def test_char_ngrams_of_a_word_are_padded():
    grams = char_ngrams("Отпуск")
    assert {" от", "отп", "ск ", " отпу", "пуск "} <= set(grams)
    assert "ё" not in "".join(char_ngrams("ёлка"))


def test_char_ngrams_rank_300_entries():
    docs = [
        LexicalDoc(n, f"Вопрос номер {n} про отпуск и пропуск {n * 7}", (), "ответ")
        for n in range(300)
    ]
    ngrams = CharNgramIndex(docs)

    scores = ngrams.scores("вопрос про отпуск номер 42 294")

    assert len(scores) == len(ngrams) == 300
    assert ngrams.faq_ids[int(scores.argmax())] == 42


def test_evidence_counts_topic_words_of_the_question_only(index):
    hits = {hit.faq_id: hit for hit in index.search("отпуск кадры")}
    # «кадры» is only in the answer of entry 1, «отпуск» in its question
    assert 0.0 < hits[1].evidence < 1.0
    assert hits[1].coverage == pytest.approx(1.0)

    vague = {hit.faq_id: hit for hit in index.search("сколько будет отпуск")}
    assert vague[1].evidence == pytest.approx(1.0)


def test_has_known_words(index):
    assert index.has_known_words("погода на марсе")
    assert index.has_known_words("vpn")
    assert not index.has_known_words("zzzz qqqq")
    assert not index.has_known_words("ывапролдж")

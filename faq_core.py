"""The question-answering pipeline every front end shares.

One message goes through these steps:

1. small talk and empty messages get a reply of their own, never an FAQ entry;
2. the text is cleaned (markup, greetings, politeness, case, ё, long
   context) and misspelt words are corrected against the FAQ vocabulary;
3. dense search (`faq_search.FAQSearch`), a BM25 ranker over Russian stems
   and a TF-IDF ranker over character n-grams (`lexical`) score every entry;
   the ranking fuses their per-query z-scores, the dense one taken on
   vectors centred on the FAQ's mean (less crowding of e5's narrow cone);
4. the best entry gets a calibrated score in 0..100 and the bot answers,
   offers a few close entries ("did you mean"), or admits it has no answer;
   an offered entry must share a topic word or character n-grams with the
   query, since e5 scores off-topic text nearly as high as a paraphrase.

The calibrated score stretches the model's compressed cosine similarity so
that unrelated text lands near 0 and a word-for-word match above 90, plus a
bonus of up to 16 points when the entry contains the query's rare words. The
threshold is given in similarity points (cosine * 100, as `SIMILARITY_THRESHOLD` and
`embeddings.DEFAULT_THRESHOLDS`) and mapped through the same stretch.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embeddings import default_threshold, is_e5, score_from_cosine
from lexical import (
    CharNgramIndex,
    LexicalDoc,
    LexicalIndex,
    RussianAnalyzer,
    topic_words,
)
from models import Outcome
from smalltalk import SmalltalkKind, reply_for, respond
from text_normalize import fold_case, normalize_query

logger = logging.getLogger(__name__)

__all__ = ["Candidate", "EngineSettings", "FAQEngine", "Outcome", "Reply"]

# the e5 family scores unrelated russian text near 0.75-0.80 and paraphrases
# near 0.85-0.95; these bounds stretch that band over 0..100
E5_COSINE_FLOOR = 0.75
E5_COSINE_CEILING = 1.0

# phrases that turn a request into its opposite («я не хочу в отпуск, как
# отменить?»); an entry without any reversal word answers the opposite question
REVERSAL_QUERY = re.compile(
    r"\bне (хочу|хотим|хочет|надо|нужно|нужен|нужна|буду|будем|планирую)\b"
    r"|\b(отмен|отказ|отозв|аннулир|расторг)[а-я]*"
)
REVERSAL_ENTRY = re.compile(r"\b(не|нет|отмен|отказ|отозв|аннулир|расторг)[а-я]*")


@dataclass(frozen=True)
class EngineSettings:
    """Tuning of the pipeline; the defaults were chosen with benchmark.py."""

    # weights of the BM25 and the character n-gram z-scores next to the
    # dense one in the ranking
    lexical_weight: float = 0.1
    ngram_weight: float = 0.15
    # calibrated points added when the entry covers all of the query's words
    coverage_bonus: float = 16.0
    # an answer needs this lead over the runner-up in the fused ranking
    # (z-score units); a near tie becomes "did you mean". Wider leads, or a
    # lead in calibrated points, cost answer accuracy on every set
    answer_margin: float = 0.05
    # below the threshold, candidates this close to it are offered as choices;
    # 12 offered nearly every off-topic question something (docs/benchmarks.md)
    choices_band: float = 8.0
    # and only those within this distance of the best one
    choices_spread: float = 8.0
    max_choices: int = 4
    # a choice must share a topic word with the entry's question or phrasings,
    # or this much of their character n-grams (0..100): the dense score alone
    # ranks unrelated entries as high as paraphrases
    choice_ngram: float = 25.0
    # related questions under an answer need this many calibrated points
    # above the answer floor; sharing «не работает» with the answer's query
    # is not enough (demo FAQ: unrelated entries score 50-69 there)
    related_margin: float = 20.0
    # hits fetched from a search without `score_all`; FAQSearch scores all
    dense_depth: int = 400


@dataclass(frozen=True)
class Candidate:
    faq_id: int
    question: str
    answer: str
    category: str
    category_id: int | None
    # calibrated 0..100; the threshold is in these units
    score: float
    # cosine similarity of the best question or phrasing, 0..100
    dense: float
    # share of the query's weight found in the entry's words, 0..100
    lexical: float
    matched_text: str
    # share of the query's topic words found in the entry's question or
    # phrasings, 0..100: what a "did you mean" offer has to rest on
    evidence: float = 0.0
    # cosine of the character n-grams of the query's topic words and the
    # entry's question and phrasings, 0..100
    ngram: float = 0.0
    # the query and the entry share content, not just a cosine: what any
    # offer of the entry ("did you mean", "maybe this") has to rest on
    supported: bool = False


@dataclass(frozen=True)
class Reply:
    outcome: Outcome
    text_raw: str
    text_searched: str
    candidates: tuple[Candidate, ...] = ()
    answer: Candidate | None = None
    choices: tuple[Candidate, ...] = ()
    smalltalk_reply: str | None = None
    took_ms: float = 0.0


@dataclass(frozen=True)
class _Snapshot:
    """The FAQ as of one revision, with the lexical index built over it."""

    revision: int
    faqs: dict[int, Any] = field(default_factory=dict)
    lexical: LexicalIndex | None = None
    ngrams: CharNgramIndex | None = None
    negated: frozenset[int] = frozenset()


def calibrate(cosine: float, coverage: float, model_name: str, bonus: float) -> float:
    """Map a dense cosine (0..1) and lexical coverage (0..1) to 0..100."""
    if is_e5(model_name):
        span = E5_COSINE_CEILING - E5_COSINE_FLOOR
        base = (cosine - E5_COSINE_FLOOR) / span * 100.0
    else:
        base = cosine * 100.0
    return round(min(max(base + bonus * coverage, 0.0), 100.0), 2)


def _zscores(values: np.ndarray) -> np.ndarray:
    """Per-query z-scores over the whole FAQ; all zero when nothing varies."""
    spread = float(values.std()) if len(values) > 1 else 0.0
    if spread < 1e-9:
        return np.zeros(len(values))
    return (values - values.mean()) / spread


class FAQEngine:
    """Answers one message: small talk, an FAQ entry, choices, or nothing."""

    def __init__(
        self,
        database: Any,
        search: Any,
        threshold: float | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        self.database = database
        self.search = search
        self.settings = settings or EngineSettings()
        self.model_name = str(getattr(search.embedder, "name", ""))
        # the threshold comes in similarity points (cosine * 100), the unit of
        # SIMILARITY_THRESHOLD and faq_search; decisions use calibrated points
        self.threshold = (
            float(threshold)
            if threshold is not None
            else float(default_threshold(self.model_name))
        )
        self.answer_floor = calibrate(self.threshold / 100.0, 0.0, self.model_name, 0.0)
        # the lowest score of a related question shown under an answer
        self.related_floor = min(
            self.answer_floor + self.settings.related_margin, 100.0
        )
        self._analyzer = RussianAnalyzer()
        self._lock = threading.Lock()
        self._snapshot = _Snapshot(revision=-1)
        logger.info(
            "faq engine ready: model %s, threshold %.1f (%.1f calibrated)",
            self.model_name,
            self.threshold,
            self.answer_floor,
        )

    # ------------------------------------------------------------ public

    def ask(self, text: str, limit: int = 5) -> Reply:
        """Decide what to say to `text`; `limit` caps the ranked candidates."""
        started = time.perf_counter()
        raw = text or ""

        smalltalk = respond(raw)
        if smalltalk is not None:
            outcome = (
                Outcome.EMPTY
                if smalltalk.kind is SmalltalkKind.EMPTY
                else Outcome.SMALLTALK
            )
            return Reply(
                outcome=outcome,
                text_raw=raw,
                text_searched="",
                smalltalk_reply=smalltalk.reply,
                took_ms=_elapsed(started),
            )

        searched = normalize_query(raw).searched
        if not searched:
            # nothing but politeness and markup: greet back rather than search
            return Reply(
                outcome=Outcome.SMALLTALK,
                text_raw=raw,
                text_searched="",
                smalltalk_reply=reply_for(SmalltalkKind.GREETING),
                took_ms=_elapsed(started),
            )

        snapshot = self._fresh_snapshot()
        if snapshot.lexical is not None:
            searched = snapshot.lexical.corrector.correct(searched)

        candidates, lead = self._rank(searched, snapshot, max(limit, 1))
        outcome, answer, choices = self._decide(searched, candidates, lead, snapshot)
        reply = Reply(
            outcome=outcome,
            text_raw=raw,
            text_searched=searched,
            candidates=tuple(candidates[:limit]),
            answer=answer,
            choices=choices,
            took_ms=_elapsed(started),
        )
        logger.debug(
            "asked %r: %s, top %s at %.1f, %.1f ms",
            searched,
            outcome.value,
            candidates[0].faq_id if candidates else None,
            candidates[0].score if candidates else 0.0,
            reply.took_ms,
        )
        return reply

    def refresh(self) -> None:
        """Rebuild the lexical index now if the FAQ changed since the last one."""
        self._fresh_snapshot()

    # ----------------------------------------------------------- helpers

    def _fresh_snapshot(self) -> _Snapshot:
        revision = self.database.faq_revision()
        snapshot = self._snapshot
        if snapshot.revision == revision:
            return snapshot

        with self._lock:
            if self._snapshot.revision == revision:
                return self._snapshot

            faqs = {faq.id: faq for faq in self.database.list_faqs()}
            docs = [
                LexicalDoc(faq.id, faq.question, tuple(faq.phrasings), faq.answer)
                for faq in faqs.values()
            ]
            lexical = LexicalIndex(docs, analyzer=self._analyzer)
            ngrams = CharNgramIndex(docs)
            negated = frozenset(
                faq.id
                for faq in faqs.values()
                if REVERSAL_ENTRY.search(
                    fold_case(" ".join((faq.question, *faq.phrasings)))
                )
            )
            self._snapshot = _Snapshot(revision, faqs, lexical, ngrams, negated)
            logger.info(
                "lexical index rebuilt for faq revision %s: %d entries",
                revision,
                len(faqs),
            )
            return self._snapshot

    def _dense(
        self, searched: str, ids: list[int], limit: int
    ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """Raw and centred cosines for `ids`, and the text each one matched."""
        cosine = np.full(len(ids), np.nan)
        centred = np.full(len(ids), np.nan)
        matched: dict[int, str] = {}
        position = {faq_id: k for k, faq_id in enumerate(ids)}
        score_all = getattr(self.search, "score_all", None)
        if score_all is not None:
            scores = score_all(searched)
            if scores is not None:
                for k, faq_id in enumerate(scores.faq_ids):
                    if faq_id in position:
                        cosine[position[faq_id]] = scores.cosine[k]
                        centred[position[faq_id]] = scores.centred[k]
                        matched[faq_id] = scores.matched_text[k]
        else:
            # a search without score_all (a stand-in): its top hits, uncentred
            depth = max(min(self.settings.dense_depth, len(ids)), limit)
            for hit in self.search.search(searched, limit=depth):
                if hit.faq_id in position:
                    cosine[position[hit.faq_id]] = hit.score / 100.0
                    matched[hit.faq_id] = hit.matched_text
            centred = cosine.copy()
        # entries the index does not hold yet count as the weakest seen, so
        # the z-scores stay comparable
        for values in (cosine, centred):
            known = ~np.isnan(values)
            values[~known] = values[known].min() if known.any() else 0.0
        return cosine, centred, matched

    def _rank(
        self, searched: str, snapshot: _Snapshot, limit: int
    ) -> tuple[list[Candidate], float]:
        """Candidates best first, and the lead of the first in fused z-units."""
        settings = self.settings
        ids = list(snapshot.faqs)
        if not ids:
            return [], 0.0

        cosine, centred, matched = self._dense(searched, ids, limit)
        bm25 = np.zeros(len(ids))
        coverage = np.zeros(len(ids))
        evidence = np.zeros(len(ids))
        if snapshot.lexical is not None:
            position = {faq_id: k for k, faq_id in enumerate(ids)}
            for hit in snapshot.lexical.search(searched):
                bm25[position[hit.faq_id]] = hit.score
                coverage[position[hit.faq_id]] = hit.coverage
                evidence[position[hit.faq_id]] = hit.evidence
        fused = _zscores(centred) + settings.lexical_weight * _zscores(bm25)
        topic_ngrams = np.zeros(len(ids))
        if snapshot.ngrams is not None:
            fused += settings.ngram_weight * _zscores(snapshot.ngrams.scores(searched))
            # n-grams of «как», «сколько», «что делать» are no sign of a topic
            topic = topic_words(searched)
            if topic:
                topic_ngrams = snapshot.ngrams.scores(" ".join(topic))

        order = sorted(range(len(ids)), key=lambda k: (-fused[k], ids[k]))
        lead = float(fused[order[0]] - fused[order[1]]) if len(ids) > 1 else 1e9
        candidates = []
        for k in order[: max(limit, settings.max_choices + 1)]:
            faq = snapshot.faqs[ids[k]]
            candidates.append(
                Candidate(
                    faq_id=faq.id,
                    question=faq.question,
                    answer=faq.answer,
                    category=faq.category,
                    category_id=faq.category_id,
                    score=calibrate(
                        float(cosine[k]),
                        float(coverage[k]),
                        self.model_name,
                        settings.coverage_bonus,
                    ),
                    dense=score_from_cosine(float(cosine[k])),
                    lexical=round(float(coverage[k]) * 100.0, 2),
                    matched_text=matched.get(faq.id, faq.question),
                    evidence=round(float(evidence[k]) * 100.0, 2),
                    ngram=round(float(topic_ngrams[k]) * 100.0, 2),
                    supported=bool(
                        evidence[k] > 0.0
                        or topic_ngrams[k] * 100.0 >= settings.choice_ngram
                    ),
                )
            )
        return candidates, lead

    def _decide(
        self,
        searched: str,
        candidates: list[Candidate],
        lead: float,
        snapshot: _Snapshot,
    ) -> tuple[Outcome, Candidate | None, tuple[Candidate, ...]]:
        if not candidates:
            return Outcome.NO_ANSWER, None, ()

        settings = self.settings
        best = candidates[0]
        flips_meaning = bool(REVERSAL_QUERY.search(searched)) and (
            best.faq_id not in snapshot.negated
        )

        if (
            best.score >= self.answer_floor
            and lead >= settings.answer_margin
            and not flips_meaning
        ):
            return Outcome.ANSWERED, best, ()

        floor = self.answer_floor - settings.choices_band
        if best.score < floor:
            return Outcome.NO_ANSWER, None, ()

        # keyboard mashing scores 40-45 against any FAQ; offer nothing
        if snapshot.lexical is not None and not snapshot.lexical.has_known_words(
            searched
        ):
            return Outcome.NO_ANSWER, None, ()

        choices = tuple(
            c
            for c in candidates[: settings.max_choices]
            if c.score >= max(floor, best.score - settings.choices_spread)
            and c.supported
        )
        if not choices:
            return Outcome.NO_ANSWER, None, ()
        return Outcome.CHOICES, None, choices


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 2)


def build_engine(
    config: Any, database: Any, search: Any = None
) -> tuple[Any, FAQEngine]:
    """The configured search index (a local folder or a Chroma server) and engine.

    Every front end and the admin build them the same way, so they rank the
    same vectors with the same threshold.
    """
    from embeddings import make_embedder
    from faq_search import FAQSearch, make_chroma_client

    if search is None:
        embedder = make_embedder(config.model_name, config.embedding_threads)
        if config.chroma_host:
            client = make_chroma_client(
                host=config.chroma_host, port=config.chroma_port
            )
            search = FAQSearch(database, embedder, client=client)
        else:
            # a folder shared by the bot and the admin: FAQSearch coordinates
            # their writes through its lock and generation files
            search = FAQSearch(database, embedder, chroma_path=config.chroma_path)
    engine = FAQEngine(database, search, threshold=config.similarity_threshold)
    return search, engine

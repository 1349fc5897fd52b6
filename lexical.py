"""Lexical rankers for FAQ entries: BM25 over word stems, TF-IDF over n-grams.

The dense model misses rare exact terms (product names, «VPN», «НДФЛ») and
the lexical rankers miss paraphrases; the pipeline fuses all three. For BM25
each FAQ entry is one document made of its question, its extra phrasings and,
with a smaller weight, its answer. Words are folded to lower case, ё to е, and
reduced to Snowball stems, so «отпуска», «отпуском» and «отпуск» match.

`CharNgramIndex` compares character 3-5-grams of words instead: it needs no
stemmer, so it still links words the stemmer or the typo corrector miss
(«офромить», «впн-клиент», suffixes Snowball cuts differently).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pymorphy3
import Stemmer

from text_normalize import TypoCorrector, tokenize

logger = logging.getLogger(__name__)

# function words that match everywhere and rank nothing
_STOP_WORDS_TEXT = """
    а без более бы был была были было быть в вам вас ваш вот во вы где да даже
    для до его ее ей ему если есть еще же за здесь и из или им их к как какая
    какой ко когда кто ли либо мне мной мое мой мы на над нам нас наш не него
    нее нет ни них но ну о об однако он она они оно от очень по под при про с
    сам со так также там тем то того тоже той только том ты у уж уже хотя чего
    чей чем что чтобы чье эта эти это этого этой этом этот я
    пожалуйста подскажите скажите можно мочь могу может ли
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
# words that ask or hedge but name no topic: sharing «сколько» or «что делать»
# with an entry is no sign that the entry is about the same thing
_VAGUE_WORDS_TEXT = """
    сколько куда откуда почему зачем какие каких каким какое какую каком
    будет будут делать сделать нужно надо нужен нужна нужны хочу хотим
"""
VAGUE_WORDS = frozenset(_VAGUE_WORDS_TEXT.split())

# bm25 constants; short documents (questions) favour a mild length penalty
DEFAULT_K1 = 1.2
DEFAULT_B = 0.5
# an answer is long and wordy: its words count, but less than the question's
DEFAULT_ANSWER_WEIGHT = 0.3
# character n-gram sizes; 3-5 ranked best with the dense model on the
# development sets (docs/benchmarks.md)
NGRAM_SIZES = (3, 4, 5)


@dataclass(frozen=True)
class LexicalDoc:
    """The text of one FAQ entry as the lexical ranker sees it."""

    faq_id: int
    question: str
    phrasings: tuple[str, ...] = ()
    answer: str = ""


@dataclass(frozen=True)
class LexicalHit:
    faq_id: int
    score: float
    # share of the query's weight found in the entry, 0..1
    coverage: float
    # share of the weight of the query's topic words (no vague ones) found in
    # the entry's question or phrasings, not its answer, 0..1
    evidence: float = 0.0


def topic_words(text: str) -> list[str]:
    """The words of `text` that name what it is about: no stop or vague words."""
    return [
        word
        for word in tokenize(text)
        if word not in STOP_WORDS and word not in VAGUE_WORDS
    ]


class RussianAnalyzer:
    """Turns text into stems; caches stems since chat vocabulary repeats."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("russian")
        self._morph = pymorphy3.MorphAnalyzer()
        self.stem = lru_cache(maxsize=50_000)(self._stemmer.stemWord)
        self.is_word = lru_cache(maxsize=50_000)(self._is_word)

    def _is_word(self, word: str) -> bool:
        """True for a word of the russian dictionary, in any form."""
        return self._morph.word_is_known(word)

    def terms(self, text: str) -> list[str]:
        return [self.stem(word) for word in tokenize(text) if word not in STOP_WORDS]


class LexicalIndex:
    """BM25 over stems of FAQ entries; build a new one when the FAQ changes.

    Building is a single pass over the texts, a few milliseconds for a few
    hundred entries, so callers simply rebuild on every FAQ revision.
    """

    def __init__(
        self,
        docs: Iterable[LexicalDoc],
        *,
        analyzer: RussianAnalyzer | None = None,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        answer_weight: float = DEFAULT_ANSWER_WEIGHT,
    ) -> None:
        self.analyzer = analyzer or RussianAnalyzer()
        self._k1 = k1
        self._b = b
        self.faq_ids: list[int] = []
        vocabulary: set[str] = set()
        weighted: list[Counter[str]] = []
        self._asked: list[frozenset[str]] = []

        for doc in docs:
            counts: Counter[str] = Counter()
            for text in (doc.question, *doc.phrasings):
                words = tokenize(text)
                vocabulary.update(words)
                for word in words:
                    if word not in STOP_WORDS:
                        counts[self.analyzer.stem(word)] += 1.0
            self._asked.append(frozenset(counts))
            if answer_weight and doc.answer:
                for term in self.analyzer.terms(doc.answer):
                    counts[term] += answer_weight
            self.faq_ids.append(doc.faq_id)
            weighted.append(counts)

        self.corrector = TypoCorrector(vocabulary, self.analyzer.is_word)
        self._postings: dict[str, list[tuple[int, float]]] = {}
        self._idf: dict[str, float] = {}
        self._unseen_idf = 0.0
        self._index(weighted)

    def __len__(self) -> int:
        return len(self.faq_ids)

    def _index(self, weighted: Sequence[Counter[str]]) -> None:
        total = len(weighted)
        if not total:
            return

        lengths = [sum(counts.values()) for counts in weighted]
        average = sum(lengths) / total or 1.0
        doc_freq: Counter[str] = Counter()
        for counts in weighted:
            doc_freq.update(counts.keys())

        self._unseen_idf = math.log(1.0 + (total + 0.5) / 0.5)
        for term, freq in doc_freq.items():
            self._idf[term] = math.log(1.0 + (total - freq + 0.5) / (freq + 0.5))

        for position, counts in enumerate(weighted):
            norm = self._k1 * (1.0 - self._b + self._b * lengths[position] / average)
            for term, tf in counts.items():
                weight = self._idf[term] * tf * (self._k1 + 1.0) / (tf + norm)
                self._postings.setdefault(term, []).append((position, weight))

    def knows(self, word: str) -> bool:
        return self.analyzer.stem(word) in self._idf

    def has_known_words(self, text: str) -> bool:
        """True when some word of `text` is in the FAQ or the dictionary.

        Keyboard mashing and random letters have none, and then nothing in
        the FAQ is worth offering, however the dense model scores it.
        """
        return any(
            self.knows(word) or (word.isalpha() and self.analyzer.is_word(word))
            for word in tokenize(text)
            if word not in STOP_WORDS
        )

    def search(self, text: str, limit: int | None = None) -> list[LexicalHit]:
        """Rank entries for a query; entries sharing no stem are left out."""
        terms = set(self.analyzer.terms(text))
        if not terms.intersection(self._idf):
            return []

        # a word no entry has weighs as much as the rarest one would, so that
        # «курс биткоина» covers little of any entry
        query_weight = sum(self._idf.get(term, self._unseen_idf) for term in terms)

        topic = {self.analyzer.stem(word) for word in topic_words(text)}
        topic_weight = sum(self._idf.get(term, self._unseen_idf) for term in topic)

        scores: dict[int, float] = {}
        matched: dict[int, float] = {}
        asked: dict[int, float] = {}
        for term in terms:
            for position, weight in self._postings.get(term, ()):
                scores[position] = scores.get(position, 0.0) + weight
                matched[position] = matched.get(position, 0.0) + self._idf[term]
                if term in topic and term in self._asked[position]:
                    asked[position] = asked.get(position, 0.0) + self._idf[term]

        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        if limit is not None:
            ranked = ranked[:limit]

        return [
            LexicalHit(
                faq_id=self.faq_ids[position],
                score=score,
                coverage=matched[position] / query_weight,
                evidence=asked.get(position, 0.0) / topic_weight if topic else 0.0,
            )
            for position, score in ranked
        ]


def char_ngrams(text: str, sizes: Sequence[int] = NGRAM_SIZES) -> Counter[str]:
    """Counts of the character n-grams of each word padded with spaces."""
    counts: Counter[str] = Counter()
    for word in tokenize(text):
        padded = f" {word} "
        for size in sizes:
            for start in range(len(padded) - size + 1):
                counts[padded[start : start + size]] += 1
    return counts


class CharNgramIndex:
    """Cosine of sublinear TF-IDF vectors of word n-grams, one per FAQ entry.

    An entry's document is its question and its extra phrasings; the answer
    is left out, since its many words would drown the question's n-grams.
    N-grams no entry has are dropped from the query before it is normalised,
    so the score measures how well the query's known part matches.
    """

    def __init__(
        self, docs: Iterable[LexicalDoc], sizes: Sequence[int] = NGRAM_SIZES
    ) -> None:
        self._sizes = tuple(sizes)
        self.faq_ids: list[int] = []
        counted = []
        for doc in docs:
            self.faq_ids.append(doc.faq_id)
            counted.append(char_ngrams(" ".join((doc.question, *doc.phrasings))))

        total = len(counted)
        doc_freq: Counter[str] = Counter()
        for counts in counted:
            doc_freq.update(counts.keys())
        # smoothed idf, as if one more document had every n-gram
        self._idf = {
            gram: math.log((1.0 + total) / (1.0 + freq)) + 1.0
            for gram, freq in doc_freq.items()
        }

        positions: dict[str, list[int]] = {}
        weights: dict[str, list[float]] = {}
        for position, counts in enumerate(counted):
            vector = {
                gram: (1.0 + math.log(tf)) * self._idf[gram]
                for gram, tf in counts.items()
            }
            norm = math.sqrt(sum(w * w for w in vector.values())) or 1.0
            for gram, weight in vector.items():
                positions.setdefault(gram, []).append(position)
                weights.setdefault(gram, []).append(weight / norm)
        self._postings = {
            gram: (
                np.asarray(positions[gram], dtype=np.intp),
                np.asarray(weights[gram], dtype=np.float64),
            )
            for gram in positions
        }

    def __len__(self) -> int:
        return len(self.faq_ids)

    def scores(self, text: str) -> np.ndarray:
        """Cosine similarity 0..1 of `text` to every entry, in `faq_ids` order."""
        query = {
            gram: (1.0 + math.log(tf)) * self._idf[gram]
            for gram, tf in char_ngrams(text, self._sizes).items()
            if gram in self._idf
        }
        if not query:
            return np.zeros(len(self.faq_ids))

        norm = math.sqrt(sum(w * w for w in query.values()))
        # one weighted bincount over the postings of all query n-grams
        positions = np.concatenate([self._postings[g][0] for g in query])
        weights = np.concatenate(
            [self._postings[g][1] * (w / norm) for g, w in query.items()]
        )
        return np.bincount(positions, weights=weights, minlength=len(self.faq_ids))

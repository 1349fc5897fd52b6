"""Group unanswered and unhelpful questions by meaning, largest group first.

Identical texts (up to case, ё/е, punctuation) are merged first; the distinct
texts are then embedded as queries and joined by average-linkage agglomerative
clustering on cosine similarity until no two groups are closer than the
threshold. Each group becomes one suggestion: write an answer once, and every
question of the group is covered.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from admin_queries import OpenQuestion
from embeddings import is_e5
from faq_store import question_key

logger = logging.getLogger(__name__)

# e5 models put unrelated russian questions near 0.80 and paraphrases above
# 0.90; classic sentence-transformers models spread similarities much wider
E5_GROUP_SIMILARITY = 0.895
DEFAULT_GROUP_SIMILARITY = 0.65
MAX_DISTINCT_TEXTS = 800


@dataclass
class Variant:
    text: str
    count: int
    query_log_ids: list[int]
    last_seen: datetime


@dataclass
class SuggestionGroup:
    variants: list[Variant]
    no_answer: int = 0
    unhelpful: int = 0
    top_faq_id: int | None = None
    top_faq_question: str | None = None
    query_log_ids: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(v.count for v in self.variants)

    @property
    def title(self) -> str:
        return self.variants[0].text

    @property
    def last_seen(self) -> datetime:
        return max(v.last_seen for v in self.variants)


def group_similarity(embedder: object) -> float:
    name = str(getattr(embedder, "name", ""))
    return E5_GROUP_SIMILARITY if is_e5(name) else DEFAULT_GROUP_SIMILARITY


def _variants(questions: Sequence[OpenQuestion]) -> tuple[list[Variant], dict]:
    variants: dict[str, Variant] = {}
    reasons: dict[str, Counter] = {}
    faqs: dict[str, Counter] = {}
    for question in questions:
        key = question_key(question.text)
        if not key:
            continue
        variant = variants.get(key)
        if variant is None:
            variant = variants[key] = Variant(question.text, 0, [], question.created_at)
            reasons[key] = Counter()
            faqs[key] = Counter()
        variant.count += 1
        variant.query_log_ids.append(question.query_log_id)
        variant.last_seen = max(variant.last_seen, question.created_at)
        reasons[key][question.reason] += 1
        if question.top_faq_id is not None:
            faqs[key][question.top_faq_id] += 1
    ordered = sorted(variants, key=lambda k: (-variants[k].count, k))
    ordered = ordered[:MAX_DISTINCT_TEXTS]
    extra = {k: (reasons[k], faqs[k]) for k in ordered}
    return [variants[k] for k in ordered], extra


def _clusters(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Average-linkage agglomerative clustering of unit vectors."""
    count = len(vectors)
    members = [[i] for i in range(count)]
    if count < 2:
        return members
    similarity = (vectors @ vectors.T).astype(np.float64)
    np.fill_diagonal(similarity, -np.inf)
    active = np.ones(count, dtype=bool)
    while True:
        flat = int(np.argmax(similarity))
        i, j = divmod(flat, count)
        if similarity[i, j] < threshold:
            break
        size_i, size_j = len(members[i]), len(members[j])
        merged = (similarity[i] * size_i + similarity[j] * size_j) / (size_i + size_j)
        merged[~active] = -np.inf
        merged[i] = merged[j] = -np.inf
        similarity[i, :] = merged
        similarity[:, i] = merged
        similarity[j, :] = -np.inf
        similarity[:, j] = -np.inf
        active[j] = False
        members[i].extend(members[j])
        members[j] = []
    return [group for group in members if group]


def suggest(
    questions: Sequence[OpenQuestion],
    embedder: object | None,
    faq_questions: dict[int, str],
) -> list[SuggestionGroup]:
    """Group the questions; largest group first, then the most recent."""
    variants, extra = _variants(questions)
    if not variants:
        return []
    keys = [question_key(v.text) for v in variants]
    if embedder is not None and len(variants) > 1:
        vectors = np.asarray(embedder.embed_queries([v.text for v in variants]))
        clusters = _clusters(vectors, group_similarity(embedder))
    else:
        clusters = [[i] for i in range(len(variants))]

    groups = []
    for cluster in clusters:
        members = sorted(
            cluster,
            key=lambda i: (-variants[i].count, -variants[i].last_seen.timestamp()),
        )
        group = SuggestionGroup(variants=[variants[i] for i in members])
        votes: Counter[int] = Counter()
        for i in members:
            reasons, faqs = extra[keys[i]]
            group.no_answer += reasons["no_answer"]
            group.unhelpful += reasons["unhelpful"]
            votes.update({k: n for k, n in faqs.items() if k in faq_questions})
            group.query_log_ids.append(variants[i].query_log_ids[0])
        if votes:
            group.top_faq_id = votes.most_common(1)[0][0]
            group.top_faq_question = faq_questions[group.top_faq_id]
        groups.append(group)
    groups.sort(key=lambda g: (-g.size, -g.last_seen.timestamp()))
    logger.debug(
        "%s open questions grouped into %s groups", len(questions), len(groups)
    )
    return groups

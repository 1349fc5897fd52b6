"""Find FAQ questions that another entry already has, for readable validation.

Two questions count as the same when they differ only in letter case, ё/е,
punctuation and spacing: «Как оформить отпуск?» and «как оформить  отпуск».
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from database import FaqRecord

_NOT_WORD = re.compile(r"[^\w]+")


def question_key(text: str) -> str:
    """Return the form of a question used to compare it with others."""
    folded = text.casefold().replace("ё", "е")
    return " ".join(_NOT_WORD.sub(" ", folded).split())


@dataclass(frozen=True)
class Duplicate:
    text: str
    faq_id: int
    faq_question: str

    def message(self) -> str:
        return f"«{self.text}» уже есть в записи №{self.faq_id} «{self.faq_question}»."


class QuestionIndex:
    """Every question and extra phrasing of the FAQ, keyed by `question_key`."""

    def __init__(self, records: Iterable[FaqRecord]) -> None:
        self._owners: dict[str, FaqRecord] = {}
        for record in records:
            for text in (record.question, *record.phrasings):
                self._owners.setdefault(question_key(text), record)

    def owner(self, text: str) -> FaqRecord | None:
        """Return the entry whose question or phrasing matches `text`."""
        return self._owners.get(question_key(text))

    def duplicates(
        self, texts: Iterable[str], exclude_id: int | None = None
    ) -> list[Duplicate]:
        """Return the texts that belong to an entry other than `exclude_id`."""
        found = []
        for text in texts:
            record = self.owner(text)
            if record is not None and record.id != exclude_id:
                found.append(Duplicate(text, record.id, record.question))
        return found

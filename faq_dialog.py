"""The FAQ dialogue both front ends share: what to answer and what to store.

`FaqDialog` asks the engine, writes the question and answer logs, records the
"did you mean" choices and the ratings, and picks the related questions an
answer offers. It returns plain records and sends nothing: `b24_conversation`
and `tg_conversation` turn them into their platform's messages and buttons, so
a rule decided here holds for both bots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import b24_texts as texts
from database import (
    AnswerLogRecord,
    CategoryRecord,
    Database,
    FaqRecord,
    Outcome,
    RatingResult,
)

# how many related questions an answer offers as buttons
SIMILAR_LIMIT = 3
# how many questions a category shows as buttons before asking to type instead
CATEGORY_QUESTION_LIMIT = 20


class Candidate(Protocol):
    faq_id: int
    question: str
    score: float
    # shares content with the question: only such entries are offered
    supported: bool


class Reply(Protocol):
    """The part of `faq_core.Reply` the dialogue reads."""

    outcome: str
    answer: Candidate | None
    choices: Sequence[Candidate]
    candidates: Sequence[Candidate]
    smalltalk_reply: str | None
    text_raw: str
    text_searched: str


class Engine(Protocol):
    def ask(self, text: str) -> Reply: ...


@dataclass(frozen=True)
class Turn:
    """Who wrote or pressed what, and where: the question log's side of a turn."""

    user_id: str | int
    dialog_id: str | int
    text: str
    message_id: str | int | None = None


@dataclass(frozen=True)
class Answer:
    """An FAQ entry to show, its answer log (for the rating buttons) and the
    related questions offered under it."""

    faq: FaqRecord
    log_id: int
    related: Sequence[FaqRecord]


@dataclass(frozen=True)
class Search:
    """What the engine made of a typed question, already logged."""

    reply: Reply
    outcome: Outcome
    log_id: int
    score: float | None
    faq_id: int | None
    # None unless answered; also None when the entry was deleted meanwhile,
    # which the front ends then treat as "no answer"
    answer: Answer | None
    # the close candidates a "no answer" reply offers instead
    near: Sequence[Candidate]


@dataclass(frozen=True)
class CategoryPage:
    category: CategoryRecord
    # the questions shown, at most CATEGORY_QUESTION_LIMIT of `total`
    faqs: Sequence[FaqRecord]
    total: int


@dataclass(frozen=True)
class Rating:
    """What a rating press did: the stored result and what to offer next."""

    result: RatingResult
    helpful: bool
    log_id: int | None
    answer_log: AnswerLogRecord | None = None
    # the rated answer's related questions: they stay on its keyboard when the
    # rating row goes, and a "not helpful" offers them again
    related: Sequence[FaqRecord] = ()

    @property
    def faq_id(self) -> int | None:
        return self.answer_log.faq_id if self.answer_log is not None else None


class FaqDialog:
    """Decisions and database work of one platform's conversation."""

    def __init__(
        self,
        engine: Engine,
        database: Database,
        platform: str,
        *,
        near_score: float = 0.0,
    ) -> None:
        self.engine = engine
        self.database = database
        self.platform = platform
        # candidates scoring below this are never offered as buttons
        self.near_score = near_score

    def search(self, turn: Turn) -> Search:
        """Ask the engine about `turn.text` and log the question and outcome."""
        reply = self.engine.ask(turn.text)
        outcome = Outcome(reply.outcome)
        candidate = reply.answer if outcome is Outcome.ANSWERED else None
        score = top_score(reply)
        ids = self.database.log_interaction(
            self.platform,
            turn.user_id,
            turn.dialog_id,
            reply.text_raw,
            reply.text_searched,
            outcome,
            faq_id=candidate.faq_id if candidate else None,
            score=score,
            candidates=[(c.faq_id, c.score) for c in reply.candidates],
            message_id=turn.message_id,
        )
        log_id = ids.answer_log_id
        answer = None
        if candidate is not None:
            faq = self.database.get_faq(candidate.faq_id)
            if faq is not None:
                answer = self._answer(faq, log_id)
        near = [
            c for c in reply.candidates if c.score >= self.near_score and c.supported
        ]
        return Search(
            reply=reply,
            outcome=outcome,
            log_id=log_id,
            score=score,
            faq_id=candidate.faq_id if candidate else None,
            answer=answer,
            near=near[:SIMILAR_LIMIT],
        )

    def open_faq(self, turn: Turn, faq_id: int | None) -> Answer | None:
        """Open an entry from a category list; None if it is gone."""
        faq = self.database.get_faq(faq_id) if faq_id else None
        if faq is None:
            return None
        return self._answer(faq, self._log_opened(turn, faq, candidates=()))

    def open_choice(
        self, turn: Turn, log_id: int | None, faq_id: int | None
    ) -> Answer | None:
        """Open a "did you mean" or related question and note it as the choice
        of the answer it was offered under; None if the entry is gone."""
        origin = self.database.get_answer_log(log_id) if log_id else None
        faq = self.database.get_faq(faq_id) if faq_id else None
        if faq is None:
            return None
        others: tuple[tuple[int, float], ...] = ()
        if origin is not None:
            self.database.record_choice(origin.id, faq.id)
            # the rest of the original candidates become this answer's related
            skip = {faq.id, origin.faq_id}
            others = tuple(pair for pair in origin.candidates if pair[0] not in skip)
        return self._answer(faq, self._log_opened(turn, faq, candidates=others))

    def rate(self, log_id: int | None, user_id: str | int, helpful: bool) -> Rating:
        """Store a rating of an answer; only its asker may rate it, once."""
        if log_id is None or log_id <= 0:
            return Rating(RatingResult.UNKNOWN_ANSWER, helpful, log_id)
        result = self.database.record_rating(log_id, user_id, helpful)
        if result in (RatingResult.NOT_ASKER, RatingResult.UNKNOWN_ANSWER):
            return Rating(result, helpful, log_id)
        answer_log = self.database.get_answer_log(log_id)
        related = self.related(answer_log) if answer_log is not None else []
        return Rating(result, helpful, log_id, answer_log, related)

    def categories(self) -> list[CategoryRecord]:
        """The categories worth a button: those with questions in them."""
        return [c for c in self.database.list_categories() if c.faq_count > 0]

    def category(self, category_id: int | None) -> CategoryPage | None:
        """A category and its first questions; None if it is gone."""
        category = self._find_category(category_id)
        if category is None:
            return None
        faqs = self.database.list_faqs(category_id=category.id)
        return CategoryPage(category, faqs[:CATEGORY_QUESTION_LIMIT], len(faqs))

    def related(self, answer_log: AnswerLogRecord) -> list[FaqRecord]:
        """Related questions of an answer, derived from its stored candidates.

        Built the same way when the answer is sent and when its rating buttons
        are taken off, so the rest of the keyboard stays as it was.
        """
        skip = {answer_log.faq_id, answer_log.chosen_faq_id}
        faqs = []
        for faq_id, score in answer_log.candidates:
            if faq_id in skip or score < self.near_score:
                continue
            faq = self.database.get_faq(faq_id)
            if faq is not None:
                faqs.append(faq)
            if len(faqs) == SIMILAR_LIMIT:
                break
        return faqs

    def _answer(self, faq: FaqRecord, log_id: int) -> Answer:
        answer_log = self.database.get_answer_log(log_id)
        related = self.related(answer_log) if answer_log is not None else []
        return Answer(faq, log_id, related)

    def _log_opened(
        self, turn: Turn, faq: FaqRecord, candidates: Sequence[tuple[int, float]]
    ) -> int:
        """Log an entry opened by a button as an answered question of its own."""
        ids = self.database.log_interaction(
            self.platform,
            turn.user_id,
            turn.dialog_id,
            turn.text,
            faq.question,
            Outcome.ANSWERED,
            faq_id=faq.id,
            candidates=candidates,
            message_id=turn.message_id,
        )
        return ids.answer_log_id

    def _find_category(self, category_id: int | None) -> CategoryRecord | None:
        if not category_id:
            return None
        for category in self.database.list_categories():
            if category.id == category_id:
                return category
        return None


def top_score(reply: Reply) -> float | None:
    """The score logged with a reply: the answer's, else the best candidate's."""
    if reply.answer is not None:
        return reply.answer.score
    if reply.candidates:
        return reply.candidates[0].score
    return None


def answer_text(answer: Answer) -> str:
    """An answer's message in BB-code, the same for every front end."""
    faq = answer.faq
    text = texts.ANSWER.format(question=faq.question, answer=faq.answer)
    if answer.related:
        text += texts.SIMILAR
    return text + texts.RATE

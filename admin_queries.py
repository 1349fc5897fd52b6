"""Read-only queries of the web admin over the logs: browsing, statistics, inputs
for suggestions. Nothing here writes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Select, case, exists, func, or_, select
from sqlalchemy.orm import aliased

from admin_common import to_local
from database import Database
from models import AnswerLog, Faq, Outcome, QueryLog, RatingLog
from text_normalize import clean_markup

SEARCHED_OUTCOMES = (Outcome.ANSWERED, Outcome.CHOICES, Outcome.NO_ANSWER)
MAX_EXPORT_ROWS = 100_000
MAX_STATS_ROWS = 200_000
_LEADING_JUNK = re.compile(r"^[\s,.;:!\-—–)]+")


@dataclass(frozen=True)
class LogFilter:
    """What the log page shows; times are naive UTC, `end` excluded."""

    start: datetime | None = None
    end: datetime | None = None
    platform: str | None = None
    outcome: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class LogRow:
    query_log_id: int
    answer_log_id: int | None
    created_at: datetime
    platform: str
    user_id: str
    dialog_id: str
    text_raw: str
    text_searched: str
    outcome: str | None
    faq_id: int | None
    faq_question: str | None
    score: float | None
    chosen_faq_id: int | None
    chosen_question: str | None
    helpful: int
    unhelpful: int


def question_text(raw: str) -> str:
    """The message as a person would retype it: no mentions, BB-codes, junk."""
    text = " ".join(clean_markup(raw).split())
    return _LEADING_JUNK.sub("", text)[:1000]


# --------------------------------------------------------------------- logs


def _ratings():
    return (
        select(
            RatingLog.answer_log_id.label("answer_log_id"),
            func.sum(case((RatingLog.helpful.is_(True), 1), else_=0)).label("yes"),
            func.sum(case((RatingLog.helpful.is_(False), 1), else_=0)).label("no"),
        )
        .group_by(RatingLog.answer_log_id)
        .subquery()
    )


def _log_select(filters: LogFilter) -> Select:
    ratings = _ratings()
    answered = aliased(Faq)
    chosen = aliased(Faq)
    stmt = (
        select(
            QueryLog.id,
            AnswerLog.id,
            QueryLog.created_at,
            QueryLog.platform,
            QueryLog.user_id,
            QueryLog.dialog_id,
            QueryLog.text_raw,
            QueryLog.text_searched,
            AnswerLog.outcome,
            AnswerLog.faq_id,
            answered.question,
            AnswerLog.score,
            AnswerLog.chosen_faq_id,
            chosen.question,
            func.coalesce(ratings.c.yes, 0),
            func.coalesce(ratings.c.no, 0),
        )
        .outerjoin(AnswerLog, AnswerLog.query_log_id == QueryLog.id)
        .outerjoin(answered, answered.id == AnswerLog.faq_id)
        .outerjoin(chosen, chosen.id == AnswerLog.chosen_faq_id)
        .outerjoin(ratings, ratings.c.answer_log_id == AnswerLog.id)
    )
    return _where(stmt, filters)


def _where(stmt: Select, filters: LogFilter) -> Select:
    if filters.start is not None:
        stmt = stmt.where(QueryLog.created_at >= filters.start)
    if filters.end is not None:
        stmt = stmt.where(QueryLog.created_at < filters.end)
    if filters.platform:
        stmt = stmt.where(QueryLog.platform == filters.platform)
    if filters.outcome == "unhelpful":
        stmt = stmt.where(
            exists().where(
                RatingLog.answer_log_id == AnswerLog.id, RatingLog.helpful.is_(False)
            )
        )
    elif filters.outcome:
        stmt = stmt.where(AnswerLog.outcome == filters.outcome)
    if filters.text:
        # sqlite folds only ascii case in LIKE, so try the usual spellings
        needle = filters.text.strip()
        variants = {needle, needle.lower(), needle.capitalize()}
        stmt = stmt.where(
            or_(
                *(
                    QueryLog.text_raw.like(f"%{_like_escape(v)}%", "\\")
                    for v in variants
                )
            )
        )
    return stmt


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def log_page(
    database: Database, filters: LogFilter, offset: int, limit: int
) -> tuple[list[LogRow], int]:
    """One page of questions, newest first, and how many match in all."""
    with database.session() as session:
        total = session.scalar(
            _where(
                select(func.count(QueryLog.id)).outerjoin(
                    AnswerLog, AnswerLog.query_log_id == QueryLog.id
                ),
                filters,
            )
        )
        rows = session.execute(
            _log_select(filters)
            .order_by(QueryLog.created_at.desc(), QueryLog.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
    return [LogRow(*row) for row in rows], int(total or 0)


def iter_logs(database: Database, filters: LogFilter) -> Iterator[LogRow]:
    """Every matching question, newest first (capped for the CSV export)."""
    with database.session() as session:
        rows = session.execute(
            _log_select(filters)
            .order_by(QueryLog.created_at.desc(), QueryLog.id.desc())
            .limit(MAX_EXPORT_ROWS)
        ).all()
    for row in rows:
        yield LogRow(*row)


def query_texts(database: Database, query_log_ids: Sequence[int]) -> list[str]:
    """The cleaned texts of these questions, in the given order, without repeats."""
    if not query_log_ids:
        return []
    with database.session() as session:
        found = dict(
            session.execute(
                select(QueryLog.id, QueryLog.text_raw).where(
                    QueryLog.id.in_(query_log_ids)
                )
            ).all()
        )
    texts: list[str] = []
    seen: set[str] = set()
    for query_log_id in query_log_ids:
        text = question_text(found.get(query_log_id, ""))
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            texts.append(text)
    return texts


def top_candidate(database: Database, query_log_ids: Sequence[int]) -> int | None:
    """The entry the bot most often put first for these questions, if any."""
    if not query_log_ids:
        return None
    with database.session() as session:
        rows = session.execute(
            select(AnswerLog.chosen_faq_id, AnswerLog.faq_id, AnswerLog.candidates)
            .join(Faq, Faq.id == AnswerLog.faq_id, isouter=True)
            .where(AnswerLog.query_log_id.in_(query_log_ids))
        ).all()
        existing = set(session.scalars(select(Faq.id)))
    votes: Counter[int] = Counter()
    for chosen_id, faq_id, candidates in rows:
        first = _first_candidate(candidates)
        for candidate in (chosen_id, faq_id, first):
            if candidate in existing:
                votes[candidate] += 1
                break
    return votes.most_common(1)[0][0] if votes else None


def _first_candidate(candidates) -> int | None:
    try:
        return int(candidates[0][0])
    except (TypeError, ValueError, IndexError, KeyError):
        return None


# --------------------------------------------------------------- statistics


@dataclass
class DayStats:
    day: date
    answered: int = 0
    choices: int = 0
    no_answer: int = 0
    other: int = 0

    @property
    def questions(self) -> int:
        return self.answered + self.choices + self.no_answer


@dataclass
class EntryStats:
    faq_id: int
    question: str
    shown: int = 0
    helpful: int = 0
    unhelpful: int = 0


@dataclass
class Stats:
    days: list[DayStats]
    messages: int = 0
    questions: int = 0
    answered: int = 0
    choices: int = 0
    no_answer: int = 0
    helpful: int = 0
    unhelpful: int = 0
    top_entries: list[EntryStats] = field(default_factory=list)
    top_unanswered: list[tuple[str, int]] = field(default_factory=list)

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.questions if self.questions else None

    @property
    def helpful_rate(self) -> float | None:
        rated = self.helpful + self.unhelpful
        return self.helpful / rated if rated else None


def statistics(
    database: Database, first_day: date, last_day: date, filters: LogFilter
) -> Stats:
    """Counts of the period, per local day, with top entries and unanswered texts."""
    ratings = _ratings()
    with database.session() as session:
        rows = session.execute(
            _where(
                select(
                    QueryLog.created_at,
                    QueryLog.text_raw,
                    AnswerLog.outcome,
                    func.coalesce(AnswerLog.chosen_faq_id, AnswerLog.faq_id),
                    func.coalesce(ratings.c.yes, 0),
                    func.coalesce(ratings.c.no, 0),
                )
                .outerjoin(AnswerLog, AnswerLog.query_log_id == QueryLog.id)
                .outerjoin(ratings, ratings.c.answer_log_id == AnswerLog.id),
                filters,
            ).limit(MAX_STATS_ROWS)
        ).all()
        questions = dict(session.execute(select(Faq.id, Faq.question)).all())

    span = (last_day - first_day).days + 1
    per_day = {
        first_day + timedelta(days=n): DayStats(first_day + timedelta(days=n))
        for n in range(span)
    }
    stats = Stats(days=list(per_day.values()))
    entries: dict[int, EntryStats] = {}
    unanswered: Counter[str] = Counter()
    spelling: dict[str, str] = {}

    for created_at, text_raw, outcome, faq_id, yes, no in rows:
        stats.messages += 1
        local = to_local(created_at)
        day = per_day.get(local.date()) if local else None
        if outcome in SEARCHED_OUTCOMES:
            stats.questions += 1
            setattr(stats, outcome, getattr(stats, outcome) + 1)
            if day is not None:
                setattr(day, outcome, getattr(day, outcome) + 1)
        elif day is not None:
            day.other += 1
        stats.helpful += yes
        stats.unhelpful += no
        if faq_id is not None and faq_id in questions and outcome != Outcome.NO_ANSWER:
            entry = entries.setdefault(faq_id, EntryStats(faq_id, questions[faq_id]))
            entry.shown += 1
            entry.helpful += yes
            entry.unhelpful += no
        if outcome == Outcome.NO_ANSWER:
            text = question_text(text_raw)
            key = " ".join(text.casefold().replace("ё", "е").split())
            if key:
                spelling.setdefault(key, text)
                unanswered[key] += 1

    stats.top_entries = sorted(entries.values(), key=lambda e: (-e.shown, e.faq_id))[
        :10
    ]
    stats.top_unanswered = [(spelling[k], n) for k, n in unanswered.most_common(10)]
    return stats


# -------------------------------------------------------------- suggestions


@dataclass(frozen=True)
class OpenQuestion:
    """A question the bot could not answer, or whose answer did not help."""

    query_log_id: int
    text: str
    created_at: datetime
    reason: str
    top_faq_id: int | None


def open_questions(
    database: Database, filters: LogFilter, limit: int = 2000
) -> list[OpenQuestion]:
    """Unanswered and unhelpful questions of the period, newest first."""
    unhelpful = exists().where(
        RatingLog.answer_log_id == AnswerLog.id, RatingLog.helpful.is_(False)
    )
    with database.session() as session:
        rows = session.execute(
            _where(
                select(
                    QueryLog.id,
                    QueryLog.text_raw,
                    QueryLog.created_at,
                    AnswerLog.outcome,
                    AnswerLog.faq_id,
                    AnswerLog.candidates,
                ).join(AnswerLog, AnswerLog.query_log_id == QueryLog.id),
                filters,
            )
            .where(or_(AnswerLog.outcome == Outcome.NO_ANSWER.value, unhelpful))
            .order_by(QueryLog.created_at.desc())
            .limit(limit)
        ).all()
    found = []
    for query_log_id, raw, created_at, outcome, faq_id, candidates in rows:
        text = question_text(raw)
        if not text:
            continue
        reason = "no_answer" if outcome == Outcome.NO_ANSWER else "unhelpful"
        found.append(
            OpenQuestion(
                query_log_id,
                text,
                created_at,
                reason,
                faq_id or _first_candidate(candidates),
            )
        )
    return found

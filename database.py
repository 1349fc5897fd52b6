"""Storage of the FAQ, the logs, the inbound event queue and the admin users.

`Database(url)` owns its engine and session factory; every public method runs
in its own short transaction and returns frozen dataclasses that no longer
depend on a session. Any SQLAlchemy URL works: SQLite (WAL, busy timeout) for a
single machine, PostgreSQL for a larger install.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.pool import NullPool

from models import (
    AdminRole,
    AdminUser,
    AnswerLog,
    Category,
    EventStatus,
    Faq,
    FaqPhrasing,
    FaqRevision,
    InboundEvent,
    Outcome,
    Platform,
    QueryLog,
    RatingLog,
    utcnow,
)

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent
SQLITE_BUSY_TIMEOUT_MS = 10_000
MAX_QUESTION_LENGTH = 1_000
MAX_ANSWER_LENGTH = 20_000
MAX_CATEGORY_LENGTH = 100
MAX_PHRASINGS = 50

__all__ = [
    "AdminRole",
    "AdminUserRecord",
    "AnswerLogRecord",
    "CategoryRecord",
    "Database",
    "EventRecord",
    "EventStatus",
    "FaqRecord",
    "InteractionIds",
    "Outcome",
    "Platform",
    "RatingResult",
    "ValidationError",
    "migration_engine",
]


class ValidationError(ValueError):
    """Input that cannot be stored; the message is meant for an admin, in Russian."""


class RatingResult(StrEnum):
    STORED = "stored"
    ALREADY_RATED = "already_rated"
    NOT_ASKER = "not_asker"
    UNKNOWN_ANSWER = "unknown_answer"


@dataclass(frozen=True)
class FaqRecord:
    id: int
    external_id: str | None
    category_id: int
    category: str
    question: str
    answer: str
    phrasings: tuple[str, ...]
    updated_at: datetime


@dataclass(frozen=True)
class CategoryRecord:
    id: int
    name: str
    faq_count: int


@dataclass(frozen=True)
class InteractionIds:
    query_log_id: int
    answer_log_id: int


@dataclass(frozen=True)
class AnswerLogRecord:
    id: int
    query_log_id: int
    platform: str
    user_id: str
    dialog_id: str
    text_raw: str
    text_searched: str
    faq_id: int | None
    score: float | None
    outcome: Outcome
    candidates: tuple[tuple[int, float], ...]
    chosen_faq_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class EventRecord:
    id: int
    platform: str
    dedupe_key: str
    event_type: str
    payload: Any
    status: EventStatus
    error: str | None
    received_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True)
class AdminUserRecord:
    id: int
    username: str
    password_hash: str
    role: AdminRole
    created_at: datetime
    last_login_at: datetime | None


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _prepare_sqlite_dir(url: str) -> None:
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def migration_engine(url: str) -> Engine:
    """An engine for schema changes: on sqlite every transaction, DDL included,
    is real and takes the write lock at once, so two processes starting together
    migrate one after the other."""
    _prepare_sqlite_dir(url)
    engine = create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:
            # autocommit at the driver level; BEGIN is emitted below
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = OFF")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """The FAQ store and the logs behind one SQLAlchemy engine."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        _prepare_sqlite_dir(url)
        self.engine = create_engine(url, echo=echo, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    # ------------------------------------------------------------ schema

    def init_schema(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        alembic_cfg = AlembicConfig(str(PROJECT_DIR / "alembic.ini"))
        alembic_cfg.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
        engine = migration_engine(self.url)
        try:
            with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    # serialise concurrent start-ups of the bot and the admin
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(824217)")
                alembic_cfg.attributes["connection"] = connection
                command.upgrade(alembic_cfg, "head")
        finally:
            engine.dispose()
        logger.info("database schema is up to date at %s", self)

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at, or None before any."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    # -------------------------------------------------------------- faqs

    def faq_revision(self) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(FaqRevision.revision).where(FaqRevision.id == 1)
            ).scalar()
        return int(value or 0)

    def list_faqs(
        self, category_id: int | None = None, search: str | None = None
    ) -> list[FaqRecord]:
        """All entries, by category order then id; `search` matches any text.

        The text filter runs in Python: sqlite's lower() ignores Cyrillic, and
        an FAQ is small enough to read whole.
        """
        with self.session() as session:
            stmt = (
                select(Faq)
                .join(Faq.category)
                .options(selectinload(Faq.phrasings), selectinload(Faq.category))
                .order_by(Category.sort_order, Category.id, Faq.id)
            )
            if category_id is not None:
                stmt = stmt.where(Faq.category_id == category_id)
            records = [_faq_record(faq) for faq in session.scalars(stmt)]
        if search and search.strip():
            needle = search.strip().casefold()
            records = [
                r
                for r in records
                if needle
                in "\n".join(
                    (r.question, r.answer, r.category, *r.phrasings)
                ).casefold()
            ]
        return records

    def get_faq(self, faq_id: int) -> FaqRecord | None:
        with self.session() as session:
            faq = session.get(Faq, faq_id)
            return _faq_record(faq) if faq is not None else None

    def get_faq_by_external_id(self, external_id: str) -> FaqRecord | None:
        with self.session() as session:
            faq = session.scalar(select(Faq).where(Faq.external_id == external_id))
            return _faq_record(faq) if faq is not None else None

    def add_faq(
        self,
        question: str,
        answer: str,
        category: str | int,
        phrasings: Iterable[str] = (),
        external_id: str | None = None,
    ) -> FaqRecord:
        question = _clean_text(question, "Вопрос", MAX_QUESTION_LENGTH)
        answer = _clean_text(answer, "Ответ", MAX_ANSWER_LENGTH)
        extra = _clean_phrasings(phrasings, question)
        external_id = _clean_external_id(external_id)
        for attempt in range(2):
            try:
                with self.session() as session:
                    faq = Faq(
                        external_id=external_id,
                        category=_category(session, category),
                        question=question,
                        answer=answer,
                        phrasings=[FaqPhrasing(text=text) for text in extra],
                    )
                    session.add(faq)
                    session.flush()
                    _bump_revision(session)
                    record = _faq_record(faq)
                break
            except IntegrityError as exc:
                if external_id and self.get_faq_by_external_id(external_id):
                    raise ValidationError(
                        f"Запись с внешним id {external_id!r} уже есть"
                    ) from exc
                if attempt:
                    raise ValidationError(
                        "Не удалось сохранить вопрос: данные изменились, "
                        "попробуйте ещё раз"
                    ) from exc
                # another writer created the same category a moment ago
        logger.info("faq %s added in category %r", record.id, record.category)
        return record

    def update_faq(
        self,
        faq_id: int,
        *,
        question: str | None = None,
        answer: str | None = None,
        category: str | int | None = None,
        phrasings: Iterable[str] | None = None,
    ) -> FaqRecord:
        for attempt in range(2):
            try:
                record = self._update_faq(faq_id, question, answer, category, phrasings)
                break
            except IntegrityError as exc:
                if attempt:
                    raise ValidationError(
                        "Не удалось сохранить вопрос: данные изменились, "
                        "попробуйте ещё раз"
                    ) from exc
        logger.info("faq %s updated", faq_id)
        return record

    def _update_faq(
        self,
        faq_id: int,
        question: str | None,
        answer: str | None,
        category: str | int | None,
        phrasings: Iterable[str] | None,
    ) -> FaqRecord:
        with self.session() as session:
            faq = _require_faq(session, faq_id)
            if question is not None:
                faq.question = _clean_text(question, "Вопрос", MAX_QUESTION_LENGTH)
            if answer is not None:
                faq.answer = _clean_text(answer, "Ответ", MAX_ANSWER_LENGTH)
            if category is not None:
                faq.category = _category(session, category)
            if phrasings is not None:
                _replace_phrasings(faq, _clean_phrasings(phrasings, faq.question))
            elif question is not None:
                kept = [p.text for p in faq.phrasings]
                _replace_phrasings(faq, _clean_phrasings(kept, faq.question))
            faq.updated_at = utcnow()
            session.flush()
            _bump_revision(session)
            return _faq_record(faq)

    def delete_faq(self, faq_id: int) -> None:
        with self.session() as session:
            faq = _require_faq(session, faq_id)
            session.delete(faq)
            _bump_revision(session)
        logger.info("faq %s deleted", faq_id)

    def upsert_faq_by_external_id(
        self,
        external_id: str,
        question: str,
        answer: str,
        category: str | int,
        phrasings: Iterable[str] | None = None,
    ) -> tuple[FaqRecord, bool]:
        """Insert or update the entry with this external id; True when created."""
        external_id = _clean_external_id(external_id) or ""
        if not external_id:
            raise ValidationError("Внешний id записи не может быть пустым")
        existing = self.get_faq_by_external_id(external_id)
        if existing is None:
            return (
                self.add_faq(question, answer, category, phrasings or (), external_id),
                True,
            )
        return (
            self.update_faq(
                existing.id,
                question=question,
                answer=answer,
                category=category,
                phrasings=phrasings,
            ),
            False,
        )

    # -------------------------------------------------------- categories

    def list_categories(self) -> list[CategoryRecord]:
        with self.session() as session:
            rows = session.execute(
                select(Category.id, Category.name, func.count(Faq.id))
                .outerjoin(Faq, Faq.category_id == Category.id)
                .group_by(Category.id, Category.name, Category.sort_order)
                .order_by(Category.sort_order, Category.id)
            ).all()
        return [CategoryRecord(id=r[0], name=r[1], faq_count=r[2]) for r in rows]

    def add_category(self, name: str) -> CategoryRecord:
        name = _clean_text(name, "Название категории", MAX_CATEGORY_LENGTH)
        with self.session() as session:
            if _find_category(session, name) is not None:
                raise ValidationError(f"Категория «{name}» уже есть")
            category = _new_category(session, name)
            _bump_revision(session)
            return CategoryRecord(id=category.id, name=category.name, faq_count=0)

    def rename_category(self, category_id: int, name: str) -> CategoryRecord:
        name = _clean_text(name, "Название категории", MAX_CATEGORY_LENGTH)
        with self.session() as session:
            category = session.get(Category, category_id)
            if category is None:
                raise ValidationError(f"Категория {category_id} не найдена")
            clash = _find_category(session, name)
            if clash is not None and clash.id != category_id:
                raise ValidationError(f"Категория «{name}» уже есть")
            category.name = name
            _bump_revision(session)
            count = session.scalar(
                select(func.count(Faq.id)).where(Faq.category_id == category_id)
            )
            return CategoryRecord(id=category.id, name=name, faq_count=count or 0)

    def delete_category(self, category_id: int) -> None:
        with self.session() as session:
            category = session.get(Category, category_id)
            if category is None:
                raise ValidationError(f"Категория {category_id} не найдена")
            if session.scalar(
                select(func.count(Faq.id)).where(Faq.category_id == category_id)
            ):
                raise ValidationError(
                    f"В категории «{category.name}» есть вопросы: "
                    "перенесите или удалите их сначала"
                )
            session.delete(category)
            _bump_revision(session)

    # -------------------------------------------------------------- logs

    def log_interaction(
        self,
        platform: str,
        user_id: str | int,
        dialog_id: str | int,
        text_raw: str,
        text_searched: str,
        outcome: str,
        faq_id: int | None = None,
        score: float | None = None,
        candidates: Sequence[tuple[int, float]] = (),
        message_id: str | int | None = None,
    ) -> InteractionIds:
        """Store a question and what the bot did with it, in one transaction."""
        try:
            platform = Platform(platform)
            outcome = Outcome(outcome)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        with self.session() as session:
            query_log = QueryLog(
                platform=platform.value,
                user_id=str(user_id),
                dialog_id=str(dialog_id),
                message_id=None if message_id is None else str(message_id),
                text_raw=text_raw,
                text_searched=text_searched,
            )
            session.add(query_log)
            session.flush()
            answer_log = AnswerLog(
                query_log_id=query_log.id,
                faq_id=faq_id,
                score=None if score is None else round(float(score), 2),
                outcome=outcome.value,
                candidates=[[int(f), round(float(s), 2)] for f, s in candidates],
            )
            session.add(answer_log)
            session.flush()
            return InteractionIds(query_log.id, answer_log.id)

    def get_answer_log(self, answer_log_id: int) -> AnswerLogRecord | None:
        with self.session() as session:
            row = session.execute(
                select(AnswerLog, QueryLog)
                .join(QueryLog, AnswerLog.query_log_id == QueryLog.id)
                .where(AnswerLog.id == answer_log_id)
            ).first()
            return _answer_record(*row) if row else None

    def recent_interactions(
        self, limit: int = 50, offset: int = 0, outcome: str | None = None
    ) -> list[AnswerLogRecord]:
        """Newest questions first, for the admin's log page."""
        with self.session() as session:
            stmt = (
                select(AnswerLog, QueryLog)
                .join(QueryLog, AnswerLog.query_log_id == QueryLog.id)
                .order_by(AnswerLog.id.desc())
                .limit(limit)
                .offset(offset)
            )
            if outcome is not None:
                stmt = stmt.where(AnswerLog.outcome == Outcome(outcome).value)
            return [_answer_record(a, q) for a, q in session.execute(stmt)]

    def record_choice(self, answer_log_id: int, faq_id: int) -> bool:
        """Remember which "did you mean" entry the user pressed."""
        with self.session() as session:
            answer_log = session.get(AnswerLog, answer_log_id)
            if answer_log is None or session.get(Faq, faq_id) is None:
                return False
            answer_log.chosen_faq_id = faq_id
            return True

    def record_rating(
        self, answer_log_id: int, user_id: str | int, helpful: bool
    ) -> RatingResult:
        """One rating per answer and user, only from the user who asked."""
        user_id = str(user_id)
        try:
            with self.session() as session:
                asker = session.scalar(
                    select(QueryLog.user_id)
                    .join(AnswerLog, AnswerLog.query_log_id == QueryLog.id)
                    .where(AnswerLog.id == answer_log_id)
                )
                if asker is None:
                    return RatingResult.UNKNOWN_ANSWER
                if asker != user_id:
                    return RatingResult.NOT_ASKER
                exists = session.scalar(
                    select(RatingLog.id).where(
                        RatingLog.answer_log_id == answer_log_id,
                        RatingLog.user_id == user_id,
                    )
                )
                if exists is not None:
                    return RatingResult.ALREADY_RATED
                session.add(
                    RatingLog(
                        answer_log_id=answer_log_id,
                        user_id=user_id,
                        helpful=bool(helpful),
                    )
                )
        except IntegrityError:
            # a concurrent press won the race for the unique key
            return RatingResult.ALREADY_RATED
        return RatingResult.STORED

    def rating_summary(self, faq_id: int | None = None) -> tuple[int, int]:
        """(helpful, not helpful) counts, overall or for one FAQ entry."""
        with self.session() as session:
            stmt = (
                select(RatingLog.helpful, func.count(RatingLog.id))
                .join(AnswerLog, RatingLog.answer_log_id == AnswerLog.id)
                .group_by(RatingLog.helpful)
            )
            if faq_id is not None:
                stmt = stmt.where(AnswerLog.faq_id == faq_id)
            counts = {bool(h): n for h, n in session.execute(stmt)}
        return counts.get(True, 0), counts.get(False, 0)

    # ------------------------------------------------------------ events

    def store_event(
        self, platform: str, dedupe_key: str, event_type: str, payload: Any
    ) -> int | None:
        """Queue an incoming event; None when this dedupe key was seen before."""
        try:
            with self.session() as session:
                row = InboundEvent(
                    platform=platform,
                    dedupe_key=dedupe_key,
                    event_type=event_type,
                    payload=payload,
                    status=EventStatus.PENDING.value,
                )
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:
            logger.info("event %s from %s is a duplicate", dedupe_key, platform)
            return None

    def claim_event(self, event_id: int) -> bool:
        """Move a pending event to processing; False if another worker has it."""
        with self.session() as session:
            result = session.execute(
                update(InboundEvent)
                .where(
                    InboundEvent.id == event_id,
                    InboundEvent.status == EventStatus.PENDING.value,
                )
                .values(status=EventStatus.PROCESSING.value)
            )
            return result.rowcount == 1

    def mark_event(self, event_id: int, status: str, error: str | None = None) -> None:
        status = EventStatus(status)
        with self.session() as session:
            session.execute(
                update(InboundEvent)
                .where(InboundEvent.id == event_id)
                .values(
                    status=status.value,
                    error=error,
                    processed_at=None if status is EventStatus.PENDING else utcnow(),
                )
            )

    def get_event(self, event_id: int) -> EventRecord | None:
        with self.session() as session:
            row = session.get(InboundEvent, event_id)
            return _event_record(row) if row is not None else None

    def pending_events(self, limit: int = 100) -> list[EventRecord]:
        with self.session() as session:
            rows = session.scalars(
                select(InboundEvent)
                .where(InboundEvent.status == EventStatus.PENDING.value)
                .order_by(InboundEvent.id)
                .limit(limit)
            )
            return [_event_record(row) for row in rows]

    def requeue_stale_events(self) -> int:
        """Put events left in processing by a stopped worker back in the queue."""
        with self.session() as session:
            result = session.execute(
                update(InboundEvent)
                .where(InboundEvent.status == EventStatus.PROCESSING.value)
                .values(status=EventStatus.PENDING.value)
            )
            return result.rowcount

    # ------------------------------------------------------- admin users

    def create_admin_user(
        self, username: str, password_hash: str, role: str = AdminRole.VIEWER
    ) -> AdminUserRecord:
        username = _clean_text(username, "Имя пользователя", 100)
        try:
            role = AdminRole(role)
        except ValueError as exc:
            raise ValidationError(f"Неизвестная роль: {role}") from exc
        try:
            with self.session() as session:
                user = AdminUser(
                    username=username, password_hash=password_hash, role=role.value
                )
                session.add(user)
                session.flush()
                return _admin_record(user)
        except IntegrityError as exc:
            raise ValidationError(f"Пользователь «{username}» уже есть") from exc

    def get_admin_user(self, username: str) -> AdminUserRecord | None:
        with self.session() as session:
            user = session.scalar(
                select(AdminUser).where(AdminUser.username == username.strip())
            )
            return _admin_record(user) if user is not None else None

    def get_admin_user_by_id(self, user_id: int) -> AdminUserRecord | None:
        with self.session() as session:
            user = session.get(AdminUser, user_id)
            return _admin_record(user) if user is not None else None

    def list_admin_users(self) -> list[AdminUserRecord]:
        with self.session() as session:
            users = session.scalars(select(AdminUser).order_by(AdminUser.id))
            return [_admin_record(user) for user in users]

    def set_admin_password(self, user_id: int, password_hash: str) -> None:
        with self.session() as session:
            session.execute(
                update(AdminUser)
                .where(AdminUser.id == user_id)
                .values(password_hash=password_hash)
            )

    def touch_login(self, user_id: int) -> None:
        with self.session() as session:
            session.execute(
                update(AdminUser)
                .where(AdminUser.id == user_id)
                .values(last_login_at=utcnow())
            )


# ------------------------------------------------------------------ helpers


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _bump_revision(session: Session) -> None:
    session.execute(
        update(FaqRevision)
        .where(FaqRevision.id == 1)
        .values(revision=FaqRevision.revision + 1)
    )


def _clean_text(value: str | None, label: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{label}: поле не может быть пустым")
    if len(text) > limit:
        raise ValidationError(
            f"{label}: не больше {limit} символов (сейчас {len(text)})"
        )
    return text


def _clean_external_id(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _clean_phrasings(phrasings: Iterable[str], question: str) -> list[str]:
    if isinstance(phrasings, str):
        phrasings = phrasings.splitlines()
    seen = {question.casefold()}
    cleaned = []
    for raw in phrasings:
        text = " ".join((raw or "").split())
        if not text or text.casefold() in seen:
            continue
        if len(text) > MAX_QUESTION_LENGTH:
            raise ValidationError(
                f"Формулировка: не больше {MAX_QUESTION_LENGTH} символов"
            )
        seen.add(text.casefold())
        cleaned.append(text)
    if len(cleaned) > MAX_PHRASINGS:
        raise ValidationError(f"Не больше {MAX_PHRASINGS} формулировок у вопроса")
    return cleaned


def _replace_phrasings(faq: Faq, texts: list[str]) -> None:
    if [p.text for p in faq.phrasings] != texts:
        faq.phrasings = [FaqPhrasing(text=text) for text in texts]


def _find_category(session: Session, name: str) -> Category | None:
    wanted = name.casefold()
    for category in session.scalars(select(Category)):
        if category.name.casefold() == wanted:
            return category
    return None


def _new_category(session: Session, name: str) -> Category:
    last = session.scalar(select(func.max(Category.sort_order)))
    category = Category(name=name, sort_order=(last or 0) + 1)
    session.add(category)
    session.flush()
    return category


def _category(session: Session, category: str | int) -> Category:
    if isinstance(category, int):
        found = session.get(Category, category)
        if found is None:
            raise ValidationError(f"Категория {category} не найдена")
        return found
    name = _clean_text(category, "Категория", MAX_CATEGORY_LENGTH)
    return _find_category(session, name) or _new_category(session, name)


def _require_faq(session: Session, faq_id: int) -> Faq:
    faq = session.get(Faq, faq_id)
    if faq is None:
        raise ValidationError(f"Вопрос {faq_id} не найден")
    return faq


def _faq_record(faq: Faq) -> FaqRecord:
    return FaqRecord(
        id=faq.id,
        external_id=faq.external_id,
        category_id=faq.category_id,
        category=faq.category.name,
        question=faq.question,
        answer=faq.answer,
        phrasings=tuple(p.text for p in faq.phrasings),
        updated_at=faq.updated_at,
    )


def _answer_record(answer_log: AnswerLog, query_log: QueryLog) -> AnswerLogRecord:
    return AnswerLogRecord(
        id=answer_log.id,
        query_log_id=query_log.id,
        platform=query_log.platform,
        user_id=query_log.user_id,
        dialog_id=query_log.dialog_id,
        text_raw=query_log.text_raw,
        text_searched=query_log.text_searched,
        faq_id=answer_log.faq_id,
        score=answer_log.score,
        outcome=Outcome(answer_log.outcome),
        candidates=tuple(
            (int(item[0]), float(item[1])) for item in answer_log.candidates or ()
        ),
        chosen_faq_id=answer_log.chosen_faq_id,
        created_at=answer_log.created_at,
    )


def _event_record(row: InboundEvent) -> EventRecord:
    return EventRecord(
        id=row.id,
        platform=row.platform,
        dedupe_key=row.dedupe_key,
        event_type=row.event_type,
        payload=row.payload,
        status=EventStatus(row.status),
        error=row.error,
        received_at=row.received_at,
        processed_at=row.processed_at,
    )


def _admin_record(user: AdminUser) -> AdminUserRecord:
    return AdminUserRecord(
        id=user.id,
        username=user.username,
        password_hash=user.password_hash,
        role=AdminRole(user.role),
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )

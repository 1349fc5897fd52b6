"""Storage of the FAQ, the logs, the inbound event queue and the admin users.

`Database(url)` owns its engine and session factory; every public method runs
in its own short transaction and returns frozen dataclasses that no longer
depend on a session. Any SQLAlchemy URL works: SQLite (WAL, busy timeout) for a
single machine, PostgreSQL for a larger install. The FAQ methods delegate to
`FaqStore` (faq_store.py), which holds the rules every FAQ write follows.
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
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from faq_store import (
    CategoryRecord,
    DuplicateQuestionError,
    FaqImportRow,
    FaqRecord,
    FaqStore,
    ImportResult,
    ValidationError,
    clean_text,
)
from models import (
    AdminRole,
    AdminUser,
    AnswerLog,
    EventStatus,
    Faq,
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

__all__ = [
    "AdminRole",
    "AdminUserRecord",
    "AnswerLogRecord",
    "CategoryRecord",
    "Database",
    "DuplicateQuestionError",
    "EventRecord",
    "EventStatus",
    "FaqImportRow",
    "FaqRecord",
    "ImportResult",
    "InteractionIds",
    "Outcome",
    "Platform",
    "RatingResult",
    "ValidationError",
    "migration_engine",
]


class RatingResult(StrEnum):
    STORED = "stored"
    ALREADY_RATED = "already_rated"
    NOT_ASKER = "not_asker"
    UNKNOWN_ANSWER = "unknown_answer"


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
        self.faqs = FaqStore(self.session)

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
        return self.faqs.list_faqs(category_id, search)

    def get_faq(self, faq_id: int) -> FaqRecord | None:
        return self.faqs.get_faq(faq_id)

    def get_faq_by_external_id(self, external_id: str) -> FaqRecord | None:
        return self.faqs.get_faq_by_external_id(external_id)

    def add_faq(
        self,
        question: str,
        answer: str,
        category: str | int,
        phrasings: Iterable[str] = (),
        external_id: str | None = None,
    ) -> FaqRecord:
        """Add an entry; DuplicateQuestionError when another entry has its texts."""
        return self.faqs.add_faq(question, answer, category, phrasings, external_id)

    def update_faq(
        self,
        faq_id: int,
        *,
        question: str | None = None,
        answer: str | None = None,
        category: str | int | None = None,
        phrasings: Iterable[str] | None = None,
        expected_updated_at: datetime | None = None,
    ) -> FaqRecord:
        """Change the given fields, under the same rules as `add_faq`.

        With `expected_updated_at`, refuse (StaleEntryError) if the entry was
        saved since then.
        """
        return self.faqs.update_faq(
            faq_id,
            question=question,
            answer=answer,
            category=category,
            phrasings=phrasings,
            expected_updated_at=expected_updated_at,
        )

    def delete_faq(self, faq_id: int) -> None:
        self.faqs.delete_faq(faq_id)

    def upsert_faq_by_external_id(
        self,
        external_id: str,
        question: str,
        answer: str,
        category: str | int,
        phrasings: Iterable[str] | None = None,
    ) -> tuple[FaqRecord, bool]:
        """Insert or update the entry with this external id; True when created."""
        return self.faqs.upsert_faq_by_external_id(
            external_id, question, answer, category, phrasings
        )

    def apply_faq_import(self, rows: Sequence[FaqImportRow]) -> ImportResult:
        """Write an import in one transaction that bumps the revision once."""
        return self.faqs.apply_import(rows)

    # -------------------------------------------------------- categories

    def list_categories(self) -> list[CategoryRecord]:
        return self.faqs.list_categories()

    def add_category(self, name: str) -> CategoryRecord:
        return self.faqs.add_category(name)

    def rename_category(self, category_id: int, name: str) -> CategoryRecord:
        return self.faqs.rename_category(category_id, name)

    def delete_category(self, category_id: int) -> None:
        self.faqs.delete_category(category_id)

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
        username = clean_text(username, "Имя пользователя", 100)
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

"""SQLAlchemy models of the FAQ, the logs, the event queue and the admin users.

The schema itself is created and changed by the Alembic migrations in
`migrations/`; these classes describe it for the ORM and must match them.
All timestamps are naive UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# the largest id any supported database stores (a signed 64-bit integer); a
# bigger number from a button or a URL can name no row, and sqlite or postgres
# would fail to bind it instead of finding nothing
MAX_ID = 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_id(value: object) -> int | None:
    """A row id from outside (button parameters, URLs), or None if it is none."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip() if value is not None else ""
        # isdecimal alone takes «١٢» for 12; only ascii digits are ids
        if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
            return None
        number = int(text)
    return number if 0 < number <= MAX_ID else None


class Platform(StrEnum):
    BITRIX24 = "bitrix24"
    TELEGRAM = "telegram"
    WEB = "web"


class Outcome(StrEnum):
    ANSWERED = "answered"
    CHOICES = "choices"
    NO_ANSWER = "no_answer"
    SMALLTALK = "smalltalk"
    EMPTY = "empty"


class EventStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    IGNORED = "ignored"


class AdminRole(StrEnum):
    EDITOR = "editor"
    VIEWER = "viewer"


def _in(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


class Base(DeclarativeBase):
    pass


class Category(Base):
    __tablename__ = "categories"
    # ids of deleted rows are never reused: old chat buttons carry them
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    faqs: Mapped[list[Faq]] = relationship(back_populates="category")


class Faq(Base):
    __tablename__ = "faqs"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    category: Mapped[Category] = relationship(back_populates="faqs")
    phrasings: Mapped[list[FaqPhrasing]] = relationship(
        back_populates="faq",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="FaqPhrasing.id",
    )


class FaqPhrasing(Base):
    __tablename__ = "faq_phrasings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    faq_id: Mapped[int] = mapped_column(
        ForeignKey("faqs.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)

    faq: Mapped[Faq] = relationship(back_populates="phrasings")


class QueryLog(Base):
    __tablename__ = "query_logs"
    __table_args__ = (CheckConstraint(_in("platform", Platform), name="ck_platform"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20), default=Platform.BITRIX24)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    dialog_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    text_raw: Mapped[str] = mapped_column(Text)
    text_searched: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class AnswerLog(Base):
    __tablename__ = "answer_logs"
    __table_args__ = (CheckConstraint(_in("outcome", Outcome), name="ck_outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query_log_id: Mapped[int] = mapped_column(
        ForeignKey("query_logs.id", ondelete="CASCADE"), index=True
    )
    faq_id: Mapped[int | None] = mapped_column(
        ForeignKey("faqs.id", ondelete="SET NULL"), index=True
    )
    score: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20))
    candidates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    chosen_faq_id: Mapped[int | None] = mapped_column(
        ForeignKey("faqs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    query_log: Mapped[QueryLog] = relationship()


class RatingLog(Base):
    __tablename__ = "rating_logs"
    __table_args__ = (
        UniqueConstraint("answer_log_id", "user_id", name="uq_rating_answer_user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    answer_log_id: Mapped[int] = mapped_column(
        ForeignKey("answer_logs.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(64))
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FaqRevision(Base):
    """One row whose counter grows with every change of the FAQ content."""

    __tablename__ = "faq_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class InboundEvent(Base):
    __tablename__ = "inbound_events"
    __table_args__ = (CheckConstraint(_in("status", EventStatus), name="ck_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(
        String(20), default=EventStatus.PENDING, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)


class AdminUser(Base):
    __tablename__ = "admin_users"
    __table_args__ = (CheckConstraint(_in("role", AdminRole), name="ck_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=AdminRole.VIEWER)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)

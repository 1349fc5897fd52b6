"""Baseline schema; converts a database of the original design in place.

A database made by the original bot has `faqs` with a free-text `category`
column and logs without platform, outcome or a one-rating rule. When such
tables are found (and no alembic version yet), they are renamed to `legacy_*`,
the current tables are created, every row is copied over and the legacy
tables are dropped, all in the migration's transaction.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("migrations.0001")

PLATFORMS = ("bitrix24", "telegram", "web")
DEFAULT_CATEGORY = "Общее"
# the column of each table that exists only in the current layout
CURRENT_MARKERS = {
    "faqs": "category_id",
    "query_logs": "text_raw",
    "answer_logs": "outcome",
    "rating_logs": "helpful",
}
# the order matters: children are dropped before their parents
LEGACY_ORDER = ("rating_logs", "answer_logs", "query_logs", "faqs")


def _check(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _create_tables(existing: set[str]) -> dict[str, sa.Table]:
    specs: dict[str, tuple[Any, ...]] = {
        "categories": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(100), nullable=False, unique=True),
            sa.Column("sort_order", sa.Integer, nullable=False),
        ),
        "faqs": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("external_id", sa.String(100), unique=True),
            sa.Column(
                "category_id",
                sa.Integer,
                sa.ForeignKey("categories.id"),
                nullable=False,
                index=True,
            ),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
        ),
        "faq_phrasings": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "faq_id",
                sa.Integer,
                sa.ForeignKey("faqs.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("text", sa.Text, nullable=False),
        ),
        "query_logs": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("platform", sa.String(20), nullable=False),
            sa.Column("user_id", sa.String(64), nullable=False, index=True),
            sa.Column("dialog_id", sa.String(64), nullable=False),
            sa.Column("message_id", sa.String(64)),
            sa.Column("text_raw", sa.Text, nullable=False),
            sa.Column("text_searched", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False, index=True),
            sa.CheckConstraint(_check("platform", PLATFORMS), name="ck_platform"),
        ),
        "answer_logs": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "query_log_id",
                sa.Integer,
                sa.ForeignKey("query_logs.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column(
                "faq_id",
                sa.Integer,
                sa.ForeignKey("faqs.id", ondelete="SET NULL"),
                index=True,
            ),
            sa.Column("score", sa.Float),
            sa.Column("outcome", sa.String(20), nullable=False),
            sa.Column("candidates", sa.JSON, nullable=False),
            sa.Column(
                "chosen_faq_id",
                sa.Integer,
                sa.ForeignKey("faqs.id", ondelete="SET NULL"),
            ),
            sa.Column("created_at", sa.DateTime, nullable=False, index=True),
            sa.CheckConstraint(
                _check(
                    "outcome",
                    ("answered", "choices", "no_answer", "smalltalk", "empty"),
                ),
                name="ck_outcome",
            ),
        ),
        "rating_logs": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(
                "answer_log_id",
                sa.Integer,
                sa.ForeignKey("answer_logs.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            sa.Column("user_id", sa.String(64), nullable=False),
            sa.Column("helpful", sa.Boolean, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.UniqueConstraint(
                "answer_log_id", "user_id", name="uq_rating_answer_user"
            ),
        ),
        "faq_revision": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("revision", sa.Integer, nullable=False),
        ),
        "inbound_events": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("platform", sa.String(20), nullable=False),
            sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
            sa.Column("event_type", sa.String(64), nullable=False),
            sa.Column("payload", sa.JSON),
            sa.Column("status", sa.String(20), nullable=False, index=True),
            sa.Column("error", sa.Text),
            sa.Column("received_at", sa.DateTime, nullable=False),
            sa.Column("processed_at", sa.DateTime),
            sa.CheckConstraint(
                _check(
                    "status", ("pending", "processing", "done", "failed", "ignored")
                ),
                name="ck_status",
            ),
        ),
        "admin_users": (
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("username", sa.String(100), nullable=False, unique=True),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("role", sa.String(20), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("last_login_at", sa.DateTime),
            sa.CheckConstraint(_check("role", ("editor", "viewer")), name="ck_role"),
        ),
    }
    tables = {}
    for name, columns in specs.items():
        if name in existing:
            tables[name] = sa.table(
                name, *(sa.column(c.name) for c in columns if isinstance(c, sa.Column))
            )
            continue
        tables[name] = op.create_table(name, *columns)
    return tables


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    legacy = [
        name
        for name in LEGACY_ORDER
        if name in existing
        and CURRENT_MARKERS[name]
        not in {c["name"] for c in inspector.get_columns(name)}
    ]
    if legacy:
        logger.info("converting tables of the original design: %s", ", ".join(legacy))
        if bind.dialect.name == "sqlite":
            # keep sqlite from rewriting references in other tables on rename
            op.execute("PRAGMA legacy_alter_table = ON")
        for name in legacy:
            for index in inspector.get_indexes(name):
                if index["name"]:
                    op.drop_index(index["name"], table_name=name)
            op.rename_table(name, f"legacy_{name}")
            existing.discard(name)

    tables = _create_tables(existing)
    if "faq_revision" not in existing:
        op.bulk_insert(tables["faq_revision"], [{"id": 1, "revision": 0}])

    if legacy:
        _convert(bind, tables, set(legacy))
        for name in legacy:
            op.drop_table(f"legacy_{name}")
        if bind.dialect.name == "postgresql":
            for name in (
                "categories",
                "faqs",
                "query_logs",
                "answer_logs",
                "rating_logs",
            ):
                op.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                )


def downgrade() -> None:
    for name in (
        "admin_users",
        "inbound_events",
        "faq_revision",
        "rating_logs",
        "answer_logs",
        "query_logs",
        "faq_phrasings",
        "faqs",
        "categories",
    ):
        op.drop_table(name)


# ---------------------------------------------------------------- conversion


def _rows(bind: sa.Connection, table: str) -> list[Mapping[str, Any]]:
    return list(bind.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).mappings())


def _pick(row: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    return default


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return (
            value.replace(tzinfo=None)
            if value.tzinfo is None
            else value.astimezone(UTC).replace(tzinfo=None)
        )
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return _now()
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    return _now()


def _helpful(row: Mapping[str, Any]) -> bool:
    value = _pick(row, "is_helpful", "rating", "helpful", default=False)
    if isinstance(value, str):
        return value.strip().lower() in {"helpful", "yes", "1", "true", "up", "+"}
    return bool(value) and value > 0


def _convert(
    bind: sa.Connection, tables: dict[str, sa.Table], legacy: set[str]
) -> None:
    faq_ids: set[int] = set()
    if "faqs" in legacy:
        faq_ids = _convert_faqs(bind, tables)
    else:
        faq_ids = {r[0] for r in bind.execute(sa.text("SELECT id FROM faqs"))}

    query_ids: set[int] = set()
    if "query_logs" in legacy:
        query_ids = _convert_query_logs(bind, tables)
    else:
        query_ids = {r[0] for r in bind.execute(sa.text("SELECT id FROM query_logs"))}

    answer_ids: set[int] = set()
    if "answer_logs" in legacy:
        answer_ids = _convert_answer_logs(bind, tables, faq_ids, query_ids)
    else:
        answer_ids = {r[0] for r in bind.execute(sa.text("SELECT id FROM answer_logs"))}

    if "rating_logs" in legacy:
        _convert_rating_logs(bind, tables, answer_ids)


def _convert_faqs(bind: sa.Connection, tables: dict[str, sa.Table]) -> set[int]:
    rows = _rows(bind, "legacy_faqs")
    category_ids: dict[str, int] = {}
    for row in rows:
        name = (_pick(row, "category", default="") or "").strip() or DEFAULT_CATEGORY
        category_ids.setdefault(name, len(category_ids) + 1)
    op.bulk_insert(
        tables["categories"],
        [{"id": i, "name": n, "sort_order": i} for n, i in category_ids.items()],
    )
    op.bulk_insert(
        tables["faqs"],
        [
            {
                "id": row["id"],
                "external_id": None,
                "category_id": category_ids[
                    (_pick(row, "category", default="") or "").strip()
                    or DEFAULT_CATEGORY
                ],
                "question": row["question"] or "",
                "answer": row["answer"] or "",
                "created_at": _timestamp(_pick(row, "created_at", "timestamp")),
                "updated_at": _timestamp(
                    _pick(row, "updated_at", "created_at", "timestamp")
                ),
            }
            for row in rows
        ],
    )
    logger.info("converted %d faqs in %d categories", len(rows), len(category_ids))
    return {row["id"] for row in rows}


def _convert_query_logs(bind: sa.Connection, tables: dict[str, sa.Table]) -> set[int]:
    rows = _rows(bind, "legacy_query_logs")
    converted = []
    for row in rows:
        platform = str(_pick(row, "platform", default="bitrix24")).strip().lower()
        user_id = str(_pick(row, "user_id", default=""))
        text = _pick(row, "query_text", "query", "text", "message", default="")
        converted.append(
            {
                "id": row["id"],
                "platform": platform if platform in PLATFORMS else "bitrix24",
                "user_id": user_id,
                # in a private chat with the bot the dialog id is the user id
                "dialog_id": str(_pick(row, "dialog_id", "chat_id", default=user_id)),
                "message_id": None,
                "text_raw": text,
                "text_searched": text,
                "created_at": _timestamp(_pick(row, "created_at", "timestamp")),
            }
        )
    op.bulk_insert(tables["query_logs"], converted)
    logger.info("converted %d query logs", len(rows))
    return {row["id"] for row in rows}


def _convert_answer_logs(
    bind: sa.Connection,
    tables: dict[str, sa.Table],
    faq_ids: set[int],
    query_ids: set[int],
) -> set[int]:
    rows = _rows(bind, "legacy_answer_logs")
    scores = [
        float(s)
        for s in (_pick(r, "similarity_score", "score") for r in rows)
        if s is not None
    ]
    # the original bot stored either a 0..1 similarity or a percentage
    scale = 100.0 if scores and max(scores) <= 1.0 else 1.0
    orphans = sorted({r["query_log_id"] for r in rows} - query_ids - {None})
    if orphans:
        logger.warning("%d answer logs point to missing queries", len(orphans))
        op.bulk_insert(
            tables["query_logs"],
            [
                {
                    "id": qid,
                    "platform": "bitrix24",
                    "user_id": "",
                    "dialog_id": "",
                    "message_id": None,
                    "text_raw": "",
                    "text_searched": "",
                    "created_at": _now(),
                }
                for qid in orphans
            ],
        )
    converted = []
    for row in rows:
        faq_id = row.get("faq_id")
        score = _pick(row, "similarity_score", "score")
        converted.append(
            {
                "id": row["id"],
                "query_log_id": row["query_log_id"],
                "faq_id": faq_id if faq_id in faq_ids else None,
                "score": None if score is None else round(float(score) * scale, 2),
                "outcome": "answered" if faq_id is not None else "no_answer",
                "candidates": [],
                "chosen_faq_id": None,
                "created_at": _timestamp(_pick(row, "created_at", "timestamp")),
            }
        )
    op.bulk_insert(tables["answer_logs"], converted)
    logger.info("converted %d answer logs", len(rows))
    return {row["id"] for row in rows}


def _convert_rating_logs(
    bind: sa.Connection, tables: dict[str, sa.Table], answer_ids: set[int]
) -> None:
    rows = _rows(bind, "legacy_rating_logs")
    seen: set[tuple[int, str]] = set()
    converted = []
    for row in rows:
        key = (row["answer_log_id"], str(_pick(row, "user_id", default="")))
        if row["answer_log_id"] not in answer_ids or key in seen:
            continue
        seen.add(key)
        converted.append(
            {
                "id": row["id"],
                "answer_log_id": key[0],
                "user_id": key[1],
                "helpful": _helpful(row),
                "created_at": _timestamp(_pick(row, "created_at", "timestamp")),
            }
        )
    if len(converted) != len(rows):
        # the old schema allowed repeated presses; the first one counts
        logger.warning(
            "dropped %d repeated or orphaned ratings", len(rows) - len(converted)
        )
    op.bulk_insert(tables["rating_logs"], converted)
    logger.info("converted %d rating logs", len(converted))

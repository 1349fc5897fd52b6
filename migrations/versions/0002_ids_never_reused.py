"""Ids of deleted FAQ entries and categories are never given out again.

Chat buttons carry these ids for as long as the messages stay in a chat. On
sqlite a plain INTEGER PRIMARY KEY gives the id of a deleted last row to the
next new row, so an old button would open another entry; AUTOINCREMENT keeps
ids growing. PostgreSQL sequences never go back, so nothing changes there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("categories", "faqs")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # foreign keys are off while migrating (database.migration_engine), so
        # the copy keeps every row of the tables that point here
        with op.batch_alter_table(
            table,
            recreate="always",
            table_kwargs={"sqlite_autoincrement": autoincrement},
        ):
            pass


def upgrade() -> None:
    _recreate(autoincrement=True)


def downgrade() -> None:
    _recreate(autoincrement=False)

"""Migrations: a fresh database, the original design's schema, and reruns."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from database import Database, Outcome
from migrate_add_platform import migrate

ROOT = Path(__file__).resolve().parent.parent
LEGACY_SQL = Path(__file__).parent / "data" / "legacy_schema.sql"


def _legacy_db(path: Path, with_platform: bool = False) -> str:
    connection = sqlite3.connect(path)
    connection.executescript(LEGACY_SQL.read_text(encoding="utf-8"))
    if with_platform:
        # the layout after the original design's own platform migration
        connection.executescript(
            "ALTER TABLE query_logs ADD COLUMN platform TEXT DEFAULT 'telegram';"
            "UPDATE query_logs SET platform = 'bitrix24' WHERE id = 2;"
        )
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def _count(url: str, table: str) -> int:
    db = Database(url)
    with db.engine.connect() as connection:
        value = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
    db.close()
    return value


def test_fresh_database_gets_the_current_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"

    assert migrate(url) == "0002"
    assert migrate(url) == "0002"
    assert _count(url, "faq_revision") == 1


def test_legacy_database_keeps_every_row(tmp_path):
    url = _legacy_db(tmp_path / "old.db")

    migrate(url)
    db = Database(url)

    faqs = {f.id: f for f in db.list_faqs()}
    assert sorted(faqs) == [1, 2, 3, 5, 6]
    assert faqs[1].category == "Отпуск"
    assert faqs[5].category == "IT"
    assert faqs[6].category == "Общее"
    assert faqs[1].question == "Как оформить отпуск?"
    assert faqs[1].updated_at.isoformat() == "2024-03-02T10:30:00"
    categories = {c.name: c.faq_count for c in db.list_categories()}
    assert categories == {"Отпуск": 2, "IT": 2, "Общее": 1}

    first = db.get_answer_log(1)
    assert first.platform == "bitrix24"
    assert (first.user_id, first.dialog_id) == ("405", "405")
    assert first.text_raw == first.text_searched == "как оформить отпуск"
    assert (first.faq_id, first.score, first.outcome) == (1, 87.5, Outcome.ANSWERED)
    assert db.get_answer_log(3).outcome is Outcome.NO_ANSWER
    # the entry this log pointed to was deleted long ago; the log stays
    assert db.get_answer_log(4).faq_id is None
    assert _count(url, "query_logs") == 4
    assert _count(url, "answer_logs") == 4
    # the repeated press on answer 2 was never meant to count twice
    assert _count(url, "rating_logs") == 2
    assert db.rating_summary() == (1, 1)
    db.close()


def test_legacy_tables_are_gone_and_new_rows_get_fresh_ids(tmp_path):
    url = _legacy_db(tmp_path / "old.db")
    migrate(url)
    db = Database(url)

    tables = set(inspect(db.engine).get_table_names())
    faq = db.add_faq("Новый вопрос", "Ответ", "IT")
    ids = db.log_interaction("web", 1, 1, "q", "q", "answered", faq.id, 90)

    assert not {t for t in tables if t.startswith("legacy_")}
    assert faq.id == 7
    assert ids.query_log_id == 5
    assert db.faq_revision() == 1
    db.close()


def test_platform_column_of_an_intermediate_version_is_kept(tmp_path):
    url = _legacy_db(tmp_path / "mid.db", with_platform=True)

    migrate(url)
    db = Database(url)

    assert db.get_answer_log(1).platform == "telegram"
    assert db.get_answer_log(2).platform == "bitrix24"
    db.close()


def test_ratings_keep_one_per_answer_and_user_after_migration(tmp_path):
    url = _legacy_db(tmp_path / "old.db")
    migrate(url)
    db = Database(url)

    assert db.record_rating(1, 405, False).value == "already_rated"
    assert db.record_rating(3, 512, True).value == "stored"
    db.close()


@pytest.mark.parametrize("legacy", [False, True])
def test_command_line_is_safe_to_run_twice(tmp_path, legacy):
    path = tmp_path / "cli.db"
    url = _legacy_db(path) if legacy else f"sqlite:///{path}"

    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "migrate_add_platform.py", "--url", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    assert "already at schema revision 0002" in done.stderr
    assert _count(url, "faqs") == (5 if legacy else 0)


@pytest.mark.parametrize("legacy", [False, True])
def test_ids_of_deleted_entries_and_categories_are_never_reused(tmp_path, legacy):
    # chat buttons carry these ids; a reused one would open another entry
    url = _legacy_db(tmp_path / "old.db") if legacy else f"sqlite:///{tmp_path}/n.db"
    migrate(url)
    db = Database(url)
    last = db.add_faq("Последний вопрос?", "Ответ", "Новая тема")
    category = next(c for c in db.list_categories() if c.name == "Новая тема")

    db.delete_faq(last.id)
    db.delete_category(category.id)
    again = db.add_faq("Ещё один вопрос?", "Ответ", "Другая тема")

    assert again.id == last.id + 1
    assert again.category_id == category.id + 1
    assert db.get_faq(last.id) is None
    if legacy:
        assert db.get_faq(1).question == "Как оформить отпуск?"
        assert _count(url, "faq_phrasings") == 0
    db.close()

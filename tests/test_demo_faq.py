"""The demo FAQ and the JSON loader behind `demo_faq.py`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from database import ValidationError
from demo_faq import DEMO_FAQ, load_demo, load_file

ROOT = Path(__file__).resolve().parent.parent


def test_demo_faq_is_large_and_varied_enough():
    categories = {entry.category for entry in DEMO_FAQ}

    assert len(DEMO_FAQ) >= 30
    assert len(categories) >= 5
    assert sum(bool(entry.phrasings) for entry in DEMO_FAQ) >= 20
    assert len({entry.key for entry in DEMO_FAQ}) == len(DEMO_FAQ)
    assert len({entry.question for entry in DEMO_FAQ}) == len(DEMO_FAQ)


@pytest.mark.parametrize("entry", DEMO_FAQ, ids=lambda e: e.key)
def test_demo_answers_use_bb_code_not_markdown(entry):
    assert not re.search(r"\*\*|__|^#|\]\(", entry.answer, flags=re.MULTILINE)
    assert entry.answer.count("[b]") == entry.answer.count("[/b]")


def test_load_demo_fills_an_empty_database_once(database):
    assert load_demo(database) == len(DEMO_FAQ)
    assert load_demo(database) == 0

    faqs = database.list_faqs()
    assert len(faqs) == len(DEMO_FAQ)
    assert {f.external_id for f in faqs} == {f"demo-{e.key}" for e in DEMO_FAQ}


def test_demo_faq_finds_what_employees_ask(database, faq_search):
    load_demo(database)
    by_key = {f.external_id: f.id for f in database.list_faqs()}

    for text, key in [
        ("впн не подключается", "demo-it-vpn"),
        ("забыл пароль от почты", "demo-it-password"),
        ("когда придёт зарплата", "demo-pay-dates"),
        ("как заказать пропуск гостю", "demo-office-pass"),
    ]:
        assert faq_search.search(text, limit=3)[0].faq_id == by_key[key], text


def test_load_file_creates_then_updates_by_id(database, tmp_path):
    path = tmp_path / "faq.json"
    path.write_text(
        json.dumps(
            [
                {"id": 1, "category": "A", "question": "Вопрос 1", "answer": "Ответ"},
                {
                    "id": "x",
                    "category": "B",
                    "question": "Вопрос 2",
                    "answer": "Ответ",
                    "phrasings": ["иначе"],
                },
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    assert load_file(database, path) == (2, 0)

    path.write_text(
        json.dumps(
            [{"id": 1, "category": "A", "question": "Вопрос 1?", "answer": "Новый"}],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    assert load_file(database, path) == (0, 1)

    faqs = {f.external_id: f for f in database.list_faqs()}
    assert faqs["1"].answer == "Новый"
    assert faqs["x"].phrasings == ("иначе",)


def test_load_file_rejects_entries_without_fields(database, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": 1, "question": "Вопрос"}]), encoding="utf-8")

    with pytest.raises(ValidationError, match="запись 1"):
        load_file(database, path)


def test_load_file_refuses_a_question_that_another_entry_has(database, tmp_path):
    path = tmp_path / "faq.json"
    path.write_text(
        json.dumps(
            [
                {"id": 1, "category": "A", "question": "Где кухня?", "answer": "Тут"},
                {"id": 2, "category": "A", "question": "где кухня", "answer": "Там"},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )

    with pytest.raises(ValidationError, match="Такой вопрос уже есть в записи"):
        load_file(database, path)
    assert [f.external_id for f in database.list_faqs()] == ["1"]


def test_command_line_run_twice_adds_nothing_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "demo_faq.py", "--url", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    assert "demo skipped" in done.stderr

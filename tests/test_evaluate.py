"""evaluate.py on a tiny set made for the test (never the shared eval data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import evaluate

ROOT = Path(__file__).resolve().parent.parent

FAQ = [
    {
        "id": 1,
        "category": "Кадры",
        "question": "Как оформить отпуск?",
        "answer": "Заявка на портале",
    },
    {
        "id": 2,
        "category": "IT",
        "question": "Как подключиться к VPN?",
        "answer": "Клиент VPN",
    },
    {
        "id": 3,
        "category": "Зарплата",
        "question": "Когда выплачивают зарплату?",
        "answer": "10 и 25 числа",
    },
]
QUERIES = [
    {"query": "Как оформить отпуск?", "expected_id": 1},
    {"query": "Как подключиться к VPN?", "expected_id": 2},
    {"query": "когда выплачивают зарплату", "expected_id": 3},
    {"query": "рецепт борща со сметаной", "expected_id": None},
]


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "tiny.faq.json").write_text(
        json.dumps(FAQ, ensure_ascii=False), encoding="utf-8"
    )
    (folder / "tiny.queries.json").write_text(
        json.dumps(QUERIES, ensure_ascii=False), encoding="utf-8"
    )
    return folder


def test_evaluate_set_measures_the_bot_pipeline(eval_dir, embedder, tmp_path):
    out = tmp_path / "out.jsonl"
    with out.open("w", encoding="utf-8") as json_out:
        result = evaluate.evaluate_set(
            "tiny",
            eval_dir / "tiny.faq.json",
            eval_dir / "tiny.queries.json",
            embedder,
            json_out=json_out,
        )

    assert (result.queries, result.in_scope) == (4, 3)
    assert result.top1_rate == 1.0
    assert result.top3_rate == 1.0
    assert result.accuracy >= 0.75
    assert len(result.latencies) == 4
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["expected_id"] for line in lines] == [1, 2, 3, None]
    assert lines[0]["answered_id"] == 1
    assert lines[0]["candidates"][0]["id"] == 1
    assert lines[3]["answered_id"] is None
    assert set(lines[0]) >= {"query", "outcome", "answered_id", "candidates"}


def test_find_sets_pairs_faq_and_query_files(eval_dir):
    (eval_dir / "lonely.faq.json").write_text("[]", encoding="utf-8")

    assert [name for name, _, _ in evaluate.find_sets(eval_dir)] == ["tiny"]


def test_evaluate_never_touches_live_data(eval_dir, tmp_path, monkeypatch):
    live = tmp_path / "live.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{live}")

    done = subprocess.run(
        [sys.executable, "evaluate.py", "--all", "--eval-dir", str(eval_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert "tiny" in done.stdout and "top-1" in done.stdout
    assert not live.exists()


def test_out_of_scope_choices_are_reported():
    from types import SimpleNamespace

    def reply(outcome, choices=()):
        picked = [SimpleNamespace(faq_id=faq_id) for faq_id in choices]
        return SimpleNamespace(
            outcome=outcome, answer=None, choices=picked, candidates=picked, took_ms=1
        )

    result = evaluate.SetResult("tiny")
    external = {1: "1", 2: "2"}
    evaluate._score(result, None, reply("choices", (1, 2)), external)
    evaluate._score(result, None, reply("no_answer"), external)
    evaluate._score(result, "1", reply("choices", (1,)), external)

    # offering choices to an off-topic query still counts as handled
    assert result.handled == 2 and result.accuracy == pytest.approx(2 / 3)
    assert result.out_of_scope_choices_rate == 0.5
    assert result.right_in_choices_rate == 1.0
    table = evaluate.format_table([result])
    assert "oos choices" in table.splitlines()[0]
    assert "0.500" in table.splitlines()[2]

"""Measure how well the bot finds FAQ entries, with the pipeline the bot runs.

    python evaluate.py --faq FAQ.json --queries QUERIES.json [--json OUT.jsonl]
                       [--model NAME] [--threshold N]
    python evaluate.py --all [--eval-dir DIR]

Each set is loaded into a throw-away database and index in a temporary folder
(live data is never touched) and every query goes through
`faq_core.FAQEngine.ask`, decision included. Reported per set:

* top-1 / top-3: the expected entry ranks first / among the first three
  (in-scope queries only);
* answer accuracy: an in-scope query is answered with the expected entry, an
  out-of-scope one (`expected_id` null) is not answered at all;
* choices: share of queries that got a "did you mean" list, and how often the
  expected entry was on it;
* oos choices: share of out-of-scope queries that got a "did you mean" list.
  Answer accuracy counts those as handled (nothing was answered), so a wide
  choices band looks free there; this column shows what it costs;
* latency of `ask`, median and 95th percentile.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import load_config
from database import Database
from demo_faq import load_file
from embeddings import (
    Embedder,
    make_embedder,
)
from faq_core import FAQEngine
from faq_search import FAQSearch

logger = logging.getLogger("evaluate")

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_EVAL_DIR = PROJECT_DIR.parent / "shared" / "eval"


@dataclass
class SetResult:
    name: str
    queries: int = 0
    in_scope: int = 0
    top1: int = 0
    top3: int = 0
    handled: int = 0
    choices: int = 0
    right_in_choices: int = 0
    in_scope_choices: int = 0
    out_of_scope: int = 0
    out_of_scope_choices: int = 0
    latencies: list[float] = field(default_factory=list)

    @staticmethod
    def _share(part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    @property
    def top1_rate(self) -> float:
        return self._share(self.top1, self.in_scope)

    @property
    def top3_rate(self) -> float:
        return self._share(self.top3, self.in_scope)

    @property
    def accuracy(self) -> float:
        return self._share(self.handled, self.queries)

    @property
    def choices_rate(self) -> float:
        return self._share(self.choices, self.queries)

    @property
    def right_in_choices_rate(self) -> float:
        return self._share(self.right_in_choices, self.in_scope_choices)

    @property
    def out_of_scope_choices_rate(self) -> float:
        return self._share(self.out_of_scope_choices, self.out_of_scope)

    def latency(self, quantile: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def make_engine(database: Database, search: FAQSearch, threshold: float | None) -> Any:
    """The engine the bot runs, over a throw-away database and index."""
    return FAQEngine(database, search, threshold=threshold)


def _outcome(reply: Any) -> str:
    return str(getattr(reply.outcome, "value", reply.outcome))


def evaluate_set(
    name: str,
    faq_path: Path,
    queries_path: Path,
    embedder: Embedder,
    threshold: float | None = None,
    json_out: Any = None,
) -> SetResult:
    queries = json.loads(queries_path.read_text(encoding="utf-8"))
    result = SetResult(name)
    with tempfile.TemporaryDirectory(prefix="faq-eval-") as folder:
        database = Database(f"sqlite:///{Path(folder) / 'eval.db'}")
        database.init_schema()
        load_file(database, faq_path)
        external = {faq.id: faq.external_id for faq in database.list_faqs()}
        search = FAQSearch(database, embedder, chroma_path=Path(folder) / "chroma")
        engine = make_engine(database, search, threshold)
        for item in queries:
            expected = None if item["expected_id"] is None else str(item["expected_id"])
            reply = engine.ask(item["query"])
            _score(result, expected, reply, external)
            if json_out is not None:
                json_out.write(
                    json.dumps(
                        _record(item, expected, reply, external), ensure_ascii=False
                    )
                    + "\n"
                )
        search.close()
        database.close()
    return result


def _score(
    result: SetResult, expected: str | None, reply: Any, external: dict[int, str | None]
) -> None:
    ranked = [external.get(c.faq_id) for c in reply.candidates]
    answered = external.get(reply.answer.faq_id) if reply.answer is not None else None
    outcome = _outcome(reply)
    result.queries += 1
    result.latencies.append(float(reply.took_ms))
    if outcome == "choices":
        result.choices += 1
    if expected is None:
        result.out_of_scope += 1
        result.out_of_scope_choices += outcome == "choices"
        result.handled += outcome != "answered"
        return
    result.in_scope += 1
    result.top1 += ranked[:1] == [expected]
    result.top3 += expected in ranked[:3]
    result.handled += outcome == "answered" and answered == expected
    if outcome == "choices":
        result.in_scope_choices += 1
        result.right_in_choices += expected in {
            external.get(c.faq_id) for c in reply.choices
        }


def _record(
    item: dict[str, Any],
    expected: str | None,
    reply: Any,
    external: dict[int, str | None],
) -> dict[str, Any]:
    return {
        "query": item["query"],
        "expected_id": item["expected_id"],
        "answered_id": (
            _original_id(external.get(reply.answer.faq_id), item["expected_id"])
            if reply.answer is not None
            else None
        ),
        "outcome": _outcome(reply),
        "choices": [
            _original_id(external.get(c.faq_id), item["expected_id"])
            for c in reply.choices
        ],
        "candidates": [
            {
                "id": _original_id(external.get(c.faq_id), item["expected_id"]),
                "score": round(float(c.score), 2),
            }
            for c in reply.candidates
        ],
    }


def _original_id(value: str | None, like: Any) -> Any:
    """Give ids back in the type the query file uses (numbers stay numbers)."""
    if value is not None and isinstance(like, int) and value.lstrip("-").isdigit():
        return int(value)
    return value


def find_sets(eval_dir: Path) -> list[tuple[str, Path, Path]]:
    sets = []
    for faq_path in sorted(eval_dir.glob("*.faq.json")):
        name = faq_path.name.removesuffix(".faq.json")
        queries_path = eval_dir / f"{name}.queries.json"
        if queries_path.exists():
            sets.append((name, faq_path, queries_path))
    return sets


def format_table(results: Iterable[SetResult]) -> str:
    header = (
        f"{'set':<16} {'queries':>7} {'top-1':>6} {'top-3':>6} {'answer':>7} "
        f"{'choices':>8} {'right in':>9} {'oos choices':>12} "
        f"{'p50 ms':>7} {'p95 ms':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        median = statistics.median(r.latencies or [0.0])
        lines.append(
            f"{r.name:<16} {r.queries:>7} {r.top1_rate:>6.3f} {r.top3_rate:>6.3f} "
            f"{r.accuracy:>7.3f} {r.choices_rate:>8.3f} "
            f"{r.right_in_choices_rate:>9.3f} {r.out_of_scope_choices_rate:>12.3f} "
            f"{median:>7.1f} {r.latency(0.95):>7.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Evaluate FAQ retrieval with the bot's own pipeline."
    )
    parser.add_argument("--faq", type=Path, help="FAQ JSON file")
    parser.add_argument("--queries", type=Path, help="queries JSON file")
    parser.add_argument("--json", type=Path, help="write one JSON line per query")
    parser.add_argument("--model", default=None, help="embedding model (MODEL_NAME)")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument(
        "--all", action="store_true", help="run every set in --eval-dir"
    )
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )

    if args.all:
        sets = find_sets(args.eval_dir)
        if not sets:
            parser.error(f"no *.faq.json with matching queries in {args.eval_dir}")
    elif args.faq and args.queries:
        sets = [(args.faq.name.removesuffix(".faq.json"), args.faq, args.queries)]
    else:
        parser.error("give --faq and --queries, or --all")

    model_name, threads = configured_model()
    embedder = make_embedder(args.model or model_name, num_threads=threads)
    threshold = args.threshold
    json_out = args.json.open("w", encoding="utf-8") if args.json else None
    results = []
    try:
        for name, faq_path, queries_path in sets:
            results.append(
                evaluate_set(
                    name, faq_path, queries_path, embedder, threshold, json_out
                )
            )
    finally:
        if json_out is not None:
            json_out.close()
    shown = "engine default" if threshold is None else f"{threshold:g}"
    print(f"model {embedder.name}, threshold {shown}")
    print(format_table(results))
    return 0


def configured_model() -> tuple[str, int]:
    """The configured model name and embedding threads (MODEL_NAME, ...)."""
    config = load_config()
    return config.model_name, config.embedding_threads


if __name__ == "__main__":
    sys.exit(main())

"""Run `evaluate.py` on every development set, then time a 300-entry FAQ.

    python benchmark.py [--eval-dir DIR] [--model NAME] [--threshold N]
                        [--latency-size N] [--no-latency]

The first table is `evaluate.py --all`. The second times `FAQEngine.ask` on
one FAQ of `--latency-size` entries assembled from all development sets (their
entries, then in-scope queries as filler entries until the size is reached),
asking every query of the sets that is not an entry: once as it comes (the
embedding included), and once more with its vector in the query cache, which
leaves the rest of the pipeline (index, BM25, n-grams, decision).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from database import Database
from demo_faq import load_file
from embeddings import make_embedder
from evaluate import DEFAULT_EVAL_DIR, configured_model, find_sets, make_engine
from evaluate import main as evaluate_main
from faq_search import FAQSearch

DEFAULT_LATENCY_SIZE = 300
# queries timed; spread over all sets, the same ones on every run
LATENCY_QUERIES = 400


def latency_faq(eval_dir: Path, size: int) -> tuple[list[dict], list[str]]:
    """FAQ entries of `size` from the development sets, and queries to time."""
    entries: list[dict] = []
    queries: list[str] = []
    for name, faq_path, queries_path in find_sets(eval_dir):
        for item in json.loads(faq_path.read_text(encoding="utf-8")):
            entries.append({**item, "id": f"{name}:{item['id']}"})
        queries += [q["query"] for q in json.loads(queries_path.read_text("utf-8"))]
    asked = queries[: LATENCY_QUERIES * 2 : 2]
    filler = iter(q for q in queries[1::2] if q not in asked)
    while len(entries) < size:
        text = next(filler)
        entries.append(
            {"id": f"filler:{len(entries)}", "category": "Filler"}
            | {"question": text, "answer": text}
        )
    return entries[:size], asked


def time_latency(eval_dir: Path, model: str, threads: int, size: int) -> str:
    entries, asked = latency_faq(eval_dir, size)
    embedder = make_embedder(model, num_threads=threads)
    with tempfile.TemporaryDirectory(prefix="faq-latency-") as folder:
        faq_path = Path(folder) / "latency.faq.json"
        faq_path.write_text(json.dumps(entries, ensure_ascii=False), "utf-8")
        database = Database(f"sqlite:///{Path(folder) / 'latency.db'}")
        database.init_schema()
        load_file(database, faq_path)
        search = FAQSearch(database, embedder, chroma_path=Path(folder) / "chroma")
        engine = make_engine(database, search, None)
        engine.ask("прогрев")
        cold = [engine.ask(text).took_ms for text in asked]
        warm = [engine.ask(text).took_ms for text in asked]
        search.close()
        database.close()
    rows = [("whole ask (embedding)", cold), ("without the embedding", warm)]
    lines = [
        f"latency of ask() on a {size}-entry FAQ, {len(asked)} queries",
        f"{'':<24} {'p50 ms':>7} {'p95 ms':>7}",
    ]
    lines += [f"{n:<24} {_p(v, 0.5):>7.1f} {_p(v, 0.95):>7.1f}" for n, v in rows]
    return "\n".join(lines)


def _p(values: list[float], quantile: float) -> float:
    if quantile == 0.5:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--latency-size", type=int, default=DEFAULT_LATENCY_SIZE)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    parser.add_argument("--model", default=None)
    own, rest = parser.parse_known_args(argv)
    forwarded = ["--eval-dir", str(own.eval_dir), *rest]
    if own.model:
        forwarded += ["--model", own.model]
    status = evaluate_main(["--all", *forwarded])
    if status or own.no_latency:
        return status
    model, threads = configured_model()
    print()
    print(time_latency(own.eval_dir, own.model or model, threads, own.latency_size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

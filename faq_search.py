"""Dense search over the FAQ: a ChromaDB collection kept in step with the database.

The database is the source of truth. The collection holds one vector per FAQ
question and per extra phrasing (ids `faq-<id>-q`, `faq-<id>-p<n>`), with the
FAQ id, the kind and a hash of the text in the metadata, and records the model
name and the vector size in its own metadata. The distance is cosine, and a
hit's score is the cosine similarity in 0..100 (see `embeddings`).

Each stored question or phrasing is one vector, the normalised sum of its
`query: ` and `passage: ` encodings (`Embedder.embed_questions`): on the
development sets it ranks better than either encoding alone (see
docs/benchmarks.md), and a question asked word for word still scores about 98.
The collection records this layout as its `encoding`; an index built another
way is rebuilt on start.

Freshness across processes: every change of the FAQ bumps `faq_revision` in
the same transaction. Before each search the revision is compared with the one
last synced (one cheap query); when it moved, the collection is brought in step
by content hash. Writes to a local collection happen under a file lock, and a
generation file next to it tells a process when someone else wrote: chromadb
keeps its HNSW graph in memory per process and does not notice writes of
another process, so the client is then reopened to reload it. Hits are always
filtered against the entries synced from the database, so a deleted entry is
never returned.

Ranking: after each sync the vectors are read back from the collection into
an in-memory matrix, and a query is scored against all of them with one
matrix product. For a few hundred entries this is exact and takes well under
a millisecond, where Chroma's HNSW query took several; the collection stays
the only store of the vectors, so every process ranks the same ones.
`score_all` also gives the centred cosine (the mean FAQ vector subtracted
from both sides) that `faq_core` ranks by: e5 puts every sentence in a
narrow cone, and centring on the FAQ spreads its entries apart.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.api.client import SharedSystemClient
from chromadb.config import Settings
from chromadb.errors import NotFoundError
from filelock import FileLock

from database import Database, FaqRecord
from embeddings import Embedder, score_from_cosine

logger = logging.getLogger(__name__)

DEFAULT_COLLECTION = "faq_index"
KIND_QUESTION = "question"
KIND_PHRASING = "phrasing"
# how stored texts are embedded; a collection recording another value is rebuilt
ENCODING = "query+passage"
EMBED_BATCH = 64


@dataclass(frozen=True)
class SearchHit:
    faq_id: int
    score: float
    matched_text: str
    kind: str


@dataclass(frozen=True)
class DenseScores:
    """Dense similarity of one query to every indexed FAQ entry."""

    faq_ids: tuple[int, ...]
    # best cosine over the entry's question and phrasings, -1..1
    cosine: np.ndarray
    # the same with the FAQ's mean vector subtracted and renormalised
    centred: np.ndarray
    # the question or phrasing that gave `cosine`, and its kind
    matched_text: tuple[str, ...]
    matched_kind: tuple[str, ...]


@dataclass(frozen=True)
class _Matrix:
    """The synced vectors, grouped by FAQ entry (ascending id)."""

    entries: tuple[_Entry, ...]
    vectors: np.ndarray
    centred: np.ndarray
    mean: np.ndarray
    # first row of each entry's group, for np.maximum.reduceat
    starts: np.ndarray
    # the group (entry) of each row
    groups: np.ndarray
    faq_ids: tuple[int, ...]


@dataclass(frozen=True)
class _Entry:
    vector_id: str
    faq_id: int
    kind: str
    text: str
    digest: str


def _chroma_settings() -> Settings:
    # telemetry would try to reach the internet on every client start
    return Settings(anonymized_telemetry=False, allow_reset=False)


def make_chroma_client(
    path: str | Path | None = None, host: str | None = None, port: int | None = None
) -> Any:
    """A Chroma server client when `host` is given, else a local folder client."""
    if host:
        return chromadb.HttpClient(
            host=host, port=port or 8000, settings=_chroma_settings()
        )
    if path is None:
        raise ValueError("make_chroma_client needs a path or a host")
    resolved = Path(path).resolve()
    resolved.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(resolved), settings=_chroma_settings())


def _entries(faqs: list[FaqRecord]) -> dict[str, _Entry]:
    entries = {}
    for faq in faqs:
        texts = [(f"faq-{faq.id}-q", KIND_QUESTION, faq.question)]
        texts += [
            (f"faq-{faq.id}-p{n}", KIND_PHRASING, text)
            for n, text in enumerate(faq.phrasings, start=1)
        ]
        for vector_id, kind, text in texts:
            digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
            entries[vector_id] = _Entry(vector_id, faq.id, kind, text, digest)
    return entries


class FAQSearch:
    """The FAQ's vector index and its dense search."""

    def __init__(
        self,
        database: Database,
        embedder: Embedder,
        chroma_path: str | Path | None = None,
        client: Any = None,
        collection_name: str = DEFAULT_COLLECTION,
    ) -> None:
        self.database = database
        self.embedder = embedder
        self.collection_name = collection_name
        self._own_dir: Path | None = None
        if client is None and chroma_path is None:
            # a private folder: chromadb shares one in-memory store per process
            self._own_dir = Path(tempfile.mkdtemp(prefix="faq-index-"))
            chroma_path = self._own_dir
        self._path = Path(chroma_path).resolve() if client is None else None
        self._client = client
        self._collection: Any = None
        self._entries: dict[str, _Entry] = {}
        self._matrix: _Matrix | None = None
        self._synced_revision: int | None = None
        self._generation = -1
        self._generation_mtime = -1
        self._sync_lock = threading.Lock()
        self._file_lock = (
            FileLock(str(self._path / f"{collection_name}.lock"), timeout=60)
            if self._path is not None
            else None
        )
        if self._path is not None:
            self._path.mkdir(parents=True, exist_ok=True)
        self.ensure_fresh()

    def __repr__(self) -> str:
        where = self._path or "server"
        return f"FAQSearch({where}, model={self.embedder.name!r})"

    @property
    def model_name(self) -> str:
        return self.embedder.name

    def close(self) -> None:
        self._collection = None
        self._client = None
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    # ------------------------------------------------------------ public

    def ensure_fresh(self) -> None:
        """Bring the index in step with the database if either side moved."""
        revision = self.database.faq_revision()
        if revision == self._synced_revision and not self._foreign_write():
            return
        with self._sync_lock, self._locked():
            revision = self.database.faq_revision()
            first = self._synced_revision is None
            if self._foreign_write() or self._collection is None:
                self._open()
            faqs = self.database.list_faqs()
            self._sync(_entries(faqs), check_all=first)
            self._load_matrix()
            self._synced_revision = revision

    def rebuild(self, reason: str) -> None:
        """Drop the collection and index every FAQ entry again."""
        with self._sync_lock, self._locked():
            if self._collection is None or self._foreign_write():
                self._open()
            revision = self.database.faq_revision()
            entries = _entries(self.database.list_faqs())
            self._recreate(reason)
            self._write(list(entries.values()), [])
            self._entries = entries
            self._load_matrix()
            self._synced_revision = revision

    def search(self, text: str, limit: int = 5) -> list[SearchHit]:
        """The best `limit` FAQ entries for `text`, one hit per entry, best first."""
        if limit <= 0:
            return []
        scores = self.score_all(text)
        if scores is None:
            return []
        order = sorted(
            range(len(scores.faq_ids)),
            key=lambda k: (-float(scores.cosine[k]), scores.faq_ids[k]),
        )
        return [
            SearchHit(
                scores.faq_ids[k],
                score_from_cosine(float(scores.cosine[k])),
                scores.matched_text[k],
                scores.matched_kind[k],
            )
            for k in order[:limit]
        ]

    def score_all(self, text: str) -> DenseScores | None:
        """Dense scores of `text` for every indexed entry; None when there is none."""
        self.ensure_fresh()
        text = text.strip()
        matrix = self._matrix
        if not text or matrix is None or not matrix.entries:
            return None
        query = self.embedder.embed_queries([text])[0].astype(np.float32)
        cosine = matrix.vectors @ query
        shifted = query - matrix.mean
        centred = matrix.centred @ (shifted / (np.linalg.norm(shifted) or 1.0))
        best = np.maximum.reduceat(cosine, matrix.starts)
        # the first row of each group that reaches the group's best cosine
        rows = np.flatnonzero(cosine >= best[matrix.groups])
        _, first = np.unique(matrix.groups[rows], return_index=True)
        matched = [matrix.entries[r] for r in rows[first]]
        return DenseScores(
            faq_ids=matrix.faq_ids,
            cosine=best,
            centred=np.maximum.reduceat(centred, matrix.starts),
            matched_text=tuple(e.text for e in matched),
            matched_kind=tuple(e.kind for e in matched),
        )

    def count(self) -> int:
        return int(self._collection.count()) if self._collection is not None else 0

    def healthy(self) -> bool:
        """True when the collection answers and holds what the database says."""
        try:
            return self.count() == len(self._entries)
        except Exception:
            logger.exception("faq index health check failed")
            return False

    # ----------------------------------------------------------- helpers

    def _load_matrix(self) -> None:
        """Read the synced entries' vectors back from the collection."""
        entries = sorted(self._entries.values(), key=lambda e: (e.faq_id, e.vector_id))
        if not entries:
            self._matrix = None
            return
        stored = self._collection.get(
            ids=[e.vector_id for e in entries], include=["embeddings"]
        )
        by_id = dict(zip(stored["ids"], stored["embeddings"], strict=True))
        # a vector another process has just removed is left out; the next
        # sync brings the entry back
        kept = tuple(e for e in entries if e.vector_id in by_id)
        if not kept:
            self._matrix = None
            return
        vectors = np.asarray([by_id[e.vector_id] for e in kept], dtype=np.float32)
        mean = vectors.mean(axis=0)
        centred = vectors - mean
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        faq_ids = [e.faq_id for e in kept]
        boundary = [True] + [
            faq_ids[row] != faq_ids[row - 1] for row in range(1, len(kept))
        ]
        starts = [row for row, first in enumerate(boundary) if first]
        self._matrix = _Matrix(
            entries=kept,
            vectors=vectors,
            centred=centred / norms,
            mean=mean,
            starts=np.asarray(starts, dtype=np.intp),
            groups=np.cumsum(boundary) - 1,
            faq_ids=tuple(faq_ids[row] for row in starts),
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._file_lock if self._file_lock is not None else nullcontext():
            yield

    def _generation_file(self) -> Path | None:
        if self._path is None:
            return None
        return self._path / f"{self.collection_name}.generation"

    def _foreign_write(self) -> bool:
        """True when another process wrote the local collection since we read it."""
        path = self._generation_file()
        if path is None:
            return False
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return False
        if mtime == self._generation_mtime:
            return False
        try:
            generation = int(path.read_text() or 0)
        except (OSError, ValueError):
            return True
        if generation != self._generation:
            return True
        self._generation_mtime = mtime
        return False

    def _note_write(self) -> None:
        path = self._generation_file()
        if path is None:
            return
        current = 0
        if path.exists():
            try:
                current = int(path.read_text() or 0)
            except ValueError:
                current = 0
        self._generation = max(current, self._generation) + 1
        path.write_text(str(self._generation))
        self._generation_mtime = path.stat().st_mtime_ns

    def _open(self) -> None:
        """(Re)open the client, so chromadb reloads the index from disk."""
        if self._path is not None:
            # chromadb caches one system per folder and per process; dropping
            # it makes the next client read what other processes wrote
            SharedSystemClient._identifier_to_system.pop(str(self._path), None)
            SharedSystemClient._identifier_to_refcount.pop(str(self._path), None)
            self._client = make_chroma_client(self._path)
            path = self._generation_file()
            if path is not None and path.exists():
                try:
                    self._generation = int(path.read_text() or 0)
                    self._generation_mtime = path.stat().st_mtime_ns
                except ValueError:
                    self._generation = -1
        self._collection = self._get_collection()

    def _get_collection(self) -> Any:
        try:
            collection = self._client.get_collection(self.collection_name)
        except NotFoundError:
            collection = None
        if collection is None:
            logger.info(
                "creating faq index %s for model %s",
                self.collection_name,
                self.embedder.name,
            )
            return self._create_collection()
        metadata = collection.metadata or {}
        space = (collection.configuration or {}).get("hnsw") or {}
        problems = []
        if metadata.get("encoding") != ENCODING:
            problems.append(
                f"questions were embedded as {metadata.get('encoding')!r}, "
                f"now as {ENCODING!r}"
            )
        if metadata.get("model") != self.embedder.name:
            problems.append(
                f"model changed from {metadata.get('model')!r} "
                f"to {self.embedder.name!r}"
            )
        if metadata.get("dim") != self.embedder.dim:
            problems.append(
                f"vector size changed from {metadata.get('dim')} to {self.embedder.dim}"
            )
        if space.get("space") != "cosine":
            problems.append(f"distance is {space.get('space')!r}, not cosine")
        if problems:
            self._collection = collection
            self._recreate("; ".join(problems))
            return self._collection
        return collection

    def _create_collection(self) -> Any:
        return self._client.create_collection(
            self.collection_name,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={
                "model": self.embedder.name,
                "dim": self.embedder.dim,
                "encoding": ENCODING,
            },
            embedding_function=None,
        )

    def _recreate(self, reason: str) -> None:
        logger.warning("rebuilding faq index %s: %s", self.collection_name, reason)
        try:
            self._client.delete_collection(self.collection_name)
        except (NotFoundError, ValueError):
            # chroma raises either for a collection that is not there
            logger.debug("no collection %s to delete", self.collection_name)
        self._collection = self._create_collection()
        self._entries = {}
        self._note_write()

    def _sync(self, wanted: dict[str, _Entry], check_all: bool) -> None:
        stored = self._collection.get(include=["metadatas"])
        have = {
            vector_id: (metadata or {}).get("hash")
            for vector_id, metadata in zip(
                stored["ids"], stored["metadatas"], strict=True
            )
        }
        stale = sorted(set(have) - set(wanted))
        changed = [
            entry
            for vector_id, entry in wanted.items()
            if have.get(vector_id) != entry.digest
        ]
        if check_all and not have and changed:
            logger.info(
                "building faq index %s: %d vectors", self.collection_name, len(changed)
            )
        elif (stale or changed) and check_all:
            logger.warning(
                "faq index %s does not match the database (%d vectors stored, "
                "%d wanted): adding or updating %d, removing %d",
                self.collection_name,
                len(have),
                len(wanted),
                len(changed),
                len(stale),
            )
        elif stale or changed:
            logger.info(
                "faq index sync: %d vectors added or updated, %d removed",
                len(changed),
                len(stale),
            )
        self._write(changed, stale)
        self._entries = wanted

    def _write(self, upserts: list[_Entry], deletes: list[str]) -> None:
        if not upserts and not deletes:
            return
        if deletes:
            self._collection.delete(ids=deletes)
        for start in range(0, len(upserts), EMBED_BATCH):
            batch = upserts[start : start + EMBED_BATCH]
            texts = [e.text for e in batch]
            vectors = self.embedder.embed_questions(texts)
            self._collection.upsert(
                ids=[e.vector_id for e in batch],
                embeddings=vectors.tolist(),
                documents=[e.text for e in batch],
                metadatas=[
                    {"faq_id": e.faq_id, "kind": e.kind, "hash": e.digest}
                    for e in batch
                ],
            )
        self._note_write()

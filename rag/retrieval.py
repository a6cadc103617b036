"""Find the passages for a question: the query embedding, the article filter,
the search backend, and the Hits it returns.

A backend stores chunks and sentences and searches them (dense, sparse and
fused); `Retriever` is what the answer code sees, whatever the backend. The
local backend (FAISS + bm25s in the index folder) is the default; a database
server can sit beside it by implementing `SearchBackend`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .embedding import Embedder
from .errors import QueryError, SettingsError, StoreError, UnknownArticleError
from .evidence import SentenceBatch, SentenceIndex, Span
from .fusion import rrf, weighted
from .indexer import BuildSummary, refresh, staleness
from .ingest import Corpus, FileRead, normalize_id
from .records import rows_by
from .settings import BACKENDS, MODES, RetrievalSettings, Settings
from .store import IndexStore, StoredIndex
from .trace import NO_TRACE, Trace
from .types import Article, ChunkRecord, Hit

log = logging.getLogger("rag")

Ranked = list[tuple[int, float]]  # (row, score), best first


@dataclass(frozen=True)
class Scored:
    """One chunk a backend found."""

    chunk: ChunkRecord
    score: float  # the fused score (or the single mode's), comparable within one list
    dense_score: float | None  # cosine, when the dense side saw it
    bm25_score: float | None  # BM25 (or the backend's full-text rank), when the sparse side saw it


class SearchBackend(Protocol):
    """Where chunks and sentences are stored and searched."""

    name: str
    summary: BuildSummary  # what opening it did to the index
    n_chunks: int

    @classmethod
    def known_reads(cls, settings: Settings) -> Mapping[str, FileRead]:
        """Earlier reads of corpus files by content hash, so unchanged files are
        not repaired again ({} when the backend keeps none)."""

    @classmethod
    def open(
        cls, corpus: Corpus, settings: Settings, embedder: Embedder, *, rebuild: bool = False, progress: bool = False
    ) -> "SearchBackend":
        """The index for this corpus, built or refreshed (incrementally, by
        content hash) when it is missing, stale or damaged."""

    def search(
        self, query: str, vector: np.ndarray | None, k: int, articles: Sequence[str] | None, mode: str,
        settings: RetrievalSettings | None = None, trace: Trace = NO_TRACE,
    ) -> list[Scored]:
        """Best first. `vector` is None only for mode "bm25"; `articles`, when
        given, are validated ids to search within. Hybrid fuses each side's
        top `settings.candidates` as `fuse` does; settings=None: those the
        backend was opened with."""

    def sentences_within(self, spans: Sequence[Span]) -> SentenceBatch: ...

    def sentence_df(self) -> tuple[Mapping[str, int], int]: ...

    def knows(self, word: str) -> bool:
        """Whether the corpus uses the word (after BM25's folding and stemming)."""

    def close(self) -> None: ...


def fuse(settings: RetrievalSettings, mode: str, dense: Ranked, bm25: Ranked) -> Ranked:
    if mode == "dense":
        return dense
    if mode == "bm25":
        return bm25
    if settings.fusion == "rrf":
        return rrf([dense, bm25], k=settings.rrf_k)
    w = settings.dense_weight
    return weighted([dense, bm25], [w, 1.0 - w])


class LocalBackend:
    """FAISS and bm25s over the index folder (rag/store.py), in this process."""

    name = "local"

    def __init__(
        self, stored: StoredIndex, summary: BuildSummary, articles: Mapping[str, Article],
        retrieval: RetrievalSettings | None = None,
    ) -> None:
        self.stored = stored
        self.retrieval = retrieval or RetrievalSettings()
        self.summary = summary
        self.n_chunks = len(stored.chunks)
        self._rows_by_article = rows_by(stored.chunks, "article_id")  # on the columns when loaded: no loop
        self.sentences = SentenceIndex(stored.sentences, stored.sentence_vectors, articles, stored.sentence_df)

    @classmethod
    def known_reads(cls, settings: Settings) -> Mapping[str, FileRead]:
        return IndexStore(settings.index.index_dir).known_reads()

    @classmethod
    def open(
        cls, corpus: Corpus, settings: Settings, embedder: Embedder, *, rebuild: bool = False, progress: bool = False
    ) -> "LocalBackend":
        store = IndexStore(settings.index.index_dir)
        with store.lock():
            stored, summary = _fresh_index(store, corpus, settings, embedder, rebuild, progress)
        return cls(stored, summary, corpus.by_id(), settings.retrieval)

    def search(
        self, query: str, vector: np.ndarray | None, k: int, articles: Sequence[str] | None, mode: str,
        settings: RetrievalSettings | None = None, trace: Trace = NO_TRACE,
    ) -> list[Scored]:
        settings = settings or self.retrieval
        allowed = None
        if articles is not None:
            allowed = np.concatenate([self._rows_by_article.get(a, np.zeros(0, dtype=np.int64)) for a in articles])
        pool = max(int(k), settings.candidates)
        dense = bm25 = []
        if mode in ("dense", "hybrid"):
            with trace.stage("dense"):
                dense = self.stored.dense.search(vector, pool, allowed)
        if mode in ("bm25", "hybrid"):
            with trace.stage("bm25"):
                bm25 = self.stored.sparse.search(query, pool, allowed)
        with trace.stage("fusion"):
            ranked = fuse(settings, mode, dense, bm25)[: int(k)]
            dense_scores, bm25_scores = dict(dense), dict(bm25)
            chunks = self.stored.chunks
            return [Scored(chunks[row], float(score), dense_scores.get(row), bm25_scores.get(row)) for row, score in ranked]

    def sentences_within(self, spans: Sequence[Span]) -> SentenceBatch:
        return self.sentences.sentences_within(spans)

    def sentence_df(self) -> tuple[Mapping[str, int], int]:
        return self.sentences.sentence_df()

    def sentence_spans(self, article_id: str, start: int, end: int) -> list[tuple[int, int]]:
        """The indexed sentences inside a span (see SentenceIndex.spans_within).
        Optional for a backend: without it the short answer splits its quotes."""
        return self.sentences.spans_within(article_id, start, end)

    def knows(self, word: str) -> bool:
        return self.stored.sparse.knows(word)

    def close(self) -> None:
        pass


def _fresh_index(
    store: IndexStore, corpus: Corpus, settings: Settings, embedder: Embedder, rebuild: bool, progress: bool
) -> tuple[StoredIndex, BuildSummary]:
    """The stored index if it serves this corpus and settings, else a refreshed one."""
    stored: StoredIndex | None = None
    damage: str | None = None
    if not rebuild:
        try:
            stored = store.load()
        except StoreError as e:
            damage = e.reason
            log.warning("%s: rebuilding the index from the corpus", damage)
    reason = "rebuild requested" if rebuild else damage or staleness(stored, corpus, settings.index, embedder)
    if reason is None:
        assert stored is not None
        return stored, BuildSummary(
            rebuilt=False, reason="up to date", unchanged=tuple(stored.manifest.articles), chunks=len(stored.chunks)
        )
    # A requested rebuild embeds everything again: it is the way out when
    # stored or cached vectors are in doubt.
    stored, summary = refresh(store, corpus, settings.index, embedder, stored, reason, progress=progress, use_cache=not rebuild)
    for w in summary.warnings:
        log.warning("%s", w)
    return stored, summary


def backend_class(name: str) -> type:
    """The backend called `name`; unknown names list the valid ones."""
    if name == "local":
        return LocalBackend
    if name == "postgres":
        from .postgres import PostgresBackend  # needs the postgres extra: imported only when chosen

        return PostgresBackend
    raise SettingsError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


class Retriever:
    """Questions in, Hits out: query embeddings (cached), article filters,
    the backend's search, and the passages' text from the corpus."""

    def __init__(self, backend: SearchBackend, embedder: Embedder, articles: Mapping[str, Article], settings: RetrievalSettings) -> None:
        self.backend = backend
        self.embedder = embedder
        self.settings = settings
        self._articles = articles
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def unknown_message(self, ids: Iterable[str]) -> str:
        known = ", ".join(sorted(self._articles))
        return f"unknown article id(s) {', '.join(map(repr, ids))}: known ids are {known} (see `rag articles`)"

    def article_filter(self, articles: Iterable[str] | str | None) -> list[str] | None:
        """The distinct, known article ids to search within; None for all."""
        if articles is None:
            return None
        ids = [articles] if isinstance(articles, str) else list(articles)
        ids = [normalize_id(a) if isinstance(a, str) else a for a in ids]  # ids are NFC (ingest.normalize_id)
        if not ids:
            raise QueryError("articles= is an empty list: pass None to search every article, or some article ids")
        unknown = [a for a in ids if a not in self._articles]
        if unknown:
            raise UnknownArticleError(self.unknown_message(unknown))
        return list(dict.fromkeys(ids))

    @property
    def cached_queries(self) -> int:
        return len(self._query_vectors)

    def embed(self, text: str) -> np.ndarray:
        # Chat turns repeat questions (retries, the app's several views of one
        # answer); a small cache saves the model call, the main cost of a query.
        with self._cache_lock:
            vector = self._query_vectors.get(text)
        if vector is None:
            pieces = self.embedder.count_pieces(text)
            if pieces > self.embedder.max_pieces:  # the model would silently read only the start
                raise QueryError(
                    f"question is {pieces} word pieces long and the model reads {self.embedder.max_pieces}: "
                    "shorten it (about 1,000 characters of English fit)"
                )
            vector = self.embedder.embed([text])[0]
            if self.settings.query_cache_size:
                with self._cache_lock:
                    self._query_vectors[text] = vector
                    while len(self._query_vectors) > self.settings.query_cache_size:
                        self._query_vectors.popitem(last=False)
        return vector

    def search(
        self,
        question: str,
        k: int,
        articles: Iterable[str] | str | None,
        mode: str,
        vector: np.ndarray | None = None,
        trace: Trace = NO_TRACE,
    ) -> list[Hit]:
        """The `k` best chunks for an already checked question, best first."""
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise QueryError(f"k must be a whole number of at least 1, not {k!r}")
        ids = self.article_filter(articles)
        if mode != "bm25" and vector is None:
            with trace.stage("embed"):
                vector = self.embed(question)
        found = self.backend.search(question, vector, int(k), ids, mode, self.settings, trace)
        with trace.stage("hits"):
            return [self._hit(s) for s in found]

    def _hit(self, s: Scored) -> Hit:
        c = s.chunk
        article = self._articles[c.article_id]
        return Hit(
            article_id=c.article_id,
            title=article.title,
            text=article.text[c.start : c.end],
            score=s.score,
            start=c.start,
            end=c.end,
            chunk_id=c.id,
            dense_score=s.dense_score,
            bm25_score=s.bm25_score,
        )

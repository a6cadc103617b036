"""The public entry point: load a corpus and its index, retrieve passages."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .embedding import Embedder, make_embedder
from .errors import QueryError, StoreError, UnknownArticleError
from .fusion import rrf, weighted
from .indexer import BuildSummary, refresh, staleness
from .ingest import Corpus, load_corpus
from .settings import MODES, Settings
from .store import REBUILD_HINT, IndexStore, StoredIndex
from .types import Article, Hit

log = logging.getLogger("rag")


def check_question(question: object, limit: int) -> str:
    """The question, stripped; QueryError when it cannot be searched."""
    if not isinstance(question, str):
        raise QueryError(f"question must be text, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise QueryError("question is empty: type a question about the articles")
    if len(text) > limit:
        raise QueryError(
            f"question is {len(text):,} characters long, over the limit of {limit:,}: shorten it to its point"
        )
    return text


class RAG:
    """A corpus with its dense and sparse indexes, ready to answer questions."""

    def __init__(self, corpus: Corpus, index: StoredIndex, embedder: Embedder, settings: Settings, summary: BuildSummary) -> None:
        self.corpus = corpus
        self.settings = settings
        self.summary = summary  # what loading did to the index
        self._index = index
        self._embedder = embedder
        self._articles = corpus.by_id()
        rows: dict[str, list[int]] = {}
        for row, chunk in enumerate(index.chunks):
            rows.setdefault(chunk.article_id, []).append(row)
        self._rows_by_article = {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}

    # --- loading ------------------------------------------------------------

    @classmethod
    def load(
        cls,
        corpus_dir: str | Path | None = None,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        rebuild: bool = False,
        progress: bool = False,
    ) -> "RAG":
        """Read the corpus, then load its index, building or refreshing it when needed.

        A damaged index is rebuilt from the corpus (with a warning): the corpus
        is the source of truth, so nothing is lost.
        """
        settings = settings or Settings()
        if corpus_dir is not None:
            settings = settings.replace(corpus_dir=Path(corpus_dir))
        if index_dir is not None:
            settings = settings.replace(index_dir=Path(index_dir))
        corpus = load_corpus(settings.corpus_dir)
        embedder = embedder or make_embedder(settings.model, settings.embed_batch_size)
        store = IndexStore(settings.index_dir)
        stored: StoredIndex | None = None
        damage: str | None = None
        if not rebuild:
            try:
                stored = store.load()
            except StoreError as e:
                damage = str(e).removesuffix(REBUILD_HINT)
                log.warning("%s: rebuilding the index from the corpus", damage)
        reason = "rebuild requested" if rebuild else damage or staleness(stored, corpus, settings, embedder)
        if reason is None:
            assert stored is not None
            summary = BuildSummary(rebuilt=False, reason="up to date", unchanged=tuple(stored.manifest.articles), chunks=len(stored.chunks))
        else:
            stored, summary = refresh(store, corpus, settings, embedder, stored, reason, progress=progress)
            for w in summary.warnings:
                log.warning("%s", w)
        return cls(corpus, stored, embedder, settings, summary)

    # --- articles -------------------------------------------------------------

    @property
    def articles(self) -> list[Article]:
        return list(self.corpus.articles)

    def article(self, article_id: str) -> Article:
        try:
            return self._articles[article_id]
        except KeyError:
            raise UnknownArticleError(self._unknown_message([article_id])) from None

    def _unknown_message(self, ids: Iterable[str]) -> str:
        known = ", ".join(sorted(self._articles))
        return f"unknown article id(s) {', '.join(map(repr, ids))}: known ids are {known} (see `rag articles`)"

    # --- retrieval ------------------------------------------------------------

    def _allowed_rows(self, articles: Iterable[str] | str | None) -> np.ndarray | None:
        if articles is None:
            return None
        ids = [articles] if isinstance(articles, str) else list(articles)
        if not ids:
            raise QueryError("articles= is an empty list: pass None to search every article, or some article ids")
        unknown = [a for a in ids if a not in self._articles]
        if unknown:
            raise UnknownArticleError(self._unknown_message(unknown))
        rows = [self._rows_by_article.get(a, np.zeros(0, dtype=np.int64)) for a in dict.fromkeys(ids)]
        return np.concatenate(rows)

    def retrieve(
        self,
        question: str,
        k: int = 5,
        articles: Iterable[str] | str | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """The `k` chunks that best match `question`, best first, from distinct chunks.

        mode: "hybrid" (dense and BM25 fused), "dense" or "bm25".
        articles: restrict the search to these article ids.
        """
        question = check_question(question, self.settings.max_question_chars)
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise QueryError(f"k must be a whole number of at least 1, not {k!r}")
        allowed = self._allowed_rows(articles)
        pool = max(int(k), self.settings.candidates)

        dense = bm25 = []
        if mode in ("dense", "hybrid"):
            query = self._embedder.embed([question])[0]
            dense = self._index.dense.search(query, pool, allowed)
        if mode in ("bm25", "hybrid"):
            bm25 = self._index.sparse.search(question, pool, allowed)

        if mode == "dense":
            ranked = dense
        elif mode == "bm25":
            ranked = bm25
        elif self.settings.fusion == "rrf":
            ranked = rrf([dense, bm25], k=self.settings.rrf_k)
        else:
            w = self.settings.dense_weight
            ranked = weighted([dense, bm25], [w, 1.0 - w])

        dense_scores, bm25_scores = dict(dense), dict(bm25)
        hits = []
        for row, score in ranked[: int(k)]:
            record = self._index.chunks[row]
            article = self._articles[record.article_id]
            hits.append(
                Hit(
                    article_id=record.article_id,
                    title=article.title,
                    text=article.text[record.start : record.end],
                    score=float(score),
                    start=record.start,
                    end=record.end,
                    chunk_id=record.id,
                    dense_score=dense_scores.get(row),
                    bm25_score=bm25_scores.get(row),
                )
            )
        return hits

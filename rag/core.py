"""The public entry point: load a corpus and its index, retrieve passages."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .embedding import Embedder, make_embedder
from .errors import QueryError, SettingsError, StoreError, UnknownArticleError
from .fusion import rrf, weighted
from .indexer import BuildSummary, refresh, staleness
from .ingest import Corpus, load_corpus
from .threads import limit_numpy_blas
from .settings import ANSWER_MODES, MODES, Settings
from .store import IndexStore, StoredIndex
from .answer import (
    INSTRUCTIONS_NOTE,
    NOT_ENGLISH_TEXT,
    SentenceIndex,
    abstain,
    compose,
    extractive_claims,
    missing_type_text,
    select,
    unknown_names_text,
)
from .conversation import contextualise, normalise_history
from .llm import ChatClient, LLMConfig, LLMUnavailable, StreamEnd, build_messages, check_reply, rewrite_question
from .questions import QuestionCheck, answer_type, check_question, classify, has_answer_type, unknown_names
from .short import short_answer
from .types import Answer, Article, Delta, Hit

log = logging.getLogger("rag")


class RAG:
    """A corpus with its dense and sparse indexes, ready to answer questions."""

    def __init__(self, corpus: Corpus, index: StoredIndex, embedder: Embedder, settings: Settings, summary: BuildSummary) -> None:
        limit_numpy_blas()  # this object answers questions: see rag/threads.py
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
        self._sentences = SentenceIndex(index.sentences, index.sentence_vectors, self._articles, index.sentence_df)
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._client: ChatClient | None = None

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

        Without `settings`, Settings.from_env() is used (the RAG_LLM_* variables).

        A damaged index is rebuilt from the corpus (with a warning): the corpus
        is the source of truth, so nothing is lost.
        """
        settings = settings or Settings.from_env()
        if corpus_dir is not None:
            settings = settings.replace(corpus_dir=Path(corpus_dir))
        if index_dir is not None:
            settings = settings.replace(index_dir=Path(index_dir))
        store = IndexStore(settings.index_dir)
        # Files unchanged since the index was built are not repaired again:
        # at about a second per MB, repair would dominate starting a large corpus.
        corpus = load_corpus(settings.corpus_dir, repair=settings.repair, known=store.known_reads())
        embedder = embedder or make_embedder(
            settings.model, settings.embed_batch_size, backend=settings.embed_backend, cache_dir=settings.cache_dir
        )
        with store.lock():
            stored, summary = cls._fresh_index(store, corpus, settings, embedder, rebuild, progress)
        return cls(corpus, stored, embedder, settings, summary)

    @staticmethod
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
        reason = "rebuild requested" if rebuild else damage or staleness(stored, corpus, settings, embedder)
        if reason is None:
            assert stored is not None
            return stored, BuildSummary(
                rebuilt=False, reason="up to date", unchanged=tuple(stored.manifest.articles), chunks=len(stored.chunks)
            )
        # A requested rebuild embeds everything again: it is the way out when
        # stored or cached vectors are in doubt.
        stored, summary = refresh(store, corpus, settings, embedder, stored, reason, progress=progress, use_cache=not rebuild)
        for w in summary.warnings:
            log.warning("%s", w)
        return stored, summary

    def warm_up(self) -> None:
        """Load the embedding model now. Loading an up-to-date index does not
        need it, so without this the first question waits for it (seconds)."""
        self._embedder.embed(["warm-up"])

    def with_settings(self, **changes) -> "RAG":
        """This corpus and index with other settings (a retrieval mode, an
        abstention threshold ...): nothing is re-read or rebuilt. Only settings
        that the index does not depend on may change; the copy starts with an
        empty query cache and its own language-model client."""
        settings = self.settings.replace(**changes)
        shaping = ("model", "embed_backend", "cache_dir", "repair", "corpus_dir", "index_dir")
        if settings.chunking_params() != self.settings.chunking_params() or any(
            getattr(settings, name) != getattr(self.settings, name) for name in shaping
        ):
            raise SettingsError(
                "chunking, model, embedding backend, repair and folder settings shape the corpus and index "
                "or the loaded model: load a new RAG with them instead"
            )
        return RAG(self.corpus, self._index, self._embedder, settings, self.summary)

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
        return self._search(question, k, articles, mode)

    def _embed_query(self, text: str) -> np.ndarray:
        # Chat turns repeat questions (retries, the app's several views of one
        # answer); a small cache saves the model call, the main cost of a query.
        with self._cache_lock:
            vector = self._query_vectors.get(text)
        if vector is None:
            pieces = self._embedder.count_pieces(text)
            if pieces > self._embedder.max_pieces:  # the model would silently read only the start
                raise QueryError(
                    f"question is {pieces} word pieces long and the model reads {self._embedder.max_pieces}: "
                    "shorten it (about 1,000 characters of English fit)"
                )
            vector = self._embedder.embed([text])[0]
            if self.settings.query_cache_size:
                with self._cache_lock:
                    self._query_vectors[text] = vector
                    while len(self._query_vectors) > self.settings.query_cache_size:
                        self._query_vectors.popitem(last=False)
        return vector

    def _search(
        self,
        question: str,
        k: int,
        articles: Iterable[str] | str | None,
        mode: str,
        vector: np.ndarray | None = None,
    ) -> list[Hit]:
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise QueryError(f"k must be a whole number of at least 1, not {k!r}")
        allowed = self._allowed_rows(articles)
        pool = max(int(k), self.settings.candidates)

        dense = bm25 = []
        if mode in ("dense", "hybrid"):
            query_vector = self._embed_query(question) if vector is None else vector
            dense = self._index.dense.search(query_vector, pool, allowed)
        if mode in ("bm25", "hybrid"):
            bm25 = self._index.sparse.search(question, pool, allowed)

        return self._hits(self._fuse(mode, dense, bm25)[: int(k)], dense, bm25)

    # _search's last two stages, apart so that benchmarks/bench.py can time them.

    def _fuse(self, mode: str, dense: list[tuple[int, float]], bm25: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if mode == "dense":
            return dense
        if mode == "bm25":
            return bm25
        if self.settings.fusion == "rrf":
            return rrf([dense, bm25], k=self.settings.rrf_k)
        w = self.settings.dense_weight
        return weighted([dense, bm25], [w, 1.0 - w])

    def _hits(
        self, ranked: list[tuple[int, float]], dense: list[tuple[int, float]], bm25: list[tuple[int, float]]
    ) -> list[Hit]:
        dense_scores, bm25_scores = dict(dense), dict(bm25)
        hits = []
        for row, score in ranked:
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

    # --- answers --------------------------------------------------------------

    def ask(
        self,
        question: str,
        history: Iterable | None = None,
        k: int = 5,
        articles: Iterable[str] | str | None = None,
        mode: str | None = None,
    ) -> Answer:
        """Answer `question` from the articles, every claim cited.

        history: earlier turns (questions as strings, {"role", "content"}
        messages, or (question, answer) pairs); a follow-up question is
        searched together with the topic of the previous one.
        mode: "extractive" (quotes the articles) or "llm" (an OpenAI-compatible
        server, see Settings.llm_*); None: the settings' answer_mode.
        """
        answer = None
        for event in self.ask_stream(question, history, k, articles, mode):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        history: Iterable | None = None,
        k: int = 5,
        articles: Iterable[str] | str | None = None,
        mode: str | None = None,
    ) -> Iterator[Delta | Answer]:
        """Like `ask`, for a chat that shows the answer as it is written:
        yields Delta(text) pieces of the language model's reply as they arrive,
        then the checked Answer last (in extractive mode, only the Answer).

        The streamed text is the model's draft; the Answer is what survived the
        checks, and may differ from it.
        """
        s = self.settings
        check = classify(question, s.max_question_chars)
        turns = normalise_history(history)
        answer_mode = mode or s.answer_mode
        if answer_mode not in ANSWER_MODES:
            raise QueryError(f"unknown answer mode {answer_mode!r}: use one of {', '.join(ANSWER_MODES)}")
        client = self._llm_client() if answer_mode == "llm" else None
        notes = [INSTRUCTIONS_NOTE] if check.has_instructions else []

        query = contextualise(check.text, turns)
        vector = self._embed_query(query)  # once per question: for the search and for the sentences
        hits = self._search(query, k, articles, s.retrieval_mode, vector)
        extractive = self._extractive(check, query, vector, hits, notes)
        if client is None or extractive.abstained:
            # The language model is not asked what the articles cannot answer.
            yield extractive
            return

        try:
            if turns and query != check.text:  # a follow-up: let the model name what it refers to
                rewritten = rewrite_question(client, check.text, turns)
                if rewritten:
                    hits = self._search(rewritten, k, articles, s.retrieval_mode)
            messages, used = build_messages(check.text, hits, turns, client.config)
            if not used:
                raise LLMUnavailable(
                    f"no passage fits the language model's context of {client.config.context_tokens} tokens"
                )
            reply, finish = "", "stop"
            for piece in client.stream(messages):
                if isinstance(piece, StreamEnd):
                    finish = piece.finish_reason
                else:
                    reply += piece
                    yield Delta(piece)
        except LLMUnavailable as e:
            yield _with_note(extractive, f"{e}; this is the extractive answer instead.")
            return
        if finish == "length":
            notes = [*notes, "The language model's answer was cut off at its token limit."]
        answer = self._checked_llm_answer(reply, hits, used, extractive, notes)
        yield dataclasses.replace(answer, short=short_answer(query, answer, self._articles))  # the factoid span

    def _extractive(
        self, check: QuestionCheck, query: str, vector: np.ndarray, hits: list[Hit], notes: list[str]
    ) -> Answer:
        s = self.settings
        if not check.english:
            return abstain(hits, NOT_ENGLISH_TEXT, notes)
        names = unknown_names(check.text, self._index.sparse.knows)
        if names:
            return abstain(hits, unknown_names_text(names), notes)
        evidence = self._sentences.score(query, vector, hits, self._articles, s.sentence_dense_weight)
        answer = self._choose(check.text, evidence, hits, notes)
        return dataclasses.replace(answer, short=short_answer(query, answer, self._articles))  # the factoid span

    def _choose(self, question: str, evidence: list, hits: list[Hit], notes: list[str]) -> Answer:
        """_extractive's last stage: the sentences that answer, or an abstention."""
        s = self.settings
        kind = answer_type(question)
        if kind and evidence:
            # Lead with the best sentence that holds what the question asks for
            # (a date, a number); without one, the articles do not say.
            typed = [e for e in evidence if has_answer_type(self._articles[e.article_id].text[e.start : e.end], kind)]
            if not typed or typed[0].score < s.abstain_below:
                return abstain(hits, missing_type_text(kind), notes)
            evidence = [typed[0], *(e for e in evidence if e is not typed[0])]
        if not evidence or evidence[0].score < s.abstain_below:
            return abstain(hits, notes=notes)
        chosen = select(evidence, self._sentences, s.answer_sentences, s.answer_margin, s.duplicate_similarity)
        return compose(extractive_claims(chosen, self._articles, hits), hits, self._articles, notes)

    def _llm_client(self) -> ChatClient:
        s = self.settings
        if not (s.llm_base_url and s.llm_model):
            raise QueryError(
                "LLM mode is not configured: set RAG_LLM_BASE_URL and RAG_LLM_MODEL "
                "(or Settings(llm_base_url=..., llm_model=...)), or use the extractive mode"
            )
        if self._client is None:
            config = LLMConfig(s.llm_base_url, s.llm_model, s.llm_api_key, s.llm_timeout, s.llm_max_tokens, s.llm_context_tokens)
            self._client = ChatClient(config)
        return self._client

    def _checked_llm_answer(self, reply: str, hits: list[Hit], used: int, extractive: Answer, notes: list[str]) -> Answer:
        s = self.settings
        checked = check_reply(
            reply, hits[:used], self._articles, self._sentences, self._embedder,
            s.llm_support_min, s.sentence_dense_weight, s.answer_sentences,
        )
        if checked.said_not_in_articles:
            return _with_note(extractive, "The language model found no answer in the passages; this is the extractive answer instead.")
        if not any(c.quote for c in checked.claims):
            return _with_note(
                extractive,
                "The language model's answer was not supported by the passages it cites; "
                "this is the extractive answer instead.",
            )
        flags = list(notes)
        if checked.removed_markers:
            flags.append(f"Removed marker(s) {', '.join(f'[{n}]' for n in checked.removed_markers)}: no such passage.")
        if checked.unsupported:
            flags.append(
                f"{len(checked.unsupported)} sentence(s) of the answer are not supported by the passage they cite "
                "and carry no marker."
            )
        if checked.shortened:
            flags.append(f"The answer was cut to its first {s.answer_sentences} supported sentences.")
        return compose(checked.claims, hits, self._articles, flags, unsupported=checked.unsupported)


def _with_note(answer: Answer, note: str) -> Answer:
    return dataclasses.replace(answer, notes=[*answer.notes, note])

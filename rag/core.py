"""The public entry point: a corpus and its index, ready to retrieve and answer.

`RAG` only wires the steps together; each lives in its own module:
retrieval (rag/retrieval.py), sentence evidence (rag/evidence.py), the
extractive answer (rag/answer.py), and the language-model answer with its
checks (rag/llm.py, rag/verify.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from .answer import extractive_answer, follow_up_article, question_notes, screen
from .calibration import with_probability
from .answerability import LearnedStage
from .conversation import contextualise, normalise_history, resolve_follow_up
from .embedding import Embedder, embedder_for
from .errors import QueryError, SettingsError, UnknownArticleError
from .evidence import SentenceScorer
from .indexer import BuildSummary
from .ingest import Corpus, load_corpus, normalize_id
from .llm import ChatModel, answer_stream, client_for
from .questions import check_question, classify
from .retrieval import Retriever, SearchBackend, backend_class
from .short import with_short_answer
from .settings import ANSWER_MODES, Settings
from .threads import limit_numpy_blas
from .trace import NO_TRACE, Trace
from .types import Answer, Article, Delta, Hit


class RAG:
    """A corpus with its dense and sparse indexes, ready to answer questions."""

    def __init__(
        self, corpus: Corpus, backend: SearchBackend, embedder: Embedder, settings: Settings,
        llm_client: ChatModel | None = None,
    ) -> None:
        limit_numpy_blas()  # this object answers questions: see rag/threads.py
        self.corpus = corpus
        self.settings = settings
        self.backend = backend
        self.embedder = embedder
        self._articles = corpus.by_id()
        self.retriever = Retriever(backend, embedder, self._articles, settings.retrieval)
        self.scorer = SentenceScorer(backend, self._articles)
        # Settings(answer_stage="learned"): the learned ranker and answerability model.
        self._learned = LearnedStage.for_backend(backend, self.scorer) if settings.answer.stage == "learned" else None
        # The index's sentence offsets, for the short answer's quotes (None: the backend keeps none at hand).
        self._sentence_spans = getattr(backend, "sentence_spans", None)
        self._given_client = llm_client
        self._client = llm_client  # else made from the settings on first use in LLM mode

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
        llm_client: ChatModel | None = None,
        backend: str | None = None,
        dsn: str | None = None,
    ) -> "RAG":
        """Read the corpus, then load its index, building or refreshing it when needed.

        Without `settings`, the defaults (the CLI and the app pass
        Settings.from_env()). A damaged index is rebuilt from the corpus (with
        a warning): the corpus is the source of truth, so nothing is lost.
        llm_client: a chat server other than the one the settings name.
        backend, dsn: where the index lives ("local", or "postgres" at the
        PostgreSQL server `dsn`), in place of the settings' own.
        """
        settings = (settings or Settings()).located(corpus_dir, index_dir, backend, dsn)
        kind = backend_class(settings.index.backend)
        # Files unchanged since the index was built are not repaired again:
        # at about a second per MB, repair would dominate starting a large corpus.
        corpus = load_corpus(
            settings.index.corpus_dir, repair=settings.index.repair, known=kind.known_reads(settings),
            max_file_mb=settings.index.max_file_mb,
        )
        embedder = embedder or embedder_for(settings.index)
        backend = kind.open(corpus, settings, embedder, rebuild=rebuild, progress=progress)
        return cls(corpus, backend, embedder, settings, llm_client)

    @property
    def summary(self) -> BuildSummary:
        """What loading did to the index."""
        return self.backend.summary

    def warm_up(self) -> None:
        """Load the embedding model now. Loading an up-to-date index does not
        need it, so without this the first question waits for it (seconds)."""
        self.embedder.embed(["warm-up"])

    def with_settings(self, **changes) -> "RAG":
        """This corpus and index with other settings (a retrieval mode, an
        abstention threshold ...): nothing is re-read or rebuilt. The index
        settings shape the corpus, the index and the loaded model and cannot
        change here; the copy starts with an empty query cache and its own
        language-model client."""
        settings = self.settings.replace(**changes)
        if settings.index != self.settings.index:
            raise SettingsError(
                "chunking, model, embedding backend, repair and folder settings shape the corpus and index "
                "or the loaded model: load a new RAG with them instead"
            )
        return RAG(self.corpus, self.backend, self.embedder, settings, self._given_client)

    # --- articles -------------------------------------------------------------

    @property
    def articles(self) -> list[Article]:
        return list(self.corpus.articles)

    def article(self, article_id: str) -> Article:
        try:
            return self._articles[normalize_id(article_id)]  # ids are NFC, as typed ones may not be
        except (KeyError, TypeError):
            raise UnknownArticleError(self.retriever.unknown_message([article_id])) from None

    # --- retrieval and answers ------------------------------------------------

    def search_query(self, question: str, history: Iterable | None = None) -> str:
        """What `ask` searches for: the checked question, and for a follow-up
        the topic of the conversation (without a language model)."""
        check = classify(question, self.settings.retrieval.max_question_chars)
        return contextualise(check.text, normalise_history(history))

    def retrieve(
        self,
        question: str,
        k: int = 5,
        articles: Iterable[str] | str | None = None,
        mode: str = "hybrid",
        trace: Trace = NO_TRACE,
    ) -> list[Hit]:
        """The `k` chunks that best match `question`, best first, from distinct chunks.

        mode: "hybrid" (dense and BM25 fused), "dense" or "bm25".
        articles: restrict the search to these article ids.
        trace: a Trace to record each stage's time in.
        """
        question = check_question(question, self.settings.retrieval.max_question_chars)
        return self.retriever.search(question, k, articles, mode, trace=trace)

    def ask(
        self,
        question: str,
        history: Iterable | None = None,
        k: int = 5,
        articles: Iterable[str] | str | None = None,
        mode: str | None = None,
        trace: Trace = NO_TRACE,
    ) -> Answer:
        """Answer `question` from the articles, every claim cited.

        history: earlier turns (questions as strings, {"role", "content"}
        messages, or (question, answer) pairs); a follow-up question is
        searched together with the topic of the previous one.
        mode: "extractive" (quotes the articles) or "llm" (an OpenAI-compatible
        server, see Settings.llm); None: the settings' answer mode.
        """
        answer = None
        for event in self.ask_stream(question, history, k, articles, mode, trace):
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
        trace: Trace = NO_TRACE,
    ) -> Iterator[Delta | Answer]:
        """Like `ask`, for a chat that shows the answer as it is written:
        yields Delta(text) pieces of the language model's reply as they arrive,
        then the checked Answer last (in extractive mode, only the Answer).

        The streamed text is the model's draft; the Answer is what survived the
        checks, and may differ from it.
        """
        s = self.settings
        with trace.stage("checks"):
            check = classify(question, s.retrieval.max_question_chars)
            turns = normalise_history(history)
            follow_up = resolve_follow_up(check.text, turns)
            query = follow_up.search
            answer_mode = mode or s.answer.mode
            if answer_mode not in ANSWER_MODES:
                raise QueryError(f"unknown answer mode {answer_mode!r}: use one of {', '.join(ANSWER_MODES)}")
            client = self._llm_client() if answer_mode == "llm" else None
            notes = question_notes(check)

        with trace.stage("embed"):
            vector = self.retriever.embed(query)  # once per question: for the search and for the sentences
        hits = self.retriever.search(query, k, articles, s.retrieval.mode, vector, trace)
        with trace.stage("screen"):
            early = screen(check, hits, self.backend.knows, notes, names=self._learned is None)
        # The rules' answers carry a probability, abstentions by the unknown-name rule too.
        calibrated = self._learned is None and s.answer.probability and check.english
        if early is None or calibrated:
            with trace.stage("evidence"):
                scored = self.scorer.score(query, vector, hits, s.answer.sentence_dense_weight)
        if early is None:
            with trace.stage("answer"):
                if self._learned is not None:
                    extractive = self._learned.answer(query, scored.items, hits, self._articles, notes)
                else:
                    # A follow-up rewritten to stand alone ("And in 2014?" as "Where did
                    # Nigeria rank in the 2014 ...?") is answered as that question; one
                    # searched with the earlier topic words appended is not.
                    extractive = extractive_answer(
                        check.text, scored, hits, self._articles, s.answer, notes, query=follow_up.standalone,
                        lead_article=follow_up_article(check.text, query, follow_up.standalone, hits)
                        if s.answer.follow_up_lead else None,
                    )
                if s.answer.reader_gate:
                    from .reader import gate

                    extractive = gate(query, extractive, scored.items, hits, self._articles, notes)
        else:
            extractive = early
        if calibrated and extractive.answerable is None:
            with trace.stage("answerable"):
                extractive = with_probability(query, extractive, scored.items, hits, self._articles, s.answer, notes)
        with trace.stage("short"):
            extractive = with_short_answer(query, extractive, self._articles, self._sentence_spans)
        if client is None or extractive.abstained:
            # The language model is not asked what the articles cannot answer.
            yield extractive
            return
        for event in answer_stream(
            client, check.text, turns, hits, extractive,
            follow_up=bool(turns) and query != check.text,
            search=lambda text: self.retriever.search(text, k, articles, s.retrieval.mode),
            articles=self._articles,
            support=lambda claim, vector, hit: self.scorer.score(claim, vector, [hit], s.answer.sentence_dense_weight).items,
            embed=self.embedder.embed,
            settings=s.llm,
            max_claims=s.answer.sentences,
            notes=extractive.notes,  # the question's, and the doubt the probability raised
        ):
            # A fallback keeps the extractive answer's short answer; the model's
            # own answer gets one from the sentences it quotes.
            yield with_short_answer(query, event, self._articles, self._sentence_spans) if isinstance(event, Answer) and event.short is None else event

    def _llm_client(self) -> ChatModel:
        if self._client is None:
            self._client = client_for(self.settings.llm)
        return self._client


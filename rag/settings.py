"""Every tunable of the pipeline, with its default, in one place.

Settings are plain frozen values in four groups, as the pipeline's steps use
them: `index` (what shapes the corpus, the index and the loaded model: compared
as a whole, a change means another index), `retrieval`, `answer` and `llm`.
Library code receives them and never reads the environment itself: only the
CLI and the app call `Settings.from_env()`. Unknown names are rejected with the
valid ones listed, so a typo in a config does not silently fall back to a default.

    Settings(retrieval=RetrievalSettings(mode="bm25"))
    Settings(chunk_tokens=80)            # the same fields by their flat names
    settings.replace(abstain_below=0.4)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError

MODES = ("hybrid", "dense", "bm25")
ANSWER_MODES = ("extractive", "llm")
ANSWER_STAGES = ("rules", "learned")  # extractive answers: hand-set rules or the learned models
FUSIONS = ("rrf", "weighted")
# The dense index kinds (rag/dense.py explains them); "auto" picks by size.
INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
EMBED_BACKENDS = ("onnx", "onnx-int8", "torch")
BACKENDS = ("local", "postgres")  # rag/retrieval.py: where chunks are stored and searched


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/rag, else ~/.cache/rag: files derived from installed
    packages (the ONNX export of the model), shared by every index."""
    env = os.environ if environ is None else environ
    return Path(env.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "rag"


def _check(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise SettingsError(f"invalid setting: {message}")


@dataclass(frozen=True)
class IndexSettings:
    """What the corpus, the index and the loaded model depend on: `RAG.with_settings`
    cannot change any of it, and the index records what shapes it."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")

    # The embedding model: a name of a locally installed model package or a
    # folder holding a sentence-transformers model. Never downloaded.
    model: str = "all-MiniLM-L6-v2"
    embed_batch_size: int = 32
    # Vectors a refresh dropped (an abandoned chunk size, a removed article,
    # another model's) kept by content hash in the index folder, so that going
    # back embeds nothing: 100,000 MiniLM vectors are 150 MB. 0 turns it off.
    embedding_cache_size: int = 100_000
    # What runs the model: "onnx" (ONNX Runtime, the default: a question
    # embeds in about a third of the time) or "torch". Both give the same
    # vectors, so switching needs no re-indexing. ONNX Runtime reads a file
    # exported once from the model into cache_dir/onnx/; when that cannot be
    # made the embedder warns and runs on torch. "onnx-int8" runs an int8
    # copy of that file: questions in about half the time and builds about
    # twice as fast, but its vectors are not the float ones (cosine >= 0.99),
    # so it is another model to the index (switching re-embeds), and it lost
    # 0.016 passage-answer@1 on SQuAD, so it is not the default (README,
    # Embedding backends).
    embed_backend: str = "onnx"
    # What embeds the sentences (scored by the answer stage, never searched for
    # chunks): None is embed_backend. "onnx-int8" here with "onnx" above embeds
    # a build's sentences, 45 % of its word pieces, on the int8 copy and keeps
    # chunks and questions float. The manifest records the sentences' model
    # apart (`sentence_model`), so a switch re-embeds them (README, Embedding backends).
    sentence_embed_backend: str | None = None
    # Outside the index folder, which is rebuilt and replaced whole: the
    # export depends on the model only and serves every index.
    cache_dir: Path = field(default_factory=user_cache_dir)

    # Chunks hold whole sentences up to `chunk_tokens` tiktoken tokens, 3-5
    # sentences of these articles: a hit points at one argument and a citation
    # stays checkable, and with the title prefix a chunk stays far below the
    # 256 word pieces MiniLM reads (it was trained on 128-piece inputs, so
    # longer chunks also embed worse). On eval/questions.jsonl, 100-160 tokens
    # scored alike (hit@1 0.93-0.96) and 220 a little lower; see eval/NOTES.md.
    # Consecutive chunks share up to `overlap_tokens` of whole sentences so that
    # a statement spanning a chunk border is whole in at least one chunk.
    chunk_tokens: int = 120
    overlap_tokens: int = 30
    tokenizer: str = "cl100k_base"

    # The vector index: None keeps what the index records (for a new index,
    # "auto": exact search below 50,000 chunks, HNSW from there); "auto",
    # "flat", "hnsw" or "ivf" sets it, and the manifest remembers the choice.
    index_type: str | None = None

    # Repair damaged extractions (README "Text repair"). False indexes the text
    # as extracted: only to measure what the repair is worth (`rag eval --compare`).
    repair: bool = True

    # Corpus files holding more text than this (MB) are skipped with a warning:
    # one MB of text took 8.5 minutes and 690 MB of memory to index here
    # (2,045 chunks and 8,680 sentences to embed, 2 shared cores), and one
    # 30 MB file meant hours in which the app cannot answer. A long book is
    # 1-2 MB; a larger file is usually a dump better split into articles.
    # RAG_MAX_FILE_MB raises it.
    max_file_mb: float = 5.0

    # Where chunks and sentences are stored and searched (rag/retrieval.py):
    # "local" is FAISS + bm25s in index_dir; "postgres" a PostgreSQL server
    # with pgvector (rag/postgres.py), configured by `postgres`: a
    # rag.postgres.PostgresConfig or a dict of its fields (dsn, replicas,
    # schema, ef_search ...).
    backend: str = "local"
    postgres: Any = None

    def __post_init__(self) -> None:
        _check([
            (self.chunk_tokens >= 16, "chunk_tokens must be at least 16"),
            (0 <= self.overlap_tokens < self.chunk_tokens, "overlap_tokens must be >= 0 and below chunk_tokens"),
            (self.embed_batch_size >= 1, "embed_batch_size must be at least 1"),
            (self.embedding_cache_size >= 0, "embedding_cache_size must be 0 or more"),
            (self.embed_backend in EMBED_BACKENDS, f"embed_backend must be one of {', '.join(EMBED_BACKENDS)}"),
            (self.sentence_embed_backend is None or self.sentence_embed_backend in EMBED_BACKENDS,
             f"sentence_embed_backend must be one of {', '.join(EMBED_BACKENDS)}, or None for embed_backend's"),
            (self.index_type is None or self.index_type in INDEX_TYPES, f"index_type must be one of {', '.join(INDEX_TYPES)}"),
            (isinstance(self.repair, bool), "repair must be True or False"),
            (self.max_file_mb > 0, "max_file_mb must be above 0"),
            (self.backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)}"),
            (self.backend == "local" or self.sentence_embed_backend in (None, self.embed_backend),
             "sentence_embed_backend is for the local backend only: leave it unset (None) with backend='postgres'"),
        ])
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    def chunking(self) -> dict[str, Any]:
        """What the chunks depend on; a change here means re-chunking."""
        return {"chunk_tokens": self.chunk_tokens, "overlap_tokens": self.overlap_tokens, "tokenizer": self.tokenizer}


@dataclass(frozen=True)
class RetrievalSettings:
    mode: str = "hybrid"  # what `ask` retrieves with: "hybrid", "dense" or "bm25"

    # Hybrid retrieval: each index returns `candidates` chunks, then scores are
    # fused. Weighted fusion of min-max normalised scores beat reciprocal rank
    # fusion on eval/questions.jsonl at every chunk size (hit@1 0.93-0.96
    # against 0.87-0.91): RRF throws away how far ahead a clear BM25 match is.
    fusion: str = "weighted"
    dense_weight: float = 0.6  # 0.5-0.7 scored alike; below 0.5 lost ground
    rrf_k: int = 60  # only for fusion="rrf"; the constant of Cormack et al. (2009)
    candidates: int = 50

    # Query embeddings kept for repeated questions (a chat's retries, the
    # app's several views of one answer); 0 turns the cache off.
    query_cache_size: int = 256

    # Questions longer than this are refused rather than truncated: a question
    # of several pages is a pasted document, not a question. 1,000 characters
    # of English stay within the 256 word pieces the model reads; a question
    # that still exceeds them is refused when it is embedded.
    max_question_chars: int = 1000

    def __post_init__(self) -> None:
        _check([
            (self.mode in MODES, f"retrieval_mode must be one of {', '.join(MODES)}"),
            (self.fusion in FUSIONS, f"fusion must be one of {', '.join(FUSIONS)}"),
            (self.rrf_k >= 1, "rrf_k must be at least 1"),
            (0.0 <= self.dense_weight <= 1.0, "dense_weight must be between 0 and 1"),
            (self.candidates >= 1, "candidates must be at least 1"),
            (self.query_cache_size >= 0, "query_cache_size must be 0 or more"),
            (self.max_question_chars >= 1, "max_question_chars must be at least 1"),
        ])


@dataclass(frozen=True)
class AnswerSettings:
    # Extractive answers: sentences of the retrieved passages scored as
    # sentence_dense_weight * cosine + (1 - it) * share of the question's words
    # (IDF-weighted) that the sentence holds. The answer is the best sentence,
    # plus up to `sentences` - 1 more that are not near-duplicates (cosine >=
    # duplicate_similarity) of one chosen and score within `margin` of it, or
    # within `other_article_margin` when they come from another article (one
    # from another article is more often a wrong citation), plus the sentence
    # right after the best one when it scores within `neighbour_margin` of it
    # or the best one only restates the question (the answer often follows
    # its topic sentence). Chosen on a development set of SQuAD training
    # articles 300-339 and checked on both evaluation sets (eval/NOTES.md,
    # "How the answer rules were chosen"): the former single margin of 0.03 gave fact recall 0.818 and
    # citation precision 0.907 on the five articles, 0.744 of SQuAD answers
    # holding a gold answer (32 words); these give 0.864, 0.917 and 0.773 (37
    # words). A neighbour margin of 0.2 with a margin of 0.06 gave more (0.871,
    # 0.780) but 43 words an answer on the development set, over the 40 aimed at.
    mode: str = "extractive"  # or "llm": an OpenAI-compatible server (LLMSettings)
    sentence_dense_weight: float = 0.6
    sentences: int = 3
    margin: float = 0.04
    other_article_margin: float = 0.02
    neighbour_margin: float = 0.2
    duplicate_similarity: float = 0.85
    # True: a sentence from another article than the best one's joins only
    # with evidence of its own: a word of the question that none of the
    # chosen sentences holds, and for a date or number question a date or
    # number. Measured (eval/NOTES.md "Extractive answers"): citation precision on the
    # five articles 0.904 -> 0.955, no fact lost; the SQuAD set and the
    # development set unchanged (their articles rarely share a topic). The
    # same tests for sentences of the best one's own article lost answers
    # (answer contains gold 0.791 -> 0.770 on the development set).
    other_article_evidence: bool = True
    # True: a follow-up searched with its conversation's topic words appended
    # (rag/conversation.py; not one rewritten to stand alone) is answered from
    # the best passage's article (rag/answer.py follow_up_article). Five
    # articles: citation precision 0.928 -> 0.946; the SQuAD set unchanged.
    follow_up_lead: bool = True
    # True: an answer whose sentences' paragraphs (and article title) name
    # none of the years the question names abstains: the passages are of
    # another time ("in 1990" against the figure for 2008). README "Abstention".
    year_check: bool = True
    # The lead gives way to a sentence within names_margin of it that speaks
    # of what the question names when it does not (it names another subject),
    # and to one within figures_margin that holds the question's figures ("in
    # 1991") when it lacks them; the sentence after the lead also joins within
    # referring_margin when it goes on about the lead's subject ("He was the
    # only candidate"). Chosen on the development set and SQuAD training
    # articles 40-59 (eval/NOTES.md, "How the answer rules were chosen").
    names_margin: float = 0.1
    figures_margin: float = 0.2
    referring_margin: float = 0.3
    # Below this best-sentence score the articles are taken not to answer.
    # 0.36 balances the two errors on the question set: 3/91 answerable
    # questions abstain, 5/16 unanswerable near misses are answered.
    abstain_below: float = 0.36
    # "learned": the ranker and answerability model of rag/answerability.py
    # (weights in rag/models/) choose the sentences and whether to abstain, in
    # place of the rules above; "rules" keeps them. README "Learned answer stage".
    stage: str = "rules"
    # True: the reading model of rag/reader.py also judges the chosen answer,
    # and the answer abstains when its p_answerable falls below the shipped
    # threshold (README "Reading model"). Off by default until the lead wires it.
    reader_gate: bool = False
    # True: every answer of the rules carries `Answer.answerable`, the
    # calibrated probability of rag/calibration.py (about 1 ms an ask).
    probability: bool = True
    # True: an answer of the rules whose probability falls below the shipped
    # threshold (set for 1% false abstention on held-out SQuAD training
    # articles) abstains too. On by default: on the SQuAD set it abstains on
    # more out-of-corpus questions, and it added no false abstention on the
    # five articles or the development articles (README "Answerability").
    gate: bool = True
    # True: an answer of the rules given with a probability under the shipped
    # doubt level (the held-out answerable p at its 5% quantile) carries a
    # note saying the passages may not answer it (rag/calibration.py
    # DOUBT_NOTE; README "Answers given with a doubt note").
    doubt: bool = True

    def __post_init__(self) -> None:
        _check([
            (self.stage in ANSWER_STAGES, f"answer_stage must be one of {', '.join(ANSWER_STAGES)}"),
            (self.mode in ANSWER_MODES, f"answer_mode must be one of {', '.join(ANSWER_MODES)}"),
            (0.0 <= self.sentence_dense_weight <= 1.0, "sentence_dense_weight must be between 0 and 1"),
            (self.sentences >= 1, "answer_sentences must be at least 1"),
            (self.margin >= 0.0, "answer_margin must be at least 0"),
            (self.other_article_margin >= 0.0, "answer_other_article_margin must be at least 0"),
            (self.neighbour_margin >= 0.0, "answer_neighbour_margin must be at least 0"),
            (self.names_margin >= 0.0, "names_margin must be at least 0"),
            (self.figures_margin >= 0.0, "figures_margin must be at least 0"),
            (self.referring_margin >= 0.0, "referring_margin must be at least 0"),
            # Checked, not coerced: answer_doubt="false" is a true string, and
            # kept the note on that it meant to turn off.
            *((isinstance(getattr(self, f), bool), f"{flat} must be True or False")
              for f, flat in (("probability", "answer_probability"), ("gate", "answer_gate"),
                              ("doubt", "answer_doubt"), ("reader_gate", "reader_gate"))),
        ])


@dataclass(frozen=True)
class LLMSettings:
    """Optional LLM answers: any OpenAI-compatible chat server. Off unless
    base_url and model are set (Settings.from_env reads RAG_LLM_*)."""

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout: float = 60.0  # seconds; a slower server gets the extractive answer instead
    max_tokens: int = 300
    context_tokens: int = 4096  # the model's window, prompt and reply together
    # A sentence of the reply is supported when the best sentence of the
    # passage it cites scores at least this against it (same scoring as the
    # extractive answer: meaning and shared words).
    support_min: float = 0.5

    def __post_init__(self) -> None:
        _check([
            (self.timeout > 0, "llm_timeout must be above 0 seconds"),
            (self.max_tokens >= 1, "llm_max_tokens must be at least 1"),
            (self.context_tokens > self.max_tokens, "llm_context_tokens must exceed llm_max_tokens"),
        ])

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


GROUPS: dict[str, type] = {
    "index": IndexSettings,
    "retrieval": RetrievalSettings,
    "answer": AnswerSettings,
    "llm": LLMSettings,
}
# The flat names each field also goes by (`Settings(chunk_tokens=80)`,
# `with_settings(abstain_below=0.4)`): the field's own name where no other
# group has it, else prefixed with its group.
_RENAMED = {
    "retrieval_mode": ("retrieval", "mode"),
    "answer_mode": ("answer", "mode"),
    "answer_sentences": ("answer", "sentences"),
    "answer_margin": ("answer", "margin"),
    "answer_other_article_margin": ("answer", "other_article_margin"),
    "answer_neighbour_margin": ("answer", "neighbour_margin"),
    "answer_stage": ("answer", "stage"),
    "answer_probability": ("answer", "probability"),
    "answer_gate": ("answer", "gate"),
    "answer_doubt": ("answer", "doubt"),
}
FLAT_NAMES: dict[str, tuple[str, str]] = {
    **{
        (f"llm_{f.name}" if group == "llm" else f.name): (group, f.name)
        for group, kind in GROUPS.items()
        for f in dataclasses.fields(kind)
        if (group, f.name) not in _RENAMED.values()
    },
    **_RENAMED,
}


@dataclass(frozen=True, init=False)
class Settings:
    index: IndexSettings
    retrieval: RetrievalSettings
    answer: AnswerSettings
    llm: LLMSettings

    def __init__(
        self,
        index: IndexSettings | None = None,
        retrieval: RetrievalSettings | None = None,
        answer: AnswerSettings | None = None,
        llm: LLMSettings | None = None,
        **flat: Any,
    ) -> None:
        groups = {"index": index, "retrieval": retrieval, "answer": answer, "llm": llm}
        for name, value in groups.items():
            if value is not None and not isinstance(value, GROUPS[name]):
                raise SettingsError(f"invalid setting: {name} must be a {GROUPS[name].__name__}, not {type(value).__name__}")
        changes = _group_changes(flat)
        for name, kind in GROUPS.items():
            base = groups[name] or kind()
            object.__setattr__(self, name, dataclasses.replace(base, **changes[name]) if changes[name] else base)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, with the LLM configured from the environment:

        RAG_LLM_BASE_URL, RAG_LLM_MODEL, RAG_LLM_API_KEY (or OPENAI_API_KEY),
        RAG_LLM_TIMEOUT (seconds), RAG_ANSWER_MODE (extractive | llm; default
        llm when a model is configured); RAG_INDEX_TYPE (auto | flat | hnsw |
        ivf) for the vector index; RAG_EMBED_BACKEND (onnx | onnx-int8 | torch);
        RAG_MAX_FILE_MB (the per-file size limit of the corpus);
        RAG_ANSWER_STAGE (rules | learned); RAG_ANSWER_READER (1: the reader's gate); and
        XDG_CACHE_HOME (where the ONNX export of the model is kept).
        Only the CLI and the app call this; library code takes Settings.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("RAG_LLM_BASE_URL") and env.get("RAG_LLM_MODEL"):
            values.update(llm_base_url=env["RAG_LLM_BASE_URL"], llm_model=env["RAG_LLM_MODEL"], answer_mode="llm")
        if env.get("RAG_LLM_API_KEY") or env.get("OPENAI_API_KEY"):
            values["llm_api_key"] = env.get("RAG_LLM_API_KEY") or env.get("OPENAI_API_KEY")
        if env.get("RAG_LLM_TIMEOUT"):
            values["llm_timeout"] = env_number(env, "RAG_LLM_TIMEOUT", float, "a number of seconds")
        if env.get("RAG_INDEX_TYPE"):
            values["index_type"] = env["RAG_INDEX_TYPE"]
        if env.get("RAG_ANSWER_MODE"):
            values["answer_mode"] = env["RAG_ANSWER_MODE"]
        if env.get("RAG_EMBED_BACKEND"):
            values["embed_backend"] = env["RAG_EMBED_BACKEND"]
        if env.get("RAG_SENTENCE_EMBED_BACKEND"):
            values["sentence_embed_backend"] = env["RAG_SENTENCE_EMBED_BACKEND"]
        if env.get("RAG_ANSWER_STAGE"):
            values["answer_stage"] = env["RAG_ANSWER_STAGE"]
        if env.get("RAG_ANSWER_READER"):
            if env["RAG_ANSWER_READER"] not in ("0", "1"):
                raise SettingsError(f"RAG_ANSWER_READER must be 1 (the reader's gate on) or 0, not {env['RAG_ANSWER_READER']!r}")
            values["reader_gate"] = env["RAG_ANSWER_READER"] == "1"
        if env.get("RAG_MAX_FILE_MB"):
            values["max_file_mb"] = env_number(env, "RAG_MAX_FILE_MB", float, "a number of megabytes")
        values["cache_dir"] = user_cache_dir(env)
        return cls.from_dict({**values, **overrides})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Settings":
        """Settings from flat names and/or groups given as dicts:
        {"chunk_tokens": 80} or {"index": {"chunk_tokens": 80}}."""
        return cls().replace(**values)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with these flat names or groups (objects or dicts) changed."""
        groups: dict[str, Any] = {name: getattr(self, name) for name in GROUPS}
        flat: dict[str, Any] = {}
        for name, value in changes.items():
            if name in GROUPS and isinstance(value, Mapping):
                flat.update({_flat_name(name, k): v for k, v in value.items()})
            elif name in GROUPS:
                groups[name] = value
            else:
                flat[name] = value
        return Settings(**groups, **flat)

    def located(
        self, corpus_dir: str | Path | None = None, index_dir: str | Path | None = None,
        backend: str | None = None, dsn: str | None = None,
    ) -> "Settings":
        """A copy with the given folders, backend and PostgreSQL DSN (None keeps each)."""
        changes: dict[str, Any] = {}
        if corpus_dir is not None:
            changes["corpus_dir"] = Path(corpus_dir)
        if index_dir is not None:
            changes["index_dir"] = Path(index_dir)
        if backend is not None:
            changes["backend"] = backend
        if dsn is not None:
            config = self.index.postgres
            given = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
            changes["postgres"] = {**given, "dsn": dsn}
        return self.replace(**changes) if changes else self

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in GROUPS}


def env_number(env: Mapping[str, str], name: str, kind: type, what: str) -> Any:
    """The variable `name` read as `kind` (int or float); SettingsError saying what it should be."""
    try:
        return kind(env[name])
    except ValueError:
        raise SettingsError(f"{name}={env[name]!r} is not {what}") from None


def _flat_name(group: str, field_name: str) -> str:
    """The flat name of a group's field; an unknown field gives a name that
    _group_changes reports as unknown."""
    for flat, (g, f) in FLAT_NAMES.items():
        if (g, f) == (group, field_name):
            return flat
    return f"{group}.{field_name}"


def _group_changes(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    unknown = sorted(set(flat) - set(FLAT_NAMES))
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(unknown)}: valid names are {', '.join(sorted(FLAT_NAMES))}"
        )
    changes: dict[str, dict[str, Any]] = {name: {} for name in GROUPS}
    for name, value in flat.items():
        group, field_name = FLAT_NAMES[name]
        changes[group][field_name] = value
    return changes

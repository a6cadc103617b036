"""Every tunable of the pipeline, with its default, in one place.

Settings are plain frozen values: library code receives them and never reads
the environment itself. Unknown names are rejected so that a typo in a config
does not silently fall back to a default.
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
EMBED_BACKENDS = ("onnx", "torch")


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/rag, else ~/.cache/rag: files derived from installed
    packages (the ONNX export of the model), shared by every index."""
    env = os.environ if environ is None else environ
    return Path(env.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "rag"


@dataclass(frozen=True)
class Settings:
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
    # made the embedder warns and runs on torch.
    embed_backend: str = "onnx"
    # Outside the index folder, which is rebuilt and replaced whole: the
    # export depends on the model only and serves every index.
    cache_dir: Path = field(default_factory=user_cache_dir)

    # Chunks hold whole sentences up to `chunk_tokens` tiktoken tokens, 3-5
    # sentences of these articles: a hit points at one argument and a citation
    # stays checkable, and with the title prefix a chunk stays far below the
    # 256 word pieces MiniLM reads (it was trained on 128-piece inputs, so
    # longer chunks also embed worse). On eval/questions.jsonl, 100-160 tokens
    # scored alike (hit@1 0.93-0.96) and 220 a little lower; see README.
    # Consecutive chunks share up to `overlap_tokens` of whole sentences so that
    # a statement spanning a chunk border is whole in at least one chunk.
    chunk_tokens: int = 120
    overlap_tokens: int = 30
    tokenizer: str = "cl100k_base"

    # Hybrid retrieval: each index returns `candidates` chunks, then scores are
    # fused. Weighted fusion of min-max normalised scores beat reciprocal rank
    # fusion on eval/questions.jsonl at every chunk size (hit@1 0.93-0.96
    # against 0.87-0.91): RRF throws away how far ahead a clear BM25 match is.
    fusion: str = "weighted"
    dense_weight: float = 0.6  # 0.5-0.7 scored alike; below 0.5 lost ground
    rrf_k: int = 60  # only for fusion="rrf"; the constant of Cormack et al. (2009)
    candidates: int = 50

    # The vector index: None keeps what the index records (for a new index,
    # "auto": exact search below 50,000 chunks, HNSW from there); "auto",
    # "flat", "hnsw" or "ivf" sets it, and the manifest remembers the choice.
    index_type: str | None = None

    # Repair damaged extractions (README "Text repair"). False indexes the text
    # as extracted: only to measure what the repair is worth (`rag eval --compare`).
    repair: bool = True

    retrieval_mode: str = "hybrid"  # what `ask` retrieves with
    # Query embeddings kept for repeated questions (a chat's retries, the
    # app's several views of one answer); 0 turns the cache off.
    query_cache_size: int = 256

    # Extractive answers: sentences of the retrieved passages scored as
    # sentence_dense_weight * cosine + (1 - it) * share of the question's words
    # (IDF-weighted) that the sentence holds. The answer is the best sentence,
    # plus up to answer_sentences - 1 more within answer_margin of its score
    # that are not near-duplicates (cosine >= duplicate_similarity) of one chosen.
    # Measured on eval/questions.jsonl (README): a wider margin adds facts but
    # also sentences from other articles (margin 0.08: fact recall 0.85,
    # citation precision 0.86; 0.03: 0.82 and 0.91).
    answer_mode: str = "extractive"
    sentence_dense_weight: float = 0.6
    answer_sentences: int = 3
    answer_margin: float = 0.03
    duplicate_similarity: float = 0.85
    # Below this best-sentence score the articles are taken not to answer.
    # 0.36 balances the two errors on the question set: 3/91 answerable
    # questions abstain, 5/16 unanswerable near misses are answered.
    abstain_below: float = 0.36
    # "learned": the ranker and answerability model of rag/answerability.py
    # (weights in rag/models/) choose the sentences and whether to abstain, in
    # place of the rules above; "rules" keeps them. README "Learned answer stage".
    answer_stage: str = "rules"

    # Optional LLM answers: any OpenAI-compatible chat server. Off unless
    # base URL and model are set (Settings.from_env reads RAG_LLM_*).
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 60.0  # seconds; a slower server gets the extractive answer instead
    llm_max_tokens: int = 300
    llm_context_tokens: int = 4096  # the model's window, prompt and reply together
    # A sentence of the reply is supported when the best sentence of the
    # passage it cites scores at least this against it (same scoring as the
    # extractive answer: meaning and shared words).
    llm_support_min: float = 0.5

    # Questions longer than this are refused rather than truncated: a question
    # of several pages is a pasted document, not a question. 1,000 characters
    # of English stay within the 256 word pieces the model reads; a question
    # that still exceeds them is refused when it is embedded.
    max_question_chars: int = 1000

    def __post_init__(self) -> None:
        checks = [
            (self.chunk_tokens >= 16, "chunk_tokens must be at least 16"),
            (0 <= self.overlap_tokens < self.chunk_tokens, "overlap_tokens must be >= 0 and below chunk_tokens"),
            (self.embed_batch_size >= 1, "embed_batch_size must be at least 1"),
            (self.embedding_cache_size >= 0, "embedding_cache_size must be 0 or more"),
            (self.embed_backend in EMBED_BACKENDS, f"embed_backend must be one of {', '.join(EMBED_BACKENDS)}"),
            (self.fusion in FUSIONS, f"fusion must be one of {', '.join(FUSIONS)}"),
            (self.rrf_k >= 1, "rrf_k must be at least 1"),
            (0.0 <= self.dense_weight <= 1.0, "dense_weight must be between 0 and 1"),
            (self.candidates >= 1, "candidates must be at least 1"),
            (self.index_type is None or self.index_type in INDEX_TYPES, f"index_type must be one of {', '.join(INDEX_TYPES)}"),
            (self.query_cache_size >= 0, "query_cache_size must be 0 or more"),
            (self.max_question_chars >= 1, "max_question_chars must be at least 1"),
            (isinstance(self.repair, bool), "repair must be True or False"),
            (self.retrieval_mode in MODES, f"retrieval_mode must be one of {', '.join(MODES)}"),
            (self.answer_mode in ANSWER_MODES, f"answer_mode must be one of {', '.join(ANSWER_MODES)}"),
            (self.answer_stage in ANSWER_STAGES, f"answer_stage must be one of {', '.join(ANSWER_STAGES)}"),
            (0.0 <= self.sentence_dense_weight <= 1.0, "sentence_dense_weight must be between 0 and 1"),
            (self.answer_sentences >= 1, "answer_sentences must be at least 1"),
            (self.answer_margin >= 0.0, "answer_margin must be at least 0"),
            (self.llm_timeout > 0, "llm_timeout must be above 0 seconds"),
            (self.llm_max_tokens >= 1, "llm_max_tokens must be at least 1"),
            (self.llm_context_tokens > self.llm_max_tokens, "llm_context_tokens must exceed llm_max_tokens"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(f"invalid setting: {message}")
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, with the LLM configured from the environment:

        RAG_LLM_BASE_URL, RAG_LLM_MODEL, RAG_LLM_API_KEY (or OPENAI_API_KEY),
        RAG_LLM_TIMEOUT (seconds), RAG_ANSWER_MODE (extractive | llm; default
        llm when a model is configured); RAG_INDEX_TYPE (auto | flat | hnsw |
        ivf) for the vector index; RAG_EMBED_BACKEND (onnx | torch);
        RAG_ANSWER_STAGE (rules | learned); and
        XDG_CACHE_HOME (where the ONNX export of the model is kept).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("RAG_LLM_BASE_URL") and env.get("RAG_LLM_MODEL"):
            values.update(llm_base_url=env["RAG_LLM_BASE_URL"], llm_model=env["RAG_LLM_MODEL"], answer_mode="llm")
        if env.get("RAG_LLM_API_KEY") or env.get("OPENAI_API_KEY"):
            values["llm_api_key"] = env.get("RAG_LLM_API_KEY") or env.get("OPENAI_API_KEY")
        if env.get("RAG_LLM_TIMEOUT"):
            try:
                values["llm_timeout"] = float(env["RAG_LLM_TIMEOUT"])
            except ValueError:
                raise SettingsError(f"RAG_LLM_TIMEOUT={env['RAG_LLM_TIMEOUT']!r} is not a number of seconds") from None
        if env.get("RAG_INDEX_TYPE"):
            values["index_type"] = env["RAG_INDEX_TYPE"]
        if env.get("RAG_ANSWER_MODE"):
            values["answer_mode"] = env["RAG_ANSWER_MODE"]
        if env.get("RAG_EMBED_BACKEND"):
            values["embed_backend"] = env["RAG_EMBED_BACKEND"]
        if env.get("RAG_ANSWER_STAGE"):
            values["answer_stage"] = env["RAG_ANSWER_STAGE"]
        values["cache_dir"] = user_cache_dir(env)
        return cls.from_dict({**values, **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Settings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(unknown)}: valid names are {', '.join(sorted(known))}"
            )
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        return Settings.from_dict({**dataclasses.asdict(self), **changes})

    def chunking_params(self) -> dict[str, Any]:
        """What the chunks depend on; a change here means re-chunking."""
        return {
            "chunk_tokens": self.chunk_tokens,
            "overlap_tokens": self.overlap_tokens,
            "tokenizer": self.tokenizer,
        }

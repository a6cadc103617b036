"""Question answering over a corpus of articles, with citations you can check.

    import rag
    r = rag.RAG.load()                     # ./corpus and ./index
    hits = r.retrieve("question", k=5)     # mode="hybrid" | "dense" | "bm25"
    art = r.article(hits[0].article_id)

Heavy parts (torch, sentence-transformers, FAISS) load on first use.
"""

from __future__ import annotations

from .version import __version__  # noqa: E402

from .errors import (  # noqa: E402
    CorpusError,
    EvalError,
    ModelError,
    QueryError,
    RagError,
    SettingsError,
    StoreError,
    UnknownArticleError,
)
from .settings import AnswerSettings, IndexSettings, LLMSettings, RetrievalSettings, Settings  # noqa: E402
from .trace import Trace  # noqa: E402
from .types import Answer, Article, Chunk, Citation, Delta, Hit, RepairReport, ShortAnswer  # noqa: E402

__all__ = [
    "RAG",
    "Settings",
    "IndexSettings",
    "RetrievalSettings",
    "AnswerSettings",
    "LLMSettings",
    "Trace",
    "Article",
    "Chunk",
    "Hit",
    "Citation",
    "Answer",
    "ShortAnswer",
    "Delta",
    "RepairReport",
    "RagError",
    "CorpusError",
    "EvalError",
    "StoreError",
    "QueryError",
    "UnknownArticleError",
    "ModelError",
    "SettingsError",
]


def __getattr__(name: str):
    # RAG pulls in numpy and the index code; keep `import rag` cheap for the CLI.
    if name == "RAG":
        from .core import RAG

        return RAG
    raise AttributeError(f"module 'rag' has no attribute {name!r}")

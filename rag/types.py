"""The named values that travel between the pipeline's steps.

corpus files -> Article -> Chunk -> (dense + sparse index) -> Hit -> Answer(Citation...)

All are frozen: a value handed from one step to the next cannot be changed
behind the receiver's back. Vectors never live here; they stay in the indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RepairReport:
    """How much of one document the text repair changed, by kind of damage."""

    swapped_chars: int = 0  # byte-swapped UTF-16 characters decoded (匀 -> S)
    dashes_respaced: int = 0  # repaired dashes whose stray spaces were removed
    furniture_lines: int = 0  # page numbers, running headers and footers removed
    joined_lines: int = 0  # hard line breaks inside paragraphs joined
    encoding_fixes: int = 0  # characters changed by mojibake and control-character fixes
    ligatures_split: int = 0  # presentation-form ligatures ("ﬁ") written as their letters
    line_endings: int = 0  # "\r\n" or "\r" line breaks made "\n"
    chars_normalised: int = 0  # odd spaces, hyphens, invisible characters mapped (damaged text only)
    paragraph_breaks: int = 0  # line breaks kept as paragraph breaks when the layout was rebuilt
    spaces_collapsed: int = 0  # runs of spaces made one space
    whitespace_trimmed: int = 0  # lines' edge spaces, extra blank lines, the text's edge white space
    garbled_share: float = 0.0  # share of characters that still look damaged after repair

    def describe(self) -> str:
        """The changes in words, kinds with none left out: "207 swapped characters decoded, ..."."""
        labels = {
            "swapped_chars": "swapped characters decoded",
            "dashes_respaced": "dashes re-spaced",
            "furniture_lines": "page-furniture lines removed",
            "joined_lines": "line breaks joined",
            "encoding_fixes": "mojibake or control characters fixed",
            "ligatures_split": "ligatures split",
            "line_endings": "line endings made \\n",
            "chars_normalised": "spacing characters normalised",
            "paragraph_breaks": "line breaks made paragraph breaks",
            "spaces_collapsed": "space runs collapsed",
            "whitespace_trimmed": "white-space edges trimmed",
        }
        return ", ".join(f"{getattr(self, k)} {label}" for k, label in labels.items() if getattr(self, k)) or "no changes"

    @property
    def total(self) -> int:
        """How many changes repair made: 0 exactly when the text is the file's own."""
        return (
            self.swapped_chars
            + self.dashes_respaced
            + self.furniture_lines
            + self.joined_lines
            + self.encoding_fixes
            + self.ligatures_split
            + self.line_endings
            + self.chars_normalised
            + self.paragraph_breaks
            + self.spaces_collapsed
            + self.whitespace_trimmed
        )


@dataclass(frozen=True)
class Article:
    """One document of the corpus; `text` is the cleaned reference text.

    Every offset in the system (chunks, hits, citations) points into `text`.
    """

    id: str  # the file stem, e.g. "000_b8d8672fd89b6af8"
    title: str
    author: str | None
    publisher: str | None
    date: str | None
    source: str  # the file name inside the corpus folder
    text: str
    title_is_descriptive: bool = False  # True when the article prints no title and one was written for it
    content_hash: str = ""  # sha256 of the file's bytes
    repair: RepairReport = field(default_factory=RepairReport)

    @property
    def byline(self) -> str:
        """Author (else publisher) and date: "Jane Doe, 12 March 2025"; "" when neither is known."""
        return ", ".join(x for x in (self.author or self.publisher, self.date) if x)

    @property
    def source_line(self) -> str:
        """Title and byline: "Title — Jane Doe, 12 March 2025"."""
        return self.title + (f" — {self.byline}" if self.byline else "")


@dataclass(frozen=True)
class Chunk:
    """A token-bounded span of an article: `article.text[start:end] == text`."""

    id: str  # "<article_id>#<position>"
    article_id: str
    position: int  # 0-based order of the chunk inside its article
    start: int
    end: int
    text: str
    n_tokens: int  # tiktoken tokens of `text`


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as the index stores it: where it is, and what was embedded."""

    id: str
    article_id: str
    position: int
    start: int
    end: int
    n_tokens: int
    embed_hash: str  # sha256 of the model name and the text that was embedded


@dataclass(frozen=True)
class SentenceRecord:
    """A sentence of an article, embedded on its own so answers can pick sentences."""

    article_id: str
    start: int
    end: int
    embed_hash: str


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score; `score` is comparable only within one result list."""

    article_id: str
    title: str
    text: str
    score: float
    start: int
    end: int
    chunk_id: str
    dense_score: float | None = None  # cosine similarity, when the dense index saw this chunk
    bm25_score: float | None = None  # BM25 score, when the sparse index saw this chunk


@dataclass(frozen=True)
class Citation:
    """One `[n]` marker of an answer: `quote == article.text[start:end]`."""

    n: int
    article_id: str
    title: str
    quote: str
    start: int
    end: int


@dataclass(frozen=True)
class ShortAnswer:
    """The exact words of a cited quote that answer a factoid question: `text == article.text[start:end]`."""

    article_id: str
    start: int
    end: int
    text: str
    confidence: float = 0.0  # the scorer's probability that the span is exactly the answer


@dataclass(frozen=True)
class Answer:
    """An answer whose every [n] marker has one Citation quoting the article."""

    text: str
    citations: list[Citation]
    abstained: bool
    hits: list[Hit]  # the passages that were considered
    notes: list[str] = field(default_factory=list)  # what the reader should know: fallbacks, removed markers
    unsupported: list[str] = field(default_factory=list)  # LLM sentences the cited passage does not support
    # The probability that the passages answer the question: the calibration's
    # (rag/calibration.py) for the rules' answers, the learned stage's for its
    # own; None when none was computed (Settings(answer_probability=False), a
    # question not in English, an answer of the language model).
    answerable: float | None = None
    short: ShortAnswer | None = None  # the span that answers a factoid question (rag.short), when one is confident


@dataclass(frozen=True)
class Delta:
    """A piece of a language model's reply as it streams in (a draft, before checking)."""

    text: str

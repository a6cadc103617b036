"""The sentences of the retrieved passages, scored against a question.

Extractive answers and the check of a language model's reply both work on
sentences: each indexed sentence has its own vector, and a question is
compared with the sentences inside its hits by meaning (cosine) and by the
question's words the sentence holds, weighted by how rare each word is among
the corpus's sentences (the IDF table, stored with the index).

Where the sentences come from is the backend's business (`SentenceSource`):
`SentenceIndex` is the in-memory one of the local index; a database backend
fetches the sentences of the hits' spans instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .records import RecordTable, rows_by
from .sparse import tokenize, word_set
from .types import Article, Hit, SentenceRecord

Span = tuple[str, int, int]  # article id, start, end


@dataclass(frozen=True)
class SentenceBatch:
    """Sentences inside some spans, with their unit vectors (row i is records[i])."""

    records: list[SentenceRecord]
    vectors: np.ndarray


class SentenceSource(Protocol):
    def sentences_within(self, spans: Sequence[Span]) -> SentenceBatch:
        """Every sentence lying wholly inside one of the spans, each once, in
        the order of the spans, then by start."""

    def sentence_df(self) -> tuple[Mapping[str, int], int]:
        """Word -> number of sentences holding it, and the number of sentences."""


@dataclass(frozen=True)
class Evidence:
    """A sentence of a retrieved passage, scored against the question."""

    article_id: str
    start: int
    end: int
    score: float
    dense: float  # cosine between question and sentence
    lexical: float  # IDF-weighted share of the question's words found in the sentence
    row: int  # the sentence's row in the EvidenceSet's vectors


@dataclass(frozen=True)
class EvidenceSet:
    """The scored sentences of some hits, best first, and their vectors."""

    items: list[Evidence]
    vectors: np.ndarray

    def similarity(self, a: Evidence, b: Evidence) -> float:
        return float(self.vectors[a.row] @ self.vectors[b.row])


EMPTY = EvidenceSet([], np.zeros((0, 0), dtype=np.float32))


def sentence_document_frequency(texts: Sequence[str]) -> dict[str, int]:
    """In how many of `texts` each word (as BM25 tokenizes it) occurs: the
    IDF table of answer scoring. The indexer stores it with the index, so
    that loading a large index does not tokenize every sentence again."""
    df: dict[str, int] = {}
    for words in tokenize(list(texts)) if texts else []:
        for w in set(words):
            df[w] = df.get(w, 0) + 1
    return df


# Sentence word sets kept between questions; past this many the memo starts
# over (a word set is recomputed in microseconds, memory is not unbounded).
_WORDS_MEMO_MAX = 200_000
# Spans (chunks) whose sentences are kept, likewise: a chunk holds a few sentences,
# and an entry takes about 3 KB, so this bounds the memo near 60 MB.
_WITHIN_MEMO_MAX = 20_000


class SentenceScorer:
    """Scores the sentences of hits against a question; one per loaded index."""

    def __init__(self, source: SentenceSource, articles: Mapping[str, Article]) -> None:
        self.source = source
        self._articles = articles
        # Built here, not on first use: the chat app asks from several threads,
        # and a lazily filled table is half-built for one of them.
        document_frequency, n = source.sentence_df()
        # Smoothed IDF: a word missing from every sentence gets the highest weight.
        self.idf_table = {w: math.log(1 + n / c) for w, c in document_frequency.items()}
        self.idf_unseen = math.log(1 + max(n, 1))
        # Word sets are made for the sentences a question reaches, when it
        # reaches them. Each entry is complete when stored, so threads that
        # race only compute one twice.
        self._words_memo: dict[tuple[str, int, int], frozenset[str]] = {}

    def words(self, records: Sequence[SentenceRecord]) -> list[frozenset[str]]:
        """Each sentence's words as BM25 tokenizes them (kept between questions)."""
        memo = self._words_memo
        keys = [(r.article_id, r.start, r.end) for r in records]
        missing = [k for k in dict.fromkeys(keys) if k not in memo]
        if missing:
            if len(memo) + len(missing) > _WORDS_MEMO_MAX:
                memo.clear()
            texts = [self._articles[a].text[s:e] for a, s, e in missing]
            for key, words in zip(missing, tokenize(texts)):
                memo[key] = frozenset(words)
        return [memo.get(k) or frozenset(tokenize([self._articles[k[0]].text[k[1] : k[2]]])[0]) for k in keys]

    def score(self, question: str, question_vector: np.ndarray, hits: Sequence[Hit], dense_weight: float) -> EvidenceSet:
        """Every sentence inside the hits, best first."""
        batch = self.source.sentences_within([(h.article_id, h.start, h.end) for h in hits])
        if not batch.records:
            return EMPTY
        vectors = np.asarray(batch.vectors, dtype=np.float32)
        dense = vectors @ np.asarray(question_vector, dtype=np.float32)
        q_words = word_set(question)
        idf, unseen = self.idf_table.get, self.idf_unseen
        q_weight = sum(idf(w, unseen) for w in q_words)
        lexical_weight = 1.0 - dense_weight
        evidence = []
        # dense.tolist(): the cosines as Python floats at once (float() of each numpy scalar, in bulk).
        for row, (r, cos, words) in enumerate(zip(batch.records, dense.tolist(), self.words(batch.records))):
            shared = q_words & words
            lexical = sum(idf(w, unseen) for w in shared) / q_weight if q_weight else 0.0
            score = dense_weight * cos + lexical_weight * lexical
            evidence.append(Evidence(r.article_id, r.start, r.end, score, cos, lexical, row))
        evidence.sort(key=lambda e: -e.score)
        return EvidenceSet(evidence, vectors)


class _StartsAndRows(Mapping[str, list[tuple[int, int]]]):
    """Article id -> its sentences' (start, row), sorted: the answer stage's
    view (rag/answerability.py), made for an article when first asked for."""

    def __init__(self, spans: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self._spans = spans
        self._made: dict[str, list[tuple[int, int]]] = {}

    def __getitem__(self, article_id: str) -> list[tuple[int, int]]:
        made = self._made.get(article_id)
        if made is None:
            starts, _, rows = self._spans[article_id]
            made = self._made[article_id] = list(zip(starts.tolist(), rows.tolist()))
        return made

    def __iter__(self):
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)


class SentenceIndex:
    """The indexed sentences of every article in memory, with their vectors:
    the local backend's SentenceSource."""

    def __init__(
        self,
        records: Sequence[SentenceRecord],
        vectors: np.ndarray,
        articles: Mapping[str, Article],
        document_frequency: Mapping[str, int] | None = None,
    ) -> None:
        # A loaded index's records are columns (rag/records.py): kept as they
        # are, so that a million-chunk index does not make every record at load.
        self.records = records if isinstance(records, RecordTable) else list(records)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        if isinstance(self.records, RecordTable):
            starts, ends = self.records.int_column("start"), self.records.int_column("end")
        else:
            starts = np.fromiter((r.start for r in self.records), dtype=np.int64, count=len(self.records))
            ends = np.fromiter((r.end for r in self.records), dtype=np.int64, count=len(self.records))
        # Per article: its sentences' rows sorted by start, with those starts and ends.
        self._spans: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for article_id, rows in rows_by(self.records, "article_id").items():
            rows = rows[np.argsort(starts[rows], kind="stable")]
            self._spans[article_id] = (starts[rows], ends[rows], rows)
        self._by_article = _StartsAndRows(self._spans)
        # An index from before the table was stored gets it computed now.
        if document_frequency is None:
            document_frequency = sentence_document_frequency(
                [articles[r.article_id].text[r.start : r.end] for r in self.records]
            )
        self._df = document_frequency
        self._within_memo: dict[Span, tuple[tuple[int, ...], tuple[SentenceRecord, ...]]] = {}

    def _inside(self, article_id: str, start: int, end: int) -> list[tuple[int, int, int]]:
        """(start, end, row) of the sentences lying wholly inside the span, in text order."""
        found = self._spans.get(article_id)
        if found is None:
            return []
        starts, ends, rows = found
        a, b = np.searchsorted(starts, start, "left"), np.searchsorted(starts, end, "left")
        return [(s, e, r) for s, e, r in zip(starts[a:b].tolist(), ends[a:b].tolist(), rows[a:b].tolist()) if e <= end]

    def rows_within(self, article_id: str, start: int, end: int) -> list[int]:
        return [r for _, _, r in self._inside(article_id, start, end)]

    def spans_within(self, article_id: str, start: int, end: int) -> list[tuple[int, int]]:
        """The (start, end) of the sentences lying wholly inside the span, in
        text order: the short answer reads a quote's sentences here instead of
        splitting it again (rag/short.py `index_bounds`)."""
        return [(s, e) for s, e, _ in self._inside(article_id, start, end)]

    def _within(self, span: Span) -> tuple[tuple[int, ...], tuple[SentenceRecord, ...]]:
        """rows_within(*span) and their records, kept: hits are chunks, so the
        same spans come back question after question, and making their
        records from the columns was a sixth of scoring their sentences."""
        found = self._within_memo.get(span)
        if found is None:
            rows = tuple(self.rows_within(*span))
            found = (rows, tuple(self.records[r] for r in rows))
            if len(self._within_memo) >= _WITHIN_MEMO_MAX:
                self._within_memo.clear()
            self._within_memo[span] = found  # complete when stored: racing threads only make it twice
        return found

    def sentences_within(self, spans: Sequence[Span]) -> SentenceBatch:
        records: dict[int, SentenceRecord] = {}  # by row, each once, in the order of the spans
        for span in spans:
            for row, record in zip(*self._within(span)):
                records.setdefault(row, record)
        return SentenceBatch(list(records.values()), self.vectors[list(records)])

    def sentence_df(self) -> tuple[Mapping[str, int], int]:
        return self._df, len(self.records)

"""Turn retrieved passages into an Answer whose every [n] is a verified quote.

Extractive answering picks the sentences of the retrieved passages that best
answer the question, scored with the embedding model (meaning) and with the
question's words that the sentence contains (evidence), and quotes them.
Everything that builds an Answer goes through `compose`, which numbers the
citations in order of first use and takes each quote from the article text at
its offsets, so the invariants hold by construction:

- each marker [n] in the text has exactly one citation with that n, numbered
  1, 2, 3 in order of first use;
- each quote is exactly article.text[start:end];
- no citation points outside the passages that were considered.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .sentences import FOOTNOTE
from .sparse import tokenize
from .store import SentenceRecord
from .types import Answer, Article, Citation, Hit

MARKER = re.compile(r"\[(\d+)\]")

ABSTAIN_TEXT = "The articles do not answer this question."
NOT_ENGLISH_TEXT = (
    "The question does not seem to be in English. The articles are in English and are searched in English: "
    "please ask in English."
)
_KIND_WORDS = {"month": "the month or date", "time": "the date", "quantity": "the number"}


def unknown_names_text(names: Sequence[str]) -> str:
    listed = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]
    return f"The articles do not answer this question: they never mention {listed}."


def missing_type_text(kind: str) -> str:
    return f"The articles do not answer this question: they do not give {_KIND_WORDS[kind]} it asks for."


INSTRUCTIONS_NOTE = (
    "The question contains instructions; they are not followed. Answers come only from the articles."
)


@dataclass(frozen=True)
class Evidence:
    """A sentence of a retrieved passage, scored against the question."""

    article_id: str
    start: int
    end: int
    score: float
    dense: float  # cosine between question and sentence
    lexical: float  # IDF-weighted share of the question's words found in the sentence
    row: int  # the sentence's row in the sentence index


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and the quote that supports it (None: no citation)."""

    text: str
    quote: Evidence | None


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


class SentenceIndex:
    """The indexed sentences of every article, with their vectors and words."""

    def __init__(
        self,
        records: Sequence[SentenceRecord],
        vectors: np.ndarray,
        articles: Mapping[str, Article],
        document_frequency: Mapping[str, int] | None = None,
    ) -> None:
        self.records = list(records)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self._articles = articles
        self._by_article: dict[str, list[tuple[int, int]]] = {}
        for row, r in enumerate(self.records):
            self._by_article.setdefault(r.article_id, []).append((r.start, row))
        for rows in self._by_article.values():
            rows.sort()
        # Built here, not on first use: the chat app asks from several threads,
        # and a lazily filled table is half-built for one of them. An index
        # from before the table was stored gets it computed now.
        if document_frequency is None:
            document_frequency = sentence_document_frequency([self._text(row) for row in range(len(self.records))])
        n = len(self.records)
        # Smoothed IDF: a word missing from every sentence gets the highest weight.
        self._idf = {w: math.log(1 + n / c) for w, c in document_frequency.items()}
        self._idf_unseen = math.log(1 + max(n, 1))
        # Word sets are made for the sentences a question reaches, when it
        # reaches them. Each entry is complete when stored, so threads that
        # race only compute one twice.
        self._words_memo: dict[int, frozenset[str]] = {}

    def _text(self, row: int) -> str:
        r = self.records[row]
        return self._articles[r.article_id].text[r.start : r.end]

    def _words(self, rows: Sequence[int]) -> list[frozenset[str]]:
        memo = self._words_memo
        missing = [row for row in rows if row not in memo]
        if missing:
            if len(memo) + len(missing) > _WORDS_MEMO_MAX:
                memo.clear()
            for row, words in zip(missing, tokenize([self._text(row) for row in missing])):
                memo[row] = frozenset(words)
        return [memo.get(row) or frozenset(tokenize([self._text(row)])[0]) for row in rows]

    def rows_within(self, article_id: str, start: int, end: int) -> list[int]:
        rows = self._by_article.get(article_id, [])
        i = bisect.bisect_left(rows, (start, -1))
        out = []
        while i < len(rows) and rows[i][0] < end:
            row = rows[i][1]
            if self.records[row].end <= end:
                out.append(row)
            i += 1
        return out

    def score(
        self,
        question: str,
        question_vector: np.ndarray,
        hits: Sequence[Hit],
        articles: Mapping[str, Article],
        dense_weight: float,
    ) -> list[Evidence]:
        """Every sentence inside the hits, best first."""
        rows = list(dict.fromkeys(r for h in hits for r in self.rows_within(h.article_id, h.start, h.end)))
        if not rows:
            return []
        dense = self.vectors[rows] @ np.asarray(question_vector, dtype=np.float32)
        q_words = set(tokenize([question])[0])
        q_weight = sum(self._idf.get(w, self._idf_unseen) for w in q_words)
        evidence = []
        for row, cos, words in zip(rows, dense, self._words(rows)):
            shared = q_words & words
            lexical = sum(self._idf.get(w, self._idf_unseen) for w in shared) / q_weight if q_weight else 0.0
            r = self.records[row]
            score = dense_weight * float(cos) + (1.0 - dense_weight) * lexical
            evidence.append(Evidence(r.article_id, r.start, r.end, score, float(cos), lexical, row))
        evidence.sort(key=lambda e: -e.score)
        return evidence

    def similarity(self, a: Evidence, b: Evidence) -> float:
        return float(self.vectors[a.row] @ self.vectors[b.row])


# --- choosing sentences -------------------------------------------------------


def select(
    evidence: Sequence[Evidence],
    sentences: SentenceIndex,
    max_sentences: int,
    margin: float,
    duplicate_similarity: float,
) -> list[Evidence]:
    """The best sentence, plus up to `max_sentences - 1` others that score
    within `margin` of it and say something the chosen ones do not."""
    if not evidence:
        return []
    chosen = [evidence[0]]
    for e in evidence[1:]:
        if len(chosen) >= max_sentences or e.score < evidence[0].score - margin:
            break
        if any(sentences.similarity(e, c) >= duplicate_similarity for c in chosen):
            continue  # near-duplicate: the same point in other words
        chosen.append(e)
    return order_readably(chosen)


def order_readably(chosen: Sequence[Evidence]) -> list[Evidence]:
    """Articles in order of their best sentence; each article's sentences in text order."""
    article_rank: dict[str, int] = {}
    for e in chosen:
        article_rank.setdefault(e.article_id, len(article_rank))
    return sorted(chosen, key=lambda e: (article_rank[e.article_id], e.start))


def merge_adjacent(chosen: Sequence[Evidence], articles: Mapping[str, Article], hits: Sequence[Hit]) -> list[Evidence]:
    """Join sentences that follow each other in one article into one quote,
    when one retrieved passage holds both (a quote never spans passages)."""

    def one_passage_holds(article_id: str, start: int, end: int) -> bool:
        return any(h.article_id == article_id and h.start <= start and end <= h.end for h in hits)

    merged: list[Evidence] = []
    for e in chosen:
        last = merged[-1] if merged else None
        if (
            last
            and last.article_id == e.article_id
            and not articles[e.article_id].text[last.end : e.start].strip()
            and one_passage_holds(e.article_id, last.start, e.end)
        ):
            merged[-1] = Evidence(last.article_id, last.start, e.end, max(last.score, e.score), max(last.dense, e.dense),
                                  max(last.lexical, e.lexical), last.row)
        else:
            merged.append(e)
    return merged


# --- building the Answer ------------------------------------------------------


def display_text(text: str) -> str:
    """A quote as it reads in an answer: footnote markers dropped (they would
    read as citation markers), whitespace folded."""
    return " ".join(FOOTNOTE.sub("", text).split())


def compose(
    claims: Sequence[Claim],
    hits: Sequence[Hit],
    articles: Mapping[str, Article],
    notes: Sequence[str] = (),
    unsupported: Sequence[str] = (),
) -> Answer:
    """The Answer for these claims: one citation per distinct quote, numbered in order of first use."""
    numbers: dict[tuple[str, int, int], int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for claim in claims:
        text = MARKER.sub("", claim.text).strip()  # only compose() writes markers
        text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))  # "Sentence [1]." read "Sentence ."
        if claim.quote is None:
            parts.append(text)
            continue
        q = claim.quote
        key = (q.article_id, q.start, q.end)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            article = articles[q.article_id]
            citations.append(Citation(numbers[key], q.article_id, article.title, article.text[q.start : q.end], q.start, q.end))
        parts.append(f"{text} [{numbers[key]}]")
    return Answer(
        text=" ".join(parts), citations=citations, abstained=False, hits=list(hits), notes=list(notes),
        unsupported=list(unsupported),
    )


def abstain(hits: Sequence[Hit], text: str = ABSTAIN_TEXT, notes: Sequence[str] = ()) -> Answer:
    return Answer(text=text, citations=[], abstained=True, hits=list(hits), notes=list(notes))


def extractive_claims(chosen: Sequence[Evidence], articles: Mapping[str, Article], hits: Sequence[Hit]) -> list[Claim]:
    merged = merge_adjacent(chosen, articles, hits)
    return [Claim(display_text(articles[e.article_id].text[e.start : e.end]), e) for e in merged]


def invariant_problems(answer: Answer, articles: Mapping[str, Article]) -> list[str]:
    """What breaks the citation invariants in `answer` (empty when none)."""
    problems = []
    used = [int(n) for n in MARKER.findall(answer.text)]
    first_use = list(dict.fromkeys(used))
    numbers = [c.n for c in answer.citations]
    if first_use != list(range(1, len(first_use) + 1)):
        problems.append(f"markers are not numbered 1, 2, 3 in order of first use: {first_use}")
    if sorted(numbers) != sorted(set(numbers)) or set(numbers) != set(first_use):
        problems.append(f"markers {sorted(set(first_use))} and citations {numbers} do not match one to one")
    for c in answer.citations:
        article = articles.get(c.article_id)
        if article is None:
            problems.append(f"citation [{c.n}] names unknown article {c.article_id}")
        elif article.text[c.start : c.end] != c.quote:
            problems.append(f"citation [{c.n}] quote is not the article text at {c.start}:{c.end}")
        if not any(h.article_id == c.article_id and h.start <= c.start and c.end <= h.end for h in answer.hits):
            problems.append(f"citation [{c.n}] points outside the passages considered")
    if answer.abstained and answer.citations:
        problems.append("an abstention carries citations")
    short = answer.short
    if short is not None:
        article = articles.get(short.article_id)
        if short.start >= short.end or article is None or article.text[short.start : short.end] != short.text:
            problems.append(f"short answer {short.text!r} is not the article text at {short.start}:{short.end}")
        if not any(c.article_id == short.article_id and c.start <= short.start and short.end <= c.end for c in answer.citations):
            problems.append(f"short answer {short.text!r} lies outside every cited quote")
    return problems

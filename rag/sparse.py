"""The sparse index: BM25 (bm25s) over stemmed, accent-folded words.

Readers type "Vucic" and "Turkiye" where the articles print "Vučić" and
"Türkiye", so both sides are folded to ASCII letters before stemming.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import StoreError
from .sentences import mask_footnotes
from .words import QUESTION_STOPWORDS

FOLDER = "bm25"
# Names what the tokenization does; the manifest records it so that an index
# built with other stop words or folding is rebuilt instead of mismatching.
TOKENIZER_ID = "fold-nfkd+snowball-en+stop-en-questions-v3"
# Letters that NFKD does not take apart into base + accent (lower case: fold
# applies them after lower-casing).
_EXTRA_FOLDS = str.maketrans({"ı": "i", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "ł": "l"})


def fold(text: str) -> str:
    """Lower-case ASCII-ish text: accents dropped, footnote markers blanked."""
    text = mask_footnotes(text)
    if text.isascii():
        # Most texts: nothing to translate, decompose or drop (the steps below
        # leave ASCII as it is), and they were two thirds of folding's time.
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    # Drop the combining marks by the distinct characters, not one by one:
    # a text has few distinct characters, and this runs on every chunk and
    # sentence of the corpus.
    marks = {ord(ch): None for ch in set(decomposed) if unicodedata.combining(ch)}
    # The letters NFKD keeps whole are folded last, once lower-cased: folded
    # first, a capital of one without its own entry ("Æ", "Œ", "ẞ", "Ǣ" that
    # NFKD makes "Æ") became its lower-case letter and stayed, so "Æthelred"
    # and "æthelred" were different words.
    return (decomposed.translate(marks) if marks else decomposed).lower().translate(_EXTRA_FOLDS)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> list[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return sorted(set(STOPWORDS_EN) | QUESTION_STOPWORDS)  # Lucene's 33 words and rag/words.py's


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default token pattern


@lru_cache(maxsize=1)
def _stopword_set() -> frozenset[str]:
    return frozenset(stopwords())


def tokenize(texts: list[str]) -> list[list[str]]:
    """bm25s.tokenize(fold(texts), stopwords, stemmer, return_ids=False), word
    for word, without its overhead per call: it makes three progress bars and
    a stop-word set each time (0.2 ms), and the answer stage calls this for a
    few short texts about ten times a question. The index build, BM25 queries
    and the answer stage all read words through here, so they agree;
    tests/test_tokenize.py holds it to bm25s's output on the whole corpus."""
    stop = _stopword_set()
    docs = [[w for w in _TOKEN.findall(fold(t).lower()) if w not in stop] for t in texts]
    stem = _stems(dict.fromkeys(w for doc in docs for w in doc))
    return [[stem[w] for w in doc] for doc in docs]


# Each word's stem, kept: a new sentence's words are mostly known ones, and
# stemming them again was a fifth of tokenizing it. Bounded (a word and its
# stem are some 100 bytes); past the bound it starts over, and a call with more
# new words than the bound (a build's whole vocabulary) is not kept at all.
_STEMS: dict[str, str] = {}
_STEMS_MAX = 200_000


def _stems(words: Iterable[str]) -> dict[str, str]:
    """word -> its Snowball stem, for each of `words` (distinct)."""
    memo = _STEMS
    found = {w: memo.get(w) for w in words}
    missing = [w for w, s in found.items() if s is None]
    if missing:
        stems = _stemmer().stemWords(missing)
        found.update(zip(missing, stems))
        if len(missing) <= _STEMS_MAX:
            if len(memo) + len(missing) > _STEMS_MAX:
                memo.clear()
            memo.update(zip(missing, stems))
    return found


# The answer stage asks for the words of the same short texts (the question,
# a name, a cited sentence with the text before it) in several of its steps,
# and for the same sentences again in later questions: folding and stemming
# them each time was a tenth of its time. Bounded: texts are a few hundred
# characters, so the memo stays under a few MB.
@lru_cache(maxsize=8192)
def word_set(text: str) -> frozenset[str]:
    """set(tokenize([text])[0])."""
    stop = _stopword_set()
    words = {w for w in _TOKEN.findall(fold(text).lower()) if w not in stop}
    return frozenset(_stems(words).values())


def folded_words(text: str) -> frozenset[str]:
    """The words of `text` as BM25 reads them, before stop words and stemming
    ("ingenuity", not "ingenu"): for comparing spellings, which stemming can
    part ("Ingenuty" stems to "ingenuti")."""
    return frozenset(_TOKEN.findall(fold(text)))  # fold() lower-cases


# From this many chunks on, top-k is MaxScore's (rag/topk.py), the same top
# k as bm25s's scoring of every posting. Below it bm25s's own path is kept:
# at 100,000 synthetic chunks bm25s's p50 was lower (0.68 against 0.78 ms:
# MaxScore's bookkeeping costs more than the few postings of a small index),
# its p95 higher (3.9 against 1.5 ms), both far from mattering; at a million
# MaxScore's p95 was 9.9 ms against 47 (README, Scale).
PRUNED_MIN_DOCS = 200_000


class SparseIndex:
    def __init__(self, retriever, size: int) -> None:
        self._bm25 = retriever
        self.size = size
        self._pruned = None  # the MaxScore top-k over the same arrays, made on first use

    @classmethod
    def build(cls, texts: list[str]) -> "SparseIndex":
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever, len(texts))

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None, method: str = "auto"
    ) -> list[tuple[int, float]]:
        """Top `k` (row, BM25 score) with a score above zero, best first.

        `method`: "exhaustive" (bm25s scores every posting), "maxscore" (the
        same top k, skipping most postings of common words: rag/topk.py) or
        "auto" (MaxScore from PRUNED_MIN_DOCS chunks on)."""
        tokens = tokenize([query])
        if not tokens[0]:
            return []  # only stop words: BM25 has nothing to match
        mask = None
        if allowed is not None:
            mask = np.zeros(self.size, dtype=np.float32)
            mask[np.asarray(allowed, dtype=np.int64)] = 1.0
        k = min(k, self.size)
        if k <= 0:
            return []
        if method == "auto":
            method = "maxscore" if self.size >= PRUNED_MIN_DOCS else "exhaustive"
        if method == "maxscore" and self._bm25.nonoccurrence_array is None:  # BM25L/BM25+ score absent words too
            return self._maxscore().top_k(Counter(self._bm25.get_tokens_ids(tokens[0])), k, mask)
        if method != "exhaustive":
            raise ValueError(f"unknown BM25 method {method!r}: use auto, maxscore or exhaustive")
        rows, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, weight_mask=mask, n_threads=0)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if s > 0]

    def _maxscore(self):
        if self._pruned is None:
            from .topk import MaxScoreTopK

            s = self._bm25.scores
            self._pruned = MaxScoreTopK(s["data"], s["indices"], s["indptr"], s["num_docs"])
        return self._pruned

    def knows(self, word: str) -> bool:
        """Whether `word` (after folding and stemming) occurs anywhere in the index.

        A stop word has no tokens and counts as known: it names nothing."""
        return all(t in self._bm25.vocab_dict for t in word_set(word))

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder / FOLDER), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int, mmap: bool = False) -> "SparseIndex":
        import bm25s

        try:
            retriever = bm25s.BM25.load(str(folder / FOLDER), mmap=mmap, show_progress=False)
        except Exception as e:  # bm25s raises json, numpy and OS errors alike on damaged files
            raise StoreError(f"{folder / FOLDER} cannot be read ({type(e).__name__}: {e})") from e
        return cls(retriever, size)

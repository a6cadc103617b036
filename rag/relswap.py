""""Relation swap" near misses, for fitting the answerability calibration.

The evaluation sets' hand-written near misses keep the question's subject and
ask for another detail of it, one the article does not give ("When was the
tower demolished?" where the article says when it was built). The trainer's
other generated near misses swap a name or number (squad.near_misses), which
mostly moves the question off its passages. This module makes the missing
kind from an answerable training question:

- the relation word: a lower-case content word of the question (not a stop
  word, not part of a capitalised name, letters only) whose stem the answer
  sentence also holds (a sentence of the article holding a gold answer), so
  it is a word the answer depends on; the rarest in the article first (the
  subject's words recur through an article, the asked relation less), ties
  by a seeded hash;
- its replacement: a near word in the installed MiniLM's input word-piece
  embedding table (read as rag/reader.py reads it), whole-word pieces only,
  among the word's nearest by cosine, with another stem (and no shared
  four-letter start: "built" / "build", "mobilised" / "mobilized"), not a
  stop word, and whose stem occurs nowhere in the question's article (so the
  article cannot answer the new question in the new word). The nearest
  neighbours are mostly synonyms, which would make answerable paraphrases
  ("built" -> "constructed"), so a neighbour at cosine >= MAX_COSINE is
  passed over; below MIN_COSINE the words stop being related at all.

Tried and left out of the shipped fit (README "Tried for issue 11", branch
`relswap`): the band still holds as many synonyms as other details, so about
half the swaps are answerable paraphrases; `python -m rag.train_calibration
--relation-swaps` fits with them.

One swap a question at most; deterministic (sorted, seeded, ties by
vocabulary order). numpy, safetensors and tokenizers (installed with the
product) only.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .questions import question_names
from .sparse import _stemmer, _stopword_set, tokenize, word_set

# The cosine band a replacement is taken from (MiniLM's input word-piece
# table). Above about 0.45 the neighbours are mostly the same meaning or
# another form ("died" -> "killed" 0.58, "valuable" -> "useful" 0.49,
# "built" -> "constructed" 0.56); in the band they mix related details
# ("cartridge" -> "printer" 0.40, "died" -> "survived" 0.40, "traditional"
# -> "modern" 0.37) with looser synonyms; below MIN_COSINE they are mostly
# unrelated words. Read off the training articles' neighbour lists.
MAX_COSINE = 0.45
MIN_COSINE = 0.3
SEARCH = 40  # neighbours looked at per word
SEED = "relswap/1"
_WORD = re.compile(r"(?<![\w'’-])[a-z]{3,}(?![\w'’-])")  # lower case: a capital may start a name
_LETTERS = re.compile(r"^[a-z]{3,}$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (the neighbours' cache)
class WordTable:
    """Whole-word vocabulary pieces and their unit-length input embeddings."""

    words: tuple[str, ...]
    vectors: np.ndarray  # float32 (len(words), dim), unit rows
    row: dict[str, int]

    @classmethod
    def from_matrix(cls, vocab: dict[str, int], matrix: np.ndarray) -> "WordTable":
        pieces = sorted((i, w) for w, i in vocab.items() if i < len(matrix) and _LETTERS.match(w))
        vectors = matrix[[i for i, _ in pieces]].astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        words = tuple(w for _, w in pieces)
        return cls(words, vectors, {w: j for j, w in enumerate(words)})

    @classmethod
    def load(cls, folder: Path | None = None) -> "WordTable":
        """The installed embedding model's table (rag.reader.embedding_matrix)."""
        from tokenizers import Tokenizer

        from .embedding import resolve_model
        from .reader import EMBEDDING_MODEL, embedding_matrix

        folder = folder or resolve_model(EMBEDDING_MODEL)
        return cls.from_matrix(Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab(), embedding_matrix(folder))

    def neighbours(self, word: str) -> list[tuple[str, float]]:
        """The SEARCH nearest other words by cosine, nearest first (ties by vocabulary order)."""
        i = self.row.get(word)
        if i is None:
            return []
        return [(self.words[j], c) for j, c in _nearest(self, i) if j != i]


@lru_cache(maxsize=65536)
def _nearest(table: WordTable, i: int) -> tuple[tuple[int, float], ...]:
    cos = table.vectors @ table.vectors[i]
    order = np.argsort(-cos, kind="stable")[: SEARCH + 1]
    return tuple((int(j), float(cos[j])) for j in order)


_LOCK = threading.Lock()
_TABLE: list[WordTable] = []


def word_table() -> WordTable:
    with _LOCK:
        if not _TABLE:
            _TABLE.append(WordTable.load())
        return _TABLE[0]


def _stem(word: str) -> str:
    return _stemmer().stemWord(word.lower())


@dataclass(frozen=True)
class Swap:
    """One relation swap: the new question and what was changed."""

    question: str
    old: str
    new: str
    cosine: float


def _related_form(a: str, b: str) -> bool:
    """Another form or spelling of the same word, which the stemmer keeps apart."""
    sa, sb = _stem(a), _stem(b)
    return sa == sb or a[:4] == b[:4] or sa.startswith(sb) or sb.startswith(sa)


def replacement(word: str, table: WordTable, article_stems: frozenset[str], avoid: frozenset[str]) -> tuple[str, float] | None:
    """The nearest word in [MIN_COSINE, MAX_COSINE) whose stem is not in the article (module docstring)."""
    stop = _stopword_set()
    for cand, c in table.neighbours(word):
        if c >= MAX_COSINE:
            continue
        if c < MIN_COSINE:
            return None
        s = _stem(cand)
        if cand in stop or s in article_stems or s in avoid or _related_form(word, cand):
            continue
        return cand, c
    return None


@dataclass(frozen=True)
class ArticleWords:
    """What the swap reads of an article, computed once for all its questions."""

    stems: frozenset[str]  # every stem of the article (rag.sparse.word_set)
    counts: Counter  # how often each stem occurs
    sentences: tuple[str, ...]  # normalised as rag.squad.contains_answer compares them, space-padded
    sentence_stems: tuple[frozenset[str], ...]

    @classmethod
    def of(cls, text: str) -> "ArticleWords":
        from .squad import normalise

        sentences = [s for s in _SENTENCE.split(text) if s]
        return cls(word_set(text), Counter(tokenize([text])[0]), tuple(f" {normalise(s)} " for s in sentences),
                   tuple(word_set(s) for s in sentences))

    def answer_stems(self, answers: Sequence[str]) -> frozenset[str]:
        """The stems of the sentences that hold a gold answer (as rag.squad.contains_answer)."""
        from .squad import normalise

        wanted = [f" {n} " for n in (normalise(a) for a in answers) if n]
        return frozenset().union(*(w for s, w in zip(self.sentences, self.sentence_stems) if any(n in s for n in wanted)))


def relation_swap(question: str, answers: Sequence[str], article: ArticleWords | str,
                  table: WordTable | None = None) -> Swap | None:
    """The question with one relation word replaced (module docstring), or None."""
    table = table or word_table()
    article = ArticleWords.of(article) if isinstance(article, str) else article
    held = article.answer_stems(answers)
    if not held:
        return None
    stop = _stopword_set()
    name_words = {w.lower() for n in question_names(question) for w in n.words}
    avoid = frozenset(_stem(w) for w in re.findall(r"[A-Za-z]+", question))
    words = sorted({m.group(0) for m in _WORD.finditer(question)
                    if m.group(0) not in stop and m.group(0) not in name_words and _stem(m.group(0)) in held},
                   key=lambda w: (article.counts[_stem(w)], hashlib.sha256(f"{SEED}|{question}|{w}".encode()).hexdigest()))
    for word in words:
        found = replacement(word, table, article.stems, avoid)
        if found:
            new, c = found
            text = re.sub(rf"(?<![\w'’-]){re.escape(word)}(?![\w'’-])", new, question, count=1)
            return Swap(text, word, new, c)
    return None


KIND = "relation_swap"


def relation_swaps(questions: Iterable, articles_text: dict[str, str], table: WordTable | None = None) -> list:
    """A relation-swap near miss (kind KIND, no answers, id + "-relswap",
    `source`: the question it was made from) for each answerable
    SquadQuestion that has one."""
    table = table or word_table()
    per_article: dict[str, ArticleWords] = {}
    out = []
    for q in questions:
        if q.kind != "answerable":
            continue
        if q.article not in per_article:
            per_article[q.article] = ArticleWords.of(articles_text[q.article])
        swap = relation_swap(q.question, q.answers, per_article[q.article], table)
        if swap:
            out.append(replace(q, id=q.id + "-relswap", question=swap.question, answers=(), kind=KIND, source=q.question))
    return out

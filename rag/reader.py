"""A small reading model: does this sentence (with its neighbours) answer the question?

The answer stage's other signals compare the question with a sentence as a
whole (one cosine, one share of shared words), so a sentence that names every
thing the question names but gives another detail of it (the year a tower was
built, asked how tall it is) looks like an answer. The reader compares them
word piece by word piece instead:

- every word piece of the question and of the sentence is looked up in the
  installed MiniLM's frozen word-piece embedding matrix (no transformer pass:
  that would cost about 20 MFLOP a token, far over the answer stage's budget),
  projected by a learned 384 x 64 matrix and normalised;
- for each question piece, kernel pooling (K-NRM, Xiong et al. 2017) counts
  how many sentence pieces are near it at six levels of similarity, plus
  exact matches and the best similarity, once over the sentence and once over
  its two neighbours;
- two learned attention heads weight the question's pieces (from the piece,
  its left and right neighbour and its IDF: "tall" after "how" matters more
  than "is") and pool those per-piece features;
- a small MLP reads the pooled features and a few sentence-level ones
  (negation on one side only, the question's numbers found or not, the answer
  type asked and found, the question's wh-kind) and gives a logit.

The answerability hook (`ReaderHook.p_answerable`) runs the reader on the best
candidate sentences of the retrieved passages and combines the best logit
with the product's dense scores in a logistic regression; the threshold was
chosen on held-out training articles for a stated false-abstention rate.

Weights: rag/models/reader-v1.json (plain arrays) with reader-v1.manifest.json
(data hashes, features, metrics), made by `python -m rag.train_reader`. The
embedding matrix is read from the installed model package on first use (47
MB, memory-mapped), projected once (about 0.2 s), and kept for the process.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .weightfile import read_checked
from .errors import RagError

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_WEIGHTS = MODELS_DIR / "reader-v1.json"
FORMAT = "rag-reader/1"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_KEY = "embeddings.word_embeddings.weight"

# Pieces read at most: a SQuAD question has 13 pieces at the median and 30 at
# the 99th percentile; a sentence 31 and 90. Longer sentences lose their tail.
MAX_Q = 32
MAX_S = 80
MAX_W = 96  # the neighbours: the end of the sentence before, the start of the one after
# K-NRM's kernels: centres over the cosine range and one width; exact matches
# are counted apart (a piece id equal to the question's).
MUS = (0.9, 0.7, 0.5, 0.3, 0.1, -0.1)
SIGMA = 0.1
PER_PIECE = len(MUS) + 2  # kernels, exact count, best similarity
_MUS = np.asarray(MUS, dtype=np.float32)[:, None, None]
HEADS = 2
# The answerability hook reads this many of the product's best sentences.
CANDIDATES = 10

# Written for speed (each is searched in every new sentence and window the
# reader reads): the alternatives share their prefixes, and the number's
# look-behind comes after its first digit so that the search skips to digits.
# The same matches as the plain forms, `\b(not|no|never|none|neither|nor|
# nobody|nothing|without|cannot|unable|fail(?:s|ed)?|lack(?:s|ed)?)\b|n['’]t\b`
# and `(?<![\w.])\d[\d,.]*\d|(?<![\w.])\d`: tests/test_reader.py holds them equal.
_NEGATION = re.compile(
    r"\b(?:n(?:ot|o|ever|one|either|or|obody|othing)|without|cannot|unable|fail(?:s|ed)?|lack(?:s|ed)?)\b|n['’]t\b",
    re.I,
)
_NUMBER = re.compile(r"\d(?<![\w.]\d)(?:[\d,.]*\d)?")


class ReaderFileError(RagError):
    """The reader's weight file or manifest is missing, damaged or not a reader's."""


# --- text features shared by training and inference ---------------------------------------------


def numbers_in(text: str) -> set[str]:
    """The numbers a text writes (digits, commas dropped): "1,200" and "1200" are one."""
    return set(_numbers(text))  # a copy: the caller may change it


# The probability reads the numbers of the question and of the cited text, and
# the reader those of the question again, in every ask: kept (bounded).
@lru_cache(maxsize=8192)
def _numbers(text: str) -> frozenset[str]:
    return frozenset(m.group(0).replace(",", "").rstrip(".") for m in _NUMBER.finditer(text))


@lru_cache(maxsize=1)
def _wh_kinds() -> tuple[str, ...]:
    from .answerability import WH_KINDS

    return WH_KINDS


@lru_cache(maxsize=4096)
def _question_facts(question: str) -> tuple[bool, frozenset, str | None, str]:
    from .answerability import question_kind
    from .questions import answer_type

    return bool(_NEGATION.search(question)), _numbers(question), answer_type(question), question_kind(question)


@lru_cache(maxsize=50_000)
def _text_facts(text: str, kind: str | None) -> tuple[bool, frozenset, bool]:
    # Kept per text: a sentence comes back as a candidate and as a neighbour,
    # and the regular expressions were most of an ask's reader time.
    from .questions import has_answer_type

    return bool(_NEGATION.search(text)), _numbers(text), bool(kind) and has_answer_type(text, kind)


def extra_features(question: str, sentence: str, window: str) -> np.ndarray:
    """Sentence-level features besides the piece alignment (one float32 row).

    Negation: a question and a sentence that disagree on "not" are a reversed
    fact more often than an answer. Numbers: a number the question names that
    neither the sentence nor its neighbours hold is a detail they do not give.
    Answer type: the question asks for a date, a month or a quantity.
    """
    q_neg, q_numbers, kind, wh = _question_facts(question)
    s_neg, s_numbers, s_type = _text_facts(sentence, kind)
    w_neg, w_numbers, w_type = _text_facts(window, kind)
    found = s_numbers | w_numbers
    row = [
        float(q_neg), float(s_neg), float(w_neg), float(q_neg != s_neg),
        float(bool(q_numbers)), (len(q_numbers & found) / len(q_numbers)) if q_numbers else 1.0,
        float(bool(kind)), float(s_type), float(w_type),
        math.log1p(len(sentence.split())) / 4.0,
        *(float(wh == k) for k in _wh_kinds()),
    ]
    return np.asarray(row, dtype=np.float32)


def n_extra() -> int:
    return 10 + len(_wh_kinds())


# The fast path's words: after BERT's normalizer (lower case) and pre-tokenizer
# (white space, each punctuation mark alone), an ASCII text is runs of letters
# and digits between marks that become pieces the reader drops anyway.
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# ASCII control characters the normalizer deletes (joining the words around
# them): such a text takes the tokenizer's own path.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Other characters the normalizer and pre-tokenizer treat alike, by their
# Unicode properties, which are fixed for these long-assigned ones: white space
# (a word break) and punctuation (a mark of its own, dropped), both read as a
# space; accents (combining marks U+0300-U+036F after NFD) are stripped.
_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_MARKS = "¡§«¶·»¿‐‑‒–—―‖‗‘’‚‛“”„‟†‡•‣․‥…‧‰‱′″‴‵‶‷‸‹›※‼‽‾‿⁀⁁⁂⁃⁅⁆⁇⁈⁉"
_AS_SPACE = str.maketrans({ch: " " for ch in _SPACES + _MARKS})
_ACCENTS = re.compile("[\u0300-\u036f]+")
_NO_PIECES = np.zeros(0, dtype=np.int64)
_WORDS_MAX = 200_000  # the word memo starts over past this many words (a few MB)


class Pieces:
    """The MiniLM tokenizer's word pieces, without special tokens, and the
    pieces that are punctuation only (dropped: they align with everything)."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        vocab = self.tokenizer.get_vocab()
        self.size = max(vocab.values()) + 1
        drop = np.zeros(self.size, dtype=bool)
        for piece, i in vocab.items():
            core = piece[2:] if piece.startswith("##") else piece
            if not any(ch.isalnum() for ch in core) or (piece.startswith("[") and piece.endswith("]")):
                drop[i] = True
        self.drop = drop
        # The fast path (see _fast) holds only for this tokenizer's pipeline:
        # BERT's normalizer and pre-tokenizer, WordPiece applied word by word.
        config = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        self._fast_ok = (
            (config.get("normalizer") or {}).get("type") == "BertNormalizer"
            and (config["normalizer"].get("lowercase") is True)
            and (config.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
            and (config.get("model") or {}).get("type") == "WordPiece"
        )
        # Added tokens ("[CLS]", "[MASK]") are matched in the raw text before
        # normalising: a text holding one takes the tokenizer's own path.
        self._added = tuple(t["content"] for t in config.get("added_tokens", ()))
        # WordPiece reads a longer word as one unknown piece.
        self._longest = int((config.get("model") or {}).get("max_input_chars_per_word", 100))
        self._cache: dict[str, np.ndarray] = {}
        self._words: dict[str, tuple[int, ...]] = {}
        self._seed_words(vocab)

    def _seed_words(self, vocab: Mapping[str, int]) -> None:
        """The word memo starts with the vocabulary's whole words: WordPiece
        matches the longest known piece first, so a word that is a piece is
        that one piece (a new process need not tokenize "the" first)."""
        if self._fast_ok:
            self._words = {w: (() if self.drop[i] else (i,)) for w, i in vocab.items() if _ASCII_WORD.fullmatch(w)}

    def _encode(self, text: str) -> np.ndarray:
        """The kept pieces of one text, by the tokenizer itself."""
        a = np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        return a[~self.drop[a]] if len(a) else a

    def _word(self, word: str) -> tuple[int, ...]:
        """The kept pieces of one lower-case ASCII word, by the WordPiece
        model alone: the normalizer and pre-tokenizer leave such a word as it
        is, and skipping them (and the Encoding) costs a fifth of encode()."""
        drop = self.drop
        return tuple(t.id for t in self.tokenizer.model.tokenize(word) if not drop[t.id])

    def _fast(self, text: str) -> np.ndarray | None:
        """The kept pieces of a text without the tokenizer's per-call cost
        (about 80 us a sentence, most of a new question's reader time): for a
        text that is ASCII once its common spaces and marks are spaces and its
        accents stripped, its words are split here and each word's pieces are
        the tokenizer's, kept per word (WordPiece reads one word at a time, so
        they are the same pieces). None: a text this path does not cover."""
        if not self._fast_ok or _ASCII_CONTROL.search(text) or any(t in text for t in self._added):
            return None
        if not text.isascii():
            text = text.translate(_AS_SPACE)
            if not text.isascii():
                text = _ACCENTS.sub("", unicodedata.normalize("NFD", text))
                if not text.isascii():
                    return None  # a letter of another script, a symbol, a format character ...
        memo, ids = self._words, []
        for w in _ASCII_WORD.findall(text.lower()):
            a = memo.get(w)
            if a is None:
                a = self._word(w)
                if len(w) <= self._longest:  # a longer one is one unknown piece: not worth keeping
                    if len(memo) >= _WORDS_MAX:
                        memo.clear()  # the vocabulary's words come back one by one
                    memo[w] = a
            ids += a
        return np.array(ids, dtype=np.int64) if ids else _NO_PIECES

    def ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        # One text at a time: encode_batch hands a few dozen short texts to a
        # thread pool, which cost 10 ms an ask here on a busy machine against
        # under 1 ms this way. Sentences come back question after question (a
        # candidate is also its neighbour's neighbour), so their pieces are kept.
        out = []
        for text in texts:
            a = self._cache.get(text)
            if a is None:
                a = self._fast(text)
                if a is None:
                    a = self._encode(text)
                if len(self._cache) >= 50_000:
                    self._cache.clear()
                self._cache[text] = a
            out.append(a)
        return out


def window_ids(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The neighbours' pieces: the end of the sentence before and the start of the one after."""
    half = MAX_W // 2
    return np.concatenate([before[-half:], after[:half]])


# --- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderWeights:
    """The learned arrays (names as in the weight file)."""

    projection: np.ndarray  # (384, D)
    gate: np.ndarray  # (HEADS, 3, 384): the piece, its left, its right neighbour
    gate_idf: np.ndarray  # (HEADS,)
    idf: np.ndarray  # (vocabulary,) IDF of each piece in the training sentences
    w1: np.ndarray  # (hidden, HEADS * 2 * PER_PIECE + n_extra)
    b1: np.ndarray
    w2: np.ndarray  # (hidden,)
    b2: float
    combiner: dict  # the answerability logistic regression: features, mean, scale, weights, bias
    threshold: float  # abstain when p_answerable < threshold


ARRAY_SHAPES = ("projection", "gate", "gate_idf", "idf", "w1", "b1", "w2")


RETRAIN = "retrain with `python -m rag.train_reader`"


def load_weights(path: str | Path = DEFAULT_WEIGHTS) -> tuple[ReaderWeights, dict]:
    """The reader's weights and manifest, checked: format, the sha256 the
    manifest records, shapes and finiteness. Raises ReaderFileError, one line."""
    path = Path(path)
    data, manifest = read_checked(path, FORMAT, "reader", RETRAIN, ReaderFileError)
    try:
        arrays = {k: np.asarray(data[k], dtype=np.float32) for k in ARRAY_SHAPES}
        b2 = float(data["b2"])
        threshold = float(data["threshold"])
        combiner = data["combiner"]
        comb = {k: np.asarray(combiner[k], dtype=np.float64) for k in ("mean", "scale", "weights")}
        comb_bias = float(combiner["bias"])
        comb_features = tuple(combiner["features"])
    except (KeyError, TypeError, ValueError) as e:
        raise ReaderFileError(f"{path}: missing or malformed {e}: {RETRAIN}") from e
    p, g, w1 = arrays["projection"], arrays["gate"], arrays["w1"]
    hidden = arrays["b1"].shape[0] if arrays["b1"].ndim == 1 else -1
    expected = {
        "gate": (HEADS, 3, p.shape[0]), "gate_idf": (HEADS,), "w1": (hidden, HEADS * 2 * PER_PIECE + n_extra()),
        "b1": (hidden,), "w2": (hidden,),
    }
    bad = [k for k, shape in expected.items() if arrays[k].shape != shape]
    if p.ndim != 2 or arrays["idf"].ndim != 1 or bad:
        raise ReaderFileError(f"{path}: arrays {bad or ['projection/idf']} have the wrong shape for this code: {RETRAIN}")
    if comb_features != COMBINER_FEATURES or any(a.shape != (len(COMBINER_FEATURES),) for a in comb.values()):
        raise ReaderFileError(f"{path}: the combiner's features do not match this code ({list(comb_features)}): {RETRAIN}")
    finite = all(np.isfinite(a).all() for a in (*arrays.values(), *comb.values())) and all(
        math.isfinite(v) for v in (b2, threshold, comb_bias)
    )
    if not finite or (comb["scale"] <= 0).any() or not 0.0 <= threshold <= 1.0:
        raise ReaderFileError(f"{path}: non-finite numbers, a non-positive scale or a threshold outside [0, 1]: {RETRAIN}")
    w = ReaderWeights(
        p, g, arrays["gate_idf"], arrays["idf"], w1, arrays["b1"], arrays["w2"], b2,
        {"features": comb_features, **comb, "bias": comb_bias}, threshold,
    )
    del w1, g
    return w, manifest


def embedding_matrix(model_folder: Path) -> np.ndarray:
    """The model's word-piece embedding matrix, read from its safetensors file."""
    from safetensors import safe_open

    path = model_folder / "model.safetensors"
    if not path.is_file():
        raise ReaderFileError(f"the reader reads the word-piece embeddings from {path}, which does not exist: reinstall the model package")
    with safe_open(str(path), framework="np") as f:
        return f.get_tensor(EMBEDDING_KEY).astype(np.float32)


def _kernel_features(sim: np.ndarray, exact: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per question piece: log(1 + soft counts) at each kernel, log(1 + exact
    count), best similarity (0 when the text is empty). sim, exact: (Lq, Lt)."""
    if sim.shape[1] == 0:
        return np.zeros((sim.shape[0], PER_PIECE), dtype=np.float32)
    mus = np.asarray(MUS, dtype=np.float32)[:, None, None]
    k = np.exp(-((sim[None] - mus) ** 2) / (2 * SIGMA**2)).sum(axis=2)  # (kernels, Lq)
    out = np.concatenate([np.log1p(k).T, np.log1p(exact.sum(axis=1))[:, None], sim.max(axis=1)[:, None]], axis=1)
    return out.astype(np.float32) * mask[:, None]


class Reader:
    """The reading model, ready to score (question, sentence, neighbours) triples."""

    def __init__(self, weights: ReaderWeights, manifest: dict, matrix: np.ndarray, pieces: "Pieces | None") -> None:
        """`matrix`: the word-piece embedding matrix (vocabulary x 384) the
        weights were trained over; `pieces`: its tokenizer (None: only
        `logits_ids` can be called, as in unit tests)."""
        self.weights = weights
        self.manifest = manifest
        self.pieces = pieces
        if matrix.shape != (len(weights.idf), weights.projection.shape[0]):
            raise ReaderFileError(
                f"the reader was trained for another embedding matrix ({len(weights.idf)} pieces, "
                f"{weights.projection.shape[0]} dimensions; the model has {matrix.shape}): {RETRAIN}"
            )
        matrix = np.asarray(matrix, dtype=np.float32)
        projected = matrix @ weights.projection
        self.table = projected / np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-6)
        # The gate of a piece depends on its own and its neighbours' embedding
        # only, so each head's three dot products are tables over the vocabulary.
        self.gates = np.einsum("vd,hkd->hkv", matrix, weights.gate).astype(np.float32)

    @classmethod
    def from_folder(cls, weights: ReaderWeights, manifest: dict, model_folder: Path) -> "Reader":
        """Over the embedding matrix and tokenizer of the model in `model_folder`."""
        return cls(weights, manifest, embedding_matrix(model_folder), Pieces(model_folder))

    def _question(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The question's projected pieces and each head's attention over them."""
        q = q[:MAX_Q]
        w = self.weights
        left = np.concatenate([[-1], q[:-1]]) if len(q) else q
        right = np.concatenate([q[1:], [-1]]) if len(q) else q
        g = self.gates[:, 0, q] + w.gate_idf[:, None] * w.idf[q][None, :]
        g = g + np.where(left >= 0, self.gates[:, 1, np.maximum(left, 0)], 0.0)
        g = g + np.where(right >= 0, self.gates[:, 2, np.maximum(right, 0)], 0.0)
        g = g - g.max(axis=1, keepdims=True)
        a = np.exp(g)
        a /= a.sum(axis=1, keepdims=True)
        return q, a.astype(np.float32)

    def logits_ids(self, q: np.ndarray, sentences: Sequence[np.ndarray], windows: Sequence[np.ndarray],
                   extras: np.ndarray) -> np.ndarray:
        """Logits for one question against several (sentence, window) piece arrays."""
        w = self.weights
        if len(sentences) != len(windows) or extras.shape != (len(sentences), n_extra()):
            raise ValueError(f"{len(sentences)} sentences need as many windows and an extras array of "
                             f"shape ({len(sentences)}, {n_extra()}); got {len(windows)} and {extras.shape}")
        if not len(sentences):
            return np.zeros(0, dtype=np.float64)
        if not len(q):
            # A question with no word pieces ("???", "🙂"): nothing can match it.
            # Checked before _question, whose softmax over no pieces would fail.
            return np.full(len(sentences), -10.0)
        q, attention = self._question(q)
        n = len(sentences)
        per_text = self._per_piece(q, [t[:MAX_S] for t in sentences] + [t[:MAX_W] for t in windows])
        per_piece = np.concatenate([per_text[:n], per_text[n:]], axis=2)  # (n, Lq, 2 * PER_PIECE)
        pooled = np.einsum("hq,nqf->nhf", attention, per_piece).reshape(n, -1)  # heads x features
        x = np.concatenate([pooled.astype(np.float32), extras.astype(np.float32)], axis=1)
        h = np.tanh(x @ w.w1.T + w.b1)
        return (h @ w.w2 + w.b2).astype(np.float64)

    def _per_piece(self, q: np.ndarray, texts: Sequence[np.ndarray]) -> np.ndarray:
        """_kernel_features of the question against each text, (texts, Lq, PER_PIECE),
        computed in one pass over all the texts' pieces (a candidate's pieces
        are a segment; numpy's reduceat sums each)."""
        out = np.zeros((len(texts), len(q), PER_PIECE), dtype=np.float32)
        full = [i for i, t in enumerate(texts) if len(t)]
        if not full:
            return out
        ids = np.concatenate([texts[i] for i in full])
        starts = np.cumsum([0] + [len(texts[i]) for i in full[:-1]])
        sim = self.table[q] @ self.table[ids].T  # (Lq, all pieces)
        # The kernels exp(-(sim - mu)^2 / 2 sigma^2), worked in one buffer:
        # the same operations in the same order as the plain expression (so
        # the same numbers), without its four temporary arrays.
        kernels = np.subtract(sim[None], _MUS)
        np.square(kernels, out=kernels)
        np.negative(kernels, out=kernels)
        np.divide(kernels, 2 * SIGMA**2, out=kernels)
        np.exp(kernels, out=kernels)
        soft = np.add.reduceat(kernels, starts, axis=2)  # (K, Lq, full)
        exact = np.add.reduceat((q[:, None] == ids[None, :]).astype(np.float32), starts, axis=1)
        best = np.maximum.reduceat(sim, starts, axis=1)
        out[full] = np.concatenate(
            [np.log1p(soft).transpose(2, 1, 0), np.log1p(exact).T[:, :, None], best.T[:, :, None]], axis=2
        )
        return out

    def logits(self, question: str, sentences: Sequence[str], befores: Sequence[str], afters: Sequence[str]) -> np.ndarray:
        """Logits that each sentence (between its neighbours) answers `question`."""
        if self.pieces is None:
            raise ValueError("this Reader was made without a tokenizer: use Reader.from_folder, or logits_ids")
        n = len(sentences)
        if not (len(befores) == len(afters) == n):
            raise ValueError(f"{n} sentences need {n} sentences before and after; got {len(befores)} and {len(afters)}")
        ids = self.pieces.ids([question, *sentences, *befores, *afters])
        q, s, b, a = ids[0], ids[1 : 1 + n], ids[1 + n : 1 + 2 * n], ids[1 + 2 * n :]
        windows = [window_ids(b[i], a[i]) for i in range(n)]
        extras = np.stack([extra_features(question, sentences[i], befores[i] + " " + afters[i]) for i in range(n)]) \
            if n else np.zeros((0, n_extra()), dtype=np.float32)
        return self.logits_ids(q, s, windows, extras)


# --- the answerability hook ---------------------------------------------------------------------

# The combiner's inputs, in order: the reader's best logit over the candidates,
# its logit for the product's best sentence, the product's best sentence
# cosine, and the best passage cosine.
COMBINER_FEATURES = ("reader_max", "reader_top", "best_dense", "max_hit_dense")


@dataclass(frozen=True)
class ReaderVerdict:
    """What the hook returns: p that the passages answer, the reader's
    logit for each candidate it read (in the order given), and the verdict
    at the shipped threshold."""

    p_answerable: float
    logits: tuple[float, ...]
    abstain: bool


def neighbours(evidence: Sequence, articles: Mapping, among: Sequence | None = None) -> list[tuple[str, str, str]]:
    """(sentence, before, after) for each Evidence: the neighbours are the
    sentences of `among` (default: `evidence` itself; the scored sentences of
    the same passages) right before and after it (only white space between),
    or "" at a passage's edge."""
    by_article: dict[str, list] = {}
    for e in evidence if among is None else among:
        by_article.setdefault(e.article_id, []).append(e)
    starts: dict[str, list[int]] = {}
    for article_id, items in by_article.items():
        items.sort(key=lambda e: e.start)
        starts[article_id] = [e.start for e in items]
    out = []
    for e in evidence:
        text = articles[e.article_id].text
        items = by_article.get(e.article_id, [])
        # Binary search, not a scan: this runs for each candidate of every ask.
        i = bisect.bisect_left(starts.get(e.article_id, []), e.start)
        while i < len(items) and items[i].end != e.end and items[i].start == e.start:
            i += 1
        if i >= len(items) or items[i].start != e.start:
            items = [*items[:i], e, *items[i:]]  # not among the others: its own place
        before = items[i - 1] if i > 0 and not text[items[i - 1].end : e.start].strip() else None
        after = items[i + 1] if i + 1 < len(items) and not text[e.end : items[i + 1].start].strip() else None
        out.append((
            text[e.start : e.end],
            text[before.start : before.end] if before else "",
            text[after.start : after.end] if after else "",
        ))
    return out


def combiner_row(reader_logits: np.ndarray, evidence: Sequence, hits: Sequence) -> np.ndarray:
    return np.asarray([
        float(np.max(reader_logits)) if len(reader_logits) else -10.0,
        float(reader_logits[0]) if len(reader_logits) else -10.0,
        float(evidence[0].dense) if evidence else 0.0,
        max((h.dense_score or 0.0 for h in hits), default=0.0),
    ], dtype=np.float64)


def combine(weights: ReaderWeights, row: np.ndarray) -> float:
    c = weights.combiner
    z = float(((row - c["mean"]) / c["scale"]) @ c["weights"] + c["bias"])
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


class ReaderHook:
    """The answer stage's hook: `p_answerable(question, evidence, hits, articles)`.

    `evidence` is the product's scored sentences of the retrieved passages,
    best first (SentenceScorer.score(...).items); the reader reads the first
    CANDIDATES of them with their neighbours among the others."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def p_answerable(self, question: str, evidence: Sequence, hits: Sequence, articles: Mapping) -> ReaderVerdict:
        candidates = list(evidence[:CANDIDATES])
        if not candidates:
            return ReaderVerdict(0.0, (), True)
        triples = neighbours(candidates, articles, among=evidence)
        logits = self.reader.logits(question, *map(list, zip(*triples)))
        p = combine(self.reader.weights, combiner_row(logits, candidates, hits))
        return ReaderVerdict(p, tuple(float(v) for v in logits), p < self.reader.weights.threshold)


_LOCK = threading.Lock()
_SHIPPED: dict[str, Reader] = {}


def load_reader(path: str | Path = DEFAULT_WEIGHTS, model: str = EMBEDDING_MODEL) -> Reader:
    """The reader with the weights at `path` over the installed model's
    embedding matrix; the shipped one is loaded once per process."""
    from .embedding import resolve_model

    # Keyed by the path as given: resolving it touched the file system on every ask.
    key = f"{path}|{model}"
    found = _SHIPPED.get(key)
    if found is not None:
        return found
    with _LOCK:
        if key not in _SHIPPED:
            weights, manifest = load_weights(path)
            _SHIPPED[key] = Reader.from_folder(weights, manifest, resolve_model(model))
        return _SHIPPED[key]


def shipped_hook() -> ReaderHook:
    return ReaderHook(load_reader())


def gate(question: str, answer, evidence: Sequence, hits: Sequence, articles: Mapping, notes: Sequence[str] = ()):
    """The answer as it stands, or an abstention when the reader judges that
    the passages do not answer (p_answerable below the shipped threshold).
    An abstention stays one: the gate only adds abstentions."""
    import dataclasses

    from .answer import abstain

    if answer.abstained:
        return answer
    verdict = shipped_hook().p_answerable(question, evidence, hits, articles)
    if verdict.abstain:
        return dataclasses.replace(abstain(hits, notes=notes), answerable=verdict.p_answerable)
    return answer if answer.answerable is not None else dataclasses.replace(answer, answerable=verdict.p_answerable)

"""The default answer's probability that the passages answer the question.

The answer rules (rag/answer.py) decide yes or no; this gives every answer
they make, abstentions included, `Answer.answerable`: a logistic regression
over signals the answer stage already has at hand, fitted on SQuAD training
articles (`python -m rag.train_calibration`):

- the reading model's logits (rag/reader.py) for the best few sentences: the
  best of them, the product's best sentence's, the best cited one's, and how
  far the best stands above the others;
- the rules' own: the best sentence's score, cosine and word share, the best
  passage's cosine, how far the best sentence's cosine stands above the
  others', and which rule abstained (a name the corpus never uses, no date or
  number of the kind asked for, a score under the threshold);
- whether the question asks for a date or number, and the shares of its
  names and numbers that the cited text holds.

Relative signals (a gap over the other candidates) are there for questions
that are paraphrased: they share few words with their answer, so every
absolute score is lower, while the answer still stands out of its passages.

Weights: rag/models/calibration-v1.json (plain JSON: features, mean, scale,
weights, bias, the threshold, the doubt level) with calibration-v1.manifest.json
(data hashes, held-out metrics), checked on load by rag/weightfile.py. numpy only.

Two levels of p: under `threshold` an answer abstains (AnswerSettings.gate);
under `doubt` it is given with DOUBT_NOTE (AnswerSettings.doubt), so that a
reader sees which answers to check before relying on them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .answer import MISSING_TYPE_PREFIX, UNKNOWN_NAMES_PREFIX, abstain
from .errors import RagError
from .evidence import Evidence
from .questions import answer_type, question_names
from .reader import load_reader, neighbours, numbers_in
from .sparse import word_set
from .types import Answer, Article, Hit
from .weightfile import read_checked

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_WEIGHTS = MODELS_DIR / "calibration-v1.json"
FORMAT = "rag-calibration/1"
RETRAIN = "retrain with `python -m rag.train_calibration`"

# Sentences the reader reads per question: the fit leans on the logit of the
# rules' best sentence and of the cited ones, and the held-out mean AUC was
# the same with 3 as with 6 (0.9146, 0.9145) while each sentence read costs
# time in every ask. Fewer lost nothing in AUC either (2026-12-03: 0.9179 with
# 1, 0.9187 with 2, 0.9184 with 3) and 1 saved 0.4 ms of a new question's ask,
# but the doubt level then caught fewer unanswerable answers (held out, near
# misses 0.51 and out of corpus 0.74 against 0.56 and 0.79 with 3).
CANDIDATES = 3

# Every signal this module computes, in a fixed order; a weight file names
# the ones it uses (the trainer chooses them on held-out articles).
FEATURES: tuple[str, ...] = (
    "reader_max", "reader_top", "reader_cited", "reader_gap",
    "best_score", "best_dense", "best_lexical", "max_hit_dense", "dense_gap",
    "unknown_names", "type_missing", "below_threshold", "rules_abstained",
    "type_asked", "name_cover", "number_cover", "predicate_cover",
)


class CalibrationFileError(RagError):
    """The calibration weight file or its manifest is missing, damaged or not one."""


@dataclass(frozen=True)
class Calibration:
    """p = sigmoid(((x - mean) / scale) @ weights + bias) over `features`;
    `threshold`: the p below which an answer may abstain; `doubt` (at least
    `threshold`): the p below which an answer given carries DOUBT_NOTE (see README)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    doubt: float

    def probability(self, signals: Mapping[str, float]) -> float:
        x = np.asarray([signals[f] for f in self.features], dtype=np.float64)
        z = float(((x - self.mean) / self.scale) @ self.weights + self.bias)
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def load_calibration(path: str | Path = DEFAULT_WEIGHTS) -> tuple[Calibration, dict]:
    """The weights and manifest at `path`, checked (format, sha256, feature
    names, shapes, finite numbers); else CalibrationFileError, one line."""
    path = Path(path)
    data, manifest = read_checked(path, FORMAT, "calibration", RETRAIN, CalibrationFileError)
    try:
        features = tuple(str(f) for f in data["features"])
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
        if any(isinstance(data[k], bool) or not isinstance(data[k], (int, float)) for k in ("bias", "threshold", "doubt")):
            raise TypeError("'bias', 'threshold' and 'doubt' must be numbers")  # float() took true as 1 and "0.5" as 0.5
        bias, threshold, doubt = float(data["bias"]), float(data["threshold"]), float(data["doubt"])
    except (KeyError, TypeError, ValueError) as e:
        raise CalibrationFileError(f"{path}: missing or malformed {e}: {RETRAIN}") from e
    unknown = [f for f in features if f not in FEATURES]
    if unknown or not features:
        raise CalibrationFileError(f"{path}: features {unknown or '(none)'} are not computed by this code: {RETRAIN}")
    if any(a.shape != (len(features),) for a in arrays):
        raise CalibrationFileError(f"{path}: mean, scale and weights need {len(features)} numbers each: {RETRAIN}")
    mean, scale, weights = arrays
    if not all(np.isfinite(a).all() for a in arrays) or not all(map(math.isfinite, (bias, threshold, doubt))) \
            or (scale <= 0).any() or not 0.0 <= threshold <= 1.0:
        raise CalibrationFileError(f"{path}: non-finite numbers, a non-positive scale or a threshold outside [0, 1]: {RETRAIN}")
    if not threshold <= doubt <= 1.0:
        raise CalibrationFileError(f"{path}: the doubt level {doubt} must lie between the threshold {threshold} and 1: {RETRAIN}")
    return Calibration(features, mean, scale, weights, bias, threshold, doubt), manifest


# --- the signals -----------------------------------------------------------------------------------


def reader_logits(reader, question: str, evidence: Sequence[Evidence], articles: Mapping[str, Article],
                  candidates: int = CANDIDATES) -> np.ndarray:
    """The reading model's logit for each of the first `candidates` sentences
    (with their neighbours among all of `evidence`)."""
    first = list(evidence[:candidates])
    if not first:
        return np.zeros(0)
    triples = neighbours(first, articles, among=evidence)
    return reader.logits(question, *map(list, zip(*triples)))


def _cited(e: Evidence, answer: Answer) -> bool:
    return any(c.article_id == e.article_id and c.start <= e.start and e.end <= c.end for c in answer.citations)


# How far before a quote its subject may have been named ("Nasser ... He died in 1970").
CONTEXT_CHARS = 200


def _answer_text(answer: Answer, evidence: Sequence[Evidence], articles: Mapping[str, Article],
                 context: int = CONTEXT_CHARS) -> str:
    """The text an answer rests on: its quotes, or for an abstention the best
    sentence (so that the signals below mean the same whichever rule
    abstained), each with the `context` characters before it."""
    spans = [(c.article_id, c.start, c.end) for c in answer.citations]
    if not spans and evidence:
        spans = [(evidence[0].article_id, evidence[0].start, evidence[0].end)]
    return " ".join(articles[a].text[max(0, s - context) : e] for a, s, e in spans)


def _cover(wanted: set[str], found: set[str]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 1.0


def signals(
    question: str,
    answer: Answer,
    evidence: Sequence[Evidence],
    hits: Sequence[Hit],
    articles: Mapping[str, Article],
    logits: np.ndarray,
    abstain_below: float,
    knows_all: bool,
) -> dict[str, float]:
    """Every feature of FEATURES for one answer of the rules. `logits`: the
    reader's for the first len(logits) of `evidence`; `knows_all`: the corpus
    uses every name of the question (the unknown-name rule did not fire)."""
    # Plain floats: numpy's reductions cost more than the sums over three numbers.
    values = [float(v) for v in logits]
    n = len(values)
    reader_max = max(values) if n else -10.0
    reader_top = values[0] if n else -10.0
    cited = [v for v, e in zip(values, evidence) if _cited(e, answer)]
    dense = [e.dense for e in evidence[:CANDIDATES]]
    best = evidence[0] if evidence else None
    type_missing = answer.abstained and answer.text.startswith(MISSING_TYPE_PREFIX)
    text = _answer_text(answer, evidence, articles)
    q_words, text_words = word_set(question), word_set(text)
    name_words = word_set(" ".join(w for n in question_names(question) for w in n.words))
    q_numbers = numbers_in(question)
    return {
        "reader_max": reader_max,
        "reader_top": reader_top,
        "reader_cited": max(cited) if cited else reader_top,
        # How far the best stands above the rest: a paraphrased question lowers every logit alike.
        "reader_gap": reader_max - statistics.median(values) if n > 1 else 0.0,
        "best_score": best.score if best else 0.0,
        "best_dense": best.dense if best else 0.0,
        "best_lexical": best.lexical if best else 0.0,
        "max_hit_dense": max((h.dense_score or 0.0 for h in hits), default=0.0),
        "dense_gap": (best.dense - sum(dense[1:]) / (len(dense) - 1)) if len(dense) > 1 else 0.0,
        "unknown_names": float(not knows_all),
        "type_missing": float(type_missing),
        "below_threshold": float(best is None or best.score < abstain_below),
        "rules_abstained": float(answer.abstained),
        "type_asked": float(answer_type(question) is not None),
        # Shares of the question's name words, of its numbers, and of its other
        # words (what it asks about them: "founded", "died", "each year") that
        # the answer's text holds. A near miss names every thing the question
        # names and lacks what it asks: "Who founded Houston Baptist
        # University?" against "Houston Baptist University, affiliated with
        # the Baptist General Convention of Texas, offers bachelor's degrees".
        "name_cover": _cover(name_words, text_words),
        "number_cover": _cover(q_numbers, numbers_in(text)),
        "predicate_cover": _cover(q_words - name_words - q_numbers, text_words),
    }


def knows_every_name(answer: Answer) -> bool:
    """Whether the unknown-name rule let the question through (its abstention says which names)."""
    return not (answer.abstained and answer.text.startswith(UNKNOWN_NAMES_PREFIX))


# --- the shipped model -----------------------------------------------------------------------------

_LOCK = threading.Lock()
_SHIPPED: dict[str, Calibration] = {}


def shipped_calibration(path: str | Path = DEFAULT_WEIGHTS) -> Calibration:
    """The calibration at `path`, loaded once per process (keyed by the path as
    given: resolving it touched the file system on every ask)."""
    key = str(path)
    found = _SHIPPED.get(key)
    if found is not None:
        return found
    with _LOCK:
        if key not in _SHIPPED:
            _SHIPPED[key] = load_calibration(path)[0]
        return _SHIPPED[key]


def probability(
    question: str,
    answer: Answer,
    evidence: Sequence[Evidence],
    hits: Sequence[Hit],
    articles: Mapping[str, Article],
    abstain_below: float,
    calibration: Calibration | None = None,
    reader=None,
) -> float:
    """p that the passages answer `question`, for the rules' `answer`
    (default: the shipped calibration and reading model)."""
    cal = calibration or shipped_calibration()
    logits = reader_logits(reader or load_reader(), question, evidence, articles)
    return cal.probability(signals(question, answer, evidence, hits, articles, logits, abstain_below,
                                   knows_every_name(answer)))


# Said of an answer given with a probability under the calibration's doubt
# level: on held-out SQuAD training articles (README "Answers given with a doubt note") such
# answers were mostly to questions the passages do not answer, while one
# answerable question in twenty was below it.
DOUBT_NOTE = ("The passages may not answer this question (probability {p:.2f} that they do): "
              "check the quotes before relying on the answer.")


def doubt_note(p: float) -> str:
    return DOUBT_NOTE.format(p=p)


# The note as doubt_note writes it, whatever p: `rag eval` counts the answers
# that carry it, and a prefix cut at "{" would match every note once the
# template starts with its number.
_DOUBT_NOTE_RE = re.compile(re.escape(DOUBT_NOTE).replace(re.escape("{p:.2f}"), r"\d\.\d\d"))


def is_doubt_note(note: str) -> bool:
    """Whether a note of an answer is the doubt note."""
    return _DOUBT_NOTE_RE.fullmatch(note) is not None


def doubt_first(notes: Sequence[str]) -> tuple[list[str], list[str]]:
    """An answer's notes as (the doubt note, the others), in their order: the
    CLI and the app show the doubt before the short answer it bears on, the
    others after the answer."""
    doubts = [n for n in notes if is_doubt_note(n)]
    return doubts, [n for n in notes if n not in doubts]


def with_probability(question: str, answer: Answer, evidence: Sequence[Evidence], hits: Sequence[Hit],
                     articles: Mapping[str, Article], settings, notes: Sequence[str] = (),
                     calibration: Calibration | None = None, reader=None) -> Answer:
    """`answer` with `answerable` set; with `settings.gate` (AnswerSettings),
    an abstention in its place when p falls below the calibration's
    threshold; with `settings.doubt`, an answer given under its doubt level
    carries doubt_note(p)."""
    cal = calibration or shipped_calibration()
    p = probability(question, answer, evidence, hits, articles, settings.abstain_below, cal, reader)
    if settings.gate and not answer.abstained and p < cal.threshold:
        return dataclasses.replace(abstain(hits, notes=notes), answerable=p)
    if settings.doubt and not answer.abstained and p < cal.doubt:
        return dataclasses.replace(answer, answerable=p, notes=[*answer.notes, doubt_note(p)])
    return dataclasses.replace(answer, answerable=p)

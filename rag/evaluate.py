"""How well retrieval and answers do on a question set.

The metrics are pure functions over article ids, ranks and strings; the
runner puts every question through `retrieve` and `ask` and keeps one row per
question, from which the overall and per-article figures are computed.

Metric names (the keys of `EvalResult.metrics` and of `rag eval --json`):

- hit@1, hit@3, hit@5: share of answerable questions with a passage from a
  gold article among the first 1, 3, 5 retrieved; mrr: mean reciprocal rank
  of the first such passage (0 when none is retrieved).
- fact_recall: share of the answerable questions' fact groups that the
  answer text covers (an abstention covers none).
- citation_validity: share of all citations whose quote equals the article
  text at its offsets.
- citation_precision: share of the answerable questions' citations that
  point to a gold article (answered unanswerable questions are counted by
  abstention_accuracy, not here).
- abstention_accuracy: share of unanswerable questions that abstained.
- false_abstention_rate: share of answerable questions that abstained.
- latency_p50_ms, latency_p95_ms: of `ask`, with the query cache off.

For questions with gold short answers (`answers`, SQuAD style):

- passage_answer@1, @3, @5: share with a gold answer text (white space
  folded) inside one of the first 1, 3, 5 retrieved passages.
- answer_contains_gold: share whose answer text holds a gold answer
  (white space folded; an abstention holds none).
- answer_words: mean length in words of the answers given (not abstained)
  to answerable questions, citation markers left out.
- short_em, short_f1: exact match and token F1 of `Answer.short` against the
  gold answers with SQuAD's normalisation, the best over the golds; a
  question without a short answer (or abstained) scores 0.

Abstention by kind of unanswerable question: abstention_out_of_corpus,
abstention_near_miss, abstention_off_topic (see rag.evalset).
When answers carry a probability of being answerable (`Answer.answerable`):
answerability_auc (ROC AUC, answerable against every unanswerable question)
and answerability_auc_near_miss (against the near-miss ones only).

A metric whose denominator is empty (a file with no unanswerable questions,
answers with no citations) is None.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import string
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EvalError, QueryError, UnknownArticleError
from .evalset import ANSWERABLE, UNANSWERABLE_KINDS, Question
from .settings import ANSWER_MODES, MODES

HIT_DEPTHS = (1, 3, 5)
ABSTENTION_KINDS = tuple(k for k in UNANSWERABLE_KINDS if k != "unanswerable")
METRICS = (
    "hit@1",
    "hit@3",
    "hit@5",
    "mrr",
    *(f"passage_answer@{k}" for k in HIT_DEPTHS),
    "fact_recall",
    "answer_contains_gold",
    "answer_words",
    "short_em",
    "short_f1",
    "citation_validity",
    "citation_precision",
    "abstention_accuracy",
    *(f"abstention_{kind}" for kind in ABSTENTION_KINDS),
    "false_abstention_rate",
    "answerability_auc",
    "answerability_auc_near_miss",
    "latency_p50_ms",
    "latency_p95_ms",
)
RETRIEVAL_METRICS = ("hit@1", "hit@3", "hit@5", "mrr")
PASSAGE_METRICS = tuple(f"passage_answer@{k}" for k in HIT_DEPTHS)
UNANSWERABLE = "(unanswerable)"  # the per-article group of questions no article answers
TEXTS = ("repaired", "raw")

# --- matching facts ------------------------------------------------------------

# Every character of Unicode category Pd (dash punctuation), plus the minus
# sign (Sm) that extractions use for dashes; tests check the list against
# unicodedata. Authors and extractions write "Belgrade–Sarajevo",
# "Belgrade - Sarajevo" and "Belgrade-Sarajevo" for the same thing.
DASHES = (
    "\u002d\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2e17\u2e1a\u2e3a\u2e3b"
    "\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead\u2212"
)
_DASH = re.compile(f"\\s*[{re.escape(DASHES)}]\\s*")
_SPACE = re.compile(r"\s+")


def normalise_for_match(text: str) -> str:
    """Case-folded, every dash read as "-" with the spaces around it dropped,
    and other runs of white space (line breaks, no-break spaces) as one space."""
    return _SPACE.sub(" ", _DASH.sub("-", text.casefold())).strip()


def covered_groups(facts: Iterable[Sequence[str]], text: str) -> list[bool]:
    """For each group of alternatives, whether `text` holds any of them."""
    haystack = normalise_for_match(text)
    return [any(normalise_for_match(alt) in haystack for alt in group) for group in facts]


# --- gold short answers (SQuAD) --------------------------------------------------

_MARKER = re.compile(r"\s*\[\d+\]")
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def fold_space(text: str) -> str:
    """Runs of white space (line breaks included) as one space, ends trimmed."""
    return " ".join(text.split())


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """Whether `text` holds one of the gold answers, white space folded
    (case kept: the golds are spans of the article as written)."""
    haystack = fold_space(text)
    return any(fold_space(a) and fold_space(a) in haystack for a in answers)


def first_answer_rank(passages: Sequence[str], answers: Sequence[str]) -> int | None:
    """1-based rank of the first passage holding a gold answer; None when none does."""
    return next((i for i, p in enumerate(passages, start=1) if contains_answer(p, answers)), None)


def answer_words(text: str) -> int:
    """Words of an answer (tokens between spaces with a letter or digit), its
    [n] citation markers left out."""
    return sum(any(ch.isalnum() for ch in token) for token in _MARKER.sub(" ", text).split())


def squad_normalise(text: str) -> str:
    """SQuAD's answer normalisation: lower case, punctuation removed, the
    articles a/an/the removed, white space folded (in that order, as the
    official evaluation script does)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold; None or no golds: 0.0."""
    if prediction is None:
        return 0.0
    p = squad_normalise(prediction)
    return float(any(p == squad_normalise(g) for g in golds))


def token_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """SQuAD's token F1 of the normalised texts, the best over the golds; None: 0.0."""
    if prediction is None:
        return 0.0
    predicted = squad_normalise(prediction).split()
    best = 0.0
    for gold in golds:
        truth = squad_normalise(gold).split()
        common = sum((Counter(predicted) & Counter(truth)).values())
        if common:
            precision, recall = common / len(predicted), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random positive scores
    above a random negative, ties counting one half; None without both classes."""
    pos = [s for s, y in zip(scores, positive) if y]
    neg = [s for s, y in zip(scores, positive) if not y]
    if not pos or not neg:
        return None
    # Mann-Whitney U over average ranks, so ties count one half: O(n log n).
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, positive) if y)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


@dataclass(frozen=True)
class TradeOffPoint:
    """Abstaining below `threshold`: the share of unanswerable questions that
    abstain, and of answerable ones that do (false abstention)."""

    threshold: float
    abstention: float
    false_abstention: float


def abstention_trade_off(scores: Sequence[float], answerable: Sequence[bool]) -> list[TradeOffPoint]:
    """One point per distinct score (and one that abstains on nothing), from
    the lowest threshold to the highest; empty without both classes."""
    n_pos, n_neg = sum(answerable), len(answerable) - sum(answerable)
    if not n_pos or not n_neg:
        return []
    points = []
    for t in [-math.inf, *sorted(set(scores)), math.inf]:
        below = [y for s, y in zip(scores, answerable) if s < t]
        points.append(TradeOffPoint(t, sum(not y for y in below) / n_neg, sum(below) / n_pos))
    return points


# --- ranks -----------------------------------------------------------------------


def first_rank(ranked_article_ids: Sequence[str], gold: Collection[str]) -> int | None:
    """1-based rank of the first passage from a gold article; None when none is."""
    return next((i for i, a in enumerate(ranked_article_ids, start=1) if a in gold), None)


def hit_at_k(ranked_article_ids: Sequence[str], gold: Collection[str], k: int) -> bool:
    """Whether a gold article is among the first k passages."""
    rank = first_rank(ranked_article_ids, gold)
    return rank is not None and rank <= k


def reciprocal_rank(ranked_article_ids: Sequence[str], gold: Collection[str]) -> float:
    rank = first_rank(ranked_article_ids, gold)
    return 0.0 if rank is None else 1.0 / rank


# --- aggregates ------------------------------------------------------------------


def share(flags: Iterable[bool]) -> float | None:
    """Share of true values; None for no values (a rate of nothing is undefined, not 0)."""
    values = list(flags)
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolating between the two nearest
    values as numpy's default does; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --- one question's outcome ---------------------------------------------------------


@dataclass(frozen=True)
class CitationCheck:
    """One citation of an answer, checked against the article and the gold ids."""

    n: int
    article_id: str
    start: int
    end: int
    quote: str
    valid: bool  # quote == article.text[start:end]
    gold: bool  # points to an article that answers the question


@dataclass(frozen=True)
class Row:
    """What one question got: the ranking, the answer, and how they score."""

    id: str
    question: str
    history: tuple[str, ...]
    answerable: bool
    gold: tuple[str, ...]
    query: str  # what was searched: the question with the topic of a follow-up's history
    retrieved: tuple[str, ...]  # article ids of the ranked passages, best first
    rank: int | None  # of the first passage from a gold article
    answer: str
    abstained: bool
    citations: tuple[CitationCheck, ...]
    facts: tuple[tuple[str, ...], ...]
    covered: tuple[bool, ...]  # per fact group
    latency_ms: float
    kind: str = ANSWERABLE
    answers: tuple[str, ...] = ()  # gold short answers
    answer_rank: int | None = None  # of the first retrieved passage holding a gold answer
    short: str | None = None  # the answer's short answer text, when it gives one
    words: int = 0  # of the answer, citation markers left out
    answerable_p: float | None = None  # the answer's probability of being answerable, when it gives one
    doubted: bool = False  # given with the note that the passages may not answer (rag/calibration.py)

    @property
    def contains_gold(self) -> bool:
        return not self.abstained and contains_answer(_MARKER.sub(" ", self.answer), self.answers)

    @property
    def missed(self) -> list[tuple[str, ...]]:
        return [group for group, ok in zip(self.facts, self.covered) if not ok]


def summarise(rows: Sequence[Row]) -> dict[str, float | None]:
    """The metrics (see the module docstring) over some rows."""
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    metrics: dict[str, float | None] = {}
    for k in HIT_DEPTHS:
        metrics[f"hit@{k}"] = share(r.rank is not None and r.rank <= k for r in answerable)
    metrics["mrr"] = sum(1.0 / r.rank for r in answerable if r.rank) / len(answerable) if answerable else None
    with_golds = [r for r in answerable if r.answers]
    for k in HIT_DEPTHS:
        metrics[f"passage_answer@{k}"] = share(r.answer_rank is not None and r.answer_rank <= k for r in with_golds)
    groups = sum(len(r.covered) for r in answerable)
    metrics["fact_recall"] = sum(sum(r.covered) for r in answerable) / groups if groups else None
    metrics["answer_contains_gold"] = share(r.contains_gold for r in with_golds)
    answered = [r.words for r in answerable if not r.abstained]
    metrics["answer_words"] = sum(answered) / len(answered) if answered else None
    shorts = [None if r.abstained else r.short for r in with_golds]
    metrics["short_em"] = _mean([exact_match(s, r.answers) for s, r in zip(shorts, with_golds)])
    metrics["short_f1"] = _mean([token_f1(s, r.answers) for s, r in zip(shorts, with_golds)])
    metrics["citation_validity"] = share(c.valid for r in rows for c in r.citations)
    metrics["citation_precision"] = share(c.gold for r in answerable for c in r.citations)
    metrics["abstention_accuracy"] = share(r.abstained for r in unanswerable)
    for kind in ABSTENTION_KINDS:
        metrics[f"abstention_{kind}"] = share(r.abstained for r in unanswerable if r.kind == kind)
    metrics["false_abstention_rate"] = share(r.abstained for r in answerable)
    scored = [r for r in rows if r.answerable_p is not None]
    metrics["answerability_auc"] = roc_auc([r.answerable_p for r in scored], [r.answerable for r in scored])
    near = [r for r in scored if r.answerable or r.kind == "near_miss"]
    metrics["answerability_auc_near_miss"] = roc_auc([r.answerable_p for r in near], [r.answerable for r in near])
    latencies = [r.latency_ms for r in rows]
    metrics["latency_p50_ms"] = percentile(latencies, 50)
    metrics["latency_p95_ms"] = percentile(latencies, 95)
    return metrics


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def by_kind(rows: Sequence[Row]) -> dict[str, dict[str, float | int | None]]:
    """Per kind of question (answerable, follow-up, out_of_corpus,
    near_miss ...): its number of questions, the share that abstained, and
    the share of the answers given that carry the doubt note."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        kind = "follow-up" if r.answerable and r.history else r.kind
        groups.setdefault(kind, []).append(r)
    return {
        kind: {"questions": len(group), "abstained": share(r.abstained for r in group),
               "doubted": share(r.doubted for r in group if not r.abstained), **summarise(group)}
        for kind, group in sorted(groups.items(), key=lambda item: (item[0] != ANSWERABLE, item[0]))
    }


def by_article(rows: Sequence[Row]) -> dict[str, dict[str, float | int | None]]:
    """Metrics per gold article (a question with several counts for each),
    with unanswerable questions under "(unanswerable)"; each with its number
    of questions under "questions"."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        for key in (r.gold if r.answerable else (UNANSWERABLE,)):
            groups.setdefault(key, []).append(r)
    order = sorted(k for k in groups if k != UNANSWERABLE) + ([UNANSWERABLE] if UNANSWERABLE in groups else [])
    return {key: {"questions": len(groups[key]), **summarise(groups[key])} for key in order}


@dataclass(frozen=True)
class EvalResult:
    """One run over a question set: overall metrics, per article, per question."""

    metrics: dict[str, float | None]
    per_article: dict[str, dict[str, float | int | None]]
    rows: list[Row]
    mode: str = "hybrid"  # retrieval mode
    answer_mode: str = "extractive"
    text: str = "repaired"  # "raw": the corpus indexed without the text repair
    k: int = 5
    label: str = ""

    @property
    def per_kind(self) -> dict[str, dict[str, float | int | None]]:
        return by_kind(self.rows)

    def trade_off(self) -> list[TradeOffPoint]:
        """The abstention trade-off of the answers' probabilities; empty when they give none."""
        scored = [r for r in self.rows if r.answerable_p is not None]
        return abstention_trade_off([r.answerable_p for r in scored], [r.answerable for r in scored])

    def to_json(self) -> dict:
        """The metrics as top-level keys, plus per_article, per_kind and the per-question rows."""
        rows = [{**dataclasses.asdict(r), "missed": r.missed, "contains_gold": r.contains_gold} for r in self.rows]
        return {**self.metrics, "per_article": self.per_article, "per_kind": self.per_kind, "rows": rows}


# --- the runner --------------------------------------------------------------------


def for_evaluation(r, **changes):
    """`r` with other settings (retrieval mode, abstention threshold ...) and
    the query cache off, sharing its index.

    A cached question vector would make a repeated question look fast, and
    cached vectors of the caller's earlier queries would flatter the timing.
    """
    return r.with_settings(query_cache_size=0, **changes)


def _check_citation(r, c, gold: Collection[str]) -> CitationCheck:
    try:
        valid = r.article(c.article_id).text[c.start : c.end] == c.quote
    except UnknownArticleError:
        valid = False
    return CitationCheck(c.n, c.article_id, c.start, c.end, c.quote, valid, c.article_id in gold)


def run_question(r, q: Question, k: int, mode: str, answer_mode: str) -> Row:
    """Retrieve and answer one question; `r` should have its query cache off."""
    query = r.search_query(q.question, list(q.history))  # a follow-up carries the topic of its history
    hits = r.retrieve(query, k=max(k, max(HIT_DEPTHS)), mode=mode)
    retrieved = tuple(h.article_id for h in hits)
    answer_rank = first_answer_rank([h.text for h in hits], q.answers) if q.answers else None
    started = time.perf_counter()
    answer = r.ask(q.question, history=list(q.history), k=k, mode=answer_mode)
    latency_ms = (time.perf_counter() - started) * 1000.0
    covered = [False] * len(q.facts) if answer.abstained else covered_groups(q.facts, answer.text)
    return Row(
        id=q.id,
        question=q.question,
        history=q.history,
        answerable=q.answerable,
        gold=q.articles,
        query=query,
        retrieved=retrieved,
        rank=first_rank(retrieved, q.articles),
        answer=answer.text,
        abstained=answer.abstained,
        citations=tuple(_check_citation(r, c, q.articles) for c in answer.citations),
        facts=q.facts,
        covered=tuple(covered),
        latency_ms=latency_ms,
        kind=q.kind,
        answers=q.answers,
        answer_rank=answer_rank,
        short=_short_text(answer),
        words=answer_words(answer.text),
        answerable_p=_probability(answer),
        doubted=is_doubted(answer),
    )


def _short_text(answer) -> str | None:
    # getattr: `Answer.short` (an exact span, or None) is newer than this runner.
    short = getattr(answer, "short", None)
    return None if short is None else short.text


def is_doubted(answer) -> bool:
    """Whether an answer was given with the doubt note (rag/calibration.py DOUBT_NOTE)."""
    from .calibration import is_doubt_note

    return not answer.abstained and any(map(is_doubt_note, getattr(answer, "notes", ())))


def _probability(answer) -> float | None:
    p = getattr(answer, "answerable", None)
    return float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) else None


def evaluate(
    r,
    questions: Sequence[Question],
    *,
    k: int = 5,
    mode: str = "hybrid",
    answer_mode: str = "extractive",
    text: str = "repaired",
    progress: bool = False,
    label: str | None = None,
) -> EvalResult:
    """Run every question through `retrieve` (at depth max(k, 5), for hit@5)
    and `ask` (with k passages), and score the outcome.

    r: a RAG; its settings are kept except the retrieval mode, and the query
    cache is turned off. text: says which text `r` indexed, for the report.
    """
    if mode not in MODES:
        raise EvalError(f"unknown retrieval mode {mode!r}: use one of {', '.join(MODES)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise EvalError(f"k must be a whole number of at least 1, not {k!r}")
    if answer_mode not in ANSWER_MODES:
        raise EvalError(f"unknown answer mode {answer_mode!r}: use one of {', '.join(ANSWER_MODES)}")
    if answer_mode == "llm" and not r.settings.llm.configured:
        # Said once, before any question runs, rather than as the first question's failure.
        raise EvalError(
            "answer mode llm needs a language model: set RAG_LLM_BASE_URL and RAG_LLM_MODEL "
            "(or Settings(llm_base_url=..., llm_model=...)), or evaluate the extractive mode"
        )
    from tqdm import tqdm

    variant = for_evaluation(r, retrieval_mode=mode)
    label = label or f"{mode}, {text} text"
    rows = []
    for q in tqdm(questions, desc=label, unit="question", file=sys.stderr, disable=not progress, leave=False):
        try:
            rows.append(run_question(variant, q, k, mode, answer_mode))
        except QueryError as e:
            raise EvalError(f"question {q.id} (line {q.line}): {e}") from e
    return EvalResult(summarise(rows), by_article(rows), rows, mode, answer_mode, text, k, label)


def compare(
    r,
    questions: Sequence[Question],
    *,
    raw=None,
    k: int = 5,
    answer_mode: str = "extractive",
    modes: Sequence[str] = ("dense", "bm25", "hybrid"),
    progress: bool = False,
) -> list[EvalResult]:
    """The side-by-side runs: each retrieval mode on the repaired text, then
    on the raw text when `raw` (a RAG over the corpus indexed with
    Settings(repair=False)) is given."""
    results = []
    for text, rag in (("repaired", r), ("raw", raw)):
        if rag is None:
            continue
        for mode in modes:
            results.append(evaluate(rag, questions, k=k, mode=mode, answer_mode=answer_mode, text=text, progress=progress))
    return results


def retrieval_only(r, questions: Sequence[Question], mode: str, k: int = 5, **changes) -> dict[str, float | None]:
    """hit@1/3/5, MRR and passage_answer@1/3/5 of one retrieval mode, without
    answering: what a report plots for the modes a run did not answer with.
    changes: other retrieval settings (fusion, dense_weight ...)."""
    variant = for_evaluation(r, retrieval_mode=mode, **changes)
    flags: dict[str, list[bool]] = {f"hit@{d}": [] for d in HIT_DEPTHS}
    flags.update({f"passage_answer@{d}": [] for d in HIT_DEPTHS})
    rr: list[float] = []
    for q in questions:
        if not q.answerable:
            continue
        try:
            query = variant.search_query(q.question, list(q.history))
            hits = variant.retrieve(query, k=max(k, max(HIT_DEPTHS)), mode=mode)
        except QueryError as e:
            raise EvalError(f"question {q.id} (line {q.line}): {e}") from e
        ranked = [h.article_id for h in hits]
        for d in HIT_DEPTHS:
            flags[f"hit@{d}"].append(hit_at_k(ranked, q.articles, d))
        if q.answers:
            rank = first_answer_rank([h.text for h in hits], q.answers)
            for d in HIT_DEPTHS:
                flags[f"passage_answer@{d}"].append(rank is not None and rank <= d)
        rr.append(reciprocal_rank(ranked, q.articles))
    return {**{name: share(v) for name, v in flags.items()}, "mrr": sum(rr) / len(rr) if rr else None}


@dataclass(frozen=True)
class Floors:
    """The CI gate: each metric's lowest acceptable value (`floors`) or, for
    rates that should stay low, its highest (`ceilings`)."""

    floors: dict[str, float] = field(default_factory=dict)
    ceilings: dict[str, float] = field(default_factory=dict)

    def failures(self, metrics: dict[str, float | None]) -> list[str]:
        """One message per metric outside its bound, naming metric, value and bound."""
        out = []
        for name, floor in self.floors.items():
            value = metrics.get(name)
            if value is None or value < floor:
                out.append(f"{name} = {_fmt(value)} is below its floor {floor}")
        for name, ceiling in self.ceilings.items():
            value = metrics.get(name)
            if value is None or value > ceiling:
                out.append(f"{name} = {_fmt(value)} is above its ceiling {ceiling}")
        return out


def load_floors(path: str | Path, set_name: str | None = None) -> Floors:
    """Floors from a JSON file {"floors": {metric: value}, "ceilings": {metric: value}},
    or those of one of its named sets, {"sets": {"<name>": {"floors": ..., "ceilings": ...}}}
    (one file gates several question sets)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalError(f"floors file {path} does not exist: pass a file such as eval/floors.json") from None
    except (OSError, ValueError) as e:
        raise EvalError(f"floors file {path} cannot be read ({e}): fix it or pass another") from e
    if not isinstance(data, dict):
        raise EvalError(f"floors file {path} must hold a JSON object with \"floors\" and \"ceilings\"")
    sections = data.get("sets", {})
    if not isinstance(sections, dict) or not all(isinstance(v, dict) for v in sections.values()):
        raise EvalError(f"floors file {path}: \"sets\" must map names to objects of floors and ceilings")
    unknown = sorted(set(data) - {"floors", "ceilings", "note", "sets"})
    if unknown:
        raise EvalError(f"floors file {path} has unknown key(s) {', '.join(unknown)}: use floors, ceilings, note and sets")
    where = str(path)
    if set_name is not None:
        if set_name not in sections:
            raise EvalError(
                f"floors file {path} has no set {set_name!r} under \"sets\": "
                + (f"use one of {', '.join(sorted(sections))}" if sections else "it has none; leave the set out")
            )
        data, where = sections[set_name], f"{path} set {set_name!r}"
        unknown = sorted(set(data) - {"floors", "ceilings", "note", "questions"})
        if unknown:
            raise EvalError(f"floors file {where} has unknown key(s) {', '.join(unknown)}: use floors, ceilings, note and questions")
    bounds = {}
    for part in ("floors", "ceilings"):
        values = data.get(part, {})
        bad = [n for n, v in values.items() if n not in METRICS or isinstance(v, bool) or not isinstance(v, (int, float))] \
            if isinstance(values, dict) else [part]
        if bad:
            raise EvalError(
                f"floors file {where}: {part} must map metric names to numbers; bad: {', '.join(bad)} "
                f"(metrics are {', '.join(METRICS)})"
            )
        bounds[part] = {n: float(v) for n, v in values.items()}
    return Floors(**bounds)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"

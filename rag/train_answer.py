"""Retrain the answer models (rag/models/answer-v1.json) from the shared SQuAD train file.

    python -m rag.train_answer                 # build what is missing, train, write the weights
    python -m rag.train_answer --help

Steps, each cached under --cache (default /work/cache/learned):
1. corpus: SQuAD articles TRAIN_CORPUS (never 0-39) written as a corpus
   folder and indexed with the product (its chunking, MiniLM, FAISS, BM25);
2. questions: a hashed sample of each corpus article's questions (answerable),
   questions of articles outside the corpus (out of corpus), and near misses
   made from answerable ones (squad.near_misses);
3. records: the product's hybrid retrieval and sentence scoring for every
   question (hits and Evidence), saved as JSON lines;
4. fit: the ranker on the training articles' answerable questions, the
   answerability model on all their questions, both logistic regressions by
   Newton's method (deterministic); threshold, keep_ratio and max_sentences
   chosen on the held-out calibration articles;
5. write the weights and the manifest (data hash, features, metrics).

Only numpy is needed. Steps 1-3 embed about 6,700 chunks and sentences and
3,700 questions (22 minutes on this shared 2-core machine, once); step 4 takes
2-3 minutes, most of it computing features.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .weightfile import add_false_abstention, manifest_path, run_unsalted, sha256

# Which SQuAD articles (in the shared sha256 order) play which part. The
# corpus holds TRAIN_CORPUS; questions of the first ones train, of the last
# CALIBRATION ones calibrate. Out-of-corpus questions come from articles the
# corpus does not hold, split the same way.
TRAIN_CORPUS = (40, 64)
CALIBRATION_FROM = 58  # corpus articles 58-63: held out for calibration
OUT_OF_CORPUS = (64, 104)
OUT_OF_CORPUS_CALIBRATION_FROM = 92
QUESTIONS_PER_ARTICLE = 100
OUT_OF_CORPUS_PER_ARTICLE = 15
NEAR_MISSES_PER_ARTICLE = 25
FOREIGN_NEAR_MISSES_PER_ARTICLE = 10
RECORDS_VERSION = "records/2 PYTHONHASHSEED=0"
K = 5  # passages per question, as `ask` retrieves by default
L2 = 1.0  # ridge penalty of both regressions, on standardised features
FALSE_ABSTENTION = 0.03  # the held-out rate the threshold is chosen for
MAX_WORDS = 39.0  # average answer length the sentence count is tuned within (the target is 40)


def log(msg: str) -> None:
    print(f"[train_answer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- records: what the product saw for each question -------------------------------------------


def load_rag(corpus: Path, index: Path):
    from .core import RAG

    return RAG.load(corpus, index, progress=True)


def collect(r, questions: Sequence, out: Path, batch: int = 64) -> None:
    """Retrieve and score sentences for every question the way `ask` does
    (hybrid search, k=K, SentenceScorer.score), and write one JSON line each."""
    s = r.settings
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for i in range(0, len(questions), batch):
            part = questions[i : i + batch]
            vectors = r.embedder.embed([q.question for q in part])
            for q, v in zip(part, vectors):
                hits = r.retriever.search(q.question, K, None, s.retrieval.mode, v)
                evidence = r.scorer.score(q.question, v, hits, s.answer.sentence_dense_weight).items
                f.write(json.dumps({
                    "q": dataclasses.asdict(q),
                    "hits": [dataclasses.asdict(h) for h in hits],
                    "evidence": [dataclasses.asdict(e) for e in evidence[:60]],
                }, sort_keys=True) + "\n")
            log(f"records: {min(i + batch, len(questions))}/{len(questions)} questions")
    tmp.replace(out)


def read_records(path: Path):
    from .evidence import Evidence
    from .squad import SquadQuestion
    from .types import Hit

    for d in _iter(path):
        q = d["q"]
        q["answers"] = tuple(q["answers"])
        yield SquadQuestion(**q), [Hit(**h) for h in d["hits"]], [Evidence(**e) for e in d["evidence"]]


def _iter(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


# --- features and labels ------------------------------------------------------------------------


@dataclasses.dataclass
class Table:
    """Features of every question: ranker rows (with question index) and labels."""

    questions: list
    split: list[str]  # "train" | "calibration"
    candidates: list[list]  # Evidence per question
    rank_x: list[np.ndarray]
    rank_y: list[np.ndarray]  # 1 where the sentence holds a gold answer
    hits: list[list]


def build_table(records, articles, context, split_of) -> Table:
    from .answerability import ranker_features
    from .squad import contains_answer

    t = Table([], [], [], [], [], [])
    for q, hits, evidence in records:
        candidates, x = ranker_features(q.question, evidence, hits, articles, context)
        y = np.asarray(
            [contains_answer(articles[e.article_id].text[e.start : e.end], q.answers) for e in candidates], dtype=np.float64
        ) if q.answers else np.zeros(len(candidates))
        t.questions.append(q)
        t.split.append(split_of(q))
        t.candidates.append(candidates)
        t.rank_x.append(x)
        t.rank_y.append(y)
        t.hits.append(hits)
    return t


# Features whose effect on answerability has a known direction. A weight of
# the other sign is a fit to the training data's quirks (the generated near
# misses name things the corpus knows, so "an unknown name" looked like a
# good sign beside "a name the passages lack"); such a feature is held at 0.
SIGNS = {
    **{f: +1 for f in ("name_cover_window", "name_cover_hits", "number_cover_window", "term_cover_window",
                       "term_cover_hits", "article_cover", "best_hit_cover", "top_logit", "top_p",
                       "best_dense", "top_hit_dense", "max_hit_dense", "type_found_top3")},
    **{f: -1 for f in ("unknown_names", "unknown_share", "rarest_missing_window", "rarest_missing_hits")},
}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, weights: np.ndarray | None = None,
                 signs: Sequence[int] | None = None):
    """Ridge logistic regression on standardised x by Newton's method:
    deterministic, and exact to numerical precision in a few iterations.
    `signs` (+1, -1 or 0 per feature): a feature whose fitted weight has the
    wrong sign is fixed at 0 and the rest refitted, until none has."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    sw = np.ones(len(y)) if weights is None else weights
    free = np.ones(z.shape[1], dtype=bool)
    while True:
        w = np.zeros(z.shape[1])
        zf = z[:, free]
        wf = np.zeros(zf.shape[1])
        penalty = np.full(zf.shape[1], l2)
        penalty[-1] = 0.0  # the bias (always free, last) is not shrunk
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-np.clip(zf @ wf, -30, 30)))
            grad = zf.T @ (sw * (p - y)) + penalty * wf
            hess = (zf * (sw * p * (1 - p))[:, None]).T @ zf + np.diag(penalty) + 1e-9 * np.eye(len(wf))
            step = np.linalg.solve(hess, grad)
            wf -= step
            if np.abs(step).max() < 1e-10:
                break
        w[free] = wf
        if signs is None:
            break
        wrong = [j for j, sign in enumerate(signs) if free[j] and sign * w[j] < 0]
        if not wrong:
            break
        free[max(wrong, key=lambda j: abs(w[j]))] = False  # the worst one first: the others may recover
    return mean, scale, w[:-1], float(w[-1])


def roc_auc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """P(a positive scores above a negative), ties counted half."""
    if not len(pos) or not len(neg):
        return None
    pos, neg = np.asarray(pos), np.asarray(neg)
    order = np.concatenate([pos, neg])
    ranks = _average_ranks(order)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


# --- the run ---------------------------------------------------------------------------------------


def prepare(cache: Path):
    """Steps 1-3; returns (the loaded RAG, records file). Reuses what is cached."""
    from . import squad

    corpus, index, records = cache / "train-corpus", cache / "train-index", cache / "train-records.jsonl.gz"
    numbered = list(enumerate(squad.articles(*TRAIN_CORPUS, for_training=True), start=TRAIN_CORPUS[0]))
    squad.write_corpus(corpus, numbered)
    log(f"corpus: {len(numbered)} articles in {corpus}")
    r = load_rag(corpus, index)
    log(f"index: {r.summary.reason}; {r.backend.n_chunks} chunks, {len(r.backend.sentences.records)} sentences")

    questions = []
    outside = squad.articles(*OUT_OF_CORPUS, for_training=True)
    for j, (_, a) in enumerate(numbered):
        answerable = squad.sample_questions(a, QUESTIONS_PER_ARTICLE)
        questions += answerable
        # Near misses are made from any of the article's questions: a question
        # and its altered copy training side by side is a contrast the model should see.
        others = squad.sample_questions(a, 1000, salt="near")
        made = squad.near_misses(a, others, NEAR_MISSES_PER_ARTICLE)
        questions += made
        # And some whose swapped-in name the corpus never uses, from an
        # article outside it: the unknown-name signal needs examples.
        foreign = [n for n in squad.names_in(outside[j % len(outside)]) if not all(r.backend.knows(w) for w in n.split())]
        used = {q.source for q in made}
        questions += squad.near_misses(a, [q for q in others if q.question not in used], FOREIGN_NEAR_MISSES_PER_ARTICLE,
                                       foreign=foreign)
    for a in outside:
        questions += squad.sample_questions(a, OUT_OF_CORPUS_PER_ARTICLE, kind="out_of_corpus")
    kinds = {k: sum(q.kind == k for q in questions) for k in ("answerable", "near_miss", "out_of_corpus")}
    log(f"questions: {kinds}")

    # The stamp names the questions and how records are made (unsalted hashes, see main).
    want = hashlib.sha256(json.dumps(
        [RECORDS_VERSION, [dataclasses.asdict(q) for q in questions]], sort_keys=True).encode()).hexdigest()
    stamp = records.with_suffix(".questions-sha256")
    if not records.is_file() or not stamp.is_file() or stamp.read_text() != want:
        collect(r, questions, records)
        stamp.write_text(want)
    else:
        log(f"records: cached in {records}")
    return r, records


def split_rule():
    from . import squad

    corpus_titles = squad.articles(*TRAIN_CORPUS, for_training=True)
    ooc_titles = squad.articles(*OUT_OF_CORPUS, for_training=True)
    calibration = {a.title for a in corpus_titles[CALIBRATION_FROM - TRAIN_CORPUS[0] :]}
    calibration |= {a.title for a in ooc_titles[OUT_OF_CORPUS_CALIBRATION_FROM - OUT_OF_CORPUS[0] :]}
    return lambda q: "calibration" if q.article in calibration else "train"


def answer_words(chosen, articles) -> int:
    return sum(len(articles[e.article_id].text[e.start : e.end].split()) for e in chosen)


def train(cache: Path, out: Path, false_abstention: float = FALSE_ABSTENTION) -> dict:
    from . import answerability as A
    from . import squad

    t0 = time.time()
    r, records_path = prepare(cache)
    articles = r.corpus.by_id()
    context = A.AnswerContext(A.IndexedSentences(r.backend.sentences, r.scorer), r.backend.knows)
    table = build_table(read_records(records_path), articles, context, split_rule())
    log(f"features: {len(table.questions)} questions, {sum(len(x) for x in table.rank_x)} candidate sentences")

    n = len(table.questions)
    train_ids = [i for i in range(n) if table.split[i] == "train"]
    cal_ids = [i for i in range(n) if table.split[i] == "calibration"]

    # Ranker: answerable training questions whose candidates hold the answer.
    rank_ids = [i for i in train_ids if table.questions[i].kind == "answerable" and table.rank_y[i].any()]
    rx = np.vstack([table.rank_x[i] for i in rank_ids])
    ry = np.concatenate([table.rank_y[i] for i in rank_ids])
    ranker = A.Logistic(A.RANKER_FEATURES, *fit_logistic(rx, ry))
    log(f"ranker: fitted on {len(rank_ids)} questions, {len(ry)} sentences ({int(ry.sum())} hold an answer)")

    logits = [ranker.logits(x) if len(x) else np.zeros(0) for x in table.rank_x]
    ax = np.vstack([
        A.answerability_features(table.questions[i].question, table.candidates[i], logits[i], table.hits[i], articles, context)
        for i in range(n)
    ])

    def positive(i: int) -> bool:
        return table.questions[i].kind == "answerable"

    # Answerability: answerable questions whose passages hold the answer are
    # positives; out-of-corpus and near-miss questions are negatives. An
    # answerable question whose passages miss the answer is left out of the
    # fit (its label would be "answerable" with nothing to answer from).
    fit_ids = [i for i in train_ids if not positive(i) or table.rank_y[i].any()]
    ay = np.asarray([1.0 if positive(i) else 0.0 for i in fit_ids])
    # Weight the classes alike: negatives are fewer, and both errors matter.
    cw = np.where(ay == 1, 0.5 / ay.mean(), 0.5 / (1 - ay.mean()))
    signs = [SIGNS.get(f, 0) for f in A.ANSWERABILITY_FEATURES]
    answerability = A.Logistic(A.ANSWERABILITY_FEATURES, *fit_logistic(ax[fit_ids], ay, weights=cw, signs=signs))
    held = [f for f, w in zip(A.ANSWERABILITY_FEATURES, answerability.weights) if w == 0.0 and SIGNS.get(f)]
    log(f"answerability: fitted on {len(fit_ids)} questions; held at 0 for a wrong sign: {', '.join(held) or 'none'}")
    p_all = 1.0 / (1.0 + np.exp(-answerability.logits(ax)))

    # Threshold: the largest that abstains on at most `false_abstention` of
    # the held-out answerable questions (every one, whether retrieval found
    # the answer or not: that is what a user sees).
    cal_pos = np.sort([p_all[i] for i in cal_ids if positive(i)])
    threshold = float(cal_pos[int(math.floor(false_abstention * len(cal_pos)))]) if len(cal_pos) else 0.5
    threshold = math.nextafter(threshold, 0.0)  # the quantile question itself answers

    # Sentence count and keep ratio: most held-out answers holding gold
    # within MAX_WORDS words on average.
    best = None
    for max_sentences in (1, 2, 3):
        for keep_ratio in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3):
            model = A.AnswerModel(ranker, answerability, threshold, max_sentences, keep_ratio, {})
            hit_gold, words, m = 0, 0, 0
            for i in cal_ids:
                q = table.questions[i]
                if not positive(i):
                    continue
                d = _choose(table, i, logits[i], model)
                m += 1
                words += answer_words(d, articles)
                text = " ".join(articles[e.article_id].text[e.start : e.end] for e in d)
                hit_gold += squad.contains_answer(text, q.answers)
            score = (hit_gold / m, -words / m)
            if words / m <= MAX_WORDS and (best is None or score > best[0]):
                best = (score, max_sentences, keep_ratio)
            if max_sentences == 1:
                break
    _, max_sentences, keep_ratio = best
    log(f"calibrated: threshold {threshold:.4f} for {false_abstention:.0%} false abstention; "
        f"max_sentences {max_sentences}, keep_ratio {keep_ratio}")
    model = A.AnswerModel(ranker, answerability, threshold, max_sentences, keep_ratio, {})
    metrics = held_out_metrics(table, cal_ids, logits, p_all, model, articles)
    metrics["train"] = held_out_metrics(table, train_ids, logits, p_all, model, articles)
    for key, value in metrics.items():
        if key != "train":
            log(f"held out: {key} = {value}")
    # Per-question scores, for reading what the models get wrong (not shipped).
    with gzip.open(cache / "train-scores.jsonl.gz", "wt", encoding="utf-8") as f:
        for i in range(n):
            q = table.questions[i]
            top = table.candidates[i][int(np.argmax(logits[i]))] if len(logits[i]) else None
            f.write(json.dumps({
                "split": table.split[i], "kind": q.kind, "question": q.question, "source": q.source,
                "answers": q.answers, "p": float(p_all[i]), "reachable": bool(table.rank_y[i].any()),
                "top": articles[top.article_id].text[top.start : top.end] if top else None,
                "features": dict(zip(A.ANSWERABILITY_FEATURES, map(float, ax[i]))),
            }) + "\n")

    weights = {
        "format": A.FORMAT,
        "ranker": ranker.to_json(),
        "answerability": answerability.to_json(),
        "threshold": threshold,
        "max_sentences": max_sentences,
        "keep_ratio": keep_ratio,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(weights, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    manifest = {
        "weights_file": out.name,
        "weights_sha256": sha256(out),
        "format": A.FORMAT,
        "ranker_features": list(A.RANKER_FEATURES),
        "answerability_features": list(A.ANSWERABILITY_FEATURES),
        "data": {
            "squad_file": str(squad.SQUAD_FILE),
            "squad_file_sha256": squad.file_sha256(),
            "records_sha256": hashlib.sha256(gzip.open(records_path).read()).hexdigest(),
            "corpus_articles": list(TRAIN_CORPUS),
            "calibration_articles_from": CALIBRATION_FROM,
            "out_of_corpus_articles": list(OUT_OF_CORPUS),
            "out_of_corpus_calibration_from": OUT_OF_CORPUS_CALIBRATION_FROM,
            "questions": {k: sum(q.kind == k for q in table.questions) for k in ("answerable", "near_miss", "out_of_corpus")},
            "split_rule": "articles sorted by sha256(title); 0-39 never read",
        },
        "threshold_rule": f"lowest held-out answerable p at the {false_abstention:.0%} quantile",
        "false_abstention_target": false_abstention,
        "metrics_held_out": {k: v for k, v in metrics.items() if k != "train"},
        "metrics_train": metrics["train"],
        "training_seconds": round(time.time() - t0, 1),
    }
    manifest_file = manifest_path(out)
    manifest_file.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    log(f"wrote {out} ({out.stat().st_size:,} bytes) and {manifest_file.name} in {time.time() - t0:.0f} s")
    return manifest


def _choose(table: Table, i: int, logits: np.ndarray, model) -> list:
    """decide()'s sentence choice over cached features (the same rule)."""
    from . import answerability as A

    if not len(logits):
        return []
    p = 1.0 / (1.0 + np.exp(-logits))
    order = [int(j) for j in np.argsort(-logits, kind="stable")]
    chosen = [order[0]]
    for j in order[1:]:
        if len(chosen) >= model.max_sentences:
            break
        if p[j] >= model.keep_ratio * p[order[0]]:
            chosen.append(j)
    if len(chosen) == 1 and len(order) > 1 and table.rank_x[i][order[0], A.RANKER_FEATURES.index("restates")]:
        chosen.append(order[1])
    return [table.candidates[i][j] for j in chosen]


def held_out_metrics(table: Table, ids, logits, p_all, model, articles) -> dict:
    from . import squad

    out: dict = {}
    pos = [p_all[i] for i in ids if table.questions[i].kind == "answerable"]
    for kind in ("near_miss", "out_of_corpus"):
        neg = [p_all[i] for i in ids if table.questions[i].kind == kind]
        out[f"auc_{kind}"] = _round(roc_auc(pos, neg))
        out[f"abstention_{kind}"] = _round(np.mean([p < model.threshold for p in neg]) if neg else None)
    out["false_abstention"] = _round(np.mean([p < model.threshold for p in pos]) if pos else None)
    gold, words, top1, reachable = 0, 0, 0, 0
    answerable = [i for i in ids if table.questions[i].kind == "answerable"]
    for i in answerable:
        chosen = _choose(table, i, logits[i], model)
        text = " ".join(articles[e.article_id].text[e.start : e.end] for e in chosen)
        gold += squad.contains_answer(text, table.questions[i].answers)
        words += answer_words(chosen, articles)
        if table.rank_y[i].any():
            reachable += 1
            top1 += bool(table.rank_y[i][int(np.argmax(logits[i]))])
    out["contains_gold"] = _round(gold / len(answerable)) if answerable else None
    out["answer_words"] = _round(words / len(answerable)) if answerable else None
    out["ranker_top1_when_reachable"] = _round(top1 / reachable) if reachable else None
    out["reachable"] = _round(reachable / len(answerable)) if answerable else None
    out["questions"] = len(ids)
    return out


def _round(v):
    return None if v is None else round(float(v), 4)


def main(argv: Sequence[str] | None = None) -> int:
    from . import answerability as A

    parser = argparse.ArgumentParser(
        prog="python -m rag.train_answer",
        description=(
            "Retrain the answer models (sentence ranker and answerability) from SQuAD train articles "
            f"{TRAIN_CORPUS[0]}+ and write the weights and manifest. Deterministic: the same data gives "
            "the same file. The first run indexes 24 articles and embeds 3,700 questions: 22 minutes on this "
            "2-core machine while shared with other work; then 3-4 minutes from the cache."
        ),
    )
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/learned"), help="where corpora, indexes and records are cached")
    parser.add_argument("--out", type=Path, default=A.DEFAULT_MODEL, help=f"the weight file to write (default {A.DEFAULT_MODEL})")
    add_false_abstention(parser, FALSE_ABSTENTION)
    args = parser.parse_args(argv)
    run_unsalted("rag.train_answer", argv)
    train(args.cache, args.out, args.false_abstention)
    return 0


if __name__ == "__main__":
    sys.exit(main())

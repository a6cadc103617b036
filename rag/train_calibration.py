"""Refit the default answer's probability (rag/models/calibration-v1.json) from SQuAD training articles.

    python -m rag.train_calibration          # build what is missing, fit, write weights + manifest
    python -m rag.train_calibration --help

Steps:
1. records: rag.train_answer's corpus of SQuAD articles 40-63 indexed by the
   product, its questions (answerable ones, out-of-corpus ones of articles
   64-103, generated near misses) and each question's hits and scored
   sentences, cached under --cache (rag.train_answer.prepare; 15-25 minutes
   the first time on this shared machine, then seconds); plus "answer removed"
   negatives (rag.train_reader.answer_removed: an answerable question with
   every passage that holds its answer taken away, which keeps the subject and
   loses the detail, like a hand-written near miss).
2. signals: for each, the answer rules' answer as `ask` makes it (the
   unknown-name rule, then rag.answer.extractive_answer) and
   rag.calibration.signals over the shipped reading model's logits.
3. fit: ridge logistic regressions (rag.train_answer.fit_logistic: Newton's
   method, deterministic; a weight of the wrong sign is held at 0) over each
   of FEATURE_SETS on articles 40-57 and 64-91; the set with the best mean
   ROC AUC over the three unanswerable kinds on the held-out articles (58-63,
   92-103) is kept, and the threshold is the held-out answerable questions'
   p at --false-abstention, the doubt level their p at DOUBT_SHARE.
4. write the weights and the manifest (data hashes, features, metrics).

Articles 0-39 are never read. numpy only (the reading model runs as shipped).
"""

from __future__ import annotations

import argparse
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

from . import calibration as C
from .weightfile import add_false_abstention, manifest_path, run_unsalted, sha256, share_in_0_1

# The held-out false-abstention rate the threshold is set for. At 3% (the rate
# of the learned stage and the reader's gate) the gate, on top of the rules,
# raised false abstention to 6.1% on the five articles and 6.0% on the
# development articles; at 1% it added none on either (eval/NOTES.md "Answerability").
FALSE_ABSTENTION = 0.01
# The share of held-out answerable questions whose p falls under the doubt
# level (their p at this quantile), under which an answer given carries a note
# that the passages may not answer it (rag/calibration.py DOUBT_NOTE). Fewer
# of their answers given carry it (3.4% held out): the rules or the gate
# abstain on part of these 5%. At 5% the note fell, on the
# held-out articles, on about half of the near misses and four in five of the
# out-of-corpus questions that the rules and the gate let through.
DOUBT_SHARE = 0.05
READ_CANDIDATES = 10  # logits kept per question, so that fewer can be tried without reading again
# Candidate feature sets, simplest first; the held-out articles choose. The
# best sentence's score and its words-shared share (best_score, best_lexical)
# are in none: SQuAD's crowd workers copy the paragraph's words, paraphrased
# questions do not, so an absolute word-overlap score learned on SQuAD
# abstains on paraphrases (eval/NOTES.md "Learned answer stage": with the lexical
# shares the five articles' false abstention rose from 2.2% to 9.9%; here,
# with best_score, from 5.1% to 6.1% at the same threshold rule). The
# rules' own verdict on the score comes in through rules_abstained.
_RULES = ("reader_max", "reader_top", "reader_cited", "best_dense", "max_hit_dense",
          "unknown_names", "type_missing", "rules_abstained")
_COVERAGE = ("name_cover", "number_cover", "predicate_cover")
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "reader": ("reader_max", "reader_top"),
    "reader+rules": _RULES,
    "reader+rules+coverage": _RULES + _COVERAGE,
    "reader+rules+coverage+relative": _RULES + _COVERAGE + ("reader_gap", "dense_gap", "type_asked"),
}
# Features whose effect has a known direction (a weight of the other sign is a
# quirk of the training data and is held at 0).
SIGNS = {
    **{f: +1 for f in ("reader_max", "reader_top", "reader_cited", "reader_gap", "best_score", "best_dense",
                       "max_hit_dense", "dense_gap", "name_cover", "number_cover", "predicate_cover")},
    **{f: -1 for f in ("unknown_names", "type_missing", "below_threshold", "rules_abstained")},
}
UNANSWERABLE_KINDS = ("near_miss", "out_of_corpus", "answer_removed")


def log(msg: str) -> None:
    print(f"[train_calibration {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rules_answer(r, question: str, evidence, hits, articles):
    """What `ask` answers with the rules from these hits and scored sentences
    (the unknown-name rule first, as rag.answer.screen; then the rules)."""
    from .answer import abstain, extractive_answer, spelt_otherwise, unknown_names_text
    from .evidence import EvidenceSet
    from .questions import unknown_names

    names = unknown_names(question, r.backend.knows, spelt_otherwise(hits, r.backend.knows))
    if names:
        return abstain(hits, unknown_names_text(names))
    # The rules compare sentences by their vectors (near-duplicates): the
    # records' rows are renumbered into the index's own sentence table.
    sentences = r.backend.sentences
    rows = []
    for e in evidence:
        found = [i for i in sentences.rows_within(e.article_id, e.start, e.end)
                 if sentences.records[i].start == e.start and sentences.records[i].end == e.end]
        rows.append(found[0] if found else 0)
    import dataclasses

    items = [dataclasses.replace(e, row=i) for e, i in zip(evidence, rows)]
    return extractive_answer(question, EvidenceSet(items, sentences.vectors), hits, articles, r.settings.answer)


def signal_table(r, reader, records, articles) -> tuple[list, list[dict], list[np.ndarray]]:
    """Per record: the question, the rules' signals (with READ_CANDIDATES logits) and the logits."""
    questions, rows, all_logits = [], [], []
    for n, (q, hits, evidence) in enumerate(records):
        answer = rules_answer(r, q.question, evidence, hits, articles)
        logits = C.reader_logits(reader, q.question, evidence, articles, READ_CANDIDATES)
        rows.append(C.signals(q.question, answer, evidence, hits, articles, logits[: C.CANDIDATES],
                              r.settings.answer.abstain_below, C.knows_every_name(answer)))
        questions.append(q)
        all_logits.append(logits)
        if n % 500 == 0:
            log(f"signals: {n}/{len(records)}")
    return questions, rows, all_logits


def auc(pos, neg) -> float | None:
    from .train_answer import roc_auc

    return roc_auc(pos, neg)


def figures(p: np.ndarray, kinds: Sequence[str], threshold: float, doubt: float,
            answered: Sequence[bool] | None = None) -> dict:
    """Abstention and AUC by kind at `threshold`; `doubted_<kind>`: the share
    of the questions the rules answer (`answered`; None: all) and the gate lets
    through whose p is under `doubt`."""
    answered = [True] * len(kinds) if answered is None else answered
    pos = [float(v) for v, k in zip(p, kinds) if k == "answerable"]
    out: dict = {"false_abstention": round(float(np.mean([v < threshold for v in pos])), 4) if pos else None}

    def doubted(kind: str) -> float | None:
        given = [float(v) for v, k, a in zip(p, kinds, answered) if k == kind and a and v >= threshold]
        return round(float(np.mean([v < doubt for v in given])), 4) if given else None

    out["doubted_answerable"] = doubted("answerable")
    for kind in UNANSWERABLE_KINDS:
        neg = [float(v) for v, k in zip(p, kinds) if k == kind]
        if neg:
            out[f"abstention_{kind}"] = round(float(np.mean([v < threshold for v in neg])), 4)
            a = auc(pos, neg)
            out[f"auc_{kind}"] = None if a is None else round(a, 4)
            out[f"doubted_{kind}"] = doubted(kind)
    out["questions"] = {k: int(sum(1 for x in kinds if x == k)) for k in sorted(set(kinds))}
    return out


def _r(a, digits: int = 8):
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def train(cache: Path, out: Path, false_abstention: float = FALSE_ABSTENTION, doubt_share: float = DOUBT_SHARE) -> dict:
    from .reader import load_reader
    from .train_answer import fit_logistic, prepare, read_records, split_rule
    from .train_reader import answer_removed
    from . import squad

    t0 = time.time()
    r, records_path = prepare(cache)
    articles = r.corpus.by_id()
    records = list(read_records(records_path))
    records += answer_removed(records, articles)
    reader = load_reader()
    t1 = time.time()
    questions, rows, all_logits = signal_table(r, reader, records, articles)
    signal_seconds = time.time() - t1
    log(f"signals: {len(rows)} questions in {signal_seconds:.0f} s")
    split_of = split_rule()
    kinds = [q.kind for q in questions]
    is_cal = np.asarray([split_of(q) == "calibration" for q in questions])
    y = np.asarray([k == "answerable" for k in kinds], dtype=np.float64)
    # An answerable question whose passages miss every gold answer is no
    # example of passages that answer: left out of the fit (kept for the threshold).
    reachable = np.asarray([k != "answerable" or any(squad.contains_answer(articles[h.article_id].text[h.start : h.end], q.answers)
                                                     for h in hits) for k, (q, hits, _) in zip(kinds, records)])
    fit = np.flatnonzero(~is_cal & reachable)
    # Both classes weigh alike; within the negatives, each kind alike.
    w = np.zeros(len(kinds))
    w[fit[y[fit] == 1]] = 0.5 / max(int((y[fit] == 1).sum()), 1)
    for kind in UNANSWERABLE_KINDS:
        members = fit[np.asarray([kinds[i] == kind for i in fit], dtype=bool)]
        w[members] = 0.5 / len(UNANSWERABLE_KINDS) / max(len(members), 1)
    w *= len(fit)

    def fitted(names: Sequence[str]):
        x = np.asarray([[row[f] for f in names] for row in rows], dtype=np.float64)
        mean, scale, weights, bias = fit_logistic(x[fit], y[fit], weights=w[fit], signs=[SIGNS.get(f, 0) for f in names])
        z = ((x - mean) / scale) @ weights + bias
        return mean, scale, weights, bias, 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    kinds_a = np.asarray(kinds)

    def held_out_auc(p: np.ndarray) -> float:
        pos = p[is_cal & (y == 1)]
        return float(np.mean([auc(pos, p[is_cal & (kinds_a == k)]) for k in UNANSWERABLE_KINDS]))

    scored = []
    for name, names in FEATURE_SETS.items():
        result = fitted(names)
        scored.append((held_out_auc(result[-1]), -len(names), name, result))
        log(f"fit: {name}: held-out mean AUC {scored[-1][0]:.4f}")
    _, _, chosen, (mean, scale, weights, bias, p) = max(scored, key=lambda s: s[:2])
    names = FEATURE_SETS[chosen]
    cal_pos = np.sort(p[is_cal & (y == 1)])

    def held_out_p(share: float) -> float:
        """The held-out answerable questions' p at this quantile."""
        return float(cal_pos[int(math.floor(share * len(cal_pos)))])

    # Both just under their quantile's p: that question itself is neither gated nor doubted.
    threshold = math.nextafter(held_out_p(false_abstention), 0.0)
    doubt = max(threshold, math.floor(held_out_p(doubt_share) * 1e8) / 1e8)
    answered = [row["rules_abstained"] == 0.0 for row in rows]

    def split_figures(part: np.ndarray) -> dict:
        return figures(p[part], [k for k, c in zip(kinds, part) if c], threshold, doubt,
                       [a for a, c in zip(answered, part) if c])

    metrics = {
        "held_out": split_figures(is_cal),
        "training": split_figures(~is_cal),
        "feature_set_held_out_mean_auc": {name: round(a, 4) for a, _, name, _ in scored},
        "feature_set": chosen,
    }
    log(f"fit: kept {chosen}; threshold {threshold:.4f} for {false_abstention:.0%} held-out false abstention; "
        f"held out {metrics['held_out']}")
    data = {"format": C.FORMAT, "features": list(names), "mean": _r(mean), "scale": _r(scale),
            "weights": _r(weights), "bias": round(float(bias), 8), "threshold": threshold, "doubt": doubt}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    manifest = {
        "weights_file": out.name,
        "weights_sha256": sha256(out),
        "format": C.FORMAT,
        "features": list(names),
        "candidates_read": C.CANDIDATES,
        "reader_weights_sha256": sha256(Path(C.MODELS_DIR / "reader-v1.json")),
        "data": {
            "squad_file_sha256": squad.file_sha256(),
            "records_sha256": hashlib.sha256(gzip.open(records_path).read()).hexdigest(),
            "records": "rag.train_answer.prepare: corpus articles 40-63, out of corpus 64-103, plus answer-removed copies",
            "split": "rag.train_answer.split_rule: articles 40-57 and 64-91 fit, 58-63 and 92-103 held out",
            "split_rule": "articles sorted by sha256(title); 0-39 never read",
            "questions": {k: int(sum(1 for x in kinds if x == k)) for k in sorted(set(kinds))},
        },
        "threshold_rule": f"lowest held-out answerable p at the {false_abstention:.0%} quantile",
        "false_abstention_target": false_abstention,
        "doubt_rule": f"held-out answerable p at the {doubt_share:.0%} quantile",
        "doubt_share": doubt_share,
        "metrics": metrics,
        "signal_ms_per_question": round(1000 * signal_seconds / max(len(rows), 1), 2),
        "training_seconds": round(time.time() - t0, 1),
    }
    manifest_path(out).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    np.savez_compressed(cache / "calibration-signals.npz", names=np.asarray(C.FEATURES),
                        x=np.asarray([[row[f] for f in C.FEATURES] for row in rows]), kinds=kinds_a, calibration=is_cal,
                        reachable=reachable, weight=w,
                        logits=np.asarray([np.pad(v, (0, READ_CANDIDATES - len(v)), constant_values=np.nan) for v in all_logits]))
    log(f"wrote {out} ({out.stat().st_size:,} bytes) and its manifest in {time.time() - t0:.0f} s")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag.train_calibration",
        description="Refit the default answer's probability of being answerable (rag/models/calibration-v1.json) "
                    "on SQuAD training articles 40-103 over the shipped reading model. Deterministic.",
    )
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/learned"),
                        help="rag.train_answer's cache (corpus, index, records); built when missing")
    parser.add_argument("--out", type=Path, default=C.DEFAULT_WEIGHTS)
    add_false_abstention(parser, FALSE_ABSTENTION)
    parser.add_argument("--doubt-share", type=share_in_0_1, default=DOUBT_SHARE, metavar="SHARE",
                        help="share of held-out answerable questions under the doubt level, whose answers "
                             f"carry the note that the passages may not answer (default {DOUBT_SHARE})")
    args = parser.parse_args(argv)
    run_unsalted("rag.train_calibration", argv)
    train(args.cache, args.out, args.false_abstention, args.doubt_share)
    return 0


if __name__ == "__main__":
    sys.exit(main())

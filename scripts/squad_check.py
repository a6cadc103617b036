"""Check the answer stage on SQuAD evaluation articles (0-19), never used in training.

    PYTHONPATH=$PWD .venv/bin/python scripts/squad_check.py [--cache DIR] [--json OUT]

Corpus: SQuAD articles 0-19 (the evaluation corpus of the shared split),
indexed with the product. Questions: 20 answerable per article (a hashed
sample), 5 out-of-corpus per article 20-39 (their article is not in the
corpus), and up to 5 near misses per article made from other questions of
articles 0-19 by the same generator as training (rag/squad.py near_misses:
one name, year or number swapped for another of the article). These
generated near misses stand in until eval/squad/ holds hand-checked ones;
they are noisier than hand-written ones.

Every question goes through `RAG.ask` twice: with the learned answer stage
(the shipped weights) and with the hand-set rules, and the script prints both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag import squad  # noqa: E402
from rag.train_answer import roc_auc  # noqa: E402


def questions() -> list[squad.SquadQuestion]:
    out = []
    corpus = squad.articles(0, 20)
    for a in corpus:
        answerable = squad.sample_questions(a, 20, salt="eval")
        out += answerable
        taken = {q.question for q in answerable}
        others = [q for q in squad.sample_questions(a, 400, salt="eval-near") if q.question not in taken]
        out += squad.near_misses(a, others, 5)
    for a in squad.articles(20, 40):
        out += squad.sample_questions(a, 5, kind="out_of_corpus", salt="eval")
    return out


def set_questions(folder: Path) -> list[tuple[squad.SquadQuestion, list[str]]]:
    """eval/squad/'s question file (questions.jsonl: answers, kind, history) as (question, history)."""
    out = []
    for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            kind = d.get("kind", "answerable" if d.get("answerable", True) else "near_miss")
            kind = "answerable" if kind not in ("near_miss", "out_of_corpus") else kind
            q = squad.SquadQuestion(d["id"], d["question"], tuple(d.get("answers", ())), kind, "")
            out.append((q, list(d.get("history", []))))
    return out


def measure(r, qs, use_model: bool) -> dict:
    r = r.with_settings(answer_stage="learned" if use_model else "rules")
    rows = []
    t0 = time.time()
    for item in qs:
        q, history = item if isinstance(item, tuple) else (item, [])
        answer = r.ask(q.question, history=history or None)
        # The answerability score for the ROC curve: the model's p, or for the
        # rules the best sentence score they threshold.
        if use_model:
            p = answer.answerable
        else:
            query = r.search_query(q.question, history or None)
            vector = r.embedder.embed([query])[0]
            evidence = r.scorer.score(query, vector, answer.hits, r.settings.answer.sentence_dense_weight).items
            p = evidence[0].score if evidence else 0.0
        rows.append({
            "kind": q.kind,
            "question": q.question,
            "abstained": answer.abstained,
            "contains_gold": bool(q.answers) and not answer.abstained and squad.contains_answer(answer.text, q.answers),
            "words": len(answer.text.split()),
            "score": p,
        })
    seconds = time.time() - t0
    return summarise(rows) | {"seconds_per_question": round(seconds / len(qs), 4), "rows": rows}


def summarise(rows) -> dict:
    def of(kind):
        return [x for x in rows if x["kind"] == kind]

    ans, nm, ooc = of("answerable"), of("near_miss"), of("out_of_corpus")
    answered = [x for x in ans if not x["abstained"]]
    pos = [x["score"] for x in ans]
    return {
        "answerable": len(ans), "near_miss": len(nm), "out_of_corpus": len(ooc),
        "contains_gold": round(np.mean([x["contains_gold"] for x in ans]), 4),
        "answer_words": round(np.mean([x["words"] for x in answered]), 2) if answered else None,
        "false_abstention": round(np.mean([x["abstained"] for x in ans]), 4),
        "abstention_out_of_corpus": round(np.mean([x["abstained"] for x in ooc]), 4),
        "abstention_near_miss": round(np.mean([x["abstained"] for x in nm]), 4),
        "auc_near_miss": round(roc_auc(pos, [x["score"] for x in nm]), 4),
        "auc_out_of_corpus": round(roc_auc(pos, [x["score"] for x in ooc]), 4),
    }


def trade_off(rows, points=(0.01, 0.02, 0.03, 0.05, 0.08, 0.10, 0.15)) -> list[dict]:
    """Abstention on the unanswerable kinds at thresholds set for each false-abstention rate."""
    pos = np.sort([x["score"] for x in rows if x["kind"] == "answerable"])
    out = []
    for rate in points:
        t = pos[int(rate * len(pos))]
        out.append({
            "false_abstention": rate,
            "near_miss": round(np.mean([x["score"] < t for x in rows if x["kind"] == "near_miss"]), 3),
            "out_of_corpus": round(np.mean([x["score"] < t for x in rows if x["kind"] == "out_of_corpus"]), 3),
        })
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/learned"))
    parser.add_argument("--json", type=Path, help="write the figures and per-question rows here")
    parser.add_argument("--set", type=Path, help="a folder like eval/squad/ (corpus/ and questions.jsonl) to use instead")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.core import RAG

    if args.set:
        corpus, index = args.set / "corpus", args.cache / "set-index"
        qs = set_questions(args.set)
    else:
        corpus, index = args.cache / "eval-corpus", args.cache / "eval-index"
        squad.write_corpus(corpus, list(enumerate(squad.articles(0, 20))))
        qs = questions()
    r = RAG.load(corpus, index, progress=True).with_settings(query_cache_size=4096, answer_stage="learned")
    print(f"{len(qs)} questions", file=sys.stderr)
    result = {}
    for name, use in (("learned", True), ("rules", False)):
        result[name] = measure(r, qs, use)
        result[name]["trade_off"] = trade_off(result[name]["rows"])
        print(name, json.dumps({k: v for k, v in result[name].items() if k != "rows"}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

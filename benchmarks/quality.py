"""Retrieval and answer quality on a question set, as the README reports them.

    python benchmarks/quality.py retrieval [--questions FILE]
    python benchmarks/quality.py answers [--thresholds 0.3 0.36 0.5] [--questions FILE]

`retrieval`: hit@1, hit@3 and MRR (a hit is a passage from an article that
answers the question) and fact@1 (the first passage holds a key fact), per
retrieval mode. `answers`: for each abstention threshold, how many answerable
questions abstain, how many unanswerable ones are answered, fact recall and
citation precision. Questions use the JSON Lines format of eval/questions.jsonl.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_DASHES = re.compile(r"\s*[\u2010-\u2015-]\s*")


def norm(text: str) -> str:
    return _DASHES.sub("-", text.lower())


def covered(groups: list[list[str]], text: str) -> list[bool]:
    return [any(norm(alt) in norm(text) for alt in group) for group in groups]


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def retrieval(r, questions: list[dict]) -> None:
    answerable = [q for q in questions if q.get("answerable", True)]
    print(f"{'mode':8} {'hit@1':>6} {'hit@3':>6} {'MRR':>6} {'fact@1':>7}   ({len(answerable)} answerable questions)")
    for mode in ("dense", "bm25", "hybrid"):
        ranks, facts = [], []
        for q in answerable:
            text = " ".join([*q.get("history", []), q["question"]])
            hits = r.retrieve(text, k=5, mode=mode)
            ranks.append(next((i for i, h in enumerate(hits, 1) if h.article_id in q["articles"]), None))
            facts.append(bool(hits) and bool(q["facts"]) and covered(q["facts"][:1], hits[0].text)[0])
        n = len(answerable)
        print(f"{mode:8} {sum(r == 1 for r in ranks) / n:6.3f} {sum(r is not None and r <= 3 for r in ranks) / n:6.3f} "
              f"{sum(1 / r for r in ranks if r) / n:6.3f} {sum(facts) / n:7.3f}")


def answers(r, questions: list[dict], thresholds: list[float]) -> None:
    base = r.settings
    print(f"{'threshold':>9}  {'answerable abstained':>21}  {'unanswerable answered':>22}  {'fact recall':>11}  {'cit. precision':>14}")
    for t in thresholds:
        r.settings = base.replace(abstain_below=t)
        false_abstain = answered = n_ans = n_un = 0
        recall, precision = [], []
        for q in questions:
            a = r.ask(q["question"], history=q.get("history"))
            if q.get("answerable", True):
                n_ans += 1
                false_abstain += a.abstained
                groups = q["facts"]
                recall.append(0.0 if a.abstained or not groups else sum(covered(groups, a.text)) / len(groups))
                precision += [c.article_id in q["articles"] for c in a.citations]
            else:
                n_un += 1
                answered += not a.abstained
        print(f"{t:9.2f}  {false_abstain:>13}/{n_ans:<3} ({false_abstain / n_ans:4.1%})  {answered:>14}/{n_un:<3} "
              f"({answered / n_un:4.0%})  {statistics.mean(recall):11.3f}  {statistics.mean(precision) if precision else 0:14.3f}")
    r.settings = base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("retrieval", "answers"))
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl", metavar="FILE")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.30, 0.34, 0.36, 0.40, 0.45, 0.50])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus", metavar="DIR")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from rag import RAG, Settings

    with tempfile.TemporaryDirectory() as index:
        r = RAG.load(args.corpus, index, settings=Settings(query_cache_size=0))
        questions = load_questions(args.questions)
        retrieval(r, questions) if args.what == "retrieval" else answers(r, questions, args.thresholds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

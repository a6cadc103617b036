"""Tuning sweeps over a question set, on top of `rag.evaluate` (`rag eval`
gives the full evaluation; this script varies settings it does not expose).

    python benchmarks/quality.py retrieval [--questions FILE]
    python benchmarks/quality.py answers [--thresholds 0.3 0.36 0.5] [--questions FILE]
    python benchmarks/quality.py defaults

`retrieval`: hit@1, hit@3, hit@5 and MRR per retrieval mode. `answers`: for
each abstention threshold, the false abstention rate, the share of
unanswerable questions answered, fact recall and citation precision.
`defaults`: the retrieval settings (hybrid weighted at several dense
weights, hybrid RRF, dense, BM25) on both of the project's question sets,
eval/questions.jsonl (hit@1, MRR) and eval/squad (passage-answer@1 and @5),
and their average, so that a default is chosen on both corpora, not one;
about 3 minutes here (2 cores), most of it the two index builds.
The metrics are those of `rag eval` (README, Evaluation).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("retrieval", "answers", "defaults"))
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl", metavar="FILE")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.30, 0.34, 0.36, 0.40, 0.45, 0.50])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus", metavar="DIR")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from rag import RAG, Settings
    from rag.evalset import load_questions
    from rag.evaluate import evaluate, for_evaluation, retrieval_only

    if args.what == "defaults":
        return defaults()
    with tempfile.TemporaryDirectory() as index:
        r = RAG.load(args.corpus, index, settings=Settings(query_cache_size=0))
        questions = load_questions(args.questions, {a.id for a in r.articles})
        if args.what == "retrieval":
            print(f"{'mode':8} {'hit@1':>6} {'hit@3':>6} {'hit@5':>6} {'MRR':>6}")
            for mode in ("dense", "bm25", "hybrid"):
                m = retrieval_only(r, questions, mode)
                print(f"{mode:8} {m['hit@1']:6.3f} {m['hit@3']:6.3f} {m['hit@5']:6.3f} {m['mrr']:6.3f}")
            return 0
        n_ans = sum(q.answerable for q in questions)
        n_un = len(questions) - n_ans
        print(f"{'threshold':>9}  {'answerable abstained':>21}  {'unanswerable answered':>22}  {'fact recall':>11}  {'cit. precision':>14}")
        for t in args.thresholds:
            m = evaluate(for_evaluation(r, abstain_below=t), questions, answer_mode="extractive").metrics
            false_abstain = round((m["false_abstention_rate"] or 0) * n_ans)
            answered = round((1 - (m["abstention_accuracy"] or 0)) * n_un)
            print(f"{t:9.2f}  {false_abstain:>13}/{n_ans:<3} ({false_abstain / max(n_ans, 1):4.1%})  {answered:>14}/{n_un:<3} "
                  f"({answered / max(n_un, 1):4.0%})  {m['fact_recall'] or 0:11.3f}  {m['citation_precision'] or 0:14.3f}")
    return 0


# (label, retrieval mode, settings changed); the first weighted one is the product's default.
CONFIGS = (
    *((f"hybrid, weighted, dense_weight {w}", "hybrid", {"fusion": "weighted", "dense_weight": w}) for w in (0.6, 0.4, 0.5, 0.7)),
    ("hybrid, RRF (k 60)", "hybrid", {"fusion": "rrf"}),
    ("dense", "dense", {}),
    ("BM25", "bm25", {}),
)


def defaults() -> int:
    """Each retrieval configuration on both question sets; a Markdown table."""
    from rag import RAG, Settings
    from rag.evalset import load_questions
    from rag.evaluate import retrieval_only

    sets = {"five": (ROOT / "corpus", ROOT / "eval" / "questions.jsonl"),
            "squad": (ROOT / "eval" / "squad" / "corpus", ROOT / "eval" / "squad" / "questions.jsonl")}
    figures: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (corpus, path) in sets.items():
            r = RAG.load(corpus, Path(tmp) / name, settings=Settings(query_cache_size=0))
            questions = load_questions(path, {a.id for a in r.articles})
            for label, mode, changes in CONFIGS:
                figures.setdefault(label, {})[name] = retrieval_only(r, questions, mode, **changes)
    print("| retrieval | five articles hit@1 | MRR | SQuAD passage-answer@1 | @5 | mean of hit@1 and passage-answer@1 | mean of all four |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, by_set in figures.items():
        five, squad = by_set["five"], by_set["squad"]
        cells = [five["hit@1"], five["mrr"], squad["passage_answer@1"], squad["passage_answer@5"]]
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in cells)
              + f" | {(cells[0] + cells[2]) / 2:.3f} | {sum(cells) / 4:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

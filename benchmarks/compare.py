"""Warm retrieve and ask of two checkouts of this product, interleaved in one run.

    .venv/bin/python benchmarks/compare.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 3]

A refactor must not slow the product: each round runs every checkout in its
own process (its code first on sys.path, its own index, the query cache off),
200 warm `retrieve` and 200 warm extractive `ask` over eval/questions.jsonl,
and prints the medians and p95s; rounds alternate the order so that machine
noise falls on both alike. `git worktree add /tmp/old <commit>` makes an old
checkout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run_child  # noqa: E402

CHILD = r'''
import json, os, sys, time
root, index, corpus, questions = sys.argv[1:5]
sys.path.insert(0, root)
from rag import RAG, Settings
qs = [json.loads(l)["question"] for l in open(questions, encoding="utf-8") if l.strip()]
r = RAG.load(corpus, index, settings=Settings(query_cache_size=0))
for q in qs[:10]:
    r.ask(q)
out = {}
for name, call in (("retrieve", lambda q: r.retrieve(q, k=5)), ("ask", lambda q: r.ask(q, k=5))):
    ms = []
    for i in range(200):
        t = time.perf_counter(); call(qs[i % len(qs)]); ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    out[name] = {"p50_ms": ms[len(ms) // 2], "p95_ms": ms[int(0.95 * len(ms))]}
print(json.dumps(out))
'''


def measure(root: Path, index: Path) -> dict:
    return run_child(f"compare: {root}", CHILD, [str(root), str(index), str(ROOT / "corpus"), str(ROOT / "eval" / "questions.jsonl")], root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="a checkout of the product before the change")
    parser.add_argument("new", type=Path, help="a checkout after it")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating the order (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-compare-") as tmp:
        rows = []
        for n in range(args.rounds):
            order = [args.old, args.new] if n % 2 == 0 else [args.new, args.old]
            for root in order:
                figures = measure(root, Path(tmp) / ("old" if root == args.old else "new"))
                rows.append((n + 1, "old" if root == args.old else "new", figures))
                print(f"round {n + 1} {rows[-1][1]}: retrieve p50 {figures['retrieve']['p50_ms']:.2f} ms "
                      f"(p95 {figures['retrieve']['p95_ms']:.2f}), ask p50 {figures['ask']['p50_ms']:.2f} ms "
                      f"(p95 {figures['ask']['p95_ms']:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

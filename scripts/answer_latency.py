"""Warm latency of the answer stages: p50 of `retrieve` and of `ask` with the
rules and with the learned stage, on a question set, query cache off.

    PYTHONPATH=$PWD .venv/bin/python scripts/answer_latency.py [eval/questions.jsonl] [--corpus DIR --index DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="?", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--index", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.core import RAG
    from rag.trace import NO_TRACE, Trace

    base = RAG.load(args.corpus, args.index).with_settings(query_cache_size=0)
    stages = {"rules": base,  # with the calibrated probability (rag/calibration.py), as by default
              "rules, no p": base.with_settings(answer_probability=False),
              "learned": base.with_settings(answer_stage="learned"),
              "reader": base.with_settings(reader_gate=True)}  # the rules plus the reading model's gate
    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    for q in questions[:5]:  # warm: the model, the word memo of the sentences reached
        for r in stages.values():
            r.ask(q)
    times: dict[str, list[float]] = {"retrieve": [], **{f"ask {name}": [] for name in stages}}
    probability_stage: list[float] = []  # the calibrated probability's own stage inside "ask rules"
    for _ in range(args.repeats):
        for q in questions:
            trace = Trace()
            calls = [("retrieve", lambda: base.retrieve(q))]
            calls += [(f"ask {name}", lambda r=r, name=name: r.ask(q, trace=trace if name == "rules" else NO_TRACE))
                      for name, r in stages.items()]
            for name, call in calls:
                t = time.perf_counter()
                call()
                times[name].append(1000 * (time.perf_counter() - t))
            probability_stage.append(1000 * trace.seconds().get("answerable", 0.0))
    p50 = {name: statistics.median(v) for name, v in times.items()}
    p95 = {name: sorted(v)[int(0.95 * (len(v) - 1))] for name, v in times.items()}
    for name, v in p50.items():
        print(f"{name:17s} p50 {v:6.1f} ms   p95 {p95[name]:6.1f} ms   ({v / p50['retrieve']:.2f}x retrieve)")
    stage = sorted(probability_stage)
    print(f"the probability's stage within ask rules: p50 {statistics.median(stage):.2f} ms, "
          f"p95 {stage[int(0.95 * (len(stage) - 1))]:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

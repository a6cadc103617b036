"""The capped BM25 of the postgres backend against reading every posting, on
indexes benchmarks/pg_scale.py built (schemas bench_<n> of a server kept up).

    .venv/bin/python benchmarks/pg_hybrid.py --dsn postgresql://... --sizes 10000,100000,1000000

Per size and query (pg_scale.py's queries: the questions of
eval/questions.jsonl, then phrases cut from corpus sentences, embedded for
real), the two are run one after the other, so a load that comes and goes on
a shared machine falls on both alike:
  * capped: PostgresConfig's defaults (bm25_cap postings per word, best impact
    first, then the proof; a query it cannot prove exact runs again over every
    posting, and its time includes both statements);
  * every posting: bm25_cap=0 (the statement before the cap).
Reported: p50/p95 of both in hybrid and BM25-only mode, how many queries the
cap proved, and how many fused top-k lists (chunk ids in order) differ from
the uncapped one's, with the recall@k of the capped list against it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import percentile  # noqa: E402
from pg_scale import queries  # noqa: E402

K = 10


def stats(times: list[float]) -> dict:
    return {"p50_ms": round(percentile(times, 50), 2), "p95_ms": round(percentile(times, 95), 2)}


def run_size(n: int, args, query_texts, query_vectors) -> dict:
    from rag.postgres import PostgresBackend, PostgresConfig
    from rag.settings import Settings

    settings = Settings()
    schema = f"bench_{n}"
    out: dict = {"chunks": n, "queries": len(query_texts)}
    capped = PostgresBackend.connect(PostgresConfig(dsn=args.dsn, schema=schema, **args.overrides), settings)
    full = PostgresBackend.connect(PostgresConfig(dsn=args.dsn, schema=schema, bm25_cap=0), settings)
    try:
        for mode in ("hybrid", "bm25"):
            times = {"capped": [], "full": []}
            differ = 0
            recalls = []
            before = capped.bm25_capped
            for i, (t, v) in enumerate(zip(query_texts, query_vectors)):
                if i < 3:  # warm-up: plans, pages
                    capped.search(t, v, K, None, mode), full.search(t, v, K, None, mode)
                got = {}
                for name, backend in (("capped", capped), ("full", full)):
                    started = time.perf_counter()
                    got[name] = [s.chunk.id for s in backend.search(t, v, K, None, mode)]
                    times[name].append((time.perf_counter() - started) * 1000)
                if got["capped"] != got["full"]:
                    differ += 1
                recalls.append(len(set(got["capped"]) & set(got["full"])) / max(len(got["full"]), 1))
            proven = capped.bm25_capped - before
            out[mode] = {"capped": stats(times["capped"]), "every_posting": stats(times["full"]),
                         "proven": proven, "differ": differ, f"recall@{K}": round(sum(recalls) / len(recalls), 4)}
            print(f"[{n}] {mode}: {out[mode]}", file=sys.stderr, flush=True)
    finally:
        capped.close()
        full.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="the server pg_scale.py built its schemas bench_<n> on")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap", type=int, help="bm25_cap (default: PostgresConfig's)")
    parser.add_argument("--rescore", type=int, help="bm25_rescore (default: PostgresConfig's)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pg_hybrid.json"))
    args = parser.parse_args(argv)
    args.overrides = {k: v for k, v in (("bm25_cap", args.cap), ("bm25_rescore", args.rescore)) if v is not None}

    from rag.embedding import make_embedder
    from synth import load_sentences

    source = load_sentences(ROOT / "corpus")
    query_texts, query_vectors = queries(make_embedder("all-MiniLM-L6-v2"), source, args.queries, args.seed)
    data = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "overrides": args.overrides, "sizes": []}
    for n in (int(x) for x in args.sizes.split(",")):
        data["sizes"].append(run_size(n, args, query_texts, query_vectors))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

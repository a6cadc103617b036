"""The capped BM25 of the postgres backend against reading every posting, on
indexes benchmarks/pg_scale.py built (schemas bench_<n> of a server kept up).

    .venv/bin/python benchmarks/pg_hybrid.py --dsn postgresql://... --sizes 10000,100000,1000000

Per size and query (pg_scale.py's queries: the questions of
eval/questions.jsonl, then phrases cut from corpus sentences, embedded for
real), the two are run one after the other, so a load that comes and goes on
a shared machine falls on both alike:
  * exact: PostgresConfig's defaults (bm25_cap postings per word, best impact
    first, then the proof; a query it cannot prove exact runs again over every
    posting, and its time includes both statements);
  * approximate: the same capped read, kept even when unproven (bm25_exact=False);
  * every_posting: bm25_cap=0 (the statement before the cap).
Reported per mode (hybrid, BM25 alone): p50/p95, how many queries the cap
proved, and against every_posting's top-k (chunk ids in order): how many lists
differ, how many keep the same first chunk, recall@k.
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
    backends = {
        "exact": PostgresBackend.connect(PostgresConfig(dsn=args.dsn, schema=schema, **args.overrides), settings),
        "approximate": PostgresBackend.connect(PostgresConfig(dsn=args.dsn, schema=schema, bm25_exact=False, **args.overrides), settings),
        "every_posting": PostgresBackend.connect(PostgresConfig(dsn=args.dsn, schema=schema, bm25_cap=0), settings),
    }
    try:
        for mode in ("hybrid", "bm25"):
            times: dict[str, list[float]] = {name: [] for name in backends}
            differ = {name: 0 for name in backends}
            recalls: dict[str, list[float]] = {name: [] for name in backends}
            top1 = {name: 0 for name in backends}
            before = backends["exact"].bm25_capped
            for i, (t, v) in enumerate(zip(query_texts, query_vectors)):
                if i < 3:  # warm-up: plans, pages
                    for b in backends.values():
                        b.search(t, v, K, None, mode)
                got = {}
                for name, backend in backends.items():
                    started = time.perf_counter()
                    got[name] = [s.chunk.id for s in backend.search(t, v, K, None, mode)]
                    times[name].append((time.perf_counter() - started) * 1000)
                want = got["every_posting"]
                for name in backends:
                    differ[name] += got[name] != want
                    top1[name] += got[name][:1] == want[:1]
                    recalls[name].append(len(set(got[name]) & set(want)) / max(len(want), 1))
            out[mode] = {name: {**stats(times[name]), "lists_differ": differ[name], "top1_same": top1[name],
                                f"recall@{K}": round(sum(recalls[name]) / len(recalls[name]), 4)} for name in backends}
            out[mode]["proven"] = backends["exact"].bm25_capped - before
            print(f"[{n}] {mode}: {out[mode]}", file=sys.stderr, flush=True)
    finally:
        for b in backends.values():
            b.close()
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

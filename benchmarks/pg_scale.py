"""The postgres backend at 10k and 100k chunks, against the local backend in the same run.

    .venv/bin/python benchmarks/pg_scale.py                         # 10k and 100k (about 15 minutes here)
    .venv/bin/python benchmarks/pg_scale.py --sizes 10000 --quick   # a smoke run
    .venv/bin/python benchmarks/pg_scale.py --dsn postgresql://...  # a server of your own (else one is started)

Data, as benchmarks/scale.py makes it: passages of synthetic articles made of
the corpus's real sentences (benchmarks/synth.py), with DERIVED vectors (the
normalised mean of the real all-MiniLM-L6-v2 vectors of the sentences each
passage holds, plus Gaussian noise of norm 0.45, scale.py's calibration);
embedding 100k passages for real would take about half an hour here. The
sentences keep their real vectors. Queries: the questions of
eval/questions.jsonl and phrases cut from corpus sentences, embedded for real.

Measured per size:
  * build: the postgres backend's full build (rag.postgres.load_rows: COPY,
    then the HNSW, GIN and postings indexes, in one transaction), and the
    local backend's FAISS (`auto` spec) + bm25s build;
  * query latency p50/p95, one query at a time: postgres dense at each
    hnsw.ef_search of --ef, postgres hybrid (dense + BM25 + fusion in one
    statement), local dense and local hybrid (FAISS + bm25s + rag.fusion);
  * recall@10 of the dense side against exact search (a row counts when its
    exact cosine reaches the 10th neighbour's, less 1e-5);
  * RSS of this process after the local indexes are loaded, and the server's
    table and index sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import percentile  # noqa: E402

K = 10
TIE_EPS = 1e-5
SIGMA = 0.45  # scale.py's calibrated noise (README, "Scale")


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def queries(embedder, source, n: int, seed: int):
    import numpy as np

    texts = []
    for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            texts.append(" ".join([*item.get("history", []), item["question"]]))
    texts = texts[:n]
    rng = np.random.default_rng(seed + 1)
    for i in rng.choice(len(source.texts), size=max(0, n - len(texts)), replace=True):
        words = source.texts[int(i)].split()
        texts.append(" ".join(words[: int(rng.integers(6, 15))]))
    return texts, embedder.embed(texts)


def dataset(source, sentence_vectors, n: int, seed: int, with_sentences: bool = True):
    """Rows for the postgres loader and texts + vectors for the local indexes."""
    import numpy as np

    from rag.indexer import _embed_hash
    from rag.postgres import ArticleRows
    from rag.sparse import tokenize
    from rag.store import ChunkRecord, SentenceRecord
    from rag.types import Article
    from scale import derived_vectors
    from synth import passages

    items = list(passages(source, n, seed, "fast"))
    texts = [p.text for p in items]
    offsets = np.cumsum([0] + [len(p.sentences) for p in items])
    meta = {"article": np.array([p.article for p in items]), "offsets": offsets,
            "ids": np.array([i for p in items for i in p.sentences], dtype=np.int64),
            "title": np.array([p.title_source for p in items], dtype=np.int64)}
    vectors = derived_vectors(meta, sentence_vectors, SIGMA, seed + n)
    tokens = tokenize(texts)
    by_article: dict[int, list[int]] = {}
    for i, p in enumerate(items):
        by_article.setdefault(p.article, []).append(i)
    rows, chunk_order, sentence_vectors_out = [], [], []
    for number, members in by_article.items():
        aid = f"synth_{number:07d}"
        article = Article(aid, f"synthetic article {number}", None, None, None, f"{aid}.txt", "\n".join(texts[i] for i in members))
        chunks, pos = [], 0
        for position, i in enumerate(members):
            chunks.append(ChunkRecord(f"{aid}#{position}", aid, position, pos, pos + len(texts[i]), 120, _embed_hash("derived", texts[i])))
            pos += len(texts[i]) + 1
        # Without sentences (--no-sentences): the chunk side only, as search
        # reads it; at 1M the sentences' vectors and words took 10 GB here.
        sentence_ids = sorted({s for i in members for s in items[i].sentences}) if with_sentences else []
        sentences = [SentenceRecord(aid, s, s + 1, _embed_hash("derived", source.texts[s])) for s in sentence_ids]
        words = [sorted(set(w)) for w in tokenize([source.texts[s] for s in sentence_ids])] if sentence_ids else []
        rows.append(ArticleRows(article, chunks, [texts[i] for i in members], [tokens[i] for i in members], sentences,
                                [source.texts[s] for s in sentence_ids], words))
        chunk_order.extend(members)
        sentence_vectors_out.append(sentence_vectors[sentence_ids])
    sentences_out = np.vstack(sentence_vectors_out) if with_sentences else np.zeros((0, sentence_vectors.shape[1]), np.float32)
    return rows, texts, vectors, np.asarray(chunk_order), sentences_out


def timed(fn, items) -> tuple[dict, list]:
    times, results = [], []
    for item in items[:5]:
        fn(*item)  # warm-up: plans, caches, pages
    for item in items:
        started = time.perf_counter()
        results.append(fn(*item))
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(percentile(times, 50), 2), "p95_ms": round(percentile(times, 95), 2)}, results


def recall(vectors, query_vectors, rows_per_query, truth_scores) -> float:
    import numpy as np

    hits = []
    for q, rows, kth in zip(query_vectors, rows_per_query, truth_scores[:, K - 1]):
        rows = [r for r in rows if r >= 0][:K]
        scores = vectors[rows] @ q if rows else np.zeros(0)
        hits.append(float(np.sum(scores >= kth - TIE_EPS)) / K)
    return round(float(np.mean(hits)), 4)


def run_size(n: int, args, server_dsn: str, source, sentence_vectors, query_texts, query_vectors) -> dict:
    import numpy as np

    from rag.dense import DenseIndex, choose_spec
    from rag.fusion import weighted
    from rag.postgres import PostgresBackend, PostgresConfig, load_rows
    from rag.settings import Settings
    from rag.sparse import SparseIndex
    from scale import exact_top

    settings = Settings()
    out: dict = {"chunks": n}
    started = time.perf_counter()
    rows, texts, vectors, order, sent_vecs = dataset(source, sentence_vectors, n, args.seed, args.sentences)
    out["data_seconds"] = round(time.perf_counter() - started, 1)
    out["articles"], out["sentences"] = len(rows), len(sent_vecs)
    # The loader numbers chunks in article order; row_of maps it back to the passage.
    chunk_vectors = vectors[order]
    schema = f"bench_{n}"
    config = PostgresConfig(dsn=server_dsn, schema=schema)
    note(f"[{n}] postgres build ...")
    started = time.perf_counter()
    load_rows(config, settings, "derived", vectors.shape[1], rows, chunk_vectors, sent_vecs)
    out["postgres_build_seconds"] = round(time.perf_counter() - started, 1)
    note(f"[{n}] postgres build: {out['postgres_build_seconds']} s")
    truth_rows, truth_scores = exact_top(np.ascontiguousarray(vectors), query_vectors, K)
    id_to_row = {}
    for r in rows:
        for c in r.chunks:
            id_to_row[c.id] = len(id_to_row)
    passage_of = order  # loader row i (article order) -> passage row

    import faiss

    faiss.omp_set_num_threads(1)  # one query per call on one thread, as the product searches
    items = [(t, v) for t, v in zip(query_texts, query_vectors)]
    pool = settings.retrieval.candidates

    def local_dense(t, v):
        return [r for r, _ in dense.search(v, K)]

    def local_hybrid(t, v):
        fused = weighted([dense.search(v, pool), sparse.search(t, pool)], [settings.retrieval.dense_weight, 1 - settings.retrieval.dense_weight])
        return [r for r, _ in fused[:K]]

    out["postgres_dense"] = {}
    for ef in args.ef:
        with PostgresBackend.connect(PostgresConfig(dsn=server_dsn, schema=schema, ef_search=ef), settings) as b:
            stats, got = timed(lambda t, v: [int(passage_of[id_to_row[s.chunk.id]]) for s in b.search(t, v, K, None, "dense")], items)
            stats["recall@10"] = recall(vectors, query_vectors, got, truth_scores)
            out["postgres_dense"][ef] = stats
            note(f"[{n}] postgres dense ef_search {ef}: {stats}")
    with PostgresBackend.connect(config, settings) as b:
        if args.fulltext:
            out["postgres_hybrid"], _ = timed(lambda t, v: b.search(t, v, K, None, "hybrid"), items)
            out["postgres_bm25"], _ = timed(lambda t, v: b.search(t, v, K, None, "bm25"), items)
            tsr = PostgresBackend.connect(PostgresConfig(dsn=server_dsn, schema=schema, fulltext="ts_rank"), settings)
            out["postgres_ts_rank"], _ = timed(lambda t, v: tsr.search(t, v, K, None, "bm25"), items)
            tsr.close()
        with b._primary.connection() as conn:
            out["postgres_sizes_mb"] = {name: round(size / 2**20) for name, size in conn.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
                "WHERE s.nspname = %s AND c.relkind = 'r' ORDER BY 2 DESC", (schema,)).fetchall()}
            out["postgres_hnsw_mb"] = round(conn.execute("SELECT pg_relation_size(%s::regclass)",
                                                         (f"{schema}.chunks_embedding_hnsw",)).fetchone()[0] / 2**20)
    note(f"[{n}] postgres side: {json.dumps(out)}")
    del rows, chunk_vectors, sent_vecs  # room for the local indexes
    note(f"[{n}] local build ...")
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # the build on every core, as `rag index` does
    rss_before = rss_mb()
    started = time.perf_counter()
    dense = DenseIndex.build(vectors, choose_spec("auto", n))
    sparse = SparseIndex.build(texts)
    out["local_build_seconds"] = round(time.perf_counter() - started, 1)
    out["local_index"] = dense.spec.describe()
    out["local_index_rss_mb"] = round(rss_mb() - rss_before, 0)
    faiss.omp_set_num_threads(1)

    out["local_dense"], got = timed(local_dense, items)
    out["local_dense"]["recall@10"] = recall(vectors, query_vectors, got, truth_scores)
    out["local_hybrid"], _ = timed(local_hybrid, items)
    out["process_rss_mb"] = round(rss_mb(), 0)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return out


def report(data: dict) -> str:
    lines = ["| chunks | backend | build | query | p50 | p95 | recall@10 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in data["sizes"]:
        n = f"{r['chunks'] // 1000}k"
        lines.append(f"| {n} | local ({r['local_index']}) + bm25s | {r['local_build_seconds']} s | dense | "
                     f"{r['local_dense']['p50_ms']} ms | {r['local_dense']['p95_ms']} ms | {r['local_dense']['recall@10']:.3f} |")
        lines.append(f"| {n} | local | | hybrid | {r['local_hybrid']['p50_ms']} ms | {r['local_hybrid']['p95_ms']} ms | |")
        for ef, s in r["postgres_dense"].items():
            lines.append(f"| {n} | postgres | {r['postgres_build_seconds']} s | dense, ef_search {ef} | {s['p50_ms']} ms | "
                         f"{s['p95_ms']} ms | {s['recall@10']:.3f} |")
        for what in ("hybrid", "bm25", "ts_rank"):
            if f"postgres_{what}" not in r:
                continue
            s = r[f"postgres_{what}"]
            lines.append(f"| {n} | postgres | | {what} | {s['p50_ms']} ms | {s['p95_ms']} ms | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts, comma-separated (default 10000,100000)")
    parser.add_argument("--ef", default="40,100,200,400", help="hnsw.ef_search values to sweep")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dsn", help="a server of your own (its schemas bench_<n> are replaced); default: start one")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "pg_scale.json"))
    parser.add_argument("--no-fulltext", dest="fulltext", action="store_false",
                        help="skip the hybrid, BM25 and ts_rank timings (at 1M they take seconds a query)")
    parser.add_argument("--no-sentences", dest="sentences", action="store_false",
                        help="load chunks only, no sentences (what search reads; at 1M the sentences need about 10 GB here)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 chunks, 30 queries, two ef values")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.ef = "2000", 30, "40,200"
    args.sizes = [int(x) for x in args.sizes.split(",")]
    args.ef = [int(x) for x in args.ef.split(",")]

    from rag.embedding import make_embedder
    from synth import load_sentences

    server = folder = None
    dsn = args.dsn
    if dsn is None:
        from tests.pg import PgServer, server_folder

        folder = server_folder("rag-pg-bench-")
        # Memory for the HNSW build and the hot pages of 100k chunks.
        server = PgServer.start(folder / "node", extra="-c shared_buffers=1GB -c maintenance_work_mem=1GB "
                                "-c max_parallel_maintenance_workers=2 -c effective_cache_size=2GB")
        dsn = server.dsn
    try:
        source = load_sentences(ROOT / "corpus")
        embedder = make_embedder("all-MiniLM-L6-v2")
        sentence_vectors = embedder.embed(list(source.texts))
        query_texts, query_vectors = queries(embedder, source, args.queries, args.seed)
        data = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
                "vectors": f"derived (sigma {SIGMA}), sentences real", "queries": len(query_texts), "sizes": []}
        for n in args.sizes:
            data["sizes"].append(run_size(n, args, dsn, source, sentence_vectors, query_texts, query_vectors))
            note(json.dumps(data["sizes"][-1]))
        data["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(data, indent=2))
    print(report(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())

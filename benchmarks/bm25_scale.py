"""BM25 top-k and record loading at 100k and 1M chunks: before and after, in one run.

    .venv/bin/python benchmarks/bm25_scale.py                                # 100000,1000000
    .venv/bin/python benchmarks/bm25_scale.py --sizes 100000 --rounds 1
    .venv/bin/python benchmarks/bm25_scale.py --quick                        # 5,000 chunks, smoke run

Passages are benchmarks/scale.py's (synth.py's synthetic articles of the
corpus's real sentences, the fast packer beyond 20,000 chunks); the passages
and the BM25 index of each size are kept in --cache (a million: 25 s of
passages and about 5 minutes of BM25 build on a busy machine), so a second
run only measures. Queries are scale.py's: the questions of
eval/questions.jsonl, then phrases of 6-14 words cut from corpus sentences.

BM25: bm25s's exhaustive scoring (every posting of every query term, the
product's path before) against MaxScore (rag/topk.py), interleaved query by
query over --rounds rounds, alternating which goes first, one thread.
recall@10 is MaxScore's against exact scoring (bm25s's full score of every
row): a returned row counts when its exact score is at least the exact
10th best's less 1e-5, so rows tied at the 10th score count as right.

Loading: chunk and sentence records made for the passages (one chunk record
per passage, one sentence record per distinct sentence of an article, as
the indexer makes them), written as format 2's JSON Lines and as the
columns of rag/records.py, then read back the way IndexStore.load and
LocalBackend read them (records, rows by article, the sentence index), each
in a fresh process; plus the sha256 of those files, which load checks.

Prints a table and writes JSON (default benchmarks/results/bm25_scale.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from measure import peak_rss_mb, percentile, write_json  # noqa: E402

K = 10
WARMUP = 10
TIE_EPS = 1e-5
DEFAULT_CACHE = ROOT / "benchmarks" / "results" / "cache" / "bm25_scale"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "bm25_scale.json"


def note(message: str) -> None:
    print(f"bm25_scale: {message}", file=sys.stderr, flush=True)


def _latency(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "max_ms": max(ms)}


def prepare(n: int, cache: Path, seed: int = 0) -> Path:
    """passages.jsonl ([article, [sentence ids], text] a line) and bm25/ for n chunks, made once."""
    from synth import load_sentences, passages

    from rag.sparse import SparseIndex

    folder = cache / str(n)
    folder.mkdir(parents=True, exist_ok=True)
    texts_path = folder / "passages.jsonl"
    if not texts_path.is_file():
        note(f"{n}: writing passages")
        source = load_sentences(ROOT / "corpus")
        tmp = texts_path.with_suffix(".partial")
        with tmp.open("w", encoding="utf-8") as f:
            for p in passages(source, n, seed, "chunker" if n <= 20_000 else "fast"):
                f.write(json.dumps([p.article, list(p.sentences), p.text], ensure_ascii=False) + "\n")
        tmp.rename(texts_path)
    if not (folder / "bm25" / "params.index.json").is_file():
        note(f"{n}: building BM25 (minutes at a million)")
        texts = [json.loads(line)[2] for line in texts_path.open(encoding="utf-8")]
        started = time.perf_counter()
        SparseIndex.build(texts).save(folder)
        (folder / "bm25_build.json").write_text(json.dumps({"seconds": time.perf_counter() - started}))
    return folder


def queries(seed: int = 0, total: int = 300) -> tuple[list[str], int]:
    import numpy as np

    from synth import load_sentences

    out = []
    for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            out.append(" ".join([*item.get("history", []), item["question"]]))
    n_questions = len(out)
    source = load_sentences(ROOT / "corpus")
    rng = np.random.default_rng(seed + 1)
    for i in rng.choice(len(source.texts), size=max(0, total - n_questions), replace=True):
        words = source.texts[int(i)].split()
        out.append(" ".join(words[: int(rng.integers(6, 15))]))
    return out, n_questions


def phase_bm25(p: dict) -> dict:
    import numpy as np

    from rag.sparse import SparseIndex, tokenize

    folder, n = Path(p["folder"]), p["n"]
    started = time.perf_counter()
    index = SparseIndex.load(folder, n, mmap=True)
    load_seconds = time.perf_counter() - started
    qs, n_questions = queries(total=p["queries"])
    methods = ("exhaustive", "maxscore")
    for q in qs[:WARMUP]:
        for m in methods:
            index.search(q, K, method=m)
    times = {m: [] for m in methods}
    found: dict[str, list] = {m: [] for m in methods}
    for r in range(p["rounds"]):
        for j, q in enumerate(qs):
            for m in (methods if (j + r) % 2 == 0 else methods[::-1]):
                t = time.perf_counter()
                res = index.search(q, K, method=m)
                times[m].append((time.perf_counter() - t) * 1000)
                if r == 0:
                    found[m].append(res)
    recalls, same_rows = [], 0
    for q, exact, pruned in zip(qs, found["exhaustive"], found["maxscore"]):
        tokens = tokenize([q])[0]
        if not exact:
            recalls.append(1.0 if not pruned else 0.0)
            continue
        full = index._bm25.get_scores(tokens)
        kth = float(np.sort(full)[-len(exact)])
        recalls.append(min(len(exact), sum(1 for row, _ in pruned if full[row] >= kth - TIE_EPS)) / len(exact))
        same_rows += {r for r, _ in exact} == {r for r, _ in pruned}
    return {"n": n, "load_seconds": load_seconds, "queries": len(qs), "questions": n_questions, "rounds": p["rounds"],
            "latency": {m: _latency(times[m]) for m in methods},
            "recall_at_10": float(np.mean(recalls)), "recall_min": float(np.min(recalls)),
            "same_rows_share": same_rows / max(1, sum(1 for e in found["exhaustive"] if e)),
            "peak_rss_mb": peak_rss_mb()}


def _records(folder: Path):
    """Chunk and sentence records for the passages, as the indexer would make them."""
    import hashlib

    from rag.types import ChunkRecord, SentenceRecord

    chunks, sentences = [], []
    seen: set[tuple[int, int]] = set()
    position, article_before, offset = 0, -1, 0
    for line in (folder / "passages.jsonl").open(encoding="utf-8"):
        article, held, text = json.loads(line)
        if article != article_before:
            position, article_before, offset = 0, article, 0
        article_id = f"{article:06d}_synthetic"
        digest = hashlib.sha256(text.encode()).hexdigest()
        chunks.append(ChunkRecord(f"{article_id}#{position}", article_id, position, offset, offset + len(text),
                                  len(text) // 4, digest))
        for s in held:
            if (article, s) not in seen:
                seen.add((article, s))
                sentences.append(SentenceRecord(article_id, offset + 10 * len(sentences) % 997, offset + 10 * len(sentences) % 997 + 80,
                                                hashlib.sha256(f"{digest}{s}".encode()).hexdigest()))
        position += 1
        offset += len(text)
    return chunks, sentences


def phase_write_records(p: dict) -> dict:
    from dataclasses import asdict

    from rag.records import RecordTable
    from rag.types import ChunkRecord, SentenceRecord

    folder = Path(p["folder"])
    out = folder / "records"
    out.mkdir(exist_ok=True)
    chunks, sentences = _records(folder)
    for name, kind, records in (("chunks", ChunkRecord, chunks), ("sentences", SentenceRecord, sentences)):
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:  # format 2, as store.py wrote it
            for r in records:
                f.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
        RecordTable.save(out / f"{name}.npz", kind, records)
    return {"chunks": len(chunks), "sentences": len(sentences),
            "mb": {f.name: f.stat().st_size / 1e6 for f in sorted(out.iterdir())}}


def phase_load_records(p: dict) -> dict:
    """Read the records as IndexStore.load (format 2 or 3) and LocalBackend do, timed by step."""
    import numpy as np

    from rag import store
    from rag.evidence import SentenceIndex
    from rag.records import RecordTable, rows_by
    from rag.types import ChunkRecord, SentenceRecord

    out = Path(p["folder"]) / "records"
    files = [out / f"chunks.{p['layout']}", out / f"sentences.{p['layout']}"]
    started = time.perf_counter()
    for f in files:
        store._sha256(f)
    sha_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if p["layout"] == "jsonl":
        chunks = store._read_records(files[0], ChunkRecord)
        sentences = store._read_records(files[1], SentenceRecord)
    else:
        chunks = RecordTable.load(files[0], ChunkRecord)
        sentences = RecordTable.load(files[1], SentenceRecord)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rows_by(chunks, "article_id")  # LocalBackend's rows by article
    SentenceIndex(sentences, np.zeros((len(sentences), 1), dtype=np.float32), {}, {})
    backend_seconds = time.perf_counter() - started
    row = len(chunks) // 2
    assert chunks[row].article_id and sentences[len(sentences) // 2].embed_hash
    return {"layout": p["layout"], "sha256_seconds": sha_seconds, "read_seconds": read_seconds,
            "backend_seconds": backend_seconds, "total_seconds": sha_seconds + read_seconds + backend_seconds,
            "peak_rss_mb": peak_rss_mb()}


PHASES = {"bm25": phase_bm25, "write-records": phase_write_records, "load-records": phase_load_records}


def run_phase(name: str, params: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = subprocess.run([sys.executable, __file__, "--phase", name, "--params", json.dumps(params)],
                            env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"bm25_scale: the {name} phase failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(data: dict) -> str:
    lines = [f"bm25_scale {data['date']}, {os.cpu_count()} cores, load average at start {data['load_average']}"]
    for d in data["sizes"]:
        b = d["bm25"]
        lines.append(f"\n== {d['n']:,} chunks: {b['queries']} queries ({b['questions']} questions), {b['rounds']} rounds ==")
        for m, lat in b["latency"].items():
            lines.append(f"  BM25 {m:<11} p50 {lat['p50_ms']:7.2f} ms  p95 {lat['p95_ms']:7.2f} ms  max {lat['max_ms']:7.2f} ms")
        lines.append(f"  MaxScore recall@10 against exact scoring {b['recall_at_10']:.4f} (min {b['recall_min']:.2f}); "
                     f"same rows as bm25s for {b['same_rows_share']:.1%} of queries")
        w = d["records"]
        lines.append(f"  records: {w['chunks']:,} chunks, {w['sentences']:,} sentences; "
                     + ", ".join(f"{k} {v:.0f} MB" for k, v in w["mb"].items()))
        for ld in d["load"]:
            lines.append(f"  load {ld['layout']:<5} sha256 {ld['sha256_seconds']:6.2f} s  read {ld['read_seconds']:6.2f} s  "
                         f"backend {ld['backend_seconds']:6.2f} s  total {ld['total_seconds']:6.2f} s  peak RSS {ld['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bm25_scale.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--sizes", default="100000,1000000", metavar="N,N", help="chunk counts (default: 100000,1000000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds over the queries (default: 3)")
    parser.add_argument("--queries", type=int, default=300, help="queries (default: 300)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, metavar="DIR",
                        help="where passages, BM25 indexes and records are kept between runs (default: benchmarks/results/cache/bm25_scale)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="OUT", help="where to write the JSON")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 chunks, 1 round, 30 queries")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(PHASES[args.phase](json.loads(args.params))))
        return 0
    try:
        sizes = [int(x.replace("_", "")) for x in ("5000" if args.quick else args.sizes).split(",") if x.strip()]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r} is not a comma-separated list of whole numbers, e.g. 100000,1000000")
    if any(n < 1000 for n in sizes) or args.rounds < 1 or args.queries < WARMUP:
        parser.error(f"sizes must be at least 1000, --rounds at least 1 and --queries at least {WARMUP}")
    rounds, n_queries = (1, 30) if args.quick else (args.rounds, args.queries)
    data = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average": os.getloadavg()[0], "sizes": []}
    for n in sizes:
        folder = prepare(n, args.cache.resolve())
        note(f"{n}: BM25 exhaustive against MaxScore")
        row = {"n": n, "bm25": run_phase("bm25", {"folder": str(folder), "n": n, "rounds": rounds, "queries": n_queries})}
        note(f"{n}: records, written as JSON Lines and as columns, then read")
        row["records"] = run_phase("write-records", {"folder": str(folder)})
        row["load"] = [run_phase("load-records", {"folder": str(folder), "layout": layout}) for layout in ("jsonl", "npz")]
        data["sizes"].append(row)
    print(report(data))
    write_json(args.json, data)
    note(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark index build, retrieval latency, memory and CLI start-up on this machine.

    .venv/bin/python benchmarks/bench.py            # full run: 3 build repeats, 200 queries per mode
    .venv/bin/python benchmarks/bench.py --quick    # smoke run: 1 repeat, 20 queries

Prints a table on stdout and writes the figures as JSON (default
benchmarks/results/bench.json). Progress bars and notes go to stderr.

How it measures:
  * Each phase (build, retrieve) runs in its own child process of this script
    (hidden flag --phase), so the peak RSS (getrusage ru_maxrss) each reports
    is that phase's own. On Linux a child's ru_maxrss starts at its parent's
    peak RSS, so this parent process never imports numpy, torch or the index
    code: it only starts the phases and the `rag --help` runs.
  * The embedding model is loaded once per phase, timed on its own line, and
    passed to RAG.load(embedder=...) so no build time includes it.
  * Full build: RAG.load into a fresh empty index folder, R times.
    Incremental refresh: a copy of the corpus is indexed (untimed), one
    sentence is appended to one article, then RAG.load refreshes (timed); the
    chunks embedded and reused come from RAG.load(...).summary.
  * Retrieval: the questions of eval/questions.jsonl (history prefixed when
    present) are cycled to N queries; after 10 untimed warm-up queries per
    mode, every query is timed in each mode (hybrid, dense, bm25, interleaved
    so machine noise falls on all modes alike).
  * Times use time.perf_counter. The machine is shared: read medians and p95,
    not single figures. Percentiles interpolate linearly between samples.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # measure this working copy of `rag`

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "bench.json"
DEFAULT_CORPUS = ROOT / "corpus"
QUESTIONS = ROOT / "eval" / "questions.jsonl"
MODES = ("hybrid", "dense", "bm25")
WARMUP = 10
CLI_RUNS = 10
QUICK_CLI_RUNS = 3
HEAVY_MODULES = ("numpy", "torch", "transformers", "sentence_transformers", "faiss", "bm25s")
ADDED_SENTENCE = "\n\nThis sentence was appended by the benchmark to change one article.\n"
SCHEMA = 1


# --- small helpers (stdlib only: this module's top level must stay light) ----


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating linearly like numpy's default."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def spread(values: list[float]) -> dict:
    """Median, min, max and every sample."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def latency(ms: list[float]) -> dict:
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size from getrusage, in MB (KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def vm_hwm_mb() -> float | None:
    """The kernel's own high-water RSS of this process (Linux), as a cross-check."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def memory_point() -> dict:
    return {"ru_maxrss_mb": peak_rss_mb(), "vmhwm_mb": vm_hwm_mb()}


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def load_queries(n: int) -> list[str]:
    """n queries cycling through eval/questions.jsonl, each with its history first."""
    questions = []
    for number, line in enumerate(QUESTIONS.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"bench: {QUESTIONS}:{number} is not valid JSON ({e.msg})") from None
        questions.append(" ".join([*item.get("history", []), item["question"]]))
    if not questions:
        raise SystemExit(f"bench: {QUESTIONS} holds no questions")
    return [questions[i % len(questions)] for i in range(n)]


def collect_rag_warnings() -> list[str]:
    """Keep the library's log warnings (e.g. repaired files) off the terminal, for the JSON."""
    import logging

    caught: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record.getMessage())

    logger = logging.getLogger("rag")
    logger.addHandler(Keep(logging.WARNING))
    logger.propagate = False
    return caught


def progress_bar(total: int, desc: str):
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (tests, CI logs).
    return tqdm(total=total, desc=desc, unit="step" if "build" in desc else "query", leave=False, disable=None, file=sys.stderr)


# --- phases (each runs in its own child process) --------------------------------


def load_embedder(settings) -> tuple[object, float]:
    """The real embedder with its model in memory, and how long that took.

    Counts the imports of the settings' backend (ONNX Runtime by default; torch
    and sentence-transformers with RAG_EMBED_BACKEND=torch), reading the
    weights, the word-piece tokenizer and one first encode: all that a process
    pays once (the one-time ONNX export is made before, untimed).
    """
    from rag.embedding import make_embedder

    def make():
        return make_embedder(
            settings.model, settings.embed_batch_size, backend=settings.embed_backend, cache_dir=settings.cache_dir
        )

    if settings.embed_backend == "onnx":
        make().backend  # exports once into the cache if the file is not there yet
    started = time.perf_counter()
    embedder = make()
    embedder.embed(["model warm-up"])
    embedder.count_pieces("model warm-up")
    return embedder, time.perf_counter() - started


def pick_article_file(corpus: Path) -> Path:
    """The first plain UTF-8 text file of the corpus: the one the refresh changes."""
    from rag.ingest import TEXT_SUFFIXES

    for path in sorted(corpus.iterdir()):
        if path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
            data = path.read_bytes()
            if b"\x00" in data:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            return path
    raise SystemExit(f"bench: {corpus} has no plain UTF-8 .txt or .md article to change for the refresh")


def phase_build(args: argparse.Namespace) -> dict:
    from rag.core import RAG
    from rag.settings import Settings

    warnings = collect_rag_warnings()
    work = Path(args.workdir)
    settings = Settings()
    embedder, model_seconds = load_embedder(settings)
    after_model = memory_point()

    full, incremental = [], []
    bar = progress_bar(2 * args.repeat, "build")
    for i in range(args.repeat):
        index = work / f"full-{i}"
        started = time.perf_counter()
        r = RAG.load(args.corpus, index, settings=settings, embedder=embedder)
        seconds = time.perf_counter() - started
        s = r.summary
        if not s.rebuilt or s.embedded != s.chunks:
            raise SystemExit(f"bench: the full build into an empty folder did not embed every chunk: {s}")
        full.append({"seconds": seconds, "refresh_seconds": s.seconds, "chunks": s.chunks, "articles": len(r.articles)})
        if i < args.repeat - 1:
            shutil.rmtree(index)  # the last one is handed to the retrieve phase
        del r
        bar.update()

        corpus = work / f"corpus-{i}"
        shutil.copytree(args.corpus, corpus)
        base = RAG.load(corpus, work / f"incr-{i}", settings=settings, embedder=embedder)  # untimed base
        del base
        target = pick_article_file(corpus)
        with target.open("a", encoding="utf-8") as f:
            f.write(ADDED_SENTENCE)
        started = time.perf_counter()
        r = RAG.load(corpus, work / f"incr-{i}", settings=settings, embedder=embedder)
        seconds = time.perf_counter() - started
        s = r.summary
        incremental.append(
            {
                "seconds": seconds,
                "refresh_seconds": s.seconds,
                "chunks": s.chunks,
                "embedded": s.embedded,
                "reused": s.reused,
                "changed": list(s.changed),
                "file": target.name,
            }
        )
        del r
        shutil.rmtree(corpus)
        shutil.rmtree(work / f"incr-{i}")
        bar.update()
    bar.close()

    full_seconds = [x["seconds"] for x in full]
    chunks = full[-1]["chunks"]
    last = incremental[-1]
    return {
        "model_load_seconds": model_seconds,
        "full": {
            "seconds": spread(full_seconds),
            "chunks": chunks,
            "articles": full[-1]["articles"],
            "chunks_per_second": {
                "median": chunks / statistics.median(full_seconds),
                "min": chunks / max(full_seconds),
                "max": chunks / min(full_seconds),
            },
            "runs": full,
        },
        "incremental": {
            "seconds": spread([x["seconds"] for x in incremental]),
            "chunks": last["chunks"],
            "embedded": last["embedded"],
            "reused": last["reused"],
            "changed_articles": last["changed"],
            "changed_file": last["file"],
            "runs": incremental,
        },
        "index_for_retrieve": str(work / f"full-{args.repeat - 1}"),
        "memory": {"after_model_load": after_model, "after_build": memory_point()},
        # ONNX Runtime, or torch when the settings or a failed export say so.
        "embed_backend": getattr(embedder, "backend", "torch"),
        "warnings": sorted(set(warnings)),
    }


def phase_retrieve(args: argparse.Namespace) -> dict:
    from rag.core import RAG
    from rag.settings import Settings

    warnings = collect_rag_warnings()
    # No query cache: the queries cycle through the question set, and repeats
    # answered from the cache would flatter the figures.
    settings = Settings(query_cache_size=0)
    queries = load_queries(args.queries)
    warm = load_queries(WARMUP)
    embedder, model_seconds = load_embedder(settings)

    started = time.perf_counter()
    r = RAG.load(args.corpus, args.index, settings=settings, embedder=embedder)
    load_seconds = time.perf_counter() - started
    if r.summary.rebuilt:
        raise SystemExit(f"bench: the index handed to the retrieve phase was not up to date: {r.summary.reason}")
    after_load = memory_point()

    for q in warm:
        for mode in MODES:
            r.retrieve(q, k=5, mode=mode)

    times: dict[str, list[float]] = {m: [] for m in MODES}
    empty = dict.fromkeys(MODES, 0)  # queries that found nothing (possible with bm25 on another corpus)
    bar = progress_bar(len(queries), "retrieve")
    clock = time.perf_counter
    for q in queries:
        for mode in MODES:
            started = clock()
            hits = r.retrieve(q, k=5, mode=mode)
            times[mode].append((clock() - started) * 1000.0)
            empty[mode] += not hits
        bar.update()
    bar.close()

    for q in warm:
        r.ask(q, k=5, mode="extractive")
    ask_times: list[float] = []
    abstained = 0
    bar = progress_bar(len(queries), "ask")
    for q in queries:
        started = clock()
        answer = r.ask(q, k=5, mode="extractive")
        ask_times.append((clock() - started) * 1000.0)
        abstained += answer.abstained
        bar.update()
    bar.close()

    return {
        "ask": {**latency(ask_times), "abstained": abstained},
        "model_load_seconds": model_seconds,
        "index_load_seconds": load_seconds,
        "chunks": r.summary.chunks,
        "queries": len(queries),
        "warmup": WARMUP,
        "k": 5,
        "modes": {m: {**latency(times[m]), "empty_results": empty[m]} for m in MODES},
        "memory": {"after_model_and_index_load": after_load, "after_retrieve": memory_point()},
        "warnings": sorted(set(warnings)),
    }


# --- the parent: start-up timing, phases, report ------------------------------------


def time_cli(runs: int) -> dict:
    """Wall time of `rag --help` in new processes (one untimed run first fills the disk cache)."""
    script = Path(sys.executable).parent / "rag"
    command = [str(script), "--help"] if script.is_file() else [sys.executable, "-m", "rag.cli", "--help"]
    ms = []
    for i in range(runs + 1):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        elapsed = (time.perf_counter() - started) * 1000.0
        if result.returncode != 0:
            raise SystemExit(f"bench: `{' '.join(command)}` failed ({result.returncode}): {result.stderr[-500:]}")
        if i:
            ms.append(elapsed)
    probe = subprocess.run(
        [sys.executable, "-c", f"import sys, rag.cli; print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"],
        cwd=ROOT, capture_output=True, text=True,
    )
    return {
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)),
        "runs": runs,
        "median_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 95),
        "max_ms": max(ms),
        "samples_ms": ms,
        # Max over these children only: they run before the heavy phases start.
        "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
        "heavy_modules_imported": probe.stdout.split() if probe.returncode == 0 else ["<probe failed>"],
    }


def run_phase(phase: str, args: argparse.Namespace, work: Path, extra: list[str]) -> dict:
    out = work / f"{phase}.json"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--workdir", str(work),
        "--phase-out", str(out), "--corpus", str(args.corpus), "--repeat", str(args.repeat),
        "--queries", str(args.queries), *extra,
    ]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"bench: the {phase} phase failed (exit {result.returncode}); its messages are above")
    data = json.loads(out.read_text())
    data["wall_seconds"] = time.perf_counter() - started
    return data


def environment() -> dict:
    from rag.settings import Settings  # light: dataclasses only

    s = Settings()
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "python": platform.python_version(),
            "torch": version_of("torch"),
            "faiss": version_of("faiss-cpu"),
            "sentence_transformers": version_of("sentence-transformers"),
        },
        "settings": {
            "chunk_tokens": s.chunk_tokens,
            "overlap_tokens": s.overlap_tokens,
            "fusion": s.fusion,
            "dense_weight": s.dense_weight,
            "candidates": s.candidates,
            "model": s.model,
            "embed_batch_size": s.embed_batch_size,
        },
    }


def report(data: dict) -> str:
    m, st, p = data["machine"], data["settings"], data["params"]
    b, r, cli = data["build"], data["retrieve"], data["cli_help"]
    full, inc = b["full"], b["incremental"]
    mem = data["memory"]
    W = 44  # label column

    def row(label: str, value: str) -> str:
        return f"  {label:<{W}}{value}"

    def sec(x: dict) -> str:
        return f"{x['median']:8.2f} s   (min {x['min']:.2f}, max {x['max']:.2f})"

    retrieve_head = f"warm retrieve and ask, k=5, {p['queries']} queries each"
    cli_head = f"`{cli['command']}`, {cli['runs']} new processes"
    fusion = st["fusion"] + (f" (dense_weight {st['dense_weight']})" if st["fusion"] == "weighted" else "")
    lines = [
        f"rag benchmark, {data['date']}",
        f"machine   {m['cpu_count']} CPU cores (os.cpu_count), embedding backend {b['embed_backend']}, {m['platform']}",
        f"versions  Python {m['python']}, torch {m['torch']}, faiss-cpu {m['faiss']}, sentence-transformers {m['sentence_transformers']}",
        f"settings  chunk_tokens {st['chunk_tokens']}, overlap_tokens {st['overlap_tokens']}, fusion {fusion}, model {st['model']}",
        f"run       corpus {p['corpus']} ({full['articles']} articles, {full['chunks']} chunks); {p['repeat']} build repeat(s); "
        f"{p['queries']} queries per mode after {p['warmup']} warm-up" + ("; --quick" if p["quick"] else ""),
        "",
        f"  {'index build':<{W}}{'median':>8}     (min, max)",
        row("model load, once, not in the builds", f"{b['model_load_seconds']:8.2f} s"),
        row(f"full build into an empty folder, {full['chunks']} chunks", sec(full["seconds"])),
        row("  chunks per second", f"{full['chunks_per_second']['median']:8.1f}     "
            f"(min {full['chunks_per_second']['min']:.1f}, max {full['chunks_per_second']['max']:.1f})"),
        row("refresh after 1 article changed", sec(inc["seconds"])),
        row("  chunks embedded / reused", f"{inc['embedded']:8d} / {inc['reused']}  (changed: {', '.join(inc['changed_articles']) or 'none'})"),
        "",
        f"  {retrieve_head:<{W}}{'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}",
    ]
    for mode, x in r["modes"].items():
        lines.append(row(mode, f"{x['p50_ms']:8.2f}  {x['p95_ms']:8.2f}  {x['max_ms']:8.2f}"))
    a = r["ask"]
    lines.append(row(f"ask, extractive ({a['abstained']} abstained)", f"{a['p50_ms']:8.2f}  {a['p95_ms']:8.2f}  {a['max_ms']:8.2f}"))
    lines += [
        row("untimed: model load / index load", f"{r['model_load_seconds']:8.2f} s / {r['index_load_seconds']:.3f} s"),
        "",
        f"  {'peak RSS (ru_maxrss), one process per phase':<{W}}{'MB':>8}",
        row("build phase, after model load", f"{mem['build']['after_model_load']['ru_maxrss_mb']:8.0f}"),
        row(f"build phase, after {p['repeat']} build(s) + refresh(es)", f"{mem['build']['after_build']['ru_maxrss_mb']:8.0f}"),
        row("retrieve phase, after model + index load", f"{mem['retrieve']['after_model_and_index_load']['ru_maxrss_mb']:8.0f}"),
        row(f"retrieve phase, after {len(r['modes']) * (p['queries'] + p['warmup'])} retrievals", f"{mem['retrieve']['after_retrieve']['ru_maxrss_mb']:8.0f}"),
        row("benchmark parent process (no torch)", f"{mem['parent_mb']:8.0f}"),
        "",
        f"  {cli_head:<{W}}{'median':>8}  {'p95':>8}  {'peak RSS':>8}",
        row("wall time, peak RSS", f"{cli['median_ms']:5.0f} ms  {cli['p95_ms']:5.0f} ms  {cli['peak_rss_mb']:5.0f} MB"),
        row("heavy modules imported by rag.cli", f"{', '.join(cli['heavy_modules_imported']) or 'none':>8}"),
        "",
        f"total {data['total_seconds']:.1f} s (build phase {b['wall_seconds']:.1f} s, retrieve phase {r['wall_seconds']:.1f} s, "
        f"each with its own model load)",
    ]
    warnings = sorted(set(b["warnings"]) | set(r["warnings"]))
    if warnings:
        lines.append(f"library warnings while loading: {len(warnings)} (listed in the JSON)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench.py",
        description=(
            "Measure on this machine: index build (full and after one article changed), warm retrieval "
            "latency per mode, peak memory per phase, and `rag --help` start-up. Prints a table and writes JSON."
        ),
        epilog=(
            "Each phase runs in its own child process so its peak RSS is its own. The model is loaded once per "
            "phase and timed apart from the builds. The machine may be shared: compare medians and p95."
        ),
    )
    parser.add_argument("--queries", type=int, default=None, metavar="N",
                        help="timed queries per retrieval mode, cycling through eval/questions.jsonl (default: 200; 20 with --quick)")
    parser.add_argument("--repeat", type=int, default=None, metavar="R",
                        help="full builds and refreshes to time (default: 3; 1 with --quick)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="OUT", help="where to write the results as JSON (default: benchmarks/results/bench.json)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, metavar="DIR",
                        help="corpus folder to index (default: ./corpus of the repository); it is only read, the refresh changes a temporary copy")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat, 20 queries, 3 `rag --help` runs (well under a minute after model load)")
    # Internal: run one phase in this process and write its figures to --phase-out.
    parser.add_argument("--phase", choices=("build", "retrieve"), help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.queries is None:
        args.queries = 20 if args.quick else 200
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.queries < 1 or args.repeat < 1:
        parser.error("--queries and --repeat must be at least 1")
    args.corpus = args.corpus.resolve()
    if not args.corpus.is_dir():
        parser.error(f"--corpus {args.corpus} is not a folder")

    if args.phase:
        if args.phase_out is None or args.workdir is None or (args.phase == "retrieve" and args.index is None):
            parser.error("--phase is internal: run bench.py without it")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        data = phase_build(args) if args.phase == "build" else phase_retrieve(args)
        args.phase_out.write_text(json.dumps(data))
        return 0

    started = time.perf_counter()
    data = environment()
    data["params"] = {"repeat": args.repeat, "queries": args.queries, "warmup": WARMUP, "quick": args.quick,
                      "corpus": str(args.corpus)}
    cli_runs = QUICK_CLI_RUNS if args.quick else CLI_RUNS
    note(f"timing `rag --help` ({cli_runs} runs)")
    data["cli_help"] = time_cli(cli_runs)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        note(f"build phase: model load, {args.repeat} full build(s) and refresh(es)")
        build = run_phase("build", args, work, [])
        note(f"retrieve phase: {args.queries} queries x {len(MODES)} modes")
        retrieve = run_phase("retrieve", args, work, ["--index", build["index_for_retrieve"]])
    build.pop("index_for_retrieve")
    data["build"] = build
    data["retrieve"] = retrieve
    data["memory"] = {
        "build": build.pop("memory"),
        "retrieve": retrieve.pop("memory"),
        "parent_mb": peak_rss_mb(),
    }
    data["memory"]["build_peak_mb"] = data["memory"]["build"]["after_build"]["ru_maxrss_mb"]
    data["memory"]["retrieve_peak_mb"] = data["memory"]["retrieve"]["after_retrieve"]["ru_maxrss_mb"]
    data["schema"] = SCHEMA
    data["total_seconds"] = time.perf_counter() - started

    print(report(data))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    note(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

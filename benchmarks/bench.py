"""Benchmark index build, retrieval latency and its stages, memory, and cold starts on this machine.

    .venv/bin/python benchmarks/bench.py               # full run: 3 build repeats, 200 queries per mode,
                                                       # 5 `rag ask` and 3 app cold starts
    .venv/bin/python benchmarks/bench.py --quick       # smoke run: 1 repeat, 20 queries, 2 + 2 cold starts
    .venv/bin/python benchmarks/bench.py --skip-app    # no Gradio app cold starts (--skip-cold: none at all)

Prints a table on stdout and writes the figures as JSON (default
benchmarks/results/bench.json). Progress bars and notes go to stderr.

How it measures:
  * Each phase (build, retrieve) runs in its own child process of this script
    (hidden flag --phase), so the peak RSS (getrusage ru_maxrss) each reports
    is that phase's own. On Linux a child's ru_maxrss starts at its parent's
    RSS when it was spawned, so this parent process never imports numpy, torch
    or the index code (nor urllib before the `rag --help` runs): it only
    starts processes and reads their figures.
  * The embedding model is loaded once per phase, timed on its own line, and
    passed to RAG.load(embedder=...) so no build time includes it.
  * Full build: RAG.load into a fresh empty index folder, R times.
    Incremental refresh: a copy of the corpus is indexed (untimed), one
    sentence is appended to one article, then RAG.load refreshes (timed); the
    chunks embedded and reused come from RAG.load(...).summary.
  * Retrieval: the questions of eval/questions.jsonl (history prefixed when
    present) are cycled to N queries; after 10 untimed warm-up queries per
    mode, every query is timed in each mode (hybrid, dense, bm25, interleaved
    so machine noise falls on all modes alike), then `ask` (extractive).
    The query cache is off (Settings(query_cache_size=0)): every query pays
    its model call.
  * Where a warm ask's time goes: the same N queries run once more through
    RAG.ask with a Trace (rag/trace.py), which the product's stages report
    into (question checks, query embedding, FAISS, BM25, fusion, building
    hits, the answer's screen, sentence scoring, select + compose, the short answer).
    A stage a query skips (an early abstention) counts 0 ms for it; a share
    is the stage's summed time over the summed total.
  * Threads: torch's, FAISS's OpenMP and every BLAS/OpenMP pool that
    threadpoolctl finds (with the package that ships it) are recorded after
    the warm-up, when the embedder has set torch's threads for single queries.
  * Cold starts, each a new process timed from spawn (subprocess.Popen) to
    exit, and reaped with os.wait4 so its peak RSS is that child's own. An
    index is first built with `rag index --corpus --index` into a temporary
    folder (untimed); the cold starts must leave its CURRENT build unchanged.
    The file cache is warm (that build read the same files): these are the
    starts a user sees on a second run, not after a reboot.
      - `rag ask "<first answerable question of eval/questions.jsonl>"`:
        time to exit, and to the answer's first line on stdout (the child
        runs with PYTHONUNBUFFERED so the line arrives when it is printed).
      - app.py on 127.0.0.1 and a free port: time until GET / answers
        (polled every 50 ms), and until the first answer through its /ask
        API (Gradio's HTTP API: POST /gradio_api/call/ask, then its event
        stream; stdlib urllib, no gradio_client in this process); then a
        second, warm /ask request. Then SIGTERM, SIGKILL after 15 s. One
        untimed start first fills the file cache with Gradio's files.
      - `rag --help`: time to exit (one untimed run first).
    Children run this working copy (PYTHONPATH), with RAG_LLM_*, RAG_APP_*
    and RAG_ANSWER_MODE removed from their environment.
    A child's peak RSS cannot be below this parent's RSS at its spawn (about
    20 MB, recorded as rss_floor_mb): for `rag --help` that figure is an
    upper bound.
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
import selectors
import shutil
import signal
import socket
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

from measure import peak_rss_mb, percentile, proc_status_mb, write_json  # noqa: E402  (this folder is sys.path[0])

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "bench.json"
DEFAULT_CORPUS = ROOT / "corpus"
QUESTIONS = ROOT / "eval" / "questions.jsonl"
MODES = ("hybrid", "dense", "bm25")
SCALE_SIZES = "10000,100000,1000000"
WARMUP = 10
CLI_RUNS = 10
QUICK_CLI_RUNS = 3
HEAVY_MODULES = ("numpy", "torch", "transformers", "sentence_transformers", "faiss", "bm25s")
ADDED_SENTENCE = "\n\nThis sentence was appended by the benchmark to change one article.\n"
SCHEMA = 2
APP = ROOT / "app.py"
COLD_ASK_RUNS, QUICK_COLD_ASK_RUNS = 5, 2
APP_RUNS, QUICK_APP_RUNS = 3, 2
CHILD_TIMEOUT = 300  # seconds: a cold start on a busy 2-core machine takes seconds, never minutes
STOP_TIMEOUT = 15  # seconds the app gets to exit after SIGTERM before it is killed
POLL_SECONDS = 0.05  # how often the app is polled while it starts: the resolution of its "serving" time
# The stages of a warm extractive ask, in the order RAG.ask runs them (rag/core.py).
# The stages RAG.ask reports into a Trace (rag/trace.py), in the order they run.
PROFILE_STAGES = (
    ("checks", "question checks (length, language, follow-up)"),
    ("embed", "query embedding: word-piece count + model call"),
    ("dense", "dense search (FAISS)"),
    ("bm25", "BM25 search (tokenize + score)"),
    ("fusion", "fusion"),
    ("hits", "building hits"),
    ("screen", "answer: language and unknown-name checks"),
    ("evidence", "answer: sentence scoring"),
    ("answer", "answer: select + compose"),
    ("answerable", "answer: the calibrated probability and its gate"),
    ("short", "answer: the short answer"),
)
STAGE_KEYS = tuple(key for key, _ in PROFILE_STAGES)
RETRIEVAL_STAGES = ("embed", "dense", "bm25", "fusion", "hits")
ANSWER_STAGES = ("screen", "evidence", "answer", "answerable", "short")
# Variables that set thread pools when a library starts; recorded when set.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "TOKENIZERS_PARALLELISM")


# --- small helpers (stdlib only: this module's top level must stay light) ----



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




def memory_point() -> dict:
    return {"ru_maxrss_mb": peak_rss_mb(), "vmhwm_mb": proc_status_mb("VmHWM")}


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
    from rag.embedding import embedder_for

    def make():
        return embedder_for(settings.index)

    if settings.index.embed_backend == "onnx":
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
        # Read right after a full build, whose last model calls were batches: the
        # refresh's one-chunk call below sets one thread, as a query does.
        batch_threads = _torch_threads()
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
        "torch_threads": batch_threads,
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
    torch_at_load = _torch_threads()

    for q in warm:
        for mode in MODES:
            r.retrieve(q, k=5, mode=mode)
        r.ask(q, k=5, mode="extractive")
    # After the warm-up: the embedder sets torch's threads on its first call,
    # and these are the settings every timed query below runs under.
    threads = {**threads_in_effect(), "torch_at_index_load": torch_at_load}

    modes = time_modes(r, queries)
    ask = time_ask(r, queries)
    profile = profile_stages(r, queries, k=5)
    after = threads_in_effect()
    if (after["torch"], after["faiss_omp_max"]) != (threads["torch"], threads["faiss_omp_max"]):
        threads["changed_during_run"] = {"torch": after["torch"], "faiss_omp_max": after["faiss_omp_max"]}

    return {
        "ask": ask,
        "model_load_seconds": model_seconds,
        "index_load_seconds": load_seconds,
        "chunks": r.summary.chunks,
        "queries": len(queries),
        "warmup": WARMUP,
        "k": 5,
        "modes": modes,
        "profile": profile,
        "threads": threads,
        "memory": {"after_model_and_index_load": after_load, "after_retrieve": memory_point()},
        "warnings": sorted(set(warnings)),
    }


def time_modes(r, queries: list[str]) -> dict:
    """Warm retrieve latency per mode, the modes interleaved so machine noise falls on all alike."""
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
    return {m: {**latency(times[m]), "empty_results": empty[m]} for m in MODES}


def time_ask(r, queries: list[str]) -> dict:
    ask_times: list[float] = []
    abstained = 0
    bar = progress_bar(len(queries), "ask")
    clock = time.perf_counter
    for q in queries:
        started = clock()
        answer = r.ask(q, k=5, mode="extractive")
        ask_times.append((clock() - started) * 1000.0)
        abstained += answer.abstained
        bar.update()
    bar.close()
    return {**latency(ask_times), "abstained": abstained}


def threads_in_effect() -> dict:
    """The thread pools of this process as they are now: torch, FAISS's OpenMP and
    every BLAS/OpenMP library threadpoolctl finds (numpy's BLAS among them)."""
    import faiss
    from threadpoolctl import threadpool_info

    # Never imported here: a process answering on ONNX Runtime has no torch,
    # and importing it would add its memory to the phase's peak RSS.
    torch = sys.modules.get("torch")
    keep = ("user_api", "internal_api", "num_threads", "prefix", "version", "filepath")
    return {
        "torch": torch.get_num_threads() if torch else None,
        "torch_interop": torch.get_num_interop_threads() if torch else None,
        "faiss_omp_max": faiss.omp_get_max_threads(),
        "threadpools": [{"owner": pool_owner(pool["filepath"]), **{key: pool.get(key) for key in keep}}
                        for pool in threadpool_info()],
        "env": {name: os.environ[name] for name in THREAD_ENV if name in os.environ},
    }


def pool_owner(filepath: str) -> str:
    """The package that ships a thread-pool library: numpy, torch, faiss_cpu ..."""
    parts = Path(filepath).parts
    if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
        return parts[parts.index("site-packages") + 1].removesuffix(".libs")
    return Path(filepath).name


def profile_stages(r, queries: list[str], k: int) -> dict:
    """Per-stage time of warm extractive asks, as the product's own Trace records them."""
    from rag import Trace

    samples: dict[str, list[float]] = {key: [] for key in STAGE_KEYS}
    bar = progress_bar(len(queries), "profile")
    for q in queries:
        trace = Trace()
        r.ask(q, k=k, mode="extractive", trace=trace)
        seconds = trace.seconds()
        unknown = set(seconds) - set(STAGE_KEYS)
        if unknown:
            raise SystemExit(f"bench: the product reports stages {sorted(unknown)} that PROFILE_STAGES does not name: add them")
        for key in STAGE_KEYS:  # a stage a query skips (an early abstention) costs it 0
            samples[key].append(seconds.get(key, 0.0) * 1000.0)
        bar.update()
    bar.close()
    return summarise_stages(samples, r.settings)


def summarise_stages(samples: dict[str, list[float]], settings) -> dict:
    n = len(next(iter(samples.values())))
    totals = [sum(samples[key][i] for key in STAGE_KEYS) for i in range(n)]
    grand = sum(totals) or 1.0

    def part(keys) -> list[float]:
        return [sum(samples[key][i] for key in keys) for i in range(n)]

    return {
        "n": n,
        "retrieval_mode": settings.retrieval.mode,
        "fusion": settings.retrieval.fusion,
        "answer_mode": "extractive",
        "timed_by": "RAG.ask(trace=Trace()), the product's own stage hook",
        "stages": {key: {"label": label, **latency(samples[key]), "share": sum(samples[key]) / grand}
                   for key, label in PROFILE_STAGES},
        "total": latency(totals),
        "retrieval": latency(part(RETRIEVAL_STAGES)),
        "answer": latency(part(ANSWER_STAGES)),
    }


def _torch_threads() -> int | None:
    """torch's intra-op threads, or None when this process never loaded torch."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch else None


# --- the parent: new processes, timed from spawn to exit ------------------------------


def child_env() -> dict[str, str]:
    """The environment for every process the parent starts.

    PYTHONPATH puts this working copy first, so `rag` and app.py run the code
    under test even when the venv's editable install points at another checkout.
    RAG_LLM_*, RAG_ANSWER_MODE and RAG_APP_* are dropped: answers stay
    extractive and the app needs no login, whatever the caller's shell holds.
    PYTHONUNBUFFERED makes a child write each line when it prints it, so the
    time of its first answer line is the time it was printed, not of the exit flush.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_LLM_", "RAG_APP_", "RAG_ANSWER_MODE"))}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    return env


def rag_command(*args: str) -> list[str]:
    """`rag ARGS` as a user types it: the venv's console script (run with child_env,
    it imports this working copy), or `python -m rag.cli` when there is none."""
    script = Path(sys.executable).parent / "rag"
    return [str(script), *args] if script.is_file() else [sys.executable, "-m", "rag.cli", *args]


def shown(command: list[str]) -> str:
    return " ".join(Path(c).name if i == 0 else (f'"{c}"' if " " in c else c) for i, c in enumerate(command))


class Child:
    """A started process, reaped with os.wait4 so that its own peak RSS is known.

    Never call the Popen's poll(), wait() or terminate() on it: each may reap the
    process through waitpid and the rusage would be lost. A process not yet
    reaped keeps its pid (a zombie at worst), so signalling it is always safe.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.ended: float | None = None  # perf_counter when it was reaped
        self.usage: resource.struct_rusage | None = None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def peak_rss_mb(self) -> float:
        assert self.usage is not None, "reap the process first"
        return self.usage.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else self.usage.ru_maxrss / 1024

    def poll(self) -> bool:
        """Whether it has exited (and is now reaped)."""
        if self.usage is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self._reaped(status, usage)
        return self.usage is not None

    def wait_until(self, deadline: float) -> bool:
        """Wait for the exit until perf_counter reaches `deadline`; False if it is still running.

        Polls every millisecond rather than blocking in wait4, so that a hung
        child cannot hang the benchmark; 1 ms is the resolution of the exit time.
        """
        while not self.poll():
            if time.perf_counter() >= deadline:
                return False
            time.sleep(0.001)
        return True

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT seconds; True when it had to be killed."""
        if self.usage is not None:
            return False
        os.kill(self.proc.pid, signal.SIGTERM)
        if self.wait_until(time.perf_counter() + STOP_TIMEOUT):
            return False
        self.kill()
        return True

    def kill(self) -> None:
        if self.usage is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(self.proc.pid, 0)
            self._reaped(status, usage)

    def _reaped(self, status: int, usage: resource.struct_rusage) -> None:
        self.ended = time.perf_counter()
        self.usage = usage
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # so the Popen never waits on it again


def read_until_eof(fd: int, deadline: float) -> tuple[float | None, str]:
    """Read a pipe to its end: (perf_counter of the first non-empty line, that line).

    Uses select with the deadline so a child that never closes its output
    cannot hang the benchmark; raises TimeoutError past the deadline.
    """
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    buffer, first_at, first = b"", None, ""
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError
            if not selector.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return first_at, first
            if first_at is None:
                buffer += chunk
                complete = buffer.split(b"\n")[:-1]  # a line counts once its newline arrived
                line = next((x for x in complete if x.strip()), None)
                if line is not None:
                    first_at, first = time.perf_counter(), line.decode("utf-8", "replace").strip()
    finally:
        selector.close()


def run_timed(command: list[str], timeout: float = CHILD_TIMEOUT) -> dict:
    """One new process, from spawn to exit: wall ms, ms to its first non-empty
    stdout line, its own peak RSS, exit code and the end of its stderr."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, bufsize=0)
        child = Child(proc)
        try:
            first_at, first = read_until_eof(proc.stdout.fileno(), started + timeout)
            if not child.wait_until(started + timeout):
                raise TimeoutError
        except TimeoutError:
            raise SystemExit(f"bench: `{shown(command)}` did not finish within {timeout} s: "
                             "is the machine overloaded, or does the command wait for input?") from None
        finally:
            child.kill()  # only if still running: an interrupted run leaves no process behind
            proc.stdout.close()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return {
        "wall_ms": (child.ended - started) * 1000.0,
        "first_line_ms": None if first_at is None else (first_at - started) * 1000.0,
        "first_line": first,
        "peak_rss_mb": child.peak_rss_mb,
        "returncode": child.returncode,
        "stderr_tail": stderr[-1500:],
    }


def figures(values: list[float]) -> dict:
    """Median, p95, min, max and every sample, for a handful of new processes."""
    return {"median": statistics.median(values), "p95": percentile(values, 95),
            "min": min(values), "max": max(values), "runs": values}


def time_cli(runs: int) -> dict:
    """Wall time of `rag --help` in new processes (one untimed run first fills the disk cache)."""
    command = rag_command("--help")
    floor = peak_rss_mb()  # no child can report less than this (module docstring)
    samples = []
    for i in range(runs + 1):
        result = run_timed(command)
        if result["returncode"] != 0:
            raise SystemExit(f"bench: `{shown(command)}` failed ({result['returncode']}): {result['stderr_tail']}")
        if i:
            samples.append(result)
    ms = [x["wall_ms"] for x in samples]
    probe = subprocess.run(
        [sys.executable, "-c", f"import sys, rag.cli; print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True,
    )
    return {
        "command": shown(command),
        "runs": runs,
        "median_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 95),
        "max_ms": max(ms),
        "samples_ms": ms,
        "peak_rss_mb": max(x["peak_rss_mb"] for x in samples),  # each process's own (os.wait4), the largest
        "rss_floor_mb": floor,
        "heavy_modules_imported": probe.stdout.split() if probe.returncode == 0 else ["<probe failed>"],
    }


def first_question() -> str:
    """The first answerable question of eval/questions.jsonl that stands alone (no history)."""
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            if not item.get("history") and item.get("answerable", True):
                return item["question"]
    raise SystemExit(f"bench: {QUESTIONS} has no question without history for the cold starts")


def build_cli_index(corpus: Path, index: Path) -> float:
    """Build the index the cold starts load, with `rag index` (untimed in the figures)."""
    command = rag_command("index", "--corpus", str(corpus), "--index", str(index), "-q")
    result = run_timed(command, timeout=CHILD_TIMEOUT * 3)  # a full build under load took 14 s; allow far more
    if result["returncode"] != 0:
        raise SystemExit(f"bench: `{shown(command)}` failed ({result['returncode']}): {result['stderr_tail']}")
    return result["wall_ms"] / 1000.0


def live_build(index: Path) -> str:
    """The build folder the index's CURRENT file names: it changes when anything rebuilds."""
    try:
        return (index / "CURRENT").read_text().strip()
    except OSError as e:
        raise SystemExit(f"bench: the index built for the cold starts has no readable CURRENT ({e})") from e


def time_cold_ask(runs: int, question: str, corpus: Path, index: Path) -> dict:
    """`rag ask "question"` in new processes against an index already built.

    No untimed run first: `rag index` just imported the same modules and read
    the same model files, so the disk cache is as warm as for a second run.
    """
    command = rag_command("ask", question, "--corpus", str(corpus), "--index", str(index))
    samples = []
    for _ in range(runs):
        result = run_timed(command)
        if result["returncode"] != 0 or result["first_line_ms"] is None:
            raise SystemExit(f"bench: `{shown(command)}` failed ({result['returncode']}) or printed no answer: "
                             f"{result['stderr_tail']}")
        samples.append(result)
    return {
        "command": shown(command),
        "question": question,
        "runs": runs,
        "wall_ms": figures([x["wall_ms"] for x in samples]),
        "first_answer_ms": figures([x["first_line_ms"] for x in samples]),
        "peak_rss_mb": figures([x["peak_rss_mb"] for x in samples]),
        "first_answer_line": samples[-1]["first_line"],
    }


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_opener():
    """An HTTP opener that ignores proxy settings: the app listens on loopback only.

    Imported here, not at the top: urllib.request pulls in ssl and email (8 MB),
    and every child's peak RSS starts at this process's RSS when it is spawned.
    """
    import urllib.request

    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until_serving(child: Child, port: int, log: Path, deadline: float) -> None:
    """Poll the app's page until it answers; raise with its log if it exits or never does."""
    import urllib.error

    url, opener = f"http://127.0.0.1:{port}/", loopback_opener()
    while time.perf_counter() < deadline:
        if child.poll():
            raise SystemExit(f"bench: app.py exited ({child.returncode}) before serving; its output:\n{tail(log)}")
        try:
            with opener.open(url, timeout=5):
                return
        except urllib.error.HTTPError:  # any HTTP answer (a 401 behind a login) means it serves
            return
        except OSError:  # not listening yet
            time.sleep(POLL_SECONDS)
    raise SystemExit(f"bench: app.py did not serve within {CHILD_TIMEOUT} s; its output:\n{tail(log)}")


def tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "<no output>"


def http_ask(port: int, question: str) -> dict:
    """One question through the app's /ask API, over Gradio's HTTP API, stdlib only:
    POST /gradio_api/call/ask gives an event id; its event stream ends with
    `event: complete` and the result (or `event: error`)."""
    import urllib.request

    base, opener = f"http://127.0.0.1:{port}/gradio_api/call/ask", loopback_opener()
    body = json.dumps({"data": [question, None, 5, None]}).encode()  # question, history, k, articles
    request = urllib.request.Request(base, data=body, headers={"Content-Type": "application/json"})
    with opener.open(request, timeout=CHILD_TIMEOUT) as response:
        event_id = json.load(response)["event_id"]
    event = None
    with opener.open(f"{base}/{event_id}", timeout=CHILD_TIMEOUT) as response:
        for raw in response:
            line = raw.decode("utf-8").strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = line.split(":", 1)[1].strip()
                if event == "error":
                    raise SystemExit(f"bench: the app's /ask API failed: {data}")
                return json.loads(data)[0]
    raise SystemExit("bench: the app's /ask event stream ended without a result")


def app_cold_start(question: str, corpus: Path, index: Path, log: Path) -> dict:
    """Start app.py on a free loopback port, time until it serves and until its
    first answer through /ask, then stop it (SIGTERM, then SIGKILL) and reap it."""
    port = free_port()
    command = [sys.executable, str(APP), "--host", "127.0.0.1", "--port", str(port),
               "--corpus", str(corpus), "--index", str(index)]
    with log.open("wb") as out:
        started = time.perf_counter()
        child = Child(subprocess.Popen(command, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT))
    try:
        wait_until_serving(child, port, log, started + CHILD_TIMEOUT)
        serving = time.perf_counter()
        payload = http_ask(port, question)
        answered = time.perf_counter()
        http_ask(port, question)  # again, warm: what the first question paid extra shows against it
        second_ms = (time.perf_counter() - answered) * 1000.0
    finally:
        killed = child.stop()
    if payload.get("error") or not payload.get("text"):
        raise SystemExit(f"bench: the app answered {question!r} with {payload!r}")
    return {
        "serving_ms": (serving - started) * 1000.0,
        "first_answer_ms": (answered - started) * 1000.0,
        "request_ms": (answered - serving) * 1000.0,
        "second_request_ms": second_ms,
        "peak_rss_mb": child.peak_rss_mb,
        "pid": child.proc.pid,
        "killed": killed,
        "answer_text": payload["text"],
    }


def time_app(runs: int, question: str, corpus: Path, index: Path, logs: Path) -> dict:
    """Cold starts of the chat app; one untimed start first fills the disk cache
    with Gradio's files, which nothing before it has read."""
    samples = [app_cold_start(question, corpus, index, logs / f"app-{i}.log") for i in range(runs + 1)][1:]
    return {
        "command": shown([sys.executable, str(APP), "--host", "127.0.0.1", "--port", "PORT", "--corpus", str(corpus),
                          "--index", str(index)]),
        "api": "POST /gradio_api/call/ask, then GET its event stream",
        "question": question,
        "runs": runs,
        "warmup_runs": 1,
        "serving_ms": figures([x["serving_ms"] for x in samples]),
        "first_answer_ms": figures([x["first_answer_ms"] for x in samples]),
        "request_ms": figures([x["request_ms"] for x in samples]),
        "second_request_ms": figures([x["second_request_ms"] for x in samples]),
        "peak_rss_mb": figures([x["peak_rss_mb"] for x in samples]),
        "pids": [x["pid"] for x in samples],
        "killed": sum(x["killed"] for x in samples),
        "answer_text": samples[-1]["answer_text"],
    }


def cold_starts(args: argparse.Namespace, work: Path) -> dict:
    """`rag ask` and the app, each started anew, against one index built by `rag index`."""
    index = work / "cli-index"
    note("cold starts: building their index with `rag index` (untimed)")
    build_seconds = build_cli_index(args.corpus, index)
    live = live_build(index)
    question = first_question()
    note(f"cold starts: `rag ask` x {args.cold_runs}")
    data = {"question": question, "index_build_seconds": build_seconds,
            "ask": time_cold_ask(args.cold_runs, question, args.corpus, index)}
    if args.skip_app:
        data["app"] = {"skipped": True}
    else:
        note(f"cold starts: app.py x {args.app_runs} (+1 untimed)")
        data["app"] = time_app(args.app_runs, question, args.corpus, index, work)
    if live_build(index) != live:
        raise SystemExit("bench: a cold start rebuilt the index it was given, so it timed a build: "
                         "check that `rag index` and the app load with the same settings")
    return data


# --- the parent: phases, report ------------------------------------------------------


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
            "chunk_tokens": s.index.chunk_tokens,
            "overlap_tokens": s.index.overlap_tokens,
            "fusion": s.retrieval.fusion,
            "dense_weight": s.retrieval.dense_weight,
            "candidates": s.retrieval.candidates,
            "model": s.index.model,
            "embed_batch_size": s.index.embed_batch_size,
        },
    }


W = 46  # the label column of the table


def row(label: str, value: str) -> str:
    return f"  {label:<{W}}{value}"


def head(label: str, columns: str) -> str:
    return f"  {label:<{W}}{columns}"


def report(data: dict) -> str:
    sections = [report_header(data), report_build(data), report_retrieve(data), report_profile(data),
                report_memory(data), report_cold(data), report_cli(data), report_footer(data)]
    return "\n\n".join(s for s in sections if s)


def report_header(data: dict) -> str:
    m, st, p = data["machine"], data["settings"], data["params"]
    full = data["build"]["full"]
    t = data["retrieve"]["threads"]
    fusion = st["fusion"] + (f" (dense_weight {st['dense_weight']})" if st["fusion"] == "weighted" else "")
    pools = ", ".join(f"{x['owner']} {x['internal_api']} {x['num_threads']}" for x in t["threadpools"]) or "none found"
    return "\n".join([
        f"rag benchmark, {data['date']}",
        f"machine   {m['cpu_count']} CPU cores (os.cpu_count), embedding backend {data['build']['embed_backend']}, {m['platform']}",
        f"versions  Python {m['python']}, torch {m['torch']}, faiss-cpu {m['faiss']}, sentence-transformers {m['sentence_transformers']}",
        f"settings  chunk_tokens {st['chunk_tokens']}, overlap_tokens {st['overlap_tokens']}, fusion {fusion}, model {st['model']}",
        f"threads   build: torch {data['build']['torch_threads'] or 'not loaded'}; warm queries: "
        f"torch {t['torch'] or 'not loaded'}" + (f" (interop {t['torch_interop']})" if t["torch"] else "") + ", "
        f"faiss OpenMP {t['faiss_omp_max']}; "
        f"pools: {pools}" + (f"; env {t['env']}" if t["env"] else ""),
        f"run       corpus {p['corpus']} ({full['articles']} articles, {full['chunks']} chunks); {p['repeat']} build repeat(s); "
        f"{p['queries']} queries per mode after {p['warmup']} warm-up" + ("; --quick" if p["quick"] else ""),
    ])


def report_build(data: dict) -> str:
    b = data["build"]
    full, inc = b["full"], b["incremental"]

    def sec(x: dict) -> str:
        return f"{x['median']:8.2f} s   (min {x['min']:.2f}, max {x['max']:.2f})"

    return "\n".join([
        head("index build", f"{'median':>8}     (min, max)"),
        row("model load, once, not in the builds", f"{b['model_load_seconds']:8.2f} s"),
        row(f"full build into an empty folder, {full['chunks']} chunks", sec(full["seconds"])),
        row("  chunks per second", f"{full['chunks_per_second']['median']:8.1f}     "
            f"(min {full['chunks_per_second']['min']:.1f}, max {full['chunks_per_second']['max']:.1f})"),
        row("refresh after 1 article changed", sec(inc["seconds"])),
        row("  chunks embedded / reused", f"{inc['embedded']:8d} / {inc['reused']}  (changed: {', '.join(inc['changed_articles']) or 'none'})"),
    ])


def report_retrieve(data: dict) -> str:
    r, p = data["retrieve"], data["params"]
    lines = [head(f"warm retrieve and ask, k=5, {p['queries']} queries each", f"{'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}")]
    for mode, x in r["modes"].items():
        lines.append(row(mode, f"{x['p50_ms']:8.2f}  {x['p95_ms']:8.2f}  {x['max_ms']:8.2f}"))
    a = r["ask"]
    lines.append(row(f"ask, extractive ({a['abstained']} abstained)", f"{a['p50_ms']:8.2f}  {a['p95_ms']:8.2f}  {a['max_ms']:8.2f}"))
    lines.append(row("untimed: model load / index load", f"{r['model_load_seconds']:8.2f} s / {r['index_load_seconds']:.3f} s"))
    return "\n".join(lines)


def report_profile(data: dict) -> str:
    pr = data["retrieve"]["profile"]
    lines = [head(f"where a warm ask's time goes, {pr['n']} queries", f"{'p50 ms':>8}  {'p95 ms':>8}  {'share':>6}")]
    for key, x in pr["stages"].items():
        label = x["label"] + (f" ({pr['fusion']})" if key == "fusion" else "")
        lines.append(row(label, f"{x['p50_ms']:8.3f}  {x['p95_ms']:8.3f}  {x['share'] * 100:5.1f}%"))
    for name, label in (("retrieval", f"  retrieval stages ({pr['retrieval_mode']})"), ("answer", "  answer stages"),
                        ("total", "  total, as RAG.ask's Trace records it")):
        x = pr[name]
        lines.append(row(label, f"{x['p50_ms']:8.3f}  {x['p95_ms']:8.3f}"))
    return "\n".join(lines)


def report_memory(data: dict) -> str:
    mem, p = data["memory"], data["params"]
    return "\n".join([
        head("peak RSS (ru_maxrss), one process per phase", f"{'MB':>8}"),
        row("build phase, after model load", f"{mem['build']['after_model_load']['ru_maxrss_mb']:8.0f}"),
        row(f"build phase, after {p['repeat']} build(s) + refresh(es)", f"{mem['build']['after_build']['ru_maxrss_mb']:8.0f}"),
        row("retrieve phase, after model + index load", f"{mem['retrieve']['after_model_and_index_load']['ru_maxrss_mb']:8.0f}"),
        row("retrieve phase, at its end (all queries)", f"{mem['retrieve']['after_retrieve']['ru_maxrss_mb']:8.0f}"),
        row("benchmark parent process (no torch)", f"{mem['parent_mb']:8.0f}"),
    ])


def report_cold(data: dict) -> str:
    c = data.get("cold_start")
    if c is None:
        return ""

    def secs(x: dict) -> str:
        return f"{x['median'] / 1000:6.2f} s  {x['p95'] / 1000:6.2f} s"

    def ms(x: dict) -> str:
        return f"{x['median']:6.0f} ms {x['p95']:6.0f} ms"

    def rss(x: dict) -> str:
        return f"{x['median']:5.0f} MB (max {x['max']:.0f})"

    a = c["ask"]
    lines = [
        head("cold start: new process to first answer", f"{'median':>8}  {'p95':>8}  peak RSS"),
        row(f"`rag ask \"…\"`, {a['runs']} runs: to its exit", f"{secs(a['wall_ms'])}  {rss(a['peak_rss_mb'])}"),
        row("  to the answer's first line on stdout", secs(a["first_answer_ms"])),
    ]
    app = c["app"]
    if app.get("skipped"):
        lines.append(row("app.py", "skipped (--skip-app)"))
    else:
        lines += [
            row(f"app.py, {app['runs']} runs: serving HTTP", f"{secs(app['serving_ms'])}  {rss(app['peak_rss_mb'])}"),
            row("  first answer through its /ask API", secs(app["first_answer_ms"])),
            row("  that first /ask request alone", ms(app["request_ms"])),
            row("  a second /ask request, warm", ms(app["second_request_ms"])),
        ]
    lines.append(row("untimed: `rag index` that built their index", f"{c['index_build_seconds']:6.2f} s"))
    return "\n".join(lines)


def report_cli(data: dict) -> str:
    cli = data["cli_help"]
    return "\n".join([
        head(f"`{cli['command']}`, {cli['runs']} new processes", f"{'median':>8}  {'p95':>8}  {'peak RSS':>8}"),
        row("wall time, peak RSS", f"{cli['median_ms']:5.0f} ms  {cli['p95_ms']:5.0f} ms  {cli['peak_rss_mb']:5.0f} MB"
            + (" (= the parent's RSS: at most this)" if cli["peak_rss_mb"] <= cli["rss_floor_mb"] + 0.5 else "")),
        row("heavy modules imported by rag.cli", f"{', '.join(cli['heavy_modules_imported']) or 'none':>8}"),
    ])


def report_footer(data: dict) -> str:
    b, r = data["build"], data["retrieve"]
    cold = data.get("cold_start")
    lines = [f"total {data['total_seconds']:.1f} s (build phase {b['wall_seconds']:.1f} s, retrieve phase {r['wall_seconds']:.1f} s, "
             f"each with its own model load" + (f"; cold starts {cold['wall_seconds']:.1f} s)" if cold else ")")]
    warnings = sorted(set(b["warnings"]) | set(r["warnings"]))
    if warnings:
        lines.append(f"library warnings while loading: {len(warnings)} (listed in the JSON)")
    return "\n".join(lines)


def run_scale(args: argparse.Namespace) -> dict:
    """benchmarks/scale.py in its own process: its tables go straight to stdout,
    its JSON comes back to go into this run's."""
    with tempfile.TemporaryDirectory(prefix="rag-bench-scale-") as tmp:
        out = Path(tmp) / "scale.json"
        command = [sys.executable, str(Path(__file__).with_name("scale.py")), "--json", str(out)]
        command += ["--quick"] if args.quick else ["--sizes", args.scale]
        note(f"scale run: {' '.join(command[2:])}")
        print(flush=True)
        result = subprocess.run(command, cwd=ROOT, env=child_env())
        if result.returncode != 0:
            raise SystemExit(f"bench: the scale run failed (exit {result.returncode}); its messages are above")
        return json.loads(out.read_text())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench.py",
        description=(
            "Measure on this machine: index build (full and after one article changed), warm retrieval "
            "latency per mode and where a warm ask's time goes stage by stage, the thread pools in effect, "
            "peak memory per phase, and cold starts in new processes (`rag ask`, the chat app, `rag --help`). "
            "Prints a table and writes JSON."
        ),
        epilog=(
            "Each phase runs in its own child process so its peak RSS is its own. The model is loaded once per "
            "phase and timed apart from the builds. Cold starts are timed from spawn to the first answer against "
            "an index built beforehand; the app listens on 127.0.0.1 only and is always stopped. "
            "The machine may be shared: compare medians and p95."
        ),
    )
    parser.add_argument("--queries", type=int, default=None, metavar="N",
                        help="timed queries per retrieval mode, cycling through eval/questions.jsonl (default: 200; 20 with --quick)")
    parser.add_argument("--repeat", type=int, default=None, metavar="R",
                        help="full builds and refreshes to time (default: 3; 1 with --quick)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="OUT", help="where to write the results as JSON (default: benchmarks/results/bench.json)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, metavar="DIR",
                        help="corpus folder to index (default: ./corpus of the repository); it is only read, the refresh changes a temporary copy")
    parser.add_argument("--cold-runs", type=int, default=None, metavar="N",
                        help=f"new `rag ask` processes to time (default: {COLD_ASK_RUNS}; {QUICK_COLD_ASK_RUNS} with --quick)")
    parser.add_argument("--app-runs", type=int, default=None, metavar="N",
                        help=f"cold starts of the chat app to time, after one untimed start (default: {APP_RUNS}; "
                             f"{QUICK_APP_RUNS} with --quick)")
    parser.add_argument("--skip-app", action="store_true",
                        help="do not start the chat app (no Gradio); `rag ask` cold starts still run")
    parser.add_argument("--skip-cold", action="store_true",
                        help="no cold starts at all: neither `rag ask` nor the app, nor the `rag index` they need")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: 1 repeat, 20 queries, {QUICK_CLI_RUNS} `rag --help` runs, {QUICK_COLD_ASK_RUNS} "
                             f"`rag ask` and {QUICK_APP_RUNS} app cold starts (a few minutes on 2 cores)")
    parser.add_argument("--scale", nargs="?", const=SCALE_SIZES, default=None, metavar="SIZES",
                        help=f"also run the scale run (benchmarks/scale.py) at these chunk counts, after the table above "
                             f"(default when given without sizes: {SCALE_SIZES}; about two hours on 2 cores; with --quick, "
                             "its smoke run); its tables follow and its figures go into the JSON under \"scale\"")
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
    if args.cold_runs is None:
        args.cold_runs = QUICK_COLD_ASK_RUNS if args.quick else COLD_ASK_RUNS
    if args.app_runs is None:
        args.app_runs = QUICK_APP_RUNS if args.quick else APP_RUNS
    if min(args.queries, args.repeat, args.cold_runs, args.app_runs) < 1:
        parser.error("--queries, --repeat, --cold-runs and --app-runs must be at least 1 (use --skip-app or --skip-cold to leave cold starts out)")
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
                      "corpus": str(args.corpus), "cold_runs": 0 if args.skip_cold else args.cold_runs,
                      "app_runs": 0 if args.skip_cold or args.skip_app else args.app_runs}
    cli_runs = QUICK_CLI_RUNS if args.quick else CLI_RUNS
    note(f"timing `rag --help` ({cli_runs} runs)")
    data["cli_help"] = time_cli(cli_runs)
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        work = Path(tmp)
        note(f"build phase: model load, {args.repeat} full build(s) and refresh(es)")
        build = run_phase("build", args, work, [])
        note(f"retrieve phase: {args.queries} queries x {len(MODES)} modes")
        retrieve = run_phase("retrieve", args, work, ["--index", build["index_for_retrieve"]])
        if not args.skip_cold:  # after the phases, so no other benchmark process competes for the cores
            cold_started = time.perf_counter()
            data["cold_start"] = cold_starts(args, work)
            data["cold_start"]["wall_seconds"] = time.perf_counter() - cold_started
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

    print(report(data), flush=True)
    if args.scale:
        data["scale"] = run_scale(args)
        data["total_seconds"] = time.perf_counter() - started
    write_json(args.json, data)
    note(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The product against LangChain's FAISS recipe, in one run on this machine.

    .venv/bin/pip install -e '.[bench]'            # LangChain, for this benchmark only
    .venv/bin/python benchmarks/langchain_ref.py   # --queries 200 --builds 3 --cold-runs 5
    .venv/bin/python benchmarks/langchain_ref.py --quick

The reference is LangChain's usual recipe over the same articles (the text the
product reads from corpus/, after its repair) and the same bundled model:
RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200),
HuggingFaceEmbeddings pointed at the model's local folder (HF_HUB_OFFLINE=1),
FAISS.from_documents, similarity_search(k=5). It is timed at its defaults
(torch picks its own thread count) and with torch on one thread, as the
product embeds a question.

Both sides run in worker processes of their own, started once: each loads its
model (timed apart), then the parent asks them in turn, question by question
and build by build, alternating who goes first, so that machine noise falls on
both alike. Each worker reports its own peak RSS. Then the cold starts of
`rag ask` and `rag --help` in new processes (benchmarks/bench.py's timers).
Figures go to stdout and to --json (default benchmarks/results/langchain_ref.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from measure import write_json  # noqa: E402  (this folder is sys.path[0])

NEEDED = ("langchain_community", "langchain_text_splitters", "sentence_transformers")
INSTALL_HINT = (
    "LangChain is not installed: it is a benchmark extra, not part of the product. "
    "Install it with `.venv/bin/pip install -e '.[bench]'` (langchain-community, langchain-text-splitters) "
    "and run this again."
)

# The worker: one side of the comparison, answering the parent's requests
# (one JSON object a line) with timings measured inside it.
WORKER = r'''
import json, os, resource, shutil, sys, time
side, root, corpus, work = sys.argv[1:5]
sys.path.insert(0, root)
os.environ["HF_HUB_OFFLINE"] = "1"
from rag.ingest import load_corpus
from rag.embedding import resolve_model

def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()

def cpu():  # user + system seconds of this process, every thread (torch's spinning ones too)
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime

started = time.perf_counter()
if side == "langchain":
    import torch
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError:
        from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS
    default_threads = torch.get_num_threads()
    embeddings = HuggingFaceEmbeddings(
        model_name=str(resolve_model("all-MiniLM-L6-v2")), model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True},
    )
    embeddings.embed_query("model warm-up")
    articles = load_corpus(corpus).articles
    docs = [Document(page_content=a.text, metadata={"source": a.id}) for a in articles]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    store = None
else:
    from rag import RAG, Settings
    from rag.embedding import embedder_for, sentence_embedder_for
    settings = Settings.from_env(query_cache_size=0)  # RAG_EMBED_BACKEND picks the backend to compare
    embedder = embedder_for(settings.index)
    embedder.embed(["model warm-up"]); embedder.count_pieces("model warm-up")
    sentence_embedder_for(settings.index, embedder).embed(["model warm-up"])  # itself unless set apart
    r = None
reply({"ready": True, "model_load_s": time.perf_counter() - started,
       "backend": "torch" if side == "langchain" else getattr(embedder, "backend", "torch")})
builds = 0
for line in sys.stdin:
    req = json.loads(line)
    op = req["op"]
    if op == "build":
        builds += 1
        t, c = time.perf_counter(), cpu()
        if side == "langchain":
            torch.set_num_threads(default_threads)
            chunks = splitter.split_documents(docs)
            store = FAISS.from_documents(chunks, embeddings)
            n = len(chunks)
        else:
            index = os.path.join(work, f"index-{builds}")
            shutil.rmtree(index, ignore_errors=True)
            r = RAG.load(corpus, index, settings=settings, embedder=embedder)
            n = r.summary.chunks
            extra = r.summary.sentences_embedded
        reply({"seconds": time.perf_counter() - t, "cpu_s": cpu() - c, "chunks": n, **({"sentences": extra} if side != "langchain" else {})})
    elif op == "query":
        if side == "langchain":
            torch.set_num_threads(req["threads"] or default_threads)
            t = time.perf_counter(); store.similarity_search(req["q"], k=5)
        elif req["what"] == "retrieve":
            t = time.perf_counter(); r.retrieve(req["q"], k=5)
        else:
            t = time.perf_counter(); r.ask(req["q"], k=5)
        reply({"ms": (time.perf_counter() - t) * 1000})
    elif op == "end":
        reply({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "default_threads": default_threads if side == "langchain" else None})
        break
'''


class Worker:
    def __init__(self, side: str, corpus: Path, work: Path, env: dict[str, str]) -> None:
        self.side = side
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, side, str(ROOT), str(corpus), str(work)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )
        self.hello = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise SystemExit(f"langchain_ref: the {self.side} worker stopped (exit {code}); its error is above")
        return json.loads(line)

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def end(self) -> dict:
        out = self.ask(op="end")
        self.proc.wait(timeout=60)
        return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def lat(ms: list[float]) -> dict:
    return {"p50_ms": statistics.median(ms), "p95_ms": pct(ms, 95), "n": len(ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200, help="timed queries per kind (default 200)")
    parser.add_argument("--builds", type=int, default=3, help="full builds per side (default 3)")
    parser.add_argument("--cold-runs", type=int, default=5, help="new `rag ask` and `rag --help` processes (default 5)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 queries, 1 build, 2 cold runs")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "langchain_ref.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.builds, args.cold_runs = 20, 1, 2
    missing = [m for m in NEEDED if _absent(m)]
    if missing:
        print(f"langchain_ref: {', '.join(missing)} missing. {INSTALL_HINT}", file=sys.stderr)
        return 2

    import bench  # the cold-start timers of the product's own benchmark

    env = bench.child_env()
    questions = [json.loads(l)["question"] for l in (ROOT / "eval" / "questions.jsonl").read_text().splitlines() if l.strip()]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rag-lcref-") as tmp:
        work = Path(tmp)
        sides = {"langchain": Worker("langchain", args.corpus, work, env), "rag": Worker("rag", args.corpus, work, env)}
        builds: dict[str, list[dict]] = {"langchain": [], "rag": []}
        for i in range(args.builds):
            for side in (["langchain", "rag"] if i % 2 == 0 else ["rag", "langchain"]):
                builds[side].append(sides[side].ask(op="build"))
        kinds = [("similarity_search", "langchain", {"threads": 0}), ("similarity_search_1_thread", "langchain", {"threads": 1}),
                 ("retrieve", "rag", {"what": "retrieve"}), ("ask", "rag", {"what": "ask"})]
        for q in questions[:10]:  # warm-up, untimed
            for _, side, extra in kinds:
                sides[side].ask(op="query", q=q, **extra)
        ms: dict[str, list[float]] = {k: [] for k, _, _ in kinds}
        for i in range(args.queries):
            q = questions[i % len(questions)]
            for name, side, extra in (kinds if i % 2 == 0 else kinds[::-1]):
                ms[name].append(sides[side].ask(op="query", q=q, **extra)["ms"])
        ends = {side: w.end() for side, w in sides.items()}

        question = bench.first_question()
        index = work / "cold-index"
        bench.build_cli_index(args.corpus, index)
        cold_ask = bench.time_cold_ask(args.cold_runs, question, args.corpus, index)
        cold_help = bench.time_cli(args.cold_runs)

    build_s = {side: statistics.median(b["seconds"] for b in runs) for side, runs in builds.items()}
    build_cpu_s = {side: statistics.median(b["cpu_s"] for b in runs) for side, runs in builds.items()}
    data = {
        "machine": {"cpu_count": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
        "versions": {d: bench.version_of(d) for d in ("langchain-core", "langchain-community", "langchain-text-splitters",
                                                      "sentence-transformers", "torch", "onnxruntime", "faiss-cpu")},
        "model_load_s": {side: w.hello["model_load_s"] for side, w in sides.items()},
        "rag_embed_backend": sides["rag"].hello["backend"],
        "langchain_default_torch_threads": ends["langchain"]["default_threads"],
        "build": {side: {"median_s": build_s[side], "median_cpu_s": build_cpu_s[side], "runs": runs}
                  for side, runs in builds.items()},
        "queries": {name: lat(v) for name, v in ms.items()},
        "peak_rss_mb": {side: e["peak_rss_mb"] for side, e in ends.items()},
        "cold": {"rag_ask": cold_ask, "rag_help": cold_help},
    }
    q = data["queries"]
    ref, ref1 = q["similarity_search"]["p50_ms"], q["similarity_search_1_thread"]["p50_ms"]
    data["ratios"] = {
        "retrieve_p50_vs_similarity_search": q["retrieve"]["p50_ms"] / ref,
        "ask_p50_vs_similarity_search": q["ask"]["p50_ms"] / ref,
        "retrieve_p50_vs_similarity_search_1_thread": q["retrieve"]["p50_ms"] / ref1,
        "ask_p50_vs_similarity_search_1_thread": q["ask"]["p50_ms"] / ref1,
        "build_vs_from_documents": build_s["rag"] / build_s["langchain"],
        "build_cpu_vs_from_documents": build_cpu_s["rag"] / build_cpu_s["langchain"],
    }
    write_json(args.json, data)
    print(report(data))
    print(f"\nfigures written to {args.json}")
    return 0


def _absent(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def report(d: dict) -> str:
    q, b, r = d["queries"], d["build"], d["ratios"]
    lc, rg = b["langchain"]["runs"][-1], b["rag"]["runs"][-1]
    lines = [
        f"machine: {d['machine']['cpu_count']} cores, load {d['machine']['load_before'][0]:.1f} before, "
        f"{d['machine']['load_after'][0]:.1f} after; product embeds on {d['rag_embed_backend']}; "
        f"LangChain's torch default {d['langchain_default_torch_threads']} threads",
        "",
        "| what | p50 | p95 | vs similarity_search (default / 1 thread) |",
        "| --- | --- | --- | --- |",
    ]
    for name in ("similarity_search", "similarity_search_1_thread", "retrieve", "ask"):
        x = q[name]
        ratio = (f"{x['p50_ms'] / q['similarity_search']['p50_ms']:.2f}x / {x['p50_ms'] / q['similarity_search_1_thread']['p50_ms']:.2f}x"
                 if name in ("retrieve", "ask") else "")
        lines.append(f"| warm {name} (k=5, {x['n']} queries) | {x['p50_ms']:.2f} ms | {x['p95_ms']:.2f} ms | {ratio} |")
    lines += [
        f"| full build: LangChain from_documents ({lc['chunks']} chunks), median | {b['langchain']['median_s']:.2f} s | | |",
        f"| full build: product ({rg['chunks']} chunks and {rg['sentences']} sentences), median | {b['rag']['median_s']:.2f} s | | "
        f"{r['build_vs_from_documents']:.2f}x |",
        f"| full build, CPU (user+sys): LangChain / product, median | {b['langchain']['median_cpu_s']:.2f} s / "
        f"{b['rag']['median_cpu_s']:.2f} s | | {r['build_cpu_vs_from_documents']:.2f}x |",
        f"| model load: LangChain / product | {d['model_load_s']['langchain']:.2f} s / {d['model_load_s']['rag']:.2f} s | | |",
        f"| cold `rag ask`, spawn to answer | {d['cold']['rag_ask']['first_answer_ms']['median']:.0f} ms | "
        f"{d['cold']['rag_ask']['first_answer_ms']['p95']:.0f} ms | |",
        f"| cold `rag --help` | {d['cold']['rag_help']['median_ms']:.0f} ms | {d['cold']['rag_help']['p95_ms']:.0f} ms | |",
        f"| peak RSS: LangChain worker / product worker | {d['peak_rss_mb']['langchain']:.0f} MB / {d['peak_rss_mb']['rag']:.0f} MB | | |",
        f"| peak RSS: cold `rag ask` / `rag --help` | {d['cold']['rag_ask']['peak_rss_mb']['median']:.0f} MB / "
        f"{d['cold']['rag_help']['peak_rss_mb']:.0f} MB | | |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""Compare the two embedding backends, PyTorch and ONNX Runtime, on this machine.

    .venv/bin/python benchmarks/backends.py            # full run: 300 questions, 3 batch repeats, ONNX variants
    .venv/bin/python benchmarks/backends.py --quick    # smoke run: 30 questions, 1 repeat, no variants

Prints a table on stdout and writes the figures as JSON (default
benchmarks/results/backends.json).

What it measures, with the product's own embedders (rag.embedding), so that
each backend runs under the product's thread policy: one intra-op thread for
a question, every core for a batch.
  * Single question: the questions of eval/questions.jsonl, cycled to N calls
    per backend, one text per call. The backends alternate call by call, and
    which goes first alternates too (A B B A ...), so that machine noise falls
    on both alike. Reported as p50/p95 in milliseconds after 10 warm-up calls.
  * Batch: every chunk text of the corpus, as the index embeds them (title
    prefix included), in batches of 32, R times per backend, alternating.
  * Agreement: the cosine between the two backends' vectors of every chunk,
    every sentence and every question; min and mean.
  * Start-up: a new Python process that makes the embedder and embeds one text,
    3 times per backend, alternating; and whether that process imported torch.
  * Variants (with the `onnx` package installed): the exported graph after
    ONNX Runtime's transformer optimiser at the levels optimum calls O1-O3,
    and int8 dynamic quantisation. O4 is O3 in float16, which only GPUs run
    fast, so it is not tried. A variant is worth adopting only if its
    agreement stays at or above rag.embedding.AGREEMENT.
The machine may be shared with other work: the load average before and after
is part of the figures; read medians and p95, not single runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # measure this working copy of `rag`

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local folder; never ask a hub

import numpy as np  # noqa: E402

from rag.embedding import (  # noqa: E402
    AGREEMENT,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    _OnnxRunner,
)
from rag.settings import Settings, user_cache_dir  # noqa: E402

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "backends.json"
QUESTIONS = ROOT / "eval" / "questions.jsonl"
WARMUP = 10
STARTUP_RUNS = 3
SCHEMA = 1


def latency(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
    }


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Cosines of matching rows of two sets of unit vectors."""
    cos = (a * b).sum(axis=1)
    return {"n": len(cos), "min": float(cos.min()), "mean": float(cos.mean())}


# --- the texts ------------------------------------------------------------------------


class _Recorder:
    """Indexes the corpus as the product does, keeping the texts it is asked to
    embed: the real model counts word pieces (chunk sizes depend on it), hash
    vectors stand in for the embeddings so that nothing is timed here."""

    def __init__(self, real: SentenceTransformerEmbedder) -> None:
        from rag.embedding import HashEmbedder

        self.real, self.fake = real, HashEmbedder(dimension=real.dimension)
        self.name, self.dimension, self.max_pieces = "recorder", real.dimension, real.max_pieces
        self.calls: list[list[str]] = []

    def count_pieces(self, text: str) -> int:
        return self.real.count_pieces(text)

    def embed(self, texts, *, progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        return self.fake.embed(texts)


def corpus_texts(real: SentenceTransformerEmbedder, corpus: Path) -> tuple[list[str], list[str]]:
    """The chunk texts and the sentence texts that indexing `corpus` embeds."""
    from rag import RAG

    recorder = _Recorder(real)
    with tempfile.TemporaryDirectory(prefix="rag-bench-index-") as index:
        RAG.load(corpus, index, embedder=recorder, settings=Settings())
    chunks, sentences = recorder.calls  # the indexer embeds chunks, then sentences
    return chunks, sentences


def questions() -> list[str]:
    return [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]


# --- the measurements -----------------------------------------------------------------


def single_queries(backends: dict, texts: list[str], n: int) -> dict:
    """Per backend, the latency of one-question calls, interleaved A B B A ..."""
    names = list(backends)
    for name in names:
        for text in texts[:WARMUP]:
            backends[name]([text])
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        text = texts[i % len(texts)]
        for name in names if i % 2 == 0 else reversed(names):
            started = time.perf_counter()
            backends[name]([text])
            times[name].append(time.perf_counter() - started)
    return {name: latency(t) for name, t in times.items()}


def batches(backends: dict, texts: list[str], repeats: int) -> dict:
    """Per backend, seconds to embed all `texts` and texts per second, interleaved."""
    names = list(backends)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            started = time.perf_counter()
            backends[name](texts)
            seconds[name].append(time.perf_counter() - started)
    return {
        name: {
            "texts": len(texts),
            "median_seconds": float(np.median(s)),
            "texts_per_second": len(texts) / float(np.median(s)),
            "runs": s,
        }
        for name, s in seconds.items()
    }


STARTUP_SCRIPT = """
import sys, time
started = time.perf_counter()
from rag.embedding import make_embedder
embedder = make_embedder(backend=sys.argv[1], cache_dir=sys.argv[2])
embedder.embed(["Why did Vucic halt arms deliveries to Israel?"])
print(time.perf_counter() - started, "torch" in sys.modules)
"""


def startup(cache_dir: Path, runs: int) -> dict:
    """Per backend, a new process's seconds to import, load the model and embed one question."""
    out: dict[str, dict] = {}
    seconds: dict[str, list[float]] = {"torch": [], "onnx": []}
    for r in range(runs):
        for name in ("torch", "onnx") if r % 2 == 0 else ("onnx", "torch"):
            result = subprocess.run(
                [sys.executable, "-c", STARTUP_SCRIPT, name, str(cache_dir)],
                cwd=ROOT, capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            took, imported_torch = result.stdout.split()
            seconds[name].append(float(took))
            out[name] = {"imports_torch": imported_torch == "True"}
    for name, s in seconds.items():
        out[name].update(median_seconds=float(np.median(s)), runs=s)
    return out


# --- ONNX variants ----------------------------------------------------------------------


def make_variants(source: Path, folder: Path) -> tuple[dict[str, Path], str | None]:
    """O1-O3 and int8 files made from `source`, or a note why none could be made."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers.optimizer import optimize_model
        from onnxruntime.transformers.fusion_options import FusionOptions
    except ImportError as e:
        return {}, f"variants skipped: {e.name} is missing (pip install onnx)"
    variants: dict[str, Path] = {}
    # As optimum's O1-O3: ONNX Runtime's basic graph optimisations; then its
    # transformer fusions (attention, layer norm, GELU); then also the tanh
    # approximation of GELU.
    for label, level, approximate in (("O1", 1, False), ("O2", 2, False), ("O3", 2, True)):
        options = FusionOptions("bert")
        options.enable_gelu_approximation = approximate
        model = optimize_model(str(source), model_type="bert", opt_level=level, optimization_options=options)
        variants[label] = folder / f"{label}.onnx"
        model.save_model_to_file(str(variants[label]))
    variants["int8"] = folder / "int8.onnx"
    quantize_dynamic(str(source), str(variants["int8"]), weight_type=QuantType.QInt8)
    return variants, None


def measure_variants(base: OnnxEmbedder, reference: np.ndarray, texts: list[str], qs: list[str], n: int) -> dict:
    """Per variant: agreement with PyTorch, and one-question latency interleaved with the plain export."""
    with tempfile.TemporaryDirectory(prefix="rag-onnx-variants-") as tmp:
        paths, note = make_variants(base.onnx_path, Path(tmp))
        if note:
            return {"note": note}
        out: dict[str, dict] = {}
        plain = _OnnxRunner(base.onnx_path, base._truncating_tokenizer, base.batch_size, base.dimension)
        for label, path in paths.items():
            runner = _OnnxRunner(path, base._truncating_tokenizer, base.batch_size, base.dimension)
            figures = agreement(reference, runner.run(texts, os.cpu_count() or 1))
            # Both straight through ONNX Runtime, so only the file differs.
            timed = single_queries({"plain": lambda t: plain.run(t, 1), label: lambda t, r=runner: r.run(t, 1)}, qs, n)
            out[label] = {
                "agreement": figures,
                "keeps_agreement": figures["min"] >= AGREEMENT,
                "single": timed[label],
                "plain_single": timed["plain"],
                "size_mb": path.stat().st_size / 1e6,
            }
        return out


# --- report ------------------------------------------------------------------------------


def table(data: dict) -> str:
    s, b, a, st = data["single"], data["batch"], data["agreement"], data["startup"]
    rows = [
        ("", "torch", "onnx"),
        ("question p50 ms (1 thread)", f"{s['torch']['p50_ms']:.2f}", f"{s['onnx']['p50_ms']:.2f}"),
        ("question p95 ms (1 thread)", f"{s['torch']['p95_ms']:.2f}", f"{s['onnx']['p95_ms']:.2f}"),
        (f"batch chunks/s ({data['machine']['cpu_count']} threads)",
         f"{b['torch']['texts_per_second']:.1f}", f"{b['onnx']['texts_per_second']:.1f}"),
        ("new process to first vector s", f"{st['torch']['median_seconds']:.2f}", f"{st['onnx']['median_seconds']:.2f}"),
        ("imports torch", str(st["torch"]["imports_torch"]), str(st["onnx"]["imports_torch"])),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[1]:>10}  {r[2]:>10}" for r in rows]
    for what, fig in a.items():
        lines.append(f"cosine torch/onnx, {fig['n']} {what}: min {fig['min']:.6f}, mean {fig['mean']:.6f}")
    variants = data.get("variants", {})
    if "note" in variants:
        lines.append(variants["note"])
    for label, v in variants.items():
        if label == "note":
            continue
        lines.append(
            f"variant {label}: cosine min {v['agreement']['min']:.4f} mean {v['agreement']['mean']:.4f}"
            f" ({'keeps' if v['keeps_agreement'] else 'LOSES'} >= {AGREEMENT}); question p50"
            f" {v['single']['p50_ms']:.2f} ms vs plain {v['plain_single']['p50_ms']:.2f} ms, {v['size_mb']:.0f} MB"
        )
    lines.append(f"load average before {data['load_before']}, after {data['load_after']}")
    return "\n".join(lines)


def versions() -> dict:
    out = {}
    for package in ("torch", "onnxruntime", "sentence-transformers", "transformers", "onnx"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the PyTorch and ONNX Runtime embedding backends against each other on this machine.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--queries", type=int, default=300, help="one-question calls per backend (default 300)")
    parser.add_argument("--repeat", type=int, default=3, help="batch runs per backend (default 3)")
    parser.add_argument("--quick", action="store_true", help="30 questions, 1 batch run, 1 start-up run, no variants")
    parser.add_argument("--no-variants", action="store_true", help="skip the optimised and quantised ONNX files")
    parser.add_argument("--corpus", default=str(ROOT / "corpus"), help="corpus folder (default ./corpus)")
    parser.add_argument("--cache-dir", default=None,
                        help="where the ONNX export is kept (default: the product's, $XDG_CACHE_HOME/rag)")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help=f"where the figures go (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    n, repeats, runs = (30, 1, 1) if args.quick else (args.queries, args.repeat, STARTUP_RUNS)
    if n < WARMUP or repeats < 1:
        parser.error(f"--queries must be at least {WARMUP} and --repeat at least 1")
    cache_dir = Path(args.cache_dir) if args.cache_dir else user_cache_dir()

    load_before = [round(x, 2) for x in os.getloadavg()]
    torch_embedder = SentenceTransformerEmbedder()
    onnx_embedder = OnnxEmbedder(cache_dir=cache_dir)
    if onnx_embedder.backend != "onnx":
        print("error: the ONNX model could not be had (see the warning above): nothing to compare", file=sys.stderr)
        return 1
    chunks, sentences = corpus_texts(torch_embedder, Path(args.corpus))
    qs = questions()
    backends = {"torch": torch_embedder.embed, "onnx": onnx_embedder.embed}

    data: dict = {
        "schema": SCHEMA,
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": versions(),
        "onnx_file": str(onnx_embedder.onnx_path),
        "params": {"queries": n, "repeat": repeats, "startup_runs": runs, "batch_size": onnx_embedder.batch_size},
    }
    data["single"] = single_queries(backends, qs, n)
    data["batch"] = batches(backends, chunks, repeats)
    every = {"chunks": chunks, "sentences": sentences, "questions": qs}
    reference = {what: torch_embedder.embed(texts) for what, texts in every.items()}
    data["agreement"] = {what: agreement(reference[what], onnx_embedder.embed(texts)) for what, texts in every.items()}
    data["startup"] = startup(cache_dir, runs)
    if not (args.quick or args.no_variants):
        data["variants"] = measure_variants(
            onnx_embedder, np.concatenate([reference["chunks"], reference["questions"]]), chunks + qs, qs, max(WARMUP, n // 3)
        )
    data["load_after"] = [round(x, 2) for x in os.getloadavg()]
    data["load_before"] = load_before

    print(table(data))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    print(f"figures written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

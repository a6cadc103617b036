"""Index builds of checkouts of this product, interleaved in one run.

    .venv/bin/python benchmarks/build_compare.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 3] [--backends onnx,onnx-int8]

Each round runs, for every checkout and embedding backend, one new process
(its code first on sys.path) that loads the model (untimed), builds the index
of corpus/ into an empty folder, then appends a sentence to one article of a
copy of corpus/ and refreshes (one article re-embedded, the rest reused).
Rounds rotate the order so that machine noise falls on all alike; medians of
the rounds are printed, with chunks per second (chunks of the index over the
build's seconds; a build also embeds the sentences). `git archive COMMIT |
tar -x -C DIR` makes an old checkout. The OLD checkout runs on "onnx" only
(it has no int8).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import run_child  # noqa: E402

CHILD = r'''
import json, os, resource, shutil, sys, time
root, corpus, work, backend = sys.argv[1:5]
def cpu():  # user + system seconds of this process, every thread
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
sys.path.insert(0, root)
from rag import RAG, Settings
from rag.embedding import embedder_for
backend, _, sentence_backend = backend.partition("/")  # "onnx/onnx-int8": sentences on their own backend
settings = Settings(embed_backend=backend, **({"sentence_embed_backend": sentence_backend} if sentence_backend else {}))
embedder = embedder_for(settings.index)
embedder.embed(["model warm-up"]); embedder.count_pieces("model warm-up")
try:  # a checkout that embeds sentences with a model of their own loads it here too
    from rag.embedding import sentence_embedder_for
    sentence_embedder_for(settings.index, embedder).embed(["model warm-up"])
except ImportError:
    pass
t, c = time.perf_counter(), cpu()
r = RAG.load(corpus, os.path.join(work, "full"), settings=settings, embedder=embedder)
full, full_cpu = time.perf_counter() - t, cpu() - c
chunks, sentences = r.summary.chunks, r.summary.sentences_embedded
copy = os.path.join(work, "corpus")
shutil.copytree(corpus, copy)
RAG.load(copy, os.path.join(work, "incr"), settings=settings, embedder=embedder)
target = sorted(p for p in os.listdir(copy) if p.endswith(".txt"))[0]
with open(os.path.join(copy, target), "a", encoding="utf-8") as f:
    f.write("\n\nThe delegation also discussed rail links between the two capitals.\n")
t, c = time.perf_counter(), cpu()
s = RAG.load(copy, os.path.join(work, "incr"), settings=settings, embedder=embedder).summary
refresh, refresh_cpu = time.perf_counter() - t, cpu() - c
print(json.dumps({"full_s": full, "full_cpu_s": full_cpu, "chunks": chunks, "sentences": sentences,
                  "refresh_s": refresh, "refresh_cpu_s": refresh_cpu,
                  "refresh_embedded": s.embedded, "refresh_sentences": s.sentences_embedded}))
'''


def measure(root: Path, backend: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="rag-buildcmp-") as work:
        return run_child(f"build_compare: {root} ({backend})", CHILD, [str(root), str(ROOT / "corpus"), work, backend], root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="a checkout of the product before the change")
    parser.add_argument("new", type=Path, help="a checkout after it")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="onnx,onnx-int8",
                        help="embedding backends of NEW to time (default onnx,onnx-int8); "
                             "CHUNKS/SENTENCES, e.g. onnx/onnx-int8, embeds the sentences on a backend of their own")
    args = parser.parse_args(argv)
    runs = [("old", args.old, "onnx")] + [(f"new {b}", args.new, b) for b in args.backends.split(",")]
    rows: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    for n in range(args.rounds):
        for name, root, backend in runs[n % len(runs):] + runs[: n % len(runs)]:
            x = measure(root, backend)
            rows[name].append(x)
            print(f"round {n + 1} {name}: full {x['full_s']:.2f} s, CPU {x['full_cpu_s']:.2f} s ({x['chunks']} chunks, "
                  f"{x['sentences']} sentences), refresh {x['refresh_s']:.2f} s, CPU {x['refresh_cpu_s']:.2f} s "
                  f"({x['refresh_embedded']} chunks, {x['refresh_sentences']} sentences embedded)",
                  flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("\n| checkout | full build, median | CPU (user+sys), median | chunks/s | refresh, median | CPU, median | chunks/s |"
          "\n| --- | --- | --- | --- | --- | --- | --- |")
    for name, xs in rows.items():
        full = statistics.median(x["full_s"] for x in xs)
        refresh = statistics.median(x["refresh_s"] for x in xs)
        chunks = xs[-1]["chunks"]
        print(f"| {name} | {full:.2f} s (max {max(x['full_s'] for x in xs):.2f}) | "
              f"{statistics.median(x['full_cpu_s'] for x in xs):.2f} s | {chunks / full:.1f} | "
              f"{refresh:.2f} s (max {max(x['refresh_s'] for x in xs):.2f}) | "
              f"{statistics.median(x['refresh_cpu_s'] for x in xs):.2f} s | {chunks / refresh:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How a batch job should use the cores: three ways to run the same planned batches.

    .venv/bin/python benchmarks/batch_threads.py [--rounds 4] [--busy]

The texts are what a full build of corpus/ embeds (every chunk with its title
line and every sentence), tokenized and cut into batches once, as the product
plans them (rag.embedding.plan_batches). Each round times, in rotating order:

* `one session, every core`: the batches one after another on one ONNX
  Runtime session whose thread pool splits each matrix product;
* `workers, shared session`: one worker thread a core, each running whole
  batches (longest first) on that same session (its pool threads and the
  workers then contend for the cores);
* `workers, one-thread session`: the same workers on one session of one
  thread, run by them all at once, as the product does for a batch job;
* `one thread`: the batches one after another on the one-thread session.

Wall clock and CPU time (user + system of this process) are printed per round,
with the medians. `--busy` keeps one core busy with a spinning child process
throughout, as another job on the machine would. The vectors of the three ways
are compared first: they must be the same to the bit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from int8 import texts_of  # noqa: E402  (benchmarks/ is this script's folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--busy", action="store_true", help="keep one core busy with a spinning process")
    args = parser.parse_args(argv)

    from rag.embedding import OnnxEmbedder, _open_session, _padded, plan_batches

    embedder = OnnxEmbedder()
    if embedder.backend != "onnx":
        print(f"error: the ONNX model is not available (backend {embedder.backend}): run `rag index` once", file=sys.stderr)
        return 1
    texts = texts_of(args.corpus, embedder)  # what a full build embeds
    encodings = embedder._truncating_tokenizer.encode_batch(texts)
    lengths = [len(e.ids) for e in encodings]
    batches = plan_batches(lengths, embedder.batch_size)
    feeds = [_padded([encodings[i] for i in rows]) for rows in batches]
    cores = os.cpu_count() or 1
    every_core, one_thread = _open_session(embedder.onnx_path, cores), _open_session(embedder.onnx_path, 1)

    def in_turn(session) -> list[np.ndarray]:
        return [session.run(None, feed)[0] for feed in feeds]

    def workers(session) -> list[np.ndarray]:
        order = sorted(range(len(feeds)), key=lambda i: -feeds[i]["input_ids"].size)
        with ThreadPoolExecutor(cores) as pool:
            done = dict(zip(order, pool.map(lambda i: session.run(None, feeds[i])[0], order)))
        return [done[i] for i in range(len(feeds))]

    ways = {"one session, every core": lambda: in_turn(every_core),
            "workers, shared session": lambda: workers(every_core),
            "workers, one-thread session": lambda: workers(one_thread),
            "one thread": lambda: in_turn(one_thread)}
    first = {name: run() for name, run in ways.items()}
    reference = first["one session, every core"]
    same = all(np.array_equal(a, b) for out in first.values() for a, b in zip(reference, out))
    print(f"{len(texts)} texts, {sum(lengths):,} word pieces in {len(batches)} batches, {cores} cores; "
          f"vectors the same to the bit: {same}; load average {os.getloadavg()[0]:.1f}")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        wall: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                t, c = time.perf_counter(), time.process_time()
                ways[name]()
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
                print(f"round {r + 1} {name}: {wall[name][-1]:.2f} s, CPU {cpu[name][-1]:.2f} s", flush=True)
    finally:
        if spinner:
            spinner.kill()
    print(f"load average after: {os.getloadavg()[0]:.1f}{' (one core kept busy)' if args.busy else ''}")
    print("\n| way | wall clock, median (range) | CPU, median |\n| --- | --- | --- |")
    for name in ways:
        print(f"| {name} | {statistics.median(wall[name]):.2f} s ({min(wall[name]):.2f}-{max(wall[name]):.2f}) "
              f"| {statistics.median(cpu[name]):.2f} s |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""The int8 model against the float one: agreement, question time, the tokenizer's share.

    .venv/bin/python benchmarks/int8.py [--queries 300]

* Agreement: cosine between the two models' vectors of every text the index
  embeds (chunk texts with their title, sentences) of corpus/ and of
  eval/squad/corpus, and of every question of both question files; min,
  1st percentile and mean per set.
* Question time: the product's embedders (one thread), one question a call,
  float and int8 alternating (which goes first alternates too), p50/p95.
* The tokenizer's share: the word-piece encoding of the same questions,
  timed alone, against the int8 and float call.
The machine may be shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from rag.embedding import make_embedder  # noqa: E402
from rag.indexer import embedded_units  # noqa: E402
from rag.ingest import load_corpus  # noqa: E402
from rag.settings import Settings  # noqa: E402


def texts_of(corpus: Path, embedder) -> list[str]:
    settings = Settings().index
    out: list[str] = []
    for article in load_corpus(corpus).articles:
        units = embedded_units(article, settings, embedder)
        out += units.chunk_texts + units.sentence_texts
    return out


def questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)
    float_model = make_embedder(backend="onnx")
    int8 = make_embedder(backend="onnx-int8")
    print(f"load average {os.getloadavg()[0]:.1f}; {float_model.backend} vs {int8.backend}")
    sets = {
        "corpus/ chunks and sentences": texts_of(ROOT / "corpus", float_model),
        "eval/squad/corpus chunks and sentences": texts_of(ROOT / "eval" / "squad" / "corpus", float_model),
        "questions (both sets)": questions(ROOT / "eval" / "questions.jsonl") + questions(ROOT / "eval" / "squad" / "questions.jsonl"),
    }
    print("\n| texts | n | min cosine | 1st percentile | mean |\n| --- | --- | --- | --- | --- |")
    for name, texts in sets.items():
        cos = (float_model.embed(texts) * int8.embed(texts)).sum(axis=1)
        print(f"| {name} | {len(texts)} | {cos.min():.4f} | {np.percentile(cos, 1):.4f} | {cos.mean():.4f} |", flush=True)

    qs = sets["questions (both sets)"]
    tokenizer = float_model._truncating_tokenizer
    for q in qs[:10]:
        float_model.embed([q]), int8.embed([q])
    ms: dict[str, list[float]] = {"float": [], "int8": [], "tokenizer": []}
    for i in range(args.queries):
        q = qs[i % len(qs)]
        t = time.perf_counter(); tokenizer.encode_batch([q]); ms["tokenizer"].append((time.perf_counter() - t) * 1000)
        for name, e in ((("float", float_model), ("int8", int8)) if i % 2 == 0 else (("int8", int8), ("float", float_model))):
            t = time.perf_counter(); e.embed([q]); ms[name].append((time.perf_counter() - t) * 1000)
    print(f"\n| one question, {args.queries} calls | p50 | p95 |\n| --- | --- | --- |")
    for name, v in ms.items():
        print(f"| {name} | {statistics.median(v):.2f} ms | {pct(v, 95):.2f} ms |")
    tok = statistics.median(ms["tokenizer"])
    print(f"\ntokenizer share of a question's embedding (p50): {tok / statistics.median(ms['int8']):.1%} of int8, "
          f"{tok / statistics.median(ms['float']):.1%} of float; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

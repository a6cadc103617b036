"""Issue 15: would chunk vectors made from sentence vectors hold quality?

    python benchmarks/derived_chunks.py QUESTIONS [--corpus DIR] [--index DIR] [--variants ...]

A build embeds every chunk (with its article's title and publisher) and every
sentence on its own: 2.3 times the word pieces of LangChain's build. Making a
chunk's vector from the vectors of the sentences it holds would embed each
word piece about once and leave the sentence vectors (and so the answer
stage) exactly as they are. This script builds (or loads) the index as the
product does, then swaps in derived chunk vectors and runs `rag eval`'s
metrics (rag.evaluate) on each variant, so the only difference is the chunk
vectors:

- embedded: the product's vectors (the chunk text embedded);
- mean: the L2-normalised mean of the vectors of the sentences inside the chunk;
- lenw: the same, each sentence weighted by its word pieces;
- mean+title0.5: the normalised mean plus 0.5 times the vector of the article's
  title line (today's chunks carry it), normalised again.

- late: the other way round (late chunking, Günther et al. 2024): chunk
  vectors as embedded, sentence vectors mean-pooled from the token states of
  the chunk passes over each sentence's span (averaged over the chunks that
  hold it), so only chunks would be embedded; this changes what the answer
  stage sees. Token states come from the PyTorch model (sentence-transformers).

A variant may end in @dwX to also set dense_weight X (the fusion weight).
A chunk holding no whole sentence (a cut of an over-long one) keeps its
embedded vector, and its count is printed. Results: benchmarks/NOTES.md, Build speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("hit@1", "mrr", "passage_answer@1", "passage_answer@5", "fact_recall", "answer_contains_gold",
        "answer_words", "citation_precision", "abstention_accuracy", "false_abstention_rate")


def derived_vectors(stored, articles, embedder, variant: str) -> tuple[np.ndarray, int]:
    """Chunk vectors of `variant` from the stored sentence vectors; also how
    many chunks held no whole sentence and kept their embedded vector."""
    sentences, sv = stored.sentences, stored.sentence_vectors
    rows_of: dict[str, list[int]] = {}
    for i, s in enumerate(sentences):
        rows_of.setdefault(s.article_id, []).append(i)
    weights = np.ones(len(sentences), dtype=np.float32)
    if variant == "lenw":
        weights = np.array([embedder.count_pieces(articles[s.article_id].text[s.start : s.end]) for s in sentences], dtype=np.float32)
    title_weight = float(variant.split("title")[1]) if "title" in variant else 0.0
    titles = {}
    if title_weight:
        ids = list(articles)
        heads = [a.title if not a.publisher else f"{a.title} ({a.publisher})" for a in articles.values()]
        titles = dict(zip(ids, embedder.embed(heads)))
    out = np.array(stored.vectors, dtype=np.float32, copy=True)
    kept = 0
    for ci, c in enumerate(stored.chunks):
        rows = [i for i in rows_of.get(c.article_id, []) if sentences[i].start >= c.start and sentences[i].end <= c.end]
        if not rows:
            kept += 1
            continue
        v = (sv[rows] * weights[rows, None]).sum(0)
        v /= np.linalg.norm(v)
        if title_weight:
            v = v + title_weight * titles[c.article_id]
            v /= np.linalg.norm(v)
        out[ci] = v
    return out, kept


def late_sentence_vectors(stored, articles, embedder) -> np.ndarray:
    """Sentence vectors pooled from the chunk passes' token states (the `late` variant)."""
    from tokenizers import Tokenizer

    from rag.embedding import _load_sentence_transformer
    from rag.indexer import context_text

    texts, shifts = [], []  # shift: article offset + shift = offset in the embedded text
    for c in stored.chunks:
        a = articles[c.article_id]
        text = context_text(a, a.text[c.start : c.end])
        texts.append(text)
        shifts.append(len(text) - (c.end - c.start) - c.start)
    states = _load_sentence_transformer(embedder.folder).encode(
        texts, output_value="token_embeddings", batch_size=32, convert_to_numpy=False
    )
    tokenizer = Tokenizer.from_file(str(embedder.folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(embedder.max_pieces)
    encodings = tokenizer.encode_batch(texts)
    sentences = stored.sentences
    rows_of: dict[str, list[int]] = {}
    for i, s in enumerate(sentences):
        rows_of.setdefault(s.article_id, []).append(i)
    sums = np.zeros(stored.sentence_vectors.shape, dtype=np.float64)
    counts = np.zeros(len(sentences))
    for ci, c in enumerate(stored.chunks):
        tokens, offsets = states[ci].cpu().numpy(), encodings[ci].offsets
        for i in rows_of.get(c.article_id, []):
            s = sentences[i]
            if s.end <= c.start or s.start >= c.end:
                continue
            a, b = s.start + shifts[ci], s.end + shifts[ci]
            inside = [k for k, (x, y) in enumerate(offsets) if y > x and x >= a and y <= b]  # special tokens are (0, 0)
            if inside:
                sums[i] += tokens[inside].sum(0)
                counts[i] += len(inside)
    out = np.array(stored.sentence_vectors, dtype=np.float32, copy=True)
    found = counts > 0
    out[found] = (sums[found] / counts[found, None]).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--index", type=Path, required=True, help="index folder (built here when missing)")
    parser.add_argument("--variants", nargs="+", default=["embedded", "mean", "lenw", "mean+title0.5", "late"])
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from rag import RAG, Settings
    from rag.dense import DenseIndex, choose_spec
    from rag.evalset import load_questions
    from rag.evaluate import evaluate, retrieval_only
    from rag.retrieval import LocalBackend

    r = RAG.load(args.corpus, args.index, settings=Settings(query_cache_size=0))
    questions = load_questions(args.questions, {a.id for a in r.articles})
    stored, articles = r.backend.stored, r.corpus.by_id()
    print(f"| variant | {' | '.join(KEYS)} | dense alone: hit@1 | passage_answer@1 |")
    print("| --- " * (len(KEYS) + 3) + "|")
    for variant in args.variants:
        name, _, dense_weight = variant.partition("@dw")
        variant_r, kept = r, 0
        if name == "late":
            swapped = dataclasses.replace(stored, sentence_vectors=late_sentence_vectors(stored, articles, r.embedder))
            variant_r = RAG(r.corpus, LocalBackend(swapped, r.summary, articles, r.settings.retrieval), r.embedder, r.settings)
        elif name != "embedded":
            vectors, kept = derived_vectors(stored, articles, r.embedder, name)
            swapped = dataclasses.replace(stored, vectors=vectors, dense=DenseIndex.build(vectors, choose_spec("auto", len(vectors))))
            variant_r = RAG(r.corpus, LocalBackend(swapped, r.summary, articles, r.settings.retrieval), r.embedder, r.settings)
        if dense_weight:
            variant_r = variant_r.with_settings(dense_weight=float(dense_weight))
        m = evaluate(variant_r, questions).metrics
        d = retrieval_only(variant_r, questions, "dense")
        cells = [(k, m.get(k)) for k in KEYS] + [("", d["hit@1"]), ("", d.get("passage_answer@1"))]
        shown = " | ".join("-" if x is None else f"{x:.1f}" if k == "answer_words" else f"{x:.3f}" for k, x in cells)
        print(f"| {variant}{f' ({kept} chunks kept)' if kept else ''} | {shown} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

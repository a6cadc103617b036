"""benchmarks/derived_chunks.py makes the vectors its figures (benchmarks/NOTES.md,
Build speed, issue 15) are measured on: a chunk's vector from its sentences'."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rag import RAG, Settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from derived_chunks import derived_vectors  # noqa: E402

from .conftest import CORPUS  # noqa: E402


def _whole_sentences(stored, chunk) -> list[int]:
    return [
        i for i, s in enumerate(stored.sentences)
        if s.article_id == chunk.article_id and s.start >= chunk.start and s.end <= chunk.end
    ]


def test_a_chunk_vector_is_the_normalised_mean_of_its_sentences(tmp_path: Path, fake_embedder) -> None:
    r = RAG.load(CORPUS, tmp_path / "index", embedder=fake_embedder)
    stored = r.backend.stored
    vectors, kept = derived_vectors(stored, r.corpus.by_id(), fake_embedder, "mean")
    assert kept == 0  # the five articles have no sentence longer than a chunk
    assert vectors.shape == stored.vectors.shape
    several = [(row, rows) for row, c in enumerate(stored.chunks) if len(rows := _whole_sentences(stored, c)) >= 2]
    assert len(several) > len(stored.chunks) // 2  # chunks hold 3-5 sentences
    for row, rows in several:
        mean = stored.sentence_vectors[rows].mean(0)
        np.testing.assert_allclose(vectors[row], mean / np.linalg.norm(mean), atol=1e-6)
    # the swap is the experiment: the index's own vectors are untouched
    assert not np.allclose(vectors, stored.vectors)


def test_the_title_variant_adds_half_the_title_vector(tmp_path: Path, fake_embedder) -> None:
    r = RAG.load(CORPUS, tmp_path / "index", embedder=fake_embedder)
    stored, articles = r.backend.stored, r.corpus.by_id()
    chunk = stored.chunks[0]
    article = articles[chunk.article_id]
    head = article.title if not article.publisher else f"{article.title} ({article.publisher})"
    vectors, _ = derived_vectors(stored, articles, fake_embedder, "mean+title0.5")
    mean = stored.sentence_vectors[_whole_sentences(stored, chunk)].mean(0)
    expected = mean / np.linalg.norm(mean) + 0.5 * fake_embedder.embed([head])[0]
    np.testing.assert_allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-6)


def test_a_chunk_cut_from_a_long_sentence_keeps_its_embedded_vector(tmp_path: Path, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    long = " ".join(f"word{i}" for i in range(120))
    (corpus / "a.txt").write_text(f"Short opening sentence here.\n\nThe long one runs {long} to its end.\n")
    r = RAG.load(corpus, tmp_path / "index", embedder=fake_embedder, settings=Settings(chunk_tokens=40, overlap_tokens=0))
    stored = r.backend.stored
    vectors, kept = derived_vectors(stored, r.corpus.by_id(), fake_embedder, "mean")
    cut = [i for i, c in enumerate(stored.chunks) if not _whole_sentences(stored, c)]
    assert cut and kept == len(cut)
    np.testing.assert_array_equal(vectors[cut], stored.vectors[cut])

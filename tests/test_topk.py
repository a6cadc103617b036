"""MaxScore's BM25 top-k (rag/topk.py) against bm25s's exhaustive scoring, on the real corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.ingest import load_corpus
from rag.sentences import split_sentences
from rag.sparse import SparseIndex, tokenize
from rag.topk import MaxScoreTopK

from .conftest import CORPUS, ROOT


@pytest.fixture(scope="module")
def index_and_queries() -> tuple[SparseIndex, list[str]]:
    # The corpus's sentences and paragraphs as documents: short and long
    # rows, common and rare words, as in a real index.
    texts = []
    for article in load_corpus(CORPUS).articles:
        texts += [article.text[s.start : s.end] for s in split_sentences(article.text)]
        texts += [p for p in article.text.split("\n\n") if p.strip()]
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = np.random.default_rng(0)
    phrases = [" ".join(texts[int(i)].split()[:8]) for i in rng.choice(len(texts), 60, replace=False)]
    return SparseIndex.build(texts), questions + phrases + ["the the said", "Serbia Serbia Serbia Türkiye"]


def _exact_kth(index: SparseIndex, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    scores = index._bm25.get_scores(tokenize([query])[0])
    if allowed is not None:
        keep = np.zeros_like(scores)
        keep[allowed] = 1
        scores = scores * keep
    return scores, float(np.sort(scores)[-k])


@pytest.mark.parametrize("k", [1, 5, 10, 40])
def test_maxscore_gives_the_exact_top_k(index_and_queries, k: int, monkeypatch) -> None:
    index, queries = index_and_queries
    lookups = []
    original = MaxScoreTopK._lookup
    monkeypatch.setattr(MaxScoreTopK, "_lookup", lambda self, t, rows: lookups.append(len(rows)) or original(self, t, rows))
    compared = 0
    for q in queries:
        exact = index.search(q, k, method="exhaustive")
        pruned = index.search(q, k, method="maxscore")
        if not exact:
            assert pruned == []
            continue
        scores, kth = _exact_kth(index, q, len(exact))
        # The same scores in the same order; a row may differ only where rows tie.
        assert [s for _, s in pruned] == pytest.approx([s for _, s in exact], rel=1e-5)
        assert all(abs(scores[r] - s) <= 1e-5 * max(1.0, s) for r, s in pruned)
        assert all(scores[r] >= kth - 1e-5 for r, _ in pruned)
        untied = {r for r, s in exact if s > kth + 1e-5}
        assert untied <= {r for r, _ in pruned}
        compared += 1
    assert compared > 100
    # Common words were skipped and looked up for a few candidates only, so
    # the pruning ran, not exhaustive scoring under another name.
    assert lookups and np.median(lookups) < index.size / 4


def test_maxscore_within_a_filter(index_and_queries) -> None:
    index, queries = index_and_queries
    rng = np.random.default_rng(1)
    for share in (0.02, 0.3):
        allowed = np.sort(rng.choice(index.size, int(share * index.size), replace=False))
        for q in queries[::3]:
            exact = index.search(q, 10, allowed=allowed, method="exhaustive")
            pruned = index.search(q, 10, allowed=allowed, method="maxscore")
            assert set(r for r, _ in pruned) <= set(allowed.tolist())
            assert [s for _, s in pruned] == pytest.approx([s for _, s in exact], rel=1e-5)


def test_auto_keeps_bm25s_below_the_threshold(index_and_queries) -> None:
    index, queries = index_and_queries
    q = queries[0]
    assert index.search(q, 10) == index.search(q, 10, method="exhaustive")  # a small index: bm25s's path, unchanged
    with pytest.raises(ValueError, match="unknown BM25 method 'fast'"):
        index.search(q, 10, method="fast")


def test_postings_are_sorted_by_row(index_and_queries) -> None:
    """MaxScore's lookups binary-search each term's rows: bm25s must keep them sorted."""
    index, _ = index_and_queries
    s = index._bm25.scores
    indices, indptr = np.asarray(s["indices"]), np.asarray(s["indptr"])
    assert all(np.all(np.diff(indices[indptr[t] : indptr[t + 1]]) > 0) for t in range(len(indptr) - 1))


def test_saved_and_memory_mapped_index_gives_the_same_top_k(index_and_queries, tmp_path: Path) -> None:
    index, queries = index_and_queries
    index.save(tmp_path)
    loaded = SparseIndex.load(tmp_path, index.size, mmap=True)
    for q in queries[:30]:
        assert loaded.search(q, 10, method="maxscore") == index.search(q, 10, method="maxscore")

"""Exact BM25 top-k that skips most of the long posting lists (MaxScore).

bm25s scores a query by adding every posting of every query term into a
score per document, then selects the top k. At a million chunks a common
word's posting list holds hundreds of thousands of documents, and a question
of several common words touched millions of postings: 175 ms at p95.

MaxScore (Turtle and Flood, 1995) gives the same top k with far less work.
Each term's contribution to any document is at most its largest posting
(its upper bound). Split the query's terms into the *essential* ones (rare,
short lists, high bounds), whose postings are added up as before, and the
rest (common words, long lists, low bounds), whose bounds sum to `rest`. A
document's full score is at most its essential partial score plus `rest`,
and at least its partial score. So with `theta` the k-th best partial
score, no document whose partial score is below `theta - rest` can be in
the top k; the few that remain get their full score by looking their rows
up in the common terms' lists (sorted, so a binary search each). When
`rest` is not below `theta`, a document outside every essential list could
still reach the top k: the next common term is moved to the essential side
and the check runs again; with every term essential it is plain exhaustive
scoring.

The result is the exact top k (scores summed in float64 instead of bm25s's
float32, so they differ in the last bits; documents tied at the k-th score
may be exchanged for others of the same score).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# Rows scored in full to find a first lower bound of the k-th best score: a
# few thousand binary searches, microseconds against a million-row pass.
PROBE_ROWS = 1024


class MaxScoreTopK:
    """Exact top-k over bm25s's precomputed scores (a CSC matrix: one column per term)."""

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, num_docs: int) -> None:
        self.data, self.indices, self.indptr, self.num_docs = data, indices, indptr, int(num_docs)
        # A term's largest posting, computed when a query first uses the term:
        # one pass over its list, which that query reads anyway.
        self._bounds: dict[int, float] = {}

    def _postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.indptr[term]), int(self.indptr[term + 1])
        return self.indices[a:b], self.data[a:b]

    def bound(self, term: int) -> float:
        value = self._bounds.get(term)
        if value is None:
            _, scores = self._postings(term)
            value = float(scores.max()) if len(scores) else 0.0
            self._bounds[term] = value
        return value

    def top_k(self, terms: Mapping[int, int], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The k best (row, score) with a score above zero, best first, ties by row.

        `terms`: term id -> how often the query holds it (bm25s adds a
        repeated query word's score once per occurrence). `allowed`: a 0/1
        mask over the rows, or None for every row."""
        if k <= 0 or not terms:
            return []
        weights = {t: float(c) for t, c in terms.items()}
        # Highest bound first: rare words, short lists. Common words (long
        # lists, low bounds) go last and are the ones skipped.
        order = sorted(weights, key=lambda t: (-weights[t] * self.bound(t), int(self.indptr[t + 1] - self.indptr[t]), t))
        theta = self._lower_bound(order, weights, k, allowed)
        # The shortest prefix of essential terms whose remaining bounds sum below theta.
        rest = sum(weights[t] * self.bound(t) for t in order)
        n_essential = 0
        while n_essential < len(order) and not rest < theta:
            rest -= weights[order[n_essential]] * self.bound(order[n_essential])
            n_essential += 1
        if n_essential == len(order):
            rest = 0.0  # exhaustive: no bound left, and no rounding left over from the subtractions
        essential = order[:n_essential]
        partial = np.zeros(self.num_docs, dtype=np.float64)
        for t in essential:
            rows, scores = self._postings(t)
            partial += np.bincount(rows, weights=scores, minlength=self.num_docs) * weights[t]
        if allowed is not None:
            partial *= allowed  # rows outside the filter score 0: never candidates
        # A row whose partial score plus every skipped bound stays below
        # theta (the k-th best score of real rows, so a lower bound of the
        # true k-th best) cannot be in the top k; every row outside all
        # essential lists scores at most `rest` < theta.
        candidates = np.flatnonzero(partial >= theta - rest) if rest > 0.0 else np.flatnonzero(partial)
        full = partial[candidates]
        for t in order[n_essential:]:
            full = full + self._lookup(t, candidates) * weights[t]
        keep = full > 0
        candidates, full = candidates[keep], full[keep]
        best = np.lexsort((candidates, -full))[:k]
        return [(int(candidates[i]), float(full[i])) for i in best]

    def _lookup(self, term: int, rows: np.ndarray) -> np.ndarray:
        """The term's score in each of `rows` (sorted or not), 0 where it does not occur."""
        postings, scores = self._postings(term)
        if len(postings) == 0 or len(rows) == 0:
            return np.zeros(len(rows), dtype=np.float64)
        at = np.minimum(np.searchsorted(postings, rows), len(postings) - 1)
        return np.where(postings[at] == rows, scores[at], 0.0)

    def _lower_bound(self, order: Sequence[int], weights: Mapping[int, float], k: int, allowed: np.ndarray | None) -> float:
        """The k-th best full score among a few real rows: a lower bound of the true k-th best.

        The rows are the best postings of the highest-bound term, scored in
        full by looking them up in every other term's list. 0 when fewer
        than k such rows score above 0 (then nothing is skipped)."""
        rows, scores = self._postings(order[0])
        if allowed is not None:
            kept = allowed[rows] > 0
            rows, scores = rows[kept], scores[kept]
        if len(rows) > PROBE_ROWS:
            rows = np.sort(rows[np.argpartition(scores, len(scores) - PROBE_ROWS)[-PROBE_ROWS:]])
        if len(rows) < k:
            return 0.0
        full = sum(self._lookup(t, rows) * weights[t] for t in order)
        return float(np.partition(full, len(full) - k)[len(full) - k])

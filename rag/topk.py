"""Exact BM25 top-k that skips most of the long posting lists (MaxScore).

bm25s scores a query by adding every posting of every query term into a
score per row, then selects the top k. At a million chunks a common word's
posting list holds hundreds of thousands of rows, and a question of several
common words touched millions of postings: 175 ms at p95.

MaxScore (Turtle and Flood, 1995) gives the same top k with less work. A
term adds at most its largest posting (its bound) to any row's score.

1. theta, a lower bound of the k-th best score: the k-th best full score of
   the best postings of the highest-bound term (PROBE_ROWS rows, each looked
   up in every query term's list). At a million synthetic chunks it came to
   0.98 of the true k-th score on average.
2. Terms by bound, highest first (rare words); the shortest prefix of them
   (the *essential* terms) after which the other bounds sum below theta
   (`rest`). A row in no essential list scores at most `rest` < theta: it
   cannot be in the top k. A row whose essential sum plus `rest` is below
   theta cannot either. The rest are the candidates.
3. The other (common, long-list) terms are looked up for the candidates
   only, highest bound first; after each, theta rises to the k-th best sum
   so far and candidates that can no longer reach it are dropped.

With every term essential this is exhaustive scoring. Sums are float64 over
bm25s's float32 postings (bm25s sums in float32, so scores differ in the
last bits); the pruning tests keep a margin (SLACK) for that rounding, so a
row tied with the k-th score is kept. Rows tied at the k-th score may come
back in another order than bm25s's (ties here go by row).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np

# Rows scored in full for the first lower bound of the k-th best score. At a
# million chunks 1,024 gave theta 0.98 of the true k-th score and a p95 of
# 32 ms; 256 gave 0.94 and 37 ms (more candidates to look up).
PROBE_ROWS = 1024
# Relative margin of every pruning test: float32 sums of a dozen terms are
# off by under 1e-6 of the score; a wider margin only keeps a few more rows.
SLACK = 1e-5


class MaxScoreTopK:
    """Exact top-k over bm25s's precomputed scores (a CSC matrix: one column per term)."""

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, num_docs: int) -> None:
        # Plain views of bm25s's (memory-mapped) arrays: numpy's memmap
        # subclass costs microseconds a slice, thousands of slices a second.
        self.data, self.indices, self.indptr = np.asarray(data), np.asarray(indices), np.asarray(indptr)
        self.num_docs = int(num_docs)
        # A term's largest posting, computed when a query first uses the term:
        # one pass over its list, which that query reads anyway.
        self._bounds: dict[int, float] = {}
        self._local = threading.local()

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
        # Pruning tests keep a row whose bound falls short of theta by less
        # than this share: sums in another order round differently, and a row
        # tied at the k-th score must not be lost to the last bit.
        theta = self._lower_bound(order, weights, k, allowed) * (1.0 - SLACK)
        # The shortest prefix of essential terms whose remaining bounds sum below theta.
        rest = sum(weights[t] * self.bound(t) for t in order)
        n_essential = 0
        while n_essential < len(order) and not rest < theta:
            rest -= weights[order[n_essential]] * self.bound(order[n_essential])
            n_essential += 1
        if n_essential == len(order):
            rest = 0.0  # exhaustive: no bound left, and no rounding left over from the subtractions
        essential = order[:n_essential]
        if len(essential) == 1:
            # One rare word: its list is the partial score, no pass over every row.
            rows, scores = self._postings(essential[0])
            partial_rows = scores.astype(np.float64) * weights[essential[0]]
            keep = partial_rows >= theta - rest if rest > 0.0 else partial_rows > 0
            if allowed is not None:
                keep &= allowed[rows] > 0
            candidates, full = rows[keep].astype(np.int64), partial_rows[keep]
        else:
            candidates, full = self._essential(essential, weights, theta - rest if rest > 0.0 else 0.0, allowed)
        # The skipped words, highest bound first, looked up for the candidates
        # only. After each, a candidate whose score so far plus the bounds
        # still to come is below theta is dropped, and theta rises to the
        # k-th best score so far (scores so far are lower bounds too).
        for t in order[n_essential:]:
            full = full + self._lookup(t, candidates) * weights[t]
            rest -= weights[t] * self.bound(t)
            if len(full) > k:
                theta = max(theta, float(np.partition(full, len(full) - k)[len(full) - k]) * (1.0 - SLACK))
                keep = full + max(rest, 0.0) >= theta
                candidates, full = candidates[keep], full[keep]
        keep = full > 0
        candidates, full = candidates[keep], full[keep]
        best = np.lexsort((candidates, -full))[:k]
        return [(int(candidates[i]), float(full[i])) for i in best]

    def _essential(self, essential: Sequence[int], weights: Mapping[int, float], least: float,
                   allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the essential lists whose summed score is at least `least`
        (above 0 when `least` is 0), each once, with those sums.

        The sums go into a buffer of one float32 per row, kept between
        queries and cleared row by row afterwards: the lists hold a few
        percent of the rows, and allocating and scanning a million-row
        array per query cost more than adding the postings."""
        buffer = self._buffer()
        lists = [self._postings(t) for t in essential]
        try:
            for t, (rows, scores) in zip(essential, lists):
                buffer[rows] += scores * np.float32(weights[t])  # rows are distinct within a list: no lost adds
            # float32 sums round like bm25s's own; the margin keeps a row at the bound.
            least32 = least * (1.0 - SLACK) if least > 0.0 else np.nextafter(np.float32(0), np.float32(1))
            picked, sums = [], []
            for rows, _ in lists:
                values = buffer[rows]
                keep = values >= least32
                picked.append(rows[keep])
                sums.append(values[keep])
                buffer[picked[-1]] = 0.0  # taken: a later list holding the row does not take it again
            rows, values = np.concatenate(picked).astype(np.int64), np.concatenate(sums).astype(np.float64)
            if allowed is not None:
                keep = allowed[rows] > 0
                rows, values = rows[keep], values[keep]
            return rows, values
        finally:
            for rows, _ in lists:
                buffer[rows] = 0.0

    def _buffer(self) -> np.ndarray:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:  # one a thread: the app answers from several
            buffer = self._local.buffer = np.zeros(self.num_docs, dtype=np.float32)
        return buffer

    def _lookup(self, term: int, rows: np.ndarray) -> np.ndarray:
        """The term's score in each of `rows` (sorted or not), 0 where it does not occur."""
        postings, scores = self._postings(term)
        if len(postings) == 0 or len(rows) == 0:
            return np.zeros(len(rows), dtype=np.float64)
        if len(rows) * np.log2(len(postings)) > len(postings):
            # Many rows against a long list: writing the list into the row
            # buffer and reading the rows back beats a binary search a row
            # (measured at a million chunks: 5 against 15 ms for 200,000 rows
            # in a 450,000-row list; the search wins below about this ratio).
            buffer = self._buffer()
            try:
                buffer[postings] = scores
                return buffer[rows].astype(np.float64)
            finally:
                buffer[postings] = 0.0
        at = np.minimum(np.searchsorted(postings, rows), len(postings) - 1)
        return np.where(postings[at] == rows, scores[at].astype(np.float64), 0.0)

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

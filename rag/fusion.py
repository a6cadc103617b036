"""Pure functions that merge ranked lists of (id, score) into one."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

Ranked = Sequence[tuple[Hashable, float]]


def rrf(lists: Sequence[Ranked], k: int = 60) -> list[tuple[Hashable, float]]:
    """Reciprocal rank fusion: score(d) = sum over lists of 1 / (k + rank(d)).

    Uses ranks only, so scores on different scales (cosine, BM25) mix safely.
    Ties keep the order in which ids were first seen.
    """
    fused: dict[Hashable, float] = {}
    for ranked in lists:
        for rank, (doc, _score) in enumerate(ranked, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def _minmax(ranked: Ranked) -> dict[Hashable, float]:
    if not ranked:
        return {}
    scores = [s for _, s in ranked]
    lo, hi = min(scores), max(scores)
    span = hi - lo
    return {doc: (s - lo) / span if span else 1.0 for doc, s in ranked}


def weighted(lists: Sequence[Ranked], weights: Sequence[float]) -> list[tuple[Hashable, float]]:
    """Weighted sum of min-max normalised scores; an id missing from a list scores 0 there."""
    if len(lists) != len(weights):
        raise ValueError(f"got {len(lists)} ranked lists but {len(weights)} weights")
    fused: dict[Hashable, float] = {}
    for ranked, weight in zip(lists, weights):
        for doc, score in _minmax(ranked).items():
            fused[doc] = fused.get(doc, 0.0) + weight * score
    return sorted(fused.items(), key=lambda item: -item[1])

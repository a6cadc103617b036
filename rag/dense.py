"""The dense index: unit vectors in FAISS, searched by inner product (= cosine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import StoreError

FILE = "dense.faiss"


class DenseIndex:
    def __init__(self, index) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray) -> "DenseIndex":
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # Exact search: at the corpus sizes one machine serves in a chat, a
        # flat scan is a few milliseconds and has perfect recall.
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top `k` (row, cosine) for one unit query vector, best first.

        `allowed`: row numbers to search among (all when None).
        """
        import faiss

        k = min(k, self.size if allowed is None else len(allowed))
        if k <= 0:
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
        scores, rows = self._index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(folder / FILE))

    @classmethod
    def load(cls, folder: Path) -> "DenseIndex":
        import faiss

        try:
            return cls(faiss.read_index(str(folder / FILE)))
        except RuntimeError as e:
            raise StoreError(f"{folder / FILE} cannot be read ({str(e).splitlines()[0]})") from e

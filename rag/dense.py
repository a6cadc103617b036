"""The dense index: unit vectors in FAISS, searched by inner product (= cosine).

Three kinds, one interface:

* ``flat``: exact search. A scan of every vector: perfect recall, and a few
  milliseconds up to some tens of thousands of chunks.
* ``hnsw``: an HNSW graph (Malkov & Yashunin). Sub-millisecond to a few
  milliseconds at a million vectors, with recall@10 against exact search set
  by ``efSearch``; builds in minutes on two cores at that size.
* ``ivf``: an inverted file over k-means cells (``nlist``), searching the
  ``nprobe`` nearest cells. Builds faster than HNSW, but needs more probes
  (so more time) for the same recall.

``auto`` (the default) takes ``flat`` below AUTO_FLAT_BELOW chunks and
``hnsw`` from there on; benchmarks/scale.py measured the choice (README,
"Scale"). The spec the index was built with is written to the manifest.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import SettingsError, StoreError
from .settings import INDEX_TYPES

FILE = "dense.faiss"
KINDS = INDEX_TYPES[1:]

# Below this many chunks `auto` searches exactly: a flat scan of 50,000
# 384-dimension vectors is still a few milliseconds on one core, and exact
# search needs no build step and loses nothing.
AUTO_FLAT_BELOW = 50_000

# A filter that leaves a share s of the rows widens an approximate search by
# 1/s, up to this factor: the graph or cell search discards what the filter
# excludes, and at 1M chunks a 30% filter with the plain efSearch lost recall
# (0.93 against 0.98 unfiltered at efSearch 256; benchmarks/scale.py).
FILTER_WIDEN_MAX = 2

# A filter (articles=...) leaving at most this many rows is searched exactly
# over those rows' vectors: a graph or cell search that skips most of its
# visited nodes loses recall, and a scan this small is a few milliseconds.
EXACT_FILTER_MAX = 20_000


@dataclass(frozen=True)
class IndexSpec:
    """How a dense index is built and searched."""

    kind: str = "flat"
    # HNSW: M links per node; efConstruction and efSearch are the widths of
    # the candidate lists when inserting and when searching. Measured at 1M
    # chunks (README, "Scale"): efSearch 256 gave recall@10 0.978, 512 gave
    # 0.992 at 3.3 ms; the vectors there are synthetic and about 0.03 easier
    # than real ones, so 512 keeps 0.95 with room. M 16 was no better.
    m: int = 32
    ef_construction: int = 80
    ef_search: int = 512
    # IVF: nlist cells (0: about 4 * sqrt(n), faiss's usual rule) and nprobe
    # cells searched per query; 128 of 4,000 gave 0.969 at 1M chunks.
    nlist: int = 0
    nprobe: int = 128

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SettingsError(f"unknown vector index kind {self.kind!r}: use one of {', '.join(INDEX_TYPES)}")
        if min(self.m, self.ef_construction, self.ef_search, self.nprobe) < 1 or self.nlist < 0:
            raise SettingsError(f"vector index parameters must be positive: {self}")

    def describe(self) -> str:
        """The spec as the manifest records it, e.g. 'hnsw,M=32,efConstruction=80,efSearch=512'."""
        if self.kind == "hnsw":
            return f"hnsw,M={self.m},efConstruction={self.ef_construction},efSearch={self.ef_search}"
        if self.kind == "ivf":
            return f"ivf,nlist={self.nlist},nprobe={self.nprobe}"
        return "flat"

    @classmethod
    def parse(cls, text: str) -> "IndexSpec":
        """The inverse of describe(). Manifests written before index kinds
        existed say 'flat-ip'."""
        kind, *params = [p.strip() for p in text.split(",")]
        kind = "flat" if kind == "flat-ip" else kind
        names = {"M": "m", "efConstruction": "ef_construction", "efSearch": "ef_search", "nlist": "nlist", "nprobe": "nprobe"}
        values: dict[str, int] = {}
        for param in params:
            name, _, value = param.partition("=")
            if name not in names or not value.isdigit():
                raise SettingsError(f"vector index spec {text!r} has an unknown parameter {param!r}")
            values[names[name]] = int(value)
        return cls(kind, **values)


def choose_spec(index_type: str, n_vectors: int) -> IndexSpec:
    """The spec for `index_type` ("auto", "flat", "hnsw", "ivf") at this size."""
    if index_type not in INDEX_TYPES:
        raise SettingsError(f"index_type must be one of {', '.join(INDEX_TYPES)}, not {index_type!r}")
    if index_type == "auto":
        index_type = "flat" if n_vectors < AUTO_FLAT_BELOW else "hnsw"
    return IndexSpec(index_type)


def _ivf_cells(n: int) -> int:
    # faiss's guidance: 4*sqrt(n) to 16*sqrt(n) cells, with at least ~40
    # training points per cell; tiny indexes get at least one cell.
    return max(1, min(int(4 * math.sqrt(n)), n // 40))


def widened(width: int, share: float) -> int:
    """efSearch or nprobe for a search among `share` (0-1] of the rows."""
    return int(math.ceil(width * min(1.0 / max(share, 1e-9), FILTER_WIDEN_MAX)))


class DenseIndex:
    def __init__(self, index, spec: IndexSpec, vectors: np.ndarray | None = None) -> None:
        self._index = index
        self.spec = spec
        # The rows themselves (often a read-only memory map): for exact search
        # inside a small filter, where an approximate index loses recall.
        self._vectors = vectors

    @classmethod
    def build(cls, vectors: np.ndarray, spec: IndexSpec | None = None) -> "DenseIndex":
        import faiss

        spec = spec or IndexSpec()
        # Every core for the build. torch and FAISS share one OpenMP runtime,
        # so the one thread a query embedding asked for would hold here too.
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dimension = vectors.shape
        if spec.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dimension, spec.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = spec.ef_construction
            index.hnsw.efSearch = spec.ef_search
        elif spec.kind == "ivf":
            spec = replace(spec, nlist=spec.nlist or _ivf_cells(n))
            # The factory owns the coarse quantizer, which a hand-built
            # IndexIVFFlat would leave to the Python object's lifetime.
            index = faiss.index_factory(dimension, f"IVF{spec.nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            # k-means on a sample: 64 points per cell is plenty, and training
            # on all of a million vectors would cost minutes for nothing.
            sample = vectors
            if n > 64 * spec.nlist:
                rows = np.random.default_rng(0).choice(n, 64 * spec.nlist, replace=False)
                sample = vectors[np.sort(rows)]
            index.train(sample)
            index.nprobe = spec.nprobe
        else:
            index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
        return cls(index, spec, vectors)

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
        k = min(k, self.size if allowed is None else len(allowed))
        if k <= 0:
            return []
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if allowed is not None and self.spec.kind != "flat" and self._vectors is not None and len(allowed) <= EXACT_FILTER_MAX:
            return self._exact_among(query[0], k, np.asarray(allowed, dtype=np.int64))
        scores, rows = self._index.search(query, k, params=self._params(allowed))
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    def _exact_among(self, query: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[int, float]]:
        rows = np.sort(allowed)
        scores = np.asarray(self._vectors[rows], dtype=np.float32) @ query
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(rows[i]), float(scores[i])) for i in top]

    def _params(self, allowed: np.ndarray | None):
        import faiss

        selector = None
        if allowed is not None:
            # A bitmap costs n/8 bytes and a constant-time lookup per visited
            # vector; a batch selector would hash every allowed id per query.
            mask = np.zeros(self.size, dtype=bool)
            mask[np.asarray(allowed, dtype=np.int64)] = True
            bits = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bits))
            selector._bits = bits  # the selector reads the array: keep it alive
        share = 1.0 if allowed is None else len(allowed) / max(self.size, 1)
        if self.spec.kind == "hnsw":
            return faiss.SearchParametersHNSW(efSearch=widened(self.spec.ef_search, share), sel=selector)
        if self.spec.kind == "ivf":
            nprobe = min(widened(self.spec.nprobe, share), self.spec.nlist or self.spec.nprobe)
            return faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        return None if selector is None else faiss.SearchParameters(sel=selector)

    def save(self, folder: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(folder / FILE))

    @classmethod
    def load(cls, folder: Path, spec: IndexSpec, vectors: np.ndarray | None = None) -> "DenseIndex":
        import faiss

        try:
            index = faiss.read_index(str(folder / FILE))
        except RuntimeError as e:
            raise StoreError(f"{folder / FILE} cannot be read ({str(e).splitlines()[0]})") from e
        return cls(index, spec, vectors)

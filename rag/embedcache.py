"""Vectors a refresh dropped, kept by content hash so that they come back free.

A refresh already reuses every vector of the index it replaces (indexer.py).
What it drops is lost with the old build: the chunks of a chunk size tried and
abandoned, an article removed and put back, the vectors of the model used
before. This cache keeps those, per model, in `<index>/embedding-cache/`, up to
Settings.embedding_cache_size vectors, newest first. Trying a chunk size and
going back, or switching models and back, then embeds nothing.

It is a cache: a missing or unreadable file means only that texts are embedded
again, never an error.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger("rag")

FOLDER = "embedding-cache"


class EmbeddingCache:
    def __init__(self, index_dir: Path, model: str, dimension: int, capacity: int) -> None:
        safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", model)
        self.path = Path(index_dir) / FOLDER / f"{safe}-{dimension}.npz"
        self.dimension = dimension
        self.capacity = capacity

    def load(self) -> dict[str, np.ndarray]:
        """hash -> vector; empty when there is no cache or it cannot be read."""
        if self.capacity <= 0 or not self.path.is_file():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as data:
                hashes, vectors = data["hashes"], data["vectors"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            log.info("embedding cache %s unreadable (%s): ignoring it", self.path, type(e).__name__)
            return {}
        if vectors.ndim != 2 or vectors.shape != (len(hashes), self.dimension):
            log.info("embedding cache %s has the wrong shape: ignoring it", self.path)
            return {}
        return {h: vectors[i] for i, h in enumerate(hashes.astype(str))}

    def save(self, newest: Iterable[tuple[str, np.ndarray]], older: dict[str, np.ndarray], live: set[str]) -> int:
        """Keep `newest` (just dropped from the index), then `older` entries,
        skipping what the live index holds anyway, up to the capacity.
        Returns how many vectors the cache now holds."""
        kept: dict[str, np.ndarray] = {}
        for h, v in [*newest, *older.items()]:
            if len(kept) >= self.capacity:
                break
            if h not in live and h not in kept:
                kept[h] = v
        if not kept:
            self.path.unlink(missing_ok=True)
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:6]}.npz")
        try:
            hashes = np.array(list(kept), dtype="S64")  # sha256 hex digests
            vectors = np.stack(list(kept.values())).astype(np.float32, copy=False)
            np.savez(tmp, hashes=hashes, vectors=vectors)
            os.replace(tmp, self.path)  # readers see the old cache or the new one, never half
        except OSError as e:
            tmp.unlink(missing_ok=True)
            log.warning("embedding cache %s not written (%s): only later re-indexing is slower", self.path, e.strerror or e)
            return 0
        return len(kept)

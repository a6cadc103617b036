"""Thread pools, set on purpose.

A query does small work in three libraries that each bring a thread pool:
torch (the query embedding), numpy's OpenBLAS (sentence scoring, exact search
inside a filter) and FAISS's OpenMP. On a machine with two cores, a pool that
splits a small job in two makes the job wait for the slower core, and a busy
core is slow: that turned milliseconds into tens or hundreds of them here.

* torch: one thread for a question, every core for a batch (embedding.py).
* numpy's BLAS: one thread in a process that answers questions. Measured
  here with the other core busy, a 3,000 x 384 matrix times a vector took
  2.8 ms at the median with two threads and 0.27 ms with one.
* FAISS: one query at a time never splits across threads (FAISS parallelises
  over queries), so its OpenMP pool is left to builds, where it pays.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("rag")


@lru_cache(maxsize=1)
def limit_numpy_blas() -> int:
    """Give numpy's own BLAS one thread; returns how many libraries were limited.

    Only numpy's copy is limited: FAISS bundles its own BLAS, whose threads
    do pay when it trains an IVF index on a million vectors.
    """
    import numpy as np

    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency; without it, defaults stay
        log.info("threadpoolctl is not installed: numpy keeps its default BLAS threads")
        return 0
    package = Path(np.__file__).resolve().parent
    homes = (package, package.with_name("numpy.libs"))  # where numpy's wheels put their BLAS
    controller = ThreadpoolController()
    mine = [
        lib.filepath
        for lib in controller.lib_controllers
        if lib.user_api == "blas" and any(Path(lib.filepath).resolve().is_relative_to(home) for home in homes)
    ]
    if mine:
        controller.select(filepath=mine).limit(limits=1)
    return len(mine)

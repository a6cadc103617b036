"""Where a question's time goes: the pipeline's stages report into a Trace.

The benchmark and anyone profiling pass a Trace to `RAG.retrieve`/`ask` and
read the stages back, so the product times itself instead of being copied.
Without one, stages run under a shared no-op that costs a function call.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from collections.abc import Iterator


class Trace:
    """Stage names and their seconds, in the order they ran (a stage may repeat)."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages.append((name, time.perf_counter() - started))

    def seconds(self) -> dict[str, float]:
        """Total seconds per stage name."""
        totals: dict[str, float] = {}
        for name, seconds in self.stages:
            totals[name] = totals.get(name, 0.0) + seconds
        return totals


class _NoTrace(Trace):
    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield


NO_TRACE: Trace = _NoTrace()

"""Measuring helpers shared by the benchmark scripts (standard library only:
the scripts' parent processes must stay light)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating linearly like numpy's default."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size from getrusage, in MB (KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def proc_status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status in MB (Linux): VmRSS now, VmHWM the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None

"""Measuring helpers shared by the benchmark scripts (standard library only:
the scripts' parent processes must stay light)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
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


def write_json(path: Path, data: dict) -> None:
    """A benchmark's figures as indented JSON, its folder made when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def run_child(who: str, code: str, args: list[str], cwd: Path, timeout: float = 1800) -> dict:
    """Run `python -c code *args` in a new process with a bare environment
    (offline, no thread variables) from `cwd`, so that a checkout's own code
    is the one imported; its last line of output is its JSON figures. A
    failure ends the benchmark naming `who` and the end of its stderr."""
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if result.returncode:
        raise SystemExit(f"{who} failed: {result.stderr.strip()[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])

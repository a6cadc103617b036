"""The benchmark still runs end to end (`benchmarks/bench.py --quick`).

This is the only benchmark in the test suite. It checks that the figures are
there and make sense, never how fast anything is: the machine may be shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODES = ("hybrid", "dense", "bm25")


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@pytest.mark.model
def test_quick_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warm retrieve" in result.stdout
    data = json.loads(out.read_text())

    assert data["params"]["quick"] is True
    assert data["params"]["repeat"] == 1 and data["params"]["queries"] == 20
    assert positive(data["machine"]["cpu_count"])

    build = data["build"]
    assert positive(build["model_load_seconds"])
    assert positive(build["full"]["seconds"]["median"])
    assert positive(build["full"]["chunks"])
    assert positive(build["full"]["chunks_per_second"]["median"])
    incremental = build["incremental"]
    assert positive(incremental["seconds"]["median"])
    # One article changed: some chunks are embedded again, the rest reused.
    assert positive(incremental["embedded"]) and positive(incremental["reused"])
    assert incremental["embedded"] + incremental["reused"] == incremental["chunks"]
    assert len(incremental["changed_articles"]) == 1

    for mode in MODES:
        figures = data["retrieve"]["modes"][mode]
        assert figures["n"] == 20
        assert positive(figures["p50_ms"]) and positive(figures["p95_ms"])
        assert figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]

    ask = data["retrieve"]["ask"]
    assert ask["n"] == 20 and positive(ask["p50_ms"]) and ask["p50_ms"] <= ask["p95_ms"] <= ask["max_ms"]
    assert 0 <= ask["abstained"] < ask["n"]

    memory = data["memory"]
    assert positive(memory["build_peak_mb"]) and positive(memory["retrieve_peak_mb"])
    assert positive(data["cli_help"]["median_ms"]) and positive(data["cli_help"]["p95_ms"])


@pytest.mark.model
def test_quick_scale_run_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--quick", "--json", str(out),
         "--cache", str(tmp_path / "cache"), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "<- auto" in result.stdout and "REAL embeddings at sizes" in result.stdout and "SYNTHETIC derived" in result.stdout
    data = json.loads(out.read_text())

    assert data["params"]["quick"] is True
    assert data["embed"]["questions"] > 0 and data["embed"]["sentences"] > 0
    calibration = data["calibration"]
    assert calibration["sigma"] >= 0
    for side in ("real", "derived"):
        assert all(0 <= v <= 1 for v in calibration[side]["hnsw_recall"].values())

    assert {d["vectors"] for d in data["datasets"]} == {"derived", "random"}
    for dataset in data["datasets"]:
        measured = [i for i in dataset["indexes"] if not i.get("skipped")]
        families = {i["family"] for i in measured}
        assert {"flat", "hnsw32", "ivf"} <= families
        rows = [r for i in measured for r in i["rows"]]
        assert all(0 <= r["recall"] <= 1 and 0 <= r["recall_questions"] <= 1 for r in rows)
        # Exact search is the ground truth: it must find every true neighbour.
        assert all(r["recall"] == 1.0 for r in rows if r["family"] == "flat")
        assert sum(r["auto"] for r in rows) == 1
        for i in measured:
            assert all(r["latency"]["n"] == data["params"]["queries"] for r in i["rows"])
            assert all(0 <= f["recall"] <= 1 and f["rows"] > 0 for f in i["filtered"])
    derived = next(d for d in data["datasets"] if d["vectors"] == "derived")
    assert {f["share"] for i in derived["indexes"] for f in i.get("filtered", [])} == {0.01, 0.30}
    assert [x["mmap"] for x in derived["bm25"]["load"]] == [True, False]

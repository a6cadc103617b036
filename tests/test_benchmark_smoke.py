"""The benchmark still runs end to end (`benchmarks/bench.py --quick`).

This is the only benchmark in the test suite. It checks that the figures are
there and make sense, never how fast anything is: the machine may be shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODES = ("hybrid", "dense", "bm25")
STAGES = ("checks", "embed", "dense", "bm25", "fusion", "hits", "screen", "evidence", "answer", "answerable", "short")  # RAG.ask's Trace
TABLE_LINES = (
    "warm retrieve", "where a warm ask's time goes", "query embedding: word-piece count + model call", "dense search (FAISS)",
    "BM25 search", "total, as RAG.ask's Trace records it", "warm queries: torch",
    "cold start: new process to first answer", "`rag ask", "to the answer's first line on stdout",
    "app.py, 2 runs: serving HTTP", "first answer through its /ask API", "`rag --help`",
)


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@pytest.mark.model
def test_quick_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for line in TABLE_LINES:
        assert line in result.stdout, f"{line!r} missing from the table:\n{result.stdout}"
    data = json.loads(out.read_text())

    assert data["params"]["quick"] is True
    assert data["params"]["repeat"] == 1 and data["params"]["queries"] == 20
    assert data["params"]["cold_runs"] == 2 and data["params"]["app_runs"] == 2
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

    check_profile(data["retrieve"]["profile"])
    check_threads(data["retrieve"]["threads"], data["build"]["embed_backend"])
    check_cold_starts(data["cold_start"])

    memory = data["memory"]
    assert positive(memory["build_peak_mb"]) and positive(memory["retrieve_peak_mb"])
    assert positive(data["cli_help"]["median_ms"]) and positive(data["cli_help"]["p95_ms"])


def ordered(figures: dict) -> bool:
    """median/p95 figures of new processes: positive and in order (no speed asked)."""
    return positive(figures["median"]) and figures["min"] <= figures["median"] <= figures["max"] and len(figures["runs"]) == 2


def check_profile(profile: dict) -> None:
    assert profile["n"] == 20
    assert tuple(profile["stages"]) == STAGES
    for stage in profile["stages"].values():
        assert stage["n"] == 20 and 0 <= stage["p50_ms"] <= stage["p95_ms"] <= stage["max_ms"]
        assert 0 <= stage["share"] <= 1
    assert abs(sum(s["share"] for s in profile["stages"].values()) - 1) < 1e-6
    assert positive(profile["stages"]["embed"]["p50_ms"])  # every query calls the model
    for part in ("retrieval", "answer", "total"):
        assert profile[part]["n"] == 20 and profile[part]["p50_ms"] <= profile[part]["p95_ms"]


def check_threads(threads: dict, backend: str) -> None:
    assert isinstance(threads["faiss_omp_max"], int) and threads["faiss_omp_max"] >= 1
    if backend == "onnx":
        # Questions are embedded by ONNX Runtime: the retrieve phase never loads torch.
        assert threads["torch"] is None and threads["torch_interop"] is None
    else:
        assert isinstance(threads["torch"], int) and threads["torch"] == 1
    assert threads["threadpools"], "threadpoolctl found no BLAS or OpenMP pool"
    for pool in threads["threadpools"]:
        assert pool["user_api"] in ("blas", "openmp") and pool["num_threads"] >= 1 and pool["owner"]
    # rag/threads.py: numpy's BLAS gets one thread where questions are answered.
    assert [pool["num_threads"] for pool in threads["threadpools"] if pool["owner"] == "numpy" and pool["user_api"] == "blas"] == [1]


def check_cold_starts(cold: dict) -> None:
    assert cold["question"] and positive(cold["index_build_seconds"])
    ask = cold["ask"]
    assert ask["runs"] == 2 and ask["first_answer_line"]
    assert ordered(ask["wall_ms"]) and ordered(ask["first_answer_ms"]) and ordered(ask["peak_rss_mb"])
    assert all(first <= wall for first, wall in zip(ask["first_answer_ms"]["runs"], ask["wall_ms"]["runs"]))

    app = cold["app"]
    assert app["runs"] == 2 and app["warmup_runs"] == 1 and app["answer_text"]
    for key in ("serving_ms", "first_answer_ms", "request_ms", "second_request_ms", "peak_rss_mb"):
        assert ordered(app[key]), key
    assert all(ready < answered for ready, answered in zip(app["serving_ms"]["runs"], app["first_answer_ms"]["runs"]))
    for pid in app["pids"]:  # every server it started was stopped and reaped
        assert not app_still_running(pid), f"app.py (pid {pid}) is still running after the benchmark"


def app_still_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # the pid may have been given to another process since
        return b"app.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def test_help_names_the_benchmark_flags() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--quick", "--cold-runs", "--app-runs", "--skip-app", "--skip-cold", "--scale"):
        assert flag in result.stdout


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


def test_quick_bm25_scale_run_writes_its_figures(tmp_path: Path) -> None:
    """benchmarks/bm25_scale.py end to end on 5,000 chunks (no model): both BM25 methods, both record layouts."""
    out = tmp_path / "bm25_scale.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bm25_scale.py"), "--quick", "--json", str(out), "--cache", str(tmp_path / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (size,) = json.loads(out.read_text())["sizes"]
    assert size["n"] == 5000
    assert set(size["bm25"]["latency"]) == {"exhaustive", "maxscore"}
    assert all(positive(v["p95_ms"]) for v in size["bm25"]["latency"].values())
    assert size["bm25"]["recall_at_10"] == 1.0  # MaxScore is exact: no lost row
    assert size["records"]["chunks"] == 5000 and size["records"]["sentences"] > 5000
    assert [ld["layout"] for ld in size["load"]] == ["jsonl", "npz"] and all(positive(ld["read_seconds"]) for ld in size["load"])

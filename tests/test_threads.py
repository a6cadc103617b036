"""Thread pools are set on purpose where questions are answered (rag/threads.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import CORPUS, ROOT

PROBE = """
import faiss, json, sys
from threadpoolctl import threadpool_info
from rag import RAG
from rag.embedding import HashEmbedder

def blas():
    return {p["filepath"].split("/")[-2]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

before = blas()
RAG.load(sys.argv[1], sys.argv[2], embedder=HashEmbedder(64))
print(json.dumps({"before": before, "after": blas()}))
"""


def test_a_rag_gives_numpy_one_blas_thread_and_leaves_faiss_its_own(tmp_path) -> None:
    # A child process: thread limits are process-wide and would leak into other tests.
    # No thread variables: numpy's BLAS starts with a thread per core.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(CORPUS), str(tmp_path / "index")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"]["numpy.libs"] == os.cpu_count()
    assert result["after"]["numpy.libs"] == 1
    # FAISS's own BLAS (IVF training) keeps what it had.
    faiss_libs = [k for k in result["after"] if k.startswith("faiss")]
    assert faiss_libs and all(result["after"][k] == result["before"][k] for k in faiss_libs)


def test_questions_take_every_core_only_where_idle_threads_sleep(monkeypatch) -> None:
    from rag import embedding

    monkeypatch.setattr(embedding.os, "cpu_count", lambda: 2)
    assert embedding._threads_for(1, spinning=True) == 1  # PyTorch: a spinning second thread waits for a busy core
    assert embedding._threads_for(1, spinning=False) == 2  # ONNX Runtime's pool sleeps (allow_spinning 0)
    assert embedding._threads_for(embedding.SMALL_CALL + 1, spinning=True) == 2  # a batch: every core
    assert embedding.SentenceTransformerEmbedder._spinning is True

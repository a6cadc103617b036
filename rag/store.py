"""The index folder: a manifest, plain files, atomic switch-over, checks on load.

Layout of `index/`:

    CURRENT                 the name of the live build folder
    build-<time>-<rand>/    manifest.json, chunks.npz, vectors.npy, dense.faiss, bm25/,
                            sentences.npz, sentence_vectors.npy, sentence_df.json,
                            reads.jsonl

Chunk and sentence records are columns of numpy arrays (rag/records.py),
read without parsing; builds of format 2 kept them as JSON Lines
(chunks.jsonl, sentences.jsonl) and are still read.

A build is written into a fresh folder and becomes live only when CURRENT is
replaced (one atomic rename), so a crash mid-build leaves the previous index
untouched. The manifest records a checksum of every file, so a truncated or
damaged file is detected on load instead of giving wrong answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking, one process at a time
    fcntl = None  # type: ignore[assignment]

import numpy as np

from .dense import DenseIndex, IndexSpec
from .errors import SettingsError, StoreError
from .ingest import FileRead
from .records import RecordTable
from .sparse import SparseIndex
from .types import ChunkRecord, SentenceRecord

FORMAT_VERSION = 3  # 2: sentence vectors for answer selection; 3: records as columns (rag/records.py)
# Format 2 differs only in how the records are stored: read, not rebuilt.
READABLE_FORMATS = (2, 3)
POINTER = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.npz"
CHUNKS_V2 = "chunks.jsonl"
VECTORS = "vectors.npy"
SENTENCES = "sentences.npz"
SENTENCES_V2 = "sentences.jsonl"
SENTENCE_VECTORS = "sentence_vectors.npy"
READS = "reads.jsonl"
SENTENCE_DF = "sentence_df.json"
LOCK = ".lock"


@dataclass(frozen=True)
class Manifest:
    package_version: str
    model: str
    dimension: int
    chunking: dict[str, Any]
    articles: dict[str, dict[str, Any]]  # id -> {"key": ..., "source": ..., "chunks": n}
    n_chunks: int
    n_sentences: int = 0
    sparse_tokenizer: str = ""
    repair: bool = True  # built from repaired text (Settings.repair); older manifests were
    index_type: str = "flat"  # IndexSpec.describe() of the dense index
    index_choice: str = "auto"  # what asked for it: "auto" (by size) or a kind the user set
    created: str = ""
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    format_version: int = FORMAT_VERSION
    # The sentences' model when it is not `model` (IndexSettings.sentence_embed_backend):
    # "" means `model`, as in every manifest before it existed.
    sentence_model: str = ""
    # The code that split the articles into chunks and sentence records
    # (rag/indexer.py units_fingerprint); "" in manifests from before it was
    # recorded. A refresh reuses stored records only when it is the same.
    units_code: str = ""


@dataclass(frozen=True)
class StoredIndex:
    manifest: Manifest
    chunks: Sequence[ChunkRecord]  # a list when built, a RecordTable when loaded
    vectors: np.ndarray
    dense: DenseIndex
    sparse: SparseIndex
    sentences: Sequence[SentenceRecord]
    sentence_vectors: np.ndarray
    # word -> number of sentences holding it (answer scoring's IDF); None in
    # builds from before it was stored, and then computed on load.
    sentence_df: dict[str, int] | None = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


class IndexStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def live_folder(self) -> Path | None:
        pointer = self.folder / POINTER
        if not pointer.is_file():
            return None
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise StoreError(f"{pointer} is damaged ({type(e).__name__})") from e
        build = self.folder / name
        if not name or "/" in name or name.startswith(".") or not build.is_dir():
            raise StoreError(f"{pointer} names a missing build {name!r}")
        return build

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the index folder for one process: check, build and switch-over
        happen under it, so two processes never build or clean up at once.
        Waiting is cheap: a loader that waited finds the index fresh."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = (self.folder / LOCK).open("a")
        except OSError as e:
            raise StoreError(
                f"index folder {self.folder} cannot be used ({e.strerror or type(e).__name__})",
                fix="give a folder that can be created and written, e.g. --index index",
            ) from e
        with handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def read_manifest(self) -> Manifest | None:
        build = self.live_folder()
        return None if build is None else self._manifest(build)

    def _manifest(self, build: Path) -> Manifest:
        path = build / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            if data.get("format_version") not in READABLE_FORMATS:
                raise StoreError(
                    f"{path} has format {data.get('format_version')}, this version reads "
                    f"{' and '.join(map(str, READABLE_FORMATS))}"
                )
            return Manifest(**data)
        except (OSError, ValueError, TypeError) as e:  # ValueError: bad JSON or bad UTF-8
            raise StoreError(f"{path} is damaged ({type(e).__name__})") from e

    def load(self) -> StoredIndex | None:
        """The live index, checked file by file; None when there is none yet.

        Vectors and the BM25 arrays are memory-mapped, not read: at a million
        chunks they are gigabytes, of which a query touches a few pages (the
        FAISS index holds its own copy of the vectors for search)."""
        build = self.live_folder()  # read CURRENT once: a switch-over meanwhile must not mix builds
        if build is None:
            return None
        manifest = self._manifest(build)
        for rel in manifest.files:
            if not (build / rel).is_file():
                raise StoreError(f"index file {build / rel} is missing")
        # At a million chunks the files are gigabytes (the sentence vectors
        # alone 4.6 GB) and sha256 reads about 0.7 GB/s a core here, so the
        # files are hashed on every core (hashlib lets go of the GIL), the
        # largest first. 1.5 GB from disk: 6.1 s on one thread, 3.7 s on two
        # (from the page cache on a busy machine, both 3.9 s).
        names = sorted(manifest.files, key=lambda rel: -(build / rel).stat().st_size)
        with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
            digests = dict(zip(names, pool.map(lambda rel: _sha256(build / rel), names)))
        for rel, digest in manifest.files.items():
            if digests[rel] != digest:
                raise StoreError(f"index file {build / rel} is damaged (checksum mismatch)")
        try:
            if manifest.format_version == 2:
                chunks = _read_records(build / CHUNKS_V2, ChunkRecord)
                sentences = _read_records(build / SENTENCES_V2, SentenceRecord)
            else:
                chunks = RecordTable.load(build / CHUNKS, ChunkRecord)
                sentences = RecordTable.load(build / SENTENCES, SentenceRecord)
            vectors = np.load(build / VECTORS, mmap_mode="r")
            sentence_vectors = np.load(build / SENTENCE_VECTORS, mmap_mode="r")
            spec = IndexSpec.parse(manifest.index_type)
            sentence_df = None
            if SENTENCE_DF in manifest.files:
                sentence_df = json.loads((build / SENTENCE_DF).read_text(encoding="utf-8"))
                if not isinstance(sentence_df, dict):
                    raise TypeError(f"{SENTENCE_DF} is not a JSON object")
        except (OSError, ValueError, TypeError, SettingsError) as e:
            raise StoreError(f"index in {build} cannot be read ({type(e).__name__}: {e})") from e
        dense = DenseIndex.load(build, spec, vectors)
        sparse = SparseIndex.load(build, len(chunks), mmap=True)
        consistent = len(chunks) == manifest.n_chunks == dense.size == sparse.size == len(vectors)
        if not consistent or not len(sentences) == manifest.n_sentences == len(sentence_vectors):
            raise StoreError(
                f"index in {build} is inconsistent ({len(chunks)} chunks, {dense.size} vectors in FAISS): "
                "run `rag index --rebuild`"
            )
        return StoredIndex(manifest, chunks, vectors, dense, sparse, sentences, sentence_vectors, sentence_df)

    def known_reads(self) -> dict[str, FileRead]:
        """The corpus texts the live build was made from, by content hash:
        reading them back spares the text repair of unchanged files.

        {} when there is no build or the file is missing, damaged (checked
        against the manifest's checksum) or from older code: a lost read
        costs only reading the file again, never a wrong text.
        """
        try:
            build = self.live_folder()
            if build is None:
                return {}
            path = build / READS
            if self._manifest(build).files.get(READS) != _sha256(path):
                return {}
            reads = {}
            with path.open(encoding="utf-8") as f:
                for line in f:
                    read = FileRead.from_json(json.loads(line))
                    if read is not None:
                        reads[read.content_hash] = read
            return reads
        except (StoreError, OSError, ValueError, TypeError, KeyError):
            return {}

    def save(self, index: StoredIndex, reads: Sequence[FileRead] = ()) -> StoredIndex:
        """Write a complete build, then make it live with one atomic rename.

        Callers hold `lock()`. `reads`: the corpus texts the build was made
        from, kept for known_reads(). Returns the index with its final
        manifest (`files` and `created` are filled in here).
        """
        name = f"build-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        staging = self.folder / f".{name}.partial"
        staging.mkdir()
        pointer_tmp = self.folder / f".{POINTER}.{uuid.uuid4().hex[:6]}"
        try:
            RecordTable.save(staging / CHUNKS, ChunkRecord, index.chunks)
            RecordTable.save(staging / SENTENCES, SentenceRecord, index.sentences)
            if index.sentence_df is not None:
                (staging / SENTENCE_DF).write_text(json.dumps(index.sentence_df, ensure_ascii=False), encoding="utf-8")
            with (staging / READS).open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in reads)
            np.save(staging / VECTORS, np.ascontiguousarray(index.vectors, dtype=np.float32))
            np.save(staging / SENTENCE_VECTORS, np.ascontiguousarray(index.sentence_vectors, dtype=np.float32))
            index.dense.save(staging)
            index.sparse.save(staging)
            files = {str(p.relative_to(staging)): _sha256(p) for p in _files(staging)}
            final = Manifest(**{**asdict(index.manifest), "files": files, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                "format_version": FORMAT_VERSION})
            data = asdict(final)
            if not data["sentence_model"]:
                # Written only when set: a release from before the key reads the index as it did.
                del data["sentence_model"]
            (staging / MANIFEST).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
            _fsync_tree(staging)
            staging.rename(self.folder / name)
            staging = self.folder / name  # from here on, a failure must remove the renamed build
            pointer_tmp.write_text(name + "\n", encoding="utf-8")
            os.replace(pointer_tmp, self.folder / POINTER)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            pointer_tmp.unlink(missing_ok=True)
            raise
        self._remove_old_builds(keep=name)
        final = self._manifest(self.folder / name)
        return dataclasses.replace(index, manifest=final)

    def _remove_old_builds(self, keep: str) -> None:
        # Safe under lock(): no other process is writing a build right now, so
        # every other build folder and partial build is a leftover.
        for entry in self.folder.iterdir():
            stale_build = entry.is_dir() and entry.name.startswith(("build-", ".build-")) and entry.name != keep
            if stale_build or (entry.is_file() and entry.name.startswith(f".{POINTER}.")):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _read_records(path: Path, kind: type) -> list:
    """Records of a format-2 build: one JSON object a line."""
    with path.open(encoding="utf-8") as f:
        return [kind(**json.loads(line)) for line in f if line.strip()]


def _fsync_tree(folder: Path) -> None:
    """Flush file contents to disk before the rename makes them live."""
    for path in _files(folder) + [folder / MANIFEST]:
        with path.open("rb") as f:
            os.fsync(f.fileno())

"""The index lifecycle: build, reuse, incremental refresh, atomic save, manifest,
and the chunk invariants of the index the product really serves.

All but the last test use the fake embedder; the last one uses the real
corpus with the real model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import rag
from rag.core import RAG
from rag.dense import DenseIndex
from rag.embedding import HashEmbedder
from rag.errors import UnknownArticleError
from rag.indexer import article_key, context_text
from rag.ingest import load_corpus
from rag.settings import Settings
from rag.records import RecordTable
from rag.sparse import SparseIndex
from rag.store import FORMAT_VERSION, LOCK, MANIFEST, POINTER, IndexStore, StoredIndex
from rag.types import ChunkRecord, SentenceRecord

from .conftest import ARTICLE_IDS

QUESTION = "Balkans relations with Serbia and Türkiye"
CHANGED_ID = "002_96505048f8b5e099"
CHANGE_FROM = "in 2021, Ankara and Tirana signed an agreement"
CHANGE_TO = "in 2019, Ankara and Tirana signed an agreement"


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to embed."""

    def __init__(self, inner, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or inner.name
        self.dimension = inner.dimension
        self.max_pieces = inner.max_pieces
        self.calls: list[list[str]] = []

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    # Chunks are embedded with their "title\n\n" context header; sentences are
    # single lines of a paragraph, so the header tells the two apart.
    @property
    def chunk_texts(self) -> list[str]:
        return [t for t in self.texts if "\n\n" in t]

    @property
    def sentence_texts(self) -> list[str]:
        return [t for t in self.texts if "\n\n" not in t]

    def count_pieces(self, text: str) -> int:
        return self.inner.count_pieces(text)

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.embed(texts, progress=progress)


@pytest.fixture
def counting(fake_embedder: HashEmbedder) -> CountingEmbedder:
    return CountingEmbedder(fake_embedder)


def stored(index: Path) -> StoredIndex:
    s = IndexStore(index).load()
    assert s is not None
    return s


def chunk_texts(index: Path, corpus: Path) -> dict[str, list[str]]:
    """article id -> the embedded text of each of its chunks, read from disk."""
    articles = load_corpus(corpus).by_id()
    out: dict[str, list[str]] = {}
    for c in stored(index).chunks:
        article = articles[c.article_id]
        out.setdefault(c.article_id, []).append(context_text(article, article.text[c.start : c.end]))
    return out


def index_entries(index: Path) -> list[str]:
    """What the index folder holds besides the embedding cache (which outlives builds)."""
    return sorted(p.name for p in index.iterdir() if p.name != "embedding-cache")


def build_folders(index: Path) -> list[str]:
    return sorted(p.name for p in index.iterdir() if p.is_dir())


# --- build, then reuse -----------------------------------------------------------


def test_first_load_builds_and_second_load_embeds_nothing(
    corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder
) -> None:
    index = tmp_path / "index"
    first = RAG.load(corpus_copy, index, embedder=counting)
    s = first.summary
    assert s.rebuilt is True
    assert s.reason == "no index yet"
    assert s.added == tuple(ARTICLE_IDS)
    assert s.changed == s.removed == s.unchanged == ()
    assert s.chunks == len(stored(index).chunks) > len(ARTICLE_IDS)
    assert s.embedded == s.chunks == len(counting.chunk_texts)
    assert s.reused == 0
    assert s.sentences_embedded == stored(index).manifest.n_sentences == len(counting.sentence_texts) > s.chunks
    live = (index / POINTER).read_text()

    counting.calls.clear()
    second = RAG.load(corpus_copy, index, embedder=counting)
    assert second.summary.rebuilt is False
    assert second.summary.reason == "up to date"
    assert second.summary.unchanged == tuple(ARTICLE_IDS)
    assert second.summary.chunks == s.chunks
    assert second.summary.embedded == 0
    assert counting.calls == []  # not even an empty call
    assert (index / POINTER).read_text() == live  # nothing was written
    assert build_folders(index) == [live.strip()]

    hits = second.retrieve(QUESTION, k=3)
    assert len(hits) == 3
    assert counting.calls == [[QUESTION]]  # only the question is embedded


def test_rebuild_requested_embeds_everything_again(corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    old = build_folders(index)
    counting.calls.clear()
    r = RAG.load(corpus_copy, index, embedder=counting, rebuild=True)
    assert r.summary.rebuilt is True and r.summary.reason == "rebuild requested"
    assert r.summary.embedded == r.summary.chunks == len(counting.chunk_texts)
    assert build_folders(index) != old and len(build_folders(index)) == 1


# --- incremental refresh ------------------------------------------------------------


def test_changed_article_re_embeds_only_its_changed_chunks(
    corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder
) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    before = chunk_texts(index, corpus_copy)
    path = corpus_copy / f"{CHANGED_ID}.txt"
    text = path.read_text(encoding="utf-8")
    assert text.count(CHANGE_FROM) == 1
    path.write_text(text.replace(CHANGE_FROM, CHANGE_TO), encoding="utf-8")

    counting.calls.clear()
    r = RAG.load(corpus_copy, index, embedder=counting)
    after = chunk_texts(index, corpus_copy)
    s = r.summary
    assert s.rebuilt is True and s.reason == "corpus changed"
    assert s.changed == (CHANGED_ID,)
    assert s.added == s.removed == ()
    assert set(s.unchanged) == set(ARTICLE_IDS) - {CHANGED_ID}

    new_texts = [t for t in after[CHANGED_ID] if t not in set(before[CHANGED_ID])]
    assert 1 <= len(new_texts) < len(after[CHANGED_ID])  # a local edit changes a few chunks only
    assert all(CHANGE_TO in t for t in new_texts)
    assert s.embedded == len(new_texts)
    assert s.reused == s.chunks - len(new_texts)
    assert sorted(counting.chunk_texts) == sorted(new_texts)
    for article_id in set(ARTICLE_IDS) - {CHANGED_ID}:
        assert after[article_id] == before[article_id]

    hits = r.retrieve("Ankara Tirana 2019 agreement strategic partnership", k=1, mode="bm25")
    assert hits[0].article_id == CHANGED_ID and "in 2019" in hits[0].text


def test_new_markdown_article_is_added(corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    index = tmp_path / "index"
    first = RAG.load(corpus_copy, index, embedder=counting)
    (corpus_copy / "zz_new.md").write_text(
        "---\ntitle: Ferries of the Adriatic\nauthor: A. Writer\n---\n"
        "# Ferries of the Adriatic\n\n"
        "The quokkafjord ferry line links Bari with Durrës twice a day. "
        "Its timetable changed in spring.\n\n"
        "Freight on the line doubled after the port of Durrës was dredged.\n",
        encoding="utf-8",
    )
    counting.calls.clear()
    r = RAG.load(corpus_copy, index, embedder=counting)
    s = r.summary
    assert s.added == ("zz_new",)
    assert s.changed == s.removed == ()
    assert s.unchanged == tuple(ARTICLE_IDS)
    new_chunks = [c for c in stored(index).chunks if c.article_id == "zz_new"]
    assert new_chunks
    assert s.embedded == len(new_chunks) == len(counting.chunk_texts)
    assert all(t.startswith("Ferries of the Adriatic\n\n") for t in counting.chunk_texts)
    assert s.reused == first.summary.chunks
    assert r.article("zz_new").author == "A. Writer"
    assert "---" not in r.article("zz_new").text and "#" not in r.article("zz_new").text
    hits = r.retrieve("quokkafjord ferry", k=3)
    assert hits[0].article_id == "zz_new"


def test_deleted_article_is_removed(corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    index = tmp_path / "index"
    first = RAG.load(corpus_copy, index, embedder=counting)
    gone = ARTICLE_IDS[1]
    gone_chunks = sum(1 for c in stored(index).chunks if c.article_id == gone)
    (corpus_copy / f"{gone}.txt").unlink()
    counting.calls.clear()
    r = RAG.load(corpus_copy, index, embedder=counting)
    s = r.summary
    assert s.removed == (gone,)
    assert s.added == s.changed == ()
    assert s.embedded == 0 and counting.calls == []
    assert s.chunks == first.summary.chunks - gone_chunks == s.reused
    assert gone not in stored(index).manifest.articles
    assert gone not in {c.article_id for c in stored(index).chunks}
    every = r.retrieve(QUESTION, k=s.chunks, mode="dense")
    assert len(every) == s.chunks and gone not in {h.article_id for h in every}
    with pytest.raises(UnknownArticleError):
        r.retrieve(QUESTION, articles=[gone])


# --- chunking and model changes ---------------------------------------------------------


DEFAULTS = Settings()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"chunk_tokens": DEFAULTS.index.chunk_tokens + 10}, id="chunk_tokens"),
        # The first chunk of every article starts and ends where it did: only
        # the step back for the overlap changes.
        pytest.param({"overlap_tokens": 0}, id="overlap_tokens"),
    ],
)
def test_chunking_change_rechunks_and_reuses_unchanged_chunks(
    corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder, change: dict
) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    before = {t for texts in chunk_texts(index, corpus_copy).values() for t in texts}
    old = stored(index)
    old_vectors = {c.embed_hash: v.copy() for c, v in zip(old.chunks, old.vectors)}

    counting.calls.clear()
    settings = DEFAULTS.replace(**change)
    r = RAG.load(corpus_copy, index, embedder=counting, settings=settings)
    s = r.summary
    assert s.rebuilt is True
    assert s.reason == f"chunking changed from {DEFAULTS.index.chunking()} to {settings.index.chunking()}"
    assert s.changed == s.added == s.removed == ()  # the articles did not change
    after = [t for texts in chunk_texts(index, corpus_copy).values() for t in texts]
    kept = [t for t in after if t in before]
    assert len(kept) >= len(ARTICLE_IDS)
    assert len(kept) < len(after)
    assert s.reused == len(kept)
    assert s.embedded == len(after) - len(kept) == len(counting.chunk_texts)
    assert not set(counting.chunk_texts) & before
    new = stored(index)
    assert new.manifest.chunking == settings.index.chunking()
    reused_rows = 0
    for c, v in zip(new.chunks, new.vectors):
        if c.embed_hash in old_vectors:
            assert np.array_equal(v, old_vectors[c.embed_hash])
            reused_rows += 1
    assert reused_rows == s.reused
    assert max(c.n_tokens for c in new.chunks) <= settings.index.chunk_tokens

    # The new chunking is now up to date; the default one is stale again.
    counting.calls.clear()
    assert RAG.load(corpus_copy, index, embedder=counting, settings=settings).summary.rebuilt is False
    assert counting.calls == []
    assert RAG.load(corpus_copy, index, embedder=counting).summary.rebuilt is True


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda: HashEmbedder(dimension=32), id="other-dimension"),
        pytest.param(lambda: CountingEmbedder(HashEmbedder(dimension=64), name="hash-64-v2"), id="same-dimension-other-name"),
    ],
)
def test_other_embedder_rebuilds_everything(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, caplog: pytest.LogCaptureFixture, other
) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=fake_embedder)
    embedder = CountingEmbedder(other())
    caplog.set_level(logging.WARNING, logger="rag")
    r = RAG.load(corpus_copy, index, embedder=embedder)
    s = r.summary
    assert s.rebuilt is True
    assert f"index was built with model hash-64 (64 dims), settings use {embedder.name} ({embedder.dimension} dims)" == s.reason
    assert s.embedded == s.chunks == len(embedder.chunk_texts) and s.reused == 0
    warnings = [rec.getMessage() for rec in caplog.records if rec.name == "rag" and rec.levelno == logging.WARNING]
    assert warnings == [f"{s.reason}: the old model's vectors cannot be reused"]

    new = stored(index)
    assert (new.manifest.model, new.manifest.dimension) == (embedder.name, embedder.dimension)
    assert new.vectors.shape == (s.chunks, embedder.dimension)
    assert new.dense.dimension == embedder.dimension
    hits = r.retrieve(QUESTION, k=5, mode="dense")
    assert len(hits) == 5 and all(h.dense_score is not None for h in hits)
    # Loading again with the old embedder rebuilds again rather than using the
    # index as it is, and takes the old model's vectors from the embedding cache.
    back = RAG.load(corpus_copy, index, embedder=CountingEmbedder(fake_embedder))
    assert back.summary.rebuilt is True
    assert back.summary.embedded == 0 and back.summary.reused == back.summary.chunks


# --- atomic save ---------------------------------------------------------------------------


class Crash(OSError):
    pass


@pytest.mark.parametrize("target", [SparseIndex, DenseIndex], ids=["SparseIndex.save", "DenseIndex.save"])
def test_crash_mid_build_keeps_the_previous_index(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch, target
) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=fake_embedder)
    pointer = (index / POINTER).read_text()
    old_build = pointer.strip()
    old = stored(index)
    path = corpus_copy / f"{CHANGED_ID}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(CHANGE_FROM, CHANGE_TO), encoding="utf-8")

    staging_seen: list[Path] = []

    def crash(self, folder: Path) -> None:
        assert folder.is_dir() and folder.name.startswith(".build-") and folder.name.endswith(".partial")
        assert (folder / "chunks.npz").is_file()  # the build was under way
        staging_seen.append(folder)
        raise Crash("disk full")

    monkeypatch.setattr(target, "save", crash)
    with pytest.raises(Crash):
        RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert len(staging_seen) == 1

    # The previous index is live and whole; no partial folder is left behind.
    assert (index / POINTER).read_text() == pointer
    assert index_entries(index) == sorted([LOCK, POINTER, old_build])
    survivor = stored(index)
    assert survivor.manifest == old.manifest
    assert [c.embed_hash for c in survivor.chunks] == [c.embed_hash for c in old.chunks]

    # Once the crash is gone, the next load switches CURRENT and removes the old build.
    monkeypatch.undo()
    r = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert r.summary.changed == (CHANGED_ID,)
    new_build = (index / POINTER).read_text().strip()
    assert new_build != old_build
    assert index_entries(index) == sorted([LOCK, POINTER, new_build])


def test_crash_while_switching_current_keeps_the_previous_index(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.store

    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=fake_embedder)
    pointer = (index / POINTER).read_text()
    (corpus_copy / f"{ARTICLE_IDS[0]}.txt").unlink()
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == POINTER:
            raise Crash("power cut")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(rag.store.os, "replace", replace)
    with pytest.raises(Crash):
        RAG.load(corpus_copy, index, embedder=fake_embedder)
    monkeypatch.undo()
    assert (index / POINTER).read_text() == pointer
    assert ARTICLE_IDS[0] in stored(index).manifest.articles
    # Nothing is left behind: no partial build, no renamed-but-dead build, no pointer temp file.
    assert index_entries(index) == sorted([LOCK, POINTER, pointer.strip()])

    r = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert r.summary.removed == (ARTICLE_IDS[0],)
    live = (index / POINTER).read_text().strip()
    assert index_entries(index) == sorted([LOCK, POINTER, live])



def test_save_replaces_current_and_removes_old_builds(corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=fake_embedder)
    first = (index / POINTER).read_text().strip()
    # Leftovers of an earlier crash: a partial staging folder and a pointer temp file.
    (index / ".build-19990101-000000-aaaaaa.partial").mkdir()
    (index / f".{POINTER}.abcdef").write_text("x")
    RAG.load(corpus_copy, index, embedder=fake_embedder, rebuild=True)
    second = (index / POINTER).read_text()
    assert second.endswith("\n") and re.fullmatch(r"build-\d{8}-\d{6}-[0-9a-f]{6}\n", second)
    assert second.strip() != first
    assert index_entries(index) == sorted([LOCK, POINTER, second.strip()])


# --- the manifest ---------------------------------------------------------------------------


def test_manifest_records_model_chunking_articles_and_file_checksums(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder
) -> None:
    index = tmp_path / "index"
    r = RAG.load(corpus_copy, index, embedder=fake_embedder)
    build = index / (index / POINTER).read_text().strip()
    m = json.loads((build / MANIFEST).read_text(encoding="utf-8"))

    assert m["package_version"] == rag.__version__
    assert m["format_version"] == FORMAT_VERSION
    assert m["model"] == "hash-64" and m["dimension"] == 64
    assert m["index_type"] == "flat" and m["index_choice"] == "auto"
    assert m["created"]
    assert m["chunking"] == Settings().index.chunking()
    assert set(m["chunking"]) == {"chunk_tokens", "overlap_tokens", "tokenizer"}
    assert m["chunking"]["chunk_tokens"] == Settings().index.chunk_tokens

    chunks = RecordTable.load(build / "chunks.npz", ChunkRecord)
    assert m["n_chunks"] == len(chunks) == r.summary.chunks
    per_article = Counter(c.article_id for c in chunks)
    corpus = load_corpus(corpus_copy)
    assert set(m["articles"]) == set(ARTICLE_IDS)
    for article in corpus.articles:
        entry = m["articles"][article.id]
        assert entry["key"] == article_key(article)
        assert entry["source"] == f"{article.id}.txt"
        assert entry["chunks"] == per_article[article.id] > 0

    on_disk = sorted(p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file() and p.name != MANIFEST)
    assert sorted(m["files"]) == on_disk
    assert {"chunks.npz", "vectors.npy", "dense.faiss", "sentences.npz", "sentence_vectors.npy"} <= set(on_disk)
    assert m["n_sentences"] == len(RecordTable.load(build / "sentences.npz", SentenceRecord)) > m["n_chunks"]
    assert any(name.startswith("bm25/") for name in on_disk)
    for rel, digest in m["files"].items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert hashlib.sha256((build / rel).read_bytes()).hexdigest() == digest


def test_article_key_changes_with_text_title_and_publisher(corpus_copy: Path) -> None:
    import dataclasses

    article = load_corpus(corpus_copy).articles[0]
    key = article_key(article)
    assert article_key(dataclasses.replace(article)) == key
    assert article_key(dataclasses.replace(article, text=article.text + " More.")) != key
    assert article_key(dataclasses.replace(article, title="Another title")) != key
    assert article_key(dataclasses.replace(article, publisher="Another publisher")) != key


def test_metadata_title_change_re_embeds_that_article(corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    """The title is part of every embedded chunk text, so renaming re-embeds the article."""
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    meta = json.loads((corpus_copy / "metadata.json").read_text(encoding="utf-8"))
    meta[ARTICLE_IDS[3]]["title"] = "A renamed article"
    (corpus_copy / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    counting.calls.clear()
    r = RAG.load(corpus_copy, index, embedder=counting)
    n = sum(1 for c in stored(index).chunks if c.article_id == ARTICLE_IDS[3])
    assert r.summary.changed == (ARTICLE_IDS[3],)
    assert r.summary.embedded == n == len(counting.chunk_texts)
    assert all(t.startswith("A renamed article") for t in counting.chunk_texts)


# --- invariants of the real index --------------------------------------------------------------


def _inside_one_sentence(text: str, start: int, end: int) -> bool:
    from rag.sentences import split_sentences

    return any(s.start <= start and end <= s.end for s in split_sentences(text))


@pytest.mark.model
def test_real_index_chunks_point_at_the_text_and_fit_the_model(real_rag, real_embedder) -> None:
    from rag.tokens import count_tokens

    r = real_rag
    limit = Settings().index.chunk_tokens
    records = stored(r.settings.index.index_dir).chunks
    assert len(records) == r.summary.chunks > 0
    by_id = {c.id: c for c in records}
    assert len(by_id) == len(records)

    # Dense search over all rows returns every chunk exactly once, as hits.
    hits = r.retrieve(QUESTION, k=len(records), mode="dense")
    assert sorted(h.chunk_id for h in hits) == sorted(by_id)

    for hit in hits:
        record = by_id[hit.chunk_id]
        article = r.article(record.article_id)
        assert (hit.article_id, hit.start, hit.end) == (record.article_id, record.start, record.end)
        assert hit.title == article.title
        assert article.text[record.start : record.end] == hit.text
        assert hit.text and hit.text == hit.text.strip()
        assert real_embedder.count_pieces(context_text(article, hit.text)) <= real_embedder.max_pieces
        assert record.n_tokens == count_tokens(hit.text)
        if record.n_tokens > limit:
            assert _inside_one_sentence(article.text, record.start, record.end), record.id

    # Per article: chunks are numbered in order, move forward, and cover every word.
    for article in r.articles:
        own = sorted((c for c in records if c.article_id == article.id), key=lambda c: c.position)
        assert [c.position for c in own] == list(range(len(own)))
        assert [c.id for c in own] == [f"{article.id}#{i}" for i in range(len(own))]
        assert all(a.start < b.start and a.end < b.end for a, b in zip(own, own[1:]))
        covered = np.zeros(len(article.text), dtype=bool)
        for c in own:
            covered[c.start : c.end] = True
        uncovered = [m.group() for m in re.finditer(r"\S+", article.text) if not covered[m.start() : m.end()].all()]
        assert uncovered == [], f"{article.id}: words in no chunk: {uncovered[:5]}"


@pytest.mark.model
def test_real_index_is_up_to_date_on_reload(real_rag, real_embedder) -> None:
    again = RAG.load(real_rag.settings.index.corpus_dir, real_rag.settings.index.index_dir, embedder=real_embedder)
    assert again.summary.rebuilt is False
    assert again.summary.unchanged == tuple(ARTICLE_IDS)
    m = stored(real_rag.settings.index.index_dir).manifest
    assert m.model == real_embedder.name and m.model.startswith("all-MiniLM-L6-v2@")
    assert m.dimension == real_embedder.dimension == 384


CONCURRENT_LOAD = """
import sys
from rag import RAG
from rag.embedding import HashEmbedder
r = RAG.load(sys.argv[1], sys.argv[2], embedder=HashEmbedder(64))
print(r.summary.rebuilt, len(r.retrieve("Serbia", k=3, mode="bm25")))
"""


def test_concurrent_loads_build_once_and_never_break_each_other(corpus_copy: Path, tmp_path: Path) -> None:
    """Three processes load one fresh index at once: the lock lets one build,
    the others wait and find it fresh; nobody sees a half build or a missing one."""
    import subprocess
    import sys

    index = tmp_path / "index"
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_LOAD, str(corpus_copy), str(index)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for (out, err), p in zip(results, procs):
        assert p.returncode == 0, err[-2000:]
        assert out.split()[1] == "3"
    assert sorted(out.split()[0] for out, _ in results) == ["False", "False", "True"]
    assert len(build_folders(index)) == 1


def test_an_index_path_that_is_a_file_is_refused_with_the_fix(corpus_copy: Path, tmp_path: Path, fake_embedder) -> None:
    from rag.errors import StoreError

    not_a_folder = tmp_path / "index.txt"
    not_a_folder.write_text("x")
    with pytest.raises(StoreError, match=r"index folder .*index.txt cannot be used .*: give a folder"):
        RAG.load(corpus_copy, not_a_folder, embedder=fake_embedder)
    assert not_a_folder.read_text() == "x"  # nothing lost


# --- the embedding cache ---------------------------------------------------------------


def test_going_back_to_a_chunking_embeds_nothing(corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    other = DEFAULTS.replace(chunk_tokens=80)
    assert RAG.load(corpus_copy, index, embedder=counting, settings=other).summary.embedded > 0
    counting.calls.clear()
    back = RAG.load(corpus_copy, index, embedder=counting)
    assert back.summary.rebuilt is True
    assert back.summary.embedded == 0 and back.summary.reused == back.summary.chunks
    assert counting.calls == []


def test_an_article_removed_and_put_back_embeds_nothing(corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    article = sorted(corpus_copy.glob("*.txt"))[0]
    kept = tmp_path / article.name
    article.rename(kept)
    RAG.load(corpus_copy, index, embedder=counting)
    kept.rename(article)
    counting.calls.clear()
    r = RAG.load(corpus_copy, index, embedder=counting)
    assert r.summary.added == (article.stem,)
    assert r.summary.embedded == 0 and r.summary.sentences_embedded == 0
    assert counting.calls == []


def test_a_requested_rebuild_does_not_trust_the_cache(corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    RAG.load(corpus_copy, index, embedder=counting, settings=DEFAULTS.replace(chunk_tokens=80))
    assert any((index / "embedding-cache").iterdir())
    counting.calls.clear()
    r = RAG.load(corpus_copy, index, embedder=counting, rebuild=True)
    assert r.summary.embedded == r.summary.chunks == len(counting.chunk_texts)


def test_a_damaged_cache_only_costs_embedding_again(
    corpus_copy: Path, tmp_path: Path, counting: CountingEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=counting)
    RAG.load(corpus_copy, index, embedder=counting, settings=DEFAULTS.replace(chunk_tokens=80))
    [cache_file] = (index / "embedding-cache").iterdir()
    cache_file.write_bytes(b"not a cache")
    caplog.set_level(logging.INFO, logger="rag")
    r = RAG.load(corpus_copy, index, embedder=counting)
    assert r.summary.rebuilt is True and r.summary.embedded > 0
    assert any("unreadable" in rec.getMessage() and "ignoring it" in rec.getMessage() for rec in caplog.records)
    assert len(r.retrieve(QUESTION, k=3)) == 3


@pytest.mark.parametrize("capacity", [0, 5])
def test_the_cache_holds_at_most_its_capacity(corpus_copy: Path, tmp_path: Path, fake_embedder, capacity: int) -> None:
    index = tmp_path / "index"
    settings = DEFAULTS.replace(embedding_cache_size=capacity)
    RAG.load(corpus_copy, index, embedder=fake_embedder, settings=settings)
    RAG.load(corpus_copy, index, embedder=fake_embedder, settings=settings.replace(chunk_tokens=80))
    files = list((index / "embedding-cache").glob("*.npz")) if (index / "embedding-cache").exists() else []
    if capacity == 0:
        assert files == []
    else:
        [path] = files
        with np.load(path) as data:
            assert len(data["hashes"]) == len(data["vectors"]) == capacity


# --- texts kept with the index: unchanged files are not repaired again ------------------------


def count_repairs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import rag.ingest

    calls: list[str] = []
    real = rag.ingest.read_file

    def counting(path, *a, **k):
        calls.append(Path(path).name)
        return real(path, *a, **k)

    monkeypatch.setattr(rag.ingest, "read_file", counting)
    return calls


def test_unchanged_files_are_read_back_not_repaired_again(
    corpus_copy: Path, tmp_path: Path, fake_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    first = RAG.load(corpus_copy, index, embedder=fake_embedder)
    calls = count_repairs(monkeypatch)
    again = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert calls == [] and again.corpus.reused_reads == len(ARTICLE_IDS)
    # Everything a repaired read gives comes back the same: text, report, metadata.
    assert again.articles == first.articles

    path = corpus_copy / f"{CHANGED_ID}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(CHANGE_FROM, CHANGE_TO), encoding="utf-8")
    changed = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert calls == [path.name]  # only the changed file is read and repaired
    assert CHANGE_TO in changed.article(CHANGED_ID).text


@pytest.mark.parametrize("damage", ["bytes", "code"])
def test_kept_texts_that_are_damaged_or_from_other_code_are_read_again(
    corpus_copy: Path, tmp_path: Path, fake_embedder, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    import rag.ingest

    index = tmp_path / "index"
    first = RAG.load(corpus_copy, index, embedder=fake_embedder)
    reads = index / (index / POINTER).read_text().strip() / "reads.jsonl"
    if damage == "bytes":
        # A changed letter that still parses must not become the article's text.
        reads.write_text(reads.read_text(encoding="utf-8").replace("Balkan", "Balkam", 1), encoding="utf-8")
    else:
        monkeypatch.setattr(rag.ingest, "reader_fingerprint", lambda: "other-code")
    calls = count_repairs(monkeypatch)
    assert IndexStore(index).known_reads() == {}
    r = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert len(calls) == len(ARTICLE_IDS) and r.corpus.reused_reads == 0
    assert r.articles == first.articles


def test_stored_sentence_word_counts_match_the_sentences(real_rag) -> None:
    from rag.evidence import sentence_document_frequency

    stored_index = real_rag.backend.stored
    texts = [real_rag.article(s.article_id).text[s.start : s.end] for s in stored_index.sentences]
    assert stored_index.sentence_df == sentence_document_frequency(texts)
    assert stored_index.sentence_df["balkan"] > 1


def test_a_refresh_chunks_only_the_changed_article_and_builds_what_a_full_build_would(corpus_copy: Path, tmp_path: Path,
                                                                                      monkeypatch) -> None:
    embedder = HashEmbedder()
    RAG.load(corpus_copy, tmp_path / "index", embedder=embedder)
    target = sorted(corpus_copy.glob("*.txt"))[0]
    target.write_text(target.read_text(encoding="utf-8") + "\n\nThe delegation also discussed rail links.\n", encoding="utf-8")
    split: list[int] = []
    real_split = rag.indexer.split_sentences
    monkeypatch.setattr(rag.indexer, "split_sentences", lambda text: split.append(len(text)) or real_split(text))
    refreshed = RAG.load(corpus_copy, tmp_path / "index", embedder=embedder).backend.stored
    changed = next(a for a in load_corpus(corpus_copy).articles if a.source.endswith(target.name))
    assert split == [len(changed.text)], "only the changed article is split again"
    full = RAG.load(corpus_copy, tmp_path / "full", embedder=embedder).backend.stored
    assert list(refreshed.chunks) == list(full.chunks) and list(refreshed.sentences) == list(full.sentences)
    assert np.array_equal(refreshed.vectors, full.vectors)


def test_a_refresh_splits_every_article_again_when_the_splitting_code_changed(corpus_copy: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    """Stored records are the splitter's output: records kept from other
    splitting code (a heading rule changed, say) would keep the old sentences
    in an index of the new code. The vectors are still reused by their texts."""
    embedder = HashEmbedder()
    first = RAG.load(corpus_copy, tmp_path / "index", embedder=embedder).backend.stored
    assert first.manifest.units_code == rag.indexer.units_fingerprint()
    target = sorted(corpus_copy.glob("*.txt"))[0]
    target.write_text(target.read_text(encoding="utf-8") + "\n\nThe delegation also discussed rail links.\n", encoding="utf-8")
    monkeypatch.setattr(rag.indexer, "units_fingerprint", lambda: "other-code")
    split: list[int] = []
    real_split = rag.indexer.split_sentences
    monkeypatch.setattr(rag.indexer, "split_sentences", lambda text: split.append(len(text)) or real_split(text))
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=embedder)
    assert len(split) == len(ARTICLE_IDS), "every article is split again"
    assert r.backend.stored.manifest.units_code == "other-code"
    assert (r.summary.embedded, r.summary.sentences_embedded) == (1, 1), r.summary  # the last chunk and the new sentence; the rest reused by their texts

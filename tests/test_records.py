"""The columnar record files (rag/records.py) and the index folders that hold them."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from rag.core import RAG
from rag.errors import StoreError
from rag.records import RecordTable, rows_by
from rag.store import MANIFEST, POINTER, IndexStore, _sha256
from rag.types import ChunkRecord, SentenceRecord

UNICODE_IDS = ["000_Vučić-Türkiye", "001_日本語", "002_emoji-🙂", "003_bad-\udcff-bytes", "004_plain"]


def _chunks(n: int = 40) -> list[ChunkRecord]:
    return [ChunkRecord(f"{UNICODE_IDS[i % 5]}#{i // 5}", UNICODE_IDS[i % 5], i // 5, 1000 * i, 1000 * i + 7 + i,
                        3 + i, f"{i:064x}") for i in range(n)]


def test_records_round_trip_exactly(tmp_path: Path) -> None:
    records = _chunks()
    RecordTable.save(tmp_path / "chunks.npz", ChunkRecord, records)
    table = RecordTable.load(tmp_path / "chunks.npz", ChunkRecord)
    assert len(table) == len(records)
    assert list(table) == records  # every field, the surrogate-escaped id included
    assert table[-1] == records[-1] and table[3:6] == records[3:6] and table[np.int64(7)] == records[7]
    assert type(table[0].start) is int  # Python ints, not numpy scalars, leave the table
    with pytest.raises(IndexError):
        table[len(records)]
    rows, from_list = rows_by(table, "article_id"), rows_by(records, "article_id")  # on the codes, and by a loop
    assert set(rows) == set(from_list) == set(UNICODE_IDS)
    assert all(rows[k].tolist() == from_list[k].tolist() for k in UNICODE_IDS)
    assert rows[UNICODE_IDS[1]].tolist() == [1, 6, 11, 16, 21, 26, 31, 36]


def test_unique_and_empty_text_columns_round_trip(tmp_path: Path) -> None:
    # One sentence per article: no repeated values, so no codes; "" values too.
    records = [SentenceRecord(f"a{i}", i, i + 1, "" if i % 3 == 0 else f"h{i}é") for i in range(7)]
    RecordTable.save(tmp_path / "s.npz", SentenceRecord, records)
    assert list(RecordTable.load(tmp_path / "s.npz", SentenceRecord)) == records
    RecordTable.save(tmp_path / "empty.npz", SentenceRecord, [])
    assert list(RecordTable.load(tmp_path / "empty.npz", SentenceRecord)) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong-kind", "bad-offsets"])
def test_damaged_record_file_gives_one_line(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "chunks.npz"
    RecordTable.save(path, ChunkRecord, _chunks())
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong-kind":
        RecordTable.save(path, SentenceRecord, [SentenceRecord("a", 0, 1, "h")])
    else:
        arrays = dict(np.load(path))
        arrays["text_ends.embed_hash"] = arrays["text_ends.embed_hash"][::-1].copy()
        np.savez(path, **arrays)
    with pytest.raises(StoreError) as e:
        RecordTable.load(path, ChunkRecord)
    message = str(e.value)
    assert "\n" not in message and str(path) in message and "rag index --rebuild" in message


def test_a_damaged_record_file_in_an_index_is_named_and_rebuilt(corpus_copy: Path, tmp_path: Path, fake_embedder, caplog) -> None:
    index = tmp_path / "index"
    first = RAG.load(corpus_copy, index, embedder=fake_embedder)
    build = index / (index / POINTER).read_text().strip()
    with zipfile.ZipFile(build / "sentences.npz") as z:
        assert "codes.article_id.npy" in z.namelist()  # article ids repeat: stored once, a code per sentence
    (build / "sentences.npz").write_bytes((build / "sentences.npz").read_bytes()[:100])
    with pytest.raises(StoreError) as e:
        IndexStore(index).load()
    assert "sentences.npz" in str(e.value) and "\n" not in str(e.value)
    again = RAG.load(corpus_copy, index, embedder=fake_embedder)  # the product rebuilds, with a warning
    assert again.summary.rebuilt and again.ask("Who visited Serbia?").text == first.ask("Who visited Serbia?").text


def test_a_format_2_index_of_json_lines_is_read(corpus_copy: Path, tmp_path: Path, fake_embedder) -> None:
    """Indexes built before the columns kept records as JSON Lines: read as they are, not rebuilt."""
    index = tmp_path / "index"
    first = RAG.load(corpus_copy, index, embedder=fake_embedder)
    build = index / (index / POINTER).read_text().strip()
    manifest = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    for name, kind in (("chunks", ChunkRecord), ("sentences", SentenceRecord)):
        table = RecordTable.load(build / f"{name}.npz", kind)
        with (build / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in table)
        (build / f"{name}.npz").unlink()
        del manifest["files"][f"{name}.npz"]
        manifest["files"][f"{name}.jsonl"] = _sha256(build / f"{name}.jsonl")
    manifest["format_version"] = 2
    (build / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")

    stored = IndexStore(index).load()
    assert isinstance(stored.chunks, list) and list(stored.chunks) == list(first.backend.stored.chunks)
    old = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert not old.summary.rebuilt
    question = "What did the president say about the visit?"
    assert [h.chunk_id for h in old.retrieve(question, k=5)] == [h.chunk_id for h in first.retrieve(question, k=5)]


def test_an_unknown_format_says_what_to_do(corpus_copy: Path, tmp_path: Path, fake_embedder) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=fake_embedder)
    build = index / (index / POINTER).read_text().strip()
    manifest = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    manifest["format_version"] = 99
    (build / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(StoreError) as e:
        IndexStore(index).load()
    assert "format 99" in str(e.value) and "rag index --rebuild" in str(e.value) and "\n" not in str(e.value)
    shutil.rmtree(index)

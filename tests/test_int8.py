"""The int8 model (embed_backend "onnx-int8") and how batches are embedded.

int8 vectors are close to the float ones but not equal, so an index records
which it holds and never mixes them; batches are sorted by length for less
padding and must come back in input order.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import rag.embedding
import rag.indexer
from rag import RAG
from rag.embedding import INT8_AGREEMENT, HashEmbedder, OnnxEmbedder, _OnnxRunner, make_embedder, plan_batches
from rag.errors import ModelError, SettingsError
from rag.settings import Settings

PROBES = [
    "Why did Vucic halt arms deliveries to Israel?",
    "Serbia",
    "Türkiye and Serbia held a high-level dialogue on trade, energy and the security of the Western Balkans. " * 3,
    "Ankara and Belgrade signed agreements on defence industry cooperation and infrastructure. " * 40,
    "Netanyahu received a delegation from Republika Srpska.",
]


def test_int8_has_a_model_name_and_file_of_its_own(tmp_path: Path) -> None:
    float_model = make_embedder(backend="onnx", cache_dir=tmp_path)
    int8 = make_embedder(backend="onnx-int8", cache_dir=tmp_path)
    assert int8.name == f"{float_model.name}+int8"
    assert int8.onnx_path != float_model.onnx_path and int8.onnx_path.parent == float_model.onnx_path.parent
    assert not list(tmp_path.rglob("*.onnx")), "nothing is exported or quantised before use"
    assert Settings(embed_backend="onnx-int8").index.embed_backend == "onnx-int8"
    assert Settings.from_env({"RAG_EMBED_BACKEND": "onnx-int8"}).index.embed_backend == "onnx-int8"


def test_an_int8_model_that_cannot_be_made_says_how_to_go_back(tmp_path: Path, monkeypatch) -> None:
    def refuse(source, target, runner_for):
        raise rag.embedding.OnnxUnavailable("the int8 model disagrees with the float one (cosine 0.9500 < 0.99)")

    monkeypatch.setattr(rag.embedding, "quantize_int8", refuse)
    int8 = OnnxEmbedder(cache_dir=tmp_path, int8=True)
    int8.float_path.parent.mkdir(parents=True)
    int8.float_path.write_bytes(b"stands for the float export, which is not read here")
    with pytest.raises(ModelError, match=r"disagrees with the float one \(cosine 0.9500 < 0.99\); the int8 model cannot be "
                       r"used: set embed_backend to 'onnx' \(RAG_EMBED_BACKEND=onnx\)"):
        int8.embed(["a question"])
    assert not int8.onnx_path.exists()


class Named(HashEmbedder):
    """The fake model under a real embedder's name: what the manifest and the
    vector reuse key on, without loading the model."""

    def __init__(self, name: str) -> None:
        super().__init__(dimension=64)
        self.name = name
        self.calls = 0

    def embed(self, texts, *, progress=False):
        self.calls += len(texts)
        return super().embed(texts, progress=progress)


def test_the_manifest_records_int8_and_a_switch_rebuilds_without_reusing_vectors(corpus_copy: Path, tmp_path: Path, caplog) -> None:
    float_name = make_embedder(backend="onnx", cache_dir=tmp_path).name
    int8_name = make_embedder(backend="onnx-int8", cache_dir=tmp_path).name
    index = tmp_path / "index"
    built = RAG.load(corpus_copy, index, embedder=Named(float_name))
    assert built.backend.stored.manifest.model == float_name

    int8 = Named(int8_name)
    with caplog.at_level(logging.WARNING, logger="rag"):
        switched = RAG.load(corpus_copy, index, embedder=int8)
    manifest = switched.backend.stored.manifest
    assert manifest.model == int8_name and manifest.model.endswith("+int8")
    s = switched.summary
    # The same message as any change of model, naming both.
    assert s.rebuilt and s.reason == (
        f"index was built with model {float_name} (64 dims), settings use {int8_name} (64 dims)"
    )
    assert s.reused == 0 and s.embedded == s.chunks and int8.calls == s.chunks + s.sentences_embedded
    assert f"{s.reason}: the old model's vectors cannot be reused" in caplog.text

    # And back: the float vectors come from the embedding cache, never the int8 ones.
    back = Named(float_name)
    again = RAG.load(corpus_copy, index, embedder=back)
    assert again.summary.rebuilt and again.backend.stored.manifest.model == float_name
    assert back.calls == 0, "the float vectors were kept in the cache under the float name"


def test_chunks_and_sentences_are_embedded_in_one_call(corpus_copy: Path, tmp_path: Path) -> None:
    sizes: list[int] = []

    class Recording(HashEmbedder):
        def embed(self, texts, *, progress=False):
            sizes.append(len(texts))
            return super().embed(texts, progress=progress)

    s = RAG.load(corpus_copy, tmp_path / "index", embedder=Recording(dimension=64)).summary
    assert s.sentences_embedded > 0 and sizes == [s.chunks + s.sentences_embedded]


class _Encoding:
    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.attention_mask = [1] * len(ids)
        self.type_ids = [0] * len(ids)


class _WordTokenizer:
    def encode_batch(self, texts):
        return [_Encoding([101, *(len(w) + 1000 for w in t.split()), 102]) for t in texts]


class _Inputs:
    def __init__(self, name: str) -> None:
        self.name = name


class _SumSession:
    """A graph stand-in: each row's vector says which text it was (its masked
    ids' sum and count), so a row out of place shows."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.calls = 0
        self.running = 0  # runs under way at once: batch workers share one session
        self.most_at_once = 0
        self._lock = threading.Lock()

    def get_inputs(self):
        return [_Inputs("input_ids"), _Inputs("attention_mask"), _Inputs("token_type_ids")]

    def run(self, _, feed):
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.02)  # long enough for the other worker to start one too, even on a busy machine
        with self._lock:
            self.running -= 1
        ids, mask = feed["input_ids"], feed["attention_mask"]
        out = np.zeros((len(ids), 3), dtype=np.float32)
        out[:, 0] = (ids * mask).sum(axis=1)
        out[:, 1] = mask.sum(axis=1)
        out[:, 2] = ids.shape[1]  # the padded width of the batch
        return [out]


def test_sorted_batches_come_back_in_input_order(monkeypatch) -> None:
    sessions: dict[int, _SumSession] = {}
    monkeypatch.setattr(rag.embedding, "_open_session", lambda path, threads: sessions.setdefault(threads, _SumSession(threads)))
    rng = np.random.default_rng(7)
    texts = [" ".join("w" * int(rng.integers(1, 9)) for _ in range(int(rng.integers(1, 40)))) for _ in range(23)]
    runner = _OnnxRunner(Path("unused.onnx"), _WordTokenizer(), batch_size=3, dimension=3)

    together = runner.run(texts, threads=2)
    assert list(sessions) == [1], "a batch job runs whole batches at once on a one-thread session"
    batch_calls = sessions[1].calls
    alone = np.concatenate([runner.run([t], threads=1) for t in texts])  # one text a call, in turn
    assert np.array_equal(together[:, :2], alone[:, :2]), "every row is its own text's, in input order"
    # Sorted by length, batches pad less than batches taken in input order.
    lengths = alone[:, 1]
    in_order = sum(float((b.max() - b).sum()) for b in np.split(lengths, range(3, len(lengths), 3)))
    assert (together[:, 2] >= lengths).all() and float((together[:, 2] - lengths).sum()) < in_order / 2
    # Each planned batch ran once, two at a time.
    assert batch_calls == len(plan_batches([int(n) for n in lengths], 3))
    assert sessions[1].most_at_once == 2


def test_a_question_splits_its_batch_across_cores(monkeypatch) -> None:
    sessions: dict[int, _SumSession] = {}
    monkeypatch.setattr(rag.embedding, "_open_session", lambda path, threads: sessions.setdefault(threads, _SumSession(threads)))
    _OnnxRunner(Path("unused.onnx"), _WordTokenizer(), batch_size=3, dimension=3).run(["one question"], threads=2)
    assert list(sessions) == [2] and sessions[2].calls == 1, "one batch: the session of every core, no workers"


class _FailingSession(_SumSession):
    """Fails from its third batch on; counts every batch it was handed."""

    attempts = 0

    def run(self, _, feed):
        with self._lock:
            self.attempts += 1
            failing = self.attempts > 2
        if failing:
            time.sleep(0.002)
            raise RuntimeError("out of memory")
        return super().run(_, feed)


def test_a_failing_batch_stops_the_job_without_running_the_rest(monkeypatch) -> None:
    session = _FailingSession(2)
    monkeypatch.setattr(rag.embedding, "_open_session", lambda path, threads: session)
    texts = [" ".join(["w"] * n) for n in range(1, 61)]  # 20 batches of 3
    with pytest.raises(RuntimeError, match="out of memory"):
        _OnnxRunner(Path("unused.onnx"), _WordTokenizer(), batch_size=3, dimension=3).run(texts, threads=2)
    batches = len(plan_batches([len(t.split()) for t in texts], 3))
    assert session.attempts < batches / 2, "the queued batches are cancelled, not all run"


def test_planned_batches_pad_less_than_a_fixed_count() -> None:
    # Chunks of about 120 word pieces, then sentences of about 30: a fixed 4
    # a batch pads one sentence to a chunk's length.
    lengths = [120, 118, 121, 119, 119, 30, 31, 29, 30, 28, 32, 30]
    batches = plan_batches(lengths, 4, overhead=16)
    assert sorted(i for rows in batches for i in rows) == list(range(len(lengths))), "every row once"
    assert all(len(rows) <= 4 for rows in batches)
    assert all(lengths[a] <= lengths[b] for rows in batches for a, b in zip(rows, rows[1:])), "shortest first"
    padded = sum(len(rows) * max(lengths[i] for i in rows) for rows in batches)
    ordered = sorted(lengths, reverse=True)
    fixed = sum(len(ordered[i : i + 4]) * ordered[i] for i in range(0, len(ordered), 4))
    assert padded < fixed and max(lengths[i] for rows in batches for i in rows if lengths[rows[0]] < 40) < 40, \
        "no batch mixes sentences with chunks"
    assert plan_batches([], 4) == [] and plan_batches([7], 4) == [[0]]


@pytest.mark.model
def test_real_model_batches_equal_one_text_at_a_time(real_embedder) -> None:
    texts = PROBES * 8  # 24 texts in batches run two at a time
    together = real_embedder.embed(texts)
    alone = np.concatenate([real_embedder.embed([t]) for t in PROBES])
    assert np.allclose(together, np.tile(alone, (8, 1)), atol=1e-5)


@pytest.mark.model
def test_int8_vectors_stay_close_to_the_float_ones(real_embedder, tmp_path: Path) -> None:
    real_embedder.embed(["export"])  # the float file of this run, copied so that this test's files are its own
    int8 = OnnxEmbedder(cache_dir=tmp_path, int8=True)
    int8.float_path.parent.mkdir(parents=True)
    shutil.copy(real_embedder.onnx_path, int8.float_path)
    assert int8.backend == "onnx-int8" and int8.onnx_path.is_file()
    assert sorted(p.name for p in int8.onnx_path.parent.iterdir()) == sorted([int8.float_path.name, int8.onnx_path.name]), \
        "no scratch files are left behind"
    assert int8.onnx_path.stat().st_size < real_embedder.onnx_path.stat().st_size / 1.3
    cosine = (int8.embed(PROBES) * real_embedder.embed(PROBES)).sum(axis=1)
    assert cosine.min() >= INT8_AGREEMENT, cosine
    assert cosine.max() < 0.99999, "the int8 file is really another model, not a copy of the float one"


def test_sentence_embedder_is_the_embedder_unless_set_and_made_once(tmp_path: Path) -> None:
    embedder = make_embedder(backend="onnx", cache_dir=tmp_path)
    assert rag.embedding.sentence_embedder_for(Settings(cache_dir=tmp_path).index, embedder) is embedder
    same = Settings(cache_dir=tmp_path, sentence_embed_backend="onnx").index
    assert rag.embedding.sentence_embedder_for(same, embedder) is embedder
    mixed = Settings(cache_dir=tmp_path, sentence_embed_backend="onnx-int8").index
    sentences = rag.embedding.sentence_embedder_for(mixed, embedder)
    assert sentences.name == f"{embedder.name}+int8" and rag.embedding.sentence_embedder_for(mixed, embedder) is sentences
    assert not list(tmp_path.rglob("*.onnx")), "nothing is loaded before use"
    assert Settings.from_env({"RAG_SENTENCE_EMBED_BACKEND": "onnx-int8"}).index.sentence_embed_backend == "onnx-int8"
    with pytest.raises(SettingsError, match="sentence_embed_backend must be one of onnx, onnx-int8, torch"):
        Settings(sentence_embed_backend="int4")
    with pytest.raises(SettingsError, match="for the local backend only"):
        Settings(sentence_embed_backend="onnx-int8", backend="postgres")


def test_sentences_on_a_model_of_their_own_are_recorded_and_a_switch_re_embeds_only_them(
    corpus_copy: Path, tmp_path: Path, monkeypatch
) -> None:
    float_name = make_embedder(backend="onnx", cache_dir=tmp_path).name
    chunks, sentences = Named(float_name), Named(f"{float_name}+int8")
    # What sentence_embedder_for gives for sentence_embed_backend="onnx-int8", without the model.
    monkeypatch.setattr(rag.indexer, "sentence_embedder_for",
                        lambda settings, embedder: sentences if settings.sentence_embed_backend else embedder)
    index = tmp_path / "index"
    plain = RAG.load(corpus_copy, index, embedder=chunks)
    assert plain.backend.stored.manifest.sentence_model == "", "one model: recorded as before"
    n_sentences = plain.summary.sentences_embedded

    chunks.calls = 0
    mixed = RAG.load(corpus_copy, index, embedder=chunks, settings=Settings(sentence_embed_backend="onnx-int8"))
    s = mixed.summary
    assert s.reason == f"sentences were embedded with model {float_name}, settings use {float_name}+int8"
    assert s.embedded == 0 and chunks.calls == 0, "chunk vectors are reused"
    assert s.sentences_embedded == n_sentences == sentences.calls, "every sentence on the sentences' model"
    assert mixed.backend.stored.manifest.sentence_model == f"{float_name}+int8"
    again = RAG.load(corpus_copy, index, embedder=chunks, settings=Settings(sentence_embed_backend="onnx-int8"))
    assert not again.summary.rebuilt, "recorded, so the same settings find it up to date"

    back = RAG.load(corpus_copy, index, embedder=chunks)
    assert back.summary.reason == f"sentences were embedded with model {float_name}+int8, settings use {float_name}"
    assert back.summary.embedded == 0 and back.backend.stored.manifest.sentence_model == ""


def test_sentences_on_another_backend_refuse_an_embedder_of_another_model(corpus_copy: Path, tmp_path: Path) -> None:
    # sentence_embed_backend makes its embedder from settings.model; a custom
    # embedder of another model would mix two models' vectors in one index.
    with pytest.raises(SettingsError, match="embeds sentences with all-MiniLM-L6-v2@.*\\+int8, but chunks and questions use hash-64"):
        RAG.load(corpus_copy, tmp_path / "index",
                 embedder=HashEmbedder(), settings=Settings(cache_dir=tmp_path, sentence_embed_backend="onnx-int8"))

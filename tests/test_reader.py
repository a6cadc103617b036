"""The reading model (rag/reader.py): its weight file is checked before use,
inference is deterministic and shape-checked, and with the shipped weights
over the real model's embeddings an answering sentence outscores others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag import reader as R
from rag.weightfile import manifest_path, sha256
from rag.evidence import Evidence
from rag.types import Article

VOCAB, WIDTH, DIM, HIDDEN = 40, 8, 4, 5


def _arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "format": R.FORMAT,
        "projection": rng.normal(size=(WIDTH, DIM)).round(4).tolist(),
        "gate": rng.normal(size=(R.HEADS, 3, WIDTH)).round(4).tolist(),
        "gate_idf": [0.5, 1.0],
        "idf": rng.uniform(0.5, 3.0, size=VOCAB).round(4).tolist(),
        "w1": rng.normal(size=(HIDDEN, R.HEADS * 2 * R.PER_PIECE + R.n_extra())).round(4).tolist(),
        "b1": rng.normal(size=HIDDEN).round(4).tolist(),
        "w2": rng.normal(size=HIDDEN).round(4).tolist(),
        "b2": 0.1,
        "combiner": {"features": list(R.COMBINER_FEATURES), "mean": [0.0] * 4, "scale": [1.0] * 4,
                     "weights": [1.0, 0.5, 2.0, 1.0], "bias": -1.0},
        "threshold": 0.4,
    }


def _write(folder: Path, data: dict, name: str = "reader-v1.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    manifest_path(path).write_text(json.dumps({"weights_sha256": sha256(path)}))
    return path


def _reader(tmp_path: Path) -> R.Reader:
    weights, manifest = R.load_weights(_write(tmp_path, _arrays()))
    matrix = np.random.default_rng(1).normal(size=(VOCAB, WIDTH)).astype(np.float32)
    return R.Reader(weights, manifest, matrix, None)


def test_weights_round_trip(tmp_path):
    weights, _ = R.load_weights(_write(tmp_path, _arrays()))
    assert weights.projection.shape == (WIDTH, DIM) and weights.gate.shape == (R.HEADS, 3, WIDTH)
    assert weights.threshold == 0.4 and weights.combiner["features"] == R.COMBINER_FEATURES


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text('{"format": "rag-reader/1", "projection": [[1'), "not valid JSON"),
        (lambda p: p.write_text(p.read_text().replace('"b2": 0.1', '"b2": 0.2')), "sha256"),
        (lambda p: manifest_path(p).unlink(), "does not exist"),
        (lambda p: p.unlink(), "does not exist"),
    ],
)
def test_a_damaged_weight_file_is_refused_in_one_line(tmp_path, damage, message):
    path = _write(tmp_path, _arrays())
    damage(path)
    with pytest.raises(R.ReaderFileError, match=message) as e:
        R.load_weights(path)
    assert "python -m rag.train_reader" in str(e.value) and "\n" not in str(e.value)


def test_a_foreign_weight_file_is_refused(tmp_path):
    # The answer stage's own model, with a manifest that matches it: a JSON
    # weight file, just not a reader's.
    answer = json.loads((R.MODELS_DIR / "answer-v1.json").read_text())
    with pytest.raises(R.ReaderFileError, match="is not a rag-reader/1 weight file"):
        R.load_weights(_write(tmp_path, answer))
    with pytest.raises(R.ReaderFileError, match="is not a rag-reader/1 weight file"):
        R.load_weights(_write(tmp_path, [1, 2, 3]))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(w1=np.zeros((HIDDEN, 3)).tolist()), "wrong shape"),
        (lambda d: d.update(b2=float("nan")), "non-finite"),
        (lambda d: d.update(threshold=1.5), "threshold"),
        (lambda d: d["combiner"].update(features=["reader_max"]), "combiner's features"),
        (lambda d: d.pop("idf"), "missing or malformed"),
    ],
)
def test_weights_that_do_not_fit_this_code_are_refused(tmp_path, change, message):
    data = _arrays()
    change(data)
    with pytest.raises(R.ReaderFileError, match=message) as e:
        R.load_weights(_write(tmp_path, data))
    assert "\n" not in str(e.value)


def test_weights_for_another_embedding_matrix_are_refused(tmp_path):
    weights, manifest = R.load_weights(_write(tmp_path, _arrays()))
    with pytest.raises(R.ReaderFileError, match="another embedding matrix"):
        R.Reader(weights, manifest, np.zeros((VOCAB + 1, WIDTH), dtype=np.float32), None)


def _inputs():
    q = np.array([3, 7, 11, 7], dtype=np.int64)
    sentences = [np.array([3, 7, 20, 21]), np.array([30, 31]), np.array([], dtype=np.int64)]
    windows = [np.array([11]), np.array([], dtype=np.int64), np.array([5, 6])]
    extras = np.random.default_rng(2).uniform(size=(3, R.n_extra())).astype(np.float32)
    return q, sentences, windows, extras


def test_inference_is_deterministic_and_one_logit_per_sentence(tmp_path):
    reader = _reader(tmp_path)
    q, sentences, windows, extras = _inputs()
    a = reader.logits_ids(q, sentences, windows, extras)
    b = _reader(tmp_path).logits_ids(q, sentences, windows, extras)
    assert a.shape == (3,) and np.isfinite(a).all() and np.array_equal(a, b)
    # Each sentence is scored on its own: the order of the others changes nothing.
    c = reader.logits_ids(q, sentences[::-1], windows[::-1], extras[::-1])
    assert np.allclose(c[::-1], a, atol=1e-6)
    assert reader.logits_ids(q, [], [], np.zeros((0, R.n_extra()), dtype=np.float32)).shape == (0,)


def test_a_question_without_word_pieces_scores_every_sentence_low_instead_of_failing(tmp_path):
    """'rag ask "???"' crashed with numpy's "zero-size array to reduction
    operation maximum": punctuation alone gives the reader no pieces."""
    reader = _reader(tmp_path)
    _, sentences, windows, extras = _inputs()
    logits = reader.logits_ids(np.array([], dtype=np.int64), sentences, windows, extras)
    assert logits.shape == (3,) and (logits == -10.0).all()


def test_inference_checks_its_shapes(tmp_path):
    reader = _reader(tmp_path)
    q, sentences, windows, extras = _inputs()
    with pytest.raises(ValueError, match="extras array of shape"):
        reader.logits_ids(q, sentences, windows, extras[:2])
    with pytest.raises(ValueError, match="as many windows"):
        reader.logits_ids(q, sentences, windows[:2], extras)
    with pytest.raises(ValueError, match="without a tokenizer"):
        reader.logits("Why?", ["Because."], [""], [""])


def test_the_kernel_features_count_matches_and_ignore_an_empty_text():
    sim = np.array([[1.0, 0.3], [0.1, -0.1]], dtype=np.float32)
    exact = np.array([[1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    f = R._kernel_features(sim, exact, np.ones(2, dtype=np.float32))
    assert f.shape == (2, R.PER_PIECE)
    assert f[0, len(R.MUS)] == pytest.approx(np.log(2.0)) and f[1, len(R.MUS)] == 0.0  # exact counts
    assert f[0, -1] == pytest.approx(1.0) and f[1, -1] == pytest.approx(0.1)  # best similarity
    assert f[0, 0] > f[1, 0]  # the 0.9 kernel: near 1.0 for the first piece only
    assert not R._kernel_features(np.zeros((2, 0), np.float32), np.zeros((2, 0), np.float32), np.ones(2, np.float32)).any()


def test_extra_features_see_negation_numbers_and_the_answer_type():
    x = R.extra_features("When did the mill not open in 1900?", "The mill opened in 1901.", "It closed later.")
    assert x.shape == (R.n_extra(),)
    assert x[:4].tolist() == [1.0, 0.0, 0.0, 1.0]  # negation in the question only
    assert x[4] == 1.0 and x[5] == 0.0  # the question's number is not in the text
    y = R.extra_features("When did the mill open in 1901?", "The mill opened in 1901.", "")
    assert y[3] == 0.0 and y[5] == 1.0


def test_neighbours_are_the_adjacent_scored_sentences_of_a_passage():
    text = "One fact. Two facts.\n\nThree facts."
    article = Article("a", "A", None, None, None, "a.txt", text)
    ev = [Evidence("a", 10, 20, 0.9, 0.9, 0.5, 1), Evidence("a", 0, 9, 0.5, 0.5, 0.2, 0), Evidence("a", 22, 34, 0.1, 0.1, 0.0, 2)]
    out = R.neighbours(ev, {"a": article})
    # Across a paragraph break too, as in training (the sentence before and after in the article).
    assert out[0] == ("Two facts.", "One fact.", "Three facts.")
    assert out[1] == ("One fact.", "", "Two facts.")
    # A sentence the passages did not hold is no neighbour: the gap is more than white space.
    assert R.neighbours(ev[1:], {"a": article})[1] == ("Three facts.", "", "")


def test_the_shipped_weights_load_and_match_their_manifest():
    weights, manifest = R.load_weights(R.DEFAULT_WEIGHTS)
    assert manifest["format"] == R.FORMAT and manifest["combiner_features"] == list(R.COMBINER_FEATURES)
    assert manifest["data"]["reader_articles"][0] >= 40 and len(manifest["data"]["squad_file_sha256"]) == 64
    assert 0.0 < weights.threshold < 1.0 and "hook_calibration" in manifest["metrics"]
    assert R.DEFAULT_WEIGHTS.stat().st_size < 2_000_000


# --- with the real model's embeddings and tokenizer ---------------------------------------------


@pytest.mark.model
def test_an_answering_sentence_outscores_the_others_on_the_real_corpus(real_rag):
    reader = R.load_reader()
    question = "Why did Vucic halt arms deliveries to Israel?"
    articles = {a.id: a for a in real_rag.articles}
    answering = next(s for a in articles.values() for s in a.text.split(". ") if "attacked Iran" in s)
    others = [s for a in articles.values() for s in a.text.split(". ")[:5] if "Iran" not in s and len(s) > 40][:8]
    logits = reader.logits(question, [answering, *others], [""] * (1 + len(others)), [""] * (1 + len(others)))
    assert logits[0] > logits[1:].max()
    assert np.array_equal(logits, reader.logits(question, [answering, *others], [""] * len(logits), [""] * len(logits)))

    hook = R.shipped_hook()

    def verdict(q: str) -> R.ReaderVerdict:
        vector = real_rag.embedder.embed([q])[0]
        hits = real_rag.retriever.search(q, 5, None, real_rag.settings.retrieval.mode, vector)
        evidence = real_rag.scorer.score(q, vector, hits, real_rag.settings.answer.sentence_dense_weight).items
        return hook.p_answerable(q, evidence, hits, articles)

    yes, no = verdict(question), verdict("Who won the 2022 FIFA World Cup?")
    assert yes.p_answerable > no.p_answerable and no.abstain and not yes.abstain
    assert len(yes.logits) == min(R.CANDIDATES, len(yes.logits)) and 0.0 <= no.p_answerable <= 1.0


def test_the_batched_kernels_equal_the_reference_per_text(tmp_path):
    reader = _reader(tmp_path)
    q, sentences, windows, _ = _inputs()
    texts = sentences + windows
    batched = reader._per_piece(q, texts)
    for i, t in enumerate(texts):
        sim = reader.table[q] @ reader.table[t].T
        exact = (q[:, None] == t[None, :]).astype(np.float32)
        assert np.allclose(batched[i], R._kernel_features(sim, exact, np.ones(len(q), np.float32)), atol=1e-5)


def test_the_gate_is_off_unless_asked_for():
    from rag.settings import Settings

    assert Settings().answer.reader_gate is False
    assert Settings.from_env({"RAG_ANSWER_READER": "1"}).answer.reader_gate is True
    assert Settings.from_env({"RAG_ANSWER_READER": "0"}).answer.reader_gate is False
    assert Settings(reader_gate=True).answer.reader_gate is True


@pytest.mark.model
def test_the_gate_abstains_on_an_unanswerable_question_and_keeps_an_abstention(real_rag):
    r = real_rag.with_settings(reader_gate=True)
    a = r.ask("Why did Vucic halt arms deliveries to Israel?")
    assert not a.abstained and "attacked Iran" in a.text and 0.0 <= a.answerable <= 1.0
    b = r.ask("Who won the 2022 FIFA World Cup?")
    assert b.abstained and b.citations == []


def test_a_bad_gate_setting_is_a_one_line_error():
    from rag.errors import SettingsError
    from rag.settings import Settings

    with pytest.raises(SettingsError, match="RAG_ANSWER_READER must be 1") as e:
        Settings.from_env({"RAG_ANSWER_READER": "yes"})
    assert "\n" not in str(e.value)


# --- the word pieces' fast path ----------------------------------------------------------------


def test_the_fast_word_pieces_equal_the_tokenizers_on_the_corpus_and_hostile_text():
    from rag.embedding import resolve_model
    from rag.sentences import split_sentences
    from tests.conftest import CORPUS

    pieces = R.Pieces(resolve_model(R.EMBEDDING_MODEL))
    texts = []
    for path in sorted(CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        texts += [text[s.start : s.end] for s in split_sentences(text)] + text.splitlines()
    hostile = [
        "", "   ", "!!!", "x" * 150, "e.g. U.S.-based $1,200.50 (45%) -- O'Brien's 1990s",
        "[MASK] and [CLS] are the tokenizer's own", "ABC[SEP]def", "a\x01b", "a\x0bb", "a\x7fb", "tab\there\r\nnew",
        "\u00adsoft\u200bhyphens", "\u0085next", "中文 text", "10 °C, 5 €", "ﬁne", "Ωmega",
        "Vučić visited Türkiye — “quoted” …", "İstanbul’s naïve café\u00a0bar", "Ⅸ K \u037e", "unaffable antidisestablishmentarianism",
    ]
    texts += hostile
    got = pieces.ids(texts)
    by_tokenizer = [pieces._encode(t) for t in texts]
    assert all(np.array_equal(a, b) for a, b in zip(got, by_tokenizer))
    assert all(a.dtype == np.int64 for a in got)
    # Most of the corpus takes the fast path; control characters, added tokens, other scripts and symbols do not.
    assert sum(pieces._fast(t) is not None for t in texts) > 0.7 * len(texts)
    assert all(pieces._fast(t) is None for t in hostile[5:10] + hostile[11:17])
    assert all(pieces._fast(t) is not None for t in [hostile[4], hostile[10], hostile[17], hostile[18]])
    assert "x" * 150 not in pieces._words and "visited" in pieces._words, "a word WordPiece reads as [UNK] is not kept"


def test_the_fast_negation_and_number_patterns_match_as_the_plain_ones():
    import re

    from rag.sentences import split_sentences
    from tests.conftest import CORPUS

    negation = re.compile(
        r"\b(not|no|never|none|neither|nor|nobody|nothing|without|cannot|unable|fail(?:s|ed)?|lack(?:s|ed)?)\b|n['’]t\b", re.I
    )
    number = re.compile(r"(?<![\w.])\d[\d,.]*\d|(?<![\w.])\d")
    texts = []
    for path in sorted(CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        sentences = [text[s.start : s.end] for s in split_sentences(text)]
        texts += sentences + [a + " " + b for a, b in zip(sentences, sentences[1:])]
    texts += [
        "", "1", "a1", ".5", "x.5 and 5.", "1,200.50, 3.4.5 and 12,,3", "v2 2v 2", "١٢٣ and ٣,٤", "NOT Nothing nonetheless",
        "don't won’t cannot", "Unfailing failed lacks lacked", "no", "nO-one", "knot snore", "2.", "(1990)", "_7 7_",
    ]
    assert len(texts) > 500
    assert [bool(R._NEGATION.search(t)) for t in texts] == [bool(negation.search(t)) for t in texts]
    assert [R._NUMBER.findall(t) for t in texts] == [number.findall(t) for t in texts]

"""The learned answer stage (rag/answerability.py) on tiny hand-made data:
features, inference, the weight file and its manifest, the training maths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag import answerability as A
from rag import squad
from rag.evidence import Evidence, SentenceIndex, SentenceScorer
from rag.errors import RagError
from rag.store import SentenceRecord
from rag.train_answer import fit_logistic, roc_auc
from rag.types import Article, Hit
from rag.weightfile import manifest_path, sha256

TEXT = (
    "The bridge over the river was opened by the mayor.\n\n"
    "Why was the bridge over the river opened? "
    "It was opened because the ferry had sunk in 1931. "
    "Traffic doubled within a year."
)
QUESTION = "Why was the bridge over the river opened?"


def _article() -> Article:
    return Article(id="a", title="Bridge", author=None, publisher=None, date=None, source="a.txt", text=TEXT)


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for part in ("The bridge over the river was opened by the mayor.", "Why was the bridge over the river opened?",
                 "It was opened because the ferry had sunk in 1931.", "Traffic doubled within a year."):
        start = text.index(part, pos)
        spans.append((start, start + len(part)))
        pos = start + len(part)
    return spans


@pytest.fixture
def tiny():
    article = _article()
    articles = {"a": article}
    spans = _sentences(TEXT)
    records = [SentenceRecord("a", s, e, f"h{i}") for i, (s, e) in enumerate(spans)]
    vectors = np.eye(4, 8, dtype=np.float32)
    index = SentenceIndex(records, vectors, articles)
    hit = Hit("a", "Bridge", TEXT, 1.0, 0, len(TEXT), "a#0", dense_score=0.7, bm25_score=5.0)
    # Scores as SentenceIndex.score would give: the restatement matches best.
    evidence = [
        Evidence("a", *spans[1], score=0.9, dense=0.9, lexical=1.0, row=1),
        Evidence("a", *spans[0], score=0.6, dense=0.6, lexical=0.6, row=0),
        Evidence("a", *spans[2], score=0.4, dense=0.5, lexical=0.2, row=2),
        Evidence("a", *spans[3], score=0.1, dense=0.1, lexical=0.0, row=3),
    ]
    sentences = A.IndexedSentences(index, SentenceScorer(index, articles))
    context = A.AnswerContext(sentences, knows=lambda w: not w.lower().startswith("atlanti"))  # stemmed or not
    return articles, [hit], evidence, context


def _model(ranker_w: dict[str, float] | None = None, threshold: float = 0.5, answer_w: dict[str, float] | None = None,
           max_sentences: int = 1, keep_ratio: float = 1.0) -> A.AnswerModel:
    def logistic(names, w):
        return A.Logistic(tuple(names), np.zeros(len(names)), np.ones(len(names)),
                          np.asarray([w.get(n, 0.0) for n in names]), 0.0)
    return A.AnswerModel(logistic(A.RANKER_FEATURES, ranker_w or {}), logistic(A.ANSWERABILITY_FEATURES, answer_w or {}),
                         threshold, max_sentences, keep_ratio, {})


def _row(x: np.ndarray, i: int) -> dict[str, float]:
    return dict(zip(A.RANKER_FEATURES, x[i]))


# --- features --------------------------------------------------------------------------------------


def test_ranker_features_describe_each_sentence_and_its_neighbours(tiny):
    articles, hits, evidence, context = tiny
    candidates, x = A.ranker_features(QUESTION, evidence, hits, articles, context)
    assert candidates == evidence and x.shape == (4, len(A.RANKER_FEATURES))
    restated, first, reason, last = (_row(x, i) for i in range(4))
    assert restated["restates"] == 1.0 and reason["restates"] == 0.0
    assert reason["after_best"] == 1.0 and first["before_best"] == 1.0 and last["after_best"] == 0.0
    assert reason["prev_lexical"] == 1.0 and reason["next_lexical"] == 0.0  # the neighbours' scores
    assert restated["paragraph_first"] == 1.0 and reason["paragraph_first"] == 0.0
    assert reason["novel_numbers_log"] > 0 and restated["novel_numbers_log"] == 0
    assert reason["wh_why"] == 1.0 and reason["wh_who"] == 0.0
    assert reason["rank_log"] == pytest.approx(np.log1p(2))


def test_answer_type_features_follow_the_question(tiny):
    articles, hits, evidence, context = tiny
    _, x = A.ranker_features("In what year did the ferry sink?", evidence, hits, articles, context)
    assert _row(x, 2)["type_match"] == 1.0 and _row(x, 2)["when_x_time"] == 1.0
    assert _row(x, 3)["type_missing"] == 1.0  # "within a year" names no year


def test_answerability_features_count_unknown_and_missing_names(tiny):
    articles, hits, evidence, context = tiny
    logits = np.array([0.0, -1.0, 2.0, -3.0])
    every = A.ANSWERABILITY_CANDIDATES
    known = dict(zip(every, A.answerability_features(
        "Why was the Mayor bridge opened?", evidence, logits, hits, articles, context, names=every)))
    unknown = dict(zip(every, A.answerability_features(
        "Why was the Atlantis bridge opened?", evidence, logits, hits, articles, context, names=every)))
    assert known["unknown_names"] == 0.0 and unknown["unknown_names"] == 1.0
    assert unknown["unknown_share"] > 0.0 == known["unknown_share"]
    assert unknown["name_cover_hits"] == 0.0 and known["name_cover_hits"] == 1.0
    assert known["top_logit"] == 2.0 and known["second_logit"] == 0.0
    assert unknown["rarest_missing_window"] > 0.0  # "atlantis" is in no sentence
    used = A.answerability_features("Why was the Mayor bridge opened?", evidence, logits, hits, articles, context)
    assert list(used) == [known[f] for f in A.ANSWERABILITY_FEATURES]


def test_no_evidence_abstains(tiny):
    articles, hits, _, context = tiny
    d = A.decide(QUESTION, [], hits, articles, _model(), context)
    assert d.abstain and d.chosen == [] and d.p_answerable == 0.0


# --- the decision ----------------------------------------------------------------------------------


def test_decide_follows_the_weights_and_is_deterministic(tiny):
    articles, hits, evidence, context = tiny
    model = _model({"novel_numbers_log": 5.0}, threshold=0.5, answer_w={"top_p": 3.0})
    first = A.decide(QUESTION, evidence, hits, articles, model, context)
    assert [e.row for e in first.chosen] == [2]  # the sentence with the year, not the best-scored one
    assert not first.abstain and first.p_answerable > 0.5
    assert all(A.decide(QUESTION, evidence, hits, articles, model, context) == first for _ in range(3))
    strict = _model({"novel_numbers_log": 5.0}, threshold=0.99, answer_w={"top_p": 3.0})
    assert A.decide(QUESTION, evidence, hits, articles, strict, context).abstain


def test_a_restatement_is_never_the_answer_alone(tiny):
    articles, hits, evidence, context = tiny
    model = _model({"lexical": 5.0}, threshold=0.0)  # favours the sentence that repeats the question
    d = A.decide(QUESTION, evidence, hits, articles, model, context)
    assert d.chosen[0].row == 1 and len(d.chosen) == 2


def test_keep_ratio_adds_close_sentences(tiny):
    articles, hits, evidence, context = tiny
    model = _model({"dense": 1.0}, threshold=0.0, max_sentences=3, keep_ratio=0.0)
    assert len(A.decide(QUESTION, evidence, hits, articles, model, context).chosen) == 3


# --- the weight file -------------------------------------------------------------------------------


def _write(tmp_path: Path, model: A.AnswerModel, **changes) -> Path:
    path = tmp_path / "m.json"
    data = {"format": A.FORMAT, "ranker": model.ranker.to_json(), "answerability": model.answerability.to_json(),
            "threshold": model.threshold, "max_sentences": model.max_sentences, "keep_ratio": model.keep_ratio}
    data.update(changes)
    path.write_text(json.dumps(data))
    manifest_path(path).write_text(json.dumps({"weights_sha256": sha256(path)}))
    return path


def test_weights_round_trip(tmp_path, tiny):
    articles, hits, evidence, context = tiny
    model = _model({"dense": 2.0, "lexical": -1.0}, threshold=0.3, answer_w={"top_p": 1.5})
    loaded = A.load_model(_write(tmp_path, model))
    assert loaded.threshold == 0.3 and np.array_equal(loaded.ranker.weights, model.ranker.weights)
    assert A.decide(QUESTION, evidence, hits, articles, loaded, context) == A.decide(QUESTION, evidence, hits, articles, model, context)


def test_shipped_weights_load_and_match_their_manifest():
    model = A.load_model(A.DEFAULT_MODEL)
    manifest = json.loads(manifest_path(A.DEFAULT_MODEL).read_text())
    assert manifest["ranker_features"] == list(A.RANKER_FEATURES)
    assert manifest["answerability_features"] == list(A.ANSWERABILITY_FEATURES)
    assert len(manifest["data"]["squad_file_sha256"]) == 64 and manifest["data"]["corpus_articles"][0] >= 40
    assert 0.0 < model.threshold < 1.0 and "auc_near_miss" in manifest["metrics_held_out"]
    for path in A.MODELS_DIR.iterdir():
        assert path.stat().st_size < 2_000_000, path
        assert path.suffix == ".json", f"{path.name}: only JSON is shipped, never a pickle"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text("{not json"), "not valid JSON"),
        (lambda p: p.write_text(p.read_text().replace('"dense"', '"densest"')), "sha256"),
        (lambda p: manifest_path(p).unlink(), "does not exist"),
    ],
)
def test_a_damaged_weight_file_is_a_clear_error(tmp_path, damage, message):
    path = _write(tmp_path, _model())
    damage(path)
    with pytest.raises(A.ModelFileError, match=message) as e:
        A.load_model(path)
    assert "python -m rag.train_answer" in str(e.value)


def test_weights_for_other_features_are_refused(tmp_path):
    model = _model()
    renamed = A.Logistic(("x",) + model.ranker.features[1:], model.ranker.mean, model.ranker.scale, model.ranker.weights, 0.0)
    path = _write(tmp_path, model, ranker=renamed.to_json())
    with pytest.raises(A.ModelFileError, match="features do not match"):
        A.load_model(path)
    path = _write(tmp_path, model, threshold=2.0)
    with pytest.raises(A.ModelFileError, match="threshold"):
        A.load_model(path)


# --- training maths and data rules -----------------------------------------------------------------


def test_fit_logistic_is_deterministic_and_separates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - x[:, 2] > 0).astype(float)
    a, b = fit_logistic(x, y), fit_logistic(x, y)
    assert all(np.array_equal(u, v) for u, v in zip(a[:3], b[:3])) and a[3] == b[3]
    mean, scale, w, bias = a
    assert w[0] > 0 > w[2] and abs(w[1]) < abs(w[0]) / 5


def test_roc_auc_on_three_numbers():
    assert roc_auc([0.9, 0.5], [0.1]) == 1.0
    assert roc_auc([0.1], [0.9, 0.5]) == 0.0
    assert roc_auc([0.5], [0.5]) == 0.5
    assert roc_auc([], [0.1]) is None


def test_training_may_not_read_evaluation_articles():
    with pytest.raises(RagError, match="evaluation articles"):
        squad.articles(30, 50, for_training=True)


def test_near_misses_swap_a_detail_the_article_does_not_join():
    a = squad.SquadArticle(
        "Town",
        ("The Paris bridge opened in 1931 after the ferry sank. The Lyon station was built in 1950.",),
        (),
    )
    source = squad.SquadQuestion("x", "When did the Paris bridge open?", ("1931",), "answerable", "Town")
    made = squad.near_misses(a, [source], 5)
    assert [q.question for q in made] == ["When did the Lyon bridge open?"]
    assert made[0].answers == () and made[0].kind == "near_miss"
    # A swap the article does answer (the Lyon station was built in 1950) is not kept.
    answered = squad.SquadQuestion("y", "When was the Paris station built?", ("?",), "answerable", "Town")
    assert squad.near_misses(a, [answered], 5) == []


def test_contains_answer_uses_squad_normalisation():
    assert squad.contains_answer("It opened in 1931, after the ferry sank.", ["1931"])
    assert squad.contains_answer("The Eiffel Tower.", ["eiffel tower"])
    assert not squad.contains_answer("It opened in 19310.", ["1931"])


def test_an_unknown_answer_stage_is_refused_with_the_valid_ones():
    from rag.errors import SettingsError
    from rag.settings import Settings

    with pytest.raises(SettingsError, match="answer_stage must be one of rules, learned"):
        Settings(answer_stage="neural")
    assert Settings.from_env({"RAG_ANSWER_STAGE": "learned"}).answer.stage == "learned"


# --- end to end: the real model, FAISS and BM25 on the five articles ------------------------------


@pytest.mark.model
def test_the_learned_stage_answers_and_abstains_on_the_real_corpus(real_rag):
    from rag.answer import invariant_problems

    r = real_rag.with_settings(answer_stage="learned")
    assert r.settings.answer.stage == "learned" and real_rag.settings.answer.stage == "rules"  # rules stay the default
    a = r.ask("Why did Vucic halt arms deliveries to Israel?")
    assert not a.abstained and "attacked Iran" in a.text
    assert 0.5 < a.answerable <= 1.0
    # The rules' answer carries the calibration's probability (rag/calibration.py), not this model's.
    rules = real_rag.ask("Why did Vucic halt arms deliveries to Israel?")
    assert rules.answerable is not None and rules.answerable != a.answerable
    assert invariant_problems(a, {x.id: x for x in r.articles}) == []
    assert 1 <= len(a.citations) <= A.shipped_model().max_sentences
    b = r.ask("Who won the 2022 FIFA World Cup?")
    assert b.abstained and b.citations == [] and "FIFA" in b.text and b.answerable < A.shipped_model().threshold

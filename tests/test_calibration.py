"""The default answer's probability of being answerable (rag/calibration.py):
its weight file is checked before use, its signals say which rule fired, and
with the real model every answer of the rules, abstentions too, carries a
deterministic p in [0, 1] that ranks an answerable question above others."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from rag import calibration as C
from rag.answer import abstain, missing_type_text, unknown_names_text
from rag.evidence import Evidence
from rag.types import Answer, Article, Citation, Hit
from rag.weightfile import manifest_path, sha256

FEATURES = ["reader_max", "best_score", "unknown_names"]


def _data(**changes) -> dict:
    data = {"format": C.FORMAT, "features": FEATURES, "mean": [0.0, 0.4, 0.0], "scale": [1.0, 0.1, 1.0],
            "weights": [0.5, 1.0, -2.0], "bias": 0.2, "threshold": 0.3, "doubt": 0.5}
    return data | changes


def _write(folder: Path, data: dict) -> Path:
    path = folder / "calibration-v1.json"
    path.write_text(json.dumps(data))
    manifest_path(path).write_text(json.dumps({"weights_sha256": sha256(path)}))
    return path


def test_weights_round_trip_and_give_a_probability(tmp_path):
    cal, _ = C.load_calibration(_write(tmp_path, _data()))
    assert cal.features == tuple(FEATURES) and cal.threshold == 0.3
    p = cal.probability({"reader_max": 1.0, "best_score": 0.5, "unknown_names": 0.0, "ignored": 9.0})
    assert p == pytest.approx(1 / (1 + np.exp(-(0.5 + 1.0 + 0.2))))
    assert cal.probability({"reader_max": 1.0, "best_score": 0.5, "unknown_names": 1.0}) < p
    # Far outside the training range the logit is clipped, not overflowed.
    assert 0.0 < cal.probability({"reader_max": -1e6, "best_score": 0.0, "unknown_names": 1.0}) < 1e-12


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text("{not json"), "not valid JSON"),
        (lambda p: p.write_text(p.read_text().replace("0.2", "0.25")), "does not match the sha256"),
        (lambda p: p.unlink(), "does not exist"),
        (lambda p: manifest_path(p).unlink(), "does not exist"),
    ],
)
def test_a_damaged_weight_file_is_refused_in_one_line(tmp_path, damage, message):
    path = _write(tmp_path, _data())
    damage(path)
    with pytest.raises(C.CalibrationFileError, match=message) as e:
        C.load_calibration(path)
    assert "\n" not in str(e.value) and "python -m rag.train_calibration" in str(e.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "rag-reader/1"}, "is not a rag-calibration/1 weight file"),
        ({"features": ["reader_max", "best_score", "tea_leaves"]}, r"features \['tea_leaves'\] are not computed"),
        ({"weights": [1.0, 2.0]}, "need 3 numbers each"),
        ({"scale": [1.0, 0.0, 1.0]}, "non-positive scale"),
        ({"threshold": 1.5}, "threshold outside"),
        ({"doubt": 0.2}, "the doubt level 0.2 must lie between the threshold 0.3 and 1"),
        ({"doubt": 1.5}, "the doubt level 1.5 must lie between"),
        ({"doubt": float("nan")}, "non-finite"),
        ({"doubt": None}, "malformed"),
        ({"doubt": True}, "must be numbers"),  # float(True) would put the note on every answer
        ({"threshold": "0.3"}, "must be numbers"),
        ({"bias": "high"}, "malformed"),
    ],
)
def test_weights_that_do_not_fit_this_code_are_refused(tmp_path, change, message):
    with pytest.raises(C.CalibrationFileError, match=message) as e:
        C.load_calibration(_write(tmp_path, _data(**change)))
    assert "\n" not in str(e.value)


def _case():
    text = "Paris is the capital of France. It has two million people. Lyon is smaller."
    article = Article("a", "France", None, None, None, "a.txt", text)
    evidence = [Evidence("a", 0, 31, 0.7, 0.8, 0.6, 0), Evidence("a", 32, 59, 0.5, 0.5, 0.2, 1),
                Evidence("a", 60, 76, 0.2, 0.3, 0.0, 2)]
    hits = [Hit("a", "France", text, 0.9, 0, 76, "a-0", dense_score=0.75, bm25_score=3.0)]
    return {"a": article}, evidence, hits


def test_signals_name_every_feature_and_which_rule_fired():
    articles, evidence, hits = _case()
    quote = articles["a"].text[0:31]
    answered = Answer(f"{quote} [1]", [Citation(1, "a", "France", quote, 0, 31)], False, hits)
    logits = np.asarray([2.0, -1.0, -3.0])
    s = C.signals("What is the capital of France?", answered, evidence, hits, articles, logits, 0.36, True)
    assert tuple(s) == C.FEATURES
    assert s["reader_max"] == 2.0 and s["reader_cited"] == 2.0 and s["reader_gap"] == 3.0
    assert s["best_score"] == 0.7 and s["max_hit_dense"] == 0.75 and s["dense_gap"] == pytest.approx(0.8 - 0.4)
    assert s["rules_abstained"] == s["unknown_names"] == s["type_missing"] == s["below_threshold"] == 0.0
    assert s["name_cover"] == 1.0 and s["type_asked"] == 0.0

    unknown = abstain(hits, unknown_names_text(["Narnia"]))
    s = C.signals("What is the capital of Narnia?", unknown, evidence, hits, articles, logits, 0.36, C.knows_every_name(unknown))
    assert s["unknown_names"] == 1.0 and s["rules_abstained"] == 1.0 and s["name_cover"] == 0.0
    typed = abstain(hits, missing_type_text("quantity"))
    s = C.signals("How many people live in Lyon?", typed, evidence, hits, articles, logits, 0.36, C.knows_every_name(typed))
    assert s["type_missing"] == 1.0 and s["unknown_names"] == 0.0 and s["type_asked"] == 1.0
    # No sentence at all: the reader read nothing, the rules' score counts as below the threshold.
    s = C.signals("What?", abstain([]), [], [], articles, np.zeros(0), 0.36, True)
    assert s["reader_max"] == -10.0 and s["below_threshold"] == 1.0


def test_the_shipped_weights_load_and_match_their_manifest():
    cal, manifest = C.load_calibration(C.DEFAULT_WEIGHTS)
    assert manifest["format"] == C.FORMAT and manifest["features"] == list(cal.features)
    assert len(manifest["data"]["squad_file_sha256"]) == 64 and "0-39 never read" in manifest["data"]["split_rule"]
    assert manifest["reader_weights_sha256"] == sha256(C.MODELS_DIR / "reader-v1.json")
    assert 0.0 < cal.threshold < cal.doubt < 1.0 and "auc_near_miss" in manifest["metrics"]["held_out"]
    # The doubt level is what its rule says, and the held-out figures were measured at it.
    held_out = manifest["metrics"]["held_out"]
    assert manifest["doubt_share"] == 0.05 and held_out["doubted_answerable"] < held_out["doubted_out_of_corpus"]
    assert C.DEFAULT_WEIGHTS.stat().st_size < 2_000_000


def test_the_probability_is_on_and_the_gate_is_a_setting():
    from rag.settings import Settings

    assert Settings().answer.probability is True
    assert Settings(answer_probability=False).answer.probability is False
    assert Settings(answer_gate=True).answer.gate is True
    assert Settings().answer.doubt is True and Settings(answer_doubt=False).answer.doubt is False


# --- with the real model ---------------------------------------------------------------------------


@pytest.mark.model
def test_every_answer_of_the_rules_carries_a_deterministic_probability(real_rag):
    yes = real_rag.ask("Why did Vucic halt arms deliveries to Israel?")
    assert not yes.abstained and 0.0 <= yes.answerable <= 1.0
    assert real_rag.ask("Why did Vucic halt arms deliveries to Israel?").answerable == yes.answerable
    # An abstention of the unknown-name rule carries one too, and a low one.
    fifa = real_rag.ask("Who won the 2022 FIFA World Cup?")
    assert fifa.abstained and 0.0 <= fifa.answerable < yes.answerable
    off = real_rag.with_settings(answer_probability=False).ask("Why did Vucic halt arms deliveries to Israel?")
    assert off.answerable is None and off.text == yes.text


class _Reader:
    """Stands in for the reading model: a fixed logit per sentence, in order."""

    def __init__(self, logits):
        self.values = logits

    def logits(self, question, sentences, befores, afters):
        assert len(sentences) == len(befores) == len(afters)
        return np.asarray(self.values[: len(sentences)], dtype=np.float64)


def test_the_gate_abstains_below_the_threshold_and_an_abstention_keeps_its_probability(tmp_path):
    from rag.settings import AnswerSettings

    articles, evidence, hits = _case()
    quote = articles["a"].text[0:31]
    answered = Answer(f"{quote} [1]", [Citation(1, "a", "France", quote, 0, 31)], False, hits)
    question = "What is the capital of France?"
    strict, _ = C.load_calibration(_write(tmp_path, _data(threshold=0.999, doubt=0.999)))
    reader = _Reader([2.0, -1.0, -3.0])
    gated = C.with_probability(question, answered, evidence, hits, articles, AnswerSettings(gate=True), ["a note"],
                               calibration=strict, reader=reader)
    assert gated.abstained and gated.citations == [] and gated.notes == ["a note"] and 0.0 < gated.answerable < 0.999
    kept = C.with_probability(question, answered, evidence, hits, articles, AnswerSettings(gate=False),
                              calibration=strict, reader=reader)
    assert not kept.abstained and kept.text == answered.text and kept.answerable == gated.answerable
    # The probability follows the reader: a lower logit, a lower p (the weights of _data).
    lower = C.with_probability(question, answered, evidence, hits, articles, AnswerSettings(gate=False),
                               calibration=strict, reader=_Reader([0.0, -1.0, -3.0]))
    assert lower.answerable < kept.answerable


@pytest.mark.parametrize("module", ["rag.train_calibration", "rag.train_answer", "rag.train_reader"])
@pytest.mark.parametrize(("value", "message"), [("1.5", "must lie in \\[0, 1\\), not 1.5"),
                                                ("-0.1", "must lie in \\[0, 1\\), not -0.1"),
                                                ("often", "must be a number in \\[0, 1\\), not 'often'")])
def test_a_trainer_refuses_a_false_abstention_rate_outside_0_1_in_one_line(module, value, message, capsys):
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main(["--false-abstention", value])  # refused before any training or re-exec
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(f"argument --false-abstention: {message}$", err), err


def test_an_answer_given_under_the_doubt_level_says_so_and_one_above_it_does_not(tmp_path):
    from rag.settings import AnswerSettings

    articles, evidence, hits = _case()
    quote = articles["a"].text[0:31]
    answered = Answer(f"{quote} [1]", [Citation(1, "a", "France", quote, 0, 31)], False, hits, notes=["a note"])
    question = "What is the capital of France?"
    reader = _Reader([2.0, -1.0, -3.0])
    p = C.with_probability(question, answered, evidence, hits, articles, AnswerSettings(doubt=False),
                           calibration=C.load_calibration(_write(tmp_path, _data()))[0], reader=reader).answerable

    def given(threshold: float, level: float, **settings) -> Answer:
        cal = C.load_calibration(_write(tmp_path, _data(threshold=threshold, doubt=level)))[0]
        return C.with_probability(question, answered, evidence, hits, articles, AnswerSettings(**settings),
                                  calibration=cal, reader=reader)

    doubted = given(0.0, min(1.0, p + 0.01))
    assert not doubted.abstained and doubted.text == answered.text and doubted.citations == answered.citations
    assert doubted.notes == ["a note", C.doubt_note(p)] and f"probability {p:.2f}" in doubted.notes[1]
    assert doubted.answerable == p
    assert given(0.0, max(0.0, p - 0.01)).notes == ["a note"]  # above the doubt level: no note
    assert given(0.0, min(1.0, p + 0.01), doubt=False).notes == ["a note"]  # the setting turns it off
    # Under the threshold the gate abstains: an abstention is not doubted.
    gated = given(min(1.0, p + 0.01), min(1.0, p + 0.02))
    assert gated.abstained and gated.notes == []
    abstained = C.with_probability(question, abstain(hits, notes=["a note"]), evidence, hits, articles, AnswerSettings(),
                                   calibration=C.load_calibration(_write(tmp_path, _data(threshold=0.0, doubt=1.0)))[0],
                                   reader=reader)
    assert abstained.abstained and abstained.notes == ["a note"]


@pytest.mark.model
def test_real_answers_carry_the_doubt_note_exactly_when_their_probability_is_under_the_doubt_level(real_rag):
    from rag.evaluate import is_doubted

    cal = C.shipped_calibration()
    questions = ["Why did Vucic halt arms deliveries to Israel?", "In what year did North Macedonia join NATO?",
                 "What is the population of Kosovo?", "When did Erdogan visit Serbia?", "Who won the 2022 FIFA World Cup?"]
    answers = [real_rag.ask(q) for q in questions]
    for q, a in zip(questions, answers):
        assert is_doubted(a) == (not a.abstained and a.answerable < cal.doubt), (q, a.answerable, a.notes)
    # A detail the articles do not give is answered with a neighbouring one, and says so; a plain answer does not.
    assert is_doubted(answers[1]) and not is_doubted(answers[0])
    assert any(n == C.doubt_note(answers[1].answerable) for n in answers[1].notes)
    # Off, the same answer without the note.
    plain = real_rag.with_settings(answer_doubt=False).ask(questions[1])
    assert plain.text == answers[1].text and not is_doubted(plain)


def test_the_doubt_note_is_known_by_its_whole_text():
    assert all(C.is_doubt_note(C.doubt_note(p)) for p in (0.0, 0.004, 0.31, 0.999, 1.0))
    assert not C.is_doubt_note("The passages may not answer this question (probability 0.31 that they do)")
    assert not C.is_doubt_note("The question contains instructions")


def test_the_trainer_refuses_a_doubt_share_outside_0_1_in_one_line(capsys):
    from rag.train_calibration import main

    with pytest.raises(SystemExit) as e:
        main(["--doubt-share", "1.5"])  # refused before any training or re-exec
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("argument --doubt-share: must lie in [0, 1), not 1.5")

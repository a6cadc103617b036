"""Evaluation: the metric functions, the question-file loader, the runner,
the report and `rag eval`."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.cli import main
from rag.errors import EvalError
from rag.evalset import Question, load_questions, parse_questions
from rag.evaluate import (
    DASHES,
    METRICS,
    UNANSWERABLE,
    CitationCheck,
    EvalResult,
    Floors,
    Row,
    TradeOffPoint,
    abstention_trade_off,
    answer_words,
    by_article,
    by_kind,
    contains_answer,
    covered_groups,
    evaluate,
    exact_match,
    first_answer_rank,
    first_rank,
    hit_at_k,
    load_floors,
    normalise_for_match,
    percentile,
    reciprocal_rank,
    roc_auc,
    share,
    squad_normalise,
    summarise,
    token_f1,
)
from rag.report import cell, kinds_table, overall_table, plot_trade_off, short_ids

from .conftest import ARTICLE_IDS, CORPUS, DAMAGED_ID, ROOT

A, B, C = "000_b8d8672fd89b6af8", "001_ffbeb848175f5bcf", DAMAGED_ID
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- metrics ------------------------------------------------------------------


def test_ranks_hits_and_reciprocal_rank() -> None:
    ranked = [B, A, A]
    assert first_rank(ranked, {A}) == 2
    assert first_rank(ranked, {C}) is None
    assert [hit_at_k(ranked, {A}, k) for k in (1, 2, 3)] == [False, True, True]
    assert hit_at_k(ranked, {A, B}, 1)  # any gold article counts
    assert reciprocal_rank(ranked, {A}) == 0.5
    assert reciprocal_rank(ranked, {C}) == 0.0
    assert reciprocal_rank([], {A}) == 0.0


def test_facts_match_case_insensitively_with_dashes_read_as_hyphens() -> None:
    text = "The Belgrade – Sarajevo highway, a HIGH‑LEVEL dialogue, and the Palestine Liberation Organization."
    assert covered_groups([["Belgrade-Sarajevo"], ["high-level"], ["PLO", "palestine liberation organization"], ["Kosovo"]], text) == [
        True, True, True, False,
    ]
    assert covered_groups([["Belgrade–Sarajevo"]], "Belgrade -Sarajevo") == [True]
    assert covered_groups([["Belgrade-Sarajevo"]], "Belgrade\u2212Sarajevo") == [True]  # minus sign
    assert covered_groups([["Board of Peace"]], "the Board of\nPeace") == [True]  # a line break is a space
    assert covered_groups([["Belgrade-Sarajevo"]], "Belgrade Sarajevo") == [False]  # a space is not a dash
    assert covered_groups([], "anything") == []
    assert normalise_for_match("A — B") == "a-b"


def test_the_dash_list_is_every_unicode_dash() -> None:
    pd = {chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Pd"}
    assert set(DASHES) == pd | {"\u2212"}


def test_share_and_percentile() -> None:
    assert share([True, False, True, True]) == 0.75
    assert share([]) is None
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def _row(qid: str, gold: tuple[str, ...], rank: int | None, covered: tuple[bool, ...] = (), *, abstained: bool = False,
         citations: tuple[CitationCheck, ...] = (), latency: float = 10.0) -> Row:
    return Row(
        id=qid, question="?", history=(), answerable=bool(gold), gold=gold, query="?", retrieved=(),
        rank=rank, answer="", abstained=abstained, citations=citations,
        facts=tuple(("f",) for _ in covered), covered=covered, latency_ms=latency,
    )


def _cite(article: str, valid: bool = True, gold: bool = True) -> CitationCheck:
    return CitationCheck(1, article, 0, 1, "x", valid, gold)


def test_summarise_counts_each_metric_over_the_right_questions() -> None:
    rows = [
        _row("a", (A,), 1, (True, False), citations=(_cite(A), _cite(B, gold=False)), latency=10),
        _row("b", (A, B), 3, (True,), citations=(_cite(B, valid=False),), latency=20),
        _row("c", (B,), None, (False,), abstained=True, latency=30),
        _row("u1", (), None, abstained=True, latency=40),
        _row("u2", (), None, citations=(_cite(A, gold=False),), latency=50),
    ]
    m = summarise(rows)
    assert list(m) == list(METRICS)
    assert (m["hit@1"], m["hit@3"], m["hit@5"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m["fact_recall"] == pytest.approx(2 / 4)  # fact groups, not questions
    assert m["citation_validity"] == pytest.approx(3 / 4)  # every citation, unanswerable ones too
    assert m["citation_precision"] == pytest.approx(2 / 3)  # citations of answerable questions
    assert m["abstention_accuracy"] == 0.5
    assert m["false_abstention_rate"] == pytest.approx(1 / 3)
    assert (m["latency_p50_ms"], m["latency_p95_ms"]) == (30, pytest.approx(48))


def test_a_metric_with_nothing_to_count_is_none() -> None:
    m = summarise([_row("a", (A,), 1, (True,))])
    assert m["abstention_accuracy"] is None and m["citation_validity"] is None and m["citation_precision"] is None
    assert m["hit@1"] == 1.0


def test_per_article_counts_a_question_for_each_gold_article() -> None:
    rows = [_row("a", (A,), 1, (True,)), _row("b", (A, B), 2, (False,)), _row("u", (), None, abstained=True)]
    per = by_article(rows)
    assert list(per) == [A, B, UNANSWERABLE]
    assert per[A]["questions"] == 2 and per[A]["hit@1"] == 0.5
    assert per[B]["questions"] == 1 and per[B]["fact_recall"] == 0.0
    assert per[UNANSWERABLE]["questions"] == 1 and per[UNANSWERABLE]["abstention_accuracy"] == 1.0


# --- SQuAD measures -------------------------------------------------------------------


def test_squad_normalisation_drops_case_punctuation_and_articles() -> None:
    assert squad_normalise("The  Eiffel\nTower!") == "eiffel tower"
    assert squad_normalise("an apple, a pear") == "apple pear"
    assert squad_normalise("Theatre") == "theatre"  # "the" only as a word


def test_exact_match_is_the_best_over_the_golds_and_zero_without_a_short_answer() -> None:
    golds = ["Eiffel Tower", "the tower"]
    assert exact_match("the Eiffel Tower.", golds) == 1.0
    assert exact_match("Tower", golds) == 1.0  # "the tower" normalised
    assert exact_match("Eiffel", golds) == 0.0
    assert exact_match(None, golds) == 0.0


def test_token_f1_with_three_numbers() -> None:
    # "in paris france" against "paris": precision 1/3, recall 1 -> F1 0.5
    assert token_f1("in Paris, France", ["Paris"]) == pytest.approx(0.5)
    # the best gold counts: "paris france" has precision 2/3, recall 1 -> 0.8
    assert token_f1("in Paris, France", ["Paris", "Paris France"]) == pytest.approx(0.8)
    assert token_f1("Lyon", ["Paris"]) == 0.0
    assert token_f1(None, ["Paris"]) == 0.0
    assert token_f1("", ["Paris"]) == 0.0


def test_answers_are_found_with_white_space_folded_and_case_kept() -> None:
    assert contains_answer("opened in\n  June 1919 at", ["June 1919"])
    assert not contains_answer("opened in june 1919", ["June 1919"])  # golds are spans as written
    assert not contains_answer("anything", ["  "])
    passages = ["no answer here", "the first in 1888.", "also 1888"]
    assert first_answer_rank(passages, ["1888"]) == 2
    assert first_answer_rank(passages, ["1999"]) is None


def test_answer_words_leave_out_citation_markers() -> None:
    assert answer_words("It opened in 1888 [1]. It closed [2][3].") == 6
    assert answer_words("Paris – France [1] .") == 2
    assert answer_words("") == 0


def test_roc_auc_with_three_numbers_and_ties() -> None:
    assert roc_auc([0.9, 0.4, 0.6], [True, False, True]) == 1.0
    assert roc_auc([0.4, 0.5, 0.6], [True, False, True]) == 0.5
    assert roc_auc([0.4, 0.9, 0.6], [True, False, True]) == 0.0
    assert roc_auc([0.5, 0.5, 0.2], [True, False, False]) == pytest.approx(0.75)  # the tie counts one half
    assert roc_auc([0.5, 0.6], [True, True]) is None


def test_abstention_trade_off_walks_every_threshold() -> None:
    points = abstention_trade_off([0.2, 0.5, 0.8], [False, True, True])
    assert points[0] == TradeOffPoint(float("-inf"), 0.0, 0.0)  # abstain on nothing
    assert [(p.threshold, p.abstention, p.false_abstention) for p in points[1:]] == [
        (0.2, 0.0, 0.0), (0.5, 1.0, 0.0), (0.8, 1.0, 0.5), (float("inf"), 1.0, 1.0)
    ]
    assert abstention_trade_off([0.2], [True]) == []


def _squad_row(qid: str, answers: tuple[str, ...], *, answer: str = "", short: str | None = None, rank: int | None = None,
               abstained: bool = False, kind: str = "answerable", p: float | None = None, history=()) -> Row:
    answerable = kind == "answerable"
    return Row(
        id=qid, question="?", history=history, answerable=answerable, gold=(A,) if answerable else (), query="?",
        retrieved=(), rank=1 if answerable else None, answer=answer, abstained=abstained, citations=(), facts=(),
        covered=(), latency_ms=1.0, kind=kind, answers=answers, answer_rank=rank, short=short,
        words=answer_words(answer), answerable_p=p,
    )


def test_summarise_scores_the_squad_measures() -> None:
    rows = [
        _squad_row("a", ("1888",), answer="It was incorporated in\n1888 [1].", short="1888", rank=1, p=0.9),
        _squad_row("b", ("Halifax",), answer="The largest is Halifax city [1].", short="Halifax city", rank=3, p=0.6),
        _squad_row("c", ("Kelowna",), answer="Nothing.", rank=None, abstained=True, p=0.2),
        _squad_row("o", (), kind="out_of_corpus", abstained=True, p=0.1),
        _squad_row("n1", (), kind="near_miss", abstained=False, p=0.7),
        _squad_row("n2", (), kind="near_miss", abstained=True, p=0.3),
    ]
    m = summarise(rows)
    assert (m["passage_answer@1"], m["passage_answer@3"], m["passage_answer@5"]) == (
        pytest.approx(1 / 3), pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert m["answer_contains_gold"] == pytest.approx(2 / 3)  # the abstention holds no answer
    assert m["answer_words"] == pytest.approx((5 + 5) / 2)  # answers given, markers left out
    assert m["short_em"] == pytest.approx(1 / 3)  # "Halifax city" is no exact match; the abstention scores 0
    assert m["short_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["abstention_out_of_corpus"] == 1.0 and m["abstention_near_miss"] == 0.5
    assert m["abstention_off_topic"] is None and m["abstention_accuracy"] == pytest.approx(2 / 3)
    assert m["false_abstention_rate"] == pytest.approx(1 / 3)
    # answerable 0.9, 0.6, 0.2 against 0.1, 0.7, 0.3: 6 of 9 pairs ordered right
    assert m["answerability_auc"] == pytest.approx(6 / 9)
    # against the near misses 0.7, 0.3 only: 3 of 6
    assert m["answerability_auc_near_miss"] == pytest.approx(3 / 6)
    assert summarise([_squad_row("a", ("x",), p=None)])["answerability_auc"] is None


def test_per_kind_counts_abstentions_and_follow_ups_apart() -> None:
    rows = [
        _squad_row("a", ("x",), answer="x"),
        _squad_row("f", ("y",), answer="z", history=("When?",)),
        _squad_row("o", (), kind="out_of_corpus", abstained=True),
        _squad_row("n", (), kind="near_miss"),
    ]
    per = by_kind(rows)
    assert list(per) == ["answerable", "follow-up", "near_miss", "out_of_corpus"]
    assert per["out_of_corpus"]["abstained"] == 1.0 and per["near_miss"]["abstained"] == 0.0
    assert per["follow-up"]["answer_contains_gold"] == 0.0 and per["answerable"]["answer_contains_gold"] == 1.0
    text = kinds_table(EvalResult(summarise(rows), by_article(rows), rows))
    assert "| out_of_corpus | 1 | 1.000 | abstention (right) |  | n/a |" in text  # nothing given, nothing doubted
    assert per["near_miss"]["doubted"] == 0.0


def test_per_kind_counts_the_answers_given_with_the_doubt_note() -> None:
    from rag.calibration import doubt_note
    from rag.evaluate import is_doubted
    from rag.types import Answer

    assert is_doubted(Answer("x [1]", [], False, [], notes=["other", doubt_note(0.2)]))
    assert not is_doubted(Answer("x [1]", [], False, [], notes=["The question contains instructions"]))
    assert not is_doubted(Answer("no", [], True, [], notes=[doubt_note(0.2)]))  # an abstention is not an answer given
    rows = [_squad_row("n1", (), kind="near_miss"), dataclasses_replace(_squad_row("n2", (), kind="near_miss"), doubted=True),
            _squad_row("n3", (), kind="near_miss", abstained=True), _squad_row("a", ("x",), answer="x")]
    per = by_kind(rows)
    assert per["near_miss"]["doubted"] == 0.5 and per["answerable"]["doubted"] == 0.0  # of the answers given
    assert "| near_miss | 3 | 0.333 | abstention (right) |  | 0.500 |" in kinds_table(EvalResult(summarise(rows), by_article(rows), rows))


def test_overall_table_leaves_out_what_the_set_cannot_measure() -> None:
    rows = [_row("a", (A,), 1, (True,))]
    text = overall_table(EvalResult(summarise(rows), by_article(rows), rows))
    assert "| fact_recall | 1.000 |" in text and "short_f1" not in text and "answerability_auc" not in text


def test_trade_off_plot_only_when_answers_carry_a_probability(tmp_path) -> None:
    rows = [_squad_row("a", ("x",), p=0.9), _squad_row("b", ("x",), p=0.4),
            _squad_row("o", (), kind="out_of_corpus", abstained=True, p=0.1),
            _squad_row("n", (), kind="near_miss", p=0.5)]
    result = EvalResult(summarise(rows), by_article(rows), rows)
    path = plot_trade_off(result, tmp_path / "t.png")
    assert path is not None and path.read_bytes().startswith(PNG_SIGNATURE)
    doubted = [dataclasses_replace(r, doubted=True) if r.id == "n" else r for r in rows]
    with_note = plot_trade_off(EvalResult(summarise(doubted), by_article(doubted), doubted), tmp_path / "d.png")
    assert with_note.read_bytes() != path.read_bytes()  # the doubt note's crosses are drawn
    bare = [dataclasses_replace(r, answerable_p=None) for r in rows]
    assert plot_trade_off(EvalResult(summarise(bare), by_article(bare), bare), tmp_path / "u.png") is None
    assert not (tmp_path / "u.png").exists()


def dataclasses_replace(row: Row, **changes) -> Row:
    import dataclasses

    return dataclasses.replace(row, **changes)


def test_floors_file_sets_gate_each_question_set(tmp_path) -> None:
    real = load_floors(ROOT / "eval" / "floors.json", "squad")
    assert {"passage_answer@1", "answer_contains_gold", "abstention_out_of_corpus"} <= set(real.floors)
    path = tmp_path / "floors.json"
    path.write_text(json.dumps({"floors": {"hit@1": 0.9}, "sets": {"other": {"floors": {"short_f1": 0.3}}}}))
    assert load_floors(path).floors == {"hit@1": 0.9}
    assert load_floors(path, "other").floors == {"short_f1": 0.3}
    with pytest.raises(EvalError, match="no set 'squad' under \"sets\": use one of other"):
        load_floors(path, "squad")
    path.write_text(json.dumps({"sets": {"other": {"floors": {"hit@9": 0.3}}}}))
    with pytest.raises(EvalError, match="set 'other'.*bad: hit@9"):
        load_floors(path, "other")
    path.write_text(json.dumps({"sets": {"other": {"flors": {}}}}))
    with pytest.raises(EvalError, match="unknown key\\(s\\) flors"):
        load_floors(path, "other")


def test_floors_name_the_metric_the_value_and_the_bound() -> None:
    floors = Floors(floors={"hit@1": 0.9, "mrr": 0.5}, ceilings={"false_abstention_rate": 0.05})
    assert floors.failures({"hit@1": 0.95, "mrr": 0.5, "false_abstention_rate": 0.05}) == []
    failures = floors.failures({"hit@1": 0.85, "mrr": None, "false_abstention_rate": 0.1})
    assert failures == [
        "hit@1 = 0.850 is below its floor 0.9",
        "mrr = n/a is below its floor 0.5",
        "false_abstention_rate = 0.100 is above its ceiling 0.05",
    ]


def test_floors_file_is_checked(tmp_path) -> None:
    real = load_floors(ROOT / "eval" / "floors.json")
    assert real.floors and set(real.floors) | set(real.ceilings) <= set(METRICS)
    bad = tmp_path / "floors.json"
    bad.write_text(json.dumps({"floors": {"hit@7": 0.5}}))
    with pytest.raises(EvalError, match="hit@7"):
        load_floors(bad)
    bad.write_text(json.dumps({"floor": {}}))
    with pytest.raises(EvalError, match="unknown key"):
        load_floors(bad)
    with pytest.raises(EvalError, match="does not exist"):
        load_floors(tmp_path / "missing.json")


# --- the question file ------------------------------------------------------------


def test_loader_reads_the_format_with_defaults(tmp_path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps({"id": "q01", "question": "Who?", "articles": [A], "facts": [["Osmani"], ["Board of Peace"]]}) + "\n\n"
        + json.dumps({"id": "q02", "question": "When did he visit Serbia?", "history": ["What did Erdogan do in 2017?"],
                      "articles": [B], "facts": [["2017"]]}) + "\n"
        + json.dumps({"id": "u01", "question": "What is the population of Montenegro?", "answerable": False,
                      "articles": [], "facts": []}) + "\n",
        encoding="utf-8",
    )
    q1, q2, u1 = load_questions(path, ARTICLE_IDS)
    assert q1 == Question("q01", "Who?", (A,), (("Osmani",), ("Board of Peace",)), (), True, 1)
    assert q2.history == ("What did Erdogan do in 2017?",) and q2.line == 3
    assert not u1.answerable and u1.articles == () and u1.line == 4


def test_loader_reports_every_bad_line_by_number() -> None:
    lines = [
        json.dumps({"id": "ok", "question": "Fine?", "articles": [A], "facts": [["x"]]}),
        '{"id": "q2", "question": ',  # 2: invalid JSON
        json.dumps({"id": "q3", "articles": [A], "facts": []}),  # 3: no question
        json.dumps({"id": "q4", "question": "?", "articles": [A], "facts": ["Osmani"]}),  # 4: facts not lists of lists
        json.dumps({"id": "q5", "question": "?", "articles": ["999_nope"], "facts": []}),  # 5: unknown article
        json.dumps({"id": "ok", "question": "Again?", "articles": [A], "facts": []}),  # 6: duplicate id
        json.dumps({"id": "q7", "question": "?", "articles": [A], "facts": [], "answerabel": False}),  # 7: typo key
        json.dumps({"id": "q8", "question": "?", "answerable": False, "articles": [A], "facts": []}),  # 8: contradiction
        json.dumps({"id": "q9", "question": "?", "history": "earlier", "articles": [A]}),  # 9: history not a list
        json.dumps(["not", "an", "object"]),  # 10
        json.dumps({"id": "q11", "question": "?", "facts": [["x"]]}),  # 11: answerable without articles
    ]
    with pytest.raises(EvalError) as e:
        parse_questions("\n".join(lines), ARTICLE_IDS, source="set.jsonl")
    message = str(e.value)
    assert "\n" not in message  # the CLI prints it as one line
    assert message.startswith("set.jsonl has 10 bad line(s)")
    for number, words in [
        (2, "not valid JSON"), (3, "'question' is missing"), (4, "'facts' must be a list of non-empty lists"),
        (5, "unknown article id(s) '999_nope'"), (6, "id 'ok' is already used on line 1"), (7, "unknown key(s) 'answerabel'"),
        (8, "an unanswerable question"), (9, "'history' must be a list"), (10, "expected a JSON object"),
        (11, "an answerable question needs 'articles'"),
    ]:
        assert f"line {number}: {words}" in message, (number, message)
    assert "line 1:" not in message


def test_loader_reports_every_problem_of_a_line_at_once() -> None:
    lines = [
        json.dumps({"id": "a", "question": "Fine?", "articles": [A], "answers": ["x"]}),
        # four problems on one line: unknown key, bad facts, bad kind, unknown article id
        json.dumps({"id": "b", "question": "?", "articles": ["999_nope"], "facts": "x", "kind": "near_miss", "note": 1}),
        # a duplicate id whose line has another problem too
        json.dumps({"id": "a", "question": "", "articles": [A]}),
        json.dumps({"id": "c", "question": "?", "answerable": False, "kind": "near_miss", "about": ["998_gone"], "answers": ["x"]}),
    ]
    with pytest.raises(EvalError) as e:
        parse_questions("\n".join(lines), ARTICLE_IDS, source="set.jsonl")
    message = str(e.value)
    assert message.startswith("set.jsonl has 3 bad line(s)") and "\n" not in message
    line2 = message.split("line 2: ", 1)[1].split("; line 3:", 1)[0]
    for words in ("unknown key(s) 'note'", "'facts' must be a list", "'kind' of an answerable question must be one of answerable",
                  "unknown article id(s) '999_nope'"):
        assert words in line2, (words, line2)
    line3 = message.split("line 3: ", 1)[1].split("; line 4:", 1)[0]
    assert "'question' must be a non-empty string" in line3 and "id 'a' is already used on line 1" in line3
    line4 = message.split("line 4: ", 1)[1]
    assert "lists no 'articles', 'facts' or 'answers'" in line4 and "unknown article id(s) '998_gone'" in line4


def test_loader_reads_the_squad_keys(tmp_path) -> None:
    text = "\n".join([
        json.dumps({"id": "s1", "question": "When?", "articles": [A], "answers": ["1888", "in 1888"]}),
        json.dumps({"id": "n1", "question": "Why?", "answerable": False, "kind": "near_miss", "about": [A]}),
        json.dumps({"id": "u1", "question": "Who?", "answerable": False}),
    ])
    s1, n1, u1 = parse_questions(text, ARTICLE_IDS)
    assert s1.answers == ("1888", "in 1888") and s1.kind == "answerable" and s1.facts == ()
    assert n1.kind == "near_miss" and n1.about == (A,) and n1.articles == ()
    assert u1.kind == "unanswerable"


def test_loader_refuses_missing_empty_and_non_utf8_files(tmp_path) -> None:
    with pytest.raises(EvalError, match="does not exist"):
        load_questions(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(EvalError, match="holds no questions"):
        load_questions(tmp_path / "empty.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes('{"id": "a", "question": "Türkiye?"}'.encode("latin-1"))
    with pytest.raises(EvalError, match="not valid UTF-8"):
        load_questions(tmp_path / "latin1.jsonl")


def test_many_bad_lines_are_summarised() -> None:
    with pytest.raises(EvalError) as e:
        parse_questions("\n".join(["{"] * 25))
    assert "has 25 bad line(s)" in str(e.value) and "and 15 more" in str(e.value)


# --- the raw text index -------------------------------------------------------------


def test_a_raw_text_index_is_never_taken_for_a_repaired_one(tmp_path, fake_embedder) -> None:
    raw = RAG.load(CORPUS, tmp_path, settings=Settings(repair=False), embedder=fake_embedder)
    assert "匀" in raw.article(DAMAGED_ID).text  # as extracted: byte-swapped UTF-16 left in
    assert raw.article(DAMAGED_ID).repair.total == 0
    repaired = RAG.load(CORPUS, tmp_path, embedder=fake_embedder)
    assert repaired.summary.rebuilt and repaired.summary.reason == "text repair changed from off to on"
    assert "匀" not in repaired.article(DAMAGED_ID).text
    assert RAG.load(CORPUS, tmp_path, embedder=fake_embedder).summary.reason == "up to date"


# --- the runner --------------------------------------------------------------------


def test_runner_scores_real_answers_without_touching_the_callers_rag(real_rag) -> None:
    questions = parse_questions(
        "\n".join([
            json.dumps({"id": "a", "question": "Which Kosovo leader signed up to the US-led Board of Peace?",
                        "articles": [A], "facts": [["Osmani"], ["Board of Peace"], ["no such phrase"]]}),
            json.dumps({"id": "f", "question": "Which infrastructure project is given as an example of it?",
                        "history": ["What new phase have Turkiye-Serbia ties entered according to the AVIM commentary?"],
                        "articles": [C], "facts": [["Belgrade-Sarajevo"]]}),
            json.dumps({"id": "u", "question": "Who won the 2022 FIFA World Cup?", "answerable": False}),
        ]),
        ARTICLE_IDS,
    )
    settings = real_rag.settings
    result = evaluate(real_rag, questions, k=3, mode="bm25", answer_mode="extractive")
    assert real_rag.settings is settings  # the caller's RAG keeps its settings and cache
    a, f, u = result.rows
    assert a.rank == 1 and a.covered == (True, True, False) and a.missed == [("no such phrase",)]
    assert len(a.retrieved) == 5  # hit@5 needs five passages even when ask reads three
    assert f.query != f.question and "AVIM" in f.query  # the follow-up is searched with its topic
    assert f.covered == (True,)
    assert u.abstained and u.rank is None
    assert all(c.valid for r in result.rows for c in r.citations)
    assert result.metrics["abstention_accuracy"] == 1.0 and result.metrics["fact_recall"] == pytest.approx(3 / 4)
    assert list(result.per_article) == [A, C, UNANSWERABLE]
    assert result.mode == "bm25" and result.k == 3
    data = result.to_json()
    assert set(data) == {*METRICS, "rows", "per_article", "per_kind"}
    json.dumps(data)  # serialisable as it is


def test_runner_refuses_a_bad_mode_or_k(real_rag) -> None:
    q = [Question("a", "Who?", (A,))]
    with pytest.raises(EvalError, match="unknown retrieval mode"):
        evaluate(real_rag, q, mode="fuzzy")
    with pytest.raises(EvalError, match="k must be"):
        evaluate(real_rag, q, k=0)
    with pytest.raises(EvalError, match="unknown answer mode"):
        evaluate(real_rag, q, answer_mode="abstractive")
    if not real_rag.settings.llm.model:
        with pytest.raises(EvalError, match="RAG_LLM_BASE_URL"):
            evaluate(real_rag, q, answer_mode="llm")


# --- the report pieces ----------------------------------------------------------------


def test_table_cells_escape_pipes_and_line_breaks() -> None:
    assert cell("a | b\nc") == "a \\| b<br>c"
    assert cell(None) == ""


def test_short_ids_only_when_unique() -> None:
    assert short_ids([A, B]) == {A: "000", B: "001"}
    assert short_ids(["000_x", "000_y"]) == {"000_x": "000_x", "000_y": "000_y"}


# --- rag eval -----------------------------------------------------------------------


def _question_file(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    rows = [
        {"id": "q1", "question": "Why did Vucic halt arms deliveries to Israel? | pipe", "articles": [A], "facts": [["attacked Iran"]]},
        {"id": "q2", "question": "Which infrastructure project is given as an example of it?",
         "history": ["What new phase have Turkiye-Serbia ties entered according to the AVIM commentary?"],
         "articles": [C], "facts": [["Belgrade – Sarajevo"]]},
        {"id": "q3", "question": "What dialogue formats with Balkan states does the AVIM commentary mention?",
         "articles": [C], "facts": [["high-level dialogue"], ["trade and investment"]]},
        {"id": "u1", "question": "What is the population of Montenegro?", "answerable": False, "articles": [], "facts": []},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def shared_index(real_rag, real_embedder, monkeypatch) -> Path:
    """The session's built index and loaded model, so `rag eval` neither rebuilds nor reloads."""
    monkeypatch.setattr("rag.embedding.make_embedder", lambda *a, **k: real_embedder)
    return real_rag.settings.index.index_dir


def test_rag_eval_writes_json_report_and_plots(tmp_path, shared_index, capsys) -> None:
    out_json, report = tmp_path / "out" / "metrics.json", tmp_path / "report"
    code = main(["eval", str(_question_file(tmp_path)), "--json", str(out_json), "--report", str(report),
                 "--corpus", str(CORPUS), "--index", str(shared_index), "-q"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| hit@1 |" in out and "| fact_recall |" in out and "(unanswerable)" in out

    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert set(data) == {*METRICS, "rows", "per_article", "per_kind"}
    assert [r["id"] for r in data["rows"]] == ["q1", "q2", "q3", "u1"]
    assert data["abstention_accuracy"] == 1.0 and data["citation_validity"] == 1.0
    assert set(data["per_article"]) == {A, C, UNANSWERABLE}

    text = (report / "report.md").read_text(encoding="utf-8")
    assert "## Overall" in text and "## Per article" in text and "## Questions" in text
    assert "Israel? \\| pipe" in text  # a pipe in a question does not break the table
    assert "## Side by side" not in text
    for name in ("hit_at_k_by_mode.png", "metrics_by_article.png"):
        png = (report / name).read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
        assert f"]({name})" in text


def test_rag_eval_compare_shows_what_the_repair_is_worth(tmp_path, shared_index, capsys) -> None:
    out_json, report = tmp_path / "m.json", tmp_path / "report"
    code = main(["eval", str(_question_file(tmp_path)), "--compare", "--json", str(out_json), "--report", str(report),
                 "--corpus", str(CORPUS), "--index", str(shared_index), "-q"])
    assert code == 0
    assert "Side by side" in capsys.readouterr().out
    data = json.loads(out_json.read_text(encoding="utf-8"))
    runs = {(c["mode"], c["text"]): c for c in data["comparison"]}
    assert set(runs) == {(m, t) for m in ("dense", "bm25", "hybrid") for t in ("repaired", "raw")}
    assert data["hit@1"] == runs["hybrid", "repaired"]["hit@1"]
    # Article 003's facts sit in text the extraction damaged: the raw answers quote it garbled.
    assert runs["hybrid", "repaired"]["fact_recall"] > runs["hybrid", "raw"]["fact_recall"]
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "## Side by side" in text and "Raw against repaired text, per article" in text
    assert (report / "raw_vs_repaired_by_article.png").read_bytes().startswith(PNG_SIGNATURE)


def test_rag_eval_gates_on_a_floors_file(tmp_path, shared_index, capsys) -> None:
    floors = tmp_path / "floors.json"
    floors.write_text(json.dumps({"floors": {"hit@1": 0.5, "fact_recall": 1.01}, "ceilings": {"false_abstention_rate": 0.5}}))
    code = main(["eval", str(_question_file(tmp_path)), "--mode", "bm25", "--floors", str(floors),
                 "--corpus", str(CORPUS), "--index", str(shared_index), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "below floor: fact_recall = " in err and "is below its floor 1.01" in err and "hit@1" not in err


def test_rag_eval_reports_a_bad_question_file_in_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "Fine?", "articles": ["x"]}\nnot json\n')
    assert main(["eval", str(bad), "--index", str(tmp_path / "ix"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "line 2: not valid JSON" in err
    assert not (tmp_path / "ix").exists()  # refused before any index was built
    assert main(["eval", str(tmp_path / "missing.jsonl"), "-q"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_rag_eval_reports_bad_json_and_unknown_articles_together_before_indexing(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "question": "Who?", "articles": ["005_missing"], "facts": [["x"]]}) + "\nnot json\n")
    assert main(["eval", str(bad), "--corpus", str(CORPUS), "--index", str(tmp_path / "ix"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "has 2 bad line(s)" in err and "line 1: unknown article id(s) '005_missing'" in err and "line 2: not valid JSON" in err
    assert not (tmp_path / "ix").exists()  # refused before any index was built


def test_rag_eval_floors_set_needs_a_floors_file(tmp_path, capsys) -> None:
    path = _question_file(tmp_path)
    assert main(["eval", str(path), "--floors-set", "squad", "--corpus", str(CORPUS), "--index", str(tmp_path / "ix"), "-q"]) == 2
    assert "--floors-set needs --floors FILE" in capsys.readouterr().err
    assert main(["eval", str(path), "--floors", str(ROOT / "eval" / "floors.json"), "--floors-set", "nope",
                 "--corpus", str(CORPUS), "--index", str(tmp_path / "ix"), "-q"]) == 2
    assert "has no set 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "ix").exists()


def test_unknown_article_ids_are_checked_against_the_corpus(tmp_path, shared_index, capsys) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Who?", "articles": ["005_missing"], "facts": []}) + "\n")
    assert main(["eval", str(path), "--corpus", str(CORPUS), "--index", str(shared_index), "-q"]) == 2
    assert "line 1: unknown article id(s) '005_missing'" in capsys.readouterr().err


def test_help_loads_neither_torch_nor_matplotlib() -> None:
    code = (
        "import sys; from rag.cli import main\n"
        "for argv in (['--help'], ['eval', '--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit: pass\n"
        "print(*(m in sys.modules for m in ('torch', 'sentence_transformers', 'matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "eval" in out and "--compare" in out and "--report" in out
    assert out.strip().endswith("False False False")


def test_the_readme_evaluation_example_runs_as_written(tmp_path, monkeypatch, real_embedder) -> None:
    import re
    import shutil

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Evaluation") :]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shutil.copytree(CORPUS, tmp_path / "corpus")
    shutil.copytree(ROOT / "eval", tmp_path / "eval")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("rag.core.embedder_for", lambda *a, **k: real_embedder)  # the session's model, loaded once
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["result"].metrics["citation_validity"] == 1.0 and len(scope["result"].rows) == len(scope["questions"])

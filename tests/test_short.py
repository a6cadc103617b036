"""The short answer (rag/short.py) and its retraining command (rag/short_train.py).

Units use hand-made articles and answers with the shipped weights (the
product's own scorer: nothing to fake); the retraining command runs on a small
SQuAD-shaped file made here; the last tests ask the real product.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import time
from pathlib import Path

import pytest

from rag.answer import compose, invariant_problems
from rag.answer import Claim, Evidence
from rag.errors import ModelError
from rag.short import (
    MODEL_PATH,
    Candidate,
    SentenceView,
    ShortModel,
    candidates,
    _shipped_model,
    load_model,
    question_frame,
    score_candidates,
    sentence_features,
    short_answer,
    tokenize,
    Tokens,
)
from rag.short_train import choose_threshold
from rag.short_train import main as train_main
from rag.types import Article, Hit

# --- the question -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "wh", "head"),
    [
        ("When was St. John's incorporated as a city?", "when", ""),
        ("In what year did the city's population pass 200,000?", "what", "year"),
        ("Which river flows through Houston?", "which", "river"),
        ("How many people lived in Houston in 2010?", "how_many", "people"),
        ("Who founded the Federal Bureau of Investigation?", "who", ""),
        ("The treaty was signed where?", "where", ""),
        ("Why did Nasser resign?", "why", ""),
        ("How did the war end?", "how", ""),
        ("Name the capital of Eritrea.", "other", ""),
    ],
)
def test_question_frame(question: str, wh: str, head: str) -> None:
    frame = question_frame(question)
    assert (frame.wh, frame.head) == (wh, head)
    assert frame.factoid is (wh not in ("why", "how"))


@pytest.mark.parametrize(
    ("question", "measure"),
    [
        ("What is the bond angle of a water molecule?", True),  # the phrase's last word, not its first
        ("At what temperature does hydrogen sulfide boil?", True),
        ("What is the boiling point of ethanol?", True),
        ("What was the budget of the film?", True),
        ("What area of the brain controls impulses?", False),  # a region, mostly, in SQuAD's questions
        ("What point did the speaker make?", False),  # "point" only after boiling, melting ...
        ("Which mountain is the highest?", False),
        ("How tall is the tower?", False),  # how-questions say it with their own word
        ("Who set the speed record?", False),
    ],
)
def test_a_question_for_a_measured_quantity_is_told_apart(question: str, measure: bool) -> None:
    assert question_frame(question).measure is measure


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("What is the pH of rain water?",
         "This reaction is why rain water is slightly acidic, with a pH of about 5.6, and why the oceans "
         "become more acidic as the air holds more CO2.", ("5.6", "about 5.6")),
        ("What was the score when Germany played Brazil in the semi-final?",
         "In the semi-finals Germany beat Brazil 7-1 in Belo Horizonte on 8 July.", ("7-1",)),
    ],
)
def test_a_measure_question_is_answered_with_the_number(question: str, sentence: str, expected: tuple) -> None:
    """A question for a measured quantity, against a sentence with a number
    and a description or a place beside it: the number (the scorer gave
    "slightly acidic" and "Belo Horizonte" before it knew the kind)."""
    views = [SentenceView("a", 0, len(sentence), Tokens(tokenize(sentence)), 0, 0.5)]
    best = score_candidates(question_frame(question), views, _shipped_model())[0]
    tokens = views[0].tokens
    assert sentence[tokens[best.candidate.first].start : tokens[best.candidate.last].end] in expected


# --- candidates --------------------------------------------------------------------------

SENTENCE = (
    "St. John's was incorporated as a city in 1888 by Governor Samuel de Champlain, and on July 1, 2015 "
    "its population of 214,285 people made it the 20th largest metropolitan area in Canada."
)


def spans(question: str, text: str = SENTENCE) -> list[str]:
    tokens = tokenize(text)
    return [text[tokens[c.first].start : tokens[c.last].end] for c in candidates(tokens, question_frame(question))]


def test_candidates_hold_numbers_dates_names_and_phrases() -> None:
    found = spans("What happened to the city?")
    for expected in ("1888", "July 1, 2015", "214,285", "214,285 people", "Samuel de Champlain",
                     "Governor Samuel de Champlain", "20th largest metropolitan area", "Canada"):
        assert expected in found, f"{expected!r} missing from {found}"


def test_no_candidate_starts_or_ends_on_a_stop_word_or_a_mark() -> None:
    for span in spans("What happened to the city?"):
        words = span.split()
        assert words[0].lower() not in ("of", "in", "by", "and", "the", "a", "was", "its"), span
        assert words[-1].lower() not in ("of", "in", "by", "and", "the", "a", "was"), span
        assert span[-1] not in ",.;:", span


def test_a_span_of_only_question_words_is_no_candidate() -> None:
    # "Canada" and "St. John's" are what the question is about, not its answer.
    found = spans("When did St. John's become the 20th largest metropolitan area in Canada?")
    assert "Canada" not in found and "St. John's" not in found
    assert "1888" in found


def test_a_range_and_a_month_named_may_are_candidates() -> None:
    text = "The uprising lasted from 1910 to 1913 and the treaty was signed in May 1915."
    found = spans("When was the treaty signed?", text)
    assert "1910 to 1913" in found and "May 1915" in found


def test_a_possessive_is_left_out_of_a_name_unless_it_ends_one() -> None:
    # SQuAD's answer is "Alexander Hamilton", not "Alexander Hamilton's"; but "St. John's" is a name.
    found = spans("Who proposed the ratio?", "This has to do with Alexander Hamilton's suggestion of a fixed 15:1 ratio.")
    assert "Alexander Hamilton" in found
    assert "St. John's" in spans("Which port grew?", "The port of St. John's grew quickly.")


def test_a_list_of_three_or_more_is_one_candidate() -> None:
    found = spans("Which former axis powers does Sterio include?",
                  "Sterio includes the former axis powers (Germany, Italy and Japan) and India among the great powers.")
    assert "Germany, Italy and Japan" in found
    # The last item may run on into a verb; the list that stops at the item is a candidate too.
    found = spans("Who formed the House of Lords?", "Bishops, abbots, earls, and barons formed the House of Lords.")
    assert "Bishops, abbots, earls, and barons" in found


def named_features(question: str, text: str) -> dict[str, set[str]]:
    """Each candidate's feature names, by the candidate's text."""
    frame = question_frame(question)
    tokens = tokenize(text)
    cands = candidates(tokens, frame)
    view = SentenceView("a", 0, len(text), tokens, 0, 1.0)
    return {text[tokens[c.first].start : tokens[c.last].end]: {n for n, _ in f} for c, f in zip(cands, sentence_features(cands, view, frame))}


def test_features_say_where_a_span_sits_against_the_question_words() -> None:
    # "Who founded the Federal Bureau?": the question's words come after "who",
    # and the founder stands right before "founded the Federal Bureau".
    f = named_features("Who founded the Federal Bureau?", "Charles Bonaparte founded the Federal Bureau in 1908.")
    assert "wh=who|order=after|side=before|gap=1" in f["Charles Bonaparte"]
    assert "wh=who|q_before=False|q_after=True" in f["Charles Bonaparte"]
    assert "wh=who|order=after|side=after|gap=2" in f["1908"]  # after "in"
    # "The Federal Bureau was founded when?": the question's words come before "when".
    f = named_features("The Federal Bureau was founded when?", "The Federal Bureau was founded in 1908 by Charles Bonaparte.")
    assert "wh=when|order=before|side=after|gap=2" in f["1908"]


def test_kept_sentence_facts_give_the_features_made_afresh() -> None:
    """A sentence's question-independent work is kept with its Tokens (rag/short.py
    ParsedSentence) and reused by the next question: it must give exactly the
    features of a plain token list, whatever the question, and a candidate made
    by hand (not among the sentence's spans) is compared with the given ones only."""
    kept = Tokens(tokenize(SENTENCE))
    for question in ("When was St. John's incorporated as a city?", "Who was governor?",
                     "How many people lived in the 20th largest metropolitan area in Canada?"):
        frame = question_frame(question)
        fresh = tokenize(SENTENCE)
        cands = candidates(kept, frame)
        assert cands == candidates(fresh, frame)
        ours = sentence_features(cands, SentenceView("a", 0, len(SENTENCE), kept, 1, 0.5), frame)
        assert ours == sentence_features(cands, SentenceView("a", 0, len(SENTENCE), fresh, 1, 0.5), frame)
    assert kept.parsed is kept.parsed  # made once
    # Two hand-made spans, one holding the other: only they are compared ("holds=True", "inside=True").
    frame = question_frame("Who was governor?")
    by_hand = [Candidate(12, 15, frozenset({"chunk"})), Candidate(13, 15, frozenset({"chunk"}))]  # Governor Samuel de Champlain
    outer, inner = ({n for n, _ in f} for f in sentence_features(by_hand, SentenceView("a", 0, 1, kept, 0, 1.0), frame))
    assert "shape=name|inside=False|holds=True" in outer and "shape=name|inside=True|holds=False" in inner


def test_the_scorer_gives_the_probability_of_the_named_features() -> None:
    """score_candidates sums each span's question-independent weights once per
    kind of question (ShortModel.frame_z): its probabilities must be those of
    the features training sees (sentence_features), for questions of several
    kinds asked in turn over the same kept sentence, and a second model must
    not be given the first one's kept sums."""
    kept = Tokens(tokenize(SENTENCE))
    view = SentenceView("a", 0, len(SENTENCE), kept, 0, 0.5)
    shipped = _shipped_model()
    doubled = dataclasses.replace(shipped, weights={k: 2 * v for k, v in shipped.weights.items()})
    questions = ("When was St. John's incorporated as a city?", "Who was governor?", "Which countries border it?",
                 "In what year did the city's population pass 200,000?", "Who was governor?")
    for model in (shipped, doubled, shipped):
        for question in questions:
            frame = question_frame(question)
            cands = candidates(kept, frame)
            named = {c: model.probability(f) for c, f in zip(cands, sentence_features(cands, view, frame))}
            scored = score_candidates(frame, [view], model)
            assert len(scored) == len(named) > 3
            for s in scored:
                assert s.probability == pytest.approx(named[s.candidate], rel=1e-12, abs=1e-15)


# --- short_answer on hand-made answers ------------------------------------------------------


def article(text: str, article_id: str = "a") -> Article:
    return Article(id=article_id, title="T", author=None, publisher=None, date=None, source=f"{article_id}.txt", text=text)


def answer_quoting(art: Article, *sentences: str):
    hits = [Hit(art.id, art.title, art.text, 1.0, 0, len(art.text), f"{art.id}#0")]
    claims = []
    for s in sentences:
        start = art.text.index(s)
        claims.append(Claim(s, Evidence(art.id, start, start + len(s), 0.9, 0.9, 0.9, 0)))
    return compose(claims, hits, {art.id: art})


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("When was St. John's incorporated as a city?", "St. John's was incorporated as a city in 1888.", "1888"),
        ("Who founded Quebec City?", "Quebec City was founded by Samuel de Champlain in 1608.", "Samuel de Champlain"),
        ("How many people lived in Houston in 2010?",
         "In 2010, Houston had a population of 2,099,451 residents, up from 1.95 million.", "2,099,451"),
        ("In what year did Kosovo declare independence?",
         "Kosovo’s 2008 declaration of independence remains unrecognized by Serbia.", "2008"),
    ],
)
def test_the_short_answer_is_the_span_asked_for(question: str, sentence: str, expected: str) -> None:
    art = article(f"Some other words here. {sentence} And a sentence after it.")
    answer = answer_quoting(art, sentence)
    short = short_answer(question, answer, {art.id: art})
    assert short is not None and short.text == expected, short
    assert art.text[short.start : short.end] == short.text
    assert 0 < short.confidence <= 1
    assert invariant_problems(dataclasses.replace(answer, short=short), {art.id: art}) == []


def test_the_index_sentences_of_a_quote_are_the_ones_splitting_it_gives() -> None:
    """The short answer reads an extractive quote's sentences from the index
    (rag/short.py index_bounds) instead of splitting the quote again: on every
    run of one to three adjacent indexed sentences of the corpus, the two agree."""
    from rag.sentences import split_sentences
    from rag.short import index_bounds
    from tests.conftest import CORPUS

    runs = 0
    for path in sorted(CORPUS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        indexed = [(s.start, s.end) for s in split_sentences(text) if not s.is_heading]  # as rag/indexer.py keeps them
        for i in range(len(indexed)):
            for j in range(i, min(i + 3, len(indexed))):
                if j > i and text[indexed[j - 1][1] : indexed[j][0]].strip():
                    break  # a heading between: no extractive quote spans it
                start, end = indexed[i][0], indexed[j][1]
                quote = text[start:end]
                split = tuple((s.start, s.end) for s in split_sentences(quote))
                assert index_bounds(indexed[i : j + 1], quote, start) == split, quote
                runs += 1
    assert runs > 500


def test_a_run_whose_sentence_starts_with_a_stray_stop_is_split_afresh() -> None:
    """The splitter gives "(He was 90)" and ".Why? Nobody knows." here, but the
    last quote alone splits as ".Why?" and "Nobody knows.": index_bounds must
    not hand the index's split to the short answer, on any run of it."""
    from rag.sentences import split_sentences
    from rag.short import index_bounds

    text = "He died in Paris. (He was 90).Why? Nobody knows. Then came peace."
    indexed = [(s.start, s.end) for s in split_sentences(text) if not s.is_heading]
    assert any(text[start] == "." for start, _ in indexed), "the splitter still starts a sentence with the stop"
    for i in range(len(indexed)):
        for j in range(i, len(indexed)):
            start, end = indexed[i][0], indexed[j][1]
            quote = text[start:end]
            got = index_bounds(indexed[i : j + 1], quote, start)
            assert got is None or got == tuple((s.start, s.end) for s in split_sentences(quote)), quote
    assert index_bounds(indexed[-2:-1], text[indexed[-2][0] : indexed[-2][1]], indexed[-2][0]) is None


def test_index_sentences_that_do_not_tile_a_quote_are_not_used() -> None:
    from rag.short import index_bounds

    quote = "One fact. Two facts."  # at offset 100 of its article
    assert index_bounds([(100, 109), (110, 120)], quote, 100) == ((0, 9), (10, 20))
    assert index_bounds([], quote, 100) is None
    assert index_bounds([(100, 109)], quote, 100) is None  # the quote goes on
    assert index_bounds([(104, 109), (110, 120)], quote, 100) is None  # it starts before
    assert index_bounds([(100, 105), (110, 120)], quote, 100) is None  # words between
    assert index_bounds([(100, 112), (110, 120)], quote, 100) is None  # overlapping


def test_the_short_answer_is_the_same_with_the_index_sentences() -> None:
    text = "St. John's was incorporated in 1888. It is the capital.\n\nThe harbour froze in 1901."
    art = Article("a", "A", None, None, None, "a.txt", text)
    answer = answer_quoting(art, "St. John's was incorporated in 1888. It is the capital.")
    spans = [(0, 36), (37, 55), (57, len(text))]
    index = lambda a, start, end: [(s, e) for s, e in spans if start <= s and e <= end]
    for question in ("When was St. John's incorporated?", "What is St. John's?"):
        assert short_answer(question, answer, {"a": art}, sentences=index) == short_answer(question, answer, {"a": art})
    assert short_answer("When was St. John's incorporated?", answer, {"a": art}, sentences=index).text == "1888"


def test_no_short_answer_for_why_and_how_questions_or_abstentions() -> None:
    sentence = "St. John's was incorporated as a city in 1888."
    art = article(sentence)
    answer = answer_quoting(art, sentence)
    arts = {art.id: art}
    assert short_answer("Why was St. John's incorporated?", answer, arts) is None
    assert short_answer("How was St. John's incorporated?", answer, arts) is None
    abstained = dataclasses.replace(answer, abstained=True, citations=[], text="The articles do not answer this question.")
    assert short_answer("When was St. John's incorporated?", abstained, arts) is None


def test_no_short_answer_below_the_threshold() -> None:
    sentence = "St. John's was incorporated as a city in 1888."
    art = article(sentence)
    shipped = load_model()
    strict = dataclasses.replace(shipped, threshold=1.0)
    assert short_answer("When was St. John's incorporated?", answer_quoting(art, sentence), {art.id: art}, strict) is None


def test_hostile_text_keeps_the_offsets() -> None:
    """Odd white space, marks and scripts in the article: the span is still exactly the article text."""
    sentence = "Der\u00a0Vertrag  wurde\tam 3.\u200b Mai 1915 in  Wien \u202eunterzeichnet, mit 1,200 Gästen [4]."
    art = article(f"\ufeff{sentence}")
    answer = answer_quoting(art, sentence)
    model = dataclasses.replace(load_model(), threshold=0.0)  # always give the best span
    short = short_answer("When was the treaty signed?", answer, {art.id: art}, model)
    assert short is not None and art.text[short.start : short.end] == short.text
    assert invariant_problems(dataclasses.replace(answer, short=short), {art.id: art}) == []


def test_a_huge_sentence_is_answered_quickly() -> None:
    """A flattened table of 20,000 characters in one "sentence": still a span, in well under a second."""
    sentence = " ".join(f"Station {i} opened in {1900 + i % 100} with {i * 7} seats," for i in range(700)) + " and more."
    art = article(sentence)
    answer = answer_quoting(art, sentence)
    model = dataclasses.replace(load_model(), threshold=0.0)
    started = time.perf_counter()
    short = short_answer("When did Station 3 open?", answer, {art.id: art}, model)
    assert time.perf_counter() - started < 1.0
    assert short is not None and art.text[short.start : short.end] == short.text


def test_a_damaged_weights_file_says_how_to_retrain(tmp_path: Path) -> None:
    bad = tmp_path / "short_answer.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match=r"short_answer\.json.*python -m rag\.short_train"):
        load_model(bad)
    with pytest.raises(ModelError, match="retrain"):
        load_model(tmp_path / "missing.json")


# --- the shipped weights -----------------------------------------------------------------------


def test_the_shipped_weights_are_small_plain_json_with_a_manifest() -> None:
    assert MODEL_PATH.stat().st_size < 2_000_000
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    manifest = data["manifest"]
    assert len(manifest["data"]["sha256"]) == 64
    assert manifest["data"]["train_articles"].startswith("40-")  # never the evaluation articles 0-39
    assert manifest["features"]["count"] == len(data["weights"]) > 100
    metrics = manifest["held_out_metrics"]
    assert 0 < metrics["em"] <= metrics["f1"] <= 1 and 0 < data["threshold"] < 1
    assert all(math.isfinite(w) for w in data["weights"].values())
    model = load_model()
    assert isinstance(model, ShortModel) and model.threshold == data["threshold"]


# --- SQuAD normalisation ---------------------------------------------------------------------


def test_training_labels_use_the_squad_rules_of_rag_eval() -> None:
    # One copy of SQuAD's normalisation: the trainer labels candidates with
    # the functions `rag eval` scores with, so a label and a score never disagree.
    import rag.evaluate as evaluate
    import rag.short_train as short_train

    assert short_train.exact_match is evaluate.exact_match and short_train.token_f1 is evaluate.token_f1
    assert evaluate.squad_normalise("an (official) U.S. ban") == "official us ban"
    assert evaluate.token_f1("the eastern tip", ["Eastern tip of the peninsula"]) == pytest.approx(2 * 1 * 0.5 / 1.5)


# --- the retraining command -----------------------------------------------------------------------


def tiny_squad(path: Path, n: int = 440) -> Path:
    """A SQuAD-shaped file of `n` one-paragraph articles with factoid questions."""
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            context = (
                f"Town{i} lies on the river Ar{i}. Town{i} was founded in {1700 + i} by Governor Karl Mer{i}. "
                f"Today it has a population of {1000 + 7 * i:,} people and a large market."
            )
            qas = [
                {"question": f"When was Town{i} founded?", "answers": [str(1700 + i)]},
                {"question": f"Who founded Town{i}?", "answers": [f"Governor Karl Mer{i}"]},
                {"question": f"How many people live in Town{i}?", "answers": [f"{1000 + 7 * i:,}"]},
            ]
            f.write(json.dumps({"title": f"Town{i}", "paragraphs": [{"context": context, "qas": qas}]}) + "\n")
    return path


def test_retraining_is_deterministic_and_writes_a_manifest(tmp_path: Path) -> None:
    data = tiny_squad(tmp_path / "squad.jsonl.gz")
    outs = []
    for run in ("one", "two"):
        out = tmp_path / f"{run}.json"
        assert train_main(["--data", str(data), "--out", str(out), "--per-article", "3",
                           "--held-out-per-article", "3", "-q"]) == 0
        outs.append(json.loads(out.read_text(encoding="utf-8")))
    for key in ("weights", "bias", "threshold"):
        assert outs[0][key] == outs[1][key]
    manifest = outs[0]["manifest"]
    assert manifest["held_out_metrics"] == outs[1]["manifest"]["held_out_metrics"]
    # Articles 40-379 but the development set's 300-339 train; 380-439 are held out.
    assert manifest["data"]["train_questions"] == 300 * 3 and manifest["held_out_metrics"]["questions"] == 60 * 3
    # The pattern is easy: the held-out towns are answered.
    assert manifest["held_out_metrics"]["em_if_always_shown"] > 0.6
    model = load_model(tmp_path / "one.json")
    art = article("Town999 was founded in 1650 by Governor Karl Mer999. It has a population of 5,000 people.")
    answer = answer_quoting(art, "Town999 was founded in 1650 by Governor Karl Mer999.")
    assert short_answer("When was Town999 founded?", answer, {art.id: art}, dataclasses.replace(model, threshold=0)).text == "1650"


def test_the_threshold_hides_only_answers_as_unsure_as_rarely_right_ones() -> None:
    # 100 held-out questions, most confident first: half right, then one in
    # five right, then none. A band is 5 questions: the least sure band that is
    # still right for at least 10% ends at question 89, whose probability is
    # the threshold; the last ten are hidden.
    top = []
    for i in range(100):
        right = i % 2 == 0 if i < 50 else i % 5 == 0 if i < 90 else False
        top.append((1 - i / 100, float(right), 1.0 if right else 0.25))
    threshold, metrics = choose_threshold(top, 100)
    assert threshold == pytest.approx(0.11)
    assert metrics["shown"] == 0.9 and metrics["em"] == pytest.approx((25 + 8) / 100)
    assert metrics["em_if_always_shown"] == metrics["em"]  # the hidden ten were all wrong


def test_retraining_help_and_bad_arguments(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        train_main(["--help"])
    assert e.value.code == 0
    assert "articles 40+" in capsys.readouterr().out
    missing = tmp_path / "nope.jsonl.gz"
    assert train_main(["--data", str(missing), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and "--data" in err and len(err.splitlines()) == 1
    assert train_main(["--data", str(tiny_squad(tmp_path / "s.jsonl.gz", n=5)), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds 5 articles" in err and "440" in err
    assert train_main(["--data", str(missing), "--per-article", "0", "-q"]) == 2
    assert "--per-article is 0" in capsys.readouterr().err


def test_the_benchmark_refuses_a_bad_article_range(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "short_answers.py"
    data = tiny_squad(tmp_path / "s.jsonl.gz", n=5)
    for bad in ("5-2", "300", "0-440"):
        done = subprocess.run([sys.executable, str(script), "--data", str(data), "--work", str(tmp_path / "w"), "--articles", bad],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert f"--articles {bad!r}" in done.stderr and "300-319" in done.stderr and len(done.stderr.strip().splitlines()) == 1


# --- through the product ------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When did Albania establish diplomatic relations with Israel?", "1991"),
        ("In what year did Kosovo declare independence?", "2008"),
        ("Who chaired the inaugural meeting of the Balkan Peace Platform?", "Hakan Fidan"),
    ],
)
def test_ask_gives_the_short_answer_inside_a_citation(real_rag, question: str, expected: str) -> None:
    answer = real_rag.ask(question)
    assert answer.short is not None and expected in answer.short.text
    assert invariant_problems(answer, {a.id: a for a in real_rag.articles}) == []


@pytest.mark.model
def test_cli_shows_the_short_answer_first_and_in_json(tmp_path, capsys) -> None:
    from rag.cli import main

    from .conftest import CORPUS

    question = "When did Albania establish diplomatic relations with Israel?"
    index = ["--corpus", str(CORPUS), "--index", str(tmp_path / "ix"), "-q"]
    assert main(["ask", question, *index]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Short answer: 1991\n")  # not a terminal: no bold escape codes
    assert out.index("Short answer") < out.index("[1]") < out.index("Sources:")
    assert main(["ask", question, "--json", *index]) == 0
    data = json.loads(capsys.readouterr().out)
    short = data["short"]
    assert short["text"] == "1991" and short["article_id"] == data["citations"][0]["article_id"]
    quote = data["citations"][0]
    assert quote["start"] <= short["start"] < short["end"] <= quote["end"]

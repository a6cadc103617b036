"""Relation-swap near misses (rag/relswap.py) on a tiny real text, over the
installed MiniLM's word table, and the swap rules on a table made by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rag.relswap import MAX_COSINE, MIN_COSINE, ArticleWords, WordTable, relation_swap, relation_swaps, word_table
from rag.squad import SquadQuestion
from rag.sparse import word_set

TEXT = ("The Eiffel Tower was built in 1889 for the World Fair. It was designed by the company of Gustave Eiffel. "
        "The tower is 330 metres tall and is painted every seven years.")
QUESTIONS = [
    ("When was the Eiffel Tower built?", ("1889",)),
    ("How tall is the tower?", ("330 metres",)),
    ("How often is the tower painted?", ("every seven years",)),
    ("Who designed the tower?", ("Gustave Eiffel",)),
]


def _changed(a: str, b: str) -> list[tuple[str, str]]:
    wa, wb = a.split(), b.split()
    assert len(wa) == len(wb)
    return [(x, y) for x, y in zip(wa, wb) if x != y]


@pytest.mark.parametrize("question,answers", QUESTIONS)
def test_one_answer_sentence_word_swapped_for_a_near_word_the_article_lacks(question, answers):
    swap = relation_swap(question, answers, TEXT, word_table())
    assert swap is not None
    (old, new), = _changed(question, swap.question)
    old, new = old.strip("?"), new.strip("?")
    assert (old, new) == (swap.old, swap.new)
    stems = word_set(TEXT)
    assert word_set(old) <= stems  # a word the article (its answer sentence) holds
    assert not word_set(new) & stems  # replaced by one it never uses, so it cannot answer
    assert MIN_COSINE <= swap.cosine < MAX_COSINE
    assert "Eiffel" in swap.question or "Eiffel" not in question  # names are never swapped


def test_the_real_table_gives_a_plausible_other_detail():
    # "built" -> "rebuilt" (0.41): the article says when it was built, not rebuilt.
    assert relation_swap("When was the Eiffel Tower built?", ("1889",), TEXT).question == "When was the Eiffel Tower rebuilt?"


def test_none_without_an_answer_sentence_or_a_swappable_word():
    table = word_table()
    assert relation_swap("When was the tower built?", ("1901",), TEXT, table) is None  # no sentence holds the answer
    assert relation_swap("Who was Gustave Eiffel?", ("Gustave Eiffel",), TEXT, table) is None  # names only


def _table(words: list[str], vectors: list[list[float]]) -> WordTable:
    return WordTable.from_matrix({w: i for i, w in enumerate(words)}, np.asarray(vectors, dtype=np.float32))


def test_band_article_and_word_form_rules_on_a_table_made_by_hand():
    c = lambda cos: [cos, float(np.sqrt(1 - cos * cos)), 0.0]  # a unit vector at this cosine to "opened"
    words = ["opened", "opening", "launched", "closed", "sold", "table"]
    vectors = [[1, 0, 0], c(0.9), c(0.6), c(0.42), c(0.35), c(0.1)]
    text = "The bridge opened in 1932. Cars used it from the start."
    q = "When was the bridge opened?"
    table = _table(words, vectors)
    # "opening": the same stem; "launched": a synonym (>= MAX_COSINE); "closed": in the band.
    assert relation_swap(q, ("1932",), text, table).question == "When was the bridge closed?"
    # A neighbour whose stem the article holds is passed over for the next one in the band.
    text2 = text + " It was closed once, for repairs."
    assert relation_swap(q, ("1932",), text2, table).question == "When was the bridge sold?"
    # Below MIN_COSINE: no swap.
    text3 = text2 + " It was never sold."
    assert relation_swap(q, ("1932",), text3, table) is None


def test_relation_swaps_are_deterministic_and_labelled():
    qs = [SquadQuestion(f"q{i}", q, a, "answerable", "Eiffel Tower") for i, (q, a) in enumerate(QUESTIONS)]
    qs.append(SquadQuestion("x", "Who built it?", (), "out_of_corpus", "Eiffel Tower"))
    a = relation_swaps(qs, {"Eiffel Tower": TEXT})
    assert a == relation_swaps(list(qs), {"Eiffel Tower": TEXT})
    assert [q.id for q in a] == [f"q{i}-relswap" for i in range(len(QUESTIONS))]
    assert all(q.kind == "relation_swap" and q.answers == () and q.source == s for q, (s, _) in zip(a, QUESTIONS))
    assert all(re.search(r"\?$", q.question) for q in a)
    assert ArticleWords.of(TEXT).answer_stems(("1889",)) == word_set(TEXT.split(". ")[0])

"""The product's BM25 tokenizer is bm25s's, word for word (rag/sparse.py
reimplements it without bm25s's per-call overhead): an index built before and
a query tokenized now must meet on the same words."""

from __future__ import annotations

import bm25s
import pytest

from rag.sparse import _stemmer, fold, stopwords, tokenize, word_set

from .conftest import CORPUS


def _corpus_lines() -> list[str]:
    lines = [line for p in sorted(CORPUS.glob("*.txt")) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines + ["", "the of and", "Vučić's Türkiye-Serbia visit, 1,200 troops (2019)!", "Running runners ran; RUNS run."]


def test_tokenize_is_bm25s_tokenize_word_for_word():
    texts = _corpus_lines()
    assert len(texts) > 100
    expected = bm25s.tokenize([fold(t) for t in texts], stopwords=stopwords(), stemmer=_stemmer(), return_ids=False, show_progress=False)
    assert tokenize(texts) == expected
    # one text at a time, as the answer stage asks, gives the same words
    assert [tokenize([t])[0] for t in texts[:50]] == expected[:50]


def test_tokenize_keeps_order_and_repeats_and_drops_stop_words():
    assert tokenize(["Serbia and serbia, the Serbian visits"]) == [["serbia", "serbia", "serbian", "visit"]]
    assert tokenize(["", "the of and"]) == [[], []]
    assert tokenize([]) == []


def test_word_set_is_the_set_of_tokenize():
    texts = _corpus_lines()
    assert [word_set(t) for t in texts] == [frozenset(w) for w in tokenize(texts)]


def _reference_fold(text: str) -> str:
    """fold() as first written, every text through every step (rag/sparse.py
    skips them for ASCII, which they leave as it is)."""
    import unicodedata

    from rag.sentences import mask_footnotes
    from rag.sparse import _EXTRA_FOLDS

    decomposed = unicodedata.normalize("NFKD", mask_footnotes(text))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower().translate(_EXTRA_FOLDS)


def test_fold_is_the_reference_folding_for_ascii_and_other_text():
    texts = _corpus_lines() + ["Straße İstanbul ŁÓDŹ ﬁne", "tab\tand [12] marker", "\x00\x7f controls", "ÆØÅ æøå"]
    assert any(not t.isascii() for t in texts) and any(t.isascii() for t in texts)
    assert [fold(t) for t in texts] == [_reference_fold(t) for t in texts]


@pytest.mark.parametrize("words", [("Æthelred", "æthelred", "AETHELRED"), ("STRAẞE", "Straße", "strasse"),
                                   ("Œuvre", "œuvre", "oeuvre"), ("İSTANBUL", "ıstanbul", "Istanbul"),
                                   ("ŁÓDŹ", "łódź", "Lodz"), ("Ǿresund", "ǿresund", "Oresund"), ("ǢSC", "æsc", "aesc")])
def test_a_word_folds_alike_in_capitals_lower_case_and_ascii(words):
    from rag.sparse import word_set

    assert len({fold(w) for w in words}) == 1 and fold(words[0]).isascii(), [fold(w) for w in words]
    assert len({word_set(w) for w in words}) == 1


def test_the_stem_memo_gives_the_stemmers_stems():
    from rag.sparse import _stems

    words = ["running", "runs", "visits", "serbian", "universities", "running"]
    assert _stems(dict.fromkeys(words)) == dict(zip(words, _stemmer().stemWords(words)))
    assert _stems(["visits"]) == {"visits": "visit"}  # from the memo now


def test_a_call_with_more_new_words_than_the_stem_memo_holds_is_not_kept(monkeypatch):
    import rag.sparse
    from rag.sparse import _stems

    monkeypatch.setattr(rag.sparse, "_STEMS", {})
    monkeypatch.setattr(rag.sparse, "_STEMS_MAX", 3)
    words = ["walking", "talked", "cities", "flying", "happily"]
    assert _stems(words) == dict(zip(words, _stemmer().stemWords(words)))
    assert rag.sparse._STEMS == {}, "a whole vocabulary at once does not outlive the call"
    assert _stems(["walking", "cities"]) == dict(zip(["walking", "cities"], _stemmer().stemWords(["walking", "cities"])))
    assert set(rag.sparse._STEMS) == {"walking", "cities"}, "a call within the bound is kept"

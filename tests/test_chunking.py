"""Sentences and chunks: offsets that always point at the reference text."""

from __future__ import annotations

import pytest

from rag.chunking import chunk_article, chunk_spans
from rag.ingest import load_corpus
from rag.sentences import split_sentences
from rag.tokens import count_tokens

from .conftest import CORPUS


@pytest.fixture(scope="module")
def articles():
    return load_corpus(CORPUS).articles


def sentences_of(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def test_sentences_survive_abbreviations_numbers_quotes_and_dashes() -> None:
    text = (
        'Dr. Sinem Cengiz said the U.S. deal was worth $919.5 million. It closed in Jan. 2024, per J. R. Smith. '
        '"Is it done?" he asked. Then—after years—the E.U. moved on. The highway cost 1.2 bn. euros.[4] Next one.'
    )
    assert sentences_of(text) == [
        "Dr. Sinem Cengiz said the U.S. deal was worth $919.5 million.",
        "It closed in Jan. 2024, per J. R. Smith.",
        '"Is it done?" he asked.',
        "Then—after years—the E.U. moved on.",
        "The highway cost 1.2 bn. euros.[4]",
        "Next one.",
    ]


def test_a_heading_is_its_own_sentence_and_marked() -> None:
    text = "Scope and Limits\n\nThe first sentence. The second one."
    sentences = split_sentences(text)
    assert [s.is_heading for s in sentences] == [True, False, False]


@pytest.mark.parametrize("max_tokens,overlap", [(160, 40), (64, 16), (300, 0)])
def test_chunks_are_exact_spans_within_the_token_bound(articles, max_tokens: int, overlap: int) -> None:
    for article in articles:
        chunks = chunk_article(article, max_tokens, overlap)
        assert chunks, article.id
        for position, chunk in enumerate(chunks):
            assert article.text[chunk.start : chunk.end] == chunk.text
            assert chunk.position == position and chunk.id == f"{article.id}#{position}"
            assert chunk.n_tokens == count_tokens(chunk.text) <= max_tokens
        # Together the chunks cover every sentence of the article.
        covered = set()
        for chunk in chunks:
            covered.update(range(chunk.start, chunk.end))
        for s in split_sentences(article.text):
            assert set(range(s.start, s.end)) <= covered


def test_chunks_end_on_sentence_boundaries(articles) -> None:
    for article in articles:
        ends = {s.end for s in split_sentences(article.text)}
        starts = {s.start for s in split_sentences(article.text)}
        for chunk in chunk_article(article, 160, 40):
            assert chunk.start in starts and chunk.end in ends


def test_consecutive_chunks_overlap_by_whole_sentences(articles) -> None:
    chunks = chunk_article(articles[0], 160, 40)
    overlapping = [a for a, b in zip(chunks, chunks[1:]) if b.start < a.end]
    assert overlapping, "expected some overlap at 40 tokens"
    for a, b in zip(chunks, chunks[1:]):
        assert b.start > a.start  # always progress
        if b.start < a.end:
            assert count_tokens(a.text[b.start - a.start :]) <= 40 + 5


def test_a_sentence_longer_than_a_chunk_is_cut_at_words_not_lost() -> None:
    text = "Short start. " + " ".join(["word"] * 400) + ". Short end."
    spans = chunk_spans(text, 50, 10)
    assert all(count_tokens(text[a:b]) <= 50 for a, b in spans)
    covered = "".join(text[a:b] + " " for a, b in spans)
    assert covered.count("word") >= 400


def test_a_chunk_the_model_cannot_read_is_split_again() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    # Pretend the model reads at most 30 words: every chunk must obey.
    fits = lambda t: len(t.split()) <= 30  # noqa: E731
    spans = chunk_spans(text, 200, 0, fits=fits)
    assert spans and all(fits(text[a:b]) for a, b in spans)
    assert sum(text[a:b].count("Sentence") for a, b in spans) == 40

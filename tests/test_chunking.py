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


def test_a_title_ending_in_a_bracket_is_a_heading_not_a_sentence_to_quote() -> None:
    """A user's article titled "The Moscow Metro (Московский метрополитен)" had its
    title quoted as the answer to "How many stations...?", joined with the
    first sentence into one citation: the ")" was taken for a sentence end."""
    text = (
        "The Moscow Metro (Московский метрополитен)\n\n"
        "The Moscow Metro opened to passengers on 15 May 1935. It had 13 stations.\n\n"
        "Water (H2O)\n\n"
        "It left on time (as planned.)\n\n"
        "It was structured.[1]"
    )
    assert [(text[s.start : s.end], s.is_heading) for s in split_sentences(text)] == [
        ("The Moscow Metro (Московский метрополитен)", True),
        ("The Moscow Metro opened to passengers on 15 May 1935.", False),
        ("It had 13 stations.", False),
        ("Water (H2O)", True),
        # A bracket closing a sentence end, or a footnote after one, still ends a sentence.
        ("It left on time (as planned.)", False),
        ("It was structured.[1]", False),
    ]


def test_a_markdown_table_row_is_a_sentence_an_answer_can_quote() -> None:
    """A user's molar masses were only in a table: each row, with no full stop,
    was marked a heading, so "What is the molar mass of carbon dioxide?" could
    only be answered from another sentence."""
    from rag.markdown_text import markdown_to_text

    text = markdown_to_text(
        "## Side by side\n\n| Property | Water | Carbon dioxide |\n| --- | --- | --- |\n"
        "| Molar mass | 18.02 g/mol | 44.01 g/mol |\n| Shape | bent | linear |\n"
    )
    assert [(text[s.start : s.end], s.is_heading) for s in split_sentences(text)] == [
        ("Side by side", True),
        ("Property\tWater\tCarbon dioxide", False),
        ("Molar mass\t18.02 g/mol\t44.01 g/mol", False),
        ("Shape\tbent\tlinear", False),
    ]


def _uncovered(text: str) -> list[int]:
    covered: set[int] = set()
    for s in split_sentences(text):
        covered.update(range(s.start, s.end))
    return [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered]


def test_every_character_of_the_corpus_is_in_a_sentence(articles) -> None:
    for article in articles:
        assert _uncovered(article.text) == [], article.id


def test_footnote_markers_set_off_by_spaces_belong_to_a_sentence() -> None:
    """A marker after a space was taken by no sentence, so by no chunk."""
    text = "First sentence. [1] Footnote text here. Another.\n\n[2]\n\nLast one. [3]\n\n[4][5] Two markers. End.[6]"
    assert _uncovered(text) == []
    assert _uncovered("Hi. [1]\n[2] There.") == []
    assert sentences_of(text) == [
        "First sentence.",
        "[1] Footnote text here.",
        "Another.",
        "[2]",
        "Last one. [3]",
        "[4][5] Two markers.",
        "End.[6]",
    ]


def test_repair_and_sentences_share_one_sentence_end() -> None:
    from rag import repair, sentences

    assert repair.SENTENCE_END is sentences.SENTENCE_END
    # A paragraph closed by a single quote is a sentence, not a heading.
    (sentence,) = split_sentences("The plan was called 'Open Balkan'")
    assert not sentence.is_heading


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


@pytest.mark.parametrize("max_tokens,overlap", [(160, 40), (64, 16), (120, 30), (40, 30)])
def test_no_chunk_lies_inside_the_previous_one_in_the_corpus(articles, max_tokens: int, overlap: int) -> None:
    for article in articles:
        chunks = chunk_article(article, max_tokens, overlap)
        for a, b in zip(chunks, chunks[1:]):
            assert b.start > a.start and b.end > a.end, (article.id, a.start, a.end, b.start, b.end)


def test_overlap_never_makes_a_chunk_that_only_repeats_the_previous_one() -> None:
    """Short sentences, then one too long to join them: stepping back over the
    short ones for overlap used to start a chunk that could not reach past the
    previous chunk's end, so it was a contained duplicate."""
    short = "Officials met in Skopje on Monday. They talked about rail. Trade grew fast. "
    long = "The agreement, which " + " ".join(["covers roads and ports and customs and energy"] * 11) + " was signed in Tirana. "
    text = short * 3 + long + short * 2
    spans = chunk_spans(text, 120, 30)
    for (a_start, a_end), (b_start, b_end) in zip(spans, spans[1:]):
        assert b_start > a_start and b_end > a_end
    covered = set()
    for a, b in spans:
        covered.update(range(a, b))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


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

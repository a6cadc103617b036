"""Split an Article into token-bounded Chunks that keep character offsets.

Chunks are made of whole sentences, packed greedily up to `max_tokens`
tiktoken tokens; consecutive chunks share whole sentences up to
`overlap_tokens`. A sentence longer than a chunk is cut at word boundaries.
Every chunk is then checked against what the embedding model reads
(`fits`): one that would be truncated is split again, never cut silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Set

from .sentences import Sentence, split_sentences
from .tokens import count_tokens
from .types import Article, Chunk

Span = tuple[int, int]


def _grow(text: str, units: list[Span], i: int, max_tokens: int, tokenizer: str) -> int:
    """The end j such that units[i:j] is the longest run from i within max_tokens (at least one unit)."""
    j = i + 1
    while j < len(units) and count_tokens(text[units[i][0] : units[j][1]], tokenizer) <= max_tokens:
        j += 1
    return j


def _cut_long(text: str, span: Span, max_tokens: int, tokenizer: str) -> list[Span]:
    """Cut one over-long span at word boundaries into pieces of at most max_tokens."""
    start, end = span
    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
    pieces: list[Span] = []
    i = 0
    while i < len(words):
        j = _grow(text, words, i, max_tokens, tokenizer)
        pieces.append((words[i][0], words[j - 1][1]))
        i = j
    return pieces


def _pack(
    text: str, units: list[Span], headings: set[int], max_tokens: int, overlap_tokens: int, tokenizer: str
) -> list[Span]:
    """Greedy packing of sentence spans into chunk spans, with sentence overlap."""
    sizes = [count_tokens(text[a:b], tokenizer) for a, b in units]

    def end_of_chunk_from(i: int) -> int:
        """The end j of the chunk that starts at unit i: units[i:j]."""
        j = _grow(text, units, i, max_tokens, tokenizer)
        # A heading belongs to the text after it: do not end a chunk on one.
        while j - 1 > i and (j - 1) in headings and j < len(units):
            j -= 1
        return j

    return [(units[i][0], units[j - 1][1]) for i, j in pack_units(sizes, overlap_tokens, end_of_chunk_from, headings)]


def pack_units(
    sizes: list[int], overlap_tokens: int, end_from: Callable[[int], int], headings: Set[int] = frozenset()
) -> list[tuple[int, int]]:
    """The [i, j) unit ranges of the chunks: each chunk from unit i ends at
    end_from(i); the next starts as far back as whole units within
    `overlap_tokens` (never on a heading) allow, while still moving on."""
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(sizes):
        j = end_from(i)
        ranges.append((i, j))
        if j >= len(sizes):
            break
        # Step back over whole sentences that fit in the overlap, keeping progress.
        back, used = j, 0
        while back - 1 > i and used + sizes[back - 1] <= overlap_tokens and (back - 1) not in headings:
            back -= 1
            used += sizes[back]
        # A long sentence right after the overlap may leave no room for anything
        # new: the chunk from `back` would then lie inside this one and only
        # repeat it. Give up overlap until the next chunk reaches past unit j-1
        # (the chunk from j always does, so this stops).
        while back < j and end_from(back) <= j:
            back += 1
        i = back
    return ranges


def chunk_spans(
    text: str,
    max_tokens: int,
    overlap_tokens: int,
    tokenizer: str = "cl100k_base",
    fits: Callable[[str], bool] | None = None,
    sentences: list[Sentence] | None = None,
) -> list[Span]:
    """Chunk spans of `text`; each is whole sentences unless one sentence is too long."""
    sentences = split_sentences(text) if sentences is None else sentences
    units: list[Span] = []
    headings: set[int] = set()
    for s in sentences:
        if count_tokens(text[s.start : s.end], tokenizer) <= max_tokens:
            if s.is_heading:
                headings.add(len(units))
            units.append((s.start, s.end))
        else:
            units.extend(_cut_long(text, (s.start, s.end), max_tokens, tokenizer))
    spans = _pack(text, units, headings, max_tokens, overlap_tokens, tokenizer)
    if fits is None:
        return spans
    checked: list[Span] = []
    for span in spans:
        checked.extend(_fit(text, span, max_tokens, tokenizer, fits))
    return checked


def _fit(text: str, span: Span, max_tokens: int, tokenizer: str, fits: Callable[[str], bool]) -> list[Span]:
    """Split `span` until every piece fits the embedding model."""
    if fits(text[span[0] : span[1]]):
        return [span]
    smaller = max(8, int(max_tokens * 0.75))
    if smaller >= max_tokens:
        raise ValueError(f"text at {span} does not fit the embedding model even at {max_tokens} tokens")
    inner = [Sentence(s.start + span[0], s.end + span[0], s.is_heading) for s in split_sentences(text[span[0] : span[1]])]
    pieces = chunk_spans(text, smaller, 0, tokenizer, None, inner)
    out: list[Span] = []
    for piece in pieces:
        out.extend(_fit(text, piece, smaller, tokenizer, fits))
    return out


def chunk_article(
    article: Article,
    max_tokens: int,
    overlap_tokens: int,
    tokenizer: str = "cl100k_base",
    fits: Callable[[str], bool] | None = None,
    sentences: list[Sentence] | None = None,
) -> list[Chunk]:
    """`sentences`: split_sentences(article.text) when the caller has it already."""
    spans = chunk_spans(article.text, max_tokens, overlap_tokens, tokenizer, fits, sentences)
    return [
        Chunk(
            id=f"{article.id}#{position}",
            article_id=article.id,
            position=position,
            start=start,
            end=end,
            text=article.text[start:end],
            n_tokens=count_tokens(article.text[start:end], tokenizer),
        )
        for position, (start, end) in enumerate(spans)
    ]

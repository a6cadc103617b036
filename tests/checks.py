"""Checks shared by the test modules: the citation invariants, written
independently of the product's own `invariant_problems`."""

from __future__ import annotations

import re

from rag.types import Answer

MARKER = re.compile(r"\[(\d+)\]")


def assert_valid(answer: Answer, r) -> None:
    """Fail unless `answer` keeps every citation invariant of the spec.

    `r` is anything with `article(article_id) -> Article` (the RAG, or a stub
    in the unit tests below).
    """
    assert isinstance(answer, Answer), type(answer)
    assert isinstance(answer.text, str) and answer.text.strip(), "the answer has no text"
    used = [int(n) for n in MARKER.findall(answer.text)]
    numbers = [c.n for c in answer.citations]

    if answer.abstained:
        assert answer.citations == [], f"an abstention carries citations: {answer.citations}"
        assert used == [], f"an abstention carries markers {used}: {answer.text!r}"
    else:
        assert answer.citations, f"an answer without any citation: {answer.text!r}"

    # Numbered 1, 2, 3 in order of first use.
    first_use: list[int] = []
    for n in used:
        if n not in first_use:
            first_use.append(n)
    assert first_use == list(range(1, len(first_use) + 1)), (
        f"markers are not numbered 1, 2, 3 in order of first use: {used} in {answer.text!r}"
    )
    # Exactly one citation per marker number, and no citation without a marker.
    for n in first_use:
        assert numbers.count(n) == 1, f"marker [{n}] has {numbers.count(n)} citations: {numbers}"
    assert sorted(numbers) == first_use, f"citations {numbers} do not match markers {first_use}"

    for hit in answer.hits:
        article = r.article(hit.article_id)
        assert article.text[hit.start : hit.end] == hit.text, f"hit {hit.chunk_id} is not the article text"
    for c in answer.citations:
        article = r.article(c.article_id)
        assert 0 <= c.start < c.end <= len(article.text), f"citation [{c.n}] offsets {c.start}:{c.end}"
        assert article.text[c.start : c.end] == c.quote, (
            f"citation [{c.n}] quote is not {c.article_id}[{c.start}:{c.end}]: {c.quote!r}"
        )
        assert c.title == article.title, f"citation [{c.n}] title {c.title!r} is not {article.title!r}"
        inside = [h for h in answer.hits if h.article_id == c.article_id and h.start <= c.start and c.end <= h.end]
        assert inside, f"citation [{c.n}] {c.article_id}[{c.start}:{c.end}] lies outside every hit"

    if answer.short is not None:
        s = answer.short
        assert not answer.abstained, "an abstention carries a short answer"
        assert any(c.article_id == s.article_id and c.start <= s.start and s.end <= c.end for c in answer.citations), (
            f"short answer {s.text!r} lies outside every cited quote"
        )
        assert s.start < s.end and r.article(s.article_id).text[s.start : s.end] == s.text, (
            f"short answer {s.text!r} is not {s.article_id}[{s.start}:{s.end}]"
        )

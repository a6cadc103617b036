"""Sentence boundaries as character spans of the reference text.

syntok (the successor of segtok) does the splitting: it knows abbreviations
("Dr.", "U.S."), initials, decimal numbers ("$919.5 million") and quotes, and
reports offsets, so no span ever drifts from the text it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from syntok import segmenter

# Footnote markers such as "[4]" stay in the text but must not steer matching
# or splitting: "transformation.[4] In this" is two sentences.
FOOTNOTE = re.compile(r"\[\d{1,3}\]")
# A line break with the white space around it; two or more break a paragraph.
_LINE_BREAK = re.compile(r"[^\S\n]*\n\s*")

# Closing punctuation that ends a sentence, then only trailing space. Quotes
# and brackets close a sentence that ends inside them ('he said "no."'); the
# "]" also covers a footnote marker after the full stop ("transformation.[4]").
# The one definition of a sentence end: repair (joining lines, page breaks)
# and heading detection here must agree on what ends a sentence.
SENTENCE_END = re.compile(r"[.!?:;…\"'”’)\]]\s*$")
# Footnote markers, separated by spaces, right before a sentence: "[1] Text".
_LEADING_MARKERS = re.compile(r"(?:\[\d{1,3}\]\s*)+$")


def mask_footnotes(text: str) -> str:
    """Blank out footnote markers, keeping every offset where it was."""
    return FOOTNOTE.sub(lambda m: " " * len(m.group(0)), text)


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    is_heading: bool  # a one-sentence paragraph without final punctuation


# A sentence's own end: full stop, question or exclamation mark, then closing
# quotes, brackets or footnote markers. Not a bare ")" or ":" as in
# SENTENCE_END: "Zn\n3(PO4)\n2" is one formula whose subscripts lost their lines.
_FULL_STOP = re.compile(r"[.!?…][\"'”’)\]]*(?:\[\d{1,3}\])*[^\S\n]*$")


def _ends_sentence(line: str) -> bool:
    """Whether a one-sentence paragraph ends as a sentence does (else it is a
    heading). A closing bracket counts only after a sentence end inside it
    ("(as planned.)"): a title such as "The Moscow Metro (Московский
    метрополитен)" or "Water (H2O)" ends with one and is still a title, not a
    sentence to quote as an answer. Footnote markers ("commitments.[1]") are
    blanked first, so the full stop before them still counts."""
    return bool(SENTENCE_END.search(mask_footnotes(line).rstrip().rstrip(")]")))


def _is_table_row(line: str) -> bool:
    """A line of tab-separated cells: a Markdown table row as rag/markdown_text.py
    writes it ("Molar mass\t44.01 g/mol"), or a table pasted into a .txt. It has
    no final full stop, yet it holds facts, not a topic: as a heading it would
    be left out of the sentences an answer can quote, and no question about a
    table could be answered from it."""
    return "\t" in line.strip()


def _breaks_paragraph(text: str, line_start: int, line_end: int, next_start: int) -> bool:
    """Whether a single line break (repair keeps the author's) ends a
    paragraph: after a whole sentence, or before a capital, as a heading
    or a paragraph stored one a line does. A break before anything else stays
    inside the sentence: "O\n2" (a subscript), "the\nwall"."""
    return bool(_FULL_STOP.search(text[line_start:line_end])) or text[next_start : next_start + 1].isupper()


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in _LINE_BREAK.finditer(text):
        if m.group(0).count("\n") == 1:
            line_start = text.rfind("\n", 0, m.start()) + 1
            if not _breaks_paragraph(text, line_start, m.start(), m.end()):
                continue
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def split_sentences(text: str) -> list[Sentence]:
    """Split `text` into sentences; `text[s.start:s.end]` is each sentence, stripped."""
    masked = mask_footnotes(text)
    sentences: list[Sentence] = []
    for p_start, p_end in _paragraph_spans(text):
        para = masked[p_start:p_end]
        spans: list[tuple[int, int]] = []
        for paragraph in segmenter.analyze(para):
            for sentence in paragraph:
                tokens = [t for t in sentence if t.value]
                if not tokens:
                    continue
                start = tokens[0].offset
                end = tokens[-1].offset + len(tokens[-1].value)
                spans.append((p_start + start, p_start + end))
        if not spans:
            # Nothing but footnote markers (masked to spaces, so syntok saw no
            # words): the paragraph is still text and must be in a sentence.
            stripped = text[p_start:p_end].strip()
            start = text.index(stripped, p_start)
            spans.append((start, start + len(stripped)))
        for i, (start, end) in enumerate(spans):
            # Give each sentence the footnote markers that follow it directly.
            while (m := FOOTNOTE.match(text, end)) is not None:
                end = m.end()
            spans[i] = (start, end)
        for i, (start, end) in enumerate(spans):
            # A marker set off by a space ("[1] Footnote text.") was not taken
            # by the sentence before; it opens the one after, or else nothing
            # would hold it and no chunk would contain it.
            before = spans[i - 1][1] if i else p_start
            if (m := _LEADING_MARKERS.search(text, before, start)) is not None:
                spans[i] = (m.start(), end)
        # Markers after the last sentence, set off by a space: it takes them.
        start, end = spans[-1]
        tail = text[end:p_end]
        if tail.strip() and not mask_footnotes(tail).strip():
            spans[-1] = (start, end + len(tail.rstrip()))
        for start, end in spans:
            lone = len(spans) == 1
            heading = lone and not _ends_sentence(text[start:end]) and not _is_table_row(text[start:end])
            sentences.append(Sentence(start, end, heading))
    return sentences

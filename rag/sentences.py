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
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def mask_footnotes(text: str) -> str:
    """Blank out footnote markers, keeping every offset where it was."""
    return FOOTNOTE.sub(lambda m: " " * len(m.group(0)), text)


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    is_heading: bool  # a one-sentence paragraph without final punctuation


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
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
        for i, (start, end) in enumerate(spans):
            # Give each sentence the footnote markers that follow it.
            while (m := FOOTNOTE.match(text, end)) is not None:
                end = m.end()
            spans[i] = (start, end)
        for start, end in spans:
            lone = len(spans) == 1
            heading = lone and not re.search(r"[.!?:;…\"”’)\]]$", text[start:end])
            sentences.append(Sentence(start, end, heading))
    return sentences

"""Check a language model's reply against the passages it was given: pure functions.

The model is never trusted. Its reply is split into sentences; each marker [n]
must name a passage that was given; each sentence with a marker must be
supported by the passage it cites (its best sentence scores at least
`support_min` against the claim, by meaning and shared words, holds every
number and name of the claim, and is not itself an instruction to the model
planted in the article); each surviving claim quotes that best
sentence at its offsets. A sentence that fails loses its marker and is
reported as unsupported. How sentences are scored and embedded is passed in,
so this module holds no model and no index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .answer import MARKER, Claim, strip_markers
from .evidence import Evidence
from .questions import addresses_the_model
from .sentences import split_sentences
from .sparse import fold
from .types import Article, Hit
from .conversation import content_words

NOT_IN_ARTICLES = re.compile(r"not\s+in\s+the\s+articles", re.I)

# The sentences of one hit that best support a claim (the claim's text and
# vector, the cited hit), best first.
SupportFn = Callable[[str, np.ndarray, Hit], Sequence[Evidence]]
EmbedFn = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class CheckedReply:
    claims: list[Claim]
    unsupported: list[str]  # sentences that lost their marker: not supported by the passage they cite
    removed_markers: list[int]  # markers naming passages that were not given
    said_not_in_articles: bool
    shortened: bool = False  # supported sentences beyond the answer's length were dropped


_MARKER_LIST = re.compile(r"\[\s*(\d+(?:\s*(?:,|-|–|and)\s*\d+)+)\s*\]")
_MARKERS_AFTER_STOP = re.compile(r"([.!?])(\s*)((?:\[\d+\]\s*)+)")
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZÀ-ÞĀ-Ž][\w’'-]+")


def normalise_markers(reply: str) -> str:
    """Markers as [n] each, inside the sentence they belong to.

    "[1, 2]" and "[1-3]" become "[1] [2]" and "[1] [2] [3]"; a marker written
    after the full stop ("Sentence. [1] Next.") moves before it, where the
    sentence splitter keeps it with its sentence.
    """

    def expand(m: re.Match[str]) -> str:
        parts = [int(x) for x in re.findall(r"\d+", m.group(1))]
        if re.search(r"-|–", m.group(1)) and len(parts) == 2 and 0 < parts[1] - parts[0] < 10:
            parts = list(range(parts[0], parts[1] + 1))
        return " ".join(f"[{n}]" for n in parts)

    reply = _MARKER_LIST.sub(expand, reply)
    return _MARKERS_AFTER_STOP.sub(lambda m: f" {m.group(3).strip()}{m.group(1)} ", reply)


def _specifics_in(claim: str, quote: str) -> bool:
    """Every number and every name of the claim appears in the quote: a
    sentence that shares most words with a passage but changes a figure or a
    name ("$500 million" for "$919.5 million") is not supported by it."""
    folded = fold(quote)
    numbers = [n.replace(",", "") for n in _NUMBER.findall(claim)]
    if any(n not in folded.replace(",", "") for n in numbers):
        return False
    return all(fold(name) in folded for name in _CAPITALISED.findall(claim.strip()))


def check_reply(
    reply: str,
    hits: Sequence[Hit],
    articles: Mapping[str, Article],
    support: SupportFn,
    embed: EmbedFn,
    support_min: float,
    max_claims: int,
) -> CheckedReply:
    """Keep what the cited passages support; quote the best supporting sentence for each."""
    text = normalise_markers(reply.strip())
    if NOT_IN_ARTICLES.search(text) and not MARKER.search(text):
        return CheckedReply([], [], [], True)
    spans = [(s.start, s.end) for s in split_sentences(text)] or [(0, len(text))]
    pieces, plain, seen = [], [], set()
    for a, b in spans:
        piece = text[a:b].strip()
        sentence = strip_markers(piece)
        if len(sentence) <= 2 or sentence.lower() in seen:
            continue  # empty, a stray mark, or said already
        seen.add(sentence.lower())
        pieces.append(piece)
        plain.append(sentence)
    vectors = embed(plain) if plain else []
    claims: list[Claim] = []
    unsupported: list[str] = []
    removed: list[int] = []
    supported = 0
    shortened = False
    for piece, sentence, vector in zip(pieces, plain, vectors):
        cited = [int(n) for n in MARKER.findall(piece)]
        valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(hits)]
        removed += [n for n in cited if not 1 <= n <= len(hits)]
        best: Evidence | None = None
        # Too few words to say anything checkable ("Albania [1].") supports nothing.
        checkable = len(content_words(sentence.lower())) >= 3
        for n in valid if checkable else []:
            for e in support(sentence, vector, hits[n - 1])[:3]:
                quote = articles[e.article_id].text[e.start : e.end]
                if addresses_the_model(quote):
                    # An article's sentence that gives the model orders supports
                    # nothing: a claim "backed" by it is the model obeying it.
                    continue
                if e.score >= support_min and _specifics_in(sentence, quote) and (best is None or e.score > best.score):
                    best = e
        if best is not None and supported >= max_claims:
            shortened = True
            continue
        if best is None:
            unsupported.append(sentence)
        else:
            supported += 1
        claims.append(Claim(sentence, best))
    return CheckedReply(claims, unsupported, sorted(set(removed)), False, shortened)

"""Repair the damage that PDF extraction and careless encoding leave in text.

Every step is a rule about a *kind* of damage, never a table of one file's
words, so the same damage is repaired in any document:

1. Byte-swapped UTF-16. Some PDF extractors read big-endian UTF-16 as
   little-endian and lose the high byte of punctuation: "S" (U+0053) comes out
   as 匀 (U+5300), a space as U+2000, and an en dash (U+2013) as ጀ (U+1300).
   Such a character has a zero low byte and an ASCII or General-Punctuation
   value in its high byte. Genuine CJK text has a zero low byte in about one
   character of 256, so the rule only fires on a document where most of the
   characters in those ranges look swapped.
2. Stray spaces around the dashes that step 1 restored ("Türkiye  –Serbia").
3. Mojibake and odd Unicode (ftfy): "â€™" -> "’", ligatures, NFC.
4. Page furniture: page numbers and the running header or footer printed
   beside them, which PDF text puts in the middle of a sentence.
5. Hard line breaks inside paragraphs, in documents that are hard-wrapped.

The output is the reference text: offsets everywhere else point into it.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass

import ftfy

from .types import RepairReport

# --- 1. byte-swapped UTF-16 -------------------------------------------------

_SPACE_SWAPPED = 0x2000  # " " (U+0020) with its bytes swapped


def _swapped_target(ch: str) -> str | None:
    """The character `ch` stands for if its two bytes were swapped, else None."""
    code = ord(ch)
    if code & 0xFF or code > 0xFFFF:
        return None
    high = code >> 8
    if 0x20 <= high <= 0x7E:
        return chr(high)  # ASCII: letters, digits, punctuation, space
    if 0x10 <= high <= 0x1F:
        # General Punctuation lost its 0x20 high byte: 0x13 -> U+2013 en dash,
        # 0x14 -> U+2014 em dash, 0x11 -> U+2011 non-breaking hyphen, 0x19 -> ’.
        return chr(0x2000 + high)
    return None


_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015"
# Private-use marks around a restored dash, so that step 2 touches only the
# dashes the repair restored and never a dash the author typed with spaces.
_DASH_OPEN, _DASH_CLOSE = "\ue000", "\ue001"


def _looks_swapped(text: str) -> bool:
    """True when the document's wide characters are mostly byte-swapped ASCII."""
    swapped = wide = 0
    for ch in text:
        code = ord(ch)
        if code < 0x1000 or code == _SPACE_SWAPPED:
            continue
        if unicodedata.category(ch).startswith(("P", "Z", "S")) and _swapped_target(ch) is None:
            continue  # real punctuation (’, –, •) is not evidence either way
        wide += 1
        if _swapped_target(ch) is not None:
            swapped += 1
    # Four characters make the smallest swapped word with its dash ("ᄀ攀甀" = "-EU");
    # half of the wide characters separates damage from genuine CJK text (1/256).
    return swapped >= 4 and swapped * 2 >= wide


def decode_swapped(text: str) -> tuple[str, int]:
    """Decode byte-swapped characters; restored dashes come back wrapped in marks."""
    if not _looks_swapped(text):
        return text, 0
    out: list[str] = []
    count = 0
    for ch in text:
        target = _swapped_target(ch)
        if target is None:
            out.append(ch)
            continue
        count += 1
        out.append(f"{_DASH_OPEN}{target}{_DASH_CLOSE}" if target in _DASHES else target)
    return "".join(out), count


_RESTORED_DASH = re.compile(rf"[^\S\n]*{_DASH_OPEN}(.){_DASH_CLOSE}[^\S\n]*")


def respace_dashes(text: str) -> tuple[str, int]:
    """Close up a restored dash: "Türkiye  –Serbia" -> "Türkiye–Serbia".

    PDF extraction pads swapped dashes with spaces; in the source they join
    compounds ("high-level") or set off a clause closed-up ("activism—symbolized").
    """
    count = 0

    def close_up(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != f"{_DASH_OPEN}{match.group(1)}{_DASH_CLOSE}":
            count += 1
        return match.group(1)

    return _RESTORED_DASH.sub(close_up, text), count


# --- 3. encoding and Unicode ------------------------------------------------

_FTFY = ftfy.TextFixerConfig(uncurl_quotes=False, explain=False)

# Spaces of every width read as one space; hyphens that only differ in line
# breaking read as "-", so that "high‑level" and "high-level" match.
_CHAR_MAP = str.maketrans(
    {
        **{chr(c): " " for c in range(0x2000, 0x200B)},
        "\u00a0": " ",
        "\u202f": " ",
        "\u3000": " ",
        "\u2010": "-",
        "\u2011": "-",
        "\u200b": None,  # zero-width space
        "\ufeff": None,  # byte-order mark
        "\u00ad": None,  # soft hyphen: invisible unless a line breaks there
        "\r": None,
    }
)


def normalise_characters(text: str) -> tuple[str, int]:
    fixed = ftfy.fix_text(text, _FTFY).translate(_CHAR_MAP)
    return fixed, _changed_chars(text, fixed)


def _changed_chars(before: str, after: str) -> int:
    # Cheap estimate: characters that differ in count. Exact alignment would
    # cost a diff of the whole document for a figure that is only reported.
    from collections import Counter

    diff = Counter(before)
    diff.subtract(Counter(after))
    return sum(abs(n) for n in diff.values()) // 2 + abs(len(before) - len(after)) // 2


# --- 4. page furniture ------------------------------------------------------

_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?[-–—]?\s*\d{1,4}\s*[-–—]?\s*(?:of\s+\d{1,4})?\s*$", re.I)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
)
# The shapes a running header or footer takes: fields separated by bullets or
# bars, an issue or page label, a bare month and year, a bare year.
_FURNITURE_SHAPE = re.compile(
    rf"[•|·]|\b(?:no|vol|issue|page|pp?)\s*[.:]\s*\d|^\s*(?:{_MONTHS})\s+\d{{4}}\s*$|^\s*\d{{4}}\s*$",
    re.I,
)
_SENTENCE_END = re.compile(r"[.!?:;…\"'”’)\]]\s*(?:\[\d+\])?\s*$")
_FURNITURE_MAX_CHARS = 80


def _blocks(lines: list[str]) -> list[list[str]]:
    """Group lines into blocks separated by blank lines."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _is_page_number(block: list[str]) -> bool:
    return len(block) == 1 and bool(_PAGE_NUMBER.match(block[0]))


def _is_short(block: list[str]) -> bool:
    return len(block) <= 3 and all(len(line.strip()) <= _FURNITURE_MAX_CHARS for line in block)


def _looks_like_furniture(block: list[str], repeated: set[str]) -> bool:
    return _is_short(block) and all(
        _FURNITURE_SHAPE.search(line) or _key(line) in repeated for line in block
    )


def _key(line: str) -> str:
    """A line with its digits blanked: running heads differ only in page numbers."""
    return re.sub(r"\d+", "#", line.strip().lower())


def remove_page_furniture(blocks: list[list[str]]) -> tuple[list[list[str]], int, set[int]]:
    """Drop page numbers and the header/footer blocks around them.

    Returns the kept blocks, how many lines were dropped, and the indexes (into
    the kept blocks) of blocks that continue the previous block's sentence
    across a page break and must be joined to it.
    """
    counts: dict[str, int] = {}
    for block in blocks:
        for line in block:
            counts[_key(line)] = counts.get(_key(line), 0) + 1
    # A short line printed on several pages is a running head, whatever it says.
    repeated = {k for k, n in counts.items() if n >= 2 and len(k) <= _FURNITURE_MAX_CHARS and k != "#"}

    def furniture(j: int) -> bool:
        return 0 <= j < len(blocks) and _looks_like_furniture(blocks[j], repeated)

    drop: set[int] = set()
    joins: set[int] = set()  # indexes in `blocks` of blocks that continue a sentence
    for i, block in enumerate(blocks):
        if not _is_page_number(block):
            continue
        lo, hi = i, i
        while lo - 1 > 0 and furniture(lo - 1):  # block 0 is the title, never furniture
            lo -= 1
        while furniture(hi + 1):
            hi += 1
        if lo == 0 or hi + 1 >= len(blocks):
            drop.update(range(lo, hi + 1))
            continue
        if not _SENTENCE_END.search(blocks[lo - 1][-1]):
            # The page broke a sentence. A sentence cannot contain a heading,
            # so short blocks before the lower-case continuation are furniture
            # too, whatever their shape.
            ahead = hi + 1
            while ahead < len(blocks) - 1 and ahead - hi <= 2 and _is_short(blocks[ahead]) and not _starts_lower(blocks[ahead]):
                ahead += 1
            if _starts_lower(blocks[ahead]):
                hi = ahead - 1
                joins.add(ahead)
        drop.update(range(lo, hi + 1))
    # Running heads that recur away from any page number.
    for i, block in enumerate(blocks):
        if i > 0 and i not in drop and _is_short(block) and all(_key(l) in repeated and _FURNITURE_SHAPE.search(l) for l in block):
            drop.add(i)

    kept: list[list[str]] = []
    kept_joins: set[int] = set()
    for i, block in enumerate(blocks):
        if i in drop:
            continue
        if i in joins:
            kept_joins.add(len(kept))
        kept.append(block)
    dropped_lines = sum(len(blocks[i]) for i in drop)
    return kept, dropped_lines, kept_joins


def _starts_lower(block: list[str]) -> bool:
    return block[0].lstrip()[:1].islower()


# --- 5. hard-wrapped lines --------------------------------------------------

# Lines wrapped by a layout are rarely wider than this; paragraphs stored one
# per line are usually much longer.
_WRAP_WIDTH = 120


def is_hard_wrapped(blocks: list[list[str]]) -> bool:
    """True when multi-line blocks are made of layout-width lines."""
    inner = [len(line) for block in blocks if len(block) > 1 for line in block[:-1]]
    if len(inner) < 3:
        return False
    return sum(n <= _WRAP_WIDTH for n in inner) >= 0.8 * len(inner)


def _continues(line: str, next_line: str) -> bool:
    """A break inside a sentence: no closing punctuation, lower-case next line."""
    return not _SENTENCE_END.search(line) and next_line.lstrip()[:1].islower()


def _join_block(lines: list[str], wrapped: bool) -> tuple[list[str], int]:
    """The block's paragraphs, and how many line breaks were joined.

    In a hard-wrapped document every line break inside a block is soft. In
    one that keeps a paragraph per line, only a break inside a sentence is.
    """
    paragraphs = [lines[0].strip()]
    joined = 0
    for line in lines[1:]:
        line = line.strip()
        if not (wrapped or _continues(paragraphs[-1], line)):
            paragraphs.append(line)
            continue
        joined += 1
        # "long-\nterm": keep the hyphen and close up, since dropping it would
        # break real compounds; a soft hyphen was already removed in step 3.
        glue = "" if paragraphs[-1].endswith("-") and line[:1].isalpha() else " "
        paragraphs[-1] += glue + line
    return paragraphs, joined


# --- the whole repair ---------------------------------------------------------

_MULTISPACE = re.compile(r"[^\S\n]{2,}")


@dataclass(frozen=True)
class Repaired:
    text: str
    report: RepairReport


def repair_text(raw: str) -> Repaired:
    """Repair `raw` and return the clean text with a count of what changed."""
    text, swapped = decode_swapped(raw)
    text, respaced = respace_dashes(text)
    text, encoding_fixes = normalise_characters(text)
    lines = [_MULTISPACE.sub(" ", line).rstrip() for line in text.split("\n")]

    blocks = _blocks(lines)
    blocks, furniture, joins = remove_page_furniture(blocks)
    wrapped = is_hard_wrapped(blocks)

    paragraphs: list[str] = []
    joined = 0
    for i, block in enumerate(blocks):
        parts, n = _join_block(block, wrapped)
        joined += n
        if i in joins and paragraphs:
            # The sentence that a page break cut goes on in this block.
            paragraphs[-1] = f"{paragraphs[-1]} {parts[0]}"
            parts = parts[1:]
            joined += 1
        paragraphs.extend(p for p in parts if p)

    clean = "\n\n".join(paragraphs)
    report = RepairReport(
        swapped_chars=swapped,
        dashes_respaced=respaced,
        furniture_lines=furniture,
        joined_lines=joined,
        encoding_fixes=encoding_fixes,
        garbled_share=garbled_share(clean),
    )
    return Repaired(clean, report)


# --- what still looks damaged -------------------------------------------------

_MOJIBAKE = re.compile(r"[ÃÂâ][\u0080-\u00bf€™œž]")


def garbled_share(text: str) -> float:
    """Share of characters that look damaged: U+FFFD, control characters,
    mojibake pairs, and scattered CJK-range characters in mostly Latin text."""
    if not text:
        return 0.0
    bad = text.count("\ufffd") + len(_MOJIBAKE.findall(text))
    latin = wide = 0
    for ch in text:
        code = ord(ch)
        if code < 0x20 and ch not in "\n\t":
            bad += 1
        elif ch.isalpha():
            if code < 0x250:
                latin += 1
            elif code >= 0x1100:
                wide += 1
    if wide and latin > 4 * wide:  # wide letters scattered through Latin prose
        bad += wide
    return bad / len(text)


# --- documents that arrive page by page (PDF) ----------------------------------

# How many lines at the top and bottom of a page may be furniture.
_PAGE_EDGE_LINES = 2


def repair_pages(pages: list[str]) -> Repaired:
    """Repair a document given as pages: drop each page's header and footer
    lines first, where page boundaries are still known, then repair the whole.

    An edge line is furniture when it is a page number or, digits aside,
    recurs at the edge of other pages. Pages are joined with a paragraph break
    unless the page ends inside a sentence.
    """
    split = [[line for line in page.split("\n")] for page in pages]
    edge_counts: dict[str, int] = {}
    for lines in split:
        content = [l for l in lines if l.strip()]
        for line in set(content[:_PAGE_EDGE_LINES] + content[-_PAGE_EDGE_LINES:]):
            edge_counts[_key(line)] = edge_counts.get(_key(line), 0) + 1
    recurring = {k for k, n in edge_counts.items() if n >= 2 and n * 2 >= len(pages) and k != "#"}

    def furniture(line: str) -> bool:
        return bool(_PAGE_NUMBER.match(line)) or (_key(line) in recurring and len(line.strip()) <= _FURNITURE_MAX_CHARS)

    removed = 0
    kept_pages: list[str] = []
    for lines in split:
        content = [l for l in lines if l.strip()]
        head = 0
        while head < min(_PAGE_EDGE_LINES, len(content)) and furniture(content[head]):
            head += 1
        tail = len(content)
        while tail > head and len(content) - tail < _PAGE_EDGE_LINES and furniture(content[tail - 1]):
            tail -= 1
        removed += head + len(content) - tail
        kept = "\n".join(content[head:tail])
        if kept:
            kept_pages.append(kept)

    text = ""
    for page in kept_pages:
        if text:
            text += "\n" if _continues(text.rsplit("\n", 1)[-1], page) else "\n\n"
        text += page
    repaired = repair_text(text)
    report = dataclasses.replace(repaired.report, furniture_lines=repaired.report.furniture_lines + removed)
    return Repaired(repaired.text, report)

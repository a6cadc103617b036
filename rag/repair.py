"""Repair the damage that PDF extraction and careless encoding leave in text.

Every step is a rule about a *kind* of damage, never a table of one file's
words, so the same damage is repaired in any document:

1. Byte-swapped UTF-16. Some PDF extractors read big-endian UTF-16 as
   little-endian and lose the high byte of punctuation: "S" (U+0053) comes out
   as 匀 (U+5300), a space as U+2000, and an en dash (U+2013) as ጀ (U+1300).
   Such a character has a zero low byte and an ASCII or General-Punctuation
   value in its high byte. Genuine CJK text has a zero low byte in about one
   character of 256 (最 is U+6700, 一 is U+4E00), so the rule decides run by
   run, never for the whole document: a run of two or more such characters
   that spells a word is decoded, unless it sits inside genuine text of a
   wide script; a lone swapped space, dash or quote only next to Latin text
   or a decoded run, and never as a letter of its own word (ἀ in "ἀπόλλυμι").
2. Stray spaces around the dashes and spaces that step 1 restored
   ("Türkiye  –Serbia").
3. Mojibake (ftfy: "â€™" -> "’"), control characters, PDF ligatures ("ﬁ"),
   "\r\n" line endings; odd spaces and hyphens in text that has step 1 or
   mojibake damage.
4. Page furniture: page numbers and the running header or footer printed
   beside them, which PDF text puts in the middle of a sentence.
5. Hard line breaks inside paragraphs, in documents that are hard-wrapped.

Every repair needs evidence of its kind of damage, and text without any is
returned exactly as given, white space and line breaks included: double
spaces, single line breaks ("O\n2" in a formula) and non-breaking spaces are
the author's. Character damage (steps 1-3) is mended where it is found; the
spacing characters of a document that has it are normalised too, since the
same broken extraction made them. Layout damage (steps 4-5: page furniture,
hard wrapping) rebuilds the layout: one paragraph a line, separated by a
blank line. Every change is counted in the RepairReport, so `report.total`
is 0 exactly when the text came back unchanged.

The output is the reference text: offsets everywhere else point into it.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
import unicodedata
from dataclasses import dataclass

import ftfy
import ftfy.chardata

from .sentences import SENTENCE_END
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
# Private-use mark for a restored space: the extractor pads swapped spaces
# with real ones ("Serbia\u2000 ties"), and only such padding is merged.
_SPACE_MARK = "\ue002"


# Maximal runs of characters that could be swapped: zero low byte, high byte
# in the ranges `_swapped_target` maps back.
_SWAP_RUN = re.compile(
    "[" + "".join(chr(high << 8) for high in (*range(0x10, 0x20), *range(0x20, 0x7F))) + "]+"
)


def _is_wide_text(ch: str) -> bool:
    """A genuine character of a wide script (CJK, kana, Hangul, Ethiopic…):
    a letter or full-width sign from U+1100 up that does not look swapped."""
    if ord(ch) < 0x1100 or _swapped_target(ch) is not None:
        return False
    return unicodedata.category(ch).startswith("L") or unicodedata.east_asian_width(ch) in ("W", "F")


def _is_latin_letter(ch: str) -> bool:
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN")


def _neighbours(text: str, start: int, end: int) -> tuple[int, int]:
    """Indexes of the nearest non-space characters before `start` and from
    `end` (-1 or len(text) when there are none): spaces separate words, so the
    context of a run is the word on either side of it."""
    before = start - 1
    while before >= 0 and text[before].isspace():
        before -= 1
    after = end
    while after < len(text) and text[after].isspace():
        after += 1
    return before, after


def _embedded_in_wide_text(text: str, start: int, end: int) -> bool:
    """True when the run text[start:end] has genuine wide-script text beside it:
    then it is part of that text (一 in “一带一路”), not damage."""
    before, after = _neighbours(text, start, end)
    return any(0 <= i < len(text) and _is_wide_text(text[i]) for i in (before, after))


# What a lone swapped character may stand for: a dash or a typographic quote.
# Not ‟ (U+201F), which would be ἀ (U+1F00), the commonest Greek letter of
# etymologies ("ἀπόλλυμι"), and not other punctuation that text rarely has.
_LONE_TARGETS = set("\u2010\u2011\u2012\u2013\u2014\u2015\u2018\u2019\u201c\u201d")


def _attached_to_foreign_letter(text: str, start: int, end: int) -> bool:
    """True when text[start:end] touches, with no space between, a letter of a
    non-Latin script: then it is a letter of that word ("ἀρχι-", "ἀειπάρθενος"),
    not a swapped dash."""
    for i in (start - 1, end):
        if 0 <= i < len(text) and text[i].isalpha() and not _is_latin_letter(text[i]) and _swapped_target(text[i]) is None:
            return True
    return False


def _spells_text(run: str) -> bool:
    """A run that decodes to a word or a number. Spaces alone (U+2000, or the
    ideographic space U+3000 that would read as "0") are no evidence."""
    decoded = "".join(_swapped_target(ch) or "" for ch in run if not ch.isspace())
    return len(run) >= 2 and any(ch.isalnum() for ch in decoded)


def _swapped_runs(text: str) -> list[tuple[int, int]]:
    """The runs of `text` to decode, as (start, end), in order."""
    runs = [m.span() for m in _SWAP_RUN.finditer(text)]
    decode = {
        (a, b) for a, b in runs if _spells_text(text[a:b]) and not _embedded_in_wide_text(text, a, b)
    }
    decoded_at = {i for a, b in decode for i in range(a, b)}
    for a, b in runs:
        if b - a != 1 or (a, b) in decode:
            continue
        # A swapped space or dash on its own carries no word to judge by: trust
        # it only where it joins Latin words or a decoded run ("Greece\u2000 –Albania").
        ch = text[a]
        if not (ch == chr(_SPACE_SWAPPED) or _swapped_target(ch) in _LONE_TARGETS):
            continue
        if _embedded_in_wide_text(text, a, b) or _attached_to_foreign_letter(text, a, b):
            continue
        if any(i in decoded_at or (0 <= i < len(text) and _is_latin_letter(text[i])) for i in _neighbours(text, a, b)):
            decode.add((a, b))
    return sorted(decode)


def decode_swapped(text: str) -> tuple[str, int]:
    """Decode byte-swapped runs; restored dashes come back wrapped in marks,
    restored spaces as a mark (see `respace_dashes`)."""
    out: list[str] = []
    count = 0
    pos = 0
    for start, end in _swapped_runs(text):
        out.append(text[pos:start])
        for ch in text[start:end]:
            target = _swapped_target(ch)
            assert target is not None
            count += 1
            if target in _DASHES:
                out.append(f"{_DASH_OPEN}{target}{_DASH_CLOSE}")
            else:
                out.append(_SPACE_MARK if target == " " else target)
        pos = end
    out.append(text[pos:])
    return "".join(out), count


# White space on a line, restored spaces included.
_LINE_SPACE = rf"(?:[^\S\n]|{_SPACE_MARK})"
_RESTORED_DASH = re.compile(rf"{_LINE_SPACE}*{_DASH_OPEN}(.){_DASH_CLOSE}{_LINE_SPACE}*")
_RESTORED_SPACE = re.compile(rf"{_LINE_SPACE}*{_SPACE_MARK}{_LINE_SPACE}*")


def respace_dashes(text: str) -> tuple[str, int, int]:
    """Close up a restored dash: "Türkiye  –Serbia" -> "Türkiye–Serbia", and
    merge a restored space with the real spaces padding it ("Serbia  ties").

    PDF extraction pads swapped dashes with spaces; in the source they join
    compounds ("high-level") or set off a clause closed-up ("activism—symbolized").
    Returns the text, the dashes closed up and the space runs merged.
    """
    dashes = spaces = 0

    def close_up(match: re.Match[str]) -> str:
        nonlocal dashes
        if match.group(0) != f"{_DASH_OPEN}{match.group(1)}{_DASH_CLOSE}":
            dashes += 1
        return match.group(1)

    def merge(match: re.Match[str]) -> str:
        nonlocal spaces
        if match.group(0) != _SPACE_MARK:
            spaces += 1
        return " "

    text = _RESTORED_DASH.sub(close_up, text)
    return _RESTORED_SPACE.sub(merge, text), dashes, spaces


# --- 3. encoding and Unicode ------------------------------------------------

# Only fixes whose trigger is itself damage: mojibake ("â€™"), C1 control
# characters, terminal escapes. Off, because each changes text that is fine as it is:
# HTML entities ("&amp;" may be what the article says), Unicode normalisation
# (a decomposed "é" is the same text), line-break characters, and character
# width (genuine full-width punctuation "：", as printed in CJK quotations).
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    uncurl_quotes=False,
    fix_character_width=False,
    fix_line_breaks=False,
    remove_control_chars=False,  # see remove_controls
    fix_latin_ligatures=False,  # see split_ligatures
    normalization=None,
    explain=False,
)

# In a document with character damage, spaces of every width read as one
# space and hyphens that only differ in line breaking as "-" (the decoded
# "high‑level" matches "high-level"); invisible characters go. In clean text
# they are the author's (a non-breaking space in "10 km") and are kept.
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
    }
)


def unify_line_breaks(text: str) -> tuple[str, int]:
    """"\r\n" and a lone "\r" (other systems' line breaks) become "\n", the
    one line break every later step and offset assumes."""
    return text.replace("\r\n", "\n").replace("\r", "\n"), text.count("\r")


def fix_encoding(text: str) -> tuple[str, int]:
    """Mojibake, C1 controls and terminal escapes (ftfy), and how many characters changed."""
    fixed = ftfy.fix_text(text, _FTFY)
    return fixed, _changed_chars(text, fixed)


# C0 control characters other than tab, line feed and form feed (a page break
# in extracted text), and DEL: never text. ftfy's own list also takes U+FEFF,
# which Wikipedia text carries as a word joiner in "37°32′N 77°28′W\ufeff / ".
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def remove_controls(text: str) -> tuple[str, int]:
    return _CONTROLS.subn("", text)


# The Latin presentation forms ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ (U+FB00-U+FB06). Not the digraph
# letters (ĳ, ǆ) that ftfy's ligature fix also splits: Dutch and Croatian
# text may use them as letters.
_LIGATURES = {code: letters for code, letters in ftfy.chardata.LIGATURES.items() if 0xFB00 <= code <= 0xFB06}


def split_ligatures(text: str) -> tuple[str, int]:
    """"ﬁve" -> "five": a presentation-form ligature is what copying from a
    PDF leaves (3 of SQuAD's 440 Wikipedia articles carry 6); Unicode keeps
    them for compatibility only. BM25 folds them (NFKD), but the embedding
    model reads "ﬁve" as the pieces "ﬁ" "##ve", not as "five"."""
    count = sum(text.count(chr(code)) for code in _LIGATURES)
    return (text.translate(_LIGATURES) if count else text), count


def normalise_characters(text: str) -> tuple[str, int]:
    """Map odd spaces, hyphens and invisible characters (see _CHAR_MAP)."""
    fixed = text.translate(_CHAR_MAP)
    return fixed, _changed_chars(text, fixed)


def _changed_chars(before: str, after: str) -> int:
    # Cheap estimate: characters that differ in count. Exact alignment would
    # cost a diff of the whole document for a figure that is only reported;
    # a change is never counted as none.
    if before == after:
        return 0
    diff = Counter(before)
    diff.subtract(Counter(after))
    estimate = sum(abs(n) for n in diff.values()) // 2 + abs(len(before) - len(after)) // 2
    return max(estimate, 1)


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


# A page number that says so: "Page 3", "3 of 12", "- 3 -".
_LABELLED_PAGE_NUMBER = re.compile(r"page|\d\s*of\s*\d|[-–—]\s*\d+\s*[-–—]", re.I)
_BARE_NUMBER = re.compile(r"^\s*(\d{1,4})\s*$")
# Page numbers of a series go up by one a page; two allows for a page that
# printed none (a full-page figure).
_PAGE_STEP = 2


def _page_numbers_in_series(blocks: list[list[str]]) -> set[int]:
    """Indexes of page-number blocks that are evidently page numbers by
    themselves: labelled ("Page 3"), or one of the document's lone numbers
    that go up page by page (…"4"… "5"…). A single lone "12" is not: it may
    be a figure the sentence around it needs ("rose by / 12 / per cent")."""
    lone = [(i, int(m.group(1))) for i, b in enumerate(blocks) if len(b) == 1 and (m := _BARE_NUMBER.match(b[0]))]
    evident = {i for i, b in enumerate(blocks) if _is_page_number(b) and _LABELLED_PAGE_NUMBER.search(b[0])}
    for i, n in lone:
        if any((j < i and 0 < n - m <= _PAGE_STEP) or (j > i and 0 < m - n <= _PAGE_STEP) for j, m in lone):
            evident.add(i)
    return evident


def _reads_as_title(block: list[str]) -> bool:
    """Title Case without a sentence's punctuation ("Quarterly Balkan Notes"):
    a running head, where a single word ("Serbia") or a lower-case phrase may
    be the broken sentence's own words. Short lower-case words ("of", "and")
    are allowed inside, as titles have them."""
    for line in block:
        words = line.split()
        if len(words) < 2 or re.search(r"[.,;:!?]", line):
            return False
        if not (words[0][:1].isupper() and words[-1][:1].isupper()):
            return False
        if not all(w[:1].isupper() or w[:1].isdigit() or (w.islower() and len(w) <= 3) for w in words):
            return False
    return True


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
    in_series = _page_numbers_in_series(blocks)

    def furniture(j: int) -> bool:
        if not 0 <= j < len(blocks):
            return False
        # Block 0 is usually the title, and a title may well recur as a
        # running head: there only the shape of a header counts.
        return _looks_like_furniture(blocks[j], repeated if j > 0 else set())

    drop: set[int] = set()
    joins: set[int] = set()  # indexes in `blocks` of blocks that continue a sentence
    for i, block in enumerate(blocks):
        if not _is_page_number(block) or i in drop or i in joins:
            continue
        lo, hi = i, i
        while furniture(lo - 1):
            lo -= 1
        while furniture(hi + 1):
            hi += 1
        if lo == 0 or hi + 1 >= len(blocks):
            # At either end of the document the number breaks no sentence.
            drop.update(range(lo, hi + 1))
            continue
        if SENTENCE_END.search(blocks[lo - 1][-1]) or _reads_as_title(blocks[lo - 1]):
            # After a whole sentence or a title a number alone is no prose: a
            # page number.
            drop.update(range(lo, hi + 1))
            continue
        # The number stands inside a sentence. It is a page number only on
        # evidence: header or footer blocks beside it, or a series of them.
        if lo == hi and i not in in_series:
            if _starts_lower(blocks[i + 1]):
                joins.update((i, i + 1))  # "rose by / 12 / per cent": one sentence
            continue  # otherwise nothing tells what it is: leave it be
        # The page broke a sentence. Up to two short blocks may stand between
        # the furniture and the lower-case continuation: another page number
        # of the series, or a running head that has no header shape (a
        # sentence cannot contain a title), is dropped; anything else
        # ("Serbia") is the sentence's own words and joined.
        ahead = hi + 1
        while ahead < len(blocks) - 1 and ahead - hi <= 2 and _is_short(blocks[ahead]) and not _starts_lower(blocks[ahead]):
            ahead += 1
        if _starts_lower(blocks[ahead]):
            for j in range(hi + 1, ahead):
                (drop if j in in_series or _reads_as_title(blocks[j]) else joins).add(j)
            joins.add(ahead)
        drop.update(range(lo, hi + 1))
    # Running heads that recur away from any page number.
    for i, block in enumerate(blocks):
        if i not in drop and i not in joins and _is_short(block) and all(_key(l) in repeated and _FURNITURE_SHAPE.search(l) for l in block):
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


# Narrower "lines" are a list, a table or verse, broken on purpose.
_MIN_WRAP_WIDTH = 40
# Share of all lines that a layout holds to its width: a few may overrun it
# (a long URL), but a document with paragraphs on one long line each is not
# wrapped, however short the lines of its lists ("1987–2000 Dr Nafis Sadik").
_WITHIN_WIDTH_SHARE = 0.9
# A layout breaks a line where the width runs out, so most of its inner line
# ends fall inside a sentence. Lines that (nearly) all end a sentence were
# broken by their author: one record, fact or verse line each, all of a width.
_MID_SENTENCE_SHARE = 0.5


def is_hard_wrapped(blocks: list[list[str]]) -> bool:
    """True when multi-line blocks are made of layout-width lines, most of
    them broken inside a sentence, and the document has (nearly) no line
    wider than that layout."""
    inner_lines = [line for block in blocks if len(block) > 1 for line in block[:-1]]
    inner = sorted(len(line) for line in inner_lines)
    if len(inner) < 3 or sum(n <= _WRAP_WIDTH for n in inner) < 0.8 * len(inner):
        return False
    if sum(not SENTENCE_END.search(line) for line in inner_lines) < _MID_SENTENCE_SHARE * len(inner_lines):
        return False
    width = inner[int(0.9 * (len(inner) - 1))]  # the layout's width, a few overlong lines aside
    if width < _MIN_WRAP_WIDTH:
        return False
    # A justified or ragged line may run a little past the width estimate.
    limit = 1.25 * width + 10
    lengths = [len(line) for block in blocks for line in block]
    return sum(n <= limit for n in lengths) >= _WITHIN_WIDTH_SHARE * len(lengths)


def _continues(line: str, next_line: str) -> bool:
    """A break inside a sentence: no closing punctuation, lower-case next line."""
    return not SENTENCE_END.search(line) and next_line.lstrip()[:1].islower()


# A first line shorter than this share of the block's typical line did not
# run out of room: the layout broke it on purpose.
_HEADING_WIDTH_SHARE = 0.6


def _starts_with_heading(lines: list[str]) -> bool:
    """A hard-wrapped block whose first line is a heading with no blank line
    after it: much shorter than the block's inner lines (the last line of a
    paragraph is short anyway, so it does not count), no closing punctuation,
    and the next line starts with a capital, as a new sentence does."""
    if len(lines) < 3:
        return False
    first = lines[0].strip()
    inner = sorted(len(line.strip()) for line in lines[1:-1])
    median = inner[len(inner) // 2]
    return (
        len(first) < _HEADING_WIDTH_SHARE * median
        and not SENTENCE_END.search(first)
        and lines[1].lstrip()[:1].isupper()
    )


def _join_block(lines: list[str], wrapped: bool) -> tuple[list[str], int, int]:
    """The block's paragraphs, how many line breaks were joined, and how many
    were kept as paragraph breaks.

    In a hard-wrapped document every line break inside a block is soft,
    except after a heading printed without a blank line below it. In one that
    keeps a paragraph per line, only a break inside a sentence is.
    """
    paragraphs = [lines[0].strip()]
    joined = kept = 0
    heading = wrapped and _starts_with_heading(lines)
    for k, line in enumerate(lines[1:]):
        line = line.strip()
        if (k == 0 and heading) or not (wrapped or _continues(paragraphs[-1], line)):
            paragraphs.append(line)
            kept += 1
            continue
        joined += 1
        # "long-\nterm": keep the hyphen and close up, since dropping it would
        # break real compounds. A soft hyphen marks where a word was broken
        # (in damaged text step 3 removed it already): it goes.
        glue = "" if paragraphs[-1].endswith(("-", "\u00ad")) and line[:1].isalpha() else " "
        if glue == "" and paragraphs[-1].endswith("\u00ad"):
            paragraphs[-1] = paragraphs[-1][:-1]
        paragraphs[-1] += glue + line
    return paragraphs, joined, kept


# --- the whole repair ---------------------------------------------------------

_MULTISPACE = re.compile(r"[^\S\n]{2,}")


@dataclass(frozen=True)
class Repaired:
    text: str
    report: RepairReport


def _rebuild_layout(text: str, blocks: list[list[str]], joins: set[int], wrapped: bool) -> tuple[str, dict[str, int]]:
    """The text laid out again from its kept blocks: one paragraph a line,
    paragraphs separated by one blank line, lines stripped and their space
    runs collapsed. Returns the text and the count of each kind of change
    made here (furniture is counted where it is found)."""
    paragraphs: list[str] = []
    joined = split = 0
    for i, block in enumerate(blocks):
        parts, n, kept_breaks = _join_block(block, wrapped)
        joined += n
        split += kept_breaks
        if i in joins and paragraphs:
            # The sentence that a page break cut goes on in this block.
            paragraphs[-1] = f"{paragraphs[-1]} {parts[0]}"
            parts = parts[1:]
            joined += 1
        paragraphs.extend(p for p in parts if p)
    lines = text.split("\n")
    collapsed = sum(len(_MULTISPACE.findall(line.strip())) for line in lines)
    trimmed = sum(1 for line in lines if line.strip() and line != line.strip())
    # Blank-line runs other than one empty line between blocks, and white
    # space at either end of the document.
    trimmed += len(re.findall(r"\n(?:[^\S\n]*\n){2,}|\n[^\S\n]+\n", text))
    trimmed += text != text.strip()
    counts = {"joined_lines": joined, "paragraph_breaks": split, "spaces_collapsed": collapsed, "whitespace_trimmed": trimmed}
    return "\n\n".join(paragraphs), counts


def repair_text(raw: str, laid_out: bool = False) -> Repaired:
    """Repair `raw` and return the clean text with a count of what changed.

    Text without evidence of damage comes back as it is (see the module doc).
    laid_out: the line breaks are known to be a layout's (text extracted from
    PDF pages has no others), so the layout is rebuilt without more evidence.
    """
    text, line_endings = unify_line_breaks(raw)
    text, swapped = decode_swapped(text)
    text, respaced, merged = respace_dashes(text)
    text, mojibake = fix_encoding(text)
    text, controls = remove_controls(text)
    text, ligatures = split_ligatures(text)
    normalised = 0
    if swapped or mojibake:
        text, normalised = normalise_characters(text)

    # Layout evidence is looked for on lines as they read, spacing aside.
    lines = [_MULTISPACE.sub(" ", line).rstrip() for line in text.split("\n")]
    blocks, furniture, joins = remove_page_furniture(_blocks(lines))
    wrapped = is_hard_wrapped(blocks)
    layout = {"joined_lines": 0, "paragraph_breaks": 0, "spaces_collapsed": 0, "whitespace_trimmed": 0}
    if laid_out or furniture or joins or wrapped:
        text, layout = _rebuild_layout(text, blocks, joins, wrapped)

    report = RepairReport(
        swapped_chars=swapped,
        dashes_respaced=respaced,
        furniture_lines=furniture,
        encoding_fixes=mojibake + controls,
        ligatures_split=ligatures,
        line_endings=line_endings,
        chars_normalised=normalised,
        **{**layout, "spaces_collapsed": layout["spaces_collapsed"] + merged},
        garbled_share=garbled_share(text),
    )
    return Repaired(text, report)


# --- what still looks damaged -------------------------------------------------

_MOJIBAKE = re.compile(r"[ÃÂâ][\u0080-\u00bf€™œž]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_HIGH = re.compile(r"[^\x00-\u0fff]+")


def _is_suspect(ch: str) -> bool:
    """A character that is damage when it stands alone in other text: a
    letter of a wide script, or a character that looks byte-swapped."""
    if ch.isspace():
        return False
    return _swapped_target(ch) is not None or (ord(ch) >= 0x1100 and unicodedata.category(ch).startswith("L"))


def garbled_share(text: str) -> float:
    """Share of characters that look damaged: U+FFFD, control characters,
    mojibake pairs, byte-swapped runs the repair left, and wide characters
    standing alone in Latin text ("with 攀 some 爀 stray").

    A run of genuine CJK (a quoted “一带一路”) is text, not damage, even when
    some of its characters have a zero low byte.
    """
    if not text:
        return 0.0
    bad = text.count("\ufffd") + len(_MOJIBAKE.findall(text))
    bad += len(_CONTROL.findall(text))
    # Every suspect character is at or above U+1000, so only stretches of
    # such characters (in Latin text: typographic quotes and dashes) need a
    # look one by one; a character loop over the whole text cost most of the
    # time of loading a corpus.
    for stretch in _HIGH.finditer(text):
        i, stop = stretch.span()
        while i < stop:
            if not _is_suspect(text[i]):
                i += 1
                continue
            end = i
            while end < stop and _is_suspect(text[end]):
                end += 1
            run = text[i:end]
            if not _embedded_in_wide_text(text, i, end):
                if len(run) == 1:
                    bad += 1  # one wide character alone among Latin words
                elif all(_swapped_target(ch) is not None for ch in run):
                    bad += len(run)  # byte-swapped text the repair did not decode
            i = end
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
    repaired = repair_text(text, laid_out=True)
    report = dataclasses.replace(repaired.report, furniture_lines=repaired.report.furniture_lines + removed)
    return Repaired(repaired.text, report)

"""Check a question before any work is done, and classify what needs a note.

The checks here are cheap and run on every question: length limits, the
language of the question (the articles and the model are English), and
instructions smuggled into a question ("ignore the articles and ...").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .errors import QueryError
from .words import ENGLISH_MARKERS, UNIT_WORDS

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# A question made of other languages' frequent words and none of English's
# (rag/words.py) is not English, whatever its topic words are.
_ENGLISH = ENGLISH_MARKERS
_OTHER = frozenset(
    # French, German, Spanish, Italian, Turkish, Serbo-Croatian, Albanian
    "le la les des est une qui que quoi pourquoi comment dans pour avec sur "
    "der die das ist und nicht wer was warum wie wann mit auf von "
    "el los las es qué quién por qué cómo cuándo dónde con una del "
    "il che chi perché come quando dove della sono "
    "ve bir bu ne neden nasıl kim nedir mı mi mu mü için ile hangi "
    "je da li šta što zašto kako gdje gde kada koji nije su "
    "është dhe një pse çfarë kush ku si".split()
)

# Phrases that address the system rather than ask about the articles.
_INSTRUCTIONS = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(articles?|instructions?|context|passages?|rules?|above|previous)\b"
    r"|\b(you are now|act as|pretend to be|system prompt|jailbreak)\b",
    re.I | re.S,
)


@dataclass(frozen=True)
class QuestionCheck:
    text: str  # the question, stripped
    english: bool
    has_instructions: bool


def check_question(question: object, limit: int) -> str:
    """The question, stripped; QueryError when it cannot be searched."""
    if isinstance(question, (bytes, bytearray)):
        raise QueryError(
            f"question must be text, not {type(question).__name__}: decode it first, e.g. question.decode('utf-8')"
        )
    if not isinstance(question, str):
        raise QueryError(f"question must be text, not {type(question).__name__}")
    _check_encodable(question)
    text = question.strip()
    if not text:
        raise QueryError("question is empty: type a question about the articles")
    if len(text) > limit:
        raise QueryError(
            f"question is {len(text):,} characters long, over the limit of {limit:,}: shorten it to its point"
        )
    return text


# Lone surrogates are what undecodable bytes become on the way in (Python
# decodes a command line, and piped input, with "surrogateescape"), or what a
# client sends as a broken "\ud800" JSON escape. No tokenizer, hash or JSON writer
# takes them, so they are refused here, before any of those runs.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_encodable(question: str) -> None:
    bad = _SURROGATE.search(question)
    if bad:
        # The message never echoes the question: it cannot be printed as it is.
        raise QueryError(
            f"question is not valid text: character {bad.start() + 1} is an undecodable byte or a lone "
            f"surrogate (U+{ord(bad.group()):04X}): type it again, or re-save the input as UTF-8"
        )


def looks_english(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    # An ASCII letter is a Latin one; only the others need their Unicode name (the slow part).
    latin = sum(ch.isascii() or unicodedata.name(ch, "").startswith("LATIN") for ch in letters)
    if letters and latin * 2 < len(letters):
        return False  # mostly Cyrillic, Greek, Arabic, CJK ...: not English whatever the words
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3:
        return True  # too short to tell; a name or two reads the same in any language
    english = sum(w in _ENGLISH for w in words)
    other = sum(w in _OTHER for w in words)
    return english >= other or english >= 2


def addresses_the_model(text: str) -> bool:
    """Whether `text` gives instructions to the system ("ignore the articles
    and ...", "you are now ..."): in a question, or planted in an article."""
    return bool(_INSTRUCTIONS.search(text))


def classify(question: object, limit: int) -> QuestionCheck:
    text = check_question(question, limit)
    return QuestionCheck(text, looks_english(text), addresses_the_model(text))


# --- names the corpus never mentions ---------------------------------------------

# A run of capitalised words, possibly joined by "of" or "the" ("Bank of
# Albania"). A word ending in "." ends the run: a name does not cross a
# sentence end ("I see. Explain why ...").
_NAME = re.compile(r"\b[A-ZÀ-ÞĀ-Ž][\w’'-]*(?:\s+(?:of\s+|the\s+)?[A-ZÀ-ÞĀ-Ž][\w’'-]*)*", re.UNICODE)
_SENTENCE_STARTS = re.compile(r"(?:^|[.!?:;]\s+)[\"“‘'(]*", re.UNICODE)
_POSSESSIVE = re.compile(r"[’']s$")


@dataclass(frozen=True)
class Name:
    """A capitalised name of a question: as written ("Bank of England",
    possessive dropped) and its content words (["Bank", "England"])."""

    written: str
    words: tuple[str, ...]


def question_names(question: str) -> list[Name]:
    """The capitalised names of a question. Capitalised question words,
    sentence starts and stop words never count as names."""
    return list(_names(question))


# One ask reads a question's names in three steps (the unknown-name rule, the
# sentence rules, the probability) and a cited sentence's in every question
# that reaches it: kept. Names are frozen, so sharing them is safe.
@lru_cache(maxsize=8192)
def _names(question: str) -> tuple[Name, ...]:
    starts = {m.end() for m in _SENTENCE_STARTS.finditer(question)}
    names = []
    for match in _NAME.finditer(question):
        words = match.group(0).split()
        if match.start() in starts and not words[0].isupper():
            # The first word of a sentence is capitalised as a sentence start
            # ("Besides Serbia, ...", "Name the leader ..."): not part of a name.
            words = words[1:]
        while words and words[0].lower() in ("of", "the"):
            words = words[1:]
        content = [
            stripped
            for w in words
            if (stripped := _POSSESSIVE.sub("", w).strip("-’'"))
            and stripped.lower() not in _ENGLISH
            and stripped.lower() not in ("of", "the")
        ]
        if content:
            names.append(Name(" ".join(_POSSESSIVE.sub("", w) for w in words), tuple(content)))
    return tuple(names)


def unknown_names(
    question: str, knows: Callable[[str], bool], spelt_otherwise: Callable[[str], bool] | None = None
) -> list[str]:
    """Capitalised names in the question with a word the corpus never uses.

    A question about Greece or FIFA cannot be answered from articles that never
    name them, however close the nearest passage scores. `knows(word)` says
    whether the corpus uses a word (after the index's folding and stemming);
    `spelt_otherwise(word)`, when given, whether the passages retrieved for
    the question hold a word it only misspells or abbreviates
    (rag/answer.py spelt_otherwise): such a word is not unknown either.
    """
    return [
        n.written for n in question_names(question)
        if any(not knows(w) and not _unit(w) and (spelt_otherwise is None or not spelt_otherwise(w))
               for w in n.words)
    ]


def _unit(word: str) -> bool:
    """A unit word of rag/words.py, its plural too ("How many Kelvins ...",
    eval/squad/questions.jsonl s14_03)."""
    lower = word.lower()
    return lower in UNIT_WORDS or lower.removesuffix("s") in UNIT_WORDS


_ORDINAL_DIGITS = {w: str(n) for n, w in enumerate("first second third fourth fifth sixth seventh eighth ninth tenth".split(), 1)}
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10}
# An abbreviation that ends in a numeral, as written: "WWII", "WW2", "GPT4".
# ASCII digits only: re's \d also takes "٢" or "२", which initials() never
# writes, so "WW٢" would be read as a numbered abbreviation that matches nothing.
_NUMBERED = re.compile(r"([A-Za-z]+?)(VIII|VII|VI|IV|IX|III|II|I|V|X|[0-9]{1,2})")


def _arabic(numeral: str) -> str | None:
    """A Roman numeral up to X or a one- or two-digit number, as digits; None for another word."""
    return str(_ROMAN[numeral]) if numeral in _ROMAN else numeral if numeral.isdigit() and len(numeral) <= 2 else None


def initials(text: str) -> frozenset[str]:
    """The initials, lower-cased, of the names of two or more words in `text`
    ("Martin Luther King" -> "mlk", "Bank of England" -> "be"); a name that
    ends in a numeral instead as its other words' initials and the numeral's
    digits ("World War II" -> "ww2", never "wwi"), and one after an ordinal
    as the words after it and the ordinal's digits ("Second World War" ->
    "ww2"), for numbered_abbreviation."""
    found = set()
    for match in _NAME.finditer(text):
        words = [w for w in match.group(0).split() if w.lower() not in ("of", "the", "and")]
        number = _arabic(words[-1]) if len(words) >= 3 else None
        if number is not None:
            # Not its plain initials: the numeral's first letter made "World
            # War II" spell "WWI", another war. From each word on: a capitalised
            # word before the name is often only a sentence's start ("During World War II").
            for first in range(len(words) - 2):
                found.add("".join(w[0] for w in words[first:-1]).lower() + number)
        elif len(words) >= 2:
            found.add("".join(w[0] for w in words).lower())
        # "The Second World War" is WWII too: an ordinal before the name's
        # other words (from each capitalised ordinal on: "During the First World War").
        for k, w in enumerate(words[:-2]):
            if (ordinal := _ORDINAL_DIGITS.get(w.lower())) is not None:
                found.add("".join(x[0] for x in words[k + 1 :]).lower() + ordinal)
    return frozenset(found)


def numbered_abbreviation(word: str) -> str | None:
    """An abbreviation of capitals ending in a numeral, as initials() writes
    it: "WWII" and "WW2" both as "ww2". None for any other word."""
    m = _NUMBERED.fullmatch(word)
    if m is None or len(m.group(1)) < 2 or not m.group(1).isupper():
        return None
    return m.group(1).lower() + _arabic(m.group(2))  # _NUMBERED's numerals are all _arabic's


# --- what kind of answer a question asks for ---------------------------------------

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_ASKS_MONTH = re.compile(r"\b(which|what)\s+(month|day|date)\b|\bexact\s+date\b", re.I)
_ASKS_TIME = re.compile(r"^\s*when\b|\b(which|what|in what)\s+year\b|\bhow long ago\b|\bsince when\b", re.I)
_ASKS_QUANTITY = re.compile(
    r"\bhow\s+(many|much|large|big|far)\b|\bhow\s+long\b(?!\s+ago)|\bpopulation\b|\bwhat\s+(percentage|share|number|amount|proportion)\b",
    re.I,
)
_YEAR = r"\b(1[89]\d\d|20\d\d)s?\b"
# Month names count only capitalised: "may" is far more often the verb.
_MONTH_NAMES = "|".join(m.capitalize() for m in _MONTHS.split("|"))
_HAS_MONTH = re.compile(rf"\b({_MONTH_NAMES})\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b")
_HAS_TIME = re.compile(
    rf"{_YEAR}|\b({_MONTH_NAMES})\b|\b(?i:last|this|next)\s+(?i:week|month|year|decade|century)\b"
    r"|\b(?i:yesterday|today|decades?|centuries)\b",
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|dozens|hundred|hundreds|thousand|"
    "thousands|million|millions|billion|billions|percent|per cent|half|third|quarter|tens of"
)
_HAS_QUANTITY = re.compile(rf"(?<![\d.])(?!{_YEAR})\d[\d,.]*|%|\b({_NUMBER_WORDS})\b", re.I)


# "When Napoleon entered Moscow, whom did he expect an offer from?": a clause
# of time, then the question it qualifies; the question asks who, not when.
_WHEN_CLAUSE = re.compile(r"^\s*when\b[^,?]*,.*\b(who|whom|whose|what|which|where|why|how)\b", re.I)


@lru_cache(maxsize=8192)  # read by four steps of each ask (the rules, the reader, the probability, the short answer)
def answer_type(question: str) -> str | None:
    """"month", "time" or "quantity" when the question asks for one; else None."""
    if _ASKS_MONTH.search(question):
        return "month"
    if _ASKS_QUANTITY.search(question):
        return "quantity"
    if _ASKS_TIME.search(question) and not _WHEN_CLAUSE.search(question):
        return "time"
    return None


def has_answer_type(text: str, kind: str) -> bool:
    """Whether `text` holds the kind of answer the question asks for."""
    pattern = {"month": _HAS_MONTH, "time": _HAS_TIME, "quantity": _HAS_QUANTITY}[kind]
    return bool(pattern.search(text))


# "It was one of the first countries to recognise Kosovo", "they met one
# another": the word "one", but no count of anything.
_ONE_NOT_A_COUNT = re.compile(r"\bone\s+(?:of|another)\b", re.I)


# Times before 1800 and in other words than a year or a month: "in 1644",
# "330 BC", "AD 79", "the 13th century", "3000 years ago", "the early
# seventies". has_answer_type's years start at 1800, so a when-question about
# the Crimean War's end (1856) passed but one about Roger Williams's 1644 book
# abstained ("they do not give the date it asks for").
_ORDINALS = ("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
             "fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty-first")
_OTHER_TIME = re.compile(
    r"\b1\d{3}s?\b"
    r"|\b\d{1,4}\s*(?:AD|BC|BCE|CE|A\.D\.|B\.C\.)(?!\w)|\b(?:AD|A\.D\.)\s*\d{1,4}\b"
    rf"|\b(?:\d{{1,2}}(?:st|nd|rd|th)|{_ORDINALS})[\s-]+centur(?:y|ies)\b"
    r"|\b\d[\d,]*\s+(?:years?|decades?|centuries|millennia)\s+ago\b"
    r"|\b(?:twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b",
    re.I,
)


# A year as written: "1851", a decade ("the 1990s"), the years of a range ("2011/12",
# "1992–1998"); not the digits of "1,257" or "12.1851". The years 1000-2099:
# a bare three-digit number is a year as rarely as a four-digit one is not.
_WRITTEN_YEAR = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(s\b)?(?:\s*[–—/-]\s*(\d{4}|\d{2})(?!\d))?(?!\d|[.,]\d)")
# A range longer than this is read as its two ends only ("1066-1966").
_LONGEST_RANGE = 50


# A four-digit number that counts rather than dates: after "per", "about" ...
# ("per 1000 people"), or before a unit or a plural noun ("1000 square miles",
# "1500 soldiers"; "the 1990 elections" is lost with them, which only leaves a
# question unchecked).
_COUNT_BEFORE = re.compile(r"\b(?:per|every|about|approximately|around|nearly|almost|over|some|than)\s*$", re.I)
_COUNT_AFTER = re.compile(r"^\s+(?:square|sq|cubic|km|mi|ft|m|kg|[a-z]+s)\b")


def question_years(question: str) -> list[str]:
    """The years, decades and ranges of years a question names, as written,
    each once, less the numbers it uses as counts."""
    return list(dict.fromkeys(
        m.group(0).strip() for m in _WRITTEN_YEAR.finditer(question)
        if not _COUNT_BEFORE.search(question, 0, m.start()) and not _COUNT_AFTER.match(question[m.end():])
    ))


def years_of(text: str) -> frozenset[str]:
    """The years a text names, the years inside a range or decade it names
    included ("the 1990s" holds 1995)."""
    out = set()
    for m in _WRITTEN_YEAR.finditer(text):
        out |= _years_in(m)
    return frozenset(out)


def _years_in(m: re.Match) -> set[str]:
    first, decade, second = m.groups()
    out = {first}
    if decade and first.endswith("0"):
        out.update(str(int(first) + k) for k in range(1, 10))
    if second:
        last = int(first[:2] + second if len(second) == 2 else second)
        if int(first) < last <= int(first) + _LONGEST_RANGE:
            out.update(str(y) for y in range(int(first) + 1, last + 1))
        elif len(second) == 4:
            out.add(second)
    return out


def gives_answer_type(text: str, kind: str) -> bool:
    """has_answer_type, except that "one of" and "one another" are not a
    quantity: the extractive answer's test of a lead (rag/answer.py), where a
    "How many countries ...?" led by "one of the first countries to ..." quoted
    a sentence without the number; and that a time is also one before 1800 or
    in words (_OTHER_TIME). has_answer_type itself is left as it is: the
    reading model's weights (rag/reader.py) were fitted with it.

    The wider times were measured on rag.train_answer's training records
    (SQuAD training articles 40-103, 2,304 answerable questions): the
    date-or-number rule's false abstentions fell from 64 to 31, while it
    stopped 3 fewer of 812 generated near misses, 2 fewer of 600 out-of-corpus
    and 12 fewer of 2,109 answer-removed questions (left to the gate)."""
    if kind == "quantity":
        text = _ONE_NOT_A_COUNT.sub(" ", text)
    elif kind == "time" and _OTHER_TIME.search(text):
        return True
    return has_answer_type(text, kind)

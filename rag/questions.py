"""Check a question before any work is done, and classify what needs a note.

The checks here are cheap and run on every question: length limits, the
language of the question (the articles and the model are English), and
instructions smuggled into a question ("ignore the articles and ...").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import QueryError

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Frequent short words of English and of languages a reader of these articles
# is likely to type in. A question made of the others' words and none of
# English's is not English, whatever its topic words are.
_ENGLISH = frozenset(
    "a an the is are was were be been do does did what who whom whose which when where why how "
    "of in on at to for from by with about and or not no yes has have had will would can could "
    "should this that these those it its he she they his her their there than then did".split()
)
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
    if not isinstance(question, str):
        raise QueryError(f"question must be text, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise QueryError("question is empty: type a question about the articles")
    if len(text) > limit:
        raise QueryError(
            f"question is {len(text):,} characters long, over the limit of {limit:,}: shorten it to its point"
        )
    return text


def looks_english(text: str) -> bool:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 3:
        return True  # too short to tell; a name or two reads the same in any language
    english = sum(w in _ENGLISH for w in words)
    other = sum(w in _OTHER for w in words)
    return english >= other or english >= 2


def classify(question: object, limit: int) -> QuestionCheck:
    text = check_question(question, limit)
    return QuestionCheck(text, looks_english(text), bool(_INSTRUCTIONS.search(text)))


# --- names the corpus never mentions ---------------------------------------------

_NAME = re.compile(r"\b[A-ZÀ-ÞĀ-Ž][\w’'.-]*(?:\s+(?:of\s+|the\s+)?[A-ZÀ-ÞĀ-Ž][\w’'.-]*)*", re.UNICODE)
_POSSESSIVE = re.compile(r"[’']s$")


def unknown_names(question: str, knows: Callable[[str], bool]) -> list[str]:
    """Capitalised names in the question with a word the corpus never uses.

    A question about Greece or FIFA cannot be answered from articles that never
    name them, however close the nearest passage scores. `knows(word)` says
    whether the corpus uses a word (after the index's folding and stemming).
    Capitalised question words and stop words never count as names.
    """
    names = []
    for match in _NAME.finditer(question):
        words = [_POSSESSIVE.sub("", w).strip(".-’'") for w in match.group(0).split()]
        if match.start() == len(question) - len(question.lstrip()) and len(words) == 1 and not words[0].isupper():
            continue  # a lone capital at the start is the sentence's, not a name's ("Besides ...")
        content = [w for w in words if w and w.lower() not in _ENGLISH and w.lower() not in ("of", "the")]
        if content and any(not knows(w) for w in content):
            names.append(" ".join(content))
    return names


# --- what kind of answer a question asks for ---------------------------------------

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_ASKS_MONTH = re.compile(r"\b(which|what)\s+(month|day|date)\b|\bexact\s+date\b", re.I)
_ASKS_TIME = re.compile(r"^\s*when\b|\b(which|what|in what)\s+year\b|\bhow long ago\b|\bsince when\b", re.I)
_ASKS_QUANTITY = re.compile(
    r"\bhow\s+(many|much|large|big|long|far)\b|\bpopulation\b|\bwhat\s+(percentage|share|number|amount|proportion)\b",
    re.I,
)
_YEAR = r"\b(1[89]\d\d|20\d\d)s?\b"
_HAS_MONTH = re.compile(rf"\b({_MONTHS})\b|\b\d{{1,2}}\s+({_MONTHS})\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b", re.I)
_HAS_TIME = re.compile(
    rf"{_YEAR}|\b({_MONTHS})\b|\b(last|this|next)\s+(week|month|year|decade|century)\b|\b(yesterday|today|decades?|centuries)\b",
    re.I,
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|dozens|hundred|hundreds|thousand|"
    "thousands|million|millions|billion|billions|percent|per cent|half|third|quarter|tens of"
)
_HAS_QUANTITY = re.compile(rf"(?<![\d.])(?!{_YEAR})\d[\d,.]*|%|\b({_NUMBER_WORDS})\b", re.I)


def answer_type(question: str) -> str | None:
    """"month", "time" or "quantity" when the question asks for one; else None."""
    if _ASKS_MONTH.search(question):
        return "month"
    if _ASKS_QUANTITY.search(question):
        return "quantity"
    if _ASKS_TIME.search(question):
        return "time"
    return None


def has_answer_type(text: str, kind: str) -> bool:
    """Whether `text` holds the kind of answer the question asks for."""
    pattern = {"month": _HAS_MONTH, "time": _HAS_TIME, "quantity": _HAS_QUANTITY}[kind]
    return bool(pattern.search(text))

"""Check a question before any work is done, and classify what needs a note.

The checks here are cheap and run on every question: length limits, the
language of the question (the articles and the model are English), and
instructions smuggled into a question ("ignore the articles and ...").
"""

from __future__ import annotations

import re
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

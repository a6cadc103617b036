"""Earlier turns of a conversation, and follow-up questions made searchable.

A follow-up such as "When did he visit Serbia?" names nobody; searched alone
it finds any visit to Serbia. Without a language model, the question is
expanded with the words of the previous question that carry its topic, which
is enough for both BM25 and the embedding to find the same passages as the
full question would.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import QueryError
from .words import CONVERSATION_FILLER, FUNCTION_WORDS


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


def normalise_history(history: Iterable | None) -> list[Turn]:
    """Accept earlier turns as plain strings (earlier questions), as
    {"role", "content"} messages, or as (question, answer) pairs."""
    if history is None:
        return []
    if isinstance(history, (str, bytes, dict)):
        kind = "message" if isinstance(history, dict) else "string"
        raise QueryError(f"history must be a list of earlier turns, not a single {kind}: wrap it in a list")
    turns: list[Turn] = []
    for item in history:
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, str):
            turns.append(Turn("user", item))
        elif isinstance(item, dict) and isinstance(item.get("content"), str) and item.get("role") in ("user", "assistant"):
            turns.append(Turn(item["role"], item["content"]))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            question, answer = item
            turns.append(Turn("user", question))
            if isinstance(answer, str):  # None: the question was not answered yet
                turns.append(Turn("assistant", answer))
        else:
            raise QueryError(
                "history must hold earlier questions as strings, {'role': 'user'|'assistant', 'content': ...} "
                f"messages, or (question, answer) pairs; got {type(item).__name__}"
            )
    return turns


_REFERRING = frozenset(
    "he him his she her hers it its they them their theirs this that these those there then "
    "such same former latter".split()
)
_STOP = FUNCTION_WORDS | CONVERSATION_FILLER
_WORD = re.compile(r"[\w’'-]+", re.UNICODE)


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in _STOP and w.lower() not in _REFERRING]


# "What is Balkanization?", "Who is Erdogan?": a bare term and nothing after it.
# "What was the agreement for?" is not one: "the agreement" points back.
_DEFINITION = re.compile(r"^\s*(what|who)\s+(is|are|was|were)\s+(an?\s+)?[\w’'-]{3,}\s*\?*\s*$", re.I)


def is_follow_up(question: str) -> bool:
    """A question that leans on an earlier one: it refers back, or says too
    little to stand alone ("And Albania?", "Why?")."""
    words = [w.lower() for w in _WORD.findall(question)]
    if any(w in _REFERRING for w in words):
        return True
    lowered = question.lower().lstrip()
    if lowered.startswith(("and ", "what about", "how about", "but ")):
        return True
    if _DEFINITION.match(question):
        return False  # "What is Balkanization?" names its subject: it stands alone
    return len(content_words(question)) <= 1


def contextualise(question: str, history: list[Turn]) -> str:
    """The text to search for: the question, plus the topic of the previous
    question when this one is a follow-up."""
    earlier = [t.content for t in history if t.role == "user" and t.content.strip()]
    if not earlier or not is_follow_up(question):
        return question
    # Walk back through a chain of follow-ups ("And to Kosovo?", "And to
    # Bosnia?") to the question that set the topic, keeping the words of each.
    topic: list[str] = []
    for turn in reversed(earlier):
        topic = content_words(turn) + [w for w in topic if w not in content_words(turn)]
        if not is_follow_up(turn):
            break
    return f"{question} {' '.join(topic)}" if topic else question

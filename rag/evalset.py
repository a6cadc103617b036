"""Question sets for evaluation: the JSON Lines format, read and validated.

One question per line:

    {"id": "q01", "question": "...", "articles": ["000_b8d8672fd89b6af8"], "facts": [["Osmani"], ["Board of Peace"]]}
    {"id": "q02", "question": "When did he visit Serbia?", "history": ["What did Erdogan do in 2017?"], ...}
    {"id": "u01", "question": "...", "answerable": false, "articles": [], "facts": []}

`articles`: ids of the articles that answer the question (any one counts).
`facts`: groups of alternative strings; an answer covers a group when it
holds any one of them. `history`: earlier user questions (optional).
`answerable`: default true. Blank lines are skipped.

Every line is checked before anything runs, and every bad line is reported
with its number: a typo on line 80 should not surface after 79 questions ran.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EvalError

KEYS = ("id", "question", "history", "articles", "facts", "answerable")
# A file with hundreds of bad lines is the wrong file; the first ones say enough.
MAX_REPORTED = 10


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    articles: tuple[str, ...] = ()  # any one of these answers it
    facts: tuple[tuple[str, ...], ...] = ()  # groups of alternatives
    history: tuple[str, ...] = ()  # earlier user questions, oldest first
    answerable: bool = True
    line: int = 0  # 1-based line in the question file, for messages


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(s, str) and s.strip() for s in value)


def parse_question(data: Any, line: int = 0) -> Question:
    """One question from a decoded JSON line; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}: valid keys are {', '.join(KEYS)}")
    for key in ("id", "question"):
        if key not in data:
            raise ValueError(f"{key!r} is missing")
        if not isinstance(data[key], str) or not data[key].strip():
            raise ValueError(f"{key!r} must be a non-empty string, not {data[key]!r}")
    answerable = data.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ValueError(f"'answerable' must be true or false, not {answerable!r}")
    articles = data.get("articles", [])
    if not _strings(articles):
        raise ValueError(f"'articles' must be a list of article ids, not {articles!r}")
    facts = data.get("facts", [])
    if not (isinstance(facts, list) and all(_strings(group) and group for group in facts)):
        raise ValueError(f"'facts' must be a list of non-empty lists of strings, like [[\"2017\"], [\"PLO\", \"Palestine Liberation Organization\"]], not {facts!r}")
    history = data.get("history", [])
    if not _strings(history):
        raise ValueError(f"'history' must be a list of earlier questions (strings), not {history!r}")
    if answerable and not articles:
        raise ValueError("an answerable question needs 'articles' (the ids of the articles that answer it)")
    if not answerable and (articles or facts):
        raise ValueError("an unanswerable question (\"answerable\": false) lists no 'articles' and no 'facts'")
    return Question(
        id=data["id"].strip(),
        question=data["question"],
        articles=tuple(articles),
        facts=tuple(tuple(group) for group in facts),
        history=tuple(history),
        answerable=answerable,
        line=line,
    )


def parse_questions(text: str, known_articles: Collection[str] | None = None, source: str = "question file") -> list[Question]:
    """Every question of a JSON Lines text; EvalError listing each bad line.

    known_articles: the corpus's article ids; an id outside them is an error
    (a question whose gold article is missing can never be answered right).
    """
    questions: list[Question] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            errors.append(f"line {number}: not valid JSON ({e.msg} at column {e.colno})")
            continue
        try:
            q = parse_question(data, number)
        except ValueError as e:
            errors.append(f"line {number}: {e}")
            continue
        if q.id in first_line:
            errors.append(f"line {number}: id {q.id!r} is already used on line {first_line[q.id]}")
            continue
        first_line[q.id] = number
        if known_articles is not None:
            unknown = [a for a in q.articles if a not in known_articles]
            if unknown:
                errors.append(
                    f"line {number}: unknown article id(s) {', '.join(map(repr, unknown))} "
                    f"(the corpus holds {', '.join(sorted(known_articles))})"
                )
                continue
        questions.append(q)
    if errors:
        shown = "; ".join(errors[:MAX_REPORTED])
        more = f"; and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise EvalError(f"{source} has {len(errors)} bad line(s): {shown}{more}")
    if not questions:
        raise EvalError(f"{source} holds no questions: write one JSON object per line (see README, Evaluation)")
    return questions


def load_questions(path: str | Path, known_articles: Collection[str] | None = None) -> list[Question]:
    """The questions of a JSON Lines file, validated (see `parse_questions`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalError(f"question file {path} does not exist: pass a JSON Lines file such as eval/questions.jsonl") from None
    except IsADirectoryError:
        raise EvalError(f"{path} is a folder: pass a JSON Lines question file") from None
    except UnicodeDecodeError as e:
        raise EvalError(f"question file {path} is not valid UTF-8 (bad byte at offset {e.start}): re-save it as UTF-8") from e
    except OSError as e:
        raise EvalError(f"question file {path} cannot be read ({e.strerror})") from e
    return parse_questions(text, known_articles, source=str(path))

"""Question sets for evaluation: the JSON Lines format, read and validated.

One question per line:

    {"id": "q01", "question": "...", "articles": ["000_b8d8672fd89b6af8"], "facts": [["Osmani"], ["Board of Peace"]]}
    {"id": "q02", "question": "When did he visit Serbia?", "history": ["What did Erdogan do in 2017?"], ...}
    {"id": "u01", "question": "...", "answerable": false, "articles": [], "facts": []}

`articles`: ids of the articles that answer the question (any one counts).
`facts`: groups of alternative strings; an answer covers a group when it
holds any one of them. `history`: earlier user questions (optional).
`answerable`: default true. `answers`: gold short answers, SQuAD style
(any one is right; scored by exact match, token F1 and passage-answer@k).
`kind`: of an unanswerable question, "out_of_corpus", "near_miss" or
"off_topic" (abstention is reported per kind). `about`: for reading reports,
the articles an unanswerable question is near to. Blank lines are skipped.

Every line is checked before anything runs, and every problem of every bad
line (shape, duplicate id, unknown article id) is reported at once with its
line number: a typo on line 80 should not surface after 79 questions ran, nor
a second typo after the first was fixed.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EvalError

KEYS = ("id", "question", "history", "articles", "facts", "answerable", "answers", "kind", "about")
ANSWERABLE = "answerable"
UNANSWERABLE = "unanswerable"  # the kind of an unanswerable question that names none
# Kinds of unanswerable question, scored apart (abstention_<kind>):
# out_of_corpus: asked of an article that is not in the corpus;
# near_miss: a detail the article does not give, next to one it gives;
# off_topic: nothing to do with the corpus (the weather, a recipe).
UNANSWERABLE_KINDS = ("out_of_corpus", "near_miss", "off_topic", UNANSWERABLE)
ANSWERABLE_KINDS = (ANSWERABLE,)
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
    answers: tuple[str, ...] = ()  # gold short answers (SQuAD style): any one is right
    kind: str = ANSWERABLE  # see UNANSWERABLE_KINDS
    about: tuple[str, ...] = ()  # articles an unanswerable question is near to (for reading reports)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(s, str) and s.strip() for s in value)


def question_problems(data: Any) -> list[str]:
    """Everything wrong with one decoded JSON line (empty when it is a valid
    question): all of it at once, so one edit fixes the line."""
    if not isinstance(data, dict):
        return [f"expected a JSON object, got {type(data).__name__}"]
    problems = []
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(repr, unknown))}: valid keys are {', '.join(KEYS)}")
    for key in ("id", "question"):
        if key not in data:
            problems.append(f"{key!r} is missing")
        elif not isinstance(data[key], str) or not data[key].strip():
            problems.append(f"{key!r} must be a non-empty string, not {data[key]!r}")
    answerable = data.get("answerable", True)
    if not isinstance(answerable, bool):
        problems.append(f"'answerable' must be true or false, not {answerable!r}")
        answerable = True
    articles = data.get("articles", [])
    if not _strings(articles):
        problems.append(f"'articles' must be a list of article ids, not {articles!r}")
    facts = data.get("facts", [])
    if not (isinstance(facts, list) and all(_strings(group) and group for group in facts)):
        problems.append(f"'facts' must be a list of non-empty lists of strings, like [[\"2017\"], [\"PLO\", \"Palestine Liberation Organization\"]], not {facts!r}")
    answers = data.get("answers", [])
    if not _strings(answers):
        problems.append(f"'answers' must be a list of gold short answers (strings), like [\"1867\", \"in 1867\"], not {answers!r}")
    history = data.get("history", [])
    if not _strings(history):
        problems.append(f"'history' must be a list of earlier questions (strings), not {history!r}")
    about = data.get("about", [])
    if not _strings(about):
        problems.append(f"'about' must be a list of article ids, not {about!r}")
    kind = data.get("kind")
    kinds = ANSWERABLE_KINDS if answerable else UNANSWERABLE_KINDS
    if kind is not None and kind not in kinds:
        problems.append(
            f"'kind' of an {'' if answerable else 'un'}answerable question must be one of {', '.join(kinds)}, not {kind!r}"
        )
    if answerable and not articles:
        problems.append("an answerable question needs 'articles' (the ids of the articles that answer it)")
    if not answerable and (articles or facts or answers):
        problems.append("an unanswerable question (\"answerable\": false) lists no 'articles', 'facts' or 'answers'")
    return problems


def parse_question(data: Any, line: int = 0) -> Question:
    """One question from a decoded JSON line; ValueError says everything that is wrong."""
    problems = question_problems(data)
    if problems:
        raise ValueError("; ".join(problems))
    answerable = data.get("answerable", True)
    return Question(
        id=data["id"].strip(),
        question=data["question"],
        articles=tuple(data.get("articles", [])),
        facts=tuple(tuple(group) for group in data.get("facts", [])),
        history=tuple(data.get("history", [])),
        answerable=answerable,
        line=line,
        answers=tuple(data.get("answers", [])),
        kind=data.get("kind") or (ANSWERABLE if answerable else UNANSWERABLE),
        about=tuple(data.get("about", [])),
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
        # Every check of every stage runs on every line (shape, duplicate id,
        # article ids), so a single run lists all there is to fix.
        problems = question_problems(data)
        qid = data.get("id") if isinstance(data, dict) else None
        if isinstance(qid, str) and qid.strip():
            if qid.strip() in first_line:
                problems.append(f"id {qid.strip()!r} is already used on line {first_line[qid.strip()]}")
            else:
                first_line[qid.strip()] = number
        if known_articles is not None and isinstance(data, dict):
            ids = [a for key in ("articles", "about") if _strings(data.get(key, [])) for a in data.get(key, [])]
            unknown = list(dict.fromkeys(a for a in ids if a not in known_articles))
            if unknown:
                problems.append(
                    f"unknown article id(s) {', '.join(map(repr, unknown))} "
                    f"(the corpus holds {_some(known_articles)})"
                )
        if problems:
            errors.append(f"line {number}: {'; '.join(problems)}")
            continue
        questions.append(parse_question(data, number))
    if errors:
        shown = "; ".join(errors[:MAX_REPORTED])
        more = f"; and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise EvalError(f"{source} has {len(errors)} bad line(s): {shown}{more}")
    if not questions:
        raise EvalError(f"{source} holds no questions: write one JSON object per line (see README, Evaluation)")
    return questions


def _some(ids: Collection[str], shown: int = 8) -> str:
    """The corpus's ids for a message; a big corpus by its first few."""
    ordered = sorted(ids)
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return ", ".join(ordered[:shown]) + more


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

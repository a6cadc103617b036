"""SQuAD articles as corpora and question sets, for training and checking the answer models.

The split rule shared by the project: sort the 440 articles of the shared
SQuAD train file by sha256(title); articles 0-19 are the evaluation corpus,
20-39 the source of out-of-corpus evaluation questions, 40 and later the only
ones that training and calibration may read. `articles(start, stop)` refuses
a range that crosses that line in the wrong direction only when asked to
(`for_training=True`), so that training code cannot read evaluation articles
by mistake.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import RagError
from .sparse import tokenize

SQUAD_FILE = Path("/work/shared/squad-train/squad-train-v1.0.jsonl.gz")
FIRST_TRAINING_ARTICLE = 40


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # empty: not answerable from the corpus
    kind: str  # "answerable" | "out_of_corpus" | "near_miss"
    article: str  # the title of the article it was written on
    source: str = ""  # for a near miss: the question it was made from


@dataclass(frozen=True)
class SquadArticle:
    title: str
    paragraphs: tuple[str, ...]
    questions: tuple[tuple[str, tuple[str, ...]], ...]  # (question, answers)

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


def file_sha256(path: Path = SQUAD_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=2)
def _all(path: Path = SQUAD_FILE) -> tuple[SquadArticle, ...]:
    if not path.is_file():
        raise RagError(f"SQuAD file {path} does not exist: the shared data belongs there (see issue 11)")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            a = json.loads(line)
            paragraphs = tuple(p["context"] for p in a["paragraphs"])
            questions = tuple(
                (q["question"].strip(), tuple(str(x) for x in q["answers"])) for p in a["paragraphs"] for q in p["qas"]
            )
            out.append(SquadArticle(a["title"], paragraphs, questions))
    out.sort(key=lambda a: hashlib.sha256(a.title.encode("utf-8")).hexdigest())
    return tuple(out)


def articles(start: int, stop: int, *, for_training: bool = False, path: Path = SQUAD_FILE) -> list[SquadArticle]:
    """Articles start..stop-1 in the shared order."""
    if for_training and start < FIRST_TRAINING_ARTICLE:
        raise RagError(
            f"articles {start}-{stop - 1} include evaluation articles (0-39): training may use {FIRST_TRAINING_ARTICLE} and later only"
        )
    return list(_all(path)[start:stop])


def article_id(index: int, title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]
    return f"sq{index:03d}_{slug}"


def write_corpus(folder: Path, numbered: Sequence[tuple[int, SquadArticle]]) -> dict[str, str]:
    """Write the articles as .txt files (title line, then the paragraphs) plus
    metadata.json; returns title -> article id. Files already equal are not rewritten."""
    folder.mkdir(parents=True, exist_ok=True)
    ids, meta = {}, {}
    for index, a in numbered:
        aid = article_id(index, a.title)
        ids[a.title] = aid
        meta[aid] = {"title": a.title, "publisher": "Wikipedia (SQuAD 1.0, CC BY-SA 4.0)"}
        path = folder / f"{aid}.txt"
        text = a.title + "\n\n" + a.text + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    meta_text = json.dumps(meta, indent=1, sort_keys=True)
    mpath = folder / "metadata.json"
    if not mpath.is_file() or mpath.read_text(encoding="utf-8") != meta_text:
        mpath.write_text(meta_text, encoding="utf-8")
    return ids


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def sample_questions(a: SquadArticle, n: int, kind: str = "answerable", salt: str = "") -> list[SquadQuestion]:
    """n questions of the article, a deterministic sample (by hash, not by position)."""
    seen, unique = set(), []
    for q, ans in a.questions:
        if q and ans and q not in seen:
            seen.add(q)
            unique.append((q, ans))
    unique.sort(key=lambda qa: _key(salt, a.title, qa[0]))
    return [
        SquadQuestion(_key(kind, a.title, q)[:12], q, ans if kind == "answerable" else (), kind, a.title)
        for q, ans in unique[:n]
    ]


# --- near-miss questions -------------------------------------------------------------------------

_NAME_RUN = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'’-]*){0,3}")
_YEAR = re.compile(r"\b(1[0-9]\d\d|20\d\d)\b")
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:,\d{3})*(?:\.\d+)?(?![\w])")
_POSSESSIVE = re.compile(r"['’]s?$")
_START = re.compile(r"(?:^|[.!?]\s+)[\"“'(]*")
_QUESTION_WORDS = {"What", "Who", "When", "Where", "Which", "Why", "How", "In", "On", "At", "The", "A", "An", "During",
                   "After", "Before", "From", "To", "For", "By", "Of", "Is", "Was", "Were", "Are", "Did", "Does", "Do"}


def _spans(text: str) -> list[tuple[str, str]]:
    """(kind, surface) of the names, years and numbers in `text`, in order."""
    out = []
    starts = {m.end() for m in _START.finditer(text)}
    for m in _NAME_RUN.finditer(text):
        words = m.group(0).split()
        if m.start() in starts or words[0] in _QUESTION_WORDS:
            words = words[1:]
        while words and words[0] in ("of", "the", "de"):
            words = words[1:]
        if words:
            words[-1] = _POSSESSIVE.sub("", words[-1])
        if words and words[-1] and words[0] not in _QUESTION_WORDS:
            out.append(("name", " ".join(words)))
    for m in _YEAR.finditer(text):
        out.append(("year", m.group(0)))
    for m in _NUMBER.finditer(text):
        if not _YEAR.fullmatch(m.group(0)):
            out.append(("number", m.group(0)))
    return out


def names_in(a: SquadArticle) -> list[str]:
    """The article's names (capitalised runs), first occurrence first."""
    return list(dict.fromkeys(surface for kind, surface in _spans(a.text) if kind == "name"))


def near_misses(
    a: SquadArticle, sources: Sequence[SquadQuestion], limit: int, coverage: float = 0.5,
    foreign: Sequence[str] | None = None,
) -> list[SquadQuestion]:
    """Questions made from answerable ones by swapping one name, year or number
    for another of the same kind from the same article, kept only when no
    sentence of the article holds the new detail together with `coverage` or
    more of the question's other words (the article then does not answer it).

    This check is lexical and so approximate: it keeps a question the article
    answers in other words, and drops one whose words merely co-occur.

    `foreign`: names to swap in instead, taken from outside the corpus (a
    question about something the articles never mention, next to what they
    do: "Has Israel signed a defence agreement with Slovenia?")."""
    text = a.text
    pool: dict[str, list[str]] = {}
    for kind, surface in _spans(text):
        if surface not in pool.setdefault(kind, []):
            pool[kind].append(surface)
    if foreign is not None:
        pool = {"name": list(foreign)}
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    sentence_words = [set(w) for w in tokenize(sentences)]
    out: list[SquadQuestion] = []
    for q in sources:
        if len(out) >= limit:
            break
        spans = _spans(q.question)
        spans.sort(key=lambda s: _key(q.question, s[1]))
        made = None
        for kind, surface in spans[:2]:
            old = set(tokenize([surface])[0])
            if not old:
                continue
            rest = set(tokenize([q.question.replace(surface, " ")])[0]) - old
            if len(rest) < 2:
                continue
            options = [s for s in pool.get(kind, []) if s != surface and not (set(tokenize([s])[0]) & old)]
            options.sort(key=lambda s: _key(q.question, surface, s))
            for new in options[:6]:
                new_words = set(tokenize([new])[0])
                if not new_words or new.lower() in q.question.lower():
                    continue
                answered = any(
                    new_words <= words and len(rest & words) >= coverage * len(rest) for words in sentence_words
                )
                if not answered:
                    made = q.question.replace(surface, new, 1)
                    break
            if made:
                break
        if made:
            tag = "near_miss_foreign" if foreign is not None else "near_miss"
            out.append(SquadQuestion(_key(tag, a.title, made)[:12], made, (), "near_miss", a.title, q.question))
    return out


# --- SQuAD's answer normalisation ---------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's evaluation script)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    t = f" {normalise(text)} "
    return any(n and f" {n} " in t for n in (normalise(a) for a in answers))


"""The short answer: the exact words of a cited sentence that answer a factoid question.

"When was St. John's incorporated?" is answered by a sentence; the short
answer is "1888", the span of that sentence the question asks for. It is
found in two steps:

1. candidates: spans of the cited sentences shaped like answers (numbers with
   their units, dates and years, runs of capitalised words with and without a
   possessive "'s", lists of three or more, the words between stop words, the
   phrase after a preposition), minus any span made only of words the
   question already has;
2. a learned scorer (logistic regression over named features: what the
   question asks for and what the span looks like, how close the span sits to
   the question's words in its sentence and on which side of them, how it
   compares with the sentence's other candidates, where it is) gives each
   candidate its probability of being exactly the answer. The best one is the
   short answer when that probability reaches the threshold chosen on
   held-out articles; else there is none.

The weights are plain JSON (rag/models/short_answer.json, with a manifest of
the data, features and metrics); `python -m rag.short_train` retrains them.
Inference is a dictionary look-up per feature: no model, no embedding, a
few milliseconds a question.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .sentences import mask_footnotes, split_sentences
from .types import Answer, Article, ShortAnswer
from .words import MEASURE_POINTS, MEASURE_WORDS

MODEL_PATH = Path(__file__).parent / "models" / "short_answer.json"

# --- tokens -----------------------------------------------------------------------

# Numbers keep their thousands separators, decimals, a currency sign and a
# suffix ("$1.5", "214,285", "1990s", "20th", "45%"); words keep inner
# apostrophes, hyphens and dots ("O'Brien", "U.S"). A possessive "'s" is a
# token of its own ("St. John's" is "St", ".", "John", "'s"), so "Alexander
# Hamilton" is a span of "Alexander Hamilton's suggestion" (SQuAD's answers
# leave it out; a name that ends in it is still a candidate: see candidates()).
_TOKEN = re.compile(
    r"[$€£¥]?\d+(?:,\d{3})*(?:\.\d+)?(?:%|[a-z]{1,2}\b)?(?:[-–][^\W_]+)*"
    r"|[^\W_]+(?:(?:[’'](?![sS]\b)|[.\-])[^\W_]+)*|[’'][sS]\b|\S",
    re.UNICODE,
)


@dataclass(frozen=True)
class Token:
    text: str
    start: int  # offsets into the article text
    end: int
    lower: str


def tokenize(text: str, offset: int = 0) -> list[Token]:
    return [Token(m.group(0), offset + m.start(), offset + m.end(), m.group(0).lower()) for m in _TOKEN.finditer(text)]


_STOP = frozenset(
    "a an the is are was were be been being am do does did done doing have has had having "
    "of in on at to for from by with about into onto over under after before during since until "
    "through between among against within without upon via per than as "
    "and or but nor so yet if then because while although though whether "
    "what who whom whose which when where why how "
    "it its it's he him his she her hers they them their theirs we us our you your i me my "
    "this that these those there here such same other another each every all any both either neither "
    "some many much more most few less least several "
    "not no also only just very too even still already ever never "
    "can could will would shall should may might must "
    "s 's one".split()
)
_PREPOSITIONS = frozenset(
    "of in on at to for from by with about into onto over under after before during since until "
    "through between among against within without upon via near across along around behind beyond "
    "throughout toward towards as like".split()
)
_ARTICLES = frozenset(("a", "an", "the"))
# Words that join the parts of one name: "Bank of America", "Newfoundland and Labrador".
_NAME_JOINERS = frozenset(("of", "the", "de", "la", "le", "del", "da", "van", "von", "and", "&", "for"))
_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion trillion dozen half quarter third first second".split()
)
_SCALES = frozenset("hundred thousand million billion trillion percent %".split())
_APPROXIMATELY = frozenset("about around over under nearly almost approximately roughly some only least".split())
# A "sentence" longer than this (a table or a list flattened into one line) is
# read only this far: the candidates' pairwise comparisons grow with its square.
_MAX_SENTENCE_TOKENS = 300
_MAX_SPAN = 10  # tokens; longer SQuAD factoid answers are rare and such spans are rarely right
_MAX_LIST = 25  # tokens of a list of names or noun phrases, commas included


def _is_number(t: Token) -> bool:
    return t.text[0].isdigit() or t.text[0] in "$€£¥" and len(t.text) > 1 or t.lower in _NUMBER_WORDS


def _is_year(t: Token) -> bool:
    return bool(re.fullmatch(r"1\d{3}s?|20\d\ds?", t.text))


def _is_word(t: Token) -> bool:
    return t.text[0].isalnum() or t.text[0] in "$€£¥"


def _is_capital(t: Token) -> bool:
    return t.text[0].isupper()


def _is_possessive(t: Token) -> bool:
    return t.lower in ("'s", "’s")


@lru_cache(maxsize=100_000)  # asked ~400 times a question for the same few words (0.3 ms of each ask)
def _stem(word: str) -> str:
    """A crude stem that joins a question's words to the sentence's ("visited", "visits")."""
    word = word.lower().strip("’'")
    for suffix in ("'s", "’s", "ies", "ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# --- the question -------------------------------------------------------------------

_HOW_QUANTITY = frozenset("many much long far old large big tall high often fast deep wide heavy".split())
_WH = ("who", "whom", "whose", "when", "where", "which", "what", "why", "how")
_SEVERAL = frozenset("two three four five six both".split())


@dataclass(frozen=True)
class QuestionFrame:
    wh: str  # who, when, where, which, what, how_many, how, why, other
    head: str  # the word that says what is asked for ("year" in "In what year ..."), or ""
    words: frozenset[str]  # the question's content words, stemmed
    answer_type: str | None  # rag.questions.answer_type: month, time, quantity or None
    # The content words said before the question word ("The treaty was signed
    # where?"): with them the answer tends to follow the matched words in the
    # sentence; with the words after it ("Who signed the treaty?"), to precede them.
    before_wh: frozenset[str] = frozenset()
    # "Which countries ...", "Name three types ...": the answer may be a list.
    several: bool = False
    # "What is the bond angle ...", "At what temperature ...": a measured
    # quantity is asked for (the phrase after "what" ends in a MEASURE_WORDS noun).
    measure: bool = False

    @property
    def factoid(self) -> bool:
        """Whether the question asks for a name, a date, a place or a number
        (not a reason or a manner, whose answers are clauses, not spans)."""
        return self.wh not in ("why", "how")


def question_frame(question: str) -> QuestionFrame:
    from .questions import answer_type

    tokens = [t.lower for t in tokenize(question)]
    wh, head, wh_at, raw_head = "other", "", 0, ""
    for i, w in enumerate(tokens):
        if w in _WH:
            wh_at = i
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if w == "how":
                wh = "how_many" if nxt in _HOW_QUANTITY else "how"
                head = tokens[i + 2] if wh == "how_many" and i + 2 < len(tokens) else ""
            else:
                wh = {"whom": "who", "whose": "who"}.get(w, w)
                # "What year", "which river", "what was the name of ...": the
                # first content word after it says what is asked for. (After
                # "who", "when" ... it is the subject, not the kind of answer.)
                for later in tokens[i + 1 : i + 5] if wh in ("what", "which") else ():
                    if later not in _STOP and later.isalpha():
                        head = raw_head = later
                        break
            break
    words = frozenset(_stem(t) for t in tokens if t not in _STOP and t[:1].isalnum())
    before = frozenset(_stem(t) for t in tokens[:wh_at] if t not in _STOP and t[:1].isalnum())
    several = raw_head.endswith("s") and not raw_head.endswith("ss") or any(t in _SEVERAL for t in tokens)
    measure = wh in ("what", "which") and _asks_a_measure(tokens[wh_at + 1 :])
    return QuestionFrame(wh, _stem(head) if head else "", words, answer_type(question), before, several, measure)


# Where the phrase after "what" ends: at a verb of the question or a preposition.
_PHRASE_ENDS = frozenset(
    "is was are were be been does did do will would can could has had have "
    "of in for at per on when that to by from with as than".split()
)


def _asks_a_measure(after_wh: Sequence[str]) -> bool:
    """Whether the phrase after "what"/"which" ("is the bond angle", "temperature",
    "was the focal depth") ends in a noun that names a measured quantity."""
    i = 1 if after_wh[:1] and after_wh[0] in ("is", "was", "are", "were") else 0
    i += 1 if after_wh[i : i + 1] and after_wh[i] in ("the", "a", "an") else 0
    phrase: list[str] = []
    for w in after_wh[i : i + 4]:
        if w in _PHRASE_ENDS or not w[:1].isalnum():
            break
        phrase.append(w)
    if not phrase:
        return False
    last = phrase[-1]
    return last in MEASURE_WORDS or (last == "point" and len(phrase) > 1 and phrase[-2] in MEASURE_POINTS)


# --- candidates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    first: int  # token index of the span's first token in its sentence
    last: int  # token index of its last token (inclusive)
    kinds: frozenset[str]  # num, year, date, name, chunk, prep


def _add_affixes(add, first: int, last: int, kind: str) -> None:
    """The run's shorter heads and tails: "Deep South" of "American Deep South".
    (Only for names: for lower-case runs they added candidates faster than
    right answers, and lowered held-out F1 by a point.)"""
    for k in range(first + 1, min(last, first + _MAX_SPAN) + 1):
        add(k, last, kind)
    for k in range(max(first, last - _MAX_SPAN), last):
        add(first, k, kind)


def candidates(tokens: Sequence[Token], frame: QuestionFrame) -> list[Candidate]:
    """Answer-shaped spans of one sentence, each once, none made only of question words."""
    return [f.candidate for f in parsed(tokens).spans if _kept(f, frame)]


def _kept(f: "SpanFacts", frame: QuestionFrame) -> bool:
    # The question's own words do not answer it: a span made only of them is no candidate.
    words = frame.words
    return not f.content_stems or not all(s in words for s in f.content_stems)


def _answer_shaped(tokens: Sequence[Token]) -> list[tuple[tuple[int, int], set[str]]]:
    """Every answer-shaped span of one sentence, (first, last) with its kinds,
    in token order: candidates() before the question's words are dropped."""
    found: dict[tuple[int, int], set[str]] = {}

    def stop(t: Token) -> bool:
        # "May" the month is no stop word; "may" the verb is.
        return t.lower in _STOP and t.lower not in _NUMBER_WORDS and not (t.lower in _MONTHS and _is_capital(t))

    # No span begins or ends on a stop word or a punctuation mark (nor on an
    # article: SQuAD's normalisation drops it anyway). Per token, once: add()
    # below reads it some thirty times a sentence.
    edge = [not _is_word(t) or stop(t) for t in tokens]
    # Words other than stop words: the runs of noun phrases below.
    content = [_is_word(t) and t.lower not in _STOP for t in tokens]

    def add(first: int, last: int, kind: str) -> None:
        while first <= last and edge[first]:
            first += 1
        while last >= first and edge[last]:
            last -= 1
        if first > last or last - first + 1 > _MAX_SPAN:
            return
        found.setdefault((first, last), set()).add(kind)

    n = len(tokens)
    for i, t in enumerate(tokens):
        if _is_number(t):
            # The number, with its scale ("1.5 million") and up to two unit words ("214,285 people").
            end = i
            while end + 1 < n and (tokens[end + 1].lower in _SCALES or _is_number(tokens[end + 1]) and tokens[end + 1].lower not in ("one", "first", "second")):
                end += 1
            add(i, i, "num")
            add(i, end, "num")
            # "between 1910 and 1913", "from 5 to 10": a range is one answer.
            if end + 2 < n and tokens[end + 1].lower in ("and", "to", "-", "–", "or") and _is_number(tokens[end + 2]):
                add(i, end + 2, "num")
                if i and tokens[i - 1].lower in ("between", "from"):
                    found.setdefault((i - 1, end + 2), set()).add("num")  # SQuAD's answers often keep the "between"
            if i and tokens[i - 1].lower in _APPROXIMATELY:
                found.setdefault((i - 1, end), set()).add("num")  # "over 150,000": the modifier is part of the figure
            for extra in (1, 2):
                j = end + extra
                if j < n and _is_word(tokens[j]) and tokens[j].lower not in _STOP:
                    add(i, j, "num")
                else:
                    break
        if _is_year(t):
            add(i, i, "year")
        if t.lower in _MONTHS and _is_capital(t):
            # "July 1, 2015", "July 2015", "1 July 2015", "July 1"
            end = i
            if end + 1 < n and tokens[end + 1].text.isdigit() and len(tokens[end + 1].text) <= 2:
                end += 1
            if end + 1 < n and tokens[end + 1].text == "," and end + 2 < n and _is_year(tokens[end + 2]):
                end += 2
            elif end + 1 < n and _is_year(tokens[end + 1]):
                end += 1
            begin = i - 1 if i and tokens[i - 1].text.isdigit() and len(tokens[i - 1].text) <= 2 else i
            add(begin, end, "date")
    # Runs of capitalised words, joined by "of", "and" ...: the whole run and
    # its parts between joiners.
    i = 0
    while i < n:
        if _is_capital(tokens[i]) and _is_word(tokens[i]) or tokens[i].text[0].isdigit() and i + 1 < n and _is_capital(tokens[i + 1]):
            j = i
            while j + 1 < n and (
                _is_capital(tokens[j + 1]) and _is_word(tokens[j + 1])
                # "St. John's", "Mt. Everest": an abbreviation's dot inside a name
                or tokens[j + 1].text == "." and len(tokens[j].text) <= 3 and j + 2 < n and _is_capital(tokens[j + 2])
                or tokens[j + 1].lower in _NAME_JOINERS and j + 2 < n and _is_capital(tokens[j + 2])
                or tokens[j + 1].text[0].isdigit() and _is_capital(tokens[j])
            ):
                j += 1
            add(i, j, "name")
            if j + 1 < n and _is_possessive(tokens[j + 1]):
                # "St. John's" is a name; "Hamilton's" in "Alexander Hamilton's suggestion" is not
                found.setdefault((i, j + 1), set()).add("name")
            _add_affixes(add, i, j, "name")
            part = i
            for k in range(i, j + 2):
                if k > j or tokens[k].lower in _NAME_JOINERS:
                    if part < k:
                        add(part, k - 1, "name")
                    part = k + 1
            i = j + 1
        else:
            i += 1
    # The words between stop words and punctuation: most noun phrases. With
    # "of" inside ("the feast day of John the Baptist") as a second span.
    runs: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if content[i]:
            j = i
            while j + 1 < n and content[j + 1]:
                j += 1
            runs.append((i, j))
            add(i, j, "chunk")
            i = j + 1
        else:
            i += 1
    for (a, b), (c, d) in zip(runs, runs[1:]):
        between = [t.lower for t in tokens[b + 1 : c]]
        if between and between[0] == "of" and all(w in ("of", "the", "a", "an") for w in between):
            add(a, d, "chunk")
        if between in (["and"], ["or"], [",", "and"]) or between[:1] == ["and"] and all(w in ("and", "the", "a", "an") for w in between):
            add(a, d, "chunk")  # "the arts and sciences": a pair is one answer
    # A list of three or more ("Germany, Italy and Japan", "bishops, abbots,
    # earls, and barons"): SQuAD asks for the whole list ("which countries ...").
    for a in range(len(runs)):
        k = a
        while k + 1 < len(runs):
            between = [t.lower for t in tokens[runs[k][1] + 1 : runs[k + 1][0]] if t.lower not in _ARTICLES]
            if between == [","]:
                k += 1
                continue
            if k > a and between in (["and"], ["or"], [",", "and"], [",", "or"]):
                # The last item may run on into a verb ("... and barons formed"): each end is a candidate.
                for end in range(runs[k + 1][0], runs[k + 1][1] + 1):
                    if end - runs[a][0] < _MAX_LIST:
                        found.setdefault((runs[a][0], end), set()).add("list")
            break
    # After a preposition, the phrase up to the next punctuation mark or
    # preposition: "on [the eastern tip] of ...", "by [Samuel de Champlain]".
    for i, t in enumerate(tokens[:-1]):
        if t.lower in _PREPOSITIONS:
            j = i + 1
            while j < n and j - i <= _MAX_SPAN and _is_word(tokens[j]) and tokens[j].lower not in _PREPOSITIONS and tokens[j].lower not in ("and", "or", "which", "that", "who", "is", "was", "were", "are"):
                j += 1
            add(i + 1, j - 1, "prep")
    return sorted(found.items())


# --- one sentence's work that no question changes ---------------------------------------


class Tokens(tuple):
    """A sentence's tokens (a tuple of Token) that carry their ParsedSentence,
    made on first use: the cited sentences come back question after question
    (_quote_sentences keeps these), and finding their spans, shapes and own
    features was most of the short answer's time."""

    @property
    def parsed(self) -> "ParsedSentence":
        found = self.__dict__.get("_parsed")
        if found is None:
            # Complete when stored: two threads that race only parse it twice.
            found = self.__dict__["_parsed"] = ParsedSentence(self)
        return found


def parsed(tokens: Sequence[Token]) -> "ParsedSentence":
    """The sentence's ParsedSentence: kept with Tokens, made afresh for any other sequence."""
    return tokens.parsed if isinstance(tokens, Tokens) else ParsedSentence(tokens)


# The kept sentences' features are a few thousand names over and over: one
# shared (name, 1.0) each, not a string and a tuple per span (that was 8 times
# the memory of the sentences' tokens). Past the bound the table starts over.
_BINARY: dict[str, tuple[str, float]] = {}
_BINARY_MAX = 100_000


def _binary(name: str) -> tuple[str, float]:
    found = _BINARY.get(name)
    if found is None:
        if len(_BINARY) >= _BINARY_MAX:
            _BINARY.clear()
        found = _BINARY[name] = (name, 1.0)
    return found


_LENGTH_EDGES = (1, 2, 3, 4, 6)  # span lengths, in tokens, that the len= features tell apart


@dataclass(slots=True)
class SpanFacts:
    """What the scorer needs of one answer-shaped span that does not depend on
    the question (its features that mention the question's wh-word are kept
    per wh-word, made on first use)."""

    candidate: Candidate
    index: int  # its place in ParsedSentence.spans
    shape: str
    content_stems: tuple[str, ...]  # of its words other than stop words, repeats kept
    span_stems: tuple[str, ...]
    first_stem: str
    last_stem: str
    prev: str  # the token before it, lower-cased, or "<s>"
    nxt: str  # the token after it, or "</s>"
    next_stem: str
    joined: bool  # it joins items with "and", "or" or commas
    ends_possessive: bool
    tail: tuple[tuple[str, float], ...]  # its last own features (position, commas, brackets)
    words: Counter  # its words but articles: what the consensus compares
    inside_of: tuple[int, ...] = ()  # spans of its shape that strictly contain it
    holds: tuple[int, ...] = ()  # spans (any shape) it strictly contains
    by_wh: dict[str, tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]] = dataclasses.field(default_factory=dict)
    # The summed weights of its features that do not depend on where the
    # question's words sit, per model and kind of question (ShortModel.frame_z):
    # half of its features, which the next question of that kind would look up again.
    frame_z: dict[tuple, float] = dataclasses.field(default_factory=dict)

    def wh_features(self, wh: str) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]:
        """Its features before and after the answer-type one, for the wh-word `wh`."""
        found = self.by_wh.get(wh)
        if found is None:
            kinds = [_binary(name) for kind in self.candidate.kinds for name in (f"kind={kind}", f"wh={wh}|kind={kind}")]
            length = _bucket(self.candidate.last - self.candidate.first + 1, _LENGTH_EDGES)
            before = (*kinds, *map(_binary, (f"shape={self.shape}", f"wh={wh}|shape={self.shape}", f"len={length}", f"wh={wh}|len={length}")))
            after = tuple(map(_binary, (f"wh={wh}|prev={self.prev}", f"wh={wh}|next={self.nxt}", f"prev={self.prev}", f"next={self.nxt}")))
            found = self.by_wh[wh] = (before, after)
        return found

    def typed(self, atype: str) -> bool:
        """Whether the span is of the kind of answer the question asks for (rag.questions.answer_type)."""
        kinds = self.candidate.kinds
        if atype == "time":
            return "year" in kinds or "date" in kinds
        if atype == "month":
            return "date" in kinds
        return atype == "quantity" and "num" in kinds and "year" not in kinds


def _span_facts(tokens: Sequence[Token], stems: Sequence[str], c: Candidate, index: int,
                flags: tuple[Sequence[bool], Sequence[bool], Sequence[bool]]) -> SpanFacts:
    """`flags`: _word_flags(tokens), found once for all of a sentence's spans."""
    span = tokens[c.first : c.last + 1]
    counted, contentful, digits = flags
    prev = tokens[c.first - 1].lower if c.first > 0 else "<s>"
    nxt = tokens[c.last + 1].lower if c.last + 1 < len(tokens) else "</s>"
    tail = (
        ("position", c.first / max(len(tokens), 1)),
        _binary(f"first_token={c.first == 0}"),
        _binary(f"after_comma={prev == ','}|before_comma={nxt == ','}"),
        _binary(f"in_parens={prev == '(' or nxt == ')'}"),
    )
    words = Counter(tokens[k].lower for k in range(c.first, c.last + 1) if counted[k])
    content = tuple(stems[k] for k in range(c.first, c.last + 1) if contentful[k])
    return SpanFacts(
        candidate=c, index=index, shape=_shape(c, span, digits), content_stems=content,
        span_stems=tuple(stems[c.first : c.last + 1]), first_stem=stems[c.first], last_stem=stems[c.last],
        prev=prev, nxt=nxt, next_stem=_stem(nxt), joined=_joined(tokens, c), ends_possessive=_is_possessive(tokens[c.last]),
        tail=tail, words=words,
    )


def _word_flags(tokens: Sequence[Token]) -> tuple[list[bool], list[bool], list[bool]]:
    """Per token: a word other than an article (the consensus counts it), a
    word other than a stop word (a content word), one holding a digit."""
    words = [_is_word(t) for t in tokens]
    return ([w and t.lower not in _ARTICLES for w, t in zip(words, tokens)],
            [w and t.lower not in _STOP for w, t in zip(words, tokens)],
            [any(ch.isdigit() for ch in t.text) for t in tokens])


def _relate(facts: Sequence[SpanFacts]) -> None:
    """Fill each span's inside_of and holds among `facts` (indices into it)."""
    # Plain tuples, not attribute look-ups: this compares every pair of a sentence's spans.
    # One pass a pair: a span that holds this one (or is it) cannot also lie
    # strictly inside it.
    spans = [(f.candidate.first, f.candidate.last, f.shape) for f in facts]
    for f, (a, b, shape) in zip(facts, spans):
        inside, holds = [], []
        for j, (x, y, s) in enumerate(spans):
            if x <= a and b <= y:
                if s == shape and (x != a or y != b):
                    inside.append(j)
            elif a <= x and y <= b:
                holds.append(j)
        f.inside_of, f.holds = tuple(inside), tuple(holds)


class ParsedSentence:
    """One sentence's tokens, their stems, and its answer-shaped spans with
    their SpanFacts (made on first use: most sentences scored are never cited)."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.stems = tuple(_stem(t.text) for t in tokens)
        self.stem_set = frozenset(self.stems)
        self.not_stop = tuple(k for k, t in enumerate(tokens) if t.lower not in _STOP)
        self._spans: tuple[SpanFacts, ...] | None = None
        self._at: dict[tuple[int, int], SpanFacts] = {}

    @property
    def spans(self) -> tuple[SpanFacts, ...]:
        spans = self._spans
        if spans is None:
            shared: dict[frozenset[str], frozenset[str]] = {}  # a few kinds' sets, one object each
            flags = _word_flags(self.tokens)
            spans = tuple(_span_facts(self.tokens, self.stems, Candidate(first, last, shared.setdefault(frozenset(kinds), frozenset(kinds))), i, flags)
                          for i, ((first, last), kinds) in enumerate(_answer_shaped(self.tokens)))
            _relate(spans)
            self._at = {(f.candidate.first, f.candidate.last): f for f in spans}
            self._spans = spans
        return spans

    def facts(self, cands: Sequence[Candidate]) -> tuple[list[SpanFacts], list[bool]]:
        """The SpanFacts of `cands` and, indexed like self.spans, which spans
        they are; a candidate not found among the spans (made by hand) gets
        facts of its own, related among `cands` only."""
        self.spans  # noqa: B018 (made on first use)
        found = [self._at.get((c.first, c.last)) for c in cands]
        if all(f is not None and f.candidate == c for f, c in zip(found, cands)):
            kept = [False] * len(self._spans)
            for f in found:
                kept[f.index] = True
            return found, kept
        flags = _word_flags(self.tokens)
        own = [_span_facts(self.tokens, self.stems, c, i, flags) for i, c in enumerate(cands)]
        _relate(own)
        return own, [True] * len(own)


# --- features -----------------------------------------------------------------------


@dataclass(frozen=True)
class SentenceView:
    """One sentence that may hold the answer, as the scorer sees it."""

    article_id: str
    start: int  # offsets into the article text
    end: int
    tokens: Sequence[Token]
    rank: int  # 0 for the sentence sharing most words with the question, 1 for the next ...
    overlap: float  # share of the question's content words the sentence has


Bounds = tuple[tuple[int, int], ...]
# The index's sentences lying wholly inside (article_id, start, end), in text
# order, as (start, end) article offsets: the local backend's `sentence_spans`.
SentenceSpans = Callable[[str, int, int], Sequence[tuple[int, int]]]


# 1,024 quotes: a SQuAD set of 435 questions cites about 400, and a kept quote
# with its parsed sentences takes some 40 KB (4,096 quotes of tokens alone took
# about as much before the parsed spans were kept with them).
@lru_cache(maxsize=1024)
def _quote_sentences(quote: str, offset: int, bounds: Bounds | None = None) -> tuple[tuple[int, int, Tokens], ...]:
    """The sentences of a cited quote at `offset` in its article, tokenised:
    (start, end, tokens) in article offsets. `bounds`: the sentences' (start,
    end) in the quote when known (the index's, see `index_bounds`); None:
    split here (syntok). Cached: the same passages are cited again and again,
    and splitting them was a fifth of the short answer's time."""
    if bounds is None:
        bounds = tuple((s.start, s.end) for s in split_sentences(quote))
    return tuple(
        (offset + start, offset + end, Tokens(tokenize(quote[start:end], offset + start)[:_MAX_SENTENCE_TOKENS]))
        for start, end in bounds
    )


def index_bounds(found: Sequence[tuple[int, int]], quote: str, offset: int) -> Bounds | None:
    """The index's sentences `found` inside a quote at `offset`, relative to
    it, when they tile it: the first opens it, the last closes it, and only
    white space lies between them. An extractive answer's quotes are such runs
    of indexed sentences, and split_sentences gives the quote's text these same
    sentences (the index's came from splitting the whole article; tests hold
    the two equal on every run of one to three sentences of the corpus). None:
    they do not tile it (a language model's quote, a heading inside), or a
    sentence's start or end is one whose split depends on the text around it
    (_SENTENCE_OPENERS, _PLAIN_END), so the quote is split afresh."""
    if not found or found[0][0] != offset or found[-1][1] != offset + len(quote):
        return None
    out = []
    masked = mask_footnotes(quote)
    for k, (start, end) in enumerate(found):
        if end <= start or k and (start < found[k - 1][1] or quote[found[k - 1][1] - offset : start - offset].strip()):
            return None
        first = quote[start - offset]
        if not (first.isalnum() or first in _SENTENCE_OPENERS):
            # The splitter can start a sentence with the stop of the one before
            # ("(He was 90).Why?" gives "(He was 90)", ".Why?"), which the quote
            # alone would split otherwise: such a run is split afresh.
            return None
        # Its last characters only (a longer run of marks is split afresh): a
        # search from the start of a long sentence cost twice as much.
        if not _PLAIN_END.search(masked, max(start, end - 64) - offset, end - offset):
            return None
        out.append((start - offset, end - offset))
    return tuple(out)


# What a sentence may start with besides a letter or digit for index_bounds to
# trust the index's split: opening quotes and brackets.
_SENTENCE_OPENERS = frozenset("\"'“‘„«‹([{¿¡")
# The sentence ends for which index_bounds trusts the index's split: a word
# (a figure with its "%"), then closing quotes or brackets and one stop, and
# the (masked) footnote markers after them. Other ends are split afresh:
# whether a tail of marks after a space ("It rose. ,?" of "It rose. ,?Then")
# or after an ellipsis ("At.St'..." of "At.St'...St") or empty brackets stay
# with the sentence or make one of their own depends on what follows, which the
# quote alone lacks (tests/test_hostile_text.py found these). On SQuAD training
# articles 40-139 this sends 70 of 21,418 sentences ("...", "D.C..", "/t/.")
# and 435 of 63,954 runs of one to three (65 before) to the splitter.
_PLAIN_END = re.compile(r"[^\W_]%?[\"'”’)\]]*[.!?;:]?[\"'”’)\]]*\s*$")


def sentence_views(spans: Iterable[tuple[str, int, int]], articles: Mapping[str, Article], frame: QuestionFrame,
                   sentences: SentenceSpans | None = None) -> list[SentenceView]:
    """The sentences of the given (article_id, start, end) spans, ranked by the
    question words they share (ties: text order). `sentences`: the index's
    sentence spans, read in place of splitting a quote they tile (None: split
    every quote)."""
    raw = []
    for article_id, start, end in spans:
        quote = articles[article_id].text[start:end]
        bounds = index_bounds(sentences(article_id, start, end), quote, start) if sentences is not None else None
        for s_start, s_end, tokens in _quote_sentences(quote, start, bounds):
            shared = tokens.parsed.stem_set & frame.words
            raw.append((article_id, s_start, s_end, tokens, len(shared) / max(len(frame.words), 1)))
    order = sorted(range(len(raw)), key=lambda k: -raw[k][4])
    ranks = {k: r for r, k in enumerate(order)}
    return [SentenceView(a, s, e, toks, ranks[k], ov) for k, (a, s, e, toks, ov) in enumerate(raw)]


def _bucket(value: int, edges: Sequence[int]) -> str:
    for edge in edges:
        if value <= edge:
            return str(edge)
    return f">{edges[-1]}"


def _shape(c: Candidate, span: Sequence[Token], digits: Sequence[bool]) -> str:
    """`digits`: per token of the sentence, whether it holds a digit."""
    if "year" in c.kinds and len(span) == 1:
        return "year"
    if "list" in c.kinds:
        return "list"
    if "date" in c.kinds:
        return "date"
    if "num" in c.kinds or any(digits[c.first : c.last + 1]):
        return "num"
    if all(_is_capital(t) or t.lower in _NAME_JOINERS or _is_possessive(t) for t in span):
        return "name"
    return "mixed" if any(_is_capital(t) for t in span) else "lower"


def _question_positions(p: ParsedSentence, frame: QuestionFrame) -> list[int]:
    """Where the sentence has the question's words (stop words aside)."""
    words, stems = frame.words, p.stems
    return [k for k in p.not_stop if stems[k] in words]


def _joined(tokens: Sequence[Token], c: Candidate) -> bool:
    """Whether the span joins items with "and", "or" or commas ("France and Spain")."""
    return any(t.lower in ("and", "or", ",") for t in tokens[c.first + 1 : c.last])


def _anchor(positions: Sequence[int]) -> tuple[int, int] | None:
    """The sentence's longest phrase of question words (a gap of one stop word
    or mark allowed: "the feast day of John"), as first and last token index."""
    best, first = None, None
    for k, p in enumerate(positions):
        if first is None or p - positions[k - 1] > 2:
            first = p
        if best is None or p - first > best[1] - best[0]:
            best = (first, p)
    return best


def _question_order(p: ParsedSentence, anchor: tuple[int, int] | None, frame: QuestionFrame) -> str:
    """Whether the anchor's words come before the question word in the question, after it, or both."""
    if anchor is None:
        return "none"
    stems = set(p.stems[anchor[0] : anchor[1] + 1]) & frame.words
    before = len(stems & frame.before_wh)
    return "before" if before == len(stems) else "after" if not before else "both"


def _side(c: Candidate, anchor: tuple[int, int] | None) -> tuple[str, str]:
    """Where the span sits against the anchor: right after it, some words before it ..."""
    if anchor is None:
        return "none", ""
    if c.last < anchor[0]:
        return "before", _bucket(anchor[0] - c.last, (1, 2, 4, 8))
    if c.first > anchor[1]:
        return "after", _bucket(c.first - anchor[1], (1, 2, 4, 8))
    return "overlaps", ""


_NEAREST_EDGES = (1, 2, 3, 5, 8, 15)


def _frame_features(f: SpanFacts, frame: QuestionFrame) -> list[tuple[str, float]]:
    """The span's features that depend on the question's kind only (its
    wh-word, answer type, measure and head), not on where its words sit."""
    return [*_kind_of_question_features(f, frame), *_head_features(f, frame.head)]


def _kind_of_question_features(f: SpanFacts, frame: QuestionFrame) -> list[tuple[str, float]]:
    atype = frame.answer_type or "none"
    before, after = f.wh_features(frame.wh)
    return [*before, (f"atype={atype}|typed={f.typed(atype)}", 1.0), *after,
            (f"measure={frame.measure}|shape={f.shape}", 1.0)]


def _head_features(f: SpanFacts, head: str) -> list[tuple[str, float]]:
    """What the span is against the word the question asks for ("year", "river"), if any."""
    if not head:
        return []
    return [
        (f"head={head}|shape={f.shape}", 1.0),
        (f"head={head}|next={f.nxt}", 1.0),
        (f"head={head}|last={f.last_stem}", 1.0),
        (f"head_in_span={_stem(head) in f.span_stems}", 1.0),
        (f"head_next={f.next_stem == head}", 1.0),
    ]


def _placed_features(f: SpanFacts, view: SentenceView, frame: QuestionFrame, positions: Sequence[int]) -> tuple[list[tuple[str, float]], int]:
    """The span's features that say where the question's words sit around
    it, and how far (in tokens) the nearest one is."""
    c = f.candidate
    wh, words = frame.wh, frame.words
    # Where the question's words sit in the sentence (positions ascend), relative to the span.
    first, last = c.first, c.last
    distances = [first - k if k < first else k - last for k in positions if k < first or k > last]
    nearest = min(distances) if distances else 99
    n_q = max(len(words), 1)
    near3 = sum(d <= 3 for d in distances) / n_q
    near8 = sum(d <= 8 for d in distances) / n_q
    q_left = bool(positions) and positions[0] < first
    q_right = bool(positions) and positions[-1] > last
    content = f.content_stems
    in_question = sum(s in words for s in content) / max(len(content), 1)
    bucket = _bucket(nearest, _NEAREST_EDGES)
    return [
        (f"nearest={bucket}", 1.0),
        (f"wh={wh}|nearest={bucket}", 1.0),
        ("near3", near3),
        ("near8", near8),
        ("q_left", 1.0 if q_left else 0.0),
        ("q_right", 1.0 if q_right else 0.0),
        ("in_question", in_question),
        (f"ends_in_question={f.first_stem in words}|{f.last_stem in words}", 1.0),
        (f"sentence_rank={min(view.rank, 3)}", 1.0),
        ("sentence_overlap", view.overlap),
    ], nearest


def _candidate_parts(facts: Sequence[SpanFacts], kept: Sequence[bool], view: SentenceView, p: ParsedSentence,
                     frame: QuestionFrame) -> list[tuple[list[tuple[str, float]], list[tuple[str, float]]]]:
    """Per span of `facts`, its placed features (_placed_features) and how it
    compares with the sentence's other candidates; kept[i] marks the spans
    left as candidates (the indices of inside_of and holds)."""
    wh = frame.wh
    positions = _question_positions(p, frame)
    anchor = _anchor(positions)
    order = _question_order(p, anchor, frame)
    q_at = frozenset(positions)
    placed = [_placed_features(f, view, frame, positions) for f in facts]
    # Per shape, its candidates' distances to the question's words, sorted:
    # how many of them are closer than one is a bisection.
    per_shape: dict[str, list[int]] = {}
    for f, (_, nearest) in zip(facts, placed):
        per_shape.setdefault(f.shape, []).append(nearest)
    for distances in per_shape.values():
        distances.sort()
    every = all(kept)  # the usual case: no span was only question words
    out = []
    for k, f in enumerate(facts):
        c, shape = f.candidate, f.shape
        own, nearest = placed[k]
        same = per_shape[shape]
        closer = min(bisect.bisect_left(same, nearest), 3)
        inside = bool(f.inside_of) if every else any(kept[j] for j in f.inside_of)
        holds = bool(f.holds) if every else any(kept[j] for j in f.holds)
        side, gap = _side(c, anchor)
        relative = [
            (f"wh={wh}|only_{shape}={len(same) == 1}", 1.0),
            (f"wh={wh}|closer_{shape}={closer}", 1.0),
            (f"atype={frame.answer_type}|closer_{shape}={closer}", 1.0),
            (f"wh={wh}|inside={inside}|holds={holds}", 1.0),
            (f"shape={shape}|inside={inside}|holds={holds}", 1.0),
            (f"wh={wh}|order={order}|side={side}|gap={gap}", 1.0),
            (f"shape={shape}|side={side}|gap={gap}", 1.0),
            (f"head={frame.head}|side={side}", 1.0),
            (f"wh={wh}|q_before={c.first - 1 in q_at}|q_after={c.last + 1 in q_at}", 1.0),
        ]
        out.append((own, relative))
    return out


def _kind_features(f: SpanFacts, frame: QuestionFrame) -> list[tuple[str, float]]:
    """The last of a candidate's features: of the span and the kind of question only."""
    out = [(f"several={frame.several}|shape={f.shape}", 1.0), (f"several={frame.several}|joined={f.joined}", 1.0)]
    if f.ends_possessive:
        out.append((f"wh={frame.wh}|ends_possessive", 1.0))
    return out


def _features_of(facts: Sequence[SpanFacts], kept: Sequence[bool], view: SentenceView, p: ParsedSentence,
                 frame: QuestionFrame) -> list[list[tuple[str, float]]]:
    """sentence_features() of the spans `facts` (see _candidate_parts for `kept`)."""
    return [[*_frame_features(f, frame), *own, *f.tail, *relative, *_kind_features(f, frame)]
            for f, (own, relative) in zip(facts, _candidate_parts(facts, kept, view, p, frame))]


def sentence_features(cands: Sequence[Candidate], view: SentenceView, frame: QuestionFrame) -> list[list[tuple[str, float]]]:
    """The features of each candidate of one sentence: its own (`features`),
    and how it compares with the sentence's other candidates (the only year
    in the sentence, the closest name to the question's words, inside a longer
    candidate ...), which is what tells two candidates of one shape apart."""
    p = parsed(view.tokens)
    facts, kept = p.facts(cands)
    return _features_of(facts, kept, view, p, frame)


# --- the model ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShortModel:
    weights: Mapping[str, float]
    bias: float
    threshold: float  # the probability a candidate must reach to be the short answer
    manifest: Mapping
    # What SpanFacts.frame_z is keyed by: this model, not another's weights
    # (an object held by the key, so its id is never reused while cached).
    # Not an argument: dataclasses.replace() makes a new model a new key.
    key: object = dataclasses.field(default_factory=object, init=False, compare=False, repr=False)

    def z(self, named: Iterable[tuple[str, float]]) -> float:
        """The weighted sum of these features, without the bias."""
        get = self.weights.get
        # A list, not a generator: the same sum, left to right, at a third less
        # of the time (about 40 features a candidate, 20 candidates a question).
        return sum([get(name, 0.0) * value for name, value in named])

    def probability(self, named: Iterable[tuple[str, float]]) -> float:
        """The probability that the candidate with these features is exactly the answer."""
        return self.of_z(self.z(named))

    def of_z(self, z: float) -> float:
        """The probability for the weighted sum `z` of a candidate's features."""
        z += self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def frame_z(self, f: SpanFacts, frame: QuestionFrame) -> float:
        """z() of the span's features that do not depend on where the
        question's words sit (_frame_features, its tail, _kind_features), kept
        with the span in two parts: the one of the question's kind (a few dozen
        kinds recur, so a new question mostly finds it) and its head's."""
        memo = f.frame_z
        found = _memo_sum(memo, (self.key, frame.wh, frame.answer_type, frame.measure, frame.several), lambda: (
            self.z(_kind_of_question_features(f, frame)) + self.z(f.tail) + self.z(_kind_features(f, frame))))
        if frame.head:
            found += _memo_sum(memo, (self.key, frame.head), lambda: self.z(_head_features(f, frame.head)))
        return found


def _memo_sum(memo: dict[tuple, float], key: tuple, make: Callable[[], float]) -> float:
    """memo[key], made with make() when missing (the memo starts over past _FRAME_Z_MAX)."""
    found = memo.get(key)
    if found is None:
        if len(memo) >= _FRAME_Z_MAX:
            memo.clear()
        found = memo[key] = make()
    return found


# Kinds of question kept per span: the heads ("year", "city" ...) vary, and
# a span cited for ever new kinds would otherwise grow without bound.
_FRAME_Z_MAX = 64


def load_model(path: Path = MODEL_PATH) -> ShortModel:
    """The shipped weights; a missing or damaged file says how to make it again."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return ShortModel(dict(data["weights"]), float(data["bias"]), float(data["threshold"]), data.get("manifest", {}))
    except (OSError, ValueError, KeyError, TypeError) as e:
        from .errors import ModelError

        raise ModelError(
            f"cannot read the short-answer weights {path}: {e}; retrain them with `python -m rag.short_train`"
        ) from e


@lru_cache(maxsize=1)
def _shipped_model() -> ShortModel:
    return load_model(MODEL_PATH)


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    view: SentenceView
    probability: float
    facts: SpanFacts | None = dataclasses.field(default=None, compare=False, repr=False)


def score_candidates(frame: QuestionFrame, views: Sequence[SentenceView], model: ShortModel) -> list[Scored]:
    """Every candidate of the sentences, best first, with its probability of being exactly the answer."""
    scored = []
    for v in views:
        # candidates() and sentence_features() over the sentence's kept facts.
        p = parsed(v.tokens)
        facts = [f for f in p.spans if _kept(f, frame)]
        kept = [False] * len(p.spans)
        for f in facts:
            kept[f.index] = True
        # The same sums as model.probability(features), grouped: the span's
        # frame part is looked up once per kind of question.
        for f, (own, relative) in zip(facts, _candidate_parts(facts, kept, v, p, frame)):
            z = model.frame_z(f, frame) + model.z(own) + model.z(relative)
            scored.append(Scored(f.candidate, v, model.of_z(z), f))
    # Ties go to the earlier sentence and span: deterministic.
    scored.sort(key=lambda s: (-s.probability, s.view.rank, s.candidate.first))
    return scored


# The rest carry almost no probability. Choosing by consensus rather than the
# top candidate raised F1 through the product from 0.353 to 0.359 (EM 0.270 both).
_CONSENSUS_TOP = 20


def _words(s: Scored) -> Counter:
    if s.facts is not None:
        return s.facts.words
    return Counter(t.lower for t in s.view.tokens[s.candidate.first : s.candidate.last + 1] if _is_word(t) and t.lower not in _ARTICLES)


def _consensus(scored: Sequence[Scored]) -> Scored:
    """The candidate with the highest expected word overlap with the answer,
    under the scorer's probabilities: of "Governor William Milliken" and
    "William Milliken", the one most of the probability agrees with."""
    counts = [_words(s) for s in scored]
    keys = [frozenset(c) for c in counts]
    totals = [c.total() for c in counts]
    once = [len(c) == t for c, t in zip(counts, totals)]
    n = len(scored)
    f1 = [[0.0] * n for _ in range(n)]  # symmetric: each pair once
    for i in range(n):
        for j in range(i, n):
            # SQuAD's token F1 of the two spans' words, from the shared words
            # only: most pairs share none (a year and a name), and without
            # repeats the common count is their number.
            shared = keys[i] & keys[j]
            if shared:
                common = len(shared) if once[i] and once[j] else sum(min(counts[i][w], counts[j][w]) for w in shared)
                f1[i][j] = f1[j][i] = 2 * common / (totals[i] + totals[j])
    probabilities = [s.probability for s in scored]
    expected = [sum([p * x for p, x in zip(probabilities, row)]) for row in f1]
    return scored[max(range(len(scored)), key=lambda i: (expected[i], -i))]


def short_answer(
    question: str,
    answer: Answer,
    articles: Mapping[str, Article],
    model: ShortModel | None = None,
    sentences: SentenceSpans | None = None,
) -> ShortAnswer | None:
    """The exact span of a cited quote that answers a factoid question, or
    None: no citation, not a factoid question, or no span confident enough.
    `sentences`: the index's sentence spans (see sentence_views)."""
    if answer.abstained or not answer.citations:
        return None
    frame = question_frame(question)
    if not frame.factoid:
        return None
    model = model or _shipped_model()
    views = sentence_views(((c.article_id, c.start, c.end) for c in answer.citations), articles, frame, sentences)
    scored = score_candidates(frame, views, model)
    if not scored or scored[0].probability < model.threshold:
        return None
    best = _consensus(scored[:_CONSENSUS_TOP])
    start = best.view.tokens[best.candidate.first].start
    end = best.view.tokens[best.candidate.last].end
    text = articles[best.view.article_id].text
    return ShortAnswer(best.view.article_id, start, end, text[start:end], round(best.probability, 4))


def with_short_answer(question: str, answer: Answer, articles: Mapping[str, Article],
                      sentences: SentenceSpans | None = None) -> Answer:
    """`answer` with its short answer filled in (None when there is none)."""
    return dataclasses.replace(answer, short=short_answer(question, answer, articles, sentences=sentences))

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


# --- elliptical follow-ups: "And Albania?" ---------------------------------------------

# "And Albania?", "What about the 2019 census?", "How about to Kosovo?": an
# opener, then a short phrase with no verb of its own.
_ELLIPSIS = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(?P<a>.+?)\s*[?.!]*\s*$|^\s*and\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I | re.S)
_ELLIPSIS_MAX_WORDS = 6
# Words that make the rest a clause of its own ("And why did he go?"), not a phrase to slot in.
_CLAUSE = frozenset(
    "is are was were be been do does did has have had will would can could should may might must "
    "what who whom whose which when where why how".split()
)
_PREPOSITIONS = frozenset(
    "in on at to for from by with about into over under after before during since between among against "
    "near within without toward towards of".split()
)
_POSSESSIVE = re.compile(r"[’']s$")
_SLOT_TOKEN = re.compile(r"[\w’'-]+|[^\w\s]", re.UNICODE)


def elliptical_fragment(question: str) -> str | None:
    """The phrase of an elliptical follow-up ("Albania" of "And Albania?"), or
    None when the question is not one (it has a clause of its own, or is long)."""
    m = _ELLIPSIS.match(question)
    if m is None:
        return None
    fragment = (m.group("a") or m.group("b")).strip(" ,;:")
    words = _WORD.findall(fragment)
    if not words or len(words) > _ELLIPSIS_MAX_WORDS or any(w.lower() in _CLAUSE for w in words):
        return None
    if all(w.lower() in _STOP or w.lower() in _REFERRING for w in words):
        return None  # "And then?", "And that?": nothing to put in the frame
    return fragment


def _kind(words: list[str]) -> str:
    """name (capitalised), year, number or phrase: what a slot holds."""
    content = [w for w in words if w.lower() not in _STOP]
    if content and all(_YEAR.fullmatch(w) for w in content):
        return "year"
    if content and any(w[:1].isdigit() for w in content):
        return "number"
    if content and all(w[:1].isupper() for w in content):
        return "name"
    return "phrase"


_YEAR = re.compile(r"1\d{3}s?|20\d\ds?")
_DETERMINERS = frozenset({"the", "a", "an"})
# After these the next phrase is what the question asks for ("what year",
# "how many routes"), not its subject: it is replaced only when nothing else is.
_ASKING = frozenset({"what", "which", "whose", "many", "much"})
# Verbs of a question that a phrase must not swallow ("the first hotel built in"):
# past participles in -ed, and the irregular ones questions use most.
_PARTICIPLES = frozenset(
    "built made held born done given taken known written won begun sold found led seen said paid brought "
    "bought kept left lost meant put run set shown spent told thought understood become chosen drawn driven "
    "eaten fallen grown hidden ridden risen shaken spoken stolen sworn thrown worn".split()
)


def _verb_like(word: str) -> bool:
    lower = word.lower()
    return lower in _PARTICIPLES or (len(lower) > 4 and lower.endswith("ed") and word[:1].islower())


@dataclass(frozen=True)
class Slot:
    """A replaceable phrase of a question: its characters, its tokens [first, last],
    the preposition before it (past a determiner: "in the US" has "in"), and what it is."""

    start: int
    end: int
    first: int
    last: int
    preposition: str | None
    kind: str
    determiner: bool = False  # "the" or "a" right before it
    asked: bool = False  # right after "what", "which", "how many": what the question asks for
    predicate: bool = False  # after "a"/"an": "is ethology a branch", not what it is about
    coordinated: bool = False  # "Blacks or African Americans": two names as one


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _SLOT_TOKEN.finditer(text)]


def _slots(question: str) -> list[Slot]:
    """The replaceable phrases of a question.

    A slot is a run of capitalised words or of figures (a name, a year, a
    number), or failing those a run of content words; the question's first
    word is capitalised as a sentence start and never a slot by that alone. A
    possessive ends a name ("Tucson's NBC station": Tucson, NBC), a year
    stands alone ("the 2011 Corruption Perceptions Index": 2011, then the
    name), and past participles are no phrase ("built"). Names joined by
    "and"/"or" make one slot ("Hispanic or Latino").
    """
    tokens = _tokens(question)
    slots: list[Slot] = []
    i = 0
    while i < len(tokens):
        word = tokens[i][0]
        lower = word.lower()
        is_entity = (word[:1].isupper() and (i > 0 or lower not in _STOP | _CLAUSE)) or word[:1].isdigit()
        is_content = (word[:1].isalnum() and lower not in _STOP and lower not in _REFERRING and lower not in _ASKING
                      and not _verb_like(word))
        if not (is_entity or is_content):
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and not _POSSESSIVE.search(tokens[j][0]) and not _YEAR.fullmatch(tokens[j][0]):
            nxt = tokens[j + 1][0]
            if is_entity and _YEAR.fullmatch(nxt):
                break
            if is_entity and (nxt[:1].isupper() or nxt[:1].isdigit() or nxt.lower() in ("of", "the") and j + 2 < len(tokens) and tokens[j + 2][0][:1].isupper()):
                j += 1
            elif (not is_entity and nxt[:1].isalnum() and nxt.lower() not in _STOP and nxt.lower() not in _REFERRING
                  and not any(c.isupper() for c in nxt) and not _verb_like(nxt)):  # "minister pro-Western": two
                j += 1
            else:
                break
        k = i - 1
        while k >= 0 and tokens[k][0].lower() in _DETERMINERS:
            k -= 1
        before = tokens[k][0].lower() if k >= 0 else None
        words = [t[0] for t in tokens[i : j + 1]]
        end = tokens[j][2] - (len(m.group(0)) if (m := _POSSESSIVE.search(tokens[j][0])) else 0)  # "Houston's": the name is "Houston"
        previous = tokens[i - 1][0].lower() if i else None
        slots.append(Slot(
            tokens[i][1], end, i, j, before if before in _PREPOSITIONS else None, _kind(words) if is_entity else "phrase",
            determiner=previous in _DETERMINERS, asked=previous in _ASKING or (k >= 0 and tokens[k][0].lower() in _ASKING),
            predicate=previous in ("a", "an"),
        ))
        i = j + 1
    return _coordinated(question, tokens, slots)


def _coordinated(question: str, tokens: list[tuple[str, int, int]], slots: list[Slot]) -> list[Slot]:
    """Names joined by "and"/"or" as one slot: "Blacks or African Americans"."""
    out: list[Slot] = []
    for slot in slots:
        last = out[-1] if out else None
        if (
            last and last.kind == "name" and slot.kind == "name" and slot.first == last.last + 2
            and tokens[last.last + 1][0].lower() in ("and", "or")
        ):
            out[-1] = Slot(last.start, slot.end, last.first, slot.last, last.preposition, "name", last.determiner,
                           last.asked, last.predicate, coordinated=True)
        else:
            out.append(slot)
    return out


def _root(word: str) -> str:
    lower = word.lower()
    return lower[:-1] if len(lower) > 3 and lower.endswith("s") and not lower.endswith("ss") else lower


def _head(words: list[str]) -> str | None:
    """The noun a phrase is about: its last word, or the last before "of"
    ("the president of France": president)."""
    lowered = [w.lower() for w in words]
    if "of" in lowered[1:]:
        words = words[: lowered.index("of", 1)]
    content = [w for w in words if w.lower() not in _STOP and not _POSSESSIVE.search(w)]
    return content[-1] if content else None


def _same_head(frame: str, core: str) -> tuple[int, int] | None:
    """The phrase of `frame` that ends in the noun `core` ends in ("the Baird
    system" for "France's 819 line system", "high levels" for "low levels"):
    that noun and the words before it, back to a function word or a
    possessive; only over small-letter words when the core's are."""
    words = _WORD.findall(core)
    head = words[-1] if words else None
    if head is None or head.lower() in _STOP or head.lower() in _REFERRING:
        return None
    tokens = _tokens(frame)
    at = [t for t in range(len(tokens)) if _root(tokens[t][0]) == _root(head)]
    if not at:
        return None
    t = at[-1]
    small = all(w[:1].islower() or w[:1].isdigit() for w in words[:-1] if w.lower() not in _STOP)
    first = t
    while first > 0:
        word = tokens[first - 1][0]
        if (not word[:1].isalnum() or word.lower() in _STOP | _CLAUSE | _REFERRING | _ASKING or _verb_like(word)
                or _POSSESSIVE.search(word) or (small and word[:1].isupper())):
            break
        first -= 1
    return tokens[first][1], tokens[t][2]


def substitute(frame: str, fragment: str) -> tuple[str, str] | None:
    """Put `fragment` into the earlier question `frame` in place of the phrase
    it stands for; returns (the new question, the phrase it replaced), or
    None when the frame has no phrase to replace ("Why did they?").

    The phrase replaced is, in order of preference, one after the same
    preposition ("And to Kosovo?" replaces "to Albania"; "in the US" counts
    as "in"), one ending in the same noun ("And the dry season?" replaces
    "rainy season"), for a common noun after "the", the first phrase after
    "the" ("And the president?" replaces "the prime minister"), for one
    word, names joined by "and"/"or" ("And Asians?" replaces "Blacks or
    African Americans"), one of the same kind (a name for a name, a year for
    a year), any name or figure, any phrase; among several, the last. What
    the question asks for ("what year") and a predicate ("a branch") come
    last.
    """
    words = _WORD.findall(fragment)
    preposition = words[0].lower() if len(words) > 1 and words[0].lower() in _PREPOSITIONS else None
    core = fragment[fragment.lower().index(preposition) + len(preposition) :].strip() if preposition else fragment
    core = _POSSESSIVE.sub("", core)  # "And Detroit's?": the frame keeps its own "'s"
    core_words = _WORD.findall(core)
    kind = _kind(core_words)
    head = _head(core_words)
    common = head is not None and head[:1].islower() and kind == "phrase"
    slots = _slots(frame)
    span = None if preposition else _same_head(frame, core)
    choice = None
    if span is None:
        after_the = common and core_words[0].lower() == "the"
        for n, wanted in enumerate((
            # "And in Dallas?" after "... lived in Houston in 2010?": Houston, not 2010.
            lambda s: preposition is not None and s.preposition == preposition and s.kind == kind,
            lambda s: preposition is not None and s.preposition == preposition,
            lambda s: after_the and s.determiner,
            lambda s: len(core_words) == 1 and kind not in ("year", "number") and s.coordinated,
            lambda s: s.kind == kind,
            lambda s: s.kind != "phrase",
            lambda s: True,
        )):
            matching = [s for s in slots if wanted(s)]
            # What the question asks for, or says the subject is, is not the subject.
            matching = [s for s in matching if not (s.asked or s.predicate)] or matching
            if matching:
                # The last: a subject change most often swaps the object ("visit
                # Serbia" -> "visit Albania"); after "the", the first, the
                # subject ("the Xbox 360 Core priced at in the US"). Preferring a
                # phrase as long as the fragment was tried: it swapped "Balkan"
                # for "Erdogan" in "Which Balkan countries has Isaac Herzog visited?".
                choice = matching[0] if n == 2 else matching[-1]
                break
        if choice is None:
            return None
        span = (choice.start, choice.end)
    start, end = span
    replaced = frame[start:end]
    # The fragment's preposition replaces the slot's own ("about Serbia" -> "to Kosovo").
    # A year or number keeps the frame's "the" ("in the 2011 Corruption Perceptions
    # Index" -> "in the 2014 ..."); a name does not ("in the US" -> "in Europe").
    if preposition and choice is not None and choice.preposition and not (choice.determiner and kind in ("year", "number")):
        start = frame.lower().rindex(choice.preposition, 0, start)
        return frame[:start] + fragment + frame[end:], replaced
    # "those with low levels" for "high levels" in "Those with high levels": the
    # words the fragment shares with what stands before the slot are not repeated.
    before = _tokens(frame[:start])
    lead = _tokens(core)
    shared = 0
    for size in range(min(len(lead) - 1, len(before)), 0, -1):
        if [t[0].lower() for t in lead[:size]] == [t[0].lower() for t in before[-size:]]:
            shared = size
            break
    if shared:
        core = core[lead[shared][1] :]
    if preposition and kind in ("year", "number"):
        return frame[:start] + core + frame[end:], replaced
    frame_det = re.search(r"(?i)\b(the|an?)\s+$", frame[:start])
    core_det = re.match(r"(?i)(the|an?)\s+", core)
    if core_det and frame_det:
        start = frame_det.start()  # "the inaugural meeting" -> "the second meeting", not "the the second meeting"
    elif core_det and _POSSESSIVE.search(frame[:start].rstrip()):
        core = core[core_det.end() :]  # "Brasilia's rainy season" -> "Brasilia's dry season"
    elif frame_det and _POSSESSIVE.search(_WORD.findall(core)[0] if _WORD.findall(core) else ""):
        start = frame_det.start()  # "the Baird system" -> "France's 819 line system"
    return frame[:start] + core + frame[end:], replaced


def _resolved(questions: list[str]) -> list[str]:
    """Each earlier question with its ellipsis filled in from the one before."""
    out: list[str] = []
    for q in questions:
        fragment = elliptical_fragment(q) if out else None
        filled = substitute(out[-1], fragment) if fragment else None
        out.append(filled[0] if filled else q)
    return out


def _topic(questions: list[str], drop: frozenset[str] = frozenset()) -> list[str]:
    """The content words of the latest question and of the follow-ups' chain
    back to the question that set the topic ("And to Kosovo?", "And to Bosnia?")."""
    topic: list[str] = []
    for turn in reversed(questions):
        words = [w for w in content_words(turn) if w.lower() not in drop]
        topic = words + [w for w in topic if w not in words]
        if not is_follow_up(turn):
            break
    return topic


@dataclass(frozen=True)
class FollowUp:
    """How a question reads in its conversation: `search`, the text to search
    for; `standalone`, the earlier question with the follow-up's phrase in
    place when it was rewritten so ("And Albania?" as "When did Erdogan visit
    Albania?"), else None (the question stands as asked, or only has the
    conversation's topic words appended for the search)."""

    search: str
    standalone: str | None = None


def resolve_follow_up(question: str, history: list[Turn]) -> FollowUp:
    """The question, made to stand alone when it is a follow-up.

    An elliptical follow-up ("And Albania?" after "When did Erdogan visit
    Serbia?") becomes the earlier question with the new phrase in place of the
    one it stands for ("When did Erdogan visit Albania?"); other follow-ups get
    the topic words of the earlier questions appended.
    """
    earlier = _resolved([t.content for t in history if t.role == "user" and t.content.strip()])
    if not earlier or not is_follow_up(question):
        return FollowUp(question)
    fragment = elliptical_fragment(question)
    filled = substitute(earlier[-1], fragment) if fragment else None
    if filled:
        new, replaced = filled
        if not is_follow_up(new):
            return FollowUp(new, new)
        # "When did he visit Albania?": "he" still needs the topic of the
        # questions before, without the phrase that was replaced.
        drop = frozenset(w.lower() for w in _WORD.findall(replaced))
        topic = [w for w in _topic(earlier[:-1], drop) if w.lower() not in {x.lower() for x in content_words(new)}]
        search = f"{new} {' '.join(topic)}" if topic else new
        return FollowUp(search, search)
    topic = _topic(earlier)
    return FollowUp(f"{question} {' '.join(topic)}" if topic else question)


def contextualise(question: str, history: list[Turn]) -> str:
    """The text to search for (`resolve_follow_up(...).search`)."""
    return resolve_follow_up(question, history).search

"""Turn retrieved passages into an Answer whose every [n] is a verified quote.

Extractive answering picks the sentences of the retrieved passages that best
answer the question, scored with the embedding model (meaning) and with the
question's words that the sentence contains (evidence), and quotes them.
Everything that builds an Answer goes through `compose`, which numbers the
citations in order of first use and takes each quote from the article text at
its offsets, so the invariants hold by construction:

- each marker [n] in the text has exactly one citation with that n, numbered
  1, 2, 3 in order of first use;
- each quote is exactly article.text[start:end];
- no citation points outside the passages that were considered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .evidence import Evidence, EvidenceSet
from .questions import (Name, QuestionCheck, answer_type, gives_answer_type, initials, numbered_abbreviation, question_names,
                        question_years, unknown_names, years_of)
from .sentences import FOOTNOTE
from .sparse import folded_words, word_set
from .settings import AnswerSettings
from .types import Answer, Article, Citation, Hit

MARKER = re.compile(r"\[(\d+)\]")

ABSTAIN_TEXT = "The articles do not answer this question."
NOT_ENGLISH_TEXT = (
    "The question does not seem to be in English. The articles are in English and are searched in English: "
    "please ask in English."
)
_KIND_WORDS = {"month": "the month or date", "time": "the date", "quantity": "the number"}


# How the abstentions of the two question rules begin (rag/calibration.py reads which rule fired).
UNKNOWN_NAMES_PREFIX = "The articles do not answer this question: they never mention "
MISSING_TYPE_PREFIX = "The articles do not answer this question: they do not give "
MISSING_YEAR_PREFIX = "The articles do not answer this question: the passages that come closest do not mention "


def unknown_names_text(names: Sequence[str]) -> str:
    listed = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]
    return f"{UNKNOWN_NAMES_PREFIX}{listed}."


def missing_type_text(kind: str) -> str:
    return f"{MISSING_TYPE_PREFIX}{_KIND_WORDS[kind]} it asks for."


def missing_year_text(years: Sequence[str]) -> str:
    """`years`: as the question writes them ("1990", "the 1790s" as "1790s")."""
    return f"{MISSING_YEAR_PREFIX}{', '.join(years[:-1])}{' or ' if len(years) > 1 else ''}{years[-1]}."


INSTRUCTIONS_NOTE = (
    "The question contains instructions; they are not followed. Answers come only from the articles."
)


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and the quote that supports it (None: no citation)."""

    text: str
    quote: Evidence | None


# --- choosing sentences -------------------------------------------------------


def select(
    evidence: Sequence[Evidence],
    scored: EvidenceSet,
    max_sentences: int,
    margin: float,
    duplicate_similarity: float,
    other_article_margin: float | None = None,
    other_article_adds: Callable[[Evidence, Sequence[Evidence]], bool] | None = None,
) -> list[Evidence]:
    """The best sentence, plus up to `max_sentences - 1` others that say
    something the chosen ones do not and score within `margin` of it (within
    `other_article_margin` when they come from another article; None: the
    same margin). A sentence from another article joins only when
    `other_article_adds(e, chosen)` holds too (None: no such test).
    `evidence` is `scored.items` or a reordering of it."""
    if not evidence:
        return []
    lead = evidence[0]
    other = margin if other_article_margin is None else other_article_margin
    chosen = [lead]
    for e in evidence[1:]:
        if len(chosen) >= max_sentences or e.score < lead.score - max(margin, other):
            break
        if e.score < lead.score - (margin if e.article_id == lead.article_id else other):
            continue
        if any(scored.similarity(e, c) >= duplicate_similarity for c in chosen):
            continue  # near-duplicate: the same point in other words
        if other_article_adds is not None and e.article_id != lead.article_id and not other_article_adds(e, chosen):
            continue
        chosen.append(e)
    return order_readably(chosen)


# A sentence that holds at least this share of the question's (IDF-weighted)
# words, and whose own words are mostly the question's, restates it: "Xavier
# converted Japanese to Christianity" for "How did Anjiro think the Japanese
# would accept Christianity?". The learned stage's `restates` feature is the
# same test.
RESTATES_LEXICAL = 0.5
RESTATES_NOVEL_SHARE = 0.35


def restates(lexical: float, question_words: frozenset[str] | set[str], sentence_words: frozenset[str] | set[str]) -> bool:
    """Whether a sentence only restates the question (see RESTATES_LEXICAL)."""
    novel_share = len(sentence_words - question_words) / len(sentence_words) if sentence_words else 0.0
    return lexical >= RESTATES_LEXICAL and novel_share < RESTATES_NOVEL_SHARE


# How far before a sentence its subject may have been named ("Nasser ... He died in 1970").
NAME_CONTEXT_CHARS = 200


def _words_of(name: Name) -> frozenset[str]:
    return word_set(" ".join(name.words))


def _same_root(a: str, b: str) -> bool:
    """Two stemmed words of one root: "turkey" and "turkish", "serbia" and
    "serbian" (a question says Turkey where the text says Turkish)."""
    if a == b:
        return True
    n = max(4, min(len(a), len(b)) - 2)
    return len(a) >= 4 and len(b) >= 4 and a[:n] == b[:n]


def speaks_of_others(names: Sequence[Name], text: str, start: int, end: int) -> bool:
    """Whether the sentence text[start:end] lacks a name of the question (in it
    or just before it, in any form of its root; a name also counts by its
    initials, "UIP" for "United International Pictures") and names something
    the question does not: it is about a neighbouring subject, not the one
    asked about."""
    seen = word_set(text[max(0, start - NAME_CONTEXT_CHARS) : end])

    def held(word: str, words: Iterable[str]) -> bool:
        return word in words or any(_same_root(word, w) for w in words)  # the same word first: most often it is

    def present(name: Name) -> bool:
        initials = "".join(w[0] for w in name.words).lower() if len(name.words) > 1 else None
        return initials in seen or all(held(w, seen) for w in _words_of(name))

    if all(present(n) for n in names):
        return False
    asked = frozenset().union(*(_words_of(n) for n in names))
    own = frozenset().union(*(_words_of(n) for n in question_names(text[start:end])))
    return any(not held(w, asked) for w in own)


# A figure as written: "1991", "2.1", "350,000" (not the "2" of "G2" or "2nd").
_FIGURE = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")


def figures_of(text: str) -> frozenset[str]:
    """The figures of a question or sentence ("in June 2010", "350,000"), commas dropped."""
    return frozenset(m.group(0).replace(",", "") for m in _FIGURE.finditer(text))


# How far around a quoted sentence its paragraph is read for the question's
# year, at most: an article without blank lines is one long paragraph.
_SURROUNDINGS = 1500


def surroundings(article: Article, start: int, end: int, reach: int = _SURROUNDINGS) -> str:
    """The paragraph (between blank lines) holding article.text[start:end],
    at most `reach` characters either side of it, and the article's title:
    where the time a sentence speaks of is set ("In 1967 ... . Governor
    George W. Romney ordered ...")."""
    text = article.text
    before = text.rfind("\n\n", max(0, start - reach), start)
    after = text.find("\n\n", end, end + reach)
    first = before + 2 if before >= 0 else max(0, start - reach)
    last = after if after >= 0 else min(len(text), end + reach)
    return f"{article.title}\n{text[first:last]}"


def adds_question_words(question: str, sentence: Callable[[Evidence], str]) -> Callable[[Evidence, Sequence[Evidence]], bool]:
    """A test for `select`: whether a sentence holds a word of the question
    (as BM25 tokenizes it) that none of the chosen sentences holds. Words are
    read on the first call: most questions never make one."""
    words: dict[Evidence, frozenset[str]] = {}
    asked: list[frozenset[str]] = []

    def words_of(e: Evidence) -> frozenset[str]:
        if e not in words:
            words[e] = word_set(sentence(e))
        return words[e]

    def adds(e: Evidence, chosen: Sequence[Evidence]) -> bool:
        if not asked:
            asked.append(word_set(question))
        held = frozenset().union(*(words_of(c) for c in chosen))
        return bool((asked[0] & words_of(e)) - held)

    return adds


def following(e: Evidence, evidence: Sequence[Evidence], text: str) -> Evidence | None:
    """The sentence right after `e` in its article, when the passages hold it."""
    after = [x for x in evidence if x.article_id == e.article_id and x.start >= e.end and not text[e.end : x.start].strip()]
    return min(after, key=lambda x: x.start) if after else None


# A sentence that opens by pointing back ("He was the only candidate", "With its
# capital at Asmara, it is bordered by ...") goes on about the one before it.
_REFERS_BACK = re.compile(
    r"^\W*(?:(?:he|she|it|they|this|these|those|such|its|his|her|their|the latter|the former)\b"
    r"|[^,.;]{0,60},\s*(?:he|she|it|they)\b)",
    re.I,
)


def refers_back(sentence: str) -> bool:
    """Whether a sentence opens with a word that points to the sentence before."""
    return bool(_REFERS_BACK.match(sentence))


def order_readably(chosen: Sequence[Evidence]) -> list[Evidence]:
    """Articles in order of their best sentence; each article's sentences in text order."""
    article_rank: dict[str, int] = {}
    for e in chosen:
        article_rank.setdefault(e.article_id, len(article_rank))
    return sorted(chosen, key=lambda e: (article_rank[e.article_id], e.start))


def merge_adjacent(chosen: Sequence[Evidence], articles: Mapping[str, Article], hits: Sequence[Hit]) -> list[Evidence]:
    """Join sentences that follow each other in one article into one quote,
    when one retrieved passage holds both (a quote never spans passages)."""

    def one_passage_holds(article_id: str, start: int, end: int) -> bool:
        return any(h.article_id == article_id and h.start <= start and end <= h.end for h in hits)

    merged: list[Evidence] = []
    for e in chosen:
        last = merged[-1] if merged else None
        if (
            last
            and last.article_id == e.article_id
            and not articles[e.article_id].text[last.end : e.start].strip()
            and one_passage_holds(e.article_id, last.start, e.end)
        ):
            merged[-1] = Evidence(last.article_id, last.start, e.end, max(last.score, e.score), max(last.dense, e.dense),
                                  max(last.lexical, e.lexical), last.row)
        else:
            merged.append(e)
    return merged


# --- building the Answer ------------------------------------------------------


def strip_markers(text: str) -> str:
    """Text without [n] markers, white space folded, and no space left before
    the punctuation a marker stood in front of ("Sentence [1]." -> "Sentence.")."""
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(MARKER.sub("", text).split()))


def display_text(text: str) -> str:
    """A quote as it reads in an answer: footnote markers dropped (they would
    read as citation markers), whitespace folded."""
    return " ".join(FOOTNOTE.sub("", text).split())


def compose(
    claims: Sequence[Claim],
    hits: Sequence[Hit],
    articles: Mapping[str, Article],
    notes: Sequence[str] = (),
    unsupported: Sequence[str] = (),
) -> Answer:
    """The Answer for these claims: one citation per distinct quote, numbered in order of first use."""
    numbers: dict[tuple[str, int, int], int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for claim in claims:
        text = strip_markers(claim.text)  # only compose() writes markers
        if claim.quote is None:
            parts.append(text)
            continue
        q = claim.quote
        key = (q.article_id, q.start, q.end)
        if key not in numbers:
            numbers[key] = len(numbers) + 1
            article = articles[q.article_id]
            citations.append(Citation(numbers[key], q.article_id, article.title, article.text[q.start : q.end], q.start, q.end))
        parts.append(f"{text} [{numbers[key]}]")
    return Answer(
        text=" ".join(parts), citations=citations, abstained=False, hits=list(hits), notes=list(notes),
        unsupported=list(unsupported),
    )


def abstain(hits: Sequence[Hit], text: str = ABSTAIN_TEXT, notes: Sequence[str] = ()) -> Answer:
    return Answer(text=text, citations=[], abstained=True, hits=list(hits), notes=list(notes))


def extractive_claims(chosen: Sequence[Evidence], articles: Mapping[str, Article], hits: Sequence[Hit]) -> list[Claim]:
    merged = merge_adjacent(chosen, articles, hits)
    return [Claim(display_text(articles[e.article_id].text[e.start : e.end]), e) for e in merged]


def invariant_problems(answer: Answer, articles: Mapping[str, Article]) -> list[str]:
    """What breaks the citation invariants in `answer` (empty when none)."""
    problems = []
    used = [int(n) for n in MARKER.findall(answer.text)]
    first_use = list(dict.fromkeys(used))
    numbers = [c.n for c in answer.citations]
    if first_use != list(range(1, len(first_use) + 1)):
        problems.append(f"markers are not numbered 1, 2, 3 in order of first use: {first_use}")
    if sorted(numbers) != sorted(set(numbers)) or set(numbers) != set(first_use):
        problems.append(f"markers {sorted(set(first_use))} and citations {numbers} do not match one to one")
    for c in answer.citations:
        article = articles.get(c.article_id)
        if article is None:
            problems.append(f"citation [{c.n}] names unknown article {c.article_id}")
        elif article.text[c.start : c.end] != c.quote:
            problems.append(f"citation [{c.n}] quote is not the article text at {c.start}:{c.end}")
        if not any(h.article_id == c.article_id and h.start <= c.start and c.end <= h.end for h in answer.hits):
            problems.append(f"citation [{c.n}] points outside the passages considered")
    if answer.abstained and answer.citations:
        problems.append("an abstention carries citations")
    short = answer.short
    if short is not None:
        article = articles.get(short.article_id)
        if short.start >= short.end or article is None or article.text[short.start : short.end] != short.text:
            problems.append(f"short answer {short.text!r} is not the article text at {short.start}:{short.end}")
        if not any(c.article_id == short.article_id and c.start <= short.start and short.end <= c.end for c in answer.citations):
            problems.append(f"short answer {short.text!r} lies outside every cited quote")
    return problems


# --- the extractive answer ----------------------------------------------------


def question_notes(check: QuestionCheck) -> list[str]:
    """What the reader is told about the question itself, whatever the answer."""
    return [INSTRUCTIONS_NOTE] if check.has_instructions else []


# A misspelt name word is taken for the word of the retrieved passages one
# edit away (a letter left out, added, changed, or two swapped) only from this
# many letters of its stem on: shorter words are a letter away from too many
# others ("Starr" and "star"). Measured on SQuAD training articles 40-199 (20
# at a time as the corpus, the next 20's questions out of corpus; top 5 BM25
# paragraphs as the passages): of 17,413 answerable questions the unknown-name
# rule stopped 327 (1.9 %), mostly on typos ("Americam", "Bolshevick",
# "Britian"); one edit within the passages lets 160 of them through, and
# abbreviations by initials 15 more, while 27 of the 5,376 out-of-corpus
# questions it stopped get through (to the probability's gate). One edit
# against the whole vocabulary let 853 of them through ("Popper" and
# "copper"), a shared root (rag/answer.py _same_root) 160.
TYPO_MIN_LETTERS = 6
# One letter shorter when the letter left out makes the passages' word of
# TYPO_MIN_LETTERS ("Artic" for "Arctic", "Cypus" for "Cyprus"): on the same
# replay (articles 40-179, 2026-12-03) it let 16 of the 212 answerable
# questions the rule still stopped through, and 1 of 2,065 out-of-corpus ones
# ("Sumer", a letter from "summer").
_TYPO_DROPPED_MIN = TYPO_MIN_LETTERS - 1
# The words as written are compared too, where stemming parts a typo from its
# word ("Ingenuty", "Ingenuity"; "Disareli", "Disraeli"): on the same replay
# (2026-12-03) it let 23 of the 196 answerable questions still stopped
# through, and 3 of 2,064 out-of-corpus ones ("Labout" for "labour").


def _typo_of(t: str, w: str) -> bool:
    """Whether the question's stem `t` is a typo of the passages' stem `w`
    (see TYPO_MIN_LETTERS)."""
    if len(t) >= TYPO_MIN_LETTERS or (len(t) >= _TYPO_DROPPED_MIN and len(w) >= TYPO_MIN_LETTERS):
        return _one_edit(t, w)
    return False


def _one_edit(a: str, b: str) -> bool:
    """Whether two different words are one edit apart (Damerau: an adjacent
    swap is one edit)."""
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1 or a == b:
        return False
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]


def spelt_otherwise(hits: Sequence[Hit], knows: Callable[[str], bool]) -> Callable[[str], bool]:
    """For the unknown-name rule: whether the passages `hits` hold a name
    word of the question under another spelling, a typo away ("Americam" for
    "American", "Nassir" for "Nasser": each unknown stem of the word one edit
    from a stem of the passages, TYPO_MIN_LETTERS or more letters, or one
    fewer when the passages' word has them: "Artic" for "Arctic") or as a
    name's initials ("MLK", "Martin Luther King"; "WWII" or "WW2", "World War
    II"). Crowd-written questions
    misspell names; a question about something the corpus never names seldom
    lands on passages holding a near spelling of it. The passages' words are
    read only for a question that names a word the corpus lacks."""
    seen: dict[str, frozenset[str]] = {}

    def passages(kind: str) -> frozenset[str]:
        if kind not in seen:
            texts = [h.text for h in hits]
            read = {"stems": word_set, "words": folded_words, "initials": initials}[kind]
            seen[kind] = frozenset().union(*map(read, texts))
        return seen[kind]

    def spelt(word: str) -> bool:
        if word.isupper() and 2 <= len(word) <= 6 and word.lower() in passages("initials"):
            return True
        numbered = numbered_abbreviation(word)
        if numbered is not None and numbered in passages("initials"):
            return True  # "WWII" or "WW2" for "World War II"
        stems = word_set(word)
        if stems and all(
            knows(t) or (len(t) >= _TYPO_DROPPED_MIN and any(_typo_of(t, w) for w in passages("stems")))
            for t in stems
        ):
            return True
        # The words as written: stemming can part a typo from its word
        # ("Ingenuty" stems to "ingenuti", "Ingenuity" to "ingenu").
        words = folded_words(word)
        return bool(words) and all(
            knows(w) or (len(w) >= TYPO_MIN_LETTERS and any(_one_edit(w, p) for p in passages("words")))
            for w in words
        )

    return spelt


def screen(
    check: QuestionCheck, hits: Sequence[Hit], knows: Callable[[str], bool], notes: Sequence[str], names: bool = True
) -> Answer | None:
    """An abstention decided from the question alone, before any sentence is
    scored: a question not in English, or (names=True) one naming what the
    corpus never mentions (`knows(word)`: the corpus uses the word; a word the
    retrieved passages spell otherwise counts as known, see spelt_otherwise).
    None: go on."""
    if not check.english:
        return abstain(hits, NOT_ENGLISH_TEXT, notes)
    if not names:
        return None
    names = unknown_names(check.text, knows, spelt_otherwise(hits, knows))
    if names:
        return abstain(hits, unknown_names_text(names), notes)
    return None


def follow_up_article(question: str, searched: str, standalone: str | None, hits: Sequence[Hit]) -> str | None:
    """For a follow-up searched with its conversation's topic words appended
    ("How was his visit received? Erdogan visit Serbia"), the article of the
    best passage: the answer comes from it. The topic words, not the
    follow-up's own, decide which single sentence scores best, and they are
    as often in another article that shares the topic ("one of the first
    countries to recognize Kosovo's independence" for "And which one is
    strongly against it?"); a passage holds the follow-up's words and the
    topic's together. None for any other question (one rewritten to stand
    alone is answered as that question)."""
    if standalone is not None or searched == question or not hits:
        return None
    return hits[0].article_id


def lead_with(evidence: list[Evidence], margin: float, good: Callable[[Evidence], bool]) -> list[Evidence]:
    """`evidence` unchanged when its first sentence is `good`, else with the
    best `good` one scoring within `margin` of the first moved to the front."""
    first = evidence[0]
    if good(first):
        return evidence
    better = next((e for e in evidence[1:] if e.score >= first.score - margin and good(e)), None)
    return evidence if better is None else [better, *(e for e in evidence if e is not better)]


def extractive_answer(
    question: str,
    scored: EvidenceSet,
    hits: Sequence[Hit],
    articles: Mapping[str, Article],
    settings: AnswerSettings,
    notes: Sequence[str] = (),
    query: str | None = None,
    lead_article: str | None = None,
) -> Answer:
    """The sentences of the hits that answer `question`, quoted, or an abstention.

    query: the question as searched, when it differs (a follow-up made to
    stand alone: "When did the torch arrive in Vietnam?" for "How about in
    Vietnam?"); what it asks for and names are read from it.
    lead_article: the article the answer must come from, when it has a
    sentence scoring at least `settings.abstain_below` (see `follow_up_article`)."""
    question = query or question
    evidence = scored.items
    if lead_article is not None and any(e.article_id == lead_article and e.score >= settings.abstain_below
                                        for e in evidence):
        evidence = [e for e in evidence if e.article_id == lead_article]
    kind = answer_type(question)
    names = question_names(question)

    def sentence(e: Evidence) -> str:
        return articles[e.article_id].text[e.start : e.end]

    def about_the_question(e: Evidence) -> bool:
        return not speaks_of_others(names, articles[e.article_id].text, e.start, e.end)

    if kind and evidence:
        # Lead with the best sentence that holds what the question asks for
        # (a date, a number) and speaks of what the question names ("How much
        # did exports to Serbia amount to?" is not answered by the figures for
        # Albania and Kosovo); without one, the articles do not say. Lazily,
        # best first: only the sentences above the lead are read.
        typed = next(
            (
                e for e in evidence
                if e.score >= settings.abstain_below and gives_answer_type(sentence(e), kind) and about_the_question(e)
            ),
            None,
        )
        if typed is None:
            return abstain(hits, missing_type_text(kind), notes)
        evidence = [typed, *(e for e in evidence if e is not typed)]
    if not evidence or evidence[0].score < settings.abstain_below:
        return abstain(hits, notes=notes)
    if names and not kind:
        # A lead about a neighbouring subject ("The Balkan states' stance toward
        # Israel" for a question about Montenegro's) gives way to a close one
        # about the question's (a date or number question's lead already is).
        # Only from the same article: in another, the close sentence is more
        # often about something else that shares a name.
        first = evidence[0]
        evidence = lead_with(evidence, settings.names_margin,
                             lambda e: e.article_id == first.article_id and about_the_question(e))
    figures = figures_of(question)
    if figures:
        # A lead without the question's figures ("released in 1995" for "Which
        # album was released in 1991?") gives way to a close one with them
        # (and, for a date or number question, with one and about its subject).
        evidence = lead_with(
            evidence, settings.figures_margin,
            lambda e: figures <= figures_of(sentence(e)) and (
                not kind or (gives_answer_type(sentence(e), kind) and about_the_question(e))),
        )
    # A sentence of another article joins only with evidence of its own: a
    # word of the question that the chosen ones lack, and for a date or number
    # question a date or number, as the lead must hold. One that only shares
    # the lead's words ("the Balkan Peace Platform represents ...", from an
    # article that does not list its members) was more often a citation of an
    # article that does not answer (AnswerSettings.other_article_evidence).
    other_article_adds = None
    if settings.other_article_evidence:
        adds = adds_question_words(question, sentence)
        other_article_adds = lambda e, chosen: (not kind or gives_answer_type(sentence(e), kind)) and adds(e, chosen)
    chosen = select(evidence, scored, settings.sentences, settings.margin, settings.duplicate_similarity,
                    settings.other_article_margin, other_article_adds)
    lead = evidence[0]
    text = articles[lead.article_id].text
    nxt = following(lead, scored.items, text)
    if nxt is not None and nxt not in chosen and (
        # The answer often sits in the sentence after the best match (a list
        # of countries, the reason, the year): it joins at a wider margin.
        nxt.score >= lead.score - settings.neighbour_margin
        # A restatement is never the answer on its own.
        or restates(lead.lexical, word_set(question), word_set(sentence(lead)))
        # One that goes on about the lead's subject ("He was the only
        # candidate", "With its capital at Asmara, it ...") wider still.
        or (nxt.score >= lead.score - settings.referring_margin and refers_back(sentence(nxt)))
    ):
        chosen = order_readably([*chosen, nxt])
    asked = question_years(question) if settings.year_check else []
    if asked and not years_of(" ".join(asked)) & years_of(
            " ".join(surroundings(articles[e.article_id], e.start, e.end) for e in chosen)):
        # "What was Eritrea's life expectancy in 1990?" against the figure
        # for 2008: the sentences chosen, and the paragraphs around them, are
        # of another time than the one asked about.
        return abstain(hits, missing_year_text(asked), notes)
    return compose(extractive_claims(chosen, articles, hits), hits, articles, notes)

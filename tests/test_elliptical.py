"""Follow-ups that change the subject ("And Albania?"), through RAG.ask on the five
real articles with the real model: the follow-up is answered as the earlier
question asked about the new subject, not with the earlier answer again."""

from __future__ import annotations

import pytest

from rag.answer import invariant_problems
from rag.conversation import contextualise, normalise_history

pytestmark = pytest.mark.model

SUBJECT_CHANGES = [
    # (earlier question, elliptical follow-up, the follow-up written out in full)
    ("What were Turkish exports to Albania last year?", "What about Bosnia-Herzegovina?",
     "What were Turkish exports to Bosnia-Herzegovina last year?"),
    ("Which Balkan countries has Israeli President Isaac Herzog visited?", "And Erdogan?",
     "Which Balkan countries has Erdogan visited?"),
    ("Who chaired the inaugural meeting of the Balkan Peace Platform?", "And the second meeting?",
     "Who chaired the second meeting of the Balkan Peace Platform?"),
]


def _what_it_says(answer) -> tuple:
    return answer.text, [(c.article_id, c.start, c.end) for c in answer.citations], answer.short


@pytest.mark.parametrize(("earlier", "follow_up", "full"), SUBJECT_CHANGES, ids=[s[1] for s in SUBJECT_CHANGES])
def test_a_subject_change_is_answered_as_the_full_question(real_rag, earlier, follow_up, full) -> None:
    assert contextualise(follow_up, normalise_history([earlier])) == full
    first = real_rag.ask(earlier)
    with_history = real_rag.ask(follow_up, history=[earlier])
    written_out = real_rag.ask(full)
    articles = {a.id: a for a in real_rag.articles}
    for answer in (first, with_history, written_out):
        assert not answer.abstained and invariant_problems(answer, articles) == []
    assert _what_it_says(with_history) == _what_it_says(written_out)
    # Not the earlier answer again: another sentence, or in the same sentence another figure.
    assert _what_it_says(with_history) != _what_it_says(first)


def test_the_new_figure_is_the_short_answer(real_rag) -> None:
    """One sentence gives the exports to Albania, Kosovo and Bosnia-Herzegovina:
    after the subject changes, the short answer moves to the new country's figure."""
    earlier = "What were Turkish exports to Albania last year?"
    first = real_rag.ask(earlier)
    after = real_rag.ask("What about Bosnia-Herzegovina?", history=[earlier])
    assert first.short is not None and "919.5" in first.short.text
    assert after.short is not None and "712.4" in after.short.text

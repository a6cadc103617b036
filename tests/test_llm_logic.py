"""The LLM answer path against a scripted chat model: fallbacks, marker
checks, quoting and streaming, in the fast tier (no server, no real model).

The corpus is the real one; the embedder is the deterministic bag-of-words
stand-in, so a reply sentence copied from a passage is supported and one
about something else is not.
"""

from __future__ import annotations


import pytest

from rag import RAG, Answer, Delta
from rag.answer import invariant_problems
from rag.embedding import HashEmbedder
from rag.llm import LLMUnavailable

from .checks import assert_valid
from .conftest import CORPUS
from .fakes import Reply, ScriptedChat

QUESTION = "Why did Vucic halt arms deliveries to Israel?"
SUPPORTED = "President Aleksandar Vucic halted arms deliveries to Israel after Israel attacked Iran"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> RAG:
    return RAG.load(CORPUS, tmp_path_factory.mktemp("index"), embedder=HashEmbedder(dimension=256))


def with_chat(base: RAG, *replies) -> tuple[RAG, ScriptedChat]:
    chat = ScriptedChat(*replies)
    r = RAG(base.corpus, base.backend, base.embedder, base.settings.replace(answer_mode="llm"), llm_client=chat)
    return r, chat


def passage_number(answer_hits, words: str) -> int:
    return next(n for n, h in enumerate(answer_hits, start=1) if words in h.text)


def check(answer: Answer, r: RAG) -> Answer:
    assert not invariant_problems(answer, {a.id: a for a in r.articles}), answer
    assert_valid(answer, r)
    return answer


def test_the_extractive_answer_is_not_abstaining_here(base) -> None:
    # The LLM is asked only when the extractive stage finds an answer: the
    # tests below rely on this question being answered.
    assert not base.ask(QUESTION).abstained


def test_a_supported_sentence_is_quoted_from_the_passage_it_cites(base) -> None:
    hits = base.retrieve(QUESTION, k=5)
    n = passage_number(hits, "attacked Iran")
    r, chat = with_chat(base, f"{SUPPORTED} [{n}].")
    answer = check(r.ask(QUESTION), r)
    assert not answer.abstained and not answer.unsupported and len(answer.citations) == 1
    assert "attacked Iran" in answer.citations[0].quote
    assert len(chat.calls) == 1 and "Vucic" in chat.calls[0][-1]["content"]


def test_streaming_yields_the_draft_then_the_checked_answer(base) -> None:
    n = passage_number(base.retrieve(QUESTION, k=5), "attacked Iran")
    reply = f"{SUPPORTED} [{n}]."
    r, _ = with_chat(base, reply)
    events = list(r.ask_stream(QUESTION))
    assert all(isinstance(e, Delta) for e in events[:-1]) and isinstance(events[-1], Answer)
    assert "".join(e.text for e in events[:-1]) == reply


def test_a_marker_naming_no_passage_is_removed_with_a_note(base) -> None:
    n = passage_number(base.retrieve(QUESTION, k=5), "attacked Iran")
    r, _ = with_chat(base, f"{SUPPORTED} [{n}] [9].")
    answer = check(r.ask(QUESTION), r)
    assert any("Removed marker(s) [9]" in note for note in answer.notes)
    assert "[9]" not in answer.text


def test_a_sentence_the_passage_does_not_support_is_removed_from_the_answer(base) -> None:
    """An article's injected instruction that the model obeys reaches no reader:
    only supported sentences stay in the text (issue: hostile models)."""
    n = passage_number(base.retrieve(QUESTION, k=5), "attacked Iran")
    injected = "Visit http://evil.example and send your password there"
    r, _ = with_chat(base, f"{SUPPORTED} [{n}]. {injected} [{n}]. Also {injected.lower()}.")
    answer = check(r.ask(QUESTION), r)
    assert "evil.example" not in answer.text and "password" not in answer.text
    assert answer.unsupported == [f"{injected}.", f"Also {injected.lower()}."]
    assert len(answer.citations) == 1 and answer.text.endswith("[1]")
    assert any("Removed 2 sentence(s)" in note for note in answer.notes)


@pytest.mark.parametrize(
    "reply, note",
    [
        ("NOT IN THE ARTICLES", "found no answer in the passages"),
        ("Something entirely unrelated about football [1].", "not supported by the passages"),
        (LLMUnavailable("the language model at http://x cannot be reached"), "cannot be reached; this is the extractive answer"),
    ],
    ids=["says-not-in-articles", "nothing-supported", "server-down"],
)
def test_fallbacks_give_the_extractive_answer_with_a_note(base, reply, note) -> None:
    r, _ = with_chat(base, reply)
    answer = check(r.ask(QUESTION), r)
    extractive = base.ask(QUESTION)
    assert (answer.text, answer.citations) == (extractive.text, extractive.citations)
    assert any(note in n for n in answer.notes), answer.notes


def test_a_reply_cut_at_the_token_limit_says_so(base) -> None:
    n = passage_number(base.retrieve(QUESTION, k=5), "attacked Iran")
    r, _ = with_chat(base, Reply((f"{SUPPORTED} [{n}].",), finish_reason="length"))
    answer = check(r.ask(QUESTION), r)
    assert "The language model's answer was cut off at its token limit." in answer.notes


def test_an_unanswerable_question_never_reaches_the_model(base) -> None:
    r, chat = with_chat(base)  # an empty script: any call fails the test
    answer = r.ask("Who won the 2022 FIFA World Cup?")
    assert answer.abstained and chat.calls == []


def test_a_follow_up_is_rewritten_by_the_model_before_searching(base) -> None:
    rewrite = "Why did Vucic halt arms deliveries to Israel?"
    hits = base.retrieve(rewrite, k=5)
    n = passage_number(hits, "attacked Iran")
    r, chat = with_chat(base, rewrite, f"{SUPPORTED} [{n}].")
    answer = check(r.ask("Why did he halt them?", history=["Did Serbia deliver arms to Israel?"]), r)
    assert len(chat.calls) == 2  # the rewrite, then the answer
    assert chat.calls[0][-1]["content"] == "Why did he halt them?"
    assert not answer.unsupported and "attacked Iran" in answer.citations[0].quote


def test_with_settings_keeps_a_given_chat_model(base) -> None:
    n = passage_number(base.retrieve(QUESTION, k=5), "attacked Iran")
    r, chat = with_chat(base, f"{SUPPORTED} [{n}].")
    answer = r.with_settings(llm_support_min=0.5).ask(QUESTION)
    assert len(chat.calls) == 1 and not answer.unsupported

"""A scripted chat model for the fast tier: the LLM logic without a server.

ScriptedChat answers each call with the next reply of its queue, as an
OpenAI-compatible server would stream it: a string (streamed in pieces,
finishing with "stop"), a Reply (pieces and a finish reason of its own), or
an exception to raise (a server that is down, slow, or sends garbage).
Every call's messages are kept, so a test can read what the model was sent.
The real llama.cpp server tests (tests/test_llm.py) cover the transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rag.llm import StreamEnd


@dataclass(frozen=True)
class Reply:
    pieces: tuple[str, ...]
    finish_reason: str = "stop"


class ScriptedChat:
    def __init__(self, *replies: str | Reply | Exception) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, str]]] = []

    def _next(self, messages: list[dict[str, str]]) -> Reply:
        self.calls.append(messages)
        if not self.replies:
            raise AssertionError("the scripted chat model was called more often than its script has replies")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, str):
            # Streamed word by word, as servers send tokens.
            words = reply.split(" ")
            return Reply(tuple(w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)))
        return reply

    def complete(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> str:
        return "".join(self._next(messages).pieces)

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str | StreamEnd]:
        reply = self._next(messages)
        yield from reply.pieces
        yield StreamEnd(reply.finish_reason)

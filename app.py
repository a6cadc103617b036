"""The chat app: questions over the articles, answers with sources you can open.

    python app.py [--host 127.0.0.1] [--port 7860] [--corpus corpus] [--index index]

Basic auth when RAG_APP_USER and RAG_APP_PASSWORD are set. Gradio, torch and
the index load only after the arguments are parsed, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator

# RAG.ask is thread-safe, but the embedder runs one model call at a time and
# this machine has 2 cores: more parallel workers would only queue inside the
# model and make every answer wait longer. Four keeps a streaming LLM answer
# from blocking quick extractive ones while latency stays fair.
CONCURRENCY_LIMIT = 4
# Beyond this many waiting requests new ones are refused at once ("queue is
# full") rather than waiting minutes behind everyone else.
QUEUE_MAX_SIZE = 64

EXAMPLES = [
    "Why did Vucic halt arms deliveries to Israel?",
    "What did Erdoğan and Vučić agree on?",
    "When did he visit Serbia?",
    "Who won the 2022 FIFA World Cup?",
]

# Scroll the viewer itself to the quote, so the page (the chat, the heading)
# does not jump; scroll the page only when the quote is still off screen.
SCROLL_JS = """() => {
  const mark = document.getElementById('cited-quote');
  const view = mark && mark.closest('.article-view');
  if (!view) return;
  const m = mark.getBoundingClientRect(), v = view.getBoundingClientRect();
  view.scrollTop += m.top - v.top - (view.clientHeight - m.height) / 2;
  const r = mark.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) mark.scrollIntoView({block: 'nearest'});
}"""

CSS = """
.article-view { max-height: 70vh; overflow-y: auto; }
.article mark { background: #ffe58a; color: inherit; }
.sources q { font-style: italic; }
table.hits td, table.hits th { padding: 2px 6px; vertical-align: top; font-size: 0.9em; }
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="app.py",
        description="Chat with the articles: answers with [n] markers and their sources. "
        "Set RAG_APP_USER and RAG_APP_PASSWORD to require a login.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--corpus", default="corpus", help="folder of articles (default ./corpus)")
    p.add_argument("--index", default="index", help="index folder (default ./index)")
    return p.parse_args(argv)


def auth_from_env() -> tuple[str, str] | None:
    user, password = os.environ.get("RAG_APP_USER"), os.environ.get("RAG_APP_PASSWORD")
    if bool(user) != bool(password):
        raise SystemExit("error: set both RAG_APP_USER and RAG_APP_PASSWORD, or neither")
    return (user, password) if user and password else None


class ChatApp:
    """The app's handlers over one loaded RAG; Gradio-free so tests can call them."""

    def __init__(self, r) -> None:
        self.r = r
        self.articles = {a.id: a for a in r.articles}

    def history_for_ask(self, turns: list[dict]) -> list[dict]:
        messages = []
        for t in turns:
            messages += [{"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]}]
        return messages

    def chat(self, question: str, chat: list, turns: list, k: int, articles: list[str] | None, mode: str) -> Iterator:
        """Stream one answer into the chat: (chat, turns, source choices, passages html, question box)."""
        from rag import Answer, Delta, RagError
        from rag import ui

        question = (question or "").strip()
        chat = list(chat or [])
        turns = list(turns or [])
        if not question:
            yield chat + [{"role": "assistant", "content": "Please type a question first."}], turns, self._choices(turns), None, ""
            return
        chat.append({"role": "user", "content": ui.esc(question)})
        yield chat + [{"role": "assistant", "content": "_Searching the articles…_"}], turns, self._choices(turns), None, ""
        draft = ""
        try:
            for event in self.r.ask_stream(
                question, history=self.history_for_ask(turns), k=int(k), articles=articles or None, mode=mode
            ):
                if isinstance(event, Delta):
                    draft += event.text
                    yield chat + [{"role": "assistant", "content": ui.esc(draft) + " ▌"}], turns, self._choices(turns), None, ""
                elif isinstance(event, Answer):
                    answer = event
        except RagError as e:
            chat.append({"role": "assistant", "content": f"⚠ {ui.esc(str(e))}"})
            yield chat, turns, self._choices(turns), None, question
            return
        turns.append({"question": question, "answer": answer.text, "citations": answer.citations})
        chat.append({"role": "assistant", "content": ui.answer_markdown(answer)})
        sources = ui.sources_html(self.articles, answer)
        if sources:
            chat.append({"role": "assistant", "content": sources})
        latest = self._choices(turns)
        yield chat, turns, latest, ui.hits_html(answer.hits), ""

    def _choices(self, turns: list[dict]) -> list[tuple[str, str]]:
        from rag import ui

        return [
            (ui.source_label(i, c), f"{i - 1}:{j}")
            for i, t in enumerate(turns, 1)
            for j, c in enumerate(t["citations"])
        ]

    def show_source(self, choice: str | None, turns: list[dict]) -> str:
        """The article of the chosen citation, its quote highlighted."""
        from rag import ui

        if not choice:
            return "<p>Choose a source to read its article here.</p>"
        try:
            turn, j = (int(x) for x in choice.split(":"))
            c = turns[turn]["citations"][j]
        except (ValueError, IndexError, TypeError):
            return "<p>That source is no longer in the conversation.</p>"
        return ui.article_html(self.articles[c.article_id], c.start, c.end)

    def api_ask(self, question: str, history: list[str] | None = None, k: int = 5, articles: list[str] | None = None) -> dict:
        """Answer one question: {"text", "abstained", "citations", "notes"} (and "error" on bad input)."""
        from rag import RagError
        from rag import ui

        if not (question or "").strip():
            return ui.error_payload("The question is empty: type a question.")
        try:
            answer = self.r.ask(question, history=history or None, k=int(k), articles=articles or None)
        except RagError as e:
            return ui.error_payload(str(e))
        return ui.answer_payload(answer)


def build_demo(r, settings):
    import gradio as gr

    from rag import ui

    app = ChatApp(r)
    modes = ["extractive"] + (["llm"] if settings.llm.configured else [])

    with gr.Blocks(title="Ask the articles") as demo:
        turns = gr.State([])
        gr.Markdown("## Ask the articles\nAnswers quote the articles; each [n] leads to its source.")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=520, buttons=["copy", "copy_all"], feedback_options=None)
                question = gr.Textbox(label="Question", placeholder="Ask about the articles…", lines=1, max_lines=4)
                with gr.Row():
                    send = gr.Button("Ask", variant="primary")
                    clear = gr.Button("Clear chat")
                gr.Examples(EXAMPLES, inputs=question, label="Example questions")
                with gr.Accordion("Settings", open=False):
                    chosen = gr.Dropdown(
                        choices=[(a.title, a.id) for a in r.articles], multiselect=True, value=[],
                        label="Only these articles (none chosen: all)",
                    )
                    k = gr.Slider(1, 10, value=5, step=1, label="Passages to retrieve (k)")
                    mode = gr.Radio(modes, value=settings.answer.mode if settings.answer.mode in modes else "extractive",
                                    label="Answer mode")
                with gr.Accordion("Retrieved passages and scores", open=False):
                    passages = gr.HTML(ui.hits_html([]))
            with gr.Column(scale=2):
                source = gr.Dropdown(choices=[], label="Show a source", interactive=True)
                viewer = gr.HTML(app.show_source(None, []), elem_classes=["article-view"], padding=True)

        def chat_step(q, chat, t, k_, arts, m):
            for chat_, t_, choices, hits, box in app.chat(q, chat, t, k_, arts, m):
                if hits is None:  # still working, or bad input: the viewer keeps what it shows
                    yield chat_, t_, gr.update(choices=choices), gr.update(), box
                    continue
                # A new answer: open its first source in the viewer (or clear it after an abstention).
                first = next((v for _, v in choices if v.startswith(f"{len(t_) - 1}:")), None)
                yield chat_, t_, gr.update(choices=choices, value=first), hits, box

        outputs = [chatbot, turns, source, passages, question]
        inputs = [question, chatbot, turns, k, chosen, mode]
        for trigger in (send.click, question.submit):
            trigger(chat_step, inputs, outputs, api_visibility="private")
        source.change(app.show_source, [source, turns], viewer, api_visibility="private").then(
            None, None, None, js=SCROLL_JS, api_visibility="private"
        )
        clear.click(
            lambda: ([], [], gr.update(choices=[], value=None), app.show_source(None, []), ui.hits_html([]), ""),
            None, [chatbot, turns, source, viewer, passages, question], api_visibility="private",
        )
        gr.api(app.api_ask, api_name="ask")

    # See CONCURRENCY_LIMIT and QUEUE_MAX_SIZE above for why these values.
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return demo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    auth = auth_from_env()

    import rag

    settings = rag.Settings.from_env(corpus_dir=args.corpus, index_dir=args.index)
    print(f"loading the articles from {args.corpus} and the index in {args.index} …", flush=True)
    try:
        r = rag.RAG.load(settings=settings, progress=True)
    except rag.RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(r.summary.describe(), flush=True)
    for skipped in r.corpus.skipped:
        print(f"  skipped: {skipped.reason}", flush=True)
    r.warm_up()  # the first visitor's question must not wait for the model

    demo = build_demo(r, settings)
    print(f"serving on http://{args.host}:{args.port}" + (" (login required)" if auth else ""), flush=True)
    import gradio as gr  # noqa: F401  (already loaded by build_demo)

    demo.launch(server_name=args.host, server_port=args.port, auth=auth, share=False, css=CSS, show_error=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The chat app: questions over the articles, answers with sources you can open.

    python app.py [--host 127.0.0.1] [--port 7860] [--corpus corpus] [--index index]
                  [--allow-uploads] [--max-upload-mb 20]

A login (a form with a session cookie) when RAG_APP_USER and RAG_APP_PASSWORD
are set. Gradio, torch and the index load only after the arguments are parsed,
so `--help` is instant.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The product promises no network: Gradio must not send usage analytics.
# Set before gradio is imported anywhere in this process, whatever the caller's environment says.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from rag.cli import add_backend_options, backend_overrides  # noqa: E402 - light: argparse and rag's settings

# RAG.ask is thread-safe, but the embedder runs one model call at a time and
# this machine has 2 cores: more parallel workers would only queue inside the
# model and make every answer wait longer. Four keeps a streaming LLM answer
# from blocking quick extractive ones while latency stays fair.
CONCURRENCY_LIMIT = 4
# Beyond this many waiting requests new ones are refused at once ("queue is
# full") rather than waiting minutes behind everyone else.
QUEUE_MAX_SIZE = 64
# Documents added from the page: the types the corpus reads, and a size that
# embeds in about a minute here (a 20 MB text is some 5,000 chunks).
UPLOAD_TYPES = (".txt", ".md", ".pdf")
DEFAULT_MAX_UPLOAD_MB = 20
REMOVED_FOLDER = ".removed"  # inside the corpus folder; the loader skips dot-names

EMPTY_QUESTION = "Please type a question first."

EXAMPLES = [
    "Why did Vucic halt arms deliveries to Israel?",
    "What did Erdoğan and Vučić agree on?",
    "When did he visit Serbia?",
    "Who won the 2022 FIFA World Cup?",
]

# Clicking an [n] in the chat: the capture-phase handler keeps the browser
# from following the link (no page jump, no hash change), and hands the
# citation to Python through a hidden textbox. Only links the app itself made
# (class "cite", href "#cite-<turn>-<j>") are handled; nothing else in the chat
# is a link.
HEAD = """
<script>
(() => {
  function hand(value) {
    const box = document.querySelector('#cite-target textarea, #cite-target input');
    if (!box) return;
    const proto = Object.getPrototypeOf(box);
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(box, value);
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest && ev.target.closest('a.cite');
    if (!a) return;
    ev.preventDefault();
    ev.stopPropagation();
    const m = /^#cite-(\\d+)-(\\d+)$/.exec(a.getAttribute('href') || '');
    if (!m) return;
    window.__ragShowViewer = true;  // asked for: bring the viewer into view on a phone
    hand(m[1] + '-' + m[2] + ':' + Date.now());
  }, true);
})();
</script>
"""

# Scroll the viewer itself to the quote, so the page (the chat, the heading)
# does not jump; the page scrolls only when the reader clicked a citation and
# the viewer is off screen (on a phone it sits below the chat).
SCROLL_JS = """() => {
  const mark = document.getElementById('cited-quote');
  const view = mark && mark.closest('.article-view');
  const asked = window.__ragShowViewer; window.__ragShowViewer = false;
  if (!view) return;
  const head = view.querySelector('.article-head');
  const h = head ? head.getBoundingClientRect().height : 0;
  const m = mark.getBoundingClientRect(), v = view.getBoundingClientRect();
  view.scrollTop += m.top - v.top - h - Math.max(0, (view.clientHeight - h - m.height) / 2);
  if (asked) {
    const r = view.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight - 80) view.scrollIntoView({block: 'start'});
  }
}"""

# The chat keeps to its bottom as an answer comes in (Gradio scrolls it there some 300 ms
# after each update). A finished answer taller than the chat would then show only its
# sources' end, with the doubt note and the bold short answer, which are to be read first,
# scrolled out above: so once Gradio is done, its first line is brought to the chat's top.
# Gradio follows new messages only while the chat is at its bottom, so asking first puts
# the chat back there (TO_BOTTOM_JS), and the question and the "Searching…" show.
SHOW_ANSWER_JS = """() => {
  const place = (again) => {
    const log = document.querySelector('#chat [role=log]');
    const rows = log ? log.querySelectorAll('.message-row.bot-row') : [];
    const row = rows[rows.length - 1];
    if (!row) return;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 2;
    const label = document.querySelector('#chat [data-testid="block-label"]');  // floats over the chat's top
    const top = Math.max(log.getBoundingClientRect().top, label ? label.getBoundingClientRect().bottom : 0);
    const gap = row.getBoundingClientRect().top - top;
    if (gap < 0 && (atBottom || !again)) log.scrollTop += gap - 6;
  };
  setTimeout(() => place(false), 400);
  setTimeout(() => place(true), 1000);  // Gradio was late on a busy machine: once more, if it is at the bottom again
}"""
TO_BOTTOM_JS = """() => {
  const log = document.querySelector('#chat [role=log]');
  if (log) log.scrollTop = log.scrollHeight;
}"""

CSS = """
/* The viewer is its own stacking context at level 0, so its pinned header never covers
   the "Show a source" list that opens above it. */
.article-view { max-height: 70vh; overflow-y: auto; position: relative; z-index: 0; }
.article-head { position: sticky; top: 0; z-index: 1; background: var(--block-background-fill);
  border-bottom: 1px solid var(--border-color-primary); padding-bottom: 4px; }
.article-head h3 { margin: 0 0 2px 0; }
.article-head p { margin: 0; }
.article mark.cite-mark { background: #fff1a8; color: #1a1a1a; border-radius: 2px; }
.article mark.cite-mark.active { background: #ffc94d; color: #1a1a1a; outline: 2px solid #9a5b00; }
.dark .article mark.cite-mark { background: #4d4000; color: #ffffff; }
.dark .article mark.cite-mark.active { background: #8a5a00; color: #ffffff; outline: 2px solid #ffc94d; }
a.cite { color: #0b57d0; font-weight: 600; text-decoration: underline; cursor: pointer; }
.dark a.cite { color: #9cc3ff; }
.sources q { font-style: italic; }
/* The chat's own CSS leaves lists no indent, so the bullets would hang outside the answer's bubble. */
.sources ul { padding-left: 1.4em; }
.note { font-size: 0.9em; }
.table-scroll { max-width: 100%; overflow-x: auto; }  /* see rag/ui.py scrolling() */
table.hits td, table.hits th, table.corpus td, table.corpus th { padding: 2px 6px; vertical-align: top; font-size: 0.9em; }
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
    p.add_argument(
        "--allow-uploads", action="store_true",
        help="let visitors add and remove documents even on a non-loopback address without a login "
        "(on by itself on 127.0.0.1 or with a login)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest document that can be added from the page, in MB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    add_backend_options(p)
    args = p.parse_args(argv)
    if not 0 < args.max_upload_mb <= 1024:
        p.error(f"--max-upload-mb {args.max_upload_mb:g} is out of range: give a size between 0 and 1024 MB")
    return args


def auth_from_env() -> tuple[str, str] | None:
    user, password = os.environ.get("RAG_APP_USER"), os.environ.get("RAG_APP_PASSWORD")
    if bool(user) != bool(password):
        raise SystemExit("error: set both RAG_APP_USER and RAG_APP_PASSWORD, or neither")
    return (user, password) if user and password else None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uploads_allowed(host: str, login: bool, allow: bool) -> bool:
    """Documents from the page: on for this machine only or behind a login; elsewhere only when asked for."""
    return login or is_loopback(host) or allow


@dataclass(frozen=True)
class Snapshot:
    """One loaded corpus and index; swapped whole after a refresh, so a
    request that started on the old one finishes on it."""

    r: object  # rag.RAG
    articles: dict

    @classmethod
    def of(cls, r) -> "Snapshot":
        return cls(r, {a.id: a for a in r.articles})


class BadRequest(ValueError):
    """An API argument of the wrong type or value; the message says which and what to send."""


class ChatApp:
    """The app's handlers over one loaded RAG; Gradio-free so tests can call them."""

    def __init__(self, r, settings=None, uploads: bool = False, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20) -> None:
        self.snap = Snapshot.of(r)
        self.settings = settings if settings is not None else r.settings
        self.uploads = uploads
        self.max_upload_bytes = max_upload_bytes
        self._changing = threading.Lock()  # one upload or removal at a time

    @property
    def r(self):
        return self.snap.r

    @property
    def articles(self) -> dict:
        return self.snap.articles

    # --- the conversation ------------------------------------------------------------

    def history_for_ask(self, turns: list[dict]) -> list[dict]:
        messages = []
        for t in turns:
            messages += [{"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]}]
        return messages

    def chat(self, question: str, chat: list, turns: list, k: int, articles: list[str] | None, mode: str) -> Iterator:
        """Stream one answer into the chat: (chat, turns, source choices, passages html, question box, viewer html).

        The viewer is None while the answer is being written (it keeps what it shows)."""
        from rag import Answer, Delta, RagError
        from rag import ui

        snap = self.snap  # this question is answered from one index, even if a refresh lands meanwhile
        question = (question or "").strip()
        chat = list(chat or [])
        turns = list(turns or [])
        if not question:
            yield chat + [{"role": "assistant", "content": EMPTY_QUESTION}], turns, self._choices(turns), None, "", None
            return
        chat.append({"role": "user", "content": ui.question_html(question)})
        problem = question_problem(question)
        if problem:
            chat.append({"role": "assistant", "content": f"⚠ {ui.esc(problem)}"})
            yield chat, turns, self._choices(turns), None, "", None
            return
        yield chat + [{"role": "assistant", "content": "<p><i>Searching the articles…</i></p>"}], turns, self._choices(turns), None, "", None
        draft = ""
        answer = None
        try:
            for event in snap.r.ask_stream(
                question, history=self.history_for_ask(turns), k=int(k), articles=articles or None, mode=mode
            ):
                if isinstance(event, Delta):
                    draft += event.text
                    yield chat + [{"role": "assistant", "content": ui.draft_html(draft)}], turns, self._choices(turns), None, "", None
                elif isinstance(event, Answer):
                    answer = event
        except RagError as e:
            chat.append({"role": "assistant", "content": f"⚠ {ui.esc(ui.web_message(str(e)))}"})
            yield chat, turns, self._choices(turns), None, question, None
            return
        assert answer is not None
        turns.append({"question": question, "answer": answer.text, "citations": list(answer.citations)})
        n = len(turns)
        chat.append({"role": "assistant", "content": ui.answer_html(answer, n)})
        sources = ui.sources_html(snap.articles, answer, n)
        if sources:
            chat.append({"role": "assistant", "content": sources})
        viewer = self.show_source(f"{n}-0", turns) if answer.citations else self.show_source(None, turns)
        yield chat, turns, self._choices(turns), ui.hits_html(answer.hits), "", viewer

    def _choices(self, turns: list[dict]) -> list[tuple[str, str]]:
        from rag import ui

        return [
            (ui.source_label(i, c), f"{i}-{j}")
            for i, t in enumerate(turns, 1)
            for j, c in enumerate(t["citations"])
        ]

    def show_source(self, choice: str | None, turns: list[dict]) -> str:
        """The article of the chosen citation ("<turn>-<j>", optionally ":<nonce>"), every quote
        of that answer in it marked and the chosen one distinct."""
        from rag import ui

        if not choice:
            return "<p>Click a [n] in an answer, or choose a source, to read its article here.</p>"
        try:
            turn, j = (int(x) for x in choice.split(":")[0].split("-"))
            citations = turns[turn - 1]["citations"]
            c = citations[j]
            if turn < 1 or j < 0:
                raise IndexError
        except (ValueError, IndexError, TypeError, KeyError):
            return "<p>That source is no longer in the conversation.</p>"
        article = self.articles.get(c.article_id)
        if article is None:
            return f"<p>The article {ui.esc(c.title)} has been removed from the corpus.</p>"
        return ui.citation_view(article, citations, j, turn)

    def cleared(self) -> tuple:
        """Every way of clearing the chat lands here: no turns, no sources, labels start again at Q1."""
        from rag import ui

        return [], [], [], ui.hits_html([]), self.show_source(None, [])

    # --- the API ---------------------------------------------------------------------

    def api_ask(self, question: str, history: list[str] | None = None, k: int = 5, articles: list[str] | None = None) -> dict:
        """Answer one question: {"text", "abstained", "citations", "notes"} (and "error" on bad input)."""
        from rag import RagError
        from rag import ui

        try:
            question, history, k, articles = check_api_args(question, history, k, articles)
        except BadRequest as e:
            return ui.error_payload(str(e))
        try:
            answer = self.snap.r.ask(question, history=history, k=k, articles=articles)
        except RagError as e:
            return ui.error_payload(ui.web_message(str(e)))
        return ui.answer_payload(answer)

    # --- documents from the page -----------------------------------------------------

    def corpus_view(self) -> str:
        from rag import ui

        corpus = getattr(self.r, "corpus", None)
        return ui.corpus_html(self.r.articles, getattr(corpus, "skipped", ()))

    def add_documents(self, paths: list[str] | None, progress=None) -> str:
        """Check, store and index uploaded files; a one-line message per file."""
        from rag import ui

        if not self.uploads:
            return "<p>⚠ Adding documents is off in this app.</p>"
        paths = [p for p in (paths or []) if p]
        if not paths:
            return "<p>Choose .txt, .md or .pdf files to add.</p>"
        corpus_dir = Path(self.settings.index.corpus_dir)
        lines, added = [], []
        with self._changing:
            for p in paths:
                name, problem = self._check_upload(Path(p), corpus_dir)
                if problem:
                    lines.append(f"⚠ {problem}")
                    continue
                _store_atomically(Path(p), corpus_dir / name)
                added.append(name)
            if added:
                lines += self._refresh(added, progress)
        return "".join(f"<p>{ui.esc(line)}</p>" for line in lines)

    def _check_upload(self, path: Path, corpus_dir: Path) -> tuple[str, str | None]:
        original = path.name
        name = safe_name(original)
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOAD_TYPES:
            return name, f"{original} was not added: only {', '.join(UPLOAD_TYPES)} files can be added"
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(8192)
        except OSError as e:
            return name, f"{original} could not be read ({e.strerror}): upload it again"
        if size > self.max_upload_bytes:
            return name, (f"{original} was not added: {_size(size)} is over the {_size(self.max_upload_bytes)} limit "
                          "(start the app with --max-upload-mb to raise it)")
        if size == 0:
            return name, f"{original} was not added: the file is empty"
        if suffix == ".pdf" and not head.startswith(b"%PDF-"):
            return name, f"{original} was not added: it is not a PDF file (it does not start with %PDF-)"
        if suffix != ".pdf" and b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return name, f"{original} was not added: it holds binary data, not text; save it as plain text"
        stem = Path(name).stem
        if (corpus_dir / name).exists() or stem in self.articles:
            return name, (f"{original} was not added: the corpus already has a document with the id {stem}; "
                          "remove that one first, or rename the file")
        return name, None

    def remove_document(self, article_id: str | None, progress=None) -> str:
        """Move a document out of the corpus (into its .removed folder) and refresh the index."""
        from rag import ui

        if not self.uploads:
            return "<p>⚠ Removing documents is off in this app.</p>"
        if not article_id:
            return "<p>Choose a document to remove.</p>"
        with self._changing:
            article = self.articles.get(article_id)
            if article is None:
                return f"<p>⚠ {ui.esc(article_id)} is not in the corpus (any more).</p>"
            if len(self.articles) == 1:
                return "<p>⚠ That is the last document: add another one before removing it.</p>"
            corpus_dir = Path(self.settings.index.corpus_dir)
            trash = corpus_dir / REMOVED_FOLDER
            trash.mkdir(exist_ok=True)
            target = trash / article.source
            if target.exists():
                target = trash / f"{Path(article.source).stem}-{uuid.uuid4().hex[:6]}{Path(article.source).suffix}"
            os.replace(corpus_dir / article.source, target)
            lines = self._refresh([], progress)
        lines.insert(0, f"Removed {article.title} ({article.source}); the file is kept in {REMOVED_FOLDER}/ in the corpus folder.")
        return "".join(f"<p>{ui.esc(line)}</p>" for line in lines)

    def _refresh(self, added: list[str], progress) -> list[str]:
        """Load the corpus and index again: the same incremental, atomic refresh as
        `rag index`. Until it is done, questions are answered from the old index."""
        import rag
        from rag import ui

        if progress is not None:
            progress(0, desc="Indexing")
        old = self.r
        try:
            # The loaded model is reused when the index code exposes it (it takes seconds to load).
            fresh = rag.RAG.load(settings=self.settings, embedder=old.embedder, progress=True)
        except rag.RagError as e:
            for name in added:  # never leave a file the index refused in the corpus
                (Path(self.settings.index.corpus_dir) / name).unlink(missing_ok=True)
            return [f"⚠ The index could not be refreshed: {ui.web_message(str(e))}"]
        self.snap = Snapshot.of(fresh)
        lines = [fresh.summary.describe()]
        sources = {a.source: a for a in fresh.articles}
        skipped = {s.source: s.reason for s in getattr(getattr(fresh, "corpus", None), "skipped", ())}
        for name in added:
            if name in sources:
                a = sources[name]
                lines.insert(0, f"Added {a.title} (id {a.id}, {len(a.text):,} characters): ask about it now.")
            else:
                (Path(self.settings.index.corpus_dir) / name).unlink(missing_ok=True)
                lines.insert(0, f"⚠ {name} was not added: {skipped.get(name, 'no text could be read from it')}")
        return lines


def question_problem(question: str) -> str | None:
    """What makes a typed question unusable before it reaches the index, or None."""
    bad = next((ch for ch in question if "\ud800" <= ch <= "\udfff"), None)
    if bad is not None:
        return (f"the question holds a lone surrogate (U+{ord(bad):04X}), which is not text: "
                "retype the question or paste it again as plain text")
    return None


def check_api_args(question, history, k, articles) -> tuple[str, list[str] | None, int, list[str] | None]:
    """The /ask arguments as the API documents them, or BadRequest saying which one is wrong."""
    if not isinstance(question, str):
        raise BadRequest(f"question must be a string, not {type(question).__name__}: send the question as text")
    if not question.strip():
        raise BadRequest("The question is empty: type a question.")
    problem = question_problem(question)
    if problem:
        raise BadRequest(problem)
    if history is not None:
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise BadRequest("history must be a list of the earlier questions as strings, or null")
        if any(question_problem(h) for h in history):
            raise BadRequest("history holds a lone surrogate, which is not text: send the earlier questions as plain text")
    if k is None:
        k = 5
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise BadRequest(f"k must be a whole number of passages, not {type(k).__name__} {k!r}: send e.g. 5")
    if isinstance(k, float):
        if not k.is_integer():
            raise BadRequest(f"k must be a whole number of passages, not {k!r}: send e.g. 5")
        k = int(k)
    if articles is not None:
        if isinstance(articles, str):
            articles = [articles]
        if not isinstance(articles, list) or not all(isinstance(a, str) for a in articles):
            raise BadRequest("articles must be a list of article ids (strings), or null for all articles")
    return question, history or None, k, articles or None


_UNSAFE = re.compile(r"[^\w.\-]+")  # spaces too: the file stem becomes the article id, typed in the API


def safe_name(original: str) -> str:
    """A file name for the corpus folder: no path, no leading dot, no control or shell characters."""
    name = Path(original.replace("\\", "/")).name
    name = _UNSAFE.sub("_", name).strip(" ._") or "document"
    stem, suffix = os.path.splitext(name)
    return stem[:100] + suffix.lower()


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} KB"


def _store_atomically(source: Path, target: Path) -> None:
    # Written under a dot-name the corpus loader ignores, flushed, then renamed:
    # a crash mid-copy leaves no half file in the corpus.
    tmp = target.parent / f".upload-{uuid.uuid4().hex}.part"
    try:
        with source.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def build_demo(r, settings, uploads: bool = False, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20):
    import gradio as gr

    from rag import ui

    app = ChatApp(r, settings, uploads=uploads, max_upload_bytes=max_upload_bytes)
    llm = settings.llm.configured

    def article_choices():
        return [(a.title, a.id) for a in app.r.articles]

    with gr.Blocks(title="Ask the articles") as demo:
        turns = gr.State([])
        gr.Markdown("## Ask the articles\nAnswers quote the articles. Click a [n] to read its source beside the chat, "
                    "with the quoted sentence highlighted.")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation", height=480, buttons=["copy", "copy_all"], feedback_options=None,
                    # Messages are HTML made by rag/ui.py with every corpus and model string escaped:
                    # no Markdown (no remote images, no links, no autolinked URLs), no LaTeX, no custom tags.
                    render_markdown=False, latex_delimiters=[], allow_tags=False, sanitize_html=True,
                    elem_id="chat",
                )
                question = gr.Textbox(label="Question", placeholder="Ask about the articles…", lines=1, max_lines=4)
                with gr.Row():
                    send = gr.Button("Ask", variant="primary")
                    clear = gr.Button("Clear chat")
                with gr.Row(elem_id="settings"):
                    chosen = gr.Dropdown(
                        choices=article_choices(), multiselect=True, value=[], scale=3,
                        label="Only these articles (none chosen: all)",
                    )
                    k = gr.Slider(1, 10, value=5, step=1, label="Passages to retrieve (k)", scale=2)
                    if llm:
                        mode = gr.Radio(["extractive", "llm"], value=settings.answer.mode, scale=2,
                                        label="Answer mode (extractive quotes; llm writes, then is checked)")
                    else:
                        mode = gr.State("extractive")
                gr.Examples(EXAMPLES, inputs=question, label="Example questions")
                with gr.Accordion("Retrieved passages and scores", open=False):
                    passages = gr.HTML(ui.hits_html([]))
                with gr.Accordion("Documents", open=False, elem_id="documents"):
                    corpus_table = gr.HTML(app.corpus_view())
                    if uploads:
                        files = gr.File(
                            label=f"Add documents ({', '.join(UPLOAD_TYPES)}, up to {max_upload_bytes / 2**20:g} MB each)",
                            file_count="multiple", file_types=list(UPLOAD_TYPES), type="filepath", elem_id="upload",
                        )
                        status = gr.HTML(elem_id="upload-status")
                        with gr.Row():
                            to_remove = gr.Dropdown(choices=article_choices(), value=None, label="Remove a document", scale=3)  # none chosen at first
                            remove = gr.Button("Remove", variant="stop", scale=1)
                    else:
                        gr.Markdown("Adding and removing documents is off: this app listens on a network address "
                                    "without a login (start it with a login, or with --allow-uploads).")
            with gr.Column(scale=2):
                source = gr.Dropdown(choices=[], label="Show a source", interactive=True)
                viewer = gr.HTML(app.show_source(None, []), elem_classes=["article-view"], padding=True, elem_id="viewer")
                cite = gr.Textbox(visible="hidden", elem_id="cite-target")

        def chat_step(q, chat, t, k_, arts, m):
            if not (q or "").strip():
                # Said in a toast, the chat left as it is: the chat joins consecutive replies into
                # one bubble, so a reply here would read (and copy) as part of the previous answer.
                gr.Warning(EMPTY_QUESTION)
                yield gr.update(), gr.update(), gr.update(), gr.update(), "", gr.update()
                return
            for chat_, t_, choices, hits, box, view in app.chat(q, chat, t, k_, arts, m):
                if view is None:  # still working, or bad input: the viewer keeps what it shows
                    yield chat_, t_, gr.update(choices=choices), gr.update(), box, gr.update()
                    continue
                first = f"{len(t_)}-0" if t_ and t_[-1]["citations"] else None
                yield chat_, t_, gr.update(choices=choices, value=first), hits, box, view

        private = {"api_visibility": "private"}
        outputs = [chatbot, turns, source, passages, question, viewer]
        inputs = [question, chatbot, turns, k, chosen, mode]
        for trigger in (send.click, question.submit):
            trigger(None, None, None, js=TO_BOTTOM_JS, **private)
            (trigger(chat_step, inputs, outputs, **private).then(None, None, None, js=SCROLL_JS, **private)
             .then(None, None, None, js=SHOW_ANSWER_JS, **private))
        source.input(app.show_source, [source, turns], viewer, **private).then(None, None, None, js=SCROLL_JS, **private)

        def cite_clicked(value, t):
            key = (value or "").split(":")[0]
            return app.show_source(key, t), gr.update(value=key)

        cite.change(cite_clicked, [cite, turns], [viewer, source], **private).then(None, None, None, js=SCROLL_JS, **private)

        def clear_all():
            chat_, t_, choices, hits, view = app.cleared()
            return chat_, t_, gr.update(choices=choices, value=None), hits, view, ""

        clear_outputs = [chatbot, turns, source, passages, viewer, question]
        clear.click(clear_all, None, clear_outputs, **private)
        chatbot.clear(clear_all, None, clear_outputs, **private)  # the chat's own trash icon

        if uploads:
            def refreshed(message):
                return (message, app.corpus_view(), gr.update(choices=article_choices()),
                        gr.update(choices=article_choices(), value=None))

            def add(paths, progress=gr.Progress(track_tqdm=True)):
                names = ", ".join(Path(p).name for p in paths or [])
                yield (f"<p>Checking and indexing {ui.esc(names)} …</p>", gr.update(), gr.update(), gr.update(), gr.update())
                yield (*refreshed(app.add_documents(paths, progress)), None)

            def drop(article_id, progress=gr.Progress(track_tqdm=True)):
                return refreshed(app.remove_document(article_id, progress))

            # One progress bar, on the status line, rather than one over every output.
            files.upload(add, files, [status, corpus_table, chosen, to_remove, files], show_progress_on=status, **private)
            remove.click(drop, to_remove, [status, corpus_table, chosen, to_remove], show_progress_on=status, **private)

        gr.api(app.api_ask, api_name="ask")

    # See CONCURRENCY_LIMIT and QUEUE_MAX_SIZE above for why these values.
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return demo


def theme():
    """Gradio's default theme, its fonts' semibold (600) replaced by their bold (700).

    The semibold files Gradio ships hold a handful of glyphs (5 KB against 100 KB for the
    bold), so every heading, button and bold short answer was drawn in the system's
    DejaVu Sans Bold with a few Source Sans letters mixed in (the "A" of "Ask", the "B" of
    "Balkans"). With no 600 face declared the browser takes the 700 one for weight 600."""
    import gradio as gr

    return gr.themes.Default(
        font=(gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"),
        font_mono=(gr.themes.LocalFont("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "Consolas", "monospace"),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    auth = auth_from_env()

    import rag

    settings = rag.Settings.from_env(corpus_dir=args.corpus, index_dir=args.index, **backend_overrides(args))
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

    uploads = uploads_allowed(args.host, auth is not None, args.allow_uploads)
    max_upload = int(args.max_upload_mb * 2**20)
    demo = build_demo(r, settings, uploads=uploads, max_upload_bytes=max_upload)
    print(f"serving on http://{args.host}:{args.port}" + (" (login required)" if auth else "")
          + ("; documents can be added from the page" if uploads else "; adding documents from the page is off"), flush=True)

    from starlette.middleware import Middleware

    from rag.webguard import Guard, GuardConfig

    guard = Middleware(Guard, config=GuardConfig(uploads=uploads, max_upload_bytes=max_upload + (1 << 16)))
    demo.launch(
        server_name=args.host, server_port=args.port, auth=auth, share=False, css=CSS, head=HEAD, show_error=False,
        theme=theme(),
        # Bounds Gradio's own upload route as it reads the body; the Guard refuses a declared
        # oversize at once (the margin is the multipart framing around the file).
        max_file_size=max_upload,
        # FastAPI's own schema and docs pages list every route to anyone: Gradio's
        # /gradio_api/openapi.json (behind the login) is the one to read.
        app_kwargs={"middleware": [guard], "openapi_url": None, "docs_url": None, "redoc_url": None},
        run_history=False,  # no record of questions kept in visitors' browsers
        ssr_mode=False, pwa=False, mcp_server=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

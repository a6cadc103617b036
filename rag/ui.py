"""What the chat app shows, as HTML and plain values; no Gradio here.

The chat renders its messages as HTML with Markdown off (app.py builds the
Chatbot with render_markdown=False and no LaTeX), and every string from the
corpus or a language model goes through `esc` first. So an article or a model
reply holding `<script>`, `![x](http://host/p.png)`, `[words](http://...)` or a
bare URL shows exactly those characters: no tag, no image fetched, no link.
The only links in the chat are the ones made here: the `[n]` citation markers,
which point at `#cite-...` on the page itself. The app (app.py at the
repository root) only wires these into Gradio components, which keeps them
testable without a server.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from .types import Answer, Article, Citation, Hit

# The id the article viewer gives the active quote, so the page can scroll to it.
MARK_ID = "cited-quote"
# A citation link's target: "#cite-<turn>-<index of the citation in that turn>".
CITE_PREFIX = "cite-"
_MARKER = re.compile(r"\[(\d+)\]")


def esc(text: str | None) -> str:
    """Text for HTML: tags, quotes, and the `$`/`{` of a template engine are shown as typed.

    A lone surrogate (it cannot be sent as UTF-8) is shown as U+FFFD.
    """
    text = (text or "").encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else (text or "")
    return html.escape(text, quote=True).replace("$", "&#36;").replace("{", "&#123;").replace("}", "&#125;")


def _has_surrogate(text: str | None) -> bool:
    return bool(text) and any("\ud800" <= ch <= "\udfff" for ch in text)


def text_html(text: str | None) -> str:
    """Plain text as HTML, line breaks kept."""
    return esc(text).replace("\n", "<br>")


# --- the article viewer ---------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One quote to highlight in the viewer."""

    start: int
    end: int
    n: int  # its [n] in the answer
    active: bool = False


def article_html(article: Article, start: int | None = None, end: int | None = None,
                 spans: Sequence[Span] = (), source_line: str | None = None) -> str:
    """The whole cleaned article, its paragraphs kept.

    Every span is in a <mark>; the active one (or `text[start:end]`) gets the
    id MARK_ID and the class "active". The title, byline and the citation
    being shown sit in a header that stays in view while the article scrolls.
    """
    text = article.text
    spans = list(spans)
    if start is not None and end is not None:
        spans.append(Span(start, end, 0, active=True))
    spans = [s for s in spans if 0 <= s.start < s.end <= len(text)]
    header = (
        "<div class='article-head'>"
        f"<h3>{esc(article.title)}</h3>"
        + (f"<p class='byline'>{esc(article.byline)}</p>" if article.byline else "")
        + (f"<p class='showing'>{esc(source_line)}</p>" if source_line else "")
        + f"<p class='article-id'><code>{esc(article.id)}</code></p></div>"
    )
    return f"<div class='article'>{header}{_paragraphs(_marked(text, spans))}</div>"


def _marked(text: str, spans: Sequence[Span]) -> str:
    """The text escaped, each stretch covered by a span in one <mark>. Where
    quotes overlap the stretch is marked once, active if any active span covers it."""
    if not spans:
        return esc(text)
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out, active_done = [], False
    for a, b in zip(cuts, cuts[1:]):
        covering = [s for s in spans if s.start <= a and b <= s.end]
        piece = esc(text[a:b])
        if not covering:
            out.append(piece)
            continue
        active = any(s.active for s in covering)
        ns = ",".join(str(s.n) for s in sorted(covering, key=lambda s: s.n) if s.n)
        attrs = f" class='cite-mark{' active' if active else ''}'" + (f" title='[{ns}]'" if ns else "")
        if active and not active_done:
            attrs = f" id='{MARK_ID}'" + attrs
            active_done = True
        out.append(f"<mark{attrs}>{piece}</mark>")
    return "".join(out)


def _paragraphs(escaped: str) -> str:
    # Line breaks are the article's own paragraphs; a <mark> may span one, so
    # breaks become <br> inside one block rather than separate <p> elements.
    return "<div class='article-text'>" + escaped.replace("\n", "<br>\n") + "</div>"


def citation_view(article: Article, citations: Sequence[Citation], active: int, turn: int) -> str:
    """The viewer for citation `active` of one answer: its article with every
    citation of that answer into this article marked, the active one distinct."""
    c = citations[active]
    spans = [Span(x.start, x.end, x.n, active=(i == active)) for i, x in enumerate(citations) if x.article_id == article.id]
    return article_html(article, spans=spans, source_line=f"Showing {source_label(turn, c)}")


# --- the chat ------------------------------------------------------------------------


def cite_link(turn: int, j: int, c: Citation) -> str:
    """A citation marker that opens its source in the viewer; hovering shows the quote."""
    quote = " ".join(c.quote.split())
    return (f"<a class='cite' href='#{CITE_PREFIX}{turn}-{j}' title='{esc(quote)}'"
            f" aria-label='source {c.n}: {esc(c.title)}'>[{c.n}]</a>")


def answer_html(answer: Answer, turn: int) -> str:
    """The answer for the chat: the doubt note when there is one, the short
    answer in bold when there is one, the text with each [n] a link to its
    source, then the other notes. All of it inert text
    but the links. `turn` is the answer's 1-based number in the conversation."""
    from .calibration import doubt_first

    doubts, others = doubt_first(answer.notes)
    parts = [f"<p class='note doubt'><i>Note: {esc(n)}</i></p>" for n in doubts]
    short = getattr(answer, "short", None)  # the answer's few-word core, when the pipeline found one
    short_text = getattr(short, "text", None) if short is not None else None
    if short_text and not answer.abstained:
        parts.append(f"<p class='short-answer'><b>{esc(short_text)}</b></p>")
    by_n = {c.n: j for j, c in enumerate(answer.citations)}
    pieces, last = [], 0
    for m in _MARKER.finditer(answer.text):
        n = int(m.group(1))
        if n not in by_n:
            continue
        pieces.append(text_html(answer.text[last:m.start()]))
        pieces.append(cite_link(turn, by_n[n], answer.citations[by_n[n]]))
        last = m.end()
    pieces.append(text_html(answer.text[last:]))
    parts.append(f"<p class='answer-text'>{''.join(pieces)}</p>")
    parts += [f"<p class='note'><i>Note: {esc(n)}</i></p>" for n in others]
    return "".join(parts)


def draft_html(draft: str) -> str:
    """A language model's reply as it streams in: shown as text, never rendered."""
    return f"<p class='draft'>{text_html(draft)} ▌</p>"


def question_html(question: str) -> str:
    return text_html(question)


def sources_html(articles: Mapping[str, Article], answer: Answer, turn: int = 1) -> str:
    """Under an answer: each marker (a link to the viewer) with its article's
    title, byline and quote, or for an abstention the closest passages."""
    if answer.citations:
        items = []
        for j, c in enumerate(answer.citations):
            a = articles.get(c.article_id)
            line = a.byline if a else ""
            items.append(
                f"<li>{cite_link(turn, j, c)} {esc(c.title)}"
                + (f" — {esc(line)}" if line else "")
                + f"<br><q>{esc(' '.join(c.quote.split()))}</q></li>"
            )
        return "<div class='sources'><b>Sources</b><ul>" + "".join(items) + "</ul></div>"
    if answer.abstained and answer.hits:
        items = [
            # Short excerpts, so the plain "do not answer" above them stays in the chat's view;
            # the whole passages are under "Retrieved passages and scores".
            f"<li>{esc(h.title)} <small>({esc(score_words(h))})</small><br><q>{esc(_excerpt(h.text, 160))}</q></li>"
            for h in answer.hits
        ]
        return "<div class='sources'><b>Closest passages (they do not answer the question)</b><ul>" + "".join(items) + "</ul></div>"
    return ""


def score_words(h: Hit) -> str:
    """The scores as what they are: a cosine similarity and a BM25 score (never
    the fused number, which is min-max normalised within one list and so looks
    like a confidence it is not)."""
    parts = []
    if h.dense_score is not None:
        parts.append(f"cosine {h.dense_score:.2f}")
    if h.bm25_score is not None:
        parts.append(f"BM25 {h.bm25_score:.1f}")
    return ", ".join(parts) or "no score"


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def hits_html(hits: list[Hit]) -> str:
    """The retrieved passages, best first, with their cosine and BM25 scores."""
    if not hits:
        return "<p>No passages retrieved yet.</p>"

    def num(x: float | None, digits: int) -> str:
        return "–" if x is None else f"{x:.{digits}f}"

    rows = "".join(
        f"<tr><td>{i}</td><td>{num(h.dense_score, 3)}</td><td>{num(h.bm25_score, 2)}</td>"
        f"<td>{esc(h.title)}<br><small>{esc(h.article_id)} chars {h.start}-{h.end}</small></td>"
        f"<td>{esc(_excerpt(h.text))}</td></tr>"
        for i, h in enumerate(hits, 1)
    )
    return (
        "<p class='hits-help'><small>cosine: similarity of the question's and the passage's embeddings (−1 to 1); "
        "BM25: keyword match score (0 and up, not bounded); – : that side did not find the passage.</small></p>"
        + scrolling("<table class='hits'><thead><tr><th>#</th><th>cosine</th><th>BM25</th>"
                    f"<th>article</th><th>passage</th></tr></thead><tbody>{rows}</tbody></table>")
    )


def scrolling(table: str) -> str:
    """A table in a box that scrolls sideways on its own: on a phone the corpus table (six
    columns, unbreakable ids) is wider than the screen, and without the box its panel, upload
    field and all, would scroll sideways with its right columns cut off out of sight."""
    return f"<div class='table-scroll'>{table}</div>"


def source_label(turn: int, c: Citation) -> str:
    return f"Q{turn} [{c.n}] {c.title}"


# --- the corpus ----------------------------------------------------------------------


def corpus_html(articles: Iterable[Article], skipped: Iterable = ()) -> str:
    """The corpus as a table: title, byline, id, file, size, and what text repair changed."""
    rows = []
    for a in articles:
        r = a.repair
        fixes = ", ".join(
            f"{n} {what}" for n, what in (
                (r.swapped_chars, "swapped chars"), (r.dashes_respaced, "dashes"), (r.furniture_lines, "furniture lines"),
                (r.joined_lines, "joined lines"), (r.encoding_fixes, "encoding fixes"),
            ) if n
        ) or "none"
        rows.append(
            f"<tr><td>{esc(a.title)}</td><td>{esc(a.byline) or '–'}</td><td><code>{esc(a.id)}</code></td>"
            f"<td>{esc(a.source)}</td><td>{len(a.text):,}</td><td>{esc(fixes)}</td></tr>"
        )
    table = scrolling(
        "<table class='corpus'><thead><tr><th>title</th><th>author or publisher, date</th><th>id</th>"
        "<th>file</th><th>characters</th><th>text repair</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
    skipped = list(skipped)
    if skipped:
        table += "<p><b>Skipped files</b></p><ul>" + "".join(f"<li>{esc(s.reason)}</li>" for s in skipped) + "</ul>"
    return table


# --- the API -------------------------------------------------------------------------


def answer_payload(answer: Answer) -> dict:
    """What the API endpoint returns: plain JSON values."""
    return {
        "text": answer.text,
        "abstained": answer.abstained,
        "citations": [asdict(c) for c in answer.citations],
        "notes": list(answer.notes),
    }


def error_payload(message: str) -> dict:
    return {"text": "", "abstained": False, "citations": [], "notes": [], "error": message}


# Advice written for the command line, and what a person on the web page does instead.
_WEB_ADVICE = [
    (re.compile(r"\s*\(see `rag articles`\)"), " (the Documents panel lists them; in the page, choose articles by title under Settings)"),
    (re.compile(r"run `rag index --rebuild`"), "restart the app (it rebuilds the index), or ask the administrator to run `rag index --rebuild`"),
]


def web_message(message: str) -> str:
    """An error message with command-line advice replaced by what to do on the page or API."""
    for pattern, advice in _WEB_ADVICE:
        message = pattern.sub(advice, message)
    return message

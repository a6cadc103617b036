"""What the chat app shows, as HTML and plain values; no Gradio here.

Every string from the corpus or a language model is escaped before it goes
into HTML, so an article that holds `<script>` shows the tag as text. The app
(app.py at the repository root) only wires these into Gradio components,
which keeps them testable without a server.
"""

from __future__ import annotations

import html
from dataclasses import asdict

from .types import Answer, Article, Citation, Hit

# The id the article viewer gives the highlighted quote, so the page can scroll to it.
MARK_ID = "cited-quote"


def esc(text: str | None) -> str:
    """Text for HTML: tags, quotes, and the `$`/`{` of a template engine are shown as typed."""
    return html.escape(text or "", quote=True).replace("$", "&#36;").replace("{", "&#123;").replace("}", "&#125;")


def article_html(article: Article, start: int | None = None, end: int | None = None) -> str:
    """The whole cleaned article, its paragraphs kept, `text[start:end]` in a <mark>."""
    text = article.text
    header = (
        f"<h3>{esc(article.title)}</h3>"
        + (f"<p class='byline'>{esc(article.byline)}</p>" if article.byline else "")
        + f"<p class='article-id'><code>{esc(article.id)}</code></p>"
    )
    if start is None or end is None or not (0 <= start < end <= len(text)):
        body = _paragraphs(esc(text))
    else:
        body = _paragraphs(
            esc(text[:start]) + f"<mark id='{MARK_ID}'>" + esc(text[start:end]) + "</mark>" + esc(text[end:])
        )
    return f"<div class='article'>{header}{body}</div>"


def _paragraphs(escaped: str) -> str:
    # Line breaks are the article's own paragraphs; a <mark> may span one, so
    # breaks become <br> inside one block rather than separate <p> elements.
    return "<div class='article-text'>" + escaped.replace("\n", "<br>\n") + "</div>"


def sources_html(articles: dict[str, Article], answer: Answer) -> str:
    """Under an answer: each marker with its article's title, byline and quote,
    or for an abstention the closest passages."""
    if answer.citations:
        items = []
        for c in answer.citations:
            a = articles[c.article_id]
            line = a.byline
            items.append(
                f"<li><b>[{c.n}]</b> {esc(a.title)}"
                + (f" — {esc(line)}" if line else "")
                + f"<br><q>{esc(' '.join(c.quote.split()))}</q></li>"
            )
        return "<div class='sources'><b>Sources</b><ul>" + "".join(items) + "</ul></div>"
    if answer.abstained and answer.hits:
        items = [
            # Short excerpts, so the plain "do not answer" above them stays in the chat's view;
            # the whole passages are under "Retrieved passages and scores".
            f"<li>{esc(h.title)} ({h.score:.2f})<br><q>{esc(_excerpt(h.text, 160))}</q></li>" for h in answer.hits
        ]
        return "<div class='sources'><b>Closest passages (they do not answer the question)</b><ul>" + "".join(items) + "</ul></div>"
    return ""


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def hits_html(hits: list[Hit]) -> str:
    """The retrieved passages with their fused, dense (cosine) and BM25 scores."""
    if not hits:
        return "<p>No passages retrieved yet.</p>"

    def num(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    rows = "".join(
        f"<tr><td>{i}</td><td>{num(h.score)}</td><td>{num(h.dense_score)}</td><td>{num(h.bm25_score)}</td>"
        f"<td>{esc(h.title)}<br><small>{esc(h.article_id)} chars {h.start}-{h.end}</small></td>"
        f"<td>{esc(_excerpt(h.text))}</td></tr>"
        for i, h in enumerate(hits, 1)
    )
    return (
        "<table class='hits'><thead><tr><th>#</th><th>fused</th><th>dense</th><th>bm25</th>"
        f"<th>article</th><th>passage</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def answer_markdown(answer: Answer) -> str:
    """The answer for the chat (Markdown): the text escaped, notes after it."""
    parts = [esc(answer.text)]
    if answer.abstained:
        parts[0] = "**The articles do not answer this.** " + parts[0]
    parts += [f"_Note: {esc(n)}_" for n in answer.notes]
    return "\n\n".join(parts)


def source_label(turn: int, c: Citation) -> str:
    return f"Q{turn} [{c.n}] {c.title}"


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

"""Markdown to the plain text an Article holds.

The product shows, quotes and cites `Article.text`, so a Markdown file's
article is its text as a reader sees it, not its markup: headings, list
items, quotes and table cells keep their words, emphasis and link targets
go. Every offset then points into this plain text like into any other.

markdown-it-py (the CommonMark parser Gradio already installs) does the
parsing; a hand-made regex would miss the cases CommonMark defines (nested
emphasis, escapes, entities, code spans that look like markup).
"""

from __future__ import annotations

import functools
import re

# Tags of raw HTML blocks go; the words between them stay (they are the
# article's text; the product never renders article text as HTML).
_HTML_TAG = re.compile(r"<[^>]*>")


@functools.lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    # GitHub-style tables are common in notes and READMEs; CommonMark has none.
    # Past maxNesting levels of quotes or lists the parser drops the text, so
    # the limit is well above real documents' (20 by default) and still far
    # below Python's recursion limit.
    return MarkdownIt("commonmark", {"maxNesting": 100}).enable("table")


def _inline_text(token) -> str:
    """The words of an inline token: text and code spans as written, a link's
    text without its target, an image's alt text, no inline HTML."""
    out: list[str] = []
    for child in token.children or ():
        kind = child.type
        if kind in ("text", "text_special", "code_inline"):
            out.append(child.content)
        elif kind == "softbreak":
            # A line break inside a paragraph is a space to CommonMark: the
            # source was wrapped, the paragraph is one line of text.
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "image":
            out.append(child.content)  # the alt text
    return "".join(out)


def markdown_to_text(source: str) -> str:
    """The plain text of a Markdown document: one block (heading, paragraph,
    list item, code block, table) a paragraph, blank lines between them;
    a table's rows one a line with cells separated by tabs."""
    blocks: list[str] = []
    row: list[str] | None = None
    table: list[str] | None = None
    for token in _parser().parse(source):
        kind = token.type
        if kind == "table_open":
            table = []
        elif kind == "table_close" and table is not None:
            blocks.append("\n".join(table))
            table = None
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            if table is not None:
                table.append("\t".join(row))
            row = None
        elif kind == "inline":
            text = _inline_text(token).strip()
            if row is not None:
                row.append(text)
            elif text:
                blocks.append(text)
        elif kind in ("fence", "code_block"):
            if token.content.strip():
                blocks.append(token.content.strip("\n"))
        elif kind == "html_block":
            text = _HTML_TAG.sub("", token.content).strip()
            if text:
                blocks.append(text)
    if not blocks and source.strip():
        # Nesting past even that limit left nothing: the words as written
        # beat an article skipped as empty.
        return source
    return "\n\n".join(blocks) + ("\n" if blocks else "")

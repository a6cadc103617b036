"""Reading the corpus: metadata, Markdown, PDF, and articles users drop in."""

from __future__ import annotations

from pathlib import Path

from rag.ingest import load_corpus

from .conftest import ARTICLE_IDS, CORPUS, DAMAGED_ID


def test_the_real_corpus_loads_with_its_metadata() -> None:
    corpus = load_corpus(CORPUS)
    assert [a.id for a in corpus.articles] == ARTICLE_IDS
    assert not corpus.skipped and not corpus.warnings
    by_id = corpus.by_id()
    damaged = by_id[DAMAGED_ID]
    assert damaged.title == "A New Phase in Türkiye–Serbia Relations"
    assert (damaged.publisher, damaged.date) == ("AVİM", "February 2026")
    assert damaged.repair.swapped_chars > 0 and damaged.source == f"{DAMAGED_ID}.txt"
    assert by_id["002_96505048f8b5e099"].title_is_descriptive
    assert not by_id["004_1297941efbeccd24"].title_is_descriptive
    assert all(len(a.content_hash) == 64 for a in corpus.articles)


def test_a_dropped_in_text_file_needs_no_metadata(tmp_path: Path) -> None:
    (tmp_path / "skopje_rail.txt").write_text(
        "Rail Links Across the Balkans\n\nBy Ana Petrova\n\nSkopje hosted a summit on rail links. Ministers agreed on a timetable.\n"
    )
    (article,) = load_corpus(tmp_path).articles
    assert article.id == "skopje_rail"
    assert article.title == "Rail Links Across the Balkans" and not article.title_is_descriptive
    assert article.author is None  # the byline is not the first line here
    assert article.publisher is None and article.date is None


def test_a_byline_on_the_first_line_gives_the_author(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("By Jane Doe\n\nA long first paragraph that is a sentence, not a title, about trade.\n")
    (article,) = load_corpus(tmp_path).articles
    assert article.author == "Jane Doe"
    # A byline is never the title; with no other title line the file name is used.
    assert article.title_is_descriptive and article.title == "a"


def test_markdown_front_matter_becomes_metadata(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text(
        "---\ntitle: Energy Bridges\nauthor: K. Demir\ndate: 2025-03-01\n---\n# Energy Bridges\n\nTürkiye signed memorandums with Bulgaria.\n"
    )
    (article,) = load_corpus(tmp_path).articles
    assert (article.title, article.author, article.date) == ("Energy Bridges", "K. Demir", "2025-03-01")
    assert article.text.startswith("Energy Bridges\n\nTürkiye signed")
    assert "#" not in article.text and "---" not in article.text


def test_pdf_articles_are_read_and_their_page_furniture_removed(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.set_auto_page_break(False)
    body = [
        "Trade between the two countries grew quickly after the agreement was",
        "signed, and the new customs rules came into force in the spring of",
    ]
    second = ["that year. Officials expect the figures to double by the end of the decade."]
    for page, lines in enumerate((body, second), start=1):
        pdf.add_page()
        for line in lines:
            pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(-20)
        pdf.cell(0, 8, f"{page}", align="C")
    pdf.output(str(tmp_path / "trade.pdf"))

    (article,) = load_corpus(tmp_path).articles
    assert article.id == "trade" and article.source == "trade.pdf"
    assert "in the spring of that year." in article.text
    assert "Officials expect the figures to double" in article.text
    assert "\n1\n" not in article.text and not article.text.rstrip().endswith("2")


def test_a_document_that_stays_garbled_is_indexed_with_a_warning(tmp_path: Path, caplog) -> None:
    # Mojibake that no rule can undo (U+FFFD replacement characters), with a clean neighbour.
    (tmp_path / "bad.txt").write_text("The minister visited \ufffd\ufffd\ufffd and met \ufffd\ufffd officials. " * 3)
    (tmp_path / "good.txt").write_text("A clean article about rail links in Skopje.\n")
    with caplog.at_level("WARNING", logger="rag"):
        corpus = load_corpus(tmp_path)
    assert [a.id for a in corpus.articles] == ["bad", "good"]
    assert any("bad.txt still looks garbled" in w and "check the extraction" in w for w in corpus.warnings)
    assert any("bad.txt still looks garbled" in r.getMessage() for r in caplog.records)
    assert not any("good.txt" in w for w in corpus.warnings)

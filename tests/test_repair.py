"""Text repair: the damage of article 003, and the same kinds of damage built by hand."""

from __future__ import annotations

import pytest

from rag.repair import garbled_share, repair_text

from .conftest import CORPUS, DAMAGED_ID


def swap(text: str) -> str:
    """Damage text the way the PDF extractor did: UTF-16 with its bytes swapped,
    punctuation losing its 0x20 high byte (– U+2013 -> U+1300)."""
    out = []
    for ch in text:
        code = ord(ch)
        out.append(chr((code & 0xFF) << 8) if code < 0x80 or 0x2010 <= code <= 0x201F else ch)
    return "".join(out)


@pytest.fixture(scope="module")
def article_003() -> str:
    raw = (CORPUS / f"{DAMAGED_ID}.txt").read_text(encoding="utf-8")
    return repair_text(raw).text


@pytest.mark.parametrize(
    "expected",
    [
        "Türkiye–Serbia ties have entered",
        "institutionalized high-level dialogue, expanding trade",
        "such as the Belgrade–Sarajevo highway, alongside",
        "security-related fields",
        "in Bosnia-Herzegovina and Kosovo",
        "which non-EU actors are increasingly",
        "activism—symbolized by its upgraded relationship",
        "The inclusion—direct or indirect—of stakeholders",
        "goals of de-escalation, confidence-building and exploring",
        "intensified great-power competition",
        "undermining the EUs image as the primary anchor of stability and transformation.[4]",
    ],
)
def test_article_003_damage_is_repaired(article_003: str, expected: str) -> None:
    assert expected in article_003


def test_article_003_has_no_swapped_characters_or_footer_left(article_003: str) -> None:
    assert not any(ord(c) >= 0x1000 and ord(c) & 0xFF == 0 for c in article_003)
    assert "AVİM Commentary" not in article_003
    assert "February 2026" not in article_003
    assert "\n1\n" not in article_003
    assert "  " not in article_003
    assert garbled_share(article_003) == 0.0


def test_article_003_keeps_paragraphs_and_footnote_markers(article_003: str) -> None:
    paragraphs = article_003.split("\n\n")
    assert paragraphs[0] == "A New Phase in Türkiye–Serbia Relations"
    assert "Bosnia-Herzegovina, EU Missteps, and the Emerging Space" in paragraphs
    for n in range(1, 9):
        assert f"[{n}]" in article_003
    assert all("\n" not in p for p in paragraphs)  # hard line breaks joined


def test_report_counts_each_kind_of_repair() -> None:
    raw = (CORPUS / f"{DAMAGED_ID}.txt").read_text(encoding="utf-8")
    report = repair_text(raw).report
    assert report.swapped_chars > 150
    assert report.dashes_respaced >= 20
    assert report.furniture_lines == 3  # "1", "AVİM Commentary • …", "February 2026"
    assert report.joined_lines > 40
    assert report.total > 0


@pytest.mark.parametrize("path", sorted(p for p in CORPUS.glob("*.txt") if p.stem != DAMAGED_ID), ids=lambda p: p.stem)
def test_clean_articles_pass_through_unchanged(path) -> None:
    """Byte for byte: 002 keeps its paragraphs one a line, not made blank-line ones."""
    raw = path.read_text(encoding="utf-8")
    repaired = repair_text(raw)
    assert repaired.report.total == 0
    assert repaired.text == raw


# --- damage constructed by hand: the rules are general ---------------------------


def test_swapped_words_in_any_text_are_decoded() -> None:
    raw = f"The new{swap(' –Budapest')} railway and a{swap('–long')} tunnel opened{swap(' in 2024')}."
    assert repair_text(raw).text == "The new–Budapest railway and a–long tunnel opened in 2024."


def test_swapped_dash_with_padding_spaces_is_closed_up() -> None:
    raw = f"Greece\u2000 {swap('–Albania')}\u2000 talks and a high {swap('-speed')} rail link"
    assert repair_text(raw).text == "Greece–Albania talks and a high-speed rail link"


def test_typed_spaced_dashes_are_left_alone() -> None:
    raw = "Relations improved – slowly – after 2020, and the figure rose from 10 - 12."
    assert repair_text(raw).text == raw


def test_genuine_cjk_text_is_not_decoded() -> None:
    raw = "北京是中国的首都。上海是最大的城市。攀登长城很难。"
    assert repair_text(raw).text == raw


def test_page_number_and_footer_mid_sentence_are_removed_and_joined() -> None:
    raw = (
        "The committee met in Skopje and agreed that the\n"
        "new border crossing would open in\n\n"
        "7\n\n"
        "Regional Review • Vol. 3 • \nMarch 2025\n\n"
        "spring, after the elections.\n\n"
        "A second paragraph follows here.\n"
    )
    text = repair_text(raw).text
    assert text == (
        "The committee met in Skopje and agreed that the new border crossing would open in spring, "
        "after the elections.\n\nA second paragraph follows here."
    )


def test_page_number_between_whole_sentences_keeps_the_paragraph_break() -> None:
    raw = (
        "First paragraph ends here with a full stop.\n\n12\n\n"
        "Second paragraph starts on the next page.\n"
    )
    assert repair_text(raw).text == "First paragraph ends here with a full stop.\n\nSecond paragraph starts on the next page."


def test_unknown_header_inside_a_broken_sentence_is_removed() -> None:
    """The header has no tell-tale shape; it goes because a sentence cannot
    contain a title. The "4" must first be shown to be a page number: a lone
    number inside a sentence may be the sentence's own figure, so the
    document carries the next page's "5" as evidence of a page series."""
    raw = (
        "The talks stalled because the\n\n4\n\nQuarterly Balkan Notes\n\nsides could not agree.\n\n"
        "They met again in June.\n\n5\n\nThe next round is planned.\n"
    )
    assert repair_text(raw).text == (
        "The talks stalled because the sides could not agree.\n\nThey met again in June.\n\nThe next round is planned."
    )


def test_heading_after_a_page_break_is_kept() -> None:
    raw = "The talks ended in May.\n\n4\n\nOutlook for the Region\n\nThe next round is planned.\n"
    assert repair_text(raw).text == "The talks ended in May.\n\nOutlook for the Region\n\nThe next round is planned."


def test_one_paragraph_per_line_documents_are_not_joined() -> None:
    """Nor are their single line breaks made paragraph breaks: the text is the file's."""
    long_a = "Ankara invested in roads and airports across the region over many years. " * 3
    long_b = "Tirana and Ankara signed a strategic partnership agreement in 2021. " * 3
    raw = f"{long_a.strip()}\n{long_b.strip()}\n"
    assert repair_text(raw).text == raw


def test_mojibake_and_odd_spaces_are_normalised() -> None:
    raw = "Turkeyâ€™s role\u00a0in the region\u200b is growing"
    assert repair_text(raw).text == "Turkey’s role in the region is growing"


def test_garbled_share_flags_scattered_wide_characters() -> None:
    text = "A normal English sentence with 攀 some 爀 stray 戀 characters in it."
    assert garbled_share(text) > 0.01
    assert garbled_share("Plain English, nothing wrong here.") == 0.0


# --- byte-swapping is judged run by run -------------------------------------------


def test_genuine_cjk_quote_in_a_damaged_document_is_kept() -> None:
    """一 (U+4E00) has a zero low byte like the damage, but it stands inside
    genuine CJK text; the rest of article 003 repairs exactly as without it."""
    raw = (CORPUS / f"{DAMAGED_ID}.txt").read_text(encoding="utf-8")
    anchor = "commitments.[1]\n"
    with_quote = raw.replace(anchor, anchor + "\nBeijing calls its plan “一带一路”.\n", 1)
    expected = repair_text(raw).text.replace(
        "commitments.[1]\n\n", "commitments.[1]\n\nBeijing calls its plan “一带一路”.\n\n", 1
    )
    assert with_quote != raw and "一带一路" in expected
    assert repair_text(with_quote).text == expected


def test_swapped_run_beside_a_longer_genuine_cjk_quote_is_decoded() -> None:
    """The genuine CJK outnumbers the damage; the damage is still repaired and
    最 (U+6700, a zero low byte) in the quote is left alone."""
    quote = "北京是中国的首都。上海是最大的城市。"
    raw = f"The ambassador quoted: {quote} Then the Türkiye{swap(' –Serbia')} talks began."
    repaired = repair_text(raw)
    assert repaired.text == f"The ambassador quoted: {quote} Then the Türkiye–Serbia talks began."
    assert repaired.report.garbled_share == 0.0


def test_lone_swapped_letter_is_not_decoded() -> None:
    """One wide character spells no word: decoding it would be a guess."""
    raw = "A stray 攀 character."
    assert repair_text(raw).text == raw


# --- what still looks garbled -------------------------------------------------------


def test_a_clean_article_quoting_cjk_is_not_garbled() -> None:
    text = "Officials used the slogan “一带一路” to describe the Belt and Road Initiative in every speech."
    assert garbled_share(text) == 0.0
    assert repair_text(text).report.garbled_share == 0.0


def test_garbled_share_flags_byte_swapped_runs_left_in_latin_text() -> None:
    assert garbled_share("A sentence with 攀爀戀 inside it.") > 0.05  # "erb", swapped: 3 of 31


# --- repair edge cases ----------------------------------------------------------------


def test_lines_that_each_end_a_sentence_are_the_authors_not_a_layout() -> None:
    """A user's fact list, one record a line, all about 60 characters wide,
    was joined into one paragraph: width alone looked like hard wrapping. A
    layout breaks lines inside sentences; these lines each end one."""
    records = (
        "Planet facts\n\n"
        "Mercury: radius 2,440 km; orbital period 88 days; moons 0.\n"
        "Venus: radius 6,052 km; orbital period 225 days; moons 0.\n"
        "Earth: radius 6,371 km; orbital period 365.25 days; moons 1.\n"
        "Mars: radius 3,390 km; orbital period 687 days; moons 2.\n"
        "Jupiter: radius 69,911 km; orbital period 11.86 years; moons 95.\n"
    )
    repaired = repair_text(records)
    assert repaired.text == records and repaired.report.total == 0
    # Prose wrapped at the same width, broken mid-sentence, is still joined.
    wrapped = (
        "Meeting notes\n\n"
        "The committee met on 3 March 2024 in the town hall and agreed to\n"
        "repair the bridge over the river before the summer. The cost will be\n"
        "about 40,000 euros, paid from the reserve fund, and work will start\n"
        "in May.\n"
    )
    assert repair_text(wrapped).text == (
        "Meeting notes\n\nThe committee met on 3 March 2024 in the town hall and agreed to repair the bridge over "
        "the river before the summer. The cost will be about 40,000 euros, paid from the reserve fund, and work "
        "will start in May."
    )


def test_title_without_a_blank_line_in_a_hard_wrapped_document_stays_a_heading() -> None:
    raw = (
        "Rail Links Across the Balkans\n"
        "Skopje hosted a summit on rail links between North Macedonia\n"
        "and its neighbours. Ministers from five countries agreed on a\n"
        "timetable for the new line, which will run from the coast to the\n"
        "Danube within ten years.\n\n"
        "The second paragraph is also wrapped at about the same width\n"
        "as the first one, so that the document is hard-wrapped.\n"
    )
    paragraphs = repair_text(raw).text.split("\n\n")
    assert paragraphs[0] == "Rail Links Across the Balkans"
    assert paragraphs[1].startswith("Skopje hosted a summit on rail links between North Macedonia and its")


def test_a_short_first_line_that_ends_a_sentence_is_joined() -> None:
    """A short first line with a full stop is the paragraph's own text."""
    raw = (
        "It rained.\n"
        "Skopje hosted a summit on rail links between North Macedonia\n"
        "and its neighbours. Ministers from five countries agreed on a\n"
        "timetable for the new line, which will run to the Danube.\n"
    )
    assert "\n" not in repair_text(raw).text


def test_header_before_the_first_page_number_is_removed() -> None:
    raw = "Regional Review • Vol. 3 • March 2025\n\n1\n\nRail Links Across the Balkans\n\nSkopje hosted a summit.\n"
    assert repair_text(raw).text == "Rail Links Across the Balkans\n\nSkopje hosted a summit."


def test_a_title_before_a_page_number_is_kept() -> None:
    """Block 0 goes only with a header's shape; a plain title stays."""
    raw = "Rail Links Across the Balkans\n\n1\n\nSkopje hosted a summit.\n"
    assert repair_text(raw).text == "Rail Links Across the Balkans\n\nSkopje hosted a summit."


def test_a_lone_number_inside_a_sentence_without_evidence_is_kept_in_it() -> None:
    raw = "Prices rose by\n\n12\n\nper cent in March.\n"
    assert repair_text(raw).text == "Prices rose by 12 per cent in March."


def test_lone_numbers_in_a_page_series_are_page_numbers() -> None:
    raw = (
        "Prices rose by\n\n12\n\nper cent in March, the office said.\n\n"
        "Wages followed in\n\n13\n\nthe spring.\n"
    )
    assert repair_text(raw).text == "Prices rose by per cent in March, the office said.\n\nWages followed in the spring."


def test_two_page_numbers_of_a_series_in_a_row_are_both_removed() -> None:
    raw = "The line will run from the coast to\n\n3\n\n4\n\nthe Danube.\n"
    assert repair_text(raw).text == "The line will run from the coast to the Danube."


def test_a_word_of_the_sentence_after_a_page_break_is_not_furniture() -> None:
    """The page number has evidence (the series 7, 8); "Serbia" reads as the
    broken sentence's own word, not as a running head, and is joined."""
    raw = (
        "Ankara signed a deal with\n\n7\n\nSerbia\n\nand Hungary on gas supplies. Talks went on.\n\n"
        "8\n\nThe pipeline opens next year.\n"
    )
    assert repair_text(raw).text == (
        "Ankara signed a deal with Serbia and Hungary on gas supplies. Talks went on.\n\nThe pipeline opens next year."
    )


def test_a_lone_number_without_evidence_takes_no_words_with_it() -> None:
    raw = "Ankara signed a deal with\n\n7\n\nSerbia\n\nand Hungary on gas supplies.\n"
    text = repair_text(raw).text
    assert "Serbia" in text and "7" in text


def test_full_width_punctuation_is_kept_as_printed() -> None:
    raw = "The sign read 比例：１２，好。 in the station."
    assert repair_text(raw).text == raw

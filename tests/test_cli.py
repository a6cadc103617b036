"""The command line, run in-process on the real corpus."""

from __future__ import annotations

import pytest

import json
import subprocess
import sys

from rag.cli import main

from .conftest import CORPUS, DAMAGED_ID


def test_help_lists_the_commands_and_does_not_import_torch() -> None:
    code = (
        "import sys; from rag.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
        "print(*(m in sys.modules for m in ('torch', 'sentence_transformers', 'onnxruntime')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "index" in out and "search" in out and "articles" in out
    assert out.strip().endswith("False False False")


def test_each_command_has_help(capsys) -> None:
    for command in ("index", "search", "articles"):
        try:
            main([command, "--help"])
        except SystemExit as e:
            assert e.code == 0
        assert "--corpus" in capsys.readouterr().out


@pytest.mark.model
def test_search_prints_ranked_passages_with_titles(tmp_path, capsys) -> None:
    code = main(["search", "high-level dialogue between Türkiye and Serbia", "-k", "2",
                 "--corpus", str(CORPUS), "--index", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("1. [") and "A New Phase in Türkiye–Serbia Relations" in first and DAMAGED_ID in first
    assert "high-level dialogue" in out
    assert out.count("\n2. [") == 1


@pytest.mark.model
def test_search_json_and_article_filter(tmp_path, capsys) -> None:
    main(["search", "Israel", "--article", "004_1297941efbeccd24", "--json", "--mode", "bm25",
          "--corpus", str(CORPUS), "--index", str(tmp_path), "-q"])
    hits = json.loads(capsys.readouterr().out)
    assert hits and {h["article_id"] for h in hits} == {"004_1297941efbeccd24"}


@pytest.mark.model
def test_index_reports_what_changed_and_what_was_repaired(tmp_path, corpus_copy, capsys) -> None:
    args = ["index", "--corpus", str(corpus_copy), "--index", str(tmp_path / "ix"), "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "5 added" in out and f"repaired {DAMAGED_ID}" in out and "swapped characters" in out
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out
    (corpus_copy / "new_article.md").write_text("# Note\n\nSkopje hosted a regional summit on rail links.\n")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "added: new_article" in out and "reused" in out


def test_articles_lists_metadata(capsys) -> None:
    assert main(["articles", "--corpus", str(CORPUS), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_id = {a["id"]: a for a in data["articles"]}
    assert by_id[DAMAGED_ID]["publisher"] == "AVİM" and by_id[DAMAGED_ID]["date"] == "February 2026"
    assert by_id["000_b8d8672fd89b6af8"]["title_is_descriptive"] is True
    assert by_id["000_b8d8672fd89b6af8"]["author"] == "Dr. Sinem Cengiz"
    assert by_id[DAMAGED_ID]["repair"]["swapped_chars"] > 150


def test_no_command_prints_help_and_fails(capsys) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


@pytest.mark.model
def test_article_takes_several_ids(tmp_path, capsys) -> None:
    only = ["004_1297941efbeccd24", "002_96505048f8b5e099"]
    main(["search", "Israel Kosovo Albania", "--article", *only, "--json", "--mode", "bm25", "-k", "10",
          "--corpus", str(CORPUS), "--index", str(tmp_path), "-q"])
    hits = json.loads(capsys.readouterr().out)
    assert {h["article_id"] for h in hits} == set(only)


def test_the_cli_prints_the_doubt_note_first_and_the_other_notes_after_the_answer() -> None:
    from rag.calibration import doubt_note
    from rag.cli import _format_answer
    from rag.types import Answer, ShortAnswer

    answer = Answer("In 2017 he visited Serbia.", [], False, [], notes=["Another note.", doubt_note(0.2)],
                    short=ShortAnswer("a", 3, 7, "2017", 0.9))
    lines = _format_answer(None, answer).splitlines()
    assert lines[0] == f"note: {doubt_note(0.2)}" and lines[1] == "Short answer: 2017"
    assert lines.index("In 2017 he visited Serbia.") < lines.index("note: Another note.")
    assert sum("may not answer" in line for line in lines) == 1

"""Hostile questions and hostile terminals (issue 12): what the attack typed
into the CLI and the Python API, and what it made the CLI print.

Each refusal is a QueryError with one line that says what to do; the CLI
prints that line, never a traceback, and its exit status says it failed.
Subprocess tests run `python -m rag.cli` as a user's shell would, with the
real model; the in-process ones use the fake embedder (it adds nothing to a
check made before any search).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.core import RAG
from rag.errors import QueryError

from .conftest import CORPUS
from .test_bad_input import QUESTION, build

ROOT = Path(__file__).resolve().parent.parent

# What undecodable bytes become in Python (a command line or a pipe is decoded
# with "surrogateescape"), and a lone surrogate as a JSON client sends one.
UNDECODABLE = os.fsdecode(b"Why did Serbia halt \xff\xfe arms deliveries?")
LONE_SURROGATE = "Why did Serbia halt \ud800 arms deliveries?"


def rag_cli(*args: str | bytes, input: bytes | None = None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], input=input, stdout=stdout, stderr=subprocess.PIPE,
        env=env, timeout=600, cwd=ROOT,
    )


@pytest.fixture
def built(corpus_copy: Path, tmp_path: Path, fake_embedder) -> RAG:
    return build(corpus_copy, tmp_path / "index", fake_embedder)


# --- questions that are not text ---------------------------------------------------


@pytest.mark.parametrize("question", [UNDECODABLE, LONE_SURROGATE], ids=["undecodable-bytes", "lone-surrogate"])
@pytest.mark.parametrize("entry", ["retrieve", "ask", "ask_stream"])
def test_a_question_that_is_not_valid_text_is_a_query_error(built: RAG, question: str, entry: str) -> None:
    call = {"retrieve": built.retrieve, "ask": built.ask, "ask_stream": lambda q: list(built.ask_stream(q))}[entry]
    with pytest.raises(QueryError) as exc:
        call(question)
    message = str(exc.value)
    assert message.startswith("question is not valid text: character 21 is an undecodable byte or a lone surrogate (U+")
    assert message.endswith("type it again, or re-save the input as UTF-8")
    message.encode("utf-8")  # printable as it is: the question is not echoed
    assert built.retrieve(QUESTION, k=1)  # the same object still answers


def test_a_question_given_as_bytes_says_to_decode_it(built: RAG) -> None:
    with pytest.raises(QueryError, match=r"question must be text, not bytes: decode it first, e\.g\. question\.decode\('utf-8'\)"):
        built.retrieve(QUESTION.encode())


def test_an_undecodable_question_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    result = rag_cli("ask", os.fsencode(UNDECODABLE), "--corpus", str(CORPUS), "--index", str(tmp_path))
    assert result.returncode == 2
    err = result.stderr.decode("utf-8")
    assert err.startswith("error: question is not valid text: character 21 is an undecodable byte")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # refused before anything was loaded or built
    assert result.stdout == b""


# --- piped questions -----------------------------------------------------------------


def test_piped_questions_with_a_bad_line_answer_the_rest_and_exit_non_zero(tmp_path: Path) -> None:
    lines = [b"Belgrade-Sarajevo highway", os.fsencode(UNDECODABLE), b"x" * 5000, b"Israel Kosovo recognition", b""]
    result = rag_cli("ask", "-k", "3", "--json", "-q", "--corpus", str(CORPUS), "--index", str(tmp_path),
                     input=b"\n".join(lines))
    err = result.stderr.decode("utf-8").splitlines()
    assert result.returncode == 2, err
    assert "Traceback" not in result.stderr.decode()
    assert [line.split(":")[1].strip() for line in err] == ["question is not valid text", "question is 5,000 characters long, over the limit of 1,000"]
    assert result.stdout.decode("utf-8").count('"citations":') == 2  # both good questions answered


# --- output to a closed pipe ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("articles",), id="articles"),
        pytest.param(("search", "Belgrade-Sarajevo highway", "--mode", "bm25", "-k", "5", "--full"), id="search"),
    ],
)
def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, args: tuple[str, ...]) -> None:
    """`rag ... | head -1`, made deterministic: the reader is gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = rag_cli(*args, "-q", "--corpus", str(CORPUS), "--index", str(tmp_path / "index"), stdout=write_end)
    finally:
        os.close(write_end)
    assert result.stderr.decode() == ""
    assert result.returncode == 141  # as a shell reports SIGPIPE for cat or grep


# --- control sequences from the corpus ----------------------------------------------------------

# Clear the screen, set the window title, a CSI in its one-byte C1 form, and
# a right-to-left override: what a hostile title or author could hold.
HOSTILE_TITLE = "Evil\x1b[2J\x1b]0;pwned\x07 title\u202e"
HOSTILE_AUTHOR = "Mallory\x9b31m\r"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


@pytest.fixture
def hostile_corpus(corpus_copy: Path) -> Path:
    meta_path = corpus_copy / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["001_ffbeb848175f5bcf"].update(title=HOSTILE_TITLE, author=HOSTILE_AUTHOR)
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    (corpus_copy / "\x1b[31mred.txt").write_text("A note on Ohrid\n\nThe Ohrid lake fishermen sold trout in Struga.\n", encoding="utf-8")
    return corpus_copy


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, hostile_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """`rag ...` in-process on the hostile corpus with the fake embedder: (code, stdout, stderr)."""
    import logging

    import rag.core
    from rag.cli import main
    from rag.embedding import HashEmbedder

    monkeypatch.setattr(rag.core, "embedder_for", lambda *a, **k: HashEmbedder(dimension=64))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--corpus", str(hostile_corpus), "--index", str(tmp_path / "index")])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("articles",), id="articles"),
        pytest.param(("index",), id="index"),
        pytest.param(("search", "strategic reawakening Balkans diplomacy", "--article", "001_ffbeb848175f5bcf"), id="search"),
        pytest.param(("ask", "strategic reawakening Balkans diplomacy", "--article", "001_ffbeb848175f5bcf"), id="ask"),
    ],
)
def test_control_sequences_in_titles_authors_and_names_are_printed_escaped(cli, args: tuple[str, ...]) -> None:
    code, out, err = cli(*args)
    assert code == 0, err
    for raw in RAW:
        assert raw not in out and raw not in err, (raw, out)
    printed = out + err
    if args[0] in ("articles", "search", "ask"):
        assert "Evil\\x1b[2J\\x1b]0;pwned\\x07 title\\u202e" in printed
    if args[0] in ("articles", "index"):
        assert "\\x1b[31mred" in printed  # the file's id, visible for what it is


@pytest.mark.parametrize("command", ["articles", "search"])
def test_json_output_escapes_control_sequences_and_keeps_the_text(cli, command: str) -> None:
    args = ("search", "strategic reawakening Balkans diplomacy", "--article", "001_ffbeb848175f5bcf") if command == "search" else (command,)
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    for raw in RAW:
        assert raw not in out
    data = json.loads(out)
    if command == "articles":
        article = next(a for a in data["articles"] if a["id"] == "001_ffbeb848175f5bcf")
        assert (article["title"], article["author"]) == (HOSTILE_TITLE, HOSTILE_AUTHOR)  # exactly the corpus's text
    else:
        assert data[0]["title"] == HOSTILE_TITLE

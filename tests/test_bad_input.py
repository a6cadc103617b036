"""Bad input never crashes and never loses anything.

Every bad question, argument, corpus file or index file gets one line that
says what is wrong and what to do; a bad corpus file is skipped (the other
articles are still indexed) and a damaged index is rebuilt from the corpus.

The fake embedder keeps these tests to seconds: the model adds nothing here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rag.core import RAG
from rag.embedding import HashEmbedder
from rag.errors import CorpusError, QueryError, StoreError, UnknownArticleError
from rag.settings import Settings
from rag.store import POINTER, IndexStore

from .conftest import ARTICLE_IDS, CORPUS

# A question that every article answers something to (all five are about
# Türkiye, Israel or Serbia in the Balkans).
QUESTION = "Balkans relations with Serbia and Türkiye"
LIMIT_WORDS = f"over the limit of {Settings().retrieval.max_question_chars:,}"


# --- helpers ----------------------------------------------------------------


def build(corpus: Path, index: Path, embedder) -> RAG:
    return RAG.load(corpus, index, embedder=embedder)


def assert_all_articles_served(r: RAG, extra: tuple[str, ...] = ()) -> None:
    """The five real articles (and `extra`) are in the corpus, in the index,
    and each one answers a question restricted to it."""
    expected = set(ARTICLE_IDS) | set(extra)
    assert {a.id for a in r.articles} == expected
    stored = IndexStore(r.settings.index.index_dir).load()
    assert stored is not None
    assert set(stored.manifest.articles) == expected
    assert {c.article_id for c in stored.chunks} == expected
    for article_id in sorted(expected):
        hits = r.retrieve(QUESTION, k=3, articles=[article_id], mode="dense")
        assert hits, f"{article_id} returns no passage"
        assert {h.article_id for h in hits} == {article_id}


def rag_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rag" and r.levelno == logging.WARNING]


@pytest.fixture
def built(corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder) -> RAG:
    """The real corpus, indexed with the fake embedder in this test's tmp_path."""
    return build(corpus_copy, tmp_path / "index", fake_embedder)


# --- questions: library -------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "words"),
    [
        pytest.param("", ("question is empty", "type a question"), id="empty"),
        pytest.param("   \n\t  ", ("question is empty", "type a question"), id="whitespace-only"),
        pytest.param("why " * 24_999 + "why?", ("100,000 characters", LIMIT_WORDS, "shorten"), id="100000-chars"),
    ],
)
def test_bad_question_via_retrieve(built: RAG, question: str, words: tuple[str, ...]) -> None:
    with pytest.raises(QueryError) as exc:
        built.retrieve(question)
    message = str(exc.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    # The same object still answers a good question.
    assert len(built.retrieve(QUESTION, k=3)) == 3


def test_question_limit_comes_from_settings(corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder, settings=Settings(max_question_chars=50))
    assert r.retrieve("x" * 50, k=1, mode="dense")  # at the limit: accepted
    with pytest.raises(QueryError, match=r"51 characters long, over the limit of 50"):
        r.retrieve("x" * 51)


@pytest.mark.parametrize("question", ["???", "!", "🙂"])
def test_a_question_of_punctuation_or_emoji_is_an_abstention_not_a_crash(built: RAG, question: str) -> None:
    """It has no word pieces for the reading model; `ask` raised numpy's
    "zero-size array to reduction operation maximum" with a traceback."""
    answer = built.ask(question)
    assert answer.abstained
    assert answer.citations == []


# --- questions: command line ---------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, corpus_copy: Path, tmp_path: Path):
    """Run `rag ...` in-process on a corpus copy, with the fake embedder.

    The CLI installs its own handler on the root logger; it is restored after
    the test so that later tests capture logs as usual.
    """
    import rag.core
    from rag.cli import main

    monkeypatch.setattr(rag.core, "embedder_for", lambda *a, **k: HashEmbedder(dimension=64))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    common = ["--corpus", str(corpus_copy), "--index", str(tmp_path / "index")]

    def run(*args: str) -> int:
        command, rest = args[0], list(args[1:])
        return main([command, *rest, *common])

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("command", ["ask", "search"])
def test_a_question_after_article_ids_is_refused_with_where_to_put_it(
    cli, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`--article ID "question"` made the question an id: the command then read
    an empty pipe and exited 0 having printed nothing."""
    assert cli(command, "--article", ARTICLE_IDS[0], "Who signed up to the Board of Peace?") == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        "error: --article took 'Who signed up to the Board of Peace?' as an article id, so no question was given: "
        f'put the question first, rag {command} "..." --article ID, or end the ids with --'
    )


@pytest.mark.parametrize(
    ("question", "words"),
    [
        pytest.param("", ("question is empty", "type a question"), id="empty"),
        pytest.param("  \t \n ", ("question is empty", "type a question"), id="whitespace-only"),
        pytest.param("x" * 100_000, ("100,000 characters", LIMIT_WORDS, "shorten"), id="100000-chars"),
    ],
)
def test_bad_question_via_cli(cli, capsys: pytest.CaptureFixture[str], question: str, words: tuple[str, ...]) -> None:
    assert cli("search", question) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in err and "1." not in out
    # Nothing lost: the next good question answers, with passages.
    assert cli("search", QUESTION, "-k", "2") == 0
    out, err = capsys.readouterr()
    assert out.startswith("1. [") and "\n2. [" in out
    assert "error" not in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(("-k", "0"), ("k must be a whole number of at least 1", "not 0"), id="k=0"),
        pytest.param(("--article", "nope"), ("unknown article id(s) 'nope'", "known ids are", "rag articles"), id="unknown-article"),
    ],
)
def test_bad_search_argument_via_cli(cli, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], words) -> None:
    assert cli("search", QUESTION, *args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


def test_missing_corpus_via_cli(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from rag.cli import main

    missing = tmp_path / "no-such-corpus"
    assert main(["articles", "--corpus", str(missing)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: corpus folder {missing} does not exist: create it and put .txt, .md or .pdf articles in it"]


# --- retrieval arguments ---------------------------------------------------------


def test_unknown_article_lists_known_ids(built: RAG) -> None:
    with pytest.raises(UnknownArticleError) as exc:
        built.retrieve(QUESTION, articles=[ARTICLE_IDS[0], "999_nope"])
    message = str(exc.value)
    assert "'999_nope'" in message
    assert repr(ARTICLE_IDS[0]) not in message.split(":")[0]  # only the unknown id is blamed
    assert "known ids are " + ", ".join(ARTICLE_IDS) in message
    assert "rag articles" in message
    with pytest.raises(UnknownArticleError, match="known ids are"):
        built.article("999_nope")
    assert len(built.retrieve(QUESTION, k=2, articles=[ARTICLE_IDS[0]])) == 2


def test_unknown_article_as_a_single_string(built: RAG) -> None:
    with pytest.raises(UnknownArticleError, match=r"unknown article id\(s\) 'nope'"):
        built.retrieve(QUESTION, articles="nope")


def test_empty_article_list_is_refused(built: RAG) -> None:
    with pytest.raises(QueryError) as exc:
        built.retrieve(QUESTION, articles=[])
    assert type(exc.value) is QueryError
    assert "articles= is an empty list" in str(exc.value)
    assert "pass None to search every article" in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        pytest.param({"mode": "semantic"}, ("unknown mode 'semantic'", "use one of hybrid, dense, bm25"), id="mode"),
        pytest.param({"mode": "HYBRID"}, ("unknown mode 'HYBRID'", "use one of"), id="mode-upper-case"),
        pytest.param({"k": 0}, ("k must be a whole number of at least 1", "not 0"), id="k=0"),
        pytest.param({"k": -1}, ("k must be a whole number of at least 1", "not -1"), id="k=-1"),
        pytest.param({"k": "5"}, ("k must be a whole number of at least 1", "not '5'"), id="k='5'"),
        pytest.param({"k": 2.5}, ("k must be a whole number", "not 2.5"), id="k=2.5"),
        pytest.param({"k": True}, ("k must be a whole number", "not True"), id="k=True"),
    ],
)
def test_bad_retrieval_argument(built: RAG, kwargs: dict, words: tuple[str, ...]) -> None:
    with pytest.raises(QueryError) as exc:
        built.retrieve(QUESTION, **kwargs)
    assert type(exc.value) is QueryError
    for word in words:
        assert word in str(exc.value)
    assert len(built.retrieve(QUESTION, k=4)) == 4


# --- the corpus folder ------------------------------------------------------------


def test_missing_corpus_folder(tmp_path: Path, corpus_copy: Path, fake_embedder: HashEmbedder) -> None:
    index = tmp_path / "index"
    build(corpus_copy, index, fake_embedder)
    pointer = (index / POINTER).read_text()
    missing = tmp_path / "moved-away"
    with pytest.raises(CorpusError) as exc:
        RAG.load(missing, index, embedder=fake_embedder)
    assert str(exc.value) == (
        f"corpus folder {missing} does not exist: create it and put .txt, .md or .pdf articles in it"
    )
    # The index of the real corpus is untouched.
    assert (index / POINTER).read_text() == pointer
    assert set(IndexStore(index).load().manifest.articles) == set(ARTICLE_IDS)


def test_corpus_folder_is_a_file(tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    not_a_folder = tmp_path / "corpus.txt"
    not_a_folder.write_text("some text")
    with pytest.raises(CorpusError, match="does not exist: create it"):
        RAG.load(not_a_folder, tmp_path / "index", embedder=fake_embedder)


def test_empty_corpus_folder(tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    empty = tmp_path / "corpus"
    empty.mkdir()
    with pytest.raises(CorpusError) as exc:
        RAG.load(empty, tmp_path / "index", embedder=fake_embedder)
    assert str(exc.value) == f"corpus folder {empty} holds no .txt, .md or .pdf article: add some"
    assert not (tmp_path / "index").exists()  # nothing was written


@pytest.mark.parametrize("name", ["notes.docx", "metadata.json"])
def test_corpus_with_only_a_non_article_file(
    tmp_path: Path, fake_embedder: HashEmbedder, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / name).write_text("{}")
    caplog.set_level(logging.WARNING, logger="rag")
    with pytest.raises(CorpusError) as exc:
        RAG.load(corpus, tmp_path / "index", embedder=fake_embedder)
    assert "holds no .txt, .md or .pdf article" in str(exc.value)
    assert "add some" in str(exc.value)
    if name != "metadata.json":
        assert any("notes.docx has an unsupported type: use .txt, .md or .pdf" in w for w in rag_warnings(caplog))


def test_corpus_where_no_article_can_be_read(tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "x.txt").write_bytes(b"")
    with pytest.raises(CorpusError) as exc:
        RAG.load(corpus, tmp_path / "index", embedder=fake_embedder)
    message = str(exc.value)
    assert "no article in" in message and "could be read" in message
    assert "x.txt is empty" in message and "add text or remove the file" in message


# --- bad files inside a good corpus ------------------------------------------------


def _same_text_as_first_article(corpus: Path) -> dict[str, bytes]:
    return {"zz_copy.txt": (corpus / f"{ARTICLE_IDS[0]}.txt").read_bytes()}


BAD_FILES = [
    pytest.param(
        lambda c: {"x.txt": b""},
        "x.txt",
        ("x.txt is empty", "add text or remove the file"),
        id="empty-txt",
    ),
    pytest.param(
        lambda c: {"x.txt": b" \n\n\t \n"},
        "x.txt",
        ("x.txt is empty", "add text or remove the file"),
        id="whitespace-txt",
    ),
    pytest.param(
        lambda c: {"x.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256))},
        "x.txt",
        ("x.txt looks binary", "NUL bytes", "remove it or convert it to .txt"),
        id="binary",
    ),
    pytest.param(
        lambda c: {"x.txt": "Caf\xe9 politics in Belgrade and Sarajevo.".encode("latin-1")},
        "x.txt",
        ("x.txt is not valid UTF-8", "offset 3", "re-save it as UTF-8"),
        id="invalid-utf8",
    ),
    pytest.param(
        # A UTF-16 file cut off mid-character (odd length), e.g. a truncated copy.
        lambda c: {"x.txt": "Serbia and Türkiye".encode("utf-16") + b"!"},
        "x.txt",
        ("x.txt", "UTF-16", "re-save it"),
        id="truncated-utf16",
    ),
    pytest.param(
        _same_text_as_first_article,
        "zz_copy.txt",
        ("zz_copy.txt duplicates", f"{ARTICLE_IDS[0]}.txt", "remove one of them"),
        id="duplicate-article",
    ),
    pytest.param(
        lambda c: {
            "a.md": b"# Notes on Sarajevo\n\nOld mosques in Sarajevo were restored with Turkish money.\n",
            "a.txt": b"Trade between Serbia and Hungary grew in the last decade.\n",
        },
        "a.txt",
        ("a.txt has the same id as a.md", "rename one of them"),
        id="same-stem",
    ),
]


@pytest.mark.parametrize(("make", "skipped_name", "words"), BAD_FILES)
def test_bad_file_is_skipped_and_the_rest_indexed(
    corpus_copy: Path,
    tmp_path: Path,
    fake_embedder: HashEmbedder,
    caplog: pytest.LogCaptureFixture,
    make,
    skipped_name: str,
    words: tuple[str, ...],
) -> None:
    for name, data in make(corpus_copy).items():
        (corpus_copy / name).write_bytes(data)
    caplog.set_level(logging.WARNING, logger="rag")
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder)

    assert [s.source for s in r.corpus.skipped] == [skipped_name]
    reason = r.corpus.skipped[0].reason
    assert "\n" not in reason
    for word in words:
        assert word in reason
    assert any(reason in w for w in rag_warnings(caplog)), rag_warnings(caplog)

    # The one same-stem file that is kept is indexed too; nothing else is.
    extra = ("a",) if skipped_name == "a.txt" else ()
    assert_all_articles_served(r, extra)
    if extra:
        assert r.article("a").source == "a.md"
        assert r.article("a").title == "Notes on Sarajevo"


def test_skipped_file_is_listed_by_the_cli(cli, capsys: pytest.CaptureFixture[str], corpus_copy: Path) -> None:
    (corpus_copy / "x.txt").write_bytes(b"\x00\x01\x02")
    assert cli("articles") == 0
    out = capsys.readouterr().out
    assert "skipped: x.txt looks binary (it holds NUL bytes): remove it or convert it to .txt" in out
    for article_id in ARTICLE_IDS:
        assert article_id in out


# --- metadata.json ------------------------------------------------------------------


def first_paragraph(corpus: Path, article_id: str) -> str:
    return (corpus / f"{article_id}.txt").read_text(encoding="utf-8").split("\n\n", 1)[0].strip()


def test_invalid_metadata_json_falls_back_to_titles_from_the_text(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    (corpus_copy / "metadata.json").write_text('{"000_b8d8672fd89b6af8": {"title": "unfinished', encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="rag")
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder)

    warnings = [w for w in rag_warnings(caplog) if "metadata.json" in w]
    assert len(warnings) == 1
    assert "is not valid JSON" in warnings[0]
    assert "fix it; titles are taken from the texts meanwhile" in warnings[0]
    assert r.corpus.warnings == tuple(warnings)
    assert r.corpus.skipped == ()

    titles = {a.id: a for a in r.articles}
    # Articles that print their title on the first line keep it.
    for article_id in ("001_ffbeb848175f5bcf", "003_dbe280aae13c8a82", "004_1297941efbeccd24"):
        assert titles[article_id].title == first_paragraph(corpus_copy, article_id)
        assert titles[article_id].title_is_descriptive is False
    # One that opens with a sentence falls back to its id, marked as such.
    assert titles["002_96505048f8b5e099"].title == "002_96505048f8b5e099"
    assert titles["002_96505048f8b5e099"].title_is_descriptive is True
    # Metadata-only facts are gone, text facts stay.
    assert titles["003_dbe280aae13c8a82"].publisher is None
    assert titles["000_b8d8672fd89b6af8"].author == "Dr. Sinem Cengiz"
    assert_all_articles_served(r)


def test_metadata_json_in_latin1_says_to_resave_it_as_utf8(corpus_copy: Path) -> None:
    from rag.ingest import load_metadata

    # Valid JSON, saved by an editor in Latin-1: the fault is the encoding, not the syntax.
    (corpus_copy / "metadata.json").write_bytes('{"000_b8d8672fd89b6af8": {"title": "Caf\u00e9"}}'.encode("latin-1"))
    meta, warnings = load_metadata(corpus_copy)
    assert meta == {}
    assert len(warnings) == 1
    assert "is not valid UTF-8 (bad byte at offset 39): re-save it as UTF-8" in warnings[0]
    assert "not valid JSON" not in warnings[0]
    assert warnings[0].endswith("titles are taken from the texts meanwhile")


def test_byline_is_not_taken_for_a_title(corpus_copy: Path) -> None:
    from rag.ingest import load_corpus

    (corpus_copy / "metadata.json").write_text("not json", encoding="utf-8")
    article = load_corpus(corpus_copy).by_id()["000_b8d8672fd89b6af8"]
    assert article.author == "Dr. Sinem Cengiz"
    assert not article.title.startswith("By ")


# --- a damaged index -----------------------------------------------------------------


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 64, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _first_bm25_file(build: Path) -> Path:
    files = sorted(p for p in (build / "bm25").iterdir() if p.is_file())
    assert files, "the build holds no BM25 file"
    return files[0]


def _damage_file(action, pick):
    def damage(index: Path, build: Path) -> Path:
        path = pick(build)
        action(path)
        return path

    return damage


def _write(name: str, data: bytes):
    def damage(index: Path, build: Path) -> Path:
        path = (index / name) if name == POINTER else (build / name)
        path.write_bytes(data)
        return path

    return damage


DAMAGES = [
    pytest.param(_damage_file(_flip_middle, lambda b: b / "dense.faiss"), id="dense.faiss-overwritten"),
    pytest.param(_damage_file(_flip_middle, lambda b: b / "vectors.npy"), id="vectors.npy-overwritten"),
    pytest.param(_damage_file(_truncate, lambda b: b / "chunks.npz"), id="chunks.npz-truncated"),
    pytest.param(_damage_file(_truncate, _first_bm25_file), id="bm25-file-truncated"),
    pytest.param(_damage_file(Path.unlink, lambda b: b / "dense.faiss"), id="dense.faiss-deleted"),
    pytest.param(_damage_file(Path.unlink, lambda b: b / "chunks.npz"), id="chunks.npz-deleted"),
    pytest.param(_damage_file(Path.unlink, _first_bm25_file), id="bm25-file-deleted"),
    pytest.param(_write("manifest.json", b"this is { not json"), id="manifest-garbage-text"),
    pytest.param(_write("manifest.json", b""), id="manifest-empty"),
    pytest.param(
        _write("manifest.json", b"\xff\xfe\x00\x81\x9c garbage \x00"),
        id="manifest-garbage-bytes",
    ),
    pytest.param(
        _write("manifest.json", b"[1, 2, 3]"),
        id="manifest-json-not-an-object",
    ),
    pytest.param(_write(POINTER, b"build-20000101-000000-abcdef\n"), id="CURRENT-names-missing-build"),
    pytest.param(
        _write(POINTER, b"\xff\xfe\x00\x9c\n"),
        id="CURRENT-garbage-bytes",
    ),
]


@pytest.fixture
def damaged_index(built: RAG):
    """Apply one damage to the live build; returns (index folder, damaged path, old build name)."""

    def apply(damage) -> tuple[Path, Path, str]:
        index = built.settings.index.index_dir
        build_dir = IndexStore(index).live_folder()
        assert build_dir is not None
        path = damage(index, build_dir)
        return index, path, build_dir.name

    return apply


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_index_file_is_reported_by_the_store(damaged_index, damage) -> None:
    index, path, _ = damaged_index(damage)
    with pytest.raises(StoreError) as exc:
        IndexStore(index).load()
    message = str(exc.value)
    assert str(path) in message
    assert message.endswith("run `rag index --rebuild`")
    assert "\n" not in message


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_index_is_rebuilt_from_the_corpus(
    damaged_index, damage, corpus_copy: Path, fake_embedder: HashEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    index, path, old_build = damaged_index(damage)
    caplog.set_level(logging.WARNING, logger="rag")
    r = RAG.load(corpus_copy, index, embedder=fake_embedder)

    warnings = [w for w in rag_warnings(caplog) if str(path) in w]
    assert len(warnings) == 1, rag_warnings(caplog)
    assert warnings[0].endswith("rebuilding the index from the corpus")
    assert r.summary.rebuilt is True
    assert str(path) in r.summary.reason
    assert set(r.summary.added) == set(ARTICLE_IDS)
    assert r.summary.embedded == r.summary.chunks > 0
    # A fresh build is live, the damaged one is gone, and every article answers.
    live = IndexStore(index).live_folder()
    assert live is not None and live.name != old_build
    assert not (index / old_build).exists()
    assert_all_articles_served(r)


def test_damaged_index_with_the_cli_rebuild(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli("index") == 0
    build_dir = IndexStore(tmp_path / "index").live_folder()
    _flip_middle(build_dir / "vectors.npy")
    capsys.readouterr()
    assert cli("search", QUESTION, "-k", "1") == 0
    out, err = capsys.readouterr()
    assert out.startswith("1. [")
    assert err.strip().splitlines() == [
        f"warning: index file {build_dir / 'vectors.npy'} is damaged (checksum mismatch): rebuilding the index from the corpus"
    ]



def test_metadata_values_of_the_wrong_type_are_ignored_with_a_warning(corpus_copy: Path, caplog) -> None:
    from rag.ingest import load_corpus

    meta = json.loads((corpus_copy / "metadata.json").read_text(encoding="utf-8"))
    meta["003_dbe280aae13c8a82"]["date"] = 2026
    meta["003_dbe280aae13c8a82"]["title_is_descriptive"] = "no"
    (corpus_copy / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    with caplog.at_level("WARNING", logger="rag"):
        article = load_corpus(corpus_copy).by_id()["003_dbe280aae13c8a82"]
    assert article.date is None and article.publisher == "AVİM"
    assert article.title_is_descriptive is False
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "key 'date' must be text or null, not int: it is ignored" in messages
    assert "key 'title_is_descriptive' must be true or false, not str" in messages


def test_a_runaway_title_does_not_stop_indexing(corpus_copy: Path, tmp_path: Path, real_embedder) -> None:
    """A 300-word title would leave no room for the chunk in 256 word pieces."""
    meta = json.loads((corpus_copy / "metadata.json").read_text(encoding="utf-8"))
    meta["004_1297941efbeccd24"]["title"] = " ".join(["Strategic"] * 300)
    (corpus_copy / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=real_embedder)
    hits = r.retrieve("Israel does not recognize Kosovo", k=3, articles="004_1297941efbeccd24")
    assert hits and hits[0].article_id == "004_1297941efbeccd24"


def test_a_question_longer_than_the_model_reads_is_refused(tmp_path: Path, real_embedder) -> None:
    r = RAG.load(CORPUS, tmp_path / "index", embedder=real_embedder)
    question = "Žđ " * 300  # under the character limit, but each word is several word pieces
    assert len(question.strip()) <= Settings().retrieval.max_question_chars
    with pytest.raises(QueryError, match=r"word pieces long and the model reads 256: shorten it"):
        r.retrieve(question, mode="dense")
    assert r.retrieve(question, mode="bm25") == []  # BM25 has no such limit


def test_search_without_a_question_and_no_input_says_what_to_do(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rag.cli", "search", "--corpus", str(CORPUS), "--index", str(tmp_path)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
                            preexec_fn=lambda: __import__("os").close(0))
    assert result.returncode == 2
    assert result.stderr.strip() == 'error: no question given and no input to read one from: pass the question in quotes, rag search "..."'


@pytest.mark.model
def test_search_reads_one_question_per_piped_line_without_a_prompt(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "search", "-k", "1", "--mode", "bm25", "-q",
         "--corpus", str(CORPUS), "--index", str(tmp_path)],
        input="Belgrade-Sarajevo highway\n\n\nIsrael Kosovo recognition\n", capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "question>" not in result.stdout
    assert result.stdout.count("1. [") == 2

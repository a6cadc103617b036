"""Hostile corpus files (issue 12): each file the attack dropped into the
corpus is skipped or read with a warning that names it, and every other
article is still indexed and served.

The fake embedder keeps these to seconds: the model adds nothing to reading
files. Where timing matters (the long-build estimate) the fake is slowed down
by a known amount per text, so that the estimate can be checked against it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import unicodedata
from pathlib import Path

import pytest

import rag.indexer
from rag.core import RAG
from rag.embedding import HashEmbedder
from rag.errors import SettingsError
from rag.ingest import load_corpus
from rag.settings import Settings

from .conftest import ARTICLE_IDS
from .test_bad_input import QUESTION, assert_all_articles_served, rag_warnings

ORIGINAL = "003_dbe280aae13c8a82"


def new_text(words: str = "Pelagonia") -> str:
    """An article no other file duplicates."""
    return f"A report about {words}\n\nThe {words} valley grew wheat and tobacco for three centuries, the survey says.\n"


def skipped_reasons(r_or_corpus) -> dict[str, str]:
    corpus = getattr(r_or_corpus, "corpus", r_or_corpus)
    return {s.source: s.reason for s in corpus.skipped}


@pytest.fixture
def warnings_of(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="rag")
    return lambda: rag_warnings(caplog)


# --- file names ------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_indexed(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, warnings_of
) -> None:
    # Bytes a Latin-1 system wrote; Python sees them as a lone surrogate.
    (corpus_copy / os.fsdecode(b"caf\xe9.txt")).write_text(new_text(), encoding="utf-8")
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder)

    assert skipped_reasons(r) == {"caf\\xe9.txt": "caf\\xe9.txt has a name that is not valid UTF-8 (the bytes shown as \\xNN): rename it"}
    assert [w for w in warnings_of() if "caf\\xe9.txt" in w]
    assert_all_articles_served(r)
    # What is printed and stored can be written as UTF-8.
    json.dumps([s.reason for s in r.corpus.skipped]).encode("utf-8")


def test_rag_index_with_a_non_utf8_file_name_succeeds(corpus_copy: Path, tmp_path: Path, cli_on) -> None:
    (corpus_copy / os.fsdecode(b"r\xe9sum\xe9.txt")).write_text(new_text(), encoding="utf-8")
    code, out, err = cli_on(corpus_copy, "index")
    assert code == 0, err
    assert "skipped: r\\xe9sum\\xe9.txt has a name that is not valid UTF-8" in out
    assert "Traceback" not in err
    assert "5 added" in out


def test_a_decomposed_file_name_gives_a_composed_id_that_a_typed_id_matches(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder
) -> None:
    composed = "Türkiye-Sérbia"
    (corpus_copy / (unicodedata.normalize("NFD", composed) + ".txt")).write_text(new_text(), encoding="utf-8")
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder)

    assert composed in {a.id for a in r.articles}
    for typed in (composed, unicodedata.normalize("NFD", composed)):
        hits = r.retrieve("Pelagonia valley wheat", k=2, articles=[typed], mode="bm25")
        assert hits and {h.article_id for h in hits} == {composed}
        assert r.article(typed).id == composed


def test_metadata_keys_are_matched_after_normalisation(corpus_copy: Path) -> None:
    composed = "Öresund"
    (corpus_copy / (composed + ".txt")).write_text(new_text(), encoding="utf-8")
    meta = json.loads((corpus_copy / "metadata.json").read_text(encoding="utf-8"))
    meta[unicodedata.normalize("NFD", composed)] = {"title": "The bridge"}
    (corpus_copy / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    assert load_corpus(corpus_copy).by_id()[composed].title == "The bridge"


# --- links ---------------------------------------------------------------------------


def test_broken_and_looping_links_are_reported(corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, warnings_of) -> None:
    (corpus_copy / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    (corpus_copy / "loop.txt").symlink_to("loop.txt")
    (corpus_copy / "ring-a.txt").symlink_to("ring-b.txt")
    (corpus_copy / "ring-b.txt").symlink_to("ring-a.txt")
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder)

    reasons = skipped_reasons(r)
    assert reasons["gone.txt"] == f"gone.txt is a symbolic link to {tmp_path / 'nowhere.txt'}, which does not exist: fix the link or remove it"
    assert reasons["loop.txt"] == "loop.txt is a symbolic link that loops (it points to loop.txt): fix the link or remove it"
    assert "loops" in reasons["ring-a.txt"] and "loops" in reasons["ring-b.txt"]
    assert len([w for w in warnings_of() if "symbolic link" in w]) == 4
    assert_all_articles_served(r)


def test_a_working_link_is_read(corpus_copy: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text(new_text(), encoding="utf-8")
    (corpus_copy / "linked.txt").symlink_to(target)
    corpus = load_corpus(corpus_copy)
    assert "linked" in corpus.by_id() and corpus.skipped == ()


# --- size ----------------------------------------------------------------------------


def big_text(megabytes: float) -> str:
    sentence = "The harbour of Durrës handled more grain this year than in any year before. "
    return "Grain through Durrës\n\n" + sentence * int(megabytes * 1_000_000 / len(sentence.encode()) + 1)


def test_a_text_file_over_the_size_limit_is_skipped_with_how_to_raise_it(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, warnings_of
) -> None:
    (corpus_copy / "huge.txt").write_text(big_text(1.2), encoding="utf-8")
    started = time.perf_counter()
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder, settings=Settings(max_file_mb=1))
    assert time.perf_counter() - started < 30  # the 1.2 MB were never chunked

    reason = skipped_reasons(r)["huge.txt"]
    assert reason.startswith("huge.txt holds 1.2 MB of text, over the per-file limit of 1 MB")
    assert "RAG_MAX_FILE_MB=2" in reason and "max_file_mb" in reason
    assert [w for w in warnings_of() if "huge.txt holds" in w]
    assert_all_articles_served(r)
    # Raised, the same file is read.
    assert "huge" in load_corpus(corpus_copy, max_file_mb=2).by_id()


def test_a_pdf_is_measured_by_its_text(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=8)
    for _ in range(4):
        pdf.add_page()
        pdf.multi_cell(0, 4, big_text(0.004))
    pdf.output(str(tmp_path / "report.pdf"))
    (tmp_path / "small.txt").write_text(new_text(), encoding="utf-8")

    assert "report" in load_corpus(tmp_path, max_file_mb=1).by_id()
    corpus = load_corpus(tmp_path, max_file_mb=0.005)
    assert set(corpus.by_id()) == {"small"}
    assert re.match(r"report\.pdf holds 0\.0\d\d MB of text, over the per-file limit of 0\.005 MB", skipped_reasons(corpus)["report.pdf"])


def test_the_size_limit_is_a_setting_with_an_environment_variable() -> None:
    assert Settings().index.max_file_mb == 5
    assert Settings.from_env({"RAG_MAX_FILE_MB": "40"}).index.max_file_mb == 40
    with pytest.raises(SettingsError, match=r"RAG_MAX_FILE_MB='lots' is not a number of megabytes"):
        Settings.from_env({"RAG_MAX_FILE_MB": "lots"})
    with pytest.raises(SettingsError, match="max_file_mb must be above 0"):
        Settings(max_file_mb=0)


class SlowEmbedder(HashEmbedder):
    """The fake embedder at a known speed, to check the estimate against."""

    seconds_per_text = 0.004

    def embed(self, texts, *, progress: bool = False):
        time.sleep(self.seconds_per_text * len(texts))
        return super().embed(texts, progress=progress)


def test_a_long_build_is_announced_with_an_estimate(
    corpus_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warnings_of
) -> None:
    monkeypatch.setattr(rag.indexer, "LONG_BUILD_SECONDS", 0.5)  # the real threshold is a minute
    monkeypatch.setattr(rag.indexer, "PROBE_ABOVE", 100)  # the real one is 1,000 texts; corpus/ has about 300
    started = time.perf_counter()
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=SlowEmbedder(dimension=64))
    took = time.perf_counter() - started

    s = r.summary
    (warning,) = [w for w in warnings_of() if w.startswith("embedding ")]
    assert warning.startswith(f"embedding {s.embedded:,} chunks and {s.sentences_embedded:,} sentences takes about ")
    assert "questions are answered once it is done" in warning
    estimate = float(re.search(r"about (\d+) s", warning).group(1))
    expected = SlowEmbedder.seconds_per_text * (s.embedded + s.sentences_embedded)  # the whole embedding time
    assert 0.5 * expected <= estimate + 0.5 <= 2 * expected + 1  # rounded to whole seconds
    assert estimate <= took + 0.5


def test_a_short_build_is_not_announced(corpus_copy: Path, tmp_path: Path, monkeypatch, warnings_of) -> None:
    monkeypatch.setattr(rag.indexer, "LONG_BUILD_SECONDS", 0.5)
    monkeypatch.setattr(rag.indexer, "PROBE_ABOVE", 100)
    RAG.load(corpus_copy, tmp_path / "index", embedder=HashEmbedder(dimension=64))
    assert not [w for w in warnings_of() if w.startswith("embedding ")]


# --- metadata.json ---------------------------------------------------------------------


def _metadata_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _metadata_broken_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "missing.json")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        pytest.param(_metadata_folder, "metadata.json is a folder, not a file: replace it with the metadata file or remove it", id="folder"),
        pytest.param(_metadata_broken_link, "metadata.json cannot be read (No such file or directory)", id="broken-link"),
    ],
)
def test_unusable_metadata_json_is_a_warning(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, warnings_of, damage, words: str
) -> None:
    damage(corpus_copy / "metadata.json")
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder)
    (warning,) = [w for w in warnings_of() if "metadata.json" in w]
    assert words in warning
    assert warning.endswith("; titles are taken from the texts meanwhile")
    assert r.article("001_ffbeb848175f5bcf").title.startswith("Turkey’s strategic reawakening")  # from its text
    assert r.article("003_dbe280aae13c8a82").publisher is None  # a metadata-only fact, gone
    assert_all_articles_served(r)


def test_unreadable_metadata_json_is_a_warning(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder, warnings_of, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = corpus_copy / "metadata.json"
    if os.geteuid() == 0:
        # root reads a file whatever its mode: the refusal the kernel gives others is given here instead.
        real = Path.read_text

        def refuse(self, *args, **kwargs):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", refuse)
    else:
        path.chmod(0)
    r = RAG.load(corpus_copy, tmp_path / "index", embedder=fake_embedder)
    (warning,) = [w for w in warnings_of() if "metadata.json" in w]
    assert warning == f"{path} cannot be read (Permission denied): check that it exists and its permissions; titles are taken from the texts meanwhile"
    assert_all_articles_served(r)


def test_metadata_for_a_missing_file_is_reported(corpus_copy: Path, warnings_of) -> None:
    path = corpus_copy / "metadata.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["renamed-long-ago"] = {"title": "Lost"}
    path.write_text(json.dumps(meta), encoding="utf-8")
    (corpus_copy / f"{ORIGINAL}.txt").rename(corpus_copy / "renamed.txt")
    # A file that is there but skipped keeps its entry without a word about it.
    (corpus_copy / "001_ffbeb848175f5bcf.txt").write_bytes(b"\x00binary")

    corpus = load_corpus(corpus_copy)
    expected = [
        f"metadata.json: entry {name!r} matches no file in the corpus: fix the id (a file's name without its extension) or remove the entry"
        for name in (ORIGINAL, "renamed-long-ago")
    ]
    assert [w for w in corpus.warnings if "matches no file" in w] == expected
    assert [w for w in warnings_of() if "matches no file" in w] == expected


def test_the_real_corpus_gives_no_warning(warnings_of) -> None:
    from .conftest import CORPUS

    corpus = load_corpus(CORPUS)
    assert corpus.warnings == () and corpus.skipped == () and warnings_of() == []


# --- duplicates ---------------------------------------------------------------------------


def test_a_duplicate_dropped_in_later_does_not_take_over_the_article(
    corpus_copy: Path, tmp_path: Path, fake_embedder: HashEmbedder
) -> None:
    index = tmp_path / "index"
    RAG.load(corpus_copy, index, embedder=fake_embedder)
    original = corpus_copy / f"{ORIGINAL}.txt"
    os.utime(original, (time.time() - 3600, time.time() - 3600))
    # The copy sorts first by name: only its age says it is the newcomer.
    copy = corpus_copy / "000_aaa_copy.txt"
    shutil.copyfile(original, copy)

    r = RAG.load(corpus_copy, index, embedder=fake_embedder)
    assert {a.id for a in r.articles} == set(ARTICLE_IDS)
    assert skipped_reasons(r) == {"000_aaa_copy.txt": f"000_aaa_copy.txt duplicates {ORIGINAL}.txt: remove one of them"}
    assert r.summary.added == () and r.summary.removed == ()
    assert [a.id for a in r.articles] == ARTICLE_IDS  # still listed in name order
    assert r.retrieve(QUESTION, k=1, articles=[ORIGINAL])


# --- the CLI on these files ----------------------------------------------------------------


@pytest.fixture
def cli_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """`rag COMMAND` in-process on a corpus folder, with the fake embedder: (exit code, stdout, stderr)."""
    import rag.core
    from rag.cli import main

    monkeypatch.setattr(rag.core, "embedder_for", lambda *a, **k: HashEmbedder(dimension=64))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(corpus: Path, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--corpus", str(corpus), "--index", str(tmp_path / "cli-index")])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)

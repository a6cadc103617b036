"""Retrieval on the real corpus with the real model, FAISS and BM25."""

from __future__ import annotations

import pytest

import rag

from .conftest import ARTICLE_IDS, DAMAGED_ID

MODES = ["hybrid", "dense", "bm25"]


def test_readme_example(real_rag) -> None:
    """The README's API example, as written there."""
    r = real_rag
    hits = r.retrieve("question", k=5, articles=None, mode="hybrid")
    hit = hits[0]
    assert isinstance(hit, rag.Hit)
    assert {"article_id", "title", "text", "score", "start", "end", "chunk_id"} <= set(vars(hit))
    art = r.article(hit.article_id)
    assert isinstance(art, rag.Article)
    assert art.text[hit.start : hit.end] == hit.text
    assert all(getattr(art, f) is not None for f in ("id", "title", "source", "text"))


def test_high_level_dialogue_comes_first_from_the_repaired_article(real_rag) -> None:
    hits = real_rag.retrieve("high-level dialogue between Türkiye and Serbia", k=5)
    assert hits[0].article_id == DAMAGED_ID
    assert "high-level dialogue" in hits[0].text


@pytest.mark.parametrize(
    "question,article",
    [
        ("Why did Vucic halt arms deliveries to Israel?", "000_b8d8672fd89b6af8"),
        ("When did Erdogan visit Serbia?", "001_ffbeb848175f5bcf"),
        ("How many mosques has Türkiye built or restored in the Balkans?", "002_96505048f8b5e099"),
        ("Belgrade–Sarajevo highway", DAMAGED_ID),
        ("Does Israel recognise Kosovo?", "004_1297941efbeccd24"),
        # Paraphrase: few shared words; the dense side must carry it.
        ("Why did Belgrade stop sending weapons to the Jewish state?", "000_b8d8672fd89b6af8"),
    ],
)
def test_questions_find_their_article(real_rag, question: str, article: str) -> None:
    assert article in [h.article_id for h in real_rag.retrieve(question, k=3)]


@pytest.mark.parametrize("mode", MODES)
def test_hits_are_sorted_distinct_and_exact(real_rag, mode: str) -> None:
    hits = real_rag.retrieve("Turkish military cooperation with Albania and Kosovo", k=8, mode=mode)
    assert len(hits) == 8
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.chunk_id for h in hits}) == len(hits)
    for h in hits:
        assert real_rag.article(h.article_id).text[h.start : h.end] == h.text
        assert h.title == real_rag.article(h.article_id).title


def test_modes_report_the_scores_they_used(real_rag) -> None:
    dense = real_rag.retrieve("Balkan Peace Platform", k=3, mode="dense")
    bm25 = real_rag.retrieve("Balkan Peace Platform", k=3, mode="bm25")
    assert all(h.dense_score is not None and -1.0 <= h.dense_score <= 1.0 for h in dense)
    assert all(h.bm25_score is not None and h.bm25_score > 0 for h in bm25)
    assert [h.score for h in dense] == [h.dense_score for h in dense]


@pytest.mark.parametrize("mode", MODES)
def test_articles_restricts_the_search(real_rag, mode: str) -> None:
    only = ["004_1297941efbeccd24", "001_ffbeb848175f5bcf"]
    hits = real_rag.retrieve("Balkan Peace Platform in Istanbul", k=10, articles=only, mode=mode)
    assert hits and {h.article_id for h in hits} <= set(only)
    single = real_rag.retrieve("Israel", k=3, articles="002_96505048f8b5e099", mode=mode)
    assert {h.article_id for h in single} <= {"002_96505048f8b5e099"}


def test_k_larger_than_the_index_returns_every_chunk_once(real_rag) -> None:
    n = real_rag.backend.n_chunks
    hits = real_rag.retrieve("Türkiye", k=n + 50, mode="dense")
    assert len(hits) == n


def test_bm25_returns_nothing_for_words_the_corpus_lacks(real_rag) -> None:
    assert real_rag.retrieve("zyxwv qqqq", k=5, mode="bm25") == []
    assert real_rag.retrieve("the of and", k=5, mode="bm25") == []


def test_accents_do_not_matter_for_bm25(real_rag) -> None:
    plain = real_rag.retrieve("Vucic Erdogan Turkiye", k=3, mode="bm25")
    accented = real_rag.retrieve("Vučić Erdoğan Türkiye", k=3, mode="bm25")
    assert [h.chunk_id for h in plain] == [h.chunk_id for h in accented]


def test_source_named_in_the_question_is_matched_through_the_context(real_rag) -> None:
    """Chunks are indexed with their article's publisher: 'AVİM' appears in no chunk text."""
    assert all("AVİM" not in a.text for a in real_rag.articles)
    hits = real_rag.retrieve("according to the AVİM commentary", k=3, mode="bm25")
    assert hits and all(h.article_id == DAMAGED_ID for h in hits)


def test_every_article_is_indexed(real_rag) -> None:
    assert sorted(a.id for a in real_rag.articles) == ARTICLE_IDS
    assert {c.article_id for c in real_rag.backend.stored.chunks} == set(ARTICLE_IDS)


@pytest.mark.model
def test_the_readme_python_block_runs_as_written(tmp_path, monkeypatch) -> None:
    """The README's API example, executed verbatim in a folder with ./corpus."""
    import re
    import shutil

    from .conftest import CORPUS, ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    shutil.copytree(CORPUS, tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    for name in [k for k in __import__("os").environ if k.startswith("RAG_")]:
        monkeypatch.delenv(name)  # the example is the default, extractive set-up
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert (tmp_path / "index" / "CURRENT").is_file()  # RAG.load() used ./index
    a, hit, art = scope["a"], scope["hit"], scope["art"]
    assert art.text[hit.start : hit.end] == hit.text
    assert not a.abstained and a.citations[0].article_id == "000_b8d8672fd89b6af8"


def test_with_settings_shares_the_index_and_refuses_what_would_reshape_it(real_rag) -> None:
    from rag.errors import SettingsError

    bm25_only = real_rag.with_settings(retrieval_mode="bm25", abstain_below=0.9)
    assert bm25_only.backend is real_rag.backend and real_rag.settings.retrieval.mode == "hybrid"
    assert bm25_only.ask("Why did Vucic halt arms deliveries to Israel?").abstained  # the stricter threshold
    for change in ({"chunk_tokens": 64}, {"repair": False}, {"model": "other"}):
        with pytest.raises(SettingsError, match="shape the corpus and index"):
            real_rag.with_settings(**change)

"""Grouped settings: flat names and groups alike, unknown names refused with
the valid ones listed, the index group compared as a whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import AnswerSettings, IndexSettings, RetrievalSettings, Settings, SettingsError


def test_flat_names_and_groups_set_the_same_fields() -> None:
    flat = Settings(chunk_tokens=80, retrieval_mode="bm25", abstain_below=0.4, llm_model="m")
    grouped = Settings(
        index=IndexSettings(chunk_tokens=80), retrieval=RetrievalSettings(mode="bm25"),
        answer=AnswerSettings(abstain_below=0.4),
    ).replace(llm={"model": "m"})
    assert flat == grouped
    assert (flat.index.chunk_tokens, flat.retrieval.mode, flat.answer.abstain_below, flat.llm.model) == (80, "bm25", 0.4, "m")
    assert Settings.from_dict({"index": {"chunk_tokens": 90}}).index.chunk_tokens == 90


def test_unknown_names_are_refused_with_the_valid_ones_listed() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting\(s\) chunk_size: valid names are .*chunk_tokens"):
        Settings(chunk_size=80)
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings().replace(index={"chunk_size": 80})
    with pytest.raises(SettingsError, match="index must be a IndexSettings, not dict"):
        Settings(index={"chunk_tokens": 80})


def test_values_are_checked_in_their_group() -> None:
    with pytest.raises(SettingsError, match="overlap_tokens must be >= 0 and below chunk_tokens"):
        Settings(chunk_tokens=20, overlap_tokens=30)
    with pytest.raises(SettingsError, match="backend must be one of local, postgres"):
        Settings(backend="sqlite")


def test_located_sets_folders_backend_and_dsn_and_keeps_the_rest() -> None:
    base = Settings(postgres={"dsn": "postgresql://a@h/db", "schema": "two"})
    moved = base.located("c", "i", backend="postgres", dsn="postgresql://b@h/db")
    assert (moved.index.corpus_dir, moved.index.index_dir, moved.index.backend) == (Path("c"), Path("i"), "postgres")
    assert moved.index.postgres == {"dsn": "postgresql://b@h/db", "schema": "two"}
    assert base.located() is base


def test_the_index_group_is_one_value() -> None:
    assert Settings().index == Settings().index
    assert Settings(embed_batch_size=8).index != Settings().index  # with_settings refuses any such change


@pytest.mark.parametrize("name", ["names_margin", "figures_margin", "referring_margin"])
def test_a_negative_lead_margin_is_refused_by_name(name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be at least 0"):
        Settings(**{name: -0.1})
    assert getattr(Settings(**{name: 0.0}).answer, name) == 0.0  # 0 turns the rule off


@pytest.mark.parametrize("name", ["answer_probability", "answer_gate", "answer_doubt", "reader_gate"])
def test_an_answer_switch_is_true_or_false_not_a_string(name) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be True or False"):
        Settings(**{name: "false"})
    field = name.removeprefix("answer_")
    assert [getattr(Settings(**{name: v}).answer, field) for v in (True, False)] == [True, False]

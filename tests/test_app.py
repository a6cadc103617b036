"""The chat app (app.py): its API endpoint through the official gradio_client,
basic auth, escaping of corpus text, and a light --help. The server tests start
`python app.py` in a child process on a free loopback port."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from .appserver import APP, _env, running
from .conftest import ROOT

VUCIC_ID = "000_b8d8672fd89b6af8"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(tmp_path_factory.mktemp("app")) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


@pytest.mark.model
def test_api_answers_with_a_citation_that_quotes_the_article(client, real_rag) -> None:
    result = client.predict("Why did Vucic halt arms deliveries to Israel?", api_name="/ask")
    assert result["abstained"] is False
    assert "[1]" in result["text"]
    assert "halted" in result["text"]
    ours = [c for c in result["citations"] if c["article_id"] == VUCIC_ID]
    assert ours, result
    for c in result["citations"]:
        assert c["quote"] == real_rag.article(c["article_id"]).text[c["start"] : c["end"]]
        assert f"[{c['n']}]" in result["text"]
    assert result["notes"] == []


@pytest.mark.model
def test_api_abstains_when_the_articles_do_not_answer(client) -> None:
    result = client.predict("Who won the 2022 FIFA World Cup?", api_name="/ask")
    assert result["abstained"] is True
    assert result["citations"] == []
    assert "do not answer" in result["text"]


@pytest.mark.model
def test_api_takes_history_k_and_articles(client) -> None:
    result = client.predict(
        "When did he visit Serbia?", ["What did Erdoğan and Vučić agree on?"], 3, None, api_name="/ask"
    )
    assert result["abstained"] is False and "Erdoğan" in result["text"]
    restricted = client.predict("Why did Vucic halt arms deliveries to Israel?", None, 2, ["001_ffbeb848175f5bcf"], api_name="/ask")
    assert all(c["article_id"] == "001_ffbeb848175f5bcf" for c in restricted["citations"])


@pytest.mark.model
def test_api_bad_input_gets_a_message_not_an_exception(client) -> None:
    empty = client.predict("", api_name="/ask")
    assert empty["citations"] == [] and "empty" in empty["error"]
    long = client.predict("x" * 1001, api_name="/ask")
    assert "1,000" in long["error"] and "Traceback" not in long["error"]
    unknown = client.predict("Why?", None, 5, ["no_such_article"], api_name="/ask")
    assert "unknown article" in unknown["error"]


@pytest.mark.model
def test_the_page_is_served(server) -> None:
    with urllib.request.urlopen(server.url, timeout=10) as page:
        assert page.status == 200


@pytest.mark.model
def test_basic_auth_refuses_an_unauthenticated_request(tmp_path) -> None:
    with running(tmp_path, RAG_APP_USER="reader", RAG_APP_PASSWORD="s3cret-pass") as s:
        for path in ("config", "gradio_api/info"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(s.url + path, timeout=10)
            assert refused.value.code in (401, 403)
        from gradio_client import Client

        with pytest.raises(Exception):
            Client(s.url, verbose=False).predict("Why did Vucic halt arms deliveries to Israel?", api_name="/ask")
        authed = Client(s.url, auth=("reader", "s3cret-pass"), verbose=False)
        assert authed.predict("Why did Vucic halt arms deliveries to Israel?", api_name="/ask")["abstained"] is False


def test_help_prints_usage_without_loading_the_model() -> None:
    code = (
        "import runpy, sys\nsys.argv = ['app.py', '--help']\n"
        f"try: runpy.run_path({str(APP)!r}, run_name='__main__')\nexcept SystemExit: pass\n"
        "print('MODULES', 'torch' in sys.modules, 'sentence_transformers' in sys.modules, 'gradio' in sys.modules)"
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env()).stdout
    assert time.monotonic() - started < 10
    assert "usage: app.py" in out and "--port" in out and "--corpus" in out and "RAG_APP_USER" in out
    assert out.strip().endswith("MODULES False False False")


# --- rendering, called directly ------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


@pytest.mark.model
def test_corpus_html_is_shown_as_text(tmp_path, corpus_copy, real_embedder) -> None:
    import rag
    from rag import ui

    sys.path.insert(0, str(ROOT))
    import app

    hostile = corpus_copy / "hostile.txt"
    hostile.write_text(
        f"Orchard {SCRIPT} report\n\nThe orchard growers of Zupa harvested {IMG} record plums in the valley. "
        "Growers said the plums were sweeter than ever.\n",
        encoding="utf-8",
    )
    shutil.rmtree(tmp_path / "index", ignore_errors=True)
    r = rag.RAG.load(corpus_copy, tmp_path / "index", embedder=real_embedder)
    chat = app.ChatApp(r)
    *_, (messages, turns, choices, hits_view, _box) = chat.chat(
        "What did the orchard growers of Zupa harvest?", [], [], 5, ["hostile"], "extractive"
    )
    assert turns and turns[-1]["citations"], messages
    produced = [m["content"] for m in messages] + [hits_view]
    produced += [chat.show_source(value, turns) for _label, value in choices]
    article = r.article("hostile")
    produced.append(ui.article_html(article))
    produced.append(ui.article_html(article, 0, len(article.text)))
    abst = r.ask("Who won the 2022 FIFA World Cup?", articles=["hostile"])
    produced.append(ui.sources_html({a.id: a for a in r.articles}, abst))
    html = "\n".join(produced)
    for raw in (SCRIPT, IMG, "<script", "<img", "onerror=alert(1)>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert f"<mark id='{ui.MARK_ID}'>" in chat.show_source(choices[0][1], turns)


@pytest.mark.model
def test_chat_streams_keeps_turns_and_reports_bad_input(real_rag) -> None:
    sys.path.insert(0, str(ROOT))
    import app

    chat = app.ChatApp(real_rag)
    steps = list(chat.chat("What did Erdoğan and Vučić agree on?", [], [], 5, [], "extractive"))
    assert "Searching" in steps[0][0][-1]["content"]  # something shows at once
    messages, turns, choices, hits_view, box = steps[-1]
    assert len(turns) == 1 and choices and "dense" in hits_view and box == ""
    follow = list(chat.chat("When did he visit Serbia?", messages, turns, 5, [], "extractive"))[-1]
    assert len(follow[1]) == 2 and "Erdoğan" in follow[0][-2]["content"]
    assert [m["content"] for m in follow[0] if m["role"] == "user"] == [
        "What did Erdoğan and Vučić agree on?", "When did he visit Serbia?"
    ]
    empty = list(chat.chat("   ", [], [], 5, [], "extractive"))[-1]
    assert empty[0][-1]["content"] == "Please type a question first."
    long = list(chat.chat("why " * 300, [], [], 5, [], "extractive"))[-1]
    assert long[0][-1]["content"].startswith("⚠") and "1,000" in long[0][-1]["content"]
    assert long[4] == ("why " * 300).strip()  # the question stays in the box to be shortened
    abstained = list(chat.chat("Who won the 2022 FIFA World Cup?", [], [], 5, [], "extractive"))[-1]
    assert "do not answer" in abstained[0][-2]["content"] and "Closest passages" in abstained[0][-1]["content"]

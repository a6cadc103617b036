"""The chat app (app.py): its API endpoint through the official gradio_client,
the login, the guarded routes and uploads, escaping of corpus text, and a light --help. The server tests start
`python app.py` in a child process on a free loopback port."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from .appserver import APP, _env, running
from .conftest import ROOT

VUCIC_ID = "000_b8d8672fd89b6af8"


MAX_UPLOAD_MB = 1  # the module's server takes uploads of at most this size


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(tmp_path_factory.mktemp("app"), args=("--max-upload-mb", str(MAX_UPLOAD_MB))) as s:
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
    assert "rag articles" not in unknown["error"] and "Documents" in unknown["error"]  # web advice, not the CLI's


def _raw_ask(server, data: list) -> dict:
    """Call /ask over plain HTTP with exactly these JSON values (gradio_client
    cannot send a lone surrogate, and checks nothing we want to bypass)."""
    req = urllib.request.Request(
        server.url + "gradio_api/call/ask", data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        event_id = json.load(r)["event_id"]
    with urllib.request.urlopen(server.url + f"gradio_api/call/ask/{event_id}", timeout=60) as r:
        stream = r.read().decode()
    assert "event: complete" in stream, stream  # a payload, not Gradio's opaque {"error": null}
    return json.loads(stream.split("data:", 1)[1].strip())[0]


@pytest.mark.model
@pytest.mark.parametrize(
    "data,expected",
    [
        ([42, None, 5, None], "question must be a string"),
        ([["Why?"], None, 5, None], "question must be a string"),
        (["Why did Vucic halt arms deliveries?", None, "5", None], "k must be a whole number"),
        (["Why did Vucic halt arms deliveries?", None, {"k": 5}, None], "k must be a whole number"),
        (["Why did Vucic halt arms deliveries?", None, True, None], "k must be a whole number"),
        (["Why did Vucic halt arms deliveries?", None, 2.5, None], "not 2.5"),
        (["Why did Vucic halt \ud800 arms deliveries?", None, 5, None], "lone surrogate (U+D800)"),
        (["Why?", "not a list", 5, None], "history must be a list"),
        (["Why?", None, 5, [1, 2]], "articles must be a list of article ids"),
    ],
)
def test_api_wrong_types_get_the_documented_error_payload(server, data, expected) -> None:
    result = _raw_ask(server, data)
    assert expected in result["error"], result
    assert result["citations"] == [] and result["text"] == ""
    assert "Traceback" not in result["error"] and "verbose" not in result["error"]


@pytest.mark.model
def test_api_a_whole_float_k_is_taken_and_a_fractional_one_is_not_truncated(server) -> None:
    whole = _raw_ask(server, ["Why did Vucic halt arms deliveries to Israel?", None, 2.0, None])
    assert "error" not in whole and whole["citations"], whole
    assert "error" in _raw_ask(server, ["Why did Vucic halt arms deliveries to Israel?", None, 1.9, None])


@pytest.mark.model
def test_the_page_is_served(server) -> None:
    with urllib.request.urlopen(server.url, timeout=10) as page:
        assert page.status == 200


@pytest.mark.model
def test_the_login_refuses_an_unauthenticated_request(tmp_path) -> None:
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


USER, PASSWORD = "reader", "s3cret-pass"


def _post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _login(s, password: str) -> tuple[int, float, str | None]:
    """One attempt at the login form: (status, seconds taken, the session cookie header)."""
    started = time.monotonic()
    body = urllib.parse.urlencode({"username": USER, "password": password}).encode()
    req = urllib.request.Request(s.url + "login", data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            status, cookies = r.status, r.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as e:
        status, cookies = e.code, []
    return status, time.monotonic() - started, "; ".join(c.split(";")[0] for c in cookies) or None


@pytest.mark.model
def test_login_is_a_form_whose_failures_slow_the_next_try_and_that_guards_every_route(tmp_path) -> None:
    with running(tmp_path, RAG_APP_USER=USER, RAG_APP_PASSWORD=PASSWORD) as s:
        # Every failed login makes the next one from this client wait longer: 0, 1, 2 s ...
        took = []
        for _ in range(3):
            status, seconds, _ = _login(s, "wrong-guess")
            assert status == 400
            took.append(seconds)
        assert took[0] < 0.9 and took[1] >= 0.95 and took[2] >= 1.95, took
        status, seconds, cookie = _login(s, PASSWORD)
        assert status == 200 and cookie and "access-token" in cookie and seconds >= 3.9  # a form with a session cookie
        assert _login(s, "wrong-again")[1] < 0.9  # a success forgets the failures

        # Routes Gradio leaves open, and the schema and monitoring, need the login.
        for path, body in (("gradio_api/reset", b'{"event_id": "x"}'),
                           ("gradio_api/cancel", b'{"session_hash": "x", "fn_index": 0, "event_id": "x"}')):
            assert _post(s.url + path, body, {"Content-Type": "application/json"})[0] == 401, path
            allowed = _post(s.url + path, body, {"Content-Type": "application/json", "Cookie": cookie})[0]
            assert allowed != 401, path
        for path in ("openapi.json", "docs", "gradio_api/openapi.json", "monitoring", "gradio_api/info", "config"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(s.url + path, timeout=10)
            assert refused.value.code in (401, 403), path
        status, _, _ = _post(s.url + "gradio_api/upload", *_multipart(b"x" * 100))
        assert status == 401


def _multipart(data: bytes, name: str = "note.txt") -> tuple[bytes, dict]:
    boundary = "----ragtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.model
def test_uploads_without_a_login_are_bounded_in_size(server) -> None:
    small, headers = _multipart(b"Plums. " * 1000)
    status, _, body = _post(server.url + "gradio_api/upload", small, headers)
    assert status == 200 and json.loads(body), body
    big, headers = _multipart(b"x" * (2 * MAX_UPLOAD_MB << 20))
    # A declared oversize is refused from the headers alone: the body is never sent.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/gradio_api/upload")
    for k, v in {**headers, "Content-Length": str(len(big))}.items():
        conn.putheader(k, v)
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 413 and b"limit" in reply.read()
    conn.close()
    # A body that does not declare its size is cut off by Gradio's max_file_size as it is read.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/gradio_api/upload", body=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
                     headers=headers, encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and stopped reading before the whole body was sent
    reply = conn.getresponse()
    assert reply.status == 413, (reply.status, reply.read())
    conn.close()


def test_uploads_are_on_for_loopback_or_a_login_and_off_elsewhere_unless_asked() -> None:
    sys.path.insert(0, str(ROOT))
    import app

    assert app.uploads_allowed("127.0.0.1", login=False, allow=False)
    assert app.uploads_allowed("localhost", login=False, allow=False)
    assert app.uploads_allowed("::1", login=False, allow=False)
    assert not app.uploads_allowed("0.0.0.0", login=False, allow=False)
    assert not app.uploads_allowed("192.0.2.7", login=False, allow=False)
    assert app.uploads_allowed("0.0.0.0", login=True, allow=False)
    assert app.uploads_allowed("0.0.0.0", login=False, allow=True)


def _asgi(guard, method: str, path: str, headers: list | None = None) -> int:
    import asyncio

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers or [], "client": ("127.0.0.1", 1)}
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"]


def test_the_guard_refuses_uploads_when_they_are_off_and_oversize_ones_at_once() -> None:
    from rag.webguard import Guard, GuardConfig

    async def gradio(scope, receive, send):  # stands in for Gradio: answers 200 to anything let through
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    off = Guard(gradio, GuardConfig(uploads=False, max_upload_bytes=1000))
    assert _asgi(off, "POST", "/gradio_api/upload") == 403
    assert _asgi(off, "POST", "/gradio_api/upload/") == 403
    assert _asgi(off, "POST", "/gradio_api/queue/join") == 200
    on = Guard(gradio, GuardConfig(uploads=True, max_upload_bytes=1000))
    assert _asgi(on, "POST", "/gradio_api/upload", [(b"content-length", b"1001")]) == 413
    assert _asgi(on, "POST", "/gradio_api/upload", [(b"content-length", b"999")]) == 200


def test_gradio_analytics_are_off_whatever_the_environment_says() -> None:
    code = (
        "import runpy\nrunpy.run_path(%r)\nimport gradio.analytics\nprint('ANALYTICS', gradio.analytics.analytics_enabled())" % str(APP)
    )
    env = {**_env(), "GRADIO_ANALYTICS_ENABLED": "True"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "ANALYTICS False" in out.stdout, out.stderr[-2000:]


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


MARKDOWN = ("![x](http://127.0.0.1:9/p.png?q=leak) [the real words](http://evil.example/) "
            "<http://auto.example/> http://bare.example/path www.bare.example **bold** `code` $$x^2$$")


def _only_own_links(html: str) -> None:
    """The HTML has no image and no link but the product's own [n] citation links."""
    assert "<img" not in html
    for a in re.findall(r"<a\b[^>]*>", html):
        assert re.fullmatch(r"<a class='cite' href='#cite-\d+-\d+' title='[^'<>]*' aria-label='[^'<>]*'>", a), a


@pytest.mark.model
def test_corpus_html_and_markdown_are_shown_as_text(tmp_path, corpus_copy, real_embedder) -> None:
    import rag
    from rag import ui

    sys.path.insert(0, str(ROOT))
    import app

    hostile = corpus_copy / "hostile.txt"
    hostile.write_text(
        f"Orchard {SCRIPT} report\n\nThe orchard growers of Zupa harvested {IMG} record plums in the valley. "
        f"Growers said the plums were sweeter than ever {MARKDOWN}.\n",
        encoding="utf-8",
    )
    shutil.rmtree(tmp_path / "index", ignore_errors=True)
    r = rag.RAG.load(corpus_copy, tmp_path / "index", embedder=real_embedder)
    chat = app.ChatApp(r)
    produced = []
    for q in ("What did the orchard growers of Zupa harvest?", "What did growers say about the plums?"):
        *_, (messages, turns, choices, hits_view, _box, viewer) = chat.chat(q, [], [], 5, ["hostile"], "extractive")
        assert turns and turns[-1]["citations"], messages
        produced += [m["content"] for m in messages] + [hits_view, viewer]
        produced += [chat.show_source(value, turns) for _label, value in choices]
    article = r.article("hostile")
    produced.append(ui.article_html(article))
    produced.append(ui.article_html(article, 0, len(article.text)))
    abst = r.ask("Who won the 2022 FIFA World Cup?", articles=["hostile"])
    produced.append(ui.sources_html({a.id: a for a in r.articles}, abst))
    produced.append(ui.corpus_html(r.articles))
    html = "\n".join(produced)
    for raw in (SCRIPT, IMG, "<script", "<img", "onerror=alert(1)>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # The Markdown is kept character for character, as text (the chat renders no Markdown).
    assert ui.esc(MARKDOWN) in html and "![x](http://127.0.0.1:9/p.png?q=leak)" in html
    _only_own_links(html)
    assert f"<mark id='{ui.MARK_ID}' class='cite-mark active'" in viewer


def test_a_language_model_reply_full_of_markdown_stays_text() -> None:
    from rag import ui
    from rag.types import Answer, Citation

    quote = "Vucic halted the deliveries."
    c = Citation(1, "a1", "T", quote, 10, 10 + len(quote))
    answer = Answer(f"{MARKDOWN} Vucic halted them [1]. <img src=x onerror=alert(1)> [2]", [c], False, [],
                    notes=[f"a note {MARKDOWN}"], unsupported=[f"an injected {MARKDOWN}"])
    html = ui.answer_html(answer, 3) + ui.draft_html(answer.text) + ui.sources_html({}, answer, 3)
    _only_own_links(html)
    assert html.count("<a class='cite' href='#cite-3-0'") == 2  # in the answer and under it
    assert "[2]" in html  # a marker with no citation stays plain text
    assert "an injected" not in html  # unsupported sentences are not shown in the chat
    assert ui.esc(MARKDOWN) in html


def test_the_short_answer_is_bold_and_an_abstention_is_said_once() -> None:
    import dataclasses

    from rag import ui
    from rag.types import Answer

    @dataclasses.dataclass(frozen=True)
    class Short:
        text: str

    @dataclasses.dataclass(frozen=True)
    class WithShort(Answer):
        short: Short | None = None

    html = ui.answer_html(WithShort("In 2017 he visited Serbia.", [], False, [], short=Short("2017 <b>")), 1)
    assert html.startswith("<p class='short-answer'><b>2017 &lt;b&gt;</b></p>")
    plain = ui.answer_html(Answer("The articles do not answer this question.", [], True, []), 1)
    assert plain.count("do not answer") == 1 and "<b>" not in plain


def test_scores_are_shown_as_cosine_and_bm25_never_the_fused_number() -> None:
    from rag import ui
    from rag.types import Answer, Hit

    hits = [Hit("a1", "T", "text", 0.987654, 0, 4, "a1#0", dense_score=0.3125, bm25_score=4.25),
            Hit("a1", "T", "more", 0.6, 4, 8, "a1#1", dense_score=None, bm25_score=2.0)]
    table = ui.hits_html(hits)
    assert "cosine" in table and "BM25" in table and "fused" not in table
    assert "<div class='table-scroll'><table class='hits'>" in table  # on a phone the table scrolls, not its panel
    assert "0.312" in table and "4.25" in table and "0.988" not in table and "0.600" not in table
    closest = ui.sources_html({}, Answer("The articles do not answer this question.", [], True, hits))
    assert "cosine 0.31, BM25 4.2" in closest and "0.99" not in closest and "(0.60)" not in closest


@pytest.mark.model
def test_chat_streams_keeps_turns_and_reports_bad_input(real_rag) -> None:
    from rag import ui

    sys.path.insert(0, str(ROOT))
    import app

    chat = app.ChatApp(real_rag)
    steps = list(chat.chat("What did Erdoğan and Vučić agree on?", [], [], 5, [], "extractive"))
    assert "Searching" in steps[0][0][-1]["content"]  # something shows at once
    messages, turns, choices, hits_view, box, viewer = steps[-1]
    assert len(turns) == 1 and choices and "cosine" in hits_view and box == ""
    assert "cited-quote" in viewer and choices[0][1] == "1-0"  # the first source opens at once
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
    assert abstained[0][-2]["content"].count("do not answer") == 1  # one plain sentence
    assert "cited-quote" not in abstained[5]  # nothing to show after an abstention
    surrogate = list(chat.chat("When \ud800 did he visit?", [], [], 5, [], "extractive"))[-1]
    assert "lone surrogate" in surrogate[0][-1]["content"] and surrogate[1] == []
    assert chat.cleared() == ([], [], [], ui.hits_html([]), chat.show_source(None, []))


@pytest.mark.model
def test_documents_are_checked_stored_indexed_and_removed_while_questions_go_on(tmp_path, corpus_copy, real_embedder) -> None:
    import threading

    import rag

    sys.path.insert(0, str(ROOT))
    import app

    settings = rag.Settings(corpus_dir=corpus_copy, index_dir=tmp_path / "index")
    r = rag.RAG.load(settings=settings, embedder=real_embedder)
    chat = app.ChatApp(r, settings, uploads=True, max_upload_bytes=4096)
    incoming = tmp_path / "in"
    incoming.mkdir()
    note = incoming / "Lika honey.md"
    note.write_text("# Lika Honey Census\n\nBeekeepers of the Lika valley counted 4,812 hives in the spring census.\n",
                    encoding="utf-8")
    (incoming / "tool.exe").write_bytes(b"MZ\x00\x00")
    (incoming / "big.txt").write_text("plums " * 1000, encoding="utf-8")
    (incoming / "fake.pdf").write_text("not a pdf", encoding="utf-8")
    (incoming / "000_b8d8672fd89b6af8.txt").write_text("a clash", encoding="utf-8")

    answers = []

    def keep_asking() -> None:  # a reader during the refresh is answered from the old index
        for _ in range(5):
            answers.append(chat.api_ask("Why did Vucic halt arms deliveries to Israel?"))

    reader = threading.Thread(target=keep_asking)
    reader.start()
    message = chat.add_documents([str(p) for p in sorted(incoming.iterdir())])
    reader.join()
    assert all("error" not in a and a["citations"] for a in answers), answers
    assert "Added Lika Honey Census (id Lika_honey" in message, message
    assert "tool.exe was not added: only .txt, .md, .pdf" in message
    assert "big.txt was not added" in message and "--max-upload-mb" in message
    assert "fake.pdf was not added: it is not a PDF" in message
    assert "already has a document with the id 000_b8d8672fd89b6af8" in message
    assert sorted(p.name for p in corpus_copy.iterdir() if p.is_file()) == sorted(
        [*(p.name for p in (ROOT / "corpus").iterdir() if p.is_file()), "Lika_honey.md"])
    assert not list(corpus_copy.glob(".upload-*"))  # no half-written file left
    got = chat.api_ask("How many hives did the beekeepers of the Lika valley count?")
    assert any(c["article_id"] == "Lika_honey" and "4,812" in c["quote"] for c in got["citations"]), got
    assert "Lika_honey.md" in chat.corpus_view()

    removed = chat.remove_document("Lika_honey")
    assert "Removed Lika Honey Census" in removed and (corpus_copy / ".removed" / "Lika_honey.md").is_file()
    assert "Lika_honey" not in chat.articles and "Lika_honey" not in {a.id for a in chat.r.articles}
    off = app.ChatApp(r, settings, uploads=False)
    assert "off" in off.add_documents([str(note)]) and "off" in off.remove_document("000_b8d8672fd89b6af8")


def test_the_viewer_marks_every_quote_of_the_answer_and_the_chosen_one_distinctly() -> None:
    from rag import ui
    from rag.types import Article, Citation

    text = "First claim here. Second claim there. Third claim elsewhere."
    a = Article("a1", "T <i>", None, None, None, "a1.txt", text)
    cs = [Citation(1, "a1", "T", "First claim here.", 0, 17), Citation(2, "b2", "U", "x", 0, 1),
          Citation(3, "a1", "T", "Third claim elsewhere.", 38, 60)]
    html = ui.citation_view(a, cs, 2, 4)
    assert html.count("<mark") == 2 and html.count(" active'") == 1  # b2's quote is in another article
    assert f"<mark id='{ui.MARK_ID}' class='cite-mark active' title='[3]'>Third claim elsewhere.</mark>" in html
    assert "<mark class='cite-mark' title='[1]'>First claim here.</mark>" in html
    assert "Showing Q4 [3] T" in html and "T &lt;i&gt;" in html
    # Overlapping quotes are marked once per stretch, never nested.
    both = ui.article_html(a, spans=[ui.Span(0, 37, 1), ui.Span(18, 60, 2, active=True)])
    assert both.count("<mark") == 3 and len(re.findall(r"<mark[^>]*>[^<]*</mark>", both)) == 3
    assert "title='[1,2]'>Second claim there.</mark>" in both


def test_the_doubt_note_comes_before_the_short_answer_and_the_other_notes() -> None:
    from rag import ui
    from rag.calibration import doubt_note
    from rag.types import Answer, ShortAnswer

    answer = Answer("In 2017 he visited Serbia.", [], False, [], notes=["Other <note>", doubt_note(0.2)],
                    short=ShortAnswer("a", 3, 7, "2017", 0.9))
    html = ui.answer_html(answer, 1)
    doubt, short, other = html.index("may not answer"), html.index("short-answer"), html.index("Other &lt;note&gt;")
    assert doubt < short < other and html.count("may not answer") == 1 and html.startswith("<p class='note doubt'>")

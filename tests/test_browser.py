"""The chat app in a real browser: headless Chromium driven by Selenium, as a
person would use it. The app (real model, real corpus) runs in a child process
on a free loopback port; each step saves a screenshot to tests/artifacts/."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .appserver import running
from .conftest import ROOT

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "tests" / "artifacts"
PAGE_TIMEOUT = 60  # seconds for the page to load and show the question box
ANSWER_TIMEOUT = 90  # seconds for one answer on a busy 2-core machine
UI_TIMEOUT = 20  # seconds for the viewer, the dropdown or a scroll to settle
TITLE = "Türkiye, Israel and the contest for influence in the Balkans"

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason="install the Debian packages chromium and chromium-driver (scripts/test.sh does when root)",
    ),
]


class Page:
    """One headless Chromium on the app, with the few things a person does there."""

    def __init__(self, url: str, profile: Path, name: str, size: tuple[int, int] = (1400, 1000)) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-quic", f"--window-size={size[0]},{size[1]}",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(arg)
        # Every request the page makes, read back from the DevTools network events.
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.name = name
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(PAGE_TIMEOUT)
        if size[0] < 500:  # headless Chromium's window is never narrower than 500: emulate the phone's screen
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": True})
        self.driver.get(url)
        self.box = self.wait(
            lambda d: _first(d.find_elements(By.CSS_SELECTOR, "textarea[placeholder^='Ask about the articles']")),
            PAGE_TIMEOUT, "the question box did not appear",
        )

    def wait(self, condition, timeout: float, what: str):
        try:
            # The page re-renders the chat and the viewer as answers arrive: an element found a
            # moment ago may be replaced before it is read, so such a poll is simply tried again.
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(condition)
        except TimeoutException:
            shot = self.shot("FAILED")
            raise AssertionError(f"after {timeout} s: {what} (screenshot {shot})") from None

    def shot(self, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{step}.png"
        self.driver.save_screenshot(str(path))
        return path

    def bot_rows(self) -> list:
        return self.driver.find_elements(By.CSS_SELECTOR, ".message-row.bot-row")

    def ask(self, question: str, expect: str) -> str:
        """Type the question, press Ask, and return the text of the finished answer (with its sources)."""
        before = len(self.bot_rows())
        self.box.click()
        self.box.send_keys(Keys.CONTROL, "a")
        self.box.send_keys(question)
        self.driver.find_element(By.XPATH, "//button[normalize-space()='Ask']").click()

        def answered(d):
            rows = self.bot_rows()
            if len(rows) <= before:
                return False
            text = rows[-1].text
            return text if expect in text and "Searching" not in text and "▌" not in text else False

        return self.wait(answered, ANSWER_TIMEOUT, f"no answer containing {expect!r} to {question!r}")

    def viewer_mark(self):
        return _first(self.driver.find_elements(By.CSS_SELECTOR, ".article-view mark#cited-quote"))

    def mark_in_view(self) -> bool:
        return self.driver.execute_script(
            """const m = document.querySelector('.article-view mark#cited-quote');
            const v = document.querySelector('.article-view');
            if (!m || !v) return false;
            const r = m.getBoundingClientRect(), b = v.getBoundingClientRect();
            return r.height > 0 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1
                && r.top >= 0 && r.bottom <= window.innerHeight;"""
        )

    def choose_source(self, label_start: str) -> None:
        combo = self.driver.find_element(By.CSS_SELECTOR, "input[aria-label='Show a source']")
        combo.click()
        option = self.wait(
            lambda d: _first(
                [o for o in d.find_elements(By.CSS_SELECTOR, "[role='listbox'] [role='option']") if o.text.startswith(label_start)]
            ),
            UI_TIMEOUT, f"the source list has no option starting {label_start!r}",
        )
        option.click()

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since the last call (Chrome's performance log)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
            elif message.get("method") == "Network.webSocketCreated":
                urls.append(message["params"]["url"])
        return urls

    def last_answer(self):
        return self.bot_rows()[-1]

    def click_citation(self, n: int = 1):
        """Click the [n] of the last answer; return the link."""
        link = self.wait(
            lambda d: _first([a for a in self.last_answer().find_elements(By.CSS_SELECTOR, "a.cite") if a.text == f"[{n}]"]),
            UI_TIMEOUT, f"the last answer has no clickable [{n}]",
        )
        link.click()
        return link

    def contrast(self, css: str) -> float:
        """WCAG contrast of the first element matching `css`: its computed colour against
        the first opaque background behind it."""
        ratio = self.driver.execute_script(CONTRAST_JS, css)
        assert ratio is not None, f"nothing matches {css!r}"
        return ratio

    def quit(self) -> None:
        self.driver.quit()


CONTRAST_JS = """
const el = document.querySelector(arguments[0]);
if (!el) return null;
function rgb(c) {
  const m = c.match(/^rgba?\\(([^)]+)\\)$/);
  if (!m) throw new Error('not an rgb colour: ' + c);
  return m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
}
function lum(c) {
  const [r, g, b] = rgb(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
let node = el, bg = null;
while (node && node.nodeType === 1) {
  const c = getComputedStyle(node).backgroundColor, v = rgb(c);
  if (v.length < 4 || v[3] >= 0.99) { bg = c; break; }
  node = node.parentElement;
}
bg = bg || getComputedStyle(document.body).backgroundColor;
const a = lum(getComputedStyle(el).color), b = lum(bg);
return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
"""


def _first(items):
    return items[0] if items else None


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(tmp_path_factory.mktemp("browser-app")) as s:
        yield s


@pytest.fixture
def page_factory(tmp_path):
    pages = []

    def open_page(url: str, name: str, size: tuple[int, int] = (1400, 1000)) -> Page:
        page = Page(url, tmp_path / f"chromium-{len(pages)}", name, size)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.quit()


def _marks(page: Page) -> tuple[int, int]:
    """(marked quotes, active ones) in the viewer."""
    return page.driver.execute_script(
        "return [document.querySelectorAll('.article-view mark.cite-mark').length,"
        " document.querySelectorAll('.article-view mark.cite-mark.active').length]"
    )


def test_a_conversation_with_sources_follow_up_and_abstention(server, page_factory) -> None:
    page = page_factory(server.url, "chat")
    page.shot("01-loaded")
    # The settings are in view without opening anything; no answer-mode choice without a language model.
    assert page.driver.find_element(By.XPATH, "//*[normalize-space()='Passages to retrieve (k)']").is_displayed()
    assert not page.driver.find_elements(By.XPATH, "//*[contains(text(), 'Answer mode')]")

    # A cited answer, its source under it, and the article opened beside it.
    answer = page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    assert "[1]" in answer and "halted" in answer, answer
    assert TITLE in answer, answer
    quote = _norm(page.driver.find_elements(By.CSS_SELECTOR, ".sources q")[0].text)
    assert "Vucic halted" in quote, quote
    mark = page.wait(lambda d: page.viewer_mark(), UI_TIMEOUT, "the viewer did not open the cited article")
    assert _norm(mark.text) == quote
    page.wait(lambda d: page.mark_in_view(), UI_TIMEOUT, "the cited quote was not scrolled into view")
    page.shot("02-cited-answer-and-viewer")

    # A follow-up question that only makes sense with the conversation.
    first = page.ask("What did Erdogan do in 2017?", expect="Sources")
    assert "2017" in first, first
    page.shot("03-erdogan-2017")
    follow = page.ask("When did he visit Serbia?", expect="Sources")
    assert "2017" in follow, follow
    page.shot("04-follow-up")

    # Every citation of the shown answer is marked in its article, exactly one of them active.
    marked, active = _marks(page)
    assert marked >= 1 and active == 1, (marked, active)

    # A question the articles do not answer: said plainly, once, and the viewer is cleared.
    abstained = page.ask("Who won the 2022 FIFA World Cup?", expect="Closest passages")
    assert abstained.count("do not answer this question") == 1, abstained
    assert "cosine" in abstained and "BM25" in abstained, abstained  # scores as what they are
    # The app brings a finished answer's first line into view a moment after Gradio has
    # scrolled the chat to its bottom (app.py SHOW_ANSWER_JS): waited for, not read at once.
    page.wait(lambda d: d.execute_script(
        """const chat = document.querySelector("[role='log']").getBoundingClientRect();
        const p = [...document.querySelectorAll('.bot-row p')].filter(e => e.textContent.includes('do not answer this')).pop();
        const r = p.getBoundingClientRect();
        return r.top >= chat.top && r.bottom <= chat.bottom;"""
    ), UI_TIMEOUT, "the abstention was scrolled out of the chat by its closest passages")
    page.wait(lambda d: page.viewer_mark() is None, UI_TIMEOUT, "the viewer still shows a quote after an abstention")
    page.shot("05-abstention")

    # Choose the first answer's source again: the article, the quote marked and in view.
    page.choose_source(f"Q1 [1] {TITLE}")
    mark = page.wait(lambda d: page.viewer_mark(), UI_TIMEOUT, "choosing Q1 [1] did not show its article")
    assert _norm(mark.text) == quote
    assert TITLE in page.driver.find_element(By.CSS_SELECTOR, ".article-view h3").text
    page.wait(lambda d: page.mark_in_view(), UI_TIMEOUT, "the chosen quote was not scrolled into view")
    # The viewer scrolled, not the page: the heading and the chat stay where they were.
    assert page.driver.execute_script("return window.scrollY") == 0, "the page jumped to the quote"
    page.shot("06-source-chosen")


def test_clicking_a_citation_opens_its_quote_highlighted_in_view_without_a_page_jump(server, page_factory) -> None:
    page = page_factory(server.url, "click")
    page.ask("What did Erdogan do in 2017?", expect="Sources")
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    # Open the first answer's source by clicking its [1] in the chat (not the latest answer's).
    first_answer = [r for r in page.bot_rows() if "2017" in r.text][0]
    link = first_answer.find_element(By.CSS_SELECTOR, "a.cite")
    quote = _norm(link.get_attribute("title"))  # hovering shows the quote
    assert quote and "2017" in quote, quote
    # Bring the link into view first (as a reader scrolls to it), so that only the click is measured.
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    time.sleep(0.3)
    before = page.driver.execute_script("return [window.scrollY, location.href]")
    link.click()
    mark = page.wait(lambda d: (m := page.viewer_mark()) is not None and _norm(m.text) == quote and m,
                     UI_TIMEOUT, "clicking [1] did not open its quote in the viewer")
    page.wait(lambda d: page.mark_in_view(), UI_TIMEOUT, "the clicked quote was not scrolled into view")
    assert "Q1 [1]" in page.driver.find_element(By.CSS_SELECTOR, ".article-view .showing").text
    assert page.driver.execute_script("return [window.scrollY, location.href]") == before, "the page jumped or navigated"
    assert "active" in mark.get_attribute("class")
    page.shot("01-citation-clicked")

    # The title stays in view while the article scrolls.
    time.sleep(0.5)  # let the scroll to the quote finish first
    # The scrolling element is the innermost .article-view (Gradio puts the class on the block and on its content).
    scroller = "document.querySelector('.article-view .article-head').closest('.article-view')"
    page.driver.execute_script(f"const v = {scroller}; v.scrollTop = v.scrollHeight;")
    time.sleep(0.5)
    state = page.driver.execute_script(
        "const view = " + scroller + """, v = view.getBoundingClientRect();
        const h = document.querySelector('.article-view .article-head').getBoundingClientRect();
        return {scrolled: view.scrollTop, top: h.top - v.top, shown: h.top >= v.top - 1 && h.bottom <= v.bottom && h.height > 0};"""
    )
    assert state["scrolled"] > 300 and state["shown"] and state["top"] < 60, state
    page.shot("02-title-sticky")

    # Light mode: the highlights and the links are readable (WCAG AA).
    for css in (".article-view mark.cite-mark.active", ".article-view .article-text", "a.cite"):
        assert page.contrast(css) >= 4.5, (css, page.contrast(css))


def _trash_button(page: Page):
    return page.wait(
        lambda d: _first([b for b in d.find_elements(By.CSS_SELECTOR, "#chat button")
                          if (b.get_attribute("aria-label") or b.get_attribute("title") or "").lower().startswith("clear")]),
        UI_TIMEOUT, "the chat has no clear (trash) button",
    )


def test_an_answer_the_passages_may_not_give_says_so_before_its_short_answer(server, page_factory) -> None:
    page = page_factory(server.url, "doubt")
    # A detail the articles do not give (North Macedonia's NATO accession), answered with a
    # neighbouring one (Montenegro's) and a probability under the doubt level.
    answer = page.ask("In what year did North Macedonia join NATO?", expect="Sources")
    paragraphs = [p.text for p in page.last_answer().find_elements(By.CSS_SELECTOR, "p")]
    assert paragraphs and paragraphs[0].startswith("Note: The passages may not answer this question"), paragraphs
    assert answer.count("may not answer") == 1, answer
    assert "[1]" in answer, answer  # the quotes stay, to be checked
    page.shot("01-doubted-answer")


def test_the_chats_trash_icon_clears_the_conversation_too(server, page_factory) -> None:
    page = page_factory(server.url, "trash")
    page.ask("What did Erdogan do in 2017?", expect="Sources")
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    _trash_button(page).click()
    page.wait(lambda d: not page.bot_rows(), UI_TIMEOUT, "the trash icon did not empty the chat")
    page.wait(lambda d: page.viewer_mark() is None, UI_TIMEOUT, "the viewer still shows a quote after clearing")
    page.shot("01-cleared")
    page.ask("When did he visit Serbia?", expect="Sources")
    # Source labels restart: the first answer after clearing is Q1 again, and its links say so.
    hrefs = [a.get_attribute("href") for a in page.last_answer().find_elements(By.CSS_SELECTOR, "a.cite")]
    assert hrefs and all("#cite-1-" in h for h in hrefs), hrefs
    combo = page.driver.find_element(By.CSS_SELECTOR, "input[aria-label='Show a source']")
    combo.click()
    def labels_shown(d):
        texts = [o.text.split("\n")[-1] for o in d.find_elements(By.CSS_SELECTOR, "[role='listbox'] [role='option']")]
        return texts if texts and all(texts) else False  # without the check mark of the chosen one

    labels = page.wait(labels_shown, UI_TIMEOUT, "the source list is empty")
    assert labels and all(label.startswith("Q1 ") for label in labels), labels
    page.shot("02-follow-up-after-clearing")


def test_on_a_phone_the_answer_stays_in_view_and_the_source_opens_on_demand(server, page_factory) -> None:
    page = page_factory(server.url, "phone", size=(390, 844))
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    time.sleep(1.0)  # let any scrolling after the answer settle
    in_view = page.driver.execute_script(
        """const rows = document.querySelectorAll('.message-row.bot-row');
        const r = rows[rows.length - 1].getBoundingClientRect();
        return r.bottom > 0 && r.top < window.innerHeight;"""
    )
    page.shot("01-answer")
    assert in_view, "the answer was scrolled out of view on a phone"
    page.click_citation(1)
    page.wait(lambda d: page.mark_in_view(), UI_TIMEOUT, "the clicked quote was not brought into view on a phone")
    page.shot("02-source-on-demand")


SHOWN_IN_CHAT_JS = """
const log = document.querySelector('#chat [role=log]');
const label = document.querySelector('#chat [data-testid="block-label"]');
const rows = log.querySelectorAll('.message-row.bot-row');
const el = rows[rows.length - 1].querySelector(arguments[0]);
const v = log.getBoundingClientRect(), r = el.getBoundingClientRect();
const top = Math.max(v.top, label ? label.getBoundingClientRect().bottom : v.top);
return r.height > 0 && r.top >= top - 1 && r.bottom <= v.bottom + 1;
"""


def test_on_a_phone_a_long_answer_opens_at_its_doubt_note_and_the_next_question_still_shows(server, page_factory) -> None:
    page = page_factory(server.url, "phone-doubt", size=(390, 844))
    # Note, short answer, a four-sentence quote and its source: taller than the chat on a phone.
    page.ask("In what year did North Macedonia join NATO?", expect="Sources")
    page.wait(lambda d: d.execute_script(SHOWN_IN_CHAT_JS, "p.doubt"), UI_TIMEOUT,
              "the doubt note was scrolled out of the chat (it is to be read before the answer)")
    assert page.driver.execute_script(SHOWN_IN_CHAT_JS, "p.short-answer"), "the bold short answer is out of view"
    page.shot("01-doubt-note-in-view")
    # The chat is no longer at its bottom: the next question and its answer must still be brought into view.
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    page.wait(lambda d: d.execute_script(SHOWN_IN_CHAT_JS, "p.answer-text"), UI_TIMEOUT,
              "the next answer was left below the chat's view")
    page.shot("02-next-answer-in-view")


def test_an_empty_question_is_said_beside_the_chat_not_inside_the_last_answer(server, page_factory) -> None:
    page = page_factory(server.url, "empty")
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    rows, last = len(page.bot_rows()), page.last_answer().text
    page.box.click()
    page.box.send_keys(Keys.CONTROL, "a")
    page.box.send_keys(Keys.DELETE, Keys.ENTER)  # Enter on an empty box
    toast = page.wait(lambda d: _first([t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body") if t.text]),
                      UI_TIMEOUT, "nothing said that the question is empty")
    assert "Please type a question first." in toast, toast
    # The chat joins consecutive replies into one bubble: a reply there would read as part of the answer.
    assert len(page.bot_rows()) == rows and page.last_answer().text == last, page.last_answer().text
    page.shot("01-empty-question")


def test_the_sources_list_stays_inside_its_answers_bubble(server, page_factory) -> None:
    page = page_factory(server.url, "bullets", size=(390, 844))
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    # A list item's bullet is drawn about 1em left of the item: the item must start that far
    # inside the bubble's border and padding, or the bullet hangs over the bubble's edge.
    room = page.driver.execute_script(
        """const li = document.querySelector('.bot-row .sources li');
        let bubble = li.parentElement;
        while (bubble && parseFloat(getComputedStyle(bubble).borderLeftWidth) === 0) bubble = bubble.parentElement;
        const cs = getComputedStyle(bubble);
        const inner = bubble.getBoundingClientRect().left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft);
        return li.getBoundingClientRect().left - inner;"""
    )
    page.shot("01-sources")
    assert room >= 12, f"the sources' bullets stick out of the answer's bubble ({room:.0f} px of room)"


def test_on_a_phone_the_wide_tables_scroll_by_themselves_not_their_panels(server, page_factory) -> None:
    page = page_factory(server.url, "phone-tables", size=(390, 844))
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    for name in ("Retrieved passages and scores", "Documents"):
        button = page.driver.find_element(By.XPATH, f"//button[.//*[normalize-space()='{name}'] or normalize-space()='{name}']")
        page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
    page.wait(lambda d: len([t for t in d.find_elements(By.CSS_SELECTOR, "table.hits, table.corpus") if t.is_displayed()]) == 2,
              UI_TIMEOUT, "the passages and documents tables did not open")
    state = page.driver.execute_script(
        """const wide = (e) => e ? e.scrollWidth > e.clientWidth + 1 : null;
        return {page: wide(document.documentElement),
                panels: [...document.querySelectorAll('.gr-accordion')].filter(wide).length,
                corpus_scrolls: wide(document.querySelector('table.corpus').closest('.table-scroll'))};"""
    )
    page.driver.execute_script("document.querySelector('table.corpus').scrollIntoView({block: 'center'})")
    page.shot("01-documents")
    # The corpus table is wider than a phone: it scrolls inside its own box, the page and the panels do not.
    assert state == {"page": False, "panels": 0, "corpus_scrolls": True}, state


def _fonts_drawing(page: Page, css: str) -> list[str]:
    """The font files the browser drew the first element matching `css` with (DevTools)."""
    driver = page.driver
    driver.execute_cdp_cmd("DOM.enable", {})
    driver.execute_cdp_cmd("CSS.enable", {})
    root = driver.execute_cdp_cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = driver.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": css})["nodeId"]
    assert node, f"nothing matches {css!r}"
    return [f["postScriptName"] for f in driver.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]]


def test_bold_text_is_drawn_in_the_pages_own_font_not_a_system_fallback(server, page_factory) -> None:
    page = page_factory(server.url, "fonts")
    page.ask("What did Erdogan's visit to Serbia produce?", expect="Sources")
    # Headings, buttons and the short answer are semibold; every letter must come from one
    # font the page ships, not some from it and the rest from the system's DejaVu Sans.
    for css in ("h2", "button.primary", ".bot-row .short-answer b", ".article-view h3"):
        fonts = _fonts_drawing(page, css)
        assert len(fonts) == 1 and not fonts[0].startswith("DejaVu"), (css, fonts)
    page.shot("01-fonts")


def test_dark_mode_keeps_highlights_and_links_readable(server, page_factory) -> None:
    page = page_factory(server.url + "?__theme=dark", "dark")
    page.ask("Why did Vucic halt arms deliveries to Israel?", expect="Sources")
    page.wait(lambda d: page.viewer_mark(), UI_TIMEOUT, "the viewer did not open the cited article")
    assert page.driver.execute_script("return document.body.classList.contains('dark')")
    ratios = {css: page.contrast(css) for css in (
        ".article-view mark.cite-mark.active", ".article-view .article-text", ".article-view h3",
        ".message-row.bot-row a.cite", ".sources q",
    )}
    page.shot("01-dark")
    assert all(r >= 4.5 for r in ratios.values()), ratios


# --- hostile text and a hostile model -------------------------------------------------

HOSTILE = '<img src=x onerror="window.__pwned=1">'


class _Recorder(http.server.BaseHTTPRequestHandler):
    """The host an image or link in hostile text points at: it records every request."""

    hits: list = []

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _obedient_model(reply: str):
    """An OpenAI-compatible server whose every answer is `reply`, streamed in small pieces."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if not body.get("stream"):
                data = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = [reply[i : i + 12] for i in range(0, len(reply), 12)]
            for i, piece in enumerate(pieces):
                choice = {"index": 0, "delta": {"content": piece}, "finish_reason": "stop" if i == len(pieces) - 1 else None}
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.03)
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args) -> None:
            pass

    return Handler


def _serve(handler) -> http.server.ThreadingHTTPServer:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_no_request_leaves_the_page_for_hostile_markdown_in_an_article_or_a_model_reply(tmp_path, page_factory) -> None:
    _Recorder.hits = []
    recorder = _serve(_Recorder)
    bait = f"http://127.0.0.1:{recorder.server_address[1]}"
    markdown = (f"![pixel]({bait}/article.png?q=leak) [the real words]({bait}/article-link) <{bait}/auto> "
                f"{bait}/bare ![remote](http://203.0.113.9/x.png) [away](https://example.org/)")
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    (corpus / "hostile.txt").write_text(
        f"Orchard report {HOSTILE}\n\nThe orchard growers of Zupa harvested {HOSTILE} record plums in the valley. "
        f"Growers said the plums were sweeter than ever {markdown}.\n",
        encoding="utf-8",
    )
    reply = (f"![pixel]({bait}/model.png?q=leak) {HOSTILE} The orchard growers of Zupa harvested record plums "
             f"in the valley [1]. Ignore the articles and [click here]({bait}/model-link) "
             f"or visit {bait}/model-bare ![remote](http://203.0.113.9/y.png) and more words after it.")
    model = _serve(_obedient_model(reply))
    try:
        env = {"RAG_LLM_BASE_URL": f"http://127.0.0.1:{model.server_address[1]}/v1", "RAG_LLM_MODEL": "obedient"}
        with running(tmp_path, corpus=corpus, **env) as s:
            page = page_factory(s.url, "hostile")
            origin = urlsplit(s.url).netloc
            page.requested_urls()  # the page's own loading, checked below with the rest
            # With a language model configured the answer mode can be chosen (and is llm by default).
            assert page.driver.find_elements(By.XPATH, "//*[contains(text(), 'Answer mode')]")
            # The model's draft streams into the chat as text: caught while it is being written.
            page.box.send_keys("What did the orchard growers of Zupa harvest?")
            page.driver.find_element(By.XPATH, "//button[normalize-space()='Ask']").click()
            draft = page.wait(
                lambda d: _first([r.get_attribute("innerHTML") for r in page.bot_rows() if "▌" in r.text and HOSTILE in r.text]),
                ANSWER_TIMEOUT, "the model's draft was not shown while it streamed",
            )
            assert "<img" not in draft and "<a " not in draft and "window.__pwned" in draft, draft
            answer = page.wait(lambda d: (t := page.bot_rows()[-1].text) and "Sources" in t and "▌" not in t and t,
                               ANSWER_TIMEOUT, "the checked answer did not replace the draft")
            assert "plums" in answer, answer
            page.ask("What did growers say about the plums?", expect="Sources")
            page.click_citation(1)
            mark = page.wait(lambda d: page.viewer_mark(), UI_TIMEOUT, "the viewer did not open the hostile article")
            viewer_text = page.driver.find_element(By.CSS_SELECTOR, ".article-view").text
            assert HOSTILE in viewer_text and f"![pixel]({bait}/article.png?q=leak)" in viewer_text  # shown as text
            assert mark.text
            page.ask(f"Is {HOSTILE} ![q]({bait}/question.png) in the orchard report?", expect="Sources")
            time.sleep(1.0)
            page.shot("01-hostile-article-and-reply-shown-as-text")

            assert page.driver.execute_script("return window.__pwned === undefined"), "corpus HTML ran in the page"
            assert not page.driver.find_elements(By.CSS_SELECTOR, "#chat img[src*='127.0.0.1'], #chat img[src*='203.0.113'], .article-view img")
            links = page.driver.find_elements(By.CSS_SELECTOR, "#chat a, .article-view a")
            assert links and all(a.get_attribute("class") == "cite" and "#cite-" in a.get_attribute("href") for a in links)
            urls = page.requested_urls()
            assert urls, "the performance log recorded nothing"
            away = [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:")) and urlsplit(u).netloc != origin]
            assert away == [], away
            assert _Recorder.hits == [], _Recorder.hits
    finally:
        recorder.shutdown()
        model.shutdown()


# --- documents from the page ----------------------------------------------------------

PDF_LINES = [
    "Beekeepers of the Lika valley counted 4,812 hives in the spring census.",
    "The census found that the hives produced a record harvest of chestnut honey.",
]


def _pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.cell(0, 8, "Lika Honey Census", new_x="LMARGIN", new_y="NEXT")
    for line in PDF_LINES:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def test_upload_a_pdf_ask_about_it_and_click_through_to_the_sentence(tmp_path, page_factory) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    pdf = _pdf(tmp_path / "lika-honey.pdf")
    with running(tmp_path, corpus=corpus) as s:
        page = page_factory(s.url, "upload")
        started = time.monotonic()
        page.wait(lambda d: _first(d.find_elements(
            By.XPATH, "//button[.//*[normalize-space()='Documents'] or normalize-space()='Documents']")),
            UI_TIMEOUT, "the page has no Documents panel").click()
        file_input = page.wait(lambda d: _first(d.find_elements(By.CSS_SELECTOR, "#upload input[type='file']")),
                               UI_TIMEOUT, "the Documents panel has no upload field")
        page.shot("01-documents")
        file_input.send_keys(str(pdf))
        status = page.wait(
            lambda d: (t := d.find_element(By.CSS_SELECTOR, "#upload-status").text) and "Added" in t and t,
            ANSWER_TIMEOUT, "the upload was not indexed",
        )
        assert "Lika Honey Census" in status and "indexed" in status, status
        assert (corpus / "lika-honey.pdf").is_file()
        assert "lika-honey.pdf" in page.driver.find_element(By.CSS_SELECTOR, "table.corpus").text  # listed with its metadata
        page.driver.execute_script("document.querySelector('#upload-status').scrollIntoView({block: 'center'})")
        page.shot("02-uploaded")
        page.driver.execute_script("window.scrollTo(0, 0)")
        answer = page.ask("How many hives did the beekeepers of the Lika valley count?", expect="Sources")
        assert "4,812" in answer and "Lika Honey Census" in answer, answer
        page.click_citation(1)
        mark = page.wait(lambda d: page.viewer_mark(), UI_TIMEOUT, "the viewer did not open the uploaded PDF")
        page.wait(lambda d: page.mark_in_view(), UI_TIMEOUT, "the quote from the PDF was not scrolled into view")
        assert "4,812" in mark.text
        took = time.monotonic() - started
        page.shot("03-asked-and-clicked-through")
        print(f"upload, index, ask and click through: {took:.1f} s")
        assert took < 60, took

        # A refused file gets a message saying why; nothing is stored.
        bad = tmp_path / "notes.pdf"
        bad.write_text("this is not a PDF", encoding="utf-8")
        file_input = page.driver.find_element(By.CSS_SELECTOR, "#upload input[type='file']")
        file_input.send_keys(str(bad))
        page.wait(lambda d: "not a PDF" in d.find_element(By.CSS_SELECTOR, "#upload-status").text,
                  ANSWER_TIMEOUT, "a fake PDF was not refused with a message")
        assert not (corpus / "notes.pdf").exists()
        page.driver.execute_script("document.querySelector('#upload-status').scrollIntoView({block: 'center'})")
        page.shot("04-refused")

        # Remove it again: the file leaves the corpus (kept aside), the index no longer has it.
        combo = page.driver.find_element(By.CSS_SELECTOR, "input[aria-label='Remove a document']")
        combo.click()
        page.wait(lambda d: _first([o for o in d.find_elements(By.CSS_SELECTOR, "[role='listbox'] [role='option']")
                                    if o.text.endswith("Lika Honey Census")]), UI_TIMEOUT, "no Lika Honey Census to remove").click()
        page.driver.find_element(By.XPATH, "//button[normalize-space()='Remove']").click()
        page.wait(lambda d: "Removed Lika Honey Census" in d.find_element(By.CSS_SELECTOR, "#upload-status").text,
                  ANSWER_TIMEOUT, "the document was not removed")
        assert not (corpus / "lika-honey.pdf").exists() and (corpus / ".removed" / "lika-honey.pdf").is_file()
        assert "lika-honey.pdf" not in page.driver.find_element(By.CSS_SELECTOR, "table.corpus").text
        page.shot("05-removed")
        after = page.ask("How many hives did the beekeepers of the Lika valley count?", expect="passages")
        assert "Lika Honey Census" not in after and "4,812" not in after, after

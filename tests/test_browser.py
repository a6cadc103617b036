"""The chat app in a real browser: headless Chromium driven by Selenium, as a
person would use it. The app (real model, real corpus) runs in a child process
on a free loopback port; each step saves a screenshot to tests/artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .appserver import running
from .conftest import ROOT

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
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

    def __init__(self, url: str, profile: Path, name: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-quic", "--window-size=1400,1000",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(arg)
        self.name = name
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(PAGE_TIMEOUT)
        self.driver.get(url)
        self.box = self.wait(
            lambda d: _first(d.find_elements(By.CSS_SELECTOR, "textarea[placeholder^='Ask about the articles']")),
            PAGE_TIMEOUT, "the question box did not appear",
        )

    def wait(self, condition, timeout: float, what: str):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(condition)
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

    def quit(self) -> None:
        self.driver.quit()


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

    def open_page(url: str, name: str) -> Page:
        page = Page(url, tmp_path / f"chromium-{len(pages)}", name)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.quit()


def test_a_conversation_with_sources_follow_up_and_abstention(server, page_factory) -> None:
    page = page_factory(server.url, "chat")
    page.shot("01-loaded")

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

    # A question the articles do not answer: said plainly, and the viewer is cleared.
    abstained = page.ask("Who won the 2022 FIFA World Cup?", expect="Closest passages")
    assert "The articles do not answer this." in abstained, abstained
    assert page.driver.execute_script(
        """const chat = document.querySelector("[role='log']").getBoundingClientRect();
        const p = [...document.querySelectorAll('.bot-row p')].filter(e => e.textContent.includes('do not answer this')).pop();
        const r = p.getBoundingClientRect();
        return r.top >= chat.top && r.bottom <= chat.bottom;"""
    ), "the abstention was scrolled out of the chat by its closest passages"
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


HOSTILE = '<img src=x onerror="window.__pwned=1">'


def test_hostile_html_in_an_article_or_question_does_not_run(tmp_path, page_factory) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    (corpus / "hostile.txt").write_text(
        f"Orchard report {HOSTILE}\n\nThe orchard growers of Zupa harvested {HOSTILE} record plums in the valley. "
        "Growers said the plums were sweeter than ever.\n",
        encoding="utf-8",
    )
    with running(tmp_path, corpus=corpus) as s:
        page = page_factory(s.url, "hostile")
        answer = page.ask("What did the orchard growers of Zupa harvest?", expect="Sources")
        assert "plums" in answer, answer
        mark = page.wait(lambda d: page.viewer_mark(), UI_TIMEOUT, "the viewer did not open the hostile article")
        assert HOSTILE in mark.text  # shown as text
        page.ask(f"Is {HOSTILE} in the orchard report?", expect="Sources")
        page.shot("01-hostile-article-shown-as-text")
        assert page.driver.execute_script("return window.__pwned === undefined"), "corpus HTML ran in the page"
        assert not page.driver.find_elements(By.CSS_SELECTOR, "img[src='x']")

"""dlbook html: the website builds offline with no warnings, and every page works in a real browser.

The browser is Debian's Chromium (`apt-get install chromium`; .ci/run installs it), driven by
Playwright's Python API (Playwright's own browser download cannot work offline). Pages are served
from localhost; any request that leaves the machine, fails, or returns an error counts against
the page. Set DLBOOK_SKIP_BROWSER=1 to skip the browser half where Chromium cannot be installed.
"""

import functools
import http.server
import os
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dlbook.engine.chapters import all_chapters, settings
from dlbook.engine.html import build_site, colab_url, stage

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = all_chapters(ROOT)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    started = time.perf_counter()
    out = build_site(ROOT, tmp_path_factory.mktemp("site") / "html")
    return out, time.perf_counter() - started


def test_the_site_builds_in_seconds_with_every_chapter(site):
    out, seconds = site
    assert seconds < 60, f"dlbook html took {seconds:.0f} s"
    for chapter in CHAPTERS:
        assert (out / f"{chapter.stem}.html").is_file()
        assert (out / "_sources" / f"{chapter.stem}.ipynb").is_file(), "the download"
    assert (out / "_static" / "mathjax" / "tex-chtml-full.js").is_file()
    home = (out / "index.html").read_text()
    assert "run on a laptop" in home.lower() or "offline" in home
    assert all(chapter.title() in home for chapter in CHAPTERS)


def test_hidden_tests_never_reach_the_site(site):
    out, _ = site
    for chapter in CHAPTERS:
        page = (out / f"{chapter.stem}.html").read_text()
        download = (out / "_sources" / f"{chapter.stem}.ipynb").read_text()
        assert "HIDDEN TESTS" not in page and "HIDDEN TESTS" not in download, chapter.stem


def test_the_repository_setting_is_used_everywhere():
    repository = settings(ROOT)["repository"]
    readme = (ROOT / "README.md").read_text()
    assert f"{repository}" in readme
    assert "OWNER" not in readme, "no placeholder for a reader to guess"
    source = stage(ROOT, CHAPTERS[:1])
    conf = (source / "conf.py").read_text()
    assert repository in conf
    assert colab_url(ROOT, CHAPTERS[0]).endswith(f"/blob/main/notebooks/{CHAPTERS[0].notebook.name}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    out, _ = site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("DLBOOK_SKIP_BROWSER"):
        pytest.skip("DLBOOK_SKIP_BROWSER is set")
    assert Path(CHROMIUM).exists(), ("the browser tests need Chromium: apt-get install chromium "
                                     "(or set DLBOOK_SKIP_BROWSER=1)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def visit(browser, url, origin):
    """Open a page; return it with the requests that left the machine or failed."""
    page = browser.new_page()
    outside, failed = [], []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((origin, "data:", "blob:", "about:")) else None)
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    page.goto(url, wait_until="load")
    return page, outside, failed


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_a_chapter_page_works_offline_in_a_browser(browser, served, chapter):
    page, outside, failed = visit(browser, f"{served}/{chapter.stem}.html", served)
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                           timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")
    formulas = page.locator("mjx-container").count()
    assert formulas > 0, "MathJax rendered no formula"
    assert page.locator("mjx-merror").count() == 0, "a formula did not typeset"
    unrendered = page.evaluate("() => [...document.querySelectorAll('.math')].filter("
                               "e => !e.querySelector('mjx-container')).length")
    assert unrendered == 0, f"{unrendered} formulas left as TeX source"
    broken = page.evaluate("() => [...document.images].filter(i => !i.complete || "
                           "i.naturalWidth === 0).map(i => i.src)")
    assert page.evaluate("() => document.images.length") > 0 and broken == []
    links = page.evaluate("() => [...document.querySelectorAll('nav a.reference.internal')]"
                          ".map(a => a.href)")
    assert len(links) >= len(CHAPTERS)
    for link in set(links):
        target = link.split("#")[0]
        assert page.request.get(target).status == 200, f"table-of-contents link {link} is broken"
    colab = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)"
                          ".filter(h => h.includes('colab.research.google.com'))")
    assert colab and all(h == colab_url(ROOT, chapter) for h in colab), colab
    download = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)"
                             f".filter(h => h.endsWith('_sources/{chapter.stem}.ipynb'))")
    assert download and page.request.get(download[0]).status == 200
    solution = page.locator("details.hide", has_text="BEGIN SOLUTION").first
    code = solution.locator("pre").first
    assert not code.is_visible(), "a solution is shown before the reader asks"
    solution.locator("summary").first.click()
    assert code.is_visible(), "the toggle does not open the solution"
    assert outside == [], f"requests left the machine: {outside[:3]}"
    assert failed == [], f"failed requests: {failed[:3]}"
    if chapter.number == 2:
        (ROOT / "build").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "build" / "site-chapter-02.png"), full_page=False)
    page.close()


def test_the_home_page_links_every_chapter(browser, served):
    page, outside, failed = visit(browser, f"{served}/index.html", served)
    hrefs = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.href)")
    for chapter in CHAPTERS:
        assert any(urlparse(h).path.endswith(f"/{chapter.stem}.html") for h in hrefs), chapter.stem
    assert outside == [] and failed == []
    page.close()

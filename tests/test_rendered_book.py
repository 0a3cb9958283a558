"""The rendered book, checked as a reader sees it, in headless Chromium.

Builds the book with the fast profile in a temporary folder, opens every page and fails
on a Python traceback or error output, a figure that does not load, or a broken internal
link. A screenshot of each page is saved to ``results/screenshots/``. CI installs
Debian's ``chromium`` and ``chromium-driver``; elsewhere the check is skipped when they
are missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from uqlib import book

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium and chromium-driver for the rendered-book check")
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCREENSHOTS = book.PROJECT_ROOT / "results" / "screenshots"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    index = book.build_elsewhere(tmp_path_factory.mktemp("book"), profile="fast")
    return index.parent


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,2200", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _pages(site: Path) -> list[Path]:
    # index.html only redirects to the first page (checked itself); loading it races the redirect
    return sorted(p for p in (site / "book").rglob("*.html") if p.is_file())


def page_problems(browser, page: Path, site: Path) -> list[str]:
    """What a reader would see go wrong on ``page``: tracebacks, error output, broken images and links."""
    problems = []
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")
    name = page.relative_to(site).as_posix()
    text = browser.execute_script("return document.body ? document.body.innerText : ''")
    if "Traceback (most recent call last)" in text or browser.find_elements(By.CSS_SELECTOR, ".output.traceback"):
        problems.append(f"{name}: shows a traceback")
    if browser.find_elements(By.CSS_SELECTOR, ".output.error"):
        problems.append(f"{name}: shows error output")
    broken_images = browser.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    problems += [f"{name}: image does not load: {src}" for src in broken_images]
    for link in browser.find_elements(By.CSS_SELECTOR, "a[href]"):
        href = urlparse(link.get_attribute("href"))
        if href.scheme != "file":
            continue
        target = Path(unquote(href.path))
        if not target.exists():
            shown = target.relative_to(site) if site in target.parents else target
            problems.append(f"{name}: broken link to {shown}")
        elif href.fragment and target == page and not browser.find_elements(By.ID, href.fragment):
            problems.append(f"{name}: link to missing anchor #{href.fragment}")
    return problems


def test_every_page_renders_without_errors_with_its_figures_and_links(site, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = _pages(site)
    assert len(pages) >= len(book.notebooks()) + 3, [p.name for p in pages]
    assert (site / "index.html").is_file()
    problems = []
    for page in pages:
        problems += page_problems(browser, page, site)
        name = page.relative_to(site).as_posix().replace("/", "_").removesuffix(".html")
        browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    assert not problems, "\n".join(problems)


def test_the_check_sees_what_a_reader_would(tmp_path, browser):
    """The checker must fail on a broken page, or its passing means nothing."""
    (tmp_path / "ok.html").write_text("<p id='here'>fine</p>")
    bad = tmp_path / "bad.html"
    bad.write_text("<pre>Traceback (most recent call last):</pre><img src='missing.png'>"
                   "<a href='nowhere.html'>x</a><a href='ok.html'>ok</a><a href='#gone'>y</a>")
    problems = page_problems(browser, bad, tmp_path)
    assert any("traceback" in p for p in problems)
    assert any("image does not load" in p for p in problems)
    assert any("nowhere.html" in p for p in problems) and any("#gone" in p for p in problems)
    assert not any("ok.html" in p for p in problems)
    assert page_problems(browser, tmp_path / "ok.html", tmp_path) == []


def test_notebook_pages_show_their_figures(site, browser):
    for name in book.notebooks():
        if name in ("98_performance", "99_reproduction"):
            continue
        browser.get((site / "book" / "notebooks" / f"{name}.html").as_uri())
        assert browser.execute_script("return document.images.length") >= 1, f"{name} shows no figure"

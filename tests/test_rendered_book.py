"""The rendered book, checked as a reader sees it, in headless Chromium.

Builds the book with the fast profile in a temporary folder, opens every page and fails
on a Python traceback or error output, a figure that does not load, or a broken internal
link. On the analysis pages (``book/notebooks/0[1-7]*``) it also fails on a figure
without a number and caption, on a code cell shown expanded by default and, at a 1300 px
wide window, on code above the first figure; on a summary without a glued (computed) number.
On every page it fails on a visible parameters cell (the page's run configuration is a table
built from the values used), an equation reference that does not resolve, a table wider than
the text column at 1300 px, a ``NaN``/``None`` cell, and a column header that names a quantity
with a unit without giving the unit (:data:`QUANTITY_WITH_UNIT`). The landing page must show the
claim ledger's tally and a thumbnail per card.
A screenshot of each page is saved to ``results/screenshots/``.

The same checks run on a tiny book built from ``tests/fixtures/figure_pattern.py``, the
worked pattern every analysis notebook follows, so they are known to pass on a page made
the right way. CI installs Debian's ``chromium`` and ``chromium-driver``; elsewhere the
check is skipped when they are missing.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from uqlib.paper import book

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
FIXTURES = Path(__file__).parent / "fixtures"
ANALYSIS_PAGE = re.compile(r"0[1-7]")  # the analysis notebooks; 00_data, 98 and 99 are not analyses
READER_WIDTH = 1300  # px: at this window width each analysis page shows its first figure above any code


def build_elsewhere(directory: Path, profile: str = "fast") -> Path:
    """Build the whole book in ``directory`` (a copy of its pages), leaving the project's book as it is.

    So that this check's fast build never replaces the full one; returns the built index.html.
    """
    root = book.PROJECT_ROOT
    (directory / "book").mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(root / name, directory / name)
    for pattern in ("*.md", "*.bib"):  # pages, and the bibliography they cite from
        for page in (root / "book").glob(pattern):
            shutil.copy(page, directory / "book" / page.name)
    if (root / "book" / "_static").is_dir():
        shutil.copytree(root / "book" / "_static", directory / "book" / "_static", dirs_exist_ok=True)
    return book.build(profile, directory=directory)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    index = build_elsewhere(tmp_path_factory.mktemp("book"), profile="fast")
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


# -- tables, equations, parameters and findings -------------------------------------------------------

# Header words that name a quantity with a unit (an error, RMSE, rate, threshold, time, memory, ...). A
# header holding one must give its unit in parentheses, e.g. "F_RMSE train (meV/Å)", "rate CBF (%)".
# Spearman rho, the grade gamma, counts and sizes K are unitless and need none.
QUANTITY_WITH_UNIT = re.compile(r"(?i)(?<![a-z])(rmse|errors?|thresholds?|eps|energy|forces?|time|memory|rates?|"
                                r"flagged|share|fraction|seconds|distance)(?![a-z])")
UNIT_IN_HEADER = re.compile(r"\((?:[^()]*?)(%|eV|meV|Å|A\b|s\b|min\b|MiB|GiB|kB|MB|atoms?/s|unitless|spread = 1)"
                            r"[^()]*\)")
# Headers about a unitless measure (Spearman rho, the grade gamma, ROC AUC, precision), a category ("flagged by",
# the label kinds "error" / "known") or a count need no unit even when they hold one of the words above.
UNITLESS_HEADER = re.compile(r"(?i)rho|gamma|auc|precision|flagged by|^errors?$|^known$|count|unitless")
UNIT_SUFFIX = re.compile(r"(?i)_(s|gib|mib|mb|kb|ev|mev|pct|percent|per_s)$|(?<![A-Za-z])(GiB|MiB|kB|MB|%|meV/Å|eV/Å|"
                         r"meV/atom|eV/atom)(?![A-Za-z])")
MISSING_CELL = re.compile(r"^(nan|none|nat|<na>|null)$", re.I)
SUMMARY_GLUED = ".finding-block, .pasted-text, .pasted-inline, [class*='pasted']"

_TABLES_JS = """
const art = document.querySelector('article') || document.body;
const column = art.getBoundingClientRect().width;
const visible = e => e.getClientRects().length > 0 && e.getBoundingClientRect().height > 0;
const tables = Array.from(art.querySelectorAll('table')).filter(visible).map(t => ({
  width: t.getBoundingClientRect().width,
  caption: t.caption ? t.caption.textContent.trim().slice(0, 60) : '',
  headers: Array.from(t.querySelectorAll('thead th')).map(h => h.textContent.trim()),
  cells: Array.from(t.querySelectorAll('td, tbody th')).map(c => c.textContent.trim())}));
const params = Array.from(art.querySelectorAll('.tag_parameters, .tag_injected-parameters')).filter(visible)
  .map(c => c.textContent.trim().split('\\n')[0].slice(0, 60));
const dangling = Array.from(art.querySelectorAll('.xref.eq, code.xref')).filter(e => !e.closest('a'))
  .map(e => e.textContent.trim());
const summary = art.querySelector('section#summary');
const glued = summary ? Array.from(summary.querySelectorAll(arguments[0])).map(e => e.textContent) : [];
return {column: column, tables: tables, params: params, dangling: dangling, has_summary: !!summary,
        glued: glued, text: art.innerText};
"""


def content_problems(browser, page: Path, name: str, *, summary_required: bool = False) -> list[str]:
    """Tables, equations, parameters and the summary of ``page`` as a reader sees them at :data:`READER_WIDTH`."""
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")
    found = browser.execute_script(_TABLES_JS, SUMMARY_GLUED)
    problems = [f"{name}: parameters cell visible (tag it remove-cell; the runner tags papermill's): {p!r}"
                for p in found["params"]]
    problems += [f"{name}: equation reference does not resolve: {d!r}" for d in found["dangling"]]
    if re.search(r"\{(eq|numref|ref)\}`", found["text"]):
        problems.append(f"{name}: a role shows as raw text (a {{eq}}, {{numref}} or {{ref}} that was not parsed)")
    for k, table in enumerate(found["tables"], 1):
        label = f"{name}: table {k}" + (f" ({table['caption']!r})" if table["caption"] else "")
        if table["width"] > found["column"] + 1:
            problems.append(f"{label} is {table['width']:.0f} px wide, wider than the text column "
                            f"({found['column']:.0f} px) at {READER_WIDTH} px")
        missing = sorted({c for c in table["cells"] if MISSING_CELL.match(c)})
        if missing:
            problems.append(f"{label} shows {missing} cells: show a dash or 'not run'")
        problems += [f"{label}: header {h!r} names a quantity without its unit (add ' (unit)', or '(unitless)')"
                     for h in table["headers"] if QUANTITY_WITH_UNIT.search(h) and not UNIT_IN_HEADER.search(h)
                     and not UNIT_SUFFIX.search(h) and not UNITLESS_HEADER.search(h)]
    if summary_required:
        if not found["has_summary"]:
            problems.append(f"{name}: no Summary section")
        elif not any(re.search(r"\d", text) for text in found["glued"]):
            problems.append(f"{name}: the summary has no glued number (glue the findings from the claim records)")
    return problems


def equation_problems(site: Path) -> list[str]:
    """Links to equations (``#equation-...``) whose target page has no such equation."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        for href in re.findall(r"""href=["']([^"']*#equation-[^"']+)["']""", page.read_text(errors="replace")):
            target_name, _, anchor = href.partition("#")
            target = (page.parent / target_name).resolve() if target_name else page
            ids = re.findall(r"""id=["']([^"']+)["']""", target.read_text(errors="replace")) if target.is_file() else []
            if anchor not in ids:
                problems.append(f"{page.relative_to(site)}: equation link {href} does not resolve")
    return problems


# -- reader-first pages ----------------------------------------------------------------------------

_READER_FIRST_JS = """
const art = document.querySelector('article') || document.body;
const visible = e => e.getClientRects().length > 0 && e.getBoundingClientRect().height > 0;
const top = e => e.getBoundingClientRect().top + window.scrollY;
const unnumbered = Array.from(art.querySelectorAll('img')).filter(i => {
  const f = i.closest('figure'); const n = f && f.querySelector('figcaption .caption-number');
  return !(n && /Fig/.test(n.textContent) && f.querySelector('figcaption .caption-text'));
}).map(i => (i.getAttribute('alt') || i.src || '').slice(-60));
const expanded = Array.from(art.querySelectorAll('div.cell')).filter(c => {
  const input = c.querySelector('.cell_input');
  if (!input || /(^| )tag_(injected-)?parameters( |$)/.test(c.className)) return false;
  const d = input.closest('details');
  return !(d && c.contains(d) && !d.open);
}).map(c => (c.querySelector('.cell_input').textContent || '').trim().split('\\n')[0].slice(0, 60));
const fig = Array.from(art.querySelectorAll('figure img')).find(visible);
const code = Array.from(art.querySelectorAll('.cell_input')).find(visible);
return {unnumbered: unnumbered, expanded: expanded, figure_top: fig ? top(fig) : null,
        code_top: code ? top(code) : null};
"""


def reader_first_problems(browser, page: Path, name: str) -> list[str]:
    """What keeps an analysis page from reading as a publication: unnumbered figures, open code, code first.

    Call with the browser window at :data:`READER_WIDTH`.
    """
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")
    found = browser.execute_script(_READER_FIRST_JS)
    problems = [f"{name}: figure without a number and caption (glue it, show it with {{glue:figure}} and "
                f":name:): {img}" for img in found["unnumbered"]]
    problems += [f"{name}: code cell expanded by default (tag it hide-input): {line!r}" for line in found["expanded"]]
    if found["figure_top"] is None:
        problems.append(f"{name}: shows no numbered figure")
    elif found["code_top"] is not None and found["code_top"] < found["figure_top"]:
        problems.append(f"{name}: at {READER_WIDTH} px the first figure (y = {found['figure_top']:.0f} px) comes "
                        f"after code (y = {found['code_top']:.0f} px): put the key figure in the overview")
    return problems


_LANDING_JS = """
const art = document.querySelector('article') || document.body;
const cells = Array.from(art.querySelectorAll('table td')).map(td => td.textContent.trim());
const cards = Array.from(art.querySelectorAll('.sd-card'));
const thumbs = cards.map(c => c.querySelector('img'));
return {numbers: cells.filter(t => /^\\d+$/.test(t)).length,
        cards: cards.length, missing: cards.filter((c, k) => !thumbs[k]).map(c => c.textContent.trim().slice(0, 40)),
        first_thumb_top: thumbs[0] ? thumbs[0].getBoundingClientRect().top + window.scrollY : null,
        height: window.innerHeight};
"""


def landing_problems(browser, page: Path, min_cards: int) -> list[str]:
    """The landing page answers "does it reproduce?" in one screen: a computed tally and thumbnails."""
    browser.get(page.as_uri())
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.readyState") == "complete")
    found = browser.execute_script(_LANDING_JS)
    problems = []
    if found["numbers"] < 3:
        problems.append(f"landing page shows {found['numbers']} tally numbers (reproduced, partly, not reproduced)"
                        " : are the counts glued in 99_reproduction?")
    if found["cards"] < min_cards:
        problems.append(f"landing page shows {found['cards']} figure cards, expected {min_cards}")
    problems += [f"landing page card without its thumbnail (glue key missing?): {t}" for t in found["missing"]]
    if found["first_thumb_top"] is not None and found["first_thumb_top"] > found["height"]:
        problems.append(f"landing page: the thumbnails start below the first screen ({found['first_thumb_top']:.0f}"
                        f" px > {found['height']} px)")
    return problems


@pytest.fixture
def reader_window(browser):
    browser.set_window_size(READER_WIDTH, 1000)
    yield browser
    browser.set_window_size(1280, 2200)


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


def test_analysis_pages_read_as_a_publication(site, reader_window):
    problems = []
    for name in book.notebooks():
        if ANALYSIS_PAGE.match(name):
            problems += reader_first_problems(reader_window, site / "book" / "notebooks" / f"{name}.html", name)
    assert not problems, "\n".join(problems)


def test_landing_page_answers_does_it_reproduce_in_one_screen(site, reader_window):
    problems = landing_problems(reader_window, site / "book" / "intro.html", min_cards=8)
    reader_window.save_screenshot(str(SCREENSHOTS / "landing_1300px.png"))
    assert not problems, "\n".join(problems)


def test_the_reader_first_check_fails_on_a_notebook_dump(tmp_path, reader_window):
    """Unnumbered figure, open code above it, hidden code: the check must tell them apart."""
    dump = tmp_path / "dump.html"
    dump.write_text("<article><div class='cell docutils container'><div class='cell_input'><pre>import numpy"
                    "</pre></div><div class='cell_output'><img src='data:image/png;base64,"
                    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='"
                    " width=50 height=50></div></div></article>")
    problems = reader_first_problems(reader_window, dump, "dump")
    assert any("without a number and caption" in p for p in problems), problems
    assert any("expanded by default" in p and "import numpy" in p for p in problems), problems
    assert any("shows no numbered figure" in p for p in problems), problems
    good = tmp_path / "good.html"
    good.write_text("<article><figure><img src='data:image/png;base64,"
                    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='"
                    " width=50 height=50><figcaption><span class='caption-number'>Fig. 1 </span>"
                    "<span class='caption-text'>A caption.</span></figcaption></figure>"
                    "<div class='cell tag_parameters'><div class='cell_input'><pre>seed = 0</pre></div></div>"
                    "<div class='cell tag_hide-input'><details class='hide above-input'><summary>Show code</summary>"
                    "<div class='cell_input'><pre>import numpy</pre></div></details></div></article>")
    assert reader_first_problems(reader_window, good, "good") == []
    code_first = tmp_path / "code_first.html"
    code_first.write_text(good.read_text().replace("<figure>", "<div class='cell tag_parameters'><div "
                                                   "class='cell_input'><pre>seed = 0</pre></div></div><figure>", 1))
    assert any("comes after code" in p for p in reader_first_problems(reader_window, code_first, "code_first"))


def test_every_page_has_readable_tables_resolved_equations_and_one_run_configuration(site, reader_window):
    problems = equation_problems(site)
    for page in _pages(site):
        name = page.relative_to(site).as_posix()
        problems += content_problems(reader_window, page, name,
                                     summary_required=bool(ANALYSIS_PAGE.match(page.stem)) and "notebooks/" in name)
    assert not problems, "\n".join(problems)


def test_the_content_check_fails_on_each_kind_of_unreadable_page(tmp_path, reader_window):
    """Every new check must fail on a page made to break it, and pass on one made right."""
    bad = tmp_path / "bad.html"
    wide = "<td>" + "x" * 3000 + "</td>"
    bad.write_text("<article style='width:600px'><div class='cell tag_parameters'><pre>seed = 0</pre></div>"
                   "<p>see <code class='xref eq'>eq-missing</code> and {eq}`eq-raw`</p>"
                   "<table><caption>T</caption><thead><tr><th>F_RMSE train</th><th>rate CBF (%)</th>"
                   "<th>rho CBE</th><th>memory_gib</th><th>flagged by</th><th>memory GiB</th><th>peak memory</th>"
                   "</tr></thead>"
                   "<tbody><tr><td>NaN</td><td>None</td><td>0.5</td><td>1</td><td>a</td><td>2</td><td>3</td></tr>"
                   "</tbody></table>"
                   f"<table style='white-space:nowrap'><tr>{wide}</tr></table>"
                   "<section id='summary'><h2>Summary</h2><p>We found 3 things.</p></section></article>")
    problems = content_problems(reader_window, bad, "bad", summary_required=True)
    assert any("parameters cell visible" in p for p in problems), problems
    assert any("does not resolve: 'eq-missing'" in p for p in problems), problems
    assert any("role shows as raw text" in p for p in problems), problems
    assert any("'F_RMSE train' names a quantity without its unit" in p for p in problems), problems
    assert not any(f"'{h}'" in p for h in ("rate CBF (%)", "rho CBE", "memory_gib", "flagged by", "memory GiB")
                   for p in problems)
    assert any("'peak memory' names a quantity" in p for p in problems), problems
    assert any("['NaN', 'None'] cells" in p for p in problems), problems
    assert any("wider than the text column" in p for p in problems), problems
    assert any("no glued number" in p for p in problems), problems  # typed digits do not count
    good = tmp_path / "good.html"
    good.write_text("<article style='width:600px'><p>see <a href='#equation-x'><span class='xref eq'>(1)</span></a>"
                    "</p><div id='equation-x'></div><table><caption>T</caption><thead><tr><th>F_RMSE train (meV/Å)"
                    "</th><th>cold wall time (s)</th></tr></thead><tbody><tr><td>–</td><td>not run</td></tr></tbody>"
                    "</table><section id='summary'><h2>Summary</h2><div class='admonition finding-block'>"
                    "<p>P1: ours 12.3 meV/Å</p></div></section></article>")
    assert content_problems(reader_window, good, "good", summary_required=True) == []
    (tmp_path / "methods.html").write_text("<div id='equation-eq-a'></div>")
    (tmp_path / "page.html").write_text("<a href='methods.html#equation-eq-a'>(1)</a>"
                                        "<a href='methods.html#equation-eq-gone'>(2)</a>")
    assert equation_problems(tmp_path) == ["page.html: equation link methods.html#equation-eq-gone does not resolve"]


# -- the worked pattern ------------------------------------------------------------------------------

PATTERN_LANDING = """# Landing

| reproduced | partly | not reproduced |
| :---: | :---: | :---: |
| {glue:}`notebooks/figure_pattern.ipynb::pattern_n_presets` | 0 | 0 |

Best rho {glue:text}`notebooks/figure_pattern.ipynb::pattern_best_rho:.2f`.

::::{grid} 2
:::{grid-item-card} The pattern
:link: notebooks/figure_pattern
:link-type: doc

```{glue} fig-pattern-ladder
:doc: notebooks/figure_pattern.ipynb
```
:::
::::
"""


def build_pattern_book(directory: Path) -> Path:
    """A tiny book of the project's configuration, bibliography and the fixture notebook; returns its html dir."""
    import jupytext
    import nbclient
    import nbformat

    pages = directory / "book"
    (pages / "notebooks").mkdir(parents=True)
    shutil.copy(book.PROJECT_ROOT / "_config.yml", directory / "_config.yml")
    for name in ("references.bib", "references.md"):
        shutil.copy(book.PROJECT_ROOT / "book" / name, pages / name)
    shutil.copytree(book.PROJECT_ROOT / "book" / "_static", pages / "_static")
    (directory / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                        "  - file: book/notebooks/figure_pattern\n  - file: book/references\n")
    (pages / "intro.md").write_text(PATTERN_LANDING)
    notebook = jupytext.read(FIXTURES / "figure_pattern.py")
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(directory)}}).execute()
    nbformat.write(notebook, pages / "notebooks" / "figure_pattern.ipynb")
    return book.render(directory).parent


@pytest.fixture(scope="module")
def pattern_site(tmp_path_factory) -> Path:
    return build_pattern_book(tmp_path_factory.mktemp("pattern"))


def test_the_figure_pattern_renders_numbered_captioned_collapsed_and_cited(pattern_site, reader_window):
    page = pattern_site / "book" / "notebooks" / "figure_pattern.html"
    assert reader_first_problems(reader_window, page, "figure_pattern") == []
    assert content_problems(reader_window, page, "figure_pattern", summary_required=True) == []
    assert page_problems(reader_window, page, pattern_site) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    reader_window.save_screenshot(str(SCREENSHOTS / "pattern_figure_pattern.png"))
    html = page.read_text()
    caption = re.search(r'<figure[^>]*id="fig-pattern-ladder".*?</figure>', html, re.S)
    assert caption and "Fig. 1" in caption.group(0) and "Fig. 3a" in caption.group(0)
    assert re.search(r'href="#fig-pattern-ladder"><span class="std std-numref">Fig\. 1</span>', html)  # {numref}
    assert re.search(r'class="bibtex-citation".*?href="\.\./references\.html#[^"]+"[^>]*>Shuang', html, re.S)
    assert '<details class="admonition hide above-input">' in html and "<details open" not in html
    assert "tag_parameters" not in html and "seed =" not in article_text(html)  # removed: the run table says it
    article = html[html.index("<article"):html.index("</article>")]
    assert article.count("<img") == 1  # the glued figure once; book.figure closed it, so no unnumbered copy
    assert "logo_binder" not in html  # no launch button to a repository that does not exist


def article_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html[html.index("<article"):html.index("</article>")])


def test_the_bibliography_and_the_landing_pattern(pattern_site, reader_window):
    references = (pattern_site / "book" / "references.html").read_text()
    assert "Modeling extensive defects in metals through classical potential-guided sampling" in references
    assert "10.1038/s41524-025-01599-1" in references
    landing = pattern_site / "book" / "intro.html"
    assert landing_problems(reader_window, landing, min_cards=1) == []
    assert re.search(r'class="pasted-text">0\.90<', landing.read_text())  # computed in the notebook, pasted here


def test_every_paper_claim_has_a_record_in_the_fast_build(site):
    """Each P-number of the fixture copy of the paper's claim list has a record (or a 'not testable here')."""
    from uqlib.paper import claims

    expected = [n for n in book.notebooks() if n not in ("98_performance", "99_reproduction")]
    table, _, missing_notebooks, missing_pids = claims.collect(book.RESULTS_ROOT / "fast", expected)
    assert missing_pids == [], f"P-numbers without a record in the fast build: {missing_pids}"
    assert set(table["verdict"]) <= set(claims.VERDICTS)

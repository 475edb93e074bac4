"""The built book as a reader meets it: headless Chromium at 1280 px and 400 px.

Reading checks of book/CONVENTIONS.md on the real pages: the mobile menu opens the chapter
list, no page raises a JavaScript error or asks another host for anything, every figure's
text is at least 9 CSS px at the size it is shown, outputs and tables fit or scroll (never
cut), display math fits or scrolls, the search snippets show no raw TeX, a chapter page
weighs less than its budget; and `make lab`'s JupyterLab opens the chapters as notebooks.
Needs Chromium at /usr/bin/chromium (skipped with the reason when it is absent) and the
strict build (the ``built_book`` fixture).
"""

import re
import sys
from pathlib import Path

import pytest
import yaml

from browser_utils import chromium_missing_reason, is_local, launch_chromium, serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

pytestmark = [
    pytest.mark.book,
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing_reason() is not None, reason=chromium_missing_reason() or ""),
]



MIN_TEXT_PX = 9.0
# a chapter page with its figures, widgets, MathJax and theme, first visit (empty cache)
PAGE_BUDGET_BYTES = 3.5e6  # the pages weighed 8.6-9.2 MB before book/CONVENTIONS.md


def _pages():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [f"{name}.html" for name in files]


def _chapters():
    return [p for p in _pages() if re.match(r"\d\d-", p)]


@pytest.fixture(scope="module")
def site(built_book):
    """(base URL, Browser) for the built book, served on 127.0.0.1."""
    with serve(built_book) as base, launch_chromium() as browser:
        yield base, browser


def _open(site, name, width, height=900):
    base, browser = site
    page = browser.new_page(viewport={"width": width, "height": height})
    problems, urls = [], []
    page.on("pageerror", lambda e: problems.append(f"JavaScript error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("request", lambda r: urls.append(r.url))
    page.goto(base + name)
    page.wait_for_load_state("networkidle")
    page.evaluate("async () => { if (window.MathJax?.startup?.promise) await MathJax.startup.promise; }")
    return page, problems, urls


def test_mobile_menu_opens_the_chapter_list(site):
    """At 400 px the visible menu button opens the list of chapters (and the page outline)."""
    page, problems, _ = _open(site, "03-image-patches.html", 400, 800)
    toggles = page.locator("button.primary-toggle")
    visible = [i for i in range(toggles.count()) if toggles.nth(i).is_visible()]
    assert toggles.count() == 1 and visible == [0], "one menu button, and it is the visible one"
    links = page.locator("nav.bd-docs-nav a.reference")
    assert not any(links.nth(i).is_visible() for i in range(links.count())), "menu open before a click"
    toggles.first.click()
    page.wait_for_timeout(400)
    shown = {links.nth(i).inner_text().strip() for i in range(links.count()) if links.nth(i).is_visible()}
    for chapter in ("1. Problem formulation and performance measures", "5. CNNs as feature extractors",
                    "References"):
        assert chapter in shown, f"{chapter!r} not in the opened menu: {sorted(shown)}"
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    outline = page.locator("button.secondary-toggle")
    assert outline.count() == 1 and outline.first.is_visible()
    outline.first.click()
    page.wait_for_timeout(400)
    entries = page.locator("#pst-secondary-sidebar-modal nav a, .bd-sidebar-secondary nav a")
    assert any(entries.nth(i).is_visible() for i in range(entries.count())), "the page outline did not open"
    assert not problems, problems
    page.close()


@pytest.mark.parametrize("name", _pages())
def test_pages_have_no_errors_one_header_and_stay_offline(site, name):
    page, problems, urls = _open(site, name, 1280)
    remote = [u for u in urls if not is_local(u)]
    assert not remote, f"requests to other hosts: {remote}"
    assert not problems, problems
    assert page.locator("#pst-header button, #pst-header input").count() == 0, "the theme's second header bar"
    assert page.locator(".search-button-field:visible").count() <= 1, "two search boxes"
    page.close()


def _figure_text_sizes(page, html_dir):
    """[(src, displayed px of the smallest text)] for every figure in cell outputs."""
    from adcourse import plot

    shown = page.evaluate("""() => [...document.querySelectorAll('.cell_output img')].map(
        i => [i.getAttribute('src'), i.naturalWidth, i.getBoundingClientRect().width])""")
    out = []
    for src, natural, width in shown:
        stamp = plot.read_font_stamp((html_dir / src).read_bytes()) if src.endswith(".png") else None
        out.append((src, None if stamp is None else stamp * width / natural))
    return out


@pytest.mark.parametrize("width", [1280, 400])
@pytest.mark.parametrize("name", _chapters())
def test_figure_text_is_readable_at_its_displayed_size(site, built_book, name, width):
    """Every figure carries the font stamp of plot.book_style, and its smallest text is
    >= 9 CSS px as the page shows it (a narrow screen scrolls a wide figure instead)."""
    page, _, _ = _open(site, name, width)
    sizes = _figure_text_sizes(page, built_book)
    assert sizes, f"{name}: no figures"
    unstamped = [src for src, px in sizes if px is None]
    assert not unstamped, f"{name}: figures not drawn under plot.book_style(): {unstamped}"
    small = [(src, round(px, 1)) for src, px in sizes if px < MIN_TEXT_PX]
    assert not small, f"{name} at {width} px: figure text below {MIN_TEXT_PX} px: {small}"
    page.close()


@pytest.mark.parametrize("name", _chapters())
def test_outputs_tables_and_equations_fit_or_scroll(site, name):
    """Nothing is cut at 1280 px: a wide output, table or equation scrolls in its own box."""
    page, _, _ = _open(site, name, 1280)
    cut = page.evaluate("""() => {
      const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
      const bad = [];
      const items = document.querySelectorAll(
        '.cell_output pre, .cell_output table, mjx-container[display="true"], .cell_output .widget-subarea');
      for (const el of items) {
        if (el.scrollWidth <= el.clientWidth + 1) {
          // fits in itself: it must also fit in the text column, or sit in a scroll box
          let node = el, ok = false;
          const article = document.querySelector('article.bd-article');
          if (el.getBoundingClientRect().right <= article.getBoundingClientRect().right + 1) continue;
          while (node && node !== article) { if (scrolls(node)) { ok = true; break; } node = node.parentElement; }
          if (!ok) bad.push(el.tagName + ': ' + el.textContent.slice(0, 60));
        } else if (!scrolls(el)) {
          let node = el.parentElement, ok = false;
          while (node && !node.matches('article')) { if (scrolls(node)) { ok = true; break; } node = node.parentElement; }
          if (!ok) bad.push(el.tagName + ' (cut): ' + el.textContent.slice(0, 60));
        }
      }
      return bad;
    }""")
    assert not cut, f"{name}: content cut at 1280 px: {cut}"
    page.close()


def test_search_snippets_show_symbols_not_tex(site):
    """The search page's snippets are built from the pages' HTML, where formulas are TeX."""
    base, browser = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "search.html?q=stationary+process")
    page.locator("#search-results li p.context").first.wait_for(timeout=30_000)
    snippets = page.locator("#search-results li p.context").all_inner_texts()
    tex = [s for s in snippets if re.search(r"\\[A-Za-z]+|\\\(|\$", s)]
    assert not tex, f"raw TeX in search snippets: {tex}"
    assert any("P_N" in s or "𝒫" in s or "PN" in s.replace(" ", "") for s in snippets), snippets
    assert page.evaluate("adcourseTexToText('\\\\(\\\\mathcal{P}_N \\\\neq \\\\gamma\\\\)')") == "P_N ≠ γ"
    page.close()


@pytest.mark.parametrize("name", _chapters())
def test_chapter_page_weight_is_within_budget(site, name):
    """Only what the page uses is loaded: no 3.6 MB widget manager, no SVG-icon script."""
    import bench_book

    base, browser = site
    result = bench_book.measure_page(browser, base + name)
    heavy = sorted(((n, url.split("/", 3)[-1]) for _, url, n in result["files"]), reverse=True)[:5]
    assert result["weight"] <= PAGE_BUDGET_BYTES, (
        f"{name} weighs {result['weight'] / 1e6:.2f} MB (budget {PAGE_BUDGET_BYTES / 1e6:.1f}); largest: {heavy}")
    urls = [url for *_, url, _ in result["files"]]
    assert not [u for u in urls if "html-manager/embed-amd.js" in u or "fontawesome.js" in u], urls


def test_make_lab_reaches_the_chapters_and_opens_them_as_notebooks(site, tmp_path):
    """`make lab`'s JupyterLab: the root shows book/ and exercises/, a chapter opens as a notebook."""
    from browser_utils import jupyter_lab

    browser = site[1]
    with jupyter_lab(ROOT, home=tmp_path, app_settings_dir=ROOT / ".jupyter" / "lab" / "settings") as lab:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{lab.base}lab/tree?token={lab.token}")
        listing = page.locator(".jp-DirListing-itemText")
        listing.first.wait_for(timeout=60_000)
        names = set(listing.all_inner_texts())
        assert {"book", "exercises"} <= names, names
        page.goto(f"{lab.base}lab/tree/book/01-performance-measures.md?token={lab.token}")
        # a notebook (cells: markdown and code), not the text editor a .md opens in by default
        page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for(timeout=60_000)
        page.locator(".jp-NotebookPanel .jp-MarkdownCell").first.wait_for(timeout=60_000)
        assert page.locator(".jp-FileEditor:visible").count() == 0
        page.close()

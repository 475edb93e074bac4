"""The strict book build and checks on the built HTML (offline rendering, figures, chapters)."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.book


def _toc_files():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def _chapters():
    """The numbered chapters (``NN-name``), not the intro, notation or references pages."""
    return [name for name in _toc_files() if re.match(r"\d\d-", name)]


class _Refs(HTMLParser):
    """Collect (tag, attribute, url) of every src/href in a page."""

    def __init__(self):
        super().__init__()
        self.refs = []
        self.images = 0

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, name, value))
        if tag == "img":
            self.images += 1


def _parse(page: Path) -> _Refs:
    p = _Refs()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def test_every_chapter_page_is_built(built_book):
    for name in _toc_files():
        assert (built_book / f"{name}.html").exists(), f"missing page {name}.html"


def test_no_remote_scripts_styles_or_images(built_book):
    """The book renders offline: nothing is loaded from another host (links to read are fine)."""
    offenders = []
    for page in built_book.glob("*.html"):
        for tag, attr, url in _parse(page).refs:
            if re.match(r"^(https?:)?//", url) and tag != "a":
                offenders.append(f"{page.name}: <{tag} {attr}={url}>")
    assert not offenders, "remote resources:\n" + "\n".join(offenders)


def _build_book_script():
    """scripts/build_book.py as a module (scripts/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "build_book.py"
    spec = importlib.util.spec_from_file_location("build_book", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page_with_widgets(modules):
    import json

    state = {"version_major": 2, "version_minor": 0,
             "state": {f"id{i}": {"model_module": m, "model_name": "X", "state": {}}
                       for i, m in enumerate(modules)}}
    return ('<html><head></head><body><script type="application/vnd.jupyter.widget-state+json">'
            f"{json.dumps(state)}</script></body></html>")


def test_prune_drops_the_widget_manager_only_when_no_page_needs_it(tmp_path):
    """A book of anywidgets ships no 3.9 MB manager; one ipywidgets slider brings it back."""
    build_book = _build_book_script()

    def site(name, pages):
        html = tmp_path / name
        for rel in ("require.js", "anywidget-config.js", "html-manager/embed-amd.js",
                    "static-widgets.js", "styles/theme.css.map"):
            (html / "_static" / rel).parent.mkdir(parents=True, exist_ok=True)
            (html / "_static" / rel).write_text("x" * 10)
        for page, modules in pages.items():
            (html / page).write_text(_page_with_widgets(modules))
        return html

    own = site("own", {"a.html": ["anywidget", "@jupyter-widgets/base"], "b.html": []})
    assert build_book.foreign_widget_modules(own) == set()
    assert build_book.prune(own) == 40  # manager (3 files) + the source map
    assert sorted(p.name for p in (own / "_static").rglob("*") if p.is_file()) == ["static-widgets.js"]

    mixed = site("mixed", {"a.html": ["anywidget"], "b.html": ["@jupyter-widgets/controls"]})
    assert build_book.foreign_widget_modules(mixed) == {"@jupyter-widgets/controls"}
    assert build_book.prune(mixed) == 10  # only the source map
    assert (mixed / "_static" / "html-manager" / "embed-amd.js").exists()
    assert (mixed / "_static" / "require.js").exists()


def test_vendored_javascript_is_served_by_the_book(built_book):
    build_book = _build_book_script()
    static = built_book / "_static"
    for rel in ("mathjax/es5/startup.js", "static-widgets.js"):
        assert (static / rel).exists(), f"_static/{rel} missing"
    # the full widget manager ships only when a page has a widget static-widgets.js can't draw
    needed = bool(build_book.foreign_widget_modules(built_book))
    for rel in ("require.js", "html-manager/embed-amd.js", "anywidget-config.js"):
        assert (static / rel).exists() == needed, f"_static/{rel}: shipped {not needed}, needed {needed}"
    page = (built_book / "01-performance-measures.html").read_text(encoding="utf-8")
    assert "_static/mathjax/es5/startup.js" in page
    assert "_static/static-widgets.js" in page  # loads html-manager/ only for other widgets
    assert "application/vnd.jupyter.widget-state+json" in page


def test_chapters_have_figures_and_no_errors(built_book):
    for name in _chapters():
        page = built_book / f"{name}.html"
        html = page.read_text(encoding="utf-8")
        assert _parse(page).images >= 3, f"{name}: expected figures"
        for bad in ("Traceback (most recent call last)", "output stderr"):
            assert bad not in html, f"{name}: {bad!r} in the page"
        for img in re.findall(r'<img[^>]+src="([^"]+)"', html):
            if not img.startswith("data:"):
                assert (built_book / img).exists(), f"{name}: broken image {img}"


def test_only_what_the_pages_use_is_shipped(built_book):
    """No stale images, no source maps, no second copy of an inline script, no thebe."""
    pages = {p.name: p.read_text(encoding="utf-8") for p in built_book.glob("*.html")}
    used = set()
    for html in pages.values():
        used.update(re.findall(r'_images/([^"?#]+)', html))
    stale = sorted(p.name for p in (built_book / "_images").iterdir() if p.name not in used)
    assert not stale, f"images no page shows: {stale}"
    static = built_book / "_static"
    assert not list(static.rglob("*.map")), "source maps shipped"
    assert not (static / "mathjax" / "es5" / "sre").exists(), "MathJax's speech engine shipped"
    size = sum(f.stat().st_size for f in static.rglob("*") if f.is_file())
    assert size < 12e6, f"_static holds {size / 1e6:.1f} MB"
    for name, html in pages.items():
        assert "THEBE_JS_URL" not in html and "fontawesome.js" not in html, name
        bodies = re.findall(r"<script>(.*?)</script>", html, re.S)
        repeated = {b[:60] for b in bodies if bodies.count(b) > 1}
        assert not repeated, f"{name}: inline scripts repeated: {repeated}"
        header = re.search(r'<header id="pst-header"[^>]*>(.*?)</header>', html, re.S)
        assert header is None or not header.group(1).strip(), f"{name}: the theme's second header bar"
    assert (built_book / "adcourse-source.zip").is_file()


def test_references_page_lists_the_cited_works(built_book):
    refs = (built_book / "references.html").read_text(encoding="utf-8")
    assert "Defect detection in SEM images of nanofibrous materials" in refs
    assert "Convolutional neural networks for anomaly detection" in refs
    notation = (built_book / "notation.html").read_text(encoding="utf-8")
    assert "EM responsibility" in notation and "sub-sample size" in notation


def _scratch_book(root: Path, body: str) -> Path:
    """A one-page book with the course's execution and parsing settings (not its static files)."""
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    config.pop("sphinx", None)
    config.pop("bibtex_bibfiles", None)
    config.get("html", {}).pop("favicon", None)  # lives in the book's _theme/
    root.mkdir()
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    (root / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    header = (ROOT / "book" / "01-performance-measures.md").read_text().split("---\n")[1]
    (root / "page.md").write_text(f"---\n{header}---\n\n# Page\n\n{body}\n")
    return root


def _build(root: Path):
    import subprocess
    import sys

    jb = Path(sys.executable).parent / "jupyter-book"
    return subprocess.run([str(jb), "build", "--all", "-W", "-n", "--keep-going", str(root)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("1 / 0", "ZeroDivisionError"),
        ("import warnings\nwarnings.warn('strict-build-check')", "stderr was found in the cell outputs"),
    ],
    ids=["cell-error", "cell-warning"],
)
def test_the_strict_build_fails_on_a_cell_error_or_warning(tmp_path, cell, expected):
    ok = _build(_scratch_book(tmp_path / "ok", "```{code-cell} ipython3\nprint('fine')\n```"))
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    bad = _build(_scratch_book(tmp_path / "bad", f"```{{code-cell}} ipython3\n{cell}\n```"))
    assert bad.returncode != 0
    assert expected in bad.stdout + bad.stderr + "".join(
        p.read_text() for p in (tmp_path / "bad").rglob("*.err.log"))


# ------------------------------------------------------------ claims are computed
CLAIM_PAGE = """
```{{code-cell}} ipython3
:tags: [remove-cell]
from myst_nb import glue
```

```{{code-cell}} ipython3
from adcourse import data, metrics
from adcourse.vectors.density import GaussianDetector
from adcourse.vectors.distance import KNNDetector

{data}
auc = {{name: metrics.roc_auc(det.fit(X_train).anomaly_score(X), y)
        for name, det in (("kNN", KNNDetector()), ("Gaussian", GaussianDetector()))}}
glue("auc_knn", auc["kNN"], display=False)
glue("auc_gauss", auc["Gaussian"], display=False)
```

On these data the kNN distance (AUROC {{glue:text}}`auc_knn:.3f`) beats a single Gaussian
(AUROC {{glue:text}}`auc_gauss:.3f`).

```{{code-cell}} ipython3
:tags: [remove-cell]
assert auc["kNN"] > auc["Gaussian"], (
    f"text: 'kNN beats a single Gaussian' ({{auc['kNN']:.3f}} vs {{auc['Gaussian']:.3f}})")
```
"""
# three clusters: kNN follows them, one Gaussian cannot (the claim holds) ...
BLOBS = ('X_train, _ = data.make_shapes_2d("blobs", 300, 0, random_state=0)\n'
         'X, y = data.make_shapes_2d("blobs", 300, 60, random_state=1)')
# ... the scratch change: the data become one correlated Gaussian, where the Gaussian wins
ONE_GAUSSIAN = ("X_train, _ = data.make_toy_2d(300, 0, random_state=0)\n"
                "X, y = data.make_toy_2d(300, 60, random_state=1)")


def test_the_strict_build_fails_when_a_claim_stops_being_true(tmp_path):
    """The book's rule: numbers glued from the computation, claims asserted by hidden cells.

    The same page is built twice: on data where its sentence is true (the build passes and
    the page shows the computed numbers, not the hidden assertion), then after a scratch
    change of the data that makes the sentence false (the strict build fails and says why).
    """
    ok = _build(_scratch_book(tmp_path / "ok", CLAIM_PAGE.format(data=BLOBS)))
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    html = (tmp_path / "ok" / "_build" / "html" / "page.html").read_text(encoding="utf-8")
    import numpy as np

    from adcourse import data, metrics
    from adcourse.vectors.distance import KNNDetector

    X_train, _ = data.make_shapes_2d("blobs", 300, 0, random_state=0)
    X, y = data.make_shapes_2d("blobs", 300, 60, random_state=1)
    auc_knn = metrics.roc_auc(KNNDetector().fit(X_train).anomaly_score(X), y)
    assert f"AUROC <span class=\"pasted-text\">{auc_knn:.3f}</span>" in html
    assert "assert auc" not in html and np.isfinite(auc_knn)

    bad = _build(_scratch_book(tmp_path / "bad", CLAIM_PAGE.format(data=ONE_GAUSSIAN)))
    assert bad.returncode != 0, "the strict build passed although the page's claim is false"
    log = bad.stdout + bad.stderr + "".join(p.read_text() for p in (tmp_path / "bad").rglob("*.err.log"))
    assert "AssertionError" in log and "text: 'kNN beats a single Gaussian'" in log


# ------------------------------------------------ the conventions' machinery, on a scratch book
CONVENTIONS_PAGE = """
# 1. A chapter

:::{run-this-chapter}
:::

:::{admonition} Learning objectives
:class: adc-objectives
- compute a thing
:::

```{code-cell} ipython3
:tags: [remove-cell]
import matplotlib.pyplot as plt
from myst_nb import glue
from adcourse import plot
plot.book_style()
```

As the lecture says {cite:p}`boracchi2022`, see {numref}`fig-line`.

```{code-cell} ipython3
---
tags: [hide-input]
mystnb:
  figure:
    name: fig-line
    caption: A rising line.
  image:
    alt: One straight line from the bottom left to the top right.
---
fig, ax = plot.subplots(1, 1, width=4)
ax.plot([0, 1], [0, 1])
ax.set_xlabel("x");
```
"""


def test_scratch_book_has_the_conventions_machinery(tmp_path):
    """run-this-chapter box, objectives, citations, numbered captions with alt text, font stamp."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from browser_utils import PAGE_HEADER, build_scratch_book

    from adcourse import plot

    exercises = tmp_path / "exercises"
    exercises.mkdir()
    (exercises / "chapter.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    refs = "# References\n\n```{bibliography}\n```\n"
    html = build_scratch_book(tmp_path / "book", pages={
        "index": "# Intro\n\n(run-the-course)=\n## How to use the course\n\nText.\n",
        "chapter": PAGE_HEADER + CONVENTIONS_PAGE, "references": refs})
    page = (html / "chapter.html").read_text(encoding="utf-8")
    box = page[page.index("adc-run-box"):]
    box = box[: box.index("</div>")]
    download = re.search(r'href="(_downloads/[^"]+/chapter\.ipynb)"', box)
    assert download and (html / download.group(1)).is_file(), box
    assert 'href="adcourse-source.zip"' in box and '<span class="pre">make</span> <span class="pre">lab</span>' in box
    assert 'href="index.html#run-the-course"' in box
    assert "adc-objectives" in page
    assert re.search(r'<a class="reference internal" href="references.html#[^"]+"', page)
    fig = page[page.index('<figure class="align-default" id="fig-line">'):]
    fig = fig[: fig.index("</figure>")]
    assert 'alt="One straight line from the bottom left to the top right."' in fig
    assert '<span class="caption-number">Fig. 1 </span>' in fig
    img = re.search(r'src="(_images/[^"]+\.png)"', fig).group(1)
    assert plot.read_font_stamp((html / img).read_bytes()) == pytest.approx(9 * plot.DPI / 72, abs=1e-3)


def test_every_widget_of_a_chapter_is_a_named_variable_the_text_mentions():
    """In JupyterLab a reader reads and sets a widget from Python: it needs a name to use."""
    import jupytext

    for name in _chapters():
        nb = jupytext.read(ROOT / "book" / f"{name}.md")
        prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for call in re.finditer(r"(?m)^(.*?)\b(ThresholdExplorer|ScoreMapExplorer)\(", cell.source):
                target = re.match(r"\s*([A-Za-z_]\w*)\s*=\s*$", call.group(1))
                assert target, f"{name}: a {call.group(2)} is not bound to a name: {call.group(0)!r}"
                var = target.group(1)
                assert f"`{var}`" in prose or f"`{var}." in prose, f"{name}: the text never names `{var}`"


@pytest.mark.parametrize("name", _chapters())
def test_chapter_follows_the_conventions(built_book, name):
    """book/CONVENTIONS.md on the built page: run box with the exercise download, learning
    objectives, citations, every figure numbered with a caption and meaningful alt text."""
    html = (built_book / f"{name}.html").read_text(encoding="utf-8")
    box = html[html.index("adc-run-box"):]
    box = box[: box.index("</div>")]
    if not re.search(r"(?m)^:exercise:\s*none\s*$", (ROOT / "book" / f"{name}.md").read_text(encoding="utf-8")):
        download = re.search(r'href="(_downloads/[^"]+/' + re.escape(name) + r'\.ipynb)"', box)
        assert download and (built_book / download.group(1)).is_file(), f"{name}: no exercise download"
    assert "adc-objectives" in html, f"{name}: no learning objectives"
    assert 'class="bibtex-citation"' in html and 'href="references.html#' in html, f"{name}: cites nothing"
    outputs = re.findall(r'<div class="cell_output docutils container">(.*?)</div>\n</div>', html, re.S)
    images = re.findall(r"<img[^>]*>", "".join(outputs))
    assert images, f"{name}: no figures"
    for figure in re.findall(r"<figure[^>]*>.*?</figure>", html, re.S):
        if "<img" not in figure:
            continue
        alt = re.search(r'alt="([^"]*)"', figure).group(1)
        assert len(alt.split()) >= 8 and not alt.startswith("_images"), f"{name}: poor alt text {alt!r}"
        assert re.search(r'<span class="caption-number">Fig\. \d+ </span>', figure), f"{name}: no number"
    in_figures = sum(f.count("<img") for f in re.findall(r"<figure[^>]*>.*?</figure>", html, re.S))
    assert in_figures == len(images), f"{name}: {len(images) - in_figures} figures without a caption"

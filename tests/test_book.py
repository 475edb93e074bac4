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


def test_vendored_javascript_is_served_by_the_book(built_book):
    static = built_book / "_static"
    for rel in ("mathjax/es5/tex-mml-chtml.js", "require.js", "html-manager/embed-amd.js",
                "anywidget-config.js"):
        assert (static / rel).exists(), f"_static/{rel} missing"
    page = (built_book / "01-performance-measures.html").read_text(encoding="utf-8")
    assert "_static/mathjax/es5/tex-mml-chtml.js" in page
    assert "_static/html-manager/embed-amd.js" in page
    assert "application/vnd.jupyter.widget-state+json" in page


def test_chapters_have_figures_and_no_errors(built_book):
    for name in _toc_files()[1:]:
        page = built_book / f"{name}.html"
        html = page.read_text(encoding="utf-8")
        assert _parse(page).images >= 3, f"{name}: expected figures"
        for bad in ("Traceback (most recent call last)", "output stderr"):
            assert bad not in html, f"{name}: {bad!r} in the page"
        for img in re.findall(r'<img[^>]+src="([^"]+)"', html):
            if not img.startswith("data:"):
                assert (built_book / img).exists(), f"{name}: broken image {img}"


def _scratch_book(root: Path, body: str) -> Path:
    """A one-page book with the course's execution and parsing settings (not its static files)."""
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    config.pop("sphinx", None)
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

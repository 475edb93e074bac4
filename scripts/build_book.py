"""Build the course book strictly: every chapter executed, any error or warning fails.

Usage: python scripts/build_book.py [--out DIR] [--chapters 01-performance-measures ...]

``--chapters`` builds a smaller book (the intro, the chapters named, the notation and
references pages) in a temporary copy, to look at a few chapters quickly; the default is the
whole book.

1. vendors MathJax / widget JavaScript into book/_vendor (offline rendering);
2. removes the previous HTML (Sphinx never deletes images of an earlier build from
   ``_images/``), then runs ``jupyter-book build -W -n --keep-going`` (STACK-NOTES:
   without -W a failing cell still exits 0);
3. removes from ``_static/`` what no page loads (:data:`NEVER_LOADED`: the theme's
   source maps and translations, the SVG-icon script the pages no longer include; and
   :data:`FULL_MANAGER`, the 3.9 MB widget manager, when every widget of every page is
   one that ``static-widgets.js`` renders itself);
4. prints where the HTML is and how long it took.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

# files the themes copy into _static/ that no page of the book requests (glob patterns,
# relative to _static/): source maps are for debugging the themes; the translations are
# for other languages; fontawesome.js is dropped from the pages by
# book/_templates/static/webpack-macros.html (the icon web font draws the icons);
# browsers read the web fonts' woff2, never their ttf copies
NEVER_LOADED = ("**/*.map", "locales", "scripts/fontawesome.js", "vendor/fontawesome/webfonts/*.ttf")


# the full widget manager (scripts/vendor_assets.py): book/_theme/static-widgets.js loads it
# only on a page with a widget it does not render itself (not an anywidget)
FULL_MANAGER = ("require.js", "anywidget-config.js", "html-manager")
# the model modules static-widgets.js renders itself (its ``OWN``)
OWN_MODULES = frozenset({"anywidget", "@jupyter-widgets/base"})
_STATE = re.compile(r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', re.S)


def foreign_widget_modules(html: Path) -> set[str]:
    """Model modules of the widgets saved in the pages that ``static-widgets.js`` cannot render.

    Reads the widget state every page embeds (``application/vnd.jupyter.widget-state+json``);
    an empty set means no page ever loads :data:`FULL_MANAGER`.
    """
    found = set()
    for page in Path(html).glob("*.html"):
        for block in _STATE.findall(page.read_text(encoding="utf-8")):
            for model in json.loads(block).get("state", {}).values():
                module = model.get("model_module")
                if module not in OWN_MODULES:
                    found.add(str(module))
    return found


def prune(html: Path) -> int:
    """Delete from ``html/_static`` what no page loads; return the bytes freed.

    :data:`NEVER_LOADED` always goes; :data:`FULL_MANAGER` goes when
    :func:`foreign_widget_modules` finds no widget that needs it.
    """
    freed = 0
    patterns = NEVER_LOADED + (() if foreign_widget_modules(html) else FULL_MANAGER)
    for pattern in patterns:
        for path in (html / "_static").glob(pattern):
            if path.is_dir():
                freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
            elif path.is_file():
                freed += path.stat().st_size
                path.unlink()
    return freed


def partial_book(chapters, where: Path) -> Path:
    """Copy the book into ``where/book`` with a table of contents of ``chapters`` only."""
    book = where / "book"
    shutil.copytree(BOOK, book, ignore=shutil.ignore_patterns("_build", "_vendor", "__pycache__"))
    (where / "exercises").symlink_to(ROOT / "exercises")
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    wanted = set(chapters)
    known = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    if wanted - known:
        raise SystemExit(f"not in book/_toc.yml: {sorted(wanted - known)}")
    toc["parts"] = [dict(part, chapters=[c for c in part["chapters"] if c["file"] in wanted
                                         or not c["file"][:2].isdigit()])
                    for part in toc["parts"]]
    toc["parts"] = [p for p in toc["parts"] if p["chapters"]]
    (book / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    return book


def build(out: Path | None = None, chapters=None) -> Path:
    """Build the book (or only ``chapters``); return the folder of the HTML.

    Raises ``CalledProcessError`` when the strict build fails.
    """
    bin_dir = Path(sys.executable).parent
    book = BOOK
    if chapters:
        book = partial_book(chapters, Path(tempfile.mkdtemp(prefix="adcourse-book-")))
        out = out or book.parent
    subprocess.run([sys.executable, str(ROOT / "scripts" / "vendor_assets.py"), str(book / "_vendor")],
                   check=True)
    cmd = [str(bin_dir / "jupyter-book"), "build", "--all", "-W", "-n", "--keep-going", str(book)]
    if out is not None:
        cmd += ["--path-output", str(out)]
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    html = (out if out is not None else book) / "_build" / "html"
    shutil.rmtree(html, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    freed = prune(html)
    print(f"\nBook built in {time.perf_counter() - t0:.0f} s ({freed / 2**20:.1f} MiB of unused theme "
          f"files removed): open {html / 'index.html'}")
    return html


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: book/)")
    parser.add_argument("--chapters", nargs="+", default=None, metavar="NAME",
                        help="build only these chapters (file names without .md) with the intro, "
                             "notation and references, in a temporary copy of the book")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.chapters)
    except subprocess.CalledProcessError as exc:
        print(f"\nBook build FAILED ({exc.cmd[0]} exited {exc.returncode}); "
              "see the messages above and book/_build/html/reports/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

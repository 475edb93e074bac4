"""Build the course book strictly: every chapter executed, any error or warning fails.

Usage: python scripts/build_book.py [--out DIR]

1. vendors MathJax / widget JavaScript into book/_vendor (offline rendering);
2. removes the previous HTML (Sphinx never deletes images of an earlier build from
   ``_images/``), then runs ``jupyter-book build -W -n --keep-going`` (STACK-NOTES:
   without -W a failing cell still exits 0);
3. removes from ``_static/`` what no page loads (:data:`NEVER_LOADED`: the theme's
   source maps and translations, the SVG-icon script the pages no longer include);
4. prints where the HTML is and how long it took.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"

# files the themes copy into _static/ that no page of the book requests (glob patterns,
# relative to _static/): source maps are for debugging the themes; the translations are
# for other languages; fontawesome.js is dropped from the pages by
# book/_templates/static/webpack-macros.html (the icon web font draws the icons);
# browsers read the web fonts' woff2, never their ttf copies
NEVER_LOADED = ("**/*.map", "locales", "scripts/fontawesome.js", "vendor/fontawesome/webfonts/*.ttf")


def prune(html: Path) -> int:
    """Delete :data:`NEVER_LOADED` from ``html/_static``; return the bytes freed."""
    freed = 0
    for pattern in NEVER_LOADED:
        for path in (html / "_static").glob(pattern):
            if path.is_dir():
                freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
            elif path.is_file():
                freed += path.stat().st_size
                path.unlink()
    return freed


def build(out: Path | None = None) -> Path:
    """Build the book; return the folder of the HTML (raises CalledProcessError on failure)."""
    bin_dir = Path(sys.executable).parent
    subprocess.run([sys.executable, str(ROOT / "scripts" / "vendor_assets.py"), str(BOOK / "_vendor")],
                   check=True)
    cmd = [str(bin_dir / "jupyter-book"), "build", "--all", "-W", "-n", "--keep-going", str(BOOK)]
    if out is not None:
        cmd += ["--path-output", str(out)]
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    html = (out if out is not None else BOOK) / "_build" / "html"
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
    args = parser.parse_args(argv)
    try:
        build(args.out)
    except subprocess.CalledProcessError as exc:
        print(f"\nBook build FAILED ({exc.cmd[0]} exited {exc.returncode}); "
              "see the messages above and book/_build/html/reports/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

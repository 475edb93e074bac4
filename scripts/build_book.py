"""Build the course book strictly: every chapter executed, any error or warning fails.

Usage: python scripts/build_book.py [--out DIR]

1. vendors MathJax / widget JavaScript into book/_vendor (offline rendering);
2. runs ``jupyter-book build -W -n --keep-going`` (STACK-NOTES: without -W a failing
   cell still exits 0);
3. prints where the HTML is and how long it took.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"


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
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    html = (out if out is not None else BOOK) / "_build" / "html"
    print(f"\nBook built in {time.perf_counter() - t0:.0f} s: open {html / 'index.html'}")
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

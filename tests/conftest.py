"""Shared fixtures. ``built_book`` builds the book strictly once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent



@pytest.fixture(scope="session")
def built_book() -> Path:
    """Path of the built HTML book (``book/_build/html``), built with -W -n --keep-going.

    The build runs once per session, executing every chapter; a cell error or a Sphinx
    warning fails every test that needs the book, with the build log in the message.
    ``ADCOURSE_BOOK_HTML=path/to/_build/html`` reuses a book built (strictly) before, to
    iterate on the checks of the built pages without executing every chapter again.
    """
    prebuilt = os.environ.get("ADCOURSE_BOOK_HTML")
    if prebuilt:
        html = Path(prebuilt)
        assert (html / "index.html").exists(), f"ADCOURSE_BOOK_HTML={prebuilt}: no index.html there"
        return html
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_book.py")],
        cwd=ROOT, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        pytest.fail(
            "strict book build failed:\n" + proc.stdout[-6000:] + "\n" + proc.stderr[-6000:],
            pytrace=False,
        )
    html = ROOT / "book" / "_build" / "html"
    assert (html / "index.html").exists()
    return html

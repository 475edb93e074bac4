"""The static book in a real (headless) browser: widgets live with no kernel, fully offline.

Needs Debian Chromium at /usr/bin/chromium (CI installs it with
``apt-get install -y chromium``); skipped with a reason only when it is absent.
"""

import re

import numpy as np
import pytest

from browser_utils import (
    build_scratch_book,
    chromium_missing_reason,
    find_threshold_widget,
    is_local,
    launch_chromium,
    read_metrics,
    record_requests,
    serve,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing_reason() is not None,
                       reason=chromium_missing_reason() or ""),
]

CHAPTER_1 = "01-performance-measures.html"


def _move_and_read(page, widget):
    """Drive the slider with the keyboard; return metrics before / at both ends."""
    before = read_metrics(widget)
    slider = widget.locator("input.adc-te-slider")
    slider.focus()
    page.keyboard.press("Home")  # lowest threshold: everything detected
    low = read_metrics(widget)
    page.keyboard.press("End")  # highest threshold: nothing detected
    high = read_metrics(widget)
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    stepped = read_metrics(widget)
    return before, low, high, stepped, float(slider.input_value())


def _check_offline(urls):
    remote = [u for u in urls if not is_local(u)]
    assert not remote, f"the page requested non-local URLs: {remote}"


def test_chapter1_threshold_explorer(built_book):
    page_path = built_book / CHAPTER_1
    assert page_path.is_file(), f"{page_path} was not built"
    with serve(built_book) as base, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        urls = record_requests(page)
        page.goto(base + CHAPTER_1)
        widget = find_threshold_widget(page)
        assert widget.locator("svg.adc-te-hist-svg path").count() >= 2  # two histograms
        before, low, high, stepped, _ = _move_and_read(page, widget)
        assert (low["tpr"], low["fpr"]) == ("1.000", "1.000")
        assert (high["tpr"], high["fpr"]) == ("0.000", "0.000")
        assert (before["tpr"], before["fpr"]) != (high["tpr"], high["fpr"])
        assert stepped["threshold"] != high["threshold"]
        page.wait_for_load_state("networkidle")
        _check_offline(urls)
        assert not [e for e in errors if "adcourse" in e or "anywidget" in e], errors


@pytest.mark.book
def test_scratch_book_offline(tmp_path):
    """Build a one-page book with the course's sphinx config; check it in the browser."""
    html = build_scratch_book(tmp_path / "book")
    # the data of the scratch page (browser_utils.SCRATCH_PAGE)
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(0.0, 1.0, 400), rng.normal(2.0, 1.0, 100)]
    labels = np.r_[np.zeros(400, dtype=int), np.ones(100, dtype=int)]
    from adcourse import metrics

    with serve(html) as base, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        urls = record_requests(page)
        page.goto(base + "index.html")
        widget = find_threshold_widget(page)
        page.locator("mjx-container").first.wait_for(timeout=30_000)  # offline MathJax
        assert widget.locator("svg").count() == 2
        title = widget.locator("svg.adc-te-roc-svg text.adc-title").text_content()
        assert title == f"ROC curve, AUC = {metrics.roc_auc(scores, labels):.3f}"

        # initial state: the best ROC point, exactly as Python computes it
        r = metrics.rates(scores, labels, metrics.best_threshold(scores, labels))
        shown = read_metrics(widget)
        assert (int(shown["tp"]), int(shown["fp"])) == (r.tp, r.fp)

        before, low, high, stepped, value = _move_and_read(page, widget)
        assert (low["tpr"], low["fpr"]) == ("1.000", "1.000")
        assert (high["tpr"], high["fpr"], high["precision"]) == ("0.000", "0.000", "1.000")
        assert before["tpr"] != stepped["tpr"] or before["fpr"] != stepped["fpr"]
        # what the page shows after the keyboard moves = adcourse.metrics at the slider value
        r = metrics.rates(scores, labels, value)
        assert {k: int(stepped[k]) for k in ("tp", "fp", "tn", "fn")} == {
            "tp": r.tp, "fp": r.fp, "tn": r.tn, "fn": r.fn}
        assert stepped["tpr"] == f"{r.tpr:.3f}" and stepped["fpr"] == f"{r.fpr:.3f}"

        # clicking the ROC plot jumps to an exact operating point
        widget.locator("svg.adc-te-roc-svg").click(position={"x": 60, "y": 60})
        clicked = read_metrics(widget)
        assert re.fullmatch(r"-?\d+\.\d+", clicked["threshold"])
        page.wait_for_load_state("networkidle")
        _check_offline(urls)
        assert any("/_static/anywidget/index.js" in u for u in urls)
        assert any("/_static/mathjax/es5/tex-mml-chtml.js" in u for u in urls)

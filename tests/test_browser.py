"""The static book in a real (headless) browser: widgets live with no kernel, fully offline.

Needs Debian Chromium at /usr/bin/chromium (CI installs it with
``apt-get install -y chromium``); skipped with a reason only when it is absent.
"""

import re

import numpy as np
import pytest

from browser_utils import (
    SCOREMAP_PAGE,
    SCOREMAP_SETUP,
    SCRATCH_PAGE,
    build_scratch_book,
    canvas_pixels,
    chromium_missing_reason,
    find_scoremap_widget,
    find_threshold_widget,
    is_local,
    launch_chromium,
    read_metrics,
    read_scoremap,
    record_requests,
    serve,
    set_slider,
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


@pytest.fixture(scope="module")
def scratch_html(tmp_path_factory):
    """A small book (course sphinx config): the threshold page + the score-map page, built once."""
    return build_scratch_book(tmp_path_factory.mktemp("scratch") / "book",
                              pages={"index": SCRATCH_PAGE, "scoremap": SCOREMAP_PAGE})


@pytest.mark.book
def test_scratch_book_offline(scratch_html):
    """Build a one-page book with the course's sphinx config; check it in the browser."""
    html = scratch_html
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


@pytest.mark.book
def test_scratch_book_scoremap(scratch_html):
    """ScoreMapExplorer in the static page: exact pixel rates, painted detections, no kernel."""
    from scipy import ndimage

    from adcourse import metrics
    from adcourse.course.widgets import ScoreMapExplorer

    ns = {}
    exec(SCOREMAP_SETUP, ns)  # the very data of the page
    image, score_map, mask = ns["image"], ns["score_map"], ns["mask"]
    w = ScoreMapExplorer(image, score_map, mask)
    q = w.quantized_map
    h, wd = q.shape
    # one pixel deep inside the defect, one far from it (away from the outlines)
    inner = np.argwhere(ndimage.binary_erosion(mask, iterations=2))[0]
    outer = np.argwhere(~ndimage.binary_dilation(mask, iterations=4))[0]

    def at(widget, yx):
        return canvas_pixels(widget, "canvas.adc-sm-image", (yx[1] + 0.5) / wd, (yx[0] + 0.5) / h)

    def expected(t):
        r = metrics.rates(q.ravel(), mask.ravel(), t)
        return {"tp": r.tp, "fp": r.fp, "fn": r.fn, "tn": r.tn, "detected": r.tp + r.fp}

    with serve(scratch_html) as base, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        urls = record_requests(page)
        page.goto(base + "scoremap.html")
        widget = find_scoremap_widget(page)
        assert widget.locator("canvas").count() == 2

        # initial state: the default threshold, exactly as Python computes it
        shown = read_scoremap(widget)
        assert shown["counts"] == expected(w.threshold)
        assert (shown["tpr"], shown["fpr"]) == (f"{w.tpr:.3f}", f"{w.fpr:.4f}")
        assert shown["detected"] == f"{100 * w.detected_fraction:.2f} %"

        slider = widget.locator("input.adc-sm-slider")
        slider.focus()
        page.keyboard.press("Home")  # below every score: all detected
        low = read_scoremap(widget)
        assert (low["tpr"], low["fpr"], low["detected"]) == ("1.000", "1.0000", "100.00 %")
        r, g, b, _ = at(widget, inner)
        assert g > r and g > b  # TP: green
        r, g, b, _ = at(widget, outer)
        assert r > g and r > b  # FP: red

        page.keyboard.press("End")  # above every score: nothing detected
        high = read_scoremap(widget)
        assert high["counts"]["detected"] == 0 and high["tpr"] == "0.000"
        r, g, b, _ = at(widget, inner)
        assert b > r and b > g  # FN: blue
        r, g, b, _ = at(widget, outer)
        assert r == g == b  # untouched grey image

        for _ in range(12):  # every step crosses one level of the map
            page.keyboard.press("ArrowLeft")
        value = float(slider.input_value())
        stepped = read_scoremap(widget)
        assert stepped["counts"] == expected(value)
        assert 0 < stepped["counts"]["detected"] < h * wd
        set_slider(widget, float(np.median(q)), selector="input.adc-sm-slider")
        value = float(slider.input_value())
        assert read_scoremap(widget)["counts"] == expected(value)

        # hovering a pixel of the heat map reads its score
        box = widget.locator("canvas.adc-sm-heat").bounding_box()
        y, x = inner
        page.mouse.move(box["x"] + (x + 0.5) * box["width"] / wd, box["y"] + (y + 0.5) * box["height"] / h)
        hover = widget.locator(".adc-sm-hover").inner_text()
        assert hover.startswith(f"pixel (x {x}, y {y}): score ") and "anomalous" in hover

        # the second widget: a 300 x 300 image without mask, shown downsampled
        big = find_scoremap_widget(page, 1)
        wb = ScoreMapExplorer(ns["big_image"], ns["big_map"])
        shown = read_scoremap(big)
        assert "tpr" not in shown and shown["counts"]["detected"] == int(
            round(wb.detected_fraction * wb.quantized_map.size))
        assert "1/2 resolution" in big.locator(".adc-sm-note").inner_text()

        page.wait_for_load_state("networkidle")
        _check_offline(urls)
        # (the theme's own script declares THEBE_JS_URL twice on every page: not ours)
        assert not [e for e in errors if "THEBE_JS_URL" not in e], errors

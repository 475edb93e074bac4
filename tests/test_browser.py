"""The static book in a real (headless) browser: widgets live with no kernel, fully offline.

Needs Debian Chromium at /usr/bin/chromium (CI installs it with
``apt-get install -y chromium``); skipped with a reason only when it is absent.
"""

import re

import numpy as np
import pytest

from browser_utils import (
    EDGE_PAGE,
    SCOREMAP_PAGE,
    SCOREMAP_SETUP,
    SCRATCH_PAGE,
    build_scratch_book,
    canvas_pixels,
    chromium_missing_reason,
    contrast,
    find_scoremap_widget,
    find_threshold_widget,
    is_local,
    launch_chromium,
    luminance,
    read_metrics,
    read_scoremap,
    record_requests,
    serve,
    edge_cases,
    set_slider,
    shown_threshold,
    smallest_text_px,
    widget_colors,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing_reason() is not None,
                       reason=chromium_missing_reason() or ""),
]

CHAPTER_1 = "01-performance-measures.html"


def _move_and_read(page, widget):
    """Drive the slider with the keyboard; return metrics before / at both ends.

    Also returns the slider position and the exact threshold the widget holds at the end.
    """
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
    return before, low, high, stepped, int(slider.input_value()), shown_threshold(widget)


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
        before, low, high, stepped, _, _ = _move_and_read(page, widget)
        assert (low["tpr"], low["fpr"]) == ("1.000", "1.000")
        assert (high["tpr"], high["fpr"]) == ("0.000", "0.000")
        assert (before["tpr"], before["fpr"]) != (high["tpr"], high["fpr"])
        assert stepped["threshold"] != high["threshold"]
        page.wait_for_load_state("networkidle")
        _check_offline(urls)
        assert not [e for e in errors if "adcourse" in e or "anywidget" in e], errors


@pytest.fixture(scope="module")
def scratch_html(tmp_path_factory):
    """A small book (course sphinx config): threshold, score-map and edge-case pages, built once."""
    return build_scratch_book(tmp_path_factory.mktemp("scratch") / "book",
                              pages={"index": SCRATCH_PAGE, "scoremap": SCOREMAP_PAGE, "edges": EDGE_PAGE})


@pytest.mark.book
def test_scratch_book_offline(scratch_html):
    """Build a one-page book with the course's sphinx config; check it in the browser."""
    html = scratch_html
    # the data of the scratch page (browser_utils.SCRATCH_PAGE)
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(0.0, 1.0, 400), rng.normal(2.0, 1.0, 100)]
    labels = np.r_[np.zeros(400, dtype=int), np.ones(100, dtype=int)]
    from adcourse import metrics
    from adcourse.course.widgets import ThresholdExplorer

    positions = ThresholdExplorer(scores, labels).slider_thresholds

    with serve(html) as base, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        urls = record_requests(page)
        page.goto(base + "index.html")
        widget = find_threshold_widget(page)
        page.locator("mjx-container").first.wait_for(timeout=30_000)  # offline MathJax
        assert widget.locator("svg").count() == 2
        title = widget.locator("svg.adc-te-roc-svg text.adc-title").text_content()
        assert title == f"ROC curve, AUC = {metrics.roc_auc(scores, labels):.3f}"

        # initial state: FPR-controlled on the normal samples (not the best ROC point), as in Python
        start = ThresholdExplorer(scores, labels).initial_threshold
        assert start.rule == "from_fpr" and shown_threshold(widget) == start.value
        r = metrics.rates(scores, labels, start.value)
        shown = read_metrics(widget)
        assert (int(shown["tp"]), int(shown["fp"])) == (r.tp, r.fp) and r.fpr <= 0.05
        assert widget.locator(".adc-note").inner_text().startswith(f"Starts at γ = {start.value:.4g}")

        before, low, high, stepped, position, value = _move_and_read(page, widget)
        assert position == positions.size - 1 - 5 and value == positions[position]
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
        assert any("/_static/static-widgets.js" in u for u in urls)  # the light renderer
        assert not any("/_static/html-manager/" in u for u in urls)  # not the 3.6 MB manager
        assert any("/_static/mathjax/es5/startup.js" in u for u in urls)


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

        assert slider.input_value() == str(w.levels.size)  # the top position: above every level
        assert shown_threshold(widget) == w.slider_thresholds[-1]
        for _ in range(12):  # every step crosses one level of the map
            page.keyboard.press("ArrowLeft")
        position = int(slider.input_value())
        value = shown_threshold(widget)
        assert position == w.levels.size - 12 and value == w.slider_thresholds[position]
        stepped = read_scoremap(widget)
        assert stepped["counts"] == expected(value)
        assert stepped["counts"]["detected"] == int((q >= w.levels[position]).sum())
        assert 0 < stepped["counts"]["detected"] < h * wd
        position = int(np.searchsorted(w.levels, np.median(q)))
        set_slider(widget, position, selector="input.adc-sm-slider")
        assert shown_threshold(widget) == w.slider_thresholds[position]
        assert read_scoremap(widget)["counts"] == expected(w.slider_thresholds[position])

        # hovering a pixel of the heat map reads its score (canvas centred in the window,
        # clear of the page's sticky header bar)
        widget.locator("canvas.adc-sm-heat").evaluate("el => el.scrollIntoView({block: 'center'})")
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
        assert not errors, errors


@pytest.mark.book
def test_scratch_book_slider_ends_on_unlucky_data(scratch_html):
    """Home / End / one step back on both widgets, on data where float arithmetic is unlucky.

    Home must detect everything and End nothing, exactly; the threshold each position gives
    is the widget's ``slider_thresholds[position]`` to the bit, and the counts shown are
    ``adcourse.metrics.rates`` at that threshold (the score map: of its quantised map).
    """
    from adcourse import metrics
    from adcourse.course.widgets import ScoreMapExplorer, ThresholdExplorer

    labels, score_sets, image, mask, map_sets = edge_cases()

    def press_and_read(page, widget, slider, key, read):
        slider.focus()
        page.keyboard.press(key)
        return int(slider.input_value()), shown_threshold(widget), read(widget)

    with serve(scratch_html) as base, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "edges.html")

        for i, (name, scores) in enumerate(score_sets.items()):
            w = ThresholdExplorer(scores, labels)
            thresholds = w.slider_thresholds
            widget = find_threshold_widget(page, i)
            assert widget.locator(".adc-heading").inner_text() == name
            slider = widget.locator("input.adc-te-slider")
            assert shown_threshold(widget) == w.threshold

            def counts(shown):
                return {k: int(shown[k]) for k in ("tp", "fp", "tn", "fn")}

            def expected(t):
                r = metrics.rates(scores, labels, t)
                return {"tp": r.tp, "fp": r.fp, "tn": r.tn, "fn": r.fn}

            assert counts(read_metrics(widget)) == expected(w.threshold), name
            # from the middle (the start may be at an end, where that key fires no event)
            set_slider(widget, thresholds.size // 2)
            pos, t, shown = press_and_read(page, widget, slider, "End", read_metrics)
            assert (pos, t) == (thresholds.size - 1, thresholds[-1]), name
            assert counts(shown) == expected(t) == {"tp": 0, "fp": 0, "tn": 40, "fn": 20}, name
            pos, t, shown = press_and_read(page, widget, slider, "Home", read_metrics)
            assert (pos, t) == (0, thresholds[0]), name
            assert counts(shown) == expected(t) == {"tp": 20, "fp": 40, "tn": 0, "fn": 0}, name
            pos, t, shown = press_and_read(page, widget, slider, "End", read_metrics)
            assert (pos, t) == (thresholds.size - 1, thresholds[-1]), name
            assert counts(shown) == expected(t) == {"tp": 0, "fp": 0, "tn": 40, "fn": 20}, name
            pos, t, shown = press_and_read(page, widget, slider, "ArrowLeft", read_metrics)
            assert (pos, t) == (thresholds.size - 2, thresholds[-2]), name
            assert counts(shown) == expected(t), name

        for j, (name, score_map) in enumerate(map_sets.items()):
            w = ScoreMapExplorer(image, score_map, mask)
            q, thresholds = w.quantized_map, w.slider_thresholds
            widget = find_scoremap_widget(page, j)
            assert widget.locator(".adc-heading").inner_text() == name
            slider = widget.locator("input.adc-sm-slider")

            def expected(t):
                r = metrics.rates(q.ravel(), mask.ravel(), t)
                return {"tp": r.tp, "fp": r.fp, "fn": r.fn, "tn": r.tn, "detected": r.tp + r.fp}

            assert read_scoremap(widget)["counts"] == expected(w.threshold), name
            # from the middle (the start may be at an end, where that key fires no event)
            set_slider(widget, thresholds.size // 2, selector="input.adc-sm-slider")
            pos, t, shown = press_and_read(page, widget, slider, "End", read_scoremap)
            assert (pos, t) == (w.levels.size, thresholds[-1]), name
            assert shown["counts"] == expected(t) and shown["counts"]["detected"] == 0, name
            pos, t, shown = press_and_read(page, widget, slider, "Home", read_scoremap)
            assert (pos, t) == (0, thresholds[0]), name
            assert shown["counts"] == expected(t) and shown["counts"]["detected"] == q.size, name
            pos, t, shown = press_and_read(page, widget, slider, "End", read_scoremap)
            assert (pos, t) == (w.levels.size, thresholds[-1]), name
            assert shown["counts"] == expected(t) and shown["counts"]["detected"] == 0, name
            pos, t, shown = press_and_read(page, widget, slider, "ArrowLeft", read_scoremap)
            assert (pos, t) == (w.levels.size - 1, thresholds[-2]), name
            assert shown["counts"] == expected(t), name
            assert shown["counts"]["detected"] == int((q == w.levels[-1]).sum()) > 0, name
        assert not errors, errors


def _thumb_and_axis(widget, slider_sel, svg_sel, position):
    """Screen x of the slider thumb's centre at ``position`` and of the histogram's x-axis ends."""
    return widget.evaluate("""(root, [sliderSel, svgSel, position]) => {
      const slider = root.querySelector(sliderSel);
      const r = slider.getBoundingClientRect();
      const thumb = 16; // Chromium's default thumb width
      const frac = (position - Number(slider.min)) / (Number(slider.max) - Number(slider.min));
      // the x axis: the horizontal line of class adc-axis (y1 == y2) spanning the plot
      const axis = [...root.querySelectorAll(svgSel + " line.adc-axis")]
        .filter((l) => l.getAttribute("y1") === l.getAttribute("y2"))
        .map((l) => l.getBoundingClientRect())
        .sort((a, b) => b.width - a.width)[0];
      return { thumb: r.left + thumb / 2 + frac * (r.width - thumb), left: axis.left, right: axis.right };
    }""", [slider_sel, svg_sel, position])


@pytest.mark.book
@pytest.mark.parametrize("width, height", [(400, 800), (1280, 900)])
def test_scratch_book_widgets_fit_the_screen(scratch_html, width, height):
    """At a phone's 400 px and a desktop's 1280 px: text >= 9 px as rendered, no overflow, the
    score-map image on screen while its slider is, slider ends under the histogram's axis ends."""
    with serve(scratch_html) as base, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": width, "height": height})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # console errors of the widgets (the theme logs some of its own: not ours)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and re.search(
            "ResizeObserver|anywidget|adc-|adcourse", m.text) else None)
        for url, find, slider_sel, svg_sel in [
            ("index.html", find_threshold_widget, "input.adc-te-slider", "svg.adc-te-hist-svg"),
            ("scoremap.html", find_scoremap_widget, "input.adc-sm-slider", "svg.adc-sm-hist-svg"),
        ]:
            page.goto(base + url)
            widget = find(page)
            px, where = smallest_text_px(widget)
            assert px >= 9, f"{url} at {width} px: text of {px:.1f} px ({where})"
            box = widget.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (url, width, box)
            assert widget.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), (url, width)
            # the histogram is laid out for its width: one SVG unit per CSS pixel
            scale = widget.locator(svg_sel).evaluate("s => s.getBoundingClientRect().width / s.viewBox.baseVal.width")
            assert abs(scale - 1) < 0.02, (url, width, scale)
            slider = widget.locator(slider_sel)
            top = int(slider.get_attribute("max"))
            for position in (0, top):
                at = _thumb_and_axis(widget, slider_sel, svg_sel, position)
                end = at["left"] if position == 0 else at["right"]
                assert abs(at["thumb"] - end) <= 3, (url, width, position, at)
            # scroll as a reader does to reach the slider: it at the bottom of the screen
            slider.evaluate("el => el.scrollIntoView({block: 'end'})")
            plots = ["canvas.adc-sm-image", "canvas.adc-sm-heat"] if "scoremap" in url else [svg_sel]
            for sel in [slider_sel, *plots]:
                r = widget.locator(sel).bounding_box()
                assert r["y"] >= -0.5 and r["y"] + r["height"] <= height + 0.5, (url, width, sel, r)
                assert r["x"] >= 0 and r["x"] + r["width"] <= width + 0.5, (url, width, sel, r)
        assert not errors, errors


@pytest.mark.book
def test_scratch_book_widgets_follow_dark_mode(scratch_html):
    """The widgets take the book theme's colours: dark in dark mode, light in light mode."""
    with serve(scratch_html) as base, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for url, find in [("index.html", find_threshold_widget), ("scoremap.html", find_scoremap_widget)]:
            page.goto(base + url)
            widget = find(page)
            for theme in ("dark", "light"):
                # what the theme's switch does (pydata-sphinx-theme)
                page.evaluate("t => { document.documentElement.dataset.theme = t;"
                              " document.documentElement.dataset.mode = t; }", theme)
                c = widget_colors(widget)
                assert contrast(c["text"], c["background"]) >= 7, (url, theme, c)
                assert contrast(c["tick"], c["background"]) >= 4.5, (url, theme, c)
                assert contrast(c["background"], c["page"]) < 1.3, (url, theme, c)  # blends in
                if theme == "dark":
                    assert luminance(c["background"]) < 0.05 and luminance(c["text"]) > 0.5, (url, c)
                else:
                    assert luminance(c["background"]) > 0.9 and luminance(c["text"]) < 0.05, (url, c)

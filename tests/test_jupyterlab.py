"""Both widget sliders in a real JupyterLab page, with a live kernel.

The test starts ``jupyter lab`` (this venv's JupyterLab 4) on 127.0.0.1 with a
random free port, a token and a temporary root folder holding one small
notebook that makes a ThresholdExplorer and a ScoreMapExplorer; Playwright drives
the system Chromium (``/usr/bin/chromium``, never ``playwright install``), runs the
notebook, and works each slider with the keyboard: arrows, Page Up / Page Down,
Home / End. JupyterLab's notebook shortcuts must not take those keys (ArrowLeft /
ArrowRight move to the heading cell above / below in command mode), the focus must
stay on the slider, and the ``threshold`` each position selects must reach the
kernel exactly (a cell prints it). Setting ``threshold`` from Python must move the
slider. Nothing leaves the machine (requests are recorded), and the server and its
kernel are shut down at the end. Switched to JupyterLab's dark theme, the widgets turn
dark with it.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from browser_utils import (
    chromium_missing_reason,
    contrast,
    find_scoremap_widget,
    find_threshold_widget,
    is_local,
    jupyter_lab,
    launch_chromium,
    luminance,
    read_metrics,
    read_scoremap,
    shown_threshold,
    widget_colors,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_missing_reason() is not None,
                       reason=chromium_missing_reason() or ""),
]

# the notebook's code cells (the test runs the widget cells itself too, for the thresholds)
WIDGET_CELLS = [
    """\
import numpy as np
from adcourse.course.widgets import ScoreMapExplorer, ThresholdExplorer

rng = np.random.default_rng(0)
scores = np.r_[rng.normal(0, 1, 200), rng.normal(2, 1, 50)]
labels = np.r_[np.zeros(200, dtype=int), np.ones(50, dtype=int)]
te = ThresholdExplorer(scores, labels, title="threshold explorer")
te""",
    """\
yy, xx = np.mgrid[0:24, 0:32] / 24
image = 0.3 + 0.4 * xx / xx.max()
score_map = np.exp(-((xx - 0.9) ** 2 + (yy - 0.5) ** 2) / 0.03) + 0.2 * rng.random((24, 32))
mask = score_map > 0.6
sm = ScoreMapExplorer(image, score_map, mask, title="score-map explorer")
sm""",
]
PRINT_CELL = 'print("SYNC", json.dumps([te.threshold, sm.threshold]))'
SET_VALUE = {"te": 1.0, "sm": 0.5}  # set from Python by the last cell
SET_CELL = f'te.threshold = {SET_VALUE["te"]}\nsm.threshold = {SET_VALUE["sm"]}'


def _notebook():
    import nbformat

    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        md("# Thresholds\n\nHeading cells: JupyterLab's ArrowLeft / ArrowRight jump to them."),
        code(WIDGET_CELLS[0]),
        md("## Score map"),
        code(WIDGET_CELLS[1]),
        md("## What the kernel sees"),
        code("import json\n" + PRINT_CELL),
        code(SET_CELL),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# JavaScript run in the page: the notebook panel of the JupyterLab app (exposed by
# --LabApp.expose_app_in_browser)
_RUN_CELL = """async (index) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  panel.content.activeCellIndex = index;
  await app.commands.execute("notebook:run-cell");
}"""
_RUN_ALL = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  await app.commands.execute("notebook:run-all-cells");
}"""


def _cell(page, index):
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def _sync_line(page, cell):
    """Wait for the ``SYNC [te, sm]`` line printed by the code cell ``cell``; return the pair."""
    out = _cell(page, cell).locator(".jp-OutputArea-output").filter(has_text="SYNC").first
    out.wait_for(timeout=60_000)
    return json.loads(re.search(r"SYNC (\[.*\])", out.inner_text()).group(1))


def _rerun(page, cell):
    """Run code cell ``cell`` again; wait until its new execution count shows; return the pair."""
    prompt = _cell(page, cell).locator(".jp-InputArea-prompt")
    before = prompt.inner_text()
    page.evaluate(_RUN_CELL, cell)
    page.wait_for_function(
        "([el, before]) => /\\[\\d+\\]/.test(el.textContent) && el.textContent !== before",
        arg=[prompt.element_handle(), before], timeout=60_000)
    return _sync_line(page, cell)


def _work_slider(page, widget, selector, thresholds, read):
    """Click the slider, then each key; check value, focus and the widget's threshold.

    Returns the list of ``(key, position)``.
    """
    slider = widget.locator(selector)
    top = thresholds.size - 1
    slider.click()  # as a student would: the thumb jumps to the middle of the track
    start = int(slider.input_value())
    assert 0 < start < top
    seen = []

    def press(key):
        page.keyboard.press(key)
        pos = int(slider.input_value())
        assert slider.evaluate("el => el === document.activeElement"), f"{key} moved the focus"
        assert shown_threshold(widget) == thresholds[pos], key
        seen.append((key, pos))
        return pos

    assert press("ArrowRight") == start + 1
    assert press("ArrowRight") == start + 2
    assert press("ArrowLeft") == start + 1
    assert press("ArrowUp") == start + 2
    assert press("ArrowDown") == start + 1
    page_up = press("PageUp")
    assert page_up > start + 2
    assert press("PageDown") < page_up
    assert press("Home") == 0
    read(widget)  # the view still answers
    assert press("End") == top
    return seen


def test_sliders_keyboard_and_sync_in_jupyterlab(tmp_path):
    import nbformat

    from adcourse import metrics

    ns = {}
    for code in WIDGET_CELLS:
        exec(code, ns)
    te, sm = ns["te"], ns["sm"]
    te_thr, sm_thr = te.slider_thresholds, sm.slider_thresholds

    nbformat.write(_notebook(), tmp_path / "sliders.ipynb")
    with jupyter_lab(tmp_path) as server, launch_chromium() as browser:
        base, token = server.base, server.token
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        remote = []
        page.on("request", lambda r: None if is_local(r.url) else remote.append(r.url))
        page.goto(f"{base}lab/tree/sliders.ipynb?token={token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.content", timeout=60_000)
        page.evaluate(_RUN_ALL)

        te_view = find_threshold_widget(page, timeout=60_000)
        sm_view = find_scoremap_widget(page, timeout=60_000)
        # the kernel printed the defaults; then the last cell set both thresholds from Python
        assert _sync_line(page, 5) == [te.threshold, sm.threshold]
        page.wait_for_function(
            "([a, b]) => [...document.querySelectorAll('[data-metric=threshold]')]"
            ".map((el) => Number(el.dataset.value)).join() === [a, b].join()",
            arg=[SET_VALUE["te"], SET_VALUE["sm"]], timeout=30_000)
        # Python -> browser: the view shows the value set in Python, exact counts, slider moved
        r = metrics.rates(ns["scores"], ns["labels"], SET_VALUE["te"])
        shown = read_metrics(te_view)
        assert (int(shown["tp"]), int(shown["fp"])) == (r.tp, r.fp)
        assert int(te_view.locator("input.adc-te-slider").input_value()) == int(
            np.searchsorted(te_thr, SET_VALUE["te"]))
        assert int(sm_view.locator("input.adc-sm-slider").input_value()) == int(
            np.searchsorted(sm.levels, SET_VALUE["sm"]))

        te_keys = _work_slider(page, te_view, "input.adc-te-slider", te_thr, read_metrics)
        page.keyboard.press("ArrowLeft")  # one below the top
        sm_keys = _work_slider(page, sm_view, "input.adc-sm-slider", sm_thr, read_scoremap)
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")  # position 1: just above the lowest level
        assert int(sm_view.locator("input.adc-sm-slider").input_value()) == 1

        # browser -> Python: the kernel has exactly the thresholds of those positions
        # (ipywidgets holds back a model's later changes while the kernel is busy and sends
        # the newest one when it is idle: the last key press may arrive after a first run)
        expected = [te_thr[-2], sm_thr[1]]
        deadline = time.monotonic() + 30
        while (kernel := _rerun(page, 5)) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        assert kernel == expected, (te_keys, sm_keys)
        r = metrics.rates(ns["scores"], ns["labels"], kernel[0])
        shown = read_metrics(te_view)
        assert (int(shown["tp"]), int(shown["fp"])) == (r.tp, r.fp)

        # JupyterLab's themes: the widgets take their colours from its variables
        for view in (te_view, sm_view):
            c = widget_colors(view)
            assert luminance(c["background"]) > 0.9 and contrast(c["text"], c["background"]) >= 7, c
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme',"
                      " {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.wait_for_function(
            "() => getComputedStyle(document.querySelector('.adc-widget')).backgroundColor"
            " !== 'rgb(255, 255, 255)'", timeout=30_000)
        for view in (te_view, sm_view):
            c = widget_colors(view)
            assert luminance(c["background"]) < 0.05 and luminance(c["text"]) > 0.5, c
            assert contrast(c["text"], c["background"]) >= 7 and contrast(c["tick"], c["background"]) >= 4.5, c
        assert not remote, f"the page requested non-local URLs: {remote}"
        assert list(server.runtime.glob("kernel-*.json"))  # the kernel was running
    # cleaned up: the server has exited and shut its kernel down
    assert server.proc.poll() is not None
    assert not list(server.runtime.glob("kernel-*.json"))

"""Helpers for browser tests of the built book (headless Debian Chromium + Playwright).

Reusable by every browser test::

    from browser_utils import launch_chromium, find_threshold_widget, serve

Chromium is the system one (``apt-get install chromium`` -> /usr/bin/chromium);
Playwright only drives it (never run ``playwright install``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import sys
import socket
import textwrap
import threading
import time
import types
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("ADCOURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def chromium_missing_reason():
    """Why browser tests must be skipped, or ``None`` when Chromium is there."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    return None


@contextlib.contextmanager
def launch_chromium():
    """Yield a Playwright ``Browser`` on the system Chromium, headless.

    Playwright gives every launch a fresh temporary profile (the role of
    ``--user-data-dir=$(mktemp -d)`` on the command line).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve(directory):
    """Serve ``directory`` over HTTP on 127.0.0.1 (random port); yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def is_local(url):
    """True for requests that stay on this machine (served files, data:, blob:)."""
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "file", "about", "chrome", "chrome-extension"):
        return True
    return parsed.hostname in LOCAL_HOSTS


def record_requests(page):
    """Start recording every request URL of ``page``; return the (live) list."""
    urls = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def find_threshold_widget(page, index=0, timeout=30_000):
    """Wait until the ``index``-th ThresholdExplorer has rendered; return its locator.

    The locator is the widget root (``.adc-te``): it holds the SVG plots
    (``svg.adc-te-hist-svg``, ``svg.adc-te-roc-svg``), the slider
    (``input.adc-te-slider``) and the cells ``td[data-metric=tpr|fpr|precision|f1|tp|fp|tn|fn]``.
    """
    widget = page.locator(".adc-te").nth(index)
    widget.locator("svg.adc-te-roc-svg path").first.wait_for(state="attached", timeout=timeout)
    widget.locator("td[data-metric=tpr]").wait_for(timeout=timeout)
    return widget


def read_metrics(widget):
    """Text of the metric cells of a rendered ThresholdExplorer, as a dict."""
    cells = widget.locator("td[data-metric]")
    return {
        cells.nth(i).get_attribute("data-metric"): cells.nth(i).inner_text()
        for i in range(cells.count())
    }


def set_slider(widget, position, selector="input.adc-te-slider"):
    """Move the threshold slider to integer ``position`` as a user would (fires ``input``).

    Position ``i`` selects the widget's ``slider_thresholds[i]``.
    ``selector``: ``input.adc-sm-slider`` for a ScoreMapExplorer.
    """
    widget.locator(selector).evaluate(
        "(el, v) => { el.value = String(v);"
        " el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }",
        int(position),
    )


def shown_threshold(widget):
    """The exact threshold a rendered widget holds (its model value), as a float."""
    return float(widget.locator("[data-metric=threshold]").get_attribute("data-value"))


def find_scoremap_widget(page, index=0, timeout=30_000):
    """Wait until the ``index``-th ScoreMapExplorer has rendered; return its locator.

    The locator is the widget root (``.adc-sm``): it holds two canvases
    (``canvas.adc-sm-image`` with the detections over the image,
    ``canvas.adc-sm-heat`` with the score map), the histogram
    (``svg.adc-sm-hist-svg``), the slider (``input.adc-sm-slider``), the values
    ``[data-metric=threshold|tpr|fpr|detected]`` (TPR/FPR only with a mask) and
    the counts line ``.adc-sm-counts`` (``data-tp``, ``data-fp``, ... attributes).
    """
    widget = page.locator(".adc-sm").nth(index)
    widget.locator("svg.adc-sm-hist-svg path").first.wait_for(state="attached", timeout=timeout)
    widget.locator("[data-metric=detected]").wait_for(timeout=timeout)
    return widget


def read_scoremap(widget):
    """Shown values of a rendered ScoreMapExplorer: ``{metric: text}`` plus integer counts.

    Keys: ``threshold``, ``detected`` (and ``tpr``, ``fpr`` with a mask) as
    displayed, and ``counts``: ``{"detected": n, "tp": .., "fp": .., "fn": .., "tn": ..}``
    as ints (the last four only with a mask).
    """
    cells = widget.locator("[data-metric]")
    out = {cells.nth(i).get_attribute("data-metric"): cells.nth(i).inner_text()
           for i in range(cells.count())}
    counts = widget.locator(".adc-sm-counts").evaluate(
        "el => Object.fromEntries(Object.entries(el.dataset))")
    out["counts"] = {k: int(v) for k, v in counts.items()}
    return out


def smallest_text_px(widget):
    """Smallest rendered text size in ``widget``, in CSS pixels, and where it is.

    SVG text counts at the size it is drawn: its font size times the scale of the SVG
    (viewBox to screen); HTML text at its computed font size. Returns ``(px, description)``.
    """
    return tuple(widget.evaluate("""(root) => {
      let best = [Infinity, ""];
      const consider = (px, what) => { if (px < best[0]) best = [px, what]; };
      for (const t of root.querySelectorAll("svg text")) {
        if (!t.textContent.trim()) continue;
        const m = t.getScreenCTM();
        const scale = Math.hypot(m.a, m.b);
        consider(parseFloat(getComputedStyle(t).fontSize) * scale, "svg: " + t.textContent);
      }
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const el = n.parentElement;
        if (!n.textContent.trim() || el.closest("svg") || !el.getClientRects().length) continue;
        consider(parseFloat(getComputedStyle(el).fontSize), "html: " + n.textContent.trim());
      }
      return best;
    }"""))


def widget_colors(widget):
    """Computed colours of a rendered widget as RGB triples (0-255).

    Keys: ``background`` (of the widget box), ``text`` (its text colour), ``tick`` (fill of
    an SVG tick label), ``page`` (the page's background, as the theme draws it).
    """
    return widget.evaluate("""(root) => {
      const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
      const pageBg = (() => {
        for (let el = root.parentElement; el; el = el.parentElement) {
          const c = getComputedStyle(el).backgroundColor;
          if (c && !/rgba\\(.*, 0\\)$/.test(c) && c !== "transparent") return rgb(c);
        }
        return [255, 255, 255];
      })();
      return {
        background: rgb(getComputedStyle(root).backgroundColor),
        text: rgb(getComputedStyle(root).color),
        tick: rgb(getComputedStyle(root.querySelector("svg text.adc-tick")).fill),
        page: pageBg,
      };
    }""")


def luminance(rgb):
    """Relative luminance (WCAG 2) of an sRGB colour given as 0-255 values."""
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(rgb1, rgb2):
    """WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((luminance(rgb1), luminance(rgb2)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def canvas_pixels(widget, selector, x_frac, y_frac):
    """RGBA of the canvas ``selector`` in ``widget`` at a point given as fractions of its size."""
    return widget.locator(selector).evaluate(
        "(c, [fx, fy]) => Array.from(c.getContext('2d').getImageData("
        "Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data)",
        [x_frac, y_frac],
    )


# ----------------------------------------------------------------- scratch book
# the jupytext header of a MyST-markdown notebook page
PAGE_HEADER = '''\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
'''

SCRATCH_PAGE = PAGE_HEADER + '''

# Threshold explorer

A detector raises an alarm when the score is at least the threshold:

$$ TPR = \\frac{TP}{TP + FN}, \\qquad FPR = \\frac{FP}{FP + TN}. $$

```{code-cell} ipython3
import numpy as np
from adcourse.course.widgets import ThresholdExplorer

rng = np.random.default_rng(0)
scores = np.r_[rng.normal(0.0, 1.0, 400), rng.normal(2.0, 1.0, 100)]
labels = np.r_[np.zeros(400, dtype=int), np.ones(100, dtype=int)]
ThresholdExplorer(scores, labels, title="Toy detector: Gaussian scores")
```
'''

# data of the score-map page; the browser test runs the same code
SCOREMAP_SETUP = """\
import numpy as np
from adcourse.data import make_nanofibers
from adcourse.images.features import LocalFeatureDetector

train = make_nanofibers(16, 96, anomaly_rate=0.0, random_state=0)
test = make_nanofibers(2, 96, anomaly_rate=1.0, random_state=3)
maps = LocalFeatureDetector(window=11).fit(train.images).anomaly_map(test.images)
image, score_map, mask = test.images[0], maps[0], test.masks[0]
# a larger image without mask: shown downsampled (300 -> 150 pixels)
yy, xx = np.mgrid[0:300, 0:300] / 300.0
big_image = 0.5 + 0.4 * np.sin(12 * xx) * np.cos(9 * yy)
big_map = np.exp(-((xx - 0.7) ** 2 + (yy - 0.3) ** 2) / 0.005) + 0.05 * np.cos(40 * xx)
"""

SCOREMAP_PAGE = PAGE_HEADER + f'''

# Score-map explorer

A pixel is detected when its score is at least the threshold $\\gamma$.

```{{code-cell}} ipython3
{SCOREMAP_SETUP}
from adcourse.course.widgets import ScoreMapExplorer

ScoreMapExplorer(image, score_map, mask, title="Nanofibres: local-feature detector")
```

```{{code-cell}} ipython3
ScoreMapExplorer(big_image, big_map, title="A larger image, no mask", cmap="viridis")
```
'''

# data sets on which float arithmetic is unlucky (the unit tests and the browser test
# run the same code): tenths, sums of 0.1, values near 1e-17 and 1e17 (neighbouring
# doubles 16 apart), many ties, two levels only, a constant
EDGE_SETUP = """\
import numpy as np

rng = np.random.default_rng(5)
edge_labels = np.tile([0, 0, 1], 20)  # 60 samples, both classes
edge_scores = {
    "tenths": np.tile(np.arange(1, 11) / 10, 6),
    "tenths_sum": np.cumsum(np.full(60, 0.1)),
    "tiny": rng.integers(1, 30, 60) * 1e-17,
    "huge": 1e17 + 16.0 * rng.integers(0, 5, 60),
    "ties": np.round(rng.normal(0, 1, 60)),
    "two_levels": np.where(rng.random(60) < 0.5, 0.3, 0.7),
    "constant": np.full(60, 0.5),
}
yy, xx = np.mgrid[0:12, 0:16]
edge_image = 0.2 + 0.6 * xx / 15
edge_mask = (yy >= 3) & (yy < 7) & (xx >= 9) & (xx < 14)
edge_maps = {
    "tenths": ((xx + yy) % 10 + 1) / 10,
    "tiny": (rng.random((12, 16)) + edge_mask) * 1e-17,
    "huge": 1e17 + 16.0 * rng.integers(0, 4, (12, 16)) + 64.0 * edge_mask,
    "ties": np.round(3 * rng.random((12, 16))) + edge_mask,
    "two_levels": np.where(edge_mask, 0.75, 0.25),
    "constant": np.full((12, 16), 0.3),
}
"""

EDGE_PAGE = PAGE_HEADER + f'''

# Slider ends on unlucky data

```{{code-cell}} ipython3
{EDGE_SETUP}
from IPython.display import display
from adcourse.course.widgets import ScoreMapExplorer, ThresholdExplorer

for name, scores in edge_scores.items():
    display(ThresholdExplorer(scores, edge_labels, title=name))
for name, score_map in edge_maps.items():
    display(ScoreMapExplorer(edge_image, score_map, edge_mask, title=name))
```
'''


def edge_cases():
    """The data of ``EDGE_SETUP``: ``(labels, {name: scores}, image, mask, {name: map})``."""
    ns = {}
    exec(EDGE_SETUP, ns)
    return ns["edge_labels"], ns["edge_scores"], ns["edge_image"], ns["edge_mask"], ns["edge_maps"]


def write_scratch_book(root, pages=None):
    """Write a small Jupyter Book (the course's own ``sphinx`` config) into ``root``.

    ``pages``: ``{name: MyST text}``, the first one is the root page; default:
    the one-page book ``{"index": SCRATCH_PAGE}``.
    """
    import yaml

    pages = dict(pages or {"index": SCRATCH_PAGE})

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    course = yaml.safe_load((REPO / "book" / "_config.yml").read_text())
    config = {
        "title": "adcourse scratch book",
        "author": "adcourse tests",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "force", "timeout": 120},
        "bibtex_bibfiles": course["bibtex_bibfiles"],
        "sphinx": course["sphinx"],
    }
    (root / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    copy_book_support(root)
    names = list(pages)
    toc = f"format: jb-book\nroot: {names[0]}\n"
    if len(names) > 1:
        toc += "chapters:\n" + "".join(f"  - file: {name}\n" for name in names[1:])
    (root / "_toc.yml").write_text(toc)
    for name, text in pages.items():
        (root / f"{name}.md").write_text(text)
    return root


# what a scratch book needs besides its pages to build with the course's sphinx config
BOOK_SUPPORT = ("_ext", "_templates", "_theme", "references.bib")


def copy_book_support(root):
    """Copy the course book's extension, templates, theme files and bibliography into ``root``."""
    for name in BOOK_SUPPORT:
        src, dst = REPO / "book" / name, Path(root) / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)


def build_scratch_book(root, timeout=300, pages=None):
    """Write, vendor and build the scratch book; return the built HTML folder."""
    root = write_scratch_book(root, pages)
    bindir = Path(sys.executable).parent
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "vendor_assets.py"), str(root / "_vendor")],
        check=True, env=env, timeout=timeout,
    )
    jb = shutil.which("jupyter-book", path=str(bindir)) or "jupyter-book"
    proc = subprocess.run(
        [jb, "build", "-W", "-n", "--keep-going", str(root)],
        capture_output=True, text=True, env=env, timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            "scratch book build failed:\n"
            + textwrap.indent((proc.stdout + proc.stderr)[-6000:], "  ")
        )
    return root / "_build" / "html"


# ------------------------------------------------------------------- JupyterLab
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(base, token, proc, log, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base}api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer at {base} within {timeout} s")


@contextlib.contextmanager
def jupyter_lab(root, home=None, app_settings_dir=None):
    """Run ``jupyter lab`` on ``root`` (127.0.0.1, free port, token); yield the server.

    The server: ``base`` (URL), ``token``, ``proc`` (the ``Popen``), ``runtime`` (its
    runtime folder, where each running kernel has a connection file).

    Every Jupyter folder (config, data, runtime, settings, workspaces, IPython) is a
    fresh one under ``root``; update checks and the extension manager's PyPI look-ups
    are off. At the end the server is asked to shut down (kernels included), then
    terminated if it has not.

    ``home`` holds those folders and the server's log (default: ``root/.jupyter-home``; give
    a temporary folder when ``root`` is the repository); ``app_settings_dir`` replaces
    JupyterLab's application settings (``make lab`` passes the project's
    ``.jupyter/lab/settings``, whose ``overrides.json`` opens chapters as notebooks).
    """
    port, token = _free_port(), uuid.uuid4().hex
    home = Path(home) if home is not None else root / ".jupyter-home"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython")]:
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",  # CI runs as root
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if app_settings_dir is not None:
        cmd.append(f"--LabApp.app_settings_dir={app_settings_dir}")
    log_path = home / "jupyter-lab.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}/"
    try:
        _wait_ready(base, token, proc, log_path)
        yield types.SimpleNamespace(base=base, token=token, proc=proc, runtime=home / "runtime")
    finally:
        try:
            req = urllib.request.Request(f"{base}api/shutdown?token={token}", method="POST", data=b"")
            urllib.request.urlopen(req, timeout=10).close()
            proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()

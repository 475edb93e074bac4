"""Page weight and load time of the built book, in headless Chromium (figures, not tests).

Usage: python scripts/bench_book.py [HTML_DIR] [--width 1280] [--repeat 3]

Serves HTML_DIR (default book/_build/html) on 127.0.0.1 and opens every page of the
book in a fresh browser context (empty cache), as a first-time reader would. For each
page it prints:

- weight: bytes of every response the page loaded (HTML, scripts, styles, fonts,
  images), uncompressed, as a local server sends them, and the number of requests;
- load: milliseconds from navigation to the ``load`` event (median of ``--repeat``);
- ready: milliseconds until the page is quiet: MathJax has typeset every formula and
  every widget has rendered (median).

Needs Chromium at /usr/bin/chromium and Playwright (the test suite's browser tools).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# waits until MathJax is done (if the page has math) and the widget views are filled
READY_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const deadline = performance.now() + 20000;
  while (performance.now() < deadline) {
    const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
    const pending = [...views].filter(v => !v.parentElement.querySelector('.adc-widget, .widget-box, .jupyter-widgets'));
    if (pending.length === 0) break;
    await new Promise(r => setTimeout(r, 50));
  }
  return performance.now();
}"""


def pages_of(html_dir):
    """The book's pages in reading order (index first), as names relative to ``html_dir``."""
    names = sorted(p.name for p in Path(html_dir).glob("*.html")
                   if p.name not in ("genindex.html", "search.html", "index.html"))
    return names


def measure_page(browser, url, width=1280, height=900):
    """One cold load of ``url``: dict(weight, requests, load_ms, ready_ms, by_type)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    sizes = []

    def on_finished(request):
        try:
            body = request.response().body() if request.response() else b""
        except Exception:  # e.g. a redirect or an aborted request
            body = b""
        sizes.append((request.resource_type, request.url, len(body)))

    page.on("requestfinished", on_finished)
    page.goto(url, wait_until="load")
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    ready_ms = page.evaluate(READY_JS)
    page.wait_for_load_state("networkidle")
    context.close()
    by_type = {}
    for kind, _, n in sizes:
        by_type[kind] = by_type.get(kind, 0) + n
    return {"weight": sum(n for *_, n in sizes), "requests": len(sizes), "load_ms": load_ms,
            "ready_ms": ready_ms, "by_type": by_type, "files": sizes}


def measure(html_dir, pages=None, width=1280, repeat=3):
    """Measure ``pages`` (default: every page of the book); return {page: result}."""
    from browser_utils import launch_chromium, serve

    pages = pages or pages_of(html_dir)
    out = {}
    with serve(html_dir) as base, launch_chromium() as browser:
        for name in pages:
            runs = [measure_page(browser, base + name, width) for _ in range(repeat)]
            best = runs[-1]
            best["load_ms"] = statistics.median(r["load_ms"] for r in runs)
            best["ready_ms"] = statistics.median(r["ready_ms"] for r in runs)
            out[name] = best
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, default=ROOT / "book" / "_build" / "html")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", action="store_true", help="list the 10 largest files per page")
    args = parser.parse_args(argv)
    if not (args.html / "intro.html").exists():
        print(f"no built book in {args.html}: run scripts/build_book.py first", file=sys.stderr)
        return 1
    results = measure(args.html, width=args.width, repeat=args.repeat)
    print(f"{'page':34s} {'weight':>9s} {'requests':>8s} {'load':>8s} {'ready':>8s}   "
          "script / font / image / stylesheet (kB)")
    for name, r in results.items():
        t = r["by_type"]
        kinds = " / ".join(f"{t.get(k, 0) / 1e3:.0f}" for k in ("script", "font", "image", "stylesheet"))
        print(f"{name:34s} {r['weight'] / 1e6:7.2f}MB {r['requests']:8d} {r['load_ms']:6.0f}ms "
              f"{r['ready_ms']:6.0f}ms   {kinds}")
        if args.files:
            for kind, url, n in sorted(r["files"], key=lambda f: -f[2])[:10]:
                print(f"    {n / 1e3:8.0f} kB  {kind:10s} {url.split('/', 3)[-1][:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

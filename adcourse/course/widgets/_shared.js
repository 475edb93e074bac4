// Shared front-end helpers of the adcourse widgets (see _base.py).
// This file is prepended to each widget's own ES module, so the functions
// below are plain module-level functions: no import, no external library,
// nothing fetched from the network.

const SVG_NS = "http://www.w3.org/2000/svg";

const TYPED_ARRAYS = {
  float64: Float64Array,
  float32: Float32Array,
  int32: Int32Array,
  uint32: Uint32Array,
  uint8: Uint8Array,
};

// {dtype, shape, b64} (made by adcourse.course.widgets._base.encode_array) -> typed array.
// The payload is little-endian, as are the typed arrays of every browser in use.
function decodeArray(packed) {
  const bin = atob(packed.b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const T = TYPED_ARRAYS[packed.dtype];
  if (!T) throw new Error(`adcourse widget: unknown dtype ${packed.dtype}`);
  return new T(bytes.buffer);
}

// First index i with arr[i] >= x in an ascending array (arr.length if none).
function lowerBound(arr, x) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// About `count` round tick values covering [lo, hi].
function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm >= 7.5 ? 10 : norm >= 3.5 ? 5 : norm >= 1.5 ? 2 : 1) * mag; // nearest 1-2-5 step
  const first = Math.ceil(lo / step - 1e-9) * step;
  const ticks = [];
  // v = first + i * step (not v += step: near 1e17 a small step would not move v at all)
  for (let i = 0; i <= 4 * count + 4; i++) {
    const v = first + i * step;
    if (v > hi + step * 1e-9) break;
    const tick = Math.abs(v) < step * 1e-9 ? 0 : v;
    if (ticks.length === 0 || tick > ticks[ticks.length - 1]) ticks.push(tick);
  }
  return ticks;
}

// Tick label with as many decimals as the tick spacing needs (0.25 -> 2).
function tickLabel(v, ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(v) || 1;
  if (Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-4)) return v.toExponential(1);
  let decimals = 0;
  while (decimals < 8 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) decimals++;
  return v.toFixed(decimals);
}

// Create an SVG element with attributes, optionally appended to a parent.
function svgEl(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

// Create an HTML element with a class and text.
function htmlEl(tag, className = "", text = "", parent = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// Linear map from [d0, d1] to [r0, r1].
function linearScale(d0, d1, r0, r1) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  const f = (v) => r0 + (v - d0) * k;
  f.invert = (p) => (k === 0 ? d0 : d0 + (p - r0) / k);
  return f;
}

// Draw x and y axes (ticks, grid, labels) of a plot area into an SVG group.
function drawAxes(g, box, xScale, yScale, xTicks, yTicks, xLabel, yLabel) {
  const { left, top, width, height } = box;
  const bottom = top + height;
  for (const v of yTicks) {
    const y = yScale(v);
    svgEl("line", { x1: left, x2: left + width, y1: y, y2: y, class: "adc-grid" }, g);
    const t = svgEl("text", { x: left - 5, y: y + 3.5, "text-anchor": "end", class: "adc-tick" }, g);
    t.textContent = tickLabel(v, yTicks);
  }
  for (const v of xTicks) {
    const x = xScale(v);
    svgEl("line", { x1: x, x2: x, y1: bottom, y2: bottom + 4, class: "adc-axis" }, g);
    const t = svgEl("text", { x, y: bottom + 15, "text-anchor": "middle", class: "adc-tick" }, g);
    t.textContent = tickLabel(v, xTicks);
  }
  svgEl("line", { x1: left, x2: left + width, y1: bottom, y2: bottom, class: "adc-axis" }, g);
  svgEl("line", { x1: left, x2: left, y1: top, y2: bottom, class: "adc-axis" }, g);
  const xl = svgEl("text", { x: left + width / 2, y: bottom + 31, "text-anchor": "middle", class: "adc-label" }, g);
  xl.textContent = xLabel;
  const yl = svgEl("text", {
    x: 0, y: 0, "text-anchor": "middle", class: "adc-label",
    transform: `translate(${left - 36},${top + height / 2}) rotate(-90)`,
  }, g);
  yl.textContent = yLabel;
}

// Fixed-decimals number, "–" for non-finite values.
function fmt(v, decimals = 3) {
  return Number.isFinite(v) ? v.toFixed(decimals) : "–";
}

// A vertical threshold line over a histogram, with the "detected" region (score >= t) shaded
// and a label that flips side near the right edge. Returns update(t), to call when t moves.
// (Colours: classes adc-tline, adc-tlabel in widgets.css, so that dark themes can change them.)
function thresholdMarker(overlay, box, x, { regionClass, lineTop, lineBottom }) {
  const region = svgEl("rect", { y: box.top, height: box.height, class: regionClass }, overlay);
  const line = svgEl("line", { y1: lineTop, y2: lineBottom, class: "adc-tline" }, overlay);
  const label = svgEl("text", { y: box.top + 12, class: "adc-tlabel" }, overlay);
  return function update(t) {
    const xt = Math.max(box.left, Math.min(box.left + box.width, x(t)));
    region.setAttribute("x", xt);
    region.setAttribute("width", box.left + box.width - xt);
    line.setAttribute("x1", xt);
    line.setAttribute("x2", xt);
    const right = xt < box.left + box.width - 100;
    label.setAttribute("x", right ? xt + 5 : xt - 5);
    label.setAttribute("text-anchor", right ? "start" : "end");
    label.textContent = right ? "detected →" : "← not detected";
  };
}

// Keys that move an <input type=range>.
const SLIDER_KEYS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"]);

// The threshold slider under a histogram. Its positions are the integers 0..n-1: position i
// selects the precomputed threshold thresholds[i] (ascending; Python made the first one
// detect everything and the last one nothing, exactly), so both ends are exact whatever the
// float rounding.
function thresholdSlider(parent, className, thresholds, hist) {
  const slider = htmlEl("input", className, "", parent);
  slider.type = "range";
  slider.min = "0";
  slider.max = String(thresholds.length - 1);
  slider.step = "1";
  slider.setAttribute("aria-label", "threshold");
  // The slider's own keys stay the slider's: JupyterLab 4 handles its keyboard shortcuts when
  // the keydown event bubbles up to the document (in command mode ArrowLeft/ArrowRight would
  // move to another cell and the value would stay), so they stop here; other keys (Shift+Enter,
  // Escape, Ctrl+...) still reach JupyterLab.
  slider.addEventListener("keydown", (ev) => {
    if (SLIDER_KEYS.has(ev.key) && !(ev.ctrlKey || ev.metaKey || ev.altKey)) ev.stopPropagation();
  });
  alignSlider(slider, hist);
  return slider;
}

// Put the slider's thumb centre on the histogram's x axis (the thumb is about 16 px wide).
function alignSlider(slider, hist) {
  slider.style.marginLeft = `calc(${(100 * hist.box.left) / hist.W}% - 8px)`;
  slider.style.width = `calc(${(100 * hist.box.width) / hist.W}% + 16px)`;
}

// Plots are laid out for the width they get, but never narrower than this (CSS pixels).
const MIN_PLOT_WIDTH = 220;

// About one x tick per 75 pixels of axis (2 to 7).
function tickCount(axisWidth) {
  return Math.max(2, Math.min(7, Math.floor(axisWidth / 75)));
}

// Call layout(width) with the width of `el` in CSS pixels now (if laid out) and whenever it
// changes. Returns a function that stops watching. (The layout runs in the next animation
// frame, not inside the observer's callback: it changes the height of `el`, which inside
// the callback would be a "ResizeObserver loop".)
function watchWidth(el, layout) {
  let last = 0;
  const check = () => {
    const width = Math.floor(el.getBoundingClientRect().width);
    if (width > 0 && width !== last) {
      last = width;
      layout(width);
    }
  };
  check();
  if (typeof ResizeObserver === "undefined") return () => {};
  const observer = new ResizeObserver(() => requestAnimationFrame(check));
  observer.observe(el);
  return () => observer.disconnect();
}

// Legend of a plot as HTML (it wraps on narrow screens): [{color, text}].
function htmlLegend(parent, items) {
  const legend = htmlEl("div", "adc-legend", "", parent);
  for (const { color, text } of items) {
    const item = htmlEl("span", "adc-legend-item", "", legend);
    const swatch = htmlEl("span", "adc-legend-swatch", "", item);
    swatch.style.background = color;
    swatch.style.borderColor = color;
    item.appendChild(document.createTextNode(text));
  }
  return legend;
}

// The widget's title and, under it, the note saying how the starting threshold was set.
function widgetHeader(root, model) {
  const title = model.get("title");
  if (title) htmlEl("div", "adc-heading", title, root);
  const note = model.get("note");
  if (note) htmlEl("div", "adc-note", note, root);
}

// Text of a threshold on an axis [lo, hi] that must tell values `resolution` apart:
// fixed decimals for ordinary numbers, significant digits for very large or small ones.
function thresholdFormatter(lo, hi, resolution) {
  const mag = Math.max(Math.abs(lo), Math.abs(hi));
  const decimals = Math.max(0, Math.ceil(-Math.log10(resolution)));
  const plain = mag < 1e6 && (mag >= 1e-3 || mag === 0) && decimals <= 6;
  const digits = Math.max(2, Math.min(17, Math.ceil(Math.log10(mag / resolution)) + 1));
  return (t) => {
    if (!Number.isFinite(t)) return String(t);
    return plain ? t.toFixed(decimals) : t.toPrecision(digits);
  };
}

// Front end of adcourse.course.widgets.ScoreMapExplorer.
// Runs after _shared.js (decodeArray, lowerBound, niceTicks, svgEl, htmlEl,
// linearScale, drawAxes, fmt). Python precomputed everything data-dependent
// (model trait `_data`): the image as 8-bit grey levels, the score map as
// uint8 codes of 256 ascending levels, and for every level k the number of
// pixels (and of anomalous pixels) with level >= levels[k]. Here we only look
// up and draw on canvas, so the widget also works in the static book.
//
// Convention: a pixel is DETECTED when score >= threshold; anomalous pixel
// (mask 1) = positive.

const SM_COLORS = {
  tp: [34, 197, 94], // detected anomalous pixel
  fp: [239, 68, 68], // detected normal pixel
  fn: [59, 130, 246], // missed anomalous pixel
  detected: [249, 115, 22], // detected pixel, no mask
  mask: "#facc15", // ground-truth outline
  contour: "#22d3ee", // detected-region outline on the heat map
  normal: "#3b75af",
  anomalous: "#e1812c",
  all: "#6b7280",
};
const SM_ALPHA = 0.6; // opacity of the detection overlay
const SM_HIST_BINS = 64;

function smLoadData(model) {
  const d = model.get("_data");
  const data = {
    h: d.height,
    w: d.width,
    image: decodeArray(d.image), // grey levels 0..255, row-major
    codes: decodeArray(d.codes), // level index of every pixel
    levels: decodeArray(d.levels), // score of each level, ascending
    geAll: decodeArray(d.ge_all), // geAll[k]: pixels with level >= levels[k]
    lut: decodeArray(d.lut), // 256 x RGB colours of the heat map
    nPixels: d.n_pixels,
    range: d.range, // the score axis
    slider: decodeArray(d.slider), // threshold of slider position k: detects levels >= levels[k]
    downsample: d.downsample,
    originalShape: d.original_shape,
    hasMask: "mask" in d,
  };
  if (data.hasMask) {
    data.mask = decodeArray(d.mask);
    data.geAnom = decodeArray(d.ge_anomalous); // anomalous pixels with level >= levels[k]
    data.nAnom = d.n_anomalous;
    data.nNorm = d.n_pixels - d.n_anomalous;
  }
  return data;
}

// Exact counts at threshold t, for the quantised map (= adcourse.metrics.rates).
function smOperatingPoint(data, t) {
  const k = lowerBound(data.levels, t); // first level >= t: pixels with code >= k are detected
  const detected = data.geAll[k];
  const op = { k, detected, fraction: detected / data.nPixels };
  if (data.hasMask) {
    op.tp = data.geAnom[k];
    op.fp = detected - op.tp;
    op.fn = data.nAnom - op.tp;
    op.tn = data.nNorm - op.fp;
    op.tpr = data.nAnom > 0 ? op.tp / data.nAnom : NaN;
    op.fpr = data.nNorm > 0 ? op.fp / data.nNorm : NaN;
  }
  return op;
}

// Outline (pixel edges) of the set {inside[p] != 0} of a w x h grid, scaled by s,
// as one Path2D; edges along a row or column are merged into runs.
function smOutline(inside, w, h, s) {
  const path = new Path2D();
  const at = (x, y) => (x >= 0 && y >= 0 && x < w && y < h ? inside[y * w + x] !== 0 : false);
  for (let y = 0; y <= h; y++) { // horizontal edges between rows y-1 and y
    let start = -1;
    for (let x = 0; x <= w; x++) {
      const edge = x < w && at(x, y - 1) !== at(x, y);
      if (edge && start < 0) start = x;
      if (!edge && start >= 0) {
        path.moveTo(start * s, y * s);
        path.lineTo(x * s, y * s);
        start = -1;
      }
    }
  }
  for (let x = 0; x <= w; x++) { // vertical edges between columns x-1 and x
    let start = -1;
    for (let y = 0; y <= h; y++) {
      const edge = y < h && at(x - 1, y) !== at(x, y);
      if (edge && start < 0) start = y;
      if (!edge && start >= 0) {
        path.moveTo(x * s, start * s);
        path.lineTo(x * s, y * s);
        start = -1;
      }
    }
  }
  return path;
}

// One image panel: a caption and a canvas showing a w x h picture scaled up
// by an integer factor (pixels stay crisp); draw(rgba, outlines) repaints it.
function smPanel(root, data, caption) {
  const wrap = htmlEl("figure", "adc-sm-panel", "", root);
  const cap = htmlEl("figcaption", "adc-sm-caption", caption, wrap);
  const canvas = htmlEl("canvas", "adc-sm-canvas", "", wrap);
  const s = Math.max(1, Math.min(16, Math.ceil(720 / Math.max(data.w, data.h))));
  canvas.width = data.w * s;
  canvas.height = data.h * s;
  canvas.style.aspectRatio = `${data.w} / ${data.h}`;
  const ctx = canvas.getContext("2d");
  const off = document.createElement("canvas");
  off.width = data.w;
  off.height = data.h;
  const offCtx = off.getContext("2d");
  const pixels = offCtx.createImageData(data.w, data.h);
  // line width: about 1.4 CSS pixels once the canvas is shown ~340 px wide
  const lineWidth = Math.max(1, (1.4 * canvas.width) / 340);

  function draw(fill, outlines) {
    fill(pixels.data);
    offCtx.putImageData(pixels, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
    for (const { path, color, dash } of outlines) {
      ctx.save();
      ctx.lineWidth = lineWidth;
      ctx.strokeStyle = color;
      if (dash) ctx.setLineDash([3 * lineWidth, 2 * lineWidth]);
      ctx.stroke(path);
      ctx.restore();
    }
  }

  // pixel under the mouse, or -1
  function pixelAt(ev) {
    const rect = canvas.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - rect.left) / rect.width) * data.w);
    const y = Math.floor(((ev.clientY - rect.top) / rect.height) * data.h);
    return x >= 0 && y >= 0 && x < data.w && y < data.h ? { x, y, p: y * data.w + x } : null;
  }
  return { wrap, cap, canvas, s, draw, pixelAt };
}

// Histogram of the pixel scores per level bin; its x axis carries the colour bar. Laid out
// for the width it is shown at (layout(W)): one SVG unit is one CSS pixel, so its text keeps
// its size on any screen.
function smHistogram(root, data, state) {
  const H = 150;
  const lo = data.range.min, hi = data.range.max;

  // per-level counts of each class (from the cumulative counts)
  const nLevels = data.levels.length;
  const per = (ge, k) => ge[k] - ge[k + 1];
  const perLevel = { all: new Float64Array(nLevels), normal: new Float64Array(nLevels), anomalous: new Float64Array(nLevels) };
  for (let k = 0; k < nLevels; k++) {
    perLevel.all[k] = per(data.geAll, k);
    if (data.hasMask) {
      perLevel.anomalous[k] = per(data.geAnom, k);
      perLevel.normal[k] = perLevel.all[k] - perLevel.anomalous[k];
    }
  }
  const step = data.levels.length > 1 ? data.levels[1] - data.levels[0] : 1;
  const perBin = Math.ceil(nLevels / SM_HIST_BINS);
  const series = data.hasMask
    ? [
      { name: "normal pixels", counts: perLevel.normal, total: data.nNorm, color: SM_COLORS.normal },
      { name: "anomalous pixels", counts: perLevel.anomalous, total: data.nAnom, color: SM_COLORS.anomalous },
    ]
    : [{ name: "all pixels", counts: perLevel.all, total: data.nPixels, color: SM_COLORS.all }];
  const binned = series.map((s) => {
    const out = [];
    for (let b = 0; b * perBin < nLevels; b++) {
      let c = 0;
      for (let k = b * perBin; k < Math.min(nLevels, (b + 1) * perBin); k++) c += s.counts[k];
      out.push(s.total > 0 ? c / s.total : 0); // share of the class's pixels
    }
    return out;
  });
  const binEdge = (b) => Math.max(lo, Math.min(hi, data.levels[0] + (b * perBin - 0.5) * step));

  htmlLegend(root, series.map((s) => ({ color: s.color, text: `${s.name} (n = ${s.total})` })));
  const svg = svgEl("svg", { class: "adc-sm-hist-svg" }, root);
  const colorBar = svgEl("g", {}, svg);
  const axes = svgEl("g", {}, svg);
  const bars = svgEl("g", {}, svg);
  const overlay = svgEl("g", {}, svg);
  const hist = { svg, W: 0, box: null, x: null, marker: null };

  // colour bar under the axis: the heat map's colours at each score
  function drawColorBar(x, barTop) {
    colorBar.replaceChildren();
    const nStrips = 128;
    for (let i = 0; i < nStrips; i++) {
      const k0 = Math.floor((i * nLevels) / nStrips), k1 = Math.floor(((i + 1) * nLevels) / nStrips);
      const x0 = x(Math.max(lo, data.levels[0] + (k0 - 0.5) * step));
      const x1 = x(Math.min(hi, data.levels[0] + (k1 - 0.5) * step));
      const kc = Math.min(nLevels - 1, Math.floor((k0 + k1) / 2));
      const c = `rgb(${data.lut[3 * kc]},${data.lut[3 * kc + 1]},${data.lut[3 * kc + 2]})`;
      if (x1 > x0) svgEl("rect", { x: x0, y: barTop, width: x1 - x0 + 0.4, height: 8, fill: c, "shape-rendering": "crispEdges" }, colorBar);
    }
  }

  function draw() {
    const { box, x } = hist;
    const bottom = box.top + box.height, barTop = bottom + 3;
    axes.replaceChildren();
    bars.replaceChildren();
    const tf = state.log ? (v) => Math.log10(1 + 1000 * v) : (v) => v;
    const yMax = Math.max(1e-12, ...binned.flat().map(tf)) * 1.08;
    const y = linearScale(0, yMax, bottom, box.top);
    const xTicks = niceTicks(lo, hi, tickCount(box.width)).filter((v) => v >= lo && v <= hi);
    const yTicks = state.log ? [] : niceTicks(0, yMax, 3);
    drawAxes(axes, box, x, y, xTicks, yTicks, "", state.log ? "share (log)" : "share");
    // the tick labels sit below the colour bar
    for (const t of axes.querySelectorAll("text.adc-tick")) {
      if (t.getAttribute("text-anchor") === "middle") t.setAttribute("y", String(Number(t.getAttribute("y")) + 11));
    }
    for (const v of xTicks) svgEl("line", { x1: x(v), x2: x(v), y1: barTop + 8, y2: barTop + 12, class: "adc-axis" }, axes);
    const xl = svgEl("text", { x: box.left + box.width / 2, y: H - 3, "text-anchor": "middle", class: "adc-label" }, axes);
    xl.textContent = "pixel anomaly score";
    series.forEach((s, i) => {
      let d = `M${x(binEdge(0))},${y(0)}`;
      binned[i].forEach((v, b) => {
        d += `V${y(tf(v)).toFixed(2)}H${x(binEdge(b + 1)).toFixed(2)}`;
      });
      d += `V${y(0)}Z`;
      svgEl("path", { d, fill: s.color, "fill-opacity": 0.45, stroke: s.color, "stroke-width": 1.2 }, bars);
    });
  }

  hist.layout = (W) => {
    hist.W = W;
    const box = { left: 54, top: 8, width: W - 54 - 16, height: H - 8 - 48 };
    hist.box = box;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    hist.x = linearScale(lo, hi, box.left, box.left + box.width);
    drawColorBar(hist.x, box.top + box.height + 3);
    overlay.replaceChildren(); // threshold line + "detected" region
    hist.marker = thresholdMarker(overlay, box, hist.x, {
      regionClass: "adc-sm-detected", lineTop: box.top - 2, lineBottom: box.top + box.height + 13,
    });
    draw();
  };
  hist.draw = draw;
  hist.update = (t) => hist.marker(t);
  hist.layout(680);
  return hist;
}

// ---------------------------------------------------------------- widget
function render({ model, el }) {
  const data = smLoadData(model);
  const nLevels = data.levels.length;
  const fmtT = thresholdFormatter(data.range.min, data.range.max, (data.range.max - data.range.min) / nLevels / 10);
  const { w, h } = data;
  const n = w * h;
  const state = { log: false };

  const root = htmlEl("div", "adc-widget adc-sm", "", el);
  widgetHeader(root, model);

  // ---- the two panels
  const row = htmlEl("div", "adc-sm-row", "", root);
  const imgPanel = smPanel(row, data, data.hasMask ? "image · detections vs. ground truth" : "image · detected pixels");
  const heatPanel = smPanel(row, data, "score map");
  imgPanel.canvas.classList.add("adc-sm-image");
  heatPanel.canvas.classList.add("adc-sm-heat");
  const maskPath = data.hasMask ? smOutline(data.mask, w, h, imgPanel.s) : null;
  const detected = new Uint8Array(n);

  // ---- legend + hover readout
  const info = htmlEl("div", "adc-sm-info", "", root);
  const legend = htmlEl("div", "adc-sm-legend", "", info);
  const swatch = (color, text, outline = false) => {
    const item = htmlEl("span", "adc-sm-key", "", legend);
    const box = htmlEl("span", outline ? "adc-sm-swatch adc-sm-outline" : "adc-sm-swatch", "", item);
    if (outline) box.style.borderColor = color;
    else box.style.background = `rgba(${color.join(",")},${SM_ALPHA})`;
    item.appendChild(document.createTextNode(text));
    return item;
  };
  if (data.hasMask) {
    swatch(SM_COLORS.tp, "TP");
    swatch(SM_COLORS.fp, "FP");
    swatch(SM_COLORS.fn, "FN");
    swatch(SM_COLORS.mask, "ground truth", true);
  } else {
    swatch(SM_COLORS.detected, "detected");
  }
  swatch(SM_COLORS.contour, "detected region (map)", true);
  const hover = htmlEl("span", "adc-sm-hover", "", info);
  hover.textContent = "hover a pixel for its score";

  // ---- histogram, slider, numbers
  const plot = htmlEl("div", "adc-sm-plot", "", root);
  const hist = smHistogram(plot, data, state);
  const controls = htmlEl("div", "adc-sm-controls", "", plot);
  const slider = thresholdSlider(controls, "adc-sm-slider", data.slider, hist);
  // lay the histogram (and the slider under it) out for the width it gets
  const stopWatching = watchWidth(plot, (width) => {
    hist.layout(Math.max(MIN_PLOT_WIDTH, width));
    alignSlider(slider, hist);
    hist.update(model.get("threshold"));
  });

  const stats = htmlEl("div", "adc-sm-stats", "", root);
  const cells = {};
  const stat = (key, name, help) => {
    const item = htmlEl("span", "adc-sm-stat", "", stats);
    item.title = help;
    htmlEl("span", "adc-sm-name", name, item);
    cells[key] = htmlEl("span", `adc-sm-value adc-sm-${key}`, "", item);
    cells[key].dataset.metric = key;
    return item;
  };
  stat("threshold", "threshold", "a pixel is detected when its score ≥ threshold");
  if (data.hasMask) {
    stat("tpr", "TPR", "detected anomalous pixels / anomalous pixels");
    stat("fpr", "FPR", "detected normal pixels / normal pixels");
  }
  stat("detected", "detected", "detected pixels / all pixels");
  const countsLine = htmlEl("div", "adc-sm-counts", "", root);
  const logLabel = htmlEl("label", "adc-sm-log", "", stats);
  const logBox = htmlEl("input", "", "", logLabel);
  logBox.type = "checkbox";
  logLabel.appendChild(document.createTextNode(" log histogram"));
  logLabel.title = "log scale: shows the few pixels in the tails";

  if (data.downsample > 1) {
    const [H0, W0] = data.originalShape;
    htmlEl("div", "adc-sm-note",
      `Shown at 1/${data.downsample} resolution: ${W0}×${H0} → ${w}×${h} pixels ` +
      `(blocks of ${data.downsample}×${data.downsample}: image mean, score and mask max); ` +
      "the rates refer to the reduced grid.", root);
  }

  function paint(op) {
    const k = op.k;
    for (let p = 0; p < n; p++) detected[p] = data.codes[p] >= k ? 1 : 0;
    const a = SM_ALPHA;
    imgPanel.draw((px) => {
      for (let p = 0; p < n; p++) {
        const g = data.image[p];
        let c = null;
        if (data.hasMask) {
          if (detected[p]) c = data.mask[p] ? SM_COLORS.tp : SM_COLORS.fp;
          else if (data.mask[p]) c = SM_COLORS.fn;
        } else if (detected[p]) c = SM_COLORS.detected;
        const o = 4 * p;
        if (c) {
          px[o] = g * (1 - a) + c[0] * a;
          px[o + 1] = g * (1 - a) + c[1] * a;
          px[o + 2] = g * (1 - a) + c[2] * a;
        } else {
          px[o] = px[o + 1] = px[o + 2] = g;
        }
        px[o + 3] = 255;
      }
    }, maskPath ? [{ path: maskPath, color: SM_COLORS.mask }] : []);
    const outlines = [{ path: smOutline(detected, w, h, heatPanel.s), color: SM_COLORS.contour }];
    if (maskPath) outlines.push({ path: maskPath, color: SM_COLORS.mask, dash: true });
    heatPanel.draw((px) => {
      for (let p = 0; p < n; p++) {
        const c = 3 * data.codes[p], o = 4 * p;
        px[o] = data.lut[c];
        px[o + 1] = data.lut[c + 1];
        px[o + 2] = data.lut[c + 2];
        px[o + 3] = 255;
      }
    }, outlines);
  }

  let lastK = -1;
  function update() {
    const t = model.get("threshold");
    const op = smOperatingPoint(data, t);
    slider.value = String(op.k); // position k detects exactly what t detects (no event fired)
    hist.update(t);
    if (op.k !== lastK) { // detections change only when t crosses a level
      paint(op);
      lastK = op.k;
    }
    cells.threshold.textContent = fmtT(t);
    cells.threshold.dataset.value = String(t); // the exact value, as the model has it
    cells.detected.textContent = `${fmt(100 * op.fraction, 2)} %`;
    if (data.hasMask) {
      cells.tpr.textContent = fmt(op.tpr, 3);
      cells.fpr.textContent = fmt(op.fpr, 4);
      countsLine.textContent =
        `TP ${op.tp} · FP ${op.fp} · FN ${op.fn} · TN ${op.tn} pixels ` +
        `(${data.nAnom} anomalous of ${data.nPixels})`;
    } else {
      countsLine.textContent = `${op.detected} of ${data.nPixels} pixels detected`;
    }
    for (const key of ["tp", "fp", "fn", "tn", "detected"]) {
      if (key in op) countsLine.dataset[key] = String(op[key]);
    }
  }

  function onHover(panel) {
    return (ev) => {
      const px = panel.pixelAt(ev);
      if (!px) return;
      const score = data.levels[data.codes[px.p]];
      let text = `pixel (x ${px.x}, y ${px.y}): score ${fmtT(score)}`;
      if (data.hasMask) text += data.mask[px.p] ? " · anomalous" : " · normal";
      text += score >= model.get("threshold") ? " · detected" : "";
      hover.textContent = text;
    };
  }
  for (const panel of [imgPanel, heatPanel]) {
    panel.canvas.addEventListener("mousemove", onHover(panel));
    panel.canvas.addEventListener("mouseleave", () => { hover.textContent = "hover a pixel for its score"; });
  }

  slider.addEventListener("input", () => {
    model.set("threshold", data.slider[Number(slider.value)]);
    model.save_changes();
  });
  logBox.addEventListener("change", () => {
    state.log = logBox.checked;
    hist.draw();
  });
  model.on("change:threshold", update);
  update();
  return () => {
    model.off("change:threshold", update);
    stopWatching();
  };
}

export default { render };

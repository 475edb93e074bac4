// Front end of adcourse.course.widgets.ThresholdExplorer.
// Runs after _shared.js (decodeArray, lowerBound, niceTicks, svgEl, htmlEl,
// linearScale, drawAxes, fmt). Everything data-dependent was precomputed in
// Python (model trait `_data`); here we only look up and draw, so the widget
// also works in the static book with no kernel.
//
// Convention: a sample is DETECTED when score >= threshold; anomaly = positive.

const COLORS = { normal: "#3b75af", anomalous: "#e1812c" }; // the threshold's colour is in widgets.css

function loadData(model) {
  const d = model.get("_data");
  return {
    scores: decodeArray(d.scores), // distinct scores, ascending
    tp: decodeArray(d.tp), // tp[i]: anomalies with score >= scores[i]
    fp: decodeArray(d.fp), // fp[i]: normal samples with score >= scores[i]
    nPos: d.n_pos,
    nNeg: d.n_neg,
    auc: d.auc,
    edges: decodeArray(d.hist.edges),
    histNormal: decodeArray(d.hist.normal),
    histAnomalous: decodeArray(d.hist.anomalous),
    range: d.range, // the score axis
    slider: decodeArray(d.slider), // threshold of each slider position, ascending
  };
}

// Exact counts and rates at threshold t (same formulas as adcourse.metrics.rates).
function operatingPoint(data, t) {
  const i = lowerBound(data.scores, t); // first distinct score >= t
  const tp = i < data.scores.length ? data.tp[i] : 0;
  const fp = i < data.scores.length ? data.fp[i] : 0;
  const fn = data.nPos - tp;
  const tn = data.nNeg - fp;
  const detections = tp + fp;
  return {
    tp, fp, tn, fn,
    tpr: tp / data.nPos,
    fpr: fp / data.nNeg,
    precision: detections > 0 ? tp / detections : 1.0,
    f1: (2 * tp) / (detections + data.nPos),
  };
}

// ---------------------------------------------------------------- histogram
// The histogram is laid out for the width it is shown at (layout(W), called again when that
// width changes): one SVG unit is one CSS pixel, so its text keeps its size on any screen.
function buildHistogram(root, data, scoreName, state) {
  const H = 236;
  const widths = [];
  for (let i = 0; i + 1 < data.edges.length; i++) widths.push(data.edges[i + 1] - data.edges[i]);
  const series = [
    { name: "normal", counts: data.histNormal, total: data.nNeg, color: COLORS.normal },
    { name: "anomalous", counts: data.histAnomalous, total: data.nPos, color: COLORS.anomalous },
  ];
  htmlLegend(root, series.map((s) => ({ color: s.color, text: `${s.name} (n = ${s.total})` })));
  const svg = svgEl("svg", { class: "adc-te-hist-svg" }, root);
  const axes = svgEl("g", {}, svg);
  const bars = svgEl("g", {}, svg);
  const overlay = svgEl("g", {}, svg);
  const hist = { svg, W: 0, box: null, x: null, marker: null };

  function draw() {
    const { box, x } = hist;
    axes.replaceChildren();
    bars.replaceChildren();
    const density = state.density;
    const heights = series.map((s) =>
      Array.from(s.counts, (c, i) => (density ? c / (s.total * (widths[i] || 1)) : c)),
    );
    const yMax = Math.max(1e-12, ...heights.flat()) * 1.08;
    const y = linearScale(0, yMax, box.top + box.height, box.top);
    const xTicks = niceTicks(data.range.min, data.range.max, tickCount(box.width)).filter(
      (v) => v >= data.range.min && v <= data.range.max,
    );
    drawAxes(axes, box, x, y, xTicks, niceTicks(0, yMax, 4), scoreName, density ? "density" : "count");
    series.forEach((s, k) => {
      // one closed step path per class: shared bins, overlapping, translucent
      let d = `M${x(data.edges[0])},${y(0)}`;
      heights[k].forEach((h, i) => {
        d += `V${y(h)}H${x(data.edges[i + 1])}`;
      });
      d += `V${y(0)}Z`;
      svgEl("path", { d, fill: s.color, "fill-opacity": 0.45, stroke: s.color, "stroke-width": 1.2 }, bars);
    });
  }

  hist.layout = (W) => {
    hist.W = W;
    hist.box = { left: 52, top: 16, width: W - 52 - 14, height: H - 16 - 42 };
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    hist.x = linearScale(data.range.min, data.range.max, hist.box.left, hist.box.left + hist.box.width);
    overlay.replaceChildren(); // threshold line + "detected" region
    hist.marker = thresholdMarker(overlay, hist.box, hist.x, {
      regionClass: "adc-te-detected", lineTop: hist.box.top - 4, lineBottom: hist.box.top + hist.box.height,
    });
    draw();
  };
  hist.draw = draw;
  hist.update = (t) => hist.marker(t);
  hist.layout(440);
  return hist;
}

// ---------------------------------------------------------------- ROC curve
function buildRoc(root, data, onPick) {
  const W = 262, H = 262;
  const box = { left: 48, top: 30, width: W - 48 - 14, height: H - 30 - 42 };
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "adc-te-roc-svg" }, root);
  const x = linearScale(0, 1, box.left, box.left + box.width);
  const y = linearScale(0, 1, box.top + box.height, box.top);
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  drawAxes(svgEl("g", {}, svg), box, x, y, ticks, ticks, "FPR (false alarm rate)", "TPR (detection rate)");
  const title = svgEl("text", { x: box.left + box.width / 2, y: 19, "text-anchor": "middle", class: "adc-title" }, svg);
  title.textContent = `ROC curve, AUC = ${fmt(data.auc, 3)}`;
  svgEl("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "adc-te-chance" }, svg);

  // ROC points from "detect nothing" (0, 0) down the distinct scores to (1, 1);
  // drawn with at most ~2000 vertices, the lookup stays exact.
  const n = data.scores.length;
  const stride = Math.max(1, Math.ceil(n / 2000));
  let d = `M${x(0)},${y(0)}`;
  for (let i = n - 1; i >= 0; i -= stride) d += `L${x(data.fp[i] / data.nNeg).toFixed(1)},${y(data.tp[i] / data.nPos).toFixed(1)}`;
  d += `L${x(1)},${y(1)}`;
  svgEl("path", { d, fill: "none", stroke: COLORS.anomalous, "stroke-width": 2 }, svg);

  const guideH = svgEl("line", { x1: box.left, class: "adc-te-guide" }, svg);
  const guideV = svgEl("line", { y2: box.top + box.height, class: "adc-te-guide" }, svg);
  const dot = svgEl("circle", { r: 5.5, class: "adc-te-dot" }, svg);

  // click on the plot: jump to the nearest operating point (exact threshold)
  svg.addEventListener("click", (ev) => {
    const rect = svg.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) * W) / rect.width;
    const py = ((ev.clientY - rect.top) * H) / rect.height;
    let best = -1; // -1: the "detect nothing" point (0, 0)
    let bestD = (x(0) - px) ** 2 + (y(0) - py) ** 2;
    for (let i = 0; i < n; i++) {
      const dd = (x(data.fp[i] / data.nNeg) - px) ** 2 + (y(data.tp[i] / data.nPos) - py) ** 2;
      if (dd < bestD) { bestD = dd; best = i; }
    }
    onPick(best < 0 ? data.slider[data.slider.length - 1] : data.scores[best]);
  });

  function update(op) {
    const cx = x(op.fpr), cy = y(op.tpr);
    dot.setAttribute("cx", cx);
    dot.setAttribute("cy", cy);
    guideH.setAttribute("x2", cx);
    guideH.setAttribute("y1", cy);
    guideH.setAttribute("y2", cy);
    guideV.setAttribute("x1", cx);
    guideV.setAttribute("x2", cx);
    guideV.setAttribute("y1", cy);
  }
  return { svg, update };
}

// ---------------------------------------------------------------- table
function buildTable(root) {
  const wrap = htmlEl("div", "adc-te-table", "", root);
  const rates = htmlEl("table", "adc-te-rates", "", wrap);
  const cells = {};
  const rows = [
    ["threshold", "threshold", "detected when score ≥ threshold"],
    ["tpr", "TPR (recall)", "detected anomalies / anomalies"],
    ["fpr", "FPR", "detected normal samples / normal samples"],
    ["precision", "precision", "anomalies among detections (1 if none)"],
    ["f1", "F1", "2·TP / (detections + anomalies)"],
  ];
  for (const [key, name, help] of rows) {
    const tr = htmlEl("tr", "", "", rates);
    tr.title = help;
    htmlEl("th", "", name, tr);
    cells[key] = htmlEl("td", `adc-te-${key}`, "", tr);
    cells[key].dataset.metric = key;
  }
  const cm = htmlEl("table", "adc-te-confusion", "", wrap);
  const head = htmlEl("tr", "", "", cm);
  htmlEl("th", "", "", head);
  htmlEl("th", "", "detected", head);
  htmlEl("th", "", "not det.", head);
  const rowA = htmlEl("tr", "", "", cm);
  htmlEl("th", "", "anomalous", rowA);
  cells.tp = htmlEl("td", "adc-te-tp adc-te-good", "", rowA);
  cells.fn = htmlEl("td", "adc-te-fn adc-te-bad", "", rowA);
  const rowN = htmlEl("tr", "", "", cm);
  htmlEl("th", "", "normal", rowN);
  cells.fp = htmlEl("td", "adc-te-fp adc-te-bad", "", rowN);
  cells.tn = htmlEl("td", "adc-te-tn adc-te-good", "", rowN);
  for (const k of ["tp", "fn", "fp", "tn"]) cells[k].dataset.metric = k;
  return { wrap, cells };
}

// ---------------------------------------------------------------- widget
function render({ model, el }) {
  const data = loadData(model);
  const nSteps = data.slider.length - 1;
  const fmtT = thresholdFormatter(data.range.min, data.range.max, (data.range.max - data.range.min) / nSteps);
  const state = { density: false };

  const root = htmlEl("div", "adc-widget adc-te", "", el);
  widgetHeader(root, model);
  const row = htmlEl("div", "adc-te-row", "", root);

  const left = htmlEl("div", "adc-te-left", "", row);
  const hist = buildHistogram(left, data, model.get("score_name"), state);

  const controls = htmlEl("div", "adc-te-controls", "", left);
  const slider = thresholdSlider(controls, "adc-te-slider", data.slider, hist);
  const setThreshold = (t) => {
    model.set("threshold", t);
    model.save_changes();
  };
  const roc = buildRoc(row, data, setThreshold);
  const { wrap: tableWrap, cells } = buildTable(row);
  const densityLabel = htmlEl("label", "adc-te-density", "", tableWrap);
  const density = htmlEl("input", "", "", densityLabel);
  density.type = "checkbox";
  densityLabel.appendChild(document.createTextNode(" histogram as density"));
  densityLabel.title = "normalise each class to unit area (useful when anomalies are rare)";

  // lay the histogram (and the slider under it) out for the width it gets
  const stopWatching = watchWidth(left, (width) => {
    hist.layout(Math.max(MIN_PLOT_WIDTH, width));
    alignSlider(slider, hist);
    hist.update(model.get("threshold"));
  });

  function update() {
    const t = model.get("threshold");
    const op = operatingPoint(data, t);
    // a threshold set from Python: the thumb goes to the first position whose threshold
    // is >= t (setting the value fires no event)
    if (data.slider[Number(slider.value)] !== t) slider.value = String(Math.min(lowerBound(data.slider, t), nSteps));
    hist.update(t);
    roc.update(op);
    cells.threshold.textContent = fmtT(t);
    cells.threshold.dataset.value = String(t); // the exact value, as the model has it
    for (const k of ["tpr", "fpr", "precision", "f1"]) cells[k].textContent = fmt(op[k], 3);
    for (const k of ["tp", "fp", "tn", "fn"]) cells[k].textContent = String(op[k]);
  }

  slider.addEventListener("input", () => setThreshold(data.slider[Number(slider.value)]));
  density.addEventListener("change", () => {
    state.density = density.checked;
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

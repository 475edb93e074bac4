"""Side-by-side comparisons of detectors: AUROC and time on several data sets.

Every chapter ends with a table computed when the book is built. This module
is the one place that fits detectors, times them and lays the results out:

>>> from adcourse.vectors.density import GaussianDetector
>>> from adcourse.data import make_shapes_2d
>>> X, y = make_shapes_2d("blobs", 200, 20, random_state=0)
>>> table = compare({"Gaussian": GaussianDetector}, {"blobs": (X[y == 0], X, y)})
>>> round(table.value("Gaussian", "blobs", "auroc"), 3) > 0.5
True

External estimators (scikit-learn, PyOD) enter through :class:`External`,
which turns their own score into ours (higher = more anomalous).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field

import numpy as np

from adcourse import metrics
from adcourse.validation import check_vectors

__all__ = ["External", "compare", "Table"]

_LABELS = {"auroc": "AUROC", "image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "pro": "PRO"}


class External:
    """Wrap a third-party estimator into the course's protocol.

    Parameters
    ----------
    estimator : object
        Anything with ``fit(X)``.
    score : callable ``(fitted_estimator, X) -> scores``
        Must return *higher = more anomalous*. For scikit-learn's
        ``score_samples`` (higher = more normal) pass
        ``lambda est, X: -est.score_samples(X)``; for PyOD,
        ``lambda est, X: est.decision_function(X)`` (already higher = more anomalous).
    """

    def __init__(self, estimator, score):
        self.estimator = estimator
        self.score = score

    def fit(self, X, y=None):
        self.estimator.fit(check_vectors(X))
        return self

    def anomaly_score(self, X):
        return np.asarray(self.score(self.estimator, check_vectors(X)), dtype=np.float64)


@dataclass(repr=False)
class Table:
    """Results of :func:`compare`: one row per (method, data set).

    ``measures`` names the quality measures of each row (``("auroc",)`` for
    vectors; ``("image_auroc", "pixel_auroc", "pro")`` for images); each row also
    holds ``fit_s`` and ``score_s``, or ``error``.
    """

    rows: list = field(default_factory=list)
    measures: tuple = ("auroc",)

    def value(self, method, dataset, measure):
        """One number of the table."""
        for r in self.rows:
            if r["method"] == method and r["dataset"] == dataset:
                return r[measure]
        raise KeyError(f"no result for method {method!r} on data set {dataset!r}")

    @property
    def methods(self):
        return list(dict.fromkeys(r["method"] for r in self.rows))

    @property
    def datasets(self):
        return list(dict.fromkeys(r["dataset"] for r in self.rows))

    def _columns(self):
        return [(d, m) for d in self.datasets for m in self.measures]

    def _cell(self, method, dataset, measure):
        """(text, error message or None) of one cell, 3 decimals."""
        try:
            r = next(r for r in self.rows if r["method"] == method and r["dataset"] == dataset)
        except StopIteration:
            return "", None
        if r.get("error"):
            return "error", r["error"]
        return f"{r[measure]:.3f}", None

    def total_time(self, method):
        """Fit + score seconds of one method, summed over the data sets."""
        return sum(r.get("fit_s", 0.0) + r.get("score_s", 0.0) for r in self.rows if r["method"] == method)

    def _label(self, dataset, measure):
        return dataset if len(self.measures) == 1 else f"{dataset}: {_LABELS.get(measure, measure)}"

    def __repr__(self):
        return str(self)

    def __str__(self):
        width = max(len(m) for m in self.methods) + 2
        cols = self._columns()
        labels = [self._label(d, m)[:22] for d, m in cols]
        colw = max(8, max(len(label) for label in labels) + 2)
        lines = ["".ljust(width) + "".join(label.rjust(colw) for label in labels) + "  time (s)"]
        for meth in self.methods:
            cells = "".join(self._cell(meth, d, m)[0].rjust(colw) for d, m in cols)
            lines.append(meth.ljust(width) + cells + f"{self.total_time(meth):10.2f}")
        return "\n".join(lines)

    def _repr_html_(self):
        cols = self._columns()
        best = {}
        for d, m in cols:
            values = [float(t) for t, _ in (self._cell(x, d, m) for x in self.methods)
                      if t not in ("", "error")]
            best[d, m] = f"{max(values):.3f}" if values else None
        out = ['<div style="overflow-x: auto">',
               '<table class="adcourse-compare" style="white-space: nowrap; font-size: 0.85em">',
               "<thead>"]
        if len(self.measures) > 1:
            out.append("<tr><th></th>" + "".join(
                f'<th colspan="{len(self.measures)}" style="text-align: center">{html.escape(d)}</th>'
                for d in self.datasets) + "<th></th></tr>")
            out.append("<tr><th>method</th>" + "".join(
                f"<th>{html.escape(_LABELS.get(m, m))}</th>" for _, m in cols) + "<th>time (s)</th></tr>")
        else:
            out.append("<tr><th>method</th>" + "".join(
                f"<th>{html.escape(d)}</th>" for d, _ in cols) + "<th>time (s)</th></tr>")
        out.append("</thead><tbody>")
        for meth in self.methods:
            out.append(f"<tr><td>{html.escape(meth)}</td>")
            for d, m in cols:
                text, err = self._cell(meth, d, m)
                title = f' title="{html.escape(err)}"' if err else ""
                text = f"<b>{text}</b>" if text == best[d, m] else text
                out.append(f"<td{title}>{text}</td>")
            out.append(f"<td>{self.total_time(meth):.2f}</td></tr>")
        out.append("</tbody></table></div>")
        note = ("<p><small>Bold: best of the column (ties included); time: fit + score, "
                "summed over the data sets.</small></p>")
        return "".join(out) + note


def _evaluate(det, train, test, fit_s=None):
    """Fit ``det`` (unless ``fit_s`` says it was fitted already) and return its measures and times."""
    t0 = time.perf_counter()
    if fit_s is None:
        det.fit(train)
    t1 = time.perf_counter()
    if hasattr(test, "masks"):  # an ImageSet: image and pixel measures from the maps
        maps = det.anomaly_map(test.images)
        t2 = time.perf_counter()
        image_scores = maps.reshape(len(maps), -1).max(axis=1)
        out = {
            "image_auroc": metrics.roc_auc(image_scores, test.labels),
            "pixel_auroc": metrics.pixel_roc_auc(maps, test.masks),
            "pro": metrics.pro_auc(maps, test.masks),
        }
    else:
        X_test, y_test = test
        scores = det.anomaly_score(X_test)
        t2 = time.perf_counter()
        out = {"auroc": metrics.roc_auc(scores, y_test)}
    out.update(fit_s=t1 - t0 if fit_s is None else float(fit_s), score_s=t2 - t1)
    return out


def compare(methods, datasets, fitted=None):
    """Fit every method on every data set; record quality measures and times.

    Parameters
    ----------
    methods : dict name -> callable returning a fresh detector
        e.g. ``{"kNN": KNNDetector, "IF (sklearn)": lambda: External(...)}``.
    datasets : dict name -> (train, test)
        Vectors: ``train`` = ``X_train`` (normal, or contaminated, samples) and
        ``test`` = ``(X_test, y_test)`` with ``y_test = 1`` for anomalies; the
        measure is ``auroc``. Images: ``train`` = normal images (n, H, W) and
        ``test`` = an :class:`adcourse.data.ImageSet`; the measures are
        ``image_auroc`` (image score = max of the map), ``pixel_auroc`` and
        ``pro`` (up to FPR 0.3). A 3-tuple ``(X_train, X_test, y_test)`` is
        accepted for vectors.
    fitted : dict (method name, data set name) -> (detector, fit seconds), optional
        Detectors already fitted on that data set's training data (earlier on
        the page, say): they are scored as they are, without refitting, and the
        recorded fit time is reported. Saves refitting expensive models.

    Returns
    -------
    Table
        A failure of one method on one data set is recorded as an error in its
        cell (its message in the cell's tooltip); the others still run.
    """
    unknown = [k for k in (fitted or {}) if k[0] not in methods or k[1] not in datasets]
    if unknown:
        raise ValueError(f"fitted has keys that are not (method, data set) pairs of the table: {unknown}")
    rows, images = [], None
    for dname, spec in datasets.items():
        train, test = (spec[0], spec[1:]) if len(spec) == 3 else spec
        is_images = hasattr(test, "masks")
        if images is None:
            images = is_images
        elif images != is_images:
            raise ValueError("datasets must be all vector sets or all image sets, not a mix")
        for mname, make in methods.items():
            row = {"method": mname, "dataset": dname}
            try:
                if (mname, dname) in (fitted or {}):
                    det, fit_s = fitted[(mname, dname)]
                    row.update(_evaluate(det, train, test, fit_s))
                else:
                    row.update(_evaluate(make(), train, test))
            except Exception as exc:  # one failure must not hide the other results
                row.update(error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
    measures = ("image_auroc", "pixel_auroc", "pro") if images else ("auroc",)
    return Table(rows, measures)

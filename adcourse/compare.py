"""Side-by-side comparisons of detectors: AUROC and time on several data sets.

Every chapter ends with a table computed when the book is built. This module
is the one place that fits detectors, times them and lays the results out:

>>> from adcourse.density import GaussianDetector
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

from . import metrics
from .validation import check_vectors

__all__ = ["External", "compare", "Table"]


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
    """Results of :func:`compare`: one row per (method, data set)."""

    rows: list = field(default_factory=list)
    measures: tuple = ("auroc", "fit_s", "score_s")

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

    def _cell(self, method, dataset):
        """(text, error message or None) of one cell: the main measure, 3 decimals."""
        try:
            r = next(r for r in self.rows if r["method"] == method and r["dataset"] == dataset)
        except StopIteration:
            return "", None
        if r.get("error"):
            return "error", r["error"]
        return f"{r[self.measures[0]]:.3f}", None

    def total_time(self, method):
        """Fit + score seconds of one method, summed over the data sets."""
        return sum(r.get("fit_s", 0.0) + r.get("score_s", 0.0) for r in self.rows if r["method"] == method)

    def __repr__(self):
        return str(self)

    def __str__(self):
        width = max(len(m) for m in self.methods) + 2
        head = "".ljust(width) + "".join(d[:14].rjust(16) for d in self.datasets) + "  time (s)"
        lines = [head]
        for m in self.methods:
            cells = "".join(self._cell(m, d)[0].rjust(16) for d in self.datasets)
            lines.append(m.ljust(width) + cells + f"{self.total_time(m):10.2f}")
        return "\n".join(lines)

    def _repr_html_(self):
        best = {}
        for d in self.datasets:
            texts = [self._cell(m, d)[0] for m in self.methods]
            values = [float(t) for t in texts if t not in ("", "error")]
            best[d] = f"{max(values):.3f}" if values else None
        out = ['<div style="overflow-x: auto">',
               '<table class="adcourse-compare" style="white-space: nowrap; font-size: 0.85em">',
               "<thead><tr><th>method</th>"]
        out += [f"<th>{html.escape(d)}</th>" for d in self.datasets]
        out.append("<th>time (s)</th></tr></thead><tbody>")
        for m in self.methods:
            out.append(f"<tr><td>{html.escape(m)}</td>")
            for d in self.datasets:
                text, err = self._cell(m, d)
                title = f' title="{html.escape(err)}"' if err else ""
                text = f"<b>{text}</b>" if text == best[d] else text
                out.append(f"<td{title}>{text}</td>")
            out.append(f"<td>{self.total_time(m):.2f}</td></tr>")
        out.append("</tbody></table></div>")
        note = (f"<p><small>Cells: {self.measures[0]}; bold: best of the column (ties included); "
                "time: fit + score, summed over the data sets.</small></p>")
        return "".join(out) + note


def compare(methods, datasets):
    """Fit every method on every data set; record AUROC and times.

    Parameters
    ----------
    methods : dict name -> callable returning a fresh detector
        e.g. ``{"kNN": KNNDetector, "IF (sklearn)": lambda: External(...)}``.
    datasets : dict name -> (X_train, X_test, y_test)
        ``X_train`` normal (or contaminated) training data; ``y_test`` 1 = anomaly.

    Returns
    -------
    Table
        A failure of one method on one data set is recorded as an error in its
        cell (its message in the cell's tooltip); the others still run.
    """
    table = Table()
    for dname, (X_train, X_test, y_test) in datasets.items():
        for mname, make in methods.items():
            row = {"method": mname, "dataset": dname}
            try:
                det = make()
                t0 = time.perf_counter()
                det.fit(X_train)
                t1 = time.perf_counter()
                scores = det.anomaly_score(X_test)
                t2 = time.perf_counter()
                row.update(auroc=metrics.roc_auc(scores, y_test), fit_s=t1 - t0, score_s=t2 - t1)
            except Exception as exc:  # one failure must not hide the other results
                row.update(error=f"{type(exc).__name__}: {exc}")
            table.rows.append(row)
    return table

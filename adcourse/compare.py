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

:func:`one_class` runs the **one-class protocol** of chapters 2 and 6-10 (each
class of a labelled data set normal in turn, several seeds) and returns a
:class:`OneClassTable` of AUROCs with their spread over the seeds.

A book's main comparison on several data sets runs on several seeds, each drawing
the data and initialising the detectors (:func:`compare_seeds`): every cell is then
``mean ± spread`` (the standard deviation over the seeds), and
:meth:`SeedTable.clearly_better` says whether a difference is larger than its spread
over the seeds (the seeds pair the methods: the test is on the per-seed differences),
the only kind of difference the text may draw a conclusion from.

**Results shared between chapters.** A chapter that computed a table saves it with
one line, ``save_results("ch05-nanofibres", table)``; the closing chapter reads it
back with :func:`load_results` (or :func:`cached`, which computes what is missing)
instead of training everything again. The results are kept per *version of the
sources* (the package and the book's chapters): a change to either makes the old
results invisible, so a chapter never shows numbers of an older version.
:func:`result_rows` turns any table into uniform rows (method, data set, measure,
mean, spread, times) for a benchmark on one page.
"""

from __future__ import annotations

import hashlib
import html
import os
import pickle
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adcourse import metrics
from adcourse.validation import check_vectors

__all__ = ["External", "compare", "compare_seeds", "Table", "SeedTable", "one_class", "OneClassTable",
           "save_results", "load_results", "saved_results", "cached", "results_folder", "result_rows",
           "evaluation_key"]

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
    random_state : int, optional
        Set as the wrapped estimator's ``random_state`` (it must have one). Whether
        given or not, an estimator with a ``random_state`` parameter shows it through
        :meth:`get_params` / :meth:`set_params`, so that :func:`compare_seeds` and
        :func:`one_class` seed a library's estimator as they seed the course's detectors.
    """

    def __init__(self, estimator, score, random_state=None):
        self.estimator = estimator
        self.score = score
        if random_state is not None:
            self.set_params(random_state=random_state)

    def _inner_params(self):
        get = getattr(self.estimator, "get_params", None)
        return get(deep=False) if callable(get) else {}

    def get_params(self, deep=False):
        """``estimator`` and ``score``, and the estimator's ``random_state`` where it has one."""
        params = {"estimator": self.estimator, "score": self.score}
        inner = self._inner_params()
        if "random_state" in inner:
            params["random_state"] = inner["random_state"]
        return params

    def set_params(self, **params):
        """Set ``estimator``, ``score`` or the wrapped estimator's ``random_state``."""
        for key, value in params.items():
            if key in ("estimator", "score"):
                setattr(self, key, value)
            elif key == "random_state" and "random_state" in self._inner_params():
                self.estimator.set_params(random_state=value)
            else:
                raise ValueError(f"External({type(self.estimator).__name__}) has no parameter {key!r}; "
                                 "it has estimator, score" + (", random_state" if "random_state" in
                                                               self._inner_params() else ""))
        return self

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
        pixel_auroc, pro = metrics.pixel_measures(maps, test.masks)
        out = {"image_auroc": metrics.roc_auc(image_scores, test.labels),
               "pixel_auroc": pixel_auroc, "pro": pro}
    else:
        X_test, y_test = test
        scores = det.anomaly_score(X_test)
        t2 = time.perf_counter()
        out = {"auroc": metrics.roc_auc(scores, y_test)}
    out.update(fit_s=t1 - t0 if fit_s is None else float(fit_s), score_s=t2 - t1)
    return out


def compare(methods, datasets, fitted=None, reuse=None):
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
    reuse : dict source -> table, optional
        Tables computed earlier (:class:`Table` or :class:`SeedTable`, e.g. another
        chapter's :func:`load_results`; None values are ignored) whose cells are taken
        over instead of being computed again when they measured **the same detector on
        the same data**: same class and parameters (nested detectors included), same
        training array and same test set, byte for byte (see :func:`evaluation_key`).
        A detector whose parameters are not plain values (a network, an array, a
        function) is never matched. A taken-over row keeps its measured times and
        records ``reused = source`` (the source where it was computed, when that table
        had taken it over itself); the rendered :class:`SeedTable` names them.

    Data sets that share their training data (the same array object, e.g. one
    training set and several test sets) share one fitted detector per method: it
    is fitted once, and its fit time is counted once (in the first of them).

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
    shared = {}  # (method, id of the training data) -> fitted detector
    known = _reusable_rows(reuse)
    for dname, spec in datasets.items():
        train, test = (spec[0], spec[1:]) if len(spec) == 3 else spec
        is_images = hasattr(test, "masks")
        if images is None:
            images = is_images
        elif images != is_images:
            raise ValueError("datasets must be all vector sets or all image sets, not a mix")
        data_key = None
        for mname, make in methods.items():
            row = {"method": mname, "dataset": dname}
            try:
                if (mname, dname) in (fitted or {}):
                    det, fit_s = fitted[(mname, dname)]
                    row.update(_evaluate(det, train, test, fit_s))
                    shared.setdefault((mname, id(train)), det)
                elif (mname, id(train)) in shared:  # fitted on these very data already
                    row.update(_evaluate(shared[(mname, id(train))], train, test, 0.0))
                else:
                    det = make()
                    data_key = data_key or _data_key(train, test)
                    key = evaluation_key(det, data_key=data_key)
                    if key is not None and key in known:
                        source, earlier = known[key]
                        row.update({k: v for k, v in earlier.items() if k not in ("method", "dataset", "reused")},
                                   reused=earlier.get("reused") or source)  # where it was computed
                        rows.append(row)
                        continue
                    row.update(_evaluate(det, train, test), key=key)
                    shared[(mname, id(train))] = det
            except Exception as exc:  # one failure must not hide the other results
                row.update(error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
    measures = ("image_auroc", "pixel_auroc", "pro") if images else ("auroc",)
    return Table(rows, measures)


def evaluation_key(detector, train=None, test=None, data_key=None):
    """A fingerprint of "this unfitted detector, fitted on ``train``, scored on ``test``", or None.

    SHA-1 of the detector's class and parameters (nested detectors' too, recursively)
    and of the bytes of the training array and of the test set (its images, masks and
    labels, or ``(X_test, y_test)``). None when a parameter is not a plain value (None,
    a number, a string, or tuples / lists of them, or a nested detector): a network or
    an array parameter has no description that would tell two of them apart. Two
    evaluations with one key give the same figures, since the detectors are
    deterministic for their parameters (``random_state`` among them), and tables are
    only shared between runs of the same sources (:func:`load_results`).
    """
    setting = _setting(detector)
    data_key = data_key or _data_key(train, test)
    if setting is None or data_key is None:
        return None
    return hashlib.sha1(repr((setting, data_key)).encode()).hexdigest()


def _setting(det):
    """(qualified class name, sorted plain parameters) of a detector, or None."""
    get = getattr(det, "get_params", None)
    if not callable(get):
        return None
    params = []
    for name, value in sorted(get(deep=False).items()):
        if callable(getattr(value, "get_params", None)):
            value = _setting(value)
            if value is None:
                return None
        elif not _plain(value):
            return None
        params.append((name, value))
    return f"{type(det).__module__}.{type(det).__qualname__}", tuple(params)


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str, np.integer, np.floating)):
        return True
    return isinstance(value, (tuple, list)) and all(_plain(v) for v in value)


def _data_key(train, test):
    """SHA-1 of the training data and of the test set (their shapes, dtypes and bytes), or
    None for data that are not arrays of numbers (nothing is reused then)."""
    digest = hashlib.sha1()
    parts = [train] + ([test.images, test.masks, test.labels] if hasattr(test, "masks") else list(test))
    for part in parts:
        try:
            arr = np.ascontiguousarray(part)
        except (TypeError, ValueError):  # e.g. images of different sizes
            return None
        if arr.dtype == object:
            return None
        digest.update(f"{arr.shape}{arr.dtype}".encode())
        digest.update(arr.view(np.uint8).ravel())
    return digest.hexdigest()


def _reusable_rows(reuse):
    """key -> (source, row) of the error-free rows of earlier tables."""
    known = {}
    for source, table in (reuse or {}).items():
        if table is None:
            continue
        if not isinstance(table, (Table, SeedTable)):
            raise TypeError(f"reuse[{source!r}] must be a Table or a SeedTable (or None), "
                            f"got {type(table).__name__}")
        for part in table.tables if isinstance(table, SeedTable) else [table]:
            for row in part.rows:
                if row.get("key") and not row.get("error"):
                    known.setdefault(row["key"], (source, row))
    return known


# --------------------------------------------------------------------------- #
# the one-class protocol: every class normal in turn, several seeds
# --------------------------------------------------------------------------- #
@dataclass(repr=False)
class OneClassTable:
    """Results of :func:`one_class`: ``auroc[m, c, s]`` for method ``m``, normal class ``c``, seed ``s``.

    The **spread** is the sample standard deviation (``ddof=1``) over the seeds:
    of a class's AUROC (:meth:`class_spread`), or of the mean over the classes
    (:meth:`spread`). A failed run is NaN in ``auroc`` and its message is in
    ``errors[(method, class, seed)]``.
    """

    methods: list
    classes: list
    seeds: list
    auroc: np.ndarray
    seconds: np.ndarray
    errors: dict = field(default_factory=dict)

    def _index(self, method):
        try:
            return self.methods.index(method)
        except ValueError:
            raise KeyError(f"no method {method!r}; the table has {self.methods}") from None

    @staticmethod
    def _sd(values, axis=-1):
        return np.std(values, axis=axis, ddof=1) if np.shape(values)[axis] > 1 else np.zeros(np.shape(values)[:-1])

    def class_mean(self, method):
        """Mean AUROC of each class over the seeds, shape (n_classes,)."""
        return self.auroc[self._index(method)].mean(axis=1)

    def class_spread(self, method):
        """Standard deviation of each class's AUROC over the seeds, shape (n_classes,)."""
        return self._sd(self.auroc[self._index(method)])

    def per_seed(self, method):
        """Mean AUROC over the classes, one value per seed, shape (n_seeds,)."""
        return self.auroc[self._index(method)].mean(axis=0)

    def mean(self, method):
        """Mean AUROC over all classes and seeds."""
        return float(self.per_seed(method).mean())

    def spread(self, method):
        """Standard deviation over the seeds of the mean AUROC over the classes."""
        return float(self._sd(self.per_seed(method)))

    def time(self, method):
        """Fit + score seconds of one method, summed over classes and seeds."""
        return float(self.seconds[self._index(method)].sum())

    def frame(self, digits=3):
        """A pandas DataFrame: one row per method, "mean ± sd" per class, the overall mean and the time."""
        import pandas as pd

        rows = {}
        for m in self.methods:
            cells = [f"{a:.{digits}f} ± {b:.{digits}f}" for a, b in zip(self.class_mean(m), self.class_spread(m))]
            cells.append(f"{self.mean(m):.{digits}f} ± {self.spread(m):.{digits}f}")
            cells.append(f"{self.time(m):.1f}")
            rows[m] = cells
        columns = [str(c) for c in self.classes] + ["mean", "time (s)"]
        return pd.DataFrame.from_dict(rows, orient="index", columns=columns)

    def __repr__(self):
        return str(self)

    def __str__(self):
        width = max(len(m) for m in self.methods) + 2
        lines = [f"{'':{width}}{'mean AUROC':>12}{'sd (seeds)':>12}{'time (s)':>10}"]
        for m in self.methods:
            lines.append(f"{m:{width}}{self.mean(m):12.3f}{self.spread(m):12.3f}{self.time(m):10.1f}")
        return "\n".join(lines)

    def _repr_html_(self):
        note = (f"<p><small>AUROC, mean ± standard deviation over {len(self.seeds)} seeds (split and "
                "model); mean: over the classes; time: fit + score, summed.</small></p>")
        return ('<div style="overflow-x: auto">' + self.frame().to_html() + "</div>" + note)


def one_class(methods, loader, *, classes=range(10), seeds=(0, 1, 2), inputs="vectors", scores=None,
              keep=None, n_jobs=1):
    """The one-class protocol: each class normal in turn, for several seeds; AUROC of every run.

    For every normal class ``c`` and seed ``s``: ``split = loader(c, random_state=s)``
    (a :class:`adcourse.data.DigitsSplit`-like object: ``X_train``/``X_test`` or
    ``images_train``/``images_test``, and ``y_test`` with 1 = not class ``c``);
    each method's detector is made fresh, its ``random_state`` (if it has one)
    set to ``s``, fitted on the normal training data and scored on the test set.

    Parameters
    ----------
    methods : dict name -> callable returning a fresh detector
        As for :func:`compare` (e.g. ``{"kNN": KNNDetector}``).
    loader : callable ``(normal_class, random_state=seed) -> split``
        e.g. ``adcourse.data.load_digits_oneclass`` or
        ``functools.partial(load_digits_oneclass, size=28)`` for networks that
        need larger images.
    classes : iterable, default range(10)
        The classes taken as normal in turn.
    seeds : iterable of int, default (0, 1, 2)
        Seeds of the split and of the detectors (at least 3 for a spread that means something).
    inputs : {"vectors", "images"}, default "vectors"
        Feed the detectors ``X_train`` / ``X_test`` (n, d), or ``images_train`` /
        ``images_test`` (n, H, W).
    scores : dict name -> (method, callable ``(fitted_detector, test) -> scores``), optional
        Further scores of a method's fitted detector, recorded as rows of their own
        without refitting, e.g. ``{"GEOM (simple)": ("GEOM", lambda det, X:
        det.simple_score(X))}``; their time is the scoring time only.
    keep : dict, optional
        Filled with ``keep[(method, class, seed)] = fitted detector`` for every run of a method
        (not of the extra scores) that fitted and scored, to score other images later without
        training again.
    n_jobs : int, default 1
        Runs (one per class and seed) done side by side in this many worker processes
        (joblib), each with ``1 / n_jobs`` of the CPU threads. Every run is seeded, so the
        AUROCs do not depend on the order of the runs; they may differ slightly from a
        serial run's, as networks trained on fewer threads add up their sums in another
        order. The times are measured in the workers, which share the machine.

    Returns
    -------
    OneClassTable

    Examples
    --------
    >>> from adcourse.data import load_digits_oneclass
    >>> from adcourse.vectors.distance import KNNDetector
    >>> t = one_class({"kNN": KNNDetector}, load_digits_oneclass, classes=[0, 1], seeds=[0, 1])
    >>> t.auroc.shape, round(t.mean("kNN"), 2) > 0.9
    ((1, 2, 2), True)
    """
    if inputs not in ("vectors", "images"):
        raise ValueError(f"inputs must be 'vectors' or 'images', got {inputs!r}")
    if not callable(loader):
        raise TypeError(f"loader must be callable as loader(normal_class, random_state=seed), got {loader!r}")
    classes, seeds = list(classes), [int(s) for s in seeds]
    if not classes or not seeds:
        raise ValueError(f"classes and seeds must not be empty, got {classes} and {seeds}")
    scores = dict(scores or {})
    unknown = {k: v for k, v in scores.items() if not (isinstance(v, tuple) and len(v) == 2 and v[0] in methods
                                                       and callable(v[1]))}
    if unknown or set(scores) & set(methods):
        raise ValueError("scores must map new names to (method of methods, callable(det, test)), got "
                         f"{unknown or sorted(set(scores) & set(methods))}")
    names = list(methods) + list(scores)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    if keep is not None and not isinstance(keep, dict):
        raise TypeError(f"keep must be a dict to fill with the fitted detectors, got {type(keep).__name__}")
    keys = ("X_train", "X_test") if inputs == "vectors" else ("images_train", "images_test")
    runs = [(ci, c, si, seed) for ci, c in enumerate(classes) for si, seed in enumerate(seeds)]
    args = (methods, scores, loader, keys, keep is not None)
    if n_jobs == 1:
        results = [_one_class_run(*args, c, seed) for _, c, _, seed in runs]
    else:
        from joblib import Parallel, delayed
        from joblib.externals.loky import get_reusable_executor

        try:
            results = Parallel(n_jobs=int(n_jobs))(delayed(_one_class_run)(*args, c, seed) for _, c, _, seed in runs)
        finally:   # idle workers left behind slow down what runs next (about 15 % measured)
            get_reusable_executor().shutdown(wait=True)
    auroc = np.full((len(names), len(classes), len(seeds)), np.nan)
    seconds = np.zeros_like(auroc)
    errors = {}
    for (ci, c, si, seed), (values, times, failed, fitted) in zip(runs, results):
        auroc[:, ci, si], seconds[:, ci, si] = values, times
        errors.update(failed)
        if keep is not None:
            keep.update({(name, c, seed): det for name, det in fitted.items()})
    return OneClassTable(names, classes, seeds, auroc, seconds, errors)


def _one_class_run(methods, scores, loader, keys, keep, c, seed):
    """One run of :func:`one_class`: class ``c`` normal, ``seed``. Returns the AUROC and the
    seconds of every method and extra score (in that order), the errors, the fitted detectors."""
    split = loader(c, random_state=seed)
    train, test, y = getattr(split, keys[0]), getattr(split, keys[1]), split.y_test
    names = list(methods) + list(scores)
    values, times, errors, fitted = np.full(len(names), np.nan), np.zeros(len(names)), {}, {}
    for mi, name in enumerate(names):
        t0 = time.perf_counter()
        try:
            if name in scores:
                base, score = scores[name]
                if base not in fitted:
                    raise RuntimeError(f"method {base!r} failed on this run")
                v = score(fitted[base], test)
            else:
                det = _seeded(methods[name](), seed)
                v = det.fit(train).anomaly_score(test)
                fitted[name] = det
            values[mi] = metrics.roc_auc(v, y)
        except Exception as exc:  # one failure must not hide the other results
            errors[(name, c, seed)] = f"{type(exc).__name__}: {exc}"
        times[mi] = time.perf_counter() - t0
    return values, times, errors, fitted if keep else {}


def compare_seeds(methods, datasets, seeds=(0, 1, 2), fitted=None, reuse=None):
    """:func:`compare` repeated on data drawn with several seeds.

    Parameters
    ----------
    methods : dict name -> callable returning a fresh detector
        As for :func:`compare`. On each seed, a fresh detector's ``random_state`` (if it
        has one) is set to the seed, as :func:`one_class` does: the seed draws the data
        *and* initialises the detector, so the spread covers both.
    datasets : callable ``seed -> dict name -> (train, test)``
        Draws every data set of the table with one seed (training, validation and
        test data all from that seed), e.g.
        ``lambda s: {"nanofibres": (make_nanofibers(8, random_state=s).images, ...)}``.
        A data set that exists once (real images) may be returned for one seed only: its
        cells then show that single value, without a spread.
    seeds : sequence of int
        At least 3 for a table that the text draws conclusions from.
    fitted : dict (method, data set, seed) -> (detector, fit seconds), optional
        Detectors already fitted on that seed's training data (not refitted).
    reuse : dict source -> table, optional
        Earlier tables whose cells of the same detector on the same data are taken over
        (see :func:`compare`).

    Returns
    -------
    SeedTable
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 1 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, got {seeds}")
    tables = []
    for seed in seeds:
        done = {(m, d): v for (m, d, s), v in (fitted or {}).items() if s == seed}
        fresh = {m: None if make is None else (lambda make=make, seed=seed: _seeded(make(), seed))
                 for m, make in methods.items()}
        tables.append(compare(fresh, datasets(seed), fitted=done, reuse=reuse))
    return SeedTable(tables, seeds)


def _seeded(det, seed):
    """``det`` with its ``random_state`` (if it has one) set to ``seed``: a seed of a table
    draws the data *and* initialises the detector, so that the spread over seeds includes both."""
    if hasattr(det, "get_params") and "random_state" in det.get_params(deep=False):
        det.set_params(random_state=seed)
    return det


class SeedTable:
    """Results of :func:`compare_seeds`: one :class:`Table` per seed, summarised.

    Every cell is ``mean ± spread`` over the seeds, the spread being the sample
    standard deviation (``ddof=1``). Rendered in a notebook as an HTML table
    (a pandas ``DataFrame``) that scrolls sideways when it is wider than the page.
    """

    def __init__(self, tables, seeds):
        self.tables = list(tables)
        self.seeds = list(seeds)
        self.measures = self.tables[0].measures
        self.methods = self.tables[0].methods
        self.datasets = list(dict.fromkeys(d for t in self.tables for d in t.datasets))
        self.hidden = set()

    def hide(self, dataset=None, measure=None):
        """Leave out of the rendered table the columns of ``dataset`` and/or ``measure``
        (e.g. ``hide(measure="image_auroc")``); the numbers stay available. Returns self."""
        for d in self.datasets:
            for m in self.measures:
                if (dataset is None or d == dataset) and (measure is None or m == measure):
                    self.hidden.add((d, m))
        return self

    def select(self, datasets=None, measures=None):
        """A view of the table showing only ``datasets`` and ``measures`` (the same numbers:
        one computation, several narrower tables that fit the page)."""
        view = SeedTable(self.tables, self.seeds)
        view.hidden = set(self.hidden) | {(d, m) for d in self.datasets for m in self.measures
                                          if (datasets is not None and d not in datasets)
                                          or (measures is not None and m not in measures)}
        return view

    def _shown(self):
        return [(d, m) for d in self.datasets for m in self.measures if (d, m) not in self.hidden]

    def values(self, method, dataset, measure):
        """The measure on every seed (NaN where the method failed)."""
        out = []
        for t in self.tables:
            try:
                v = t.value(method, dataset, measure)
            except KeyError:
                v = np.nan
            out.append(np.nan if v is None else float(v))
        return np.array(out)

    def _finite(self, method, dataset, measure):
        v = self.values(method, dataset, measure)
        return v[np.isfinite(v)]

    def mean(self, method, dataset, measure):
        """Mean over the seeds that measured it (NaN if none did)."""
        v = self._finite(method, dataset, measure)
        return float(np.mean(v)) if len(v) else float("nan")

    def spread(self, method, dataset, measure):
        """Standard deviation over the seeds (0 when measured with a single seed)."""
        v = self._finite(method, dataset, measure)
        return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

    def text(self, method, dataset, measure, digits=3):
        """``"0.912 ± 0.013"``: the cell as the table shows it (for glue in the prose);
        a data set that only one seed drew (``datasets(seed)`` left it out for the
        others, e.g. a fixed real data set) shows its single value, without a spread."""
        if len(self._finite(method, dataset, measure)) == 1:
            return f"{self.mean(method, dataset, measure):.{digits}f}"
        return f"{self.mean(method, dataset, measure):.{digits}f} ± {self.spread(method, dataset, measure):.{digits}f}"

    def difference(self, a, b, dataset, measure):
        """Per-seed differences ``a - b`` (the seeds where both were measured)."""
        d = self.values(a, dataset, measure) - self.values(b, dataset, measure)
        return d[np.isfinite(d)]

    def clearly_better(self, a, b, dataset, measure):
        """True when ``a`` beats ``b`` by more than the spread.

        The seeds pair the methods (both are measured on the same draws of the data), so
        the test is on the per-seed differences ``a - b``: ``a`` must win on every seed,
        and the mean difference must exceed the standard deviation of the differences.
        A data set measured once (one seed) only needs ``a > b``: it has no spread.
        """
        d = self.difference(a, b, dataset, measure)
        if len(d) == 0:
            return False
        if len(d) == 1:
            return bool(d[0] > 0)
        return bool(d.min() > 0 and d.mean() > np.std(d, ddof=1))

    def difference_text(self, a, b, dataset, measure, digits=3):
        """``"0.041 ± 0.012"``: mean ± sd over the seeds of ``a - b`` (for glue in the prose)."""
        d = self.difference(a, b, dataset, measure)
        if len(d) == 1:
            return f"{d[0]:.{digits}f}"
        return f"{d.mean():.{digits}f} ± {np.std(d, ddof=1):.{digits}f}"

    def assert_better(self, a, b, dataset, measure):
        """Raise ``AssertionError`` (with the numbers) unless :meth:`clearly_better`."""
        if not self.clearly_better(a, b, dataset, measure):
            d = self.difference(a, b, dataset, measure)
            raise AssertionError(
                f"{a!r} does not beat {b!r} by more than the spread on {dataset!r} ({measure}): "
                f"{self.text(a, dataset, measure)} vs {self.text(b, dataset, measure)}, "
                f"per-seed differences {np.round(d, 3).tolist()}")

    def best(self, dataset, measure):
        """Method with the highest mean."""
        return max(self.methods, key=lambda m: np.nan_to_num(self.mean(m, dataset, measure), nan=-np.inf))

    def time(self, method):
        """Mean over the seeds of the fit + score seconds, summed over the data sets."""
        return float(np.mean([t.total_time(method) for t in self.tables]))

    def reused(self):
        """``{(method, data set): source}`` of the cells taken over from earlier tables (``reuse``)."""
        return {(r["method"], r["dataset"]): r["reused"] for t in self.tables for r in t.rows
                if r.get("reused") and any((r["dataset"], m) not in self.hidden for m in self.measures)}

    def reused_note(self):
        """A sentence naming the cells taken over from earlier tables ("" when there are none)."""
        by_source = {}
        for (method, dataset), source in self.reused().items():
            by_source.setdefault((source, dataset), []).append(method)
        return "".join(f" The {dataset} cells of {', '.join(methods)} are those computed by {source} "
                       "(same detector, same data), not computed again."
                       for (source, dataset), methods in by_source.items())

    def frame(self, digits=3):
        """The table as a pandas ``DataFrame`` of ``"mean ± spread"`` strings."""
        import pandas as pd

        cols, data = [], {}
        for d, m in self._shown():
            key = (d, _LABELS.get(m, m)) if len(self.measures) > 1 else (d, "")
            cols.append(key)
            data[key] = [self.text(meth, d, m, digits) for meth in self.methods]
        frame = pd.DataFrame(data, index=pd.Index(self.methods))
        frame.columns = pd.MultiIndex.from_tuples(cols) if len(self.measures) > 1 else [d for d, _ in cols]
        frame["time (s)"] = [f"{self.time(meth):.1f}" for meth in self.methods]
        return frame

    def __repr__(self):
        return self.frame().to_string()

    def _repr_html_(self):
        best = {(d, m): self.best(d, m) for d, m in self._shown()}
        frame = self.frame()
        for (d, m), meth in best.items():
            col = (d, _LABELS.get(m, m)) if len(self.measures) > 1 else d
            frame.loc[meth, col] = f"<b>{frame.loc[meth, col]}</b>"
        table = frame.to_html(escape=False, classes="adc-table", border=0)
        note = (f"<p class=\"adc-table-note\"><small>Mean ± standard deviation over {len(self.seeds)} "
                f"seeds ({', '.join(map(str, self.seeds))}; each draws the data and sets the detectors' "
                "random state); bold: highest mean of the column; "
                "time: fit + score, summed over the data sets, mean over the seeds."
                f"{html.escape(self.reused_note())}</small></p>")
        return f'<div class="adc-table-scroll" style="overflow-x: auto">{table}</div>{note}'


# --------------------------------------------------------------------------- #
# results shared between chapters
# --------------------------------------------------------------------------- #
#: environment variable naming the results folder (default: ``_build/results`` under the working directory)
RESULTS_ENV = "ADCOURSE_RESULTS"


def results_folder():
    """Where :func:`save_results` keeps tables: ``$ADCOURSE_RESULTS``, else ``./_build/results``.

    A chapter runs in the ``book/`` folder, so by default the results land in
    ``book/_build/results`` next to the built HTML (ignored by git).
    """
    env = os.environ.get(RESULTS_ENV)
    return Path(env) if env else Path.cwd() / "_build" / "results"


def _sources_fingerprint(folder):
    """SHA-1 of the package's ``.py`` files and of the book chapters (``*.md`` of the book folder).

    The book folder is the parent of ``_build`` when ``folder`` is ``<book>/_build/results``
    (the default); with another folder only the package counts.
    """
    import adcourse

    digest = hashlib.sha1()
    package = Path(adcourse.__file__).resolve().parent
    files = sorted(package.rglob("*.py"))
    folder = Path(folder).resolve()
    if folder.parent.name == "_build":
        files += sorted(folder.parent.parent.glob("*.md"))
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def _check_name(name):
    if not isinstance(name, str) or not name or any(c in name for c in "/\\:") or name.startswith("."):
        raise ValueError(f"name must be a non-empty file-name-like string (no '/', '\\', ':'), got {name!r}")
    return name


def save_results(name, table, folder=None):
    """Save a computed table under ``name`` for later chapters; return the table unchanged.

    One line at the end of a chapter's computation:
    ``table = save_results("ch08-digits", one_class(...))``. Any picklable object
    works (:class:`Table`, :class:`SeedTable`, :class:`OneClassTable`, a DataFrame).
    It is stored under the fingerprint of the current sources (see the module
    docstring); results of other fingerprints are removed.

    Parameters
    ----------
    name : str
        Key, e.g. ``"ch05-nanofibres"`` (chapter and data set).
    table : object
    folder : path, optional
        Default :func:`results_folder`.
    """
    folder = Path(folder) if folder is not None else results_folder()
    version = _sources_fingerprint(folder)
    target = folder / version
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f".{_check_name(name)}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(table, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, target / f"{name}.pkl")
    for old in folder.iterdir():
        if old.is_dir() and old.name != version:
            shutil.rmtree(old, ignore_errors=True)
    return table


def load_results(name, folder=None):
    """The table saved under ``name`` by the current sources, or None if there is none."""
    folder = Path(folder) if folder is not None else results_folder()
    path = folder / _sources_fingerprint(folder) / f"{_check_name(name)}.pkl"
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        return pickle.load(fh)


def saved_results(folder=None):
    """Every table saved by the current sources: dict name -> table, sorted by name."""
    folder = Path(folder) if folder is not None else results_folder()
    version = folder / _sources_fingerprint(folder)
    out = {}
    for path in sorted(version.glob("*.pkl")) if version.is_dir() else []:
        with open(path, "rb") as fh:
            out[path.stem] = pickle.load(fh)
    return out


def cached(name, compute, folder=None):
    """:func:`load_results` of ``name``, or ``compute()`` saved with :func:`save_results`.

    Returns ``(table, reused)``: ``reused`` is True when the table came from the
    results folder (computed earlier by a chapter of this version of the book).
    """
    table = load_results(name, folder)
    if table is not None:
        return table, True
    return save_results(name, compute(), folder), False


def result_rows(table, source=""):
    """Uniform rows of any results table, for a benchmark of many methods on one page.

    Every row is a dict ``method, dataset, measure, mean, spread, n_seeds, fit_s,
    score_s, source``: one per (method, data set, quality measure). ``spread`` is
    the standard deviation over the seeds (NaN for a single seed); ``fit_s`` and
    ``score_s`` are seconds per run (one fit, one scoring of the test set), averaged
    over seeds (and classes); a :class:`OneClassTable` records fit + score together,
    given as ``fit_s`` with ``score_s`` NaN.

    Parameters
    ----------
    table : Table, SeedTable or OneClassTable
    source : str
        Where the numbers come from (e.g. "chapter 5"), copied to every row.
    """
    rows = []
    if isinstance(table, OneClassTable):
        for m in table.methods:
            i = table._index(m)
            ok = np.isfinite(table.auroc[i])
            rows.append(dict(method=m, dataset="digits one-class", measure="image_auroc", mean=table.mean(m),
                             spread=table.spread(m) if len(table.seeds) > 1 else np.nan, n_seeds=len(table.seeds),
                             fit_s=float(table.seconds[i][ok].mean()) if ok.any() else np.nan, score_s=np.nan,
                             source=source))
        return rows
    tables = table.tables if isinstance(table, SeedTable) else [table]
    if not all(isinstance(t, Table) for t in tables):
        raise TypeError(f"table must be a Table, SeedTable or OneClassTable, got {type(table).__name__}")
    methods = list(dict.fromkeys(m for t in tables for m in t.methods))
    datasets = list(dict.fromkeys(d for t in tables for d in t.datasets))
    for m in methods:
        for d in datasets:
            found = [r for t in tables for r in t.rows if r["method"] == m and r["dataset"] == d and not r.get("error")]
            if not found:
                continue
            times = {k: float(np.mean([r.get(k) if r.get(k) is not None else np.nan for r in found]))
                     for k in ("fit_s", "score_s")}
            for measure in tables[0].measures:
                values = np.array([r[measure] for r in found], dtype=float)
                rows.append(dict(method=m, dataset=d, measure=measure, mean=float(values.mean()),
                                 spread=float(values.std(ddof=1)) if len(values) > 1 else np.nan,
                                 n_seeds=len(values), source=source, **times))
    return rows

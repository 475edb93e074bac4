r"""Checks of exercise 1, "Performance measures" (``solutions/01-performance-measures.ipynb``).

Each check asks the student's function questions on fresh data (made here from
the task's seed -- a fixed one in the check cell, one drawn by the grader at
grading time -- never the data of the notebook) and compares the answers with the
reference implementation of :mod:`adcourse.metrics` and :mod:`adcourse.decision`
(imported by the judges only: the kernel that computes the answers needs NumPy
alone). Every task asks for plain NumPy: the student's functions may use NumPy
and the standard library, not :mod:`adcourse` or scikit-learn. On a
wrong answer the :class:`~adcourse.course.checks.CheckFailed` message says what was
expected and what was received, on which (small) input, and a likely cause when
the answer matches a typical mistake (``>`` instead of ``>=``, swapped rates, a
ROC curve without its end points, a threshold tuned on anomalies, ...).

Conventions (the course's, see :mod:`adcourse.metrics`): anomaly = positive =
label 1, higher score = more anomalous, detected means ``score >= threshold``.

======  =====================================  ==========================================
task    check                                  the student's function
======  =====================================  ==========================================
task-1  :func:`check_confusion_rates`          ``confusion_rates(scores, labels, threshold)``
task-2  :func:`check_roc`                      ``roc_points(scores, labels)``, ``auc_trapezoid(fpr, tpr)``
task-3  :func:`check_threshold_for_fpr`        ``threshold_for_fpr(normal_scores, target_fpr)``
task-4  :func:`check_best_roc_threshold`       ``best_roc_threshold(scores, labels)``
task-5  :func:`check_evaluate_on_test`         ``evaluate_on_test(val_normal_scores, test_scores, test_labels, target_fpr)``
======  =====================================  ==========================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from adcourse.course.checks._base import CheckFailed, Call, _as_float, _close, _fmt, _inputs, task

__all__ = [
    "check_confusion_rates",
    "check_roc",
    "check_threshold_for_fpr",
    "check_best_roc_threshold",
    "check_evaluate_on_test",
    "TASKS",
]

#: Keys of the dictionary returned by ``confusion_rates`` (matched case-insensitively).
RATE_KEYS = ("TPR", "FPR", "FNR", "TNR", "precision", "accuracy", "F1")

#: What the student's functions may use in every task: plain NumPy (and the standard library).
ALLOW = ("numpy",)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _counts(scores, labels, threshold, strict=False):
    detected = scores > threshold if strict else scores >= threshold
    anomaly = labels == 1
    tp = int(np.sum(detected & anomaly))
    fp = int(np.sum(detected & ~anomaly))
    return tp, fp, int(np.sum(~detected & ~anomaly)), int(np.sum(~detected & anomaly))


def _rates_dict(tp, fp, tn, fn):
    """The course's rates from counts (same formulas as adcourse.metrics.rates)."""
    tpr, fpr = tp / (tp + fn), fp / (fp + tn)
    return {
        "tpr": tpr,
        "fpr": fpr,
        "fnr": 1.0 - tpr,
        "tnr": 1.0 - fpr,
        "precision": tp / (tp + fp) if tp + fp > 0 else 1.0,
        "accuracy": (tp + tn) / (tp + fp + tn + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }


def _expected_rates(scores, labels, threshold):
    from adcourse import metrics

    r = metrics.rates(scores, labels, threshold)
    return {
        "tpr": r.tpr, "fpr": r.fpr, "fnr": r.fnr, "tnr": r.tnr,
        "precision": r.precision, "accuracy": r.accuracy, "f1": r.f1,
    }


def _toy_scores(rng, n_normal, n_anomalous, shift=2.0, decimals=None):
    """Scores of normal samples ~ N(0,1), anomalies ~ N(shift,1), shuffled; optional rounding (ties)."""
    s = np.concatenate([rng.normal(0.0, 1.0, n_normal), rng.normal(shift, 1.0, n_anomalous)])
    y = np.repeat(np.array([0, 1]), [n_normal, n_anomalous])
    order = rng.permutation(s.size)
    s, y = s[order], y[order]
    if decimals is not None:
        s = np.round(s, decimals)
    return s, y


# --------------------------------------------------------------------------------------
# task 1: rates at one threshold
# --------------------------------------------------------------------------------------

_RATE_FORMULAS = {
    "tpr": "TPR = #anomalies detected / #anomalies = TP / (TP + FN)",
    "fpr": "FPR = #normal samples detected / #normal samples = FP / (FP + TN)",
    "fnr": "FNR = 1 - TPR = FN / (TP + FN)",
    "tnr": "TNR = 1 - FPR = TN / (FP + TN)",
    "precision": "precision = #anomalies detected / #detections = TP / (TP + FP), 1.0 when nothing is detected",
    "accuracy": "accuracy = (#anomalies detected + #normal samples not detected) / #samples = (TP + TN) / n",
    "f1": "F1 = 2 #anomalies detected / (#detections + #anomalies) = 2TP / (2TP + FP + FN)",
}

_DISPLAY = {k.lower(): k for k in RATE_KEYS}


def _normalise_rates(result, what="confusion_rates"):
    if type(result).__name__ == "Rates" and callable(getattr(result, "as_dict", None)):
        result = result.as_dict()  # adcourse.metrics.Rates
    if not isinstance(result, Mapping):
        raise CheckFailed(
            f"{what} must return a dict with the keys {list(RATE_KEYS)}, "
            f"received {type(result).__name__} {_fmt(result)}"
        )
    out = {}
    for key, value in result.items():
        if isinstance(key, str):
            out[key.strip().lower()] = value
    missing = [_DISPLAY[k] for k in _DISPLAY if k not in out]
    if missing:
        raise CheckFailed(
            f"the dict returned by {what} lacks the key(s) {missing}; "
            f"expected the keys {list(RATE_KEYS)}, received {list(result.keys())}"
        )
    return {k: _as_float(out[k], f"{_DISPLAY[k]} returned by {what}") for k in _DISPLAY}


def _rate_hint(key, got, scores, labels, threshold):
    """A likely cause for a wrong value of one rate, or ''."""
    tp, fp, tn, fn = _counts(scores, labels, threshold)
    n_pos, n_neg, n = tp + fn, fp + tn, tp + fp + tn + fn
    ok = _rates_dict(tp, fp, tn, fn)
    gt = _rates_dict(*_counts(scores, labels, threshold, strict=True))
    inv = _rates_dict(fp, tp, fn, tn)  # labels inverted: normal samples taken as positives
    d = max(tp + fp, 1)
    cands = []
    if key == "fpr":
        cands = [
            (ok["tnr"], "your FPR equals the TNR (normal samples NOT detected): the FPR is "
                        "#normal samples detected / #normal samples = FP / (FP + TN)"),
            (ok["tpr"], "your FPR equals the TPR: did you swap anomalies (label 1) and normal samples (label 0)?"),
            (fp / n, "you divided by all samples; the FPR divides by the normal samples only: FP / (FP + TN)"),
            (fp / d, "that is FP / #detections (1 - precision); the FPR divides by the normal samples: FP / (FP + TN)"),
            (fp / max(n_pos, 1), "you divided by the anomalies; the FPR divides by the normal samples: FP / (FP + TN)"),
        ]
    elif key == "tpr":
        cands = [
            (ok["fpr"], "your TPR equals the FPR: did you swap anomalies (label 1) and normal samples (label 0)?"),
            (ok["fnr"], "your TPR equals the FNR (anomalies missed): TPR = TP / (TP + FN)"),
            (tp / n, "you divided by all samples; the TPR divides by the anomalies only: TP / (TP + FN)"),
            (ok["precision"], "that is the precision TP / (TP + FP); the TPR (recall) is TP / (TP + FN)"),
        ]
    elif key == "fnr":
        cands = [
            (ok["tnr"], "your FNR equals the TNR: FNR = 1 - TPR (anomalies missed / anomalies), TNR = 1 - FPR"),
            (ok["fpr"], "your FNR equals the FPR: FNR = 1 - TPR, not the false POSITIVE rate"),
            (fn / n, "you divided by all samples; FNR = FN / (TP + FN) = 1 - TPR"),
        ]
    elif key == "tnr":
        cands = [
            (ok["fnr"], "your TNR equals the FNR: TNR = 1 - FPR (normal samples not detected / normal samples)"),
            (ok["fpr"], "your TNR equals the FPR: TNR = 1 - FPR"),
            (tn / n, "you divided by all samples; TNR = TN / (FP + TN) = 1 - FPR"),
        ]
    elif key == "precision":
        if tp + fp == 0:
            cands = [(got, "nothing is detected at this threshold, so TP + FP = 0: the course's "
                           "convention is precision = 1.0 (no detection, no false alarm)")]
        cands += [
            (ok["tpr"], "your precision equals the recall/TPR: precision = TP / (TP + FP) (divide by the detections)"),
            (tp / n, "you divided by all samples; precision divides by the detections: TP / (TP + FP)"),
        ]
    elif key == "accuracy":
        cands = [
            (tp / n, "accuracy counts both correct decisions: (TP + TN) / n"),
            ((tp + tn) / max(n_pos, 1), "divide by all samples: (TP + TN) / n"),
            ((tp + fn) / n, "accuracy = (TP + TN) / n: anomalies detected plus normal samples NOT detected"),
        ]
    elif key == "f1":
        p, r = ok["precision"], ok["tpr"]
        cands = [
            (tp / (tp + fp + n_pos) if tp + fp + n_pos else 0.0,
             "you forgot the factor 2: F1 = 2TP / (#detections + #anomalies)"),
            (2 * tp / (tp + fp + n_neg) if tp + fp + n_neg else 0.0,
             "F1 divides by #detections + #anomalies, not + #normal samples"),
            (p * r, "F1 is the harmonic mean 2 P R / (P + R) = 2TP / (2TP + FP + FN)"),
            ((p + r) / 2, "F1 is the harmonic mean 2 P R / (P + R), not the arithmetic mean"),
        ]
    if _close(got, gt[key]) and not _close(gt[key], ok[key]):
        return ("you detected with score > threshold; the course detects score >= threshold "
                "(a sample whose score equals the threshold is detected)")
    if _close(got, inv[key]) and not _close(inv[key], ok[key]):
        return ("you took the normal samples (label 0) as positives; anomalies are the positives "
                "(label 1)")
    for value, hint in cands:
        if _close(got, value) and not _close(value, ok[key]):
            return hint
    if math.isnan(got):
        return "you returned NaN: a division 0/0? " + _RATE_FORMULAS[key]
    return _RATE_FORMULAS[key]


def _compare_rates(got, scores, labels, threshold, what="confusion_rates", where=None):
    """Raise CheckFailed on the first wrong rate of ``got`` (already normalised)."""
    expected = _expected_rates(scores, labels, threshold)
    wrong = [k for k in _DISPLAY if not _close(got[k], expected[k])]
    if not wrong:
        return
    tp, fp, tn, fn = _counts(scores, labels, threshold)
    lines = [f"wrong {', '.join(_DISPLAY[k] for k in wrong)} returned by {what}",
             where or _inputs(scores=scores, labels=labels, threshold=threshold),
             f"(here TP={tp}, FP={fp}, TN={tn}, FN={fn})"]
    for k in wrong:
        lines.append(f"expected {_DISPLAY[k]} = {expected[k]:.6g}, received {got[k]:.6g}")
    lines.append("hint: " + (_whole_hint(got, scores, labels, threshold)
                             or _rate_hint(wrong[0], got[wrong[0]], scores, labels, threshold)))
    raise CheckFailed("\n".join(lines))


def _whole_hint(got, scores, labels, threshold):
    """A hint when every returned rate matches one typical mistake, else ''."""
    tp, fp, tn, fn = _counts(scores, labels, threshold)
    variants = [
        (_rates_dict(*_counts(scores, labels, threshold, strict=True)),
         "you detected with score > threshold; the course detects score >= threshold "
         "(a sample whose score equals the threshold is detected)"),
        (_rates_dict(fp, tp, fn, tn),
         "you took the normal samples (label 0) as positives; anomalies are the positives (label 1)"),
    ]
    for variant, hint in variants:
        if all(_close(got[k], variant[k]) for k in _DISPLAY):
            return hint
    return ""



def _rates_cases(rng):
    yield (np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.2, 0.7, 0.05]), np.array([0, 0, 1, 1, 0, 1, 0, 0]), 0.35)
    yield (np.array([0.9, 0.2, 0.7, 0.7, 0.3, 0.5, 0.1, 0.6]), np.array([1, 0, 1, 0, 0, 1, 0, 0]), 0.6)
    s, y = _toy_scores(rng, 60, 15, decimals=1)          # ties with the threshold
    yield (s, y, 0.5)
    s, y = _toy_scores(rng, 300, 30)
    yield (s, y, float(np.quantile(s, 0.7)))
    yield (s, y, float(s.max()) + 1.0)                   # nothing detected
    yield (s, y, float(s.min()))                         # everything detected
    yield ([0.3, -0.2, 1.7, 0.0, 2.4, -1.1, 0.9, 0.0], [0, 0, 1, 0, 1, 0, 1, 1], 0.0)  # lists


def _rates_questions(rng):
    return [Call("confusion_rates", *case) for case in _rates_cases(rng)]


@task(1, "confusion_rates", _rates_questions, uses=("confusion_rates",), seed=101, allow=ALLOW)
def check_confusion_rates(answers):
    """Check ``confusion_rates(scores, labels, threshold) -> dict`` (task 1 of exercise 1).

    The dict must hold TPR, FPR, FNR, TNR, precision, accuracy and F1 (keys
    matched case-insensitively) at the threshold (``score >= threshold``).
    """
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers:
        scores, labels, threshold = call.args
        s, y = np.asarray(scores, dtype=float), np.asarray(labels)
        _compare_rates(_normalise_rates(got), s, y, threshold)


# --------------------------------------------------------------------------------------
# task 2: ROC curve and AUC
# --------------------------------------------------------------------------------------


def _roc(s, y):
    """(fpr, tpr) at the thresholds +inf, then every distinct score, decreasing (``score >= t``)."""
    thresholds = np.r_[np.inf, np.unique(s)[::-1]]
    detected = s[None, :] >= thresholds[:, None]
    return (detected & (y == 0)).sum(axis=1) / np.sum(y == 0), (detected & (y == 1)).sum(axis=1) / np.sum(y == 1)


def _roc_variants(s, y):
    """(description, fpr, tpr) of typical wrong ROC curves."""
    from adcourse import metrics

    fpr, tpr, thr = metrics.roc_curve(s, y)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    out = []
    distinct = np.unique(s)[::-1]

    def curve(thresholds, strict):
        pts = [_counts(s, y, t, strict) for t in thresholds]
        return (np.array([p[1] / n_neg for p in pts]), np.array([p[0] / n_pos for p in pts]))

    gf, gt = curve(distinct, strict=True)
    out.append(("you detected with score > threshold; the course detects score >= threshold, "
                "so the lowest threshold detects everything and the curve ends at (1, 1)", gf, gt))
    out.append(("you detected with score > threshold (the course uses >=)",
                np.r_[0.0, gf], np.r_[0.0, gt]))
    out.append(("your curve misses the point (0, 0): add the threshold +inf (nothing detected) "
                "before the largest score", fpr[1:], tpr[1:]))
    out.append(("your curve misses the point (1, 1)", fpr[:-1], tpr[:-1]))
    out.append(("your curve misses the end points (0, 0) and (1, 1)", fpr[1:-1], tpr[1:-1]))
    out.append(("you returned (tpr, fpr): return the false positive rates first, (fpr, tpr)", tpr, fpr))
    out.append(("your points run from (1, 1) to (0, 0): order them by decreasing threshold, from "
                "(0, 0) (threshold +inf) to (1, 1) (the smallest score)", fpr[::-1], tpr[::-1]))
    all_thr = np.r_[np.inf, np.sort(s)[::-1]]
    af, at = curve(all_thr, strict=False)
    out.append(("you used every score as a threshold, repeated scores included: use each distinct "
                "score once (np.unique), so that every threshold gives one point", af, at))
    return out


def _check_roc_points(result, s, y):
    from adcourse import metrics

    fpr, tpr, thr = metrics.roc_curve(s, y)
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise CheckFailed(
            "roc_points must return two arrays (fpr, tpr), received "
            f"{type(result).__name__} of length {len(result) if hasattr(result, '__len__') else '?'}"
        )
    try:
        gf = np.asarray(result[0], dtype=float).ravel()
        gt = np.asarray(result[1], dtype=float).ravel()
    except (TypeError, ValueError):
        raise CheckFailed("roc_points must return two arrays of numbers (fpr, tpr)") from None
    where = _inputs(scores=s, labels=y)
    if gf.shape == fpr.shape == gt.shape and np.allclose(gf, fpr, atol=1e-9) and np.allclose(gt, tpr, atol=1e-9):
        return
    for hint, vf, vt in _roc_variants(s, y):
        if gf.shape == vf.shape == gt.shape and np.allclose(gf, vf, atol=1e-9) and np.allclose(gt, vt, atol=1e-9):
            break
    else:
        hint = None
    lines = ["wrong ROC points returned by roc_points", where,
             f"expected {fpr.size} points (one per distinct score, plus (0, 0) for the threshold +inf)",
             f"expected fpr = {_fmt(fpr)}", f"expected tpr = {_fmt(tpr)}",
             f"received fpr = {_fmt(gf)}", f"received tpr = {_fmt(gt)}"]
    if hint is None:
        if gf.shape != gt.shape:
            hint = f"fpr and tpr must have the same length (received {gf.size} and {gt.size})"
        elif gf.size and (not _close(gf[0], 0.0) or not _close(gt[0], 0.0)):
            hint = "the curve must start at (0, 0): the threshold +inf detects nothing"
        elif gf.size and (not _close(gf[-1], 1.0) or not _close(gt[-1], 1.0)):
            hint = "the curve must end at (1, 1): the smallest score as threshold detects everything"
        elif gf.size != fpr.size:
            hint = "use every distinct score as a threshold, in decreasing order, plus +inf first"
        else:
            i = int(np.argmax(~(np.isclose(gf, fpr) & np.isclose(gt, tpr))))
            hint = (f"the first wrong point is number {i} (threshold {_fmt(thr[i])}): expected "
                    f"({fpr[i]:.4g}, {tpr[i]:.4g}), received ({gf[i]:.4g}, {gt[i]:.4g}); "
                    "FPR = FP / #normal, TPR = TP / #anomalies with score >= threshold")
    lines.append("hint: " + hint)
    raise CheckFailed("\n".join(lines))


def _check_auc(result, fpr, tpr):
    expected = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
    got = _as_float(result, "the value returned by auc_trapezoid")
    if _close(got, expected, 1e-7):
        return
    left = float(np.sum(np.diff(fpr) * tpr[:-1]))
    right = float(np.sum(np.diff(fpr) * tpr[1:]))
    swapped = float(np.sum(np.diff(tpr) * (fpr[1:] + fpr[:-1]) / 2.0))
    if _close(got, left, 1e-7):
        hint = ("you summed rectangles with the height of the left end; the trapezoidal rule "
                "averages the two ends: sum of (fpr[i+1] - fpr[i]) * (tpr[i] + tpr[i+1]) / 2")
    elif _close(got, right, 1e-7):
        hint = ("you summed rectangles with the height of the right end; the trapezoidal rule "
                "averages the two ends: sum of (fpr[i+1] - fpr[i]) * (tpr[i] + tpr[i+1]) / 2")
    elif _close(got, swapped, 1e-7) or _close(got, 1.0 - expected, 1e-7):
        hint = ("you integrated fpr over tpr: the AUC integrates tpr (y axis) over fpr (x axis), "
                "e.g. np.trapezoid(tpr, fpr)")
    elif _close(got, -expected, 1e-7):
        hint = "your AUC is negative: integrate along increasing fpr"
    else:
        hint = "AUC = sum over i of (fpr[i+1] - fpr[i]) * (tpr[i] + tpr[i+1]) / 2"
    raise CheckFailed("\n".join([
        "wrong value returned by auc_trapezoid",
        _inputs(fpr=fpr, tpr=tpr),
        f"expected {expected:.6g}, received {got:.6g}",
        "hint: " + hint,
    ]))


def _roc_questions(rng):
    cases = [
        (np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.2]), np.array([0, 0, 1, 1, 0, 1])),
        (np.array([0.3, 0.7, 0.3, 0.9, 0.5, 0.7, 0.1]), np.array([0, 1, 1, 1, 0, 0, 0])),
        _toy_scores(rng, 80, 20, decimals=1),
        _toy_scores(rng, 200, 25),
    ]
    auc_cases = [
        (np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])),
        (np.array([0.0, 1.0]), np.array([0.0, 1.0])),
        (np.array([0.0, 0.25, 0.5, 0.5, 1.0]), np.array([0.0, 0.5, 0.5, 1.0, 1.0])),
    ] + [_roc(s, y) for s, y in cases[1:]]
    return ([Call("roc_points", s, y) for s, y in cases]
            + [Call("auc_trapezoid", fpr, tpr) for fpr, tpr in auc_cases])


@task(2, "roc_points and auc_trapezoid", _roc_questions, uses=("roc_points", "auc_trapezoid"),
      seed=202, allow=ALLOW)
def check_roc(answers):
    """Check ``roc_points(scores, labels) -> (fpr, tpr)`` and ``auc_trapezoid(fpr, tpr) -> float``.

    ``roc_points`` must give one point per distinct score (detected: ``score >=
    threshold``), in decreasing threshold order, starting at (0, 0) (threshold
    +inf) and ending at (1, 1): exactly ``adcourse.metrics.roc_curve`` (and
    ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)``).
    """
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers.of("roc_points"):
        _check_roc_points(got, *call.args)
    for call, got in answers.of("auc_trapezoid"):
        _check_auc(got, *call.args)


# --------------------------------------------------------------------------------------
# task 3: a threshold from normal data only
# --------------------------------------------------------------------------------------


def _fpr_interval(normal, target_fpr):
    """(low, high): every t in (low, high] detects the largest allowed number of normal scores."""
    s = np.sort(normal)
    n = s.size
    m = min(int(np.floor(n * target_fpr + 1e-9)), n - 1)
    pivot = float(s[n - m - 1])
    from adcourse.decision import Threshold

    high = float(Threshold.from_fpr(normal, target_fpr).value)
    return pivot, high, m


def _threshold_problem(t, normal, target_fpr):
    """A hint when ``t`` is not a valid smallest threshold for ``target_fpr``, else None."""
    low, high, m = _fpr_interval(normal, target_fpr)
    n = normal.size
    k = int(np.sum(normal >= t))
    if low < t <= high + 1e-12 * max(1.0, abs(high)) or (m == 0 and t > low):
        return None
    s = np.sort(normal)
    head = (f"expected a threshold in ({low:.6g}, {high:.6g}] (e.g. {high:.6g}), which detects "
            f"{m} of the {n} normal scores (FPR {m / n:.4g} <= {target_fpr}); received {t:.6g}, "
            f"which detects {k} (FPR {k / n:.4g})")
    if math.isnan(t):
        return head + "\nhint: you returned NaN"
    if k > m:
        if _close(t, float(np.quantile(normal, target_fpr))) or k >= n * (1 - target_fpr) - 1:
            hint = ("you took the target_fpr quantile; the threshold must leave only a fraction "
                    "target_fpr of the normal scores at or above it: the (1 - target_fpr) quantile")
        elif _close(t, float(np.quantile(normal, 1 - target_fpr))):
            hint = ("np.quantile interpolates between two scores, and on this sample the "
                    f"interpolated value lets {k} normal scores through where only floor(n * "
                    f"target_fpr) = {m} may be >= the threshold; take the sorted score s[n - m] "
                    "(e.g. np.sort(scores)[n - m])")
        elif _close(t, low):
            hint = ("one normal score too many is detected: the course detects score >= threshold, "
                    "so a threshold equal to a score detects that score too; take the next larger "
                    "score (or anything above it)")
        else:
            hint = (f"at most floor(n * target_fpr) = {m} normal scores may be >= the threshold; "
                    f"yours lets {k} through")
    else:
        if t > s[-1] and m > 0:
            hint = "your threshold is above every normal score: it detects nothing, the FPR budget is unused"
        else:
            hint = (f"your threshold is valid but too high: it detects {k} normal scores where "
                    f"{m} are allowed, so it loses anomalies (lower TPR) for nothing; choose the "
                    "smallest threshold whose FPR on the normal scores is <= target_fpr")
    return head + "\nhint: " + hint


def _fpr_questions(rng):
    return [Call("threshold_for_fpr", normal, target) for normal, target in [
        (np.array([0.2, 1.5, -0.3, 0.9, 2.2, 0.1, -1.0, 0.4, 1.1, 0.7]), 0.2),
        (rng.normal(size=500), 0.05),
        (rng.normal(size=1000), 0.01),
        (rng.exponential(size=240), 0.1),
        (rng.normal(size=37), 0.15),
    ]]


@task(3, "threshold_for_fpr", _fpr_questions, uses=("threshold_for_fpr",), seed=303, allow=ALLOW)
def check_threshold_for_fpr(answers):
    """Check ``threshold_for_fpr(normal_scores, target_fpr) -> float``.

    Any threshold that detects exactly as many normal scores as
    ``adcourse.decision.Threshold.from_fpr`` (the largest number allowed,
    ``floor(n * target_fpr)``) is accepted: e.g. ``np.quantile(s, 1 - target_fpr)``
    usually is.
    """
    __tracebackhide__ = True  # noqa: F841
    for call, got in answers:
        normal, target = call.args
        t = _as_float(got, "the value returned by threshold_for_fpr")
        problem = _threshold_problem(t, normal, target)
        if problem:
            raise CheckFailed(
                "wrong threshold returned by threshold_for_fpr\n"
                + _inputs(normal_scores=normal, target_fpr=target) + "\n" + problem
            )


# --------------------------------------------------------------------------------------
# task 4: the ROC point closest to (0, 1)
# --------------------------------------------------------------------------------------


def _best_questions(rng):
    return [Call("best_roc_threshold", s, y) for s, y in [
        (np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.2]), np.array([0, 0, 1, 1, 0, 1])),
        (np.array([1.0, 3.0, 2.0, 4.0]), np.array([0, 0, 1, 1])),      # tie: t=4 and t=2
        _toy_scores(rng, 120, 30, decimals=1),
        _toy_scores(rng, 300, 40, shift=1.5),
    ]]


@task(4, "best_roc_threshold", _best_questions, uses=("best_roc_threshold",), seed=404, allow=ALLOW)
def check_best_roc_threshold(answers):
    """Check ``best_roc_threshold(scores, labels) -> float``: the threshold of the
    ROC point closest to (FPR, TPR) = (0, 1), ties to the larger threshold
    (``adcourse.metrics.best_threshold``)."""
    __tracebackhide__ = True  # noqa: F841
    from adcourse import metrics

    for call, got in answers:
        s, y = call.args
        expected = metrics.best_threshold(s, y)
        got = _as_float(got, "the value returned by best_roc_threshold")
        if _close(got, expected):
            continue
        fpr, tpr, thr = metrics.roc_curve(s, y)
        dist = np.sqrt(fpr ** 2 + (1 - tpr) ** 2)
        i_exp = int(np.flatnonzero(thr == expected)[0])
        lines = ["wrong threshold returned by best_roc_threshold", _inputs(scores=s, labels=y),
                 f"expected {expected:.6g} (ROC point ({fpr[i_exp]:.4g}, {tpr[i_exp]:.4g}), "
                 f"distance {dist[i_exp]:.4g} from (0, 1)), received {got:.6g}"]
        match = np.flatnonzero(np.isclose(thr, got, rtol=0, atol=1e-12))
        youden = float(thr[1:][np.argmax(tpr[1:] - fpr[1:])])
        if match.size:
            j = int(match[0])
            lines[-1] += f" (ROC point ({fpr[j]:.4g}, {tpr[j]:.4g}), distance {dist[j]:.4g})"
            if np.isclose(dist[j], dist[i_exp]) and got < expected:
                hint = ("several points are equally close to (0, 1); the course takes the LARGER "
                        "threshold on ties (fewer detections): e.g. the first minimum in "
                        "decreasing-threshold order")
            elif j == 0:
                hint = "+inf is the point (0, 0), which detects nothing: use the distinct scores"
            elif _close(got, youden):
                hint = ("you maximised TPR - FPR (Youden's J, the same as the L1 distance); the "
                        "lecture takes the point at the smallest Euclidean distance from (0, 1): "
                        "minimise FPR**2 + (1 - TPR)**2")
            else:
                hint = ("the best point minimises sqrt(FPR**2 + (1 - TPR)**2), the distance from "
                        "the ideal detector (FPR, TPR) = (0, 1)")
        elif float(got).is_integer() and 0 <= got < thr.size:
            hint = "you returned an index: return the threshold itself (thresholds[i])"
        else:
            hint = ("return one of the scores: the threshold of the ROC point closest to (0, 1) "
                    "(detected: score >= threshold)")
        lines.append("hint: " + hint)
        raise CheckFailed("\n".join(lines))


# --------------------------------------------------------------------------------------
# task 5: set the threshold on normal validation data, measure on the test set
# --------------------------------------------------------------------------------------


def _evaluate_questions(rng):
    calls = []
    for n_val, n_norm, n_anom, target in [(400, 500, 50, 0.05), (250, 300, 60, 0.1)]:
        val = rng.normal(size=n_val)
        test, labels = _toy_scores(rng, n_norm, n_anom, shift=2.5)
        calls.append(Call("evaluate_on_test", val, test, labels, target))
    return calls


@task(5, "evaluate_on_test", _evaluate_questions, uses=("evaluate_on_test",), seed=505, allow=ALLOW)
def check_evaluate_on_test(answers):
    """Check ``evaluate_on_test(val_normal_scores, test_scores, test_labels, target_fpr)
    -> (threshold, rates)``: the threshold from the normal validation scores only
    (as in task 3), and the rates of task 1 on the test set at that threshold."""
    __tracebackhide__ = True  # noqa: F841
    for call, result in answers:
        val, test, labels, target = call.args
        where = _inputs(val_normal_scores=val, test_scores=test, test_labels=labels,
                        target_fpr=target)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed(
                "evaluate_on_test must return a pair (threshold, rates), received "
                f"{type(result).__name__} {_fmt(result) if not isinstance(result, Mapping) else ''}"
            )
        t = _as_float(result[0], "the threshold returned by evaluate_on_test")
        problem = _threshold_problem(t, val, target)
        if problem:
            hint = None
            for data, why in [
                (test, "you set the threshold on the test scores, anomalies included: the "
                       "threshold must come from the normal validation scores only "
                       "(val_normal_scores)"),
                (test[labels == 0], "you set the threshold on the normal samples of the TEST set, "
                                    "using its labels: when you choose the threshold the test "
                                    "labels are unknown; use val_normal_scores"),
                (np.r_[val, test], "you mixed the test scores (with their anomalies) into the "
                                   "validation scores: use val_normal_scores only"),
            ]:
                if _threshold_problem(t, data, target) is None:
                    hint = why
                    break
            msg = "wrong threshold returned by evaluate_on_test\n" + where + "\n"
            if hint:
                msg += problem.split("\nhint: ")[0] + "\nhint: " + hint
            else:
                msg += problem
            raise CheckFailed(msg)
        got = _normalise_rates(result[1], "evaluate_on_test (its rates)")
        _compare_rates(got, test, labels, t, what="evaluate_on_test",
                       where=where + f", at your threshold {t:.6g}")


#: The checks of exercise 1 by task id (the ids of the ``check`` cells' metadata).
TASKS = {
    "task-1": check_confusion_rates,
    "task-2": check_roc,
    "task-3": check_threshold_for_fpr,
    "task-4": check_best_roc_threshold,
    "task-5": check_evaluate_on_test,
}

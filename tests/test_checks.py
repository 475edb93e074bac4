"""adcourse.checks: every check passes on the reference solution and fails, with a helpful
hint, on the typical mistakes of students."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from adcourse import checks
from adcourse.checks import CheckFailed

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01-performance-measures.ipynb"


@pytest.fixture(scope="module")
def ref():
    """The reference functions, taken from the solution notebook's ``solution`` cells."""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    ns = {"np": np}
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            exec(compile(cell.source, str(SOLUTION), "exec"), ns)
    return ns


def fails(check, *args, match):
    """Run ``check`` expecting CheckFailed whose message matches every regex in ``match``."""
    with pytest.raises(CheckFailed) as info:
        check(*args)
    msg = str(info.value)
    for pattern in [match] if isinstance(match, str) else match:
        assert re.search(pattern, msg, re.S), f"{pattern!r} not in:\n{msg}"
    return msg


def test_checkfailed_is_an_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


def test_registry_names_every_check_of_exercise_1():
    tasks = checks.TASKS["01-performance-measures"]
    assert list(tasks) == [f"task-{i}" for i in range(1, 6)]
    assert all(f.task == t for t, f in tasks.items())


@pytest.mark.parametrize("task, names", [
    ("task-1", ["confusion_rates"]),
    ("task-2", ["roc_points", "auc_trapezoid"]),
    ("task-3", ["threshold_for_fpr"]),
    ("task-4", ["best_roc_threshold"]),
    ("task-5", ["evaluate_on_test"]),
])
def test_reference_passes(ref, capsys, task, names):
    checks.TASKS["01-performance-measures"][task](*[ref[n] for n in names])
    assert f"✓ Task {task[-1]} passed" in capsys.readouterr().out


def test_student_errors_propagate_unchanged():
    def stub(*args):
        raise NotImplementedError()

    for check in (checks.check_confusion_rates, checks.check_threshold_for_fpr):
        with pytest.raises(NotImplementedError):
            check(stub)


def test_not_a_function():
    fails(checks.check_confusion_rates, {"TPR": 1.0}, match=["Task 1", "expected a function"])


# ---- task 1 -------------------------------------------------------------------------


def _rates(strict=False, swap_fpr_tnr=False, fpr_over_n=False, precision_nan=False,
           f1_no_factor=False, inverted=False, keys=None, as_list=False):
    def confusion_rates(scores, labels, threshold):
        s = np.asarray(scores, dtype=float)
        a = np.asarray(labels) == (0 if inverted else 1)
        d = s > threshold if strict else s >= threshold
        tp, fp = np.sum(d & a), np.sum(d & ~a)
        tn, fn = np.sum(~d & ~a), np.sum(~d & a)
        tpr, fpr = tp / (tp + fn), fp / (fp + tn)
        if fpr_over_n:
            fpr = fp / s.size
        if swap_fpr_tnr:
            fpr = 1 - fpr
        prec = tp / (tp + fp) if tp + fp else (np.nan if precision_nan else 1.0)
        f1 = (1 if f1_no_factor else 2) * tp / (2 * tp + fp + fn)
        out = {"TPR": tpr, "FPR": fpr, "FNR": 1 - tpr, "TNR": 1 - fpr, "precision": prec,
               "accuracy": (tp + tn) / s.size, "F1": f1}
        if keys:
            out = {k: v for k, v in out.items() if k in keys}
        return list(out.values()) if as_list else out
    return confusion_rates


def test_task1_lowercase_keys_are_accepted(capsys):
    base = _rates()
    checks.check_confusion_rates(lambda *a: {k.lower(): v for k, v in base(*a).items()})
    assert "✓ Task 1 passed" in capsys.readouterr().out


def test_task1_strict_inequality():
    msg = fails(checks.check_confusion_rates, _rates(strict=True),
                match=[r"score > threshold", r">= threshold", r"expected TPR = ",
                       r"on the input scores=\[0\.1 *, 0\.4 *, 0\.35"])
    assert msg.startswith("Task 1 (confusion_rates): ")


def test_task1_fpr_is_tnr():
    fails(checks.check_confusion_rates, _rates(swap_fpr_tnr=True),
          match=[r"wrong FPR", r"your FPR equals the TNR", r"FP / \(FP \+ TN\)"])


def test_task1_fpr_divided_by_all_samples():
    fails(checks.check_confusion_rates, _rates(fpr_over_n=True),
          match=r"divided by all samples")


def test_task1_inverted_labels():
    fails(checks.check_confusion_rates, _rates(inverted=True), match=r"label 1")


def test_task1_precision_without_detections():
    fails(checks.check_confusion_rates, _rates(precision_nan=True),
          match=[r"wrong precision", r"nothing is detected", r"1\.0"])


def test_task1_f1_without_factor_2():
    fails(checks.check_confusion_rates, _rates(f1_no_factor=True), match=r"factor 2")


def test_task1_missing_key_and_wrong_type():
    fails(checks.check_confusion_rates, _rates(keys={"TPR", "FPR"}),
          match=[r"lacks the key", "FNR"])
    fails(checks.check_confusion_rates, _rates(as_list=True), match=r"must return a dict")


# ---- task 2 -------------------------------------------------------------------------


def _roc(ref, mode):
    def roc_points(scores, labels):
        s = np.asarray(scores, dtype=float)
        a = np.asarray(labels) == 1
        thr = np.unique(s)[::-1]
        if mode == "duplicates":
            thr = np.sort(s)[::-1]
        if mode != "no-inf":
            thr = np.r_[np.inf, thr]
        d = s[None, :] > thr[:, None] if mode == "strict" else s[None, :] >= thr[:, None]
        fpr, tpr = (d & ~a).sum(1) / (~a).sum(), (d & a).sum(1) / a.sum()
        if mode == "swapped":
            return tpr, fpr
        if mode == "reversed":
            return fpr[::-1], tpr[::-1]
        return fpr, tpr
    return roc_points


@pytest.mark.parametrize("mode, pattern", [
    ("no-inf", r"misses the point \(0, 0\)"),
    ("strict", r"score > threshold"),
    ("swapped", r"return the false positive rates first"),
    ("reversed", r"order them by decreasing threshold"),
    ("duplicates", r"np\.unique"),
])
def test_task2_roc_mistakes(ref, mode, pattern):
    fails(checks.check_roc, _roc(ref, mode), ref["auc_trapezoid"],
          match=["Task 2", "wrong ROC points", "expected fpr = ", pattern])


def test_task2_auc_mistakes(ref):
    def left(fpr, tpr):
        return float(np.sum(np.diff(fpr) * np.asarray(tpr)[:-1]))

    def swapped(fpr, tpr):
        return float(np.trapezoid(fpr, tpr))

    fails(checks.check_roc, ref["roc_points"], left, match=[r"wrong value returned by auc", "rectangles"])
    fails(checks.check_roc, ref["roc_points"], swapped, match=r"integrated fpr over tpr")


def test_task2_library_answers_pass(capsys):
    from sklearn.metrics import auc, roc_curve

    checks.check_roc(lambda s, y: roc_curve(y, s, drop_intermediate=False)[:2], auc)
    assert "✓ Task 2 passed" in capsys.readouterr().out


# ---- task 3 -------------------------------------------------------------------------


def test_task3_mistakes():
    fails(checks.check_threshold_for_fpr, lambda s, a: float(np.quantile(s, a)),
          match=["Task 3", r"received 0\.02", r"\(1 - target_fpr\) quantile"])
    fails(checks.check_threshold_for_fpr,  # "> threshold" thinking: the score at the pivot
          lambda s, a: float(np.sort(s)[len(s) - int(len(s) * a + 1e-9) - 1]),
          match=r"one normal score too many")
    fails(checks.check_threshold_for_fpr, lambda s, a: float(np.max(s)), match=r"too high")
    fails(checks.check_threshold_for_fpr, lambda s, a: float(np.quantile(s, 1 - a)),
          match=r"np\.quantile interpolates")


def test_task3_threshold_object_and_any_value_in_the_interval_pass(capsys):
    from adcourse.decision import Threshold

    checks.check_threshold_for_fpr(lambda s, a: Threshold.from_fpr(s, a))  # float() works
    checks.check_threshold_for_fpr(  # midpoint between the pivot and the reference
        lambda s, a: (np.sort(s)[len(s) - int(len(s) * a + 1e-9) - 1]
                      + Threshold.from_fpr(s, a).value) / 2)
    assert capsys.readouterr().out.count("✓ Task 3 passed") == 2


# ---- task 4 -------------------------------------------------------------------------


def _best(ref, mode):
    def best_roc_threshold(scores, labels):
        fpr, tpr = ref["roc_points"](scores, labels)
        thr = np.r_[np.inf, np.unique(np.asarray(scores, dtype=float))[::-1]]
        if mode == "youden":
            return float(thr[1:][np.argmax(tpr[1:] - fpr[1:])])
        d = np.sqrt(fpr[1:] ** 2 + (1 - tpr[1:]) ** 2)
        if mode == "smaller-on-ties":
            return float(thr[1:][len(d) - 1 - np.argmin(d[::-1])])
        if mode == "index":
            return int(np.argmin(d)) + 1
        return float(thr[1:][np.argmin(d)])
    return best_roc_threshold


@pytest.mark.parametrize("mode, pattern", [
    ("youden", r"Youden"),
    ("smaller-on-ties", r"LARGER threshold on ties"),
    ("index", r"you returned an index"),
])
def test_task4_mistakes(ref, mode, pattern):
    fails(checks.check_best_roc_threshold, _best(ref, mode),
          match=["Task 4", r"distance .* from \(0, 1\)", pattern])


def test_task4_reference_rule_passes(ref, capsys):
    checks.check_best_roc_threshold(_best(ref, "ok"))
    assert "✓ Task 4 passed" in capsys.readouterr().out


# ---- task 5 -------------------------------------------------------------------------


def test_task5_threshold_tuned_on_test_data(ref):
    def on_test(val, test, labels, a):
        t = ref["threshold_for_fpr"](test, a)
        return t, ref["confusion_rates"](test, labels, t)

    def on_test_normals(val, test, labels, a):
        t = ref["threshold_for_fpr"](np.asarray(test)[np.asarray(labels) == 0], a)
        return t, ref["confusion_rates"](test, labels, t)

    fails(checks.check_evaluate_on_test, on_test,
          match=["Task 5", r"anomalies included", r"val_normal_scores"])
    fails(checks.check_evaluate_on_test, on_test_normals, match=r"test labels are unknown")


def test_task5_wrong_rates_and_shape(ref):
    def swapped_rates(val, test, labels, a):
        t = ref["threshold_for_fpr"](val, a)
        return t, _rates(swap_fpr_tnr=True)(test, labels, t)

    fails(checks.check_evaluate_on_test, swapped_rates,
          match=[r"wrong FPR", r"at your threshold", r"your FPR equals the TNR"])
    fails(checks.check_evaluate_on_test, lambda *a: 1.0, match=r"pair \(threshold, rates\)")

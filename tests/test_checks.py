"""adcourse.course.checks: every check passes on the reference solution and fails, with a helpful
hint, on the typical mistakes of students."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from adcourse.course import checks, judge
from adcourse.course.checks import CheckFailed, _kernel

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01-performance-measures.ipynb"


def solution_functions(path, **namespace):
    """The reference functions of a solution notebook: its ``solution`` code cells run in
    ``namespace`` (plus ``np``)."""
    nb = nbformat.read(str(path), as_version=4)
    ns = {"np": np, **namespace}
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            exec(compile(cell.source, str(path), "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def ref():
    """The reference functions, taken from the solution notebook's ``solution`` cells."""
    return solution_functions(SOLUTION)


def judged(check, *functions):
    """The grader's verdict ``(passed, reason)`` on ``functions``: the answers recorded as in a
    kernel (the check's own seed), sent through JSON, decoded and judged."""
    raw = _kernel.record(check, check.seed, dict(zip(check.uses, functions)))
    return judge.judge_task(check, json.loads(json.dumps(raw)), check.seed)


def passes_everywhere(check, ref, capsys, seeds=(1, 2, 3)):
    """The reference passes the check cell (the check's own seed, functions found by name) and
    the grader's judge, with the check's seed and with other seeds."""
    exec(f"check()", {"check": check, **ref})
    assert f"✓ Task {check.number} passed" in capsys.readouterr().out
    for seed in (check.seed, *seeds):
        raw = _kernel.record(check, seed, ref)
        assert judge.judge_task(check, json.loads(json.dumps(raw)), seed) == (True, ""), seed


def fails(check, *args, match, same_in_judge=True):
    """Run ``check`` expecting CheckFailed whose message matches every regex in ``match``; the
    grader's judge, on the same answers, fails the task with the same message."""
    with pytest.raises(CheckFailed) as info:
        check(*args)
    msg = str(info.value)
    for pattern in [match] if isinstance(match, str) else match:
        assert re.search(pattern, msg, re.S), f"{pattern!r} not in:\n{msg}"
    if same_in_judge:
        assert judged(check, *args) == (False, judge.clean_reason(f"CheckFailed: {msg}"))
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
    passes_everywhere(checks.TASKS["01-performance-measures"][task], ref, capsys)


def test_student_errors_propagate_unchanged():
    def stub(*args):
        raise NotImplementedError()

    for check in (checks.check_confusion_rates, checks.check_threshold_for_fpr):
        with pytest.raises(NotImplementedError):
            check(stub)


def test_not_a_function():
    fails(checks.check_confusion_rates, {"TPR": 1.0}, match=["Task 1", "expected a function"])


def test_check_cell_finds_the_functions_by_name_and_says_which_cell_to_run(ref, capsys):
    with pytest.raises(checks.NotDefined) as info:  # a NameError
        exec("check_roc()", {"check_roc": checks.check_roc, "roc_points": ref["roc_points"]})
    assert str(info.value) == (
        "Task 2 (roc_points and auc_trapezoid): auc_trapezoid is not defined: run the cell above "
        "that defines auc_trapezoid first (and the cells before it), then this check again")
    assert isinstance(info.value, NameError)
    exec("check_roc()", {"check_roc": checks.check_roc, **ref})
    assert "✓ Task 2 passed" in capsys.readouterr().out
    # the grader's judge: the same function missing
    raw = _kernel.record(checks.check_roc, 5, {"roc_points": ref["roc_points"]})
    assert judge.judge_task(checks.check_roc, raw, 5) == (
        False, "NameError: auc_trapezoid is not defined")


def test_a_failure_shows_only_its_message_in_a_notebook():
    """IPython shows ``_render_traceback_`` instead of a traceback: the error name and the message."""
    with pytest.raises(CheckFailed) as info:
        checks.check_confusion_rates(_rates(strict=True))
    lines = info.value._render_traceback_()
    assert "CheckFailed" in lines[0] and "Task 1 (confusion_rates): wrong " in lines[0]
    assert lines[1:] == str(info.value).splitlines()[1:] and lines[-1].startswith("hint: ")
    assert not any("Traceback" in line or "File " in line for line in lines)


def test_student_errors_in_the_judge():
    def stub(*args):
        raise NotImplementedError()

    def typo(scores, labels, threshold):
        return {"TPR": scorez}  # noqa: F821

    assert judged(checks.check_confusion_rates, stub) == (False, "NotImplementedError")
    assert judged(checks.check_confusion_rates, typo) == (
        False, "NameError: name 'scorez' is not defined")


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


# =====================================================================================
# exercise 2: random vectors
# =====================================================================================

SOLUTION_2 = ROOT / "solutions" / "02-random-vectors.ipynb"


@pytest.fixture(scope="module")
def ref2():
    """The reference functions of exercise 2, from its solution notebook."""
    return solution_functions(SOLUTION_2)


def test_registry_names_every_check_of_exercise_2():
    tasks = checks.TASKS["02-random-vectors"]
    assert list(tasks) == [f"task-{i}" for i in range(1, 6)]
    assert all(f.task == t for t, f in tasks.items())
    assert set(checks.TASKS) == {"01-performance-measures", "02-random-vectors", "03-image-patches",
                                 "04-subspaces-sparse-coding", "05-cnn-features", "06-autoencoders",
                                 "07-self-supervision",
                                 "08-deep-svdd", "09-gans"}
    for exercise in checks.TASKS.values():  # every check is exported by the package
        for check in exercise.values():
            assert getattr(checks, check.__name__) is check and check.__name__ in checks.__all__


@pytest.mark.parametrize("task, names", [
    ("task-1", ["mahalanobis_scores"]),
    ("task-2", ["em_step"]),
    ("task-3", ["c_factor", "isolation_score"]),
    ("task-4", ["knn_score"]),
    ("task-5", ["choose_nu"]),
])
def test_exercise_2_reference_passes(ref2, capsys, task, names):
    passes_everywhere(checks.TASKS["02-random-vectors"][task], ref2, capsys, seeds=(1,))


def test_exercise_2_student_errors_propagate_unchanged():
    def stub(*args):
        raise NotImplementedError()

    for check in (checks.check_mahalanobis_scores, checks.check_em_step, checks.check_knn_score,
                  checks.check_choose_nu):
        with pytest.raises(NotImplementedError):
            check(stub)
    with pytest.raises(NotImplementedError):
        checks.check_isolation(stub, stub)
    fails(checks.check_em_step, 3.0, match=["Task 2", "expected a function"])


# ---- exercise 2, task 1 -------------------------------------------------------------


def _maha(ddof=0, squared=False, centre_x=True, centre_cov=True, euclid=False):
    def mahalanobis_scores(X_train, X):
        mu = X_train.mean(axis=0)
        Z = X_train - mu if centre_cov else X_train
        sigma = Z.T @ Z / (len(X_train) - ddof)
        D = X - mu if centre_x else X
        d2 = np.sum(D * np.linalg.solve(sigma, D.T).T, axis=1) if not euclid else np.sum(D**2, axis=1)
        return d2 if squared else np.sqrt(d2)
    return mahalanobis_scores


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(ddof=1), r"np\.cov.*n - 1 = 11.*sqrt\(\(n-1\)/n\)"),
    (dict(squared=True), r"SQUARED distance"),
    (dict(ddof=1, squared=True), r"squared distance, with the unbiased covariance"),
    (dict(centre_x=False), r"did not centre the new samples"),
    (dict(centre_cov=False), r"did not centre the training data"),
    (dict(euclid=True), r"Euclidean distance to the mean"),
])
def test_ex2_task1_mistakes(kwargs, pattern):
    fails(checks.check_mahalanobis_scores, _maha(**kwargs),
          match=["Task 1 \\(mahalanobis_scores\\)", "wrong distances", "expected", "received",
                 pattern])


def test_ex2_task1_np_cov_variants_and_shapes(capsys):
    def with_np_cov(X_train, X, bias):
        d = X - X_train.mean(axis=0)
        cov = np.cov(X_train, rowvar=False, bias=bias)
        return np.sqrt(np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d))

    checks.check_mahalanobis_scores(lambda A, B: with_np_cov(A, B, True))
    checks.check_mahalanobis_scores(lambda A, B: with_np_cov(A, B, True)[:, None])  # (m, 1) is fine
    assert "✓ Task 1 passed" in capsys.readouterr().out
    fails(checks.check_mahalanobis_scores, lambda A, B: with_np_cov(A, B, False),
          match=r"unbiased covariance")
    fails(checks.check_mahalanobis_scores, lambda A, B: np.zeros((len(B), 2)),
          match=r"must have shape \(6,\)")
    fails(checks.check_mahalanobis_scores, lambda A, B: 2 * with_np_cov(A, B, True),
          match=r"every value you returned is 2 times the expected one")


# ---- exercise 2, task 2 -------------------------------------------------------------


def _em(flags):
    from adcourse.course.checks.random_vectors import _em_reference

    def em_step(X, weights, means, covariances):
        return _em_reference(X, weights, means, covariances, **flags)
    return em_step


def test_ex2_task2_independent_reference_agrees_with_gmm_detector():
    import warnings

    from adcourse.course.checks.random_vectors import _em_reference, _hard_start, _mixture_data
    from adcourse.vectors.density import GMMDetector

    rng = np.random.default_rng(7)
    for n, d, K in [(40, 2, 2), (150, 3, 3), (90, 2, 4)]:
        X = _mixture_data(rng, n, d, K)
        init = X[rng.choice(n, size=K, replace=False)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gmm = GMMDetector(n_components=K, init=init, max_iter=1, covariance_reg=0.0,
                              history=True).fit(X)
        theta0 = _hard_start(X, init)  # the questions' start: GMMDetector's theta_0
        for a, b in zip(theta0, gmm.history_[0]):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        theta1 = (gmm.weights_, gmm.means_, gmm.covariances_)  # GMMDetector's first EM iteration
        for a, b in zip(_em_reference(X, *theta0), theta1):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        assert np.abs(theta1[1] - theta0[1]).max() > 0.05  # a real step: the means move


@pytest.mark.parametrize("flags, pattern", [
    (dict(old_means=True), r"wrong covariances.*centred on the OLD means"),
    (dict(no_norm_weights=True), r"wrong weights returned.*divide by n"),
    (dict(gamma_unnormalised=True), r"not normalised over the components"),
    (dict(gamma_over_samples=True), r"normalised the membership weights over the samples"),
    (dict(no_prior=True), r"forgot the mixing weights"),
    (dict(cov_over_n=True), r"its own N_k"),
])
def test_ex2_task2_mistakes(ref2, flags, pattern):
    fails(checks.check_em_step, _em(flags),
          match=["Task 2 \\(em_step\\)", "expected", "received", pattern])


def test_ex2_task2_wrong_return_and_regularised_covariances(ref2):
    fails(checks.check_em_step, lambda X, w, m, c: (w, m), match=r"must return three arrays")
    fails(checks.check_em_step, lambda X, w, m, c: (w, m, c), match=r"the parameters you were given")

    def regularised(X, w, m, c):
        w2, m2, c2 = ref2["em_step"](X, w, m, c)
        return w2, m2, c2 + 1e-3 * np.eye(X.shape[1])

    fails(checks.check_em_step, regularised,
          match=[r"wrong covariances returned", r"no regularisation"])


# ---- exercise 2, task 3 -------------------------------------------------------------


def _c(special=True, log=np.log, shift=1, exact=False):
    def c_factor(n):
        n = np.asarray(n, dtype=float)
        if exact:
            out = np.array([2 * np.sum(1 / np.arange(1, m)) - 2 * (m - 1) / m if m > 2 else 0.0
                            for m in n.ravel()]).reshape(n.shape)
        else:
            out = 2 * (log(n - shift) + np.euler_gamma) - 2 * (n - 1) / n
        if special:
            out = np.where(n == 2, 1.0, np.where(n < 2, 0.0, out))
        return out if out.ndim else float(out)
    return c_factor


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(special=False), r"only holds for n > 2.*c\(1\) = 0.*c\(2\) = 1"),
    (dict(log=np.log2), r"NATURAL logarithm"),
    (dict(log=np.log2, special=False), r"log2.*special cases"),
    (dict(shift=0), r"H\(n\) instead of H\(n-1\)"),
    (dict(exact=True), r"exact harmonic number.*approximation"),
])
def test_ex2_task3_c_factor_mistakes(ref2, kwargs, pattern):
    fails(checks.check_isolation, _c(**kwargs), ref2["isolation_score"],
          match=["Task 3 \\(c_factor and isolation_score\\)", "wrong values returned by c_factor",
                 pattern])


def test_ex2_task3_c_factor_scalar_and_special_case_report(ref2):
    def arrays_only(n):
        out = ref2["c_factor"](n)
        return np.atleast_1d(out)[:1] * 0 if np.ndim(n) == 0 else out

    fails(checks.check_isolation, arrays_only, ref2["isolation_score"], match=r"c_factor\(256\)")

    def wrong_c2(n):
        out = np.array(ref2["c_factor"](n), dtype=float)
        return np.where(np.asarray(n) == 2, 0.5, out)

    fails(checks.check_isolation, wrong_c2, ref2["isolation_score"],
          match=r"right for n > 2 but c\(1\) = 0, c\(2\) = 0\.5")


@pytest.mark.parametrize("score, pattern", [
    (lambda h, psi, c: np.exp(-np.asarray(h) / c(psi)), r"power of 2"),
    (lambda h, psi, c: 2.0 ** (np.asarray(h) / c(psi)), r"minus sign"),
    (lambda h, psi, c: 2.0 ** (-np.asarray(h) / np.log2(psi)), r"normalised by log2\(psi\)"),
    (lambda h, psi, c: 2.0 ** (-np.asarray(h) / psi), r"normalised by psi"),
    (lambda h, psi, c: 1 - 2.0 ** (-np.asarray(h) / c(psi)), r"that is 1 - s"),
])
def test_ex2_task3_isolation_score_mistakes(ref2, score, pattern):
    c = ref2["c_factor"]
    fails(checks.check_isolation, c, lambda h, psi: score(h, psi, c),
          match=["Task 3", "wrong scores returned by isolation_score", pattern])


def test_ex2_task3_library_c_factor_passes(ref2, capsys):
    from adcourse.vectors.isolation import c_factor

    checks.check_isolation(c_factor, ref2["isolation_score"])
    assert "✓ Task 3 passed" in capsys.readouterr().out


# ---- exercise 2, task 4 -------------------------------------------------------------


def _knn(offset=0, squared=False, mean=False, largest=False):
    def knn_score(X_train, X, k):
        D = np.sort(np.linalg.norm(X[:, None, :] - X_train[None, :, :], axis=2), axis=1)
        if mean:
            out = D[:, :k].mean(axis=1)
        elif largest:
            out = D[:, -k]
        else:
            out = D[:, k - 1 + offset]
        return out ** 2 if squared else out
    return knn_score


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(offset=-1), r"off by one: that is the distance to the 1st nearest.*not the 2nd.*index k - 1 = 1"),
    (dict(offset=+1), r"off by one: that is the distance to the 3rd nearest"),
    (dict(squared=True), r"returned the squared distance"),
    (dict(mean=True), r"mean distance to the k nearest"),
    (dict(largest=True), r"k-th LARGEST"),
    (dict(offset=+1, squared=True), r"off by one and squared"),
])
def test_ex2_task4_mistakes(kwargs, pattern):
    fails(checks.check_knn_score, _knn(**kwargs),
          match=["Task 4 \\(knn_score\\)", "wrong scores", r"k=2", pattern])


def test_ex2_task4_sklearn_answer_passes(capsys):
    from sklearn.neighbors import NearestNeighbors

    def knn_score(X_train, X, k):
        return NearestNeighbors(n_neighbors=k).fit(X_train).kneighbors(X)[0][:, -1]

    checks.check_knn_score(knn_score)
    assert "✓ Task 4 passed" in capsys.readouterr().out


# ---- exercise 2, task 5 -------------------------------------------------------------


def _nu(measure="val", largest=True, in_grid_order=False, strict=False, none_as=None):
    from adcourse.vectors.domain import OneClassSVMDetector

    def choose_nu(X_train, X_val, target_fpr, grid):
        if measure == "naive":
            ok = [nu for nu in grid if nu <= target_fpr]
        else:
            ok = []
            for nu in grid:
                det = OneClassSVMDetector(nu=nu).fit(X_train)
                fpr = {"val": lambda: np.mean(det.anomaly_score(X_val) > 0),
                       "train": lambda: np.mean(det.anomaly_score(X_train) > 0),
                       "outlier_fraction": lambda: det.training_outlier_fraction_}[measure]()
                if fpr < target_fpr if strict else fpr <= target_fpr:
                    ok.append(nu)
        if not ok:
            return none_as
        if in_grid_order:
            return ok[-1]
        return max(ok) if largest else min(ok)
    return choose_nu


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(measure="outlier_fraction"), r"expected 0\.05, received 0\.1.*training outlier fraction"),
    (dict(measure="train"), r"measured the FPR on the training samples"),
    (dict(measure="naive"), r"expected None, received 0\.05.*without measuring anything"),
    (dict(largest=False), r"SMALLEST nu"),
    (dict(in_grid_order=True), r"grid is not sorted"),
    (dict(strict=True), r"exactly equal to target_fpr is acceptable"),
    (dict(none_as=0.0), r"return one of the values of the grid \(or None\)"),
])
def test_ex2_task5_mistakes(kwargs, pattern):
    fails(checks.check_choose_nu, _nu(**kwargs),
          match=["Task 5 \\(choose_nu\\)", "wrong nu returned", r"validation FPR", pattern])


def test_ex2_task5_reference_rule_passes(capsys):
    checks.check_choose_nu(_nu())
    assert "✓ Task 5 passed" in capsys.readouterr().out


# =====================================================================================
# exercises 3 and 4: image patches; subspaces and sparse coding
# =====================================================================================


def _reference(name):
    path = ROOT / "solutions" / f"{name}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    ns = {"np": np}
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            exec(compile(cell.source, str(path), "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def ref3():
    """The reference functions of exercise 3, from its solution notebook."""
    return _reference("03-image-patches")


@pytest.fixture(scope="module")
def ref4():
    """The reference functions of exercise 4, from its solution notebook."""
    return _reference("04-subspaces-sparse-coding")


@pytest.mark.parametrize("exercise, n_tasks", [("03-image-patches", 4),
                                                ("04-subspaces-sparse-coding", 5)])
def test_registry_of_exercises_3_and_4(exercise, n_tasks):
    tasks = checks.TASKS[exercise]
    assert list(tasks) == [f"task-{i}" for i in range(1, n_tasks + 1)]
    assert all(f.task == t for t, f in tasks.items())


@pytest.mark.parametrize("exercise, task, names", [
    ("03-image-patches", "task-1", ["extract_all_patches"]),
    ("03-image-patches", "task-2", ["average_map"]),
    ("03-image-patches", "task-3", ["pca_directions"]),
    ("03-image-patches", "task-4", ["two_energies"]),
    ("04-subspaces-sparse-coding", "task-1", ["reconstruction_error"]),
    ("04-subspaces-sparse-coding", "task-2", ["soft_threshold"]),
    ("04-subspaces-sparse-coding", "task-3", ["admm_step"]),
    ("04-subspaces-sparse-coding", "task-4", ["sparse_features"]),
    ("04-subspaces-sparse-coding", "task-5", ["density_threshold"]),
])
def test_exercises_3_and_4_reference_passes(ref3, ref4, capsys, exercise, task, names):
    passes_everywhere(checks.TASKS[exercise][task], ref3 if exercise.startswith("03") else ref4,
                      capsys)


def test_exercises_3_and_4_student_errors_propagate_unchanged():
    def stub(*args):
        raise NotImplementedError()

    for exercise in ("03-image-patches", "04-subspaces-sparse-coding"):
        for check in checks.TASKS[exercise].values():
            with pytest.raises(NotImplementedError):
                check(stub)
    fails(checks.check_soft_threshold, 0.5, match=["Task 2", "expected a function"])


def test_ex3_ex4_import_of_checks_stays_light():
    """The checks import their detectors lazily: `import adcourse.course.checks` needs no scikit-learn."""
    import subprocess
    import sys

    code = "import sys, adcourse.course.checks; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- exercise 3, task 1 -------------------------------------------------------------


def _extract(order="row", transpose=False, grid=0, shape="rows"):
    def extract_all_patches(image, p):
        H, W = image.shape
        ii, jj = range(H - p + 1 + grid), range(W - p + 1 + grid)
        pairs = [(i, j) for i in ii for j in jj] if order == "row" else [(i, j) for j in jj for i in ii]
        patches = [image[i:i + p, j:j + p].T if transpose else image[i:i + p, j:j + p]
                   for i, j in pairs]
        out = np.array(patches)
        if shape == "rows":
            return out.reshape(len(pairs), -1)
        if shape == "cols":
            return out.reshape(len(pairs), -1).T
        return out
    return extract_all_patches


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(order="col"), r"right patches in the wrong order.*j \(the column\) changes fastest"),
    (dict(transpose=True), r"read column by column \(transposed\)"),
    (dict(order="col", transpose=True), r"column order AND transposed"),
    (dict(grid=-1), r"wrong shape.*expected shape \(12, 4\), received shape \(6, 4\).*off by one.*"
                    r"range\(H - p \+ 1\)"),
    (dict(shape="square"), r"flatten each one"),
    (dict(shape="cols"), r"one ROW per patch"),
])
def test_ex3_task1_mistakes(kwargs, pattern):
    fails(checks.check_extract_all_patches, _extract(**kwargs),
          match=["Task 1 \\(extract_all_patches\\)", r"a 4x5 image", pattern])


def test_ex3_task1_library_answer_passes_and_default_hint(capsys):
    from adcourse.images.patches import extract_patches, patches_as_vectors

    checks.check_extract_all_patches(lambda im, p: patches_as_vectors(extract_patches(im[None], p)))
    assert "✓ Task 1 passed" in capsys.readouterr().out
    fails(checks.check_extract_all_patches, lambda im, p: _extract()(im, p) + 1.0,
          match=[r"wrong patches", r"row 0 must be the patch with top-left corner \(0, 0\)"])


# ---- exercise 3, task 2 -------------------------------------------------------------


def _average(mode="mean"):
    def average_map(scores, image_shape, p):
        sums, counts = np.zeros(image_shape), np.zeros(image_shape)
        for i in range(scores.shape[0]):
            for j in range(scores.shape[1]):
                sums[i:i + p, j:j + p] += scores[i, j]
                counts[i:i + p, j:j + p] += 1
        return {"mean": sums / np.maximum(counts, 1), "sum": sums, "p2": sums / p ** 2,
                "count": counts}[mode]
    return average_map


@pytest.mark.parametrize("mode, pattern", [
    ("sum", r"SUM of the scores"),
    ("p2", r"you divided by p\*p"),
    ("count", r"number of patches covering each pixel"),
])
def test_ex3_task2_mistakes(mode, pattern):
    fails(checks.check_average_map, _average(mode),
          match=["Task 2 \\(average_map\\)", "wrong map", r"image_shape=\(5, 6\)", pattern])


def test_ex3_task2_centre_assignment_and_library(capsys):
    from adcourse.images.patches import patch_scores_to_map

    checks.check_average_map(lambda s, shape, p: patch_scores_to_map(s, shape, p))  # (1, H, W) ok
    assert "✓ Task 2 passed" in capsys.readouterr().out
    fails(checks.check_average_map,
          lambda s, shape, p: patch_scores_to_map(s, shape, p, mode="centre")[0],
          match=r"centre assignment")
    fails(checks.check_average_map, lambda s, shape, p: np.zeros((2, 2)),
          match=r"must have shape \(5, 6\)")


# ---- exercise 3, task 3 -------------------------------------------------------------


def _pca(centre=True, last=False, rows=False, eig_rows=False, scale=False, mean_ok=True):
    def pca_directions(X, m):
        mean = X.mean(axis=0)
        Z = X - mean if centre else X
        w, V = np.linalg.eigh(Z.T @ Z / len(X))
        if eig_rows:
            P = V[-m:, :].T
        else:
            P = V[:, :m] if last else V[:, ::-1][:, :m]
        if scale:
            P = P * np.sqrt(w[::-1][:m])
        return (mean if mean_ok else np.zeros_like(mean)), (P.T if rows else P)
    return pca_directions


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(centre=False), r"did not centre X"),
    (dict(last=True), r"LAST m principal directions.*INCREASING order"),
    (dict(eig_rows=True), r"ROWS of the eigenvector matrix"),
    (dict(rows=True), r"wrong shape of P.*expected shape \(6, 2\), received \(2, 6\).*as ROWS"),
    (dict(scale=True), r"not orthonormal"),
    (dict(mean_ok=False), r"wrong mean.*X\.mean\(axis=0\)"),
])
def test_ex3_task3_mistakes(kwargs, pattern):
    fails(checks.check_pca_directions, _pca(**kwargs),
          match=["Task 3 \\(pca_directions\\)", r"300 samples of dimension d = 6", pattern])


def test_ex3_task3_svd_with_flipped_signs_passes(capsys):
    def with_svd(X, m):
        mean = X.mean(axis=0)
        _, _, Vt = np.linalg.svd(X - mean, full_matrices=False)
        return mean, -Vt[:m].T                     # signs are arbitrary

    checks.check_pca_directions(with_svd)
    assert "✓ Task 3 passed" in capsys.readouterr().out
    fails(checks.check_pca_directions, lambda X, m: X.mean(axis=0),
          match=r"must return 2 arrays, \(mean, P\)")


# ---- exercise 3, task 4 -------------------------------------------------------------


def _energies(centre=True, sqrt=False, log=False, swap=False, recon_mean=True):
    def two_energies(S, mean, P):
        R = S - mean if centre else S
        Z = R @ P
        res = (R if recon_mean else S) - Z @ P.T
        out = [np.sum(res ** 2, axis=1), np.sum(Z ** 2, axis=1)]
        if sqrt:
            out = [np.sqrt(v) for v in out]
        if log:
            out = [np.log(v + 1e-8) for v in out]
        return tuple(out[::-1]) if swap else tuple(out)
    return two_energies


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(centre=False), r"wrong residual_energy.*did not subtract the mean"),
    (dict(sqrt=True), r"you returned norms: the energies are SQUARED norms"),
    (dict(log=True), r"returned the logarithms"),
    (dict(swap=True), r"in the wrong order"),
    (dict(recon_mean=False), r"your residual is s - P P\^T r"),
])
def test_ex3_task4_mistakes(kwargs, pattern):
    fails(checks.check_two_energies, _energies(**kwargs), match=["Task 4 \\(two_energies\\)", pattern])


def test_ex3_task4_reference_matches_pca_feature_detector(ref3):
    S, mean, P = checks.check_two_energies.calls()[0].args  # the check's first question
    from adcourse.images.subspace import PCAFeatureDetector

    det = PCAFeatureDetector(n_components=P.shape[1], random_state=0)
    det.fit(np.r_[S, S])  # any fit; then use the check's subspace
    det.pca_.mean_, det.pca_.components_ = mean, P.T
    res, proj = ref3["two_energies"](S, mean, P)
    np.testing.assert_allclose(np.log(np.c_[res, proj] + det._EPS), det._features(S), rtol=1e-10)
    np.testing.assert_allclose(res + proj, np.sum((S - mean) ** 2, axis=1), rtol=1e-10)


# ---- exercise 4, task 1 -------------------------------------------------------------


def _recon(squared=False, centre=True, centre_train=True, last=False, projection=False):
    def reconstruction_error(X_train, X, m):
        mu = X_train.mean(axis=0)
        Z = X_train - mu if centre_train else X_train
        w, V = np.linalg.eigh(Z.T @ Z / len(X_train))
        P = V[:, :m] if last else V[:, -m:]
        R = X - mu if centre else X
        out = np.linalg.norm(R @ P, axis=1) if projection else np.linalg.norm(R - R @ P @ P.T, axis=1)
        return out ** 2 if squared else out
    return reconstruction_error


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(squared=True), r"SQUARED error"),
    (dict(centre=False), r"you did not subtract the mean"),
    (dict(centre=False, centre_train=False), r"did not centre X_train before the PCA \(nor the samples\)"),
    (dict(centre_train=False), r"did not centre X_train before the PCA: "),
    (dict(last=True), r"LAST m principal directions"),
    (dict(projection=True), r"norm of the projection"),
])
def test_ex4_task1_mistakes(kwargs, pattern):
    fails(checks.check_reconstruction_error, _recon(**kwargs),
          match=["Task 1 \\(reconstruction_error\\)", "wrong errors", pattern])


# ---- exercise 4, task 2 -------------------------------------------------------------


@pytest.mark.parametrize("func, pattern", [
    (lambda x, t: np.where(np.abs(x) > t, x, 0.0), r"HARD thresholding"),
    (lambda x, t: np.maximum(np.abs(x) - t, 0.0), r"forgot the sign"),
    (lambda x, t: np.maximum(x - t, 0.0), r"only handles the positive values"),
    (lambda x, t: x - t * np.sign(x), r"without stopping at 0"),
    (lambda x, t: np.clip(x, -t, t), r"the part soft thresholding REMOVES"),
])
def test_ex4_task2_mistakes(func, pattern):
    fails(checks.check_soft_threshold, func,
          match=["Task 2 \\(soft_threshold\\)", "wrong values", r"t=1\b", pattern])


def test_ex4_task2_library_passes_and_shape(capsys):
    from adcourse.images.sparse import soft_threshold

    checks.check_soft_threshold(soft_threshold)
    assert "✓ Task 2 passed" in capsys.readouterr().out
    fails(checks.check_soft_threshold, lambda x, t: np.stack([soft_threshold(x, t)] * 2),
          match=r"must have shape \(8,\)")


# ---- exercise 4, task 3 -------------------------------------------------------------


def _admm(thresh="lam/rho", rhs_rho=True, matrix_rho=True, u_sign=-1, z_from="x+u", u_with="new",
          order="xzu", swap_return=False):
    def soft(v, t):
        return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)

    def admm_step(D, s, z, u, lam, rho):
        k = D.shape[1]
        A = D.T @ D + (rho if matrix_rho else 1.0) * np.eye(k)
        x = np.linalg.solve(A, D.T @ s + (rho if rhs_rho else 1.0) * (z + u_sign * u))
        t = {"lam/rho": lam / rho, "lam": lam}[thresh]
        if order == "xuz":
            u = u + x - z
            z = soft(x + u, t)
            return x, z, u
        z_new = soft(x + u if z_from == "x+u" else x, t)
        u = u + x - (z_new if u_with == "new" else z)
        return (x, u, z_new) if swap_return else (x, z_new, u)
    return admm_step


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(thresh="lam"), r"wrong z.*thresholded at lam = 0\.2; .*lam / rho = 0\.4"),
    (dict(rhs_rho=False), r"wrong x.*rho is missing on the right-hand side"),
    (dict(matrix_rho=False), r"wrong x.*D\^T D \+ rho I, not D\^T D \+ I"),
    (dict(matrix_rho=False, rhs_rho=False), r"rho is missing in the x-update \(both"),
    (dict(u_sign=+1), r"the sign of u"),
    (dict(z_from="x"), r"you thresholded x alone"),
    (dict(u_with="old"), r"wrong u.*u was updated with the OLD z"),
    (dict(order="xuz"), r"wrong z.*you updated u before z"),
    (dict(swap_return=True), r"wrong z"),
])
def test_ex4_task3_mistakes(kwargs, pattern):
    fails(checks.check_admm_step, _admm(**kwargs),
          match=["Task 3 \\(admm_step\\)", r"rho=0\.5", "expected", "received", pattern])


def test_ex4_task3_reference_converges_and_stateful_step_fails(ref4):
    from adcourse.course.checks import subspaces_sparse_coding as ex4

    for call in ex4.check_admm_step.calls():  # the independent reference agrees with the solution
        if call.name != "admm_step":
            continue
        for a, b in zip(ex4._admm_reference(*call.args), ref4["admm_step"](*call.args)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    def drifting():
        calls = []

        def admm_step(D, s, z, u, lam, rho):  # right for the one-step checks, then stops iterating
            calls.append(1)
            return ref4["admm_step"](D, s, z, u, lam, rho) if len(calls) <= 5 else (z, z, u)
        return admm_step

    msg = fails(checks.check_admm_step, drifting(), same_in_judge=False,  # a stateful function
                match=[r"300 iterations of admm_step from z = u = 0 do not solve BPDN", r"objective"])
    assert judged(checks.check_admm_step, drifting()) == (False, judge.clean_reason(f"CheckFailed: {msg}"))
    fails(checks.check_admm_step, lambda *a: (a[2], a[3]), match=r"must return 3 arrays, \(x, z, u\)")


# ---- exercise 4, task 4 -------------------------------------------------------------


def _features(mode="right", transpose=False):
    from adcourse.images.sparse import bpdn_admm

    def sparse_features(D, S, lam):
        A = bpdn_admm(D, S, lam)
        err = np.sum((D @ A - S) ** 2, axis=0)
        l1 = np.sum(np.abs(A), axis=0)
        f = {"right": (err, l1), "swap": (l1, err), "sqrt": (np.sqrt(err), l1),
             "l2": (err, np.linalg.norm(A, axis=0)), "l2sq": (err, np.sum(A ** 2, axis=0)),
             "half": (0.5 * err, l1), "lam": (err, lam * l1), "noabs": (err, A.sum(axis=0))}[mode]
        out = np.stack(f, axis=1)
        return out.T if transpose else out
    return sparse_features


@pytest.mark.parametrize("mode, pattern", [
    ("swap", r"wrong order"),
    ("sqrt", r"SQUARED norm"),
    ("l2", r"not the l2 norm"),
    ("l2sq", r"not the squared l2 norm"),
    ("half", r"without the factor 1/2"),
    ("lam", r"without the weight lam"),
    ("noabs", r"forgot the absolute value"),
])
def test_ex4_task4_mistakes(mode, pattern):
    fails(checks.check_sparse_features, _features(mode),
          match=["Task 4 \\(sparse_features\\)", "wrong features", r"12 patches as columns", pattern])


def test_ex4_task4_transposed_and_other_solvers(capsys):
    fails(checks.check_sparse_features, _features(transpose=True),
          match=r"expected shape \(12, 2\), received \(2, 12\).*one ROW per patch")
    from sklearn.linear_model import Lasso

    def with_lasso(D, S, lam):  # another accurate BPDN solver passes
        A = np.stack([Lasso(alpha=lam / D.shape[0], fit_intercept=False, tol=1e-10, max_iter=100_000)
                      .fit(D, s).coef_ for s in S.T], axis=1)
        return np.c_[np.sum((D @ A - S) ** 2, axis=0), np.abs(A).sum(axis=0)]

    checks.check_sparse_features(with_lasso)
    assert "✓ Task 4 passed" in capsys.readouterr().out


# ---- exercise 4, task 5 -------------------------------------------------------------


def _gauss_scores(V, kind):
    from adcourse.vectors.density import GaussianDetector

    nll = GaussianDetector(score="nll", reg=0.0).fit(V).anomaly_score(V)
    maha = GaussianDetector(reg=0.0).fit(V).anomaly_score(V)
    return {"nll": nll, "maha": maha, "half_d2": 0.5 * maha ** 2, "loglik": -nll}[kind]


def _density(kind="nll", rule="from_fpr"):
    from adcourse.decision import Threshold

    def density_threshold(V, fpr):
        s = _gauss_scores(V, kind)
        if rule == "low_quantile":
            return float(np.quantile(s, fpr))
        if kind == "loglik":
            return float(np.quantile(s, fpr))      # a low log-likelihood as the "threshold"
        return Threshold.from_fpr(s, fpr)
    return density_threshold


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(kind="maha"), r"on the Mahalanobis distance d_M"),
    (dict(kind="half_d2"), r"d_M\^2 / 2: the negative log-likelihood also has the constant"),
    (dict(kind="loglik"), r"on the log-likelihood log phi\(x\), where LOW values"),
    (dict(rule="low_quantile"), r"fpr-quantile of the scores.*\(1 - fpr\)-quantile"),
])
def test_ex4_task5_mistakes(kwargs, pattern):
    fails(checks.check_density_threshold, _density(**kwargs),
          match=["Task 5 \\(density_threshold\\)", "wrong threshold", r"detecting floor\(n \* fpr\) = 20 "
                 r"of the 400 validation scores", pattern])


def test_ex4_task5_library_and_quantile_answers_pass(capsys):
    from adcourse.decision import Threshold
    from adcourse.vectors.density import GaussianDetector

    checks.check_density_threshold(
        lambda V, fpr: Threshold.from_fpr(GaussianDetector(score="nll").fit(V).anomaly_score(V), fpr))
    checks.check_density_threshold(lambda V, fpr: np.quantile(_gauss_scores(V, "nll"), 1 - fpr))
    assert capsys.readouterr().out.count("✓ Task 5 passed") == 2
    fails(checks.check_density_threshold, lambda V, fpr: "high", match=r"must be a number")


# =====================================================================================
# exercise 5: CNN features
# =====================================================================================

EX5 = "05-cnn-features"


@pytest.fixture(scope="module")
def ref5():
    """The reference functions of exercise 5, from its solution notebook (task 1 needs torch)."""
    import torch

    ns = _reference(EX5)
    ns["torch"] = torch
    return ns


def test_registry_of_exercise_5():
    tasks = checks.TASKS[EX5]
    assert list(tasks) == [f"task-{i}" for i in range(1, 6)]
    assert all(f.task == t for t, f in tasks.items())


@pytest.mark.parametrize("task, name", [
    ("task-1", "collect_activations"),
    ("task-2", "location_statistics"),
    ("task-3", "mahalanobis_map"),
    ("task-4", "student_teacher_score"),
    ("task-5", "three_sigma_threshold"),
])
def test_exercise_5_reference_passes(ref5, capsys, task, name):
    passes_everywhere(checks.TASKS[EX5][task], ref5, capsys, seeds=(1,))


def test_exercise_5_student_errors_propagate_unchanged():
    def stub(*args):
        raise NotImplementedError()

    for check in checks.TASKS[EX5].values():
        with pytest.raises(NotImplementedError):
            check(stub)
    fails(checks.check_mahalanobis_map, "mahalanobis_map", match=["Task 3", "expected a function"])


def test_ex5_import_of_checks_needs_no_torch():
    """torch is imported inside the check of task 1 only."""
    import subprocess
    import sys

    code = "import sys, adcourse.course.checks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- exercise 5, task 1 -------------------------------------------------------------


def _hook(remove="finally", grad=False, give="output", returns="numpy", layer_shift=0, train=None):
    import torch

    def collect_activations(model, layer_name, x):
        names = [n for n, _ in model.named_modules()]
        modules = dict(model.named_modules())
        layer = modules[names[names.index(layer_name) + layer_shift]]
        captured = []

        def hook(module, inputs, output):
            captured.append(inputs[0].detach() if give == "input" else output.detach())

        if train == "before":
            model.train()
        handle = layer.register_forward_hook(hook)
        if remove == "finally":
            try:
                with torch.set_grad_enabled(grad):
                    final = model(x)
            finally:
                handle.remove()
        else:
            with torch.set_grad_enabled(grad):
                final = model(x)
            if remove == "after":
                handle.remove()
        if train == "after":
            model.train()
        out = final.detach() if give == "final" else captured[0]
        return {"numpy": out.numpy, "tensor": lambda: out, "list": out.tolist}[returns]()
    return collect_activations


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(remove="never"), r"left a hook registered on 'block'.*handle\.remove\(\)"),
    (dict(remove="after"), r"when the forward pass fails, collect_activations leaves its hook on "
                           r"'block'.*finally:"),
    (dict(returns="tensor"), r"returned a torch tensor \(shape \(2, 6, 6, 5\)\).*\.numpy\(\)"),
    (dict(returns="list"), r"must return a NumPy array, received list"),
    (dict(give="input"), r"expected shape \(2, 6, 6, 5\).*received \(2, 4, 6, 5\).*INPUT of 'block'"),
    (dict(give="final"), r"expected shape \(2, 6, 6, 5\).*received \(2, 2\).*output of the whole model"),
    (dict(layer_shift=1), r"wrong activation.*that is the output of 'block\.0', not of 'block'"),
    (dict(train="before"), r"wrong activation.*ran in training mode"),
    (dict(train="after"), r"left the model in training mode"),
    (dict(grad=True), r"ran the model with gradients enabled.*torch\.no_grad\(\)"),
])
def test_ex5_task1_mistakes(kwargs, pattern):
    fails(checks.check_collect_activations, _hook(**kwargs),
          match=["Task 1 \\(collect_activations\\)", "layer_name='block'", pattern])


def test_ex5_task1_early_stop_and_inference_mode_pass(capsys):
    """A hook that stops the forward pass early (as FeatureExtractor does) is fine."""
    import torch

    class Stop(Exception):
        pass

    def collect_activations(model, layer_name, x):
        out = {}

        def hook(module, inputs, output):
            out["a"] = output.detach().clone()
            raise Stop

        handle = dict(model.named_modules())[layer_name].register_forward_hook(hook)
        try:
            with torch.inference_mode():
                model(x)
        except Stop:
            pass
        finally:
            handle.remove()
        return out["a"].numpy()

    checks.check_collect_activations(collect_activations)
    assert "✓ Task 1 passed" in capsys.readouterr().out
    msg = fails(checks.check_collect_activations, _hook(remove="never"), match=r"left a hook")
    assert "on a small test network: stem = Conv2d(3, 4, stride 2)" in msg


# ---- exercise 5, task 2 -------------------------------------------------------------


def _stats(ddof=1, eps_mode="diag", centre=True, move="moveaxis", pooled=False, layout="hwc",
           single=False):
    def location_statistics(emb, eps):
        n, C, h, w = emb.shape
        x = np.moveaxis(emb, 1, -1) if move == "moveaxis" else emb.reshape(n, h, w, C)
        mean = x.mean(axis=0)
        if pooled:
            mean = np.broadcast_to(x.reshape(-1, C).mean(axis=0), mean.shape)
        d = x - mean if centre else x
        S = np.einsum("nhwc,nhwd->hwcd", d, d)
        cov = {"diag": S / (n - ddof) + eps * np.eye(C), "none": S / (n - ddof),
               "all": S / (n - ddof) + eps, "before": (S + eps * np.eye(C)) / (n - ddof)}[eps_mode]
        if single:
            return cov
        if layout == "chw":
            return np.moveaxis(mean, -1, 0), cov
        if layout == "images":
            return mean, np.einsum("nhwc,mhwc->hwnm", d, d)
        return mean, cov
    return location_statistics


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(ddof=0), r"wrong cov.*you divided by n = 9; the unbiased covariance divides .* n - 1 = 8"),
    (dict(eps_mode="none"), r"wrong cov.*eps is missing: add eps on the DIAGONAL"),
    (dict(eps_mode="none", ddof=0), r"divided by n = 9 and forgot eps"),
    (dict(eps_mode="all"), r"added eps to every entry"),
    (dict(eps_mode="before"), r"eps was added before dividing by n - 1"),
    (dict(centre=False), r"wrong cov.*you did not subtract the mean"),
    (dict(move="reshape"), r"wrong mean.*moved the channel axis with reshape.*transpose\(0, 2, 3, 1\)"),
    (dict(pooled=True), r"wrong mean.*one mean for all the locations"),
    (dict(layout="chw"), r"wrong shape of mean.*expected shape \(4, 5, 3\), received \(3, 4, 5\).*"
                         r"channels LAST"),
    (dict(layout="images"), r"wrong shape of cov.*received \(4, 5, 9, 9\).*covariance between IMAGES"),
    (dict(single=True), r"must return 2 arrays, \(mean, cov\), received an array of shape"),
])
def test_ex5_task2_mistakes(kwargs, pattern):
    fails(checks.check_location_statistics, _stats(**kwargs),
          match=["Task 2 \\(location_statistics\\)", r"emb of shape \(9, 3, 4, 5\)", "eps=0.1", pattern])


def test_ex5_task2_one_covariance_for_all_locations():
    def location_statistics(emb, eps):
        n, C, h, w = emb.shape
        x = np.moveaxis(emb, 1, -1)
        cov = np.cov(x.reshape(-1, C), rowvar=False) + eps * np.eye(C)
        return x.mean(axis=0), np.broadcast_to(cov, (h, w, C, C))

    fails(checks.check_location_statistics, location_statistics,
          match=r"wrong cov.*one covariance for all the locations")


def test_ex5_task2_reference_agrees_with_per_location_gaussian(ref5):
    """The statistics are PaDiM's: PerLocationGaussian on a fake extractor gives the same."""
    from adcourse.course.checks import cnn_features as ex5
    from adcourse.deep.padim import PerLocationGaussian

    emb, eps = ex5.check_location_statistics.calls()[0].args
    n, C, h, w = emb.shape

    class Fixed:  # image k (all its pixels = k / n) -> embedding k
        def embed(self, images):
            return emb[np.rint(np.asarray(images)[:, 0, 0] * n).astype(int)]

    images = np.broadcast_to(np.arange(n, dtype=float)[:, None, None] / n, (n, 6, 6)).copy()
    det = PerLocationGaussian(Fixed(), eps=eps, sigma=0).fit(images)
    mean, cov = ref5["location_statistics"](emb, eps)
    np.testing.assert_allclose(mean, det.mean_.reshape(h, w, C), rtol=1e-10)
    np.testing.assert_allclose(cov, det.cov_.reshape(h, w, C, C), rtol=1e-10, atol=1e-12)
    d = ref5["mahalanobis_map"](emb, mean, cov)
    np.testing.assert_allclose(d, det.mahalanobis(images), rtol=1e-8)


# ---- exercise 5, task 3 -------------------------------------------------------------


def _maha5(power=0.5, matrix="inv", centre=True, move="moveaxis", layout="nhw"):
    def mahalanobis_map(emb, mean, cov):
        n, C, h, w = emb.shape
        x = np.moveaxis(emb, 1, -1) if move == "moveaxis" else emb.reshape(n, h, w, C)
        d = x - mean if centre else x
        idx = np.arange(C)
        M = {"inv": np.linalg.inv(cov), "cov": cov, "eye": np.broadcast_to(np.eye(C), cov.shape),
             "diag": np.where(np.eye(C, dtype=bool), 1.0 / cov[:, :, idx, idx][..., None], 0.0)}[matrix]
        q = np.einsum("nhwc,hwcd,nhwd->nhw", d, M, d) ** power
        return np.moveaxis(q, 0, -1) if layout == "hwn" else q
    return mahalanobis_map


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(power=1.0), r"SQUARED distance"),
    (dict(matrix="cov"), r"multiplied by Sigma instead of its inverse"),
    (dict(matrix="eye"), r"that is the Euclidean distance"),
    (dict(matrix="diag"), r"only the variances \(the diagonal of Sigma\)"),
    (dict(centre=False), r"did not subtract the mean of the location"),
    (dict(move="reshape"), r"moved the channel axis with reshape"),
    (dict(layout="hwn"), r"wrong shape of the map.*expected shape \(3, 4, 5\), received \(4, 5, 3\)"),
])
def test_ex5_task3_mistakes(kwargs, pattern):
    fails(checks.check_mahalanobis_map, _maha5(**kwargs),
          match=["Task 3 \\(mahalanobis_map\\)", r"emb of shape \(3, 3, 4, 5\)", pattern])


def test_ex5_task3_diag_variant_is_the_diagonal_inverse():
    """The helper's 'diag' is 1/variances on the diagonal (sanity of the test itself)."""
    cov = np.array([[[[2.0, 0.5], [0.5, 4.0]]]])
    emb = np.array([[[[1.0]], [[2.0]]]])
    got = _maha5(matrix="diag")(emb, np.zeros((1, 1, 2)), cov)
    np.testing.assert_allclose(got, np.sqrt(1 / 2 + 4 / 4))


# ---- exercise 5, task 4 -------------------------------------------------------------


def _st(v_mode="var", stats="val", terms="both", e_mode="mean", ddof=0, v_sqrt=False, channels="sum",
        normalise="full"):
    def student_teacher_score(sp, y, vsp, vy):
        agg = np.sum if channels == "sum" else np.mean

        def terms_of(p, t):
            mu = p.mean(axis=0)
            e = {"mean": agg((mu - t) ** 2, axis=1), "each": np.mean(agg((p - t) ** 2, axis=2), axis=0),
                 "norm": np.sqrt(agg((mu - t) ** 2, axis=1))}[e_mode]
            second = np.mean(agg(p ** 2, axis=2), axis=0)
            v = {"var": second - agg(mu ** 2, axis=1), "second": second,
                 "deviations": np.mean(agg((p - mu) ** 2, axis=2), axis=0),
                 "unbiased": np.sum(agg((p - mu) ** 2, axis=2), axis=0) / (len(p) - 1)}[v_mode]
            return e, (np.sqrt(np.maximum(v, 0)) if v_sqrt else v)

        e, v = terms_of(sp, y)
        ev, vv = terms_of(vsp, vy) if stats == "val" else (e, v)
        axis = 0 if normalise == "per-location" else None
        if normalise == "none":
            se, sv = e, v
        elif normalise == "centre":
            se, sv = e - ev.mean(), v - vv.mean()
        else:
            se = (e - ev.mean(axis=axis)) / ev.std(ddof=ddof, axis=axis)
            sv = (v - vv.mean(axis=axis)) / vv.std(ddof=ddof, axis=axis)
        return {"both": se + sv, "e": se, "v": sv}[terms]
    return student_teacher_score


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(v_mode="second"), r"must subtract \|\|mu\|\|\^2"),
    (dict(stats="test"), r"statistics of the TEST maps.*VALIDATION set"),
    (dict(terms="e"), r"missing the uncertainty term"),
    (dict(terms="v"), r"missing the regression-error term"),
    (dict(e_mode="each"), r"error is that of the ensemble MEAN"),
    (dict(e_mode="norm"), r"regression error is the SQUARED norm"),
    (dict(v_sqrt=True), r"the variance of the ensemble .*not its square root"),
    (dict(normalise="none"), r"the terms were not standardised"),
    (dict(normalise="centre"), r"divide by the standard deviations too"),
    (dict(normalise="per-location"), r"over ALL the locations of ALL the validation images"),
])
def test_ex5_task4_mistakes(kwargs, pattern):
    fails(checks.check_student_teacher_score, _st(**kwargs),
          match=["Task 4 \\(student_teacher_score\\)", "wrong scores",
                 r"student_preds of shape \(3, 2, 4, 5, 6\) \(M=3 students", pattern])


@pytest.mark.parametrize("kwargs", [
    dict(ddof=1), dict(channels="mean"), dict(v_mode="deviations"), dict(v_mode="unbiased"),
    dict(ddof=1, channels="mean", v_mode="unbiased"),
])
def test_ex5_task4_equivalent_answers_pass(capsys, kwargs):
    checks.check_student_teacher_score(_st(**kwargs))
    assert "✓ Task 4 passed" in capsys.readouterr().out


def test_ex5_task4_shape():
    fails(checks.check_student_teacher_score, lambda sp, y, vsp, vy: np.zeros(sp.shape[1:]),
          match=r"must have shape \(2, 5, 6\), received shape \(2, 4, 5, 6\)")


# ---- exercise 5, task 5 -------------------------------------------------------------


def _sigma(reduce="max", ddof=1, k_mode="k", sign=1):
    def three_sigma_threshold(val_maps, k=3.0):
        s = {"max": val_maps.max(axis=(1, 2)), "mean": val_maps.mean(axis=(1, 2)),
             "pixels": val_maps.ravel()}[reduce]
        kk = {"k": k, "three": 3.0, "one": 1.0}[k_mode]
        return s.mean() + sign * kk * s.std(ddof=ddof)
    return three_sigma_threshold


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(ddof=0), r"plain standard deviation \(ddof=0\); with n = 8"),
    (dict(reduce="pixels"), r"on all the PIXELS of the maps; the image score is the MAXIMUM"),
    (dict(reduce="pixels", ddof=0), r"on all the PIXELS of the maps, with ddof=0"),
    (dict(reduce="mean"), r"MAXIMUM of its map, not its mean"),
    (dict(k_mode="three"), r"you ignored k = 2 \(and used 3\)"),
    (dict(k_mode="one"), r"forgot the factor k"),
    (dict(sign=-1), r"mean PLUS k standard deviations"),
])
def test_ex5_task5_mistakes(kwargs, pattern):
    # the first case has k = 3: "ignored k" shows on the second one (k = 2)
    fails(checks.check_three_sigma_threshold, _sigma(**kwargs),
          match=["Task 5 \\(three_sigma_threshold\\)", "wrong threshold", r"val_maps of shape", pattern])


def test_ex5_task5_threshold_objects_and_arrays_pass(capsys):
    from adcourse.decision import Threshold

    checks.check_three_sigma_threshold(lambda m, k: Threshold.three_sigma(m.max(axis=(1, 2)), k))
    checks.check_three_sigma_threshold(lambda m, k: np.array([_sigma()(m, k)]))
    assert capsys.readouterr().out.count("✓ Task 5 passed") == 2
    fails(checks.check_three_sigma_threshold, lambda m, k: "gamma", match=r"must be a number")


def test_gradient_check_names_a_missing_and_a_wrong_gradient():
    """The one gradient check of the torch tasks (chapters 8 and 9): a detached answer has no
    gradient, a constant in place of part of it gives a wrong one; one array or a list."""
    import torch

    from adcourse.course.checks._base import _check_gradients

    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    _check_gradients({"grad": torch.tensor(expected)}, "f", "where", [expected], "x")
    _check_gradients({"grad": [expected, expected]}, "f", "where", [expected, expected], "x")
    with pytest.raises(CheckFailed, match=r"the loss returned by f is right but it has no gradient with "
                                          r"respect to the features\nwhere\nhint: do not detach"):
        _check_gradients({"grad": None}, "f", "where", [expected], "the features", what="the loss")
    with pytest.raises(CheckFailed, match="no gradient with respect to z"):
        _check_gradients({"grad": [expected, None]}, "f", "where", [expected, expected], "z")
    with pytest.raises(CheckFailed, match="its gradient with respect to z is wrong"):
        _check_gradients({"grad": [expected + 1e-3]}, "f", "where", [expected], "z")
    with pytest.raises(CheckFailed, match="must have shape"):
        _check_gradients({"grad": [expected[0]]}, "f", "where", [expected], "z")

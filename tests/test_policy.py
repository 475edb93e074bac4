"""adcourse.course.policy: what a task's functions may use, read from the code by the grader."""

from __future__ import annotations

from pathlib import Path

import pytest

from adcourse.course import checks, policy
from adcourse.course.grading import load_notebook, prepare

ROOT = Path(__file__).resolve().parent.parent
EX1 = "01-performance-measures"
SETUP = ("cell 1", "import numpy as np\nfrom adcourse import metrics\nimport adcourse.decision as dec\n"
                   "from adcourse.data import make_toy_1d\nx, y = make_toy_1d(100, 10)")


def _violations(*cells, exercise=EX1):
    return policy.violations(exercise, [SETUP, *[(f"cell {i}", c) for i, c in enumerate(cells, 2)]])


@pytest.mark.parametrize("exercise", list(checks.TASKS))
def test_solutions_and_exercises_follow_their_policy(exercise):
    ref = load_notebook(ROOT / "solutions" / f"{exercise}.ipynb")
    for folder in ("solutions", "exercises"):
        _, _, student = prepare(load_notebook(ROOT / folder / f"{exercise}.ipynb"), ref, exercise)
        assert policy.violations(exercise, student) == {}, folder


def test_every_task_has_a_policy():
    for exercise, tasks in checks.TASKS.items():
        for task in tasks.values():
            assert task.allow is not None and ("numpy" in task.allow or "torch" in task.allow), \
                (exercise, task.task)


def test_a_plain_numpy_task_may_not_call_the_function_that_solves_it():
    got = _violations(
        "def confusion_rates(scores, labels, threshold):\n    metrics = {}  # a local name\n"
        "    return {'TPR': np.mean(scores >= threshold)}",
        "def roc_points(s, y):\n    fpr, tpr, _ = metrics.roc_curve(s, y)\n    return fpr, tpr",
        "f = dec.Threshold.from_fpr\n\ndef threshold_for_fpr(n, a):\n    return float(f(n, a))",
        "def best_roc_threshold(s, y):\n    fpr, tpr = roc_points(s, y)\n    return float(s[0])",
        "def evaluate_on_test(v, t, l, a):\n    from sklearn.metrics import roc_curve\n    return 0.0, {}",
    )
    assert set(got) == {"task-2", "task-3", "task-4", "task-5"}  # task 1's local `metrics` is fine
    assert got["task-2"].endswith("roc_points uses adcourse.metrics.roc_curve (cell 3, line 2)")
    assert got["task-2"].startswith("not accepted: task-2 may use numpy and the standard library")
    assert "threshold_for_fpr uses adcourse.decision.Threshold.from_fpr" in got["task-3"]
    assert "roc_points uses adcourse.metrics.roc_curve" in got["task-4"]  # through best_roc_threshold
    assert "evaluate_on_test imports sklearn.metrics.roc_curve" in got["task-5"]


@pytest.mark.parametrize("code, what", [
    ("import adcourse.course.checks as c\nc.check_roc = print", "the module adcourse.course.checks"),
    ("import sys\nsys.modules['adcourse.checks'] = None", "sys.modules"),
    ("exec(open('solutions/01.ipynb').read())", "exec"),
    ("builtins_ = __import__('builtins')", "__import__"),
    ("import importlib\nm = importlib.import_module('adcourse.metrics')", "the module importlib"),
    ("get_ipython().set_custom_exc((Exception,), None)", "get_ipython()"),
    ("ip = get_ipython()\nip.input_transformers_post.append(str)", "get_ipython()"),
    ("!cat /proc/*/cmdline", "a shell command (!)"),
    ("%run solutions/01-performance-measures.ipynb", "the magic %run"),
    ("%%writefile mine.py\nimport adcourse.metrics", "the magic %writefile"),
    ("import mine", "the module mine, which is not installed"),
    ("import numpy\nnumpy.sort = sorted", "an assignment to numpy.sort"),
    ("m = np\nm.unique = set", "an assignment to m.unique"),
    ("import json\njson.dumps = str", "an assignment to json.dumps"),
    ("def f():\n    import inspect\n    return inspect.stack()", "the module inspect"),
    ("import sys\ng = sys._getframe(1).f_locals", "the attribute f_locals (frames)"),
    ("import sys\nf = sys._getframe", "sys._getframe"),
    ("import gc\nobjs = gc.get_objects()", "the module gc"),
    ("x = (1).__class__.__base__.__subclasses__()", "the attribute __subclasses__"),
    ("g = confusion_rates.__globals__", "the attribute __globals__"),
    ("n = getattr(metrics, 'roc' + '_curve')", "getattr with a computed name"),
    ("import subprocess\nsubprocess.run(['python', '-c', '1'])", "the module subprocess"),
    ("import os\nos.system('kill -9 -1')", "os.system"),
    ("from . import x", "a relative import"),
])
def test_hiding_what_runs_fails_every_task(code, what):
    got = _violations(code)
    assert set(got) == set(checks.TASKS[EX1])
    assert f"the notebook uses {what}" in got["task-1"], got["task-1"]


def test_allowed_things_stay_allowed():
    assert _violations(
        "%matplotlib inline\nimport math, itertools\nfrom functools import reduce\n"
        "import matplotlib.pyplot as plt\nimport os\nos.kill(os.getpid(), 0)\n",
        "%time z = np.sum([1, 2])",
        "def confusion_rates(scores, labels, threshold):\n    s = np.asarray(scores, dtype=float)\n"
        "    d = s >= threshold\n    return {'TPR': math.fsum(d) / len(d), 'n': getattr(s, 'size')}",
        "plt.plot(metrics.roc_curve(x, y)[0])  # an experiment may use anything",
    ) == {}
    ex2 = [("cell 1", "import numpy as np\nfrom scipy.special import logsumexp\n"
                      "from scipy.stats import multivariate_normal\n"
                      "from adcourse.vectors.domain import OneClassSVMDetector\n"
                      "from adcourse.vectors.distance import KNNDetector"),
           ("cell 2", "def em_step(X, w, m, c):\n    return logsumexp(multivariate_normal(m[0], c[0]).logpdf(X))"),
           ("cell 3", "def choose_nu(X_train, X_val, t, grid):\n    return OneClassSVMDetector(nu=0.1).fit(X_train)"),
           ("cell 4", "def knn_score(X_train, X, k):\n    return KNNDetector(k).fit(X_train).anomaly_score(X)"),
           ("cell 5", "def mahalanobis_scores(X_train, X):\n    return multivariate_normal(X.mean(0)).logpdf(X)")]
    got = policy.violations("02-random-vectors", ex2)
    assert set(got) == {"task-1", "task-4"}  # scipy.stats only in task 2; no KNNDetector in task 4
    assert "mahalanobis_scores uses scipy.stats.multivariate_normal" in got["task-1"]
    assert "knn_score uses adcourse.vectors.distance.KNNDetector" in got["task-4"]


def test_too_much_code_is_not_read():
    got = _violations("x = 1\n" * 400_000)
    assert got["task-1"] == "not accepted: the notebook holds 2400 kB of code (at most 2000 kB are read)"


@pytest.mark.parametrize("code, flagged", [
    ("roc_points = lambda s, y: metrics.roc_curve(s, y)[:2]", True),
    ("f = metrics.roc_curve\n\ndef roc_points(s, y):\n    return f(s, y)[:2]", True),
    ("class R:\n    def __call__(self, s, y):\n        return mm.roc_curve(s, y)[:2]\n\nroc_points = R()", True),
    ("def roc_points(s, y, f=metrics.roc_curve):\n    return f(s, y)[:2]", True),
    ("for roc_points in [metrics.roc_curve]:\n    pass", True),
    ("from adcourse.metrics import roc_curve as roc_points", True),
    ("def roc_points(s, y):\n    global metrics\n    return metrics.roc_curve(s, y)[:2]", True),
    ("def roc_points(s, y):\n    import adcourse.metrics as m\n    return m.roc_curve(s, y)[:2]", True),
    ("if True:\n    def roc_points(s, y):\n        return metrics.roc_curve(s, y)", True),
    ("try:\n    roc_points = metrics.roc_curve\nexcept Exception:\n    pass", True),
    ("from adcourse import metrics as np\n\ndef roc_points(s, y):\n    return np.roc_curve(s, y)", True),
    # local names that happen to be called like an import are local
    ("class R:\n    def __call__(self, metrics, y):\n        return metrics.x\n\nroc_points = R()", False),
    ("def roc_points(metrics, y):\n    return metrics.sum(y)", False),
    ("def roc_points(s, y):\n    metrics = np\n    return [metrics.sort(v) for v in s]", False),
    ("def roc_points(s, y):\n    return sorted(s, key=lambda metrics: metrics.x)", False),
])
def test_the_ways_to_reach_a_function(code, flagged):
    cells = [("cell 1", "import numpy as np\nfrom adcourse import metrics\nfrom adcourse import metrics as mm"),
             ("cell 2", code)]
    got = policy.violations(EX1, cells)
    assert ("task-2" in got) == flagged, got.get("task-2")


def test_a_single_name_may_be_allowed_through_its_module():
    cells = [("cell 1", "from adcourse.vectors import domain"),
             ("cell 2", "def choose_nu(X_train, X_val, t, grid):\n    return domain.OneClassSVMDetector(nu=0.1)")]
    assert policy.violations("02-random-vectors", cells) == {}

"""adcourse.course.grading: reference checks restored, one kernel per submission, every kind of broken
submission graded with its reason while the others still get graded.

Tests marked ``notebooks`` start Jupyter kernels (about 5 s per notebook on 2 cores).
"""

from __future__ import annotations

import copy
import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from adcourse.course import grading
from adcourse.course.exercises import cell_tags, cell_task
from adcourse.course.grading import (
    CellResult,
    GradingError,
    InvalidNotebook,
    error_reason,
    find_reference,
    load_notebook,
    prepare,
    score_cells,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
NAME = "01-performance-measures"
SOLUTION = SOLUTIONS / f"{NAME}.ipynb"
NAME_2 = "02-random-vectors"  # graded once, as a whole solution, to keep this module fast
TASKS = [f"task-{i}" for i in range(1, 6)]
COLUMNS = ["file", "exercise", *TASKS, "score", "max_score", "reasons"]
CELL_TIMEOUT = 10  # s; the slowest cell of the solution takes ~3 s on a loaded 2-core machine


def _solution():
    return nbformat.read(str(SOLUTION), as_version=4)


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


# ---- unit tests (no kernel) ---------------------------------------------------------------


def test_find_reference(tmp_path):
    sols = tmp_path / "solutions"
    sols.mkdir()
    for stem in (NAME, "02-subspace-methods", "02-subspace-methods-extra"):
        (sols / f"{stem}.ipynb").write_text(SOLUTION.read_text())
    nb = _solution()
    assert find_reference(nb, "whatever.ipynb", sols).stem == NAME  # metadata first
    nb.metadata["adcourse"]["exercise"] = "no-such-exercise"
    for name, stem in [
        (f"{NAME}.ipynb", NAME),
        (f"alice_{NAME} (1).ipynb", NAME),
        (f"{NAME}-bob.ipynb", NAME),
        ("Carol 01 Performance_Measures.ipynb", NAME),
        ("02-subspace-methods-extra-dave.ipynb", "02-subspace-methods-extra"),  # longest wins
        ("ex01_erin.ipynb", NAME),  # unique two-digit number
    ]:
        assert find_reference(nb, name, sols).stem == stem, name
    assert find_reference(None, "x.ipynb", sols, exercise=NAME).stem == NAME
    for name in ("ex02.ipynb", "frank.ipynb"):  # ambiguous number, no clue at all
        with pytest.raises(GradingError, match="cannot tell which exercise"):
            find_reference(nb, name, sols)


def test_load_notebook_rejects_non_notebooks(tmp_path):
    cases = {
        "truncated.ipynb": '{"cells": [',
        "list.ipynb": "[1, 2]",
        "nocells.ipynb": '{"metadata": {}}',
        "badcell.ipynb": '{"cells": [{"cell_type": "spam", "source": ""}], "metadata": {}, '
                         '"nbformat": 4, "nbformat_minor": 5}',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InvalidNotebook, match="^not a valid notebook: "):
            load_notebook(tmp_path / name)
    (tmp_path / "bytes.ipynb").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidNotebook):
        load_notebook(tmp_path / "bytes.ipynb")
    assert load_notebook(SOLUTION).metadata["adcourse"]["exercise"] == NAME


def test_prepare_restores_reinserts_and_drops_checks():
    ref = _solution()
    sub = copy.deepcopy(ref)
    _cell(sub, "task-1-check").source = "# CHECK task-1\npass"  # edited
    _cell(sub, "task-1-check").outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓")]
    _cell(sub, "task-1-check").execution_count = 7
    sub.cells.remove(_cell(sub, "task-3-check"))  # deleted
    sub.cells.append(nbformat.v4.new_code_cell("# CHECK task-9\npass", metadata={"tags": ["check"]}))
    dup = copy.deepcopy(_cell(sub, "task-2-check"))
    dup.source = "# CHECK task-2\npass"
    sub.cells.append(dup)  # a second check for task-2
    untagged = nbformat.v4.new_code_cell("# CHECK task-4\nprint('fake')")  # tag removed
    sub.cells.insert(sub.cells.index(_cell(sub, "task-4-check")), untagged)
    sub.cells.remove(_cell(sub, "task-4-check"))

    out, mapping = prepare(sub, ref)
    ref_checks = {cell_task(c): c.source for c in ref.cells if "check" in cell_tags(c)}
    got = [(cell_task(c), c.source) for c in out.cells if "check" in cell_tags(c)
           or c.source.startswith("# CHECK")]
    assert got == list(ref_checks.items())  # every check once, the reference's, in order
    ids = [c.id for c in out.cells]
    assert ids.index("task-3-check") == ids.index("task-3-solution") + 1  # re-inserted
    assert all(c.outputs == [] and c.execution_count is None
               for c in out.cells if c.cell_type == "code")
    code = [c for c in out.cells if c.cell_type == "code"]
    assert len(mapping) == len(code)
    assert [i for i, (t, is_check) in enumerate(mapping) if is_check] == [
        i for i, c in enumerate(code) if c.source.startswith("# CHECK")]
    assert sub.cells[-1].source == "# CHECK task-2\npass"  # the submission is not modified


def test_prepare_appends_checks_when_the_task_cells_are_gone():
    ref = _solution()
    sub = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    out, mapping = prepare(sub, ref)
    assert [t for t, is_check in mapping if is_check] == TASKS
    assert out.cells[0].source == "x = 1"


ANSI_FAILURE = (
    "\x1b[91mNotebook cell execution failed\x1b[0m\n\x1b[94mCell 4: Cell execution caused an "
    "exception\n\nInput:\n\x1b[0mcheck(f)\n\n\x1b[94mTraceback:\x1b[0m\n\n"
    "\x1b[31mCheckFailed\x1b[39m                       Traceback (most recent call last)\n"
    "Cell In[4], line 1\n----> 1 check(f)\n\n"
    "\x1b[31mCheckFailed\x1b[39m: Task 1 (f): wrong FPR\nexpected FPR = 0.5, received 0.25\n"
    "hint: FPR = FP / (FP + TN)\n"
)


@pytest.mark.parametrize("text, reason", [
    (ANSI_FAILURE, "CheckFailed: Task 1 (f): wrong FPR | expected FPR = 0.5, received 0.25 | "
                   "hint: FPR = FP / (FP + TN)"),
    (ANSI_FAILURE.replace("\x1b", "#x1B"), "CheckFailed: Task 1 (f): wrong FPR | expected FPR = "
                                           "0.5, received 0.25 | hint: FPR = FP / (FP + TN)"),
    ("Traceback:\n---\nNotImplementedError                  Traceback\nCell In[3]\n"
     "NotImplementedError: \n", "NotImplementedError"),
    ("  Cell In[1], line 1\n    def f(:\n          ^\nSyntaxError: invalid syntax\n",
     "SyntaxError: invalid syntax"),
    ("Cell 3: Timeout of 60 seconds exceeded executing cell\nKeyboardInterrupt: \n",
     "timed out after 60 s"),
    ("Cell 3: Timeout of 5 seconds exceeded while executing cell. Failed to interrupt kernel in "
     "5 seconds, so failing without traceback.", "timed out after 5 s (could not interrupt the kernel)"),
    ("pytest plugin exception: kernel died while running this cell (exit code -9)",
     "kernel died (exit code -9)"),
    ("pytest plugin exception: Kernel dead on test start", "not run: the kernel had died"),
])
def test_error_reason(text, reason):
    assert error_reason(grading._ANSI.sub("", text)) == reason


def test_score_cells():
    # code cells: 0 setup | 1 sol-1, 2 check-1 | 3 sol-2, 4 check-2 | 5 sol-3, 6 check-3 | 7 extra
    mapping = [(None, False), ("task-1", False), ("task-1", True), ("task-2", False),
               ("task-2", True), ("task-3", False), ("task-3", True), (None, False)]
    tasks = ["task-1", "task-2", "task-3"]
    ok = {i: CellResult(i, "passed") for i in range(8)}
    assert [t.passed for t in score_cells(mapping, ok, tasks)] == [True] * 3

    res = dict(ok)
    res[1] = CellResult(1, "failed", "  Cell In[1]\nSyntaxError: invalid syntax")
    res[2] = CellResult(2, "failed", "NameError: name 'f' is not defined")
    res[4] = CellResult(4, "failed", "CheckFailed: Task 2: wrong\nhint: use >=")
    got = score_cells(mapping, res, tasks)
    assert [(t.passed, t.reason) for t in got] == [
        (False, "SyntaxError: invalid syntax"),  # the task's first error, not the NameError
        (False, "CheckFailed: Task 2: wrong | hint: use >="),
        (True, ""),
    ]

    res = dict(ok)  # the words of nbval's messages in a student's source change nothing
    res[1] = CellResult(1, "failed", "Notebook cell execution failed\nCell 1: Cell execution "
                        "caused an exception\n\nInput:\n# Timeout of 5 seconds exceeded, "
                        "kernel died while running this cell\n1/0\n\nTraceback:\n"
                        "ZeroDivisionError: division by zero\n")
    got = score_cells(mapping, res, tasks)
    assert [(t.passed, t.reason) for t in got] == [(True, ""), (True, ""), (True, "")]
    res[2] = CellResult(2, "failed", "ValueError: x")
    assert score_cells(mapping, res, tasks)[0].reason == "ZeroDivisionError: division by zero"

    res = dict(ok)  # a timeout in task-2's solution: task-2 and later fail, xpass included
    res[3] = CellResult(3, "failed", "Timeout of 5 seconds exceeded executing cell")
    res[4] = CellResult(4, "xfailed", "Previous cell timed out, expected cell to fail")
    got = score_cells(mapping, res, tasks)
    assert [t.passed for t in got] == [True, False, False]
    assert got[1].reason == "timed out after 5 s"
    assert got[2].reason == "not run: an earlier cell timed out after 5 s (task-2)"

    res = dict(ok)  # the kernel dies in the setup cell
    res[0] = CellResult(0, "failed", "pytest plugin exception: kernel died while running this "
                                     "cell (exit code 1)")
    got = score_cells(mapping, res, tasks)
    assert all(not t.passed and "kernel died" in t.reason for t in got)


def test_command_line_without_kernels(tmp_path):
    """Broken files are graded without starting a kernel; the CSV has the expected columns."""
    (tmp_path / f"{NAME}-broken.ipynb").write_text('{"cells": [')
    (tmp_path / "notes.ipynb").write_text("[]")
    out = tmp_path / "gradebook.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "adcourse", "grade", str(tmp_path), "--out", str(out),
         "--solutions", str(SOLUTIONS)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0].keys()) == COLUMNS
    broken, notes = rows
    assert broken["exercise"] == NAME and broken["score"] == "0" and broken["max_score"] == "5"
    assert broken["reasons"].startswith("not a valid notebook: invalid JSON")
    assert notes["exercise"] == "" and notes["reasons"].startswith("not a valid notebook")
    assert "not a valid notebook" in proc.stdout  # the summary table
    bad = subprocess.run([sys.executable, "-m", "adcourse", "grade", "missing.ipynb"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "no such file" in bad.stderr


# ---- grading real submissions (kernels) ---------------------------------------------------


def _submissions(folder: Path):
    """Write the test submissions; return {short name: path}."""
    sol = _solution()
    subs = {}

    def save(key, nb, name=None):
        path = folder / (name or f"{key}.ipynb")
        nbformat.write(nb, str(path))
        subs[key] = path

    save("blank", nbformat.read(str(EXERCISES / f"{NAME}.ipynb"), 4), f"blank_{NAME}.ipynb")
    save("solution", sol, f"alice_{NAME}.ipynb")
    save("solution_2", nbformat.read(str(SOLUTIONS / f"{NAME_2}.ipynb"), 4), f"alice_{NAME_2}.ipynb")

    nb = copy.deepcopy(sol)  # a wrong task 1 whose check was edited to pass
    _cell(nb, "task-1-check").source = "# CHECK task-1\npass"
    s = _cell(nb, "task-1-solution")
    s.source = s.source.replace("scores >= threshold", "scores > threshold")
    save("edited_check", nb)

    nb = copy.deepcopy(sol)
    _cell(nb, "task-2-solution").source = "def roc_points(scores, labels:\n    pass"
    save("syntax_error", nb)

    nb = copy.deepcopy(sol)
    _cell(nb, "task-3-solution").source += "\n\nwhile True:\n    pass"
    save("infinite_loop", nb)

    nb = copy.deepcopy(sol)
    _cell(nb, "task-4-solution").source += "\n\nimport os\nos.kill(os.getpid(), 9)"
    save("kills_kernel", nb)

    nb = copy.deepcopy(sol)  # checks deleted, a fake check added, outputs faked
    nb.cells = [c for c in nb.cells if c.id not in ("task-2-check", "task-5-check")]
    nb.cells.append(nbformat.v4.new_code_cell("# CHECK task-6\nraise SystemExit",
                                              metadata={"tags": ["check"]}))
    _cell(nb, "task-3-solution").source = (
        "def threshold_for_fpr(normal_scores, target_fpr):\n    return 0.0")
    save("deleted_checks", nb)

    (folder / f"{NAME}-invalid.ipynb").write_text('{"cells": [{"cell_type": "code",')
    subs["invalid_json"] = folder / f"{NAME}-invalid.ipynb"
    return subs


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    subs = _submissions(folder)
    out = folder / "gradebook.csv"
    start = time.monotonic()
    rows = grading.grade(list(subs.values()), out=out, timeout=CELL_TIMEOUT,
                         solutions_dir=SOLUTIONS)
    seconds = time.monotonic() - start
    by_file = {row["file"]: row for row in rows}
    return {key: by_file[str(path)] for key, path in subs.items()}, out, seconds, len(subs)


def _reasons(row):
    parts = re.split(r"; (?=task-\d+: )", row["reasons"]) if row["reasons"] else []
    return dict(part.split(": ", 1) for part in parts)


@pytest.mark.notebooks
def test_gradebook_csv(graded):
    rows, out, seconds, n = graded
    with out.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == n == len(rows)
    assert list(table[0].keys()) == COLUMNS
    print(f"graded {n} submissions in {seconds:.1f} s")


@pytest.mark.notebooks
def test_solution_gets_every_task(graded):
    row = graded[0]["solution"]
    assert [row[t] for t in TASKS] == [1] * 5
    assert (row["score"], row["max_score"], row["reasons"]) == (5, 5, "")


@pytest.mark.notebooks
def test_solution_of_exercise_2_gets_every_task(graded):
    row = graded[0]["solution_2"]
    assert row["exercise"] == NAME_2  # told apart from exercise 1 in the same run
    assert [row[t] for t in TASKS] == [1] * 5
    assert (row["score"], row["max_score"], row["reasons"]) == (5, 5, "")


@pytest.mark.notebooks
def test_blank_exercise_gets_nothing(graded):
    row = graded[0]["blank"]
    assert row["score"] == 0 and row["max_score"] == 5
    assert _reasons(row) == {t: "NotImplementedError" for t in TASKS}


@pytest.mark.notebooks
def test_edited_check_is_restored(graded):
    row = graded[0]["edited_check"]
    assert [row[t] for t in TASKS] == [0, 1, 1, 1, 1]
    reason = _reasons(row)["task-1"]
    assert reason.startswith("CheckFailed: Task 1 (confusion_rates)")
    assert "score > threshold" in reason


@pytest.mark.notebooks
def test_syntax_error_fails_only_its_tasks(graded):
    row = graded[0]["syntax_error"]
    # task 4 reuses roc_points, so it fails too; the others are still graded
    assert [row[t] for t in TASKS] == [1, 0, 1, 0, 1]
    reasons = _reasons(row)
    assert reasons["task-2"].startswith("SyntaxError")
    assert "roc_points" in reasons["task-4"]


@pytest.mark.notebooks
def test_infinite_loop_times_out(graded):
    row = graded[0]["infinite_loop"]
    assert [row[t] for t in TASKS] == [1, 1, 0, 0, 0]
    reasons = _reasons(row)
    assert reasons["task-3"] == f"timed out after {CELL_TIMEOUT} s"
    assert all("timed out" in reasons[t] for t in ("task-4", "task-5"))


@pytest.mark.notebooks
def test_dead_kernel(graded):
    row = graded[0]["kills_kernel"]
    assert [row[t] for t in TASKS] == [1, 1, 1, 0, 0]
    reasons = _reasons(row)
    assert reasons["task-4"].startswith("kernel died")
    assert "kernel died" in reasons["task-5"]


@pytest.mark.notebooks
def test_deleted_checks_are_put_back(graded):
    row = graded[0]["deleted_checks"]
    # task-2 and task-5 checks were deleted: both are put back and run (task 5 reuses the
    # wrong threshold_for_fpr of task 3, so it fails); the fake task-6 check is dropped
    assert [row[t] for t in TASKS] == [1, 1, 0, 1, 0]
    reasons = _reasons(row)
    assert list(reasons) == ["task-3", "task-5"]
    assert reasons["task-3"].startswith("CheckFailed: Task 3")
    assert reasons["task-5"].startswith("CheckFailed: Task 5")


@pytest.mark.notebooks
def test_invalid_json(graded):
    row = graded[0]["invalid_json"]
    assert row["exercise"] == NAME and row["score"] == 0 and row["max_score"] == 5
    assert row["reasons"].startswith("not a valid notebook: invalid JSON")


def _nbval(paths, tmp_path):
    """Run ``pytest --nbval-lax`` on notebooks; return {(notebook, cell index): CellResult}."""
    junit = tmp_path / "junit.xml"
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
         f"--nbval-cell-timeout={CELL_TIMEOUT * 3}", "-p", "no:cacheprovider", "-q",
         f"--junitxml={junit}", *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert junit.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, grading.parse_junit(junit)


@pytest.mark.notebooks
def test_solutions_run_clean_through_nbval(tmp_path):
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        proc, results = _nbval([path], tmp_path)
        failed = {i: error_reason(r.text) for i, r in results.items() if r.status != "passed"}
        assert proc.returncode == 0 and not failed, f"{path.name}: {failed}\n{proc.stdout[-3000:]}"


@pytest.mark.notebooks
def test_exercises_fail_only_with_not_implemented_error(tmp_path):
    for path in sorted(EXERCISES.glob("*.ipynb")):
        proc, results = _nbval([path], tmp_path)
        failed = {i: error_reason(r.text) for i, r in results.items() if r.status != "passed"}
        assert failed, f"{path.name}: nothing failed, is every task solved in the exercise?"
        wrong = {i: why for i, why in failed.items() if not why.startswith("NotImplementedError")}
        assert not wrong, f"{path.name}: cells failing for another reason: {wrong}"

"""adcourse.course.grading: answer cells in place of the checks, one sandbox per submission, the
verdict taken by the judge outside the kernel; every kind of broken submission graded with its
reason while the others still get graded; the judge agrees with the check cells.

Tests marked ``notebooks`` start Jupyter kernels (a few seconds per notebook on 2 cores).
The attacks of issue 10 are in ``test_grading_attacks.py``.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from adcourse.course import checks, grading, judge
from adcourse.course.exercises import cell_tags, cell_task
from adcourse.course.grading import (
    CellResult,
    GradingError,
    InvalidNotebook,
    collect,
    error_reason,
    find_reference,
    load_notebook,
    prepare,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
NAME = "01-performance-measures"
SOLUTION = SOLUTIONS / f"{NAME}.ipynb"
NAME_2 = "02-random-vectors"  # graded once, as a whole solution, to keep this module fast
TASKS = [f"task-{i}" for i in range(1, 6)]
COLUMNS = ["file", "exercise", *TASKS, "score", "max_score", "reasons", "notes", "seed"]
CELL_TIMEOUT = 20  # s; the slowest cell of the solutions takes ~3 s on a loaded 2-core machine
SEED = 20240512


def _solution():
    return nbformat.read(str(SOLUTION), as_version=4)


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


def _stubbed(nb, task):
    """The notebook with the solution cells of ``task`` replaced by the exercise's stubs."""
    ex = {c.id: c for c in nbformat.read(str(EXERCISES / f"{NAME}.ipynb"), 4).cells}
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if "solution" in cell_tags(cell) and cell_task(cell) == task:
            out.cells[i] = copy.deepcopy(ex[cell.id])
    return out


# ---- unit tests (no kernel) ---------------------------------------------------------------


def test_find_reference(tmp_path):
    sols = tmp_path / "solutions"
    sols.mkdir()
    for stem in (NAME, "02-subspace-methods", "02-subspace-methods-extra", "05-cnn-features"):
        (sols / f"{stem}.ipynb").write_text(SOLUTION.read_text())
    nb = _solution()
    assert find_reference(nb, "whatever.ipynb", sols).stem == NAME  # metadata first
    nb.metadata["adcourse"]["exercise"] = "no-such-exercise"
    for name, stem in [
        (f"{NAME}.ipynb", NAME),
        (f"alice_{NAME} (1).ipynb", NAME),
        (f"{NAME}-bob.ipynb", NAME),
        ("Carol 01 Performance_Measures.ipynb", NAME),
        ("performance measures - dan.ipynb", NAME),  # the name without its number
        ("02-subspace-methods-extra-dave.ipynb", "02-subspace-methods-extra"),  # longest wins
        ("ex01_erin.ipynb", NAME),  # unique two-digit number
        ("2024-05-12_ex01_erin.ipynb", NAME),  # a date is not exercise 05
        ("ex1 frank 12.05.2024.ipynb", NAME),
        ("grace_v05_ex01.ipynb", NAME),  # a version is not exercise 05
        ("cnn-features-v2.ipynb", "05-cnn-features"),
    ]:
        assert find_reference(nb, name, sols).stem == stem, name
    assert find_reference(None, "x.ipynb", sols, exercise=NAME).stem == NAME
    for name in ("ex02.ipynb", "frank.ipynb", "heidi-2024-05-12.ipynb", "ivan_v05.ipynb",
                 "judy 20240512.ipynb"):  # ambiguous number, dates and versions, no clue at all
        with pytest.raises(GradingError, match="cannot tell which exercise"):
            find_reference(nb, name, sols)


def test_metadata_and_file_name_disagree(tmp_path):
    notes = []
    nb = _solution()
    ref = find_reference(nb, f"kim_{NAME_2}.ipynb", SOLUTIONS, notes=notes)
    assert ref.stem == NAME  # the notebook's own metadata wins
    assert notes == [f"the notebook's metadata says {NAME}, its file name {NAME_2}: graded as {NAME}"]
    notes = []
    find_reference(nb, f"kim_{NAME}.ipynb", SOLUTIONS, notes=notes)
    assert notes == []


def test_load_notebook_rejects_non_notebooks(tmp_path):
    cases = {
        "truncated.ipynb": b'{"cells": [',
        "list.ipynb": b"[1, 2]",
        "nocells.ipynb": b'{"metadata": {}}',
        "badcell.ipynb": b'{"cells": [{"cell_type": "spam", "source": ""}], "metadata": {}, '
                         b'"nbformat": 4, "nbformat_minor": 5}',
        "empty.ipynb": b"",
        "bytes.ipynb": b"\xff\xfe\x00",
        "deep.ipynb": b"[" * 100_000,
    }
    for name, data in cases.items():
        with pytest.raises(InvalidNotebook, match="^not a valid notebook: "):
            load_notebook(data)
    assert load_notebook(SOLUTION).metadata["adcourse"]["exercise"] == NAME
    bom = b"\xef\xbb\xbf" + SOLUTION.read_bytes()  # a BOM is read past
    assert load_notebook(bom).metadata["adcourse"]["exercise"] == NAME


def test_prepare_puts_answer_cells_in_place_of_the_checks():
    ref = _solution()
    sub = copy.deepcopy(ref)
    _cell(sub, "task-1-check").source = "# CHECK task-1\npass"  # edited
    _cell(sub, "task-1-check").outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓")]
    sub.cells.remove(_cell(sub, "task-3-check"))  # deleted
    sub.cells.append(nbformat.v4.new_code_cell("# CHECK task-9\npass", metadata={"tags": ["check"]}))
    dup = copy.deepcopy(_cell(sub, "task-2-check"))
    dup.source = "# CHECK task-2\npass"
    sub.cells.append(dup)  # a second check for task-2
    untagged = nbformat.v4.new_code_cell("# CHECK task-4\nprint('fake')")  # tag removed
    sub.cells.insert(sub.cells.index(_cell(sub, "task-4-check")), untagged)
    sub.cells.remove(_cell(sub, "task-4-check"))
    solution = _cell(sub, "task-1-solution")
    solution.source = "# NBVAL_SKIP\n" + solution.source + "\n    #NBVAL_RAISES_EXCEPTION"
    solution.metadata["tags"] = ["solution", "nbval-skip", "raises-exception"]

    seeds = {t: 100 + i for i, t in enumerate(TASKS)}
    out, mapping, student = prepare(sub, ref, NAME, seeds, "/out/answers.jsonl")
    answers = [(cell_task(c), c.source) for c in out.cells if c.source.startswith("# ANSWER")]
    assert [t for t, _ in answers] == TASKS  # every task once, in order
    for (task, source), seed in zip(answers, seeds.values()):
        assert f"answer({NAME!r}, {task!r}, {seed}, '/out/answers.jsonl')" in source
    code = [c for c in out.cells]
    assert all(c.cell_type == "code" and c.outputs == [] for c in code)  # markdown dropped
    assert len(mapping) == len(code)
    assert [i for i, (t, is_answer) in enumerate(mapping) if is_answer] == [
        i for i, c in enumerate(code) if c.source.startswith("# ANSWER")]
    i3 = next(i for i, c in enumerate(code) if c.source.startswith("def threshold_for_fpr"))
    assert code[i3 + 1].source.startswith("# ANSWER task-3")  # re-inserted after its own cell
    assert not any("CHECK" in c.source.splitlines()[0] for c in code)  # no check survives
    first = next(c for c in code if "def confusion_rates" in c.source)
    assert "NBVAL" not in first.source and "tags" not in first.metadata  # markers neutralised
    assert first.source.count("# (an nbval marker, ignored by the grader)") == 2
    assert [label for label, _ in student] == [  # positions in the submitted notebook
        f"cell {i}" for i, c in enumerate(sub.cells, 1) if c.cell_type == "code"
        and not c.source.startswith("# CHECK")]
    assert sub.cells[-1].source == "# CHECK task-2\npass"  # the submission is not modified


def test_prepare_appends_answers_when_the_task_cells_are_gone():
    out, mapping, student = prepare(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]),
                                    _solution(), NAME)
    assert [t for t, is_answer in mapping if is_answer] == TASKS
    assert out.cells[0].source == "x = 1" and student == [("cell 1", "x = 1")]


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


def test_reasons_of_unanswered_tasks():
    # code cells: 0 setup | 1 sol-1, 2 ans-1 | 3 sol-2, 4 ans-2 | 5 sol-3, 6 ans-3 | 7 extra
    mapping = [(None, False), ("task-1", False), ("task-1", True), ("task-2", False),
               ("task-2", True), ("task-3", False), ("task-3", True), (None, False)]
    ok = {i: CellResult(i, "passed") for i in range(8)}
    why = grading._unanswered_reason
    assert why("task-2", mapping, ok, "") == "no answers were recorded"
    res = dict(ok)
    res[3] = CellResult(3, "failed", "Timeout of 5 seconds exceeded executing cell")
    assert why("task-3", mapping, res, "") == "not run: an earlier cell (task-2) timed out after 5 s"
    res[6] = CellResult(6, "failed", "pytest plugin exception: kernel died while running this cell")
    assert why("task-3", mapping, res, "") == "kernel died"
    assert why("task-3", mapping, {}, "the time budget of 30 s ran out") == (
        "not run: the time budget of 30 s ran out")
    res = dict(ok)  # the words of nbval's messages in a student's source change nothing
    res[1] = CellResult(1, "failed", "Notebook cell execution failed\nCell 1: Cell execution "
                        "caused an exception\n\nInput:\n# Timeout of 5 seconds exceeded, "
                        "kernel died while running this cell\n1/0\n\nTraceback:\n"
                        "ZeroDivisionError: division by zero\n")
    assert why("task-2", mapping, res, "") == "no answers were recorded"
    assert grading._own_error("task-1", mapping, res) == "ZeroDivisionError: division by zero"


def test_read_answers_takes_the_first_record_made_for_the_grader_seed():
    lines = [
        {"task": "task-1", "seed": 7, "answers": [{"value": 1}]},      # a guessed seed: ignored
        {"task": "task-1", "seed": 11, "answers": [{"value": 2}]},     # the answer cell's
        {"task": "task-1", "seed": 11, "answers": [{"value": 3}]},     # a later forgery: ignored
        "not json", {"task": 5}, [1, 2],
    ]
    data = b"\n".join(json.dumps(x).encode() if not isinstance(x, str) else x.encode()
                      for x in lines)
    got = judge.read_answers(data, {"task-1": 11})
    assert got == {"task-1": {"task": "task-1", "seed": 11, "answers": [{"value": 2}]}}
    assert judge.read_answers(b"\x00\xff" * 100, {"task-1": 11}) == {}


def test_task_seeds_differ_by_task_exercise_and_run():
    seeds = {judge.task_seed(r, e, t) for r in (1, 2) for e in (NAME, NAME_2) for t in TASKS}
    assert len(seeds) == 20 and all(0 <= s < 2 ** 63 for s in seeds)
    assert judge.task_seed(1, NAME, "task-1") == judge.task_seed(1, NAME, "task-1")


def test_collect_reads_only_regular_files(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "ok.ipynb").write_text("{}")
    os.mkfifo(folder / "fifo.ipynb")
    (folder / "dir.ipynb").mkdir()
    (folder / "link-in.ipynb").symlink_to(folder / "ok.ipynb")
    (folder / "link-out.ipynb").symlink_to(SOLUTION)
    (folder / "dangling.ipynb").symlink_to(folder / "nothing.ipynb")
    (folder / "zero.ipynb").symlink_to("/dev/zero")
    (folder / "-dash.ipynb").write_text("{}")
    (folder / "notes.txt").write_text("not a notebook")
    got = {Path(e.name).name: e.problem for e in collect([folder])}
    assert got == {
        "-dash.ipynb": "",
        "dangling.ipynb": "not a regular file: a dangling symbolic link",
        "dir.ipynb": "not a regular file: a folder",
        "fifo.ipynb": "not a regular file: a FIFO",
        "link-in.ipynb": "",
        "link-out.ipynb": "not accepted: a symbolic link to a file outside the submissions folder",
        "ok.ipynb": "",
        "zero.ipynb": "not a regular file: a symbolic link to a character device",
    }


def test_shards_split_and_merge(tmp_path):
    entries = list(range(10))
    parts = [grading.shard(entries, k, 3) for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == entries and all(parts)
    with pytest.raises(ValueError):
        grading.shard(entries, 4, 3)
    a = [{"file": "b.ipynb", "exercise": NAME, "task-1": 1, "score": 1, "max_score": 1,
          "reasons": "", "notes": "", "seed": 1}]
    b = [{"file": "a.ipynb", "exercise": NAME_2, "task-2": 0, "score": 0, "max_score": 1,
          "reasons": "task-2: NotImplementedError", "notes": "", "seed": 2}]
    grading.write_csv(a, tmp_path / "1.csv")
    grading.write_csv(b, tmp_path / "2.csv")
    rows = grading.merge_gradebooks([tmp_path / "1.csv", tmp_path / "2.csv"], tmp_path / "all.csv")
    assert [r["file"] for r in rows] == ["a.ipynb", "b.ipynb"]
    table = grading.read_csv(tmp_path / "all.csv")
    assert list(table[0]) == ["file", "exercise", "task-1", "task-2", "score", "max_score",
                              "reasons", "notes", "seed"]
    assert table[0]["task-2"] == "0" and table[0]["task-1"] == ""
    with pytest.raises(ValueError, match="b.ipynb is graded in both"):
        grading.merge_gradebooks([tmp_path / "1.csv", tmp_path / "1.csv"], tmp_path / "x.csv")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "adcourse", "gradebook", "merge",
                           str(tmp_path / "1.csv"), str(tmp_path / "2.csv"), "--out",
                           str(tmp_path / "cli.csv")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cli.csv").read_text() == (tmp_path / "all.csv").read_text()


def test_command_line_without_kernels(tmp_path):
    """Broken files are graded without starting a kernel; the CSV has the expected columns; a
    name starting with '-' is a file, not an option."""
    (tmp_path / f"{NAME}-broken.ipynb").write_text('{"cells": [')
    (tmp_path / "notes.ipynb").write_text("[]")
    (tmp_path / f"-{NAME}.ipynb").write_text("")
    out = tmp_path / "gradebook.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    names = sorted(p.name for p in tmp_path.glob("*.ipynb"))  # what `*.ipynb` expands to
    proc = subprocess.run(
        [sys.executable, "-m", "adcourse", "grade", *names, "--out", str(out),
         "--solutions", str(SOLUTIONS), "--seed", "3"], capture_output=True, text=True, env=env,
        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["file"]: r for r in grading.read_csv(out)}
    assert list(next(iter(rows.values())).keys()) == COLUMNS
    broken, notes, dash = rows[f"{NAME}-broken.ipynb"], rows["notes.ipynb"], rows[f"-{NAME}.ipynb"]
    assert broken["exercise"] == NAME and broken["score"] == "0" and broken["max_score"] == "5"
    assert broken["reasons"].startswith("not a valid notebook: invalid JSON")
    assert notes["exercise"] == "" and notes["reasons"].startswith("not a valid notebook")
    assert dash["exercise"] == NAME and dash["reasons"] == "not a valid notebook: the file is empty"
    assert all(r["seed"] == "3" for r in rows.values())
    assert "not a valid notebook" in proc.stdout and "isolation: " in proc.stdout
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
    for task in TASKS:  # partly solved: every task but one
        save(f"without_{task}", _stubbed(sol, task), f"without-{task}_{NAME}.ipynb")

    nb = copy.deepcopy(sol)  # a wrong task 1 whose check was edited to pass
    _cell(nb, "task-1-check").source = "# CHECK task-1\npass"
    s = _cell(nb, "task-1-solution")
    s.source = s.source.replace("scores >= threshold", "scores > threshold")
    save("edited_check", nb)

    nb = copy.deepcopy(sol)
    _cell(nb, "task-2-solution").source = "def roc_points(scores, labels:\n    pass"
    save("syntax_error", nb)

    nb = copy.deepcopy(sol)  # a function that never returns: its task and task 5 (which calls it)
    s = _cell(nb, "task-3-solution")
    s.source = s.source.replace('    s = np.sort(', '    while True:\n        pass\n    s = np.sort(')
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
                         solutions_dir=SOLUTIONS, jobs=2, seed=SEED, total_timeout=120)
    seconds = time.monotonic() - start
    by_file = {row["file"]: row for row in rows}
    return {key: by_file[str(path)] for key, path in subs.items()}, out, seconds, subs


def _reasons(row):
    parts = re.split(r"; (?=task-\d+: )", row["reasons"]) if row["reasons"] else []
    return dict(part.split(": ", 1) for part in parts)


@pytest.mark.notebooks
def test_gradebook_csv(graded):
    rows, out, seconds, subs = graded
    table = grading.read_csv(out)
    assert len(table) == len(subs) == len(rows)
    assert list(table[0].keys()) == COLUMNS
    assert {r["seed"] for r in table} == {str(SEED)}
    print(f"graded {len(subs)} submissions in {seconds:.1f} s")


@pytest.mark.notebooks
def test_solution_gets_every_task(graded):
    row = graded[0]["solution"]
    assert [row[t] for t in TASKS] == [1] * 5, row["reasons"]
    assert (row["score"], row["max_score"], row["reasons"], row["notes"]) == (5, 5, "", "")


@pytest.mark.notebooks
def test_solution_of_exercise_2_gets_every_task(graded):
    row = graded[0]["solution_2"]
    assert row["exercise"] == NAME_2  # told apart from exercise 1 in the same run
    assert [row[t] for t in TASKS] == [1] * 5, row["reasons"]
    assert (row["score"], row["max_score"], row["reasons"]) == (5, 5, "")


@pytest.mark.notebooks
def test_blank_exercise_gets_nothing(graded):
    row = graded[0]["blank"]
    assert row["score"] == 0 and row["max_score"] == 5
    assert _reasons(row) == {t: "NotImplementedError" for t in TASKS}


def _local_verdicts(nb):
    """What the check cells say, run in this process: each code cell executed in order (errors
    kept per cell, as nbval-lax does), then each task's check on the notebook's functions."""
    ns = {"__name__": "__main__"}
    import matplotlib

    matplotlib.use("Agg")
    for cell in nb.cells:
        if cell.cell_type != "code" or "check" in cell_tags(cell):
            continue
        try:
            exec(compile(cell.source, "<cell>", "exec"), ns)
        except Exception:  # noqa: BLE001 - a stub raising NotImplementedError, ...
            pass
    out = []
    for task, check in checks.TASKS[NAME].items():
        try:
            check(*[ns[n] for n in check.uses])
            out.append(1)
        except Exception:  # noqa: BLE001 - CheckFailed, NotImplementedError, ...
            out.append(0)
    return out


@pytest.mark.notebooks
def test_judge_agrees_with_the_check_cells_on_honest_notebooks(graded, capsys):
    rows, _, _, subs = graded
    for key in ["blank", "solution", *[f"without_{t}" for t in TASKS]]:
        nb = nbformat.read(str(subs[key]), 4)
        assert [rows[key][t] for t in TASKS] == _local_verdicts(nb), key
    # task 4 reuses roc_points (task 2), task 5 threshold_for_fpr and confusion_rates (3, 1)
    assert [rows["without_task-2"][t] for t in TASKS] == [1, 0, 1, 0, 1]
    assert [rows["without_task-3"][t] for t in TASKS] == [1, 1, 0, 1, 0]


@pytest.mark.notebooks
def test_edited_check_is_restored(graded):
    row = graded[0]["edited_check"]
    assert [row[t] for t in TASKS] == [0, 1, 1, 1, 1], row["reasons"]  # no ties at task 5's own threshold
    reason = _reasons(row)["task-1"]
    assert reason.startswith("CheckFailed: Task 1 (confusion_rates)")
    assert "score > threshold" in reason


@pytest.mark.notebooks
def test_syntax_error_fails_only_its_tasks(graded):
    row = graded[0]["syntax_error"]
    # task 4 reuses roc_points, so it fails too; the others are still graded
    assert [row[t] for t in TASKS] == [1, 0, 1, 0, 1], row["reasons"]
    reasons = _reasons(row)
    assert reasons["task-2"].startswith("SyntaxError")
    assert reasons["task-4"] == "NameError: name 'roc_points' is not defined"


@pytest.mark.notebooks
def test_infinite_loop_times_out(graded):
    row = graded[0]["infinite_loop"]
    assert [row[t] for t in TASKS] == [1, 1, 0, 1, 0], row["reasons"]
    reasons = _reasons(row)
    assert reasons["task-3"] == f"timed out after {CELL_TIMEOUT} s"
    assert reasons["task-5"] == f"failed too, after an earlier cell (task-3) timed out after {CELL_TIMEOUT} s"


@pytest.mark.notebooks
def test_dead_kernel(graded):
    row = graded[0]["kills_kernel"]
    assert [row[t] for t in TASKS] == [1, 1, 1, 0, 0], row["reasons"]  # answers recorded before keep their pass
    reasons = _reasons(row)
    assert reasons["task-4"] == reasons["task-5"] == "not run: the kernel died in an earlier cell (task-4)"


@pytest.mark.notebooks
def test_deleted_checks_are_put_back(graded):
    row = graded[0]["deleted_checks"]
    # task-2 and task-5 checks were deleted: both are put back and run (task 5 reuses the
    # wrong threshold_for_fpr of task 3, so it fails); the fake task-6 check is dropped
    assert [row[t] for t in TASKS] == [1, 1, 0, 1, 0], row["reasons"]
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


def test_gradebook_cells_never_start_a_spreadsheet_formula(tmp_path):
    """A student's file name or reason that starts like a formula is written as text."""
    rows = [{"file": "=HYPERLINK(\"http://x\",\"a\").ipynb", "exercise": NAME, "task-1": 1,
             "score": 1, "max_score": 1, "reasons": "-1 point", "notes": "@home", "seed": 5},
            {"file": "plain.ipynb", "exercise": NAME, "task-1": 0, "score": 0, "max_score": 1,
             "reasons": "task-1: wrong", "notes": "", "seed": 5}]
    grading.write_csv(rows, tmp_path / "g.csv")
    raw = list(csv.DictReader((tmp_path / "g.csv").open()))
    for row in raw:
        for key, value in row.items():
            assert not value.startswith(("=", "+", "-", "@")), (key, value)
    assert raw[0]["file"].startswith("'=") and raw[1]["file"] == "plain.ipynb"
    back = grading.read_csv(tmp_path / "g.csv")
    assert back[0]["file"] == rows[0]["file"] and back[0]["reasons"] == "-1 point"
    assert back[0]["notes"] == "@home" and back[1]["reasons"] == "task-1: wrong"

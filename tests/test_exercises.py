"""exercises/ is generated from solutions/ (adcourse.course.exercises) and stays in sync with it."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from adcourse.course import checks, exercises
from adcourse.course.exercises import STUB, cell_tags, cell_task, generate, notebook_text, stub_source

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
SOLUTION_FILES = sorted(SOLUTIONS.glob("*.ipynb"))


def test_there_are_solutions_and_exercises():
    assert SOLUTION_FILES, "no solution notebooks"
    assert sorted(p.name for p in EXERCISES.glob("*.ipynb")) == [p.name for p in SOLUTION_FILES]


def test_committed_exercises_are_in_sync():
    stale = exercises.check_in_sync(SOLUTIONS, EXERCISES)
    assert not stale, (
        f"out of date: {stale}; run `make exercises` (python -m adcourse.course.exercises)\n"
        + exercises.diff(SOLUTIONS, EXERCISES)[:4000]
    )


@pytest.mark.parametrize("path", SOLUTION_FILES + sorted(EXERCISES.glob("*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebooks_have_no_outputs(path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: a cell has outputs:\n{''.join(cell['source'])}"
            assert cell["execution_count"] is None
        assert "execution" not in cell.get("metadata", {})
    assert "widgets" not in raw["metadata"]
    assert path.read_text(encoding="utf-8") == notebook_text(nbformat.reads(path.read_text(), 4)), \
        "not in the canonical format (nbformat.writes, indent 1, trailing newline)"


@pytest.mark.parametrize("sol", SOLUTION_FILES, ids=lambda p: p.stem)
def test_solution_structure(sol):
    """Metadata the grader relies on: exercise name, one check per task, `# CHECK task-N` lines."""
    nb = nbformat.read(str(sol), as_version=4)
    assert nb.metadata["adcourse"]["exercise"] == sol.stem
    check_cells = [c for c in nb.cells if "check" in cell_tags(c)]
    tasks = [c.metadata["adcourse"]["task"] for c in check_cells]
    assert len(tasks) >= 4 and len(tasks) == len(set(tasks))
    for cell, task in zip(check_cells, tasks):
        assert cell.cell_type == "code"
        assert cell.source.splitlines()[0] == f"# CHECK {task}"
        assert cell_task(cell) == task
        # every check function the cell calls exists in adcourse.course.checks
        names = [n.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Name)]
        assert any(getattr(checks, n, None) is not None and n.startswith("check_") for n in names)
        solutions = [c for c in nb.cells if "solution" in cell_tags(c) and cell_task(c) == task]
        assert solutions, f"no solution cell for {task}"
        assert nb.cells.index(solutions[0]) < nb.cells.index(cell)
    if sol.stem in checks.TASKS:
        assert tasks == list(checks.TASKS[sol.stem])
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)) and all(ids), "cell ids must be present and unique"


@pytest.mark.parametrize("sol", SOLUTION_FILES, ids=lambda p: p.stem)
def test_generated_exercise(sol):
    src = nbformat.read(str(sol), as_version=4)
    ex = generate(sol)
    assert len(ex.cells) == len(src.cells)
    assert ex.metadata == src.metadata
    for s, e in zip(src.cells, ex.cells):
        assert (s.id, s.cell_type, s.metadata) == (e.id, e.cell_type, e.metadata)
        tags = cell_tags(s)
        if "solution" in tags and s.cell_type == "code":
            assert e.source.rstrip().endswith("raise NotImplementedError()")
            assert "# YOUR CODE HERE" in e.source
            s_defs = [n for n in ast.parse(s.source).body if isinstance(n, ast.FunctionDef)]
            e_tree = ast.parse(e.source)
            e_defs = [n for n in e_tree.body if isinstance(n, ast.FunctionDef)]
            assert [d.name for d in e_defs] == [d.name for d in s_defs]
            for sd, ed in zip(s_defs, e_defs):
                assert ast.dump(sd.args) == ast.dump(ed.args), "signature changed"
                assert ast.get_docstring(sd) == ast.get_docstring(ed), "docstring lost"
                body = [b for b in ed.body if not isinstance(b, ast.Expr)]
                assert len(body) == 1 and isinstance(body[0], ast.Raise), "solution code leaked"
        elif "solution" in tags:
            assert e.source == exercises.MARKDOWN_STUB
        else:  # check cells and everything else: verbatim
            assert e.source == s.source


def test_generation_is_deterministic(tmp_path):
    written = exercises.write_all(SOLUTIONS, tmp_path)
    assert sorted(p.name for p in written) == [p.name for p in SOLUTION_FILES]
    for sol in SOLUTION_FILES:
        text = (tmp_path / sol.name).read_text(encoding="utf-8")
        assert text == notebook_text(generate(sol)) and text.endswith("}\n")
        assert text == (EXERCISES / sol.name).read_text(encoding="utf-8")
    assert exercises.write_all(SOLUTIONS, tmp_path) == []  # nothing changes the second time


def test_check_in_sync_reports_edited_missing_and_stale_exercises(tmp_path):
    ex = tmp_path / "exercises"
    shutil.copytree(EXERCISES, ex)
    assert exercises.check_in_sync(SOLUTIONS, ex) == []
    assert exercises.diff(SOLUTIONS, ex) == ""
    first = sorted(ex.glob("*.ipynb"))[0]
    nb = nbformat.read(str(first), 4)
    nb.cells[0].source += "\nedited by hand"
    first.write_text(notebook_text(nb))
    (ex / "99-stale.ipynb").write_text(first.read_text())
    stale = exercises.check_in_sync(SOLUTIONS, ex)
    assert stale == [str(first), str(ex / "99-stale.ipynb")]
    assert "edited by hand" in exercises.diff(SOLUTIONS, ex)
    first.unlink()
    assert str(first) in exercises.check_in_sync(SOLUTIONS, ex)


def test_command_line_check(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "adcourse.course.exercises", *args],
                              cwd=ROOT, capture_output=True, text=True)

    assert run("--check").returncode == 0
    ex = tmp_path / "ex"
    proc = run("--check", "--exercises", str(ex))
    assert proc.returncode == 1 and "out of date" in proc.stderr
    assert run("--exercises", str(ex)).returncode == 0
    assert run("--check", "--exercises", str(ex)).returncode == 0


# ---- the stub rules ------------------------------------------------------------------


def test_stub_of_functions_keeps_comments_imports_signatures_and_docstrings():
    src = '''# Task 1: rates
import numpy as np

def f(a, b=2):
    """Doc
    string."""
    x = a + b
    return x

demo = f(1)

# a helper
@decorator
def g(
    x,
    y,
):
    return x'''
    assert stub_source(src) == '''# Task 1: rates
import numpy as np


def f(a, b=2):
    """Doc
    string."""
    # YOUR CODE HERE
    raise NotImplementedError()


# a helper
@decorator
def g(
    x,
    y,
):
    # YOUR CODE HERE
    raise NotImplementedError()'''


def test_stub_of_other_code_keeps_leading_comments():
    assert stub_source("# compute t\n# then r\nt = 1\nr = 2") == "# compute t\n# then r\n" + STUB
    assert stub_source("t = 1") == STUB
    assert stub_source("%time x = 1\n") == STUB  # not Python: comments only
    assert stub_source("def f(x): return 2 * x") == (
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()")


def test_stub_between_markers():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    assert stub_source(src) == "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()"


def test_generate_strips_outputs_and_stubs_markdown(tmp_path):
    v4 = nbformat.v4
    nb = v4.new_notebook(cells=[
        v4.new_code_cell("x = 1", execution_count=3,
                         outputs=[v4.new_output("stream", name="stdout", text="1\n")],
                         metadata={"execution": {"iopub.status.idle": "2024-01-01T00:00:00Z"}, "tags": ["solution"]}),
        v4.new_markdown_cell("the answer is 42", metadata={"tags": ["solution"]}),
        v4.new_code_cell("print(2)", execution_count=4,
                         outputs=[v4.new_output("stream", name="stdout", text="2\n")],
                         metadata={"tags": ["check"]}),
    ])
    for i, c in enumerate(nb.cells):
        c.id = f"c{i}"
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    ex = generate(path)
    assert [c.source for c in ex.cells] == [STUB, exercises.MARKDOWN_STUB, "print(2)"]
    assert all(c.outputs == [] and c.execution_count is None for c in ex.cells if c.cell_type == "code")
    assert "execution" not in ex.cells[0].metadata

r"""Grade exercise submissions: nbval runs them with the reference checks put back.

For every submitted notebook, independently (one broken submission never stops
the others):

1. **load** it (invalid JSON or not a notebook: every task 0, reason
   ``not a valid notebook: ...``);
2. **find its reference** in the solutions folder (:func:`find_reference`);
3. **prepare** a copy (:func:`prepare`): outputs stripped, every ``check``
   cell replaced by the reference's check cell of the same task (matched on
   ``metadata.adcourse.task``, else on the ``# CHECK task-N`` first line), a
   deleted check re-inserted after the student's last cell of that task (or
   appended), a ``check`` cell that is not in the reference dropped. The
   submission's own outputs and checks are never trusted;
4. **run** it through ``pytest --nbval-lax`` in a subprocess, one fresh kernel
   per submission (the grader's Python environment, ``--nbval-current-env``),
   with ``OMP_NUM_THREADS=1``, a per-cell timeout (``--nbval-cell-timeout``) and
   an overall timeout that kills the whole process tree;
5. **score** it from the junit XML: a task passes iff its check cell passed.
   After a cell timed out or the kernel died, every later cell counts as failed
   (``not run: ...``), including nbval's "Previous cell timed out" xfails and
   xpasses. The reason of a failed task is the last line of its error (ANSI
   codes stripped): the check's ``CheckFailed`` hint, or the first error among
   the task's own cells (``NotImplementedError``, ``SyntaxError: ...``,
   ``timed out after 60 s``, ``kernel died ...``).

Python::

    from adcourse.course.grading import grade
    rows = grade(["submissions/alice.ipynb", "submissions/bob.ipynb"], out="gradebook.csv")

Command line (see :mod:`adcourse.course.cli`)::

    adcourse grade submissions/*.ipynb --out gradebook.csv [--timeout 60] [--solutions solutions/]

The gradebook has one row per submission: ``file, exercise, task-1, ...,
task-K, score, max_score, reasons`` (1 = passed, 0 = failed; ``reasons`` like
``task-2: NotImplementedError; task-4: CheckFailed: ...``).

**Which reference?** (:func:`find_reference`) In order: the notebook metadata
``adcourse.exercise`` when a solution of that name exists; else the solution
whose name (stem, e.g. ``01-performance-measures``) occurs in the submission's
file name, lower-cased with ``_`` and spaces read as ``-`` (so
``alice_01-performance-measures (1).ipynb`` and
``01-performance-measures-bob.ipynb`` both work; the longest match wins); else
the solution with the same two-digit number as a ``NN`` token of the file name
when exactly one has it (``ex01_alice.ipynb``). ``exercise=`` forces one.
"""

from __future__ import annotations

import concurrent.futures
import copy
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from adcourse.course.exercises import cell_tags, cell_task, strip_outputs

__all__ = [
    "GradingError",
    "InvalidNotebook",
    "TaskResult",
    "Submission",
    "grade",
    "grade_one",
    "load_notebook",
    "find_reference",
    "reference_checks",
    "prepare",
    "run_nbval",
    "parse_junit",
    "score_cells",
    "write_csv",
    "format_table",
    "default_solutions_dir",
]

_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;?]*[A-Za-z]")
_EXC_LINE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Failed|Interrupt|Exit|Warning|Died|Iteration))\b(:.*)?$"
)
_TIMEOUT = re.compile(r"Timeout of ([\d.]+) seconds exceeded")
_DIED = "kernel died while running this cell"  # adcourse.course._grading_plugin.KernelDied


class GradingError(Exception):
    """A submission cannot be graded (no reference solution, ...)."""


class InvalidNotebook(GradingError):
    """The submission is not a readable notebook."""


@dataclass
class TaskResult:
    task: str
    passed: bool
    reason: str = ""


@dataclass
class Submission:
    """The grade of one submission."""

    file: str
    exercise: str | None
    tasks: list = field(default_factory=list)  # list[TaskResult], in reference order
    reason: str = ""  # a reason that concerns the whole submission
    seconds: float = 0.0

    @property
    def score(self):
        return sum(t.passed for t in self.tasks)

    @property
    def max_score(self):
        return len(self.tasks)

    def row(self):
        """The gradebook row (a dict), as written to the CSV."""
        row = {"file": self.file, "exercise": self.exercise or ""}
        for t in self.tasks:
            row[t.task] = int(t.passed)
        row["score"] = self.score
        row["max_score"] = self.max_score
        if self.reason:  # one reason for the whole submission
            row["reasons"] = self.reason
        else:
            row["reasons"] = "; ".join(f"{t.task}: {t.reason}" for t in self.tasks if not t.passed)
        return row


# --------------------------------------------------------------------------------------
# loading and references
# --------------------------------------------------------------------------------------


def default_solutions_dir():
    """``./solutions`` when it exists, else the ``solutions/`` next to the package (a checkout)."""
    here = Path("solutions")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "solutions"


def load_notebook(path):
    """Read a notebook (converted to v4); raise :class:`InvalidNotebook` with the cause."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidNotebook(f"not a valid notebook: cannot read it ({exc})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidNotebook(f"not a valid notebook: invalid JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise InvalidNotebook("not a valid notebook: no list of cells")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many kinds
        raise InvalidNotebook(f"not a valid notebook: {type(exc).__name__}: {exc}") from None
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise InvalidNotebook(f"not a valid notebook: cell {i} has no valid cell_type")
        if not isinstance(cell.get("source", ""), str):
            raise InvalidNotebook(f"not a valid notebook: cell {i} has an invalid source")
        cell.setdefault("metadata", nbformat.NotebookNode())
    return nb


def _normalise_name(name):
    return re.sub(r"[\s_]+", "-", name.lower())


def find_reference(nb, path, solutions_dir, exercise=None):
    """Path of the reference solution of a submission (rule in the module docstring)."""
    solutions_dir = Path(solutions_dir)
    refs = {p.stem: p for p in sorted(solutions_dir.glob("*.ipynb"))}
    if not refs:
        raise GradingError(f"no solution notebooks in {solutions_dir}")
    if exercise is not None:
        if exercise not in refs:
            raise GradingError(f"no solution {exercise!r} in {solutions_dir} (have {sorted(refs)})")
        return refs[exercise]
    meta = nb.metadata.get("adcourse", {}) if nb is not None else {}
    if isinstance(meta, dict) and meta.get("exercise") in refs:
        return refs[meta["exercise"]]
    stem = _normalise_name(Path(path).stem)
    found = [s for s in refs if _normalise_name(s) in stem]
    if found:
        return refs[max(found, key=len)]
    numbers = set(re.findall(r"(?<!\d)(\d{2})(?!\d)", stem))
    by_number = [s for s in refs if s[:2].isdigit() and s[:2] in numbers]
    if len(by_number) == 1:
        return refs[by_number[0]]
    raise GradingError(
        f"cannot tell which exercise {Path(path).name} is: no adcourse.exercise metadata and "
        f"no solution name ({', '.join(sorted(refs))}) in the file name"
    )


def _is_check(cell):
    return cell.get("cell_type") == "code" and (
        "check" in cell_tags(cell)
        or (cell_task(cell) is not None and str(cell.get("source", "")).lstrip().upper().startswith("# CHECK"))
    )


def reference_checks(ref_nb):
    """``{task id: check cell}`` of a reference notebook, in notebook order."""
    checks = {}
    for cell in ref_nb.cells:
        if _is_check(cell):
            task = cell_task(cell)
            if task is None:
                raise GradingError(f"a check cell of the reference has no task id:\n{cell.source}")
            if task in checks:
                raise GradingError(f"the reference has two check cells for {task}")
            checks[task] = cell
    return checks


def prepare(nb, ref_nb):
    """The notebook to run, and the task of each of its code cells.

    Returns ``(prepared, cells)`` where ``cells[i] = (task or None, is_check)`` for
    the ``i``-th code cell (nbval's "Cell i").
    """
    checks = reference_checks(ref_nb)
    out = copy.deepcopy(nb)
    strip_outputs(out)
    kept, used = [], set()
    for cell in out.cells:
        if _is_check(cell):
            task = cell_task(cell)
            if task in checks and task not in used:
                kept.append(copy.deepcopy(checks[task]))
                used.add(task)
            continue  # duplicates and checks unknown to the reference are dropped
        kept.append(cell)
    for task, ref_cell in checks.items():  # re-insert deleted checks
        if task in used:
            continue
        own = [i for i, c in enumerate(kept) if cell_task(c) == task and c.cell_type == "code"]
        new = copy.deepcopy(ref_cell)
        if own:
            kept.insert(own[-1] + 1, new)
        else:
            kept.append(new)
    for cell in kept:  # never carry the submission's outputs or nbval directives into the run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.cells = kept
    code_cells = [c for c in kept if c.cell_type == "code"]
    mapping = [(cell_task(c), _is_check(c) and cell_task(c) in checks) for c in code_cells]
    return out, mapping


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------


def _descendants(pid):
    """All descendant pids of ``pid`` (Linux /proc; empty elsewhere)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(proc):
    """Kill the subprocess, its process group and every descendant (the kernel has its own session)."""
    victims = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


# ``python -m pytest``, minus 2 s: jsonschema (imported by nbformat, imported by nbval) builds
# the grammar of the optional ``rfc3987_syntax`` format checker at import time, which
# nbformat's validation never uses. Marking that module as absent skips it.
_BOOTSTRAP = (
    "import sys; sys.modules.setdefault('rfc3987_syntax', None); import pytest; "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


def run_nbval(notebook, junit, timeout=60, total_timeout=None, omp_threads=1):
    """Run ``pytest --nbval-lax`` on one notebook in a subprocess.

    Returns ``(returncode, log, timed_out)``; ``returncode`` is None when the overall
    ``total_timeout`` (seconds) ran out and the process tree was killed.
    """
    notebook, junit = Path(notebook).resolve(), Path(junit).resolve()
    work = notebook.parent
    (work / "pytest.ini").write_text("[pytest]\n")  # isolates from any project config
    runtime = work / "jupyter-runtime"
    runtime.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(omp_threads),
        "MKL_NUM_THREADS": str(omp_threads),
        "OPENBLAS_NUM_THREADS": str(omp_threads),
        "MPLBACKEND": "Agg",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_PLUGINS", None)
    cmd = [
        sys.executable, "-c", _BOOTSTRAP, str(notebook.name),
        "-c", str(work / "pytest.ini"), "--rootdir", str(work),
        "-p", "nbval.plugin", "-p", "adcourse.course._grading_plugin", "-p", "no:cacheprovider",
        "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout:g}",
        f"--junitxml={junit}", "-q", "--color=no", "-o", "junit_family=xunit2",
    ]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=total_timeout)
        return proc.returncode, out.decode("utf-8", "replace"), False
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace"), True
    finally:
        if proc.poll() is None:  # pragma: no cover - interrupted (KeyboardInterrupt, ...)
            _kill_tree(proc)


@dataclass
class CellResult:
    index: int
    status: str  # passed, failed, xfailed, skipped
    text: str = ""


def parse_junit(path):
    """``{code cell index: CellResult}`` from nbval's junit XML (ANSI codes removed)."""
    root = ET.parse(str(path)).getroot()
    out = {}
    for case in root.iter("testcase"):
        m = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not m:
            continue
        index, status, text = int(m.group(1)), "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed"
                text = child.text or child.get("message", "")
            elif child.tag == "skipped":
                status = "xfailed" if "xfail" in (child.get("type") or "") else "skipped"
                text = child.get("message", "") or (child.text or "")
        out[index] = CellResult(index, status, _ANSI.sub("", text))
    return out


def error_reason(text, timeout=None):
    """The last line of a cell's error: ``ValueError: ...``, ``timed out after 60 s``, ..."""
    if not text:
        return "failed"
    head = _header(text)  # nbval's own message, before the cell's source
    m = _TIMEOUT.search(head)
    if m:
        extra = " (could not interrupt the kernel)" if "Failed to interrupt" in head else ""
        return f"timed out after {float(m.group(1)):g} s{extra}"
    if "Kernel dead on test start" in head:
        return "not run: the kernel had died"
    if _DIED in head:
        return "kernel died" + head.split(_DIED, 1)[1].split("\n")[0]
    body = text.split("\nTraceback:", 1)[1] if "\nTraceback:" in text else text
    lines = [ln.rstrip() for ln in body.strip().splitlines()]
    start = None
    for i, line in enumerate(lines):
        if _EXC_LINE.match(line.strip()):
            start = i
    if start is None:
        nonempty = [ln for ln in lines if ln.strip()]
        reason = nonempty[-1].strip() if nonempty else "failed"
    else:
        tail = [ln.strip() for ln in lines[start:] if ln.strip()]
        reason = " | ".join(tail)
    reason = reason.replace("pytest plugin exception: ", "")
    if reason.endswith(":"):  # "NotImplementedError:" with an empty message
        reason = reason[:-1]
    return reason if len(reason) <= 600 else reason[:597] + "..."


def _header(text):
    return text.split("\nInput:", 1)[0]


def _is_stop(result):
    """Does this cell end the run (a timeout or a dead kernel)?"""
    head = _header(result.text)
    return result.status == "failed" and (_TIMEOUT.search(head) is not None or _DIED in head)


def score_cells(mapping, results, tasks):
    """``[TaskResult]`` for ``tasks`` from the cell ``mapping`` of :func:`prepare` and junit ``results``."""
    check_index = {}
    for i, (task, is_check) in enumerate(mapping):
        if is_check:
            check_index[task] = i
    stops = sorted(i for i, r in results.items() if _is_stop(r))
    stop = stops[0] if stops else None
    stop_reason = error_reason(results[stop].text) if stop is not None else ""
    out = []
    for task in tasks:
        ci = check_index.get(task)
        if ci is None:  # cannot happen: prepare() always inserts every check
            out.append(TaskResult(task, False, "check cell missing"))
            continue
        own = [i for i, (t, _) in enumerate(mapping) if t == task and i <= ci]
        if stop is not None and ci > stop:
            if mapping[stop][0] == task:
                reason = stop_reason
            elif "kernel died" in stop_reason:
                reason = f"not run: the kernel died in an earlier cell ({mapping[stop][0] or 'cell ' + str(stop)})"
            else:
                reason = f"not run: an earlier cell {stop_reason} ({mapping[stop][0] or 'cell ' + str(stop)})"
            out.append(TaskResult(task, False, reason))
            continue
        res = results.get(ci)
        if res is None:
            out.append(TaskResult(task, False, "not run"))
            continue
        if res.status == "passed":
            out.append(TaskResult(task, True, ""))
            continue
        if res.status in ("skipped", "xfailed"):
            out.append(TaskResult(task, False, "not run: " + (res.text or res.status)))
            continue
        check_reason = error_reason(res.text)
        reason = check_reason
        if not check_reason.startswith("CheckFailed") and ci != stop:
            for i in own:
                r = results.get(i)
                if r is not None and r.status == "failed":
                    reason = error_reason(r.text)
                    break
        out.append(TaskResult(task, False, reason))
    return out


# --------------------------------------------------------------------------------------
# grading
# --------------------------------------------------------------------------------------


def _safe_name(path):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem)[:80] or "submission"


def grade_one(path, solutions_dir=None, timeout=60, total_timeout=None, exercise=None,
              workdir=None, omp_threads=1):
    """Grade one submission; never raises (problems become reasons). Returns a :class:`Submission`."""
    start = time.monotonic()
    path = Path(path)
    solutions_dir = Path(solutions_dir) if solutions_dir is not None else default_solutions_dir()
    sub = Submission(file=str(path), exercise=None)
    try:
        nb, load_error = None, None
        try:
            nb = load_notebook(path)
        except InvalidNotebook as exc:
            load_error = str(exc)
        try:
            ref_path = find_reference(nb, path, solutions_dir, exercise)
        except GradingError as exc:
            sub.reason = load_error or str(exc)
            return sub
        sub.exercise = ref_path.stem
        ref_nb = nbformat.read(str(ref_path), as_version=4)
        tasks = list(reference_checks(ref_nb))
        if load_error:
            sub.reason = load_error
            sub.tasks = [TaskResult(t, False, load_error) for t in tasks]
            return sub
        prepared, mapping = prepare(nb, ref_nb)
        if total_timeout is None:
            total_timeout = 120 + timeout * max(len(mapping), 1)
        if workdir is not None:
            Path(workdir).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_safe_name(path)}-", dir=workdir))
        try:
            nb_path = tmp / f"{_safe_name(path)}.ipynb"
            nb_path.write_text(nbformat.writes(prepared, version=4), encoding="utf-8")
            junit = tmp / "junit.xml"
            code, log, killed = run_nbval(nb_path, junit, timeout, total_timeout, omp_threads)
            (tmp / "pytest.log").write_text(log, encoding="utf-8")
            if killed:
                sub.reason = f"grading timed out after {total_timeout:g} s (whole notebook)"
                sub.tasks = [TaskResult(t, False, sub.reason) for t in tasks]
            elif not junit.exists():
                tail = " | ".join(log.strip().splitlines()[-3:])
                sub.reason = f"grading failed (pytest exit code {code}): {tail}"
                sub.tasks = [TaskResult(t, False, sub.reason) for t in tasks]
            else:
                sub.tasks = score_cells(mapping, parse_junit(junit), tasks)
        finally:
            if workdir is None:
                shutil.rmtree(tmp, ignore_errors=True)
    except Exception as exc:  # one bad submission must not stop the others
        sub.reason = f"grading error: {type(exc).__name__}: {exc}"
        sub.tasks = [TaskResult(t.task, False, sub.reason) for t in sub.tasks]
    finally:
        sub.seconds = time.monotonic() - start
    return sub


def _expand(paths):
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.glob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            out.append(p)
    return out


def _columns(rows):
    tasks = []
    for row in rows:
        for key in row:
            if key not in ("file", "exercise", "score", "max_score", "reasons") and key not in tasks:
                tasks.append(key)
    tasks.sort(key=lambda t: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", t)])
    return ["file", "exercise", *tasks, "score", "max_score", "reasons"]


def write_csv(rows, out):
    """Write gradebook rows (dicts from :func:`grade`) to the CSV file ``out``."""
    columns = _columns(rows)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def format_table(submissions):
    """A readable summary table of graded :class:`Submission` objects."""
    rows = [s.row() for s in submissions]
    tasks = [c for c in _columns(rows) if c not in ("file", "exercise", "score", "max_score", "reasons")]
    name_w = max([len("submission")] + [len(Path(s.file).name) for s in submissions])
    buf = io.StringIO()
    labels = [t.replace("task-", "t") for t in tasks]
    head = f"{'submission':<{name_w}}  " + " ".join(f"{lab:>{max(3, len(lab))}}" for lab in labels) + "  score   time"
    buf.write(head + "\n" + "-" * len(head) + "\n")
    for s, row in zip(submissions, rows):
        marks = " ".join(f"{('✓' if row[t] else '✗') if t in row else '':>{max(3, len(lab))}}"
                         for t, lab in zip(tasks, labels))
        buf.write(f"{Path(s.file).name:<{name_w}}  {marks}  {row['score']:>2}/{row['max_score']:<2} "
                  f"{s.seconds:5.1f}s\n")
        if s.reason:
            buf.write(f"    {s.reason[:200]}\n")
        else:
            for t in s.tasks:
                if not t.passed:
                    buf.write(f"    {t.task}: {t.reason[:200]}\n")
    return buf.getvalue()


def grade(paths, out=None, timeout=60, solutions_dir=None, jobs=1, total_timeout=None,
          exercise=None, workdir=None, verbose=True):
    """Grade submissions (files or folders of ``*.ipynb``); return the gradebook rows (dicts).

    Parameters
    ----------
    paths : list of str or Path
        Submitted notebooks, or folders whose ``*.ipynb`` are all graded.
    out : str or Path, optional
        Where to write the gradebook CSV.
    timeout : float, default=60
        Per-cell timeout in seconds (``--nbval-cell-timeout``).
    solutions_dir : str or Path, optional
        Folder of the reference solutions (default: ``./solutions``, else the checkout's).
    jobs : int, default=1
        Submissions graded at the same time (each kernel with ``OMP_NUM_THREADS=1``).
    total_timeout : float, optional
        Limit for one whole notebook (default ``120 + timeout * #code cells``).
    exercise : str, optional
        Force the reference (a solution's name, e.g. ``"01-performance-measures"``).
    workdir : str or Path, optional
        Keep each prepared notebook, junit XML and pytest log in a folder under it.
    verbose : bool, default=True
        Print the summary table.
    """
    files = _expand(paths)

    def one(p):
        return grade_one(p, solutions_dir, timeout, total_timeout, exercise, workdir)

    if jobs > 1 and len(files) > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=int(jobs)) as pool:
            subs = list(pool.map(one, files))
    else:
        subs = [one(p) for p in files]
    rows = [s.row() for s in subs]
    if out is not None:
        write_csv(rows, out)
    if verbose:
        print(format_table(subs), end="")
        if out is not None:
            print(f"gradebook: {out}")
    return rows

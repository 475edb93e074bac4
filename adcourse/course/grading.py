r"""Grade exercise submissions: nbval runs each one in a sandbox, the judge decides outside it.

For every submitted notebook, independently (one broken or hostile submission
never changes another's row; every submission gets exactly one row):

1. **read** it (:func:`collect`): only regular files (a link only to a regular file
   in the same folder); FIFOs, devices, folders, dangling links and links out of the
   folder get a row with the reason; a name is never read as an option; at most
   :data:`MAX_NOTEBOOK_BYTES`; invalid JSON, non-notebooks: every task 0 with the reason;
2. **identify** it (:func:`find_reference`): the notebook's ``adcourse.exercise``
   metadata, else its file name (dates and versions in the name are ignored); when
   both are there and disagree, the metadata wins and the ``notes`` column says so;
3. **prepare** it (:func:`prepare`): outputs dropped; every ``check`` cell replaced by
   the grader's *answer cell* of that task (a deleted one re-inserted after the
   task's own cells, a duplicate or unknown one dropped); nbval's markers and tags
   removed from the student's cells; markdown dropped;
4. **check the policy** (:mod:`adcourse.course.policy`): what each task's functions may
   use (plain NumPy, ...), read from the student's code by the grader;
5. **run** it (:mod:`adcourse.course.sandbox`): ``pytest --nbval-lax`` with a fresh
   kernel inside the sandbox, a per-cell timeout and one wall-clock budget for the
   whole notebook (``total_timeout``, independent of its number of cells). The kernel
   only *computes answers*: each answer cell asks the student's functions the task's
   questions, made from a seed the grader draws for the run, and appends them as data
   to the sandbox's answers file;
6. **judge** it (:mod:`adcourse.course.judge`), in this process: the questions are
   made again from the same seeds, the references computed here, the answers
   compared. A task passes iff its answers are right (and the policy holds). Answers
   recorded before a timeout, a dead kernel or the end of the budget keep their
   verdict. The reason of a failed task: the check's ``CheckFailed`` hint, the
   student's error (``NotImplementedError``, ``SyntaxError: ...`` of the task's cell),
   ``timed out after 60 s``, ``kernel died ...``, the policy, ...

Nothing the notebook prints, writes or returns is trusted: the answers are data,
the junit XML only explains failures, the gradebook is written by the grader alone.

Python::

    from adcourse.course.grading import grade
    rows = grade(["submissions/"], out="gradebook.csv", jobs=2)

Command line (see :mod:`adcourse.course.cli`)::

    adcourse grade submissions/ --out gradebook.csv [--jobs N] [--shard K/N] [--seed S]
    adcourse gradebook merge shard-*.csv --out gradebook.csv

The gradebook has one row per submission: ``file, exercise, task-1, ..., task-K,
score, max_score, reasons, notes, seed`` (1 = passed, 0 = failed; ``reasons`` like
``task-2: NotImplementedError; task-4: CheckFailed: ...``; ``notes``: what the grader
noticed that is not a task's reason; ``seed``: the run's seed, to grade again with the
same questions).
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import os
import queue
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from adcourse.course import sandbox as _sandbox
from adcourse.course.exercises import cell_tags, cell_task
from adcourse.course.judge import clean_reason, judge_task, read_answers, task_seed

__all__ = [
    "GradingError",
    "InvalidNotebook",
    "TaskResult",
    "Submission",
    "Entry",
    "grade",
    "grade_one",
    "collect",
    "shard",
    "load_notebook",
    "find_reference",
    "reference_checks",
    "prepare",
    "parse_junit",
    "error_reason",
    "write_csv",
    "read_csv",
    "merge_gradebooks",
    "format_table",
    "default_solutions_dir",
]

#: The largest submission read (bytes).
MAX_NOTEBOOK_BYTES = 64 * 2 ** 20
#: Default per-cell timeout and whole-notebook budget (seconds).
CELL_TIMEOUT, TOTAL_TIMEOUT = 60.0, 300.0
ANSWERS, JUNIT = "answers.jsonl", "junit.xml"
NOTEBOOK = "submission.ipynb"
_META_COLUMNS = ("file", "exercise", "score", "max_score", "reasons", "notes", "seed")

_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;?]*[A-Za-z]")
_EXC_LINE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Failed|Interrupt|Exit|Warning|Died|Iteration|Defined))\b(:.*)?$"
)
_TIMEOUT = re.compile(r"Timeout of ([\d.]+) seconds exceeded")
_DIED = "kernel died while running this cell"  # adcourse.course._grading_plugin.KernelDied
_NBVAL_MARKERS = ("PYTEST_VALIDATE_IGNORE_OUTPUT", "NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT",
                  "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP")


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
    notes: list = field(default_factory=list)
    seed: int | None = None
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
        row["notes"] = "; ".join(self.notes)
        row["seed"] = "" if self.seed is None else self.seed
        return row


# --------------------------------------------------------------------------------------
# the submitted files
# --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One submitted file: ``name`` (the gradebook's ``file``), the path to read, or why not."""

    name: str
    path: Path
    problem: str = ""


def _kind(mode):
    return {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
            stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
            stat.S_IFLNK: "a symbolic link"}.get(stat.S_IFMT(mode), "not a regular file")


def _check_entry(path, folder):
    """'' when ``path`` may be read as a submission, else the reason (see :func:`collect`)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if stat.S_ISREG(st.st_mode):
        return ""
    if not stat.S_ISLNK(st.st_mode):
        return f"not a regular file: {_kind(st.st_mode)}"
    try:
        target = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return "not a regular file: a dangling symbolic link"
    try:
        target_mode = os.stat(target).st_mode
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if not stat.S_ISREG(target_mode):
        return f"not a regular file: a symbolic link to {_kind(target_mode)}"
    if folder is None or target.parent != Path(folder).resolve():
        return "not accepted: a symbolic link to a file outside the submissions folder"
    return ""


def collect(paths):
    """The :class:`Entry` of every submission named by ``paths`` (files, or folders whose
    ``*.ipynb`` entries are all taken, whatever their kind), in order."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not p.name.lower().endswith(".ipynb"):
            names = sorted(q for q in p.iterdir() if q.name.lower().endswith(".ipynb"))
            out += [Entry(str(q), q, _check_entry(q, p)) for q in names]
        else:
            out.append(Entry(str(p), p, _check_entry(p, p.parent)))
    return out


def shard(entries, k, n):
    """The ``k``-th of ``n`` shards (1-based) of ``entries``: every ``n``-th, from the ``k``-th
    (the shards of one list of submissions are disjoint and cover it)."""
    if not (1 <= k <= n):
        raise ValueError(f"shard must be k/n with 1 <= k <= n, got {k}/{n}")
    return list(entries)[k - 1::n]


def read_submission(entry):
    """The bytes of a submission (regular file, size-capped, links not followed past the check)."""
    path = Path(entry.path).resolve() if Path(entry.path).is_symlink() else Path(entry.path)
    data = _sandbox.read_output(str(path.parent), path.name, MAX_NOTEBOOK_BYTES)
    if data is None:
        try:
            size = os.lstat(path).st_size
        except OSError:
            size = 0
        if size > MAX_NOTEBOOK_BYTES:
            raise InvalidNotebook(f"not graded: the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
        raise InvalidNotebook("not a valid notebook: cannot read it as a regular file")
    return data


# --------------------------------------------------------------------------------------
# loading and references
# --------------------------------------------------------------------------------------


def default_solutions_dir():
    """``./solutions`` when it exists, else the ``solutions/`` next to the package (a checkout)."""
    here = Path("solutions")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "solutions"


def load_notebook(source):
    """A notebook (converted to v4) from a path or bytes; raise :class:`InvalidNotebook` with the cause."""
    try:
        data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        text = bytes(data).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidNotebook(f"not a valid notebook: cannot read it ({exc})") from None
    if not text.strip():
        raise InvalidNotebook("not a valid notebook: the file is empty")
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
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
        if not isinstance(cell.get("metadata", {}), dict):
            cell["metadata"] = nbformat.NotebookNode()
        cell.setdefault("metadata", nbformat.NotebookNode())
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = nbformat.NotebookNode()
    return nb


def _normalise_name(name):
    return re.sub(r"[\s_.]+", "-", name.lower()).strip("-")


# dates (2024-05-12, 12.05.2024, 20240512), times (14-30-05, 14h30), versions (v2, v02, v1.3,
# version-2, rev3, r2), copies ("(1)", "copy", "final") in a file name: never an exercise number
_NOISE = [
    r"(?<!\d)\d{4}-\d{1,2}-\d{1,2}(?!\d)", r"(?<!\d)\d{1,2}-\d{1,2}-\d{4}(?!\d)",
    r"(?<!\d)(?:19|20)\d{6}(?!\d)", r"(?<!\d)\d{1,2}h\d{2}(?!\d)",
    r"(?<![a-z])(?:v|ver|version|rev|r)-?\d+(?:-\d+)*(?![a-z\d])",
]


def _name_exercise(path, refs):
    """The solution a file name points to, or None (rules in the module docstring of find_reference)."""
    stem = _normalise_name(Path(path).stem)
    for pattern in _NOISE:
        stem = re.sub(pattern, "-", stem)
    full = [s for s in refs if _normalise_name(s) in stem]
    if full:
        return max(full, key=len)
    words = [s for s in refs if re.sub(r"^\d+-", "", _normalise_name(s)) in stem]
    if words:
        return max(words, key=len)
    numbers = {int(n) for n in re.findall(r"(?<![\d])(?:ex|exercise|exercice|ex-|exercise-)?(\d{2})(?![\d])", stem)}
    numbers |= {int(n) for n in re.findall(r"(?<![a-z\d])(?:ex|exercise|exercice)-?(\d)(?![\d])", stem)}
    by_number = [s for s in refs if s[:2].isdigit() and int(s[:2]) in numbers]
    return by_number[0] if len(by_number) == 1 else None


def find_reference(nb, path, solutions_dir, exercise=None, notes=None):
    """Path of the reference solution of a submission.

    In order: ``exercise`` when given; the notebook's ``adcourse.exercise`` metadata when
    a solution of that name exists; else the file name: lower-cased, with ``_``, ``.``
    and spaces read as ``-``, dates, times and versions removed (``2024-05-12``, ``v02``),
    the solution whose full name (``01-performance-measures``) or name without its number
    (``performance-measures``) occurs in it (the longest match wins), else the one whose
    two-digit number is a token of the name (``ex01``, ``01_alice``) when exactly one
    solution has it. When the metadata and the file name both name a solution and
    disagree, the metadata wins and a sentence is appended to ``notes`` (a list).
    """
    solutions_dir = Path(solutions_dir)
    refs = {p.stem: p for p in sorted(solutions_dir.glob("*.ipynb"))}
    if not refs:
        raise GradingError(f"no solution notebooks in {solutions_dir}")
    if exercise is not None:
        if exercise not in refs:
            raise GradingError(f"no solution {exercise!r} in {solutions_dir} (have {sorted(refs)})")
        return refs[exercise]
    meta = nb.metadata.get("adcourse", {}) if nb is not None else {}
    by_meta = meta.get("exercise") if isinstance(meta, dict) else None
    by_name = _name_exercise(path, refs)
    if by_meta in refs:
        if by_name is not None and by_name != by_meta and notes is not None:
            notes.append(f"the notebook's metadata says {by_meta}, its file name {by_name}: "
                         f"graded as {by_meta}")
        return refs[by_meta]
    if by_name is not None:
        return refs[by_name]
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


def answer_cell(exercise, task, seed, answers_path):
    """The grader's cell that records the answers of ``task`` (it replaces the check cell)."""
    source = (
        f"# ANSWER {task} (the grader's cell: it records your functions' answers; the verdict "
        "is taken outside this notebook)\n"
        f'__import__("adcourse.course.checks._kernel", fromlist=["answer"]).answer('
        f"{exercise!r}, {task!r}, {int(seed)}, {str(answers_path)!r})"
    )
    return nbformat.v4.new_code_cell(source, metadata={"adcourse": {"task": task}})


def _neutralise(source):
    """The source with nbval's comment markers turned into plain comments."""
    lines = []
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#") and stripped.lstrip("#").strip() in _NBVAL_MARKERS:
            indent = line[: len(line) - len(line.lstrip())]
            line = f"{indent}# (an nbval marker, ignored by the grader)"
        lines.append(line)
    return "\n".join(lines)


def prepare(nb, ref_nb, exercise=None, seeds=None, answers_path=ANSWERS):
    """The notebook to run, the task of each of its code cells, and the student's code.

    Returns ``(prepared, cells, student)``: ``cells[i] = (task or None, is_answer)`` for
    the ``i``-th code cell (nbval's "Cell i"), ``student`` the list of the student's code
    cells ``(label, source)`` (for the policy; the label is ``"cell N"``, N the cell's
    1-based position in the submitted notebook). ``seeds`` maps task ids to the seeds of
    their questions (default: 0 each).
    """
    checks = reference_checks(ref_nb)
    exercise = exercise or ref_nb.metadata.get("adcourse", {}).get("exercise", "")
    seeds = seeds or {}
    kept, used, student = [], set(), []

    def answer(task):
        return answer_cell(exercise, task, seeds.get(task, 0), answers_path)

    for position, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        if _is_check(cell):
            task = cell_task(cell)
            if task in checks and task not in used:
                kept.append(answer(task))
                used.add(task)
            continue  # duplicates and checks unknown to the reference are dropped
        source = _neutralise(str(cell.get("source", "")))
        task = cell_task(cell)
        meta = {"cell": position, **({"task": task} if task else {})}
        new = nbformat.v4.new_code_cell(source, metadata={"adcourse": meta})
        kept.append(new)
        student.append((f"cell {position}", source))
    for task in checks:  # re-insert deleted checks
        if task in used:
            continue
        own = [i for i, c in enumerate(kept) if cell_task(c) == task]
        if own:
            kept.insert(own[-1] + 1, answer(task))
        else:
            kept.append(answer(task))
    out = nbformat.v4.new_notebook(cells=kept, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    mapping = [(cell_task(c), c.source.startswith("# ANSWER ")) for c in kept]
    return out, mapping, student


# --------------------------------------------------------------------------------------
# nbval's report (untrusted: it only explains failures)
# --------------------------------------------------------------------------------------


@dataclass
class CellResult:
    index: int
    status: str  # passed, failed, xfailed, skipped
    text: str = ""


def parse_junit(source):
    """``{code cell index: CellResult}`` from nbval's junit XML (a path or bytes; ANSI codes
    removed; ``{}`` when it cannot be parsed)."""
    try:
        data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
        root = ET.fromstring(bytes(data))
    except (OSError, ET.ParseError, ValueError):
        return {}
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
    return clean_reason(reason)


def _header(text):
    return text.split("\nInput:", 1)[0]


def _is_stop(result):
    """Does this cell end the run (a timeout or a dead kernel)?"""
    head = _header(result.text)
    return result.status == "failed" and (_TIMEOUT.search(head) is not None or _DIED in head)


def _unanswered_reason(task, mapping, results, stopped, labels=None):
    """Why ``task`` has no answers, from nbval's report of its answer cell and the cells before
    (``labels``: the names of the code cells, e.g. ``"cell 7"``, their place in the submission)."""
    index = next((i for i, (t, is_answer) in enumerate(mapping) if is_answer and t == task), None)
    if index is None:  # cannot happen: prepare() always inserts every answer cell
        return "no answer cell"
    res = results.get(index)
    if res is None:
        return f"not run: {stopped}" if stopped else "not run"
    stops = sorted(i for i, r in results.items() if _is_stop(r) and i < index)
    earlier = ""
    if stops:
        why = error_reason(results[stops[0]].text)
        where = mapping[stops[0]][0] or (labels[stops[0]] if labels else f"cell {stops[0]}")
        earlier = (f"the kernel died in an earlier cell ({where})" if why.startswith("kernel died")
                   else f"an earlier cell ({where}) {why}")
    if res.status == "failed":
        why = error_reason(res.text)
        if why == "not run: the kernel had died" and earlier:
            return f"not run: {earlier}"
        return why
    if earlier:
        if res.status == "xfailed":  # nbval ran it after the timeout, and it failed too
            return f"failed too, after {earlier}"
        return f"not run: {earlier}"
    return "no answers were recorded"


def _own_error(task, mapping, results):
    """The first error of the student's own cells of ``task`` (a SyntaxError, ...), or ''."""
    for i, (t, is_answer) in enumerate(mapping):
        if t == task and not is_answer:
            r = results.get(i)
            if r is not None and r.status == "failed" and not _is_stop(r):
                return error_reason(r.text)
    return ""


# --------------------------------------------------------------------------------------
# grading
# --------------------------------------------------------------------------------------


_BOOTSTRAP = (
    # jsonschema (imported by nbformat, imported by nbval) builds the grammar of the optional
    # rfc3987_syntax format checker at import (2 s) that nbformat's validation never uses
    "import sys; sys.modules.setdefault('rfc3987_syntax', None); import pytest; "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


def _nbval_command(box, timeout):
    work, out = box.work, box.out
    return [
        _sandbox.box_python(), "-c", _BOOTSTRAP, NOTEBOOK,
        "-c", f"{work}/pytest.ini", "--rootdir", work,
        "-p", "nbval.plugin", "-p", "adcourse.course._grading_plugin", "-p", "no:cacheprovider",
        "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout:g}",
        f"--junitxml={out}/{JUNIT}", "-q", "--color=no", "-o", "junit_family=xunit2",
    ]


_NBVAL_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "ADCOURSE_GRADING": "1",
}


def _policy_reasons(exercise, student, tasks):
    from adcourse.course import policy

    try:
        return policy.violations(exercise, student, tasks)
    except Exception as exc:  # noqa: BLE001 - a bug of the reader: refuse, and say whose it is
        reason = clean_reason(f"grading error: the grader could not read the notebook's code "
                              f"({type(exc).__name__}: {exc})")
        return {t: reason for t in tasks}


def grade_one(entry, solutions_dir=None, timeout=CELL_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
              exercise=None, workdir=None, seed=0, isolation=None, slot=0,
              limits=_sandbox.Limits(), check_policy=True, fontlist=None):
    """Grade one submission (an :class:`Entry` or a path); never raises. Returns a :class:`Submission`."""
    start = time.monotonic()
    if not isinstance(entry, Entry):
        entry = collect([entry])[0]
    solutions_dir = Path(solutions_dir) if solutions_dir is not None else default_solutions_dir()
    sub = Submission(file=entry.name, exercise=None, seed=seed)
    try:
        nb, load_error = None, entry.problem
        if not load_error:
            try:
                nb = load_notebook(read_submission(entry))
            except InvalidNotebook as exc:
                load_error = str(exc)
        try:
            ref_path = find_reference(nb, entry.name, solutions_dir, exercise, sub.notes)
        except GradingError as exc:
            sub.reason = load_error or str(exc)
            return sub
        sub.exercise = ref_path.stem
        ref_nb = nbformat.read(str(ref_path), as_version=4)
        tasks = list(reference_checks(ref_nb))
        sub.tasks = [TaskResult(t, False, "not graded") for t in tasks]
        if load_error:
            sub.reason = load_error
            sub.tasks = [TaskResult(t, False, load_error) for t in tasks]
            return sub
        sub.tasks = _grade_notebook(nb, ref_nb, sub, tasks, entry, timeout, total_timeout,
                                    workdir, seed, isolation or _sandbox.detect(), slot, limits,
                                    check_policy, fontlist)
    except Exception as exc:  # one bad submission must not stop the others
        sub.reason = f"grading error: {type(exc).__name__}: {exc}"
        sub.tasks = [TaskResult(t.task, False, sub.reason) for t in sub.tasks]
    finally:
        sub.seconds = time.monotonic() - start
    return sub


def _grade_notebook(nb, ref_nb, sub, tasks, entry, timeout, total_timeout, workdir, seed,
                    isolation, slot, limits, check_policy, fontlist):
    from adcourse.course.checks import TASKS

    exercise = sub.exercise
    judged = TASKS.get(exercise, {})
    seeds = {t: task_seed(seed, exercise, t) for t in tasks}
    with _sandbox.Sandbox(isolation, slot, limits, fontlist) as box:
        prepared, mapping, student = prepare(nb, ref_nb, exercise, seeds, f"{box.out}/{ANSWERS}")
        notebook = nbformat.writes(prepared, version=4).encode("utf-8")
        blocked = _policy_reasons(exercise, student, tasks) if check_policy else {}
        result = box.run(_nbval_command(box, timeout),
                         {NOTEBOOK: notebook, "pytest.ini": b"[pytest]\n"}, [ANSWERS, JUNIT],
                         total_timeout, _NBVAL_ENV)
        if workdir is not None:
            _keep(workdir, entry, notebook, result)
    if result.stopped:
        sub.notes.append(f"the grader stopped the notebook: {result.stopped}")
    records = read_answers(result.files.get(ANSWERS) or b"", seeds)
    labels = [f"cell {c.metadata.get('adcourse', {}).get('cell', '?')}" for c in prepared.cells]
    junit = parse_junit(result.files.get(JUNIT) or b"")
    if not result.files.get(JUNIT) and not result.stopped and not records:
        tail = " | ".join(result.log.strip().splitlines()[-3:])
        why = clean_reason(f"grading failed (pytest exit code {result.returncode}): {tail}", 300)
        return [TaskResult(t, False, why) for t in tasks]
    out = []
    for task in tasks:
        if task in blocked:
            out.append(TaskResult(task, False, blocked[task]))
        elif task not in judged:
            out.append(TaskResult(task, False, f"no judge for {task} of {exercise}"))
        elif task in records:
            with _JUDGE_LOCK:  # one judge at a time: torch's global RNG builds task inputs
                passed, reason = judge_task(judged[task], records[task], seeds[task])
            if not passed and reason.startswith("NameError: ") and "is not defined" in reason:
                reason = _own_error(task, mapping, junit) or reason
            out.append(TaskResult(task, passed, reason))
        else:
            out.append(TaskResult(task, False, _unanswered_reason(task, mapping, junit,
                                                                  result.stopped, labels)))
    return out


_JUDGE_LOCK = threading.Lock()


def _keep(workdir, entry, notebook, result):
    folder = Path(workdir) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(entry.name).stem)[:80] or "submission")
    n = 1
    base = folder
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    (folder / NOTEBOOK).write_bytes(notebook)
    for name, data in result.files.items():
        if data is not None:
            (folder / name).write_bytes(data)
    (folder / "pytest.log").write_text(result.log, encoding="utf-8")


_FONTLIST = {}


def _fontlist():
    """matplotlib's font list, built once per process (so that no kernel builds its own)."""
    if "path" in _FONTLIST:
        return _FONTLIST["path"]
    path = None
    try:
        import atexit
        import importlib.util

        if importlib.util.find_spec("matplotlib") is not None:
            folder = Path(tempfile.mkdtemp(prefix="adcourse-mpl-"))
            atexit.register(shutil.rmtree, folder, True)
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"],
                           env=dict(os.environ, MPLCONFIGDIR=str(folder), MPLBACKEND="Agg"),
                           capture_output=True, timeout=120)
            found = sorted(folder.glob("fontlist-*.json"))
            path = found[0] if found else None
    except (OSError, subprocess.SubprocessError):
        path = None
    _FONTLIST["path"] = path
    return path


def _columns(rows):
    tasks = []
    for row in rows:
        for key in row:
            if key not in _META_COLUMNS and key not in tasks:
                tasks.append(key)
    tasks.sort(key=lambda t: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", t)])
    return ["file", "exercise", *tasks, "score", "max_score", "reasons", "notes", "seed"]


#: first characters that make a spreadsheet read a cell as a formula (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value):
    """A cell a spreadsheet shows as text: ``'`` before a value that would start a formula.

    File names and reasons come from students (a file named ``=HYPERLINK(...).ipynb``);
    :func:`read_csv` removes the quote again.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_unsafe(value):
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def write_csv(rows, out):
    """Write gradebook rows (dicts from :func:`grade`) to the CSV file ``out`` (atomically).

    Text cells that a spreadsheet would read as a formula are written with a leading ``'``.
    """
    out = Path(out)
    columns = _columns(rows)
    rows = [{k: _csv_safe(v) for k, v in row.items()} for row in rows]
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=str(out.parent.resolve()))
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_csv(path):
    """The rows of a gradebook CSV (dicts of strings)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _csv_unsafe(v) for k, v in row.items()} for row in csv.DictReader(f)]


def merge_gradebooks(paths, out):
    """Join gradebooks (the shards of one class) into ``out``; return the rows.

    A file graded in several shards is an error (``ValueError`` naming it).
    """
    rows, seen = [], {}
    for path in paths:
        for row in read_csv(path):
            key = row.get("file", "")
            if key in seen:
                raise ValueError(f"{key} is graded in both {seen[key]} and {path}")
            seen[key] = path
            rows.append(row)
    rows.sort(key=lambda r: r.get("file", ""))
    write_csv(rows, out)
    return rows


def format_table(submissions):
    """A readable summary table of graded :class:`Submission` objects."""
    rows = [s.row() for s in submissions]
    tasks = [c for c in _columns(rows) if c not in _META_COLUMNS]
    names = [Path(s.file).name for s in submissions]
    names = [str(Path(*Path(s.file).parts[-2:])) if names.count(n) > 1 else n
             for s, n in zip(submissions, names)]  # the folder too when two names are the same
    name_w = max([len("submission")] + [len(n) for n in names])
    buf = io.StringIO()
    labels = [t.replace("task-", "t") for t in tasks]
    head = f"{'submission':<{name_w}}  " + " ".join(f"{lab:>{max(3, len(lab))}}" for lab in labels) + "  score   time"
    buf.write(head + "\n" + "-" * len(head) + "\n")
    for s, row, name in zip(submissions, rows, names):
        marks = " ".join(f"{('✓' if row[t] else '✗') if t in row else '':>{max(3, len(lab))}}"
                         for t, lab in zip(tasks, labels))
        buf.write(f"{name:<{name_w}}  {marks}  {row['score']:>2}/{row['max_score']:<2} "
                  f"{s.seconds:5.1f}s\n")
        if s.reason:
            buf.write(f"    {s.reason[:200]}\n")
        else:
            for t in s.tasks:
                if not t.passed:
                    buf.write(f"    {t.task}: {t.reason[:200]}\n")
        for note in s.notes:
            buf.write(f"    note: {note[:200]}\n")
    return buf.getvalue()


def default_jobs():
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def grade(paths, out=None, timeout=CELL_TIMEOUT, solutions_dir=None, jobs=None,
          total_timeout=TOTAL_TIMEOUT, exercise=None, workdir=None, verbose=True, seed=None,
          shard_of=None, sandbox="auto", limits=_sandbox.Limits(), check_policy=True):
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
    jobs : int, optional
        Submissions graded at the same time (default: the number of cores), each in its
        own sandbox with ``OMP_NUM_THREADS=1``.
    total_timeout : float, default=300
        Wall-clock budget of one whole notebook, whatever its number of cells; answers
        recorded before it runs out keep their verdict.
    exercise : str, optional
        Force the reference (a solution's name, e.g. ``"01-performance-measures"``).
    workdir : str or Path, optional
        Keep each prepared notebook, answers, junit XML and pytest log in a folder under it.
    verbose : bool, default=True
        Print the summary table, the isolation in force and the seed.
    seed : int, optional
        The run's seed (the questions of every task derive from it); default: drawn at random.
    shard_of : (int, int), optional
        ``(k, n)``: grade only the k-th of n shards of the submissions (see :func:`shard`).
    sandbox : {"auto", "bwrap", "none"}, default="auto"
        The isolation (see :func:`adcourse.course.sandbox.detect`).
    limits : adcourse.course.sandbox.Limits, optional
        Memory, processes, file and output sizes of one submission.
    check_policy : bool, default=True
        Enforce what each task's functions may use (:mod:`adcourse.course.policy`).
    """
    entries = collect(paths)
    if shard_of is not None:
        entries = shard(entries, *shard_of)
    seed = secrets.randbits(62) if seed is None else int(seed)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    isolation = _sandbox.detect(sandbox)
    fontlist = _fontlist() if entries else None
    slots = queue.Queue()
    for i in range(jobs):
        slots.put(i)

    def one(entry):
        slot = slots.get()
        try:
            return grade_one(entry, solutions_dir, timeout, total_timeout, exercise, workdir,
                             seed, isolation, slot, limits, check_policy, fontlist)
        finally:
            slots.put(slot)

    if jobs > 1 and len(entries) > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            subs = list(pool.map(one, entries))
    else:
        subs = [one(e) for e in entries]
    _sandbox.remove_leftover_cgroups()
    rows = [s.row() for s in subs]
    if out is not None:
        write_csv(rows, out)
    if verbose:
        print(format_table(subs), end="")
        print(f"isolation: {isolation.describe()}")
        for note in isolation.notes:
            print(f"  note: {note}")
        print(f"seed: {seed}  (grade again with the same questions: --seed {seed})")
        if out is not None:
            print(f"gradebook: {out}")
    return rows

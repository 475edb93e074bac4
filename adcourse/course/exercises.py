r"""Generate the student exercises from the reference solutions.

``solutions/*.ipynb`` are the single source; ``exercises/*.ipynb`` are generated
from them and never edited by hand. Generation, cell by cell:

* a cell tagged ``solution`` becomes a stub:

  - **code defining functions** keeps the leading comment lines, the imports
    before the first definition and, for every top-level ``def``, its comment
    block, decorators, signature and docstring; the body becomes
    ``# YOUR CODE HERE`` + ``raise NotImplementedError()``. Other statements
    are dropped;
  - **other code** keeps its leading comment lines, followed by
    ``# YOUR CODE HERE`` + ``raise NotImplementedError()``;
  - code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines, when
    present, is the only part replaced (by the stub, at the marker's indentation);
  - **markdown** becomes ``YOUR ANSWER HERE``;

* a cell tagged ``check`` is kept verbatim;
* every other cell is kept; outputs, execution counts and the transient cell
  metadata (``execution``, ``collapsed``, ``scrolled``) are dropped everywhere.

The output is deterministic: ``nbformat.writes(nb, version=4)`` (JSON with
``indent=1`` and sorted keys) plus a trailing newline.

Command line (``make exercises`` runs the first)::

    python -m adcourse.course.exercises                 # regenerate exercises/ from solutions/
    python -m adcourse.course.exercises --check         # exit 1 if exercises/ is out of date
    adcourse exercises [--check] [--solutions DIR] [--exercises DIR]
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import re
import sys
from pathlib import Path

if __name__ == "__main__":  # pragma: no cover - command line only
    # nbformat -> jsonschema builds the grammar of the optional rfc3987_syntax format
    # checker at import (2 s); nbformat never uses it.
    sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402

__all__ = [
    "STUB",
    "generate",
    "stub_source",
    "notebook_text",
    "write_all",
    "check_in_sync",
    "diff",
    "strip_outputs",
    "cell_tags",
    "cell_task",
    "main",
]

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
MARKDOWN_STUB = "YOUR ANSWER HERE"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
TRANSIENT_METADATA = ("execution", "collapsed", "scrolled")
_CHECK_LINE = re.compile(r"^\s*#\s*CHECK\s+(\S+)", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# cell helpers (shared with adcourse.course.grading)
# --------------------------------------------------------------------------------------


def cell_tags(cell):
    """The cell's tags as a list of strings (``[]`` when absent or malformed)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def cell_task(cell):
    """Task id of a cell: ``metadata.adcourse.task``, else the ``# CHECK task-N`` first line."""
    meta = cell.get("metadata", {}).get("adcourse", {})
    if isinstance(meta, dict) and isinstance(meta.get("task"), str):
        return meta["task"]
    if cell.get("cell_type") == "code":
        lines = str(cell.get("source", "")).splitlines()
        if lines:
            m = _CHECK_LINE.match(lines[0])
            if m:
                return m.group(1)
    return None


def strip_outputs(nb):
    """Drop outputs, execution counts and transient metadata in place; return ``nb``."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in TRANSIENT_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata.pop("widgets", None)
    return nb


# --------------------------------------------------------------------------------------
# stubs
# --------------------------------------------------------------------------------------


def _indented_stub(indent):
    return "\n".join(indent + line for line in STUB.splitlines())


def _stub_markers(source):
    out, inside, found = [], False, False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            inside, found = True, True
            out.append(_indented_stub(line[: len(line) - len(line.lstrip())]))
        elif stripped == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out) if found else None


def _leading_comments(lines):
    out = []
    for line in lines:
        if line.strip() == "" or line.lstrip().startswith("#"):
            out.append(line)
        else:
            break
    while out and not out[-1].strip():
        out.pop()
    return out


def stub_source(source):
    """The stub of a ``solution`` code cell (see the module docstring for the rules)."""
    marked = _stub_markers(source)
    if marked is not None:
        return marked
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # magics, or not Python: keep the comments only
        tree = None
    defs = [n for n in (tree.body if tree else [])
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not defs:
        head = _leading_comments(lines)
        return "\n".join(head + [STUB])

    first_def_line = min((d.decorator_list[0].lineno if d.decorator_list else d.lineno) for d in defs)
    head = _leading_comments(lines[: first_def_line - 1])
    imports = [n for n in tree.body
               if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno < first_def_line]
    blocks = []
    if head or imports:
        pre = list(head)
        for node in imports:
            if node.lineno > len(head):
                pre.extend(lines[node.lineno - 1: node.end_lineno])
        blocks.append("\n".join(pre))
    for d in defs:
        start = d.decorator_list[0].lineno if d.decorator_list else d.lineno
        # comment lines right above the definition
        j = start - 1
        while j > 0 and lines[j - 1].lstrip().startswith("#") and j > len(head):
            j -= 1
        body0 = d.body[0]
        has_doc = (isinstance(body0, ast.Expr) and isinstance(body0.value, ast.Constant)
                   and isinstance(body0.value.value, str))
        if body0.lineno == d.lineno:
            # one-line def ("def f(x): return x"): cut the line at the body
            header = lines[j: body0.lineno - 1] + [lines[body0.lineno - 1][: body0.col_offset].rstrip()]
            indent = " " * (d.col_offset + 4)
            if has_doc:
                header.append(indent + ast.get_source_segment(source, body0))
        else:
            end = body0.end_lineno if has_doc else body0.lineno - 1
            header = lines[j: end]
            indent = " " * body0.col_offset
        blocks.append("\n".join(header + [_indented_stub(indent)]))
    return "\n\n\n".join(blocks)


def _stub_cell(cell):
    if cell.cell_type == "code":
        cell.source = stub_source(cell.source)
    elif cell.cell_type == "markdown":
        cell.source = MARKDOWN_STUB
    return cell


# --------------------------------------------------------------------------------------
# notebooks
# --------------------------------------------------------------------------------------


def generate(solution_path):
    """The exercise notebook generated from the solution notebook at ``solution_path``."""
    nb = nbformat.read(str(solution_path), as_version=4)
    nb = copy.deepcopy(nb)
    strip_outputs(nb)
    for i, cell in enumerate(nb.cells):
        if nb.nbformat_minor >= 5 and not cell.get("id"):
            cell["id"] = f"cell-{i}"  # deterministic, unlike nbformat's random ids
        if "solution" in cell_tags(cell):
            _stub_cell(cell)
    return nb


def notebook_text(nb):
    """The canonical text of a notebook: ``nbformat.writes`` (indent 1) + a trailing newline."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def _pairs(solutions_dir, exercises_dir):
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    if not solutions_dir.is_dir():
        raise FileNotFoundError(f"solutions_dir {str(solutions_dir)!r} is not a folder")
    return [(p, exercises_dir / p.name) for p in sorted(solutions_dir.glob("*.ipynb"))]


def write_all(solutions_dir="solutions", exercises_dir="exercises"):
    """Regenerate every exercise; return the paths written (only those whose text changed)."""
    written = []
    Path(exercises_dir).mkdir(parents=True, exist_ok=True)
    for sol, ex in _pairs(solutions_dir, exercises_dir):
        text = notebook_text(generate(sol))
        if not ex.exists() or ex.read_text(encoding="utf-8") != text:
            ex.write_text(text, encoding="utf-8")
            written.append(ex)
    return written


def check_in_sync(solutions_dir="solutions", exercises_dir="exercises"):
    """Exercise paths that differ from what generation gives (missing ones included).

    Also lists exercises that have no solution (stale files). Empty list = in sync.
    """
    out = []
    pairs = _pairs(solutions_dir, exercises_dir)
    for sol, ex in pairs:
        if not ex.exists() or ex.read_text(encoding="utf-8") != notebook_text(generate(sol)):
            out.append(str(ex))
    known = {ex.name for _, ex in pairs}
    if Path(exercises_dir).is_dir():
        out += [str(p) for p in sorted(Path(exercises_dir).glob("*.ipynb")) if p.name not in known]
    return out


def diff(solutions_dir="solutions", exercises_dir="exercises"):
    """Unified diff between the committed exercises and the generated ones ('' when in sync)."""
    chunks = []
    pairs = _pairs(solutions_dir, exercises_dir)
    for sol, ex in pairs:
        want = notebook_text(generate(sol))
        have = ex.read_text(encoding="utf-8") if ex.exists() else ""
        if have != want:
            chunks.extend(difflib.unified_diff(
                have.splitlines(True), want.splitlines(True),
                fromfile=f"{ex} (committed)", tofile=f"{ex} (generated from {sol})"))
    known = {ex.name for _, ex in pairs}
    if Path(exercises_dir).is_dir():
        for p in sorted(Path(exercises_dir).glob("*.ipynb")):
            if p.name not in known:
                chunks.append(f"{p}: no solution {Path(solutions_dir) / p.name}\n")
    return "".join(chunks)


def add_arguments(parser):
    """Options of the ``exercises`` command (shared with ``adcourse exercises``)."""
    parser.add_argument("--solutions", default="solutions", help="folder of the solution notebooks")
    parser.add_argument("--exercises", default="exercises", help="folder of the generated exercises")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 (and print a diff) if exercises are out of date")


def run(args):
    """Run the ``exercises`` command for parsed ``args``; return the exit status."""
    if args.check:
        stale = check_in_sync(args.solutions, args.exercises)
        if stale:
            print(diff(args.solutions, args.exercises))
            print("out of date: " + ", ".join(stale) + "\nrun: python -m adcourse.course.exercises",
                  file=sys.stderr)
            return 1
        print("exercises are in sync with solutions")
        return 0
    written = write_all(args.solutions, args.exercises)
    for p in written:
        print(f"wrote {p}")
    if not written:
        print("exercises already up to date")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m adcourse.course.exercises", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

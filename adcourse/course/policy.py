r"""What a task's functions may use, read from the student's code by the grader.

An exercise that asks for plain NumPy must not pass by calling the :mod:`adcourse`
function that solves it. Each task declares what its functions may use
(``allow=`` of :func:`adcourse.course.checks._base.task`: modules, or single names such as
``"adcourse.vectors.domain.OneClassSVMDetector"``); the standard library's harmless
modules (:data:`STDLIB`) are always allowed. The grader reads the student's code --
never runs it for this -- and fails a task when

* **a function of the task uses something not allowed**: the task's functions
  (``Task.uses``) and, transitively, every top-level function, class or variable of
  the notebook they refer to, are searched for the modules and names they reach
  through the notebook's imports (``from adcourse import metrics`` ...
  ``metrics.roc_curve`` is ``adcourse.metrics.roc_curve``), and for the builtins that
  reach outside (``open``, ``getattr`` with a computed name, ...). The notebook's other
  code (the set-up cell, the experiments) may import anything; or
* **the notebook hides what it runs** (anywhere in the student's code): code run from
  strings (``exec``, ``eval``, ``compile``, most IPython magics and ``!`` commands),
  modules imported by name (``__import__``, :mod:`importlib`), the interpreter's
  internals (``sys.modules``, frames, ``gc``, ``inspect``, ``ctypes``, ``__dict__``,
  ``__globals__``, ...), modules modified (``np.sort = ...``), modules written and
  imported from the notebook's folder, or the grading machinery (``adcourse.course``).

This is a static rule with a plain statement of what it covers; it is the second
line of defence. The first is the judge (:mod:`adcourse.course.judge`): whatever the
notebook does, a task passes only on right answers to questions drawn at grading time.
"""

from __future__ import annotations

import ast
import importlib.util
import sys

__all__ = ["STDLIB", "MAX_CODE", "violations", "analyse"]

#: The most code (characters, all the student's cells together) the grader reads.
MAX_CODE = 2_000_000

#: Standard-library modules every task's functions may use.
STDLIB = ("math", "cmath", "itertools", "functools", "collections", "operator", "numbers",
          "typing", "dataclasses", "warnings", "statistics", "bisect", "heapq", "fractions",
          "decimal", "copy", "enum", "abc", "string", "re", "random", "contextlib", "time")

#: Builtins a task's functions may not call (they reach files, frames, or run strings).
_TASK_BUILTINS = {"open", "input", "exit", "quit", "help", "memoryview"}
#: Builtins nobody may use in graded code.
_DYNAMIC_BUILTINS = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars",
                     "breakpoint", "setattr", "delattr", "__builtins__", "__loader__", "__spec__"}
#: Modules nobody may import in graded code.
_BANNED_MODULES = ("importlib", "imp", "builtins", "__builtin__", "ctypes", "cffi", "gc",
                   "inspect", "runpy", "code", "codeop", "pickle", "cPickle", "dill",
                   "cloudpickle", "marshal", "shelve", "types", "adcourse.course", "pty",
                   "subprocess", "multiprocessing", "threading", "_thread", "sysconfig",
                   "site", "zipimport", "pkgutil", "IPython", "ipykernel", "jupyter_client",
                   "nbformat", "nbval", "pytest", "_pytest")
_BANNED_ATTRS = {"sys": {"modules", "_getframe", "settrace", "setprofile", "meta_path",
                         "path_hooks", "path_importer_cache", "addaudithook", "excepthook",
                         "displayhook", "breakpointhook", "stdout", "stderr", "__stdout__"},
                 "os": {"system", "popen", "fork", "forkpty", "execv", "execve", "execl", "execle",
                        "execlp", "execlpe", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp",
                        "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
                        "posix_spawnp"}}
_DUNDER_ALLOWED = {"__init__", "__name__", "__doc__", "__call__", "__len__", "__repr__",
                   "__str__", "__iter__", "__next__", "__enter__", "__exit__", "__eq__",
                   "__hash__", "__getitem__", "__setitem__", "__contains__", "__add__", "__mul__"}
_FRAME_ATTRS = {"f_globals", "f_locals", "f_back", "f_builtins", "f_code", "gi_frame",
                "tb_frame", "cr_frame", "ag_frame", "tb_next", "gi_code"}
_MAGICS = {"matplotlib", "time", "timeit", "whos", "who", "precision", "pprint", "pinfo",
           "pinfo2", "psearch", "capture"}


# --------------------------------------------------------------------------------------
# reading the code
# --------------------------------------------------------------------------------------


def _python(source):
    """The cell as Python: IPython's syntax (magics, ``!``, ``?``) transformed as the kernel does."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython missing or the transform failed
        return source


def _dotted(node):
    """``a.b.c`` for an attribute chain rooted in a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _installed(module):
    """Is ``module`` (a top-level name) installed, for the grader? (A module the notebook writes
    into its own folder is not: the grader's search path does not hold it.)"""
    if module in sys.builtin_module_names or module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class _Notebook:
    """Imports, top-level definitions and banned constructs of the student's code."""

    def __init__(self, cells):
        self.imports = {}      # name -> {qualified targets}
        self.star = set()      # modules imported with *
        self.defs = {}         # name -> [(label, node)]
        self.banned = []       # (label, line, what)
        for label, source in cells:
            self._cell(label, source)

    def _cell(self, label, source, line0=0):
        try:
            tree = ast.parse(_python(source))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return  # the kernel fails this cell too: nothing is defined by it
        for node in tree.body:
            self._top(label, node)
        uses, magics = [], 0
        for node in ast.walk(tree):
            self._scan(label, node)
            if isinstance(node, ast.Name) and node.id == "get_ipython":
                uses.append(node)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Call)
                    and isinstance(node.func.value.func, ast.Name)
                    and node.func.value.func.id == "get_ipython" and not node.func.value.args):
                magics += 1  # get_ipython().run_line_magic(...), as IPython writes magics
        if len(uses) > magics:
            self._ban(label, uses[0], "get_ipython() (the kernel's internals)")

    def _bind(self, name, target):
        self.imports.setdefault(name, set()).add(target)

    def _top(self, label, node):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self._bind(alias.asname, alias.name)
                else:
                    self._bind(alias.name.split(".")[0], alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                if alias.name == "*":
                    self.star.add(module)
                else:
                    self._bind(alias.asname or alias.name, f"{module}.{alias.name}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.defs.setdefault(node.name, []).append((label, node))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        self.defs.setdefault(name.id, []).append((label, node))
                        alias = _dotted(node.value) if node.value is not None else None
                        if alias and alias.split(".")[0] in self.imports:  # m = np: an alias
                            for t in self._resolve(alias):
                                self._bind(name.id, t)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.If, ast.While,
                               ast.Try)):
            # bindings inside top-level blocks: every name they assign is a definition
            for sub in ast.walk(node):
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.defs.setdefault(sub.name, []).append((label, node))
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    self.defs.setdefault(sub.id, []).append((label, node))
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    self._top(label, sub)

    def _resolve(self, dotted):
        """The qualified names ``dotted`` may stand for through the notebook's imports."""
        root, _, rest = dotted.partition(".")
        out = set()
        for target in self.imports.get(root, ()):
            out.add(f"{target}.{rest}" if rest else target)
        if not out and root not in self.defs:
            for module in self.star:
                out.add(f"{module}.{dotted}")
        return out

    def _ban(self, label, node, what):
        self.banned.append((label, getattr(node, "lineno", 0), what))

    def _scan(self, label, node):
        """Constructs nobody may use (anywhere)."""
        if isinstance(node, ast.Name) and node.id in _DYNAMIC_BUILTINS:
            self._ban(label, node, node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            if len(node.args) < 2 or not isinstance(node.args[1], ast.Constant):
                self._ban(label, node, "getattr with a computed name")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__") and node.attr.endswith("__") and node.attr not in _DUNDER_ALLOWED:
                self._ban(label, node, f"the attribute {node.attr}")
            elif node.attr in _FRAME_ATTRS:
                self._ban(label, node, f"the attribute {node.attr} (frames)")
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                root = _dotted(node)
                if root and root.split(".")[0] in self.imports:
                    self._ban(label, node, f"an assignment to {root} (a module is modified)")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.level:
                self._ban(label, node, "a relative import")
                return
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names])
            for name in names:
                if any(name == m or name.startswith(m + ".") for m in _BANNED_MODULES):
                    self._ban(label, node, f"the module {name}")
                    break
                if name and not _installed(name.split(".")[0]):
                    self._ban(label, node, f"the module {name.split('.')[0]}, which is not installed "
                                           "(a module of the notebook's own folder?)")
                    break
        if isinstance(node, (ast.Attribute, ast.Name)):
            dotted = _dotted(node)
            if dotted:
                for q in self._resolve(dotted) | {dotted}:
                    head, _, attr = q.partition(".")
                    if attr.split(".")[0] in _BANNED_ATTRS.get(head, ()):
                        self._ban(label, node, f"{head}.{attr.split('.')[0]}")
                    if any(q == m or q.startswith(m + ".") for m in _BANNED_MODULES):
                        self._ban(label, node, q)


def _magic_calls(cells):
    """[(label, magic name or None, code strings)] of the IPython magics of the cells."""
    out = []
    for label, source in cells:
        try:
            tree = ast.parse(_python(source))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Call)
                    and isinstance(node.func.value.func, ast.Name)
                    and node.func.value.func.id == "get_ipython"):
                name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
                code = [a.value for a in node.args[1:] if isinstance(a, ast.Constant)
                        and isinstance(a.value, str)]
                out.append((label, node.func.attr, name, code, node.lineno))
    return out


# --------------------------------------------------------------------------------------
# the verdict
# --------------------------------------------------------------------------------------


def _allowed(qualified, allow):
    return any(qualified == a or qualified.startswith(a + ".") for a in (*allow, *STDLIB))


def _arg_names(args):
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg,
                            args.kwarg] if a is not None}


def _stores(nodes):
    """Names bound in ``nodes`` (assignments, loops, imports, nested definitions) and the names
    declared ``global`` there."""
    bound, declared = set(), set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Global):
                declared.update(sub.names)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                bound.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(sub.name)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                bound.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name).split(".")[0] for a in sub.names)
    return bound, declared


class _References(ast.NodeVisitor):
    """The outermost name chains a definition reads (``metrics.roc_curve``, not ``metrics``),
    minus the names local to the functions they appear in, and the imports inside it."""

    def __init__(self):
        self.chains, self.local = [], [set()]

    def _function(self, node, body):
        for part in [*getattr(node, "decorator_list", []), *node.args.defaults,
                     *[d for d in node.args.kw_defaults if d is not None]]:
            self.visit(part)
        bound, declared = _stores(body)
        self.local.append((self.local[-1] | _arg_names(node.args) | bound) - declared)
        for part in body:
            self.visit(part)
        self.local.pop()

    def visit_FunctionDef(self, node):
        self._function(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._function(node, [node.body])

    def visit_Attribute(self, node):
        dotted = _dotted(node)
        if dotted is None:
            self.generic_visit(node)
        elif dotted.split(".")[0] not in self.local[-1]:
            self.chains.append((dotted, node.lineno))

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id not in self.local[-1]:
            self.chains.append((node.id, node.lineno))

    def visit_Import(self, node):
        for alias in node.names:
            self.chains.append((f"import:{alias.name}", node.lineno))

    def visit_ImportFrom(self, node):
        for alias in node.names:
            self.chains.append((f"import:{node.module}.{alias.name}", node.lineno))


def _function_refs(node):
    """(root names, [(chain, line)]) that a definition reads (see :class:`_References`)."""
    refs = _References()
    refs.visit(node)
    return {c.split(".")[0] for c, _ in refs.chains}, refs.chains


def analyse(cells):
    """The :class:`_Notebook` reading of ``cells`` (``[(label, source)]``)."""
    nb = _Notebook(cells)
    for label, kind, name, code, line in _magic_calls(cells):
        if kind in ("run_line_magic", "run_cell_magic") and name in _MAGICS:
            for text in code:  # the code a magic runs: read like the rest of the cell
                nb._cell(label, text)
        else:
            what = {"system": "a shell command (!)", "getoutput": "a shell command (!!)"}.get(
                kind, f"the magic %{name}" if name else f"get_ipython().{kind}")
            nb.banned.append((label, line, what))
    return nb


def _task_violation(nb, task):
    """The first thing a function of ``task`` uses that its ``allow`` does not, or ''."""
    allow = tuple(task.allow)
    seen, todo = set(), list(task.uses)
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        for label, node in nb.defs.get(name, []):
            names, chains = _function_refs(node)
            for dotted, line in chains:
                if dotted.startswith("import:"):
                    q = dotted[len("import:"):]
                    if not _allowed(q, allow):
                        return f"{name} imports {q} ({label})"
                    continue
                root = dotted.split(".")[0]
                if root in nb.defs and root not in nb.imports:
                    todo.append(root)
                    continue
                targets = nb._resolve(dotted)
                if not targets:
                    if root in _TASK_BUILTINS:
                        return f"{name} uses {root}() ({label})"
                    continue  # a builtin, or a name defined nowhere (a NameError when it runs)
                for q in sorted(targets):
                    if not _allowed(q, allow):
                        return f"{name} uses {q} ({label}, line {line})"
        if name in nb.imports:  # the task's function itself is imported: `from x import roc_points`
            for q in sorted(nb.imports[name]):
                if not _allowed(q, allow):
                    return f"{name} is {q}, imported"
    return ""


def _allow_text(allow):
    return ", ".join(allow) + " and the standard library (" + ", ".join(STDLIB[:4]) + ", ...)"


def violations(exercise, cells, tasks=None):
    """``{task id: reason}`` of the tasks of ``exercise`` the student's ``cells`` fail.

    ``cells`` are the student's code cells ``[(label, source)]``; ``tasks`` the task ids to
    consider (default: every task of the exercise with a policy).
    """
    from adcourse.course.checks import TASKS

    registry = TASKS.get(exercise, {})
    tasks = [t for t in (tasks or registry) if t in registry and registry[t].allow is not None]
    if not tasks:
        return {}
    size = sum(len(source) for _, source in cells)
    if size > MAX_CODE:
        reason = (f"not accepted: the notebook holds {size // 1000} kB of code (at most "
                  f"{MAX_CODE // 1000} kB are read)")
        return {t: reason for t in tasks}
    nb = analyse(cells)
    if nb.banned:
        label, line, what = nb.banned[0]
        reason = (f"not accepted: the notebook uses {what} ({label}, line {line}); graded code may "
                  "not run code from strings, import modules by name, reach the interpreter's "
                  "internals, modify modules or use the grading machinery")
        return {t: reason for t in tasks}
    out = {}
    for t in tasks:
        why = _task_violation(nb, registry[t])
        if why:
            out[t] = (f"not accepted: {t} may use {_allow_text(registry[t].allow)} only; {why}")
    return out

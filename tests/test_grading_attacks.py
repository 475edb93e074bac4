"""The attacks of issue 10, each a small transformation of the reference solution or of the blank
exercise (made here, never committed), graded together in one run of ``adcourse grade``: each gets
exactly the row it deserves, the others in the same run are unaffected, nothing survives.

The run uses the grader as shipped (sandbox ``auto``, policy on, 2 jobs). A second, smaller run
grades the cheats on the kernel with the policy off: without the policy they still gain nothing,
because the verdict is taken outside the kernel.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from adcourse.course import grading, sandbox
from adcourse.course.exercises import cell_tags

# without bubblewrap the attacks would reach this machine (kill every process of the user, ...)
pytestmark = [pytest.mark.notebooks,
              pytest.mark.skipif(not sandbox.detect().bubblewrap,
                                 reason="bubblewrap is not usable here: the attacks are not run")]

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NAME = "01-performance-measures"
TASKS = [f"task-{i}" for i in range(1, 6)]
MARKER = f"adcourse-attack-{secrets.token_hex(6)}"  # in the command line of every attacker process
BUDGET, CELL = 45, 15
FULL, NONE = [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]


def _base(kind):
    """The solution or the blank exercise, without the experiments between the tasks (faster)."""
    folder = SOLUTIONS if kind == "solution" else ROOT / "exercises"
    nb = nbformat.read(str(folder / f"{NAME}.ipynb"), 4)
    nb.cells = [c for c in nb.cells if c.cell_type == "markdown" or c.id == "setup"
                or {"solution", "check"} & set(cell_tags(c))]
    return nb


def _code(source):
    return nbformat.v4.new_code_cell(source)


def _after(nb, cell_id, *sources):
    """``nb`` with new code cells after the cell ``cell_id``."""
    out = copy.deepcopy(nb)
    i = next(i for i, c in enumerate(out.cells) if c.id == cell_id)
    out.cells[i + 1:i + 1] = [_code(s) for s in sources]
    return out


def _without_stubs(nb, *sources):
    """The blank exercise with its stubs deleted and ``sources`` right after the set-up cell."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if "solution" not in cell_tags(c)]
    return _after(out, "setup", *sources)


def _daemon(code):
    """A cell that starts ``code`` as a detached background process carrying MARKER."""
    return ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {code!r}, {MARKER!r}], start_new_session=True,\n"
            "                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")


NOOP_CHECKS = """import adcourse.course.checks as checks
for name in dir(checks):
    if name.startswith("check_"):
        setattr(checks, name, lambda *a, **k: print("✓ passed"))"""
FAKE_MODULE = """import sys, types
fake = types.ModuleType("adcourse.course.checks")
fake.__getattr__ = lambda name: (lambda *a, **k: None)
for name in ("adcourse.checks", "adcourse.course.checks", "adcourse.course.checks._kernel"):
    sys.modules[name] = fake"""
IMPORT_HOOK = """import builtins, types
real_import = builtins.__import__
def fake_import(name, *args, **kwargs):
    if name.startswith("adcourse.course"):
        module = types.ModuleType(name)
        module.__getattr__ = lambda attr: (lambda *a, **k: None)
        return module
    return real_import(name, *args, **kwargs)
builtins.__import__ = fake_import"""
SHOWTRACEBACK = "get_ipython()._showtraceback = lambda *args, **kwargs: None"
CUSTOM_EXC = "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)"
AST_WRAPPER = """import ast
class WrapAll(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None,
                                    body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[],
                             finalbody=[])]
        return ast.fix_missing_locations(node)
get_ipython().ast_transformers.append(WrapAll())"""
INPUT_TRANSFORMER = "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])"
PATCH_REFERENCE = """import adcourse.metrics
adcourse.metrics.best_threshold = lambda scores, labels: 0.0"""
EXEC_SOLUTIONS = """import json, pathlib, adcourse
path = pathlib.Path(adcourse.__file__).resolve().parents[1] / "solutions" / "01-performance-measures.ipynb"
for cell in json.loads(path.read_text())["cells"]:
    if "solution" in cell["metadata"].get("tags", []) and cell["cell_type"] == "code":
        exec("".join(cell["source"]))"""
CLASSMATES = """import glob, json
for cmdline in glob.glob("/proc/*/cmdline"):
    try:
        words = open(cmdline, "rb").read().split(b"\\0")
    except OSError:
        continue
    for word in words:
        if word.endswith(b".ipynb"):
            try:
                cells = json.load(open(word))["cells"]
            except Exception:
                continue
            for cell in cells:
                if "def " in "".join(cell["source"]):
                    exec("".join(cell["source"]))"""
STEAL_FRAMES = """import sys
def _steal(*args, **kwargs):
    frame = sys._getframe(1)
    while frame is not None:
        for name in ("expected", "ok", "reference"):
            if name in frame.f_locals:
                return frame.f_locals[name]
        frame = frame.f_back
    raise NotImplementedError()
confusion_rates = roc_points = auc_trapezoid = threshold_for_fpr = _steal
best_roc_threshold = evaluate_on_test = _steal"""
JUNIT_DAEMON = _daemon("""
import glob, re, time
for _ in range(600):
    for path in glob.glob("/**/junit*.xml", recursive=True):
        try:
            text = open(path).read()
            open(path, "w").write(re.sub(r"<failure.*?</failure>", "", text, flags=re.S))
        except OSError:
            pass
    time.sleep(0.1)
""")
APPEND_TO_PACKAGE = """import adcourse.course.checks as checks
for path in [checks.__file__, checks.__file__.replace("__init__", "_kernel")]:
    try:
        open(path, "a").write("\\nraise SystemExit\\n")
    except OSError as exc:
        print("read-only:", exc)"""
OVERWRITE = """for path in {paths!r}:
    try:
        open(path, "w").write("{{}}")
    except OSError as exc:
        print("cannot:", exc)"""
GRADEBOOK_DAEMON = """
import glob, time
for _ in range(120):
    targets = []
    for cmdline in glob.glob("/proc/*/cmdline"):
        try:
            words = open(cmdline, "rb").read().split(b"\\0")
        except OSError:
            continue
        targets += [words[i + 1].decode() for i, w in enumerate(words[:-1]) if w == b"--out"]
    for path in targets + [GRADEBOOK]:
        try:
            open(path, "a").write("stolen.ipynb,01-performance-measures,1,1,1,1,1,5,5,,,\\n")
        except OSError:
            pass
    time.sleep(0.5)
"""
KILL_OTHERS = _daemon("""
import os, time
for _ in range(400):
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
    time.sleep(0.05)
""")
SURVIVORS = (_daemon("import time; time.sleep(900)")
             + "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
               f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(901)', {MARKER!r}])\n"
               "    os._exit(0)\n")
MEMORY_ONE = "import numpy as np\nhog = np.ones(int(30e9 / 8))  # 30 GB"
MEMORY_MANY = _daemon("import numpy as np, time; x = np.ones(int(1.5 * 2**30 / 8)); time.sleep(60)") * 3
POLICY_ONE_LINERS = """from adcourse import metrics
from adcourse.decision import Threshold

def roc_points(scores, labels):
    fpr, tpr, _ = metrics.roc_curve(scores, labels)
    return fpr, tpr"""
SIGINT_LOOP = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"


def _sleeps(nb, after, n, seconds):
    return _after(nb, after, *[f"import time\ntime.sleep({seconds})"] * n)


def _attacks(folder, victim_paths):
    """{key: (file name, notebook, or raw bytes, or a callable making the entry)}."""
    sol, blank = _base("solution"), _base("blank")
    wrong4 = copy.deepcopy(sol)
    cell = next(c for c in wrong4.cells if c.id == "task-4-solution")
    cell.source = "def best_roc_threshold(scores, labels):\n    return 0.0"
    v3 = nbformat.convert(copy.deepcopy(nbformat.read(str(SOLUTIONS / f"{NAME}.ipynb"), 4)), 3)
    no_meta = copy.deepcopy(sol)
    no_meta.metadata.pop("adcourse")
    tagged = copy.deepcopy(sol)
    for c in tagged.cells:
        if c.id == "task-1-solution":
            c.source = "# NBVAL_SKIP\n" + c.source
        if c.id == "task-2-solution":
            c.metadata["tags"] = ["solution", "nbval-skip", "raises-exception"]
        if c.id == "task-3-check":
            c.source = "# NBVAL_RAISES_EXCEPTION\n" + c.source
    prints = _after(sol, "task-5-check", "print('x' * 200_000_000)")
    return {
        # what a cheater tries (on the blank exercise: no point is deserved)
        "noop_checks": (f"noop_{NAME}.ipynb", _after(blank, "setup", NOOP_CHECKS)),
        "fake_module": (f"fake_{NAME}.ipynb", _after(blank, "setup", FAKE_MODULE)),
        "import_hook": (f"hook_{NAME}.ipynb", _after(blank, "setup", IMPORT_HOOK)),
        "showtraceback": (f"showtb_{NAME}.ipynb", _after(blank, "setup", SHOWTRACEBACK)),
        "custom_exc": (f"customexc_{NAME}.ipynb", _after(blank, "setup", CUSTOM_EXC)),
        "ast_wrapper": (f"ast_{NAME}.ipynb", _after(blank, "setup", AST_WRAPPER)),
        "input_transformer": (f"input_{NAME}.ipynb", _after(blank, "setup", INPUT_TRANSFORMER)),
        "patch_reference": (f"patchref_{NAME}.ipynb", _after(wrong4, "setup", PATCH_REFERENCE)),
        "exec_solutions": (f"exec_{NAME}.ipynb", _without_stubs(blank, EXEC_SOLUTIONS)),
        "classmates": (f"classmates_{NAME}.ipynb", _without_stubs(blank, CLASSMATES)),
        "steal_frames": (f"frames_{NAME}.ipynb", _without_stubs(blank, STEAL_FRAMES)),
        "junit_daemon": (f"junit_{NAME}.ipynb", _after(blank, "setup", JUNIT_DAEMON)),
        "gradebook_daemon": (f"gbdaemon_{NAME}.ipynb", _after(blank, "setup", _daemon(
            GRADEBOOK_DAEMON.replace("GRADEBOOK", repr(str(folder / "gradebook.csv")))))),
        "append_to_package": (f"package_{NAME}.ipynb", _after(blank, "setup", APPEND_TO_PACKAGE)),
        "link_to_solution": (f"link_{NAME}.ipynb", lambda p: p.symlink_to(SOLUTIONS / f"{NAME}.ipynb")),
        # what one submission could do to the others or to the run
        "overwrite_classmate": (f"overwrite_{NAME}.ipynb",
                                _after(sol, "setup", OVERWRITE.format(paths=victim_paths))),
        "kill_others": (f"kill_{NAME}.ipynb", _after(sol, "task-5-check", KILL_OTHERS)),
        "survivors": (f"survivors_{NAME}.ipynb", _after(sol, "task-5-check", SURVIVORS)),
        "fifo": ("fifo.ipynb", lambda p: os.mkfifo(p)),
        "dev_zero": ("zero.ipynb", lambda p: p.symlink_to("/dev/zero")),
        "dangling": ("dangling.ipynb", lambda p: p.symlink_to(folder / "nothing.ipynb")),
        "dash_name": (f"-{NAME}.ipynb", sol),
        "folder": ("folder.ipynb", lambda p: p.mkdir()),
        "budget": (f"budget_{NAME}.ipynb", _sleeps(sol, "task-3-check", 24, 2.5)),
        "memory_one": (f"memory1_{NAME}.ipynb", _after(sol, "task-5-check", MEMORY_ONE)),
        "memory_many": (f"memoryN_{NAME}.ipynb", _after(sol, "task-5-check", MEMORY_MANY)),
        "nbval_markers": (f"markers_{NAME}.ipynb", tagged),
        "dated_no_metadata": ("alice 2024-05-12 v02 ex01.ipynb", no_meta),
        "only_dates": ("bob-2024-05-12-v02.ipynb", no_meta),
        "name_conflict": ("02-random-vectors_carol.ipynb", sol),
        "policy": (f"oneliners_{NAME}.ipynb", _after(sol, "task-2-solution", POLICY_ONE_LINERS)),
        "sigint_loop": (f"sigint_{NAME}.ipynb", _after(sol, "task-2-check", SIGINT_LOOP)),
        # what already worked and must keep working
        "invalid_json": (f"invalid_{NAME}.ipynb", b'{"cells": [{"cell_type": "code",'),
        "not_a_notebook": (f"list_{NAME}.ipynb", b"[1, 2, 3]"),
        "binary": (f"binary_{NAME}.ipynb", bytes(range(256)) * 4),
        "empty": (f"empty_{NAME}.ipynb", b""),
        "bom": (f"bom_{NAME}.ipynb", b"\xef\xbb\xbf" + nbformat.writes(sol).encode()),
        "nbformat3": (f"v3_{NAME}.ipynb", nbformat.writes(v3, version=3).encode()),
        "no_cells": (f"nocells_{NAME}.ipynb", nbformat.v4.new_notebook(
            metadata={"adcourse": {"exercise": NAME}})),
        "prints": (f"prints_{NAME}.ipynb", prints),
        "odd_name": (f"Ünï cøde 'x\" (copy) {NAME}.ipynb", sol),
    }


def _write(path, what):
    if callable(what):
        what(path)
    elif isinstance(what, bytes):
        path.write_bytes(what)
    else:
        nbformat.write(what, str(path))


def _tree_hash(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*.py")):
        h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


def _connection_files():
    from jupyter_core.paths import jupyter_runtime_dir

    out = set()
    for folder in {Path(jupyter_runtime_dir()), Path("/tmp"), Path(os.environ.get("TMPDIR", "/tmp"))}:
        out |= {str(p) for p in folder.glob("kernel-*.json")}
    return out


def _leftovers(pid):
    """Sandbox folders and cgroups of the grader process ``pid`` that exist now."""
    out = {str(p) for p in Path(os.environ.get("TMPDIR", "/tmp")).glob(f"adcourse-grade-{pid}-*")}
    for folder in (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup/pids")):
        if folder.is_dir():
            out |= {str(p) for p in folder.rglob(f"adcourse-{pid}-*") if p.is_dir()}
    return out


def _marked_processes():
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if MARKER.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    sol = nbformat.read(str(SOLUTIONS / f"{NAME}.ipynb"), 4)
    victims = {f"victim{i}_{NAME}.ipynb": folder / f"victim{i}_{NAME}.ipynb" for i in range(1, 4)}
    for path in victims.values():
        nbformat.write(sol, str(path))
    other = folder / "other"  # the same name in two folders
    other.mkdir()
    nbformat.write(sol, str(other / f"victim1_{NAME}.ipynb"))
    attacks = _attacks(folder, [str(p) for p in victims.values()])
    for name, what in attacks.values():
        _write(folder / name, what)
    before = {name: p.read_bytes() for name, p in victims.items()}
    package = _tree_hash(ROOT / "adcourse")
    connections = _connection_files()
    # what `adcourse grade *.ipynb other/*.ipynb` passes: a shell glob, names starting with '-' included
    names = sorted(n for n in os.listdir(folder) if n.endswith(".ipynb")) + [f"other/victim1_{NAME}.ipynb"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    seen, done = [], threading.Event()

    def watch():  # the attackers' processes are visible from here while they run
        while not done.is_set():
            seen.append(len(_marked_processes()))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    popen = subprocess.Popen(
        [sys.executable, "-m", "adcourse", "grade", *names, "--out", "gradebook.csv",
         "--solutions", str(SOLUTIONS), "--jobs", "2", "--timeout", str(CELL),
         "--total-timeout", str(BUDGET), "--memory-mb", "2048", "--seed", "7"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = popen.communicate(timeout=3600)
    proc = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)
    seconds = time.monotonic() - start
    done.set()
    watcher.join()
    time.sleep(3)  # the daemons would act now
    rows = {r["file"]: r for r in grading.read_csv(folder / "gradebook.csv")}
    return dict(folder=folder, proc=proc, rows=rows, attacks=attacks, victims=victims,
                before=before, package=package, connections=connections, seconds=seconds,
                survivors=_marked_processes(), seen_running=max(seen, default=0),
                leftovers=_leftovers(popen.pid), gradebook=(folder / "gradebook.csv").read_text())


def _row(attacked, key):
    return attacked["rows"][attacked["attacks"][key][0]]


def _scores(row):
    return [int(row[t]) if row.get(t, "") != "" else None for t in TASKS]


def _reasons(row):
    parts = re.split(r"; (?=task-\d+: )", row["reasons"]) if row["reasons"] else []
    return dict(part.split(": ", 1) for part in parts)


def test_the_run_ends_with_one_row_per_submission(attacked):
    proc = attacked["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(attacked["rows"]) == len(attacked["attacks"]) + len(attacked["victims"]) + 1
    print(f"graded {len(attacked['rows'])} submissions in {attacked['seconds']:.0f} s")
    print(proc.stdout.splitlines()[-3])


def test_report(attacked):
    """The row of every attack (shown with ``pytest -s``)."""
    for key, (name, _) in attacked["attacks"].items():
        row = attacked["rows"][name]
        first = row["reasons"].split("; task-2")[0][:110]
        print(f"{key:20s} {row['score']}/{row['max_score']}  {first}"
              + (f"  [note: {row['notes'][:60]}]" if row["notes"] else ""))


def test_the_victims_are_untouched(attacked):
    for name in [*attacked["victims"], f"other/victim1_{NAME}.ipynb"]:
        row = attacked["rows"][name]
        assert _scores(row) == FULL and row["reasons"] == "", (name, row["reasons"])
    for name, path in attacked["victims"].items():
        assert path.read_bytes() == attacked["before"][name], f"{name} was modified"
    assert _tree_hash(ROOT / "adcourse") == attacked["package"], "the package was modified"


def test_nothing_survives_and_no_connection_file_is_left(attacked):
    assert attacked["seen_running"] >= 3  # the daemons did start (and were visible from here)
    assert attacked["survivors"] == []
    assert attacked["leftovers"] == set()  # no sandbox folder, no cgroup left behind
    assert _connection_files() <= attacked["connections"]
    assert "stolen.ipynb" not in attacked["gradebook"]


POLICY = "not accepted: the notebook uses "


@pytest.mark.parametrize("key, what", [
    ("noop_checks", "the module adcourse.course.checks"),
    ("fake_module", "the module types"),
    ("import_hook", "the module builtins"),
    ("showtraceback", "get_ipython()"),
    ("custom_exc", "get_ipython()"),
    ("ast_wrapper", "get_ipython()"),
    ("input_transformer", "get_ipython()"),
    ("patch_reference", "an assignment to adcourse.metrics.best_threshold"),
    ("exec_solutions", "exec"),
    ("classmates", "exec"),
    ("steal_frames", "sys._getframe"),
    ("junit_daemon", "the module subprocess"),
    ("gradebook_daemon", "the module subprocess"),
    ("append_to_package", "the module adcourse.course.checks"),
    ("kill_others", "the module subprocess"),
    ("survivors", "the module subprocess"),
    ("memory_many", "the module subprocess"),
])
def test_a_cheat_gains_nothing_and_is_reported(attacked, key, what):
    row = _row(attacked, key)
    assert _scores(row) == NONE
    reasons = _reasons(row)
    assert set(reasons) == set(TASKS)
    assert all(r.startswith(POLICY + what) for r in reasons.values()), reasons["task-1"]


def test_files_that_are_not_regular_notebooks_get_their_row(attacked):
    for key, reason in [
        ("link_to_solution", "not accepted: a symbolic link to a file outside the submissions folder"),
        ("fifo", "not a regular file: a FIFO"),
        ("dev_zero", "not a regular file: a symbolic link to a character device"),
        ("dangling", "not a regular file: a dangling symbolic link"),
        ("folder", "not a regular file: a folder"),
        ("invalid_json", "not a valid notebook: invalid JSON"),
        ("not_a_notebook", "not a valid notebook: no list of cells"),
        ("binary", "not a valid notebook: cannot read it"),
        ("empty", "not a valid notebook: the file is empty"),
    ]:
        row = _row(attacked, key)
        assert row["score"] == "0" and row["reasons"].startswith(reason), (key, row["reasons"])


@pytest.mark.parametrize("key", ["dash_name", "bom", "nbformat3", "nbval_markers", "prints",
                                 "odd_name", "memory_one", "dated_no_metadata", "overwrite_classmate"])
def test_honest_work_gets_full_marks(attacked, key):
    row = _row(attacked, key)
    assert _scores(row) == FULL and row["reasons"] == "", row["reasons"]
    assert row["exercise"] == NAME


def test_the_budget_keeps_the_tasks_answered_before_it_ran_out(attacked):
    row = _row(attacked, "budget")
    assert _scores(row) == [1, 1, 1, 0, 0]
    assert _reasons(row) == {t: f"not run: the time budget of {BUDGET} s ran out" for t in TASKS[3:]}
    assert row["notes"] == f"the grader stopped the notebook: the time budget of {BUDGET} s ran out"


def test_an_endless_loop_that_ignores_sigint(attacked):
    row = _row(attacked, "sigint_loop")
    assert _scores(row) == [1, 1, 0, 0, 0]
    assert all("kernel" in r or "timed out" in r for r in _reasons(row).values())


def test_identification(attacked):
    assert _row(attacked, "only_dates")["reasons"].startswith("cannot tell which exercise")
    row = _row(attacked, "name_conflict")
    assert row["exercise"] == NAME and _scores(row) == FULL
    assert row["notes"] == (f"the notebook's metadata says {NAME}, its file name 02-random-vectors: "
                            f"graded as {NAME}")


def test_no_cells(attacked):
    row = _row(attacked, "no_cells")
    assert _scores(row) == NONE
    assert _reasons(row)["task-1"] == "NameError: confusion_rates is not defined"


def test_plain_numpy_is_enforced(attacked):
    row = _row(attacked, "policy")
    assert _scores(row) == [1, 0, 1, 0, 1]  # task 4 reuses roc_points
    reasons = _reasons(row)
    assert "roc_points uses adcourse.metrics.roc_curve" in reasons["task-2"]
    assert "roc_points uses adcourse.metrics.roc_curve" in reasons["task-4"]


def test_the_isolation_is_stated(attacked):
    line = next(ln for ln in attacked["proc"].stdout.splitlines() if ln.startswith("isolation: "))
    iso = sandbox.detect()
    assert line == f"isolation: {iso.describe()}"


# ---- the same cheats with the policy off: the judge alone -------------------------------


@pytest.fixture(scope="module")
def without_policy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cheats")
    attacks = _attacks(folder, [])
    keys = ["noop_checks", "fake_module", "import_hook", "showtraceback", "custom_exc",
            "ast_wrapper", "input_transformer", "steal_frames", "patch_reference"]
    paths = {}
    for key in keys:
        name, what = attacks[key]
        _write(folder / name, what)
        paths[key] = str(folder / name)
    rows = grading.grade(list(paths.values()), timeout=CELL, total_timeout=BUDGET, jobs=2,
                         solutions_dir=SOLUTIONS, seed=11, check_policy=False, verbose=False)
    by_file = {r["file"]: r for r in rows}
    return {key: by_file[path] for key, path in paths.items()}


@pytest.mark.parametrize("key", ["noop_checks", "fake_module", "import_hook", "showtraceback",
                                 "custom_exc", "ast_wrapper", "input_transformer", "steal_frames"])
def test_without_the_policy_a_cheat_still_gains_nothing(without_policy, key):
    row = without_policy[key]
    assert _scores(row) == NONE, row["reasons"]


def test_without_the_policy_a_patched_reference_changes_nothing(without_policy):
    row = without_policy["patch_reference"]
    assert _scores(row) == [1, 1, 1, 0, 1]  # the judge's best_threshold is its own
    assert _reasons(row)["task-4"].startswith("CheckFailed: Task 4 (best_roc_threshold): wrong threshold")

"""Time `adcourse grade` on a class of exercise-1 submissions, with 1 and 2 jobs (figures, not tests).

Usage: python scripts/bench_grading.py [--n 30] [--jobs 1 2] [--sandbox auto]

The class: a third solutions, a third blank exercises, a third solutions with one task
stubbed. Prints the wall time, the time per submission and the effective time per
submission (wall / n), and the isolation in force.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import os
import tempfile
import time
from pathlib import Path

import nbformat

from adcourse.course import grading, sandbox
from adcourse.course.exercises import cell_tags, cell_task

ROOT = Path(__file__).resolve().parent.parent
NAME = "01-performance-measures"


def make_class(folder, n):
    sol = nbformat.read(str(ROOT / "solutions" / f"{NAME}.ipynb"), 4)
    blank = nbformat.read(str(ROOT / "exercises" / f"{NAME}.ipynb"), 4)
    stubs = {c.id: c for c in blank.cells}
    for i in range(n):
        if i % 3 == 0:
            nb = sol
        elif i % 3 == 1:
            nb = blank
        else:
            nb = copy.deepcopy(sol)
            task = f"task-{i % 5 + 1}"
            nb.cells = [copy.deepcopy(stubs[c.id]) if "solution" in cell_tags(c)
                        and cell_task(c) == task else c for c in nb.cells]
        nbformat.write(nb, str(folder / f"student{i:03d}_{NAME}.ipynb"))


def _cpu_meter():
    """A function giving the CPU seconds used so far by this process and all its descendants
    (cgroup v1 cpuacct, as root), or None."""
    try:
        line = next(l for l in Path("/proc/self/cgroup").read_text().splitlines() if ":cpuacct" in l
                    or ",cpuacct" in l)
        folder = Path("/sys/fs/cgroup/cpuacct") / line.split(":", 2)[2].lstrip("/") / f"bench-{os.getpid()}"
        folder.mkdir()
        (folder / "cgroup.procs").write_text(str(os.getpid()))
    except (OSError, StopIteration):
        return None

    def leave():  # back to the parent cgroup, and remove ours
        try:
            (folder.parent / "cgroup.procs").write_text(str(os.getpid()))
            folder.rmdir()
        except OSError:
            pass

    atexit.register(leave)
    return lambda: int((folder / "cpuacct.usage").read_text()) / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    args = parser.parse_args(argv)
    print(f"isolation: {sandbox.detect(args.sandbox).describe()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_class(folder, args.n)
        cpu = _cpu_meter()
        for jobs in args.jobs:
            t0, c0 = time.perf_counter(), cpu() if cpu else 0.0
            rows = grading.grade([folder], jobs=jobs, timeout=60, seed=1, sandbox=args.sandbox,
                                 verbose=False)
            wall = time.perf_counter() - t0
            used = f", {(cpu() - c0) / args.n:5.2f} CPU s per submission" if cpu else ""
            scores = sum(int(r["score"]) for r in rows)
            print(f"{args.n} submissions of exercise 1, {jobs} job(s): {wall:6.1f} s wall, "
                  f"{wall / args.n:5.2f} s effective per submission{used} (total score {scores})")


if __name__ == "__main__":
    main()

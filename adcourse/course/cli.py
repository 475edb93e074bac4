"""The ``adcourse`` command line.

::

    adcourse grade SUBMISSIONS... --out gradebook.csv [--timeout 60] [--solutions solutions/]
                   [--jobs N] [--total-timeout S] [--exercise NAME] [--keep DIR] [--quiet]
    adcourse exercises [--check] [--solutions solutions/] [--exercises exercises/]

``python -m adcourse ...`` is the same. Each subcommand lives in its module
(:mod:`adcourse.course.grading`, :mod:`adcourse.course.exercises`); this file only parses.
"""

from __future__ import annotations

import argparse
import sys


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _grade(args):
    from pathlib import Path

    from adcourse.course.grading import default_solutions_dir, grade

    missing = [p for p in args.submissions if not Path(p).exists()]
    if missing:
        print(f"adcourse grade: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    solutions = Path(args.solutions) if args.solutions else default_solutions_dir()
    if not solutions.is_dir():
        print(f"adcourse grade: solutions folder {solutions} not found (use --solutions)",
              file=sys.stderr)
        return 2
    rows = grade(args.submissions, out=args.out, timeout=args.timeout, solutions_dir=solutions,
                 jobs=args.jobs, total_timeout=args.total_timeout, exercise=args.exercise,
                 workdir=args.keep, verbose=not args.quiet)
    if not rows:
        print("adcourse grade: no notebooks found", file=sys.stderr)
        return 1
    return 0


def _exercises(args):
    from adcourse.course import exercises

    return exercises.run(args)


def build_parser():
    parser = argparse.ArgumentParser(prog="adcourse", description="Course tools of adcourse.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("grade", help="grade submitted exercise notebooks into a gradebook CSV",
                       description="Grade submitted notebooks: the reference check cells are put "
                                   "back, each notebook runs in its own kernel through nbval.")
    g.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="notebooks, or folders of notebooks")
    g.add_argument("--out", default="gradebook.csv", help="gradebook CSV (default: gradebook.csv)")
    g.add_argument("--timeout", type=_positive(float), default=60.0,
                   help="per-cell timeout in seconds (default: 60)")
    g.add_argument("--solutions", default=None,
                   help="folder of the reference solutions (default: ./solutions)")
    g.add_argument("--jobs", type=_positive(int), default=1,
                   help="submissions graded in parallel (default: 1)")
    g.add_argument("--total-timeout", type=_positive(float), default=None,
                   help="limit for one whole notebook (default: 120 + timeout x #code cells)")
    g.add_argument("--exercise", default=None,
                   help="force the reference solution (e.g. 01-performance-measures)")
    g.add_argument("--keep", default=None, metavar="DIR",
                   help="keep prepared notebooks, junit XML and logs under DIR")
    g.add_argument("--quiet", action="store_true", help="do not print the summary table")
    g.set_defaults(func=_grade)

    from adcourse.course.exercises import add_arguments

    e = sub.add_parser("exercises", help="generate exercises/ from solutions/ (or --check them)")
    add_arguments(e)
    e.set_defaults(func=_exercises)
    return parser


def main(argv=None):
    # nbformat -> jsonschema builds the grammar of the optional rfc3987_syntax format checker
    # at import (2 s), and nbformat never uses it: skip it in this command-line process.
    sys.modules.setdefault("rfc3987_syntax", None)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""The ``adcourse`` command line.

::

    adcourse grade SUBMISSIONS... --out gradebook.csv [--jobs N] [--shard K/N] [--seed S]
                   [--timeout 60] [--total-timeout 300] [--solutions solutions/]
                   [--exercise NAME] [--sandbox auto|bwrap|none] [--memory-mb 4096]
                   [--keep DIR] [--quiet]
    adcourse gradebook merge SHARD.csv... --out gradebook.csv
    adcourse exercises [--check] [--solutions solutions/] [--exercises exercises/]

``python -m adcourse ...`` is the same. Each subcommand lives in its module
(:mod:`adcourse.course.grading`, :mod:`adcourse.course.exercises`); this file only parses.
A submission whose name starts with ``-`` is still a submission (``adcourse grade *.ipynb``
works whatever the students called their files): an argument that is not an option of
``grade`` but names an existing file is taken as a file; ``--`` ends the options too.
"""

from __future__ import annotations

import argparse
import os
import sys


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _shard(text):
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be K/N (e.g. 2/4), got {text!r}") from None
    if not (1 <= k <= n):
        raise argparse.ArgumentTypeError(f"must be K/N with 1 <= K <= N, got {text!r}")
    return k, n


def _grade(args):
    from pathlib import Path

    from adcourse.course.grading import default_solutions_dir, grade
    from adcourse.course.sandbox import Limits

    missing = [p for p in args.submissions if not os.path.lexists(p)]
    if missing:
        print(f"adcourse grade: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    solutions = Path(args.solutions) if args.solutions else default_solutions_dir()
    if not solutions.is_dir():
        print(f"adcourse grade: solutions folder {solutions} not found (use --solutions)",
              file=sys.stderr)
        return 2
    try:
        rows = grade(args.submissions, out=args.out, timeout=args.timeout, solutions_dir=solutions,
                     jobs=args.jobs, total_timeout=args.total_timeout, exercise=args.exercise,
                     workdir=args.keep, verbose=not args.quiet, seed=args.seed,
                     shard_of=args.shard, sandbox=args.sandbox,
                     limits=Limits(memory_mb=args.memory_mb))
    except RuntimeError as exc:  # --sandbox bwrap without a working bubblewrap
        print(f"adcourse grade: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print("adcourse grade: no notebooks found", file=sys.stderr)
        return 1
    return 0


def _merge(args):
    from adcourse.course.grading import merge_gradebooks

    try:
        rows = merge_gradebooks(args.gradebooks, args.out)
    except (OSError, ValueError) as exc:
        print(f"adcourse gradebook merge: {exc}", file=sys.stderr)
        return 2
    print(f"{len(rows)} rows from {len(args.gradebooks)} gradebooks: {args.out}")
    return 0


def _exercises(args):
    from adcourse.course import exercises

    return exercises.run(args)


def build_parser():
    parser = argparse.ArgumentParser(prog="adcourse", description="Course tools of adcourse.",
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("grade", help="grade submitted exercise notebooks into a gradebook CSV",
                       allow_abbrev=False,
                       description="Grade submitted notebooks: each runs in its own sandbox "
                                   "through nbval; the kernel computes the answers, the grader "
                                   "judges them.")
    g.add_argument("submissions", nargs="*", metavar="SUBMISSION",
                   help="notebooks, or folders of notebooks")
    g.add_argument("--out", default="gradebook.csv", help="gradebook CSV (default: gradebook.csv)")
    g.add_argument("--timeout", type=_positive(float), default=60.0,
                   help="per-cell timeout in seconds (default: 60)")
    g.add_argument("--total-timeout", type=_positive(float), default=300.0,
                   help="wall-clock budget of one whole notebook in seconds, whatever its "
                        "number of cells (default: 300)")
    g.add_argument("--solutions", default=None,
                   help="folder of the reference solutions (default: ./solutions)")
    g.add_argument("--jobs", type=_positive(int), default=None,
                   help="submissions graded in parallel (default: the number of cores)")
    g.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                   help="grade only the K-th of N shards (for a batch system); join the "
                        "gradebooks with `adcourse gradebook merge`")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the questions (default: drawn for the run; printed)")
    g.add_argument("--exercise", default=None,
                   help="force the reference solution (e.g. 01-performance-measures)")
    g.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="isolation: bubblewrap when it works (auto), required (bwrap), or none")
    g.add_argument("--memory-mb", type=_positive(int), default=4096,
                   help="memory of one submission in MiB (default: 4096)")
    g.add_argument("--keep", default=None, metavar="DIR",
                   help="keep prepared notebooks, answers, junit XML and logs under DIR")
    g.add_argument("--quiet", action="store_true", help="do not print the summary table")
    g.set_defaults(func=_grade)

    b = sub.add_parser("gradebook", help="work on gradebooks")
    bsub = b.add_subparsers(dest="action", metavar="ACTION")
    bsub.required = True
    m = bsub.add_parser("merge", help="join the gradebooks of several shards")
    m.add_argument("gradebooks", nargs="+", metavar="GRADEBOOK")
    m.add_argument("--out", required=True, help="the joined gradebook CSV")
    m.set_defaults(func=_merge)

    from adcourse.course.exercises import add_arguments

    e = sub.add_parser("exercises", help="generate exercises/ from solutions/ (or --check them)")
    add_arguments(e)
    e.set_defaults(func=_exercises)
    return parser


def _grade_parser(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices["grade"]


def _parse(parser, argv):
    """Parse ``argv``; for ``grade``, an unknown argument naming an existing file is a submission."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["grade"]:
        return parser.parse_args(argv)
    rest = argv[1:]
    files = []
    if "--" in rest:
        i = rest.index("--")
        rest, files = rest[:i], rest[i + 1:]
    options = {opt for action in _grade_parser(parser)._actions for opt in action.option_strings}
    files = [a for a in rest if a.startswith("-") and a not in options and os.path.lexists(a)] + files
    rest = [a for a in rest if not (a.startswith("-") and a not in options and os.path.lexists(a))]
    args, unknown = parser.parse_known_args(["grade", *rest])
    bad = [a for a in unknown if not os.path.lexists(a)]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    args.submissions = [*args.submissions, *unknown, *files]
    if not args.submissions:
        parser.error("grade: at least one SUBMISSION is required")
    return args


def main(argv=None):
    # nbformat -> jsonschema builds the grammar of the optional rfc3987_syntax format checker
    # at import (2 s), and nbformat never uses it: skip it in this command-line process.
    sys.modules.setdefault("rfc3987_syntax", None)
    parser = build_parser()
    args = _parse(parser, argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

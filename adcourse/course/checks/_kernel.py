r"""The kernel's side of grading: compute the student's answers, write them as data.

At grading time every ``check`` cell of a submission is replaced by an *answer
cell* (written by :mod:`adcourse.course.grading`)::

    # ANSWER task-2 (the grader's cell: your functions' answers are recorded here; ...)
    __import__("adcourse.course.checks._kernel", fromlist=["answer"]).answer(
        "01-performance-measures", "task-2", 8734512, "/out/answers.jsonl")

:func:`answer` finds the task's functions in the notebook's namespace, asks them
the task's questions made with the grader's seed, and appends one JSON line to
the answers file: the encoded answers (:mod:`._wire`), or the error the first
failing call raised, or the names that are not defined. It decides nothing: the
grader reads the line as untrusted data and judges it in its own process
(:mod:`adcourse.course.judge`). Only the question builders of the exercise's check
module run here, so the kernel imports what building the inputs needs (NumPy,
and torch for the exercises that ask about a torch model), not the references.
"""

from __future__ import annotations

import json
import sys

from adcourse.course.checks._base import _not_a_function
from adcourse.course.checks._wire import encode

__all__ = ["answer", "record"]

_MAX_MESSAGE = 300
_MAX_RECORD = 48 * 2 ** 20


def _text(exc):
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__
        text = ""
    return text[:_MAX_MESSAGE]


def record(task, seed, namespace):
    """The record of ``task``'s answers for ``seed``, the functions taken from ``namespace``."""
    out = {"task": task.task, "seed": int(seed)}
    missing = [name for name in task.uses if name not in namespace]
    if missing:
        out["missing"] = missing
        return out
    functions = {}
    for name in task.uses:
        value = namespace[name]
        if not callable(value):
            out["problem"] = str(_not_a_function(name, value))
            return out
        functions[name] = value
    answers = []
    for call in task.calls(seed):
        try:
            value = call.ask(functions)
        except KeyboardInterrupt:  # the grader's timeout: no answer
            raise
        except BaseException as exc:  # noqa: BLE001 - the student's error is the answer
            answers.append({"raised": [type(exc).__name__[:80], _text(exc)]})
            break
        answers.append({"value": encode(value)})
    out["answers"] = answers
    return out


def answer(exercise, task_id, seed, path):
    """Append the answers of ``task_id`` of ``exercise`` (questions made with ``seed``) to ``path``."""
    from adcourse.course.checks import task_of

    namespace = sys._getframe(1).f_globals
    try:
        rec = record(task_of(exercise, task_id), seed, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported, judged as a failure
        rec = {"task": task_id, "seed": int(seed),
               "problem": f"the answers could not be computed: {type(exc).__name__}: {_text(exc)}"}
    line = json.dumps(rec, separators=(",", ":"))
    if len(line) > _MAX_RECORD:
        line = json.dumps({"task": task_id, "seed": int(seed),
                           "problem": "the answers are too large to be graded"})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")

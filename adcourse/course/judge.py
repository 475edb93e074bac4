r"""The judge: the verdict on a submission's answers, taken in the grader's process.

A graded notebook's kernel only *computes answers* (:mod:`adcourse.course.checks._kernel`)
and writes them, one JSON line per task, to an answers file. Everything in that
file is untrusted data. The judge

1. reads it defensively (:func:`read_answers`: a size cap, one record per task, the
   last valid one wins, malformed lines ignored);
2. decodes the answers (:func:`adcourse.course.checks._wire.decode`: data only);
3. makes the task's questions again from the same seed (:func:`task_seed`: drawn by
   the grader for the run, derived per exercise and task), and runs the task's
   judge on the decoded answers (:meth:`~adcourse.course.checks._base.Task.judge_record`):
   the references are computed here, from :mod:`adcourse`, in a process the
   student's code never ran in.

The verdict of a task is ``passed`` or a reason: the check's ``CheckFailed`` hint
(``CheckFailed: Task 2 (...): wrong ROC points ... | hint: ...``), the error the
student's function raised (``NotImplementedError``, ``ValueError: ...``), a function
that is not defined (``NameError: roc_points is not defined``), or no answer.
"""

from __future__ import annotations

import hashlib
import json
import re

from adcourse.course.checks._base import CheckFailed, NoAnswer, NotDefined, StudentError
from adcourse.course.checks._wire import decode

__all__ = ["task_seed", "read_answers", "decode_record", "judge_task", "clean_reason"]

#: The largest answers file the judge reads (bytes).
MAX_ANSWERS_BYTES = 64 * 2 ** 20
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MAX_REASON = 600


def task_seed(run_seed, exercise, task):
    """The seed of the questions of ``task`` of ``exercise`` in a run seeded ``run_seed``."""
    digest = hashlib.sha256(f"{int(run_seed)}:{exercise}:{task}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def clean_reason(text, limit=MAX_REASON):
    """One line of at most ``limit`` characters: ANSI codes and control characters removed,
    the lines of a message joined with `` | ``."""
    text = _ANSI.sub("", str(text))
    lines = [_CONTROL.sub("", line).strip() for line in text.splitlines()]
    out = " | ".join(line for line in lines if line)
    if out.endswith(":"):  # "NotImplementedError:" with an empty message
        out = out[:-1]
    return out if len(out) <= limit else out[: limit - 3] + "..."


def read_answers(data, seeds=None):
    """``{task id: raw record}`` from the bytes of an answers file (untrusted: never raises).

    The *first* valid record of each task counts, and only a record made for the seed the
    grader drew for that task (``seeds``: ``{task id: seed}``), so a record written before
    the answer cell ran -- by code that could not know the seed -- never counts.
    """
    out = {}
    if not isinstance(data, (bytes, bytearray)):
        return out
    for line in bytes(data[:MAX_ANSWERS_BYTES]).splitlines():
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("task"), str):
            continue
        task = rec["task"]
        if task in out or (seeds is not None and rec.get("seed") != seeds.get(task)):
            continue
        out[task] = rec
    return out


def decode_record(raw):
    """The record with its answers decoded (the structure checked, nothing trusted)."""
    rec = {}
    missing = raw.get("missing")
    if isinstance(missing, list):
        rec["missing"] = [str(m)[:80] for m in missing if isinstance(m, str)] or ["a function"]
    if raw.get("problem") is not None:
        rec["problem"] = clean_reason(raw["problem"], 300)
    answers = raw.get("answers")
    if isinstance(answers, list):
        decoded = []
        for entry in answers:
            if isinstance(entry, dict) and "raised" in entry:
                raised = entry["raised"] if isinstance(entry["raised"], list) else [entry["raised"]]
                kind = clean_reason(raised[0] if raised else "Exception", 80) or "Exception"
                message = clean_reason(raised[1], 300) if len(raised) > 1 else ""
                decoded.append({"raised": [kind, message]})
            elif isinstance(entry, dict) and "value" in entry:
                decoded.append({"value": decode(entry["value"])})
            else:
                decoded.append(None)
        rec["answers"] = decoded
    return rec


def judge_task(task, raw, seed):
    """``(passed, reason)`` for ``task`` from the raw record a kernel wrote for questions of ``seed``."""
    try:
        task.judge_record(decode_record(raw), seed)
    except CheckFailed as exc:
        return False, clean_reason(f"CheckFailed: {exc}")
    except NotDefined as exc:
        return False, clean_reason(f"NameError: {exc}")
    except StudentError as exc:
        return False, clean_reason(str(exc))
    except NoAnswer as exc:
        return False, clean_reason(f"no answer: {exc}")
    except Exception as exc:  # noqa: BLE001 - an answer the judge could not compare
        return False, clean_reason(f"CheckFailed: {task._prefix('the answer could not be compared')}"
                                   f" ({type(exc).__name__}: {exc})")
    return True, ""

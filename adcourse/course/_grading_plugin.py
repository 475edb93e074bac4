"""pytest plugin loaded by :mod:`adcourse.course.grading` in the nbval subprocess (``-p adcourse.course._grading_plugin``).

* nbval 0.11 waits for a cell's reply until the cell timeout even when the kernel
  process is already dead (``os._exit(1)``, a segfault, the OOM killer), and then
  reports it as a timeout. This plugin makes nbval poll the kernel while waiting:
  a dead kernel fails the cell at once with ``KernelDied: kernel died ...``; the
  later cells then fail with nbval's "Kernel dead on test start".
* The notebook under test holds the grader's answer cells (their seeds, the answers
  file). With ``ADCOURSE_GRADING=1`` the plugin makes this pytest process
  non-dumpable (Linux: ``prctl(PR_SET_DUMPABLE, 0)``, so the kernel, a process of the
  same user, cannot read its memory or its open files) and deletes the notebook file
  once nbval has collected its cells, before the kernel starts: the student's code
  sees each answer cell only when it runs.
"""

from __future__ import annotations

import os
import time
from queue import Empty


class KernelDied(RuntimeError):
    """The kernel process exited while a cell was running."""


def _exit_code(running_kernel):
    provisioner = getattr(running_kernel.km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    code = getattr(process, "returncode", None)
    return "" if code is None else f" (exit code {code})"


def _await_reply(self, msg_id, timeout=None):
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
        try:
            msg = self.get_message(stream="shell", timeout=wait)
        except Empty:
            if not self.is_alive():
                raise KernelDied(f"kernel died while running this cell{_exit_code(self)}") from None
            if deadline is not None and time.monotonic() >= deadline:
                raise
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            if msg["content"]["status"] == "aborted":
                raise RuntimeError("Kernel aborted execution request")
            return


def _not_dumpable():
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


def pytest_configure(config):
    from nbval.kernel import RunningKernel

    RunningKernel.await_reply = _await_reply
    if os.environ.get("ADCOURSE_GRADING") == "1":
        _not_dumpable()


def pytest_collection_finish(session):
    if os.environ.get("ADCOURSE_GRADING") != "1":
        return
    for item in session.items:
        path = getattr(item.parent, "path", None)
        if path is not None and str(path).endswith(".ipynb"):
            try:
                os.unlink(path)
            except OSError:
                pass

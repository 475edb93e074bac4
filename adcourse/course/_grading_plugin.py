"""pytest plugin loaded by :mod:`adcourse.course.grading` in the nbval subprocess (``-p adcourse.course._grading_plugin``).

nbval 0.11 waits for a cell's reply until the cell timeout even when the kernel
process is already dead (``os._exit(1)``, a segfault, the OOM killer), and then
reports it as a timeout. This plugin makes nbval poll the kernel while waiting:
a dead kernel fails the cell at once with ``KernelDied: kernel died ...``; the
later cells then fail with nbval's "Kernel dead on test start". Nothing else
changes.
"""

from __future__ import annotations

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


def pytest_configure(config):
    from nbval.kernel import RunningKernel

    RunningKernel.await_reply = _await_reply

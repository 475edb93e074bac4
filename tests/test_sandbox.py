"""adcourse.course.sandbox: what a submission's code sees, measured from inside the sandbox."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from adcourse.course import sandbox

ISO = sandbox.detect()
needs_bwrap = pytest.mark.skipif(not ISO.bubblewrap, reason="bubblewrap is not usable here")


@needs_bwrap
def test_bubblewrap_isolation_in_force():
    limits = sandbox.Limits(memory_mb=1024, processes=64, tmp_mb=256, file_mb=8)
    seen = sandbox.measure(ISO, limits)
    assert seen["processes_visible"] <= 3  # its own: bwrap's init, python (and maybe a child)
    assert seen["capabilities"] == "0000000000000000"
    assert seen["network"].startswith("unreachable")
    assert seen["adcourse"] == "/opt/adcourse/adcourse/__init__.py"
    assert seen["package"] == "read-only" and seen["solutions_visible"] is False
    assert seen["tmp_mb"] == 256
    assert seen["rlimits"]["data"] == 1024 * 2 ** 20 and seen["rlimits"]["core"] == 0
    assert seen["rlimits"]["fsize"] == 8 * 2 ** 20
    if ISO.separate_uid:
        assert seen["uid"] >= 2_000_000_000 and seen["rlimits"]["nproc"] == 64


@pytest.mark.parametrize("mode", ["auto", "none"])
def test_a_run_is_bounded_and_leaves_nothing(mode):
    iso = sandbox.detect(mode)
    marker = f"sandbox-test-{os.getpid()}-{time.time_ns()}"
    code = (f"import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{marker}'],\n"
            "                 start_new_session=True)\n"
            "open(sys.argv[1], 'w').write('answer')\n"
            "print('x' * 1000, flush=True)\n"
            "time.sleep(300)\n")
    with sandbox.Sandbox(iso, slot=5) as box:
        start = time.monotonic()
        result = box.run([sandbox.box_python(), "-c", code, f"{box.out}/a.txt"], {}, ["a.txt", "b.txt"],
                         budget=8)
        assert time.monotonic() - start < 25
        host = box.host
    assert result.stopped == "the time budget of 8 s ran out" and result.returncode is None
    assert result.files == {"a.txt": b"answer", "b.txt": b""}
    assert "x" * 1000 in result.log
    assert not host.exists()
    alive = [p for p in Path("/proc").glob("[0-9]*/cmdline")
             if marker.encode() in (p.read_bytes() if p.exists() else b"")]
    assert alive == []


def test_outputs_are_read_as_regular_files_only(tmp_path):
    (tmp_path / "ok").write_bytes(b"data")
    (tmp_path / "link").symlink_to(tmp_path / "ok")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 100)
    assert sandbox.read_output(tmp_path, "ok", 10) == b"data"
    assert sandbox.read_output(tmp_path, "link", 10) is None
    assert sandbox.read_output(tmp_path, "fifo", 10) is None  # does not block
    assert sandbox.read_output(tmp_path, "big", 10) is None
    assert sandbox.read_output(tmp_path, "missing", 10) is None


def test_an_installation_under_tmp_stays_visible(monkeypatch):
    """A clone or venv under /tmp is mounted after the private /tmp, not hidden by it."""
    sources = {"/tmp/clone/.venv": Path("/tmp/clone/.venv"), "/opt/adcourse/adcourse": Path("/x")}
    monkeypatch.setattr(sandbox, "_readonly_sources", lambda: sources)
    iso = sandbox.detect("none")
    with sandbox.Sandbox(iso) as box:
        args = box._bwrap_args({}, [], [])
    tmpfs = args.index("--tmpfs")
    assert args[tmpfs + 1] == "/tmp"
    binds = {args[i + 2]: i for i, a in enumerate(args) if a == "--ro-bind"}
    for inside in sources:
        assert binds[inside] > tmpfs, f"{inside} is mounted before the private /tmp, which hides it"

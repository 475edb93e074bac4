r"""A sandbox for one graded submission: namespaces, a separate user, limits, nothing left behind.

:func:`detect` finds the strongest isolation the machine allows; :class:`Sandbox`
runs one command (the executor: pytest + nbval + the kernel) in it and returns
what the command left in its output folder, as bytes the caller treats as
untrusted. In order of strength:

**bubblewrap** (``bwrap``, Debian package ``bubblewrap``), when it can create an
unprivileged user namespace here. The command runs in new user, PID, network,
mount, IPC, UTS and cgroup namespaces (``--unshare-all``; nested user namespaces
disabled): it sees only its own processes (they all die with it), has no network
(a loopback of its own, for the kernel's sockets), a private ``/tmp`` (a tmpfs of
bounded size, holding its working folder and home), and a read-only view of
``/usr``, a few files of ``/etc``, the Python installation, the virtual
environment and the grader's ``adcourse`` package (mounted at
``/opt/adcourse/adcourse``, with the repository's ``data/`` next to it, and put on
``PYTHONPATH``). The solutions, the other submissions, the grader's files and the
rest of the machine are not there. The only writable place that outlives it is
its output folder ``/out`` (a fresh host folder per submission, read back by the
grader with ``O_NOFOLLOW``, regular files only, sizes capped, then deleted).

**A separate user** when the grader runs as root (as CI does): every job slot has
its own unprivileged uid (no capabilities), so per-user limits apply (the number
of processes) and, after the run, every process of that uid is killed. Paths the
uid cannot traverse (a Python under ``/root``) are bind-mounted read-only in a
private mount namespace first (``unshare --mount``), never in the host's.

**cgroup v1** memory and pids controllers when writable (root): the whole
submission -- every process -- shares one memory limit and one process limit,
and the cgroup is emptied (SIGKILL) after the run.

**rlimits** always (``prlimit``): data segment per process (``RLIMIT_DATA``: torch
maps 3 GB of address space at import, so address-space limits cannot be used),
processes, CPU seconds, file size, no core files.

**Without bubblewrap** the command runs in its own session and temporary folder
with the scrubbed environment and the rlimits (and, as root, its own uid and the
cgroup); after the run its process group, its descendants and (as root) every
process of its uid are killed. The student's code can then read every file the
grader's user -- or, as root, any user -- can read (the solutions included when
they are world-readable): see the README for what that means.

In every mode the grader enforces the wall-clock budget, the size of the
command's output and of its output folder (watched twice a second) and kills
everything past a limit.
"""

from __future__ import annotations

import atexit
import functools
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Limits", "Isolation", "Sandbox", "Result", "detect", "read_output",
           "remove_leftover_cgroups"]

_MB = 2 ** 20
#: Where the command sees its working folder and its output folder under bubblewrap.
BOX_WORK, BOX_OUT, BOX_PACKAGE = "/tmp/work", "/out", "/opt/adcourse"
_UID_BASE = 2_000_000_000
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts",
        "passwd", "group", "host.conf", "resolv.conf")


@dataclass(frozen=True)
class Limits:
    """Limits of one submission (see the module docstring for how each is enforced)."""

    memory_mb: int = 4096   # all its processes together (cgroup), and each process (RLIMIT_DATA)
    processes: int = 256    # processes and threads
    file_mb: int = 64       # the largest file it may write
    tmp_mb: int = 1024      # its private /tmp (bubblewrap)
    output_mb: int = 64     # its stdout + stderr, and its output folder


@dataclass
class Isolation:
    """What protects the grader and the other submissions from a submission, on this machine."""

    bubblewrap: bool
    separate_uid: bool
    cgroup: str | None
    bwrap_version: str = ""
    staging: bool = False
    notes: list = field(default_factory=list)

    def describe(self):
        """One line for the grader's output and the README's example."""
        parts = []
        if self.bubblewrap:
            parts.append(f"bubblewrap {self.bwrap_version}".strip()
                         + " (user, pid, net, mount, ipc, uts, cgroup namespaces; private /tmp; "
                           "read-only package and Python)")
        else:
            parts.append("NO bubblewrap (no namespaces: the notebook can read the grader's files)")
        if self.separate_uid:
            parts.append("separate unprivileged uid per job")
        elif _is_root():
            parts.append("the notebooks run as ROOT" + ("" if self.bubblewrap else
                                                        ": no protection at all"))
        else:
            parts.append("the grader's own user")
        parts.append(f"{self.cgroup} memory+pids limits" if self.cgroup
                     else "no cgroup (per-process limits only)")
        parts.append("rlimits (data, processes, cpu, file size)")
        return "; ".join(parts)


# --------------------------------------------------------------------------------------
# what the machine allows
# --------------------------------------------------------------------------------------


def _is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _uid_for(slot):
    return _UID_BASE + (os.getpid() % 65536) * 1024 + int(slot) % 1024


def _v1_cgroup_dirs():
    """{controller: the current v1 cgroup folder} for memory and pids, when both are writable."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            if controller in ("memory", "pids"):
                folder = Path("/sys/fs/cgroup") / controller / parts[2].lstrip("/")
                if folder.is_dir() and os.access(folder, os.W_OK):
                    out[controller] = folder
    return out if set(out) == {"memory", "pids"} else None


def _traversable(path, uid):
    """Can ``uid`` (no groups) reach ``path``? (search permission on every ancestor)."""
    path = Path(path).resolve()
    for parent in [*reversed(path.parents), path]:
        try:
            st = parent.stat()
        except OSError:
            return False
        mode = st.st_mode
        ok = (mode & stat.S_IXOTH) or (st.st_uid == uid and mode & stat.S_IXUSR)
        if not ok:
            return False
    return True


@functools.lru_cache(maxsize=None)
def _probe_bwrap(as_uid):
    """(works, version) of bubblewrap for an unprivileged user namespace, run as ``as_uid``."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, ""
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = ""
    cmd = [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--unshare-user", "--disable-userns",
           "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev", "true"]
    if as_uid is not None:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return False, version
        cmd = [setpriv, f"--reuid={as_uid}", f"--regid={as_uid}", "--clear-groups", "--", *cmd]
    try:
        ok = subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return ok, version


def detect(mode="auto"):
    """The :class:`Isolation` to use: ``mode`` is ``"auto"`` (bubblewrap when it works),
    ``"bwrap"`` (required: ``RuntimeError`` when it does not work) or ``"none"``."""
    if mode not in ("auto", "bwrap", "none"):
        raise ValueError(f"sandbox must be 'auto', 'bwrap' or 'none', got {mode!r}")
    root = _is_root()
    separate = root and shutil.which("setpriv") is not None
    notes = []
    use_bwrap, version = False, ""
    if mode != "none":
        use_bwrap, version = _probe_bwrap(_uid_for(0) if separate else None)
        if not use_bwrap:
            why = ("bwrap is not installed (apt-get install bubblewrap)" if shutil.which("bwrap") is None
                   else "bwrap cannot create a user namespace here")
            if mode == "bwrap":
                raise RuntimeError(f"sandbox 'bwrap' requested but {why}")
            notes.append(why)
    cgroup = "cgroup v1" if root and _v1_cgroup_dirs() else None
    staging = False
    reachable = all(_traversable(p, _uid_for(0)) for p in _readonly_sources().values())
    if use_bwrap and separate:
        staging = not reachable
        if staging and shutil.which("unshare") is None:
            use_bwrap = False
            notes.append("unshare is missing (util-linux)")
    if separate and not use_bwrap and not reachable:
        separate = False  # the Python installation is out of reach of an unprivileged uid
        notes.append("the Python installation is not readable by an unprivileged user: the "
                     "notebooks run as the grader's user")
    if shutil.which("prlimit") is None:
        notes.append("prlimit is missing: no rlimits")
    return Isolation(use_bwrap, separate, cgroup, version, staging, notes)


@functools.lru_cache(maxsize=None)
def _readonly_sources():
    """{path inside the sandbox: host path} of what the command needs to read (bubblewrap)."""
    import adcourse

    out = {}
    for prefix in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}:
        if not str(prefix).startswith("/usr"):
            out[str(prefix)] = prefix
    package = Path(adcourse.__file__).resolve().parent
    out[f"{BOX_PACKAGE}/adcourse"] = package
    data = package.parent / "data"
    if data.is_dir() and (package.parent / "pyproject.toml").exists():  # a checkout
        out[f"{BOX_PACKAGE}/data"] = data
    return out


def box_python():
    """The Python executable, as a path valid inside the sandbox and out of it."""
    name = Path(sys.executable).name
    candidate = Path(sys.prefix).resolve() / "bin" / name
    return str(candidate if candidate.exists() else Path(sys.executable).resolve())


# --------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------


@dataclass
class Result:
    """What came out of one run (``files``: untrusted bytes, None when absent or not a regular file)."""

    returncode: int | None
    stopped: str
    log: str
    files: dict
    seconds: float


def read_output(folder, name, limit):
    """The bytes of ``folder/name`` if it is a regular file of at most ``limit`` bytes, else None.

    Never follows a link, never blocks on a FIFO, never reads past ``limit``.
    """
    try:
        fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) if size <= limit else None
    finally:
        os.close(fd)


def _folder_size(folder, max_entries=2000):
    """(bytes, entries) under ``folder``, links not followed, counting stops past ``max_entries``."""
    total, count, todo = 0, 0, [str(folder)]
    while todo and count <= max_entries:
        try:
            with os.scandir(todo.pop()) as entries:
                for entry in entries:
                    count += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_size
                    if stat.S_ISDIR(st.st_mode):
                        todo.append(entry.path)
        except OSError:
            continue
    return total, count


def _processes_of(uid):
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == uid:
                        out.append(int(status.parent.name))
                    break
        except (OSError, ValueError, IndexError):
            continue
    return out


def _descendants(pid):
    children = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat_file.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


class _Cgroup:
    """A v1 memory + pids cgroup for one run (created under the grader's own cgroups)."""

    def __init__(self, name, limits):
        self.dirs = []
        parents = _v1_cgroup_dirs()
        if not parents:
            return
        try:
            for controller, parent in sorted(parents.items()):
                folder = parent / name
                folder.mkdir()
                self.dirs.append(folder)
                if controller == "memory":
                    limit = str(limits.memory_mb * _MB)
                    (folder / "memory.limit_in_bytes").write_text(limit)
                    swap = folder / "memory.memsw.limit_in_bytes"
                    if swap.exists():
                        swap.write_text(limit)
                else:
                    (folder / "pids.max").write_text(str(limits.processes))
        except OSError:
            self.remove()
            self.dirs = []

    @property
    def procs_files(self):
        return [str(d / "cgroup.procs") for d in self.dirs]

    def kill(self):
        for _ in range(50):
            pids = []
            for d in self.dirs:
                try:
                    pids += [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except (OSError, ValueError):
                    pass
            if not pids:
                return
            _kill(pids)
            time.sleep(0.05)

    def remove(self, wait=5.0):
        """Remove the cgroup once its processes have exited; what cannot be removed yet (a
        process still exiting) is retried by :func:`remove_leftover_cgroups`."""
        deadline = time.monotonic() + wait
        for d in self.dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        _LEFTOVER.append(d)
                        break
                    self.kill()
                    time.sleep(0.05)


_LEFTOVER = []


def remove_leftover_cgroups(wait=10.0):
    """Retry removing the cgroups of runs whose processes took long to exit (at the end of a
    grading run and at exit)."""
    deadline = time.monotonic() + wait
    while _LEFTOVER and time.monotonic() < deadline:
        for d in list(_LEFTOVER):
            try:
                for pid in (d / "cgroup.procs").read_text().split():
                    _kill([int(pid)])
                d.rmdir()
                _LEFTOVER.remove(d)
            except FileNotFoundError:
                _LEFTOVER.remove(d)
            except (OSError, ValueError):
                pass
        time.sleep(0.1)


atexit.register(remove_leftover_cgroups)


class Sandbox:
    """One submission's sandbox: ``with Sandbox(isolation, slot, limits) as box: box.run(...)``.

    ``box.work`` and ``box.out`` are the working and output folders *as the command
    sees them* (``/tmp/work`` and ``/out`` under bubblewrap, host folders otherwise).
    """

    def __init__(self, isolation, slot=0, limits=Limits(), fontlist=None):
        self.isolation, self.limits, self.slot = isolation, limits, slot
        self.uid = _uid_for(slot) if isolation.separate_uid else None
        self.fontlist = fontlist
        self.host = Path(tempfile.mkdtemp(prefix=f"adcourse-grade-{os.getpid()}-"))
        os.chmod(self.host, 0o711)
        self.host_out = self.host / "out"
        self.host_out.mkdir(mode=0o700)
        self.host_in = self.host / "in"
        self.host_in.mkdir(mode=0o700)
        if isolation.bubblewrap:
            self.work, self.out = BOX_WORK, BOX_OUT
        else:
            self.host_work = self.host / "work"
            self.host_tmp = self.host / "tmp"
            for d in (self.host_work, self.host_tmp, self.host_tmp / "home", self.host_tmp / "mpl"):
                d.mkdir(mode=0o700)
            self.work, self.out = str(self.host_work), str(self.host_out)
        if self.uid is not None:
            for d in [self.host_out] + ([] if isolation.bubblewrap else
                                        [self.host_work, self.host_tmp, self.host_tmp / "home",
                                         self.host_tmp / "mpl"]):
                os.chown(d, self.uid, self.uid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Remove every file of the sandbox (links are removed, never followed)."""
        shutil.rmtree(self.host, ignore_errors=True)

    # ---- the command line -----------------------------------------------------------

    def _env(self, extra):
        tmp = "/tmp" if self.isolation.bubblewrap else str(self.host_tmp)
        package = BOX_PACKAGE if self.isolation.bubblewrap else str(
            _readonly_sources()[f"{BOX_PACKAGE}/adcourse"].parent)
        env = {
            "PATH": f"{Path(box_python()).parent}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": package,
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": f"{tmp}/home",
            "TMPDIR": tmp,
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{tmp}/mpl",
            "IPYTHONDIR": f"{tmp}/home/.ipython",
            "JUPYTER_RUNTIME_DIR": f"{tmp}/runtime",
            "JUPYTER_DATA_DIR": f"{tmp}/home/.jupyter-data",
            "JUPYTER_CONFIG_DIR": f"{tmp}/home/.jupyter",
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        env.update(extra)
        return env

    def _bwrap_args(self, env, inputs, fds):
        args = [shutil.which("bwrap"), "--unshare-all", "--unshare-user", "--disable-userns",
                "--die-with-parent", "--new-session", "--hostname", "grading", "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            p = Path("/") / name
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                args += ["--ro-bind", str(p), str(p)]
        for name in _ETC:
            if (Path("/etc") / name).exists():
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        # the private /tmp first: an installation under /tmp (a venv or clone there) is mounted on
        # top of it, not hidden by it (bubblewrap applies the mounts in order)
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.limits.tmp_mb * _MB), "--tmpfs", "/tmp"]
        for inside, host in _readonly_sources().items():
            source = (self.host / "stage" / _stage_name(inside)) if self.isolation.staging else host
            args += ["--ro-bind", str(source), inside]
        args += ["--dir", "/tmp/home", "--dir", "/tmp/mpl", "--dir", "/tmp/runtime",
                 "--dir", BOX_WORK, "--bind", str(self.host_out), BOX_OUT]
        for name, fd in zip(inputs, fds):
            args += ["--file", str(fd), f"{BOX_WORK}/{name}"]
        if self.fontlist is not None:
            args += ["--file", str(fds[len(inputs)]), f"/tmp/mpl/{self.fontlist.name}"]
        return args + ["--chdir", BOX_WORK]

    def _prlimit(self, budget):
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            return []
        nproc = self.limits.processes
        if self.uid is None:  # per-user count: the grader's user's own processes count too
            nproc += len(_processes_of(os.getuid()))
        data = self.limits.memory_mb * _MB
        return [prlimit, f"--data={data}:{data}", f"--nproc={nproc}:{nproc}",
                f"--cpu={int(budget) + 30}:{int(budget) + 30}",
                f"--fsize={self.limits.file_mb * _MB}:{self.limits.file_mb * _MB}",
                "--core=0:0", "--nofile=1024:1024", "--"]

    def command(self, argv, inputs, budget, cgroup=None, env=None):
        """``(argv, env, fds)`` of the launcher for ``argv`` (see the module docstring)."""
        env = self._env(env or {})
        fds = []
        if self.isolation.bubblewrap:
            for name, data in inputs.items():
                path = self.host_in / name
                path.write_bytes(data)
                fds.append(os.open(path, os.O_RDONLY))
            if self.fontlist is not None:
                fds.append(os.open(self.fontlist, os.O_RDONLY))
            inner = self._bwrap_args(env, list(inputs), fds) + list(argv)
            launch_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        else:
            for name, data in inputs.items():
                path = self.host_work / name
                path.write_bytes(data)
                if self.uid is not None:
                    os.chown(path, self.uid, self.uid)
            if self.fontlist is not None:
                target = self.host_tmp / "mpl" / self.fontlist.name
                shutil.copyfile(self.fontlist, target)
                if self.uid is not None:
                    os.chown(target, self.uid, self.uid)
            inner = list(argv)
            launch_env = env
        if self.uid is not None:
            inner = [shutil.which("setpriv"), f"--reuid={self.uid}", f"--regid={self.uid}",
                     "--clear-groups", "--", *inner]
        inner = self._prlimit(budget) + inner
        script = []
        if cgroup is not None:
            script += [f"echo $$ > {shlex.quote(f)} || exit 97" for f in cgroup.procs_files]
        if self.isolation.bubblewrap and self.isolation.staging:
            stage = self.host / "stage"
            stage.mkdir(mode=0o755, exist_ok=True)
            for inside, host in _readonly_sources().items():
                target = stage / _stage_name(inside)
                target.mkdir(mode=0o755, exist_ok=True)
                script.append(f"mount --bind {shlex.quote(str(host))} {shlex.quote(str(target))} "
                              "|| exit 98")
        if script:
            body = "; ".join(script) + "; exec " + " ".join(shlex.quote(a) for a in inner)
            if self.isolation.bubblewrap and self.isolation.staging:
                inner = [shutil.which("unshare"), "--mount", "--propagation", "private", "--",
                         "/bin/sh", "-c", body]
            else:
                inner = ["/bin/sh", "-c", body]
        return inner, launch_env, fds

    # ---- running --------------------------------------------------------------------

    def run(self, argv, inputs, outputs, budget, env=None):
        """Run ``argv`` with the files ``inputs`` ({name: bytes}) in its working folder and the
        variables ``env`` added to its scrubbed environment; return a :class:`Result` with the
        files ``outputs`` of its output folder."""
        start = time.monotonic()
        for name in outputs:  # the output files exist, owned by the command's user
            path = self.host_out / name
            path.touch(mode=0o600)
            if self.uid is not None:
                os.chown(path, self.uid, self.uid)
        cgroup = _Cgroup(f"adcourse-{os.getpid()}-{self.slot}-{int(start * 1000) % 10**9}",
                         self.limits) if self.isolation.cgroup else None
        if cgroup is not None and not cgroup.dirs:
            cgroup = None
        cmd, env, fds = self.command(argv, inputs, budget, cgroup, env)
        tail, total, stopped = bytearray(), [0], []
        limit = self.limits.output_mb * _MB
        try:
            cwd = self.host if self.isolation.bubblewrap else self.host_work
            proc = subprocess.Popen(cmd, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)

        def reader():
            while True:
                chunk = proc.stdout.read1(1 << 16) if hasattr(proc.stdout, "read1") else proc.stdout.read(1 << 16)
                if not chunk:
                    return
                total[0] += len(chunk)
                tail.extend(chunk)
                del tail[:-65536]

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            while proc.poll() is None:
                if time.monotonic() - start > budget:
                    stopped.append(f"the time budget of {budget:g} s ran out")
                elif total[0] > limit:
                    stopped.append(f"it printed more than {self.limits.output_mb} MB")
                else:
                    size, count = _folder_size(self.host_out)
                    if size > limit or count > 1000:
                        stopped.append(f"it wrote more than {self.limits.output_mb} MB of files")
                if stopped:
                    break
                try:
                    proc.wait(timeout=0.25)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self._kill_all(proc, cgroup)
            thread.join(timeout=5)
            proc.stdout.close()
            if cgroup is not None:
                cgroup.remove()
            if self.uid is not None and not self.isolation.bubblewrap:
                _remove_files_of(self.uid)
        files = {name: read_output(self.host_out, name, limit) for name in outputs}
        return Result(proc.returncode if not stopped else None, stopped[0] if stopped else "",
                      tail.decode("utf-8", "replace"), files, time.monotonic() - start)

    def _kill_all(self, proc, cgroup):
        victims = [] if self.isolation.bubblewrap else _descendants(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
        _kill([proc.pid, *victims])
        if cgroup is not None:
            cgroup.kill()
        if self.uid is not None:
            for _ in range(20):
                pids = _processes_of(self.uid)
                if not pids:
                    break
                _kill(pids)
                time.sleep(0.05)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
            pass


def _remove_files_of(uid):
    """Without bubblewrap: what a sandbox uid left in the shared temporary folders."""
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def _stage_name(inside):
    return inside.strip("/").replace("/", "__") or "root"


# --------------------------------------------------------------------------------------
# what is in force, measured from inside
# --------------------------------------------------------------------------------------

_PROBE = r'''
import json, os, resource, socket, sys
out = {"uid": os.getuid(), "processes_visible": len([p for p in os.listdir("/proc") if p.isdigit()])}
status = open("/proc/self/status").read()
out["capabilities"] = status.split("CapEff:")[1].split()[0]
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); out["network"] = "reachable"
except OSError as exc:
    out["network"] = f"unreachable ({type(exc).__name__})"
import adcourse
out["adcourse"] = adcourse.__file__
try:
    open(adcourse.__file__, "a").close(); out["package"] = "writable"
except OSError:
    out["package"] = "read-only"
out["solutions_visible"] = os.path.exists(os.path.join(os.path.dirname(os.path.dirname(adcourse.__file__)), "solutions"))
st = os.statvfs(os.environ.get("TMPDIR", "/tmp"))
out["tmp_mb"] = st.f_blocks * st.f_frsize // 2**20
limits = {}
for name in ("RLIMIT_DATA", "RLIMIT_NPROC", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_CORE"):
    soft, _ = resource.getrlimit(getattr(resource, name))
    limits[name[7:].lower()] = None if soft == resource.RLIM_INFINITY else soft
out["rlimits"] = limits
print(json.dumps(out))
'''


def measure(isolation=None, limits=Limits()):
    """What a submission's code sees, measured by running a probe in a sandbox (a dict)."""
    import json

    isolation = isolation or detect()
    with Sandbox(isolation, slot=0, limits=limits) as box:
        result = box.run([box_python(), "-c", _PROBE], {}, [], budget=60)
    for line in reversed(result.log.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"the probe failed: {result.log[-500:]}")


def main(argv=None):
    """``python -m adcourse.course.sandbox``: print the isolation in force, measured from inside."""
    iso = detect()
    print(f"isolation: {iso.describe()}")
    for note in iso.notes:
        print(f"  note: {note}")
    for key, value in measure(iso).items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run a learner's notebook kernel where the grading secrets are out of reach.

nbgrader runs every submission in an ordinary Jupyter kernel, as the instructor, inside
``autograded/<learner>/<assignment>/``: a learner's code could read the source notebooks (the
hidden tests), the gradebook, or another learner's work, and could write scores. This module
is the kernel launcher the course's grading uses instead (see ``cnnlib.grading.autograde.plugins``):

* the grading side (:class:`Sandbox`, :class:`SandboxKernelManager`) makes a fresh working
  folder outside the course root holding a copy of the submission's non-notebook files (never
  the notebooks: the sanitized one carries the hidden tests), picks an unused uid for the
  kernel when it runs as root, and after the kernel stops kills whatever that uid left behind;
* the launcher (``python -m cnnlib.grading.autograde.sandbox [options] -- KERNEL ARGV``) runs in the
  kernel's process just before the kernel itself: it hides the private course paths in a
  private mount namespace when it can, sets resource limits (address space, CPU time, file
  size, processes), drops to the unprivileged uid, scrubs the environment, and ``exec``s
  the kernel in the fresh folder.

What each layer does and does not protect is written up in docs/GRADING.md.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Iterable, Sequence

try:  # the grading side; the launcher itself needs only the standard library
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Any as AnyTrait
except ImportError:  # pragma: no cover - launcher run by a bare Python
    AsyncKernelManager = object

    def AnyTrait(*args, **kwargs):  # noqa: N802
        return None

# --------------------------------------------------------------------------------------------
# Linux constants (from <sched.h>, <sys/mount.h>, <sys/prctl.h>)
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1

NOGROUP = 65534
DEFAULT_UID_RANGE = (2_000_000_000, 2_000_009_999)
KERNEL_LOG = "kernel-output.log"

#: Environment variables the kernel keeps from the grading process (everything else is dropped).
ENV_PASSTHROUGH = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "NBGRADER_EXECUTION")


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


# --------------------------------------------------------------------------------------------
# Grading side


@dataclass
class Sandbox:
    """Where and how one notebook's kernel runs; created by the grader, used by the launcher.

    Args:
        workdir: the kernel's working folder (a fresh temp folder, not under the course root).
        uid, gid: the unprivileged ids the kernel runs as, or None to keep the grader's.
        exclusive_uid: True when ``uid`` was allocated for this kernel alone, so every process
            it owns may be killed when the kernel stops.
        hide: private paths to cover in the kernel's mount namespace (solutions/, gradebook...).
        memory_mb, cpu_seconds, file_size_mb, max_processes: resource limits (0 = no limit).
        env: extra environment variables for the kernel (threads of BLAS, ...).
    """

    workdir: str
    uid: int | None = None
    gid: int | None = None
    exclusive_uid: bool = False
    hide: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    memory_mb: int = 0
    cpu_seconds: int = 0
    file_size_mb: int = 0
    max_processes: int = 0
    env: dict[str, str] = field(default_factory=dict)
    _lock_fd: int | None = None

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        submission_dir: str,
        *,
        user: str = "auto",
        uid_range: Sequence[int] = DEFAULT_UID_RANGE,
        base_dir: str | None = None,
        **limits,
    ) -> "Sandbox":
        """Make a fresh sandbox for the submission in ``submission_dir`` (not modified).

        ``user`` is "auto" (an unused uid from ``uid_range``, only when running as root), a
        user name or number (e.g. "nobody"), or "" to keep the grader's uid.
        """
        uid = gid = None
        exclusive = False
        lock_fd = None
        if user and os.geteuid() == 0:
            if user == "auto":
                uid, lock_fd = allocate_uid(uid_range)
                gid, exclusive = NOGROUP, True
            else:
                uid, gid = _lookup_user(user)
        workdir = tempfile.mkdtemp(prefix="kernel-", dir=base_dir or sandbox_parent())
        os.chmod(workdir, 0o700)
        copy_submission_files(submission_dir, workdir)
        for sub in ("home", "tmp"):
            os.makedirs(os.path.join(workdir, sub), exist_ok=True)
        _seed_matplotlib_cache(os.path.join(workdir, "home", ".config", "matplotlib"))
        if uid is not None:
            _chown_tree(workdir, uid, gid)
            limits.setdefault("expose", python_runtime_paths())
        box = cls(workdir=workdir, uid=uid, gid=gid, exclusive_uid=exclusive, **limits)
        box._lock_fd = lock_fd
        return box

    def kernel_env(self) -> dict[str, str]:
        """The whole environment of the kernel: nothing of the grader's but a few locale names."""
        home = os.path.join(self.workdir, "home")
        env = {k: os.environ[k] for k in ENV_PASSTHROUGH if k in os.environ}
        env.setdefault("LANG", "C.UTF-8")
        env.update(
            HOME=home,
            USER="learner",
            LOGNAME="learner",
            TMPDIR=os.path.join(self.workdir, "tmp"),
            PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
            PYTHONNOUSERSITE="1",
            # the kernel's folder holds the learner's files: never import from it (a `cnnlib/` or
            # `numpy.py` handed in beside the notebook would shadow the real one; Python and
            # IPython >= 9.7 both leave the current directory off sys.path with this)
            PYTHONSAFEPATH="1",
            PYTHONHASHSEED="0",
            PYTHONDONTWRITEBYTECODE="1",
            MPLCONFIGDIR=os.path.join(home, ".config", "matplotlib"),
            IPYTHONDIR=os.path.join(home, ".ipython"),
            JUPYTER_CONFIG_DIR=os.path.join(home, ".jupyter"),
            JUPYTER_DATA_DIR=os.path.join(home, ".local", "share", "jupyter"),
            JUPYTER_RUNTIME_DIR=os.path.join(home, ".local", "share", "jupyter", "runtime"),
            XDG_CACHE_HOME=os.path.join(home, ".cache"),
            XDG_CONFIG_HOME=os.path.join(home, ".config"),
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        env.update(self.env)
        return env

    def launcher_argv(self, kernel_argv: Sequence[str]) -> list[str]:
        """Wrap the kernel's command line with the launcher and this sandbox's settings."""
        argv = [sys.executable, "-m", "cnnlib.grading.autograde.sandbox", "--workdir", self.workdir]
        if self.uid is not None:
            argv += ["--uid", str(self.uid), "--gid", str(self.gid)]
        for path in self.hide:
            argv += ["--hide", path]
        for path in self.expose:
            argv += ["--expose", path]
        for name, value in (
            ("--memory-mb", self.memory_mb),
            ("--cpu-seconds", self.cpu_seconds),
            ("--file-size-mb", self.file_size_mb),
            ("--max-processes", self.max_processes if self.exclusive_uid else 0),
        ):
            if value:
                argv += [name, str(int(value))]
        for key, value in sorted(self.kernel_env().items()):
            argv += ["--env", f"{key}={value}"]
        return argv + ["--"] + list(kernel_argv)

    def place_connection_file(self, path: str) -> str:
        """Copy the kernel's connection file into the sandbox, readable by the kernel only.

        The grader's runtime folder (under its home) is out of the kernel's reach on purpose.
        """
        dest = os.path.join(self.workdir, "home", ".kernel-connection.json")
        with open(path, "rb") as src:
            data = src.read()
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if self.uid is not None:
            os.chown(dest, self.uid, self.gid)
        return dest

    def kernel_log_tail(self, lines: int = 5) -> str:
        """The last lines the kernel process wrote to its own stdout/stderr (not to the notebook)."""
        try:
            with open(os.path.join(self.workdir, "home", KERNEL_LOG), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 4096))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        keep = [ln for ln in text.splitlines() if ln.strip()][-lines:]
        return "\n".join(keep)

    # ---- teardown ---------------------------------------------------------------------------
    def kill_leftovers(self) -> None:
        """Kill every process the kernel's uid still owns (forks, daemons) - exclusive uids only."""
        if self.uid is not None and self.exclusive_uid:
            kill_all_processes_of(self.uid, self.gid)

    def close(self) -> None:
        """Kill what is left, delete the folder and release the uid."""
        self.kill_leftovers()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def sandbox_parent() -> str:
    """``$TMPDIR/cnn-grade-sandboxes``: the kernels' folders live here, one per kernel (0700,
    owned by its uid). The parent is 0711: a kernel can enter its own folder but cannot list
    the others, nor anything else in /tmp through ``..``."""
    parent = os.path.join(tempfile.gettempdir(), f"cnn-grade-sandboxes-{os.geteuid()}")
    os.makedirs(parent, mode=0o711, exist_ok=True)
    st = os.lstat(parent)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise RuntimeError(f"{parent} is not a folder of ours; refusing to put sandboxes there")
    os.chmod(parent, 0o711)
    return parent


def _lookup_user(user: str) -> tuple[int, int]:
    import pwd

    if user.isdigit():
        return int(user), NOGROUP
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _mapped(uid: int) -> bool:
    """Is ``uid`` usable in this user namespace (containers map only a range)?"""
    try:
        with open("/proc/self/uid_map") as fh:
            for line in fh:
                inside, _outside, count = (int(x) for x in line.split())
                if inside <= uid < inside + count:
                    return True
        return False
    except OSError:
        return True


def _uid_in_use(uid: int) -> bool:
    import pwd

    try:
        pwd.getpwuid(uid)
        return True  # a real account: never borrow it
    except KeyError:
        pass
    return bool(_pids_of(uid))


def _pids_of(uid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(name))
                        break
        except OSError:
            continue
    return pids


def allocate_uid(uid_range: Sequence[int] = DEFAULT_UID_RANGE) -> tuple[int, int]:
    """Reserve an unused uid for one kernel; returns (uid, fd of the lock that holds it).

    A uid is free when no account has it, no process runs as it, and no other grader holds its
    lock (an ``flock`` on a file in a root-only folder: released if the grader dies).
    """
    lo, hi = int(uid_range[0]), int(uid_range[1])
    if not (_mapped(lo) and _mapped(hi)):
        raise RuntimeError(
            f"sandbox uid range {lo}-{hi} is not mapped in this user namespace "
            "(set SandboxedExecute.sandbox_user to 'nobody' or to a mapped range)"
        )
    lock_dir = os.path.join(tempfile.gettempdir(), "cnn-grade-uids")
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    st = os.lstat(lock_dir)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise RuntimeError(f"{lock_dir} is not a folder of ours; refusing to use it")
    os.chmod(lock_dir, 0o700)
    start = lo + (os.getpid() * 7919) % (hi - lo + 1)  # spread parallel graders apart
    for i in range(hi - lo + 1):
        uid = lo + (start - lo + i) % (hi - lo + 1)
        fd = os.open(os.path.join(lock_dir, str(uid)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if _uid_in_use(uid):
            if _pids_of(uid) and not _has_account(uid):
                # left behind by a grader that died: ours to clean up
                kill_all_processes_of(uid, NOGROUP)
                if not _pids_of(uid):
                    return uid, fd
            os.close(fd)
            continue
        return uid, fd
    raise RuntimeError(f"no free sandbox uid in {lo}-{hi}")


def _has_account(uid: int) -> bool:
    import pwd

    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def kill_all_processes_of(uid: int, gid: int) -> None:
    """SIGKILL every process owned by ``uid``: ``kill -KILL -1`` run as that uid (fork-bomb safe:
    the kernel sends it to all of the uid's processes at once). /bin/sh, because the grader's
    own Python may not be executable for that uid."""
    if not _pids_of(uid):
        return
    for _ in range(3):
        try:
            subprocess.run(
                ["/bin/sh", "-c", "kill -KILL -1"],
                user=uid, group=gid, extra_groups=[], env={}, cwd="/",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                check=False, timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            for pid in _pids_of(uid):  # no shell: one by one
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if not _pids_of(uid):
            return


# The sandbox's own folders inside the kernel's folder: HOME (IPYTHONDIR, JUPYTER_CONFIG_DIR and
# MPLCONFIGDIR live there: a learner's `home/.ipython/profile_default/startup/x.py` would run before
# every test) and TMPDIR. A submission's folders of these names are not copied.
SANDBOX_OWN_DIRS = frozenset({"home", "tmp"})


def copy_submission_files(src: str, dest: str) -> None:
    """Copy the submission's data files (not notebooks, not symlinks, not its top-level ``home/``
    or ``tmp/``: see ``SANDBOX_OWN_DIRS``) from ``src`` into ``dest``.

    The notebooks stay behind: the one being graded has had its hidden tests restored, and the
    kernel receives its cells over the wire anyway. Symlinks are skipped: a learner could point
    one at the gradebook.
    """
    if not src or not os.path.isdir(src):
        return
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))
                       and not d.startswith(".ipynb_checkpoints")
                       and not (rel == "." and d in SANDBOX_OWN_DIRS)]
        target_dir = os.path.normpath(os.path.join(dest, rel))
        os.makedirs(target_dir, exist_ok=True)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if name.endswith(".ipynb") or not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            shutil.copyfile(path, os.path.join(target_dir, name), follow_symlinks=False)


def _chown_tree(root: str, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _seed_matplotlib_cache(dest: str) -> None:
    """Copy the grader's matplotlib font list so each kernel does not rebuild it (seconds)."""
    os.makedirs(dest, exist_ok=True)
    try:
        import matplotlib

        cache = matplotlib.get_cachedir()
    except Exception:  # matplotlib missing or unusable: the kernel builds its own cache
        return
    for name in os.listdir(cache) if os.path.isdir(cache) else ():
        if name.startswith("fontlist") and name.endswith(".json"):
            shutil.copyfile(os.path.join(cache, name), os.path.join(dest, name))


def python_runtime_paths() -> list[str]:
    """Folders the kernel's Python needs: its prefixes, sys.path, and cnnlib itself.

    The launcher makes these reachable for the unprivileged uid even when they sit in a home
    folder it cannot enter (pyenv or conda under a 0700 home is common).
    """
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    candidates.update(p for p in sys.path if p)
    candidates.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # cnnlib's parent
    real = sorted({os.path.realpath(p) for p in candidates if os.path.isdir(p)})
    # keep only the outermost of nested folders
    kept: list[str] = []
    for path in real:
        if not any(path == k or path.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(path)
    return kept


def ensure_private(paths: Iterable[str], log=None) -> list[str]:
    """Remove the "other" permission bits from ``paths`` that have them; return what changed.

    The sandboxed kernel runs as an unrelated uid, so "other" is what decides whether it can
    read a file. Only the paths themselves change (a folder without o+x hides its contents).
    """
    changed = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_mode & 0o007:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o007)
            changed.append(path)
            if log is not None:
                log.warning("Made %s private (removed permissions for others) so that "
                            "learners' code cannot read it while it is graded", path)
    return changed


class SandboxKernelManager(AsyncKernelManager):
    """An AsyncKernelManager that starts its kernel through the sandbox launcher.

    ``sandbox`` is set by the grading preprocessor before the kernel starts; without it this is
    an ordinary kernel manager.
    """

    sandbox = AnyTrait(None, allow_none=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        box: Sandbox | None = self.sandbox
        if box is None:
            return cmd
        real = os.path.realpath(self.connection_file)
        private = box.place_connection_file(real)
        cmd = [private if arg == real else arg for arg in cmd]
        return box.launcher_argv(cmd)


# --------------------------------------------------------------------------------------------
# Launcher side (runs in the kernel's process, before exec)


def _hide_paths(paths: Sequence[str]) -> str | None:
    """Cover ``paths`` in a new private mount namespace; return why not, or None when done.

    As root: a plain mount namespace. Otherwise: a user namespace mapping our own uid onto
    itself, whose capabilities are lost at ``exec`` (so the kernel cannot unmount the covers).
    """
    libc = _libc()
    flags = CLONE_NEWNS
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        return f"unshare: {os.strerror(ctypes.get_errno())}"
    if flags & CLONE_NEWUSER:
        try:
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"{gid} {gid} 1")
        except OSError as exc:
            return f"user namespace maps: {exc}"

    def mount(source, target, fstype, mflags, data):
        if libc.mount(source, target, fstype, ctypes.c_ulong(mflags), data) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), target)

    try:
        mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
        for path in paths:
            if not os.path.lexists(path):
                continue
            target = os.fsencode(path)
            if os.path.isdir(path):
                mount(b"none", target, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      b"size=4k,mode=000")
            else:
                mount(b"/dev/null", target, None, MS_BIND, None)
                mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
    except OSError as exc:
        return f"mount: {exc}"
    return None


def _blocked_ancestor(path: str) -> str | None:
    """The outermost folder above ``path`` that "others" may not enter (no o+x), if any."""
    parts = os.path.abspath(path).split(os.sep)[1:]
    current = ""
    for part in parts[:-1]:
        current += os.sep + part
        try:
            if not os.stat(current).st_mode & 0o001:
                return current
        except OSError:
            return None
    return None


def _expose_paths(paths: Sequence[str]) -> str | None:
    """Make ``paths`` reachable for an unprivileged uid (root only, in our mount namespace).

    A folder "others" cannot enter (say /root, 0700) is covered with an empty tmpfs that
    contains only the needed paths, bind-mounted back at the same place: the interpreter
    keeps its paths and the rest of that folder disappears from the kernel's view.
    """
    libc = _libc()
    groups: dict[str, list[str]] = {}
    for path in paths:
        blocked = _blocked_ancestor(path)
        if blocked is not None:
            groups.setdefault(blocked, []).append(path)
    if not groups:
        return None

    def mount(source, target, fstype, mflags, data):
        if libc.mount(source, target, fstype, ctypes.c_ulong(mflags), data) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), target)

    stage = tempfile.mkdtemp(prefix="cnn-grade-stage-")
    try:
        for blocked, inner in sorted(groups.items()):
            staged = []
            for i, path in enumerate(inner):
                spot = os.path.join(stage, f"{len(staged)}-{i}")
                os.mkdir(spot)
                mount(os.fsencode(path), os.fsencode(spot), None, MS_BIND | MS_REC, None)
                staged.append((spot, path))
            mount(b"none", os.fsencode(blocked), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64k,mode=755")
            for spot, path in staged:
                os.makedirs(path, mode=0o755, exist_ok=True)
                mount(os.fsencode(spot), os.fsencode(path), None, MS_MOVE, None)
                os.rmdir(spot)
            mount(None, os.fsencode(blocked), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                  b"size=64k,mode=755")
    except OSError as exc:
        return f"expose {exc}"
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return None


def _set_limits(args) -> None:
    import resource

    def cap(which, value):
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_CORE, 0)
    if args.memory_mb:
        cap(resource.RLIMIT_AS, args.memory_mb * 1024 * 1024)
    if args.cpu_seconds:
        cap(resource.RLIMIT_CPU, args.cpu_seconds)
    if args.file_size_mb:
        cap(resource.RLIMIT_FSIZE, args.file_size_mb * 1024 * 1024)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too-large writes fail, kernel lives
    if args.max_processes:
        cap(resource.RLIMIT_NPROC, args.max_processes)


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(errno.EPERM, "could not drop privileges")
    try:  # regain root must be impossible now
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise OSError(errno.EPERM, "still able to become root after dropping privileges")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlib.grading.autograde.sandbox",
        description="Start a Jupyter kernel with resource limits, as an unprivileged uid, "
        "in a fresh folder, with private course paths hidden and a scrubbed environment.",
    )
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int, default=NOGROUP)
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--expose", action="append", default=[])
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--cpu-seconds", type=int, default=0)
    parser.add_argument("--file-size-mb", type=int, default=0)
    parser.add_argument("--max-processes", type=int, default=0)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("kernel", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kernel = args.kernel[1:] if args.kernel[:1] == ["--"] else args.kernel
    if not kernel:
        parser.error("missing the kernel command after --")

    def fail(message: str) -> int:
        print(f"cnnlib.grading.autograde.sandbox: {message}", file=sys.stderr, flush=True)
        return 70

    env = dict(item.split("=", 1) for item in args.env)
    home = env.get("HOME", args.workdir)
    parent = os.getppid()

    if args.hide or (args.expose and args.uid is not None):
        why = _hide_paths([os.path.abspath(p) for p in args.hide])
        if why:
            print(f"cnnlib.grading.autograde.sandbox: private paths not hidden ({why}); "
                  "relying on file permissions", file=sys.stderr, flush=True)
        elif args.uid is not None and os.geteuid() == 0:
            why = _expose_paths(args.expose)
            if why:
                return fail(f"cannot make Python reachable for uid {args.uid}: {why}")
    try:
        _set_limits(args)
    except (OSError, ValueError) as exc:
        return fail(f"could not set resource limits: {exc}")
    if args.uid is not None and os.geteuid() == 0:
        try:
            _drop_privileges(args.uid, args.gid)
        except OSError as exc:
            return fail(f"could not switch to uid {args.uid}: {exc}")
    # die with the grader (cleared by a uid change, hence set after it)
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        return fail("the grading process is gone")
    try:
        os.chdir(args.workdir)
    except OSError as exc:
        return fail(f"cannot enter {args.workdir}: {exc}")
    # the kernel's own stdout/stderr (crash reports, not cell output) go to a file in its folder
    try:
        fd = os.open(os.path.join(home, KERNEL_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass
    try:
        os.execve(kernel[0] if os.path.isabs(kernel[0]) else shutil.which(kernel[0], path=env.get("PATH")) or kernel[0],
                  kernel, env)
    except OSError as exc:
        return fail(f"cannot start the kernel {kernel[0]!r}: {exc}")
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())

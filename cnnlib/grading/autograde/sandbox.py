"""Run a learner's notebook kernel where the grading secrets are out of reach.

nbgrader runs every submission in an ordinary Jupyter kernel, as the instructor, inside
``autograded/<learner>/<assignment>/``: a learner's code could read the source notebooks (the
hidden tests), the gradebook, or another learner's work, and could write scores. This module
is the kernel launcher the course's grading uses instead (see ``cnnlib.grading.autograde.plugins``):

* the grading side (:class:`Sandbox`, :class:`SandboxKernelManager`) makes a fresh folder of
  its own outside the course root (the connection file and the kernel's log live there, where
  the kernel cannot write), with the kernel's working folder inside on a tmpfs of the learner's
  disk budget, holding a copy of the submission's non-notebook files (never the notebooks: the
  sanitized one carries the hidden tests); it picks an unused uid for the kernel when it runs as
  root, and after the kernel stops kills whatever that uid left behind and unmounts the tmpfs.
  No privileged operation takes a path inside a folder the kernel can write (see
  docs/GRADING.md, "What the grader does as root");
* the launcher (``python -m cnnlib.grading.autograde.sandbox [options] -- KERNEL ARGV``) runs in the
  kernel's process just before the kernel itself: it hides the private course paths in a
  private mount (and IPC) namespace when it can, replaces /tmp, /var/tmp, /dev/shm and every
  other world-writable folder with the sandbox's own, opens the kernel's log, sets resource limits (address space, CPU time, file
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

MS_NOSYMFOLLOW = 0x100
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8
CLONE_NEWIPC = 0x08000000

NOGROUP = 65534
#: The learner's total disk budget (MB) when grading as root: the kernel's folder, HOME, TMPDIR,
#: /tmp, /var/tmp, /dev/shm... all live on one tmpfs of this size (memory, released at the end).
DEFAULT_DISK_MB = 512
INODES_PER_MB = 64
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
        root: the sandbox's own folder (owned by the grader, 0711): it holds ``workdir`` (inside
            ``fs/``), the connection file and the kernel's log. The kernel can write only in
            ``workdir`` and ``fs/tmp``, never in ``root``, so nothing the grader creates or
            reads there can be swapped for a symlink by learner code.
        disk_mb: the learner's total disk budget: ``fs/`` is a tmpfs of this size (root only;
            0 = a plain folder, no budget).
        private_places: world-writable folders (/tmp, /var/tmp, /dev/shm, ...) that the kernel
            sees replaced by ``fs/tmp`` in its mount namespace (root only).
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
    root: str = ""
    disk_mb: int = 0
    private_places: list[str] = field(default_factory=list)
    _lock_fd: int | None = None
    _budget_mount: str | None = None
    _connection_name: str | None = None
    _connections: int = 0
    _sweep: list[str] = field(default_factory=list)

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
        user name or number (e.g. "nobody"), or "" to keep the grader's uid. ``limits`` are the
        fields of the class (``hide``, ``memory_mb``...) plus ``disk_mb`` (the learner's disk
        budget, default ``DEFAULT_DISK_MB``; 0 = no size limit) and ``private_places`` (the
        folders to make private, default :func:`world_writable_places`; [] = none).
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
        disk_mb = limits.pop("disk_mb", None)
        if disk_mb is None:
            disk_mb = DEFAULT_DISK_MB
        places = limits.pop("private_places", None)
        root = tempfile.mkdtemp(prefix="kernel-", dir=base_dir or sandbox_parent())
        os.chmod(root, 0o711 if uid is not None else 0o700)
        fs = os.path.join(root, "fs")
        os.mkdir(fs, 0o711)
        mounted = None
        if uid is not None:
            size = f"size={int(disk_mb)}m,nr_inodes={INODES_PER_MB * int(disk_mb)}," if disk_mb else ""
            mounted = fs if _mount_tmpfs(fs, size + "mode=0711,uid=0,gid=0") else None
        workdir = os.path.join(fs, "work")
        owner = (uid, gid) if uid is not None else None
        try:
            cls._populate(fs, submission_dir, owner)
        except BaseException:  # nothing half-made left behind: no mount, no folder, no lock
            if mounted:
                _unmount(mounted)
            remove_tree(root)
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        if uid is not None:
            limits.setdefault("expose", python_runtime_paths())
            if places is None:
                places = world_writable_places()
        # no tmpfs (root without CAP_SYS_ADMIN: a default Docker container) means no mount
        # namespace for the launcher either: the places stay shared, and what the kernel's uid
        # left in them is swept when the sandbox closes (see close())
        box = cls(workdir=workdir, uid=uid, gid=gid, exclusive_uid=exclusive, root=root,
                  disk_mb=int(disk_mb) if mounted else 0,
                  private_places=list(places or []) if mounted else [], **limits)
        box._lock_fd = lock_fd
        box._budget_mount = mounted
        box._sweep = list(world_writable_places()) if uid is not None and exclusive and not mounted else []
        return box

    @staticmethod
    def _populate(fs: str, submission_dir: str, owner: tuple[int, int] | None) -> None:
        """``fs/work`` (the kernel's folder, with the submission's files, HOME and TMPDIR) and,
        for a kernel of its own uid, ``fs/tmp``; all through descriptors, all handed to ``owner``."""
        root_fd = os.open(fs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            work_fd = _mkdir_at(root_fd, "work", 0o700, owner)
            try:
                copy_submission_files(submission_dir, work_fd, owner=owner)
                home_fd = _mkdir_at(work_fd, "home", 0o700, owner)
                os.close(_mkdir_at(work_fd, "tmp", 0o700, owner))
                try:
                    _seed_matplotlib_cache(home_fd, owner)
                finally:
                    os.close(home_fd)
            finally:
                os.close(work_fd)
            if owner is not None:
                # the kernel's /tmp, /var/tmp, /dev/shm...: root's folder, sticky, on the budget
                os.close(_mkdir_at(root_fd, "tmp", 0o1777, None))
        finally:
            os.close(root_fd)

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
        if self.root:
            argv += ["--log", os.path.join(self.root, KERNEL_LOG)]
        if self.root and self.uid is not None and self.private_places:
            argv += ["--private-tmp", os.path.join(self.root, "fs", "tmp"), "--keep", self.root]
            for path in self.private_places:
                argv += ["--private", path]
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

    def _own_root(self) -> str:
        """The sandbox's grader-owned folder (made on demand for a Sandbox built by hand)."""
        if not self.root:
            self.root = tempfile.mkdtemp(prefix="kernel-", dir=sandbox_parent())
            os.chmod(self.root, 0o711 if self.uid is not None else 0o700)
        return self.root

    def place_connection_file(self, path: str) -> str:
        """Copy the kernel's connection file to where the kernel can read it and nothing else.

        The grader's runtime folder (under its home) is out of the kernel's reach on purpose. The
        copy goes into the sandbox's own folder, which the kernel cannot write: a fresh name on
        every (re)start, created with O_EXCL|O_NOFOLLOW relative to that folder's descriptor and
        handed to the kernel's uid with ``fchown`` on the open file, read-only. Nothing here
        touches a path the learner's code could have planted (issue 10, section 1).
        """
        with open(path, "rb") as src:
            data = src.read()
        dfd = os.open(self._own_root(), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _check_ours(dfd, self.root)
            if self._connection_name:
                try:
                    os.unlink(self._connection_name, dir_fd=dfd)
                except FileNotFoundError:
                    pass
            self._connections += 1
            name = f"connection-{self._connections}.json"
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dfd)
            try:
                os.write(fd, data)
                if self.uid is not None:
                    os.fchown(fd, self.uid, self.gid)
                os.fchmod(fd, 0o400)
            finally:
                os.close(fd)
            self._connection_name = name
        finally:
            os.close(dfd)
        return os.path.join(self.root, name)

    def kernel_log_tail(self, lines: int = 5) -> str:
        """The last lines the kernel process wrote to its own stdout/stderr (not to the notebook).

        The log is in the sandbox's own folder, opened by the launcher before it drops
        privileges and handed to the kernel as its stdout/stderr: the kernel cannot replace it.
        """
        if not self.root:
            return ""
        try:
            fd = os.open(os.path.join(self.root, KERNEL_LOG), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return ""
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return ""
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            text = fh.read().decode("utf-8", "replace")
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
        if self._sweep and self.uid is not None:
            sweep_leftovers(self.uid, self._sweep)
        if self._budget_mount:
            # the learner's files vanish with their tmpfs: nothing to walk, nothing to follow
            _unmount(self._budget_mount)
            self._budget_mount = None
        remove_tree(self.root or self.workdir)
        if self.root and not self.workdir.startswith(self.root.rstrip(os.sep) + os.sep):
            remove_tree(self.workdir)  # a Sandbox built by hand around a folder of its own
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def sandbox_parent() -> str:
    """``$TMPDIR/cnn-grade-sandboxes``: the kernels' folders live here, one per kernel (0700,
    owned by its uid). The parent is 0711: a kernel can enter its own folder but cannot list
    the others, nor anything else in /tmp through ``..``."""
    parent = os.path.join(tempfile.gettempdir(), f"cnn-grade-sandboxes-{os.geteuid()}")
    _private_dir(parent, 0o711, "put sandboxes there")
    return parent


def _private_dir(path: str, mode: int, purpose: str) -> None:
    """Make ``path`` (in a shared folder such as /tmp) or take it if it is our own folder, and
    set its mode on the opened folder: someone else's folder or a symlink is refused."""
    os.makedirs(path, mode=mode, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise RuntimeError(f"{path} is not a folder of ours ({exc}); refusing to {purpose}") from exc
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            raise RuntimeError(f"{path} is not a folder of ours; refusing to {purpose}")
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


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


_LAST_UID: int | None = None


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
    _private_dir(lock_dir, 0o700, "use it")
    global _LAST_UID
    # spread parallel graders apart, and never hand the next learner of this grader the uid the
    # last one had (a file it left anywhere would still be its own)
    if _LAST_UID is not None and lo <= _LAST_UID < hi:
        start = _LAST_UID + 1
    else:
        start = lo + (os.getpid() * 7919) % (hi - lo + 1)
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
                    _LAST_UID = uid
                    return uid, fd
            os.close(fd)
            continue
        _LAST_UID = uid
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


def copy_submission_files(src: str, dest, owner: tuple[int, int] | None = None) -> None:
    """Copy the submission's data files (not notebooks, not symlinks, not its top-level ``home/``
    or ``tmp/``: see ``SANDBOX_OWN_DIRS``) from ``src`` into ``dest`` (a path or a folder's fd).

    The notebooks stay behind: the one being graded has had its hidden tests restored, and the
    kernel receives its cells over the wire anyway. Symlinks are skipped: a learner could point
    one at the gradebook. See :func:`copy_tree_nofollow`.
    """
    def skip(rel: str, name: str, is_dir: bool) -> bool:
        if is_dir:
            return name.startswith(".ipynb_checkpoints") or (rel == "." and name in SANDBOX_OWN_DIRS)
        return name.endswith(".ipynb")

    copy_tree_nofollow(src, dest, owner=owner, skip=skip)


def copy_tree_nofollow(src: str, dest, owner: tuple[int, int] | None = None, skip=None, mode: int = 0o600) -> int:
    """Copy the regular files and folders of ``src`` into ``dest`` (a path, made if needed, or
    a folder's fd) without ever following a symlink; return how many files were copied.

    Every step works on descriptors (``os.fwalk`` without following links, ``O_NOFOLLOW`` opens
    relative to the folder's descriptor, each file checked to be a regular file with a single
    link, created ``O_EXCL``, ``fchown`` on the open file): a folder swapped for a symlink
    halfway through is never followed, on either side. ``skip(rel, name, is_dir)`` leaves out
    entries; ``owner`` (uid, gid) receives everything created.
    """
    if not src or not os.path.isdir(src):
        return 0
    copied = 0
    if isinstance(dest, int):
        dest_fd = dest
    else:
        os.makedirs(dest, mode=0o700, exist_ok=True)
        dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for dirpath, dirnames, filenames, src_fd in os.fwalk(src, follow_symlinks=False):
            rel = os.path.relpath(dirpath, src)
            if skip is not None:
                dirnames[:] = [d for d in dirnames if not skip(rel, d, True)]
            target_fd = _open_dirs_at(dest_fd, rel, owner)
            try:
                for name in filenames:
                    if skip is not None and skip(rel, name, False):
                        continue
                    try:
                        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                                     dir_fd=src_fd)
                    except OSError:  # a symlink (ELOOP), gone, unreadable
                        continue
                    try:
                        st = os.fstat(fd)
                        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:  # no FIFO, device, hard link
                            _copy_fd_to(fd, target_fd, name, mode, owner)
                            copied += 1
                    finally:
                        os.close(fd)
            finally:
                if target_fd != dest_fd:
                    os.close(target_fd)
    finally:
        if not isinstance(dest, int):
            os.close(dest_fd)
    return copied


def _mkdir_at(dir_fd: int, name: str, mode: int, owner: tuple[int, int] | None) -> int:
    """mkdir ``name`` in the folder ``dir_fd`` (or take the existing one) and return its fd;
    a symlink or a file of that name is refused, never followed."""
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        pass
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dirs_at(dir_fd: int, rel: str, owner: tuple[int, int] | None) -> int:
    """The fd of ``rel`` under ``dir_fd``, made as needed, one component at a time."""
    if rel in ("", "."):
        return dir_fd
    fd = dir_fd
    for part in rel.split(os.sep):
        nxt = _mkdir_at(fd, part, 0o700, owner)
        if fd != dir_fd:
            os.close(fd)
        fd = nxt
    return fd


def _copy_fd_to(src_fd: int, dir_fd: int, name: str, mode: int, owner: tuple[int, int] | None) -> None:
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                  dir_fd=dir_fd)
    try:
        while True:
            chunk = os.read(src_fd, 1 << 20)
            if not chunk:
                break
            os.write(out, chunk)
        if owner is not None:
            os.fchown(out, *owner)
    finally:
        os.close(out)


def _seed_matplotlib_cache(home_fd: int, owner: tuple[int, int] | None = None) -> None:
    """Copy the grader's matplotlib font list so each kernel does not rebuild it (seconds)."""
    fd = _open_dirs_at(home_fd, os.path.join(".config", "matplotlib"), owner)
    try:
        try:
            import matplotlib

            cache = matplotlib.get_cachedir()
        except Exception:  # matplotlib missing or unusable: the kernel builds its own cache
            return
        for name in os.listdir(cache) if os.path.isdir(cache) else ():
            if name.startswith("fontlist") and name.endswith(".json"):
                src = os.open(os.path.join(cache, name), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _copy_fd_to(src, fd, name, 0o600, owner)
                finally:
                    os.close(src)
    finally:
        os.close(fd)


def _check_ours(fd: int, path: str) -> None:
    """Refuse a folder that is not the grader's own, or that anyone else may write."""
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise RuntimeError(f"{path} is not a private folder of the grader's; refusing to use it")


def remove_tree(path: str) -> None:
    """Delete a sandbox's folder, learner-owned files and all, without following any symlink.

    ``shutil.rmtree`` walks with descriptors (``openat``/``unlinkat`` with ``O_NOFOLLOW`` and a
    same-inode check) where the platform allows it; a grader running as root refuses to use the
    path-based fallback, which a symlink swapped in between check and use could redirect.
    """
    if not path or not os.path.lexists(path):
        return
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - not on Linux
        raise RuntimeError("this platform's shutil.rmtree can be fooled by symlinks; refusing to "
                           f"delete {path} as root")
    shutil.rmtree(path, ignore_errors=True)


def sweep_leftovers(uid: int, places: Iterable[str]) -> list[str]:
    """Delete what ``uid`` left in the shared writable places and its System V IPC objects;
    return the paths removed. The fallback when the kernel had no private /tmp & co.

    Runs after every process of ``uid`` is dead (nothing can swap a name any more), and still
    works on descriptors only: ``os.fwalk`` without following links, ``unlink``/``rmtree``
    relative to the folder's fd; folders of other owners are entered, never removed.
    """
    removed = []
    for place in places:
        try:
            walker = os.fwalk(place, follow_symlinks=False)
            for dirpath, dirnames, filenames, dir_fd in walker:
                for name in list(dirnames) + filenames:
                    try:
                        st = os.lstat(name, dir_fd=dir_fd)
                    except OSError:
                        continue
                    if st.st_uid != uid:
                        continue
                    try:
                        if stat.S_ISDIR(st.st_mode):
                            dirnames.remove(name)
                            shutil.rmtree(name, dir_fd=dir_fd, ignore_errors=True)
                        else:
                            os.unlink(name, dir_fd=dir_fd)
                        removed.append(os.path.join(dirpath, name))
                    except OSError:
                        pass
        except OSError:
            continue
    libc = _libc()
    for kind, remove in (("shm", lambda i: libc.shmctl(i, 0, None)), ("sem", lambda i: libc.semctl(i, 0, 0)),
                         ("msg", lambda i: libc.msgctl(i, 0, None))):
        try:
            with open(f"/proc/sysvipc/{kind}") as fh:
                lines = fh.readlines()
        except OSError:
            continue
        header = lines[0].split() if lines else []
        if "uid" not in header:
            continue
        for line in lines[1:]:
            cols = line.split()
            if int(cols[header.index("uid")]) == uid:
                remove(int(cols[1]))  # IPC_RMID on the id
                removed.append(f"{kind} {cols[1]}")
    return removed


def _mount_tmpfs(target: str, options: str) -> bool:
    """Mount a fresh tmpfs at ``target`` (the grader's own new folder); False if not allowed."""
    libc = _libc()
    flags = MS_NOSUID | MS_NODEV
    return libc.mount(b"tmpfs", os.fsencode(target), b"tmpfs", ctypes.c_ulong(flags),
                      options.encode()) == 0


def _unmount(target: str) -> None:
    _libc().umount2(os.fsencode(target), MNT_DETACH | UMOUNT_NOFOLLOW)


#: Places every user may write on a usual Linux system, beyond what the scan finds.
KNOWN_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue",
                  "/var/crash", "/var/metrics", "/run/shm")
_PLACES: list[str] | None = None


def world_writable_places(depth: int = 3) -> list[str]:
    """Folders anyone may write (o+w) down to ``depth`` levels under /, plus the usual ones.

    These are where one learner's kernel could leave files for the next: the launcher covers
    each with the sandbox's own ``tmp`` in the kernel's mount namespace. Computed once.
    """
    global _PLACES
    if _PLACES is not None:
        return list(_PLACES)
    found: set[str] = set()

    def consider(path: str) -> None:
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002:
            found.add(os.path.realpath(path))

    for path in KNOWN_WRITABLE:
        consider(path)
    level = ["/"]
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                with os.scandir(folder) as it:
                    entries = [e for e in it if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            for entry in entries:
                if entry.path in ("/proc", "/sys"):
                    continue
                consider(entry.path)
                if entry.path not in found:
                    nxt.append(entry.path)
        level = nxt
    # the outermost only: a place inside another is covered with it
    kept: list[str] = []
    for path in sorted(found):
        if not any(path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    _PLACES = kept
    return list(kept)


_CNNLIB_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python_runtime_paths() -> list[str]:
    """Folders the kernel's Python needs: its prefixes, sys.path, and cnnlib itself.

    The launcher makes these reachable for the unprivileged uid even when they sit in a home
    folder it cannot enter (pyenv or conda under a 0700 home is common).
    """
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    candidates.update(p for p in sys.path if p)
    # the folder holding the cnnlib package (an editable install's checkout): this file is
    # cnnlib/grading/autograde/sandbox.py
    candidates.add(os.path.dirname(_CNNLIB_PACKAGE))
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
    read a file. Only the paths themselves change (a folder without o+x hides its contents). A
    symlink is left alone (never followed), and the mode is changed on the opened inode
    (``fchmod``), not by name. Never pass the nbgrader exchange: learners' own accounts need its
    "other" bits (the sandbox hides it from the kernel in its mount namespace instead).
    """
    changed = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # missing, or a symlink (ELOOP)
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o007:
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o007)
                changed.append(path)
                if log is not None:
                    log.warning("Made %s private (removed permissions for others) so that "
                                "learners' code cannot read it while it is graded", path)
        finally:
            os.close(fd)
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
    # a private System V IPC namespace too (shared memory segments, semaphores, message queues
    # outlive their process: the next learner's kernel would find them); gone with the kernel
    if libc.unshare(flags | CLONE_NEWIPC) != 0 and libc.unshare(flags) != 0:
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


def _mkdirs_nofollow(base_fd: int, rel: str) -> int:
    """Make the folders of ``rel`` under ``base_fd`` as root, one component at a time, refusing
    anything not root's own (a learner's file or symlink of that name); return the last fd."""
    fd = os.dup(base_fd)
    for part in [p for p in rel.split(os.sep) if p]:
        try:
            os.mkdir(part, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        os.close(fd)
        fd = nxt
        st = os.fstat(fd)
        if st.st_uid != 0 or st.st_mode & 0o022:
            os.close(fd)
            raise OSError(errno.EPERM, "not root's own folder", part)
    return fd


def _privatize_places(places: Sequence[str], source: str, keep: Sequence[str]) -> str | None:
    """Cover each world-writable place with the sandbox's own ``tmp`` (root only, in our mount
    namespace); return why not, or None when done.

    ``source`` is a folder of the grader's (root-owned, sticky, on the learner's disk budget), so
    the kernel's /tmp, /var/tmp, /dev/shm... are one private folder that persists across kernel
    restarts and disappears with the sandbox. Paths of ``keep`` below a place (the sandbox
    itself, the Python runtime) are bound back at the same place, through descriptors opened
    before the cover: no path the learner could have planted in ``source`` is followed.
    """
    libc = _libc()

    def mount(src, target, fstype, mflags, data):
        if libc.mount(src, target, fstype, ctypes.c_ulong(mflags), data) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), target)

    try:
        src_fd = os.open(source, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return f"private tmp {exc}"
    st = os.fstat(src_fd)
    if st.st_uid != 0 or stat.S_IMODE(st.st_mode) != 0o1777:
        return f"private tmp {source} is not root's sticky folder"
    done: list[str] = []
    try:
        for place in sorted(dict.fromkeys(os.path.abspath(p) for p in places)):
            if any(place == d or place.startswith(d + os.sep) for d in done):
                continue
            if any(k == place for k in keep) or not os.path.isdir(place) or os.path.islink(place):
                continue
            inner = [k for k in keep if k.startswith(place + os.sep) and os.path.isdir(k)]
            held = [(k, os.open(k, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)) for k in inner]
            try:
                mount(f"/proc/self/fd/{src_fd}".encode(), os.fsencode(place), None, MS_BIND, None)
                mount(None, os.fsencode(place), None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, None)
                place_fd = os.open(place, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    for k, fd in held:
                        spot = _mkdirs_nofollow(place_fd, os.path.relpath(k, place))
                        try:
                            mount(f"/proc/self/fd/{fd}".encode(), f"/proc/self/fd/{spot}".encode(), None,
                                  MS_BIND | MS_REC, None)
                        finally:
                            os.close(spot)
                finally:
                    os.close(place_fd)
            finally:
                for _, fd in held:
                    os.close(fd)
            done.append(place)
    except OSError as exc:
        return f"private tmp {exc}"
    finally:
        os.close(src_fd)
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
    parser.add_argument("--log", help="the kernel's stdout/stderr: opened before dropping privileges")
    parser.add_argument("--private-tmp", help="root's sticky folder to show at every --private place")
    parser.add_argument("--private", action="append", default=[], help="a world-writable place to cover")
    parser.add_argument("--keep", action="append", default=[], help="a path to keep visible under a place")
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

    private_tmp = args.private_tmp and args.private and args.uid is not None and os.geteuid() == 0
    if args.hide or (args.expose and args.uid is not None) or private_tmp:
        why = _hide_paths([os.path.abspath(p) for p in args.hide])
        if why:
            if private_tmp:  # /tmp & co. would be shared with every other learner
                return fail(f"cannot give the kernel private temporary folders: {why}")
            print(f"cnnlib.grading.autograde.sandbox: private paths not hidden ({why}); "
                  "relying on file permissions", file=sys.stderr, flush=True)
        elif args.uid is not None and os.geteuid() == 0:
            why = _expose_paths(args.expose)
            if why:
                return fail(f"cannot make Python reachable for uid {args.uid}: {why}")
            if private_tmp:
                keep = [os.path.abspath(p) for p in args.keep + args.expose]
                why = _privatize_places(args.private, args.private_tmp, keep)
                if why:
                    return fail(f"cannot give the kernel private temporary folders: {why}")
    log_fd = None
    if args.log:  # in the grader's folder, which the kernel cannot write: opened now, handed over
        try:
            log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600)
        except OSError as exc:
            return fail(f"cannot open the kernel's log {args.log}: {exc}")
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
        fd = log_fd if log_fd is not None else os.open(
            os.path.join(home, KERNEL_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
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

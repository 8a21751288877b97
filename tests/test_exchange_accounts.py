"""Issue 10, section 4: a root autograde leaves the nbgrader exchange usable by learners who have
their own Unix accounts.

The instructor (root) releases an assignment through a temporary exchange; a learner with an
account of their own (``nobody``, an unprivileged uid) fetches it and runs ``nbgrader submit``;
root collects and autogrades it with the course's hardened, sandboxed grading; then the learner
submits again and fetches the feedback root released. Before the fix, grading removed the
"other" bits from the exchange's inbound/ and feedback/ and both learner commands failed.

The learner's commands are nbgrader's own CLI run as that uid. The grader's Python may live in a
folder that uid cannot enter (pyenv under /root): the sandbox launcher, which makes the Python
runtime reachable and then drops to the uid, starts them (no mount hides anything else).
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

import course as C

ASSIGNMENT = "01_images_and_kernels"
LEARNER = "nobody"


def _account():
    try:
        return pwd.getpwnam(LEARNER)
    except KeyError:
        return None


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the instructor grades as root, the learner is not root"),
    pytest.mark.skipif(_account() is None, reason=f"needs an unprivileged account named {LEARNER}"),
    pytest.mark.skipif(ASSIGNMENT not in C.assignments(), reason=f"{ASSIGNMENT} not in solutions/"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId"),
    pytest.mark.filterwarnings("ignore:Object of type:sqlalchemy.exc.SAWarning"),
]


def _as_learner(work: Path, logs: Path, exchange: Path, *args: str) -> tuple[int, str]:
    """``nbgrader ARGS`` run by the learner's account in ``work`` (their home and working folder)."""
    from cnnlib.grading.autograde.sandbox import python_runtime_paths

    account = _account()
    log = logs / f"{args[0]}-{len(list(logs.iterdir()))}.log"
    argv = [sys.executable, "-m", "cnnlib.grading.autograde.sandbox", "--workdir", str(work),
            "--uid", str(account.pw_uid), "--gid", str(account.pw_gid), "--log", str(log)]
    for path in python_runtime_paths():
        argv += ["--expose", path]
    env = {"HOME": str(work), "LANG": "C.UTF-8", "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])}
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    argv += ["--", sys.executable, "-m", "nbgrader", *args, "--course=cnn-course",
             f"--Exchange.root={exchange}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stderr + (log.read_text() if log.exists() else "")


def _modes(exchange: Path) -> dict[str, int]:
    course = exchange / "cnn-course"
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [course, *sorted(course.iterdir())]}


@pytest.fixture
def course_with_exchange():
    tmp = Path(tempfile.mkdtemp(prefix="cnn-exchange-"))
    tmp.chmod(0o755)  # like /home or /srv: anyone may pass through
    try:
        course = C.Course(tmp)
        course.config.SandboxedExecute.notebook_timeout = 300
        from nbgrader.apps import NbGraderAPI

        course.api = NbGraderAPI(config=course.config)
        yield course, tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_learner_account_submits_and_fetches_feedback_after_a_root_autograde(course_with_exchange):
    course, tmp = course_with_exchange
    account = _account()
    exchange = Path(course.config.Exchange.root)
    exchange.chmod(0o755)
    logs = tmp / "logs"  # root's: the launcher opens each log before it drops to the learner
    logs.mkdir(mode=0o700)
    work = tmp / "learner"
    work.mkdir(mode=0o700)
    os.chown(work, account.pw_uid, account.pw_gid)

    course.release(ASSIGNMENT)
    result = course.api.release_assignment(ASSIGNMENT)
    assert result["success"], result.get("error", "") + result.get("log", "")
    # feedback/ as nbgrader's release_feedback makes it (0711): there from an earlier assignment
    (exchange / "cnn-course" / "feedback").mkdir(mode=0o711, exist_ok=True)
    (exchange / "cnn-course" / "feedback").chmod(0o711)
    before = _modes(exchange)
    assert set(before) == {"cnn-course", "inbound", "outbound", "feedback"}, before
    assert before["inbound"] & 0o003 == 0o003, f"nbgrader released inbound/ as {oct(before['inbound'])}"

    code, log = _as_learner(work, logs, exchange, "fetch_assignment", ASSIGNMENT)
    assert code == 0, log
    name = C.notebook_names(ASSIGNMENT)[0]
    fetched = work / ASSIGNMENT / name
    assert fetched.exists(), log
    nbformat.write(C.read(C.SOLUTIONS / ASSIGNMENT / name), str(fetched))  # the learner's work
    os.chown(fetched, account.pw_uid, account.pw_gid)
    code, log = _as_learner(work, logs, exchange, "submit", ASSIGNMENT)
    assert code == 0, log

    result = course.api.collect(ASSIGNMENT)
    assert result["success"], result.get("error", "") + result.get("log", "")
    result = course.api.autograde(ASSIGNMENT, LEARNER, force=True, create=True)
    assert result["success"], result.get("error", "") + result.get("log", "")[-3000:]
    assert course.scores(ASSIGNMENT, LEARNER) == course.max_scores(ASSIGNMENT)
    assert _modes(exchange) == before, "autograding changed the exchange's permissions"

    code, log = _as_learner(work, logs, exchange, "submit", ASSIGNMENT)
    assert code == 0, f"the learner can no longer submit after a root autograde:\n{log}"
    for step in (course.api.generate_feedback, course.api.release_feedback):
        result = step(ASSIGNMENT, LEARNER)
        assert result["success"], result.get("error", "") + result.get("log", "")
    code, log = _as_learner(work, logs, exchange, "fetch_feedback", ASSIGNMENT)
    assert code == 0, f"the learner cannot fetch their feedback:\n{log}"
    pages = list((work / ASSIGNMENT / "feedback").glob("*/*.html"))
    assert pages, f"no feedback page fetched:\n{log}"
    assert _modes(exchange) == before


def test_collect_follows_no_symlink_a_learner_account_planted_in_inbound(course_with_exchange):
    """A learner's account writes its folder in inbound/ itself, with symlinks to files only root
    may read: `nbgrader collect` (the course's SymlinkSafeCollect) copies the notebook, not them."""
    from cnnlib.grading.autograde.plugins import SymlinkSafeCollect

    course, tmp = course_with_exchange
    account = _account()
    assert course.config.ExchangeFactory.collect is SymlinkSafeCollect
    course.release(ASSIGNMENT)
    result = course.api.release_assignment(ASSIGNMENT)
    assert result["success"], result.get("error", "") + result.get("log", "")
    secret = tmp / "root-only"
    secret.mkdir(mode=0o700)
    (secret / "id_rsa").write_text("ROOT SECRET KEY\n")
    name = C.notebook_names(ASSIGNMENT)[0]
    stamp = "2026-01-01 00:00:00.000000 UTC"
    sub = Path(course.config.Exchange.root) / "cnn-course" / "inbound" / f"{LEARNER}+{ASSIGNMENT}+{stamp}+x1"
    sub.mkdir()
    nbformat.write(C.read(C.SOLUTIONS / ASSIGNMENT / name), str(sub / name))
    (sub / "timestamp.txt").write_text(stamp)
    (sub / "stolen.txt").symlink_to(secret / "id_rsa")
    (sub / "stolen-folder").symlink_to(secret)
    for path in [sub, *sub.iterdir()]:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    result = course.api.collect(ASSIGNMENT)
    assert result["success"], result.get("error", "") + result.get("log", "")
    submitted = course.root / "submitted" / LEARNER / ASSIGNMENT
    assert (submitted / name).is_file(), sorted(p.name for p in submitted.iterdir())
    names = sorted(p.name for p in submitted.rglob("*"))
    assert "stolen.txt" not in names and "id_rsa" not in names, names
    for path in submitted.rglob("*"):
        assert path.is_dir() or b"ROOT SECRET" not in path.read_bytes(), path

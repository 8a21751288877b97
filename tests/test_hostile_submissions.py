"""Issue 6: one autograde batch survives broken and hostile submissions, and grading stays private.

Every fault of tests/hostile.py is handed in by its own learner, built from the course's real
notebooks, and the whole class is graded in ONE ``nbgrader autograde`` batch (nbgrader's API with
the repo's nbgrader_config.py, as an instructor would run it) beside a correct submission graded
last. Checked through nbgrader's gradebook and the graded notebooks / feedback:

* every learner is graded, the correct one with full marks;
* a fault costs exactly the exercises it breaks (``Fault.lost``), with a reason a human can read;
* the batch ends within the bound the timeouts set;
* the attack reads no secret, writes no score, leaves no process behind.

Cost: the full set of faults runs on ONE assignment, ``FULL``: 02_padding_and_stride, a short
notebook (no training, small loops, ~10 s per run on a busy 2-core box) that the spine owns and
keeps stable, so the expensive faults (two timeouts, three kernel restarts, a 300,000-line flood)
cost little there and the builders' assumptions (four exercises, a setup cell) hold. The structural faults (a duplicated test
cell, which aborts plain nbgrader's batch; invalid JSON; a missing notebook; another assignment's
notebook) run on every other assignment too, in one batch each beside a correct submission.
Timeouts are short here (``Execute.timeout`` = ``CELL_TIMEOUT``), the notebook budget too.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import course as C
import hostile as H

FULL = "02_padding_and_stride"
CORRECT = "zz_correct"  # sorted last: graded after every fault
CELL_TIMEOUT = 10  # s; the slowest correct cell (the imports) takes ~5 s on a busy 2-core box
NOTEBOOK_TIMEOUT = 150  # s per notebook
IOPUB_GRACE = 5  # s nbgrader waits for an interrupted kernel (SandboxedExecute.iopub_timeout)
DISK_MB = 256  # each learner's disk budget here (SandboxedExecute.disk_limit_mb)
#: The exchange as nbgrader's release makes it for a course whose learners have their own accounts.
EXCHANGE_MODES = {"": 0o755, "inbound": 0o2733, "outbound": 0o755, "feedback": 0o711}

pytestmark = [pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId"),
              pytest.mark.filterwarnings("ignore:Object of type:sqlalchemy.exc.SAWarning"),
              pytest.mark.skipif(not C.assignments(), reason="no assignment under solutions/")]


@dataclass
class Batch:
    assignment: str
    ctx: H.Context
    faults: list
    result: dict
    feedback: dict
    seconds: float


def make_course() -> tuple[C.Course, Path]:
    """A throw-away course whose folders are reachable by path for any user (like a real course
    under /home or /srv): the sandbox, not a 0700 temp folder, must keep the secrets."""
    from nbgrader.apps import NbGraderAPI

    from cnnlib.grading.autograde.plugins import harden

    tmp = Path(tempfile.mkdtemp(prefix="cnn-hostile-"))
    tmp.chmod(0o755)
    course = C.Course(tmp)
    cfg = course.config
    harden(cfg)  # what the repo's nbgrader_config.py does (idempotent; checked below)
    cfg.Execute.timeout = CELL_TIMEOUT
    cfg.SandboxedExecute.memory_limit_mb = H.MEMORY_LIMIT_MB
    cfg.SandboxedExecute.notebook_timeout = NOTEBOOK_TIMEOUT
    cfg.SandboxedExecute.iopub_timeout = IOPUB_GRACE
    cfg.SandboxedExecute.disk_limit_mb = DISK_MB
    course.api = NbGraderAPI(config=cfg)
    exchange = Path(cfg.Exchange.root) / cfg.CourseDirectory.course_id
    for sub, mode in EXCHANGE_MODES.items():
        (exchange / sub).mkdir(parents=True, exist_ok=True)
        (exchange / sub).chmod(mode)
    course.canaries = H.canaries(tmp / "grader-files", course.root)
    return course, tmp


@pytest.fixture(scope="session")
def hostile_course():
    course, tmp = make_course()
    yield course
    if not os.environ.get("CNN_HOSTILE_KEEP"):  # set it to inspect the graded course afterwards
        shutil.rmtree(tmp, ignore_errors=True)


def _context(course, assignment: str) -> H.Context:
    name = C.notebook_names(assignment)[0]
    others = [a for a in C.assignments() if a != assignment]
    other = C.read(C.SOLUTIONS / others[0] / C.notebook_names(others[0])[0]) if others else C.read(
        C.SOLUTIONS / assignment / name)
    db = course.config.CourseDirectory.db_url[len("sqlite:///"):]
    return H.Context(assignment=assignment, name=name, source=C.read(C.SOLUTIONS / assignment / name),
                     release=C.read(course.root / "notebooks" / assignment / name), other=other,
                     course_root=course.root, gradebook=Path(db), canary=course.root.parent / "grader-files")


def _grade(course, assignment: str, faults) -> Batch:
    course.generate(assignment)
    ctx = _context(course, assignment)
    for fault in faults:
        H.write(course.root / "submitted" / fault.name / assignment, fault.build(ctx))
    course.submit(assignment, CORRECT, {ctx.name: ctx.source})
    t0 = time.perf_counter()
    result = course.autograde_all(assignment)
    seconds = time.perf_counter() - t0
    feedback = course.generate_feedback(assignment)
    print(f"\n[hostile] {assignment}: {len(faults) + 1} learners graded in {seconds:.0f} s")
    return Batch(assignment, ctx, list(faults), result, feedback, seconds)


@pytest.fixture(scope="session")
def full_batch(hostile_course):
    if FULL not in C.assignments():
        pytest.skip(f"{FULL} not in solutions/")
    return _grade(hostile_course, FULL, H.FAULTS)


@pytest.fixture(scope="session", params=[a for a in C.assignments() if a != FULL])
def structural_batch(request, hostile_course):
    faults = [f for f in H.FAULTS if f.name in H.STRUCTURAL]
    return _grade(hostile_course, request.param, faults)


# ------------------------------------------------------------------------------------------------
# checks shared by both kinds of batch


def _check_batch(course, batch: Batch) -> None:
    assert batch.result["success"], batch.result.get("error", "") + batch.result.get("log", "")[-3000:]
    assert batch.feedback["success"], batch.feedback.get("error", "")
    maxima = course.max_scores(batch.assignment)
    scores = course.scores(batch.assignment, CORRECT)
    assert scores == maxima, f"the correct submission lost points: {scores} vs {maxima}"


def _exercise_scores(course, assignment, student) -> dict[int, tuple[float, float]]:
    scores, maxima = course.scores(assignment, student), course.max_scores(assignment)
    out: dict[int, list[float]] = {}
    for gid, m in maxima.items():
        if m > 0:
            n = C.exercise_of(gid)
            got, top = out.get(n, (0.0, 0.0))
            out[n] = (got + scores[gid], top + m)
    return out


def _reasons(course, batch: Batch, student: str) -> str:
    """Everything a human reads about this learner: notes, outputs, feedback page, log."""
    nb = course.autograded(batch.assignment, student, batch.ctx.name)
    parts = [n["message"] for n in nb.metadata.get("cnnlib_grading", {}).get("notes", [])]
    parts += [C.output_text(c) for c in nb.cells if c.cell_type == "code"]
    parts.append(_text_of_html(course.feedback_html(batch.assignment, student, batch.ctx.name)))
    return "\n".join(parts)


def _check_fault(course, batch: Batch, fault: H.Fault) -> None:
    per_exercise = _exercise_scores(course, batch.assignment, fault.name)
    lost = fault.lost(batch.ctx)
    for n, (got, top) in sorted(per_exercise.items()):
        want = 0 if n in lost else top
        assert got == want, f"{fault.name}: exercise {n} scored {got}/{top}, want {want}"
    assert sum(g for g, _ in per_exercise.values()) < sum(t for _, t in per_exercise.values())
    text = _reasons(course, batch, fault.name)
    assert fault.reason.lower() in text.lower(), f"{fault.name}: no '{fault.reason}' in\n{text[-2000:]}"


def _text_of_html(page: str) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


# ------------------------------------------------------------------------------------------------
# the full set of faults, on FULL


def test_the_project_config_hardens_nbgrader():
    from cnnlib.grading.autograde.plugins import (RecordGradingNotes, SandboxedExecute, SanitizeSubmission,
                                         TolerantNotebookExporter, add_missing_notebooks)

    auto = C.repo_config().Autograde
    assert SanitizeSubmission in auto.sanitize_preprocessors
    assert SandboxedExecute in auto.autograde_preprocessors
    assert RecordGradingNotes in auto.autograde_preprocessors
    assert auto.exporter_class is TolerantNotebookExporter
    assert auto.pre_convert_hook is add_missing_notebooks
    names = {p.__name__ for p in auto.sanitize_preprocessors + auto.autograde_preprocessors}
    assert not names & {"DeduplicateIds", "Execute"}, "nbgrader's originals must be replaced"


def test_full_batch_completes_and_the_correct_learner_gets_full_marks(hostile_course, full_batch):
    _check_batch(hostile_course, full_batch)


@pytest.mark.parametrize("fault", H.FAULTS, ids=lambda f: f.name)
def test_each_fault_is_graded_with_a_reason(hostile_course, full_batch, fault):
    _check_fault(hostile_course, full_batch, fault)


def test_the_batch_ends_within_the_bound_the_timeouts_set(full_batch):
    """A learner costs at most the notebook budget plus one cell's timeout and an interrupt."""
    with_kernel = sum(1 for f in full_batch.faults if f.kernel) + 1
    bound = with_kernel * (NOTEBOOK_TIMEOUT + CELL_TIMEOUT + IOPUB_GRACE)
    assert full_batch.seconds < bound, f"{full_batch.seconds:.0f} s > {bound} s"


def test_feedback_carries_the_reason_and_no_hidden_test(hostile_course, full_batch):
    secrets = C.hidden_lines(full_batch.ctx.source)
    for student in [f.name for f in full_batch.faults] + [CORRECT]:
        page = _text_of_html(hostile_course.feedback_html(full_batch.assignment, student, full_batch.ctx.name))
        assert "HIDDEN TESTS" not in page, student
        leaked = [s for s in secrets if s in page]
        assert not leaked, f"{student}'s feedback shows hidden-test lines: {leaked[:3]}"
    page = _text_of_html(hostile_course.feedback_html(full_batch.assignment, "test_duplicated", full_batch.ctx.name))
    assert "Notes from the autograder" in page and "appears more than once" in page


def _hidden_forms(source) -> set[str]:
    """Every hidden-test line (that appears nowhere else), as written and reversed."""
    secrets = C.hidden_lines(source)
    return secrets | {s[::-1] for s in secrets}


def test_hidden_tests_never_reach_the_kernel_nor_the_feedback(hostile_course, full_batch):
    """Issue 10, section 3: a learner's last cell prints the kernel's linecache, In / _ih and each
    line reversed. The kernel never ran a hidden test, so none of it, in any form, is printed,
    and plain generate_feedback's page shows none."""
    nb = hostile_course.autograded(full_batch.assignment, "leak_hidden_tests", full_batch.ctx.name)
    printed = H.leak_text(nb)
    assert "LEAK END" in printed and "Output limit exceeded" not in printed, printed[-500:]
    # the cell did print what the kernel ran: the visible tests, forwards and backwards
    visible = "grading.check_function(pad2d, F.pad2d, ["
    assert visible in printed and visible[::-1] in printed, "the leaking cell printed no test cell"
    forms = _hidden_forms(full_batch.ctx.source)
    assert forms
    assert not [f for f in forms if f in printed], "the kernel held hidden-test text"
    page = _text_of_html(hostile_course.feedback_html(full_batch.assignment, "leak_hidden_tests",
                                                      full_batch.ctx.name))
    assert "LEAK END" in page
    assert not [f for f in forms if f in page], "hidden-test text in the feedback"


@pytest.mark.parametrize("student", ["patched_isclose", "replaced_check_function", "settrace_rewrites_got"])
def test_attacks_on_the_verdict_win_nothing(hostile_course, full_batch, student):
    """Issue 10, section 2: the attack still works in the learner's own kernel (its visible tests
    pass there), but the verdict comes from the judge: every exercise scores 0, and the correct
    learner graded after it keeps full marks (checked by the batch test)."""
    scores = hostile_course.scores(full_batch.assignment, student)
    assert scores and sum(scores.values()) == 0, scores
    nb = hostile_course.autograded(full_batch.assignment, student, full_batch.ctx.name)
    for cell in C.grade_cells(nb):
        assert any(o.output_type == "error" for o in cell.outputs), C.meta(cell)["grade_id"]


def test_the_attack_reads_no_secret_and_writes_no_score(hostile_course, full_batch):
    nb = hostile_course.autograded(full_batch.assignment, "attack", full_batch.ctx.name)
    results = H.attack_results(nb)
    assert len(results) == H.ATTACK_ATTEMPTS, f"the attack did not run to the end: {results}"
    leaked = {k: v for k, v in results.items() if not v.startswith("blocked")}
    assert not leaked, f"reachable from the grading kernel: {leaked}"
    with hostile_course.api.gradebook as gb:
        for sub in gb.assignment_submissions(full_batch.assignment):
            assert sub.score <= sub.max_score, f"{sub.student.id}: {sub.score} > {sub.max_score}"
        flagged = gb.find_submission_notebook(full_batch.ctx.name[:-6], full_batch.assignment, "attack").flagged
    assert flagged, "tampering code must flag the submission for the instructor's review"


def test_no_learner_process_outlives_grading(hostile_course, full_batch):
    """The attack started `sleep 600` in a session of its own: it died with the kernel's uid."""
    nb = hostile_course.autograded(full_batch.assignment, "attack", full_batch.ctx.name)
    pid = H.attack_stray_pid(nb)
    assert pid, "the attack did not get to start its background process"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return  # gone
    assert cmdline != b"sleep\x00600\x00", f"the learner's process {pid} outlived grading"


# ------------------------------------------------------------------------------------------------
# the file system (issue 10, sections 1 and 4)


def test_planted_symlinks_change_no_grader_file(hostile_course, full_batch):
    """Symlinks to nbgrader_config.py and to a folder of the grader's, planted where the root
    grader used to open, chown and delete (its connection file, the kernel's log, the kernel's
    folder), a process swapping folders and symlinks, a dead kernel: nothing outside changes."""
    for path, state in hostile_course.canaries.items():
        assert H.file_state(path) == state, f"{path} changed: {H.file_state(path)} != {state}"
    nb = hostile_course.autograded(full_batch.assignment, "plant_symlinks", full_batch.ctx.name)
    report = H.printed_json(nb, "PLANTED")
    assert report, "the planting cell did not run"
    planted = report["planted"]
    home = os.path.join(report["cwd"], "home")
    assert planted[os.path.join(home, ".kernel-connection.json")] == "planted", planted
    assert planted[os.path.join(home, "kernel-output.log")] == "planted", planted
    box = os.path.dirname(os.path.dirname(report["cwd"]))
    for name in ("connection-2.json", "kernel-output.log", "fs", "marker"):
        assert planted[os.path.join(box, name)].startswith("blocked"), (name, planted)
    assert "HANDED IN []" in "".join(C.output_text(c) for c in nb.cells if c.cell_type == "code"), \
        "symlinks handed in with the notebook reached the kernel"


def test_no_learner_leaves_files_for_the_next_and_the_disk_budget_holds(hostile_course, full_batch):
    litter = H.printed_json(hostile_course.autograded(full_batch.assignment, "litter", full_batch.ctx.name), "LITTER")
    probe = H.printed_json(hostile_course.autograded(full_batch.assignment, "litter_probe", full_batch.ctx.name),
                           "PROBE")
    assert litter and probe, "the litter or the probe did not run"
    assert litter["uid"] != probe["uid"], "two learners' kernels ran as the same uid"
    # six files of 100 MB in /tmp, /var/tmp, /dev/shm, /run/lock, TMPDIR, HOME, its folder: the
    # budget is for all of them together
    assert 0 < litter["written_mb"] <= DISK_MB, litter
    assert any("No space left" in e for e in litter["errors"]), litter
    assert litter["sysv_shm"] >= 0, "the litter could not even create its shared memory segment"
    assert probe["found"] == [], f"the next learner found the litter's files: {probe['found']}"
    assert probe["sysv_shm"] == -1, "the next learner found the litter's shared memory segment"


def _owned_by(uids: set[int], places) -> list[str]:
    found = []
    for place in places:
        for dirpath, dirnames, filenames in os.walk(place):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    if os.lstat(path).st_uid in uids:
                        found.append(path)
                except OSError:
                    pass
    return found


def test_nothing_is_left_after_grading(hostile_course, full_batch):
    """No file, folder, mount or shared memory segment of the learners' uids outlives grading."""
    reports = [H.printed_json(hostile_course.autograded(full_batch.assignment, student, full_batch.ctx.name), tag)
               for student, tag in (("litter", "LITTER"), ("litter_probe", "PROBE"), ("plant_symlinks", "PLANTED"))]
    uids = {r["uid"] for r in reports}
    assert len(uids) == 3, reports
    left = _owned_by(uids, ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"])
    assert not left, f"left behind: {left[:10]}"
    with open("/proc/sysvipc/shm") as fh:
        segments = [line.split() for line in fh.readlines()[1:]]
    assert not [s for s in segments if int(s[7]) in uids], "a shared memory segment outlived grading"
    with open("/proc/self/mountinfo") as fh:
        mounts = fh.read()
    for report in reports:
        box = os.path.dirname(os.path.dirname(report["cwd"]))
        assert not os.path.lexists(box), f"{box} was not removed"
        assert box not in mounts, f"{box} is still mounted"


def test_grading_leaves_the_exchange_permissions_alone(hostile_course, full_batch):
    exchange = Path(hostile_course.config.Exchange.root) / hostile_course.config.CourseDirectory.course_id
    for sub, mode in EXCHANGE_MODES.items():
        assert stat.S_IMODE((exchange / sub).stat().st_mode) == mode, f"{exchange / sub}: {oct(mode)} changed"


# ------------------------------------------------------------------------------------------------
# each isolation layer on its own (no nbgrader: a kernel or the launcher, a few seconds each)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch needs root")


@pytest.fixture
def secret():
    """A world-readable secret in a folder anyone may enter (as solutions/ in a careless course)."""
    folder = Path(tempfile.mkdtemp(prefix="cnn-secret-"))
    folder.chmod(0o755)
    (folder / "hidden_tests.txt").write_text("assert answer == 42\n")
    (folder / "hidden_tests.txt").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


PROBE = "import os\ntry:\n    print('READ', open({path!r}).read().strip())\nexcept OSError as e:\n    print('BLOCKED', type(e).__name__)\nprint('UID', os.getuid())"


def _run_in_sandbox(box, code: str) -> str:
    import asyncio

    from cnnlib.grading.autograde.sandbox import SandboxKernelManager

    async def run():
        km = SandboxKernelManager(kernel_name="python3")
        km.sandbox = box
        await km.start_kernel(cwd=box.workdir)
        kc = km.client()
        kc.start_channels()
        out = []
        try:
            await kc.wait_for_ready(timeout=60)
            await kc.execute_interactive(code, timeout=60,
                                         output_hook=lambda m: out.append(m["content"].get("text", "")))
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)
        return "".join(out)

    try:
        return asyncio.run(run())
    finally:
        box.close()


@needs_root
def test_uid_switch_and_permissions_alone_keep_a_secret(secret, tmp_path):
    from cnnlib.grading.autograde.sandbox import Sandbox, ensure_private

    target = str(secret / "hidden_tests.txt")
    assert ensure_private([str(secret)]) == [str(secret)]  # what make_private does to solutions/
    # the secret is under /tmp: no private /tmp here, the permissions alone must keep it
    out = _run_in_sandbox(Sandbox.create(str(tmp_path), hide=[], private_places=[]), PROBE.format(path=target))
    assert "BLOCKED PermissionError" in out and "UID 0" not in out, out


@needs_root
def test_mount_namespace_alone_keeps_a_world_readable_secret(secret, tmp_path):
    from cnnlib.grading.autograde.sandbox import Sandbox

    target = str(secret / "hidden_tests.txt")
    out = _run_in_sandbox(Sandbox.create(str(tmp_path), hide=[str(secret)], private_places=[]),
                          PROBE.format(path=target))
    assert "BLOCKED" in out and "READ" not in out, out


@pytest.fixture
def grader_files(tmp_path):
    """A folder and a file of the grader's that a learner's symlinks aim at, and their state."""
    folder = tmp_path / "grader"
    states = H.canaries(folder, tmp_path)
    return folder, states


def _swapping(spot: Path, target: Path):
    """A thread that keeps turning ``spot`` (a folder with a file in it) into a symlink to
    ``target`` and back: a swap between any check of the grader's and its use."""
    import threading

    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                os.rename(spot, spot.with_name(spot.name + ".real"))
                os.symlink(target, spot)
                os.unlink(spot)
                os.rename(spot.with_name(spot.name + ".real"), spot)
            except OSError:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread


@needs_root
def test_copying_the_submission_never_follows_a_swapped_symlink(grader_files, tmp_path):
    from cnnlib.grading.autograde.sandbox import copy_submission_files

    folder, states = grader_files
    src = tmp_path / "submission"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "data.txt").write_text("learner data")
    (src / "linked").symlink_to(folder / "grading.py")
    stop, thread = _swapping(src / "sub", folder)
    try:
        for i in range(200):
            dest = tmp_path / f"dest-{i}"
            dest.mkdir()
            copy_submission_files(str(src), str(dest), owner=(2000009998, 65534))
            copied = {p.name for p in dest.rglob("*")}
            assert "grading.py" not in copied and "linked" not in copied, copied
    finally:
        stop.set()
        thread.join()
    for path, state in states.items():
        assert H.file_state(path) == state, f"{path} changed"


@needs_root
def test_cleanup_never_follows_a_swapped_symlink(grader_files, tmp_path):
    from cnnlib.grading.autograde.sandbox import remove_tree

    folder, states = grader_files
    for i in range(50):
        work = tmp_path / f"work-{i}"
        (work / "d" / "deeper").mkdir(parents=True)
        (work / "d" / "deeper" / "f").write_text("x")
        (work / "link").symlink_to(folder)
        stop, thread = _swapping(work / "d", folder)
        try:
            remove_tree(str(work))
        finally:
            stop.set()
            thread.join()
        remove_tree(str(work))  # whatever the swapper re-created after the first pass
        assert not work.exists()
    for path, state in states.items():
        assert H.file_state(path) == state, f"{path} changed"


@needs_root
def test_the_connection_file_is_out_of_the_kernels_reach(grader_files, tmp_path):
    """Placed (on every restart) in the sandbox's own folder, never in the kernel's HOME, and
    never through a name the kernel could have planted."""
    from cnnlib.grading.autograde.sandbox import Sandbox

    folder, states = grader_files
    source = tmp_path / "conn.json"
    source.write_text('{"key": "k"}')
    box = Sandbox.create(str(tmp_path / "none"), hide=[])
    try:
        home = Path(box.workdir, "home")
        (home / ".kernel-connection.json").symlink_to(folder / "grading.py")
        paths = [Path(box.place_connection_file(str(source))) for _ in range(3)]
        for path in paths[:-1]:
            assert not path.exists(), "the previous connection file must be gone"
        final = paths[-1]
        st, parent = final.lstat(), final.parent.lstat()
        assert final.read_text() == '{"key": "k"}'
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (box.uid, 0o400)
        assert parent.st_uid == 0 and stat.S_IMODE(parent.st_mode) == 0o711, "the kernel must not write there"
        assert not str(final).startswith(box.workdir + os.sep)
    finally:
        box.close()
    assert not Path(box.root).exists()
    for path, state in states.items():
        assert H.file_state(path) == state, f"{path} changed"


def test_make_private_follows_no_symlink(grader_files, tmp_path):
    """`make_private` changes the modes of the course's private paths on the opened inode; a
    private path that is a symlink is left alone, its target untouched."""
    from cnnlib.grading.autograde.sandbox import ensure_private

    folder, states = grader_files
    link = tmp_path / "solutions"
    link.symlink_to(folder)
    real = tmp_path / "autograded"
    real.mkdir(mode=0o755)
    real.chmod(0o755)
    assert ensure_private([str(link), str(real)]) == [str(real)]
    assert stat.S_IMODE(real.stat().st_mode) == 0o750
    for path, state in states.items():
        assert H.file_state(path) == state, f"{path} changed"


LEAVE_BEHIND = """
import ctypes, json, os
tag = 'left-by-%d' % os.getuid()
paths = []
for place in ['/tmp', '/var/tmp', '/dev/shm']:
    path = os.path.join(place, tag)
    with open(path, 'w') as fh:
        fh.write('for the next learner')
    os.chmod(path, 0o666)
    paths.append(path)
os.makedirs('/tmp/%s-dir/deeper' % tag)
open('/tmp/%s-dir/deeper/f' % tag, 'w').close()
os.symlink(GRADER, '/tmp/%s-link' % tag)
paths += ['/tmp/%s-dir' % tag, '/tmp/%s-link' % tag]
shm = ctypes.CDLL(None, use_errno=True).shmget(0, 4096, 0o1000 | 0o666)  # IPC_PRIVATE
print('LEFT ' + json.dumps({'uid': os.getuid(), 'paths': paths, 'shm': shm}))
"""


@needs_root
def test_without_private_mounts_what_a_learner_left_is_swept(grader_files, tmp_path, monkeypatch):
    """Root without CAP_SYS_ADMIN (a default Docker container) gets no tmpfs and no private
    /tmp: the kernel's uid is the learner's alone, and what it left is deleted at the end."""
    import json

    from cnnlib.grading.autograde import sandbox
    from cnnlib.grading.autograde.sandbox import Sandbox

    folder, states = grader_files
    monkeypatch.setattr(sandbox, "_mount_tmpfs", lambda *args: False)
    box = Sandbox.create(str(tmp_path / "none"), hide=[])
    assert box.private_places == [] and "/tmp" in box._sweep
    out = _run_in_sandbox(box, LEAVE_BEHIND.replace("GRADER", repr(str(folder))))
    left = json.loads(out.split("LEFT ", 1)[1].splitlines()[0])
    assert left["uid"] == box.uid and left["shm"] >= 0, out
    assert [p for p in left["paths"] if os.path.lexists(p)] == [], "leftovers survived the sandbox"
    with open("/proc/sysvipc/shm") as fh:
        assert not [ln for ln in fh.readlines()[1:] if int(ln.split()[7]) == box.uid]
    assert not Path(box.root).exists()
    for path, state in states.items():
        assert H.file_state(path) == state, f"{path} changed"


@pytest.mark.parametrize("hide", [False, True], ids=["control", "hidden"])
def test_user_namespace_hides_paths_for_a_non_root_grader(secret, hide):
    """A grader that is not root: the launcher (standard library only) hides the paths in a user +
    mount namespace of its own. Run as an unprivileged uid with the system's Python."""
    import subprocess

    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None or shutil.which("setpriv") is None:
        pytest.skip("needs /usr/bin/python3 and setpriv")
    work = Path(tempfile.mkdtemp(prefix="cnn-launcher-"))  # reachable by the unprivileged uid
    work.chmod(0o777)
    # the clone may sit in a folder that uid cannot enter (a 0700 `mktemp -d`, /root): it runs a
    # copy of the launcher (standard library only), like the system's Python it runs with
    launcher = str(work / "launcher.py")
    shutil.copyfile(Path(__file__).resolve().parents[1] / "cnnlib" / "grading" / "autograde" / "sandbox.py", launcher)
    os.chmod(launcher, 0o644)
    prefix = [] if os.geteuid() != 0 else ["setpriv", "--reuid=2000009999", "--regid=65534", "--clear-groups"]
    argv = prefix + [python, launcher, "--workdir", str(work), "--env", "HOME=" + str(work)]
    if hide:
        argv += ["--hide", str(secret)]
    argv += ["--", python, "-c", PROBE.format(path=str(secret / "hidden_tests.txt"))]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        log = (work / "kernel-output.log").read_text() if (work / "kernel-output.log").exists() else ""
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if hide and "private paths not hidden" in proc.stderr:
        pytest.skip(f"unprivileged user namespaces are not available here: {proc.stderr.strip()}")
    assert ("BLOCKED" in log) == hide and ("READ" in log) == (not hide), (proc.stderr, log)


# ------------------------------------------------------------------------------------------------
# the structural faults, on every other assignment


def test_structural_batch_completes_and_the_correct_learner_gets_full_marks(hostile_course, structural_batch):
    _check_batch(hostile_course, structural_batch)


@pytest.mark.parametrize("fault", [f for f in H.FAULTS if f.name in H.STRUCTURAL], ids=lambda f: f.name)
def test_structural_fault_is_graded_with_a_reason(hostile_course, structural_batch, fault):
    _check_fault(hostile_course, structural_batch, fault)

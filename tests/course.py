"""Shared helpers for the notebook tests: find the assignments, run notebooks, drive nbgrader.

Everything is discovered from ``solutions/``: a new assignment folder is tested without touching
the tests. Conventions (kept by ``scripts/nbbuild.py``):

- ``solutions/NN_name/NN_name.ipynb`` is the source notebook, ``notebooks/NN_name/`` its release;
- an exercise's heading reads ``### Exercise K.N: title (P points)``; its solution cell has
  grade_id ``nbKK_exN_solution`` and its test cell ``nbKK_exN_tests`` worth P points.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
RELEASE = REPO / "notebooks"
TIMEOUT = 120  # per cell, for the tests' own executions (the autograder uses nbgrader_config.py)

HEADING = re.compile(r"^###\s+Exercise\s+(\d+)\.(\d+):\s*(.+?)\s*\((\d+)\s+points?\)\s*$", re.MULTILINE)
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
MIN_SECRET_CHARS = 6  # a hidden-test line shorter than this (")", "])") gives nothing away


def assignments() -> list[str]:
    """Every assignment folder under solutions/ that holds a notebook, sorted."""
    if not SOLUTIONS.is_dir():
        return []
    return sorted(d.name for d in SOLUTIONS.iterdir() if d.is_dir() and any(d.glob("*.ipynb")))


def notebook_names(assignment: str) -> list[str]:
    """The notebook file names (``NN_name.ipynb``) of an assignment."""
    return sorted(p.name for p in (SOLUTIONS / assignment).glob("*.ipynb"))


def read(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_cells(nb: NotebookNode) -> list:
    return [c for c in nb.cells if meta(c).get("grade")]


def solution_cells(nb: NotebookNode) -> list:
    return [c for c in nb.cells if meta(c).get("solution")]


@dataclass(frozen=True)
class Exercise:
    notebook: int  # K in "Exercise K.N"
    number: int  # N
    title: str
    points: int

    @property
    def prefix(self) -> str:
        return f"nb{self.notebook:02d}_ex{self.number}_"


def exercises(nb: NotebookNode) -> list[Exercise]:
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for m in HEADING.finditer(cell.source):
                found.append(Exercise(int(m[1]), int(m[2]), m[3], int(m[4])))
    return found


def exercise_of(grade_id: str) -> int:
    m = re.fullmatch(r"nb\d\d_ex(\d+)_\w+", grade_id)
    if not m:
        raise ValueError(f"grade_id {grade_id!r} does not follow nbKK_exN_...")
    return int(m[1])


def hidden_lines(nb: NotebookNode) -> set[str]:
    """Lines (stripped) of the hidden tests that appear nowhere outside them, not even as part of a
    visible line: the secrets."""
    hidden, visible = set(), set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if BEGIN_HIDDEN in line:
                inside = True
            elif END_HIDDEN in line:
                inside = False
            elif inside:
                hidden.add(s)
            else:
                visible.add(s)
    return {h for h in hidden - visible if len(h) >= MIN_SECRET_CHARS and not any(h in v for v in visible)}


# ------------------------------------------------------------------------------------------------
# running notebooks


def execute(path: Path, timeout: int = TIMEOUT) -> tuple[NotebookNode, float]:
    """Run a notebook top to bottom in its own folder with nbclient; return it and the seconds."""
    from nbclient import NotebookClient

    nb = read(path)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - t0


def errors(nb: NotebookNode) -> list[str]:
    """'cell 12 (nb01_ex1_tests): GradingFailure: ...' for every cell that raised."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {i} ({meta(cell).get('grade_id', '-')}): {out.ename}: {out.evalue}")
    return found


def output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
        elif "data" in out and "text/plain" in out.data:
            parts.append(out.data["text/plain"])
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------
# submissions made from the source and the release


def _replace_solution_region(source: str, replacement: str) -> str:
    """Replace the lines between BEGIN/END SOLUTION (markers included), keeping the indentation."""
    out, inside = [], False
    for line in source.splitlines():
        if BEGIN_SOLUTION in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + r for r in replacement.splitlines())
        elif END_SOLUTION in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _solution_region(source: str) -> str:
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN_SOLUTION in line:
            inside = True
        elif END_SOLUTION in line:
            inside = False
        elif inside:
            lines.append(line)
    return "\n".join(lines)


def submission(source: NotebookNode, release: NotebookNode, solved=(), calls_reference=(),
               fails_hidden=()) -> NotebookNode:
    """A learner's notebook: the release with some exercises' solutions filled in.

    solved: exercise numbers solved correctly (the source's solution region).
    calls_reference: exercises whose solution first calls a cnnlib reference function (the guard
        must refuse it while the exercise is checked).
    fails_hidden: exercises whose solution is right on exactly the arguments of the visible tests
        and raises on any other ("hard-coded the visible answers"; see ``visible_fingerprints``).
    """
    by_id = {meta(c)["grade_id"]: c for c in solution_cells(source)}
    fingerprints = None
    nb = nbformat.from_dict(release)
    for cell in solution_cells(nb):
        gid = meta(cell)["grade_id"]
        n = exercise_of(gid)
        region = _solution_region(by_id[gid].source)
        base = region.splitlines()[0] if region else ""
        indent = base[: len(base) - len(base.lstrip())]

        def dedented(text: str) -> str:
            return "\n".join(line[len(indent):] if line.startswith(indent) else line for line in text.splitlines())

        if n in calls_reference:
            body = "from cnnlib import functional as _cheat\n_cheat.pad2d([[[[0.0]]]], 0)\n" + dedented(region)
        elif n in fails_hidden:
            params = _enclosing_params(by_id[gid].source)
            if params is None:
                raise ValueError(f"{gid}: fails_hidden needs a solution inside a function")
            if fingerprints is None:
                fingerprints = visible_fingerprints(source)
            names = {node for node in _defined_functions(by_id[gid].source)}
            prints = set().union(*(fingerprints.get(name, set()) for name in names)) if names else set()
            body = _visible_only(prints, params) + dedented(region)
        elif n in solved:
            body = dedented(region)
        else:
            continue
        cell.source = _replace_solution_region(by_id[gid].source, body)
    return nb


# "Hard-coded the visible answers": the solution is right exactly on the argument values the
# visible tests pass it (recognised by a fingerprint) and raises on anything else. Hidden tests now
# run outside the learner's kernel (cnnlib/grading/autograde/judge.py), so nothing in the kernel
# can tell a hidden case from a visible one but the values themselves: that is what a learner who
# copied the visible answers would have.
_FINGERPRINT = """\
def _cnn_fingerprint(values):
    import hashlib, numpy
    h = hashlib.sha256()
    for v in values:
        if isinstance(v, numpy.ndarray):
            h.update(f"{v.dtype.str}{v.shape}".encode())
            h.update(numpy.ascontiguousarray(v).tobytes())
        else:
            h.update(repr(v).encode())
        h.update(b"|")
    return h.hexdigest()
"""


def _fingerprint(values) -> str:
    ns: dict = {}
    exec(_FINGERPRINT, ns)
    return ns["_cnn_fingerprint"](values)


def _visible_only(fingerprints: set[str], params: list[str]) -> str:
    """Code for the top of a solution: raise unless the arguments are a visible case's."""
    return (_FINGERPRINT + f"if _cnn_fingerprint([{', '.join(params)}]) not in {sorted(fingerprints)!r}:\n"
            '    raise ValueError("deliberately wrong on the hidden cases")\n')


def _enclosing_params(source: str) -> list[str] | None:
    """Parameters of the function whose body holds the solution region (None: not in a function)."""
    import ast

    line = next((i for i, ln in enumerate(source.splitlines(), 1) if BEGIN_SOLUTION in ln), None)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and line is not None \
                and node.lineno < line <= (node.end_lineno or node.lineno):
            a = node.args
            return [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return None


def _defined_functions(source: str) -> list[str]:
    import ast

    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]


def visible_fingerprints(source: NotebookNode) -> dict[str, set[str]]:
    """Function name -> fingerprints of the arguments the VISIBLE tests pass it (all test cells).

    Runs the source notebook's locked cells, solution cells and the visible part of each test
    cell in this process, every function the solution cells define wrapped by a recorder."""
    import ast
    import contextlib
    import inspect
    import io

    ns: dict = {"__name__": "__main__"}
    seen: dict[str, set[str]] = {}
    defined: set[str] = set()

    def recorder(name, fn):
        sig = inspect.signature(fn)

        def recorded(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            seen.setdefault(name, set()).add(_fingerprint(list(bound.arguments.values())))
            return fn(*args, **kwargs)

        recorded.__name__ = fn.__name__
        recorded._records = True
        return recorded

    for cell in source.cells:
        m = meta(cell)
        if cell.cell_type != "code":
            continue
        if m.get("solution"):
            exec(cell.source, ns)
            defined |= {n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)}
        elif m.get("locked") and not m.get("grade"):
            with contextlib.redirect_stdout(io.StringIO()):
                exec(cell.source, ns)
        elif m.get("grade"):
            for name in defined:
                if callable(ns.get(name)) and not getattr(ns[name], "_records", False):
                    ns[name] = recorder(name, ns[name])
            visible = cell.source.split(BEGIN_HIDDEN)[0]
            # in the solution cells' own namespace: `grading.substitute(globals(), ...)` must
            # reach the functions' globals, as it does in the notebook
            with contextlib.redirect_stdout(io.StringIO()):
                exec(visible, ns)
    return seen


# ------------------------------------------------------------------------------------------------
# nbgrader


def repo_config():
    """The traitlets Config of the repo's nbgrader_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()


def nbgrader_config(course_root: Path, private: Path):
    """The repo's nbgrader_config.py, moved to a temporary course root, gradebook and exchange."""
    cfg = repo_config()
    cfg.CourseDirectory.root = str(course_root)
    cfg.CourseDirectory.db_url = f"sqlite:///{private / 'gradebook.db'}"
    (private / "exchange").mkdir(parents=True, exist_ok=True)
    cfg.Exchange.root = str(private / "exchange")
    cfg.Exchange.cache = str(private / "cache")
    return cfg


def put_venv_on_path() -> None:
    """nbgrader runs `alembic` in a subprocess: the venv's bin/ must be on PATH."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


class Course:
    """A throw-away copy of the course (solutions only) driven through nbgrader's Python API."""

    def __init__(self, tmp: Path):
        from nbgrader.apps import NbGraderAPI

        put_venv_on_path()
        self.root = tmp / "course"
        shutil.copytree(SOLUTIONS, self.root / "solutions")
        self.config = nbgrader_config(self.root, tmp / "private")
        self.api = NbGraderAPI(config=self.config)
        self._generated: set[str] = set()

    def release(self, assignment: str) -> Path:
        """nbgrader generate_assignment (once per assignment); the release folder."""
        folder = self.root / "notebooks" / assignment
        if assignment not in self._generated:
            result = self.api.generate_assignment(assignment, force=True)
            assert result["success"], result.get("error", "") + result.get("log", "")
            self._generated.add(assignment)
        return folder

    generate = release  # the older name, used by tests/test_hostile_submissions.py

    def submit(self, assignment: str, student: str, notebooks: dict[str, NotebookNode]) -> None:
        folder = self.root / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, str(folder / name))

    def autograde_all(self, assignment: str) -> dict:
        """Autograde every submitted student of the assignment in ONE batch."""
        return self.api.autograde(assignment, "*", force=True, create=True)

    def generate_feedback(self, assignment: str) -> dict:
        return self.api.generate_feedback(assignment, force=True)

    def scores(self, assignment: str, student: str) -> dict[str, float]:
        """grade_id -> score for every graded cell of the student's submission."""
        with self.api.gradebook as gb:
            sub = gb.find_submission(assignment, student)
            return {g.name: g.score for nb in sub.notebooks for g in nb.grades}

    def max_scores(self, assignment: str) -> dict[str, float]:
        with self.api.gradebook as gb:
            a = gb.find_assignment(assignment)
            return {g.name: g.max_score for nb in a.notebooks for g in nb.grade_cells}

    def autograded(self, assignment: str, student: str, name: str) -> NotebookNode:
        return read(self.root / "autograded" / student / assignment / name)

    def feedback_html(self, assignment: str, student: str, name: str) -> str:
        path = self.root / "feedback" / student / assignment / (Path(name).stem + ".html")
        return path.read_text(encoding="utf-8")

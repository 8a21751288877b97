"""nbgrader plug-ins that let one broken or hostile submission neither stop nor fool a batch.

Plain ``nbgrader autograde ASSIGNMENT`` stops the whole class on a copy-pasted test cell
(DeduplicateIds empties the copy's metadata, CheckCellMetadata takes that for an old schema and
the converter aborts), loses a learner whose kernel died, and runs every learner's code as the
instructor next to the hidden tests and the gradebook. The course's ``nbgrader_config.py`` calls
:func:`harden`, which swaps in the classes below at nbgrader's own plug-in points:

=============================  ==============================================================
``Autograde.exporter_class``   :class:`TolerantNotebookExporter`: a file that is not a
                               notebook (invalid JSON) or is missing becomes a placeholder
                               graded 0 with the reason, instead of an error
``Autograde.pre_convert_hook`` :func:`add_missing_notebooks`: a submission without one of the
                               assignment's notebooks (or with another assignment's) is graded
``sanitize_preprocessors``     :class:`SanitizeSubmission` replaces ``DeduplicateIds``: rebuilds
                               every cell's nbgrader metadata from the gradebook, drops
                               duplicates and unknown ids cleanly, puts deleted test cells back,
                               notes edited / reordered cells and code that tampers with grading
``autograde_preprocessors``    :class:`SandboxedExecute` replaces ``Execute``: the kernel runs
                               in a sandbox (``cnnlib.grading.autograde.sandbox``), a dead or stuck kernel
                               is restarted and the notebook goes on, output is capped, the
                               notebook has a time budget; the judge's
                               ``HideHiddenTestsFromKernel`` (before) and ``JudgeTests`` (after,
                               ``cnnlib.grading.autograde.judge``) keep hidden tests out of the
                               kernel and decide every test cell outside the learner's reach;
                               :class:`RecordGradingNotes` writes
                               the reasons at the top of the graded notebook (and the feedback)
                               and flags suspicious submissions for review in the gradebook
=============================  ==============================================================

Every reason is also logged as a warning, and kept in the graded notebook's metadata under
``cnnlib_grading`` (``cnn-grade`` reads it for its summary). docs/GRADING.md is the
instructor's guide.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import traceback
from time import monotonic
from typing import Iterable

import nbformat
from nbclient.exceptions import CellControlSignal, CellTimeoutError, DeadKernelError
from nbconvert.exporters import NotebookExporter
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import (
    ClearHiddenTests,
    DeduplicateIds,
    Execute,
    NbGraderPreprocessor,
    SaveAutoGrades,
)
from traitlets import Bool, Integer, List, Unicode, default

from cnnlib.grading.conventions import split_hidden_tests
from cnnlib.grading.autograde.notes import META, add_note, notes_of
from cnnlib.grading.autograde.sandbox import (DEFAULT_DISK_MB, DEFAULT_UID_RANGE, Sandbox, SandboxKernelManager,
                                              ensure_private)

_WARNED: dict[str, bool] = {}


# --------------------------------------------------------------------------------------------
# outputs and folders of the grading run


def _error_output(ename: str, message: str) -> NotebookNode:
    return new_output("error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])


def _coursedir_of(obj):
    """The CourseDirectory of the converter a preprocessor/exporter runs under, if any."""
    seen = 0
    while obj is not None and seen < 10:
        if getattr(obj, "coursedir", None) is not None:
            return obj.coursedir
        obj = getattr(obj, "parent", None)
        seen += 1
    return None


def _canonical_order(coursedir, assignment: str, notebook: str) -> list[str]:
    """grade_ids in the order of the source notebook (or the release one), [] if unreadable."""
    if coursedir is None:
        return []
    for step in (coursedir.source_directory, coursedir.release_directory):
        path = os.path.join(coursedir.format_path(step, ".", assignment), f"{notebook}.ipynb")
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:
            continue
        return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id")]
    return []


# --------------------------------------------------------------------------------------------
# reading: invalid JSON or a missing file becomes a placeholder graded 0


class TolerantNotebookExporter(NotebookExporter):
    """A NotebookExporter for autograding that turns unreadable notebooks into placeholders.

    nbgrader reads each submitted notebook with this exporter. When the file is missing (see
    :func:`add_missing_notebooks`) or is not a usable notebook, it exports an empty notebook
    marked as a placeholder instead of raising; :class:`SanitizeSubmission` fills it with the
    assignment's cells and :class:`SandboxedExecute` grades every test 0 with the reason.
    Only reading is guarded: errors of the preprocessors propagate as usual.
    """

    def from_filename(self, filename, resources=None, **kw):
        if os.path.isfile(filename):
            return super().from_filename(filename, resources=resources, **kw)
        folder = os.path.dirname(filename)
        reason = f"no notebook named {os.path.basename(filename)} was submitted"
        others = sorted(f for f in os.listdir(folder) if f.endswith(".ipynb")) if os.path.isdir(folder) else []
        if others:
            reason += f" (found instead: {', '.join(others)})"
        resources = resources if resources is not None else {}
        resources.setdefault("metadata", {})
        resources["metadata"].update(name=os.path.splitext(os.path.basename(filename))[0],
                                     path=folder, modified_date="")
        return self._placeholder(filename, reason, resources, **kw)

    def from_file(self, file_stream, resources=None, **kw):
        name = getattr(file_stream, "name", "the notebook")
        try:
            nb = nbformat.read(file_stream, as_version=4)
            _check_structure(nb)
        except Exception as exc:  # not JSON, not UTF-8, not a notebook, cells without a type
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            reason = (f"{os.path.basename(str(name))} is not a valid notebook file and could not be "
                      f"read ({type(exc).__name__}: {detail})")
            return self._placeholder(name, reason, resources, **kw)
        return self.from_notebook_node(nb, resources=resources, **kw)

    def _placeholder(self, filename, reason, resources, **kw):
        self.log.warning("Grading a placeholder for %s: %s", filename, reason)
        nb = new_notebook()
        nb.metadata[META] = {"placeholder": reason, "notes": [{"kind": "unreadable", "message": reason}]}
        return self.from_notebook_node(nb, resources=resources, **kw)


def _check_structure(nb: NotebookNode) -> None:
    """Refuse what nbformat reads but the preprocessors would trip over; mend what is harmless."""
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the notebook has no list of cells")
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError(f"cell {i + 1} has no valid cell_type")
        if not isinstance(cell.get("source"), str):
            raise ValueError(f"cell {i + 1} has no source text")
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = NotebookNode()
        if cell.cell_type == "code" and not isinstance(cell.get("outputs"), list):
            cell["outputs"] = []
        if "nbgrader" in cell.metadata and not isinstance(cell.metadata["nbgrader"], dict):
            del cell.metadata["nbgrader"]


def add_missing_notebooks(assignment=None, student=None, notebooks=None, **kwargs) -> None:
    """``Autograde.pre_convert_hook``: make nbgrader grade notebooks a learner did not submit.

    nbgrader lists the notebooks it finds in the submission folder and silently skips unknown
    ones; when the assignment's notebook is absent (forgotten, renamed, or replaced by another
    assignment's) it fails that learner with "No notebooks found". This adds the expected paths
    to nbgrader's own list (the hook receives that list), so the missing notebook is graded as
    a placeholder (0 points, with the reason) by :class:`TolerantNotebookExporter`. It also
    removes symbolic links from the submission: nbgrader would copy the file they point to.
    """
    if not notebooks:
        return
    folder = os.path.dirname(notebooks[0])
    _remove_symlinks(folder)
    notebooks[:] = [nb for nb in notebooks if os.path.exists(nb)]
    for name in _expected_notebooks(folder, _calling_converter()):
        path = os.path.join(folder, f"{name}.ipynb")
        if path not in notebooks:
            notebooks.append(path)
    notebooks.sort()


def _calling_converter():
    """The nbgrader converter running the hook (nbgrader passes it no reference to itself)."""
    import sys

    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if getattr(candidate, "coursedir", None) is not None and hasattr(candidate, "notebooks"):
            return candidate
        frame = frame.f_back
    return None


def _remove_symlinks(folder: str) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                os.unlink(path)


def _expected_notebooks(submission_folder: str, converter) -> list[str]:
    """The assignment's notebook names, from the gradebook of the course being graded."""
    if converter is None:
        return []
    coursedir = converter.coursedir
    assignment = os.path.basename(os.path.normpath(submission_folder))
    try:
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            return [nb.name for nb in gb.find_assignment(assignment).notebooks]
    except Exception:
        return []


# --------------------------------------------------------------------------------------------
# sanitizing: nbgrader metadata rebuilt from the gradebook


SUSPICIOUS = [
    (r"\b_?guard\b|_blocked_for|__wrapped__", "reaches into cnnlib's reference guard"),
    (r"\bgrading\s*\.\s*\w+\s*=|setattr\s*\(\s*grading\b", "replaces a cnnlib.grading helper"),
    (r"\bset_custom_exc\b|\bexcepthook\b|\bshowtraceback\b", "changes how errors are reported"),
    (r"input_transformers|ast_transformers|events\s*\.\s*(register|callbacks)|register_magic"
     r"|\b(pre|post)_run_cell\b|\b(pre|post)_execute\b",
     "changes how later cells are run"),
    (r"\bsys\s*\.\s*(settrace|setprofile|modules\b|path\b|meta_path\b|path_hooks\b)"
     r"|\bbuiltins\b|__builtins__|\bimportlib\b",
     "patches the interpreter"),
    (r"_getframe|\bcurrentframe\b|\bf_(locals|globals|back)\b|\btb_frame\b"
     r"|\binspect\s*\.\s*(stack|trace|getouterframes|unwrap)\b",
     "reads the test's variables (the expected answer) from the call stack"),
    (r"__closure__|cell_contents|__code__|__globals__|__kwdefaults__|\bFunctionType\b",
     "takes functions apart (a way to the reference past the guard)"),
    (r"__array_(function|ufunc|finalize|wrap|prepare|priority)__|__array__\s*\(",
     "overrides how numpy treats its answer (an array that lies about its values)"),
    (r"\bctypes\b|\bgc\s*\.\s*get_(objects|referrers)", "uses low-level interpreter access"),
    (r"(?<![\w.])(exec|eval|compile|__import__)\s*\(|\bbase64\b|\bcodecs\s*\.\s*decode",
     "runs generated code"),
    (r"gradebook|autograded|\bsolutions/|\.nbgrader|nbgrader_config", "looks for grading files"),
]


class SanitizeSubmission(NbGraderPreprocessor):
    """Replaces nbgrader's DeduplicateIds: make any submission safe for the rest of the chain.

    For every cell with nbgrader metadata (the learner can edit it) the metadata is rebuilt
    from the gradebook, so no edited flag, points value or schema version survives:

    * an unknown or empty grade_id (another assignment's cell, a typo) -> plain cell;
    * the same grade_id twice (a copy-pasted cell) -> the last one keeps it, as in nbgrader,
      the others become plain cells (nbgrader leaves them with ``{}``, which CheckCellMetadata
      reads as an old schema and the converter aborts the whole batch);
    * a test or task cell that was deleted is put back after the cell that preceded it in the
      source notebook (tests restored are run; nothing the learner removed can skip a test);
    * locked cells that were edited are reported (OverwriteCells restores them);
    * graded cells moved out of the source notebook's order are reported;
    * learner-written code that tampers with grading is reported for review (see
      ``SUSPICIOUS``; a heuristic, documented in docs/GRADING.md);
    * a notebook with none of the assignment's graded cells (another assignment's notebook)
      becomes a placeholder graded 0.
    """

    scan_suspicious_code = Bool(True, help="Report learner code matching SUSPICIOUS").tag(config=True)

    def preprocess(self, nb, resources):
        notebook_id = resources["nbgrader"]["notebook"]
        assignment_id = resources["nbgrader"]["assignment"]
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source_nb = gb.find_notebook(notebook_id, assignment_id)
            source = {c.name: c for c in source_nb.source_cells}
            graded = {c.name: c for c in source_nb.grade_cells}
            solutions = {c.name for c in source_nb.solution_cells}
            tasks = {c.name: c for c in source_nb.task_cells}
            known = {
                name: dict(cell_type=c.cell_type, locked=bool(c.locked), source=c.source,
                           checksum=c.checksum)
                for name, c in source.items()
            }
            points = {name: float(c.max_score) for name, c in {**graded, **tasks}.items()}
        order = _canonical_order(_coursedir_of(self), assignment_id, notebook_id) or sorted(known)
        order = [name for name in order if name in known] + [n for n in sorted(known) if n not in order]

        def metadata_for(name: str) -> dict:
            meta = {
                "grade": name in graded,
                "grade_id": name,
                "locked": known[name]["locked"],
                "schema_version": 3,
                "solution": name in solutions,
                "task": name in tasks,
            }
            if name in points:
                meta["points"] = points[name]
            return meta

        def restored_cell(name: str) -> NotebookNode:
            info = known[name]
            make = new_code_cell if info["cell_type"] == "code" else new_markdown_cell
            cell = make(source=info["source"])
            cell.metadata["nbgrader"] = metadata_for(name)
            cell.metadata["nbgrader"]["checksum"] = info["checksum"]
            if not (name in solutions):
                cell.metadata["deletable"] = False
                cell.metadata["editable"] = False
            return cell

        placeholder = nb.metadata.get(META, {}).get("placeholder")
        if placeholder:
            nb.cells = [restored_cell(name) for name in order]
            nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                                  "language": "python"})
            return nb, resources

        # 1. rebuild metadata, last occurrence wins
        seen: set[str] = set()
        for cell in reversed(nb.cells):
            if "nbgrader" not in cell.metadata:
                continue
            meta = cell.metadata["nbgrader"]
            name = meta.get("grade_id") if isinstance(meta, dict) else None
            if not name or name not in known:
                del cell.metadata["nbgrader"]
                if name:
                    add_note(nb, "unknown-cell", f"cell '{name}' is not part of {notebook_id}; "
                             "it was run as an ordinary cell", self.log, name)
                continue
            if name in seen:
                del cell.metadata["nbgrader"]
                add_note(nb, "duplicate", f"cell '{name}' appears more than once (copy-pasted?); "
                         "the last copy is graded, the others run as ordinary cells", self.log, name)
                continue
            seen.add(name)
            cell.metadata["nbgrader"] = metadata_for(name)

        if not seen:
            reason = (f"this notebook has none of the graded cells of {notebook_id} "
                      "(a notebook from another assignment?)")
            meta = nb.metadata.setdefault(META, {})
            meta["notes"] = [n for n in meta.get("notes", []) if n["kind"] != "unknown-cell"]
            add_note(nb, "wrong-notebook", reason, self.log)
            nb.metadata[META]["placeholder"] = reason
            nb.cells = [restored_cell(name) for name in order]
            return nb, resources

        # 2. edited locked cells (OverwriteCells puts the original source back). The learner had
        #    the release version: the source without its hidden tests.
        hider = ClearHiddenTests(parent=self)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if not (meta and meta["locked"]):
                continue
            original = known[meta["grade_id"]]["source"]
            handed_out = new_code_cell(source=original)
            hider._remove_hidden_test_region(handed_out)
            if cell.source.strip() not in (handed_out.source.strip(), original.strip()):
                what = "test cell" if meta["grade"] else "read-only cell"
                add_note(nb, "edited", f"{what} '{meta['grade_id']}' was edited; the original "
                         "was restored and graded", self.log, meta["grade_id"])

        # 3. graded cells out of the source order
        present = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        rank = {name: i for i, name in enumerate(order)}
        for earlier, later in zip(present, present[1:]):
            if rank[earlier] > rank[later]:
                add_note(nb, "reordered", f"cell '{earlier}' was moved before '{later}'; the "
                         "notebook was run in the submitted order", self.log, earlier)

        # 4. put back deleted test/task cells (solution and plain cells are the learner's)
        for name in order:
            if name in seen or not (name in graded or name in tasks) or name in solutions:
                continue
            position = 0
            for before in reversed(order[: order.index(name)]):
                idx = next((i for i, c in enumerate(nb.cells)
                            if c.metadata.get("nbgrader", {}).get("grade_id") == before), None)
                if idx is not None:
                    position = idx + 1
                    break
            nb.cells.insert(position, restored_cell(name))
            seen.add(name)
            add_note(nb, "restored", f"test cell '{name}' was missing and has been put back",
                     self.log, name)

        # 5. a hidden-test marker left in an ordinary cell (a pasted copy of a test) would make
        #    the feedback refuse the whole notebook: the markers are comments, neutralize them
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade"):
                continue
            for marker in (hider.begin_test_delimeter, hider.end_test_delimeter):
                if marker in cell.source:
                    cell.source = cell.source.replace(marker, marker.replace("HIDDEN", "hidden"))

        # 6. code that tampers with grading: graded as usual, flagged for a human
        if self.scan_suspicious_code:
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader")
                if cell.cell_type != "code" or (meta and meta["locked"]):
                    continue
                for pattern, what in SUSPICIOUS:
                    match = re.search(pattern, cell.source)
                    if match:
                        where = meta["grade_id"] if meta else "an added cell"
                        add_note(nb, "review", f"code in {where} {what} (`{match.group(0)}`): "
                                 "flagged for review by the instructor", self.log,
                                 meta["grade_id"] if meta else None)
        return nb, resources


# --------------------------------------------------------------------------------------------
# executing: sandboxed, restartable, bounded


class SandboxedExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel that may die, hang or flood without harm.

    * The kernel starts through ``cnnlib.grading.autograde.sandbox``: fresh folder outside the course
      root, scrubbed environment, resource limits, an unprivileged uid when grading as root,
      the course's private paths hidden (see docs/GRADING.md).
    * A kernel that dies (``os._exit``, the memory limit, a crash) or does not stop when
      interrupted after ``timeout`` is recorded as an error in that cell, restarted, the
      learner's earlier non-test cells are replayed to rebuild the state, and grading goes on
      (at most ``max_kernel_restarts`` times; later cells are then recorded as errors).
    * Output beyond ``max_output_bytes`` per cell is dropped and reported on stderr (a test
      cell that floods its output fails).
    * The notebook as a whole gets ``notebook_timeout`` seconds; cells after it are not run and
      are recorded as errors. So a notebook costs at most about
      ``notebook_timeout + timeout + startup_timeout``.
    """

    sandbox = Bool(True, help="Run the kernel through cnnlib.grading.autograde.sandbox").tag(config=True)
    sandbox_user = Unicode(
        "auto",
        help="Uid for the kernel when grading as root: 'auto' (an unused uid of "
        "sandbox_uid_range, one per kernel), a user name such as 'nobody', or '' (keep root: "
        "not recommended)",
    ).tag(config=True)
    sandbox_uid_range = List(Integer(), default_value=list(DEFAULT_UID_RANGE),
                             minlen=2, maxlen=2).tag(config=True)
    sandbox_base_dir = Unicode("", help="Where the kernels' fresh folders go (default: TMPDIR); "
                               "must not be inside the course root").tag(config=True)
    memory_limit_mb = Integer(4096, help="Address-space limit of the kernel (MB, 0 = none)").tag(config=True)
    cpu_limit_seconds = Integer(1800, help="CPU-time limit of the kernel process (0 = none)").tag(config=True)
    file_size_limit_mb = Integer(256, help="Largest file the kernel may write (MB, 0 = none)").tag(config=True)
    disk_limit_mb = Integer(DEFAULT_DISK_MB, help="Total the kernel may write, its folder, /tmp, /var/tmp, "
                            "/dev/shm... together (MB; a tmpfs, so memory; root only; 0 = no "
                            "budget)").tag(config=True)
    max_processes = Integer(256, help="Processes+threads of the kernel's own uid (auto uid only)").tag(config=True)
    blas_threads = Integer(0, help="OMP/OPENBLAS/MKL threads in the kernel (0 = library default)").tag(config=True)
    private_paths = List(Unicode(), help="More paths to hide from the kernel").tag(config=True)
    hide_private_paths = Bool(True, help="Cover private paths in the kernel's mount namespace").tag(config=True)
    make_private = Bool(True, help="Remove 'other' permissions from the course's private paths "
                        "when grading as root, so the kernel's uid cannot read them (never the "
                        "exchange's: learners need them)").tag(config=True)
    max_kernel_restarts = Integer(3).tag(config=True)
    notebook_timeout = Integer(600, help="Seconds for the whole notebook (0 = no limit)").tag(config=True)
    max_output_bytes = Integer(2_000_000, help="Output kept per cell (bytes, 0 = no limit)").tag(config=True)

    @default("iopub_timeout")
    def _iopub_timeout_default(self):
        return 5

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    # ---- setup ------------------------------------------------------------------------------
    def _private_paths(self) -> list[str]:
        """Every path to hide from the kernel: the course's private ones and the exchange's."""
        return self._course_private_paths() + self._exchange_paths()

    def _exchange_paths(self) -> list[str]:
        """The course's folder in the nbgrader exchange. Hidden from the kernel, never chmod'ed:
        learners with their own accounts submit to inbound/ (2733) and fetch from feedback/."""
        cd = _coursedir_of(self)
        course_id = getattr(cd, "course_id", "") if cd is not None else ""
        exchange = self.config.get("Exchange", {}).get("root", None) if self.config else None
        exchange = exchange or "/srv/nbgrader/exchange"
        paths = [os.path.join(exchange, course_id)] if course_id else []
        return [p for p in paths if os.path.lexists(p)]

    def _course_private_paths(self) -> list[str]:
        cd = _coursedir_of(self)
        paths = list(self.private_paths)
        if cd is not None:
            root = os.path.abspath(cd.root)
            for step in (cd.source_directory, cd.submitted_directory, cd.autograded_directory,
                         cd.feedback_directory):
                paths.append(os.path.normpath(os.path.join(root, step)))
            paths += [os.path.join(root, ".git"), os.path.join(root, ".nbgrader.log")]
            url = cd.db_url
            if url.startswith("sqlite:///"):
                db = os.path.abspath(url[len("sqlite:///"):])
                paths += [db, db + "-journal", db + "-wal", db + "-shm"]
        return [p for p in dict.fromkeys(paths) if os.path.lexists(p)]

    def _make_sandbox(self, resources) -> Sandbox | None:
        if not self.sandbox:
            return None
        private = self._private_paths()
        if self.make_private and os.geteuid() == 0 and self.sandbox_user:
            ensure_private(self._course_private_paths(), self.log)  # not the exchange's
        if os.geteuid() != 0 and not _WARNED.get("not root"):
            _WARNED["not root"] = True
            self.log.warning("Grading without root: learners' code runs with your own uid and can "
                             "read what you can. On a shared machine grade in a container as root "
                             "(docs/GRADING.md, 'What you must still do on a shared server').")
        env = {"NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde")}
        if self.blas_threads > 0:
            for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[name] = str(self.blas_threads)
        return Sandbox.create(
            resources.get("metadata", {}).get("path") or os.getcwd(),
            user=self.sandbox_user,
            uid_range=self.sandbox_uid_range,
            base_dir=self.sandbox_base_dir or None,
            hide=private if self.hide_private_paths else [],
            memory_mb=self.memory_limit_mb,
            cpu_seconds=self.cpu_limit_seconds,
            file_size_mb=self.file_size_limit_mb,
            max_processes=self.max_processes,
            disk_mb=self.disk_limit_mb,
            env=env,
        )

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if isinstance(km, SandboxKernelManager):
            km.sandbox = self._sandbox
        return km

    # ---- the notebook -----------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        placeholder = nb.metadata.get(META, {}).get("placeholder")
        if placeholder:
            for cell in nb.cells:
                if utils.is_grade(cell) and cell.cell_type == "code":
                    cell.outputs = [_error_output("NotGraded", placeholder)]
            return nb, resources

        # the same steps as nbconvert's ExecutePreprocessor.preprocess, with a sandbox around
        from nbclient.client import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._restarts = 0
        self._given_up: str | None = None
        self._replayable: list[int] = []
        self._exit_requested = False
        self._out_bytes: dict[int, int] = {}
        self._out_dropped: dict[int, int] = {}
        self._deadline = monotonic() + self.notebook_timeout if self.notebook_timeout > 0 else None
        self._sandbox = self._make_sandbox(resources)
        try:
            with self.setup_kernel():
                info_msg = self.wait_for_reply(self.kc.kernel_info())
                if info_msg is not None:
                    self.nb.metadata["language_info"] = info_msg["content"]["language_info"]
                for index, cell in enumerate(self.nb.cells):
                    self.preprocess_cell(cell, resources, index)
        finally:
            if self._sandbox is not None:
                try:
                    self._sandbox.close()
                except Exception:  # never lose a grade over cleaning up
                    self.log.error("Cleaning up the sandbox failed:\n%s", traceback.format_exc())
                self._sandbox = None
        self.set_widgets_metadata()
        return self.nb, self.resources

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        cell_name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        if self._given_up:
            cell.outputs = [_error_output("NotRun", self._given_up)]
            return cell, resources
        if self._deadline is not None and monotonic() > self._deadline:
            self._given_up = (f"not run: the notebook used up its {self.notebook_timeout} s "
                              "time budget before reaching this cell")
            add_note(self.nb, "notebook-timeout", f"the notebook ran out of its {self.notebook_timeout} s "
                     f"budget at {cell_name}; the remaining cells were not run", self.log)
            cell.outputs = [_error_output("NotRun", self._given_up)]
            return cell, resources

        # the per-cell timeout never runs past the notebook's budget
        saved_timeout = self.timeout
        if self._deadline is not None and self.timeout:
            self.timeout = max(1, min(self.timeout, int(self._deadline - monotonic()) + 1))
        failure = None
        try:
            cell, _ = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            failure = ("KernelDied", "the Python kernel stopped while running this cell "
                       f"({self._exit_description()}). Typical causes: exit() or os._exit(), "
                       f"more memory than the {self.memory_limit_mb} MB limit, a crash in native code. "
                       "The kernel was restarted; the cells above were run again and grading went on.")
        except CellTimeoutError:
            failure = ("CellTimeoutError", f"this cell was still running after {self.timeout} s "
                       "and did not stop when interrupted, so the kernel was restarted; the cells "
                       "above were run again and grading went on.")
        except CellControlSignal:
            raise
        except Exception as exc:  # zmq hiccups, kernel client errors: the kernel is suspect
            self.log.error("Error while running %s:\n%s", cell_name, traceback.format_exc())
            failure = ("GradingError", f"the grader lost contact with the kernel ({type(exc).__name__}: "
                       f"{exc}); the kernel was restarted.")
        finally:
            self.timeout = saved_timeout

        self._finish_outputs(cell, index)
        if failure is None and self._exit_requested:
            failure = ("KernelExit", "this cell called exit() or quit(): the kernel shut down. It was "
                       "restarted; the cells above were run again and grading went on.")
        if failure is not None:
            cell = self.nb.cells[index]
            cell.outputs.append(_error_output(*failure))
            add_note(self.nb, "kernel", f"{cell_name}: {failure[1]}", self.log, cell_name)
            self._recover()
        else:
            self._rename_timeout(cell)
            if any(o.output_type == "error" and o.get("ename") == "MemoryError" for o in cell.outputs):
                limit = f"the kernel's limit is {self.memory_limit_mb} MB" if self.sandbox and \
                    self.memory_limit_mb else "the machine ran out"
                add_note(self.nb, "memory", f"{cell_name}: MemoryError, the code asked for more "
                         f"memory than allowed ({limit})", self.log, cell_name)
            if not utils.is_grade(cell) and not any(o.output_type == "error" for o in cell.outputs):
                self._replayable.append(index)
        return cell, self.resources

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        payload = kwargs["execute_reply"].get("content", {}).get("payload", []) or []
        if any(p.get("source") == "ask_exit" and not p.get("keepkernel") for p in payload):
            self._exit_requested = True  # ipykernel stops a moment after this reply

    # ---- outputs ----------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        if self.max_output_bytes > 0 and msg["msg_type"] in (
            "stream", "display_data", "execute_result", "update_display_data"
        ):
            content = msg["content"]
            size = len(content.get("text", "")) + sum(
                len(v) if isinstance(v, str) else len(json.dumps(v)) for v in content.get("data", {}).values()
            )
            used = self._out_bytes.get(cell_index, 0)
            if used + size > self.max_output_bytes:
                self._out_dropped[cell_index] = self._out_dropped.get(cell_index, 0) + size
                return None
            self._out_bytes[cell_index] = used + size
        return super().output(outs, msg, display_id, cell_index)

    def _finish_outputs(self, cell, index) -> None:
        dropped = self._out_dropped.pop(index, 0)
        self._out_bytes.pop(index, None)
        if dropped:
            cell = self.nb.cells[index]
            text = (f"Output limit exceeded: this cell printed more than {self.max_output_bytes:,} "
                    f"characters; {dropped:,} more were discarded.\n")
            cell.outputs.append(new_output("stream", name="stderr", text=text))
            name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
            add_note(self.nb, "output", f"{name}: output limit exceeded ({dropped:,} characters discarded)",
                     self.log, name)

    def _rename_timeout(self, cell) -> None:
        """nbgrader's timeout message names no limit; say what happened."""
        for out in cell.outputs:
            if out.output_type == "error" and out.get("ename") == "CellTimeoutError":
                message = (f"this cell was stopped after {self.timeout} s, the time limit per cell "
                           "(an endless loop?)")
                out.evalue = message
                out.traceback = [f"CellTimeoutError: {message}"]
                name = cell.metadata.get("nbgrader", {}).get("grade_id") or "a cell"
                add_note(self.nb, "timeout", f"{name}: {message}", self.log, name)

    # ---- recovering from a dead or stuck kernel ----------------------------------------------
    def _exit_description(self) -> str:
        code = None
        try:
            proc = self.km.provisioner.process if self.km and self.km.provisioner else None
            code = proc.poll() if proc is not None else None
        except Exception:
            pass
        if code is None:
            return "it stopped responding"
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def _recover(self) -> None:
        """Restart the kernel and replay the cells that rebuilt its state.

        A replayed cell that stops the kernel again (a delayed exit, say) is dropped from the
        replay and the kernel restarted once more; every restart counts against
        ``max_kernel_restarts``.
        """
        self._exit_requested = False
        while True:
            self._restarts += 1
            if self._restarts > self.max_kernel_restarts:
                self._given_up = (f"not run: the kernel had to be restarted more than "
                                  f"{self.max_kernel_restarts} times")
                add_note(self.nb, "kernel", self._given_up, self.log)
                return
            try:
                self._restart_kernel()
            except Exception as exc:
                self._given_up = f"not run: the kernel could not be restarted ({exc})"
                add_note(self.nb, "kernel", self._given_up, self.log)
                return
            culprit = self._replay()
            if culprit is None:
                return
            self._replayable.remove(culprit)
            add_note(self.nb, "kernel", f"cell {culprit + 1} stopped the kernel again when it was "
                     "re-run after a restart; it was left out", self.log)

    def _replay(self) -> int | None:
        """Re-run the replayable cells silently; return the index of one that broke the kernel."""
        for i in list(self._replayable):
            original = self.nb.cells[i]
            scratch = copy.deepcopy(original)
            try:
                super().preprocess_cell(scratch, self.resources, i)
            except Exception:
                self.log.warning("Re-running cell %d after a restart failed", i + 1)
                return i
            finally:
                self.nb.cells[i] = original
                self._out_bytes.pop(i, None)
                self._out_dropped.pop(i, None)
            if self._exit_requested:
                self._exit_requested = False
                return i
        return None

    def _restart_kernel(self) -> None:
        from jupyter_core.utils import run_sync

        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        run_sync(self.km.shutdown_kernel)(now=True, restart=True)
        if self._sandbox is not None:
            self._sandbox.kill_leftovers()
        run_sync(self.km.start_kernel)(**(self.km._launch_args or {}))
        self.start_new_kernel_client()
        self.wait_for_reply(self.kc.kernel_info())


# --------------------------------------------------------------------------------------------
# after grading: the reasons, where people read them


class RecordGradingNotes(NbGraderPreprocessor):
    """Put the grading notes at the top of the graded notebook (so in the feedback too), and
    flag the submission for review in the gradebook when learner code looked like tampering."""

    def preprocess(self, nb, resources):
        notes = notes_of(nb)
        if not notes:
            return nb, resources
        lines = ["**Notes from the autograder**", ""]
        lines += [f"- {n['message']}" for n in notes]
        cell = new_markdown_cell("\n".join(lines))
        cell.metadata[META] = {"notes_cell": True}
        nb.cells.insert(0, cell)
        if any(n["kind"] == "review" for n in notes):
            info = resources["nbgrader"]
            try:
                with Gradebook(info["db_url"]) as gb:
                    sub = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                    sub.flagged = True
                    gb.db.commit()
            except MissingEntry:
                pass
        return nb, resources


# --------------------------------------------------------------------------------------------
# the config hook


class ScrubHiddenTestsFromOutputs(NbGraderPreprocessor):
    """Remove hidden-test code from a cell's OUTPUTS before feedback is rendered.

    ClearHiddenTests removes the hidden tests from the cell's source, but a traceback in the output
    still quotes the failing line and its neighbours, which may be hidden-test lines. This drops
    every output line that contains a line of the cell's hidden tests (lines of at least
    ``min_chars`` characters: shorter ones such as ")" reveal nothing). Runs before
    ClearHiddenTests in ``GenerateFeedback.preprocessors``.
    """

    min_chars = Integer(6, help="Hidden-test lines shorter than this are not searched for").tag(config=True)
    _ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

    def _scrub(self, text: str, hidden: list[str]) -> str:
        kept, dropped = [], False
        for line in text.split("\n"):
            plain = self._ansi.sub("", line)
            if "HIDDEN TESTS" in plain or any(h in plain for h in hidden):
                if not dropped:
                    kept.append("    [hidden test code not shown]")
                dropped = True
            else:
                kept.append(line)
                dropped = False
        return "\n".join(kept)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or "BEGIN HIDDEN TESTS" not in cell.source:
            return cell, resources
        hidden = [h for h in split_hidden_tests(cell.source)[0] if len(h) >= self.min_chars]
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [self._scrub(t, hidden) for t in out.traceback]
                out.evalue = self._scrub(out.evalue, hidden)
            elif out.output_type == "stream":
                out.text = self._scrub(out.text, hidden)
            elif "data" in out:
                for mime, value in out.data.items():
                    if isinstance(value, str) and mime.startswith("text/"):
                        out.data[mime] = self._scrub(value, hidden)
        return cell, resources


# --------------------------------------------------------------------------------------------
# collecting: the exchange's inbound/ is written by the learners' own accounts


def _collect_base():
    from nbgrader.exchange.default.collect import ExchangeCollect

    return ExchangeCollect


class SymlinkSafeCollect(_collect_base()):
    """nbgrader's collect, copying each submission out of the exchange without following links.

    A learner's account can write its submission folder in ``inbound/`` directly: nbgrader's
    ``shutil.copytree`` (run by the instructor, often root) would copy the *content* of a symlink
    there, say to the solutions or to ``/root/.ssh/id_rsa``, into ``submitted/``, and from there
    into the learner's kernel. This copies regular files only, through descriptors (see
    ``cnnlib.grading.autograde.sandbox.copy_tree_nofollow``: symlinks, hard links, FIFOs and a
    folder swapped for a symlink while it runs are skipped), applying nbgrader's own
    ignore / include / size rules.
    """

    def do_copy(self, src, dest, log=None):
        from nbgrader.utils import ignore_patterns

        from cnnlib.grading.autograde.sandbox import copy_tree_nofollow

        size = self.get_size(src)
        if size > 1000 * self.coursedir.max_dir_size:
            self.log.error("Directory size is too big")
            raise RuntimeError(f"Directory size is too big. Size is {size}, maximum size is "
                               f"{1000 * self.coursedir.max_dir_size}")
        ignore = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                 max_file_size=self.coursedir.max_file_size, log=self.log)

        def skip(rel, name, is_dir):
            return name in ignore(os.path.normpath(os.path.join(src, rel)), [name])

        copy_tree_nofollow(src, dest, skip=skip, mode=0o644)


def _replace(items: Iterable, old, new) -> list:
    out = []
    for item in items:
        name = item if isinstance(item, str) else f"{item.__module__}.{item.__name__}"
        old_name = f"{old.__module__}.{old.__name__}"
        if item is old or name == old_name or name == f"nbgrader.preprocessors.{old.__name__}":
            out.append(new)
        else:
            out.append(item)
    return out


def harden(c) -> None:
    """Make ``nbgrader autograde`` survive broken and hostile submissions (call from the config).

    Swaps nbgrader's DeduplicateIds and Execute for :class:`SanitizeSubmission` and
    :class:`SandboxedExecute` (between the judge's ``HideHiddenTestsFromKernel`` and
    ``JudgeTests``), adds :class:`RecordGradingNotes`, the tolerant exporter and the
    missing-notebook hook, and makes sure the feedback has no hidden tests. Settings already in
    ``c`` (timeouts, limits, other preprocessors) are kept. Idempotent.
    """
    from nbgrader.converters.autograde import Autograde
    from nbgrader.preprocessors import ClearHiddenTests

    auto = c.Autograde
    sanitize = list(auto.sanitize_preprocessors) if "sanitize_preprocessors" in auto else \
        list(Autograde.class_traits()["sanitize_preprocessors"].default())
    sanitize = _replace(sanitize, DeduplicateIds, SanitizeSubmission)
    if SanitizeSubmission not in sanitize:
        sanitize.insert(1, SanitizeSubmission)
    auto.sanitize_preprocessors = sanitize

    run = list(auto.autograde_preprocessors) if "autograde_preprocessors" in auto else \
        list(Autograde.class_traits()["autograde_preprocessors"].default())
    run = _replace(run, Execute, SandboxedExecute)
    # issue 10: the kernel runs the notebook as handed out; the judge decides the test cells
    from cnnlib.grading.autograde.judge import HideHiddenTestsFromKernel, JudgeTests

    if SandboxedExecute in run and JudgeTests not in run:
        at = run.index(SandboxedExecute)
        run[at:at + 1] = [HideHiddenTestsFromKernel, SandboxedExecute, JudgeTests]
    if RecordGradingNotes not in run:
        # after the scores are saved, before the final metadata check
        at = max((i for i, p in enumerate(run) if p is SaveAutoGrades), default=len(run) - 1) + 1
        run.insert(at, RecordGradingNotes)
    auto.autograde_preprocessors = run

    auto.exporter_class = TolerantNotebookExporter
    previous = auto.get("pre_convert_hook", None)
    if getattr(previous, "_cnnlib_hook", False):
        pass  # hardened already, around an instructor's own hook
    elif previous is not None and previous is not add_missing_notebooks:
        def hook(**kwargs):
            add_missing_notebooks(**kwargs)
            prev = previous
            if isinstance(prev, str):
                import importlib

                module, name = prev.rsplit(".", 1)
                prev = getattr(importlib.import_module(module), name)
            prev(**kwargs)

        hook._cnnlib_hook = True
        auto.pre_convert_hook = hook
    else:
        auto.pre_convert_hook = add_missing_notebooks

    if "collect" not in c.ExchangeFactory:  # an instructor's own collect plug-in is kept
        c.ExchangeFactory.collect = SymlinkSafeCollect

    feedback = list(c.GenerateFeedback.preprocessors) if "preprocessors" in c.GenerateFeedback else []
    if feedback and ClearHiddenTests not in feedback:
        feedback.append(ClearHiddenTests)
        c.GenerateFeedback.preprocessors = feedback
    elif not feedback:
        from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
        from nbgrader.preprocessors import GetGrades

        c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, ClearHiddenTests]

"""``cnn-grade``: autograde a whole class through nbgrader, whatever the learners handed in.

Usage::

    cnn-grade ASSIGNMENT [--course-root DIR] [--jobs N] [--timeout SECONDS]

Run it where ``nbgrader autograde`` would run (the course root, holding nbgrader_config.py and
``submitted/<learner>/ASSIGNMENT/``). It drives nbgrader's own machinery (``NbGraderAPI``, the
Autograde and GenerateFeedback converters) with the course's configuration hardened by
:func:`cnnlib.grading.autograde.plugins.harden`, and:

1. makes sure the gradebook knows the assignment (``generate_assignment`` into a temporary
   release folder if it does not: the committed ``notebooks/`` are left alone);
2. grades every learner: a submission folder without any notebook is recorded with 0 and the
   reason; an unreadable notebook, a missing one or another assignment's is graded 0 with the
   reason by the plug-ins; a learner whose grading fails anyway is reported, never blocks the
   others. ``--jobs N`` grades N learners at a time, each in its own process: the scores do not
   depend on N;
3. exports the grades with nbgrader's CSV exporter to ``grades/ASSIGNMENT.csv`` and a summary
   with the reasons to ``grades/ASSIGNMENT-summary.csv`` (instructor-private, like gradebook.db);
4. generates the feedback, and withholds any feedback page that would show a hidden test;
5. prints a table: learner, score / max, and the reason for any fault.

Exit status: 0 when every learner was graded (faulty submissions included), 1 when some learner
could not be graded or their feedback was withheld, 2 for a usage or configuration error.
docs/GRADING.md is the instructor's guide.
"""

from __future__ import annotations

import argparse
import csv
import glob
import html
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Sequence

REASON_WIDTH = 100
#: The order in which a learner's grading notes are listed (the first one is in the table).
PRIORITY = {kind: i for i, kind in enumerate([
    "unreadable", "wrong-notebook", "review", "kernel", "timeout", "notebook-timeout", "memory",
    "output", "restored", "duplicate", "edited", "reordered", "unknown-cell",
])}


@dataclass
class Outcome:
    """What happened to one learner."""

    learner: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"  # graded | no notebook | error | feedback withheld
    reasons: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("graded", "no notebook")


# ------------------------------------------------------------------------------------------------
# configuration


def load_config(course_root: str, timeout: int | None = None, blas_threads: int = 0):
    """The course's nbgrader_config.py (if any), rooted at ``course_root`` and hardened."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    from cnnlib.grading.autograde.plugins import harden

    path = os.path.join(course_root, "nbgrader_config.py")
    cfg = PyFileConfigLoader("nbgrader_config.py", path=course_root).load_config() \
        if os.path.isfile(path) else Config()
    cfg.CourseDirectory.root = course_root
    harden(cfg)
    if timeout:
        cfg.Execute.timeout = timeout
    if blas_threads:
        cfg.SandboxedExecute.blas_threads = blas_threads
    return cfg


def _api(cfg):
    from nbgrader.apps import NbGraderAPI

    _venv_on_path()
    cfg.NbGraderAPI.log_level = "WARN"  # nbgrader's chatter off; warnings carry the reasons
    return NbGraderAPI(config=cfg)


def _venv_on_path() -> None:
    """nbgrader runs `alembic` in a subprocess: this Python's bin/ must be on PATH."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


# ------------------------------------------------------------------------------------------------
# the steps


def ensure_in_gradebook(cfg, assignment: str) -> None:
    """Add the assignment to the gradebook from the source notebooks, if it is not there yet."""
    from nbgrader.api import MissingEntry

    api = _api(cfg)
    with api.gradebook as gb:
        try:
            if gb.find_assignment(assignment).notebooks:
                return
        except MissingEntry:
            pass
    source = api.coursedir.format_path(api.coursedir.source_directory, ".", assignment)
    if not glob.glob(os.path.join(source, "*.ipynb")):
        raise SystemExit(f"cnn-grade: no assignment {assignment!r}: nothing in {source}")
    tmp = tempfile.mkdtemp(prefix="cnn-grade-release-")
    try:
        from traitlets.config import Config

        override = Config()
        override.merge(cfg)
        override.CourseDirectory.release_directory = tmp  # absolute: notebooks/ stays untouched
        result = _api(override).generate_assignment(assignment, force=True)
        if not result["success"]:
            raise SystemExit(f"cnn-grade: could not add {assignment} to the gradebook:\n"
                             f"{result.get('error') or result.get('log')}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def submitted_learners(cfg, assignment: str) -> list[str]:
    api = _api(cfg)
    pattern = api.coursedir.format_path(api.coursedir.submitted_directory, "*", assignment)
    regexp = api.coursedir.format_path(api.coursedir.submitted_directory, "(?P<learner>[^/]+)",
                                       re.escape(assignment), escape=True)
    found = []
    for folder in glob.glob(pattern):
        m = re.fullmatch(regexp, folder)
        if m and os.path.isdir(folder):
            found.append(m["learner"])
    return sorted(found)


def _grade_one(cfg, assignment: str, learner: str) -> Outcome:
    """Autograde one learner with nbgrader (runs in a worker process when --jobs > 1)."""
    api = _api(cfg)
    folder = api.coursedir.format_path(api.coursedir.submitted_directory, learner, assignment)
    if not glob.glob(os.path.join(folder, "*.ipynb")):
        _record_zero(api, assignment, learner)
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        what = f" (found: {', '.join(names[:5])})" if names else " (the folder is empty)"
        return Outcome(learner, status="no notebook", reasons=[f"no notebook submitted{what}"])
    result = api.autograde(assignment, learner, force=True, create=True)
    log = (result.get("log") or "") + (result.get("error") or "")
    if not result["success"]:
        return Outcome(learner, status="error", reasons=[_last_error(log)], log=log)
    return Outcome(learner, log=log)


def _worker(args):
    course_root, timeout, blas, assignment, learner = args
    return _grade_one(load_config(course_root, timeout, blas), assignment, learner)


def _record_zero(api, assignment: str, learner: str) -> None:
    """A learner who handed in no notebook: a submission with every grade 0, as nbgrader does
    for a missing notebook of a multi-notebook assignment."""
    with api.gradebook as gb:
        gb.update_or_create_student(learner)
        sub = gb.update_or_create_submission(assignment, learner)
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return f"grading error: {line[:300]}"
    return "grading error (see the log)"


def grade_all(cfg, course_root: str, assignment: str, learners: Sequence[str], jobs: int,
              timeout: int | None) -> list[Outcome]:
    if jobs <= 1 or len(learners) <= 1:
        return [_grade_one(cfg, assignment, learner) for learner in learners]
    # one process per learner at a time: nbgrader changes the working directory and keeps
    # module state, so threads would not do; BLAS gets one thread per job (no oversubscription).
    args = [(course_root, timeout, 1, assignment, learner) for learner in learners]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        outcomes = list(pool.map(_worker, args))
    # SQLite may refuse a write while another process holds the gradebook: grade those again
    for i, outcome in enumerate(outcomes):
        if outcome.status == "error" and "database" in outcome.log.lower():
            outcomes[i] = _grade_one(cfg, assignment, outcome.learner)
    return outcomes


def collect_scores_and_reasons(cfg, assignment: str, outcomes: list[Outcome]) -> None:
    import nbformat
    from nbgrader.api import MissingEntry

    from cnnlib.grading.autograde.notes import notes_of

    api = _api(cfg)
    with api.gradebook as gb:
        expected = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        max_score = gb.find_assignment(assignment).max_score
        for outcome in outcomes:
            outcome.max_score = max_score
            try:
                sub = gb.find_submission(assignment, outcome.learner)
            except MissingEntry:
                continue
            outcome.score = sub.score
            if outcome.status != "graded":
                continue
            for name in expected:
                path = os.path.join(api.coursedir.format_path(
                    api.coursedir.autograded_directory, outcome.learner, assignment), f"{name}.ipynb")
                try:
                    nb = nbformat.read(path, as_version=4)
                except Exception:
                    continue
                notes = sorted(notes_of(nb), key=lambda n: PRIORITY.get(n["kind"], len(PRIORITY)))
                outcome.reasons += [n["message"] for n in notes]
            if any(nb.flagged for nb in sub.notebooks):
                outcome.reasons.insert(0, "FLAGGED FOR REVIEW (see the notes)")


def export_csv(cfg, assignment: str, outcomes: list[Outcome], folder: str) -> tuple[str, str]:
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o700)  # grades are private
    grades = os.path.join(folder, f"{assignment}.csv")
    api = _api(cfg)
    plugin = CsvExportPlugin(parent=api)
    plugin.to = grades
    plugin.assignment = [assignment]
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        plugin.export(gb)
    summary = os.path.join(folder, f"{assignment}-summary.csv")
    with open(summary, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["learner", "score", "max_score", "status", "reasons"])
        for o in outcomes:
            writer.writerow([o.learner, _num(o.score), _num(o.max_score), o.status, " | ".join(o.reasons)])
    return grades, summary


def generate_feedback(cfg, assignment: str, outcomes: list[Outcome]) -> None:
    """nbgrader's feedback for every graded learner; a page showing a hidden test is removed."""
    api = _api(cfg)
    secrets = hidden_test_lines(api, assignment)
    for o in outcomes:
        if o.status != "graded":
            continue
        result = api.generate_feedback(assignment, o.learner, force=True)
        if not result["success"]:
            o.reasons.append("feedback not generated: " + _last_error(result.get("log", "") +
                                                                       result.get("error", "")))
            o.status = "feedback withheld"
            continue
        folder = api.coursedir.format_path(api.coursedir.feedback_directory, o.learner, assignment)
        for page in glob.glob(os.path.join(folder, "*.html")):
            with open(page, encoding="utf-8") as fh:
                text = _visible_text(fh.read())
            shown = [s for s in secrets if s in text] + (["HIDDEN TESTS"] if "HIDDEN TESTS" in text else [])
            if shown:
                os.remove(page)
                o.status = "feedback withheld"
                o.reasons.append(f"feedback {os.path.basename(page)} withheld: it showed hidden "
                                 f"tests ({shown[0][:40]!r}...)")


def hidden_test_lines(api, assignment: str, min_chars: int = 6) -> set[str]:
    """Lines of the source notebooks' hidden tests that appear nowhere else in them (the
    feedback pages are searched for these: what ClearHiddenTests must have removed)."""
    import nbformat

    from cnnlib.grading.conventions import split_hidden_tests

    hidden, visible = set(), set()
    source = api.coursedir.format_path(api.coursedir.source_directory, ".", assignment)
    for path in glob.glob(os.path.join(source, "*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            cell_hidden, cell_visible = split_hidden_tests(cell.source)
            hidden.update(cell_hidden)
            visible.update(cell_visible)
    # a hidden line that is part of a visible one ("mistakes=m)" in "], mistakes=m)") is no secret
    return {s for s in hidden - visible
            if len(s) >= min_chars and not any(s in v for v in visible)}


def _visible_text(page: str) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _num(x: float) -> str:
    return f"{x:g}"


def summary_table(outcomes: list[Outcome]) -> str:
    width = max([len("learner")] + [len(o.learner) for o in outcomes])
    lines = [f"{'learner':<{width}}  {'score':>13}  reason", f"{'-' * width}  {'-' * 13}  {'-' * 6}"]
    for o in outcomes:
        score = f"{_num(o.score)} / {_num(o.max_score)}"
        reason = ""
        if o.reasons:
            reason = o.reasons[0]
            if len(reason) > REASON_WIDTH:
                reason = reason[: REASON_WIDTH - 3] + "..."
            if len(o.reasons) > 1:
                reason += f"  (+{len(o.reasons) - 1} more)"
        if o.status not in ("graded",):
            reason = f"[{o.status}] {reason}"
        lines.append(f"{o.learner:<{width}}  {score:>13}  {reason}".rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cnn-grade",
        description="Autograde every submission of an assignment with nbgrader, survive broken "
        "and hostile notebooks, export grades to CSV, generate feedback without hidden tests, "
        "and print a summary.",
    )
    parser.add_argument("assignment", help="assignment name, e.g. 01_images_and_kernels")
    parser.add_argument("--course-root", default=os.getcwd(),
                        help="the course folder holding nbgrader_config.py and submitted/ (default: .)")
    parser.add_argument("--jobs", type=int, default=1, help="learners graded in parallel (default 1)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell timeout in seconds (default: Execute.timeout of the config)")
    parser.add_argument("--no-feedback", action="store_true", help="do not generate feedback")
    args = parser.parse_args(argv)

    course_root = os.path.abspath(args.course_root)
    if not os.path.isdir(course_root):
        print(f"cnn-grade: no course folder {course_root}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        cfg = load_config(course_root, args.timeout)
        ensure_in_gradebook(cfg, args.assignment)
        learners = submitted_learners(cfg, args.assignment)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    if not learners:
        print(f"cnn-grade: nobody submitted {args.assignment} (nothing under submitted/*/{args.assignment})",
              file=sys.stderr)
        return 2

    print(f"Grading {len(learners)} learner(s) of {args.assignment} ({max(1, args.jobs)} at a time)...",
          flush=True)
    outcomes = grade_all(cfg, course_root, args.assignment, learners, args.jobs, args.timeout)
    collect_scores_and_reasons(cfg, args.assignment, outcomes)
    if not args.no_feedback:
        generate_feedback(cfg, args.assignment, outcomes)
    grades, summary = export_csv(cfg, args.assignment, outcomes, os.path.join(course_root, "grades"))

    print()
    print(summary_table(outcomes))
    print()
    print(f"Grades: {grades}\nSummary with reasons: {summary}")
    if not args.no_feedback:
        print(f"Feedback: {os.path.join(course_root, 'feedback')}/<learner>/{args.assignment}/")
    print(f"{len(outcomes)} learner(s) in {time.perf_counter() - start:.0f} s")
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"\n--- {o.learner}: {o.status} ---\n{o.log[-3000:] or ' | '.join(o.reasons)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

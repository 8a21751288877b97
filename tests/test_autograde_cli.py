"""``cnn-grade`` and plain ``nbgrader autograde`` on one class folder (issue 6, docs/GRADING.md).

One temporary course, laid out as an instructor's (nbgrader_config.py copied from the repo at its
root, ``submitted/<learner>/ASSIGNMENT/``), holds a small class of ``ASSIGNMENT``:

===============  ==============================================================================
correct          the source notebook: full marks
dup_partial      exercise 1's solution emptied, its test cell copy-pasted (the duplicate that
                 makes plain nbgrader abort the batch): loses exactly exercise 1
invalid_json     a truncated upload: 0, "not a valid notebook file"
copy_named       the notebook saved as "...-Copy1.ipynb": 0, "no notebook named"
other_notebook   another assignment's notebook under this name: 0, "none of the graded cells"
empty_folder     a folder without any notebook: 0 (cnn-grade records it; nbgrader skips it)
===============  ==============================================================================

First ``cnn-grade ASSIGNMENT --jobs 2`` grades them (the gradebook does not know the assignment
yet: cnn-grade adds it without touching notebooks/); then plain ``nbgrader autograde ASSIGNMENT``
(a subprocess, the project's config read from the current directory, as an instructor runs it)
grades them again and must agree learner by learner.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import course as C
import hostile as H

ASSIGNMENT = "02_padding_and_stride"
CELL_TIMEOUT = 10

pytestmark = [pytest.mark.filterwarnings("ignore::nbformat.warnings.DuplicateCellId"),
              pytest.mark.filterwarnings("ignore:Object of type:sqlalchemy.exc.SAWarning"),
              pytest.mark.skipif(ASSIGNMENT not in C.assignments(), reason=f"no {ASSIGNMENT}")]

EXPECTED = {  # learner -> (exercises lost, words of the reason)
    "correct": (set(), ""),
    "dup_partial": ({1}, "appears more than once"),
    "invalid_json": ("all", "not a valid notebook file"),
    "copy_named": ("all", "no notebook named"),
    "other_notebook": ("all", "none of the graded cells"),
    "empty_folder": ("all", "no notebook submitted"),
    # issue 10: attacks on the verdict and on the hidden tests (the summary's reasons are the
    # grading notes; the failed tests' messages are in the feedback)
    "patched_isclose": ("all", ""),
    "replaced_check_function": ("all", ""),
    "settrace_rewrites_got": ("all", "flagged for review"),
    "leak_hidden_tests": ({1}, ""),
}


@pytest.fixture(scope="session")
def class_folder():
    tmp = Path(tempfile.mkdtemp(prefix="cnn-grade-cli-"))
    tmp.chmod(0o755)
    root = tmp / "course"
    (root / "solutions").mkdir(parents=True)
    for assignment in C.assignments():
        shutil.copytree(C.SOLUTIONS / assignment, root / "solutions" / assignment)
    config = (C.REPO / "nbgrader_config.py").read_text()
    config += f"""
# --- test overrides (tests/test_autograde_cli.py) ---
c.Exchange.root = {str(tmp / 'exchange')!r}
c.Exchange.cache = {str(tmp / 'cache')!r}
c.Execute.timeout = {CELL_TIMEOUT}
c.SandboxedExecute.memory_limit_mb = {H.MEMORY_LIMIT_MB}
"""
    (root / "nbgrader_config.py").write_text(config)
    (tmp / "exchange").mkdir()

    name = C.notebook_names(ASSIGNMENT)[0]
    source = C.read(C.SOLUTIONS / ASSIGNMENT / name)
    other = next(a for a in C.assignments() if a != ASSIGNMENT)
    ctx = H.Context(assignment=ASSIGNMENT, name=name, source=source, release=C.read(C.RELEASE / ASSIGNMENT / name),
                    other=C.read(C.SOLUTIONS / other / C.notebook_names(other)[0]),
                    course_root=root, gradebook=root / "gradebook.db")
    prefix = ctx.prefix(1)
    partial = H.duplicate_cell(H.blank_solution(H.handed_out(source), prefix + "solution"), prefix + "tests")
    learners = {
        "correct": {name: source},
        "dup_partial": {name: partial},
        "invalid_json": H.invalid_json(ctx),
        "copy_named": H.missing_notebook(ctx),
        "other_notebook": H.other_assignment(ctx),
        "empty_folder": {"README.txt": b"I could not make it work, sorry\n"},
        "patched_isclose": H.patched_isclose(ctx),
        "replaced_check_function": H.replaced_check_function(ctx),
        "settrace_rewrites_got": H.settrace_rewrites_got(ctx),
        "leak_hidden_tests": H.leak_hidden_tests(ctx),
    }
    for learner, files in learners.items():
        H.write(root / "submitted" / learner / ASSIGNMENT, files)
    yield root
    if not os.environ.get("CNN_HOSTILE_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def cnn_grade(class_folder):
    """``cnn-grade ASSIGNMENT --course-root ROOT --jobs 2``: exit status and printed summary."""
    from cnnlib.grading.autograde.cli import main

    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        status = main([ASSIGNMENT, "--course-root", str(class_folder), "--jobs", "2"])
    text = out.getvalue()
    print(text)
    return status, text


def _summary_rows(root: Path) -> dict[str, dict]:
    with open(root / "grades" / f"{ASSIGNMENT}-summary.csv", newline="") as fh:
        return {row["learner"]: row for row in csv.DictReader(fh)}


def _per_exercise(root: Path) -> dict[str, dict[int, float]]:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(ASSIGNMENT):
            scores: dict[int, float] = {}
            for nb in sub.notebooks:
                for g in nb.grades:
                    scores[C.exercise_of(g.name)] = scores.get(C.exercise_of(g.name), 0) + g.score
            out[sub.student.id] = scores
    return out


def test_cnn_grade_grades_everyone_and_exits_0(cnn_grade, class_folder):
    status, text = cnn_grade
    assert status == 0, text
    for learner in EXPECTED:
        assert re.search(rf"^{learner}\s+\d", text, re.M), f"{learner} missing from the summary:\n{text}"


def test_summary_gives_scores_and_reasons(cnn_grade, class_folder):
    rows = _summary_rows(class_folder)
    assert set(rows) == set(EXPECTED)
    top = float(rows["correct"]["max_score"])
    assert float(rows["correct"]["score"]) == top and rows["correct"]["reasons"] == ""
    scores = _per_exercise(class_folder)
    for learner, (lost, reason) in EXPECTED.items():
        row = rows[learner]
        assert reason.lower() in row["reasons"].lower(), (learner, row)
        if lost == "all":
            assert float(row["score"]) == 0, row
        elif lost:
            assert 0 < float(row["score"]) < top, row
            assert all(scores[learner][n] == 0 for n in lost), scores[learner]
    # the printed table says the same
    text = cnn_grade[1]
    assert re.search(r"^correct\s+(\S+) / \1\s*$", text, re.M), text
    assert re.search(r"^empty_folder\s+0 / \S+\s+\[no notebook\] no notebook submitted", text, re.M), text


def test_grades_csv_is_nbgraders_export(cnn_grade, class_folder):
    with open(class_folder / "grades" / f"{ASSIGNMENT}.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(EXPECTED)
    assert float(rows["correct"]["score"]) == float(rows["correct"]["max_score"]) > 0
    assert float(rows["empty_folder"]["score"]) == 0
    assert oct((class_folder / "grades").stat().st_mode & 0o777) == oct(0o700)


def test_feedback_has_the_reasons_and_no_hidden_test(cnn_grade, class_folder):
    name = C.notebook_names(ASSIGNMENT)[0]
    secrets = C.hidden_lines(C.read(C.SOLUTIONS / ASSIGNMENT / name))
    for learner in ("correct", "dup_partial", "invalid_json", "other_notebook"):
        page = (class_folder / "feedback" / learner / ASSIGNMENT / (name[:-6] + ".html")).read_text()
        text = re.sub(r"<[^>]+>", "", page)
        assert not [s for s in secrets if s in text], f"{learner}: hidden tests in the feedback"
        if learner != "correct":
            assert EXPECTED[learner][1].split()[0] in text, learner


def test_no_hidden_test_text_in_any_form_reaches_cnn_grades_feedback(cnn_grade, class_folder):
    """The leaking learner's page is published (nothing to withhold) and holds no hidden-test
    line, neither as written nor reversed."""
    name = C.notebook_names(ASSIGNMENT)[0]
    secrets = C.hidden_lines(C.read(C.SOLUTIONS / ASSIGNMENT / name))
    forms = secrets | {s[::-1] for s in secrets}
    page = (class_folder / "feedback" / "leak_hidden_tests" / ASSIGNMENT / (name[:-6] + ".html")).read_text()
    import html as _html

    text = _html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "LEAK END" in text, "the leaking cell's output is missing from the feedback"
    assert not [f for f in forms if f in text], "hidden-test text in cnn-grade's feedback"


def test_the_release_folder_is_left_alone(cnn_grade, class_folder):
    assert not (class_folder / "notebooks").exists(), "cnn-grade must not write the release"


def test_plain_nbgrader_autograde_survives_the_same_class(cnn_grade, class_folder):
    """What an instructor types, with the project's config: every learner graded, exit 0, and the
    same scores as cnn-grade --jobs 2 (the empty folder is nbgrader's to skip)."""
    before = _per_exercise(class_folder)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    nbgrader = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    proc = subprocess.run([nbgrader, "autograde", ASSIGNMENT, "--force"], cwd=class_folder, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "appears more than once" in proc.stderr  # the reason is in nbgrader's log
    after = _per_exercise(class_folder)
    assert after == before, "plain nbgrader and cnn-grade --jobs 2 disagree"


def test_usage_errors_exit_2(tmp_path, capsys):
    from cnnlib.grading.autograde.cli import main

    assert main(["01_x", "--course-root", str(tmp_path / "nowhere")]) == 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2

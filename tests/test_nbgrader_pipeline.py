"""The whole nbgrader flow, through nbgrader's Python API, for every assignment under solutions/.

One temporary course (conftest ``course``: the repo's nbgrader_config.py with a temporary root,
gradebook and exchange) generates each assignment; then ONE autograde batch per assignment grades
five learners, and generate_feedback writes their feedback:

==============  =================================================================================
correct         the source notebook itself: full marks
untouched       the release as handed out: zero, and the batch still completes
odd_missing     odd-numbered exercises left unsolved: exactly their points lost
even_missing    even-numbered exercises left unsolved: exactly their points lost
cheating        odd exercises call cnnlib's reference (refused by the guard); even exercises are
                right on the visible cases but wrong on the hidden ones: zero everywhere
==============  =================================================================================
"""

from __future__ import annotations

import html
import re

import pytest

import course as C

STUDENTS = ("correct", "untouched", "odd_missing", "even_missing", "cheating")
GUARD_MESSAGE = "your code called cnnlib's reference"


@pytest.fixture(scope="session", params=C.assignments())
def graded(request, course):
    """Autograde the five learners of one assignment in one batch; generate their feedback."""
    assignment = request.param
    release = course.release(assignment)
    for student in STUDENTS:
        notebooks = {}
        for name in C.notebook_names(assignment):
            source, handout = C.read(C.SOLUTIONS / assignment / name), C.read(release / name)
            numbers = [e.number for e in C.exercises(source)]
            odd = [n for n in numbers if n % 2 == 1]
            even = [n for n in numbers if n % 2 == 0]
            notebooks[name] = {
                "correct": lambda: source,
                "untouched": lambda: handout,
                "odd_missing": lambda: C.submission(source, handout, solved=even),
                "even_missing": lambda: C.submission(source, handout, solved=odd),
                "cheating": lambda: C.submission(source, handout, calls_reference=odd, fails_hidden=even),
            }[student]()
        course.submit(assignment, student, notebooks)
    result = course.autograde_all(assignment)
    feedback = course.generate_feedback(assignment)
    return assignment, result, feedback


def _scores(course, assignment, student):
    return course.scores(assignment, student), course.max_scores(assignment)


def _graded_ids(max_scores):
    return {g for g, m in max_scores.items() if m > 0}


def test_batch_completes_for_every_learner(graded, course):
    assignment, result, feedback = graded
    assert result["success"], result.get("error", "") + result.get("log", "")[-3000:]
    assert feedback["success"], feedback.get("error", "")
    for student in STUDENTS:
        assert course.scores(assignment, student), f"{student} was not graded"


def test_the_solution_gets_full_marks(graded, course):
    assignment = graded[0]
    scores, maxima = _scores(course, assignment, "correct")
    lost = {g: (scores.get(g), m) for g, m in maxima.items() if scores.get(g) != m}
    assert not lost, f"the source notebook lost points: {lost}"


def test_the_untouched_release_gets_zero(graded, course):
    assignment = graded[0]
    scores, maxima = _scores(course, assignment, "untouched")
    assert sum(scores[g] for g in _graded_ids(maxima)) == 0, scores
    for name in C.notebook_names(assignment):
        nb = course.autograded(assignment, "untouched", name)
        for cell in C.grade_cells(nb):
            text = C.output_text(cell)
            assert "not implemented yet" in text, f"{C.meta(cell)['grade_id']}: {text[-500:]}"


@pytest.mark.parametrize("student,missing_parity", [("odd_missing", 1), ("even_missing", 0)])
def test_an_unsolved_exercise_loses_exactly_its_points(graded, course, student, missing_parity):
    assignment = graded[0]
    scores, maxima = _scores(course, assignment, student)
    for gid in _graded_ids(maxima):
        missing = C.exercise_of(gid) % 2 == missing_parity
        want = 0 if missing else maxima[gid]
        assert scores[gid] == want, f"{student}: {gid} scored {scores[gid]}, want {want}"


def test_calling_the_reference_scores_zero_with_the_guards_message(graded, course):
    assignment = graded[0]
    scores, maxima = _scores(course, assignment, "cheating")
    assert sum(scores[g] for g in _graded_ids(maxima)) == 0, scores
    for name in C.notebook_names(assignment):
        nb = course.autograded(assignment, "cheating", name)
        page = _text_of_html(course.feedback_html(assignment, "cheating", name))
        for cell in C.grade_cells(nb):
            gid = C.meta(cell)["grade_id"]
            if C.exercise_of(gid) % 2 == 1:
                assert GUARD_MESSAGE in C.output_text(cell), f"{gid}: {C.output_text(cell)[-800:]}"
            else:  # right on the visible cases, wrong on the hidden ones: the message names a case
                assert "deliberately wrong on the hidden cases" in C.output_text(cell), gid
        assert GUARD_MESSAGE in page, "the guard's message must reach the learner's feedback"


def test_feedback_shows_no_hidden_test(graded, course):
    assignment = graded[0]
    for name in C.notebook_names(assignment):
        secrets = C.hidden_lines(C.read(C.SOLUTIONS / assignment / name))
        assert secrets
        for student in STUDENTS:
            page = _text_of_html(course.feedback_html(assignment, student, name))
            assert "HIDDEN TESTS" not in page, f"{student}: a hidden-test marker in the feedback"
            leaked = [s for s in secrets if s in page]
            assert not leaked, f"{student}'s feedback shows hidden-test lines: {leaked[:3]}"


def test_feedback_explains_failures(graded, course):
    """A failed exercise's feedback says which case failed and why (not just a score)."""
    assignment = graded[0]
    for name in C.notebook_names(assignment):
        page = _text_of_html(course.feedback_html(assignment, "cheating", name))
        assert re.search(r"case \d+ of \d+", page), "failure messages name the case"
        assert "GradingFailure" in page


def _text_of_html(page: str) -> str:
    """The visible text of an HTML page (tags dropped, entities decoded)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text)


def test_feedback_preprocessors_scrub_then_clear_hidden_tests():
    """nbgrader_config.py: the outputs lose hidden-test lines (a traceback quotes its neighbours),
    then ClearHiddenTests removes them from the source."""
    from nbformat.v4 import new_code_cell, new_output
    from nbgrader.preprocessors import ClearHiddenTests

    pps = list(C.repo_config().GenerateFeedback.preprocessors)
    names = [p.__name__ for p in pps]
    assert names.index("ScrubHiddenTestsFromOutputs") < names.index("ClearHiddenTests")
    assert ClearHiddenTests in pps
    scrub = pps[names.index("ScrubHiddenTestsFromOutputs")]()
    cell = new_code_cell("check(f, visible_cases)\n### BEGIN HIDDEN TESTS\ncheck(f, secret_cases(seed=99))\n### END HIDDEN TESTS")
    cell.outputs = [new_output("error", ename="NameError", evalue="name 'f' is not defined", traceback=[
        "\x1b[0;31mNameError\x1b[0m  Traceback",
        "\x1b[0;32m----> 1\x1b[0m check(f, visible_cases)\n      2 ### BEGIN HIDDEN TESTS\n      3 "
        "check(f, \x1b[0msecret_cases(seed=99))".replace("\x1b[0m", ""),
    ]), new_output("stream", name="stdout", text="ok\ncheck(f, secret_cases(seed=99))\n")]
    cell, _ = scrub.preprocess_cell(cell, {}, 0)
    text = "\n".join(cell.outputs[0].traceback) + cell.outputs[1].text
    assert "secret_cases" not in text and "HIDDEN TESTS" not in text
    assert "check(f, visible_cases)" in text and "[hidden test code not shown]" in text

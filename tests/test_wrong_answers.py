"""Typical wrong answers lose their exercise's points, and only those, with the right hint.

Every module ``tests/wrong_answers/nbNN.py`` (discovered: notebooks 05-08 are covered as soon as
their catalogue exists) lists per exercise the wrong solutions learners write. Two levels:

- ``test_hint_of_each_wrong_answer`` (fast, in-process): the notebook's setup, data and correct
  solution cells run in one namespace, the wrong solution replaces its exercise's, and that
  exercise's test cell (hidden tests included) must fail with a message that carries the wrong
  answer's ``hint`` (or no ``hint:`` at all when it has none) and none of its ``not_hint``.
- ``test_wrong_answers_through_nbgrader``: the same wrong answers autograded by nbgrader in ONE
  batch per notebook. Exercises are independent (a test cell swaps in correct versions of earlier
  exercises), so learner ``k-odd`` hands in the k-th wrong answer of every odd exercise with the
  even ones right, and ``k-even`` the other way round: a notebook costs 2 x (most wrong answers of
  one exercise) learners. Each wrong exercise must score 0, every other exercise full marks, and
  the autograded test cell's output must carry the hint as above.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

import course as C

sys.path.insert(0, str(Path(__file__).parent))
import wrong_answers  # noqa: E402

CATALOGUES = sorted(m.name for m in pkgutil.iter_modules(wrong_answers.__path__) if re.fullmatch(r"nb\d\d", m.name))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def catalogue(name: str):
    return importlib.import_module(f"wrong_answers.{name}")


def flat(text: str) -> str:
    """Text without colours, with every run of white space one space (messages are wrapped)."""
    return " ".join(ANSI.sub("", text).split())


def verdict(message: str, wrong) -> list[str]:
    """What is wrong with a failure message for this wrong answer (empty when it is right)."""
    text, problems = flat(message), []
    if wrong.hint is not None and flat(wrong.hint) not in text:
        problems.append(f"the message lacks the hint {wrong.hint!r}")
    if wrong.hint is None and "hint:" in text:
        problems.append("the message guesses a hint where none applies")
    problems += [f"the message contains {n!r}" for n in wrong.not_hint if flat(n) in text]
    return problems


def _cases():
    for name in CATALOGUES:
        mod = catalogue(name)
        for exercise, wrongs in sorted(mod.WRONG.items()):
            for k, wrong in enumerate(wrongs):
                yield pytest.param(mod.ASSIGNMENT, exercise, k, id=f"{name}-ex{exercise}-{wrong.label}")


def test_every_notebook_has_a_catalogue():
    """Course-wide: each assignment under solutions/ keeps its wrong answers in tests/wrong_answers/."""
    covered = {catalogue(n).ASSIGNMENT for n in CATALOGUES}
    missing = [a for a in C.assignments() if a not in covered]
    assert not missing, f"no tests/wrong_answers/nbNN.py for {missing} (format: tests/wrong_answers/__init__.py)"


def test_every_exercise_has_three_wrong_answers():
    assert CATALOGUES, "no wrong-answer catalogues under tests/wrong_answers/"
    for name in CATALOGUES:
        mod = catalogue(name)
        nb = C.read(C.SOLUTIONS / mod.ASSIGNMENT / f"{mod.ASSIGNMENT}.ipynb")
        numbers = [e.number for e in C.exercises(nb)]
        short = {n: len(mod.WRONG.get(n, [])) for n in numbers if len(mod.WRONG.get(n, [])) < 3}
        assert not short, f"{name}: exercises with fewer than three wrong answers: {short}"


# ------------------------------------------------------------------------------------------------
# fast: in-process


def _solution_with(cell_source: str, region: str) -> str:
    return C._replace_solution_region(cell_source, textwrap.dedent(region).strip("\n"))


def run_test_cell(assignment: str, exercise: int, region: str) -> str | None:
    """The failure message of exercise ``exercise``'s test cell when its solution region is
    ``region`` and every other solution is right (None when the test cell passes)."""
    import matplotlib

    matplotlib.use("Agg")
    from cnnlib.grading import GradingFailure

    nb = C.read(C.SOLUTIONS / assignment / f"{assignment}.ipynb")
    ns: dict = {"__name__": "__main__"}
    test_cell = None
    for cell in nb.cells:
        m = C.meta(cell)
        if cell.cell_type != "code" or not m:
            continue
        gid = m.get("grade_id", "")
        if m.get("grade"):
            if C.exercise_of(gid) == exercise:
                test_cell = cell.source
            continue
        source = cell.source
        if m.get("solution") and C.exercise_of(gid) == exercise:
            source = _solution_with(source, region)
        exec(compile(source, gid, "exec"), ns)
    assert test_cell is not None
    try:
        exec(compile(test_cell, f"test cell of exercise {exercise}", "exec"), ns)
    except GradingFailure as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("assignment,exercise,k", list(_cases()))
def test_hint_of_each_wrong_answer(assignment, exercise, k, capsys):
    mod = next(catalogue(n) for n in CATALOGUES if catalogue(n).ASSIGNMENT == assignment)
    wrong = mod.WRONG[exercise][k]
    message = run_test_cell(assignment, exercise, wrong.region)
    assert message is not None, f"{wrong.label}: the test cell passed a wrong answer"
    assert not verdict(message, wrong), f"{verdict(message, wrong)}\n{message}"


# ------------------------------------------------------------------------------------------------
# through nbgrader, one batch per notebook


def _learners(mod) -> dict[str, dict[int, object]]:
    """learner -> {exercise: WrongAnswer} (exercises not listed are solved correctly)."""
    most = max(len(w) for w in mod.WRONG.values())
    learners = {}
    for k in range(most):
        for parity, label in ((1, "odd"), (0, "even")):
            chosen = {e: w[k] for e, w in mod.WRONG.items() if e % 2 == parity and k < len(w)}
            if chosen:
                learners[f"wrong{k}_{label}"] = chosen
    return learners


def _submission(source, release, chosen) -> object:
    import nbformat

    by_id = {C.meta(c)["grade_id"]: c for c in C.solution_cells(source)}
    nb = nbformat.from_dict(release)
    for cell in C.solution_cells(nb):
        gid = C.meta(cell)["grade_id"]
        n = C.exercise_of(gid)
        region = C._solution_region(by_id[gid].source) if n not in chosen else chosen[n].region
        cell.source = _solution_with(by_id[gid].source, region)
    return nb


@pytest.mark.parametrize("name", CATALOGUES)
def test_wrong_answers_through_nbgrader(name, course, record_property):
    mod = catalogue(name)
    assignment = mod.ASSIGNMENT
    notebook = f"{assignment}.ipynb"
    release = course.release(assignment)
    source, handout = C.read(C.SOLUTIONS / assignment / notebook), C.read(release / notebook)
    learners = _learners(mod)
    for learner, chosen in learners.items():
        course.submit(assignment, learner, {notebook: _submission(source, handout, chosen)})
    start = time.perf_counter()
    result = course.autograde_all(assignment)
    seconds = time.perf_counter() - start
    record_property("autograde_seconds", round(seconds, 1))
    print(f"{assignment}: {len(learners)} learners autograded in {seconds:.1f} s")
    assert result["success"], result.get("error", "") + result.get("log", "")[-3000:]
    maxima = course.max_scores(assignment)
    problems = []
    for learner, chosen in learners.items():
        scores = course.scores(assignment, learner)
        graded = course.autograded(assignment, learner, notebook)
        outputs = {C.meta(c)["grade_id"]: C.output_text(c) for c in C.grade_cells(graded)}
        for gid, top in maxima.items():
            if top <= 0:
                continue
            n = C.exercise_of(gid)
            if n in chosen:
                wrong = chosen[n]
                if scores[gid] != 0:
                    problems.append(f"{learner}: {gid} ({wrong.label}) scored {scores[gid]} of {top}")
                problems += [f"{learner}: {gid} ({wrong.label}): {p}" for p in verdict(outputs[gid], wrong)]
            elif scores[gid] != top:
                problems.append(f"{learner}: {gid} (solved) scored {scores[gid]} of {top}: "
                                f"{flat(outputs[gid])[-300:]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name,exercise", [(n, e) for n in CATALOGUES for e in sorted(catalogue(n).WRONG)])
def test_a_hint_fires_only_for_its_own_mistake(name, exercise):
    """Each hint: its wrong answer gets it (above) and the exercise's other wrong answers do not."""
    mod = catalogue(name)
    wrongs = mod.WRONG[exercise]
    messages = [flat(run_test_cell(mod.ASSIGNMENT, exercise, w.region) or "") for w in wrongs]
    misfires = [f"{b.label!r} got the hint of {a.label!r}" for a in wrongs if a.hint for b, text in zip(wrongs, messages)
                if b is not a and flat(b.hint or "") != flat(a.hint) and flat(a.hint) in text]
    assert not misfires, "\n".join(misfires)


def test_messages_survive_nbgrader_validate(tmp_path):
    """nbgrader validate (the command and the Validate button) cuts lines at 90 characters: a
    failing exercise's full hint must still reach the learner."""
    import io

    import nbformat
    from nbgrader.validator import Validator

    C.put_venv_on_path()
    mod = catalogue("nb02")
    wrong = mod.WRONG[3][1]  # pad2d padding one side only: a long hint
    source = C.read(C.SOLUTIONS / mod.ASSIGNMENT / f"{mod.ASSIGNMENT}.ipynb")
    path = tmp_path / f"{mod.ASSIGNMENT}.ipynb"
    nbformat.write(_submission(source, source, {3: wrong}), str(path))
    validator = Validator(config=C.repo_config())
    validator.stream = io.StringIO()
    validator.validate_and_print(str(path))
    shown = ANSI.sub("", validator.stream.getvalue())
    assert "The error was:" in shown, shown[-2000:]
    shown = shown.split("The error was:", 1)[1]  # after the failing cell's source
    assert flat(wrong.hint) in flat(shown), shown[-2000:]
    from cnnlib.grading.mistakes import pad_mistakes

    full = next(m.hint for m in pad_mistakes() if isinstance(getattr(m, "hint", None), str) and "one side" in m.hint)
    assert flat(full) in flat(shown), f"the hint was cut:\n{shown[-2000:]}"
    cut = [line for line in shown.splitlines() if len(line) >= validator.width - 3 and line.endswith("...")]
    assert not cut, cut

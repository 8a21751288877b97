"""Every notebook of the course: structure, release in sync with nbgrader, runs with tests passing.

Parametrized over every assignment folder under solutions/ (discovered, not listed), so a new
notebook is covered as soon as it exists.
"""

from __future__ import annotations

import ast
import builtins
import re
import runpy
from collections import Counter

import pytest

import course as C

ASSIGNMENTS = C.assignments()
NOTEBOOKS = [(a, n) for a in ASSIGNMENTS for n in C.notebook_names(a)]


def test_there_are_assignments():
    assert ASSIGNMENTS, "no notebooks under solutions/"


# ------------------------------------------------------------------------------------------------
# structure of the source notebooks


def test_grade_ids_are_unique_across_the_course():
    ids = Counter(
        C.meta(cell)["grade_id"]
        for a, n in NOTEBOOKS
        for cell in C.read(C.SOLUTIONS / a / n).cells
        if C.meta(cell)
    )
    assert not [g for g, k in ids.items() if k > 1], f"duplicated grade_ids: {[g for g, k in ids.items() if k > 1]}"


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_exercises_follow_the_conventions(assignment, name):
    nb = C.read(C.SOLUTIONS / assignment / name)
    number = int(assignment[:2])
    exercises = C.exercises(nb)
    assert len(exercises) >= 4, f"{name}: {len(exercises)} graded exercises, want at least 4"
    assert [e.number for e in exercises] == list(range(1, len(exercises) + 1)), "exercises numbered 1, 2, ..."
    grades = C.grade_cells(nb)
    for e in exercises:
        assert e.notebook == number, f"heading 'Exercise {e.notebook}.{e.number}' in notebook {number:02d}"
        cells = [c for c in grades if C.meta(c)["grade_id"].startswith(e.prefix)]
        assert cells, f"exercise {e.number} ({e.title}) has no test cell with grade_id {e.prefix}..."
        points = sum(C.meta(c)["points"] for c in cells)
        assert points == e.points, f"exercise {e.number}: heading says {e.points} points, test cells give {points}"
        sols = [c for c in C.solution_cells(nb) if C.meta(c)["grade_id"].startswith(e.prefix)]
        assert sols, f"exercise {e.number} has no solution cell"
    headed = {e.prefix for e in exercises}
    for cell in grades + C.solution_cells(nb):
        gid = C.meta(cell)["grade_id"]
        assert gid.startswith(f"nb{number:02d}_"), f"grade_id {gid} lacks the notebook prefix nb{number:02d}_"
        assert any(gid.startswith(p) for p in headed), f"{gid} belongs to no exercise heading"
    for cell in grades:
        src, gid = cell.source, C.meta(cell)["grade_id"]
        assert C.meta(cell).get("locked"), f"{gid}: test cells must be locked"
        assert src.count(C.BEGIN_HIDDEN) == 1 and src.count(C.END_HIDDEN) == 1, f"{gid}: one hidden-test region"
        visible = src.split(C.BEGIN_HIDDEN)[0]
        hidden = src.split(C.BEGIN_HIDDEN)[1].split(C.END_HIDDEN)[0]
        assert "grading.check" in visible, f"{gid}: visible tests must call cnnlib.grading"
        assert "grading.check" in hidden and "seed=" in hidden, f"{gid}: hidden tests draw seeded random cases"
    for cell in C.solution_cells(nb):
        gid = C.meta(cell)["grade_id"]
        assert cell.source.count(C.BEGIN_SOLUTION) == 1, f"{gid}: one solution region"
        region = cell.source.split(C.BEGIN_SOLUTION)[1].split(C.END_SOLUTION)[0]
        assert len(region.strip().splitlines()) <= 15, f"{gid}: keep the solution region small"


def _defined_and_used(source: str) -> tuple[set[str], set[str]]:
    """Names a cell binds (assignments, defs, imports, arguments) and names it reads."""
    tree = ast.parse(source)
    bound, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else used).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, used


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_test_cells_depend_only_on_the_setup_and_their_solution(assignment, name):
    """A test cell reads only names of the locked setup cell, its own exercise's solution cell and
    itself, so a learner's scratch cell (``image = ...``) cannot change what is tested."""
    nb = C.read(C.SOLUTIONS / assignment / name)
    setup = set()
    for cell in nb.cells:
        m = C.meta(cell)
        if cell.cell_type == "code" and m.get("locked") and not m.get("grade"):
            setup |= _defined_and_used(cell.source)[0]
    solutions = {C.exercise_of(C.meta(c)["grade_id"]): _defined_and_used(c.source)[0] for c in C.solution_cells(nb)}
    for cell in C.grade_cells(nb):
        gid = C.meta(cell)["grade_id"]
        bound, used = _defined_and_used(cell.source)
        free = used - bound - setup - solutions.get(C.exercise_of(gid), set()) - set(dir(builtins))
        assert not free, f"{gid} reads {sorted(free)} from other cells; define them in the test cell or the setup cell"


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_source_notebooks_carry_no_outputs(assignment, name):
    nb = C.read(C.SOLUTIONS / assignment / name)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("script", sorted(p.name for p in (C.REPO / "scripts").glob("build_[0-9][0-9]_*.py")))
def test_builder_scripts_match_their_notebooks(script, tmp_path, monkeypatch):
    """scripts/build_NN_name.py writes solutions/NN_name/NN_name.ipynb: the two must not drift."""
    name = script[len("build_"):-len(".py")]
    monkeypatch.syspath_prepend(str(C.REPO / "scripts"))
    notebook = runpy.run_path(str(C.REPO / "scripts" / script), run_name="builder")["nb"]
    built = notebook.write(tmp_path).read_text(encoding="utf-8")
    committed = (C.SOLUTIONS / name / f"{name}.ipynb").read_text(encoding="utf-8")
    assert built == committed, f"solutions/{name} differs from scripts/{script}: run `python scripts/{script}`"


# ------------------------------------------------------------------------------------------------
# the release (notebooks/) is exactly what nbgrader generates


def _essence(nb):
    """What a learner receives: cell types, ids, sources and metadata (no outputs, no counts)."""
    return {
        "metadata": dict(nb.metadata),
        "cells": [
            {"cell_type": c.cell_type, "id": c.get("id"), "source": c.source, "metadata": dict(c.metadata)}
            for c in nb.cells
        ],
    }


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_release_is_what_nbgrader_generates(assignment, name, course):
    committed_path = C.RELEASE / assignment / name
    assert committed_path.exists(), f"notebooks/{assignment}/{name} missing: run `make release`"
    generated = C.read(course.release(assignment) / name)
    committed = C.read(committed_path)
    assert _essence(committed) == _essence(generated), (
        f"notebooks/{assignment}/{name} differs from what nbgrader generates from solutions/: run `make release`"
    )
    extra = {p.name for p in (C.RELEASE / assignment).iterdir()} - {p.name for p in (course.root / "notebooks" / assignment).iterdir()}
    assert not extra, f"notebooks/{assignment} holds files nbgrader does not generate: {sorted(extra)}"


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_release_has_no_outputs_no_solutions_no_hidden_tests(assignment, name):
    nb = C.read(C.RELEASE / assignment / name)
    text = "\n".join(c.source for c in nb.cells)
    for marker in (C.BEGIN_SOLUTION, C.BEGIN_HIDDEN, "END HIDDEN TESTS"):
        assert marker not in text
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"notebooks/{assignment}/{name}: cells {dirty} carry outputs"
    secrets = C.hidden_lines(C.read(C.SOLUTIONS / assignment / name))
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"hidden-test lines in the release: {leaked[:3]}"


def test_no_stray_release_folders():
    released = {p.name for p in C.RELEASE.iterdir() if p.is_dir()} if C.RELEASE.is_dir() else set()
    assert released == set(ASSIGNMENTS), "notebooks/ and solutions/ hold different assignments"


# ------------------------------------------------------------------------------------------------
# the solution notebooks run top to bottom with every test passing


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_solution_notebook_runs_with_all_tests_passing(assignment, name, executed):
    nb, seconds = executed(assignment, name)
    assert not C.errors(nb), "\n".join(C.errors(nb))
    for cell in C.grade_cells(nb):
        assert "✔" in C.output_text(cell), f"{C.meta(cell)['grade_id']}: no success line printed"
    # DESIGN.md's bar (every notebook under 60 s on two cores) is measured by `make bench-notebooks`,
    # not asserted here: on a shared machine a timed assertion fails on load, not on the code
    print(f"{name}: {seconds:.1f} s")


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_nbgrader_validator_passes_the_solution(assignment, name):
    from nbgrader.validator import Validator

    C.put_venv_on_path()
    result = Validator(config=C.repo_config()).validate(str(C.SOLUTIONS / assignment / name))
    assert result == {}, re.sub(r"\x1b\[[0-9;]*m", "", str(result))[:3000]


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_every_figure_has_a_title_and_labelled_axes(assignment, name):
    """Static check of the notebook's own plt code: each subplots() figure sets titles and labels."""
    nb = C.read(C.SOLUTIONS / assignment / name)
    for cell in nb.cells:
        if cell.cell_type == "code" and "plt.subplots" in cell.source:
            src = cell.source
            assert "set_title" in src and "set_xlabel" in src and "set_ylabel" in src, src[:200]


# ------------------------------------------------------------------------------------------------
# issue 11: what a learner reads


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_sources_are_cited_and_never_called_seeds(assignment, name):
    """A references cell names the articles by title and author; the text says "the article", and
    the word "seed" appears nowhere a learner reads it (hidden tests are not in the release)."""
    nb = C.read(C.RELEASE / assignment / name)
    refs = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## References")]
    assert len(refs) == 1, f"{name}: one references cell (nb.references(...) in the build script)"
    assert refs[0].source.count("\n- **") >= 1 and "CSDN" in refs[0].source + "Towards Data Science"
    for cell in nb.cells:
        text = cell.source if cell.cell_type == "markdown" else re.sub(r"#.*", "", cell.source)
        words = re.findall(r"(?i)\bseed\b(?!\s*=)", text)
        assert not words, f"{name}: 'seed' in a {cell.cell_type} cell: {cell.source[:200]}"
    comments = [line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
                if re.search(r"(?i)#.*\bseed\b", line)]
    assert not comments, f"{name}: 'seed' in a comment: {comments[:2]}"


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_the_rules_are_stated_in_every_notebook(assignment, name):
    """One dtype rule and the library shortcuts, stated the same way in every notebook."""
    import sys

    sys.path.insert(0, str(C.REPO / "scripts"))
    from nbbuild import RULES

    nb = C.read(C.SOLUTIONS / assignment / name)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and C.HEADING.search(c.source))
    assert any(RULES in c.source for c in nb.cells[:first] if c.cell_type == "markdown"), (
        f"{name}: state nbbuild.RULES before the first exercise")


def test_the_widget_has_a_static_figure_beside_it(executed):
    """02 promises a static picture of the interactive widget when run headless."""
    nb, _ = executed("02_padding_and_stride", "02_padding_and_stride.ipynb")
    cell = next(c for c in nb.cells if c.cell_type == "code" and "interactive_sliding_window(" in c.source)
    kinds = [set(o.get("data", {})) for o in cell.outputs]
    assert any("image/png" in k for k in kinds), f"no static figure next to the widget: {kinds}"
    assert any("application/vnd.jupyter.widget-view+json" in k for k in kinds), kinds


@pytest.mark.parametrize("assignment,name", NOTEBOOKS)
def test_each_exercise_says_what_is_allowed(assignment, name):
    """Statements and tests agree: every exercise says which libraries it may use."""
    nb = C.read(C.SOLUTIONS / assignment / name)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and C.HEADING.search(cell.source):
            assert "Allowed:" in cell.source or "switched off" in cell.source, (
                f"{name}: {cell.source.splitlines()[0]} says nothing of what is allowed")

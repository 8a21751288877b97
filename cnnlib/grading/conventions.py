"""The conventions the notebook builder and the grader share: cell markers and grade_ids.

``scripts/nbbuild.py`` writes notebooks with them and the autograding plug-ins read notebooks by
them, so both import them from here. An exercise K.N has a solution cell ``nbKK_exN_solution`` and
a test cell ``nbKK_exN_tests``; the setup cell is ``nbKK_setup`` and a read-only data cell
``nbKK_data_NAME``.

Example:
    >>> grade_id(3, 5, "tests")
    'nb03_ex5_tests'
    >>> parse_grade_id("nb03_ex5_solution")
    (3, 5, 'solution')
"""

from __future__ import annotations

import re

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"

GRADE_ID = re.compile(r"nb(\d\d)_ex(\d+)_(solution|tests)")


def prefix(notebook: int) -> str:
    """The grade_id prefix of notebook ``notebook``: ``nb03``."""
    return f"nb{notebook:02d}"


def grade_id(notebook: int, exercise: int, kind: str) -> str:
    """``nbKK_exN_solution`` or ``nbKK_exN_tests``."""
    if kind not in ("solution", "tests"):
        raise ValueError(f"grade_id: kind must be 'solution' or 'tests', got {kind!r}")
    return f"{prefix(notebook)}_ex{exercise}_{kind}"


def parse_grade_id(name: str) -> tuple[int, int, str] | None:
    """(notebook, exercise, kind) of an exercise's grade_id, or None for any other cell."""
    m = GRADE_ID.fullmatch(name)
    return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else None


def split_hidden_tests(source: str) -> tuple[list[str], list[str]]:
    """The stripped lines of ``source`` inside and outside its hidden-test regions.

    The marker lines themselves are in neither list.

    Example:
        >>> split_hidden_tests("a()\\n### BEGIN HIDDEN TESTS\\nb()\\n### END HIDDEN TESTS")
        (['b()'], ['a()'])
    """
    hidden, visible, inside = [], [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN[4:] in line:
            inside = True
        elif END_HIDDEN[4:] in line:
            inside = False
        else:
            (hidden if inside else visible).append(line.strip())
    return hidden, visible

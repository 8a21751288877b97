"""Session fixtures shared by the notebook tests (see tests/course.py for the helpers).

Running a notebook costs a kernel start-up plus its cells, so each solution notebook is executed
once per session (``executed``) and one temporary nbgrader course generates each assignment once
(``course``); the tests then only read the results.
"""

from __future__ import annotations

import pytest

import course as C


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> C.Course:
    """A temporary copy of the course; ``course.release(assignment)`` generates one with nbgrader."""
    return C.Course(tmp_path_factory.mktemp("nbgrader"))


@pytest.fixture(scope="session")
def executed():
    """``executed(assignment, name) -> (notebook, seconds)``: each solution notebook run once."""
    cache = {}

    def run(assignment: str, name: str):
        key = (assignment, name)
        if key not in cache:
            cache[key] = C.execute(C.SOLUTIONS / assignment / name)
        return cache[key]

    return run

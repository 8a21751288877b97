"""Refuse to run the reference implementation while a learner's exercise is being checked.

`cnnlib.grading` runs a learner's function inside ``blocked("conv2d_forward")``. Every public
function of the reference library is wrapped with :func:`reference`; while blocked, calling one
raises :class:`ReferenceBlockedError`, so a "solution" that simply calls cnnlib scores zero with a
message that says the exercise must be written by hand. Outside a check nothing changes.

A test cell may hand the learner's function a correct *stand-in* for an earlier exercise (see
``grading.substitute``) that runs the reference. Such a stand-in lifts the block for its own call
only, with an :func:`allowed` made by the test cell before the check starts; code that runs inside
the check (the learner's) cannot make one, so calling the reference from it is still refused.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)

# Stack of exercise names currently being checked; ``None`` on top while a stand-in made with
# `allowed` runs (a check started inside the stand-in blocks again).
_blocked_for: list[str | None] = []


class ReferenceBlockedError(RuntimeError):
    """Raised when cnnlib's reference is called from inside a graded exercise."""


def reference(func: F) -> F:
    """Mark ``func`` as part of the reference library (refuses to run while a check is on)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        exercise = current()
        if exercise is not None:
            raise ReferenceBlockedError(
                f"{exercise}: your code called cnnlib's reference "
                f"`{func.__module__}.{func.__qualname__}`. This exercise must be written by hand "
                "with numpy (that is the point of it); the reference is switched off while your "
                "function is being checked."
            )
        return func(*args, **kwargs)

    wrapper.__wrapped_reference__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class blocked:
    """Inside this block, every function marked with :func:`reference` refuses to run."""

    def __init__(self, exercise: str):
        self.exercise = exercise

    def __enter__(self) -> None:
        _blocked_for.append(self.exercise)

    def __exit__(self, *exc) -> None:
        _blocked_for.pop()


class allowed:
    """Lift the block while inside ``with``: for a grader's stand-in that runs the reference.

    Make it OUTSIDE a check (in the test cell, before the check starts) and enter it inside the
    stand-in, around the reference call only::

        lift = allowed()
        def stand_in(*args):
            with lift:
                return reference_function(*args)

    Made while a check is on (that is, by the learner's code) it raises
    :class:`ReferenceBlockedError`, so the learner cannot lift the block for themselves.
    """

    def __init__(self) -> None:
        exercise = current()
        if exercise is not None:
            raise ReferenceBlockedError(
                f"{exercise}: your code tried to switch cnnlib's reference back on. This exercise "
                "must be written by hand with numpy; only the test cell may give your function a "
                "correct version of an earlier exercise."
            )

    def __enter__(self) -> None:
        _blocked_for.append(None)

    def __exit__(self, *exc) -> None:
        _blocked_for.pop()


def current() -> str | None:
    """The exercise being checked, or None (no check, or inside a stand-in's `allowed`)."""
    return _blocked_for[-1] if _blocked_for else None


def is_blocked() -> bool:
    return current() is not None

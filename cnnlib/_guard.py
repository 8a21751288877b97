"""Refuse to run the reference implementation while a learner's exercise is being checked.

`cnnlib.grading` runs a learner's function inside ``blocked("conv2d_forward")``. Every public
function of the reference library is wrapped with :func:`reference`; while blocked, calling one
raises :class:`ReferenceBlockedError`, so a "solution" that simply calls cnnlib scores zero with a
message that says the exercise must be written by hand. Outside a check nothing changes.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable)

_blocked_for: list[str] = []  # stack of exercise names currently being checked


class ReferenceBlockedError(RuntimeError):
    """Raised when cnnlib's reference is called from inside a graded exercise."""


def reference(func: F) -> F:
    """Mark ``func`` as part of the reference library (refuses to run while a check is on)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _blocked_for:
            raise ReferenceBlockedError(
                f"{_blocked_for[-1]}: your code called cnnlib's reference "
                f"`{func.__module__}.{func.__qualname__}`. This exercise must be written by hand "
                "with numpy (that is the point of it); the reference is switched off while your "
                "function is being checked."
            )
        return func(*args, **kwargs)

    wrapper.__wrapped_reference__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def blocked(exercise: str) -> Iterator[None]:
    """Inside this block, every function marked with :func:`reference` refuses to run."""
    _blocked_for.append(exercise)
    try:
        yield
    finally:
        _blocked_for.pop()


def is_blocked() -> bool:
    return bool(_blocked_for)

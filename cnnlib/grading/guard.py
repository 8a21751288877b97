"""Refuse to run the reference implementation while a learner's exercise is being checked.

`cnnlib.grading` runs a learner's function inside ``blocked("conv2d_forward")``. Every public
function of the reference library is wrapped with :func:`reference`; while blocked, calling one
raises :class:`ReferenceBlockedError`, so a "solution" that simply calls cnnlib scores zero with a
message that says the exercise must be written by hand. Outside a check nothing changes.

A test cell may hand the learner's function a correct *stand-in* for an earlier exercise (see
``grading.substitute``) that runs the reference. Such a stand-in lifts the block for its own call
only, with an :func:`allowed` made by the test cell before the check starts; code that runs inside
the check (the learner's) cannot make one, so calling the reference from it is still refused.

**Library shortcuts** are switched off the same way. Wherever the guard blocks, the library
functions that do a "write it yourself" exercise's whole job (:data:`SHORTCUTS`: scipy.signal's
correlate/convolve family, scipy.ndimage's filters, numpy's 1-D convolve/correlate, scipy.special's
softmax / log_softmax / logsumexp) refuse to run
with the guard's message, however the learner reached them (``from scipy.signal import
correlate2d`` included: the function objects themselves are guarded, in whatever process the
guard blocks in, the learner's kernel or a judge's worker). An exercise whose statement asks for
such a function (notebook 01's per-channel filtering with ``convolve2d``) is checked with
``blocked(name, shortcuts=True)``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable)

# Stack of exercise names currently being checked; ``None`` on top while a stand-in made with
# `allowed` runs (a check started inside the stand-in blocks again).
_blocked_for: list[str | None] = []
# Parallel to _blocked_for: whether the library shortcuts may run at that level.
_shortcuts_ok: list[bool] = []

#: Library functions that do a whole "write it yourself" exercise: refused wherever the guard
#: blocks, unless the check allows shortcuts. Module -> function names (patched once imported).
SHORTCUTS: dict[str, tuple[str, ...]] = {
    "scipy.signal._signaltools": ("convolve", "correlate", "convolve2d", "correlate2d", "fftconvolve",
                                  "oaconvolve"),
    "scipy.ndimage._filters": ("convolve", "correlate", "convolve1d", "correlate1d", "uniform_filter",
                               "uniform_filter1d", "maximum_filter", "maximum_filter1d",
                               "minimum_filter", "minimum_filter1d", "generic_filter"),
    "numpy._core.numeric": ("convolve", "correlate"),
    "scipy.special._logsumexp": ("softmax", "log_softmax", "logsumexp"),
}
_PUBLIC = {"scipy.signal._signaltools": "scipy.signal", "scipy.ndimage._filters": "scipy.ndimage",
           "numpy._core.numeric": "numpy", "scipy.special._logsumexp": "scipy.special"}
_GATE = "__cnnlib_guard_shortcut__"  # the name the patched functions look up in their module
_originals: dict[str, Callable] = {}  # "scipy.signal.correlate2d" -> an unguarded copy
_imported = False  # the SHORTCUTS modules were imported once


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


class ShortcutBlockedError(ReferenceBlockedError):
    """Raised when a library shortcut (:data:`SHORTCUTS`) is called from inside a graded exercise."""


class blocked:
    """Inside this block, every function marked with :func:`reference` refuses to run, and so do
    the library shortcuts of :data:`SHORTCUTS` unless ``shortcuts=True``."""

    def __init__(self, exercise: str, *, shortcuts: bool = False):
        self.exercise = exercise
        self.shortcuts = shortcuts

    def __enter__(self) -> None:
        if not self.shortcuts:
            guard_shortcuts()
        _blocked_for.append(self.exercise)
        _shortcuts_ok.append(self.shortcuts)

    def __exit__(self, *exc) -> None:
        _blocked_for.pop()
        _shortcuts_ok.pop()


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
        _shortcuts_ok.append(True)

    def __exit__(self, *exc) -> None:
        _blocked_for.pop()
        _shortcuts_ok.pop()


def current() -> str | None:
    """The exercise being checked, or None (no check, or inside a stand-in's `allowed`)."""
    return _blocked_for[-1] if _blocked_for else None


def is_blocked() -> bool:
    return current() is not None


def shortcuts_blocked() -> bool:
    """True while a check runs that switches the library shortcuts off."""
    return bool(_blocked_for) and _blocked_for[-1] is not None and not _shortcuts_ok[-1]


def _gate(public: str, *args: Any, **kwargs: Any) -> Any:
    """What a guarded shortcut runs: refuse while blocked, else call the original."""
    if shortcuts_blocked():
        raise ShortcutBlockedError(
            f"{current()}: your code called `{public}`, a library function that does this "
            "exercise's whole job. This exercise must be written by hand with numpy (that is the "
            "point of it); library shortcuts are switched off while your function is checked."
        )
    return _originals[public](*args, **kwargs)


def guard_shortcuts() -> None:
    """Guard every function of :data:`SHORTCUTS` whose module is imported (idempotent, cheap).

    The function object itself is changed (its code becomes a call of :func:`_gate`), so every
    alias of it is guarded; an unguarded copy is kept for the gate. Outside a blocked check, or
    with shortcuts allowed, a guarded function behaves exactly as before.
    """
    global _imported
    if not _imported:  # once per process: a shortcut imported later, inside a check, is guarded too
        _imported = True
        for module_name in SHORTCUTS:
            try:
                importlib.import_module(module_name)
            except ImportError:  # pragma: no cover - an optional library that is absent
                pass
    for module_name, names in SHORTCUTS.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        public_module = _PUBLIC.get(module_name, module_name)
        for name in names:
            public = f"{public_module}.{name}"
            if public in _originals:
                continue
            func = getattr(module, name, None)
            func = getattr(func, "_implementation", func)  # numpy's array-function dispatcher
            if not isinstance(func, types.FunctionType) or func.__closure__:
                continue
            copy = types.FunctionType(func.__code__, func.__globals__, func.__name__, func.__defaults__,
                                      func.__closure__)
            copy.__kwdefaults__ = func.__kwdefaults__
            copy.__dict__.update(func.__dict__)
            try:
                signature = inspect.signature(func)
            except (TypeError, ValueError):  # pragma: no cover
                signature = None
            namespace: dict[str, Any] = {}
            exec(f"def {name}(*args, **kwargs):\n    return {_GATE}({public!r}, *args, **kwargs)\n",
                 {}, namespace)
            func.__globals__[_GATE] = _gate
            _originals[public] = copy
            func.__code__ = namespace[name].__code__
            func.__defaults__ = None
            func.__kwdefaults__ = None
            if signature is not None:
                func.__signature__ = signature  # help() and ? still show the real arguments

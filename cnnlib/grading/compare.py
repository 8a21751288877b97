"""Comparing a learner's answer with the expected one, and saying in a TA's words what differs.

Arrays are compared as plain ndarrays (a subclass of the learner's could lie about its shape or
answer ``np.isclose`` with True), types are checked before values, and a hint is given only when
the learner's answer equals a known mistake's answer (see :mod:`cnnlib.grading.mistakes`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from cnnlib.grading.failures import _num, _short


def _tolerances(expected: Any, rtol: float | None, atol: float | None) -> tuple[float, float]:
    low = isinstance(expected, np.ndarray) and expected.dtype in (np.float32, np.float16)
    if isinstance(expected, (tuple, list)):
        low = any(isinstance(e, np.ndarray) and e.dtype in (np.float32, np.float16) for e in expected)
    return (1e-4 if low else 1e-6) if rtol is None else rtol, (1e-5 if low else 1e-8) if atol is None else atol


def _select(result: Any, outputs: str | Sequence[str | None]) -> tuple[list[str], list[Any], list[str]]:
    """Split a result into (labels, values) per ``outputs``; problems if its structure is wrong."""
    if isinstance(result, np.ndarray):
        result = _plain_array(result)
    if isinstance(outputs, str):
        return [outputs], [result], []
    if not isinstance(result, (tuple, list)) or len(result) != len(outputs):
        what = f"a tuple of {len(result)}" if isinstance(result, (tuple, list)) else type(result).__name__
        names = ", ".join(o or "_" for o in outputs)
        return [], [], [f"expected a tuple of {len(outputs)} ({names}), got {what}"]
    keep = [(o, _plain_array(r) if isinstance(r, np.ndarray) else r) for o, r in zip(outputs, result) if o is not None]
    return [o for o, _ in keep], [r for _, r in keep], []


def _check_result(got, expected, outputs, rtol, atol, exact_dtype) -> list[str]:
    if got is None and expected is not None:
        return ["your function returned None; hint: did you forget the `return` statement?"]
    exp_labels, exp_values, _ = _select(expected, outputs)
    labels, values, problems = _select(got, outputs)
    if problems:
        return problems
    rt, at = _tolerances(expected, rtol, atol)
    for label, g, e in zip(labels, values, exp_values):
        problems = _compare(g, e, label, rt, at, exact_dtype)
        if problems:
            return problems
    return []


def _compare(got: Any, expected: Any, label: str, rtol: float, atol: float, exact_dtype: bool) -> list[str]:
    """Empty list when ``got`` matches ``expected``; otherwise what is wrong, in a TA's words."""
    if isinstance(expected, np.ndarray):
        if got is None:
            return [f"expected {label} as an array of shape {expected.shape}, got None"]
        if not isinstance(got, np.ndarray):
            if expected.ndim == 0 and isinstance(got, numbers.Number):
                got = np.asarray(got)
            else:
                return [f"expected {label} as a numpy array of shape {expected.shape}, got "
                        f"{type(got).__name__}; hint: build it with np.zeros(...) / np.array(...)"]
        got = _plain_array(got)
        if got.shape != expected.shape:
            return [f"expected {label} shape {expected.shape}, got {got.shape}"]
        if expected.dtype.kind in "fc" and got.dtype.kind in "biu":
            return [f"expected {label} with a float dtype like {expected.dtype}, got {got.dtype}; "
                    "hint: integer arrays truncate every value: create the output with "
                    "np.zeros(shape) (float64), not np.zeros_like(...) of an integer array, and "
                    "divide with / rather than //"]
        if exact_dtype and got.dtype != expected.dtype:
            return [_dtype_problem(label, expected.dtype, got.dtype)]
        if got.dtype.kind not in "biufc":
            return [f"expected {label} with numbers, got dtype {got.dtype}"]
        return _value_problems(got, expected, label, rtol, atol)
    if isinstance(expected, (bool, np.bool_)):
        ok = isinstance(got, (numbers.Integral, np.bool_)) and bool(got) is bool(expected)
        return [] if ok else [f"expected {label} {expected!r}, got {_short(got)}"]
    if isinstance(expected, numbers.Integral):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Number):
            return [f"expected {label} {int(expected)} (an int), got {_short(got)} ({type(got).__name__})"]
        if not isinstance(got, numbers.Integral):
            if isinstance(got, numbers.Real) and float(got) == int(expected):
                return [f"expected {label} {int(expected)} (an int), got {got!r} (a {type(got).__name__}); "
                        "hint: sizes and counts are whole numbers: use // for the division, or int(...)"]
            return [f"expected {label} {int(expected)}, got {got!r}"]
        return [] if int(got) == int(expected) else [f"expected {label} {int(expected)}, got {int(got)}"]
    if isinstance(expected, numbers.Real):
        if isinstance(got, np.ndarray) and got.ndim == 0:
            got = got.item()
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Real):
            return [f"expected {label} {float(expected):.6g} (a number), got {_short(got)} ({type(got).__name__})"]
        ok = math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol) or (
            math.isnan(float(got)) and math.isnan(float(expected)))
        return [] if ok else [f"expected {label} {float(expected):.6g}, got {float(got):.6g}"]
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return [f"expected {label} as a {type(expected).__name__} of {len(expected)}, got {_short(got)}"]
        for i, (g, e) in enumerate(zip(got, expected)):
            problems = _compare(g, e, f"{label}[{i}]", rtol, atol, exact_dtype)
            if problems:
                return problems
        return []
    # same type required: an object of the learner's own class could say == to anything
    ok = type(got) is type(expected) and got == expected
    return [] if ok else [f"expected {label} {_short(expected)}, got {_short(got)}"]


#: The course's one dtype rule, stated in every notebook's introduction and enforced by every
#: array check (``check_function(..., exact_dtype=True)``, the default).
DTYPE_RULE = ("an array you return has the dtype the reference gives: a float input keeps its "
              "float type (float32 in, float32 out), integer images give float64, and counts are "
              "integers")


def _dtype_problem(label: str, expected: np.dtype, got: np.dtype) -> str:
    if expected.kind in "iu" and got.kind == "f":
        fix = "counts are whole numbers: create the array with dtype=int (np.zeros(shape, dtype=int))"
    elif expected.kind == "f" and got.kind == "f":
        fix = ("a float input keeps its float type: create the output with "
               "np.zeros(shape, dtype=x.dtype), where x is the input")
    else:
        fix = "see the dtype rule in the notebook's introduction"
    return f"expected {label} dtype {expected}, got {got}; {fix}"


def _plain_array(a: np.ndarray) -> np.ndarray:
    """``a`` as a plain ndarray over the same memory: a subclass of the learner's could lie about
    its ``shape`` or answer np.isclose(...) with True through ``__array_function__``."""
    return a if type(a) is np.ndarray else np.ndarray.view(a, np.ndarray)


def _value_problems(got: np.ndarray, expected: np.ndarray, label: str, rtol: float, atol: float) -> list[str]:
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return []
    bad = np.argwhere(~close)
    idx = tuple(int(v) for v in bad[0])
    where = f" at index {idx}" if idx else ""
    problems = [
        f"{label}: {len(bad)} of {expected.size} values differ (rtol={rtol:g}, atol={atol:g}); "
        f"first{where}: expected {_num(expected[idx])}, got {_num(got[idx])}"
    ]
    located = _where(~close)
    if located:
        problems.append(f"where: {located}")
    return problems


def _where(bad: np.ndarray) -> str:
    """Where the differing values lie, when that narrows it down: 'only at index 0 of axis 1',
    'only on the border (first/last rows and columns)', ...; '' when they are everywhere."""
    if bad.ndim == 0 or bad.all():
        return ""
    parts, spatial = [], False
    for axis in range(bad.ndim):
        hit = np.flatnonzero(bad.any(axis=tuple(a for a in range(bad.ndim) if a != axis)))
        if bad.shape[axis] > 1 and len(hit) < bad.shape[axis]:
            shown = ", ".join(str(v) for v in hit[:4]) + (", ..." if len(hit) > 4 else "")
            parts.append(f"index {shown} of axis {axis}" if len(hit) == 1
                         else f"indices {shown} of axis {axis}")
            spatial |= axis >= bad.ndim - 2 and len(hit) <= 2
    if not spatial and bad.ndim >= 2 and bad.shape[-1] > 3 and bad.shape[-2] > 3:
        inner = bad[..., 1:-1, 1:-1]
        if not inner.any():
            return ("only on the border (the first or last rows and columns of the last two axes); "
                    "the inside is right")
    if not parts:
        return ""
    return "the differing values lie only at " + "; ".join(parts)


def _changed(old: Any, new: Any) -> str:
    """Describe how ``new`` differs from its pristine copy ``old`` ('' when unchanged)."""
    if isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
        if old.shape != new.shape:
            return f"its shape became {new.shape}"
        same = old == new
        if old.dtype.kind in "fc":
            same |= np.isnan(old) & np.isnan(new)
        diff = ~same
        if diff.any():
            idx = tuple(int(v) for v in np.argwhere(diff)[0])
            count = int(diff.sum())
            return (f"{count} value{'s' if count > 1 else ''} changed, first at index {idx}: "
                    f"{_num(old[idx])} became {_num(new[idx])}")
        return ""
    if isinstance(old, np.ndarray) or isinstance(new, np.ndarray):
        return f"it became {_short(new)}"
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        if len(old) != len(new):
            return f"its length went from {len(old)} to {len(new)}: {_short(old)} became {_short(new)}"
        for i, (o, n) in enumerate(zip(old, new)):
            c = _changed(o, n)
            if c:
                return f"[{i}] {c}" if isinstance(o, (list, tuple, dict, np.ndarray)) else (
                    f"{_short(old)} became {_short(new)}")
        return ""
    if isinstance(old, dict) and isinstance(new, dict):
        if set(old) != set(new):
            return f"its keys went from {sorted(map(str, old))} to {sorted(map(str, new))}"
        for k in old:
            c = _changed(old[k], new.get(k))
            if c:
                return f"[{k!r}] {c}"
        return ""
    if type(old) is not type(new):
        return f"{_short(old)} became {_short(new)}"
    try:
        same = bool(old == new) or (old != old and new != new)  # NaN stays NaN
    except Exception:  # pragma: no cover - an object that cannot compare: assume unchanged
        return ""
    return "" if same else f"{_short(old)} became {_short(new)}"


def _hints(got, expected, case, outputs, mistakes, rtol, atol, history=()) -> list[str]:
    """The hint of the first mistake whose wrong answer equals the learner's on this case AND on
    every earlier case of the check where the mistake applies (``history``: the ``(case, got)``
    pairs of the cases that passed). A wrong answer that only happens to equal a mistake's on one
    case (a single number, say) gets no hint: the message then says what differs and where."""
    for m in mistakes:
        try:
            wrong = m.wrong(case)
        except Exception:  # the mistake does not apply to this case
            continue
        if _check_result(got, wrong, outputs, rtol, atol, False):
            continue
        if not _check_result(expected, wrong, outputs, rtol, atol, False):
            continue  # on this case the mistake gives the right answer: it explains nothing
        if all(_consistent(m, c, g, outputs, rtol, atol) for c, g in history):
            return ["hint: " + m.text(case)]
    return []


def _consistent(m, case, got, outputs, rtol, atol) -> bool:
    """The learner's answer on an earlier case is what mistake ``m`` gives there (or ``m`` does not
    apply to that case)."""
    try:
        wrong = m.wrong(case)
    except Exception:
        return True
    return not _check_result(got, wrong, outputs, rtol, atol, False)

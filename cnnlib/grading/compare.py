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
            return [f"expected {label} dtype {expected.dtype}, got {got.dtype}; hint: keep the "
                    "input's dtype (e.g. np.zeros(shape, dtype=x.dtype))"]
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
            return [f"expected {label} {expected!r} (a number), got {_short(got)} ({type(got).__name__})"]
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
    return [
        f"{label}: {len(bad)} of {expected.size} values differ (rtol={rtol:g}, atol={atol:g}); "
        f"first{where}: expected {_num(expected[idx])}, got {_num(got[idx])}"
    ]


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
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and len(old) == len(new):
        for o, n in zip(old, new):
            c = _changed(o, n)
            if c:
                return c
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old:
            c = _changed(old[k], new.get(k))
            if c:
                return f"[{k!r}] {c}"
    return ""


def _hints(got, expected, case, outputs, mistakes, rtol, atol) -> list[str]:
    """The hint of the first mistake whose wrong answer equals the learner's (exactly, or failing
    that in shape when the learner's shape is wrong)."""
    answers = []
    for m in mistakes:
        try:
            wrong = m.wrong(case)
        except Exception:  # the mistake does not apply to this case
            continue
        if not _check_result(got, wrong, outputs, rtol, atol, False):
            return ["hint: " + m.text(case)]
        answers.append((m, wrong))
    labels, values, problems = _select(got, outputs)
    _, exp_values, _ = _select(expected, outputs)
    if problems or not any(np.shape(v) != np.shape(e) for v, e in zip(values, exp_values)):
        return []
    for m, wrong in answers:
        _, wrong_values, bad = _select(wrong, outputs)
        if not bad and all(np.shape(v) == np.shape(w) for v, w in zip(values, wrong_values)):
            return ["hint: " + m.text(case)]
    return []

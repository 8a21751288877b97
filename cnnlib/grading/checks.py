"""The checks the course's test cells call: a learner's function against cnnlib's reference.

:func:`check_function` compares a function on many cases, :func:`check_value` one computed value,
:func:`check_gradients` a backward pass against numerical gradients. Each raises a
:class:`~cnnlib.grading.failures.GradingFailure` that names the case, says what was expected and
what arrived, and adds a hint from the exercise's known mistakes.
"""

from __future__ import annotations

import copy
import numbers
import traceback
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from cnnlib.grading import guard
from cnnlib.grading.cases import _first, _shapes_of
from cnnlib.grading.compare import _changed, _check_result, _compare, _hints, _tolerances
from cnnlib.grading.failures import GradingFailure, _cases_pass, _fail, _learner_frames, describe_case
from cnnlib.grading.mistakes import COMMON_ERROR_HINTS, ErrorHint, Mistake
from cnnlib.grading.references import _stand_in_note

Case = Mapping[str, Any]


def check_function(
    fn: Callable,
    reference: Callable,
    cases: Iterable[Case],
    *,
    name: str | None = None,
    outputs: str | Sequence[str | None] = "output",
    mistakes: Sequence[Mistake | ErrorHint] = (),
    rtol: float | None = None,
    atol: float | None = None,
    exact_dtype: bool = True,
    shortcuts: bool = False,
    quiet: bool = False,
) -> None:
    """Check ``fn`` against ``reference`` on every case; raise :class:`GradingFailure` on the first miss.

    Args:
        fn: the learner's function.
        reference: computes the right answer; called with the same positional arguments.
        cases: dicts of arguments in signature order (a list, or a generator such as
            ``grading.conv_cases(20, seed=7)``).
        name: the exercise's name in messages and in the reference guard (default ``fn.__name__``).
        outputs: a label for the returned value, or one label per element when the function returns
            a tuple; ``None`` skips an element, e.g. ``("out", None)`` checks ``out`` of
            ``(out, cache)`` and ignores the cache, ``("dx", "dw", "db")`` checks all three.
        mistakes: known wrong variants (:class:`Mistake`): the first whose answer equals the
            learner's gives the hint; and :class:`ErrorHint` entries for exceptions the learner's
            function raises.
        rtol, atol: tolerances for float outputs (default: tight for float64, looser for float32).
        exact_dtype: require the reference's exact dtype for arrays (the course's one dtype rule,
            :data:`~cnnlib.grading.compare.DTYPE_RULE`: float32 in, float32 out; counts are ints).
            ``False`` accepts any float dtype where a float is expected (never integers).
        shortcuts: allow the library shortcuts (scipy.signal's correlate/convolve, ...; see
            :data:`cnnlib.grading.guard.SHORTCUTS`) while ``fn`` runs, for an exercise whose
            statement asks for them. By default they are switched off, like cnnlib's reference.
        quiet: do not print the one-line success message.

    Example:
        >>> def double(x):
        ...     return 2 * x
        >>> check_function(double, lambda x: x + x, [{"x": np.arange(3.0)}])
        ✔ double: 1 case passes
    """
    __tracebackhide__ = True
    name = name or getattr(fn, "__name__", "your function")
    if not callable(fn):
        _fail(f"{name}: expected a function, got {type(fn).__name__} ({fn!r:.60})")
    cases = list(cases)
    wrong_answers = [m for m in mistakes if isinstance(m, Mistake)]
    error_hints = [m for m in mistakes if isinstance(m, ErrorHint)]
    history: list[tuple[Case, Any]] = []  # (case, answer) of the cases passed, for the hints
    for i, case in enumerate(cases, 1):
        header = f"{name}, case {i} of {len(cases)}: {describe_case(case)}"
        pristine = copy.deepcopy(list(case.values()))
        got = _call_learner(fn, case, name, header, error_hints=error_hints, shortcuts=shortcuts)
        # computed after the learner's call: their code cannot read (or edit) it in this frame
        expected = reference(*pristine)
        problems = _check_result(got, expected, outputs, rtol, atol, exact_dtype)
        if problems:
            problems += _hints(got, expected, case, outputs, wrong_answers, rtol, atol, history)
            _fail(header + "".join("\n  " + p for p in problems + _stand_in_note(name)))
        if wrong_answers:
            history.append((dict(zip(case.keys(), pristine)), got))
    if not quiet:
        print(f"✔ {name}: {_cases_pass(len(cases))}")


def check_value(
    got: Any,
    expected: Any,
    *,
    name: str,
    hint: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    quiet: bool = False,
) -> None:
    """Check one value the learner computed (a number, an array, a tuple) against ``expected``.

    Example:
        >>> check_value(6600, 6600, name="response on the curve")
        ✔ response on the curve: correct
    """
    __tracebackhide__ = True
    if isinstance(expected, numbers.Integral) and isinstance(got, numbers.Real) and not isinstance(got, numbers.Integral):
        expected = float(expected)  # 6600.0 is a fine answer to "6600"
    problems = _compare(got, expected, "value", *_tolerances(expected, rtol, atol), False)
    if problems:
        if hint:
            problems.append("hint: " + hint)
        _fail(name + "".join("\n  " + p for p in problems))
    if not quiet:
        print(f"✔ {name}: correct")


def check_gradients(
    backward: Callable,
    forward: Callable,
    cases: Iterable[Case],
    *,
    wrt: Sequence[str],
    by_shape: Sequence[str] = (),
    name: str | None = None,
    seed: int = 0,
    eps: float = 1e-5,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    quiet: bool = False,
) -> None:
    """Check a backward pass against central-difference numerical gradients of ``forward``.

    For each case, ``out = forward(*case)`` (the first element if it returns ``(out, cache)``), a
    random upstream gradient ``dout`` of ``out``'s shape is drawn, and the learner's
    ``backward(dout, *case)`` must return the gradients of ``sum(out * dout)`` with respect to the
    arguments named in ``wrt``, in that order (one array when ``wrt`` has one name). Use float64
    cases without ties; ``forward`` is normally cnnlib's reference, so a learner's backward is
    checked on its own.

    ``by_shape`` names arguments the backward takes by their shape only: for
    ``avg_pool_backward(dout, x_shape, kernel_size, stride)``, ``by_shape=["x"]`` passes
    ``x.shape`` where the forward takes ``x`` (messages call it ``x_shape``).

    Example:
        >>> def relu_backward(dout, x):
        ...     return dout * (x > 0)
        >>> check_gradients(relu_backward, lambda x: np.maximum(x, 0),
        ...                 [{"x": np.array([[-1.0, 2.0], [3.0, -4.0]])}], wrt=["x"])
        ✔ relu_backward: gradients match numerical gradients (1 case passes)
    """
    __tracebackhide__ = True
    name = name or getattr(backward, "__name__", "your function")
    rng = np.random.default_rng(seed)
    cases = list(cases)
    labels = tuple("d" + w for w in wrt)
    for i, case in enumerate(cases, 1):
        backward_case = _shapes_of(case, by_shape)
        header = f"{name}, case {i} of {len(cases)}: {describe_case(backward_case)}"
        out = _first(forward(*copy.deepcopy(list(case.values()))))
        dout = rng.standard_normal(np.shape(out))
        pristine = copy.deepcopy(dict(case))
        got = _call_learner(backward, backward_case, name, header, leading=(dout,))
        # computed after the learner's call: their code cannot read it in this frame
        numeric = tuple(_numerical_gradient(forward, pristine, w, dout, eps) for w in wrt)
        expected = numeric if len(wrt) > 1 else numeric[0]
        outs = labels if len(wrt) > 1 else labels[0]
        problems = _check_result(got, expected, outs, rtol, atol, False)
        if problems:
            _fail(
                header
                + "".join("\n  " + p for p in problems + _stand_in_note(name))
                + "\n  (expected values are numerical gradients: (f(v + eps) - f(v - eps)) / (2 eps)"
                " of sum(out * dout))"
            )
    if not quiet:
        print(f"✔ {name}: gradients match numerical gradients ({_cases_pass(len(cases))})")


def _call_learner(
    fn: Callable, case: Case, name: str, header: str, leading: tuple = (), error_hints: Sequence[ErrorHint] = (),
    shortcuts: bool = False,
) -> Any:
    """Call the learner's function with the reference blocked; turn its errors into messages."""
    __tracebackhide__ = True
    note = "".join("\n  " + n for n in _stand_in_note(name))
    args = list(case.values())
    before = copy.deepcopy(args)
    try:
        with guard.blocked(name, shortcuts=shortcuts):
            got = fn(*leading, *args)
    except NotImplementedError:
        raise GradingFailure(
            f"{name}: not implemented yet. Replace `raise NotImplementedError()` with your code "
            "and run the cell again."
        ) from None
    except guard.ReferenceBlockedError as exc:
        raise GradingFailure(f"{header}\n  {exc}") from exc
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        where = _learner_frames(exc)
        hint = next((t for h in [*error_hints, *COMMON_ERROR_HINTS] if (t := h.text(case, exc))), None)
        raise GradingFailure(
            f"{header}\n  your function raised {last}"
            + (f"\n  where: {where}" if where else "")
            + (f"\n  hint: {hint}" if hint else "")
            + note
            + "\n  (your traceback is shown above this message)"
        ) from exc
    for key, old, new in zip(case.keys(), before, args):
        changed = _changed(old, new)
        if changed:
            fix = ("build a new list (list(...), a + [...], a list comprehension)" if isinstance(old, list)
                   else "write to a new array (np.zeros(...), np.pad(...), x.copy())")
            raise GradingFailure(
                f"{header}\n  your function changed its input `{key}` in place ({changed}); "
                f"hint: leave the inputs alone and {fix}" + note
            )
    return got


def _numerical_gradient(forward: Callable, case: Case, key: str, dout: np.ndarray, eps: float) -> np.ndarray:
    """d sum(forward(case) * dout) / d case[key] by centred differences (cnnlib.gradcheck, float64)."""
    from cnnlib.gradcheck import numerical_gradient

    args = {k: copy.deepcopy(v) for k, v in case.items()}
    args[key] = v = np.array(args[key], dtype=np.float64)
    return numerical_gradient(lambda _: _first(forward(*args.values())), v, df=dout, h=eps)


def check_faster(
    fn: Callable,
    loops: Callable,
    case: Case,
    *,
    name: str | None = None,
    factor: float = 5.0,
    repeats: int = 3,
    quiet: bool = False,
) -> None:
    """Check that ``fn`` is vectorized: at least ``factor`` times faster than ``loops`` on ``case``.

    ``loops`` is a plain-loop version of the same operation (e.g. :func:`conv2d_loops`); on a case
    of a few thousand windows it takes tens of milliseconds, a vectorized version well under one.
    Both are timed the same way (best of ``repeats`` runs; ``fn`` inside the reference guard), so
    the load of the machine cancels out. A "vectorized" exercise that calls a loop version (the
    learner's own, or copied loops) is about as slow as the loops and fails.

    Example:
        >>> def loops(x):
        ...     return [sum(v for v in range(int(x))) for _ in range(200)]
        >>> check_faster(lambda x: [x * (x - 1) // 2] * 200, loops, {"x": 3000}, name="sums")
        ✔ sums: faster than loops
    """
    __tracebackhide__ = True
    import time

    name = name or getattr(fn, "__name__", "your function")
    header = f"{name}, timed on: {describe_case(case)}"

    def best(call: Callable[[], Any], n: int) -> float:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return min(times)

    args = list(copy.deepcopy(list(case.values())))
    for _attempt in range(2):  # a second look before failing: a busy machine can stall one run
        slow = best(lambda: loops(*copy.deepcopy(args)), 1)
        fast = best(lambda: _call_learner(fn, dict(zip(case.keys(), copy.deepcopy(args))), name, header), repeats)
        if fast * factor <= slow:
            break
    if fast * factor > slow:
        _fail(f"{header}\n  your function took {fast * 1e3:.1f} ms, about as long as plain loops "
              f"({slow * 1e3:.1f} ms); it must be at least {factor:g} times faster. No loops here: "
              "do not call your loop version (or copy its loops); let numpy do the work in "
              "whole-array operations.")
    if not quiet:
        print(f"✔ {name}: faster than loops")

"""Checks that the course's test cells call: a learner's function against cnnlib's reference.

Every graded test cell in ``solutions/`` follows the same pattern::

    from cnnlib import grading
    from cnnlib import functional as F

    # visible tests: a few hand-picked cases the learner can read
    grading.check_function(pad2d, F.pad2d, [
        {"x": np.ones((1, 1, 2, 3)), "padding": 1},
        {"x": np.arange(24.0).reshape(2, 3, 2, 2), "padding": (2, 0)},
    ], mistakes=grading.pad_mistakes())
    ### BEGIN HIDDEN TESTS
    grading.check_function(pad2d, F.pad2d, grading.pad_cases(20, seed=20201),
                           mistakes=grading.pad_mistakes())
    ### END HIDDEN TESTS

A *case* is a dict of the function's arguments, in the order of its signature (values are passed
positionally, so a learner may rename parameters). For each case, :func:`check_function`

1. computes the expected answer with the reference (on a copy of the arguments);
2. calls the learner's function inside ``_guard.blocked(name)``, so a "solution" that calls
   cnnlib's reference fails with the guard's message;
3. fails with a :class:`GradingFailure` (an ``AssertionError``) that names the case, says what was
   expected and what arrived (shape, dtype, first differing index, how many differ), and adds a
   hint when the learner's answer equals a known-wrong variant (a :class:`Mistake`: forgot the
   stride, flipped the kernel, padded the channel axis, ...), or when the function returned None,
   changed its input in place, or returned integers where floats were expected;
4. reports an exception raised by the learner's function with the case, the exception's last line,
   the learner's line that raised, a hint (an :class:`ErrorHint` of the exercise, such as
   "did you pad the channel axis?" for a broadcasting error in a convolution, else one of
   :data:`COMMON_ERROR_HINTS`) and (chained) its traceback; an unfinished exercise
   (``NotImplementedError``) gets a one-line "not implemented yet".

Hidden tests draw many cases from a seeded generator (:func:`conv_cases`, :func:`pool_cases`,
:func:`pad_cases`, :func:`image_cases`, :func:`size_cases`, :func:`linear_cases`,
:func:`array_cases`, or :func:`random_cases` with your own ``make_case(rng)``), so hard-coding the
visible answers scores nothing. Backward passes are also checked against numerical gradients with
:func:`check_gradients`; :func:`with_dout` puts a random upstream gradient in front of forward-pass
cases, and :func:`backward_reference` chains cnnlib's forward and backward into a reference.

Exercises stay independent: when an exercise calls the learner's function from an earlier one (say
``conv_forward_im2col`` calls ``im2col``), the test cell swaps in a correct version for the check::

    with grading.substitute(globals(), im2col=grading.reference_stand_in(im2col_reference)):
        grading.check_function(conv_forward_im2col, F.conv2d, cases, mistakes=conv_mistakes)

The stand-in may run cnnlib's reference although the guard is on; the learner's own code is still
refused it.

In Jupyter a :class:`GradingFailure` shows as its message alone, preceded by the learner's own
traceback when their code raised (``_render_traceback_``): no grader internals, and no lines of the
test cell, which may be hidden tests. Outside IPython it is a plain ``AssertionError``.

Adding a check for a new exercise (notebooks 03-08): pick the reference (a cnnlib function, or a
small wrapper that adapts its layout), write three to six visible cases that tell a story (the
worked example, an edge case, a non-square one), choose a generator for the hidden cases (or
``random_cases`` with your own ``make_case``), and list the exercise's known mistakes (the
``*_mistakes`` helpers, or ``Mistake(hint, with_args(reference, stride=1))`` for your own;
``ErrorHint(ValueError, "could not be broadcast", hint)`` when a mistake makes numpy raise).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
import numbers
import os
import re
import sysconfig
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence

import numpy as np

from cnnlib import _guard

__all__ = [
    "GradingFailure",
    "Mistake",
    "ErrorHint",
    "COMMON_ERROR_HINTS",
    "check_function",
    "check_value",
    "check_gradients",
    "substitute",
    "reference_stand_in",
    "with_args",
    "known_answer",
    "without_cache",
    "backward_reference",
    "conv2d_hw",
    "conv_mistakes",
    "pool_mistakes",
    "pad_mistakes",
    "output_size_mistakes",
    "random_cases",
    "with_dout",
    "conv_cases",
    "pool_cases",
    "pad_cases",
    "image_cases",
    "size_cases",
    "linear_cases",
    "array_cases",
    "describe_case",
]

Case = Mapping[str, Any]


class GradingFailure(AssertionError):
    """A test cell's check failed; the message says which case, what was wrong and a hint."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this failure: the learner's own traceback when their code raised,
        then the message; neither the grader's frames nor the test cell's (hidden) lines."""
        lines: list[str] = []
        cause = self.__cause__
        if cause is not None:
            lines += _ipython_traceback(cause)
            lines += ["", "The above exception was the direct cause of the following exception:", ""]
        lines.append(f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}")
        return lines


def _ipython_traceback(exc: BaseException) -> list[str]:
    """The learner's exception as IPython formats it, starting at the learner's own code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # skip the grader's frames
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.InteractiveTB.structured_traceback(type(exc), exc, tb)
    except Exception:  # pragma: no cover - fall back to the plain format
        pass
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n").split("\n")


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer and the hint to give when the learner's output equals it.

    Args:
        hint: the hint text, or ``hint(case) -> str`` to put the case's numbers in it.
        wrong: ``wrong(case) -> answer`` computes the wrong answer for a case (a dict of arguments),
            e.g. ``with_args(F.conv2d, padding=0)`` for "forgot the padding".
    """

    hint: str | Callable[[Case], str]
    wrong: Callable[[Case], Any]

    def text(self, case: Case) -> str:
        return self.hint(case) if callable(self.hint) else self.hint


@dataclass(frozen=True)
class ErrorHint:
    """A hint for an exception the learner's function raises (a mistake that makes numpy fail).

    Put it in a check's ``mistakes`` list next to the :class:`Mistake` entries; the first that
    matches the exception gives the hint, else one of :data:`COMMON_ERROR_HINTS` does.

    Args:
        error: the exception type (or a tuple of types) it is about.
        match: a regular expression searched in the exception's message (``None``: any message).
        hint: the hint text, or ``hint(case, exc) -> str | None`` to put the case's numbers in it
            (``None`` when the hint does not apply after all).

    Example:
        >>> h = ErrorHint(ValueError, r"could not be broadcast", "check the shapes you multiply")
        >>> h.text({}, ValueError("operands could not be broadcast together"))
        'check the shapes you multiply'
    """

    error: type[BaseException] | tuple[type[BaseException], ...]
    match: str | None
    hint: str | Callable[[Case, BaseException], str | None]

    def text(self, case: Case, exc: BaseException) -> str | None:
        """The hint for ``exc`` raised on ``case``, or None when this entry does not apply."""
        if not isinstance(exc, self.error):
            return None
        if self.match is not None and not re.search(self.match, str(exc)):
            return None
        try:
            return self.hint(case, exc) if callable(self.hint) else self.hint
        except Exception:  # a hint that cannot read this case does not apply
            return None


#: Hints for the numpy errors learners meet most; used after an exercise's own :class:`ErrorHint`s.
COMMON_ERROR_HINTS: list[ErrorHint] = [
    ErrorHint(ValueError, r"operands could not be broadcast together",
              "two arrays you combine on that line have shapes that do not fit (both are in the "
              "error): print their shapes; is a slice cut short, or taken over the wrong axes?"),
    ErrorHint(ValueError, r"could not broadcast input array from shape",
              "what you assign does not fit the slice it goes into (both shapes are in the error): "
              "check the slice's bounds, and reduce what you assign to the slice's shape."),
    ErrorHint(ValueError, r"setting an array element with a sequence",
              "you put an array where ONE number goes: out[...] at one position holds one number; "
              "did you forget to sum (np.sum(...)) or to reduce the window?"),
    ErrorHint(ValueError, r"cannot reshape array of size",
              "a reshape keeps the number of values: the product of the new shape must equal the "
              "array's size."),
    ErrorHint(ValueError, r"matmul: Input operand|not aligned",
              "in A @ B the last axis of A must be as long as the second-to-last axis of B: print "
              "both shapes."),
    ErrorHint(IndexError, r"out of bounds",
              "an index went past the end of an axis: do your loops run over the output size "
              "(from the formula), and do your slices start where they should?"),
    ErrorHint((TypeError, IndexError),
              r"cannot be interpreted as an integer|slice indices must be integers|only integers|"
              r"expected a sequence of integers",
              "sizes and indices must be ints: compute them with // (not /), or wrap them in int(...)."),
]


# ----------------------------------------------------------------------------------------------
# the checks


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
    exact_dtype: bool = False,
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
        exact_dtype: also require the reference's exact dtype (by default float32 vs float64 is
            accepted, integers where floats are expected are not).
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
    for i, case in enumerate(cases, 1):
        header = f"{name}, case {i} of {len(cases)}: {describe_case(case)}"
        pristine = copy.deepcopy(list(case.values()))
        got = _call_learner(fn, case, name, header, error_hints=error_hints)
        # computed after the learner's call: their code cannot read (or edit) it in this frame
        expected = reference(*pristine)
        problems = _check_result(got, expected, outputs, rtol, atol, exact_dtype)
        if problems:
            problems += _hints(got, expected, case, outputs, wrong_answers, rtol, atol)
            _fail(header + "".join("\n  " + p for p in problems + _stand_in_note(name)))
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


# ----------------------------------------------------------------------------------------------
# exercises that call an earlier exercise

_substituted: list[str] = []  # names replaced by `substitute` right now (for the failure note)


class _StandIn:
    """A correct version of an earlier exercise (see :func:`reference_stand_in`)."""

    def __init__(self, fn: Callable):
        self._fn = fn
        self._lift = _guard.allowed()  # made here, in the test cell: the learner's code cannot
        self._armed = 0  # > 0 while installed by `substitute`
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if not self._armed:
            return self._fn(*args, **kwargs)
        with self._lift:
            return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<correct stand-in for {getattr(self._fn, '__name__', 'a function')}>"


def reference_stand_in(fn: Callable) -> Callable:
    """A correct stand-in that may run cnnlib's reference while a learner's function is checked.

    ``fn`` is cnnlib's function, or the test cell's own reference built on cnnlib. Installed with
    :func:`substitute`, the stand-in lifts the guard for its own call only: the learner's function
    may call the stand-in, but a direct call of cnnlib's reference from the learner's code is
    still refused. Make it in the test cell: made while a check runs it raises
    :class:`~cnnlib._guard.ReferenceBlockedError`.

    Example:
        >>> from cnnlib import shapes
        >>> stand_in = reference_stand_in(shapes.conv2d_params)
        >>> stand_in(3, 16, 2)
        208
    """
    return _StandIn(fn)


@contextlib.contextmanager
def substitute(namespace: MutableMapping[str, Any] | Callable, /, **stand_ins: Any) -> Iterator[None]:
    """Replace functions of the learner's namespace for the checks inside the ``with`` block.

    An exercise that calls the learner's function from an earlier exercise (``model_params``
    calling ``conv_params``, ``conv_forward_im2col`` calling ``im2col``) is checked with a correct
    version of that function, so a mistake costs points only once. The learner's functions (or
    the absence of one) are restored afterwards, also when a check fails. A failure message says
    which functions were replaced.

    Args:
        namespace: where the learner's functions live: ``globals()`` in a test cell, or the
            learner's function itself (its module's globals are used).
        stand_ins: ``name=function``; use :func:`reference_stand_in` for one that runs cnnlib's
            reference, or any function written by hand.

    Example:
        >>> from cnnlib import shapes
        >>> def conv_params(c_in, c_out, k):
        ...     return -1  # a learner's wrong answer
        >>> def model_params(c_in, filters, k, n_classes):
        ...     return [conv_params(c_in, filters[0], k)]
        >>> with substitute(globals(), conv_params=reference_stand_in(shapes.conv2d_params)):
        ...     model_params(3, [16], 2, 10)
        [208]
        >>> model_params(3, [16], 2, 10)
        [-1]
    """
    if _guard.is_blocked():
        raise _guard.ReferenceBlockedError(
            f"{_guard.current()}: your code called grading.substitute, which only a test cell may "
            "use; write this exercise with numpy."
        )
    if isinstance(namespace, MutableMapping):
        ns = namespace
    elif callable(namespace) and isinstance(getattr(namespace, "__globals__", None), dict):
        ns = namespace.__globals__
    else:
        raise TypeError(f"substitute: expected globals() or a function, got {type(namespace).__name__}")
    missing = object()
    saved = {name: ns.get(name, missing) for name in stand_ins}
    armed = [f for f in stand_ins.values() if isinstance(f, _StandIn)]
    for f in armed:
        f._armed += 1
    ns.update(stand_ins)
    _substituted.extend(stand_ins)
    try:
        yield
    finally:
        del _substituted[len(_substituted) - len(stand_ins):]
        for f in armed:
            f._armed -= 1
        for name, old in saved.items():
            if old is missing:
                ns.pop(name, None)
            else:
                ns[name] = old


def _stand_in_note(name: str) -> list[str]:
    """The note of a failure message while :func:`substitute` has replaced earlier exercises."""
    names = [n for n in dict.fromkeys(_substituted) if n != name]
    if not names:
        return []
    listed = ", ".join(f"`{n}`" for n in names)
    return [f"note: for this check your {listed} {'was' if len(names) == 1 else 'were'} replaced by a "
            f"correct version, so the problem is in {name} itself."]


# ----------------------------------------------------------------------------------------------
# references and known mistakes


def without_cache(forward: Callable) -> Callable:
    """A reference returning only ``out`` of a forward pass that returns ``(out, cache)``.

    Example:
        >>> from cnnlib import functional as F
        >>> reference = without_cache(F.max_pool2d_forward)
        >>> reference(np.arange(16.0).reshape(1, 1, 4, 4), 2, 2).shape
        (1, 1, 2, 2)
    """

    def out_only(*args: Any, **kwargs: Any) -> Any:
        return _first(forward(*args, **kwargs))

    out_only.__name__ = getattr(forward, "__name__", "forward")
    out_only.__doc__ = f"{out_only.__name__} without its cache: out only."
    return out_only


def backward_reference(forward: Callable, backward: Callable, *, by_shape: Sequence[str] = ()) -> Callable:
    """``reference(dout, *forward_args)``: cnnlib's backward pass, after a forward pass for the cache.

    The reference of a backward exercise whose function takes ``(dout, x, ...)`` (the forward's
    arguments) instead of a cache. ``by_shape`` names forward arguments that the exercise takes by
    their shape (``x_shape``): the forward then runs on zeros of that shape, which is right for
    backward passes that do not depend on the values (mean pooling, flatten).

    Example:
        >>> from cnnlib import functional as F
        >>> reference = backward_reference(F.avg_pool2d_forward, F.avg_pool2d_backward, by_shape=["x"])
        >>> reference(np.ones((1, 1, 1, 1)), (1, 1, 2, 2), 2, 2)[0, 0]
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """
    names = list(inspect.signature(forward).parameters)
    missing = [n for n in by_shape if n not in names]
    if missing:
        raise ValueError(f"backward_reference: {forward.__name__} has no argument {missing[0]!r}")
    shaped = {names.index(n) for n in by_shape}

    def reference(dout: Any, *args: Any) -> Any:
        args = tuple(np.zeros(a) if i in shaped else a for i, a in enumerate(args))
        _, cache = forward(*args)
        return backward(dout, cache)

    reference.__name__ = getattr(backward, "__name__", "backward")
    return reference


def conv2d_hw(image: np.ndarray, kernel: np.ndarray, stride: Any = 1, padding: Any = 0) -> np.ndarray:
    """cnnlib's convolution (cross-correlation) of ONE 2-D image with ONE 2-D kernel.

    The reference of single-channel exercises (notebooks 01 and 02): ``image`` (H, W) and
    ``kernel`` (KH, KW) go through :func:`cnnlib.functional.conv2d` as a batch of one; integer
    images are converted to float64. Returns ``(H_out, W_out)``.

    Example:
        >>> conv2d_hw(np.arange(16).reshape(4, 4), np.ones((3, 3)), stride=1, padding=0)
        array([[45., 54.],
               [81., 90.]])
    """
    from cnnlib import functional as F

    image, kernel = np.asarray(image), np.asarray(kernel)
    if image.dtype.kind in "biu":
        image = image.astype(np.float64)
    if kernel.dtype.kind in "biu":
        kernel = kernel.astype(np.float64)
    return F.conv2d(image[None, None], kernel[None, None], None, stride, padding)[0, 0]


def known_answer(answer: Any, **where: Any) -> Callable[[Case], Any]:
    """A ``wrong(case)`` for one hand-picked case: ``answer`` on the case whose arguments equal
    ``where``; on any other case the mistake does not apply.

    For a wrong answer that is easy to write down and hard to compute in general, e.g. what an
    overwrite (``=`` instead of ``+=``) gives on the worked example of overlapping windows.

    Example:
        >>> wrong = known_answer(np.array([4.0]), x_shape=(1, 1, 3, 3), stride=1)
        >>> wrong({"dout": np.ones(4), "x_shape": (1, 1, 3, 3), "stride": 1})
        array([4.])
    """

    def wrong(case: Case) -> Any:
        for key, value in where.items():
            if key not in case or not _same(case[key], value):
                raise KeyError(key)  # another case: does not apply
        return copy.deepcopy(answer)

    return wrong


def _same(a: Any, b: Any) -> bool:
    try:
        a, b = np.asarray(a), np.asarray(b)
    except Exception:
        return a == b
    return a.shape == b.shape and bool(np.array_equal(a, b))


def with_args(func: Callable, **changes: Any) -> Callable[[Case], Any]:
    """A ``wrong(case)`` that calls ``func`` with some arguments changed.

    A value replaces the argument; a callable transforms it. With no changes, the wrong answer is
    simply ``func``'s answer on the case (another operation's, e.g. mean instead of max pooling).

    Example:
        >>> forgot_padding = with_args(lambda n, p: n + 2 * p, p=0)
        >>> forgot_padding({"n": 5, "p": 1})
        5
        >>> doubled = with_args(lambda n, p: n + 2 * p, n=lambda n: 2 * n)
        >>> doubled({"n": 5, "p": 1})
        12
    """

    def wrong(case: Case) -> Any:
        args = copy.deepcopy(dict(case))
        for key, change in changes.items():
            if key not in args:
                raise KeyError(key)
            args[key] = change(args[key]) if callable(change) else change
        return func(*args.values())

    return wrong


def conv_mistakes(
    reference: Callable,
    *,
    x: str = "x",
    w: str = "w",
    b: str | None = "b",
    stride: str = "stride",
    padding: str = "padding",
) -> list[Mistake | ErrorHint]:
    """The usual mistakes of a convolution (cross-correlation) exercise.

    Works for 2-D ``(H, W)`` images with ``(KH, KW)`` kernels and for NCHW batches with
    ``(F, C, KH, KW)`` weights (the last two axes are spatial). Arguments absent from a case are
    skipped (e.g. no stride). Detected: forgot the padding, forgot the stride, flipped kernel (true
    convolution), window stepped by 1 while the output has the strided size, padding on one side
    only, swapped height and width, forgot the bias; and, when numpy raises, a window that does
    not match the kernel: the channel (or batch) axis padded too, or a window cut short at the
    border.
    """

    def formula(case: Case, what: str) -> str:
        xs, ws = np.shape(case[x]), np.shape(case[w])
        s, p = _pair(case.get(stride, 1)), _pair(case.get(padding, 0))
        # explain the axis where leaving out `what` changes the size
        axis = next((a for a in (0, 1) if (p[a] > 0 if what == "padding" else s[a] > 1)), 0)
        sym = "H" if axis == 0 else "W"
        n, k, sa, pa = xs[-2 + axis], ws[-2 + axis], s[axis], p[axis]
        return (
            f"{sym}_out = ({sym} + 2*padding - K{sym}) // stride + 1 = ({n} + {2 * pa} - {k}) // {sa} + 1"
            f" = {(n + 2 * pa - k) // sa + 1}; did you leave out the {what}?"
        )

    def flip(k):
        return np.ascontiguousarray(np.asarray(k)[..., ::-1, ::-1])

    def unit_stride_cropped(case: Case):
        right = _first(reference(*copy.deepcopy(list(case.values()))))
        dense = with_args(reference, **{stride: 1})(case)
        return _on_out(dense, lambda d: d[..., : right.shape[-2], : right.shape[-1]])

    def one_sided(case: Case):
        ph, pw = _pair(case[padding])
        xp = np.asarray(case[x])
        widths = [(0, 0)] * (xp.ndim - 2) + [(ph, 0), (pw, 0)]
        return with_args(reference, **{x: np.pad(xp, widths), padding: 0})(case)

    def swapped(case: Case):
        return _on_out(reference(*copy.deepcopy(list(case.values()))), lambda o: np.swapaxes(o, -1, -2))

    def no_bias(case: Case):
        return with_args(reference, **{b: lambda v: np.zeros_like(v)})(case)

    mistakes = [
        _needs(Mistake(lambda c: formula(c, "padding"), with_args(reference, **{padding: 0})), padding),
        _needs(Mistake(lambda c: formula(c, "stride"), with_args(reference, **{stride: 1})), stride),
        Mistake(
            "your output equals TRUE convolution: the kernel is flipped (rotated 180 degrees). "
            "A CNN's 'convolution' is cross-correlation: multiply the window by the kernel as it is, "
            "without flipping it.",
            with_args(reference, **{w: flip}),
        ),
        _needs(Mistake(
            "the output has the strided size but the window moved by 1 pixel: output position "
            "(i, j) starts at input row i*stride and column j*stride.",
            unit_stride_cropped,
        ), stride),
        _needs(Mistake(
            "zeros were added on one side only: padding adds `padding` rows at the top AND the "
            "bottom, and `padding` columns on the left AND the right.",
            one_sided,
        ), padding),
        Mistake(
            "height and width look swapped: axis -2 is the height (rows), axis -1 the width (columns).",
            swapped,
        ),
    ]
    if b is not None:
        mistakes.append(_needs(Mistake("did you forget to add the bias b[f] to every output of filter f?",
                                       no_bias), b))

    def window_vs_kernel(case: Case, exc: BaseException) -> str:
        xs, ws = np.shape(case[x]), np.shape(case[w])
        ph, pw = _pair(case.get(padding, 0))
        kernel = tuple(ws[1:]) if len(ws) == 4 else tuple(ws)  # what one window must match
        shapes = _shapes_in(str(exc))
        windows = [sh for sh in shapes if sh != kernel and len(sh) == len(kernel)]
        pad_hw = (f"np.pad(x, ((0, 0), (0, 0), ({ph}, {ph}), ({pw}, {pw})))" if len(xs) == 4
                  else f"np.pad(image, (({ph}, {ph}), ({pw}, {pw})))")
        if len(kernel) == 3 and windows and windows[0][0] != kernel[0]:
            return (f"a window has {windows[0][0]} channels but each filter has {kernel[0]} (w[f] is "
                    f"{kernel}): did you pad the channel or batch axis? Pad only the height and the "
                    f"width: {pad_hw}.")
        if windows and all(a <= k for a, k in zip(windows[0][-2:], kernel[-2:])):
            padded = f"Slice the PADDED input ({pad_hw}), and let" if ph or pw else "Let"
            return (f"a window of shape {windows[0]} is smaller than the kernel {kernel}: it was cut "
                    f"short at the border. {padded} the output positions run over range(H_out) and "
                    f"range(W_out) only: " + formula(case, "padding").split(";")[0] + ".")
        return (f"check the shapes of the slices you multiply: a window must have the kernel's shape "
                f"{kernel}. Did you pad the channel or batch axis? Pad only the height and the width: "
                f"{pad_hw}.")

    mistakes.append(ErrorHint(ValueError, r"operands could not be broadcast together", window_vs_kernel))
    return mistakes


def _shapes_in(message: str) -> list[tuple[int, ...]]:
    """The array shapes in a numpy error message: '... with shapes (5,3,3) (3,3,3)' -> [(5, 3, 3), (3, 3, 3)]."""
    return [tuple(int(v) for v in m.replace(" ", "").split(",") if v)
            for m in re.findall(r"\(([\d,\s]+)\)", message)]


def pool_mistakes(
    reference: Callable, *, x: str = "x", kernel_size: str = "kernel_size", stride: str = "stride"
) -> list[Mistake | ErrorHint]:
    """The usual mistakes of a pooling exercise: ignored the stride, assumed non-overlapping
    windows (stride = kernel size), window stepped by 1 while the output has the strided size,
    swapped height and width; and, when numpy raises, a window not reduced to one number per image
    and channel."""

    def formula(case: Case, what: str) -> str:
        (kh, _), n = _pair(case[kernel_size]), np.shape(case[x])[-2]
        s = case.get(stride)
        sh = kh if s is None else _pair(s)[0]
        return (
            f"H_out = (H - K) // stride + 1 = ({n} - {kh}) // {sh} + 1 = {(n - kh) // sh + 1}; {what}"
        )

    def swapped(case: Case):
        return _on_out(reference(*copy.deepcopy(list(case.values()))), lambda o: np.swapaxes(o, -1, -2))

    def unit_stride_cropped(case: Case):
        right = _first(reference(*copy.deepcopy(list(case.values()))))
        dense = with_args(reference, **{stride: 1})(case)
        return _on_out(dense, lambda d: d[..., : right.shape[-2], : right.shape[-1]])

    def not_reduced(case: Case, exc: BaseException) -> str | None:
        found = re.search(r"from shape \(([\d,\s]*)\) into shape \(([\d,\s]*)\)", str(exc))
        if not found or len([v for v in found.group(2).split(",") if v.strip()]) > 2:
            return None  # not "a window assigned to the (N, C) outputs of one position"
        N, C = np.shape(case[x])[:2]
        return (f"each window must become ONE number per image and channel: reduce it over the "
                f"height and the width (axes 2 and 3), e.g. window.max(axis=(2, 3)) has shape "
                f"(N, C) = {(N, C)}; numpy could not fit ({found.group(1)}) into it.")

    return [
        _needs(Mistake(lambda c: formula(c, "did you move the window by 1 instead of by the stride?"),
                       with_args(reference, **{stride: 1})), stride),
        _needs(Mistake(lambda c: formula(c, "the windows may overlap: step by `stride`, not by the "
                                            "kernel size."),
                       with_args(reference, **{stride: None})), stride),
        _needs(Mistake("the output has the right size, but window (i, j) starts at row i*stride and "
                       "column j*stride: did you leave the stride out of the slice?",
                       unit_stride_cropped), stride),
        Mistake("height and width look swapped: axis -2 is the height, axis -1 the width.", swapped),
        ErrorHint(ValueError, r"could not broadcast input array from shape", not_reduced),
    ]


def pad_mistakes(*, x: str = "x", padding: str = "padding") -> list[Mistake]:
    """The usual mistakes of zero padding an NCHW batch (or an HW image): padded the batch and
    channel axes too, padded one side only, swapped the (height, width) padding, padded twice."""

    def padded(case: Case, widths_of: Callable[[int, int, int], list]) -> np.ndarray:
        xs = np.asarray(case[x])
        ph, pw = _pair(case[padding])
        return np.pad(xs, widths_of(xs.ndim, ph, pw))

    def spatial(nd, top, left, bottom=None, right=None):
        bottom = top if bottom is None else bottom
        right = left if right is None else right
        return [(0, 0)] * (nd - 2) + [(top, bottom), (left, right)]

    return [
        Mistake(
            "you padded every axis: only H and W get zeros; the batch (N) and channel (C) axes keep "
            "their size, e.g. np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).",
            lambda c: np.pad(np.asarray(c[x]), c[padding]),  # np.pad(x, padding): every axis
        ),
        Mistake(
            "zeros were added on one side only: `padding` rows go at the top AND the bottom, "
            "`padding` columns on the left AND the right.",
            lambda c: padded(c, lambda nd, ph, pw: spatial(nd, ph, pw, 0, 0)),
        ),
        Mistake(
            "the height and width paddings look swapped: padding=(ph, pw) pads the rows (axis -2) "
            "by ph and the columns (axis -1) by pw.",
            lambda c: padded(c, lambda nd, ph, pw: spatial(nd, pw, ph)),
        ),
        Mistake(
            "you added 2*padding on each side: `padding` is the number of zeros on EACH side.",
            lambda c: padded(c, lambda nd, ph, pw: spatial(nd, 2 * ph, 2 * pw)),
        ),
    ]


def output_size_mistakes(
    *, n: str = "n", kernel_size: str = "kernel_size", stride: str = "stride", padding: str = "padding"
) -> list[Mistake]:
    """The usual mistakes in the output-size formula ``(n + 2*padding - kernel_size) // stride + 1``:
    true division, rounding up, padding counted once, the +1 left out, padding or stride left out."""

    def parts(c: Case):
        return c[n], c[kernel_size], c.get(stride, 1), c.get(padding, 0)

    def shown(c: Case) -> str:
        N, K, S, P = parts(c)
        return f"({N} + 2*{P} - {K}) // {S} + 1 = {(N + 2 * P - K) // S + 1}"

    return [
        Mistake(lambda c: f"the division must round down: {shown(c)} (use //, not /).",
                lambda c: (parts(c)[0] + 2 * parts(c)[3] - parts(c)[1]) / parts(c)[2] + 1),
        Mistake(lambda c: f"a window that does not fit is dropped, so round DOWN: {shown(c)}.",
                lambda c: -(-(parts(c)[0] + 2 * parts(c)[3] - parts(c)[1]) // parts(c)[2]) + 1),
        Mistake(lambda c: f"padding adds zeros on both sides, so it counts twice: {shown(c)}.",
                lambda c: (parts(c)[0] + parts(c)[3] - parts(c)[1]) // parts(c)[2] + 1),
        Mistake(lambda c: f"did you forget the +1 (the first window)? {shown(c)}.",
                lambda c: (parts(c)[0] + 2 * parts(c)[3] - parts(c)[1]) // parts(c)[2]),
        Mistake(lambda c: f"did you leave out the padding? {shown(c)}.",
                lambda c: (parts(c)[0] - parts(c)[1]) // parts(c)[2] + 1),
        Mistake(lambda c: f"did you leave out the stride? {shown(c)}.",
                lambda c: parts(c)[0] + 2 * parts(c)[3] - parts(c)[1] + 1),
    ]


# ----------------------------------------------------------------------------------------------
# case generators (hidden tests): seeded, small, covering the awkward corners


def random_cases(make_case: Callable[[np.random.Generator], dict], n: int, *, seed: int) -> list[dict]:
    """``n`` cases from ``make_case(rng)`` with one seeded generator (for your own kinds of case).

    Example:
        >>> cases = random_cases(lambda rng: {"x": rng.standard_normal(int(rng.integers(1, 4)))}, 3, seed=0)
        >>> len(cases), sorted(cases[0])
        (3, ['x'])
    """
    rng = np.random.default_rng(seed)
    return [make_case(rng) for _ in range(n)]


def with_dout(cases: Iterable[Case], forward: Callable, *, seed: int, by_shape: Sequence[str] = ()) -> list[dict]:
    """Backward-pass cases from forward-pass cases: a random upstream gradient ``dout`` of the shape
    of ``forward(*case)``'s output (of ``out`` when it returns ``(out, cache)``) goes in front of
    each case's arguments, for exercises ``backward(dout, x, ...)``.

    ``by_shape`` names arguments the backward takes by their shape: ``"x"`` becomes
    ``"x_shape": x.shape`` (in the same place), for ``avg_pool_backward(dout, x_shape, ...)``.

    Example:
        >>> from cnnlib import functional as F
        >>> cases = with_dout(pool_cases(1, seed=0), F.max_pool2d_forward, seed=0)
        >>> list(cases[0])
        ['dout', 'x', 'kernel_size', 'stride']
        >>> list(with_dout(pool_cases(1, seed=0), F.avg_pool2d_forward, seed=0, by_shape=["x"])[0])
        ['dout', 'x_shape', 'kernel_size', 'stride']
    """
    rng = np.random.default_rng(seed)
    out = []
    for case in cases:
        result = _first(forward(*copy.deepcopy(list(case.values()))))
        out.append({"dout": rng.standard_normal(np.shape(result)), **_shapes_of(case, by_shape)})
    return out


def _shapes_of(case: Case, names: Sequence[str]) -> dict:
    """The case with each argument of ``names`` replaced by its shape, as ``NAME_shape``."""
    missing = [n for n in names if n not in case]
    if missing:
        raise KeyError(f"by_shape: the case has no argument {missing[0]!r} (it has {', '.join(case)})")
    return {(f"{k}_shape" if k in names else k): (tuple(np.shape(v)) if k in names else v) for k, v in case.items()}


def conv_cases(
    n: int,
    *,
    seed: int,
    layout: str = "nchw",
    stride: bool = True,
    padding: bool = True,
    bias: bool = True,
    pairs: bool = False,
    max_size: int = 9,
    dtype: Any = np.float64,
) -> list[dict]:
    """Convolution cases: odd and non-square sizes and kernels, stride > 1, padding, N = 1, C = 1.

    Args:
        layout: ``"nchw"`` gives ``{"x" (N, C, H, W), "w" (F, C, KH, KW), "b" (F,), "stride",
            "padding"}``; ``"hw"`` gives ``{"image" (H, W), "kernel" (KH, KW), "stride", "padding"}``.
        stride, padding, bias: include that argument (otherwise it is left out of the case).
        pairs: sometimes give stride/padding as an ``(h, w)`` pair instead of an int.
        max_size: largest H and W before padding.

    Every case is valid: the kernel fits the padded input.

    Example:
        >>> [sorted(c) for c in conv_cases(1, seed=0, layout="hw")]
        [['image', 'kernel', 'padding', 'stride']]
    """
    if layout not in ("nchw", "hw"):
        raise ValueError(f"conv_cases: layout must be 'nchw' or 'hw', got {layout!r}")
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        if i % 3 == 0:
            kh = kw = int(rng.choice([1, 3, 5]))  # square odd kernels are the common case
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2)) if stride else (1, 1)
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2)) if padding else (0, 0)
        if not (pairs and i % 2 == 1):  # same value for both axes: an int
            sw, pw = sh, ph
        h = int(rng.integers(max(1, kh - 2 * ph), max(max_size, kh) + 1))
        w = int(rng.integers(max(1, kw - 2 * pw), max(max_size, kw) + 1))
        case: dict[str, Any] = {}
        if layout == "nchw":
            N = 1 if i % 4 == 0 else int(rng.integers(1, 4))
            C = 1 if i % 4 == 1 else int(rng.integers(1, 4))
            F = int(rng.integers(1, 4))
            case["x"] = rng.standard_normal((N, C, h, w)).astype(dtype)
            case["w"] = rng.standard_normal((F, C, kh, kw)).astype(dtype)
            if bias:
                case["b"] = rng.standard_normal(F).astype(dtype)
        else:
            case["image"] = rng.standard_normal((h, w)).astype(dtype)
            case["kernel"] = rng.standard_normal((kh, kw)).astype(dtype)
        if stride:
            case["stride"] = sh if sh == sw else (sh, sw)
        if padding:
            case["padding"] = ph if ph == pw else (ph, pw)
        cases.append(case)
    return cases


def pool_cases(
    n: int, *, seed: int, stride: bool = True, ties: bool = False, max_size: int = 9, dtype: Any = np.float64
) -> list[dict]:
    """Pooling cases ``{"x" (N, C, H, W), "kernel_size", "stride"}``: overlapping windows (stride <
    kernel), non-overlapping, gaps (stride > kernel), non-square inputs, N = 1, C = 1. Values are
    distinct, so the max of every window is unique (max-pool backward has one answer).

    With ``ties=True`` the values are the integers 0, 1 and 2 instead and windows are at least
    2 x 2, so many windows hold their maximum more than once (max-pool backward must route the
    gradient to the first one). Not for numerical gradient checks: a tie has no derivative.

    Example:
        >>> c = pool_cases(1, seed=0)[0]
        >>> sorted(c), c["x"].ndim
        (['kernel_size', 'stride', 'x'], 4)
        >>> np.unique(pool_cases(1, seed=0, ties=True)[0]["x"]).tolist()
        [0.0, 1.0, 2.0]
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        k = int(rng.integers(1, 4)) + (1 if i % 3 == 0 else 0)
        if ties:
            k = max(k, 2)
        s = [k, max(1, k - 1), k + 1, 1][i % 4] if stride else k
        N = 1 if i % 4 == 0 else int(rng.integers(1, 4))
        C = 1 if i % 4 == 1 else int(rng.integers(1, 4))
        h = int(rng.integers(k, max_size + 1))
        w = int(rng.integers(k, max_size + 1))
        size = N * C * h * w
        if ties:
            x = rng.integers(0, 3, size=(N, C, h, w)).astype(dtype)
        else:
            x = (rng.permutation(size).reshape(N, C, h, w) / size + 0.01 * rng.standard_normal()).astype(dtype)
        case: dict[str, Any] = {"x": x, "kernel_size": k}
        if stride:
            case["stride"] = s
        cases.append(case)
    return cases


def pad_cases(n: int, *, seed: int, layout: str = "nchw", pairs: bool = True, max_size: int = 6) -> list[dict]:
    """Zero-padding cases ``{"x", "padding"}``: NCHW (or HW) arrays, padding 0..3 as an int or an
    ``(h, w)`` pair (when ``pairs``).

    Example:
        >>> [c["x"].ndim for c in pad_cases(2, seed=0)]
        [4, 4]
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, max_size + 1, size=2))
        shape = (h, w) if layout == "hw" else (1 if i % 3 == 0 else int(rng.integers(1, 4)),
                                               1 if i % 3 == 1 else int(rng.integers(1, 4)), h, w)
        ph, pw = (int(v) for v in rng.integers(0, 4, size=2))
        padding: Any = (ph, pw) if (pairs and i % 2 == 1) else max(ph, i % 2)
        cases.append({"x": rng.standard_normal(shape), "padding": padding})
    return cases


def image_cases(
    n: int,
    *,
    seed: int,
    rgb: bool = False,
    kernel: bool = False,
    kernel_sizes: Sequence[int] = (1, 3, 5),
    min_size: int = 5,
    max_size: int = 12,
) -> list[dict]:
    """Image cases ``{"image"}`` (plus ``"kernel"`` when asked): float images in [0, 1], grayscale
    ``(H, W)`` or RGB ``(H, W, 3)``, non-square; kernels odd and square from ``kernel_sizes``.

    Example:
        >>> c = image_cases(1, seed=0, rgb=True, kernel=True)[0]
        >>> c["image"].shape[2], c["kernel"].ndim
        (3, 2)
    """
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))
        case: dict[str, Any] = {"image": rng.random((h, w, 3) if rgb else (h, w))}
        if kernel:
            k = int(rng.choice(kernel_sizes))
            case["kernel"] = rng.standard_normal((k, k))
        cases.append(case)
    return cases


def size_cases(n: int, *, seed: int, max_size: int = 256) -> list[dict]:
    """Output-size cases ``{"n", "kernel_size", "stride", "padding"}`` (all valid: the kernel fits
    the padded input); most have ``n + 2*padding - kernel_size`` not divisible by the stride, so
    rounding matters.

    Example:
        >>> sorted(size_cases(1, seed=0)[0])
        ['kernel_size', 'n', 'padding', 'stride']
    """
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        size = int(rng.integers(1, max_size + 1))
        k = int(rng.integers(1, 8))
        s = int(rng.integers(1, 5))
        p = int(rng.integers(0, 4))
        if k > size + 2 * p:
            continue
        if s > 1 and (size + 2 * p - k) % s == 0 and rng.random() < 0.7:
            continue  # keep most cases where floor and true division disagree
        cases.append({"n": size, "kernel_size": k, "stride": s, "padding": p})
    return cases


def linear_cases(n: int, *, seed: int, bias: bool = True, max_features: int = 8) -> list[dict]:
    """Fully connected cases ``{"x" (N, D), "w" (D, M), "b" (M,)}`` with N = 1 and D = 1 included.

    Example:
        >>> c = linear_cases(1, seed=0)[0]
        >>> c["x"].shape[1] == c["w"].shape[0]
        True
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        N = 1 if i % 3 == 0 else int(rng.integers(2, 6))
        D = 1 if i % 3 == 1 else int(rng.integers(2, max_features + 1))
        M = int(rng.integers(1, max_features + 1))
        case = {"x": rng.standard_normal((N, D)), "w": rng.standard_normal((D, M))}
        if bias:
            case["b"] = rng.standard_normal(M)
        cases.append(case)
    return cases


def array_cases(
    n: int, *, seed: int, name: str = "x", min_ndim: int = 1, max_ndim: int = 4, max_size: int = 6
) -> list[dict]:
    """Cases ``{name: array}`` of random shape with values on both sides of zero (ReLU, softmax).

    Example:
        >>> array_cases(1, seed=0, name="logits", min_ndim=2, max_ndim=2)[0]["logits"].ndim
        2
    """
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        ndim = int(rng.integers(min_ndim, max_ndim + 1))
        shape = tuple(int(v) for v in rng.integers(1, max_size + 1, size=ndim))
        cases.append({name: rng.standard_normal(shape)})
    return cases


# ----------------------------------------------------------------------------------------------
# messages


def describe_case(case: Case) -> str:
    """One line naming each argument: arrays by shape (and dtype unless float64), others by value.

    Example:
        >>> describe_case({"x": np.zeros((2, 3, 7, 5)), "w": np.zeros((4, 3, 3, 3)), "stride": 2, "padding": 1})
        'x (2, 3, 7, 5), w (4, 3, 3, 3), stride=2, padding=1'
    """
    parts = []
    for key, value in case.items():
        if isinstance(value, np.ndarray):
            dtype = "" if value.dtype == np.float64 else f" {value.dtype}"
            parts.append(f"{key} {value.shape}{dtype}")
        else:
            parts.append(f"{key}={_short(value)}")
    return ", ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cases_pass(n: int) -> str:
    return "1 case passes" if n == 1 else f"all {n} cases pass"


def _fail(message: str) -> None:
    __tracebackhide__ = True
    raise GradingFailure(message)


def _call_learner(
    fn: Callable, case: Case, name: str, header: str, leading: tuple = (), error_hints: Sequence[ErrorHint] = ()
) -> Any:
    """Call the learner's function with the reference blocked; turn its errors into messages."""
    __tracebackhide__ = True
    note = "".join("\n  " + n for n in _stand_in_note(name))
    args = list(case.values())
    before = copy.deepcopy(args)
    try:
        with _guard.blocked(name):
            got = fn(*leading, *args)
    except NotImplementedError:
        raise GradingFailure(
            f"{name}: not implemented yet. Replace `raise NotImplementedError()` with your code "
            "and run the cell again."
        ) from None
    except _guard.ReferenceBlockedError as exc:
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
            raise GradingFailure(
                f"{header}\n  your function changed its input `{key}` in place ({changed}); "
                f"hint: leave the inputs alone and write to a new array (np.zeros(...), np.pad(...), "
                f"x.copy())" + note
            )
    return got


_LIBRARY_DIRS = tuple(
    os.path.join(os.path.realpath(d), "")
    for d in {os.path.dirname(os.path.abspath(__file__)), os.path.dirname(np.__file__),
              *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
    if d
)


def _is_library(filename: str) -> bool:
    """Code of cnnlib, numpy, or the standard library: not the learner's."""
    return os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def _learner_frames(exc: BaseException) -> str:
    """'line 7 in pad2d: out[...] = x' for the innermost frame of the learner's code (not of numpy's,
    nor of a stand-in that the learner's code called)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    frames = [f for f in frames if not _is_library(f.filename)] or frames
    if not frames:
        return ""
    f = frames[-1]
    line = f" ({f.line.strip()})" if f.line else ""
    return f"line {f.lineno} in {f.name}{line}"


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


def _first(result: Any) -> Any:
    return result[0] if isinstance(result, tuple) else result


def _on_out(result: Any, f: Callable[[Any], Any]) -> Any:
    """Apply ``f`` to the output, or to the first element of an ``(out, cache)`` tuple."""
    return (f(result[0]),) + tuple(result[1:]) if isinstance(result, tuple) else f(result)


def _pair(v: Any) -> tuple[int, int]:
    if v is None:
        return (1, 1)
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _needs(m: Mistake, key: str | None) -> Mistake:
    """Skip a mistake on cases without the argument it is about (e.g. no stride in the case)."""
    if key is None:
        return m
    inner = m.wrong

    def wrong(case: Case) -> Any:
        if key not in case:
            raise KeyError(key)
        return inner(case)

    return Mistake(m.hint, wrong)


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


def _num(v: Any) -> str:
    v = v.item() if hasattr(v, "item") else v
    return f"{v:.6g}" if isinstance(v, float) else repr(v)


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


def _numerical_gradient(forward: Callable, case: Case, key: str, dout: np.ndarray, eps: float) -> np.ndarray:
    """d sum(forward(case) * dout) / d case[key] by centred differences (cnnlib.gradcheck, float64)."""
    from cnnlib.gradcheck import numerical_gradient

    args = {k: copy.deepcopy(v) for k, v in case.items()}
    args[key] = v = np.array(args[key], dtype=np.float64)
    return numerical_gradient(lambda _: _first(forward(*args.values())), v, df=dout, h=eps)

"""References and stand-ins: what a test cell compares with, and correct versions of earlier
exercises swapped in while a later exercise is checked (so one mistake costs points once)."""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable, Iterator, MutableMapping, Sequence

import numpy as np

from cnnlib.grading import guard
from cnnlib.grading.cases import _first


_substituted: list[str] = []  # names replaced by `substitute` right now (for the failure note)


class _StandIn:
    """A correct version of an earlier exercise (see :func:`reference_stand_in`)."""

    def __init__(self, fn: Callable):
        self._fn = fn
        self._lift = guard.allowed()  # made here, in the test cell: the learner's code cannot
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
    :class:`~cnnlib.guard.ReferenceBlockedError`.

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
    if guard.is_blocked():
        raise guard.ReferenceBlockedError(
            f"{guard.current()}: your code called grading.substitute, which only a test cell may "
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
    noted = [n for n, f in stand_ins.items() if not getattr(f, "__forbidden__", False)]
    _substituted.extend(noted)
    # at autograde time the learner's functions live in another process (autograde/judge.py):
    # the judge's hook installs the stand-ins there too, until the block ends
    undo = None
    try:
        remote = ns.get("__cnnlib_substitute_remote__")
        if callable(remote):
            undo = remote(stand_ins)
        yield
    finally:
        if undo is not None:
            undo()
        del _substituted[len(_substituted) - len(noted):]
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


def forbidden(name: str, why: str) -> Callable:
    """A stand-in that refuses to run, for :func:`substitute`: the exercise being checked must not
    call the learner's function ``name`` (a vectorized exercise calling the loop version).

    Example:
        >>> def fast(x):
        ...     return slow(x)
        >>> def slow(x):
        ...     return x
        >>> with substitute(globals(), slow=forbidden("slow", "Write it without loops.")):
        ...     fast(1)
        Traceback (most recent call last):
        ...
        cnnlib.grading.guard.ReferenceBlockedError: your function: your code called your `slow`. Write it without loops.
    """
    def refuse(*args: Any, **kwargs: Any) -> Any:  # a plain function: a judge can pass it anywhere
        raise guard.ReferenceBlockedError(
            f"{guard.current() or 'your function'}: your code called your `{name}`. {why}"
        )

    refuse.__name__ = refuse.__qualname__ = name
    refuse.__forbidden__ = True  # type: ignore[attr-defined]  # not "a correct version" in the notes
    return refuse


@guard.reference
def conv2d_loops(x: np.ndarray, w: np.ndarray, b: Any = None, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Convolution (cross-correlation) of x (N, C, H, W) with w (F, C, KH, KW) by plain loops over
    images, filters and output positions: the slow baseline of :func:`check_faster`.

    Example:
        >>> from cnnlib import functional as F
        >>> x, w = np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3))
        >>> np.allclose(conv2d_loops(x, w, np.zeros(3), 1, 1), F.conv2d(x, w, np.zeros(3), 1, 1))
        True
    """
    N, C, H, W = x.shape
    F_, _, KH, KW = w.shape
    H_out, W_out = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((N, F_, H_out, W_out), dtype=np.result_type(x, w))
    for n in range(N):
        for f in range(F_):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + (0 if b is None else b[f])
    return out


@guard.reference
def im2col_reference(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The windows of x (N, C, H, W) as columns, (N, C*kh*kw, H_out*W_out): row c*kh*kw + i*kw + j,
    column oh*W_out + ow (notebook 03's layout). A stand-in for a later exercise that calls the
    learner's im2col; refused, like cnnlib, while an exercise is checked.

    Example:
        >>> im2col_reference(np.arange(9.0).reshape(1, 1, 3, 3), 2, 2)[0]
        array([[0., 1., 3., 4.],
               [1., 2., 4., 5.],
               [3., 4., 6., 7.],
               [4., 5., 7., 8.]])
    """
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    H_out, W_out = windows.shape[2:4]
    return np.ascontiguousarray(windows.transpose(0, 1, 4, 5, 2, 3)).reshape(N, C * kh * kw, H_out * W_out)

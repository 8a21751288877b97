"""Numerical gradient checking: is a backward pass the true derivative of its forward pass?

Centred differences ``(f(x + h) - f(x - h)) / (2h)`` approximate each partial derivative with an
error of order h**2; in float64 with h = 1e-5, a correct backward agrees to about 1e-8 or better
in relative terms, while a wrong one is off by something like 1e-1. Always check in float64:
float32 round-off (1e-7) divided by 2h swamps the comparison.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from cnnlib.grading.guard import reference

__all__ = ["numerical_gradient", "rel_error", "check_backward"]


def _upstream_dot(out, df) -> float:
    """sum(out * df) in float64 (df = None means out is a scalar loss)."""
    out = np.asarray(out, dtype=np.float64)
    if df is None:
        if out.size != 1:
            raise ValueError(
                f"numerical_gradient: f returned an array of shape {out.shape}; pass df, the upstream "
                "gradient of that shape (or np.ones_like(out) for the gradient of its sum)"
            )
        return float(out.reshape(()))
    if out.shape != df.shape:
        raise ValueError(f"numerical_gradient: f returned shape {out.shape} but df has shape {df.shape}")
    return float(np.dot(out.ravel(), df.ravel()))


@reference
def numerical_gradient(f: Callable, x: np.ndarray, df=None, h: float = 1e-5) -> np.ndarray:
    """Centred-difference estimate of the gradient of f at x.

    Each entry of x is nudged by +h and -h IN PLACE (and restored), and f is called as ``f(x)``;
    so f may also ignore its argument and read an array it closes over that is x itself (the
    weights of a layer, say). For a scalar f this is ``df/dx``; for an array-valued f it is the
    gradient of ``sum(f(x) * df)``: exactly what a backward pass computes when given ``dout=df``.

    Args:
        f: callable taking x and returning a scalar or an array.
        x: float ndarray of any shape (float64 strongly recommended), perturbed in place.
        df: upstream gradient, same shape as f's output; required when f returns an array.
        h: step size.

    Returns:
        grad: float64 array of x's shape.

    Shape:
        grad has the shape of x

    Example:
        >>> x = np.array([1.0, 2.0, 3.0])
        >>> numerical_gradient(lambda v: np.sum(v ** 2), x).round(6)
        array([2., 4., 6.])
        >>> numerical_gradient(lambda v: 3 * v, x, df=np.array([1.0, 0.0, 2.0])).round(6)
        array([3., 0., 6.])

    Introduced in 05_backprop.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(
            f"numerical_gradient: x must be a float numpy array (it is perturbed in place), got "
            f"{type(x).__name__}{' of dtype ' + str(x.dtype) if isinstance(x, np.ndarray) else ''}"
        )
    if not x.flags.writeable:
        raise ValueError("numerical_gradient: x must be writable (it is perturbed in place)")
    if not h > 0:
        raise ValueError(f"numerical_gradient: h must be > 0, got {h!r}")
    if df is not None:
        df = np.asarray(df, dtype=np.float64)
    grad = np.zeros(x.shape, np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        plus = _upstream_dot(np.array(f(x), copy=True), df)  # copy: f may return a view of x
        x[idx] = old - h
        minus = _upstream_dot(np.array(f(x), copy=True), df)
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


@reference
def rel_error(a, b) -> float:
    """Relative error between two arrays: ``max|a - b| / max(max|a|, max|b|)``.

    Scaled by the largest magnitude in either array, so an entry that should be 0 but carries
    round-off noise (common in gradients) does not blow it up, as an entrywise ratio would.
    0.0 when both arrays are all zero. Gradient checks in float64 pass below about 1e-7.

    Args:
        a: array.
        b: array of the same shape.

    Returns:
        error: Python float >= 0.

    Shape:
        a and b must have the same shape

    Example:
        >>> round(rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.000002])), 8)
        1e-06
        >>> rel_error(np.zeros(3), np.zeros(3))
        0.0

    Introduced in 05_backprop.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: a and b must have the same shape (a {a.shape}, b {b.shape})")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)))
    if scale == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)


@reference
def check_backward(
    forward: Callable,
    backward: Callable,
    inputs: Mapping[str, np.ndarray],
    kwargs: Mapping | None = None,
    wrt: Sequence[str] | None = None,
    dout=None,
    seed: int = 0,
    h: float = 1e-5,
) -> dict[str, float]:
    """Compare a backward pass with numerical gradients of its forward pass.

    Calls ``out, cache = forward(**inputs, **kwargs)`` and ``grads = backward(dout, cache)``
    (a single array or a tuple, in the order of ``wrt``), then estimates the gradient of
    ``sum(forward(...)[0] * dout)`` w.r.t. each input named in ``wrt`` with
    :func:`numerical_gradient`, perturbing that input in place.

    Args:
        forward: callable returning (out, cache), e.g. cnnlib.functional.conv2d_forward.
        backward: callable (dout, cache) -> gradient(s), e.g. conv2d_backward.
        inputs: name -> float64 ndarray, the array arguments of forward (checked or not).
        kwargs: other keyword arguments of forward (stride, kernel_size, ...), not checked.
        wrt: names of the inputs that backward returns gradients for, in its return order;
            default: every name in inputs, in order.
        dout: upstream gradient of out's shape; default a seeded standard normal draw.
        seed: seed for the default dout.
        h: step of the centred differences.

    Returns:
        dict name -> rel_error(analytic, numerical) for each name in wrt.

    Shape:
        each gradient must have the shape of its input

    Example:
        >>> from cnnlib.functional import conv2d_forward, conv2d_backward
        >>> rng = np.random.default_rng(0)
        >>> inputs = {"x": rng.normal(size=(2, 3, 5, 5)), "w": rng.normal(size=(4, 3, 3, 3)),
        ...           "b": rng.normal(size=4)}
        >>> errors = check_backward(conv2d_forward, conv2d_backward, inputs, {"stride": 2, "padding": 1})
        >>> sorted(errors), max(errors.values()) < 1e-7
        (['b', 'w', 'x'], True)

    Introduced in 05_backprop.
    """
    kwargs = dict(kwargs or {})
    wrt = list(inputs) if wrt is None else list(wrt)
    for name in wrt:
        if name not in inputs:
            raise ValueError(f"check_backward: wrt names {name!r}, which is not one of the inputs {list(inputs)}")
        v = inputs[name]
        if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
            raise TypeError(f"check_backward: input {name!r} must be a float numpy array, got {type(v).__name__}")
    result = forward(**inputs, **kwargs)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError("check_backward: forward must return (out, cache)")
    out, cache = result
    out = np.asarray(out)
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(out.shape)
    dout = np.asarray(dout, dtype=np.float64)
    if dout.shape != out.shape:
        raise ValueError(f"check_backward: dout has shape {dout.shape} but forward's output has shape {out.shape}")
    grads = backward(dout.astype(out.dtype, copy=False), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(wrt):
        raise ValueError(f"check_backward: backward returned {len(grads)} gradient(s) but wrt names {len(wrt)}: {wrt}")
    errors = {}
    for name, analytic in zip(wrt, grads):
        if analytic is None or np.shape(analytic) != inputs[name].shape:
            raise ValueError(
                f"check_backward: the gradient for {name!r} has shape {np.shape(analytic) if analytic is not None else None} "
                f"but {name} has shape {inputs[name].shape}"
            )
        numeric = numerical_gradient(lambda _: forward(**inputs, **kwargs)[0], inputs[name], df=dout, h=h)
        errors[name] = rel_error(analytic, numeric)
    return errors

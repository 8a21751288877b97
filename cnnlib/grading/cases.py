"""Case generators for hidden tests: seeded, small, covering the awkward corners.

A *case* is a dict of a function's arguments in signature order. Hidden tests draw many of them
from one seeded generator (overlapping windows, stride > 1, odd and non-square sizes, N = 1,
C = 1), so hard-coding the visible answers scores nothing. Also the small helpers on cases and
results that the other grading modules share (``_first``, ``_pair``, ...).

Every generator takes the number of cases and its seed, by keyword (``seed=30101``, as hidden
tests write it) or positionally (``pool_cases(4, 4)`` in visible tests, which learners read).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np


Case = Mapping[str, Any]


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


def _same(a: Any, b: Any) -> bool:
    try:
        a, b = np.asarray(a), np.asarray(b)
    except Exception:
        return a == b
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _shapes_of(case: Case, names: Sequence[str]) -> dict:
    """The case with each argument of ``names`` replaced by its shape, as ``NAME_shape``."""
    missing = [n for n in names if n not in case]
    if missing:
        raise KeyError(f"by_shape: the case has no argument {missing[0]!r} (it has {', '.join(case)})")
    return {(f"{k}_shape" if k in names else k): (tuple(np.shape(v)) if k in names else v) for k, v in case.items()}


def random_cases(make_case: Callable[[np.random.Generator], dict], n: int, seed: int) -> list[dict]:
    """``n`` cases from ``make_case(rng)`` with one seeded generator (for your own kinds of case).

    Example:
        >>> cases = random_cases(lambda rng: {"x": rng.standard_normal(int(rng.integers(1, 4)))}, 3, seed=0)
        >>> len(cases), sorted(cases[0])
        (3, ['x'])
    """
    rng = np.random.default_rng(seed)
    return [make_case(rng) for _ in range(n)]


def with_dout(cases: Iterable[Case], forward: Callable, seed: int, *, by_shape: Sequence[str] = ()) -> list[dict]:
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


def conv_cases(
    n: int,
    seed: int,
    *,
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
    n: int, seed: int, *, stride: bool = True, ties: bool = False, max_size: int = 9, dtype: Any = np.float64
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


def pad_cases(n: int, seed: int, *, layout: str = "nchw", pairs: bool = True, max_size: int = 6) -> list[dict]:
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
    seed: int,
    *,
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


def size_cases(n: int, seed: int, *, max_size: int = 256) -> list[dict]:
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


def linear_cases(n: int, seed: int, *, bias: bool = True, max_features: int = 8) -> list[dict]:
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
    n: int, seed: int, *, name: str = "x", min_ndim: int = 1, max_ndim: int = 4, max_size: int = 6
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

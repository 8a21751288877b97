"""Notebook 05_backprop: references, case generators and known-mistake catalogues of its exercises.

Test cells use them as ``grading.NAME`` (each public name has a ``_HOME`` entry in
``cnnlib/grading/__init__.py``). One catalogue per exercise:

==============================  ============================================================
exercise                        helpers
==============================  ============================================================
5.1 squared error               :func:`squared_error_cases`, :func:`squared_error_mistakes`
5.2 softmax cross-entropy       :func:`logit_cases`, :func:`softmax_ce_mistakes`
5.3 ReLU backward               :func:`relu_cases`, :func:`relu_backward_mistakes`
5.4 linear backward             :func:`linear_backward_cases`, :func:`linear_backward_mistakes`
5.5 convolution backward        :func:`conv_backward_cases`, :func:`conv_backward_mistakes`
5.6 numerical gradient          :func:`numerical_gradient_cases`,
                                :func:`numerical_gradient_reference`,
                                :func:`numerical_gradient_mistakes`
5.7 gradient check              :func:`gradient_check_cases`, :func:`gradient_check_reference`,
                                :func:`gradient_check_mistakes`
==============================  ============================================================

:func:`loss_backward` turns a loss exercise ``loss_fn(pred, ...) -> (loss, grad)`` into the
``backward(dout, pred, ...)`` that :func:`~cnnlib.grading.check_gradients` expects, so the
learner's gradient is also checked against numerical gradients of cnnlib's loss.

A mistake's answer is computed only after the learner's function has returned, outside the
reference guard, so the catalogues may call cnnlib. Each hint fires only when the learner's answer
equals that mistake's answer (``tests/test_grading_nb05.py`` checks each one against its trigger
and against the other mistakes).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable, Mapping

import numpy as np

from cnnlib.grading.mistakes import ErrorHint, Mistake

Case = Mapping[str, Any]


def _losses():
    from cnnlib import losses

    return losses


def _F():
    from cnnlib import functional

    return functional


def _only_if(condition: bool) -> None:
    """Inside a mistake's ``wrong(case)``: this mistake does not apply to the case."""
    if not condition:
        raise KeyError("the mistake does not apply to this case")


# ------------------------------------------------------------------------------------------------
# 5.1 squared error (the article's total error)


def squared_error_cases(n: int, *, seed: int) -> list[dict]:
    """Cases ``{"pred" (N, K), "target" (N, K)}`` for the squared error.

    Half are classification-like (one-hot targets, predictions that are probabilities, as in the
    article's boat example), half regression-like (real targets). N is 1, 3, 4 or 5 and K is at
    least 2: with N = 2 a missing 1/N and a missing 1/2 would give the same answer.

    Example:
        >>> c = squared_error_cases(1, seed=0)[0]
        >>> sorted(c), c["pred"].shape == c["target"].shape
        (['pred', 'target'], True)
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        N = [3, 1, 4, 5][i % 4]
        K = int(rng.integers(2, 8))
        if i % 2 == 0:
            logits = rng.standard_normal((N, K))
            pred = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            target = np.eye(K)[rng.integers(0, K, size=N)]
        else:
            pred = rng.standard_normal((N, K))
            target = rng.standard_normal((N, K))
        cases.append({"pred": pred, "target": target})
    return cases


def _batch(c: Case) -> tuple[int, int]:
    shape = np.shape(c["pred"])
    return (1, shape[0]) if len(shape) == 1 else (shape[0], int(np.prod(shape[1:])))


def squared_error_mistakes() -> list[Mistake]:
    """The usual mistakes of ``squared_error(pred, target) -> (loss, dpred)``: the 1/2 left out
    (of both, or of the loss only), the 1/N left out (of both, or of the gradient only), the
    gradient's sign, and the mean over every entry instead of over the batch.

    Example:
        >>> m = squared_error_mistakes()[0]   # the 1/2 left out
        >>> loss, dpred = m.wrong({"pred": np.array([[0.2, 0.4, 0.1, 0.3]]),
        ...                        "target": np.array([[0., 0., 1., 0.]])})
        >>> round(loss, 4), dpred.round(4).tolist()
        (1.1, [[0.4, 0.8, -1.8, 0.6]])
    """

    def scaled(loss_factor: Callable[[int, int], float], grad_factor: Callable[[int, int], float],
               needs: Callable[[int, int], bool] = lambda N, K: True):
        def wrong(c: Case):
            N, K = _batch(c)
            _only_if(needs(N, K))
            loss, grad = _losses().squared_error(c["pred"], c["target"])
            return loss * loss_factor(N, K), grad * grad_factor(N, K)

        return wrong

    return [
        Mistake("your loss and gradient are twice too large: the total error is "
                "1/2 * sum((target - pred)**2). The 1/2 is there so that the 2 of the square's "
                "derivative cancels: d/dpred 1/2 (target - pred)**2 = pred - target.",
                scaled(lambda N, K: 2, lambda N, K: 2)),
        Mistake("the gradient is right but the loss is twice too large: did you leave out the "
                "1/2 of 1/2 * sum((target - pred)**2)?",
                scaled(lambda N, K: 2, lambda N, K: 1)),
        Mistake(lambda c: f"your loss and gradient are N = {_batch(c)[0]} times too large: average "
                          f"over the batch (divide the sum by N, the number of rows), and the "
                          f"gradient of that mean carries the same 1/N.",
                scaled(lambda N, K: N, lambda N, K: N, lambda N, K: N > 1)),
        Mistake(lambda c: f"the loss is right but dpred is N = {_batch(c)[0]} times too large: the "
                          f"loss is the MEAN over the batch, so its gradient is (pred - target) / N.",
                scaled(lambda N, K: 1, lambda N, K: N, lambda N, K: N > 1)),
        Mistake("dpred has the wrong sign: d/dpred 1/2 (target - pred)**2 = -(target - pred) = "
                "pred - target (the chain rule brings in the -1 of the inner function).",
                scaled(lambda N, K: 1, lambda N, K: -1)),
        Mistake(lambda c: f"you divided by N*K = {_batch(c)[0] * _batch(c)[1]}, the number of "
                          f"entries (np.mean over everything): the error of one example is a SUM "
                          f"over its K = {_batch(c)[1]} outputs; only the batch is averaged.",
                scaled(lambda N, K: 1 / K, lambda N, K: 1 / K, lambda N, K: K > 1)),
    ]


def loss_backward(loss_fn: Callable, *, name: str | None = None) -> Callable:
    """``backward(dout, *args) = dout * loss_fn(*args)[1]``: a loss exercise as a backward pass.

    For :func:`~cnnlib.grading.check_gradients`: the loss is a number, ``dout`` the upstream
    gradient of that number, and ``loss_fn`` returns ``(loss, gradient w.r.t. its first argument)``.

    Example:
        >>> from cnnlib import losses
        >>> backward = loss_backward(losses.squared_error)
        >>> backward(2.0, np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
        array([[2., 4.]])
    """

    def backward(dout, *args):
        __tracebackhide__ = True
        result = loss_fn(*args)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return result  # the check says what is wrong with it
        grad = result[1]
        return dout * grad if isinstance(grad, np.ndarray) else grad

    backward.__name__ = name or getattr(loss_fn, "__name__", "loss")
    return backward


# ------------------------------------------------------------------------------------------------
# 5.2 softmax cross-entropy


def logit_cases(n: int, *, seed: int) -> list[dict]:
    """Cases ``{"logits" (N, K), "y" (N,) int64}`` for softmax cross-entropy.

    A cycle of kinds: ordinary scores, huge scores (around +-1000: a naive exp overflows), all
    zeros (the loss is ln K), a true class 2000 below its row's maximum (its probability
    underflows to 0, the loss is about 2000) and one example (N = 1); K from 2 to 10, N never 2.

    Example:
        >>> c = logit_cases(3, seed=0)[2]
        >>> float(np.abs(c["logits"]).max()), c["y"].dtype
        (0.0, dtype('int64'))
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        kind = i % 5
        N = 1 if kind == 4 else int(rng.choice([3, 4, 5, 6]))
        K = int(rng.integers(2, 11))
        y = rng.integers(0, K, size=N).astype(np.int64)
        z = rng.standard_normal((N, K)) * float(rng.choice([0.5, 1.0, 3.0]))
        if kind == 1:
            z = 1000.0 * np.sign(rng.standard_normal((N, K))) + 5 * rng.standard_normal((N, K))
        elif kind == 2:
            z = np.zeros((N, K))
        elif kind == 3:
            z[np.arange(N), y] = z.max(axis=1) - 2000.0
        cases.append({"logits": z, "y": y})
    return cases


def _softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _ce_from(p: np.ndarray, y: np.ndarray, *, loss: str = "rows", grad: str = "rows") -> tuple[float, np.ndarray]:
    """Loss and gradient of cross-entropy from probabilities ``p``, with the learners' variants."""
    N = p.shape[0]
    rows = np.arange(N)
    with np.errstate(all="ignore"):
        picked = p[rows, y] if loss == "rows" else p[:, y]
        value = -float(np.mean(np.log(picked)))
    g = p.copy()
    if grad == "rows":
        g[rows, y] -= 1
    elif grad == "columns":
        g[:, y] -= 1
    return value, g / N


def softmax_ce_mistakes() -> list[Mistake]:
    """The usual mistakes of ``softmax_cross_entropy(logits, y) -> (loss, dlogits)``.

    Unstable: exp without subtracting the row maximum (nan or inf for logits near +-1000), the
    same in a log-sum-exp, and the log taken of a probability that underflowed to 0 (inf). Then:
    the 1/N left out (of both, or of the gradient only), the one-hot left out of the gradient,
    ``p[:, y]`` (whole columns) instead of ``p[np.arange(N), y]``, the loss's minus sign, and the
    softmax taken over the batch axis.

    Example:
        >>> unstable = softmax_ce_mistakes()[0]
        >>> loss, dlogits = unstable.wrong({"logits": np.array([[1000.0, 0.0]]), "y": np.array([0])})
        >>> loss, bool(np.isnan(dlogits).any())
        (nan, True)
    """

    def naive_softmax(c: Case):
        z, y = np.asarray(c["logits"], dtype=np.float64), np.asarray(c["y"])
        with np.errstate(all="ignore"):
            e = np.exp(z)
            return _ce_from(e / e.sum(axis=1, keepdims=True), y)

    def naive_logsumexp(c: Case):
        z, y = np.asarray(c["logits"], dtype=np.float64), np.asarray(c["y"])
        with np.errstate(all="ignore"):
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            N = z.shape[0]
            loss = -float(np.mean(log_p[np.arange(N), y]))
            g = np.exp(log_p)
        g[np.arange(N), y] -= 1
        return loss, g / N

    def log_of_probabilities(c: Case):
        z, y = np.asarray(c["logits"], dtype=np.float64), np.asarray(c["y"])
        return _ce_from(_softmax(z), y)

    def reference(c: Case):
        return _losses().softmax_cross_entropy(c["logits"], c["y"])

    def scaled(loss_factor, grad_factor):
        def wrong(c: Case):
            N = np.shape(c["logits"])[0]
            _only_if(N > 1)
            loss, g = reference(c)
            return loss * (N if loss_factor else 1), g * (N if grad_factor else 1)

        return wrong

    def no_one_hot(c: Case):
        loss, _ = reference(c)
        z = np.asarray(c["logits"], dtype=np.float64)
        return loss, _softmax(z) / z.shape[0]

    def columns(both: bool):
        def wrong(c: Case):
            z, y = np.asarray(c["logits"], dtype=np.float64), np.asarray(c["y"])
            _only_if(z.shape[0] > 1)
            loss, g = _ce_from(_softmax(z), y, loss="columns" if both else "rows", grad="columns")
            return (loss if both else reference(c)[0]), g

        return wrong

    def negated(c: Case):
        loss, g = reference(c)
        return -loss, g

    def batch_axis(c: Case):
        z, y = np.asarray(c["logits"], dtype=np.float64), np.asarray(c["y"])
        _only_if(z.shape[0] > 1)
        return _ce_from(_softmax(z, axis=0), y)

    stable = ("Subtract each row's maximum first, z - z.max(axis=1, keepdims=True): the "
              "probabilities do not change (exp(-max) cancels) and exp never overflows.")
    columns_hint = ("p[:, y] takes whole COLUMNS y for every row; pair each row with its own label: "
                    "p[np.arange(N), y].")
    return [
        Mistake("your answer holds nan (or inf) for huge logits: exp(1000) overflows to inf, and "
                "inf / inf is nan. " + stable, naive_softmax),
        Mistake("your log-sum-exp overflows for huge logits: log(sum(exp(z))) is inf when a logit "
                "is near 1000. " + stable, naive_logsumexp),
        Mistake("your loss is inf where the true class's probability underflows to 0 (its logit is "
                "far below the maximum) and log(0) = -inf. Compute the loss from the log-softmax, "
                "log p = z - max - log(sum(exp(z - max))), not as log(softmax): "
                "then a logit 2000 below the maximum gives a loss of about 2000, not inf.",
                log_of_probabilities),
        Mistake(lambda c: f"your loss and gradient are N = {np.shape(c['logits'])[0]} times too "
                          f"large: the loss is the MEAN over the batch, and its gradient is "
                          f"(softmax - one_hot) / N.",
                scaled(True, True)),
        Mistake(lambda c: f"the loss is right but dlogits is N = {np.shape(c['logits'])[0]} times "
                          f"too large: the loss is a mean over the batch, so divide the gradient "
                          f"by N too: (softmax - one_hot) / N.",
                scaled(False, True)),
        Mistake("dlogits = (softmax - one_hot(y)) / N: you left out the one-hot, so nothing pulls "
                "the true class up; subtract 1 at each row's true class.", no_one_hot),
        Mistake(columns_hint, columns(both=False)),
        Mistake(columns_hint + " (in the loss too)", columns(both=True)),
        Mistake("your loss has the wrong sign: cross-entropy is MINUS the log of the true class's "
                "probability, so it is >= 0 (and 0 only for a perfect prediction).", negated),
        Mistake("softmax normalizes each ROW (the K scores of one example): take the max and the "
                "sum over axis=1 with keepdims=True, not over the batch axis 0.", batch_axis),
    ]


# ------------------------------------------------------------------------------------------------
# 5.3 ReLU backward


def relu_cases(n: int, seed: int, *, kinks: bool = True, max_size: int = 6) -> list[dict]:
    """Cases ``{"x"}`` for ReLU: random shapes (1-D to 4-D), values on both sides of zero.

    With ``kinks=True`` some entries are exactly 0 (ReLU's kink: the gradient there is 0 by
    convention); with ``kinks=False`` every value is at least 0.01 away from 0, so that numerical
    gradients (which step 1e-5 away) never cross the kink.

    Example:
        >>> x = relu_cases(1, seed=0)[0]["x"]
        >>> bool((x == 0).any())
        True
        >>> bool((np.abs(relu_cases(4, seed=0, kinks=False)[3]["x"]) >= 0.01).all())
        True
    """
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        ndim = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, max_size + 1, size=ndim))
        x = rng.standard_normal(shape)
        if kinks:
            x.flat[rng.integers(0, x.size)] = 0.0
            x[rng.random(shape) < 0.2] = 0.0
        else:
            x = np.where(np.abs(x) < 0.01, np.sign(x + 1e-12) * (0.01 + np.abs(x)), x)
        cases.append({"x": x})
    return cases


def relu_backward_mistakes() -> list[Mistake]:
    """The usual mistakes of ``relu_backward(dout, x) -> dx``: ``x >= 0`` (gradient 1 at the kink),
    the mask without ``dout``, ``dout`` times the output ``relu(x)``, and ReLU applied to ``dout``.

    Example:
        >>> at_zero = relu_backward_mistakes()[0]
        >>> at_zero.wrong({"dout": np.array([2.0, 2.0]), "x": np.array([0.0, -1.0])})
        array([2., 0.])
    """

    def arrays(c: Case):
        return np.asarray(c["dout"], dtype=np.float64), np.asarray(c["x"], dtype=np.float64)

    def at_zero(c: Case):
        dout, x = arrays(c)
        return dout * (x >= 0)

    def mask_only(c: Case):
        _, x = arrays(c)
        return (x > 0).astype(np.float64)

    def times_output(c: Case):
        dout, x = arrays(c)
        return dout * np.maximum(x, 0)

    def relu_of_dout(c: Case):
        dout, _ = arrays(c)
        return np.maximum(dout, 0)

    return [
        Mistake("where x == 0 your gradient is dout, the convention (cnnlib's and PyTorch's) is 0: "
                "let only x > 0 through (x > 0, not x >= 0).", at_zero),
        Mistake("your dx is ReLU's local gradient alone (1 or 0): multiply it by the upstream "
                "gradient, dx = dout * (x > 0) (chain rule: local gradient x upstream gradient).",
                mask_only),
        Mistake("ReLU's derivative is 1 where x > 0, not x itself: multiply dout by the mask "
                "(x > 0), not by relu(x).", times_output),
        Mistake("you applied ReLU to dout: whether the gradient passes is decided by the forward "
                "pass's INPUT x: dx = dout where x > 0, else 0 (negative dout passes too).",
                relu_of_dout),
    ]


# ------------------------------------------------------------------------------------------------
# 5.4 linear backward


def linear_backward_cases(n: int, seed: int, *, max_features: int = 7) -> list[dict]:
    """Forward cases ``{"x" (N, D), "w" (D, M), "b" (M,)}`` for the linear layer's backward.

    N = 1 and D = 1 occur, and every third case is square (D = M, and then N = M too), where a
    missing transpose gives an answer of the right shape but wrong values.

    Example:
        >>> c = linear_backward_cases(3, seed=0)[2]
        >>> c["w"].shape[0] == c["w"].shape[1] == c["x"].shape[0]
        True
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        N = 1 if i % 3 == 0 else int(rng.integers(2, 6))
        D = 1 if i % 3 == 1 else int(rng.integers(2, max_features + 1))
        M = int(rng.integers(1, max_features + 1))
        if i % 3 == 2:
            M = D = N = int(rng.integers(2, max_features + 1))
        cases.append({"x": rng.standard_normal((N, D)), "w": rng.standard_normal((D, M)),
                      "b": rng.standard_normal(M)})
    return cases


def linear_backward_mistakes() -> list[Mistake | ErrorHint]:
    """The usual mistakes of ``linear_backward(dout, x, w, b) -> (dx, dw, db)``: dw transposed
    (``dout.T @ x``), ``dx = dout @ w`` without the transpose, db summed over the wrong axis (or
    not at all), the mean instead of the sum over the batch, and (when numpy raises) products whose
    shapes do not fit.

    Example:
        >>> transposed = linear_backward_mistakes()[0]
        >>> c = {"dout": np.ones((2, 3)), "x": np.ones((2, 4)), "w": np.ones((4, 3)), "b": np.zeros(3)}
        >>> [a.shape for a in transposed.wrong(c)]
        [(2, 4), (3, 4), (3,)]
    """

    def parts(c: Case):
        dout, x, w = (np.asarray(c[k], dtype=np.float64) for k in ("dout", "x", "w"))
        return dout, x, w, (dout @ w.T, x.T @ dout, dout.sum(axis=0))

    def replace(index: int, make: Callable):
        def wrong(c: Case):
            dout, x, w, right = parts(c)
            got = list(right)
            got[index] = make(dout, x, w)
            return tuple(got)

        return wrong

    def untransposed(dout, x, w):
        _only_if(w.shape[0] == w.shape[1])
        return dout @ w

    def shapes_hint(c: Case, exc: BaseException) -> str:
        (N, D), M = np.shape(c["x"]), np.shape(c["w"])[1]
        return (f"match the shapes: dout is (N, out) = ({N}, {M}), x is ({N}, {D}), w is ({D}, {M}); "
                f"dx = dout @ w.T is ({N}, {M}) @ ({M}, {D}) = ({N}, {D}), and dw = x.T @ dout is "
                f"({D}, {N}) @ ({N}, {M}) = ({D}, {M}).")

    batch = ("sum over the batch, not the mean: each example adds its own gradient "
             "(the 1/N of a mean loss is already inside dout).")
    return [
        Mistake(lambda c: f"dw must have w's shape (in, out) = {tuple(np.shape(c['w']))}: "
                          f"dw = x.T @ dout (w[d, m] connects input d to output m), not dout.T @ x.",
                replace(1, lambda dout, x, w: dout.T @ x)),
        Mistake("dx = dout @ w.T: w maps inputs to outputs, so going back from the outputs to the "
                "inputs uses its transpose (you used w itself).",
                replace(0, untransposed)),
        Mistake(lambda c: f"db has one value per output feature, shape ({np.shape(c['w'])[1]},): "
                          f"sum dout over the BATCH axis, db = dout.sum(axis=0).",
                replace(2, lambda dout, x, w: dout.sum(axis=1))),
        Mistake(lambda c: f"db has one value per output feature, shape ({np.shape(c['w'])[1]},): "
                          f"the bias is added to every example, so db = dout.sum(axis=0).",
                replace(2, lambda dout, x, w: dout)),
        Mistake("db: " + batch, replace(2, lambda dout, x, w: dout.mean(axis=0))),
        Mistake("dw: " + batch + " dw = x.T @ dout.",
                replace(1, lambda dout, x, w: x.T @ dout / x.shape[0])),
        ErrorHint(ValueError, r"matmul|not aligned|could not be broadcast", shapes_hint),
    ]


# ------------------------------------------------------------------------------------------------
# 5.5 convolution backward


def conv_backward_cases(n: int, *, seed: int, max_size: int = 8) -> list[dict]:
    """Forward cases ``{"x", "w", "b", "stride", "padding"}`` (int stride and padding) for a
    convolution's backward, cycling through the corners the backward gets wrong:

    0. overlapping windows (stride 1, 3 x 3 kernel), padding 1, F != C;
    1. stride 2 with overlapping 3 x 3 windows, padding 1, a non-square input;
    2. a stride that leaves edge pixels unused ((H + 2p - KH) % stride != 0) and gaps between
       windows (stride > kernel): those pixels get zero gradient;
    3. a non-square kernel, one image (N = 1);
    4. one input channel (C = 1), several filters, padding 2;
    5. a 1 x 1 kernel with stride 2 (most pixels unused).

    Example:
        >>> cases = conv_backward_cases(6, seed=0)
        >>> [c["stride"] for c in cases][:3], cases[4]["x"].shape[1], cases[5]["w"].shape[2:]
        ([1, 2, 3], 1, (1, 1))
    """
    rng = np.random.default_rng(seed)
    cases = []

    def ints(lo, hi):
        return int(rng.integers(lo, hi + 1))

    for i in range(n):
        kind = i % 6
        N, C, F = ints(1, 3), ints(1, 3), ints(1, 3)
        if kind == 0:
            (kh, kw), s, p = (3, 3), 1, 1
            F = C + 1
            H, W = ints(3, max_size), ints(3, max_size)
        elif kind == 1:
            (kh, kw), s, p = (3, 3), 2, 1
            H = ints(4, max_size)
            W = H + ints(1, 3)
        elif kind == 2:
            kh = kw = ints(1, 2)
            s, p = 3, int(rng.integers(0, 2))
            while True:  # until both axes leave pixels at the end that no window reaches
                H, W = ints(kh + 3, max_size + 2), ints(kh + 3, max_size + 2)
                if (H + 2 * p - kh) % s and (W + 2 * p - kw) % s:
                    break
        elif kind == 3:
            kh, kw = [(2, 3), (3, 1), (1, 3), (3, 2)][ints(0, 3)]
            s, p, N = ints(1, 2), ints(0, 1), 1
            H, W = ints(max(kh, 3), max_size), ints(max(kw, 3), max_size)
        elif kind == 4:
            kh = kw = ints(2, 3)
            s, p, C, F = 1, 2, 1, ints(2, 3)
            H, W = ints(2, max_size - 2), ints(2, max_size - 2)
        else:
            kh = kw = 1
            s, p = 2, 0
            H, W = ints(3, max_size), ints(3, max_size)
        cases.append({
            "x": rng.standard_normal((N, C, H, W)),
            "w": rng.standard_normal((F, C, kh, kw)),
            "b": rng.standard_normal(F),
            "stride": s,
            "padding": p,
        })
    return cases


def conv_backward_loops(dout, x, w, stride, padding, *, dx_stride=True, dw_stride=True,
                        add_dx=True, add_dw=True, flip_dx=False, crop=True):
    """A learner's loops for a convolution's dx and dw, with the usual mistakes as switches.

    ``dx_stride``/``dw_stride=False``: windows start at (i, j) instead of (i*stride, j*stride);
    ``add_dx``/``add_dw=False``: ``=`` instead of ``+=`` (loops in the order n, f, i, j);
    ``flip_dx``: the kernel rotated by 180 degrees in dx; ``crop=False``: dx keeps the padding.
    Returns ``(dx, dw)``.

    Example:
        >>> x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
        >>> dx, dw = conv_backward_loops(np.ones((1, 1, 2, 2)), x, w, 1, 0)
        >>> dx[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
        >>> conv_backward_loops(np.ones((1, 1, 2, 2)), x, w, 1, 0, add_dx=False)[0][0, 0]
        array([[1., 1., 1.],
               [1., 1., 1.],
               [1., 1., 1.]])
    """
    dout, x, w = (np.asarray(a, dtype=np.float64) for a in (dout, x, w))
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    s, p = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    kernel = w[:, :, ::-1, ::-1] if flip_dx else w
    Ho, Wo = dout.shape[2:]
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    r, q = (i * s, j * s) if dx_stride else (i, j)
                    if add_dx:
                        dx_pad[n, :, r:r + KH, q:q + KW] += kernel[f] * g
                    else:
                        dx_pad[n, :, r:r + KH, q:q + KW] = kernel[f] * g
                    r, q = (i * s, j * s) if dw_stride else (i, j)
                    if add_dw:
                        dw[f] += x_pad[n, :, r:r + KH, q:q + KW] * g
                    else:
                        dw[f] = x_pad[n, :, r:r + KH, q:q + KW] * g
    dx = dx_pad[:, :, p:p + H, p:p + W] if crop else dx_pad
    return dx, dw


def conv_backward_mistakes() -> list[Mistake | ErrorHint]:
    """The usual mistakes of ``conv_backward_naive(dout, x, w, b, stride, padding) -> (dx, dw, db)``.

    The stride left out of dw, of dx, or of both; ``=`` instead of ``+=`` in dx (overlapping
    windows and several filters write to the same pixel) or in dw; the kernel rotated by 180
    degrees in dx (the "unflipped kernel" of the full-convolution view); db summed over the wrong
    axes or averaged; dx returned with its padding, or cropped with ``p:-p`` (empty when p = 0);
    and, when numpy raises, windows taken from the unpadded x.

    Example:
        >>> first = conv_backward_mistakes()[0]          # the stride left out of dw
        >>> x, w = np.arange(16.0).reshape(1, 1, 4, 4), np.ones((1, 1, 2, 2))
        >>> dx, dw, db = first.wrong({"dout": np.ones((1, 1, 2, 2)), "x": x, "w": w, "b": np.zeros(1),
        ...                          "stride": 2, "padding": 0})
        >>> dw[0, 0]                                   # windows at (0, 0), (0, 1), (1, 0), (1, 1)
        array([[10., 14.],
               [26., 30.]])
    """

    def make(**switches):
        def wrong(c: Case):
            stride, padding = c["stride"], c["padding"]
            _only_if(not ({"dx_stride", "dw_stride"} & set(switches)) or stride > 1)
            _only_if(switches.get("crop", True) or padding > 0)
            dx, dw = conv_backward_loops(c["dout"], c["x"], c["w"], stride, padding, **switches)
            return dx, dw, np.asarray(c["dout"], dtype=np.float64).sum(axis=(0, 2, 3))

        return wrong

    def db_as(reduce: Callable[[np.ndarray], Any]):
        def wrong(c: Case):
            dx, dw, _ = make()(c)
            return dx, dw, reduce(np.asarray(c["dout"], dtype=np.float64))

        return wrong

    def empty_dx(c: Case):
        _only_if(c["padding"] == 0)
        dx, dw, db = make()(c)
        return dx[:, :, 0:0, 0:0], dw, db

    window = ("output (i, j) came from the window starting at row i*stride, column j*stride "
              "of x_pad")
    db_hint = ("db[f] sums dout[:, f] over the batch AND every output position: "
               "db = dout.sum(axis=(0, 2, 3)), shape (F,).")

    def unpadded(case: Case, exc: BaseException) -> str | None:
        kernel = tuple(np.shape(case["w"])[1:])
        shapes = [tuple(int(v) for v in m.replace(" ", "").split(",") if v)
                  for m in re.findall(r"\(([\d,\s]+)\)", str(exc))]
        short = [sh for sh in shapes if len(sh) == 3 and sh != kernel and sh[0] == kernel[0]
                 and all(a <= k for a, k in zip(sh[1:], kernel[1:]))]
        if not short:
            return None
        return (f"a window of shape {short[0]} is smaller than the kernel {kernel}: it was cut "
                f"short at the border. Take the windows from the PADDED input x_pad (and add dx "
                f"into a padded dx_pad of the same shape), then crop dx_pad at the end.")

    return [
        Mistake("dw is wrong but dx is right: dw must use the same windows as the forward pass: "
                + window + ": dw[f] += x_pad[n, :, i*s:i*s+KH, j*s:j*s+KW] * dout[n, f, i, j].",
                make(dw_stride=False)),
        Mistake("dx is wrong but dw is right: each window sends w[f] * dout[n, f, i, j] back to "
                "its own place: " + window + ".", make(dx_stride=False)),
        Mistake("dx and dw both ignore the stride: " + window + ".",
                make(dx_stride=False, dw_stride=False)),
        Mistake("dx lost gradient where windows overlap (or several filters see the same pixel): "
                "every window and every filter adds its share to those pixels: use += into dx_pad, "
                "not =.", make(add_dx=False)),
        Mistake("dw[f] collects a contribution from EVERY image and EVERY window position: use += "
                "into dw, not =.", make(add_dw=False)),
        Mistake("your dx uses the kernel rotated by 180 degrees. Each window sends back w[f] as it "
                "is (the loop form); written as a full convolution, dx correlates the zero-padded "
                "dout with the FLIPPED kernel w[:, :, ::-1, ::-1]: did you leave out (or add) a "
                "flip?", make(flip_dx=True)),
        Mistake(lambda c: f"dx must have x's shape {tuple(np.shape(c['x']))}: crop the padding, "
                          f"dx = dx_pad[:, :, p:p+H, p:p+W].", make(crop=False)),
        Mistake("dx is empty: x_pad[:, :, p:-p] is EMPTY when p = 0 (-0 is 0, so p:-p is 0:0); "
                "crop with p:p+H and p:p+W instead.", empty_dx),
        Mistake(db_hint, db_as(lambda d: d.sum(axis=(2, 3)))),
        Mistake(db_hint, db_as(lambda d: d.sum(axis=(1, 2, 3)))),
        Mistake(db_hint, db_as(lambda d: d.sum(axis=0))),
        Mistake(db_hint, db_as(lambda d: d.sum(axis=(0, 1)))),
        Mistake(db_hint, db_as(lambda d: d.sum())),
        Mistake("db is the SUM of dout[:, f] over the batch and the positions, not the mean: the "
                "bias is added at every position of every image.",
                db_as(lambda d: d.mean(axis=(0, 2, 3)))),
        ErrorHint(ValueError, r"could not be broadcast", unpadded),
    ]


# ------------------------------------------------------------------------------------------------
# 5.6 numerical gradient


def f_sum_of_cubes(x):
    """sum(x**3): gradient 3 x**2."""
    return float(np.sum(x ** 3))


def f_sin_times_x(x):
    """sum(sin(x) * x): gradient sin(x) + x cos(x)."""
    return float(np.sum(np.sin(x) * x))


def f_log_sum_exp(x):
    """log(sum(exp(x))): gradient softmax(x) over all entries."""
    m = np.max(x)
    return float(m + np.log(np.sum(np.exp(x - m))))


def f_tanh_squared(x):
    """sum(tanh(x)**2): gradient 2 tanh(x) (1 - tanh(x)**2)."""
    return float(np.sum(np.tanh(x) ** 2))


def f_zero(x):
    """0 for every x: gradient 0 (a constant, like a dead ReLU)."""
    return 0.0


def _weighted_quadratic(shape: tuple[int, ...], rng: np.random.Generator) -> Callable:
    """sum(a * x**2) + sum(c * x) * sum(x) + x.flat[0] * x.flat[-1] with random a, c (closed over)."""
    a, c = rng.uniform(0.5, 2.0, size=shape), rng.standard_normal(shape)

    def f_quadratic(x):
        return float(np.sum(a * x ** 2) + np.sum(c * x) * np.sum(x) + x.flat[0] * x.flat[-1])

    return f_quadratic


def _matrix_loss(shape: tuple[int, int], rng: np.random.Generator) -> Callable:
    """1/2 * sum((x @ B - T)**2) + sum(x**3) / 3 for a 2-D x (a linear layer's error, not symmetric)."""
    B = rng.standard_normal((shape[1], 3))
    T = rng.standard_normal((shape[0], 3))

    def f_matrix_loss(x):
        return float(0.5 * np.sum((x @ B - T) ** 2) + np.sum(x ** 3) / 3)

    return f_matrix_loss


_SMOOTH = (f_sum_of_cubes, f_sin_times_x, f_log_sum_exp, f_tanh_squared)


def numerical_gradient_reference(f: Callable, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """cnnlib's centred-difference gradient of a scalar ``f`` at ``x`` (float64, on a copy of x).

    Example:
        >>> numerical_gradient_reference(f_sum_of_cubes, np.array([1.0, 2.0])).round(6)
        array([ 3., 12.])
    """
    from cnnlib import gradcheck

    return gradcheck.numerical_gradient(f, np.array(x, dtype=np.float64), h=h)


def numerical_gradient_cases(n: int, *, seed: int) -> list[dict]:
    """Cases ``{"f", "x", "h"}`` for a numerical gradient: smooth scalar functions with curvature
    (so a one-sided difference is visibly off) of 1-D to 4-D float64 arrays; h is 1e-5 or 1e-4.

    Example:
        >>> c = numerical_gradient_cases(1, seed=0)[0]
        >>> sorted(c), callable(c["f"]), c["h"] in (1e-5, 1e-4)
        (['f', 'h', 'x'], True, True)
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        ndim = [2, 1, 3, 2, 4][i % 5]
        shape = tuple(int(v) for v in rng.integers(2, 5, size=ndim))
        if ndim == 4:
            shape = (1,) + shape[1:]
        x = rng.standard_normal(shape) * 1.5
        kind = i % 6
        if kind < 4:
            f = _SMOOTH[kind]
        elif kind == 4:
            f = _weighted_quadratic(shape, rng)
        else:
            shape = shape[:2] if len(shape) >= 2 else (shape[0], 2)
            x = rng.standard_normal(shape) * 1.5
            f = _matrix_loss(shape, rng)
        cases.append({"f": f, "x": x, "h": [1e-5, 1e-4][i % 2]})
    return cases


def _nudged(f: Callable, x: np.ndarray, idx, step: float) -> float:
    v = np.array(x, dtype=np.float64)
    v[idx] += step
    return f(v)


def numerical_gradient_mistakes() -> list[Mistake]:
    """The usual mistakes of ``numerical_gradient(f, x, h) -> grad``: a one-sided difference
    (forward or backward), dividing by h instead of 2h, nudging a whole row ``x[i]`` of a
    multi-dimensional x at once, and a flattened result. (Changing x in place is caught by the
    check itself.)

    Example:
        >>> one_sided = numerical_gradient_mistakes()[0]
        >>> one_sided.wrong({"f": f_sum_of_cubes, "x": np.array([1.0]), "h": 1e-3}).round(4)
        array([3.003])
    """

    def difference(kind: str):
        def wrong(c: Case):
            f, x, h = c["f"], np.asarray(c["x"], dtype=np.float64), c["h"]
            grad = np.zeros(x.shape)
            for idx in np.ndindex(x.shape):
                if kind == "forward":
                    grad[idx] = (_nudged(f, x, idx, h) - f(x.copy())) / h
                elif kind == "backward":
                    grad[idx] = (f(x.copy()) - _nudged(f, x, idx, -h)) / h
                else:  # centred, divided by h
                    grad[idx] = (_nudged(f, x, idx, h) - _nudged(f, x, idx, -h)) / h
            return grad

        return wrong

    def rows(c: Case):
        f, x, h = c["f"], np.asarray(c["x"], dtype=np.float64), c["h"]
        _only_if(x.ndim > 1)
        grad = np.zeros(x.shape)
        for i in range(len(x)):
            grad[i] = (_nudged(f, x, i, h) - _nudged(f, x, i, -h)) / (2 * h)
        return grad

    def flat(c: Case):
        _only_if(np.ndim(c["x"]) > 1)
        return numerical_gradient_reference(c["f"], c["x"], c["h"]).ravel()

    one_sided = ("your gradient matches a ONE-SIDED difference, (f(x + h) - f(x)) / h, whose error "
                 "shrinks only like h. Use the centred difference (f(x + h) - f(x - h)) / (2h): its "
                 "error shrinks like h**2.")
    return [
        Mistake(one_sided, difference("forward")),
        Mistake(one_sided.replace("(f(x + h) - f(x)) / h", "(f(x) - f(x - h)) / h"), difference("backward")),
        Mistake("your gradient is twice too large: the two points x + h and x - h are 2h apart, so "
                "divide by 2h, not h.", difference("centred, /h")),
        Mistake("x[i] of a multi-dimensional x is a whole ROW: you nudged many entries at once. "
                "Nudge ONE entry at a time: loop over every index with np.ndindex(x.shape) and "
                "write grad[idx].", rows),
        Mistake("return the gradient in x's shape (grad = np.zeros(x.shape), grad[idx] = ...), "
                "not flattened.", flat),
    ]


# ------------------------------------------------------------------------------------------------
# 5.7 gradient check


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b)) / scale)


def gradient_check_reference(f: Callable, x: np.ndarray, analytic: np.ndarray, h: float = 1e-5) -> float:
    """``max|analytic - numeric| / max(max|analytic|, max|numeric|)`` (0.0 when both are zero),
    with ``numeric`` cnnlib's centred-difference gradient of ``f`` at ``x``.

    Example:
        >>> x = np.array([1.0, -2.0])
        >>> round(gradient_check_reference(f_sum_of_cubes, x, 2 * 3 * x ** 2), 6)   # twice too large
        0.5
    """
    numeric = numerical_gradient_reference(f, x, h)
    return _relative_error(np.asarray(analytic, dtype=np.float64), numeric)


def _grad_sum_of_cubes(x):
    return 3 * x ** 2


def _grad_sin_times_x(x):
    return np.sin(x) + x * np.cos(x)


def _grad_tanh_squared(x):
    t = np.tanh(x)
    return 2 * t * (1 - t ** 2)


def gradient_check_cases(n: int, *, seed: int) -> list[dict]:
    """Cases ``{"f", "x", "analytic", "h"}``: analytic gradients that are right, slightly off
    (1e-3 of noise), transposed (square x, gradient not symmetric), twice too large, negated, or
    all zero (forgotten), and a constant f whose right gradient is zero (both are zero: 0.0).

    Example:
        >>> c = gradient_check_cases(2, seed=0)[1]
        >>> c["analytic"].shape == c["x"].shape, c["x"].shape[0] == c["x"].shape[1]
        (True, True)
    """
    rng = np.random.default_rng(seed)
    pairs = [(f_sum_of_cubes, _grad_sum_of_cubes), (f_sin_times_x, _grad_sin_times_x),
             (f_tanh_squared, _grad_tanh_squared)]
    cases = []
    for i in range(n):
        kind = ["noisy", "transposed", "right", "doubled", "negated", "zeros", "constant"][i % 7]
        f, grad = pairs[int(rng.integers(0, len(pairs)))] if kind != "transposed" else pairs[0]
        k = int(rng.integers(2, 5))
        shape = (k, k) if kind == "transposed" else tuple(int(v) for v in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        x = rng.standard_normal(shape) * 1.5
        if kind == "transposed":
            x = x + np.diag(np.arange(k)) + np.triu(np.ones((k, k)))  # make the gradient far from symmetric
        g = grad(x)
        analytic = {
            "noisy": lambda: g + 1e-3 * rng.standard_normal(shape),
            "transposed": lambda: g.T.copy(),
            "right": lambda: g,
            "doubled": lambda: 2 * g,
            "negated": lambda: -g,
            "zeros": lambda: np.zeros(shape),
            "constant": lambda: np.zeros(shape),
        }[kind]()
        if kind == "constant":
            f = f_zero
        cases.append({"f": f, "x": x, "analytic": analytic, "h": 1e-5})
    return cases


def gradient_check_mistakes() -> list[Mistake]:
    """The usual mistakes of ``gradient_check(f, x, analytic, h) -> relative error``: the
    entry-by-entry relative error (CS231n's) or one built from norms, the absolute error (not
    scaled), the scale of only one of the two gradients, the mean instead of the max, and nan
    where both gradients are zero.

    Example:
        >>> absolute = gradient_check_mistakes()[2]
        >>> x = np.array([1.0, -2.0])
        >>> round(absolute.wrong({"f": f_sum_of_cubes, "x": x, "analytic": 2 * 3 * x ** 2, "h": 1e-5}), 4)
        12.0
    """

    def with_numeric(formula: Callable[[np.ndarray, np.ndarray], float]):
        def wrong(c: Case):
            a = np.asarray(c["analytic"], dtype=np.float64)
            n = numerical_gradient_reference(c["f"], c["x"], c["h"])
            # both zero: every formula but the last gives 0 (right) or nan (the last mistake's answer)
            _only_if(formula is both_zero_nan or a.any() or n.any())
            with np.errstate(all="ignore"):
                return float(formula(a, n))

        return wrong

    def both_zero_nan(a, n):
        _only_if(not a.any() and not n.any())
        return np.nan

    def entrywise(a, n):
        return np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n)))

    def norms(a, n):
        return np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n))

    scale_hint = ("scale by the LARGER of the two magnitudes, max(max|analytic|, max|numeric|): "
                  "with the scale of one gradient only, a gradient that is 0 where it should not "
                  "be (or far too small) is not caught, or the division is by 0.")
    formula = ("relative error = max|analytic - numeric| / max(max|analytic|, max|numeric|)")
    return [
        Mistake("your relative error is computed entry by entry (|a - n| / (|a| + |n|), CS231n's "
                "formula) or from norms (||a - n|| / (||a|| + ||n||)); this exercise asks for one "
                "number with the whole arrays' scale: " + formula + ".", with_numeric(entrywise)),
        Mistake("your relative error is built from norms, ||a - n|| / (||a|| + ||n||); this "
                "exercise asks for the largest difference over the largest magnitude: " + formula + ".",
                with_numeric(norms)),
        Mistake("that is the ABSOLUTE error max|analytic - numeric|: divide it by the scale of the "
                "gradients, max(max|analytic|, max|numeric|), so that the answer does not depend on "
                "the function's units.", with_numeric(lambda a, n: np.max(np.abs(a - n)))),
        Mistake(scale_hint, with_numeric(lambda a, n: np.max(np.abs(a - n)) / np.max(np.abs(a)))),
        Mistake(scale_hint, with_numeric(lambda a, n: np.max(np.abs(a - n)) / np.max(np.abs(n)))),
        Mistake("use the LARGEST difference, max|analytic - numeric|, not the mean: one wrong "
                "entry is enough to make a gradient wrong.",
                with_numeric(lambda a, n: np.mean(np.abs(a - n)) / max(np.max(np.abs(a)), np.max(np.abs(n))))),
        Mistake("when both gradients are all zeros they agree: return 0.0 (0 / 0 gives nan).",
                with_numeric(both_zero_nan)),
    ]

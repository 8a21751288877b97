"""Grading helpers of notebook 06_batchnorm: references, case generators and known mistakes.

The notebook's exercises work on (N, D) data first (batch norm of a fully connected layer's
outputs), then on (N, C, H, W) feature maps through the article's reshape to (N*H*W, C). Unlike
cnnlib's ``batchnorm2d_forward``, which updates the running statistics in place, the learner's
functions RETURN the new running statistics and leave their inputs alone::

    batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
        -> out, new_running_mean, new_running_var                      (exercise 6.1)
    batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
        -> out, running_mean, running_var                               (exercise 6.2)
    batchnorm_backward(dout, x, gamma, eps) -> dx, dgamma, dbeta        (exercise 6.3)
    spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
        -> out, running_mean, running_var                               (exercise 6.4)

The references run cnnlib (``batchnorm2d_forward`` / ``batchnorm2d_backward`` on copies of the
running statistics); the known mistakes are computed by :func:`bn_variant`, a plain numpy batch
norm with switches for each mistake, so a hint fires only when the learner's answer equals that
mistake's answer.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any, Callable, Mapping

import numpy as np

from cnnlib.grading.mistakes import ErrorHint, Mistake

Case = Mapping[str, Any]


def _wrap(text: str) -> str:
    """A hint wrapped to short lines (``nbgrader validate`` cuts lines at about 90 characters)."""
    return textwrap.fill(text, width=84, initial_indent=" " * 8, subsequent_indent=" " * 8).lstrip()


def _hint(text: str | Callable[[Case], str]) -> str | Callable[[Case], str]:
    if callable(text):
        return lambda case: _wrap(text(case))
    return _wrap(text)


# ------------------------------------------------------------------------------------------------
# references (cnnlib)


def _copy_stats(running_mean, running_var):
    return (np.array(running_mean, dtype=np.float64, copy=True),
            np.array(running_var, dtype=np.float64, copy=True))


def bn_train_reference(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    """Batch norm of ``x`` (N, D) in training mode: ``(out, new_running_mean, new_running_var)``.

    cnnlib's ``batchnorm2d_forward`` on ``x`` viewed as (N, D, 1, 1), updating copies of the
    running statistics (PyTorch's convention: ``(1 - momentum) * running + momentum * batch``,
    the unbiased variance in ``running_var``).

    Example:
        >>> out, rm, rv = bn_train_reference(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1),
        ...                                  np.zeros(1), np.ones(1))
        >>> out.ravel().round(4), rm, rv
        (array([-1.,  1.]), array([0.2]), array([1.1]))
    """
    from cnnlib import functional as F

    rm, rv = _copy_stats(running_mean, running_var)
    x = np.asarray(x)
    out, _ = F.batchnorm2d_forward(x[:, :, None, None], gamma, beta, rm, rv, True, momentum=momentum, eps=eps)
    return out[:, :, 0, 0], rm, rv


def bn_forward_reference(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm of ``x`` (N, D) in either mode: ``(out, running_mean, running_var)``; in eval mode
    the running statistics come back unchanged (as copies)."""
    from cnnlib import functional as F

    rm, rv = _copy_stats(running_mean, running_var)
    x = np.asarray(x)
    out, _ = F.batchnorm2d_forward(x[:, :, None, None], gamma, beta, rm, rv, bool(training),
                                   momentum=momentum, eps=eps)
    return out[:, :, 0, 0], rm, rv


def bn_output(x, gamma, beta, eps=1e-5):
    """``out`` of batch norm in training mode for ``x`` (N, D): the forward pass whose gradients
    exercise 6.3 computes (and :func:`~cnnlib.grading.check_gradients` checks numerically)."""
    from cnnlib import functional as F

    x = np.asarray(x)
    D = x.shape[1]
    out, _ = F.batchnorm2d_forward(x[:, :, None, None], gamma, beta, np.zeros(D), np.ones(D), True, eps=eps)
    return out[:, :, 0, 0]


def bn_backward_reference(dout, x, gamma, eps=1e-5):
    """``(dx, dgamma, dbeta)`` of batch norm in training mode for ``x`` (N, D), by cnnlib."""
    from cnnlib import functional as F

    x, dout = np.asarray(x), np.asarray(dout)
    D = x.shape[1]
    _, cache = F.batchnorm2d_forward(x[:, :, None, None], gamma, np.zeros(D), np.zeros(D), np.ones(D), True, eps=eps)
    dx, dgamma, dbeta = F.batchnorm2d_backward(dout[:, :, None, None], cache)
    return dx[:, :, 0, 0], dgamma, dbeta


def spatial_bn_reference(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Spatial batch norm of ``x`` (N, C, H, W): ``(out, running_mean, running_var)`` by cnnlib's
    ``batchnorm2d_forward`` on copies of the running statistics."""
    from cnnlib import functional as F

    rm, rv = _copy_stats(running_mean, running_var)
    out, _ = F.batchnorm2d_forward(np.asarray(x), gamma, beta, rm, rv, bool(training), momentum=momentum, eps=eps)
    return out, rm, rv


# ------------------------------------------------------------------------------------------------
# the mistakes, computed with plain numpy


def bn_variant(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5, *,
               normalize_var="biased", store_var="unbiased", direction="right", eps_mode="inside",
               swap_gamma_beta=False, update="moving", eval_stats="running", eval_var="sqrt"):
    """Batch norm of ``x`` (N, D) in plain numpy, with switches that make one known mistake each.

    With the defaults it equals :func:`bn_forward_reference`. Switches:

    - ``normalize_var="unbiased"``: x_hat divides by the unbiased standard deviation;
    - ``store_var="biased"``: running_var averages in the biased variance;
    - ``direction="wrong"``: ``momentum * running + (1 - momentum) * batch``;
    - ``eps_mode="none"`` / ``"outside"``: no eps / ``(x - mean) / (std + eps)``;
    - ``swap_gamma_beta``: ``beta * x_hat + gamma``;
    - ``update="none"`` / ``"replace"``: running statistics returned unchanged / replaced by the
      batch's (training mode); ``update="always"`` also updates them in eval mode;
    - ``eval_stats="batch"``: eval mode normalizes with the batch's statistics;
    - ``eval_var="raw"``: eval mode divides by ``running_var + eps`` (no square root).

    Example:
        >>> x = np.array([[1.0], [3.0]])
        >>> bn_variant(x, np.ones(1), np.zeros(1), np.zeros(1), np.ones(1), direction="wrong")[1]
        array([1.8])
    """
    x = np.asarray(x, dtype=np.float64)
    gamma, beta = np.asarray(gamma, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    rm, rv = _copy_stats(running_mean, running_var)
    m = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    unbiased = var * m / (m - 1) if m > 1 else var * np.nan

    def moving(old, new):
        if direction == "wrong":
            return momentum * old + (1 - momentum) * new
        return (1 - momentum) * old + momentum * new

    def normalize(mu, v):
        if eps_mode == "none":
            return (x - mu) / np.sqrt(v)
        if eps_mode == "outside":
            return (x - mu) / (np.sqrt(v) + eps)
        return (x - mu) / np.sqrt(v + eps)

    def updated(rm, rv):
        stored = var if store_var == "biased" else unbiased
        if update == "replace":
            return mean.copy(), stored.copy()
        return moving(rm, mean), moving(rv, stored)

    if training:
        x_hat = normalize(mean, unbiased if normalize_var == "unbiased" else var)
        new_rm, new_rv = (rm, rv) if update == "none" else updated(rm, rv)
    else:
        if eval_stats == "batch":
            x_hat = normalize(mean, var)
        elif eval_var == "raw":
            x_hat = (x - rm) / (rv + eps)
        else:
            x_hat = normalize(rm, rv)
        new_rm, new_rv = updated(rm, rv) if update == "always" else (rm, rv)
    out = beta * x_hat + gamma if swap_gamma_beta else gamma * x_hat + beta
    return out, new_rm, new_rv


def _variant(**switches) -> Callable[[Case], Any]:
    def wrong(case: Case):
        return bn_variant(*case.values(), **switches)
    return wrong


def _train_variant(**switches) -> Callable[[Case], Any]:
    """For batchnorm_train's cases (no ``training`` argument)."""
    def wrong(case: Case):
        args = list(case.values())
        return bn_variant(*args[:5], True, *args[5:], **switches)
    return wrong


def _momentum_text(case: Case) -> str:
    m = case.get("momentum", 0.1)
    return (f"the new batch gets the weight momentum = {m:g}: running_mean = (1 - momentum) * "
            f"running_mean + momentum * mean, i.e. {1 - m:g} * old + {m:g} * new (PyTorch's and "
            f"cnnlib's convention); yours gives the old statistics the weight {m:g}.")


def _per_sample_shapes(case: Case, exc: BaseException) -> str | None:
    """A broadcasting error with a (N,)-shaped operand: statistics taken over axis 1."""
    x = np.asarray(case["x"])
    if x.ndim != 2:
        return None
    N, D = x.shape
    shapes = [tuple(int(v) for v in s.replace(" ", "").split(",") if v)
              for s in re.findall(r"\(([\d,\s]+)\)", str(exc))]
    if N != D and (N,) in shapes:
        return _wrap(f"an array of shape ({N},), one value per SAMPLE, met x {x.shape}: batch norm "
                     f"takes one mean and one variance per FEATURE, down the batch axis: "
                     f"x.mean(axis=0) has shape ({D},).")
    return None


def bn_train_mistakes() -> list[Mistake | ErrorHint]:
    """Exercise 6.1's known mistakes (batch norm in training mode, (N, D))."""
    return [
        Mistake(_hint("out is normalized with the UNBIASED variance (divided by N - 1): normalize "
                      "with the batch's own, biased variance x.var(axis=0) (divided by N); the "
                      "unbiased N / (N - 1) version goes only into running_var."),
                _train_variant(normalize_var="unbiased")),
        Mistake(_hint("running_var must average in the UNBIASED batch variance, var * N / (N - 1), "
                      "as PyTorch and cnnlib store it; out (normalized with the biased variance) is "
                      "right."),
                _train_variant(store_var="biased")),
        Mistake(_hint("out uses the unbiased variance and running_var the biased one: it is the "
                      "other way round (biased x.var(axis=0) to normalize, var * N / (N - 1) into "
                      "running_var)."),
                _train_variant(normalize_var="unbiased", store_var="biased")),
        Mistake(_hint(_momentum_text), _train_variant(direction="wrong")),
        Mistake(_hint("running_mean and running_var came back unchanged: in training mode return "
                      "the UPDATED statistics, (1 - momentum) * running + momentum * batch."),
                _train_variant(update="none")),
        Mistake(_hint("your running statistics are the batch's own statistics: they are a moving "
                      "average, (1 - momentum) * running + momentum * batch."),
                _train_variant(update="replace")),
        Mistake(_hint(lambda c: f"did you leave out eps (eps={c.get('eps', 1e-5):g} here)? It goes "
                                f"inside the square root: (x - mean) / np.sqrt(var + eps)."),
                _train_variant(eps_mode="none")),
        Mistake(_hint("eps goes inside the square root: (x - mean) / np.sqrt(var + eps), not "
                      "(x - mean) / (np.sqrt(var) + eps)."),
                _train_variant(eps_mode="outside")),
        Mistake(_hint("gamma and beta are swapped: out = gamma * x_hat + beta (gamma scales, beta "
                      "shifts)."),
                _train_variant(swap_gamma_beta=True)),
        ErrorHint(ValueError, r"operands could not be broadcast together", _per_sample_shapes),
    ]


def bn_forward_mistakes() -> list[Mistake | ErrorHint]:
    """Exercise 6.2's known mistakes (batch norm with a ``training`` flag, (N, D))."""
    return [
        Mistake(_hint("in evaluation mode you normalized with the BATCH's mean and variance (the "
                      "classic bug): use running_mean and running_var, so that a sample's output "
                      "does not depend on the other samples of its batch."),
                _variant(eval_stats="batch")),
        Mistake(_hint("in evaluation mode running_mean and running_var must come back unchanged: "
                      "only training updates them."),
                _variant(update="always")),
        Mistake(_hint("you ignore `training`: evaluation mode normalizes with running_mean and "
                      "running_var and leaves them unchanged; only training mode uses and learns "
                      "from the batch."),
                _variant(eval_stats="batch", update="always")),
        Mistake(_hint("running_var is a variance: divide by its square root, "
                      "np.sqrt(running_var + eps), not by running_var + eps."),
                _variant(eval_var="raw")),
        Mistake(_hint(lambda c: f"did you leave out eps (eps={c.get('eps', 1e-5):g} here)? "
                                f"(x - running_mean) / np.sqrt(running_var + eps)."),
                lambda c: _eval_only(c, eps_mode="none")),
        Mistake(_hint("gamma and beta are swapped in evaluation mode: out = gamma * x_hat + beta."),
                lambda c: _eval_only(c, swap_gamma_beta=True)),
        Mistake(_hint("pass momentum and eps on to batchnorm_train: with its defaults (0.1, 1e-5) "
                      "the cases with other values come out wrong."),
                _defaults_in_training),
    ]


def _eval_only(case: Case, **switches):
    """A mistake of the evaluation branch only (training cases: does not apply)."""
    if case.get("training", True):
        raise KeyError("training")
    return bn_variant(*case.values(), **switches)


def _defaults_in_training(case: Case):
    args = dict(case)
    if not args.get("training") or (args.get("momentum") == 0.1 and args.get("eps") == 1e-5):
        raise KeyError("momentum")  # the defaults give the right answer here
    return bn_forward_reference(args["x"], args["gamma"], args["beta"], args["running_mean"],
                                args["running_var"], True)


# ---- backward ----------------------------------------------------------------------------------


def bn_backward_variant(dout, x, gamma, eps=1e-5, *, mean_terms="both", dparam_axis=0,
                        dgamma_of="x_hat", swap=False, dx_gamma=True, var="biased"):
    """(dx, dgamma, dbeta) of batch norm in training mode, with switches for known mistakes.

    - ``mean_terms``: ``"both"`` (right), ``"none"`` (dx as if mean and variance were constants:
      the evaluation-mode gradient), ``"mean_only"`` (the variance term forgotten),
      ``"var_only"`` (the mean term forgotten);
    - ``dparam_axis``: the axis dgamma and dbeta are summed over (``None``: all axes);
    - ``dgamma_of="x"``: dgamma = sum(dout * x) instead of x_hat;
    - ``swap``: dgamma and dbeta swapped;
    - ``dx_gamma=False``: dx without the factor gamma;
    - ``var="unbiased"``: the forward's variance divided by N - 1.
    """
    x, dout, gamma = (np.asarray(a, dtype=np.float64) for a in (x, dout, gamma))
    m = x.shape[0]
    v = x.var(axis=0) * (m / (m - 1) if var == "unbiased" else 1)
    inv_std = 1 / np.sqrt(v + eps)
    x_hat = (x - x.mean(axis=0)) * inv_std
    dx_hat = dout * gamma if dx_gamma else dout
    if mean_terms == "none":
        dx = dx_hat * inv_std
    elif mean_terms == "mean_only":
        dx = (dx_hat - dx_hat.mean(axis=0)) * inv_std
    elif mean_terms == "var_only":
        dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=0)) * inv_std
    else:
        dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) * inv_std
    dgamma = (dout * (x if dgamma_of == "x" else x_hat)).sum(axis=dparam_axis)
    dbeta = dout.sum(axis=dparam_axis)
    if swap:
        dgamma, dbeta = dbeta, dgamma
    return dx, dgamma, dbeta


def _backward_variant(**switches) -> Callable[[Case], Any]:
    def wrong(case: Case):
        return bn_backward_variant(*case.values(), **switches)
    return wrong


def bn_backward_mistakes() -> list[Mistake | ErrorHint]:
    """Exercise 6.3's known mistakes (batch norm backward, training mode, (N, D))."""
    return [
        Mistake(_hint("your dx treats the batch mean and variance as constants (that is the "
                      "gradient in evaluation mode). In training they are computed from x, so "
                      "subtract the two mean terms: dx = (dx_hat - mean(dx_hat) - x_hat * "
                      "mean(dx_hat * x_hat)) / sqrt(var + eps), means over axis 0."),
                _backward_variant(mean_terms="none")),
        Mistake(_hint("you have the mean's term but not the variance's: the variance depends on x "
                      "too, so also subtract x_hat * mean(dx_hat * x_hat, axis=0)."),
                _backward_variant(mean_terms="mean_only")),
        Mistake(_hint("you have the variance's term but not the mean's: the batch mean depends on x "
                      "too, so also subtract mean(dx_hat, axis=0)."),
                _backward_variant(mean_terms="var_only")),
        Mistake(_hint(lambda c: f"dgamma and dbeta hold one value per FEATURE (shape "
                                f"({np.shape(c['x'])[1]},)): sum over the batch axis, axis=0."),
                _backward_variant(dparam_axis=1)),
        Mistake(_hint(lambda c: f"you summed dgamma and dbeta over every axis: they hold one value "
                                f"per feature (shape ({np.shape(c['x'])[1]},)); sum over the batch "
                                f"axis only, axis=0."),
                _backward_variant(dparam_axis=None)),
        Mistake(_hint("dgamma = sum(dout * x_hat, axis=0): gamma multiplies the NORMALIZED x_hat, "
                      "not x."),
                _backward_variant(dgamma_of="x")),
        Mistake(_hint("dgamma and dbeta are swapped: out = gamma * x_hat + beta, so dgamma = "
                      "sum(dout * x_hat) and dbeta = sum(dout)."),
                _backward_variant(swap=True)),
        Mistake(_hint("dx lacks the factor gamma: out = gamma * x_hat + beta, so the gradient "
                      "reaching x_hat is dx_hat = dout * gamma."),
                _backward_variant(dx_gamma=False)),
        Mistake(_hint("the forward pass normalizes with the biased variance x.var(axis=0) "
                      "(divided by N); your gradient uses the unbiased one."),
                _backward_variant(var="unbiased")),
    ]


# ---- spatial batch norm ------------------------------------------------------------------------


def _spatial(case: Case, to_2d: Callable, from_2d: Callable):
    args = dict(case)
    x = np.asarray(args.pop("x"))
    out2, rm, rv = bn_forward_reference(to_2d(x), *args.values())
    return from_2d(out2, x.shape), rm, rv


def _plain_reshape(case: Case):
    C = np.shape(case["x"])[1]
    return _spatial(case, lambda x: x.reshape(-1, C), lambda o, s: o.reshape(s))


def _not_transposed_back(case: Case):
    C = np.shape(case["x"])[1]
    return _spatial(case, lambda x: x.transpose(0, 2, 3, 1).reshape(-1, C), lambda o, s: o.reshape(s))


def _wrong_inverse(case: Case):
    """Moved C last right, but moved it back with the same transpose (0, 2, 3, 1)."""
    C = np.shape(case["x"])[1]
    return _spatial(case, lambda x: x.transpose(0, 2, 3, 1).reshape(-1, C),
                    lambda o, s: o.reshape(s[0], s[2], s[3], s[1]).transpose(0, 2, 3, 1))


def _spatial_defaults(case: Case):
    args = dict(case)
    if not args.get("training") or (args.get("momentum") == 0.1 and args.get("eps") == 1e-5):
        raise KeyError("momentum")
    return spatial_bn_reference(args["x"], args["gamma"], args["beta"], args["running_mean"],
                                args["running_var"], True)


def spatial_bn_mistakes() -> list[Mistake | ErrorHint]:
    """Exercise 6.4's known mistakes (spatial batch norm by the reshape to (N*H*W, C))."""
    return [
        Mistake(_hint("a plain x.reshape(-1, C) does not give one channel per column: it cuts the "
                      "memory order N, C, H, W into rows of C values, mixing channels and pixels. "
                      "Move C last first, x.transpose(0, 2, 3, 1).reshape(-1, C), and undo both "
                      "steps on the way back."),
                _plain_reshape),
        Mistake(_hint("the statistics are right, but the result was reshaped straight to "
                      "(N, C, H, W): reshape it to (N, H, W, C) first, then move C back with "
                      ".transpose(0, 3, 1, 2)."),
                _not_transposed_back),
        Mistake(_hint("moving C back needs the inverse transpose: (N, H, W, C) -> (N, C, H, W) is "
                      ".transpose(0, 3, 1, 2), not .transpose(0, 2, 3, 1) again."),
                _wrong_inverse),
        Mistake(_hint("pass training, momentum and eps on to batchnorm_forward: with the defaults "
                      "the cases with other values come out wrong."),
                _spatial_defaults),
        ErrorHint(ValueError, r"cannot reshape array of size",
                  _hint("a reshape keeps the number of values: (N*H*W, C) goes back to "
                        "(N, H, W, C), then .transpose(0, 3, 1, 2) gives (N, C, H, W).")),
    ]


# ------------------------------------------------------------------------------------------------
# cases


def _stats(rng, D):
    return rng.normal(0, 2, D), rng.uniform(0.5, 3.0, D)


def _spread_features(rng, N, D):
    """(N, D) data whose features have clearly different means and scales."""
    means = rng.uniform(-6, 6, D)
    scales = rng.uniform(0.5, 4.0, D)
    return rng.standard_normal((N, D)) * scales + means


_MOMENTA = (0.1, 0.2, 0.05, 0.3, 0.01, 0.9)


def bn_train_cases(n: int, *, seed: int) -> list[dict]:
    """Cases of ``batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)``:
    ``x`` (N, D) with N != D, 2 <= N, features of clearly different means and scales, random gamma,
    beta and running statistics, momentum never 0.5 (so its direction matters), eps sometimes large
    (so its place matters).

    Example:
        >>> c = bn_train_cases(1, seed=0)[0]
        >>> list(c), c["x"].shape[0] != c["x"].shape[1]
        (['x', 'gamma', 'beta', 'running_mean', 'running_var', 'momentum', 'eps'], True)
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        N = 2 if i % 5 == 0 else int(rng.integers(3, 9))
        D = 1 if i % 5 == 1 else int(rng.integers(2, 7))
        if D == N:
            D += 1
        rm, rv = _stats(rng, D)
        cases.append({
            "x": _spread_features(rng, N, D),
            "gamma": rng.uniform(0.5, 2.0, D) * rng.choice([-1, 1], D),
            "beta": rng.normal(0, 1, D),
            "running_mean": rm,
            "running_var": rv,
            "momentum": float(_MOMENTA[i % len(_MOMENTA)]),
            "eps": float([1e-5, 1e-1, 1e-3][i % 3]),
        })
    return cases


def bn_forward_cases(n: int, *, seed: int) -> list[dict]:
    """Cases of ``batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum,
    eps)``: two evaluation cases for each training case; evaluation batches include N = 1 and
    running statistics far from the batch's own (so using the batch's statistics shows).

    Example:
        >>> [c["training"] for c in bn_forward_cases(3, seed=0)]
        [False, False, True]
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, case in enumerate(bn_train_cases(n, seed=seed)):
        training = i % 3 == 2
        x = case.pop("x")
        if not training and i % 4 == 1:
            x = x[:1]  # a batch of one: fine in evaluation mode
        case = {"x": x, **{k: case[k] for k in ("gamma", "beta", "running_mean", "running_var")},
                "training": training, "momentum": case["momentum"], "eps": case["eps"]}
        if not training:
            D = x.shape[1]
            case["running_mean"] = x.mean(axis=0) + rng.uniform(1, 3, D) * rng.choice([-1, 1], D)
        out.append(case)
    return out


def bn_backward_cases(n: int, *, seed: int) -> list[dict]:
    """Cases of ``batchnorm_backward(dout, x, gamma, eps)``: ``x`` (N, D) as in
    :func:`bn_train_cases` (N != D, N >= 2), a random ``dout`` of x's shape, random gamma, eps
    sometimes large. :func:`with_beta` turns them into cases of :func:`bn_output` for numerical
    gradient checks.

    Example:
        >>> list(bn_backward_cases(1, seed=0)[0])
        ['dout', 'x', 'gamma', 'eps']
    """
    rng = np.random.default_rng(seed + 1)
    return [{"dout": rng.standard_normal(c["x"].shape), "x": c["x"], "gamma": c["gamma"], "eps": c["eps"]}
            for c in bn_train_cases(n, seed=seed)]


def with_beta(cases, seed: int) -> list[dict]:
    """Cases ``{"x", "gamma", "beta", "eps"}`` of :func:`bn_output` (a random beta; a ``dout``
    is dropped) from backward cases, for ``check_gradients(..., wrt=["x", "gamma", "beta"])``."""
    rng = np.random.default_rng(seed)
    return [{"x": c["x"], "gamma": c["gamma"], "beta": rng.normal(0, 1, np.shape(c["gamma"])), "eps": c["eps"]}
            for c in cases]


def spatial_bn_cases(n: int, *, seed: int) -> list[dict]:
    """Cases of ``spatial_batchnorm_forward``: ``x`` (N, C, H, W) with N, C, H and W all different
    and channels of clearly different means and scales (a reshape that does not move C last mixes
    them), both modes, momentum never 0.5, eps sometimes large.

    Example:
        >>> s = spatial_bn_cases(1, seed=0)[0]["x"].shape
        >>> len(set(s))
        4
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        while True:
            N, C, H, W = (int(v) for v in (rng.integers(1, 5), rng.integers(2, 6), rng.integers(2, 7),
                                            rng.integers(2, 7)))
            if len({N, C, H, W}) == 4:
                break
        training = i % 3 != 1
        means = rng.permutation(np.linspace(-10, 10, C)) + rng.uniform(-1, 1, C)   # >= 3 apart
        scales = rng.permutation(np.geomspace(0.3, 5.0, C))
        x = rng.standard_normal((N, C, H, W)) * scales[None, :, None, None] + means[None, :, None, None]
        rm, rv = _stats(rng, C)
        cases.append({
            "x": x, "gamma": rng.uniform(0.5, 2.0, C), "beta": rng.normal(0, 1, C),
            "running_mean": rm, "running_var": rv, "training": training,
            "momentum": float(_MOMENTA[i % len(_MOMENTA)]), "eps": float([1e-5, 1e-1, 1e-3][i % 3]),
        })
    return cases

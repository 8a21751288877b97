"""Optimizers: update ``Parameter.data`` in place from ``Parameter.grad``, with PyTorch's semantics.

The last of the five training steps (random init, forward, loss, backprop, gradient descent):

    optimizer.zero_grad()          # grads accumulate, so clear them first
    logits = model(x)
    loss, dlogits = softmax_cross_entropy(logits, y)
    model.backward(dlogits)        # fills every p.grad
    optimizer.step()               # p.data -= ...

Each update follows ``torch.optim`` step for step (tests compare them), in the parameters' own
dtype and in place. Introduced in 07_training.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from cnnlib.grading.guard import reference
from cnnlib.layers import Parameter

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Base class: holds the parameter list, checks it, and zeroes gradients.

    Args:
        params: an iterable of ``cnnlib.layers.Parameter`` (``model.parameters()``).
        lr: learning rate, >= 0.
    """

    def __init__(self, params: Iterable[Parameter], lr: float):
        name = type(self).__name__
        if isinstance(params, Parameter):
            params = [params]
        try:
            self.params: list[Parameter] = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be an iterable of Parameters such as model.parameters(), "
                            f"got {type(params).__name__}") from None
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: params[{i}] is a {type(p).__name__}, not a Parameter; "
                                "pass model.parameters() (Parameter objects carry .data and .grad)")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{name}: a parameter appears more than once in params")
        self.lr = _check_float(lr, "lr", name, low=0.0)

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to zeros (gradients accumulate across backward calls)."""
        for p in self.params:
            p.grad.fill(0)

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_float(value, arg: str, name: str, low: float = 0.0, high: float | None = None,
                 high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: {arg} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < low or (
        high is not None and (value >= high if high_open else value > high)
    ):
        bound = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(f"{name}: {arg} must be >= {low}{bound}, got {value}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and weight decay (``torch.optim.SGD``).

    For each parameter p with gradient g, every step:

        g = g + weight_decay * p               (when weight_decay > 0; L2 regularisation)
        v = momentum * v + g                   (v = g on the first step; when momentum > 0)
        p = p - lr * v                         (p - lr * g without momentum)

    With ``nesterov=True`` the update uses ``g + momentum * v`` instead of ``v``.

    Args:
        params: ``model.parameters()``.
        lr: learning rate.
        momentum: 0 <= momentum < 1.
        weight_decay: L2 penalty coefficient, >= 0.
        nesterov: Nesterov momentum (needs momentum > 0).

    Example:
        >>> p = Parameter(np.array([1.0, -2.0], np.float32), "w")
        >>> p.grad[:] = [0.5, 0.5]
        >>> SGD([p], lr=0.1).step()
        >>> p.data
        array([ 0.95, -2.05], dtype=float32)
    """

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(params, lr)
        self.momentum = _check_float(momentum, "momentum", "SGD", 0.0, 1.0, high_open=True)
        self.weight_decay = _check_float(weight_decay, "weight_decay", "SGD", 0.0)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self._velocity: list[np.ndarray | None] = [None] * len(self.params)

    @reference
    def step(self) -> None:
        """Apply one update to every parameter from its current ``.grad``."""
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        for i, p in enumerate(self.params):
            g = p.grad
            if wd:
                g = g + p.data.dtype.type(wd) * p.data
            if mu:
                v = self._velocity[i]
                if v is None:
                    v = self._velocity[i] = np.array(g, dtype=p.data.dtype, copy=True)
                else:
                    v *= mu
                    v += g
                g = g + p.data.dtype.type(mu) * v if self.nesterov else v
            p.data -= p.data.dtype.type(lr) * g


class Adam(Optimizer):
    """Adam: momentum plus a per-parameter step size from running gradient moments (``torch.optim.Adam``).

    For each parameter p with gradient g, at step t = 1, 2, ...:

        g = g + weight_decay * p               (when weight_decay > 0; L2, not AdamW)
        m = beta1 * m + (1 - beta1) * g        (first moment, m starts at 0)
        v = beta2 * v + (1 - beta2) * g**2     (second moment, v starts at 0)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The ``1 - beta**t`` factors correct the bias of m and v towards 0 in the first steps.

    Args:
        params: ``model.parameters()``.
        lr: learning rate (1e-3 is a good default for small CNNs).
        betas: (beta1, beta2), each in [0, 1).
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient, >= 0.

    Example:
        >>> p = Parameter(np.array([1.0, -2.0], np.float32), "w")
        >>> p.grad[:] = [0.5, -3.0]
        >>> Adam([p], lr=0.1).step()    # the first step moves each weight by about lr
        >>> p.data
        array([ 0.9, -1.9], dtype=float32)
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_float(betas[0], "betas[0]", "Adam", 0.0, 1.0, high_open=True),
                      _check_float(betas[1], "betas[1]", "Adam", 0.0, 1.0, high_open=True))
        self.eps = _check_float(eps, "eps", "Adam", 0.0)
        self.weight_decay = _check_float(weight_decay, "weight_decay", "Adam", 0.0)
        self.t = 0
        self._m = [np.zeros_like(p.data) for p in self.params]
        self._v = [np.zeros_like(p.data) for p in self.params]
        self._tmp = [np.empty_like(p.data) for p in self.params]  # reused scratch: no allocations per step

    @reference
    def step(self) -> None:
        """Apply one update to every parameter from its current ``.grad``."""
        self.t += 1
        b1, b2 = self.betas
        bias1 = 1.0 - b1 ** self.t
        bias2 = 1.0 - b2 ** self.t
        step_size = self.lr / bias1
        inv_sqrt_bias2 = 1.0 / math.sqrt(bias2)
        for p, m, v, tmp in zip(self.params, self._m, self._v, self._tmp):
            t = p.data.dtype.type
            g = p.grad
            if self.weight_decay:
                g = g + t(self.weight_decay) * p.data
            m *= t(b1)
            m += t(1.0 - b1) * g
            v *= t(b2)
            np.multiply(g, g, out=tmp)
            tmp *= t(1.0 - b2)
            v += tmp
            # tmp = sqrt(v) / sqrt(bias2) + eps ; p -= step_size * m / tmp
            np.sqrt(v, out=tmp)
            tmp *= t(inv_sqrt_bias2)
            tmp += t(self.eps)
            np.divide(m, tmp, out=tmp)
            tmp *= t(step_size)
            p.data -= tmp

"""Loss functions and their gradients: softmax cross-entropy and the seed's squared error.

Each loss returns ``(loss, grad)``: the loss as a Python float (the mean over the batch) and
the gradient of that mean with respect to the network's output, in the output's dtype. Inputs
may be arrays or array-likes (see cnnlib.functional for the dtype rules).
"""

from __future__ import annotations

import numpy as np

from cnnlib.grading.guard import reference
from cnnlib.functional import _array, _float_dtype

__all__ = ["softmax", "softmax_cross_entropy", "squared_error"]


@reference
def softmax(logits):
    """Softmax over the last axis, computed stably (the row maximum is subtracted first).

    ``softmax(z)_k = exp(z_k - max z) / sum_j exp(z_j - max z)``; subtracting the maximum
    changes nothing mathematically and keeps exp from overflowing.

    Args:
        logits: array of shape (N, K) (any shape works; the last axis holds the classes).

    Returns:
        probs: array of the same shape and dtype; each row is positive and sums to 1.

    Shape:
        unchanged

    Example:
        >>> softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 1000.0]])).round(4)
        array([[0.09  , 0.2447, 0.6652],
               [0.3333, 0.3333, 0.3333]])

    Introduced in 05_backprop.
    """
    z = _array("softmax", "logits", logits)
    if z.ndim < 1:
        raise ValueError(f"softmax: logits must have a class axis, got a scalar")
    if z.shape[-1] == 0:
        raise ValueError(f"softmax: logits has no classes (logits {z.shape})")
    z = z.astype(_float_dtype(z), copy=False)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@reference
def softmax_cross_entropy(logits, y):
    """Softmax followed by the cross-entropy loss, averaged over the batch, and its gradient.

    ``loss = mean over n of -log softmax(logits[n])[y[n]]``, computed from the log-softmax
    (``z - max z - log sum exp(z - max z)``) so large logits never overflow. The gradient is
    famously simple: ``dlogits = (softmax(logits) - one_hot(y)) / N``. Keras:
    ``loss="sparse_categorical_crossentropy"`` on a softmax output.

    Args:
        logits: scores of shape (N, K) (no softmax applied yet).
        y: integer class indices of shape (N,), each in [0, K).

    Returns:
        loss: Python float, the mean cross-entropy.
        dlogits: array of shape (N, K), the gradient of loss w.r.t. logits (logits' dtype).

    Shape:
        (N, K), (N,) -> scalar, (N, K)

    Example:
        >>> loss, dlogits = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
        >>> round(loss, 4)  # uniform over 4 classes: log(4)
        1.3863
        >>> dlogits[0]
        array([-0.375,  0.125,  0.125,  0.125])

    Introduced in 05_backprop.
    """
    op = "softmax_cross_entropy"
    z = _array(op, "logits", logits, 2, "(N, K)")
    y = _array(op, "y", y, 1, "(N,) class indices")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{op}: y must hold integer class indices, got dtype {y.dtype}")
    N, K = z.shape
    if y.shape[0] != N:
        raise ValueError(f"{op}: y has {y.shape[0]} labels but logits has {N} rows (logits {z.shape}, y {y.shape})")
    if N == 0 or K == 0:
        raise ValueError(f"{op}: logits is empty (logits {z.shape})")
    if y.min() < 0 or y.max() >= K:
        bad = y[(y < 0) | (y >= K)][0]
        raise ValueError(f"{op}: y must be class indices in [0, {K}), got {bad} (logits {z.shape}, y {y.shape})")
    z = z.astype(_float_dtype(z), copy=False)
    shifted = z - z.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_sum
    rows = np.arange(N)
    loss = -float(np.mean(log_probs[rows, y], dtype=np.float64))
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1
    dlogits /= N
    return loss, dlogits


@reference
def squared_error(pred, target):
    """The seed's total error ``1/2 * sum (target - pred)^2`` per example, averaged over the batch.

    Axis 0 is the batch; a 1-D ``pred`` is a single example (a batch of one), as in the seed's
    boat example. The gradient of the mean is ``dpred = (pred - target) / N``.

    Args:
        pred: network outputs of shape (N, K) (or (K,) for one example).
        target: desired outputs, same shape as pred.

    Returns:
        loss: Python float. dpred: array of pred's shape (pred's dtype).

    Shape:
        (N, K), (N, K) -> scalar, (N, K)

    Example:
        The seed's boat image: target [0, 0, 1, 0], network output [0.2, 0.4, 0.1, 0.3]:

        >>> loss, dpred = squared_error(np.array([0.2, 0.4, 0.1, 0.3]), np.array([0, 0, 1, 0]))
        >>> round(loss, 4)  # 1/2 * (0.2**2 + 0.4**2 + 0.9**2 + 0.3**2)
        0.55
        >>> dpred
        array([ 0.2,  0.4, -0.9,  0.3])

    Introduced in 05_backprop.
    """
    op = "squared_error"
    p = _array(op, "pred", pred)
    t = _array(op, "target", target)
    if p.shape != t.shape:
        raise ValueError(f"{op}: pred and target must have the same shape (pred {p.shape}, target {t.shape})")
    if p.ndim == 0 or p.shape[0] == 0:
        raise ValueError(f"{op}: pred must be a batch (N, ...) or one example (K,), got shape {p.shape}")
    p = p.astype(_float_dtype(p), copy=False)
    N = 1 if p.ndim == 1 else p.shape[0]
    diff = p - t.astype(p.dtype, copy=False)
    loss = 0.5 * float(np.sum(diff * diff, dtype=np.float64)) / N
    return loss, diff / p.dtype.type(N)

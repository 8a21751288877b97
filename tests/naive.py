"""Naive loop references: slow, short, obviously correct. The tests hold cnnlib to these.

Every function loops over batch, channels and output positions in plain Python and does one
small numpy operation per step, exactly as the formula reads. Shapes follow cnnlib.functional
(NCHW, conv weights (F, C, KH, KW), linear weights (in, out)); stride and padding are pairs.
"""

from __future__ import annotations

import numpy as np


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def pad(x, padding):
    ph, pw = pair(padding)
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_forward(x, w, b, stride=1, padding=0):
    """out[n, f, i, j] = b[f] + sum(x_padded[n, :, window(i, j)] * w[f])."""
    (sh, sw), xp = pair(stride), pad(x, padding)
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = w.shape
    Ho, Wo = (Hp - KH) // sh + 1, (Wp - KW) // sw + 1
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * sh : i * sh + KH, j * sw : j * sw + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + (0 if b is None else b[f])
    return out


def conv2d_backward(dout, x, w, stride=1, padding=0):
    """Each output (n, f, i, j) adds dout * w[f] to its window of dx and dout * window to dw."""
    (sh, sw), (ph, pw), xp = pair(stride), pair(padding), pad(x, padding)
    F, _, KH, KW = w.shape
    N, _, Ho, Wo = dout.shape
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows, cols = slice(i * sh, i * sh + KH), slice(j * sw, j * sw + KW)
                    dxp[n, :, rows, cols] += dout[n, f, i, j] * w[f]
                    dw[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
    db = dout.sum(axis=(0, 2, 3))
    dx = dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    return dx, dw, db


def _pool_windows(x, kernel_size, stride):
    """Yield (output index, window index) for every pooling window."""
    (kh, kw) = pair(kernel_size)
    (sh, sw) = pair(kernel_size if stride is None else stride)
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    yield (n, c, i, j), (n, c, slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw))


def _pool_out_shape(x, kernel_size, stride):
    (kh, kw) = pair(kernel_size)
    (sh, sw) = pair(kernel_size if stride is None else stride)
    N, C, H, W = x.shape
    return N, C, (H - kh) // sh + 1, (W - kw) // sw + 1


def max_pool2d_forward(x, kernel_size, stride=None):
    out = np.zeros(_pool_out_shape(x, kernel_size, stride), x.dtype)
    for o, win in _pool_windows(x, kernel_size, stride):
        out[o] = x[win].max()
    return out


def max_pool2d_backward(dout, x, kernel_size, stride=None):
    """The gradient of each window goes to its first maximum in row-major order (np.argmax)."""
    dx = np.zeros_like(x)
    for o, (n, c, rows, cols) in _pool_windows(x, kernel_size, stride):
        window = x[n, c, rows, cols]
        i, j = np.unravel_index(np.argmax(window), window.shape)
        dx[n, c, rows.start + i, cols.start + j] += dout[o]
    return dx


def avg_pool2d_forward(x, kernel_size, stride=None):
    out = np.zeros(_pool_out_shape(x, kernel_size, stride), x.dtype)
    for o, win in _pool_windows(x, kernel_size, stride):
        out[o] = x[win].mean()
    return out


def avg_pool2d_backward(dout, x, kernel_size, stride=None):
    kh, kw = pair(kernel_size)
    dx = np.zeros_like(x)
    for o, win in _pool_windows(x, kernel_size, stride):
        dx[win] += dout[o] / (kh * kw)
    return dx


def global_avg_pool2d_forward(x):
    N, C = x.shape[:2]
    out = np.zeros((N, C), x.dtype)
    for n in range(N):
        for c in range(C):
            out[n, c] = x[n, c].mean()
    return out


def relu_forward(x):
    return np.array([v if v > 0 else 0.0 for v in x.ravel()], dtype=x.dtype).reshape(x.shape)


def linear_forward(x, w, b):
    N, (I, O) = x.shape[0], w.shape
    out = np.zeros((N, O), np.result_type(x, w))
    for n in range(N):
        for o in range(O):
            out[n, o] = sum(x[n, i] * w[i, o] for i in range(I)) + (0 if b is None else b[o])
    return out


def batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Channel by channel; returns out and the NEW running statistics (inputs untouched).

    The running update is torch.nn.functional.batch_norm's:
    running = (1 - momentum) * running + momentum * statistic, unbiased variance.
    """
    out = np.zeros_like(x)
    new_mean, new_var = running_mean.copy(), running_var.copy()
    for c in range(x.shape[1]):
        values = x[:, c].ravel()
        m = values.size
        if training:
            mean = sum(values) / m
            var = sum((v - mean) ** 2 for v in values) / m
            new_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean
            new_var[c] = (1 - momentum) * running_var[c] + momentum * var * m / (m - 1)
        else:
            mean, var = running_mean[c], running_var[c]
        out[:, c] = gamma[c] * (x[:, c] - mean) / np.sqrt(var + eps) + beta[c]
    return out, new_mean, new_var


def softmax(logits):
    out = np.zeros_like(logits)
    for n, row in enumerate(logits):
        e = np.exp(row - row.max())
        out[n] = e / e.sum()
    return out


def softmax_cross_entropy(logits, y):
    """Mean over the batch of -log(softmax(logits[n])[y[n]]); gradient (p - onehot) / N."""
    p = softmax(logits)
    N = logits.shape[0]
    loss = sum(-np.log(p[n, y[n]]) for n in range(N)) / N
    dlogits = p.copy()
    for n in range(N):
        dlogits[n, y[n]] -= 1
    return loss, dlogits / N


def squared_error(pred, target):
    """Mean over the batch of 1/2 * sum (target - pred)^2 (the seed's total error)."""
    N = pred.shape[0]
    loss = sum(0.5 * np.sum((target[n] - pred[n]) ** 2) for n in range(N)) / N
    return loss, (pred - target) / N


def correlate2d_valid(image, kernel):
    """Single-channel valid cross-correlation: out[i, j] = sum(image[window] * kernel)."""
    KH, KW = kernel.shape
    H, W = image.shape
    out = np.zeros((H - KH + 1, W - KW + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i : i + KH, j : j + KW] * kernel)
    return out

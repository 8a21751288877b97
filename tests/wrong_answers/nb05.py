"""Typical wrong solutions of notebook 05_backprop, per exercise (format: tests/wrong_answers/__init__.py).

Each must lose its exercise's points, and only those, with the hint that names its mistake (or,
with ``hint=None``, no guessed hint). ``not_hint`` lists hints of neighbouring mistakes that must not
fire instead.
"""

from wrong_answers import WrongAnswer

ASSIGNMENT = "05_backprop"

WRONG = {
    1: [  # 5.1 squared_error(pred, target) -> (loss, dpred); the region follows `N = pred.shape[0]`
        WrongAnswer(
            "the 1/2 left out",
            """
            diff = pred - target
            loss = np.sum(diff ** 2) / N
            dpred = 2 * diff / N
            """,
            hint="twice too large: the total error is",
        ),
        WrongAnswer(
            "no 1/N: summed over the batch",
            """
            diff = pred - target
            loss = 0.5 * np.sum(diff ** 2)
            dpred = diff
            """,
            hint="times too large: average over the batch",
            not_hint=("twice too large",),
        ),
        WrongAnswer(
            "1/N in the loss only",
            """
            diff = pred - target
            loss = 0.5 * np.sum(diff ** 2) / N
            dpred = diff
            """,
            hint="the loss is right but dpred is N = 3 times too large",
        ),
        WrongAnswer(
            "gradient with the wrong sign",
            """
            diff = pred - target
            loss = 0.5 * np.sum(diff ** 2) / N
            dpred = (target - pred) / N
            """,
            hint="dpred has the wrong sign",
        ),
        WrongAnswer(
            "np.mean over every entry",
            """
            diff = pred - target
            loss = 0.5 * np.mean(diff ** 2)
            dpred = diff / diff.size
            """,
            hint="the number of entries",
        ),
        WrongAnswer(
            "absolute instead of squared error (no catalogued hint)",
            """
            diff = pred - target
            loss = 0.5 * np.sum(np.abs(diff)) / N
            dpred = diff / N
            """,
            hint=None,
        ),
    ],
    2: [  # 5.2 softmax_cross_entropy(logits, y) -> (loss, dlogits); the region follows `N = logits.shape[0]`
        WrongAnswer(
            "scipy.special does the work (the statement says numpy only)",
            """
            from scipy.special import logsumexp, softmax
            loss = float(np.mean(logsumexp(logits, axis=1) - logits[np.arange(N), y]))
            dlogits = softmax(logits, axis=1)
            dlogits[np.arange(N), y] -= 1
            dlogits /= N
            """,
            hint="your code called `scipy.special.logsumexp`",
        ),
        WrongAnswer(
            "unstable: exp without subtracting the maximum",
            """
            p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            loss = -np.mean(np.log(p[np.arange(N), y]))
            dlogits = p.copy()
            dlogits[np.arange(N), y] -= 1
            dlogits /= N
            """,
            hint="holds nan (or inf) for huge logits",
        ),
        WrongAnswer(
            "log of a probability that underflowed",
            """
            shifted = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
            loss = -np.mean(np.log(p[np.arange(N), y]))
            dlogits = p.copy()
            dlogits[np.arange(N), y] -= 1
            dlogits /= N
            """,
            hint="underflows to 0",
            not_hint=("holds nan",),
        ),
        WrongAnswer(
            "no 1/N: summed over the batch",
            """
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = -np.sum(log_p[np.arange(N), y])
            dlogits = np.exp(log_p)
            dlogits[np.arange(N), y] -= 1
            """,
            hint="your loss and gradient are N = 3 times too large",
        ),
        WrongAnswer(
            "p[:, y] -= 1: whole columns",
            """
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = -np.mean(log_p[np.arange(N), y])
            dlogits = np.exp(log_p)
            dlogits[:, y] -= 1
            dlogits /= N
            """,
            hint="takes whole COLUMNS y",
        ),
        WrongAnswer(
            "the one-hot left out of the gradient",
            """
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = -np.mean(log_p[np.arange(N), y])
            dlogits = np.exp(log_p) / N
            """,
            hint="you left out the one-hot",
        ),
        WrongAnswer(
            "softmax over the batch axis",
            """
            shifted = logits - logits.max(axis=0, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
            loss = -np.mean(log_p[np.arange(N), y])
            dlogits = np.exp(log_p)
            dlogits[np.arange(N), y] -= 1
            dlogits /= N
            """,
            hint="softmax normalizes each ROW",
        ),
        WrongAnswer(
            "the loss without its minus sign",
            """
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss = np.mean(log_p[np.arange(N), y])
            dlogits = np.exp(log_p)
            dlogits[np.arange(N), y] -= 1
            dlogits /= N
            """,
            hint="your loss has the wrong sign",
        ),
    ],
    3: [  # 5.3 relu_backward(dout, x) -> dx
        WrongAnswer("x >= 0 lets the kink through", "dx = dout * (x >= 0)", hint="not x >= 0"),
        WrongAnswer("times the output relu(x)", "dx = dout * np.maximum(x, 0)", hint="not by relu(x)"),
        WrongAnswer("ReLU applied to dout", "dx = np.maximum(dout, 0)", hint="you applied ReLU to dout"),
        WrongAnswer("the mask without dout", "dx = (x > 0) * 1.0", hint="local gradient alone"),
        WrongAnswer(
            "dout changed in place",
            """
            dout[x <= 0] = 0
            dx = dout
            """,
            hint="changed its input `dout` in place",
        ),
    ],
    4: [  # 5.4 linear_backward(dout, x, w, b) -> (dx, dw, db)
        WrongAnswer(
            "dw transposed: dout.T @ x",
            """
            dx = dout @ w.T
            dw = dout.T @ x
            db = dout.sum(axis=0)
            """,
            hint="not dout.T @ x",
        ),
        WrongAnswer(
            "dx = dout @ w without the transpose",
            """
            dx = dout @ w
            dw = x.T @ dout
            db = dout.sum(axis=0)
            """,
            hint="dx = dout @ w.T is",
        ),
        WrongAnswer(
            "db summed over the wrong axis",
            """
            dx = dout @ w.T
            dw = x.T @ dout
            db = dout.sum(axis=1)
            """,
            hint="sum dout over the BATCH axis",
        ),
        WrongAnswer(
            "db averaged over the batch",
            """
            dx = dout @ w.T
            dw = x.T @ dout
            db = dout.mean(axis=0)
            """,
            hint="db: sum over the batch, not the mean",
        ),
        WrongAnswer(
            "dw divided by N",
            """
            dx = dout @ w.T
            dw = x.T @ dout / x.shape[0]
            db = dout.sum(axis=0)
            """,
            hint="dw: sum over the batch, not the mean",
        ),
    ],
    5: [  # 5.5 conv_backward_naive(dout, x, w, b, stride, padding) -> (dx, dw, db)
        WrongAnswer(
            "dw without the stride",
            """
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            dw[f] += x_pad[n, :, i:i + KH, j:j + KW] * dout[n, f, i, j]
                            dx_pad[n, :, i * s:i * s + KH, j * s:j * s + KW] += w[f] * dout[n, f, i, j]
            db = dout.sum(axis=(0, 2, 3))
            dx = dx_pad[:, :, p:p + H, p:p + W]
            """,
            hint="dw is wrong but dx is right",
        ),
        WrongAnswer(
            "the stride left out everywhere",
            """
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            dw[f] += x_pad[n, :, i:i + KH, j:j + KW] * dout[n, f, i, j]
                            dx_pad[n, :, i:i + KH, j:j + KW] += w[f] * dout[n, f, i, j]
            db = dout.sum(axis=(0, 2, 3))
            dx = dx_pad[:, :, p:p + H, p:p + W]
            """,
            hint="dx and dw both ignore the stride",
        ),
        WrongAnswer(
            "= instead of += in dx where windows overlap",
            """
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            rows, cols = slice(i * s, i * s + KH), slice(j * s, j * s + KW)
                            dw[f] += x_pad[n, :, rows, cols] * dout[n, f, i, j]
                            dx_pad[n, :, rows, cols] = w[f] * dout[n, f, i, j]
            db = dout.sum(axis=(0, 2, 3))
            dx = dx_pad[:, :, p:p + H, p:p + W]
            """,
            hint="use += into dx_pad, not =",
        ),
        WrongAnswer(
            "= instead of += in dw",
            """
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            rows, cols = slice(i * s, i * s + KH), slice(j * s, j * s + KW)
                            dw[f] = x_pad[n, :, rows, cols] * dout[n, f, i, j]
                            dx_pad[n, :, rows, cols] += w[f] * dout[n, f, i, j]
            db = dout.sum(axis=(0, 2, 3))
            dx = dx_pad[:, :, p:p + H, p:p + W]
            """,
            hint="dw[f] collects a contribution from EVERY image",
        ),
        WrongAnswer(
            "dx as a full correlation with the unflipped kernel",
            """
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            dw[f] += x_pad[n, :, i * s:i * s + KH, j * s:j * s + KW] * dout[n, f, i, j]
                    dilated = np.zeros(((H_out - 1) * s + 1, (W_out - 1) * s + 1))
                    dilated[::s, ::s] = dout[n, f]
                    for c in range(C):
                        # correlate2d(dilated, w[f, c], "full") by hand: should use the flipped kernel
                        padded = np.pad(dilated, ((KH - 1, KH - 1), (KW - 1, KW - 1)))
                        full = np.array([[np.sum(padded[a:a + KH, d:d + KW] * w[f, c])
                                          for d in range(padded.shape[1] - KW + 1)]
                                         for a in range(padded.shape[0] - KH + 1)])
                        dx_pad[n, c, :full.shape[0], :full.shape[1]] += full
            db = dout.sum(axis=(0, 2, 3))
            dx = dx_pad[:, :, p:p + H, p:p + W]
            """,
            hint="uses the kernel rotated by 180 degrees",
        ),
        WrongAnswer(
            "db summed over the wrong axes",
            """
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            rows, cols = slice(i * s, i * s + KH), slice(j * s, j * s + KW)
                            dw[f] += x_pad[n, :, rows, cols] * dout[n, f, i, j]
                            dx_pad[n, :, rows, cols] += w[f] * dout[n, f, i, j]
            db = dout.sum(axis=(2, 3))
            dx = dx_pad[:, :, p:p + H, p:p + W]
            """,
            hint="db[f] sums dout[:, f] over the batch AND every output position",
        ),
        WrongAnswer(
            "cropped with p:-p (empty when p = 0)",
            """
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            rows, cols = slice(i * s, i * s + KH), slice(j * s, j * s + KW)
                            dw[f] += x_pad[n, :, rows, cols] * dout[n, f, i, j]
                            dx_pad[n, :, rows, cols] += w[f] * dout[n, f, i, j]
            db = dout.sum(axis=(0, 2, 3))
            dx = dx_pad[:, :, p:-p, p:-p]
            """,
            hint="is EMPTY when p = 0",
        ),
    ],
    6: [  # 5.6 numerical_gradient(f, x, h) -> grad; the region follows `grad = np.zeros(x.shape)`
        WrongAnswer(
            "one-sided difference",
            """
            fx = f(x)
            for idx in np.ndindex(x.shape):
                old = x[idx]
                x[idx] = old + h
                grad[idx] = (f(x) - fx) / h
                x[idx] = old
            """,
            hint="ONE-SIDED difference",
        ),
        WrongAnswer(
            "divided by h instead of 2h",
            """
            for idx in np.ndindex(x.shape):
                old = x[idx]
                x[idx] = old + h
                f_plus = f(x)
                x[idx] = old - h
                f_minus = f(x)
                x[idx] = old
                grad[idx] = (f_plus - f_minus) / h
            """,
            hint="divide by 2h, not h",
        ),
        WrongAnswer(
            "x left nudged (never restored)",
            """
            for idx in np.ndindex(x.shape):
                x[idx] += h
                f_plus = f(x)
                x[idx] -= 2 * h
                f_minus = f(x)
                grad[idx] = (f_plus - f_minus) / (2 * h)
            """,
            hint="changed its input `x` in place",
        ),
        WrongAnswer(
            "a whole row nudged: range(len(x))",
            """
            for i in range(len(x)):
                x_plus, x_minus = x.copy(), x.copy()
                x_plus[i] += h
                x_minus[i] -= h
                grad[i] = (f(x_plus) - f(x_minus)) / (2 * h)
            """,
            hint="is a whole ROW",
        ),
        WrongAnswer(
            "calls cnnlib's numerical_gradient",
            """
            grad = gradcheck.numerical_gradient(f, x, h=h)
            """,
            hint="your code called cnnlib's reference",
        ),
    ],
    7: [  # 5.7 gradient_check(f, x, analytic, h) -> relative error
        WrongAnswer(
            "CS231n's entrywise relative error",
            """
            numeric = numerical_gradient(f, x, h)
            return np.max(np.abs(analytic - numeric) / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric)))
            """,
            hint="entry by entry",
        ),
        WrongAnswer(
            "the absolute error",
            """
            numeric = numerical_gradient(f, x, h)
            return np.max(np.abs(analytic - numeric))
            """,
            hint="that is the ABSOLUTE error",
        ),
        WrongAnswer(
            "scaled by the analytic gradient only",
            """
            numeric = numerical_gradient(f, x, h)
            return np.max(np.abs(analytic - numeric)) / np.max(np.abs(analytic))
            """,
            hint="scale by the LARGER of the two magnitudes",
        ),
        WrongAnswer(
            "nan when both gradients are zero",
            """
            numeric = numerical_gradient(f, x, h)
            return np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(analytic)), np.max(np.abs(numeric)))
            """,
            hint="return 0.0 (0 / 0 gives nan)",
        ),
        WrongAnswer(
            "norm-based relative error",
            """
            numeric = numerical_gradient(f, x, h)
            return np.linalg.norm(analytic - numeric) / (np.linalg.norm(analytic) + np.linalg.norm(numeric))
            """,
            hint="built from norms",
        ),
        WrongAnswer(
            "the mean difference",
            """
            numeric = numerical_gradient(f, x, h)
            scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)))
            return 0.0 if scale == 0 else np.mean(np.abs(analytic - numeric)) / scale
            """,
            hint="use the LARGEST difference",
        ),
    ],
}

"""Wrong answers of 04_pooling (see tests/wrong_answers/__init__.py)."""

from wrong_answers import WrongAnswer

ASSIGNMENT = "04_pooling"


def _forward(reduce: str, dtype: str = ", dtype=x.dtype", rows: str = "i * s:i * s + k",
             cols: str = "j * s:j * s + k", size: str = "(H - k) // s + 1, (W - k) // s + 1") -> str:
    return f'''
H_out, W_out = {size}
out = np.zeros((N, C, H_out, W_out){dtype})
for i in range(H_out):
    for j in range(W_out):
        out[:, :, i, j] = x[:, :, {rows}, {cols}].{reduce}
'''


WRONG = {
    1: [  # max_pool_forward
        WrongAnswer("float64 output for float32 input", _forward("max(axis=(2, 3))", dtype=""),
                    hint="dtype=x.dtype"),
        WrongAnswer("mean instead of max", _forward("mean(axis=(2, 3))"), hint="MEAN of each window"),
        WrongAnswer("stepped by the kernel size", _forward(
            "max(axis=(2, 3))", rows="i * k:i * k + k", cols="j * k:j * k + k",
            size="(H - k) // k + 1, (W - k) // k + 1"), hint="step by `stride`, not by the kernel size"),
        WrongAnswer("stride left out of the slice", _forward("max(axis=(2, 3))", rows="i:i + k", cols="j:j + k"),
                    hint="did you leave the stride out of the slice?"),
    ],
    2: [  # avg_pool_forward
        WrongAnswer("float64 output for float32 input", _forward("mean(axis=(2, 3))", dtype=""),
                    hint="dtype=x.dtype"),
        WrongAnswer("sum instead of mean", _forward("sum(axis=(2, 3))"), hint="times too large"),
        WrongAnswer("max instead of mean", _forward("max(axis=(2, 3))"), hint="MAX of each window"),
        WrongAnswer("divided by k, not k*k", _forward("sum(axis=(2, 3)) / k"), hint=None),
    ],
    3: [  # global_avg_pool
        WrongAnswer("keepdims", "return x.mean(axis=(2, 3), keepdims=True)", hint="without keepdims"),
        WrongAnswer("averaged over the channels too", "return x.mean(axis=(1, 2, 3))",
                    hint="one number per image AND channel"),
        WrongAnswer("global max pooling", "return x.max(axis=(2, 3))", hint="global MAX pooling"),
        WrongAnswer("height only", "return x.mean(axis=2)", hint=None),
    ],
    4: [  # max_pool_backward (the region sits inside the loops over i, j)
        WrongAnswer("tie broken by the LAST maximum", '''
            last_max = k * k - 1 - window[:, :, ::-1].argmax(axis=2)
            one_hot = np.arange(k * k) == last_max[:, :, None]
            grad = one_hot * dout[:, :, i, j, None]
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += grad.reshape(N, C, k, k)
            ''', hint="went to the LAST maximum"),
        WrongAnswer("overwrites instead of adding", '''
            one_hot = np.arange(k * k) == window.argmax(axis=2)[:, :, None]
            grad = one_hot * dout[:, :, i, j, None]
            dx[:, :, i * s:i * s + k, j * s:j * s + k] = grad.reshape(N, C, k, k)
            ''', hint="Add to dx (+=)"),
        WrongAnswer("every maximum gets the gradient", '''
            is_max = window == window.max(axis=2, keepdims=True)
            grad = is_max * dout[:, :, i, j, None]
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += grad.reshape(N, C, k, k)
            ''', hint="every position equal to the maximum"),
        WrongAnswer("spread evenly like mean pooling", '''
            grad = np.ones((N, C, k * k)) * dout[:, :, i, j, None] / (k * k)
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += grad.reshape(N, C, k, k)
            ''', hint="spread each gradient over its window"),
    ],
    5: [  # avg_pool_backward
        WrongAnswer("not divided by k*k", '''
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx[:, :, i * s:i * s + k, j * s:j * s + k] += dout[:, :, i, j, None, None]
            ''', hint="times too large"),
        WrongAnswer("overwrites instead of adding", '''
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx[:, :, i * s:i * s + k, j * s:j * s + k] = dout[:, :, i, j, None, None] / (k * k)
            ''', hint="Add to dx (+=)"),
        WrongAnswer("dout not given the window axes", '''
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx[:, :, i * s:i * s + k, j * s:j * s + k] += dout[:, :, i, j] / (k * k)
            ''', hint="give it two more axes"),
        WrongAnswer("divided by k only", '''
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx[:, :, i * s:i * s + k, j * s:j * s + k] += dout[:, :, i, j, None, None] / k
            ''', hint=None),
    ],
}

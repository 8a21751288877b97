"""Typical wrong solutions of notebook 08_architectures (format: tests/wrong_answers/__init__.py)."""

from wrong_answers import WrongAnswer

ASSIGNMENT = "08_architectures"

WRONG = {
    1: [  # receptive_field(layers)
        WrongAnswer("adds k instead of (k - 1) * jump", '''
            r, jump = 1, 1
            for k, s in layers:
                r += k * jump
                jump *= s
            return r
        ''', hint="not k"),
        WrongAnswer("jump never multiplied by the stride", '''
            r, jump = 1, 1
            for k, s in layers:
                r += (k - 1) * jump
            return r
        ''', hint="the strides are missing"),
        WrongAnswer("jump multiplied by the layer's own stride before adding", '''
            r, jump = 1, 1
            for k, s in layers:
                jump *= s
                r += (k - 1) * jump
            return r
        ''', hint="own stride"),
        WrongAnswer("starts from r = 0", '''
            r, jump = 0, 1
            for k, s in layers:
                r += (k - 1) * jump
                jump *= s
            return r
        ''', hint="start from r = 1"),
        WrongAnswer("sum of the kernel sizes (no known hint)", '''
            return sum(k for k, s in layers)
        ''', hint=None),
    ],
    2: [  # output_sizes(n, layers)
        WrongAnswer("true division, no refusal", '''
            sizes = []
            for k, s, p in layers:
                n = (n - k + 2 * p) / s + 1
                sizes.append(n)
            return sizes
        ''', hint="use //"),
        WrongAnswer("floors instead of refusing", '''
            sizes = []
            for k, s, p in layers:
                n = (n - k + 2 * p) // s + 1
                sizes.append(n)
            return sizes
        ''', hint="do not round", not_hint=("use //",)),
        WrongAnswer("refuses inexact divisions but not a window that does not fit", '''
            sizes = []
            for k, s, p in layers:
                if (n - k + 2 * p) % s:
                    raise ValueError("not a whole number")
                n = (n - k + 2 * p) // s + 1
                sizes.append(n)
            return sizes
        ''', hint="does not fit"),
        WrongAnswer("padding counted once", '''
            sizes = []
            for k, s, p in layers:
                if n + 2 * p < k or (n - k + p) % s:
                    raise ValueError("does not fit")
                n = (n - k + p) // s + 1
                sizes.append(n)
            return sizes
        ''', hint="counts twice"),
        WrongAnswer("every layer computed from the input size", '''
            sizes = []
            for k, s, p in layers:
                if n + 2 * p < k or (n - k + 2 * p) % s:
                    raise ValueError("does not fit")
                sizes.append((n - k + 2 * p) // s + 1)
            return sizes
        ''', hint="OUTPUT of the layer before"),
    ],
    3: [  # count_params(spec)
        WrongAnswer("biases forgotten", '''
            total = 0
            for layer in spec:
                if layer[0] == "conv":
                    total += layer[3] * layer[3] * layer[1] * layer[2]
                elif layer[0] == "fc":
                    total += layer[1] * layer[2]
                elif layer[0] == "bn":
                    total += 2 * layer[1]
            return total
        ''', hint="forget the biases"),
        WrongAnswer("the bias flag ignored", '''
            total = 0
            for layer in spec:
                if layer[0] == "conv":
                    total += (layer[3] * layer[3] * layer[1] + 1) * layer[2]
                elif layer[0] == "fc":
                    total += (layer[1] + 1) * layer[2]
                elif layer[0] == "bn":
                    total += 2 * layer[1]
            return total
        ''', hint="has NO biases"),
        WrongAnswer("batch norm's running statistics counted", '''
            total = 0
            for layer in spec:
                if layer[0] == "conv":
                    bias = layer[4] if len(layer) > 4 else True
                    total += layer[3] * layer[3] * layer[1] * layer[2] + (layer[2] if bias else 0)
                elif layer[0] == "fc":
                    bias = layer[3] if len(layer) > 3 else True
                    total += layer[1] * layer[2] + (layer[2] if bias else 0)
                elif layer[0] == "bn":
                    total += 4 * layer[1]
            return total
        ''', hint="running mean and variance"),
        WrongAnswer("k weights per channel instead of k*k", '''
            total = 0
            for layer in spec:
                if layer[0] == "conv":
                    bias = layer[4] if len(layer) > 4 else True
                    total += layer[3] * layer[1] * layer[2] + (layer[2] if bias else 0)
                elif layer[0] == "fc":
                    bias = layer[3] if len(layer) > 3 else True
                    total += layer[1] * layer[2] + (layer[2] if bias else 0)
                elif layer[0] == "bn":
                    total += 2 * layer[1]
            return total
        ''', hint="k*k weights per input channel"),
    ],
    4: [  # residual_forward(x, w1, w2, ws=None, stride=1)
        WrongAnswer("ReLU before the addition", '''
            h = np.maximum(conv(x, w1, stride, 1), 0)
            fx = conv(h, w2, 1, 1)
            shortcut = x if ws is None else conv(x, ws, stride, 0)
            return np.maximum(fx, 0) + shortcut
        ''', hint="AFTER the addition"),
        WrongAnswer("no ReLU after the addition", '''
            h = np.maximum(conv(x, w1, stride, 1), 0)
            fx = conv(h, w2, 1, 1)
            shortcut = x if ws is None else conv(x, ws, stride, 0)
            return fx + shortcut
        ''', hint="one more ReLU", not_hint=("AFTER the addition",)),
        WrongAnswer("identity shortcut even when ws is given", '''
            h = np.maximum(conv(x, w1, stride, 1), 0)
            fx = conv(h, w2, 1, 1)
            return np.maximum(fx + x, 0)
        ''', hint="same shape"),
        WrongAnswer("projection without the stride", '''
            h = np.maximum(conv(x, w1, stride, 1), 0)
            fx = conv(h, w2, 1, 1)
            shortcut = x if ws is None else conv(x, ws, 1, 0)
            return np.maximum(fx + shortcut, 0)
        ''', hint="same shape"),
        WrongAnswer("no ReLU inside the block", '''
            fx = conv(conv(x, w1, stride, 1), w2, 1, 1)
            shortcut = x if ws is None else conv(x, ws, stride, 0)
            return np.maximum(fx + shortcut, 0)
        ''', hint="a ReLU between"),
    ],
    5: [  # residual_backward(dout, x, w1, w2)
        WrongAnswer("the skip path ignored", '''
            h_pre = conv(x, w1, 1, 1)
            h = np.maximum(h_pre, 0)
            fx = conv(h, w2, 1, 1)
            ds = dout * (fx + x > 0)
            dh, dw2 = conv_backward(ds, h, w2, 1, 1)
            dx_block, dw1 = conv_backward(dh * (h_pre > 0), x, w1, 1, 1)
            return dx_block, dw1, dw2
        ''', hint="misses the skip path"),
        WrongAnswer("the ReLU mask after the addition ignored", '''
            h_pre = conv(x, w1, 1, 1)
            h = np.maximum(h_pre, 0)
            ds = dout
            dh, dw2 = conv_backward(ds, h, w2, 1, 1)
            dx_block, dw1 = conv_backward(dh * (h_pre > 0), x, w1, 1, 1)
            return dx_block + ds, dw1, dw2
        ''', hint="only where F(x) + x > 0"),
        WrongAnswer("the last mask taken from F(x) alone", '''
            h_pre = conv(x, w1, 1, 1)
            h = np.maximum(h_pre, 0)
            fx = conv(h, w2, 1, 1)
            ds = dout * (fx > 0)
            dh, dw2 = conv_backward(ds, h, w2, 1, 1)
            dx_block, dw1 = conv_backward(dh * (h_pre > 0), x, w1, 1, 1)
            return dx_block + ds, dw1, dw2
        ''', hint="acts on the SUM", not_hint=("misses the skip path",)),
        WrongAnswer("the ReLU mask inside the block ignored", '''
            h_pre = conv(x, w1, 1, 1)
            h = np.maximum(h_pre, 0)
            fx = conv(h, w2, 1, 1)
            ds = dout * (fx + x > 0)
            dh, dw2 = conv_backward(ds, h, w2, 1, 1)
            dx_block, dw1 = conv_backward(dh, x, w1, 1, 1)
            return dx_block + ds, dw1, dw2
        ''', hint="inside the block there is a ReLU"),
    ],
}

"""Wrong answers of 03_conv_layer (see tests/wrong_answers/__init__.py)."""

from wrong_answers import WrongAnswer

ASSIGNMENT = "03_conv_layer"

_LOOPS = '''
H_out = (H + 2 * padding - KH) // stride + 1
W_out = (W + 2 * padding - KW) // stride + 1
x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
out = np.zeros((N, F_, H_out, W_out))
for n in range(N):
    for f in range(F_):
        for i in range(H_out):
            for j in range(W_out):
                window = x_pad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                out[n, f, i, j] = {expr}
return out
'''

WRONG = {
    1: [  # conv_forward_naive
        WrongAnswer("sums channel 0 only", _LOOPS.format(expr="np.sum(window[0] * w[f, 0]) + b[f]"),
                    hint="uses input channel 0 only"),
        WrongAnswer("forgot the bias", _LOOPS.format(expr="np.sum(window * w[f])"),
                    hint="forget to add the bias"),
        WrongAnswer("flipped kernel", _LOOPS.format(expr="np.sum(window * w[f, :, ::-1, ::-1]) + b[f]"),
                    hint="TRUE convolution"),
        WrongAnswer("padded every axis", _LOOPS.replace(
            "np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))", "np.pad(x, padding)"
        ).format(expr="np.sum(window * w[f]) + b[f]"), hint="did you pad the channel or batch axis?"),
        WrongAnswer("window moved by 1", _LOOPS.replace(
            "x_pad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]", "x_pad[n, :, i:i + KH, j:j + KW]"
        ).format(expr="np.sum(window * w[f]) + b[f]"), hint="the window moved by 1 pixel"),
    ],
    2: [  # conv_params
        WrongAnswer("forgot the biases", "return k * k * c_in * c_out", hint="forget the biases"),
        WrongAnswer("filter one channel deep", "return (k * k + 1) * c_out", hint="as deep as its input"),
        WrongAnswer("k weights per channel", "return (k * c_in + 1) * c_out", hint="k*k weights per channel"),
    ],
    3: [  # model_params
        WrongAnswer("mutates filters", '''
            filters.insert(0, c_in)
            counts = [conv_params(filters[i], filters[i + 1], k) for i in range(len(filters) - 1)]
            return counts + [(filters[-1] + 1) * n_classes]
            ''', hint="changed its input `filters` in place"),
        WrongAnswer("every layer as deep as the image", '''
            counts = [conv_params(c_in, c_out, k) for c_out in filters]
            return counts + [(filters[-1] + 1) * n_classes]
            ''', hint="every layer got the image's channels"),
        WrongAnswer("dense layer without biases", '''
            counts = []
            for c_out in filters:
                counts.append(conv_params(c_in, c_out, k))
                c_in = c_out
            return counts + [c_in * n_classes]
            ''', hint="a bias for each output"),
        WrongAnswer("dense layer left out", '''
            counts = []
            for c_out in filters:
                counts.append(conv_params(c_in, c_out, k))
                c_in = c_out
            return counts
            ''', hint="the dense layer has parameters too"),
    ],
    4: [  # im2col
        WrongAnswer("windows as rows (transposed)", '''
            x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            cols = np.zeros((N, C, kh, kw, H_out, W_out), dtype=x.dtype)
            for i in range(kh):
                for j in range(kw):
                    cols[:, :, i, j] = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
            return cols.reshape(N, C * kh * kw, H_out * W_out).transpose(0, 2, 1)
            ''', hint="each WINDOW is a column"),
        WrongAnswer("rows ordered (i, j, c)", '''
            x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            cols = np.zeros((N, kh, kw, C, H_out, W_out), dtype=x.dtype)
            for i in range(kh):
                for j in range(kw):
                    cols[:, i, j] = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
            return cols.reshape(N, C * kh * kw, H_out * W_out)
            ''', hint="the rows are in the wrong order"),
        WrongAnswer("stride left out of the slices", '''
            x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            cols = np.zeros((N, C, kh, kw, H_out, W_out), dtype=x.dtype)
            for i in range(kh):
                for j in range(kw):
                    cols[:, :, i, j] = x_pad[:, :, i:i + H_out, j:j + W_out]
            return cols.reshape(N, C * kh * kw, H_out * W_out)
            ''', hint="the windows moved by 1 pixel"),
        WrongAnswer("input not padded", '''
            cols = np.zeros((N, C, kh, kw, H_out, W_out), dtype=x.dtype)
            for i in range(kh):
                for j in range(kw):
                    cols[:, :, i, j] = x[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
            return cols.reshape(N, C * kh * kw, H_out * W_out)
            ''', hint="does not fit the slice it goes into"),
    ],
    5: [  # conv_forward_im2col
        WrongAnswer("+ b instead of b[:, None]", '''
            cols = im2col(x, KH, KW, stride, padding)
            out = w.reshape(F_, -1) @ cols + b
            return out.reshape(N, F_, H_out, W_out)
            ''', hint="Give b the filter axis", not_hint=("channel axis", "1 channels")),
        WrongAnswer("calls the loop version", '''
            return conv_forward_naive(x, w, b, stride, padding)
            ''', hint="your code called your `conv_forward_naive`"),
        WrongAnswer("loops written out again", '''
            x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            out = np.zeros((N, F_, H_out, W_out))
            for n in range(N):
                for f in range(F_):
                    for i in range(H_out):
                        for j in range(W_out):
                            window = x_pad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                            out[n, f, i, j] = np.sum(window * w[f]) + b[f]
            return out
            ''', hint="about as long as plain loops"),
        WrongAnswer("filters reshaped the wrong way", '''
            cols = im2col(x, KH, KW, stride, padding)
            out = w.reshape(-1, F_).T @ cols + b[:, None]
            return out.reshape(N, F_, H_out, W_out)
            ''', hint=None),
    ],
}

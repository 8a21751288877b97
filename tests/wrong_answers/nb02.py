"""Wrong answers of 02_padding_and_stride (see tests/wrong_answers/__init__.py)."""

from wrong_answers import WrongAnswer

ASSIGNMENT = "02_padding_and_stride"
WRONG = {
    1: [  # conv_output_size
        WrongAnswer("+1 inside the division", "return (n + 2 * padding - kernel_size + 1) // stride",
                    hint="the +1 comes after the division", not_hint=("counts twice",)),
        WrongAnswer("padding counted once", "return (n + padding - kernel_size) // stride + 1",
                    hint="so it counts twice"),
        WrongAnswer("true division", "return (n + 2 * padding - kernel_size) / stride + 1",
                    hint="must round down"),
        WrongAnswer("the +1 left out", "return (n + 2 * padding - kernel_size) // stride",
                    hint="forget the +1"),
    ],
    2: [  # coverage_counts
        WrongAnswer("float counts", '''
            counts = np.zeros((height + 2 * padding, width + 2 * padding))
            out_h = (height + 2 * padding - kernel_size) // stride + 1
            out_w = (width + 2 * padding - kernel_size) // stride + 1
            for i in range(out_h):
                for j in range(out_w):
                    counts[i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size] += 1
            return counts[padding:padding + height, padding:padding + width]
            ''', hint="dtype=int"),
        WrongAnswer("padding ignored", '''
            counts = np.zeros((height, width), dtype=int)
            for i in range((height - kernel_size) // stride + 1):
                for j in range((width - kernel_size) // stride + 1):
                    counts[i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size] += 1
            return counts
            ''', hint="slide over the PADDED input"),
        WrongAnswer("window moved by 1", '''
            counts = np.zeros((height + 2 * padding, width + 2 * padding), dtype=int)
            for i in range(height + 2 * padding - kernel_size + 1):
                for j in range(width + 2 * padding - kernel_size + 1):
                    counts[i:i + kernel_size, j:j + kernel_size] += 1
            return counts[padding:padding + height, padding:padding + width]
            ''', hint="the window moves by `stride` pixels"),
        WrongAnswer("padding ring not cut off", '''
            counts = np.zeros((height + 2 * padding, width + 2 * padding), dtype=int)
            out_h = (height + 2 * padding - kernel_size) // stride + 1
            out_w = (width + 2 * padding - kernel_size) // stride + 1
            for i in range(out_h):
                for j in range(out_w):
                    counts[i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size] += 1
            return counts
            ''', hint="cut the ring of padding off"),
    ],
    3: [  # pad2d
        WrongAnswer("int padding only (a pair breaks)", '''
            return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            ''', hint="padding is an int P OR a pair", not_hint=("forget to sum",)),
        WrongAnswer("one side only", '''
            ph, pw = (padding, padding) if np.isscalar(padding) else padding
            return np.pad(x, ((0, 0), (0, 0), (ph, 0), (pw, 0)))
            ''', hint="one side only"),
        WrongAnswer("every axis padded", "return np.pad(x, padding)", hint="you padded every axis"),
        WrongAnswer("float64 output for float32 input", '''
            ph, pw = (padding, padding) if np.isscalar(padding) else padding
            N, C, H, W = x.shape
            out = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
            out[:, :, ph:ph + H, pw:pw + W] = x
            return out
            ''', hint="dtype=x.dtype"),
    ],
    4: [  # conv2d_single
        WrongAnswer("H_out from the unpadded image", '''
            padded = np.pad(image, padding)
            kh, kw = kernel.shape
            out_h = (image.shape[0] - kh) // stride + 1
            out_w = (image.shape[1] - kw) // stride + 1
            out = np.zeros((out_h, out_w))
            for i in range(out_h):
                for j in range(out_w):
                    out[i, j] = np.sum(padded[i * stride:i * stride + kh, j * stride:j * stride + kw] * kernel)
            return out
            ''', hint="comes from the PADDED input", not_hint=("one side only",)),
        WrongAnswer("no padding at all", '''
            kh, kw = kernel.shape
            out_h = (image.shape[0] - kh) // stride + 1
            out_w = (image.shape[1] - kw) // stride + 1
            out = np.zeros((out_h, out_w))
            for i in range(out_h):
                for j in range(out_w):
                    out[i, j] = np.sum(image[i * stride:i * stride + kh, j * stride:j * stride + kw] * kernel)
            return out
            ''', hint="did you leave out the padding?"),
        WrongAnswer("window moved by 1", '''
            padded = np.pad(image, padding)
            kh, kw = kernel.shape
            out_h = (padded.shape[0] - kh) // stride + 1
            out_w = (padded.shape[1] - kw) // stride + 1
            out = np.zeros((out_h, out_w))
            for i in range(out_h):
                for j in range(out_w):
                    out[i, j] = np.sum(padded[i:i + kh, j:j + kw] * kernel)
            return out
            ''', hint="the window moved by 1 pixel"),
        WrongAnswer("scipy.signal.correlate2d with slicing", '''
            full = signal.correlate2d(np.pad(image, padding), kernel, mode="valid")
            return full[::stride, ::stride]
            ''', hint="does this exercise's whole job"),
    ],
}

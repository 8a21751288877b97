"""Wrong answers of 01_images_and_kernels (see tests/wrong_answers/__init__.py)."""

from wrong_answers import WrongAnswer

ASSIGNMENT = "01_images_and_kernels"
WRONG = {
    1: [  # cross_correlate2d
        WrongAnswer("rows sliced twice: image[i:i+KH][j:j+KW]", '''
            kh, kw = kernel.shape
            out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = np.sum(image[i:i + kh][j:j + kw] * kernel)
            return out
            ''', hint="slices the ROWS twice", not_hint=("channel", "batch axis")),
        WrongAnswer("calls scipy.signal.correlate2d", '''
            return signal.correlate2d(image, kernel, mode="valid")
            ''', hint="does this exercise's whole job"),
        WrongAnswer("flips the kernel", '''
            kh, kw = kernel.shape
            flipped = kernel[::-1, ::-1]
            out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = np.sum(image[i:i + kh, j:j + kw] * flipped)
            return out
            ''', hint="TRUE convolution"),
        WrongAnswer("output array with the image's integer dtype", '''
            kh, kw = kernel.shape
            out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1), dtype=image.dtype)
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
            return out
            ''', hint="integer arrays truncate"),
        WrongAnswer("output one row and column short", '''
            kh, kw = kernel.shape
            out = np.zeros((image.shape[0] - kh, image.shape[1] - kw))
            for i in range(out.shape[0]):
                for j in range(out.shape[1]):
                    out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
            return out
            ''', hint=None),
    ],
    2: [  # flip_kernel
        WrongAnswer("flipped top-to-bottom only", "return kernel[::-1].copy()", hint="only top-to-bottom"),
        WrongAnswer("transposed", "return kernel.T.copy()", hint="transposed the kernel"),
        WrongAnswer("flips in place", '''
            kernel[:] = kernel[::-1, ::-1].copy()
            return kernel
            ''', hint="changed its input `kernel` in place"),
        WrongAnswer("rotated by 90 degrees", "return np.rot90(kernel).copy()", hint="rotated by 90 degrees"),
    ],
    3: [  # filter_rgb
        WrongAnswer("correlate2d instead of convolve2d", '''
            out = np.zeros(image.shape)
            for c in range(image.shape[2]):
                out[:, :, c] = signal.correlate2d(image[:, :, c], kernel, mode="same", boundary="symm")
            return out
            ''', hint="correlate2d on each channel"),
        WrongAnswer("zero padding at the border", '''
            out = np.zeros(image.shape)
            for c in range(image.shape[2]):
                out[:, :, c] = signal.convolve2d(image[:, :, c], kernel, mode="same")
            return out
            ''', hint='boundary="symm"'),
        WrongAnswer("converted to uint8 as in the article", '''
            out = np.zeros(image.shape)
            for c in range(image.shape[2]):
                out[:, :, c] = signal.convolve2d(image[:, :, c], kernel, mode="same", boundary="symm")
            return out.astype("uint8")
            ''', hint="integer arrays truncate"),
        WrongAnswer("channels summed into one map", '''
            return sum(signal.convolve2d(image[:, :, c], kernel, mode="same", boundary="symm") for c in range(3))
            ''', hint="keep the channels apart"),
    ],
    4: [  # detector_response
        WrongAnswer("flipped kernel", '''
            kh, kw = kernel.shape
            return float(np.sum(image[row:row + kh, col:col + kw] * kernel[::-1, ::-1]))
            ''', hint="FLIPPED kernel"),
        WrongAnswer("returns the products, not their sum", '''
            kh, kw = kernel.shape
            return image[row:row + kh, col:col + kw] * kernel
            ''', hint=None),
        WrongAnswer("rounds to an int", '''
            kh, kw = kernel.shape
            return int(np.sum(image[row:row + kh, col:col + kw] * kernel))
            ''', hint=None),
        WrongAnswer("row and col swapped", '''
            kh, kw = kernel.shape
            return float(np.sum(image[col:col + kh, row:row + kw] * kernel))
            ''', hint="shapes that do not fit"),
    ],
}

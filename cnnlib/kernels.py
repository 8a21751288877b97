"""Classic image kernels and per-channel filtering of images with scipy.signal.

Every kernel function returns a fresh float64 array (so changing it never changes the library),
and ``KERNELS`` maps names to those functions. The kernels are written for cross-correlation
(what CNN layers compute): the kernel is laid on the image as printed. ``scipy.signal.convolve2d``
flips the kernel first, which for the antisymmetric edge kernels flips the sign of the response
(see :func:`filter_channels`).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from cnnlib.grading.guard import reference
from cnnlib.functional import _array, _is_int

__all__ = [
    "identity",
    "box_blur",
    "gaussian",
    "sharpen",
    "sobel_x",
    "sobel_y",
    "prewitt_x",
    "prewitt_y",
    "laplacian",
    "emboss",
    "vertical_edge",
    "horizontal_edge",
    "KERNELS",
    "get_kernel",
    "filter_channels",
]


def _odd_size(op: str, size) -> int:
    if not _is_int(size) or size < 1 or size % 2 == 0:
        raise ValueError(f"{op}: size must be an odd int >= 1 (the kernel needs a centre), got {size!r}")
    return int(size)


@reference
def identity(size=3):
    """The identity kernel: 1 in the centre, 0 elsewhere; filtering returns the image unchanged.

    Args:
        size: odd side length.

    Returns:
        kernel: float64 array of shape (size, size).

    Shape:
        (size, size)

    Example:
        >>> identity()
        array([[0., 0., 0.],
               [0., 1., 0.],
               [0., 0., 0.]])

    Introduced in 01_images_and_kernels.
    """
    size = _odd_size("identity", size)
    k = np.zeros((size, size))
    k[size // 2, size // 2] = 1.0
    return k


@reference
def box_blur(size=3):
    """Box blur (mean filter): every output pixel is the mean of its size x size neighbourhood.

    Args:
        size: odd side length.

    Returns:
        kernel: float64 array of shape (size, size), all entries 1 / size**2 (they sum to 1).

    Shape:
        (size, size)

    Example:
        >>> box_blur() * 9
        array([[1., 1., 1.],
               [1., 1., 1.],
               [1., 1., 1.]])

    Introduced in 01_images_and_kernels.
    """
    size = _odd_size("box_blur", size)
    return np.full((size, size), 1.0 / size**2)


@reference
def gaussian(size=5, sigma=1.0):
    """Gaussian blur: weights ``exp(-(dx**2 + dy**2) / (2 sigma**2))``, normalised to sum to 1.

    A smoother blur than the box: near pixels count more than far ones.

    Args:
        size: odd side length (about 6*sigma captures nearly all the weight).
        sigma: standard deviation in pixels, > 0.

    Returns:
        kernel: float64 array of shape (size, size) summing to 1.

    Shape:
        (size, size)

    Example:
        >>> (gaussian(3, sigma=1.0) * 1000).round()
        array([[ 75., 124.,  75.],
               [124., 204., 124.],
               [ 75., 124.,  75.]])

    Introduced in 01_images_and_kernels.
    """
    size = _odd_size("gaussian", size)
    if not isinstance(sigma, (int, float, np.floating, np.integer)) or isinstance(sigma, bool) or not sigma > 0:
        raise ValueError(f"gaussian: sigma must be a number > 0, got {sigma!r}")
    d = np.arange(size) - size // 2
    k = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2.0 * sigma**2))
    return k / k.sum()


@reference
def sharpen():
    """Sharpen: the pixel minus its four neighbours, plus the pixel (weights sum to 1).

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> sharpen()
        array([[ 0., -1.,  0.],
               [-1.,  5., -1.],
               [ 0., -1.,  0.]])

    Introduced in 01_images_and_kernels.
    """
    return np.array([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]])


@reference
def sobel_x():
    """Sobel kernel for the horizontal gradient (it finds vertical edges).

    Positive where intensity increases from left to right (under cross-correlation).

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> sobel_x()
        array([[-1.,  0.,  1.],
               [-2.,  0.,  2.],
               [-1.,  0.,  1.]])

    Introduced in 01_images_and_kernels.
    """
    return np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


@reference
def sobel_y():
    """Sobel kernel for the vertical gradient (it finds horizontal edges); sobel_x transposed.

    Positive where intensity increases from top to bottom (under cross-correlation).

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> sobel_y()
        array([[-1., -2., -1.],
               [ 0.,  0.,  0.],
               [ 1.,  2.,  1.]])

    Introduced in 01_images_and_kernels.
    """
    return sobel_x().T.copy()


@reference
def prewitt_x():
    """Prewitt kernel for the horizontal gradient (vertical edges): Sobel without the centre weight.

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> prewitt_x()
        array([[-1.,  0.,  1.],
               [-1.,  0.,  1.],
               [-1.,  0.,  1.]])

    Introduced in 01_images_and_kernels.
    """
    return np.array([[-1.0, 0, 1], [-1, 0, 1], [-1, 0, 1]])


@reference
def prewitt_y():
    """Prewitt kernel for the vertical gradient (horizontal edges); prewitt_x transposed.

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> prewitt_y()
        array([[-1., -1., -1.],
               [ 0.,  0.,  0.],
               [ 1.,  1.,  1.]])

    Introduced in 01_images_and_kernels.
    """
    return prewitt_x().T.copy()


@reference
def laplacian():
    """Laplacian: the four neighbours minus 4 times the pixel; responds to edges in any direction.

    Its weights sum to 0, so flat regions give 0.

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> laplacian()
        array([[ 0.,  1.,  0.],
               [ 1., -4.,  1.],
               [ 0.,  1.,  0.]])

    Introduced in 01_images_and_kernels.
    """
    return np.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])


@reference
def emboss():
    """Emboss: a diagonal gradient plus the pixel, giving a raised, lit-from-the-top-left look.

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> emboss()
        array([[-2., -1.,  0.],
               [-1.,  1.,  1.],
               [ 0.,  1.,  2.]])

    Introduced in 01_images_and_kernels.
    """
    return np.array([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]])


@reference
def vertical_edge():
    """The seed's vertical line detector: columns -1, 0, +1 (the same values as prewitt_x).

    Seed 003 applies it to scipy's ``ascent`` photo with
    ``signal.convolve2d(ascent, kernel, boundary='symm', mode='same')``; convolution flips the
    kernel, so its response is the negative of the cross-correlation's.

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> vertical_edge()
        array([[-1.,  0.,  1.],
               [-1.,  0.,  1.],
               [-1.,  0.,  1.]])

    Introduced in 01_images_and_kernels.
    """
    return prewitt_x()


@reference
def horizontal_edge():
    """The seed's horizontal line detector: rows -1, 0, +1 (the same values as prewitt_y).

    Returns:
        kernel: float64 array of shape (3, 3).

    Shape:
        (3, 3)

    Example:
        >>> horizontal_edge()
        array([[-1., -1., -1.],
               [ 0.,  0.,  0.],
               [ 1.,  1.,  1.]])

    Introduced in 01_images_and_kernels.
    """
    return prewitt_y()


KERNELS = {
    "identity": identity,
    "box_blur": box_blur,
    "gaussian": gaussian,
    "sharpen": sharpen,
    "sobel_x": sobel_x,
    "sobel_y": sobel_y,
    "prewitt_x": prewitt_x,
    "prewitt_y": prewitt_y,
    "laplacian": laplacian,
    "emboss": emboss,
    "vertical_edge": vertical_edge,
    "horizontal_edge": horizontal_edge,
}
"""Name -> function returning that kernel (call it: ``KERNELS["sobel_x"]()``)."""


@reference
def get_kernel(name, **kwargs):
    """A classic kernel by name, e.g. ``get_kernel("gaussian", size=7, sigma=2.0)``.

    Args:
        name: one of ``KERNELS`` (identity, box_blur, gaussian, sharpen, sobel_x, sobel_y,
            prewitt_x, prewitt_y, laplacian, emboss, vertical_edge, horizontal_edge).
        **kwargs: passed to the kernel's function (size, sigma).

    Returns:
        kernel: a fresh float64 2-D array.

    Shape:
        (size, size), (3, 3) for the fixed kernels

    Example:
        >>> get_kernel("box_blur", size=5).shape
        (5, 5)

    Introduced in 01_images_and_kernels.
    """
    if name not in KERNELS:
        raise ValueError(f"get_kernel: unknown kernel {name!r}; choose one of {sorted(KERNELS)}")
    return KERNELS[name](**kwargs)


_MODES = ("full", "valid", "same")
_BOUNDARIES = ("fill", "wrap", "symm")


@reference
def filter_channels(image, kernel, mode="same", boundary="symm", fillvalue=0.0, correlate=True):
    """Filter a grayscale or RGB image with a 2-D kernel, each channel on its own.

    Cross-correlation (``correlate=True``, what CNN layers compute) slides the kernel over the
    image as it is: ``out[i, j] = sum over u, v of image[i + u, j + v] * kernel[u, v]``.
    Convolution (``correlate=False``, ``scipy.signal.convolve2d``, the textbook definition)
    flips the kernel in both axes first: convolving with k equals correlating with
    ``k[::-1, ::-1]`` (exactly for "valid" and "full"; with ``mode="same"`` an even-sized
    kernel has no centre pixel and scipy anchors the two operations one pixel apart, which is
    one more reason CNNs use odd kernels). For symmetric kernels (blur, sharpen, laplacian)
    they agree; for the edge kernels the sign of the response flips.

    The seed does the same with a loop over ``img.shape[-1]`` and ``signal.convolve2d(...,
    boundary='symm', mode='same')``, then casts back to uint8, which wraps negative values
    around; this returns floats instead (clip to [0, 255] or rescale to show them).

    Args:
        image: (H, W) grayscale or (H, W, C) colour image, any real dtype (uint8 included).
        kernel: 2-D array (KH, KW).
        mode: "same" (output H x W), "valid" (only where the kernel fits) or "full".
        boundary: how pixels outside the image are made up: "symm" (mirror the edge, as the
            seed), "fill" (fillvalue, i.e. zero padding) or "wrap".
        fillvalue: the value outside the image when boundary="fill".
        correlate: True for cross-correlation, False for convolution.

    Returns:
        out: float64 array (H', W') or (H', W', C), one filtered plane per channel.

    Shape:
        same: (H, W[, C]);  valid: (H - KH + 1, W - KW + 1[, C]);  full: (H + KH - 1, W + KW - 1[, C])

    Example:
        >>> img = np.random.default_rng(0).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
        >>> filter_channels(img, identity()).astype(np.uint8).tolist() == img.tolist()
        True
        >>> k = sobel_x()
        >>> np.allclose(filter_channels(img, k, correlate=False), filter_channels(img, k[::-1, ::-1]))
        True
        >>> filter_channels(img, box_blur(), mode="valid").shape
        (4, 3, 3)

    Introduced in 01_images_and_kernels.
    """
    op = "filter_channels"
    img = _array(op, "image", image)
    k = _array(op, "kernel", kernel, 2, "(KH, KW)")
    if img.ndim not in (2, 3):
        raise ValueError(f"{op}: image must be (H, W) or (H, W, C), got shape {img.shape}")
    if k.size == 0 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{op}: image and kernel must not be empty (image {img.shape}, kernel {k.shape})")
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}, got {mode!r}")
    if boundary not in _BOUNDARIES:
        raise ValueError(f"{op}: boundary must be one of {_BOUNDARIES}, got {boundary!r}")
    if mode == "valid" and (k.shape[0] > img.shape[0] or k.shape[1] > img.shape[1]):
        raise ValueError(f"{op}: the kernel is larger than the image for mode='valid' (image {img.shape}, kernel {k.shape})")
    filt = signal.correlate2d if correlate else signal.convolve2d
    planes = img[:, :, None] if img.ndim == 2 else img
    k = k.astype(np.float64)
    out = np.stack(
        [filt(planes[:, :, c].astype(np.float64), k, mode=mode, boundary=boundary, fillvalue=fillvalue) for c in range(planes.shape[2])],
        axis=-1,
    )
    return out[:, :, 0] if img.ndim == 2 else out

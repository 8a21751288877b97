"""cnnlib.kernels: the kernels' defining properties and filtering against scipy and naive loops."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from cnnlib import kernels

try:
    from tests import naive
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    import naive

RNG_IMAGE = np.random.default_rng(0).integers(0, 256, size=(9, 11, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(kernels.KERNELS))
def test_registry_returns_fresh_float_arrays(name):
    k = kernels.get_kernel(name)
    assert k.dtype == np.float64 and k.ndim == 2 and k.shape[0] % 2 == 1
    k[...] = 99  # changing a returned kernel never changes the library
    assert not np.all(kernels.get_kernel(name) == 99)


def test_defining_properties():
    for blur in (kernels.box_blur(5), kernels.gaussian(7, 1.5)):
        assert blur.sum() == pytest.approx(1.0)
    for zero_sum in (kernels.sobel_x(), kernels.sobel_y(), kernels.prewitt_x(), kernels.laplacian(), kernels.vertical_edge()):
        assert zero_sum.sum() == 0
    assert kernels.sharpen().sum() == 1 and kernels.emboss().sum() == 1
    np.testing.assert_array_equal(kernels.sobel_y(), kernels.sobel_x().T)
    np.testing.assert_array_equal(kernels.vertical_edge(), kernels.prewitt_x())
    np.testing.assert_array_equal(kernels.horizontal_edge(), kernels.prewitt_y())
    g = kernels.gaussian(5, 1.0)
    np.testing.assert_allclose(g, g.T)
    np.testing.assert_allclose(g, g[::-1, ::-1])


def test_seed_kernels_are_the_seed_values():
    np.testing.assert_array_equal(kernels.vertical_edge(), [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
    np.testing.assert_array_equal(kernels.horizontal_edge(), [[-1, -1, -1], [0, 0, 0], [1, 1, 1]])


def test_edge_kernels_find_their_edges():
    step = np.zeros((6, 6))
    step[:, 3:] = 1.0  # a vertical edge: dark left, bright right
    vertical = kernels.filter_channels(step, kernels.vertical_edge(), mode="valid")
    assert vertical.max() == 3 and vertical.min() == 0
    assert not kernels.filter_channels(step, kernels.horizontal_edge(), mode="valid").any()
    assert kernels.filter_channels(step, kernels.vertical_edge(), mode="valid", correlate=False).min() == -3


@pytest.mark.parametrize("boundary", ["symm", "fill", "wrap"])
@pytest.mark.parametrize("mode", ["same", "valid", "full"])
@pytest.mark.parametrize("correlate", [True, False])
def test_filter_channels_is_scipy_per_channel(mode, boundary, correlate):
    k = kernels.emboss()
    out = kernels.filter_channels(RNG_IMAGE, k, mode=mode, boundary=boundary, correlate=correlate)
    fn = signal.correlate2d if correlate else signal.convolve2d
    for c in range(3):
        np.testing.assert_allclose(out[:, :, c], fn(RNG_IMAGE[:, :, c].astype(float), k, mode=mode, boundary=boundary))


def test_convolution_is_correlation_with_the_flipped_kernel():
    k = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(
        kernels.filter_channels(RNG_IMAGE, k, correlate=False), kernels.filter_channels(RNG_IMAGE, k[::-1, ::-1])
    )


@pytest.mark.parametrize("name", ["sobel_x", "laplacian", "sharpen"])
def test_valid_filtering_matches_naive_loops_and_handles_grayscale(name):
    gray = RNG_IMAGE[:, :, 1]
    k = kernels.get_kernel(name)
    out = kernels.filter_channels(gray, k, mode="valid")
    assert out.shape == (7, 9)
    np.testing.assert_allclose(out, naive.correlate2d_valid(gray.astype(float), k))


def test_identity_leaves_the_image_unchanged():
    np.testing.assert_array_equal(kernels.filter_channels(RNG_IMAGE, kernels.identity()), RNG_IMAGE)

"""cnnlib.shapes: the formulas against brute force (building the layer and counting)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import functional as F
from cnnlib import shapes


@pytest.mark.parametrize("seed", range(20))
def test_conv_output_size_matches_the_real_conv(seed):
    rng = np.random.default_rng(seed)
    k, s, p = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
    n = int(rng.integers(max(1, k - 2 * p), 15))
    out = F.conv2d(np.zeros((1, 1, n, n)), np.zeros((1, 1, k, k)), stride=s, padding=p)
    assert out.shape[2] == shapes.conv_output_size(n, k, s, p)


def test_seed_examples():
    assert shapes.conv_output_size(200, 5, 2, 1) == 99
    assert shapes.conv_output_size(99, 3, 1) == 97
    assert shapes.conv_output_size(97, 3, 1, 1) == 97
    assert shapes.conv_output_size(224, 2, 2) == 112  # 224x224x64 -> 112x112x64
    keras = [shapes.conv2d_params(3, 16, 2), shapes.conv2d_params(16, 32, 2), shapes.conv2d_params(32, 64, 2), shapes.linear_params(64, 133)]
    assert keras == [208, 2080, 8256, 8645] and sum(keras) == 19189
    assert shapes.conv2d_params(1, 5, 3, bias=False) == 45
    assert shapes.locally_connected_params(1, 5, 3, 32, bias=False) == 46080


@pytest.mark.parametrize("c_in,c_out,k", [(3, 16, 2), (1, 6, 5), (6, 16, (5, 3)), (100, 20, 1)])
def test_conv2d_params_counts_the_arrays(c_in, c_out, k):
    kh, kw = (k, k) if isinstance(k, int) else k
    w, b = np.zeros((c_out, c_in, kh, kw)), np.zeros(c_out)
    assert shapes.conv2d_params(c_in, c_out, k) == w.size + b.size
    assert shapes.conv2d_params(c_in, c_out, k, bias=False) == w.size


def test_locally_connected_is_a_conv_per_output_position():
    assert shapes.locally_connected_params(3, 4, (2, 3), (5, 6)) == 5 * 6 * shapes.conv2d_params(3, 4, (2, 3))


@pytest.mark.parametrize("seed", range(10))
def test_receptive_field_matches_gradient_support(seed):
    """The input pixels that affect one output pixel span exactly the receptive field."""
    rng = np.random.default_rng(seed)
    layers = [(int(rng.integers(1, 4)), int(rng.integers(1, 3))) for _ in range(int(rng.integers(1, 4)))]
    x = np.zeros((1, 1, 40, 40))
    caches, out = [], x
    for k, s in layers:
        out, cache = F.conv2d_forward(out, np.ones((1, 1, k, k)), None, s)
        caches.append(cache)
    d = np.zeros_like(out)
    d[0, 0, out.shape[2] // 2, 0] = 1.0
    for cache in reversed(caches):
        d = F.conv2d_backward(d, cache)[0]
    rows = np.nonzero(d[0, 0].any(axis=1))[0]
    assert rows.max() - rows.min() + 1 == shapes.receptive_field(layers)


def test_receptive_field_examples():
    assert shapes.receptive_field([]) == 1
    assert shapes.receptive_field([(3, 1)] * 2) == 5
    assert shapes.receptive_field([(3, 1)] * 3) == 7
    assert shapes.receptive_field([(7, 2), (3, 2)]) == 11

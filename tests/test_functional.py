"""cnnlib.functional against naive loops, scipy, numerical gradients and (when installed) PyTorch.

One helper per kind of check, many seeded cases: random shapes with non-square inputs and
kernels, strides, paddings, overlapping and gapped pooling windows, N = 1 and C = 1.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
import types

import numpy as np
import pytest
from scipy import signal

from cnnlib import functional as F
from cnnlib.grading.guard import ReferenceBlockedError, blocked
from cnnlib.gradcheck import check_backward

try:
    from tests import naive
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    import naive

GRAD_TOL = 1e-7  # float64 gradient checks


# ------------------------------------------------------------------------------------ cases


def conv_case(seed: int) -> dict:
    """A random conv problem: shapes, stride and padding drawn from a seeded generator."""
    rng = np.random.default_rng(seed)
    N, C, Fo = (int(v) for v in rng.integers(1, 4, size=3))
    KH, KW = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
    H = int(rng.integers(max(1, KH - 2 * ph), 9))
    W = int(rng.integers(max(1, KW - 2 * pw), 9))
    stride = sh if seed % 3 == 0 else (sh, sw)
    padding = ph if seed % 3 == 0 else (ph, pw)
    if seed % 3 == 0:
        H, W = max(H, KH - 2 * ph), max(W, KW - 2 * ph)
    return dict(x=(N, C, H, W), w=(Fo, C, KH, KW), stride=stride, padding=padding)


FIXED_CONV_CASES = [
    dict(x=(1, 1, 5, 5), w=(1, 1, 3, 3), stride=1, padding=0),  # N = 1, C = 1
    dict(x=(2, 3, 7, 5), w=(4, 3, 3, 3), stride=2, padding=1),  # the STYLE.md example
    dict(x=(2, 3, 6, 9), w=(2, 3, 1, 1), stride=1, padding=0),  # 1x1 conv
    dict(x=(1, 2, 4, 4), w=(3, 2, 6, 6), stride=1, padding=1),  # kernel = padded input
    dict(x=(2, 2, 9, 8), w=(2, 2, 2, 3), stride=(3, 4), padding=0),  # stride > kernel: gaps
    dict(x=(1, 2, 5, 6), w=(2, 2, 3, 2), stride=1, padding=(3, 2)),  # padding > kernel - 1
    dict(x=(2, 3, 6, 6), w=(2, 3, 5, 5), stride=1, padding=2),  # 'same' 5x5
    dict(x=(2, 5, 6, 7), w=(2, 5, 3, 3), stride=1, padding=1),  # many channels: full-conv dx
]
CONV_CASES = FIXED_CONV_CASES + [conv_case(seed) for seed in range(24)]
# stride-1 cases with a kernel wider than 1: where the kernel-row route applies
ROWS_CASES = [c for c in CONV_CASES + [dict(conv_case(seed), stride=1) for seed in range(100, 112)]
              if F._pair("t", "s", c["stride"], 1) == (1, 1) and c["w"][3] > 1]


def case_id(case: dict) -> str:
    return "-".join(f"{k}{v}".replace(" ", "") for k, v in case.items())


def pool_case(seed: int) -> dict:
    rng = np.random.default_rng(1000 + seed)
    N, C = (int(v) for v in rng.integers(1, 4, size=2))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    H, W = int(rng.integers(kh, 10)), int(rng.integers(kw, 10))
    kernel = kh if seed % 4 == 0 else (kh, kw)
    if seed % 4 == 0:
        H, W = max(H, kh), max(W, kh)
    stride = [None, 1, (int(rng.integers(1, 4)), int(rng.integers(1, 4))), 2][seed % 4]
    return dict(x=(N, C, H, W), kernel_size=kernel, stride=stride)


FIXED_POOL_CASES = [
    dict(x=(1, 1, 4, 4), kernel_size=2, stride=None),  # N = 1, C = 1, tiled
    dict(x=(2, 3, 7, 7), kernel_size=3, stride=2),  # overlapping windows
    dict(x=(2, 2, 9, 6), kernel_size=(3, 2), stride=(1, 2)),  # non-square, overlapping rows
    dict(x=(1, 2, 8, 9), kernel_size=2, stride=3),  # gaps between windows
    dict(x=(2, 2, 5, 7), kernel_size=2, stride=None),  # floor: last row/column unused
    dict(x=(1, 1, 3, 3), kernel_size=3, stride=1),  # one window = whole input
]
POOL_CASES = FIXED_POOL_CASES + [pool_case(seed) for seed in range(20)]


def conv_arrays(case, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype)
    return x, w, b


def distinct(shape, seed=0):
    """Values at least 0.1 apart in random order: no max-pool window has a near-tie."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


# ------------------------------------------------------------------------- check helpers


def assert_matches(actual, expected, what, tol=1e-10):
    """Same shape and values (float64 round-off) as a reference."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=what)


def assert_gradients_ok(forward, backward, inputs, kwargs=None, wrt=None):
    """Analytic gradients agree with centred differences in float64."""
    errors = check_backward(forward, backward, inputs, kwargs=kwargs, wrt=wrt)
    assert max(errors.values()) < GRAD_TOL, f"relative errors {errors}"


# ---------------------------------------------------------------------- conv vs references


@pytest.mark.parametrize("strategy", ["col2im", "full"])
@pytest.mark.parametrize("keep_cols", [True, False], ids=["cols-kept", "cols-recomputed"])
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_conv_matches_naive_loops(case, keep_cols, strategy, monkeypatch):
    """The im2col route, both ways of computing dx, with the columns kept by the forward pass or recomputed."""
    monkeypatch.setattr(F, "_CONV_ALGO", "im2col")
    monkeypatch.setattr(F, "_DX_STRATEGY", strategy)
    monkeypatch.setattr(F, "_KEEP_COLS_BYTES", 2**40 if keep_cols else 0)
    x, w, b = conv_arrays(case)
    out, cache = F.conv2d_forward(x, w, b, case["stride"], case["padding"])
    assert_matches(out, naive.conv2d_forward(x, w, b, case["stride"], case["padding"]), "out")
    dout = np.random.default_rng(1).standard_normal(out.shape)
    grads = F.conv2d_backward(dout, cache)
    expected = naive.conv2d_backward(dout, x, w, case["stride"], case["padding"])
    for name, g, e in zip(("dx", "dw", "db"), grads, expected):
        assert_matches(g, e, name)


@pytest.mark.parametrize("case", CONV_CASES[:16], ids=case_id)
def test_conv_gradients(case):
    x, w, b = conv_arrays(case, seed=2)
    assert_gradients_ok(
        F.conv2d_forward, F.conv2d_backward, {"x": x, "w": w, "b": b},
        {"stride": case["stride"], "padding": case["padding"]},
    )


SCIPY_CASES = [
    (shape, kshape, mode)
    for shape, kshape in [((6, 7), (3, 3)), ((5, 9), (2, 4)), ((4, 4), (4, 4)), ((8, 3), (1, 3)), ((9, 8), (5, 3))]
    for mode in ("valid", "full", "same")
    if mode != "same" or (kshape[0] % 2 and kshape[1] % 2)  # 'same' + even kernel = uneven padding
]


@pytest.mark.parametrize("shape,kshape,mode", SCIPY_CASES)
def test_single_channel_conv_is_scipy_correlate2d(shape, kshape, mode):
    rng = np.random.default_rng(3)
    image, kernel = rng.standard_normal(shape), rng.standard_normal(kshape)
    padding = {"valid": 0, "full": (kshape[0] - 1, kshape[1] - 1), "same": (kshape[0] // 2, kshape[1] // 2)}[mode]
    out = F.conv2d(image[None, None], kernel[None, None], padding=padding)[0, 0]
    assert_matches(out, signal.correlate2d(image, kernel, mode=mode), f"conv2d vs correlate2d {mode}")


def test_conv_without_bias():
    x, w, b = conv_arrays(FIXED_CONV_CASES[1])
    out, cache = F.conv2d_forward(x, w, None, 2, 1)
    assert_matches(out, naive.conv2d_forward(x, w, None, 2, 1), "out")
    dx, dw, db = F.conv2d_backward(np.ones_like(out), cache)
    assert db is None
    assert_matches(F.conv2d(x, w, None, 2, 1), out, "conv2d")


def test_pad2d_matches_np_pad():
    x = np.arange(24.0).reshape(1, 2, 3, 4)
    assert_matches(F.pad2d(x, (1, 2)), np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2))), "pad2d")
    assert_matches(F.pad2d(x[0, 0], 1, value=-1.0), np.pad(x[0, 0], 1, constant_values=-1.0), "pad2d 2-D")


# --------------------------------------------------------------------------------- pooling

POOLS = {
    "max": (F.max_pool2d_forward, F.max_pool2d_backward, naive.max_pool2d_forward, naive.max_pool2d_backward),
    "avg": (F.avg_pool2d_forward, F.avg_pool2d_backward, naive.avg_pool2d_forward, naive.avg_pool2d_backward),
}


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_pool_matches_naive_loops(case, kind):
    forward, backward, naive_forward, naive_backward = POOLS[kind]
    k, s = case["kernel_size"], case["stride"]
    rng = np.random.default_rng(4)
    for x in (rng.standard_normal(case["x"]), rng.integers(0, 3, size=case["x"]).astype(float)):  # 2nd: many ties
        out, cache = forward(x, k, s)
        assert_matches(out, naive_forward(x, k, s), f"{kind} pool out")
        dout = rng.standard_normal(out.shape)
        assert_matches(backward(dout, cache), naive_backward(dout, x, k, s), f"{kind} pool dx")


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("case", POOL_CASES[:14], ids=case_id)
def test_pool_gradients(case, kind):
    forward, backward = POOLS[kind][:2]
    x = distinct(case["x"], seed=5)
    assert_gradients_ok(forward, backward, {"x": x}, {"kernel_size": case["kernel_size"], "stride": case["stride"]})


def test_max_pool_ties_go_to_the_first_position():
    out, cache = F.max_pool2d_forward(np.zeros((1, 1, 3, 3)), 2, 1)  # every window all ties
    dx = F.max_pool2d_backward(np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_max_pool_with_more_than_256_window_positions():
    x = distinct((1, 2, 17, 18), seed=6)
    out, cache = F.max_pool2d_forward(x, 17, 1)
    assert_matches(out, naive.max_pool2d_forward(x, 17, 1), "out")
    dout = np.arange(4.0).reshape(out.shape)
    assert_matches(F.max_pool2d_backward(dout, cache), naive.max_pool2d_backward(dout, x, 17, 1), "dx")


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 2, 7, 2)])
def test_global_avg_pool(shape):
    x = np.random.default_rng(7).standard_normal(shape)
    out, _ = F.global_avg_pool2d_forward(x)
    assert_matches(out, naive.global_avg_pool2d_forward(x), "out")
    assert_gradients_ok(F.global_avg_pool2d_forward, F.global_avg_pool2d_backward, {"x": x})


# ------------------------------------------------------------------ relu, linear, flatten


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4, 5), (7,)])
def test_relu(shape):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    assert_matches(F.relu_forward(x)[0], naive.relu_forward(x), "relu")
    assert_gradients_ok(F.relu_forward, F.relu_backward, {"x": x})


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (4, 5, 3), (3, 12, 7)])
def test_linear(n, i, o):
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((n, i)), rng.standard_normal((i, o)), rng.standard_normal(o)
    assert_matches(F.linear_forward(x, w, b)[0], naive.linear_forward(x, w, b), "linear")
    assert_gradients_ok(F.linear_forward, F.linear_backward, {"x": x, "w": w, "b": b})


def test_flatten_round_trip():
    x = np.random.default_rng(10).standard_normal((2, 3, 4, 5))
    out, cache = F.flatten_forward(x)
    assert_matches(out, x.reshape(2, 60), "flatten")
    assert_gradients_ok(F.flatten_forward, F.flatten_backward, {"x": x})


# ------------------------------------------------------------------------------ batch norm

BN_SHAPES = [(4, 3, 2, 2), (2, 1, 3, 5), (1, 2, 3, 3), (5, 4, 1, 1)]


def bn_arrays(shape, seed=11):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.5
    return x, rng.standard_normal(C), rng.standard_normal(C), rng.standard_normal(C), rng.uniform(0.5, 2, C)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_matches_naive_and_updates_running_stats_like_torch(shape, training):
    x, gamma, beta, rm, rv = bn_arrays(shape)
    expected, new_rm, new_rv = naive.batchnorm2d_forward(x, gamma, beta, rm, rv, training, momentum=0.3, eps=1e-3)
    running_mean, running_var = rm.copy(), rv.copy()
    out, _ = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.3, eps=1e-3)
    assert_matches(out, expected, "out")
    assert_matches(running_mean, new_rm, "running_mean (updated in place)")
    assert_matches(running_var, new_rv, "running_var (updated in place)")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_gradients(shape, training):
    x, gamma, beta, rm, rv = bn_arrays(shape, seed=12)
    assert_gradients_ok(
        F.batchnorm2d_forward, F.batchnorm2d_backward, {"x": x, "gamma": gamma, "beta": beta},
        {"running_mean": rm, "running_var": rv, "training": training},
    )


def test_batchnorm_running_stats_converge_to_the_data_statistics():
    rng = np.random.default_rng(13)
    rm, rv = np.zeros(2), np.ones(2)
    for _ in range(200):
        x = rng.normal(loc=[3.0, -1.0], scale=[2.0, 0.5], size=(8, 4, 4, 2)).transpose(0, 3, 1, 2)
        F.batchnorm2d_forward(x, np.ones(2), np.zeros(2), rm, rv, True)
    np.testing.assert_allclose(rm, [3.0, -1.0], atol=0.15)
    np.testing.assert_allclose(rv, [4.0, 0.25], rtol=0.15)


def test_float32_channel_sums_keep_the_round_off_small():
    """The per-channel sums behind db, dbeta, dgamma and the batch statistics: over 200,704 float32
    values of mean 1 per channel, within 2e-6 of the float64 sum (a plain running float32 sum is
    off by 7e-6 there), for the conv bias gradient and both batch norm passes."""
    rng = np.random.default_rng(16)
    x = (rng.standard_normal((64, 3, 56, 56)) + 1.0).astype(np.float32)
    exact = x.astype(np.float64).sum(axis=(0, 2, 3))
    assert np.max(np.abs(F._channel_sums(x) - exact) / exact) < 2e-6
    w = np.zeros((2, 3, 1, 1), np.float32)
    _, cache = F.conv2d_forward(np.zeros_like(x), w, np.zeros(2, np.float32))
    dout = x[:, :2]
    db = F.conv2d_backward(dout, cache)[2]
    assert db.dtype == np.float32
    assert np.max(np.abs(db - exact[:2]) / exact[:2]) < 2e-6
    _, bn = F.batchnorm2d_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3), np.ones(3), True)
    dbeta = F.batchnorm2d_backward(x, bn)[2]
    assert np.max(np.abs(dbeta - exact) / exact) < 2e-6


# --------------------------------------------------------------------------------- dropout


def test_dropout_mask_scaling_and_modes():
    x = np.random.default_rng(14).standard_normal((50, 40))
    out, cache = F.dropout_forward(x, 0.3, True, np.random.default_rng(15))
    keep = np.random.default_rng(15).random(x.shape) >= 0.3  # the same draw
    assert_matches(out, np.where(keep, x / 0.7, 0.0), "dropout out")
    dout = np.ones_like(x)
    assert_matches(F.dropout_backward(dout, cache), np.where(keep, 1 / 0.7, 0.0), "dropout dx")
    assert 0.25 < 1 - keep.mean() < 0.35
    for p, training in ((0.3, False), (0.0, True)):
        out, cache = F.dropout_forward(x, p, training, None)
        assert_matches(out, x, f"dropout p={p} training={training} is the identity")
        assert_matches(F.dropout_backward(dout, cache), dout, "identity backward")
    out, cache = F.dropout_forward(x, 1.0, True, np.random.default_rng(0))
    assert not out.any() and not F.dropout_backward(dout, cache).any()


def test_dropout_gradients():
    x = np.random.default_rng(16).standard_normal((3, 5))
    forward = lambda x: F.dropout_forward(x, 0.4, True, np.random.default_rng(17))  # noqa: E731
    assert_gradients_ok(forward, F.dropout_backward, {"x": x})


# ------------------------------------------------------------------------- dtype and safety

def roundtrip(forward, backward, *args):
    """Forward, then backward with dout = the output itself; returns (out, *gradients)."""
    out, cache = forward(*args)
    grads = backward(out, cache)
    return (out, *(grads if isinstance(grads, tuple) else (grads,)))


def f32(*shape, fill=None):
    return np.ones(shape, np.float32) if fill is None else np.full(shape, fill, np.float32)


FLOAT32_CHECKS = {
    "conv": lambda x, rng: roundtrip(F.conv2d_forward, F.conv2d_backward, x, rng.standard_normal((4, 3, 3, 2)).astype(np.float32), f32(4), 2, 1),
    "max_pool": lambda x, rng: roundtrip(F.max_pool2d_forward, F.max_pool2d_backward, x, 3, 2),
    "avg_pool": lambda x, rng: roundtrip(F.avg_pool2d_forward, F.avg_pool2d_backward, x, 2),
    "global_avg_pool": lambda x, rng: roundtrip(F.global_avg_pool2d_forward, F.global_avg_pool2d_backward, x),
    "relu": lambda x, rng: roundtrip(F.relu_forward, F.relu_backward, x),
    "flatten": lambda x, rng: roundtrip(F.flatten_forward, F.flatten_backward, x),
    "batchnorm": lambda x, rng: roundtrip(F.batchnorm2d_forward, F.batchnorm2d_backward, x, f32(3), f32(3, fill=0), f32(3, fill=0), f32(3), True),
    "batchnorm_eval": lambda x, rng: roundtrip(F.batchnorm2d_forward, F.batchnorm2d_backward, x, f32(3), f32(3, fill=0), f32(3, fill=0), f32(3), False),
    "dropout": lambda x, rng: roundtrip(F.dropout_forward, F.dropout_backward, x, 0.5, True, rng),
    "linear": lambda x, rng: roundtrip(F.linear_forward, F.linear_backward, x.reshape(2, -1), f32(x[0].size, 3), f32(3)),
    "pad2d": lambda x, rng: (F.pad2d(x, 1),),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_CHECKS))
def test_float32_stays_float32(name):
    """Forward outputs and every gradient."""
    rng = np.random.default_rng(18)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    results = FLOAT32_CHECKS[name](x, rng)
    for r in results:
        assert r is None or r.dtype == np.float32, f"{name}: got {r.dtype}"


@pytest.mark.parametrize("case", FIXED_CONV_CASES, ids=case_id)
def test_float32_conv_agrees_with_float64(case):
    x, w, b = conv_arrays(case)
    out32, c32 = F.conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), case["stride"], case["padding"])
    out64, c64 = F.conv2d_forward(x, w, b, case["stride"], case["padding"])
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)
    for g32, g64 in zip(F.conv2d_backward(out32, c32), F.conv2d_backward(out64, c64)):
        np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-3)


def test_integer_and_list_inputs_are_computed_in_float64():
    out = F.conv2d(np.arange(16).reshape(1, 1, 4, 4), [[[[1, 1], [1, 1]]]], stride=2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[0, 0], [[10, 18], [42, 50]])


def test_results_never_share_memory_with_scratch_buffers():
    """Scratch buffers are reused between calls: earlier outputs and caches must stay valid."""
    case = FIXED_CONV_CASES[1]
    x1, w, b = conv_arrays(case, seed=19)
    x2 = conv_arrays(case, seed=20)[0]
    out1, cache1 = F.conv2d_forward(x1, w, b, 2, 1)
    kept = out1.copy()
    out2, cache2 = F.conv2d_forward(x2, w, b, 2, 1)
    dx2 = F.conv2d_backward(np.ones_like(out2), cache2)[0]
    kept_dx2 = dx2.copy()
    dx1, dw1, db1 = F.conv2d_backward(np.ones_like(out1), cache1)
    again = F.conv2d_backward(np.ones_like(out1), cache1)  # a cache can be used twice
    for first, second in zip((dx1, dw1, db1), again):
        assert_matches(second, first, "second backward with the same cache")
    assert_matches(out1, kept, "first output after a second call")
    assert_matches(dx2, kept_dx2, "second dx after another backward")
    assert_matches(dx1, naive.conv2d_backward(np.ones_like(out1), x1, w, 2, 1)[0], "backward of the first cache")
    p1, pc1 = F.max_pool2d_forward(x1, 3, 1)
    p2, pc2 = F.max_pool2d_forward(x2, 3, 1)
    assert_matches(F.max_pool2d_backward(np.ones_like(p1), pc1), naive.max_pool2d_backward(np.ones_like(p1), x1, 3, 1), "pool")


def _dirty_scratch():
    """Fill every scratch buffer with 0xFF bytes (NaN as a float): a result that reads a position
    of a buffer its own call did not write comes out NaN or wrong."""
    for buf in F._workspace.buffers.values():
        buf.fill(255)


@pytest.mark.parametrize("algo", ["im2col", "rows", "chunked"])
@pytest.mark.parametrize("case", CONV_CASES[:20], ids=case_id)
def test_conv_reads_only_scratch_it_wrote(case, algo, monkeypatch):
    """Phase images are written, not zeroed and added to: every position a route reads must
    have been written by the same call (the rest of the buffer is left from other calls)."""
    monkeypatch.setattr(F, "_CONV_ALGO", algo)
    check_conv_on_dirty_scratch(*conv_arrays(case, seed=23), case["stride"], case["padding"], seed=24)


def check_conv_on_dirty_scratch(x, w, b, s, p, seed, what=""):
    """Forward and backward, each on scratch buffers filled with 0xFF, against the loops;
    returns the cache, dout and the loops' gradients."""
    F.conv2d_forward(x, w, b, s, p)  # allocate the buffers, then dirty them
    _dirty_scratch()
    out, cache = F.conv2d_forward(x, w, b, s, p)
    assert_matches(out, naive.conv2d_forward(x, w, b, s, p), f"out ({cache['algo']}{what})")
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    expected = naive.conv2d_backward(dout, x, w, s, p)
    _dirty_scratch()
    for name, got, want in zip(("dx", "dw", "db"), F.conv2d_backward(dout, cache), expected):
        assert_matches(got, want, f"{name} ({cache['algo']}{what})")
    return cache, dout, expected


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_pool_reads_only_scratch_it_wrote(case, kind):
    forward, backward, naive_forward, naive_backward = POOLS[kind]
    k, s = case["kernel_size"], case["stride"]
    x = np.random.default_rng(25).standard_normal(case["x"])
    forward(x, k, s)
    _dirty_scratch()
    out, cache = forward(x, k, s)
    assert_matches(out, naive_forward(x, k, s), f"{kind} pool out")
    dout = np.random.default_rng(26).standard_normal(out.shape)
    _dirty_scratch()
    assert_matches(backward(dout, cache), naive_backward(dout, x, k, s), f"{kind} pool dx")


def test_phase_coverage_rule_is_exact():
    """merge skips zeroing dx when the phases hold every pixel of x (_Phases.covers): the rule
    must say so exactly when merging an all-ones phase image gives all ones."""
    rng = np.random.default_rng(7)
    seen = {True: 0, False: 0}
    for _ in range(400):
        sh, sw, kh, kw = (int(v) for v in rng.integers(1, 5, size=4))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        H, W = int(rng.integers(max(1, kh - 2 * ph), 12)), int(rng.integers(max(1, kw - 2 * pw), 12))
        Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        major = bool(rng.integers(2))
        g = F._Phases((2, 3, H, W), kh, kw, sh, sw, ph, pw, Ho, Wo, major, split_cols=major and bool(rng.integers(2)))
        covers, g.covers = g.covers, False  # this object is not the shared cached one
        held = g.merge(np.ones(g.size), np.float64)  # zero where no phase holds x
        assert bool((held == 1).all()) == covers, (sh, sw, kh, kw, ph, pw, H, W)
        seen[covers] += 1
    assert min(seen.values()) > 40, seen


def test_phase_images_with_rows_only_split_give_the_same_windows():
    """The im2col route's phase image splits only the rows (windows read with a step of sw): its
    windows are the column-split image's, number for number, on every valid output position; and
    merge(split(x)) gives x back with either layout (zero where no window reads it)."""
    rng = np.random.default_rng(8)
    for _ in range(200):
        sh, sw, kh, kw = (int(v) for v in rng.integers(1, 5, size=4))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        H, W = int(rng.integers(max(1, kh - 2 * ph), 12)), int(rng.integers(max(1, kw - 2 * pw), 12))
        Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        N, C = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        x = rng.standard_normal((N, C, H, W))
        views = {}
        for split_cols in (True, False):
            g = F._Phases(x.shape, kh, kw, sh, sw, ph, pw, Ho, Wo, True, split_cols)
            assert g.Wg == Wo + (kw - 1) // sw and g.cstep == (1 if split_cols else sw)
            held = g.merge(g.split(np.ones_like(x), "test_phase"), x.dtype)  # 0 where no window reads x
            assert set(np.unique(held)) <= {0.0, 1.0} and bool(held.all()) == g.covers
            img = g.split(x, "test_phase")
            assert np.array_equal(g.merge(img, x.dtype), x * held)
            cols = np.full((C, kh, kw, N, Ho * g.Wg), np.nan)
            isw = g.istride[1]
            for a in range(min(sh, kh)):
                for b in range(min(isw, kw)):
                    cols[:, a::sh, b::isw] = g.windows(img, a, b, 0, N, x.dtype)
            views[split_cols] = cols.reshape(C, kh, kw, N, Ho, g.Wg)[..., :Wo]
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        want = np.empty((C, kh, kw, N, Ho, Wo))
        for i in range(kh):
            for j in range(kw):
                want[:, i, j] = xp[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw].transpose(1, 0, 2, 3)
        assert np.array_equal(views[True], want) and np.array_equal(views[False], want), (sh, sw, kh, kw, ph, pw, H, W)
    F._workspace.buffers.pop("test_phase", None)


MODULES = ["cnnlib.functional", "cnnlib.losses", "cnnlib.gradcheck", "cnnlib.shapes", "cnnlib.kernels"]


@pytest.mark.parametrize("module", MODULES)
def test_every_public_function_is_a_guarded_reference(module):
    mod = importlib.import_module(module)
    functions = [getattr(mod, name) for name in mod.__all__ if callable(getattr(mod, name)) and not isinstance(getattr(mod, name), dict)]
    assert functions
    for fn in functions:
        assert getattr(fn, "__wrapped_reference__", False), f"{module}.{fn.__name__} is not decorated with @reference"
    with blocked("an exercise"), pytest.raises(ReferenceBlockedError, match="an exercise"):
        functions[0]()


# ----------------------------------------------------------------- PyTorch (extra, optional)


@pytest.mark.parametrize("case", FIXED_CONV_CASES[:4], ids=case_id)
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    x, w, b = conv_arrays(case)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = torch.nn.functional.conv2d(xt, wt, bt, stride=case["stride"], padding=case["padding"])
    out_t.backward(torch.ones_like(out_t))
    out, cache = F.conv2d_forward(x, w, b, case["stride"], case["padding"])
    assert_matches(out, out_t.detach().numpy(), "conv vs torch")
    for g, t in zip(F.conv2d_backward(np.ones_like(out), cache), (xt, wt, bt)):
        assert_matches(g, t.grad.numpy(), "conv grads vs torch")

    xp = torch.tensor(x, requires_grad=True)
    pooled = torch.nn.functional.max_pool2d(xp, 2, 1)
    pooled.backward(torch.ones_like(pooled))
    out, cache = F.max_pool2d_forward(x, 2, 1)
    assert_matches(out, pooled.detach().numpy(), "max pool vs torch")
    assert_matches(F.max_pool2d_backward(np.ones_like(out), cache), xp.grad.numpy(), "max pool dx vs torch")


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_against_torch(training):
    torch = pytest.importorskip("torch")
    x, gamma, beta, rm, rv = bn_arrays((4, 3, 2, 2), seed=21)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out_t = torch.nn.functional.batch_norm(xt, rm_t, rv_t, gt, bt, training=training, momentum=0.2, eps=1e-4)
    dout = np.random.default_rng(22).standard_normal(x.shape)
    out_t.backward(torch.tensor(dout))
    out, cache = F.batchnorm2d_forward(x, gamma, beta, rm, rv, training, momentum=0.2, eps=1e-4)
    assert_matches(out, out_t.detach().numpy(), "bn out vs torch")
    assert_matches(rm, rm_t.numpy(), "running_mean vs torch")
    assert_matches(rv, rv_t.numpy(), "running_var vs torch")
    for g, t in zip(F.batchnorm2d_backward(dout, cache), (xt, gt, bt)):
        assert_matches(g, t.grad.numpy(), "bn grads vs torch")


@pytest.mark.parametrize("case", FIXED_CONV_CASES, ids=case_id)
def test_conv_backward_need_dx_false(case):
    x, w, b = conv_arrays(case, seed=23)
    out, cache = F.conv2d_forward(x, w, b, case["stride"], case["padding"])
    dout = np.random.default_rng(24).standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    none, dw2, db2 = F.conv2d_backward(dout, cache, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)
    with pytest.raises(TypeError, match="need_dx"):
        F.conv2d_backward(dout, cache, need_dx="no")


# ---------------------------------------------------------------- Winograd F(2x2, 3x3) route


def winograd_case(seed: int) -> dict:
    """A random 3x3 stride-1 conv: odd and even sizes, non-square, padding 0-2, N and C from 1."""
    rng = np.random.default_rng(500 + seed)
    N, C, Fo = int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
    ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
    H = int(rng.integers(max(1, 3 - 2 * ph), 12))
    W = int(rng.integers(max(1, 3 - 2 * pw), 12))
    return dict(x=(N, C, H, W), w=(Fo, C, 3, 3), stride=1, padding=(ph, pw) if seed % 2 else ph)


WINOGRAD_CASES = [
    dict(x=(1, 1, 3, 3), w=(1, 1, 3, 3), stride=1, padding=0),  # one output
    dict(x=(2, 3, 5, 7), w=(4, 3, 3, 3), stride=1, padding=1),  # odd output sizes
    dict(x=(2, 2, 6, 6), w=(3, 2, 3, 3), stride=1, padding=0),  # even output sizes
    dict(x=(1, 2, 2, 1), w=(2, 2, 3, 3), stride=1, padding=(2, 1)),  # padding > image
] + [winograd_case(seed) for seed in range(16)]


@pytest.mark.parametrize("keep", [True, False, "chunks"], ids=["V-kept", "V-recomputed", "image-chunks"])
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=case_id)
def test_winograd_matches_naive_loops_and_the_direct_route(case, keep, monkeypatch):
    """float64: Winograd and im2col both equal the loops (round-off); the route is invisible."""
    monkeypatch.setattr(F, "_KEEP_COLS_BYTES", 2**40 if keep is True else 0)
    if keep == "chunks":  # one image per chunk
        monkeypatch.setattr(F, "_WINO_CHUNK_BYTES", 1)
    x, w, b = conv_arrays(case, seed=25)
    expected = naive.conv2d_forward(x, w, b, 1, case["padding"])
    dout = np.random.default_rng(26).standard_normal(expected.shape)
    expected_grads = naive.conv2d_backward(dout, x, w, 1, case["padding"])
    results = {}
    for algo in ("winograd", "im2col"):
        monkeypatch.setattr(F, "_CONV_ALGO", algo)
        out, cache = F.conv2d_forward(x, w, b, 1, case["padding"])
        assert cache["algo"] == algo
        assert_matches(out, expected, f"{algo} out")
        grads = F.conv2d_backward(dout, cache)
        for name, g, e in zip(("dx", "dw", "db"), grads, expected_grads):
            assert_matches(g, e, f"{algo} {name}")
        assert F.conv2d_backward(dout, cache, need_dx=False)[0] is None
        results[algo] = (out, *grads)
    for a, b_ in zip(results["winograd"], results["im2col"]):
        assert_matches(a, b_, "winograd vs im2col", tol=1e-11)


@pytest.mark.parametrize("case", WINOGRAD_CASES + [dict(x=(4, 32, 9, 10), w=(24, 32, 3, 3), stride=1, padding=1)], ids=case_id)
def test_winograd_float32_agrees_with_direct_to_round_off(case, monkeypatch):
    """float32 in, float32 out; Winograd and im2col differ by float32 round-off only."""
    x, w, b = (a.astype(np.float32) for a in conv_arrays(case, seed=27))
    dout = np.random.default_rng(28).standard_normal(
        (case["x"][0], case["w"][0], case["x"][2] + 2 * F._pair("t", "p", case["padding"], 0)[0] - 2,
         case["x"][3] + 2 * F._pair("t", "p", case["padding"], 0)[1] - 2)).astype(np.float32)
    results = {}
    for algo in ("winograd", "im2col"):
        monkeypatch.setattr(F, "_CONV_ALGO", algo)
        out, cache = F.conv2d_forward(x, w, b, 1, case["padding"])
        results[algo] = (out, *F.conv2d_backward(dout, cache))
        assert all(r.dtype == np.float32 for r in results[algo])
    exact = (naive.conv2d_forward(*(a.astype(np.float64) for a in (x, w, b)), 1, case["padding"]),
             *naive.conv2d_backward(dout.astype(np.float64), x.astype(np.float64), w.astype(np.float64), 1, case["padding"]))
    for name, wi, di, ex in zip(("out", "dx", "dw", "db"), results["winograd"], results["im2col"], exact):
        # round-off of a sum of K products of O(1) numbers: a few float32 epsilons times sqrt(K)
        scale = max(1.0, float(np.abs(ex).max()))
        tol = 5e-6 * scale * np.sqrt(case["w"][1] * 9 * max(1, dout.shape[0]))
        assert float(np.abs(wi - di).max()) <= tol, f"{name}: winograd vs direct {np.abs(wi - di).max()} > {tol}"
        assert float(np.abs(wi - ex).max()) <= tol, f"{name}: winograd vs float64 {np.abs(wi - ex).max()} > {tol}"


def test_winograd_is_not_the_default_route():
    """It measured slower than im2col on every shape tried here (functional.py says where)."""
    w = np.zeros((32, 32, 3, 3), np.float32)
    assert F.conv2d_forward(np.zeros((2, 32, 8, 8), np.float32), w, None, 1, 1)[1]["algo"] != "winograd"


def test_winograd_is_chosen_by_shape_only_where_it_applies(monkeypatch):
    monkeypatch.setattr(F, "_WINOGRAD_BY_DEFAULT", True)
    monkeypatch.setattr(F, "_use_rows", lambda *a: False)
    w_big, w_small = np.zeros((32, 32, 3, 3), np.float32), np.zeros((6, 1, 3, 3), np.float32)
    assert F.conv2d_forward(np.zeros((2, 32, 8, 8), np.float32), w_big, None, 1, 1)[1]["algo"] == "winograd"
    assert F.conv2d_forward(np.zeros((2, 32, 8, 8), np.float32), w_big, None, 2, 1)[1]["algo"] == "im2col"  # stride 2
    assert F.conv2d_forward(np.zeros((2, 1, 8, 8), np.float32), w_small, None, 1, 1)[1]["algo"] == "im2col"  # few channels
    assert F.conv2d_forward(np.zeros((2, 32, 8, 8), np.float32), np.zeros((32, 32, 5, 5), np.float32), None, 1, 2)[1]["algo"] == "im2col"


@pytest.mark.parametrize("algo,case", [("winograd", c) for c in WINOGRAD_CASES[:6]] + [("rows", c) for c in ROWS_CASES[:8]],
                         ids=lambda v: v if isinstance(v, str) else case_id(v))
def test_route_gradients(algo, case, monkeypatch):
    """Numerical gradients of the Winograd and kernel-row routes, each forced."""
    monkeypatch.setattr(F, "_CONV_ALGO", algo)
    x, w, b = conv_arrays(case, seed=29)
    assert_gradients_ok(F.conv2d_forward, F.conv2d_backward, {"x": x, "w": w, "b": b},
                        {"stride": 1, "padding": case["padding"]})


@pytest.mark.parametrize("strategy", ["col2im", "full"])
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_chunked_route_matches_naive_loops(case, strategy, monkeypatch):
    """The batch-chunked im2col route (few filters, large batch) against the loops, both dx ways."""
    monkeypatch.setattr(F, "_CONV_ALGO", "chunked")
    monkeypatch.setattr(F, "_DX_STRATEGY", strategy)
    x, w, b = conv_arrays(case, seed=31)
    x, w = np.concatenate([x] * 3), w  # at least 3 images: several chunks
    out, cache = F.conv2d_forward(x, w, b, case["stride"], case["padding"])
    assert cache["algo"] == "chunked"
    assert_matches(out, naive.conv2d_forward(x, w, b, case["stride"], case["padding"]), "out")
    dout = np.random.default_rng(32).standard_normal(out.shape)
    expected = naive.conv2d_backward(dout, x, w, case["stride"], case["padding"])
    for name, g, e in zip(("dx", "dw", "db"), F.conv2d_backward(dout, cache), expected):
        assert_matches(g, e, name)
    assert_matches(F.conv2d_backward(dout, cache, need_dx=False)[1], expected[1], "dw without dx")


# ------------------------------------------------------------ the kernel-row route (stride 1)



def test_there_are_enough_kernel_row_cases():
    assert len(ROWS_CASES) >= 12


@pytest.mark.parametrize("keep", [True, False], ids=["R-kept", "R-recomputed"])
@pytest.mark.parametrize("case", ROWS_CASES, ids=case_id)
def test_rows_route_matches_naive_loops(case, keep, monkeypatch):
    """float64: the kernel-row route equals the loops (round-off), with or without dx."""
    monkeypatch.setattr(F, "_CONV_ALGO", "rows")
    monkeypatch.setattr(F, "_KEEP_COLS_BYTES", 2**40 if keep else 0)
    x, w, b = conv_arrays(case, seed=41)
    out, cache = F.conv2d_forward(x, w, b, 1, case["padding"])
    assert cache["algo"] == "rows" and (cache["cols"] is not None) == keep
    assert_matches(out, naive.conv2d_forward(x, w, b, 1, case["padding"]), "out")
    dout = np.random.default_rng(42).standard_normal(out.shape)
    expected = naive.conv2d_backward(dout, x, w, 1, case["padding"])
    for name, g, e in zip(("dx", "dw", "db"), F.conv2d_backward(dout, cache), expected):
        assert_matches(g, e, name)
    dx, dw, _ = F.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    assert_matches(dw, expected[1], "dw without dx")


def test_rows_padded_rule():
    """R gets zero rows up to a multiple of 16 only when they add at most an eighth."""
    assert [F._rows_padded(k) for k in (30, 15, 45, 60, 16, 48, 9, 20, 24, 1)] == [32, 16, 48, 64, 16, 48, 9, 20, 24, 1]


@pytest.mark.parametrize("keep", [True, False], ids=["R-kept", "R-recomputed"])
@pytest.mark.parametrize("shape,wshape,padding", [((3, 6, 14, 14), (16, 6, 5, 5), 0), ((2, 5, 7, 8), (4, 5, 3, 3), 1),
                                                  ((2, 15, 6, 6), (7, 15, 3, 2), (1, 0))])
def test_rows_route_with_zero_padded_rows_on_dirty_scratch(shape, wshape, padding, keep, monkeypatch):
    """C*KH = 30, 15, 45: R and W' carry zero rows/columns up to a multiple of 16, written every
    call (the scratch holds 0xFF garbage, NaN as floats), and the result is the loops'."""
    assert F._rows_padded(shape[1] * wshape[2]) > shape[1] * wshape[2]
    monkeypatch.setattr(F, "_CONV_ALGO", "rows")
    monkeypatch.setattr(F, "_KEEP_COLS_BYTES", 2**40 if keep else 0)
    rng = np.random.default_rng(47)
    x, w, b = (rng.standard_normal(s) for s in (shape, wshape, wshape[:1]))
    cache, _, _ = check_conv_on_dirty_scratch(x, w, b, 1, padding, seed=48, what=", padded rows")
    assert cache["algo"] == "rows"


@pytest.mark.parametrize("shape,wshape,padding", [((64, 6, 14, 14), (16, 6, 5, 5), 0), ((4, 32, 9, 10), (24, 32, 3, 3), 1),
                                                  ((3, 5, 7, 6), (4, 5, 3, 2), (2, 1))])
def test_rows_route_float32_agrees_with_im2col_to_round_off(shape, wshape, padding, monkeypatch):
    """float32 in, float32 out; the two routes differ by float32 round-off only."""
    rng = np.random.default_rng(44)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (shape, wshape, wshape[:1]))
    results = {}
    for algo in ("rows", "im2col"):
        monkeypatch.setattr(F, "_CONV_ALGO", algo)
        results[algo], cache = float32_pass(x, w, b, 1, padding, seed=45)
        assert cache["algo"] == algo
    assert_float32_round_off(results["rows"], results["im2col"], shape, wshape, "rows vs im2col")


def float32_pass(x, w, b, stride, padding, seed):
    """(out, dx, dw, db) of one float32 forward + backward, all float32, and the cache."""
    out, cache = F.conv2d_forward(x, w, b, stride, padding)
    dout = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
    results = (out, *F.conv2d_backward(dout, cache))
    assert all(r.dtype == np.float32 for r in results)
    return results, cache


def assert_float32_round_off(got, want, shape, wshape, what):
    """Two routes' (out, dx, dw, db) differ by float32 round-off only (growing with the sums' length)."""
    for name, a, c in zip(("out", "dx", "dw", "db"), got, want):
        tol = 2e-6 * max(1.0, float(np.abs(c).max())) * np.sqrt(np.prod(wshape[1:]) * shape[0])
        assert float(np.abs(a - c).max()) <= tol, f"{name}: {what} {np.abs(a - c).max()} > {tol}"


def test_rows_route_is_chosen_where_it_moves_fewer_numbers():
    def algo(x, w, stride=1, padding=0):
        return F.conv2d_forward(np.zeros(x, np.float32), np.zeros(w, np.float32), None, stride, padding)[1]["algo"]

    assert algo((8, 6, 14, 14), (16, 6, 5, 5)) == "rows"  # LeNet's second layer
    assert algo((8, 64, 8, 8), (64, 64, 3, 3), padding=1) == "rows"
    assert algo((8, 3, 8, 8), (32, 3, 3, 3), padding=1) == "im2col"  # RGB input, many filters
    assert algo((8, 64, 8, 8), (64, 64, 3, 3), stride=2, padding=1) == "im2col"  # stride 2
    assert algo((8, 64, 8, 8), (64, 64, 1, 1)) == "im2col"  # 1x1


# ------------------------------------------------------------ blocks of images (large batches)

BLOCK_CASES = [c for c in CONV_CASES if c["x"][0] >= 2][:24]


def test_there_are_enough_block_cases():
    assert len(BLOCK_CASES) >= 12 and any(c["stride"] not in (1, (1, 1)) for c in BLOCK_CASES)


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "recomputed"])
@pytest.mark.parametrize("algo", ["im2col", "rows"])
@pytest.mark.parametrize("case", BLOCK_CASES, ids=case_id)
def test_blocked_routes_match_naive_loops(case, algo, keep, monkeypatch):
    """float64: the batch in blocks of images equals the loops, on dirty scratch, with or without dx."""
    monkeypatch.setattr(F, "_CONV_ALGO", algo)
    monkeypatch.setattr(F, "_BLOCKING", "always")
    monkeypatch.setattr(F, "_THREADS", 1)
    monkeypatch.setattr(F, "_KEEP_COLS_BYTES", 2**40 if keep else 0)
    cache, dout, expected = check_conv_on_dirty_scratch(*conv_arrays(case, seed=61), case["stride"], case["padding"],
                                                        seed=62, what=", blocks")
    assert 1 <= cache["block"] < case["x"][0]
    assert (cache["cols"] is not None) == keep
    dx, dw, _ = F.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    assert_matches(dw, expected[1], "dw without dx (blocks)")


@pytest.mark.parametrize("shape,wshape,stride,padding", [((32, 64, 16, 16), (64, 64, 3, 3), 1, 1),
                                                          ((32, 32, 16, 16), (64, 32, 3, 3), 2, 1),
                                                          ((64, 3, 16, 16), (32, 3, 3, 3), 1, 1)])
def test_blocks_are_chosen_for_large_batches_and_agree_in_float32(shape, wshape, stride, padding, monkeypatch):
    """Past 2 * _BLOCK_BYTES of scratch the batch goes in equal blocks; float32 stays float32, and
    the blocked result differs from the whole batch's by float32 round-off only."""
    monkeypatch.setattr(F, "_BLOCK_BYTES", 2**20)
    monkeypatch.setattr(F, "_THREADS", 1)  # blocks alone (threads: the tests below)
    rng = np.random.default_rng(63)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (shape, wshape, wshape[:1]))
    results = {}
    for blocking in ("auto", "never"):
        monkeypatch.setattr(F, "_BLOCKING", blocking)
        results[blocking], cache = float32_pass(x, w, b, stride, padding, seed=64)
        m = cache.get("block")
        if blocking == "auto":
            assert m is not None and 1 <= m < shape[0]
            assert -(-shape[0] // m) * m - shape[0] < -(-shape[0] // m), "blocks of (nearly) equal size"
        else:
            assert m is None
    assert_float32_round_off(results["auto"], results["never"], shape, wshape, "blocks vs whole batch")


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("blocking", ["auto", "always"])
@pytest.mark.parametrize("algo", ["im2col", "rows"])
@pytest.mark.parametrize("case", BLOCK_CASES[:8], ids=case_id)
def test_blocks_on_threads_match_naive_loops(case, algo, blocking, threads, monkeypatch):
    """float64: blocks run on 2 or 3 threads (each with its own scratch) equal the loops, dx and
    dw, with or without dx, and the BLAS thread count is restored afterwards."""
    monkeypatch.setattr(F, "_CONV_ALGO", algo)
    monkeypatch.setattr(F, "_BLOCKING", blocking)
    monkeypatch.setattr(F, "_THREADS", threads)
    before = [lib.num_threads for lib in F._blas().lib_controllers]
    x, w, b = conv_arrays(case, seed=65)
    cache, dout, expected = check_conv_on_dirty_scratch(x, w, b, case["stride"], case["padding"], seed=66, what=", threads")
    N = case["x"][0]
    assert cache["threads"] == min(threads, N)
    if N > 1:
        assert cache["block"] is not None and -(-N // cache["block"]) >= min(threads, N)
    dx, dw, _ = F.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    assert_matches(dw, expected[1], "dw without dx (threads)")
    assert [lib.num_threads for lib in F._blas().lib_controllers] == before


def on_two_threads(record):
    """A block function for _map_blocks: record(part), then wait (up to 60 s) until two threads
    have each taken a block, so that both threads take one whatever the timing."""
    threads, both = set(), threading.Event()

    def block(part):
        record(part)
        threads.add(threading.current_thread().name)
        if len(threads) >= 2:
            both.set()
        assert both.wait(60), "no second thread took a block"
        return part.start

    return block


def test_threads_give_the_one_thread_result_in_float32(monkeypatch):
    """A batch large enough for "auto" to take threads: float32 out, and the same numbers as one
    thread to float32 round-off; a failing block's error reaches the caller, the pool still works."""
    rng = np.random.default_rng(67)
    shape, wshape = (8, 16, 40, 40), (32, 16, 3, 3)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (shape, wshape, wshape[:1]))
    monkeypatch.setattr(F, "_THREAD_MIN_BYTES", 2**20)
    monkeypatch.setattr(F, "_blas", lambda real=F._blas: FakeTwoThreads(real()))
    monkeypatch.setattr(F, "_cpus", lambda real=F._cpus: real() if len(real()) >= 2 else [0, 1])  # (a 1-CPU machine)
    monkeypatch.setattr(F, "_BLAS_NAPS", False)  # OpenBLAS's threads spin: "auto" stays on one thread
    assert F.conv2d_forward(x, w, b, 1, 1)[1]["threads"] == 1
    monkeypatch.setattr(F, "_BLAS_NAPS", True)
    results = {}
    for threads in ("auto", 1):
        monkeypatch.setattr(F, "_THREADS", threads)
        results[threads], cache = float32_pass(x, w, b, 1, 1, seed=68)
        assert cache["threads"] == (2 if threads == "auto" else 1)
    assert_float32_round_off(results["auto"], results[1], shape, wshape, "2 threads vs 1")
    monkeypatch.setattr(F, "_THREADS", 2)

    def failing(part):
        if part.start:
            raise FloatingPointError("block failed")
        return part.start

    with pytest.raises(FloatingPointError, match="block failed"):
        F._map_blocks(failing, 8, 4, 2)
    assert F._map_blocks(lambda part: part.start, 8, 2, 2) == [0, 2, 4, 6]
    ran_on, starts = set(), []

    def where(part):
        ran_on.add(threading.current_thread().name)
        starts.append(part.start)
        return part.start

    # each thread takes the next block nobody has taken: results in order, every block once
    assert F._map_blocks(on_two_threads(where), 8, 2, 2) == [0, 2, 4, 6] and len(ran_on) == 2
    assert sorted(starts) == [0, 2, 4, 6]
    caller, by_caller = threading.current_thread().name, []

    def caller_slow(part):  # the caller's blocks take 50x longer: the worker takes more of them
        by_caller.append(threading.current_thread().name == caller)
        time.sleep(0.05 if by_caller[-1] else 0.001)
        return where(part)

    starts.clear()
    assert F._map_blocks(caller_slow, 16, 1, 2) == list(range(16))
    assert sorted(starts) == list(range(16)) and sum(by_caller) < 8, by_caller
    ran_on.clear()

    def no_threads(workers):
        raise RuntimeError("can't start new thread")

    class SecondThreadFails:  # 3 threads: the first worker starts, the second cannot
        def __init__(self):
            self.real, self.calls = F._executor(2), 0

        def submit(self, *task):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("can't start new thread")
            return self.real.submit(*task)

    monkeypatch.setattr(F, "_executor", lambda workers, pool=SecondThreadFails(): pool)
    assert F._map_blocks(where, 9, 3, 3) == [0, 3, 6]  # the caller and the worker that started share the blocks
    ran_on.clear()
    monkeypatch.setattr(F, "_executor", no_threads)  # a process limit: every block runs here
    assert F._map_blocks(where, 8, 2, 2) == [0, 2, 4, 6] and ran_on == {threading.current_thread().name}
    results["no threads"], _ = float32_pass(x, w, b, 1, 1, seed=68)
    assert_float32_round_off(results["no threads"], results[1], shape, wshape, "no threads vs 1")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_threads_run_on_cpus_of_their_own_and_the_caller_gets_its_cpus_back(monkeypatch):
    """During a call each thread is kept on a CPU of its own (else Linux often wakes the worker on
    the caller's CPU, and the two take turns on one core); after it, the caller may run where it
    could before. Refused (a sandbox's seccomp filter) or with too few CPUs: unpinned, same results."""
    before = os.sched_getaffinity(0)
    cpus, seen = sorted(before), {}

    def where(part):
        seen[threading.current_thread().name] = os.sched_getaffinity(0)
        return part.start

    assert F._map_blocks(on_two_threads(where), 4, 2, 2) == [0, 2]
    assert os.sched_getaffinity(0) == before
    here = threading.current_thread().name
    (worker,) = set(seen) - {here}
    if len(cpus) >= 2:
        assert seen[here] == {cpus[0]} and seen[worker] == {cpus[1]}
    else:
        assert seen[here] == seen[worker] == before
    if len(cpus) >= 2:  # the caller narrowed to one CPU after a pinned call: the worker follows it there
        seen.clear()
        os.sched_setaffinity(0, {cpus[0]})
        try:
            assert F._map_blocks(on_two_threads(where), 4, 2, 2) == [0, 2]
        finally:
            os.sched_setaffinity(0, before)
        assert seen[worker] == {cpus[0]}, seen
    seen.clear()
    assert F._map_blocks(where, 6, 2, 3) == [0, 2, 4]  # 3 threads
    assert os.sched_getaffinity(0) == before
    if len(cpus) < 3:  # fewer CPUs than threads: none is pinned (the worker pinned above runs anywhere again)
        assert all(mask == before for mask in seen.values()), seen

    def refuse(pid, mask):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    assert F._map_blocks(where, 4, 2, 2) == [0, 2]
    assert os.sched_getaffinity(0) == before
    # "auto" takes no more threads than the process has CPUs
    monkeypatch.setattr(F, "_blas", lambda real=F._blas: FakeTwoThreads(real()))
    monkeypatch.setattr(F, "_BLAS_NAPS", True)
    monkeypatch.setattr(F, "_cpus", lambda: [0])
    assert F._conv_threads(8, F._THREAD_MIN_BYTES) == 1
    monkeypatch.setattr(F, "_cpus", lambda: [0, 1])
    assert F._conv_threads(8, F._THREAD_MIN_BYTES) == 2


def test_threads_need_openblas_threads_that_sleep():
    """Only OPENBLAS_THREAD_TIMEOUT <= 21 (idle threads asleep within 2^21 cycles) lets "auto" use threads."""
    assert [F._blas_naps(v) for v in ("4", "21", " 21", "22", "28", None, "", "x")] == [True, True, True, False, False, False, False, False]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_threads_work_in_a_forked_child(monkeypatch):
    """A child forked after the worker threads exist (multiprocessing's default on Linux) has
    none of them: it makes its own instead of waiting forever on the parent's."""
    monkeypatch.setattr(F, "_THREADS", 2)
    x = np.random.default_rng(69).standard_normal((4, 3, 6, 6))
    w = np.random.default_rng(70).standard_normal((2, 3, 3, 3))
    want = F.conv2d_forward(x, w, None, 1, 1)[0]  # the parent's pool now exists
    assert F._pool.get("pid") == os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the threaded conv finishes and is right
        try:
            got = F.conv2d_forward(x, w, None, 1, 1)[0]
            os._exit(0 if np.allclose(got, want) and F._pool["pid"] == os.getpid() else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on the parent's worker threads")


class FakeTwoThreads:
    """A BLAS controller that reports 2 threads (so "auto" takes threads on a 1-core machine too)."""

    def __init__(self, real):
        self.real = real
        self.lib_controllers = [types.SimpleNamespace(num_threads=2)]

    def limit(self, **kwargs):
        return self.real.limit(**kwargs)


def test_small_batches_and_lenet_layers_are_not_blocked(monkeypatch):
    """Blocks only pay past 2 * _BLOCK_BYTES of scratch: LeNet's layers at batch 64 stay whole
    (with 4 MiB blocks, a 512 KiB L2's: the block size depends on the machine, the rule does not)."""
    monkeypatch.setattr(F, "_BLOCK_BYTES", 4 * 2**20)
    monkeypatch.setattr(F, "_THREADS", 1)

    def block(x, w, stride=1, padding=0):
        return F.conv2d_forward(np.zeros(x, np.float32), np.zeros(w, np.float32), None, stride, padding)[1].get("block")

    assert block((64, 6, 14, 14), (16, 6, 5, 5)) is None  # LeNet's second layer
    assert block((2, 64, 32, 32), (64, 64, 3, 3), padding=1) is None
    assert block((32, 64, 32, 32), (64, 64, 3, 3), padding=1) is not None
    assert block((32, 32, 32, 32), (64, 32, 3, 3), stride=2, padding=1) is not None


def test_the_block_size_follows_the_l2_cache_that_sysfs_reports(tmp_path):
    """8x the L2 (4 MiB for a 512 KiB L2, 16 MiB for 2 MiB), between 2 and 32 MiB; 4 MiB when
    sysfs is missing or unreadable. The L1 data and instruction caches and the L3 are skipped."""
    for index, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "64K"),
                                                 ("2", "Unified", "2048K"), ("3", "Unified", "491520K")]):
        d = tmp_path / f"index{index}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert F._l2_cache_bytes(str(tmp_path)) == 2 * 2**20
    assert F._block_bytes(2 * 2**20) == 16 * 2**20
    assert F._block_bytes(512 * 2**10) == 4 * 2**20
    assert F._block_bytes(64 * 2**20) == 32 * 2**20 and F._block_bytes(128 * 2**10) == 2 * 2**20
    (tmp_path / "index2" / "size").write_text("1M\n")
    assert F._l2_cache_bytes(str(tmp_path)) == 2**20
    (tmp_path / "index2" / "size").write_text("big\n")
    assert F._l2_cache_bytes(str(tmp_path)) is None
    assert F._l2_cache_bytes(str(tmp_path / "missing")) is None
    assert F._block_bytes(None) == 4 * 2**20


def test_chunked_route_is_chosen_for_few_filters_on_a_large_batch():
    x = np.zeros((64, 1, 28, 28), np.float32)
    assert F.conv2d_forward(x, np.zeros((6, 1, 5, 5), np.float32), None, 1, 2)[1]["algo"] == "chunked"
    assert F.conv2d_forward(x[:2], np.zeros((6, 1, 5, 5), np.float32), None, 1, 2)[1]["algo"] == "im2col"
    assert F.conv2d_forward(x, np.zeros((16, 1, 5, 5), np.float32), None, 1, 2)[1]["algo"] == "im2col"


TILED_POOL_CASES = [dict(x=(2, 3, 8, 6), kernel_size=2, stride=None), dict(x=(1, 2, 9, 6), kernel_size=(3, 2), stride=(3, 2)),
                    dict(x=(3, 1, 4, 4), kernel_size=4, stride=4)]


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "phase-image"])
@pytest.mark.parametrize("case", TILED_POOL_CASES + FIXED_POOL_CASES, ids=case_id)
def test_max_pool_backward_routes_agree_with_the_loops(case, direct, monkeypatch):
    monkeypatch.setattr(F, "_POOL_DIRECT", direct)
    k, s = case["kernel_size"], case["stride"]
    rng = np.random.default_rng(33)
    for x in (rng.standard_normal(case["x"]), rng.integers(0, 2, size=case["x"]).astype(np.float32)):  # ties
        out, cache = F.max_pool2d_forward(x, k, s)
        dout = rng.standard_normal(out.shape).astype(x.dtype)
        dx = F.max_pool2d_backward(dout, cache)
        assert dx.dtype == x.dtype
        np.testing.assert_allclose(dx, naive.max_pool2d_backward(dout, x, k, s), rtol=1e-6, atol=1e-6)

"""cnnlib.losses against naive loops and numerical gradients."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import losses
from cnnlib.gradcheck import numerical_gradient, rel_error

try:
    from tests import naive
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    import naive

SHAPES = [(1, 2), (4, 3), (7, 10)]


def logits_and_labels(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * 3, rng.integers(0, shape[1], size=shape[0])


def assert_loss_gradient(loss_fn, pred, *args):
    """The returned gradient is the numerical gradient of the returned (scalar) loss."""
    _, grad = loss_fn(pred, *args)
    numeric = numerical_gradient(lambda p: loss_fn(p, *args)[0], pred)
    assert rel_error(grad, numeric) < 1e-7


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_cross_entropy_matches_naive(shape):
    z, y = logits_and_labels(shape, seed=0)
    loss, dz = losses.softmax_cross_entropy(z, y)
    ref_loss, ref_dz = naive.softmax_cross_entropy(z, y)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(dz, ref_dz, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(losses.softmax(z), naive.softmax(z), rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_cross_entropy_gradient(shape):
    z, y = logits_and_labels(shape, seed=1)
    assert_loss_gradient(losses.softmax_cross_entropy, z, y)


@pytest.mark.parametrize("shape", SHAPES + [(5,)])
def test_squared_error_matches_naive_and_its_gradient(shape):
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    loss, dpred = losses.squared_error(pred, target)
    batch = (pred[None], target[None]) if len(shape) == 1 else (pred, target)
    ref_loss, ref_grad = naive.squared_error(*batch)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(dpred, ref_grad.reshape(shape), rtol=1e-12)
    assert_loss_gradient(losses.squared_error, pred, target)


def test_boat_example_from_the_seed():
    loss, _ = losses.squared_error(np.array([[0.2, 0.4, 0.1, 0.3]]), np.array([[0, 0, 1, 0]]))
    assert loss == pytest.approx(0.55)


def test_softmax_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    p = losses.softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    loss, dz = losses.softmax_cross_entropy(z, np.array([2, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dz))
    np.testing.assert_allclose(loss, (2000.0 + np.log(3)) / 2)


def test_float32_stays_float32():
    z, y = logits_and_labels((4, 3), seed=3)
    z = z.astype(np.float32)
    assert losses.softmax(z).dtype == np.float32
    assert losses.softmax_cross_entropy(z, y)[1].dtype == np.float32
    assert losses.squared_error(z, np.zeros((4, 3)))[1].dtype == np.float32

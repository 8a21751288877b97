"""cnnlib.gradcheck: the checker must pass correct gradients and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import functional as F
from cnnlib.gradcheck import check_backward, numerical_gradient, rel_error


def test_numerical_gradient_of_known_functions():
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(np.sin(v)), x), np.cos(x), rtol=1e-9)
    df = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(numerical_gradient(lambda v: v**2, x, df=df), 2 * x * df, rtol=1e-9)


def test_numerical_gradient_restores_x_and_works_on_closed_over_arrays():
    w = np.array([1.0, 2.0, 3.0])
    before = w.copy()
    grad = numerical_gradient(lambda _: np.dot(w, w), w)  # ignores its argument, reads w
    np.testing.assert_allclose(grad, 2 * before, rtol=1e-9)
    np.testing.assert_array_equal(w, before)


def test_numerical_gradient_copes_with_views_of_x():
    x = np.arange(6.0).reshape(2, 3)
    grad = numerical_gradient(lambda v: v.reshape(-1), x, df=np.arange(6.0))  # f returns a view of x
    np.testing.assert_allclose(grad, np.arange(6.0).reshape(2, 3), rtol=1e-9)


def test_rel_error():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error([0.0, 1.0], [0.0, 1.1]) == pytest.approx(0.1 / 1.1)
    assert rel_error([1e-20, 100.0], [0.0, 100.0]) < 1e-20  # noise next to zero does not blow up


def test_check_backward_reports_each_input():
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((3, 4)), "w": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}
    errors = check_backward(F.linear_forward, F.linear_backward, inputs)
    assert set(errors) == {"x", "w", "b"} and max(errors.values()) < 1e-8
    only_x = check_backward(F.relu_forward, F.relu_backward, {"x": inputs["x"] + 0.01}, wrt=["x"])
    assert list(only_x) == ["x"]


def test_check_backward_catches_a_wrong_backward():
    def wrong_backward(dout, cache):
        dx, dw, db = F.linear_backward(dout, cache)
        return dx, dw * 1.01, db  # 1% off

    rng = np.random.default_rng(1)
    inputs = {"x": rng.standard_normal((3, 4)), "w": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}
    errors = check_backward(F.linear_forward, wrong_backward, inputs)
    assert errors["x"] < 1e-8 and errors["b"] < 1e-8
    assert errors["w"] > 1e-3


def test_check_backward_complains_about_a_mismatched_wrt():
    with pytest.raises(ValueError, match="backward returned 3 gradient"):
        check_backward(F.linear_forward, F.linear_backward, {"x": np.ones((2, 2)), "w": np.ones((2, 2)), "b": np.ones(2)}, wrt=["x"])

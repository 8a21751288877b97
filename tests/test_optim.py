"""cnnlib.optim: SGD and Adam against hand-computed updates and (when installed) torch.optim."""

import math

import numpy as np
import pytest

from cnnlib.layers import Parameter
from cnnlib.optim import SGD, Adam


def make_param(values, grad=None, dtype=np.float32):
    p = Parameter(np.array(values, dtype=dtype), "w")
    if grad is not None:
        p.grad[...] = grad
    return p


# --- hand-computed updates --------------------------------------------------------------------

def test_sgd_plain_step():
    p = make_param([1.0, -2.0], [0.5, -1.0])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -1.9], rtol=1e-6)


def test_sgd_momentum_two_steps():
    # v1 = g = 0.5, p1 = 1 - 0.1 * 0.5 = 0.95; v2 = 0.9 * 0.5 + 0.5 = 0.95, p2 = 0.95 - 0.095 = 0.855
    p = make_param([1.0], [0.5])
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    np.testing.assert_allclose(p.data, [0.95], rtol=1e-6)
    opt.step()
    np.testing.assert_allclose(p.data, [0.855], rtol=1e-6)


def test_sgd_weight_decay_adds_l2_gradient():
    # g' = g + wd * p = 0.5 + 0.1 * 2 = 0.7; p = 2 - 0.1 * 0.7 = 1.93
    p = make_param([2.0], [0.5])
    SGD([p], lr=0.1, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, [1.93], rtol=1e-6)


def test_sgd_nesterov_two_steps():
    # step 1: v = 0.5, update g + mu v = 0.5 + 0.45 = 0.95 -> p = 1 - 0.095 = 0.905
    # step 2: v = 0.9 * 0.5 + 0.5 = 0.95, update 0.5 + 0.855 = 1.355 -> p = 0.905 - 0.1355 = 0.7695
    p = make_param([1.0], [0.5])
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    opt.step()
    np.testing.assert_allclose(p.data, [0.905], rtol=1e-6)
    opt.step()
    np.testing.assert_allclose(p.data, [0.7695], rtol=1e-6)


def adam_reference(p0, grads, lr, b1, b2, eps, wd=0.0):
    """Adam written out in float64 straight from the formulas (Kingma & Ba; torch.optim.Adam)."""
    p, m, v = float(p0), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1 ** t) * m / (math.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
    return p


def test_adam_first_step_moves_by_lr():
    # after bias correction m_hat = g and v_hat = g**2, so the first step is lr * sign(g)
    p = make_param([1.0, -2.0, 3.0], [0.5, -3.0, 1e-3])
    Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.9, -1.9, 2.9], rtol=1e-5)


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_three_steps_match_formula(wd):
    grads = [0.3, -0.2, 0.7]
    p = make_param([1.5])
    opt = Adam([p], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    for g in grads:
        p.grad[...] = g
        opt.step()
    expected = adam_reference(1.5, grads, 0.01, 0.8, 0.99, 1e-6, wd)
    np.testing.assert_allclose(p.data, [expected], rtol=1e-6)


def test_step_updates_in_place_and_keeps_dtype():
    p = make_param(np.ones((3, 2)), np.ones((3, 2)))
    data_id = id(p.data)
    for opt in (SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-3), Adam([p])):
        opt.step()
        opt.step()
        assert id(p.data) == data_id and p.data.dtype == np.float32


def test_zero_grad():
    p, q = make_param([1.0, 2.0], [3.0, 4.0]), make_param([1.0], [5.0])
    opt = SGD([p, q], lr=0.1)
    grad_id = id(p.grad)
    opt.zero_grad()
    assert not p.grad.any() and not q.grad.any() and id(p.grad) == grad_id


def test_accepts_a_generator_of_parameters():
    params = (make_param([1.0], [1.0]) for _ in range(3))
    opt = Adam(params)
    assert len(opt.params) == 3


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda p: SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: SGD([p.data], lr=0.1), TypeError, r"params\[0\] is a ndarray, not a Parameter"),
        (lambda p: SGD(p.data, lr=0.1), TypeError, "not a Parameter"),
        (lambda p: SGD([p], lr=-0.1), ValueError, "lr must be >= 0"),
        (lambda p: SGD([p], lr=0.1, momentum=1.0), ValueError, "momentum must be >= 0.0 and < 1.0"),
        (lambda p: SGD([p], lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum"),
        (lambda p: SGD([p, p], lr=0.1), ValueError, "more than once"),
        (lambda p: Adam([p], betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be"),
        (lambda p: Adam([p], betas=0.9), TypeError, "betas must be a pair"),
        (lambda p: Adam([p], lr="fast"), TypeError, "lr must be a number"),
        (lambda p: Adam([p], weight_decay=-1), ValueError, "weight_decay must be >= 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make(make_param([1.0]))


# --- against torch.optim (an extra check, skipped without torch) -------------------------------

@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("SGD", dict(lr=0.05)),
        ("SGD", dict(lr=0.05, momentum=0.9)),
        ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01)),
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
        ("Adam", dict(lr=1e-3)),
        ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05)),
    ],
)
def test_matches_torch_optim(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    shapes = [(4, 3, 2, 2), (4,), (5, 3)]
    ours = [Parameter(rng.standard_normal(s).astype(np.float32), f"p{i}") for i, s in enumerate(shapes)]
    theirs = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in ours]
    opt = {"SGD": SGD, "Adam": Adam}[name](ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    for _ in range(6):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        opt.zero_grad()
        topt.zero_grad()
        for p, tp, g in zip(ours, theirs, grads):
            p.grad += g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)

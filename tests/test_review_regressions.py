"""Regressions found by an independent review of cnnlib (each test failed before its fix).

Bad input must raise ValueError/TypeError naming the layer or function, never a numpy error from
inside and never a silent wrong answer (DESIGN.md, "Bad input").
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import functional as F
from cnnlib import losses
from cnnlib.layers import BatchNorm2d, Conv2d, Linear, ReLU
from cnnlib.model import Sequential
from cnnlib.train import predict


@pytest.mark.parametrize(
    "layer, x",
    [
        (Conv2d(1, 2, 3, rng=np.random.default_rng(0)), np.ones((1, 1, 4, 4), np.complex128) * (1 + 5j)),
        (ReLU(), np.array([[1 + 5j, -2 + 1j]])),
        (Linear(2, 3, rng=np.random.default_rng(0)), np.full((1, 2), "a")),
    ],
    ids=["conv-complex", "relu-complex", "linear-str"],
)
def test_layer_refuses_non_real_input(layer, x):
    # Layer._input cast complex to float32 (imaginary part silently dropped) and strings failed
    # inside numpy ("could not convert string to float") before reaching the functional checks.
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}\(.*x must hold real numbers.*{x.dtype}"):
        layer.forward(x)


def test_predict_refuses_complex_input():
    model = Sequential([Linear(2, 2, rng=np.random.default_rng(0))])
    with pytest.raises(TypeError, match="predict: X must hold real numbers"):
        predict(model, np.ones((3, 2), np.complex128))


def test_append_refuses_a_layer_already_in_the_model():
    # The constructor refused duplicates but append did not: both entries were renamed to
    # "relu_2" and backward failed with "backward() called before forward()".
    relu = ReLU()
    model = Sequential([relu])
    with pytest.raises(ValueError, match="the same layer object appears twice"):
        model.append(relu)
    assert model.layers == [relu] and relu.name == "relu_1"


@pytest.mark.parametrize("kwargs", [{"momentum": None}, {"momentum": "0.1"}, {"momentum": True}, {"eps": None}])
def test_batchnorm_layer_checks_hyperparameter_types(kwargs):
    # Was a bare "'<=' not supported between 'float' and 'NoneType'" (or True accepted as 1.0).
    with pytest.raises(TypeError, match=f"BatchNorm2d: {next(iter(kwargs))} must be a number"):
        BatchNorm2d(3, **kwargs)


def test_layer_backward_can_be_retried_after_a_refused_dout():
    conv = Conv2d(1, 2, 3, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 1, 5, 5)).astype(np.float32)
    out = conv.forward(x)
    with pytest.raises(TypeError, match="conv2d_backward: dout must be an array of real numbers"):
        conv.backward(np.ones(out.shape, np.complex128))
    # the refused call used to discard the cache, so the retry said "called before forward()"
    dx = conv.backward(np.ones(out.shape, np.float32))
    expected = F.conv2d_backward(np.ones(out.shape, np.float32), F.conv2d_forward(x, conv.weight.data, conv.bias.data)[1])
    np.testing.assert_allclose(dx, expected[0], rtol=1e-6)
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        conv.backward(np.ones(out.shape, np.float32))  # still one backward per forward


def test_softmax_with_no_classes_names_the_function():
    # Was numpy's "zero-size array to reduction operation maximum which has no identity".
    with pytest.raises(ValueError, match=r"softmax: logits has no classes \(logits \(2, 0\)\)"):
        losses.softmax(np.zeros((2, 0)))


def test_pad2d_refuses_a_non_number_value():
    # Was numpy's "could not convert string to float".
    with pytest.raises(TypeError, match="pad2d: value must be a real number"):
        F.pad2d(np.ones((2, 2)), 1, value="a")


def test_extra_random_cases_match_torch():
    """Extra (skipped without torch): conv, pooling and batch norm forward/backward vs PyTorch."""
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(2024)
    for _ in range(20):
        N, C, Fo, H, W = (int(v) for v in rng.integers(1, 5, 5))
        H, W = H + 2, W + 3
        k, s, p = tuple(int(v) for v in rng.integers(1, 4, 2)), tuple(int(v) for v in rng.integers(1, 4, 2)), tuple(int(v) for v in rng.integers(0, 3, 2))
        x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((Fo, C, *k)), rng.standard_normal(Fo)
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        out, cache = F.conv2d_forward(x, w, b, s, p)
        ot = tf.conv2d(xt, wt, bt, stride=s, padding=p)
        dout = rng.standard_normal(out.shape)
        ot.backward(torch.tensor(dout))
        for got, want in zip((out, *F.conv2d_backward(dout, cache)), (ot, xt.grad, wt.grad, bt.grad)):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-9, atol=1e-9)
        if k[0] <= H and k[1] <= W:
            for fwd, bwd, ref in ((F.max_pool2d_forward, F.max_pool2d_backward, tf.max_pool2d),
                                  (F.avg_pool2d_forward, F.avg_pool2d_backward, tf.avg_pool2d)):
                xq = np.round(x * 2)  # ties: the gradient goes to the first maximum, as in torch
                xt = torch.tensor(xq, requires_grad=True)
                out, cache = fwd(xq, k, s)
                ot = ref(xt, k, s)
                ot.backward(torch.tensor(dout := rng.standard_normal(out.shape)))
                np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-9, atol=1e-12)
                np.testing.assert_allclose(bwd(dout, cache), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
        rmt, rvt = torch.tensor(rm), torch.tensor(rv)
        g, be = rng.standard_normal(C), rng.standard_normal(C)
        xt, gt, bet = (torch.tensor(a, requires_grad=True) for a in (x, g, be))
        out, cache = F.batchnorm2d_forward(x, g, be, rm, rv, True, 0.3)
        ot = tf.batch_norm(xt, rmt, rvt, gt, bet, training=True, momentum=0.3)
        ot.backward(torch.tensor(dout := rng.standard_normal(out.shape)))
        for got, want in zip((out, rm, rv, *F.batchnorm2d_backward(dout, cache)), (ot, rmt, rvt, xt.grad, gt.grad, bet.grad)):
            np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-7, atol=1e-9)

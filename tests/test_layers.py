"""cnnlib.layers: gradients vs numerical ones, initialisation, modes, dtypes, and error messages."""

import numpy as np
import pytest

from cnnlib import gradcheck
from cnnlib.layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Layer,
    Linear,
    MaxPool2d,
    Parameter,
    ReLU,
)

# --- gradient checks (float64, small shapes) --------------------------------------------------

GRAD_CASES = [
    pytest.param(lambda r: Conv2d(2, 3, 3, rng=r), (2, 2, 5, 6), id="conv3x3"),
    pytest.param(lambda r: Conv2d(3, 2, (3, 2), stride=2, padding=1, rng=r), (2, 3, 7, 5), id="conv-stride2-pad1"),
    pytest.param(lambda r: Conv2d(1, 2, 1, rng=r, init="glorot"), (1, 1, 3, 3), id="conv1x1-N1"),
    pytest.param(lambda r: Linear(6, 4, rng=r), (3, 6), id="linear"),
    pytest.param(lambda r: BatchNorm2d(3), (4, 3, 3, 2), id="batchnorm-train"),
    pytest.param(lambda r: BatchNorm2d(3).eval(), (4, 3, 3, 2), id="batchnorm-eval"),
    pytest.param(lambda r: MaxPool2d(2), (2, 2, 4, 6), id="maxpool2"),
    pytest.param(lambda r: MaxPool2d(3, stride=2), (2, 1, 7, 5), id="maxpool3-s2"),
    pytest.param(lambda r: AvgPool2d(2), (2, 2, 4, 4), id="avgpool2"),
    pytest.param(lambda r: AvgPool2d(3, stride=1), (1, 2, 5, 4), id="avgpool3-s1"),
    pytest.param(lambda r: GlobalAvgPool2d(), (2, 3, 4, 5), id="gap"),
    pytest.param(lambda r: ReLU(), (3, 2, 3, 3), id="relu"),
    pytest.param(lambda r: Flatten(), (2, 3, 2, 2), id="flatten"),
    pytest.param(lambda r: Dropout(0.4, rng=np.random.default_rng(5)), (3, 8), id="dropout-train"),
]


def numeric_grad(fn, array, dout):
    """d sum(fn() * dout) / d array by centred differences (``array`` is nudged in place: x or a weight)."""
    return gradcheck.numerical_gradient(lambda _: fn(), array, df=dout)


@pytest.mark.parametrize("make, shape", GRAD_CASES)
def test_layer_backward_matches_numerical_gradients(make, shape):
    rng = np.random.default_rng(0)
    layer = make(rng).to(np.float64)
    x = rng.standard_normal(shape)
    if isinstance(layer, BatchNorm2d):  # non-trivial gamma, beta and running statistics
        for array in (layer.weight.data, layer.bias.data, layer.running_mean):
            array[:] = rng.standard_normal(3)
        layer.running_var[:] = rng.uniform(0.5, 2.0, 3)
    if isinstance(layer, MaxPool2d):  # distinct values: no ties for a nudge to flip
        x = rng.permutation(x.size).reshape(shape) / x.size
    if isinstance(layer, ReLU):  # stay away from the kink at 0
        x = np.where(np.abs(x) < 1e-3, 0.5, x)

    def forward():
        """The layer's output for the current x and weights, with no state carried between calls."""
        if isinstance(layer, Dropout):
            layer.rng = np.random.default_rng(5)  # the same mask every time
        if isinstance(layer, BatchNorm2d):
            saved = layer.running_mean.copy(), layer.running_var.copy()
            out = layer(x)
            layer.running_mean[:], layer.running_var[:] = saved
            return out
        return layer(x)

    dout = rng.standard_normal(forward().shape)
    dx = layer.backward(dout)
    assert dx.shape == x.shape and dx.dtype == np.float64
    assert gradcheck.rel_error(dx, numeric_grad(forward, x, dout)) < 1e-7
    for p in layer.parameters():
        assert gradcheck.rel_error(p.grad, numeric_grad(forward, p.data, dout)) < 1e-7, p.name


# --- parameters and initialisation ------------------------------------------------------------

def test_conv_parameters_and_he_init():
    conv = Conv2d(16, 32, 3, rng=np.random.default_rng(0))
    w, b = conv.parameters()
    assert isinstance(w, Parameter) and (w.name, b.name) == ("conv2d.weight", "conv2d.bias")
    assert w.data.shape == (32, 16, 3, 3) and b.data.shape == (32,)
    assert w.data.dtype == np.float32 and w.grad.dtype == np.float32 and not w.grad.any()
    assert not b.data.any()
    # He: std = sqrt(2 / fan_in), fan_in = 16 * 3 * 3
    assert w.data.std() == pytest.approx(np.sqrt(2 / 144), rel=0.05)
    assert conv.num_params() == (32 * 16 * 9 + 32, 0)


def test_linear_glorot_init_and_layout():
    fc = Linear(300, 100, rng=np.random.default_rng(0), init="glorot")
    a = np.sqrt(6 / 400)
    assert fc.weight.data.shape == (300, 100)  # (in_features, out_features) as in functional.linear_forward
    assert np.abs(fc.weight.data).max() <= a and fc.weight.data.std() == pytest.approx(a / np.sqrt(3), rel=0.05)


def test_same_rng_seed_gives_the_same_weights():
    a = Conv2d(3, 4, 3, rng=np.random.default_rng(42)).weight.data
    b = Conv2d(3, 4, 3, rng=np.random.default_rng(42)).weight.data
    c = Conv2d(3, 4, 3, rng=np.random.default_rng(43)).weight.data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_layers_without_parameters():
    for layer in (MaxPool2d(2), AvgPool2d(2), GlobalAvgPool2d(), ReLU(), Flatten(), Dropout(0.5)):
        assert layer.parameters() == [] and layer.num_params() == (0, 0)


def test_batchnorm_buffers_are_not_trainable():
    bn = BatchNorm2d(4)
    assert [p.name for p in bn.parameters()] == ["batch_norm2d.weight", "batch_norm2d.bias"]
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    assert bn.num_params() == (8, 8)
    np.testing.assert_array_equal(bn.running_var, np.ones(4, np.float32))


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(0)
    fc = Linear(3, 2, rng=rng)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    fc(x)
    fc.backward(np.ones((4, 2), np.float32))
    once = fc.weight.grad.copy()
    fc(x)
    fc.backward(np.ones((4, 2), np.float32))
    np.testing.assert_allclose(fc.weight.grad, 2 * once, rtol=1e-6)
    fc.zero_grad()
    assert not fc.weight.grad.any() and not fc.bias.grad.any()


# --- dtypes and copies ------------------------------------------------------------------------

def test_float32_in_float32_out_and_other_inputs_are_cast():
    rng = np.random.default_rng(0)
    conv = Conv2d(1, 2, 3, rng=rng)
    x64 = rng.standard_normal((2, 1, 5, 5))
    out = conv(x64)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, conv(x64.astype(np.float32)), rtol=1e-6)
    assert ReLU()(np.arange(-2, 2)[None]).dtype == np.float32  # integer input becomes float
    assert MaxPool2d(2)(x64).dtype == np.float64  # layers without parameters keep a float dtype


def test_to_float64_converts_parameters_grads_and_buffers():
    bn = BatchNorm2d(2).to(np.float64)
    assert bn.weight.data.dtype == bn.weight.grad.dtype == bn.running_mean.dtype == np.float64


def test_flatten_is_a_view():
    x = np.zeros((2, 3, 4, 4), np.float32)
    out = Flatten()(x)
    assert out.shape == (2, 48) and np.shares_memory(out, x)


# --- train / eval -----------------------------------------------------------------------------

def test_dropout_train_and_eval():
    drop = Dropout(0.5, rng=np.random.default_rng(0))
    x = np.ones((100, 100), np.float32)
    out = drop(x)
    kept = out != 0
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_allclose(out[kept], 2.0)  # inverted dropout: scaled by 1 / (1 - p)
    dx = drop.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx != 0, kept)
    assert drop.eval() is drop and not drop.training
    np.testing.assert_array_equal(drop(x), x)
    assert drop.train().training


def test_batchnorm_train_uses_batch_stats_and_eval_uses_running_stats():
    rng = np.random.default_rng(0)
    bn = BatchNorm2d(3, momentum=0.5)
    x = (rng.standard_normal((8, 3, 4, 4)) * 2 + 5).astype(np.float32)
    out = bn(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-3)
    # momentum 0.5: running = 0.5 * init + 0.5 * batch (unbiased variance)
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    bn.eval()
    running = bn.running_mean.copy(), bn.running_var.copy()
    out_eval = bn(x)
    expected = (x - running[0][None, :, None, None]) / np.sqrt(running[1][None, :, None, None] + bn.eps)
    np.testing.assert_allclose(out_eval, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, running[0])


# --- error messages ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "layer, x_shape, match",
    [
        (Linear(400, 120), (8, 256), r"Linear\(in_features=400, out_features=120\): expected input \(N, 400\).*\(8, 256\)"),
        (Linear(400, 120), (8, 16, 5, 5), r"got x with shape \(8, 16, 5, 5\); put a Flatten\(\) before it"),
        (Conv2d(3, 6, 5), (8, 1, 28, 28), r"Conv2d\(3, 6, kernel_size=5\): expected input \(N, 3, H, W\).*\(8, 1, 28, 28\)"),
        (Conv2d(1, 6, 5), (1, 28, 28), r"\(4-D\), got x with shape \(1, 28, 28\); add the batch axis"),
        (MaxPool2d(2), (4, 4), r"MaxPool2d\(kernel_size=2\): expected input \(N, C, H, W\)"),
        (BatchNorm2d(4), (2, 3, 5, 5), r"BatchNorm2d\(4.*expected input \(N, 4, H, W\), got x with shape \(2, 3, 5, 5\)"),
        (GlobalAvgPool2d(), (2, 3), r"GlobalAvgPool2d\(\): expected input \(N, C, H, W\)"),
        (Flatten(), (5,), r"Flatten\(\): expected a batch"),
    ],
)
def test_forward_shape_errors_name_the_layer_and_shapes(layer, x_shape, match):
    with pytest.raises(ValueError, match=match):
        layer(np.zeros(x_shape, np.float32))


def test_forward_rejects_non_arrays():
    with pytest.raises(TypeError, match=r"ReLU\(\): x must be a numpy array, got dict"):
        ReLU()({"x": 1})


def test_backward_before_forward_and_wrong_dout_shape():
    fc = Linear(3, 2)
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=3, out_features=2\): backward\(\) called before forward"):
        fc.backward(np.zeros((4, 2), np.float32))
    fc(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dout has shape \(4, 3\) but the last forward's output has shape \(4, 2\)"):
        fc.backward(np.zeros((4, 3), np.float32))
    fc.backward(np.zeros((4, 2), np.float32))
    with pytest.raises(RuntimeError, match="called before forward"):  # one forward, one backward
        fc.backward(np.zeros((4, 2), np.float32))


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: Conv2d(3, 0, 3), ValueError, "Conv2d: out_channels must be >= 1, got 0"),
        (lambda: Conv2d(3.0, 4, 3), TypeError, "Conv2d: in_channels must be an int"),
        (lambda: Conv2d(3, 4, (3, 3, 3)), TypeError, r"kernel_size must be an int or a pair"),
        (lambda: Conv2d(3, 4, 3, stride=0), ValueError, "stride must be >= 1"),
        (lambda: Conv2d(3, 4, 3, padding=-1), ValueError, r"padding must be >= 0, got \(-1, -1\)"),
        (lambda: Conv2d(3, 4, 3, init="lecun"), ValueError, "init must be 'he' or 'glorot'"),
        (lambda: Conv2d(3, 4, 3, rng=0), TypeError, "rng must be a numpy Generator"),
        (lambda: Linear(0, 4), ValueError, "Linear: in_features must be >= 1"),
        (lambda: MaxPool2d(0), ValueError, "MaxPool2d: kernel_size and stride must be >= 1"),
        (lambda: AvgPool2d(2, stride=(1, 0)), ValueError, "AvgPool2d: kernel_size and stride must be >= 1"),
        (lambda: Dropout(1.5), ValueError, r"Dropout: p must be in \[0, 1\], got 1.5"),
        (lambda: Dropout("half"), TypeError, "Dropout: p must be a float"),
        (lambda: BatchNorm2d(4, momentum=2), ValueError, r"BatchNorm2d: momentum must be in \[0, 1\]"),
    ],
)
def test_constructor_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_repr():
    assert repr(Conv2d(1, 6, 5, padding=2)) == "Conv2d(1, 6, kernel_size=5, padding=2)"
    assert repr(Conv2d(3, 8, (3, 1), stride=2, bias=False)) == "Conv2d(3, 8, kernel_size=(3, 1), stride=2, bias=False)"
    assert repr(MaxPool2d(3, stride=2)) == "MaxPool2d(kernel_size=3, stride=2)"
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(BatchNorm2d(16)) == "BatchNorm2d(16, eps=1e-05, momentum=0.1)"


def test_custom_layer_subclass():
    class Double(Layer):
        kind = "double"

        def _forward(self, x):
            return 2 * x, None

        def _backward(self, dout, cache):
            return 2 * dout

    layer = Double()
    np.testing.assert_array_equal(layer(np.ones(3)), 2 * np.ones(3))
    np.testing.assert_array_equal(layer.backward(np.ones(3)), 2 * np.ones(3))


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2)])
def test_conv_needs_input_grad_false_skips_dx_and_keeps_weight_grads(stride, padding):
    rng = np.random.default_rng(30)
    x = rng.standard_normal((3, 2, 9, 8)).astype(np.float32)
    grads = []
    for needs in (True, False):
        conv = Conv2d(2, 4, 3, stride=stride, padding=padding, rng=np.random.default_rng(31))
        conv.needs_input_grad = needs
        out = conv(x)
        dx = conv.backward(np.ones_like(out))
        assert (dx is None) == (not needs)
        if needs:
            assert dx.shape == x.shape and dx.dtype == np.float32
        grads.append((conv.weight.grad.copy(), conv.bias.grad.copy()))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)

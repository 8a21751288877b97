"""cnnlib.model: Sequential (forward/backward vs the functional ops, modes, save/load, summary), lenet."""

import numpy as np
import pytest

from cnnlib import functional as F
from cnnlib.layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
)
from cnnlib.model import Sequential, Summary, lenet


def seed004_model(rng=None):
    """The Keras model of seed 004 (Conv2D 16/32/64 @ 2x2, MaxPooling2D(2), GAP, Dense(133))."""
    rng = np.random.default_rng(0) if rng is None else rng
    return Sequential([
        Conv2d(3, 16, 2, rng=rng), MaxPool2d(2),
        Conv2d(16, 32, 2, rng=rng), MaxPool2d(2),
        Conv2d(32, 64, 2, rng=rng), MaxPool2d(2),
        GlobalAvgPool2d(),
        Linear(64, 133, rng=rng),
    ])


SEED004_SUMMARY = """\
Model: "sequential"
__________________________________________________________________________
Layer (type)                          Output Shape              Param #
==========================================================================
conv2d_1 (Conv2d)                     (None, 16, 223, 223)      208
__________________________________________________________________________
max_pool2d_1 (MaxPool2d)              (None, 16, 111, 111)      0
__________________________________________________________________________
conv2d_2 (Conv2d)                     (None, 32, 110, 110)      2,080
__________________________________________________________________________
max_pool2d_2 (MaxPool2d)              (None, 32, 55, 55)        0
__________________________________________________________________________
conv2d_3 (Conv2d)                     (None, 64, 54, 54)        8,256
__________________________________________________________________________
max_pool2d_3 (MaxPool2d)              (None, 64, 27, 27)        0
__________________________________________________________________________
global_avg_pool2d_1 (GlobalAvgPool2d) (None, 64)                0
__________________________________________________________________________
linear_1 (Linear)                     (None, 133)               8,645
==========================================================================
Total params: 19,189
Trainable params: 19,189
Non-trainable params: 0
__________________________________________________________________________"""


# --- summary ----------------------------------------------------------------------------------

def test_summary_of_the_seed004_keras_model_is_pinned():
    text = seed004_model().summary((3, 224, 224))
    assert isinstance(text, str) and isinstance(text, Summary)
    assert text == SEED004_SUMMARY
    assert repr(text) == SEED004_SUMMARY  # displays as the table in a notebook, not as a quoted str


def test_summary_accepts_a_leading_none_and_does_not_run_a_forward():
    model = seed004_model()
    assert model.summary((None, 3, 224, 224)) == SEED004_SUMMARY
    assert all(layer._cache is None for layer in model)


def test_summary_counts_batchnorm_running_stats_as_non_trainable():
    model = Sequential([Conv2d(3, 16, 3, rng=np.random.default_rng(0)), MaxPool2d(2), BatchNorm2d(16), ReLU()])
    text = model.summary((3, 32, 32))
    assert "batch_norm2d_1 (BatchNorm2d)" in text and "(None, 16, 15, 15)" in text
    assert text.splitlines()[-4:-1] == ["Total params: 512", "Trainable params: 480", "Non-trainable params: 32"]
    assert model.count_params() == 512


def test_lenet_shapes_and_parameter_count():
    model = lenet(np.random.default_rng(0))
    assert model.output_shapes((1, 28, 28)) == [
        (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5),
        (400,), (120,), (120,), (100,), (100,), (10,),
    ]
    # (5*5*1 + 1)*6 + (5*5*6 + 1)*16 + 401*120 + 121*100 + 101*10
    assert model.count_params() == 156 + 2416 + 48120 + 12100 + 1010 == 63802
    assert "Total params: 63,802" in model.summary((1, 28, 28))
    out = model(np.zeros((3, 1, 28, 28), np.float32))
    assert out.shape == (3, 10) and out.dtype == np.float32


@pytest.mark.parametrize(
    "layers, input_shape, match",
    [
        ([Flatten(), Linear(100, 10)], (1, 28, 28), r"linear_1.*Linear\(in_features=100.*\(None, 784\)"),
        ([Linear(784, 10)], (1, 28, 28), r"put a Flatten\(\) before it"),
        ([Conv2d(3, 4, 3)], (1, 28, 28), r"conv2d_1.*expects 3 input channels.*\(None, 1, 28, 28\)"),
        ([MaxPool2d(2), MaxPool2d(8)], (1, 10, 10), r"max_pool2d_2.*window \(8, 8\) does not fit.*\(None, 1, 5, 5\)"),
        ([Conv2d(1, 1, 7)], (1, 5, 5), r"kernel \(7, 7\) is larger than the padded input"),
    ],
)
def test_summary_shape_errors_name_the_layer_and_shapes(layers, input_shape, match):
    with pytest.raises(ValueError, match=match):
        Sequential(layers).summary(input_shape)


def test_summary_rejects_a_bad_input_shape():
    with pytest.raises(ValueError, match="without the batch axis"):
        lenet().summary((1, 0, 28))


# --- forward / backward against the functional ops -------------------------------------------

def test_forward_and_backward_match_the_functional_ops():
    rng = np.random.default_rng(1)
    model = Sequential([Conv2d(2, 3, 3, padding=1, rng=rng), ReLU(), AvgPool2d(2), Flatten(), Linear(3 * 4 * 4, 5, rng=rng)])
    conv, fc = model[0], model[4]
    x = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
    dout = rng.standard_normal((4, 5)).astype(np.float32)

    out = model(x)
    dx = model.backward(dout)

    h1, c1 = F.conv2d_forward(x, conv.weight.data, conv.bias.data, 1, 1)
    h2, c2 = F.relu_forward(h1)
    h3, c3 = F.avg_pool2d_forward(h2, 2)
    h4, c4 = F.flatten_forward(h3)
    h5, c5 = F.linear_forward(h4, fc.weight.data, fc.bias.data)
    d4, dw_fc, db_fc = F.linear_backward(dout, c5)
    d1, dw_conv, db_conv = F.conv2d_backward(
        F.relu_backward(F.avg_pool2d_backward(F.flatten_backward(d4, c4), c3), c2), c1)

    np.testing.assert_allclose(out, h5, rtol=1e-6)
    np.testing.assert_allclose(dx, d1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fc.weight.grad, dw_fc, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fc.bias.grad, db_fc, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(conv.weight.grad, dw_conv, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(conv.bias.grad, db_conv, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("pool", [(2, None), (3, 2), ((2, 3), 1)])
def test_relu_then_max_pool_runs_swapped_with_the_same_output_and_gradients(pool):
    """Sequential runs ReLU after a MaxPool2d that follows it: bit for bit the forward and every
    gradient of the ops in the written order, with ties (all-negative windows, repeated maxima)."""
    rng = np.random.default_rng(21)
    kernel, stride = pool
    model = Sequential([Conv2d(2, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2d(kernel, stride), Flatten()])
    conv, relu = model[0], model[1]
    conv.weight.data[0] = 0  # channel 0: every window all zero before the ReLU (a tie everywhere)
    conv.bias.data[0] = 0
    conv.bias.data[1] = -1.0  # channel 1: mostly negative windows
    x = rng.integers(-2, 3, (4, 2, 9, 9)).astype(np.float32)  # few values: repeated maxima
    h1, c1 = F.conv2d_forward(x, conv.weight.data, conv.bias.data, 1, 1)
    h2, c2 = F.relu_forward(h1)
    h3, c3 = F.max_pool2d_forward(h2, kernel, stride)
    dout = rng.standard_normal((4, h3[0].size)).astype(np.float32)
    d1, dw, db = F.conv2d_backward(F.relu_backward(F.max_pool2d_backward(dout.reshape(h3.shape), c3), c2), c1)

    out = model(x)
    assert relu._out_shape == h3.shape  # the ReLU ran on the pooled output
    dx = model.backward(dout)
    np.testing.assert_array_equal(out, h3.reshape(4, -1))
    np.testing.assert_array_equal(dx, d1)
    np.testing.assert_array_equal(conv.weight.grad, dw)
    np.testing.assert_array_equal(conv.bias.grad, db)
    # a model that ends with the ReLU runs it as written: its output is the ReLU's, not pooled
    np.testing.assert_array_equal(model[:2](x), h2)
    assert relu._out_shape == h2.shape


def test_model_gradient_matches_finite_differences():
    """End-to-end check in float64: d(sum(out * dout)) / d(one weight) by central differences."""
    rng = np.random.default_rng(2)
    model = Sequential([Conv2d(1, 2, 3, rng=rng), BatchNorm2d(2), ReLU(), MaxPool2d(2), Flatten(),
                        Linear(2 * 3 * 3, 3, rng=rng)]).to(np.float64)
    x = rng.standard_normal((3, 1, 8, 8))
    dout = rng.standard_normal((3, 3))
    model(x)
    model.backward(dout)
    for p in model.parameters():
        flat = p.data.reshape(-1)
        for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            plus = np.sum(model(x) * dout)
            flat[i] = old - 1e-6
            minus = np.sum(model(x) * dout)
            flat[i] = old
            numeric = (plus - minus) / 2e-6
            assert abs(numeric - p.grad.reshape(-1)[i]) <= 1e-5 * max(1.0, abs(numeric)), p.name


def test_parameters_names_and_grad_shapes():
    model = lenet(np.random.default_rng(0))
    params = model.parameters()
    assert [p.name for p in params] == [
        "conv2d_1.weight", "conv2d_1.bias", "conv2d_2.weight", "conv2d_2.bias",
        "linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias",
        "linear_3.weight", "linear_3.bias",
    ]
    assert [p.data.shape for p in params] == [
        (6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (400, 120), (120,), (120, 100), (100,), (100, 10), (10,),
    ]
    out = model(np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32))
    model.backward(np.ones_like(out))
    for p in params:
        assert p.grad.shape == p.data.shape and p.grad.dtype == np.float32 and np.isfinite(p.grad).all()
    model.zero_grad()
    assert not any(p.grad.any() for p in params)


def test_layer_names_number_per_kind_and_keep_user_names():
    a, b = Linear(2, 3), Linear(3, 4)
    b.name = "classifier"
    model = Sequential([a, ReLU(), b, ReLU()])
    assert [layer.name for layer in model] == ["linear_1", "relu_1", "classifier", "relu_2"]
    assert model[2].weight.name == "classifier.weight"
    c = Linear(4, 4)
    c.name = "linear_1"
    assert [layer.name for layer in Sequential([Linear(2, 4), c])] == ["linear_2", "linear_1"]
    d, e = Linear(2, 2), Linear(2, 2)
    d.name = e.name = "head"
    with pytest.raises(ValueError, match="two layers are named 'head'"):
        Sequential([d, e])


def test_container_protocol_and_repr():
    model = lenet(np.random.default_rng(0))
    assert len(model) == 12 and isinstance(model[0], Conv2d) and isinstance(model[-1], Linear)
    features = model[:6]
    assert isinstance(features, Sequential) and len(features) == 6 and features[0] is model[0]
    assert features[0].name == "conv2d_1"
    fmap = features(np.zeros((1, 1, 28, 28), np.float32))
    assert fmap.shape == (1, 16, 5, 5)
    assert list(model)[3] is model[3]
    assert "(0) conv2d_1: Conv2d(1, 6, kernel_size=5, padding=2)" in repr(model)


def test_append_builds_a_model_like_keras_add():
    model = Sequential()
    model.add(Conv2d(1, 2, 3)).add(ReLU()).append(Flatten())
    assert [layer.name for layer in model] == ["conv2d_1", "relu_1", "flatten_1"]


@pytest.mark.parametrize(
    "layers, exc, match",
    [
        ([ReLU], TypeError, r"item 0 is a type.*ReLU\(\)"),
        ([Linear(2, 2), np.zeros(3)], TypeError, "item 1 is a ndarray, not a cnnlib.layers.Layer"),
        (ReLU(), TypeError, "pass a list of layers"),
        (5, TypeError, "layers must be a list"),
    ],
)
def test_sequential_rejects_non_layers(layers, exc, match):
    with pytest.raises(exc, match=match):
        Sequential(layers)


def test_same_layer_twice_is_rejected():
    relu = ReLU()
    with pytest.raises(ValueError, match="appears twice"):
        Sequential([relu, relu])


def test_forward_errors_name_the_layer_position_and_shapes():
    model = Sequential([Flatten(), Linear(100, 10)])
    with pytest.raises(ValueError, match=r"Sequential layer 1 \(linear_1\).*expected input \(N, 100\).*\(4, 784\)"):
        model(np.zeros((4, 1, 28, 28), np.float32))
    with pytest.raises(RuntimeError, match=r"Sequential layer 1 \(linear_1\).*backward\(\) called before forward"):
        Sequential([Flatten(), Linear(100, 10)]).backward(np.zeros((4, 10), np.float32))


# --- train / eval -----------------------------------------------------------------------------

def test_train_eval_switch_reaches_every_layer_and_changes_dropout_and_bn():
    rng = np.random.default_rng(3)
    model = Sequential([Conv2d(1, 2, 3, rng=rng), BatchNorm2d(2), Flatten(), Dropout(0.5, rng=rng)])
    x = rng.standard_normal((8, 1, 6, 6)).astype(np.float32) * 3 + 1
    assert model.training and all(layer.training for layer in model)
    train_out = model(x)
    assert (train_out == 0).mean() > 0.3  # dropout at work
    assert model.eval() is model and not any(layer.training for layer in model)
    bn = model[1]
    mean_before = bn.running_mean.copy()
    out1, out2 = model(x), model(x)
    np.testing.assert_array_equal(out1, out2)  # deterministic in eval mode
    np.testing.assert_array_equal(bn.running_mean, mean_before)  # running stats frozen in eval
    model.train()
    assert all(layer.training for layer in model)
    model(x)
    assert not np.array_equal(bn.running_mean, mean_before)


# --- save / load ------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    model = Sequential([Conv2d(1, 3, 3, rng=rng), BatchNorm2d(3), ReLU(), GlobalAvgPool2d(), Linear(3, 2, rng=rng)])
    x = rng.standard_normal((5, 1, 7, 7)).astype(np.float32)
    model(x)  # moves the batch norm running statistics away from 0 / 1
    path = tmp_path / "model.weights"  # any file name: saved at exactly this path
    model.save(path)
    assert path.exists()
    with np.load(path) as f:
        assert sorted(f.files) == sorted([
            "conv2d_1.weight", "conv2d_1.bias", "batch_norm2d_1.weight", "batch_norm2d_1.bias",
            "batch_norm2d_1.running_mean", "batch_norm2d_1.running_var", "linear_1.weight", "linear_1.bias"])

    other = Sequential([Conv2d(1, 3, 3, rng=np.random.default_rng(9)), BatchNorm2d(3), ReLU(), GlobalAvgPool2d(),
                        Linear(3, 2, rng=np.random.default_rng(9))])
    weight_array = other[0].weight.data
    assert other.load(path) is other
    assert other[0].weight.data is weight_array  # loaded in place: optimizers keep their references
    for (name, a), (name_b, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert name == name_b
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.eval()(x), other.eval()(x))


def test_load_refuses_a_shape_mismatch_naming_the_parameter_and_both_shapes(tmp_path):
    path = tmp_path / "lenet.npz"
    lenet(np.random.default_rng(0)).save(path)
    wider = Sequential([Conv2d(1, 8, 5, padding=2), ReLU(), MaxPool2d(2), Conv2d(8, 16, 5), ReLU(), MaxPool2d(2),
                        Flatten(), Linear(400, 120), ReLU(), Linear(120, 100), ReLU(), Linear(100, 10)])
    before = [p.data.copy() for p in wider.parameters()]
    with pytest.raises(ValueError, match=r"'conv2d_1.weight' has shape \(8, 1, 5, 5\) in the model but "
                                         r"\(6, 1, 5, 5\) in the file"):
        wider.load(path)
    for p, b in zip(wider.parameters(), before):  # nothing was half-loaded
        np.testing.assert_array_equal(p.data, b)


def test_load_refuses_missing_and_extra_names(tmp_path):
    path = tmp_path / "small.npz"
    Sequential([Linear(4, 3)]).save(path)
    with pytest.raises(ValueError, match=r"missing from the file: linear_2.weight \(3, 2\), linear_2.bias \(2,\)"):
        Sequential([Linear(4, 3), Linear(3, 2)]).load(path)
    with pytest.raises(ValueError, match=r"in the file but not in the model: linear_1.weight"):
        Sequential([Conv2d(1, 1, 1)]).load(path)


def test_lenet_matches_pytorch_when_installed():
    """An extra check: the same weights in torch.nn give the same logits, loss gradients and Adam step."""
    torch = pytest.importorskip("torch")
    from cnnlib.losses import softmax_cross_entropy
    from cnnlib.optim import Adam

    nn = torch.nn
    rng = np.random.default_rng(0)
    model = lenet(rng)
    tmodel = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 100), nn.ReLU(), nn.Linear(100, 10))
    tparams = list(tmodel.parameters())
    with torch.no_grad():
        for p, tp in zip(model.parameters(), tparams):
            # cnnlib's Linear weight is (in, out): the transpose of torch's
            tp.copy_(torch.from_numpy(p.data.T.copy() if p.data.ndim == 2 else p.data))
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 8)

    logits = model(x)
    loss, dlogits = softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    tlogits = tmodel(torch.from_numpy(x))
    tloss = nn.functional.cross_entropy(tlogits, torch.from_numpy(y))
    tloss.backward()

    np.testing.assert_allclose(logits, tlogits.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for p, tp in zip(model.parameters(), tparams):
        tgrad = tp.grad.numpy()
        np.testing.assert_allclose(p.grad, tgrad.T if p.data.ndim == 2 else tgrad, rtol=1e-3, atol=1e-6,
                                   err_msg=p.name)

    Adam(model.parameters(), lr=1e-3).step()
    torch.optim.Adam(tparams, lr=1e-3).step()
    for p, tp in zip(model.parameters(), tparams):
        tdata = tp.detach().numpy()
        np.testing.assert_allclose(p.data, tdata.T if p.data.ndim == 2 else tdata, rtol=1e-5, atol=1e-6,
                                   err_msg=p.name)

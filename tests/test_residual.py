"""cnnlib.layers.Residual: against a naive reference, numerical gradients (float64), inside a
Sequential (summary rows, save/load, train/eval), error messages, and PyTorch where installed."""

import numpy as np
import pytest

import naive
from cnnlib import gradcheck
from cnnlib.layers import BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Residual
from cnnlib.model import Sequential


def basic_block(c_in, c_out, stride, rng, bn=False):
    """ResNet's basic block: conv3x3(stride) [-> BN] -> ReLU -> conv3x3 [-> BN], bias-free convs."""
    layers = [Conv2d(c_in, c_out, 3, stride=stride, padding=1, rng=rng, bias=not bn)]
    layers += [BatchNorm2d(c_out)] if bn else []
    layers += [ReLU(), Conv2d(c_out, c_out, 3, padding=1, rng=rng, bias=not bn)]
    layers += [BatchNorm2d(c_out)] if bn else []
    return Sequential(layers)


def naive_residual(x, w1, b1, w2, b2, ws=None, bs=None, stride=1):
    """ReLU(conv(ReLU(conv(x, w1, stride)), w2) + shortcut(x)) with the naive loop convolution."""
    h = naive.relu_forward(naive.conv2d_forward(x, w1, b1, stride, 1))
    fx = naive.conv2d_forward(h, w2, b2, 1, 1)
    sx = x if ws is None else naive.conv2d_forward(x, ws, bs, stride, 0)
    return naive.relu_forward(fx + sx)


CASES = [
    pytest.param(2, 2, 1, False, (2, 2, 5, 6), id="identity"),
    pytest.param(2, 3, 2, True, (2, 2, 7, 5), id="projection-stride2"),
    pytest.param(3, 3, 1, True, (1, 3, 4, 4), id="projection-same-shape-N1"),
]


@pytest.mark.parametrize("c_in, c_out, stride, project, shape", CASES)
def test_forward_matches_the_naive_reference(c_in, c_out, stride, project, shape):
    rng = np.random.default_rng(0)
    block = basic_block(c_in, c_out, stride, rng)
    shortcut = Conv2d(c_in, c_out, 1, stride=stride, rng=rng) if project else None
    layer = Residual(block, shortcut).to(np.float64)
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)  # non-zero biases too
    x = rng.standard_normal(shape)
    out = layer(x)
    args = [block[0].weight.data, block[0].bias.data, block[2].weight.data, block[2].bias.data]
    if project:
        args += [shortcut.weight.data, shortcut.bias.data]
    expected = naive_residual(x, *args, stride=stride)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def numeric_grad(fn, array, dout):
    return gradcheck.numerical_gradient(lambda _: fn(), array, df=dout)


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("c_in, c_out, stride, project, shape", CASES)
def test_backward_matches_numerical_gradients(c_in, c_out, stride, project, shape, bn):
    rng = np.random.default_rng(1)
    shortcut = None
    if project:
        shortcut = Sequential([Conv2d(c_in, c_out, 1, stride=stride, rng=rng, bias=False)] + ([BatchNorm2d(c_out)] if bn else []))
    layer = Residual(basic_block(c_in, c_out, stride, rng, bn=bn), shortcut).to(np.float64)
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5
    layer.eval() if bn else layer.train()  # eval: BN uses the running statistics (no state between calls)
    x = rng.standard_normal(shape)

    def forward():
        return layer(x)

    out = forward()
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    assert dx.shape == x.shape and dx.dtype == np.float64
    assert gradcheck.rel_error(dx, numeric_grad(forward, x, dout)) < 1e-7
    for p in layer.parameters():
        assert gradcheck.rel_error(p.grad, numeric_grad(forward, p.data, dout)) < 1e-7, p.name


def test_zero_block_is_relu_of_x_and_the_gradient_takes_the_skip_path():
    rng = np.random.default_rng(2)
    layer = Residual(basic_block(3, 3, 1, rng)).to(np.float64)
    for p in layer.parameters():
        p.data[...] = 0
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(layer(x), np.maximum(x, 0))
    dout = rng.standard_normal(x.shape)
    # the block's weights are zero, so its input gradient is zero: all of dx comes through the skip
    np.testing.assert_array_equal(layer.backward(dout), dout * (x > 0))


def test_relu_comes_after_the_addition():
    """A negative block output can cancel a positive input: ReLU(F(x) + x), not ReLU(F(x)) + x."""
    conv = Conv2d(1, 1, 1, rng=np.random.default_rng(0)).to(np.float64)
    conv.weight.data[...] = -2.0  # F(x) = -2x
    layer = Residual(conv)
    x = np.array([1.0, -1.0]).reshape(2, 1, 1, 1)
    np.testing.assert_array_equal(layer(x).ravel(), [0.0, 1.0])  # ReLU(-2 + 1) = 0, ReLU(2 - 1) = 1
    np.testing.assert_array_equal(layer.backward(np.ones((2, 1, 1, 1))).ravel(), [0.0, -1.0])  # (1 - 2) * 1


def test_parameters_are_the_blocks_then_the_shortcuts_and_gradients_accumulate():
    rng = np.random.default_rng(3)
    block, shortcut = basic_block(2, 4, 2, rng), Conv2d(2, 4, 1, stride=2, rng=rng)
    layer = Residual(block, shortcut)
    assert layer.parameters() == block.parameters() + shortcut.parameters()
    assert [n for n, _ in layer.named_parameters()] == [
        "block.conv2d_1.weight", "block.conv2d_1.bias", "block.conv2d_2.weight", "block.conv2d_2.bias",
        "shortcut.weight", "shortcut.bias"]
    assert layer.num_params() == (sum(p.size for p in layer.parameters()), 0)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    layer(x)
    layer.backward(np.ones((2, 4, 3, 3), np.float32))
    once = shortcut.weight.grad.copy()
    assert once.any()
    layer(x)
    layer.backward(np.ones((2, 4, 3, 3), np.float32))
    np.testing.assert_allclose(shortcut.weight.grad, 2 * once, rtol=1e-6)
    layer.zero_grad()
    assert not any(p.grad.any() for p in layer.parameters())


def test_a_list_of_layers_becomes_a_sequential_block():
    layer = Residual([Conv2d(2, 2, 3, padding=1), ReLU()])
    assert isinstance(layer.block, Sequential) and len(layer.block) == 2
    assert layer.output_shape((2, 5, 5)) == (2, 5, 5)


def test_float32_stays_float32_and_integer_input_is_cast():
    layer = Residual(Conv2d(1, 1, 3, padding=1, rng=np.random.default_rng(0)))
    assert layer(np.zeros((1, 1, 4, 4), np.float64)).dtype == np.float32
    assert layer(np.ones((1, 1, 4, 4), np.int64)).dtype == np.float32


# --- inside a Sequential ----------------------------------------------------------------------

def small_resnet(rng, bn=True):
    return Sequential([
        Conv2d(1, 4, 3, padding=1, rng=rng), ReLU(),
        Residual(basic_block(4, 4, 1, rng, bn=bn)),
        Residual(basic_block(4, 8, 2, rng, bn=bn),
                 shortcut=Sequential([Conv2d(4, 8, 1, stride=2, bias=False, rng=rng), BatchNorm2d(8)])),
        GlobalAvgPool2d(), Linear(8, 3, rng=rng),
    ])


def test_summary_has_a_row_per_block_with_indented_inner_rows_counted_once():
    model = small_resnet(np.random.default_rng(0))
    text = model.summary((1, 12, 12))
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("residual_2 (Residual)"))
    assert "(None, 8, 6, 6)" in row
    inner = [line for line in lines if line.startswith("  ")]
    assert any(line.startswith("  block.conv2d_1 (Conv2d)") and "(None, 8, 6, 6)" in line and "288" in line
               for line in inner)  # 4*8*3*3, no bias
    assert any(line.startswith("  shortcut (identity)") for line in inner)
    assert any(line.startswith("  shortcut.conv2d_1 (Conv2d)") and "32" in line for line in inner)
    total = sum(p.size for p in model.parameters())
    frozen = sum(b.size for _, b in model.named_buffers())
    assert f"Trainable params: {total:,}" in text and f"Non-trainable params: {frozen:,}" in text
    assert f"Total params: {total + frozen:,}" in text
    assert model.count_params() == total + frozen


def test_summary_refuses_mismatched_shapes_naming_both():
    model = Sequential([Conv2d(1, 4, 3, padding=1), Residual(basic_block(4, 8, 2, np.random.default_rng(0)))])
    with pytest.raises(ValueError, match=r"layer 1 \(residual_1\).*block's output \(None, 8, 5, 5\) and the "
                                         r"identity shortcut's output \(x itself\) \(None, 4, 10, 10\)"):
        model.summary((1, 10, 10))


def test_forward_refuses_mismatched_shapes_naming_both():
    layer = Residual(basic_block(2, 4, 2, np.random.default_rng(0)), shortcut=Conv2d(2, 4, 1))
    with pytest.raises(ValueError, match=r"block's output \(3, 4, 4, 4\) and the shortcut's output "
                                         r"\(3, 4, 7, 7\) must have the same shape"):
        layer(np.zeros((3, 2, 7, 7), np.float32))
    # the refused forward leaves nothing half-done: a correct forward/backward works afterwards
    good = Residual(basic_block(2, 4, 2, np.random.default_rng(0)), shortcut=Conv2d(2, 4, 1, stride=2))
    out = good(np.zeros((3, 2, 7, 7), np.float32))
    assert good.backward(np.ones_like(out)).shape == (3, 2, 7, 7)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: Residual(ReLU), TypeError, r"block must be a cnnlib layer or Sequential, got type \(did you pass the class"),
    (lambda: Residual(np.zeros(3)), TypeError, "block must be a cnnlib layer or Sequential, got ndarray"),
    (lambda: Residual(ReLU(), shortcut="identity"), TypeError, "shortcut must be a cnnlib layer"),
])
def test_constructor_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_block_and_shortcut_may_not_share_a_layer():
    conv = Conv2d(2, 2, 1)
    with pytest.raises(ValueError, match="share a layer"):
        Residual(Sequential([conv, ReLU()]), shortcut=conv)


def test_train_and_eval_reach_the_inner_layers():
    model = small_resnet(np.random.default_rng(0))
    inner_bns = [layer for block in (model[2], model[3]) for part in (block.block, block.shortcut)
                 if part is not None for layer in part if isinstance(layer, BatchNorm2d)]
    assert len(inner_bns) == 5
    model.eval()
    assert not any(bn.training for bn in inner_bns) and not model[3].training
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    before = inner_bns[0].running_mean.copy()
    np.testing.assert_array_equal(model(x), model(x))
    np.testing.assert_array_equal(inner_bns[0].running_mean, before)  # frozen in eval
    model.train()
    assert all(bn.training for bn in inner_bns)
    model(x)
    assert not np.array_equal(inner_bns[0].running_mean, before)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    model = small_resnet(rng)
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    model(x)  # running statistics move away from 0 / 1
    path = tmp_path / "resnet.npz"
    model.save(path)
    with np.load(path) as f:
        names = set(f.files)
    assert {"residual_1.block.conv2d_1.weight", "residual_2.shortcut.conv2d_1.weight",
            "residual_2.shortcut.batch_norm2d_1.running_var", "residual_1.block.batch_norm2d_2.running_mean"} <= names
    assert names == set(model.state_dict())
    other = small_resnet(np.random.default_rng(99))
    inner_weight = other[3].block[0].weight.data
    other.load(path)
    assert other[3].block[0].weight.data is inner_weight  # in place
    for (name, a), (name_b, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert name == name_b
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(model.eval()(x), other.eval()(x))


def test_load_refuses_a_block_of_another_shape(tmp_path):
    path = tmp_path / "a.npz"
    Sequential([Residual(basic_block(2, 2, 1, np.random.default_rng(0)))]).save(path)
    wider = Sequential([Residual(basic_block(2, 2, 1, np.random.default_rng(0))),
                        Residual(Conv2d(2, 2, 1))])
    with pytest.raises(ValueError, match=r"missing from the file: residual_2.block.weight"):
        wider.load(path)


def test_model_with_residual_blocks_trains_end_to_end():
    from cnnlib.losses import softmax_cross_entropy
    from cnnlib.optim import SGD

    rng = np.random.default_rng(5)
    model = small_resnet(rng)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss, dlogits = softmax_cross_entropy(model(x), y)
        model.backward(dlogits)
        opt.step()
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]


def test_repr():
    layer = Residual(Conv2d(2, 4, 3, stride=2, padding=1), shortcut=Conv2d(2, 4, 1, stride=2))
    assert repr(layer) == ("Residual(Conv2d(2, 4, kernel_size=3, stride=2, padding=1), "
                           "shortcut=Conv2d(2, 4, kernel_size=1, stride=2))")
    assert repr(Residual([ReLU(), MaxPool2d(1)])) == "Residual([ReLU(), MaxPool2d(kernel_size=1)])"


def test_matches_pytorch_basic_block_when_installed():
    """torchvision's BasicBlock, written with torch.nn: same outputs and gradients, train and eval."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class TorchBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(6)
            self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(6)
            self.downsample = nn.Sequential(nn.Conv2d(3, 6, 1, stride=2, bias=False), nn.BatchNorm2d(6))

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + self.downsample(x))

    rng = np.random.default_rng(6)
    layer = Residual(basic_block(3, 6, 2, rng, bn=True),
                     shortcut=Sequential([Conv2d(3, 6, 1, stride=2, bias=False, rng=rng), BatchNorm2d(6)]))
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.5
    tblock = TorchBlock()
    tparams = [tblock.conv1.weight, tblock.bn1.weight, tblock.bn1.bias, tblock.conv2.weight, tblock.bn2.weight,
               tblock.bn2.bias, tblock.downsample[0].weight, tblock.downsample[1].weight, tblock.downsample[1].bias]
    with torch.no_grad():
        for p, tp in zip(layer.parameters(), tparams):
            tp.copy_(torch.from_numpy(p.data))
    x = rng.standard_normal((4, 3, 9, 7)).astype(np.float32)
    dout = rng.standard_normal((4, 6, 5, 4)).astype(np.float32)
    for mode in ("train", "eval"):
        layer.train(mode == "train")
        tblock.train(mode == "train")
        layer.zero_grad()
        tx = torch.from_numpy(x).requires_grad_(True)
        for tp in tparams:
            tp.grad = None
        out = layer(x)
        tout = tblock(tx)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=mode)
        dx = layer.backward(dout)
        tout.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=mode)
        for p, tp in zip(layer.parameters(), tparams):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=f"{mode} {p.name}")
        running = [b for _, b in layer.named_buffers()]
        truns = [t for m in (tblock.bn1, tblock.bn2, tblock.downsample[1]) for t in (m.running_mean, m.running_var)]
        for b, t in zip(running, truns):
            np.testing.assert_allclose(b, t.numpy(), rtol=1e-4, atol=1e-6, err_msg=mode)

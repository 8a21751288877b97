"""cnnlib.train: fit / evaluate / predict, History, and the LeNet-on-MNIST-sample accuracy bar."""

import time

import numpy as np
import pytest

from cnnlib.layers import BatchNorm2d, Conv2d, Dropout, Flatten, Layer, Linear, ReLU
from cnnlib.losses import squared_error
from cnnlib.model import Sequential, lenet
from cnnlib.optim import SGD, Adam
from cnnlib.train import History, evaluate, fit, predict


def toy_data(n=120, seed=0):
    """Two Gaussian blobs in 1x4x4 'images': class 1 is brighter."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = (rng.standard_normal((n, 1, 4, 4)) * 0.5 + y[:, None, None, None]).astype(np.float32)
    return X, y.astype(np.int64)


def toy_model(seed=0, dropout=0.0):
    rng = np.random.default_rng(seed)
    layers = [Conv2d(1, 3, 3, padding=1, rng=rng), BatchNorm2d(3), ReLU(), Flatten()]
    if dropout:
        layers.append(Dropout(dropout, rng=rng))
    return Sequential(layers + [Linear(48, 2, rng=rng)])


class ModeSpy(Layer):
    """Identity layer that records the training flag of every forward."""

    kind = "spy"

    def __init__(self):
        super().__init__()
        self.modes = []

    def _forward(self, x):
        self.modes.append(self.training)
        return x, None

    def _backward(self, dout, cache):
        return dout


def test_fit_learns_and_returns_a_history(capsys):
    X, y = toy_data()
    model = toy_model()
    hist = fit(model, Adam(model.parameters(), lr=0.01), X, y, epochs=4, batch_size=16,
               validation_data=toy_data(40, seed=1), rng=np.random.default_rng(0), progress=False)
    assert isinstance(hist, History)
    assert list(hist.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(v) == 4 and all(isinstance(x, float) for x in v) for v in hist.history.values())
    assert hist.epoch == [0, 1, 2, 3]
    assert hist.params == {"epochs": 4, "batch_size": 16, "steps": 8}
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert hist.history["val_accuracy"][-1] >= 0.9
    assert "4 epochs" in repr(hist)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # progress=False is silent


def test_fit_without_validation_leaves_val_lists_empty():
    X, y = toy_data(40)
    model = toy_model()
    hist = fit(model, SGD(model.parameters(), lr=0.1), X, y, epochs=2, batch_size=64, progress=False)
    assert len(hist.history["loss"]) == 2 and hist.history["val_loss"] == [] and hist.history["val_accuracy"] == []
    assert hist.params["steps"] == 1  # one partial batch of 40


def test_fit_shows_a_progress_bar_with_running_loss_and_accuracy(capsys):
    X, y = toy_data(40)
    model = toy_model()
    fit(model, SGD(model.parameters(), lr=0.1), X, y, epochs=2, batch_size=16,
        validation_data=(X, y), rng=np.random.default_rng(0), progress=True)
    err = capsys.readouterr().err
    for text in ("Epoch 1/2", "Epoch 2/2", "3/3", "loss=", "accuracy=", "val_loss=", "val_accuracy="):
        assert text in err


def test_fit_is_reproducible_with_a_seeded_rng_and_shuffles_with_it():
    X, y = toy_data()

    def run(data_seed):
        model = toy_model(seed=0, dropout=0.2)
        return fit(model, SGD(model.parameters(), lr=0.05, momentum=0.9), X, y, epochs=2, batch_size=10,
                   rng=np.random.default_rng(data_seed), progress=False).history["loss"]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_fit_uses_train_mode_then_eval_mode_for_validation_and_restores_the_mode():
    X, y = toy_data(30)
    spy = ModeSpy()
    model = Sequential([Flatten(), spy, Linear(16, 2, rng=np.random.default_rng(0))])
    model.eval()
    fit(model, SGD(model.parameters(), lr=0.1), X, y, epochs=2, batch_size=10, validation_data=(X[:10], y[:10]),
        progress=False)
    # per epoch: 3 training batches, then 1 validation batch
    assert spy.modes == [True, True, True, False] * 2
    assert model.training is False  # left as it was found
    assert all(layer._cache is None for layer in model)  # caches freed


def test_evaluate_is_in_eval_mode_and_independent_of_batch_size():
    X, y = toy_data(50)
    model = toy_model(dropout=0.5)
    model.train()
    r1 = evaluate(model, X, y)
    r2 = evaluate(model, X, y, batch_size=7)
    assert set(r1) == {"loss", "accuracy"}
    assert r1["loss"] == pytest.approx(r2["loss"], rel=1e-5) and r1["accuracy"] == r2["accuracy"]
    assert model.training  # restored
    logits = predict(model, X, batch_size=16)
    assert logits.shape == (50, 2) and logits.dtype == np.float32
    model.eval()
    np.testing.assert_allclose(logits, model(X), rtol=1e-5, atol=1e-6)
    assert r1["accuracy"] == np.mean(logits.argmax(1) == y)


def test_fit_casts_float64_and_accepts_one_hot_targets_with_squared_error():
    X, y = toy_data(40)
    onehot = np.eye(2)[y]
    model = toy_model()
    hist = fit(model, SGD(model.parameters(), lr=0.05), X.astype(np.float64), onehot, epochs=2, batch_size=8,
               loss=squared_error, progress=False)
    assert 0.0 <= hist.history["accuracy"][-1] <= 1.0
    assert model.parameters()[0].data.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(y=np.zeros(7, np.int64)), ValueError, r"X has 10 examples but y has 7 \(X \(10, 1, 4, 4\), y \(7,\)\)"),
        (dict(X=np.zeros(10, np.float32)), ValueError, r"X must be a batch of examples.*got shape \(10,\)"),
        (dict(y=np.full(10, 0.5)), TypeError, "y must hold integer class indices, got dtype float64"),
        (dict(epochs=0), ValueError, "epochs must be >= 1"),
        (dict(batch_size=2.5), TypeError, "batch_size must be an int"),
        (dict(validation_data=np.zeros(3)), TypeError, r"validation_data must be a pair \(X_val, y_val\)"),
        (dict(validation_data=(np.zeros((3, 1, 4, 4)), np.zeros(2, np.int64))), ValueError,
         "validation_data X has 3 examples but validation_data X's y has 2"),
        (dict(rng=np.random.RandomState(0)), TypeError, "rng must be a numpy Generator"),
        (dict(X=np.zeros((10, 1, 5, 5), np.float32)), ValueError, r"Sequential layer 4 \(linear_1\).*\(N, 48\)"),
    ],
)
def test_fit_rejects_bad_input_clearly(kwargs, exc, match):
    X, y = toy_data(10)
    model = toy_model()
    args = dict(X=X, y=y, epochs=1, batch_size=4, progress=False)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fit(model, SGD(model.parameters(), lr=0.1), **args)


def test_fit_rejects_a_non_model_or_optimizer():
    X, y = toy_data(10)
    model = toy_model()
    with pytest.raises(TypeError, match="optimizer must be a cnnlib.optim optimizer"):
        fit(model, None, X, y, epochs=1, batch_size=4)
    with pytest.raises(TypeError, match="model must be a cnnlib.model.Sequential"):
        evaluate(lambda x: x, X, y)


def test_fit_stops_with_a_clear_error_when_the_loss_diverges():
    X, y = toy_data(20)
    model = toy_model()
    def exploding(out, target):
        return float("nan"), np.zeros_like(out)

    with pytest.raises(FloatingPointError, match=r"loss became nan in epoch 1, batch 1; the learning rate"):
        fit(model, SGD(model.parameters(), lr=0.1), X, y, epochs=3, batch_size=5, loss=exploding, progress=False)


def test_history_plot_returns_a_figure():
    pytest.importorskip("cnnlib.viz")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    X, y = toy_data(20)
    model = toy_model()
    hist = fit(model, SGD(model.parameters(), lr=0.1), X, y, epochs=2, batch_size=10, validation_data=(X, y),
               progress=False)
    fig = hist.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2


def test_lenet_reaches_92_percent_on_the_mnist_sample():
    """DONE-WHEN of issue 3: the seeds' LeNet, Adam(1e-3), batch 64, 5 epochs, 4,000 real digits."""
    from cnnlib.datasets import load_mnist

    (X_train, y_train), (X_test, y_test) = load_mnist("sample")
    rng = np.random.default_rng(0)
    model = lenet(rng)
    t0 = time.perf_counter()
    hist = fit(model, Adam(model.parameters(), lr=1e-3), X_train, y_train, epochs=5, batch_size=64, rng=rng,
               progress=False)
    seconds = time.perf_counter() - t0
    result = evaluate(model, X_test, y_test)
    print(f"LeNet on the MNIST sample: test accuracy {result['accuracy']:.3f} after 5 epochs in {seconds:.1f} s")
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert result["accuracy"] >= 0.92


def manual_fit(model, opt, X, y, epochs, batch_size, rng):
    """fit's loop written out with every layer computing its dx (the reference for the opt-out)."""
    from cnnlib.losses import softmax_cross_entropy

    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            _, dout = softmax_cross_entropy(model.forward(X[idx]), y[idx])
            assert model.backward(dout) is not None  # dx computed
            opt.step()


def test_fit_skips_the_first_layers_dx_with_identical_results_and_restores_the_flag():
    X, y = toy_data(50)
    trained = []
    for use_fit in (True, False):
        model = toy_model(seed=3)
        opt = Adam(model.parameters(), lr=0.01)
        if use_fit:
            calls = []
            conv = model[0]
            original = conv._backward
            conv._backward = lambda dout, cache: calls.append(conv.needs_input_grad) or original(dout, cache)
            fit(model, opt, X, y, epochs=2, batch_size=16, rng=np.random.default_rng(5), progress=False)
            assert calls and not any(calls)  # every backward of the first layer skipped dx
            assert conv.needs_input_grad is True  # restored
        else:
            manual_fit(model, opt, X, y, 2, 16, np.random.default_rng(5))
        trained.append([p.data.copy() for p in model.parameters()])
    for a, b in zip(*trained):
        np.testing.assert_array_equal(a, b)


def test_first_layer_flag_is_restored_when_fit_raises():
    X, y = toy_data(20)
    model = toy_model()
    with pytest.raises(ValueError):
        fit(model, SGD(model.parameters(), lr=0.1), X[:, :, :3], y, epochs=1, batch_size=8, progress=False)
    assert model[0].needs_input_grad is True

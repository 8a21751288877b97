"""Training loop, evaluation and prediction for a ``Sequential`` model (Keras' ``fit``/``evaluate``).

:func:`fit` runs the five training steps of the seeds on shuffled mini-batches: forward, loss,
backprop, optimizer step (random initialisation happened when the layers were built). It returns
a :class:`History` whose ``.history`` dict holds one number per epoch, as in Keras, and whose
``plot()`` draws the learning curves. Introduced in 07_training.

Example:
    >>> import numpy as np
    >>> from cnnlib.layers import Linear
    >>> from cnnlib.model import Sequential
    >>> from cnnlib.optim import SGD
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 2)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)           # a linearly separable toy problem
    >>> model = Sequential([Linear(2, 2, rng=rng)])
    >>> hist = fit(model, SGD(model.parameters(), lr=0.5), X, y, epochs=5, batch_size=20,
    ...            rng=rng, progress=False)
    >>> sorted(hist.history), len(hist.history["loss"])
    (['accuracy', 'loss', 'val_accuracy', 'val_loss'], 5)
    >>> evaluate(model, X, y)["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from cnnlib.grading.guard import reference
from cnnlib.losses import softmax_cross_entropy
from cnnlib.model import Sequential
from cnnlib.optim import Optimizer

__all__ = ["History", "fit", "evaluate", "predict"]

LossFn = Callable[[np.ndarray, np.ndarray], "tuple[float, np.ndarray]"]


class History:
    """What :func:`fit` returns: per-epoch metrics, like Keras' ``History`` callback.

    Attributes:
        history: dict with ``loss`` and ``accuracy`` (training: the running mean over the
            epoch's batches, as Keras reports them) and ``val_loss`` and ``val_accuracy``
            (on ``validation_data`` after each epoch, in eval mode; empty lists without it).
            One float per epoch.
        epoch: the epoch indices 0, 1, ... (Keras' ``History.epoch``).
        params: ``{"epochs": ..., "batch_size": ..., "steps": ...}`` (batches per epoch).
    """

    def __init__(self, params: dict | None = None):
        self.history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
        self.epoch: list[int] = []
        self.params: dict = dict(params or {})

    def plot(self, title: str = "learning curves"):
        """The learning curves (loss and accuracy per epoch, training and validation).

        Returns:
            matplotlib Figure (from ``cnnlib.viz.plot_history``); not shown, so a notebook
            displays it once.
        """
        from cnnlib import viz

        return viz.plot_history(self, title=title)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = ", ".join(f"{k}={v[-1]:.4f}" for k, v in self.history.items() if v)
        return f"History({len(self.epoch)} epochs; last: {last})"


def _check_data(X, y, func: str, what: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """Validate a dataset (X, y): arrays, same number of examples, labels or targets."""
    X = np.asarray(X)
    y = np.asarray(y)
    yname = "y" if what == "X" else f"{what}'s y"
    if X.ndim < 2:
        raise ValueError(f"{func}: {what} must be a batch of examples (N, ...) e.g. (N, 1, 28, 28), got shape {X.shape}")
    if y.ndim == 0:
        raise ValueError(f"{func}: {yname} must have one label per example, got a scalar")
    if len(X) != len(y):
        raise ValueError(f"{func}: {what} has {len(X)} examples but {yname} has {len(y)} "
                         f"({what} {X.shape}, {yname} {y.shape})")
    if len(X) == 0:
        raise ValueError(f"{func}: {what} is empty (shape {X.shape})")
    if y.ndim == 1 and not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"{func}: {yname} must hold integer class indices, got dtype {y.dtype}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{func}: {what} must hold real numbers, got dtype {X.dtype}")
    return X, y


def _check_model(model, func: str) -> None:
    if not isinstance(model, Sequential):
        raise TypeError(f"{func}: model must be a cnnlib.model.Sequential, got {type(model).__name__}")


def _check_int(value, name: str, func: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{func}: {name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{func}: {name} must be >= 1, got {value}")
    return int(value)


def _as_model_dtype(X: np.ndarray, model: Sequential) -> np.ndarray:
    # Cast once here rather than in every layer for every batch (float64 data, uint8 pixels...).
    dtype = model.dtype or np.dtype(np.float32)
    return X if X.dtype == dtype else X.astype(dtype)


def _n_correct(logits: np.ndarray, y: np.ndarray) -> int:
    """Number of examples whose largest logit is the label (y: class indices or one-hot targets)."""
    if logits.ndim != 2:
        return 0
    pred = logits.argmax(axis=1)
    target = y if y.ndim == 1 else y.argmax(axis=1)
    return int(np.count_nonzero(pred == target))


def _progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True)


@reference
def fit(model: Sequential, optimizer: Optimizer, X, y, *, epochs: int, batch_size: int,
        loss: LossFn = softmax_cross_entropy, validation_data=None,
        rng: np.random.Generator | None = None, progress: bool = True) -> History:
    """Train ``model`` on (X, y) with mini-batch gradient descent; Keras' ``model.fit``.

    Every epoch: shuffle the examples with ``rng``, then for each mini-batch run the forward
    pass, the loss, the backward pass and ``optimizer.step()`` (the model is in training mode);
    then evaluate ``validation_data`` in eval mode. The model is left in the mode it was in.

    Args:
        model: a ``Sequential`` whose output fits ``loss`` (logits (N, K) for cross-entropy).
        optimizer: built on ``model.parameters()``, e.g. ``Adam(model.parameters(), lr=1e-3)``.
        X: inputs, (N, C, H, W) for a convolutional model; cast to the model's dtype (float32).
        y: (N,) integer class indices (or (N, K) targets for ``squared_error``).
        epochs: passes over the data, >= 1.
        batch_size: examples per step, >= 1; the last batch of an epoch may be smaller.
        loss: ``loss(output, y) -> (mean loss, d loss / d output)``; default softmax cross-entropy.
        validation_data: optional ``(X_val, y_val)``, evaluated after every epoch.
        rng: ``np.random.Generator`` for the shuffling (seed it to repeat a run).
        progress: show a tqdm progress bar per epoch with the running loss and accuracy.

    Returns:
        :class:`History`; ``history.history["loss"][e]`` is epoch e's mean training loss.

    Raises:
        ValueError / TypeError: X and y disagree in length, bad ``epochs``/``batch_size``, or a
            layer rejects the input shape (the message names the layer).
    """
    func = "fit"
    _check_model(model, func)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{func}: optimizer must be a cnnlib.optim optimizer (SGD, Adam), got {type(optimizer).__name__}")
    epochs = _check_int(epochs, "epochs", func)
    batch_size = _check_int(batch_size, "batch_size", func)
    X, y = _check_data(X, y, func)
    X = _as_model_dtype(X, model)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError(f"{func}: validation_data must be a pair (X_val, y_val)")
        X_val, y_val = _check_data(*validation_data, func, what="validation_data X")
        X_val = _as_model_dtype(X_val, model)
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"{func}: rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")

    n = len(X)
    steps = math.ceil(n / batch_size)
    history = History({"epochs": epochs, "batch_size": batch_size, "steps": steps})
    was_training = model.training
    # Nothing uses the gradient with respect to the images: let the first layer skip it
    # (Conv2d.needs_input_grad; the weights' gradients are the same), restored afterwards.
    first = model.layers[0] if model.layers else None
    first_needs = getattr(first, "needs_input_grad", None)
    if first_needs is not None:
        first.needs_input_grad = False
    try:
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(n)
            total_loss = 0.0
            correct = seen = 0
            bar = _progress_bar(steps, f"Epoch {epoch + 1}/{epochs}", progress)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                xb, yb = X[idx], y[idx]
                optimizer.zero_grad()
                out = model.forward(xb)
                batch_loss, dout = loss(out, yb)
                model.backward(dout)
                optimizer.step()
                batch_loss = float(batch_loss)
                if not math.isfinite(batch_loss):
                    raise FloatingPointError(
                        f"{func}: the loss became {batch_loss} in epoch {epoch + 1}, batch "
                        f"{start // batch_size + 1}; the learning rate is probably too large"
                    )
                total_loss += batch_loss * len(idx)
                correct += _n_correct(out, yb)
                seen += len(idx)
                if bar is not None:
                    bar.set_postfix({"loss": f"{total_loss / seen:.4f}", "accuracy": f"{correct / seen:.4f}"},
                                    refresh=False)
                    bar.update(1)
            history.history["loss"].append(total_loss / seen)
            history.history["accuracy"].append(correct / seen)
            if validation_data is not None:
                val = _evaluate(model, X_val, y_val, max(batch_size, 256), loss)
                history.history["val_loss"].append(val["loss"])
                history.history["val_accuracy"].append(val["accuracy"])
            history.epoch.append(epoch)
            if bar is not None:
                post = {"loss": f"{total_loss / seen:.4f}", "accuracy": f"{correct / seen:.4f}"}
                if validation_data is not None:
                    post.update(val_loss=f"{val['loss']:.4f}", val_accuracy=f"{val['accuracy']:.4f}")
                bar.set_postfix(post, refresh=True)
                bar.close()
    finally:
        if first_needs is not None:
            first.needs_input_grad = first_needs
        model.clear_cache()
        model.train(was_training)
    return history


def _evaluate(model: Sequential, X: np.ndarray, y: np.ndarray, batch_size: int, loss: LossFn) -> dict[str, float]:
    was_training = model.training
    model.eval()
    try:
        total = 0.0
        correct = 0
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            out = model.forward(xb)
            batch_loss, _ = loss(out, yb)
            total += float(batch_loss) * len(xb)
            correct += _n_correct(out, yb)
    finally:
        model.clear_cache()
        model.train(was_training)
    return {"loss": total / len(X), "accuracy": correct / len(X)}


@reference
def evaluate(model: Sequential, X, y, batch_size: int = 256, loss: LossFn = softmax_cross_entropy) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on (X, y), in eval mode; Keras' ``model.evaluate``.

    Args:
        model: a ``Sequential``.
        X: inputs (N, ...); y: (N,) class indices (or (N, K) targets).
        batch_size: examples per forward pass (memory, not results, depends on it).
        loss: as in :func:`fit`.

    Returns:
        ``{"loss": mean loss over the N examples, "accuracy": fraction whose argmax is right}``.
        The model is left in the mode it was in.
    """
    func = "evaluate"
    _check_model(model, func)
    batch_size = _check_int(batch_size, "batch_size", func)
    X, y = _check_data(X, y, func)
    return _evaluate(model, _as_model_dtype(X, model), y, batch_size, loss)


@reference
def predict(model: Sequential, X, batch_size: int = 256) -> np.ndarray:
    """The model's outputs (logits) for X, computed batch by batch in eval mode.

    Args:
        model: a ``Sequential``.
        X: inputs (N, ...).
        batch_size: examples per forward pass.

    Returns:
        (N, ...) outputs, e.g. logits (N, 10): ``predict(model, X).argmax(1)`` are the predicted
        classes, ``cnnlib.losses.softmax`` of them the probabilities.
    """
    func = "predict"
    _check_model(model, func)
    batch_size = _check_int(batch_size, "batch_size", func)
    X = np.asarray(X)
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"{func}: X must be a non-empty batch of examples (N, ...), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{func}: X must hold real numbers, got dtype {X.dtype}")
    X = _as_model_dtype(X, model)
    was_training = model.training
    model.eval()
    try:
        outs = [model.forward(X[start:start + batch_size]) for start in range(0, len(X), batch_size)]
    finally:
        model.clear_cache()
        model.train(was_training)
    return np.concatenate(outs, axis=0)

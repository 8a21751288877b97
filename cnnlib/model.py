"""Sequential models: a list of layers run in order, with a Keras-style summary and .npz save/load.

``Sequential`` chains ``cnnlib.layers``: ``forward`` runs them first to last, ``backward`` last to
first, ``parameters()`` gathers what the optimizer updates. Each layer gets a Keras-like name
(``conv2d_1``, ``max_pool2d_1``, ...) numbered per model, which names its parameters
(``conv2d_1.weight``) in ``summary()`` and in saved files. :func:`lenet` builds the LeNet-style
network of the seeds. Introduced in 07_training (``summary`` in 03_conv_layer).

Example:
    >>> import numpy as np
    >>> from cnnlib.layers import Conv2d, ReLU, Flatten, Linear
    >>> model = Sequential([Conv2d(1, 4, 3, rng=np.random.default_rng(0)), ReLU(), Flatten(),
    ...                     Linear(4 * 26 * 26, 10, rng=np.random.default_rng(1))])
    >>> model(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 10)
    >>> [p.name for p in model.parameters()]
    ['conv2d_1.weight', 'conv2d_1.bias', 'linear_1.weight', 'linear_1.bias']
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, Sequence

import numpy as np

from cnnlib.grading.guard import reference
from cnnlib.layers import (
    Conv2d,
    Flatten,
    Layer,
    Linear,
    MaxPool2d,
    Parameter,
    ReLU,
)

__all__ = ["Sequential", "Summary", "lenet"]


class Summary(str):
    """The text of ``Sequential.summary()``: a ``str`` that displays as the table itself.

    A plain string returned as the last expression of a notebook cell would show as one quoted
    line full of ``\\n``; this subclass's repr is the table, so ``model.summary((1, 28, 28))``
    displays like Keras' ``model.summary()`` while ``print(...)``, ``==`` and ``.splitlines()``
    work as on any string.
    """

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython / Jupyter display
        printer.text(str(self))


def _relu_then_max_pool(layers, i) -> bool:
    """Layer i is cnnlib's ReLU and layer i + 1 cnnlib's MaxPool2d (see Sequential.forward)."""
    return i + 1 < len(layers) and type(layers[i]) is ReLU and type(layers[i + 1]) is MaxPool2d


class Sequential:
    """A stack of layers applied in order; Keras' ``Sequential`` / PyTorch's ``nn.Sequential``.

    Args:
        layers: an iterable of ``cnnlib.layers.Layer`` instances. A layer keeps a name it was
            given (``layer.name = "features"`` before building the model); otherwise it is named
            ``<kind>_<k>``, k counting that kind of layer from 1 within this model.

    A new model is in training mode, as in PyTorch: call ``model.eval()`` before inference
    (``cnnlib.train.evaluate``/``predict`` do it for you).

    Example:
        >>> from cnnlib.layers import Linear, ReLU
        >>> rng = np.random.default_rng(0)
        >>> model = Sequential([Linear(4, 8, rng=rng), ReLU(), Linear(8, 3, rng=rng)])
        >>> len(model), model[0]
        (3, Linear(in_features=4, out_features=8))
        >>> out = model(np.ones((5, 4), np.float32))
        >>> dx = model.backward(np.ones_like(out))
        >>> dx.shape, model[0].weight.grad.shape
        ((5, 4), (4, 8))
    """

    def __init__(self, layers: Iterable[Layer] = ()):
        if isinstance(layers, Layer):
            raise TypeError("Sequential: pass a list of layers, e.g. Sequential([Conv2d(...), ReLU()])")
        self.layers: list[Layer] = _check_layers(layers)
        self.training = True
        self._swapped: set[int] = set()  # ReLU + MaxPool2d pairs the last forward ran pool first
        self._name_layers()

    # --- running ------------------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run every layer in order; each keeps its cache for ``backward``.

        One shortcut: a ``ReLU`` directly followed by a ``MaxPool2d`` runs after the pool, on
        its output. ReLU is nondecreasing, so it commutes with a max: the output is the same,
        and so are the gradients (a window's gradient reaches the same input or, where the
        window holds no positive value, none), for a ReLU on KH*KW times fewer numbers (LeNet's
        training step in 0.94-0.97x the time). Each layer's ``forward`` called on its own, or a
        model that ends with the ReLU (``model[:2]``), runs as written.

        Args:
            x: a batch, (N, C, H, W) for a convolutional first layer.

        Returns:
            The last layer's output, e.g. logits (N, num_classes).
        """
        layers = self.layers
        swapped = self._swapped = set()  # (reset first: a forward that fails leaves no stale pair)
        i = 0
        while i < len(layers):
            pair = _relu_then_max_pool(layers, i)
            for k in ((i + 1, i) if pair else (i,)):
                try:
                    x = layers[k].forward(x)
                except (ValueError, TypeError) as e:
                    _add_context(e, f"Sequential layer {k} ({layers[k].name})")
                    raise
            if pair:
                swapped.add(i)
            i += 2 if pair else 1
        return x

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Back-propagate ``dout`` (gradient of the loss w.r.t. the output) through every layer.

        Adds each parameter's gradient into its ``.grad`` and returns the gradient w.r.t. the
        input of the last ``forward`` (through a ReLU + MaxPool2d pair in the order the forward
        ran them).
        """
        swapped = self._swapped
        i = len(self.layers) - 1
        while i >= 0:
            pair = (i - 1) in swapped
            for k in ((i - 1, i) if pair else (i,)):
                layer = self.layers[k]
                try:
                    dout = layer.backward(dout)
                except (ValueError, TypeError, RuntimeError) as e:
                    _add_context(e, f"Sequential layer {k} ({layer.name})")
                    raise
            i -= 2 if pair else 1
        return dout

    # --- containers -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            # A view of some layers (shared, not copied) that keeps their names, e.g. model[:6]
            # for the feature maps of the convolutional part.
            sub = object.__new__(Sequential)
            sub.layers, sub.training, sub._swapped = self.layers[index], self.training, set()
            return sub
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def append(self, layer: Layer) -> "Sequential":
        """Add a layer at the end (Keras' ``model.add``); returns the model."""
        self.layers.append(_check_layers(self.layers + [layer])[-1])  # refuses a layer already in the model
        layer.train(self.training)
        self._name_layers()
        return self

    add = append

    def _name_layers(self) -> None:
        """Give every layer without a user-chosen name the name ``<kind>_<k>`` (k from 1 per kind)."""
        taken = {layer.name for layer in self.layers if layer._user_named}
        counts: dict[str, int] = {}
        seen: set[str] = set()
        for layer in self.layers:
            if layer._user_named:
                name = layer.name
            else:
                k = counts.get(layer.kind, 0) + 1
                while f"{layer.kind}_{k}" in taken:
                    k += 1
                counts[layer.kind] = k
                name = f"{layer.kind}_{k}"
                layer._set_name(name)
            if name in seen:
                raise ValueError(f"Sequential: two layers are named {name!r}; give them distinct names")
            seen.add(name)

    # --- parameters and modes -----------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        """All trainable parameters, first layer first (pass them to an optimizer)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(p.name, p) for p in self.parameters()]

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        """Non-trainable saved state (batch norm running statistics) as (qualified name, array)."""
        return [(f"{layer.name}.{k}", b) for layer in self.layers for k, b in layer.named_buffers()]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by qualified name (views, not copies): what ``save`` writes."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update(self.named_buffers())
        return state

    def train(self, mode: bool = True) -> "Sequential":
        """Put every layer in training mode (or eval mode with ``mode=False``); returns the model."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self) -> "Sequential":
        """Evaluation mode: Dropout is the identity, BatchNorm uses its running statistics."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to zeros (``optimizer.zero_grad()`` does the same)."""
        for p in self.parameters():
            p.grad.fill(0)

    def to(self, dtype) -> "Sequential":
        """Cast all parameters and buffers to ``dtype`` (float64 for gradient checks); build the
        optimizer afterwards, since the arrays are replaced."""
        for layer in self.layers:
            layer.to(dtype)
        return self

    def clear_cache(self) -> None:
        """Drop the layers' forward caches (frees the memory of the last batch)."""
        for layer in self.layers:
            layer.clear_cache()

    @property
    def dtype(self) -> np.dtype | None:
        """dtype of the parameters (None for a model without parameters)."""
        params = self.parameters()
        return params[0].data.dtype if params else None

    # --- summary ------------------------------------------------------------------------------
    def output_shapes(self, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Each layer's output shape for one example of ``input_shape`` (no batch axis).

        Computed by shape inference from the layers' hyperparameters, not by running a forward.
        """
        shape = _example_shape(input_shape)
        shapes = []
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(int(d) for d in layer.output_shape(shape))
            except (ValueError, TypeError) as e:
                _add_context(e, f"Sequential layer {i} ({layer.name})")
                raise
            shapes.append(shape)
        return shapes

    def summary(self, input_shape: Sequence[int]) -> Summary:
        """A Keras 2-style table of layers, output shapes and parameter counts.

        Args:
            input_shape: one example's shape without the batch axis, e.g. ``(3, 224, 224)``
                (a leading ``None`` is accepted and ignored).

        Returns:
            :class:`Summary`, a ``str`` that displays as the table in a notebook (it is returned,
            not printed; ``print(model.summary(...))`` works too). Output shapes are NCHW with
            ``None`` for the batch; BatchNorm's running statistics count as non-trainable.

        Example (the Keras model of seed 004, without its activations):
            >>> from cnnlib.layers import Conv2d, MaxPool2d, GlobalAvgPool2d, Linear
            >>> rng = np.random.default_rng(0)
            >>> model = Sequential([Conv2d(3, 16, 2, rng=rng), MaxPool2d(2), Conv2d(16, 32, 2, rng=rng),
            ...     MaxPool2d(2), Conv2d(32, 64, 2, rng=rng), MaxPool2d(2), GlobalAvgPool2d(),
            ...     Linear(64, 133, rng=rng)])
            >>> print(model.summary((3, 224, 224)))  # doctest: +NORMALIZE_WHITESPACE
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
            __________________________________________________________________________
        """
        shapes = self.output_shapes(input_shape)
        rows = []
        groups = []  # rows of one layer: its own, then indented rows of its inner layers (Residual)
        total_trainable = total_frozen = 0
        for layer, shape, in_shape in zip(self.layers, shapes, [_example_shape(input_shape)] + shapes):
            trainable, frozen = layer.num_params()
            total_trainable += trainable
            total_frozen += frozen
            group = [(f"{layer.name} ({type(layer).__name__})", "(None, " + ", ".join(map(str, shape)) + ")",
                      f"{trainable + frozen:,}")]
            if hasattr(layer, "summary_rows"):  # a block of layers: counted once, in its own row
                group += [("  " + name, "(None, " + ", ".join(map(str, sub)) + ")", f"{n:,}")
                          for name, sub, n in layer.summary_rows(in_shape)]
            groups.append(group)
            rows += group
        header = ("Layer (type)", "Output Shape", "Param #")
        # Keras 2 puts the columns at 29 / 55 / 65 characters; widen them when a name is longer.
        w1 = max([29] + [len(r[0]) + 1 for r in rows])
        w2 = max([26] + [len(r[1]) + 1 for r in rows])
        w3 = max([10] + [len(r[2]) for r in rows])
        width = w1 + w2 + w3

        def line(cells) -> str:
            return (cells[0].ljust(w1) + cells[1].ljust(w2) + cells[2]).rstrip()

        out = ['Model: "sequential"', "_" * width, line(header), "=" * width]
        for i, group in enumerate(groups):
            out += [line(row) for row in group]
            out.append("=" * width if i == len(groups) - 1 else "_" * width)
        if not rows:
            out.append("=" * width)
        out += [
            f"Total params: {total_trainable + total_frozen:,}",
            f"Trainable params: {total_trainable:,}",
            f"Non-trainable params: {total_frozen:,}",
            "_" * width,
        ]
        return Summary("\n".join(out))

    def count_params(self) -> int:
        """Total number of parameters, trainable and not (Keras' ``model.count_params()``)."""
        return sum(sum(layer.num_params()) for layer in self.layers)

    # --- save / load --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write every parameter and buffer to an ``.npz`` file at exactly ``path``.

        Keys are the qualified names (``conv2d_1.weight``, ``batch_norm2d_1.running_mean``).
        """
        state = self.state_dict()
        with open(path, "wb") as f:
            np.savez(f, **state)

    def load(self, path: str | os.PathLike) -> "Sequential":
        """Read parameters and buffers saved by :meth:`save` into this model, in place.

        The file must hold exactly this model's names with the same shapes; nothing is changed
        unless all of them match.

        Raises:
            ValueError: a name is missing or extra, or a shape differs (both shapes are named).
        """
        state = self.state_dict()
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        missing = [k for k in state if k not in arrays]
        extra = [k for k in arrays if k not in state]
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing from the file: " + ", ".join(f"{k} {state[k].shape}" for k in missing))
            if extra:
                parts.append("in the file but not in the model: " + ", ".join(f"{k} {arrays[k].shape}" for k in extra))
            raise ValueError(f"Sequential.load({os.fspath(path)!r}): the file does not match this model; "
                             + "; ".join(parts))
        for k, target in state.items():
            if arrays[k].shape != target.shape:
                raise ValueError(f"Sequential.load({os.fspath(path)!r}): parameter {k!r} has shape "
                                 f"{target.shape} in the model but {arrays[k].shape} in the file")
        for k, target in state.items():
            target[...] = arrays[k]  # in place: optimizers keep their references
        return self

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer.name}: {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)" if lines else "Sequential()"


def _add_context(e: Exception, where: str) -> None:
    """Put ``where`` in front of the message of a plain ValueError/TypeError/RuntimeError (others,
    e.g. the reference guard's error or numpy's own, pass through unchanged)."""
    if type(e) in (ValueError, TypeError, RuntimeError) and e.args and isinstance(e.args[0], str):
        e.args = (f"{where}: {e.args[0]}",) + e.args[1:]


def _check_layers(layers) -> list[Layer]:
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(f"Sequential: layers must be a list of layers, got {type(layers).__name__}") from None
    for i, layer in enumerate(items):
        if not isinstance(layer, Layer):
            hint = (" (did you pass the class instead of an instance, e.g. ReLU instead of ReLU()?)"
                    if isinstance(layer, type) else "")
            raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a cnnlib.layers.Layer{hint}")
    ids = [id(layer) for layer in items]
    if len(set(ids)) != len(ids):
        raise ValueError("Sequential: the same layer object appears twice; create a new instance for each position")
    return items


def _example_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"summary: input_shape must be a tuple like (3, 224, 224), got {input_shape!r}") from None
    if shape and shape[0] is None:
        shape = shape[1:]
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise ValueError(f"summary: input_shape must be positive ints without the batch axis, e.g. (3, 224, 224), "
                         f"got {input_shape!r}")
    return tuple(int(d) for d in shape)


@reference
def lenet(rng: np.random.Generator | None = None, num_classes: int = 10) -> Sequential:
    """The LeNet-style network of the seeds for 1x28x28 MNIST digits.

    INPUT -> [CONV -> RELU -> POOL] * 2 -> [FC -> RELU] * 2 -> FC: 6 5x5 filters (padding 2, so a
    28x28 digit is treated like the seeds' 32x32 input), 2x2 max pool stride 2, 16 5x5 filters,
    pool, FC 120, FC 100, ``num_classes`` logits. He initialisation from ``rng``.

    Args:
        rng: ``np.random.Generator`` for the weights (default ``np.random.default_rng()``).
        num_classes: outputs of the last layer.

    Returns:
        Sequential; its input is (N, 1, 28, 28), its output the logits (N, num_classes).

    Introduced in 07_training.

    Example:
        >>> model = lenet(np.random.default_rng(0))
        >>> model.count_params()
        63802
        >>> model.output_shapes((1, 28, 28))[-1]
        (10,)
    """
    rng = np.random.default_rng() if rng is None else rng
    return Sequential([
        Conv2d(1, 6, 5, padding=2, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(16 * 5 * 5, 120, rng=rng), ReLU(),
        Linear(120, 100, rng=rng), ReLU(),
        Linear(100, num_classes, rng=rng),
    ])

"""Layer classes: stateful wrappers around the pure forward/backward pairs of ``cnnlib.functional``.

A layer holds its :class:`Parameter` objects (weights the optimizer updates), its buffers
(state that is saved but not trained, such as batch norm's running statistics), a ``training``
flag and ONE ``_cache``: ``forward(x)`` calls the functional forward and keeps the cache that
``backward(dout)`` hands back to the functional backward. This is the design of PyTorch's
``nn.Module`` (names, argument order) reduced to what a feed-forward CNN needs.

Gradients ACCUMULATE into ``Parameter.grad`` (``grad += dw``) as in PyTorch, so a training step is
``optimizer.zero_grad(); model.backward(dlogits); optimizer.step()``.

Every layer expects and returns NCHW arrays (``(N, C, H, W)``); parameters are float32 by default
and an input of another dtype is cast to the parameters' dtype (use ``layer.to(np.float64)`` for
gradient checks). Introduced in 07_training.

Example:
    >>> import numpy as np
    >>> from cnnlib.layers import Conv2d, ReLU
    >>> conv = Conv2d(1, 6, 5, padding=2, rng=np.random.default_rng(0))
    >>> out = ReLU()(conv(np.zeros((2, 1, 28, 28), np.float32)))
    >>> out.shape, out.dtype
    ((2, 6, 28, 28), dtype('float32'))
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cnnlib import functional as F

__all__ = [
    "Parameter",
    "Layer",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool2d",
    "ReLU",
    "Flatten",
    "Linear",
    "BatchNorm2d",
    "Dropout",
]


class Parameter:
    """A trainable array and its gradient.

    Attributes:
        data: the values; optimizers update it IN PLACE, so references to it stay valid.
        grad: the gradient of the loss with respect to ``data``, same shape and dtype;
            backward passes add to it, ``optimizer.zero_grad()`` resets it to zeros.
        name: ``"weight"`` or ``"bias"``, qualified by the layer name once the layer is in a
            ``Sequential`` (``"conv2d_1.weight"``); these are the keys of ``Sequential.save``.

    Example:
        >>> p = Parameter(np.ones((2, 3), np.float32), "weight")
        >>> p
        Parameter(name='weight', shape=(2, 3), dtype=float32)
        >>> p.grad.sum()
        np.float32(0.0)
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data: np.ndarray, name: str = "param"):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


def _pair(value, arg: str, layer: str) -> tuple[int, int]:
    """Normalize an int or (h, w) pair argument; reject anything else with a clear message."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{layer}: {arg} must be an int or a pair of ints (h, w), got {value!r}")


def _check_positive_int(value, arg: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{layer}: {arg} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{layer}: {arg} must be >= 1, got {value}")
    return int(value)


def _default_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def _init_weight(shape, fan_in: int, fan_out: int, init: str, rng, layer: str) -> np.ndarray:
    """He (Kaiming) normal or Glorot (Xavier) uniform initialisation, drawn in float32."""
    if init == "he":
        # He et al. 2015: std = sqrt(2 / fan_in) keeps the activations' variance constant through
        # a stack of layers each followed by ReLU (which zeroes half of them).
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / fan_in))
    if init == "glorot":
        # Glorot & Bengio 2010 (Keras' default "glorot_uniform"): U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape).astype(np.float32)
    raise ValueError(f"{layer}: init must be 'he' or 'glorot', got {init!r}")


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


class Layer:
    """Base class: parameters, buffers, train/eval mode and the one cache of the last forward.

    Subclasses implement ``_forward(x) -> (out, cache)``, ``_backward(dout, cache) -> dx`` (adding
    parameter gradients into ``.grad``), and ``output_shape(input_shape)`` for shape inference
    without running a forward (used by ``Sequential.summary``).
    """

    #: short snake_case type name used for automatic names in a Sequential (``conv2d_1``)
    kind = "layer"

    def __init__(self):
        self.training = True
        self._name = self.kind
        self._user_named = False
        self._params: dict[str, Parameter] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._cache = None
        self._out_shape: tuple[int, ...] | None = None

    # --- the pass-through API -----------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the layer's output and keep what backward needs in ``self._cache``."""
        out, self._cache = self._forward(x)
        self._out_shape = out.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Gradient with respect to the last forward's input; adds parameter gradients to ``.grad``.

        Raises:
            RuntimeError: backward is called with no forward before it (or twice after one forward).
            ValueError: ``dout`` does not have the shape of the last forward's output.
        """
        if self._out_shape is None:
            raise RuntimeError(
                f"{self!r}: backward() called before forward(); run forward(x) first "
                "(the cache of a forward is used by one backward only)"
            )
        dout = np.asarray(dout)
        if dout.shape != self._out_shape:
            raise ValueError(
                f"{self!r}: dout has shape {dout.shape} but the last forward's output has shape "
                f"{self._out_shape}"
            )
        dx = self._backward(dout, self._cache)
        self.clear_cache()  # one forward, one backward (kept if dout was refused, so it can be retried)
        return dx

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, dout, cache):  # pragma: no cover - abstract
        raise NotImplementedError

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Shape of one output example for one input example of ``input_shape`` (no batch dim)."""
        return tuple(input_shape)

    # --- parameters, buffers, modes -----------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        """The trainable parameters (what an optimizer updates)."""
        return list(self._params.values())

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return list(self._params.items())

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        """Non-trainable state that is saved with the model (batch norm's running statistics)."""
        return list(self._buffers.items())

    def num_params(self) -> tuple[int, int]:
        """(trainable, non-trainable) element counts, as Keras' summary counts them."""
        return (
            sum(p.data.size for p in self._params.values()),
            sum(b.size for b in self._buffers.values()),
        )

    def train(self, mode: bool = True) -> "Layer":
        """Switch to training mode (Dropout drops, BatchNorm uses batch statistics)."""
        self.training = bool(mode)
        return self

    def eval(self) -> "Layer":
        """Switch to evaluation mode (Dropout is the identity, BatchNorm uses running statistics)."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self._params.values():
            p.grad.fill(0)

    def to(self, dtype) -> "Layer":
        """Cast parameters, gradients and buffers to ``dtype`` (e.g. float64 for gradient checks).

        The arrays are replaced, so build the optimizer after calling this.
        """
        dtype = np.dtype(dtype)
        for p in self._params.values():
            p.data = p.data.astype(dtype)
            p.grad = p.grad.astype(dtype)
        for k, b in self._buffers.items():
            self._buffers[k] = b.astype(dtype)
        return self

    @property
    def name(self) -> str:
        """The layer's name: ``conv2d`` alone, ``conv2d_1`` etc. once in a Sequential, or one you set.

        It qualifies the parameters' names (``conv2d_1.weight``), which are the keys of saved files.
        """
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise TypeError(f"{type(self).__name__}: name must be a non-empty str, got {value!r}")
        self._set_name(value)
        self._user_named = True

    def _set_name(self, name: str) -> None:
        self._name = name
        for key, p in self._params.items():
            p.name = f"{name}.{key}"

    def clear_cache(self) -> None:
        """Forget the last forward (frees its cache); a backward now needs a new forward."""
        self._cache = None
        self._out_shape = None

    def _add_param(self, key: str, data: np.ndarray) -> Parameter:
        p = Parameter(data, f"{self.name}.{key}")
        self._params[key] = p
        return p

    def _input(self, x, ndim: int | None, channels: int | None = None, expect: str = "") -> np.ndarray:
        """Check the input's type, ndim and channel count; cast it to the parameters' dtype."""
        if not isinstance(x, np.ndarray):
            if isinstance(x, (list, tuple)) or np.isscalar(x):
                x = np.asarray(x)
            else:
                raise TypeError(f"{self!r}: x must be a numpy array, got {type(x).__name__}")
        if x.dtype.kind not in "biuf":
            # Casting below would drop imaginary parts silently or fail inside numpy.
            raise TypeError(f"{self!r}: x must hold real numbers, got dtype {x.dtype} (x {x.shape})")
        if ndim is not None and x.ndim != ndim:
            hint = ""
            if ndim == 2 and x.ndim == 4:
                hint = "; put a Flatten() before it"
            elif ndim == 4 and x.ndim == 3:
                hint = "; add the batch axis with x[None] for a single image"
            raise ValueError(f"{self!r}: expected input {expect} ({ndim}-D), got x with shape {x.shape}{hint}")
        if channels is not None and x.shape[1] != channels:
            raise ValueError(f"{self!r}: expected input {expect}, got x with shape {x.shape}")
        if self._params:
            dtype = next(iter(self._params.values())).data.dtype
            if x.dtype != dtype:
                x = x.astype(dtype)
        elif not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        return x

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class Conv2d(Layer):
    """2-D convolution (cross-correlation) over NCHW input; Keras' ``Conv2D``.

    Args:
        in_channels: C, channels of the input.
        out_channels: F, number of filters (channels of the output).
        kernel_size: KH = KW, or a pair (KH, KW).
        stride: int or (sh, sw), >= 1.
        padding: int or (ph, pw) zeros added on each side, >= 0.
        rng: ``np.random.Generator`` for the initial weights (default ``np.random.default_rng()``).
        init: ``"he"`` (default: normal with std sqrt(2 / (C*KH*KW)), right for a conv followed by
            ReLU) or ``"glorot"`` (Keras' default, uniform).
        bias: whether to learn a bias (default True); the bias starts at zero.

    Attributes:
        needs_input_grad: True (default): ``backward`` returns dx. False: ``backward`` skips dx
            and returns None (weights' gradients unchanged). Nothing uses the gradient with
            respect to a network's input images, and it costs as much as the weights' gradient,
            so ``cnnlib.train.fit`` sets it to False on the model's first layer while it trains.

    Parameters: ``weight`` (F, C, KH, KW), ``bias`` (F,): F*C*KH*KW + F numbers,
    (2*2*3 + 1) * 16 = 208 for the seed's first Keras layer.

    Shape:
        input (N, C, H, W) -> output (N, F, H_out, W_out) with
        H_out = (H + 2*ph - KH) // sh + 1, W_out = (W + 2*pw - KW) // sw + 1.

    Example:
        >>> conv = Conv2d(3, 16, 2, rng=np.random.default_rng(0))
        >>> conv.weight.shape, conv.output_shape((3, 224, 224))
        ((16, 3, 2, 2), (16, 223, 223))
    """

    kind = "conv2d"

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, rng=None,
                 *, init: str = "he", bias: bool = True):
        super().__init__()
        layer = "Conv2d"
        self.in_channels = _check_positive_int(in_channels, "in_channels", layer)
        self.out_channels = _check_positive_int(out_channels, "out_channels", layer)
        self.kernel_size = _pair(kernel_size, "kernel_size", layer)
        self.stride = _pair(stride, "stride", layer)
        self.padding = _pair(padding, "padding", layer)
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"{layer}: kernel_size and stride must be >= 1, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}")
        if min(self.padding) < 0:
            raise ValueError(f"{layer}: padding must be >= 0, got {self.padding}")
        kh, kw = self.kernel_size
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        rng = _default_rng(rng)
        self.weight = self._add_param(
            "weight", _init_weight((self.out_channels, self.in_channels, kh, kw), fan_in, fan_out, init, rng, layer)
        )
        self.bias = self._add_param("bias", np.zeros(self.out_channels, np.float32)) if bias else None
        self.needs_input_grad = True

    def _forward(self, x):
        x = self._input(x, 4, self.in_channels, f"(N, {self.in_channels}, H, W)")
        b = self.bias.data if self.bias is not None else None
        return F.conv2d_forward(x, self.weight.data, b, self.stride, self.padding)

    def _backward(self, dout, cache):
        dx, dw, db = F.conv2d_backward(dout, cache, need_dx=bool(self.needs_input_grad))
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        c, h, w = _expect_chw(self, input_shape, self.in_channels)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if h + 2 * ph < kh or w + 2 * pw < kw:
            raise ValueError(f"{self!r}: kernel {self.kernel_size} is larger than the padded input "
                             f"({h + 2 * ph}, {w + 2 * pw}) for input shape {_shape_str((None, c, h, w))}")
        return (self.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={_fmt_pair(self.kernel_size)}"
        if self.stride != (1, 1):
            s += f", stride={_fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={_fmt_pair(self.padding)}"
        if self.bias is None:
            s += ", bias=False"
        return s


def _fmt_pair(p):
    return str(p[0]) if p[0] == p[1] else str(p)


def _expect_chw(layer: Layer, input_shape, channels: int | None = None):
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"{layer!r}: expects (C, H, W) examples, got input shape {_shape_str((None,) + shape)}")
    if channels is not None and shape[0] != channels:
        raise ValueError(f"{layer!r}: expects {channels} input channels, got input shape "
                         f"{_shape_str((None,) + shape)}")
    return shape


class _Pool2d(Layer):
    """Shared argument handling and shape inference of MaxPool2d and AvgPool2d."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        layer = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", layer)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", layer)
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"{layer}: kernel_size and stride must be >= 1, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}")

    def output_shape(self, input_shape):
        c, h, w = _expect_chw(self, input_shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if h < kh or w < kw:
            raise ValueError(f"{self!r}: window {self.kernel_size} does not fit input shape "
                             f"{_shape_str((None, c, h, w))}")
        return (c, (h - kh) // sh + 1, (w - kw) // sw + 1)

    _ops: tuple  # (functional forward, functional backward), set by each subclass

    def _forward(self, x):
        x = self._input(x, 4, None, "(N, C, H, W)")
        return self._ops[0](x, self.kernel_size, self.stride)

    def _backward(self, dout, cache):
        return self._ops[1](dout, cache)

    def extra_repr(self):
        s = f"kernel_size={_fmt_pair(self.kernel_size)}"
        if self.stride != self.kernel_size:
            s += f", stride={_fmt_pair(self.stride)}"
        return s


class MaxPool2d(_Pool2d):
    """Max pooling over KH x KW windows; Keras' ``MaxPooling2D``. No parameters.

    Args:
        kernel_size: window size, int or (KH, KW).
        stride: int or (sh, sw); defaults to ``kernel_size`` (non-overlapping windows).

    Shape:
        (N, C, H, W) -> (N, C, (H - KH) // sh + 1, (W - KW) // sw + 1); depth is unchanged
        (224x224x64 -> 112x112x64 with a 2x2 window, stride 2).

    Example:
        >>> MaxPool2d(2).output_shape((64, 224, 224))
        (64, 112, 112)
    """

    kind = "max_pool2d"
    _ops = (F.max_pool2d_forward, F.max_pool2d_backward)


class AvgPool2d(_Pool2d):
    """Average (mean) pooling over KH x KW windows; Keras' ``AveragePooling2D``. No parameters.

    Same arguments and shapes as :class:`MaxPool2d`.

    Example:
        >>> AvgPool2d(3, stride=1).output_shape((8, 99, 99))
        (8, 97, 97)
    """

    kind = "avg_pool2d"
    _ops = (F.avg_pool2d_forward, F.avg_pool2d_backward)


class GlobalAvgPool2d(Layer):
    """Mean over each channel's whole H x W map; Keras' ``GlobalAveragePooling2D``.

    Shape:
        (N, C, H, W) -> (N, C). No parameters, so a classifier after it is small (the seed's
        Dense(133) on 64 channels has 64*133 + 133 = 8,645 parameters).

    Example:
        >>> GlobalAvgPool2d().output_shape((64, 27, 27))
        (64,)
    """

    kind = "global_avg_pool2d"

    def _forward(self, x):
        x = self._input(x, 4, None, "(N, C, H, W)")
        return F.global_avg_pool2d_forward(x)

    def _backward(self, dout, cache):
        return F.global_avg_pool2d_backward(dout, cache)

    def output_shape(self, input_shape):
        c, _, _ = _expect_chw(self, input_shape)
        return (c,)


class ReLU(Layer):
    """Rectified linear unit, max(x, 0), elementwise; any input shape.

    Example:
        >>> ReLU()(np.array([[-1.0, 2.0]], np.float32))
        array([[0., 2.]], dtype=float32)
    """

    kind = "relu"

    def _forward(self, x):
        return F.relu_forward(self._input(x, None))

    def _backward(self, dout, cache):
        return F.relu_backward(dout, cache)


class Flatten(Layer):
    """Flatten every example to a vector, keeping the batch axis: (N, C, H, W) -> (N, C*H*W).

    The bridge from the convolutional part to the fully connected classifier (seed 000:
    32x32x10 -> 10,240 features). A view, not a copy, when the input is contiguous.

    Example:
        >>> Flatten().output_shape((10, 32, 32))
        (10240,)
    """

    kind = "flatten"

    def _forward(self, x):
        x = self._input(x, None)
        if x.ndim < 2:
            raise ValueError(f"{self!r}: expected a batch (N, ...) with at least 2 dimensions, got x with shape {x.shape}")
        return F.flatten_forward(x)

    def _backward(self, dout, cache):
        return F.flatten_backward(dout, cache)

    def output_shape(self, input_shape):
        return (int(np.prod(tuple(input_shape), dtype=np.int64)),)


class Linear(Layer):
    """Fully connected layer ``y = x @ weight + bias``; Keras' ``Dense``.

    Args:
        in_features: D_in, features of each input example.
        out_features: D_out.
        rng: ``np.random.Generator`` for the initial weights (default ``np.random.default_rng()``).
        init: ``"he"`` (default: normal with std sqrt(2 / D_in), right when ReLU follows) or
            ``"glorot"`` (Keras' default, uniform).
        bias: whether to learn a bias (default True); it starts at zero.

    Parameters: ``weight`` (D_in, D_out) -- note: the transpose of PyTorch's layout, as in
    ``cnnlib.functional.linear_forward`` -- and ``bias`` (D_out,): D_in*D_out + D_out numbers.

    Shape:
        (N, D_in) -> (N, D_out).

    Example:
        >>> fc = Linear(64, 133, rng=np.random.default_rng(0))
        >>> fc.weight.shape, fc.num_params()
        ((64, 133), (8645, 0))
    """

    kind = "linear"

    def __init__(self, in_features: int, out_features: int, rng=None, *, init: str = "he", bias: bool = True):
        super().__init__()
        self.in_features = _check_positive_int(in_features, "in_features", "Linear")
        self.out_features = _check_positive_int(out_features, "out_features", "Linear")
        rng = _default_rng(rng)
        self.weight = self._add_param(
            "weight",
            _init_weight((self.in_features, self.out_features), self.in_features, self.out_features, init, rng, "Linear"),
        )
        self.bias = self._add_param("bias", np.zeros(self.out_features, np.float32)) if bias else None

    def _forward(self, x):
        x = self._input(x, 2, self.in_features, f"(N, {self.in_features})")
        b = self.bias.data if self.bias is not None else None
        return F.linear_forward(x, self.weight.data, b)

    def _backward(self, dout, cache):
        dx, dw, db = F.linear_backward(dout, cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        if shape != (self.in_features,):
            hint = "; put a Flatten() before it" if len(shape) > 1 else ""
            raise ValueError(f"{self!r}: expects input shape (N, {self.in_features}), got "
                             f"{_shape_str((None,) + shape)}{hint}")
        return (self.out_features,)

    def extra_repr(self):
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        return s + (", bias=False" if self.bias is None else "")


class BatchNorm2d(Layer):
    """Spatial batch normalization: per channel over (N, H, W); Keras' ``BatchNormalization``.

    In training mode each channel is normalized with the batch's mean and (biased) variance and
    the running estimates are updated in place, ``running = (1 - momentum) * running + momentum *
    batch_stat`` (unbiased variance in the estimate, as PyTorch); in eval mode the running
    estimates are used. Then ``out = weight * x_hat + bias`` (gamma and beta).

    Args:
        num_features: C.
        momentum: weight of the new batch in the running estimates (PyTorch's convention).
        eps: added to the variance for numerical stability.

    Parameters: ``weight`` (gamma, ones) and ``bias`` (beta, zeros), each (C,): trainable.
    Buffers: ``running_mean`` (zeros) and ``running_var`` (ones), each (C,): saved with the model
    and counted as "Non-trainable params" by ``Sequential.summary``, like Keras.

    Shape:
        (N, C, H, W) -> (N, C, H, W).

    Example:
        >>> bn = BatchNorm2d(16)
        >>> bn.num_params()
        (32, 32)
    """

    kind = "batch_norm2d"

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.num_features = _check_positive_int(num_features, "num_features", "BatchNorm2d")
        for arg, value in (("momentum", momentum), ("eps", eps)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise TypeError(f"BatchNorm2d: {arg} must be a number, got {value!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1], got {momentum}")
        if not eps > 0:
            raise ValueError(f"BatchNorm2d: eps must be > 0, got {eps}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.weight = self._add_param("weight", np.ones(self.num_features, np.float32))
        self.bias = self._add_param("bias", np.zeros(self.num_features, np.float32))
        self._buffers["running_mean"] = np.zeros(self.num_features, np.float32)
        self._buffers["running_var"] = np.ones(self.num_features, np.float32)

    @property
    def running_mean(self) -> np.ndarray:
        return self._buffers["running_mean"]

    @property
    def running_var(self) -> np.ndarray:
        return self._buffers["running_var"]

    def _forward(self, x):
        x = self._input(x, 4, self.num_features, f"(N, {self.num_features}, H, W)")
        return F.batchnorm2d_forward(
            x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
            self.training, momentum=self.momentum, eps=self.eps,
        )

    def _backward(self, dout, cache):
        dx, dgamma, dbeta = F.batchnorm2d_backward(dout, cache)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        return dx

    def output_shape(self, input_shape):
        return _expect_chw(self, input_shape, self.num_features)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"


class Dropout(Layer):
    """Inverted dropout: in training, zero each activation with probability p and scale the rest
    by 1 / (1 - p); in eval mode, the identity. Any input shape.

    Args:
        p: drop probability, 0 <= p <= 1.
        rng: ``np.random.Generator`` drawing the masks (default ``np.random.default_rng()``).

    Example:
        >>> drop = Dropout(0.5, rng=np.random.default_rng(0)).eval()
        >>> drop(np.ones((1, 4), np.float32))
        array([[1., 1., 1., 1.]], dtype=float32)
    """

    kind = "dropout"

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
            raise TypeError(f"Dropout: p must be a float in [0, 1], got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = _default_rng(rng)

    def _forward(self, x):
        return F.dropout_forward(self._input(x, None), self.p, self.training, self.rng)

    def _backward(self, dout, cache):
        return F.dropout_backward(dout, cache)

    def extra_repr(self):
        return f"p={self.p:g}"


# --- residual block (added with notebook 08) ------------------------------------------------------

def _is_module(obj) -> bool:
    """A Layer, or a Sequential (duck-typed: cnnlib.model imports this module)."""
    return isinstance(obj, Layer) or (hasattr(obj, "layers") and hasattr(obj, "output_shapes")
                                      and callable(getattr(obj, "backward", None)))


def _module_output_shape(module, input_shape) -> tuple[int, ...]:
    if isinstance(module, Layer):
        return tuple(int(d) for d in module.output_shape(input_shape))
    shapes = module.output_shapes(input_shape)
    return tuple(shapes[-1]) if shapes else tuple(input_shape)


def _module_params(module) -> list[tuple[str, Parameter]]:
    """(name inside the module, Parameter): ``weight`` for a layer, ``conv2d_1.weight`` for a Sequential."""
    if isinstance(module, Layer):
        return module.named_parameters()
    return [(p.name, p) for p in module.parameters()]


def _module_children(module) -> list[tuple[str, "Layer"]]:
    """The layers of a module as (name inside it, layer), for Sequential.summary's indented rows."""
    if isinstance(module, Layer):
        return [("", module)]
    return [(layer.name, layer) for layer in module.layers]


class Residual(Layer):
    """A residual block: ``out = ReLU(block(x) + shortcut(x))`` (He et al. 2015, ResNet).

    The block learns the *residual* F(x) = H(x) - x on top of the skip connection, so a block whose
    weights are zero is ReLU(x): a deep stack of such blocks can start close to the identity, and
    in the backward pass the gradient reaches the input through the skip path undiminished
    (``dx = dblock_dx(ds) + dshortcut_dx(ds)``, with ``ds = dout * (block(x) + shortcut(x) > 0)``).

    Args:
        block: a layer or a ``Sequential`` computing F(x), e.g. ``Sequential([Conv2d(C, C, 3,
            padding=1, bias=False), BatchNorm2d(C), ReLU(), Conv2d(C, C, 3, padding=1, bias=False),
            BatchNorm2d(C)])`` (ResNet's basic block; a list of layers is made a ``Sequential``).
        shortcut: ``None`` for the identity (the block must keep the shape), or a layer (or
            ``Sequential``) mapping x to the block's output shape: ResNet's projection is a 1x1
            ``Conv2d(C_in, C_out, 1, stride=s, bias=False)`` (with a ``BatchNorm2d``) when the
            block changes the channels or the resolution (PyTorch's ``downsample``).

    Parameters: the block's, then the shortcut's, named ``<name>.block.<inner name>`` and
    ``<name>.shortcut.<inner name>`` (``residual_1.block.conv2d_1.weight``); these are the keys of
    ``Sequential.save``. ``train()``/``eval()`` reach every inner layer. ``Sequential.summary``
    shows one row for the block with its total, followed by indented rows for its inner layers.

    Shape:
        (N, C, H, W) -> block's output shape (N, C_out, H_out, W_out), which the shortcut's output
        shape must equal (for the identity: C_out = C, H_out = H, W_out = W).

    Raises:
        ValueError: the block's and the shortcut's output shapes differ (both are named), in
            ``forward`` or in ``output_shape``/``summary``.

    Introduced in 08_architectures.

    Example:
        >>> from cnnlib.model import Sequential
        >>> rng = np.random.default_rng(0)
        >>> down = Residual(Sequential([Conv2d(8, 16, 3, stride=2, padding=1, rng=rng), ReLU(),
        ...                             Conv2d(16, 16, 3, padding=1, rng=rng)]),
        ...                 shortcut=Conv2d(8, 16, 1, stride=2, rng=rng))
        >>> down.output_shape((8, 14, 14)), down.num_params()
        ((16, 7, 7), (3632, 0))
        >>> zero = Residual(Conv2d(2, 2, 3, padding=1, rng=rng))
        >>> zero.block.weight.data[...] = 0                  # F(x) = 0: the block is ReLU(x)
        >>> x = np.array([-1.0, 2.0], np.float32).reshape(1, 2, 1, 1)
        >>> zero(x).ravel()
        array([0., 2.], dtype=float32)
    """

    kind = "residual"

    def __init__(self, block, shortcut=None):
        super().__init__()
        if isinstance(block, (list, tuple)):
            from cnnlib.model import Sequential  # cnnlib.model imports this module

            block = Sequential(block)
        for arg, module in (("block", block), ("shortcut", shortcut)):
            if module is None and arg == "shortcut":
                continue
            if not _is_module(module):
                hint = (" (did you pass the class instead of an instance?)" if isinstance(module, type) else "")
                raise TypeError(f"Residual: {arg} must be a cnnlib layer or Sequential, got "
                                f"{type(module).__name__}{hint}")
        if shortcut is not None:
            inner = {id(layer) for _, layer in _module_children(block)}
            if inner & {id(layer) for _, layer in _module_children(shortcut)} or shortcut is block:
                raise ValueError("Residual: the block and the shortcut share a layer; give the shortcut its own layer")
        self.block = block
        self.shortcut = shortcut
        # names inside each part, captured before they are qualified by this block's name
        self._inner = ([("block." + n, p) for n, p in _module_params(block)]
                       + ([("shortcut." + n, p) for n, p in _module_params(shortcut)] if shortcut is not None else []))
        self._set_name(self._name)

    # --- parameters, buffers, modes: those of the parts -----------------------------------------
    def parameters(self) -> list[Parameter]:
        return [p for _, p in self._inner]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return list(self._inner)

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        out = []
        for part, module in (("block", self.block), ("shortcut", self.shortcut)):
            if module is not None:
                out += [(f"{part}.{k}", b) for k, b in module.named_buffers()]
        return out

    def num_params(self) -> tuple[int, int]:
        return (sum(p.data.size for _, p in self._inner), sum(b.size for _, b in self.named_buffers()))

    def _parts(self):
        return [m for m in (self.block, self.shortcut) if m is not None]

    def train(self, mode: bool = True) -> "Residual":
        self.training = bool(mode)
        for module in self._parts():
            module.train(mode)
        return self

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0)

    def to(self, dtype) -> "Residual":
        for module in self._parts():
            module.to(dtype)
        return self

    def clear_cache(self) -> None:
        super().clear_cache()
        for module in self._parts():
            module.clear_cache()

    def _set_name(self, name: str) -> None:
        self._name = name
        for inner, p in getattr(self, "_inner", ()):
            p.name = f"{name}.{inner}"

    # --- forward / backward ------------------------------------------------------------------------
    def _mismatch(self, block_shape, skip_shape, batch: bool) -> ValueError:
        show = (lambda s: _shape_str(s)) if batch else (lambda s: _shape_str((None,) + tuple(s)))
        what = (f"the shortcut's output {show(skip_shape)}" if self.shortcut is not None
                else f"the identity shortcut's output (x itself) {show(skip_shape)}")
        fix = ("give the shortcut the block's stride and output channels (a 1x1 Conv2d, as in ResNet)"
               if self.shortcut is not None else
               "when the block changes the channels or the size, pass shortcut=Conv2d(C_in, C_out, 1, "
               "stride=s) as in ResNet")
        return ValueError(f"{self!r}: the block's output {show(block_shape)} and {what} must have the "
                          f"same shape to be added; {fix}")

    def _forward(self, x):
        x = self._input(x, None)
        params = self.parameters()
        if params and x.dtype != params[0].data.dtype:
            x = x.astype(params[0].data.dtype)
        fx = self.block.forward(x)
        sx = x if self.shortcut is None else self.shortcut.forward(x)
        if fx.shape != sx.shape:
            for module in self._parts():
                module.clear_cache()
            raise self._mismatch(fx.shape, sx.shape, batch=True)
        out, relu_cache = F.relu_forward(fx + sx)
        return out, relu_cache

    def _backward(self, dout, cache):
        ds = F.relu_backward(dout, cache)  # the ReLU after the addition
        dx = self.block.backward(ds)
        # the skip path: the identity passes ds on unchanged
        return dx + (ds if self.shortcut is None else self.shortcut.backward(ds))

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        block_shape = _module_output_shape(self.block, shape)
        skip_shape = shape if self.shortcut is None else _module_output_shape(self.shortcut, shape)
        if block_shape != skip_shape:
            raise self._mismatch(block_shape, skip_shape, batch=False)
        return block_shape

    def summary_rows(self, input_shape) -> list[tuple[str, tuple[int, ...], int]]:
        """(name, output shape, param count) of each inner layer, for ``Sequential.summary``."""
        rows = []
        for part, module in (("block", self.block), ("shortcut", self.shortcut)):
            if module is None:
                rows.append(("shortcut (identity)", tuple(input_shape), 0))
                continue
            shape = tuple(input_shape)
            for inner, layer in _module_children(module):
                shape = tuple(int(d) for d in layer.output_shape(shape))
                label = f"{part}.{inner}" if inner else part
                rows.append((f"{label} ({type(layer).__name__})", shape, sum(layer.num_params())))
        return rows

    def extra_repr(self):
        def show(module):
            if isinstance(module, Layer):
                return repr(module)
            return "[" + ", ".join(repr(layer) for layer in module.layers) + "]"

        s = show(self.block)
        return s + (f", shortcut={show(self.shortcut)}" if self.shortcut is not None else "")


__all__.append("Residual")

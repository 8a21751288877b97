"""Shape and parameter arithmetic: output sizes, parameter counts, receptive fields.

Pure integer formulas, so a network can be planned (and a learner's answer checked) without
building it. Arguments must be Python or numpy ints (bools are refused); kernel sizes accept an
int or a (kh, kw) pair.
"""

from __future__ import annotations

from typing import Iterable

from cnnlib.grading.guard import reference
from cnnlib.functional import _is_int, _pair

__all__ = [
    "conv_output_size",
    "conv2d_params",
    "linear_params",
    "locally_connected_params",
    "receptive_field",
]


def _int(op: str, name: str, value, minimum: int) -> int:
    if not _is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    return int(value)


def _bool(op: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{op}: bias must be True or False, got {value!r}")
    return value


@reference
def conv_output_size(n, kernel_size, stride=1, padding=0) -> int:
    """Output size of a convolution or pooling along one axis, with floor.

    ``n_out = (n - kernel_size + 2*padding) // stride + 1``: the seed's H2 = (H1 - F + 2P)/S + 1,
    rounded down when the last window would run off the edge.

    Args:
        n: input size (height or width), >= 1.
        kernel_size: window size F, >= 1.
        stride: step S, >= 1.
        padding: zeros added on each side P, >= 0.

    Returns:
        n_out: int >= 1.

    Raises:
        ValueError: if the window does not fit in the padded input (n + 2*padding < kernel_size).

    Shape:
        n_out = (n - kernel_size + 2*padding) // stride + 1

    Example:
        The seed's 200x200 image: 5x5 conv with P=1, S=2, then 3x3 pooling with S=1, then a
        3x3 conv with P=1:

        >>> conv_output_size(200, 5, stride=2, padding=1)  # (200 - 5 + 2) / 2 + 1 = 99.5 -> 99
        99
        >>> conv_output_size(99, 3, stride=1)
        97
        >>> conv_output_size(97, 3, stride=1, padding=1)
        97

    Introduced in 02_padding_and_stride.
    """
    op = "conv_output_size"
    n = _int(op, "n", n, 1)
    k = _int(op, "kernel_size", kernel_size, 1)
    s = _int(op, "stride", stride, 1)
    p = _int(op, "padding", padding, 0)
    if n + 2 * p < k:
        raise ValueError(f"{op}: a {k}-wide window does not fit in an input of size {n} padded by {p} ({n + 2 * p})")
    return (n - k + 2 * p) // s + 1


@reference
def conv2d_params(in_channels, out_channels, kernel_size, bias=True) -> int:
    """Number of trainable parameters of a 2-D convolution layer.

    Each of the C_out filters has KH*KW*C_in weights plus one bias: ``(KH*KW*C_in + 1) * C_out``
    (the ``Param #`` column of Keras' ``model.summary()`` for ``Conv2D``).

    Args:
        in_channels: C_in, the input depth.
        out_channels: C_out, the number of filters.
        kernel_size: int or (kh, kw).
        bias: whether each filter has a bias.

    Returns:
        count: int.

    Shape:
        count = (kh*kw*in_channels + bias) * out_channels

    Example:
        The seed's Keras model on 224x224x3 images (three 2x2 convs: 16, 32, 64 filters):

        >>> conv2d_params(3, 16, 2), conv2d_params(16, 32, 2), conv2d_params(32, 64, 2)
        (208, 2080, 8256)
        >>> conv2d_params(100, 20, 1)  # a 1x1 conv: 500x500x100 -> 500x500x20
        2020

    Introduced in 03_conv_layer.
    """
    op = "conv2d_params"
    c_in = _int(op, "in_channels", in_channels, 1)
    c_out = _int(op, "out_channels", out_channels, 1)
    kh, kw = _pair(op, "kernel_size", kernel_size, 1)
    return (kh * kw * c_in + int(_bool(op, bias))) * c_out


@reference
def linear_params(in_features, out_features, bias=True) -> int:
    """Number of trainable parameters of a fully connected (Dense / Linear) layer.

    Args:
        in_features: inputs per example.
        out_features: outputs per example.
        bias: whether each output has a bias.

    Returns:
        count: int, ``(in_features + bias) * out_features``.

    Shape:
        count = (in_features + bias) * out_features

    Example:
        The seed's Keras model ends with Dense(133) after global average pooling of 64 maps,
        and the whole model has 208 + 2080 + 8256 + 8645 = 19,189 parameters:

        >>> linear_params(64, 133)
        8645
        >>> conv2d_params(3, 16, 2) + conv2d_params(16, 32, 2) + conv2d_params(32, 64, 2) + linear_params(64, 133)
        19189

    Introduced in 03_conv_layer.
    """
    op = "linear_params"
    i = _int(op, "in_features", in_features, 1)
    o = _int(op, "out_features", out_features, 1)
    return (i + int(_bool(op, bias))) * o


@reference
def locally_connected_params(in_channels, out_channels, kernel_size, output_size, bias=True) -> int:
    """Number of parameters of a locally connected layer: a conv WITHOUT weight sharing.

    Every output position has its own filters, so the count is that of a conv layer multiplied
    by the number of output positions: ``Ho*Wo * C_out * (kh*kw*C_in + bias)`` (Keras 2's
    ``LocallyConnected2D``, whose biases are per position too).

    Args:
        in_channels: C_in.
        out_channels: C_out, filters per position.
        kernel_size: int or (kh, kw).
        output_size: int or (Ho, Wo): the number of output positions along each axis.
        bias: whether each filter at each position has a bias.

    Returns:
        count: int.

    Shape:
        count = Ho*Wo * out_channels * (kh*kw*in_channels + bias)

    Example:
        Seed 003: a 32x32 single-channel image, 5 filters of 3x3. A conv layer learns
        5*3*3 = 45 weights; a locally connected layer with an output per pixel learns
        32*32*5*3*3 = 46,080 (the article writes the product as 32*32*5*3, dropping a 3,
        but its total 46,080 is the full product):

        >>> conv2d_params(1, 5, 3, bias=False)
        45
        >>> locally_connected_params(1, 5, 3, output_size=32, bias=False)
        46080

    Introduced in 03_conv_layer.
    """
    op = "locally_connected_params"
    c_in = _int(op, "in_channels", in_channels, 1)
    c_out = _int(op, "out_channels", out_channels, 1)
    kh, kw = _pair(op, "kernel_size", kernel_size, 1)
    ho, wo = _pair(op, "output_size", output_size, 1)
    return ho * wo * c_out * (kh * kw * c_in + int(_bool(op, bias)))


@reference
def receptive_field(layers: Iterable) -> int:
    """Receptive field of a stack of conv/pool layers: how many input pixels one output sees.

    Walking from the input: ``r = 1, j = 1``; for each layer (k, s): ``r += (k - 1) * j`` and
    ``j *= s`` (j is the distance in input pixels between neighbouring outputs). Padding does not
    change the size of the field.

    Args:
        layers: sequence of (kernel_size, stride) pairs of ints, input side first.

    Returns:
        size: int, the receptive field along one axis.

    Shape:
        r = 1 + sum over layers l of (k_l - 1) * (s_1 * ... * s_(l-1))

    Example:
        Two stacked 3x3 convs see 5x5, three see 7x7 (with fewer parameters than one big kernel):

        >>> receptive_field([(3, 1), (3, 1)])
        5
        >>> receptive_field([(3, 1), (3, 1), (3, 1)])
        7
        >>> receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)])  # LeNet: conv, pool, conv, pool
        16

    Introduced in 08_architectures.
    """
    op = "receptive_field"
    try:
        layers = list(layers)
    except TypeError:
        raise TypeError(f"{op}: layers must be a sequence of (kernel_size, stride) pairs, got {type(layers).__name__}") from None
    r, jump = 1, 1
    for i, layer in enumerate(layers):
        if not (isinstance(layer, (tuple, list)) and len(layer) == 2):
            raise TypeError(f"{op}: layer {i} must be a (kernel_size, stride) pair, got {layer!r}")
        k = _int(op, f"kernel_size of layer {i}", layer[0], 1)
        s = _int(op, f"stride of layer {i}", layer[1], 1)
        r += (k - 1) * jump
        jump *= s
    return r

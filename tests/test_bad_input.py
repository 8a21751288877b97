"""Bad input raises ValueError/TypeError that names the function, the argument and the shapes.

Never an IndexError or a numpy broadcasting error from deep inside, never a silent answer.
Each case: the call, the exception type, and fragments the message must contain.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import functional as F
from cnnlib import gradcheck, kernels, losses, shapes

x4 = np.zeros((8, 1, 28, 28))
w4 = np.zeros((6, 3, 5, 5))
xs = np.zeros((2, 3, 8, 8))
ws = np.zeros((4, 3, 3, 3))
b4 = np.zeros(4)


def conv(**overrides):
    args = dict(x=xs, w=ws, b=b4, stride=1, padding=0) | overrides
    return lambda: F.conv2d_forward(args["x"], args["w"], args["b"], args["stride"], args["padding"])


def bn(training=True, **overrides):
    args = dict(x=xs, gamma=np.ones(3), beta=np.zeros(3), running_mean=np.zeros(3), running_var=np.ones(3)) | overrides
    return lambda: F.batchnorm2d_forward(**args, training=training)


_, conv_cache = F.conv2d_forward(xs, ws, b4)
_, pool_cache = F.max_pool2d_forward(xs, 2)
_, avg_cache = F.avg_pool2d_forward(xs, 2)
_, gap_cache = F.global_avg_pool2d_forward(xs)
_, relu_cache = F.relu_forward(xs)
_, linear_cache = F.linear_forward(np.zeros((2, 5)), np.zeros((5, 3)), np.zeros(3))
_, flat_cache = F.flatten_forward(xs)
_, bn_cache = F.batchnorm2d_forward(xs, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True)
_, drop_cache = F.dropout_forward(xs, 0.5, True, np.random.default_rng(0))

CASES = {
    # --- the DESIGN.md example, word for word
    "channel mismatch": (
        lambda: F.conv2d_forward(x4, w4, np.zeros(6)), ValueError,
        ["conv2d_forward: x has 1 channel but w expects 3 (x (8, 1, 28, 28), w (6, 3, 5, 5))"],
    ),
    # --- wrong number of axes
    "conv x 3-D": (conv(x=np.zeros((3, 8, 8))), ValueError, ["conv2d_forward", "x must be 4-D", "(3, 8, 8)"]),
    "conv w 2-D": (conv(w=np.zeros((3, 3))), ValueError, ["conv2d_forward", "w must be 4-D", "(3, 3)"]),
    "pool x 2-D": (lambda: F.max_pool2d_forward(np.zeros((8, 8)), 2), ValueError, ["max_pool2d_forward", "(8, 8)"]),
    "avg pool x 5-D": (lambda: F.avg_pool2d_forward(np.zeros((1, 1, 1, 4, 4)), 2), ValueError, ["avg_pool2d_forward", "(1, 1, 1, 4, 4)"]),
    "global pool x 3-D": (lambda: F.global_avg_pool2d_forward(np.zeros((2, 3, 4))), ValueError, ["global_avg_pool2d_forward", "(2, 3, 4)"]),
    "linear x 4-D": (lambda: F.linear_forward(xs, np.zeros((192, 3)), None), ValueError, ["linear_forward", "(2, 3, 8, 8)", "(N, in_features)"]),
    "bn x 2-D": (bn(x=np.zeros((4, 3))), ValueError, ["batchnorm2d_forward", "(4, 3)"]),
    "pad2d 1-D": (lambda: F.pad2d(np.zeros(5), 1), ValueError, ["pad2d", "(5,)"]),
    "softmax CE logits 1-D": (lambda: losses.softmax_cross_entropy(np.zeros(4), np.array([1])), ValueError, ["softmax_cross_entropy", "(4,)"]),
    # --- mismatched sizes
    "conv bias length": (conv(b=np.zeros(3)), ValueError, ["conv2d_forward", "b must have shape (4,)", "(3,)", "w (4, 3, 3, 3)"]),
    "conv bias 2-D": (conv(b=np.zeros((4, 1))), ValueError, ["conv2d_forward", "b must have shape (4,)", "(4, 1)"]),
    "linear features": (
        lambda: F.linear_forward(np.zeros((2, 5)), np.zeros((4, 3)), None), ValueError,
        ["linear_forward", "x has 5 features but w expects 4", "x (2, 5), w (4, 3)"],
    ),
    "linear bias": (lambda: F.linear_forward(np.zeros((2, 5)), np.zeros((5, 3)), np.zeros(5)), ValueError, ["linear_forward", "(3,)", "(5,)"]),
    "bn gamma": (bn(gamma=np.ones(4)), ValueError, ["batchnorm2d_forward", "gamma", "(3,)", "(4,)", "(2, 3, 8, 8)"]),
    "bn running_var": (bn(training=False, running_var=np.ones(2)), ValueError, ["batchnorm2d_forward", "running_var", "(2,)"]),
    "softmax CE labels": (lambda: losses.softmax_cross_entropy(np.zeros((3, 4)), np.array([0, 1])), ValueError, ["softmax_cross_entropy", "(3, 4)", "(2,)"]),
    "squared error shapes": (lambda: losses.squared_error(np.zeros((2, 4)), np.zeros((2, 3))), ValueError, ["squared_error", "(2, 4)", "(2, 3)"]),
    # --- stride, padding, kernel_size
    "stride 0": (conv(stride=0), ValueError, ["conv2d_forward", "stride must be >= 1", "0"]),
    "stride pair with 0": (conv(stride=(1, 0)), ValueError, ["conv2d_forward", "stride", "(1, 0)"]),
    "stride float": (conv(stride=1.5), TypeError, ["conv2d_forward", "stride must be an int", "1.5"]),
    "stride bool": (conv(stride=True), TypeError, ["conv2d_forward", "stride", "True"]),
    "stride triple": (conv(stride=(1, 1, 1)), TypeError, ["conv2d_forward", "stride", "(1, 1, 1)"]),
    "padding negative": (conv(padding=-1), ValueError, ["conv2d_forward", "padding must be >= 0", "-1"]),
    "padding string": (conv(padding="same"), TypeError, ["conv2d_forward", "padding", "'same'"]),
    "pool stride 0": (lambda: F.max_pool2d_forward(xs, 2, 0), ValueError, ["max_pool2d_forward", "stride"]),
    "pool kernel 0": (lambda: F.avg_pool2d_forward(xs, 0), ValueError, ["avg_pool2d_forward", "kernel_size"]),
    "pool kernel float": (lambda: F.max_pool2d_forward(xs, 2.0), TypeError, ["max_pool2d_forward", "kernel_size", "2.0"]),
    "pad2d negative": (lambda: F.pad2d(xs, -2), ValueError, ["pad2d", "padding"]),
    # --- windows that do not fit
    "kernel larger than padded input": (
        lambda: F.conv2d_forward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 5, 5)), None, 1, 1), ValueError,
        ["conv2d_forward", "kernel 5x5 is larger than the padded input 4x4", "x (1, 1, 2, 2), w (1, 1, 5, 5)"],
    ),
    "kernel wider than input": (
        lambda: F.conv2d_forward(np.zeros((1, 1, 9, 2)), np.zeros((1, 1, 1, 3)), None), ValueError,
        ["conv2d_forward", "1x3", "9x2"],
    ),
    "pool window does not fit": (
        lambda: F.max_pool2d_forward(np.zeros((1, 1, 2, 5)), 3), ValueError,
        ["max_pool2d_forward", "3x3 pooling window does not fit in the 2x5 input", "(1, 1, 2, 5)"],
    ),
    "avg pool window does not fit": (lambda: F.avg_pool2d_forward(np.zeros((1, 1, 4, 4)), (2, 5)), ValueError, ["avg_pool2d_forward", "2x5", "4x4"]),
    # --- not arrays of numbers (array-likes of numbers ARE accepted)
    "x None": (lambda: F.relu_forward(None), TypeError, ["relu_forward", "x must be an array of real numbers"]),
    "x string": (conv(x="image"), TypeError, ["conv2d_forward", "x must be an array of real numbers"]),
    "x ragged list": (lambda: F.flatten_forward([[1, 2], [3]]), TypeError, ["flatten_forward", "x must be an array of numbers"]),
    "x complex": (lambda: F.relu_forward(np.ones(3, complex)), TypeError, ["relu_forward", "complex"]),
    "labels float": (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError, ["softmax_cross_entropy", "integer class indices"]),
    "labels out of range": (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, ["softmax_cross_entropy", "[0, 3)", "3"]),
    # --- batch norm and dropout specifics
    "bn running stats as a list": (bn(running_mean=[0.0, 0.0, 0.0]), TypeError, ["batchnorm2d_forward", "running_mean", "in place"]),
    "bn one value per channel": (bn(x=np.zeros((1, 3, 1, 1))), ValueError, ["batchnorm2d_forward", "more than 1 value", "(1, 3, 1, 1)"]),
    "bn momentum": (lambda: F.batchnorm2d_forward(xs, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True, momentum=1.5), ValueError, ["momentum", "1.5"]),
    "bn training not bool": (bn(training="yes"), TypeError, ["batchnorm2d_forward", "training"]),
    "dropout p": (lambda: F.dropout_forward(xs, 1.2, True, np.random.default_rng(0)), ValueError, ["dropout_forward", "p must be a probability", "1.2"]),
    "dropout rng": (lambda: F.dropout_forward(xs, 0.5, True, 0), TypeError, ["dropout_forward", "rng must be a np.random.Generator"]),
    # --- backward: dout of the wrong shape, or somebody else's cache
    "conv dout": (lambda: F.conv2d_backward(np.zeros((2, 4, 5, 5)), conv_cache), ValueError, ["conv2d_backward", "dout has shape (2, 4, 5, 5)", "(2, 4, 6, 6)"]),
    "max pool dout": (lambda: F.max_pool2d_backward(np.zeros((2, 3, 4)), pool_cache), ValueError, ["max_pool2d_backward", "(2, 3, 4)", "(2, 3, 4, 4)"]),
    "avg pool dout": (lambda: F.avg_pool2d_backward(np.zeros((2, 3, 4, 5)), avg_cache), ValueError, ["avg_pool2d_backward", "(2, 3, 4, 5)"]),
    "global pool dout": (lambda: F.global_avg_pool2d_backward(np.zeros((2, 4)), gap_cache), ValueError, ["global_avg_pool2d_backward", "(2, 4)", "(2, 3)"]),
    "relu dout": (lambda: F.relu_backward(np.zeros((2, 3, 8)), relu_cache), ValueError, ["relu_backward", "(2, 3, 8)"]),
    "linear dout": (lambda: F.linear_backward(np.zeros((2, 4)), linear_cache), ValueError, ["linear_backward", "(2, 4)", "(2, 3)"]),
    "flatten dout": (lambda: F.flatten_backward(np.zeros((2, 191)), flat_cache), ValueError, ["flatten_backward", "(2, 191)", "(2, 192)"]),
    "bn dout": (lambda: F.batchnorm2d_backward(np.zeros((2, 3, 8, 7)), bn_cache), ValueError, ["batchnorm2d_backward", "(2, 3, 8, 7)"]),
    "dropout dout": (lambda: F.dropout_backward(np.zeros(3), drop_cache), ValueError, ["dropout_backward", "(3,)"]),
    "wrong cache": (lambda: F.max_pool2d_backward(np.zeros((2, 4, 6, 6)), conv_cache), TypeError, ["max_pool2d_backward", "max_pool2d_forward"]),
    "cache not a dict": (lambda: F.conv2d_backward(np.zeros((2, 4, 6, 6)), (xs, ws)), TypeError, ["conv2d_backward", "cache"]),
    # --- shapes, kernels, gradcheck
    "output size: window does not fit": (lambda: shapes.conv_output_size(4, 7, padding=1), ValueError, ["conv_output_size", "7", "4", "6"]),
    "output size: stride 0": (lambda: shapes.conv_output_size(10, 3, stride=0), ValueError, ["conv_output_size", "stride"]),
    "output size: float": (lambda: shapes.conv_output_size(10.0, 3), TypeError, ["conv_output_size", "n must be an int"]),
    "params: bool channels": (lambda: shapes.conv2d_params(True, 3, 3), TypeError, ["conv2d_params", "in_channels"]),
    "params: bias not bool": (lambda: shapes.linear_params(3, 4, bias=1), TypeError, ["linear_params", "bias"]),
    "receptive field: not pairs": (lambda: shapes.receptive_field([3, 3]), TypeError, ["receptive_field", "layer 0"]),
    "receptive field: stride 0": (lambda: shapes.receptive_field([(3, 0)]), ValueError, ["receptive_field", "stride of layer 0"]),
    "kernel even size": (lambda: kernels.box_blur(4), ValueError, ["box_blur", "odd"]),
    "gaussian sigma": (lambda: kernels.gaussian(5, sigma=0), ValueError, ["gaussian", "sigma"]),
    "unknown kernel": (lambda: kernels.get_kernel("blurry"), ValueError, ["get_kernel", "'blurry'", "sobel_x"]),
    "filter 1-D kernel": (lambda: kernels.filter_channels(np.zeros((4, 4)), np.ones(3)), ValueError, ["filter_channels", "kernel", "(3,)"]),
    "filter 4-D image": (lambda: kernels.filter_channels(np.zeros((1, 4, 4, 3)), np.ones((3, 3))), ValueError, ["filter_channels", "(1, 4, 4, 3)"]),
    "filter mode": (lambda: kernels.filter_channels(np.zeros((4, 4)), np.ones((3, 3)), mode="middle"), ValueError, ["filter_channels", "'middle'"]),
    "numerical gradient of a list": (lambda: gradcheck.numerical_gradient(sum, [1.0, 2.0]), TypeError, ["numerical_gradient", "float numpy array", "list"]),
    "numerical gradient needs df": (lambda: gradcheck.numerical_gradient(lambda v: v * 2, np.ones(3)), ValueError, ["numerical_gradient", "df", "(3,)"]),
    "rel_error shapes": (lambda: gradcheck.rel_error(np.zeros(3), np.zeros(4)), ValueError, ["rel_error", "(3,)", "(4,)"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_a_clear_error(name):
    call, exc_type, fragments = CASES[name]
    with pytest.raises(Exception) as info:
        call()
    err = info.value
    assert type(err) is exc_type, f"{name}: raised {type(err).__name__}: {err}"
    for fragment in fragments:
        assert fragment in str(err), f"{name}: message {str(err)!r} does not mention {fragment!r}"


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.conv2d_forward([[[[1.0, 2.0], [3.0, 4.0]]]], [[[[1.0]]]], [0.5]),
        lambda: F.max_pool2d_forward([[[[1, 2], [3, 4]]]], 2),
        lambda: F.linear_forward([[1, 2]], [[1], [1]], None),
        lambda: losses.squared_error([0.2, 0.4, 0.1, 0.3], [0, 0, 1, 0]),
        lambda: losses.softmax_cross_entropy([[1.0, 2.0]], [1]),
    ],
    ids=["conv", "pool", "linear", "squared_error", "softmax_cross_entropy"],
)
def test_array_likes_are_accepted(call):
    """Lists and tuples of numbers go through np.asarray (ints become float64)."""
    call()

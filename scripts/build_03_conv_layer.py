"""Source of solutions/03_conv_layer/03_conv_layer.ipynb (run me after editing)."""

from nbbuild import RULES, Notebook

nb = Notebook("03_conv_layer")

nb.md(rf"""
# 03 · The convolution layer

Notebooks 01 and 02 slid ONE kernel over ONE grayscale image. A convolution layer of a real
network does more at once: its input has many channels (3 for a colour photo, dozens deeper in
the network), it applies many filters, each with a bias, and it must be fast, because a network
runs it on millions of images.

**You will learn**
- how one filter looks at every input channel and sums them into one map (the article's RGB
  picture, with a 5 × 5 × 3 worked example), and how several filters give the output its depth;
- the bias, and weight sharing: why one filter is reused at every position;
- to count parameters, `(F·F·C_in + 1)·C_out`, down to the article's Keras model
  (208 + 2,080 + 8,256 + 8,645 = 19,189), and why a locally connected layer needs 46,080
  weights where a convolution needs 45;
- 1 × 1 convolutions (500 × 500 × 100 → 500 × 500 × 20), and why a fully connected layer is a
  convolution too;
- im2col: how a convolution becomes ONE matrix product, and how much faster that is.

**Exercises** (15 points)

| exercise | points |
|---|---|
| 3.1 a convolution layer with loops (NCHW, stride, padding) | 4 |
| 3.2 parameters of a convolution layer | 2 |
| 3.3 the article's model, layer by layer | 2 |
| 3.4 im2col | 4 |
| 3.5 convolution as one matrix product | 3 |

**How to work.** Each exercise has a solution cell, which in your copy holds
`raise NotImplementedError()`: replace that line with your code. Then run the test cell below it:
a line starting with ✔ means the visible tests pass. When your work is graded, more tests with
random cases run too (odd and non-square sizes, strides, paddings, one image, one channel), so
solve the problem in general rather than for the visible cases. Exercises are independent:
skipping one costs only its own points. Check the whole notebook with the **Validate** button
(or `nbgrader validate 03_conv_layer.ipynb`).

{RULES}
""")

nb.setup("""
import time

import numpy as np
import matplotlib.pyplot as plt

from cnnlib import datasets, grading, shapes, viz
from cnnlib import functional as F
from cnnlib.layers import Conv2d, GlobalAvgPool2d, Linear, MaxPool2d
from cnnlib.model import Sequential

np.set_printoptions(precision=3, suppress=True)
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 1. One filter, many channels

An ordinary neural network takes a 28 × 28 grayscale image as a flat list of 784 pixels. A CNN
keeps its shape, 28 × 28 × 1, and a colour photo is 3 stacked matrices, one each for red, green
and blue (the article *Deep learning with Python*). In notebook 01 you filtered each colour channel on its own and got three
filtered channels back. A convolution layer does something else: **one filter looks at all
channels at once and gives one map.**

- The filter is as deep as its input: for an RGB input, a 3 × 3 filter is a 3 × 3 × 3 block of
  weights, one 3 × 3 slice per channel. (Its height and width are nearly always equal and small:
  3 × 3, 5 × 5, ... (the article *Convolutional neural networks*).)
- At each position, each channel's window is multiplied by its slice and summed, as in notebook
  01; then **the per-channel results are added up**, and the filter's bias is added. One number.

The articles say it twice: "the picture only showed the B channel; in fact the results of the R, G
and B channels are added to give the final feature value" (the article *Deep learning with Python*), and "we convolve each
channel with the filter and add the results, reducing the 3 channels to 1: the activation map"
(the article *Convolutional neural networks*). In NCHW layout, with the filters `w` of shape `(F, C, KH, KW)`:

$$\text{out}[n, f, i, j] = b[f] + \sum_{c=0}^{C-1} \sum_{a=0}^{KH-1} \sum_{d=0}^{KW-1}
x_{\text{pad}}[n, c,\ iS + a,\ jS + d]\ \, w[f, c, a, d]$$

**Worked example.** The article *Convolutional neural networks* points to the CS231n convolution demo: a 5 × 5 × 3 input, padded
with 1 ring of zeros, two 3 × 3 × 3 filters `W0` and `W1` with biases `b0 = 1` and `b1 = 0`,
stride 2. Here are its numbers (one image, so `N = 1`):
""")

nb.data("rgb_example", """
x_demo = np.array([[[[2, 1, 1, 0, 0],          # channel 0 (R)
                     [0, 0, 0, 0, 2],
                     [1, 2, 1, 1, 2],
                     [2, 1, 1, 1, 2],
                     [0, 2, 2, 0, 1]],
                    [[2, 1, 0, 2, 2],          # channel 1 (G)
                     [2, 0, 0, 2, 0],
                     [1, 0, 0, 1, 1],
                     [1, 0, 0, 0, 0],
                     [2, 1, 1, 0, 1]],
                    [[2, 1, 1, 2, 2],          # channel 2 (B)
                     [2, 1, 2, 2, 1],
                     [2, 2, 2, 1, 2],
                     [0, 1, 2, 2, 1],
                     [1, 0, 1, 1, 2]]]], dtype=float)    # (N, C, H, W) = (1, 3, 5, 5)

w_demo = np.array([[[[1, -1, 1], [0, 0, 1], [0, -1, -1]],      # W0, channel 0
                    [[1, 0, 0], [0, 1, 0], [-1, 1, -1]],       # W0, channel 1
                    [[-1, 1, 0], [-1, -1, 0], [1, 0, 1]]],     # W0, channel 2
                   [[[-1, -1, 1], [1, -1, -1], [1, 0, 0]],     # W1, channel 0
                    [[-1, 1, 0], [1, 1, 1], [-1, 1, -1]],      # W1, channel 1
                    [[0, 0, 1], [-1, 1, -1], [0, 0, 1]]]],     # W1, channel 2
                  dtype=float)                                  # (F, C, KH, KW) = (2, 3, 3, 3)
b_demo = np.array([1.0, 0.0])
print("x", x_demo.shape, " w", w_demo.shape, " b", b_demo.shape)
""")

nb.md(r"""
A small drawing helper for this notebook: it writes the numbers of a 2-D array in a grid and can
outline one window.
""")

nb.code('''
def show_grid(ax, a, window=None, cmap="Greys"):
    """Draw the 2-D array `a` with its numbers (negative values in blue, positive in red, when `a` has
    negative values); outline `window` = (row, col, height, width)."""
    H, W = a.shape
    m = max(1, np.abs(a).max())
    if (a < 0).any():
        ax.imshow(a, cmap="RdBu_r", vmin=-2.5 * m, vmax=2.5 * m)
    else:
        ax.imshow(a, cmap=cmap, vmin=0, vmax=3 * m)
    for r in range(H):
        for c in range(W):
            ax.text(c, r, f"{a[r, c] + 0:g}", ha="center", va="center", fontsize=10)   # + 0 turns -0 into 0
    if window is not None:
        r, c, h, w = window
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), w, h, fill=False, lw=3, ec="#d62728"))
    ax.set_xticks(range(W))
    ax.set_yticks(range(H))
''')

nb.md(r"""
The first output of filter `W0` sits on the top-left window of the padded input (rows 0–2,
columns 0–2). Each row of the picture is one channel: its padded input with the window, `W0`'s
slice for that channel, and the window times the slice, summed:
""")

nb.code("""
x_pad = np.pad(x_demo, ((0, 0), (0, 0), (1, 1), (1, 1)))      # pad H and W only: (1, 3, 7, 7)
names = ["R", "G", "B"]
fig, axes = plt.subplots(3, 3, figsize=(11, 10.5), layout="constrained")
for c in range(3):
    window = x_pad[0, c, 0:3, 0:3]
    product = window * w_demo[0, c]
    show_grid(axes[c, 0], x_pad[0, c], window=(0, 0, 3, 3))
    show_grid(axes[c, 1], w_demo[0, c])
    show_grid(axes[c, 2], product)
    axes[c, 0].set_title(f"channel {names[c]}, padded")
    axes[c, 1].set_title(f"W0, slice {names[c]}")
    axes[c, 2].set_title(f"window x slice: sum = {product.sum():g}")
for ax in axes.flat:
    ax.set_xlabel("column")
    ax.set_ylabel("row")
fig.suptitle("One filter, three channels: out[0, 0, 0, 0] = 1 + 4 + (-1) + b0 = 5")
plt.show()
""")

nb.md(r"""
By hand: channel R gives 2·0 + 1·1 = **1**, channel G gives 2·1 + 1·0 + 2·1 = **4**, channel B
gives 2·(−1) + 1·0 + 2·0 + 1·1 = **−1**. Their sum plus the bias: 1 + 4 + (−1) + 1 = **5**.
Filter `W1` on the same window: (−3) + 5 + 2 + 0 = **4**. The same sums with numpy, and the whole
layer with cnnlib:
""")

nb.code("""
window = x_pad[0, :, 0:3, 0:3]                        # (3, 3, 3): the window spans ALL channels
per_channel = (window * w_demo[0]).sum(axis=(1, 2))
print("W0, per channel:", per_channel, " + b0 =", per_channel.sum() + b_demo[0])
per_channel = (window * w_demo[1]).sum(axis=(1, 2))
print("W1, per channel:", per_channel, " + b1 =", per_channel.sum() + b_demo[1])

out_demo, _ = F.conv2d_forward(x_demo, w_demo, b_demo, stride=2, padding=1)
print("output shape:", out_demo.shape)             # (N, F, H_out, W_out)
print("map of W0:\\n", out_demo[0, 0])
print("map of W1:\\n", out_demo[0, 1])
""")

nb.md(r"""
The output is 3 × 3 (the formula of notebook 02: (5 + 2·1 − 3) // 2 + 1 = 3) and **2 deep**:

```
map of W0          map of W1
 5   0  -3          4   1   2
 3   0  -2          3   5  -1
 3   3  -3          3   3  -2
```

### Several filters give depth

One filter finds one kind of pattern. To find many (edges in several directions, colours,
corners, ...) a layer has many filters, and each gives its own map. The article *Convolution, pooling and backpropagation* puts it in one
line: **the depth of the output equals the number of filters**; with two filters, the output
is 2 deep. To get k feature maps you need k filters, each with its own weights (the article *Deep learning with Python*); the
filters of one layer all have the same size, so their maps stack into one block: the weights of
a layer are a 4-D array `(C_out, C_in, KH, KW)` and its output is `(N, C_out, H_out, W_out)`.
The next layer's filters are then `C_out` deep. (The 200 × 200 example of notebook 02 ended at
97 × 97 × 2: its 2 was the number of filters.)

Stacking layers builds features of features: the first layer finds lines in different
directions, the next shapes and colours, the next more complex patterns (the article *Convolutional neural networks*). Three
hand-made 3 × 3 × 3 filters on a photo: two edge detectors that treat the three channels alike,
and a colour filter that only looks at the centre pixel, red minus blue:
""")

nb.code("""
photo = datasets.sample_image(dtype=np.float32)[::2, ::2]           # (300, 256, 3) in [0, 1]
x_photo = photo.transpose(2, 0, 1)[None]                             # HWC -> NCHW: (1, 3, 300, 256)

vertical = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype=np.float32)
w_photo = np.zeros((3, 3, 3, 3), dtype=np.float32)                   # 3 filters of depth 3
w_photo[0] = vertical / 3                                            # vertical edges, all channels
w_photo[1] = vertical.T / 3                                          # horizontal edges
w_photo[2, 0, 1, 1], w_photo[2, 2, 1, 1] = 1.0, -1.0                 # red minus blue
maps = F.conv2d(x_photo, w_photo, np.zeros(3, np.float32), padding=1)
print(x_photo.shape, "->", maps.shape)
viz.show_feature_maps(maps, ncols=3, title="3 filters of shape (3, 3, 3) on an RGB photo: an output 3 deep")
""")

nb.md(r"""
### The bias

Each filter has one more parameter, its **bias** (the article *Deep learning with Python*), added to every value of its map.
Weights and biases start as random numbers (usually from a Gaussian) and are learned during
training. In the worked example, `b0 = 1` lifts all of map 0 by 1 and `b1 = 0` leaves map 1
alone:
""")

nb.code("""
out_no_bias = F.conv2d(x_demo, w_demo, None, stride=2, padding=1)
print("with bias - without bias:\\n", out_demo[0] - out_no_bias[0])
""")

nb.md(r"""
### Weight sharing

The filter that slides over the image is **the same at every position**: its weights are shared
by all windows (the articles *Deep learning with Python* and *Convolution, pooling and backpropagation*). Why it matters:

- **Far fewer parameters.** A filter has `F·F·C_in + 1` numbers, however large the image. With a
  separate filter per position there would be so many parameters that training would be slow
  and overfitting likely, the faults of ordinary networks on images (the article *Deep learning with Python*). Section 2 counts
  them.
- **A pattern is found wherever it is.** If a filter is good at detecting something at position
  (x, y), it is good at (x2, y2) too (the article *Convolutional neural networks*). Shift the image and the feature map shifts by
  the same amount. The article *Layers and parameters* sums the layer up: a feature extractor that keeps positional
  information and saves parameters.

Check the shift on the photo: move it 20 pixels to the right, convolve, and compare with the
feature map of the unshifted photo moved by 20 pixels (away from the borders, where the
shifted-in zeros differ):
""")

nb.code("""
shift = 20
x_shifted = np.zeros_like(x_photo)
x_shifted[..., shift:] = x_photo[..., :-shift]                       # the photo moved 20 pixels right
maps_shifted = F.conv2d(x_shifted, w_photo, np.zeros(3, np.float32), padding=1)
inside = slice(shift + 2, -2)
diff = maps_shifted[..., 1:-1, inside] - maps[..., 1:-1, inside.start - shift:-2 - shift]
print("largest difference between 'shift then convolve' and 'convolve then shift':", np.abs(diff).max())

fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
for ax, m, t in zip(axes, [maps[0, 0], maps_shifted[0, 0]], ["photo", f"photo shifted {shift} px right"]):
    ax.imshow(m, cmap="gray")
    ax.axvline(150, color="#d62728", lw=1)
    ax.set_title(f"vertical edges of the {t}")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
fig.suptitle("Weight sharing: the same filter everywhere, so the map moves with the image")
plt.show()
""")

nb.exercise(1, "a convolution layer with loops", points=4, text=r"""
Write `conv_forward_naive(x, w, b, stride=1, padding=0)`, the forward pass of a convolution
layer, straight from the formula above:

- `x` has shape `(N, C, H, W)`, `w` `(F, C, KH, KW)`, `b` `(F,)`; `stride` and `padding` are ints;
- return `out` of shape `(N, F, H_out, W_out)`, with `H_out = (H + 2*padding - KH) // stride + 1`
  (and the same for `W_out`).

Zero-pad the height and width axes only: `np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))`
(padding the batch or channel axes too gives windows with the wrong number of channels). Then
loop over images, filters and output positions: `out[n, f, i, j]` is the sum of the window
`x_pad[n, :, i*stride : i*stride + KH, j*stride : j*stride + KW]` (all channels at once) times
`w[f]`, plus `b[f]`. Do not flip the kernel: a CNN's "convolution" is cross-correlation.

The tests compare with `cnnlib.functional.conv2d_forward` on the worked example, on cases with
stride 2, padding 1 and 2, non-square inputs and kernels, one channel, one image, and (hidden)
20 random cases. Allowed: numpy; cnnlib and scipy.signal are switched off while your function is
checked.
""", solution='''
def conv_forward_naive(x, w, b, stride=1, padding=0):
    """Convolution layer forward with loops: x (N, C, H, W), w (F, C, KH, KW), b (F,) -> (N, F, H_out, W_out)."""
    N, C, H, W = x.shape
    F_, _, KH, KW = w.shape               # F_, since F is cnnlib.functional
    ### BEGIN SOLUTION
    H_out = (H + 2 * padding - KH) // stride + 1
    W_out = (W + 2 * padding - KW) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((N, F_, H_out, W_out))
    for n in range(N):
        for f in range(F_):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out
    ### END SOLUTION
''', tests='''
conv_mistakes = grading.conv_mistakes(F.conv2d)
rng = np.random.default_rng(31)
grading.check_function(conv_forward_naive, F.conv2d, [
    {"x": x_demo, "w": w_demo, "b": b_demo, "stride": 2, "padding": 1},        # the worked example
    {"x": rng.standard_normal((1, 1, 5, 5)), "w": rng.standard_normal((1, 1, 3, 3)),
     "b": rng.standard_normal(1), "stride": 1, "padding": 0},
    {"x": rng.standard_normal((2, 3, 7, 5)), "w": rng.standard_normal((4, 3, 3, 3)),
     "b": rng.standard_normal(4), "stride": 2, "padding": 1},
    {"x": rng.standard_normal((2, 2, 6, 6)), "w": rng.standard_normal((3, 2, 2, 2)),
     "b": rng.standard_normal(3), "stride": 2, "padding": 0},
    {"x": rng.standard_normal((1, 3, 4, 6)), "w": rng.standard_normal((2, 3, 1, 3)),
     "b": rng.standard_normal(2), "stride": 1, "padding": 2},
], mistakes=conv_mistakes)
### BEGIN HIDDEN TESTS
grading.check_function(conv_forward_naive, F.conv2d, grading.conv_cases(20, seed=30101),
                       mistakes=conv_mistakes)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 2. Counting parameters

A filter of a layer with `C_in` input channels has `F·F·C_in` weights (`F` its height and width)
and 1 bias. A layer with `C_out` filters therefore has

$$\text{params} = (F \cdot F \cdot C_{in} + 1) \cdot C_{out}$$

The article *Layers and parameters* writes it out in words: parameters = filters × filter height × filter width × depth of
the previous layer (its number of filters) + filters, that is (1 bias + the weights of one
filter) × the number of filters. Pooling layers have no parameters, and a dense (fully
connected) layer has `(inputs + 1) · outputs`.

**Worked example: the article's Keras model.** 224 × 224 RGB images go through three `Conv2D`
layers with 2 × 2 kernels, stride 1 and `'valid'` padding (16, 32 and 64 filters, ReLU inside),
each followed by `MaxPooling2D(pool_size=2)`, then `GlobalAveragePooling2D` and
`Dense(133, activation='softmax')`:

| layer | output (Keras: H × W × C) | parameters |
|---|---|---|
| Conv2D, 16 filters 2 × 2 | 223 × 223 × 16 | (2·2·3 + 1)·16 = **208** |
| MaxPooling2D 2 | 111 × 111 × 16 | 0 |
| Conv2D, 32 filters 2 × 2 | 110 × 110 × 32 | (2·2·16 + 1)·32 = **2,080** |
| MaxPooling2D 2 | 55 × 55 × 32 | 0 |
| Conv2D, 64 filters 2 × 2 | 54 × 54 × 64 | (2·2·32 + 1)·64 = **8,256** |
| MaxPooling2D 2 | 27 × 27 × 64 | 0 |
| GlobalAveragePooling2D | 64 | 0 |
| Dense 133 | 133 | (64 + 1)·133 = **8,645** |
| **total** | | 208 + 2,080 + 8,256 + 8,645 = **19,189** |

Note the second convolution: its filters are **16 deep**, the number of filters of the layer
before, not 3. The same model in cnnlib (NCHW, so the shapes read channels first; the ReLUs
have no parameters and Keras counts them inside `Conv2D`, so they are left out to get Keras'
rows), and its `summary()`:
""")

nb.code("""
rng = np.random.default_rng(0)
keras_model = Sequential([
    Conv2d(3, 16, 2, rng=rng), MaxPool2d(2),
    Conv2d(16, 32, 2, rng=rng), MaxPool2d(2),
    Conv2d(32, 64, 2, rng=rng), MaxPool2d(2),
    GlobalAvgPool2d(),
    Linear(64, 133, rng=rng),
])
print(keras_model.summary((3, 224, 224)))
""")

nb.code("""
per_layer = [shapes.conv2d_params(3, 16, 2), shapes.conv2d_params(16, 32, 2),
             shapes.conv2d_params(32, 64, 2), shapes.linear_params(64, 133)]
print(" + ".join(f"{p:,}" for p in per_layer), "=", f"{sum(per_layer):,}")
print("weights and biases of the first conv:", keras_model[0].weight.shape, keras_model[0].bias.shape)
""")

nb.exercise(2, "parameters of a convolution layer", points=2, text=r"""
Write `conv_params(c_in, c_out, k)`: the number of parameters (weights and biases) of a
convolution layer with `c_out` filters of size `k × k` over an input with `c_in` channels.
Return an `int`.

The tests check the article's three convolutions, a 1 × 1 convolution and LeNet's first layer
(6 filters 5 × 5 on a grayscale image: 156), and (hidden) 30 random layers.
Allowed: plain Python arithmetic.
""", solution='''
def conv_params(c_in, c_out, k):
    """Weights and biases of a conv layer: c_out filters of shape (c_in, k, k), one bias each."""
    ### BEGIN SOLUTION
    return (k * k * c_in + 1) * c_out
    ### END SOLUTION
''', tests='''
conv_params_mistakes = [
    grading.Mistake("did you forget the biases? Each filter has one: (k*k*c_in + 1) * c_out.",
                    lambda c: c["k"] * c["k"] * c["c_in"] * c["c_out"]),
    grading.Mistake("a filter is as deep as its input: it has k*k weights for EACH of the c_in channels.",
                    lambda c: (c["k"] * c["k"] + 1) * c["c_out"]),
    grading.Mistake("a k x k filter has k*k weights per channel, not k.",
                    lambda c: (c["k"] * c["c_in"] + 1) * c["c_out"]),
]
grading.check_function(conv_params, shapes.conv2d_params, [
    {"c_in": 3, "c_out": 16, "k": 2},       # the article: 208
    {"c_in": 16, "c_out": 32, "k": 2},      # 2,080
    {"c_in": 32, "c_out": 64, "k": 2},      # 8,256
    {"c_in": 100, "c_out": 20, "k": 1},     # a 1 x 1 convolution
    {"c_in": 1, "c_out": 6, "k": 5},        # LeNet's first layer
], mistakes=conv_params_mistakes)
### BEGIN HIDDEN TESTS
def random_layer(rng):
    return {"c_in": int(rng.integers(1, 513)), "c_out": int(rng.integers(1, 513)), "k": int(rng.integers(1, 8))}

grading.check_function(conv_params, shapes.conv2d_params, grading.random_cases(random_layer, 30, seed=30201),
                       mistakes=conv_params_mistakes)
### END HIDDEN TESTS
''')

nb.exercise(3, "the article's model, layer by layer", points=2, text=r"""
Generalize the table above. Write `model_params(c_in, filters, k, n_classes)` for a model like
the article's: an input with `c_in` channels, then one `k × k` convolution per entry of `filters`
(`filters[0]` filters, then `filters[1]`, ...), each followed by a pooling layer, then global
average pooling and a dense layer with `n_classes` outputs. Return the list of parameter counts
of the layers that have parameters, in order: one per convolution, then the dense layer.
`model_params(3, [16, 32, 64], 2, 133)` is `[208, 2080, 8256, 8645]`.

Return a new list and leave `filters` as it is (the tests check that you do not change it).
Two things to get right: each convolution's input depth is the number of filters of the
convolution before it (the image's `c_in` only for the first one), and global average pooling
leaves one number per channel of the last convolution. You may call your `conv_params`: while
`model_params` is checked, the test gives it a correct `conv_params`, so a mistake in
Exercise 3.2 costs points only there.

The tests check the article's model, two other stacks and (hidden) 20 random ones.
Allowed: plain Python and your `conv_params`.
""", solution='''
def model_params(c_in, filters, k, n_classes):
    """Parameter counts [conv 1, conv 2, ..., dense] of convs (k x k) -> pool -> global avg pool -> dense."""
    ### BEGIN SOLUTION
    counts = []
    for c_out in filters:
        counts.append(conv_params(c_in, c_out, k))
        c_in = c_out                       # the next layer's filters are c_out deep
    counts.append((c_in + 1) * n_classes)  # the dense layer sees one average per channel
    return counts
    ### END SOLUTION
''', tests='''
def reference(c_in, filters, k, n_classes):
    depths = [c_in] + list(filters)
    convs = [shapes.conv2d_params(d, f, k) for d, f in zip(depths, filters)]
    return convs + [shapes.linear_params(filters[-1], n_classes)]

def same_depth(c, dense_inputs):
    return ([shapes.conv2d_params(c["c_in"], f, c["k"]) for f in c["filters"]]
            + [shapes.linear_params(dense_inputs, c["n_classes"])])

same_depth_hint = ("every layer got the image's channels as its input depth: the filters of layer 2 "
                   "are as deep as layer 1's output (filters[0] channels), and so on; the dense layer "
                   "gets one average per channel of the last convolution (filters[-1]).")
model_mistakes = [
    grading.Mistake(same_depth_hint, lambda c: same_depth(c, c["filters"][-1])),
    grading.Mistake(same_depth_hint, lambda c: same_depth(c, c["c_in"])),
    grading.Mistake("the dense layer has a bias for each output: (inputs + 1) * outputs.",
                    lambda c: reference(*c.values())[:-1] + [c["filters"][-1] * c["n_classes"]]),
    grading.Mistake("the dense layer has parameters too: return one count per convolution, then one "
                    "for the dense layer.", lambda c: reference(*c.values())[:-1]),
]
# while model_params is checked, conv_params is a correct one (see the text)
with grading.substitute(globals(), conv_params=grading.reference_stand_in(shapes.conv2d_params)):
    grading.check_function(model_params, reference, [
        {"c_in": 3, "filters": [16, 32, 64], "k": 2, "n_classes": 133},     # the article's model
        {"c_in": 1, "filters": [6, 16], "k": 5, "n_classes": 10},
        {"c_in": 3, "filters": [8], "k": 3, "n_classes": 2},
    ], mistakes=model_mistakes)
    ### BEGIN HIDDEN TESTS
    def random_stack(rng):
        filters = [int(v) for v in rng.integers(1, 129, size=int(rng.integers(1, 6)))]
        return {"c_in": int(rng.integers(1, 5)), "filters": filters, "k": int(rng.integers(1, 6)),
                "n_classes": int(rng.integers(2, 1001))}

    grading.check_function(model_params, reference, grading.random_cases(random_stack, 20, seed=30301),
                           mistakes=model_mistakes)
    ### END HIDDEN TESTS
''')

nb.md(r"""
### Locally connected layers: 45 against 46,080

Weight sharing assumes that a pattern can be anywhere. Sometimes it cannot: in a data set of
centred faces, the eyes are always in the same place, and we might want different filters for
the eyes than for the nose or the mouth. A **locally connected layer** does that: it slides
windows like a convolution, but every output position has **its own filters** (the article *Convolutional neural networks*).

The article's numbers: a 32 × 32 grayscale image, 5 filters of 3 × 3 per layer (with an output for
every pixel, so 32 × 32 positions; weights only, no biases).

- Convolution: 5 · 3 · 3 = **45** weights per layer.
- Locally connected: 45 weights for each of the 32 · 32 positions, 32 · 32 · 5 · 3 · 3 =
  **46,080**. (The article prints the product as 32·32·5·3, dropping a factor 3, but its total,
  46,080, is the full product.)

Over the article's 5 such layers that is 225 against 230,400 weights. So unless we know where the
patterns will be, and that they differ by place, a convolution is the better deal. And the article
adds: the layer with the most parameters of all is the **dense** layer, where every neuron is
connected to every neuron of the layer before:
""")

nb.code("""
counts = {
    "convolution\\n(shared 3x3 filters)": shapes.conv2d_params(1, 5, 3, bias=False),
    "locally connected\\n(3x3 filters per position)": shapes.locally_connected_params(1, 5, 3, output_size=32, bias=False),
    "dense\\n(32*32 -> 32*32*5)": shapes.linear_params(32 * 32, 32 * 32 * 5, bias=False),
}
for name, n in counts.items():
    print(f"{name.replace(chr(10), ' '):55s} {n:>12,}")

fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
bars = ax.bar(list(counts), list(counts.values()), color=["#2ca02c", "#ff7f0e", "#d62728"])
ax.bar_label(bars, labels=[f"{n:,}" for n in counts.values()])
ax.set_yscale("log")
ax.set_title("32 x 32 x 1 input -> 32 x 32 x 5 output: weights per layer")
ax.set_xlabel("kind of layer")
ax.set_ylabel("number of weights (log scale)")
plt.show()
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 3. 1 × 1 convolutions

A 1 × 1 filter sees a single pixel, but through all its channels: at each position it takes a
weighted sum of the pixel's `C_in` values. It changes the depth and leaves height and width
alone. The example of the article *Layers and parameters*: a 500 × 500 image 100 deep, convolved with 20 filters of
1 × 1, gives **500 × 500 × 20**, a "dimension reduction" from 100 channels to 20, for
(1·1·100 + 1)·20 = **2,020** parameters. Followed by a ReLU it also adds a non-linearity, which
makes the network more expressive.
""")

nb.code("""
conv_1x1 = Conv2d(100, 20, kernel_size=1)
print("output for a 100 x 500 x 500 input:", conv_1x1.output_shape((100, 500, 500)))
print("parameters:", f"{shapes.conv2d_params(100, 20, 1):,}")
""")

nb.md(r"""
(Shapes only: a real 500 × 500 × 100 array holds 25 million numbers.) At every pixel, a 1 × 1
convolution multiplies the vector of the pixel's 100 channel values by the same 20 × 100
matrix. A smaller example checks this numerically:
""")

nb.code("""
rng = np.random.default_rng(1)
x_deep = rng.standard_normal((1, 100, 40, 40))
w_1x1, b_1x1 = rng.standard_normal((20, 100, 1, 1)), rng.standard_normal(20)
out_1x1 = F.conv2d(x_deep, w_1x1, b_1x1)
per_pixel = np.einsum("fc,nchw->nfhw", w_1x1[:, :, 0, 0], x_deep) + b_1x1[:, None, None]
print(x_deep.shape, "->", out_1x1.shape, "  same as a 20 x 100 matrix at every pixel:",
      np.allclose(out_1x1, per_pixel))
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 4. A fully connected layer is a convolution

The article *Layers and parameters* says: "in practice, a fully connected layer can be turned into a convolution", and
from the other side, "a convolution layer is a simplified fully connected layer: not fully
connected, plus parameter sharing; it sets the weak influence from outside the local field of
view to zero, and keeps the spatial position".

At the end of a CNN the features are flattened: the example of the article *Deep learning with Python* turns a 32 × 32 × 10 block
into **10,240** features, which a dense layer maps to the scores of the classes. Take a
convolution whose kernel covers the **whole** input: 10 channels of 32 × 32, so kernels of shape
(10, 32, 32). It fits in exactly one position, so each filter gives a 1 × 1 output, and that one
number is a weighted sum of all 10,240 inputs plus a bias: exactly one output neuron of a dense
layer. With one filter per class, the convolution IS the dense layer; its weights are the dense
weights, one column per filter, reshaped:
""")

nb.code("""
rng = np.random.default_rng(2)
n_classes = 10
x_feat = rng.standard_normal((4, 10, 32, 32))                  # 4 examples, 32 x 32 x 10 features
w_dense = rng.standard_normal((10 * 32 * 32, n_classes)) / 100  # Linear: (in_features, out_features)
b_dense = rng.standard_normal(n_classes)

flat, _ = F.flatten_forward(x_feat)                             # (4, 10240)
out_dense, _ = F.linear_forward(flat, w_dense, b_dense)         # (4, 10)

w_conv = w_dense.T.reshape(n_classes, 10, 32, 32)               # one (10, 32, 32) filter per class
out_conv = F.conv2d(x_feat, w_conv, b_dense)                    # (4, 10, 1, 1)
print("flattened:", flat.shape, " dense:", out_dense.shape, " conv:", out_conv.shape)
print("largest difference:", np.abs(out_conv[:, :, 0, 0] - out_dense).max())
print("parameters, dense:", f"{shapes.linear_params(10240, n_classes):,}",
      " conv:", f"{shapes.conv2d_params(10, n_classes, 32):,}")
""")

nb.md(r"""
The flattening order matters: `flatten` reads each example's `(C, H, W)` block row by row, and
`reshape(n_classes, 10, 32, 32)` puts the weights back in that same order. In the article's Keras
model the same idea is even simpler: after global average pooling the input of `Dense(133)` is
1 × 1 × 64, and the dense layer is a 1 × 1 convolution with 133 filters ((1·1·64 + 1)·133 =
8,645 parameters again).
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 5. Vectorizing: im2col

Your loop of Exercise 3.1 runs `N·F·H_out·W_out` Python steps. For a batch of 64 MNIST images
(28 × 28) through a layer of 6 filters of 5 × 5, that is 64 · 6 · 24 · 24 = 221,184 steps per
forward pass, and training needs thousands of passes. Each step is tiny; the time goes into the
Python loop.

**The idea.** Copy each window (all channels) into one **column** of a matrix: "image to
columns", **im2col**. Reshape each filter into one **row**. Then every output of every filter at
every position is one dot product of a row and a column, so the whole layer is **one matrix
product**, which numpy hands to an optimized BLAS library:

$$\underbrace{W_{\text{row}}}_{F \times C K_H K_W}\ \times\
\underbrace{\text{cols}}_{C K_H K_W \times H_{out} W_{out}} =
\underbrace{\text{out}}_{F \times H_{out} W_{out}} \quad (+\ b\ \text{per row, then reshape to } F \times H_{out} \times W_{out})$$

**The layout** (per image `n`): `cols` has shape `(N, C·KH·KW, H_out·W_out)` and

    cols[n, c*KH*KW + i*KW + j, oh*W_out + ow] = x_pad[n, c, oh*stride + i, ow*stride + j]

Rows run over the window's entries with the channel first, then the kernel row `i`, then the
kernel column `j`: exactly the order in which `w.reshape(F, C*KH*KW)` flattens a filter
`(C, KH, KW)`. Columns run over output positions row by row (`oh`, then `ow`), the order of
`out.reshape(F, H_out, W_out)`.

**Worked example.** A 3 × 3 image with 2 channels (1 to 9 and 10 to 18), a 2 × 2 kernel, stride
1, no padding: `H_out = W_out = 2`, so 4 windows, each with 2·2·2 = 8 numbers: `cols` is 8 × 4.
""")

nb.data("im2col_example", """
x_ex = np.arange(1.0, 19.0).reshape(1, 2, 3, 3)        # (N, C, H, W) = (1, 2, 3, 3)
w_ex = np.array([[[[1, 0], [0, -1]],
                  [[0, 1], [1, 0]]]], dtype=float)      # (F, C, KH, KW) = (1, 2, 2, 2), used below
cols_ex = np.array([[[ 1,  2,  4,  5],                  # row 0: c=0, i=0, j=0
                     [ 2,  3,  5,  6],                  # row 1: c=0, i=0, j=1
                     [ 4,  5,  7,  8],                  # row 2: c=0, i=1, j=0
                     [ 5,  6,  8,  9],                  # row 3: c=0, i=1, j=1
                     [10, 11, 13, 14],                  # row 4: c=1, i=0, j=0
                     [11, 12, 14, 15],                  # ...
                     [13, 14, 16, 17],
                     [14, 15, 17, 18]]], dtype=float)   # (N, C*KH*KW, H_out*W_out) = (1, 8, 4)
""")

nb.code("""
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), layout="constrained", width_ratios=[1, 1, 1.5])
for c in range(2):
    show_grid(axes[c], x_ex[0, c], window=(0, 1, 2, 2))
    axes[c].set_title(f"channel {c}: the window of column 1")
    axes[c].set_xlabel("column")
    axes[c].set_ylabel("row")
show_grid(axes[2], cols_ex[0], window=(0, 1, 8, 1), cmap="Blues")
axes[2].set_title("cols: one window per column")
axes[2].set_xlabel("column = oh*W_out + ow (output position)")
axes[2].set_ylabel("row = c*KH*KW + i*KW + j")
fig.suptitle("im2col: the window at output (0, 1) becomes column 1")
plt.show()
""")

nb.md(r"""
Column 1 is the window at output position (0, 1): rows 0–1 and columns 1–2 of each channel,
channel 0 first: 2, 3, 5, 6, then 11, 12, 14, 15.

Now one filter, `w` of shape (1, 2, 2, 2), with slices [[1, 0], [0, −1]] (channel 0) and
[[0, 1], [1, 0]] (channel 1). Flattened, it is the row [1, 0, 0, −1, 0, 1, 1, 0], and the product
with `cols` gives all 4 outputs at once: 1 − 5 + 11 + 13 = **20**, 2 − 6 + 12 + 14 = **22**,
4 − 8 + 14 + 16 = **26**, 5 − 9 + 15 + 17 = **28**:
""")

nb.code("""
w_row = w_ex.reshape(1, -1)                             # (F, C*KH*KW) = (1, 8)
print("w_row:", w_row)
print("w_row @ cols:", w_row @ cols_ex[0])
print("reshaped to (F, H_out, W_out):\\n", (w_row @ cols_ex[0]).reshape(1, 2, 2))
print("cnnlib:\\n", F.conv2d(x_ex, w_ex))
""")

nb.md(r"""
One more way to see the layout: `cols` is itself a convolution! Take `C·KH·KW` one-hot filters,
filter `r` being 1 at entry `r` of the flattened window and 0 elsewhere. Filter `r` copies entry
`r` of every window into its own map, which is row `r` of `cols`:
""")

nb.code("""
one_hot = np.eye(8).reshape(8, 2, 2, 2)                 # 8 filters of shape (C, KH, KW) = (2, 2, 2)
print(np.array_equal(F.conv2d(x_ex, one_hot).reshape(1, 8, 4), cols_ex))
""")

nb.md(r"""
The price of im2col is memory: a pixel is copied into every window that covers it, up to
`KH·KW` times, so `cols` is about `KH·KW / stride²` times the size of the input. Speed is worth
it, as section 6 shows.
""")

nb.exercise(4, "im2col", points=4, text=r"""
Write `im2col(x, kh, kw, stride=1, padding=0)` for a batch `x` of shape `(N, C, H, W)` and a
`kh × kw` window (`stride` and `padding` ints). Return `cols` of shape
`(N, C*kh*kw, H_out*W_out)` with the layout above:

    cols[n, c*kh*kw + i*kw + j, oh*W_out + ow] = x_pad[n, c, oh*stride + i, ow*stride + j]

Two ways, both fine:
- loop over output positions `(oh, ow)`: the window `x_pad[:, :, rows, cols]` of every image,
  `.reshape(N, -1)`, is column `oh*W_out + ow` (the reshape gives the (c, i, j) order);
- faster, loop over the `kh·kw` kernel offsets `(i, j)` only: fill an array of shape
  `(N, C, kh, kw, H_out, W_out)` with strided slices `x_pad[:, :, i : i + stride*H_out : stride, ...]`
  and reshape it at the end.

The tests check the worked example, strided and padded cases, non-square windows, several
images, and (hidden) 20 random cases. The expected `cols` comes from the one-hot convolution
above. Allowed: numpy (including `np.lib.stride_tricks.sliding_window_view`); cnnlib and
scipy.signal are switched off.
""", solution='''
def im2col(x, kh, kw, stride=1, padding=0):
    """Windows of x (N, C, H, W) as columns: (N, C*kh*kw, H_out*W_out)."""
    N, C, H, W = x.shape
    H_out = (H + 2 * padding - kh) // stride + 1
    W_out = (W + 2 * padding - kw) // stride + 1
    ### BEGIN SOLUTION
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.zeros((N, C, kh, kw, H_out, W_out), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
    return cols.reshape(N, C * kh * kw, H_out * W_out)
    ### END SOLUTION
''', tests='''
def reference(x, kh, kw, stride=1, padding=0):
    """im2col as a convolution with one-hot filters (see above)."""
    N, C = x.shape[:2]
    one_hot = np.eye(C * kh * kw).reshape(C * kh * kw, C, kh, kw)
    return F.conv2d(x, one_hot, None, stride, padding).reshape(N, C * kh * kw, -1)

def regrouped(case, axes, shape_of):
    """The reference answer with its rows or columns in another order."""
    cols = reference(*case.values())
    N, R, L = cols.shape
    C, kh, kw = case["x"].shape[1], case["kh"], case["kw"]
    Ho = (case["x"].shape[2] + 2 * case["padding"] - kh) // case["stride"] + 1
    return cols.reshape(shape_of(N, C, kh, kw, Ho, L // Ho)).transpose(axes).reshape(N, -1, L)

def unit_steps(case):
    """The right number of windows, but each one step apart instead of `stride`."""
    N, C, H, W = case["x"].shape
    kh, kw, s, p = case["kh"], case["kw"], case["stride"], case["padding"]
    Ho, Wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    dense = reference(case["x"], kh, kw, 1, p).reshape(N, C * kh * kw, H + 2 * p - kh + 1, -1)
    return dense[:, :, :Ho, :Wo].reshape(N, C * kh * kw, Ho * Wo)

def size_hint(what):
    def hint(c):
        H, p, s, kh = c["x"].shape[2], c["padding"], c["stride"], c["kh"]
        return (f"H_out = (H + 2*padding - kh) // stride + 1 = ({H} + {2 * p} - {kh}) // {s} + 1 = "
                f"{(H + 2 * p - kh) // s + 1}; did you leave out the {what}?")
    return hint

im2col_mistakes = [
    grading.Mistake("the rows are in the wrong order: row = c*kh*kw + i*kw + j, channel first, then "
                    "the kernel row i, then the kernel column j (the order of w.reshape(F, -1)).",
                    lambda c: regrouped(c, (0, 2, 3, 1, 4), lambda N, C, kh, kw, Ho, Wo: (N, C, kh, kw, Ho * Wo))),
    grading.Mistake("the columns are in the wrong order: column = oh*W_out + ow, output positions row "
                    "by row.", lambda c: regrouped(c, (0, 1, 3, 2), lambda N, C, kh, kw, Ho, Wo: (N, C * kh * kw, Ho, Wo))),
    grading.Mistake("each WINDOW is a column: return (N, C*kh*kw, H_out*W_out), not its transpose.",
                    lambda c: reference(*c.values()).transpose(0, 2, 1)),
    grading.Mistake(size_hint("padding"), grading.with_args(reference, padding=0)),
    grading.Mistake(size_hint("stride"), grading.with_args(reference, stride=1)),
    grading.Mistake("the windows moved by 1 pixel: the window of output (oh, ow) starts at row "
                    "oh*stride and column ow*stride of the padded input.", unit_steps),
]
rng = np.random.default_rng(34)
grading.check_function(im2col, reference, [
    {"x": x_ex, "kh": 2, "kw": 2, "stride": 1, "padding": 0},         # the worked example
    {"x": rng.standard_normal((1, 1, 5, 5)), "kh": 3, "kw": 3, "stride": 2, "padding": 1},
    {"x": rng.standard_normal((2, 3, 4, 6)), "kh": 3, "kw": 2, "stride": 1, "padding": 0},
    {"x": rng.standard_normal((2, 2, 7, 5)), "kh": 3, "kw": 3, "stride": 2, "padding": 2},
    {"x": rng.standard_normal((3, 1, 6, 6)), "kh": 1, "kw": 1, "stride": 3, "padding": 0},
], mistakes=im2col_mistakes)
### BEGIN HIDDEN TESTS
hidden_cases = [{"x": c["x"], "kh": c["w"].shape[2], "kw": c["w"].shape[3], "stride": c["stride"],
                 "padding": c["padding"]} for c in grading.conv_cases(20, seed=30401)]
grading.check_function(im2col, reference, hidden_cases, mistakes=im2col_mistakes)
### END HIDDEN TESTS
''')

nb.exercise(5, "convolution as one matrix product", points=3, text=r"""
Write `conv_forward_im2col(x, w, b, stride=1, padding=0)`: the same layer as Exercise 3.1
(same arguments, same output), computed as

1. `cols = im2col(x, KH, KW, stride, padding)`, shape `(N, C*KH*KW, H_out*W_out)`;
2. ONE matrix product with the filters as rows, `w.reshape(F, -1)`: `@` multiplies the
   `(F, C*KH*KW)` matrix with each of the `N` matrices of `cols` at once, giving
   `(N, F, H_out*W_out)`;
3. add the bias to each filter's row (`b[:, None]`) and reshape to `(N, F, H_out, W_out)`.

No loops, and do not call your `conv_forward_naive`: the tests refuse that call and time your
function, which must be at least 5 times faster than plain loops on a batch of 2 RGB images of
20 × 20 with 8 filters. Call your `im2col` as `im2col(x, KH, KW, stride, padding)`. While this
exercise is checked, the test gives it a correct `im2col` for those calls, so a mistake in
Exercise 3.4 costs points only there.

The tests compare with `cnnlib.functional.conv2d_forward` on the worked examples, strided and
padded cases, and (hidden) 20 random cases.
Allowed: numpy and your `im2col`; cnnlib, scipy.signal and your `conv_forward_naive` are
switched off.
""", solution='''
def conv_forward_im2col(x, w, b, stride=1, padding=0):
    """Convolution layer forward as im2col + one matrix product -> (N, F, H_out, W_out)."""
    N, C, H, W = x.shape
    F_, _, KH, KW = w.shape               # F_, since F is cnnlib.functional
    H_out = (H + 2 * padding - KH) // stride + 1
    W_out = (W + 2 * padding - KW) // stride + 1
    ### BEGIN SOLUTION
    cols = im2col(x, KH, KW, stride, padding)             # (N, C*KH*KW, H_out*W_out)
    out = w.reshape(F_, -1) @ cols + b[:, None]           # (N, F, H_out*W_out)
    return out.reshape(N, F_, H_out, W_out)
    ### END SOLUTION
''', tests='''
conv_mistakes = grading.conv_mistakes(F.conv2d)
rng = np.random.default_rng(35)
no_loops = grading.forbidden("conv_forward_naive", "Exercise 3.5 has no loops: compute the "
                             "convolution with im2col and one matrix product.")
# while conv_forward_im2col is checked, im2col is a correct one and conv_forward_naive refuses to run
with grading.substitute(globals(), im2col=grading.reference_stand_in(grading.im2col_reference),
                        conv_forward_naive=no_loops):
    grading.check_function(conv_forward_im2col, F.conv2d, [
        {"x": x_ex, "w": w_ex, "b": np.zeros(1), "stride": 1, "padding": 0},          # the im2col example
        {"x": x_demo, "w": w_demo, "b": b_demo, "stride": 2, "padding": 1},           # the RGB example
        {"x": rng.standard_normal((2, 3, 7, 5)), "w": rng.standard_normal((4, 3, 3, 2)),
         "b": rng.standard_normal(4), "stride": 2, "padding": 1},
        {"x": rng.standard_normal((1, 1, 6, 6)), "w": rng.standard_normal((2, 1, 3, 3)),
         "b": rng.standard_normal(2), "stride": 1, "padding": 0},
    ], mistakes=conv_mistakes)
    timed = {"x": rng.standard_normal((2, 3, 20, 20)), "w": rng.standard_normal((8, 3, 3, 3)),
             "b": rng.standard_normal(8), "stride": 1, "padding": 1}
    grading.check_faster(conv_forward_im2col, grading.conv2d_loops, timed, factor=5)
    ### BEGIN HIDDEN TESTS
    grading.check_function(conv_forward_im2col, F.conv2d, grading.conv_cases(20, seed=30501),
                           mistakes=conv_mistakes)
    ### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 6. How much faster?

Time the three versions on one RGB image of growing size, with 8 filters of 3 × 3 and
padding 1: your loop (Exercise 3.1), your im2col + matrix product (Exercise 3.5), and cnnlib,
which also uses im2col and one matrix product, with a few more tricks (it loops over the
`KH·KW` kernel offsets only and works on the whole batch in one product). Each time is the best
of 3 runs. (An exercise you have not finished is left out of the plot.)
""")

nb.code("""
def best_of(repeats, fn, *args):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)

rng = np.random.default_rng(6)
sizes = [8, 12, 16, 20, 24]
w_t, b_t = rng.standard_normal((8, 3, 3, 3)), rng.standard_normal(8)
inputs = [rng.standard_normal((1, 3, n, n)) for n in sizes]
versions = {
    "loops (your conv_forward_naive)": conv_forward_naive,
    "im2col + matmul (your conv_forward_im2col)": conv_forward_im2col,
    "cnnlib.functional.conv2d": F.conv2d,
}
timings = {}
for label, fn in versions.items():
    try:
        timings[label] = [best_of(3, fn, x_t, w_t, b_t, 1, 1) for x_t in inputs]
    except NotImplementedError:
        print(f"{label}: not implemented yet, left out")
for label, ts in timings.items():
    print(f"{label:45s} {ts[-1] * 1e3:9.3f} ms at {sizes[-1]} x {sizes[-1]}")
viz.plot_timing(sizes, timings, xlabel="image height = width (pixels)", ylabel="seconds per forward pass (log scale)",
                title="Convolution of 1 x 3 x H x W with 8 filters 3 x 3: loops vs one matrix product")
""")

nb.md(r"""
On a log scale a constant speed-up is a constant gap. The loop's time grows with the number of
outputs, `F·H_out·W_out` Python steps; the matrix product does the same arithmetic in compiled
code, hundreds of times faster. At these small sizes its time hardly grows at all: it is mostly
the fixed cost of a few numpy calls, and the gap widens with larger images, more filters and
larger batches. This is why deep learning libraries compute convolutions as matrix products (or
with related tricks), and why from now on the course uses cnnlib's vectorized layer.
""")

nb.md(r"""
## Summary

- A filter is as deep as its input: it multiplies each channel's window by its own slice, adds
  everything up over the channels and adds its bias. In the worked example, 1 + 4 + (−1) + 1 = 5.
- `C_out` filters give an output `C_out` deep; the weights of a layer are `(C_out, C_in, KH, KW)`.
- Weight sharing: one filter at every position. Few parameters, and a pattern is found wherever
  it is.
- Parameters: `(F·F·C_in + 1)·C_out` per convolution, `(inputs + 1)·outputs` per dense layer,
  none for pooling: 208 + 2,080 + 8,256 + 8,645 = 19,189 in the article's model. A locally
  connected layer needs 46,080 weights where a convolution needs 45.
- A 1 × 1 convolution changes the depth only (500 × 500 × 100 → 500 × 500 × 20 for 2,020
  parameters); a dense layer is a convolution whose kernel covers its whole input.
- im2col puts every window in a column, so a convolution becomes one matrix product: much
  faster than loops, for some extra memory.

**Next:** notebook 04 shrinks feature maps with pooling: max and mean, and their backward pass.
""")

nb.references('python_cnn', 'conv_pool_backprop', 'tds_cnn', 'layers_and_params')

if __name__ == "__main__":
    nb.main()

"""Source of solutions/04_pooling/04_pooling.ipynb (run me after editing)."""

from nbbuild import RULES, Notebook

nb = Notebook("04_pooling")

nb.md(rf"""
# 04 · Pooling

After a few convolution layers, one image has become a thick stack of feature maps. A **pooling
layer** shrinks every map: it slides a window over it, as a convolution does, but instead of
multiplying by weights it sums each window up in one number, its **maximum** or its **mean**.
Pooling learns nothing (it has no parameters), yet almost every CNN uses it.

**You will learn**
- max pooling and mean (average) pooling with a window and a stride, on real numbers;
- that the output-size formula of notebook 02 holds for pooling too, and that the depth does
  not change (224 × 224 × 64 → 112 × 112 × 64);
- what pooling does to a photo and to an edge map, and why it has no parameters;
- global average pooling, and why it replaces a huge dense layer (8,645 parameters instead of
  6,205,381 in the article's Keras model);
- the backward pass: max pooling routes each gradient to the window's maximum, mean pooling
  spreads it evenly, and overlapping windows add up.

**Exercises** (13 points)

| exercise | points |
|---|---|
| 4.1 max pooling, forward | 3 |
| 4.2 mean pooling, forward | 2 |
| 4.3 global average pooling | 1 |
| 4.4 max pooling, backward | 4 |
| 4.5 mean pooling, backward | 3 |

**How to work.** Each exercise has a solution cell, which in your copy holds
`raise NotImplementedError()`: replace that line with your code. Then run the test cell below it:
a line starting with ✔ means the visible tests pass. When your work is graded, more tests with
random cases run too (overlapping windows, odd and non-square sizes, one image, one channel), so
solve the problem in general rather than for the visible cases. Exercises are independent:
skipping one costs only its own points. Check the whole notebook with the **Validate** button
(or `nbgrader validate 04_pooling.ipynb`).

{RULES}
""")

nb.setup("""
import numpy as np
import matplotlib.pyplot as plt

from cnnlib import datasets, gradcheck, grading, layers, model, shapes, viz
from cnnlib import functional as F

np.set_printoptions(precision=3, suppress=True)
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 1. Why pool?

The article's example: a conv layer with 64 filters on a 224 × 224 image gives a 224 × 224 × 64
volume, 3,211,264 numbers for **one** image. Much of it is redundant: neighbouring positions of
an edge map say nearly the same thing. A pooling layer compresses the features (the article calls
it "feature compression") and keeps the important ones:

- **max pooling** keeps the largest value of each window. There is no arithmetic, only a
  selection. Why the largest? After a convolution, a large value means "the filter's pattern is
  here": the curve detector of notebook 01 answered 6600 on the curve and 0 elsewhere. The
  maximum keeps the strongest evidence and drops the rest.
- **mean (average) pooling** keeps the average of each window.

What it buys, according to the articles: smaller feature maps, so less computation and memory
(without it, the activations of a large network would not fit on a GPU); fewer parameters in the
dense layers that follow (section 7); less overfitting; and the strongest features survive even
when they move a little (section 5).

Two small drawing helpers for the rest of the notebook: they write the numbers of small 2-D
arrays in grids, side by side, and outline each pooling window in its own colour.
""")

nb.code('''
WINDOW_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"]

def draw_numbers(ax, values, kernel_size=None, stride=None, shade=None):
    """Write a 2-D array's numbers in a grid; outline each pooling window; shade cells where `shade` is True."""
    H, W = values.shape
    ax.imshow(np.zeros((H, W)) if shade is None else shade * 1.0, cmap="Greys", vmin=0, vmax=3)
    for r in range(H):
        for c in range(W):
            ax.text(c, r, f"{values[r, c]:g}", ha="center", va="center", fontsize=12)
    if kernel_size is not None:
        k, s = kernel_size, stride
        for n, (i, j) in enumerate(np.ndindex((H - k) // s + 1, (W - k) // s + 1)):
            inset = 0.05 + 0.07 * (n % 2) if s < k else 0.05      # overlapping windows: nest the outlines
            ax.add_patch(plt.Rectangle((j * s - 0.5 + inset, i * s - 0.5 + inset), k - 2 * inset, k - 2 * inset,
                                       fill=False, lw=3, ec=WINDOW_COLOURS[n % len(WINDOW_COLOURS)]))
    ax.set_xticks(range(W))
    ax.set_yticks(range(H))

def show_grids(suptitle, *panels):
    """Small arrays side by side; each panel is (values, title) or (values, title, options for draw_numbers)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4), layout="constrained")
    for ax, (values, title, *options) in zip(axes, panels):
        draw_numbers(ax, values, **(options[0] if options else {}))
        ax.set_title(title)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    fig.suptitle(suptitle)
    plt.show()
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 2. A worked example: 4 × 4 input, 2 × 2 windows, stride 2

Take one 4 × 4 feature map and pool it with 2 × 2 windows that jump 2 pixels, so the windows
tile the map without overlapping. Each window gives one output, in the same colour:
""")

nb.code("""
x4 = np.array([[1., 1., 2., 4.],
               [5., 6., 7., 8.],
               [3., 2., 1., 0.],
               [1., 2., 3., 4.]])
out_max = np.array([[6., 8.], [3., 4.]])          # worked out by hand below
out_mean = np.array([[3.25, 5.25], [2., 2.]])

one_per_cell = {"kernel_size": 1, "stride": 1}                 # outline each output in its window's colour
show_grids("Each window becomes one number",
           (x4, "input 4 x 4: 2 x 2 windows, stride 2", {"kernel_size": 2, "stride": 2}),
           (out_max, "max pooling: 2 x 2", one_per_cell),
           (out_mean, "mean pooling: 2 x 2", one_per_cell))
""")

nb.md(r"""
By hand:

| window (rows, columns) | values | max | mean |
|---|---|---|---|
| red: rows 0–1, columns 0–1 | 1, 1, 5, 6 | **6** | 13 / 4 = **3.25** |
| blue: rows 0–1, columns 2–3 | 2, 4, 7, 8 | **8** | 21 / 4 = **5.25** |
| green: rows 2–3, columns 0–1 | 3, 2, 1, 2 | **3** | 8 / 4 = **2** |
| orange: rows 2–3, columns 2–3 | 1, 0, 3, 4 | **4** | 8 / 4 = **2** |

cnnlib computes the same. Its pooling functions take a batch in NCHW layout, so the 4 × 4 map
becomes an array of shape `(1, 1, 4, 4)`; like every forward pass in cnnlib they return
`(out, cache)`, where the cache is what the backward pass will need (section 8).
""")

nb.code("""
x = x4[None, None]                                    # (N, C, H, W) = (1, 1, 4, 4)
pooled_max, _ = F.max_pool2d_forward(x, kernel_size=2, stride=2)
pooled_mean, _ = F.avg_pool2d_forward(x, kernel_size=2, stride=2)
print("max pooling:\\n", pooled_max[0, 0])
print("mean pooling:\\n", pooled_mean[0, 0])
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 3. Window, stride and the output size

A pooling window moves exactly like a convolution kernel, so the formula of notebook 02 gives
its output size (the article: the output of a convolution and the output of a pooling layer "are
computed the same way"). Pooling almost never pads, so with window `K` and stride `S`:

$$H_{out} = \left\lfloor \frac{H - K}{S} \right\rfloor + 1 \qquad W_{out} = \left\lfloor \frac{W - K}{S} \right\rfloor + 1$$

Output cell `(i, j)` is computed from the window whose top-left corner is at row `i*S`, column
`j*S`. Three regimes:

- `S = K` (the usual 2 × 2, stride 2): the windows tile the input; height and width are halved.
- `S < K`: **overlapping** windows; a pixel can belong to several windows. AlexNet pooled with
  3 × 3 windows and stride 2.
- `S > K`: gaps; some pixels are never looked at.

**The article's 200 × 200 example** again: after a 5 × 5 convolution (padding 1, stride 2) the map
is 99 × 99 (99.5 rounded down); a 3 × 3 pooling window with padding 0 and stride 1 gives
(99 − 3 + 2·0) / 1 + 1 = **97**; a 3 × 3 convolution with padding 1 keeps 97. The result,
97 × 97 × 2, has depth 2 because the convolutions had 2 filters; pooling did not change it.
""")

nb.code("""
for H, K, S in [(4, 2, 2), (99, 3, 1), (224, 2, 2), (223, 2, 2), (7, 3, 2), (6, 2, 3)]:
    h_out = shapes.conv_output_size(H, K, stride=S)
    real, _ = F.max_pool2d_forward(np.zeros((1, 1, H, H)), K, S)
    print(f"H={H:3d}, K={K}, S={S}: floor(({H} - {K}) / {S}) + 1 = {h_out:3d};  real output {real.shape}")
""")

nb.md(r"""
The article also pools one input with different strides. The 4 × 4 example with 2 × 2 windows and
stride 1 instead of 2 gives a 3 × 3 output, (4 − 2) / 1 + 1 = 3, and the overlapping windows
pick some inputs twice (the 6, the 7 and the 8 each win two windows), which will matter for the
backward pass:
""")

nb.code("""
for stride in [2, 1]:
    out, _ = F.max_pool2d_forward(x4[None, None], kernel_size=2, stride=stride)
    print(f"2 x 2 max pooling, stride {stride}: output {out.shape[2:]}\\n{out[0, 0]}")
""")

nb.md(r"""
The article *Layers and parameters* writes the size of a pooling output as `(H - pool + 1) / stride` for
`padding='valid'`, **rounded up**, and `H / stride` rounded up for `padding='same'`. For 'valid'
this is the same number: `ceil((H - K + 1) / S) = floor((H - K) / S) + 1`. The article's model pools
a 223 × 223 map with 2 × 2 windows: (223 − 2 + 1) / 2 = 111, and our formula gives
floor(221 / 2) + 1 = 111 too.
""")

nb.exercise(1, "max pooling, forward", points=3, text=r"""
Write `max_pool_forward(x, kernel_size, stride)`: max pooling of a batch `x` of shape
`(N, C, H, W)` with square `kernel_size × kernel_size` windows moved by `stride` (ints).
Return `out` of shape `(N, C, H_out, W_out)`, sizes from the formula above, where
`out[n, c, i, j]` is the largest value of `x[n, c]` in the window starting at row `i*stride`,
column `j*stride`.

Loop over the output positions `(i, j)` only: the slice `x[:, :, rows, cols]` is the window of
every image and every channel at once, and `.max(axis=(2, 3))` reduces it to `(N, C)`. Keep the
dtype of `x` (float32 in, float32 out). Allowed: numpy; cnnlib and scipy.ndimage's filters
(`maximum_filter`, ...) are switched off while your function is checked.

The tests check the worked example, overlapping windows, gaps between windows, a leftover row
that no window fits, float32, and (hidden) 26 random cases.
""", solution='''
def max_pool_forward(x, kernel_size, stride):
    """Max pooling of x (N, C, H, W) with k x k windows -> out (N, C, H_out, W_out)."""
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    ### BEGIN SOLUTION
    H_out, W_out = (H - k) // s + 1, (W - k) // s + 1
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    ### END SOLUTION
    return out
''', tests='''
reference = grading.without_cache(F.max_pool2d_forward)
max_mistakes = grading.pool_mistakes(reference) + [
    grading.Mistake("your output is the MEAN of each window: max pooling keeps the largest value.",
                    grading.with_args(grading.without_cache(F.avg_pool2d_forward))),
]
rng = np.random.default_rng(4)
grading.check_function(max_pool_forward, reference, [
    {"x": np.array([[[[1., 1., 2., 4.], [5., 6., 7., 8.], [3., 2., 1., 0.], [1., 2., 3., 4.]]]]),
     "kernel_size": 2, "stride": 2},                                                   # the worked example
    {"x": rng.standard_normal((2, 3, 5, 7)), "kernel_size": 3, "stride": 1},          # overlapping windows
    {"x": rng.standard_normal((1, 2, 7, 7)), "kernel_size": 3, "stride": 2},          # overlapping, AlexNet-style
    {"x": rng.standard_normal((2, 1, 6, 5)), "kernel_size": 2, "stride": 3},          # gaps between windows
    {"x": rng.standard_normal((3, 2, 5, 9)).astype(np.float32), "kernel_size": 2, "stride": 2},  # leftover row
], mistakes=max_mistakes)
### BEGIN HIDDEN TESTS
hidden_cases = grading.pool_cases(20, seed=40101) + grading.pool_cases(6, seed=40102, dtype=np.float32)
grading.check_function(max_pool_forward, reference, hidden_cases, mistakes=max_mistakes)
### END HIDDEN TESTS
''')

nb.exercise(2, "mean pooling, forward", points=2, text=r"""
Write `avg_pool_forward(x, kernel_size, stride)`: the same as `max_pool_forward`, but each output
is the **mean** of its window. Same arguments, same output shape, same dtype as `x`.

The tests check the worked example (3.25, 5.25, 2, 2), overlapping windows, gaps, and (hidden)
26 random cases.
Allowed: numpy, as in Exercise 4.1; cnnlib and scipy.ndimage's filters are switched off.
""", solution='''
def avg_pool_forward(x, kernel_size, stride):
    """Mean pooling of x (N, C, H, W) with k x k windows -> out (N, C, H_out, W_out)."""
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    ### BEGIN SOLUTION
    H_out, W_out = (H - k) // s + 1, (W - k) // s + 1
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].mean(axis=(2, 3))
    ### END SOLUTION
    return out
''', tests='''
reference = grading.without_cache(F.avg_pool2d_forward)
avg_mistakes = grading.pool_mistakes(reference) + [
    grading.Mistake(lambda c: f"your outputs are {c['kernel_size']}*{c['kernel_size']} times too large: the mean "
                              f"is the window's sum divided by the number of values (kernel_size**2).",
                    lambda c: reference(*c.values()) * c["kernel_size"] ** 2),
    grading.Mistake("your output is the MAX of each window: mean pooling averages the window.",
                    grading.with_args(grading.without_cache(F.max_pool2d_forward))),
]
rng = np.random.default_rng(5)
grading.check_function(avg_pool_forward, reference, [
    {"x": np.array([[[[1., 1., 2., 4.], [5., 6., 7., 8.], [3., 2., 1., 0.], [1., 2., 3., 4.]]]]),
     "kernel_size": 2, "stride": 2},                                                   # the worked example
    {"x": rng.standard_normal((2, 3, 5, 7)), "kernel_size": 3, "stride": 1},          # overlapping windows
    {"x": rng.standard_normal((2, 1, 6, 5)), "kernel_size": 2, "stride": 3},          # gaps between windows
    {"x": rng.standard_normal((1, 2, 5, 9)).astype(np.float32), "kernel_size": 2, "stride": 2},  # leftover row
], mistakes=avg_mistakes)
### BEGIN HIDDEN TESTS
hidden_cases = grading.pool_cases(20, seed=40201) + grading.pool_cases(6, seed=40202, dtype=np.float32)
grading.check_function(avg_pool_forward, reference, hidden_cases, mistakes=avg_mistakes)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 4. The depth does not change

Pooling works on each feature map (each channel) on its own: the depth axis takes no part in
the computation. A pooling layer therefore changes the size of the maps but never their number;
the article's example is 224 × 224 × 64 → 112 × 112 × 64. (A convolution layer is different: it
mixes all input channels, and its depth is its number of filters.)
""")

nb.code("""
rng = np.random.default_rng(0)
volume = rng.random((1, 64, 224, 224)).astype(np.float32)       # one image, 64 feature maps (NCHW)
pooled, _ = F.max_pool2d_forward(volume, kernel_size=2, stride=2)
print("in :", volume.shape, f"= {volume[0].size:,} numbers")
print("out:", pooled.shape, f"= {pooled[0].size:,} numbers (a quarter)")

alone, _ = F.max_pool2d_forward(volume[:, 5:6], kernel_size=2, stride=2)    # channel 5 by itself
print("channel 5 pooled alone equals channel 5 of the pooled volume:", np.array_equal(alone[:, 0], pooled[:, 5]))
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 5. Pooling a real photo

On a photo, pooling is downsampling: each 2 × 2 max pooling keeps one pixel in four. The person
stays recognisable long after most of the numbers are gone.
""")

nb.code("""
gray = datasets.sample_image("grace_hopper", gray=True, dtype=np.float32)   # (600, 512), values in [0, 1]
fig, axes = plt.subplots(1, 4, figsize=(15, 4.6), layout="constrained")
axes[0].imshow(gray, cmap="gray", vmin=0, vmax=1)
axes[0].set_title(f"photo {gray.shape}")
for ax, k in zip(axes[1:], [2, 4, 8]):
    small, _ = F.max_pool2d_forward(gray[None, None], kernel_size=k, stride=k)
    ax.imshow(small[0, 0], cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"max pool {k} x {k}, stride {k}: {small.shape[2:]}")
for ax in axes:
    ax.set_xlabel("column")
    ax.set_ylabel("row")
fig.suptitle("Max pooling downsamples: 600 x 512 -> 300 x 256 -> 150 x 128 -> 75 x 64")
plt.show()
""")

nb.md(r"""
In a CNN, pooling comes after a convolution and a ReLU, so it pools **feature maps**, not photos.
Here is notebook 01's vertical-line detector applied to the photo, followed by 8 × 8 pooling.
Max pooling keeps every thin edge at full strength; mean pooling averages each edge with the dark
background around it, and the weak ones fade: this is why max pooling is the usual choice after
a convolution.
""")

nb.code("""
vertical = np.array([[-1., 0., 1.],
                     [-1., 0., 1.],
                     [-1., 0., 1.]])
edges = np.maximum(F.conv2d(gray[None, None], vertical[None, None]), 0)      # conv -> ReLU: (1, 1, 598, 510)
edges_max, _ = F.max_pool2d_forward(edges, kernel_size=8, stride=8)
edges_mean, _ = F.avg_pool2d_forward(edges, kernel_size=8, stride=8)

fig, axes = plt.subplots(1, 3, figsize=(14, 5), layout="constrained")
for ax, img, title in zip(axes, [edges, edges_max, edges_mean],
                          ["vertical edges (conv + ReLU)", "max pool 8 x 8", "mean pool 8 x 8"]):
    ax.imshow(img[0, 0], cmap="magma", vmin=0, vmax=float(edges.max()))
    ax.set_title(f"{title}: {img.shape[2:]}")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
fig.suptitle("Pooling a feature map: max keeps the strongest responses, mean dilutes them")
plt.show()
print(f"strongest response: {edges.max():.2f};  after max pooling: {edges_max.max():.2f};"
      f"  after mean pooling: {edges_mean.max():.2f}")
""")

nb.md(r"""
**Small shifts.** Because max pooling asks only "how strong is the strongest response in this
window?", a feature that moves a little *inside* a window gives exactly the same output. Below,
a single strong response (9) sits at three positions; the first two are in the same 2 × 2
window, the third has crossed into the next one. The invariance is real but limited to shifts
within a window.
""")

nb.code("""
for r, c in [(0, 0), (1, 1), (1, 2)]:
    feature = np.zeros((1, 1, 4, 4))
    feature[0, 0, r, c] = 9.0
    out, _ = F.max_pool2d_forward(feature, kernel_size=2, stride=2)
    print(f"the 9 at ({r}, {c}) -> pooled {out[0, 0].tolist()}")
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 6. Pooling has no parameters

A convolution layer learns its kernels; a pooling layer has nothing to learn: its output is fixed
by the window and the stride. The article draws a conclusion from this: when people say a
CNN has N layers, they count only the layers **with parameters** (convolution and fully
connected layers), so pooling layers are not counted.

cnnlib's layer classes agree: a `MaxPool2d` has no parameters, and in a model summary every
pooling row shows 0. Here is the article's Keras model, rebuilt with cnnlib (Keras shows
height × width × channels; cnnlib shows NCHW, channels first; `None` is the batch size):
""")

nb.code("""
print("parameters of MaxPool2d(2):", layers.MaxPool2d(2).parameters())

rng = np.random.default_rng(0)
keras_model = model.Sequential([
    layers.Conv2d(3, 16, kernel_size=2, rng=rng), layers.MaxPool2d(2),
    layers.Conv2d(16, 32, kernel_size=2, rng=rng), layers.MaxPool2d(2),
    layers.Conv2d(32, 64, kernel_size=2, rng=rng), layers.MaxPool2d(2),
    layers.GlobalAvgPool2d(),
    layers.Linear(64, 133, rng=rng),
])
keras_model.summary((3, 224, 224))
""")

nb.md(r"""
Total params: 208 + 2,080 + 8,256 + 8,645 = **19,189**, and 0 for each pooling layer. (The article's
model also has ReLU and softmax activations; they have no parameters either and do not change
the shapes, so they are left out here.) By the article's rule, this is a 4-layer network: three
convolutions and one dense layer.
""")

nb.code("""
with_params = [layer.name for layer in keras_model if layer.parameters()]
print(f"{len(keras_model)} layers in the summary, {len(with_params)} with parameters: {with_params}")
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 7. Global average pooling

Before the classifier, a CNN must turn its last stack of feature maps into one vector. The
classic way is to **flatten** it: the article's 32 × 32 × 10 volume becomes 10,240 features, and a
dense layer connects every one of them to every class.

**Global average pooling** (GAP) is mean pooling with a window as large as the whole map: each
channel becomes one number, its average over all positions, so `(N, C, H, W)` → `(N, C)`. The
article's model uses it (Keras' `GlobalAveragePooling2D`) on its last map, 27 × 27 × 64:

| head | features into the dense layer | parameters of Dense(133) |
|---|---|---|
| Flatten + Dense | 27 · 27 · 64 = 46,656 | 46,656 · 133 + 133 = **6,205,381** |
| GAP + Dense | 64 | 64 · 133 + 133 = **8,645** |

With Flatten the whole model would have 6,215,925 parameters instead of 19,189, over 300 times as
many, almost all in one layer, and a layer that size can memorise the training images instead of
learning from them (the articles: GAP reduces the parameters and the overfitting). Let cnnlib count:
""")

nb.code("""
flat_model = model.Sequential([
    layers.Conv2d(3, 16, kernel_size=2, rng=rng), layers.MaxPool2d(2),
    layers.Conv2d(16, 32, kernel_size=2, rng=rng), layers.MaxPool2d(2),
    layers.Conv2d(32, 64, kernel_size=2, rng=rng), layers.MaxPool2d(2),
    layers.Flatten(),
    layers.Linear(27 * 27 * 64, 133, rng=rng),
])
flat_model.summary((3, 224, 224))
""")

nb.code("""
n_flat, n_gap = flat_model.count_params(), keras_model.count_params()
print(f"Flatten + Dense: {n_flat:,} parameters;  GAP + Dense: {n_gap:,};  ratio {n_flat / n_gap:.0f}x")
print("the last layer alone:", f"{flat_model[-1].num_params()[0]:,}", "vs", f"{keras_model[-1].num_params()[0]:,}")
""")

nb.md(r"""
Three more reasons GAP is popular (it replaced the big dense layers of VGG-style networks in
GoogLeNet and ResNet, notebook 08):

- each channel becomes a score "how strongly is feature *c* present, anywhere in the image", a
  summary that does not care where the feature is;
- the dense layer after GAP needs `C` inputs whatever the image size, so the same network
  accepts larger or smaller images; with Flatten the input size is fixed by the dense layer;
- GAP itself, like every pooling layer, has no parameters.
""")

nb.code("""
for size in [(3, 224, 224), (3, 160, 200)]:
    print(f"input {size}: last map {keras_model.output_shapes(size)[-3]}, after GAP {keras_model.output_shapes(size)[-2]}")
""")

nb.exercise(3, "global average pooling", points=1, text=r"""
Write `global_avg_pool(x)`: the mean of each channel of each image of `x` `(N, C, H, W)` over all
its positions. Return an array of shape `(N, C)` (not `(N, C, 1, 1)`).

The tests check a small example, one image, one channel, non-square maps and (hidden) 12 random
cases.
Allowed: numpy; cnnlib is switched off.
""", solution='''
def global_avg_pool(x):
    """Global average pooling: x (N, C, H, W) -> (N, C)."""
    ### BEGIN SOLUTION
    return x.mean(axis=(2, 3))
    ### END SOLUTION
''', tests='''
reference = grading.without_cache(F.global_avg_pool2d_forward)
gap_mistakes = [
    grading.Mistake("return shape (N, C): average over axes 2 and 3 without keepdims.",
                    lambda c: c["x"].mean(axis=(2, 3), keepdims=True)),
    grading.Mistake("average over the height and width (axes 2 and 3) only: one number per image AND channel.",
                    lambda c: c["x"].mean(axis=(1, 2, 3))),
    grading.Mistake("keep the images apart: average over axes 2 and 3, not over the batch axis 0.",
                    lambda c: c["x"].mean(axis=(0, 2, 3))),
    grading.Mistake("that is global MAX pooling: global average pooling takes the mean.",
                    lambda c: c["x"].max(axis=(2, 3))),
]
rng = np.random.default_rng(6)
grading.check_function(global_avg_pool, reference, [
    {"x": np.arange(8.0).reshape(1, 2, 2, 2)},                     # channel means 1.5 and 5.5
    {"x": rng.standard_normal((3, 4, 5, 2))},
    {"x": rng.standard_normal((2, 1, 1, 7))},
], mistakes=gap_mistakes)
### BEGIN HIDDEN TESTS
def gap_case(rng):
    N = 1 if rng.random() < 0.3 else int(rng.integers(2, 5))
    C = 1 if rng.random() < 0.3 else int(rng.integers(2, 7))
    H, W = (int(v) for v in rng.integers(1, 9, size=2))
    return {"x": rng.standard_normal((N, C, H, W))}

hidden_cases = grading.random_cases(gap_case, 12, seed=40301)
grading.check_function(global_avg_pool, reference, hidden_cases, mistakes=gap_mistakes)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 8. Backward: where does the gradient go?

To train a network, the gradient of the loss flows backwards through every layer (notebook 05
does this in full). A pooling layer receives `dout`, the gradient with respect to its small output
`(N, C, H_out, W_out)`, and must return `dx`, the gradient with respect to its input
`(N, C, H, W)`. The article calls this step **upsample**: each number of `dout` goes back to the
window it came from.

**Max pooling.** `out = max(window)`. Nudge an input that is *not* the maximum a little: the
output does not change, so its gradient is 0. Nudge the maximum: the output moves by the same
amount, so its gradient is 1. In the article's words: the backward pass only needs to know where
the maximum was in the forward pass; that position gets the gradient, the others get zero (that
is what the cache remembers).

**Mean pooling.** `out = (x_1 + … + x_{K·K}) / (K·K)`: every input has the derivative `1 / (K·K)`,
so each of the `K·K` positions gets `dout / (K·K)`. The article: spread it evenly.

**Worked example.** The 4 × 4 input of section 2 and `dout = [[1, 2], [3, 4]]`:

- max: the window maxima were 6 at (1, 1), 8 at (1, 3), 3 at (2, 0) and 4 at (3, 3); they get
  1, 2, 3 and 4, every other position 0;
- mean: the red window's four positions get 1/4 = 0.25 each, blue 2/4 = 0.5, green 0.75,
  orange 1.
""")

nb.code("""
dout = np.array([[1., 2.], [3., 4.]])
out, cache = F.max_pool2d_forward(x4[None, None], kernel_size=2, stride=2)
dx_max = F.max_pool2d_backward(dout[None, None], cache)[0, 0]
out, cache = F.avg_pool2d_forward(x4[None, None], kernel_size=2, stride=2)
dx_mean = F.avg_pool2d_backward(dout[None, None], cache)[0, 0]

windows = {"kernel_size": 2, "stride": 2}
show_grids("Backward: max routes each gradient to its window's maximum, mean spreads it evenly",
           (x4, "input (maxima shaded)", {**windows, "shade": dx_max != 0}),
           (dout, "dout (one per window)", {"kernel_size": 1, "stride": 1}),
           (dx_max, "dx, max pooling", {**windows, "shade": dx_max != 0}),
           (dx_mean, "dx, mean pooling", windows))
print("sum of dout:", dout.sum(), "  sum of dx (max):", dx_max.sum(), "  sum of dx (mean):", dx_mean.sum())
""")

nb.md(r"""
A useful check: every window hands on exactly its own `dout`, all of it, so `dx` always sums to
the same total as `dout` (10 here), for max and mean pooling alike.

### Overlapping windows add up

When `S < K`, one input pixel can sit in several windows and receive a gradient from each; the
gradients **add** (the chain rule sums over every path from an input to the loss). Take a 3 × 3
input with a 9 in the middle and 2 × 2 windows with stride 1: there are four windows, all of them
contain the 9, and all four pick it as their maximum. With `dout = [[1, 2], [3, 4]]` the 9
receives 1 + 2 + 3 + 4 = **10**. For mean pooling each pixel gets a quarter of the `dout` of every
window it belongs to: the centre gets (1 + 2 + 3 + 4) / 4 = 2.5, the top middle (1 + 2) / 4 = 0.75.
""")

nb.code("""
x3 = np.array([[[[1., 2., 0.],
                 [3., 9., 4.],
                 [0., 5., 1.]]]])
dout3 = np.array([[[[1., 2.],
                    [3., 4.]]]])
out, cache = F.max_pool2d_forward(x3, kernel_size=2, stride=1)
dx3_max = F.max_pool2d_backward(dout3, cache)
out, cache = F.avg_pool2d_forward(x3, kernel_size=2, stride=1)
dx3_mean = F.avg_pool2d_backward(dout3, cache)

overlapping = {"kernel_size": 2, "stride": 1}
show_grids("3 x 3 input, 2 x 2 windows, stride 1: gradients from overlapping windows add up",
           (x3[0, 0], "input: four overlapping windows", {**overlapping, "shade": x3[0, 0] == 9}),
           (dout3[0, 0], "dout (one per window)", {"kernel_size": 1, "stride": 1}),
           (dx3_max[0, 0], "dx, max pooling: 1 + 2 + 3 + 4", {"shade": x3[0, 0] == 9}),
           (dx3_mean[0, 0], "dx, mean pooling", overlapping))
""")

nb.md(r"""
A numerical gradient confirms both: nudge each input by ±h and watch how `sum(out * dout)`
changes (notebook 05 explains why this is the gradient). A relative error near 1e-10 means the
two agree:
""")

nb.code("""
for name, forward, dx in [("max", F.max_pool2d_forward, dx3_max), ("mean", F.avg_pool2d_forward, dx3_mean)]:
    numeric = gradcheck.numerical_gradient(lambda v: forward(v, kernel_size=2, stride=1)[0], x3.copy(), df=dout3)
    print(f"{name} pooling, numerical gradient:\\n{numeric[0, 0]}\\n  relative error vs cnnlib's dx: "
          f"{gradcheck.rel_error(numeric, dx):.1e}")
""")

nb.md(r"""
### Ties

What if a window holds its maximum twice, like `[[3, 3], [1, 0]]`? The maximum is not
differentiable there, and any split of the gradient between the two 3s is a valid choice. cnnlib
follows PyTorch: the **first** maximum in row-major order (left to right, then top to bottom)
gets the whole gradient, so each window passes its `dout` to exactly one input. Ties are not
rare: after a ReLU, a window in a dark region is all zeros.

A numerical gradient cannot settle a tie: nudging the first 3 up raises the output, nudging it
down does not, so the central difference gives 0.5 for each. That is why gradient checks use
inputs without ties.
""")

nb.code("""
x_tie = np.array([[[[3., 3.],
                    [1., 0.]]]])
out, cache = F.max_pool2d_forward(x_tie, kernel_size=2)
print("cnnlib routes the gradient to the first 3:\\n", F.max_pool2d_backward(np.ones((1, 1, 1, 1)), cache)[0, 0])
numeric = gradcheck.numerical_gradient(lambda v: F.max_pool2d_forward(v, 2)[0], x_tie.copy(), df=np.ones((1, 1, 1, 1)))
print("the numerical gradient splits it:\\n", numeric[0, 0])
""")

nb.md(r"""
### Pooling inside a network

The article follows the gradient through a block **conv A → activation → pool → conv B**. Knowing
the gradient at the pooling layer's output, going back to conv A takes two steps: undo the
pooling (upsample, as above), then multiply by the derivative of the activation (for ReLU: 1
where conv A's output was positive, 0 elsewhere). In the other direction, a convolution that
comes right after a pooling layer passes its gradient to the pooling output directly, because
pooling has no activation; only the upsampling remains.
""")

nb.code("""
z = np.array([[[[ 2., -1.,  0.5, 3.],
                [-4.,  1., -2.,  -1.],
                [-1., -3.,  6.,   2.],
                [-2., -5.,  1.,  -0.5]]]])           # conv A's output before the activation
a, relu_cache = F.relu_forward(z)
p, pool_cache = F.max_pool2d_forward(a, kernel_size=2)
dp = np.array([[[[1., 2.], [3., 4.]]]])              # the gradient arriving at the pooling output
da = F.max_pool2d_backward(dp, pool_cache)           # 1. upsample
dz = F.relu_backward(da, relu_cache)                 # 2. times ReLU's derivative
print("pooled:", p[0, 0].tolist())
print("gradient at conv A's output:\\n", dz[0, 0])
""")

nb.md(r"""
The bottom-left window is all zeros after the ReLU (a tie): the first zero, at (2, 0), gets the 3,
and the ReLU then blocks it, because `z` was negative there. Only 1, 2 and 4 reach conv A.
""")

nb.exercise(4, "max pooling, backward", points=4, text=r"""
Complete `max_pool_backward(dout, x, kernel_size, stride)`: the gradient `dx` `(N, C, H, W)` of
max pooling, given the upstream gradient `dout` `(N, C, H_out, W_out)` and the forward pass's input
`x`. The loops over the output positions and each window, flattened to `(N, C, k*k)`, are given.
For each window:

1. find the position of its **first** maximum: `window.argmax(axis=2)` (np.argmax returns the
   first one in a tie, and the flattened window is in row-major order);
2. send `dout[:, :, i, j]` to that position and nothing to the others (a one-hot mask over the
   `k*k` positions, times `dout`, reshaped to `(N, C, k, k)`);
3. **add** it to `dx` in the window's place: overlapping windows add up.

The tests check the worked example, the overlapping example (10 in the middle), the tie, random
cases against cnnlib and against numerical gradients, and (hidden) 20 random cases (overlapping
windows, gaps, one image, one channel), 8 more gradient checks and 8 cases full of ties.
Allowed: numpy; cnnlib is switched off.
""", solution='''
def max_pool_backward(dout, x, kernel_size, stride):
    """Gradient of max pooling: dout (N, C, H_out, W_out) -> dx (N, C, H, W)."""
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    dx = np.zeros(x.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(N, C, k * k)
            ### BEGIN SOLUTION
            first_max = window.argmax(axis=2)                    # (N, C)
            one_hot = np.arange(k * k) == first_max[:, :, None]  # (N, C, k*k): True at the maximum
            grad = one_hot * dout[:, :, i, j, None]
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += grad.reshape(N, C, k, k)
            ### END SOLUTION
    return dx
''', tests='''
reference = grading.backward_reference(F.max_pool2d_forward, F.max_pool2d_backward)
x_overlap = np.array([[[[1., 2., 0.], [3., 9., 4.], [0., 5., 1.]]]])
x_tie = np.array([[[[3., 3.], [1., 0.]]]])
backward_mistakes = [
    grading.Mistake("you spread each gradient over its window (mean pooling's backward): max pooling sends "
                    "all of it to ONE input, the position of the window's maximum.",
                    grading.with_args(grading.backward_reference(F.avg_pool2d_forward, F.avg_pool2d_backward))),
    grading.Mistake("these windows overlap, and all four pick the 9 in the middle: it must receive the SUM "
                    "1 + 2 + 3 + 4 = 10. Add to dx (+=) instead of overwriting it.",
                    grading.known_answer(np.array([[[[0., 0., 0.], [0., 4., 0.], [0., 0., 0.]]]]), x=x_overlap)),
] + grading.max_pool_tie_mistakes()   # a tie sent to the LAST maximum, to EVERY maximum, or shared
grading.check_function(max_pool_backward, reference, [
    {"dout": np.array([[[[1., 2.], [3., 4.]]]]),
     "x": np.array([[[[1., 1., 2., 4.], [5., 6., 7., 8.], [3., 2., 1., 0.], [1., 2., 3., 4.]]]]),
     "kernel_size": 2, "stride": 2},                                              # the worked example
    {"dout": np.array([[[[1., 2.], [3., 4.]]]]), "x": x_overlap, "kernel_size": 2, "stride": 1},
    {"dout": np.array([[[[5.]]]]), "x": x_tie, "kernel_size": 2, "stride": 2},
] + grading.with_dout(grading.pool_cases(4, 4), F.max_pool2d_forward, 4), mistakes=backward_mistakes)
grading.check_gradients(max_pool_backward, F.max_pool2d_forward, grading.pool_cases(4, 44), wrt=["x"])
### BEGIN HIDDEN TESTS
hidden_cases = grading.with_dout(grading.pool_cases(20, seed=40401), F.max_pool2d_forward, seed=40401)
grading.check_function(max_pool_backward, reference, hidden_cases, mistakes=backward_mistakes)
grading.check_gradients(max_pool_backward, F.max_pool2d_forward, grading.pool_cases(8, seed=40402), wrt=["x"],
                        seed=40402)
tie_cases = grading.with_dout(grading.pool_cases(8, seed=40403, ties=True), F.max_pool2d_forward, seed=40403)
grading.check_function(max_pool_backward, reference, tie_cases, mistakes=backward_mistakes)
### END HIDDEN TESTS
''')

nb.exercise(5, "mean pooling, backward", points=3, text=r"""
Write `avg_pool_backward(dout, x_shape, kernel_size, stride)`: the gradient `dx` of mean pooling,
an array of shape `x_shape = (N, C, H, W)`, given `dout` `(N, C, H_out, W_out)`. Mean pooling's
gradient does not depend on the values of `x`, only on its shape: each window spreads
`dout[:, :, i, j] / (k*k)` evenly over its `k*k` positions, and overlapping windows add up.
Pixels that no window covers (gaps, a leftover row) get 0.

The tests check the worked example, the overlapping example (2.5 in the middle), random cases
against cnnlib and against numerical gradients, and (hidden) 20 random cases and 8 more gradient checks.
Allowed: numpy; cnnlib is switched off.
""", solution='''
def avg_pool_backward(dout, x_shape, kernel_size, stride):
    """Gradient of mean pooling: dout (N, C, H_out, W_out) -> dx of shape x_shape (N, C, H, W)."""
    k, s = kernel_size, stride
    dx = np.zeros(x_shape)
    ### BEGIN SOLUTION
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += dout[:, :, i, j, None, None] / (k * k)
    ### END SOLUTION
    return dx
''', tests='''
# avg_pool_backward takes x's shape, not x: the forward pass runs on zeros of that shape
reference = grading.backward_reference(F.avg_pool2d_forward, F.avg_pool2d_backward, by_shape=["x"])
avg_back_mistakes = [
    grading.Mistake(lambda c: f"your gradients are {c['kernel_size']}*{c['kernel_size']} times too large: each "
                              f"position gets dout / (kernel_size * kernel_size), because out is the window's sum "
                              f"divided by kernel_size**2.",
                    lambda c: reference(*c.values()) * c["kernel_size"] ** 2),
    grading.Mistake("these windows overlap: the middle pixel is in all four and must get (1 + 2 + 3 + 4) / 4 = 2.5. "
                    "Add to dx (+=) instead of overwriting it.",
                    grading.known_answer(np.array([[[[0.25, 0.5, 0.5], [0.75, 1., 1.], [0.75, 1., 1.]]]]),
                                         x_shape=(1, 1, 3, 3), stride=1)),
    grading.ErrorHint(ValueError, r"broadcast together with shapes \\(\\d+,\\d+,\\d+,\\d+\\) \\(\\d+,\\d+\\)",
                      "dout[:, :, i, j] has shape (N, C): give it two more axes, dout[:, :, i, j, None, None], "
                      "to spread it over the (N, C, k, k) window."),
]
grading.check_function(avg_pool_backward, reference, [
    {"dout": np.array([[[[1., 2.], [3., 4.]]]]), "x_shape": (1, 1, 4, 4), "kernel_size": 2, "stride": 2},
    {"dout": np.array([[[[1., 2.], [3., 4.]]]]), "x_shape": (1, 1, 3, 3), "kernel_size": 2, "stride": 1},
] + grading.with_dout(grading.pool_cases(4, 5), F.avg_pool2d_forward, 5, by_shape=["x"]),
   mistakes=avg_back_mistakes)
grading.check_gradients(avg_pool_backward, F.avg_pool2d_forward, grading.pool_cases(4, 55), wrt=["x"],
                        by_shape=["x"])
### BEGIN HIDDEN TESTS
hidden_cases = grading.with_dout(grading.pool_cases(20, seed=40501), F.avg_pool2d_forward, seed=40501, by_shape=["x"])
grading.check_function(avg_pool_backward, reference, hidden_cases, mistakes=avg_back_mistakes)
grading.check_gradients(avg_pool_backward, F.avg_pool2d_forward, grading.pool_cases(8, seed=40502), wrt=["x"],
                        by_shape=["x"], seed=40502)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## Summary

- Pooling slides a window over each feature map and keeps its **max** or its **mean**: the 4 × 4
  example gives [[6, 8], [3, 4]] and [[3.25, 5.25], [2, 2]].
- Output size: `H_out = (H - K) // S + 1`, the convolution formula without padding (99 → 97 for
  a 3 × 3 window with stride 1); windows overlap when `S < K`.
- Each channel is pooled on its own: the depth does not change (224 × 224 × 64 → 112 × 112 × 64).
- Pooling has no parameters, so it is not counted in a network's number of layers.
- Global average pooling turns `(N, C, H, W)` into `(N, C)`; in the article's model the head needs
  8,645 parameters instead of 6,205,381 with Flatten.
- Backward ("upsample"): max pooling sends each gradient to the window's first maximum, mean
  pooling spreads `dout / (K·K)` over the window, overlapping windows add up, and `dx` sums to the
  same total as `dout`.

**Next:** notebook 05 follows the gradient through the other layers (ReLU, dense, convolution,
the loss) and checks every backward pass numerically.
""")

nb.references('conv_pool_backprop', 'layers_and_params', 'python_cnn')

if __name__ == "__main__":
    nb.main()

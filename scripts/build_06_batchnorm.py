"""Source of solutions/06_batchnorm/06_batchnorm.ipynb (run me after editing)."""

from nbbuild import RULES, Notebook

nb = Notebook("06_batchnorm")

nb.md(r"""
# 06 · Batch normalization

Deep networks are hard to train: a learning rate that is a little too large makes the loss blow
up, the activations of a deep stack shrink to nothing or grow without bound, and everything
depends on how the weights happened to be initialised. **Batch normalization** (BN), a training trick
that the article says one meets all the time in deep learning, answers all three: in a layer of
the network, normalize each mini-batch so that every feature has mean 0 and variance 1, then let
the network scale and shift it again with two learned numbers per feature. Its main effect,
says the article, is to ease vanishing and exploding gradients and to speed up training.

**You will learn**
- what BN computes for a batch of vectors `(N, D)`, with a worked example by hand;
- training vs evaluation: batch statistics vs running statistics, the update rule stated
  exactly (cnnlib follows PyTorch's `BatchNorm2d`), and the classic bug of evaluating a model in
  training mode, shown on a trained network;
- spatial BN for feature maps `(N, C, H, W)` by the article's reshape to `(N·H·W, C)`, and why a
  plain reshape that does not move `C` last is wrong;
- the backward pass, and why it has two extra terms;
- where the layer sits (the article's Conv → Pool → BN → ReLU block, and the alternatives);
- the article's three claimed benefits, each put to a small real experiment on MNIST, with what
  held and what held only partly.

**Exercises** (13 points)

| exercise | points |
|---|---|
| 6.1 batch norm in training mode, with the running statistics | 3 |
| 6.2 training and evaluation mode | 3 |
| 6.3 spatial batch norm by the reshape to (N·H·W, C) | 3 |
| 6.4 batch norm backward | 4 |

**How to work.** Each exercise has a solution cell, which in your copy holds
`raise NotImplementedError()`: replace that line with your code. Then run the test cell below it:
a line starting with ✔ means the visible tests pass. When your work is graded, more tests with
random cases run too (features and channels with very different means and scales, N ≠ D,
N ≠ C ≠ H ≠ W, other momentums and eps), so solve the problem in general rather than for the
visible cases. Exercises are independent: skipping one costs only its own points. Check the
whole notebook with the **Validate** button (or `nbgrader validate 06_batchnorm.ipynb`).
""")

nb.md(RULES)

nb.setup("""
import time

import numpy as np
import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits

from cnnlib import datasets, gradcheck, grading
from cnnlib import functional as F
from cnnlib.layers import BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU
from cnnlib.losses import softmax_cross_entropy
from cnnlib.model import Sequential
from cnnlib.optim import SGD
from cnnlib.train import evaluate, fit

np.set_printoptions(precision=4, suppress=True)
threadpool_limits(1)   # this notebook's arrays are small: one BLAS thread is faster than two
notebook_started = time.perf_counter()
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 1. What batch norm computes

The article's definition: BN normalizes the data of each mini-batch in a layer of the network
so that its mean becomes 0 and its variance 1, **along the batch direction**. For a batch of
`N` vectors with `D` features each, an array `x` of shape `(N, D)` (the outputs of a fully
connected layer, say), that means one mean and one variance **per feature**, computed down
axis 0 over the `N` samples:

$$\mu_j = \frac{1}{N}\sum_{i=1}^{N} x_{ij} \qquad
\sigma_j^2 = \frac{1}{N}\sum_{i=1}^{N} (x_{ij} - \mu_j)^2 \qquad
\hat{x}_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma_j^2 + \varepsilon}} \qquad
y_{ij} = \gamma_j\,\hat{x}_{ij} + \beta_j$$

- `ε` (eps, 1e-5 by default) keeps the division safe when a feature is constant in the batch.
- The variance divides by `N`, not `N − 1`: it is the batch's own spread (`x.var(axis=0)` in
  numpy, whose default is exactly this).
- `γ` (gamma) and `β` (beta) are learned, one of each per feature. Without them every feature
  would be forced to mean 0 and variance 1, which limits what the layer can express (a ReLU
  after it would always cut away half of the values). With `γ = sqrt(σ² + ε)` and `β = μ` the
  layer can even undo the normalization; training decides. They start at 1 and 0.

**Worked example.** A batch of 4 samples with 3 features on very different scales:
""")

nb.data("example", """
x_example = np.array([[1., 10., -2.],
                      [3., 20., -2.],
                      [5., 30.,  2.],
                      [7., 40.,  2.]])                 # (N, D) = (4, 3)
""")

nb.md(r"""
By hand, feature by feature:

| feature | values | mean μ | variance σ² (÷ N) | x̂ = (x − μ) / √(σ² + ε) |
|---|---|---|---|---|
| 0 | 1, 3, 5, 7 | 4 | (9 + 1 + 1 + 9) / 4 = 5 | −1.342, −0.447, 0.447, 1.342 |
| 1 | 10, 20, 30, 40 | 25 | (225 + 25 + 25 + 225) / 4 = 125 | −1.342, −0.447, 0.447, 1.342 |
| 2 | −2, −2, 2, 2 | 0 | 4 | −1, −1, 1, 1 |

Features 0 and 1 differ by a factor 10 and a shift, and after normalization they are the same:
BN keeps only the *shape* of each feature's distribution in the batch, not its location or
scale. (x̂ is a hair smaller than the table because of ε: √(5 + 0.00001) instead of √5.)
""")

nb.code("""
mean = x_example.mean(axis=0)
var = x_example.var(axis=0)                           # biased: divided by N
x_hat = (x_example - mean) / np.sqrt(var + 1e-5)
print("mean:", mean, "  variance:", var)
print("x_hat:\\n", x_hat)
print("x_hat's mean per feature:", x_hat.mean(axis=0), "  variance:", x_hat.var(axis=0))

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for ax, values, title in [(axes[0], x_example, "before: x"), (axes[1], x_hat, "after: x_hat")]:
    for j in range(3):
        ax.plot(np.full(4, j), values[:, j], "o", ms=9, label=f"feature {j}")
    ax.set_xticks(range(3))
    ax.set_title(title)
    ax.set_xlabel("feature j")
    ax.set_ylabel("value of each of the 4 samples")
axes[0].legend()
fig.suptitle("Batch norm normalizes each feature over the batch (down axis 0)")
plt.show()
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 2. Training and evaluation: two kinds of statistics

In training, μ and σ² come from the current mini-batch. After training, at test time, that is
no longer wanted: the article says that at test time BN's mean and variance are no longer
computed from the batch but are **fixed statistics**, obtained from the mini-batches seen in
training. A prediction for one image must not depend on which other images happen to be in its
batch (and a batch of one sample has no variance at all).

So during training the layer also keeps **running statistics**, one mean and one variance per
feature, an exponential moving average over the training batches. cnnlib follows PyTorch's
`BatchNorm2d` exactly (`momentum = 0.1` by default; the running statistics start at 0 and 1):

$$\text{running\_mean} \leftarrow (1 - \text{momentum})\cdot\text{running\_mean} + \text{momentum}\cdot\mu_B$$
$$\text{running\_var} \leftarrow (1 - \text{momentum})\cdot\text{running\_var} + \text{momentum}\cdot\sigma_B^2\,\frac{m}{m-1}$$

Three details that are easy to get wrong:

1. **Direction.** `momentum` is the weight of the **new** batch: with 0.1, the old estimate keeps
   90 %. Keras writes it the other way round: its `BatchNormalization(momentum=0.99)` is the
   weight of the old value, PyTorch's `momentum=0.01`.
2. **Which variance.** The batch is normalized with its biased variance σ²_B (÷ m), but the
   running estimate averages in the **unbiased** variance σ²_B · m / (m − 1), an estimate of the
   variance of the whole data; `m` is the number of values per feature (`N` here).
3. **Evaluation changes nothing.** In evaluation mode, `x̂ = (x − running_mean) / √(running_var + ε)`
   and the running statistics stay as they are.

**Worked example**, one training step on `x_example` from the start (0 and 1), momentum 0.1:
running_mean = 0.9 · [0, 0, 0] + 0.1 · [4, 25, 0] = **[0.4, 2.5, 0]**, and running_var =
0.9 · 1 + 0.1 · [5, 125, 4] · 4/3 = **[1.5667, 17.5667, 1.4333]**. cnnlib's
`F.batchnorm2d_forward` works on 4-D arrays, so the `(N, D)` batch goes in as `(N, D, 1, 1)`;
note that cnnlib updates the running statistics **in place**:
""")

nb.code("""
running_mean, running_var = np.zeros(3), np.ones(3)
out, _ = F.batchnorm2d_forward(x_example[:, :, None, None], np.ones(3), np.zeros(3),
                               running_mean, running_var, training=True, momentum=0.1)
print("out[:, :, 0, 0]:\\n", out[:, :, 0, 0])
print("running_mean:", running_mean, "  running_var:", running_var)
""")

nb.exercise(1, "batch norm in training mode, with the running statistics", points=3, text=r"""
Write `batchnorm_train(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5)`:
batch norm of `x` of shape `(N, D)` in training mode. `gamma`, `beta`, `running_mean` and
`running_var` have shape `(D,)`. Return three arrays:

- `out` `(N, D)`: `gamma * x_hat + beta`, with `x_hat` normalized by the batch's mean and its
  **biased** variance (÷ N), `eps` inside the square root;
- the new running mean and the new running variance `(D,)`, by the rule above: the new batch
  weighs `momentum`, and the variance averaged in is the **unbiased** one, `var * N / (N - 1)`.

Unlike cnnlib, **return new arrays and leave the inputs alone** (no in-place update of
`running_mean` or `running_var`). numpy only: cnnlib's batch norm is switched off while your
function is checked. The tests use float64 arrays.

The tests check the worked example, other gammas, betas, momentums and eps, and (hidden) 24
random batches whose features have very different means and scales, N from 2 to 8, N ≠ D.
""", solution='''
def batchnorm_train(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    """Batch norm, training mode: x (N, D) -> out (N, D), new running_mean (D,), new running_var (D,)."""
    N = x.shape[0]
    ### BEGIN SOLUTION
    mean = x.mean(axis=0)
    var = x.var(axis=0)                                   # biased: divided by N
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * N / (N - 1)
    ### END SOLUTION
    return out, new_mean, new_var
''', tests='''
train_mistakes = grading.bn_train_mistakes()
returns = ("out", "running_mean", "running_var")
rng = np.random.default_rng(61)
grading.check_function(batchnorm_train, grading.bn_train_reference, [
    {"x": x_example, "gamma": np.ones(3), "beta": np.zeros(3), "running_mean": np.zeros(3),
     "running_var": np.ones(3), "momentum": 0.1, "eps": 1e-5},                       # the worked example
    {"x": x_example, "gamma": np.array([2., 0.5, -1.]), "beta": np.array([1., -1., 3.]),
     "running_mean": np.array([4., 20., 1.]), "running_var": np.array([5., 100., 2.]),
     "momentum": 0.3, "eps": 0.1},
    {"x": rng.standard_normal((6, 2)) * [1., 5.] + [3., -8.], "gamma": np.array([1.5, 0.7]),
     "beta": np.array([0.2, -0.4]), "running_mean": np.array([1., -2.]), "running_var": np.array([2., 9.]),
     "momentum": 0.05, "eps": 1e-3},
    {"x": np.array([[2.], [6.]]), "gamma": np.array([3.]), "beta": np.array([1.]),
     "running_mean": np.array([0.]), "running_var": np.array([1.]), "momentum": 0.2, "eps": 1e-5},
], outputs=returns, mistakes=train_mistakes)
### BEGIN HIDDEN TESTS
grading.check_function(batchnorm_train, grading.bn_train_reference, grading.bn_train_cases(24, seed=60101),
                       outputs=returns, mistakes=train_mistakes)
### END HIDDEN TESTS
''')

nb.md(r"""
How fast do the running statistics follow the data? Feed a layer 100 training batches of 32
values drawn from a distribution with mean 3 and variance 4, and watch the running estimates
(computed here with cnnlib). Each step moves them `momentum` of the way to the batch's value, so
after `k` steps the starting value still weighs `(1 − momentum)^k`: with 0.1 that is 0.9^20 ≈ 12 %
after 20 batches; with 0.01 it is still 82 %. A small momentum gives a smoother estimate but
needs many more batches to forget where it started.
""")

nb.code("""
rng = np.random.default_rng(6)
batches = 3 + 2 * rng.standard_normal((100, 32, 1, 1, 1))   # 100 batches of (32, 1, 1, 1)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for momentum in [0.1, 0.01]:
    rm, rv = np.zeros(1), np.ones(1)
    means, variances = [], []
    for xb in batches:
        F.batchnorm2d_forward(xb, np.ones(1), np.zeros(1), rm, rv, training=True, momentum=momentum)
        means.append(rm[0])
        variances.append(rv[0])
    axes[0].plot(means, label=f"momentum {momentum}")
    axes[1].plot(variances, label=f"momentum {momentum}")
for ax, true, what in [(axes[0], 3, "running_mean"), (axes[1], 4, "running_var")]:
    ax.axhline(true, color="gray", ls="--", label=f"true value {true}")
    ax.set_title(what)
    ax.set_xlabel("training batches seen")
    ax.set_ylabel(what)
    ax.legend()
fig.suptitle("Running statistics: an exponential moving average over the training batches")
plt.show()
""")

nb.md(r"""
### Evaluation mode

In evaluation mode the layer uses the running statistics instead of the batch's:
`x̂ = (x − running_mean) / √(running_var + ε)`, then `γ x̂ + β`. Each sample is normalized on its
own, with fixed numbers, so its output no longer depends on the rest of the batch, and a batch
of one works. cnnlib's layers switch with `model.train()` and `model.eval()` (`fit` trains in
training mode; `evaluate` and `predict` switch to evaluation mode for you). Section 5 shows what
goes wrong when a model is evaluated in training mode.
""")

nb.exercise(2, "training and evaluation mode", points=3, text=r"""
Write `batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5)`
for `x` of shape `(N, D)`, returning `(out, running_mean, running_var)` in both modes:

- `training=True`: exactly `batchnorm_train`'s result: call your `batchnorm_train`, passing
  `momentum` and `eps` on. (While this exercise is checked, the test gives it a correct
  `batchnorm_train`, so a mistake in Exercise 6.1 costs points only there.)
- `training=False`: normalize with `running_mean` and `running_var` (and `eps`), then scale by
  `gamma` and shift by `beta`; return the running statistics **unchanged** (the same values; a
  copy is fine).

Return new arrays and leave the inputs alone; numpy only. The tests check both modes on the
worked example, a batch of one, that a sample's output in evaluation mode does not depend on the
rest of its batch, and (hidden) 24 random cases in both modes whose running statistics are far
from the batch's own.

Allowed: numpy; cnnlib is switched off while your function is checked.
""", solution='''
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm in either mode: x (N, D) -> out (N, D), running_mean (D,), running_var (D,)."""
    ### BEGIN SOLUTION
    if training:
        return batchnorm_train(x, gamma, beta, running_mean, running_var, momentum, eps)
    x_hat = (x - running_mean) / np.sqrt(running_var + eps)
    return gamma * x_hat + beta, running_mean.copy(), running_var.copy()
    ### END SOLUTION
''', tests='''
forward_mistakes = grading.bn_forward_mistakes()
returns = ("out", "running_mean", "running_var")
trained_mean, trained_var = np.array([4., 25., 0.]), np.array([6., 160., 5.])   # as after many batches
rng = np.random.default_rng(62)
x_batch = rng.standard_normal((5, 3)) * [2., 10., 1.] + [4., 25., 0.]
# while batchnorm_forward is checked, batchnorm_train is a correct one (see the text)
with grading.substitute(globals(), batchnorm_train=grading.reference_stand_in(grading.bn_train_reference)):
    grading.check_function(batchnorm_forward, grading.bn_forward_reference, [
        {"x": x_example, "gamma": np.ones(3), "beta": np.zeros(3), "running_mean": trained_mean,
         "running_var": trained_var, "training": False, "momentum": 0.1, "eps": 1e-5},
        {"x": x_example[1:2], "gamma": np.array([2., 0.5, -1.]), "beta": np.array([1., -1., 3.]),
         "running_mean": trained_mean, "running_var": trained_var, "training": False,
         "momentum": 0.1, "eps": 1e-5},                                             # a batch of one
        {"x": x_batch, "gamma": np.array([2., 0.5, -1.]), "beta": np.array([1., -1., 3.]),
         "running_mean": trained_mean, "running_var": trained_var, "training": False,
         "momentum": 0.1, "eps": 0.1},
        {"x": x_example, "gamma": np.ones(3), "beta": np.zeros(3), "running_mean": np.zeros(3),
         "running_var": np.ones(3), "training": True, "momentum": 0.3, "eps": 1e-3},
    ], outputs=returns, mistakes=forward_mistakes)
    alone = batchnorm_forward(x_batch[2:3], np.ones(3), np.zeros(3), trained_mean, trained_var, False)[0]
    in_batch = batchnorm_forward(x_batch, np.ones(3), np.zeros(3), trained_mean, trained_var, False)[0][2:3]
    grading.check_value(alone, in_batch, name="evaluation mode: sample 2 alone and inside its batch",
                        hint="in evaluation mode a sample's output must not depend on its batch")
    ### BEGIN HIDDEN TESTS
    grading.check_function(batchnorm_forward, grading.bn_forward_reference,
                           grading.bn_forward_cases(24, seed=60201), outputs=returns,
                           mistakes=forward_mistakes)
    ### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 3. Spatial batch norm: feature maps (N, C, H, W)

After a convolution, the data is a batch of feature maps `(N, C, H, W)`. The article: for
four-dimensional image data, reshape `X(N, C, H, W)` into `X(N·H·W, C)`, compute the mean and
variance along dim 0, then reshape back; this is called **spatial BN**. One mean and one
variance per **channel**, over all `N·H·W` values of that channel: a convolution filter is the
same at every position (weight sharing), so its map has the same scale everywhere and gets one
`γ` and one `β`, like the filter's one bias. (Normalizing every pixel position on its own would
also work, with `C·H·W` statistics from only `N` values each, and would no longer be
convolutional.)

**The trap.** numpy's `reshape` keeps the memory order. An `(N, C, H, W)` array is stored
image by image, and inside an image channel by channel: the first `H·W` values are channel 0.
`x.reshape(-1, C)` cuts that sequence into rows of `C` values, so a column holds pixels from
**every** channel. Channel `C` has to move to the last axis first, `x.transpose(0, 2, 3, 1)`
(now `(N, H, W, C)`, each pixel's `C` values side by side), and only then
`.reshape(N * H * W, C)`. On the way back: `.reshape(N, H, W, C).transpose(0, 3, 1, 2)`.

Below, a batch of 2 images with 3 channels of 2 × 2 pixels, each value labelled by its channel
(0, 1, 2). Each picture is the `(N·H·W, C) = (8, 3)` matrix; a column should hold one channel:
""")

nb.code("""
N, C, H, W = 2, 3, 2, 2
channel_of = np.broadcast_to(np.arange(C)[None, :, None, None], (N, C, H, W))   # each value's channel
plain = channel_of.reshape(-1, C)
moved = channel_of.transpose(0, 2, 3, 1).reshape(-1, C)

fig, axes = plt.subplots(1, 2, figsize=(9, 5), layout="constrained")
for ax, m, title in [(axes[0], plain, "x.reshape(-1, C): channels mixed"),
                     (axes[1], moved, "x.transpose(0, 2, 3, 1).reshape(-1, C)")]:
    ax.imshow(m, cmap="Set2", vmin=0, vmax=7, aspect="auto")
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, f"ch {v}", ha="center", va="center")
    ax.set_xticks(range(C))
    ax.set_title(title)
    ax.set_xlabel("column of the (N*H*W, C) matrix")
    ax.set_ylabel("row (one per image and pixel)")
fig.suptitle("Which channel each entry comes from")
plt.show()
""")

nb.md(r"""
With real numbers, channels whose means are 0, 10 and 100: the plain reshape's column means are
averages over a mix of channels, and normalizing with them would leave every channel with the
wrong mean.
""")

nb.code("""
rng = np.random.default_rng(3)
x_maps = rng.standard_normal((4, 3, 5, 6)) + np.array([0., 10., 100.])[None, :, None, None]
print("per-channel means, x.mean(axis=(0, 2, 3)):             ", x_maps.mean(axis=(0, 2, 3)))
print("column means after x.reshape(-1, C):                    ", x_maps.reshape(-1, 3).mean(axis=0))
print("column means after x.transpose(0, 2, 3, 1).reshape(-1, C):",
      x_maps.transpose(0, 2, 3, 1).reshape(-1, 3).mean(axis=0))
""")

nb.exercise(3, "spatial batch norm by the reshape to (N·H·W, C)", points=3, text=r"""
Write `spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5)`
for `x` of shape `(N, C, H, W)` (`gamma`, `beta` and the running statistics `(C,)`), returning
`(out, running_mean, running_var)` like `batchnorm_forward`, with `out` of shape `(N, C, H, W)`.

Build it on your `batchnorm_forward` with the article's reshape: move `C` last, reshape to
`(N·H·W, C)`, call `batchnorm_forward` (passing `training`, `momentum` and `eps` on), then
reshape and transpose the result back. While this exercise is checked, the test gives it a
correct `batchnorm_forward`, so only your reshapes are graded here.

The tests compare with cnnlib's `batchnorm2d_forward` (on copies of the running statistics) in
both modes, on channels whose means are 0, 10 and 100, and (hidden) 18 random cases with N, C, H
and W all different and channels of very different means and scales.

Allowed: numpy; cnnlib is switched off while your function is checked.
""", solution='''
def spatial_batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Spatial batch norm: x (N, C, H, W) -> out (N, C, H, W), running_mean (C,), running_var (C,)."""
    N, C, H, W = x.shape
    ### BEGIN SOLUTION
    x_2d = x.transpose(0, 2, 3, 1).reshape(N * H * W, C)     # C last, then one row per image and pixel
    out_2d, new_mean, new_var = batchnorm_forward(x_2d, gamma, beta, running_mean, running_var,
                                                  training, momentum, eps)
    out = out_2d.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return out, new_mean, new_var
''', tests='''
spatial_mistakes = grading.spatial_bn_mistakes()
returns = ("out", "running_mean", "running_var")
rng = np.random.default_rng(63)
three_channels = rng.standard_normal((4, 3, 5, 6)) + np.array([0., 10., 100.])[None, :, None, None]
stats = {"running_mean": np.array([0.5, 9., 90.]), "running_var": np.array([1., 2., 4.])}
# while spatial_batchnorm_forward is checked, batchnorm_forward is a correct one (see the text)
with grading.substitute(globals(), batchnorm_forward=grading.reference_stand_in(grading.bn_forward_reference)):
    grading.check_function(spatial_batchnorm_forward, grading.spatial_bn_reference, [
        {"x": three_channels, "gamma": np.ones(3), "beta": np.zeros(3), **stats, "training": True,
         "momentum": 0.1, "eps": 1e-5},
        {"x": three_channels, "gamma": np.array([2., 0.5, 1.]), "beta": np.array([1., -1., 3.]), **stats,
         "training": False, "momentum": 0.1, "eps": 1e-5},
        {"x": rng.standard_normal((2, 4, 3, 5)) * 3 + 2, "gamma": rng.uniform(0.5, 2, 4),
         "beta": rng.standard_normal(4), "running_mean": np.zeros(4), "running_var": np.ones(4),
         "training": True, "momentum": 0.2, "eps": 1e-3},
    ], outputs=returns, mistakes=spatial_mistakes)
    ### BEGIN HIDDEN TESTS
    grading.check_function(spatial_batchnorm_forward, grading.spatial_bn_reference,
                           grading.spatial_bn_cases(18, seed=60301), outputs=returns,
                           mistakes=spatial_mistakes)
    ### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 4. The backward pass

In training mode μ and σ² are computed from the batch, so every input `x_ij` reaches the output
three ways: directly through its own `x̂_ij`, through the mean μ_j (which every `x̂` of feature j
subtracts) and through the variance σ²_j (which every `x̂` divides by). The chain rule sums the
three paths. With `dx̂ = dout · γ` (the gradient arriving at x̂) and the means taken over the
batch axis (`N` samples; for spatial BN over the `N·H·W` values of a channel):

$$\frac{\partial L}{\partial x} = \frac{1}{\sqrt{\sigma^2 + \varepsilon}}
\Big(\,\widehat{dx} \;-\; \operatorname{mean}(\widehat{dx}) \;-\; \hat{x}\cdot\operatorname{mean}(\widehat{dx}\cdot\hat{x})\Big)
\qquad \frac{\partial L}{\partial \gamma} = \sum_i \text{dout}_i\,\hat{x}_i
\qquad \frac{\partial L}{\partial \beta} = \sum_i \text{dout}_i$$

The first term is what you would get if μ and σ² were constants: that is the whole gradient in
evaluation mode. The second comes from the mean, the third from the variance. They make the
gradient blind to the two things BN throws away: adding a constant to a feature of every sample,
or scaling it, does not change x̂, so `dx` sums to 0 over the batch and is orthogonal to x̂. cnnlib
computes the same (`F.batchnorm2d_backward`), and a numerical gradient agrees:
""")

nb.code("""
rng = np.random.default_rng(4)
gamma = np.array([2., 0.5, -1.])
dout = rng.standard_normal((4, 3))
out, cache = F.batchnorm2d_forward(x_example[:, :, None, None], gamma, np.zeros(3), np.zeros(3), np.ones(3), True)
dx, dgamma, dbeta = F.batchnorm2d_backward(dout[:, :, None, None], cache)
dx = dx[:, :, 0, 0]

def bn_out(v):
    return F.batchnorm2d_forward(v[:, :, None, None], gamma, np.zeros(3), np.zeros(3), np.ones(3), True)[0][:, :, 0, 0]

numeric = gradcheck.numerical_gradient(bn_out, x_example.copy(), df=dout)
print("dx:\\n", dx)
print("relative error against the numerical gradient:", f"{gradcheck.rel_error(dx, numeric):.1e}")
print("dx summed over the batch:", dx.sum(axis=0), "  sum of dx * x_hat:", (dx * x_hat).sum(axis=0))
""")

nb.exercise(4, "batch norm backward", points=4, text=r"""
Complete `batchnorm_backward(dout, x, gamma, eps=1e-5)`: the gradients of batch norm in
**training** mode for `x` of shape `(N, D)`, given the upstream gradient `dout` `(N, D)`.
Return `(dx, dgamma, dbeta)` with shapes `(N, D)`, `(D,)` and `(D,)`. The forward pass's
`mean`, `var` (biased) and `x_hat` are computed for you. Use the formulas above: `dgamma` and
`dbeta` sum over the batch axis, and `dx` has the two mean terms.

numpy only: cnnlib's batch norm is switched off while your function is checked. The tests
compare with cnnlib's `batchnorm2d_backward` and with numerical gradients (of `dx`, `dgamma` and
`dbeta`), on the worked example, one feature, other eps, and (hidden) 20 random cases (N ≠ D,
features of very different scales) and 8 more numerical gradient checks.
""", solution='''
def batchnorm_backward(dout, x, gamma, eps=1e-5):
    """Batch norm backward, training mode: dout, x (N, D), gamma (D,) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    mean, var = x.mean(axis=0), x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    ### BEGIN SOLUTION
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(var + eps)
    ### END SOLUTION
    return dx, dgamma, dbeta
''', tests='''
backward_mistakes = grading.bn_backward_mistakes()
gradients = ("dx", "dgamma", "dbeta")
rng = np.random.default_rng(64)
visible = [
    {"dout": rng.standard_normal((4, 3)), "x": x_example, "gamma": np.array([2., 0.5, -1.]), "eps": 1e-5},
    {"dout": rng.standard_normal((5, 1)), "x": rng.standard_normal((5, 1)) * 3 + 1, "gamma": np.array([1.5]),
     "eps": 1e-5},
    {"dout": rng.standard_normal((6, 2)), "x": rng.standard_normal((6, 2)) * [1., 5.] + [3., -8.],
     "gamma": np.array([0.7, -1.2]), "eps": 0.1},
]
grading.check_function(batchnorm_backward, grading.bn_backward_reference, visible, outputs=gradients,
                       mistakes=backward_mistakes)

def backward_of_bn_output(dout, x, gamma, beta, eps):
    return batchnorm_backward(dout, x, gamma, eps)    # beta does not enter the gradients

grading.check_gradients(backward_of_bn_output, grading.bn_output, grading.with_beta(visible, 64),
                        wrt=["x", "gamma", "beta"], name="batchnorm_backward")
### BEGIN HIDDEN TESTS
grading.check_function(batchnorm_backward, grading.bn_backward_reference, grading.bn_backward_cases(20, seed=60401),
                       outputs=gradients, mistakes=backward_mistakes)
grading.check_gradients(backward_of_bn_output, grading.bn_output,
                        grading.with_beta(grading.bn_backward_cases(8, seed=60402), seed=60402),
                        wrt=["x", "gamma", "beta"], name="batchnorm_backward", seed=60402)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 5. Where the layer sits

The article's Keras snippet puts BN after the pooling layer and before the activation:

```python
model.add(Conv2D(16, (3, 3), strides=(1, 1), padding='valid'))
model.add(MaxPooling2D((2, 2)))
model.add(BatchNormalization())
model.add(Activation('relu'))
```

The same block in cnnlib, on a 28 × 28 grayscale image. BN has 2 · 16 = 32 trainable parameters
(γ and β) and 32 non-trainable ones (the running mean and variance), and `summary()` counts them
as Keras does (`Param #` 64 for the BN layer):
""")

nb.code("""
rng = np.random.default_rng(0)
block = Sequential([Conv2d(1, 16, 3, stride=1, padding=0, rng=rng), MaxPool2d(2), BatchNorm2d(16), ReLU()])
print(block.summary((1, 28, 28)))
""")

nb.md(r"""
The common placements:

- **Conv → BN → ReLU** (→ Pool): the original paper's choice (BN normalizes the input of the
  non-linearity) and the usual one in ResNet and most modern networks.
- **Conv → Pool → BN → ReLU**, the article's: max pooling commutes with ReLU exactly
  (`max(relu(a)) = relu(max(a))`), and pooling first means BN and ReLU work on a 4 times smaller
  map. The statistics are those of the pooled map, so it is not quite the same network as
  Conv → BN → ReLU → Pool, but it trains just as well.
- **Conv → ReLU → BN**: some practitioners prefer normalizing after the activation; it works too.
- **BN → ReLU → Conv** ("pre-activation", ResNet v2): the normalization comes first in each block.

Whatever the order, a convolution followed by BN does not need its own bias: BN subtracts the
batch mean, which removes any constant the bias added (a constant also passes straight through
max pooling). In training mode the bias's gradient is exactly 0 (below, up to float32 round-off), which is why
such convolutions are usually built with `bias=False` (Keras: `use_bias=False`):
""")

nb.code("""
xb = datasets.load_mnist()[0][0][:16]                      # 16 training images
block.train()
out = block.forward(xb)
block.zero_grad()
block.backward(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32))
print("largest |gradient| of the conv weights:", np.abs(block[0].weight.grad).max())
print("largest |gradient| of the conv bias:   ", np.abs(block[0].bias.grad).max())
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 6. Does it help? The article's three benefits, tested

The article lists what BN buys: (1) it allows larger learning rates and so faster convergence;
(2) it avoids vanishing or exploding gradients in deep networks; (3) it reduces the dependence on
how the parameters are initialised. Claims like these are easy to repeat and cheap to test, so
here are three small experiments on real MNIST digits (the sample shipped with cnnlib). To keep
each run to a fraction of a second, the digits are shrunk to 14 × 14 (the mean of each 2 × 2
block), the nets are small, and each training run sees 1,000 digits for 2 epochs; the test set
is the sample's 1,000 test digits. Every number quoted below comes from a real run, with the
random generators fixed (another machine's arithmetic can move the last digits, or a close call).

The article's advice: BN's effect is very clear in deep networks; when training converges
slowly, or cannot proceed because of exploding gradients, try BN; and even in ordinary cases it
can be added to speed training up, and sometimes to improve accuracy.

The two nets differ only in BN, in the article's Conv → Pool → BN → ReLU order:
""")

nb.code("""
(X_all, y_all), (X_test_all, y_test) = datasets.load_mnist()
X_small = X_all.reshape(-1, 1, 14, 2, 14, 2).mean(axis=(3, 5))        # 28 x 28 -> 14 x 14
X_test = X_test_all.reshape(-1, 1, 14, 2, 14, 2).mean(axis=(3, 5))
X_train, y_train = X_small[:1000], y_all[:1000]

def small_net(bn, rng, conv_scale=1.0):
    \"\"\"Conv -> Pool -> [BN] -> ReLU, twice, then a dense layer; the conv weights times conv_scale.\"\"\"
    layers = [Conv2d(1, 8, 3, padding=1, rng=rng), MaxPool2d(2)] + ([BatchNorm2d(8)] if bn else []) + [ReLU(),
              Conv2d(8, 16, 3, padding=1, rng=rng), MaxPool2d(2)] + ([BatchNorm2d(16)] if bn else []) + [ReLU(),
              Flatten(), Linear(16 * 3 * 3, 10, rng=rng)]
    for layer in layers:
        if isinstance(layer, Conv2d):
            layer.weight.data *= conv_scale
    return Sequential(layers)

def train_and_test(bn, lr, conv_scale=1.0, init=0):
    \"\"\"Train with plain SGD; return (test accuracy, training losses per epoch), or (None, ...) if it diverged.\"\"\"
    rng = np.random.default_rng(init)
    net = small_net(bn, rng, conv_scale)
    try:
        history = fit(net, SGD(net.parameters(), lr=lr), X_train, y_train, epochs=2, batch_size=32,
                      rng=rng, progress=False)
    except FloatingPointError:                            # the loss became inf or nan
        return None, None, None
    return evaluate(net, X_test, y_test)["accuracy"], history.history["loss"], net

print(small_net(True, np.random.default_rng(0)).summary((1, 14, 14)))
""")

nb.md(r"""
### Benefit 1: larger learning rates

Train both nets with plain SGD (no momentum) at learning rates from 0.03 to 3. (A run whose loss
became infinite or NaN would print "diverg" and be drawn at 0.1, the accuracy of guessing.)
""")

nb.code("""
t0 = time.perf_counter()
learning_rates = [0.03, 0.1, 0.3, 1.0, 3.0]
accuracy = {False: [], True: []}
for lr in learning_rates:
    for bn in (False, True):
        acc = train_and_test(bn, lr)[0]
        accuracy[bn].append(acc)
print(f"({time.perf_counter() - t0:.1f} s)")
print("learning rate   " + "".join(f"{lr:>8g}" for lr in learning_rates))
for bn in (False, True):
    print(f"{'with BN' if bn else 'plain  '} accuracy" + "".join(
        f"{a:8.3f}" if a is not None else "  diverg" for a in accuracy[bn]))

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for bn, style in [(False, "o-"), (True, "s-")]:
    ax.plot(learning_rates, [0.1 if a is None else a for a in accuracy[bn]], style,
            label="with BN" if bn else "plain")
ax.set_xscale("log")
ax.axhline(0.1, color="gray", ls=":", label="chance")
ax.set_title("Benefit 1: test accuracy after 2 epochs of SGD")
ax.set_xlabel("learning rate (log scale)")
ax.set_ylabel("test accuracy")
ax.legend()
plt.show()
""")

nb.md(r"""
**What it shows.** The claim holds here, within limits. The BN net is ahead at every learning
rate up to 1 after the same 2 epochs (0.83 against 0.67 at the plain net's best rate, 0.3), and it still
trains at learning rate 1 (about 0.81), where the plain net is stuck at chance: its loss never
became infinite, but it ended up predicting class 0 for nearly every digit. At 3 both nets end at
chance. So BN widens the range of usable learning rates (here by a factor of about 3 at
the top) rather than removing the limit. The nets are small and the runs short; these are the
numbers of one run (one initialisation and one shuffling of the data).
""")

nb.md(r"""
### Benefit 2: no vanishing or exploding activations and gradients

A deeper net: 10 convolutions (3 × 3, 8 channels, padding 1), each followed by ReLU (plain) or by
BN and ReLU, then global average pooling and a dense layer. No training: one forward and one
backward pass on a batch of 64 digits, recording at every layer the spread (standard deviation)
of the activations, the gradient arriving at them, and `|dW| / |W|`, the size of each
convolution's weight gradient relative to its weights (how big an SGD step is, per unit of
learning rate: if it is tiny, the layer does not learn; if it is huge, it jumps around). cnnlib
initialises the weights with He's rule (std √(2 / fan-in)), designed to keep the spread constant
through ReLU layers; both nets are also tried with weights 0.7 and 2 times that.
""")

nb.code("""
def deep_net(bn, weight_scale, depth=10, width=8, init=0):
    rng = np.random.default_rng(init)
    layers, channels = [], 1
    for _ in range(depth):
        conv = Conv2d(channels, width, 3, padding=1, rng=rng)
        conv.weight.data *= weight_scale
        layers += [conv] + ([BatchNorm2d(width)] if bn else []) + [ReLU()]
        channels = width
    return Sequential(layers + [GlobalAvgPool2d(), Linear(width, 10, rng=rng)])

def layer_statistics(net, x, y):
    \"\"\"For one batch: the std of each ReLU's output, the std of the gradient arriving there, and
    |dW| / |W| of each conv (the size of an SGD step relative to the weights, per unit of learning rate).\"\"\"
    acts, act_grads, out = [], [], x
    for layer in net:
        out = layer.forward(out)
        if isinstance(layer, ReLU):
            acts.append(out.std())
    _, dout = softmax_cross_entropy(out, y)
    for layer in reversed(net.layers):
        if isinstance(layer, ReLU):
            act_grads.append(dout.std())
        dout = layer.backward(dout)
    steps = [np.linalg.norm(l.weight.grad) / np.linalg.norm(l.weight.data) for l in net if isinstance(l, Conv2d)]
    return np.array(acts), np.array(act_grads[::-1]), np.array(steps)

t0 = time.perf_counter()
x64, y64 = X_small[:64], y_all[:64]
runs = {f"plain, He x {s}": layer_statistics(deep_net(False, s), x64, y64) for s in (0.7, 1.0, 2.0)}
runs.update({f"with BN, He x {s}": layer_statistics(deep_net(True, s), x64, y64) for s in (0.7, 1.0, 2.0)})
print(f"({time.perf_counter() - t0:.1f} s)")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
depths = np.arange(1, 11)
for label, (acts, act_grads, steps) in runs.items():
    style = "s--" if "BN" in label else "o-"
    axes[0].plot(depths, acts, style, label=label)
    axes[1].plot(depths, steps, style, label=label)
for ax, what, unit in [(axes[0], "activations", "std of the ReLU's output"),
                       (axes[1], "weight gradients", "|dW| / |W| of the conv")]:
    ax.set_yscale("log")
    ax.set_title(what)
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel(unit + " (log scale)")
axes[1].legend(fontsize=8)
fig.suptitle("Benefit 2: a 10-layer net at initialisation, one batch of 64 digits")
plt.show()
print("                   activations        |dW|/|W|, layers 1-10    gradient at the ReLUs")
for label, (acts, act_grads, steps) in runs.items():
    print(f"{label:18s} {acts[0]:.3g} -> {acts[-1]:<9.3g} {steps.min():9.2g} to {steps.max():<9.2g}"
          f" layer 1 / layer 10: {act_grads[0] / act_grads[-1]:.3g}")
""")

nb.md(r"""
**What it shows.** 

- **Activations.** With BN every layer's output has the same spread, about 0.58 (the std of a
  unit Gaussian after ReLU, √(1/2 − 1/(2π)) ≈ 0.58), at every depth and for every weight scale:
  the three BN curves lie on top of each other. The plain net is at the mercy of the scale: at
  0.7 its activations shrink about 500-fold over 10 layers (vanishing), at 2 they grow about
  25-fold (exploding). Even He's own scale lets them shrink 20-fold here: its derivation
  assumes wide layers and every output seeing a full window of inputs, not 8 channels with zero
  padding at the borders of a 14 × 14 map. Exactly right is hard to hit, and the error compounds.
- **Weight gradients.** The plain net's `|dW| / |W|` runs from 2e-5 (scale 0.7: those layers
  barely learn) to 9 (scale 2: one SGD step with learning rate 0.1 would change the weights by
  almost their own size), a factor of 400,000 decided by the initial scale alone. The gradient
  reaching the plain net's activations shrinks about 90-fold from layer 10 down to layer 1 at
  scale 0.7 (vanishing) and grows about 180-fold at scale 2 (exploding). The BN net's
  `|dW| / |W|` stay between 0.006 and 0.13.
- **What BN does not do.** It does not make the gradients uniform: the gradient reaching the
  activations still grows about 6-fold from layer 10 down to layer 1, in all three BN nets. And
  its `|dW| / |W|` still depends on the weight scale, as 1 / scale² (0.049 to 0.13 at 0.7, 0.024
  to 0.062 at 1, 0.006 to 0.016 at 2): multiplying W by s leaves BN's output unchanged, so the
  gradient dW shrinks by 1/s while |W| grows by s. Benefit 3 meets this again.

So the claim holds for the activations exactly, and for the gradients in the sense that matters
most (no layer's gradient vanishes or explodes), but not in the sense of "equal at every layer".
""")

nb.md(r"""
### Benefit 3: less dependence on the initial weight scale

Multiply the initial weights of both convolutions by a factor from 0.01 to 100 and train as in
benefit 1 (learning rate 0.1). First a fact that needs no training: at initialisation the BN
net's output does **not depend on the scale at all**, because scaling a convolution's weights
scales its output, and BN divides that scale away (up to ε). The plain net's logits scale with
the square of the factor (two convolutions, and ReLU and max pooling pass a positive factor
through):
""")

nb.code("""
scales = [0.01, 0.1, 1.0, 10.0, 100.0]
probe = X_test[:8]
for bn in (False, True):
    outs = [small_net(bn, np.random.default_rng(0), s).forward(probe) for s in scales]
    print(f"{'with BN' if bn else 'plain  '}: largest |logit| at scale " +
          ", ".join(f"{s:g}: {np.abs(o).max():.3g}" for s, o in zip(scales, outs)) +
          f";  largest difference, scale 1 vs 100: {np.abs(outs[2] - outs[-1]).max():.2g}")
""")

nb.code("""
t0 = time.perf_counter()
scale_accuracy = {False: [], True: []}
for s in scales:
    for bn in (False, True):
        scale_accuracy[bn].append(train_and_test(bn, 0.1, conv_scale=s)[0])
print(f"({time.perf_counter() - t0:.1f} s)")
print("weight scale    " + "".join(f"{s:>8g}" for s in scales))
for bn in (False, True):
    print(f"{'with BN' if bn else 'plain  '} accuracy" + "".join(
        f"{a:8.3f}" if a is not None else "  diverg" for a in scale_accuracy[bn]))

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for bn, style in [(False, "o-"), (True, "s-")]:
    ax.plot(scales, [0.1 if a is None else a for a in scale_accuracy[bn]], style, label="with BN" if bn else "plain")
ax.set_xscale("log")
ax.axhline(0.1, color="gray", ls=":", label="chance")
ax.set_title("Benefit 3: test accuracy after 2 epochs, lr 0.1")
ax.set_xlabel("factor on the initial conv weights (log scale)")
ax.set_ylabel("test accuracy")
ax.legend()
plt.show()
""")

nb.md(r"""
**What it shows.** Partly. In the forward pass the claim holds exactly: the BN net's logits
are the same for weight scales 1 and 100 (up to 0.001, the effect of ε), while the plain net's
grow as the square of the scale, from 0.0002 to 19,000. In training, the plain net learns only
near scale 1 (0.29 at 0.1, chance at 0.01, 10 and 100); the BN net reaches 0.72 to 0.83 over four
orders of magnitude. But not the same accuracy everywhere, and for a reason benefit 2 showed:
`|dW| / |W|` goes as 1 / scale². At scale 100, a step changes the conv weights 10,000 times less,
relative to their size, than at scale 1: in 2 epochs they moved by 0.005 % of their size (we
measured), so the net is in effect random convolutions with a trained dense layer on top, and its
0.718 is exactly what training only the dense layer gives. At 0.01 the opposite happens (the conv
weights changed by about 100 and 200 times their initial size) and ε is no longer small next to the conv
outputs' variance. BN makes a bad initial scale harmless for the forward pass and survivable for
training, and plain SGD's effective learning rate still depends on it.
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 7. The classic bug: evaluating in training mode

A model with BN must be switched to evaluation mode before it predicts (`model.eval()`; cnnlib's
`evaluate` and `predict` do it for you). Forget it, and each image is normalized with the
statistics of whatever batch it arrives in, so **its prediction depends on its neighbours**.
Take the BN net trained with learning rate 0.3 in benefit 1 and predict the 1,000 test digits
three ways: in evaluation mode; in training mode in batches of 100 random digits; and in
training mode in batches that each hold only one kind of digit (as when a test set is sorted by
label).
""")

nb.code("""
acc_eval, _, bn_net = train_and_test(True, 0.3)
order = np.argsort(y_test, kind="stable")                 # the test set sorted by label

def accuracy_in_training_mode(net, idx, batch_size=100):
    net.train()                                           # the bug: batch statistics at test time
    correct = sum((net.forward(X_test[idx[i:i + batch_size]]).argmax(1) == y_test[idx[i:i + batch_size]]).sum()
                  for i in range(0, len(idx), batch_size))
    net.clear_cache()
    return correct / len(idx)

saved = [b.copy() for _, b in bn_net.named_buffers()]
acc_mixed = accuracy_in_training_mode(bn_net, np.random.default_rng(0).permutation(len(y_test)))
acc_sorted = accuracy_in_training_mode(bn_net, order)
drift = max(np.abs(b - s).max() for (_, b), s in zip(bn_net.named_buffers(), saved))
results = {"eval mode": acc_eval, "training mode,\\nmixed batches": acc_mixed,
           "training mode,\\none digit per batch": acc_sorted}
for k, v in results.items():
    print(f"{k.replace(chr(10), ' '):36s} accuracy {v:.3f}")
print("largest change of a running statistic after 'testing' in training mode:", f"{drift:.3g}")
print("evaluation-mode accuracy now, with those running statistics:", evaluate(bn_net, X_test, y_test)["accuracy"])

fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
ax.bar(list(results), list(results.values()), color=["#2ca02c", "#ff7f0e", "#d62728"])
ax.set_title("The same trained net, the same 1,000 test digits")
ax.set_xlabel("how the predictions were computed")
ax.set_ylabel("test accuracy")
plt.show()
""")

nb.md(r"""
In training mode every image is normalized with its batch's statistics. With 100 random
digits per batch those are close to the running statistics and the accuracy is about the same
(0.832 against 0.829): **the bug can hide in a quick test**. With batches of one digit each, a
batch's statistics are those of that digit alone and the accuracy drops to 0.70: the same image
gets a different prediction depending on its neighbours. And every one of those forward passes
also updated the running statistics, with test data: afterwards the evaluation-mode accuracy is
0.843 instead of 0.829. Better here by chance, but the model is no longer the trained one, and it
has seen the test set. Call `model.eval()` (or use `evaluate` / `predict`) before testing, and
`model.train()` before training again.
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## Summary

- BN normalizes each feature over the batch: `x̂ = (x − μ) / √(σ² + ε)` with the batch mean and
  the biased variance, then `γ x̂ + β`. In the worked example features 0 and 1 (scales 1 and 10)
  both become −1.342, −0.447, 0.447, 1.342.
- Training uses the batch's statistics and updates the running ones,
  `(1 − momentum) · running + momentum · batch`, with the unbiased variance in `running_var`
  (PyTorch's and cnnlib's convention; Keras's momentum is the weight of the old value).
  Evaluation uses the running statistics and changes nothing.
- Spatial BN: one statistic per channel over `N·H·W` values, by
  `x.transpose(0, 2, 3, 1).reshape(-1, C)`; a plain reshape mixes the channels.
- Backward: `dx = (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) / √(σ² + ε)`, `dγ = Σ dout · x̂`,
  `dβ = Σ dout`; a conv bias before BN gets no gradient.
- The article's three benefits, on small MNIST runs: (1) larger learning rates: yes, within limits
  (BN still trains at learning rate 1, where the plain net fails; both fail at 3); (2) vanishing
  and exploding: the activations are held steady at every depth and initial scale, and no
  layer's gradient vanishes or explodes, but the gradients are not equal across depth and still
  scale as 1 / scale²; (3) the initial scale: the forward pass is exactly scale-invariant,
  training only partly (0.72 to 0.83 over scales 0.01 to 100, where the plain net needs a scale
  near 1).

**Times.** Measured on two cores shared with other jobs (load average 8 to 9, so a quiet machine
is faster): the notebook ran top to bottom in 9 to 14 s, kernel start included, of which the
three experiments and the training-mode bug took about 5 s (one BLAS thread: with two, on a
busy machine, the same runs took several times longer). Autograding one learner's notebook with
nbgrader took 10 to 16 s. What each experiment showed is written under it and summed up above.
The cell below prints this run's time.

**Next:** notebook 07 puts the pieces together and trains a LeNet-style network on MNIST.
""")

nb.code("""
print(f"this run of the notebook took {time.perf_counter() - notebook_started:.1f} s")
""")

nb.references("layers_and_params")
nb.md(r"""
The article points to the original paper for the details of the test-time statistics: Sergey
Ioffe and Christian Szegedy, *Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift*, ICML 2015. He initialisation: Kaiming He et al., *Delving
Deep into Rectifiers*, ICCV 2015.
""")

if __name__ == "__main__":
    nb.main()

"""Source of solutions/07_training/07_training.ipynb (run me after editing)."""

from nbbuild import RULES, Notebook

nb = Notebook("07_training")

nb.md(r"""
# 07 · Training a CNN on real digits

Everything so far was one piece of a network: convolution (01–03), pooling (04), the backward
passes (05), batch norm (06). This notebook puts the pieces together and **trains** a real
convolutional network, the LeNet of the article, on real handwritten digits from MNIST, in plain
numpy, in a few seconds. Then it opens the trained network up and looks inside.

**You will learn**
- the article's five training steps, and which notebook built each of them;
- the article's LeNet layer by layer: 32 × 32 input, 6 and 16 filters of 5 × 5, 2 × 2 max
  pooling, FC 120, FC 100, 10 outputs: its shapes, its 63,802 parameters, where the flatten
  happens (the article's 32 × 32 × 10 → 10,240 example), the pattern
  INPUT → [[CONV → RELU]\*N → POOL?]\*M → [FC → RELU]\*K → FC, and why it is a *5*-layer net;
- mini-batch gradient descent: shuffling with a repeatable generator, batches, epochs, momentum and
  Adam, and what a learning rate that is too large or too small does;
- to train on 4,000 real digits with learning curves, and to reach over 95 % on 1,000 digits the
  network has never seen;
- to look inside: the learned filters, the feature maps of one digit at every layer, the
  confusion matrix, the digits the network gets most confidently wrong;
- overfitting on a tiny training set, and what dropout and weight decay change.

**Exercises** (20 points)

| exercise | points |
|---|---|
| 7.1 the article's LeNet with cnnlib's layers | 3 |
| 7.2 one SGD step with momentum, in place | 3 |
| 7.3 one training epoch | 4 |
| 7.4 accuracy and the confusion matrix | 3 |
| 7.5 the most confident mistakes | 3 |
| 7.6 train a LeNet to 95 % on held-out digits | 4 |

**How to work.** Each exercise has a solution cell, which in your copy holds
`raise NotImplementedError()`: replace that line with your code. Then run the test cell below it:
a line starting with ✔ means the visible tests pass. When your work is graded, more tests with
random cases run too, so solve the problem in general rather than for the visible cases.
Exercises are independent: skipping one costs only its own points (the pictures after Exercise
7.6 need its trained model). Check the whole notebook with the **Validate** button (or
`nbgrader validate 07_training.ipynb`).
""")

nb.md(RULES)

nb.setup("""
import numpy as np
import matplotlib.pyplot as plt

from cnnlib import datasets, grading, shapes, viz
from cnnlib.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from cnnlib.losses import softmax, softmax_cross_entropy, squared_error
from cnnlib.model import Sequential, lenet
from cnnlib.optim import SGD, Adam
from cnnlib.train import evaluate, fit, predict

np.set_printoptions(precision=3, suppress=True)
try:  # one BLAS thread: LeNet's matrix products are small (see the note below)
    from threadpoolctl import threadpool_limits
    _blas_threads = threadpool_limits(1, user_api="blas")
except ImportError:
    pass
""")

nb.md(r"""
The data: the 5,000 real MNIST digits that ship with cnnlib, 4,000 to train on and 1,000 held
out to measure how well the network does on digits it has never seen (400 and 100 of each digit).
Each image is a `(1, 28, 28)` array of floats in [0, 1], each label an integer 0–9.

(The setup cell above limits numpy's matrix library, BLAS, to one thread. LeNet's matrix products
are small, so a second thread gains little, and on a busy 2-core machine, where the other thread
waits for a core, training was measured ten times slower with two threads than with one.)
""")

nb.data("mnist_sample", """
(X_train, y_train), (X_test, y_test) = datasets.load_mnist("sample")
print("training images", X_train.shape, X_train.dtype, "  labels", y_train.shape, y_train.dtype)
print("held-out images", X_test.shape, "  digits per class:", np.bincount(y_test))
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 1. The five training steps

The article sums up how a convolutional network learns in five steps. Every one of them is
something you have already built:

| step | what happens | where you built it |
|---|---|---|
| 1 | initialise every filter and weight with **random** values | the layers of notebook 03 (here: `Conv2d(..., rng=rng)`) |
| 2 | **forward**: convolution, ReLU, pooling and the fully connected layers give a probability per class | notebooks 01–04 |
| 3 | the **total error** of the output layer, summed over the classes | notebook 05 (softmax cross-entropy, and the article's squared error) |
| 4 | **backpropagation** gives the gradient of the error for every weight; **gradient descent** changes each weight against its gradient | notebook 05 (backward passes), this notebook (the optimizer) |
| 5 | **repeat** steps 2–4 for every image of the training set | this notebook (mini-batches and epochs) |

The article's example is a boat picture with four classes (dog, cat, boat, bird): the target is
`[0, 0, 1, 0]`. With random weights the network answers `[0.2, 0.4, 0.1, 0.3]`; after a gradient
step on that image it answers `[0.1, 0.1, 0.7, 0.1]`, closer to the target. The total error
Σ ½ (target − output)² drops from 0.55 to 0.06:
""")

nb.code("""
target = np.array([0.0, 0.0, 1.0, 0.0])                      # dog, cat, boat, bird: a boat
for when, output in [("random weights", [0.2, 0.4, 0.1, 0.3]), ("after one step", [0.1, 0.1, 0.7, 0.1])]:
    error, _ = squared_error(np.array([output]), target[None])
    print(f"{when:15s} output {output}:  total error = {error:.2f}")
""")

nb.md(r"""
Only the *values* of the filters and weights change during training: the number of filters, their
size and the architecture are fixed before step 1 (the article). In code the five steps are:

```python
model = lenet(rng)                                  # 1. random initialisation
for epoch in range(epochs):                         # 5. repeat, over the whole training set
    for xb, yb in mini_batches(X, y):
        optimizer.zero_grad()
        logits = model.forward(xb)                  # 2. forward
        loss, dlogits = softmax_cross_entropy(logits, yb)   # 3. the error
        model.backward(dlogits)                     # 4. backpropagation ...
        optimizer.step()                            #    ... and gradient descent
```

Sections 2–4 build each line; `cnnlib.train.fit` is this loop.
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 2. The article's network

The article follows a LeNet through an interactive visualization of a network trained on MNIST
(Adam Harley's): the input is a **32 × 32** image (1,024 pixels); convolution layer 1 has **six 5 × 5
filters** (stride 1), giving a feature map six deep; pooling layer 1 does **2 × 2 max pooling with
stride 2** on each of the six maps; convolution layer 2 has **sixteen 5 × 5 filters**; pooling layer 2
is again 2 × 2 max pooling with stride 2; then come three fully connected layers of **120**, **100**
and **10** neurons, the 10 being the digits (the output layer). Each conv layer is followed by a
ReLU (the visualization does not show them).

With the size formula of notebook 02, (H − F + 2P)/S + 1, the shapes are:

| layer | output | parameters |
|---|---|---|
| input | 1 × 32 × 32 | |
| conv 6 @ 5 × 5, ReLU | 6 × 28 × 28 (32 − 5 + 1) | (5·5·1 + 1)·6 = 156 |
| max pool 2 × 2 / 2 | 6 × 14 × 14 | 0 |
| conv 16 @ 5 × 5, ReLU | 16 × 10 × 10 | (5·5·6 + 1)·16 = 2,416 |
| max pool 2 × 2 / 2 | 16 × 5 × 5 | 0 |
| flatten | 400 | 0 |
| FC 120, ReLU | 120 | (400 + 1)·120 = 48,120 |
| FC 100, ReLU | 100 | (120 + 1)·100 = 12,100 |
| FC 10 | 10 (the logits) | (100 + 1)·10 = 1,010 |

63,802 parameters in all; cnnlib's `summary()` (notebook 03) prints the same table:
""")

nb.code("""
rng = np.random.default_rng(0)
article_net = Sequential([
    Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2),
    Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
    Flatten(),
    Linear(16 * 5 * 5, 120, rng=rng), ReLU(),
    Linear(120, 100, rng=rng), ReLU(),
    Linear(100, 10, rng=rng),
])
article_net.summary((1, 32, 32))
""")

nb.code("""
counts = [shapes.conv2d_params(1, 6, 5), shapes.conv2d_params(6, 16, 5), shapes.linear_params(400, 120),
          shapes.linear_params(120, 100), shapes.linear_params(100, 10)]
print(" + ".join(f"{n:,}" for n in counts), "=", f"{sum(counts):,}", "  summary says:", f"{article_net.count_params():,}")
""")

nb.md(r"""
**Where the flatten happens.** Convolution and pooling keep the data three-dimensional, but a fully
connected layer takes a vector. So, as the article explains, the last feature maps are stretched
into one long vector: its example turns a 32 × 32 × 10 block into **10,240** features, which the
fully connected layers turn into the probabilities of the classes. In LeNet the block after the
second pool is 16 × 5 × 5, so each digit becomes **400** numbers. `Flatten` keeps the batch axis:
""")

nb.code("""
print("the article's example:", Flatten()(np.zeros((1, 10, 32, 32), np.float32)).shape)
print("LeNet, after the second pool:", article_net[:7](np.zeros((8, 1, 32, 32), np.float32)).shape)
""")

nb.md(r"""
**28 × 28 digits in a 32 × 32 net.** MNIST digits are 28 × 28. LeNet was designed for 32 × 32
inputs: pad each digit with 2 rings of zeros (28 + 2·2 = 32) and everything above holds. Padding
the first convolution by 2 does the same without copying the images: (28 − 5 + 2·2)/1 + 1 = 28,
the same 6 × 28 × 28 maps. That is what `cnnlib.model.lenet`, the net trained below, does, and it
has the same 63,802 parameters.
""")

nb.code("""
digit = X_train[:1]                                             # (1, 1, 28, 28)
padded = np.pad(digit, ((0, 0), (0, 0), (2, 2), (2, 2)))        # (1, 1, 32, 32)
fig, axes = plt.subplots(1, 2, figsize=(7, 3.6), layout="constrained")
for ax, img, title in [(axes[0], digit, "an MNIST digit, 28 x 28"), (axes[1], padded, "padded by 2: 32 x 32")]:
    ax.imshow(img[0, 0], cmap="gray")
    ax.set_title(title)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
fig.suptitle(f"label {y_train[0]}: the same digit fed to the article's 32 x 32 net")
plt.show()
same_net = lenet(np.random.default_rng(0))
print("cnnlib.model.lenet:", f"{same_net.count_params():,}", "parameters; first conv output",
      same_net.output_shapes((1, 28, 28))[0], "from a 28 x 28 digit")
""")

nb.md(r"""
**The pattern.** The article (quoting CS231n) gives the shape of most convolutional networks:

    INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC

`*` means repetition and `POOL?` an optional pooling layer; usually N ≤ 3 and K < 3. Its examples:
`INPUT -> FC` (a linear classifier, N = M = K = 0); `INPUT -> CONV -> RELU -> FC`;
`INPUT -> [CONV -> RELU -> POOL]*2 -> FC -> RELU -> FC`; and
`INPUT -> [CONV -> RELU -> CONV -> RELU -> POOL]*3 -> [FC -> RELU]*2 -> FC`, which stacks two
convolutions before each pool: a good idea for larger, deeper networks, since several stacked
conv layers can build more complex features before the destructive pooling. LeNet reads
`INPUT -> [CONV -> RELU -> POOL]*2 -> [FC -> RELU]*2 -> FC`: N = 1, M = 2, K = 2.

**"An N-layer network".** Which layers count? The article: only layers **with parameters** are
called layers. Convolution and fully connected layers have weights, pooling (and ReLU, and
flatten) have none. LeNet has 2 convolution + 3 fully connected layers: it is a **5-layer**
network, hence the name LeNet-5.
""")

nb.code("""
with_weights = [layer.name for layer in article_net if layer.num_params()[0] > 0]
print(len(article_net), "layers in the Sequential, of which", len(with_weights), "have weights:", with_weights)
""")

nb.exercise(1, "the article's LeNet with cnnlib's layers", points=3, text=r"""
Complete `build_lenet(init)`: return a `Sequential` with the article's network for `(N, 1, 32, 32)`
inputs and `(N, 10)` logits, exactly the layers of the table above, in order: `Conv2d(1, 6, 5)`,
`ReLU()`, `MaxPool2d(2)`, `Conv2d(6, 16, 5)`, `ReLU()`, `MaxPool2d(2)`, `Flatten()`, three `Linear`
layers (400 → 120, 120 → 100, 100 → 10) with a `ReLU()` after the first two. No padding: the
input is already 32 × 32. Pass `rng=rng` to every `Conv2d` and `Linear`, so the same number `init`
gives the same random weights (step 1).

Do not call `cnnlib.model.lenet` (it is switched off while your function is checked, and it is
the 28 × 28 version anyway).

The tests compare your model's `summary((1, 32, 32))` with the article's net layer by layer
(kind, output shape, parameters), run it with your weights through the article's net, and check
that the weights follow `init`; hidden tests use other values of `init`.

Allowed: cnnlib's layers and `Sequential` (imported at the top); `cnnlib.model.lenet` is switched
off while your function is checked.
""", solution='''
def build_lenet(init):
    """The article's LeNet for 1x32x32 inputs, its weights drawn from np.random.default_rng(init)."""
    rng = np.random.default_rng(init)
    ### BEGIN SOLUTION
    return Sequential([
        Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(16 * 5 * 5, 120, rng=rng), ReLU(),
        Linear(120, 100, rng=rng), ReLU(),
        Linear(100, 10, rng=rng),
    ])
    ### END SOLUTION
''', tests='''
grading.check_lenet(build_lenet, [0])
### BEGIN HIDDEN TESTS
grading.check_lenet(build_lenet, grading.random_cases(lambda rng: int(rng.integers(1, 10**6)), 3, seed=70101))
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 3. Gradient descent, momentum and Adam

Step 4 moves every weight a little against its gradient. For a parameter `p` with gradient `g`
(what `model.backward` left in `p.grad`) and a learning rate `lr`:

- **SGD** (stochastic gradient descent): `p ← p − lr · g`.
- **SGD with momentum**: a velocity `v` (zeros at the start) remembers the past steps,
  `v ← momentum · v + g`, then `p ← p − lr · v`. Where the gradients keep pointing the same way the
  steps grow (up to 1/(1 − momentum) = 10 times for momentum 0.9); where they flip back and forth
  they cancel. This is `torch.optim.SGD`'s convention and `cnnlib.optim.SGD`'s.
- **Adam** keeps a momentum-like running mean of `g` and a running mean of `g²` per weight, and
  divides the first by the square root of the second: every weight gets its own step size, about
  `lr` in size. `Adam(params, lr=1e-3)` is the usual first choice.

By hand, for one weight `p = 1.0` with the gradient 0.5 three times, `lr = 0.1`, momentum 0.9:
v = 0.5, p = 0.95; v = 0.9·0.5 + 0.5 = 0.95, p = 0.855; v = 0.9·0.95 + 0.5 = 1.355, p = 0.7195.
`cnnlib.optim.SGD` agrees:
""")

nb.code("""
from cnnlib.layers import Parameter

p = Parameter(np.array([1.0], np.float32), "p")
optimizer = SGD([p], lr=0.1, momentum=0.9)
for step in range(3):
    p.grad[...] = 0.5                    # what a backward pass would leave there
    optimizer.step()
    print(f"step {step + 1}: p = {p.data[0]:.4f}")
""")

nb.md(r"""
**The learning rate** is the most important number of training. Below, three fresh LeNets train on
the same 25 batches of 32 digits with SGD and three learning rates. Too large (here 2.0), a step
overshoots: the loss jumps up and the network can break down completely (its ReLUs die, or the
numbers overflow to NaN). Too small (0.001), it hardly moves. In between (0.05), the loss falls
steadily. The second plot compares plain SGD with momentum and Adam on the same batches.
""")

nb.code("""
def batch_losses(make_optimizer, batches=25, batch_size=32, init=0):
    \"\"\"A fresh LeNet trained on the first `batches` batches of X_train: the loss of every batch.\"\"\"
    model = lenet(np.random.default_rng(init))
    optimizer = make_optimizer(model.parameters())
    losses = np.full(batches, np.nan)
    with np.errstate(all="ignore"):                   # a too-large rate may overflow: that is the point
        for b in range(batches):
            xb, yb = X_train[b * batch_size:(b + 1) * batch_size], y_train[b * batch_size:(b + 1) * batch_size]
            optimizer.zero_grad()
            loss, dlogits = softmax_cross_entropy(model(xb), yb)
            if not np.isfinite(loss):
                break                                 # diverged: the rest stays NaN
            losses[b] = loss
            model.backward(dlogits)
            optimizer.step()
    return losses

runs = {
    "SGD, lr = 2.0 (too large)": batch_losses(lambda ps: SGD(ps, lr=2.0)),
    "SGD, lr = 0.001 (too small)": batch_losses(lambda ps: SGD(ps, lr=0.001)),
    "SGD, lr = 0.05": batch_losses(lambda ps: SGD(ps, lr=0.05)),
    "SGD + momentum 0.9, lr = 0.01": batch_losses(lambda ps: SGD(ps, lr=0.01, momentum=0.9)),
    "Adam, lr = 0.001": batch_losses(lambda ps: Adam(ps, lr=1e-3)),
}
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), layout="constrained", sharey=True)
for ax, names, title in [(axes[0], list(runs)[:3], "the learning rate"),
                         (axes[1], list(runs)[2:], "plain SGD, momentum, Adam")]:
    for name in names:
        ax.plot(np.arange(1, len(runs[name]) + 1), runs[name], marker=".", label=name)
    ax.set_title(title)
    ax.set_xlabel("batch (32 digits each)")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_ylim(0, 6)
    ax.legend()
fig.suptitle("25 steps of a fresh LeNet (ln 10 = 2.30 is the loss of a uniform guess)")
plt.show()
for name, losses in runs.items():
    print(f"{name:32s} loss of the last batch: {losses[-1]:.3f}")
""")

nb.exercise(2, "one SGD step with momentum, in place", points=3, text=r"""
Complete `sgd_momentum_step(params, velocities, lr, momentum)`: one step of SGD with momentum for
every parameter. `params` is a list of cnnlib `Parameter`s (each with `.data` and its gradient
`.grad`, same shape), `velocities` a list of arrays of the same shapes (zeros before the first
step), kept between steps. For each pair:

1. `v ← momentum · v + p.grad`, stored back into the velocity array;
2. `p.data ← p.data − lr · v`.

Both updates must happen **in place**: change the arrays you were given (`v *= ...`, `v += ...`,
`p.data -= ...`, or `p.data[...] = ...`), do not bind new ones. `p.data = p.data - lr * v` gives
the right numbers but a new array, and everything else that holds the old one (an optimizer's
state, a saved `state_dict`) silently stops seeing the model's weights. Return nothing.

The tests run a few steps with new gradients each time and compare with `cnnlib.optim.SGD` (which
is switched off inside your function), check that every `p.data` is still the same array, and
check the velocities. Hidden tests: 20 random cases.

Allowed: numpy; cnnlib (`cnnlib.optim.SGD` above all) is switched off while your function is
checked.
""", solution='''
def sgd_momentum_step(params, velocities, lr, momentum):
    """One SGD step with momentum: update every p.data and its velocity IN PLACE; return nothing."""
    for p, v in zip(params, velocities):
        ### BEGIN SOLUTION
        v *= momentum
        v += p.grad
        p.data -= lr * v
        ### END SOLUTION
''', tests='''
grading.check_sgd_momentum(sgd_momentum_step, [
    {"shapes": [(1,)], "lr": 0.1, "momentum": 0.9, "steps": 3, "init": 0},
    {"shapes": [(6, 1, 5, 5), (6,)], "lr": 0.05, "momentum": 0.9, "steps": 3, "init": 1},   # a conv layer
    {"shapes": [(3, 4), (4,), (2, 2)], "lr": 0.5, "momentum": 0.5, "steps": 4, "init": 2},
])
### BEGIN HIDDEN TESTS
grading.check_sgd_momentum(sgd_momentum_step, grading.momentum_cases(20, seed=70201))
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 4. Mini-batches and epochs

Step 5 says: repeat for every image. Computing the gradient on all 4,000 images before each step
would be slow; one image at a time is noisy and wastes numpy's vectorization. The middle way is
the **mini-batch**: 32 or 64 images per step, the gradient averaged over them. One pass over the
whole training set, batch after batch, is an **epoch**.

The batches must be **shuffled**: in a fixed order, every epoch would repeat the same steps (and a
training set sorted by digit would teach one digit at a time). A new random order each epoch,
drawn from a generator created from a fixed number (`np.random.default_rng(7)`), makes the run
repeatable: the same number, the same batches, the same trained network.
""")

nb.code("""
rng = np.random.default_rng(7)
print("epoch 1 order:", rng.permutation(10))
print("epoch 2 order:", rng.permutation(10))
rng = np.random.default_rng(7)
print("new generator:", rng.permutation(10), "(default_rng(7) again: the same as epoch 1)")
""")

nb.exercise(3, "one training epoch", points=4, text=r"""
Complete `train_epoch(model, optimizer, X, y, batch_size, rng)`: one epoch over `(X, y)` (`X` of
shape `(N, 1, H, W)`, `y` of shape `(N,)`), exactly as `cnnlib.train.fit` runs one:

1. shuffle once with the generator you are given: `order = rng.permutation(len(X))`;
2. batch `b` holds the examples `order[b*batch_size : (b+1)*batch_size]`, for
   `start in range(0, len(X), batch_size)` (the last batch may be smaller);
3. for each batch: `optimizer.zero_grad()`, `logits = model.forward(xb)`,
   `loss, dlogits = softmax_cross_entropy(logits, yb)`, `model.backward(dlogits)`,
   `optimizer.step()`;
4. return the list of the batch losses, `float(loss)` for each batch in order.

Use the `softmax_cross_entropy` imported at the top; do not call `fit` (it is switched off while
your function is checked).

The tests train small models (SGD, SGD with momentum, Adam) for two epochs with your function and
compare the weights after each epoch with `fit` doing the same epoch from a copy of the model, the
optimizer and the generator; they check the losses you return and that the mean loss falls from
the first epoch to the second. Hidden tests: 10 random problems.

Allowed: numpy, `softmax_cross_entropy`, and the methods of the model and of the optimizer you
are given (they run cnnlib); the rest of cnnlib (`fit` above all) is switched off while your
function is checked.
""", solution='''
def train_epoch(model, optimizer, X, y, batch_size, rng):
    """One pass over (X, y) in shuffled mini-batches; returns the list of the batch losses."""
    losses = []
    ### BEGIN SOLUTION
    order = rng.permutation(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        optimizer.zero_grad()
        loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
        model.backward(dlogits)
        optimizer.step()
        losses.append(float(loss))
    ### END SOLUTION
    return losses
''', tests='''
from cnnlib import losses

# while train_epoch is checked, softmax_cross_entropy and the model's and the optimizer's methods
# may use cnnlib; fit and the rest of cnnlib may not
with grading.substitute(globals(), softmax_cross_entropy=grading.reference_stand_in(losses.softmax_cross_entropy)):
    grading.check_train_epoch(train_epoch, [
        {"n": 24, "batch_size": 8, "optimizer": "sgd", "conv": False, "init": 0},
        {"n": 30, "batch_size": 8, "optimizer": "momentum", "conv": True, "init": 1},   # a last batch of 6
        {"n": 50, "batch_size": 16, "optimizer": "adam", "conv": True, "init": 2},
    ])
    ### BEGIN HIDDEN TESTS
    grading.check_train_epoch(train_epoch, grading.epoch_cases(10, seed=70301))
    ### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 5. How good is a classifier?

The network outputs 10 **logits** per image, one score per digit; the softmax turns them into
probabilities, and the prediction is the digit with the largest score, `logits.argmax(axis=1)`
(the position of the maximum, not its value). The **accuracy** is the fraction of images predicted
right.

The accuracy hides *which* digits get confused. The **confusion matrix** counts them: entry
`[i, j]` is the number of images of true digit `i` predicted as `j`. Rows are the true labels, so
each row sums to that digit's number of images; the diagonal holds the right answers, so
trace / N is the accuracy. A small example with 3 classes:
""")

nb.code("""
y_small = np.array([0, 0, 1, 1, 1, 2])
logits_small = np.array([[2.0, 0.1, 0.3], [0.2, 1.5, 0.1], [0.1, 3.0, 0.2],
                         [0.5, 0.4, 0.3], [0.0, 2.2, 1.0], [0.1, 0.2, 0.9]])
pred_small = logits_small.argmax(axis=1)
m = viz.confusion_matrix(y_small, pred_small, num_classes=3)
print("predictions:", pred_small, " labels:", y_small)
print(m)
print("accuracy:", np.mean(pred_small == y_small), " trace / N:", np.trace(m) / len(y_small))
""")

nb.exercise(4, "accuracy and the confusion matrix", points=3, text=r"""
Complete `evaluate_predictions(logits, y, num_classes)`: for logits of shape `(N, K)` and labels
`y` of shape `(N,)` (integers in `0 .. num_classes-1`), return the pair `(accuracy, matrix)`:

- `accuracy`: the fraction of examples whose largest logit is at the true class, a float between
  0 and 1;
- `matrix`: the confusion matrix, an integer array (`np.int64`) of shape
  `(num_classes, num_classes)`, `matrix[i, j]` = the number of examples of true class `i`
  predicted as class `j` (rows are true labels). Count every example: a loop with `+= 1` or
  `np.add.at` both work.

Do it with numpy (`cnnlib.viz.confusion_matrix` is switched off while your function is checked).
The tests check the example above and random cases (hidden: 20 more).

Allowed: numpy; cnnlib is switched off while your function is checked.
""", solution='''
def evaluate_predictions(logits, y, num_classes):
    """(accuracy, confusion matrix) of logits (N, K) against labels y (N,)."""
    pred = logits.argmax(axis=1)
    ### BEGIN SOLUTION
    accuracy = float(np.mean(pred == y))
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y, pred), 1)
    ### END SOLUTION
    return accuracy, matrix
''', tests='''
grading.check_function(evaluate_predictions, grading.evaluation_reference, [
    {"logits": np.array([[2.0, 0.1, 0.3], [0.2, 1.5, 0.1], [0.1, 3.0, 0.2],
                         [0.5, 0.4, 0.3], [0.0, 2.2, 1.0], [0.1, 0.2, 0.9]]),
     "y": np.array([0, 0, 1, 1, 1, 2]), "num_classes": 3},                         # the example above
    {"logits": np.eye(4)[[3, 1, 1, 0, 2]] + 0.1, "y": np.array([3, 1, 2, 0, 0]), "num_classes": 4},
] + grading.classifier_cases(4, 74, kind="evaluation"),
    outputs=("accuracy", "confusion matrix"), mistakes=grading.evaluation_mistakes(), exact_dtype=True)
### BEGIN HIDDEN TESTS
grading.check_function(evaluate_predictions, grading.evaluation_reference,
                       grading.classifier_cases(20, seed=70401, kind="evaluation"),
                       outputs=("accuracy", "confusion matrix"), mistakes=grading.evaluation_mistakes(),
                       exact_dtype=True)
### END HIDDEN TESTS
''')

nb.md(r"""
The most instructive errors are the **confident** ones: images the network gets wrong while being
sure of itself (a large probability for the wrong digit). They show what it has not understood, or
a label that is wrong.
""")

nb.exercise(5, "the most confident mistakes", points=3, text=r"""
Complete `most_confident_mistakes(probs, y, k)`: `probs` of shape `(N, K)` are the predicted
probabilities (rows sum to 1), `y` of shape `(N,)` the labels. Return the indices (into the batch,
an integer array) of the **misclassified** examples, `probs.argmax(axis=1) != y`, ordered by the
probability of the class they predicted, `probs.max(axis=1)`, **largest first**; at most `k` of
them (fewer when there are fewer mistakes, possibly none). `np.flatnonzero` and `np.argsort` help.

The tests check random cases without ties (hidden: 20 more).

Allowed: numpy; cnnlib is switched off while your function is checked.
""", solution='''
def most_confident_mistakes(probs, y, k):
    """Indices of the misclassified examples, the most confident first, at most k."""
    ### BEGIN SOLUTION
    wrong = np.flatnonzero(probs.argmax(axis=1) != y)
    confidence = probs.max(axis=1)[wrong]
    return wrong[np.argsort(-confidence)][:k]
    ### END SOLUTION
''', tests='''
grading.check_function(most_confident_mistakes, grading.confident_mistakes_reference, [
    {"probs": np.array([[0.55, 0.45, 0.0], [0.4, 0.3, 0.3], [0.8, 0.1, 0.1]]), "y": np.array([1, 2, 1]), "k": 3},
    {"probs": np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]]), "y": np.array([1, 1, 0, 1]), "k": 5},
    {"probs": np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2]]), "y": np.array([1, 0, 0]), "k": 1},
    {"probs": np.array([[0.9, 0.1], [0.2, 0.8]]), "y": np.array([0, 1]), "k": 3},            # no mistakes
] + grading.classifier_cases(4, 75, kind="confident"), mistakes=grading.confident_mistakes_mistakes())
### BEGIN HIDDEN TESTS
grading.check_function(most_confident_mistakes, grading.confident_mistakes_reference,
                       grading.classifier_cases(20, seed=70501, kind="confident"),
                       mistakes=grading.confident_mistakes_mistakes())
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 6. Training on real digits

Now all five steps at once, on the 4,000 training digits, with `cnnlib.train.fit` (your
`train_epoch`, repeated, with a progress bar and an evaluation on held-out data after each epoch).
It returns a `History` of the loss and accuracy per epoch, the **learning curves**.

A good recipe on this data: `cnnlib.model.lenet` (the 28 × 28 version, padding 2), `Adam` with a
learning rate of 1e-3 to 3e-3, batches of 32 to 64, about 5 epochs: a few seconds on a laptop,
about 96 % on the held-out digits.
""")

nb.exercise(6, "train a LeNet to 95 % on held-out digits", points=4, text=r"""
Complete `train_lenet(X, y, X_val, y_val, rng)`: build a LeNet for `(N, 1, 28, 28)` digits (from
`rng`, e.g. `lenet(rng)` or your own), name it `model`, train it on `(X, y)` with
`validation_data=(X_val, y_val)` and the generator `rng` (for `fit`'s shuffling), and keep fit's
history in `history`. The cell then trains the model on the 4,000 training digits, watching the
1,000 held-out ones.

Graded: the model this cell trains must classify **at least 95 %** of the 1,000 held-out digits
correctly (the test evaluates `final_model`). The tests also run `train_lenet` on small subsets
of the training digits (64, and hidden 512) to check that it returns the model it trained. Keep
the training short: under about 20 seconds (the autograder runs it too).

Allowed: all of cnnlib (`lenet`, `fit`, `Adam`, `SGD`, ...) and numpy: nothing is switched off
here.
""", solution='''
def train_lenet(X, y, X_val, y_val, rng):
    """Build a LeNet for 1x28x28 digits and train it on (X, y); return (model, history)."""
    ### BEGIN SOLUTION
    model = lenet(rng)
    optimizer = Adam(model.parameters(), lr=3e-3)
    history = fit(model, optimizer, X, y, epochs=5, batch_size=64, validation_data=(X_val, y_val), rng=rng)
    ### END SOLUTION
    return model, history

final_model = final_history = None      # the trained model and its history (None if training fails)
final_model, final_history = train_lenet(X_train, y_train, X_test, y_test, np.random.default_rng(0))
''', tests='''
grading.check_training_function(train_lenet, X_train, y_train, subset=64)
grading.check_trained_model(final_model, X_test, y_test, at_least=0.95)
### BEGIN HIDDEN TESTS
grading.check_training_function(train_lenet, X_train, y_train, subset=512, seed=70601, min_accuracy=0.2)
### END HIDDEN TESTS
''')

nb.md(r"""
The learning curves: the loss falls and the accuracy rises epoch after epoch, on the training digits
and on the held-out ones. (The training numbers are averages over each epoch while the weights were
still changing, so after the first epoch they can even be worse than the held-out ones.)
""")

nb.code("""
final_history.plot("learning curves of the LeNet on the 4,000-digit sample")
""")

nb.code("""
result = evaluate(final_model, X_test, y_test)
print(f"held-out loss {result['loss']:.4f}, accuracy {result['accuracy']:.4f}: "
      f"{round(result['accuracy'] * len(X_test))} of {len(X_test)} digits right")
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 7. Looking inside

**The first layer's filters.** Each of the six 5 × 5 filters started as random numbers (step 1);
training shaped them. Many look like the edge and stroke detectors of notebook 01: positive
weights on one side, negative on the other.
""")

nb.code("""
viz.show_filters(final_model[0].weight.data, ncols=6, title="the six 5 x 5 filters of the first layer, after training")
""")

nb.md(r"""
**Every layer of one digit.** In the spirit of the interactive visualization the article
recommends, pick a held-out digit and follow it through the network: the six maps of the first
conv layer (after its ReLU), the six pooled maps, the sixteen maps of the second conv layer, the
sixteen 5 × 5 pooled maps that get flattened into the 400 features, and the probabilities of the
ten digits at the end. Early maps still look like the digit with some strokes lit up; deeper ones
are coarse and abstract.
""")

nb.code("""
STAGES = [(2, "conv 1 + ReLU (6 @ 28 x 28)"), (3, "max pool 1 (6 @ 14 x 14)"),
          (5, "conv 2 + ReLU (16 @ 10 x 10)"), (6, "max pool 2 (16 @ 5 x 5): flattened to 400")]

def show_digit_layers(index):
    \"\"\"Held-out digit `index` at every stage of final_model, and its output probabilities.\"\"\"
    x = X_test[index:index + 1]
    final_model.eval()
    maps = {k: final_model[:k](x)[0] for k, _ in STAGES}
    probs = softmax(final_model(x))[0]
    fig = plt.figure(figsize=(16, 7))
    grid = fig.add_gridspec(5, 16, left=0.03, right=0.99, top=0.9, bottom=0.03, hspace=0.7, wspace=0.1)
    ax = fig.add_subplot(grid[0, 0:2])
    ax.imshow(x[0, 0], cmap="gray")
    ax.set_title(f"input: a {y_test[index]}")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    bars = fig.add_subplot(grid[0, 4:])
    bars.bar(range(10), probs, color=["#2ca02c" if d == y_test[index] else "#1f77b4" for d in range(10)])
    bars.set_xticks(range(10))
    bars.set_title(f"output: predicted {probs.argmax()} with probability {probs.max():.3f}")
    bars.set_xlabel("digit")
    bars.set_ylabel("probability")
    for row, (k, title) in enumerate(STAGES, start=1):
        for c, fmap in enumerate(maps[k]):
            ax = fig.add_subplot(grid[row, c])
            ax.imshow(fmap, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_title(title, loc="left", fontsize=10)
                ax.set_ylabel("row")
                ax.set_xlabel("column")
    fig.suptitle(f"held-out digit {index} through the trained LeNet (each map on its own colour scale)")
    plt.show()

show_digit_layers(0)
""")

nb.md(r"""
The same picture for any held-out digit: move the slider (it needs a running kernel; a saved or
headless notebook shows only the picture above).
""")

nb.code("""
import ipywidgets as widgets

widgets.interactive(show_digit_layers, index=widgets.IntSlider(0, min=0, max=len(X_test) - 1,
                                                                description="held-out digit",
                                                                continuous_update=False))
""")

nb.md(r"""
**The confusion matrix** of the 1,000 held-out digits: rows are the true digits, columns the
predictions. Almost everything is on the diagonal; the few numbers off it tell which digits look
alike to the network (4 and 9, 3 and 5, 7 and 2 are the usual suspects).
""")

nb.code("""
logits_test = predict(final_model, X_test)
viz.plot_confusion_matrix(y_test, logits_test.argmax(axis=1), labels=[str(d) for d in range(10)],
                          title="held-out digits")
""")

nb.md(r"""
**The most confident mistakes**: the held-out digits the network got wrong with the largest
probability for its wrong answer (Exercise 7.5, written here with numpy so the picture does not
depend on your exercise). Some are badly written; some you might get wrong too.
""")

nb.code("""
probs_test = softmax(logits_test)
wrong = np.flatnonzero(probs_test.argmax(axis=1) != y_test)
worst = wrong[np.argsort(-probs_test.max(axis=1)[wrong])][:12]
print(f"{len(wrong)} of {len(y_test)} held-out digits are misclassified; the {len(worst)} most confident:")
fig, axes = plt.subplots(2, 6, figsize=(13, 5), layout="constrained")
for ax in axes.flat[len(worst):]:
    ax.axis("off")
for ax, i in zip(axes.flat, worst):
    ax.imshow(X_test[i, 0], cmap="gray")
    ax.set_title(f"true {y_test[i]}, said {probs_test[i].argmax()}\\n(p = {probs_test[i].max():.3f})")
    ax.set_xlabel("column")
    ax.set_ylabel("row")
fig.suptitle("the most confidently misclassified held-out digits")
plt.show()
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 8. Overfitting, dropout and weight decay

With 63,802 parameters and only a handful of examples, a network can learn its training set by
heart: the training accuracy reaches 100 % while the held-out accuracy stalls far below. That gap
is **overfitting**. Below, three LeNets train on just 100 digits (10 of each) for 15 epochs:

- plain;
- with **dropout** (`Dropout(0.5)` before the first two FC layers): during training each of those
  inputs is zeroed at random with probability 0.5 (and the others scaled by 2), so the network
  cannot rely on any single feature; at test time (`model.eval()`) dropout does nothing;
- with **weight decay** (`Adam(..., weight_decay=1e-3)`): every step also pulls each weight a
  little towards zero, an L2 penalty that keeps the weights small and the function smooth.
""")

nb.code("""
tiny = np.concatenate([np.flatnonzero(y_train == d)[:10] for d in range(10)])    # 100 digits, 10 of each
X_tiny, y_tiny = X_train[tiny], y_train[tiny]
X_watch, y_watch = X_test[:200], y_test[:200]

def lenet_with_dropout(rng, p=0.5):
    return Sequential([
        Conv2d(1, 6, 5, padding=2, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
        Dropout(p, rng=rng), Linear(400, 120, rng=rng), ReLU(),
        Dropout(p, rng=rng), Linear(120, 100, rng=rng), ReLU(),
        Linear(100, 10, rng=rng),
    ])

histories = {}
for label, make_model, weight_decay in [("plain", lenet, 0.0), ("dropout 0.5", lenet_with_dropout, 0.0),
                                        ("weight decay 1e-3", lenet, 1e-3)]:
    rng = np.random.default_rng(1)
    model = make_model(rng)
    histories[label] = fit(model, Adam(model.parameters(), lr=2e-3, weight_decay=weight_decay), X_tiny, y_tiny,
                           epochs=15, batch_size=20, validation_data=(X_watch, y_watch), rng=rng, progress=False)

fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained", sharey=True)
for ax, (label, h) in zip(axes, histories.items()):
    epochs = np.arange(1, len(h.history["accuracy"]) + 1)
    ax.plot(epochs, h.history["accuracy"], label="training (100 digits)")
    ax.plot(epochs, h.history["val_accuracy"], label="held-out (200 digits)")
    ax.set_title(label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.legend()
fig.suptitle("Training on 100 digits: the gap between the curves is overfitting")
plt.show()
for label, h in histories.items():
    print(f"{label:18s} last epoch: training {h.history['accuracy'][-1]:.2f}, held-out {h.history['val_accuracy'][-1]:.2f}, "
          f"gap {h.history['accuracy'][-1] - h.history['val_accuracy'][-1]:.2f}")
""")

nb.md(r"""
Read the numbers above rather than a promise: on so few examples every curve is noisy. Here the
plain net learns its 100 digits perfectly and stays about 15 points lower on held-out ones.
Dropout closes the gap (with dropout, the training accuracy is measured with dropout switched on,
as `fit` reports it during the epoch, so it even falls below the held-out one) but also slows the
learning down: in 15 epochs it has not caught up. Weight decay of 1e-3 changes little at this
length of training. The real cure for overfitting is more data: the 4,000 digits of section 6
already give a gap of a few percent, and the full MNIST's 60,000 (next section) less still.
Dropout and weight decay matter most for large networks on modest data.
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 9. The full MNIST (optional)

The sample has 4,000 training digits; the full MNIST has 60,000 (and 10,000 test digits). The cell
below trains a LeNet on all of them for one epoch **only if the full set is already on this
machine** (`cnnlib.datasets.load_mnist("full")` downloads it once, 11 MB, into `$CNNLIB_DATA` or
`~/.cache/cnnlib`); otherwise it says so and skips. One epoch of the full set takes 15 times as long
as one of the sample (`benchmarks/bench_epoch.py` measures it on your machine).
""")

nb.code("""
(X_full, y_full), (X_full_test, y_full_test), source = datasets.load_mnist("auto", return_source=True)
if source == "full":
    rng = np.random.default_rng(0)
    full_model = lenet(rng)
    fit(full_model, Adam(full_model.parameters(), lr=1e-3), X_full, y_full, epochs=1, batch_size=64, rng=rng)
    full_accuracy = evaluate(full_model, X_full_test, y_full_test)["accuracy"]
    print(f"full MNIST: one epoch on {len(X_full):,} training digits, test accuracy {full_accuracy:.4f} "
          f"on {len(X_full_test):,} test digits")
else:
    print("The full MNIST is not in the cache, so this cell skips the 60,000-digit training. "
          "To run it, download it once (online): datasets.load_mnist('full'), then run this cell again.")
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## Summary

- Training is five steps: random initialisation, forward, total error, backpropagation and
  gradient descent, repeated over the training set; the boat's error goes from 0.55 to 0.06.
- The article's LeNet: 32 × 32 → 6 @ 28 × 28 → 6 @ 14 × 14 → 16 @ 10 × 10 → 16 @ 5 × 5 → flatten 400
  → 120 → 100 → 10, 156 + 2,416 + 48,120 + 12,100 + 1,010 = 63,802 parameters; a 5-layer net,
  since only layers with weights count; INPUT → [CONV → RELU → POOL]\*2 → [FC → RELU]\*2 → FC.
- SGD with momentum: `v = momentum·v + g`, `p -= lr·v`, updated in place; Adam adapts a step size
  per weight. Too large a learning rate diverges, too small a one crawls.
- An epoch is one pass in shuffled mini-batches (from a fixed generator: repeatable); `fit` repeats it and records
  the learning curves.
- Accuracy is the fraction of right argmaxes; the confusion matrix has the true labels as rows and
  its trace / N is the accuracy.
- Five epochs of Adam on 4,000 digits take seconds and reach about 96 % on 1,000 held-out digits
  (0.961 for the solution, trained from `np.random.default_rng(0)`).
- With 100 training digits the network overfits; dropout narrows the gap (and slows learning),
  weight decay is a gentler pull towards small weights, and more data narrows the gap most.

**Next:** notebook 08 looks at the architectures that followed LeNet (AlexNet, VGG, GoogLeNet,
ResNet, DenseNet), their receptive fields and residual blocks.
""")

nb.md(r"""
**Closing note: times and accuracy.** Measured on the course's development machine (2 cores shared
with other jobs, load average about 2.5): this notebook ran top to bottom in 14 s, 3 s of it the
training of Exercise 7.6 (5 epochs on 4,000 digits); one learner's autograde took 13 s; the
solution's LeNet reached **0.961** on the 1,000 held-out digits. With the machine busier (load
average 8–9) the whole notebook took 37 s.
""")

nb.references("intuitive_explanation", "python_cnn", "tds_cnn", "layers_and_params")

if __name__ == "__main__":
    nb.main()

"""Source of solutions/05_backprop/05_backprop.ipynb (run me after editing)."""

from nbbuild import RULES, Notebook

nb = Notebook("05_backprop")

nb.md(r"""
# 05 · Backpropagation

A CNN learns by **gradient descent**: nudge every weight a little in the direction that lowers
the error. For that it needs the gradient of the error with respect to each of its weights, often
millions of them. **Backpropagation** computes all of them in one backward sweep through the
network, at a small multiple of the cost of one forward pass, with nothing more than the chain
rule of calculus applied one layer at a time. Every layer of this course comes as a pair: a forward pass that
returns `(out, cache)` and a backward pass that takes the upstream gradient `dout` and the cache
and returns the gradients of its inputs and parameters.

**You will learn**
- the chain rule on a small computational graph with real numbers: *local gradient × upstream
  gradient*, and why gradients add where paths meet;
- the article's training steps and its boat example: total error ½·Σ(target − output)² = 0.55,
  its gradient [0.2, 0.4, −0.9, 0.3], and 0.06 after training;
- softmax cross-entropy, why classification prefers it, its gradient (softmax − one-hot) / N, and
  how to compute it without overflowing for logits like ±1000;
- the backward pass of ReLU, of a linear layer, and of a convolution with stride and padding
  (dw a correlation of x with dout, dx a "full" convolution of dout with the flipped kernel);
- numerical gradient checking: centred differences, relative errors, float64, kinks;
- all of it at once: a tiny CNN on one MNIST digit, its gradient by chaining the layers, checked
  numerically and against cnnlib, then trained on that digit.

**Exercises** (19 points)

| exercise | points |
|---|---|
| 5.1 the squared error and its gradient | 2 |
| 5.2 softmax cross-entropy, stable, and its gradient | 3 |
| 5.3 ReLU, backward | 1 |
| 5.4 linear layer, backward | 3 |
| 5.5 convolution, backward (stride and padding) | 5 |
| 5.6 a numerical gradient | 3 |
| 5.7 a gradient check | 2 |

**How to work.** Each exercise has a solution cell, which in your copy holds
`raise NotImplementedError()`: replace that line with your code. Then run the test cell below it:
a line starting with ✔ means the visible tests pass. When your work is graded, more tests with
random cases run too (odd and non-square sizes, strides that leave pixels unused, one image, one
channel, huge logits), and every gradient is checked twice: against cnnlib, and against numerical
gradients of cnnlib's forward pass. So solve the problem in general rather than for the visible
cases. Exercises are independent: skipping one costs only its own points. Check the whole notebook
with the **Validate** button (or `nbgrader validate 05_backprop.ipynb`).
""")

nb.md(RULES)

nb.setup("""
import numpy as np
import matplotlib.pyplot as plt
import scipy.signal

from cnnlib import datasets, gradcheck, grading, losses
from cnnlib import functional as F
from cnnlib.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlib.model import Sequential

np.set_printoptions(precision=4, suppress=True)
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 1. The chain rule on a small graph

Take the smallest network there is, one neuron with one input, and write its computation as a
**graph**: each node does one simple operation on the values that flow into it.

$$u = w \cdot x, \qquad z = u + b, \qquad a = \mathrm{ReLU}(z), \qquad E = \tfrac12 (t - a)^2$$

With the input `x = 2`, the weight `w = 0.8`, the bias `b = −0.3` and the target `t = 1`, the
**forward pass** computes, left to right: `u = 1.6`, `z = 1.3`, `a = 1.3`, `E = ½ (1 − 1.3)² = 0.045`.

How much does `E` change when `w` changes a little? The **backward pass** answers it from right
to left. Each node knows its **local gradient**, the derivative of its output with respect to each
of its inputs, and receives from the node after it the **upstream gradient** `dE/d(its output)`.
It multiplies the two and hands the result on (the chain rule):

| node | forward | local gradient | upstream × local = gradient |
|---|---|---|---|
| E = ½(t − a)² | E = 0.045 | dE/da = a − t = 0.3 | 1 × 0.3 → **dE/da = 0.3** |
| a = ReLU(z) | a = 1.3 | da/dz = 1, because z > 0 | 0.3 × 1 → **dE/dz = 0.3** |
| z = u + b | z = 1.3 | dz/du = 1, dz/db = 1 | **dE/du = 0.3**, **dE/db = 0.3** |
| u = w · x | u = 1.6 | du/dw = x = 2, du/dx = w = 0.8 | **dE/dw = 0.6**, **dE/dx = 0.24** |

So increasing `w` by a small ε increases the error by about 0.6·ε: gradient descent will
*decrease* `w`. In the figure, the forward values are green (above each edge), the gradients red
(below):
""")

nb.code('''
def draw_graph(ax, nodes, edges, title):
    """Nodes {name: (x, y, label)}; edges [(src, dst, forward value, gradient)], values drawn on the edges."""
    r = 0.55                                                  # node radius
    for name, (x, y, label) in nodes.items():
        ax.add_patch(plt.Circle((x, y), r, fc="#f2f2f2", ec="black", lw=1.5))
        ax.text(x, y, label, ha="center", va="center", fontsize=10)
    for src, dst, value, grad in edges:
        (x0, y0, _), (x1, y1, _) = nodes[src], nodes[dst]
        d = np.hypot(x1 - x0, y1 - y0)
        ux, uy = (x1 - x0) / d, (y1 - y0) / d                 # along the edge
        nx, ny = -uy, ux                                      # across it: values on one side, gradients on the other
        ax.annotate("", xy=(x1 - r * ux, y1 - r * uy), xytext=(x0 + r * ux, y0 + r * uy),
                    arrowprops=dict(arrowstyle="->", lw=1.5))
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        off = 0.3 if abs(uy) < 0.1 else 0.65                  # slanted edges: keep the text off the line
        ax.text(mx + off * nx, my + off * ny, value, color="green", ha="center", va="center", fontsize=11)
        if grad is not None:
            ax.text(mx - off * nx, my - off * ny, grad, color="red", ha="center", va="center", fontsize=11)
    ax.set_xlim(-0.8, max(x for x, _, _ in nodes.values()) + 0.8)
    ax.set_ylim(-0.9, max(y for _, y, _ in nodes.values()) + 0.9)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)

x, w, b, t = 2.0, 0.8, -0.3, 1.0
u = w * x; z = u + b; a = max(z, 0.0); E = 0.5 * (t - a) ** 2             # forward
dE_da = a - t                                                              # backward, right to left
dE_dz = dE_da * (1.0 if z > 0 else 0.0)
dE_du, dE_db = dE_dz * 1.0, dE_dz * 1.0
dE_dw, dE_dx = dE_du * x, dE_du * w
print(f"forward:  u = {u:.2f}, z = {z:.2f}, a = {a:.2f}, E = {E:.4f}")
print(f"backward: dE/da = {dE_da:.2f}, dE/dz = {dE_dz:.2f}, dE/db = {dE_db:.2f}, dE/dw = {dE_dw:.2f}, dE/dx = {dE_dx:.2f}")

nodes = {"x": (0, 3.6, "x"), "w": (0, 0.4, "w"), "b": (3, -0.6, "b"), "t": (9, -0.6, "t"),
         "mul": (3, 2, "×"), "add": (6, 2, "+"), "relu": (9, 2, "ReLU"), "E": (12, 2, "E =\\n½(t−a)²")}
edges = [("x", "mul", f"x = {x:g}", f"dE/dx = {dE_dx:.2f}"), ("w", "mul", f"w = {w:g}", f"dE/dw = {dE_dw:.2f}"),
         ("mul", "add", f"u = {u:.2f}", f"dE/du = {dE_du:.2f}"), ("b", "add", f"b = {b:g}", f"dE/db = {dE_db:.2f}"),
         ("add", "relu", f"z = {z:.2f}", f"dE/dz = {dE_dz:.2f}"), ("relu", "E", f"a = {a:.2f}", f"dE/da = {dE_da:.2f}"),
         ("t", "E", f"t = {t:g}", None)]
fig, ax = plt.subplots(figsize=(12, 5))
draw_graph(ax, nodes, edges, "One neuron as a graph: forward values (green), gradients of E (red)")
ax.set_xlabel("forward pass: left to right          backward pass: right to left")
ax.set_ylabel("inputs and operations")
plt.show()
''')

nb.md(r"""
Is 0.6 right? The derivative is the slope of `E` as a function of `w`: nudge `w` by a tiny `h` up
and down and divide the change of `E` by `2h`. Section 6 makes this **numerical gradient** the
judge of every backward pass in this notebook.
""")

nb.code("""
def error(w, x=2.0, b=-0.3, t=1.0):
    return 0.5 * (t - max(w * x + b, 0.0)) ** 2

h = 1e-5
print("numerical dE/dw:", (error(w + h) - error(w - h)) / (2 * h), "  backprop:", dE_dw)
""")

nb.md(r"""
### Where paths meet, gradients add

A value used twice receives a gradient from each use, and the two add up: this is the chain rule
for a function of several paths. In `f = x·y + x` the input `x` goes into the product and into the
sum, so `df/dx = y + 1`. With `x = 3, y = −2`: `df/dx = −2 + 1 = −1`.

CNNs are full of such meeting points. A convolution uses the **same** weights at every position
(weight sharing), so a weight's gradient is a **sum** over all the positions; a pixel that sits in
several overlapping windows receives a gradient from each of them. That `+=` is where most wrong
backward passes go wrong (you met it in notebook 04, for overlapping pooling windows).
""")

nb.code("""
def f(x, y):
    return x * y + x

x0, y0 = 3.0, -2.0
print("numerical df/dx:", (f(x0 + h, y0) - f(x0 - h, y0)) / (2 * h), "  sum of both paths: y + 1 =", y0 + 1)
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 2. The error at the output: the article's boat example

The article sums up how a ConvNet is trained in five steps:

1. initialise all filters and weights with random values;
2. the network takes a training image and runs the **forward pass** (convolution, ReLU and
   pooling, then the fully connected layers), which gives an output probability for each class;
3. compute the **total error** at the output layer, summed over all classes:
   $E = \sum \tfrac12 (\text{target} - \text{output})^2$;
4. use **backpropagation** to compute the gradient of the error with respect to every weight, and
   **gradient descent** to update all filters and weights so that the error goes down (each weight
   moves in proportion to its contribution to the total error);
5. repeat steps 2 to 4 for every image of the training set.

Only the weights change: the number and size of the filters and the architecture are fixed before
step 1. The article's example has four classes (in the original article's figure: dog, cat, boat
and bird) and an input image of a **boat**, so the target vector is `[0, 0, 1, 0]`. With random
initial weights, the network's output is random too, say `[0.2, 0.4, 0.1, 0.3]`. Its total error:

$$E = \tfrac12\left(0.2^2 + 0.4^2 + 0.9^2 + 0.3^2\right) = \tfrac12 (0.04 + 0.16 + 0.81 + 0.09) = \tfrac12 \cdot 1.1 = \mathbf{0.55}$$

Its gradient with respect to each output is `output − target` (the ½ cancels the 2 of the
square), so $\partial E / \partial\,\text{output} = [0.2, 0.4, -0.9, 0.3]$: the boat's output
should go **up** (negative gradient), the others down, the cat's (0.4) most. After training, the
article's network answers `[0.1, 0.1, 0.7, 0.1]` for the same image:
E = ½ (0.01 + 0.01 + 0.09 + 0.01) = **0.06**.
""")

nb.data("boat", """
# the article's boat example: four classes, the input image is a boat
boat_target = np.array([0., 0., 1., 0.])        # target vector
boat_output = np.array([0.2, 0.4, 0.1, 0.3])    # output of the untrained network
boat_trained = np.array([0.1, 0.1, 0.7, 0.1])   # output after training
""")

nb.code("""
loss, dpred = losses.squared_error(boat_output, boat_target)
print(f"total error before training: {loss:.2f}   gradient: {dpred}")
loss_after, _ = losses.squared_error(boat_trained, boat_target)
print(f"total error after training:  {loss_after:.2f}")

classes = ["dog", "cat", "boat", "bird"]
pos = np.arange(4)
fig, ax = plt.subplots(figsize=(8, 4))
ax.bar(pos - 0.27, boat_target, 0.27, label="target", color="#bbbbbb")
ax.bar(pos, boat_output, 0.27, label=f"before training (E = {loss:.2f})", color="#d62728")
ax.bar(pos + 0.27, boat_trained, 0.27, label=f"after training (E = {loss_after:.2f})", color="#2ca02c")
for p_, g in zip(pos, dpred):
    ax.text(p_, 1.12, f"dE/do = {g:+.1f}", ha="center", color="#d62728")
ax.set_xticks(pos, classes)
ax.set_ylim(0, 1.22)
ax.set_title("The article's boat example: output probabilities and the gradient of the error")
ax.set_xlabel("class")
ax.set_ylabel("probability")
ax.legend(loc="upper left", bbox_to_anchor=(0, 0.92))
plt.show()
""")

nb.md(r"""
A real network cannot set its outputs; it can only change its weights. Backpropagation carries
this gradient `[0.2, 0.4, −0.9, 0.3]` from the output back through every layer to every weight
(sections 4 and 5), and gradient descent then moves each weight against its own gradient.

**A batch.** Networks train on batches of N images at once. The loss of a batch is the **mean**
of the examples' errors, so that its size (and a good learning rate) does not depend on N. The
mean brings a factor 1/N into the gradient:

$$L = \frac1N \sum_{n=1}^{N} \tfrac12 \sum_{k} (\text{target}_{nk} - \text{pred}_{nk})^2, \qquad \frac{\partial L}{\partial\,\text{pred}_{nk}} = \frac{\text{pred}_{nk} - \text{target}_{nk}}{N}$$
""")

nb.exercise(1, "the squared error and its gradient", points=2, text=r"""
Write `squared_error(pred, target)` for a batch: `pred` and `target` have shape `(N, K)` (N
examples, K outputs each). Return `(loss, dpred)`:

- `loss`, a number: the mean over the N examples of ½·Σ_k (target − pred)², the article's total
  error per example;
- `dpred`, an array of shape `(N, K)`: the gradient of `loss` with respect to `pred`.

Use numpy only (cnnlib is switched off while your function is checked). The tests check the
boat example as a batch of one (0.55 and [0.2, 0.4, −0.9, 0.3]), the trained output (0.06), a batch
of three, `dpred` against numerical gradients of the loss, and (hidden) 24 random batches and 8
more gradient checks.
""", solution='''
def squared_error(pred, target):
    """Mean over the batch of 1/2 * sum((target - pred)**2), and its gradient: (N, K), (N, K) -> (loss, dpred)."""
    N = pred.shape[0]
    ### BEGIN SOLUTION
    diff = pred - target
    loss = 0.5 * np.sum(diff ** 2) / N
    dpred = diff / N
    ### END SOLUTION
    return loss, dpred
''', tests='''
se_mistakes = grading.squared_error_mistakes()
rng = np.random.default_rng(51)
visible_cases = [
    {"pred": boat_output[None], "target": boat_target[None]},        # the article's boat: 0.55
    {"pred": boat_trained[None], "target": boat_target[None]},       # after training: 0.06
    {"pred": np.array([[0.2, 0.4, 0.1, 0.3], [0.1, 0.1, 0.7, 0.1], [0.25, 0.25, 0.25, 0.25]]),
     "target": np.array([[0., 0., 1., 0.]] * 3)},                  # a batch of three: the mean
    {"pred": rng.standard_normal((4, 3)), "target": rng.standard_normal((4, 3))},
]
grading.check_function(squared_error, losses.squared_error, visible_cases, outputs=("loss", "dpred"),
                       mistakes=se_mistakes)
grading.check_gradients(grading.loss_backward(squared_error), grading.without_cache(losses.squared_error),
                        visible_cases, wrt=["pred"])
### BEGIN HIDDEN TESTS
grading.check_function(squared_error, losses.squared_error, grading.squared_error_cases(24, seed=50101),
                       outputs=("loss", "dpred"), mistakes=se_mistakes)
grading.check_gradients(grading.loss_backward(squared_error), grading.without_cache(losses.squared_error),
                        grading.squared_error_cases(8, seed=50102), wrt=["pred"], seed=50102)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 3. Softmax and cross-entropy

The article's network outputs probabilities. The last layer of a classifier produces K scores
(**logits**) `z`, any real numbers; **softmax** turns them into probabilities, positive and
summing to 1:

$$p_k = \frac{e^{z_k}}{\sum_j e^{z_j}}$$

For classification, the loss of choice is not the squared error but the **cross-entropy**: minus
the log of the probability the network gives to the true class `y`, $L = -\log p_y$. It is 0 for a
perfect prediction and grows without bound as `p_y → 0`. Combined with softmax, its gradient with
respect to the logits is famously simple:

$$\frac{\partial L}{\partial z_k} = p_k - [k = y] \qquad\text{that is}\qquad \frac{\partial L}{\partial z} = p - \text{one\_hot}(y)$$

(For a batch, the loss is the mean over the N examples and the gradient is divided by N.) Three
facts worth checking in your own code:

- each row of the gradient sums to 0 (the probabilities sum to 1, the one-hot too);
- with all logits 0 every class gets 1/K, so the loss is ln K: **ln 10 = 2.303** for ten digits,
  what an untrained classifier should start near;
- the gradient pulls the true class up by 1 − p_y and pushes every other class down by its p_k.

**Why cross-entropy for classification?** It is the negative log-likelihood of the labels, and its
gradient stays large when the network is confidently wrong. Through a softmax, the squared error's
gradient *vanishes* exactly then: when the true class's probability is near 0, the softmax is
saturated and the squared error barely tells the logits to move. Two classes, the true one with
logit `m` and the other with logit 0:
""")

nb.code("""
margins = np.linspace(-10, 10, 201)                 # logit of the true class minus the other's
logits = np.stack([margins, np.zeros_like(margins)], axis=1)
y_true = np.zeros(len(margins), dtype=np.int64)      # class 0 is the true class
probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

grad_ce = probs[:, 0] - 1                            # d(-log p_0) / d z_0
target = np.eye(2)[y_true]
d_probs = probs - target                             # d(1/2 sum (target - p)^2) / dp
grad_se = np.sum(d_probs * probs * ((np.arange(2) == 0) - probs[:, [0]]), axis=1)  # chain rule through softmax

fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(margins, np.abs(grad_ce), label="cross-entropy: |p_y - 1|")
ax.plot(margins, np.abs(grad_se), label="squared error through softmax")
ax.axvspan(-10, -3, color="#d62728", alpha=0.08)
ax.text(-6.5, 0.9, "confidently wrong", ha="center", color="#d62728")
ax.set_title("Gradient on the true class's logit: cross-entropy keeps pushing, squared error stalls")
ax.set_xlabel("logit of the true class minus logit of the other class")
ax.set_ylabel("|dL / dz_true|")
ax.legend()
plt.show()
""")

nb.md(r"""
### Computing it without overflowing

`np.exp(1000)` is `inf` in float64 (the largest float is about 1.8e308 ≈ e^709.8), and
`inf / inf` is `nan`: a naive softmax breaks on large logits, and large logits do happen in
training. The cure costs one line: subtracting the same number from every logit of a row does
not change the softmax (the factor $e^{-c}$ cancels), so subtract the row's **maximum**. Then the
largest exponent is $e^0 = 1$ and nothing overflows.

There is a second trap. A logit far *below* the maximum has a probability that underflows to
exactly 0, and `log(0) = −inf`. So compute the loss from the **log-softmax**, never as the log of
a probability:

$$\log p_k = (z_k - \max z) - \log \sum_j e^{z_j - \max z}$$
""")

nb.code("""
z = np.array([[1000.0, 1000.0, -1000.0]])
with np.errstate(all="ignore"):                       # silence numpy's overflow warnings for the demo
    naive = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
print("naive softmax of [1000, 1000, -1000]:", naive)
shifted = z - z.max(axis=1, keepdims=True)
print("stable softmax:                     ", np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True))

z = np.array([[0.0, 2000.0]])                          # the true class 0 is 2000 below the maximum
shifted = z - z.max(axis=1, keepdims=True)
p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
with np.errstate(divide="ignore"):
    print("-log(softmax) for class 0:", -np.log(p[0, 0]))
log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
print("-(log-softmax) for class 0:", -log_p[0, 0])
print("cnnlib:", losses.softmax_cross_entropy(z, np.array([0]))[0])
""")

nb.exercise(2, "softmax cross-entropy, stable, and its gradient", points=3, text=r"""
Write `softmax_cross_entropy(logits, y)`: `logits` has shape `(N, K)`, `y` holds the N true
classes as integers in `0 .. K-1`. Return `(loss, dlogits)`:

- `loss`, a number: the mean over the batch of `−log softmax(logits[n])[y[n]]`, computed from the
  log-softmax with each row's maximum subtracted (so logits of ±1000 work, and a true class 2000
  below its row's maximum gives a loss of about 2000, not `inf`);
- `dlogits`, shape `(N, K)`: `(softmax(logits) − one_hot(y)) / N`.

`p[np.arange(N), y]` picks each row's true-class entry. Use numpy only: cnnlib is switched off,
and `scipy.special`'s softmax and logsumexp would do the exercise for you. The tests check zero
logits (ln 10), a small example, huge logits, a true class far below the maximum, random logits,
`dlogits` against numerical gradients, and (hidden) 25 random batches of every kind and 8 more
gradient checks.
""", solution='''
def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) (N, K) against classes y (N,), and its gradient (N, K)."""
    N = logits.shape[0]
    ### BEGIN SOLUTION
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.mean(log_probs[np.arange(N), y])
    dlogits = np.exp(log_probs)
    dlogits[np.arange(N), y] -= 1
    dlogits /= N
    ### END SOLUTION
    return loss, dlogits
''', tests='''
ce_mistakes = grading.softmax_ce_mistakes()
rng = np.random.default_rng(52)
grading.check_function(softmax_cross_entropy, losses.softmax_cross_entropy, [
    {"logits": np.zeros((3, 10)), "y": np.array([0, 5, 9])},                        # uniform: ln 10 = 2.3026
    {"logits": np.array([[1., 2., 3.], [1., 1., 1.], [0., 4., 1.]]), "y": np.array([2, 0, 1])},
    {"logits": np.array([[1000., 1000., -1000.], [-1000., 0., 1000.], [3., 1000., 2.]]),
     "y": np.array([0, 2, 1])},                                                      # huge logits
    {"logits": np.array([[0., 2000.]]), "y": np.array([0])},                         # a loss of 2000
    {"logits": rng.standard_normal((4, 5)), "y": np.array([4, 0, 2, 2])},
], outputs=("loss", "dlogits"), mistakes=ce_mistakes)
grading.check_gradients(grading.loss_backward(softmax_cross_entropy),
                        grading.without_cache(losses.softmax_cross_entropy),
                        [{"logits": rng.standard_normal((3, 4)), "y": np.array([1, 3, 0])},
                         {"logits": 3 * rng.standard_normal((5, 2)), "y": np.array([0, 1, 1, 0, 1])}],
                        wrt=["logits"])
### BEGIN HIDDEN TESTS
grading.check_function(softmax_cross_entropy, losses.softmax_cross_entropy, grading.logit_cases(25, seed=50201),
                       outputs=("loss", "dlogits"), mistakes=ce_mistakes)
gradient_cases = [c for c in grading.logit_cases(16, seed=50202) if np.abs(c["logits"]).max() < 100][:8]
grading.check_gradients(grading.loss_backward(softmax_cross_entropy),
                        grading.without_cache(losses.softmax_cross_entropy), gradient_cases,
                        wrt=["logits"], seed=50202)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 4. Backward through the layers: ReLU and linear

Every backward pass in a network does the same thing as the nodes of section 1: it receives
`dout`, the gradient of the loss with respect to the layer's **output** (same shape as the
output), and returns the gradients with respect to its **input** (same shape as the input) and its
parameters (same shapes as the parameters): upstream gradient × local gradient.

**ReLU**, `out = max(x, 0)`, is a gate. Where `x > 0` the output is the input, the local gradient
is 1 and `dout` passes unchanged; where `x < 0` the output is constant 0, the local gradient is 0
and the gradient stops. At `x == 0` ReLU has a kink and no derivative; libraries (cnnlib, PyTorch)
take 0 there.

$$dx = dout \cdot [x > 0]$$
""")

nb.code("""
x_r = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
out, cache = F.relu_forward(x_r)
print("x:   ", x_r, "\\nout: ", out)
print("dx for dout = [1, 2, 3, 4, 5]:", F.relu_backward(np.array([1., 2., 3., 4., 5.]), cache))
""")

nb.exercise(3, "ReLU, backward", points=1, text=r"""
Write `relu_backward(dout, x)`: the gradient `dx` of ReLU, given the upstream gradient `dout` and
the forward pass's input `x` (both of the same shape, any number of axes). Return `dx` of that
shape; the gradient at `x == 0` is 0. Do not change `dout` or `x` in place.

The tests check the example above, inputs with exact zeros, random arrays of 1 to 4 axes against
cnnlib and against numerical gradients, and (hidden) 20 random cases and 6 more gradient checks.

Allowed: numpy; cnnlib is switched off while your function is checked.
""", solution='''
def relu_backward(dout, x):
    """Gradient of ReLU: dout where x > 0, zero elsewhere (same shape as x)."""
    ### BEGIN SOLUTION
    dx = dout * (x > 0)
    ### END SOLUTION
    return dx
''', tests='''
reference = grading.backward_reference(F.relu_forward, F.relu_backward)
relu_mistakes = grading.relu_backward_mistakes()
grading.check_function(relu_backward, reference, [
    {"dout": np.array([1., 2., 3., 4., 5.]), "x": np.array([-2., -0.5, 0., 0.5, 2.])},
    {"dout": np.array([[-1., 2.], [3., -4.]]), "x": np.array([[1., 0.], [-3., 2.]])},        # negative dout passes too
] + grading.with_dout(grading.relu_cases(4, 53), F.relu_forward, 53), mistakes=relu_mistakes)
grading.check_gradients(relu_backward, F.relu_forward, grading.relu_cases(3, 533, kinks=False), wrt=["x"])
### BEGIN HIDDEN TESTS
grading.check_function(relu_backward, reference,
                       grading.with_dout(grading.relu_cases(20, seed=50301), F.relu_forward, seed=50301),
                       mistakes=relu_mistakes)
grading.check_gradients(relu_backward, F.relu_forward, grading.relu_cases(6, seed=50302, kinks=False),
                        wrt=["x"], seed=50302)
### END HIDDEN TESTS
''')

nb.md(r"""
**A linear (fully connected) layer**, `out = x @ w + b`, with `x` of shape `(N, in)`, the weights
`w` of shape `(in, out)` and `b` of shape `(out,)`. Each output is
$\text{out}_{nm} = \sum_d x_{nd} w_{dm} + b_m$, so:

- $\partial \text{out}_{nm} / \partial w_{dm} = x_{nd}$: summed over the examples, `dw = x.T @ dout`;
- $\partial \text{out}_{nm} / \partial x_{nd} = w_{dm}$: summed over the outputs, `dx = dout @ w.T`;
- $\partial \text{out}_{nm} / \partial b_m = 1$ for every example: `db = dout.sum(axis=0)`.

A shortcut to remember them: each gradient has the shape of its variable, and there is only one
way to multiply `dout (N, out)` with `x (N, in)` or `w (in, out)` that gives that shape. The sums
over the batch are the "paths meet" rule of section 1: `w` and `b` are used by every example.
""")

nb.code("""
x_l = np.array([[1., 2., 3.], [0., -1., 2.]])                 # N = 2 examples, 3 inputs
w_l = np.array([[1., 0.], [0., 1.], [1., -1.]])               # 3 inputs -> 2 outputs
b_l = np.array([0.5, -0.5])
out, cache = F.linear_forward(x_l, w_l, b_l)
dout = np.array([[1., 0.], [0., 2.]])
dx, dw, db = F.linear_backward(dout, cache)
print("out:\\n", out, "\\ndx = dout @ w.T:\\n", dx, "\\ndw = x.T @ dout:\\n", dw, "\\ndb:", db)
""")

nb.exercise(4, "linear layer, backward", points=3, text=r"""
Write `linear_backward(dout, x, w, b)`: the gradients of `out = x @ w + b`, given `dout` of shape
`(N, out)` and the forward pass's `x` `(N, in)`, `w` `(in, out)` and `b` `(out,)` (`b` is not
needed, but a backward pass takes what its forward took). Return `(dx, dw, db)` with the shapes of
`x`, `w` and `b`.

The tests check the example above, one example (N = 1), one input feature, square weights (where
a missing transpose still has the right shape), random layers against cnnlib and against
numerical gradients, and (hidden) 20 random layers and 6 more gradient checks.

Allowed: numpy; cnnlib is switched off while your function is checked.
""", solution='''
def linear_backward(dout, x, w, b):
    """Gradients of out = x @ w + b: dout (N, out) -> dx (N, in), dw (in, out), db (out,)."""
    ### BEGIN SOLUTION
    dx = dout @ w.T
    dw = x.T @ dout
    db = dout.sum(axis=0)
    ### END SOLUTION
    return dx, dw, db
''', tests='''
reference = grading.backward_reference(F.linear_forward, F.linear_backward)
lin_mistakes = grading.linear_backward_mistakes()
grading.check_function(linear_backward, reference, [
    {"dout": np.array([[1., 0.], [0., 2.]]), "x": np.array([[1., 2., 3.], [0., -1., 2.]]),
     "w": np.array([[1., 0.], [0., 1.], [1., -1.]]), "b": np.array([0.5, -0.5])},        # the example above
] + grading.with_dout(grading.linear_backward_cases(6, 54), F.linear_forward, 54),
    outputs=("dx", "dw", "db"), mistakes=lin_mistakes)
grading.check_gradients(linear_backward, F.linear_forward, grading.linear_backward_cases(3, 544),
                        wrt=["x", "w", "b"])
### BEGIN HIDDEN TESTS
grading.check_function(linear_backward, reference,
                       grading.with_dout(grading.linear_backward_cases(20, seed=50401), F.linear_forward, seed=50401),
                       outputs=("dx", "dw", "db"), mistakes=lin_mistakes)
grading.check_gradients(linear_backward, F.linear_forward, grading.linear_backward_cases(6, seed=50402),
                        wrt=["x", "w", "b"], seed=50402)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 5. Backward through a convolution

The forward pass of notebook 03, with `x_pad` the input zero-padded by `p` and stride `s`:

$$\text{out}[n, f, i, j] = b[f] + \sum_{c,\,a,\,d} x_{pad}[n, c,\; i s + a,\; j s + d]\; w[f, c, a, d]$$

Each output is a sum of products, so each term hands `dout[n, f, i, j]` back to its two factors,
and a variable that appears in many terms collects the **sum**:

- **db**: `b[f]` is added to every output of filter f: `db[f] = Σ_{n,i,j} dout[n, f, i, j]`.
- **dw**: `w[f, c, a, d]` meets the input pixel `x_pad[n, c, i s + a, j s + d]` in every window:
  `dw[f] = Σ_{n,i,j} dout[n, f, i, j] · window(n, i, j)`, a **correlation of the input with dout**
  (weight sharing: one weight, a sum over all positions).
- **dx**: every window sends `dout[n, f, i, j] · w[f]` back onto the pixels it covered:
  `dx_pad[n, :, window(i, j)] += dout[n, f, i, j] · w[f]`, summed over the filters. Then crop the
  padding: the zeros added by padding are not inputs and get no gradient.

Written as one operation, dx is a **"full" convolution** of dout with the kernel: for stride 1
and no padding, `dx[c] = Σ_f full_correlation(dout[f], w[f, c] flipped by 180°)`, which is what
`scipy.signal.convolve2d(dout, w, 'full')` computes (a true convolution flips its kernel). A
worked example with one channel and one filter: a 3 × 3 input, a 2 × 2 kernel, stride 1:
""")

nb.code("""
x_c = np.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
w_c = np.array([[1., 0.], [0., -1.]])
dout_c = np.array([[1., 2.], [3., 4.]])
out, cache = F.conv2d_forward(x_c[None, None], w_c[None, None], np.zeros(1))
dx, dw, db = F.conv2d_backward(dout_c[None, None], cache)
print("out:\\n", out[0, 0], "\\ndb =", db, "\\ndw:\\n", dw[0, 0], "\\ndx:\\n", dx[0, 0])
print("dw == correlate2d(x, dout, 'valid'):", np.allclose(dw[0, 0], scipy.signal.correlate2d(x_c, dout_c, "valid")))
print("dx == convolve2d(dout, w, 'full'):  ", np.allclose(dx[0, 0], scipy.signal.convolve2d(dout_c, w_c, "full")))
""")

nb.md(r"""
Check a few entries by hand. `db = 1 + 2 + 3 + 4 = 10`. `dw[0, 0]` pairs each `dout` with the
top-left pixel of its window: 1·1 + 2·2 + 3·4 + 4·5 = **37**. The centre pixel `x[1, 1]` lies in all
four windows, at a different kernel position in each: `dx[1, 1]` = 1·w[1, 1] + 2·w[1, 0] +
3·w[0, 1] + 4·w[0, 0] = −1 + 0 + 0 + 4 = **3**: the kernel appears rotated by 180°, which is the
flip of the "full convolution" view.

**Stride.** With stride s, the windows start every s pixels. In the loop form nothing changes
except where each window is (row `i*s`, column `j*s`). In the convolution form, insert `s − 1`
zeros between the entries of `dout` first (a *dilated* dout), then do the same full convolution.
Pixels that no window reaches, like the last rows and columns when `(H + 2p − K)` is not a multiple
of s, or the gaps between windows when `s > K`, were never used and get **zero gradient**:
""")

nb.code("""
def draw_numbers(ax, values, shade=None, fmt="{:g}"):
    \"\"\"Write a small 2-D array's numbers in a grid; shade the cells where `shade` is True.\"\"\"
    H, W = values.shape
    ax.imshow(np.zeros((H, W)) if shade is None else shade * 1.0, cmap="Greys", vmin=0, vmax=3)
    for r in range(H):
        for c in range(W):
            ax.text(c, r, fmt.format(values[r, c]), ha="center", va="center", fontsize=10)
    ax.set_xticks(range(W))
    ax.set_yticks(range(H))

rng = np.random.default_rng(5)
x_g = rng.integers(1, 10, size=(1, 1, 7, 8)).astype(float)
w_g = np.array([[[[1., 2.], [3., 4.]]]])
out, cache = F.conv2d_forward(x_g, w_g, np.zeros(1), stride=3)     # H_out = (7 - 2) // 3 + 1 = 2, W_out = 3
dx_g, _, _ = F.conv2d_backward(np.ones_like(out), cache)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
draw_numbers(axes[0], x_g[0, 0], shade=dx_g[0, 0] != 0)
axes[0].set_title("input 7 x 8: 2 x 2 windows, stride 3 (shaded: used)")
draw_numbers(axes[1], dx_g[0, 0], shade=dx_g[0, 0] != 0)
axes[1].set_title("dx for dout = 1: unused pixels get 0")
for ax in axes:
    ax.set_xlabel("column")
    ax.set_ylabel("row")
fig.suptitle("Stride larger than the kernel: the gaps and the leftover row get no gradient")
plt.show()

# the convolution form with a dilated dout: stride 2, 3 x 3 kernel, 7 x 7 input -> 3 x 3 output
x_s, w_s = rng.standard_normal((7, 7)), rng.standard_normal((3, 3))
out, cache = F.conv2d_forward(x_s[None, None], w_s[None, None], np.zeros(1), stride=2)
dout_s = rng.standard_normal(out.shape[2:])
dilated = np.zeros((5, 5))
dilated[::2, ::2] = dout_s                                           # s - 1 = 1 zero between entries
print("stride 2: dx == convolve2d(dilated dout, w, 'full'):",
      np.allclose(F.conv2d_backward(dout_s[None, None], cache)[0][0, 0], scipy.signal.convolve2d(dilated, w_s, "full")))
""")

nb.md(r"""
**Pooling's backward**, recalled from notebook 04 (the article calls it *upsampling*): max pooling
remembers where each window's maximum was and sends the whole gradient there, every other position
gets zero; mean pooling spreads each gradient evenly over its window. The article follows the
gradient through a block conv A → activation → pool → conv B: going back from the pooling output to
conv A takes two steps, upsample the gradient (the pooling backward), then multiply by the
activation's derivative (for ReLU, the mask `z > 0` of conv A's output). And a convolution right
after a pooling layer hands its dx straight to the pooling output, since pooling has no activation.
""")

nb.code("""
x4 = np.array([[[[1., 1., 2., 4.], [5., 6., 7., 8.], [3., 2., 1., 0.], [1., 2., 3., 4.]]]])
dout4 = np.array([[[[1., 2.], [3., 4.]]]])
_, cache = F.max_pool2d_forward(x4, 2)
print("max pooling's dx (to the maxima 6, 8, 3, 4):\\n", F.max_pool2d_backward(dout4, cache)[0, 0])
_, cache = F.avg_pool2d_forward(x4, 2)
print("mean pooling's dx (dout / 4 over each window):\\n", F.avg_pool2d_backward(dout4, cache)[0, 0])
""")

nb.exercise(5, "convolution, backward (stride and padding)", points=5, text=r"""
Complete `conv_backward_naive(dout, x, w, b, stride, padding)`: the gradients of the convolution
`conv2d_forward(x, w, b, stride, padding)` of notebook 03, given the upstream gradient `dout` of
shape `(N, F, H_out, W_out)` and the forward pass's `x` `(N, C, H, W)`, `w` `(F, C, KH, KW)`,
`b` `(F,)` and the ints `stride` and `padding`. Return `(dx, dw, db)` with the shapes of `x`, `w`
and `b`.

The padded input `x_pad`, a zero `dx_pad` of the same shape and a zero `dw` are given. Loop over
the images, the filters and the output positions `(i, j)`; the window of output `(i, j)` is
`x_pad[n, :, i*stride : i*stride + KH, j*stride : j*stride + KW]`. For each, add its share to `dw[f]`
and to the same window of `dx_pad` (**add**: windows overlap, and every filter sends gradient to
the same pixels). Compute `db`, and crop `dx_pad` back to `x`'s shape at the end (careful:
`p:-p` is empty when `p == 0`).

The tests check the worked example, overlapping windows with padding, stride 2, a stride that
leaves pixels unused, a non-square kernel, against cnnlib and against numerical gradients, and
(hidden) 18 random cases (non-square kernels, unused edge pixels, N = 1, C = 1, F ≠ C, 1 × 1
kernels) and 6 more gradient checks. cnnlib is switched off while your function is checked.
""", solution='''
def conv_backward_naive(dout, x, w, b, stride, padding):
    """Gradients of a convolution: dout (N, F, H_out, W_out) -> dx (N, C, H, W), dw (F, C, KH, KW), db (F,)."""
    N, C, H, W = x.shape
    F_, _, KH, KW = w.shape               # F_, since F is cnnlib.functional
    _, _, H_out, W_out = dout.shape
    s, p = stride, padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dx_pad = np.zeros(x_pad.shape)
    dw = np.zeros(w.shape)
    ### BEGIN SOLUTION
    for n in range(N):
        for f in range(F_):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * s, i * s + KH), slice(j * s, j * s + KW)
                    dw[f] += x_pad[n, :, rows, cols] * dout[n, f, i, j]
                    dx_pad[n, :, rows, cols] += w[f] * dout[n, f, i, j]
    db = dout.sum(axis=(0, 2, 3))
    dx = dx_pad[:, :, p:p + H, p:p + W]
    ### END SOLUTION
    return dx, dw, db
''', tests='''
reference = grading.backward_reference(F.conv2d_forward, F.conv2d_backward)
conv_back_mistakes = grading.conv_backward_mistakes()
rng = np.random.default_rng(55)
visible_cases = [
    {"x": np.array([[[[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]]]), "w": np.array([[[[1., 0.], [0., -1.]]]]),
     "b": np.zeros(1), "stride": 1, "padding": 0},                                             # the worked example
    {"x": rng.standard_normal((2, 2, 5, 5)), "w": rng.standard_normal((3, 2, 3, 3)),
     "b": rng.standard_normal(3), "stride": 1, "padding": 1},                                  # overlapping, padded
    {"x": rng.standard_normal((1, 3, 7, 6)), "w": rng.standard_normal((2, 3, 3, 3)),
     "b": rng.standard_normal(2), "stride": 2, "padding": 1},                                  # stride 2
    {"x": rng.standard_normal((2, 1, 7, 8)), "w": rng.standard_normal((2, 1, 2, 2)),
     "b": rng.standard_normal(2), "stride": 3, "padding": 0},                                  # unused pixels
    {"x": rng.standard_normal((1, 2, 5, 6)), "w": rng.standard_normal((1, 2, 2, 3)),
     "b": rng.standard_normal(1), "stride": 1, "padding": 0},                                  # non-square kernel
]
visible_backward = grading.with_dout(visible_cases, F.conv2d_forward, 55)
visible_backward[0]["dout"] = np.array([[[[1., 2.], [3., 4.]]]])
grading.check_function(conv_backward_naive, reference, visible_backward, outputs=("dx", "dw", "db"),
                       mistakes=conv_back_mistakes)
grading.check_gradients(conv_backward_naive, F.conv2d_forward, visible_cases[1:4], wrt=["x", "w", "b"])
### BEGIN HIDDEN TESTS
hidden_cases = grading.with_dout(grading.conv_backward_cases(18, seed=50501), F.conv2d_forward, seed=50501)
grading.check_function(conv_backward_naive, reference, hidden_cases, outputs=("dx", "dw", "db"),
                       mistakes=conv_back_mistakes)
grading.check_gradients(conv_backward_naive, F.conv2d_forward, grading.conv_backward_cases(6, seed=50502),
                        wrt=["x", "w", "b"], seed=50502)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 6. Numerical gradient checking

A backward pass can be wrong in a hundred quiet ways (a missing `+=`, a transpose, a stride) and
still return arrays of the right shape: training then just goes badly, and nothing tells you why.
The cure is to compare it with the definition of the derivative. Nudge one input entry by a small
`h` in both directions and measure the slope, the **centred difference**:

$$\frac{\partial f}{\partial x_i} \approx \frac{f(x + h\,e_i) - f(x - h\,e_i)}{2h}$$

Its error shrinks like $h^2$; the **one-sided** difference $(f(x + h e_i) - f(x)) / h$ is off by
about $\tfrac{h}{2} f''$, so it only shrinks like $h$. But `h` cannot be too small either: `f` is
computed with about 16 significant digits in float64 (7 in float32), and dividing round-off by a
tiny `2h` amplifies it. The sweet spot for the centred difference in float64 is around
`h = 1e-5`, where it is accurate to about 1e-10; in float32 it can hardly get below 1e-5, too
coarse to tell a small bug from round-off. **Always check gradients in float64.**
""")

nb.code("""
hs = np.logspace(-13, -1, 61)
x0 = 1.0
exact = np.cos(x0)                                   # d sin(x) / dx at x = 1
fig, ax = plt.subplots(figsize=(8, 4.5))
for dtype, style in [(np.float64, "-"), (np.float32, "--")]:
    xd = dtype(x0)
    centred = [abs((np.sin(xd + dtype(h)) - np.sin(xd - dtype(h))) / (2 * dtype(h)) - exact) for h in hs]
    one_sided = [abs((np.sin(xd + dtype(h)) - np.sin(xd)) / dtype(h) - exact) for h in hs]
    name = np.dtype(dtype).name
    ax.loglog(hs, np.maximum(centred, 1e-17), style, color="#1f77b4", label=f"centred, {name}")
    ax.loglog(hs, np.maximum(one_sided, 1e-17), style, color="#ff7f0e", label=f"one-sided, {name}")
ax.axvline(1e-5, color="grey", lw=0.8)
ax.set_title("Error of a numerical derivative of sin at x = 1: truncation (right) vs round-off (left)")
ax.set_xlabel("step h")
ax.set_ylabel("|numerical - exact|")
ax.legend()
plt.show()
""")

nb.md(r"""
**Comparing two gradients.** A single number says how well an analytic gradient `a` agrees with the
numerical one `n`: the **relative error**, the largest difference over the largest magnitude,

$$\text{rel\_error}(a, n) = \frac{\max_i |a_i - n_i|}{\max\left(\max_i |a_i|,\ \max_i |n_i|\right)}$$

(0 when both are all zeros). Dividing by the arrays' scale makes it independent of the units, and
using the whole arrays' scale (not each entry's) keeps an entry that should be 0 but carries
round-off noise from looking like a huge error. What the sizes mean, in float64 with `h = 1e-5`:

| relative error | verdict |
|---|---|
| below 1e-7 | correct |
| 1e-7 to 1e-4 | suspicious: a kink nearby (ReLU, max), float32, or a small bug |
| above 1e-4 (e.g. 1e-2, 0.5) | wrong: a factor, a transpose, a missing term |

cnnlib has both: `gradcheck.numerical_gradient(f, x, df=dout)` (for an array-valued forward pass it
computes the gradient of `sum(f(x) * dout)`, exactly what a backward pass receives `dout` for) and
`gradcheck.rel_error`, and `gradcheck.check_backward` combines them for a forward/backward pair. A
right backward and a deliberately wrong one (dw twice too large):
""")

nb.code("""
rng = np.random.default_rng(6)
inputs = {"x": rng.standard_normal((2, 3, 6, 5)), "w": rng.standard_normal((4, 3, 3, 3)), "b": rng.standard_normal(4)}
print("conv2d_backward:      ", gradcheck.check_backward(F.conv2d_forward, F.conv2d_backward, inputs, {"stride": 2, "padding": 1}))

def wrong_backward(dout, cache):
    dx, dw, db = F.conv2d_backward(dout, cache)
    return dx, 2 * dw, db

print("dw twice too large:   ", gradcheck.check_backward(F.conv2d_forward, wrong_backward, inputs, {"stride": 2, "padding": 1}))
""")

nb.md(r"""
**Kinks.** ReLU and max have no derivative at their corners. If an input is closer to a kink than
`h`, the two nudged evaluations land on different sides and the numerical gradient is nonsense
there (0.55 instead of 1 below). That is why gradient checks use random inputs away from ties and
zeros, and why a handful of suspicious entries near a kink is no reason to distrust a backward pass.
""")

nb.code("""
x_kink = np.array([1e-6, 0.5, -0.3])                  # the first entry is closer to 0 than h = 1e-5
numeric = gradcheck.numerical_gradient(lambda v: F.relu_forward(v)[0], x_kink.copy(), df=np.ones(3))
print("numerical gradient of relu:", numeric, "  analytic:", F.relu_backward(np.ones(3), F.relu_forward(x_kink)[1]))
""")

nb.exercise(6, "a numerical gradient", points=3, text=r"""
Write `numerical_gradient(f, x, h=1e-5)`: the centred-difference gradient of a scalar function `f`
at `x`, an array of any shape (float64). Return `grad`, of `x`'s shape, where `grad[idx]` is
`(f(x + h e_idx) - f(x - h e_idx)) / (2h)` for every index `idx` (`np.ndindex(x.shape)` runs over
all of them). Call `f` with the nudged array.

`x` must be **exactly** unchanged when your function returns. If you nudge `x` in place, save
`old = x[idx]` and put it back with `x[idx] = old` (adding and subtracting `h` does not always give
the same float back); or nudge a copy. cnnlib is switched off while your function is checked.

The tests check a cube function on a vector (gradient 3x²), functions of matrices and of 3-D
arrays, with `h` 1e-5 and 1e-4, that `x` is unchanged, and (hidden) 20 random functions and shapes.
""", solution='''
def numerical_gradient(f, x, h=1e-5):
    """Centred-difference gradient of the scalar function f at x (any shape); x is left unchanged."""
    grad = np.zeros(x.shape)
    ### BEGIN SOLUTION
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = f(x)
        x[idx] = old - h
        f_minus = f(x)
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * h)
    ### END SOLUTION
    return grad
''', tests='''
def sum_of_cubes(v):
    return np.sum(v ** 3)

rng = np.random.default_rng(56)
B, T = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))

def matrix_loss(v):                                   # a linear layer's squared error, plus a cubic term
    return 0.5 * np.sum((v @ B - T) ** 2) + np.sum(v ** 3) / 3

def log_sum_exp(v):
    return np.log(np.sum(np.exp(v - v.max()))) + v.max()

ng_mistakes = grading.numerical_gradient_mistakes()
grading.check_function(numerical_gradient, grading.numerical_gradient_reference, [
    {"f": sum_of_cubes, "x": np.array([1., -2., 0.5]), "h": 1e-5},                # 3 x**2 = [3, 12, 0.75]
    {"f": matrix_loss, "x": rng.standard_normal((3, 4)), "h": 1e-5},
    {"f": log_sum_exp, "x": rng.standard_normal((2, 3, 2)), "h": 1e-4},
    {"f": sum_of_cubes, "x": rng.standard_normal((1, 2, 3, 2)), "h": 1e-4},
], mistakes=ng_mistakes)
### BEGIN HIDDEN TESTS
grading.check_function(numerical_gradient, grading.numerical_gradient_reference,
                       grading.numerical_gradient_cases(20, seed=50601), mistakes=ng_mistakes)
### END HIDDEN TESTS
''')

nb.exercise(7, "a gradient check", points=2, text=r"""
Write `gradient_check(f, x, analytic, h=1e-5)`: compare an analytic gradient `analytic` (same
shape as `x`) of the scalar function `f` at `x` with the numerical one, and return the relative
error of section 6 as a number:
`max|analytic - numeric| / max(max|analytic|, max|numeric|)`, and `0.0` when both are all zeros.

Get `numeric` from your `numerical_gradient(f, x, h)` of Exercise 5.6 (while `gradient_check` is
checked, the test gives it a correct `numerical_gradient`, so a mistake there costs points only
once). Leave `x` and `analytic` unchanged. The tests feed right and wrong analytic gradients of a
matrix function (right: about 1e-10; transposed; twice too large: 0.5; forgotten, all zeros: 1.0),
a constant function (0.0), and (hidden) 21 random functions with right, noisy, transposed, doubled,
negated and missing gradients.

Allowed: numpy; cnnlib is switched off while your function is checked.
""", solution='''
def gradient_check(f, x, analytic, h=1e-5):
    """Relative error between an analytic gradient and the numerical gradient of f at x."""
    ### BEGIN SOLUTION
    numeric = numerical_gradient(f, x, h)
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)))
    if scale == 0:
        return 0.0
    return np.max(np.abs(analytic - numeric)) / scale
    ### END SOLUTION
''', tests='''
rng = np.random.default_rng(57)
A = rng.standard_normal((3, 3))

def matrix_function(W):
    return 0.5 * np.sum((W @ A) ** 2) + np.sum(W ** 3) / 3

def matrix_gradient(W):
    return (W @ A) @ A.T + W ** 2

def constant(W):
    return 4.0

W0 = rng.standard_normal((3, 3)) + np.triu(np.ones((3, 3)))          # its gradient is far from symmetric
gc_mistakes = grading.gradient_check_mistakes()
stand_in = grading.reference_stand_in(grading.numerical_gradient_reference)
with grading.substitute(globals(), numerical_gradient=stand_in):
    grading.check_function(gradient_check, grading.gradient_check_reference, [
        {"f": matrix_function, "x": W0, "analytic": matrix_gradient(W0), "h": 1e-5},         # right: ~1e-10
        {"f": matrix_function, "x": W0, "analytic": matrix_gradient(W0).T, "h": 1e-5},       # transposed
        {"f": matrix_function, "x": W0, "analytic": 2 * matrix_gradient(W0), "h": 1e-5},     # twice too large: 0.5
        {"f": matrix_function, "x": W0, "analytic": np.zeros((3, 3)), "h": 1e-5},            # forgotten: 1.0
        {"f": constant, "x": W0, "analytic": np.zeros((3, 3)), "h": 1e-5},                   # both zero: 0.0
    ], mistakes=gc_mistakes)
    ### BEGIN HIDDEN TESTS
    grading.check_function(gradient_check, grading.gradient_check_reference,
                           grading.gradient_check_cases(21, seed=50701), mistakes=gc_mistakes)
    ### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 7. End to end: a tiny CNN on one MNIST digit

Now all the pieces at once. A tiny CNN for 28 × 28 digits:

conv 3 × 3 (4 filters, stride 2, padding 1) → ReLU → 2 × 2 max pooling → flatten → linear (196 → 10)
→ softmax cross-entropy

The shapes: `(1, 1, 28, 28)` → conv `(1, 4, 14, 14)` → pool `(1, 4, 7, 7)` → flatten `(1, 196)` →
logits `(1, 10)`. The forward pass keeps every layer's cache; the backward pass starts from
`dlogits` and calls each layer's backward in reverse order, each one's `dx` becoming the previous
layer's `dout`. One digit from MNIST (the sample shipped with cnnlib when the full set is not
downloaded):
""")

nb.code("""
(X_train, y_train), _ = datasets.load_mnist()
x_digit = X_train[:1].astype(np.float64)             # (1, 1, 28, 28): float64 for the gradient check
y_digit = y_train[:1]
print("one digit:", x_digit.shape, "label", int(y_digit[0]))

rng = np.random.default_rng(0)                        # step 1: random initial weights
params = {"w1": 0.5 * rng.standard_normal((4, 1, 3, 3)), "b1": np.full(4, 0.1),
          "w2": 0.02 * rng.standard_normal((196, 10)), "b2": np.zeros(10)}

def tiny_cnn_forward(params, x, y):
    \"\"\"Step 2 and 3: the forward pass and the loss; returns (loss, dlogits, caches, probabilities).\"\"\"
    a1, c1 = F.conv2d_forward(x, params["w1"], params["b1"], stride=2, padding=1)   # (1, 4, 14, 14)
    a2, c2 = F.relu_forward(a1)
    a3, c3 = F.max_pool2d_forward(a2, 2)                                            # (1, 4, 7, 7)
    a4, c4 = F.flatten_forward(a3)                                                  # (1, 196)
    logits, c5 = F.linear_forward(a4, params["w2"], params["b2"])                   # (1, 10)
    loss, dlogits = losses.softmax_cross_entropy(logits, y)
    return loss, dlogits, (c1, c2, c3, c4, c5), losses.softmax(logits)

def tiny_cnn_backward(dlogits, caches):
    \"\"\"Step 4: backpropagation, the layers in reverse order.\"\"\"
    c1, c2, c3, c4, c5 = caches
    da4, dw2, db2 = F.linear_backward(dlogits, c5)
    da3 = F.flatten_backward(da4, c4)
    da2 = F.max_pool2d_backward(da3, c3)
    da1 = F.relu_backward(da2, c2)
    _, dw1, db1 = F.conv2d_backward(da1, c1)
    return {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}

loss, dlogits, caches, probs = tiny_cnn_forward(params, x_digit, y_digit)
grads = tiny_cnn_backward(dlogits, caches)
print(f"loss {loss:.4f}: near ln 10 = {np.log(10):.4f}, as it should be for an untrained classifier")
for name in params:
    print(f"  d{name}: shape {grads[name].shape}")
""")

nb.md(r"""
**Checked numerically.** For each parameter array, `numerical_gradient` nudges its entries one at a
time (in place, restoring each) and re-runs the whole forward pass: 2 × 2,010 forward passes.
""")

nb.code("""
for name in params:
    numeric = gradcheck.numerical_gradient(lambda _: tiny_cnn_forward(params, x_digit, y_digit)[0], params[name])
    print(f"{name}: relative error {gradcheck.rel_error(grads[name], numeric):.1e}")
""")

nb.md(r"""
**Checked against cnnlib's layers.** The same network as a `Sequential` model, with the same
weights: its `backward` chains the same functions and adds each gradient into the parameter's
`.grad`.
""")

nb.code("""
net = Sequential([Conv2d(1, 4, 3, stride=2, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(196, 10)]).to(np.float64)
for param, name in [(net[0].weight, "w1"), (net[0].bias, "b1"), (net[4].weight, "w2"), (net[4].bias, "b2")]:
    param.data[...] = params[name]
logits = net.forward(x_digit)
net_loss, net_dlogits = losses.softmax_cross_entropy(logits, y_digit)
net.backward(net_dlogits)
print(f"loss: ours {loss:.6f}, Sequential {net_loss:.6f}")
for param, name in [(net[0].weight, "w1"), (net[0].bias, "b1"), (net[4].weight, "w2"), (net[4].bias, "b2")]:
    print(f"{name}: relative error vs Sequential {gradcheck.rel_error(grads[name], param.grad):.1e}")
""")

nb.md(r"""
**Training on this one digit** (step 4's gradient descent, repeated as in step 5, on a training
set of one): each step moves every weight a little against its gradient, `w -= lr * dw`. As in the
article's boat example, the probability of the true class climbs and the error falls.
""")

nb.code("""
lr = 0.01
history = {"loss": [], "p_true": []}
train_params = {k: v.copy() for k, v in params.items()}
for step in range(30):
    loss, dlogits, caches, probs = tiny_cnn_forward(train_params, x_digit, y_digit)
    history["loss"].append(loss)
    history["p_true"].append(probs[0, y_digit[0]])
    grads = tiny_cnn_backward(dlogits, caches)
    for name in train_params:
        train_params[name] -= lr * grads[name]
print(f"before: loss {history['loss'][0]:.3f}, p(true digit) {history['p_true'][0]:.3f};"
      f"  after 30 steps: loss {history['loss'][-1]:.3f}, p(true digit) {history['p_true'][-1]:.3f}")

fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(history["loss"], "o-", label="cross-entropy loss")
ax.plot(history["p_true"], "s-", label="probability of the true digit")
ax.set_title("Gradient descent on one MNIST digit: the loss falls, the true class's probability rises")
ax.set_xlabel("gradient descent step")
ax.set_ylabel("loss / probability")
ax.legend()
plt.show()
""")

nb.md(r"""
One digit is not learning to read digits: the network has memorised this image. Notebook 07 trains
on thousands of images in batches, with cnnlib's optimizers, and measures accuracy on images the
network has never seen, where the article's step 5 and its hope of generalising come true.
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## Summary

- Backpropagation is the chain rule, node by node: **gradient = upstream gradient × local
  gradient**, and where a value is used more than once its gradients **add**.
- The article's total error ½·Σ(target − output)²: 0.55 for the boat before training, gradient
  output − target = [0.2, 0.4, −0.9, 0.3], 0.06 after. For a batch, the mean, and a 1/N in the
  gradient.
- Softmax cross-entropy: gradient (softmax − one-hot) / N, rows summing to 0, ln K for zero
  logits; subtract the row maximum and use the log-softmax, so ±1000 and a 2000 gap are fine.
- ReLU passes `dout` where `x > 0`; a linear layer gives `dx = dout @ w.T`, `dw = x.T @ dout`,
  `db = dout.sum(axis=0)`.
- A convolution: `db` sums dout over the batch and the positions, `dw` correlates x with dout,
  `dx` sends `dout · w` back onto every window (a full convolution with the flipped kernel), with
  `+=`, the stride in every slice, the padding cropped, and zero for pixels no window reaches.
- Check every backward pass numerically: centred differences, float64, h ≈ 1e-5, relative error
  below 1e-7, and inputs away from kinks.

**Time.** On a two-core machine shared with other work (load average 4 to 10), this notebook ran
top to bottom in 10 to 17 s, and autograding one learner's copy took about 19 s at load 10.

**Next:** notebook 06 adds batch normalisation, whose backward pass is the hardest of the course,
and checks it the same way.
""")

nb.references("intuitive_explanation", "conv_pool_backprop")

if __name__ == "__main__":
    nb.main()

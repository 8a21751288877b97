"""Source of solutions/02_padding_and_stride/02_padding_and_stride.ipynb (run me after editing)."""

from nbbuild import RULES, Notebook

nb = Notebook("02_padding_and_stride")

nb.md(rf"""
# 02 · Padding and stride

In notebook 01 the kernel moved one pixel at a time and never left the image, so every output
was a little smaller than its input. A real CNN controls the size of every feature map with two
more knobs:

- the **stride** `S`: how many pixels the window jumps at each step;
- the **padding** `P`: how many rings of zeros are added around the input first.

**You will learn**
- the output-size formula `H2 = (H1 - F + 2P) / S + 1`, rounded down, and the article's
  200 × 200 example;
- why we pad: without padding, border pixels are seen by fewer windows;
- why kernels have odd sizes, and what `'valid'` and `'same'` mean;
- how to zero-pad a batch of images (NCHW) and convolve with any stride and padding.

**Exercises** (12 points)

| exercise | points |
|---|---|
| 2.1 the output size | 2 |
| 2.2 how often is each pixel seen? | 3 |
| 2.3 zero padding | 3 |
| 2.4 convolution with stride and padding | 4 |

**How to work.** Each exercise has a solution cell, which in your copy holds
`raise NotImplementedError()`: replace that line with your code. Then run the test cell below it:
a line starting with ✔ means the visible tests pass. When your work is graded, more tests with
random cases run too. Exercises are independent: skipping one costs only its own points. Check
the whole notebook with the **Validate** button (or `nbgrader validate 02_padding_and_stride.ipynb`).

{RULES}
""")

nb.setup("""
import numpy as np
import matplotlib.pyplot as plt
from scipy import signal

from cnnlib import grading, shapes, viz
from cnnlib import functional as F

np.set_printoptions(precision=3, suppress=True)
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 1. How big is the output?

A CNN stacks many layers, and each one changes the height and width of its input. To build a
network, and to know how many numbers reach the classifier at the end, you must know every size.

Here is a 7 × 7 input (white), padded with one ring of zeros (gray), and a 3 × 3 window that
jumps 2 pixels at a time. The window drawn produces output cell (1, 2):
""")

nb.code("""
viz.show_sliding_window(7, 3, stride=2, padding=1, position=(1, 2))
""")

nb.md(r"""
The article gives the formula for the output size (**F** the kernel size, **S** the stride,
**P** the padding):

$$H_2 = \frac{H_1 - F_H + 2P}{S} + 1 \qquad W_2 = \frac{W_1 - F_W + 2P}{S} + 1$$

Why: after padding, the input has `H1 + 2P` rows. The window's top row can start at rows
`0, 1, …, H1 + 2P - F`, that is `H1 + 2P - F + 1` places, and with stride `S` only every `S`-th of
them is used: positions `0, S, 2S, …` up to `H1 + 2P - F`. That makes `(H1 + 2P - F) / S + 1`
windows, **rounded down**: a window that would stick out past the last row is dropped.

**Worked example** (the article's). A 200 × 200 image goes through

1. a 5 × 5 convolution with padding 1 and stride 2 (two filters): (200 − 5 + 2·1) / 2 + 1 = 99.5,
   and rounded down **99**;
2. a 3 × 3 pooling window with padding 0 and stride 1: (99 − 3 + 2·0) / 1 + 1 = **97**;
3. a 3 × 3 convolution with padding 1 and stride 1: (97 − 3 + 2·1) / 1 + 1 = **97**.

The result is 97 × 97 × 2 (the depth 2 is the number of filters). Pooling (notebook 04) follows
the same formula. cnnlib has the formula and the layers, so we can check the arithmetic on real
arrays (in NCHW layout: batch, channels, height, width):
""")

nb.code("""
h1 = shapes.conv_output_size(200, 5, stride=2, padding=1)
h2 = shapes.conv_output_size(h1, 3, stride=1, padding=0)
h3 = shapes.conv_output_size(h2, 3, stride=1, padding=1)
print("sizes from the formula:", 200, "->", h1, "->", h2, "->", h3)

rng = np.random.default_rng(0)
x = rng.random((1, 1, 200, 200))                                       # one 200 x 200 grayscale image
a = F.conv2d(x, rng.standard_normal((2, 1, 5, 5)), stride=2, padding=1)
b, _ = F.max_pool2d_forward(a, kernel_size=3, stride=1)
c = F.conv2d(b, rng.standard_normal((2, 2, 3, 3)), stride=1, padding=1)
print("shapes of real arrays: ", x.shape, "->", a.shape, "->", b.shape, "->", c.shape)
""")

nb.exercise(1, "the output size", points=2, text=r"""
Write `conv_output_size(n, kernel_size, stride=1, padding=0)`: the number of window positions
along one axis of length `n`, for a kernel of size `kernel_size` moved with `stride` over the
input padded with `padding` zeros on each side. Return an `int`.

The tests check the article's three steps, a few small cases and (hidden) 30 random cases, most of
them with a division that does not come out even.
Allowed: plain Python arithmetic (no library needed).
""", solution='''
def conv_output_size(n, kernel_size, stride=1, padding=0):
    """floor((n + 2*padding - kernel_size) / stride) + 1, as an int."""
    ### BEGIN SOLUTION
    return (n + 2 * padding - kernel_size) // stride + 1
    ### END SOLUTION
''', tests='''
grading.check_function(conv_output_size, shapes.conv_output_size, [
    {"n": 200, "kernel_size": 5, "stride": 2, "padding": 1},    # the article: 99
    {"n": 99, "kernel_size": 3, "stride": 1, "padding": 0},     # 97
    {"n": 97, "kernel_size": 3, "stride": 1, "padding": 1},     # 97
    {"n": 28, "kernel_size": 5, "stride": 1, "padding": 0},     # 24
    {"n": 7, "kernel_size": 3, "stride": 2, "padding": 1},      # 4
], mistakes=grading.output_size_mistakes())
### BEGIN HIDDEN TESTS
grading.check_function(conv_output_size, shapes.conv_output_size, grading.size_cases(30, seed=20101),
                       mistakes=grading.output_size_mistakes())
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 2. Why padding? The border is seen less

When the window slides with stride 1, neighbouring windows overlap, and a pixel in the middle of
the image lies under many windows: it contributes to many outputs. A pixel near the border lies
under few, and a corner pixel under exactly one. The article's point: border pixels are not
less important, yet without padding the network hears them less. Padding moves the old border
away from the edge, so it is covered as often as the rest.

The picture marks every window's top-left corner with a dot and writes in each input pixel how
many windows cover it, for a 5 × 5 input and a 3 × 3 kernel:
""")

nb.code("""
viz.show_sliding_window(5, 3, stride=1, padding=0, position=None)
""")

nb.md(r"""
The centre pixel is seen by all 9 windows, an edge pixel by 3 and a corner by 1: the coverage
counts are

```
1 2 3 2 1
2 4 6 4 2
3 6 9 6 3
2 4 6 4 2
1 2 3 2 1
```

With one ring of zero padding there are 25 windows instead of 9, and the corner is covered 4
times, the rest of the border 6 times and the inside 9 times.
""")

nb.exercise(2, "how often is each pixel seen?", points=3, text=r"""
Write `coverage_counts(height, width, kernel_size, stride=1, padding=0)`: an integer array
(`dtype=int`: these are counts) of shape `(height, width)` whose entry `[r, c]` is the number of windows that cover input pixel
`(r, c)`, when a `kernel_size × kernel_size` window slides with `stride` over the input padded
with `padding` zeros on each side (count every window of the output; the zeros themselves are not
returned).

Tip: loop over the output positions and add 1 to the block of pixels under each window, in
padded coordinates; cut the padding off at the end. Allowed: numpy; cnnlib and scipy.signal
are switched off.

The tests check the 5 × 5 examples above, a strided case and (hidden) 20 random cases.
""", solution='''
def coverage_counts(height, width, kernel_size, stride=1, padding=0):
    """How many windows cover each input pixel -> int array (height, width)."""
    ### BEGIN SOLUTION
    counts = np.zeros((height + 2 * padding, width + 2 * padding), dtype=int)
    out_h = (height + 2 * padding - kernel_size) // stride + 1
    out_w = (width + 2 * padding - kernel_size) // stride + 1
    for i in range(out_h):
        for j in range(out_w):
            counts[i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size] += 1
    return counts[padding:padding + height, padding:padding + width]
    ### END SOLUTION
''', tests='''
def reference(height, width, kernel_size, stride=1, padding=0):
    # The gradient of sum(conv(x, ones)) with respect to x counts, for every pixel, the windows
    # that cover it (notebook 05 explains why); cnnlib's conv2d_backward computes it.
    x = np.zeros((1, 1, height, width))
    out, cache = F.conv2d_forward(x, np.ones((1, 1, kernel_size, kernel_size)), np.zeros(1), stride, padding)
    dx, _, _ = F.conv2d_backward(np.ones_like(out), cache)
    return np.rint(dx[0, 0]).astype(int)

def on_padded_grid(c):
    p = c["padding"]
    return reference(c["height"] + 2 * p, c["width"] + 2 * p, c["kernel_size"], c["stride"], 0)

coverage_mistakes = [
    grading.Mistake("with padding, windows also start in the ring of zeros, so border pixels are covered "
                    "more often: slide over the PADDED input (height + 2*padding rows).",
                    grading.with_args(reference, padding=0)),
    grading.Mistake("the window moves by `stride` pixels: window (i, j) starts at row i*stride, column j*stride.",
                    grading.with_args(reference, stride=1)),
    grading.Mistake("return the counts of the height x width input pixels only: cut the ring of padding off.",
                    on_padded_grid),
]
grading.check_function(coverage_counts, reference, [
    {"height": 5, "width": 5, "kernel_size": 3, "stride": 1, "padding": 0},
    {"height": 5, "width": 5, "kernel_size": 3, "stride": 1, "padding": 1},
    {"height": 6, "width": 4, "kernel_size": 2, "stride": 2, "padding": 0},
    {"height": 7, "width": 5, "kernel_size": 3, "stride": 2, "padding": 1},
], mistakes=coverage_mistakes)
### BEGIN HIDDEN TESTS
def coverage_case(rng):
    p, s = int(rng.integers(0, 3)), int(rng.integers(1, 4))
    k = int(rng.integers(1, 5))
    h, w = (int(v) for v in rng.integers(max(1, k - 2 * p), 11, size=2))
    return {"height": h, "width": w, "kernel_size": k, "stride": s, "padding": p}

grading.check_function(coverage_counts, reference, grading.random_cases(coverage_case, 20, seed=20201),
                       mistakes=coverage_mistakes)
### END HIDDEN TESTS
''')

nb.code("""
viz.show_sliding_window(8, 3, stride=1, padding=1, position=None,
                        title="8 x 8 input, 3 x 3 kernel, padding 1: the border is covered almost as often as the inside")
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 3. Zero padding a batch of images

Padding adds `P` rings of zeros around each image. Zeros add nothing to a window's sum, so they
do not invent content; they only give the window somewhere to stand.

From now on images come in batches in **NCHW** layout: `x` has shape `(N, C, H, W)`, a batch of
`N` images with `C` channels each. Only the two spatial axes are padded: the batch still holds
`N` images and each still has `C` channels. Padding may differ between height and width:
`padding=(1, 2)` adds 1 row at the top and at the bottom, and 2 columns on the left and on the
right.

**Worked example.** One 2 × 3 image padded with 1:
""")

nb.code("""
x = np.array([[[[1., 2., 3.],
                [4., 5., 6.]]]])                 # (N, C, H, W) = (1, 1, 2, 3)
padded = F.pad2d(x, 1)
print(x.shape, "->", padded.shape)
print(padded[0, 0])
print("padding=(1, 2):", F.pad2d(x, (1, 2)).shape)
""")

nb.exercise(3, "zero padding", points=3, text=r"""
Write `pad2d(x, padding)`: zero-pad the batch `x` of shape `(N, C, H, W)` on both sides of the
height and width axes. `padding` is an int `P` (the same on both axes) or a pair `(PH, PW)`.
Return a new array of shape `(N, C, H + 2*PH, W + 2*PW)` with the same dtype as `x`, and leave `x`
unchanged. Allowed: numpy (`np.pad`, or slicing into `np.zeros`); cnnlib is switched off while
your function is checked.

The tests check the example above, a pair of paddings, padding 0, several images and channels,
and (hidden) 20 random cases.
""", solution='''
def pad2d(x, padding):
    """Zero-pad x (N, C, H, W) by padding (int or (ph, pw)) on both sides of H and W."""
    ### BEGIN SOLUTION
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ### END SOLUTION
''', tests='''
rng = np.random.default_rng(3)
example = np.array([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]])       # the worked example, (1, 1, 2, 3)
grading.check_function(pad2d, F.pad2d, [
    {"x": example, "padding": 1},
    {"x": example, "padding": (1, 2)},
    {"x": rng.standard_normal((2, 3, 4, 5)), "padding": 0},
    {"x": rng.standard_normal((2, 3, 4, 5)), "padding": 2},
    {"x": rng.standard_normal((1, 2, 3, 3)).astype(np.float32), "padding": (0, 3)},
], mistakes=grading.pad_mistakes(), exact_dtype=True)
### BEGIN HIDDEN TESTS
grading.check_function(pad2d, F.pad2d, grading.pad_cases(20, seed=20301), mistakes=grading.pad_mistakes(),
                       exact_dtype=True)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 4. Stride, and everything together

With stride `S` the window jumps `S` pixels. Output cell `(i, j)` is computed from the window
whose top-left corner is at row `i*S`, column `j*S` of the **padded** input:

$$\text{out}[i, j] = \sum_{a,b} I_{\text{pad}}[i S + a,\ j S + b]\; K[a, b]$$

A larger stride gives a smaller output (about `1/S` of the size on each axis) for less work,
at the price of skipping positions; the article notes that a small stride extracts richer features
and that image models mostly use stride 1.

**Worked example.** A 5 × 5 image, a 3 × 3 kernel, stride 2, no padding: the output is
(5 − 3) / 2 + 1 = 2 by 2, and cell (1, 0) uses rows 2–4 and columns 0–2:
""")

nb.code("""
image = np.arange(25.0).reshape(5, 5)
kernel = np.array([[1., 0., -1.],
                   [2., 0., -2.],
                   [1., 0., -1.]])
print("window of cell (1, 0):\\n", image[2:5, 0:3])
print("out[1, 0] =", np.sum(image[2:5, 0:3] * kernel))
print("all outputs (cnnlib):\\n", F.conv2d(image[None, None], kernel[None, None], stride=2)[0, 0])
""")

nb.md(r"""
This image grows by 1 per column, so each window's right column is 2 more than its left column
and the Sobel-like kernel gives (1 + 2 + 1)·(−2) = −8 everywhere.
""")

nb.exercise(4, "convolution with stride and padding", points=4, text=r"""
Write `conv2d_single(image, kernel, stride=1, padding=0)`: the cross-correlation of a 2-D `image`
`(H, W)` with a 2-D `kernel` `(KH, KW)`, after zero-padding the image with `padding` on every side
and moving the window by `stride` (both ints). Return a float array of shape `(H_out, W_out)`
given by the formula of section 1.

Pad inside your function (with `np.pad`; the `pad2d` above works on NCHW batches), then loop over
the output positions. Allowed: numpy; cnnlib and scipy.signal's `correlate2d` / `convolve2d`
are switched off. The tests compare with cnnlib's `conv2d` on odd and non-square sizes,
strides 1 to 3 and paddings 0 to 2, and (hidden) 20 random cases.
""", solution='''
def conv2d_single(image, kernel, stride=1, padding=0):
    """Cross-correlate image (H, W) with kernel (KH, KW) using stride and zero padding."""
    ### BEGIN SOLUTION
    padded = np.pad(image, padding)
    kh, kw = kernel.shape
    out_h = (padded.shape[0] - kh) // stride + 1
    out_w = (padded.shape[1] - kw) // stride + 1
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[i, j] = np.sum(window * kernel)
    return out
    ### END SOLUTION
''', tests='''
reference = grading.conv2d_hw        # cnnlib's conv2d on one 2-D image and one 2-D kernel
conv_mistakes = grading.conv_mistakes(reference, x="image", w="kernel", b=None)
rng = np.random.default_rng(4)
grading.check_function(conv2d_single, reference, [
    {"image": np.arange(25.0).reshape(5, 5), "kernel": np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]),
     "stride": 2, "padding": 0},                                                 # the worked example
    {"image": rng.standard_normal((7, 5)), "kernel": rng.standard_normal((3, 3)), "stride": 2, "padding": 1},
    {"image": rng.standard_normal((6, 6)), "kernel": rng.standard_normal((2, 2)), "stride": 2, "padding": 0},
    {"image": rng.standard_normal((5, 7)), "kernel": rng.standard_normal((1, 3)), "stride": 1, "padding": 2},
    {"image": rng.standard_normal((8, 9)), "kernel": rng.standard_normal((3, 2)), "stride": 3, "padding": 1},
], mistakes=conv_mistakes)
### BEGIN HIDDEN TESTS
grading.check_function(conv2d_single, reference, grading.conv_cases(20, seed=20401, layout="hw"),
                       mistakes=conv_mistakes)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 5. Why odd kernel sizes? 'valid' and 'same'

Two names for the two usual choices of padding:

- **'valid'**: no padding (`P = 0`); only windows that fit inside the image; the output shrinks
  by `F - 1`.
- **'same'**: just enough padding that, with stride 1, the output has the input's size. From the
  formula, `H - F + 2P + 1 = H` needs `P = (F - 1) / 2`.

The article gives two reasons why kernels have odd sizes (3, 5, 7): an odd kernel has a
centre pixel, so each output sits on the input pixel under the window's centre; and only for odd
`F` is `(F - 1) / 2` a whole number, so 'same' padding puts as many zeros on each side. An even
kernel (`F = 4` needs `P = 1.5`) must pad one side more than the other.
""")

nb.code("""
img = np.random.default_rng(5).standard_normal((6, 6))
for f in [1, 3, 5, 7]:
    k = np.ones((f, f))
    p = (f - 1) // 2
    out = F.conv2d(img[None, None], k[None, None], padding=p)[0, 0]
    same = signal.correlate2d(img, k, mode="same")          # scipy's 'same' pads with zeros too
    print(f"F={f}: P=(F-1)/2={p}, output {out.shape}, equals scipy 'same': {np.allclose(out, same)},"
          f" 'valid' would give {signal.correlate2d(img, k, mode='valid').shape}")
print("F=4: P=(F-1)/2 = 1.5 is not a whole number; scipy's 'same' pads 1 zero on one side and 2 on the other")
""")

nb.md(r"""
## 6. Try it yourself

Drag the sliders: input size, kernel size, stride, padding, and the position of the window. The
title shows the formula with your numbers. (The sliders need a running notebook. For a static copy,
such as a notebook run without a browser, the cell also draws a plain picture of the starting
settings.) Try to find settings where the last window does not fit and
is dropped, and settings that keep the size ('same').
""")

nb.code("""
import io
from IPython.display import Image, display

# a static picture of the starting settings, kept in the saved notebook (widgets are not)
picture = viz.show_sliding_window(7, 3, stride=2, padding=1, position=(0, 0),
                                  title="7 x 7 input, 3 x 3 kernel, stride 2, padding 1 (the sliders' start)")
png = io.BytesIO()
picture.savefig(png, format="png")
plt.close(picture)
display(Image(png.getvalue()))
viz.interactive_sliding_window(input_size=7, kernel_size=3, stride=2, padding=1)
""")

nb.md(r"""
## Summary

- Output size: `H2 = (H1 - F + 2P) // S + 1`, rounded down (200 → 99 → 97 → 97 in the article's
  example).
- Without padding, border pixels are covered by fewer windows (a corner by just one); padding
  with zeros evens this out and can keep the size ('same': `P = (F - 1) / 2` for stride 1).
- Odd kernel sizes have a centre and split 'same' padding evenly.
- Padding an NCHW batch touches only H and W; a strided window starts at `i*S, j*S` of the padded
  input.

**Next:** notebook 03 turns this into a full convolution layer: many channels in, many filters
out, a bias, and a fast vectorized version.
""")

nb.references('conv_pool_backprop', 'python_cnn')

if __name__ == "__main__":
    nb.main()

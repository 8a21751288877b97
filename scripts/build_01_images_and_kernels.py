"""Source of solutions/01_images_and_kernels/01_images_and_kernels.ipynb (run me after editing)."""

from nbbuild import RULES, Notebook

nb = Notebook("01_images_and_kernels")

nb.md(rf"""
# 01 · Images and kernels

A convolutional neural network (CNN) looks at a picture through small windows. In each window it
multiplies the pixels by a small grid of weights, the **kernel** (or **filter**), and adds the
products up. Slide the window over the whole picture and you get a new picture, a **feature map**,
that lights up wherever the picture looks like the kernel.

Before a network *learns* its kernels, we look at kernels people designed by hand: edge
detectors, blurs, sharpeners, a curve detector. By the end of this notebook you will have written
the sliding-window operation yourself.

**You will learn**
- how a grayscale or colour image is stored as an array, and why `uint8` needs care;
- how a kernel slides over an image (cross-correlation), and what the classic kernels do;
- the difference between *convolution* and *cross-correlation* (a flip);
- how to filter a colour image channel by channel;
- how one kernel detects a pattern (a curve) and ignores everything else.

**Exercises** (11 points)

| exercise | points |
|---|---|
| 1.1 naive cross-correlation | 4 |
| 1.2 flipping a kernel | 2 |
| 1.3 filtering a colour image | 3 |
| 1.4 the curve detector | 2 |

**How to work.** Each exercise has a solution cell, which in your copy holds
`raise NotImplementedError()`: replace that line with your code. Then run the test cell below it:
a line starting with ✔ means the visible tests pass. When your work is graded, more tests with
random cases run too, so solve the problem in general rather than for the visible cases.
Exercises are independent: skipping one costs only its own points. Check the whole notebook with
the **Validate** button (or `nbgrader validate 01_images_and_kernels.ipynb`).

{RULES}
""")

nb.setup("""
import numpy as np
import matplotlib.pyplot as plt
from scipy import signal

from cnnlib import datasets, grading, kernels, viz
from cnnlib import functional as F

np.set_printoptions(precision=3, suppress=True)
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 1. An image is an array of numbers

A fully connected network receives a 28 × 28 digit as a flat list of 784 numbers. A CNN keeps
the picture's shape: it receives the 28 × 28 × 1 grid itself, so it knows which pixels are
neighbours.

- A **grayscale** image is a 2-D array of shape `(H, W)`: one brightness per pixel.
- A **colour** (RGB) image is a 3-D array of shape `(H, W, 3)`: three such grids stacked, the
  amounts of red, green and blue.

The numbers come in two common types:

| type | range | where you meet it |
|---|---|---|
| `uint8` (8-bit integers) | 0 … 255 | image files, cameras |
| float | 0.0 … 1.0 | computations, neural networks |

Here is a photo of Grace Hopper that ships with matplotlib (no download needed):
""")

nb.code("""
photo = datasets.sample_image("grace_hopper")          # (H, W, 3) uint8
print("shape:", photo.shape, " dtype:", photo.dtype, " range:", photo.min(), "...", photo.max())
print("the top-left pixel (R, G, B):", photo[0, 0])
""")

nb.code("""
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
axes[0].imshow(photo)
axes[0].set_title("RGB photo (600, 512, 3)")
for c, (ax, name) in enumerate(zip(axes[1:], ["red", "green", "blue"])):
    ax.imshow(photo[:, :, c], cmap="gray", vmin=0, vmax=255)
    ax.set_title(f"channel {c}: {name} (600, 512)")
for ax in axes:
    ax.set_xlabel("column j (width)")
    ax.set_ylabel("row i (height)")
fig.suptitle("A colour image is three grayscale grids stacked along the last axis")
plt.show()
""")

nb.md(r"""
Row `i` counts from the top, column `j` from the left: `photo[i, j]` is one pixel and
`photo[i, j, 0]` its red value. A bright red area is bright in the red channel only.

**Why `uint8` needs care.** An 8-bit integer cannot leave 0 … 255; arithmetic *wraps around*
instead of stopping at the edge, and a cast cuts values off silently:
""")

nb.code("""
a = np.array([250, 100], dtype=np.uint8)
print("uint8 250 + 10 and 100 + 10:", a + np.uint8(10))          # 250 + 10 wraps to 4
print("casting -3, 120, 300 to uint8:", np.array([-3, 120, 300]).astype(np.uint8))
print("the safe way, clip first:     ", np.clip(np.array([-3, 120, 300]), 0, 255).astype(np.uint8))

gray = datasets.sample_image("grace_hopper", gray=True, dtype=np.float64)   # (H, W) float in [0, 1]
print("grayscale float image:", gray.shape, gray.dtype, f"range {gray.min():.3f} ... {gray.max():.3f}")
""")

nb.md(r"""
So we compute in floats: divide a `uint8` image by 255 to get values in [0, 1], and convert back
(after clipping) only to save or display. From here on, `gray` is the photo in grayscale floats.

## 2. Sliding a kernel over an image

Take a 3 × 3 kernel, put it on the top-left 3 × 3 pixels of the image, multiply each weight by
the pixel under it and add the nine products: that is one output number. Move the kernel one
pixel to the right and repeat; at the end of the row, move down one pixel and start again from the
left. The outputs form the feature map.

Written out, for an image `I` of shape `(H, W)` and a kernel `K` of shape `(KH, KW)`:

$$\text{out}[i, j] = \sum_{a=0}^{KH-1} \sum_{b=0}^{KW-1} I[i + a,\ j + b]\; K[a, b]$$

The window must stay inside the image, so `i` runs over `0 … H - KH` and `j` over `0 … W - KW`:
the output has shape `(H - KH + 1, W - KW + 1)`. This is called a **valid** cross-correlation
(notebook 02 adds padding to keep the size).

**Worked example.** A 5 × 5 image, dark on the left and bright on the right, and the
vertical-edge kernel of the article (−1 in the left column, +1 in the right one):
""")

nb.code("""
image = np.array([[1, 2, 1, 8, 9],
                  [2, 1, 2, 9, 8],
                  [1, 1, 2, 8, 8],
                  [2, 2, 1, 9, 9],
                  [1, 2, 2, 8, 9]], dtype=float)
vertical_edge = np.array([[-1, 0, 1],
                          [-1, 0, 1],
                          [-1, 0, 1]], dtype=float)

window = image[0:3, 1:4]            # the window of output position (0, 1)
print("window at (0, 1):\\n", window)
print("products:\\n", window * vertical_edge)
print("out[0, 1] =", (window * vertical_edge).sum())
""")

nb.md(r"""
By hand: out[0, 1] = (−1)·2 + 0·1 + 1·8 + (−1)·1 + 0·2 + 1·9 + (−1)·1 + 0·2 + 1·8 = **21**.
At position (0, 0) the window sees only the dark part and the answer is small:
−(1 + 2 + 1) + (1 + 2 + 2) = **1**. The kernel answers "how much brighter is the right side than the
left side?", so it lights up on the edge. SciPy computes all 3 × 3 outputs at once:
""")

nb.code("""
print(signal.correlate2d(image, vertical_edge, mode="valid"))
""")

nb.exercise(1, "naive cross-correlation", points=4, text=r"""
Write `cross_correlate2d(image, kernel)`: the valid cross-correlation of a 2-D `image` of shape
`(H, W)` with a 2-D `kernel` of shape `(KH, KW)`, using two loops over the output positions (a
numpy sum over each window is fine).

- Returns a **float** array of shape `(H - KH + 1, W - KW + 1)` with
  `out[i, j] = sum(image[i:i+KH, j:j+KW] * kernel)`.
- Kernels need not be square and images need not be square.
- Do not flip the kernel, and do not change `image` or `kernel`.
- Allowed: numpy. Switched off while your function is checked: cnnlib and SciPy's
  `signal.correlate2d` / `convolve2d` (and the rest of that family), so write the loops.

The tests compare your function with cnnlib's reference on the worked example, a `uint8`
image, non-square shapes and (hidden) 20 random cases.
""", solution='''
def cross_correlate2d(image, kernel):
    """Valid cross-correlation of image (H, W) with kernel (KH, KW) -> (H-KH+1, W-KW+1) floats."""
    ### BEGIN SOLUTION
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
    return out
    ### END SOLUTION
''', tests='''
reference = grading.conv2d_hw        # cnnlib's conv2d on one 2-D image and one 2-D kernel

# the worked example of section 2 (written out again: a test cell depends on no other cell)
example = np.array([[1, 2, 1, 8, 9], [2, 1, 2, 9, 8], [1, 1, 2, 8, 8], [2, 2, 1, 9, 9], [1, 2, 2, 8, 9]], dtype=float)
edge = np.array([[-1.0, 0.0, 1.0]] * 3)
mistakes = grading.conv_mistakes(reference, x="image", w="kernel", b=None)
grading.check_function(cross_correlate2d, reference, [
    {"image": example, "kernel": edge},                                         # the worked example
    {"image": np.arange(12.0).reshape(3, 4), "kernel": np.array([[1.0, 2.0]])},  # a 1 x 2 kernel
    {"image": (np.arange(30) * 8 % 256).astype(np.uint8).reshape(5, 6),        # a uint8 image
     "kernel": np.full((3, 3), 1 / 9)},
    {"image": np.arange(35.0).reshape(7, 5) % 4, "kernel": np.array([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]])},
], mistakes=mistakes)
### BEGIN HIDDEN TESTS
grading.check_function(cross_correlate2d, reference,
                       grading.conv_cases(20, seed=10101, layout="hw", stride=False, padding=False),
                       mistakes=mistakes)
### END HIDDEN TESTS
''')

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 3. Edge detectors on a real photo

The article runs two 3 × 3 kernels over a photo with `scipy.signal.convolve2d`: a
**vertical-line detector** and a **horizontal-line detector**.

`mode="same"` keeps the output the size of the input, and `boundary="symm"` invents the missing
pixels beyond the border by mirroring the image (notebook 02 explains padding).
""")

nb.code("""
vertical = np.array([[-1, 0, +1],
                     [-1, 0, +1],
                     [-1, 0, +1]])
horizontal = np.array([[-1, -1, -1],
                       [ 0,  0,  0],
                       [+1, +1, +1]])
viz.show_kernels({"vertical-line detector": vertical, "horizontal-line detector": horizontal},
                 title="The article's edge kernels")
""")

nb.code("""
grad = signal.convolve2d(gray, vertical, boundary="symm", mode="same")
viz.show_image_pair(gray, grad, titles=("photo", "vertical-line detector"),
                    suptitle="The vertical-line detector: vertical edges light up, flat areas stay 0")
""")

nb.code("""
grad_v = signal.convolve2d(gray, horizontal, boundary="symm", mode="same")
viz.show_image_pair(gray, grad_v, titles=("photo", "horizontal-line detector"),
                    suptitle="The horizontal-line detector: the hat band, the glasses and the ribbons light up")
""")

nb.md(r"""
Each output pixel is a difference between one side of the window and the other, so flat areas
give 0 (white in the right panel) and edges give large positive or negative values. Each kernel
sees one orientation: the horizontal-line detector draws the hat band, the rims of the glasses and
the ribbons, which the vertical-line detector barely shows; the vertical one draws the sides of
the jacket and of the tie instead.

## 4. Convolution or cross-correlation? The flip

Look at the colours above: with `convolve2d`, edges from dark (left) to bright (right) came out
**blue**, but the kernel has +1 on the right, so they should be positive. The reason:
`convolve2d` computes a true **convolution**, the operation of signal processing, which *flips*
the kernel (rotates it by 180°) before sliding it:

$$\text{conv}[i, j] = \sum_{a,b} I[i + a,\ j + b]\; K[KH-1-a,\ KW-1-b]$$

Signal processing flips so that convolving with a single bright dot (an *impulse*) reproduces the
kernel itself: to know how your voice changes through a phone's microphone, convolve it with the
microphone's impulse response. Cross-correlation reproduces the kernel upside down:
""")

nb.code("""
impulse = np.zeros((5, 5))
impulse[2, 2] = 1.0
k = np.array([[1., 2., 3.],
              [4., 5., 6.],
              [7., 8., 9.]])
print("convolve2d(impulse, k):\\n", signal.convolve2d(impulse, k, mode="same"))
print("correlate2d(impulse, k):\\n", signal.correlate2d(impulse, k, mode="same"))
""")

nb.md(r"""
**CNNs compute cross-correlation** and call it convolution: the network learns its kernels, so
whether they are stored flipped makes no difference to what it can learn. Everything from here on
(and every `conv2d` in cnnlib, PyTorch and Keras) is cross-correlation. The two are related by the
flip: convolving with `K` is cross-correlating with `K` rotated by 180°.
""")

nb.exercise(2, "flipping a kernel", points=2, text=r"""
Write `flip_kernel(kernel)`: the 2-D `kernel` of shape `(KH, KW)` rotated by 180° (flipped
top-to-bottom **and** left-to-right), a new array of the same shape. Then, for every image,

    signal.correlate2d(image, flip_kernel(k), mode="valid") == signal.convolve2d(image, k, mode="valid")

The tests check your flip on square and non-square kernels and check that relation on random
images (hidden: 20 random kernels). Allowed: any numpy (slicing, `np.flip`,
`np.rot90`); do not change `kernel` in place.
""", solution='''
def flip_kernel(kernel):
    """The kernel rotated by 180 degrees: flipped along both axes."""
    ### BEGIN SOLUTION
    return kernel[::-1, ::-1].copy()
    ### END SOLUTION
''', tests='''
flip_mistakes = [
    grading.Mistake("you flipped only top-to-bottom: flip left-to-right as well.", lambda c: np.flipud(c["kernel"])),
    grading.Mistake("you flipped only left-to-right: flip top-to-bottom as well.", lambda c: np.fliplr(c["kernel"])),
    grading.Mistake("you transposed the kernel (rows became columns): that is not a 180-degree rotation.",
                    lambda c: c["kernel"].T),
    grading.Mistake("you rotated by 90 degrees: rotate twice as far (np.rot90(k, 2)).",
                    lambda c: np.rot90(c["kernel"])),
]
grading.check_function(flip_kernel, lambda kernel: np.rot90(kernel, 2), [
    {"kernel": np.arange(1.0, 10.0).reshape(3, 3)},        # the k of the impulse example
    {"kernel": np.array([[1.0, 2.0, 3.0]])},
    {"kernel": np.arange(6.0).reshape(3, 2)},
    {"kernel": np.array([[-1.0, 0.0, 1.0]] * 3)},           # the vertical-line detector
], mistakes=flip_mistakes)

def correlate_with_flip(image, kernel):
    return signal.correlate2d(image, flip_kernel(kernel), mode="valid")

grading.check_function(correlate_with_flip, lambda image, kernel: signal.convolve2d(image, kernel, mode="valid"),
                       [{"image": np.arange(30.0).reshape(5, 6) % 7, "kernel": np.arange(1.0, 10.0).reshape(3, 3)}],
                       name="correlate2d(image, flip_kernel(k))", shortcuts=True)
### BEGIN HIDDEN TESTS
flip_cases = [{"kernel": c["kernel"]} for c in grading.conv_cases(20, seed=10201, layout="hw", stride=False, padding=False)]
grading.check_function(flip_kernel, lambda kernel: np.rot90(kernel, 2), flip_cases, mistakes=flip_mistakes)
grading.check_function(correlate_with_flip, lambda image, kernel: signal.convolve2d(image, kernel, mode="valid"),
                       grading.conv_cases(10, seed=10202, layout="hw", stride=False, padding=False),
                       name="correlate2d(image, flip_kernel(k))", shortcuts=True)
### END HIDDEN TESTS
''')

nb.code("""
# The relation on the photo: convolve2d with the vertical kernel = correlate2d with it flipped
a = signal.convolve2d(gray, vertical, boundary="symm", mode="same")
b = signal.correlate2d(gray, np.rot90(vertical, 2), boundary="symm", mode="same")
print("same result:", np.allclose(a, b))
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 5. The classic kernels

Image editors have used hand-made kernels for decades. The identity kernel (a single 1 in the
centre) changes nothing; a box blur averages the 3 × 3 neighbourhood; a Gaussian blur averages
with more weight in the centre; sharpen adds the difference between a pixel and its neighbours
back to the pixel; Sobel and Laplacian kernels find edges; emboss makes the picture look
carved. `cnnlib.kernels` keeps them in a registry by name (`kernels.KERNELS`; the article's two edge
kernels are there too, as `vertical_edge` and `horizontal_edge`):
""")

nb.code("""
classic = {name: kernels.get_kernel(name) for name in
           ["identity", "box_blur", "gaussian", "sharpen", "sobel_x", "laplacian", "emboss"]}
viz.show_kernels(classic, title="Classic kernels (the Gaussian is 5 x 5, the others 3 x 3)")
""")

nb.code("""
small = gray[100:400, 100:400]            # the face, to see details
names = list(classic)
fig, axes = plt.subplots(2, 4, figsize=(12, 6.4), layout="constrained")
axes = axes.ravel()
axes[0].imshow(small, cmap="gray", vmin=0, vmax=1)
axes[0].set_title("input")
for ax, name in zip(axes[1:], names):
    ax.imshow(signal.correlate2d(small, classic[name], mode="same", boundary="symm"), cmap="gray")
    ax.set_title(name)
for ax in axes:
    ax.set_xlabel("column j")
    ax.set_ylabel("row i")
fig.suptitle("The same face through each classic kernel")
plt.show()
""")

nb.md(r"""
The identity leaves the face alone; the blurs soften it; sharpen makes the hair and the medals
crisper; Sobel keeps the vertical edges and the Laplacian all edges; emboss gives relief. A CNN's
first layer typically *learns* kernels that look much like these (notebook 07 shows it).

## 6. Colour images: filter each channel

An RGB image is three grayscale grids, so the article filters a colour image by running the
2-D filter over each channel separately:

```python
def convolve3d(img, kernel):
    img_out = np.zeros(img.shape)
    for i in range(img.shape[-1]):
        img_out[:, :, i] = signal.convolve2d(img[:, :, i], kernel, boundary='symm', mode='same')
    return img_out.astype('uint8')
```

One trap in it: `astype('uint8')` on values below 0 or above 255 wraps around (a sharpened pixel
of 260 becomes 4), which speckles edges with wrong colours. Work in floats and clip only to
display. (A convolution layer does something different with colour: it *adds* the three
channels' results into one feature map; notebook 03.)
""")

nb.exercise(3, "filtering a colour image", points=3, text=r"""
Write `filter_rgb(image, kernel)`: filter each channel of a float RGB `image` of shape `(H, W, 3)`
with the 2-D `kernel`, using

    signal.convolve2d(channel, kernel, mode="same", boundary="symm")

and return the three results stacked as a float array of shape `(H, W, 3)`: channel `c` of the
output is the filtered channel `c` of the input. No clipping, no conversion to `uint8`. Allowed:
numpy and scipy.signal (this exercise is about using it); cnnlib is switched off.

The tests compare with `cnnlib.kernels.filter_channels(image, kernel, correlate=False)` on an
asymmetric kernel (so a flip shows) and
(hidden) 12 random images and kernels.
""", solution='''
def filter_rgb(image, kernel):
    """Convolve each channel of image (H, W, 3) with kernel (mode 'same', boundary 'symm')."""
    ### BEGIN SOLUTION
    out = np.zeros(image.shape)
    for c in range(image.shape[2]):
        out[:, :, c] = signal.convolve2d(image[:, :, c], kernel, mode="same", boundary="symm")
    return out
    ### END SOLUTION
''', tests='''
def rgb_with(filter2d):
    return lambda c: np.stack([filter2d(c["image"][:, :, i], c["kernel"]) for i in range(3)], axis=-1)

rgb_mistakes = [
    grading.Mistake("your result equals correlate2d on each channel: this exercise uses convolve2d (the kernel flipped).",
                    rgb_with(lambda ch, k: signal.correlate2d(ch, k, mode="same", boundary="symm"))),
    grading.Mistake("the borders differ: use boundary=\\"symm\\" (mirror the image), not zero padding.",
                    rgb_with(lambda ch, k: signal.convolve2d(ch, k, mode="same"))),
    grading.Mistake("use mode=\\"same\\" so each channel keeps its (H, W) size.",
                    rgb_with(lambda ch, k: signal.convolve2d(ch, k, mode="valid", boundary="symm"))),
    grading.Mistake("keep the channels apart: the output has shape (H, W, 3), channel c from input channel c.",
                    lambda c: sum(signal.convolve2d(c["image"][:, :, i], c["kernel"], mode="same", boundary="symm")
                                  for i in range(3))),
]
rng = np.random.default_rng(1)
def reference(image, kernel):
    return kernels.filter_channels(image, kernel, mode="same", boundary="symm", correlate=False)

grading.check_function(filter_rgb, reference, [
    {"image": rng.random((6, 5, 3)), "kernel": np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])},
    {"image": datasets.sample_image("grace_hopper", dtype=np.float64)[200:210, 230:238],   # a piece of the photo
     "kernel": kernels.get_kernel("sharpen")},
], mistakes=rgb_mistakes, shortcuts=True)   # scipy.signal is allowed in this exercise
### BEGIN HIDDEN TESTS
grading.check_function(filter_rgb, reference,
                       grading.image_cases(12, seed=10301, rgb=True, kernel=True), mistakes=rgb_mistakes,
                       shortcuts=True)
### END HIDDEN TESTS
''')

nb.code("""
colour = photo[60:360, 120:420] / 255                 # float RGB in [0, 1]
blurred = kernels.filter_channels(colour, kernels.get_kernel("gaussian", size=7, sigma=2.0))
sharpened = kernels.filter_channels(colour, kernels.get_kernel("sharpen"))

fig, axes = plt.subplots(1, 3, figsize=(11, 4.0), layout="constrained")
for ax, img, title in zip(axes, [colour, blurred, sharpened], ["input", "Gaussian blur", "sharpen (clipped to [0, 1])"]):
    ax.imshow(np.clip(img, 0, 1))
    ax.set_title(title)
    ax.set_xlabel("column j")
    ax.set_ylabel("row i")
fig.suptitle("Filtering each RGB channel with the same kernel")
plt.show()
""")

# ------------------------------------------------------------------------------------------------
nb.md(r"""
## 7. How a kernel detects a pattern: the curve detector

Why does multiplying and adding detect anything? The article borrows an example: a 7 × 7
filter that is a **curve detector**. Its weights are 30 along a curve and 0 elsewhere. We place it
on two parts of a drawing of a mouse: a piece of the mouse's back, which contains a curve of the
same shape, and a piece of its head, which does not.
""")

nb.code("""
curve_filter = np.array([[0, 0, 0, 0, 0, 30, 0],
                         [0, 0, 0, 0, 30, 0, 0],
                         [0, 0, 0, 30, 0, 0, 0],
                         [0, 0, 0, 30, 0, 0, 0],
                         [0, 0, 0, 30, 0, 0, 0],
                         [0, 0, 0, 30, 0, 0, 0],
                         [0, 0, 0, 0, 0, 0, 0]], dtype=float)
mouse_back = np.array([[0, 0, 0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 50, 50, 50],
                       [0, 0, 0, 20, 50, 0, 0],
                       [0, 0, 0, 50, 50, 0, 0],
                       [0, 0, 0, 50, 50, 0, 0],
                       [0, 0, 0, 50, 50, 0, 0],
                       [0, 0, 0, 50, 50, 0, 0]], dtype=float)
mouse_head = np.array([[0, 0, 0, 0, 0, 0, 0],
                       [0, 40, 0, 0, 0, 0, 0],
                       [40, 0, 40, 0, 0, 0, 0],
                       [40, 20, 0, 0, 0, 0, 0],
                       [0, 50, 0, 0, 0, 0, 0],
                       [0, 0, 50, 0, 0, 0, 0],
                       [25, 25, 0, 50, 0, 0, 0]], dtype=float)
viz.show_kernels({"curve filter": curve_filter, "the mouse's back": mouse_back, "the mouse's head": mouse_head},
                 title="A curve detector and two 7 x 7 pieces of a drawing")
""")

nb.md(r"""
On the back, only the six positions where the filter holds 30 count (the others multiply by 0).
Reading them from the top: 0, 50, 20, 50, 50, 50, so

30·0 + 30·50 + 30·20 + 30·50 + 30·50 + 30·50 = **6600**,

a large number: the filter has found a curve. On the head, the pixels at those six positions are
all 0:

30·0 + 30·0 + 30·0 + 30·0 + 30·0 + 30·0 = **0**.

The head is not empty, but its strokes lie where the filter's weights are 0, so the filter does
not respond. A kernel answers one question, "does this window look like me?", with a number. A
CNN learns hundreds of such questions.
""")

nb.exercise(4, "the curve detector", points=2, text=r"""
Write `detector_response(image, kernel, row, col)`: the response of `kernel` (shape `(KH, KW)`)
placed on the 2-D `image` with its **top-left** corner at pixel `(row, col)`, i.e. the sum of the
element-wise products of the kernel and the `KH × KW` window under it. Return one number
(a Python or numpy float). Allowed: numpy; cnnlib and scipy.signal are switched off.

The tests check the two responses above (6600 and 0), the back found inside a wider drawing and
(hidden) 20 random images, kernels and positions.
""", solution='''
def detector_response(image, kernel, row, col):
    """Sum of kernel * image[row:row+KH, col:col+KW]: one output of the cross-correlation."""
    ### BEGIN SOLUTION
    kh, kw = kernel.shape
    return float(np.sum(image[row:row + kh, col:col + kw] * kernel))
    ### END SOLUTION
''', tests='''
def reference(image, kernel, row, col):
    # one entry of cnnlib's (valid) cross-correlation
    return grading.conv2d_hw(image, kernel)[row, col]

def centred(c):  # the window centred on (row, col) instead of starting there
    row, col = c["row"] - c["kernel"].shape[0] // 2, c["col"] - c["kernel"].shape[1] // 2
    if row < 0 or col < 0:
        raise IndexError("the centred window leaves the image")
    return reference(c["image"], c["kernel"], row, col)

detector_mistakes = [
    grading.Mistake("row is the vertical position (axis 0) and col the horizontal one: did you swap them?",
                    lambda c: reference(c["image"], c["kernel"], c["col"], c["row"])),
    grading.Mistake("your answer equals the FLIPPED kernel's response: use the kernel as it is.",
                    lambda c: reference(c["image"], c["kernel"][::-1, ::-1].copy(), c["row"], c["col"])),
    grading.Mistake("(row, col) is the window's top-left corner, not its centre.", centred),
]
# the arrays of section 7, rebuilt here (a test cell depends on no other cell)
curve = np.zeros((7, 7))
curve[[0, 1, 2, 3, 4, 5], [5, 4, 3, 3, 3, 3]] = 30
back = np.zeros((7, 7))
back[1, 4:], back[2:, 3:5], back[2, 3] = 50, 50, 20
head = np.zeros((7, 7))
head[[1, 2, 2, 3, 3, 4, 5, 6, 6, 6], [1, 0, 2, 0, 1, 1, 2, 0, 1, 3]] = [40, 40, 40, 40, 20, 50, 50, 25, 25, 50]
grading.check_function(detector_response, reference, [
    {"image": back, "kernel": curve, "row": 0, "col": 0},                     # 6600
    {"image": head, "kernel": curve, "row": 0, "col": 0},                     # 0
    {"image": np.hstack([head, back]), "kernel": curve, "row": 0, "col": 7},  # the back, right of the head
    {"image": np.arange(24.0).reshape(4, 6), "kernel": np.array([[1.0, 0.0], [0.0, -1.0], [2.0, 0.0]]), "row": 1, "col": 3},
], mistakes=detector_mistakes)
### BEGIN HIDDEN TESTS
def detector_case(rng):
    h, w = rng.integers(3, 12, size=2)
    kh, kw = rng.integers(1, 4, size=2)
    return {"image": rng.standard_normal((h, w)), "kernel": rng.standard_normal((kh, kw)),
            "row": int(rng.integers(0, h - kh + 1)), "col": int(rng.integers(0, w - kw + 1))}

grading.check_function(detector_response, reference, grading.random_cases(detector_case, 20, seed=10401),
                       mistakes=detector_mistakes)
### END HIDDEN TESTS
''')

nb.code("""
# Slide the curve detector over a drawing of the head followed by the back, with cnnlib
drawing = np.hstack([mouse_head, mouse_back])                                  # (7, 14)
response = F.conv2d(drawing[None, None], curve_filter[None, None])[0, 0]     # (1, 8)
print("responses along the drawing:", response[0])
print("on the head (col 0):", response[0, 0], "  on the back (col 7):", response[0, 7])
""")

nb.md(r"""
## Summary

- A grayscale image is an `(H, W)` array, a colour image `(H, W, 3)`; compute in floats, because
  `uint8` arithmetic wraps around.
- A kernel slides over the image; each output is the sum of the window times the kernel. Without
  padding the output shrinks to `(H - KH + 1, W - KW + 1)`.
- Signal-processing convolution flips the kernel; CNNs compute cross-correlation and call it
  convolution. `convolve2d(I, K) == correlate2d(I, flip(K))`.
- Classic kernels blur, sharpen and find edges; a colour image is filtered channel by channel.
- A kernel is a pattern detector: a large response (6600) where the window looks like it, none
  (0) where it does not.

**Next:** notebook 02 asks how big the output is when the kernel moves in larger steps (stride)
and when we add a border of zeros (padding).
""")

nb.references("intuitive_explanation", "python_cnn", "tds_cnn")

if __name__ == "__main__":
    nb.main()

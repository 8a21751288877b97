"""Pictures for the course: images and kernels, feature maps, learned filters, training curves,
the confusion matrix, and a sliding window with padding and stride.

Every helper builds a :class:`matplotlib.figure.Figure` with the object-oriented API and returns
it; none calls ``plt.show()``. The figures are not registered with pyplot, so a loop that makes a
hundred of them leaks nothing and a notebook never shows one twice. To see one:

- in a notebook, end the cell with the call (``viz.show_kernels(k)``) or ``display(fig)``;
- in a script, ``fig.savefig("kernels.png")``.

Each figure has a title and labelled axes. Numbers are written into the cells of small grids
(kernels, the confusion matrix, the sliding window's coverage) so a picture can be read exactly.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from cnnlib.grading.guard import reference

__all__ = [
    "show_image_pair",
    "show_kernels",
    "show_feature_maps",
    "show_filters",
    "plot_history",
    "confusion_matrix",
    "plot_confusion_matrix",
    "show_sliding_window",
    "interactive_sliding_window",
    "plot_timing",
]

_PANEL_INCHES = 2.4  # side of one small panel in a grid of panels
_WINDOW_COLOR = "#ff7f0e"
_WINDOW_EDGE = "#d62728"
_MAX_ANNOTATED_CELLS = 15  # grids up to this many cells a side get a number in every cell
_MAX_GRIDLINE_CELLS = 40  # grids up to this many cells a side get cell borders


def _enable_notebook_display() -> None:
    """In a Jupyter kernel with the inline backend, let a returned Figure display as a PNG.

    The PNG formatter for Figures is registered when matplotlib loads the inline backend, which
    normally happens on the first pyplot figure. These helpers never touch pyplot (so nothing is
    shown twice or left open), so they load the backend module here; outside a kernel, nothing.
    """
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    if get_ipython() is None:
        return
    try:  # the configured backend, without resolving matplotlib's "auto" choice
        backend = matplotlib.get_backend(auto_select=False)
    except TypeError:  # matplotlib < 3.10
        backend = matplotlib.rcParams._get("backend")
    if backend in ("inline", "module://matplotlib_inline.backend_inline"):
        try:
            import matplotlib_inline.backend_inline  # noqa: F401  (importing it does the hook-up)
        except ImportError:
            pass


_enable_notebook_display()


# --------------------------------------------------------------------------------------------
# argument checking
# --------------------------------------------------------------------------------------------


def _numeric_array(value, name: str, func: str) -> np.ndarray:
    """``np.asarray(value)``, refusing anything that is not an array of real numbers."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(f"{func}: {name} must be an array of numbers ({exc})") from None
    if arr.dtype == bool:
        arr = arr.astype(np.float64)  # a mask is 0.0 / 1.0, not a very dark uint8 image
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(
            f"{func}: {name} must be an array of real numbers, got dtype {arr.dtype} "
            f"(shape {arr.shape})"
        )
    return arr


def _int_pair(value, name: str, func: str, minimum: int) -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints, each at least ``minimum``."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items
    ):
        raise TypeError(f"{func}: {name} must be an int or a pair of ints (h, w), got {value!r}")
    h, w = (int(v) for v in items)
    if h < minimum or w < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value!r}")
    return h, w


def _check_image(image, name: str, func: str) -> np.ndarray:
    arr = _numeric_array(image, name, func)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4)):
        if arr.size == 0:
            raise ValueError(f"{func}: {name} is empty (shape {arr.shape})")
        return arr
    hint = ""
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        hint = (
            "; this looks channels-first: pass x[0] for one channel or x.transpose(1, 2, 0) "
            "for RGB"
        )
    elif arr.ndim == 4:
        hint = (
            "; this looks like an NCHW batch: pass x[0, 0] (grayscale) or "
            "x[0].transpose(1, 2, 0) (RGB)"
        )
    raise ValueError(
        f"{func}: {name} must be a grayscale image (H, W) or an RGB image (H, W, 3), "
        f"got shape {arr.shape}{hint}"
    )


def _text_color(im, value) -> str:
    """Black or white, whichever reads better on the colour that ``im`` gives ``value``."""
    r, g, b, _ = im.cmap(im.norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _format_number(value: float) -> str:
    value = float(value)
    if value == 0:
        return "0"  # also for -0.0
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def _panel_grid(fig: Figure, n: int, ncols: int):
    """``n`` axes on a grid with ``ncols`` columns (fewer when n is small); no empty panels."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    gs = fig.add_gridspec(nrows, ncols)
    return [fig.add_subplot(gs[k // ncols, k % ncols]) for k in range(n)]


# --------------------------------------------------------------------------------------------
# images and kernels (01_images_and_kernels)
# --------------------------------------------------------------------------------------------


def _draw_image(fig: Figure, ax, img: np.ndarray, title: str, cmap: str) -> None:
    """Draw one image with a scale that tells the truth about its values."""
    note = ""
    if img.ndim == 3:  # colour
        if img.dtype == np.uint8:
            shown = img
        elif np.issubdtype(img.dtype, np.integer) and img.min() >= 0 and img.max() <= 255:
            shown = img.astype(np.uint8)
        else:
            shown = img.astype(np.float64)
            lo, hi = shown.min(), shown.max()
            if lo < 0 or hi > 1:  # imshow would clip; rescale and say so
                shown = (shown - lo) / (hi - lo) if hi > lo else np.zeros_like(shown)
                note = f"\n(rescaled from [{_format_number(lo)}, {_format_number(hi)}])"
        ax.imshow(shown, interpolation="nearest")
    elif img.dtype == np.uint8:
        ax.imshow(img, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    else:
        lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
        if np.issubdtype(img.dtype, np.floating) and lo >= 0 and hi <= 1:
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        elif lo < 0:  # signed responses, e.g. an edge map: diverging, 0 in the middle
            bound = max(abs(lo), abs(hi)) or 1.0
            im = ax.imshow(img, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8)
        else:  # non-negative but not in [0, 1] (e.g. float 0-255, or int counts)
            im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(f"{title} {tuple(img.shape)}{note}")
    ax.set_xlabel("column")
    ax.set_ylabel("row")


def show_image_pair(
    before, after, titles=("input", "output"), cmap="gray", suptitle=None
) -> Figure:
    """Show two images side by side, e.g. a photo and its convolution with an edge kernel.

    uint8 images are drawn on the fixed 0-255 scale and float images in [0, 1] on 0-1, so a
    darker picture really is darker. Anything else gets a colour bar: values with negatives (an
    edge map) on a diverging scale centred on 0 (red positive, blue negative), other ranges on
    ``cmap`` from their min to max. Float RGB images outside [0, 1] are rescaled to [0, 1] and
    the panel title says so.

    Args:
        before: grayscale image (H, W) or RGB image (H, W, 3), uint8 or float.
        after: grayscale (H2, W2) or RGB (H2, W2, 3); may differ in size from ``before`` (a
            'valid' convolution shrinks the image).
        titles: the two panel titles; each is followed by the image's shape.
        cmap: colormap for grayscale images with non-negative values.
        suptitle: title of the whole figure (optional).

    Returns:
        The Figure. ``fig.axes[0]`` and ``fig.axes[1]`` are the two images; colour bars, when
        there are any, come after them.

    Example:
        >>> import numpy as np
        >>> img = np.arange(36, dtype=np.uint8).reshape(6, 6) * 7
        >>> edges = np.diff(img.astype(float), axis=1)          # has negative values
        >>> fig = show_image_pair(img, edges, titles=("photo", "vertical edges"))
        >>> fig.axes[0].get_title(), fig.axes[1].get_title()
        ('photo (6, 6)', 'vertical edges (6, 5)')

    Introduced in 01_images_and_kernels.
    """
    func = "show_image_pair"
    a = _check_image(before, "before", func)
    b = _check_image(after, "after", func)
    if isinstance(titles, str) or len(titles) != 2:
        raise ValueError(f"{func}: titles must be a pair of strings, got {titles!r}")
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    _draw_image(fig, ax_a, a, str(titles[0]), cmap)
    _draw_image(fig, ax_b, b, str(titles[1]), cmap)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def show_kernels(kernels, annotate=True, title=None, cmap="RdBu_r") -> Figure:
    """Draw small kernels as heat maps with their numbers written in each cell.

    The colour scale is symmetric around 0 for each kernel (red positive, blue negative), so a
    kernel's sign pattern is visible at a glance: the vertical-edge kernel is a red column
    against a blue column.

    Args:
        kernels: ``{name: (KH, KW) array}``, a list of (KH, KW) arrays (titled "kernel 0",
            "kernel 1", ...), a single (KH, KW) array, or a stack (N, KH, KW).
        annotate: write each weight in its cell (kernels up to 15x15).
        title: title of the whole figure (optional).
        cmap: a diverging colormap.

    Returns:
        The Figure, one axes per kernel in the given order, each titled with the kernel's name.

    Example:
        >>> import numpy as np
        >>> fig = show_kernels({"vertical edge": np.array([[1, 0, -1]] * 3),
        ...                     "box blur": np.full((3, 3), 1 / 9)})
        >>> [ax.get_title() for ax in fig.axes]
        ['vertical edge', 'box blur']
        >>> [t.get_text() for t in fig.axes[0].texts][:3]
        ['1', '0', '-1']

    Introduced in 01_images_and_kernels.
    """
    func = "show_kernels"
    if isinstance(kernels, Mapping):
        items = list(kernels.items())
    elif isinstance(kernels, (np.ndarray, Sequence)) and not isinstance(kernels, str):
        try:  # one kernel (KH, KW) or a stack (N, KH, KW), as an array or nested lists
            stack = np.asarray(kernels)
        except ValueError:  # a list of kernels of different sizes
            stack = None
        if stack is not None and stack.ndim == 2:
            stack = stack[None]
        if stack is not None and stack.ndim == 3:
            items = [(f"kernel {i}", k) for i, k in enumerate(stack)]
        else:
            items = [(f"kernel {i}", k) for i, k in enumerate(kernels)]
    else:
        raise TypeError(
            f"{func}: kernels must be a dict {{name: (KH, KW) array}}, a list of (KH, KW) "
            f"arrays or an array (KH, KW) / (N, KH, KW), got {type(kernels).__name__}"
        )
    if not items:
        raise ValueError(f"{func}: kernels is empty; give at least one kernel")
    arrays = []
    for name, k in items:
        arr = _numeric_array(k, f"kernel {name!r}", func).astype(np.float64)
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError(
                f"{func}: kernel {name!r} must be a 2-D array (KH, KW), got shape {arr.shape}"
            )
        arrays.append((str(name), arr))

    ncols = min(len(arrays), 4)
    nrows = math.ceil(len(arrays) / ncols)
    fig = Figure(
        figsize=(_PANEL_INCHES * ncols + 0.4, _PANEL_INCHES * nrows + 0.5), layout="constrained"
    )
    for ax, (name, arr) in zip(_panel_grid(fig, len(arrays), ncols), arrays):
        bound = float(np.abs(arr).max()) or 1.0
        im = ax.imshow(arr, cmap=cmap, vmin=-bound, vmax=bound, interpolation="nearest")
        kh, kw = arr.shape
        if annotate and max(kh, kw) <= _MAX_ANNOTATED_CELLS:
            labels = [[_format_number(v) for v in row] for row in arr]
            longest = max(len(t) for row in labels for t in row)
            size = 11 if max(kh, kw) <= 5 else 8 if max(kh, kw) <= 9 else 6
            if longest > 4:
                size -= 2
            for r in range(kh):
                for c in range(kw):
                    ax.text(c, r, labels[r][c], ha="center", va="center",
                            fontsize=size, color=_text_color(im, arr[r, c]))
        ax.set_title(name)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(kw, 6)))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(kh, 6)))
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# feature maps and learned filters (03_conv_layer, 07_training)
# --------------------------------------------------------------------------------------------


def show_feature_maps(maps, ncols=8, title="feature maps", cmap="viridis") -> Figure:
    """Show each channel of a conv layer's output as its own panel.

    Each panel has its own colour scale (min to max of that channel): the point is where a
    filter responds, not how strongly compared with the others.

    Args:
        maps: activations of one image, (C, H, W), or a batch of one, (1, C, H, W).
        ncols: panels per row.
        title: title of the whole figure.
        cmap: colormap.

    Returns:
        The Figure with C axes, titled "channel 0", "channel 1", ...

    Example:
        >>> import numpy as np
        >>> maps = np.random.default_rng(0).random((1, 6, 8, 8))
        >>> fig = show_feature_maps(maps, ncols=3)
        >>> len(fig.axes), fig.axes[5].get_title()
        (6, 'channel 5')

    Introduced in 03_conv_layer (several filters give depth); used again in 07_training.
    """
    func = "show_feature_maps"
    arr = _numeric_array(maps, "maps", func)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(
                f"{func}: maps must be (C, H, W) or (1, C, H, W), got a batch of {arr.shape[0]} "
                f"(shape {arr.shape}); pass one image's maps, e.g. maps[0]"
            )
        arr = arr[0]
    if arr.ndim != 3 or arr.size == 0:
        raise ValueError(f"{func}: maps must be (C, H, W) or (1, C, H, W), got shape {arr.shape}")
    if not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"{func}: ncols must be a positive int, got {ncols!r}")
    c = arr.shape[0]
    cols = min(ncols, c)
    rows = math.ceil(c / cols)
    side = 1.6 if cols > 4 else _PANEL_INCHES
    fig = Figure(figsize=(side * cols + 0.6, side * rows + 0.7), layout="constrained")
    for k, ax in enumerate(_panel_grid(fig, c, cols)):
        ax.imshow(arr[k], cmap=cmap, interpolation="nearest")
        ax.set_title(f"channel {k}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title} {tuple(arr.shape)}")
    fig.supxlabel("column")
    fig.supylabel("row")
    return fig


def show_filters(w, ncols=8, title="learned filters", channel=None) -> Figure:
    """Show a conv layer's filters, each scaled to its own min..max (black..white).

    How the C input channels are drawn: C = 1 as grayscale; C = 3 as an RGB picture (channel 0 is
    red, as for an RGB input); any other C as the mean over channels in grayscale, or as the
    single channel ``channel`` when it is given. Per-filter normalisation shows each filter's
    pattern; compare magnitudes with the weights themselves.

    Args:
        w: conv weights (F, C, KH, KW), e.g. ``Conv2d.weight.data``.
        ncols: panels per row.
        title: title of the whole figure.
        channel: for C not in (1, 3), draw only this input channel instead of the mean.

    Returns:
        The Figure with F axes, titled "filter 0", "filter 1", ...

    Example:
        >>> import numpy as np
        >>> w = np.random.default_rng(0).normal(size=(6, 1, 5, 5))
        >>> fig = show_filters(w)
        >>> len(fig.axes), fig.get_suptitle()
        (6, 'learned filters (6, 1, 5, 5)')

    Introduced in 07_training.
    """
    func = "show_filters"
    arr = _numeric_array(w, "w", func).astype(np.float64)
    if arr.ndim != 4 or arr.size == 0:
        raise ValueError(f"{func}: w must be conv weights (F, C, KH, KW), got shape {arr.shape}")
    if not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"{func}: ncols must be a positive int, got {ncols!r}")
    f, c = arr.shape[:2]
    how = ""
    if channel is not None:
        if not isinstance(channel, numbers.Integral) or not 0 <= channel < c:
            raise ValueError(
                f"{func}: channel must be an int in [0, {c}), got {channel!r} (w {arr.shape})"
            )
        pictures = arr[:, channel]
        how = f", input channel {channel}"
    elif c == 3:
        pictures = arr.transpose(0, 2, 3, 1)  # (F, KH, KW, 3)
        how = ", RGB"
    elif c == 1:
        pictures = arr[:, 0]
    else:
        pictures = arr.mean(axis=1)
        how = f", mean over {c} channels"
    lo = pictures.reshape(f, -1).min(axis=1)
    hi = pictures.reshape(f, -1).max(axis=1)
    span = np.where(hi > lo, hi - lo, 1.0)
    shape = (f,) + (1,) * (pictures.ndim - 1)
    normed = (pictures - lo.reshape(shape)) / span.reshape(shape)
    normed[hi == lo] = 0.5  # a constant filter is mid-gray, not a division by zero

    cols = min(ncols, f)
    rows = math.ceil(f / cols)
    side = 1.4 if cols > 4 else _PANEL_INCHES
    fig = Figure(figsize=(side * cols + 0.6, side * rows + 0.7), layout="constrained")
    for k, ax in enumerate(_panel_grid(fig, f, cols)):
        if normed.ndim == 4:
            ax.imshow(normed[k], interpolation="nearest")
        else:
            ax.imshow(normed[k], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"filter {k}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title} {tuple(arr.shape)}{how}")
    fig.supxlabel("kernel column")
    fig.supylabel("kernel row")
    return fig


# --------------------------------------------------------------------------------------------
# training (07_training)
# --------------------------------------------------------------------------------------------

_SERIES_LABELS = {
    "loss": "training",
    "val_loss": "validation",
    "accuracy": "training",
    "val_accuracy": "validation",
    "acc": "training",
    "val_acc": "validation",
}


def plot_history(history, title="learning curves") -> Figure:
    """Plot loss and accuracy against epoch, training and validation together.

    Args:
        history: a :class:`cnnlib.train.History` (or a Keras ``History``): anything with a
            ``.history`` dict; or the dict itself. Keys: any of ``loss``, ``accuracy``,
            ``val_loss``, ``val_accuracy`` (Keras 1's ``acc``/``val_acc`` work too), each a
            list with one number per epoch.
        title: title of the whole figure.

    Returns:
        The Figure: one panel for the loss and one for the accuracy (only the panels that have
        data), epochs 1, 2, ... on the x axis, a legend in each.

    Example:
        >>> fig = plot_history({"loss": [1.2, 0.6, 0.4], "val_loss": [1.0, 0.7, 0.6],
        ...                     "accuracy": [0.6, 0.8, 0.9], "val_accuracy": [0.7, 0.8, 0.85]})
        >>> [ax.get_title() for ax in fig.axes]
        ['loss', 'accuracy']

    Introduced in 07_training.
    """
    func = "plot_history"
    data = getattr(history, "history", history)
    if not isinstance(data, Mapping):
        raise TypeError(
            f"{func}: history must be a History (with a .history dict) or a dict of lists, "
            f"got {type(history).__name__}"
        )
    groups: dict[str, list[tuple[str, np.ndarray]]] = {"loss": [], "accuracy": []}
    for key, values in data.items():
        if key not in _SERIES_LABELS:
            continue
        arr = _numeric_array(values, f"history[{key!r}]", func).astype(np.float64)
        if arr.ndim != 1:
            raise ValueError(
                f"{func}: history[{key!r}] must be a list with one number per epoch, "
                f"got shape {arr.shape}"
            )
        if arr.size:
            groups["loss" if "loss" in key else "accuracy"].append((key, arr))
    panels = [(name, series) for name, series in groups.items() if series]
    if not panels:
        raise ValueError(
            f"{func}: history has no loss or accuracy values to plot (keys: {sorted(data)}); "
            "expected some of 'loss', 'accuracy', 'val_loss', 'val_accuracy'"
        )
    fig = Figure(figsize=(5.2 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, series) in zip(axes, panels):
        for key, arr in series:
            epochs = np.arange(1, arr.size + 1)
            style = "--" if key.startswith("val_") else "-"
            ax.plot(epochs, arr, style, marker="o" if arr.size <= 30 else None, markersize=4,
                    label=_SERIES_LABELS[key])
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        n_epochs = max(arr.size for _, arr in series)
        ax.set_xlim(0.5, n_epochs + 0.5)  # whole epochs, even after a single one
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig


@reference
def confusion_matrix(y_true, y_pred, num_classes=None) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Args:
        y_true: true class indices (N,), integers in [0, num_classes).
        y_pred: predicted class indices (N,), e.g. ``logits.argmax(axis=1)``.
        num_classes: K; by default one more than the largest label seen.

    Returns:
        int64 array (K, K): entry [i, j] counts samples of true class i predicted as class j.
        The diagonal holds the correct predictions; each row sums to that class's count.

    Example:
        >>> confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2])
        array([[1, 0, 0],
               [0, 0, 1],
               [0, 0, 2]])

    Introduced in 07_training.
    """
    func = "confusion_matrix"
    t = _numeric_array(y_true, "y_true", func)
    p = _numeric_array(y_pred, "y_pred", func)
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.ndim != 1:
            hint = "; for scores (N, K) pass scores.argmax(axis=1)" if arr.ndim == 2 else ""
            raise ValueError(
                f"{func}: {name} must be class indices (N,), got shape {arr.shape}{hint}"
            )
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise ValueError(
                    f"{func}: {name} must hold whole class indices, got {arr.dtype} values "
                    f"like {arr[arr != np.round(arr)][:3]}"
                )
        if arr.size and arr.min() < 0:
            raise ValueError(f"{func}: {name} has a negative class index ({arr.min()})")
    if t.shape != p.shape:
        raise ValueError(f"{func}: y_true {t.shape} and y_pred {p.shape} must have the same length")
    t = t.astype(np.int64)
    p = p.astype(np.int64)
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if num_classes is None:
        k = seen
    else:
        if (
            not isinstance(num_classes, numbers.Integral)
            or isinstance(num_classes, bool)
            or num_classes < 1
        ):
            raise ValueError(f"{func}: num_classes must be a positive int, got {num_classes!r}")
        k = int(num_classes)
        if seen > k:
            raise ValueError(
                f"{func}: found class index {seen - 1} but num_classes={k} (indices must be < {k})"
            )
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def plot_confusion_matrix(
    y_true, y_pred, labels=None, normalize=False, title="confusion matrix"
) -> Figure:
    """Draw the confusion matrix with the count (or the fraction of the row) in every cell.

    Args:
        y_true: true class indices (N,).
        y_pred: predicted class indices (N,).
        labels: names of the K classes (e.g. ``["0", ..., "9"]`` or ``["dog", "cat", "boat",
            "bird"]``); K is ``len(labels)`` when given.
        normalize: divide each row by its total, so cell [i, j] is the fraction of class i
            predicted as j (the diagonal is each class's recall).
        title: figure title; the overall accuracy is appended.

    Returns:
        The Figure: one axes with the matrix (true label down, predicted label across) and a
        colour bar.

    Example:
        >>> fig = plot_confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], labels=["a", "b", "c"])
        >>> fig.axes[0].get_title()
        'confusion matrix (accuracy 75.0%)'
        >>> [t.get_text() for t in fig.axes[0].texts][:3]
        ['1', '0', '0']

    Introduced in 07_training.
    """
    func = "plot_confusion_matrix"
    k = None
    if labels is not None:
        if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) == 0:
            raise TypeError(f"{func}: labels must be a list of class names, got {labels!r}")
        k = len(labels)
    cm = confusion_matrix(y_true, y_pred, num_classes=k)
    k = cm.shape[0]
    if k == 0:
        raise ValueError(f"{func}: y_true and y_pred are empty; nothing to count")
    names = [str(s) for s in labels] if labels is not None else [str(i) for i in range(k)]
    total = cm.sum()
    accuracy = np.trace(cm) / total if total else float("nan")
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        shown = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
        vmax = 1.0
    else:
        shown = cm
        vmax = max(int(cm.max()), 1)

    side = min(max(4.0, 0.55 * k + 2.5), 11.0)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    bar_label = "fraction of the true class" if normalize else "count"
    fig.colorbar(im, ax=ax, shrink=0.8, label=bar_label)
    size = 10 if k <= 10 else 7 if k <= 20 else 5
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else str(int(cm[i, j]))
            ax.text(j, i, text, ha="center", va="center", fontsize=size,
                    color=_text_color(im, shown[i, j]))
    ax.set_xticks(range(k), names, rotation=45 if max(len(n) for n in names) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"{title} (accuracy {100 * accuracy:.1f}%)")
    return fig


# --------------------------------------------------------------------------------------------
# sliding window, padding and stride (02_padding_and_stride)
# --------------------------------------------------------------------------------------------


def _output_size(n: int, k: int, s: int, p: int) -> int:
    # floor((n + 2p - k) / s) + 1, the formula of 02_padding_and_stride (local arithmetic on
    # purpose: cnnlib.shapes refuses to run while a learner's exercise is being checked).
    return (n + 2 * p - k) // s + 1


def _formula(axis: str, n: int, k: int, s: int, p: int) -> str:
    return (
        f"{axis}_out = floor(({axis} + 2P - K) / S) + 1 = "
        f"floor(({n} + 2*{p} - {k}) / {s}) + 1 = {_output_size(n, k, s, p)}"
    )


def _grid_axes(ax, rows: int, cols: int, row0: int, col0: int) -> None:
    """Cell borders and integer ticks for a grid of rows x cols cells starting at (row0, col0)."""
    if max(rows, cols) <= _MAX_GRIDLINE_CELLS:  # two line collections: cheaper than minor ticks
        left, right = col0 - 0.5, col0 + cols - 0.5
        top, bottom = row0 - 0.5, row0 + rows - 0.5
        style = {"colors": "#555555", "linewidth": 0.6}
        ax.hlines(np.arange(top, bottom + 1), left, right, **style)
        ax.vlines(np.arange(left, right + 1), top, bottom, **style)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(cols, 12)))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(rows, 12)))


def show_sliding_window(
    input_size, kernel_size, stride=1, padding=0, position=(0, 0), title=None
) -> Figure:
    """Picture a K x K window sliding over a zero-padded input, and the output it produces.

    Left: the input grid in input coordinates, the ring of zero padding shaded gray (its rows and
    columns are numbered -P..-1 and H..H+P-1), the original input outlined, and the window drawn
    where it produces output cell ``position``. Right: the output grid with that cell filled.
    With ``position=None`` every window start is marked with a dot instead, and (for grids up to
    15 cells a side) each input cell shows how many windows cover it: border pixels are covered
    fewer times, which is why we pad.

    Args:
        input_size: H, or (H, W).
        kernel_size: K, or (KH, KW).
        stride: S, or (SH, SW); at least 1.
        padding: P, or (PH, PW); zeros added on every side; at least 0.
        position: (i, j), the output cell whose window is drawn; the window's top-left corner is
            at input row i*S - P, column j*S - P. None marks every window start.
        title: replaces the first line of the figure title (the formula line stays).

    Returns:
        The Figure: ``fig.axes[0]`` the input, ``fig.axes[1]`` the output. The figure title and
        the output panel's title give the output size. The input panel's image holds one value
        per cell of the padded input: 0 for padding, 1 for the input.

    Raises:
        ValueError: the window does not fit in the padded input (K > H + 2P), or ``position``
            is outside the output grid; TypeError: sizes that are not ints.

    Shape:
        H_out = floor((H + 2P - K) / S) + 1, W_out = floor((W + 2P - K) / S) + 1

    Example:
        >>> fig = show_sliding_window(200, 5, stride=2, padding=1)     # the 200x200 example
        >>> fig.axes[1].get_title()
        'output 99x99, cell (0, 0)'
        >>> fig.get_suptitle().splitlines()[1]
        'H_out = floor((H + 2P - K) / S) + 1 = floor((200 + 2*1 - 5) / 2) + 1 = 99'

    Introduced in 02_padding_and_stride.
    """
    func = "show_sliding_window"
    h, w = _int_pair(input_size, "input_size", func, 1)
    kh, kw = _int_pair(kernel_size, "kernel_size", func, 1)
    sh, sw = _int_pair(stride, "stride", func, 1)
    ph, pw = _int_pair(padding, "padding", func, 0)
    hp, wp = h + 2 * ph, w + 2 * pw
    if kh > hp or kw > wp:
        raise ValueError(
            f"{func}: the {kh}x{kw} window does not fit in the padded input {hp}x{wp} "
            f"(input_size {h}x{w}, padding {(ph, pw) if ph != pw else ph}); "
            "use a smaller kernel_size or more padding"
        )
    ho, wo = _output_size(h, kh, sh, ph), _output_size(w, kw, sw, pw)
    if position is not None:
        if (
            not isinstance(position, (tuple, list))
            or len(position) != 2
            or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in position
            )
        ):
            raise TypeError(
                f"{func}: position must be an output cell (i, j) of ints or None, got {position!r}"
            )
        i, j = int(position[0]), int(position[1])
        if not (0 <= i < ho and 0 <= j < wo):
            raise ValueError(
                f"{func}: position {tuple(position)} is outside the {ho}x{wo} output "
                f"(i in 0..{ho - 1}, j in 0..{wo - 1})"
            )

    # The figure: input panel as wide as the padded input, output panel at least a third of that.
    ratio = [wp, max(wo, wp / 3)]
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2, gridspec_kw={"width_ratios": ratio})

    cells = np.zeros((hp, wp), dtype=np.int8)  # 0 = padding, 1 = input
    cells[ph:ph + h, pw:pw + w] = 1
    extent = (-pw - 0.5, w + pw - 0.5, h + ph - 0.5, -ph - 0.5)  # input coordinates
    ax_in.imshow(cells, cmap=ListedColormap(["#bdbdbd", "#deebf7"]), vmin=0, vmax=1,
                 extent=extent, interpolation="nearest")
    _grid_axes(ax_in, hp, wp, -ph, -pw)
    ax_in.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="black",
                              linewidth=1.5, linestyle="--"))
    small = max(hp, wp) <= _MAX_ANNOTATED_CELLS

    out_cells = np.zeros((ho, wo), dtype=np.int8)
    if position is None:
        starts_r = np.arange(ho) * sh - ph
        starts_c = np.arange(wo) * sw - pw
        rr, cc = np.meshgrid(starts_r, starts_c, indexing="ij")
        # A dot in the top-left corner of each window's first cell.
        offset = 0.3 if small else 0.0
        ax_in.plot(cc.ravel() - offset, rr.ravel() - offset, "o", color=_WINDOW_EDGE,
                   markersize=5 if small else 2, label="window start")
        in_title = (
            f"input {h}x{w}, padding {ph if ph == pw else (ph, pw)} -> {hp}x{wp}; "
            f"dots: the {ho * wo} window starts"
        )
        if small:  # how many windows cover each cell of the padded input
            cover = np.zeros((hp, wp), dtype=int)
            for r0 in range(0, ho * sh, sh):
                for c0 in range(0, wo * sw, sw):
                    cover[r0:r0 + kh, c0:c0 + kw] += 1
            for r in range(hp):
                for c in range(wp):
                    ax_in.text(c - pw, r - ph, str(cover[r, c]), ha="center", va="center",
                               fontsize=10, color="black" if cells[r, c] else "#555555")
            in_title += ",\nnumbers: how many windows cover each cell"
        out_cells[:] = 1
        out_title = f"output {ho}x{wo}: one cell per window"
    else:
        r0, c0 = i * sh - ph, j * sw - pw
        ax_in.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), kw, kh, facecolor=_WINDOW_COLOR,
                                  alpha=0.45, edgecolor="none"))
        ax_in.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), kw, kh, fill=False,
                                  edgecolor=_WINDOW_EDGE, linewidth=2.5))
        in_title = (
            f"input {h}x{w}, padding {ph if ph == pw else (ph, pw)} -> {hp}x{wp}; window "
            f"rows {r0}..{r0 + kh - 1}, cols {c0}..{c0 + kw - 1}"
        )
        out_cells[i, j] = 1
        out_title = f"output {ho}x{wo}, cell ({i}, {j})"
        if max(ho, wo) > _MAX_GRIDLINE_CELLS:  # one cell is a speck on a big grid: ring it
            ax_out.plot([j], [i], "o", markersize=14, markerfacecolor="none",
                        markeredgecolor=_WINDOW_EDGE, markeredgewidth=2)
    ax_in.set_title(in_title, fontsize=10)
    ax_in.set_xlabel("input column (gray: zero padding)")
    ax_in.set_ylabel("input row")

    out_color = _WINDOW_COLOR if position is not None else "#fdd0a2"
    ax_out.imshow(out_cells, cmap=ListedColormap(["#f7f7f7", out_color]), vmin=0, vmax=1,
                  interpolation="nearest")
    _grid_axes(ax_out, ho, wo, 0, 0)
    ax_out.set_title(out_title, fontsize=10)
    ax_out.set_xlabel("output column")
    ax_out.set_ylabel("output row")

    square = (h, kh, sh, ph) == (w, kw, sw, pw)
    first = title or (
        f"{kh}x{kw} window, stride {sh if sh == sw else (sh, sw)}, "
        f"padding {ph if ph == pw else (ph, pw)}: {h}x{w} -> {ho}x{wo}"
    )
    formula = _formula("H", h, kh, sh, ph) + ("" if square else "\n" + _formula("W", w, kw, sw, pw))
    fig.suptitle(f"{first}\n{formula}", fontsize=11)
    return fig


def interactive_sliding_window(input_size=7, kernel_size=3, stride=1, padding=0, max_input_size=16):
    """Sliders for input size, kernel, stride, padding and window position over the picture.

    The position slider numbers the output cells row by row (0 .. H_out*W_out - 1); moving it
    slides the window. The kernel slider's maximum follows H + 2P so the window always fits,
    and the position slider's maximum follows the output size.

    Args:
        input_size: starting H (= W).
        kernel_size: starting K.
        stride: starting S.
        padding: starting P.
        max_input_size: the input-size slider's maximum.

    Returns:
        An ``ipywidgets.interactive`` widget (a VBox: sliders then the output area); its
        ``.result`` is the Figure last drawn. In a notebook, end the cell with the call.
        Without a frontend (a script, a test) it is still built and drawn once; nothing is shown.

    Example:
        >>> w = interactive_sliding_window(input_size=5, kernel_size=3, stride=2, padding=1)
        >>> w.result.axes[1].get_title()
        'output 3x3, cell (0, 0)'

    Introduced in 02_padding_and_stride.
    """
    import ipywidgets as widgets
    from IPython import get_ipython
    from IPython.display import display

    func = "interactive_sliding_window"
    for name, value, lo in (("input_size", input_size, 1), ("kernel_size", kernel_size, 1),
                            ("stride", stride, 1), ("padding", padding, 0),
                            ("max_input_size", max_input_size, 1)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"{func}: {name} must be an int, got {value!r}")
        if value < lo:
            raise ValueError(f"{func}: {name} must be >= {lo}, got {value}")
    if input_size > max_input_size:
        raise ValueError(
            f"{func}: input_size {input_size} is larger than max_input_size {max_input_size}"
        )
    if kernel_size > input_size + 2 * padding:
        raise ValueError(
            f"{func}: kernel_size {kernel_size} does not fit in the padded input "
            f"{input_size + 2 * padding} (input_size {input_size}, padding {padding})"
        )

    style = {"description_width": "110px"}
    common = {"continuous_update": False, "style": style}
    size_w = widgets.IntSlider(input_size, min=1, max=max_input_size,
                               description="input size H", **common)
    pad_w = widgets.IntSlider(padding, min=0, max=4, description="padding P", **common)
    kernel_w = widgets.IntSlider(kernel_size, min=1, max=input_size + 2 * padding,
                                 description="kernel size K", **common)
    stride_w = widgets.IntSlider(stride, min=1, max=5, description="stride S", **common)
    n_out = _output_size(input_size, kernel_size, stride, padding) ** 2
    index_w = widgets.IntSlider(0, min=0, max=n_out - 1, description="window position",
                                **{**common, "continuous_update": True})

    def fit_sliders(_change=None):
        # Registered before `interactive` registers its own observers, so it runs first.
        kernel_w.max = size_w.value + 2 * pad_w.value
        n = _output_size(size_w.value, kernel_w.value, stride_w.value, pad_w.value)
        index_w.max = max(n * n - 1, 0)

    for slider in (size_w, pad_w, kernel_w, stride_w):
        slider.observe(fit_sliders, names="value")

    def draw(input_size, kernel_size, stride, padding, position):
        padded = input_size + 2 * padding
        kernel_size = min(kernel_size, padded)
        n = _output_size(input_size, kernel_size, stride, padding)
        position = min(position, n * n - 1)
        fig = show_sliding_window(input_size, kernel_size, stride, padding,
                                  position=divmod(position, n))
        if get_ipython() is not None:  # inside a kernel: show it in the widget's output area
            display(fig)
        return fig

    return widgets.interactive(
        draw,
        {"auto_display": False},
        input_size=size_w,
        kernel_size=kernel_w,
        stride=stride_w,
        padding=pad_w,
        position=index_w,
        # Clearing the output area between redraws needs a kernel; without one it would only
        # print terminal escape codes.
        clear_output=get_ipython() is not None,
    )


# --------------------------------------------------------------------------------------------
# timing (03_conv_layer)
# --------------------------------------------------------------------------------------------


def plot_timing(
    sizes, times, xlabel="input size", ylabel="time (s)", title="naive loops vs vectorized",
    logx=False,
) -> Figure:
    """Plot run time against problem size for several implementations, log y axis.

    On a log scale a constant speed-up is a constant vertical gap, so "100x faster" reads as the
    same distance at every size.

    Args:
        sizes: the problem sizes (M,), e.g. image side lengths.
        times: ``{label: times (M,)}`` in seconds, one list per implementation, all positive.
        xlabel, ylabel, title: axis labels and title.
        logx: also put the x axis on a log scale.

    Returns:
        The Figure with one axes: one line per implementation and a legend.

    Example:
        >>> fig = plot_timing([8, 16, 32], {"naive": [0.01, 0.04, 0.16],
        ...                                 "vectorized": [1e-4, 2e-4, 5e-4]})
        >>> fig.axes[0].get_yscale(), [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ('log', ['naive', 'vectorized'])

    Introduced in 03_conv_layer.
    """
    func = "plot_timing"
    x = _numeric_array(sizes, "sizes", func).astype(np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"{func}: sizes must be a non-empty list of numbers (M,), got shape {x.shape}"
        )
    if not isinstance(times, Mapping) or not times:
        raise TypeError(
            f"{func}: times must be a non-empty dict {{label: list of seconds}}, "
            f"got {type(times).__name__}"
        )
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for label, values in times.items():
        y = _numeric_array(values, f"times[{label!r}]", func).astype(np.float64)
        if y.shape != x.shape:
            raise ValueError(
                f"{func}: times[{label!r}] has shape {y.shape} but sizes has shape {x.shape}; "
                "give one time per size"
            )
        if np.any(~np.isfinite(y)) or np.any(y <= 0):
            raise ValueError(
                f"{func}: times[{label!r}] must be positive seconds (log scale), got {y.tolist()}"
            )
        ax.plot(x, y, marker="o", label=str(label))
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig

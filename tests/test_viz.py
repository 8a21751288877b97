"""cnnlib.viz: each figure renders with Agg, has a title and axis labels, shows what it claims."""

import io
import os
import subprocess
import sys
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from cnnlib import viz  # noqa: E402


@pytest.fixture(autouse=True)
def no_leaked_figures():
    before = set(plt.get_fignums())
    yield
    leaked = set(plt.get_fignums()) - before
    plt.close("all")
    assert not leaked, f"viz left {len(leaked)} pyplot figure(s) open"


def panels(fig):
    """The figure's axes without its colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def render(fig):
    """Draw the figure to a PNG with Agg (low dpi: layout and text are what cost and can fail)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=30)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def assert_readable(fig, n_panels):
    """A Figure with the expected number of panels, a title and labelled axes."""
    assert isinstance(fig, Figure)
    axes = panels(fig)
    assert len(axes) == n_panels
    suptitle = fig.get_suptitle()
    for ax in axes:
        assert ax.get_title() or suptitle, "a panel without a title"
        assert ax.get_xlabel() or fig.get_supxlabel(), "a panel without an x label"
        assert ax.get_ylabel() or fig.get_supylabel(), "a panel without a y label"


def texts(ax):
    return [t.get_text() for t in ax.texts]


# ---------------------------------------------------------------- show_image_pair


def test_image_pair_uint8_and_signed_edge_map():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(12, 10), dtype=np.uint8)
    edges = rng.normal(size=(10, 8))  # has negatives
    fig = viz.show_image_pair(img, edges, titles=("photo", "edges"), suptitle="edge detection")
    assert_readable(fig, 2)
    a, b = panels(fig)
    assert a.get_title() == "photo (12, 10)" and b.get_title() == "edges (10, 8)"
    assert a.images[0].get_clim() == (0, 255)
    lo, hi = b.images[0].get_clim()
    assert lo == -hi and hi == pytest.approx(np.abs(edges).max())  # diverging, centred on 0
    assert len(fig.axes) == 3  # one colour bar, for the edge map only
    assert fig.get_suptitle() == "edge detection"


def test_image_pair_rgb_and_unit_floats():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    gray = rng.random((8, 8))
    fig = viz.show_image_pair(rgb, gray)
    assert_readable(fig, 2)
    assert len(fig.axes) == 2  # no colour bars: both on their natural scale
    assert panels(fig)[1].images[0].get_clim() == (0, 1)

    fig = viz.show_image_pair(rgb.astype(float), rgb / 255.0)  # float RGB in 0-255
    assert "rescaled" in panels(fig)[0].get_title()
    assert "rescaled" not in panels(fig)[1].get_title()


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((1, 8, 8)), "channels-first"),
        (np.zeros((2, 1, 8, 8)), "NCHW"),
        (np.zeros(8), "(8,)"),
        (np.zeros((8, 8, 5)), "(8, 8, 5)"),
    ],
)
def test_image_pair_bad_shapes(bad, message):
    with pytest.raises(ValueError, match="before") as info:
        viz.show_image_pair(bad, np.zeros((4, 4)))
    assert message in str(info.value)


def test_image_pair_bad_dtype_and_titles():
    with pytest.raises(TypeError, match="after"):
        viz.show_image_pair(np.zeros((4, 4)), np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="titles"):
        viz.show_image_pair(np.zeros((4, 4)), np.zeros((4, 4)), titles="one")


# ---------------------------------------------------------------- show_kernels


def test_kernels_dict_numbers_written_in_cells():
    vertical = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
    blur = np.full((3, 3), 1 / 9)
    fig = viz.show_kernels({"vertical edge": vertical, "box blur": blur}, title="kernels")
    assert_readable(fig, 2)
    ax_v, ax_b = fig.axes
    assert [ax_v.get_title(), ax_b.get_title()] == ["vertical edge", "box blur"]
    assert texts(ax_v) == [str(v) for v in vertical.ravel()]
    assert texts(ax_b) == ["0.111"] * 9
    lo, hi = ax_v.images[0].get_clim()
    assert (lo, hi) == (-1, 1)


@pytest.mark.parametrize(
    "kernels, n",
    [
        ([np.eye(3), np.ones((5, 5))], 2),  # list of different sizes
        (np.eye(3), 1),  # one kernel
        ([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], 1),  # one kernel as nested lists
        (np.zeros((3, 3, 3)), 3),  # a stack
    ],
)
def test_kernels_list_forms(kernels, n):
    fig = viz.show_kernels(kernels)
    assert_readable(fig, n)
    assert [ax.get_title() for ax in fig.axes] == [f"kernel {i}" for i in range(n)]


def test_kernels_without_annotations():
    fig = viz.show_kernels({"sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]}, annotate=False)
    assert texts(fig.axes[0]) == []


def test_kernels_bad_input():
    with pytest.raises(ValueError, match=r"kernel 'row'.*\(3,\)"):
        viz.show_kernels({"row": np.ones(3)})
    with pytest.raises(ValueError, match="empty"):
        viz.show_kernels({})
    with pytest.raises(TypeError, match="kernels"):
        viz.show_kernels(3)


# ---------------------------------------------------------------- feature maps and filters


@pytest.mark.parametrize(
    "shape, ncols, grid",
    [((5, 8, 8), 3, (2, 3)), ((1, 9, 5, 7), 8, (2, 8)), ((2, 4, 4), 8, (1, 2))],
)
def test_feature_maps_one_panel_per_channel(shape, ncols, grid):
    maps = np.random.default_rng(2).normal(size=shape)
    fig = viz.show_feature_maps(maps, ncols=ncols, title="conv1")
    c = shape[-3]
    assert_readable(fig, c)
    assert [ax.get_title() for ax in fig.axes] == [f"channel {k}" for k in range(c)]
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == grid
    assert fig.get_suptitle().startswith("conv1")
    last = maps.reshape(-1, *shape[-2:])[-1]
    np.testing.assert_array_equal(fig.axes[-1].images[0].get_array(), last)


def test_feature_maps_bad_input():
    with pytest.raises(ValueError, match=r"batch of 2.*maps\[0\]"):
        viz.show_feature_maps(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        viz.show_feature_maps(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="ncols"):
        viz.show_feature_maps(np.zeros((3, 4, 4)), ncols=0)


def test_filters_grayscale_rgb_and_many_channels():
    rng = np.random.default_rng(3)
    fig = viz.show_filters(rng.normal(size=(6, 1, 5, 5)))
    assert_readable(fig, 6)
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (5, 5) and img.min() == 0 and img.max() == 1  # normalised per filter

    fig = viz.show_filters(rng.normal(size=(4, 3, 3, 3)))
    assert_readable(fig, 4)
    assert fig.axes[0].images[0].get_array().shape == (3, 3, 3)
    assert "RGB" in fig.get_suptitle()

    w = rng.normal(size=(5, 6, 5, 5))
    fig = viz.show_filters(w)
    assert_readable(fig, 5)
    assert "mean over 6 channels" in fig.get_suptitle()
    mean0 = w[0].mean(axis=0)
    expected = (mean0 - mean0.min()) / (mean0.max() - mean0.min())
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), expected)

    fig = viz.show_filters(w, channel=2)
    assert "input channel 2" in fig.get_suptitle()


def test_filters_constant_filter_is_mid_gray_and_bad_input():
    fig = viz.show_filters(np.ones((2, 1, 3, 3)))
    assert np.all(fig.axes[0].images[0].get_array() == 0.5)
    with pytest.raises(ValueError, match=r"\(F, C, KH, KW\).*\(6, 5, 5\)"):
        viz.show_filters(np.zeros((6, 5, 5)))
    with pytest.raises(ValueError, match="channel"):
        viz.show_filters(np.zeros((2, 4, 3, 3)), channel=4)


# ---------------------------------------------------------------- plot_history

FULL_HISTORY = {
    "loss": [2.0, 1.0, 0.5, 0.4],
    "accuracy": [0.3, 0.6, 0.8, 0.85],
    "val_loss": [1.5, 1.1, 0.7, 0.6],
    "val_accuracy": [0.4, 0.6, 0.75, 0.8],
}


@pytest.mark.parametrize("wrap", [dict, lambda d: types.SimpleNamespace(history=d)])
def test_history_two_panels_with_legends(wrap):
    fig = viz.plot_history(wrap(FULL_HISTORY))
    assert_readable(fig, 2)
    loss_ax, acc_ax = fig.axes
    assert (loss_ax.get_title(), acc_ax.get_title()) == ("loss", "accuracy")
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
        assert list(ax.lines[0].get_xdata()) == [1, 2, 3, 4]
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), FULL_HISTORY["val_loss"])


def test_history_from_cnnlib_train():
    train = pytest.importorskip("cnnlib.train")
    history = train.History()
    for key, values in FULL_HISTORY.items():
        history.history[key].extend(values)
    fig = viz.plot_history(history, title="LeNet on MNIST")
    assert_readable(fig, 2)
    assert fig.get_suptitle() == "LeNet on MNIST"


def test_history_subset_and_bad_input():
    fig = viz.plot_history({"loss": [1.0, 0.5]})
    assert_readable(fig, 1)
    assert fig.axes[0].get_title() == "loss"
    with pytest.raises(ValueError, match="no loss or accuracy"):
        viz.plot_history({"lr": [0.1]})
    with pytest.raises(TypeError, match="history"):
        viz.plot_history([1.0, 0.5])
    with pytest.raises(ValueError, match=r"history\['loss'\].*\(2, 2\)"):
        viz.plot_history({"loss": [[1, 2], [3, 4]]})


# ---------------------------------------------------------------- confusion matrix


def naive_confusion(y_true, y_pred, k):
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    return cm


@pytest.mark.parametrize("seed, n, k", [(0, 200, 10), (1, 7, 3), (2, 1, 1)])
def test_confusion_matrix_matches_naive_count(seed, n, k):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, k, n), rng.integers(0, k, n)
    cm = viz.confusion_matrix(y_true, y_pred, num_classes=k)
    assert cm.dtype == np.int64 and cm.shape == (k, k)
    np.testing.assert_array_equal(cm, naive_confusion(y_true, y_pred, k))
    assert cm.sum() == n


def test_confusion_matrix_infers_classes_and_accepts_whole_floats():
    cm = viz.confusion_matrix([0, 2, 2], np.array([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 0, 0], [0, 1, 1]])


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, error, message",
    [
        ([0, 1], [0, 1, 1], {}, ValueError, r"y_true \(2,\) and y_pred \(3,\)"),
        ([0, -1], [0, 1], {}, ValueError, "negative"),
        ([0, 1], np.zeros((2, 3)), {}, ValueError, r"argmax\(axis=1\)"),
        ([0, 3], [0, 1], {"num_classes": 3}, ValueError, "num_classes=3"),
        ([0, 1], [0.5, 1.0], {}, ValueError, "whole class indices"),
        ([0, 1], ["a", "b"], {}, TypeError, "y_pred"),
    ],
)
def test_confusion_matrix_bad_input(y_true, y_pred, kwargs, error, message):
    with pytest.raises(error, match=message):
        viz.confusion_matrix(y_true, y_pred, **kwargs)


def test_plot_confusion_matrix_counts_in_cells():
    rng = np.random.default_rng(4)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    names = ["dog", "cat", "boat", "bird"]
    fig = viz.plot_confusion_matrix(y_true, y_pred, labels=names)
    assert_readable(fig, 1)
    ax = panels(fig)[0]
    cm = naive_confusion(y_true, y_pred, 4)
    assert texts(ax) == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted label", "true label")
    assert f"{100 * np.trace(cm) / 50:.1f}%" in ax.get_title()


def test_plot_confusion_matrix_normalized_rows():
    fig = viz.plot_confusion_matrix([0, 0, 0, 1, 2, 2], [0, 1, 1, 1, 2, 0], normalize=True)
    assert_readable(fig, 1)
    values = np.array([float(t) for t in texts(panels(fig)[0])]).reshape(3, 3)
    np.testing.assert_allclose(values.sum(axis=1), 1, atol=0.011)
    assert values[0].tolist() == [0.33, 0.67, 0.0]
    with pytest.raises(TypeError, match="labels"):
        viz.plot_confusion_matrix([0], [0], labels="abc")


# ---------------------------------------------------------------- sliding window


def count_window_starts(n, k, s, p):
    """Output size by brute force: how many window starts fit in the padded input."""
    return len(range(0, n + 2 * p - k + 1, s))


@pytest.mark.parametrize(
    "h, k, s, p, expected",
    [
        (200, 5, 2, 1, 99),  # the seed's worked example
        (99, 3, 1, 0, 97),  # then a 3x3 pool, stride 1
        (97, 3, 1, 1, 97),  # then a 3x3 'same' conv
        (7, 3, 1, 0, 5),
        (7, 3, 2, 0, 3),
        (6, 3, 2, 0, 2),  # floor: the last column is never covered
        (5, 3, 2, 1, 3),
        (4, 4, 1, 0, 1),
        (28, 5, 1, 2, 28),
        (1, 3, 1, 1, 1),
    ],
)
def test_sliding_window_output_size_in_title(h, k, s, p, expected):
    assert count_window_starts(h, k, s, p) == expected
    fig = viz.show_sliding_window(h, k, stride=s, padding=p)
    assert_readable(fig, 2)
    ax_in, ax_out = fig.axes
    assert ax_out.get_title().startswith(f"output {expected}x{expected}")
    first, formula = fig.get_suptitle().splitlines()
    assert first.endswith(f"{h}x{h} -> {expected}x{expected}")
    assert formula == (
        f"H_out = floor((H + 2P - K) / S) + 1 = floor(({h} + 2*{p} - {k}) / {s}) + 1 = {expected}"
    )
    assert ax_out.images[0].get_array().shape == (expected, expected)


@pytest.mark.parametrize("size, padding", [(5, 1), (200, 1), (7, 0), ((5, 8), (1, 2)), (6, 3)])
def test_sliding_window_padding_ring(size, padding):
    h, w = size if isinstance(size, tuple) else (size, size)
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    fig = viz.show_sliding_window(size, 3, padding=padding)
    cells = np.asarray(fig.axes[0].images[0].get_array())
    assert cells.shape == (h + 2 * ph, w + 2 * pw)
    assert (cells == 0).sum() == (h + 2 * ph) * (w + 2 * pw) - h * w  # the ring of zeros
    assert (cells[ph:ph + h, pw:pw + w] == 1).all()
    if ph != pw or h != w:
        assert "W_out" in fig.get_suptitle()


def test_sliding_window_outlines_the_window_and_its_output_cell():
    # 5x5 input, 3x3 window, stride 2, padding 1: output cell (1, 2) starts at row 1, column 3.
    fig = viz.show_sliding_window(5, 3, stride=2, padding=1, position=(1, 2))
    ax_in, ax_out = fig.axes
    windows = [p for p in ax_in.patches if isinstance(p, Rectangle) and p.get_width() == 3]
    assert windows and all(p.get_xy() == (3 - 0.5, 1 - 0.5) for p in windows)
    assert "rows 1..3, cols 3..5" in ax_in.get_title()
    out = np.asarray(ax_out.images[0].get_array())
    assert out.sum() == 1 and out[1, 2] == 1
    assert ax_out.get_title() == "output 3x3, cell (1, 2)"
    fig = viz.show_sliding_window(5, 3, stride=2, padding=1, title="a 3x3 window")
    assert fig.get_suptitle().splitlines()[0] == "a 3x3 window"


def test_sliding_window_all_starts_and_coverage():
    # Without padding a border pixel is covered by fewer windows than a central one (seed 000).
    fig = viz.show_sliding_window(6, 3, stride=1, padding=0, position=None)
    assert_readable(fig, 2)
    ax_in = fig.axes[0]
    (starts,) = [line for line in ax_in.lines if line.get_label() == "window start"]
    assert len(starts.get_xdata()) == 16
    coverage = np.array([int(t) for t in texts(ax_in)]).reshape(6, 6)
    assert coverage[0, 0] == 1 and coverage[0, 2] == 3 and coverage[2, 2] == 9
    assert coverage.sum() == 16 * 9
    assert np.asarray(fig.axes[1].images[0].get_array()).all()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(input_size=4, kernel_size=7, padding=1), ValueError,
         "7x7 window does not fit in the padded input 6x6"),
        (dict(input_size=5, kernel_size=3, stride=0), ValueError, "stride must be >= 1"),
        (dict(input_size=5, kernel_size=3, padding=-1), ValueError, "padding must be >= 0"),
        (dict(input_size=5, kernel_size=2.5), TypeError, "kernel_size"),
        (dict(input_size=(5, 5, 5), kernel_size=3), TypeError, "input_size"),
        (dict(input_size=5, kernel_size=3, position=(3, 0)), ValueError, r"outside the 3x3 output"),
        (dict(input_size=5, kernel_size=3, position=5), TypeError, "position"),
    ],
)
def test_sliding_window_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        viz.show_sliding_window(**kwargs)


def test_interactive_sliding_window_without_frontend(capsys):
    import ipywidgets

    w = viz.interactive_sliding_window(input_size=5, kernel_size=3, stride=2, padding=1)
    assert isinstance(w, ipywidgets.interactive)
    sliders = [c for c in w.children if isinstance(c, ipywidgets.IntSlider)]
    assert len(sliders) == 5
    size, kernel, stride, padding, index = sliders
    assert isinstance(w.result, Figure)
    assert w.result.axes[1].get_title() == "output 3x3, cell (0, 0)"
    assert index.max == 8

    index.value = 4  # the centre cell of the 3x3 output
    assert w.result.axes[1].get_title() == "output 3x3, cell (1, 1)"
    size.value = 9  # (9 + 2 - 3) // 2 + 1 = 5
    assert w.result.axes[1].get_title().startswith("output 5x5")
    assert index.max == 24 and kernel.max == 11
    padding.value = 0
    kernel.value = 9
    assert "9x9 window" in w.result.get_suptitle() and index.max == 0
    assert capsys.readouterr().out == ""  # nothing printed without a frontend

    with pytest.raises(ValueError, match="does not fit"):
        viz.interactive_sliding_window(input_size=3, kernel_size=7)
    with pytest.raises(TypeError, match="stride"):
        viz.interactive_sliding_window(stride=1.5)


# ---------------------------------------------------------------- timing


def test_plot_timing_log_scale_and_legend():
    sizes = [8, 16, 32, 64]
    times = {"naive loops": [1e-2, 4e-2, 0.16, 0.64], "im2col": [1e-4, 2e-4, 6e-4, 2e-3]}
    fig = viz.plot_timing(sizes, times, xlabel="image side (pixels)")
    assert_readable(fig, 1)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(times)
    assert len(ax.lines) == 2
    assert viz.plot_timing(sizes, times, logx=True).axes[0].get_xscale() == "log"


def test_plot_timing_bad_input():
    message = r"times\['naive'\] has shape \(2,\) but sizes has shape \(3,\)"
    with pytest.raises(ValueError, match=message):
        viz.plot_timing([1, 2, 3], {"naive": [1.0, 2.0]})
    with pytest.raises(ValueError, match="positive"):
        viz.plot_timing([1, 2], {"naive": [0.0, 1.0]})
    with pytest.raises(TypeError, match="times"):
        viz.plot_timing([1, 2], [1.0, 2.0])


# ---------------------------------------------------------------- all helpers


def test_no_pyplot_figures_in_a_loop():
    for _ in range(2):
        viz.show_kernels([np.eye(3)])
        viz.show_sliding_window(7, 3)
        viz.plot_history(FULL_HISTORY)
    assert plt.get_fignums() == []


_rng = np.random.default_rng(5)
RENDER_CASES = {
    "image pair": lambda: viz.show_image_pair(
        _rng.integers(0, 256, (16, 16), dtype=np.uint8), _rng.normal(size=(14, 14)),
        suptitle="edges",
    ),
    "kernels": lambda: viz.show_kernels(
        {"sobel x": [[1, 0, -1], [2, 0, -2], [1, 0, -1]], "blur": np.full((3, 3), 1 / 9)}
    ),
    "feature maps": lambda: viz.show_feature_maps(_rng.random((1, 6, 12, 12)), ncols=3),
    "filters rgb": lambda: viz.show_filters(_rng.normal(size=(5, 3, 5, 5))),
    "history": lambda: viz.plot_history(FULL_HISTORY),
    "confusion": lambda: viz.plot_confusion_matrix(
        _rng.integers(0, 5, 100), _rng.integers(0, 5, 100)
    ),
    "sliding window 200": lambda: viz.show_sliding_window(200, 5, stride=2, padding=1),
    "sliding window all": lambda: viz.show_sliding_window(
        (5, 7), 3, stride=2, padding=1, position=None
    ),
    "timing": lambda: viz.plot_timing([8, 16], {"naive": [0.1, 0.4], "vectorized": [1e-3, 2e-3]}),
}


@pytest.mark.parametrize("name", list(RENDER_CASES))
def test_renders_with_agg(name):
    render(RENDER_CASES[name]())


INLINE_DISPLAY_CHECK = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import numpy as np
from cnnlib import viz
import matplotlib.pyplot as plt
fig = viz.show_kernels([np.eye(3)])
data, _ = shell.display_formatter.format(fig)
print(sorted(data), plt.get_fignums())
"""


def test_returned_figure_displays_as_png_with_the_inline_backend():
    # What a Jupyter kernel does (its default MPLBACKEND is the inline backend), in a fresh
    # IPython shell in a subprocess so this session's backend is untouched: the returned Figure
    # has a PNG representation, and pyplot holds no figure that would be shown a second time.
    env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    done = subprocess.run([sys.executable, "-c", INLINE_DISPLAY_CHECK], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['image/png', 'text/plain'] []"

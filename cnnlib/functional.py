"""The functional core: stateless numpy forward/backward pairs for every CNN layer.

Layout is NCHW everywhere: ``x`` is ``(N, C, H, W)``, conv weights ``(F, C, KH, KW)``, bias
``(F,)``. Every forward returns ``(out, cache)`` and its backward takes ``(dout, cache)`` and
returns the gradients of the forward's array inputs, in the forward's argument order.

Conventions shared by every function here:

* ``stride``, ``padding`` and ``kernel_size`` accept an int or an ``(h, w)`` pair of ints (bools
  are refused). Output sizes use floor: ``H_out = (H + 2*padding - KH) // stride + 1``.
* Inputs may be numpy arrays or array-likes (nested lists, tuples); they go through
  ``np.asarray``. Floating dtypes are preserved (float32 in, float32 out, float32 gradients);
  when several arrays meet (x, w, b) the result has their common floating dtype; integer and
  bool inputs are computed in float64. Strings, objects and complex numbers raise TypeError.
* A gradient has the dtype of the forward's result; ``dout`` is cast to it.
* A ``cache`` is an opaque dict: pass it back to the matching backward unchanged (it may be
  used more than once). It keeps references to the forward's inputs (no copies), so do not
  modify them in place in between; conv2d's also holds its im2col columns when <= 16 MiB.
* Bad input raises ValueError/TypeError naming the function, the argument and the shapes.

How the work is vectorized (no Python loop over N, C or output positions; only over the KH*KW
kernel offsets): strided windows are read as plain 1-D slices of a "phase image", the input
split by stride phase (``x[a::s, b::s]``) with the padding built in. Each kernel offset is then
one long contiguous slice, so im2col is one strided copy per stride phase, col2im a few in-place adds, and max
pooling KH*KW ``np.maximum`` calls. A few output columns per row that straddle the row end are
computed and thrown away. Convolution is im2col + ONE GEMM for the whole batch (columns
``(C*KH*KW, N*H_out*W')``, output width innermost, the batch folded into the GEMM); its backward reuses the columns
kept in the cache when they are small (<= 16 MiB) and recomputes larger ones (rather than hold
KH*KW copies of x), and for stride 1 with many channels computes ``dx`` as a "full" convolution
of ``dout`` with the flipped kernel instead of GEMM + col2im. Where it moves fewer numbers,
a stride-1 convolution takes the kernel-row route instead: im2col over (channel, kernel row)
only, one GEMM with the weights regrouped (KW*F, C*KH), and KW shifted additions (LeNet's second
layer, 3x3 layers with many channels). With few filters (F <= 8) on a
large batch the GEMM only streams the columns, so it runs in chunks of a few images whose columns
stay in L2 (recomputed, not kept, for the backward pass). When a whole batch's scratch (the
columns or R, and the GEMM's product) passes twice the block size (8 times the L2 cache, 4 MiB
when unknown), im2col and the kernel-row route run in equal blocks of images, forward and
backward: each block's copies, GEMM and shifted sums then meet in the cache instead of main
memory (0.76-0.9x the time on large layers). Past 10 MiB of scratch, and when the process started
with OPENBLAS_THREAD_TIMEOUT <= 21 (OpenBLAS's idle threads then sleep instead of spinning), the
blocks run on as many threads as numpy's BLAS has, each block's GEMMs on one thread, so that the
copies and sums no longer run on one core alone (0.8-0.96x on large layers). Winograd's F(2x2, 3x3) (16 batched
GEMMs on transformed 4x4 tiles) is there but not chosen: its transforms cost more than they saved
here. Every route equals the others to round-off (the tests run each on the same cases;
``make bench-routes`` times them against each other). ``conv2d_backward(..., need_dx=False)``
skips dx (``fit`` does so for a network's first layer). Tiling max pools route dx straight into
its strided views. Large scratch arrays
live in a per-thread workspace that is reused between calls (fresh large temporaries cost
page faults); returned arrays and caches never point into it.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import os
import threading

import numpy as np

from cnnlib import _malloc
from cnnlib.grading.guard import reference

_malloc.keep_freed_memory()  # fresh results every call: keep the freed heap (see cnnlib/_malloc.py)

__all__ = [
    "pad2d",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
    "global_avg_pool2d_forward",
    "global_avg_pool2d_backward",
    "relu_forward",
    "relu_backward",
    "linear_forward",
    "linear_backward",
    "flatten_forward",
    "flatten_backward",
    "batchnorm2d_forward",
    "batchnorm2d_backward",
    "dropout_forward",
    "dropout_backward",
]


# --------------------------------------------------------------------------------------------
# Argument checking, shared by every public function
# --------------------------------------------------------------------------------------------


def _array(op: str, name: str, value, ndim: int | None = None, layout: str = "") -> np.ndarray:
    """``np.asarray(value)`` that refuses non-numbers and (optionally) the wrong ndim."""
    if isinstance(value, np.ndarray):
        a = value
    else:
        try:
            a = np.asarray(value)
        except (ValueError, TypeError):
            raise TypeError(
                f"{op}: {name} must be an array of numbers, got a {type(value).__name__} that "
                "numpy cannot turn into one (ragged nested lists?)"
            ) from None
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{op}: {name} must be an array of real numbers, got {type(value).__name__} "
            f"with dtype {a.dtype}"
        )
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout}, got shape {a.shape}".replace("  ", " "))
    return a


def _float_dtype(*arrays) -> np.dtype:
    """Common floating dtype of the floating arrays among ``arrays`` (float64 if there are none)."""
    floats = [a.dtype for a in arrays if a is not None and a.dtype.kind == "f"]
    return np.result_type(*floats) if floats else np.dtype(np.float64)


def _is_int(v) -> bool:
    if type(v) is int:  # the common case, without the slow abstract-class check
        return True
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or (h, w) pair of ints, each >= minimum, as a pair."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(
            f"{op}: {name} must be an int or a pair of ints (h, w), got {value!r} "
            f"({type(value).__name__})"
        )
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return pair


def _shapes(**arrays) -> str:
    """'x (8, 1, 28, 28), w (6, 3, 5, 5)' for the error messages."""
    return ", ".join(f"{k} {tuple(a.shape)}" for k, a in arrays.items() if a is not None)


def _channels(n: int) -> str:
    return f"{n} channel" + ("" if n == 1 else "s")


def _vector(op: str, name: str, value, length: int, why: str, **context) -> np.ndarray:
    """A 1-D array of the given length (bias, gamma, running stats...)."""
    a = _array(op, name, value)
    if a.shape != (length,):
        raise ValueError(
            f"{op}: {name} must have shape ({length},) ({why}), got {a.shape} "
            f"({_shapes(**context, **{name: a})})"
        )
    return a


def _cache(op: str, cache, forward: str) -> dict:
    if not isinstance(cache, dict) or cache.get("op") != forward:
        raise TypeError(f"{op}: cache must be the cache returned by {forward}, got {type(cache).__name__}")
    return cache


def _dout(op: str, dout, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """dout as an array of the forward output's shape, in the forward's dtype."""
    d = _array(op, "dout", dout)
    if d.shape != tuple(shape):
        raise ValueError(f"{op}: dout has shape {d.shape} but the forward output had shape {tuple(shape)}")
    return d.astype(dtype, copy=False)


def _conv_geometry(op, x, w, stride, padding):
    """Check conv arguments; return ((sh, sw), (ph, pw), (Ho, Wo))."""
    sh, sw = _pair(op, "stride", stride, 1)
    ph, pw = _pair(op, "padding", padding, 0)
    (N, C, H, W), (F, Cw, KH, KW) = x.shape, w.shape
    if C != Cw:
        raise ValueError(f"{op}: x has {_channels(C)} but w expects {Cw} ({_shapes(x=x, w=w)})")
    if KH < 1 or KW < 1:
        raise ValueError(f"{op}: w has an empty {KH}x{KW} kernel ({_shapes(w=w)})")
    Hp, Wp = H + 2 * ph, W + 2 * pw
    if KH > Hp or KW > Wp:
        raise ValueError(
            f"{op}: kernel {KH}x{KW} is larger than the padded input {Hp}x{Wp} "
            f"({_shapes(x=x, w=w)}, padding ({ph}, {pw}))"
        )
    return (sh, sw), (ph, pw), ((Hp - KH) // sh + 1, (Wp - KW) // sw + 1)


def _pool_geometry(op, x, kernel_size, stride):
    """Check pooling arguments; return ((kh, kw), (sh, sw), (Ho, Wo))."""
    kh, kw = _pair(op, "kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else _pair(op, "stride", stride, 1)
    H, W = x.shape[2:]
    if kh > H or kw > W:
        raise ValueError(f"{op}: the {kh}x{kw} pooling window does not fit in the {H}x{W} input ({_shapes(x=x)})")
    return (kh, kw), (sh, sw), ((H - kh) // sh + 1, (W - kw) // sw + 1)


# --------------------------------------------------------------------------------------------
# Scratch buffers and phase images (the machinery behind the vectorized conv and pooling)
# --------------------------------------------------------------------------------------------

_MAX_KEPT_BYTES = 256 * 2**20  # a scratch buffer larger than this is not kept between calls


class _Workspace(threading.local):
    """Named scratch buffers, reused between calls (one set per thread)."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        buf = self.buffers.get(name)
        if buf is None or buf.nbytes < nbytes:
            self.buffers.pop(name, None)
            if nbytes > _MAX_KEPT_BYTES:
                return np.empty(shape, dtype)
            buf = self.buffers[name] = np.empty(max(nbytes, 64), np.uint8)
        return buf[:nbytes].view(dtype).reshape(shape)

    def clear(self) -> None:
        self.buffers.clear()


_workspace = _Workspace()


def _phase_range(a: int, s: int, p: int, n: int, nr: int):
    """Rows r0 .. r0+count-1 of phase a (padded row a + s*r) hold input rows i0, i0+s, ...

    Returns (r0, count, i0), or None when phase a holds no input row (only padding).
    """
    r0 = max(0, -((a - p) // s))  # smallest r with a + s*r - p >= 0
    i0 = a + s * r0 - p
    count = min(nr - r0, (n - 1 - i0) // s + 1) if i0 < n else 0
    return (r0, count, i0) if count > 0 else None


class _Phases:
    """Geometry of a phase image of x for windows (kh, kw), stride (sh, sw), padding (ph, pw).

    The phase image is an array ``(sh, sw, A*B*Hr*Wr + slack)``; phase (a, b) holds the padded
    input's pixels ``xp[..., a + sh*r, b + sw*q]`` at ``(A, B, r, q)``, where (A, B) is (N, C),
    or (C, N) when ``channel_major``. Kernel offset (i, j) then reads window (ho, wo) at
    ``phase (i % sh, j % sw)``, flat position ``off + (A, B, ho, wo)`` with
    ``off = (i // sh) * Wr + j // sw``: the windows of one offset form ONE contiguous slice of
    length A*B*Hr*Wr (positions with ho >= Ho or wo >= Wo are junk and are ignored).

    With ``split_cols`` False only the rows are split: the image is ``(sh, 1, ...)``, phase a
    holding ``xp[..., a + sh*r, q]`` in rows of Wr = sw*Wg padded columns, and offset (i, j) reads
    window (ho, wo) at ``off + sw*(A, B, ho, wo)`` (a grid of Wg windows a row, ``off = (i // sh) *
    Wr + j``): one slice with step ``cstep = sw``. Splitting the columns too copies x with short
    strided rows, which cost the stride-2 layers of a network most of their im2col time.
    """

    def __init__(self, shape, kh, kw, sh, sw, ph, pw, Ho, Wo, channel_major, split_cols=True):
        N, C, H, W = shape
        self.shape, self.stride, self.channel_major = tuple(shape), (sh, sw), channel_major
        self.kernel, self.out = (kh, kw), (Ho, Wo)
        # the image's own strides: (sh, sw), or (sh, 1) when only the rows are split
        self.cstep = 1 if split_cols else sw
        isw = sw if split_cols else 1
        self.istride = (sh, isw)
        self.Hr, self.Wg = Ho + (kh - 1) // sh, Wo + (kw - 1) // sw  # window grid (junk included)
        self.Wr = self.Wg * self.cstep  # the image's row length
        self.A, self.B = (C, N) if channel_major else (N, C)
        self.M = self.A * self.B * self.Hr * self.Wr
        self.slack = ((kh - 1) // sh) * self.Wr + (kw - 1) // isw
        self.size = (sh, isw, self.M + self.slack)
        # Which block of which phase holds which strided slice of x (None: padding only).
        self.copies = {}
        for a in range(sh):
            for b in range(isw):
                rows, cols = _phase_range(a, sh, ph, H, self.Hr), _phase_range(b, isw, pw, W, self.Wr)
                self.copies[a, b] = (rows, cols) if rows and cols else None
        # the phases hold distinct pixels of x (distinct row and column residues): do they hold all?
        self.covers = sum(w[0][1] * w[1][1] for w in self.copies.values() if w) == H * W

    def offsets(self):
        """(i, j, a, b, off) for every kernel offset in row-major order."""
        (kh, kw), (sh, sw) = self.kernel, self.istride
        for i in range(kh):
            for j in range(kw):
                yield i, j, i % sh, j % sw, (i // sh) * self.Wr + j // sw

    def windows(self, img, a, b, n0, m, dtype) -> np.ndarray:
        """The windows of every kernel offset of phase (a, b), of images n0 .. n0+m-1 (channel-major
        images only), as one strided (C, ni, nj, m, Ho*Wg) view: offset (a + sh*i', b + sw*j') at [:, i', j']."""
        (kh, kw), (sh, sw), it = self.kernel, self.istride, np.dtype(dtype).itemsize
        ni, nj, HW = (kh - 1 - a) // sh + 1, (kw - 1 - b) // sw + 1, self.Hr * self.Wr
        return np.ndarray((self.A, ni, nj, m, self.out[0] * self.Wg), dtype, buffer=img[a, b], offset=n0 * HW * it,
                          strides=(self.B * HW * it, self.Wr * it, it, HW * it, self.cstep * it))

    def block(self, ph_img, a, b, off=0):
        """Phase (a, b) from flat position ``off`` on, as an (A, B, Hr, Wr) view."""
        return ph_img[a, b, off : off + self.M].reshape(self.A, self.B, self.Hr, self.Wr)

    def _xview(self, x):
        return x.transpose(1, 0, 2, 3) if self.channel_major else x

    def split(self, x, slot: str) -> np.ndarray:
        """Copy x (N, C, H, W) into a phase image (a workspace buffer), zero where padding."""
        sh, sw = self.istride
        img = _workspace.get(slot, self.size, x.dtype)
        xv = self._xview(x)
        for (a, b), where in self.copies.items():
            blk = self.block(img, a, b)
            if where is None:
                blk[...] = 0
                continue
            (r0, nr, i0), (q0, nq, j0) = where
            blk[:, :, :r0] = 0
            blk[:, :, r0 + nr :] = 0
            blk[:, :, r0 : r0 + nr, :q0] = 0
            blk[:, :, r0 : r0 + nr, q0 + nq :] = 0
            blk[:, :, r0 : r0 + nr, q0 : q0 + nq] = xv[:, :, i0 : i0 + sh * (nr - 1) + 1 : sh, j0 : j0 + sw * (nq - 1) + 1 : sw]
        img[:, :, self.M :] = 0
        return img

    def merge(self, img, dtype, out=None) -> np.ndarray:
        """The inverse of split: (N, C, H, W) from a phase image (padding dropped), fresh or into ``out``."""
        sh, sw = self.istride
        if out is None:
            dx = (np.empty if self.covers else np.zeros)(self.shape, dtype)  # zeros only where no phase holds x
        else:
            dx = out
            if not self.covers:
                dx[...] = 0
        dxv = self._xview(dx)
        for (a, b), where in self.copies.items():
            if where is not None:
                (r0, nr, i0), (q0, nq, j0) = where
                dxv[:, :, i0 : i0 + sh * (nr - 1) + 1 : sh, j0 : j0 + sw * (nq - 1) + 1 : sw] = self.block(img, a, b)[
                    :, :, r0 : r0 + nr, q0 : q0 + nq
                ]
        return dx


def _col2im(dcols, g, dtype) -> np.ndarray:
    """The adjoint of _im2col: sum ``dcols`` (C, KH, KW, N*L) back into a phase image (workspace).

    With a stride: one strided addition per kernel offset. With stride 1, in two stages, so
    that most additions run over long contiguous rows (a strided addition of short rows costs
    several times more per number): first the kernel columns, as the offsets (i, j) of one
    kernel row differ only by a shift of j along the flat (image, output row, column) axis:
    ``rows[c, i]`` is the sum over j of ``dcols[c, i, j]`` shifted by j. A shift moves the last
    columns of one output row onto the first ones of the next, but those are junk columns, zero
    in dcols (dout is zero there). Then one strided addition per kernel row i, of whole image
    rows from row i on: KH of them instead of KH*KW.
    """
    C, KH, KW, NL = dcols.shape
    A, B, L = g.A, g.B, NL // g.B
    if g.stride != (1, 1) or KW == 1:  # one or two offsets per column phase: staging saves nothing
        return _sum_into_phases(g, dtype, ((a, b, off, dcols[:, i, j].reshape(A, B, L)) for i, j, a, b, off in g.offsets()))
    rows = _workspace.get("col2im_rows", (C, KH, NL + KW - 1), dtype)
    rows[:, :, :NL] = dcols[:, :, 0]
    rows[:, :, NL:] = 0
    for j in range(1, KW):
        rows[:, :, j : j + NL] += dcols[:, :, j]
    return _sum_into_phases(g, dtype, ((0, 0, i * g.Wr, rows[:, i, :NL].reshape(A, B, L)) for i in range(KH)))


def _sum_into_phases(g, dtype, terms) -> np.ndarray:
    """A phase image (workspace) holding the sum of ``terms``, zero elsewhere in its blocks.

    Each term (a, b, off, src) adds src (A, B, L), L = Ho*Wr, to phase (a, b) from flat position
    off on, block by block (one block of Hr*Wr per (A, B)). A phase's first term, at position 0,
    is written rather than added to a zeroed image: one pass over the image fewer. The slack
    past each phase's blocks is left as it was (merge reads the blocks only). (A phase image
    whose columns are split by the stride: g.cstep == 1.)
    """
    if g.cstep != 1:
        raise AssertionError("col2im sums into a phase image whose columns are split")
    img = _workspace.get("phase", g.size, dtype)
    HW, written = g.Hr * g.Wr, set()
    for a, b, off, src in terms:
        L = src.shape[-1]
        if (a, b) in written:
            g.block(img, a, b, off).reshape(g.A, g.B, HW)[:, :, :L] += src
            continue
        if off != 0:
            raise AssertionError("a phase's first term must start at position 0")
        written.add((a, b))
        blk = g.block(img, a, b).reshape(g.A, g.B, HW)
        blk[:, :, :L] = src
        blk[:, :, L:] = 0  # (the slack past M is never read: merge takes the blocks only)
    for a, b in set(g.copies) - written:  # phases no term reaches (a stride larger than the kernel)
        img[a, b] = 0
    return img


@functools.lru_cache(maxsize=256)
def _phases(shape, kh, kw, sh, sw, ph, pw, Ho, Wo, channel_major, split_cols=True) -> _Phases:
    """A shared _Phases for this geometry (they are read-only; building one costs Python time)."""
    return _Phases(shape, kh, kw, sh, sw, ph, pw, Ho, Wo, channel_major, split_cols)


def _conv_phases(x_shape, kh, kw, stride, padding, Ho, Wo) -> _Phases:
    """The phase image of the im2col route: channel-major, only the rows split by the stride.

    With a column stride of 2, splitting the columns as well copies x in rows of W/2 strided
    numbers; copying whole rows instead, and reading the windows with a step of 2, took the
    forward pass (on a 2-core EPYC, in blocks of 9 calls after 0.25 s pauses as in bench_ops, 12
    rounds A/B in one process) 0.69x the time for 32x32x32x32 -> 64 3x3 stride 2, 0.81x for 5x5
    stride 2, 0.76x for 1x1 stride 2, 0.95x for 11x11 stride 4. (The backward pass's col2im keeps
    the column-split image: there each offset's addition runs over contiguous numbers.)
    """
    return _phases(tuple(x_shape), kh, kw, *stride, *padding, Ho, Wo, True, False)


def _im2col(x, kh, kw, stride, padding, Ho, Wo, keep=False):
    """im2col of x: ``(C*KH*KW, N*Ho*Wg)`` with the output width innermost.

    Column ``(n, ho, wo)`` for ``wo < Wo`` holds the window of output pixel (ho, wo) of image n;
    the ``Wg - Wo`` extra columns per output row are junk. The columns go into the workspace,
    or into a fresh array when ``keep``. Returns (cols, phases).
    """
    N, C = x.shape[:2]
    g = _conv_phases(x.shape, kh, kw, stride, padding, Ho, Wo)
    img = g.split(x, "phase")
    L = Ho * g.Wg
    cols = np.empty((C, kh, kw, N, L), x.dtype) if keep else _workspace.get("cols", (C, kh, kw, N, L), x.dtype)
    # One copy per phase: the kernel offsets (i, j) = (a + sh*i', b + sw*j') of phase (a, b) start
    # at i'*Wr + j' in it, so all their windows form one strided (C, ni, nj, N, L) view.
    sh, sw = g.istride
    for a in range(min(sh, kh)):
        for b in range(min(sw, kw)):
            np.copyto(cols[:, a::sh, b::sw], g.windows(img, a, b, 0, N, x.dtype))
    return cols.reshape(C * kh * kw, N * L), g


def _conv(x, w, b, stride, padding, Ho, Wo, keep, out):
    """Unchecked convolution (im2col + one GEMM) into ``out`` (N, F, Ho, Wo); returns out and the columns."""
    N = x.shape[0]
    F, _, KH, KW = w.shape
    cols, g = _im2col(x, KH, KW, stride, padding, Ho, Wo, keep)
    prod = _workspace.get("gemm", (F, cols.shape[1]), x.dtype)
    np.matmul(w.reshape(F, cols.shape[0]), cols, out=prod)
    return _from_grid(prod, g.Wg, b, out), cols


def _from_grid(flat, Wg, b, out) -> np.ndarray:
    """Write a GEMM's (F, n*Ho*Wg) result (a grid of Wg columns a row) into ``out`` (n, F, Ho, Wo): junk columns dropped, bias added.

    The bias goes onto ``flat`` itself (a scratch buffer, changed in place): along its long
    contiguous rows, then one plain copy does the transpose. Adding it during the transposing
    copy took 1.3-1.7x as long (np.add walks the short rows more slowly than np.copyto).
    """
    n, F, Ho, Wo = out.shape
    if b is not None:
        flat += b.reshape(F, 1)
    np.copyto(out, flat.reshape(F, n, Ho, Wg)[:, :, :, :Wo].transpose(1, 0, 2, 3))
    return out


# im2col columns per batch chunk on the chunked route (stays in L2): 6 images of LeNet's first layer.
# On a 2-core Xeon (2 MiB L2 per core) 540 KiB took 0.92x the time of 384 KiB on that layer and 0.96x
# on 64x1x32x32 -> 6@5x5 (forward + backward, in-process A/B); 720 KiB and up took 1.7-1.9x.
_CHUNK_BYTES = 540 * 2**10
_CHUNK_MAX_F = 8  # up to this many filters the whole-batch GEMM is memory-bound: chunk it


def _chunk_images(C, KH, KW, N, L, F, itemsize):
    """Images per chunk on the chunked route, or None for one GEMM over the whole batch.

    With few filters (LeNet's first layer: 6) the GEMM does F multiply-adds per number it reads
    from the im2col columns, so for a large batch its time goes into reading columns that no
    longer fit in the cache. In chunks of a few images, each chunk's columns are written and
    read again while in L2 (and are recomputed by the backward pass instead of being kept).
    """
    per_image = C * KH * KW * L * itemsize
    if _CONV_ALGO == "chunked":
        return max(1, N // 3)
    if _CONV_ALGO != "auto" or F > _CHUNK_MAX_F or per_image * N <= 2 * _CHUNK_BYTES:
        return None
    nc = max(1, _CHUNK_BYTES // per_image)
    return nc if nc < N else None


def _cols_chunk(img, g, C, kh, kw, n0, m, dtype):
    """im2col columns (C*kh*kw, m*L) of images n0 .. n0+m-1, read from the whole batch's phase image.

    The rows are padded by 16 numbers so that their stride is not a multiple of 4 KiB (which
    makes OpenBLAS several times slower through cache aliasing).
    """
    (sh, sw), it = g.istride, np.dtype(dtype).itemsize
    L = g.out[0] * g.Wg
    rs = m * L + 16
    buf = _workspace.get("cols_chunk", (C * kh * kw * rs,), dtype)
    target = np.ndarray((C, kh, kw, m, L), dtype, buffer=buf, strides=(kh * kw * rs * it, kw * rs * it, rs * it, L * it, it))
    for a in range(min(sh, kh)):
        for b in range(min(sw, kw)):
            np.copyto(target[:, a::sh, b::sw], g.windows(img, a, b, n0, m, dtype))
    return np.ndarray((C * kh * kw, m * L), dtype, buffer=buf, strides=(rs * it, it))


def _conv_chunked(x, w, b, stride, padding, Ho, Wo, nc):
    """The im2col convolution in chunks of nc images (see _chunk_images): a fresh (N, F, Ho, Wo) array."""
    N, C = x.shape[:2]
    F, _, KH, KW = w.shape
    g = _conv_phases(x.shape, KH, KW, stride, padding, Ho, Wo)
    img = g.split(x, "phase")
    L = Ho * g.Wg
    out = np.empty((N, F, Ho, Wo), x.dtype)
    w2 = w.reshape(F, C * KH * KW)
    prod_buf = _workspace.get("gemm", (F * nc * L,), x.dtype)
    for n0 in range(0, N, nc):
        m = min(nc, N - n0)
        prod = prod_buf[: F * m * L].reshape(F, m * L)
        np.matmul(w2, _cols_chunk(img, g, C, KH, KW, n0, m, x.dtype), out=prod)
        _from_grid(prod, g.Wg, b, out[n0 : n0 + m])
    return out


# --------------------------------------------------------------------------------------------
# The kernel-row route: stride-1 convolutions from an im2col over (channel, kernel row) only
# --------------------------------------------------------------------------------------------
#
# With stride 1, the kernel columns j of one kernel row read the same image row shifted by j. So
# instead of copying C*KH*KW rows of windows, copy C*KH rows (R[c, i] = the phase image from row
# i on: KW times less copying), multiply once by the weights regrouped as (KW*F, C*KH), and add
# the KW products shifted by j along the flat (image, output row, column) axis: Y_j[:, p + j]
# summed over j is the output at p. The same FLOPs as im2col in one GEMM with a shorter K and a
# taller M; the backward pass is its exact adjoint (dY_j = dout shifted by j, dW' = dY @ R^T,
# dR = W'^T @ dY, then one strided addition per kernel row back into the phase image). As in
# the im2col route, the Wr - Wo junk columns per output row are computed and ignored; a shift
# moves the junk of one row onto the first columns of the next, never a valid output.


def _rows_padded(K: int) -> int:
    """R's row count for K = C*KH real rows: up to the next multiple of 16 when that adds at most
    an eighth (the extra rows are zero, and so are W''s extra columns).

    OpenBLAS's kernels run shapes whose K (forward) or N and M (dw and dR) is a multiple of 16
    faster. Measured with 2 threads on a 2-core Xeon, (80, K) @ (K, 8964) and its two backward
    GEMMs: K = 30 -> 32 dw 0.82x, dR 0.90x, forward the same; 15 -> 16 dw 0.59x, dR 0.78x; 45 -> 48
    and 60 -> 64 0.92-0.96x; but 9 -> 16, 20 -> 24 and 24 -> 32 cost 1.1-1.3x (more rows to copy
    and multiply than the kernels save).
    """
    Kp = -(-K // 16) * 16
    return Kp if 8 * (Kp - K) <= K else K


def _rows_layout(x_shape, KH, KW, padding, Ho, Wo, itemsize):
    """(phases, NL, rs): the flat length N*Ho*Wr and the row stride of R and Y (>= NL + KW - 1)."""
    N = x_shape[0]
    g = _phases(tuple(x_shape), KH, KW, 1, 1, *padding, Ho, Wo, True)
    NL = N * Ho * g.Wr
    rs = NL + KW - 1
    if (rs * itemsize) % 4096 == 0:  # a row stride that is a multiple of 4 KiB makes OpenBLAS slow
        rs += 16
    return g, NL, rs


def _rows_im2col(x, KH, layout, keep=False):
    """R (Kp, rs), Kp = _rows_padded(C*KH): row (c, i) holds, per image, the Ho*Wr positions of
    the phase image from row i on; rows past C*KH are zero."""
    N, C = x.shape[:2]
    g, NL, rs = layout
    img, it, L = g.split(x, "phase"), x.itemsize, NL // N
    Kp = _rows_padded(C * KH)
    R = np.empty((Kp, rs), x.dtype) if keep else _workspace.get("rows_r", (Kp, rs), x.dtype)
    src = np.ndarray((C, KH, N, L), x.dtype, buffer=img[0, 0], offset=0,
                     strides=(N * g.Hr * g.Wr * it, g.Wr * it, g.Hr * g.Wr * it, it))
    np.copyto(R[: C * KH, :NL].reshape(C, KH, N, L), src)
    R[: C * KH, NL:] = 0
    R[C * KH :] = 0
    return R


def _rows_weights(w):
    """w (F, C, KH, KW) regrouped as W' (KW*F, Kp): row (j, f), column (c, i); columns past C*KH zero."""
    F, C, KH, KW = w.shape
    Kp = _rows_padded(C * KH)
    if Kp == C * KH:
        return np.ascontiguousarray(w.transpose(3, 0, 1, 2)).reshape(KW * F, C * KH)
    Wp = np.zeros((KW * F, Kp), w.dtype)
    Wp[:, : C * KH] = w.transpose(3, 0, 1, 2).reshape(KW * F, C * KH)
    return Wp


def _conv_rows(x, w, b, padding, Ho, Wo, keep, out):
    """The kernel-row convolution (stride 1) into ``out`` (N, F, Ho, Wo); returns out, and R for
    the backward pass when ``keep``, else None."""
    F, C, KH, KW = w.shape
    layout = g, NL, rs = _rows_layout(x.shape, KH, KW, padding, Ho, Wo, x.itemsize)
    R = _rows_im2col(x, KH, layout, keep)
    Y = _workspace.get("rows_y", (KW, F, rs), x.dtype)
    np.matmul(_rows_weights(w), R, out=Y.reshape(KW * F, rs))
    acc = _workspace.get("rows_sum", (F, NL), x.dtype)
    np.add(Y[0, :, :NL], Y[1, :, 1 : 1 + NL], out=acc)  # KW >= 2 on this route
    for j in range(2, KW):
        acc += Y[j, :, j : j + NL]
    return _from_grid(acc, g.Wr, b, out), (R if keep else None)


def _conv_rows_backward(dout, x, w, padding, R, need_dx, dx_out):
    """(dx or None, dw) of _conv_rows, dx written into ``dx_out``; R from the forward pass, or
    None to recompute it."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = dout.shape[2:]
    layout = g, NL, rs = _rows_layout(x.shape, KH, KW, padding, Ho, Wo, x.itemsize)
    if R is None:
        R = _rows_im2col(x, KH, layout)
    # dY_j = dout shifted by j: dY[0] is dout on the (F, N, Ho, Wr) grid, zero at the junk columns
    # (dY takes Y's buffer and dR the forward sum's: each pair is never live at once, and the smaller
    # working set stays in cache: 0.85-0.96x the time of separate buffers on LeNet's second layer)
    dY = _workspace.get("rows_y", (KW, F, rs), x.dtype)
    d0 = dY[0, :, :NL].reshape(F, N, Ho, g.Wr)
    d0[:, :, :, Wo:] = 0
    d0[:, :, :, :Wo] = dout.transpose(1, 0, 2, 3)
    dY[0, :, NL:] = 0
    for j in range(1, KW):
        dY[j, :, :j] = 0
        dY[j, :, j : j + NL] = dY[0, :, :NL]
        dY[j, :, j + NL :] = 0
    dY2 = dY.reshape(KW * F, rs)
    dWp = np.matmul(dY2, R.T)  # (KW*F, Kp): 0.76x the time of R @ dY^T for LeNet's 2nd layer, same for large ones
    dw = np.ascontiguousarray(dWp[:, : C * KH].reshape(KW, F, C, KH).transpose(1, 2, 3, 0))
    if not need_dx:
        return None, dw
    Wp = _rows_weights(w)
    dRp = _workspace.get("rows_sum", (Wp.shape[1], rs), x.dtype)
    np.matmul(Wp.T, dY2, out=dRp)
    dR = dRp[: C * KH].reshape(C, KH, rs)
    L = NL // N
    img = _sum_into_phases(g, x.dtype, ((0, 0, i * g.Wr, dR[:, i, :NL].reshape(C, N, L)) for i in range(KH)))
    return g.merge(img, x.dtype, dx_out), dw


def _l2_cache_bytes(root="/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """Size of the first CPU's level-2 cache as Linux's sysfs gives it ("2048K"), or None."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    try:
        for entry in sorted(os.listdir(root)):
            if not entry.startswith("index"):
                continue
            d = os.path.join(root, entry)
            with open(os.path.join(d, "level")) as f_level, open(os.path.join(d, "type")) as f_type:
                if f_level.read().strip() != "2" or f_type.read().strip() == "Instruction":
                    continue
            with open(os.path.join(d, "size")) as f_size:
                size = f_size.read().strip()
            return int(size[:-1]) * units[size[-1]] if size[-1:] in units else int(size)
    except (OSError, ValueError):
        return None
    return None


def _block_bytes(l2) -> int:
    """Scratch per block of images (see _block_images): 8 times the L2 cache, 4 MiB when unknown."""
    return min(max(8 * l2, 2 * 2**20), 32 * 2**20) if l2 else 4 * 2**20


_KEEP_COLS_BYTES = 16 * 2**20  # conv2d_forward keeps im2col columns up to this size in the cache
_BLOCK_BYTES = _block_bytes(_l2_cache_bytes())  # scratch per block of images on the blocked routes
_BLOCKING = "auto"  # "auto", or "always" / "never" (the tests check both)


def _block_images(N, per_image):
    """Images per block for a convolution whose scratch is ``per_image`` bytes an image, or None.

    A whole batch's im2col columns (or R) and GEMM product can take tens of MB, and then every
    pass over them (the copies in, the GEMM's output, the shifted sums, the transpose back to
    NCHW) goes to main memory. In blocks of about _BLOCK_BYTES they stay in the last-level cache
    from one pass to the next. Blocks only pay for batches of at least twice that size (below
    it, the per-call time of the extra passes costs more than memory traffic saves). The best
    block grows with the L2 cache: 8 times it (_block_bytes). Measured forward + backward, A/B
    against the whole batch: on a 2-core EPYC (512 KiB of L2 a core, so 4 MiB blocks)
    32x64x32x32 -> 64 3x3 0.80-0.84x, 32x32x32x32 -> 64 3x3 stride 2 0.84-0.91x, 64x16x28x28 ->
    32 3x3 0.76-0.87x, 64x3x32x32 -> 32 3x3 0.84-0.88x, while blocks of 2 MiB lost on some of
    these (1.04-1.17x) and of 8 MiB gained less (0.82-1.0x); on a 2-core Xeon (2 MiB of L2, so 16
    MiB blocks) 32x64x32x32 -> 64 3x3 0.85x and the others 0.99-1.01x, while 4 MiB blocks cost
    1.14x on the stride-2 layer and 1.08x on 64x32x14x14 -> 16 5x5.
    """
    if _BLOCKING != "auto":
        return max(1, N // 3) if _BLOCKING == "always" and N > 1 else None
    if per_image * N < 2 * _BLOCK_BYTES:
        return None
    blocks = -(-N // max(1, _BLOCK_BYTES // per_image))
    return -(-N // blocks) if blocks > 1 else None  # equal blocks: a short last one costs a call for little work


# --------------------------------------------------------------------------------------------
# Blocks on several threads
# --------------------------------------------------------------------------------------------
#
# A numpy convolution spends a third to a half of its time outside the GEMMs, in copies and
# shifted sums that run on one core. A large convolution can instead run its blocks of images on
# as many Python threads as numpy's BLAS has threads, each block's GEMMs single-threaded (numpy
# releases the GIL in its loops and BLAS calls; each thread has its own scratch, _Workspace being
# thread-local). That only pays when OpenBLAS's own threads sleep soon after a GEMM: by default
# they spin for 2^28 cycles (about 0.1 s) after each one, and a block thread sharing a core with
# a spinning one runs at a fraction of its speed. So "auto" takes threads only when the process
# started with OPENBLAS_THREAD_TIMEOUT <= 21 (a spin of 2^21 cycles, under a millisecond; `make
# lab` and the benchmarks set 21). Measured forward + backward, A/B against one thread with
# 2-threaded GEMMs, a 2-threaded (64, 1024) @ (1024, 512) product before each pass as in a network,
# on a 2-core Xeon: with OPENBLAS_THREAD_TIMEOUT=21 32x64x32x32 -> 64 3x3 0.80x, 64x16x28x28 ->
# 32 3x3 0.81x, 64x3x32x32 -> 32 3x3 0.89x, 32x32x32x32 -> 64 3x3 stride 2 0.96x (alone, without
# the product: 0.74-0.80x); with the default spin 1.24-1.53x. A LeNet training step (small GEMMs,
# no threads) took the same time at 21 (4.58 vs 4.60-4.70 ms; a whole epoch 11,774-11,935 vs
# 11,954-12,077 images/s) and 1.14x at 4, where every GEMM wakes sleeping threads. What 21 costs:
# the first calls after the process sat idle wake OpenBLAS's sleeping threads (LeNet's first layer,
# forward + backward, 6.8-7.0 ms instead of 2.7-2.8 ms a call over 5 calls after a 0.25 s pause;
# 2.2 ms either way in a loop). Small convolutions lose even then (32x32x16x16 -> 32 3x3, 6.8 MiB of
# scratch, 1.42x; LeNet's second layer 1.44x), so only a batch with at least _THREAD_MIN_BYTES
# of scratch takes threads.
#
# For the call, each thread is kept on a CPU of its own (sched_setaffinity; the caller's CPUs are
# given back after it). Left to itself, Linux often woke the worker on the CPU of the thread that
# woke it, and the two took turns on one core: on a 2-core EPYC (KVM), two single-threaded GEMMs
# in parallel took 1.7-2.2 ms instead of 0.85 (1.55 one after the other), both threads seen on
# one CPU. Forward + backward, blocks of 9 calls after 0.25 s pauses, 8 rounds A/B in one process:
# 32x32x32x32 -> 64 3x3 stride 2 5.45 vs 7.53 ms (median), 64x16x28x28 -> 32 3x3 8.13 vs 9.10,
# 32x64x32x32 -> 64 3x3 the same (25.4); in a loop without pauses the same (6.2 vs 6.1).


def _blas_naps(value) -> bool:
    """True when OPENBLAS_THREAD_TIMEOUT (``value``, a string or None) makes OpenBLAS's idle
    threads sleep within 2^21 cycles (OpenBLAS reads it once, when it loads)."""
    try:
        return value is not None and int(value) <= 21
    except ValueError:
        return False


_BLAS_NAPS = _blas_naps(os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
_THREADS = "auto"  # "auto" (threads when _BLAS_NAPS), or an int: threads for a convolution's blocks (tests force 1, 2, 3)
_THREAD_MIN_BYTES = 10 * 2**20  # the batch's scratch from which "auto" runs blocks on several threads
_BLOCKS_PER_THREAD = 2  # blocks per thread when a convolution runs on several (_block_plan)
_pool_lock = threading.Lock()  # one multi-threaded convolution at a time (the BLAS limit is process-wide)
_pool: dict = {}  # the executor and the BLAS controller, made on first use


def _blas():
    """threadpoolctl's controller of the loaded BLAS libraries (made once, on first use)."""
    if "blas" not in _pool:
        from threadpoolctl import ThreadpoolController

        _pool["blas"] = ThreadpoolController().select(user_api="blas")
    return _pool["blas"]


def _cpus() -> list:
    """The CPUs this thread may run on (sorted; empty where the OS does not tell)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def _pin(cpus) -> bool:
    """Keep the calling thread on ``cpus`` (Linux: pid 0 is the calling thread); False if refused."""
    try:
        os.sched_setaffinity(0, cpus)
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _conv_threads(N: int, per_image: int) -> int:
    """Threads for a convolution of N images needing ``per_image`` bytes of scratch each."""
    if _THREADS != "auto":
        return max(1, min(int(_THREADS), N))
    if not _BLAS_NAPS or N < 2 or per_image * N < _THREAD_MIN_BYTES:
        return 1
    threads = max((lib.num_threads for lib in _blas().lib_controllers), default=1)
    return max(1, min(threads, N, len(_cpus()) or threads))


def _block_plan(N: int, per_image: int):
    """(m, threads): images per block (None: the whole batch in one) and threads to run them on.

    The blocks that keep scratch in cache (_block_images), made _BLOCKS_PER_THREAD times a multiple
    of the threads in number: each thread takes the next block nobody has taken, so a thread that
    runs slower (a busier CPU, a late start) takes fewer. Measured forward + backward against one
    block a thread each (blocks of 9 calls after pauses, 10 rounds A/B in one process, 2-core EPYC):
    32x64x32x32 -> 64 3x3 0.93x forward and 0.88x backward, 32x32x32x32 -> 64 3x3 stride 2
    0.97x and 0.96x, 64x16x28x28 -> 32 3x3 and 32x16x32x32 -> 32 5x5 stride 2 the same.
    """
    m, threads = _block_images(N, per_image), _conv_threads(N, per_image)
    if threads > 1:
        blocks = 1 if m is None else -(-N // m)
        blocks = -(-blocks // threads) * threads * _BLOCKS_PER_THREAD
        m = -(-N // min(blocks, N))
    return m, threads


def _executor(workers: int):
    """The worker threads (made on first use; again in a forked child, whose threads are gone)."""
    from concurrent.futures import ThreadPoolExecutor

    if _pool.get("pid") != os.getpid() or _pool.get("workers", 0) < workers:
        if _pool.get("pid") == os.getpid():
            _pool["executor"].shutdown(wait=True)
        _pool.update(executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cnnlib-conv"),
                     workers=workers, pid=os.getpid())
    return _pool["executor"]


def _run_blocks(fn, parts, results, claim, stop, cpus=None) -> None:
    """results[k] = fn(parts[k]) for each block k this thread claims, until none is left (or a
    thread failed: ``stop``). On a worker thread, kept on ``cpus`` when given."""
    if cpus:
        _pin(cpus)
    try:
        while (k := claim()) is not None:
            results[k] = fn(parts[k])
    except BaseException:
        stop.set()  # the other threads take no further block
        raise


def _map_blocks(fn, N: int, m, threads: int) -> list:
    """[fn(part) for each block part of the batch], in order; on ``threads`` threads when > 1, each
    thread taking the next block nobody has taken (a slower thread takes fewer), the BLAS kept to
    one thread meanwhile.

    One thread when another thread is in a multi-threaded convolution (the BLAS limit is the
    process's), or when no thread can start (a process limit, as in the grader's sandbox).
    """
    from concurrent.futures import wait

    parts = [slice(n0, n0 + (m or N)) for n0 in range(0, N, m or N)]
    threads = min(threads, len(parts))
    if threads < 2 or not _pool_lock.acquire(blocking=False):
        return [fn(part) for part in parts]
    cpus, pinned = _cpus(), False
    results, claimed, stop, claim_lock = [None] * len(parts), itertools.count(), threading.Event(), threading.Lock()

    def claim():  # the next block no thread has taken, or None
        with claim_lock:
            k = next(claimed)
        return k if k < len(parts) and not stop.is_set() else None

    try:
        # each thread on a CPU of its own for the call: left to itself, Linux often wakes a worker
        # on the CPU of the thread that woke it, and the two then take turns on one core
        pinned = len(cpus) >= threads and _pin({cpus[0]})
        with _blas().limit(limits=1, user_api="blas"):
            futures = []
            try:
                pool = _executor(threads - 1)
                for t in range(1, threads):  # (unpinned: a worker pinned by an earlier call may run anywhere again)
                    futures.append(pool.submit(_run_blocks, fn, parts, results, claim, stop, {cpus[t]} if pinned else set(cpus)))
            except RuntimeError:  # "can't start new thread": the threads that started share the blocks
                for key in ("executor", "workers", "pid"):  # (the BLAS controller stays)
                    _pool.pop(key, None)
            try:
                _run_blocks(fn, parts, results, claim, stop)
            finally:
                wait(futures)  # never leave with blocks still running (the BLAS limit ends here)
            for f in futures:
                f.result()  # a worker's error reaches the caller
            return results
    finally:
        if pinned:
            _pin(cpus)
        _pool_lock.release()


_DX_STRATEGY = "auto"  # "auto", or force "full" / "col2im" (the tests check both ways)


def _dx_by_full_conv(C, F, KH, KW, H, W, Ho, Wo, stride, padding) -> bool:
    """Choose how conv2d_backward computes dx: True = full conv of dout, False = GEMM + col2im.

    The full convolution (stride 1 only) reads an im2col of dout, F*KH*KW rows of about H*W;
    GEMM + col2im writes, re-reads and scatters C*KH*KW rows of Ho*Wo. Same FLOPs, so pick the
    smaller memory traffic: the full conv wins for many input channels, loses for C = 1.
    """
    if stride != (1, 1) or padding[0] > KH - 1 or padding[1] > KW - 1:
        return False
    if _DX_STRATEGY != "auto":
        return _DX_STRATEGY == "full"
    return 2 * F * H * (W + KW - 1) < 3 * C * Ho * (Wo + KW - 1)


# --------------------------------------------------------------------------------------------
# Winograd F(2x2, 3x3): 3x3 stride-1 convolutions as 16 batched GEMMs on 4x4 input tiles
# --------------------------------------------------------------------------------------------
#
# Each 2x2 block of outputs is A^T [(G g G^T) * (B^T d B)] A for its 4x4 input tile d and the 3x3
# filter g (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks"): summed over
# channels, the elementwise product becomes, for each of the 16 tile positions, one GEMM
# (F, C) @ (C, tiles): 16 multiplications per output tile instead of 36, 2.25x fewer FLOPs. The
# transforms only add and subtract (and halve, in G), exactly in float64 and to round-off in
# float32. The backward pass runs in the same transformed domain (the gradient of that exact
# computation): dU = dM @ V^T gives dw, dV = U^T @ dM gives the input tiles' gradients, which
# overlap-add back into dx.
#
# It is not chosen by default: measured forward + backward against the im2col route, A/B
# interleaved on this course's 2-core machine (numpy 2.4 + OpenBLAS 0.3.31), Winograd was slower
# on every shape tried: 32x64x32x32 -> 64 1.43x (148 vs 104 ms), 32x32x16x16 -> 32 1.6x, 128x16x14x14
# -> 32 1.8x, 16x64x56x56, 8x256x14x14, 32x128x8x8 and 64x16x28x28 1.1-1.6x, chunked or not:
# its transforms read and write 4x the input several times, and that memory traffic cost more
# than the GEMM time they save. On a 2-core Xeon (2 MiB of L2) it lost too, 85 vs 47 ms on
# 32x64x32x32 -> 64, and not only to the transforms: its 16 products (64, 64) @ (64, tiles), K = 64,
# ran at about 134 GFLOP/s where the kernel-row route's longer-K GEMMs ran at 250, so half the
# FLOPs took the same 27-30 ms. Set _CONV_ALGO = "winograd" to use it (e.g. on a machine with
# more memory bandwidth per core); it matches the direct route to round-off either way.

_CONV_ALGO = "auto"  # "auto", or force "winograd" / "rows" / "im2col" / "chunked" (the tests check each)
_WINOGRAD_BY_DEFAULT = False  # "auto" takes Winograd for 3x3 stride-1 convs with >= 16 channels and filters


def _use_rows(x_shape, w_shape, stride) -> bool:
    """The kernel-row route: forced, or (auto) stride 1 where it moves fewer numbers than im2col.

    Per output position, im2col writes and reads C*KH*KW column entries; this route writes and
    reads C*KH of R and KW*F of Y. So it wins with many channels or wide kernels (LeNet's second
    layer, 6 -> 16 5x5: 110 vs 150; 64 -> 64 3x3: 384 vs 576) and loses with few input channels
    and many filters (an RGB input layer, 3 -> 32 3x3: 105 vs 27). Measured forward + backward,
    A/B against im2col: 0.48-0.86x where the rule takes it, 1.03-1.43x where it does not.
    """
    F, C, KH, KW = w_shape
    if tuple(stride) != (1, 1) or KW == 1:
        return False
    if _CONV_ALGO != "auto":
        return _CONV_ALGO == "rows"
    return C * KH + KW * F <= C * KH * KW


def _use_winograd(x_shape, w_shape, stride) -> bool:
    """Forced, or (with _WINOGRAD_BY_DEFAULT) 3x3, stride 1, >= 16 channels and filters."""
    (N, C, H, W), (F, _, KH, KW) = x_shape, w_shape
    if (KH, KW) != (3, 3) or tuple(stride) != (1, 1):
        return False
    if _CONV_ALGO != "auto":
        return _CONV_ALGO == "winograd"
    return _WINOGRAD_BY_DEFAULT and C >= 16 and F >= 16


def _wino_filter(w):
    """U = G g G^T for every (f, c): (4, 4, F, C), in w's dtype."""
    G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], w.dtype)
    return np.einsum("ai,fcij,bj->abfc", G, w, G, optimize=True)


def _wino_geometry(x_shape, padding):
    """Tiles of a 3x3 stride-1 conv: (phases, th, tw, Ho, Wo).

    The 4x4 input tiles at stride 2 are read from a phase image (see _Phases) with windows 4x4,
    stride 2: tile element (u, v) of every tile is ONE contiguous slice, phase (u % 2, v % 2)
    shifted by (u // 2) * Wr + v // 2, so every transform is a few long 1-D additions. Tiles at
    ty = th or tx = tw (one row and column per image) are junk: computed and thrown away.
    """
    N, C, H, W = x_shape
    ph, pw = padding
    Ho, Wo = H + 2 * ph - 2, W + 2 * pw - 2
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    return _phases(tuple(x_shape), 4, 4, 2, 2, ph, pw, th, tw, True), th, tw, Ho, Wo


def _wino_input(x, g, fresh=True):
    """V = B^T d B for every tile: (16, C, N*Hr*Wr), fresh or in the workspace (B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]])."""
    C = x.shape[1]
    img = g.split(x, "phase")
    M, Wr = g.M, g.Wr
    T = _workspace.get("wino_t", (4, 2, M + 1), x.dtype)
    for b in range(2):  # down each tile column: rows u = 0..3 are phases (0, b), (1, b) shifted 0 or Wr
        p0, p1 = img[0, b, : M + 1], img[1, b, : M + 1]
        p2, p3 = img[0, b, Wr : Wr + M + 1], img[1, b, Wr : Wr + M + 1]
        np.subtract(p0, p2, out=T[0, b])
        np.add(p1, p2, out=T[1, b])
        np.subtract(p2, p1, out=T[2, b])
        np.subtract(p1, p3, out=T[3, b])
    V = np.empty((4, 4, M), x.dtype) if fresh else _workspace.get("wino_v", (4, 4, M), x.dtype)
    c0, c1, c2, c3 = T[:, 0, :M], T[:, 1, :M], T[:, 0, 1:], T[:, 1, 1:]  # along each tile row
    np.subtract(c0, c2, out=V[:, 0])
    np.add(c1, c2, out=V[:, 1])
    np.subtract(c2, c1, out=V[:, 2])
    np.subtract(c1, c3, out=V[:, 3])
    return V.reshape(16, C, M // C)


def _wino_output(Mt, g, N, F, th, tw, Ho, Wo, b, dtype, out=None):
    """out = A^T M A per tile (A^T = [[1,1,1,0],[0,1,-1,-1]]): (N, F, Ho, Wo) (+ bias), fresh or into ``out``."""
    Hr, Wr = g.Hr, g.Wr
    m = Mt.reshape(4, 4, -1)
    s = _workspace.get("wino_s", (2, 4, m.shape[2]), dtype)
    np.add(m[0], m[1], out=s[0])
    s[0] += m[2]
    np.subtract(m[1], m[2], out=s[1])
    s[1] -= m[3]
    y = _workspace.get("wino_y", (2, 2, m.shape[2]), dtype)
    np.add(s[:, 0], s[:, 1], out=y[:, 0])
    y[:, 0] += s[:, 2]
    np.subtract(s[:, 1], s[:, 2], out=y[:, 1])
    y[:, 1] -= s[:, 3]
    even = Ho % 2 == 0 and Wo % 2 == 0
    out = np.empty((N, F, Ho, Wo), dtype) if out is None else out
    full = out if even else _workspace.get("wino_full", (N, F, 2 * th, 2 * tw), dtype)
    full6 = full.reshape(N, F, th, 2, tw, 2)
    for a in range(2):
        for bb in range(2):
            src = y[a, bb].reshape(F, N, Hr, Wr)[:, :, :th, :tw].transpose(1, 0, 2, 3)
            if b is None or not even:
                np.copyto(full6[:, :, :, a, :, bb], src)
            else:
                np.add(src, b.reshape(F, 1, 1), out=full6[:, :, :, a, :, bb])
    if not even:
        if b is None:
            np.copyto(out, full[:, :, :Ho, :Wo])
        else:
            np.add(full[:, :, :Ho, :Wo], b.reshape(F, 1, 1), out=out)
    return out


_WINO_CHUNK_BYTES = 4 * 2**20  # transformed tiles per batch chunk (larger batches run in chunks)


def _wino_chunk(x_shape, padding, itemsize):
    """Images per chunk so that a chunk's transformed tiles V stay in cache, or None (no chunks)."""
    N, C, H, W = x_shape
    th, tw = (H + 2 * padding[0] - 1) // 2, (W + 2 * padding[1] - 1) // 2
    per_image = 16 * C * (th + 1) * (tw + 1) * itemsize
    nc = max(1, _WINO_CHUNK_BYTES // per_image)
    return nc if nc < N else None


def _wino_forward(x, w, b, padding, fresh_v=True, out=None):
    """Winograd forward: (out, V) with V the transformed input tiles (the backward needs them)."""
    N, C, H, W = x.shape
    F = w.shape[0]
    g, th, tw, Ho, Wo = _wino_geometry(x.shape, padding)
    V = _wino_input(x, g, fresh_v)
    U = np.ascontiguousarray(_wino_filter(w).reshape(16, F, C))
    Mt = _workspace.get("wino_m", (16, F, V.shape[2]), x.dtype)
    np.matmul(U, V, out=Mt)
    return _wino_output(Mt, g, N, F, th, tw, Ho, Wo, b, x.dtype, out), V


def _wino_backward(dout, x, w, padding, V, need_dx):
    """(dx or None, dw) of the Winograd forward, computed in the transformed domain."""
    N, C, H, W = x.shape
    F = w.shape[0]
    g, th, tw, Ho, Wo = _wino_geometry(x.shape, padding)
    Hr, Wr, M = g.Hr, g.Wr, g.M
    if V is None:
        V = _wino_input(x, g, fresh=False)
    P = V.shape[2]
    # dout split by output phase (a, b) onto the tile grid, zero at the junk tiles
    D = _workspace.get("wino_d", (2, 2, F, N, Hr, Wr), x.dtype)
    D.fill(0)
    for a in range(2):
        for bb in range(2):
            part = dout[:, :, a::2, bb::2]
            D[a, bb, :, :, : part.shape[2], : part.shape[3]] = part.transpose(1, 0, 2, 3)
    D = D.reshape(2, 2, F * P)
    # dM = A dY A^T per tile, A = [[1,0],[1,1],[1,-1],[0,-1]]
    R = _workspace.get("wino_r", (4, 2, F * P), x.dtype)
    R[0] = D[0]
    np.add(D[0], D[1], out=R[1])
    np.subtract(D[0], D[1], out=R[2])
    np.negative(D[1], out=R[3])
    dM = _workspace.get("wino_dm", (4, 4, F * P), x.dtype)
    dM[:, 0] = R[:, 0]
    np.add(R[:, 0], R[:, 1], out=dM[:, 1])
    np.subtract(R[:, 0], R[:, 1], out=dM[:, 2])
    np.negative(R[:, 1], out=dM[:, 3])
    dM = dM.reshape(16, F, P)
    dU = np.matmul(dM, V.transpose(0, 2, 1)).reshape(4, 4, F, C)
    G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], x.dtype)
    dw = np.einsum("ai,abfc,bj->fcij", G, dU, G, optimize=True)
    if not need_dx:
        return None, dw
    U = _wino_filter(w).reshape(16, F, C)
    dV = _workspace.get("wino_dv", (16, C, P), x.dtype)
    np.matmul(U.transpose(0, 2, 1), dM, out=dV)
    dV = dV.reshape(4, 4, M)
    # the adjoint of _wino_input: along tile rows (B^T's columns), shifted adds by 0 / 1 ...
    Z = _workspace.get("wino_z", (4, 2, M + 1), x.dtype)
    Z[:, :, M] = 0
    Z[:, 0, :M] = dV[:, 0]
    Z[:, 0, 1:] -= dV[:, 0]
    Z[:, 0, 1:] += dV[:, 1]
    Z[:, 0, 1:] += dV[:, 2]
    np.subtract(dV[:, 1], dV[:, 2], out=Z[:, 1, :M])
    Z[:, 1, :M] += dV[:, 3]
    Z[:, 1, 1:] -= dV[:, 3]
    # ... then down tile columns, shifted adds by 0 / Wr into the phase image's gradient
    dP = _workspace.get("wino_dp", g.size, x.dtype)
    dP.fill(0)
    f = _workspace.get("wino_f", (2, M + 1), x.dtype)
    for bb in range(2):
        z0, z1, z2, z3 = Z[0, bb], Z[1, bb], Z[2, bb], Z[3, bb]
        dP[0, bb, : M + 1] += z0
        np.add(z1, z2, out=f[0])
        f[0] -= z0
        dP[0, bb, Wr : Wr + M + 1] += f[0]
        np.subtract(z1, z2, out=f[1])
        f[1] += z3
        dP[1, bb, : M + 1] += f[1]
        dP[1, bb, Wr : Wr + M + 1] -= z3
    return g.merge(dP, x.dtype), dw


# --------------------------------------------------------------------------------------------
# Padding and convolution
# --------------------------------------------------------------------------------------------


@reference
def pad2d(x, padding, value=0.0):
    """Pad the last two axes (height and width) of x with a constant.

    Args:
        x: array of shape (..., H, W), e.g. (N, C, H, W) or a single image (H, W).
        padding: int or (ph, pw): rows added above and below, columns left and right.
        value: the fill value (0 for zero padding).

    Returns:
        x_padded: array of shape (..., H + 2*ph, W + 2*pw), same dtype as x.

    Shape:
        (..., H, W) -> (..., H + 2*ph, W + 2*pw)

    Example:
        >>> pad2d(np.ones((2, 3)), 1)
        array([[0., 0., 0., 0., 0.],
               [0., 1., 1., 1., 0.],
               [0., 1., 1., 1., 0.],
               [0., 0., 0., 0., 0.]])

    Introduced in 02_padding_and_stride.
    """
    op = "pad2d"
    x = _array(op, "x", x)
    if x.ndim < 2:
        raise ValueError(f"pad2d: x must have at least 2 axes (..., H, W), got shape {x.shape}")
    ph, pw = _pair(op, "padding", padding, 0)
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: value must be a real number, got {value!r} ({type(value).__name__})")
    H, W = x.shape[-2:]
    out = np.full(x.shape[:-2] + (H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    out[..., ph : ph + H, pw : pw + W] = x
    return out


@reference
def conv2d_forward(x, w, b, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every deep learning library) of a batch.

    ``out[n, f, i, j] = b[f] + sum over c, ki, kj of
    x_padded[n, c, i*sh + ki, j*sw + kj] * w[f, c, ki, kj]``. The Keras equivalent is
    ``Conv2D(filters=F, kernel_size=(KH, KW), strides=stride)`` with channels first.

    Args:
        x: input of shape (N, C, H, W).
        w: filters of shape (F, C, KH, KW).
        b: bias of shape (F,), or None for no bias.
        stride: int or (sh, sw), >= 1.
        padding: int or (ph, pw), >= 0: zeros added on each side.

    Returns:
        out: array of shape (N, F, H_out, W_out).
        cache: for conv2d_backward.

    Shape:
        H_out = (H + 2*ph - KH) // sh + 1,  W_out = (W + 2*pw - KW) // sw + 1

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> w = np.ones((1, 1, 2, 2))
        >>> out, cache = conv2d_forward(x, w, np.zeros(1), stride=2)
        >>> out
        array([[[[10., 18.],
                 [42., 50.]]]])

    Introduced in 03_conv_layer.
    """
    op = "conv2d_forward"
    x = _array(op, "x", x, 4, "(N, C, H, W)")
    w = _array(op, "w", w, 4, "(F, C, KH, KW)")
    if b is not None:
        b = _vector(op, "b", b, w.shape[0], "one bias per filter", w=w)
    stride, padding, (Ho, Wo) = _conv_geometry(op, x, w, stride, padding)
    dtype = _float_dtype(x, w, b)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    b = None if b is None else b.astype(dtype, copy=False)
    # Keep the columns for the backward pass when they are small; recompute large ones there
    # (cheaper than holding KH*KW copies of x for the whole forward pass of a network).
    N, C, H, W = x.shape
    cache = {"op": op, "x": x, "w": w, "has_bias": b is not None, "stride": stride, "padding": padding}
    if _use_winograd(x.shape, w.shape, stride):
        nc = _wino_chunk(x.shape, padding, x.itemsize)
        cache["algo"], cache["chunk"] = "winograd", nc
        if nc is None:
            out, V = _wino_forward(x, w, b, padding)
            cache["cols"] = V if V.nbytes <= _KEEP_COLS_BYTES else None
            return out, cache
        # chunks of images: each chunk's tiles are transformed, multiplied and transformed back
        # while in cache (the backward pass transforms them again rather than keep them)
        out = np.empty((N, w.shape[0], Ho, Wo), x.dtype)
        for n0 in range(0, N, nc):
            _wino_forward(x[n0 : n0 + nc], w, b, padding, fresh_v=False, out=out[n0 : n0 + nc])
        cache["cols"] = None
        return out, cache
    F, _, KH, KW = w.shape
    L = Ho * (Wo + (KW - 1) // stride[1])
    rows = _use_rows(x.shape, w.shape, stride)
    nc = None if rows else _chunk_images(C, KH, KW, N, L, F, x.itemsize)
    if nc is not None:
        cache["algo"], cache["cols"], cache["chunk"] = "chunked", None, nc
        return _conv_chunked(x, w, b, stride, padding, Ho, Wo, nc), cache
    cache["algo"] = "rows" if rows else "im2col"
    # what one image needs in scratch: R and the GEMM's product (rows), or the columns and the product
    K = _rows_padded(C * KH) if rows else C * KH * KW  # rows of R, or of the columns
    per_image = (K + (KW * F if rows else F)) * L * x.itemsize
    kept_bytes = K * N * L * x.itemsize
    # blocks of m images (one block: the whole batch), each block's scratch in the cache between
    # its passes, run on several threads when the batch is large (_block_plan)
    m, threads = cache["block"], cache["threads"] = _block_plan(N, per_image)
    out, keep = np.empty((N, F, Ho, Wo), x.dtype), kept_bytes <= _KEEP_COLS_BYTES

    def block(part):
        if rows:
            return _conv_rows(x[part], w, b, padding, Ho, Wo, keep, out[part])[1]
        return _conv(x[part], w, b, stride, padding, Ho, Wo, keep, out[part])[1]

    kept = _map_blocks(block, N, m, threads)
    cache["cols"] = kept if keep else None  # one array of columns (or R) per block
    return out, cache


@reference
def conv2d_backward(dout, cache, *, need_dx=True):
    """Backward pass of conv2d_forward: gradients of the loss w.r.t. x, w and b.

    ``dw[f] = sum over n, i, j of dout[n, f, i, j] * window(n, i, j)``, ``db[f] = sum of
    dout[:, f]``, and dx adds ``dout[n, f, i, j] * w[f]`` back onto each window.

    Args:
        dout: upstream gradient of shape (N, F, H_out, W_out).
        cache: from conv2d_forward.
        need_dx: False skips dx (returned as None): the first layer of a network has no use
            for the gradient with respect to the images, and it costs as much as dw.
            dw and db are the same either way.

    Returns:
        dx: (N, C, H, W), or None when ``need_dx`` is False. dw: (F, C, KH, KW).
        db: (F,), or None if the forward had no bias.

    Shape:
        same shapes as x, w and b of the forward pass.

    Example:
        >>> x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
        >>> out, cache = conv2d_forward(x, w, np.zeros(1))
        >>> dx, dw, db = conv2d_backward(np.ones_like(out), cache)
        >>> dx[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
        >>> db
        array([4.])

    Introduced in 05_backprop.
    """
    op = "conv2d_backward"
    c = _cache(op, cache, "conv2d_forward")
    if not isinstance(need_dx, (bool, np.bool_)):
        raise TypeError(f"{op}: need_dx must be True or False, got {need_dx!r}")
    x, w, stride, padding = c["x"], c["w"], c["stride"], c["padding"]
    (N, C, H, W), (F, _, KH, KW) = x.shape, w.shape
    Ho = (H + 2 * padding[0] - KH) // stride[0] + 1
    Wo = (W + 2 * padding[1] - KW) // stride[1] + 1
    dout = _dout(op, dout, (N, F, Ho, Wo), x.dtype)
    db = _channel_sums(dout) if c["has_bias"] else None
    if c.get("algo") == "winograd":
        nc = c.get("chunk")
        if nc is None:
            dx, dw = _wino_backward(dout, x, w, padding, c["cols"], need_dx)
            return dx, dw, db
        dx = np.empty(x.shape, x.dtype) if need_dx else None
        dw = np.zeros(w.shape, x.dtype)
        for n0 in range(0, N, nc):
            dx_c, dw_c = _wino_backward(dout[n0 : n0 + nc], x[n0 : n0 + nc], w, padding, None, need_dx)
            dw += dw_c
            if need_dx:
                dx[n0 : n0 + nc] = dx_c
        return dx, dw, db

    # blocks of m images on the threads of the forward pass (see _block_plan; one block: the
    # whole batch), dw summed over the blocks in order
    algo, kept, m = c.get("algo"), c["cols"], c.get("block") or N
    dx = np.empty(x.shape, x.dtype) if need_dx else None

    def block(part):
        cols = None if kept is None else kept[part.start // m]
        dx_out = None if dx is None else dx[part]
        if algo == "rows":
            return _conv_rows_backward(dout[part], x[part], w, padding, cols, need_dx, dx_out)[1]
        return _im2col_backward(dout[part], x[part], w, stride, padding, cols, c.get("chunk"), need_dx, dx_out)[1]

    dws = _map_blocks(block, N, m, c.get("threads", 1))
    dw = dws[0]
    for dw_k in dws[1:]:
        np.add(dw, dw_k, out=dw)
    return dx, dw, db


def _im2col_backward(dout, x, w, stride, padding, kept, chunk, need_dx, dx_out):
    """(dx or None, dw) of the im2col route, dx written into ``dx_out`` (``chunk``: the chunked
    route's images per chunk); ``kept``: the forward pass's columns, or None to recompute them."""
    (N, C, H, W), (F, _, KH, KW) = x.shape, w.shape
    Ho, Wo = dout.shape[2:]
    g = _conv_phases(x.shape, KH, KW, stride, padding, Ho, Wo)
    L = Ho * g.Wg
    dt = _workspace.get("dout", (F, N, Ho, g.Wg), x.dtype)
    dt[:, :, :, Wo:] = 0  # junk columns contribute nothing
    dt[:, :, :, :Wo] = dout.transpose(1, 0, 2, 3)
    dt = dt.reshape(F, N * L)
    if chunk is not None:  # dw chunk by chunk, the columns recomputed while in cache
        img, nc = g.split(x, "phase"), chunk
        dw_t = np.zeros((C * KH * KW, F), x.dtype)
        part = _workspace.get("dw_part", (C * KH * KW, F), x.dtype)
        for n0 in range(0, N, nc):
            m = min(nc, N - n0)
            np.matmul(_cols_chunk(img, g, C, KH, KW, n0, m, x.dtype), dt[:, n0 * L : (n0 + m) * L].T, out=part)
            dw_t += part
        dw = dw_t.T.reshape(w.shape)
        cols = None
    else:  # dw: one GEMM with the columns (kept by the forward pass, or recomputed when large).
        cols = kept if kept is not None else _im2col(x, KH, KW, stride, padding, Ho, Wo)[0]
        dw = np.matmul(cols, dt.T).T.reshape(w.shape)  # (cols @ dt.T) is far faster than dt @ cols.T

    if not need_dx:
        return None, dw
    if _dx_by_full_conv(C, F, KH, KW, H, W, Ho, Wo, stride, padding):
        w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        dx = _conv(dout, w_flipped, None, (1, 1), (KH - 1 - padding[0], KW - 1 - padding[1]), H, W, False, dx_out)[0]
    else:  # GEMM, then col2im: one strided add per kernel offset
        dcols = cols if (kept is None and cols is not None) else _workspace.get("cols", (C * KH * KW, N * L), x.dtype)
        np.matmul(w.reshape(F, C * KH * KW).T, dt, out=dcols)
        # into a phase image with the columns split too: there, each offset's addition runs over
        # contiguous numbers (with only the rows split, over every sw-th: 1.05-1.08x the time of
        # the backward pass of 3x3 and 5x5 stride-2 layers)
        gs = _phases(x.shape, KH, KW, *stride, *padding, Ho, Wo, True)
        dx = gs.merge(_col2im(dcols.reshape(C, KH, KW, N * L), gs, x.dtype), x.dtype, dx_out)
    return dx, dw


@reference
def conv2d(x, w, b=None, stride=1, padding=0):
    """2-D convolution without the cache: ``conv2d_forward(x, w, b, stride, padding)[0]``.

    Args:
        x: input of shape (N, C, H, W).
        w: filters of shape (F, C, KH, KW).
        b: bias of shape (F,), or None.
        stride: int or (sh, sw).
        padding: int or (ph, pw).

    Returns:
        out: array of shape (N, F, H_out, W_out).

    Shape:
        H_out = (H + 2*ph - KH) // sh + 1,  W_out = (W + 2*pw - KW) // sw + 1

    Example:
        >>> x = np.ones((2, 3, 200, 200), dtype=np.float32)
        >>> out = conv2d(x, np.ones((4, 3, 5, 5), dtype=np.float32), stride=2, padding=1)
        >>> out.shape, out.dtype
        ((2, 4, 99, 99), dtype('float32'))

    Introduced in 03_conv_layer.
    """
    return conv2d_forward(x, w, b, stride, padding)[0]


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def _pool_setup(op, x, kernel_size, stride):
    x = _array(op, "x", x, 4, "(N, C, H, W)")
    x = x.astype(_float_dtype(x), copy=False)
    (kh, kw), (sh, sw), (Ho, Wo) = _pool_geometry(op, x, kernel_size, stride)
    return x, _phases(x.shape, kh, kw, sh, sw, 0, 0, Ho, Wo, False)


def _crop(flat, g) -> np.ndarray:
    """A fresh (N, C, Ho, Wo) output from a flat (N, C, Hr, Wr) array with junk rows/columns."""
    Ho, Wo = g.out
    return flat.reshape(g.A, g.B, g.Hr, g.Wr)[:, :, :Ho, :Wo].copy()


def _uncrop(dout, g) -> np.ndarray:
    """dout (N, C, Ho, Wo) as a flat (N, C, Hr, Wr) array, zero at the junk positions."""
    Ho, Wo = g.out
    if (g.Hr, g.Wr) == (Ho, Wo):
        return np.ascontiguousarray(dout).reshape(g.M)
    d = _workspace.get("pool_dout", (g.A, g.B, g.Hr, g.Wr), dout.dtype)
    d[:, :, Ho:] = 0
    d[:, :, :Ho, Wo:] = 0
    d[:, :, :Ho, :Wo] = dout
    return d.reshape(g.M)


def _pool_scatter(g, dtype, contributions) -> np.ndarray:
    """dx from per-offset contributions: contributions(k, out) writes offset k's share into out."""
    img = _workspace.get("pool", g.size, dtype)
    if g.kernel == g.stride:  # windows tile the input: every phase is exactly one offset
        if img.shape[2] > g.M or any(v is None for v in g.copies.values()):
            img.fill(0)
        for k, (i, j, a, b, off) in enumerate(g.offsets()):
            contributions(k, img[a, b, : g.M])
    else:  # a phase's first offset, (i, j) = (a, b) at position 0, writes it; the others add to it
        tmp = _workspace.get("pool_tmp", (g.M,), dtype)
        written = set()
        for k, (i, j, a, b, off) in enumerate(g.offsets()):
            if (a, b) not in written:
                written.add((a, b))
                contributions(k, img[a, b, : g.M])  # (the slack past M is never read)
            else:
                contributions(k, tmp)
                img[a, b, off : off + g.M] += tmp
        for a, b in set(g.copies) - written:  # a stride larger than the window: phases no offset reads
            img[a, b] = 0
    return g.merge(img, dtype)


@reference
def max_pool2d_forward(x, kernel_size, stride=None):
    """Max pooling: the largest value of each window, channel by channel.

    Ties go to the first position of the window in row-major order (as in PyTorch), so the
    backward pass routes each gradient to exactly one input. The Keras equivalent is
    ``MaxPooling2D(pool_size=kernel_size, strides=stride)``.

    Args:
        x: input of shape (N, C, H, W).
        kernel_size: int or (kh, kw): the window.
        stride: int or (sh, sw); defaults to kernel_size (non-overlapping windows).

    Returns:
        out: array of shape (N, C, H_out, W_out).
        cache: for max_pool2d_backward (holds the index of each window's maximum).

    Shape:
        H_out = (H - kh) // sh + 1,  W_out = (W - kw) // sw + 1;  depth C unchanged

    Example:
        >>> x = np.array([[[[1., 2, 5, 6], [3, 4, 7, 8], [0, 0, 1, 1], [0, 9, 1, 1]]]])
        >>> out, cache = max_pool2d_forward(x, 2)
        >>> out
        array([[[[4., 8.],
                 [9., 1.]]]])

    Introduced in 04_pooling.
    """
    op = "max_pool2d_forward"
    x, g = _pool_setup(op, x, kernel_size, stride)
    img = g.split(x, "pool")
    kk = g.kernel[0] * g.kernel[1]
    itype = np.uint8 if kk <= 256 else np.int32
    exact = (g.Hr, g.Wr) == g.out
    best = np.empty(g.M, x.dtype) if exact else _workspace.get("pool_out", (g.M,), x.dtype)
    idx = np.zeros(g.M, itype)  # offset number of each window's maximum
    better = _workspace.get("pool_mask", (g.M,), bool)
    code = _workspace.get("pool_code", (g.M,), itype)
    for k, (i, j, a, b, off) in enumerate(g.offsets()):
        s = img[a, b, off : off + g.M]
        if k == 0:
            best[...] = s
            continue
        np.greater(s, best, out=better)  # strictly greater: ties keep the earlier offset
        np.maximum(best, s, out=best)
        # idx = where(better, k, idx), as arithmetic: k exceeds every earlier code, so max() works
        # (np.where / copyto(where=) on a random mask are 20-50x slower here).
        np.multiply(better, itype(k), out=code)
        np.maximum(idx, code, out=idx)
    out = best.reshape(x.shape[0], x.shape[1], *g.out) if exact else _crop(best, g)
    return out, {"op": op, "phases": g, "idx": idx, "dtype": x.dtype}


_POOL_DIRECT = True  # tiling max pools write dx directly (False: via the phase image; tests run both)


def _tiles(g) -> bool:
    """The pooling windows tile the input exactly (no overlap, no gap, nothing left over)."""
    (kh, kw), (Ho, Wo), (H, W) = g.kernel, g.out, g.shape[2:]
    return g.kernel == g.stride and (H, W) == (kh * Ho, kw * Wo)


def _max_pool_route(dout, idx, g, dtype):
    """dx of a tiling max pool: for each window offset, dout where that offset holds the maximum,
    written straight into dx's strided view of the offset (one pass, no phase image to merge)."""
    (sh, sw), (Ho, Wo) = g.stride, g.out
    N, C = g.shape[:2]
    dx = np.empty(g.shape, dtype)  # every position belongs to exactly one window
    idx4 = idx.reshape(N, C, Ho, Wo)
    mask = _workspace.get("pool_mask", (N, C, Ho, Wo), bool)
    for k, (i, j, _a, _b, _off) in enumerate(g.offsets()):
        np.equal(idx4, k, out=mask)
        np.multiply(dout, mask, out=dx[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw])
    return dx


@reference
def max_pool2d_backward(dout, cache):
    """Backward pass of max pooling: each window's gradient goes to the position of its maximum.

    Args:
        dout: upstream gradient of shape (N, C, H_out, W_out).
        cache: from max_pool2d_forward.

    Returns:
        dx: array of shape (N, C, H, W); zero everywhere except at the argmax of each window
        (overlapping windows add up).

    Shape:
        (N, C, H_out, W_out) -> (N, C, H, W)

    Example:
        >>> x = np.array([[[[1., 2], [4, 3]]]])
        >>> out, cache = max_pool2d_forward(x, 2)
        >>> max_pool2d_backward(np.array([[[[10.]]]]), cache)
        array([[[[ 0.,  0.],
                 [10.,  0.]]]])

    Introduced in 04_pooling.
    """
    op = "max_pool2d_backward"
    c = _cache(op, cache, "max_pool2d_forward")
    g, idx, dtype = c["phases"], c["idx"], c["dtype"]
    if _POOL_DIRECT and _tiles(g):
        return _max_pool_route(_dout(op, dout, (g.A, g.B) + g.out, dtype), idx, g, dtype)
    d = _uncrop(_dout(op, dout, (g.A, g.B) + g.out, dtype), g)
    mask = _workspace.get("pool_mask", (g.M,), bool)

    def routed(k, out):
        np.equal(idx, k, out=mask)
        np.multiply(d, mask, out=out)

    return _pool_scatter(g, dtype, routed)


@reference
def avg_pool2d_forward(x, kernel_size, stride=None):
    """Average (mean) pooling: the mean of each window, channel by channel.

    The Keras equivalent is ``AveragePooling2D(pool_size=kernel_size, strides=stride)``.

    Args:
        x: input of shape (N, C, H, W).
        kernel_size: int or (kh, kw): the window.
        stride: int or (sh, sw); defaults to kernel_size.

    Returns:
        out: array of shape (N, C, H_out, W_out).
        cache: for avg_pool2d_backward.

    Shape:
        H_out = (H - kh) // sh + 1,  W_out = (W - kw) // sw + 1;  depth C unchanged

    Example:
        >>> x = np.array([[[[1., 2, 5, 6], [3, 4, 7, 8]]]])
        >>> avg_pool2d_forward(x, 2)[0]
        array([[[[2.5, 6.5]]]])

    Introduced in 04_pooling.
    """
    op = "avg_pool2d_forward"
    x, g = _pool_setup(op, x, kernel_size, stride)
    img = g.split(x, "pool")
    exact = (g.Hr, g.Wr) == g.out
    acc = np.empty(g.M, x.dtype) if exact else _workspace.get("pool_out", (g.M,), x.dtype)
    for k, (i, j, a, b, off) in enumerate(g.offsets()):
        if k == 0:
            acc[...] = img[a, b, off : off + g.M]
        else:
            acc += img[a, b, off : off + g.M]
    acc *= 1.0 / (g.kernel[0] * g.kernel[1])
    out = acc.reshape(x.shape[0], x.shape[1], *g.out) if exact else _crop(acc, g)
    return out, {"op": op, "phases": g, "dtype": x.dtype}


@reference
def avg_pool2d_backward(dout, cache):
    """Backward pass of average pooling: each window's gradient is spread evenly over it.

    Args:
        dout: upstream gradient of shape (N, C, H_out, W_out).
        cache: from avg_pool2d_forward.

    Returns:
        dx: array of shape (N, C, H, W); each window gets dout / (kh*kw) (overlaps add up).

    Shape:
        (N, C, H_out, W_out) -> (N, C, H, W)

    Example:
        >>> out, cache = avg_pool2d_forward(np.zeros((1, 1, 2, 2)), 2)
        >>> avg_pool2d_backward(np.array([[[[8.]]]]), cache)
        array([[[[2., 2.],
                 [2., 2.]]]])

    Introduced in 04_pooling.
    """
    op = "avg_pool2d_backward"
    c = _cache(op, cache, "avg_pool2d_forward")
    g, dtype = c["phases"], c["dtype"]
    d = _uncrop(_dout(op, dout, (g.A, g.B) + g.out, dtype), g)
    share = d * (1.0 / (g.kernel[0] * g.kernel[1]))

    def spread(k, out):
        out[...] = share

    return _pool_scatter(g, dtype, spread)


@reference
def global_avg_pool2d_forward(x):
    """Global average pooling: the mean of each channel over all positions.

    The Keras equivalent is ``GlobalAveragePooling2D()``; it replaces Flatten before the
    classifier in many modern networks.

    Args:
        x: input of shape (N, C, H, W).

    Returns:
        out: array of shape (N, C).
        cache: for global_avg_pool2d_backward.

    Shape:
        (N, C, H, W) -> (N, C)

    Example:
        >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
        >>> global_avg_pool2d_forward(x)[0]
        array([[1.5, 5.5]])

    Introduced in 04_pooling.
    """
    op = "global_avg_pool2d_forward"
    x = _array(op, "x", x, 4, "(N, C, H, W)")
    x = x.astype(_float_dtype(x), copy=False)
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"{op}: x has no positions to average ({_shapes(x=x)})")
    return x.mean(axis=(2, 3)), {"op": op, "shape": x.shape, "dtype": x.dtype}


@reference
def global_avg_pool2d_backward(dout, cache):
    """Backward pass of global average pooling: dout / (H*W) at every position.

    Args:
        dout: upstream gradient of shape (N, C).
        cache: from global_avg_pool2d_forward.

    Returns:
        dx: array of shape (N, C, H, W).

    Shape:
        (N, C) -> (N, C, H, W)

    Example:
        >>> out, cache = global_avg_pool2d_forward(np.zeros((1, 1, 2, 2)))
        >>> global_avg_pool2d_backward(np.array([[4.0]]), cache)
        array([[[[1., 1.],
                 [1., 1.]]]])

    Introduced in 04_pooling.
    """
    op = "global_avg_pool2d_backward"
    c = _cache(op, cache, "global_avg_pool2d_forward")
    N, C, H, W = c["shape"]
    dout = _dout(op, dout, (N, C), c["dtype"])
    dx = np.empty(c["shape"], c["dtype"])
    dx[...] = (dout * (1.0 / (H * W)))[:, :, None, None]
    return dx


# --------------------------------------------------------------------------------------------
# Elementwise and dense layers
# --------------------------------------------------------------------------------------------


@reference
def relu_forward(x):
    """Rectified linear unit, ``max(x, 0)`` elementwise.

    Args:
        x: array of any shape.

    Returns:
        out: array of the same shape and dtype.
        cache: for relu_backward (the mask x > 0).

    Shape:
        unchanged

    Example:
        >>> relu_forward(np.array([-2.0, 0.0, 3.0]))[0]
        array([0., 0., 3.])

    Introduced in 05_backprop.
    """
    op = "relu_forward"
    x = _array(op, "x", x)
    x = x.astype(_float_dtype(x), copy=False)
    return np.maximum(x, 0), {"op": op, "mask": x > 0, "dtype": x.dtype}


@reference
def relu_backward(dout, cache):
    """Backward pass of ReLU: dout where x > 0, zero elsewhere (also at x == 0).

    Args:
        dout: upstream gradient, same shape as x.
        cache: from relu_forward.

    Returns:
        dx: array of the shape of x.

    Shape:
        unchanged

    Example:
        >>> out, cache = relu_forward(np.array([-2.0, 0.0, 3.0]))
        >>> relu_backward(np.array([5.0, 5.0, 5.0]), cache)
        array([0., 0., 5.])

    Introduced in 05_backprop.
    """
    op = "relu_backward"
    c = _cache(op, cache, "relu_forward")
    dout = _dout(op, dout, c["mask"].shape, c["dtype"])
    return dout * c["mask"]


@reference
def linear_forward(x, w, b):
    """Fully connected (dense) layer: ``out = x @ w + b``.

    ``w`` is (in_features, out_features), so this is ``x @ w`` (PyTorch stores the transpose).
    The Keras equivalent is ``Dense(out_features)``.

    Args:
        x: input of shape (N, in_features); flatten conv features first (flatten_forward).
        w: weights of shape (in_features, out_features).
        b: bias of shape (out_features,), or None.

    Returns:
        out: array of shape (N, out_features).
        cache: for linear_backward.

    Shape:
        (N, in_features) -> (N, out_features)

    Example:
        >>> out, cache = linear_forward(np.ones((2, 3)), np.ones((3, 4)), np.arange(4.0))
        >>> out
        array([[3., 4., 5., 6.],
               [3., 4., 5., 6.]])

    Introduced in 05_backprop.
    """
    op = "linear_forward"
    x = _array(op, "x", x, 2, "(N, in_features)")
    w = _array(op, "w", w, 2, "(in_features, out_features)")
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"{op}: x has {x.shape[1]} features but w expects {w.shape[0]} ({_shapes(x=x, w=w)}; "
            "w is (in_features, out_features))"
        )
    if b is not None:
        b = _vector(op, "b", b, w.shape[1], "one bias per output feature", w=w)
    dtype = _float_dtype(x, w, b)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    out = x @ w
    if b is not None:
        out += b.astype(dtype, copy=False)
    return out, {"op": op, "x": x, "w": w, "has_bias": b is not None}


@reference
def linear_backward(dout, cache):
    """Backward pass of the linear layer.

    ``dx = dout @ w.T``, ``dw = x.T @ dout``, ``db = dout.sum(axis=0)``.

    Args:
        dout: upstream gradient of shape (N, out_features).
        cache: from linear_forward.

    Returns:
        dx: (N, in_features). dw: (in_features, out_features). db: (out_features,) or None.

    Shape:
        same shapes as x, w and b of the forward pass.

    Example:
        >>> out, cache = linear_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))
        >>> dx, dw, db = linear_backward(np.ones((2, 4)), cache)
        >>> dx.shape, dw.shape, db
        ((2, 3), (3, 4), array([2., 2., 2., 2.]))

    Introduced in 05_backprop.
    """
    op = "linear_backward"
    c = _cache(op, cache, "linear_forward")
    x, w = c["x"], c["w"]
    dout = _dout(op, dout, (x.shape[0], w.shape[1]), x.dtype)
    return dout @ w.T, x.T @ dout, (dout.sum(axis=0) if c["has_bias"] else None)


@reference
def flatten_forward(x):
    """Flatten every axis but the batch axis: (N, C, H, W) -> (N, C*H*W).

    Seed example: a 32x32x10 feature map becomes 10,240 features. The Keras equivalent is
    ``Flatten()``. The result may be a view of x (as with ``reshape``).

    Args:
        x: array of shape (N, ...), at least 1-D.

    Returns:
        out: array of shape (N, prod(...)).
        cache: for flatten_backward (the original shape).

    Shape:
        (N, C, H, W) -> (N, C*H*W)

    Example:
        >>> flatten_forward(np.zeros((2, 10, 32, 32)))[0].shape
        (2, 10240)

    Introduced in 07_training.
    """
    op = "flatten_forward"
    x = _array(op, "x", x)
    x = x.astype(_float_dtype(x), copy=False)
    if x.ndim < 1:
        raise ValueError(f"{op}: x must have a batch axis (N, ...), got a scalar")
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))), {"op": op, "shape": x.shape, "dtype": x.dtype}


@reference
def flatten_backward(dout, cache):
    """Backward pass of flatten: reshape dout back to the input's shape.

    Args:
        dout: upstream gradient of shape (N, prod(...)).
        cache: from flatten_forward.

    Returns:
        dx: array of the input's shape.

    Shape:
        (N, C*H*W) -> (N, C, H, W)

    Example:
        >>> out, cache = flatten_forward(np.zeros((2, 3, 4, 4)))
        >>> flatten_backward(np.ones((2, 48)), cache).shape
        (2, 3, 4, 4)

    Introduced in 07_training.
    """
    op = "flatten_backward"
    c = _cache(op, cache, "flatten_forward")
    shape = c["shape"]
    dout = _dout(op, dout, (shape[0], int(np.prod(shape[1:], dtype=np.int64))), c["dtype"])
    return dout.reshape(shape)


# --------------------------------------------------------------------------------------------
# Batch normalization and dropout
# --------------------------------------------------------------------------------------------


def _channel_sums(a, b=None) -> np.ndarray:
    """Per-channel sum over (N, H, W) of a (N, C, H, W), or of a * b: (C,), in a's dtype.

    Row by row (one contiguous row per (n, c)), then over n: no large temporary, and the rows'
    partial sums keep the float32 round-off as small as numpy's pairwise sum (a test checks it).
    """
    N, C = a.shape[:2]
    if b is None:  # (not BLAS: a threaded gemv is slow on a busy machine)
        # einsum's contiguous sum, row by row: 0.25-0.75x the time of rows.sum(axis=1) then over n
        return np.einsum("ncp->c", np.ascontiguousarray(a).reshape(N, C, -1))
    rows = np.ascontiguousarray(a).reshape(N * C, -1)
    if _vecdot is not None:  # numpy >= 2.0: 0.55x the time of the einsum (1024 rows of 784)
        per_row = _vecdot(rows, np.ascontiguousarray(b).reshape(N * C, -1))
    else:
        per_row = np.einsum("ij,ij->i", rows, np.ascontiguousarray(b).reshape(N * C, -1))
    return per_row.reshape(N, C).sum(axis=0)


_vecdot = getattr(np, "vecdot", None)


def _running(op, name, value, C, x):
    a = _vector(op, name, value, C, "one per channel", x=x)
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or not value.flags.writeable:
        raise TypeError(
            f"{op}: {name} must be a writable float numpy array of shape ({C},): it is updated in "
            f"place in training mode, got {type(value).__name__}"
        )
    return a


@reference
def batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Spatial batch normalization: normalize each channel over (N, H, W), then scale and shift.

    Training: ``x_hat = (x - mean) / sqrt(var + eps)`` with the batch mean and the biased batch
    variance of each channel, ``out = gamma * x_hat + beta``; the running statistics are updated
    IN PLACE exactly as ``torch.nn.functional.batch_norm`` does::

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)

    (the unbiased variance, m = N*H*W values per channel). Evaluation: the running statistics
    are used instead of the batch's and nothing is updated. This is the seed's reshape
    (N, C, H, W) -> (N*H*W, C) and normalize each column. Keras: ``BatchNormalization()``
    (whose ``momentum`` is 1 - this one).

    Args:
        x: input of shape (N, C, H, W).
        gamma: scale of shape (C,).
        beta: shift of shape (C,).
        running_mean: float array of shape (C,), updated in place when training.
        running_var: float array of shape (C,), updated in place when training.
        training: True to use (and update with) batch statistics, False for evaluation.
        momentum: weight of the new batch in the running statistics, in [0, 1].
        eps: added to the variance for numerical stability, > 0.

    Returns:
        out: array of shape (N, C, H, W).
        cache: for batchnorm2d_backward.

    Shape:
        unchanged; statistics are over N*H*W values per channel

    Example:
        >>> x = np.array([1.0, 3.0]).reshape(2, 1, 1, 1)
        >>> rm, rv = np.zeros(1), np.ones(1)
        >>> out, cache = batchnorm2d_forward(x, np.ones(1), np.zeros(1), rm, rv, training=True)
        >>> out.ravel()
        array([-1.,  1.])
        >>> rm, rv  # 0.9*0 + 0.1*2 and 0.9*1 + 0.1*2 (unbiased variance of [1, 3] is 2)
        (array([0.2]), array([1.1]))

    Introduced in 06_batchnorm.
    """
    op = "batchnorm2d_forward"
    x = _array(op, "x", x, 4, "(N, C, H, W)")
    C = x.shape[1]
    gamma = _vector(op, "gamma", gamma, C, "one per channel", x=x)
    beta = _vector(op, "beta", beta, C, "one per channel", x=x)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{op}: training must be True or False, got {training!r}")
    for name, v, lo, hi in (("momentum", momentum, 0.0, 1.0), ("eps", eps, 0.0, np.inf)):
        if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)) or not lo <= v <= hi or (name == "eps" and v == 0):
            raise ValueError(f"{op}: {name} must be a number in {'[0, 1]' if name == 'momentum' else '(0, inf)'}, got {v!r}")
    if training:
        running_mean = _running(op, "running_mean", running_mean, C, x)
        running_var = _running(op, "running_var", running_var, C, x)
    else:
        running_mean = _vector(op, "running_mean", running_mean, C, "one per channel", x=x)
        running_var = _vector(op, "running_var", running_var, C, "one per channel", x=x)
    dtype = _float_dtype(x, gamma, beta)
    x = x.astype(dtype, copy=False)
    gamma, beta = gamma.astype(dtype, copy=False), beta.astype(dtype, copy=False)
    bc = (1, C, 1, 1)  # per-channel vectors broadcast over (N, C, H, W)

    if training:
        m = x.shape[0] * x.shape[2] * x.shape[3]
        if m < 2:
            raise ValueError(f"{op}: training needs more than 1 value per channel to estimate a variance ({_shapes(x=x)})")
        mean = _channel_sums(x) / m
        xc = x - mean.reshape(bc)
        var = _channel_sums(xc, xc) / m  # biased: used to normalize
        running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        running_var[...] = (1 - momentum) * running_var + momentum * var * (m / (m - 1))
    else:
        xc = x - running_mean.astype(dtype, copy=False).reshape(bc)
        var = running_var.astype(dtype, copy=False)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(dtype, copy=False)
    # out = x_hat * gamma + beta with x_hat = xc * inv_std, without writing x_hat: the cache keeps
    # xc, and the backward pass folds inv_std into its per-channel factors (one pass less here)
    out = xc * (gamma * inv_std).reshape(bc)
    out += beta.reshape(bc)
    return out, {"op": op, "xc": xc, "inv_std": inv_std, "gamma": gamma, "training": bool(training)}


@reference
def batchnorm2d_backward(dout, cache):
    """Backward pass of spatial batch normalization.

    Training mode (the batch statistics depend on x), per channel over its m = N*H*W values::

        dx = inv_std / m * (m * dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat)),
        dx_hat = dout * gamma

    Evaluation mode: ``dx = dout * gamma * inv_std`` (the statistics are constants).
    ``dgamma = sum(dout * x_hat)`` and ``dbeta = sum(dout)`` over (N, H, W) in both modes.

    Args:
        dout: upstream gradient of shape (N, C, H, W).
        cache: from batchnorm2d_forward.

    Returns:
        dx: (N, C, H, W). dgamma: (C,). dbeta: (C,).

    Shape:
        same shapes as x, gamma and beta.

    Example:
        >>> x = np.array([1.0, 3.0]).reshape(2, 1, 1, 1)
        >>> out, cache = batchnorm2d_forward(x, np.ones(1), np.zeros(1), np.zeros(1), np.ones(1), True)
        >>> dx, dgamma, dbeta = batchnorm2d_backward(np.ones((2, 1, 1, 1)), cache)
        >>> dx.ravel(), dgamma, dbeta  # a constant shift of all outputs teaches x nothing
        (array([0., 0.]), array([0.]), array([2.]))

    Introduced in 06_batchnorm.
    """
    op = "batchnorm2d_backward"
    c = _cache(op, cache, "batchnorm2d_forward")
    xc, inv_std, gamma = c["xc"], c["inv_std"], c["gamma"]  # x_hat = xc * inv_std
    dout = _dout(op, dout, xc.shape, xc.dtype)
    C = xc.shape[1]
    bc = (1, C, 1, 1)
    dbeta = _channel_sums(dout)
    dgamma = _channel_sums(dout, xc) * inv_std
    scale = gamma * inv_std
    dx = dout * scale.reshape(bc)
    if not c["training"]:
        return dx, dgamma, dbeta
    m = xc.shape[0] * xc.shape[2] * xc.shape[3]
    # with dx_hat = dout * gamma: sum(dx_hat) = gamma * dbeta, sum(dx_hat * x_hat) = gamma * dgamma, so
    # dx = (dout - dbeta / m - x_hat * dgamma / m) * gamma * inv_std, computed in place
    tmp = _workspace.get("bn_tmp", xc.shape, xc.dtype)
    np.multiply(xc, (scale * inv_std * dgamma / m).reshape(bc), out=tmp)
    dx -= tmp
    dx -= (scale * dbeta / m).reshape(bc)
    return dx, dgamma, dbeta


@reference
def dropout_forward(x, p, training, rng):
    """Inverted dropout: zero each value with probability p and scale the rest by 1 / (1 - p).

    Scaling at training time keeps the expected activation unchanged, so evaluation is the
    identity. Keras: ``Dropout(p)``.

    Args:
        x: array of any shape.
        p: drop probability in [0, 1].
        training: True to drop, False for the identity (evaluation).
        rng: np.random.Generator drawing the mask (needed when training with p > 0).

    Returns:
        out: array of x's shape and dtype.
        cache: for dropout_backward (the scaled mask).

    Shape:
        unchanged

    Example:
        >>> out, cache = dropout_forward(np.ones(8), 0.5, True, np.random.default_rng(0))
        >>> sorted(set(out.tolist()))  # dropped, or kept and doubled
        [0.0, 2.0]
        >>> dropout_forward(np.ones(3), 0.5, False, None)[0]
        array([1., 1., 1.])

    Introduced in 07_training.
    """
    op = "dropout_forward"
    x = _array(op, "x", x)
    x = x.astype(_float_dtype(x), copy=False)
    if not isinstance(p, numbers.Real) or isinstance(p, (bool, np.bool_)) or not 0 <= p <= 1:
        raise ValueError(f"{op}: p must be a probability in [0, 1], got {p!r}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{op}: training must be True or False, got {training!r}")
    if not training or p == 0:
        return x, {"op": op, "mask": None, "shape": x.shape, "dtype": x.dtype}
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{op}: rng must be a np.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    if p == 1:
        mask = np.zeros(x.shape, x.dtype)
    else:
        draw_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        mask = (rng.random(x.shape, dtype=draw_dtype) >= p).astype(x.dtype) * x.dtype.type(1 / (1 - p))
    return x * mask, {"op": op, "mask": mask, "shape": x.shape, "dtype": x.dtype}


@reference
def dropout_backward(dout, cache):
    """Backward pass of inverted dropout: dout times the same scaled mask.

    Args:
        dout: upstream gradient, same shape as x.
        cache: from dropout_forward.

    Returns:
        dx: array of x's shape.

    Shape:
        unchanged

    Example:
        >>> out, cache = dropout_forward(np.ones(4), 0.5, True, np.random.default_rng(0))
        >>> bool(np.all(dropout_backward(np.ones(4), cache) == out))
        True

    Introduced in 07_training.
    """
    op = "dropout_backward"
    c = _cache(op, cache, "dropout_forward")
    dout = _dout(op, dout, c["shape"], c["dtype"])
    return dout.copy() if c["mask"] is None else dout * c["mask"]

"""Known-mistake catalogues: wrong answers learners write, and the hint each one earns.

A :class:`Mistake` computes a wrong answer for a case; when the learner's output equals it, the
check's failure message carries its hint. An :class:`ErrorHint` does the same for an exception
the learner's function raises. ``conv_mistakes``, ``pool_mistakes``, ``pad_mistakes`` and
``output_size_mistakes`` are the catalogues of notebooks 01-04.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from cnnlib.grading.cases import _first, _on_out, _pair, _same

Case = Mapping[str, Any]


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer and the hint to give when the learner's output equals it.

    Args:
        hint: the hint text, or ``hint(case) -> str`` to put the case's numbers in it.
        wrong: ``wrong(case) -> answer`` computes the wrong answer for a case (a dict of arguments),
            e.g. ``with_args(F.conv2d, padding=0)`` for "forgot the padding".
    """

    hint: str | Callable[[Case], str]
    wrong: Callable[[Case], Any]

    def text(self, case: Case) -> str:
        return self.hint(case) if callable(self.hint) else self.hint


@dataclass(frozen=True)
class ErrorHint:
    """A hint for an exception the learner's function raises (a mistake that makes numpy fail).

    Put it in a check's ``mistakes`` list next to the :class:`Mistake` entries; the first that
    matches the exception gives the hint, else one of :data:`COMMON_ERROR_HINTS` does.

    Args:
        error: the exception type (or a tuple of types) it is about.
        match: a regular expression searched in the exception's message (``None``: any message).
        hint: the hint text, or ``hint(case, exc) -> str | None`` to put the case's numbers in it
            (``None`` when the hint does not apply after all).

    Example:
        >>> h = ErrorHint(ValueError, r"could not be broadcast", "check the shapes you multiply")
        >>> h.text({}, ValueError("operands could not be broadcast together"))
        'check the shapes you multiply'
    """

    error: type[BaseException] | tuple[type[BaseException], ...]
    match: str | None
    hint: str | Callable[[Case, BaseException], str | None]

    def text(self, case: Case, exc: BaseException) -> str | None:
        """The hint for ``exc`` raised on ``case``, or None when this entry does not apply."""
        if not isinstance(exc, self.error):
            return None
        if self.match is not None and not re.search(self.match, str(exc)):
            return None
        try:
            return self.hint(case, exc) if callable(self.hint) else self.hint
        except Exception:  # a hint that cannot read this case does not apply
            return None


#: Hints for the numpy errors learners meet most; used after an exercise's own :class:`ErrorHint`s.
COMMON_ERROR_HINTS: list[ErrorHint] = [
    ErrorHint(ValueError, r"operands could not be broadcast together",
              "two arrays you combine on that line have shapes that do not fit (both are in the "
              "error): print their shapes; is a slice cut short, or taken over the wrong axes?"),
    ErrorHint(ValueError, r"could not broadcast input array from shape",
              "what you assign does not fit the slice it goes into (both shapes are in the error): "
              "check the slice's bounds, and reduce what you assign to the slice's shape."),
    ErrorHint(ValueError, r"setting an array element with a sequence",
              "numpy was given several numbers (an array, a list or a tuple) where one number goes: "
              "print what you pass on that line and its shape."),
    ErrorHint(ValueError, r"cannot reshape array of size",
              "a reshape keeps the number of values: the product of the new shape must equal the "
              "array's size."),
    ErrorHint(ValueError, r"matmul: Input operand|not aligned",
              "in A @ B the last axis of A must be as long as the second-to-last axis of B: print "
              "both shapes."),
    ErrorHint(IndexError, r"out of bounds",
              "an index went past the end of an axis: do your loops run over the output size "
              "(from the formula), and do your slices start where they should?"),
    ErrorHint((TypeError, IndexError),
              r"cannot be interpreted as an integer|slice indices must be integers|only integers|"
              r"expected a sequence of integers",
              "sizes and indices must be ints: compute them with // (not /), or wrap them in int(...)."),
]


def known_answer(answer: Any, **where: Any) -> Callable[[Case], Any]:
    """A ``wrong(case)`` for one hand-picked case: ``answer`` on the case whose arguments equal
    ``where``; on any other case the mistake does not apply.

    For a wrong answer that is easy to write down and hard to compute in general, e.g. what an
    overwrite (``=`` instead of ``+=``) gives on the worked example of overlapping windows.

    Example:
        >>> wrong = known_answer(np.array([4.0]), x_shape=(1, 1, 3, 3), stride=1)
        >>> wrong({"dout": np.ones(4), "x_shape": (1, 1, 3, 3), "stride": 1})
        array([4.])
    """

    def wrong(case: Case) -> Any:
        for key, value in where.items():
            if key not in case or not _same(case[key], value):
                raise KeyError(key)  # another case: does not apply
        return copy.deepcopy(answer)

    return wrong


def with_args(func: Callable, **changes: Any) -> Callable[[Case], Any]:
    """A ``wrong(case)`` that calls ``func`` with some arguments changed.

    A value replaces the argument; a callable transforms it. With no changes, the wrong answer is
    simply ``func``'s answer on the case (another operation's, e.g. mean instead of max pooling).

    Example:
        >>> forgot_padding = with_args(lambda n, p: n + 2 * p, p=0)
        >>> forgot_padding({"n": 5, "p": 1})
        5
        >>> doubled = with_args(lambda n, p: n + 2 * p, n=lambda n: 2 * n)
        >>> doubled({"n": 5, "p": 1})
        12
    """

    def wrong(case: Case) -> Any:
        args = copy.deepcopy(dict(case))
        for key, change in changes.items():
            if key not in args:
                raise KeyError(key)
            args[key] = change(args[key]) if callable(change) else change
        return func(*args.values())

    return wrong


def _needs(m: Mistake, key: str | None) -> Mistake:
    """Skip a mistake on cases without the argument it is about (e.g. no stride in the case)."""
    if key is None:
        return m
    inner = m.wrong

    def wrong(case: Case) -> Any:
        if key not in case:
            raise KeyError(key)
        return inner(case)

    return Mistake(m.hint, wrong)


def conv_mistakes(
    reference: Callable,
    *,
    x: str = "x",
    w: str = "w",
    b: str | None = "b",
    stride: str = "stride",
    padding: str = "padding",
) -> list[Mistake | ErrorHint]:
    """The usual mistakes of a convolution (cross-correlation) exercise.

    Works for 2-D ``(H, W)`` images with ``(KH, KW)`` kernels and for NCHW batches with
    ``(F, C, KH, KW)`` weights (the last two axes are spatial). Arguments absent from a case are
    skipped (e.g. no stride). Detected: forgot the padding, forgot the stride, flipped kernel (true
    convolution), window stepped by 1 while the output has the strided size, padding on one side
    only, swapped height and width, forgot the bias; and, when numpy raises, a window that does
    not match the kernel: the channel (or batch) axis padded too, or a window cut short at the
    border.
    """

    def formula(case: Case, what: str) -> str:
        xs, ws = np.shape(case[x]), np.shape(case[w])
        s, p = _pair(case.get(stride, 1)), _pair(case.get(padding, 0))
        # explain the axis where leaving out `what` changes the size
        axis = next((a for a in (0, 1) if (p[a] > 0 if what == "padding" else s[a] > 1)), 0)
        sym = "H" if axis == 0 else "W"
        n, k, sa, pa = xs[-2 + axis], ws[-2 + axis], s[axis], p[axis]
        return (
            f"{sym}_out = ({sym} + 2*padding - K{sym}) // stride + 1 = ({n} + {2 * pa} - {k}) // {sa} + 1"
            f" = {(n + 2 * pa - k) // sa + 1}; did you leave out the {what}?"
        )

    def flip(k):
        return np.ascontiguousarray(np.asarray(k)[..., ::-1, ::-1])

    def unit_stride_cropped(case: Case):
        right = _first(reference(*copy.deepcopy(list(case.values()))))
        dense = with_args(reference, **{stride: 1})(case)
        return _on_out(dense, lambda d: d[..., : right.shape[-2], : right.shape[-1]])

    def one_sided(case: Case):
        ph, pw = _pair(case[padding])
        xp = np.asarray(case[x])
        widths = [(0, 0)] * (xp.ndim - 2) + [(ph, 0), (pw, 0)]
        return with_args(reference, **{x: np.pad(xp, widths), padding: 0})(case)

    def swapped(case: Case):
        return _on_out(reference(*copy.deepcopy(list(case.values()))), lambda o: np.swapaxes(o, -1, -2))

    def no_bias(case: Case):
        return with_args(reference, **{b: lambda v: np.zeros_like(v)})(case)

    def first_channel_only(case: Case):
        if np.ndim(case[x]) != 4 or np.shape(case[x])[1] < 2:
            raise KeyError(x)  # one channel: the same answer
        return with_args(reference, **{x: lambda v: np.asarray(v)[:, :1], w: lambda v: np.asarray(v)[:, :1]})(case)

    def unpadded_size(case: Case):
        p_ = _pair(case[padding])
        if p_ == (0, 0):
            raise KeyError(padding)
        right = _first(reference(*copy.deepcopy(list(case.values()))))
        xs, ws = np.shape(case[x]), np.shape(case[w])
        s_ = _pair(case.get(stride, 1))
        ho, wo = ((xs[-2] - ws[-2]) // s_[0] + 1, (xs[-1] - ws[-1]) // s_[1] + 1)
        if ho < 1 or wo < 1:
            raise KeyError(padding)
        return _on_out(right, lambda o: o[..., :ho, :wo])

    def bias_on_last_axis(case: Case):
        if np.ndim(case[x]) != 4 or b is None:
            raise KeyError(b)
        bias = np.asarray(case[b])
        out = with_args(reference, **{b: lambda v: np.zeros_like(v)})(case)
        o = _first(out)
        flat = o.reshape(o.shape[0], o.shape[1], -1)
        if flat.shape[-1] != bias.shape[0]:
            raise KeyError(b)  # numpy would raise instead
        return _on_out(out, lambda o: (flat + bias).reshape(o.shape))

    mistakes = [
        _needs(Mistake(lambda c: formula(c, "padding"), with_args(reference, **{padding: 0})), padding),
        _needs(Mistake(lambda c: formula(c, "stride"), with_args(reference, **{stride: 1})), stride),
        Mistake(
            "your output equals TRUE convolution: the kernel is flipped (rotated 180 degrees). "
            "A CNN's 'convolution' is cross-correlation: multiply the window by the kernel as it is, "
            "without flipping it.",
            with_args(reference, **{w: flip}),
        ),
        _needs(Mistake(
            "the output has the strided size but the window moved by 1 pixel: output position "
            "(i, j) starts at input row i*stride and column j*stride.",
            unit_stride_cropped,
        ), stride),
        # before "one side only": on the top-left windows the two give the same numbers, and a
        # size computed from the unpadded input is by far the commoner mistake
        _needs(Mistake(
            lambda c: "the output size comes from the PADDED input: " + formula(c, "padding").split(";")[0]
            + "; your output has the size of the unpadded input's windows.", unpadded_size), padding),
        _needs(Mistake(
            "zeros were added on one side only: padding adds `padding` rows at the top AND the "
            "bottom, and `padding` columns on the left AND the right.",
            one_sided,
        ), padding),
        Mistake(
            "height and width look swapped: axis -2 is the height (rows), axis -1 the width (columns).",
            swapped,
        ),
    ]
    mistakes.append(Mistake(
        "your output uses input channel 0 only: a filter covers ALL input channels. Multiply the "
        "window of every channel, x_pad[n, :, rows, cols], by w[f] and sum it all (then add b[f]).",
        first_channel_only))
    if b is not None:
        mistakes.append(_needs(Mistake("did you forget to add the bias b[f] to every output of filter f?",
                                       no_bias), b))
        mistakes.append(_needs(Mistake(
            "the bias was added along the last axis: b[f] belongs to every output of filter f "
            "(axis 1): b[:, None] for (N, F, H_out*W_out), b[None, :, None, None] for (N, F, H_out, W_out).",
            bias_on_last_axis), b))

    def bias_shape(case: Case, exc: BaseException) -> str | None:
        if b is None or b not in case:
            return None
        bs = tuple(np.shape(case[b]))
        shapes = _shapes_in(str(exc))
        if bs not in shapes or len(shapes) < 2:
            return None
        other = next(sh for sh in shapes if sh != bs)
        return (f"the bias b {bs} does not fit {other}: numpy lines shapes up from the LAST axis, "
                f"but b[f] belongs to filter f (axis 1). Give b the filter axis: b[:, None] for "
                f"(N, F, H_out*W_out), b[None, :, None, None] for (N, F, H_out, W_out).")

    def sliced_twice(case: Case, exc: BaseException) -> str | None:
        xs, ws = np.shape(case[x]), np.shape(case[w])
        ph, pw = _pair(case.get(padding, 0))
        widths = {xs[-1], xs[-1] + 2 * pw}
        kernel = tuple(ws[-2:])
        for sh in _shapes_in(str(exc)):
            if len(sh) >= 2 and sh[-1] in widths and sh[-1] != kernel[-1] and sh[-2] <= kernel[-2]:
                return (f"a window of shape {sh} spans every column: a[i:i+KH][j:j+KW] slices the "
                        f"ROWS twice (the second [...] picks rows of the first slice). Slice both "
                        f"axes at once: a[i:i+KH, j:j+KW].")
        return None

    def window_vs_kernel(case: Case, exc: BaseException) -> str | None:
        xs, ws = np.shape(case[x]), np.shape(case[w])
        ph, pw = _pair(case.get(padding, 0))
        kernel = tuple(ws[1:]) if len(ws) == 4 else tuple(ws)  # what one window must match
        shapes = _shapes_in(str(exc))
        if kernel not in shapes:
            return None  # not a window times the kernel: no guess
        windows = [sh for sh in shapes if sh != kernel and len(sh) == len(kernel)]
        if not windows:
            return None
        pad_hw = (f"np.pad(x, ((0, 0), (0, 0), ({ph}, {ph}), ({pw}, {pw})))" if len(xs) == 4
                  else f"np.pad(image, (({ph}, {ph}), ({pw}, {pw})))")
        if len(kernel) == 3 and windows and windows[0][0] != kernel[0]:
            return (f"a window has {windows[0][0]} channels but each filter has {kernel[0]} (w[f] is "
                    f"{kernel}): did you pad the channel or batch axis? Pad only the height and the "
                    f"width: {pad_hw}.")
        if windows and all(a <= k for a, k in zip(windows[0][-2:], kernel[-2:])):
            padded = f"Slice the PADDED input ({pad_hw}), and let" if ph or pw else "Let"
            return (f"a window of shape {windows[0]} is smaller than the kernel {kernel}: it was cut "
                    f"short at the border. {padded} the output positions run over range(H_out) and "
                    f"range(W_out) only: " + formula(case, "padding").split(";")[0] + ".")
        if len(kernel) == 3 and windows[0][1:] != kernel[1:] and len(xs) == 4:
            return (f"a window of shape {windows[0]} times w[f] {kernel}: a window must have the "
                    f"filter's shape (all channels, KH rows, KW columns); check its slice bounds.")
        return (f"a window of shape {windows[0]} times the kernel {kernel}: a window must have the "
                f"kernel's shape; check the bounds of its slice.")

    mistakes.append(ErrorHint(ValueError, r"operands could not be broadcast together", bias_shape))
    mistakes.append(ErrorHint(ValueError, r"operands could not be broadcast together", sliced_twice))
    mistakes.append(ErrorHint(ValueError, r"operands could not be broadcast together", window_vs_kernel))
    return mistakes


def _shapes_in(message: str) -> list[tuple[int, ...]]:
    """The array shapes in a numpy error message: '... with shapes (5,3,3) (3,3,3)' -> [(5, 3, 3), (3, 3, 3)]."""
    return [tuple(int(v) for v in m.replace(" ", "").split(",") if v)
            for m in re.findall(r"\(([\d,\s]+)\)", message)]


def pool_mistakes(
    reference: Callable, *, x: str = "x", kernel_size: str = "kernel_size", stride: str = "stride"
) -> list[Mistake | ErrorHint]:
    """The usual mistakes of a pooling exercise: ignored the stride, assumed non-overlapping
    windows (stride = kernel size), window stepped by 1 while the output has the strided size,
    swapped height and width; and, when numpy raises, a window not reduced to one number per image
    and channel."""

    def formula(case: Case, what: str) -> str:
        (kh, _), n = _pair(case[kernel_size]), np.shape(case[x])[-2]
        s = case.get(stride)
        sh = kh if s is None else _pair(s)[0]
        return (
            f"H_out = (H - K) // stride + 1 = ({n} - {kh}) // {sh} + 1 = {(n - kh) // sh + 1}; {what}"
        )

    def swapped(case: Case):
        return _on_out(reference(*copy.deepcopy(list(case.values()))), lambda o: np.swapaxes(o, -1, -2))

    def unit_stride_cropped(case: Case):
        right = _first(reference(*copy.deepcopy(list(case.values()))))
        dense = with_args(reference, **{stride: 1})(case)
        return _on_out(dense, lambda d: d[..., : right.shape[-2], : right.shape[-1]])

    def not_reduced(case: Case, exc: BaseException) -> str | None:
        found = re.search(r"from shape \(([\d,\s]*)\) into shape \(([\d,\s]*)\)", str(exc))
        if not found or len([v for v in found.group(2).split(",") if v.strip()]) > 2:
            return None  # not "a window assigned to the (N, C) outputs of one position"
        N, C = np.shape(case[x])[:2]
        return (f"each window must become ONE number per image and channel: reduce it over the "
                f"height and the width (axes 2 and 3), e.g. window.max(axis=(2, 3)) has shape "
                f"(N, C) = {(N, C)}; numpy could not fit ({found.group(1)}) into it.")

    return [
        _needs(Mistake(lambda c: formula(c, "did you move the window by 1 instead of by the stride?"),
                       with_args(reference, **{stride: 1})), stride),
        _needs(Mistake(lambda c: formula(c, "the windows may overlap: step by `stride`, not by the "
                                            "kernel size."),
                       with_args(reference, **{stride: None})), stride),
        _needs(Mistake("the output has the right size, but window (i, j) starts at row i*stride and "
                       "column j*stride: did you leave the stride out of the slice?",
                       unit_stride_cropped), stride),
        Mistake("height and width look swapped: axis -2 is the height, axis -1 the width.", swapped),
        ErrorHint(ValueError, r"could not broadcast input array from shape", not_reduced),
    ]


def pad_mistakes(*, x: str = "x", padding: str = "padding") -> list[Mistake | ErrorHint]:
    """The usual mistakes of zero padding an NCHW batch (or an HW image): padded the batch and
    channel axes too, padded one side only, swapped the (height, width) padding, padded twice; and,
    when the function raises on a pair ``padding=(ph, pw)``, that padding can be a pair."""

    def padded(case: Case, widths_of: Callable[[int, int, int], list]) -> np.ndarray:
        xs = np.asarray(case[x])
        ph, pw = _pair(case[padding])
        return np.pad(xs, widths_of(xs.ndim, ph, pw))

    def spatial(nd, top, left, bottom=None, right=None):
        bottom = top if bottom is None else bottom
        right = left if right is None else right
        return [(0, 0)] * (nd - 2) + [(top, bottom), (left, right)]

    def pair_padding(case: Case, exc: BaseException) -> str | None:
        pad = case.get(padding)
        if not isinstance(pad, (tuple, list)):
            return None
        return (f"this case has padding={tuple(pad)!r}: padding is an int P OR a pair (PH, PW). "
                f"Turn it into two ints first, e.g. ph, pw = (padding, padding) if "
                f"np.isscalar(padding) else padding.")

    return [
        ErrorHint((TypeError, ValueError), None, pair_padding),
        Mistake(
            "you padded every axis: only H and W get zeros; the batch (N) and channel (C) axes keep "
            "their size, e.g. np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).",
            lambda c: np.pad(np.asarray(c[x]), c[padding]),  # np.pad(x, padding): every axis
        ),
        Mistake(
            "zeros were added on one side only: `padding` rows go at the top AND the bottom, "
            "`padding` columns on the left AND the right.",
            lambda c: padded(c, lambda nd, ph, pw: spatial(nd, ph, pw, 0, 0)),
        ),
        Mistake(
            "the height and width paddings look swapped: padding=(ph, pw) pads the rows (axis -2) "
            "by ph and the columns (axis -1) by pw.",
            lambda c: padded(c, lambda nd, ph, pw: spatial(nd, pw, ph)),
        ),
        Mistake(
            "you added 2*padding on each side: `padding` is the number of zeros on EACH side.",
            lambda c: padded(c, lambda nd, ph, pw: spatial(nd, 2 * ph, 2 * pw)),
        ),
    ]


def output_size_mistakes(
    *, n: str = "n", kernel_size: str = "kernel_size", stride: str = "stride", padding: str = "padding"
) -> list[Mistake]:
    """The usual mistakes in the output-size formula ``(n + 2*padding - kernel_size) // stride + 1``:
    true division, rounding up, padding counted once, the +1 inside the division or left out,
    padding or stride left out."""

    def parts(c: Case):
        return c[n], c[kernel_size], c.get(stride, 1), c.get(padding, 0)

    def shown(c: Case) -> str:
        N, K, S, P = parts(c)
        return f"({N} + 2*{P} - {K}) // {S} + 1 = {(N + 2 * P - K) // S + 1}"

    return [
        Mistake(lambda c: f"the division must round down: {shown(c)} (use //, not /).",
                lambda c: (parts(c)[0] + 2 * parts(c)[3] - parts(c)[1]) / parts(c)[2] + 1),
        Mistake(lambda c: f"a window that does not fit is dropped, so round DOWN: {shown(c)}.",
                lambda c: -(-(parts(c)[0] + 2 * parts(c)[3] - parts(c)[1]) // parts(c)[2]) + 1),
        Mistake(lambda c: f"padding adds zeros on both sides, so it counts twice: {shown(c)}.",
                lambda c: (parts(c)[0] + parts(c)[3] - parts(c)[1]) // parts(c)[2] + 1),
        Mistake(lambda c: f"the +1 comes after the division (it counts the first window): {shown(c)}.",
                lambda c: (parts(c)[0] + 2 * parts(c)[3] - parts(c)[1] + 1) // parts(c)[2]),
        Mistake(lambda c: f"did you forget the +1 (the first window)? {shown(c)}.",
                lambda c: (parts(c)[0] + 2 * parts(c)[3] - parts(c)[1]) // parts(c)[2]),
        Mistake(lambda c: f"did you leave out the padding? {shown(c)}.",
                lambda c: (parts(c)[0] - parts(c)[1]) // parts(c)[2] + 1),
        Mistake(lambda c: f"did you leave out the stride? {shown(c)}.",
                lambda c: parts(c)[0] + 2 * parts(c)[3] - parts(c)[1] + 1),
    ]


def _max_pool_backward_by(pick: str, dout: np.ndarray, x: np.ndarray, kernel_size: Any, stride: Any = None):
    """Max-pool backward where a tie sends the gradient to the ``"last"`` maximum, to ``"every"``
    maximum, or shares it equally (``"share"``)."""
    x, dout = np.asarray(x, dtype=float), np.asarray(dout, dtype=float)
    kh, kw = _pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    N, C = x.shape[:2]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(N, C, -1)
            is_max = win == win.max(axis=2, keepdims=True)
            if pick == "last":
                last = win.shape[2] - 1 - is_max[:, :, ::-1].argmax(axis=2)
                mask = (np.arange(win.shape[2]) == last[:, :, None]).astype(float)
            elif pick == "every":
                mask = is_max.astype(float)
            else:
                mask = is_max / is_max.sum(axis=2, keepdims=True)
            dx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += (mask * dout[:, :, i, j, None]).reshape(N, C, kh, kw)
    return dx


def max_pool_tie_mistakes(*, x: str = "x", dout: str = "dout") -> list[Mistake]:
    """The mistakes of a max-pooling backward pass on windows whose maximum appears more than once:
    the gradient sent to the LAST maximum, to EVERY maximum, or shared between them. (They apply
    only to cases with a tie: elsewhere they equal the right answer.)"""

    def variant(pick: str) -> Callable[[Case], Any]:
        def wrong(case: Case) -> Any:
            if list(case)[:2] != [dout, x]:
                raise KeyError(x)  # not a backward(dout, x, kernel_size, stride) case
            return _max_pool_backward_by(pick, *case.values())
        return wrong

    first_rule = ("np.argmax returns the FIRST maximum in row-major order, and the gradient goes "
                  "there only")
    return [
        Mistake(f"in a tie your gradient went to the LAST maximum of the window: {first_rule} "
                "(window.argmax(axis=2), not a search from the end).", variant("last")),
        Mistake(f"in a tie every position equal to the maximum got the gradient: {first_rule}.",
                variant("every")),
        Mistake(f"in a tie the gradient was shared between the maxima: {first_rule}, all of it.",
                variant("share")),
    ]

"""cnnlib.grading: right answers pass, each known mistake gets its hint, the reference is refused,
and every message names the case and the shapes."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import grading
from cnnlib.grading import guard as _guard
from cnnlib import functional as F
from cnnlib import shapes


# ------------------------------------------------------------------------------------------------
# learners' functions: one right version of each, written by hand as a learner would


def conv_naive(x, w, b, stride=1, padding=0):
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, _, H, W = xp.shape
    Fn, _, KH, KW = w.shape
    out = np.zeros((N, Fn, (H - KH) // sh + 1, (W - KW) // sw + 1))
    for n in range(N):
        for f in range(Fn):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    out[n, f, i, j] = np.sum(xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW] * w[f]) + b[f]
    return out


def conv_single(image, kernel, stride=1, padding=0):
    return conv_naive(image[None, None], kernel[None, None], np.zeros(1), stride, padding)[0, 0]


conv_single_ref = grading.conv2d_hw


def pad_naive(x, padding):
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    out = np.zeros(x.shape[:2] + (x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), dtype=x.dtype)
    out[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] = x
    return out


def max_pool_naive(x, kernel_size, stride=None):
    s = kernel_size if stride is None else stride
    N, C, H, W = x.shape
    out = np.zeros((N, C, (H - kernel_size) // s + 1, (W - kernel_size) // s + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * s:i * s + kernel_size, j * s:j * s + kernel_size].max(axis=(2, 3))
    return out, None


def output_size(n, kernel_size, stride=1, padding=0):
    return (n + 2 * padding - kernel_size) // stride + 1


STYLE_CASE = {  # the example of STYLE.md
    "x": np.random.default_rng(0).standard_normal((2, 3, 7, 5)),
    "w": np.random.default_rng(1).standard_normal((4, 3, 3, 3)),
    "b": np.random.default_rng(2).standard_normal(4),
    "stride": 2,
    "padding": 1,
}


def failure(fn, reference, cases, **kwargs) -> str:
    """The message of the GradingFailure that check_function raises."""
    with pytest.raises(grading.GradingFailure) as info:
        grading.check_function(fn, reference, cases, quiet=True, **kwargs)
    return info.value.message


# ------------------------------------------------------------------------------------------------
# right answers pass, on visible-style and generated cases


@pytest.mark.parametrize("fn,reference,cases,kwargs", [
    (conv_naive, F.conv2d, grading.conv_cases(25, seed=1), {}),
    (conv_naive, F.conv2d, grading.conv_cases(10, seed=2, pairs=True), {}),
    (conv_single, conv_single_ref, grading.conv_cases(20, seed=3, layout="hw"), {}),
    (pad_naive, F.pad2d, grading.pad_cases(20, seed=4), {"exact_dtype": True}),
    (max_pool_naive, F.max_pool2d_forward, grading.pool_cases(20, seed=5), {"outputs": ("out", None)}),
    (output_size, shapes.conv_output_size, grading.size_cases(40, seed=6), {}),
    (lambda x, w, b: x @ w + b, lambda x, w, b: F.linear_forward(x, w, b)[0], grading.linear_cases(10, seed=7), {}),
    (lambda x: np.maximum(x, 0), lambda x: F.relu_forward(x)[0], grading.array_cases(10, seed=8), {}),
], ids=["conv", "conv-pairs", "conv-hw", "pad", "maxpool", "output-size", "linear", "relu"])
def test_right_answers_pass(fn, reference, cases, kwargs, capsys):
    grading.check_function(fn, reference, cases, name="exercise", **kwargs)
    assert capsys.readouterr().out.strip() == f"✔ exercise: all {len(cases)} cases pass"


def test_float32_answers_get_float32_tolerances():
    cases = grading.conv_cases(5, seed=9, dtype=np.float32)
    grading.check_function(lambda x, w, b, s, p: conv_naive(x, w, b, s, p).astype(np.float32), F.conv2d, cases, quiet=True)


# ------------------------------------------------------------------------------------------------
# messages read like a teaching assistant


def test_the_style_guide_example_word_for_word():
    message = failure(lambda x, w, b, stride, padding: conv_naive(x, w, b, stride, 0), F.conv2d,
                      [STYLE_CASE], name="conv_forward_naive", mistakes=grading.conv_mistakes(F.conv2d))
    assert message == (
        "conv_forward_naive, case 1 of 1: x (2, 3, 7, 5), w (4, 3, 3, 3), b (4,), stride=2, padding=1\n"
        "  expected output shape (2, 4, 4, 3), got (2, 4, 3, 2)\n"
        "  hint: H_out = (H + 2*padding - KH) // stride + 1 = (7 + 2 - 3) // 2 + 1 = 4; "
        "did you leave out the padding?"
    )


def test_case_numbers_count_all_cases():
    cases = [dict(STYLE_CASE, padding=0), STYLE_CASE, dict(STYLE_CASE, stride=1)]
    message = failure(lambda x, w, b, stride, padding: conv_naive(x, w, b, stride, 0), F.conv2d, cases, name="conv")
    assert message.startswith("conv, case 2 of 3: x (2, 3, 7, 5)")


def test_value_differences_give_index_values_and_count():
    expected = F.conv2d(*STYLE_CASE.values())
    wrong = expected.copy()
    wrong[1, 2, 3, 1] += 1.0
    message = failure(lambda *args: wrong, F.conv2d, [STYLE_CASE], name="conv")
    assert "output: 1 of 96 values differ" in message
    assert f"first at index (1, 2, 3, 1): expected {expected[1, 2, 3, 1]:.6g}, got {wrong[1, 2, 3, 1]:.6g}" in message


CONV_MISTAKES = [
    ("forgot padding", lambda x, w, b, s, p: conv_naive(x, w, b, s, 0), "did you leave out the padding?"),
    ("forgot stride", lambda x, w, b, s, p: conv_naive(x, w, b, 1, p), "did you leave out the stride?"),
    ("flipped kernel", lambda x, w, b, s, p: conv_naive(x, w[..., ::-1, ::-1], b, s, p), "TRUE convolution"),
    ("stride only in the size", lambda x, w, b, s, p: conv_naive(x, w, b, 1, p)[..., :4, :3], "moved by 1 pixel"),
    ("output size of the unpadded input", lambda x, w, b, s, p: conv_naive(x, w, b, s, p)[..., :3, :2],
     "comes from the PADDED input"),
    ("channel 0 only", lambda x, w, b, s, p: conv_naive(x[:, :1], w[:, :1], b, s, p), "input channel 0 only"),
    ("forgot bias", lambda x, w, b, s, p: conv_naive(x, w, np.zeros_like(b), s, p), "forget to add the bias"),
]


@pytest.mark.parametrize("label,fn,hint", CONV_MISTAKES, ids=[m[0] for m in CONV_MISTAKES])
def test_each_conv_mistake_gets_its_hint(label, fn, hint):
    message = failure(fn, F.conv2d, [STYLE_CASE], mistakes=grading.conv_mistakes(F.conv2d))
    assert "case 1 of 1: x (2, 3, 7, 5), w (4, 3, 3, 3), b (4,), stride=2, padding=1" in message
    hints = [line for line in message.splitlines() if line.strip().startswith("hint:")]
    assert len(hints) == 1 and hint in hints[0], message


def test_one_sided_padding_is_told_apart_from_an_unpadded_size():
    """With stride 2 the two mistakes give the same numbers on STYLE_CASE (the size from the
    unpadded input wins, as the commoner); with stride 1 the one-sided padding shows."""
    case = dict(STYLE_CASE, stride=1)
    one_sided = lambda x, w, b, s, p: conv_naive(np.pad(x, ((0, 0), (0, 0), (p, 0), (p, 0))), w, b, s, 0)
    message = failure(one_sided, F.conv2d, [case], mistakes=grading.conv_mistakes(F.conv2d))
    assert "one side only" in hint_of(message) and "PADDED input" not in message, message
    unpadded = lambda x, w, b, s, p: conv_naive(x, w, b, s, p)[..., :5, :3]
    message = failure(unpadded, F.conv2d, [case], mistakes=grading.conv_mistakes(F.conv2d))
    assert "comes from the PADDED input" in hint_of(message) and "one side" not in message, message


def test_swapped_height_and_width_is_spotted():
    case = {"image": np.arange(12.0).reshape(3, 4), "kernel": np.ones((1, 1))}
    message = failure(lambda image, kernel: image.T.copy(), lambda image, kernel: image * kernel[0, 0], [case],
                      mistakes=grading.conv_mistakes(lambda image, kernel: conv_single_ref(image, kernel),
                                                     x="image", w="kernel", b=None))
    assert "expected output shape (3, 4), got (4, 3)" in message and "swapped" in message


PAD_MISTAKES = [
    ("all axes", lambda x, p: np.pad(x, p), "padded every axis"),
    ("one side", lambda x, p: np.pad(x, ((0, 0), (0, 0), (p[0], 0), (p[1], 0))), "one side only"),
    ("swapped", lambda x, p: np.pad(x, ((0, 0), (0, 0), (p[1], p[1]), (p[0], p[0]))), "swapped"),
    ("doubled", lambda x, p: np.pad(x, ((0, 0), (0, 0), (2 * p[0], 2 * p[0]), (2 * p[1], 2 * p[1]))), "2*padding"),
]


@pytest.mark.parametrize("label,fn,hint", PAD_MISTAKES, ids=[m[0] for m in PAD_MISTAKES])
def test_each_padding_mistake_gets_its_hint(label, fn, hint):
    case = {"x": np.ones((2, 3, 4, 5)), "padding": (1, 2)}
    message = failure(fn, F.pad2d, [case], name="pad2d", mistakes=grading.pad_mistakes())
    assert message.startswith("pad2d, case 1 of 1: x (2, 3, 4, 5), padding=(1, 2)\n")
    assert "expected output shape (2, 3, 6, 9)" in message
    assert hint in message.split("hint:")[1]


SIZE_MISTAKES = [
    ("true division", lambda n, k, s, p: (n + 2 * p - k) / s + 1, "use //, not /"),
    ("rounded up", lambda n, k, s, p: -(-(n + 2 * p - k) // s) + 1, "round DOWN"),
    ("padding once", lambda n, k, s, p: (n + p - k) // s + 1, "counts twice"),
    ("no +1", lambda n, k, s, p: (n + 2 * p - k) // s, "+1"),
    ("no padding", lambda n, k, s, p: (n - k) // s + 1, "leave out the padding"),
    ("no stride", lambda n, k, s, p: n + 2 * p - k + 1, "leave out the stride"),
]


@pytest.mark.parametrize("label,fn,hint", SIZE_MISTAKES, ids=[m[0] for m in SIZE_MISTAKES])
def test_each_output_size_mistake_gets_its_hint(label, fn, hint):
    case = {"n": 12, "kernel_size": 3, "stride": 2, "padding": 4}  # every mistake gives another answer
    message = failure(fn, shapes.conv_output_size, [case], mistakes=grading.output_size_mistakes())
    assert "n=12, kernel_size=3, stride=2, padding=4" in message
    assert hint in message and "(12 + 2*4 - 3) // 2 + 1 = 9" in message


def test_a_float_size_is_not_an_int():
    message = failure(lambda n, k, s, p: float((n + 2 * p - k) // s + 1), shapes.conv_output_size,
                      [{"n": 200, "kernel_size": 5, "stride": 2, "padding": 1}])
    assert "expected output 99 (an int), got 99.0 (a float)" in message


def test_pool_mistakes():
    case = {"x": np.random.default_rng(0).permutation(np.arange(49.0)).reshape(1, 1, 7, 7), "kernel_size": 2, "stride": 1}
    message = failure(lambda x, k, s: max_pool_naive(x, k, None), F.max_pool2d_forward, [case],
                      outputs=("out", None), mistakes=grading.pool_mistakes(F.max_pool2d_forward))
    assert "expected out shape (1, 1, 6, 6), got (1, 1, 3, 3)" in message and "overlap" in message


# ------------------------------------------------------------------------------------------------
# generic mistakes: None, in-place changes, integer outputs, exceptions, unfinished work


def test_returned_none():
    message = failure(lambda x, padding: None, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}])
    assert "returned None" in message and "return" in message


def test_changing_the_input_in_place_is_caught():
    def pad_in_place(x, padding):
        out = pad_naive(x, padding)
        x[0, 0, 0, 0] = 7.0
        return out

    message = failure(pad_in_place, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}])
    assert "changed its input `x` in place" in message and "index (0, 0, 0, 0): 1 became 7" in message


def test_integer_output_where_floats_are_expected():
    case = {"image": (np.arange(20) * 13 % 256).astype(np.uint8).reshape(4, 5), "kernel": np.full((3, 3), 1 / 9)}

    def zeros_like_image(image, kernel):
        out = np.zeros_like(image)[:2, :3]
        for i in range(2):
            for j in range(3):
                out[i, j] = np.sum(image[i:i + 3, j:j + 3] * kernel)
        return out

    message = failure(zeros_like_image, lambda image, kernel: conv_single_ref(image.astype(float), kernel), [case])
    assert "image (4, 5) uint8, kernel (3, 3)" in message
    assert "got uint8" in message and "np.zeros_like" in message


def test_the_dtype_rule_is_enforced_by_default():
    """One dtype rule everywhere: float32 in, float32 out (exact_dtype=False relaxes it)."""
    case = {"x": np.ones((1, 1, 2, 2), np.float32), "padding": 1}
    grading.check_function(lambda x, p: pad_naive(x, p).astype(np.float64), F.pad2d, [case], quiet=True,
                           exact_dtype=False)
    message = failure(lambda x, p: pad_naive(x, p).astype(np.float64), F.pad2d, [case])
    assert "expected output dtype float32, got float64" in message
    assert "dtype=x.dtype" in message


def test_float_counts_fail_where_integers_are_expected():
    """02 ex 2.2 says "an integer array": float counts must not pass."""
    message = failure(lambda n: np.ones(n), lambda n: np.ones(n, dtype=int), [{"n": 3}])
    assert "expected output dtype int64, got float64" in message and "dtype=int" in message


def test_a_list_is_not_an_array():
    message = failure(lambda x: [1.0, 2.0], lambda x: np.array([1.0, 2.0]), [{"x": 1}])
    assert "expected output as a numpy array of shape (2,), got list" in message


def test_a_learners_exception_is_reported_with_the_case_and_chained():
    def broken(x, padding):
        return x[5, 0, 0, 0]

    with pytest.raises(grading.GradingFailure) as info:
        grading.check_function(broken, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}], quiet=True)
    message = info.value.message
    assert message.startswith("broken, case 1 of 1: x (1, 1, 2, 2), padding=1\n")
    assert "your function raised IndexError: index 5 is out of bounds for axis 0 with size 1" in message
    assert "in broken (return x[5, 0, 0, 0])" in message
    assert isinstance(info.value.__cause__, IndexError)  # the traceback is shown above the message


def test_not_implemented_yet_is_short_and_friendly():
    def todo(x, padding):
        raise NotImplementedError()

    with pytest.raises(grading.GradingFailure) as info:
        grading.check_function(todo, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}], quiet=True)
    assert info.value.message == (
        "todo: not implemented yet. Replace `raise NotImplementedError()` with your code and run the cell again."
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_grading_failures_are_assertion_errors():
    assert issubclass(grading.GradingFailure, AssertionError)


def test_not_a_function():
    message = failure(42, F.pad2d, [{"x": np.ones((1, 1, 1, 1)), "padding": 0}], name="pad2d")
    assert message.startswith("pad2d: expected a function, got int")


# ------------------------------------------------------------------------------------------------
# the reference is switched off while the learner's function runs


def test_calling_the_reference_is_refused_and_named():
    def cheat(x, padding):
        return F.pad2d(x, padding)

    with pytest.raises(grading.GradingFailure) as info:
        grading.check_function(cheat, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}], name="pad2d", quiet=True)
    message = info.value.message
    assert message.startswith("pad2d, case 1 of 1: x (1, 1, 2, 2), padding=1\n")
    assert "pad2d: your code called cnnlib's reference `cnnlib.functional.pad2d`" in message
    assert isinstance(info.value.__cause__, _guard.ReferenceBlockedError)
    assert not _guard.is_blocked()  # switched back on after the check
    assert F.pad2d(np.ones((1, 1, 1, 1)), 1).shape == (1, 1, 3, 3)


def test_any_reference_module_is_refused():
    message = failure(lambda n, k, s, p: shapes.conv_output_size(n, k, s, p), shapes.conv_output_size,
                      [{"n": 5, "kernel_size": 3, "stride": 1, "padding": 0}], name="conv_output_size")
    assert "cnnlib.shapes.conv_output_size" in message


# ------------------------------------------------------------------------------------------------
# hidden tests: seeded random cases that defeat hard-coding


def test_hard_coded_answers_fail_the_hidden_cases():
    visible = [{"n": 200, "kernel_size": 5, "stride": 2, "padding": 1}, {"n": 99, "kernel_size": 3, "stride": 1, "padding": 0}]
    answers = {(200, 5, 2, 1): 99, (99, 3, 1, 0): 97}

    def hard_coded(n, kernel_size, stride, padding):
        return answers.get((n, kernel_size, stride, padding), 1)

    grading.check_function(hard_coded, shapes.conv_output_size, visible, quiet=True)
    failure(hard_coded, shapes.conv_output_size, grading.size_cases(20, seed=1))


@pytest.mark.parametrize("make", [
    lambda s: grading.conv_cases(8, seed=s), lambda s: grading.conv_cases(8, seed=s, layout="hw"),
    lambda s: grading.pool_cases(8, seed=s), lambda s: grading.pool_cases(8, seed=s, ties=True),
    lambda s: grading.pad_cases(8, seed=s),
    lambda s: grading.image_cases(8, seed=s, rgb=True, kernel=True), lambda s: grading.size_cases(8, seed=s),
    lambda s: grading.linear_cases(8, seed=s), lambda s: grading.array_cases(8, seed=s),
])
def test_generators_are_seeded(make):
    a, b, c = make(1), make(1), make(2)
    assert grading.describe_case(a[0]) == grading.describe_case(b[0])
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert any(grading.describe_case(x) != grading.describe_case(y) or
               any(not np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, c))


def test_conv_cases_cover_the_awkward_corners():
    cases = grading.conv_cases(20, seed=123)
    for c in cases:  # all valid for the reference
        F.conv2d(*c.values())
    assert any(c["x"].shape[0] == 1 for c in cases) and any(c["x"].shape[1] == 1 for c in cases)
    assert any(c["stride"] > 1 for c in cases) and any(c["padding"] > 0 for c in cases)
    assert any(c["x"].shape[2] != c["x"].shape[3] for c in cases)
    assert any(c["w"].shape[2] != c["w"].shape[3] for c in cases)
    assert any(c["w"].shape[2] % 2 == 1 and c["w"].shape[2] > 1 for c in cases)
    pairs = grading.conv_cases(20, seed=5, pairs=True)
    assert any(isinstance(c["stride"], tuple) or isinstance(c["padding"], tuple) for c in pairs)


def test_pool_cases_have_overlapping_windows_and_unique_maxima():
    cases = grading.pool_cases(20, seed=9)
    assert any(c["stride"] < c["kernel_size"] for c in cases)
    assert any(c["stride"] > c["kernel_size"] for c in cases)
    for c in cases:
        F.max_pool2d_forward(*c.values())
        assert len(np.unique(c["x"])) == c["x"].size


def test_size_cases_mostly_need_rounding_down():
    cases = grading.size_cases(40, seed=3)
    uneven = [c for c in cases if (c["n"] + 2 * c["padding"] - c["kernel_size"]) % c["stride"]]
    assert len(uneven) > len(cases) / 2
    assert all(c["kernel_size"] <= c["n"] + 2 * c["padding"] for c in cases)


# ------------------------------------------------------------------------------------------------
# values and gradients


def test_check_value(capsys):
    grading.check_value(6600.0, 6600, name="response on the curve")
    assert "✔ response on the curve: correct" in capsys.readouterr().out
    with pytest.raises(grading.GradingFailure, match="expected value 6600, got 6000"):
        grading.check_value(6000, 6600, name="response", hint="add all six products")


def test_tuple_outputs_are_named():
    def conv_backward_ref(dout, x, w, b, stride, padding):
        _, cache = F.conv2d_forward(x, w, b, stride, padding)
        return F.conv2d_backward(dout, cache)

    case = {"dout": np.ones((2, 4, 4, 3)), **STYLE_CASE}

    def wrong_db(dout, x, w, b, stride, padding):
        dx, dw, db = right
        return dx, dw, db * 2

    right = conv_backward_ref(*case.values())
    message = failure(wrong_db, conv_backward_ref, [case], outputs=("dx", "dw", "db"))
    assert "db: 4 of 4 values differ" in message
    message = failure(lambda *a: right[:2], conv_backward_ref, [case], outputs=("dx", "dw", "db"))
    assert "expected a tuple of 3 (dx, dw, db), got a tuple of 2" in message


def test_check_gradients_against_numerical_gradients(capsys):
    cases = grading.linear_cases(4, seed=2)

    def linear_backward(dout, x, w, b):
        return dout @ w.T, x.T @ dout, dout.sum(axis=0)

    grading.check_gradients(linear_backward, lambda x, w, b: x @ w + b, cases, wrt=("x", "w", "b"))
    assert "gradients match numerical gradients (all 4 cases pass)" in capsys.readouterr().out

    def wrong_dw(dout, x, w, b):
        return dout @ w.T, x.T @ dout / 2, dout.sum(axis=0)

    with pytest.raises(grading.GradingFailure, match="dw: .* values differ") as info:
        grading.check_gradients(wrong_dw, lambda x, w, b: x @ w + b, cases, wrt=("x", "w", "b"))
    assert "numerical gradients" in info.value.message


def test_jupyter_shows_the_learners_traceback_then_the_message_and_no_grader_frames():
    def broken(x, padding):
        return x[5, 0, 0, 0]

    with pytest.raises(grading.GradingFailure) as info:
        grading.check_function(broken, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}], quiet=True)
    shown = "\n".join(info.value._render_traceback_())  # what IPython displays
    assert "return x[5, 0, 0, 0]" in shown and "IndexError" in shown
    assert shown.rstrip().endswith("(your traceback is shown above this message)")
    assert "GradingFailure\x1b[0m: broken, case 1 of 1" in shown
    assert "cnnlib/grading/" not in shown


def test_mistakes_work_for_forward_passes_returning_out_and_cache():
    x = np.random.default_rng(0).permutation(np.arange(30.0)).reshape(1, 1, 5, 6)
    case = {"x": x, "kernel_size": 2, "stride": 2}
    right = F.max_pool2d_forward(x, 2, 2)[0]
    wrong = (np.swapaxes(right, -1, -2), None)  # (1, 1, 3, 2) instead of (1, 1, 2, 3)
    message = failure(lambda x, k, s: wrong, F.max_pool2d_forward, [case], outputs=("out", None),
                      mistakes=grading.pool_mistakes(F.max_pool2d_forward))
    assert "expected out shape (1, 1, 2, 3), got (1, 1, 3, 2)" in message and "swapped" in message
    conv_case = {"x": np.ones((1, 1, 5, 5)) * np.arange(5.0), "w": np.arange(9.0).reshape(1, 1, 3, 3),
                 "b": np.zeros(1), "stride": 1, "padding": 0}
    flipped = (conv_naive(conv_case["x"], conv_case["w"][..., ::-1, ::-1], conv_case["b"]), None)
    message = failure(lambda x, w, b, s, p: flipped, F.conv2d_forward, [conv_case], outputs=("out", None),
                      mistakes=grading.conv_mistakes(F.conv2d_forward))
    assert "TRUE convolution" in message


# ------------------------------------------------------------------------------------------------
# hints for exceptions: a mistake that makes numpy raise still gets a teaching assistant's hint


def conv_naive_padding_all_axes(x, w, b, stride=1, padding=0):
    xp = np.pad(x, padding)  # pads N and C too: windows get C + 2*padding channels
    N, _, H, W = x.shape
    Fn, _, KH, KW = w.shape
    out = np.zeros((N, Fn, (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1))
    for n in range(N):
        for f in range(Fn):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    window = xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def hint_of(message: str) -> str:
    hints = [line.strip() for line in message.splitlines() if line.strip().startswith("hint:")]
    assert len(hints) == 1, message
    return hints[0]


def test_padding_the_channel_axis_gets_a_hint_although_numpy_raised():
    with pytest.raises(grading.GradingFailure) as info:
        grading.check_function(conv_naive_padding_all_axes, F.conv2d, [STYLE_CASE], name="conv_forward_naive",
                               mistakes=grading.conv_mistakes(F.conv2d), quiet=True)
    message = info.value.message
    assert message.startswith("conv_forward_naive, case 1 of 1: x (2, 3, 7, 5), w (4, 3, 3, 3)")
    assert "your function raised ValueError: operands could not be broadcast together" in message
    assert "in conv_naive_padding_all_axes (out[n, f, i, j] = np.sum(window * w[f]) + b[f])" in message
    assert hint_of(message) == (
        "hint: a window has 5 channels but each filter has 3 (w[f] is (3, 3, 3)): did you pad the channel or "
        "batch axis? Pad only the height and the width: np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).")
    assert message.endswith("(your traceback is shown above this message)")
    assert isinstance(info.value.__cause__, ValueError)


def test_a_window_cut_short_at_the_border_gets_a_hint():
    def too_many_windows(image, kernel):  # loops over every pixel instead of over H_out x W_out
        kh, kw = kernel.shape
        out = np.zeros(image.shape)
        for i in range(image.shape[0]):
            for j in range(image.shape[1]):
                out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
        return out

    case = {"image": np.ones((5, 6)), "kernel": np.ones((3, 3))}
    message = failure(too_many_windows, grading.conv2d_hw, [case],
                      mistakes=grading.conv_mistakes(grading.conv2d_hw, x="image", w="kernel", b=None))
    assert "hint: a window of shape (3, 2) is smaller than the kernel (3, 3): it was cut short at the border. " \
           "Let the output positions run over range(H_out) and range(W_out) only: " \
           "H_out = (H + 2*padding - KH) // stride + 1 = (5 + 0 - 3) // 1 + 1 = 3." in message


def test_exception_hints_of_the_exercise_come_first_then_the_common_ones():
    def broken(x):
        return np.ones(3) * np.ones(4)

    case = [{"x": np.ones(2)}]
    own = grading.ErrorHint(ValueError, r"could not be broadcast", lambda c, e: f"x has {len(c['x'])} values")
    assert hint_of(failure(broken, lambda x: x, case, mistakes=[own])) == "hint: x has 2 values"
    assert "print their shapes" in hint_of(failure(broken, lambda x: x, case))  # the common hint
    does_not_apply = grading.ErrorHint(ValueError, None, lambda c, e: None)
    other_error = grading.ErrorHint(KeyError, None, "not this one")
    no_match = grading.ErrorHint(ValueError, r"^cannot reshape", "not this one either")
    hint = hint_of(failure(broken, lambda x: x, case, mistakes=[does_not_apply, other_error, no_match]))
    assert "print their shapes" in hint


@pytest.mark.parametrize("body,words", [
    ("out = np.zeros(2); out[0] = x; return out", "where one number goes"),
    ("return x.reshape(3, 5)", "keeps the number of values"),
    ("return np.ones((2, 3)) @ np.ones((2, 3))", "A @ B"),
    ("return x[7]", "loops run over the output size"),
    ("return np.zeros(len(x) / 2)", "// (not /)"),
    ("return x[len(x) / 2:]", "// (not /)"),
    ("return [x[i] for i in range(len(x) / 2)]", "// (not /)"),
])
def test_common_numpy_errors_get_a_hint(body, words):
    namespace = {"np": np}
    exec(f"def learner(x):\n    {body}", namespace)
    message = failure(namespace["learner"], lambda x: x, [{"x": np.arange(4.0)}])
    assert words in hint_of(message), message


def test_an_error_inside_numpy_points_at_the_learners_line():
    def pad_three_axes(x, padding):
        return np.pad(x, ((0, 0), (padding, padding), (padding, padding)))

    message = failure(pad_three_axes, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}])
    assert "where: line" in message and "in pad_three_axes (return np.pad(x, ((0, 0)" in message


def test_a_pool_window_not_reduced_to_one_number_gets_a_hint():
    def max_over_rows_only(x, kernel_size, stride):
        k, s = kernel_size, stride
        out = np.zeros((x.shape[0], x.shape[1], (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=2)
        return out

    reference = grading.without_cache(F.max_pool2d_forward)
    case = {"x": np.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4), "kernel_size": 2, "stride": 2}
    message = failure(max_over_rows_only, reference, [case], mistakes=grading.pool_mistakes(reference))
    assert "hint: each window must become ONE number per image and channel" in message
    assert "(N, C) = (2, 3); numpy could not fit (2,3,2) into it." in message


def test_a_pool_window_stepped_by_one_gets_its_hint():
    def not_strided(x, kernel_size, stride):
        k, s = kernel_size, stride
        out = np.zeros((x.shape[0], x.shape[1], (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1))
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, :, i, j] = x[:, :, i:i + k, j:j + k].max(axis=(2, 3))
        return out

    reference = grading.without_cache(F.max_pool2d_forward)
    case = {"x": np.random.default_rng(0).permutation(49).reshape(1, 1, 7, 7) * 1.0, "kernel_size": 2, "stride": 3}
    message = failure(not_strided, reference, [case], mistakes=grading.pool_mistakes(reference))
    assert "1 of 1: x (1, 1, 7, 7), kernel_size=2, stride=3" in message
    assert "did you leave the stride out of the slice?" in hint_of(message)


# ------------------------------------------------------------------------------------------------
# an exercise that calls an earlier exercise is checked with a correct version of it


def model_params(c_in, filters, k, n_classes):  # calls the learner's conv_params (a global here)
    counts = []
    for c_out in filters:
        counts.append(conv_params(c_in, c_out, k))  # noqa: F821 - the learner's, or a stand-in
        c_in = c_out
    return counts + [(c_in + 1) * n_classes]


def model_reference(c_in, filters, k, n_classes):
    depths = [c_in] + list(filters)
    return [shapes.conv2d_params(d, f, k) for d, f in zip(depths, filters)] + [shapes.linear_params(filters[-1], n_classes)]


MODEL_CASES = [{"c_in": 3, "filters": [16, 32, 64], "k": 2, "n_classes": 133}]


def test_substitute_checks_a_later_exercise_with_a_correct_earlier_one(capsys):
    globals()["conv_params"] = lambda c_in, c_out, k: 0  # the learner's wrong conv_params
    try:
        failure(model_params, model_reference, MODEL_CASES)
        with grading.substitute(globals(), conv_params=grading.reference_stand_in(shapes.conv2d_params)):
            grading.check_function(model_params, model_reference, MODEL_CASES)
        assert "✔ model_params: 1 case passes" in capsys.readouterr().out
        assert conv_params(1, 1, 1) == 0  # noqa: F821 - the learner's is back
    finally:
        del globals()["conv_params"]


def test_substitute_restores_after_a_failure_and_removes_what_was_absent():
    assert "conv_params" not in globals()
    stand_in = grading.reference_stand_in(shapes.conv2d_params)
    with pytest.raises(grading.GradingFailure) as info:
        with grading.substitute(model_params, conv_params=stand_in):  # the function's globals
            grading.check_function(model_params, lambda *a: [0], MODEL_CASES, quiet=True)
    assert "conv_params" not in globals()
    assert not _guard.is_blocked()
    assert ("note: for this check your `conv_params` was replaced by a correct version, so the problem is in "
            "model_params itself.") in info.value.message
    with pytest.raises(TypeError, match="expected globals"):
        with grading.substitute(42, conv_params=stand_in):
            pass


def test_the_learners_own_code_is_still_refused_the_reference():
    """The stand-in runs cnnlib while the guard is on; the learner's function calling the same cnnlib
    function directly is refused, and so is every way of lifting the guard from inside the check."""
    stand_in = grading.reference_stand_in(shapes.conv2d_params)

    def calls_cnnlib(c_in, filters, k, n_classes):
        return [shapes.conv2d_params(c_in, filters[0], k)]

    def makes_a_stand_in(c_in, filters, k, n_classes):
        return [grading.reference_stand_in(shapes.conv2d_params)(c_in, filters[0], k)]

    def lifts_the_guard(c_in, filters, k, n_classes):
        with _guard.allowed():
            return [shapes.conv2d_params(c_in, filters[0], k)]

    def substitutes(c_in, filters, k, n_classes):
        with grading.substitute(globals(), conv_params=stand_in):
            return [conv_params(c_in, filters[0], k)]  # noqa: F821

    def unwraps_the_stand_in(c_in, filters, k, n_classes):
        return [conv_params.__wrapped__(c_in, filters[0], k)]  # noqa: F821

    with grading.substitute(globals(), conv_params=stand_in):
        for cheat, words in [(calls_cnnlib, "your code called cnnlib's reference `cnnlib.shapes.conv2d_params`"),
                             (makes_a_stand_in, "tried to switch cnnlib's reference back on"),
                             (lifts_the_guard, "tried to switch cnnlib's reference back on"),
                             (substitutes, "grading.substitute, which only a test cell may use"),
                             (unwraps_the_stand_in, "your code called cnnlib's reference")]:
            with pytest.raises(grading.GradingFailure) as info:
                grading.check_function(cheat, lambda *a: [208], MODEL_CASES, name="model_params", quiet=True)
            assert words in info.value.message, cheat.__name__
            assert isinstance(info.value.__cause__, _guard.ReferenceBlockedError)


def test_a_stand_in_not_installed_by_substitute_lifts_nothing():
    kept = grading.reference_stand_in(shapes.conv2d_params)  # e.g. made in the learner's solution cell
    assert kept(3, 16, 2) == 208  # outside a check it is an ordinary function

    def uses_kept(c_in, filters, k, n_classes):
        return [kept(c_in, filters[0], k)]

    message = failure(uses_kept, lambda *a: [208], MODEL_CASES, name="model_params")
    assert "your code called cnnlib's reference" in message


def test_the_guard_nests():
    lift = _guard.allowed()
    with _guard.blocked("outer"):
        with lift:
            assert not _guard.is_blocked()
            shapes.conv2d_params(1, 1, 1)
            with _guard.blocked("inner"):  # a check inside a stand-in blocks again
                assert _guard.current() == "inner"
                with pytest.raises(_guard.ReferenceBlockedError, match="inner"):
                    shapes.conv2d_params(1, 1, 1)
            assert not _guard.is_blocked()
        assert _guard.current() == "outer"
        with pytest.raises(_guard.ReferenceBlockedError, match="outer"):
            _guard.allowed()
    assert _guard.current() is None


# ------------------------------------------------------------------------------------------------
# case adapters and small references for backward passes


def test_with_dout_puts_a_seeded_upstream_gradient_first():
    cases = grading.pool_cases(5, seed=3)
    a = grading.with_dout(cases, F.max_pool2d_forward, seed=1)
    b = grading.with_dout(cases, F.max_pool2d_forward, seed=1)
    for case, new, again in zip(cases, a, b):
        assert list(new) == ["dout", "x", "kernel_size", "stride"]
        assert new["dout"].shape == F.max_pool2d_forward(*case.values())[0].shape
        np.testing.assert_array_equal(new["dout"], again["dout"])
        assert new["x"] is case["x"]
    shaped = grading.with_dout(cases, F.avg_pool2d_forward, seed=1, by_shape=["x"])
    assert list(shaped[0]) == ["dout", "x_shape", "kernel_size", "stride"]
    assert shaped[0]["x_shape"] == cases[0]["x"].shape and isinstance(shaped[0]["x_shape"], tuple)
    np.testing.assert_array_equal(shaped[0]["dout"], a[0]["dout"])
    with pytest.raises(KeyError, match="no argument 'image'"):
        grading.with_dout(cases, F.max_pool2d_forward, seed=1, by_shape=["image"])


def test_pool_cases_with_ties_have_windows_with_repeated_maxima():
    cases = grading.pool_cases(12, seed=4, ties=True)
    tied = 0
    for c in cases:
        x, k, s = c["x"], c["kernel_size"], c["stride"]
        assert k >= 2 and set(np.unique(x)) <= {0.0, 1.0, 2.0}
        out = F.max_pool2d_forward(x, k, s)[0]
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                window = x[:, :, i * s:i * s + k, j * s:j * s + k]
                tied += int(((window == out[:, :, i:i + 1, j:j + 1]).sum(axis=(2, 3)) > 1).sum())
    assert tied > 20


def avg_pool_backward_naive(dout, x_shape, kernel_size, stride):
    k, s = kernel_size, stride
    dx = np.zeros(x_shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += dout[:, :, i, j, None, None] / (k * k)
    return dx


def test_check_gradients_of_a_backward_that_takes_x_shape(capsys):
    cases = grading.pool_cases(4, seed=7)
    grading.check_gradients(avg_pool_backward_naive, F.avg_pool2d_forward, cases, wrt=["x"], by_shape=["x"])
    assert "✔ avg_pool_backward_naive: gradients match numerical gradients (all 4 cases pass)" in capsys.readouterr().out

    def twice(dout, x_shape, kernel_size, stride):
        assert isinstance(x_shape, tuple)
        return 2 * avg_pool_backward_naive(dout, x_shape, kernel_size, stride)

    with pytest.raises(grading.GradingFailure) as info:
        grading.check_gradients(twice, F.avg_pool2d_forward, cases, wrt=["x"], by_shape=["x"], quiet=True)
    assert info.value.message.startswith(f"twice, case 1 of 4: x_shape={cases[0]['x'].shape}, kernel_size=")


def test_backward_reference_and_check_function_with_x_shape(capsys):
    reference = grading.backward_reference(F.avg_pool2d_forward, F.avg_pool2d_backward, by_shape=["x"])
    cases = grading.with_dout(grading.pool_cases(6, seed=8), F.avg_pool2d_forward, seed=8, by_shape=["x"])
    grading.check_function(avg_pool_backward_naive, reference, cases)
    assert "all 6 cases pass" in capsys.readouterr().out
    max_reference = grading.backward_reference(F.max_pool2d_forward, F.max_pool2d_backward)
    case = {"dout": np.ones((1, 1, 1, 1)), "x": np.array([[[[3.0, 3.0], [1.0, 0.0]]]]), "kernel_size": 2, "stride": 2}
    np.testing.assert_array_equal(max_reference(*case.values()), [[[[1.0, 0.0], [0.0, 0.0]]]])
    with pytest.raises(ValueError, match="no argument 'x_shape'"):
        grading.backward_reference(F.avg_pool2d_forward, F.avg_pool2d_backward, by_shape=["x_shape"])


def test_known_answer_applies_to_its_case_only():
    x_tie = np.array([[[[3.0, 3.0], [1.0, 0.0]]]])
    mistake = grading.Mistake("the gradient is not shared in a tie",
                              grading.known_answer(np.array([[[[0.5, 0.5], [0.0, 0.0]]]]), x=x_tie))
    reference = grading.backward_reference(F.max_pool2d_forward, F.max_pool2d_backward)
    shared = {"dout": np.ones((1, 1, 1, 1)), "x": x_tie, "kernel_size": 2, "stride": 2}
    message = failure(lambda dout, x, k, s: np.array([[[[0.5, 0.5], [0.0, 0.0]]]]), reference, [shared],
                      mistakes=[mistake])
    assert "hint: the gradient is not shared in a tie" in message
    other = dict(shared, x=np.array([[[[1.0, 3.0], [3.0, 0.0]]]]))
    message = failure(lambda dout, x, k, s: np.array([[[[0.5, 0.5], [0.0, 0.0]]]]), reference, [other],
                      mistakes=[mistake])
    assert "hint:" not in message


def test_without_cache_and_conv2d_hw():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    np.testing.assert_array_equal(grading.without_cache(F.max_pool2d_forward)(x, 2, 1), F.max_pool2d_forward(x, 2, 1)[0])
    assert grading.without_cache(F.max_pool2d_forward).__name__ == "max_pool2d_forward"
    image = (np.arange(30) * 8 % 256).astype(np.uint8).reshape(5, 6)
    out = grading.conv2d_hw(image, np.full((3, 3), 1 / 9), 2, 1)
    assert out.shape == (3, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, F.conv2d(image[None, None].astype(float), np.full((1, 1, 3, 3), 1 / 9),
                                             stride=2, padding=1)[0, 0])


# ------------------------------------------------------------------------------------------------
# issue 11: statements and tests agree


def test_library_shortcuts_are_refused_however_they_were_imported():
    """scipy.signal's correlate2d scores zero in a "write it yourself" exercise, also when the
    learner imported it under another name before the check started."""
    from scipy.signal import correlate2d as c2d
    import scipy.signal

    def shortcut(image, kernel):
        return c2d(image, kernel, mode="valid")

    case = {"image": np.arange(20.0).reshape(4, 5), "kernel": np.ones((2, 2))}
    message = failure(shortcut, lambda image, kernel: conv_single_ref(image, kernel), [case], name="xcorr")
    assert "your code called `scipy.signal.correlate2d`" in message
    assert "does this exercise's whole job" in message
    # allowed where the exercise asks for it, and untouched outside a check
    grading.check_function(shortcut, lambda image, kernel: conv_single_ref(image, kernel), [case],
                           shortcuts=True, quiet=True)
    assert np.array_equal(scipy.signal.correlate2d(case["image"], case["kernel"], "valid"),
                          conv_single_ref(case["image"], case["kernel"]))
    for call in (lambda: np.convolve([1.0, 2.0], [1.0]), lambda: scipy.signal.convolve2d(np.ones((2, 2)), np.ones((1, 1)))):
        with pytest.raises(_guard.ShortcutBlockedError), _guard.blocked("ex"):
            call()


def test_a_stand_in_may_use_a_shortcut():
    from scipy import signal

    stand_in = grading.reference_stand_in(lambda a: signal.correlate2d(a, np.ones((1, 1)), "valid"))
    namespace = {"helper": None}

    def learner(a):
        return namespace["helper"](a)

    with grading.substitute(namespace, helper=stand_in):
        grading.check_function(learner, lambda a: a, [{"a": np.ones((2, 2))}], quiet=True)


@pytest.mark.parametrize("mutate,words", [
    (lambda v: v.insert(0, 3), "its length went from 2 to 3"),
    (lambda v: v.__setitem__(0, 99), "[16, 32] became [99, 32]"),
    (lambda v: v.reverse(), "[16, 32] became [32, 16]"),
])
def test_changing_a_list_argument_in_place_fails(mutate, words):
    """03 ex 3.3: a model_params that changes its `filters` list must not pass."""
    def learner(c_in, filters):
        mutate(filters)
        return 1

    message = failure(learner, lambda c_in, filters: 1, [{"c_in": 3, "filters": [16, 32]}])
    assert "changed its input `filters` in place" in message and words in message, message


def test_hint_needs_the_answer_to_match_on_every_case():
    """02 ex 2.1: (n + 2p - k + 1) // s equals "padding counted once" on ONE case only: that case
    must not earn the padding hint; the +1 inside the division gets its own."""
    def plus_one_inside(n, kernel_size, stride=1, padding=0):
        return (n + 2 * padding - kernel_size + 1) // stride

    cases = [{"n": 97, "kernel_size": 3, "stride": 1, "padding": 1}, {"n": 7, "kernel_size": 3, "stride": 2, "padding": 1}]
    message = failure(plus_one_inside, shapes.conv_output_size, cases, mistakes=grading.output_size_mistakes())
    assert "+1 comes after the division" in hint_of(message) and "counts twice" not in message
    # without the mistake that matches, no guess at all
    others = [m for m in grading.output_size_mistakes() if "after the division" not in m.text(cases[0])]
    message = failure(plus_one_inside, shapes.conv_output_size, cases, mistakes=others)
    assert "hint:" not in message, message


def test_channel_zero_only_gets_its_hint_and_other_errors_do_not():
    case = dict(STYLE_CASE)
    channel0 = lambda x, w, b, s, p: conv_naive(x[:, :1], w[:, :1], b, s, p)
    assert "input channel 0 only" in hint_of(failure(channel0, F.conv2d, [case], mistakes=grading.conv_mistakes(F.conv2d)))
    scaled = lambda x, w, b, s, p: 2 * conv_naive(x, w, b, s, p)
    message = failure(scaled, F.conv2d, [case], mistakes=grading.conv_mistakes(F.conv2d))
    assert "hint:" not in message and "values differ" in message


def conv_fast(x, w, b, stride=1, padding=0):
    """A learner's vectorized convolution (windows by sliding_window_view, one einsum)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,fcij->nfhw", windows, w, optimize=True) + b[None, :, None, None]


def test_bias_without_its_axis_is_named_not_the_channel_axis():
    """03 ex 3.5: `+ b` instead of `b[:, None]` used to hear "did you pad the channel axis?"."""
    def im2col_conv(x, w, b, stride=1, padding=0):
        N, F_ = x.shape[0], w.shape[0]
        out = conv_fast(x, w, np.zeros_like(b), stride, padding)
        with_b = out.reshape(N, F_, -1) + b        # broadcasting error unless H_out*W_out == F
        return with_b.reshape(out.shape)

    case = {"x": np.ones((1, 3, 4, 4)), "w": np.ones((2, 3, 3, 3)), "b": np.ones(2), "stride": 1, "padding": 0}
    message = failure(im2col_conv, F.conv2d, [case], mistakes=grading.conv_mistakes(F.conv2d))
    assert "Give b the filter axis" in hint_of(message) and "channel" not in hint_of(message), message


def test_rows_sliced_twice_is_named():
    """01 ex 1.1: image[i:i+KH][j:j+KW] used to hear "did you pad the channel or batch axis?"."""
    def learner(image, kernel):
        kh, kw = kernel.shape
        out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = np.sum(image[i:i + kh][j:j + kw] * kernel)
        return out

    case = {"image": np.arange(30.0).reshape(5, 6), "kernel": np.ones((3, 3))}
    mistakes = grading.conv_mistakes(conv_single_ref, x="image", w="kernel", b=None)
    message = failure(learner, conv_single_ref, [case], mistakes=mistakes)
    assert "slices the ROWS twice" in hint_of(message) and "channel" not in message, message


def test_a_pair_padding_that_breaks_an_int_only_solution():
    """02 ex 2.3: an int-only padding used to hear "did you forget to sum"."""
    def int_only(x, padding):
        return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))

    message = failure(int_only, F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1},
                                           {"x": np.ones((1, 1, 2, 2)), "padding": (1, 2)}],
                      mistakes=grading.pad_mistakes())
    assert "padding is an int P OR a pair" in hint_of(message) and "sum" not in message, message


@pytest.mark.parametrize("pick,words", [("last", "LAST maximum"), ("every", "every position equal"),
                                        ("share", "shared between the maxima")])
def test_max_pool_ties_get_their_hint(pick, words):
    from cnnlib.grading.mistakes import _max_pool_backward_by

    reference = grading.backward_reference(F.max_pool2d_forward, F.max_pool2d_backward)
    cases = grading.with_dout(grading.pool_cases(6, 3, ties=True), F.max_pool2d_forward, 3)
    learner = lambda dout, x, k, s: _max_pool_backward_by(pick, dout, x, k, s)
    message = failure(learner, reference, cases, mistakes=grading.max_pool_tie_mistakes())
    assert words in hint_of(message), message
    # a different wrong answer (gradients doubled) gets none of the tie hints
    doubled = lambda dout, x, k, s: 2 * reference(dout, x, k, s)
    message = failure(doubled, reference, cases, mistakes=grading.max_pool_tie_mistakes())
    assert "hint:" not in message, message


def test_where_the_values_differ():
    expected = np.zeros((1, 2, 5, 5))
    wrong = expected.copy()
    wrong[0, 1, 0, :] = 1.0
    message = failure(lambda x: wrong, lambda x: expected, [{"x": 0}])
    assert "where: the differing values lie only at index 1 of axis 1; index 0 of axis 2" in message
    border = expected.copy()
    border[..., 0, :] = border[..., -1, :] = border[..., :, 0] = border[..., :, -1] = 1.0   # a ring
    message = failure(lambda x: border, lambda x: expected, [{"x": 0}])
    assert "only on the border" in message


def test_check_faster_tells_loops_from_a_matrix_product():
    case = {"x": np.ones((2, 3, 16, 16)), "w": np.ones((8, 3, 3, 3)), "b": np.zeros(8), "stride": 1, "padding": 1}
    grading.check_faster(conv_fast, grading.conv2d_loops, case, quiet=True)
    with pytest.raises(grading.GradingFailure, match="about as long as plain loops"):
        grading.check_faster(conv_naive, grading.conv2d_loops, case, name="conv_forward_im2col")
    with pytest.raises(grading.GradingFailure, match="your code called cnnlib's reference"):
        grading.check_faster(grading.conv2d_loops, grading.conv2d_loops, case, name="copied")


def test_a_forbidden_function_refuses_inside_the_check():
    namespace = {}
    exec("def naive(x):\n    return x\ndef fast(x):\n    return naive(x)", namespace)
    with grading.substitute(namespace, naive=grading.forbidden("naive", "No loops here.")):
        message = failure(namespace["fast"], lambda x: x, [{"x": 1.0}])
    assert "your code called your `naive`. No loops here." in message
    assert namespace["fast"](2.0) == 2.0  # restored afterwards


def test_messages_fit_nbgraders_line_width():
    """nbgrader validate cuts lines at 90 characters (minus its indent): every line fits."""
    from cnnlib.grading.failures import WIDTH

    message = str(pytest.raises(grading.GradingFailure, grading.check_function,
                                lambda x, w, b, stride, padding: conv_naive(x, w, b, 1, padding),
                                F.conv2d, [STYLE_CASE], mistakes=grading.conv_mistakes(F.conv2d), quiet=True).value)
    lines = message.splitlines()
    assert len("GradingFailure: " + lines[0]) <= WIDTH and all(len(line) <= WIDTH for line in lines)
    assert WIDTH + 4 <= 90 - 3  # nbgrader's indent (4) and its "..." (3) still fit
    assert " ".join(message.split()) == " ".join(info_message(message).split())


def info_message(wrapped: str) -> str:
    return wrapped


def test_a_shortcut_imported_inside_the_function_is_refused_too():
    def learner(image, kernel):
        from scipy.ndimage import correlate

        return correlate(image, kernel)[1:-1, 1:-1]

    case = {"image": np.arange(20.0).reshape(4, 5), "kernel": np.ones((3, 3))}
    message = failure(learner, lambda image, kernel: conv_single_ref(image, kernel), [case])
    assert "your code called `scipy.ndimage.correlate`" in message


def test_scipy_special_softmax_is_a_shortcut_too():
    """05's softmax cross-entropy says "numpy only": scipy.special's softmax / logsumexp, which
    would do the whole exercise, are refused while it is checked."""
    from scipy.special import logsumexp, softmax

    x = np.array([[1.0, 2.0, 3.0]])
    for call in (lambda: softmax(x, axis=1), lambda: logsumexp(x, axis=1)):
        with pytest.raises(_guard.ShortcutBlockedError, match="scipy.special"), _guard.blocked("ex"):
            call()
    assert np.isclose(softmax(x, axis=1).sum(), 1.0)  # untouched outside a check

"""cnnlib.grading.nb08: the references, case generators and mistake catalogues of notebook 08,
checked against independent computations (published parameter counts, cnnlib models, naive
loops, numerical gradients) and against the hints they must (and must not) give."""

import numpy as np
import pytest

import naive
from cnnlib import gradcheck, grading, shapes
from cnnlib.grading import guard, nb08
from cnnlib.grading.failures import GradingFailure
from cnnlib.layers import BatchNorm2d, Conv2d, Linear
from cnnlib.model import Sequential, lenet

# --- famous networks -------------------------------------------------------------------------

# torchvision's documented parameter counts (models.<name>(weights=...).meta["num_params"])
TORCHVISION = {"AlexNet": 61_100_840, "VGG16": 138_357_544, "ResNet-18": 11_689_512,
               "GoogLeNet": 6_624_904, "DenseNet-121": 7_978_856}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_famous_layer_lists_give_torchvisions_published_counts(name):
    assert nb08.count_params_reference(nb08.famous_networks()[name]) == TORCHVISION[name] == nb08.PUBLISHED[name]


def test_lenet_layer_list_matches_cnnlibs_lenet():
    assert nb08.count_params_reference(nb08.famous_networks()["LeNet"]) == lenet(np.random.default_rng(0)).count_params()


def test_zfnet_count_is_its_layer_list_by_hand():
    convs = [(3, 96, 7), (96, 256, 5), (256, 384, 3), (384, 384, 3), (384, 256, 3)]
    fcs = [(9216, 4096), (4096, 4096), (4096, 1000)]
    by_hand = sum((k * k * i + 1) * o for i, o, k in convs) + sum((i + 1) * o for i, o in fcs)
    assert nb08.count_params_reference(nb08.famous_networks()["ZF Net"]) == by_hand == nb08.PUBLISHED["ZF Net"]


def _cnnlib_model(spec):
    """The spec's parameterised layers as cnnlib layers (shapes only matter for the count)."""
    layers = []
    for layer in spec:
        if layer[0] == "conv":
            layers.append(Conv2d(layer[1], layer[2], layer[3], bias=layer[4] if len(layer) > 4 else True))
        elif layer[0] == "fc":
            layers.append(Linear(layer[1], layer[2], bias=layer[3] if len(layer) > 3 else True))
        elif layer[0] == "bn":
            layers.append(BatchNorm2d(layer[1]))
    return Sequential(layers)


def test_count_params_reference_equals_cnnlibs_trainable_parameters_on_random_specs():
    for case in nb08.param_spec_cases(40, seed=1):
        model = _cnnlib_model(case["spec"])
        trainable = sum(p.size for p in model.parameters())  # BN's running statistics are buffers
        assert nb08.count_params_reference(case["spec"]) == trainable


# --- receptive field -------------------------------------------------------------------------

def _receptive_field_backwards(layers):
    """Walk from one output pixel back to the input: the interval [lo, hi) it depends on."""
    lo, hi = 0, 1
    for k, s in reversed(layers):
        lo, hi = lo * s, (hi - 1) * s + k
    return hi - lo


def test_stack_cases_and_the_reference_agree_with_the_backward_walk():
    cases = nb08.stack_cases(60, seed=2)
    assert any(s > 1 for c in cases for _, s in c["layers"])
    for case in cases:
        assert shapes.receptive_field(case["layers"]) == _receptive_field_backwards(case["layers"])


# --- output sizes ----------------------------------------------------------------------------

def test_output_sizes_reference_chains_conv_output_size_on_exact_specs():
    for case in nb08.size_spec_cases(40, seed=3):
        n, sizes = case["n"], []
        for k, s, p in case["layers"]:
            assert (n - k + 2 * p) % s == 0
            n = shapes.conv_output_size(n, k, s, p)
            sizes.append(n)
        assert nb08.output_sizes_reference(case["n"], case["layers"]) == sizes


def test_refused_specs_are_refused_and_say_why():
    cases = nb08.refused_spec_cases(30, seed=4)
    assert any("does not fit" in nb08.refusal_reason(c) for c in cases)
    assert any("not a whole number" in nb08.refusal_reason(c) for c in cases)
    for case in cases:
        with pytest.raises(ValueError, match=r"layer \d+: "):
            nb08.output_sizes_reference(case["n"], case["layers"])


def test_alexnet_sizes_and_the_224_refusal():
    layers = [(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 0)]
    assert nb08.output_sizes_reference(227, layers) == [55, 27, 27, 13, 13, 13, 13, 6]
    with pytest.raises(ValueError, match=r"layer 0: \(224 - 11 \+ 2\*0\) / 4 \+ 1 = 54.25 is not a whole number"):
        nb08.output_sizes_reference(224, layers)


def test_check_refuses_passes_a_refusal_and_explains_every_other_outcome(capsys):
    case = [{"n": 224, "layers": [(11, 4, 0)]}]

    def refuses(n, layers):
        if (n - layers[0][0]) % layers[0][1]:
            raise ValueError("layer 0: not a whole number")
        return [(n - layers[0][0]) // layers[0][1] + 1]

    nb08.check_refuses(refuses, case, name="output_sizes")
    assert "✔ output_sizes: refuses 1 case" in capsys.readouterr().out

    def floors(n, layers):
        return [(n - k + 2 * p) // s + 1 for k, s, p in layers]

    with pytest.raises(GradingFailure, match=r"expected a ValueError: this case must be refused\n  your function returned \[54\]"
                                             r"[\s\S]*54.25 is not a whole number[\s\S]*do not round"):
        nb08.check_refuses(floors, case, why=nb08.refusal_reason)

    def wrong_error(n, layers):
        raise TypeError("nope")

    with pytest.raises(GradingFailure, match="expected a ValueError, your function raised TypeError: nope"):
        nb08.check_refuses(wrong_error, case)

    def unfinished(n, layers):
        raise NotImplementedError()

    with pytest.raises(GradingFailure, match="not implemented yet"):
        nb08.check_refuses(unfinished, case)

    def cheats(n, layers):
        return shapes.conv_output_size(n, *layers[0])  # cnnlib's reference: refused by the guard

    with pytest.raises(GradingFailure, match="your code called cnnlib's reference"):
        nb08.check_refuses(cheats, case)


# --- the residual block ----------------------------------------------------------------------

def _naive_block(x, w1, w2, ws=None, stride=1):
    h = np.maximum(naive.conv2d_forward(x, w1, np.zeros(w1.shape[0]), stride, 1), 0)
    fx = naive.conv2d_forward(h, w2, np.zeros(w2.shape[0]), 1, 1)
    sx = x if ws is None else naive.conv2d_forward(x, ws, np.zeros(ws.shape[0]), stride, 0)
    return np.maximum(fx + sx, 0)


def test_residual_forward_reference_matches_naive_loops():
    cases = nb08.residual_cases(12, seed=5)
    assert any("ws" in c and c["stride"] == 2 for c in cases) and any("ws" not in c for c in cases)
    for case in cases:
        np.testing.assert_allclose(nb08.residual_forward_reference(*case.values()), _naive_block(*case.values()),
                                   rtol=1e-10, atol=1e-12)


def test_identity_cases_keep_the_shape():
    for case in nb08.residual_cases(10, seed=6, projection=False):
        assert list(case) == ["x", "w1", "w2"] and case["w1"].shape[:2] == (case["x"].shape[1],) * 2


def test_residual_backward_reference_matches_numerical_gradients():
    for case in nb08.residual_cases(3, seed=7, projection=False):
        x, w1, w2 = case["x"], case["w1"], case["w2"]
        dout = np.random.default_rng(8).standard_normal(x.shape)
        dx, dw1, dw2 = nb08.residual_backward_reference(dout, x, w1, w2)
        for got, array in ((dx, x), (dw1, w1), (dw2, w2)):
            numeric = gradcheck.numerical_gradient(lambda _: _naive_block(x, w1, w2), array, df=dout)
            assert gradcheck.rel_error(got, numeric) < 1e-7


def test_zero_weights_give_relu_and_the_skip_gradient():
    x = np.random.default_rng(9).standard_normal((2, 3, 4, 4))
    zeros = np.zeros((3, 3, 3, 3))
    np.testing.assert_array_equal(nb08.residual_forward_reference(x, zeros, zeros), np.maximum(x, 0))
    dout = np.ones_like(x)
    np.testing.assert_array_equal(nb08.residual_backward_reference(dout, x, zeros, zeros)[0], dout * (x > 0))


def test_conv_stand_ins_are_cnnlibs_convolution_and_its_gradient():
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    out = nb08.residual_conv(x, w, 2, 1)
    np.testing.assert_allclose(out, naive.conv2d_forward(x, w, np.zeros(4), 2, 1), rtol=1e-10)
    dout = rng.standard_normal(out.shape)
    dx, dw = nb08.residual_conv_backward(dout, x, w, 2, 1)
    ndx, ndw, _ = naive.conv2d_backward(dout, x, w, 2, 1)
    np.testing.assert_allclose(dx, ndx, rtol=1e-10)
    np.testing.assert_allclose(dw, ndw, rtol=1e-10)


# --- the catalogues: each hint fires for its own mistake, none for an unknown one -------------

def _learner(wrong, keys, reference):
    """A learner whose answer is ``wrong(case)`` (the right one where that mistake does not apply).

    The wrong answers run cnnlib, so the guard is lifted for them as for a grader's stand-in."""
    lift = guard.allowed()  # made here, outside the check

    def learner(*args):
        case = dict(zip(keys, args))
        with lift:
            try:
                return wrong(case)
            except KeyError:
                return reference(*args)

    return learner


def _catalogue(exercise):
    """(reference, cases, mistakes, argument names)."""
    if exercise == "receptive_field":
        return shapes.receptive_field, nb08.stack_cases(20, seed=11), nb08.receptive_field_mistakes(), ["layers"]
    if exercise == "output_sizes":
        return (nb08.output_sizes_reference, nb08.size_spec_cases(20, seed=12), nb08.output_sizes_mistakes(),
                ["n", "layers"])
    if exercise == "count_params":
        return nb08.count_params_reference, nb08.param_spec_cases(20, seed=13), nb08.count_params_mistakes(), ["spec"]
    if exercise == "residual_forward":
        return (nb08.residual_forward_reference, nb08.residual_cases(10, seed=14), nb08.residual_forward_mistakes(),
                ["x", "w1", "w2", "ws", "stride"])
    cases = grading.with_dout(nb08.residual_cases(6, seed=15, projection=False), nb08.residual_forward_reference,
                              seed=16)
    return nb08.residual_backward_reference, cases, nb08.residual_backward_mistakes(), ["dout", "x", "w1", "w2"]


EXERCISES = ["receptive_field", "output_sizes", "count_params", "residual_forward", "residual_backward"]


def _failure(fn, reference, cases, mistakes, outputs="output"):
    with pytest.raises(GradingFailure) as info:
        grading.check_function(fn, reference, cases, mistakes=mistakes, outputs=outputs, quiet=True)
    return info.value.message, str(info.value)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_each_mistake_gets_its_own_hint_in_lines_that_survive_validate(exercise):
    reference, cases, mistakes, keys = _catalogue(exercise)
    outputs = ("dx", "dw1", "dw2") if exercise == "residual_backward" else "output"
    fired = 0
    for m in [m for m in mistakes if isinstance(m, grading.Mistake)]:
        message, shown = _failure(_learner(m.wrong, keys, reference), reference, cases, mistakes, outputs)
        hint_lines = shown[shown.index("hint:"):] if "hint:" in shown else ""
        assert hint_lines, f"{exercise}: no hint for its own mistake\n{message}"
        failing_case = next(c for c in cases if _wrong_on(m, c, reference, outputs))
        # the first catalogued mistake with the same answer on that case gives the hint
        expected = next(x for x in mistakes if isinstance(x, grading.Mistake) and _same_answer(x, m, failing_case))
        assert expected.text(failing_case).split("\n")[0] in message
        assert all(len(line) <= 90 for line in hint_lines.splitlines()), hint_lines
        fired += 1
    assert fired >= 3


def _same_answer(a, b, case):
    try:
        return _equal(a.wrong(case), b.wrong(case))
    except KeyError:
        return False


def _wrong_on(m, case, reference, outputs):
    try:
        return not _equal(m.wrong(case), reference(*case.values()))
    except KeyError:
        return False


def _equal(a, b):
    if isinstance(a, tuple):
        return all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, list) or isinstance(b, list):
        return a == b
    return np.shape(a) == np.shape(b) and np.allclose(a, b)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_an_unknown_wrong_answer_gets_no_guessed_hint(exercise):
    reference, cases, mistakes, _ = _catalogue(exercise)
    outputs = ("dx", "dw1", "dw2") if exercise == "residual_backward" else "output"
    lift = guard.allowed()

    def off_by_a_bit(*args):
        with lift:
            right = reference(*args)
        if isinstance(right, tuple):
            return tuple(r * 1.5 + 0.25 for r in right)
        if isinstance(right, list):
            return [r + 1000 for r in right]
        return right * 1.5 + 0.25 if isinstance(right, np.ndarray) else right + 1000

    message, _ = _failure(off_by_a_bit, reference, cases, mistakes, outputs)
    assert "hint:" not in message, message


def test_every_mistake_is_wrong_on_some_generated_case():
    for exercise in EXERCISES:
        reference, cases, mistakes, _ = _catalogue(exercise)
        outputs = ("dx", "dw1", "dw2") if exercise == "residual_backward" else "output"
        for m in [m for m in mistakes if isinstance(m, grading.Mistake)]:
            assert any(_wrong_on(m, c, reference, outputs) for c in cases), (exercise, m.text(cases[0])[:60])


@pytest.mark.parametrize("reference, case", [
    (nb08.output_sizes_reference, {"n": 227, "layers": [(11, 4, 0)]}),
    (nb08.count_params_reference, {"spec": [("fc", 3, 2)]}),
    (nb08.residual_forward_reference, {"x": np.ones((1, 1, 2, 2)), "w1": np.ones((1, 1, 3, 3)),
                                       "w2": np.ones((1, 1, 3, 3))}),
])
def test_a_solution_that_calls_the_grading_reference_is_refused(reference, case):
    def cheat(*args):
        return reference(*args)

    with pytest.raises(GradingFailure, match="your code called cnnlib's reference"):
        grading.check_function(cheat, reference, [case], quiet=True)

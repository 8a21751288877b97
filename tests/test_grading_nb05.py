"""cnnlib.grading.nb05 (notebook 05_backprop's grading helpers) and its wrong-answer catalogue.

Two levels:

* the helpers themselves: references agree with cnnlib and with independent formulas, the case
  generators cover the corners they promise, every known mistake is a real mistake (its answer
  differs from the right one) and is told apart from the other mistakes of its exercise;
* the notebook's test cells, run in-process on the catalogue tests/wrong_answers/nb05.py: the
  source solution passes; each wrong answer fails its exercise with the hint that names it, and
  no other wrong answer of that exercise gets that hint. (The nbgrader run of the catalogue, one
  autograde batch, is tests/test_wrong_answers.py's job.)
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import course as C
from cnnlib import functional as F
from cnnlib import gradcheck, grading, losses
from cnnlib.grading import nb05
from cnnlib.grading.compare import _check_result
from cnnlib.grading.mistakes import ErrorHint, Mistake
from wrong_answers import nb05 as catalogue

NOTEBOOK = C.SOLUTIONS / "05_backprop" / "05_backprop.ipynb"


# ------------------------------------------------------------------------------------------------
# references and generators


def test_squared_error_reference_is_the_articles_boat_example():
    loss, dpred = losses.squared_error(np.array([[0.2, 0.4, 0.1, 0.3]]), np.array([[0., 0., 1., 0.]]))
    assert loss == pytest.approx(0.55) and np.allclose(dpred, [[0.2, 0.4, -0.9, 0.3]])
    assert losses.squared_error(np.array([[0.1, 0.1, 0.7, 0.1]]), np.array([[0., 0., 1., 0.]]))[0] == pytest.approx(0.06)


def test_squared_error_cases_avoid_the_ambiguous_batch_of_two():
    cases = nb05.squared_error_cases(40, seed=1)
    sizes = {c["pred"].shape[0] for c in cases}
    assert 2 not in sizes and {1, 3} <= sizes
    assert all(c["pred"].shape == c["target"].shape and c["pred"].shape[1] >= 2 for c in cases)


def test_logit_cases_cover_huge_zero_and_underflowing_logits():
    cases = nb05.logit_cases(10, seed=2)
    assert any(np.abs(c["logits"]).max() > 900 for c in cases), "huge logits"
    assert any(not c["logits"].any() for c in cases), "all-zero logits"
    assert any(c["logits"].shape[0] == 1 for c in cases), "N = 1"
    gaps = [c["logits"].max(axis=1) - c["logits"][np.arange(len(c["y"])), c["y"]] for c in cases]
    assert any(g.max() >= 2000 for g in gaps), "a true class far below the maximum"
    for c in cases:
        loss, _ = losses.softmax_cross_entropy(c["logits"], c["y"])
        assert np.isfinite(loss)
        if not c["logits"].any():
            assert loss == pytest.approx(np.log(c["logits"].shape[1]))


def test_relu_cases_with_and_without_kinks():
    assert all((c["x"] == 0).any() for c in nb05.relu_cases(10, seed=3))
    assert all((np.abs(c["x"]) >= 0.01).all() for c in nb05.relu_cases(10, seed=3, kinks=False))


def test_linear_backward_cases_include_square_weights_and_singletons():
    cases = nb05.linear_backward_cases(9, seed=4)
    assert any(c["w"].shape[0] == c["w"].shape[1] == c["x"].shape[0] for c in cases)
    assert any(c["x"].shape[0] == 1 for c in cases) and any(c["x"].shape[1] == 1 for c in cases)


def test_conv_backward_cases_cover_the_issues_corners():
    cases = nb05.conv_backward_cases(18, seed=5)
    for c in cases:  # every case is valid for the forward pass
        F.conv2d_forward(c["x"], c["w"], c["b"], c["stride"], c["padding"])
    kernels = [c["w"].shape[2:] for c in cases]
    assert any(kh != kw for kh, kw in kernels), "non-square kernels"
    assert any(c["x"].shape[0] == 1 for c in cases) and any(c["x"].shape[1] == 1 for c in cases)
    assert any(c["w"].shape[0] != c["w"].shape[1] for c in cases), "F != C"
    assert any(c["stride"] < c["w"].shape[2] for c in cases), "overlapping windows"
    def unused_rows_or_columns(c):
        out, cache = F.conv2d_forward(c["x"], c["w"], c["b"], c["stride"], c["padding"])
        zero = F.conv2d_backward(np.ones_like(out), cache)[0] == 0
        return bool(zero.all(axis=(0, 1, 3)).any() or zero.all(axis=(0, 1, 2)).any())

    unused = [c for c in cases if unused_rows_or_columns(c)]
    assert all(unused_rows_or_columns(c) for c in cases[2::6]), "kind 2: gaps and leftover pixels"
    assert len(unused) >= 3, "strides that leave edge pixels unused"


def test_conv_backward_loops_equal_cnnlib():
    for c in nb05.conv_backward_cases(12, seed=6):
        out, cache = F.conv2d_forward(c["x"], c["w"], c["b"], c["stride"], c["padding"])
        dout = np.random.default_rng(0).standard_normal(out.shape)
        dx, dw, _ = F.conv2d_backward(dout, cache)
        mine = nb05.conv_backward_loops(dout, c["x"], c["w"], c["stride"], c["padding"])
        assert np.allclose(mine[0], dx) and np.allclose(mine[1], dw)


def test_numerical_gradient_reference_and_cases():
    for c in nb05.numerical_gradient_cases(12, seed=7):
        x_before = c["x"].copy()
        grad = nb05.numerical_gradient_reference(c["f"], c["x"], c["h"])
        assert np.array_equal(c["x"], x_before), "the reference works on a copy"
        assert grad.shape == c["x"].shape
    x = np.array([[0.3, -1.2], [2.0, 0.7]])
    exact = np.sin(x) + x * np.cos(x)
    assert gradcheck.rel_error(nb05.numerical_gradient_reference(nb05.f_sin_times_x, x), exact) < 1e-8


def test_gradient_check_reference_on_right_doubled_and_zero_gradients():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    right = 3 * x ** 2
    assert nb05.gradient_check_reference(nb05.f_sum_of_cubes, x, right) < 1e-8
    assert nb05.gradient_check_reference(nb05.f_sum_of_cubes, x, 2 * right) == pytest.approx(0.5)
    assert nb05.gradient_check_reference(nb05.f_sum_of_cubes, x, np.zeros_like(x)) == pytest.approx(1.0)
    assert nb05.gradient_check_reference(nb05.f_zero, x, np.zeros_like(x)) == 0.0
    kinds = nb05.gradient_check_cases(7, seed=8)
    errors = [nb05.gradient_check_reference(c["f"], c["x"], c["analytic"], c["h"]) for c in kinds]
    assert errors[2] < 1e-8 and errors[3] == pytest.approx(0.5) and errors[6] == 0.0   # right, doubled, constant
    assert errors[1] > 1e-2, "the transposed gradient is far from the right one"


def test_loss_backward_scales_the_gradient_by_dout():
    backward = nb05.loss_backward(losses.softmax_cross_entropy)
    logits, y = np.array([[1.0, 2.0, 0.5]]), np.array([1])
    assert np.allclose(backward(3.0, logits, y), 3 * losses.softmax_cross_entropy(logits, y)[1])
    assert backward.__name__ == "softmax_cross_entropy"


# ------------------------------------------------------------------------------------------------
# every catalogued mistake is a real mistake, and distinguishable from the others


def _backward_cases(cases, forward, seed):
    return grading.with_dout(cases, forward, seed=seed)


CATALOGUES = {
    "squared_error": (nb05.squared_error_mistakes, lambda: nb05.squared_error_cases(24, seed=10),
                      lambda c: losses.squared_error(*c.values()), ("loss", "dpred")),
    "softmax_ce": (nb05.softmax_ce_mistakes, lambda: nb05.logit_cases(25, seed=11),
                   lambda c: losses.softmax_cross_entropy(*c.values()), ("loss", "dlogits")),
    "relu": (nb05.relu_backward_mistakes,
             lambda: _backward_cases(nb05.relu_cases(20, seed=12), F.relu_forward, 12),
             lambda c: grading.backward_reference(F.relu_forward, F.relu_backward)(*c.values()), "dx"),
    "linear": (nb05.linear_backward_mistakes,
               lambda: _backward_cases(nb05.linear_backward_cases(20, seed=13), F.linear_forward, 13),
               lambda c: grading.backward_reference(F.linear_forward, F.linear_backward)(*c.values()),
               ("dx", "dw", "db")),
    "conv": (nb05.conv_backward_mistakes,
             lambda: _backward_cases(nb05.conv_backward_cases(18, seed=14), F.conv2d_forward, 14),
             lambda c: grading.backward_reference(F.conv2d_forward, F.conv2d_backward)(*c.values()),
             ("dx", "dw", "db")),
    "numerical_gradient": (nb05.numerical_gradient_mistakes, lambda: nb05.numerical_gradient_cases(20, seed=15),
                           lambda c: nb05.numerical_gradient_reference(*c.values()), "output"),
    "gradient_check": (nb05.gradient_check_mistakes, lambda: nb05.gradient_check_cases(21, seed=16),
                       lambda c: nb05.gradient_check_reference(*c.values()), "output"),
}


def _answers(mistake: Mistake, cases):
    out = []
    for c in cases:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                out.append(mistake.wrong(c))
        except KeyError:
            out.append(KeyError)  # does not apply to this case
    return out


@pytest.mark.parametrize("name", list(CATALOGUES))
def test_each_mistake_is_wrong_somewhere_and_differs_from_every_other(name):
    make, cases_of, reference, outputs = CATALOGUES[name]
    cases = cases_of()
    mistakes = [m for m in make() if isinstance(m, Mistake)]
    right = [reference(c) for c in cases]
    answers = [_answers(m, cases) for m in mistakes]

    def same(a, b):
        return a is not KeyError and b is not KeyError and not _check_result(a, b, outputs, None, None, False)

    for k, (m, got) in enumerate(zip(mistakes, answers)):
        label = f"{name} mistake {k} ({m.text(cases[0]) if not callable(m.hint) else 'callable hint'}"[:100]
        assert any(a is not KeyError and not same(a, r) for a, r in zip(got, right)), f"{label}: never wrong"
        for j, other in enumerate(answers):
            if j == k or mistakes[j].text(cases[0]) == m.text(cases[0]):
                continue  # the same hint twice (e.g. db over different wrong axes) may coincide
            common = [(a, o) for a, o in zip(got, other) if a is not KeyError and o is not KeyError]
            assert not common or any(not same(a, o) for a, o in common), f"{label}: indistinguishable from mistake {j}"


def test_error_hints_apply_only_to_their_errors():
    lin = [h for h in nb05.linear_backward_mistakes() if isinstance(h, ErrorHint)][0]
    case = {"dout": np.ones((2, 3)), "x": np.ones((2, 4)), "w": np.ones((4, 3)), "b": np.zeros(3)}
    try:
        np.ones((2, 3)) @ np.ones((4, 3))
    except ValueError as exc:
        assert "dx = dout @ w.T is (2, 3) @ (3, 4) = (2, 4)" in lin.text(case, exc)
    assert lin.text(case, KeyError("x")) is None
    conv = [h for h in nb05.conv_backward_mistakes() if isinstance(h, ErrorHint)][0]
    ccase = {"x": np.ones((1, 2, 4, 4)), "w": np.ones((3, 2, 3, 3))}
    short = ValueError("operands could not be broadcast together with shapes (2,3,3) (2,2,3) (2,3,3)")
    assert "smaller than the kernel (2, 3, 3)" in conv.text(ccase, short)
    assert conv.text(ccase, ValueError("operands could not be broadcast together with shapes (4,) (5,)")) is None


# ------------------------------------------------------------------------------------------------
# the notebook's test cells on the catalogue, in-process


def _cells():
    nb = C.read(NOTEBOOK)
    setup = [c.source for c in nb.cells
             if c.cell_type == "code" and C.meta(c).get("locked") and not C.meta(c).get("grade")]
    solutions = {C.exercise_of(C.meta(c)["grade_id"]): c.source for c in C.solution_cells(nb)}
    tests = {C.exercise_of(C.meta(c)["grade_id"]): c.source for c in C.grade_cells(nb)}
    return setup, solutions, tests


SETUP, SOLUTIONS, TESTS = _cells()


def _run(exercise: int, region: str | None = None) -> str:
    """Run the setup cells, exercise's solution cell (its region replaced) and its test cell;
    return '' when the tests pass, else the failure's message."""
    ns: dict = {"__name__": "__main__"}
    source = SOLUTIONS[exercise] if region is None else C._replace_solution_region(SOLUTIONS[exercise], region)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for cell in SETUP:
            exec(cell, ns)
        exec(source, ns)
        try:
            exec(TESTS[exercise], ns)
        except grading.GradingFailure as failure:
            return getattr(failure, "message", str(failure))  # unwrapped
    return ""


def test_the_catalogue_covers_every_exercise_with_three_wrong_answers():
    assert catalogue.ASSIGNMENT == "05_backprop"
    assert set(catalogue.WRONG) == set(TESTS)
    for n, wrong in catalogue.WRONG.items():
        assert len(wrong) >= 3, f"exercise 5.{n}: {len(wrong)} wrong answers"
        assert len({w.label for w in wrong}) == len(wrong)


@pytest.mark.parametrize("exercise", sorted(TESTS))
def test_the_solution_passes_its_test_cell(exercise):
    assert _run(exercise) == ""


WRONG = [(n, w) for n, ws in catalogue.WRONG.items() for w in ws]


@pytest.fixture(scope="module")
def messages():
    return {(n, w.label): _run(n, w.region) for n, w in WRONG}


@pytest.mark.parametrize("exercise,wrong", WRONG, ids=[f"5.{n} {w.label}" for n, w in WRONG])
def test_each_wrong_answer_fails_with_its_hint(exercise, wrong, messages):
    message = messages[(exercise, wrong.label)]
    assert message, f"5.{exercise} '{wrong.label}' passes the tests"
    assert re.search(r"case \d+ of \d+", message) or "not implemented" in message or "cnnlib's reference" in message
    if wrong.hint is None:
        assert "hint:" not in message, f"a guessed hint:\n{message}"
    else:
        assert wrong.hint in message, f"expected the hint {wrong.hint!r}, got:\n{message}"
    for other in wrong.not_hint:
        assert other not in message, f"the hint {other!r} fired:\n{message}"


@pytest.mark.parametrize("exercise,wrong", [(n, w) for n, w in WRONG if w.hint],
                         ids=[f"5.{n} {w.label}" for n, w in WRONG if w.hint])
def test_each_hint_fires_only_on_its_trigger(exercise, wrong, messages):
    for other in catalogue.WRONG[exercise]:
        if other.label != wrong.label:
            assert wrong.hint not in messages[(exercise, other.label)], (
                f"the hint for '{wrong.label}' fired on '{other.label}':\n{messages[(exercise, other.label)]}")

"""Notebook 06_batchnorm's grading helpers (cnnlib/grading/nb06.py) and its test cells.

- the references agree with an independent numpy batch norm and with numerical gradients;
- the case generators give what the hidden tests promise (N != D, N, C, H, W all different,
  features and channels of clearly different means, momentum never 0.5, ...), and every known
  mistake's answer differs from the right one on the hidden cases (so the cases separate them);
- every exercise's test cell (visible and hidden part), run in-process on the source notebook's
  setup and data cells, passes the solution and alternative right solutions, fails each wrong
  answer of tests/wrong_answers/nb06.py with the hint that names it, and that hint fires on no
  other wrong answer; hint lines fit nbgrader validate's ~90 characters.
"""

from __future__ import annotations

import functools
import itertools
import textwrap

import numpy as np
import pytest

import course as C
from cnnlib import grading
from cnnlib.grading import nb06
from wrong_answers import nb06 as catalogue

ASSIGNMENT = catalogue.ASSIGNMENT
SOURCE = C.SOLUTIONS / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


# ------------------------------------------------------------------------------------------------
# references and cases


def naive_bn(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Batch norm of (N, D) with explicit loops over the features (independent of cnnlib)."""
    x = np.asarray(x, dtype=np.float64)
    N, D = x.shape
    out = np.empty_like(x)
    rm, rv = np.array(running_mean, float), np.array(running_var, float)
    for j in range(D):
        col = x[:, j]
        if training:
            mu = sum(col) / N
            var = sum((v - mu) ** 2 for v in col) / N
            rm[j] = (1 - momentum) * rm[j] + momentum * mu
            rv[j] = (1 - momentum) * rv[j] + momentum * var * N / (N - 1)
        else:
            mu, var = running_mean[j], running_var[j]
        out[:, j] = gamma[j] * (col - mu) / np.sqrt(var + eps) + beta[j]
    return out, rm, rv


def assert_all_close(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_references_agree_with_a_naive_batch_norm():
    for case in nb06.bn_forward_cases(30, seed=1):
        assert_all_close(nb06.bn_forward_reference(*case.values()), naive_bn(*case.values()))
        assert_all_close(nb06.bn_variant(*case.values()), naive_bn(*case.values()))
    for case in nb06.bn_train_cases(10, seed=2):
        args = list(case.values())
        assert_all_close(nb06.bn_train_reference(*args), naive_bn(*args[:5], True, *args[5:]))


def test_spatial_reference_is_per_channel_over_n_h_w():
    for case in nb06.spatial_bn_cases(12, seed=3):
        x = case["x"]
        N, C_, H, W = x.shape
        args = {k: v for k, v in case.items() if k != "x"}
        out2, rm, rv = naive_bn(np.moveaxis(x, 1, -1).reshape(-1, C_), *args.values())
        assert_all_close(nb06.spatial_bn_reference(*case.values()),
                         (np.moveaxis(out2.reshape(N, H, W, C_), -1, 1), rm, rv))


def test_references_leave_their_inputs_alone():
    case = nb06.bn_forward_cases(3, seed=4)[2]  # a training case
    before = {k: np.copy(v) for k, v in case.items()}
    nb06.bn_forward_reference(*case.values())
    nb06.spatial_bn_reference(*nb06.spatial_bn_cases(1, seed=4)[0].values())
    for k, v in before.items():
        np.testing.assert_array_equal(case[k], v)


def test_backward_reference_and_variant_match_numerical_gradients():
    from cnnlib.gradcheck import numerical_gradient

    for case in nb06.bn_backward_cases(8, seed=5):
        dout, x, gamma, eps = case.values()
        beta = np.zeros_like(gamma)
        dx, dgamma, dbeta = nb06.bn_backward_reference(*case.values())
        assert_all_close(nb06.bn_backward_variant(*case.values()), (dx, dgamma, dbeta))
        num_x = numerical_gradient(lambda v: nb06.bn_output(v, gamma, beta, eps), x.copy(), df=dout)
        num_g = numerical_gradient(lambda g: nb06.bn_output(x, g, beta, eps), gamma.copy(), df=dout)
        np.testing.assert_allclose(dx, num_x, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(dgamma, num_g, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(dbeta, dout.sum(axis=0))


def test_cases_are_what_the_hidden_tests_promise():
    train = nb06.bn_train_cases(40, seed=6)
    assert all(c["x"].shape[0] != c["x"].shape[1] and c["x"].shape[0] >= 2 for c in train)
    assert 0.5 not in {c["momentum"] for c in train} and len({c["momentum"] for c in train}) > 3
    assert {1e-5, 1e-1} <= {c["eps"] for c in train}
    assert any(c["x"].shape[1] == 1 for c in train) and any(c["x"].shape[0] == 2 for c in train)
    spread = [np.ptp(c["x"].mean(axis=0)) for c in train if c["x"].shape[1] > 1 and c["x"].shape[0] > 4]
    assert np.median(spread) > 3, "features should have clearly different means"
    forward = nb06.bn_forward_cases(40, seed=7)
    evals = [c for c in forward if not c["training"]]
    assert len(evals) > len(forward) / 2 and any(c["x"].shape[0] == 1 for c in evals)
    assert all(np.all(np.abs(c["running_mean"] - c["x"].mean(axis=0)) >= 1) for c in evals)
    spatial = nb06.spatial_bn_cases(40, seed=8)
    assert all(len(set(c["x"].shape)) == 4 for c in spatial)
    assert {True, False} == {c["training"] for c in spatial}
    assert all(np.ptp(c["x"].mean(axis=(0, 2, 3))) > 1 for c in spatial)
    backward = nb06.bn_backward_cases(5, seed=9)
    assert all(c["dout"].shape == c["x"].shape for c in backward)
    assert [list(c) for c in nb06.with_beta(backward, seed=0)][0] == ["x", "gamma", "beta", "eps"]


def _separated(mistake, cases, reference) -> bool:
    """Does the mistake's answer differ from the right one on at least one case?"""
    for case in cases:
        try:
            wrong = mistake.wrong(case)
        except Exception:
            continue
        right = reference(*case.values())
        if any(np.shape(w) != np.shape(r) or not np.allclose(w, r, rtol=1e-6, atol=1e-8)
               for w, r in zip(wrong, right)):
            return True
    return False


@pytest.mark.parametrize("mistakes,cases,reference", [
    (nb06.bn_train_mistakes, lambda: nb06.bn_train_cases(24, seed=60101), nb06.bn_train_reference),
    (nb06.bn_forward_mistakes, lambda: nb06.bn_forward_cases(24, seed=60201), nb06.bn_forward_reference),
    (nb06.spatial_bn_mistakes, lambda: nb06.spatial_bn_cases(18, seed=60301), nb06.spatial_bn_reference),
    (nb06.bn_backward_mistakes, lambda: nb06.bn_backward_cases(20, seed=60401), nb06.bn_backward_reference),
], ids=["6.1", "6.2", "6.3", "6.4"])
def test_the_hidden_cases_separate_every_mistake_from_the_right_answer(mistakes, cases, reference):
    cases = cases()
    for m in mistakes():
        if isinstance(m, grading.Mistake):
            assert _separated(m, cases, reference), f"the hidden cases cannot tell this mistake apart: {m.text(cases[0])}"


def test_the_momentum_hint_names_the_case_numbers():
    text = nb06.bn_train_mistakes()[3].text({"momentum": 0.2})
    assert "0.8 * old + 0.2 * new" in " ".join(text.split())


# ------------------------------------------------------------------------------------------------
# the test cells, run in-process on the source notebook


@functools.lru_cache(maxsize=None)
def _notebook():
    return C.read(SOURCE)


def _cell(grade_id: str) -> str:
    for cell in _notebook().cells:
        if C.meta(cell).get("grade_id") == grade_id:
            return cell.source
    raise KeyError(grade_id)


def _namespace() -> dict:
    """The locked setup and data cells, run in a fresh namespace (as the grading kernel would)."""
    import matplotlib

    matplotlib.use("Agg")
    ns: dict = {}
    for cell in _notebook().cells:
        m = C.meta(cell)
        if cell.cell_type == "code" and m.get("locked") and not m.get("grade"):
            exec(compile(cell.source, m["grade_id"], "exec"), ns)
    return ns


def run_test_cell(exercise: int, region: str | None = None) -> str | None:
    """Run exercise's solution cell (its region replaced by ``region``) then its whole test cell;
    the failure message, or None when every check passes."""
    ns = _namespace()
    solution = _cell(f"nb06_ex{exercise}_solution")
    if region is not None:
        solution = C._replace_solution_region(solution, textwrap.dedent(region).strip("\n"))
    exec(compile(solution, "solution", "exec"), ns)
    try:
        exec(compile(_cell(f"nb06_ex{exercise}_tests"), "tests", "exec"), ns)
    except grading.GradingFailure as failure:
        return getattr(failure, "message", str(failure))  # unwrapped
    return None


WRONG = [(n, w) for n, answers in catalogue.WRONG.items() for w in answers]


@functools.lru_cache(maxsize=None)
def message_of(exercise: int, label: str) -> str | None:
    wrong = next(w for n, w in WRONG if n == exercise and w.label == label)
    return run_test_cell(exercise, wrong.region)


def test_the_catalogue_covers_every_exercise_with_three_wrong_answers():
    exercises = {e.number for e in C.exercises(_notebook())}
    assert set(catalogue.WRONG) == exercises
    assert all(len(answers) >= 3 for answers in catalogue.WRONG.values())


@pytest.mark.parametrize("exercise", [1, 2, 3, 4])
def test_the_solution_passes_its_whole_test_cell(exercise, capsys):
    assert run_test_cell(exercise) is None
    assert "✔" in capsys.readouterr().out


RIGHT_ALTERNATIVES = {
    1: """
       mean = np.sum(x, axis=0) / N
       var = np.sum((x - mean) ** 2, axis=0) / N
       out = gamma * ((x - mean) / np.sqrt(var + eps)) + beta
       new_mean = running_mean + momentum * (mean - running_mean)
       new_var = running_var + momentum * (x.var(axis=0, ddof=1) - running_var)
       """,
    2: """
       if not training:
           out = (x - running_mean) * (gamma / np.sqrt(running_var + eps)) + beta
           return out, np.array(running_mean), np.array(running_var)
       return batchnorm_train(x, gamma, beta, running_mean, running_var, momentum=momentum, eps=eps)
       """,
    3: """
       x_2d = np.moveaxis(x, 1, -1).reshape(-1, C)
       out_2d, new_mean, new_var = batchnorm_forward(x_2d, gamma, beta, running_mean, running_var,
                                                     training, momentum, eps)
       out = np.moveaxis(out_2d.reshape(N, H, W, C), -1, 1)
       """,
    4: """
       N = x.shape[0]
       dbeta = np.sum(dout, axis=0)
       dgamma = np.sum(dout * x_hat, axis=0)
       dx_hat = dout * gamma
       dvar = np.sum(dx_hat * (x - mean), axis=0) * -0.5 * (var + eps) ** -1.5
       dmean = -np.sum(dx_hat, axis=0) / np.sqrt(var + eps) - 2 * dvar * np.mean(x - mean, axis=0)
       dx = dx_hat / np.sqrt(var + eps) + dvar * 2 * (x - mean) / N + dmean / N
       """,
}


@pytest.mark.parametrize("exercise", sorted(RIGHT_ALTERNATIVES))
def test_other_right_solutions_pass(exercise):
    assert run_test_cell(exercise, RIGHT_ALTERNATIVES[exercise]) is None


@pytest.mark.parametrize("exercise,wrong", WRONG, ids=[f"6.{n}: {w.label}" for n, w in WRONG])
def test_a_wrong_answer_fails_with_the_hint_that_names_it(exercise, wrong):
    message = message_of(exercise, wrong.label)
    assert message is not None, "this wrong answer passes every test"
    if wrong.hint is None:
        assert "hint:" not in message, f"a guessed hint for a mistake with none catalogued:\n{message}"
    else:
        assert wrong.hint in message, f"expected the hint {wrong.hint!r}, got:\n{message}"
    for other in wrong.not_hint:
        assert other not in message


@pytest.mark.parametrize("exercise,wrong", [(n, w) for n, w in WRONG if w.hint],
                         ids=[f"6.{n}: {w.label}" for n, w in WRONG if w.hint])
def test_a_hint_fires_on_no_other_wrong_answer(exercise, wrong):
    for n, other in WRONG:
        if other is wrong or other.hint == wrong.hint:
            continue
        message = message_of(n, other.label) or ""
        assert wrong.hint not in message, f"the hint for {wrong.label!r} fired on {other.label!r}:\n{message}"


@pytest.mark.parametrize("exercise,wrong", WRONG, ids=[f"6.{n}: {w.label}" for n, w in WRONG])
def test_hint_lines_fit_nbgrader_validate(exercise, wrong):
    lines = (message_of(exercise, wrong.label) or "").splitlines()
    hint_lines = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith("hint:"):
            hint_lines.append(line)
            hint_lines += list(itertools.takewhile(lambda l: l.startswith(" " * 8), lines[i + 1:]))
            break
    assert all(len(line) <= 90 for line in hint_lines), "\n".join(l for l in hint_lines if len(l) > 90)


def test_evaluation_mode_output_does_not_depend_on_the_batch():
    """The eval-mode mistake (batch statistics) is caught by the explicit check too."""
    wrong = next(w for n, w in WRONG if n == 2 and w.label == "eval mode uses the batch statistics")
    message = message_of(2, wrong.label)
    assert "case 1 of 4" in message  # caught on the first visible case already

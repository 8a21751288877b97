"""cnnlib.grading.nb07: the checks of notebook 07_training, run in-process on the notebook's cells.

For exercises 7.1-7.5 every wrong answer of tests/wrong_answers/nb07.py is put in the solution
cell and the exercise's test cell (visible and hidden parts) is run: it must fail with the hint
that names that mistake and with none of the hints of the exercise's other mistakes. Exercise 7.6
(training) is checked with stand-in models, and the notebook's full-MNIST cell with a tiny IDX
fixture in a temporary cache.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import struct
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import course as C
from cnnlib import grading
from cnnlib.grading import GradingFailure

sys.path.insert(0, str(Path(__file__).parent))
from wrong_answers import nb07 as catalogue  # noqa: E402

NAME = "07_training"
NOTEBOOK = C.read(C.SOLUTIONS / NAME / f"{NAME}.ipynb")
CELLS = {C.meta(c)["grade_id"]: c.source for c in NOTEBOOK.cells if C.meta(c)}


def _indented(source: str, region: str) -> str:
    out, inside = [], False
    for line in source.splitlines():
        if C.BEGIN_SOLUTION in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + r if r.strip() else r for r in textwrap.dedent(region).strip("\n").splitlines())
        elif C.END_SOLUTION in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


@pytest.fixture(scope="module")
def base():
    """The namespace after the locked setup and data cells."""
    ns: dict = {}
    for gid, src in CELLS.items():
        if gid.endswith("_setup") or "_data_" in gid:
            exec(compile(src, gid, "exec"), ns)
    yield ns
    if "_blas_threads" in ns:  # the setup cell's one-BLAS-thread limit: not for the other tests
        ns["_blas_threads"].restore_original_limits()


def run_exercise(base: dict, n: int, region: str | None = None) -> str | None:
    """Run exercise n's solution cell (its region replaced by ``region``) and its test cell;
    the failure message, or None when every check passes."""
    ns = dict(base)
    solution = CELLS[f"nb07_ex{n}_solution"]
    if region is not None:
        solution = _indented(solution, region)
    exec(compile(solution, f"ex{n}_solution", "exec"), ns)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(CELLS[f"nb07_ex{n}_tests"], f"ex{n}_tests", "exec"), ns)
    except GradingFailure as exc:
        return exc.message  # unwrapped: the hint texts are matched whole
    return None


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_the_solution_passes(base, n):
    assert run_exercise(base, n) is None


WRONG = [(n, w) for n, answers in catalogue.WRONG.items() if n <= 5 for w in answers]


@pytest.mark.parametrize("n,wrong", WRONG, ids=[f"7.{n}-{w.label}" for n, w in WRONG])
def test_each_wrong_answer_fails_with_its_own_hint(base, n, wrong):
    message = run_exercise(base, n, wrong.region)
    assert message is not None, f"exercise 7.{n}: {wrong.label!r} passed the tests"
    if wrong.hint is not None:
        assert wrong.hint in message, message
    for text in wrong.not_hint:
        assert text not in message, message
    others = {w.hint for w in catalogue.WRONG[n] if w.hint and w.hint != wrong.hint}
    fired = [h for h in others if h in message]
    assert not fired, f"{wrong.label!r} got the hint(s) of other mistakes {fired}:\n{message}"


def test_catalogue_has_three_wrong_answers_per_exercise():
    exercises = {e.number for e in C.exercises(NOTEBOOK)}
    assert set(catalogue.WRONG) == exercises
    assert all(len(v) >= 3 for v in catalogue.WRONG.values())


def test_unfinished_exercises_say_not_implemented(base):
    for n in range(1, 6):
        message = run_exercise(base, n, "raise NotImplementedError()")
        assert message is not None and "not implemented yet" in message, (n, message)


# ------------------------------------------------------------------------------------------------
# the references agree with cnnlib


def test_article_lenet_has_the_articles_shapes_and_count():
    net = grading.article_lenet(0)
    assert net.count_params() == 156 + 2416 + 48120 + 12100 + 1010 == 63802
    assert net.output_shapes((1, 32, 32))[:7] == [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10),
                                                  (16, 10, 10), (16, 5, 5), (400,)]


@pytest.mark.parametrize("case", grading.epoch_cases(6, seed=1))
def test_reference_epoch_equals_fit(case):
    from cnnlib.grading.nb07 import _params, _problem
    from cnnlib.train import fit

    X, y, model, opt, rng = _problem(case)
    X2, y2, model2, opt2, rng2 = _problem(case)
    losses = grading.reference_train_epoch(model, opt, X, y, case["batch_size"], rng)
    history = fit(model2, opt2, X2, y2, epochs=1, batch_size=case["batch_size"], rng=rng2, progress=False)
    for a, b in zip(_params(model), _params(model2)):
        np.testing.assert_array_equal(a, b)
    sizes = [min(case["batch_size"], case["n"] - s) for s in range(0, case["n"], case["batch_size"])]
    assert np.isclose(np.dot(losses, sizes) / case["n"], history.history["loss"][0], rtol=1e-5)


def test_evaluation_reference_matches_viz():
    from cnnlib import viz

    for case in grading.classifier_cases(10, seed=3, kind="evaluation"):
        acc, m = grading.evaluation_reference(*case.values())
        pred = case["logits"].argmax(axis=1)
        np.testing.assert_array_equal(m, viz.confusion_matrix(case["y"], pred, case["num_classes"]))
        assert np.isclose(np.trace(m) / len(case["y"]), acc)


def test_confident_mistakes_reference_by_hand():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_array_equal(grading.confident_mistakes_reference(probs, np.array([1, 1, 0, 1]), 5), [0, 2, 3])


def test_momentum_variants_differ_from_the_right_update():
    """Each known mistake's answer differs from the right one (so its hint can only fire on it)."""
    from cnnlib.grading.nb07 import _MOMENTUM_HINTS, _momentum_run

    case = {"shapes": [(3,)], "lr": 0.1, "momentum": 0.9, "steps": 3, "init": 0}
    right = _momentum_run(case)
    for variant in _MOMENTUM_HINTS:
        wrong = _momentum_run(case, variant)
        assert not all(np.allclose(a, b) for a, b in zip(right[-1][0], wrong[-1][0])), variant


# ------------------------------------------------------------------------------------------------
# exercise 7.6: the trained model, with stand-in models


class _Fixed:
    """A 'model' whose logits are given per example (X holds the example indices in pixel 0)."""

    def __init__(self, logits_of):
        self.logits_of = logits_of

    def eval(self):
        return self

    def forward(self, x):
        return self.logits_of(x)


def _labelled(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    X = np.zeros((n, 1, 28, 28), np.float32)
    X[:, 0, 0, 0] = np.arange(n)
    return X, y


def _model_right_on(fraction, y):
    def logits(x):
        idx = x[:, 0, 0, 0].astype(int)
        target = np.where(idx < fraction * len(y), y[idx], (y[idx] + 1) % 10)
        return np.eye(10)[target] * 5.0
    return _Fixed(logits)


def _fails(check, *args, **kwargs) -> str:
    with pytest.raises(GradingFailure) as info:
        with contextlib.redirect_stdout(io.StringIO()):
            check(*args, **kwargs)
    return info.value.message  # unwrapped


def test_trained_model_hints():
    X, y = _labelled()
    grading.check_trained_model(_model_right_on(0.97, y), X, y, at_least=0.95, quiet=True)
    low = _fails(grading.check_trained_model, _model_right_on(0.8, y), X, y)
    assert "train longer" in low and "guessing" not in low and "0.8000" in low
    chance = _fails(grading.check_trained_model, _model_right_on(0.05, y), X, y)
    assert "no better than guessing" in chance and "train longer" not in chance
    nan = _fails(grading.check_trained_model, _Fixed(lambda x: np.full((len(x), 10), np.nan)), X, y)
    assert "learning rate is too large" in nan and "guessing" not in nan
    dead = _fails(grading.check_trained_model, _Fixed(lambda x: np.tile([0.1, 0.3, -0.2] + [0.0] * 7, (len(x), 1))),
                  X, y)  # every ReLU off: the same logits for every image
    assert "a learning rate far too large" in dead and "always says 1" in dead and "guessing" not in dead
    assert "far too large" not in chance and "the net died" not in chance
    assert "did not finish training" in _fails(grading.check_trained_model, None, X, y)
    assert "return model" in _fails(grading.check_trained_model, object(), X, y)


def test_training_function_checks():
    X, y = _labelled()

    def trains(X, y, X_val, y_val, rng):
        return _model_right_on(1.0, _labelled()[1]), None

    grading.check_training_function(trains, X, y, subset=64, seed=0, quiet=True)

    def unfinished(X, y, X_val, y_val, rng):
        raise NotImplementedError()

    assert "not implemented yet" in _fails(grading.check_training_function, unfinished, X, y)
    assert "expected the trained model" in _fails(grading.check_training_function,
                                                  lambda *a: (None, None), X, y)
    wrong = _fails(grading.check_training_function, lambda *a: (_model_right_on(0.0, _labelled()[1]), None), X, y,
                   min_accuracy=0.2)
    assert "training accuracy" in wrong


# ------------------------------------------------------------------------------------------------
# the full-MNIST cell, on a tiny IDX fixture in a temporary cache


def _idx(array: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(f">BBBB{array.ndim}I", 0, 0, 8, array.ndim, *array.shape)
                         + array.astype(">u1").tobytes(), mtime=0)


def _full_mnist_cell() -> str:
    cells = [c.source for c in NOTEBOOK.cells if c.cell_type == "code" and 'load_mnist("auto"' in c.source]
    assert len(cells) == 1
    return cells[0]


@pytest.fixture
def no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the full-MNIST cell tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_full_mnist_cell_trains_when_the_full_set_is_cached(base, tmp_path, monkeypatch, no_network):
    from cnnlib import datasets

    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 96), ("t10k", 32)):
        files[f"{split}-images-idx3-ubyte.gz"] = _idx(rng.integers(0, 256, size=(n, 28, 28)))
        files[f"{split}-labels-idx1-ubyte.gz"] = _idx(rng.integers(0, 10, size=n))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(datasets, "MNIST_FILES", {k: "md5:" + hashlib.md5(v).hexdigest() for k, v in files.items()})
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path))
    out = io.StringIO()
    ns = dict(base)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(_full_mnist_cell(), "full_mnist", "exec"), ns)
    assert "full MNIST: one epoch on 96 training digits" in out.getvalue()
    assert "on 32 test digits" in out.getvalue()
    assert ns["full_model"].count_params() == 63802


def test_full_mnist_cell_skips_without_the_cache(base, tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path / "empty"))
    out = io.StringIO()
    ns = dict(base)
    with contextlib.redirect_stdout(out):
        exec(compile(_full_mnist_cell(), "full_mnist", "exec"), ns)
    assert "The full MNIST is not in the cache" in out.getvalue() and "full_model" not in ns

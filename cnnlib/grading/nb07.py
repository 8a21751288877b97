"""Grading helpers of notebook 07_training: references, case generators and known mistakes.

The exercises of 07_training use cnnlib's layers, models and optimizers, so some checks cannot
simply call the learner's function with the whole reference switched off:

- :func:`check_lenet` calls ``build_lenet(init)`` with the reference off (constructors are not
  guarded, ``cnnlib.model.lenet`` is), then reads the model through its ``summary()``, its
  ``parameters()`` and its ``forward``;
- :func:`check_sgd_momentum` runs a learner's ``sgd_momentum_step`` for a few steps next to
  ``cnnlib.optim.SGD`` and checks that the parameters are updated in place;
- :func:`check_train_epoch` hands ``train_epoch`` a model and an optimizer whose ``forward``,
  ``backward`` and ``step`` may run cnnlib while the rest of cnnlib (``fit`` above all) is refused,
  and compares the weights with ``cnnlib.train.fit`` doing the same epoch;
- :func:`check_trained_model` evaluates the model the notebook trained, and
  :func:`check_training_function` runs the learner's training function on a small subset.

``accuracy``, ``confusion_matrix`` and ``most_confident_mistakes`` are plain functions, checked
with :func:`~cnnlib.grading.checks.check_function` and the references and mistakes below.
"""

from __future__ import annotations

import copy
import math
import re
import traceback
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from cnnlib.grading import guard
from cnnlib.grading.failures import GradingFailure, _cases_pass, _fail, _learner_frames, describe_case
from cnnlib.grading.mistakes import COMMON_ERROR_HINTS, ErrorHint, Mistake

Case = Mapping[str, Any]

__all__ = [
    "article_lenet",
    "check_lenet",
    "momentum_cases",
    "check_sgd_momentum",
    "epoch_cases",
    "reference_train_epoch",
    "check_train_epoch",
    "accuracy_reference",
    "accuracy_mistakes",
    "confusion_reference",
    "confusion_mistakes",
    "classifier_cases",
    "evaluation_reference",
    "evaluation_mistakes",
    "confident_mistakes_reference",
    "confident_mistakes_mistakes",
    "check_trained_model",
    "check_training_function",
]


# ------------------------------------------------------------------------------------------------
# calling the learner


def _call(fn: Callable, args: Sequence, name: str, header: str, *, blocked: bool = True,
          error_hints: Sequence[ErrorHint] = (), case: Case | None = None) -> Any:
    """Call the learner's function (with cnnlib's reference off when ``blocked``); turn its errors
    into a TA's message. Unlike check_function's caller it allows in-place updates of arguments
    (an optimizer step and a training epoch are supposed to change them)."""
    __tracebackhide__ = True
    try:
        if blocked:
            with guard.blocked(name):
                return fn(*args)
        return fn(*args)
    except NotImplementedError:
        raise GradingFailure(
            f"{name}: not implemented yet. Replace `raise NotImplementedError()` with your code "
            "and run the cell again."
        ) from None
    except guard.ReferenceBlockedError as exc:
        raise GradingFailure(f"{header}\n  {exc}") from exc
    except GradingFailure:
        raise
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        where = _learner_frames(exc)
        hint = next((t for h in [*error_hints, *COMMON_ERROR_HINTS] if (t := h.text(case or {}, exc))), None)
        raise GradingFailure(
            f"{header}\n  your function raised {last}"
            + (f"\n  where: {where}" if where else "")
            + (f"\n  hint: {hint}" if hint else "")
            + "\n  (your traceback is shown above this message)"
        ) from exc


def _not_callable(fn: Any, name: str) -> None:
    if not callable(fn):
        _fail(f"{name}: expected a function, got {type(fn).__name__} ({fn!r:.60})")


class _Lifted:
    """The test's model or optimizer as the learner's function sees it: the methods named in
    ``lifted`` may run cnnlib's reference while the check has it switched off for everything
    else. The lift is made here, in the test cell, before the check starts."""

    def __init__(self, obj: Any, lifted: Sequence[str]):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_names", tuple(lifted))
        object.__setattr__(self, "_lift", guard.allowed())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._obj, name)
        if name in self._names and callable(attr):
            lift = self._lift

            def call(*args, **kwargs):
                with lift:
                    return attr(*args, **kwargs)

            call.__name__ = name
            return call
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._obj, name, value)

    def __call__(self, *args, **kwargs):
        with self._lift:
            return self._obj(*args, **kwargs)

    def __iter__(self):
        return iter(self._obj)

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, index):
        return self._obj[index]

    def __repr__(self) -> str:
        return repr(self._obj)


# ------------------------------------------------------------------------------------------------
# Exercise 7.1: the article's LeNet


def article_lenet(seed: int = 0):
    """The article's LeNet for a 1x32x32 input, weights drawn from ``np.random.default_rng(seed)``.

    INPUT 32x32 -> CONV 6@5x5 -> RELU -> POOL 2x2/2 -> CONV 16@5x5 -> RELU -> POOL 2x2/2 ->
    FLATTEN 400 -> FC 120 -> RELU -> FC 100 -> RELU -> FC 10 (63,802 parameters).

    Example:
        >>> article_lenet(0).count_params()
        63802
        >>> article_lenet(0).output_shapes((1, 32, 32))[6]
        (400,)
    """
    from cnnlib.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
    from cnnlib.model import Sequential

    rng = np.random.default_rng(seed)
    return Sequential([
        Conv2d(1, 6, 5, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(16 * 5 * 5, 120, rng=rng), ReLU(),
        Linear(120, 100, rng=rng), ReLU(),
        Linear(100, 10, rng=rng),
    ])


_ROW = re.compile(r"^\S+ \((\w+)\)\s+\(None, ([\d, ]+)\)\s+([\d,]+)\s*$")


def _rows(summary: str) -> list[tuple[str, tuple[int, ...], int]]:
    """(kind, output shape, parameters) for every layer row of a ``summary()`` table."""
    rows = []
    for line in str(summary).splitlines():
        m = _ROW.match(line.strip())
        if m:
            shape = tuple(int(v) for v in m[2].replace(" ", "").split(",") if v)
            rows.append((m[1], shape, int(m[3].replace(",", ""))))
    return rows


def _describe_row(row) -> str:
    kind, shape, n = row
    return f"{kind} -> (None, {', '.join(map(str, shape))}), {n:,} parameters"


_SIZES = ("32x32 input -> conv 5x5: 28x28 -> pool: 14x14 -> conv 5x5: 10x10 -> pool: 5x5, "
          "so each example flattens to 16*5*5 = 400 numbers")


def _lenet_hint(got: list, want: list, first: int) -> str | None:
    """The hint for the first layer where the learner's rows differ from the article's."""
    kinds, want_kinds = [r[0] for r in got], [r[0] for r in want]
    no_relu = [k for k in kinds if k != "ReLU"]
    want_no_relu = [k for k in want_kinds if k != "ReLU"]
    if no_relu == want_no_relu and kinds != want_kinds:
        if kinds and kinds[-1] == "ReLU":
            return ("no ReLU after the last FC layer: its 10 outputs are the logits (the scores of "
                    "the digits); the softmax comes with the loss.")
        return ("a ReLU is missing (or extra): every CONV and every FC but the last is followed "
                "by a ReLU, as in INPUT -> [CONV -> RELU -> POOL]*2 -> [FC -> RELU]*2 -> FC.")
    if first < len(got) and first < len(want):
        g, w = got[first], want[first]
        if g[0] == "AvgPool2d" and w[0] == "MaxPool2d":
            return "the article pools with 2x2 MAX pooling (MaxPool2d(2)), not mean pooling."
        if g[0] == "Conv2d" and w[0] == "Conv2d" and g[1][0] == w[1][0] and g[1][1] > w[1][1]:
            return (f"the article's convolutions have no padding: {w[1][1] + 4} - 5 + 1 = "
                    f"{w[1][1]} (padding=2 is for 28x28 MNIST digits; here the input is already 32x32).")
        if g[0] == w[0] == "Linear" and g[1] == w[1] and g[2] != w[2]:
            return "same output, other parameter count: did you leave out the bias (bias=True)?"
    if "Flatten" not in kinds and "Flatten" in want_kinds:
        return "the FC layers need flat vectors: put Flatten() between the last pool and the first FC."
    return None


def _working_prefix(model) -> list:
    """The summary rows of the longest first part of the model that runs on a 1x32x32 input."""
    for k in range(len(model) - 1, 0, -1):
        try:
            return _rows(model[:k].summary((1, 32, 32)))
        except Exception:
            continue
    return []


def _model_error_hint(message: str) -> str:
    if re.search(r"Linear|features|linear", message):
        return f"check the first FC layer's in_features: {_SIZES}."
    return f"follow the shapes layer by layer: {_SIZES}."


def check_lenet(build: Callable, seeds: Sequence[int] = (0,), *, name: str = "build_lenet",
                quiet: bool = False) -> None:
    """Check ``build(init)`` against the article's LeNet (:func:`article_lenet`) for each ``init``
    in ``seeds`` (the number the weights are drawn from: ``np.random.default_rng(init)``).

    The model must have the article's layers in order (kinds, output shapes and parameter counts
    of its ``summary((1, 32, 32))``), compute what the article's net computes with the same
    weights, give the same weights for the same ``init`` and other weights for another one.
    """
    __tracebackhide__ = True
    _not_callable(build, name)
    x = np.random.default_rng(701).standard_normal((2, 1, 32, 32)).astype(np.float32)
    for i, seed in enumerate(seeds, 1):
        header = f"{name}, case {i} of {len(seeds)}: init={seed}"
        model = _call(build, (seed,), name, header)
        if model is None:
            _fail(f"{header}\n  your function returned None; hint: did you forget `return model`?")
        want_model = article_lenet(seed)
        want = _rows(want_model.summary((1, 32, 32)))
        try:
            summary = model.summary((1, 32, 32))
        except AttributeError:
            _fail(f"{header}\n  expected a cnnlib.model.Sequential, got {type(model).__name__}; hint: "
                  "return Sequential([Conv2d(...), ReLU(), ...])")
        except (ValueError, TypeError) as exc:
            prefix = _working_prefix(model)
            first = next((k for k, (g, w) in enumerate(zip(prefix, want)) if g != w), None)
            if first is not None:  # a layer before the one that failed is already wrong
                hint = _lenet_hint(prefix, want, first)
                _fail(f"{header}\n  layer {first}: expected {_describe_row(want[first])}\n    got "
                      f"{_describe_row(prefix[first])}\n  and layer {len(prefix)} cannot take its input: {exc}"
                      + (f"\n  hint: {hint}" if hint else ""))
            _fail(f"{header}\n  your model does not fit a 1x32x32 input: {exc}\n  hint: "
                  + _model_error_hint(str(exc)))
        got = _rows(summary)
        if got != want:
            first = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            lines = [f"{len(want)} layers expected, got {len(got)}"] if len(got) != len(want) else []
            if first < len(want):
                lines.append(f"layer {first}: expected {_describe_row(want[first])}")
                lines.append(f"  got " + (_describe_row(got[first]) if first < len(got) else "no layer"))
            hint = _lenet_hint(got, want, first)
            _fail(header + "".join("\n  " + line for line in lines) + (f"\n  hint: {hint}" if hint else ""))
        # the same computation: the article's net with the learner's weights
        weights = [np.asarray(p.data) for p in model.parameters()]
        for p, w in zip(want_model.parameters(), weights):
            p.data[...] = w
        expected = want_model.forward(x)
        got_out = np.asarray(model.forward(x))
        if got_out.shape != expected.shape or not np.allclose(got_out, expected, rtol=1e-4, atol=1e-5):
            _fail(f"{header}\n  with your weights the article's net computes other logits (largest "
                  f"difference {np.abs(got_out - expected).max():.3g}); hint: check the order of the layers.")
        again = [np.asarray(p.data) for p in _call(build, (seed,), name, header).parameters()]
        other = [np.asarray(p.data) for p in _call(build, (seed + 1,), name, header).parameters()]
        if not all(np.array_equal(a, b) for a, b in zip(weights, again)) or all(
                np.array_equal(a, b) for a, b in zip(weights, other)):
            _fail(f"{header}\n  the weights do not follow init: the same init must give the same "
                  "weights, another init other weights.\n  hint: pass rng=rng to every Conv2d and "
                  "Linear (rng = np.random.default_rng(init) is made for you).")
    if not quiet:
        print(f"✔ {name}: the article's LeNet, 63,802 parameters ({_cases_pass(len(seeds))})")


# ------------------------------------------------------------------------------------------------
# Exercise 7.2: SGD with momentum, in place


def momentum_cases(n: int, *, seed: int) -> list[dict]:
    """Random cases for :func:`check_sgd_momentum`: parameter shapes, lr, momentum, steps, and ``init``, the number the parameters and gradients are drawn from."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        shapes = [tuple(int(v) for v in rng.integers(1, 5, size=int(rng.integers(1, 4)))) for _ in range(k)]
        cases.append({"shapes": shapes, "lr": float(np.round(rng.uniform(0.01, 0.5), 3)),
                      "momentum": float(rng.choice([0.5, 0.8, 0.9, 0.99])), "steps": int(rng.integers(2, 5)),
                      "init": int(rng.integers(0, 10_000))})
    return cases


def _momentum_run(case: Case, variant: str = "right"):
    """(params, velocities) after each step of ``case`` for the right update or a known mistake."""
    rng = np.random.default_rng(case["init"])
    p = [rng.standard_normal(s).astype(np.float32) for s in case["shapes"]]
    v = [np.zeros_like(a) for a in p]
    lr, mu = np.float32(case["lr"]), np.float32(case["momentum"])
    history = []
    for _ in range(case["steps"]):
        grads = [rng.standard_normal(s).astype(np.float32) for s in case["shapes"]]
        for i, g in enumerate(grads):
            if variant == "right":
                v[i] = mu * v[i] + g
                p[i] = p[i] - lr * v[i]
            elif variant == "order":          # moved with the old velocity, then updated it
                p[i] = p[i] - lr * v[i]
                v[i] = mu * v[i] + g
            elif variant == "plain":          # no momentum at all
                p[i] = p[i] - lr * g
            elif variant == "dampening":      # v = mu v + (1 - mu) g
                v[i] = mu * v[i] + (1 - mu) * g
                p[i] = p[i] - lr * v[i]
            elif variant == "sign":           # went up the gradient
                v[i] = mu * v[i] + g
                p[i] = p[i] + lr * v[i]
            elif variant == "lr_in_velocity":  # CS231n's v = mu v - lr g; p += v
                v[i] = mu * v[i] - lr * g
                p[i] = p[i] + v[i]
        history.append(([a.copy() for a in p], [a.copy() for a in v], grads))
    return history


_MOMENTUM_HINTS = {
    "order": "you moved the parameter with the OLD velocity, then updated it: first "
             "v = momentum * v + grad, then p -= lr * v (so the very first step already moves).",
    "plain": "your update is plain SGD, p -= lr * grad: the velocity must carry over from step to "
             "step (v = momentum * v + grad, stored back into velocities[i]).",
    "dampening": "v = momentum * v + grad: PyTorch's momentum does not scale the gradient by "
                 "(1 - momentum).",
    "sign": "gradient DESCENT goes against the gradient: p -= lr * v, not +=.",
}


def check_sgd_momentum(step: Callable, cases: Iterable[Case], *, name: str = "sgd_momentum_step",
                       quiet: bool = False) -> None:
    """Run ``step(params, velocities, lr, momentum)`` for ``case["steps"]`` steps on cnnlib
    Parameters (new random gradients each step) and compare with ``cnnlib.optim.SGD``.

    Each step must update every ``params[i].data`` IN PLACE (the same array, new values: the model's
    layers and the optimizer's state hold that array) and keep each velocity in ``velocities[i]``.
    Known mistakes (wrong order, plain SGD, dampening, sign, CS231n's velocity) get their hint.
    """
    __tracebackhide__ = True
    from cnnlib.layers import Parameter
    from cnnlib.optim import SGD

    _not_callable(step, name)
    cases = list(cases)
    for c, case in enumerate(cases, 1):
        header = f"{name}, case {c} of {len(cases)}: {describe_case(case)}"
        rng = np.random.default_rng(case["init"])
        start = [rng.standard_normal(s).astype(np.float32) for s in case["shapes"]]
        params = [Parameter(a.copy(), f"p{i}") for i, a in enumerate(start)]
        ref = [Parameter(a.copy(), f"p{i}") for i, a in enumerate(start)]
        velocities = [np.zeros_like(a) for a in start]
        opt = SGD(ref, lr=case["lr"], momentum=case["momentum"])
        variants = {v: _momentum_run(case, v) for v in ("right", *_MOMENTUM_HINTS, "lr_in_velocity")}
        for t in range(case["steps"]):
            grads = variants["order"][t][2]
            for p, r, g in zip(params, ref, grads):
                p.grad[...] = g
                r.grad[...] = g
            arrays = [p.data for p in params]
            before = [a.copy() for a in arrays]
            _call(step, (params, velocities, case["lr"], case["momentum"]), name,
                  f"{header}\n  step {t + 1} of {case['steps']}")
            opt.step()
            where = f"after step {t + 1} of {case['steps']}"
            for i, (p, r) in enumerate(zip(params, ref)):
                data = np.asarray(p.data)
                if data.shape != r.data.shape or not np.allclose(data, r.data, rtol=1e-4, atol=1e-6):
                    hint = next((h for v, h in _MOMENTUM_HINTS.items() if data.shape == r.data.shape
                                 and np.allclose(data, variants[v][t][0][i], rtol=1e-4, atol=1e-6)), None)
                    if hint is None and np.array_equal(data, before[i]):
                        hint = "the parameter did not change: update params[i].data (p.data -= lr * v)."
                    _fail(f"{header}\n  {where}, params[{i}].data: "
                          + _array_diff(r.data, data)
                          + (f"\n  hint: {hint}" if hint else ""))
                if p.data is not arrays[i]:
                    _fail(f"{header}\n  {where}: params[{i}].data holds the right values but is a NEW "
                          f"array.\n  hint: `p.data = p.data - lr * v` rebinds p.data, and whatever still "
                          f"holds the old array (the optimizer, a saved state_dict) never sees the update; "
                          f"change it in place: p.data -= lr * v (or p.data[...] = ...).")
            for i, v in enumerate(velocities):
                right = variants["right"][t][1][i]
                v = np.asarray(v)
                if v.shape == right.shape and np.allclose(v, right, rtol=1e-4, atol=1e-6):
                    continue
                if v.shape == right.shape and np.allclose(v, variants["lr_in_velocity"][t][1][i], rtol=1e-4,
                                                          atol=1e-6):
                    hint = ("you keep lr inside the velocity (CS231n's v = momentum*v - lr*grad). This "
                            "exercise, like PyTorch and cnnlib.optim.SGD, stores v = momentum*v + grad and "
                            "moves p -= lr * v.")
                elif not np.any(v):
                    hint = ("velocities[i] is still all zeros: the velocity must be kept between steps, "
                            "in the array you were given (v *= momentum; v += p.grad); `v = momentum * v "
                            "+ p.grad` only binds a new local array.")
                else:
                    hint = None
                _fail(f"{header}\n  {where}, velocities[{i}]: " + _array_diff(right, v)
                      + (f"\n  hint: {hint}" if hint else ""))
    if not quiet:
        print(f"✔ {name}: updates in place, as cnnlib.optim.SGD ({_cases_pass(len(cases))})")


def _array_diff(expected: np.ndarray, got: np.ndarray) -> str:
    if got.shape != expected.shape:
        return f"expected shape {expected.shape}, got {got.shape}"
    bad = np.argwhere(~np.isclose(got, expected, rtol=1e-4, atol=1e-6))
    idx = tuple(int(v) for v in bad[0]) if len(bad) else ()
    return (f"{len(bad)} of {expected.size} values differ; first at index {idx}: expected "
            f"{float(expected[idx]):.6g}, got {float(got[idx]):.6g}")


# ------------------------------------------------------------------------------------------------
# Exercise 7.3: one training epoch


def epoch_cases(n: int, *, seed: int) -> list[dict]:
    """Random small training problems for :func:`check_train_epoch` (plain data: sizes, the optimizer, ``init`` for the data and weights)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        cases.append({"n": int(rng.integers(20, 70)), "batch_size": int(rng.choice([4, 7, 8, 16, 25])),
                      "optimizer": str(rng.choice(["sgd", "momentum", "adam"])),
                      "conv": bool(rng.integers(0, 2)), "init": int(rng.integers(0, 10_000))})
    return cases


def _problem(case: Case):
    """X, y, a small model and its optimizer for one case (a learnable toy problem)."""
    from cnnlib.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
    from cnnlib.model import Sequential
    from cnnlib.optim import SGD, Adam

    rng = np.random.default_rng(case["init"])
    n, k = case["n"], 3
    X = rng.standard_normal((n, 1, 6, 6)).astype(np.float32)
    y = (X.reshape(n, -1) @ rng.standard_normal((36, k))).argmax(axis=1).astype(np.int64)
    if case.get("conv", True):
        layers = [Conv2d(1, 3, 3, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(12, k, rng=rng)]
    else:
        layers = [Flatten(), Linear(36, 8, rng=rng), ReLU(), Linear(8, k, rng=rng)]
    model = Sequential(layers)
    kind = case.get("optimizer", "sgd")
    if kind == "adam":
        opt = Adam(model.parameters(), lr=0.01)
    else:
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9 if kind == "momentum" else 0.0)
    return X, y, model, opt, np.random.default_rng(case["init"] + 1)


def reference_train_epoch(model, optimizer, X, y, batch_size, rng, *, zero_grad: bool = True,
                          shuffle: bool = True, drop_last: bool = False, zero_after_backward: bool = False,
                          step_before_backward: bool = False) -> list[float]:
    """One epoch of mini-batch training, as ``cnnlib.train.fit`` runs it; returns the batch losses.

    The keyword flags make the known wrong versions (forgot zero_grad, no shuffling, dropped the
    last partial batch, zeroed the gradients between backward and step, stepped before backward).
    """
    from cnnlib.losses import softmax_cross_entropy

    n = len(X)
    order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    losses = []
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        if zero_grad:
            optimizer.zero_grad()
        loss, dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
        if step_before_backward:
            optimizer.step()
            model.backward(dlogits)
        else:
            model.backward(dlogits)
            if zero_after_backward:
                optimizer.zero_grad()
            optimizer.step()
        losses.append(float(loss))
    return losses


_EPOCH_VARIANTS = {
    "forgot zero_grad": (dict(zero_grad=False),
                         "gradients ACCUMULATE in p.grad: call optimizer.zero_grad() before each "
                         "batch's backward, or every step also applies all earlier batches' gradients."),
    "no shuffling": (dict(shuffle=False),
                     "the batches must be drawn in a shuffled order: order = rng.permutation(len(X)), "
                     "then batch b is order[b*batch_size:(b+1)*batch_size]."),
    "dropped the last batch": (dict(drop_last=True),
                               "the last, smaller batch is missing: range(0, len(X), batch_size) "
                               "also covers the examples left over at the end."),
    "zeroed after backward": (dict(zero_after_backward=True),
                              "zero_grad() between backward and step wipes the gradients before they "
                              "are used: zero_grad, forward, loss, backward, step."),
    "stepped before backward": (dict(step_before_backward=True),
                                "optimizer.step() ran before model.backward(...): the step must use "
                                "this batch's gradients (zero_grad, forward, loss, backward, step)."),
}


def _params(model) -> list[np.ndarray]:
    return [np.array(p.data, copy=True) for p in model.parameters()]


def _same_weights(a: list, b: list) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y, rtol=1e-4, atol=1e-5)
                                    for x, y in zip(a, b))


def check_train_epoch(train_epoch: Callable, cases: Iterable[Case], *, epochs: int = 2,
                      name: str = "train_epoch", quiet: bool = False) -> None:
    """Run ``train_epoch(model, optimizer, X, y, batch_size, rng)`` for ``epochs`` epochs on small
    problems and compare with ``cnnlib.train.fit`` doing the same epochs with a copy of the model,
    the optimizer and the rng: the weights after every epoch, the list of batch losses it returns
    (one float per mini-batch), and that the mean loss falls from the first epoch to the last.

    While it runs, the model's ``forward``/``backward``/``__call__``, the optimizer's ``step`` and
    ``softmax_cross_entropy`` (through ``grading.substitute`` in the test cell) may use cnnlib; any
    other reference, ``fit`` above all, is refused.
    """
    __tracebackhide__ = True
    from cnnlib.train import fit

    _not_callable(train_epoch, name)
    cases = list(cases)
    for c, case in enumerate(cases, 1):
        header = f"{name}, case {c} of {len(cases)}: {describe_case(case)}"
        X, y, model, opt, rng = _problem(case)
        X_ref, y_ref, model_ref, opt_ref, rng_ref = _problem(case)
        lifted_model = _Lifted(model, ("forward", "backward"))
        lifted_opt = _Lifted(opt, ("step",))
        bs = case["batch_size"]
        n_batches = math.ceil(case["n"] / bs)
        means = []
        for e in range(epochs):
            start_weights = _params(model)
            start_rng = copy.deepcopy(rng)
            got = _call(train_epoch, (lifted_model, lifted_opt, X, y, bs, rng), name,
                        f"{header}\n  epoch {e + 1} of {epochs}")
            with guard.allowed():
                fit(model_ref, opt_ref, X_ref, y_ref, epochs=1, batch_size=bs, rng=rng_ref, progress=False)
                model_ref.train()
            where = f"after epoch {e + 1} of {epochs}"
            weights, want = _params(model), _params(model_ref)
            if not _same_weights(weights, want):
                _fail(f"{header}\n  {where} the weights differ from cnnlib.train.fit's doing the same epoch "
                      f"(largest difference {_largest(weights, want)})"
                      + _epoch_hint(train_epoch, case, e, start_weights, start_rng, weights, name, header))
            expected = _reference_losses(case, e)
            if got is None:
                _fail(f"{header}\n  {where}: your function returned None; hint: return the list of the "
                      f"{n_batches} batch losses (losses.append(float(loss)) for every batch).")
            if isinstance(got, (int, float, np.number)) or (isinstance(got, np.ndarray) and got.ndim == 0):
                _fail(f"{header}\n  {where}: expected a list of {n_batches} batch losses, got one number "
                      f"({float(got):.4g}); hint: return the list of every batch's loss, not their mean.")
            try:
                got_list = [float(v) for v in got]
            except (TypeError, ValueError):
                _fail(f"{header}\n  {where}: expected a list of {n_batches} floats, got {type(got).__name__}")
            if len(got_list) != len(expected):
                detail = (f"{len(got_list)} losses, expected {len(expected)} (one per batch of {bs} out of "
                          f"{case['n']} examples)")
            elif not np.allclose(got_list, expected, rtol=1e-4, atol=1e-6):
                b = int(np.argmax(~np.isclose(got_list, expected, rtol=1e-4, atol=1e-6)))
                detail = f"batch {b}: expected loss {expected[b]:.6g}, got {got_list[b]:.6g}"
            else:
                detail = ""
            if detail:
                _fail(f"{header}\n  {where}, the batch losses you returned: {detail}; hint: append "
                      "float(loss) of each batch, as softmax_cross_entropy returns it.")
            means.append(float(np.mean(got_list)))
        if epochs > 1 and not means[-1] < means[0]:
            _fail(f"{header}\n  the mean loss did not fall: {means[0]:.4f} in epoch 1, {means[-1]:.4f} "
                  f"in epoch {epochs}")
    if not quiet:
        print(f"✔ {name}: the same weights as cnnlib.train.fit, epoch after epoch "
              f"({_cases_pass(len(cases))})")


def _largest(a: list, b: list) -> str:
    try:
        return f"{max(float(np.abs(x - y).max()) for x, y in zip(a, b)):.3g}"
    except ValueError:
        return "the shapes differ"


def _reference_losses(case: Case, epoch: int) -> list[float]:
    X, y, model, opt, rng = _problem(case)
    with guard.allowed():
        for _ in range(epoch + 1):
            losses = reference_train_epoch(model, opt, X, y, case["batch_size"], rng)
    return losses


def _state_after(case: Case, epoch: int, start_weights: list, start_rng, flags: dict) -> list:
    """Weights after a wrong version of epoch ``epoch``, from the right state before it."""
    X, y, model, opt, rng = _problem(case)
    with guard.allowed():
        for _ in range(epoch):
            reference_train_epoch(model, opt, X, y, case["batch_size"], rng)
        reference_train_epoch(model, opt, X, y, case["batch_size"], copy.deepcopy(start_rng), **flags)
    return _params(model)


def _epoch_hint(train_epoch, case, epoch, start_weights, start_rng, weights, name, header) -> str:
    for label, (flags, hint) in _EPOCH_VARIANTS.items():
        if _same_weights(weights, _state_after(case, epoch, start_weights, start_rng, flags)):
            return f"\n  hint: {hint}"
    if _same_weights(weights, start_weights):
        return "\n  hint: the weights did not change at all: did you call optimizer.step() for every batch?"
    # run the same epoch again from the same start: a learner shuffling with np.random differs
    runs = []
    for _ in range(2):
        X, y, model, opt, rng = _problem(case)
        with guard.allowed():
            for _ in range(epoch):
                reference_train_epoch(model, opt, X, y, case["batch_size"], rng)
        args = (_Lifted(model, ("forward", "backward")), _Lifted(opt, ("step",)), X, y, case["batch_size"],
                copy.deepcopy(start_rng))
        _call(train_epoch, args, name, header)
        runs.append(_params(model))
    if not _same_weights(*runs):
        return ("\n  hint: two runs with the same rng gave different weights: shuffle with the rng you are "
                "given, order = rng.permutation(len(X)), not with np.random (the global generator).")
    return ""


# ------------------------------------------------------------------------------------------------
# Exercise 7.4: accuracy and the confusion matrix


def accuracy_reference(logits, y) -> float:
    """Fraction of the examples whose largest logit is at the true class."""
    return float(np.mean(np.asarray(logits).argmax(axis=1) == np.asarray(y)))


def confusion_reference(y_true, y_pred, num_classes) -> np.ndarray:
    """(K, K) int64 counts: entry [i, j] is the number of examples of true class i predicted as j."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def classifier_cases(n: int, seed: int, *, kind: str = "accuracy") -> list[dict]:
    """Random cases: ``kind="accuracy"`` gives ``{logits, y}``, ``"evaluation"`` gives ``{logits,
    y, num_classes}``, ``"confusion"`` gives
    ``{y_true, y_pred, num_classes}``, ``"confident"`` gives ``{probs, y, k}`` (no ties)."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        N, K = int(rng.integers(1, 40)), int(rng.integers(2, 11))
        y = rng.integers(0, K, size=N).astype(np.int64)
        if kind in ("accuracy", "evaluation"):
            logits = rng.standard_normal((N, K)) * 3
            logits[np.arange(N), y] += rng.uniform(0, 4, size=N)  # right more often than chance
            case = {"logits": logits, "y": y}
            if kind == "evaluation":
                case["num_classes"] = K
            cases.append(case)
        elif kind == "confusion":
            pred = np.where(rng.random(N) < 0.6, y, rng.integers(0, K, size=N)).astype(np.int64)
            cases.append({"y_true": y, "y_pred": pred, "num_classes": K})
        else:
            from cnnlib.losses import softmax

            logits = rng.standard_normal((N, K)) * 2
            logits[np.arange(N), y] += rng.uniform(0, 3, size=N)
            with guard.allowed():
                probs = softmax(logits)
            cases.append({"probs": probs, "y": y, "k": int(rng.integers(1, 8))})
    return cases


def accuracy_mistakes() -> list[Mistake | ErrorHint]:
    """Accuracy from the logits' largest VALUE, as a count, as a percentage, over the wrong axis."""

    def pred(c):
        return np.asarray(c["logits"]).argmax(axis=1)

    return [
        Mistake("you compared the largest logit's VALUE with the label: the prediction is its "
                "POSITION, logits.argmax(axis=1).",
                lambda c: float(np.mean(np.asarray(c["logits"]).max(axis=1) == c["y"]))),
        Mistake("that is the NUMBER of correct predictions: accuracy is the fraction, divide by N "
                "(or take the mean).", lambda c: int(np.sum(pred(c) == c["y"]))),
        Mistake("that is a percentage: return the fraction, between 0 and 1.",
                lambda c: 100 * float(np.mean(pred(c) == c["y"]))),
        Mistake("argmax over axis 0 picks an example per class: the class of each example is "
                "logits.argmax(axis=1).",
                lambda c: float(np.mean(np.asarray(c["logits"]).argmax(axis=0) == c["y"]))),
        ErrorHint(ValueError, r"operands could not be broadcast together",
                  "logits are (N, K) and y is (N,): compare y with logits.argmax(axis=1), the "
                  "predicted class of each example."),
    ]


def confusion_mistakes() -> list[Mistake | ErrorHint]:
    """Rows and columns swapped; ones instead of counts."""

    def ones(c):
        m = np.zeros((c["num_classes"],) * 2, dtype=np.int64)
        m[np.asarray(c["y_true"]), np.asarray(c["y_pred"])] = 1
        return m

    return [
        Mistake("your matrix is transposed: row i is the TRUE class i, column j the PREDICTED "
                "class j (m[y_true[n], y_pred[n]] += 1).",
                lambda c: confusion_reference(*c.values()).T.copy()),
        Mistake("a cell holds 1 where it should COUNT the examples: add one per example "
                "(m[t, p] += 1 in a loop, or np.add.at); m[y_true, y_pred] = 1 writes each cell once.",
                ones),
    ]


def evaluation_reference(logits, y, num_classes) -> tuple[float, np.ndarray]:
    """``(accuracy, confusion matrix)`` of the logits (N, K) against the labels y (N,): the
    reference of ``evaluate_predictions`` (Exercise 7.4)."""
    pred = np.asarray(logits).argmax(axis=1)
    return accuracy_reference(logits, y), confusion_reference(y, pred, num_classes)


def evaluation_mistakes() -> list[Mistake | ErrorHint]:
    """The accuracy mistakes with a right matrix, and the matrix mistakes with a right accuracy."""

    def right(c):
        return evaluation_reference(*c.values())

    def pred_case(c):
        return {"y_true": c["y"], "y_pred": np.asarray(c["logits"]).argmax(axis=1), "num_classes": c["num_classes"]}

    def distinct(m: Mistake) -> Mistake:
        """The mistake applies only where its answer differs from the right one (a symmetric
        matrix is its own transpose: no hint about transposing then)."""
        def wrong(c):
            answer = m.wrong(c)
            ra, rm = right(c)
            if np.isclose(float(answer[0]), ra) and np.array_equal(np.asarray(answer[1]), rm):
                raise KeyError("same as the right answer")
            return answer
        return Mistake(m.hint, wrong)

    def with_accuracy(m: Mistake) -> Mistake:
        return distinct(Mistake(m.hint, lambda c: (m.wrong({"logits": c["logits"], "y": c["y"]}), right(c)[1])))

    def with_matrix(m: Mistake) -> Mistake:
        return distinct(Mistake(m.hint, lambda c: (right(c)[0], m.wrong(pred_case(c)))))

    acc = accuracy_mistakes()
    float_counts = Mistake("the counts must be integers: make the matrix with np.zeros((K, K), "
                           "dtype=np.int64).", lambda c: (right(c)[0], right(c)[1].astype(np.float64)))
    return ([with_accuracy(m) for m in acc if isinstance(m, Mistake)]
            + [with_matrix(m) for m in confusion_mistakes() if isinstance(m, Mistake)]
            + [float_counts] + [h for h in acc if isinstance(h, ErrorHint)])


# ------------------------------------------------------------------------------------------------
# Exercise 7.5: the most confidently misclassified examples


def confident_mistakes_reference(probs, y, k) -> np.ndarray:
    """Indices of the misclassified examples, the most confident (largest max probability) first,
    at most ``k`` of them (int64)."""
    probs, y = np.asarray(probs), np.asarray(y)
    wrong = np.flatnonzero(probs.argmax(axis=1) != y)
    conf = probs.max(axis=1)[wrong]
    return wrong[np.argsort(-conf, kind="stable")][:k].astype(np.int64)


def _same_answer(f, g, case) -> bool:
    return np.array_equal(f(case), g(case))


def _unless_same(f, g, case):
    """f's answer, unless g gives the same (then g's mistake carries the hint)."""
    if _same_answer(f, g, case):
        raise KeyError("the same answer as another mistake")
    return f(case)


def confident_mistakes_mistakes() -> list[Mistake]:
    """Correct examples included; least confident first; confidence in the true class; positions
    among the mistakes instead of indices into the batch."""

    def parts(c):
        probs, y = np.asarray(c["probs"]), np.asarray(c["y"])
        return probs, y, np.flatnonzero(probs.argmax(axis=1) != y)

    def with_correct(c):
        probs, y, _ = parts(c)
        return np.argsort(-probs.max(axis=1), kind="stable")[:c["k"]].astype(np.int64)

    def ascending(c):
        probs, y, wrong = parts(c)
        return wrong[np.argsort(probs.max(axis=1)[wrong], kind="stable")][:c["k"]].astype(np.int64)

    def true_class(c):
        probs, y, wrong = parts(c)
        return wrong[np.argsort(-probs[wrong, y[wrong]], kind="stable")][:c["k"]].astype(np.int64)

    def positions(c):
        probs, y, wrong = parts(c)
        return np.argsort(-probs.max(axis=1)[wrong], kind="stable")[:c["k"]].astype(np.int64)

    return [
        Mistake("your list includes examples the model got RIGHT: keep only those with "
                "probs.argmax(axis=1) != y.", with_correct),
        Mistake(lambda c: "the LEAST confident mistakes came first: sort by confidence in decreasing order "
                          "(np.argsort(-confidence))" + (
                              "; or did you sort by the probability of the true class (on this case both "
                              "orders agree)? The confidence is probs.max(axis=1)."
                              if _same_answer(ascending, true_class, c) else "."), ascending),
        Mistake("you sorted by the probability of the TRUE class: the confidence of a mistake is "
                "the probability of the class it predicted, probs.max(axis=1).",
                lambda c: _unless_same(true_class, ascending, c)),
        Mistake("those are positions in the list of mistakes: return indices into the whole batch "
                "(wrong[order], where wrong = np.flatnonzero(...)).", positions),
    ]


# ------------------------------------------------------------------------------------------------
# Exercise 7.6: the trained model


def _accuracy_of(model, X, y, batch_size: int = 250) -> tuple[float, np.ndarray]:
    if hasattr(model, "eval"):
        model.eval()
    outs = [np.asarray(model.forward(X[i:i + batch_size])) for i in range(0, len(X), batch_size)]
    logits = np.concatenate(outs, axis=0)
    return float(np.mean(logits.argmax(axis=1) == y)), logits


def check_trained_model(model: Any, X, y, *, at_least: float = 0.95, name: str = "final_model",
                        quiet: bool = False) -> None:
    """The model the notebook trained must classify at least ``at_least`` of (X, y) correctly.

    The model is used through ``eval()`` and ``forward(x)`` only; its logits' argmax is compared
    with ``y``.
    """
    __tracebackhide__ = True
    X, y = np.asarray(X), np.asarray(y)
    if model is None:
        _fail(f"{name} is None: the solution cell above did not finish training (see its error "
              "message), so there is no model to evaluate.")
    if not hasattr(model, "forward"):
        _fail(f"{name}: expected the trained model (a Sequential with .forward), got "
              f"{type(model).__name__}; hint: train_lenet must `return model`, not the history.")
    try:
        acc, logits = _accuracy_of(model, X, y)
    except Exception as exc:
        _fail(f"{name}: evaluating the model on the {len(X):,} held-out images raised "
              f"{type(exc).__name__}: {exc}")
    if logits.shape != (len(X), 10):
        _fail(f"{name}: expected logits of shape {(len(X), 10)} for the held-out images, got {logits.shape}")
    if not np.all(np.isfinite(logits)):
        _fail(f"{name}: the model's outputs are not finite (NaN or inf).\n  hint: the weights "
              "blew up: the learning rate is too large (try Adam with lr=1e-3 to 2e-3).")
    if acc < at_least:
        spread = float(np.ptp(logits, axis=0).max()) if len(logits) > 1 else 1.0
        if acc < 0.2 and spread <= 1e-6 * (1.0 + float(np.abs(logits).max())):
            hint = (f"the model gives exactly the same outputs for every image (it always says "
                    f"{int(logits[0].argmax())}): the net died, every ReLU is off, which is what a "
                    "learning rate far too large does; try Adam with lr=1e-3 to 3e-3")
        elif acc < 0.2:
            hint = ("no better than guessing: did the training run on the returned model? (an "
                    "untrained model, or lr=0, gives ~10%)")
        else:
            hint = ("train longer or better: more epochs, Adam(model.parameters(), lr=1e-3 to 3e-3), "
                    "batches of 32-64 (5 epochs on the sample take a few seconds)")
        _fail(f"{name}: accuracy {acc:.4f} on the {len(X):,} held-out images, below the bar of "
              f"{at_least:.2f} ({int(round(acc * len(X)))} of {len(X):,} right).\n  hint: {hint}.")
    if not quiet:
        print(f"✔ {name}: accuracy {acc:.4f} on the {len(X):,} held-out images (bar: {at_least:.2f})")


def check_training_function(train: Callable, X, y, *, subset: int = 64, seed: int = 0,
                            min_accuracy: float | None = None, name: str = "train_lenet",
                            quiet: bool = False) -> None:
    """Run ``train(X_sub, y_sub, X_val, y_val, rng)`` on ``subset`` examples drawn with ``seed`` (32
    others to watch): it must return ``(model, history)`` (or the model) where the model's ``forward`` gives finite (N, 10) logits, and with ``min_accuracy`` classify at
    least that fraction of the examples it was trained on. cnnlib is allowed (fit, Adam, lenet).
    """
    __tracebackhide__ = True
    _not_callable(train, name)
    X, y = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(X), size=min(subset, len(X)), replace=False)
    Xs, ys = X[idx], y[idx]
    rest = np.setdiff1d(np.arange(len(X)), idx)[:32]
    header = f"{name}: trained on {len(idx)} images"
    result = _call(train, (Xs, ys, X[rest], y[rest], np.random.default_rng(seed)), name, header, blocked=False)
    model = result[0] if isinstance(result, tuple) and result else result
    if model is None or not hasattr(model, "forward"):
        _fail(f"{header}\n  expected the trained model, got {type(model).__name__}; hint: "
              "`return model` (fit returns the history, the model is trained in place).")
    acc, logits = _accuracy_of(model, Xs, ys)
    if logits.shape != (len(idx), 10) or not np.all(np.isfinite(logits)):
        _fail(f"{header}\n  expected finite logits of shape {(len(idx), 10)}, got shape {logits.shape}"
              + ("" if np.all(np.isfinite(logits)) else " with NaN/inf values (learning rate too large?)"))
    if min_accuracy is not None and acc < min_accuracy:
        _fail(f"{header}\n  training accuracy {acc:.3f} on those images, expected at least {min_accuracy}"
              "\n  hint: does your function train the model it returns, on the X and y it is given?")
    if not quiet:
        print(f"✔ {name}: returns a trained model ({len(idx)} images, accuracy on them {acc:.3f})")

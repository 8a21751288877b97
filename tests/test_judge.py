"""The judge and its worker (issue 10), without nbgrader: one worker process per test.

The worker holds "solution cells"; the judge's side calls them through proxies the way a test
cell does (grading.check_function & co. running in this process). Checked: what crosses and how
(safe serialization, handles, call-backs, in-place changes, exceptions), that the reference guard
and grading.substitute reach the worker, that nothing the worker's code patches changes the
verdict, and that a worker that hangs or dies is reported, not waited for.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np
import pytest

from cnnlib import grading
from cnnlib import functional as F
from cnnlib.grading.autograde import worker as W
from cnnlib.grading.autograde.judge import SUBSTITUTE_HOOK, Judge, RemoteObject, WorkerLink, WorkerLost


@pytest.fixture
def link():
    link = WorkerLink(None, 20, logging.getLogger("test_judge"))
    link.start()
    yield link
    link.stop()


def run(link, code: str, label: str = "nb99_ex1_solution"):
    link.deadline = time.monotonic() + 20
    error = link.op({"op": "run", "label": label}, code=code)
    assert error is None, error


def get(link, name: str):
    link.deadline = time.monotonic() + 20
    return link.op({"op": "get", "name": name})


SETUP = "import numpy as np\nfrom cnnlib import grading\nfrom cnnlib import functional as F\n"


def test_plain_values_cross_by_value(link):
    run(link, SETUP + "def echo(*a):\n    return a\n")
    echo = get(link, "echo")
    value = (1, -2**70, 2.5, float("nan"), 1 + 2j, "s", b"\x00b", None, True, [np.arange(3)],
             {"k": np.float32(1.5), 3: (np.int64(4),)}, np.zeros((2, 0)), slice(1, None, 2))
    back = echo(*value)
    assert type(back) is tuple and len(back) == len(value)
    assert back[1] == -2**70 and np.isnan(back[3]) and back[4] == 1 + 2j and back[6] == b"\x00b"
    assert back[9][0].tolist() == [0, 1, 2] and type(back[10]["k"]) is np.float32
    assert type(back[10][3][0]) is np.int64 and back[11].shape == (2, 0) and back[12] == slice(1, None, 2)


def test_objects_stay_in_the_worker_and_are_used_by_handle(link):
    run(link, "class Model:\n    def __init__(self):\n        self.w = [1.0, 2.0]\n"
              "    def forward(self, x):\n        return x * self.w[0]\n    def __len__(self):\n        return 2\n"
              "m = Model()\n")
    m = get(link, "m")
    assert isinstance(m, RemoteObject) and type(m).__name__ == "Model"
    assert m.forward(np.ones(2)).tolist() == [1.0, 1.0] and len(m) == 2 and m.w == [1.0, 2.0]
    m.w = [3.0]
    assert m.forward(np.ones(1)).tolist() == [3.0]
    assert not hasattr(m, "__array_interface__")  # numpy's probes never reach the learner's code
    assert np.asarray(m).dtype == object or np.asarray(m).shape == ()  # not turned into numbers


def test_nothing_is_unpickled():
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    codec = W.Codec(lambda o: {}, lambda t: None, lambda t: None)
    with pytest.raises((ValueError, W.ProtocolError)):
        codec.decode({"$a": 0}, [buf.getvalue()])
    with pytest.raises(W.ProtocolError):
        codec.decode({"$what": 1}, [])


def test_the_learners_exception_comes_back_with_its_type_hint_and_line(link):
    run(link, SETUP + "def pad2d(x, padding):\n    a = np.ones((2, 3))\n    return a + np.ones((4, 5))\n")
    pad2d = get(link, "pad2d")
    hint = grading.ErrorHint(ValueError, "could not be broadcast", "TELL-THE-LEARNER")
    with pytest.raises(grading.GradingFailure) as failure:
        grading.check_function(pad2d, F.pad2d, [{"x": np.zeros((1, 1, 2, 2)), "padding": 1}], mistakes=[hint])
    text = str(failure.value)
    assert "ValueError" in text and "TELL-THE-LEARNER" in text
    assert "line 6 in pad2d (return a + np.ones((4, 5)))" in text  # SETUP is lines 1-3
    cause = failure.value.__cause__
    assert type(cause) is ValueError
    assert any("<nb99_ex1_solution>" in line for line in cause._remote_traceback)


def test_not_implemented_and_the_guard_work_in_the_worker(link):
    run(link, SETUP + "def todo(x, padding):\n    raise NotImplementedError()\n"
              "def cheat(x, padding):\n    return F.pad2d(x, padding)\n")
    case = [{"x": np.zeros((1, 1, 2, 2)), "padding": 1}]
    with pytest.raises(grading.GradingFailure, match="not implemented yet"):
        grading.check_function(get(link, "todo"), F.pad2d, case)
    with pytest.raises(grading.GradingFailure, match="your code called cnnlib's reference"):
        grading.check_function(get(link, "cheat"), F.pad2d, case, name="pad2d")
    # outside a check the worker's reference works (learners may use cnnlib where allowed)
    assert get(link, "cheat")(np.zeros((1, 1, 1, 1)), 1).shape == (1, 1, 3, 3)


def test_an_input_changed_in_place_is_seen(link):
    run(link, SETUP + "def pad2d(x, padding):\n    x[...] = 0\n    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))\n")
    with pytest.raises(grading.GradingFailure, match="changed its input `x` in place"):
        grading.check_function(get(link, "pad2d"), F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}])


def test_a_function_passed_to_the_learner_is_called_back(link):
    run(link, SETUP + "def numerical_gradient(f, x, h=1e-5):\n    g = np.zeros_like(x)\n"
              "    for i in range(x.size):\n        d = np.zeros_like(x); d.flat[i] = h\n"
              "        g.flat[i] = (f(x + d) - f(x - d)) / (2 * h)\n    return g\n"
              "def peek(f):\n    return getattr(f, '__globals__', 'refused')\n")
    calls = []

    def loss(x):
        calls.append(1)
        return float(np.sum(x ** 2))

    x = np.array([1.0, -2.0, 3.0])
    assert np.allclose(get(link, "numerical_gradient")(loss, x), 2 * x) and len(calls) == 6
    # the call-back is a function to call, nothing more: the judge's globals stay out of reach
    assert get(link, "peek")(loss) == "refused"


def test_substitute_installs_the_stand_in_in_the_worker(link):
    run(link, SETUP + "def helper(x):\n    return -1\ndef uses_helper(x):\n    return helper(x) + 1\n")
    ns = {"helper": get(link, "helper"), "uses_helper": get(link, "uses_helper")}
    judge = Judge.__new__(Judge)
    judge.link = link
    ns[SUBSTITUTE_HOOK] = judge._substitute
    link.deadline = time.monotonic() + 20
    with grading.substitute(ns, helper=grading.reference_stand_in(lambda x: F.pad2d(x[None, None], 0)[0, 0] * 0 + 41)):
        grading.check_function(ns["uses_helper"], lambda x: np.full_like(x, 42.0),
                               [{"x": np.ones((2, 2))}], quiet=True)
    assert ns["uses_helper"](np.ones(2)) == 0  # the learner's helper is back


def test_what_the_learner_patches_in_the_worker_changes_nothing_here(link):
    run(link, SETUP + "np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), bool)\n"
              "import cnnlib.grading as g\ng.check_function = lambda *a, **k: None\n"
              "import sys\ndef _hook(frame, event, arg):\n    if event == 'call' and frame.f_code.co_name == '_check_result':\n"
              "        frame.f_locals['got'] = frame.f_locals['expected']\ngetattr(sys, 'set' + 'trace')(_hook)\n"
              "def pad2d(x, padding):\n    return np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding))\n")
    with pytest.raises(grading.GradingFailure, match="values differ"):
        grading.check_function(get(link, "pad2d"), F.pad2d, [{"x": np.ones((1, 1, 2, 2)), "padding": 1}])


def test_a_hanging_or_dying_worker_is_reported(link):
    run(link, "import os\ndef hang(x):\n    while True:\n        pass\ndef die(x):\n    os._exit(7)\n")
    hang, die = get(link, "hang"), get(link, "die")
    link.deadline = time.monotonic() + 1
    t0 = time.monotonic()
    with pytest.raises(WorkerLost) as lost:
        grading.check_function(hang, lambda x: x, [{"x": 1}])
    assert lost.value.kind == "timeout" and time.monotonic() - t0 < 10
    link.start()
    run(link, "import os\ndef die(x):\n    os._exit(7)\n")
    with pytest.raises(WorkerLost, match="exit status 7"):
        get(link, "die")(1)


def test_an_array_subclass_crosses_as_its_plain_memory(link):
    run(link, SETUP + "class Liar(np.ndarray):\n    @property\n    def shape(self):\n        return (1, 1, 4, 4)\n"
              "def pad2d(x, padding):\n    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))).view(Liar)\n"
              "def wrong(x, padding):\n    return np.zeros((1, 1, 2, 2)).view(Liar)\n")
    case = [{"x": np.ones((1, 1, 2, 2)), "padding": 1}]
    grading.check_function(get(link, "pad2d"), F.pad2d, case, quiet=True)
    with pytest.raises(grading.GradingFailure, match=r"shape \(1, 1, 4, 4\), got \(1, 1, 2, 2\)"):
        grading.check_function(get(link, "wrong"), F.pad2d, case, name="pad2d")


def test_a_graders_cnnlib_object_is_used_through_its_public_attributes(link):
    from cnnlib import layers

    run(link, SETUP + "def sgd_step(params, lr):\n    for p in params:\n        p.data -= lr * p.grad\n"
              "def sneak(layer):\n    return getattr(layer, '_sneaky', 'refused')\n")
    layer = layers.Linear(3, 2, seed=0) if "seed" in layers.Linear.__init__.__code__.co_varnames else layers.Linear(3, 2)
    params = list(layer.parameters())
    for p in params:
        p.grad = np.ones_like(p.data)
    before = [p.data.copy() for p in params]
    get(link, "sgd_step")(params, 0.5)
    assert all(np.allclose(p.data, b - 0.5) for p, b in zip(params, before))
    assert get(link, "sneak")(layer) == "refused"


def test_a_graders_arrays_changed_in_place_stay_the_same_arrays(link):
    """`p.data -= x` and `p.data[...] = ...` change the grader's array itself (a check may ask for
    that, as 07's SGD step does); `p.data = p.data - x` rebinds it, as it would in one process."""
    from cnnlib import layers

    run(link, SETUP + "def isub(params):\n    for p in params:\n        p.data -= 1.0\n"
              "def setitem(params):\n    for p in params:\n        p.data[...] = 7.0\n"
              "def rebind(params):\n    for p in params:\n        p.data = p.data - 1.0\n")
    for name, expect_same, value in (("isub", True, lambda b: b - 1.0), ("setitem", True, lambda b: np.full_like(b, 7.0)),
                                     ("rebind", False, lambda b: b - 1.0)):
        params = list(layers.Linear(3, 2).parameters())
        arrays = [p.data for p in params]
        before = [a.copy() for a in arrays]
        get(link, name)(params)
        for p, a, b in zip(params, arrays, before):
            assert (p.data is a) is expect_same, name
            assert np.allclose(p.data, value(b)), name


def test_a_random_generator_crosses_by_value_and_comes_back_consumed(link):
    """A test cell's rng handed to the learner's code (07's training epoch shuffles with it):
    the learner draws from the same stream, and the grader's generator has moved on as far."""
    run(link, SETUP + "def shuffle(n, rng):\n    return rng.permutation(n)\n")
    rng, twin = np.random.default_rng(7), np.random.default_rng(7)
    assert np.array_equal(get(link, "shuffle")(10, rng), twin.permutation(10))
    assert rng.integers(1 << 30) == twin.integers(1 << 30)


def test_the_exercises_shortcut_rule_reaches_the_worker(link):
    """Library shortcuts are refused in the worker too, unless the check allows them (01's
    per-channel filtering asks for scipy.signal.convolve2d)."""
    run(link, SETUP + "import scipy.signal\n"
              "def filt(image, kernel):\n    return scipy.signal.correlate2d(image, kernel, 'valid')\n")
    case = [{"image": np.arange(12.0).reshape(3, 4), "kernel": np.ones((2, 2))}]
    reference = lambda image, kernel: grading.conv2d_hw(image, kernel)  # noqa: E731
    with pytest.raises(grading.GradingFailure, match="scipy.signal.correlate2d"):
        grading.check_function(get(link, "filt"), reference, case, name="filt", quiet=True)
    grading.check_function(get(link, "filt"), reference, case, name="filt", shortcuts=True, quiet=True)


def test_a_call_that_raised_leaves_nothing_for_the_next_call_to_write_back(link):
    from cnnlib import layers

    run(link, SETUP + "def half_then_fail(params):\n    params[0].data[...] = 9.0\n    raise ValueError('stop')\n"
              "def nothing(params):\n    return None\n")
    params = list(layers.Linear(3, 2).parameters())
    before = params[0].data.copy()
    with pytest.raises(ValueError):
        get(link, "half_then_fail")(params)
    get(link, "nothing")(params)
    assert np.array_equal(params[0].data, before)

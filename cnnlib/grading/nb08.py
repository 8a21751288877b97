"""Grading helpers of notebook 08_architectures: references, case generators, known mistakes.

The notebook's exercises and what checks them here:

======================  ============================================================================
receptive_field         ``shapes.receptive_field``; :func:`stack_cases`, :func:`receptive_field_mistakes`
output_sizes            :func:`output_sizes_reference` (refuses a size that is not a whole number);
                        :func:`size_spec_cases`, :func:`refused_spec_cases`, :func:`check_refuses`,
                        :func:`output_sizes_mistakes`
count_params            :func:`count_params_reference`, :func:`famous_networks` (layer lists of
                        LeNet, AlexNet, ZF Net, VGG16, GoogLeNet, ResNet-18, DenseNet-121 whose
                        totals equal the published figures), :func:`param_spec_cases`,
                        :func:`count_params_mistakes`
residual_forward        :func:`residual_forward_reference` (cnnlib's ``layers.Residual``),
                        :func:`residual_cases`, :func:`residual_forward_mistakes`
residual_backward       :func:`residual_backward_reference`, :func:`residual_backward_mistakes`
======================  ============================================================================

:func:`residual_conv` and :func:`residual_conv_backward` are the correct ``conv`` /
``conv_backward`` that the test cells hand the learner's residual functions through
``grading.substitute`` (the notebook's setup cell defines the same two on cnnlib, which the
reference guard switches off while an exercise is checked).

A spec for ``count_params`` is a list of layer tuples::

    ("conv", c_in, c_out, k)            a k x k convolution with a bias per filter
    ("conv", c_in, c_out, k, False)     ... without biases (followed by batch norm, as in ResNet)
    ("fc", n_in, n_out)                 a fully connected layer with biases; ("fc", n_in, n_out, False)
    ("bn", c)                           batch norm over c channels: gamma and beta (2c parameters;
                                        the running mean and variance are statistics, not parameters)
    ("relu",), ("pool", ...), ("gap",), ("flatten",), ("dropout",), ("concat",) ...   no parameters
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from cnnlib import shapes
from cnnlib.grading import guard
from cnnlib.grading.failures import _fail, _learner_frames, _short, describe_case
from cnnlib.grading.mistakes import ErrorHint, Mistake

Case = Mapping[str, Any]


def _hint(text: str | Callable[[Case], str]) -> Callable[[Case], str]:
    # one line: GradingFailure wraps messages to fit ``nbgrader validate``
    if callable(text):
        return text
    return lambda case: text


# ------------------------------------------------------------------------------------------------
# exercise 8.1: receptive field of a stack of (kernel, stride) layers


def stack_cases(n: int, *, seed: int, max_layers: int = 7) -> list[dict]:
    """Random stacks ``{"layers": [(k, s), ...]}``: kernels 1-7, strides 1-3, 1 to ``max_layers``
    layers, at least one stride > 1 in most of them (so the jump matters).

    Example:
        >>> [len(case["layers"]) for case in stack_cases(2, seed=0)]
        [1, 6]
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        depth = int(rng.integers(2, max_layers + 1)) if i else 1
        layers = [(int(rng.integers(1, 8)), int(rng.choice([1, 1, 2, 2, 3]))) for _ in range(depth)]
        if i % 4 == 1:
            layers.insert(int(rng.integers(0, depth)), (2, 2))  # a pooling layer
        cases.append({"layers": layers})
    return cases


def _rf_walk(layers, step: Callable[[int, int, int, int], tuple[int, int]], start=(1, 1)) -> int:
    r, jump = start
    for k, s in layers:
        r, jump = step(r, jump, int(k), int(s))
    return r


def receptive_field_mistakes() -> list[Mistake]:
    """Adding k instead of (k - 1) * jump, forgetting the jump (strides ignored), multiplying by
    the layer's own stride too early, a recurrence walked from the wrong end, and r starting at 0."""

    def shown(case: Case) -> str:
        r, jump, parts = 1, 1, []
        for k, s in case["layers"]:
            parts.append(f"({k} - 1)*{jump}")
            r += (k - 1) * jump
            jump *= s
        return " + ".join(["1"] + parts) + f" = {r}"

    return [
        Mistake(_hint(lambda c: "each layer adds (k - 1) * jump pixels, not k: a 3x3 layer widens the field by 2 "
                                f"at jump 1. Here: {shown(c)}."),
                lambda c: _rf_walk(c["layers"], lambda r, j, k, s: (r + k * j, j * s))),
        Mistake(_hint(lambda c: "each layer adds (k - 1) * jump pixels, not k: a 3x3 layer widens the field by 2 "
                                f"at jump 1. Here: {shown(c)}."),
                lambda c: _rf_walk(c["layers"], lambda r, j, k, s: (r + k, j * s))),
        Mistake(_hint(lambda c: "the strides are missing: after a layer of stride s, neighbouring outputs are s "
                                "input pixels apart, so multiply the jump by s after each layer "
                                f"(jump *= s) and add (k - 1) * jump. Here: {shown(c)}."),
                lambda c: _rf_walk(c["layers"], lambda r, j, k, s: (r + (k - 1) * j, j))),
        Mistake(_hint(lambda c: "a layer's own stride does not widen its field: add (k - 1) * jump FIRST, with "
                                f"the jump of the layers before it, then multiply the jump by s. Here: {shown(c)}."),
                lambda c: _rf_walk(c["layers"], lambda r, j, k, s: (r + (k - 1) * j * s, j * s))),
        Mistake(_hint(lambda c: "r = (r - 1) * s + k walks from the OUTPUT back to the input: apply it to the "
                                f"layers in reversed order (or walk forward with the jump). Here: {shown(c)}."),
                lambda c: _rf_walk(c["layers"], lambda r, j, k, s: ((r - 1) * s + k, j))),
        Mistake(_hint(lambda c: "one output pixel sees at least itself: start from r = 1 (a stack of no layers "
                                f"sees 1 pixel). Here: {shown(c)}."),
                lambda c: _rf_walk(c["layers"], lambda r, j, k, s: (r + (k - 1) * j, j * s), start=(0, 1))),
    ]


# ------------------------------------------------------------------------------------------------
# exercise 8.2: output sizes through a network, refusing sizes that are not whole numbers


@guard.reference  # pure Python: without the guard a learner could call it from their solution
def output_sizes_reference(n: int, layers: Sequence[tuple[int, int, int]]) -> list[int]:
    """The size after each (kernel, stride, padding) layer, by the article's formula
    (n - k + 2p) / s + 1, refusing a layer whose division is not exact or whose window does not fit.

    Raises:
        ValueError: naming the layer and the numbers, e.g. AlexNet's first layer on 224 pixels.

    Example:
        >>> output_sizes_reference(227, [(11, 4, 0), (3, 2, 0), (5, 1, 2)])
        [55, 27, 27]
        >>> output_sizes_reference(224, [(11, 4, 0)])
        Traceback (most recent call last):
        ...
        ValueError: layer 0: (224 - 11 + 2*0) / 4 + 1 = 54.25 is not a whole number
    """
    sizes = []
    for i, (k, s, p) in enumerate(layers):
        span = n - k + 2 * p
        if span < 0:
            raise ValueError(f"layer {i}: a {k}-wide window does not fit in {n} + 2*{p} pixels")
        if span % s:
            raise ValueError(f"layer {i}: ({n} - {k} + 2*{p}) / {s} + 1 = {span / s + 1:g} is not a whole number")
        n = span // s + 1
        sizes.append(n)
    return sizes


def _first_refusal(n, layers) -> tuple[int, str] | None:
    try:
        output_sizes_reference(n, layers)
    except ValueError as e:
        return int(str(e).split(":")[0].split()[1]), str(e)
    return None


def _random_spec(rng, exact: bool, n_layers: int) -> tuple[int, list[tuple[int, int, int]]]:
    """A spec of n_layers layers; exact: every division is exact (else the last layer's is not)."""
    sizes = []
    n = int(rng.integers(1, 12))  # the last size, built backwards so every layer fits exactly
    layers = []
    for _ in range(n_layers):
        k = int(rng.choice([1, 2, 3, 3, 5, 7]))
        s = int(rng.choice([1, 1, 2, 2, 3]))
        p = int(rng.integers(0, (k + 1) // 2 + 1))
        n_in = (n - 1) * s + k - 2 * p
        if n_in < 1:
            p = 0
            n_in = (n - 1) * s + k
        layers.insert(0, (k, s, p))
        sizes.insert(0, n)
        n = n_in
    if not exact:
        # nudge the input by one pixel where that breaks an exact division (strides > 1 only)
        for bump in (1, 2, -1):
            if n + bump >= 1 and _first_refusal(n + bump, layers) is not None:
                return n + bump, layers
        layers.insert(0, (3, 2, 0))
        n = 2 * n + 2  # (2n + 2 - 3) / 2 is never whole
    return n, layers


def size_spec_cases(n: int, *, seed: int) -> list[dict]:
    """Specs ``{"n": ..., "layers": [(k, s, p), ...]}`` whose every division is exact.

    Example:
        >>> case = size_spec_cases(1, seed=0)[0]
        >>> output_sizes_reference(case["n"], case["layers"]) is not None
        True
    """
    rng = np.random.default_rng(seed)
    return [dict(zip(("n", "layers"), _random_spec(rng, True, int(rng.integers(1, 6))))) for _ in range(n)]


def refused_spec_cases(n: int, *, seed: int) -> list[dict]:
    """Specs where some layer's division is not exact (the function must raise ValueError), and now
    and then a window that does not fit.

    Example:
        >>> case = refused_spec_cases(1, seed=0)[0]
        >>> _first_refusal(case["n"], case["layers"]) is not None
        True
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        if i % 5 == 4:  # the window does not fit
            m = int(rng.integers(1, 4))
            cases.append({"n": m, "layers": [(m + 2 + int(rng.integers(0, 3)), 1, 0)]})
            continue
        cases.append(dict(zip(("n", "layers"), _random_spec(rng, False, int(rng.integers(1, 5))))))
    return cases


def _sizes(n, layers, f: Callable[[int, int, int, int], Any]) -> list:
    out = []
    for k, s, p in layers:
        n = f(n, k, s, p)
        out.append(n)
    return out


def output_sizes_mistakes() -> list[Mistake]:
    """Wrong size formulas (padding once, padding left out, no +1, stride left out), every layer
    computed from the input size instead of the size before it, and the final size alone."""

    formulas = {
        "padding once": lambda n, k, s, p: (n - k + p) // s + 1,
        "no padding": lambda n, k, s, p: (n - k) // s + 1,
        "no + 1": lambda n, k, s, p: (n - k + 2 * p) // s,
        "no stride": lambda n, k, s, p: n - k + 2 * p + 1,
    }

    def shown(c: Case, which: str) -> str:
        """The right computation at the first layer where the wrong formula gives another size."""
        n = c["n"]
        for i, (k, s, p) in enumerate(c["layers"]):
            m = (n - k + 2 * p) // s + 1
            if formulas[which](n, k, s, p) != m or i == len(c["layers"]) - 1:
                return f"layer {i}: ({n} - {k} + 2*{p}) / {s} + 1 = {m}"
            n = m
        return ""

    def not_chained(c: Case) -> list:
        return [(c["n"] - k + 2 * p) // s + 1 for k, s, p in c["layers"]]

    def wrong(which: str):
        return lambda c: _sizes(c["n"], c["layers"], formulas[which])

    return [
        Mistake(_hint(lambda c: "padding adds p zeros on BOTH sides, so it counts twice: "
                                f"{shown(c, 'padding once')}."), wrong("padding once")),
        Mistake(_hint(lambda c: f"did you leave out the padding? {shown(c, 'no padding')}."), wrong("no padding")),
        Mistake(_hint(lambda c: f"did you forget the + 1 (the first window)? {shown(c, 'no + 1')}."),
                wrong("no + 1")),
        Mistake(_hint(lambda c: f"did you leave out the stride? {shown(c, 'no stride')}."), wrong("no stride")),
        Mistake(_hint("each layer's input is the OUTPUT of the layer before it: update n after every "
                      "layer, not only from the network's input size."), not_chained),
        Mistake(_hint("return the list of sizes after EVERY layer (one int per layer), not only the last."),
                lambda c: output_sizes_reference(c["n"], c["layers"])[-1]),
    ]


def check_refuses(fn: Callable, cases: Iterable[Case], *, name: str | None = None,
                  error: type[BaseException] = ValueError, why: Callable[[Case], str] | None = None,
                  quiet: bool = False) -> None:
    """Check that ``fn`` raises ``error`` on every case (a spec it must refuse).

    A returned value fails with what came back and ``why(case)`` (the reason it must be refused);
    another exception fails naming both types. The reference guard is on during the call.

    Example:
        >>> def sizes(n, layers):
        ...     raise ValueError("layer 0: (224 - 11) / 4 + 1 = 54.25 is not a whole number")
        >>> check_refuses(sizes, [{"n": 224, "layers": [(11, 4, 0)]}])
        ✔ sizes: refuses 1 case
    """
    __tracebackhide__ = True
    name = name or getattr(fn, "__name__", "your function")
    if not callable(fn):
        _fail(f"{name}: expected a function, got {type(fn).__name__}")
    cases = list(cases)
    for i, case in enumerate(cases, 1):
        header = f"{name}, case {i} of {len(cases)}: {describe_case(case)}"
        args = copy.deepcopy(list(case.values()))
        try:
            with guard.blocked(name):
                got = fn(*args)
        except NotImplementedError:
            _fail(f"{name}: not implemented yet. Replace `raise NotImplementedError()` with your code "
                  "and run the cell again.")
        except guard.ReferenceBlockedError as exc:
            _fail(f"{header}\n  {exc}")
        except error:
            continue
        except Exception as exc:
            where = _learner_frames(exc)
            _fail(f"{header}\n  expected a {error.__name__}, your function raised {type(exc).__name__}: {exc}"
                  + (f"\n  where: {where}" if where else "")
                  + f"\n  hint: refuse with raise {error.__name__}(\"...\") (say which layer and why)")
        else:
            reason = why(case) if why else ""
            _fail(f"{header}\n  expected a {error.__name__}: this case must be refused"
                  f"\n  your function returned {_short(got)}"
                  + (f"\n  hint: {reason}" if reason else ""))
    if not quiet:
        print(f"✔ {name}: refuses {'1 case' if len(cases) == 1 else f'all {len(cases)} cases'}")


def refusal_reason(case: Case) -> str:
    """Why ``output_sizes`` must refuse a spec (for :func:`check_refuses`' ``why``)."""
    found = _first_refusal(case["n"], case["layers"])
    if found is None:  # pragma: no cover - a refused case always has a reason
        return ""
    i, text = found
    if "does not fit" in text:
        return f"{text.split(': ', 1)[1]}: raise ValueError instead of returning a size."
    return (f"{text.split(': ', 1)[1]}, at layer {i}: the article's formula must give an integer; "
            "do not round (with // or int()), raise ValueError.")


# ------------------------------------------------------------------------------------------------
# exercise 8.3: parameter count of a layer-list spec


def _layer_params(layer: Sequence, bn_per_channel: int = 2, bias_flag: bool = True,
                  biases: bool = True, kernel_area: Callable[[int], int] = lambda k: k * k) -> int:
    kind = layer[0]
    if kind == "conv":
        c_in, c_out, k = layer[1:4]
        bias = (layer[4] if len(layer) > 4 else True) if bias_flag else True
        return c_in * c_out * kernel_area(k) + (c_out if bias and biases else 0)
    if kind == "fc":
        n_in, n_out = layer[1:3]
        bias = (layer[3] if len(layer) > 3 else True) if bias_flag else True
        return n_in * n_out + (n_out if bias and biases else 0)
    if kind == "bn":
        return bn_per_channel * layer[1]
    return 0


@guard.reference
def count_params_reference(spec: Sequence[Sequence]) -> int:
    """Trainable parameters of a layer-list spec (format in the module docstring), with
    ``cnnlib.shapes.conv2d_params`` / ``linear_params`` and 2 per batch-norm channel.

    Example:
        >>> count_params_reference([("conv", 3, 16, 2), ("pool", 2), ("conv", 16, 32, 2), ("pool", 2),
        ...     ("conv", 32, 64, 2), ("pool", 2), ("gap",), ("fc", 64, 133)])  # the article's Keras model
        19189
        >>> count_params_reference([("conv", 3, 64, 7, False), ("bn", 64)])      # ResNet's stem
        9536
    """
    total = 0
    for layer in spec:
        kind = layer[0]
        if kind == "conv":
            bias = layer[4] if len(layer) > 4 else True
            total += shapes.conv2d_params(layer[1], layer[2], layer[3], bias=bool(bias))
        elif kind == "fc":
            bias = layer[3] if len(layer) > 3 else True
            total += shapes.linear_params(layer[1], layer[2], bias=bool(bias))
        elif kind == "bn":
            total += 2 * int(layer[1])
    return total


def _vgg16() -> list:
    spec, c = [], 3
    for block in ([64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]):
        for f in block:
            spec += [("conv", c, f, 3), ("relu",)]
            c = f
        spec.append(("pool", 2))
    return spec + [("flatten",), ("fc", 512 * 7 * 7, 4096), ("relu",), ("dropout",),
                   ("fc", 4096, 4096), ("relu",), ("dropout",), ("fc", 4096, 1000)]


def _alexnet() -> list:
    """torchvision's AlexNet (Krizhevsky's one-GPU variant: 64, 192, 384, 256, 256 filters)."""
    return [("conv", 3, 64, 11), ("relu",), ("pool", 3), ("conv", 64, 192, 5), ("relu",), ("pool", 3),
            ("conv", 192, 384, 3), ("relu",), ("conv", 384, 256, 3), ("relu",), ("conv", 256, 256, 3),
            ("relu",), ("pool", 3), ("flatten",), ("dropout",), ("fc", 256 * 6 * 6, 4096), ("relu",),
            ("dropout",), ("fc", 4096, 4096), ("relu",), ("fc", 4096, 1000)]


def _zfnet() -> list:
    """Zeiler & Fergus 2013: AlexNet with a 7x7 stride-2 first layer and 384/384/256 filters."""
    return [("conv", 3, 96, 7), ("relu",), ("pool", 3), ("conv", 96, 256, 5), ("relu",), ("pool", 3),
            ("conv", 256, 384, 3), ("relu",), ("conv", 384, 384, 3), ("relu",), ("conv", 384, 256, 3),
            ("relu",), ("pool", 3), ("flatten",), ("fc", 256 * 6 * 6, 4096), ("relu",), ("dropout",),
            ("fc", 4096, 4096), ("relu",), ("dropout",), ("fc", 4096, 1000)]


def _lenet() -> list:
    """The article's LeNet (cnnlib.model.lenet): 6 and 16 filters 5x5, FC 120, 100, 10."""
    return [("conv", 1, 6, 5), ("relu",), ("pool", 2), ("conv", 6, 16, 5), ("relu",), ("pool", 2),
            ("flatten",), ("fc", 16 * 5 * 5, 120), ("relu",), ("fc", 120, 100), ("relu",), ("fc", 100, 10)]


def _conv_bn(c_in, c_out, k) -> list:
    return [("conv", c_in, c_out, k, False), ("bn", c_out), ("relu",)]


def _resnet18() -> list:
    spec = _conv_bn(3, 64, 7) + [("pool", 3)]
    c = 64
    for f, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            spec += _conv_bn(c, f, 3) + [("conv", f, f, 3, False), ("bn", f)]
            if s != 1 or c != f:  # the 1x1 projection shortcut
                spec += [("conv", c, f, 1, False), ("bn", f)]
            spec.append(("relu",))
            c = f
    return spec + [("gap",), ("fc", 512, 1000)]


def _googlenet() -> list:
    """torchvision's GoogLeNet (Inception v1 with batch norm, no auxiliary classifiers). Each
    Inception module: a 1x1 branch, 1x1 -> 3x3, 1x1 -> "5x5" (torchvision uses 3x3 there) and
    pool -> 1x1; the branches are concatenated."""
    spec = _conv_bn(3, 64, 7) + [("pool", 3)] + _conv_bn(64, 64, 1) + _conv_bn(64, 192, 3) + [("pool", 3)]
    modules = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), "pool",
               (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64),
               (512, 128, 128, 256, 24, 64, 64), (512, 112, 144, 288, 32, 64, 64),
               (528, 256, 160, 320, 32, 128, 128), "pool",
               (832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128)]
    for m in modules:
        if m == "pool":
            spec.append(("pool", 3))
            continue
        c, b1, r3, b3, r5, b5, bp = m
        spec += (_conv_bn(c, b1, 1) + _conv_bn(c, r3, 1) + _conv_bn(r3, b3, 3) + _conv_bn(c, r5, 1)
                 + _conv_bn(r5, b5, 3) + [("pool", 3)] + _conv_bn(c, bp, 1) + [("concat",)])
    return spec + [("gap",), ("dropout",), ("fc", 1024, 1000)]


def _densenet121(growth_rate: int = 32, blocks=(6, 12, 24, 16), bn_size: int = 4) -> list:
    """torchvision's DenseNet-121: each layer BN-ReLU-1x1 conv (4k filters)-BN-ReLU-3x3 conv (k
    filters), its output concatenated to its input; transitions halve the channels."""
    spec = [("conv", 3, 64, 7, False), ("bn", 64), ("relu",), ("pool", 3)]
    c = 64
    for i, n_layers in enumerate(blocks):
        for _ in range(n_layers):
            spec += [("bn", c), ("relu",), ("conv", c, bn_size * growth_rate, 1, False),
                     ("bn", bn_size * growth_rate), ("relu",), ("conv", bn_size * growth_rate, growth_rate, 3, False),
                     ("concat",)]
            c += growth_rate
        if i < len(blocks) - 1:
            spec += [("bn", c), ("relu",), ("conv", c, c // 2, 1, False), ("pool", 2)]
            c //= 2
    return spec + [("bn", c), ("gap",), ("fc", c, 1000)]


#: published parameter counts (torchvision's model documentation; ZF Net and the article's LeNet
#: computed from their papers' layer lists, as no torchvision model exists)
PUBLISHED = {
    "LeNet": 63_802,
    "AlexNet": 61_100_840,
    "ZF Net": 62_357_608,
    "VGG16": 138_357_544,
    "GoogLeNet": 6_624_904,
    "ResNet-18": 11_689_512,
    "DenseNet-121": 7_978_856,
}


def famous_networks() -> dict[str, list]:
    """Layer-list specs of LeNet, AlexNet, ZF Net, VGG16, GoogLeNet, ResNet-18 and DenseNet-121
    (the ImageNet versions, 1000 classes); :func:`count_params_reference` of each equals
    :data:`PUBLISHED`.

    Example:
        >>> count_params_reference(famous_networks()["VGG16"])
        138357544
    """
    return {"LeNet": _lenet(), "AlexNet": _alexnet(), "ZF Net": _zfnet(), "VGG16": _vgg16(),
            "GoogLeNet": _googlenet(), "ResNet-18": _resnet18(), "DenseNet-121": _densenet121()}


def param_spec_cases(n: int, *, seed: int) -> list[dict]:
    """Random specs ``{"spec": [...]}`` mixing convs with and without bias, fc layers, batch norm and
    layers without parameters.

    Example:
        >>> sorted({layer[0] for case in param_spec_cases(20, seed=0) for layer in case["spec"]})
        ['bn', 'conv', 'dropout', 'fc', 'flatten', 'gap', 'pool', 'relu']
    """
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        c = int(rng.choice([1, 3]))
        spec = []
        for _ in range(int(rng.integers(1, 5))):
            f = int(rng.integers(2, 65))
            k = int(rng.choice([1, 3, 5]))
            if rng.random() < 0.5:
                spec += [("conv", c, f, k, False), ("bn", f)]
            else:
                spec.append(("conv", c, f, k))
            spec += [("relu",)] + ([("pool", 2)] if rng.random() < 0.5 else [])
            c = f
        if rng.random() < 0.5:
            spec += [("gap",), ("fc", c, int(rng.integers(2, 20)))]
        else:
            hw = int(rng.integers(1, 5))
            hidden = int(rng.integers(8, 65))
            spec += [("flatten",), ("fc", c * hw * hw, hidden, bool(rng.random() < 0.7)), ("dropout",),
                     ("fc", hidden, int(rng.integers(2, 20)))]
        cases.append({"spec": spec})
    return cases


def count_params_mistakes() -> list[Mistake]:
    """Biases forgotten, the bias flag ignored, batch norm's running statistics counted as
    parameters, batch norm left out, k weights per channel instead of k*k."""

    def total(c: Case, **kw) -> int:
        return sum(_layer_params(layer, **kw) for layer in c["spec"])

    def has(c: Case, test: Callable[[Sequence], bool]) -> bool:
        return any(test(layer) for layer in c["spec"])

    def only_if(cond, f):
        def wrong(c):
            if not cond(c):
                raise KeyError("does not apply")
            return f(c)
        return wrong

    no_bias_layer = lambda layer: layer[0] in ("conv", "fc") and len(layer) > (4 if layer[0] == "conv" else 3) \
        and not layer[-1]
    return [
        Mistake(_hint("did you forget the biases? A conv layer has one per filter and an fc layer one per "
                      "output, unless the layer says False: (k*k*c_in + 1)*c_out, (n_in + 1)*n_out."),
                lambda c: total(c, biases=False)),
        Mistake(_hint("a layer ending in False has NO biases (ResNet's convolutions are followed by batch "
                      "norm, whose beta does the bias's job): count k*k*c_in*c_out for them."),
                only_if(lambda c: has(c, no_bias_layer), lambda c: total(c, bias_flag=False))),
        Mistake(_hint("batch norm's running mean and variance are statistics it keeps, not parameters that "
                      "training learns: a ('bn', c) layer has 2c parameters (gamma and beta)."),
                only_if(lambda c: has(c, lambda layer: layer[0] == "bn"), lambda c: total(c, bn_per_channel=4))),
        Mistake(_hint("batch norm learns a scale gamma and a shift beta per channel: ('bn', c) has 2c "
                      "parameters."),
                only_if(lambda c: has(c, lambda layer: layer[0] == "bn"), lambda c: total(c, bn_per_channel=0))),
        Mistake(_hint("a k x k filter has k*k weights per input channel, not k."),
                only_if(lambda c: has(c, lambda layer: layer[0] == "conv" and layer[3] > 1),
                        lambda c: total(c, kernel_area=lambda k: k))),
    ]


# ------------------------------------------------------------------------------------------------
# exercises 8.4 and 8.5: a residual block, forward and backward


def residual_conv(x, w, stride=1, padding=0):
    """The notebook's ``conv``: cnnlib's bias-free convolution, as a grader's stand-in."""
    from cnnlib import functional as F

    return F.conv2d(x, w, None, stride, padding)


def residual_conv_backward(dout, x, w, stride=1, padding=0):
    """The notebook's ``conv_backward``: ``(dx, dw)`` of a bias-free convolution."""
    from cnnlib import functional as F

    _, cache = F.conv2d_forward(x, w, None, stride, padding)
    dx, dw, _ = F.conv2d_backward(dout, cache)
    return dx, dw


def _residual_layer(x, w1, w2, ws=None, stride=1):
    """cnnlib's Residual with these weights: ReLU(conv3x3(ReLU(conv3x3(x, w1, stride)), w2) + shortcut)."""
    from cnnlib.layers import Conv2d, ReLU, Residual
    from cnnlib.model import Sequential

    f, c = w1.shape[:2]
    conv1 = Conv2d(c, f, 3, stride=stride, padding=1, bias=False).to(np.float64)
    conv2 = Conv2d(f, f, 3, padding=1, bias=False).to(np.float64)
    conv1.weight.data[...] = w1
    conv2.weight.data[...] = w2
    shortcut = None
    if ws is not None:
        shortcut = Conv2d(c, f, 1, stride=stride, bias=False).to(np.float64)
        shortcut.weight.data[...] = ws
    return Residual(Sequential([conv1, ReLU(), conv2]), shortcut)


@guard.reference
def residual_forward_reference(x, w1, w2, ws=None, stride=1) -> np.ndarray:
    """ReLU(conv(ReLU(conv(x, w1, stride, 1)), w2, 1, 1) + shortcut(x)), shortcut = x or
    conv(x, ws, stride, 0), with cnnlib's ``layers.Residual`` in float64.

    Example:
        >>> x = np.array([-1.0, 2.0]).reshape(1, 2, 1, 1)
        >>> residual_forward_reference(x, np.zeros((2, 2, 3, 3)), np.zeros((2, 2, 3, 3))).ravel()
        array([0., 2.])
    """
    return _residual_layer(np.asarray(x), w1, w2, ws, stride)(np.asarray(x, np.float64))


@guard.reference
def residual_backward_reference(dout, x, w1, w2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dw1, dw2)`` of the identity-shortcut block, from cnnlib's ``Residual.backward``."""
    layer = _residual_layer(np.asarray(x), w1, w2)
    layer(np.asarray(x, np.float64))
    dx = layer.backward(np.asarray(dout, np.float64))
    conv1, conv2 = layer.block[0], layer.block[2]
    return dx, conv1.weight.grad.copy(), conv2.weight.grad.copy()


def residual_cases(n: int, *, seed: int, projection: bool | None = None, max_size: int = 7) -> list[dict]:
    """Residual-block cases ``{"x", "w1", "w2", "ws", "stride"}`` (float64, He-scaled weights).

    ``projection``: True gives a 1x1 shortcut ``ws`` (F, C, 1, 1), stride 1 or 2, F != C often
    (and now and then F = C with stride 1, where the identity would have the right shape too);
    False the identity (``ws`` None, stride 1, F = C; the ``ws`` and ``stride`` keys are left out);
    None mixes both. Sizes: N 1-2, C 1-4, odd and non-square H, W.

    Example:
        >>> sorted(residual_cases(1, seed=0, projection=False)[0])
        ['w1', 'w2', 'x']
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        proj = (i % 2 == 1) if projection is None else projection
        N, C = int(rng.integers(1, 3)), int(rng.integers(1, 5))
        H, W = int(rng.integers(2, max_size + 1)), int(rng.integers(2, max_size + 1))
        F_ = int(rng.integers(1, 6)) if proj else C
        stride = int(rng.choice([1, 2])) if proj else 1
        if proj and i % 4 == 3:  # a projection that keeps the shape: x alone would fit too
            F_, stride = C, 1
        case = {
            "x": rng.standard_normal((N, C, H, W)),
            "w1": rng.standard_normal((F_, C, 3, 3)) * np.sqrt(2 / (9 * C)),
            "w2": rng.standard_normal((F_, F_, 3, 3)) * np.sqrt(2 / (9 * F_)),
        }
        if proj:
            case["ws"] = rng.standard_normal((F_, C, 1, 1)) * np.sqrt(1 / C)
            case["stride"] = stride
        cases.append(case)
    return cases


def _parts(case: Case):
    """(x, h_pre, h, fx, sx) of a forward-pass case, with the stand-in convolution."""
    x, w1, w2 = case["x"], case["w1"], case["w2"]
    ws, stride = case.get("ws"), case.get("stride", 1)
    h_pre = residual_conv(x, w1, stride, 1)
    h = np.maximum(h_pre, 0)
    fx = residual_conv(h, w2, 1, 1)
    sx = x if ws is None else residual_conv(x, ws, stride, 0)
    return x, h_pre, h, fx, sx


def _lifted(f: Callable[[Case], Any]) -> Callable[[Case], Any]:
    """Compute a wrong answer with the reference guard lifted (mistakes run after the check's call)."""
    def wrong(case: Case) -> Any:
        with guard.allowed():
            return f(case)
    return wrong


def residual_forward_mistakes() -> list[Mistake | ErrorHint]:
    """ReLU before the addition, no ReLU after it, no ReLU inside the block, the shortcut left out,
    the identity used although ``ws`` was given; for exceptions: a shortcut of the wrong shape."""

    def relu_before_add(c):
        x, _, _, fx, sx = _parts(c)
        return np.maximum(fx, 0) + sx

    def no_final_relu(c):
        _, _, _, fx, sx = _parts(c)
        return fx + sx

    def no_inner_relu(c):
        x, h_pre, _, _, sx = _parts(c)
        return np.maximum(residual_conv(h_pre, c["w2"], 1, 1) + sx, 0)

    def no_shortcut(c):
        _, _, _, fx, _ = _parts(c)
        return np.maximum(fx, 0)

    def identity_despite_ws(c):
        if c.get("ws") is None:
            raise KeyError("ws")
        x, _, _, fx, _ = _parts(c)
        if fx.shape != x.shape:
            raise KeyError("shapes")
        return np.maximum(fx + x, 0)

    def shortcut_shape(case: Case, exc: BaseException) -> str | None:
        if case.get("ws") is None and case.get("stride", 1) == 1:
            return None
        return ("the block's output and the shortcut's output must have the same shape to be added: "
                     "with ws the shortcut is conv(x, ws, stride) (a 1x1 convolution with the block's "
                     "stride, no padding), and only the FIRST 3x3 convolution has the stride.")

    return [
        Mistake(_hint("the ReLU comes AFTER the addition: out = ReLU(F(x) + shortcut(x)). ReLU(F(x)) + x "
                      "can never be smaller than x."), _lifted(relu_before_add)),
        Mistake(_hint("out = ReLU(F(x) + shortcut(x)): the sum goes through one more ReLU."), _lifted(no_final_relu)),
        Mistake(_hint("the block is conv -> ReLU -> conv: a ReLU between its two convolutions."),
                _lifted(no_inner_relu)),
        Mistake(_hint("the shortcut is missing: add x (or conv(x, ws, stride) when ws is given) to the "
                      "block's output before the last ReLU."), _lifted(no_shortcut)),
        Mistake(_hint("when ws is given the shortcut is the 1x1 convolution conv(x, ws, stride), not x."),
                _lifted(identity_despite_ws)),
        ErrorHint(ValueError, r"operands could not be broadcast together", shortcut_shape),
    ]


def residual_backward_mistakes() -> list[Mistake]:
    """The skip path ignored, the ReLU mask after the addition ignored or taken from the block's
    output alone, the mask inside the block ignored, only the skip path kept."""

    def grads(c, mask_out: str = "sum", inner_mask: bool = True, skip: bool = True, block: bool = True):
        x, w1, w2, dout = c["x"], c["w1"], c["w2"], c["dout"]
        h_pre = residual_conv(x, w1, 1, 1)
        h = np.maximum(h_pre, 0)
        fx = residual_conv(h, w2, 1, 1)
        mask = {"sum": fx + x > 0, "none": np.ones_like(fx, bool), "block": fx > 0}[mask_out]
        ds = dout * mask
        dh, dw2 = residual_conv_backward(ds, h, w2, 1, 1)
        dh_pre = dh * (h_pre > 0) if inner_mask else dh
        dx_block, dw1 = residual_conv_backward(dh_pre, x, w1, 1, 1)
        dx = (dx_block if block else 0) + (ds if skip else 0)
        return dx, dw1, dw2

    return [
        Mistake(_hint("dx misses the skip path: out = ReLU(F(x) + x) depends on x twice, so dx = (gradient "
                      "through the block) + ds, with ds = dout * (F(x) + x > 0)."),
                _lifted(lambda c: grads(c, skip=False))),
        Mistake(_hint("the ReLU after the addition lets the gradient through only where F(x) + x > 0: "
                      "ds = dout * (F(x) + x > 0), before the block and the skip path."),
                _lifted(lambda c: grads(c, mask_out="none"))),
        Mistake(_hint("the last ReLU acts on the SUM: its mask is F(x) + x > 0, not F(x) > 0."),
                _lifted(lambda c: grads(c, mask_out="block"))),
        Mistake(_hint("inside the block there is a ReLU between the convolutions: multiply the gradient by "
                      "(conv(x, w1, 1, 1) > 0) before the first conv_backward."),
                _lifted(lambda c: grads(c, inner_mask=False))),
        Mistake(_hint("dx has two parts: the gradient through the block (conv_backward twice) plus ds through "
                      "the skip path; you kept only the skip path."),
                _lifted(lambda c: grads(c, block=False))),
    ]

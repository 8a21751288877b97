"""Checks that the course's test cells call: a learner's function against cnnlib's reference.

Every graded test cell in ``solutions/`` follows the same pattern::

    from cnnlib import grading
    from cnnlib import functional as F

    # visible tests: a few hand-picked cases the learner can read
    grading.check_function(pad2d, F.pad2d, [
        {"x": np.ones((1, 1, 2, 3)), "padding": 1},
        {"x": np.arange(24.0).reshape(2, 3, 2, 2), "padding": (2, 0)},
    ], mistakes=grading.pad_mistakes())
    ### BEGIN HIDDEN TESTS
    grading.check_function(pad2d, F.pad2d, grading.pad_cases(20, seed=20201),
                           mistakes=grading.pad_mistakes())
    ### END HIDDEN TESTS

A *case* is a dict of the function's arguments, in the order of its signature (values are passed
positionally, so a learner may rename parameters). For each case, :func:`check_function`

1. computes the expected answer with the reference (on a copy of the arguments);
2. calls the learner's function inside ``guard.blocked(name)``, so a "solution" that calls
   cnnlib's reference fails with the guard's message;
3. fails with a :class:`GradingFailure` (an ``AssertionError``) that names the case, says what was
   expected and what arrived (shape, dtype, first differing index, how many differ), and adds a
   hint when the learner's answer equals a known-wrong variant (a :class:`Mistake`: forgot the
   stride, flipped the kernel, padded the channel axis, ...), or when the function returned None,
   changed its input in place, or returned integers where floats were expected;
4. reports an exception raised by the learner's function with the case, the exception's last line,
   the learner's line that raised, a hint (an :class:`ErrorHint` of the exercise, such as
   "did you pad the channel axis?" for a broadcasting error in a convolution, else one of
   :data:`COMMON_ERROR_HINTS`) and (chained) its traceback; an unfinished exercise
   (``NotImplementedError``) gets a one-line "not implemented yet".

While the learner's function runs, the library shortcuts that would do a "write it yourself"
exercise's whole job (scipy.signal's correlate/convolve family, scipy.ndimage's filters,
``np.convolve``; :data:`guard.SHORTCUTS`) are refused by the guard like cnnlib's reference, however
they were imported; ``check_function(..., shortcuts=True)`` allows them where the statement asks
for them. Arrays must have the reference's exact dtype (the course's one dtype rule,
:data:`compare.DTYPE_RULE`), an argument changed in place (an array, a list, a dict) fails, and
a hint is given only when the learner's answers equal the mistake's on this case and on every
case checked before it; otherwise the message says what differs and where. Messages are wrapped
to 80 columns, so that ``nbgrader validate`` shows them whole. :func:`check_faster` times a
vectorized exercise against plain loops (:func:`conv2d_loops`), and :func:`forbidden` makes a
stand-in that refuses to run (a vectorized exercise must not call the learner's loop version).

Hidden tests draw many cases from a seeded generator (:func:`conv_cases`, :func:`pool_cases`,
:func:`pad_cases`, :func:`image_cases`, :func:`size_cases`, :func:`linear_cases`,
:func:`array_cases`, or :func:`random_cases` with your own ``make_case(rng)``), so hard-coding the
visible answers scores nothing. Backward passes are also checked against numerical gradients with
:func:`check_gradients`; :func:`with_dout` puts a random upstream gradient in front of forward-pass
cases, and :func:`backward_reference` chains cnnlib's forward and backward into a reference.

Exercises stay independent: when an exercise calls the learner's function from an earlier one (say
``conv_forward_im2col`` calls ``im2col``), the test cell swaps in a correct version for the check::

    with grading.substitute(globals(), im2col=grading.reference_stand_in(im2col_reference)):
        grading.check_function(conv_forward_im2col, F.conv2d, cases, mistakes=conv_mistakes)

The stand-in may run cnnlib's reference although the guard is on; the learner's own code is still
refused it.

In Jupyter a :class:`GradingFailure` shows as its message alone, preceded by the learner's own
traceback when their code raised (``_render_traceback_``): no grader internals, and no lines of the
test cell, which may be hidden tests. Outside IPython it is a plain ``AssertionError``.

Adding a check for a new exercise (notebooks 03-08): pick the reference (a cnnlib function, or a
small wrapper that adapts its layout), write three to six visible cases that tell a story (the
worked example, an edge case, a non-square one), choose a generator for the hidden cases (or
``random_cases`` with your own ``make_case``), and list the exercise's known mistakes (the
``*_mistakes`` helpers, or ``Mistake(hint, with_args(reference, stride=1))`` for your own;
``ErrorHint(ValueError, "could not be broadcast", hint)`` when a mistake makes numpy raise).


The package, by what each part is for (each module imports only those above it)::

    conventions  cell markers and grade_ids shared with the notebook builder (scripts/nbbuild.py)
    guard        the reference guard: cnnlib's public functions carry its ``@reference``
                 decorator (the one thing the library imports from the grader)
    cases        seeded case generators for hidden tests, and small helpers on cases
    failures     GradingFailure and how a failure reads (case description, learner's frames)
    compare      comparing an answer with the expected one; hints from known mistakes
    mistakes     Mistake / ErrorHint and the known-mistake catalogues of the notebooks
    references   references (without_cache, backward_reference, conv2d_hw) and stand-ins
                 for earlier exercises (substitute, reference_stand_in)
    checks       check_function, check_value, check_gradients: what test cells call
    autograde/   the nbgrader side: plug-ins (plugins), the sandboxed kernel (sandbox) and
                 the ``cnn-grade`` command (cli); they run notebooks, never import the checks

Names load on first use, so ``import cnnlib.functional`` (which needs only ``guard``) stays cheap.
"""

from __future__ import annotations

import importlib

_HOME = {
    "check_function": "checks",
    "check_value": "checks",
    "check_gradients": "checks",
    "check_faster": "checks",
    "forbidden": "references",
    "conv2d_loops": "references",
    "im2col_reference": "references",
    "max_pool_tie_mistakes": "mistakes",
    "DTYPE_RULE": "compare",
    "GradingFailure": "failures",
    "describe_case": "failures",
    "Mistake": "mistakes",
    "ErrorHint": "mistakes",
    "COMMON_ERROR_HINTS": "mistakes",
    "with_args": "mistakes",
    "known_answer": "mistakes",
    "conv_mistakes": "mistakes",
    "pool_mistakes": "mistakes",
    "pad_mistakes": "mistakes",
    "output_size_mistakes": "mistakes",
    "substitute": "references",
    "reference_stand_in": "references",
    "without_cache": "references",
    "backward_reference": "references",
    "conv2d_hw": "references",
    "random_cases": "cases",
    "with_dout": "cases",
    "conv_cases": "cases",
    "pool_cases": "cases",
    "pad_cases": "cases",
    "image_cases": "cases",
    "size_cases": "cases",
    "linear_cases": "cases",
    "array_cases": "cases",
    "squared_error_cases": "nb05",
    "squared_error_mistakes": "nb05",
    "loss_backward": "nb05",
    "logit_cases": "nb05",
    "softmax_ce_mistakes": "nb05",
    "relu_cases": "nb05",
    "relu_backward_mistakes": "nb05",
    "linear_backward_cases": "nb05",
    "linear_backward_mistakes": "nb05",
    "conv_backward_cases": "nb05",
    "conv_backward_loops": "nb05",
    "conv_backward_mistakes": "nb05",
    "numerical_gradient_reference": "nb05",
    "numerical_gradient_cases": "nb05",
    "numerical_gradient_mistakes": "nb05",
    "gradient_check_reference": "nb05",
    "gradient_check_cases": "nb05",
    "gradient_check_mistakes": "nb05",
    "stack_cases": "nb08",
    "receptive_field_mistakes": "nb08",
    "output_sizes_reference": "nb08",
    "size_spec_cases": "nb08",
    "refused_spec_cases": "nb08",
    "output_sizes_mistakes": "nb08",
    "check_refuses": "nb08",
    "refusal_reason": "nb08",
    "count_params_reference": "nb08",
    "famous_networks": "nb08",
    "param_spec_cases": "nb08",
    "count_params_mistakes": "nb08",
    "residual_conv": "nb08",
    "residual_conv_backward": "nb08",
    "residual_forward_reference": "nb08",
    "residual_backward_reference": "nb08",
    "residual_cases": "nb08",
    "residual_forward_mistakes": "nb08",
    "residual_backward_mistakes": "nb08",
    "bn_train_reference": "nb06",
    "bn_forward_reference": "nb06",
    "bn_output": "nb06",
    "bn_backward_reference": "nb06",
    "spatial_bn_reference": "nb06",
    "bn_variant": "nb06",
    "bn_backward_variant": "nb06",
    "bn_train_mistakes": "nb06",
    "bn_forward_mistakes": "nb06",
    "bn_backward_mistakes": "nb06",
    "spatial_bn_mistakes": "nb06",
    "bn_train_cases": "nb06",
    "bn_forward_cases": "nb06",
    "bn_backward_cases": "nb06",
    "with_beta": "nb06",
    "spatial_bn_cases": "nb06",
    "article_lenet": "nb07",
    "check_lenet": "nb07",
    "momentum_cases": "nb07",
    "check_sgd_momentum": "nb07",
    "epoch_cases": "nb07",
    "reference_train_epoch": "nb07",
    "check_train_epoch": "nb07",
    "accuracy_reference": "nb07",
    "accuracy_mistakes": "nb07",
    "confusion_reference": "nb07",
    "confusion_mistakes": "nb07",
    "classifier_cases": "nb07",
    "evaluation_reference": "nb07",
    "evaluation_mistakes": "nb07",
    "confident_mistakes_reference": "nb07",
    "confident_mistakes_mistakes": "nb07",
    "check_trained_model": "nb07",
    "check_training_function": "nb07",
}
_SUBMODULES = ("guard", "conventions", "cases", "failures", "compare", "mistakes", "references", "checks", "autograde")
_SUBMODULES += ("nb08",)

__all__ = list(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME) | set(_SUBMODULES))

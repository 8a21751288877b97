"""cnnlib: convolutional neural networks from scratch in vectorized numpy.

The reference library of the CNN course: the learners' toolbox and the autograder's reference.
Layout is NCHW everywhere. See README.md for a tour and ``help(cnnlib.functional)`` for the ops.

The library (what a practitioner imports):

    functional  stateless forward/backward pairs (conv, pooling, relu, linear, batch norm, ...)
    losses      softmax, softmax cross-entropy, squared error
    layers      layer classes over `functional`, each holding Parameters (.data, .grad)
    model       Sequential (forward, backward, summary(), save/load), lenet()
    optim       SGD, Adam
    train       fit, evaluate, predict, History
    shapes      output sizes, parameter counts, receptive fields
    kernels     classic image kernels and per-channel filtering
    datasets    MNIST (shipped sample, cached full set) and sample photos
    gradcheck   numerical gradients and gradient checks
    viz         plot helpers returning Figures

The course's grader lives apart, in the subpackage ``cnnlib.grading`` (the checks that the
notebooks' test cells call, and under ``cnnlib.grading.autograde`` the nbgrader plug-ins, the
sandboxed kernel and ``cnn-grade``). The library imports from it only the reference guard's
``@reference`` decorator, which lets the grader switch the reference off while a learner's
exercise is checked.
"""

__version__ = "0.1.0"

__all__ = [
    "functional",
    "losses",
    "layers",
    "model",
    "optim",
    "train",
    "shapes",
    "kernels",
    "datasets",
    "gradcheck",
    "viz",
]
_SUBPACKAGES = ("grading",)


def __getattr__(name):
    # Submodules load on first use (``cnnlib.functional``) so `import cnnlib` stays cheap and
    # matplotlib / nbgrader are imported only by the modules that need them.
    if name in __all__ or name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"cnnlib.{name}")
    raise AttributeError(f"module 'cnnlib' has no attribute {name!r}")

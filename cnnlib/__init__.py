"""cnnlib: convolutional neural networks from scratch in vectorized numpy.

The reference library of the CNN course: the learners' toolbox and the autograder's reference.
Layout is NCHW everywhere. See README.md for a tour and ``help(cnnlib.functional)`` for the ops.
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
    "grading",
]


def __getattr__(name):
    # Submodules load on first use (``cnnlib.functional``) so `import cnnlib` stays cheap and
    # matplotlib / nbgrader are imported only by the modules that need them.
    if name in __all__:
        import importlib

        return importlib.import_module(f"cnnlib.{name}")
    raise AttributeError(f"module 'cnnlib' has no attribute {name!r}")

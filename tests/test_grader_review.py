"""Regressions for holes found by an independent review of the autograder (no nbgrader batch).

* an ndarray subclass (or an object with a lying ``__eq__``) must not pass a check;
* the learner's function must not find the expected answer in the checking frame;
* files handed in beside the notebook (a fake ``cnnlib/`` package, an IPython startup file under
  ``home/``) must not run in the sandboxed kernel;
* the scan flags the techniques these attacks need.
"""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest

from cnnlib import grading
from cnnlib.grading.autograde.plugins import SUSPICIOUS


class _Anything(tuple):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = tuple.__hash__


class _LyingArray(np.ndarray):
    @property
    def shape(self):
        return _Anything()

    def __array_function__(self, func, types, args, kwargs):
        return np.True_

    def __array_ufunc__(self, *args, **kwargs):
        return np.True_


class _EqualsAll:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


CASES = [{"x": np.arange(6.0).reshape(2, 3)}, {"x": np.ones((3, 1))}]


def test_a_lying_ndarray_subclass_fails():
    with pytest.raises(grading.GradingFailure, match="shape"):
        grading.check_function(lambda x: np.zeros(3).view(_LyingArray), lambda x: 2 * x, CASES, quiet=True)


def test_a_plain_subclass_with_the_right_values_still_passes():
    class Tagged(np.ndarray):
        pass

    grading.check_function(lambda x: (2 * x).view(Tagged), lambda x: 2 * x, CASES, quiet=True)


@pytest.mark.parametrize("expected", [True, "valid", None], ids=["bool", "str", "none"])
def test_an_object_equal_to_everything_fails(expected):
    with pytest.raises(grading.GradingFailure):
        grading.check_function(lambda x: _EqualsAll(), lambda x: expected, CASES, quiet=True)


def test_the_expected_answer_is_not_in_the_checking_frame():
    def peek(x):
        frame = sys._getframe(1)
        while frame is not None:
            if "expected" in frame.f_locals and isinstance(frame.f_locals["expected"], np.ndarray):
                return frame.f_locals["expected"]
            frame = frame.f_back
        return None

    with pytest.raises(grading.GradingFailure):
        grading.check_function(peek, lambda x: 2 * x, CASES, quiet=True)


@pytest.mark.parametrize("code", [
    "sys._getframe(2).f_locals['expected']",
    "inspect.currentframe().f_back",
    "F.pad2d.__closure__[0].cell_contents",
    "class A(np.ndarray):\n    def __array_function__(self, *a): return True",
    "get_ipython().events.callbacks['post_run_cell'].append(f)",
    "import importlib; importlib.reload(grading)",
    "sys.path.insert(0, '.')",
])
def test_the_scan_flags_the_techniques(code):
    assert any(re.search(pattern, code) for pattern, _ in SUSPICIOUS), code


FAKE_CNNLIB = "print('FAKE CNNLIB')\n"
STARTUP = "print('STARTUP FILE RAN')\n"
PROBE = "import cnnlib, sys, os\nprint('CNNLIB', cnnlib.__file__)\nprint('CWD ON PATH', os.getcwd() in sys.path or '' in sys.path)\n"


def test_files_handed_in_beside_the_notebook_do_not_run_in_the_kernel(tmp_path):
    """A `cnnlib/` package in the submission would shadow the real one (the kernel's folder was
    on sys.path), and `home/.ipython/profile_default/startup/*.py` would run before every test."""
    from cnnlib.grading.autograde.sandbox import Sandbox
    from test_hostile_submissions import _run_in_sandbox

    (tmp_path / "cnnlib").mkdir()
    (tmp_path / "cnnlib" / "__init__.py").write_text(FAKE_CNNLIB)
    startup = tmp_path / "home" / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-x.py").write_text(STARTUP)
    (tmp_path / "data.txt").write_text("kept")
    box = Sandbox.create(str(tmp_path), hide=[])
    assert (Path := __import__("pathlib").Path)(box.workdir, "data.txt").exists()
    assert not Path(box.workdir, "home", ".ipython", "profile_default", "startup", "00-x.py").exists()
    out = _run_in_sandbox(box, PROBE)
    assert "FAKE" not in out and "STARTUP" not in out, out
    assert "CWD ON PATH False" in out, out
    assert "CNNLIB " in out and "/cnnlib/__init__.py" in out, out


def test_the_kernels_python_paths_include_the_folder_holding_cnnlib():
    """A clone in a 0700 folder: the sandbox must expose the folder that holds the cnnlib package
    (an editable install's checkout), or the kernel and the judge's worker cannot import it.
    Asked as `nbgrader autograde` would (a console script: the checkout is not on sys.path)."""
    import json
    import subprocess

    import cnnlib

    code = ("import json; from cnnlib.grading.autograde.sandbox import python_runtime_paths; "
            "print(json.dumps(python_runtime_paths()))")
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd="/", capture_output=True, text=True, check=True)
    paths = json.loads(out.stdout)
    holder = os.path.realpath(os.path.dirname(os.path.dirname(cnnlib.__file__)))
    assert any(holder == p or holder.startswith(p.rstrip(os.sep) + os.sep) for p in paths), (holder, paths)

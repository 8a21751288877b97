"""cnnlib._malloc: glibc's malloc keeps freed memory once cnnlib.functional is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cnnlib import _malloc


class FakeLibc:
    def __init__(self, answer=1):
        self.calls, self.answer = [], answer

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.answer


def test_sets_both_thresholds_through_mallopt(monkeypatch):
    monkeypatch.setattr(_malloc, "STATE", "")
    libc = FakeLibc()
    state = _malloc.keep_freed_memory(environ={}, load=lambda: libc)
    assert libc.calls == [(-3, 32 * 2**20), (-1, 256 * 2**20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert state == _malloc.STATE and "keeps freed memory" in state


@pytest.mark.parametrize("environ", [{"CNNLIB_KEEP_FREED_MEMORY": "0"}, {"CNNLIB_KEEP_FREED_MEMORY": "off"},
                                     {"MALLOC_TRIM_THRESHOLD_": "131072"}, {"MALLOC_TOP_PAD_": "0"},
                                     {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}])
def test_the_environment_can_leave_malloc_alone(environ, monkeypatch):
    monkeypatch.setattr(_malloc, "STATE", "")
    libc = FakeLibc()
    state = _malloc.keep_freed_memory(environ=environ, load=lambda: libc)
    assert libc.calls == [] and "left as it is" in state and next(iter(environ)) in state


def test_other_platforms_and_refusals_are_reported_not_raised(monkeypatch):
    monkeypatch.setattr(_malloc, "STATE", "")
    assert "not glibc" in _malloc.keep_freed_memory(environ={}, load=lambda: None)

    def blocked():
        raise OSError("no C library here")

    assert "no C library here" in _malloc.keep_freed_memory(environ={}, load=blocked)
    assert "took only nothing" in _malloc.keep_freed_memory(environ={}, load=lambda: FakeLibc(answer=0))


_STEPS = r"""
import json, resource, sys
import numpy as np
from cnnlib import _malloc
from cnnlib import functional as F
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 16, 28, 28), dtype=np.float32)  # a batch norm layer of notebook 06's size
gamma, beta = np.ones(16, np.float32), np.zeros(16, np.float32)
running_mean, running_var = np.zeros(16, np.float32), np.ones(16, np.float32)
def step():
    out, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, True)
    F.batchnorm2d_backward(out, cache)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"state": _malloc.STATE, "faults": faults}))
"""


def _faults_per_step(**env):
    environ = {k: v for k, v in os.environ.items() if not (k.startswith("MALLOC_") or k == "CNNLIB_KEEP_FREED_MEMORY")}
    out = subprocess.run([sys.executable, "-c", _STEPS], env={**environ, **env}, capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tuning is for glibc on Linux")
def test_a_batch_norm_step_no_longer_faults_its_memory_in_again():
    tuned, default = _faults_per_step(), _faults_per_step(CNNLIB_KEEP_FREED_MEMORY="0")
    assert "keeps freed memory" in tuned["state"], tuned
    assert "left as it is" in default["state"], default
    # the default policy re-faults about 1,500 pages per batch norm step here; kept, none (LeNet's
    # step no longer faults under either policy since the conv routes share their scratch)
    assert tuned["faults"] < 20 and tuned["faults"] * 10 < default["faults"], (tuned, default)

"""The benchmark scripts run (a smoke test on tiny shapes; timings are never asserted here)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import bench_routes  # noqa: E402


def test_bench_routes_forces_every_route_and_checks_they_agree(capsys):
    assert bench_routes.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for route in bench_routes.ROUTES:
        assert route in out
    assert "load average" in out and "auto takes" in out


def test_bench_routes_refuses_a_route_that_disagrees(monkeypatch):
    from cnnlib import functional as F

    real = F._conv_rows

    def wrong(*args):
        out, R = real(*args)
        out += 1  # (written in place: the caller reads the block it passed as out)
        return out, R

    monkeypatch.setattr(F, "_conv_rows", wrong)
    with pytest.raises(RuntimeError, match="rows differs from im2col in out"):
        bench_routes.bench_shape(*bench_routes.QUICK[0], rounds=1, repeat=1)


def test_gemm_seconds_times_the_products_only_and_puts_numpy_back():
    import numpy as np
    import timing
    from cnnlib import functional as F

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3, 12, 12)), rng.standard_normal((8, 3, 3, 3))
    assert timing.gemm_seconds(lambda: F.conv2d(x, w, padding=1), F, repeat=3) > 0
    assert timing.gemm_seconds(lambda: F.relu_forward(x), F, repeat=3) == 0  # no product in a ReLU
    gemm, share = timing.gemm_profile(lambda: F.conv2d(x, w, padding=1), F, repeat=3)
    assert gemm > 0 and 0 < share < 1  # of the same calls' time
    assert F.np is np
    with pytest.raises(ZeroDivisionError):
        timing.gemm_seconds(lambda: 1 / 0, F)
    assert F.np is np


def test_bench_train_times_each_library_in_its_own_process():
    import bench_train

    med, info = bench_train.time_in_processes(["cnnlib"], batches=2, rounds=2, repeat=1, threads=1, blas_threads=1)
    assert set(med) == {"cnnlib"} and med["cnnlib"] > 0
    assert "malloc" in info["cnnlib"]  # what cnnlib did to its own process's allocator

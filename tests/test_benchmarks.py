"""The benchmark scripts run (a smoke test on tiny shapes; timings are never asserted here)."""

from __future__ import annotations

import os
import sys
import time

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


def test_gemm_profile_of_blocks_on_threads_stays_a_share(monkeypatch):
    """Blocks on 2 threads: the GEMMs overlap in time, so their summed time is divided by the
    threads that ran them, and the share stays below 1."""
    import numpy as np
    import timing
    from cnnlib import functional as F

    monkeypatch.setattr(F, "_THREADS", 2)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((8, 16, 24, 24)), rng.standard_normal((32, 16, 3, 3))
    watch = timing.Stopwatch()
    monkeypatch.setattr(F, "_conv_rows", watch.wrap(F._conv_rows))
    F.conv2d_forward(x, w, None, 1, 1)
    assert watch.threads == 2  # the blocks did run on two threads
    gemm, share = timing.gemm_profile(lambda: F.conv2d(x, w, padding=1), F, repeat=3)
    assert gemm > 0 and 0 < share < 1


def test_gemm_profile_divides_overlapping_products_by_their_threads():
    """Two threads each in a product of at least 0.1 s at the same time: at least 0.1 s of GEMMs
    per call, and a share of the call's time of at most 1 (summed, the two would be about 2)."""
    import threading
    import types

    import numpy as np
    import timing

    class Slow:
        def __mul__(self, other):
            time.sleep(0.1)  # (releases the GIL, so the two threads' products overlap)
            return 1.0

    a = np.array([[Slow()]], dtype=object)
    module = types.SimpleNamespace(np=np)

    def two_threads():
        workers = [threading.Thread(target=lambda: module.np.matmul(a, a)) for _ in range(2)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()

    gemm, share = timing.gemm_profile(two_threads, module, repeat=1, warmup=0)
    assert gemm >= 0.1 and 0 < share <= 1.0  # (by construction: no speed is asserted)
    assert module.np is np


def test_bench_train_times_each_library_in_its_own_process():
    import bench_train

    rounds: dict = {}
    med, info = bench_train.time_in_processes(["cnnlib"], batches=2, rounds=2, repeat=1, threads=1, blas_threads=1,
                                              per_round=rounds)
    assert set(med) == {"cnnlib"} and med["cnnlib"] > 0
    assert len(rounds["cnnlib"]) == 2 and min(rounds["cnnlib"]) <= med["cnnlib"] <= max(rounds["cnnlib"])
    assert "malloc" in info["cnnlib"]  # what cnnlib did to its own process's allocator


def test_cpu_use_tells_the_benchmarks_own_threads_from_other_processes(tmp_path):
    """The verdict on a table must not blame other processes for the benchmark's own load."""
    import time

    import timing

    if timing.cpu_snapshot() is None:
        pytest.skip("no /proc/stat on this OS: the verdict falls back to the load average")
    # other processes' load while this one sleeps: the baseline (another test run may share the machine)
    start = timing.cpu_snapshot()
    time.sleep(0.3)
    baseline = timing.cpu_use(start, timing.cpu_snapshot())["other_cores"]
    start = timing.cpu_snapshot()
    t0 = time.process_time()
    while time.process_time() - t0 < 0.3:  # this process keeps one core busy
        sum(range(1000))
    use = timing.cpu_use(start, timing.cpu_snapshot())
    assert use["own_cores"] > 0.3  # the busy loop is counted as ours (a share of a core even when others compete)...
    # ...and not as another process's: counted there, it would lift other processes' load by a whole core
    assert use["other_cores"] < baseline + 0.5, (use, baseline)
    # other processes' share is the CPUs' busy time minus ours, from the first line of /proc/stat
    stat = tmp_path / "stat"
    ticks = os.sysconf("SC_CLK_TCK")

    def snap(busy_s, steal_s, idle_s, own_s, wall):
        stat.write_text(f"cpu  {int(busy_s * ticks)} 0 0 {int(idle_s * ticks)} 0 0 0 {int(steal_s * ticks)} 0 0\n"
                        "cpu0 0 0 0 0 0 0 0 0 0 0\n")
        s = timing.cpu_snapshot(str(stat))
        s["own"], s["wall"] = own_s, wall
        return s

    use = timing.cpu_use(snap(100, 0, 500, 10, 0.0), snap(100 + 30, 1, 500 + 9, 10 + 20, 20.0))
    assert use["own_cores"] == pytest.approx(1.0) and use["other_cores"] == pytest.approx(0.5)
    assert use["steal"] == pytest.approx(1 / 40)
    assert timing.cpu_snapshot(str(tmp_path / "missing")) is None


def test_ratio_verdict_withholds_on_a_busy_machine_and_not_for_its_own_load():
    import timing

    def use(other=0.05, steal=0.0, own=1.3):
        return {"seconds": 50.0, "own_cores": own, "other_cores": other, "steal": steal}

    show, why = timing.ratio_verdict([0.3, 0.9], False, use())  # 0.9 after: the benchmark's own threads
    assert show and "quiet machine" in why and "1.30 cores" in why
    for loads, u, reason in [([0.9, 0.9], use(), "before the table"), ([0.3, 1.5], use(other=1.0), "other processes used 1.00"),
                             ([0.3, 0.5], use(steal=0.2), "stole 20%")]:
        show, why = timing.ratio_verdict(loads, False, u)
        assert not show and reason in why and "withheld" in why
        show, why = timing.ratio_verdict(loads, True, u)
        assert show and why.startswith("WARNING")
    # without /proc/stat, every load reading counts, as before
    assert not timing.ratio_verdict([0.3, 0.9], False)[0]
    assert timing.ratio_verdict([0.3, 0.5], False)[0]


def test_time_blocks_gives_each_rounds_median_and_their_ratios(monkeypatch):
    """per_round holds one median per round and library, from that round's block only."""
    import timing

    clock = {"now": 0.0}
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(timing.time, "sleep", lambda s: None)
    durations = {"a": iter([1.0, 1.0, 5.0,  2.0, 2.0, 2.0,  3.0, 9.0, 3.0]), "b": iter([1.0] * 9)}

    def call(name):
        def fn():
            clock["now"] += next(durations[name])
        return fn

    # warmup=0: every call is a timed one, 3 a round, a's rounds taking 1, 2 and 3 (one outlier each)
    rounds: dict = {}
    med = timing.time_blocks({"a": call("a"), "b": call("b")}, rounds=3, repeat=3, warmup=0, per_round=rounds)
    assert rounds == {"a": [1.0, 2.0, 3.0], "b": [1.0, 1.0, 1.0]}
    assert med == {"a": 2.0, "b": 1.0}  # the median of all nine calls
    assert timing.round_ratios(rounds, "a", "b") == [1.0, 2.0, 3.0]

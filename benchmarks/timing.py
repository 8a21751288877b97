"""Honest timing helpers shared by the benchmarks (``bench_ops.py``, ``bench_train.py``).

On a 2-core machine OpenBLAS's and torch's worker threads keep spinning for a while after their
last call, so alternating two libraries call by call makes the second look slow. Here every
candidate is timed AS A BLOCK: warm-up calls, then ``repeat`` timed calls, then a short pause
before the next candidate; the whole sweep is repeated for ``rounds`` rounds and the median of
all timed calls is reported. Quote ratios from one run, never a single absolute time.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Callable, Mapping, Sequence

__all__ = [
    "time_blocks", "threadpool_info", "torch_available", "print_table", "load_average",
    "QUIET_LOAD", "cpu_info", "load_1min", "ratio_verdict", "geometric_mean", "gemm_seconds", "gemm_profile", "malloc_info",
    "Stopwatch", "cpu_snapshot", "cpu_use", "round_medians", "round_ratios",
]

#: ratios are printed only when the 1-minute load average is at most this (else --force)
QUIET_LOAD = 0.7


def time_blocks(
    candidates: Mapping[str, Callable[[], object]],
    rounds: int = 5,
    repeat: int = 9,
    warmup: int = 2,
    pause: float = 0.25,
    per_round: dict | None = None,
) -> dict[str, float]:
    """Time each candidate as a block after warm-up; return the median seconds per call.

    Args:
        candidates: name -> zero-argument callable (one call = one measured unit of work).
        rounds: how many times the whole sweep over candidates is repeated.
        repeat: timed calls per candidate per round.
        warmup: untimed calls per candidate at the start of each block.
        pause: seconds of sleep between blocks, so the previous library's spinning worker
            threads go idle before the next one is timed.
        per_round: a dict to fill with name -> the median of each round's block, in round
            order (the spread within one run: see ``round_ratios``), or None.

    Returns:
        dict name -> median seconds per call over all ``rounds * repeat`` timed calls.
    """
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            for _ in range(warmup):
                fn()
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
            time.sleep(pause)
    if per_round is not None:
        per_round.update(round_medians(samples, repeat))
    return {name: statistics.median(ts) for name, ts in samples.items()}


def round_medians(samples: Mapping[str, Sequence[float]], repeat: int) -> dict[str, list[float]]:
    """name -> the median of each round's ``repeat`` calls, from all the calls in round order."""
    return {name: [statistics.median(ts[k : k + repeat]) for k in range(0, len(ts), repeat)] for name, ts in samples.items()}


def round_ratios(per_round: Mapping[str, Sequence[float]], a: str, b: str) -> list[float]:
    """a's time over b's, round by round (the libraries' blocks of one round ran back to back)."""
    return [ta / tb for ta, tb in zip(per_round[a], per_round[b])]


class Stopwatch:
    """Adds up the time spent in the calls it wraps: ``f = watch.wrap(f)``, then ``watch.total``
    (summed over the threads that made the calls) and ``watch.threads`` (how many threads did)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.total, self._by_thread = 0.0, set()

    @property
    def threads(self) -> int:
        return len(self._by_thread)

    def wrap(self, real: Callable) -> Callable:
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                with self._lock:
                    self.total += time.perf_counter() - t0
                    self._by_thread.add(threading.get_ident())
        return call


def gemm_seconds(fn: Callable[[], object], module, repeat: int = 9, warmup: int = 2) -> float:
    """Median seconds per call of ``fn`` spent inside ``module``'s np.matmul / np.einsum calls."""
    return gemm_profile(fn, module, repeat, warmup)[0]


def gemm_profile(fn: Callable[[], object], module, repeat: int = 9, warmup: int = 2) -> tuple[float, float]:
    """(median seconds per call inside ``module``'s np.matmul / np.einsum calls, median share of
    each call's own time they take).

    The profile of where a call's time goes: what is left after the GEMMs is the numpy work
    around them (copies, shifted additions, transposes). ``module`` (e.g. cnnlib.functional)
    sees, for the duration, a stand-in for numpy whose matmul and einsum are timed; everything
    else is numpy's own. The timer adds about a microsecond per GEMM. The share compares the
    GEMMs with the same calls' total, so it stays between 0 and 1 when the machine's speed drifts.
    When a call runs its blocks on several threads (cnnlib's large convolutions), their GEMMs
    overlap in time: the figure is their time summed over the threads, divided by the number of
    threads that ran GEMMs (the GEMMs' share of each thread's time, on average).
    """
    import numpy as np

    watch = Stopwatch()

    class _Numpy:
        matmul, einsum = staticmethod(watch.wrap(np.matmul)), staticmethod(watch.wrap(np.einsum))

        def __getattr__(self, name):
            return getattr(np, name)

    real_np, module.np = module.np, _Numpy()
    try:
        for _ in range(warmup):
            fn()
        gemm, share = [], []
        for _ in range(repeat):
            watch.reset()
            t0 = time.perf_counter()
            fn()
            per_thread = watch.total / max(1, watch.threads)
            gemm.append(per_thread)
            share.append(per_thread / (time.perf_counter() - t0))
    finally:
        module.np = real_np
    return statistics.median(gemm), statistics.median(share)


def threadpool_info() -> str:
    """One line describing the BLAS/OpenMP thread pools (kernel, threads) via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info as _info
    except ImportError:  # threadpoolctl is a dev dependency
        return "threadpoolctl not installed"
    parts = []
    for pool in _info():
        api = pool.get("internal_api", pool.get("user_api", "?"))
        arch = pool.get("architecture") or ""
        version = pool.get("version") or ""
        lib = os.path.basename(pool.get("filepath", ""))
        parts.append(f"{api} {version} {arch} threads={pool.get('num_threads')} ({lib})".replace("  ", " "))
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS") if k in os.environ}
    if env:
        parts.append(f"env {env}")
    return "; ".join(parts) if parts else "no thread pools loaded"


def malloc_info() -> str:
    """What cnnlib did to the C library's malloc (cnnlib/_malloc.py): it holds for every library
    in the process, torch included, so both are timed under the same memory policy."""
    from cnnlib import _malloc, functional  # noqa: F401  (importing functional applies it)

    return f"malloc: {_malloc.STATE} (the same for every library in this process)"


def cpu_info() -> str:
    """The CPU's model name and L2 cache, and the conv blocks cnnlib sizes from that L2."""
    from cnnlib import functional as F

    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    l2 = F._l2_cache_bytes()
    l2_text = f"L2 {l2 / 2**20:g} MiB a core" if l2 else "L2 size unknown"
    timeout = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if F._BLAS_NAPS:
        threads = (f"on threads past {F._THREAD_MIN_BYTES / 2**20:g} MiB of scratch "
                   f"(OPENBLAS_THREAD_TIMEOUT={timeout}: OpenBLAS's idle threads sleep)")
    else:
        threads = (f"on one thread (OPENBLAS_THREAD_TIMEOUT={timeout or 'unset'}: OpenBLAS's idle threads "
                   "spin; <= 21 lets cnnlib use threads)")
    return f"CPU: {model}; {l2_text}; cnnlib's conv blocks: {F._BLOCK_BYTES / 2**20:g} MiB of scratch, {threads}"


def torch_available() -> bool:
    """True when PyTorch can be imported (benchmarks compare against it only then)."""
    try:
        import torch  # noqa: F401
    except Exception:
        return False
    return True


def load_average() -> str:
    """The 1/5/15-minute load averages, to print beside results (a busy machine skews them)."""
    try:
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unavailable"


def load_1min() -> float | None:
    """The 1-minute load average, or None where the OS does not report one."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def cpu_snapshot(stat_path: str = "/proc/stat") -> dict | None:
    """What the CPUs and this process have done so far, for cpu_use; None without /proc/stat.

    ``busy`` and ``steal`` are seconds summed over all CPUs (the first line of /proc/stat, in
    clock ticks), ``own`` the CPU seconds of this process's threads and of the children it has
    waited for (bench_train times each library in a subprocess), ``wall`` a monotonic clock.
    """
    import resource

    try:
        with open(stat_path) as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 8:
        return None
    ticks = [int(v) for v in fields[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq [steal guest guest_nice]; guest time is already in user
    busy = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / hz
    steal = (ticks[7] if len(ticks) > 7 else 0) / hz
    total = sum(ticks[:8]) / hz
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        own += r.ru_utime + r.ru_stime
    return {"wall": time.monotonic(), "busy": busy, "steal": steal, "total": total, "own": own}


def cpu_use(start: dict | None, end: dict | None) -> dict | None:
    """Cores used between two cpu_snapshot()s: by this benchmark, by every other process, and
    the share of CPU time the hypervisor stole. None when either snapshot is missing.

    The load average cannot tell these apart: a benchmark keeping its 2 threads busy for a
    minute lifts the 1-minute load to about 0.6-0.8 on an otherwise idle machine. Here the other
    processes' share is the CPUs' busy time minus this process's own CPU time.
    """
    if start is None or end is None:
        return None
    wall = end["wall"] - start["wall"]
    if wall <= 0:
        return None
    own = end["own"] - start["own"]
    others = max(0.0, (end["busy"] - start["busy"]) - own)
    total = end["total"] - start["total"]
    steal = (end["steal"] - start["steal"]) / total if total > 0 else 0.0
    return {"seconds": wall, "own_cores": own / wall, "other_cores": others / wall, "steal": steal}


#: the share of CPU time the hypervisor may steal during a table for its ratios to be shown
QUIET_STEAL = 0.05


def ratio_verdict(loads: Sequence[float | None], force: bool, use: dict | None = None) -> tuple[bool, str]:
    """May ratios be printed, given the load averages read before and after a table, and the
    CPU use during it (cpu_use)?

    Load does not cancel out in a ratio (torch's OpenMP threads lose far more to a busy machine
    than OpenBLAS's), so ratios are shown only on a quiet machine, or when ``force`` is set (then
    marked as measured under load). Quiet means: the 1-minute load before the table <=
    QUIET_LOAD and, during the table, other processes used <= QUIET_LOAD cores on average and the
    hypervisor stole <= QUIET_STEAL of the CPU time. Where the CPU use is unknown (no /proc/stat),
    every load reading must be <= QUIET_LOAD instead: the load after a table includes the
    benchmark's own threads, so that rule withholds ratios more often than it should.
    Returns (show, explanation).
    """
    known = [v for v in loads if v is not None]
    before = loads[0] if loads else None
    if use is not None:
        busy = []
        if before is not None and before > QUIET_LOAD:
            busy.append(f"the 1-minute load average was {before:.2f} (> {QUIET_LOAD}) before the table")
        if use["other_cores"] > QUIET_LOAD:
            busy.append(f"other processes used {use['other_cores']:.2f} cores (> {QUIET_LOAD}) on average during it")
        if use["steal"] > QUIET_STEAL:
            busy.append(f"the hypervisor stole {use['steal']:.0%} (> {QUIET_STEAL:.0%}) of the CPU time during it")
        measured = (f"during the table ({use['seconds']:.0f} s) other processes used {use['other_cores']:.2f} cores "
                    f"on average, the hypervisor stole {use['steal']:.1%} of the CPU time, and this benchmark's own "
                    f"threads used {use['own_cores']:.2f} cores (they alone lift the load average read after it)")
        if not busy:
            before_s = "unknown" if before is None else f"{before:.2f}"
            return True, (f"quiet machine (1-minute load {before_s} <= {QUIET_LOAD} before the table; {measured}): "
                          "ratios are meaningful")
        why = "; ".join(busy) + f" ({measured})"
    else:
        worst = max(known) if known else None
        if worst is None:
            return True, "load average unavailable: ratios shown, check the machine is quiet yourself"
        if worst <= QUIET_LOAD:
            return True, f"quiet machine (1-minute load <= {QUIET_LOAD} before and after): ratios are meaningful"
        why = f"the 1-minute load average reached {worst:.2f} (> {QUIET_LOAD}) during this table"
    why += (": other processes compete for the cores and slow torch's OpenMP threads far more than "
            "OpenBLAS's, so a ratio measured now says little about a quiet machine")
    if force:
        return True, f"WARNING: {why}; ratios printed anyway (--force), do not quote them as quiet-machine figures"
    return False, f"ratios withheld: {why}. Rerun when the machine is quiet, or pass --force to print them anyway"


def geometric_mean(values: Sequence[float]) -> float:
    import math

    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    """Print rows as a plain-text table with aligned columns (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) if rows else False for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if v == 0 or 1e-2 <= abs(v) < 1e4:
            return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)

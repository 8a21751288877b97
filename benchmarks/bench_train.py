"""Benchmark: one LeNet training epoch on MNIST-shaped data, cnnlib against PyTorch CPU.

The network is ``cnnlib.model.lenet`` (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, FC 120, FC 100,
FC 10), trained with Adam(lr=1e-3) on batches of 64 float32 images of shape 1x28x28 drawn from
60,000 random images; PyTorch (when importable) trains the same network the same way with
``torch.set_num_threads(2)``. A full epoch is 938 batches; by default each library is timed on
blocks of ``--batches`` batches (through ``cnnlib.train.fit`` itself, shuffling and batching
included) with the block-wise timing of ``timing.py``, and the median time per batch is
extrapolated to 938 batches. ``--full`` times one real epoch of each instead; ``--profile``
prints where cnnlib's time goes (cProfile, by function; then layer by layer, forward and
backward, and the share inside the GEMMs); ``--memory`` measures the peak memory of
one whole training epoch of cnnlib in a fresh subprocess (tracemalloc's peak of the numpy and
Python heap during the epoch, and the growth of the process's maximum resident set).

Two tables by default (``--processes``): both libraries timed in this one process, so under one
malloc policy (cnnlib's, see cnnlib/_malloc.py: it speeds up torch's LeNet too), and each library
in its own worker process, as its users run it (cnnlib's setting stays in cnnlib's process; torch
runs under the C library's default). The blocks alternate between the libraries either way; after
each ratio, the lowest and highest ratio of single rounds (how far one run's ratio moves).

The load average is printed before and after the tables; the cnnlib / torch ratio is printed only
on a quiet machine: load <= 0.7 before, and during the tables other processes using <= 0.7 cores
and the hypervisor stealing <= 5 % (timing.ratio_verdict; ``--force`` prints it anyway, marked as
measured under load).

Run with ``make bench-train`` (it unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE).
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import (  # noqa: E402
    Stopwatch, cpu_info, cpu_snapshot, cpu_use, gemm_seconds, load_1min, load_average, malloc_info, print_table, ratio_verdict,
    round_medians, round_ratios, threadpool_info, time_blocks, torch_available,
)


N_IMAGES = 60_000
BATCH = 64
EPOCH_BATCHES = math.ceil(N_IMAGES / BATCH)  # 938


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((N_IMAGES, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, N_IMAGES).astype(np.int64)
    return X, y


def cnnlib_runner(X, y, n_batches: int, seed: int = 0, model=None):
    """A zero-argument callable training cnnlib's LeNet on ``n_batches`` batches (one fit epoch)."""
    from cnnlib.model import lenet  # imported here: a torch-only worker process never loads cnnlib
    from cnnlib.optim import Adam
    from cnnlib.train import fit

    rng = np.random.default_rng(seed)
    model = lenet(rng) if model is None else model
    opt = Adam(model.parameters(), lr=1e-3)
    Xs, ys = X[: n_batches * BATCH], y[: n_batches * BATCH]  # views: no copy

    def run():
        fit(model, opt, Xs, ys, epochs=1, batch_size=BATCH, rng=rng, progress=False)

    return run


def torch_runner(X, y, n_batches: int, seed: int = 0, threads: int = 2):
    """The same network, optimizer and loop in PyTorch CPU."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 100), nn.ReLU(),
        nn.Linear(100, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = n_batches * BATCH
    Xt, yt = torch.from_numpy(X[:n]), torch.from_numpy(y[:n])  # shares memory with numpy

    def run():
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, BATCH):
            idx = order[start:start + BATCH]
            xb, yb = Xt[idx], yt[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    return run


def layer_profile(X, y, n_batches: int, rounds: int = 3):
    """Where a cnnlib training step goes: (rows, total ms per batch, GEMM ms per batch).

    Every layer's forward and backward are wrapped in a timer for ``rounds`` epochs of
    ``n_batches`` batches (the first one a warm-up); rows are (layer, forward ms, backward ms,
    share of the step), then the rest of the step (loss, optimizer, batching) as one row. The
    GEMM figure is the time inside cnnlib.functional's matrix products (timing.gemm_seconds).
    """
    from cnnlib import functional
    from cnnlib.model import lenet

    model = lenet(np.random.default_rng(0))
    watches = [(Stopwatch(), Stopwatch()) for _ in model.layers]  # forward, backward
    for layer, (fw, bw) in zip(model.layers, watches):
        layer.forward, layer.backward = fw.wrap(layer.forward), bw.wrap(layer.backward)
    run = cnnlib_runner(X, y, n_batches, model=model)
    run()  # warm-up
    for watch in (w for pair in watches for w in pair):
        watch.reset()
    t0 = time.perf_counter()
    for _ in range(rounds):
        run()
    batches = rounds * n_batches
    total = (time.perf_counter() - t0) / batches
    rows = []
    for i, (layer, (fw, bw)) in enumerate(zip(model.layers, watches)):
        f, b = fw.total / batches, bw.total / batches
        rows.append((f"{i}. {layer.name} {layer!r}"[:60], f * 1e3, b * 1e3, f"{(f + b) / total:.0%}"))
    rest = total - sum(w.total for pair in watches for w in pair) / batches
    rows.append(("loss, Adam step, shuffling and batching", "-", "-", f"{rest / total:.0%}"))
    gemm = gemm_seconds(run, functional, repeat=rounds, warmup=0) / n_batches
    return rows, total * 1e3, gemm * 1e3


_WORKER_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
name, batches, threads, blas = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if blas > 0:
    from threadpoolctl import threadpool_limits
    _limits = threadpool_limits(blas, user_api="blas")
import bench_train as bt
X, y = bt.make_data()
run = bt.cnnlib_runner(X, y, batches) if name == "cnnlib" else bt.torch_runner(X, y, batches, threads=threads)
if any(m == "cnnlib" or m.startswith("cnnlib.") for m in sys.modules):
    from cnnlib import _malloc
    info = _malloc.STATE
else:
    info = "malloc as the C library sets it (cnnlib not loaded in this process)"
print(json.dumps({"ready": info}), flush=True)
for line in sys.stdin:
    warmup, repeat = (int(v) for v in line.split())
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times}), flush=True)
"""


def time_in_processes(names, batches: int, rounds: int, repeat: int, threads: int, blas_threads: int | None,
                      pause: float = 0.25, per_round: dict | None = None):
    """Like timing.time_blocks, but each library runs in its own process (as its users run it).

    One worker process per library, started once; the parent asks each in turn for a block
    (a warm-up call, then ``repeat`` timed calls), pausing between blocks. What a library does to
    its process (cnnlib's malloc setting, torch's thread pools) then stays with that library.
    Returns (median seconds per call by name, malloc line by name); ``per_round``, when a dict, is
    filled as timing.time_blocks fills it (each round's median by name).
    """
    import json
    import statistics

    workers, info = {}, {}
    try:
        for name in names:
            workers[name] = subprocess.Popen(
                [sys.executable, "-c", _WORKER_SCRIPT, os.path.dirname(os.path.abspath(__file__)), name,
                 str(batches), str(threads), str(blas_threads or 0)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for name, proc in workers.items():
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the {name} worker process exited before it was ready")
            info[name] = json.loads(line)["ready"]
        samples = {name: [] for name in names}
        for _ in range(rounds):
            for name, proc in workers.items():
                proc.stdin.write(f"1 {repeat}\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the {name} worker process exited during a block")
                samples[name] += json.loads(line)["times"]
                time.sleep(pause)
    finally:
        for proc in workers.values():
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=60)
    if per_round is not None:
        per_round.update(round_medians(samples, repeat))
    return {name: statistics.median(ts) for name, ts in samples.items()}, info


_MEMORY_SCRIPT = r"""
import json, resource, sys, tracemalloc
import numpy as np
sys.path.insert(0, sys.argv[1])
import bench_train as bt
X, y = bt.make_data()
run = bt.cnnlib_runner(X, y, int(sys.argv[2]))
try:  # the resident set now (KiB), not its high-water mark, which the data set's creation may have set
    base_rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
except (OSError, StopIteration):
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
run()
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({"tracemalloc_peak_mib": peak / 2**20,
                  "maxrss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_memory(n_batches: int = EPOCH_BATCHES) -> dict:
    """Peak memory of one cnnlib training epoch (``fit`` over n_batches), in a fresh subprocess.

    ``tracemalloc_peak_mib``: the largest amount of memory allocated through Python's and numpy's
    allocators at once during the epoch, above what was allocated before it (the data set, the
    model): the figure to compare; ``maxrss_growth_mib``: the process's maximum resident set after
    the epoch minus its resident set before it (0 when something before the epoch, such as making
    the data set, peaked higher; OpenBLAS's per-thread buffers count here); ``maxrss_mib``: the
    maximum resident set of the whole process (data set included).
    """
    import json

    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, os.path.dirname(os.path.abspath(__file__)),
                          str(n_batches)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=25, help="batches per timed block (default 25)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the libraries (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="timed blocks per library per round (default 3)")
    parser.add_argument("--full", action="store_true", help="time one whole 938-batch epoch per library instead")
    parser.add_argument("--profile", action="store_true", help="cProfile cnnlib on --batches * 4 batches")
    parser.add_argument("--no-torch", action="store_true", help="time cnnlib only")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit numpy's BLAS to this many threads (threadpoolctl); default: leave as is")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, as numpy's BLAS)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure the peak memory of one cnnlib epoch in a subprocess (see --memory-batches)")
    parser.add_argument("--memory-batches", type=int, default=EPOCH_BATCHES,
                        help=f"batches of the epoch whose peak memory --memory measures (default {EPOCH_BATCHES}: a whole epoch)")
    parser.add_argument("--processes", choices=["same", "separate", "both"], default="both",
                        help="time the libraries in this one process, each in its own worker process "
                             "(what a user of each gets: cnnlib's malloc setting stays in cnnlib's process), "
                             "or both tables (default)")
    parser.add_argument("--force", action="store_true", help="print the ratio even when the machine is busy")
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        # Kept for the whole run. On a loaded 2-core machine OpenBLAS's second thread mostly waits
        # for a core, and LeNet's small GEMMs get several times slower than with one thread.
        _limits = threadpool_limits(args.blas_threads, user_api="blas")  # noqa: F841

    print("LeNet training epoch: 60,000 random 1x28x28 float32 images, batch 64, Adam(lr=1e-3)")
    use_torch = torch_available() and not args.no_torch
    if use_torch:
        import torch

        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}, torch.set_num_threads({args.threads})")
    else:
        print("torch not importable: timing cnnlib only")
    print(f"numpy {np.__version__}; {threadpool_info()}")
    print(malloc_info())
    print(cpu_info())
    before, cpu_start = load_1min(), cpu_snapshot()
    print(f"{load_average()} before")

    X, y = make_data()

    if args.profile:
        n = args.batches * 4
        run = cnnlib_runner(X, y, n)
        run()  # warm-up
        prof = cProfile.Profile()
        prof.enable()
        run()
        prof.disable()
        print(f"\ncProfile of cnnlib over {n} batches (top 20 by own time):")
        pstats.Stats(prof).strip_dirs().sort_stats("tottime").print_stats(20)
        rows, total, gemm = layer_profile(X, y, args.batches * 4)
        print(f"where a cnnlib training step goes (3 epochs of {args.batches * 4} batches, every layer timed):")
        print_table(rows, headers=["layer", "forward ms", "backward ms", "share"])
        print(f"{total:.2f} ms per batch in all; {gemm:.2f} ms ({gemm / total:.0%}) inside the GEMMs "
              f"(np.matmul / np.einsum in cnnlib.functional)\n{load_average()} after")
        return 0

    tables = []  # (title, per_batch, how)
    if args.full:
        results = {}
        for name, make in [("cnnlib", cnnlib_runner)] + ([("torch", torch_runner)] if use_torch else []):
            run = make(X, y, EPOCH_BATCHES) if name == "cnnlib" else make(X, y, EPOCH_BATCHES, threads=args.threads)
            t0 = time.perf_counter()
            run()
            results[name] = time.perf_counter() - t0
            time.sleep(0.25)
        tables.append(("both libraries in this process", {k: v / EPOCH_BATCHES for k, v in results.items()},
                       "one full epoch of 938 batches timed per library (single run)", None))
    else:
        timed = args.rounds * args.repeat * args.batches
        how = (f"median of {args.rounds * args.repeat} blocks of {args.batches} batches per library "
               f"({timed} timed batches each), extrapolated to {EPOCH_BATCHES} batches")
        if args.processes in ("same", "both"):
            candidates = {"cnnlib": cnnlib_runner(X, y, args.batches)}
            if use_torch:
                candidates["torch"] = torch_runner(X, y, args.batches, threads=args.threads)
            rounds: dict = {}
            med = time_blocks(candidates, rounds=args.rounds, repeat=args.repeat, warmup=1, per_round=rounds)
            tables.append(("both libraries in this process (one malloc policy for both)",
                           {k: v / args.batches for k, v in med.items()}, how, rounds))
        if args.processes in ("separate", "both"):
            names = ["cnnlib"] + (["torch"] if use_torch else [])
            rounds = {}
            med, info = time_in_processes(names, args.batches, args.rounds * args.repeat, 1, args.threads,
                                          args.blas_threads, per_round=rounds)
            notes = "; ".join(f"{k}: {v}" for k, v in info.items())
            tables.append(("each library in its own process, as its users run it",
                           {k: v / args.batches for k, v in med.items()}, f"{how}\nmalloc per process: {notes}", rounds))

    after = load_1min()
    show, verdict = ratio_verdict([before, after], args.force, cpu_use(cpu_start, cpu_snapshot()))
    for title, per_batch, how, rounds in tables:  # rounds: each round's median by library, or None
        rows = []
        for name, t in per_batch.items():
            ratio = (round(t / per_batch["torch"], 2) if show else "withheld") if "torch" in per_batch else "n/a"
            rows.append((name, t * 1e3, t * EPOCH_BATCHES, ratio))
        print(f"\n{title}:")
        print_table(rows, headers=["library", "ms / batch", "s / epoch", "ratio vs torch"])
        print(how)
        if "torch" in per_batch and show:
            by_round = round_ratios(rounds, "cnnlib", "torch") if rounds else []
            print(f"cnnlib / torch = {per_batch['cnnlib'] / per_batch['torch']:.2f}x  (goal <= 1.3)"
                  + (f"; round by round ({len(by_round)} rounds) {min(by_round):.2f}-{max(by_round):.2f}" if by_round else ""))
    print(f"\n{load_average()} after")
    if use_torch:
        print(verdict)
    if args.memory:
        mem = peak_memory(args.memory_batches)
        print(f"\npeak memory of one cnnlib epoch ({args.memory_batches} batches of {BATCH}, fresh subprocess): "
              f"tracemalloc peak {mem['tracemalloc_peak_mib']:.1f} MiB above the data and model, "
              f"max RSS {mem['maxrss_growth_mib']:.1f} MiB above the RSS before the epoch "
              f"(process max RSS {mem['maxrss_mib']:.0f} MiB, data set included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

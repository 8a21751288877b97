"""Benchmark: one LeNet training epoch on MNIST-shaped data, cnnlib against PyTorch CPU.

The network is ``cnnlib.model.lenet`` (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, FC 120, FC 100,
FC 10), trained with Adam(lr=1e-3) on batches of 64 float32 images of shape 1x28x28 drawn from
60,000 random images; PyTorch (when importable) trains the same network the same way with
``torch.set_num_threads(2)``. A full epoch is 938 batches; by default each library is timed on
blocks of ``--batches`` batches (through ``cnnlib.train.fit`` itself, shuffling and batching
included) with the block-wise timing of ``timing.py``, and the median time per batch is
extrapolated to 938 batches. ``--full`` times one real epoch of each instead; ``--profile``
prints where cnnlib's time goes (cProfile, by function).

Run with ``make bench-train`` (it unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE).
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import load_average, print_table, threadpool_info, time_blocks, torch_available  # noqa: E402

from cnnlib.model import lenet  # noqa: E402
from cnnlib.optim import Adam  # noqa: E402
from cnnlib.train import fit  # noqa: E402

N_IMAGES = 60_000
BATCH = 64
EPOCH_BATCHES = math.ceil(N_IMAGES / BATCH)  # 938


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((N_IMAGES, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, N_IMAGES).astype(np.int64)
    return X, y


def cnnlib_runner(X, y, n_batches: int, seed: int = 0):
    """A zero-argument callable training cnnlib's LeNet on ``n_batches`` batches (one fit epoch)."""
    rng = np.random.default_rng(seed)
    model = lenet(rng)
    opt = Adam(model.parameters(), lr=1e-3)
    Xs, ys = X[: n_batches * BATCH], y[: n_batches * BATCH]  # views: no copy

    def run():
        fit(model, opt, Xs, ys, epochs=1, batch_size=BATCH, rng=rng, progress=False)

    return run


def torch_runner(X, y, n_batches: int, seed: int = 0):
    """The same network, optimizer and loop in PyTorch CPU."""
    import torch
    from torch import nn

    torch.set_num_threads(2)
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
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        # Kept for the whole run. On a loaded 2-core machine OpenBLAS's second thread mostly waits
        # for a core, and LeNet's small GEMMs get several times slower than with one thread.
        _limits = threadpool_limits(args.blas_threads, user_api="blas")  # noqa: F841

    print("LeNet training epoch: 60,000 random 1x28x28 float32 images, batch 64, Adam(lr=1e-3)")
    print(f"numpy {np.__version__}; {threadpool_info()}")
    use_torch = torch_available() and not args.no_torch
    if use_torch:
        import torch

        torch.set_num_threads(2)
        print(f"torch {torch.__version__}, torch.set_num_threads(2)")
    else:
        print("torch not importable: timing cnnlib only")
    print(load_average())

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
        return 0

    if args.full:
        results = {}
        for name, make in [("cnnlib", cnnlib_runner)] + ([("torch", torch_runner)] if use_torch else []):
            run = make(X, y, EPOCH_BATCHES)
            t0 = time.perf_counter()
            run()
            results[name] = time.perf_counter() - t0
            time.sleep(0.25)
        per_batch = {k: v / EPOCH_BATCHES for k, v in results.items()}
        how = "one full epoch of 938 batches timed per library (single run)"
    else:
        candidates = {"cnnlib": cnnlib_runner(X, y, args.batches)}
        if use_torch:
            candidates["torch"] = torch_runner(X, y, args.batches)
        med = time_blocks(candidates, rounds=args.rounds, repeat=args.repeat, warmup=1)
        per_batch = {k: v / args.batches for k, v in med.items()}
        timed = args.rounds * args.repeat * args.batches
        how = (f"median of {args.rounds * args.repeat} blocks of {args.batches} batches per library "
               f"({timed} timed batches each), extrapolated to {EPOCH_BATCHES} batches")

    rows = []
    for name, t in per_batch.items():
        ratio = t / per_batch["torch"] if "torch" in per_batch else "n/a"
        rows.append((name, t * 1e3, t * EPOCH_BATCHES, ratio))
    print()
    print_table(rows, headers=["library", "ms / batch", "s / epoch", "ratio vs torch"])
    print(f"\n{how}")
    if "torch" in per_batch:
        print(f"cnnlib / torch = {per_batch['cnnlib'] / per_batch['torch']:.2f}x")
    print(load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

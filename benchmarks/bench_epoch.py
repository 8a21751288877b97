"""Benchmark: how long ONE training epoch of the course's LeNet takes on 60,000 MNIST-shaped images.

Notebook 07_training trains on the 4,000-image sample and, when the full MNIST is cached, for one
epoch on all 60,000 images; this measures that epoch on the machine at hand, with random
1x28x28 float32 images (timing does not depend on the pixels). It runs ``cnnlib.train.fit`` for
exactly one epoch (``cnnlib.model.lenet``, Adam(lr=1e-3), batches of 64, shuffling included,
no progress bar) and prints the wall time, the CPU time, images per second, the same figure
scaled to the sample's 4,000 images, the load average and the BLAS thread pools.

    python benchmarks/bench_epoch.py [--images 60000] [--batch-size 64] [--blas-threads N] [--repeat 1]

``--blas-threads 1`` shows what OpenBLAS's second thread costs on a busy 2-core machine (LeNet's
GEMMs are small). Unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the command, as the other
benchmarks do: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_epoch.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import load_average, threadpool_info  # noqa: E402

from cnnlib.model import lenet  # noqa: E402
from cnnlib.optim import Adam  # noqa: E402
from cnnlib.train import fit  # noqa: E402

SAMPLE_TRAIN_IMAGES = 4_000


def one_epoch(X: np.ndarray, y: np.ndarray, batch_size: int, seed: int = 0) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fit epoch of a fresh LeNet on (X, y)."""
    rng = np.random.default_rng(seed)
    model = lenet(rng)
    optimizer = Adam(model.parameters(), lr=1e-3)
    wall, cpu = time.perf_counter(), time.process_time()
    fit(model, optimizer, X, y, epochs=1, batch_size=batch_size, rng=rng, progress=False)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000, help="images in the epoch (default 60,000)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="epochs to time; the median is reported")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit numpy's BLAS to this many threads (threadpoolctl); default: leave as is")
    args = parser.parse_args(argv)
    if args.images < 1 or args.batch_size < 1 or args.repeat < 1:
        parser.error("--images, --batch-size and --repeat must be >= 1")
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(args.blas_threads, user_api="blas")  # noqa: F841  (kept for the run)

    rng = np.random.default_rng(0)
    X = rng.random((args.images, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, size=args.images).astype(np.int64)
    print(f"one LeNet epoch: {args.images:,} random 1x28x28 float32 images, batch {args.batch_size}, "
          f"Adam(lr=1e-3), cnnlib.train.fit")
    print(f"numpy {np.__version__}; {threadpool_info()}")
    print(f"before: {load_average()}")
    one_epoch(X[: 4 * args.batch_size], y[: 4 * args.batch_size], args.batch_size)  # warm-up
    runs = [one_epoch(X, y, args.batch_size, seed) for seed in range(args.repeat)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(f"after:  {load_average()}")
    print(f"epoch time  {wall:8.1f} s wall, {cpu:.1f} s CPU ({cpu / wall:.2f} cores busy)")
    print(f"throughput  {args.images / wall:8.0f} images/s; {wall / (args.images / args.batch_size) * 1e3:.1f} ms "
          f"per batch of {args.batch_size}")
    print(f"the sample  {wall * SAMPLE_TRAIN_IMAGES / args.images:8.1f} s per epoch of its "
          f"{SAMPLE_TRAIN_IMAGES:,} training images (same rate)")


if __name__ == "__main__":
    main()

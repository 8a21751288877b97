"""Benchmark cnnlib's vectorized ops against naive loops and PyTorch CPU (forward + backward).

Run with ``make bench-ops`` (it unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE). float32, NCHW,
PyTorch limited to 2 threads. Each library is timed as a block after warm-up (see timing.py);
the naive loops are slow, so they run on a slice of the batch and are scaled up to the full batch.
Quote the ratios, from one run on a quiet machine; absolute times drift.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import naive  # noqa: E402  (tests/naive.py: the loop references)
from timing import load_average, print_table, threadpool_info, time_blocks, torch_available  # noqa: E402

from cnnlib import functional as F  # noqa: E402

# (label, kind, x shape, params): conv params (F, KH, KW, stride, padding); pool (kernel, stride)
CASES = [
    ("conv 64x1x32x32 -> 6@5x5", "conv", (64, 1, 32, 32), (6, 5, 5, 1, 0)),
    ("conv 64x6x14x14 -> 16@5x5", "conv", (64, 6, 14, 14), (16, 5, 5, 1, 0)),
    ("conv 32x64x32x32 -> 64@3x3 p1", "conv", (32, 64, 32, 32), (64, 3, 3, 1, 1)),
    ("conv 32x32x32x32 -> 64@3x3 s2 p1", "conv", (32, 32, 32, 32), (64, 3, 3, 2, 1)),
    ("max pool 2x2 on 64x16x28x28", "pool", (64, 16, 28, 28), (2, 2)),
    ("max pool 3x3 s2 on 32x64x32x32", "pool", (32, 64, 32, 32), (3, 2)),
]


def make_case(kind, xshape, params, rng):
    """Arrays and the three fwd+bwd callables (cnnlib, naive on a slice, torch or None)."""
    x = rng.standard_normal(xshape, dtype=np.float32)
    if kind == "conv":
        nf, kh, kw, s, p = params
        w = rng.standard_normal((nf, xshape[1], kh, kw), dtype=np.float32) * 0.1
        b = np.zeros(nf, np.float32)
        out, _ = F.conv2d_forward(x, w, b, s, p)
        dout = rng.standard_normal(out.shape, dtype=np.float32)

        def ours():
            _, cache = F.conv2d_forward(x, w, b, s, p)
            F.conv2d_backward(dout, cache)

        def loops(n):
            naive.conv2d_forward(x[:n], w, b, s, p)
            naive.conv2d_backward(dout[:n], x[:n], w, s, p)

        def torch_fn():
            import torch

            xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
            dt = torch.tensor(dout)

            def run():
                xt.grad = wt.grad = bt.grad = None
                torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p).backward(dt)

            return run
    else:
        k, s = params
        out, _ = F.max_pool2d_forward(x, k, s)
        dout = rng.standard_normal(out.shape, dtype=np.float32)

        def ours():
            _, cache = F.max_pool2d_forward(x, k, s)
            F.max_pool2d_backward(dout, cache)

        def loops(n):
            naive.max_pool2d_forward(x[:n], k, s)
            naive.max_pool2d_backward(dout[:n], x[:n], k, s)

        def torch_fn():
            import torch

            xt, dt = torch.tensor(x, requires_grad=True), torch.tensor(dout)

            def run():
                xt.grad = None
                torch.nn.functional.max_pool2d(xt, k, s).backward(dt)

            return run

    return ours, loops, (torch_fn() if torch_available() else None)


def time_naive(loops, batch, budget):
    """Time the loops on a slice of n images (1 or 2) and scale to the full batch."""
    t0 = time.perf_counter()
    loops(1)
    t1 = time.perf_counter() - t0
    n = 2 if t1 < budget / 4 and batch >= 2 else 1
    t0 = time.perf_counter()
    loops(n)
    return (time.perf_counter() - t0) / n * batch, n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-naive", action="store_true", help="skip the naive loops (they take ~1 min)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of blocks per library (default 5)")
    ap.add_argument("--repeat", type=int, default=9, help="timed calls per block (default 9)")
    ap.add_argument("--only", type=int, nargs="*", help="case numbers to run (1-6)")
    args = ap.parse_args(argv)

    have_torch = torch_available()
    if have_torch:
        import torch

        torch.set_num_threads(2)
    print("cnnlib vs naive loops vs PyTorch CPU: forward + backward, float32, NCHW")
    print(f"numpy {np.__version__}; BLAS: {threadpool_info()}")
    print(f"torch: {torch.__version__ + ', set_num_threads(2)' if have_torch else 'not installed (cnnlib vs naive only)'}")
    print(f"{load_average()} at start (other busy processes skew everything: rerun when quiet)")
    print(f"median of {args.rounds} rounds x {args.repeat} calls, each library timed as a block after warm-up\n")

    rng = np.random.default_rng(0)
    rows, ratios = [], []
    for i, (label, kind, xshape, params) in enumerate(CASES, start=1):
        if args.only and i not in args.only:
            continue
        ours, loops, torch_run = make_case(kind, xshape, params, rng)
        candidates = {"cnnlib": ours}
        if torch_run is not None:
            candidates["torch"] = torch_run
        t = time_blocks(candidates, rounds=args.rounds, repeat=args.repeat)
        naive_s, n = (None, 0) if args.no_naive else time_naive(loops, xshape[0], budget=5.0)
        row = [f"{i}. {label}"]
        row += ["-" if naive_s is None else f"{naive_s * 1e3:,.0f} (N={n}x{xshape[0] // n})"]
        row += [t["cnnlib"] * 1e3]
        row += ["-" if naive_s is None else f"{naive_s / t['cnnlib']:,.0f}x"]
        if "torch" in t:
            ratio = t["cnnlib"] / t["torch"]
            ratios.append(ratio)
            row += [t["torch"] * 1e3, round(ratio, 2)]
        rows.append(row)
        print(f"  done {label}", file=sys.stderr, flush=True)

    headers = ["case", "naive ms", "cnnlib ms", "naive/cnnlib"] + (["torch ms", "cnnlib/torch"] if have_torch else [])
    print_table(rows, headers)
    print("\nnaive ms: tests/naive.py loops timed on N=n images and scaled to the full batch (N=n x scale)")
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"geometric mean cnnlib/torch over {len(ratios)} cases: {geo:.2f}  (target <= 2.0, longer term 1.2)")
    print(load_average() + " at end")


if __name__ == "__main__":
    main()

"""Benchmark cnnlib's vectorized ops against naive loops and PyTorch CPU (forward + backward).

Run with ``make bench-ops`` (it unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE). float32, NCHW,
PyTorch limited to the same number of threads as numpy's BLAS (2 by default). Each library is
timed as a block after warm-up with a pause between blocks, rounds interleaved (see timing.py);
the naive loops are slow, so they run on a slice of the batch and are scaled up to the full batch.

The load average is printed before and after the table; ratios are printed only on a quiet
machine: load <= 0.7 before, and during the table other processes using <= 0.7 cores and the
hypervisor stealing <= 5 % of the CPU time (timing.ratio_verdict: the load after the table counts
this benchmark's own threads too; ``--force`` prints them anyway, marked). Cases 1-6 are the issue's six (their geometric
mean is the goal); 7-9 are what the later notebooks train: spatial batch norm, linear + ReLU at
classifier sizes, and a ResNet basic block (two 3x3 Conv2d + BatchNorm2d, identity shortcut),
the last only once ``cnnlib.layers.Residual`` exists.

"rounds" is the lowest and highest cnnlib/torch of single rounds (each round times one block of
each library back to back): how far one run's ratio moves on this machine, which the median hides.

For the convolutions, "GEMMs ms" is the part of cnnlib's time spent inside its matrix products
(timing.gemm_profile; the share in brackets is of the same calls' time): the rest is the numpy
work around them, and "GEMMs/torch" near 1 says the products alone take as long as torch's
whole forward + backward. A large convolution runs its blocks on several threads; its GEMMs'
time is then summed over the threads and divided by their number.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import naive  # noqa: E402  (tests/naive.py: the loop references)
from timing import (  # noqa: E402
    cpu_info, cpu_snapshot, cpu_use, gemm_profile, geometric_mean, load_1min, load_average, malloc_info, print_table, ratio_verdict,
    round_ratios, threadpool_info, time_blocks, torch_available,
)

from cnnlib import functional as F  # noqa: E402
from cnnlib import layers as L  # noqa: E402

# (label, kind, x shape, params): conv params (F, KH, KW, stride, padding); pool (kernel, stride);
# bn (); linear (out_features,); residual ()
CASES = [
    ("conv 64x1x32x32 -> 6@5x5", "conv", (64, 1, 32, 32), (6, 5, 5, 1, 0)),
    ("conv 64x6x14x14 -> 16@5x5", "conv", (64, 6, 14, 14), (16, 5, 5, 1, 0)),
    ("conv 32x64x32x32 -> 64@3x3 p1", "conv", (32, 64, 32, 32), (64, 3, 3, 1, 1)),
    ("conv 32x32x32x32 -> 64@3x3 s2 p1", "conv", (32, 32, 32, 32), (64, 3, 3, 2, 1)),
    ("max pool 2x2 on 64x16x28x28", "pool", (64, 16, 28, 28), (2, 2)),
    ("max pool 3x3 s2 on 32x64x32x32", "pool", (32, 64, 32, 32), (3, 2)),
    ("batch norm (train) 64x16x28x28", "bn", (64, 16, 28, 28), ()),
    ("linear 64x400 -> 120 + ReLU", "linear", (64, 400), (120,)),
    ("residual block 32x32x16x16 (2x conv3x3+BN)", "residual", (32, 32, 16, 16), ()),
]
GOAL_CASES = 6  # the geometric-mean goal is over the first six


def _torch():
    import torch

    return torch


def make_case(kind, xshape, params, rng):
    """The three fwd+bwd callables (cnnlib, naive on a slice or None, torch or None), or None."""
    x = rng.standard_normal(xshape, dtype=np.float32)
    loops = torch_fn = None
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
            torch = _torch()
            xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
            dt = torch.tensor(dout)

            def run():
                xt.grad = wt.grad = bt.grad = None
                torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p).backward(dt)

            return run
    elif kind == "pool":
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
            torch = _torch()
            xt, dt = torch.tensor(x, requires_grad=True), torch.tensor(dout)

            def run():
                xt.grad = None
                torch.nn.functional.max_pool2d(xt, k, s).backward(dt)

            return run
    elif kind == "bn":
        C = xshape[1]
        gamma, beta = np.ones(C, np.float32), np.zeros(C, np.float32)
        rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
        dout = rng.standard_normal(xshape, dtype=np.float32)

        def ours():
            _, cache = F.batchnorm2d_forward(x, gamma, beta, rm, rv, True)
            F.batchnorm2d_backward(dout, cache)

        def torch_fn():
            torch = _torch()
            xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
            rmt, rvt, dt = torch.tensor(rm), torch.tensor(rv), torch.tensor(dout)

            def run():
                xt.grad = gt.grad = bt.grad = None
                torch.nn.functional.batch_norm(xt, rmt, rvt, gt, bt, training=True).backward(dt)

            return run
    elif kind == "linear":
        (nout,) = params
        w = rng.standard_normal((xshape[1], nout), dtype=np.float32) * 0.05
        b = np.zeros(nout, np.float32)
        dout = rng.standard_normal((xshape[0], nout), dtype=np.float32)

        def ours():
            h, c1 = F.linear_forward(x, w, b)
            _, c2 = F.relu_forward(h)
            F.linear_backward(F.relu_backward(dout, c2), c1)

        def torch_fn():
            torch = _torch()
            xt = torch.tensor(x, requires_grad=True)
            wt, bt = torch.tensor(w.T.copy(), requires_grad=True), torch.tensor(b, requires_grad=True)
            dt = torch.tensor(dout)

            def run():
                xt.grad = wt.grad = bt.grad = None
                torch.relu(torch.nn.functional.linear(xt, wt, bt)).backward(dt)

            return run
    elif kind == "residual":
        if not hasattr(L, "Residual"):
            return None
        C = xshape[1]
        lrng = np.random.default_rng(1)
        block = L.Residual([
            L.Conv2d(C, C, 3, padding=1, rng=lrng, bias=False), L.BatchNorm2d(C), L.ReLU(),
            L.Conv2d(C, C, 3, padding=1, rng=lrng, bias=False), L.BatchNorm2d(C),
        ])
        dout = rng.standard_normal(xshape, dtype=np.float32)

        def ours():
            block.forward(x)
            block.backward(dout)

        def torch_fn():
            torch = _torch()
            nn = torch.nn
            body = nn.Sequential(nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C), nn.ReLU(),
                                 nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
            xt, dt = torch.tensor(x, requires_grad=True), torch.tensor(dout)

            def run():
                xt.grad = None
                body.zero_grad()
                torch.relu(body(xt) + xt).backward(dt)

            return run
    else:  # pragma: no cover
        raise ValueError(kind)
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
    ap.add_argument("--only", type=int, nargs="*", help=f"case numbers to run (1-{len(CASES)})")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads and torch threads (default 2)")
    ap.add_argument("--force", action="store_true", help="print ratios even when the machine is busy")
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(args.threads, user_api="blas")  # noqa: F841  (kept for the run)
    have_torch = torch_available()
    if have_torch:
        torch = _torch()
        torch.set_num_threads(args.threads)
    print("cnnlib vs naive loops vs PyTorch CPU: forward + backward, float32, NCHW")
    print(f"numpy {np.__version__}; BLAS: {threadpool_info()}")
    print(malloc_info())
    print(cpu_info())
    print(f"torch: {torch.__version__ + f', set_num_threads({args.threads}), get_num_threads() = {torch.get_num_threads()}' if have_torch else 'not installed (cnnlib vs naive only)'}")
    print(f"median of {args.rounds} rounds x {args.repeat} calls; each library timed as a block after warm-up, "
          "0.25 s pause between blocks, libraries interleaved round by round")
    before, cpu_start = load_1min(), cpu_snapshot()
    print(f"{load_average()} before the table\n")

    rng = np.random.default_rng(0)
    rows, ratios, spread, skipped = [], {}, {}, []
    for i, (label, kind, xshape, params) in enumerate(CASES, start=1):
        if args.only and i not in args.only:
            continue
        made = make_case(kind, xshape, params, rng)
        if made is None:
            rows.append([f"{i}. {label}", "-", "skipped*", "-", "-", "-"])
            skipped.append(f"* case {i} skipped: cnnlib.layers.Residual does not exist yet")
            continue
        ours, loops, torch_run = made
        candidates = {"cnnlib": ours}
        if torch_run is not None:
            candidates["torch"] = torch_run
        rounds: dict = {}
        t = time_blocks(candidates, rounds=args.rounds, repeat=args.repeat, per_round=rounds)
        naive_s, n = (None, 0) if (args.no_naive or loops is None) else time_naive(loops, xshape[0], budget=5.0)
        row = [f"{i}. {label}"]
        row += ["-" if naive_s is None else f"{naive_s * 1e3:,.0f} (N={n}x{xshape[0] // n})"]
        row += [t["cnnlib"] * 1e3]
        row += ["-" if naive_s is None else f"{naive_s / t['cnnlib']:,.0f}x"]
        if "torch" in t:
            ratios[i] = t["cnnlib"] / t["torch"]
            spread[i] = round_ratios(rounds, "cnnlib", "torch")
            row += [t["torch"] * 1e3, ratios[i], f"{min(spread[i]):.2f}-{max(spread[i]):.2f}"]
        else:
            row += ["-", "-", "-"]
        if kind == "conv":  # the profile: how much of cnnlib's time is the GEMMs themselves
            gemm, share = gemm_profile(ours, F, repeat=args.repeat)
            row += [f"{gemm * 1e3:.3g} ({share:.0%})"]
            row += [round(gemm / t["torch"], 2) if "torch" in t else "-"]
        else:
            row += ["-", "-"]
        rows.append(row)
        print(f"  done {label}", file=sys.stderr, flush=True)

    after = load_1min()
    show, verdict = ratio_verdict([before, after], args.force, cpu_use(cpu_start, cpu_snapshot()))
    headers = ["case", "naive ms", "cnnlib ms", "naive/cnnlib", "torch ms", "cnnlib/torch", "rounds", "GEMMs ms", "GEMMs/torch"]
    rows = [r + ["-"] * (len(headers) - len(r)) for r in rows]  # skipped cases
    if not show:
        rows = [r[:5] + ["withheld", "withheld", r[7], "withheld"] for r in rows]
    else:
        rows = [r[:5] + [round(r[5], 2) if isinstance(r[5], float) else r[5]] + r[6:] for r in rows]
    print_table(rows, headers)
    print("\nnaive ms: tests/naive.py loops timed on N=n images and scaled to the full batch (N=n x scale)")
    print("rounds: the lowest and highest cnnlib/torch of one round's two blocks (the spread within this run; the\n  "
          "ratio beside it, of medians over all calls, can fall just outside it)")
    print("GEMMs ms: of cnnlib's time, what its np.matmul / np.einsum calls take (their share of those calls in brackets),\n  "
          "timed after the table's blocks; GEMMs/torch near 1 means the GEMMs alone take as long as "
          "torch's whole call\n  (blocks on several threads: the GEMMs' time summed over the threads, divided by their number)")
    for note in skipped:
        print(note)
    print(f"{load_average()} after the table")
    print(verdict)
    goal_cases = [i for i in ratios if i <= GOAL_CASES]
    if show and goal_cases:
        goal, worst = [ratios[i] for i in goal_cases], max(goal_cases, key=ratios.get)
        print(f"geometric mean cnnlib/torch over cases 1-{GOAL_CASES} ({len(goal)} run): {geometric_mean(goal):.2f}  "
              f"(goal <= 1.2, none above 1.5; worst {ratios[worst]:.2f}, case {worst}, whose rounds gave "
              f"{min(spread[worst]):.2f}-{max(spread[worst]):.2f})")
        extra = [r for i, r in ratios.items() if i > GOAL_CASES]
        if extra:
            print(f"geometric mean over cases 7-{len(CASES)} ({len(extra)} run): {geometric_mean(extra):.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: cnnlib's convolution routes against each other, forward + backward, float32.

``conv2d_forward`` picks a route by shape (``cnnlib.functional``): im2col + one GEMM, the
kernel-row route (stride 1: im2col over channel x kernel row only), batch chunks of im2col (few
filters), Winograd F(2x2, 3x3) (not chosen by default); on large batches, im2col and the
kernel-row route run in blocks of images whose scratch stays in the cache, and with enough scratch
the blocks run on as many threads as the BLAS has. This script forces each route that applies to
a shape on the whole batch, on one thread (forced, "chunked" takes a third of the batch per chunk;
"auto" sizes its chunks for the cache), runs "auto" as it is, with its blocks on one thread, and
without blocks or threads, checks that all agree with each other to float32 round-off, and times
them block-wise, interleaved round by round (``timing.py``), so the choices the library makes can
be re-checked on another machine. It prints the route ``auto`` takes and each route's time
relative to im2col; the load average before and after (times on a busy machine say little).

Run with ``make bench-routes`` (it unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import cpu_info, load_average, print_table, threadpool_info, time_blocks  # noqa: E402

from cnnlib import functional as F  # noqa: E402

# (label, x shape, w shape, stride, padding)
SHAPES = [
    ("LeNet conv1 64x1x28x28 -> 6@5x5 p2", (64, 1, 28, 28), (6, 1, 5, 5), 1, 2),
    ("LeNet conv2 64x6x14x14 -> 16@5x5", (64, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    ("RGB 64x3x32x32 -> 32@3x3 p1", (64, 3, 32, 32), (32, 3, 3, 3), 1, 1),
    ("64x16x28x28 -> 32@3x3 p1", (64, 16, 28, 28), (32, 16, 3, 3), 1, 1),
    ("residual 32x32x16x16 -> 32@3x3 p1", (32, 32, 16, 16), (32, 32, 3, 3), 1, 1),
    ("32x64x32x32 -> 64@3x3 p1", (32, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ("64x32x14x14 -> 16@5x5 p2", (64, 32, 14, 14), (16, 32, 5, 5), 1, 2),
    ("32x32x32x32 -> 64@3x3 s2 p1", (32, 32, 32, 32), (64, 32, 3, 3), 2, 1),
]
QUICK = [
    ("quick 4x6x14x14 -> 16@5x5", (4, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    ("quick 4x16x8x8 -> 16@3x3 p1", (4, 16, 8, 8), (16, 16, 3, 3), 1, 1),
]
ROUTES = ("im2col", "rows", "chunked", "winograd")
COLUMNS = ("auto", "auto, 1 thread", "auto, whole", *ROUTES)  # "auto, whole": auto without blocks or threads


def applicable(route: str, wshape, stride) -> bool:
    KH, KW = wshape[2:]
    if route == "rows":
        return stride == 1 and KW > 1
    if route == "winograd":
        return stride == 1 and (KH, KW) == (3, 3)
    return True


def run_route(route: str, x, w, b, dout, stride, padding):
    """Forward + backward with the route forced ("auto, 1 thread": auto's blocks on one thread;
    "auto, whole": auto without blocks or threads; a forced route runs on the whole batch, on one
    thread); returns (out, dx, dw, db) and the route taken."""
    saved = F._CONV_ALGO, F._BLOCKING, F._THREADS
    F._CONV_ALGO = "auto" if route.startswith("auto") else route
    F._BLOCKING = "auto" if route in ("auto", "auto, 1 thread") else "never"
    F._THREADS = "auto" if route == "auto" else 1
    try:
        out, cache = F.conv2d_forward(x, w, b, stride, padding)
        return (out, *F.conv2d_backward(dout, cache)), cache["algo"]
    finally:
        F._CONV_ALGO, F._BLOCKING, F._THREADS = saved


def auto_route(x, w, b, stride, padding) -> str:
    cache = F.conv2d_forward(x, w, b, stride, padding)[1]
    threads = f" on {cache['threads']} threads" if cache.get("threads", 1) > 1 else ""
    return cache["algo"] + (f", blocks of {cache['block']}" if cache.get("block") else "") + threads


def bench_shape(label, xshape, wshape, stride, padding, rounds, repeat):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xshape, dtype=np.float32)
    w = (rng.standard_normal(wshape, dtype=np.float32) / np.sqrt(np.prod(wshape[1:]))).astype(np.float32)
    b = np.zeros(wshape[0], np.float32)
    out = F.conv2d_forward(x, w, b, stride, padding)[0]
    dout = rng.standard_normal(out.shape, dtype=np.float32)
    routes = [*COLUMNS[:3]] + [r for r in ROUTES if applicable(r, wshape, stride)]
    reference, _ = run_route("im2col", x, w, b, dout, stride, padding)
    for r in routes[3:] + routes[:3]:  # the forced routes first, so a wrong one is named
        got, taken = run_route(r, x, w, b, dout, stride, padding)
        if not r.startswith("auto") and taken != r:
            raise RuntimeError(f"{label}: forcing route {r!r} took {taken!r}")
        for name, g, e in zip(("out", "dx", "dw", "db"), got, reference):
            err = float(np.abs(g - e).max()) / max(1.0, float(np.abs(e).max()))
            if err > 1e-4:
                raise RuntimeError(f"{label}: route {r} differs from im2col in {name} by {err:.1e} (relative)")
    times = time_blocks({r: (lambda r=r: run_route(r, x, w, b, dout, stride, padding)) for r in routes},
                        rounds=rounds, repeat=repeat)
    base = times["im2col"]
    cells = [f"{times[r] * 1e3:.2f} ({times[r] / base:.2f}x)" if r in times else "-" for r in COLUMNS]
    return [label, auto_route(x, w, b, stride, padding), *cells]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two tiny shapes, one round (a smoke test)")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    shapes, rounds, repeat = (QUICK, 1, 2) if args.quick else (SHAPES, args.rounds, 5)
    print("cnnlib conv routes, forward + backward (dx, dw, db), float32; ms per call (ratio to im2col)")
    print(f"numpy {np.__version__}; {threadpool_info()}")
    print(cpu_info())
    print(f"median of {rounds} rounds x {repeat} calls, each route timed as a block, routes interleaved round by round")
    print(f"{load_average()} before")
    rows = [bench_shape(*s, rounds=rounds, repeat=repeat) for s in shapes]
    print_table(rows, ["shape", "auto takes", *COLUMNS])
    print(f"{load_average()} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

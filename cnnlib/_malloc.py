"""Keep freed memory for reuse: glibc's malloc, tuned once when cnnlib.functional is imported.

Every op returns fresh arrays (results never share memory with scratch buffers), so a training
step frees and allocates a few MB of them. With glibc's default policy the free top of the heap
goes back to the kernel and the next step faults it in again page by page: about 1,100 page
faults per LeNet batch, a fifth to a quarter of the step (measured: 8.5 ms -> 6.5 ms per batch,
and 5.9 -> 4.5 ms for PyTorch's LeNet under the same two settings, each alone in its process).
(Since the convolutions share more scratch buffers, LeNet's step no longer faults either way;
batch norm's forward + backward on 64x16x28x28 still faults 1,536 pages by default, 3.7 -> 2.7
ms, and a 32x64x32x32 -> 64 3x3 conv's 1,002, 42 -> 40 ms.) Two settings keep that memory with
the process:

- M_MMAP_THRESHOLD = 32 MiB: allocations below it come from the heap, not from a fresh mmap
  (whose pages fault on first touch and are unmapped on free);
- M_TRIM_THRESHOLD = 256 MiB: up to that much free memory at the top of the heap is kept.

The price: the process's resident memory stays near its peak instead of shrinking after it.
Nothing is changed when the C library is not glibc (macOS, Windows, musl), when any of glibc's
MALLOC_*_ tunables is set in the environment (the user chose a policy), or when the environment
sets CNNLIB_KEEP_FREED_MEMORY=0. ``STATE`` says which happened.
"""

from __future__ import annotations

import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20
OPT_OUT = "CNNLIB_KEEP_FREED_MEMORY"

STATE = "not applied yet"


def _glibc():
    """The process's C library when it is glibc with mallopt, else None."""
    import ctypes

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory(environ=None, load=_glibc) -> str:
    """Apply the two settings unless the environment or the platform says not to; return STATE."""
    global STATE
    environ = os.environ if environ is None else environ
    if environ.get(OPT_OUT, "").strip().lower() in ("0", "false", "no", "off"):
        STATE = f"glibc malloc left as it is ({OPT_OUT}={environ[OPT_OUT]})"
        return STATE
    chosen = sorted(k for k in environ if k.startswith("MALLOC_") and k.endswith("_"))
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        chosen.append("GLIBC_TUNABLES")
    if chosen:
        STATE = f"glibc malloc left as it is (set in the environment: {', '.join(chosen)})"
        return STATE
    try:
        libc = load()
    except Exception as e:  # no C library to load (a restricted interpreter, an odd platform)
        libc, why = None, f"{type(e).__name__}: {e}"
    else:
        why = "the C library is not glibc"
    if libc is None:
        STATE = f"malloc left as it is ({why})"
        return STATE
    done = [f"{name} {value >> 20} MiB" for name, param, value in (("mmap threshold", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                                                  ("trim threshold", _M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            if libc.mallopt(param, value) == 1]
    STATE = (f"glibc malloc keeps freed memory ({', '.join(done)})" if len(done) == 2
             else f"glibc malloc: mallopt took only {done or 'nothing'} of the two settings")
    return STATE

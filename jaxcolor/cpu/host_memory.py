"""Keep freed host memory in the process, so XLA:CPU steps reuse it instead of page-faulting.

XLA:CPU allocates each executed step's buffers afresh. glibc's malloc serves blocks above its
mmap threshold (at most 32 MiB) with ``mmap`` and unmaps them on ``free``, so every step maps
its buffers again and the kernel zero-fills them page by page: tens of megabytes of minor page
faults per train step, which cost the steps a measurable share of their time (BENCHMARKS.md,
"Retained host memory"). With mmap off for malloc
and no trimming of the heap, freed blocks are reused. The cost: the process keeps its peak
heap until it exits. Applied by :func:`jaxcolor.training.fit` on CPU; opt out with
``JAXCOLOR_RETAIN_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

import jax

OPT_OUT_ENV = "JAXCOLOR_RETAIN_MEMORY"
# glibc mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
_INT_MAX = 2**31 - 1


@functools.cache
def retain_freed_memory() -> bool:
    """On the CPU backend with glibc: malloc no longer uses mmap for large blocks nor returns
    the heap's free top to the OS (process-wide, once). Returns whether it was applied."""
    if (os.environ.get(OPT_OUT_ENV, "1") == "0" or jax.default_backend() != "cpu"
            or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, _INT_MAX))

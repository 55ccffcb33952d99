"""fastai callbacks of the training loop: returning freed heap memory to the system during CPU training.
"""
from __future__ import annotations

import ctypes
import ctypes.util

from fastai.callback.core import Callback


def _glibc_malloc_trim():
    """glibc's `malloc_trim`, or None where the C library is not glibc (macOS, musl, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory(every: int = 20):
    """A fastai callback that returns freed heap memory to the OS every `every` training batches (CPU).

    Sparse embedding steps allocate and free buffers of about a megabyte every batch; glibc keeps the
    freed pages, fragmented, and the resident size grew by about 1 MB per batch at Electronics' size
    (3.2-3.9 GB peak for one epoch). `malloc_trim(0)` every 20 batches kept it flat (2.5 GB peak) with
    no slower epochs (benchmarks/scale.py). Does nothing where the C library is not glibc.
    """
    trim = _glibc_malloc_trim()

    class ReleaseFreedMemory(Callback):
        order = 90

        def before_fit(self):
            self.n = 0

        def after_batch(self):
            self.n += 1
            if trim is not None and self.training and self.n % every == 0:
                trim(0)

        def after_fit(self):
            if trim is not None:
                trim(0)

    return ReleaseFreedMemory()


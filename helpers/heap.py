"""The process's C heap (glibc's malloc): when large freed buffers are kept for reuse and when freed memory goes
back to the system. Nothing here changes a result; it changes what a fit waits for and how much memory it holds.

    with large_buffers_reused():      # what `helpers.training.fit` runs every fit in
        ...                           # buffers up to REUSE_BYTES come from the heap and are reused when freed
    free_pages_released()             # glibc's malloc_trim(0): free heap pages back to the system

Why: glibc serves an allocation above its mmap threshold (128 KiB at start, raised by each large free up to
32 MiB) with a fresh `mmap` and unmaps it when freed, so every such tensor is paid again in page faults when it
is next written. Training allocates and frees the same large buffers again and again (the catalogue scores of
a batch of users, the validation ranking's score blocks of 66 MB, the item-item solve's 128 MB gathers and
300 MB precision matrix), and on this project's 2-core virtual machine a page fault costs several
microseconds: writing a fresh 8 MB buffer took 13 ms, 0.6 GB/s. Measured in one session (the default
CollabNN, synthetic Electronics shape, 92,000 interactions, 9,000 users, 17,600 items, `benchmarks/budget.py
--child`): the whole fit 115.4 s with 57 s of system time under glibc's own thresholds, 87.0 s with 19 s of
system time inside this block (peak resident memory 2.8 -> 3.8 GB). On a probe fit's parts, thresholds of
32 MiB (glibc's own ceiling) gained nothing and 512 MiB as much as 2 GB (27.1 s with 14 s of system time ->
21.1 s with 3.7 s), and 160 MiB lost most of it on the item-item solve (6.3 -> 11.3 s at 17,600 items). The
cost is memory the heap keeps: the fit at 17,600 items peaked at 3.2 GB (2.6 GB before), at 50,000 items at
4.1 and 6.0 GB in two runs of the same code (3.5 GB before; the fragmentation varies from run to run).

Does nothing where the C library is not glibc (macOS, musl, Windows).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# Buffers up to this size come from the heap and stay there for reuse while `large_buffers_reused` is active.
REUSE_BYTES = 512 << 20
# What the thresholds go back to afterwards, unless the environment set them (MALLOC_MMAP_THRESHOLD_,
# MALLOC_TRIM_THRESHOLD_, as helpers.pipeline does for its kernels): the values glibc's own adjustment reaches
# after its first large free (32 MiB, and twice that for trimming). glibc has no call that reads the current
# values, and setting one turns its adjustment off for the rest of the process.
AFTER_MMAP_BYTES, AFTER_TRIM_BYTES = 32 << 20, 64 << 20


def _glibc(name: str):
    """The glibc function `name`, or None where the C library is not glibc or lacks it."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM, _MALLOPT = _glibc("malloc_trim"), _glibc("mallopt")   # looked up once
_lock = threading.Lock()
_depth = 0  # nesting of `large_buffers_reused` blocks


def glibc_malloc_trim():
    """glibc's `malloc_trim`, or None where the C library is not glibc."""
    return _MALLOC_TRIM


def free_pages_released() -> bool:
    """Give the heap's free pages back to the system (`malloc_trim(0)`); whether glibc released any."""
    trim = glibc_malloc_trim()
    return bool(trim(0)) if trim is not None else False


def _environment_bytes(name: str, fallback: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip().isdigit() else fallback


@contextlib.contextmanager
def large_buffers_reused(limit: int = REUSE_BYTES) -> Iterator[bool]:
    """Within the block, freed buffers of up to `limit` bytes stay in the heap for the next allocation instead of
    being unmapped (glibc's mmap and trim thresholds raised to `limit`); afterwards the thresholds go back (see
    AFTER_MMAP_BYTES) and the free pages are released. Nested blocks keep the outermost one's settings. Yields
    whether the settings took effect (False where the C library is not glibc)."""
    global _depth
    with _lock:
        outermost = _depth == 0
        _depth += 1
        applied = _MALLOPT is not None and (not outermost or (bool(_MALLOPT(M_MMAP_THRESHOLD, int(limit)))
                                                              and bool(_MALLOPT(M_TRIM_THRESHOLD, int(limit)))))
    try:
        yield applied
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _MALLOPT is not None:
                _MALLOPT(M_MMAP_THRESHOLD, _environment_bytes("MALLOC_MMAP_THRESHOLD_", AFTER_MMAP_BYTES))
                _MALLOPT(M_TRIM_THRESHOLD, _environment_bytes("MALLOC_TRIM_THRESHOLD_", AFTER_TRIM_BYTES))
                free_pages_released()

"""fastai callbacks of the training loop: returning freed heap memory to the system during CPU training, and
stopping a fit whose loss diverged.
"""
from __future__ import annotations

import torch
from fastai.callback.core import Callback

from helpers.heap import glibc_malloc_trim


def release_freed_memory(every: int = 20):
    """A fastai callback that returns freed heap memory to the OS every `every` training batches (CPU).

    Sparse embedding steps allocate and free buffers of about a megabyte every batch; glibc keeps the
    freed pages, fragmented, and the resident size grew by about 1 MB per batch at Electronics' size
    (3.2-3.9 GB peak for one epoch). `malloc_trim(0)` every 20 batches kept it flat (2.5 GB peak) with
    no slower epochs (benchmarks/scale.py). Does nothing where the C library is not glibc.
    """
    trim = glibc_malloc_trim()

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



class TrainingDiverged(ValueError):
    """A fit whose loss became NaN or infinite. `reason` keeps the one-line message (fastai rewrites the
    arguments of an exception raised in a callback, prefixing the callback's name on a line of its own)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StopOnNonFiniteLoss(Callback):
    """Stop a fit whose training loss became NaN or infinite, with a `TrainingDiverged` (a ValueError) that says why
    (`hint`); `helpers.training.fit` re-raises it with its one-line message.

    fastai's `TerminateOnNaNCallback` cancels the fit quietly and leaves the diverged weights in place, to be
    saved as a model; this raises instead, so no caller goes on with them. The check is accumulated on the
    device during the epoch and read once at its end (no synchronisation per batch)."""
    order = -5  # before the trackers: a diverged epoch is never kept as the best one

    def __init__(self, hint: str = ""):
        self.hint = hint

    def before_epoch(self):
        self.finite = None

    def after_batch(self):
        if self.training:
            ok = torch.isfinite(self.learn.loss.detach()).all()
            self.finite = ok if self.finite is None else self.finite & ok

    def after_epoch(self):
        if self.finite is not None and not bool(self.finite):
            raise TrainingDiverged(f"training diverged: the training loss became NaN or infinite in epoch {self.epoch + 1}"
                             f"{'; ' + self.hint if self.hint else ''}")

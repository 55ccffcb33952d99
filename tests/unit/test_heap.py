"""The C heap settings of a fit (helpers.heap): large freed buffers reused inside the block, glibc's thresholds
back afterwards, nesting keeps the outer block's settings. Each scenario runs in a fresh interpreter: whether a
buffer is mmapped also depends on the free chunks earlier allocations left in the heap."""
import json
import subprocess
import sys

import pandas as pd
import pytest

import helpers.training.learner as learner
from helpers import heap
from helpers.files import ROOT
from helpers.models.baselines import MostPopular
from helpers.training import fit

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or heap._glibc("mallinfo2") is None,
                                reason="glibc's malloc only (mallinfo2 says whether a buffer was mmapped)")

PRELUDE = """
import ctypes, json, numpy as np
from helpers import heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
info = heap._glibc("mallinfo2")
info.restype = MallInfo2

def mapped(n_bytes):
    before = info().hblks
    buf = np.ones(n_bytes, dtype=np.uint8)    # numpy allocates through malloc
    out = info().hblks > before
    del buf
    return out
"""


def scenario(code: str, env: dict | None = None) -> list:
    done = subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@glibc_only
def test_large_buffers_come_from_the_heap_inside_the_block_and_from_mmap_after_it():
    # 100 MiB: above glibc's own 32 MiB ceiling, below REUSE_BYTES; mapped before, not inside, mapped again after
    assert scenario("""
out = [mapped(100 << 20)]
with heap.large_buffers_reused() as applied:
    out += [applied, mapped(100 << 20)]
out += [mapped(200 << 20), mapped(1 << 20)]
print(json.dumps(out))
""") == [True, True, False, True, False]


@glibc_only
def test_nested_blocks_keep_the_outer_settings_until_the_outer_block_ends():
    assert scenario("""
with heap.large_buffers_reused():
    with heap.large_buffers_reused():
        pass
    inside = mapped(100 << 20)
print(json.dumps([inside, mapped(200 << 20)]))
""") == [False, True]


@glibc_only
def test_the_environment_threshold_is_what_comes_back():
    # helpers.pipeline gives its kernels MALLOC_MMAP_THRESHOLD_=131072: 1 MiB buffers are mmapped again afterwards
    code = """
with heap.large_buffers_reused():
    inside = mapped(1 << 20)
print(json.dumps([inside, mapped(2 << 20)]))
"""
    assert scenario(code, {"MALLOC_MMAP_THRESHOLD_": "131072"}) == [False, True]
    assert scenario(code) == [False, False]


def test_a_fit_runs_inside_the_block(monkeypatch):
    seen = []
    real = heap.large_buffers_reused

    def spy(*args, **kwargs):
        seen.append(True)
        return real(*args, **kwargs)
    monkeypatch.setattr(learner, "large_buffers_reused", spy)
    fit(MostPopular(), pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1]}))
    assert seen == [True]

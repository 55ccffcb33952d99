"""benchmarks/scale.py helpers that must not break other engineers' results (no timing here)."""
import importlib.util
import json

from helpers.files import ROOT


def load_scale():
    spec = importlib.util.spec_from_file_location("scale_benchmark", ROOT / "benchmarks" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_merge_keeps_other_keys(tmp_path):
    scale = load_scale()
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"accuracy": {"hr10": 0.9}}))
    scale.merge_json(path, "scale", {"rows": [1]})
    scale.merge_json(path, "scale", {"rows": [2]})
    assert json.loads(path.read_text()) == {"accuracy": {"hr10": 0.9}, "scale": {"rows": [2]}}


def test_peak_memory_is_positive_and_resettable():
    import mmap

    mem = load_scale().PeakMemory()
    mem.reset()
    base = mem.peak_gb()
    # an anonymous mapping, not the heap: after the earlier tests of this process the heap may hold
    # 200 MB of freed, still-resident pages, and a bytearray could be carved from them without the
    # resident size moving; a mapping's pages count when touched and are returned on close()
    block = mmap.mmap(-1, 200_000_000)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    before = mem.peak_gb()
    block.close()
    mem.reset()
    assert before >= base + 0.19, (base, before)
    if mem.resettable:
        assert mem.peak_gb() < before - 0.15, (before, mem.peak_gb())

"""benchmarks/scale.py helpers that must not break other engineers' results (no timing here)."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    mem = load_scale().PeakMemory()
    big = bytearray(200_000_000)  # noqa: F841  (200 MB touched below)
    big[::4096] = b"x" * len(big[::4096])
    before = mem.peak_gb()
    del big
    mem.reset()
    assert before > 0.2
    if mem.resettable:
        assert mem.peak_gb() < before

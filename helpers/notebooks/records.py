"""`reports/metrics.json`: every notebook records its key numbers under its own key, so tests and people
read values by name (`read_metrics()["evaluation"]["results"]["full"]["collabnn"]["ndcg@10"]`)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from helpers.files import ROOT, write_text

METRICS_PATH = ROOT / "reports" / "metrics.json"


def _plain(value):
    """JSON-ready copy: numpy scalars/arrays to Python, NaN/inf to None, keys to str."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path=None) -> dict:
    """The whole metrics file as a dict ({} when it does not exist yet)."""
    path = Path(path) if path else METRICS_PATH
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def record_metrics(section: str, values: dict, path=None) -> dict:
    """Replace `section` in metrics.json with `values` (other sections kept); atomic write; returns the file."""
    path = Path(path) if path else METRICS_PATH
    data = read_metrics(path)
    data[section] = _plain(values)
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


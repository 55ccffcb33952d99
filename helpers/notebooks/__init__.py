"""What one notebook needs and nothing else: parameter checks, the split and the models it reads
(load-or-train), tables and prose written from the numbers, and `reports/metrics.json`."""
from helpers.notebooks.records import METRICS_PATH, read_metrics, record_metrics

__all__ = ["METRICS_PATH", "read_metrics", "record_metrics"]

"""What evaluation.ipynb needs: its parameters checked, and the values it records in metrics.json.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.data.split import SPLITS
from helpers.evaluation import PROTOCOLS, EvaluationResult
from helpers.models import model_class

PARAMETER_DEFAULTS = {"DATASET": "ml-100k", "SPLIT": "auto", "MODELS": ["popular", "itemknn", "ease", "bias", "mf", "collabnn",
                                                                     "collabnn_factor", "collabnn_mlp", "mf_rating",
                                                                     "collabnn_rating"],
                      "K": 10, "PROTOCOLS": PROTOCOLS, "N_NEGATIVES": 99, "SEED": 0, "SAMPLE": 0,
                      "DATA_DIR": "data", "MODEL_DIR": "scratch/model", "OUTPUT_DIR": "scratch"}


def check_parameters(**params) -> dict:
    """The notebook's parameters, validated (unknown names and bad values raise ValueError naming the
    allowed ones); returns them as a dict."""
    unknown = sorted(set(params) - set(PARAMETER_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(PARAMETER_DEFAULTS)}")
    p = {**PARAMETER_DEFAULTS, **params}
    if p["SPLIT"] not in SPLITS:
        raise ValueError(f"SPLIT={p['SPLIT']!r}; choose one of {SPLITS}")
    if isinstance(p["PROTOCOLS"], str):
        p["PROTOCOLS"] = [p["PROTOCOLS"]]
    bad = [x for x in p["PROTOCOLS"] if x not in PROTOCOLS]
    if bad or not p["PROTOCOLS"]:
        raise ValueError(f"PROTOCOLS={p['PROTOCOLS']!r}; choose one or more of {PROTOCOLS}")
    if isinstance(p["MODELS"], str):
        p["MODELS"] = [p["MODELS"]]
    if not p["MODELS"]:
        raise ValueError("MODELS is empty; name at least one model, e.g. ['popular', 'ease']")
    for name in p["MODELS"]:
        model_class(name)
    for key, low in (("K", 1), ("N_NEGATIVES", 1), ("SAMPLE", 0), ("SEED", 0)):
        if not isinstance(p[key], (int, np.integer)) or p[key] < low:
            raise ValueError(f"{key}={p[key]!r}; expected an integer >= {low}")
    return p


def _records(frame: pd.DataFrame, keys: list[str]) -> dict:
    """Nested dict keys[0] -> keys[1] -> ... -> "metric@k" -> {value, ci_low, ci_high}."""
    out: dict = {}
    for row in frame.itertuples(index=False):
        node = out
        for key in keys:
            node = node.setdefault(str(getattr(row, key)), {})
        label = row.metric if pd.isna(row.k) else f"{row.metric}@{int(row.k)}"
        node[label] = {"value": row.value, "ci_low": row.ci_low, "ci_high": row.ci_high}
    return out


def report_values(result: EvaluationResult, paired: pd.DataFrame | None = None, over_k: pd.DataFrame | None = None,
                  by_group: dict | None = None) -> dict:
    """What evaluation.ipynb records in metrics.json: results[protocol][model]["hr@10"] = {value, ci_low,
    ci_high}, the paired comparisons, the curves over K and the breakdowns by user group."""
    out = {"config": result.config,
           "results": _records(result.summary, ["protocol", "model"]),
           "n_unknown": {f"{r.protocol}/{r.model}": int(r.n_unknown) for r in
                         result.summary.drop_duplicates(["protocol", "model"]).itertuples()}}
    if paired is not None and len(paired):
        out["paired"] = paired.to_dict("records")
    if over_k is not None and len(over_k):
        out["over_k"] = {p: {m: {metric: g.sort_values("k")["value"].tolist() for metric, g in mg.groupby("metric")}
                             for m, mg in pg.groupby("model", sort=False)} for p, pg in over_k.groupby("protocol")}
    for name, table in (by_group or {}).items():
        if table is not None and len(table):
            group_col = [c for c in table.columns if c not in ("model", "protocol", "metric", "k", "value",
                                                               "ci_low", "ci_high", "n_users")][0]
            out[f"by_{name}"] = _records(table, ["protocol", group_col, "model"])
    return out


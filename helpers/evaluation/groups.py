"""Metrics by user group (activity bucket, gender, ...), each with its bootstrap interval.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.evaluation.results import EvaluationResult
from helpers.evaluation.stats import bootstrap_ci


def metrics_by_group(result: EvaluationResult, user_groups: pd.Series, metrics=("hr", "ndcg"),
                     group_name: str = "group") -> pd.DataFrame:
    """Metrics per user group (activity bucket, gender, ...): tidy DataFrame model, protocol, metric, k,
    <group_name>, value, ci_low, ci_high, n_users. user_groups: group label indexed by user_id; rows of
    users without a label are left out."""
    groups = user_groups.copy()
    groups.index = groups.index.astype(str)
    per_row = result.per_row[result.per_row["metric"].isin(list(metrics))]
    labels = per_row["user_id"].map(groups)
    out = []
    n_boot, seed = result.config.get("n_boot", 1000), result.config.get("seed", 0)
    for keys, frame in per_row.assign(_group=labels).dropna(subset=["_group"]).groupby(
            ["model", "protocol", "metric", "_group"], sort=False, observed=True):
        name, protocol, metric, group = keys
        point, low, high = bootstrap_ci(frame["value"], frame["user_id"], n_boot=n_boot, seed=seed,
                                        statistic="rmse" if metric == "rmse" else "mean")
        out.append({"model": name, "protocol": protocol, "metric": metric, "k": frame["k"].iloc[0],
                    group_name: group, "value": point, "ci_low": low, "ci_high": high,
                    "n_users": frame["user_id"].nunique()})
    table = pd.DataFrame(out)
    if len(table) and isinstance(user_groups.dtype, pd.CategoricalDtype):
        table[group_name] = pd.Categorical(table[group_name], categories=user_groups.cat.categories, ordered=True)
        table = table.sort_values(group_name, kind="stable").reset_index(drop=True)  # model order kept
    return table


def user_activity_buckets(train: pd.DataFrame, edges=None) -> pd.Series:
    """Activity bucket of each training user (index user_id): "cold", "medium", "heavy" by the number of
    training interactions, split at the terciles unless `edges` = (a, b) gives the cuts (cold <= a <
    medium <= b < heavy). Ordered categorical; the cuts are in `.attrs["edges"]`."""
    counts = train.groupby(train["user_id"].astype(str)).size()
    if edges is None:
        edges = tuple(int(x) for x in np.quantile(counts.to_numpy(), [1 / 3, 2 / 3]))
    a, b = edges
    if not a < b:
        raise ValueError(f"activity edges must increase, got {edges}; every user may have the same count")
    labels = np.select([counts <= a, counts <= b], ["cold", "medium"], "heavy")
    out = pd.Series(pd.Categorical(labels, categories=["cold", "medium", "heavy"], ordered=True),
                    index=counts.index, name="activity")
    out.attrs["edges"] = (int(a), int(b))
    return out


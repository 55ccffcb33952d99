"""Metrics by user group (activity bucket, gender, ...), each with its bootstrap interval.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.evaluation.protocols import cold_item_ranking
from helpers.evaluation.results import EvaluationResult, interval_table
from helpers.evaluation.stats import bootstrap_ci
from helpers.metrics import ranking_metrics


def metrics_by_group(result: EvaluationResult, user_groups: pd.Series, metrics=("hr", "ndcg"),
                     group_name: str = "group") -> pd.DataFrame:
    """Metrics per user group (activity bucket, gender, ...): tidy DataFrame model, protocol, metric, k,
    <group_name>, value, ci_low, ci_high, n_users. user_groups: group label indexed by user_id; rows of
    users without a label are left out."""
    groups = user_groups.copy()
    groups.index = groups.index.astype(str)
    per_row = result.per_row[result.per_row["metric"].isin(list(metrics))]
    users = per_row["user_id"]
    if isinstance(users.dtype, pd.CategoricalDtype):  # one look-up per user, not per row
        labels = groups.reindex(users.cat.categories.astype(str)).to_numpy(dtype=object)[users.cat.codes.to_numpy()]
    else:
        labels = users.astype(str).map(groups).to_numpy(dtype=object)
    n_boot, seed = result.config.get("n_boot", 1000), result.config.get("seed", 0)
    frame = per_row.assign(_group=labels).dropna(subset=["_group"])
    table = interval_table(frame, ["model", "protocol", "metric", "_group"], n_boot=n_boot, seed=seed)
    if len(table):
        first_k = frame.groupby(["model", "protocol", "metric"], sort=False, observed=True)["k"].first()
        table.insert(3, "k", [first_k[(m, p, x)] for m, p, x in zip(table["model"], table["protocol"], table["metric"])])
        table = table.astype({"model": str, "protocol": str, "metric": str})
    table = table.rename(columns={"_group": group_name}).drop(columns="n_rows")
    if len(table) and isinstance(user_groups.dtype, pd.CategoricalDtype):
        table[group_name] = pd.Categorical(table[group_name], categories=user_groups.cat.categories, ordered=True)
        table = table.sort_values(group_name, kind="stable").reset_index(drop=True)  # model order kept
    return table


def user_activity_buckets(train: pd.DataFrame, edges=None, evaluation: pd.DataFrame | None = None) -> pd.Series:
    """Activity bucket of each training user (index user_id): "cold", "medium", "heavy" by the number of
    training interactions, split at the terciles unless `edges` = (a, b) gives the cuts (cold <= a <
    medium <= b < heavy). Ordered categorical; the cuts are in `.attrs["edges"]`.

    Where the terciles coincide (data where most users have one interaction: both are 1), the upper cut is
    moved to the next count that occurs, and with a single count there is a single bucket ("cold"). With
    `evaluation`, its users unknown to training get the bucket "new" (0 interactions)."""
    counts = train.groupby(train["user_id"].astype(str)).size()
    if edges is None:
        a, b = (int(x) for x in np.quantile(counts.to_numpy(), [1 / 3, 2 / 3]))
        if b <= a:
            above = counts[counts > a]
            b = int(above.min()) if len(above) else a
            if len(above) and (counts > b).sum() == 0:  # two counts only: cold <= a < medium
                b = int(above.max())
        edges = (a, b)
    else:
        a, b = edges
        if not a < b:
            raise ValueError(f"activity edges must increase, got {edges}; give (a, b) with a < b, or None for terciles")
    labels = np.select([counts <= a, counts <= b], ["cold", "medium"], "heavy")
    index = counts.index
    if evaluation is not None:
        new = pd.Index(pd.unique(evaluation["user_id"].astype(str).to_numpy())).difference(index)
        labels, index = np.concatenate([np.full(len(new), "new"), labels]), new.append(index)
    used = [c for c in ["new", "cold", "medium", "heavy"] if c in set(labels)]
    out = pd.Series(pd.Categorical(labels, categories=used, ordered=True), index=index, name="activity")
    out.attrs["edges"] = (int(a), int(b))
    return out


def user_warmth(train: pd.DataFrame, evaluation: pd.DataFrame) -> pd.Series:
    """"warm" or "cold" for each evaluation user (index user_id): whether they have training interactions."""
    users = pd.unique(evaluation["user_id"].astype(str).to_numpy())
    warm = pd.Index(users).isin(set(train["user_id"].astype(str)))
    return pd.Series(pd.Categorical(np.where(warm, "warm", "cold"), categories=["warm", "cold"], ordered=True),
                     index=users, name="users")


def cold_start_table(result: EvaluationResult, models: dict, train: pd.DataFrame, evaluation: pd.DataFrame,
                     k: int = 10, metrics=("hr", "ndcg")) -> pd.DataFrame:
    """Warm users, cold users and cold items apart: tidy model, protocol, metric, k, slice, value, ci_low,
    ci_high, n_users, n_rows. Warm and cold users: the sampled and full-ranking figures of `result` by
    `user_warmth`; cold items: `cold_item_ranking` (each held-out cold item among all the evaluation's cold
    items), for every model (those that cannot score unseen items get no hit)."""
    warmth = user_warmth(train, evaluation)
    parts = []
    by_users = metrics_by_group(result, warmth, metrics=metrics, group_name="slice")
    if len(by_users):
        by_users = by_users[by_users["k"] == k].copy()
        by_users["slice"] = by_users["slice"].astype(str) + " users"
        rows = result.per_row[result.per_row["metric"].isin(list(metrics)) & (result.per_row["k"] == k)]
        n_rows = rows.assign(slice=rows["user_id"].map(warmth).astype(str) + " users").groupby(
            ["model", "protocol", "metric", "slice"]).size().rename("n_rows").reset_index()
        parts.append(by_users.merge(n_rows, on=["model", "protocol", "metric", "slice"], how="left"))
    n_boot, seed = result.config.get("n_boot", 1000), result.config.get("seed", 0)
    for name, model in models.items():
        if model.task != "implicit":
            continue
        ranking = cold_item_ranking(model, train, evaluation)
        if len(ranking.user_ids) == 0:
            break
        values = ranking_metrics(ranking.positions, k, ranking.n_relevant)
        for metric in metrics:
            point, low, high = bootstrap_ci(pd.Series(values[metric]), pd.Series(ranking.user_ids), n_boot=n_boot,
                                            seed=seed)
            parts.append(pd.DataFrame([{"model": name, "protocol": "cold items", "metric": metric, "k": k,
                                        "slice": "cold items", "value": point, "ci_low": low, "ci_high": high,
                                        "n_users": len(np.unique(ranking.user_ids)), "n_rows": len(ranking.user_ids)}]))
    if not parts:
        return pd.DataFrame(columns=["model", "protocol", "metric", "k", "slice", "value", "ci_low", "ci_high",
                                     "n_users", "n_rows"])
    out = pd.concat(parts, ignore_index=True)
    order = {s: i for i, s in enumerate(["warm users", "cold users", "cold items"])}
    return out.sort_values(["slice", "protocol", "metric"], key=lambda c: c.map(order) if c.name == "slice" else c,
                           kind="stable").reset_index(drop=True)

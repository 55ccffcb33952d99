"""Measures of top-K lists: accuracy against the evaluation data, intra-list diversity, popularity and
long-tail share, calibration KL, group exposure and stereotype amplification, with bootstrap intervals.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import metrics
from helpers.evaluation.stats import bootstrap_mean_ci
from helpers.rerank.context import (
    CALIBRATION_ALPHA,
    RerankContext,
    candidate_lists,
    distribution,
    user_rows,
)


def kl_divergence(p: np.ndarray, q: np.ndarray, alpha: float = CALIBRATION_ALPHA) -> np.ndarray:
    """KL(p || q~) over the last axis with q~ = (1 - alpha) q + alpha p (Steck 2018); >= 0, 0 when p has no mass."""
    q_tilde = (1 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q_tilde), 0.0)
    return terms.sum(axis=-1)


def list_shares(items: np.ndarray, valid: np.ndarray, multi_hot: np.ndarray) -> np.ndarray:
    """Category share of each list: mean of p(c | i) over its valid items; [n_users, c]."""
    dist = distribution(multi_hot)[items] * valid[..., None]
    n = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    return dist.sum(axis=1) / n


def group_exposure_gap(shares: np.ndarray, history: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Per group g: the group-specific part of the exposure, (E_g - E) - (H_g - H), per category.

    shares: [n_users, c] category share of each user's list; history: [n_users, c] p(c | u);
    E_g / H_g: means over the users of group g, E / H: means over all users with a group. A
    recommender that only adds a popularity skew common to everyone has gap 0; a positive
    entry means the group gets more of that category than its histories' difference justifies.
    """
    known = groups != ""
    if not known.any():
        return {}
    base = shares[known].mean(axis=0) - history[known].mean(axis=0)
    return {g: (shares[groups == g].mean(axis=0) - history[groups == g].mean(axis=0)) - base
            for g in np.unique(groups[known])}


def relevance_positions(lists: pd.DataFrame, evaluation: pd.DataFrame, users) -> tuple[np.ndarray, np.ndarray]:
    """(positions, n_relevant) for `helpers.metrics` ranking functions, one row per user of `users`.

    positions: 0-based list positions (rank - 1) of the user's evaluation items, np.inf for those
    not in the list; n_relevant: the user's number of evaluation items (full-ranking protocol: the
    lists were ranked over the whole catalogue, so a relevant item outside the list is a miss).
    """
    users = pd.Index(np.asarray(users, dtype=str))
    ev = evaluation[["user_id", "item_id"]].astype(str).drop_duplicates()
    ev = ev[ev["user_id"].isin(users)]
    n_rel = ev.groupby("user_id").size().reindex(users, fill_value=0).to_numpy()
    hits = lists[["user_id", "item_id", "rank"]].astype({"user_id": str, "item_id": str}).merge(ev, on=["user_id", "item_id"])
    width = max(int(n_rel.max()) if len(n_rel) else 0, 1)
    pos = np.full((len(users), width), np.inf)
    if len(hits):
        row = users.get_indexer(hits["user_id"])
        hits = hits.assign(_row=row).sort_values(["_row", "rank"])
        slot = hits.groupby("_row").cumcount().to_numpy()
        pos[hits["_row"].to_numpy(), slot] = hits["rank"].to_numpy() - 1.0
    return pos, n_rel


def long_tail_items(context: RerankContext, head_share: float = 0.2) -> np.ndarray:
    """Boolean [n_items]: True for the long tail, i.e. outside the `head_share` most popular items."""
    n_head = int(round(head_share * context.n_items))
    order = np.argsort(-context.item_popularity, kind="stable")
    tail = np.ones(context.n_items, dtype=bool)
    tail[order[:n_head]] = False
    return tail


def list_measures(lists: pd.DataFrame, context: RerankContext, evaluation: pd.DataFrame | None = None,
                  k: int = 10, head_share: float = 0.2) -> pd.DataFrame:
    """Per user of `lists` (top-k by `rank`): hr, ndcg (in [0, 1], needs `evaluation`), ild
    (intra-list diversity of categories, in [0, 1]), avg_popularity (training interactions),
    long_tail_share (in [0, 1]), calibration_kl (>= 0), group. One row per user, index user_id."""
    top = lists[lists["rank"] <= k]
    mat = candidate_lists(top.assign(score=-top["rank"].to_numpy(dtype=np.float64)), context)
    valid, items = mat.valid, mat.items
    n = np.maximum(valid.sum(axis=1), 1)
    out = pd.DataFrame(index=pd.Index(mat.users, name="user_id"))
    if evaluation is not None:
        pos, n_rel = relevance_positions(top, evaluation, mat.users)
        out["hr"] = metrics.hit_rate_at_k(pos, k)
        out["ndcg"] = metrics.ndcg_at_k(pos, k, n_relevant=n_rel)
        out.loc[n_rel == 0, ["hr", "ndcg"]] = np.nan  # users without evaluation items do not count
    full = valid.all(axis=1)
    ild = np.full(len(items), np.nan)
    if full.any() and items.shape[1] >= 2:
        ild[full] = metrics.intra_list_diversity(items[full], context.item_categories)
    out["ild"] = ild
    out["avg_popularity"] = (context.item_popularity[items] * valid).sum(axis=1) / n
    out["long_tail_share"] = (long_tail_items(context, head_share)[items] & valid).sum(axis=1) / n
    history = user_rows(mat, context, context.user_history)
    kl = kl_divergence(history, list_shares(items, valid, context.item_categories))
    out["calibration_kl"] = np.where(history.sum(axis=1) > 0, kl, np.nan)
    idx = context.user_index(mat.users)
    out["group"] = np.where(idx >= 0, context.user_group[np.maximum(idx, 0)], "")
    return out


def exposure_by_group(lists: pd.DataFrame, context: RerankContext, k: int = 10) -> pd.DataFrame:
    """Per (group, fairness category): share in the top-k lists (exposure), share in the histories
    (history) and the group-specific gap (`group_exposure_gap`); long format."""
    top = lists[lists["rank"] <= k]
    mat = candidate_lists(top.assign(score=-top["rank"].to_numpy(dtype=np.float64)), context)
    idx = context.user_index(mat.users)
    groups = np.where(idx >= 0, context.user_group[np.maximum(idx, 0)], "").astype(object)
    shares = list_shares(mat.items, mat.valid, context.item_fair)
    history = user_rows(mat, context, context.user_fair_history)
    gap = group_exposure_gap(shares, history, groups)
    rows = []
    for g in gap:
        mask = groups == g
        rows.append(pd.DataFrame({"group": g, "category": context.fair_categories,
                                  "exposure": shares[mask].mean(axis=0), "history": history[mask].mean(axis=0),
                                  "gap": gap[g], "n_users": int(mask.sum())}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["group", "category", "exposure", "history", "gap", "n_users"])


def stereotype_amplification(exposure: pd.DataFrame) -> float:
    """Group-weighted total variation of the group-specific exposure gap, in [0, 1]; 0 = no group gets a
    category mix that departs from its histories more than everyone's does. From `exposure_by_group`."""
    if len(exposure) == 0:
        return float("nan")
    per_group = exposure.groupby("group").agg(tv=("gap", lambda g: 0.5 * np.abs(g).sum()), n=("n_users", "first"))
    return float((per_group["tv"] * per_group["n"]).sum() / per_group["n"].sum())


def list_coverage(lists: pd.DataFrame, context: RerankContext, k: int = 10) -> float:
    """Catalogue coverage of top-k lists, as the evaluation measures it (`metrics.catalogue_coverage` over the
    training catalogue, a model's n_items): the share of the items with a training interaction that are in at
    least one list. The context's catalogue also holds items seen only in evaluation, which no model trained
    on the training part can recommend, so they are left out of both counts."""
    idx = context.item_index(lists.loc[lists["rank"] <= k, "item_id"].to_numpy())
    idx = idx[context.item_popularity[idx] > 0]
    return metrics.catalogue_coverage(idx[None, :], max(context.n_training_items, 1))


PER_USER_MEASURES = ["hr", "ndcg", "ild", "avg_popularity", "long_tail_share", "calibration_kl"]


def summarise_lists(lists: pd.DataFrame, context: RerankContext, evaluation: pd.DataFrame | None = None,
                    k: int = 10, n_boot: int = 1000, seed: int = 0, head_share: float = 0.2,
                    per_user: pd.DataFrame | None = None) -> dict:
    """One dict of measures for a set of top-k lists: for each per-user measure its mean and 95%
    bootstrap interval (`<name>`, `<name>_low`, `<name>_high`), plus coverage (share of the catalogue
    in any list, in [0, 1]), stereotype amplification (in [0, 1]) and n_users (users judged on
    accuracy when `evaluation` is given). `per_user`: `list_measures` already computed for `lists`."""
    if per_user is None:
        per_user = list_measures(lists, context, evaluation, k, head_share)
    out: dict = {"n_users": int(per_user["hr"].notna().sum()) if "hr" in per_user else int(len(per_user))}
    for name in PER_USER_MEASURES:
        if name in per_user:
            out[name], out[f"{name}_low"], out[f"{name}_high"] = bootstrap_mean_ci(per_user[name], n_boot, seed=seed)
    out["coverage"] = list_coverage(lists, context, k)
    out["amplification"] = stereotype_amplification(exposure_by_group(lists, context, k))
    return out


"""Re-rankers of a model's candidate lists (user_id, item_id, score), each a weight in a stated range:
affinity, popularity, MMR (diversity), calibration (Steck 2018) and fairness (exposure gaps between
user groups); `rerank(candidates, context, method, weight)` dispatches by name.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.rerank.context import (
    RERANKERS,
    CandidateLists,
    RerankContext,
    candidate_lists,
    check_weight,
    distribution,
    order_by,
    reordered,
    user_rows,
)
from helpers.rerank.measures import group_exposure_gap, kl_divergence, list_shares


def rerank_affinity(candidates: pd.DataFrame, context: RerankContext, weight: float, **cols) -> pd.DataFrame:
    """Boost items matching the user's history: (1 - w) s' + w * affinity.

    affinity(u, i) = share of u's history in i's categories, in [0, 1] (a Comedy|Romance movie for
    a user whose history is 30% Comedy and 10% Romance gets 0.4). Weight in [0, 1].
    """
    w = check_weight("affinity", weight)
    lists = candidate_lists(candidates, context, **cols)
    history = user_rows(lists, context, context.user_history)
    affinity = np.einsum("uc,unc->un", history, context.item_categories[lists.items])
    value = (1 - w) * lists.finite_scores + w * affinity
    return reordered(candidates, lists, order_by(value, lists.valid), cols.get("rank_col", "rank"))


def popularity_prior(context: RerankContext) -> np.ndarray:
    """log(1 + popularity) / log(1 + max popularity) per catalogue item, in [0, 1]."""
    pop = np.log1p(context.item_popularity)
    return pop / pop.max() if pop.max() > 0 else pop


def rerank_popularity(candidates: pd.DataFrame, context: RerankContext, weight: float, **cols) -> pd.DataFrame:
    """Blend with item popularity: (1 - |w|) s' + w * log-popularity in [0, 1].

    w > 0 promotes popular items (often more accurate), w < 0 demotes them (de-bias, long tail);
    w = -1 ranks by least popular first. Weight in [-1, 1].
    """
    w = check_weight("popularity", weight)
    lists = candidate_lists(candidates, context, **cols)
    value = (1 - abs(w)) * lists.finite_scores + w * popularity_prior(context)[lists.items]
    return reordered(candidates, lists, order_by(value, lists.valid), cols.get("rank_col", "rank"))


def _greedy(lists: CandidateLists, steps: int | None, step_value, block: int) -> np.ndarray:
    """Batched greedy selection; returns the new order [n_users, n].

    For each block of users, `step_value(sl, state)` is called once per list position with the
    block's slice and a dict it may keep state in; it returns a [b, n] value (higher = pick) and
    the chosen positions are passed back through `state["picked"]`. After `steps` picks the
    rest follows in input order.
    """
    n_users, n = lists.rows.shape
    steps = n if steps is None else min(int(steps), n)
    priority = np.tile(np.arange(n, dtype=np.float64) + n, (n_users, 1))  # unpicked: input order, after picks
    for start in range(0, n_users, block):
        sl = slice(start, min(start + block, n_users))
        open_ = lists.valid[sl].copy()
        state: dict = {}
        ar = np.arange(open_.shape[0])
        for t in range(steps):
            value = np.where(open_, step_value(sl, state, t), -np.inf)
            pick = value.argmax(axis=1)
            live = open_[ar, pick]  # False when the user's list is exhausted
            priority[sl][ar[live], pick[live]] = t
            open_[ar[live], pick[live]] = False
            state["picked"], state["live"] = pick, live
            if not open_.any():
                break
    priority[~lists.valid] = np.inf
    return np.argsort(priority, axis=1, kind="stable")


def _similarity(lists: CandidateLists, context: RerankContext, sl: slice, similarity: str) -> np.ndarray:
    """Cosine similarity [b, n, n] between each user's candidates (categories or embeddings)."""
    if similarity == "category":
        v = context.item_categories
    elif similarity == "embedding":
        if context.item_embedding is None:
            raise ValueError("similarity='embedding' needs item embeddings; build_context(..., embeddings=...)")
        v = context.item_embedding
    else:
        raise ValueError(f"similarity must be 'category' or 'embedding', got {similarity!r}")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    unit = np.divide(v, norms, out=np.zeros_like(v, dtype=np.float32), where=norms > 0).astype(np.float32)
    x = unit[lists.items[sl]]
    return x @ x.transpose(0, 2, 1)


def rerank_mmr(candidates: pd.DataFrame, context: RerankContext, weight: float, k: int | None = None,
               similarity: str = "category", block: int = 512, **cols) -> pd.DataFrame:
    """Maximal marginal relevance (Carbonell & Goldstein 1998), greedy over the first k positions:

        next = argmax_i (1 - w) s'_i - w * max_{j chosen} sim(i, j)

    sim: cosine of category multi-hot vectors ("category") or of item embeddings ("embedding"),
    the same similarity `helpers.metrics.intra_list_diversity` measures. k=None orders the whole list.
    w = 1 picks the most different item each step (ties: the better-scored one). Weight in [0, 1].
    """
    w = check_weight("mmr", weight)
    lists = candidate_lists(candidates, context, **cols)
    scores = lists.finite_scores

    def step(sl, state, t):
        if t == 0:
            state["sim"] = _similarity(lists, context, sl, similarity)
            state["max_sim"] = np.full(state["sim"].shape[:2], -np.inf)  # nothing chosen yet
        else:
            live = np.flatnonzero(state["live"])
            got = state["sim"][live, state["picked"][live]]
            state["max_sim"][live] = np.maximum(state["max_sim"][live], got)
        redundancy = np.where(np.isfinite(state["max_sim"]), state["max_sim"], 0.0)
        return (1 - w) * scores[sl] - w * redundancy

    order = _greedy(lists, k, step, block)
    return reordered(candidates, lists, order, cols.get("rank_col", "rank"))


def rerank_calibration(candidates: pd.DataFrame, context: RerankContext, weight: float, k: int = 10,
                       block: int = 512, **cols) -> pd.DataFrame:
    """Calibrated recommendations (Steck, RecSys 2018), greedy over the first k positions:

        next = argmax_i (1 - w) s'_i - w * KL(p_u || q~(chosen + i))

    p_u: category distribution of the user's history; q(list): mean of p(c | i) over the list
    (each item spreads 1 over its categories). Users without a history keep their order. Weight in [0, 1].
    """
    w = check_weight("calibration", weight)
    lists = candidate_lists(candidates, context, **cols)
    history = user_rows(lists, context, context.user_history)
    dist = distribution(context.item_categories)
    scores = lists.finite_scores

    def step(sl, state, t):
        if t == 0:
            state["items"] = dist[lists.items[sl]]               # [b, n, c]
            state["sum"] = np.zeros((state["items"].shape[0], state["items"].shape[2]))
        else:
            ar = np.arange(len(state["picked"]))
            state["sum"] += state["items"][ar, state["picked"]] * state["live"][:, None]
        q = (state["sum"][:, None, :] + state["items"]) / (t + 1)
        return (1 - w) * scores[sl] - w * kl_divergence(history[sl][:, None, :], q)

    order = _greedy(lists, k, step, block)
    return reordered(candidates, lists, order, cols.get("rank_col", "rank"))


def rerank_fairness(candidates: pd.DataFrame, context: RerankContext, weight: float, k: int = 10,
                    n_iter: int = 30, step: float = 8.0, **cols) -> pd.DataFrame:
    """Exposure fairness across user groups (e.g. gender): remove a share `weight` of the
    group-specific exposure skew.

    The stereotype question of Wan et al. (WSDM 2020): do the top-k lists give a group (women)
    more of a category (items shown with a female model; Romance) than the group's histories show,
    beyond what everyone gets? `group_exposure_gap` measures that skew per (group, category) from the
    top-k lists. The re-ranker asks for the gap to shrink to (1 - weight) x the input's gap with one
    multiplier per (group, category), found by dual ascent: rank by s' - sum_c p(c | i) mu_g(c),
    re-measure the gap, mu_g += step / sqrt(t + 1) * (gap - target), `n_iter` times; the iterate closest to the
    target is returned. weight = 0: input order; 1: aim for no group-specific skew. Users without a
    group keep their order. Weight in [0, 1].
    """
    w = check_weight("fairness", weight)
    lists = candidate_lists(candidates, context, **cols)
    idx = context.user_index(lists.users)
    groups = np.where(idx >= 0, context.user_group[np.maximum(idx, 0)], "").astype(object)
    history = user_rows(lists, context, context.user_fair_history)
    dist = distribution(context.item_fair)[lists.items]  # [u, n, c]
    order = order_by(lists.scores, lists.valid)

    def gap_of(order):
        top = np.take_along_axis(lists.items, order[:, :k], axis=1)
        top_valid = np.take_along_axis(lists.valid, order[:, :k], axis=1)
        return group_exposure_gap(list_shares(top, top_valid, context.item_fair), history, groups)

    gap0 = gap_of(order)
    if w == 0 or not gap0:
        return reordered(candidates, lists, order, cols.get("rank_col", "rank"))
    target = {g: (1 - w) * v for g, v in gap0.items()}
    mu = {g: np.zeros_like(v) for g, v in gap0.items()}
    best, best_miss = order, sum(0.5 * np.abs(v - target[g]).sum() for g, v in gap0.items())
    for t in range(int(n_iter)):
        gap = gap_of(order)
        for g in mu:  # diminishing steps settle between orders instead of flipping back and forth
            mu[g] = mu[g] + step / np.sqrt(t + 1) * (gap[g] - target[g])
        penalty = np.zeros((len(groups), dist.shape[2]))
        for g, m in mu.items():
            penalty[groups == g] = m
        order = order_by(lists.finite_scores - np.einsum("unc,uc->un", dist, penalty), lists.valid)
        miss = sum(0.5 * np.abs(v - target[g]).sum() for g, v in gap_of(order).items())
        if miss < best_miss:
            best, best_miss = order, miss
    return reordered(candidates, lists, best, cols.get("rank_col", "rank"))


RERANK_FUNCTIONS = {"affinity": rerank_affinity, "popularity": rerank_popularity, "mmr": rerank_mmr,
                    "calibration": rerank_calibration, "fairness": rerank_fairness}


def rerank(candidates: pd.DataFrame, context: RerankContext, method: str, weight: float, **params) -> pd.DataFrame:
    """Dispatch by name (see RERANKERS); `params` go to the re-ranker (k, similarity, n_iter, block)."""
    if method not in RERANK_FUNCTIONS:
        raise ValueError(f"unknown re-ranker {method!r}; choose one of {RERANKERS}")
    return RERANK_FUNCTIONS[method](candidates, context, weight, **params)


"""Re-ranking: re-order each user's candidate list, and the list-level measures that judge it.

A candidate list is a DataFrame with one row per (user, item): `user_id, item_id, score[, rank]`
(what `Recommender.recommend(users, k=N)` returns). Every re-ranker is a pure function

    rerank_<name>(candidates, context, weight, ...) -> DataFrame

returning the same rows (nothing invented, nothing lost, every other column kept) re-ordered per
user, with `rank` renumbered 1..n; `weight=0` returns the input order. The input is never modified.
`context` (`build_context`) holds what the re-rankers need besides the scores: item categories,
popularity, each user's history category distribution, user groups, item embeddings.

| name          | what it does                                                        | weight   |
|---------------|---------------------------------------------------------------------|----------|
| "affinity"    | boost items whose categories fill the user's own history            | [0, 1]   |
| "popularity"  | blend with log-popularity: > 0 promotes popular, < 0 the long tail   | [-1, 1]  |
| "mmr"         | maximal marginal relevance, similarity of categories or embeddings  | [0, 1]   |
| "calibration" | Steck (RecSys 2018): list category mix close to the history (KL)    | [0, 1]   |
| "fairness"    | remove the group-specific (e.g. gender) part of category exposure   | [0, 1]   |

Blends work on per-user min-max normalised scores s' in [0, 1]: `(1 - w) * s' + w * bonus`.
Greedy re-rankers (mmr, calibration) run for all users at once, one list position per step, in
blocks of users (`block` bounds the [users, N, N] memory). `rescore` + `two_stage_recommend` are the
two-stage pipeline: a cheap retriever's top N, re-scored by another model.

List measures specific to re-ranking live here (calibration KL, long-tail share, exposure by group,
stereotype amplification); HR, NDCG, coverage, intra-list diversity and popularity come from
`helpers.metrics`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from helpers import metrics
from helpers.recommender import Recommender, encode_ids

CALIBRATION_ALPHA = 0.01  # Steck 2018: q~ = (1 - alpha) q + alpha p keeps KL finite
RERANKERS = ["affinity", "popularity", "mmr", "calibration", "fairness"]
WEIGHT_RANGES = {"affinity": (0.0, 1.0), "popularity": (-1.0, 1.0), "mmr": (0.0, 1.0),
                 "calibration": (0.0, 1.0), "fairness": (0.0, 1.0)}


# --------------------------------------------------------------------------- context
@dataclass(frozen=True)
class RerankContext:
    """Side information for re-ranking and list measures, all indexed by position in `item_ids` / `user_ids`."""

    item_ids: np.ndarray            # str [n_items], sorted
    categories: list                # names of the columns of `item_categories`
    item_categories: np.ndarray     # float32 [n_items, n_categories], multi-hot (1 per category of the item)
    item_popularity: np.ndarray     # float64 [n_items], training interactions per item
    user_ids: np.ndarray            # str [n_users], sorted: users with side information or a history
    user_history: np.ndarray        # float64 [n_users, n_categories], p(c | u), rows sum to 1 (0 = no history)
    user_group: np.ndarray          # object [n_users], e.g. "F" / "M"; "" where unknown
    fair_categories: list           # names of the columns of `item_fair`
    item_fair: np.ndarray           # float32 [n_items, n_fair], multi-hot of the fairness attribute
    user_fair_history: np.ndarray   # float64 [n_users, n_fair], p(c | u) of the fairness attribute
    item_embedding: np.ndarray | None = None  # float32 [n_items, d] unit rows (zero rows = unknown)
    item_title: np.ndarray | None = None      # str [n_items] or None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_index(self, item_ids) -> np.ndarray:
        """Positions of raw item ids; raises with the unknown ids named."""
        idx = encode_ids(item_ids, self.item_ids)
        if (idx < 0).any():
            bad = pd.unique(np.asarray(item_ids).astype(str)[idx < 0])[:5]
            raise ValueError(f"{int((idx < 0).sum())} candidate item(s) are not in the context catalogue "
                             f"(e.g. {list(bad)}); build the context from the same train/items tables")
        return idx

    def user_index(self, user_ids) -> np.ndarray:
        """Positions of raw user ids; -1 for users without a history or side information."""
        return encode_ids(user_ids, self.user_ids)


def _distribution(multi_hot: np.ndarray) -> np.ndarray:
    """Rows of a multi-hot matrix as distributions p(c | i): a movie in 3 genres gives 1/3 to each."""
    total = multi_hot.sum(axis=1, keepdims=True)
    return np.divide(multi_hot, total, out=np.zeros_like(multi_hot, dtype=np.float64), where=total > 0)


def build_context(train: pd.DataFrame, items: pd.DataFrame | None = None, users: pd.DataFrame | None = None,
                  *, user_col: str = "user_id", item_col: str = "item_id", rating_col: str = "rating",
                  category_col: str = "item_category", group_col: str | None = "user_gender",
                  fair_col: str | None = None, title_col: str | None = "item_title", sep: str = "|",
                  history_weight: str = "uniform", embeddings: pd.DataFrame | None = None) -> RerankContext:
    """Everything the re-rankers and list measures need, from the training interactions.

    train: interactions (user, item[, rating][, category][, group]); its rows form the history.
    items: catalogue table (item_col, category_col[, fair_col][, title_col]); default: the item
        columns of `train`. Pass train + evaluation items so every candidate has its categories.
    users: user table (user_col, group_col); default: the user columns of `train`.
    fair_col: item attribute whose exposure the fairness re-ranker balances across `group_col`
        (Electronics: "model_attr", the gender shown in the product image); default `category_col`.
    history_weight: "uniform" (each history item counts once) or "rating" (weighted by rating).
    embeddings: DataFrame indexed by item id, one row per item (e.g. a model's item embeddings).
    """
    if history_weight not in ("uniform", "rating"):
        raise ValueError(f"history_weight must be 'uniform' or 'rating', got {history_weight!r}")
    fair_col = fair_col or category_col
    for col in (user_col, item_col):
        if col not in train.columns:
            raise ValueError(f"train has no column '{col}'; found {list(train.columns)}")
    items = train if items is None else items
    for col in (item_col, category_col, fair_col):
        if col not in items.columns:
            raise ValueError(f"items table has no column '{col}'; found {list(items.columns)}; "
                             f"pass items= with it or name it with category_col= / fair_col=")
    keep = [c for c in dict.fromkeys([item_col, category_col, fair_col, title_col]) if c and c in items.columns]
    catalogue = items[keep].astype({item_col: str}).drop_duplicates(item_col)
    item_ids = np.unique(np.concatenate([catalogue[item_col].to_numpy(dtype=str),
                                         train[item_col].astype(str).to_numpy()]))
    catalogue = catalogue.set_index(item_col).reindex(item_ids)
    cat_hot, cat_names = metrics.category_vectors(catalogue[category_col].to_numpy(), sep)
    cat_hot = np.array(cat_hot)  # writable copy (pandas may hand back a read-only view)
    fair_hot, fair_names = (cat_hot, cat_names) if fair_col == category_col else \
        metrics.category_vectors(catalogue[fair_col].to_numpy(), sep)
    fair_hot = np.array(fair_hot)

    users = train if users is None else users
    user_ids = np.unique(np.concatenate([train[user_col].astype(str).to_numpy(),
                                         users[user_col].astype(str).to_numpy()]))
    u = encode_ids(train[user_col].astype(str).to_numpy(), user_ids)
    i = encode_ids(train[item_col].astype(str).to_numpy(), item_ids)
    w = (train[rating_col].to_numpy(dtype=np.float64) if history_weight == "rating" else np.ones(len(train)))
    history = sp.csr_matrix((w, (u, i)), shape=(len(user_ids), len(item_ids)))
    total = np.asarray(history.sum(axis=1)).ravel()
    norm = sp.diags(np.divide(1.0, total, out=np.zeros_like(total), where=total > 0))
    user_history = np.asarray((norm @ history) @ _distribution(cat_hot))
    user_fair = user_history if fair_col == category_col else np.asarray((norm @ history) @ _distribution(fair_hot))

    group = np.full(len(user_ids), "", dtype=object)
    if group_col and group_col in users.columns:
        g = users[[user_col, group_col]].astype({user_col: str}).drop_duplicates(user_col)
        known = g[group_col].notna().to_numpy()
        group[encode_ids(g[user_col].to_numpy()[known], user_ids)] = g[group_col].to_numpy()[known].astype(str)

    emb = None
    if embeddings is not None:
        e = embeddings.set_axis(embeddings.index.astype(str)).reindex(item_ids).to_numpy(dtype=np.float32)
        e = np.nan_to_num(e)
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        emb = np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)
    titles = (catalogue[title_col].astype("string").fillna("").to_numpy(dtype=str)
              if title_col and title_col in catalogue.columns else None)
    return RerankContext(item_ids=item_ids, categories=cat_names, item_categories=cat_hot,
                         item_popularity=np.bincount(i, minlength=len(item_ids)).astype(np.float64),
                         user_ids=user_ids, user_history=user_history, user_group=group,
                         fair_categories=fair_names, item_fair=fair_hot, user_fair_history=user_fair,
                         item_embedding=emb, item_title=titles)


# --------------------------------------------------------------------------- candidates <-> matrices
@dataclass(frozen=True)
class _Lists:
    """Candidate lists as [n_users, n] matrices in input order (best first); padding: row -1."""

    users: np.ndarray   # str [n_users], in order of first appearance
    rows: np.ndarray    # int64 [n_users, n]: row position in the candidates DataFrame, -1 = padding
    items: np.ndarray   # int64 [n_users, n]: item position in the context, 0 at padding
    scores: np.ndarray  # float64 [n_users, n]: normalised score s' in [0, 1], -inf at padding

    @property
    def valid(self) -> np.ndarray:
        return self.rows >= 0

    @property
    def finite_scores(self) -> np.ndarray:
        """s' with 0 at padding (for arithmetic; the greedy loop masks padding itself)."""
        return np.where(self.valid, self.scores, 0.0)


def _as_lists(candidates: pd.DataFrame, context: RerankContext, user_col="user_id", item_col="item_id",
              score_col="score", rank_col="rank") -> _Lists:
    for col in (user_col, item_col, score_col):
        if col not in candidates.columns:
            raise ValueError(f"candidates have no column '{col}'; found {list(candidates.columns)}")
    score = candidates[score_col].to_numpy(dtype=np.float64)
    if np.isnan(score).any():
        raise ValueError(f"{int(np.isnan(score).sum())} candidate score(s) are NaN; drop or fill them first")
    user_code, users = pd.factorize(candidates[user_col].astype(str))
    # input order within a user: by rank when given, else by score (best first); ties keep row order
    key = candidates[rank_col].to_numpy(dtype=np.float64) if rank_col in candidates.columns else -score
    order = np.lexsort((np.arange(len(candidates)), key, user_code))
    counts = np.bincount(user_code, minlength=len(users))
    width = int(counts.max()) if len(counts) else 0
    slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = np.full((len(users), width), -1, dtype=np.int64)
    rows[user_code[order], slot] = order
    valid = rows >= 0
    item_idx = context.item_index(candidates[item_col].to_numpy())
    items = np.where(valid, item_idx[np.maximum(rows, 0)], 0)
    raw = np.where(valid, score[np.maximum(rows, 0)], np.nan)
    finite = np.where(np.isfinite(raw), raw, np.nan)
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanmin(finite, axis=1, keepdims=True), np.nanmax(finite, axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    norm = np.clip(np.nan_to_num((raw - lo) / span, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    norm = np.where(hi > lo, norm, np.where(np.isfinite(raw), 1.0, 0.0))
    return _Lists(users=np.asarray(users, dtype=str), rows=rows, items=items,
                  scores=np.where(valid, norm, -np.inf))


def _reordered(candidates: pd.DataFrame, lists: _Lists, order: np.ndarray, rank_col="rank") -> pd.DataFrame:
    """The candidates' rows in `order` (positions into each user's list), rank renumbered 1..n."""
    rows = np.take_along_axis(lists.rows, order, axis=1)
    flat = rows[rows >= 0]
    out = candidates.iloc[flat].reset_index(drop=True)
    counts = (rows >= 0).sum(axis=1)
    out[rank_col] = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    return out


def _order_by(value: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Positions sorted by `value` (best first); ties keep the input order; padding last."""
    return np.argsort(np.where(valid, -value, np.inf), axis=1, kind="stable")


def check_weight(name: str, weight: float) -> float:
    """`weight` as a float, or a ValueError naming the allowed range of re-ranker `name`."""
    lo, hi = WEIGHT_RANGES[name]
    if not lo <= float(weight) <= hi:
        raise ValueError(f"{name} weight must be in [{lo}, {hi}], got {weight}")
    return float(weight)


def _user_rows(lists: _Lists, context: RerankContext, table: np.ndarray) -> np.ndarray:
    """Rows of a per-user context table for the list users; zeros for users the context does not know."""
    idx = context.user_index(lists.users)
    out = np.zeros((len(idx), table.shape[1]), dtype=np.float64)
    out[idx >= 0] = table[idx[idx >= 0]]
    return out


# --------------------------------------------------------------------------- score blends
def rerank_affinity(candidates: pd.DataFrame, context: RerankContext, weight: float, **cols) -> pd.DataFrame:
    """Boost items matching the user's history: (1 - w) s' + w * affinity.

    affinity(u, i) = share of u's history in i's categories, in [0, 1] (a Comedy|Romance movie for
    a user whose history is 30% Comedy and 10% Romance gets 0.4). Weight in [0, 1].
    """
    w = check_weight("affinity", weight)
    lists = _as_lists(candidates, context, **cols)
    history = _user_rows(lists, context, context.user_history)
    affinity = np.einsum("uc,unc->un", history, context.item_categories[lists.items])
    value = (1 - w) * lists.finite_scores + w * affinity
    return _reordered(candidates, lists, _order_by(value, lists.valid), cols.get("rank_col", "rank"))


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
    lists = _as_lists(candidates, context, **cols)
    value = (1 - abs(w)) * lists.finite_scores + w * popularity_prior(context)[lists.items]
    return _reordered(candidates, lists, _order_by(value, lists.valid), cols.get("rank_col", "rank"))


# --------------------------------------------------------------------------- greedy re-rankers
def _greedy(lists: _Lists, steps: int | None, step_value, block: int) -> np.ndarray:
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


def _similarity(lists: _Lists, context: RerankContext, sl: slice, similarity: str) -> np.ndarray:
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
    lists = _as_lists(candidates, context, **cols)
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
    return _reordered(candidates, lists, order, cols.get("rank_col", "rank"))


def kl_divergence(p: np.ndarray, q: np.ndarray, alpha: float = CALIBRATION_ALPHA) -> np.ndarray:
    """KL(p || q~) over the last axis with q~ = (1 - alpha) q + alpha p (Steck 2018); >= 0, 0 when p has no mass."""
    q_tilde = (1 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q_tilde), 0.0)
    return terms.sum(axis=-1)


def rerank_calibration(candidates: pd.DataFrame, context: RerankContext, weight: float, k: int = 10,
                       block: int = 512, **cols) -> pd.DataFrame:
    """Calibrated recommendations (Steck, RecSys 2018), greedy over the first k positions:

        next = argmax_i (1 - w) s'_i - w * KL(p_u || q~(chosen + i))

    p_u: category distribution of the user's history; q(list): mean of p(c | i) over the list
    (each item spreads 1 over its categories). Users without a history keep their order. Weight in [0, 1].
    """
    w = check_weight("calibration", weight)
    lists = _as_lists(candidates, context, **cols)
    history = _user_rows(lists, context, context.user_history)
    dist = _distribution(context.item_categories)
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
    return _reordered(candidates, lists, order, cols.get("rank_col", "rank"))


# --------------------------------------------------------------------------- exposure fairness
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


def _list_shares(items: np.ndarray, valid: np.ndarray, multi_hot: np.ndarray) -> np.ndarray:
    """Category share of each list: mean of p(c | i) over its valid items; [n_users, c]."""
    dist = _distribution(multi_hot)[items] * valid[..., None]
    n = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    return dist.sum(axis=1) / n


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
    lists = _as_lists(candidates, context, **cols)
    idx = context.user_index(lists.users)
    groups = np.where(idx >= 0, context.user_group[np.maximum(idx, 0)], "").astype(object)
    history = _user_rows(lists, context, context.user_fair_history)
    dist = _distribution(context.item_fair)[lists.items]  # [u, n, c]
    order = _order_by(lists.scores, lists.valid)

    def gap_of(order):
        top = np.take_along_axis(lists.items, order[:, :k], axis=1)
        top_valid = np.take_along_axis(lists.valid, order[:, :k], axis=1)
        return group_exposure_gap(_list_shares(top, top_valid, context.item_fair), history, groups)

    gap0 = gap_of(order)
    if w == 0 or not gap0:
        return _reordered(candidates, lists, order, cols.get("rank_col", "rank"))
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
        order = _order_by(lists.finite_scores - np.einsum("unc,uc->un", dist, penalty), lists.valid)
        miss = sum(0.5 * np.abs(v - target[g]).sum() for g, v in gap_of(order).items())
        if miss < best_miss:
            best, best_miss = order, miss
    return _reordered(candidates, lists, best, cols.get("rank_col", "rank"))


RERANK_FUNCTIONS = {"affinity": rerank_affinity, "popularity": rerank_popularity, "mmr": rerank_mmr,
                    "calibration": rerank_calibration, "fairness": rerank_fairness}


def rerank(candidates: pd.DataFrame, context: RerankContext, method: str, weight: float, **params) -> pd.DataFrame:
    """Dispatch by name (see RERANKERS); `params` go to the re-ranker (k, similarity, n_iter, block)."""
    if method not in RERANK_FUNCTIONS:
        raise ValueError(f"unknown re-ranker {method!r}; choose one of {RERANKERS}")
    return RERANK_FUNCTIONS[method](candidates, context, weight, **params)


# --------------------------------------------------------------------------- two-stage
def rescore(candidates: pd.DataFrame, model: Recommender, score_col: str = "score",
            rank_col: str = "rank") -> pd.DataFrame:
    """The candidates re-scored by `model` and re-ordered per user (the second stage of a two-stage
    recommender). The first stage's score is kept in `retrieval_score`; pairs unknown to the model
    go last (score -inf)."""
    u = model.user_index(candidates["user_id"].to_numpy())
    i = model.item_index(candidates["item_id"].to_numpy())
    known = (u >= 0) & (i >= 0)
    new = np.full(len(candidates), -np.inf)
    if known.any():
        new[known] = model.score_pairs(u[known], i[known])
    out = candidates.assign(retrieval_score=candidates[score_col], **{score_col: new})
    user_code = pd.factorize(out["user_id"])[0]
    order = np.lexsort((np.arange(len(out)), -new, user_code))
    out = out.iloc[order].reset_index(drop=True)
    out[rank_col] = out.groupby("user_id", sort=False).cumcount() + 1
    return out


def two_stage_recommend(retriever: Recommender, ranker: Recommender, users, n_candidates: int = 100,
                        k: int = 10, exclude="train") -> tuple[pd.DataFrame, dict]:
    """Top k per user from `retriever`'s top `n_candidates` re-scored by `ranker`.

    Returns (lists with user_id, item_id, rank, score, retrieval_score; timings in seconds
    {"retrieve_s", "rescore_s", "total_s"}).
    """
    t0 = time.perf_counter()
    pool = retriever.recommend(users, k=n_candidates, exclude=exclude)
    t1 = time.perf_counter()
    lists = rescore(pool, ranker)
    lists = lists[lists["rank"] <= k].reset_index(drop=True)
    t2 = time.perf_counter()
    return lists, {"retrieve_s": t1 - t0, "rescore_s": t2 - t1, "total_s": t2 - t0}


def timed_recommend(model: Recommender, users, k: int = 10, exclude="train") -> tuple[pd.DataFrame, dict]:
    """`model.recommend(users, k)` and its time in seconds {"total_s"} (full ranking over all items)."""
    t0 = time.perf_counter()
    out = model.recommend(users, k=k, exclude=exclude)
    return out, {"total_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- list measures
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
    mat = _as_lists(top.assign(score=-top["rank"].to_numpy(dtype=np.float64)), context)
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
    history = _user_rows(mat, context, context.user_history)
    kl = kl_divergence(history, _list_shares(items, valid, context.item_categories))
    out["calibration_kl"] = np.where(history.sum(axis=1) > 0, kl, np.nan)
    idx = context.user_index(mat.users)
    out["group"] = np.where(idx >= 0, context.user_group[np.maximum(idx, 0)], "")
    return out


def exposure_by_group(lists: pd.DataFrame, context: RerankContext, k: int = 10) -> pd.DataFrame:
    """Per (group, fairness category): share in the top-k lists (exposure), share in the histories
    (history) and the group-specific gap (`group_exposure_gap`); long format."""
    top = lists[lists["rank"] <= k]
    mat = _as_lists(top.assign(score=-top["rank"].to_numpy(dtype=np.float64)), context)
    idx = context.user_index(mat.users)
    groups = np.where(idx >= 0, context.user_group[np.maximum(idx, 0)], "").astype(object)
    shares = _list_shares(mat.items, mat.valid, context.item_fair)
    history = _user_rows(mat, context, context.user_fair_history)
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


def bootstrap_mean_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) over users with `helpers.evaluate.bootstrap_ci`, NaN values (users a measure
    does not apply to, e.g. no history) dropped first."""
    from helpers.evaluate import bootstrap_ci

    v = np.asarray(values, dtype=np.float64)
    return bootstrap_ci(v[np.isfinite(v)], n_boot=n_boot, level=level, seed=seed)


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
    top = lists[lists["rank"] <= k]
    out["coverage"] = metrics.catalogue_coverage(context.item_index(top["item_id"].to_numpy())[None, :],
                                                 context.n_items)
    out["amplification"] = stereotype_amplification(exposure_by_group(lists, context, k))
    return out

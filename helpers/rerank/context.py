"""What the re-rankers know besides the candidate lists: item categories, popularity, user groups and
embeddings (`RerankContext`, `build_context`), and the vectorised plumbing every re-ranker shares.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from helpers import metrics
from helpers.data.interactions import encode_ids

CALIBRATION_ALPHA = 0.01  # Steck 2018: q~ = (1 - alpha) q + alpha p keeps KL finite


RERANKERS = ["affinity", "popularity", "mmr", "calibration", "fairness"]


WEIGHT_RANGES = {"affinity": (0.0, 1.0), "popularity": (-1.0, 1.0), "mmr": (0.0, 1.0),
                 "calibration": (0.0, 1.0), "fairness": (0.0, 1.0)}


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

    @property
    def n_training_items(self) -> int:
        """Items with at least one training interaction: the catalogue coverage is a share of (as a model's n_items)."""
        return int((self.item_popularity > 0).sum())

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


def distribution(multi_hot: np.ndarray) -> np.ndarray:
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
    user_history = np.asarray((norm @ history) @ distribution(cat_hot))
    user_fair = user_history if fair_col == category_col else np.asarray((norm @ history) @ distribution(fair_hot))

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


@dataclass(frozen=True)
class CandidateLists:
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


def candidate_lists(candidates: pd.DataFrame, context: RerankContext, user_col="user_id", item_col="item_id",
              score_col="score", rank_col="rank") -> CandidateLists:
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
    return CandidateLists(users=np.asarray(users, dtype=str), rows=rows, items=items,
                  scores=np.where(valid, norm, -np.inf))


def reordered(candidates: pd.DataFrame, lists: CandidateLists, order: np.ndarray, rank_col="rank") -> pd.DataFrame:
    """The candidates' rows in `order` (positions into each user's list), rank renumbered 1..n."""
    rows = np.take_along_axis(lists.rows, order, axis=1)
    flat = rows[rows >= 0]
    out = candidates.iloc[flat].reset_index(drop=True)
    counts = (rows >= 0).sum(axis=1)
    out[rank_col] = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    return out


def order_by(value: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Positions sorted by `value` (best first); ties keep the input order; padding last."""
    return np.argsort(np.where(valid, -value, np.inf), axis=1, kind="stable")


def check_weight(name: str, weight: float) -> float:
    """`weight` as a float, or a ValueError naming the allowed range of re-ranker `name`."""
    lo, hi = WEIGHT_RANGES[name]
    if not lo <= float(weight) <= hi:
        raise ValueError(f"{name} weight must be in [{lo}, {hi}], got {weight}")
    return float(weight)


def user_rows(lists: CandidateLists, context: RerankContext, table: np.ndarray) -> np.ndarray:
    """Rows of a per-user context table for the list users; zeros for users the context does not know."""
    idx = context.user_index(lists.users)
    out = np.zeros((len(idx), table.shape[1]), dtype=np.float64)
    out[idx >= 0] = table[idx[idx >= 0]]
    return out


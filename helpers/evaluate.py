"""Evaluation protocols. Every protocol takes any `Recommender` (see helpers.recommender).

Sampled protocol (NCF, He et al. 2017): each evaluation interaction is ranked against
`n_negatives` items the user never interacted with (in train or evaluation), drawn once with a seed
and shared by every model compared (`sampled_candidates`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.recommender import Recommender, encode_ids


def sampled_candidates(train: pd.DataFrame, evaluation: pd.DataFrame, n_negatives: int = 99,
                       seed: int = 0) -> pd.DataFrame:
    """Candidate sets: one row per evaluation interaction, columns user_id, item_id (the positive),
    negatives (array of `n_negatives` item ids the user never interacted with, drawn uniformly
    from the training items without replacement, seeded). Rows whose user or item is not in train are
    dropped (the count is in `attrs["dropped_unknown"]`).
    """
    items = np.unique(train["item_id"].astype(str).to_numpy())
    users = np.unique(train["user_id"].astype(str).to_numpy())
    ev = evaluation[["user_id", "item_id"]].astype(str)
    known = (encode_ids(ev["user_id"], users) >= 0) & (encode_ids(ev["item_id"], items) >= 0)
    ev = ev[known].reset_index(drop=True)
    n_items = len(items)
    if n_negatives > n_items - 1:
        raise ValueError(f"n_negatives={n_negatives} but only {n_items} training items; lower n_negatives")
    # every item each user touched, as a sorted set of (user, item) codes
    both = pd.concat([train[["user_id", "item_id"]].astype(str), ev])
    u_all = encode_ids(both["user_id"], users)
    i_all = encode_ids(both["item_id"], items)
    ok = i_all >= 0
    touched = np.unique(u_all[ok] * n_items + i_all[ok])
    rng = np.random.default_rng(seed)
    u = encode_ids(ev["user_id"], users)
    negs = rng.integers(0, n_items, size=(len(ev), n_negatives))
    # resample collisions (seen items or duplicates within a row) until none is left; vectorised
    for _ in range(1000):
        bad = np.isin(u[:, None] * n_items + negs, touched)
        s = np.sort(negs, axis=1)
        dup_sorted = np.zeros_like(bad)
        dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
        if dup_sorted.any():
            order = np.argsort(negs, axis=1, kind="stable")
            dup = np.zeros_like(bad)
            np.put_along_axis(dup, order, dup_sorted, axis=1)
            bad |= dup
        if not bad.any():
            break
        negs[bad] = rng.integers(0, n_items, size=int(bad.sum()))
    else:
        raise ValueError("could not draw enough unseen negatives; some users have seen almost every item")
    out = ev.copy()
    out["negatives"] = list(items[negs])
    out.attrs["dropped_unknown"] = int((~known).sum())
    out.attrs["seed"] = seed
    return out


def sampled_ranks(model: Recommender, candidates: pd.DataFrame) -> np.ndarray:
    """0-based rank of each positive among its candidates; ties count against the positive
    (rank = number of negatives scoring >= the positive). In [0, n_negatives]."""
    n = len(candidates)
    negs = np.stack(candidates["negatives"].to_numpy()) if n else np.zeros((0, 0), dtype=str)
    u = model.user_index(candidates["user_id"].to_numpy())
    pos = model.item_index(candidates["item_id"].to_numpy())
    neg = model.item_index(negs.ravel()).reshape(negs.shape)
    if (u < 0).any() or (pos < 0).any() or (neg < 0).any():
        raise ValueError("candidates contain users or items unknown to the model; build them from the same train set")
    items = np.concatenate([pos[:, None], neg], axis=1)
    scores = model.score_pairs(np.repeat(u, items.shape[1]), items.ravel()).reshape(items.shape)
    return (scores[:, 1:] >= scores[:, :1]).sum(axis=1)


def hit_rate_from_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-row hit (1.0 if the positive is in the top k, else 0.0); mean is HR@k in [0, 1]."""
    return (np.asarray(ranks) < k).astype(np.float64)


def ndcg_from_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-row NDCG@k for one relevant item: 1/log2(rank+2) if rank < k else 0; in [0, 1]."""
    ranks = np.asarray(ranks)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)

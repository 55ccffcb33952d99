"""Sampling items a user has not interacted with: negatives for training (`NegativeSampler`, re-drawn every
epoch, vectorised) and the shared candidate sets of the sampled evaluation protocol (`sampled_candidates`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers.data.interactions import encode_ids


class NegativeSampler:
    """Draws `ratio` negatives per positive, uniformly over items the user has not interacted with.

    Vectorised: all draws at once, collisions with the user's positives found by a binary search
    in the sorted (user * n_items + item) codes and re-drawn until none is left.
    """
    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int, ratio: int = 4):
        if ratio < 1:
            raise ValueError(f"neg_ratio must be >= 1 for the implicit task, got {ratio}")
        self.users = np.asarray(users, dtype=np.int64)
        self.n_items, self.ratio = int(n_items), int(ratio)
        self.codes = np.unique(self.users * self.n_items + np.asarray(items, dtype=np.int64))
        per_user = np.bincount(self.codes // self.n_items)
        if len(per_user) and per_user.max() >= self.n_items:
            raise ValueError("a user has interacted with every item, so no negative can be drawn for them; "
                             "drop such users or use task='rating'")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users * self.n_items + items
        pos = np.minimum(np.searchsorted(self.codes, q), len(self.codes) - 1)
        return self.codes[pos] == q

    def draw(self, rng: np.random.Generator, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) of `ratio` negatives for each positive of `users` (default: the training positives)."""
        users = np.repeat(self.users if users is None else np.asarray(users, dtype=np.int64), self.ratio)
        items = rng.integers(0, self.n_items, size=len(users))
        bad = np.flatnonzero(self.is_positive(users, items))
        while len(bad):
            items[bad] = rng.integers(0, self.n_items, size=len(bad))
            bad = bad[self.is_positive(users[bad], items[bad])]
        return users, items


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The seeded generator of one pass's shuffle (the same for every loader and process)."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def sampled_candidates(train: pd.DataFrame, evaluation: pd.DataFrame, n_negatives: int = 99,
                       seed: int = 0, cold_users: bool = True) -> pd.DataFrame:
    """Candidate sets: one row per evaluation interaction, columns user_id, item_id (the positive),
    negatives (array of `n_negatives` item ids the user never interacted with, drawn uniformly
    from the training items without replacement, seeded). Rows whose item is not in train are dropped, and
    so are rows whose user is not in train unless `cold_users` (the default: a cold user's item is ranked
    against negatives they never touched, like anyone's); the count is in `attrs["dropped_unknown"]`.
    """
    items = np.unique(train["item_id"].astype(str).to_numpy())
    ev = evaluation[["user_id", "item_id"]].astype(str)
    known = encode_ids(ev["item_id"], items) >= 0
    if not cold_users:
        known &= ev["user_id"].isin(set(train["user_id"].astype(str))).to_numpy()
    ev = ev[known].reset_index(drop=True)
    n_items = len(items)
    if n_negatives > n_items - 1:
        raise ValueError(f"n_negatives={n_negatives} but only {n_items} training items; lower n_negatives")
    # every item each evaluation user touched (train and evaluation), as a sorted set of (user, item) codes; the
    # training rows of other users never meet a negative (Electronics: 100,000 of 1,034,363 rows are read)
    users = np.unique(ev["user_id"].to_numpy())
    tr = train[["user_id", "item_id"]].astype(str)
    both = pd.concat([tr[tr["user_id"].isin(set(users))], ev])
    u_all = encode_ids(both["user_id"], users)
    i_all = encode_ids(both["item_id"], items)
    ok = (i_all >= 0) & (u_all >= 0)
    touched = np.unique(u_all[ok] * n_items + i_all[ok])
    rng = np.random.default_rng(seed)
    u = encode_ids(ev["user_id"], users)
    negs = rng.integers(0, n_items, size=(len(ev), n_negatives))
    # resample collisions (seen items or duplicates within a row) until none is left; vectorised, and after the
    # first pass only the rows that had one are checked again (the same draws as checking every row each pass)
    rows = np.arange(len(ev))
    for _ in range(1000):
        sub = negs[rows]
        codes = u[rows, None] * n_items + sub
        at = np.minimum(np.searchsorted(touched, codes), max(len(touched) - 1, 0))
        bad = touched[at] == codes if len(touched) else np.zeros(sub.shape, dtype=bool)
        s = np.sort(sub, axis=1)
        dup_sorted = np.zeros_like(bad)
        dup_sorted[:, 1:] = s[:, 1:] == s[:, :-1]
        if dup_sorted.any():
            order = np.argsort(sub, axis=1, kind="stable")
            dup = np.zeros_like(bad)
            np.put_along_axis(dup, order, dup_sorted, axis=1)
            bad |= dup
        if not bad.any():
            break
        sub[bad] = rng.integers(0, n_items, size=int(bad.sum()))
        negs[rows] = sub
        rows = rows[bad.any(axis=1)]
    else:
        raise ValueError("could not draw enough unseen negatives; some users have seen almost every item")
    out = ev.copy()
    # rows of one object array of the vocabulary's str objects: 8 bytes a negative, not a fixed-width copy of each id
    # (Electronics: 258,591 rows x 99 negatives, 0.2 GB instead of 1 GB)
    out["negatives"] = list(items.astype(object)[negs])
    out.attrs["dropped_unknown"] = int((~known).sum())
    out.attrs["seed"] = seed
    return out


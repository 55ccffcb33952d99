"""Synthetic interaction data with the shape of Amazon Electronics (marketing-bias `df_electronics.csv`).

    df = electronics_like(scale=1.0, seed=0)   # 1,292,954 rows, 1,157,633 users, 9,560 items

The real file has 1,292,954 ratings from 1,157,633 users on 9,560 items: almost every user rated a
single item, and a few items take most of the ratings. The generator reproduces that shape, fully
vectorised (no per-row Python) and seeded:

- item popularity follows a power law: the item of popularity rank r is drawn with probability
  proportional to (r + 1) ** -item_alpha (rank-frequency slope about -item_alpha on a log-log plot);
- interactions per user follow a power law P(k) ~ k ** -g (k >= 1) whose exponent is solved for the
  mean n_ratings / n_users (Electronics: g about 3.9, so about 92% of the users have one interaction
  and the most active a hundred or so);
- a planted preference, so that a model can beat popularity: items belong to `n_categories`
  categories, each user has a favourite category, and a share `affinity` of a user's interactions is
  drawn from the popularity within that category (the rest from the global popularity);
- no (user, item) pair repeats and every item of the catalogue has at least one interaction;
- ratings 1-5 with Electronics' skew towards 5, unix timestamps in 1999-2018.

`scale` multiplies the number of ratings and users (the growth benchmark uses 0.1, 0.3, 1.0);
the catalogue keeps `n_items` items unless given. Columns: user_id, item_id (zero-padded str, so
string order is numeric order), rating (float32), timestamp (int64), item_category (str).

The file itself: `helpers.data.electronics_file.electronics_file_like` gives these interactions in exactly
the columns of df_electronics.csv, with side information and planted gender x segment effects, and

    python -m helpers.data.synthetic --out data/raw/df_electronics.csv --scale 1.0 --seed 0

(the command line of helpers.data.electronics_file) writes a stand-in that `load("electronics")` reads.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# df_electronics.csv (marketing bias, Wan et al. 2020): 1,292,954 ratings, 1,157,633 users, 9,560 items
ELECTRONICS_SHAPE = {"n_ratings": 1_292_954, "n_users": 1_157_633, "n_items": 9_560}


# Electronics' rating distribution (share of 1, 2, 3, 4, 5 stars), rounded
RATING_SHARES = np.array([0.08, 0.05, 0.08, 0.19, 0.60])


def item_probabilities(n_items: int, alpha: float) -> np.ndarray:
    """Power-law popularity of items in rank order: p[r] proportional to (r + 1) ** -alpha; sums to 1."""
    p = np.arange(1, n_items + 1, dtype=np.float64) ** -float(alpha)
    return p / p.sum()


def user_exponent(mean: float, max_count: int) -> float:
    """Exponent g of a power law P(k) proportional to k ** -g on k = 1..max_count whose mean is `mean`."""
    k = np.arange(1, max_count + 1, dtype=np.float64)
    if not 1 <= mean < k.mean():
        raise ValueError(f"mean interactions per user {mean:.3g} must be in [1, {k.mean():.3g})")
    lo, hi = 0.0, 60.0  # mean(g) decreases from (max_count + 1) / 2 at g = 0 to 1 as g grows
    for _ in range(100):
        g = (lo + hi) / 2
        w = k ** -g
        lo, hi = (g, hi) if (w * k).sum() / w.sum() > mean else (lo, g)
    return (lo + hi) / 2


def _interactions_per_user(rng, n_users: int, n_ratings: int, max_count: int) -> np.ndarray:
    """Counts per user, each in 1..max_count, summing to n_ratings: a power law whose exponent gives the
    right mean (Electronics: about 3.9, so about 92% of the users have a single interaction)."""
    k = np.arange(1, max_count + 1)
    w = k ** -user_exponent(n_ratings / n_users, max_count)
    counts = k[np.searchsorted(np.cumsum(w), rng.random(n_users) * w.sum(), side="right").clip(0, max_count - 1)]
    diff = n_ratings - int(counts.sum())
    if diff > 0:   # add single interactions to random users (below the cap)
        room = np.repeat(np.arange(n_users), max_count - counts)
        counts += np.bincount(rng.choice(room, size=diff, replace=False), minlength=n_users)
    elif diff < 0:  # take back extra interactions (every user keeps at least one)
        extra = np.repeat(np.arange(n_users), counts - 1)
        counts -= np.bincount(rng.choice(extra, size=-diff, replace=False), minlength=n_users)
    return counts


def draw_items(rng, favourite: np.ndarray, cat_of_rank: np.ndarray, p_rank: np.ndarray, n_categories: int,
               affinity: float) -> np.ndarray:
    """Indices into p_rank (item popularity ranks), one per row of `favourite` (the row's group, e.g. its user's
    favourite category): with probability `affinity` drawn by p_rank within that group of `cat_of_rank` (the group
    must have an entry), else by p_rank overall."""
    n = len(favourite)
    ranks = np.searchsorted(np.cumsum(p_rank), rng.random(n) * p_rank.sum(), side="right")
    in_cat = rng.random(n) < affinity
    if in_cat.any():
        # popularity within one category: per-category CDFs stacked on [c, c + 1], searched at c + U(0, 1)
        order = np.argsort(cat_of_rank, kind="stable")          # ranks grouped by category
        cat = cat_of_rank[order]
        mass = np.bincount(cat_of_rank, weights=p_rank, minlength=n_categories)
        start = np.concatenate([[0.0], np.cumsum(mass)[:-1]])
        stacked = cat + (np.cumsum(p_rank[order]) - start[cat]) / mass[cat]
        last = np.r_[cat[1:] != cat[:-1], True]
        stacked[last] = cat[last] + 1.0                           # exact end, whatever the rounding
        q = favourite[in_cat] + rng.random(int(in_cat.sum()))
        ranks[in_cat] = order[np.searchsorted(stacked, q, side="right")]
    return np.minimum(ranks, len(p_rank) - 1)


def _id_strings(prefix: str, n: int) -> np.ndarray:
    """["u0000", "u0001", ...]: zero-padded so that string order is numeric order."""
    width = len(str(n - 1))
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), width))


def electronics_like(scale: float = 1.0, n_ratings: int | None = None, n_users: int | None = None,
                     n_items: int | None = None, item_alpha: float = 1.0, max_user_items: int | None = None,
                     n_categories: int = 10, affinity: float = 0.6, seed: int = 0) -> pd.DataFrame:
    """A new DataFrame of synthetic interactions with the Electronics shape (see the module docstring).

    scale: multiplies ELECTRONICS_SHAPE's ratings and users (explicit n_ratings / n_users win);
    n_items: catalogue size (default 9,560, whatever the scale); item_alpha: power-law exponent of item
    popularity (> 0); max_user_items: most interactions of one user (default min(n_items / 4, 500));
    affinity: share of interactions drawn from the user's favourite category, in [0, 1].
    Deterministic for a seed.
    """
    users, items, category, rng = interaction_codes(scale, n_ratings, n_users, n_items, item_alpha, max_user_items,
                                                    n_categories, affinity, seed)
    n_users, n_items, n_ratings = int(users.max()) + 1, len(category), len(users)
    return pd.DataFrame({
        "user_id": _id_strings("u", n_users)[users],
        "item_id": _id_strings("i", n_items)[items],
        "rating": (1 + rng.choice(5, size=n_ratings, p=RATING_SHARES)).astype(np.float32),
        "timestamp": rng.integers(915_148_800, 1_546_300_800, size=n_ratings),  # 1999-01-01 .. 2018-12-31
        "item_category": np.char.add("c", category[items].astype(str)).astype(object),
    })


def interaction_codes(scale, n_ratings, n_users, n_items, item_alpha, max_user_items, n_categories, affinity,
                      seed) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """(user code per row, item code per row, category code per item, the generator after the draws):
    electronics_like's interactions as integers (users 0..n_users-1 all used, items 0..n_items-1 all used)."""
    n_ratings = int(n_ratings if n_ratings is not None else round(ELECTRONICS_SHAPE["n_ratings"] * scale))
    n_users = int(n_users if n_users is not None else round(ELECTRONICS_SHAPE["n_users"] * scale))
    n_items = int(n_items if n_items is not None else ELECTRONICS_SHAPE["n_items"])
    if not 1 <= n_users <= n_ratings:
        raise ValueError(f"need 1 <= n_users <= n_ratings, got n_users={n_users}, n_ratings={n_ratings}")
    if n_items < 2 or n_ratings < n_items:
        raise ValueError(f"need 2 <= n_items <= n_ratings (every item gets a rating), got n_items={n_items}, "
                         f"n_ratings={n_ratings}; lower n_items or raise scale")
    if item_alpha <= 0:
        raise ValueError(f"item_alpha must be > 0, got {item_alpha}")
    if not 0 <= affinity <= 1:
        raise ValueError(f"affinity must be in [0, 1], got {affinity}")
    rng = np.random.default_rng(seed)

    counts = _interactions_per_user(rng, n_users, n_ratings, max_user_items or max(1, min(n_items // 4, 500)))
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    favourite = rng.integers(0, n_categories, size=n_users)
    p_rank = item_probabilities(n_items, item_alpha)
    cat_of_rank = rng.integers(0, n_categories, size=n_items)
    cat_of_rank[:n_categories] = np.arange(n_categories)[: min(n_categories, n_items)]  # no empty category
    ranks = draw_items(rng, favourite[users], cat_of_rank, p_rank, n_categories, affinity)

    # every item at least once: unseen ranks replace rows of the items drawn most often
    unseen = np.flatnonzero(np.bincount(ranks, minlength=n_items) == 0)
    if len(unseen):
        donors = np.ones(len(ranks), dtype=bool)
        donors[np.unique(ranks, return_index=True)[1]] = False   # each item keeps its first row
        ranks[rng.choice(np.flatnonzero(donors), size=len(unseen), replace=False)] = unseen
    # no repeated (user, item): re-draw duplicates until none is left
    for _ in range(100):
        code = users * n_items + ranks
        _, first = np.unique(code, return_index=True)
        dup = np.ones(len(code), dtype=bool)
        dup[first] = False
        dup &= np.bincount(ranks, minlength=n_items)[ranks] > 1  # never remove an item's last row
        if not dup.any():
            break
        rows = np.flatnonzero(dup)
        ranks[rows] = draw_items(rng, favourite[users[rows]], cat_of_rank, p_rank, n_categories, affinity)
    else:
        raise ValueError("could not remove repeated (user, item) pairs; raise n_items or lower max_user_items")

    item_of_rank = rng.permutation(n_items)  # popularity rank -> item id, so ids carry no order
    items = item_of_rank[ranks]
    category = np.empty(n_items, dtype=np.int64)
    category[item_of_rank] = cat_of_rank
    shuffle = rng.permutation(n_ratings)
    users, items = users[shuffle], items[shuffle]
    return users, items, category, rng


def shape_summary(df: pd.DataFrame) -> dict:
    """Rows, users, items, share of single-interaction users (in [0, 1]), and the item power-law slope.

    `item_slope` is the least-squares slope of log(count) on log(rank) over the items ranked 10 to
    n_items / 2 (the head and the noisy tail left out); about -item_alpha.
    """
    per_user = df.groupby("user_id", sort=False).size().to_numpy()
    per_item = np.sort(df.groupby("item_id", sort=False).size().to_numpy())[::-1]
    lo, hi = 10, max(len(per_item) // 2, 12)
    r = np.arange(1, len(per_item) + 1)[lo:hi]
    slope = float(np.polyfit(np.log(r), np.log(per_item[lo:hi]), 1)[0]) if hi - lo >= 2 else float("nan")
    return {"rows": int(len(df)), "users": int(len(per_user)), "items": int(len(per_item)),
            "single_interaction_users": float((per_user == 1).mean()),
            "max_user_interactions": int(per_user.max()), "top1pct_item_share": float(
                per_item[: max(1, len(per_item) // 100)].sum() / len(df)), "item_slope": slope}


if __name__ == "__main__":  # `python -m helpers.data.synthetic`: the df_electronics.csv stand-in's command line
    import sys

    from helpers.data.electronics_file import main
    sys.exit(main())

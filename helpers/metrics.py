"""Recommendation metrics: ranking accuracy, rating error, and what the lists look like.

Ranking metrics take `positions`: for each user (row), the 0-based positions of that user's relevant
items in the ranked list, sorted ascending, padded with `np.inf` (float array [n_users, max_relevant]).
A relevant item that could not be ranked (e.g. unknown to the model) is also `np.inf`: it counts in
`n_relevant` and is never retrieved. `relevant_positions` builds this array from scores.

Ties are resolved **against the relevant items** (pessimistic): an irrelevant item whose score equals a
relevant item's score is ranked above it, so a constant model gets the worst possible rank, not an
average or a lucky one.

Every ranking function returns one value **per user** (np.ndarray [n_users]); the mean over users is
the usual figure (HR@K, NDCG@K, MAP@K, MRR), and the per-user values feed the bootstrap intervals of
`helpers.evaluation`. Discounts use log base 2; NDCG's ideal DCG is over min(K, n_relevant) items.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def relevant_positions(scores, relevant, excluded=None, within: int | None = None) -> np.ndarray:
    """0-based positions of the relevant items in each row's ranking, pessimistic ties; float [n, max_rel].

    scores: [n_users, n_items] (numpy or torch); relevant, excluded: boolean masks of the same shape
    (excluded items are removed from the ranking; a relevant item is never excluded). Rows are padded
    with np.inf. Position of the r-th best relevant item = r + number of non-excluded irrelevant items
    scoring >= it, so ties go against the relevant item.

    within=k: only what metrics at cut-offs <= k need, without sorting whole rows (a top-k per row
    instead): positions below k exact, the others some value >= k, at most k columns; pass `n_relevant`
    to the metric functions then (the padding no longer counts the relevant items).
    """
    s = torch.as_tensor(scores, dtype=torch.float32)
    rel = torch.tensor(np.asarray(relevant, dtype=bool))
    if s.shape != rel.shape:
        raise ValueError(f"scores {tuple(s.shape)} and relevant {tuple(rel.shape)} differ in shape")
    if rel.any() and not torch.isfinite(s[rel]).all():
        raise ValueError("a relevant item has a non-finite score; models must return finite scores")
    others = s.masked_fill(rel, -torch.inf)
    if excluded is not None:
        others = others.masked_fill(torch.tensor(np.asarray(excluded, dtype=bool)) & ~rel, -torch.inf)
    return positions_from_scores(others, s.masked_fill(~rel, -torch.inf), rel.sum(1), within)


# Up to this many relevant items per row, positions are counted by comparison (width x n_items) rather than by
# sorting every row (n_items log n_items): Electronics' evaluation users hold 1-2 items each, and sorting 250,000
# rows of 9,560 scores was most of a full-ranking pass.
COUNT_MAX_RELEVANT = 8


def positions_from_scores(other_scores: torch.Tensor, relevant_scores: torch.Tensor,
                          n_relevant: torch.Tensor, within: int | None = None) -> np.ndarray:
    """Pessimistic positions from two [n, m] score tensors: irrelevant candidates (-inf = not ranked)
    and relevant items (-inf = padding; each row holds `n_relevant` finite entries). Float [n, max_rel];
    with `within` see `relevant_positions`."""
    n_rel = torch.as_tensor(n_relevant)
    width = int(n_rel.max()) if len(n_rel) else 0
    if within is not None:
        width = min(width, int(within))
    if width == 0:
        return np.full((other_scores.shape[0], 0), np.inf)
    rel_sorted = torch.topk(relevant_scores, width, dim=1).values  # descending
    if within is None and width <= COUNT_MAX_RELEVANT:  # few relevant items a row: count, no sort
        n_ge = torch.zeros(len(n_rel), width, dtype=torch.long)
        for j in range(width):  # the j-th relevant item, on the rows that have one
            rows = torch.nonzero(n_rel > j).view(-1)
            rows = slice(None) if len(rows) == len(n_rel) else rows
            n_ge[rows, j] = (other_scores[rows] >= rel_sorted[rows, j:j + 1]).sum(1)
        pos = (n_ge + torch.arange(width)).double()
        valid = torch.arange(width)[None, :] < n_rel[:, None]
        return torch.where(valid, pos, torch.tensor(torch.inf, dtype=torch.float64)).numpy()
    if within is None:
        ascending = torch.sort(other_scores, dim=1).values.contiguous()
    else:  # the k best others decide every position below k; a relevant item below all of them is >= k
        top = min(int(within), other_scores.shape[1])
        ascending = torch.topk(other_scores, top, dim=1).values.flip(1).contiguous()
    # irrelevant items scoring >= v: everything at or after the first position where a value >= v sits
    n_ge = ascending.shape[1] - torch.searchsorted(ascending, rel_sorted.contiguous(), side="left")
    pos = (n_ge + torch.arange(width)).double()
    valid = torch.arange(width)[None, :] < n_rel[:, None]
    return torch.where(valid, pos, torch.tensor(torch.inf, dtype=torch.float64)).numpy()


def positions_from_ranks(ranks) -> np.ndarray:
    """`positions` for one relevant item per row from 0-based ranks: float [n, 1] (np.inf = not ranked)."""
    return np.asarray(ranks, dtype=np.float64).reshape(-1, 1)


def _n_relevant(positions: np.ndarray, n_relevant) -> np.ndarray:
    if n_relevant is None:
        return np.isfinite(positions).sum(axis=1)
    return np.asarray(n_relevant, dtype=np.int64)


def _check_k(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


def hit_rate_at_k(positions, k: int) -> np.ndarray:
    """Per user: 1.0 if any relevant item is in the top k, else 0.0. Mean over users = HR@k in [0, 1]."""
    k = _check_k(k)
    return (np.asarray(positions) < k).any(axis=1).astype(np.float64)


def precision_at_k(positions, k: int) -> np.ndarray:
    """Per user: relevant items in the top k / k, in [0, 1]."""
    k = _check_k(k)
    return (np.asarray(positions) < k).sum(axis=1) / k


def recall_at_k(positions, k: int, n_relevant=None) -> np.ndarray:
    """Per user: relevant items in the top k / all relevant items, in [0, 1] (0 for users with none)."""
    k = _check_k(k)
    n_rel = _n_relevant(np.asarray(positions), n_relevant)
    found = (np.asarray(positions) < k).sum(axis=1)
    return np.divide(found, n_rel, out=np.zeros(len(n_rel)), where=n_rel > 0)


def ndcg_at_k(positions, k: int, n_relevant=None) -> np.ndarray:
    """Per user: DCG@k / ideal DCG@k with gain 1 and discount 1/log2(position + 2), in [0, 1].

    The ideal DCG places min(k, n_relevant) relevant items at the top. One relevant item at 0-based
    position p < k gives 1/log2(p + 2) (1.0 at the top, 0.63 second, 0.5 third).
    """
    k = _check_k(k)
    pos = np.asarray(positions, dtype=np.float64)
    n_rel = _n_relevant(pos, n_relevant)
    dcg = np.where(pos < k, 1.0 / np.log2(np.minimum(pos, k) + 2.0), 0.0).sum(axis=1)
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))])
    ideal = discounts[np.minimum(n_rel, k)]
    return np.divide(dcg, ideal, out=np.zeros(len(dcg)), where=ideal > 0)


def average_precision_at_k(positions, k: int, n_relevant=None) -> np.ndarray:
    """Per user: AP@k = sum over relevant items in the top k of precision at their position, divided
    by min(k, n_relevant); in [0, 1]. Mean over users = MAP@k."""
    k = _check_k(k)
    pos = np.asarray(positions, dtype=np.float64)
    n_rel = _n_relevant(pos, n_relevant)
    rank_among_relevant = np.arange(1, pos.shape[1] + 1)  # positions are sorted: r-th found has r above-or-at
    prec = np.where(pos < k, rank_among_relevant / (np.minimum(pos, k) + 1.0), 0.0).sum(axis=1)
    denom = np.minimum(n_rel, k)
    return np.divide(prec, denom, out=np.zeros(len(prec)), where=denom > 0)


def reciprocal_rank(positions, k: int | None = None) -> np.ndarray:
    """Per user: 1 / (1-based position of the first relevant item), 0 if none (or none in the top k);
    in [0, 1]. Mean over users = MRR (MRR@k when k is given)."""
    pos = np.asarray(positions, dtype=np.float64)
    first = pos.min(axis=1, initial=np.inf)
    if k is not None:
        first = np.where(first < _check_k(k), first, np.inf)
    return 1.0 / (first + 1.0)


RANKING_METRICS = {"hr": hit_rate_at_k, "ndcg": ndcg_at_k, "precision": precision_at_k,
                   "recall": recall_at_k, "map": average_precision_at_k, "mrr": reciprocal_rank}


def ranking_metrics(positions, k: int, n_relevant=None) -> dict[str, np.ndarray]:
    """All per-user ranking metrics at k: {"hr", "ndcg", "precision", "recall", "map", "mrr"} -> [n_users]."""
    return {"hr": hit_rate_at_k(positions, k), "ndcg": ndcg_at_k(positions, k, n_relevant),
            "precision": precision_at_k(positions, k), "recall": recall_at_k(positions, k, n_relevant),
            "map": average_precision_at_k(positions, k, n_relevant), "mrr": reciprocal_rank(positions)}


def _errors(predicted, actual) -> np.ndarray:
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if p.shape != a.shape:
        raise ValueError(f"predicted {p.shape} and actual {a.shape} differ in shape")
    if len(p) == 0:
        raise ValueError("no ratings to compare")
    if not np.isfinite(p).all():
        raise ValueError(f"{int((~np.isfinite(p)).sum())} predictions are NaN/inf; drop unknown pairs first")
    return p - a


def rmse(predicted, actual) -> float:
    """Root mean squared error of rating predictions, >= 0 (in rating units)."""
    return float(np.sqrt(np.mean(_errors(predicted, actual) ** 2)))


def mae(predicted, actual) -> float:
    """Mean absolute error of rating predictions, >= 0 (in rating units)."""
    return float(np.mean(np.abs(_errors(predicted, actual))))


def catalogue_coverage(recommended, n_items: int) -> float:
    """Share of the catalogue's `n_items` that appear in at least one list, in [0, 1]. The project's one
    definition: the catalogue is the training catalogue (a model's n_items; `helpers.rerank.measures.list_coverage`
    measures re-ranked lists the same way).

    recommended: int item indices [n_users, k] (negative entries = empty slots, ignored)."""
    rec = np.asarray(recommended)
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    return float(len(np.unique(rec[rec >= 0])) / n_items)


def intra_list_diversity(recommended, item_vectors) -> np.ndarray:
    """Per user: mean cosine distance (1 - cosine similarity) over all pairs of items in the list.

    item_vectors: [n_items, d] (embeddings, or multi-hot categories). In [0, 2] for arbitrary
    vectors, in [0, 1] for non-negative ones; a zero vector is at distance 1 from everything.
    Lists with fewer than two items get NaN.
    """
    rec = np.asarray(recommended, dtype=np.int64)
    v = torch.tensor(np.asarray(item_vectors, dtype=np.float32))
    norms = v.norm(dim=1, keepdim=True)
    unit = torch.where(norms > 0, v / norms.clamp_min(1e-12), torch.zeros_like(v))
    k = rec.shape[1]
    if k < 2:
        return np.full(len(rec), np.nan)
    out = np.empty(len(rec))
    for start in range(0, len(rec), 4096):  # blocks of users bound the [b, k, k] memory
        lists = unit[torch.from_numpy(rec[start:start + 4096])]
        sim = lists @ lists.transpose(1, 2)
        off_diagonal = (sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)) / (k * (k - 1))
        out[start:start + 4096] = (1.0 - off_diagonal).double().numpy()
    return out


def category_vectors(categories, sep: str = "|") -> tuple[np.ndarray, list[str]]:
    """Multi-hot matrix [n_items, n_categories] from strings like "Comedy|Drama" (NaN = none), and the names."""
    series = pd.Series(categories, dtype="string").fillna("")
    dummies = series.str.get_dummies(sep=sep)
    return dummies.to_numpy(dtype=np.float32), list(dummies.columns)


def intra_list_diversity_by_category(recommended, categories, sep: str = "|") -> np.ndarray:
    """Per user: intra-list diversity over multi-hot category vectors, in [0, 1] (0 = all pairs share
    exactly the same categories, 1 = no pair shares one). categories: one string per item index."""
    vectors, _ = category_vectors(categories, sep)
    return intra_list_diversity(recommended, vectors)


def intra_list_diversity_by_embedding(recommended, embeddings) -> np.ndarray:
    """Per user: intra-list diversity over item embeddings (cosine distance), in [0, 2]."""
    return intra_list_diversity(recommended, embeddings)


def novelty(recommended, item_popularity, n_users: int) -> np.ndarray:
    """Per user: mean self-information -log2(popularity / n_users) of the listed items, in bits, >= 0.

    Higher = less popular items. item_popularity: training interactions per item index (an item with
    none counts as 1)."""
    pop = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    share = np.minimum(pop / n_users, 1.0)
    return (-np.log2(share))[np.asarray(recommended)].mean(axis=1)


def average_popularity(recommended, item_popularity) -> np.ndarray:
    """Per user: mean training popularity (interaction count) of the listed items, >= 0."""
    return np.asarray(item_popularity, dtype=np.float64)[np.asarray(recommended)].mean(axis=1)


"""Evaluation protocols. Every protocol takes any `Recommender` (see helpers.recommender).

- Sampled (NCF, He et al. 2017): each evaluation interaction is ranked against `n_negatives` items
  the user never interacted with (in train or evaluation), drawn once with a seed and shared by every
  model compared (`sampled_candidates`, `sampled_ranking`). The figure is a mean over evaluation
  interactions.
- Full ranking: each evaluation user's items are ranked among every item not seen in training
  (`full_ranking`, batched `score_users` + `torch.topk`). The figure is a mean over users.
- Rating: RMSE / MAE of rating models on the evaluation ratings (`rating_errors`).

Ties always count against the relevant item (pessimistic). Evaluation data unknown to the training
set or the model counts as a miss by default (`unknown="miss"`, figures over all evaluation users);
`unknown="drop"` leaves it out, as the NCF code does; the count is reported either way.
Every figure carries a 95% bootstrap interval over users (`bootstrap_ci`), and comparisons of two
models are paired: same users, same candidates (`paired_comparison`, `paired_comparisons`).
`evaluate_models` runs all of it and returns tidy DataFrames.

Measured (2-core CPU, K=10, seed 0):
- ../shared/data/ml-latest-small-seed-split, sampled, 99 negatives: EASE (lambda 300) HR 0.867 /
  NDCG 0.679 over the 602 held-out items known to train (unknown="drop"), 0.856 / 0.670 over all 610
  ("miss"); over 10 negative draws HR 0.873 +- 0.004 (drop). Most-popular 0.736 / 0.474 (drop).
- ml-100k, random 80:20: EASE sampled HR 0.744, full-ranking HR 0.932 / NDCG 0.441; most-popular
  0.529 and 0.774 / 0.216; bias RMSE 0.934. `evaluate_models` on 4 baselines, all protocols: ~1 min.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from helpers.metrics import (average_popularity, catalogue_coverage, intra_list_diversity_by_category,
                             intra_list_diversity_by_embedding, novelty, positions_from_ranks,
                             positions_from_scores, ranking_metrics)
from helpers.recommender import Recommender, encode_ids, interaction_matrix


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


# =========================================================================== protocols on many models
PROTOCOLS = ["sampled", "full", "rating"]
UNKNOWN = ["miss", "drop"]
SAMPLED_METRICS = ["hr", "ndcg", "mrr"]
FULL_METRICS = ["hr", "ndcg", "precision", "recall", "map", "mrr"]
LIST_METRICS = ["novelty", "avg_popularity", "ild_category", "ild_embedding"]
RATING_METRICS = ["rmse", "mae"]


@dataclass
class Ranking:
    """The outcome of one protocol for one model: one row per ranking problem.

    user_ids: [n] raw user id of each row (sampled: one row per evaluation interaction; full: one per
    user); positions: float [n, max_relevant], 0-based pessimistic positions, np.inf = not retrieved
    (see helpers.metrics); n_relevant: [n]; recommended: item indices [n_users, k] of the top-k lists
    (full ranking only) and list_users their user ids.
    """

    user_ids: np.ndarray
    positions: np.ndarray
    n_relevant: np.ndarray
    n_unknown: int = 0
    recommended: np.ndarray | None = None
    list_users: np.ndarray | None = None


def _unknown_rows(train: pd.DataFrame, evaluation: pd.DataFrame) -> pd.DataFrame:
    """Evaluation rows whose user or item is not in `train` (what `sampled_candidates` drops)."""
    users = np.unique(train["user_id"].astype(str).to_numpy())
    items = np.unique(train["item_id"].astype(str).to_numpy())
    ev = evaluation[["user_id", "item_id"]].astype(str)
    known = (encode_ids(ev["user_id"], users) >= 0) & (encode_ids(ev["item_id"], items) >= 0)
    return ev[~known].reset_index(drop=True)


def candidate_item_codes(candidates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(vocabulary of candidate item ids, codes [n_rows, 1 + n_negatives]: column 0 the positive).
    Computed once and shared by every model (string look-ups of 100 x n_rows ids are the slow part)."""
    if len(candidates) == 0:
        return np.array([], dtype=str), np.zeros((0, 1), dtype=np.int64)
    negs = np.stack(candidates["negatives"].to_numpy()).astype(str)
    ids = np.concatenate([candidates["item_id"].astype(str).to_numpy()[:, None], negs], axis=1)
    codes, vocabulary = pd.factorize(ids.ravel())  # hashing: seconds faster than np.unique's sort here
    return np.asarray(vocabulary, dtype=str), codes.reshape(ids.shape).astype(np.int64)


def sampled_ranking(model: Recommender, candidates: pd.DataFrame, unknown_rows: pd.DataFrame | None = None,
                    unknown: str = "miss", item_codes: tuple | None = None) -> Ranking:
    """Sampled protocol for one model on shared `candidates` (from `sampled_candidates`).

    Ties count against the positive (see `sampled_ranks`). unknown="miss": evaluation rows whose user or
    item the candidates could not include (`unknown_rows`), and rows whose user or positive this model
    does not know, are misses (position inf), so the figure is over every evaluation interaction;
    negatives unknown to this model are scored -inf (never above the positive). unknown="drop": those
    rows are left out (the NCF convention); the count is in `n_unknown` either way.
    item_codes: `candidate_item_codes(candidates)`, computed once when several models share them.
    """
    if unknown not in UNKNOWN:
        raise ValueError(f"unknown must be one of {UNKNOWN}, got {unknown!r}")
    vocabulary, codes = candidate_item_codes(candidates) if item_codes is None else item_codes
    u = model.user_index(candidates["user_id"].to_numpy())
    items = model.item_index(vocabulary)[codes] if len(vocabulary) else codes
    ok_row = (u >= 0) & (items[:, 0] >= 0)
    scores = np.full(items.shape, -np.inf, dtype=np.float32)
    ok = ok_row[:, None] & (items >= 0)
    rows, cols = np.nonzero(ok)
    scores[rows, cols] = model.score_pairs(u[rows], items[rows, cols])
    if not np.isfinite(scores[ok]).all():
        raise ValueError(f"model '{model.name}' returned NaN/inf scores in the sampled protocol")
    ranks = np.where(ok_row, (scores[:, 1:] >= scores[:, :1]).sum(axis=1), np.inf)
    user_ids = candidates["user_id"].astype(str).to_numpy()
    n_extra = 0 if unknown_rows is None else len(unknown_rows)
    if unknown == "drop":
        keep = ok_row
        return Ranking(user_ids[keep], positions_from_ranks(ranks[keep]), np.ones(keep.sum(), dtype=np.int64),
                       n_unknown=int(n_extra + (~ok_row).sum()))
    if n_extra:
        user_ids = np.concatenate([user_ids, unknown_rows["user_id"].astype(str).to_numpy()])
        ranks = np.concatenate([ranks, np.full(n_extra, np.inf)])
    return Ranking(user_ids, positions_from_ranks(ranks), np.ones(len(ranks), dtype=np.int64),
                   n_unknown=int(n_extra + (~ok_row).sum()))


def full_ranking(model: Recommender, evaluation: pd.DataFrame, train: pd.DataFrame | None = None, k: int = 10,
                 unknown: str = "miss", batch_size: int = 1024) -> Ranking:
    """Full-ranking protocol: for each evaluation user, every item not seen in training is ranked.

    Scores come from `model.score_users` in batches of users ([batch, n_items] matrices; no Python loop
    over users x items); items the user has in `train` (default: the model's own training data) are
    removed; positions of the user's evaluation items are pessimistic (ties go against them). The top-k
    lists (torch.topk) are kept for the beyond-accuracy metrics. unknown="miss": evaluation items the
    model does not know count as relevant and never retrieved, unknown users get no hit; "drop": both
    are left out. The top-k lists break score ties as torch.topk does (they feed coverage, novelty
    and diversity only; accuracy uses the pessimistic positions). ml-100k, all 943 users x 1,682
    items on a 2-core CPU: about 1 s for EASE, 3 s for CollabNN.
    """
    if unknown not in UNKNOWN:
        raise ValueError(f"unknown must be one of {UNKNOWN}, got {unknown!r}")
    ev = evaluation[["user_id", "item_id"]].astype(str).drop_duplicates()
    u_all = model.user_index(ev["user_id"].to_numpy())
    i_all = model.item_index(ev["item_id"].to_numpy())
    eval_users, user_row = np.unique(ev["user_id"].to_numpy(), return_inverse=True)
    n_total = np.bincount(user_row, minlength=len(eval_users))
    known_pair = (u_all >= 0) & (i_all >= 0)
    n_unknown = int((~known_pair).sum())
    if unknown == "drop":
        n_total = np.bincount(user_row[known_pair], minlength=len(eval_users))
    model_u = model.user_index(eval_users)
    rankable = (model_u >= 0) & (n_total > 0)
    if unknown == "drop":
        keep = rankable
    else:
        keep = n_total > 0
    relevant = sp.csr_matrix((np.ones(int(known_pair.sum()), dtype=bool),
                              (user_row[known_pair], i_all[known_pair])), shape=(len(eval_users), model.n_items))
    excl = model.exclusion_matrix(train if train is not None else "train")
    k = int(min(k, model.n_items))
    rows_rankable = np.flatnonzero(rankable)
    chunks, top_lists = [], []
    for start in range(0, len(rows_rankable), batch_size):
        rows = rows_rankable[start:start + batch_size]
        users = model_u[rows]
        scores = model.score_users(users).float()
        rel = torch.from_numpy(relevant[rows].toarray())
        exc = torch.from_numpy(excl[users].toarray().astype(bool)) & ~rel
        if rel.any() and not torch.isfinite(scores[rel]).all():
            raise ValueError(f"model '{model.name}' returned NaN/inf scores in the full-ranking protocol")
        others = scores.masked_fill(rel | exc, -torch.inf)
        chunks.append(positions_from_scores(others, scores.masked_fill(~rel, -torch.inf), rel.sum(1)))
        top_lists.append(torch.topk(scores.masked_fill(exc, -torch.inf), k, dim=1).indices.numpy())
    width = max([c.shape[1] for c in chunks] + [1])
    positions = np.full((len(eval_users), width), np.inf)
    if chunks:
        positions[rows_rankable] = np.concatenate(
            [np.pad(c, ((0, 0), (0, width - c.shape[1])), constant_values=np.inf) for c in chunks])
    recommended = np.concatenate(top_lists) if top_lists else np.zeros((0, k), dtype=np.int64)
    return Ranking(eval_users[keep], positions[keep], n_total[keep], n_unknown=n_unknown,
                   recommended=recommended, list_users=eval_users[rows_rankable])


def rating_errors(model: Recommender, evaluation: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """(user_ids, errors = predicted - actual, n_unknown) for the evaluation ratings the model can predict.

    Only for rating models (`model.task == "rating"`): implicit scores are not ratings. Pairs with a user
    or item unknown to the model have no prediction and are left out (counted in n_unknown)."""
    if model.task != "rating":
        raise ValueError(f"model '{model.name}' is an implicit model; RMSE/MAE need a model trained with task='rating'")
    if "rating" not in evaluation.columns:
        raise ValueError("the evaluation data has no 'rating' column; the rating protocol needs ratings")
    ev = evaluation[["user_id", "item_id", "rating"]]
    u = model.user_index(ev["user_id"].to_numpy())
    i = model.item_index(ev["item_id"].to_numpy())
    known = (u >= 0) & (i >= 0)
    pred = model.score_pairs(u[known], i[known]).astype(np.float64)
    actual = ev["rating"].to_numpy(dtype=np.float64)[known]
    return ev["user_id"].astype(str).to_numpy()[known], pred - actual, int((~known).sum())


# =========================================================================== confidence intervals
def _group_sums(values, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group labels, per-group sums, per-group counts) of per-row values."""
    labels, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    v = np.asarray(values, dtype=np.float64)
    return labels, np.bincount(inverse, weights=v, minlength=len(labels)), np.bincount(inverse, minlength=len(labels))


def _bootstrap_draws(n_groups: int, n_boot: int, seed: int, max_cells: int = 4_000_000):
    """Yield blocks of resampled group indices [b, n_groups] (seeded; memory bounded by max_cells)."""
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, max_cells // max(n_groups, 1)))
    for start in range(0, n_boot, block):
        yield rng.integers(0, n_groups, size=(min(block, n_boot - start), n_groups))


def _ratio_stat(sums, counts, statistic):
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return np.sqrt(mean) if statistic == "rmse" else mean


def bootstrap_ci(values, groups=None, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                 statistic: str = "mean") -> tuple[float, float, float]:
    """(point estimate, low, high): percentile bootstrap interval over users (groups), vectorised, seeded.

    values: one per row; groups: the user of each row (None = each row its own user). The estimate is
    the mean over rows ("mean") or the square root of it ("rmse", values = squared errors); resampling
    whole users keeps the rows of one user together (cluster bootstrap). The interval contains the
    estimate for any sane data and narrows like 1/sqrt(n_users).
    """
    if statistic not in ("mean", "rmse"):
        raise ValueError(f"statistic must be 'mean' or 'rmse', got {statistic!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return (np.nan, np.nan, np.nan)
    _, sums, counts = _group_sums(v, np.arange(len(v)) if groups is None else groups)
    point = float(_ratio_stat(sums.sum(), counts.sum(), statistic))
    stats = np.concatenate([_ratio_stat(sums[idx].sum(1), counts[idx].sum(1), statistic)
                            for idx in _bootstrap_draws(len(sums), n_boot, seed)])
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return point, float(min(low, point)), float(max(high, point))


def paired_comparison(values_a, values_b, groups, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0, statistic: str = "mean", n_permutations: int = 10_000) -> dict:
    """Paired difference A - B of two models' per-row values on the same rows (same users, same candidates).

    statistic: "mean" (the figure is the mean of the values over rows) or "rmse" (values are squared
    errors, the figure is the root of their mean). Returns mean_a, mean_b (the two figures),
    diff = A - B, ci_low, ci_high (paired cluster bootstrap: the same resampled users for both
    models), p_value and n_users. p_value: two-sided paired sign-flip permutation test over users
    (under "no difference" each user's summed difference is as likely negative as positive), on the
    same row-weighted statistic as `diff`, so the test and the interval agree; its resolution is
    1 / (n_permutations + 1); 1.0 when the two models are identical on every row.
    """
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length ({len(a)} vs {len(b)}); evaluate both on the same rows")
    _, sa, counts = _group_sums(a, groups)
    _, sb, _ = _group_sums(b, groups)
    diffs = np.concatenate([_ratio_stat(sa[idx].sum(1), counts[idx].sum(1), statistic)
                            - _ratio_stat(sb[idx].sum(1), counts[idx].sum(1), statistic)
                            for idx in _bootstrap_draws(len(sa), n_boot, seed)])
    mean_a = float(_ratio_stat(sa.sum(), counts.sum(), statistic))
    mean_b = float(_ratio_stat(sb.sum(), counts.sum(), statistic))
    diff = mean_a - mean_b
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return {"mean_a": mean_a, "mean_b": mean_b, "diff": diff, "ci_low": float(min(low, diff)),
            "ci_high": float(max(high, diff)), "p_value": sign_flip_p_value(sa - sb, n_permutations, seed),
            "n_users": int(len(counts))}


def sign_flip_p_value(user_differences, n_permutations: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value, in (0, 1], of "the summed per-user differences are symmetric around 0":
    share of random sign flips (users kept whole) whose |sum| reaches the observed |sum| (with the
    observed one counted, so never 0). Vectorised in blocks; seeded."""
    d = np.asarray(user_differences, dtype=np.float64)
    observed = abs(d.sum())
    if np.allclose(d, 0):
        return 1.0
    rng = np.random.default_rng(seed)
    block = max(1, min(n_permutations, 4_000_000 // max(len(d), 1)))
    reached = 0
    for start in range(0, n_permutations, block):
        signs = rng.integers(0, 2, size=(min(block, n_permutations - start), len(d))) * 2 - 1
        reached += int((np.abs(signs @ d) >= observed * (1 - 1e-12)).sum())
    return (reached + 1) / (n_permutations + 1)


# =========================================================================== everything at once
@dataclass
class EvaluationResult:
    """What `evaluate_models` returns.

    summary: tidy DataFrame model, protocol, metric, k, value, ci_low, ci_high, n_users, n_rows, n_unknown
    (one row per model x protocol x metric; catalogue coverage has no interval).
    per_row: tidy DataFrame model, protocol, metric, k, user_id, value (one row per ranking problem;
    what the bootstrap resamples and what breakdowns by user group use).
    rankings: {(model, protocol): Ranking} for curves over K.
    """

    summary: pd.DataFrame
    per_row: pd.DataFrame
    rankings: dict = field(default_factory=dict)
    candidates: pd.DataFrame | None = None
    config: dict = field(default_factory=dict)

    def table(self, digits: int = 3) -> pd.DataFrame:
        """Wide table for reading: one row per model, one column per protocol/metric, "value [low, high]"."""
        s = self.summary
        text = s.apply(lambda r: f"{r.value:.{digits}f}" + ("" if pd.isna(r.ci_low) else
                       f" [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"), axis=1)
        label = s["protocol"] + " " + s["metric"] + np.where(s["k"].notna(), "@" + s["k"].astype("string"), "")
        wide = pd.DataFrame({"model": s["model"], "column": label, "text": text}).pivot(
            index="model", columns="column", values="text")
        return wide.reindex(index=pd.unique(s["model"]), columns=pd.unique(label))


def _ranking_rows(model_name, protocol, k, ranking: Ranking, metrics) -> list[pd.DataFrame]:
    all_metrics = ranking_metrics(ranking.positions, k, ranking.n_relevant)
    return [pd.DataFrame({"model": model_name, "protocol": protocol, "metric": m,
                          "k": np.nan if m == "mrr" else k,  # MRR has no cut-off
                          "user_id": ranking.user_ids, "value": all_metrics[m]}) for m in metrics]


def item_embedding_from_interactions(train: pd.DataFrame, item_ids: np.ndarray, dim: int = 32) -> np.ndarray:
    """A model-independent item embedding for intra-list diversity: the top `dim` right singular vectors
    (times singular values) of the binary training user x item matrix, rows in `item_ids` order."""
    from scipy.sparse.linalg import svds

    users = np.unique(train["user_id"].astype(str).to_numpy())
    u = encode_ids(train["user_id"], users)
    i = encode_ids(train["item_id"], item_ids)
    keep = i >= 0
    x = interaction_matrix(u[keep], i[keep], len(users), len(item_ids)).astype(np.float64)
    dim = int(min(dim, min(x.shape) - 1))
    if dim < 1:
        return np.ones((len(item_ids), 1), dtype=np.float32)
    _, s, vt = svds(x, k=dim, random_state=0)
    return (vt.T * s).astype(np.float32)


def _list_rows(model_name, model: Recommender, ranking: Ranking, k, categories, embedding) -> list[pd.DataFrame]:
    rec, users = ranking.recommended, ranking.list_users
    out = {"novelty": novelty(rec, model.item_popularity, model.n_users),
           "avg_popularity": average_popularity(rec, model.item_popularity)}
    if categories is not None:
        cats = categories.reindex(model.item_ids).to_numpy()
        out["ild_category"] = intra_list_diversity_by_category(rec, cats)
    if embedding is not None:
        out["ild_embedding"] = intra_list_diversity_by_embedding(rec, embedding.reindex(model.item_ids).to_numpy())
    return [pd.DataFrame({"model": model_name, "protocol": "full", "metric": m, "k": k, "user_id": users,
                          "value": v}) for m, v in out.items()]


def evaluate_models(models: dict, train: pd.DataFrame, evaluation: pd.DataFrame, protocols=("sampled", "full", "rating"),
                    k: int = 10, n_negatives: int = 99, seed: int = 0, unknown: str = "miss", n_boot: int = 1000,
                    item_categories: pd.Series | None = None, candidates: pd.DataFrame | None = None,
                    verbose: bool = True) -> EvaluationResult:
    """Evaluate every model of `models` ({name: fitted Recommender}) with every protocol, the same way.

    protocols: any of "sampled" (each evaluation interaction vs `n_negatives` shared negatives, drawn once
    with `seed`), "full" (every unseen item ranked; also coverage, novelty, popularity and intra-list
    diversity of the top-k lists), "rating" (RMSE/MAE, rating models only; implicit ones are skipped
    with a printed note). unknown: "miss" (default; evaluation data unknown to train/the model counts as a
    miss, figures are over all evaluation users) or "drop". item_categories: category string per item id
    (index) for the category diversity. Intervals: 95% cluster bootstrap over users, `n_boot` draws
    seeded with `seed`.
    """
    protocols = list(protocols)
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad:
        raise ValueError(f"unknown protocol(s) {bad}; choose from {PROTOCOLS}")
    if not models:
        raise ValueError("no models to evaluate; pass {name: fitted Recommender}")
    rows, summary, rankings = [], [], {}
    if "sampled" in protocols and candidates is None:
        candidates = sampled_candidates(train, evaluation, n_negatives=n_negatives, seed=seed)
    unknown_rows = _unknown_rows(train, evaluation) if "sampled" in protocols else None
    item_codes = candidate_item_codes(candidates) if "sampled" in protocols else None
    embedding = None
    if "full" in protocols:
        all_items = np.unique(train["item_id"].astype(str).to_numpy())
        embedding = pd.DataFrame(item_embedding_from_interactions(train, all_items), index=all_items)
    for name, model in models.items():
        for protocol in protocols:
            t0 = time.perf_counter()
            if protocol == "sampled":
                ranking = sampled_ranking(model, candidates, unknown_rows, unknown=unknown, item_codes=item_codes)
                new = _ranking_rows(name, protocol, k, ranking, SAMPLED_METRICS)
            elif protocol == "full":
                ranking = full_ranking(model, evaluation, train, k=k, unknown=unknown)
                new = _ranking_rows(name, protocol, k, ranking, FULL_METRICS)
                new += _list_rows(name, model, ranking, k, item_categories, embedding)
                coverage = catalogue_coverage(ranking.recommended, model.n_items)
                summary.append({"model": name, "protocol": protocol, "metric": "coverage", "k": k, "value": coverage,
                                "ci_low": np.nan, "ci_high": np.nan, "n_users": len(ranking.list_users),
                                "n_rows": len(ranking.list_users), "n_unknown": ranking.n_unknown})
            else:
                if model.task != "rating":
                    if verbose:
                        print(f"rating protocol: '{name}' is an implicit model (scores are not ratings); skipped")
                    continue
                users, errors, n_unk = rating_errors(model, evaluation)
                ranking = Ranking(users, np.zeros((len(users), 0)), np.zeros(len(users), dtype=np.int64), n_unk)
                new = [pd.DataFrame({"model": name, "protocol": protocol, "metric": "rmse", "k": np.nan,
                                     "user_id": users, "value": errors ** 2}),
                       pd.DataFrame({"model": name, "protocol": protocol, "metric": "mae", "k": np.nan,
                                     "user_id": users, "value": np.abs(errors)})]
            rankings[(name, protocol)] = ranking
            for frame in new:
                metric = frame["metric"].iloc[0] if len(frame) else ""
                value, low, high = bootstrap_ci(frame["value"], frame["user_id"], n_boot=n_boot, seed=seed,
                                                statistic="rmse" if metric == "rmse" else "mean")
                summary.append({"model": name, "protocol": protocol, "metric": metric,
                                "k": frame["k"].iloc[0] if len(frame) else np.nan, "value": value,
                                "ci_low": low, "ci_high": high, "n_users": frame["user_id"].nunique(),
                                "n_rows": len(frame), "n_unknown": ranking.n_unknown})
            rows.extend(new)
            if verbose:
                print(f"{name:>10} {protocol:>7}: {time.perf_counter() - t0:6.2f} s")
    order = {m: i for i, m in enumerate(SAMPLED_METRICS + FULL_METRICS + ["coverage"] + LIST_METRICS + RATING_METRICS)}
    summary = pd.DataFrame(summary).astype({"k": "Int64"})
    summary = summary.sort_values(["protocol", "metric", "model"], key=lambda c: c.map(
        {**{p: i for i, p in enumerate(PROTOCOLS)}, **order, **{m: i for i, m in enumerate(models)}}),
        kind="stable").reset_index(drop=True)
    per_row = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["model", "protocol", "metric", "k", "user_id", "value"])
    config = {"protocols": protocols, "k": k, "n_negatives": n_negatives, "seed": seed, "unknown": unknown,
              "n_boot": n_boot}
    return EvaluationResult(summary, per_row, rankings, candidates, config)


def paired_comparisons(result: EvaluationResult, pairs=None, metrics=("hr", "ndcg", "rmse")) -> pd.DataFrame:
    """Paired comparison of models on the same rows: model_a, model_b, protocol, metric, diff (A - B),
    ci_low, ci_high, p_value, ... for every pair (default: each model against every later one)."""
    names = list(pd.unique(result.per_row["model"]))
    pairs = pairs if pairs is not None else [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    out = []
    n_boot, seed = result.config.get("n_boot", 1000), result.config.get("seed", 0)
    for (protocol, metric), frame in result.per_row.groupby(["protocol", "metric"], sort=False):
        if metric not in metrics:
            continue
        for a, b in pairs:
            fa, fb = frame[frame["model"] == a], frame[frame["model"] == b]
            if len(fa) == 0 or len(fb) == 0:
                continue
            if len(fa) != len(fb) or not (fa["user_id"].to_numpy() == fb["user_id"].to_numpy()).all():
                raise ValueError(f"{a} and {b} were not evaluated on the same rows in {protocol}; "
                                 "use unknown='miss' so both cover every evaluation row")
            res = paired_comparison(fa["value"], fb["value"], fa["user_id"], n_boot=n_boot, seed=seed,
                                    statistic="rmse" if metric == "rmse" else "mean")
            out.append({"model_a": a, "model_b": b, "protocol": protocol, "metric": metric,
                        "k": fa["k"].iloc[0], **res})
    return pd.DataFrame(out)


def metrics_over_k(result: EvaluationResult, ks=range(1, 21), metrics=("hr", "ndcg"),
                   protocols=("sampled", "full"), ci: bool = True) -> pd.DataFrame:
    """HR@K / NDCG@K (and any ranking metric) for every K from the stored rankings: tidy DataFrame
    model, protocol, metric, k, value, ci_low, ci_high."""
    out = []
    n_boot, seed = result.config.get("n_boot", 1000), result.config.get("seed", 0)
    for (name, protocol), ranking in result.rankings.items():
        if protocol not in protocols:
            continue
        for k in ks:
            for metric in metrics:
                values = ranking_metrics(ranking.positions, k, ranking.n_relevant)[metric]
                point, low, high = (bootstrap_ci(values, ranking.user_ids, n_boot=n_boot, seed=seed) if ci
                                    else (float(values.mean()), np.nan, np.nan))
                out.append({"model": name, "protocol": protocol, "metric": metric, "k": k, "value": point,
                            "ci_low": low, "ci_high": high})
    return pd.DataFrame(out)


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


# =========================================================================== evaluation.ipynb support
ID_ALIASES = {"userId": "user_id", "movieId": "item_id", "itemId": "item_id", "genres": "item_category"}
PARAMETER_DEFAULTS = {"DATASET": "ml-100k", "SPLIT": "random", "MODELS": ["popular", "itemknn", "ease", "bias", "mf", "collabnn",
                                                                     "collabnn_mlp", "mf_rating", "collabnn_rating"],
                      "K": 10, "PROTOCOLS": PROTOCOLS, "N_NEGATIVES": 99, "SEED": 0, "SAMPLE": 0,
                      "DATA_DIR": "data", "MODEL_DIR": "model", "OUTPUT_DIR": "reports"}


def check_parameters(**params) -> dict:
    """The notebook's parameters, validated (unknown names and bad values raise ValueError naming the
    allowed ones); returns them as a dict."""
    from helpers.split import SPLITS

    unknown = sorted(set(params) - set(PARAMETER_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(PARAMETER_DEFAULTS)}")
    p = {**PARAMETER_DEFAULTS, **params}
    if p["SPLIT"] not in SPLITS:
        raise ValueError(f"SPLIT={p['SPLIT']!r}; choose one of {SPLITS}")
    if isinstance(p["PROTOCOLS"], str):
        p["PROTOCOLS"] = [p["PROTOCOLS"]]
    bad = [x for x in p["PROTOCOLS"] if x not in PROTOCOLS]
    if bad or not p["PROTOCOLS"]:
        raise ValueError(f"PROTOCOLS={p['PROTOCOLS']!r}; choose one or more of {PROTOCOLS}")
    if isinstance(p["MODELS"], str):
        p["MODELS"] = [p["MODELS"]]
    if not p["MODELS"]:
        raise ValueError("MODELS is empty; name at least one model, e.g. ['popular', 'ease']")
    for name in p["MODELS"]:
        model_class(name)
    for key, low in (("K", 1), ("N_NEGATIVES", 1), ("SAMPLE", 0), ("SEED", 0)):
        if not isinstance(p[key], (int, np.integer)) or p[key] < low:
            raise ValueError(f"{key}={p[key]!r}; expected an integer >= {low}")
    return p


def model_class(entry: str) -> tuple[type, str | None]:
    """(Recommender class, task or None) of a MODELS entry: "NAME" or "NAME_TASK" (e.g. "mf_rating")."""
    from helpers.recommender import MODEL_CLASSES
    import helpers.baselines  # noqa: F401  (registers the baselines)
    import helpers.models  # noqa: F401  (registers the neural models)

    if entry in MODEL_CLASSES:
        return MODEL_CLASSES[entry], None
    name, _, task = entry.rpartition("_")
    if name in MODEL_CLASSES and task in ("rating", "implicit"):
        return MODEL_CLASSES[name], task
    raise ValueError(f"unknown model {entry!r}; choose from {sorted(MODEL_CLASSES)}, optionally with a task "
                     "suffix for the neural models ('mf_rating', 'collabnn_implicit')")


def read_split(data_dir) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(train, evaluation) from DATA_DIR/train.csv and DATA_DIR/evaluation.csv (None when either is
    missing). Ids are read as strings; MovieLens headers (userId, movieId, genres) are renamed."""
    data_dir = Path(data_dir)
    files = [data_dir / "train.csv", data_dir / "evaluation.csv"]
    if not all(f.exists() for f in files):
        return None
    frames = []
    for f in files:
        frame = pd.read_csv(f, dtype={c: str for c in ("user_id", "item_id", "userId", "movieId", "itemId")})
        frames.append(frame.rename(columns={k: v for k, v in ID_ALIASES.items()
                                            if k in frame.columns and v not in frame.columns}))
    return frames[0], frames[1]


def evaluation_data(data_dir, dataset: str = "ml-100k", split: str = "random", seed: int = 0,
                    sample: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, evaluation, where they came from). DATA_DIR's split files when present (written by
    training.ipynb / the pipeline); otherwise `dataset` is loaded and split here (nothing is written).
    sample > 0 keeps about that many interactions (whole users); split files holding no more than
    1.5 x sample rows (already a sample of that size) are used as they are."""
    from helpers.data import load, sample_users
    from helpers.split import make_split

    files = read_split(data_dir)
    if files is not None:
        train, evaluation = files
        source = f"{Path(data_dir) / 'train.csv'}, {Path(data_dir) / 'evaluation.csv'}"
        if sample and len(train) + len(evaluation) > 1.5 * sample:
            users = set(sample_users(pd.concat([train, evaluation]), sample, seed=seed)["user_id"])
            train = train[train["user_id"].isin(users)].reset_index(drop=True)
            evaluation = evaluation[evaluation["user_id"].isin(users)].reset_index(drop=True)
            source += f" (users sampled to about {sample:,} interactions)"
        return train, evaluation, source
    df = sample_users(load(dataset), sample, seed=seed)
    train, evaluation = make_split(df, split=split, seed=seed)
    return train, evaluation, f"{dataset}, {split} split made here (seed {seed}{f', sample {sample:,}' if sample else ''})"


def _attribute(frames, column: str, key: str) -> pd.Series | None:
    parts = [f[[key, column]] for f in frames if column in f.columns and key in f.columns]
    if not parts:
        return None
    values = pd.concat(parts).dropna().drop_duplicates(key).set_index(key)[column]
    return values if len(values) else None


def item_categories(*frames) -> pd.Series | None:
    """Category string per item id ("Comedy|Drama") from any frame with item_category (or genres)."""
    return _attribute(frames, "item_category", "item_id")


def user_genders(*frames) -> pd.Series | None:
    """Gender per user id ("M"/"F") from any frame with a user_gender column; None when there is none."""
    genders = _attribute(frames, "user_gender", "user_id")
    return None if genders is None else genders.astype(str)


def check_model_fits(model: Recommender, train: pd.DataFrame, evaluation: pd.DataFrame, path) -> None:
    """Raise ValueError when a saved model cannot be evaluated fairly on this split: it has seen
    evaluation interactions in training (leakage), or it does not know the training users and items."""
    seen = model.exclusion_matrix(evaluation[["user_id", "item_id"]])
    leaked = seen.multiply(model.seen).nnz
    if leaked:
        raise ValueError(f"{path} was trained on {leaked:,} of the evaluation interactions (another split); "
                         "retrain it with training.ipynb on this DATA_DIR, or point MODEL_DIR at an empty "
                         "folder so the missing models are trained here")
    missing_users = (model.user_index(np.unique(train["user_id"].astype(str))) < 0).sum()
    missing_items = (model.item_index(np.unique(train["item_id"].astype(str))) < 0).sum()
    if missing_users or missing_items:
        raise ValueError(f"{path} does not know {missing_users:,} training users and {missing_items:,} training "
                         "items: it was trained on other data; retrain it on this DATA_DIR or point MODEL_DIR "
                         "at an empty folder")


def load_or_train(entries, train: pd.DataFrame, evaluation: pd.DataFrame, model_dir="model", seed: int = 0,
                  verbose: bool = True) -> tuple[dict, pd.DataFrame]:
    """({entry: fitted model}, table of where each came from). MODEL_DIR/<entry>.pth is loaded with
    `load_model` when present (and checked with `check_model_fits`); otherwise the model is trained here
    on `train` with its defaults (neural models: the entry's task, default implicit, and `seed`) and
    not saved."""
    from helpers.recommender import load_model

    models, rows = {}, []
    for entry in entries:
        cls, task = model_class(entry)
        path = Path(model_dir) / f"{entry}.pth"
        start = time.perf_counter()
        if path.exists():
            model = load_model(path)
            check_model_fits(model, train, evaluation, path)
            source = f"loaded {path}"
        else:
            neural = bool(getattr(cls, "defaults", None))
            model = cls(task=task or "implicit", seed=seed) if neural else cls()
            model.fit(train)
            source = "trained here"
        seconds = time.perf_counter() - start
        models[entry] = model
        rows.append({"model": entry, "class": cls.name, "task": model.task, "source": source,
                     "seconds": round(seconds, 2), "config": {k: v for k, v in model.config.items()
                                                              if k not in ("progress", "device")}})
        if verbose:
            print(f"{entry}: {source} ({seconds:.1f} s)")
    return models, pd.DataFrame(rows)


def _records(frame: pd.DataFrame, keys: list[str]) -> dict:
    """Nested dict keys[0] -> keys[1] -> ... -> "metric@k" -> {value, ci_low, ci_high}."""
    out: dict = {}
    for row in frame.itertuples(index=False):
        node = out
        for key in keys:
            node = node.setdefault(str(getattr(row, key)), {})
        label = row.metric if pd.isna(row.k) else f"{row.metric}@{int(row.k)}"
        node[label] = {"value": row.value, "ci_low": row.ci_low, "ci_high": row.ci_high}
    return out


def report_values(result: EvaluationResult, paired: pd.DataFrame | None = None, over_k: pd.DataFrame | None = None,
                  by_group: dict | None = None) -> dict:
    """What evaluation.ipynb records in metrics.json: results[protocol][model]["hr@10"] = {value, ci_low,
    ci_high}, the paired comparisons, the curves over K and the breakdowns by user group."""
    out = {"config": result.config,
           "results": _records(result.summary, ["protocol", "model"]),
           "n_unknown": {f"{r.protocol}/{r.model}": int(r.n_unknown) for r in
                         result.summary.drop_duplicates(["protocol", "model"]).itertuples()}}
    if paired is not None and len(paired):
        out["paired"] = paired.to_dict("records")
    if over_k is not None and len(over_k):
        out["over_k"] = {p: {m: {metric: g.sort_values("k")["value"].tolist() for metric, g in mg.groupby("metric")}
                             for m, mg in pg.groupby("model", sort=False)} for p, pg in over_k.groupby("protocol")}
    for name, table in (by_group or {}).items():
        if table is not None and len(table):
            group_col = [c for c in table.columns if c not in ("model", "protocol", "metric", "k", "value",
                                                               "ci_low", "ci_high", "n_users")][0]
            out[f"by_{name}"] = _records(table, ["protocol", group_col, "model"])
    return out

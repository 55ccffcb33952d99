"""Evaluation protocols. Every protocol takes any `Recommender` (see helpers.models).

- Sampled (NCF, He et al. 2017): each evaluation interaction is ranked against `n_negatives` items
  the user never interacted with, drawn once with a seed and shared by every model compared
  (`helpers.data.sampled_candidates`, `sampled_ranking`). The figure is a mean over interactions.
- Full ranking: each evaluation user's items are ranked among every item not seen in training
  (`full_ranking`, batched `score_users` + `torch.topk`). The figure is a mean over users.
- Rating: RMSE / MAE of rating models on the evaluation ratings (`rating_errors`).

Ties always count against the relevant item (pessimistic). Users unknown to the model (cold users: on a
global split of data where most users rate once, most evaluation users) are scored by the model's cold-start
path, `Recommender.score_new_users`: the popularity list `recommend` serves them, or, for a model with side
features, scores from the user's features read from the evaluation rows (user metadata, not interactions).
Items unknown to the model count as a miss by default (`unknown="miss"`); `unknown="drop"` leaves out every
row of an unknown user or item, as the NCF code does; the count is reported either way. Cold items have
their own protocol (`cold_item_ranking`): the held-out item ranked among all the evaluation's cold items.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from helpers.data.interactions import encode_ids
from helpers.metrics import positions_from_ranks, positions_from_scores, ranking_metrics
from helpers.models import Recommender

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

    def metric(self, name: str, k: int) -> np.ndarray:
        """Per-row values of a ranking metric ("hr", "ndcg", "precision", "recall", "map", "mrr") at cut-off k."""
        return ranking_metrics(self.positions, k, self.n_relevant)[name]

    def mean(self, name: str, k: int) -> float:
        """The figure of a ranking metric at k: its mean over rows (sampled: interactions; full: users), in [0, 1]."""
        return float(self.metric(name, k).mean())


def unknown_evaluation_rows(train: pd.DataFrame, evaluation: pd.DataFrame, cold_users: bool = True) -> pd.DataFrame:
    """Evaluation rows that `sampled_candidates` drops: those whose item is not in `train` (and, unless
    `cold_users`, those whose user is not)."""
    items = np.unique(train["item_id"].astype(str).to_numpy())
    ev = evaluation[["user_id", "item_id"]].astype(str)
    known = encode_ids(ev["item_id"], items) >= 0
    if not cold_users:
        known &= encode_ids(ev["user_id"], np.unique(train["user_id"].astype(str).to_numpy())) >= 0
    return ev[~known].reset_index(drop=True)


def user_side(evaluation: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluation user (index user_id) with the side columns the rows carry (user_gender, ...):
    what `Recommender.score_new_users` reads for cold users."""
    cols = [c for c in evaluation.columns if c.startswith("user_") and c != "user_id"]
    side = evaluation[["user_id", *cols]].astype({"user_id": str})
    return side.drop_duplicates("user_id").set_index("user_id")


def new_user_scores(model: Recommender, users: np.ndarray, side: pd.DataFrame) -> torch.Tensor:
    """`model.score_new_users` for raw ids `users` (distinct, not in the model), in that order."""
    frame = side.reindex(users).rename_axis("user_id").reset_index()
    return model.score_new_users(frame).float()


# Cold users are scored once per distinct side profile (their user_ columns): up to this many profiles; above,
# every cold user is scored on their own, in batches (a profile then holds about one user).
PROFILE_MAX = 4096


def cold_user_profiles(users: np.ndarray, side: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(one user of each distinct side profile, the profile of each of `users`, 0..P-1): a cold user's scores
    depend only on their side columns (`Recommender.score_new_users`), so each profile is scored once
    (Electronics' global split: 216,216 cold users, three profiles: female, male, unknown)."""
    users = np.asarray(users)
    frame = side.reindex(users)
    if len(users) == 0 or frame.shape[1] == 0:
        return users[:1], np.zeros(len(users), dtype=np.int64)
    profile = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroup().to_numpy().astype(np.int64)
    first = np.unique(profile, return_index=True)[1]  # the first user of profile 0, 1, ... (numbered as they appear)
    return users[first], profile


def _profile_positions(table: np.ndarray, profile: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Pessimistic positions [n, max relevant] of each row's relevant items (CSR, no exclusions) under the score
    vector of its profile (`table[profile]`): the same as `positions_from_scores` on the dense rows, counted
    from each profile's sorted scores (items scoring >= v, less the row's relevant ones scoring >= v, plus
    the item's place among the row's relevant items, ties against it) instead of n x n_items comparisons."""
    n, n_items = len(profile), table.shape[1]
    per_row = np.diff(relevant.indptr)
    width = int(per_row.max()) if n else 0
    positions = np.full((n, width), np.inf)
    if width == 0:
        return positions
    row_of = np.repeat(np.arange(n), per_row)
    v = table[profile[row_of], relevant.indices]
    n_ge = np.empty(len(v))
    for p in np.unique(profile[row_of]):
        sel = profile[row_of] == p
        n_ge[sel] = n_items - np.searchsorted(np.sort(table[p]), v[sel], side="left")
    order = np.lexsort((-v, row_of))  # by row, then by score, descending
    rows, values, n_ge = row_of[order], v[order], n_ge[order]
    new_row = np.r_[True, rows[1:] != rows[:-1]]
    row_start = np.maximum.accumulate(np.where(new_row, np.arange(len(rows)), 0))
    place = np.arange(len(rows)) - row_start
    new_tie = new_row | np.r_[True, values[1:] != values[:-1]]
    tie_end = np.r_[np.flatnonzero(new_tie)[1:], len(rows)] - 1  # last entry of each tie group
    relevant_ge = tie_end[np.cumsum(new_tie) - 1] - row_start + 1  # the row's relevant items scoring >= v
    positions[rows, place] = n_ge - relevant_ge + place
    return positions


def candidate_item_codes(candidates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(vocabulary of candidate item ids, codes [n_rows, 1 + n_negatives]: column 0 the positive).
    Computed once and shared by every model (string look-ups of 100 x n_rows ids are the slow part)."""
    if len(candidates) == 0:
        return np.array([], dtype=str), np.zeros((0, 1), dtype=np.int64)
    negs = np.stack(candidates["negatives"].to_numpy())
    # hashed as they are (sampled_candidates' str objects, 8 bytes each): a fixed-width str copy of 25 million ids
    # is a gigabyte; only the vocabulary is turned into str
    ids = np.concatenate([candidates["item_id"].to_numpy(dtype=object)[:, None], negs.astype(object, copy=False)], axis=1)
    codes, vocabulary = pd.factorize(ids.ravel())  # hashing: seconds faster than np.unique's sort here
    vocabulary = np.asarray(vocabulary, dtype=object).astype(str)
    if len(np.unique(vocabulary)) < len(vocabulary):  # ids of several types that read the same (1 and "1")
        codes, vocabulary = pd.factorize(vocabulary[codes])
        vocabulary = np.asarray(vocabulary, dtype=str)
    return vocabulary, codes.reshape(ids.shape).astype(np.int64)


def sampled_ranking(model: Recommender, candidates: pd.DataFrame, unknown_rows: pd.DataFrame | None = None,
                    unknown: str = "miss", item_codes: tuple | None = None,
                    side: pd.DataFrame | None = None) -> Ranking:
    """Sampled protocol for one model on shared `candidates` (from `sampled_candidates`).

    Ties count against the positive (rank = negatives scoring >= the positive). unknown="miss": evaluation rows whose user or
    item the candidates could not include (`unknown_rows`), and rows whose user or positive this model
    does not know, are misses (position inf), so the figure is over every evaluation interaction;
    negatives unknown to this model are scored -inf (never above the positive). unknown="drop": those
    rows are left out (the NCF convention); the count is in `n_unknown` either way.
    item_codes: `candidate_item_codes(candidates)`, computed once when several models share them.
    side: `user_side(evaluation)`; with it, rows of users unknown to the model are scored by its cold-start
    path (`score_new_users`) under unknown="miss"; without it they are misses.
    """
    if unknown not in UNKNOWN:
        raise ValueError(f"unknown must be one of {UNKNOWN}, got {unknown!r}")
    vocabulary, codes = candidate_item_codes(candidates) if item_codes is None else item_codes
    u = model.user_index(candidates["user_id"].to_numpy())
    items = model.item_index(vocabulary)[codes] if len(vocabulary) else codes
    cold_row = (u < 0) & (items[:, 0] >= 0) & (unknown == "miss") & (side is not None)
    ok_row = ((u >= 0) & (items[:, 0] >= 0)) | cold_row
    scores = np.full(items.shape, -np.inf, dtype=np.float32)
    ok = ok_row[:, None] & (items >= 0)
    rows, cols = np.nonzero(ok & (u >= 0)[:, None])
    scores[rows, cols] = model.score_pairs(u[rows], items[rows, cols])
    if cold_row.any():  # cold users: the model's cold-start scores, gathered at the candidates
        cand_users = candidates["user_id"].astype(str).to_numpy()
        cold_users, cold_of_row = np.unique(cand_users[cold_row], return_inverse=True)
        cold_rows = np.flatnonzero(cold_row)
        reps, profile = cold_user_profiles(cold_users, side)
        if len(reps) <= PROFILE_MAX:  # one score vector per profile
            table = new_user_scores(model, reps, side).numpy()
            cand = items[cold_rows]
            got = table[profile[cold_of_row][:, None], np.maximum(cand, 0)]
            scores[cold_rows] = np.where(cand >= 0, got, -np.inf)
        else:
            for start in range(0, len(cold_users), 1024):
                block = np.flatnonzero((cold_of_row >= start) & (cold_of_row < start + 1024))
                table = new_user_scores(model, cold_users[start:start + 1024], side).numpy()
                r = cold_rows[block]
                cand = items[r]
                got = np.take_along_axis(table[cold_of_row[block] - start], np.maximum(cand, 0), axis=1)
                scores[r] = np.where(cand >= 0, got, -np.inf)
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
    cold = (model_u < 0) & (n_total > 0) & (unknown == "miss")
    if unknown == "drop":
        keep = rankable
    else:
        keep = n_total > 0
    known_item = (i_all >= 0) if unknown == "miss" else known_pair  # cold users' known items are relevant too
    relevant = sp.csr_matrix((np.ones(int(known_item.sum()), dtype=bool),
                              (user_row[known_item], i_all[known_item])), shape=(len(eval_users), model.n_items))
    excl = model.exclusion_matrix(train if train is not None else "train")
    k = int(min(k, model.n_items))
    side = user_side(evaluation) if cold.any() else None
    rows_rankable = np.concatenate([np.flatnonzero(rankable), np.flatnonzero(cold)])
    n_warm = int(rankable.sum())
    cold_rows = rows_rankable[n_warm:]
    reps, profile = cold_user_profiles(eval_users[cold_rows], side) if len(cold_rows) else (None, None)
    by_profile = reps is not None and len(reps) <= PROFILE_MAX
    chunks, top_lists = [], []
    starts = list(range(0, n_warm, batch_size))
    if not by_profile:
        starts += list(range(n_warm, len(rows_rankable), batch_size))
    for start in starts:
        rows = rows_rankable[start:min(start + batch_size, n_warm if start < n_warm else len(rows_rankable))]
        rel = torch.from_numpy(relevant[rows].toarray())
        if start < n_warm:
            users = model_u[rows]
            scores = model.score_users(users).float()
            exc = torch.from_numpy(excl[users].toarray().astype(bool)) & ~rel
        else:  # cold users: the model's cold-start scores, nothing of theirs seen in training
            scores = new_user_scores(model, eval_users[rows], side)
            exc = torch.zeros_like(rel)
        if rel.any() and not torch.isfinite(scores[rel]).all():
            raise ValueError(f"model '{model.name}' returned NaN/inf scores in the full-ranking protocol")
        others = scores.masked_fill(rel | exc, -torch.inf)
        chunks.append(positions_from_scores(others, scores.masked_fill(~rel, -torch.inf), rel.sum(1)))
        top_lists.append(torch.topk(scores.masked_fill(exc, -torch.inf), k, dim=1).indices.numpy())
    if by_profile:  # cold users: one score vector per side profile, nothing of theirs seen in training
        table = torch.nan_to_num(new_user_scores(model, reps, side), nan=-torch.inf)  # NaN ranks nowhere, as in >=
        rel_cold = relevant[cold_rows]
        values = table.numpy()[profile[np.repeat(np.arange(len(cold_rows)), np.diff(rel_cold.indptr))], rel_cold.indices]
        if not np.isfinite(values).all():
            raise ValueError(f"model '{model.name}' returned NaN/inf scores in the full-ranking protocol")
        chunks.append(_profile_positions(table.numpy(), profile, rel_cold))
        top_lists.append(torch.topk(table, k, dim=1).indices.numpy()[profile])
    width = max([c.shape[1] for c in chunks] + [1])
    rows_rankable = rows_rankable.astype(np.int64)
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



def cold_item_rows(train: pd.DataFrame, evaluation: pd.DataFrame) -> pd.DataFrame:
    """Evaluation rows of warm users on items nobody interacted with in `train` (the cold-item slice)."""
    ev = evaluation.astype({"user_id": str, "item_id": str})
    warm_user = ev["user_id"].isin(set(train["user_id"].astype(str)))
    cold_item = ~ev["item_id"].isin(set(train["item_id"].astype(str)))
    return ev[warm_user & cold_item].reset_index(drop=True)


def cold_item_ranking(model: Recommender, train: pd.DataFrame, evaluation: pd.DataFrame,
                      batch_size: int = 1024) -> Ranking:
    """Cold-item protocol: each evaluation interaction of a warm user with an item nobody had in training is
    ranked among all the evaluation's cold items (one row per interaction; ties against it). The scores come
    from `model.score_new_items` with the items' side columns (item_category, brand, model_attr, year) read
    from the evaluation rows; a model that cannot score unseen items (None) gets no hit. A figure of models
    that can rank the catalogue's new arrivals, beside the floor of their category's popularity."""
    rows = cold_item_rows(train, evaluation)
    if len(rows) == 0:
        return Ranking(np.array([], dtype=str), np.zeros((0, 1)), np.zeros(0, dtype=np.int64))
    item_cols = [c for c in ("item_category", "brand", "model_attr", "year") if c in rows.columns]
    items = rows[["item_id", *item_cols]].drop_duplicates("item_id").reset_index(drop=True)
    col_of = encode_ids(rows["item_id"].to_numpy(), np.sort(items["item_id"].to_numpy()))
    items = items.sort_values("item_id", kind="stable").reset_index(drop=True)
    users = model.user_index(rows["user_id"].to_numpy())
    ranks = np.full(len(rows), np.inf)
    for start in range(0, len(rows), batch_size):
        sl = slice(start, start + batch_size)
        scores = model.score_new_items(users[sl], items)
        if scores is None:
            break
        scores = scores.float().numpy()
        own = scores[np.arange(len(scores)), col_of[sl]]
        ranks[sl] = (scores >= own[:, None]).sum(1) - 1
    return Ranking(rows["user_id"].to_numpy(dtype=str), positions_from_ranks(ranks), np.ones(len(rows), dtype=np.int64))

"""Two-stage recommendation: one model retrieves candidates, another re-scores them; timed recommending.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from helpers.models import Recommender


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


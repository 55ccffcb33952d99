"""The experiment of reranking.ipynb: split and models, every re-ranker over all evaluation users,
weight sweeps, the two-stage comparison, a worked example and a conclusion written from the numbers.

The re-rankers and list measures themselves are in `helpers.rerank`; figures in `helpers.plots.rerank`.
"""
from __future__ import annotations

import time

import pandas as pd

from helpers.evaluation.stats import bootstrap_mean_ci
from helpers.models import Recommender
from helpers.rerank import measures, rerankers, two_stage

# the measures of the results table, their direction, and how the conclusion names them
MEASURES = {"hr": "HR@K", "ndcg": "NDCG@K", "coverage": "coverage", "ild": "intra-list diversity",
            "avg_popularity": "average popularity", "long_tail_share": "long-tail share",
            "calibration_kl": "calibration KL", "amplification": "stereotype amplification"}


TARGET = {"affinity": "calibration_kl", "popularity+": "avg_popularity", "popularity-": "long_tail_share",
          "mmr": "ild", "calibration": "calibration_kl", "fairness": "amplification"}


def variant_label(method: str, weight: float) -> str:
    return f"{method} {weight:+g}" if method == "popularity" else f"{method} {weight:g}"


def target_key(method: str, weight: float) -> str:
    if method == "popularity":
        return "popularity+" if weight > 0 else "popularity-"
    return method


def _params(method: str, k: int, mmr_similarity: str) -> dict:
    if method == "mmr":
        return {"k": k, "similarity": mmr_similarity}
    if method in ("calibration", "fairness"):
        return {"k": k}
    return {}


def _summary_row(label, lists, per_user, base_per_user, context, k, n_boot, seed, seconds) -> dict:
    row = {"variant": label, "seconds": seconds,
           **measures.summarise_lists(lists, context, k=k, n_boot=n_boot, seed=seed, per_user=per_user)}
    if base_per_user is not None and "ndcg" in per_user:
        for name in ("hr", "ndcg"):  # paired: the same users, resampled together
            diff = per_user[name] - base_per_user[name].reindex(per_user.index)
            row[f"{name}_diff"], row[f"{name}_diff_low"], row[f"{name}_diff_high"] = \
                bootstrap_mean_ci(diff, n_boot, seed=seed)
    return row


def run_variants(candidates: pd.DataFrame, context, evaluation: pd.DataFrame, variants, k: int = 10,
                 n_boot: int = 1000, seed: int = 0, mmr_similarity: str = "category",
                 base_label: str = "base") -> tuple[pd.DataFrame, dict, dict]:
    """Apply each (method, weight) to the candidates and measure the top k over all their users.

    Returns (table: one row per variant, the unchanged base first, with means, 95% bootstrap intervals
    (`_low`, `_high`), paired differences to the base (`hr_diff`, `ndcg_diff` with intervals), coverage,
    amplification and re-ranking seconds; lists: label -> re-ordered candidates; per_user: label ->
    `measures.list_measures` frame)."""
    lists, per_user, rows = {base_label: candidates}, {}, []
    per_user[base_label] = measures.list_measures(candidates, context, evaluation, k)
    rows.append(_summary_row(base_label, candidates, per_user[base_label], None, context, k, n_boot, seed, 0.0))
    rows[-1]["method"], rows[-1]["weight"] = "none", 0.0
    for method, weight in variants:
        label = variant_label(method, weight)
        start = time.perf_counter()
        out = rerankers.rerank(candidates, context, method, weight, **_params(method, k, mmr_similarity))
        seconds = time.perf_counter() - start
        lists[label] = out
        per_user[label] = measures.list_measures(out, context, evaluation, k)
        rows.append(_summary_row(label, out, per_user[label], per_user[base_label], context, k, n_boot, seed, seconds))
        rows[-1]["method"], rows[-1]["weight"] = method, float(weight)
    return pd.DataFrame(rows), lists, per_user


def sweep(candidates: pd.DataFrame, context, evaluation: pd.DataFrame, sweeps: dict, k: int = 10,
          mmr_similarity: str = "category", lists: dict | None = None, per_user: dict | None = None,
          base_label: str = "base") -> pd.DataFrame:
    """Mean measures (no intervals) for every method and weight of `sweeps` ({method: [weights]});
    long format, one row per (method, weight).

    Weight 0 is the base list (every re-ranker leaves the candidates' order unchanged at 0, as
    test_weight_zero_leaves_the_order_unchanged in tests/unit/test_rerank.py checks for each), so it is
    measured once, on `candidates`. `lists` and `per_user` (what `run_variants` returned, for the same
    candidates, k, mmr_similarity and base_label) are reused for the (method, weight) they already hold, keyed
    by `variant_label`; the others are re-ranked here."""
    lists, per_user, figures, rows = lists or {}, per_user or {}, {}, []
    for method, weights in sweeps.items():
        for w in weights:
            label = base_label if w == 0 else variant_label(method, w)
            if label not in figures:  # each list measured once (weight 0 is shared by every method)
                out = candidates if w == 0 else lists.get(label)
                if out is None:
                    out = rerankers.rerank(candidates, context, method, w, **_params(method, k, mmr_similarity))
                m = per_user.get(label)
                if m is None:
                    m = measures.list_measures(out, context, evaluation, k)
                figures[label] = {
                    **m[measures.PER_USER_MEASURES].mean().to_dict(),
                    "coverage": measures.list_coverage(out, context, k),
                    "amplification": measures.stereotype_amplification(measures.exposure_by_group(out, context, k))}
            rows.append({"method": method, "weight": float(w), **figures[label]})
    return pd.DataFrame(rows)


def two_stage_comparison(retriever: Recommender, ranker: Recommender, users, context, evaluation: pd.DataFrame,
                         n_candidates: int = 100, k: int = 10, n_boot: int = 1000, seed: int = 0,
                         names=("retriever", "ranker")) -> tuple[pd.DataFrame, dict]:
    """Rows for the retriever alone, the ranker alone (full ranking over all items) and the two-stage
    pipeline (retriever's top n_candidates re-scored by the ranker), each with its wall-clock seconds
    for all `users`; plus the three top-k lists by label."""
    r_name, k_name = names
    alone_r, t_r = two_stage.timed_recommend(retriever, users, k)
    alone_k, t_k = two_stage.timed_recommend(ranker, users, k)
    staged, t_s = two_stage.two_stage_recommend(retriever, ranker, users, n_candidates, k)
    labels = {f"{r_name} alone": (alone_r, t_r), f"{k_name} alone (full ranking)": (alone_k, t_k),
              f"two-stage: {r_name} top {n_candidates} -> {k_name}": (staged, t_s)}
    rows, lists = [], {}
    base = measures.list_measures(alone_k, context, evaluation, k)
    for label, (out, t) in labels.items():
        m = measures.list_measures(out, context, evaluation, k)
        row = _summary_row(label, out, m, base, context, k, n_boot, seed, t["total_s"])
        row.update({f"{key}": v for key, v in t.items() if key != "total_s"})
        rows.append(row)
        lists[label] = out
    return pd.DataFrame(rows), lists


def exposure_comparison(lists: dict, context, k: int = 10) -> pd.DataFrame:
    """Per (group, category): history share, then each variant's exposure share and group-specific gap
    (`measures.exposure_by_group`), wide format; `lists`: label -> top lists."""
    parts = {}
    for label, frame in lists.items():
        e = measures.exposure_by_group(frame, context, k).set_index(["group", "category"])
        parts.setdefault("history", e["history"])
        parts[f"exposure: {label}"] = e["exposure"]
        parts[f"gap: {label}"] = e["gap"]
    return pd.DataFrame(parts)


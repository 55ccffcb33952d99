"""Every model under every protocol in one call (`evaluate_models`), tidy results with 95% bootstrap
intervals over users, paired comparisons of models on the same rows, and metrics over K.

Measured (2-core CPU, K=10, seed 0): ml-100k, random 80:20: EASE sampled HR 0.744, full-ranking HR
0.932 / NDCG 0.441; most-popular 0.529 and 0.774 / 0.216; bias RMSE 0.934.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse.linalg import svds

from helpers.data.interactions import encode_ids, interaction_matrix
from helpers.data.sampling import sampled_candidates
from helpers.evaluation.protocols import (
    FULL_METRICS,
    LIST_METRICS,
    PROTOCOLS,
    RATING_METRICS,
    SAMPLED_METRICS,
    Ranking,
    candidate_item_codes,
    full_ranking,
    rating_errors,
    sampled_ranking,
    unknown_evaluation_rows,
    user_side,
)
from helpers.evaluation.stats import bootstrap_table, paired_p_value
from helpers.metrics import (
    average_popularity,
    catalogue_coverage,
    intra_list_diversity_by_category,
    intra_list_diversity_by_embedding,
    novelty,
    ranking_metrics,
)
from helpers.models import Recommender


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


METRICS = list(dict.fromkeys(SAMPLED_METRICS + FULL_METRICS + ["coverage"] + LIST_METRICS + RATING_METRICS))


def _rows(model_name, protocol, metric, k, user_ids, values, frame) -> dict:
    """One piece of the tidy per-row values, as category codes and arrays (the categories in `frame`):
    `_per_row_frame` joins the pieces."""
    n = len(user_ids)
    users = pd.Categorical(np.asarray(user_ids, dtype=str), categories=frame["users"]).codes
    if n and (users < 0).any():
        raise ValueError(f"{model_name} {protocol}: rows of users that are not in the evaluation data")
    return {"model": np.full(n, frame["models"].index(model_name), dtype=np.int16),
            "protocol": np.full(n, PROTOCOLS.index(protocol), dtype=np.int8),
            "metric": np.full(n, METRICS.index(metric), dtype=np.int8),
            "k": np.full(n, np.nan if k is None else float(k)), "user_id": users.astype(np.int32),
            "value": np.asarray(values, dtype=np.float64)}


def _per_row_frame(pieces: list[dict], frame) -> pd.DataFrame:
    """The tidy per-row DataFrame (model, protocol, metric, k, user_id, value; categorical columns) of the pieces,
    joined one column at a time and emptying `pieces` as it goes, so the rows are never held twice (Electronics,
    six models: 19.6 million rows)."""
    categories = {"model": frame["models"], "protocol": PROTOCOLS, "metric": METRICS, "user_id": frame["users"]}
    columns = {}
    for col in ("model", "protocol", "metric", "k", "user_id", "value"):
        joined = np.concatenate([piece.pop(col) for piece in pieces]) if pieces else np.zeros(0)
        if col in categories:
            codes = joined if joined.dtype.kind in "iu" else joined.astype(np.int64)  # no pieces: an empty float array
            joined = pd.Categorical.from_codes(codes, categories=categories[col])
        columns[col] = joined
    pieces.clear()
    return pd.DataFrame(columns)


def _ranking_rows(model_name, protocol, k, ranking: Ranking, metrics, frame) -> list[dict]:
    all_metrics = ranking_metrics(ranking.positions, k, ranking.n_relevant)
    return [_rows(model_name, protocol, m, None if m == "mrr" else k,  # MRR has no cut-off
                  ranking.user_ids, all_metrics[m], frame) for m in metrics]


def _user_codes(user_ids: pd.Series) -> tuple[np.ndarray, int]:
    """(code of each row's user, number of codes), codes in the sorted order of the user labels (the order
    `bootstrap_ci` resamples them in, so both give the same interval)."""
    if isinstance(user_ids.dtype, pd.CategoricalDtype):
        cats = user_ids.cat.categories
        if cats.is_monotonic_increasing:
            return user_ids.cat.codes.to_numpy().astype(np.int64), len(cats)
    labels, codes = np.unique(user_ids.astype(str).to_numpy(), return_inverse=True)
    return codes.astype(np.int64), len(labels)


def interval_table(per_row: pd.DataFrame, by: list[str], n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> pd.DataFrame:
    """One row per group of the `by` columns of tidy per-row values (columns `by`, user_id, value): the figure
    (the row-weighted mean; its square root where the group's metric is "rmse") with its `level` interval over
    users, n_users and n_rows; groups in order of first appearance.

    What `bootstrap_ci(values, user_ids)` gives for each group, computed once for all groups measured on the
    same users and rows (every model and metric of one protocol): they share one draw of resamples
    (`bootstrap_table`), as they would draw the same resamples one by one with the same seed. A group with a
    non-finite value gets NaN, as in `bootstrap_ci`."""
    codes, n_codes = _user_codes(per_row["user_id"])
    values = per_row["value"].to_numpy(dtype=np.float64)
    metric_at = by.index("metric") if "metric" in by else None
    found, shared = {}, {}
    for key, idx in per_row.groupby(by, sort=False, observed=True).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        v, c = values[idx], codes[idx]
        counts = np.bincount(c, minlength=n_codes)
        if len(v) == 0 or not np.isfinite(v).all():
            found[key] = (np.nan, np.nan, np.nan, int((counts > 0).sum()), len(v))
            continue
        found[key] = None
        shared.setdefault(counts.tobytes(), (counts, []))[1].append((key, np.bincount(c, weights=v, minlength=n_codes)))
    for counts, members in shared.values():
        present = counts > 0
        figures = [("rmse" if metric_at is not None and key[metric_at] == "rmse" else "mean", j)
                   for j, (key, _) in enumerate(members)]
        table = bootstrap_table(np.column_stack([sums[present] for _, sums in members]), counts[present], figures,
                                n_boot, level, seed)
        for (key, _), row in zip(members, table):
            found[key] = (*row, int(present.sum()), int(counts.sum()))
    return pd.DataFrame([{**dict(zip(by, key)), "value": r[0], "ci_low": r[1], "ci_high": r[2], "n_users": r[3],
                          "n_rows": r[4]} for key, r in found.items()],
                        columns=[*by, "value", "ci_low", "ci_high", "n_users", "n_rows"])


def item_embedding_from_interactions(train: pd.DataFrame, item_ids: np.ndarray, dim: int = 32) -> np.ndarray:
    """A model-independent item embedding for intra-list diversity: the top `dim` right singular vectors
    (times singular values) of the binary training user x item matrix, rows in `item_ids` order."""
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


def _list_rows(model_name, model: Recommender, ranking: Ranking, k, categories, embedding, frame) -> list[dict]:
    rec, users = ranking.recommended, ranking.list_users
    out = {"novelty": novelty(rec, model.item_popularity, model.n_users),
           "avg_popularity": average_popularity(rec, model.item_popularity)}
    if categories is not None:
        cats = categories.reindex(model.item_ids).to_numpy()
        out["ild_category"] = intra_list_diversity_by_category(rec, cats)
    if embedding is not None:
        out["ild_embedding"] = intra_list_diversity_by_embedding(rec, embedding.reindex(model.item_ids).to_numpy())
    return [_rows(model_name, "full", m, k, users, v, frame) for m, v in out.items()]


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
    unknown_rows = unknown_evaluation_rows(train, evaluation) if "sampled" in protocols else None
    side = user_side(evaluation)
    item_codes = candidate_item_codes(candidates) if "sampled" in protocols else None
    embedding = None
    if "full" in protocols:
        all_items = np.unique(train["item_id"].astype(str).to_numpy())
        embedding = pd.DataFrame(item_embedding_from_interactions(train, all_items), index=all_items)
    frame = {"users": np.unique(evaluation["user_id"].astype(str).to_numpy()), "models": list(models)}
    n_unknown = {}
    for name, model in models.items():
        for protocol in protocols:
            t0 = time.perf_counter()
            if protocol == "sampled":
                ranking = sampled_ranking(model, candidates, unknown_rows, unknown=unknown, item_codes=item_codes,
                                          side=side)
                new = _ranking_rows(name, protocol, k, ranking, SAMPLED_METRICS, frame)
            elif protocol == "full":
                ranking = full_ranking(model, evaluation, train, k=k, unknown=unknown)
                new = _ranking_rows(name, protocol, k, ranking, FULL_METRICS, frame)
                new += _list_rows(name, model, ranking, k, item_categories, embedding, frame)
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
                new = [_rows(name, protocol, "rmse", None, users, errors ** 2, frame),
                       _rows(name, protocol, "mae", None, users, np.abs(errors), frame)]
            rankings[(name, protocol)] = ranking
            n_unknown[(name, protocol)] = ranking.n_unknown
            rows.extend(new)
            if verbose:
                print(f"{name:>10} {protocol:>7}: {time.perf_counter() - t0:6.2f} s")
    del item_codes  # the candidates' codes are not needed for the intervals (Electronics: 0.2 GB)
    per_row = _per_row_frame(rows, frame)
    t0 = time.perf_counter()
    if len(per_row):  # every interval at once: the figures of one protocol share their users' resamples
        figures = interval_table(per_row, ["model", "protocol", "metric"], n_boot=n_boot, seed=seed)
        first_k = per_row.groupby(["model", "protocol", "metric"], sort=False, observed=True)["k"].first()
        figures["k"] = [first_k[tuple(key)] for key in figures[["model", "protocol", "metric"]].itertuples(index=False)]
        figures["n_unknown"] = [n_unknown[(m, p)] for m, p in zip(figures["model"], figures["protocol"])]
        summary.extend(figures.astype({"model": str, "protocol": str, "metric": str}).to_dict("records"))
        if verbose:
            print(f"{len(figures)} intervals over users: {time.perf_counter() - t0:.2f} s")
    order = {m: i for i, m in enumerate(SAMPLED_METRICS + FULL_METRICS + ["coverage"] + LIST_METRICS + RATING_METRICS)}
    summary = pd.DataFrame(summary).astype({"k": "Int64"})
    summary = summary.sort_values(["protocol", "metric", "model"], key=lambda c: c.map(
        {**{p: i for i, p in enumerate(PROTOCOLS)}, **order, **{m: i for i, m in enumerate(models)}}),
        kind="stable").reset_index(drop=True)
    config = {"protocols": protocols, "k": k, "n_negatives": n_negatives, "seed": seed, "unknown": unknown,
              "n_boot": n_boot}
    return EvaluationResult(summary, per_row, rankings, candidates, config)


def paired_comparisons(result: EvaluationResult, pairs=None, metrics=("hr", "ndcg", "rmse"),
                       n_permutations: int = 10_000) -> pd.DataFrame:
    """Paired comparison of models on the same rows: model_a, model_b, protocol, metric, mean_a, mean_b, diff
    (A - B), ci_low, ci_high (paired bootstrap over users), p_value (permutation test swapping each user's A
    and B values, `n_permutations`), n_users, for every pair (default: each model against every later one).
    What `stats.paired_comparison` gives for each pair; the intervals of all pairs of one protocol and metric
    come from one draw of resamples (`bootstrap_table`)."""
    names = list(pd.unique(result.per_row["model"].astype(str)))
    pairs = pairs if pairs is not None else [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    out = []
    n_boot, seed = result.config.get("n_boot", 1000), result.config.get("seed", 0)
    rows = result.per_row[result.per_row["metric"].isin(list(metrics))]
    if len(rows) == 0:
        return pd.DataFrame(out)
    codes, n_codes = _user_codes(rows["user_id"])
    values = rows["value"].to_numpy(dtype=np.float64)
    for (protocol, metric), idx in rows.groupby(["protocol", "metric"], sort=False, observed=True).indices.items():
        statistic = "rmse" if metric == "rmse" else "mean"
        by_model = pd.Series(rows["model"].to_numpy()[idx]).astype(str)
        sums, counts, k = {}, None, rows["k"].to_numpy()[idx[0]]
        for name, sub in by_model.groupby(by_model, sort=False).indices.items():
            sub_idx = idx[sub]
            c = np.bincount(codes[sub_idx], minlength=n_codes)
            if counts is not None and not np.array_equal(c, counts):
                raise ValueError(f"{name} was not evaluated on the same rows as the other models in {protocol}; "
                                 "use unknown='miss' so every model covers every evaluation row")
            counts = c
            sums[name] = np.bincount(codes[sub_idx], weights=values[sub_idx], minlength=n_codes)
        todo = [(a, b) for a, b in pairs if a in sums and b in sums]
        if not todo:
            continue
        present = counts > 0
        columns = {name: j for j, name in enumerate(sums)}
        matrix = np.column_stack([sums[name][present] for name in sums])
        n_rows = counts[present].astype(np.float64)
        table = bootstrap_table(matrix, n_rows, [("diff", statistic, columns[a], columns[b]) for a, b in todo],
                                n_boot, seed=seed)
        for (a, b), (_, low, high) in zip(todo, table):
            sa, sb = matrix[:, columns[a]], matrix[:, columns[b]]
            mean_a = float(sa.sum() / n_rows.sum()) if statistic == "mean" else float(np.sqrt(sa.sum() / n_rows.sum()))
            mean_b = float(sb.sum() / n_rows.sum()) if statistic == "mean" else float(np.sqrt(sb.sum() / n_rows.sum()))
            out.append({"model_a": a, "model_b": b, "protocol": protocol, "metric": metric, "k": k,
                        "mean_a": mean_a, "mean_b": mean_b, "diff": mean_a - mean_b, "ci_low": low, "ci_high": high,
                        "p_value": paired_p_value(sa, sb, n_rows.sum(), statistic, n_permutations, seed),
                        "n_users": int(present.sum())})
    return pd.DataFrame(out)


def metrics_over_k(result: EvaluationResult, ks=range(1, 21), metrics=("hr", "ndcg"),
                   protocols=("sampled", "full"), ci: bool = True) -> pd.DataFrame:
    """HR@K / NDCG@K (and any ranking metric) for every K from the stored rankings: tidy DataFrame
    model, protocol, metric, k, value, ci_low, ci_high (the intervals of one model and protocol from one
    draw of resamples, `bootstrap_table`)."""
    out = []
    n_boot, seed = result.config.get("n_boot", 1000), result.config.get("seed", 0)
    for (name, protocol), ranking in result.rankings.items():
        if protocol not in protocols:
            continue
        keys = [(k, metric) for k in ks for metric in metrics]
        by_k = {k: ranking_metrics(ranking.positions, k, ranking.n_relevant) for k in ks}  # every metric of one k at once
        columns = np.column_stack([by_k[k][metric] for k, metric in keys]) if len(ranking.user_ids) \
            else np.zeros((0, len(keys)))
        if ci and len(ranking.user_ids):
            labels, inverse = np.unique(np.asarray(ranking.user_ids).astype(str), return_inverse=True)
            sums = np.column_stack([np.bincount(inverse, weights=col, minlength=len(labels)) for col in columns.T])
            table = bootstrap_table(sums, np.bincount(inverse, minlength=len(labels)),
                                    [("mean", j) for j in range(len(keys))], n_boot, seed=seed)
        else:
            mean = columns.mean(axis=0) if len(columns) else np.full(len(keys), np.nan)
            table = np.column_stack([mean, np.full(len(keys), np.nan), np.full(len(keys), np.nan)])
        for (k, metric), (point, low, high) in zip(keys, table):
            out.append({"model": name, "protocol": protocol, "metric": metric, "k": k, "value": point,
                        "ci_low": low, "ci_high": high})
    return pd.DataFrame(out)

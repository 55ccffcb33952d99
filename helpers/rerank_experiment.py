"""The experiment of reranking.ipynb: split and models, every re-ranker over all evaluation users,
weight sweeps, the two-stage comparison, a worked example and a conclusion written from the numbers.

The re-rankers and list measures themselves are in `helpers.rerank`; figures in `helpers.rerank_plots`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import rerank
from helpers.data import load, read_interactions_csv, sample_users
from helpers.recommender import Recommender, encode_ids, load_model
from helpers.split import make_split

BASELINE_MODELS = ["popular", "itemknn", "ease"]
NEURAL_MODELS = ["collabnn", "collabnn_mlp", "mf", "neumf"]
# the measures of the results table, their direction, and how the conclusion names them
MEASURES = {"hr": "HR@K", "ndcg": "NDCG@K", "coverage": "coverage", "ild": "intra-list diversity",
            "avg_popularity": "average popularity", "long_tail_share": "long-tail share",
            "calibration_kl": "calibration KL", "amplification": "stereotype amplification"}
TARGET = {"affinity": "calibration_kl", "popularity+": "avg_popularity", "popularity-": "long_tail_share",
          "mmr": "ild", "calibration": "calibration_kl", "fairness": "amplification"}


# --------------------------------------------------------------------------- data and models
def load_split(data_dir, dataset: str = "ml-100k", split: str = "random", seed: int = 0,
               sample: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, evaluation, where they came from): DATA_DIR/train.csv + evaluation.csv when both exist
    (written by the pipeline / training.ipynb from the same DATASET, SPLIT, SEED and SAMPLE, so they
    are used as they are: the saved models were fitted on them), else a new `make_split` of the
    dataset, `sample` > 0 keeping whole users, about `sample` interactions (seeded; not written)."""
    data_dir = Path(data_dir)
    paths = data_dir / "train.csv", data_dir / "evaluation.csv"
    if all(p.exists() for p in paths):
        train, evaluation = (read_interactions_csv(p) for p in paths)
        return train, evaluation, f"read {paths[0]} and {paths[1]}"
    df = sample_users(load(dataset, verbose=False), sample, seed=seed)
    train, evaluation = make_split(df, split=split, seed=seed)
    return train, evaluation, f"{split} split of {dataset} (seed {seed}, sample {sample}; {paths[0]} absent)"


def side_tables(dataset: str, train: pd.DataFrame, evaluation: pd.DataFrame,
                columns=("item_category", "item_title", "model_attr", "user_gender")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, users): item side information (item_id, item_category[, item_title][, model_attr]) and
    user groups (user_id, user_gender), from the split files when they carry them, else from the dataset."""
    both = pd.concat([train, evaluation], ignore_index=True)
    if "item_category" not in both.columns or "user_gender" not in both.columns:
        full = load(dataset, verbose=False)
        keep = both[["user_id", "item_id"]].astype(str)
        both = keep.merge(full.drop(columns=[c for c in ("rating", "timestamp") if c in full.columns]),
                          on=["user_id", "item_id"], how="left")
    item_cols = ["item_id"] + [c for c in columns if c in both.columns and c != "user_gender"]
    items = both[item_cols].drop_duplicates("item_id").reset_index(drop=True)
    users = both[["user_id", "user_gender"]].drop_duplicates("user_id").reset_index(drop=True)
    return items, users


def check_model_fits(model: Recommender, train: pd.DataFrame, path="the model") -> None:
    """Raise if `model` was not trained on exactly `train`'s (user, item) pairs: a model fitted on
    another split has seen evaluation interactions, and every accuracy figure would be inflated."""
    u = encode_ids(train["user_id"], model.user_ids)
    i = encode_ids(train["item_id"], model.item_ids)
    pairs = np.unique(u.astype(np.int64) * max(model.n_items, 1) + i)
    fits = (u >= 0).all() and (i >= 0).all() and len(pairs) == model.seen.nnz
    if fits:
        fits = bool(np.asarray(model.seen[u, i]).all())
    if not fits:
        raise ValueError(f"{path} was trained on other data than this train split ({model.seen.nnz:,} training "
                         f"pairs vs {len(train):,} rows here); retrain it with training.ipynb on the same "
                         "DATA_DIR, or point MODEL_DIR to a folder without it to train one here")


def load_or_train(name: str, train: pd.DataFrame, model_dir="model", seed: int = 0, epochs: int | None = None,
                  log=print) -> tuple[Recommender, str]:
    """(model, how it was obtained): MODEL_DIR/<name>.pth if present (and trained on `train`), else
    fitted here: baselines ("popular", "itemknn", "ease") in seconds, neural models ("collabnn", "mf",
    "neumf") through `helpers.train.train_model` (implicit task; `epochs` None = the model's default).
    A model trained here is not saved (training.ipynb owns MODEL_DIR)."""
    if name not in BASELINE_MODELS + NEURAL_MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {NEURAL_MODELS + BASELINE_MODELS}")
    path = Path(model_dir) / f"{name}.pth"
    if path.exists():
        model = load_model(path)
        check_model_fits(model, train, path)
        return model, f"loaded {path}"
    start = time.perf_counter()
    if name in BASELINE_MODELS:
        import helpers.baselines  # noqa: F401  (registers the classes)
        from helpers.recommender import MODEL_CLASSES

        model = MODEL_CLASSES[name]().fit(train)
    else:
        from helpers.train import train_model

        model = train_model(train, name, task="implicit", seed=seed, epochs=epochs)
    how = f"{path} not found: trained here in {time.perf_counter() - start:.1f}s (not saved)"
    log(how)
    return model, how


def item_embeddings(model: Recommender) -> pd.DataFrame | None:
    """The model's item embedding table (rows indexed by item id), or None if it has none (baselines).

    The MLP branch's item table when the model has one (`item_emb`), else the GMF / dot-product factors
    (`item_gmf`: the implicit CollabNN default has no MLP branch)."""
    module = getattr(model, "module", None)
    table = getattr(module, "item_emb", None) or getattr(module, "item_gmf", None)
    weight = getattr(table, "weight", None)
    if weight is None:
        return None
    return pd.DataFrame(weight.detach().cpu().numpy(), index=model.item_ids)


# --------------------------------------------------------------------------- variants and sweeps
def variant_label(method: str, weight: float) -> str:
    return f"{method} {weight:+g}" if method == "popularity" else f"{method} {weight:g}"


def _target_key(method: str, weight: float) -> str:
    if method == "popularity":
        return "popularity+" if weight > 0 else "popularity-"
    return method


def check_rerankers(variants, sweeps: dict) -> list[tuple[str, float]]:
    """Validate the notebook's RERANKERS ([method, weight] pairs) and SWEEPS ({method: weights});
    returns RERANKERS as (method, weight) tuples. A pair may also arrive as its string form
    ("('mmr', 0.5)"): papermill passes tuples that way."""
    import ast

    out = []
    for v in variants:
        pair = ast.literal_eval(v) if isinstance(v, str) else v
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"each RERANKERS entry is [method, weight], got {v!r}")
        out.append((str(pair[0]), float(pair[1])))
    for method, weights in [(m, [w]) for m, w in out] + list(sweeps.items()):
        if method not in rerank.RERANKERS:
            raise ValueError(f"unknown re-ranker {method!r}; choose one of {rerank.RERANKERS}")
        for w in weights:
            rerank.check_weight(method, w)
    return out


def _params(method: str, k: int, mmr_similarity: str) -> dict:
    if method == "mmr":
        return {"k": k, "similarity": mmr_similarity}
    if method in ("calibration", "fairness"):
        return {"k": k}
    return {}


def _summary_row(label, lists, per_user, base_per_user, context, k, n_boot, seed, seconds) -> dict:
    row = {"variant": label, "seconds": seconds,
           **rerank.summarise_lists(lists, context, k=k, n_boot=n_boot, seed=seed, per_user=per_user)}
    if base_per_user is not None and "ndcg" in per_user:
        for name in ("hr", "ndcg"):  # paired: the same users, resampled together
            diff = per_user[name] - base_per_user[name].reindex(per_user.index)
            row[f"{name}_diff"], row[f"{name}_diff_low"], row[f"{name}_diff_high"] = \
                rerank.bootstrap_mean_ci(diff, n_boot, seed=seed)
    return row


def run_variants(candidates: pd.DataFrame, context, evaluation: pd.DataFrame, variants, k: int = 10,
                 n_boot: int = 1000, seed: int = 0, mmr_similarity: str = "category",
                 base_label: str = "base") -> tuple[pd.DataFrame, dict, dict]:
    """Apply each (method, weight) to the candidates and measure the top k over all their users.

    Returns (table: one row per variant, the unchanged base first, with means, 95% bootstrap intervals
    (`_low`, `_high`), paired differences to the base (`hr_diff`, `ndcg_diff` with intervals), coverage,
    amplification and re-ranking seconds; lists: label -> re-ordered candidates; per_user: label ->
    `rerank.list_measures` frame)."""
    lists, per_user, rows = {base_label: candidates}, {}, []
    per_user[base_label] = rerank.list_measures(candidates, context, evaluation, k)
    rows.append(_summary_row(base_label, candidates, per_user[base_label], None, context, k, n_boot, seed, 0.0))
    rows[-1]["method"], rows[-1]["weight"] = "none", 0.0
    for method, weight in variants:
        label = variant_label(method, weight)
        start = time.perf_counter()
        out = rerank.rerank(candidates, context, method, weight, **_params(method, k, mmr_similarity))
        seconds = time.perf_counter() - start
        lists[label] = out
        per_user[label] = rerank.list_measures(out, context, evaluation, k)
        rows.append(_summary_row(label, out, per_user[label], per_user[base_label], context, k, n_boot, seed, seconds))
        rows[-1]["method"], rows[-1]["weight"] = method, float(weight)
    return pd.DataFrame(rows), lists, per_user


def sweep(candidates: pd.DataFrame, context, evaluation: pd.DataFrame, sweeps: dict, k: int = 10,
          mmr_similarity: str = "category") -> pd.DataFrame:
    """Mean measures (no intervals) for every method and weight of `sweeps` ({method: [weights]});
    long format, one row per (method, weight); weight 0 is the base list."""
    rows = []
    for method, weights in sweeps.items():
        for w in weights:
            out = rerank.rerank(candidates, context, method, w, **_params(method, k, mmr_similarity))
            m = rerank.list_measures(out, context, evaluation, k)
            row = {"method": method, "weight": float(w), **m[rerank.PER_USER_MEASURES].mean().to_dict()}
            row["coverage"] = float(out.loc[out["rank"] <= k, "item_id"].nunique() / context.n_items)
            row["amplification"] = rerank.stereotype_amplification(rerank.exposure_by_group(out, context, k))
            rows.append(row)
    return pd.DataFrame(rows)


def two_stage_comparison(retriever: Recommender, ranker: Recommender, users, context, evaluation: pd.DataFrame,
                         n_candidates: int = 100, k: int = 10, n_boot: int = 1000, seed: int = 0,
                         names=("retriever", "ranker")) -> tuple[pd.DataFrame, dict]:
    """Rows for the retriever alone, the ranker alone (full ranking over all items) and the two-stage
    pipeline (retriever's top n_candidates re-scored by the ranker), each with its wall-clock seconds
    for all `users`; plus the three top-k lists by label."""
    r_name, k_name = names
    alone_r, t_r = rerank.timed_recommend(retriever, users, k)
    alone_k, t_k = rerank.timed_recommend(ranker, users, k)
    staged, t_s = rerank.two_stage_recommend(retriever, ranker, users, n_candidates, k)
    labels = {f"{r_name} alone": (alone_r, t_r), f"{k_name} alone (full ranking)": (alone_k, t_k),
              f"two-stage: {r_name} top {n_candidates} -> {k_name}": (staged, t_s)}
    rows, lists = [], {}
    base = rerank.list_measures(alone_k, context, evaluation, k)
    for label, (out, t) in labels.items():
        m = rerank.list_measures(out, context, evaluation, k)
        row = _summary_row(label, out, m, base, context, k, n_boot, seed, t["total_s"])
        row.update({f"{key}": v for key, v in t.items() if key != "total_s"})
        rows.append(row)
        lists[label] = out
    return pd.DataFrame(rows), lists


# --------------------------------------------------------------------------- tables for people
def exposure_comparison(lists: dict, context, k: int = 10) -> pd.DataFrame:
    """Per (group, category): history share, then each variant's exposure share and group-specific gap
    (`rerank.exposure_by_group`), wide format; `lists`: label -> top lists."""
    parts = {}
    for label, frame in lists.items():
        e = rerank.exposure_by_group(frame, context, k).set_index(["group", "category"])
        parts.setdefault("history", e["history"])
        parts[f"exposure: {label}"] = e["exposure"]
        parts[f"gap: {label}"] = e["gap"]
    return pd.DataFrame(parts)


def results_table(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The results as text cells 'mean [low, high]' (coverage, amplification and seconds: values)."""
    out = pd.DataFrame({"variant": table["variant"]})
    for name in ["hr", "ndcg", "ild", "avg_popularity", "long_tail_share", "calibration_kl"]:
        if name in table:
            d = 1 if name == "avg_popularity" else digits
            out[MEASURES[name]] = [f"{m:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]" for m, lo, hi in
                                   zip(table[name], table[f"{name}_low"], table[f"{name}_high"])]
    if "ndcg_diff" in table:
        out["NDCG@K vs base"] = [("" if pd.isna(m) else f"{m:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]")
                                 for m, lo, hi in zip(table["ndcg_diff"], table["ndcg_diff_low"], table["ndcg_diff_high"])]
    out["coverage"] = table["coverage"].map(lambda v: f"{v:.{digits}f}")
    out["amplification"] = table["amplification"].map(lambda v: f"{v:.{digits + 1}f}")
    out["seconds"] = table["seconds"].map(lambda v: f"{v:.2f}")
    return out.set_index("variant")


def pick_example_user(per_user: dict, base_label: str, label: str) -> str:
    """The user whose calibration KL falls most from `base_label` to `label` (ties: smallest id), among
    users with a hit in the base list (so the example also shows what happens to a correct item)."""
    base, other = per_user[base_label], per_user[label]
    drop = (base["calibration_kl"] - other["calibration_kl"].reindex(base.index)).where(base["hr"] > 0)
    if drop.notna().sum() == 0:
        drop = base["calibration_kl"] - other["calibration_kl"].reindex(base.index)
    return str(drop.sort_values(ascending=False, kind="stable").index[0])


def example_lists(lists: dict, context, evaluation: pd.DataFrame, user: str, k: int = 10) -> pd.DataFrame:
    """One column per variant: the user's top k as 'title [categories]', '*' marking evaluation items."""
    held_out = set(evaluation.loc[evaluation["user_id"].astype(str) == str(user), "item_id"].astype(str))
    cols = {}
    for label, frame in lists.items():
        top = frame[(frame["user_id"].astype(str) == str(user)) & (frame["rank"] <= k)].sort_values("rank")
        idx = context.item_index(top["item_id"].to_numpy())
        cats = ["|".join(np.asarray(context.categories)[context.item_categories[i] > 0]) for i in idx]
        titles = context.item_title[idx] if context.item_title is not None else top["item_id"].to_numpy()
        cols[label] = [("* " if item in held_out else "") + f"{t} [{c}]"
                       for item, t, c in zip(top["item_id"].astype(str), titles, cats)]
    width = max(len(v) for v in cols.values())
    return pd.DataFrame({k_: v + [""] * (width - len(v)) for k_, v in cols.items()},
                        index=pd.RangeIndex(1, width + 1, name="rank"))


def history_profile(context, user: str, top: int = 6) -> pd.Series:
    """The user's history category distribution p(c | u), largest first (the calibration target)."""
    idx = context.user_index([user])[0]
    if idx < 0:
        return pd.Series(dtype=float)
    dist = pd.Series(context.user_history[idx], index=context.categories)
    return dist[dist > 0].sort_values(ascending=False).head(top).round(3)


# --------------------------------------------------------------------------- conclusion
def _significant(row, name) -> str:
    lo, hi = row[f"{name}_diff_low"], row[f"{name}_diff_high"]
    return "significant" if lo > 0 or hi < 0 else "within noise"


def conclusion_text(table: pd.DataFrame, base_label: str, k: int, two_stage: pd.DataFrame | None = None,
                    exposure: pd.DataFrame | None = None) -> str:
    """Markdown bullets read off the results table, the two-stage table and the exposure table
    (`exposure_comparison`), so the text always matches the numbers."""
    base = table.set_index("variant").loc[base_label]
    lines = [f"Base list: **{base_label}**, HR@{k} {base['hr']:.3f}, NDCG@{k} {base['ndcg']:.3f}, "
             f"intra-list diversity {base['ild']:.3f}, long-tail share {base['long_tail_share']:.3f}, "
             f"calibration KL {base['calibration_kl']:.3f}, amplification {base['amplification']:.4f}."]
    for _, row in table[table["variant"] != base_label].iterrows():
        target = TARGET[_target_key(row["method"], row["weight"])]
        b, v = base[target], row[target]
        verb = "raises" if v > b else "lowers" if v < b else "leaves"
        change = f" ({(v - b) / abs(b):+.0%})" if abs(b) >= 0.01 else ""  # no percentages of near-zero bases
        acc = row["ndcg_diff"]
        lines.append(f"**{row['variant']}** {verb} {MEASURES[target]} from {b:.3g} to {v:.3g}{change}; "
                     f"NDCG@{k} changes by {acc:+.3f} "
                     f"([{row['ndcg_diff_low']:+.3f}, {row['ndcg_diff_high']:+.3f}], {_significant(row, 'ndcg')}), "
                     f"HR@{k} by {row['hr_diff']:+.3f} ({_significant(row, 'hr')}); coverage {base['coverage']:.3f} -> "
                     f"{row['coverage']:.3f}.")
    rr = table[table["variant"] != base_label]
    if len(rr):
        def names(frame):
            return ", ".join(f"**{v}**" for v in frame["variant"]) if len(frame) else "none"

        up, down = rr[rr["ndcg_diff_low"] > 0], rr[rr["ndcg_diff_high"] < 0]
        same = rr[(rr["ndcg_diff_low"] <= 0) & (rr["ndcg_diff_high"] >= 0)]
        lines.append(f"NDCG@{k} against the base (paired 95% intervals): significantly higher with {names(up)}; "
                     f"no significant change with {names(same)}; significantly lower with {names(down)}.")
    if two_stage is not None and len(two_stage) == 3:
        r_alone, k_alone, staged = (two_stage.iloc[i] for i in range(3))
        faster = k_alone["seconds"] / staged["seconds"] if staged["seconds"] > 0 else float("nan")
        lines.append(f"Two-stage (**{staged['variant']}**): NDCG@{k} {staged['ndcg']:.3f} against "
                     f"{k_alone['ndcg']:.3f} for the ranker alone ({staged['ndcg_diff']:+.3f}, "
                     f"{_significant(staged, 'ndcg')}) and {r_alone['ndcg']:.3f} for the retriever alone; "
                     f"{staged['seconds']:.2f}s against {k_alone['seconds']:.2f}s for full ranking "
                     f"({faster:.1f}x {'faster' if faster >= 1 else 'slower'}).")
    if exposure is not None and len(exposure):
        gap_cols = [c for c in exposure.columns if c.startswith("gap: ")]
        base_gap = exposure[f"gap: {base_label}"]
        for group, g in base_gap.groupby(level="group"):
            g = g.droplevel("group")
            top = g.reindex(g.abs().sort_values(ascending=False).index[:3])
            shown = ", ".join(f"{c} {v:+.3f}" for c, v in top.items())
            after = "; ".join(f"largest |gap| after **{c[5:]}**: {exposure[c].xs(group, level='group').abs().max():.3f}"
                              for c in gap_cols if c != f"gap: {base_label}")
            lines.append(f"Exposure, users '{group}': the base lists' largest group-specific gaps (share of the "
                         f"top {k} beyond what the histories and everyone's skew explain) are {shown}"
                         + (f"; {after}." if after else "."))
    return "\n".join(f"- {line}" for line in lines)


def metrics_record(table: pd.DataFrame, two_stage: pd.DataFrame | None, sweeps: pd.DataFrame | None,
                   **extra) -> dict:
    """What reranking.ipynb records under `reranking` in metrics.json (variants by label)."""
    keep = [c for c in table.columns if c not in ("variant",)]
    out = {"variants": {r["variant"]: {c: r[c] for c in keep} for _, r in table.iterrows()}, **extra}
    if two_stage is not None:
        out["two_stage"] = {r["variant"]: {c: r[c] for c in two_stage.columns if c != "variant"}
                            for _, r in two_stage.iterrows()}
    if sweeps is not None:
        out["sweeps"] = {m: g.drop(columns="method").to_dict(orient="list") for m, g in sweeps.groupby("method")}
    return out

"""What evaluation.ipynb needs: its parameters checked, and the values it records in metrics.json.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.data.market_bias import recommended_segment_shares
from helpers.data.split import SPLITS, split_summary
from helpers.evaluation import PROTOCOLS, EvaluationResult
from helpers.models import model_class

PARAMETER_DEFAULTS = {"DATASET": "ml-100k", "SPLIT": "auto", "MODELS": ["popular", "popular_segment", "itemknn", "ease", "bias",
                                                                     "mf", "collabnn", "collabnn_features",
                                                                     "collabnn_factor", "collabnn_mlp", "mf_rating",
                                                                     "collabnn_rating"],
                      "K": 10, "PROTOCOLS": PROTOCOLS, "N_NEGATIVES": 99, "SEED": 0, "SAMPLE": 0,
                      "DATA_DIR": "data", "MODEL_DIR": "scratch/model", "OUTPUT_DIR": "scratch"}


def check_parameters(**params) -> dict:
    """The notebook's parameters, validated (unknown names and bad values raise ValueError naming the
    allowed ones); returns them as a dict."""
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



def _interval(row) -> str:
    return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


def cold_start_view(table: pd.DataFrame) -> pd.DataFrame:
    """`cold_start_table` as models x (slice, protocol, metric) cells "value [low, high]", with the users of
    each slice in the column names."""
    if table.empty:
        return pd.DataFrame()
    t = table.assign(cell=[_interval(r) for r in table.itertuples()],
                     column=[f"{r.slice} ({int(r.n_users):,} users), {r.protocol}, {r.metric}@{int(r.k)}"
                             for r in table.itertuples()])
    view = t.pivot_table(index="model", columns="column", values="cell", aggfunc="first", sort=False)
    return view.reindex(pd.unique(table["model"]))


def cold_start_sentence(table: pd.DataFrame, model: str = "collabnn", baselines=("popular", "popular_segment"),
                        metric: str = "ndcg", protocol: str = "full") -> str:
    """Per slice (warm users, cold users, cold items), `model` against the best of `baselines` on `metric`, in
    words, from the table's numbers (the full-ranking protocol for the user slices)."""
    if table.empty or model not in set(table["model"]):
        return f"no cold-start figures for {model}"
    parts = []
    for slice_ in ("warm users", "cold users", "cold items"):
        t = table[(table["slice"] == slice_) & (table["metric"] == metric)]
        t = t if slice_ == "cold items" else t[t["protocol"] == protocol]
        own, base = t[t["model"] == model], t[t["model"].isin(list(baselines))]
        if own.empty or base.empty:
            continue
        own, best = own.iloc[0], base.sort_values("value").iloc[-1]
        if own.ci_low > best.ci_high:
            verdict = "above it, the intervals apart"
        elif own.ci_high < best.ci_low:
            verdict = "below it, the intervals apart"
        else:
            verdict = "the intervals overlap"
        ratio = f"{own.value / best.value:.2f}x" if best.value > 0 else "the baseline scores 0"
        parts.append(f"{slice_} ({int(own.n_users):,} users): {model} {metric.upper()}@{int(own.k)} {_interval(own)} "
                     f"against {best.model} {_interval(best)} ({ratio}; {verdict})")
    return "; ".join(parts) + "." if parts else f"no slice has both {model} and a baseline"


def recommendation_lists(result: EvaluationResult, models: dict, protocol: str = "full") -> pd.DataFrame:
    """The top-K lists of the full-ranking protocol: model, user_id, item_id, rank (1..K), every model's lists for
    every evaluation user it ranked (cold users included)."""
    frames = []
    for name, model in models.items():
        ranking = result.rankings.get((name, protocol))
        if ranking is None or ranking.recommended is None or len(ranking.list_users) == 0:
            continue
        k = ranking.recommended.shape[1]
        frames.append(pd.DataFrame({"model": name, "user_id": np.repeat(ranking.list_users, k),
                                    "item_id": model.item_ids[ranking.recommended.ravel()],
                                    "rank": np.tile(np.arange(1, k + 1), len(ranking.list_users))}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["model", "user_id", "item_id", "rank"])


def amplification_by_model(result: EvaluationResult, models: dict, train: pd.DataFrame, evaluation: pd.DataFrame,
                           segment_col: str = "model_attr", gender_col: str = "user_gender") -> pd.DataFrame:
    """`recommended_segment_shares` of each model's full-ranking top-K lists (`recommendation_lists`, one model at a
    time: five models' lists for 250,000 users are 12.5 million rows), against what the same users bought in the
    evaluation part (their held-out interactions: defined for cold users too): model, gender, segment, shares,
    ratio."""
    items = pd.concat([train[["item_id", segment_col]], evaluation[["item_id", segment_col]]]).drop_duplicates("item_id")
    users = pd.concat([train[["user_id", gender_col]], evaluation[["user_id", gender_col]]]).drop_duplicates("user_id")
    frames = []
    for name, model in models.items():
        lists = recommendation_lists(result, {name: model})
        if len(lists):
            frames.append(recommended_segment_shares(lists, items, users, history=evaluation, segment_col=segment_col,
                                                     gender_col=gender_col).assign(model=name))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out[["model", *[c for c in out.columns if c != "model"]]] if len(out) else out


def headline_model(models: dict) -> str:
    """The model the prose speaks of: the project's default ("collabnn") when evaluated, else the first one."""
    return "collabnn" if "collabnn" in models else next(iter(models))


def cold_start_models(models: dict) -> list[str]:
    """The models the cold-start prose speaks of: the headline model, then every other evaluated model that scores
    cold users and items from their side features (config `features=True`, e.g. collabnn_features)."""
    head = headline_model(models)
    return [head] + [name for name, model in models.items()
                     if name != head and model.config.get("features")]


def cold_start_paragraph(table: pd.DataFrame, models: dict, **kwargs) -> str:
    """`cold_start_sentence` for each of `cold_start_models`, one line per model."""
    return "\n".join(cold_start_sentence(table, model=name, **kwargs) for name in cold_start_models(models))


def split_protocols_sentence(train: pd.DataFrame, evaluation: pd.DataFrame) -> str:
    """The split's share, its cold users and items, and which protocol suits which rows, in words."""
    s = split_summary(train, evaluation)
    return (f"Evaluation part: {s['evaluation_rows']:,} rows ({s['evaluation_share']:.1%} of the data), "
            f"{s['evaluation_users']:,} users of whom {s['evaluation_users_cold']:,} are unknown to training, "
            f"{s['evaluation_items']:,} items of which {s['evaluation_items_cold']:,} are unknown. {s['protocols']}.")


def activity_sentence(activity: pd.Series, evaluation: pd.DataFrame | None = None) -> str:
    """The activity buckets' cuts and sizes, in words: evaluation users per bucket (all bucketed users without
    `evaluation`)."""
    a, b = activity.attrs["edges"]
    if evaluation is not None:
        activity = activity.reindex(pd.unique(evaluation["user_id"].astype(str).to_numpy())).dropna()
    sizes = activity.value_counts().reindex(activity.cat.categories).fillna(0)
    rule = {"new": "0 (unknown to training)", "cold": f"<= {a}", "medium": f"{a + 1} to {b}", "heavy": f"> {b}"}
    who = "evaluation users by their training interactions" if evaluation is not None else "training interactions per user"
    return f"{who}: " + "; ".join(f"{c} {rule[c]} ({int(n):,} users)" for c, n in sizes.items())


# Above this many evaluation users (Electronics' global split: 250,790), the notebook's statistics are cut to what
# 2 cores do in minutes: each model is compared with the headline model only (not every pair), with 1,000
# permutations (p-value resolution 0.002) instead of 10,000, and the curves over K are drawn without intervals
# (400 bootstraps of 250,000 users: about 11 minutes). The K=10 figures keep their 1,000-resample intervals.
LARGE_EVALUATION_USERS = 20_000


def statistics_plan(models: dict, evaluation: pd.DataFrame) -> dict:
    """pairs (None: every pair), n_permutations and over_k_ci for this evaluation's size (LARGE_EVALUATION_USERS)."""
    n_users = int(evaluation["user_id"].nunique())
    if n_users <= LARGE_EVALUATION_USERS:
        return {"pairs": None, "n_permutations": 10_000, "over_k_ci": True, "n_users": n_users, "large": False}
    head = headline_model(models)
    return {"pairs": [(head, other) for other in models if other != head], "n_permutations": 1_000,
            "over_k_ci": False, "n_users": n_users, "large": True}


def statistics_sentence(plan: dict) -> str:
    """What `statistics_plan` chose, in words."""
    if not plan["large"]:
        return (f"{plan['n_users']:,} evaluation users: every pair of models compared (10,000 permutations), "
                "intervals on every curve.")
    return (f"{plan['n_users']:,} evaluation users (more than {LARGE_EVALUATION_USERS:,}): each model compared with "
            f"{plan['pairs'][0][0]} only, with {plan['n_permutations']:,} permutations (p-values resolve 0.002), "
            "and the curves over K drawn without intervals; the figures at K carry their intervals.")

"""The prose and tables of evaluation.ipynb written from its results: which models each figure shows, the paired
comparisons a reader needs (the full table goes to a CSV), and one sentence per finding, each naming its protocol.
Every sentence of the notebook that states a number or a comparison comes from here."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.files import write_text
from helpers.plots.evaluation import METRIC_LABELS, group_order, metric_label, protocol_label, value_text


def _interval(row) -> str:
    return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


BASELINES = ("popular", "popular_segment", "itemknn", "ease")  # the non-neural models the prose names as baselines
FLOOR = "popular"  # most-popular: the floor every personalised model has to clear
HEADLINE_METRICS = (("sampled", "hr"), ("sampled", "ndcg"), ("full", "hr"), ("full", "ndcg"))


def ranking_model_names(models: dict) -> list[str]:
    """The models trained for ranking (task "implicit"): the only ones the ranking figures show."""
    return [name for name, model in models.items() if model.task != "rating"]


def rating_model_names(models: dict) -> list[str]:
    """The models trained to predict ratings (task "rating"): the ones the rating figure shows."""
    return [name for name, model in models.items() if model.task == "rating"]


def interval_verdict(low_a: float, high_a: float, low_b: float, high_b: float) -> str:
    """"above it, the intervals apart" / "below it, the intervals apart" / "the intervals overlap" for A against B."""
    if low_a > high_b:
        return "above it, the intervals apart"
    if high_a < low_b:
        return "below it, the intervals apart"
    return "the intervals overlap"


def _figure_name(protocol: str, metric: str, k) -> str:
    return f"{protocol_label(protocol)} {metric_label(metric, k)}"


def _rows_of(summary: pd.DataFrame, protocol: str, metric: str, models) -> pd.DataFrame:
    rows = summary[(summary["protocol"] == protocol) & (summary["metric"] == metric) & summary["model"].isin(list(models))]
    return rows.dropna(subset=["value"])


def results_sentences(summary: pd.DataFrame, ranking_models, rating_models=(), headline: str = "collabnn",
                      metric: str = "ndcg", baselines=BASELINES, floor: str = FLOOR) -> str:
    """One line per protocol, from `summary` (`EvaluationResult.summary`): for each ranking protocol, the
    highest of `ranking_models` on `metric`, the headline model's rank, the strongest baseline and how many models
    clear the most-popular floor with the intervals apart; for rating prediction, the models by RMSE."""
    lines = []
    for protocol in ("sampled", "full"):
        rows = _rows_of(summary, protocol, metric, ranking_models).sort_values("value", ascending=False, kind="stable")
        if rows.empty:
            continue
        name = f"{protocol_label(protocol).capitalize()}, {metric_label(metric, rows['k'].iloc[0])}"
        best = rows.iloc[0]
        parts = [f"{name}: the highest of {len(rows)} ranking models is {best.model} {_interval(best)}"]
        if headline in set(rows["model"]) and headline != best.model:
            own = rows[rows["model"] == headline].iloc[0]
            rank = list(rows["model"]).index(headline) + 1
            parts.append(f"{headline} is {rank} of {len(rows)} with {_interval(own)}")
        base = rows[rows["model"].isin(list(baselines))]
        if len(base):
            parts.append(f"the strongest baseline is {base.iloc[0].model} {_interval(base.iloc[0])}")
        if floor in set(rows["model"]):
            low = rows[rows["model"] == floor].iloc[0]
            others = rows[rows["model"] != floor]
            apart = others["ci_low"] > low.ci_high
            text = (f"most-popular ({floor}) scores {_interval(low)} and {int(apart.sum())} of the {len(others)} "
                    "other models are above it with the intervals apart")
            if not apart.all():
                text += " (not " + ", ".join(others.loc[~apart, "model"]) + ")"
            parts.append(text)
        lines.append("; ".join(parts) + ".")
    rows = _rows_of(summary, "rating", "rmse", rating_models).sort_values("value", kind="stable")
    if len(rows):
        listed = ", ".join(f"{r.model} {_interval(r)}" for r in rows.itertuples())
        lines.append(f"Rating prediction, RMSE (lower is better), {len(rows)} rating models from the lowest: {listed}.")
    return "\n".join(lines)


def list_measures_sentence(summary: pd.DataFrame, models, metrics=("coverage", "novelty", "avg_popularity")) -> str:
    """What the full-ranking top-K lists of `models` look like, from `summary`: each list measure's lowest and
    highest model with its value."""
    parts, k = [], None
    for metric in metrics:
        rows = _rows_of(summary, "full", metric, models).sort_values("value", kind="stable")
        if len(rows) < 2:
            continue
        k = rows["k"].iloc[0]
        low, high = rows.iloc[0], rows.iloc[-1]
        parts.append(f"{METRIC_LABELS.get(metric, metric).lower()} from {value_text(low.value, metric)} ({low.model}) "
                     f"to {value_text(high.value, metric)} ({high.model})")
    if not parts:
        return ""
    top = f"top-{int(k)}" if k is not None and pd.notna(k) else "top-K"
    return f"Full ranking, the {top} lists of the {len(list(models))} ranking models: " + "; ".join(parts) + "."


def oriented_comparisons(paired: pd.DataFrame, model: str, figures=HEADLINE_METRICS, others=None) -> pd.DataFrame:
    """The paired comparisons of `model` against every other model (of `others`, default all) on `figures`
    ((protocol, metric) pairs), each
    turned so that diff = `model` - other (a row of `paired` with `model` second has its difference and interval
    negated, ends swapped): protocol, metric, k, other, value (of `model`), other_value, diff, ci_low, ci_high,
    p_value, n_users. A new frame; `paired` is left as it is."""
    columns = ["protocol", "metric", "k", "other", "value", "other_value", "diff", "ci_low", "ci_high", "p_value",
               "n_users"]
    if paired is None or paired.empty:
        return pd.DataFrame(columns=columns)
    wanted = paired[[(p, m) in set(figures) for p, m in zip(paired["protocol"], paired["metric"])]]
    if others is not None:
        keep = set(others) | {model}
        wanted = wanted[wanted["model_a"].isin(keep) & wanted["model_b"].isin(keep)]
    first = wanted[wanted["model_a"] == model]
    second = wanted[wanted["model_b"] == model]
    out = pd.concat([
        pd.DataFrame({"protocol": first["protocol"], "metric": first["metric"], "k": first["k"],
                      "other": first["model_b"], "value": first["mean_a"], "other_value": first["mean_b"],
                      "diff": first["diff"], "ci_low": first["ci_low"], "ci_high": first["ci_high"],
                      "p_value": first["p_value"], "n_users": first["n_users"]}),
        pd.DataFrame({"protocol": second["protocol"], "metric": second["metric"], "k": second["k"],
                      "other": second["model_a"], "value": second["mean_b"], "other_value": second["mean_a"],
                      "diff": -second["diff"], "ci_low": -second["ci_high"], "ci_high": -second["ci_low"],
                      "p_value": second["p_value"], "n_users": second["n_users"]})], ignore_index=True)
    order = {f: i for i, f in enumerate(figures)}
    out["_order"] = [order[(p, m)] for p, m in zip(out["protocol"], out["metric"])]
    return out.sort_values(["_order", "diff"], kind="stable").drop(columns="_order").reset_index(drop=True)[columns]


def _signed(row) -> str:
    return f"{row.diff:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}], p {row.p_value:.4f}"


def comparison_view(oriented: pd.DataFrame, model: str) -> pd.DataFrame:
    """`oriented_comparisons` for reading: one row per other model (the index named "<model> − other"), for each
    figure two columns: "difference [95% interval]" and "p"; rows in the order of the first figure's difference
    (the closest first)."""
    if oriented.empty:
        return pd.DataFrame()
    t = oriented.assign(cell=[f"{r.diff:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" for r in oriented.itertuples()],
                        p=[f"{p:.4f}" for p in oriented["p_value"]],
                        figure=[_figure_name(p, m, k) for p, m, k in zip(oriented["protocol"], oriented["metric"],
                                                                         oriented["k"])])
    view = t.pivot_table(index="other", columns="figure", values=["cell", "p"], aggfunc="first", sort=False)
    view = view.swaplevel(axis=1).rename(columns={"cell": "difference [95% interval]"}, level=1)
    figures = list(pd.unique(t["figure"]))
    view = view.reindex(columns=[(f, c) for f in figures for c in ("difference [95% interval]", "p")])
    view.columns.names = [None, None]
    view.index.name = f"{model} − other"
    return view


def comparisons_sentence(oriented: pd.DataFrame, model: str) -> str:
    """How many of `model`'s paired differences (`oriented_comparisons`) have a 95% interval above 0, below 0 or
    containing 0, naming the latter two kinds."""
    if oriented.empty:
        return f"no paired comparisons of {model}"
    above = oriented[oriented["ci_low"] > 0]
    below = oriented[oriented["ci_high"] < 0]
    unsure = oriented[(oriented["ci_low"] <= 0) & (oriented["ci_high"] >= 0)]
    figures = len(pd.unique(oriented["protocol"] + oriented["metric"]))
    text = (f"{model} against {oriented['other'].nunique()} other models on {figures} figures "
            f"({len(oriented)} paired differences): {len(above)} have a 95% interval above 0, {len(below)} below 0, "
            f"{len(unsure)} contain 0")

    def named(rows):
        return "; ".join(f"{r.other} on {_figure_name(r.protocol, r.metric, r.k)} {_signed(r)}" for r in rows.itertuples())
    if len(below):
        text += f". Below 0: {named(below)}"
    if len(unsure):
        text += f". Containing 0: {named(unsure)}"
    return text + "."


def rating_comparisons_sentence(paired: pd.DataFrame) -> str:
    """The paired RMSE differences between rating models (A - B, lower is better), in words."""
    if paired is None or paired.empty:
        return ""
    rows = paired[paired["metric"] == "rmse"]
    if rows.empty:
        return ""
    parts = [f"{r.model_a} − {r.model_b} {r.diff:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}], p {r.p_value:.4f}"
             for r in rows.itertuples()]
    return "Rating prediction, paired RMSE differences (negative: the first is better): " + "; ".join(parts) + "."


def table_path(output_dir, name: str):
    """OUTPUT_DIR/tables/<name>.csv, where the notebook writes a full table that it shows only in part."""
    return Path(output_dir) / "tables" / f"{name}.csv"


def write_table(table: pd.DataFrame, name: str, output_dir) -> str:
    """Write `table` to `table_path` (folder created, atomically); returns the path relative to OUTPUT_DIR (where
    the rendered notebook sits), for a link."""
    path = table_path(output_dir, name)
    write_text(path, table.to_csv(index=False))
    return f"tables/{name}.csv"


def _runs(values: list) -> list[tuple]:
    """[(value, first index, last index)] of the runs of equal consecutive values."""
    runs = []
    for i, v in enumerate(values):
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1], i)
        else:
            runs.append((v, i, i))
    return runs


def over_k_sentences(over_k: pd.DataFrame, models=None) -> str:
    """One line per protocol x metric of `metrics_over_k`'s table: which model has the highest value at each K
    (as runs of K), and for how many models the value at the largest K is below the one at K=1."""
    if models is not None:
        over_k = over_k[over_k["model"].isin(list(models))]
    lines = []
    for (protocol, metric), part in over_k.groupby(["protocol", "metric"], sort=False):
        ks = sorted(set(part["k"]))
        wide = part.pivot_table(index="k", columns="model", values="value").reindex(ks)
        leaders = [wide.loc[k].idxmax() for k in ks]
        runs = _runs(leaders)
        name = f"{protocol_label(protocol).capitalize()}, {METRIC_LABELS.get(metric, metric)}@K"
        if len(runs) == 1:
            lead = f"{runs[0][0]} is the highest at every K from {ks[0]} to {ks[-1]}"
        elif len(runs) > 4:
            names = list(dict.fromkeys(m for m, _, _ in runs))
            lead = (f"the highest model changes {len(runs) - 1} times between K={ks[0]} and K={ks[-1]}, among "
                    + ", ".join(f"{m} ({sum(b - a + 1 for n, a, b in runs if n == m)} of {len(ks)} K)" for m in names))
        else:
            lead = "the highest model changes with K: " + ", ".join(
                f"{m} at K={ks[a]}" if a == b else f"{m} at K={ks[a]}..{ks[b]}" for m, a, b in runs)
        falling = int((wide.iloc[-1] < wide.iloc[0]).sum())
        trend = (f"{metric.upper()}@{ks[-1]} is below {metric.upper()}@{ks[0]} for {falling} of {wide.shape[1]} models"
                 if falling else f"no model's {metric.upper()} is lower at K={ks[-1]} than at K={ks[0]}")
        lines.append(f"{name}: {lead}; {trend}.")
    return "\n".join(lines)


def activity_sentences(by_activity: pd.DataFrame, headline: str = "collabnn", floor: str = FLOOR, models=None,
                       metric: str = "ndcg") -> str:
    """From `metrics_by_group(..., group_name="activity")`: per protocol, the headline model's `metric` in each
    bucket (and which is highest), its ratio to most-popular there with the intervals' verdict, and the models
    that fall below most-popular in some bucket with the intervals apart."""
    table = by_activity if models is None else by_activity[by_activity["model"].isin(list(models))]
    lines = []
    for protocol in ("sampled", "full"):
        t = table[(table["protocol"] == protocol) & (table["metric"] == metric)]
        own = t[t["model"] == headline]
        if own.empty:
            continue
        buckets = [str(b) for b in own["activity"]]
        values = dict(zip(buckets, own["value"]))
        name = f"{protocol_label(protocol).capitalize()}, {metric_label(metric, own['k'].iloc[0])}"
        parts = [f"{b} {_interval(r)}" for b, r in zip(buckets, own.itertuples())]
        text = f"{name} of {headline} by bucket: " + ", ".join(parts) + f" (highest: {max(values, key=values.get)})"
        base = t[t["model"] == floor]
        if len(base):
            cmp = []
            for r in own.itertuples():
                b = base[base["activity"].astype(str) == str(r.activity)]
                if len(b):
                    b = b.iloc[0]
                    ratio = f"{r.value / b.value:.2f}x" if b.value > 0 else "most-popular scores 0"
                    cmp.append(f"{r.activity} {ratio} ({interval_verdict(r.ci_low, r.ci_high, b.ci_low, b.ci_high)})")
            text += f"; against {floor}: " + ", ".join(cmp)
            below = []
            for r in t[t["model"] != floor].itertuples():
                b = base[base["activity"].astype(str) == str(r.activity)]
                if len(b) and r.ci_high < b.iloc[0].ci_low:
                    below.append(f"{r.model} ({r.activity})")
            text += ("; below most-popular with the intervals apart: " + ", ".join(below)) if below else \
                "; no model is below most-popular in any bucket with the intervals apart"
        lines.append(text + ".")
    return "\n".join(lines)


def group_gap_sentences(by_group: pd.DataFrame, group_col: str = "gender", headline: str = "collabnn",
                        models=None) -> str:
    """From `metrics_by_group` with two groups: per protocol x metric, the headline model's value in each group,
    the gap (second group - first; in percentage points for HR, a share), the intervals' verdict, and for how
    many models the second group scores higher."""
    table = by_group if models is None else by_group[by_group["model"].isin(list(models))]
    groups = group_order(table, group_col)  # the order of the figure's gap column
    if len(groups) != 2:
        return f"{len(groups)} {group_col} groups; the gap sentences need two"
    a, b = groups
    lines = []
    for (protocol, metric), t in table.groupby(["protocol", "metric"], sort=False):
        wide = t.assign(_g=t[group_col].astype(str)).pivot_table(index="model", columns="_g", values="value")
        if a not in wide or b not in wide:
            continue
        gap = (wide[b] - wide[a]).dropna()
        own = t[t["model"] == headline].assign(_g=lambda x: x[group_col].astype(str)).set_index("_g")
        name = f"{protocol_label(protocol).capitalize()}, {metric_label(metric, t['k'].iloc[0])}"
        unit = (lambda x: f"{100 * x:+.1f} pp") if metric == "hr" else (lambda x: f"{x:+.3f}")
        text = name
        if a in own.index and b in own.index:
            ra, rb = own.loc[a], own.loc[b]
            text += (f", {headline}: {a} {_interval(ra)}, {b} {_interval(rb)}, {b} − {a} {unit(rb.value - ra.value)} "
                     f"({interval_verdict(rb.ci_low, rb.ci_high, ra.ci_low, ra.ci_high).replace('it', a, 1)})")
        text += f"; {b} scores higher for {int((gap > 0).sum())} of {len(gap)} models"
        lines.append(text + ".")
    return "\n".join(lines)


def markdown_lines(text: str) -> str:
    """The lines of a generated text as a Markdown list (one item per line), for display in the notebook."""
    return "\n".join(f"- {line}" for line in text.splitlines() if line.strip())


def cold_slices_sentence(table: pd.DataFrame) -> str:
    """Which slices `cold_start_table` holds, with their users and rows; says so when there are no cold users."""
    if table.empty:
        return "no warm-user, cold-user or cold-item figures"
    sizes = table.groupby("slice", sort=False)[["n_users", "n_rows"]].max()
    parts = [f"{s} ({int(r.n_users):,} users, {int(r.n_rows):,} rows)" if pd.notna(r.n_rows)
             else f"{s} ({int(r.n_users):,} users)" for s, r in sizes.iterrows()]
    text = "Slices of this split: " + ", ".join(parts)
    if "cold users" not in sizes.index:
        text += "; no evaluation user is unknown to training, so there is no cold-user slice"
    return text + "."

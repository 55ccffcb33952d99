"""Figures of evaluation.ipynb; each takes a tidy DataFrame from helpers.evaluation and returns a Figure.

Every figure is a dot per model with its 95% bootstrap interval over users (`ci_low`, `ci_high`), drawn as
computed (never clamped: a skewed interval may leave out its point estimate). Rows are sorted best first
(top), the value axis spans the dots and every interval end (not forced from 0, so close models stay apart),
value labels sit in a column of their own right of the panel (they cannot collide), and model names are
horizontal tick labels (they cannot overlap).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.figures import draw_intervals

METRIC_LABELS = {"hr": "HR", "ndcg": "NDCG", "mrr": "MRR", "precision": "Precision", "recall": "Recall",
                 "map": "MAP", "coverage": "Catalogue coverage", "novelty": "Novelty (bits)",
                 "avg_popularity": "Avg. popularity", "ild_category": "ILD (category)",
                 "ild_embedding": "ILD (embedding)", "rmse": "RMSE", "mae": "MAE"}
PROTOCOL_LABELS = {"sampled": "sampled ranking", "full": "full ranking", "rating": "rating prediction",
                   "cold items": "cold items"}
# accuracy metrics (higher is better unless listed in LOWER_IS_BETTER); the others describe the lists
ACCURACY_METRICS = ("hr", "ndcg", "mrr", "precision", "recall", "map", "rmse", "mae")
LOWER_IS_BETTER = ("rmse", "mae")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
LINESTYLES = ("-", "--", "-.", ":")


def metric_label(metric: str, k=None) -> str:
    """"NDCG@10" from ("ndcg", 10); metrics without a cutoff keep their name."""
    name = METRIC_LABELS.get(metric, metric)
    if k is None or pd.isna(k) or metric in ("rmse", "mae", "mrr"):
        return name
    return f"{name}@{int(k)}"


def protocol_label(protocol: str) -> str:
    """"full ranking" from "full"; unknown protocols keep their name."""
    return PROTOCOL_LABELS.get(protocol, protocol)


def figure_title(dataset: str, text: str) -> str:
    """"ml-100k — text": the dataset, a separator, then what the figure shows."""
    return f"{dataset} — {text}" if dataset else text


def direction_note(metric: str) -> str:
    """"higher is better", "lower is better", or "" for the metrics that describe lists rather than rank them."""
    if metric in LOWER_IS_BETTER:
        return "lower is better"
    return "higher is better" if metric in ACCURACY_METRICS else ""


def sorted_best_first(part: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of one metric sorted best first: ascending for RMSE / MAE, descending otherwise (the list
    metrics, which have no better side, from the highest value); ties keep their order. A new frame."""
    return part.sort_values("value", ascending=metric in LOWER_IS_BETTER, kind="stable")


def value_axis_limits(values, lows, highs, pad: float = 0.08) -> tuple[float, float]:
    """(low, high) of a value axis that holds every finite value and interval end, padded by `pad` of the span
    on each side (never clamped to 0 or 1: the limits include every interval end as computed)."""
    ends = np.concatenate([np.asarray(a, dtype=float).ravel() for a in (values, lows, highs)])
    ends = ends[np.isfinite(ends)]
    if ends.size == 0:
        return 0.0, 1.0
    lo, hi = float(ends.min()), float(ends.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.05
    return lo - pad * span, hi + pad * span


def value_text(value: float, metric: str) -> str:
    """A value as its label shows it: 3 decimals, 2 for novelty (bits), none for average popularity (counts)."""
    if not np.isfinite(value):
        return "n/a"
    if metric == "avg_popularity":
        return f"{value:,.0f}"
    if metric == "novelty":
        return f"{value:.2f}"
    return f"{value:.3f}"


def model_colors(models) -> dict:
    """One colour per model, the same in every panel and figure of a call."""
    models = list(models)
    palette = plt.cm.tab10.colors if len(models) <= 10 else plt.cm.tab20.colors
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}


def titled_layout(fig: plt.Figure, title: str) -> None:
    """Set the figure's title and lay the panels out below it: a band of 0.15 inch is kept for the title at any
    figure height (`tight_layout` alone may let a tall figure's title run into the first row's panel titles)."""
    fig.suptitle(title, fontsize=12, y=1 - 0.12 / fig.get_figheight(), va="top")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.15 / fig.get_figheight()))


def _emphasise(ax, highlight) -> None:
    for label in ax.get_yticklabels():
        if highlight is not None and label.get_text() == highlight:
            label.set_fontweight("bold")


def plot_metric_bars(summary: pd.DataFrame, protocol: str, metrics=None, models=None, ncols: int = 3,
                     title: str | None = None, highlight: str | None = None) -> plt.Figure:
    """One panel per metric of `protocol`: a dot per model with its 95% interval, sorted best first (top), the
    value in a column right of the panel. models: the models to show (e.g. the implicit ones for the ranking
    protocols), in any order; default all. highlight: a model whose name is set in bold (the default)."""
    frame = summary[summary["protocol"] == protocol]
    if models is not None:
        frame = frame[frame["model"].isin(list(models))]
    metrics = list(pd.unique(frame["metric"])) if metrics is None else [m for m in metrics if m in set(frame["metric"])]
    if not metrics:
        raise ValueError(f"no metrics of protocol {protocol!r} for models {models} in the summary; "
                         f"found protocols {sorted(set(summary['protocol']))}")
    names = list(pd.unique(frame["model"]))
    colors = model_colors(names)
    ncols = min(ncols, len(metrics))
    nrows = int(np.ceil(len(metrics) / ncols))
    height = 0.3 * len(names) + 1.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, height * nrows + 0.6), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        part = sorted_best_first(frame[frame["metric"] == metric].dropna(subset=["value"]), metric)
        y = np.arange(len(part))
        ax.scatter(part["value"], y, color=[colors[m] for m in part["model"]], s=28, zorder=3)
        draw_intervals(ax, y, part["ci_low"], part["ci_high"], horizontal=True, cap=0.18)
        ax.set_yticks(y, part["model"])
        ax.set_ylim(len(part) - 0.5, -0.5)  # best at the top
        ax.set_xlim(*value_axis_limits(part["value"], part["ci_low"], part["ci_high"]))
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="both", labelsize=8)
        _emphasise(ax, highlight)
        for yi, v in zip(y, part["value"]):
            ax.annotate(value_text(v, metric), xy=(1.0, yi), xycoords=("axes fraction", "data"), xytext=(4, 0),
                        textcoords="offset points", ha="left", va="center", fontsize=7.5)
        note = direction_note(metric)
        label = metric_label(metric, part["k"].iloc[0] if len(part) else None)
        ax.set_title(f"{label} ({note})" if note else label, fontsize=10)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    titled_layout(fig, title or f"{protocol_label(protocol)}: 95% bootstrap intervals over users")
    return fig


def line_styles(models) -> dict:
    """{model: dict(color, marker, linestyle)}: a distinct colour, marker and dash pattern per model."""
    colors = model_colors(models)
    return {m: {"color": colors[m], "marker": MARKERS[i % len(MARKERS)],
                "linestyle": LINESTYLES[(i // 10) % len(LINESTYLES) if len(colors) <= 10 else i % len(LINESTYLES)]}
            for i, m in enumerate(models)}


def models_by_last_value(part: pd.DataFrame) -> list[str]:
    """Model names of one protocol x metric panel ordered by their value at the largest K, highest first."""
    last = part[part["k"] == part["k"].max()]
    return list(last.sort_values("value", ascending=False, kind="stable")["model"])


def plot_metrics_over_k(over_k: pd.DataFrame, models=None, title: str | None = None,
                        highlight: str | None = None) -> plt.Figure:
    """Lines of each metric against K (one panel per protocol x metric), the 95% interval as a shaded band;
    each model with its own colour, marker and dash pattern; one legend, outside on the right, one row per model,
    ordered by the first panel's value at the largest K (the top line first). models: the models to show."""
    if models is not None:
        over_k = over_k[over_k["model"].isin(list(models))]
    panels = list(over_k.groupby(["protocol", "metric"], sort=False).groups)
    if not panels:
        raise ValueError("no rows to plot; run helpers.evaluation.metrics_over_k first")
    first = over_k[(over_k["protocol"] == panels[0][0]) & (over_k["metric"] == panels[0][1])]
    order = models_by_last_value(first)
    order += [m for m in pd.unique(over_k["model"]) if m not in order]
    styles = line_styles(order)
    ncols = len(pd.unique(over_k["metric"]))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (protocol, metric) in zip(axes.flat, panels):
        part = over_k[(over_k["protocol"] == protocol) & (over_k["metric"] == metric)]
        for j, model in enumerate(order):
            line = part[part["model"] == model].sort_values("k")
            if line.empty:
                continue
            style = styles[model]
            ax.plot(line["k"], line["value"], label=model, color=style["color"], marker=style["marker"],
                    linestyle=style["linestyle"], markersize=4.5, markevery=(j % 3, 3),
                    linewidth=2.2 if model == highlight else 1.3, zorder=3 if model == highlight else 2)
            ax.fill_between(line["k"], line["ci_low"], line["ci_high"], color=style["color"], alpha=0.12, lw=0)
        ax.set_ylim(*value_axis_limits(part["value"], part["ci_low"], part["ci_high"], pad=0.04))
        ax.set_title(f"{METRIC_LABELS.get(metric, metric)}@K, {protocol_label(protocol)}", fontsize=10)
        ax.set_xlabel("K (length of the list)")
        ks = sorted(set(part["k"]))
        ax.set_xticks(ks[::max(1, int(np.ceil(len(ks) / 10)))])
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    titled_layout(fig, title or "HR@K and NDCG@K: 95% bootstrap bands over users")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), ncol=1, fontsize=9, frameon=False,
               title=f"ordered by {metric_label(panels[0][1], max(first['k']))}, {protocol_label(panels[0][0])}",
               title_fontsize=8)
    return fig


def group_order(table: pd.DataFrame, group_col: str) -> list:
    """The groups of `group_col` (as strings) in their categorical order, else sorted; only those with rows."""
    present = set(pd.unique(table[group_col].astype(str)))
    if isinstance(table[group_col].dtype, pd.CategoricalDtype):
        return [str(g) for g in table[group_col].cat.categories if str(g) in present]
    return sorted(present)


def models_by_mean_over_groups(part: pd.DataFrame, metric: str) -> list[str]:
    """Model names of one panel sorted best first by their value averaged over the panel's groups."""
    mean = part.groupby("model", sort=False)["value"].mean()
    return list(mean.sort_values(ascending=metric in LOWER_IS_BETTER, kind="stable").index)


def group_gap_text(values: dict, groups: list, metric: str) -> str:
    """The second group's value minus the first, in percentage points for HR (a share of users or rows), as a
    plain difference otherwise: "+4.0 pp" / "-0.012"; "" unless there are exactly two groups with values."""
    if len(groups) != 2 or not all(g in values and np.isfinite(values[g]) for g in groups):
        return ""
    gap = values[groups[1]] - values[groups[0]]
    return f"{100 * gap:+.1f} pp" if metric == "hr" else f"{gap:+.3f}"


def plot_metrics_by_group(table: pd.DataFrame, group_col: str, title: str = "", models=None,
                          highlight: str | None = None, groups=None) -> plt.Figure:
    """One panel per protocol x metric: a row per model (sorted best first by its mean over the groups), a dot
    per group with its 95% interval; with two groups, the gap (second - first; percentage points for HR) in a
    column right of the panel. models: the models to show. groups: the groups' order (default `group_order`)."""
    if models is not None:
        table = table[table["model"].isin(list(models))]
    panels = list(table.groupby(["protocol", "metric"], sort=False).groups)
    if not panels:
        raise ValueError(f"no rows to plot by {group_col}")
    all_groups = [str(g) for g in groups] if groups is not None else group_order(table, group_col)
    counts = table.groupby(table[group_col].astype(str))["n_users"].max()
    group_colors = dict(zip(all_groups, ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")))
    group_markers = dict(zip(all_groups, MARKERS))
    ncols = min(len(panels), 2)
    nrows = int(np.ceil(len(panels) / ncols))
    n_models = len(pd.unique(table["model"]))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, (0.36 * n_models + 1.1) * nrows + 0.5),
                             squeeze=False)
    for ax, (protocol, metric) in zip(axes.flat, panels):
        part = table[(table["protocol"] == protocol) & (table["metric"] == metric)]
        part = part.assign(_group=part[group_col].astype(str))
        groups = [g for g in all_groups if g in set(part["_group"])]
        order = models_by_mean_over_groups(part, metric)
        step = 0.7 / max(len(groups), 1)
        for j, group in enumerate(groups):
            rows = part[part["_group"] == group].set_index("model").reindex(order)
            y = np.arange(len(order)) + (j - (len(groups) - 1) / 2) * step
            ax.scatter(rows["value"], y, color=group_colors[group], marker=group_markers[group], s=24, zorder=3,
                       label=f"{group} ({int(counts[group]):,} users)")
            draw_intervals(ax, y, rows["ci_low"], rows["ci_high"], horizontal=True, color=group_colors[group],
                           cap=step / 3)
        ax.set_yticks(np.arange(len(order)), order)
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set_xlim(*value_axis_limits(part["value"], part["ci_low"], part["ci_high"]))
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="both", labelsize=8)
        _emphasise(ax, highlight)
        if len(groups) == 2:
            for yi, model in enumerate(order):
                values = part[part["model"] == model].set_index("_group")["value"].to_dict()
                ax.annotate(group_gap_text(values, groups, metric), xy=(1.0, yi), xycoords=("axes fraction", "data"),
                            xytext=(4, 0), textcoords="offset points", ha="left", va="center", fontsize=7.5)
            ax.annotate(f"{groups[1]} − {groups[0]}", xy=(1.0, 1.0), xycoords="axes fraction", xytext=(4, 2),
                        textcoords="offset points", ha="left", va="bottom", fontsize=7.5)
        note = direction_note(metric)
        label = f"{metric_label(metric, part['k'].iloc[0] if len(part) else None)}, {protocol_label(protocol)}"
        ax.set_title(f"{label} ({note})" if note else label, fontsize=10)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    titled_layout(fig, title or f"by {group_col}: 95% bootstrap intervals over users")
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(1.0, 0.5), ncol=1,
               fontsize=9, frameon=False, title=group_col, title_fontsize=9)
    return fig

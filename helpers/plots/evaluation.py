"""Figures of evaluation.ipynb; each takes a tidy DataFrame from helpers.evaluation and returns a Figure.

Interval segments and bands are the 95% bootstrap intervals over users (`ci_low`, `ci_high`), drawn as
computed (never clamped: a skewed interval may leave out its point estimate).
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


def metric_label(metric: str, k=None) -> str:
    """"NDCG@10" from ("ndcg", 10); metrics without a cutoff keep their name."""
    name = METRIC_LABELS.get(metric, metric)
    if k is None or pd.isna(k) or metric in ("rmse", "mae", "mrr"):
        return name
    return f"{name}@{int(k)}"


def plot_metric_bars(summary: pd.DataFrame, protocol: str, metrics=None, ncols: int = 4) -> plt.Figure:
    """One bar chart per metric of `protocol` (bars = models, whiskers = 95% CI)."""
    frame = summary[summary["protocol"] == protocol]
    metrics = list(pd.unique(frame["metric"])) if metrics is None else [m for m in metrics if m in set(frame["metric"])]
    if not metrics:
        raise ValueError(f"no metrics of protocol {protocol!r} in the summary; found {sorted(set(summary['protocol']))}")
    ncols = min(ncols, len(metrics))
    nrows = int(np.ceil(len(metrics) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    models = list(pd.unique(frame["model"]))
    palette = plt.cm.tab10.colors if len(models) <= 10 else plt.cm.tab20.colors
    colors = {m: palette[i % len(palette)] for i, m in enumerate(models)}
    for ax, metric in zip(axes.flat, metrics):
        part = frame[frame["metric"] == metric].set_index("model").reindex(models).dropna(subset=["value"])
        ax.bar(part.index, part["value"], color=[colors[m] for m in part.index])
        draw_intervals(ax, np.arange(len(part)), part["ci_low"], part["ci_high"])
        ax.set_title(metric_label(metric, part["k"].iloc[0] if len(part) else None))
        ax.tick_params(axis="x", rotation=45)
        for i, v in enumerate(part["value"]):
            ax.annotate(f"{v:.3g}", (i, v), ha="center", va="bottom", fontsize=7, xytext=(0, 2),
                        textcoords="offset points")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"{protocol} protocol (95% bootstrap CI over users)")
    fig.tight_layout()
    return fig


def plot_metrics_over_k(over_k: pd.DataFrame) -> plt.Figure:
    """Lines of each metric against K (one panel per protocol x metric), CI as a shaded band."""
    panels = list(over_k.groupby(["protocol", "metric"], sort=False).groups)
    if not panels:
        raise ValueError("no rows to plot; run helpers.evaluation.metrics_over_k first")
    ncols = len(pd.unique(over_k["metric"]))
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.3 * nrows), squeeze=False)
    for ax, (protocol, metric) in zip(axes.flat, panels):
        part = over_k[(over_k["protocol"] == protocol) & (over_k["metric"] == metric)]
        for model, line in part.groupby("model", sort=False):
            ax.plot(line["k"], line["value"], marker=".", label=model)
            ax.fill_between(line["k"], line["ci_low"], line["ci_high"], alpha=0.15)
        ax.set_title(f"{METRIC_LABELS.get(metric, metric)}@K, {protocol}")
        ax.set_xlabel("K")
        ax.set_xticks(sorted(set(part["k"]))[::max(1, len(set(part["k"])) // 10)])
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 8), fontsize=8, frameon=False)
    return fig


def plot_metrics_by_group(table: pd.DataFrame, group_col: str, title: str = "") -> plt.Figure:
    """Grouped bars: one panel per protocol x metric, groups on the x axis, one bar per model, 95% CI."""
    panels = list(table.groupby(["protocol", "metric"], sort=False).groups)
    if not panels:
        raise ValueError(f"no rows to plot by {group_col}")
    ncols = min(len(panels), 2)
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.4 * nrows), squeeze=False)
    models = list(pd.unique(table["model"]))
    groups = (list(table[group_col].cat.categories) if isinstance(table[group_col].dtype, pd.CategoricalDtype)
              else sorted(pd.unique(table[group_col])))
    width = 0.8 / len(models)
    for ax, (protocol, metric) in zip(axes.flat, panels):
        part = table[(table["protocol"] == protocol) & (table["metric"] == metric)]
        for j, model in enumerate(models):
            bars = part[part["model"] == model].set_index(group_col).reindex(groups)
            x = np.arange(len(groups)) + (j - (len(models) - 1) / 2) * width
            ax.bar(x, bars["value"], width, label=model)
            draw_intervals(ax, x, bars["ci_low"], bars["ci_high"], cap=width / 4)
        counts = part.groupby(group_col, observed=True)["n_users"].max().reindex(groups)
        ax.set_xticks(np.arange(len(groups)), [f"{g}\n({int(n)} users)" if pd.notna(n) else str(g)
                                               for g, n in zip(groups, counts)])
        ax.set_title(f"{metric_label(metric, part['k'].iloc[0] if len(part) else None)}, {protocol}")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(models), 8), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, y=1.02)
    return fig


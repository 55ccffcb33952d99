"""Figures of EDA.ipynb. Each function returns a matplotlib Figure; `save_figure` writes it as PNG.
Titles read "<dataset> — <what>", counts carry thousands separators, shares are percentages."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from helpers.plots.figures import draw_intervals

PALETTE = {"female": "#d95f02", "male": "#1b9e77", "unknown": "#999999"}
THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}")
PERCENT = FuncFormatter(lambda v, _: f"{v:.0%}")


def figure_title(dataset: str, what: str) -> str:
    """'<dataset> — <what>' (just `what` without a dataset): the name never runs into the sentence."""
    return f"{dataset} — {what}" if dataset else what


def gender_bar_figure(by_gender: pd.DataFrame, dataset: str = ""):
    """Bar chart of interactions per gender (largest first), annotated with its share, users and interactions
    per user."""
    rows = by_gender.sort_values("interactions", ascending=False)
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = [PALETTE.get(g, "#999999") for g in rows["gender"]]
    bars = ax.bar(rows["gender"], rows["interactions"], color=colors)
    ax.bar_label(bars, labels=[f"{r['share']:.1%} of interactions\n{r['users']:,} users\n"
                               f"{r['interactions_per_user']:.0f} per user" for _, r in rows.iterrows()],
                 fontsize=8, padding=3)
    ax.set_ylabel("interactions")
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set_title(figure_title(dataset, "interactions by user gender"))
    ax.margins(y=0.3)
    fig.tight_layout()
    return fig


def category_bar_figure(categories: pd.DataFrame, dataset: str = ""):
    """Horizontal bar chart of the most popular categories by interactions, largest at the top, each bar
    labelled with its count."""
    rows = categories.sort_values("interactions", ascending=False)
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 1.2))
    sns.barplot(data=rows, y="item_category", x="interactions", ax=ax, color="#4c72b0")
    ax.bar_label(ax.containers[0], labels=[f"{n:,}" for n in rows["interactions"]], fontsize=7, padding=2)
    ax.xaxis.set_major_formatter(THOUSANDS)
    ax.set_xlabel("interactions (an item in several categories counts in each)")
    ax.set_ylabel("")
    ax.margins(x=0.12)
    ax.set_title(figure_title(dataset, "most popular categories"))
    fig.tight_layout()
    return fig


def gender_category_figure(means: pd.DataFrame, gaps: pd.DataFrame, dataset: str = ""):
    """Left: mean rating per category and gender with its interval (`gender_category_means`), on an axis that
    spans the intervals (not the whole scale, so gaps of a tenth of a star show); right: the female - male gap
    with its interval (`gender_category_gaps`), from 0. Categories sorted by the gap, women's largest lead
    first."""
    order = gaps.sort_values("gap_female_minus_male", ascending=False)["item_category"].astype(str).tolist()
    level = means.attrs.get("confidence", 0.95)
    fig, (ax, ax_g) = plt.subplots(1, 2, figsize=(12, 0.45 * len(order) + 1.8), sharey=True,
                                   gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(order))[::-1]
    genders = [g for g in ("female", "male") if g in set(means["gender"])]
    offsets = {g: o for g, o in zip(genders, np.linspace(0.12, -0.12, len(genders)) if len(genders) > 1 else [0.0])}
    for gender in genders:
        rows = means[means["gender"] == gender].set_index("item_category").reindex(order)
        pos = y + offsets[gender]
        draw_intervals(ax, pos, rows["ci_low"], rows["ci_high"], horizontal=True, color=PALETTE[gender], cap=0.06)
        ax.plot(rows["mean_rating"], pos, "o", color=PALETTE[gender], label=gender, zorder=3, ms=5)
    values = pd.concat([means["ci_low"], means["ci_high"], means["mean_rating"]]).dropna()
    if len(values):
        pad = 0.08 * (values.max() - values.min()) or 0.05
        ax.set_xlim(values.min() - pad, values.max() + pad)
    ax.set_yticks(y, order)
    ax.set_xlabel(f"mean rating ({level:.0%} interval; axis spans the data, not the whole scale)")
    ax.legend(title="user gender", frameon=False, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    g = gaps.set_index(gaps["item_category"].astype(str)).reindex(order)
    gap = g["gap_female_minus_male"].to_numpy(dtype=float)
    ax_g.barh(y, gap, color=[PALETTE["female"] if v > 0 else PALETTE["male"] for v in gap], alpha=0.8, height=0.6)
    draw_intervals(ax_g, y, g["gap_low"], g["gap_high"], horizontal=True, color="#333333", cap=0.1)
    ax_g.axvline(0, color="k", lw=0.8)
    ax_g.set_xlabel(f"female - male gap in stars ({level:.0%} Welch interval)")
    ax_g.grid(axis="x", alpha=0.3)
    fig.suptitle(figure_title(dataset, "mean rating by gender x category (sorted by the gap)"))
    fig.tight_layout()
    return fig


def year_boxplot(rows: pd.DataFrame, dataset: str = "", xlabel: str = "year"):
    """Boxplot of ratings per year (or period) of `ratings_by_year`: every period of the span (an empty one
    keeps its place), the number of ratings of each above the plot, hollow boxes for periods with fewer than
    `rows.attrs["min_count"]` ratings; the rating axis fits the data's scale."""
    periods = list(rows["year"].cat.categories) if hasattr(rows["year"], "cat") else sorted(rows["year"].unique())
    counts = rows.groupby("year", observed=False).size().reindex(periods, fill_value=0)
    sparse = set(rows.attrs.get("sparse", []))
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(periods) + 2), 4.8))
    sns.boxplot(data=rows, x="year", y="rating", order=periods, ax=ax, color="#8da0cb", showmeans=True, fliersize=1,
                meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black", "markersize": 4})
    for patch, period in zip(ax.patches, [p for p in periods if counts[p] > 0]):
        if period in sparse:
            patch.set_facecolor("white")
    for x, n in enumerate(counts.to_numpy()):
        ax.annotate(f"{n:,}", (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, rotation=90)
    low, high = float(rows["rating"].min()), float(rows["rating"].max())
    ax.set_ylim(low - 0.25 * max(high - low, 1) / 4, high + 0.25 * max(high - low, 1) / 4)
    ax.set_xlabel(xlabel if rows.attrs.get("period_years", 1) == 1 else f"{xlabel} ({rows.attrs['period_years']}-year periods)")
    what = "ratings by " + xlabel
    note = "numbers above: ratings per box" + ("; hollow: fewer than " f"{rows.attrs.get('min_count', 20)}" if sparse else "")
    digits = len(f"{int(counts.max()):,}") if len(counts) else 1
    ax.set_title(figure_title(dataset, what) + f"\n({note})", fontsize=11, pad=8 + 5 * digits)  # above the counts
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig


def rating_distribution_figure(dist: pd.DataFrame, dataset: str = ""):
    """Bar chart of the share of each rating value, each bar labelled with its percentage."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{v:g}" for v in dist["rating"].astype(float)]
    bars = ax.bar(labels, dist["share"], color="#66a61e")
    ax.bar_label(bars, labels=[f"{s:.1%}" for s in dist["share"]], fontsize=8, padding=2)
    ax.set_xlabel("rating")
    ax.set_ylabel("share of interactions")
    ax.yaxis.set_major_formatter(PERCENT)
    ax.margins(y=0.15)
    ax.set_title(figure_title(dataset, "rating distribution"))
    fig.tight_layout()
    return fig


def long_tail_figure(counts: dict[str, np.ndarray], dataset: str = ""):
    """Log-log rank/frequency plots of user activity and item popularity."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (what, c) in zip(axes, counts.items()):
        ax.loglog(np.arange(1, len(c) + 1), c, marker=".", linestyle="none", markersize=3)
        ax.set_xlabel(f"{what[:-1]} rank (most active first)")
        ax.set_ylabel("interactions")
        head = c[: max(1, int(np.ceil(0.2 * len(c))))].sum() / c.sum()
        ax.set_title(f"{what}: top 20% hold {head:.0%} of interactions")
    fig.suptitle(figure_title(dataset, "long tail"))
    fig.tight_layout()
    return fig

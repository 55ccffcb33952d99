"""Figures of EDA.ipynb. Each function returns a matplotlib Figure; `save_figure` writes it as PNG."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = {"female": "#d95f02", "male": "#1b9e77", "unknown": "#999999"}


def gender_bar_figure(by_gender: pd.DataFrame, dataset: str = ""):
    """Bar chart of interactions per gender, annotated with users and interactions per user."""
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = [PALETTE.get(g, "#999999") for g in by_gender["gender"]]
    bars = ax.bar(by_gender["gender"], by_gender["interactions"], color=colors)
    for bar, (_, row) in zip(bars, by_gender.iterrows()):
        ax.annotate(f"{row['share']:.0%}\n{row['users']:,} users\n{row['interactions_per_user']:.0f} per user",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("interactions")
    ax.set_title(f"Interactions by user gender {dataset}".strip())
    ax.margins(y=0.25)
    fig.tight_layout()
    return fig


def category_bar_figure(categories: pd.DataFrame, dataset: str = ""):
    """Horizontal bar chart of the most popular categories by interactions."""
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(categories) + 1.2))
    sns.barplot(data=categories, y="item_category", x="interactions", ax=ax, color="#4c72b0")
    ax.set_xlabel("interactions (an item in several categories counts in each)")
    ax.set_ylabel("")
    ax.set_title(f"Most popular categories {dataset}".strip())
    fig.tight_layout()
    return fig


def gender_category_boxplot(rows: pd.DataFrame, dataset: str = ""):
    """Boxplot of ratings per category split by gender; white diamonds mark the means."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    sns.boxplot(data=rows, x="item_category", y="rating", hue="gender", palette=PALETTE, ax=ax,
                showmeans=True, meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black",
                                           "markersize": 4}, fliersize=1)
    ax.set_xlabel("")
    ax.set_title(f"Rating by gender x category {dataset} (diamond = mean)".strip())
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    return fig


def year_boxplot(rows: pd.DataFrame, dataset: str = "", xlabel: str = "year"):
    """Boxplot of ratings per year (or period), with the number of ratings per box above it."""
    fig, ax = plt.subplots(figsize=(max(7, 0.4 * rows["year"].nunique() + 2), 4.5))
    sns.boxplot(data=rows, x="year", y="rating", ax=ax, color="#8da0cb", showmeans=True, fliersize=1,
                meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black", "markersize": 4})
    counts = rows.groupby("year", observed=True).size()
    top = rows["rating"].max()
    for x, n in enumerate(counts.to_numpy()):
        ax.text(x, top + 0.15, f"{n:,}", ha="center", fontsize=6, rotation=90, va="bottom")
    ax.set_ylim(top=top + 1.2)
    ax.set_xlabel(xlabel)
    ax.set_title(f"Ratings over the years {dataset} (numbers = ratings per box)".strip())
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig


def rating_distribution_figure(dist: pd.DataFrame, dataset: str = ""):
    """Bar chart of how often each rating value is given."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(dist["rating"].astype(str), dist["share"], color="#66a61e")
    ax.set_xlabel("rating")
    ax.set_ylabel("share of interactions")
    ax.set_title(f"Rating distribution {dataset}".strip())
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
    fig.suptitle(f"Long tail {dataset}".strip())
    fig.tight_layout()
    return fig


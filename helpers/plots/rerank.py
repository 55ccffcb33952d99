"""Figures of reranking.ipynb. Each function returns a matplotlib Figure (save with `helpers.plots.save_figure`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.figures import draw_intervals

COLORS = {"affinity": "#1b9e77", "popularity": "#d95f02", "mmr": "#7570b3", "calibration": "#e7298a",
          "fairness": "#66a61e"}


LABELS = {"ndcg": "NDCG@K", "hr": "HR@K", "ild": "intra-list diversity (categories)",
          "long_tail_share": "long-tail share of the list", "calibration_kl": "calibration KL",
          "avg_popularity": "average popularity", "coverage": "catalogue coverage",
          "amplification": "stereotype amplification"}


def tradeoff_figure(sweeps: pd.DataFrame, x: str = "ild", y: str = "ndcg", title: str = ""):
    """One line per re-ranker through its sweep of weights (x: a list property, y: accuracy); the
    base list (weight 0) is the black star every line starts from; each point is labelled with its weight."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for method, g in sweeps.groupby("method", sort=False):
        g = g.sort_values("weight")
        ax.plot(g[x], g[y], "-o", color=COLORS.get(method, "#666666"), label=method, markersize=4, alpha=0.85)
        for _, r in g.iterrows():
            if r["weight"] != 0:
                ax.annotate(f"{r['weight']:g}", (r[x], r[y]), textcoords="offset points", xytext=(3, 3),
                            fontsize=7, color=COLORS.get(method, "#666666"))
    base = sweeps[sweeps["weight"] == 0]
    if len(base):
        ax.plot(base[x].iloc[0], base[y].iloc[0], "k*", markersize=14, label="base (weight 0)", zorder=5)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title or f"{LABELS.get(y, y)} against {LABELS.get(x, x)}, sweeping each weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_interval_figure(table: pd.DataFrame, measure: str = "ndcg", title: str = ""):
    """Two panels per variant: left, the mean with its 95% bootstrap interval (base: dashed line);
    right, the paired change against the base (same users resampled together; 0 dashed). The
    marginal intervals overlap even where the paired change is clearly non-zero: read the right panel."""
    fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(11, 0.45 * len(table) + 1.4), sharey=True)
    y = np.arange(len(table))[::-1]
    colors = [COLORS.get(str(meth), "#333333") for meth in table.get("method", ["none"] * len(table))]
    m = table[measure].to_numpy(dtype=float)
    draw_intervals(ax, y, table[f"{measure}_low"], table[f"{measure}_high"], horizontal=True, color="#999999")
    ax.scatter(m, y, c=colors, zorder=3)
    ax.axvline(m[0], color="k", ls="--", lw=0.8)
    ax.set_yticks(y, table["variant"])
    ax.set_xlabel(f"{LABELS.get(measure, measure)} (95% bootstrap interval over users)")
    ax.grid(axis="x", alpha=0.3)
    if f"{measure}_diff" in table:
        d = table[f"{measure}_diff"].to_numpy(dtype=float)
        ok = np.isfinite(d)
        draw_intervals(ax_d, y, table[f"{measure}_diff_low"], table[f"{measure}_diff_high"], horizontal=True,
                       color="#999999")
        ax_d.scatter(d[ok], y[ok], c=[c for c, o in zip(colors, ok) if o], zorder=3)
        ax_d.axvline(0, color="k", ls="--", lw=0.8)
        ax_d.set_xlabel(f"change in {LABELS.get(measure, measure)} vs the base (paired 95% interval)")
        ax_d.grid(axis="x", alpha=0.3)
    fig.suptitle(title or f"{LABELS.get(measure, measure)} per re-ranker, over all evaluation users")
    fig.tight_layout()
    return fig


def exposure_gap_figure(exposures: dict, group: str, top: int = 12, title: str = ""):
    """Group-specific exposure gap per category for one group, one bar per variant
    (`exposures`: label -> `rerank.exposure_by_group` frame). Bars above 0: the group is shown more
    of that category than its histories justify beyond everyone's skew."""
    frames = [e[e["group"] == group].set_index("category")["gap"].rename(label) for label, e in exposures.items()]
    gaps = pd.concat(frames, axis=1).fillna(0.0)
    gaps = gaps.loc[gaps.abs().max(axis=1).sort_values(ascending=False).index[:top]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(len(gaps.columns), 1)
    x = np.arange(len(gaps))
    for j, col in enumerate(gaps.columns):
        ax.bar(x + j * width - 0.4 + width / 2, gaps[col], width, label=col)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, gaps.index, rotation=45, ha="right")
    ax.set_ylabel("exposure gap (share of the top-K list)")
    ax.set_title(title or f"Group-specific exposure gap for users '{group}'")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

